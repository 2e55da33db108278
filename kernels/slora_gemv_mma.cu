/*
 * slora_gemv_mma.cu: the base projections of decode steps on tensor
 * cores, y[n, out] = x[n, in] W^T for n <= 64, the device twin of
 * slora_gemv_cpu.c as slora_gemv.cu is on the CUDA cores.
 *
 * The one idea: at these n the product only streams W, so the kernel is
 * a pipeline whose one job is to keep enough of W's bytes in flight,
 * with the arithmetic hidden under them, and no block's work may wait on
 * another's. So the step's x rows are wgmma's M side (64, TMA's zeros
 * past n) and a block's slice of W rows its N side, whose width wgmma
 * lets us choose in steps of 8: every block takes one slice of out / SMs
 * rows (rounded up to 8) over the whole of K, and the grid is one block
 * an SM with no split of K, no partial sums and nothing to add up after.
 * In a block one warp issues TMA copies (W's slice and x, 1-4 boxes of
 * 64 k a stage, 128-byte swizzled) into a ring of as many stages as
 * shared memory holds, each signalled by an mbarrier; one warpgroup takes
 * them in turn with wgmma into 1-4 independent chains of sums (a narrow
 * slice's bytes come faster than one chain's products, each of which
 * waits out the one before), and gives each stage back as soon as its
 * products are done. W is nobody's output, so the first stages' copies go
 * out before the wait on the kernel before (programmatic dependent
 * launch), marked to leave L2 first; the kernel after waits for this
 * one's exit. TMA fills rows and k past the tensors' edges with zeros,
 * so any out and any in of 8 work.
 *
 * The cost of the shape: every block reads all of x's rows from L2, so x
 * weighs (rows of x) / (W rows a block) against W; at 64 rows and narrow
 * outputs (4096 over 132 SMs: 32 rows a block) that is twice W's bytes.
 * And a grid of one block an SM holds every SM for the whole of K, so a
 * kernel forked beside it (LoRA's shrink and expand) waits for its end:
 * a caller with work beside it asks for slices that leave part of the
 * SMs free (slora_gemv_mma_rows' share), which costs the kernel little,
 * the copy rate being the HBM's, not an SM's. slora_cuda_gemm.c sends it
 * the shapes where it wins (bench/RESULTS.md).
 */

#include <stdint.h>
#include <stddef.h>
#include <cuda.h>
#include <cudaTypedefs.h>
#include <atomic>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_gemv.h"
}


#define SLORA_WS_K          64                  /* k a stage: 128 bytes,
                                                 * the swizzle's span */
#define SLORA_WS_M          64                  /* x rows in a stage:
                                                 * wgmma's M */
#define SLORA_WS_RING       (200 * 1024)        /* the ring's bytes */
#define SLORA_WS_MAX_STAGES 24
#define SLORA_WS_CONSUMERS  128                 /* one warpgroup */
#define SLORA_WS_THREADS    (SLORA_WS_CONSUMERS + SLORA_CUDA_WARP)
#define SLORA_WS_ROW_BYTES  (SLORA_WS_K * 2)
#define SLORA_WS_X_BYTES    (SLORA_WS_M * SLORA_WS_ROW_BYTES)
#define SLORA_WS_SMEM       (SLORA_WS_RING + 1024)
#define SLORA_WS_DEVICES    64

/* boxes of 64 k a stage, by wgmma's N (SLORA_WS_BOXES: the same for
 * every N, for timing builds) */
#ifdef SLORA_WS_BOXES
#define SLORA_WS_KB(kb)     SLORA_WS_BOXES
#else
#define SLORA_WS_KB(kb)     (kb)
#endif


static __device__ __forceinline__ uint32_t
slora_ws_smem(const void *p)
{
    return (uint32_t) __cvta_generic_to_shared(p);
}


static __device__ __forceinline__ void
slora_ws_bar_init(uint64_t *b, uint32_t count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;"
                 :: "r"(slora_ws_smem(b)), "r"(count) : "memory");
}


/* the producer's arrival on a full barrier, with the bytes its copies
 * will bring (TMA counts a box's zeros past the edges as bytes too) */
static __device__ __forceinline__ void
slora_ws_bar_expect(uint64_t *b, uint32_t bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;"
                 :: "r"(slora_ws_smem(b)), "r"(bytes) : "memory");
}


static __device__ __forceinline__ void
slora_ws_bar_arrive(uint64_t *b)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];"
                 :: "r"(slora_ws_smem(b)) : "memory");
}


static __device__ __forceinline__ void
slora_ws_bar_wait(uint64_t *b, uint32_t parity)
{
    uint32_t  done;

    do {
        asm volatile("{\n"
                     ".reg .pred p;\n"
                     "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                     "selp.u32 %0, 1, 0, p;\n"
                     "}"
                     : "=r"(done)
                     : "r"(slora_ws_smem(b)), "r"(parity) : "memory");
    } while (!done);
}


/* L2 policies: W is read once and should leave L2 first, so that x,
 * which every block reads, stays there */
static __device__ __forceinline__ uint64_t
slora_ws_policy(int first)
{
    uint64_t  p;

    if (first) {
        asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;"
                     : "=l"(p));

    } else {
        asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;"
                     : "=l"(p));
    }

    return p;
}


/* box (k, row) of map into dst, counted on bar, under L2 policy */
static __device__ __forceinline__ void
slora_ws_tma(void *dst, const CUtensorMap *map, uint64_t *bar, int32_t k,
    int32_t row, uint64_t policy)
{
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global"
                 ".mbarrier::complete_tx::bytes.L2::cache_hint"
                 " [%0], [%1, {%2, %3}], [%4], %5;"
                 :: "r"(slora_ws_smem(dst)), "l"((uint64_t) map), "r"(k),
                    "r"(row), "r"(slora_ws_smem(bar)), "l"(policy)
                 : "memory");
}


/* a K-major operand in shared memory as TMA's 128-byte swizzle leaves
 * it: rows of 128 bytes, groups of 8 rows 1024 bytes apart */
static __device__ __forceinline__ uint64_t
slora_ws_desc(const void *p)
{
    return (uint64_t) ((slora_ws_smem(p) & 0x3ffff) >> 4)
           | (uint64_t) 1 << 16
           | (uint64_t) (1024 >> 4) << 32
           | (uint64_t) 1 << 62;
}


/* the wait on the kernel before (programmatic dependent launch) */
static __device__ __forceinline__ void
slora_ws_wait(void)
{
    asm volatile("griddepcontrol.wait;" ::: "memory");
}


/* The kernel after is let in (scheduled, to wait on this one's end) only
 * near the end of the stream: let in at the start, its blocks sat beside
 * these for the whole stream and cost the decode step at batch 64 0.5 ms
 * (bench/RESULTS.md, 2026-11-30 19:14). let_in chunks before the last
 * (0: once the products are done; below 0: at the exit) its launch and
 * its blocks' start hide behind this one's last stages instead of
 * following them: the caller's choice (slora_gemv_mma_cuda). */
static __device__ __forceinline__ void
slora_ws_let_in(void)
{
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}


/* pins the sums to their registers at this point, so that the compiler
 * moves none of them while a wgmma may still write it (a move would make
 * ptxas wait out the wgmma there, C7517) */
template <int NI>
static __device__ __forceinline__ void
slora_ws_pin(float *d)
{
    int  i;

#pragma unroll
    for (i = 0; i < NI / 2; i++) {
        asm volatile("" : "+f"(d[i]) :: "memory");
    }
}


/* d[64 x NI] = A[64 x 16] B[NI x 16]^T (+ d with add): A (x) and B (W)
 * K-major descriptors. add rather than zeroing d keeps every access to d
 * in wgmma's own hands: a write to it elsewhere would make ptxas wait out
 * each wgmma before the next (C7518). */
template <int NI>
static __device__ __forceinline__ void slora_ws_mma(float *d, uint64_t a,
    uint64_t b, int32_t add);


/* The specializations, one a width N: the asm names its N / 2 sums
 * (SLORA_WS_S<count>, their operands SLORA_WS_O<count>, built 8 at a
 * time), then A's and B's descriptors and the add flag, whose operand
 * numbers (IA, IB, IADD) follow the sums'. */
#define SLORA_WS_S8    "%0, %1, %2, %3, %4, %5, %6, %7"
#define SLORA_WS_S16   SLORA_WS_S8                                            \
    ", %8, %9, %10, %11, %12, %13, %14, %15"
#define SLORA_WS_S24   SLORA_WS_S16                                           \
    ", %16, %17, %18, %19, %20, %21, %22, %23"
#define SLORA_WS_S32   SLORA_WS_S24                                           \
    ", %24, %25, %26, %27, %28, %29, %30, %31"
#define SLORA_WS_S40   SLORA_WS_S32                                           \
    ", %32, %33, %34, %35, %36, %37, %38, %39"
#define SLORA_WS_S48   SLORA_WS_S40                                           \
    ", %40, %41, %42, %43, %44, %45, %46, %47"
#define SLORA_WS_S56   SLORA_WS_S48                                           \
    ", %48, %49, %50, %51, %52, %53, %54, %55"
#define SLORA_WS_S64   SLORA_WS_S56                                           \
    ", %56, %57, %58, %59, %60, %61, %62, %63"
#define SLORA_WS_S72   SLORA_WS_S64                                           \
    ", %64, %65, %66, %67, %68, %69, %70, %71"
#define SLORA_WS_S80   SLORA_WS_S72                                           \
    ", %72, %73, %74, %75, %76, %77, %78, %79"
#define SLORA_WS_S88   SLORA_WS_S80                                           \
    ", %80, %81, %82, %83, %84, %85, %86, %87"
#define SLORA_WS_S96   SLORA_WS_S88                                           \
    ", %88, %89, %90, %91, %92, %93, %94, %95"
#define SLORA_WS_S104  SLORA_WS_S96                                           \
    ", %96, %97, %98, %99, %100, %101, %102, %103"
#define SLORA_WS_S112  SLORA_WS_S104                                          \
    ", %104, %105, %106, %107, %108, %109, %110, %111"
#define SLORA_WS_S120  SLORA_WS_S112                                          \
    ", %112, %113, %114, %115, %116, %117, %118, %119"
#define SLORA_WS_S128  SLORA_WS_S120                                          \
    ", %120, %121, %122, %123, %124, %125, %126, %127"

#define SLORA_WS_D8(i)                                                        \
    "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]),               \
    "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])
#define SLORA_WS_O8    SLORA_WS_D8(0)
#define SLORA_WS_O16   SLORA_WS_O8, SLORA_WS_D8(8)
#define SLORA_WS_O24   SLORA_WS_O16, SLORA_WS_D8(16)
#define SLORA_WS_O32   SLORA_WS_O24, SLORA_WS_D8(24)
#define SLORA_WS_O40   SLORA_WS_O32, SLORA_WS_D8(32)
#define SLORA_WS_O48   SLORA_WS_O40, SLORA_WS_D8(40)
#define SLORA_WS_O56   SLORA_WS_O48, SLORA_WS_D8(48)
#define SLORA_WS_O64   SLORA_WS_O56, SLORA_WS_D8(56)
#define SLORA_WS_O72   SLORA_WS_O64, SLORA_WS_D8(64)
#define SLORA_WS_O80   SLORA_WS_O72, SLORA_WS_D8(72)
#define SLORA_WS_O88   SLORA_WS_O80, SLORA_WS_D8(80)
#define SLORA_WS_O96   SLORA_WS_O88, SLORA_WS_D8(88)
#define SLORA_WS_O104  SLORA_WS_O96, SLORA_WS_D8(96)
#define SLORA_WS_O112  SLORA_WS_O104, SLORA_WS_D8(104)
#define SLORA_WS_O120  SLORA_WS_O112, SLORA_WS_D8(112)
#define SLORA_WS_O128  SLORA_WS_O120, SLORA_WS_D8(120)

#define SLORA_WS_MMA(N, R, IA, IB, IADD, ...)                                 \
template <>                                                                   \
__device__ __forceinline__ void                                               \
slora_ws_mma<N>(float *d, uint64_t a, uint64_t b, int32_t add)                \
{                                                                             \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" IADD ", 0;\n"          \
                 "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32.bf16.bf16 "  \
                 "{" R "}, %" IA ", %" IB ", p, 1, 1, 0, 0;\n}"              \
                 : __VA_ARGS__                                                \
                 : "l"(a), "l"(b), "r"(add));                                 \
}

SLORA_WS_MMA(16, SLORA_WS_S8, "8", "9", "10", SLORA_WS_O8)
SLORA_WS_MMA(32, SLORA_WS_S16, "16", "17", "18", SLORA_WS_O16)
SLORA_WS_MMA(48, SLORA_WS_S24, "24", "25", "26", SLORA_WS_O24)
SLORA_WS_MMA(64, SLORA_WS_S32, "32", "33", "34", SLORA_WS_O32)
SLORA_WS_MMA(96, SLORA_WS_S48, "48", "49", "50", SLORA_WS_O48)
SLORA_WS_MMA(128, SLORA_WS_S64, "64", "65", "66", SLORA_WS_O64)
SLORA_WS_MMA(192, SLORA_WS_S96, "96", "97", "98", SLORA_WS_O96)
SLORA_WS_MMA(256, SLORA_WS_S128, "128", "129", "130", SLORA_WS_O128)

#undef SLORA_WS_MMA



/*
 * Block b takes W rows [b tr, b tr + tr) (tr <= NI, a multiple of 8)
 * over every k. Its producer (warp 4) streams the chunks of 64 k through
 * the ring of `stages` stages, each x's 64 rows then NI rows of W; its
 * warpgroup (warps 0-3) takes them in order, then writes its sums.
 *
 * GLU (the MLP's gate and up in one W, up's rows from up0): the block
 * takes gate's rows [b tr, b tr + tr) into the first NI / 2 rows of its
 * slice and up's same rows into the second (tr <= NI / 2), so that a
 * thread holds each gate sum and its up sum, NI / 4 registers apart, and
 * writes silu(gate) * up, each rounded to bf16 first as the unfused GEMM
 * and SiLU-and-mul round them: the same bits, one launch and one pass
 * over y fewer.
 */
template <int NI, int CH, int KB, bool GLU>
static __global__ void __launch_bounds__(SLORA_WS_THREADS, 1)
slora_gemv_ws_kernel(const __grid_constant__ CUtensorMap wmap,
    const __grid_constant__ CUtensorMap xmap, void *y, int64_t ld_y,
    int f32_out, const uint16_t *__restrict__ bias, int32_t n, int32_t out,
    int32_t in, int32_t tr, int32_t up0, int32_t mp, int32_t stages,
    int32_t let_in)
{
    constexpr uint32_t  W_BYTES = NI * SLORA_WS_ROW_BYTES;
    constexpr uint32_t  UP = NI / 2 * SLORA_WS_ROW_BYTES;
    constexpr uint32_t  STAGE = KB * (SLORA_WS_X_BYTES + W_BYTES);

    extern __shared__ unsigned char  smem[];
    __shared__ __align__(8) uint64_t  full[SLORA_WS_MAX_STAGES];
    __shared__ __align__(8) uint64_t  empty[SLORA_WS_MAX_STAGES];

    unsigned char  *ring, *st;
    float           acc[CH][NI / 2], v;
    uint64_t        da, db;
    uint32_t        bytes;
    int32_t         warp, lane, chunks, row0, c, s, pre, kk, i, j, b, k,
                    pending, t, col;

    ring = (unsigned char *) (((uintptr_t) smem + 1023) & ~(uintptr_t) 1023);
    /* warp-uniform as far as ptxas can see (a shuffle's), which the
     * warpgroup's branch around wgmma must be */
    warp = __shfl_sync(0xffffffff, (int32_t) threadIdx.x / SLORA_CUDA_WARP,
                       0);
    lane = threadIdx.x % SLORA_CUDA_WARP;

    chunks = (in + KB * SLORA_WS_K - 1) / (KB * SLORA_WS_K);
    row0 = (int32_t) blockIdx.x * tr;
    bytes = (uint32_t) (KB * (mp + (GLU ? 2 : 1) * tr) * SLORA_WS_ROW_BYTES);

    if (threadIdx.x == 0) {
        for (s = 0; s < stages; s++) {
            slora_ws_bar_init(&full[s], 1);
            slora_ws_bar_init(&empty[s], SLORA_WS_CONSUMERS / SLORA_CUDA_WARP);
        }

        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    }

    __syncthreads();

    if (warp == SLORA_WS_CONSUMERS / SLORA_CUDA_WARP) {

        /* the producer: W of the first stages before the wait on the
         * kernel before, their x after it, then the ring as it frees */
        if (lane == 0) {
            pre = chunks < stages ? chunks : stages;

            for (c = 0; c < pre; c++) {
                st = ring + c * STAGE;
                slora_ws_bar_expect(&full[c], bytes);

                for (b = 0; b < KB; b++) {
                    slora_ws_tma(st + KB * SLORA_WS_X_BYTES + b * W_BYTES,
                                 &wmap, &full[c], (c * KB + b) * SLORA_WS_K,
                                 row0, slora_ws_policy(1));

                    if (GLU) {
                        slora_ws_tma(st + KB * SLORA_WS_X_BYTES + b * W_BYTES
                                     + UP, &wmap, &full[c],
                                     (c * KB + b) * SLORA_WS_K, up0 + row0,
                                     slora_ws_policy(1));
                    }
                }
            }

            slora_ws_wait();

            for (c = 0; c < pre; c++) {
                for (b = 0; b < KB; b++) {
                    slora_ws_tma(ring + c * STAGE + b * SLORA_WS_X_BYTES,
                                 &xmap, &full[c], (c * KB + b) * SLORA_WS_K,
                                 0, slora_ws_policy(0));
                }
            }

            for (c = pre; c < chunks; c++) {
                s = c % stages;
                st = ring + s * STAGE;
                slora_ws_bar_wait(&empty[s], (c / stages - 1) & 1);
                slora_ws_bar_expect(&full[s], bytes);

                for (b = 0; b < KB; b++) {
                    slora_ws_tma(st + KB * SLORA_WS_X_BYTES + b * W_BYTES,
                                 &wmap, &full[s], (c * KB + b) * SLORA_WS_K,
                                 row0, slora_ws_policy(1));

                    if (GLU) {
                        slora_ws_tma(st + KB * SLORA_WS_X_BYTES + b * W_BYTES
                                     + UP, &wmap, &full[s],
                                     (c * KB + b) * SLORA_WS_K, up0 + row0,
                                     slora_ws_policy(1));
                    }

                    slora_ws_tma(st + b * SLORA_WS_X_BYTES, &xmap, &full[s],
                                 (c * KB + b) * SLORA_WS_K, 0,
                                 slora_ws_policy(0));
                }
            }

        } else {
            slora_ws_wait();
        }

        return;
    }

    /* x's rows past the mp that TMA brings (n padded to 16, 32 or 64)
     * are zeros, in every stage, before wgmma's proxy reads them */
    for (i = (int32_t) threadIdx.x; i < stages * KB * (SLORA_WS_M - mp) * 8;
         i += SLORA_WS_CONSUMERS)
    {
        b = i / ((SLORA_WS_M - mp) * 8);        /* the box, over stages */
        ((uint4 *) (ring + (b / KB) * STAGE + (b % KB) * SLORA_WS_X_BYTES
                    + mp * SLORA_WS_ROW_BYTES))[i % ((SLORA_WS_M - mp) * 8)] =
            make_uint4(0, 0, 0, 0);
    }

    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    asm volatile("bar.sync 1, %0;" :: "n"(SLORA_WS_CONSUMERS) : "memory");

    slora_ws_wait();

    /* the loop carries wgmma's pipeline one stage deep, over CH chains
     * of sums: the products of one chain wait each for the one before
     * (some 140 cycles), so one chain alone could not keep up with a
     * narrow slice's bytes; only the end, after the wait for all of it,
     * reads the sums */
    pending = -1;

    for (c = 0; c < chunks; c++) {
        if (let_in > 0 && c == (chunks > let_in ? chunks - let_in : 0)) {
            slora_ws_let_in();
        }

        s = c % stages;
        slora_ws_bar_wait(&full[s], (c / stages) & 1);

        st = ring + s * STAGE;

#pragma unroll
        for (j = 0; j < CH; j++) {
            slora_ws_pin<NI>(acc[j]);
        }

        asm volatile("wgmma.fence.sync.aligned;" ::: "memory");

#pragma unroll
        for (b = 0; b < KB; b++) {
            da = slora_ws_desc(st + b * SLORA_WS_X_BYTES);
            db = slora_ws_desc(st + KB * SLORA_WS_X_BYTES + b * W_BYTES);

#pragma unroll
            for (kk = 0; kk < SLORA_WS_K / 16; kk++) {
                /* 16 k further on is 32 bytes on, 2 in the address's
                 * 16-byte units; a chain's first product overwrites what
                 * it held */
                k = b * (SLORA_WS_K / 16) + kk;
                slora_ws_mma<NI>(acc[k % CH], da + 2 * kk, db + 2 * kk,
                                 c != 0 || k >= CH);
            }
        }

        asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");

#pragma unroll
        for (j = 0; j < CH; j++) {
            slora_ws_pin<NI>(acc[j]);
        }

        /* the stage before this one is done with: give it back */
        asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");

        if (pending >= 0 && lane == 0) {
            slora_ws_bar_arrive(&empty[pending]);
        }

        pending = s;
    }

    asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");

    if (let_in == 0) {
        slora_ws_let_in();
    }

#pragma unroll
    for (j = 0; j < CH; j++) {
        slora_ws_pin<NI>(acc[j]);
    }

#pragma unroll
    for (j = 1; j < CH; j++) {
#pragma unroll
        for (i = 0; i < NI / 2; i++) {
            acc[0][i] += acc[j][i];
        }
    }

    /* warp w, lane l: x rows 16 w + l / 4 (+ 8), W rows 8 j + 2 (l % 4)
     * (+ 1) of the slice; with GLU, up's rows NI / 2 further */
    if constexpr (GLU) {
#pragma unroll
        for (i = 0; i < NI / 4; i++) {
            t = 16 * warp + lane / 4 + 8 * ((i % 4) / 2);
            col = 8 * (i / 4) + 2 * (lane % 4) + i % 2;

            if (t >= n || col >= tr || row0 + col >= out) {
                continue;
            }

            v = slora_silu_mul1(slora_bf2f(slora_f2bf(acc[0][i])),
                                slora_bf2f(slora_f2bf(acc[0][i + NI / 4])));
            ((uint16_t *) y)[(int64_t) t * ld_y + row0 + col] =
                slora_f2bf(v);
        }

    } else {

#pragma unroll
        for (i = 0; i < NI / 2; i++) {
            t = 16 * warp + lane / 4 + 8 * ((i % 4) / 2);
            col = 8 * (i / 4) + 2 * (lane % 4) + i % 2;

            if (t >= n || col >= tr || row0 + col >= out) {
                continue;
            }

            v = acc[0][i]
                + (bias != NULL ? slora_bf2f(bias[row0 + col]) : 0.0f);

            if (f32_out) {
                ((float *) y)[(int64_t) t * ld_y + row0 + col] = v;

            } else {
                ((uint16_t *) y)[(int64_t) t * ld_y + row0 + col] =
                    slora_f2bf(v);
            }
        }
    }
}


/* the driver's tensor-map encoder, NULL where the driver lacks it */
static PFN_cuTensorMapEncodeTiled_v12000
slora_gemv_ws_encoder(void)
{
    cudaDriverEntryPointQueryResult  q;
    void                            *fn;

    fn = NULL;

    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn,
                                         12000, cudaEnableDefault, &q)
        != cudaSuccess || q != cudaDriverEntryPointSuccess)
    {
        cudaGetLastError();
        return NULL;
    }

    return (PFN_cuTensorMapEncodeTiled_v12000) fn;
}


static int
slora_gemv_ws_sms(void)
{
    int  dev, sms;

    if (cudaGetDevice(&dev) != cudaSuccess
        || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev)
           != cudaSuccess)
    {
        cudaGetLastError();
        return 132;
    }

    return sms;
}


/* a row-major bf16 [rows, cols] tensor, rows ld elements apart, in
 * boxes of 64 columns by box_rows, 128-byte swizzled, zeros past the
 * edges */
static int
slora_gemv_ws_map(CUtensorMap *map, const void *base, int64_t rows,
    int64_t cols, int64_t ld, uint32_t box_rows)
{
    /* once, and safely from the engine threads of tensor parallelism */
    static const PFN_cuTensorMapEncodeTiled_v12000  encode =
        slora_gemv_ws_encoder();

    cuuint64_t  dims[2], strides[1];
    cuuint32_t  box[2], es[2];

    if (encode == NULL) {
        return -1;
    }

    dims[0] = (cuuint64_t) cols;
    dims[1] = (cuuint64_t) rows;
    strides[0] = (cuuint64_t) ld * 2;
    box[0] = SLORA_WS_K;
    box[1] = box_rows;
    es[0] = 1;
    es[1] = 1;

    return encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, (void *) base,
                  dims, strides, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE,
                  CU_TENSOR_MAP_SWIZZLE_128B,
                  CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE)
           == CUDA_SUCCESS ? 0 : -1;
}


template <int NI, int CH, int KB, bool GLU>
static int
slora_gemv_ws_launch(cudaLaunchConfig_t *cfg, void *y, int64_t ld_y,
    int f32_out, const uint16_t *x, int64_t ld_x, const uint16_t *w,
    const uint16_t *bias, int32_t n, int32_t out, int32_t in, int32_t tr,
    int32_t let_in)
{
    /* the shared memory the kernel may ask for, once a device (the
     * engine threads of tensor parallelism each have their own), not at
     * every launch: steps outside graphs launch it hundreds of times */
    static std::atomic<int>  smem_set[SLORA_WS_DEVICES];

    /* the consumer gives a stage back only once it holds the next: one
     * stage alone would wait on itself */
    static_assert(SLORA_WS_RING
                  / (KB * (SLORA_WS_X_BYTES + NI * SLORA_WS_ROW_BYTES)) >= 2,
                  "the ring holds two stages at least");

    CUtensorMap  wmap, xmap;
    int32_t      stages, mp;
    int          dev;

    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0
        || dev >= SLORA_WS_DEVICES)
    {
        cudaGetLastError();
        return -1;
    }

    if (!smem_set[dev].load(std::memory_order_acquire)) {
        if (cudaFuncSetAttribute(slora_gemv_ws_kernel<NI, CH, KB, GLU>,
                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int) SLORA_WS_SMEM)
            != cudaSuccess)
        {
            cudaGetLastError();
            return -1;
        }

        smem_set[dev].store(1, std::memory_order_release);
    }

    /* x's rows that TMA brings: n padded to 16, 32 or 64 */
    mp = n <= 16 ? 16 : n <= 32 ? 32 : SLORA_WS_M;

    /* with GLU, W holds gate's out rows and then up's */
    if (slora_gemv_ws_map(&wmap, w, GLU ? 2 * (int64_t) out : out, in, in,
                          (uint32_t) tr) != 0
        || slora_gemv_ws_map(&xmap, x, n, in, ld_x, (uint32_t) mp) != 0)
    {
        return -1;
    }

    stages = SLORA_WS_RING
             / (KB * (SLORA_WS_X_BYTES + NI * SLORA_WS_ROW_BYTES));
    stages = stages < SLORA_WS_MAX_STAGES ? stages : SLORA_WS_MAX_STAGES;

    cfg->dynamicSmemBytes = (size_t) stages * KB
                            * (SLORA_WS_X_BYTES + NI * SLORA_WS_ROW_BYTES)
                            + 1024;

    (void) cudaLaunchKernelEx(cfg, slora_gemv_ws_kernel<NI, CH, KB, GLU>,
                              wmap, xmap, y, ld_y, f32_out, bias, n, out, in,
                              tr, GLU ? out : 0, mp, stages, let_in);

    return slora_cuda_launched();
}


extern "C" int32_t
slora_gemv_mma_rows(int32_t out, int32_t share)
{
    static const int  sms = slora_gemv_ws_sms();

    int32_t  blocks, tr;

    blocks = sms * (share < 1 ? 1 : share > 100 ? 100 : share) / 100;
    blocks = blocks > 1 ? blocks : 1;
    tr = (out + blocks - 1) / blocks;
    tr = (tr + 7) / 8 * 8;

    return tr < SLORA_GEMV_MMA_MAX_ROWS ? tr : SLORA_GEMV_MMA_MAX_ROWS;
}


/* the launch of either kind: its grid, programmatic dependence, and
 * wgmma's N and the chains of sums that keep up with its bytes (a
 * product's latency over a slice's bytes a stage, bench/RESULTS.md), by
 * the W rows a block takes (GLU: gate's and up's) */
template <bool GLU>
static int
slora_gemv_ws_go(void *y, int64_t ld_y, int f32_out, const uint16_t *x,
    int64_t ld_x, const uint16_t *w, const uint16_t *bias, int32_t n,
    int32_t out, int32_t in, int32_t tr, int32_t let_in, void *stream)
{
    static const int     pdl = slora_env_on("SLORA_CUDA_PDL");
    cudaLaunchConfig_t   cfg;
    cudaLaunchAttribute  attr;
    int32_t              rows;

    cfg.gridDim = dim3((unsigned) ((out + tr - 1) / tr));
    cfg.blockDim = dim3(SLORA_WS_THREADS);
    cfg.stream = (cudaStream_t) stream;
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = &attr;
    cfg.numAttrs = pdl ? 1 : 0;
    rows = GLU ? 2 * tr : tr;

#define SLORA_WS_CASE(ni, ch, kb)                                             \
    if (rows <= ni) {                                                         \
        return slora_gemv_ws_launch<ni, ch, SLORA_WS_KB(kb), GLU>(&cfg, y,    \
                   ld_y, f32_out, x, ld_x, w, bias, n, out, in, tr, let_in);  \
    }

    SLORA_WS_CASE(16, 4, 4)
    SLORA_WS_CASE(32, 4, 4)
    SLORA_WS_CASE(48, 4, 2)
    SLORA_WS_CASE(64, 4, 2)
    SLORA_WS_CASE(96, 2, 2)
    SLORA_WS_CASE(128, 2, 2)
    SLORA_WS_CASE(192, 2, 1)
    SLORA_WS_CASE(256, 1, 1)

#undef SLORA_WS_CASE

    return -1;
}


extern "C" int
slora_gemv_mma_cuda(void *y, int64_t ld_y, int f32_out, const uint16_t *x,
    int64_t ld_x, const uint16_t *w, const uint16_t *bias, int32_t n,
    int32_t out, int32_t in, int32_t tr, int32_t let_in, void *stream)
{
    if (y == NULL || x == NULL || w == NULL || n < 1
        || n > SLORA_GEMV_MMA_MAX_N || out <= 0 || in <= 0
        || in % SLORA_CUDA_VEC != 0 || ld_x < in
        || ld_x % SLORA_CUDA_VEC != 0 || ld_y < out
        || !slora_cuda_aligned(x) || !slora_cuda_aligned(w)
        || tr < 0 || tr % 8 != 0 || tr > SLORA_GEMV_MMA_MAX_ROWS)
    {
        return -1;
    }

    if (tr == 0) {
        tr = slora_gemv_mma_rows(out, 100);
    }

    return slora_gemv_ws_go<false>(y, ld_y, f32_out, x, ld_x, w, bias, n,
                                   out, in, tr, let_in, stream);
}


extern "C" int
slora_gemv_mma_glu_cuda(uint16_t *y, int64_t ld_y, const uint16_t *x,
    int64_t ld_x, const uint16_t *w, int32_t n, int32_t ffn, int32_t in,
    int32_t tr, void *stream)
{
    if (y == NULL || x == NULL || w == NULL || n < 1
        || n > SLORA_GEMV_MMA_MAX_N || ffn <= 0 || in <= 0
        || in % SLORA_CUDA_VEC != 0 || ld_x < in
        || ld_x % SLORA_CUDA_VEC != 0 || ld_y < ffn
        || !slora_cuda_aligned(x) || !slora_cuda_aligned(w)
        || tr < 0 || tr % 8 != 0 || 2 * tr > SLORA_GEMV_MMA_MAX_ROWS)
    {
        return -1;
    }

    if (tr == 0) {
        tr = slora_gemv_mma_rows(ffn, 100);
    }

    if (2 * tr > SLORA_GEMV_MMA_MAX_ROWS) {
        return -1;
    }

    return slora_gemv_ws_go<true>(y, ld_y, 0, x, ld_x, w, NULL, n, ffn, in,
                                  tr, -1, stream);
}
