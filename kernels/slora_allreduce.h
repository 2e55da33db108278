/*
 * slora_allreduce.h: the sum of a small tensor over the GPUs of one
 * tensor-parallel group, driven by threads of one process, in one
 * kernel per rank that reads its peers' memory over NVLink (one-shot),
 * for the messages where NCCL's latency dominates.
 *
 * The one idea: each rank's kernel copies its input into its own
 * staging buffer, meets its peers at a per-block flag barrier, then
 * reads every rank's staging and sums in rank order 0..N-1, so every
 * rank computes the very same bits; the staging is double buffered and
 * the barrier epoch lives in device memory, so no barrier is needed at
 * the end and a CUDA graph replays the calls as they were captured.
 */

#ifndef SLORA_ALLREDUCE_H
#define SLORA_ALLREDUCE_H


#include <stddef.h>
#include <stdint.h>


/* CPU twin: every bufs[r][0:n] (r < n_ranks) becomes the sum over r in
 * rank order 0..n_ranks-1, accumulated in f32 starting from rank 0's
 * value (bf16 variant: rounded to bf16 once at the end, to nearest even
 * as slora_f32_to_bf16 does). n >= 0. */
void slora_allreduce_f32(float *const *bufs, int n_ranks, int64_t n);
void slora_allreduce_bf16(uint16_t *const *bufs, int n_ranks, int64_t n);


/*
 * CUDA twin (kernels/slora_allreduce.cu). One object per rank, n_ranks
 * at most 8; the ranks' devices may differ (NVLink peers) or coincide
 * (ranks emulated on one GPU, for tests). For finite values every rank
 * gets what the CPU twin gives, to the bit.
 *
 * Rules for the caller:
 * - Every rank makes the same calls in the same order with the same n,
 *   each rank's calls ordered on one stream (or by events); a call that
 *   returns -1 on one rank only (a misaligned x) breaks the group.
 * - A rank whose peers never arrive traps its kernel after a few
 *   seconds of spinning (__trap): the stream then reports an error and
 *   the CUDA context is lost, which beats hanging forever.
 * - Every rank's kernel must make progress beside its peers': on one
 *   GPU, the ranks' grids are sized by connect() to fit on it together.
 */

typedef struct slora_allreduce_s  slora_allreduce_t;   /* one per rank */

/* On the calling thread's current device: staging for cap_bytes (two
 * buffers, double buffered) and the barrier flags, zeroed. NULL on bad
 * arguments or failure. */
slora_allreduce_t *slora_allreduce_create(int rank, int n_ranks,
    size_t cap_bytes);

/* Once every rank's object exists: each learns its peers' staging and
 * flag addresses (all[r] is rank r) and the grid they all launch; peer
 * access is enabled between every two distinct devices (already enabled
 * is fine). Call once, from one thread, before any rank's first call;
 * the caller's current device is kept. Returns 0 or -1 (bad arguments,
 * devices that cannot be peers). */
int slora_allreduce_connect(slora_allreduce_t *const *all, int n_ranks);

/* In place: x[0:n] on every rank becomes the sum over ranks, the same
 * bits on every rank (f32 accumulation in rank order 0..N-1; bf16 rounds
 * once). x is device memory of the rank's device, 16-byte aligned, n a
 * multiple of 8 (bf16) or 4 (f32); stream is a cudaStream_t of that
 * device (the call makes that device current for the launch and then
 * restores the caller's). Returns 0 (n == 0 launches nothing), -2 when
 * n elements exceed the capacity (the caller falls back to NCCL), -1 on
 * a refused launch or bad argument. Capturable in a CUDA graph: the
 * barrier epoch is kept and advanced by the kernel itself. */
int slora_allreduce_bf16_cuda(slora_allreduce_t *ar, uint16_t *x, int64_t n,
    void *stream);
int slora_allreduce_f32_cuda(slora_allreduce_t *ar, float *x, int64_t n,
    void *stream);

/* The same sum without the flag barrier, for ranks that share a GPU,
 * where a kernel that spins for its peers can hold the SMs their own
 * kernels wait for: the caller orders the two halves across ranks
 * (events). slora_allreduce_stage_cuda copies bytes of x (a multiple of
 * 16, within the capacity) into this rank's staging; once every rank's
 * copy is done, slora_allreduce_gather_*_cuda sums every rank's staging
 * into x[0:n] (n as above), the same bits as the calls above; and no
 * rank stages again
 * before every rank's gather has read its staging. 0, -2 over the
 * capacity, -1 on a bad argument or refused launch. */
int slora_allreduce_stage_cuda(slora_allreduce_t *ar, const void *x,
    int64_t bytes, void *stream);
int slora_allreduce_gather_bf16_cuda(slora_allreduce_t *ar, uint16_t *x,
    int64_t n, void *stream);
int slora_allreduce_gather_f32_cuda(slora_allreduce_t *ar, float *x,
    int64_t n, void *stream);

/* Frees the rank's staging and flags; no rank may still be running or
 * about to run a call of the group. NULL is fine. */
void slora_allreduce_free(slora_allreduce_t *ar);

#endif /* SLORA_ALLREDUCE_H */
