/*
 * slora_lora.h: the LoRA shrink and expand over a batch that mixes
 * adapters of different ranks and tokens with no adapter at all: the CPU
 * twins of S-LoRA's MBGMM (prefill) and MBGMV (decode).
 *
 * A batch's token rows are cut into segments; segment s runs adapter s
 * (rank[s] > 0) or none (rank[s] == 0, skipped). Adapter weights are not
 * dense matrices: each row of A (in_dim floats) and each row of B^T
 * (out_dim floats) sits wherever the pool put it, named by its element
 * offset from base (one layer's region of the arena).
 *
 *     shrink:  v[t, 0:r_s]  = x[t, :] . A_s^T
 *     expand:  y[t, :]     += scale_s * v[t, 0:r_s] . B_s
 *
 * The one idea: one call per projection covers the whole mix, so the
 * cost of a step grows with the total rank of the batch, never with the
 * number of adapters resident.
 */

#ifndef SLORA_LORA_H
#define SLORA_LORA_H


#include <stddef.h>
#include <stdint.h>


/* The longest segment the decode (MBGMV) kernels take; longer ones go to
 * the MBGMM kernels, and so does every segment of a launch that has one. */
#define SLORA_LORA_GMV_MAX_SEG  4


typedef struct {
    int32_t                 n_segs;
    const int32_t          *seg_indptr;  /* [n_segs + 1] token rows */
    int32_t                 n_tiles;     /* CUDA MBGMM only: work tiles, */
    int32_t                 n_long;      /* of them of prefill segments */
    const int32_t          *tile_indptr; /* [n_segs + 1], CUDA MBGMM only */
    const int32_t          *rank;        /* [n_segs]; 0: no adapter */
    const float            *scale;       /* [n_segs] */
    const int64_t *const   *a_rows;      /* [n_segs] -> [rank]: A rows */
    const int64_t *const   *b_rows;      /* [n_segs] -> [rank]: B^T rows */
} slora_lora_segs_t;


/* v[t, 0:rank[s]] = x[t,:] . A_s^T for the rows t of every segment with
 * an adapter; other rows of v are left as they are. Work items are the
 * (segment, A row) pairs numbered across segments; a call runs share ith
 * of nth (items with item % nth == ith), a single-threaded caller passes
 * 0, 1. */
int slora_lora_shrink(float *v, int64_t ld_v, const float *x, int64_t ld_x,
    const float *base, int32_t in_dim, const slora_lora_segs_t *sg, int ith,
    int nth);

/* y[t,:] += scale[s] * v[t, 0:rank[s]] . B_s for the same rows; items
 * are (segment, block of 64 output columns), shared out the same way.
 * Every share of the shrink must be done before the expand starts. */
int slora_lora_expand(float *y, int64_t ld_y, const float *v, int64_t ld_v,
    const float *base, int32_t out_dim, const slora_lora_segs_t *sg, int ith,
    int nth);

/* The same two in instruction set isa (slora_qmatmul.h's SLORA_QISA_*;
 * AUTO: the widest the processor has, as the two above): every
 * supported one gives the same bits; -1 where isa is not supported. */
int slora_lora_shrink_isa(float *v, int64_t ld_v, const float *x,
    int64_t ld_x, const float *base, int32_t in_dim,
    const slora_lora_segs_t *sg, int ith, int nth, int isa);
int slora_lora_expand_isa(float *y, int64_t ld_y, const float *v,
    int64_t ld_v, const float *base, int32_t out_dim,
    const slora_lora_segs_t *sg, int ith, int nth, int isa);

/* Bytes of workspace slora_lora_apply needs for n_tok rows and ranks up
 * to max_rank. */
size_t slora_lora_workspace_size(int64_t n_tok, int32_t max_rank);

/* Shrink then expand through the workspace, on the calling thread:
 * y += LoRA(x). A threaded caller runs the two phases itself, each over
 * its shares, with the workspace between them. */
int slora_lora_apply(float *y, int64_t ld_y, const float *x, int64_t ld_x,
    const float *base, int32_t in_dim, int32_t out_dim,
    const slora_lora_segs_t *sg, void *work, size_t work_size);


/*
 * CUDA twins (kernels/slora_lora.cu). x, y and the arena base are bf16
 * (raw bits in uint16_t), v is fp32 workspace, scale is fp32. sg and
 * sg->n_segs are host memory; every array sg points to is device
 * memory, a_rows and b_rows being device arrays of device pointers.
 *
 * One call covers n_proj (1 to SLORA_LORA_MAX_PROJ) projections that
 * read the same x, q, k and v or gate and up, in one launch each way:
 * sg[0..n_proj) share n_segs, seg_indptr and scale (the batch's
 * segments) and differ in rank, a_rows and b_rows; projection k's x A
 * is the block of n_tok rows of ld_v floats at v + k * v_stride, and its
 * output is y[k], out_dim[k] columns wide.
 *
 * The launcher cannot read device arrays, so the caller passes bounds:
 * max_rank >= every rank (at most 1024) and max_seg_len >= every
 * segment's token count; a launch whose segments have at most 4 tokens
 * takes the MBGMV kernels (decode), any other the MBGMM kernels
 * (prefill, or prefill beside decode), whose shrink may split the
 * reduction over up to SLORA_LORA_SPLIT_MAX slices when its tiles alone
 * would leave SMs idle: each slice then writes its partial x A into
 * work (split x n_proj blocks of n_tok x ld_v floats; a work too small
 * for the split wanted gets fewer slices, none gets one), and a second
 * launch adds them up in slice order, so v is the same bits run after
 * run. The MBGMM kernels need the work tiles: tile_indptr (device),
 * n_tiles and n_long as slora_lora_tiles_cuda() counts them from the
 * host's seg_indptr. in_dim, out_dim, ld_x, ld_y and every row offset
 * are multiples of 8 and x, y, base are 16-byte aligned. Columns of v
 * from rank[s] on, and rows of segments without an adapter, are left as
 * they are, but for a split shrink, which writes them 0. stream is a
 * cudaStream_t. They never allocate and return 0, or -1 on bad
 * arguments or a refused launch.
 */
#define SLORA_LORA_MAX_PROJ  3

#define SLORA_LORA_SPLIT_MAX  16

int slora_lora_shrink_cuda(float *v, int64_t ld_v, int64_t v_stride,
    float *work, int64_t work_elems, const uint16_t *x, int64_t ld_x,
    const uint16_t *base, int32_t in_dim, const slora_lora_segs_t *sg,
    int n_proj, int64_t n_tok, int32_t max_rank, int32_t max_seg_len,
    void *stream);
int slora_lora_expand_cuda(uint16_t *const *y, int64_t ld_y,
    const int32_t *out_dim, const float *v, int64_t ld_v, int64_t v_stride,
    const uint16_t *base, const slora_lora_segs_t *sg, int n_proj,
    int32_t max_rank, int32_t max_seg_len, void *stream);

/* The decode expand (segments of at most SLORA_LORA_GMV_MAX_SEG tokens,
 * else -2) into fp32 deltas instead of y: d[k][t, c] = scale_s v_k[t,:]
 * B_s[:, c] over out_dim[k] columns of row stride ld_d, 0 on the rows of
 * segments without an adapter for k, so every row is written. y bf16 +
 * d, rounded once, is what slora_lora_expand_cuda leaves in y; the
 * kernel that reads y next adds it (slora_rope_store_cuda,
 * slora_add_rmsnorm_cuda), and the expand need not wait for the base
 * GEMM. */
int slora_lora_expand_delta_cuda(float *const *d, int64_t ld_d,
    const int32_t *out_dim, const float *v, int64_t ld_v, int64_t v_stride,
    const uint16_t *base, const slora_lora_segs_t *sg, int n_proj,
    int32_t max_rank, int32_t max_seg_len, void *stream);

/* tiles[0..n_segs] = the prefix count of the MBGMM work tiles of the
 * segments seg_indptr (host memory) delimits; sets sg->n_tiles, and
 * sg->n_long to those of segments longer than SLORA_LORA_GMV_MAX_SEG. */
void slora_lora_tiles_cuda(const int32_t *seg_indptr, int32_t n_segs,
    int32_t *tiles, slora_lora_segs_t *sg);


#endif /* SLORA_LORA_H */
