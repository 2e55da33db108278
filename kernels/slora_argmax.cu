/*
 * slora_argmax.cu: the row argmax on the GPU, the device twin of
 * slora_argmax_cpu.c, so greedy decoding copies one id per sequence
 * back to the host instead of a row of logits.
 *
 * The one idea: one block per row; each thread scans a strided slice
 * keeping its first maximum, then (value, index) pairs are reduced with
 * "larger value, else lower index", which is associative and so picks
 * the CPU's answer. NaNs never enter it: the scan passes them over, as
 * the CPU's does, and a row of NaNs, where no thread found a number,
 * gives 0.
 */

#include <stdint.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_argmax.h"
}


#define SLORA_ARGMAX_THREADS  512


static __device__ __forceinline__ void
slora_argmax_pick(float *v, int64_t *i, float ov, int64_t oi)
{
    if (ov > *v || (ov == *v && oi < *i)) {
        *v = ov;
        *i = oi;
    }
}


static __global__ void __launch_bounds__(SLORA_ARGMAX_THREADS)
slora_argmax_kernel(int32_t *__restrict__ out, const float *__restrict__ x,
    int64_t ld, int64_t n)
{
    __shared__ float    sv[SLORA_ARGMAX_THREADS / SLORA_CUDA_WARP];
    __shared__ int64_t  si[SLORA_ARGMAX_THREADS / SLORA_CUDA_WARP];
    const float        *row;
    float               v, ov;
    int64_t             i, bi, oi;
    int                 o, lane, warp, w;

    slora_pdl_enter();

    row = x + (int64_t) blockIdx.x * ld;
    v = -INFINITY;
    bi = n;

    for (i = threadIdx.x; i < n; i += SLORA_ARGMAX_THREADS) {
        if (row[i] > v || (bi == n && !isnan(row[i]))) {
            v = row[i];
            bi = i;
        }
    }

    for (o = SLORA_CUDA_WARP / 2; o > 0; o >>= 1) {
        ov = __shfl_xor_sync(0xffffffffu, v, o);
        oi = __shfl_xor_sync(0xffffffffu, bi, o);
        slora_argmax_pick(&v, &bi, ov, oi);
    }

    lane = threadIdx.x % SLORA_CUDA_WARP;
    warp = threadIdx.x / SLORA_CUDA_WARP;

    if (lane == 0) {
        sv[warp] = v;
        si[warp] = bi;
    }

    __syncthreads();

    if (threadIdx.x == 0) {
        v = sv[0];
        bi = si[0];

        for (w = 1; w < SLORA_ARGMAX_THREADS / SLORA_CUDA_WARP; w++) {
            slora_argmax_pick(&v, &bi, sv[w], si[w]);
        }

        out[blockIdx.x] = (int32_t) (bi < n ? bi : 0);
    }
}


extern "C" int
slora_argmax_rows_cuda(int32_t *out, const float *x, int64_t ld,
    int64_t rows, int64_t n, void *stream)
{
    if (out == NULL || x == NULL || rows < 0 || rows > INT32_MAX || n < 1
        || n > INT32_MAX || ld < n)
    {
        return -1;
    }

    if (rows == 0) {
        return 0;
    }

    slora_launch(slora_argmax_kernel, (unsigned) rows, SLORA_ARGMAX_THREADS, 0,
        (cudaStream_t) stream, out, x, ld, n);

    return slora_cuda_launched();
}
