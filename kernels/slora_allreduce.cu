/*
 * slora_allreduce.cu: the one-shot all-reduce over NVLink peer memory,
 * the device twin of slora_allreduce_cpu.c, for the small sums of
 * tensor parallelism (a few KB to a few MB per layer) where NCCL's
 * fixed cost dominates.
 *
 * The one idea: every rank launches the same grid for the same n and
 * block b owns the same vectors on every rank. Block b copies its
 * vectors of x into this rank's staging half (epoch & 1), tells each
 * peer's block b so (a release store of the epoch into the peer's flag
 * slot), waits for every peer's word (acquire loads of its own slots),
 * then reads all ranks' staging and sums in rank order, so every rank
 * writes the same bits. The staging is double buffered, which is why no
 * barrier closes a call: a rank writes one half again two calls later,
 * and its kernel of the call in between started only once every peer
 * had started that call, that is once every peer's kernel that read
 * the half had finished. The epoch (one per block, in device memory) is
 * advanced by the kernel itself, so a CUDA graph replays calls as they
 * were captured.
 *
 * Memory ordering: phase-1 stores, __syncthreads, then st.release.sys of
 * the flag by thread q; a peer's ld.acquire.sys that sees the flag,
 * then __syncthreads, orders its whole block's staging loads after the
 * stores (the release is cumulative over the block barrier). Flags only
 * grow, and a peer may already be one call ahead when the waiter looks,
 * so the wait is for "at least the epoch", not equality; 64-bit flags
 * never wrap. A peer that never comes traps the kernel after about four
 * seconds of spinning: the host sees a launch failure instead of a hang.
 */

#include <stdlib.h>
#include <stdint.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_allreduce.h"
}


#define SLORA_AR_THREADS      512
#define SLORA_AR_MAX_BLOCKS   64
#define SLORA_AR_GATHER_BLOCKS  1024
#define SLORA_AR_MAX_RANKS    8
#define SLORA_AR_SPIN_CYCLES  (1ll << 33)  /* about 4 s at 2 GHz */

/* one allocation per rank: flags[block][rank], epoch[block], staging */
#define SLORA_AR_EPOCH_OFF                                                    \
    (SLORA_AR_MAX_BLOCKS * SLORA_AR_MAX_RANKS * sizeof(uint64_t))
#define SLORA_AR_STAGE_OFF                                                    \
    ((SLORA_AR_EPOCH_OFF + SLORA_AR_MAX_BLOCKS * sizeof(uint64_t) + 255)      \
     & ~(size_t) 255)


/* What a rank's kernel knows of its group, passed by value at every
 * launch; fixed once connect() ran, so a captured graph keeps it. */
typedef struct {
    uint4     *stage[SLORA_AR_MAX_RANKS];  /* rank q's two halves */
    uint64_t  *flags[SLORA_AR_MAX_RANKS];  /* rank q's flags[block][rank] */
    uint64_t  *epoch;                      /* this rank's, one per block */
    int64_t    half;                       /* vectors in a staging half */
    int        rank;
} slora_ar_group_t;


struct slora_allreduce_s {
    int               rank;
    int               n_ranks;
    int               device;
    int               blocks;    /* most blocks a call launches, 0 before
                                    connect() */
    size_t            cap;       /* bytes one call may sum */
    void             *mem;
    slora_ar_group_t  g;
};


static __device__ __forceinline__ void slora_ar_release(uint64_t *p,
    uint64_t v);
static __device__ __forceinline__ uint64_t slora_ar_acquire(
    const uint64_t *p);
static __device__ __forceinline__ void slora_ar_wait(const uint64_t *flag,
    uint64_t e);
static __device__ __forceinline__ void slora_ar_widen(float *f, uint4 u);
template <int NR, bool BF16>
static __device__ __forceinline__ void slora_ar_sum(uint4 *dst,
    const uint4 *v);
static const void *slora_ar_kernel_of(int n_ranks, int bf16);
static int slora_ar_peer_access(slora_allreduce_t *const *all,
    int n_ranks);
static int slora_ar_fit(slora_allreduce_t *const *all, int n_ranks);
static int slora_ar_run(slora_allreduce_t *ar, void *x, int64_t n,
    int64_t per_vec, int bf16, int gather, void *stream);


template <int NR, bool BF16>
static __global__ void __launch_bounds__(SLORA_AR_THREADS)
slora_ar_kernel(slora_ar_group_t g, uint4 *x, int64_t n_vec)
{
    const uint4  *src[NR];
    uint4        *mine, v[NR];
    uint64_t      e;
    int64_t       i, first, step, off;
    int           r, t;

    t = threadIdx.x;
    e = *(volatile uint64_t *) &g.epoch[blockIdx.x] + 1;
    off = (int64_t) (e & 1) * g.half;
    first = (int64_t) blockIdx.x * SLORA_AR_THREADS + t;
    step = (int64_t) gridDim.x * SLORA_AR_THREADS;
    mine = g.stage[g.rank] + off;

    for (i = first; i < n_vec; i += step) {
        mine[i] = x[i];
    }

    __syncthreads();

    if (t < NR) {
        slora_ar_release(g.flags[t] + blockIdx.x * SLORA_AR_MAX_RANKS
                         + g.rank, e);
        slora_ar_wait(g.flags[g.rank] + blockIdx.x * SLORA_AR_MAX_RANKS + t,
                      e);
    }

    __syncthreads();

    /* every thread read the epoch before the barriers above; slots of
     * blocks this grid lacks advance too, so all parities agree */
    if (t == 0) {
        g.epoch[blockIdx.x] = e;
    }

    if (blockIdx.x == 0 && t >= (int) gridDim.x && t < SLORA_AR_MAX_BLOCKS) {
        g.epoch[t] += 1;
    }

#pragma unroll
    for (r = 0; r < NR; r++) {
        src[r] = g.stage[r] + off;
    }

    for (i = first; i < n_vec; i += step) {
#pragma unroll
        for (r = 0; r < NR; r++) {
            v[r] = __ldcg(src[r] + i);
        }

        slora_ar_sum<NR, BF16>(x + i, v);
    }
}


/* x = the sum of every rank's staging (half 0), which the caller has
 * ordered after every rank's copy: no flags, no spinning. */
template <int NR, bool BF16>
static __global__ void __launch_bounds__(SLORA_AR_THREADS)
slora_ar_gather_kernel(slora_ar_group_t g, uint4 *x, int64_t n_vec)
{
    uint4    v[NR];
    int64_t  i;
    int      r;

    for (i = (int64_t) blockIdx.x * SLORA_AR_THREADS + threadIdx.x;
         i < n_vec; i += (int64_t) gridDim.x * SLORA_AR_THREADS)
    {
#pragma unroll
        for (r = 0; r < NR; r++) {
            v[r] = __ldcg(g.stage[r] + i);
        }

        slora_ar_sum<NR, BF16>(x + i, v);
    }
}


static __device__ __forceinline__ void
slora_ar_release(uint64_t *p, uint64_t v)
{
    asm volatile("st.release.sys.global.u64 [%0], %1;"
                 :: "l"(p), "l"(v) : "memory");
}


static __device__ __forceinline__ uint64_t
slora_ar_acquire(const uint64_t *p)
{
    uint64_t  v;

    asm volatile("ld.acquire.sys.global.u64 %0, [%1];"
                 : "=l"(v) : "l"(p) : "memory");

    return v;
}


static __device__ __forceinline__ void
slora_ar_wait(const uint64_t *flag, uint64_t e)
{
    long long  t0;

    t0 = clock64();

    while (slora_ar_acquire(flag) < e) {
        if (clock64() - t0 > SLORA_AR_SPIN_CYCLES) {
            __trap();
        }
    }
}


/* Eight bf16 of a 16-byte word as floats, element 0 in the low half. */
static __device__ __forceinline__ void
slora_ar_widen(float *f, uint4 u)
{
    uint32_t  w[4];
    int       k;

    w[0] = u.x;
    w[1] = u.y;
    w[2] = u.z;
    w[3] = u.w;

#pragma unroll
    for (k = 0; k < 4; k++) {
        f[2 * k] = __uint_as_float(w[k] << 16);
        f[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
    }
}


/* *dst = v[0] + v[1] + ... + v[NR - 1], left to right in f32. */
template <int NR, bool BF16>
static __device__ __forceinline__ void
slora_ar_sum(uint4 *dst, const uint4 *v)
{
    float  acc[8], f[8];
    int    r, k;

    if constexpr (BF16) {
        slora_ar_widen(acc, v[0]);

#pragma unroll
        for (r = 1; r < NR; r++) {
            slora_ar_widen(f, v[r]);

#pragma unroll
            for (k = 0; k < 8; k++) {
                acc[k] += f[k];
            }
        }

        slora_st8((uint16_t *) dst, acc);

    } else {
        acc[0] = __uint_as_float(v[0].x);
        acc[1] = __uint_as_float(v[0].y);
        acc[2] = __uint_as_float(v[0].z);
        acc[3] = __uint_as_float(v[0].w);

#pragma unroll
        for (r = 1; r < NR; r++) {
            acc[0] += __uint_as_float(v[r].x);
            acc[1] += __uint_as_float(v[r].y);
            acc[2] += __uint_as_float(v[r].z);
            acc[3] += __uint_as_float(v[r].w);
        }

        *dst = make_uint4(__float_as_uint(acc[0]), __float_as_uint(acc[1]),
                          __float_as_uint(acc[2]), __float_as_uint(acc[3]));
    }
}


/* The instantiations: one kernel per group size and type. */
#define SLORA_AR_RANKS(X)  X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8)
#define SLORA_AR_F32(nr)   (const void *) slora_ar_kernel<nr, false>,
#define SLORA_AR_BF16(nr)  (const void *) slora_ar_kernel<nr, true>,

#define SLORA_AR_GATHER_F32(nr)                                               \
    (const void *) slora_ar_gather_kernel<nr, false>,
#define SLORA_AR_GATHER_BF16(nr)                                              \
    (const void *) slora_ar_gather_kernel<nr, true>,

static const void *
slora_ar_kernel_of(int n_ranks, int bf16)
{
    static const void *const  k[2][SLORA_AR_MAX_RANKS] = {
        { SLORA_AR_RANKS(SLORA_AR_F32) },
        { SLORA_AR_RANKS(SLORA_AR_BF16) }
    };

    return k[bf16 != 0][n_ranks - 1];
}


static const void *
slora_ar_gather_kernel_of(int n_ranks, int bf16)
{
    static const void *const  k[2][SLORA_AR_MAX_RANKS] = {
        { SLORA_AR_RANKS(SLORA_AR_GATHER_F32) },
        { SLORA_AR_RANKS(SLORA_AR_GATHER_BF16) }
    };

    return k[bf16 != 0][n_ranks - 1];
}


extern "C" slora_allreduce_t *
slora_allreduce_create(int rank, int n_ranks, size_t cap_bytes)
{
    slora_allreduce_t  *ar;
    size_t              halfv;
    int                 dev;

    if (n_ranks < 1 || n_ranks > SLORA_AR_MAX_RANKS || rank < 0
        || rank >= n_ranks || cap_bytes == 0 || cap_bytes > ((size_t) 1 << 40))
    {
        return NULL;
    }

    if (cudaGetDevice(&dev) != cudaSuccess) {
        return NULL;
    }

    ar = (slora_allreduce_t *) calloc(1, sizeof(slora_allreduce_t));
    if (ar == NULL) {
        return NULL;
    }

    halfv = (cap_bytes + 15) / 16;

    if (cudaMalloc(&ar->mem, SLORA_AR_STAGE_OFF + 2 * halfv * 16)
        != cudaSuccess)
    {
        (void) cudaGetLastError();
        free(ar);
        return NULL;
    }

    /* zero flags and epochs before any peer can see them */
    if (cudaMemset(ar->mem, 0, SLORA_AR_STAGE_OFF) != cudaSuccess
        || cudaDeviceSynchronize() != cudaSuccess)
    {
        (void) cudaGetLastError();
        (void) cudaFree(ar->mem);
        free(ar);
        return NULL;
    }

    ar->rank = rank;
    ar->n_ranks = n_ranks;
    ar->device = dev;
    ar->cap = cap_bytes;
    ar->g.epoch = (uint64_t *) ((char *) ar->mem + SLORA_AR_EPOCH_OFF);
    ar->g.half = (int64_t) halfv;
    ar->g.rank = rank;

    return ar;
}


extern "C" int
slora_allreduce_connect(slora_allreduce_t *const *all, int n_ranks)
{
    int  r, q, cur, blocks;

    if (all == NULL || n_ranks < 1 || n_ranks > SLORA_AR_MAX_RANKS) {
        return -1;
    }

    for (r = 0; r < n_ranks; r++) {
        if (all[r] == NULL || all[r]->rank != r
            || all[r]->n_ranks != n_ranks)
        {
            return -1;
        }
    }

    if (cudaGetDevice(&cur) != cudaSuccess) {
        return -1;
    }

    blocks = -1;

    if (slora_ar_peer_access(all, n_ranks) == 0) {
        blocks = slora_ar_fit(all, n_ranks);
    }

    if (cudaSetDevice(cur) != cudaSuccess || blocks < 1) {
        (void) cudaGetLastError();
        return -1;
    }

    for (r = 0; r < n_ranks; r++) {
        for (q = 0; q < n_ranks; q++) {
            all[r]->g.stage[q] = (uint4 *) ((char *) all[q]->mem
                                            + SLORA_AR_STAGE_OFF);
            all[r]->g.flags[q] = (uint64_t *) all[q]->mem;
        }

        all[r]->blocks = blocks;
    }

    return 0;
}


/* Peer access between every two distinct devices of the group, both
 * ways; one already enabled (by the caller, say) is fine. */
static int
slora_ar_peer_access(slora_allreduce_t *const *all, int n_ranks)
{
    cudaError_t  e;
    int          r, q, can;

    for (r = 0; r < n_ranks; r++) {
        for (q = 0; q < n_ranks; q++) {
            if (all[r]->device == all[q]->device) {
                continue;
            }

            if (cudaDeviceCanAccessPeer(&can, all[r]->device, all[q]->device)
                != cudaSuccess || !can
                || cudaSetDevice(all[r]->device) != cudaSuccess)
            {
                return -1;
            }

            e = cudaDeviceEnablePeerAccess(all[q]->device, 0);

            if (e == cudaErrorPeerAccessAlreadyEnabled) {
                (void) cudaGetLastError();

            } else if (e != cudaSuccess) {
                return -1;
            }
        }
    }

    return 0;
}


/*
 * The most blocks a call may launch: SLORA_AR_MAX_BLOCKS, fewer when
 * ranks share a device, so that all their grids are resident together
 * with a quarter of the device to spare (a block spins until the same
 * block of every peer arrives, and a peer's block that cannot be
 * scheduled would never arrive). Loads the group's kernels on every
 * device. -1 on failure.
 */

static int
slora_ar_fit(slora_allreduce_t *const *all, int n_ranks)
{
    cudaFuncAttributes   attr;
    const void          *fn;
    int                  r, q, share, per_sm, one, sms, bf, fit, blocks;

    blocks = SLORA_AR_MAX_BLOCKS;

    for (r = 0; r < n_ranks; r++) {
        share = 0;

        for (q = 0; q < n_ranks; q++) {
            share += all[q]->device == all[r]->device;
        }

        if (cudaSetDevice(all[r]->device) != cudaSuccess
            || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount,
                                      all[r]->device) != cudaSuccess)
        {
            return -1;
        }

        per_sm = 1 << 30;

        /* cudaFuncGetAttributes also loads the kernel now: under lazy
         * loading, a first launch that loads it could wait for a spinning
         * rank of the same device, which waits for it */
        for (bf = 0; bf < 2; bf++) {
            fn = slora_ar_kernel_of(n_ranks, bf);

            if (cudaFuncGetAttributes(&attr, fn) != cudaSuccess
                || cudaOccupancyMaxActiveBlocksPerMultiprocessor(&one, fn,
                       SLORA_AR_THREADS, 0) != cudaSuccess)
            {
                return -1;
            }

            per_sm = one < per_sm ? one : per_sm;
        }

        fit = per_sm * sms * 3 / 4 / share;
        blocks = fit < blocks ? fit : blocks;
    }

    return blocks;
}


extern "C" int
slora_allreduce_bf16_cuda(slora_allreduce_t *ar, uint16_t *x, int64_t n,
    void *stream)
{
    return slora_ar_run(ar, x, n, 8, 1, 0, stream);
}


extern "C" int
slora_allreduce_f32_cuda(slora_allreduce_t *ar, float *x, int64_t n,
    void *stream)
{
    return slora_ar_run(ar, x, n, 4, 0, 0, stream);
}


/* per_vec elements make one 16-byte vector; gather: the kernel without
 * the barrier, whose grid need not fit beside its peers' (it waits for
 * nobody). */
static int
slora_ar_run(slora_allreduce_t *ar, void *x, int64_t n, int64_t per_vec,
    int bf16, int gather, void *stream)
{
    int64_t       n_vec, blocks, max_blocks;
    uint4        *xv;
    void         *args[3];
    cudaError_t   e;
    int           cur;

    if (ar == NULL || ar->blocks < 1 || n < 0 || n % per_vec != 0
        || (n > 0 && (x == NULL || !slora_cuda_aligned(x))))
    {
        return -1;
    }

    if (n == 0) {
        return 0;
    }

    if ((uint64_t) n > ar->cap / (size_t) (16 / per_vec)) {
        return -2;
    }

    n_vec = n / per_vec;
    blocks = (n_vec + SLORA_AR_THREADS - 1) / SLORA_AR_THREADS;
    max_blocks = gather ? SLORA_AR_GATHER_BLOCKS : ar->blocks;
    blocks = blocks < max_blocks ? blocks : max_blocks;
    xv = (uint4 *) x;

    if (cudaGetDevice(&cur) != cudaSuccess) {
        return -1;
    }

    if (cur != ar->device && cudaSetDevice(ar->device) != cudaSuccess) {
        return -1;
    }

    args[0] = &ar->g;
    args[1] = &xv;
    args[2] = &n_vec;

    e = cudaLaunchKernel(gather ? slora_ar_gather_kernel_of(ar->n_ranks, bf16)
                                : slora_ar_kernel_of(ar->n_ranks, bf16),
                         dim3((unsigned) blocks), dim3(SLORA_AR_THREADS),
                         args, 0, (cudaStream_t) stream);

    if (e != cudaSuccess) {
        (void) cudaGetLastError();
    }

    if (cur != ar->device) {
        (void) cudaSetDevice(cur);
    }

    return e == cudaSuccess ? 0 : -1;
}


extern "C" int
slora_allreduce_stage_cuda(slora_allreduce_t *ar, const void *x,
    int64_t bytes, void *stream)
{
    if (ar == NULL || ar->blocks < 1 || bytes < 0 || bytes % 16 != 0
        || (bytes > 0 && (x == NULL || !slora_cuda_aligned(x))))
    {
        return -1;
    }

    if ((uint64_t) bytes > ar->cap) {
        return -2;
    }

    if (bytes == 0) {
        return 0;
    }

    /* the copy runs on the stream's device, whichever is current */
    return cudaMemcpyAsync(ar->g.stage[ar->rank], x, (size_t) bytes,
                           cudaMemcpyDeviceToDevice, (cudaStream_t) stream)
           == cudaSuccess ? 0 : -1;
}


extern "C" int
slora_allreduce_gather_bf16_cuda(slora_allreduce_t *ar, uint16_t *x,
    int64_t n, void *stream)
{
    return slora_ar_run(ar, x, n, 8, 1, 1, stream);
}


extern "C" int
slora_allreduce_gather_f32_cuda(slora_allreduce_t *ar, float *x, int64_t n,
    void *stream)
{
    return slora_ar_run(ar, x, n, 4, 0, 1, stream);
}


extern "C" void
slora_allreduce_free(slora_allreduce_t *ar)
{
    int  cur;

    if (ar == NULL) {
        return;
    }

    if (cudaGetDevice(&cur) == cudaSuccess) {
        if (cudaSetDevice(ar->device) == cudaSuccess) {
            (void) cudaFree(ar->mem);
        }

        (void) cudaSetDevice(cur);
    }

    free(ar);
}
