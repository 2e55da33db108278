/*
 * test_prefetch.c: the prefetch threads (slora_prefetch.h) and the way
 * the engine uses them, on a tiny random model with generated adapters:
 *
 *   (a) the threads, 1 and 4 of them: loads queue up to
 *       SLORA_PREFETCH_MAX, a key is out once, every image taken equals
 *       the same folder read on this thread, a broken folder fails its
 *       own load, the wake fd is written, and settle() withdraws a queued
 *       load or waits for a running one (after it, the load is either
 *       gone or ready at once); threads made for tensor-parallel slices
 *       read images in them;
 *   (a') the pool: with 4 threads, 8 slow loads (random adapters of a
 *       larger model) run at once (the peak of running loads is above
 *       1; with 1 thread it is 1), and the images and errors are those
 *       of 1 thread byte for byte, the wake fd written once per load; a
 *       count of threads out of range is refused;
 *   (a'') with one thread held at a gate (a folder of a rank of its
 *       own, whose host image the allocator hands out only once the
 *       test lets it through): the oldest queued load is read first,
 *       not the one in the lowest slot; settle() withdraws a queued load
 *       (never read, never taken) and waits for a running one, whose
 *       image is then there to take at once;
 *   (b) the engine: a request whose adapter is on disk only, arriving
 *       while another runs, waits outside the scheduler while the
 *       prefetch thread reads it (the engine's thread never reads it:
 *       host misses unchanged, one image prefetched) and gives the tokens
 *       it gives alone; with prefetch off the admission reads it; a read
 *       that fails sends the request on to the admission, which reports
 *       the error for that request only.
 */

#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "tap.h"
#include "tiny_model.h"
#include "slora_engine.h"
#include "slora_adapter.h"
#include "slora_prefetch.h"
#include "slora_mkmodel.h"


#define NADAPTERS  20
#define MAXGEN     48
#define NSLOW      8                /* slow loads, then 2 that fail */
#define NPOOL      (NSLOW + 2)
#define NGATES     5


typedef struct {
    int32_t     tokens[8][MAXGEN];
    int32_t     n[8];
    int         done[8];
    int         failed[8];
    char        error[8][256];
} sink_t;


static char                   tmp[256];
static char                   model[300];
static char                   root[300];
static char                   gates[300];
static size_t                 gate_bytes[NGATES];
static int                    gate_at = -1;     /* where the thread waits */
static int                    gate_open[NGATES];
static pthread_mutex_t        gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t         gate_cv = PTHREAD_COND_INITIALIZER;
static slora_model_config_t   mcfg;
static int64_t                page_elems;
static const int32_t          prompt_a[6] = { 5, 17, 33, 2, 71, 40 };
static const int32_t          prompt_b[4] = { 9, 61, 12, 88 };


static void make_adapter(const char *name, uint64_t seed);
static void on_event(void *data, const slora_event_t *ev);
static void test_thread(int32_t n_threads);
static int check_image(slora_prefetch_done_t *done, int i);
static int check_folder(slora_prefetch_done_t *done, const char *dir);
static int check_gate(slora_prefetch_done_t *done, int i);
static void test_gates(void);
static void make_gate(int i);
static void *gate_alloc(void *ctx, size_t bytes);
static void gate_free(void *ctx, void *p, size_t bytes);
static int gate_wait(const int *which, int n);
static void gate_feed(int i);
static void *gate_feed_later(void *arg);
static void test_thread_slices(void);
static void test_pool(void);
static int32_t pool_run(const slora_model_config_t *cfg, int64_t pe,
    int32_t n_threads, slora_prefetch_done_t *out, double *secs);
static void test_engine(int prefetch);
static void test_engine_broken(void);
static slora_engine_t *engine(int prefetch);
static void submit(slora_engine_t *e, uint64_t id, const char *adapter,
    const int32_t *prompt, int32_t n, int32_t max_tokens);
static void run_alone(const char *adapter, const int32_t *prompt, int32_t n,
    int32_t max_tokens, int32_t *out, int32_t *n_out);


int
main(void)
{
    int                   i;
    char                  cmd[800], name[32];

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-prefetch-XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    tiny_model_make(tmp, 13, 128, model, sizeof(model), &mcfg);

    snprintf(root, sizeof(root), "%s/adapters", tmp);
    mkdir(root, 0755);

    for (i = 0; i < NADAPTERS; i++) {
        snprintf(name, sizeof(name), "a%02d", i);
        make_adapter(name, 500 + (uint64_t) i);
    }

    /* a folder whose weights are missing */
    snprintf(cmd, sizeof(cmd), "%s/broken", root);
    mkdir(cmd, 0755);
    snprintf(cmd, sizeof(cmd), "cp '%s/a00/adapter_config.json' "
             "'%s/broken/'", root, root);
    if (system(cmd) != 0) {
        BAIL_OUT("cp failed");
    }

    test_thread(1);
    test_thread(4);
    test_gates();
    test_thread_slices();
    test_pool();
    test_engine(1);
    test_engine(0);
    test_engine_broken();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}


static void
test_thread(int32_t n_threads)
{
    int                     i, k, rc, fd, settled, same, once, busy;
    int                     declined, failed, taken[NADAPTERS + 1];
    char                    dir[400], name[32], msg[512];
    uint64_t                v;
    slora_err_t             err;
    slora_pool_t           *pool;
    struct pollfd           pfd;
    slora_prefetch_t       *p;
    slora_pool_geom_t       g;
    slora_prefetch_done_t   done;
    static int              keys[NADAPTERS + 1];

    memset(&g, 0, sizeof(g));
    g.n_layers = mcfg.n_layers;
    g.kv_dim = mcfg.n_kv_heads * mcfg.head_dim;
    g.hidden = mcfg.hidden;
    g.ffn = mcfg.ffn;
    g.elem_size = sizeof(float);

    pool = slora_pool_create(&g, 1 << 20, &err);
    if (pool == NULL) {
        BAIL_OUT("pool: %s", err.msg);
    }
    page_elems = slora_pool_page_elems(pool);
    slora_pool_free(pool);

    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    p = slora_prefetch_create(&mcfg, page_elems, 1, NULL, n_threads, fd, &err);
    if (!ok(p != NULL && slora_prefetch_threads(p) == n_threads,
            "%d prefetch thread(s) started", n_threads))
    {
        diag("%s", err.msg);
        return;
    }

    /* finished loads keep their slot until taken: exactly the first
     * SLORA_PREFETCH_MAX are accepted (key NADAPTERS: the broken one) */
    busy = 0;
    declined = 0;
    for (i = 0; i < NADAPTERS + 1; i++) {
        if (i < NADAPTERS) {
            snprintf(name, sizeof(name), "a%02d", i);
        } else {
            snprintf(name, sizeof(name), "broken");
        }
        snprintf(dir, sizeof(dir), "%s/%s", root, name);

        rc = slora_prefetch_submit(p, &keys[i], 1, name, dir, NULL);
        busy += rc == SLORA_BUSY && i >= SLORA_PREFETCH_MAX;

        if (i == 0) {
            declined = slora_prefetch_submit(p, &keys[0], 1, name, dir, NULL)
                       == SLORA_DECLINED;
        }
    }

    ok(declined, "a key already out is declined");
    is_int(busy, NADAPTERS + 1 - SLORA_PREFETCH_MAX,
           "loads beyond %d out are refused as busy", SLORA_PREFETCH_MAX);
    ok(!slora_prefetch_pending(p, &keys[NADAPTERS]),
       "a refused key is not pending");

    /* the last accepted key waits behind the others: settle it */
    k = SLORA_PREFETCH_MAX - 1;
    ok(slora_prefetch_pending(p, &keys[k]), "key %d is pending", k);

    memset(taken, 0, sizeof(taken));
    same = 0;
    failed = 0;

    settled = slora_prefetch_settle(p, &keys[k]);
    is_int(slora_prefetch_pending(p, &keys[k]), settled,
           "after settle, key %d is pending exactly when its load is done "
           "(%s)", k, settled ? "it had run" : "withdrawn while queued");

    /* a settled load is there now, not later; a withdrawn one never */
    while (settled && slora_prefetch_take(p, &done)) {
        i = (int *) done.key - keys;
        taken[i]++;
        same += check_image(&done, i);
        failed += done.status != SLORA_OK;
    }
    is_int(taken[k], settled, "key %d is taken at once when settled, not "
           "at all when withdrawn", k);

    while (slora_prefetch_out(p) > 0) {
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, 5000) != 1) {
            break;
        }
        if (read(fd, &v, sizeof(v)) < 0) {
            /* drained by an earlier read */
        }

        while (slora_prefetch_take(p, &done)) {
            i = (int *) done.key - keys;
            taken[i]++;
            same += check_image(&done, i);
            failed += done.status != SLORA_OK;
        }
    }

    is_int(slora_prefetch_out(p), 0, "every load came back, the wake fd "
           "saying so");

    once = 0;
    for (i = 0; i < NADAPTERS + 1; i++) {
        once += taken[i] == (i < k || (i == k && settled) ? 1 : 0);
    }
    is_int(once, NADAPTERS + 1, "each accepted load taken once, a "
           "withdrawn one never");
    is_int(same, k + settled, "every image equals the folder read on "
           "this thread");
    is_int(failed, 0, "... and none failed");

    /* the broken folder: its load fails, naming it */
    snprintf(dir, sizeof(dir), "%s/broken", root);
    slora_prefetch_submit(p, &keys[NADAPTERS], 1, "broken", dir, NULL);
    settled = slora_prefetch_settle(p, &keys[NADAPTERS]);
    failed = 0;
    msg[0] = '\0';
    while (slora_prefetch_take(p, &done)) {
        if (done.key == &keys[NADAPTERS] && done.status != SLORA_OK
            && strstr(done.err.msg, "broken") != NULL)
        {
            failed++;
            snprintf(msg, sizeof(msg), "%s", done.err.msg);
        }
        slora_adapter_image_free(&done.img);
    }
    is_int(failed, settled, "a failed load, settled, is there at once "
           "with its error, or was withdrawn (%d)", settled);

    /* withdrawn: the same load again, waited for */
    if (!settled) {
        slora_prefetch_submit(p, &keys[NADAPTERS], 1, "broken", dir, NULL);
        while (!slora_prefetch_take(p, &done)) {
            usleep(1000);
        }
        if (done.status != SLORA_OK) {
            snprintf(msg, sizeof(msg), "%s", done.err.msg);
        }
        slora_adapter_image_free(&done.img);
    }
    ok(strstr(msg, "broken") != NULL, "a failed load names the folder: %s",
       msg);
    ok(!slora_prefetch_pending(p, &keys[NADAPTERS]), "nothing pending");

    slora_prefetch_free(p);
    close(fd);
}


/* 1 if the image taken for adapter i equals the folder read here; frees
 * the image. */
static int
check_image(slora_prefetch_done_t *done, int i)
{
    char  dir[400];

    snprintf(dir, sizeof(dir), "%s/a%02d", root, i);

    return check_folder(done, dir);
}


/* check_image() for the folder dir. */
static int
check_folder(slora_prefetch_done_t *done, const char *dir)
{
    int                     same;
    slora_err_t             err;
    slora_adapter_image_t   img;

    same = 0;

    if (done->status == SLORA_OK
        && slora_adapter_image_load(&mcfg, page_elems, 1, NULL, "x", dir, NULL,
                                    &img, &err)
           == SLORA_OK)
    {
        same = img.bytes == done->img.bytes
               && img.plan.n_pages == done->img.plan.n_pages
               && memcmp(img.host, done->img.host, img.bytes) == 0;
        slora_adapter_image_free(&img);
    }

    slora_adapter_image_free(&done->img);

    return same;
}


/*
 * One thread, held at gate 0 while loads queue behind it: a (plain
 * folder), gates 1 and 2, then a is settled (withdrawn: its slot, the
 * lowest, is free) and gate 3 queued into that slot. The thread must
 * then read gates 1, 2, 3 in that order, the order they were queued.
 * Then gate 4, held while running: settle() returns only once it is
 * read, and its image is there to take at once.
 */
static void
test_gates(void)
{
    int                     i, rc, got, n, order[3], ordered, same;
    int                     left[3], taken[NGATES + 1], settled;
    char                    dir[400], name[32];
    pthread_t               th;
    slora_err_t             err;
    slora_prefetch_t       *p;
    slora_prefetch_done_t   done;
    static int              keys[NGATES + 1], feed;
    static slora_host_mem_t mem = { gate_alloc, gate_free, NULL, 4 };

    snprintf(gates, sizeof(gates), "%s/gates", tmp);
    mkdir(gates, 0755);
    for (i = 0; i < NGATES; i++) {
        make_gate(i);
    }

    p = slora_prefetch_create(&mcfg, page_elems, 1, &mem, 1, -1, &err);
    if (p == NULL) {
        BAIL_OUT("prefetch: %s", err.msg);
    }

    snprintf(dir, sizeof(dir), "%s/g0", gates);
    slora_prefetch_submit(p, &keys[0], 1, "g0", dir, NULL);
    ok(gate_wait((int []) { 0 }, 1) == 0, "the thread waits at gate 0");

    snprintf(dir, sizeof(dir), "%s/a07", root);
    slora_prefetch_submit(p, &keys[NGATES], 1, "a07", dir, NULL);
    for (i = 1; i <= 2; i++) {
        snprintf(name, sizeof(name), "g%d", i);
        snprintf(dir, sizeof(dir), "%s/%s", gates, name);
        slora_prefetch_submit(p, &keys[i], 1, name, dir, NULL);
    }

    settled = slora_prefetch_settle(p, &keys[NGATES]);
    ok(settled == 0 && !slora_prefetch_pending(p, &keys[NGATES])
       && slora_prefetch_out(p) == 3,
       "settle withdraws a queued load: not pending, 3 out");

    snprintf(dir, sizeof(dir), "%s/g3", gates);
    rc = slora_prefetch_submit(p, &keys[3], 1, "g3", dir, NULL);
    is_int(rc, SLORA_OK, "gate 3 queued (in the lowest slot, a's)");

    gate_feed(0);

    /* feed each gate as the thread reaches it, noting the order */
    for (i = 0; i < 3; i++) {
        left[i] = i + 1;
    }
    for (n = 0; n < 3; n++) {
        i = gate_wait(left, 3);
        order[n] = left[i];
        left[i] = -1;
        gate_feed(order[n]);
    }
    ordered = order[0] == 1 && order[1] == 2 && order[2] == 3;
    ok(ordered, "the oldest queued load is read first: gates %d, %d, %d",
       order[0], order[1], order[2]);

    /* gate 4 held while running: settle waits for it */
    snprintf(dir, sizeof(dir), "%s/g4", gates);
    slora_prefetch_submit(p, &keys[4], 1, "g4", dir, NULL);
    (void) gate_wait((int []) { 4 }, 1);
    feed = 4;
    pthread_create(&th, NULL, gate_feed_later, &feed);
    settled = slora_prefetch_settle(p, &keys[4]);

    memset(taken, 0, sizeof(taken));
    same = 0;
    got = 0;
    while (slora_prefetch_take(p, &done)) {
        i = (int *) done.key - keys;
        got += i == 4;
        taken[i]++;
        same += i < NGATES && check_gate(&done, i);
    }
    ok(settled == 1 && got == 1,
       "settle waits for a running load: its image is there at once");
    pthread_join(th, NULL);

    for (n = 0; n < 500 && slora_prefetch_out(p) > 0; n++) {
        usleep(10000);
        while (slora_prefetch_take(p, &done)) {
            i = (int *) done.key - keys;
            taken[i]++;
            same += i < NGATES && check_gate(&done, i);
        }
    }

    n = 0;
    for (i = 0; i < NGATES; i++) {
        n += taken[i] == 1;
    }
    ok(n == NGATES && same == NGATES && taken[NGATES] == 0,
       "each gate's load taken once, its image the folder's; the "
       "withdrawn load never");

    slora_prefetch_free(p);
}


/*
 * gates/g<i>: an adapter of rank 4 (i + 1), so that its host image is
 * the one of its size (gate_bytes[i]), which gate_alloc() holds back.
 */
static void
make_gate(int i)
{
    int                    k;
    char                   dir[500];
    slora_err_t            err;
    slora_adapter_gen_t    gen;
    slora_adapter_image_t  img;

    memset(&gen, 0, sizeof(gen));
    gen.rank = 4 * (i + 1);
    gen.proj_mask = 0x7f;
    gen.seed = 700 + (uint64_t) i;
    gen.scale = 1.0f;

    snprintf(dir, sizeof(dir), "%s/g%d", gates, i);
    if (slora_adapter_write_random(dir, &mcfg, &gen, &err) != SLORA_OK
        || slora_adapter_image_load(&mcfg, page_elems, 1, NULL, "g", dir,
                                    NULL, &img, &err)
           != SLORA_OK)
    {
        BAIL_OUT("gate %d: %s", i, err.msg);
    }

    gate_bytes[i] = img.bytes;
    slora_adapter_image_free(&img);

    for (k = 0; k < i; k++) {
        if (gate_bytes[k] == gate_bytes[i]) {
            BAIL_OUT("gates %d and %d: images of one size", k, i);
        }
    }
}


/* 1 if the image taken for gate i equals its folder read here. */
static int
check_gate(slora_prefetch_done_t *done, int i)
{
    char  dir[500];

    snprintf(dir, sizeof(dir), "%s/g%d", gates, i);

    return check_folder(done, dir);
}


/* The prefetch thread's host memory: a gate's image waits until the
 * gate is open. */
static void *
gate_alloc(void *ctx, size_t bytes)
{
    int  i;

    for (i = 0; i < NGATES && gate_bytes[i] != bytes; i++) {
        /* void */
    }

    if (i < NGATES) {
        pthread_mutex_lock(&gate_mu);
        gate_at = i;
        pthread_cond_broadcast(&gate_cv);

        while (!gate_open[i]) {
            pthread_cond_wait(&gate_cv, &gate_mu);
        }

        gate_at = -1;
        pthread_mutex_unlock(&gate_mu);
    }

    return calloc(1, bytes);
}


static void
gate_free(void *ctx, void *p, size_t bytes)
{
    free(p);
}


/* Which of the gates which[n] (-1: none) the thread waits at: its index.
 * Bails out after 5 s, since a thread held at a gate could never be
 * joined. */
static int
gate_wait(const int *which, int n)
{
    int              i;
    struct timespec  until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;

    pthread_mutex_lock(&gate_mu);

    for ( ;; ) {
        for (i = 0; i < n; i++) {
            if (which[i] >= 0 && which[i] == gate_at) {
                pthread_mutex_unlock(&gate_mu);
                return i;
            }
        }

        if (pthread_cond_timedwait(&gate_cv, &gate_mu, &until) != 0) {
            break;
        }
    }

    pthread_mutex_unlock(&gate_mu);

    BAIL_OUT("no thread came to the gates");
    return -1;
}


/* Lets the thread at gate i through. */
static void
gate_feed(int i)
{
    pthread_mutex_lock(&gate_mu);
    gate_open[i] = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}


/* gate_feed(*arg) 100 ms from now. */
static void *
gate_feed_later(void *arg)
{
    usleep(100000);
    gate_feed(*(int *) arg);

    return NULL;
}


/* A thread made for 2 slices gives the image read here in 2 slices,
 * which is not the plain one. */
static void
test_thread_slices(void)
{
    int                     key, got;
    char                    dir[400];
    slora_err_t             err;
    slora_prefetch_t       *p;
    slora_prefetch_done_t   done;
    slora_adapter_image_t   img2, img1;

    p = slora_prefetch_create(&mcfg, page_elems, 2, NULL, 0, -1, &err);
    if (!ok(p != NULL, "prefetch threads for 2 slices")) {
        diag("%s", err.msg);
        return;
    }

    snprintf(dir, sizeof(dir), "%s/a03", root);
    slora_prefetch_submit(p, &key, 1, "a03", dir, NULL);

    got = 0;
    while (!(got = slora_prefetch_take(p, &done)) && slora_prefetch_out(p)) {
        usleep(1000);
    }

    if (!ok(got && done.status == SLORA_OK, "its load came back")) {
        diag("%s", got ? done.err.msg : "none");
        slora_prefetch_free(p);
        return;
    }

    ok(slora_adapter_image_load(&mcfg, page_elems, 2, NULL, "x", dir, NULL,
                                &img2, &err) == SLORA_OK
       && slora_adapter_image_load(&mcfg, page_elems, 1, NULL, "x", dir, NULL,
                                   &img1, &err) == SLORA_OK,
       "the folder read here in 2 slices and in 1");
    ok(done.img.plan.slices == 2 && img2.bytes == done.img.bytes
       && img2.host != NULL
       && memcmp(img2.host, done.img.host, img2.bytes) == 0,
       "the thread's image is the 2-slice one");
    ok(img1.host != NULL && img1.bytes == done.img.bytes
       && memcmp(img1.host, done.img.host, img1.bytes) != 0,
       "not the plain one");

    slora_adapter_image_free(&img1);
    slora_adapter_image_free(&img2);
    slora_adapter_image_free(&done.img);
    slora_prefetch_free(p);
}


/*
 * 8 random adapters of a model large enough that an image takes a while,
 * then a spec that fails and a folder that fails, loaded with 1 thread
 * and with 4.
 */
static void
test_pool(void)
{
    int                     i, same, errs;
    long                    cores;
    double                  secs1, secs4;
    int32_t                 peak1, peak4, want;
    slora_err_t             err;
    slora_pool_t           *pool;
    slora_prefetch_t       *p;
    slora_pool_geom_t       g;
    slora_model_config_t    big;
    static slora_prefetch_done_t  one[NPOOL], four[NPOOL];

    big = mcfg;
    big.n_layers = 4;
    big.hidden = 1024;
    big.n_heads = 16;
    big.n_kv_heads = 4;
    big.head_dim = 64;
    big.ffn = 2816;

    memset(&g, 0, sizeof(g));
    g.n_layers = big.n_layers;
    g.kv_dim = big.n_kv_heads * big.head_dim;
    g.hidden = big.hidden;
    g.ffn = big.ffn;
    g.elem_size = sizeof(float);

    pool = slora_pool_create(&g, (size_t) 1 << 30, &err);
    if (pool == NULL) {
        BAIL_OUT("pool: %s", err.msg);
    }

    peak1 = pool_run(&big, slora_pool_page_elems(pool), 1, one, &secs1);
    peak4 = pool_run(&big, slora_pool_page_elems(pool), 4, four, &secs4);
    slora_pool_free(pool);

    diag("%d loads of %.1f MiB: 1 thread %.3f s, 4 threads %.3f s "
         "(peak running %d)", NSLOW,
         (double) one[0].img.bytes / (double) (1 << 20), secs1, secs4,
         peak4);

    is_int(peak1, 1, "1 thread: one load runs at a time");
    ok(peak4 > 1, "4 threads: loads overlap (peak running %d)", peak4);

    same = 0;
    errs = 0;
    for (i = 0; i < NPOOL; i++) {
        if (i < NSLOW) {
            same += one[i].status == SLORA_OK && four[i].status == SLORA_OK
                    && one[i].img.bytes > 0
                    && one[i].img.bytes == four[i].img.bytes
                    && one[i].img.plan.n_pages == four[i].img.plan.n_pages
                    && memcmp(one[i].img.host, four[i].img.host,
                              one[i].img.bytes) == 0;
        } else {
            errs += one[i].status != SLORA_OK && four[i].status != SLORA_OK
                    && one[i].status == four[i].status
                    && one[i].err.msg[0] != '\0'
                    && strcmp(one[i].err.msg, four[i].err.msg) == 0;
            diag("load %d fails: %s", i, four[i].err.msg);
        }
        slora_adapter_image_free(&one[i].img);
        slora_adapter_image_free(&four[i].img);
    }

    is_int(same, NSLOW, "4 threads give the images of 1, byte for byte");
    is_int(errs, 2, "... and the same errors");

    p = slora_prefetch_create(&mcfg, page_elems, 1, NULL, -1, -1, &err);
    ok(p == NULL && strstr(err.msg, "threads") != NULL,
       "-1 threads refused: %s", err.msg);
    p = slora_prefetch_create(&mcfg, page_elems, 1, NULL,
                              SLORA_PREFETCH_MAX + 1, -1, &err);
    ok(p == NULL, "%d threads refused", SLORA_PREFETCH_MAX + 1);

    cores = sysconf(_SC_NPROCESSORS_ONLN) / 2;
    want = (int32_t) (cores < 1 ? 1 : cores > 4 ? 4 : cores);
    p = slora_prefetch_create(&mcfg, page_elems, 1, NULL, 0, -1, &err);
    ok(p != NULL && slora_prefetch_threads(p) == want,
       "0 threads: the default, %d here (half the cores, 1 to 4)", want);
    slora_prefetch_free(p);
}


/* Submits the NPOOL loads to n_threads threads, takes them into out[]
 * (by key); returns the peak of running loads. */
static int32_t
pool_run(const slora_model_config_t *cfg, int64_t pe, int32_t n_threads,
    slora_prefetch_done_t *out, double *secs)
{
    int                     i, n, fd;
    char                    dir[400], name[32];
    int64_t                 t0;
    int32_t                 peak;
    uint64_t                v, wakes;
    slora_err_t             err;
    struct pollfd           pfd;
    slora_prefetch_t       *p;
    slora_prefetch_done_t   done;
    static int              keys[NPOOL];

    memset(out, 0, NPOOL * sizeof(*out));
    *secs = 0;

    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    p = slora_prefetch_create(cfg, pe, 1, NULL, n_threads, fd, &err);
    if (!ok(p != NULL, "%d threads for slow loads", n_threads)) {
        diag("%s", err.msg);
        close(fd);
        return 0;
    }

    t0 = slora_now_ns();

    for (i = 0; i < NPOOL; i++) {
        snprintf(name, sizeof(name), "r%d", i);
        if (i < NSLOW) {
            snprintf(dir, sizeof(dir), "random:rank=32,targets=q+k+v+o+"
                     "gate+up+down,seed=%d", 70 + i);
        } else if (i == NSLOW) {
            snprintf(dir, sizeof(dir), "random:rank=32,targets=q+nope");
        } else {
            snprintf(dir, sizeof(dir), "%s/broken", root);
        }

        if (slora_prefetch_submit(p, &keys[i], 1, name, dir, NULL)
            != SLORA_OK)
        {
            diag("submit %d refused", i);
        }
    }

    n = 0;
    wakes = 0;
    while (n < NPOOL) {
        while (slora_prefetch_take(p, &done)) {
            i = (int *) done.key - keys;
            out[i] = done;
            n++;
        }
        if (n == NPOOL) {
            break;
        }

        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, 30000) != 1) {
            break;
        }
        if (read(fd, &v, sizeof(v)) == sizeof(v)) {
            wakes += v;
        }
    }

    *secs = (double) (slora_now_ns() - t0) / 1e9;

    /* every write came before its load could be taken */
    if (read(fd, &v, sizeof(v)) == sizeof(v)) {
        wakes += v;
    }

    is_int(n, NPOOL, "%d threads: every load came back", n_threads);
    is_int((int) wakes, NPOOL, "... the wake fd written once per load");
    ok(slora_prefetch_running(p) == 0 && slora_prefetch_out(p) == 0,
       "... none running or out");

    peak = slora_prefetch_peak_running(p);
    ok(peak <= n_threads, "... at most %d ran at once (%d)", n_threads,
       peak);

    slora_prefetch_free(p);
    close(fd);

    return peak;
}


static void
test_engine(int prefetch)
{
    int                   i;
    int32_t               alone[MAXGEN], n_alone;
    struct pollfd         pfd;
    slora_engine_t       *e;
    slora_engine_stats_t  st0, st;
    static sink_t         s;

    run_alone("a05", prompt_b, 4, 6, alone, &n_alone);

    e = engine(prefetch);
    if (e == NULL) {
        return;
    }

    memset(&s, 0, sizeof(s));

    /* A runs a long while; its adapter is read at its admission */
    submit(e, 0, "a04", prompt_a, 6, 40);
    for (i = 0; i < 3; i++) {
        slora_engine_step(e, on_event, &s);
    }
    slora_engine_stats(e, &st0);
    ok(st0.running == 1 && st0.host_misses == 1,
       "prefetch %s: A runs, its adapter read at admission (misses %llu)",
       prefetch ? "on" : "off", (unsigned long long) st0.host_misses);

    /* B asks for an adapter on disk while A runs */
    submit(e, 1, "a05", prompt_b, 4, 6);
    slora_engine_stats(e, &st);

    if (prefetch) {
        ok(st.waiting == 0 && st.resolving == 0,
           "B waits for its read outside the scheduler (waiting %d, "
           "resolving %d)", st.waiting, st.resolving);

        /* the prefetch thread says when it is done: no step before, so
         * that A is sure to run still */
        pfd.fd = slora_engine_wake_fd(e);
        pfd.events = POLLIN;
        pfd.revents = 0;
        ok(poll(&pfd, 1, 5000) == 1, "the read ends (the wake fd)");
    }

    for (i = 0; i < 400 && !s.done[1]; i++) {
        if (slora_engine_step(e, on_event, &s) == SLORA_AGAIN) {
            usleep(1000);
        }
    }
    ok(s.done[1] && !s.failed[1], "B finished");
    ok(!s.done[0], "... while A still ran (A at %d tokens)", s.n[0]);

    slora_engine_stats(e, &st);
    if (prefetch) {
        is_int(st.host_misses, st0.host_misses,
               "B's adapter was never read on the engine's thread");
        is_int(st.prefetched - st0.prefetched, 1,
               "... the prefetch thread read it");
    } else {
        is_int(st.host_misses - st0.host_misses, 1,
               "prefetch off: B's admission read it");
        is_int(st.prefetched, 0, "... nothing prefetched");
    }

    ok(s.n[1] == n_alone
       && memcmp(s.tokens[1], alone, (size_t) n_alone * sizeof(int32_t))
          == 0, "B's tokens are those it gets alone");

    for (i = 0; i < 400 && !s.done[0]; i++) {
        slora_engine_step(e, on_event, &s);
    }
    ok(s.done[0] && s.n[0] == 40, "A ran to its end");

    slora_engine_free(e);
}


static void
test_engine_broken(void)
{
    int                   i;
    slora_engine_t       *e;
    slora_engine_stats_t  st;
    static sink_t         s;

    e = engine(1);
    if (e == NULL) {
        return;
    }

    memset(&s, 0, sizeof(s));
    submit(e, 0, "a06", prompt_a, 6, 40);
    for (i = 0; i < 3; i++) {
        slora_engine_step(e, on_event, &s);
    }

    submit(e, 1, "broken", prompt_b, 4, 6);
    for (i = 0; i < 400 && !s.done[1] && !s.failed[1]; i++) {
        if (slora_engine_step(e, on_event, &s) == SLORA_AGAIN) {
            usleep(1000);
        }
    }

    ok(s.failed[1] && strstr(s.error[1], "broken") != NULL,
       "a request whose read fails gets an error: %s", s.error[1]);
    slora_engine_stats(e, &st);
    ok(st.load_errors >= 1, "... counted as a load error");

    for (i = 0; i < 400 && !s.done[0]; i++) {
        slora_engine_step(e, on_event, &s);
    }
    ok(s.done[0] && !s.failed[0] && s.n[0] == 40,
       "the request beside it is unaffected");

    slora_engine_free(e);
}


static slora_engine_t *
engine(int prefetch)
{
    slora_err_t           err;
    slora_engine_t       *e;
    slora_engine_conf_t   conf;

    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.adapter_dir = root;
    conf.n_threads = 1;
    conf.max_running = 4;
    conf.pool_bytes = 8 << 20;
    conf.no_prefetch = !prefetch;

    e = slora_engine_init(&conf, &err);
    if (!ok(e != NULL, "engine up (prefetch %s)", prefetch ? "on" : "off")) {
        diag("%s", err.msg);
    }

    return e;
}


static void
submit(slora_engine_t *e, uint64_t id, const char *adapter,
    const int32_t *prompt, int32_t n, int32_t max_tokens)
{
    slora_err_t      err;
    slora_request_t  req;

    memset(&req, 0, sizeof(req));
    req.id = id;
    req.adapter = adapter;
    req.prompt = prompt;
    req.n_prompt = n;
    req.sampling.top_p = 1;
    req.sampling.repeat_penalty = 1;
    req.sampling.max_tokens = max_tokens;

    if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
        diag("submit %llu: %s", (unsigned long long) id, err.msg);
    }
}


/* Greedy tokens of one request on an engine of its own. */
static void
run_alone(const char *adapter, const int32_t *prompt, int32_t n,
    int32_t max_tokens, int32_t *out, int32_t *n_out)
{
    int              i;
    slora_engine_t  *e;
    static sink_t    s;

    *n_out = -1;

    e = engine(0);
    if (e == NULL) {
        return;
    }

    memset(&s, 0, sizeof(s));
    submit(e, 0, adapter, prompt, n, max_tokens);

    for (i = 0; i < 400 && !s.done[0] && !s.failed[0]; i++) {
        slora_engine_step(e, on_event, &s);
    }

    *n_out = s.n[0];
    memcpy(out, s.tokens[0], sizeof(s.tokens[0]));

    slora_engine_free(e);
}


static void
on_event(void *data, const slora_event_t *ev)
{
    sink_t  *s = data;

    if (ev->id >= 8) {
        return;
    }

    switch (ev->type) {

    case SLORA_EV_TOKEN:
        if (s->n[ev->id] < MAXGEN) {
            s->tokens[ev->id][s->n[ev->id]++] = ev->token;
        }
        break;

    case SLORA_EV_DONE:
        s->done[ev->id] = 1;
        break;

    case SLORA_EV_ERROR:
        s->failed[ev->id] = 1;
        snprintf(s->error[ev->id], sizeof(s->error[0]), "%s",
                 ev->error ? ev->error : "");
        break;

    case SLORA_EV_SCORE:
        /* none of its requests asks for a prompt's log-probabilities */
        break;
    }
}


static void
make_adapter(const char *name, uint64_t seed)
{
    char                 dir[400];
    slora_err_t          err;
    slora_adapter_gen_t  gen;

    memset(&gen, 0, sizeof(gen));
    gen.rank = 16;
    gen.proj_mask = 0x7f;
    gen.seed = seed;
    gen.scale = 1.0f;

    snprintf(dir, sizeof(dir), "%s/%s", root, name);
    if (slora_adapter_write_random(dir, &mcfg, &gen, &err) != SLORA_OK) {
        BAIL_OUT("%s", err.msg);
    }
}
