/*
 * test_catalog.c: the catalog against a real redis-server started on a
 * loopback port in a temp dir (a failed start fails the test), with a
 * tiny random model and generated adapters:
 *
 *   (a) register + resolve: adapters registered with the writer answer
 *       through the engine exactly as the same folders do alone from the
 *       adapter directory; unknown names get NOT_FOUND;
 *   (b) tenants: default adapter, allowed set (FORBIDDEN otherwise),
 *       unknown tenant, max_tokens clamp; admin pin/unpin/unload/load and
 *       the slora:pinned hint;
 *   (c) a tenant's default changed in Redis takes effect within 1 s;
 *   (d) Redis stopped (SIGSTOP, then killed): cached tenants are served,
 *       unknown names fail with UNAVAILABLE, no step blocks; Redis
 *       restarted: changes flow again;
 *   (e) deleted, corrupted and sha256-mismatched weights fail their own
 *       request only; paths leading outside the roots ("..", absolute,
 *       symlink) are refused;
 *   (f) 2000 adapters in Redis, a Poisson stream with power-law
 *       popularity: all complete, a sample equals each adapter alone,
 *       both tiers evict, memory stays within its budgets;
 *   (g) Redis up but not answering (BUSY with a script): an adapter read
 *       before is still served through an invalidation, a new name is
 *       unavailable, not refused, the hints are kept; the script killed,
 *       both resolve.
 */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <hiredis/hiredis.h>

#include "tap.h"
#include "redis_server.h"
#include "tiny_model.h"
#include "slora_engine.h"
#include "slora_adapter.h"
#include "slora_catalog.h"
#include "slora_catalog_int.h"
#include "slora_mkmodel.h"
#include "slora_sampler.h"


#define MAXREQ    4000
#define MAXGEN    16
#define NPROMPT   16


typedef struct {
    int32_t     tokens[MAXREQ][MAXGEN];
    int32_t     n[MAXREQ];
    int         done[MAXREQ];
    int         finish[MAXREQ];
    int         code[MAXREQ];
    int32_t     retry_ms[MAXREQ];
    char        error[MAXREQ][SLORA_ERR_LEN];
    int         errors;
} sink_t;


static char                   tmp[256];
static char                   model[300];
static char                   root[300];
static char                   url[64];
static slora_model_config_t   mcfg;
static int32_t                prompts[NPROMPT][12];
static int32_t                n_prompts[NPROMPT];
static sink_t                 s;
static int64_t                max_step_ns;


static void rcmd(const char *fmt, const char *a, const char *b);
static void on_event(void *data, const slora_event_t *ev);
static void test_tenant_rate(slora_engine_t *e, slora_catalog_writer_t *w,
    const int32_t *base);
static int submit(slora_engine_t *e, uint64_t id, const char *tenant,
    const char *adapter, int p, int max_tokens, slora_err_t *err);
static int run_ids(slora_engine_t *e, uint64_t lo, uint64_t hi,
    int timeout_ms);
static int alone(slora_engine_t *ref, const char *adapter, int p,
    int max_tokens, int32_t *out);
static int same(uint64_t id, const int32_t *want, int n);
static int pinned(slora_engine_t *e, const char *name);
static int hints_until(slora_engine_t *e, slora_catalog_writer_t *w,
    const char *name, int want);
static void make_adapter(const char *dir, uint64_t seed);
static slora_engine_t *redis_engine(const char *const *roots, int n_roots,
    size_t host, size_t pool);
static void test_resolve(void);
static void test_many(void);
static void test_busy(void);
static int settle(slora_catalog_t *cat, const char *name, int tries,
    slora_err_t *err);
static int zscore(const char *name);


int
main(void)
{
    int                   i, j;
    char                  cmd[300];
    uint32_t              x;

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-catalog-XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    /* the server goes with us, even when a sanitizer aborts */
    atexit(redis_stop);
    signal(SIGABRT, redis_on_fatal);
    signal(SIGSEGV, redis_on_fatal);
    signal(SIGPIPE, SIG_IGN);

    redis_port = 16390 + (int) (getpid() % 100);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", redis_port);

    if (!ok(redis_start(tmp) == 0, "redis-server up on 127.0.0.1:%d",
            redis_port))
    {
        BAIL_OUT("cannot start redis-server");
    }

    tiny_model_make(tmp, 11, 128, model, sizeof(model), &mcfg);

    x = 5;
    for (i = 0; i < NPROMPT; i++) {
        n_prompts[i] = 3 + i % 9;
        for (j = 0; j < n_prompts[i]; j++) {
            x = x * 1664525 + 1013904223;
            prompts[i][j] = (int32_t) ((x >> 8) % (uint32_t) mcfg.vocab);
        }
    }

    snprintf(root, sizeof(root), "%s/root", tmp);
    mkdir(root, 0755);

    test_resolve();
    test_many();
    test_busy();

    redis_stop();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}


static void
test_resolve(void)
{
    int                          i, rc, n, got, bad, served, unavailable;
    char                         dir[400], path[500], link[500], ref_dir[400];
    int32_t                      want[10][NPROMPT][MAXGEN], base[MAXGEN];
    int64_t                      t0, t1, worst;
    uint64_t                     id;
    FILE                        *f;
    slora_err_t                  err;
    slora_engine_t              *e, *ref;
    slora_engine_conf_t          conf;
    slora_engine_stats_t         st;
    slora_catalog_writer_t      *w;
    const slora_adapter_info_t  *list;
    slora_catalog_tenant_spec_t  ts;
    const char                  *roots[1];
    char                         name[32];

    for (i = 0; i < 10; i++) {
        snprintf(dir, sizeof(dir), "%s/a%d", root, i);
        make_adapter(dir, 100 + i);
    }

    /* the reference: the same folders from the adapter directory */
    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.adapter_dir = root;
    conf.n_threads = 1;
    conf.max_batch_tokens = 64;
    conf.max_running = 16;
    conf.no_prefetch = 1;

    ref = slora_engine_init(&conf, &err);
    if (ref == NULL) {
        BAIL_OUT("reference engine: %s", err.msg);
    }

    for (i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "a%d", i);
        for (n = 0; n < NPROMPT; n++) {
            alone(ref, name, n, 8, want[i][n]);
        }
    }
    alone(ref, NULL, 0, 8, base);

    w = slora_catalog_writer_open(url, 1000, &err);
    if (!ok(w != NULL, "writer connected")) {
        BAIL_OUT("%s", err.msg);
    }

    rc = slora_catalog_register_dir(w, root, "tiny", &n, &err);
    ok(rc == SLORA_OK && n == 10, "register %s: %d adapters", root, n);

    roots[0] = root;
    e = redis_engine(roots, 1, 0, 0);
    if (e == NULL) {
        BAIL_OUT("redis engine: %s", err.msg);
    }

    /* (a) resolve through the engine */
    id = 0;
    for (i = 0; i < 8; i++) {
        snprintf(name, sizeof(name), "a%d", i);
        is_int(submit(e, id + i, NULL, name, i, 8, &err), SLORA_OK,
               "submit a%d (resolving)", i);
    }
    slora_engine_stats(e, &st);
    ok(st.resolving == 8, "8 requests wait on the catalog");
    run_ids(e, 0, 8, 3000);
    bad = 0;
    for (i = 0; i < 8; i++) {
        bad += !s.done[i] || !same((uint64_t) i, want[i][i], 8);
    }
    is_int(bad, 0, "8 adapters from Redis give the tokens of the same "
           "folders alone");
    ok(!same(0, base, 8), "and differ from the base model");

    submit(e, 20, NULL, "nope", 0, 4, &err);
    run_ids(e, 20, 21, 2000);
    ok(s.code[20] == SLORA_ERRCODE_NOT_FOUND
       && strstr(s.error[20], "unknown adapter \"nope\"") != NULL,
       "unknown adapter: NOT_FOUND (%s)", s.error[20]);
    rc = submit(e, 21, NULL, "nope", 0, 4, &err);
    ok(rc == SLORA_DECLINED
       && slora_engine_errcode(rc) == SLORA_ERRCODE_NOT_FOUND,
       "asked again: refused at submit from the cache");
    rc = submit(e, 22, NULL, "a..b", 0, 4, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "refused") != NULL,
       "a..b: %s", err.msg);

    /* a request cancelled while its adapter is still being resolved:
     * one cancel takes, a second is declined, and the step ends it as
     * cancelled, with no token and not with the lookup's NOT_FOUND */
    is_int(submit(e, 23, NULL, "never-registered", 0, 8, &err), SLORA_OK,
           "submit an adapter not asked for before");
    slora_engine_stats(e, &st);
    is_int(st.resolving, 1, "its request waits on the catalog");
    is_int(slora_engine_cancel(e, 23), SLORA_OK, "cancel while resolving");
    is_int(slora_engine_cancel(e, 23), SLORA_DECLINED,
           "a second cancel of it is declined");
    run_ids(e, 23, 24, 2000);
    slora_engine_stats(e, &st);
    ok(s.done[23] && s.finish[23] == SLORA_FINISH_CANCEL && s.n[23] == 0
       && s.code[23] == 0 && st.resolving == 0 && st.waiting == 0,
       "it ends as cancelled, no token, no error, nothing left waiting");

    /* (b) tenants */
    memset(&ts, 0, sizeof(ts));
    ts.name = "t1";
    ts.default_adapter = "a2";
    ts.allowed = (const char *const[]) { "a3" };
    ts.n_allowed = 1;
    ts.priority = 5;
    ts.ttft_slo_ms = 2000;
    ts.max_tokens = 6;
    ts.rate = -1;
    ok(slora_catalog_set_tenant(w, &ts, &err) == SLORA_OK, "tenant t1");

    submit(e, 30, "t1", NULL, 2, 6, &err);
    submit(e, 31, "t1", "default", 2, 6, &err);
    submit(e, 32, "t1", "a3", 3, 6, &err);
    submit(e, 33, "t1", "a4", 4, 6, &err);
    submit(e, 34, "nobody", NULL, 0, 4, &err);
    submit(e, 35, "t1", "a2", 2, 8, &err);
    run_ids(e, 30, 36, 3000);
    ok(same(30, want[2][2], 6) && same(31, want[2][2], 6),
       "tenant without adapter, and \"default\": its default a2");
    ok(same(32, want[3][3], 6), "an allowed adapter: a3");
    ok(s.code[33] == SLORA_ERRCODE_FORBIDDEN
       && strcmp(s.error[33], "adapter a4 is not allowed for tenant t1")
          == 0, "a4: FORBIDDEN: %s", s.error[33]);
    ok(s.code[34] == SLORA_ERRCODE_FORBIDDEN
       && strstr(s.error[34], "unknown tenant \"nobody\"") != NULL,
       "unknown tenant: FORBIDDEN: %s", s.error[34]);
    ok(s.n[35] == 6 && s.finish[35] == SLORA_FINISH_LENGTH
       && same(35, want[2][2], 6), "max_tokens 8 clamped to the tenant's 6");
    rc = submit(e, 36, "t1", "a4", 4, 6, &err);
    ok(rc == SLORA_FORBIDDEN
       && slora_engine_errcode(rc) == SLORA_ERRCODE_FORBIDDEN,
       "cached tenant: refused at submit");
    rc = submit(e, 37, "t1", "base", 0, 6, &err);
    ok(rc == SLORA_FORBIDDEN
       && strcmp(err.msg, "the base model is not allowed for tenant t1 (its "
                 "models are its adapters)") == 0,
       "\"base\" under a tenant with a default adapter: FORBIDDEN: %s",
       err.msg);

    test_tenant_rate(e, w, base);

    /* admin */
    is_int(slora_engine_adapter_pin(e, "a0", &err), SLORA_OK, "pin a0");
    is_int(slora_engine_adapter_unload(e, "a0", &err), SLORA_BUSY,
           "unload pinned: busy (%s)", err.msg);
    n = slora_engine_adapter_list(e, NULL, 0, &list);
    got = -1;
    for (i = 0; i < n; i++) {
        if (strcmp(list[i].name, "a0") == 0) {
            got = i;
        }
    }
    ok(got >= 0 && list[got].pinned && strcmp(list[got].tier, "pool") == 0
       && list[got].rank == 8 && list[got].pool_pages > 0,
       "list: a0 pinned in the pool, rank 8 (%d adapters listed)", n);
    is_int(slora_engine_adapter_unpin(e, "a0", &err), SLORA_OK, "unpin");
    is_int(slora_engine_adapter_unload(e, "a0", &err), SLORA_OK, "unload");
    n = slora_engine_adapter_list(e, NULL, 0, &list);
    ok(strcmp(list[got].tier, "disk") == 0, "a0 back on disk only");
    is_int(slora_engine_adapter_load(e, "a0", &err), SLORA_OK, "load");
    n = slora_engine_adapter_list(e, NULL, 0, &list);
    ok(strcmp(list[got].tier, "pool") == 0 && !list[got].pinned,
       "a0 in the pool, not pinned");

    rcmd("SADD slora:pinned %s", "a1", NULL);
    slora_catalog_publish(w, "hints", &err);
    t0 = slora_now_ns();
    got = 0;
    while (!got && slora_now_ns() - t0 < 2000000000) {
        slora_engine_step(e, on_event, &s);
        usleep(5000);
        slora_engine_stats(e, &st);
        got = st.adapters_pinned == 1;
    }
    ok(got, "slora:pinned hint: a1 pinned after %.0f ms",
       (double) (slora_now_ns() - t0) / 1e6);

    /* the hint's set changes: the engine unpins only what left it, and
     * never a pin the admin holds */
    rcmd("SADD slora:pinned %s", "a2", NULL);
    ok(hints_until(e, w, "a2", 1) && pinned(e, "a1") == 1,
       "hint a2 added: a1 and a2 pinned");
    rcmd("SREM slora:pinned %s", "a1", NULL);
    ok(hints_until(e, w, "a1", 0) && pinned(e, "a2") == 1,
       "hint a1 removed: a1 unpinned, a2 still pinned");
    is_int(slora_engine_adapter_pin(e, "a3", &err), SLORA_OK,
           "admin pins a3");
    rcmd("SADD slora:pinned %s %s", "a3", "a4");
    ok(hints_until(e, w, "a4", 1) && pinned(e, "a3") == 1,
       "hints a3 (pinned by the admin) and a4 added: both pinned");
    rcmd("SREM slora:pinned %s %s", "a3", "a4");
    ok(hints_until(e, w, "a4", 0) && pinned(e, "a3") == 1,
       "hints a3 and a4 removed: a4 unpinned, the admin's a3 kept");
    is_int(slora_engine_adapter_unpin(e, "a2", &err), SLORA_OK,
           "admin unpins the hinted a2");
    is_int(slora_engine_adapter_pin(e, "a2", &err), SLORA_OK,
           "and pins it as the admin's");
    rcmd("SREM slora:pinned %s", "a2", NULL);
    rcmd("SADD slora:pinned %s", "a5", NULL);
    ok(hints_until(e, w, "a5", 1) && pinned(e, "a2") == 1,
       "hint a2 removed after that: the admin's pin of a2 kept");
    rcmd("DEL slora:pinned", NULL, NULL);
    ok(hints_until(e, w, "a5", 0)
       && slora_engine_adapter_unpin(e, "a2", &err) == SLORA_OK
       && slora_engine_adapter_unpin(e, "a3", &err) == SLORA_OK,
       "hints cleared, the admin's pins undone");
    slora_engine_stats(e, &st);
    is_int(st.adapters_pinned, 0, "nothing pinned");

    /* uses counted toward slora:popular: a request's, once; not the
     * hints' lookups (a5: one request above, then hinted for seconds)
     * nor the admin's */
    for (t0 = slora_now_ns(); slora_now_ns() - t0 < 400000000; ) {
        slora_engine_step(e, on_event, &s);
        usleep(5000);
    }
    is_int(zscore("a5"), 1, "a5, asked for once then hinted: one use");
    got = zscore("a3");
    submit(e, 37, NULL, "a3", 3, 4, &err);
    run_ids(e, 37, 38, 3000);
    for (t0 = slora_now_ns(); slora_now_ns() - t0 < 400000000; ) {
        slora_engine_step(e, on_event, &s);
        usleep(5000);
    }
    is_int(zscore("a3") - got, 1, "one request for a3: one use more");

    /* (c) a change of default takes effect without restart */
    ts.default_adapter = "a5";
    ts.n_allowed = -1;
    ts.priority = INT32_MIN;
    ts.ttft_slo_ms = INT32_MIN;
    ts.max_tokens = INT32_MIN;
    slora_catalog_set_tenant(w, &ts, &err);
    t0 = slora_now_ns();
    got = 0;
    for (id = 40; id < 140 && !got; id++) {
        submit(e, id, "t1", NULL, 5, 6, &err);
        run_ids(e, id, id + 1, 1000);
        got = same(id, want[5][5], 6);
    }
    t1 = slora_now_ns() - t0;
    ok(got && t1 < 1000000000, "t1's new default a5 served %.1f ms after "
       "the change", (double) t1 / 1e6);

    /* (d) Redis stopped */
    kill(redis_pid, SIGSTOP);
    max_step_ns = 0;
    submit(e, 200, "t1", NULL, 5, 6, &err);
    submit(e, 201, NULL, "a8", 8, 6, &err);
    t0 = slora_now_ns();
    run_ids(e, 200, 202, 3000);
    t1 = slora_now_ns() - t0;
    ok(s.done[200] && same(200, want[5][5], 6),
       "Redis stopped: cached tenant t1 served");
    ok(s.code[201] == SLORA_ERRCODE_UNAVAILABLE
       && strstr(s.error[201], "catalog unavailable: redis 127.0.0.1:")
          != NULL && t1 < 2000000000,
       "a8, never read: UNAVAILABLE after %.0f ms: %s", (double) t1 / 1e6,
       s.error[201]);
    rc = submit(e, 202, NULL, "a9", 9, 6, &err);
    ok(rc == SLORA_UNAVAILABLE
       && slora_engine_errcode(rc) == SLORA_ERRCODE_UNAVAILABLE,
       "then refused at once: %s", err.msg);

    kill(redis_pid, SIGKILL);
    waitpid(redis_pid, NULL, 0);
    redis_pid = -1;

    served = 0;
    unavailable = 0;
    for (i = 0; i < 20; i++) {
        id = 210 + i;
        if (i % 2 == 0) {
            submit(e, id, "t1", "a3", 3, 6, &err);
        } else {
            snprintf(name, sizeof(name), "x%d", i);
            rc = submit(e, id, NULL, name, 0, 4, &err);
            if (rc != SLORA_OK) {
                unavailable += rc == SLORA_UNAVAILABLE;
                s.done[id] = 1;
                snprintf(s.error[id], sizeof(s.error[id]), "%s", err.msg);
            }
        }
        run_ids(e, id, id + 1, 2000);
        served += i % 2 == 0 && same(id, want[3][3], 6);
        unavailable += i % 2 == 1 && s.code[id] == SLORA_ERRCODE_UNAVAILABLE;
        usleep(20000);
    }
    worst = max_step_ns;
    ok(served == 10 && unavailable == 10, "Redis killed: 10 of 10 cached "
       "served, 10 of 10 unknown UNAVAILABLE (last: %s)", s.error[229]);
    ok(strstr(s.error[229], "Connection refused") != NULL
       || strstr(s.error[229], "timed out") != NULL,
       "the error names the cause");
    ok(worst < 100000000, "no step blocked on Redis: longest %.2f ms",
       (double) worst / 1e6);

    /* restarted, empty: register again; changes flow */
    if (!ok(redis_start(tmp) == 0, "redis-server restarted")) {
        BAIL_OUT("cannot restart redis-server");
    }
    slora_catalog_writer_close(w);
    w = slora_catalog_writer_open(url, 1000, &err);
    if (w == NULL) {
        BAIL_OUT("writer: %s", err.msg);
    }
    slora_catalog_register_dir(w, root, "tiny", &n, &err);
    ts.default_adapter = "a6";
    ts.n_allowed = 0;
    ts.max_tokens = 0;
    slora_catalog_set_tenant(w, &ts, &err);
    t0 = slora_now_ns();
    got = 0;
    for (id = 240; id < 400 && !got; id++) {
        submit(e, id, "t1", NULL, 6, 6, &err);
        run_ids(e, id, id + 1, 1000);
        got = same(id, want[6][6], 6);
        if (!got) {
            usleep(30000);
        }
    }
    slora_engine_stats(e, &st);
    ok(got && st.catalog_reconnects >= 1, "after the restart t1's new "
       "default a6 is served within %.0f ms (%llu reconnections)",
       (double) (slora_now_ns() - t0) / 1e6,
       (unsigned long long) st.catalog_reconnects);

    /* (e) broken weights fail their own request only */
    snprintf(dir, sizeof(dir), "%s/gone", root);
    make_adapter(dir, 900);
    snprintf(dir, sizeof(dir), "%s/junk", root);
    make_adapter(dir, 901);
    snprintf(dir, sizeof(dir), "%s/sham", root);
    make_adapter(dir, 902);
    snprintf(dir, sizeof(dir), "%s/gone", root);
    slora_catalog_register(w, "gone", dir, "tiny", &err);
    snprintf(dir, sizeof(dir), "%s/sham", root);
    slora_catalog_register(w, "sham", dir, "tiny", &err);
    snprintf(dir, sizeof(dir), "%s/junk", root);
    rcmd("HSET slora:adapter:junk path %s", dir, NULL);

    snprintf(path, sizeof(path), "%s/gone/adapter_model.safetensors", root);
    unlink(path);
    snprintf(path, sizeof(path), "%s/junk/adapter_model.safetensors", root);
    f = fopen(path, "r+b");
    if (f != NULL) {
        fwrite("\xff\xff\xff\xff\xff\xff\xff\x7f{{{{", 1, 12, f);
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s/sham/adapter_model.safetensors", root);
    f = fopen(path, "r+b");
    if (f != NULL) {
        fseek(f, -4, SEEK_END);
        fwrite("\0\0\0\0", 1, 4, f);
        fclose(f);
    }

    submit(e, 500, NULL, "gone", 0, 6, &err);
    submit(e, 501, NULL, "junk", 0, 6, &err);
    submit(e, 502, NULL, "sham", 0, 6, &err);
    submit(e, 503, NULL, "a4", 4, 6, &err);
    run_ids(e, 500, 504, 3000);
    ok(s.code[500] == SLORA_ERRCODE_INTERNAL
       && strstr(s.error[500], "gone/adapter_model.safetensors") != NULL,
       "deleted weights: %s", s.error[500]);
    ok(s.code[501] == SLORA_ERRCODE_INTERNAL
       && strstr(s.error[501], "junk/adapter_model.safetensors") != NULL,
       "corrupted weights: %s", s.error[501]);
    ok(s.code[502] == SLORA_ERRCODE_INTERNAL
       && strstr(s.error[502], "sha256") != NULL
       && strstr(s.error[502], "refused") != NULL,
       "sha256 mismatch: %s", s.error[502]);
    ok(s.done[503] && same(503, want[4][4], 6), "the other request is "
       "unaffected");

    /* path confinement */
    snprintf(dir, sizeof(dir), "%s/outside", tmp);
    make_adapter(dir, 903);
    snprintf(path, sizeof(path), "%s/../outside", root);
    rcmd("HSET slora:adapter:dotdot path %s", path, NULL);
    rcmd("HSET slora:adapter:abs path %s", dir, NULL);
    snprintf(link, sizeof(link), "%s/link", root);
    if (symlink(dir, link) != 0) {
        diag("symlink: %s", strerror(errno));
    }
    rcmd("HSET slora:adapter:sym path %s", link, NULL);
    rcmd("HSET slora:adapter:rel path %s", "a1", NULL);

    submit(e, 510, NULL, "dotdot", 0, 4, &err);
    submit(e, 511, NULL, "abs", 0, 4, &err);
    submit(e, 512, NULL, "sym", 0, 4, &err);
    submit(e, 513, NULL, "rel", 0, 4, &err);
    run_ids(e, 510, 514, 3000);
    for (i = 510; i < 514; i++) {
        ok(s.code[i] == SLORA_ERRCODE_NOT_FOUND && !s.done[i]
           && strstr(s.error[i], "refused") != NULL, "%s",
           s.error[i]);
    }

    slora_engine_free(e);
    slora_engine_free(ref);
    slora_catalog_writer_close(w);

    /* the directory source leaves the symlink out, and refuses it */
    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.adapter_dir = root;
    conf.n_threads = 1;
    snprintf(ref_dir, sizeof(ref_dir), "%s/link", root);
    ref = slora_engine_init(&conf, &err);
    ok(ref != NULL && submit(ref, 1, NULL, "link", 0, 4, &err) != SLORA_OK
       && strstr(err.msg, "outside the adapter roots") != NULL,
       "directory source: %s", err.msg);
    slora_engine_free(ref);
}


/*
 * A tenant's rate (t2: 2 requests a second, no default adapter, so the
 * base model is its own): of four requests at once the first two go,
 * the third is refused with the rate's error and the time to the next
 * request, a request's later choice (rate_free) goes regardless, and the
 * wait told is enough: asked again after it, the request goes. The base
 * model by name and by default give the base model's tokens.
 */
static void
test_tenant_rate(slora_engine_t *e, slora_catalog_writer_t *w,
    const int32_t *base)
{
    int                          rc;
    int32_t                      wait_ms;
    slora_err_t                  err;
    slora_request_t              req;
    slora_engine_stats_t         st;
    slora_catalog_tenant_spec_t  ts;

    memset(&ts, 0, sizeof(ts));
    ts.name = "t2";
    ts.allowed = (const char *const[]) { "a3" };
    ts.n_allowed = 1;
    ts.rate = 2;
    ok(slora_catalog_set_tenant(w, &ts, &err) == SLORA_OK,
       "tenant t2: 2 requests a second");

    submit(e, 40, "t2", "base", 0, 8, &err);
    submit(e, 41, "t2", NULL, 0, 8, &err);
    submit(e, 42, "t2", "a3", 3, 6, &err);

    memset(&req, 0, sizeof(req));
    req.id = 43;
    req.tenant = "t2";
    req.adapter = "a3";
    req.prompt = prompts[3];
    req.n_prompt = n_prompts[3];
    req.sampling.top_p = 1;
    req.sampling.repeat_penalty = 1;
    req.sampling.max_tokens = 6;
    req.rate_free = 1;
    slora_engine_submit(e, &req, &err);

    run_ids(e, 40, 44, 3000);
    ok(s.done[40] && same(40, base, 8) && s.done[41] && same(41, base, 8),
       "\"base\" and no adapter under t2 (no default): the base model");
    ok(s.code[42] == SLORA_ERRCODE_RATE
       && strcmp(s.error[42], "tenant t2 is over its rate (2 "
                 "requests/s)") == 0,
       "the third at once: RATE: %s", s.error[42]);
    wait_ms = s.retry_ms[42];
    ok(wait_ms > 0 && wait_ms <= 500, "told to ask again within 500 ms "
       "(%d)", wait_ms);
    ok(s.done[43] && s.code[43] == 0 && s.n[43] == 6,
       "a request's later choice is not counted: it runs");

    rc = submit(e, 44, "t2", "a3", 3, 6, &err);
    ok(rc == SLORA_LIMITED && slora_engine_errcode(rc) == SLORA_ERRCODE_RATE
       && err.retry_ms > 0 && err.retry_ms <= wait_ms,
       "asked again at once: refused at submit, told %d ms", err.retry_ms);

    usleep((useconds_t) err.retry_ms * 1000);
    is_int(submit(e, 45, "t2", "a3", 3, 6, &err), SLORA_OK,
           "after the wait told: it goes");
    run_ids(e, 45, 46, 3000);
    ok(s.done[45] && s.n[45] == 6, "and runs");

    slora_engine_stats(e, &st);
    is_int((int) st.rate_limited, 2, "the engine counts 2 refused by rate");

    /* a rate the engine would refuse to read is refused before any
     * write: t3 is not made, t2 keeps its rate */
    ts.name = "t3";
    ts.rate = INFINITY;
    rc = slora_catalog_set_tenant(w, &ts, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "rate inf is not a number")
       != NULL, "a rate of inf: refused (%s)", err.msg);
    ts.name = "t2";
    ts.rate = NAN;
    rc = slora_catalog_set_tenant(w, &ts, &err);
    ok(rc == SLORA_ERROR, "a rate of NaN: refused (%s)", err.msg);
    is_int(submit(e, 46, "t3", NULL, 0, 4, &err), SLORA_OK,
           "a request for t3");
    run_ids(e, 46, 47, 3000);
    ok(s.code[46] == SLORA_ERRCODE_FORBIDDEN
       && strstr(s.error[46], "unknown tenant") != NULL,
       "t3 was never made: %s", s.error[46]);
}


static void
test_many(void)
{
    int                     i, j, n, bad, sample, got;
    char                    many[400], dir[500];
    int32_t                 want[MAXGEN], mt[MAXREQ], pr[MAXREQ];
    int64_t                 t0;
    size_t                  host, max_host, one;
    uint64_t                id, next;
    double                  u, arrivals;
    slora_err_t             err;
    slora_rng_t             rng;
    slora_engine_t         *e, *ref;
    const char             *roots[1];
    slora_engine_conf_t     conf;
    slora_adapter_gen_t     gen;
    slora_engine_stats_t    st;
    slora_catalog_writer_t *w;
    static char             names[MAXREQ][8];

    snprintf(many, sizeof(many), "%s/many", tmp);
    mkdir(many, 0755);

    memset(&gen, 0, sizeof(gen));
    gen.rank = 8;
    gen.alpha = 16;
    gen.proj_mask = (1u << SLORA_PROJ_Q) | (1u << SLORA_PROJ_V);
    gen.scale = 1.0f;

    t0 = slora_now_ns();
    for (i = 0; i < 2000; i++) {
        snprintf(dir, sizeof(dir), "%s/m%04d", many, i);
        gen.seed = 7000 + i;
        if (slora_adapter_write_random(dir, &mcfg, &gen, &err) != SLORA_OK) {
            BAIL_OUT("%s", err.msg);
        }
    }

    w = slora_catalog_writer_open(url, 2000, &err);
    if (w == NULL) {
        BAIL_OUT("writer: %s", err.msg);
    }
    ok(slora_catalog_register_dir(w, many, "tiny", &n, &err) == SLORA_OK
       && n == 2000, "2000 adapters written and registered in %.2f s",
       (double) (slora_now_ns() - t0) / 1e9);
    slora_catalog_writer_close(w);

    /* rank 8 on q, v: 4 pages of 512 a layer; host tier: 20 adapters;
     * pool: 264 pages, about 50 adapters beside the KV cache */
    one = 4 * 512 * 4 * (size_t) mcfg.n_layers;
    roots[0] = many;
    e = redis_engine(roots, 1, 20 * one, (size_t) 264 * 512 * 4
                                         * (size_t) mcfg.n_layers);
    if (!ok(e != NULL, "engine over the Redis catalog")) {
        return;
    }

    memset(&s, 0, sizeof(s));
    slora_rng_seed(&rng, 77);
    id = 0;
    next = 0;
    max_host = 0;
    arrivals = 0;
    t0 = slora_now_ns();

    /* Poisson arrivals, 3 a step on average; popularity power(0.3) */
    while ((id < 600 || next < id) && slora_now_ns() - t0 < 40000000000LL) {
        arrivals += -log(1 - slora_rng_uniform(&rng)) / 3;
        while (arrivals < 1 && id < 600) {
            u = slora_rng_uniform(&rng);
            j = (int) (2000 * pow(u, 1 / 0.3));
            snprintf(names[id], sizeof(names[id]), "m%04d", j);
            pr[id] = (int32_t) (slora_rng_next(&rng) % NPROMPT);
            mt[id] = 2 + (int32_t) (slora_rng_next(&rng) % 5);
            if (submit(e, id, NULL, names[id], pr[id], mt[id], &err)
                != SLORA_OK)
            {
                diag("submit %llu: %s", (unsigned long long) id, err.msg);
            }
            id++;
            arrivals += -log(1 - slora_rng_uniform(&rng)) / 3;
        }
        arrivals -= 1;

        if (slora_engine_step(e, on_event, &s) == SLORA_AGAIN) {
            struct pollfd  pfd = { slora_engine_wake_fd(e), POLLIN, 0 };
            poll(&pfd, 1, 10);
        }

        slora_engine_stats(e, &st);
        host = st.host_bytes;
        max_host = host > max_host ? host : max_host;

        while (next < id && (s.done[next] || s.code[next] != 0)) {
            next++;
        }
    }

    slora_engine_stats(e, &st);
    diag("%llu steps in %.2f s; host: %llu hits, %llu misses, %llu "
         "evictions, %llu prefetched; pool: %llu hits, %llu uploads, %llu "
         "evictions; catalog: %llu fetches", (unsigned long long) st.steps,
         (double) (slora_now_ns() - t0) / 1e9,
         (unsigned long long) st.host_hits,
         (unsigned long long) st.host_misses,
         (unsigned long long) st.host_evictions,
         (unsigned long long) st.prefetched,
         (unsigned long long) st.adapter_hits,
         (unsigned long long) st.adapter_uploads,
         (unsigned long long) st.adapter_evictions,
         (unsigned long long) st.catalog_fetches);

    bad = 0;
    for (i = 0; i < 600; i++) {
        bad += !s.done[i] || s.finish[i] != SLORA_FINISH_LENGTH
               || s.n[i] != mt[i];
    }
    is_int(s.errors, 0, "no request failed");
    is_int(bad, 0, "600 requests over 2000 adapters completed");
    ok(st.adapter_evictions > 0 && st.host_evictions > 0,
       "both tiers evicted (pool %llu, host %llu)",
       (unsigned long long) st.adapter_evictions,
       (unsigned long long) st.host_evictions);
    ok(max_host <= 20 * one + one, "host tier within its budget: at most "
       "%zu bytes of %zu", max_host, 20 * one);
    ok(st.pages_kv == 0
       && st.pages_free + st.pages_adapter + st.pages_cached
          == st.pages_total
       && st.pages_cached == st.prefix_pages,
       "the pool holds only idle adapters and the prefix cache's idle "
       "pages at the end (%d)", st.pages_cached);

    /* a sample against each adapter alone, from the directory */
    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.adapter_dir = many;
    conf.n_threads = 1;
    conf.no_prefetch = 1;
    ref = slora_engine_init(&conf, &err);
    if (ref == NULL) {
        BAIL_OUT("reference: %s", err.msg);
    }

    sample = 0;
    got = 0;
    for (i = 0; i < 600; i += 20) {
        n = alone(ref, names[i], pr[i], mt[i], want);
        got += n == s.n[i] && same((uint64_t) i, want, n);
        sample++;
    }
    is_int(got, sample, "a sample of %d equals each adapter alone (greedy)",
           sample);

    slora_engine_free(ref);
    slora_engine_free(e);
}


/* name's score in slora:popular (0: none). */
static int
zscore(const char *name)
{
    int            v;
    redisReply    *r;
    redisContext  *c;

    c = redis();
    if (c == NULL) {
        return -1;
    }

    r = redisCommand(c, "ZSCORE slora:popular %s", name);
    v = r != NULL && r->type == REDIS_REPLY_STRING ? atoi(r->str) : 0;

    if (r != NULL) {
        freeReplyObject(r);
    }

    redisFree(c);

    return v;
}


/* A lookup polled until it is no longer SLORA_AGAIN (10 ms apart). */
static int
settle(slora_catalog_t *cat, const char *name, int tries, slora_err_t *err)
{
    int                       rc, i;
    slora_catalog_adapter_t  *ad;

    rc = SLORA_AGAIN;

    for (i = 0; i < tries && rc == SLORA_AGAIN; i++) {
        slora_catalog_poll(cat);
        rc = slora_catalog_adapter(cat, name, &ad, err);

        if (rc == SLORA_AGAIN) {
            usleep(10000);
        }
    }

    return rc;
}


/*
 * A Redis that is up but answers errors for a while (a script running
 * past busy-reply-threshold; LOADING after a restart is the same kind of
 * reply) is the catalog unavailable: what was read before is served, a
 * new name is not cached as refused, the hints stay. The script killed,
 * every name resolves again.
 */
static void
test_busy(void)
{
    int                           i, rc;
    char                          d0[400], d1[400], p[16];
    pid_t                         busy;
    const char                   *roots[1];
    slora_err_t                   err;
    slora_catalog_t              *cat;
    slora_catalog_conf_t          cc;
    const slora_catalog_hints_t  *h;

    snprintf(d0, sizeof(d0), "%s/busy0", root);
    snprintf(d1, sizeof(d1), "%s/busy1", root);
    mkdir(d0, 0755);
    mkdir(d1, 0755);
    rcmd("HSET slora:adapter:busy0 path %s", d0, NULL);
    rcmd("HSET slora:adapter:busy1 path %s", d1, NULL);
    rcmd("DEL slora:pinned", NULL, NULL);
    rcmd("SADD slora:pinned %s", "busy0", NULL);
    rcmd("CONFIG SET busy-reply-threshold %s", "10", NULL);

    memset(&cc, 0, sizeof(cc));
    roots[0] = root;
    cc.redis_url = url;
    cc.roots = roots;
    cc.n_roots = 1;
    cc.hint_interval_ms = 100;
    cc.wake_fd = -1;

    cat = slora_catalog_create(&cc, &err);
    if (!ok(cat != NULL, "busy: a catalog: %s", cat ? "" : err.msg)) {
        return;
    }

    h = slora_catalog_hints(cat);
    is_int(settle(cat, "busy0", 300, &err), SLORA_OK, "busy: busy0 read");

    for (rc = 0; rc < 300 && h->n_pinned == 0; rc++) {
        slora_catalog_poll(cat);
        usleep(10000);
    }

    is_int(h->n_pinned, 1, "busy: the pinned hint read");

    /* an invalidation, then a script that keeps the server busy */
    rcmd("PUBLISH slora:events %s", "adapter busy0", NULL);
    usleep(100000);
    snprintf(p, sizeof(p), "%d", redis_port);
    busy = fork();
    if (busy == 0) {
        execlp("redis-cli", "redis-cli", "-p", p, "EVAL",
               "while true do end", "0", (char *) NULL);
        _exit(127);
    }
    usleep(300000);

    rc = settle(cat, "busy1", 300, &err);
    ok(rc == SLORA_UNAVAILABLE, "busy: a new name is unavailable, not"
       " refused: %d %s", rc, err.msg);
    usleep(300000);
    rc = settle(cat, "busy0", 300, &err);
    ok(rc == SLORA_OK, "busy: busy0, read before, still served: %d %s", rc,
       rc == SLORA_OK ? "" : err.msg);
    is_int(h->n_pinned, 1, "busy: the hints kept");

    rcmd("SCRIPT KILL", NULL, NULL);
    waitpid(busy, NULL, 0);

    /* the reconnect's back-off: within 10 s */
    for (i = 0; i < 100; i++) {
        rc = settle(cat, "busy1", 100, &err);

        if (rc == SLORA_OK) {
            break;
        }

        usleep(100000);
    }

    ok(rc == SLORA_OK, "busy: the script killed, busy1 resolves: %d %s", rc,
       rc == SLORA_OK ? "" : err.msg);
    is_int(settle(cat, "busy0", 300, &err), SLORA_OK, "busy: and busy0");

    rcmd("CONFIG SET busy-reply-threshold %s", "5000", NULL);

    /* a flood of names never seen: 1024 reads out at once, the rest
     * unavailable at once (not queued); answered, new reads go out */
    {
        char                      name[32];
        int                       again, refused;
        slora_catalog_adapter_t  *ad;

        again = 0;
        refused = 0;

        for (i = 0; i < 1100; i++) {
            snprintf(name, sizeof(name), "flood%d", i);
            rc = slora_catalog_adapter(cat, name, &ad, &err);
            again += rc == SLORA_AGAIN;
            refused += rc == SLORA_UNAVAILABLE
                       && strstr(err.msg, "catalog busy") != NULL;
        }

        ok(again == 1024 && refused == 76, "a flood of 1100 new names: 1024"
           " read, 76 unavailable at once (%d, %d)", again, refused);

        for (i = 0; i < 500 && settle(cat, "flood1099", 1, &err)
                               != SLORA_DECLINED; i++)
        {
            usleep(10000);
        }

        is_int(settle(cat, "flood1099", 300, &err), SLORA_DECLINED,
               "the reads answered, a new name is read again: unknown");
    }

    /* bad data: an alpha that is no finite number is refused; the
     * writer says so when a key of another type fails its transaction */
    {
        slora_catalog_writer_t  *w;

        rcmd("HSET slora:adapter:busy2 path %s alpha inf", d0, NULL);
        rc = settle(cat, "busy2", 300, &err);
        ok(rc == SLORA_ERROR && strstr(err.msg, "alpha") != NULL,
           "alpha inf: refused: %s", err.msg);

        make_adapter(d1, 77);
        rcmd("SET slora:adapter:busy3 %s", "a-string", NULL);
        w = slora_catalog_writer_open(url, 1000, &err);
        rc = w != NULL ? slora_catalog_register(w, "busy3", d1, "tiny", &err)
                       : SLORA_ERROR;
        ok(rc == SLORA_ERROR && strstr(err.msg, "WRONGTYPE") != NULL,
           "register over a key of another type: an error: %s", err.msg);

        if (w != NULL) {
            slora_catalog_writer_close(w);
        }
    }

    /* a name with a NUL byte is no name: a tenant's set member "busy0\0x"
     * does not allow busy0, a default "busy0\0x" refuses the tenant */
    {
        redisReply                    *r;
        redisContext                  *c;
        slora_catalog_tenant_t        *t;

        c = redis();
        if (c != NULL) {
            r = redisCommand(c, "HSET slora:tenant:nul1 default_adapter "
                             "busy1");
            freeReplyObject(r);
            r = redisCommand(c, "SADD slora:tenant:nul1:adapters %b",
                             "busy0\0x", (size_t) 7);
            freeReplyObject(r);
            r = redisCommand(c, "HSET slora:tenant:nul2 default_adapter %b",
                             "busy0\0x", (size_t) 7);
            freeReplyObject(r);
            redisFree(c);
        }

        for (i = 0, rc = SLORA_AGAIN; i < 300 && rc == SLORA_AGAIN; i++) {
            slora_catalog_poll(cat);
            rc = slora_catalog_tenant(cat, "nul1", &t, &err);
            usleep(rc == SLORA_AGAIN ? 10000 : 0);
        }

        ok(rc == SLORA_OK && !slora_catalog_tenant_allows(t, "busy0")
           && slora_catalog_tenant_allows(t, "busy1"),
           "a set member with a NUL byte allows no adapter: %d %s", rc,
           rc == SLORA_OK ? "" : err.msg);

        for (i = 0, rc = SLORA_AGAIN; i < 300 && rc == SLORA_AGAIN; i++) {
            slora_catalog_poll(cat);
            rc = slora_catalog_tenant(cat, "nul2", &t, &err);
            usleep(rc == SLORA_AGAIN ? 10000 : 0);
        }

        ok(rc == SLORA_ERROR && strstr(err.msg, "NUL") != NULL,
           "a default_adapter with a NUL byte: refused: %d %s", rc,
           rc == SLORA_OK ? t->default_adapter : err.msg);
    }

    slora_catalog_free(cat);
}


static slora_engine_t *
redis_engine(const char *const *roots, int n_roots, size_t host, size_t pool)
{
    slora_err_t          err;
    slora_engine_t      *e;
    slora_engine_conf_t  conf;

    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.redis_url = url;
    conf.adapter_roots = roots;
    conf.n_adapter_roots = n_roots;
    conf.redis_connect_timeout_ms = 200;
    conf.redis_timeout_ms = 200;
    conf.hint_interval_ms = 300;
    conf.n_threads = 1;
    conf.max_batch_tokens = 128;
    conf.max_running = 16;
    conf.host_cache_bytes = host;
    conf.pool_bytes = pool;

    e = slora_engine_init(&conf, &err);
    if (e == NULL) {
        diag("engine: %s", err.msg);
    }

    return e;
}


/* A raw command with up to two string arguments. */
static void
rcmd(const char *fmt, const char *a, const char *b)
{
    redisReply    *r;
    redisContext  *c;

    c = redis();
    if (c == NULL) {
        diag("redis: cannot connect");
        return;
    }

    r = redisCommand(c, fmt, a, b);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        diag("redis: %s: %s", fmt, r != NULL ? r->str : c->errstr);
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    redisFree(c);
}


static void
on_event(void *data, const slora_event_t *ev)
{
    sink_t  *sk = data;

    if (ev->id >= MAXREQ) {
        return;
    }

    switch (ev->type) {

    case SLORA_EV_TOKEN:
        if (sk->n[ev->id] < MAXGEN) {
            sk->tokens[ev->id][sk->n[ev->id]++] = ev->token;
        }
        break;

    case SLORA_EV_DONE:
        sk->done[ev->id] = 1;
        sk->finish[ev->id] = ev->finish;
        break;

    case SLORA_EV_ERROR:
        sk->errors++;
        sk->code[ev->id] = ev->code;
        sk->retry_ms[ev->id] = ev->retry_after_ms;
        snprintf(sk->error[ev->id], sizeof(sk->error[ev->id]), "%s",
                 ev->error);
        break;

    case SLORA_EV_SCORE:
        /* none of its requests asks for a prompt's log-probabilities */
        break;
    }
}


static int
submit(slora_engine_t *e, uint64_t id, const char *tenant,
    const char *adapter, int p, int max_tokens, slora_err_t *err)
{
    slora_request_t  req;

    memset(&req, 0, sizeof(req));
    req.id = id;
    req.tenant = tenant;
    req.adapter = adapter;
    req.prompt = prompts[p];
    req.n_prompt = n_prompts[p];
    req.sampling.top_p = 1;
    req.sampling.repeat_penalty = 1;
    req.sampling.max_tokens = max_tokens;

    return slora_engine_submit(e, &req, err);
}


/* Steps until each of [lo, hi) has ended; waits on the wake fd when the
 * engine has only resolving requests. Returns 1 if all ended. */
static int
run_ids(slora_engine_t *e, uint64_t lo, uint64_t hi, int timeout_ms)
{
    int            rc, all;
    int64_t        t0, t;
    uint64_t       i;
    struct pollfd  pfd;

    t0 = slora_now_ns();

    for ( ;; ) {
        all = 1;
        for (i = lo; i < hi; i++) {
            all &= s.done[i] || s.code[i] != 0;
        }

        if (all) {
            return 1;
        }

        if (slora_now_ns() - t0 > (int64_t) timeout_ms * 1000000) {
            diag("requests %llu..%llu did not end in %d ms",
                 (unsigned long long) lo, (unsigned long long) hi - 1,
                 timeout_ms);
            return 0;
        }

        t = slora_now_ns();
        rc = slora_engine_step(e, on_event, &s);
        t = slora_now_ns() - t;
        max_step_ns = t > max_step_ns ? t : max_step_ns;

        if (rc == SLORA_AGAIN || rc == SLORA_DONE) {
            pfd.fd = slora_engine_wake_fd(e);
            pfd.events = POLLIN;
            pfd.revents = 0;
            poll(&pfd, 1, 20);
        }
    }
}


/* Greedy tokens of one request run alone on ref (ids from 3900). */
static int
alone(slora_engine_t *ref, const char *adapter, int p, int max_tokens,
    int32_t *out)
{
    int          rc, n;
    slora_err_t  err;

    memset(&s.n[3900], 0, sizeof(s.n[0]));
    s.done[3900] = 0;
    s.code[3900] = 0;

    rc = submit(ref, 3900, NULL, adapter, p, max_tokens, &err);
    if (rc != SLORA_OK) {
        diag("alone %s: %s", adapter ? adapter : "base", err.msg);
        return 0;
    }

    run_ids(ref, 3900, 3901, 5000);
    n = s.n[3900];
    memcpy(out, s.tokens[3900], (size_t) n * sizeof(int32_t));

    return n;
}


static int
same(uint64_t id, const int32_t *want, int n)
{
    return s.n[id] == n
           && memcmp(s.tokens[id], want, (size_t) n * sizeof(int32_t)) == 0;
}


static void
make_adapter(const char *dir, uint64_t seed)
{
    slora_err_t          err;
    slora_adapter_gen_t  gen;

    memset(&gen, 0, sizeof(gen));
    gen.rank = 8;
    gen.alpha = 16;
    gen.proj_mask = 0x7f;
    gen.seed = seed;
    gen.scale = 1.0f;

    if (slora_adapter_write_random(dir, &mcfg, &gen, &err) != SLORA_OK) {
        BAIL_OUT("%s", err.msg);
    }
}


/* 1 if the engine lists name as pinned, 0 if not, -1 if not listed. */
static int
pinned(slora_engine_t *e, const char *name)
{
    int32_t                      i, n;
    const slora_adapter_info_t  *list;

    n = slora_engine_adapter_list(e, NULL, 0, &list);

    for (i = 0; i < n; i++) {
        if (strcmp(list[i].name, name) == 0) {
            return list[i].pinned != 0;
        }
    }

    return -1;
}


/* Publishes the hints and steps e until name's pin is want: 1 if it came
 * within 2 s. */
static int
hints_until(slora_engine_t *e, slora_catalog_writer_t *w, const char *name,
    int want)
{
    int64_t      t0;
    slora_err_t  err;

    if (slora_catalog_publish(w, "hints", &err) != SLORA_OK) {
        diag("publish: %s", err.msg);
        return 0;
    }

    t0 = slora_now_ns();

    while (slora_now_ns() - t0 < 2000000000) {
        slora_engine_step(e, on_event, &s);

        if (pinned(e, name) == want) {
            return 1;
        }

        usleep(5000);
    }

    diag("%s: pinned is not %d after 2 s", name, want);

    return 0;
}
