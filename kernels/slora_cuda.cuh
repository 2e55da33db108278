/*
 * slora_cuda.cuh: the device helpers every kernels/slora_<family>.cu
 * shares: bf16 vectors of eight read and written as one 16-byte access,
 * warp and block sums, the launch with programmatic dependence, the L2
 * prefetch that goes before its wait, and the launch check.
 *
 * The one idea: storage is bf16 and arithmetic is fp32, so every kernel
 * moves 16 bytes (eight values) per access and widens them to floats in
 * registers; a row whose start or width is not a multiple of eight
 * elements is refused by the launcher, never read crookedly.
 */

#ifndef SLORA_CUDA_CUH
#define SLORA_CUDA_CUH


#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cuda_runtime.h>
#include <cuda_bf16.h>


#define SLORA_CUDA_VEC    8      /* bf16 per 16-byte access */
#define SLORA_CUDA_WARP   32


#define slora_cuda_aligned(p)  ((((uintptr_t) (p)) & 15) == 0)


/* eight bf16 of one 16-byte word, widened */
static __device__ __forceinline__ void
slora_unpack8(float *f, uint4 u)
{
    const __nv_bfloat162  *h;
    float2                 t;
    int                    i;

    h = (const __nv_bfloat162 *) &u;

#pragma unroll
    for (i = 0; i < 4; i++) {
        t = __bfloat1622float2(h[i]);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}


static __device__ __forceinline__ void
slora_ld8(float *f, const uint16_t *p)
{
    slora_unpack8(f, *(const uint4 *) p);
}


static __device__ __forceinline__ void
slora_st8(uint16_t *p, const float *f)
{
    uint4             u;
    __nv_bfloat162   *h;
    int               i;

    h = (__nv_bfloat162 *) &u;

#pragma unroll
    for (i = 0; i < 4; i++) {
        h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
    }

    *(uint4 *) p = u;
}


static __device__ __forceinline__ float
slora_bf2f(uint16_t b)
{
    return __uint_as_float((uint32_t) b << 16);
}


static __device__ __forceinline__ uint16_t
slora_f2bf(float f)
{
    __nv_bfloat16  h;

    h = __float2bfloat16_rn(f);

    return *(uint16_t *) &h;
}


/* silu(g) * u as the MLP's activation takes it, x / (1 + exp(-x)) with
 * the accurate expf, the form the CPU uses: one definition for every
 * kernel that applies it (SiLU-and-mul, the decode GEMM's fused
 * epilogue), so that they agree to the bit */
static __device__ __forceinline__ float
slora_silu_mul1(float g, float u)
{
    return g / (1.0f + expf(-g)) * u;
}


/* 2^x in one instruction (denormal results flush to 0) */
static __device__ __forceinline__ float
slora_ex2(float x)
{
    float  y;

    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));

    return y;
}


static __device__ __forceinline__ uint32_t
slora_pack_bf2(float lo, float hi)
{
    __nv_bfloat162  h;

    h = __floats2bfloat162_rn(lo, hi);

    return *(uint32_t *) &h;
}


static __device__ __forceinline__ float
slora_warp_sum(float v)
{
    int  o;

#pragma unroll
    for (o = SLORA_CUDA_WARP / 2; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }

    return v;
}


/*
 * Sum of v over the block; red holds one float per warp. Every thread
 * of the block must call it, and every thread gets the sum.
 */

static __device__ __forceinline__ float
slora_block_sum(float v, float *red)
{
    int  lane, warp, n_warps, i;

    lane = threadIdx.x % SLORA_CUDA_WARP;
    warp = threadIdx.x / SLORA_CUDA_WARP;
    n_warps = (blockDim.x + SLORA_CUDA_WARP - 1) / SLORA_CUDA_WARP;

    v = slora_warp_sum(v);

    if (lane == 0) {
        red[warp] = v;
    }

    __syncthreads();

    v = 0.0f;

    for (i = 0; i < n_warps; i++) {
        v += red[i];
    }

    __syncthreads();

    return v;
}


/*
 * f[0..7] += a LoRA delta d[0..7] (fp32, 16-byte aligned), each sum
 * rounded to bf16 as the expand into a bf16 output would have left it
 * (slora_lora_expand_delta_cuda's consumers: RoPE with the KV store, the
 * residual's RMSNorm).
 */
static __device__ __forceinline__ void
slora_add_delta8(float *f, const float *d)
{
    float4  a, b;

    a = *(const float4 *) d;
    b = *(const float4 *) (d + 4);
    f[0] = slora_bf2f(slora_f2bf(f[0] + a.x));
    f[1] = slora_bf2f(slora_f2bf(f[1] + a.y));
    f[2] = slora_bf2f(slora_f2bf(f[2] + a.z));
    f[3] = slora_bf2f(slora_f2bf(f[3] + a.w));
    f[4] = slora_bf2f(slora_f2bf(f[4] + b.x));
    f[5] = slora_bf2f(slora_f2bf(f[5] + b.y));
    f[6] = slora_bf2f(slora_f2bf(f[6] + b.z));
    f[7] = slora_bf2f(slora_f2bf(f[7] + b.w));
}


/*
 * Programmatic dependent launch (sm_90): a kernel that slora_launch()
 * starts may be scheduled while the kernel before it on its stream still
 * runs, so its launch and its blocks' start hide behind that kernel's
 * tail instead of following it; a decode step is some 400 launches. A
 * kernel so launched calls slora_pdl_enter() before it touches memory:
 * there it waits for the kernel before it to finish and sees all of its
 * writes (and so, in turn, those of every kernel before), then lets the
 * kernel after it be scheduled. Launched plainly, or before sm_90, both
 * are no-ops. $SLORA_CUDA_PDL=0 launches every kernel plainly.
 */
static __device__ __forceinline__ void
slora_pdl_enter(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}


/*
 * Bytes from p (16-byte aligned, a multiple of 16) asked into L2 by one
 * thread, without waiting (sm_90's bulk prefetch; before it, nothing).
 * A kernel launched with programmatic dependence calls it before
 * slora_pdl_enter() for what the kernel before does not write (weights,
 * the step's tables, copied in before the step's first kernel): those
 * reads then leave DRAM while that kernel still runs, and the loads after
 * the wait find them in L2.
 */
static __device__ __forceinline__ void
slora_prefetch_l2(const void *p, uint32_t bytes)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;"
                 :: "l"(p), "r"(bytes) : "memory");
#endif
}


/* 1 unless the environment sets name to "0": the switches that turn a
 * device path off for an A/B in one call */
static inline int
slora_env_on(const char *name)
{
    const char  *e;

    e = getenv(name);

    return e == NULL || strcmp(e, "0") != 0;
}


template <typename... P, typename... A>
static inline void
slora_launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem,
    cudaStream_t stream, A... args)
{
    static const int     pdl = slora_env_on("SLORA_CUDA_PDL");
    cudaLaunchConfig_t   cfg;
    cudaLaunchAttribute  attr;

    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;

    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = &attr;
    cfg.numAttrs = pdl ? 1 : 0;

    (void) cudaLaunchKernelEx(&cfg, kernel, args...);
}


/*
 * c[4] += A B on the tensor cores (mma.sync m16n8k16, bf16 in, fp32
 * sums) for a 16 x 16 block A and a 16 x 8 block B, in PTX's fragments:
 * lane (g, t) = (lane / 4, lane % 4) gives A's rows g and g + 8 at k
 * {2t, 2t + 1} (a0, a1) and {2t + 8, 2t + 9} (a2, a3), B's column g at
 * the same k (b0, b1), and gets C's rows g (c0, c1) and g + 8 (c2, c3)
 * at columns 2t, 2t + 1. A lane that loads 16 bytes of an A row and of
 * a B column at k = 8t .. 8t + 7 of a 32-wide chunk feeds two mmas
 * straight from them: .x, .y to the first and .z, .w to the second,
 * which permutes k the same way on both sides and leaves every sum the
 * same (slora_mma_x2).
 */
static __device__ __forceinline__ void
slora_mma(float *c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
    uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}


/* A 32-wide chunk of k as above: lo and hi are the lane's 16 bytes of A
 * rows g and g + 8, b of B column g. */
static __device__ __forceinline__ void
slora_mma_x2(float *c, uint4 lo, uint4 hi, uint4 b)
{
    slora_mma(c, lo.x, hi.x, lo.y, hi.y, b.x, b.y);
    slora_mma(c, lo.z, hi.z, lo.w, hi.w, b.z, b.w);
}


/*
 * n / d for a divisor fixed at launch, without the division's some 20
 * instructions: d's multiplier and shift (Granlund and Montgomery: the
 * smallest l with 2^l >= d, and mul = 2^32 (2^l - d) / d + 1) give
 * n / d = (mulhi(mul, n) + n) >> l for every 32-bit n.
 */
typedef struct {
    uint32_t  d;
    uint32_t  mul;
    uint32_t  shift;
} slora_fastdiv_t;


static inline slora_fastdiv_t
slora_fastdiv_make(uint32_t d)
{
    slora_fastdiv_t  f;
    uint32_t         l;

    l = 0;
    while (l < 32 && ((uint64_t) 1 << l) < d) {
        l++;
    }

    f.d = d;
    f.shift = l;
    f.mul = (uint32_t) (((uint64_t) 1 << 32) * (((uint64_t) 1 << l) - d) / d
                        + 1);

    return f;
}


static __host__ __device__ __forceinline__ uint32_t
slora_fastdiv(uint32_t n, slora_fastdiv_t f)
{
    return (uint32_t) (((((uint64_t) f.mul * n) >> 32) + n) >> f.shift);
}


/* 0 when the launch just made was accepted, -1 otherwise. */
static inline int
slora_cuda_launched(void)
{
    return cudaGetLastError() == cudaSuccess ? 0 : -1;
}


#endif /* SLORA_CUDA_CUH */
