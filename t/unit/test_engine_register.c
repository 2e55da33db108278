/*
 * test_engine_register.c: vLLM's load_lora_adapter on the engine's side
 * (slora_engine_register_adapter), whose folder a prefetch thread reads
 * so that the engine's thread and its streams do not wait for the
 * weights. The first call hands the read out and answers SLORA_AGAIN;
 * the owner's call after it ended registers, the image read kept as the
 * adapter's host copy. Another registration waits while one's outcome
 * is out or untaken; an owner that went away has its read dropped; a
 * folder that fails to read is refused with the read's words; a path
 * that leads elsewhere by the time the read ended is read again; an
 * owner refused before its check (the folder gone meanwhile) has its
 * read dropped. An engine without prefetch threads, or whose threads'
 * loads are all out, reads the folder at the first call.
 */

#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "tiny_model.h"
#include "slora_engine_int.h"


#define MAXCTX   256


static char                   tmp[256];
static char                   model[300];
static char                   root[400];
static slora_model_config_t   mcfg;


static void test_threaded(void);
static void test_unthreaded(void);
static void test_full(void);


int
main(void)
{
    char  cmd[300], path[600];
    FILE  *f;

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-engine-register-XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    tiny_model_make(tmp, 7, MAXCTX, model, sizeof(model), &mcfg);

    snprintf(root, sizeof(root), "%s/adapters", tmp);
    mkdir(root, 0755);
    tiny_adapter_make(&mcfg, root, "src1", 8, 0x05, 101, 1.0f);
    tiny_adapter_make(&mcfg, root, "src2", 16, 0x0f, 102, 1.0f);
    tiny_adapter_make(&mcfg, root, "bad", 8, 0x05, 103, 1.0f);

    /* bad's weights cut to their header's first bytes */
    snprintf(path, sizeof(path), "%s/bad/adapter_model.safetensors", root);
    f = fopen(path, "r+");
    if (f == NULL || ftruncate(fileno(f), 64) != 0 || fclose(f) != 0) {
        BAIL_OUT("cannot cut %s", path);
    }

    test_threaded();
    test_unthreaded();
    test_full();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}


static void
noop(void *data, const slora_event_t *ev)
{
}


/* An engine on the tiny model and root, with one prefetch thread, or
 * none (threads 0), checked as what. */
static slora_engine_t *
engine_up(int threads, const char *what)
{
    slora_engine_conf_t  conf;

    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.adapter_dir = root;
    conf.n_threads = 2;
    conf.max_batch_tokens = 64;
    conf.max_running = 8;
    conf.host_cache_bytes = (size_t) 64 << 20;
    conf.prefetch_threads = threads;
    conf.no_prefetch = threads == 0;

    return tiny_engine_up(&conf, what);
}


/* Steps the idle engine, woken by its fd, until the registration's read
 * is in state (10 s at most). */
static int
wait_reading(slora_engine_t *e, slora_engine_reading_e state)
{
    int            i;
    struct pollfd  pfd;

    for (i = 0; i < 1000 && e->reading.state != state; i++) {
        pfd.fd = slora_engine_wake_fd(e);
        pfd.events = POLLIN;
        (void) poll(&pfd, 1, 10);
        (void) slora_engine_step(e, noop, NULL);
    }

    return e->reading.state == state;
}


static int
reg(slora_engine_t *e, const char *name, const char *folder, uint64_t owner,
    const char **path, slora_err_t *err)
{
    char  dir[600];

    snprintf(dir, sizeof(dir), "%s/%s", root, folder);
    err->msg[0] = '\0';
    *path = NULL;

    return slora_engine_register_adapter(e, name, dir, 0, owner, path, err);
}


static const char *
tier_of(slora_engine_t *e, const char *name)
{
    int32_t                      i, n;
    const slora_adapter_info_t  *list;

    n = slora_engine_adapter_list(e, NULL, 0, &list);

    for (i = 0; i < n; i++) {
        if (strcmp(list[i].name, name) == 0) {
            return list[i].tier;
        }
    }

    return NULL;
}


static void
test_threaded(void)
{
    int                   rc;
    char                  want[PATH_MAX], link5[600], to[600],
                          moved[600];
    const char           *path, *tier;
    slora_err_t           err;
    slora_engine_t       *e;

    e = engine_up(1, "threaded: engine up");
    if (e == NULL) {
        return;
    }

    /* src3: a copy of src1 renamed in and out */
    snprintf(to, sizeof(to), "%s/.src3", root);
    snprintf(moved, sizeof(moved), "%s/src3", root);
    tiny_adapter_make(&mcfg, root, ".src3", 8, 0x05, 104, 1.0f);

    /* r1: handed out, not read on this thread */
    rc = reg(e, "r1", "src1", 1, &path, &err);
    ok(rc == SLORA_AGAIN && !e->have_checked
       && e->reading.state == SLORA_READING_OUT && e->reading.owner == 1,
       "threaded: r1's first call hands its folder to a thread (%d: %s)",
       rc, err.msg);
    ok(tier_of(e, "r1") == NULL, "threaded: r1 is not served yet");

    /* (the read is DONE only once a step took it) */
    rc = reg(e, "r2", "src2", 2, &path, &err);
    ok(rc == SLORA_AGAIN && e->reading.state == SLORA_READING_OUT
       && e->reading.owner == 1,
       "threaded: r2 waits while r1's read is out (%d)", rc);

    ok(wait_reading(e, SLORA_READING_DONE), "threaded: r1's read ends");

    /* r2 waits while r1's outcome is untaken */
    rc = reg(e, "r2", "src2", 2, &path, &err);
    ok(rc == SLORA_AGAIN && e->reading.state == SLORA_READING_DONE
       && e->reading.owner == 1,
       "threaded: r2 waits, r1's read kept for r1 (%d)", rc);

    rc = reg(e, "r1", "src1", 1, &path, &err);
    ok(realpath(root, want) != NULL, "threaded: root's realpath");
    strncat(want, "/src1", sizeof(want) - strlen(want) - 1);
    ok(rc == SLORA_OK && path != NULL && strcmp(path, want) == 0
       && e->reading.state == SLORA_READING_NONE,
       "threaded: r1's next call registers it at %s (%d: %s)",
       path ? path : "none", rc, err.msg);
    tier = tier_of(e, "r1");
    ok(tier != NULL && strcmp(tier, "disk") != 0,
       "threaded: r1 is resident from the read (%s)", tier ? tier : "none");

    /* r2's turn now */
    rc = reg(e, "r2", "src2", 2, &path, &err);
    ok(rc == SLORA_AGAIN && e->reading.owner == 2,
       "threaded: r2's folder handed out now (%d)", rc);
    ok(wait_reading(e, SLORA_READING_DONE), "threaded: r2's read ends");
    rc = reg(e, "r2", "src2", 2, &path, &err);
    tier = tier_of(e, "r2");
    ok(rc == SLORA_OK && tier != NULL && strcmp(tier, "disk") != 0,
       "threaded: r2 registered, resident (%d: %s)", rc, err.msg);

    /* an owner that goes while its read is out: dropped when it ends */
    rc = reg(e, "r3", "src1", 3, &path, &err);
    ok(rc == SLORA_AGAIN, "threaded: r3 handed out (%d)", rc);
    slora_engine_abandon_registration(e, 3);
    ok(e->reading.orphan && wait_reading(e, SLORA_READING_NONE),
       "threaded: r3's owner went: its read dropped when it ended");

    /* ... or once it ended */
    rc = reg(e, "r3", "src1", 33, &path, &err);
    ok(rc == SLORA_AGAIN && e->reading.owner == 33
       && wait_reading(e, SLORA_READING_DONE),
       "threaded: r3 again, by another owner: a read of its own, ended");
    slora_engine_abandon_registration(e, 33);
    ok(e->reading.state == SLORA_READING_NONE && tier_of(e, "r3") == NULL,
       "threaded: that owner went too: the read dropped at once");

    /* an owner refused before its check took the read: the folder gone
     * meanwhile; the read is dropped, the next registration goes on */
    ok(rename(to, moved) == 0, "threaded: src3 made");
    rc = reg(e, "r7", "src3", 7, &path, &err);
    ok(rc == SLORA_AGAIN && wait_reading(e, SLORA_READING_DONE),
       "threaded: src3's read ends");
    ok(rename(moved, to) == 0, "threaded: src3 moved away");
    rc = reg(e, "r7", "src3", 7, &path, &err);
    ok(rc == SLORA_DECLINED && e->reading.state == SLORA_READING_NONE,
       "threaded: r7 is a 404 now, its read dropped (%d: %s)", rc,
       err.msg);
    rc = reg(e, "r8", "src1", 8, &path, &err);
    ok(rc == SLORA_AGAIN && e->reading.owner == 8,
       "threaded: the next registration's read is handed out (%d)", rc);
    slora_engine_abandon_registration(e, 8);
    ok(wait_reading(e, SLORA_READING_NONE), "threaded: r8 dropped");

    /* a folder that does not read: the read's words */
    rc = reg(e, "r4", "bad", 4, &path, &err);
    ok(rc == SLORA_AGAIN, "threaded: bad handed out (%d)", rc);
    ok(wait_reading(e, SLORA_READING_DONE), "threaded: bad's read ends");
    rc = reg(e, "r4", "bad", 4, &path, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "safetensors") != NULL
       && e->reading.state == SLORA_READING_NONE
       && tier_of(e, "r4") == NULL,
       "threaded: bad refused with the read's words (%d: %s)", rc, err.msg);

    /* a link moved while its folder was read: the new place is read */
    snprintf(link5, sizeof(link5), "%s/link5", root);
    snprintf(to, sizeof(to), "%s/src1", root);
    ok(symlink(to, link5) == 0, "threaded: link5 -> src1");
    rc = reg(e, "r5", "link5", 5, &path, &err);
    ok(rc == SLORA_AGAIN && wait_reading(e, SLORA_READING_DONE),
       "threaded: link5 read (as src1)");
    snprintf(to, sizeof(to), "%s/src2", root);
    ok(unlink(link5) == 0 && symlink(to, link5) == 0,
       "threaded: link5 -> src2 now");
    rc = reg(e, "r5", "link5", 5, &path, &err);
    ok(rc == SLORA_AGAIN && e->reading.state == SLORA_READING_OUT
       && strstr(e->reading.path, "/src2") != NULL,
       "threaded: r5's next call reads src2, src1's image dropped (%d)", rc);
    ok(wait_reading(e, SLORA_READING_DONE), "threaded: src2's read ends");
    rc = reg(e, "r5", "link5", 5, &path, &err);
    ok(rc == SLORA_OK && path != NULL && strstr(path, "/src2") != NULL,
       "threaded: r5 registered at src2 (%s)", path ? path : err.msg);

    /* an engine freed with a read untaken: nothing leaks (ASan) */
    rc = reg(e, "r6", "src1", 6, &path, &err);
    ok(rc == SLORA_AGAIN && wait_reading(e, SLORA_READING_DONE),
       "threaded: r6's read ends, left untaken");

    slora_engine_free(e);
}


static void
test_unthreaded(void)
{
    int                   rc;
    const char           *path, *tier;
    slora_err_t           err;
    slora_engine_t       *e;

    e = engine_up(0, "unthreaded: engine up");
    if (e == NULL) {
        return;
    }

    rc = reg(e, "r1", "src1", 1, &path, &err);
    tier = tier_of(e, "r1");
    ok(rc == SLORA_OK && tier != NULL && strcmp(tier, "disk") != 0,
       "unthreaded: the first call reads the folder and registers it"
       " (%d: %s)", rc, err.msg);

    rc = reg(e, "r4", "bad", 4, &path, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "safetensors") != NULL,
       "unthreaded: bad refused at once (%d: %s)", rc, err.msg);

    slora_engine_free(e);
}


/* The prefetch threads' loads all out (keys[], which no step may take:
 * the engine is freed with them out): a registration is read at once. */
static void
test_full(void)
{
    int                   rc, i, keys[SLORA_PREFETCH_MAX];
    char                  dir[600];
    const char           *path, *tier;
    slora_err_t           err;
    slora_engine_t       *e;

    e = engine_up(1, "full: engine up");
    if (e == NULL) {
        return;
    }

    for (i = 0; i < SLORA_PREFETCH_MAX; i++) {
        snprintf(dir, sizeof(dir), "%s/src%d", root, 1 + i % 2);
        ok(slora_prefetch_submit(e->prefetch, &keys[i], 0, "k", dir, NULL)
           == SLORA_OK, "full: load %d of %d handed out", i + 1,
           SLORA_PREFETCH_MAX);
    }

    rc = reg(e, "r9", "src1", 9, &path, &err);
    tier = tier_of(e, "r9");
    ok(rc == SLORA_OK && tier != NULL && strcmp(tier, "disk") != 0
       && e->reading.state == SLORA_READING_NONE,
       "full: with no load free, r9 is read at once (%d: %s)", rc,
       err.msg);

    slora_engine_free(e);
}
