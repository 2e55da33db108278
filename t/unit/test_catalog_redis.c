/*
 * test_catalog_redis.c: the catalog alone (no engine) against a real
 * redis-server started on a loopback port in a temp dir, for what the
 * data and the events in Redis may hold:
 *
 *   (a) an event storm: a hundred "*" over 2000 cached adapters, and
 *       thousands of events for one name, cost a read or two an entry,
 *       not one an event; an entry changed meanwhile is read as it is
 *       now, and a new name is read at once, not "catalog busy";
 *   (b) values of the wrong form: an adapter's field holding a NUL byte
 *       is refused, not read up to it, and so is a tenant's number; a
 *       tenant's rate too small to be a double is refused, not taken as
 *       0 (no limit);
 *   (c) the writer: a tenant's rate goes into Redis as it was given;
 *   (d) registrations at run time (slora_catalog_runtime_add, _drop):
 *       SLORA_AGAIN while the catalog's thread writes, then the entry
 *       found at once with the folder's realpath, as Redis holds it; a
 *       name held refused unless replacing; a second write waits its
 *       turn; a folder the check refuses, or outside the root, writes
 *       nothing; a drop removes the hash and the name is unknown after,
 *       an unknown name is declined.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <signal.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <hiredis/hiredis.h>

#include "tap.h"
#include "redis_server.h"
#include "slora_catalog.h"
#include "slora_catalog_int.h"
#include "slora_adapter.h"
#include "tiny_config.h"


static char   tmp[256];
static char   root[300];
static char   url[64];


static slora_catalog_t *catalog(void);
static int settle(slora_catalog_t *cat, const char *name,
    slora_catalog_adapter_t **ad, slora_err_t *err);
static int tsettle(slora_catalog_t *cat, const char *name,
    slora_catalog_tenant_t **t, slora_err_t *err);
static void test_storm(void);
static void test_values(void);
static void test_writer(void);
static void test_runtime(void);
static int until(slora_catalog_t *cat, const char *name, const char *dir,
    int replace, int drop, uint64_t owner, slora_catalog_check_pt check,
    slora_catalog_adapter_t **ad, slora_err_t *err);
static int refuse(void *data, const char *path, slora_err_t *err);


int
main(void)
{
    int   i;
    char  cmd[300];

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-catalog-redis-XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    atexit(redis_stop);
    signal(SIGABRT, redis_on_fatal);
    signal(SIGSEGV, redis_on_fatal);
    signal(SIGPIPE, SIG_IGN);

    snprintf(root, sizeof(root), "%s/root", tmp);
    mkdir(root, 0755);

    /* a port of its own, apart from test_catalog's; its storm loads the
     * server: 2 s for a reply */
    redis_timeout_s = 2;
    for (i = 0; i < 5; i++) {
        redis_port = 16290 + (int) ((getpid() + i * 17) % 100);
        snprintf(url, sizeof(url), "redis://127.0.0.1:%d", redis_port);

        if (redis_start(tmp) == 0) {
            break;
        }
    }

    if (!ok(i < 5, "redis-server up on 127.0.0.1:%d", redis_port)) {
        BAIL_OUT("cannot start redis-server");
    }

    test_storm();
    test_values();
    test_writer();
    test_runtime();

    redis_stop();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}


/*
 * Events come faster than the catalog's one thread reads: each asks an
 * entry to be read again, but a read already out answers for them all
 * (with one more read after it, which sees what changed meanwhile).
 */
static void
test_storm(void)
{
    int                       i, rc, n;
    char                      d0[400], d1[400], name[32];
    int64_t                   t0;
    uint64_t                  before;
    redisReply               *r;
    slora_err_t               err;
    redisContext             *c;
    slora_catalog_t          *cat;
    slora_catalog_stats_t     st;
    slora_catalog_adapter_t  *ad;

    n = 2000;
    snprintf(d0, sizeof(d0), "%s/storm0", root);
    snprintf(d1, sizeof(d1), "%s/storm1", root);
    mkdir(d0, 0755);
    mkdir(d1, 0755);

    c = redis();
    if (!ok(c != NULL, "storm: redis")) {
        return;
    }

    for (i = 0; i < n; i++) {
        redisAppendCommand(c, "HSET slora:adapter:s%d path %s", i, d0);
    }

    for (i = 0; i < n; i++) {
        if (redisGetReply(c, (void **) &r) == REDIS_OK) {
            freeReplyObject(r);
        }
    }

    cat = catalog();
    if (!ok(cat != NULL, "storm: a catalog")) {
        redisFree(c);
        return;
    }

    for (i = 0, rc = SLORA_OK; i < n && rc == SLORA_OK; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        rc = settle(cat, name, &ad, &err);
    }

    is_int(rc, SLORA_OK, "storm: %d adapters read", n);

    /* s7 changes; then a hundred "*" */
    r = redisCommand(c, "HSET slora:adapter:s7 path %s", d1);
    freeReplyObject(r);

    slora_catalog_stats(cat, &st);
    before = st.fetches;

    for (i = 0; i < 100; i++) {
        redisAppendCommand(c, "PUBLISH %s *", SLORA_CATALOG_CHANNEL);
    }

    for (i = 0; i < 100; i++) {
        if (redisGetReply(c, (void **) &r) == REDIS_OK) {
            freeReplyObject(r);
        }
    }

    usleep(100000);
    t0 = slora_now_ns();

    do {
        slora_catalog_poll(cat);
        rc = slora_catalog_adapter(cat, "storm-new", &ad, &err);
        usleep(rc == SLORA_DECLINED ? 0 : 1000);
    } while (rc != SLORA_DECLINED && slora_now_ns() - t0 < 30000000000LL);

    /* how soon is a figure, not a check (the reads' count below is) */
    ok(rc == SLORA_DECLINED, "storm: a new name is read (in %.2f s)",
       (double) (slora_now_ns() - t0) / 1e9);

    for (i = 0; i < 3000 && cat->n_fetching > 0; i++) {
        slora_catalog_poll(cat);
        usleep(1000);
    }

    slora_catalog_stats(cat, &st);
    ok(st.fetches - before <= (uint64_t) n * 5, "storm: 100 \"*\" over %d "
       "entries: %llu reads (a read out an entry at most)", n,
       (unsigned long long) (st.fetches - before));

    rc = settle(cat, "s7", &ad, &err);
    ok(rc == SLORA_OK && strstr(ad->path, "storm1") != NULL,
       "storm: s7 changed before the storm is read as it is now: %s",
       rc == SLORA_OK ? ad->path : err.msg);

    /* thousands of events for one name */
    slora_catalog_stats(cat, &st);
    before = st.fetches;

    for (i = 0; i < 5000; i++) {
        redisAppendCommand(c, "PUBLISH %s %s", SLORA_CATALOG_CHANNEL,
                           "adapter s9");
    }

    for (i = 0; i < 5000; i++) {
        if (redisGetReply(c, (void **) &r) == REDIS_OK) {
            freeReplyObject(r);
        }
    }

    t0 = slora_now_ns();

    while (slora_now_ns() - t0 < 500000000LL || cat->n_fetching > 0) {
        slora_catalog_poll(cat);
        usleep(1000);

        if (slora_now_ns() - t0 > 10000000000LL) {
            break;
        }
    }

    slora_catalog_stats(cat, &st);
    ok(st.invalidations >= 5000 && st.fetches - before <= 500,
       "storm: 5000 events for s9: %llu reads",
       (unsigned long long) (st.fetches - before));

    slora_catalog_free(cat);
    redisFree(c);
}


/* What a hash may hold that the catalog must not take as it reads. */
static void
test_values(void)
{
    int                       rc;
    char                      d0[400], cut[500];
    redisReply               *r;
    slora_err_t               err;
    redisContext             *c;
    slora_catalog_t          *cat;
    slora_catalog_tenant_t   *t;
    slora_catalog_adapter_t  *ad;

    snprintf(d0, sizeof(d0), "%s/val0", root);
    mkdir(d0, 0755);

    c = redis();
    cat = catalog();
    if (!ok(c != NULL && cat != NULL, "values: redis and a catalog")) {
        return;
    }

    /* a path that names val0 up to its NUL byte, and something else */
    snprintf(cut, sizeof(cut), "%s%c/../../elsewhere", d0, '\0');
    r = redisCommand(c, "HSET slora:adapter:nulpath path %b", cut,
                     strlen(d0) + 1 + strlen(cut + strlen(d0) + 1));
    freeReplyObject(r);
    r = redisCommand(c, "HSET slora:adapter:nulrank path %s rank %b", d0,
                     "8\0x", (size_t) 3);
    freeReplyObject(r);

    rc = settle(cat, "nulpath", &ad, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "NUL") != NULL,
       "values: a path with a NUL byte is refused: %d %s", rc,
       rc == SLORA_OK ? ad->path : err.msg);

    rc = settle(cat, "nulrank", &ad, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "NUL") != NULL,
       "values: a rank \"8\\0x\" is refused: %d %s", rc,
       rc == SLORA_OK ? "" : err.msg);

    /* 1e-400 is no double: strtod() says 0, which is no limit */
    r = redisCommand(c, "HSET slora:tenant:tiny rate 1e-400");
    freeReplyObject(r);

    rc = tsettle(cat, "tiny", &t, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "rate") != NULL,
       "values: a rate of 1e-400 is refused, not no limit: %d %s", rc,
       rc == SLORA_OK ? "" : err.msg);

    r = redisCommand(c, "HSET slora:tenant:nulmax max_tokens %b", "100\0000",
                     (size_t) 5);
    freeReplyObject(r);
    r = redisCommand(c, "HSET slora:tenant:nulrate rate %b", "5\0.5",
                     (size_t) 4);
    freeReplyObject(r);

    rc = tsettle(cat, "nulmax", &t, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "max_tokens") != NULL,
       "values: max_tokens \"100\\0000\" is refused, not 100: %d %s", rc,
       rc == SLORA_OK ? "" : err.msg);

    rc = tsettle(cat, "nulrate", &t, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "rate") != NULL,
       "values: rate \"5\\0.5\" is refused, not 5: %d %s", rc,
       rc == SLORA_OK ? "" : err.msg);

    slora_catalog_free(cat);
    redisFree(c);
}


/* What the writer puts in Redis is what it was given. */
static void
test_writer(void)
{
    redisReply                   *r;
    slora_err_t                   err;
    redisContext                 *c;
    slora_catalog_writer_t       *w;
    slora_catalog_tenant_spec_t   ts;

    c = redis();
    w = slora_catalog_writer_open(url, 1000, &err);
    if (!ok(c != NULL && w != NULL, "writer: redis and a writer")) {
        return;
    }

    memset(&ts, 0, sizeof(ts));
    ts.name = "exact";
    ts.n_allowed = -1;
    ts.priority = INT32_MIN;
    ts.ttft_slo_ms = INT32_MIN;
    ts.max_tokens = INT32_MIN;
    ts.rate = 1234567;

    is_int(slora_catalog_set_tenant(w, &ts, &err), SLORA_OK,
           "writer: tenant exact set");

    r = redisCommand(c, "HGET slora:tenant:exact rate");
    ok(r != NULL && r->type == REDIS_REPLY_STRING
       && strtod(r->str, NULL) == 1234567,
       "writer: rate 1234567 written as %s", r != NULL && r->str ? r->str
                                                                  : "?");
    freeReplyObject(r);

    ts.rate = 0.2;
    is_int(slora_catalog_set_tenant(w, &ts, &err), SLORA_OK,
           "writer: tenant exact set again");

    r = redisCommand(c, "HGET slora:tenant:exact rate");
    ok(r != NULL && r->type == REDIS_REPLY_STRING
       && strcmp(r->str, "0.2") == 0,
       "writer: rate 0.2 written as %s", r != NULL && r->str ? r->str : "?");
    freeReplyObject(r);

    slora_catalog_writer_close(w);
    redisFree(c);
}


static slora_catalog_t *
catalog(void)
{
    slora_err_t            err;
    const char            *roots[1];
    slora_catalog_t       *cat;
    slora_catalog_conf_t   cc;

    memset(&cc, 0, sizeof(cc));
    roots[0] = root;
    cc.redis_url = url;
    cc.roots = roots;
    cc.n_roots = 1;
    cc.wake_fd = -1;

    cat = slora_catalog_create(&cc, &err);
    if (cat == NULL) {
        diag("catalog: %s", err.msg);
    }

    return cat;
}


/* An adapter lookup polled until it is no longer SLORA_AGAIN. */
static int
settle(slora_catalog_t *cat, const char *name, slora_catalog_adapter_t **ad,
    slora_err_t *err)
{
    int  rc, i;

    rc = SLORA_AGAIN;

    for (i = 0; i < 3000 && rc == SLORA_AGAIN; i++) {
        slora_catalog_poll(cat);
        rc = slora_catalog_adapter(cat, name, ad, err);

        if (rc == SLORA_AGAIN) {
            usleep(1000);
        }
    }

    return rc;
}


/* A tenant lookup polled until it is no longer SLORA_AGAIN. */
static int
tsettle(slora_catalog_t *cat, const char *name, slora_catalog_tenant_t **t,
    slora_err_t *err)
{
    int  rc, i;

    rc = SLORA_AGAIN;

    for (i = 0; i < 3000 && rc == SLORA_AGAIN; i++) {
        slora_catalog_poll(cat);
        rc = slora_catalog_tenant(cat, name, t, err);

        if (rc == SLORA_AGAIN) {
            usleep(1000);
        }
    }

    return rc;
}




static int
refuse(void *data, const char *path, slora_err_t *err)
{
    return slora_err_set(err, SLORA_ERROR, "%s: refused by the check", path);
}


/* runtime_add (drop: runtime_drop) called, and the catalog polled, as
 * the engine's op is retried, until it is no longer SLORA_AGAIN */
static int
until(slora_catalog_t *cat, const char *name, const char *dir, int replace,
    int drop, uint64_t owner, slora_catalog_check_pt check,
    slora_catalog_adapter_t **ad, slora_err_t *err)
{
    int  rc, i;

    rc = SLORA_AGAIN;

    for (i = 0; i < 3000 && rc == SLORA_AGAIN; i++) {
        slora_catalog_poll(cat);
        rc = drop ? slora_catalog_runtime_drop(cat, name, owner, err)
                  : slora_catalog_runtime_add(cat, name, dir, replace, owner,
                                              check, NULL, ad, err);
        if (rc == SLORA_AGAIN) {
            usleep(1000);
        }
    }

    return rc;
}


static void
test_runtime(void)
{
    int                       rc, again, i;
    char                      v1[400], v2[400], out[400], real[PATH_MAX];
    redisReply               *r;
    slora_err_t               err;
    redisContext             *c;
    slora_catalog_t          *cat;
    slora_adapter_gen_t       gen = { 4, 8, 0x0f, 3, 0.5f };
    slora_model_config_t      cfg;
    slora_catalog_adapter_t  *ad;

    tiny_config(&cfg, SLORA_ROPE_NORM);
    snprintf(v1, sizeof(v1), "%s/.v/one", root);
    snprintf(v2, sizeof(v2), "%s/.v/two", root);
    snprintf(out, sizeof(out), "%s/outside", tmp);
    mkdir(out, 0755);
    snprintf(real, sizeof(real), "%s/.v", root);
    mkdir(real, 0755);

    if (slora_adapter_write_random(v1, &cfg, &gen, &err) != SLORA_OK
        || slora_adapter_write_random(v2, &cfg, &gen, &err) != SLORA_OK
        || slora_adapter_write_random(out, &cfg, &gen, &err) != SLORA_OK)
    {
        BAIL_OUT("runtime: adapters: %s", err.msg);
    }

    c = redis();
    cat = catalog();
    if (!ok(c != NULL && cat != NULL, "runtime: redis and a catalog")) {
        return;
    }

    rc = slora_catalog_runtime_add(cat, "rt", v1, 0, 1, NULL, NULL, &ad, &err);
    again = rc == SLORA_AGAIN;
    rc = until(cat, "rt", v1, 0, 0, 1, NULL, &ad, &err);
    ok(again && rc == SLORA_OK,
       "runtime: rt registered after SLORA_AGAIN: %s", err.msg);
    if (realpath(v1, real) == NULL) {
        BAIL_OUT("realpath %s", v1);
    }
    ok(rc == SLORA_OK && strcmp(ad->path, real) == 0,
       "runtime: ... the entry found at once, at the folder's realpath");

    r = redisCommand(c, "HGET slora:adapter:rt path");
    ok(r != NULL && r->type == REDIS_REPLY_STRING
       && strcmp(r->str, real) == 0, "runtime: ... its path in Redis");
    freeReplyObject(r);

    rc = until(cat, "rt", v2, 0, 0, 2, NULL, &ad, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "already been loaded"),
       "runtime: rt again refused: %s", err.msg);

    /* two writes: the second waits for the first's turn */
    rc = slora_catalog_runtime_add(cat, "rt", v2, 1, 3, NULL, NULL, &ad, &err);
    is_int(rc, SLORA_AGAIN, "runtime: rt replaced: out");
    rc = slora_catalog_runtime_add(cat, "rt2", v2, 0, 4, NULL, NULL, &ad,
                                   &err);
    is_int(rc, SLORA_AGAIN, "runtime: rt2 meanwhile: waits");
    rc = until(cat, "rt", v2, 1, 0, 3, NULL, &ad, &err);
    if (realpath(v2, real) == NULL) {
        BAIL_OUT("realpath %s", v2);
    }
    ok(rc == SLORA_OK && strcmp(ad->path, real) == 0,
       "runtime: rt at two now: %s", rc == SLORA_OK ? ad->path : err.msg);
    rc = until(cat, "rt2", v2, 0, 0, 4, NULL, &ad, &err);
    ok(rc == SLORA_OK && strcmp(ad->path, real) == 0,
       "runtime: rt2 registered in its turn");

    /* one name asked by two ops (owners 10 and 11): the write's answer
     * is its sender's alone, however the ops are retried (the name
     * looked up first, so that the first op's first call sends) */
    is_int(settle(cat, "rs", &ad, &err), SLORA_DECLINED,
           "runtime: rs not in Redis");
    rc = slora_catalog_runtime_add(cat, "rs", v1, 0, 10, NULL, NULL, &ad,
                                   &err);
    is_int(rc, SLORA_AGAIN, "runtime: rs from one: out");
    for (i = 0; i < 200; i++) {
        slora_catalog_poll(cat);
        rc = slora_catalog_runtime_add(cat, "rs", v2, 1, 11, NULL, NULL, &ad,
                                       &err);
        if (rc != SLORA_AGAIN) {
            break;
        }
        usleep(1000);
    }
    ok(i == 200, "runtime: rs from two (load_inplace) by another op waits,"
       " even once the first's answer is in: %s",
       i == 200 ? "200 calls" : err.msg);
    rc = until(cat, "rs", v1, 0, 0, 10, NULL, &ad, &err);
    if (realpath(v1, real) == NULL) {
        BAIL_OUT("realpath %s", v1);
    }
    ok(rc == SLORA_OK && ad != NULL && strcmp(ad->path, real) == 0,
       "runtime: ... the first takes its own answer: rs at one: %s",
       rc == SLORA_OK && ad ? ad->path : err.msg);
    rc = until(cat, "rs", v2, 1, 0, 11, NULL, &ad, &err);
    if (realpath(v2, real) == NULL) {
        BAIL_OUT("realpath %s", v2);
    }
    ok(rc == SLORA_OK && ad != NULL && strcmp(ad->path, real) == 0,
       "runtime: ... then the second writes its own: rs at two: %s",
       rc == SLORA_OK && ad ? ad->path : err.msg);
    rc = until(cat, "rs", v1, 0, 0, 12, NULL, &ad, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "already been loaded"),
       "runtime: ... a third, not in place, refused: %s", err.msg);
    rc = until(cat, "rs", NULL, 0, 1, 13, NULL, &ad, &err);
    is_int(rc, SLORA_OK, "runtime: rs dropped");

    /* a name another writer took after this engine looked (no event
     * yet): the write, create-only, is refused and leaves theirs */
    is_int(settle(cat, "rc", &ad, &err), SLORA_DECLINED,
           "runtime: rc not in Redis, as this engine last looked");
    r = redisCommand(c, "HSET slora:adapter:rc path /elsewhere rank 4");
    freeReplyObject(r);
    rc = until(cat, "rc", v1, 0, 0, 20, NULL, &ad, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "already been loaded"),
       "runtime: rc, taken meanwhile by another writer, refused: %s",
       err.msg);
    r = redisCommand(c, "HGET slora:adapter:rc path");
    ok(r != NULL && r->type == REDIS_REPLY_STRING
       && strcmp(r->str, "/elsewhere") == 0,
       "runtime: ... the other writer's entry left as it was");
    freeReplyObject(r);
    rc = until(cat, "rc", v1, 1, 0, 21, NULL, &ad, &err);
    if (realpath(v1, real) == NULL) {
        BAIL_OUT("realpath %s", v1);
    }
    ok(rc == SLORA_OK && ad != NULL && strcmp(ad->path, real) == 0,
       "runtime: ... load_inplace replaces it: %s",
       rc == SLORA_OK && ad ? ad->path : err.msg);
    is_int(until(cat, "rc", NULL, 0, 1, 22, NULL, &ad, &err), SLORA_OK,
           "runtime: rc dropped");

    /* an op abandoned with its write out (its client went away): the
     * turn is given back with the answer, not held for its owner for
     * seconds (until() gives up after some 3) */
    is_int(settle(cat, "ra", &ad, &err), SLORA_DECLINED,
           "runtime: ra not in Redis");
    rc = slora_catalog_runtime_add(cat, "ra", v1, 0, 30, NULL, NULL, &ad,
                                   &err);
    is_int(rc, SLORA_AGAIN, "runtime: ra: out");
    slora_catalog_runtime_abandon(cat, 30);
    rc = until(cat, "rb", v2, 0, 0, 31, NULL, &ad, &err);
    is_int(rc, SLORA_OK, "runtime: ... its op abandoned, rb registered in "
           "its turn");
    r = redisCommand(c, "EXISTS slora:adapter:ra");
    ok(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1,
       "runtime: ... ra written all the same (the write was out)");
    freeReplyObject(r);
    is_int(until(cat, "ra", NULL, 0, 1, 32, NULL, &ad, &err), SLORA_OK,
           "runtime: ra dropped");
    is_int(until(cat, "rb", NULL, 0, 1, 33, NULL, &ad, &err), SLORA_OK,
           "runtime: rb dropped");

    rc = until(cat, "rt3", v1, 0, 0, 5, refuse, &ad, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "refused by the check"),
       "runtime: a folder the check refuses: %s", err.msg);
    rc = until(cat, "rt4", out, 0, 0, 6, NULL, &ad, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "outside the adapter roots"),
       "runtime: a folder outside the root: %s", err.msg);
    r = redisCommand(c, "EXISTS slora:adapter:rt3");
    ok(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 0,
       "runtime: ... nothing written");
    freeReplyObject(r);

    rc = until(cat, "rt", NULL, 0, 1, 7, NULL, &ad, &err);
    is_int(rc, SLORA_OK, "runtime: rt dropped");
    r = redisCommand(c, "EXISTS slora:adapter:rt");
    ok(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 0,
       "runtime: ... its hash removed");
    freeReplyObject(r);
    is_int(settle(cat, "rt", &ad, &err), SLORA_DECLINED,
           "runtime: ... rt unknown");
    rc = until(cat, "never", NULL, 0, 1, 8, NULL, &ad, &err);
    ok(rc == SLORA_DECLINED && strstr(err.msg, "cannot be found"),
       "runtime: an unknown name declined: %s", err.msg);

    slora_catalog_free(cat);
    redisFree(c);
}
