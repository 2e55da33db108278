/*
 * test_allreduce_cuda.cu: the one-shot all-reduce (kernels/
 * slora_allreduce.cu) against its CPU twin, bit for bit: ranks emulated
 * on one GPU (2, 3, 4 and 8 objects on device 0, each rank's calls on a
 * stream of its own, all running at once), then, on a machine of two or
 * more GPUs, one rank per GPU over peer access (NVLink) and two ranks
 * per GPU on two GPUs. Speaks TAP; --bench adds microseconds per call.
 *
 * The one idea: every call sums fresh random values held in buffers of
 * its own, and a run's calls are launched back to back round by round
 * (call c on every rank before call c + 1 on any), so the staging halves
 * and the epochs turn over many times, across calls of both types and
 * of sizes that change the grid, before anything is checked; captured
 * CUDA graphs are then replayed between direct calls. Each rank's result
 * must equal the CPU twin's to the bit, and so every rank's the others'.
 *
 *   test_allreduce_cuda [--bench]
 */

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <cuda_runtime.h>

extern "C" {
#include "slora_allreduce.h"
#include "slora_convert.h"
}

#include "tap.h"
#include "cuda_test.h"


#define MAX_R        8
#define CAP_BYTES    ((size_t) 4 << 20)   /* 1 << 20 f32 fit */
#define ELEM_BUDGET  ((int64_t) 1 << 24)  /* elements over a run's calls */
#define MAX_CALLS    64
#define N_GRAPH      3                    /* calls captured per graph */
#define N_REPLAY     5
#define N_BENCH      100


/* The ranks of one group: rank r lives on dev[r] and uses stream s[r]. */
typedef struct {
    int                  n;
    int                  dev[MAX_R];
    slora_allreduce_t   *ar[MAX_R];
    cudaStream_t         s[MAX_R];
    char                 name[32];
} group_t;


/* One call: n elements of one type; d[r] is rank r's device buffer,
 * h[r] first its input, then what the CPU twin makes of the inputs. */
typedef struct {
    int64_t   n;
    int       bf16;
    void     *d[MAX_R];
    void     *h[MAX_R];
} call_t;


static void group_make(group_t *g, int n, const int *dev, const char *name);
static void group_free(group_t *g);
static void group_sync(const group_t *g);
static int group_launch(const group_t *g, call_t *c);
static int launch_one(const group_t *g, int r, call_t *c);
static void call_alloc(const group_t *g, call_t *c, int64_t n, int bf16);
static void call_fill(const group_t *g, call_t *c);
static void call_check(const group_t *g, const call_t *c, int *match,
    int *same);
static void call_free(const group_t *g, call_t *c);
static int run_calls(const group_t *g, call_t *calls, int n_calls,
    int *same);
static void test_sizes(const group_t *g);
static void test_mixed(const group_t *g);
static void test_graphs(const group_t *g);
static void test_refusals(const group_t *g);
static void test_staged(const group_t *g);
static void test_group(const group_t *g);
static int peers_possible(int n_dev);
static double bench_group(const group_t *g, int64_t bytes);
static void bench_all(int n_dev, int real);


int
main(int argc, char **argv)
{
    static const int  emu_n[] = { 2, 3, 4, 8 };

    cudaDeviceProp  prop;
    group_t         g;
    int             bench, n_dev, i, dev[MAX_R], real;

    /* eight rank streams each get a hardware queue of their own */
    setenv("CUDA_DEVICE_MAX_CONNECTIONS", "32", 0);

    bench = argc > 1 && strcmp(argv[1], "--bench") == 0;
    n_dev = cuda_test_devices();
    n_dev = n_dev < MAX_R ? n_dev : MAX_R;

    for (i = 0; i < n_dev; i++) {
        CK(cudaGetDeviceProperties(&prop, i));
        diag("device %d: %s, %d SMs, cc %d.%d", i, prop.name,
             prop.multiProcessorCount, prop.major, prop.minor);
    }

    tap_seed(0x5107a11ed0ceull);

    for (i = 0; i < (int) (sizeof(emu_n) / sizeof(emu_n[0])); i++) {
        memset(dev, 0, sizeof(dev));
        group_make(&g, emu_n[i], dev, "emulated");
        test_group(&g);
        group_free(&g);
    }

    real = 0;

    if (n_dev < 2) {
        diag("one GPU: no real multi-GPU case");

    } else if (!peers_possible(n_dev)) {
        diag("SKIP real multi-GPU: peer access impossible between these "
             "%d GPUs", n_dev);

    } else {
        real = 1;

        for (i = 0; i < n_dev; i++) {
            dev[i] = i;
        }

        group_make(&g, n_dev, dev, "gpus");
        test_group(&g);
        group_free(&g);

        /* two ranks on each of two GPUs: near and far peers at once */
        for (i = 0; i < 4; i++) {
            dev[i] = i % 2;
        }

        group_make(&g, 4, dev, "2x2 gpus");
        test_group(&g);
        group_free(&g);
    }

    if (bench) {
        bench_all(n_dev, real);
    }

    return done_testing();
}


static void
test_group(const group_t *g)
{
    diag("group %s: %d ranks", g->name, g->n);

    test_sizes(g);
    test_mixed(g);
    test_graphs(g);
    test_staged(g);
    test_refusals(g);

    /* the refused calls launched nothing: the ranks are still in step */
    test_mixed(g);
}


/* Each size alone, many calls back to back (fewer for large n). */
static void
test_sizes(const group_t *g)
{
    static const struct {
        int      bf16;
        int64_t  n;
    } cases[] = {
        { 1, 8 }, { 1, 4096 }, { 1, 64 * 4096 }, { 1, 1 << 20 },
        { 0, 4 }, { 0, 1024 }, { 0, 3 * 4096 + 4 }, { 0, 64 * 4096 },
        { 0, 1 << 20 },
    };

    call_t   calls[MAX_CALLS];
    int64_t  k;
    int      i, n_calls, c, match, same;

    for (i = 0; i < (int) (sizeof(cases) / sizeof(cases[0])); i++) {
        k = ELEM_BUDGET / (cases[i].n * g->n);
        n_calls = (int) (k < 4 ? 4 : (k > 50 ? 50 : k));

        for (c = 0; c < n_calls; c++) {
            call_alloc(g, &calls[c], cases[i].n, cases[i].bf16);
        }

        match = run_calls(g, calls, n_calls, &same);
        ok(match, "%s N=%d %s n=%lld, %d calls back to back: CPU twin's "
           "bits", g->name, g->n, cases[i].bf16 ? "bf16" : "f32",
           (long long) cases[i].n, n_calls);
        ok(same, "%s N=%d %s n=%lld: every rank the same bits", g->name,
           g->n, cases[i].bf16 ? "bf16" : "f32", (long long) cases[i].n);

        for (c = 0; c < n_calls; c++) {
            call_free(g, &calls[c]);
        }
    }
}


/* The sum without the flag barrier (slora_allreduce_stage_cuda, then
 * slora_allreduce_gather_*_cuda), its halves ordered by events as
 * ranks that share a GPU order them: the CPU twin's bits, the same on
 * every rank, calls back to back. */
static void
test_staged(const group_t *g)
{
    static const struct {
        int      bf16;
        int64_t  n;
    } cases[] = {
        { 1, 8 }, { 1, 64 * 4096 }, { 1, 1 << 20 }, { 0, 4 }, { 0, 40000 },
        { 0, 1 << 20 },
    };

    cudaEvent_t  staged[MAX_R], read[MAX_R];
    call_t       c;
    int          i, r, q, rc, match, same, all_match, all_same;

    for (r = 0; r < g->n; r++) {
        CK(cudaSetDevice(g->dev[r]));
        CK(cudaEventCreateWithFlags(&staged[r], cudaEventDisableTiming));
        CK(cudaEventCreateWithFlags(&read[r], cudaEventDisableTiming));
    }

    rc = 0;
    all_match = 1;
    all_same = 1;

    for (i = 0; i < 3 * (int) (sizeof(cases) / sizeof(cases[0])); i++) {
        call_alloc(g, &c, cases[i % 6].n, cases[i % 6].bf16);
        call_fill(g, &c);

        for (r = 0; r < g->n; r++) {
            CK(cudaSetDevice(g->dev[r]));

            for (q = 0; q < g->n; q++) {
                CK(cudaStreamWaitEvent(g->s[r], read[q], 0));
            }

            rc |= slora_allreduce_stage_cuda(g->ar[r], c.d[r],
                                             c.n * (c.bf16 ? 2 : 4),
                                             g->s[r]);
            CK(cudaEventRecord(staged[r], g->s[r]));
        }

        for (r = 0; r < g->n; r++) {
            CK(cudaSetDevice(g->dev[r]));

            for (q = 0; q < g->n; q++) {
                CK(cudaStreamWaitEvent(g->s[r], staged[q], 0));
            }

            rc |= c.bf16
                  ? slora_allreduce_gather_bf16_cuda(g->ar[r],
                                                     (uint16_t *) c.d[r], c.n,
                                                     g->s[r])
                  : slora_allreduce_gather_f32_cuda(g->ar[r],
                                                    (float *) c.d[r], c.n,
                                                    g->s[r]);
            CK(cudaEventRecord(read[r], g->s[r]));
        }

        group_sync(g);
        call_check(g, &c, &match, &same);
        all_match &= match;
        all_same &= same;
        call_free(g, &c);
    }

    ok(rc == 0 && all_match && all_same, "%s N=%d: 18 staged sums (no "
       "barrier on the GPU), bf16 and f32, 8 to 2^20 values: CPU twin's "
       "bits on every rank", g->name, g->n);

    for (r = 0; r < g->n; r++) {
        CK(cudaSetDevice(g->dev[r]));
        CK(cudaEventDestroy(staged[r]));
        CK(cudaEventDestroy(read[r]));
    }
}


/* 60 calls whose size and type change every call, so the grid grows
 * and shrinks between calls that share the staging halves. */
static void
test_mixed(const group_t *g)
{
    static const int64_t  sizes[] = {
        8, 1 << 18, 4096, 520, 64 * 4096, 16, 40000, 1 << 17, 4096 * 3
    };

    call_t  calls[60];
    int     c, n_sizes, match, same;

    n_sizes = (int) (sizeof(sizes) / sizeof(sizes[0]));

    for (c = 0; c < 60; c++) {
        call_alloc(g, &calls[c], sizes[c % n_sizes], (c / 2) % 2 == 0);
    }

    match = run_calls(g, calls, 60, &same);
    ok(match && same, "%s N=%d: 60 calls of changing size and type, CPU "
       "twin's bits on every rank", g->name, g->n);

    for (c = 0; c < 60; c++) {
        call_free(g, &calls[c]);
    }
}


/*
 * Each rank captures N_GRAPH calls (both types, grids of 1 and many
 * blocks) into a graph; each of N_REPLAY rounds uploads fresh inputs,
 * replays every rank's graph, then makes one direct call, so the epoch
 * kept in device memory runs through graph and direct calls alike.
 */

static void
test_graphs(const group_t *g)
{
    static const int64_t  gn[N_GRAPH] = { 4096, 1 << 18, 64 };
    static const int      gb[N_GRAPH] = { 1, 0, 1 };

    call_t           cap[N_GRAPH], direct;
    cudaGraph_t      graph[MAX_R];
    cudaGraphExec_t  exec[MAX_R];
    int              r, k, round, rc, match, same, m, s, all_ok;

    for (k = 0; k < N_GRAPH; k++) {
        call_alloc(g, &cap[k], gn[k], gb[k]);
    }

    call_alloc(g, &direct, 64 * 4096, 1);
    rc = 0;

    for (r = 0; r < g->n; r++) {
        CK(cudaSetDevice(g->dev[r]));
        CK(cudaStreamBeginCapture(g->s[r], cudaStreamCaptureModeThreadLocal));

        for (k = 0; k < N_GRAPH; k++) {
            rc |= launch_one(g, r, &cap[k]);
        }

        CK(cudaStreamEndCapture(g->s[r], &graph[r]));
        CK(cudaGraphInstantiate(&exec[r], graph[r], 0));
    }

    all_ok = rc == 0;

    for (round = 0; round < N_REPLAY; round++) {
        for (k = 0; k < N_GRAPH; k++) {
            call_fill(g, &cap[k]);
        }

        call_fill(g, &direct);

        for (r = 0; r < g->n; r++) {
            CK(cudaSetDevice(g->dev[r]));
            CK(cudaGraphLaunch(exec[r], g->s[r]));
        }

        rc = group_launch(g, &direct);
        group_sync(g);

        match = rc == 0;
        same = 1;

        for (k = 0; k < N_GRAPH; k++) {
            call_check(g, &cap[k], &m, &s);
            match &= m;
            same &= s;
        }

        call_check(g, &direct, &m, &s);
        all_ok &= match && m && same && s;
    }

    ok(all_ok, "%s N=%d: %d replays of %d captured calls, each followed "
       "by a direct call: CPU twin's bits on every rank", g->name, g->n,
       N_REPLAY, N_GRAPH);

    for (r = 0; r < g->n; r++) {
        CK(cudaSetDevice(g->dev[r]));
        CK(cudaGraphExecDestroy(exec[r]));
        CK(cudaGraphDestroy(graph[r]));
    }

    for (k = 0; k < N_GRAPH; k++) {
        call_free(g, &cap[k]);
    }

    call_free(g, &direct);
}


/* Refusals launch nothing, so they may be asked of one rank alone. */
static void
test_refusals(const group_t *g)
{
    slora_allreduce_t  *bad[MAX_R];
    void               *d;
    cudaStream_t        s;
    int                 r;

    CK(cudaSetDevice(g->dev[0]));
    CK(cudaMalloc(&d, CAP_BYTES + 64));
    s = g->s[0];

    is_int(slora_allreduce_bf16_cuda(g->ar[0], (uint16_t *) d,
                                     CAP_BYTES / 2 + 8, s), -2,
           "%s: bf16 beyond the capacity: -2", g->name);
    is_int(slora_allreduce_f32_cuda(g->ar[0], (float *) d,
                                    CAP_BYTES / 4 + 4, s), -2,
           "%s: f32 beyond the capacity: -2", g->name);
    is_int(slora_allreduce_bf16_cuda(g->ar[0], (uint16_t *) d + 1, 64, s),
           -1, "%s: bf16 x 2 bytes off 16: -1", g->name);
    is_int(slora_allreduce_f32_cuda(g->ar[0], (float *) d + 2, 64, s), -1,
           "%s: f32 x 8 bytes off 16: -1", g->name);
    is_int(slora_allreduce_bf16_cuda(g->ar[0], (uint16_t *) d, 12, s), -1,
           "%s: bf16 n not a multiple of 8: -1", g->name);
    is_int(slora_allreduce_f32_cuda(g->ar[0], (float *) d, 6, s), -1,
           "%s: f32 n not a multiple of 4: -1", g->name);
    is_int(slora_allreduce_f32_cuda(g->ar[0], (float *) d, -4, s), -1,
           "%s: negative n: -1", g->name);
    is_int(slora_allreduce_bf16_cuda(g->ar[0], NULL, 8, s), -1,
           "%s: NULL x: -1", g->name);
    is_int(slora_allreduce_bf16_cuda(NULL, (uint16_t *) d, 8, s), -1,
           "%s: NULL object: -1", g->name);
    is_int(slora_allreduce_bf16_cuda(g->ar[0], (uint16_t *) d, 0, s), 0,
           "%s: n = 0: 0, nothing launched", g->name);

    for (r = 0; r < g->n; r++) {
        bad[r] = g->ar[0];
    }

    ok(slora_allreduce_connect(bad, g->n) == -1
       && slora_allreduce_connect(NULL, g->n) == -1
       && slora_allreduce_connect(g->ar, g->n + 1) == -1,
       "%s: connect refuses a list out of rank order or size", g->name);
    ok(slora_allreduce_create(g->n, g->n, CAP_BYTES) == NULL
       && slora_allreduce_create(0, 9, CAP_BYTES) == NULL
       && slora_allreduce_create(0, g->n, 0) == NULL,
       "create refuses a rank out of range, 9 ranks, no capacity");

    CK(cudaFree(d));
}


/* Inputs in, calls launched round by round, results checked; 1 when
 * every rank of every call has the twin's bits (*same: ranks agree). */
static int
run_calls(const group_t *g, call_t *calls, int n_calls, int *same)
{
    int  c, rc, match, m, s;

    for (c = 0; c < n_calls; c++) {
        call_fill(g, &calls[c]);
    }

    rc = 0;

    for (c = 0; c < n_calls; c++) {
        rc |= group_launch(g, &calls[c]);
    }

    group_sync(g);

    match = rc == 0;
    *same = 1;

    for (c = 0; c < n_calls; c++) {
        call_check(g, &calls[c], &m, &s);
        match &= m;
        *same &= s;
    }

    if (rc != 0) {
        diag("a launch was refused");
    }

    return match;
}


static void
group_make(group_t *g, int n, const int *dev, const char *name)
{
    int  r;

    memset(g, 0, sizeof(*g));
    g->n = n;
    snprintf(g->name, sizeof(g->name), "%s", name);

    for (r = 0; r < n; r++) {
        g->dev[r] = dev[r];
        CK(cudaSetDevice(dev[r]));
        g->ar[r] = slora_allreduce_create(r, n, CAP_BYTES);

        if (g->ar[r] == NULL) {
            BAIL_OUT("slora_allreduce_create(%d, %d) on device %d failed", r,
                     n, dev[r]);
        }

        CK(cudaStreamCreateWithFlags(&g->s[r], cudaStreamNonBlocking));
    }

    if (slora_allreduce_connect(g->ar, n) != 0) {
        BAIL_OUT("slora_allreduce_connect(%s, %d) failed", name, n);
    }
}


static void
group_free(group_t *g)
{
    int  r;

    group_sync(g);

    for (r = 0; r < g->n; r++) {
        CK(cudaSetDevice(g->dev[r]));
        CK(cudaStreamDestroy(g->s[r]));
        slora_allreduce_free(g->ar[r]);
    }
}


/* A trapped kernel (a peer that never came) shows up here. */
static void
group_sync(const group_t *g)
{
    int  r;

    for (r = 0; r < g->n; r++) {
        CK(cudaSetDevice(g->dev[r]));
        CK(cudaStreamSynchronize(g->s[r]));
    }
}


static int
group_launch(const group_t *g, call_t *c)
{
    int  r, rc;

    rc = 0;

    for (r = 0; r < g->n; r++) {
        rc |= launch_one(g, r, c);
    }

    return rc;
}


static int
launch_one(const group_t *g, int r, call_t *c)
{
    CK(cudaSetDevice(g->dev[r]));

    if (c->bf16) {
        return slora_allreduce_bf16_cuda(g->ar[r], (uint16_t *) c->d[r],
                                         c->n, g->s[r]);
    }

    return slora_allreduce_f32_cuda(g->ar[r], (float *) c->d[r], c->n,
                                    g->s[r]);
}


static void
call_alloc(const group_t *g, call_t *c, int64_t n, int bf16)
{
    size_t  bytes;
    int     r;

    memset(c, 0, sizeof(*c));
    c->n = n;
    c->bf16 = bf16;
    bytes = (size_t) n * (bf16 ? 2 : 4);

    for (r = 0; r < g->n; r++) {
        CK(cudaSetDevice(g->dev[r]));
        CK(cudaMalloc(&c->d[r], bytes));
        c->h[r] = malloc(bytes);

        if (c->h[r] == NULL) {
            BAIL_OUT("out of memory");
        }
    }
}


/*
 * Fresh inputs: uniform in [-1, 1) times 2^k, k in [-10, 10), so that
 * the sums round and another order of additions gives other bits;
 * uploaded, then the CPU twin turns h into the expected result.
 */

static void
call_fill(const group_t *g, call_t *c)
{
    uint16_t  *hb;
    float     *hf;
    int64_t    i;
    float      v;
    size_t     bytes;
    int        r;

    bytes = (size_t) c->n * (c->bf16 ? 2 : 4);

    for (r = 0; r < g->n; r++) {
        hb = (uint16_t *) c->h[r];
        hf = (float *) c->h[r];

        for (i = 0; i < c->n; i++) {
            v = ldexpf(tap_frand(), tap_irand(20) - 10);

            if (c->bf16) {
                hb[i] = slora_f32_to_bf16(v);
            } else {
                hf[i] = v;
            }
        }

        /* a copy from pageable memory may still be landing when
         * cudaMemcpy returns, and the rank streams do not wait for it */
        CK(cudaSetDevice(g->dev[r]));
        CK(cudaMemcpy(c->d[r], c->h[r], bytes, cudaMemcpyHostToDevice));
        CK(cudaDeviceSynchronize());
    }

    if (c->bf16) {
        slora_allreduce_bf16((uint16_t *const *) c->h, g->n, c->n);
    } else {
        slora_allreduce_f32((float *const *) c->h, g->n, c->n);
    }
}


static void
call_check(const group_t *g, const call_t *c, int *match, int *same)
{
    unsigned char  *got, *first;
    size_t          bytes;
    int             r;

    bytes = (size_t) c->n * (c->bf16 ? 2 : 4);
    got = (unsigned char *) malloc(bytes);
    first = (unsigned char *) malloc(bytes);

    if (got == NULL || first == NULL) {
        BAIL_OUT("out of memory");
    }

    *match = 1;
    *same = 1;

    for (r = 0; r < g->n; r++) {
        CK(cudaSetDevice(g->dev[r]));
        CK(cudaMemcpy(r == 0 ? first : got, c->d[r], bytes,
                      cudaMemcpyDeviceToHost));
        *match &= memcmp(r == 0 ? first : got, c->h[r], bytes) == 0;

        if (r > 0) {
            *same &= memcmp(got, first, bytes) == 0;
        }
    }

    free(got);
    free(first);
}


static void
call_free(const group_t *g, call_t *c)
{
    int  r;

    for (r = 0; r < g->n; r++) {
        CK(cudaSetDevice(g->dev[r]));
        CK(cudaFree(c->d[r]));
        free(c->h[r]);
    }
}


/* 1 when every two of the first n_dev GPUs can be peers; enables it as
 * the engine would before connect(). */
static int
peers_possible(int n_dev)
{
    cudaError_t  e;
    int          r, q, can;

    for (r = 0; r < n_dev; r++) {
        for (q = 0; q < n_dev; q++) {
            if (r == q) {
                continue;
            }

            CK(cudaDeviceCanAccessPeer(&can, r, q));

            if (!can) {
                diag("device %d cannot access device %d", r, q);
                return 0;
            }

            CK(cudaSetDevice(r));
            e = cudaDeviceEnablePeerAccess(q, 0);

            if (e == cudaErrorPeerAccessAlreadyEnabled) {
                (void) cudaGetLastError();

            } else {
                CK(e);
            }
        }
    }

    return 1;
}


/*
 * Microseconds per call of a bf16 all-reduce of bytes: every rank
 * replays a graph of N_BENCH calls on zeros (device time, not the host's
 * launch rate), timed by events on its own stream; the slowest rank.
 */

static double
bench_group(const group_t *g, int64_t bytes)
{
    cudaGraph_t      graph[MAX_R];
    cudaGraphExec_t  exec[MAX_R];
    cudaEvent_t      ev[MAX_R][2];
    void            *d[MAX_R];
    float            ms;
    double           worst;
    int              r, k, rc, rep;

    rc = 0;

    for (r = 0; r < g->n; r++) {
        CK(cudaSetDevice(g->dev[r]));
        CK(cudaMalloc(&d[r], bytes));
        CK(cudaMemset(d[r], 0, bytes));
        CK(cudaDeviceSynchronize());
        CK(cudaEventCreate(&ev[r][0]));
        CK(cudaEventCreate(&ev[r][1]));
        CK(cudaStreamBeginCapture(g->s[r], cudaStreamCaptureModeThreadLocal));

        for (k = 0; k < N_BENCH; k++) {
            rc |= slora_allreduce_bf16_cuda(g->ar[r], (uint16_t *) d[r],
                                            bytes / 2, g->s[r]);
        }

        CK(cudaStreamEndCapture(g->s[r], &graph[r]));
        CK(cudaGraphInstantiate(&exec[r], graph[r], 0));
    }

    if (rc != 0) {
        BAIL_OUT("bench: a launch was refused");
    }

    for (rep = 0; rep < 2; rep++) {
        for (r = 0; r < g->n; r++) {
            CK(cudaSetDevice(g->dev[r]));
            CK(cudaEventRecord(ev[r][0], g->s[r]));
            CK(cudaGraphLaunch(exec[r], g->s[r]));
            CK(cudaEventRecord(ev[r][1], g->s[r]));
        }

        group_sync(g);
    }

    worst = 0.0;

    for (r = 0; r < g->n; r++) {
        CK(cudaSetDevice(g->dev[r]));
        CK(cudaEventElapsedTime(&ms, ev[r][0], ev[r][1]));
        worst = ms > worst ? ms : worst;
        CK(cudaGraphExecDestroy(exec[r]));
        CK(cudaGraphDestroy(graph[r]));
        CK(cudaEventDestroy(ev[r][0]));
        CK(cudaEventDestroy(ev[r][1]));
        CK(cudaFree(d[r]));
    }

    return worst * 1000.0 / N_BENCH;
}


static void
bench_all(int n_dev, int real)
{
    static const int64_t  bytes[] = { 8 << 10, 64 << 10, 512 << 10, 2 << 20 };
    static const int      emu_n[] = { 2, 4, 8 };

    double   us[4][4];
    group_t  g;
    int      dev[MAX_R], i, j, n_cols;

    n_cols = 3 + real;

    for (j = 0; j < n_cols; j++) {
        if (j < 3) {
            memset(dev, 0, sizeof(dev));
            group_make(&g, emu_n[j], dev, "emulated");

        } else {
            for (i = 0; i < n_dev; i++) {
                dev[i] = i;
            }

            group_make(&g, n_dev, dev, "gpus");
        }

        for (i = 0; i < 4; i++) {
            us[i][j] = bench_group(&g, bytes[i]);
        }

        group_free(&g);
    }

    printf("# one-shot all-reduce, bf16, us per call (graphs of %d calls, "
           "slowest rank)\n", N_BENCH);
    printf("#   %8s  %9s  %9s  %9s", "bytes", "1gpu N=2", "1gpu N=4",
           "1gpu N=8");

    if (real) {
        printf("  %5d gpus", n_dev);
    }

    printf("\n");

    for (i = 0; i < 4; i++) {
        printf("#   %8lld", (long long) bytes[i]);

        for (j = 0; j < n_cols; j++) {
            printf("  %9.2f", us[i][j]);
        }

        printf("\n");
    }
}
