/*
 * slora_lora_cpu.c: LoRA shrink and expand over heterogeneous segments on
 * the CPU.
 *
 * The one idea: work items are (segment, A row) for the shrink and
 * (segment, block of output columns) for the expand; each item walks all
 * tokens of its segment, so a gathered adapter row is read once per call
 * and reused across a prefill chunk, while a decode batch still has
 * sum(rank) items to spread. Items are numbered across all segments and
 * a call runs those of one share (item % nth == ith); items write
 * disjoint outputs, so the shares of a call may run at once and the
 * result never depends on nth. Dot products keep 16 partial sums in a
 * fixed order that the compiler vectorizes; where the processor has
 * AVX2 or AVX-512, an item's loops run in it (slora_lora_x86_cpu.c),
 * with the same bits.
 */

#include <string.h>

#include "slora_lora_int.h"
#include "slora_qmatmul.h"


#define SLORA_LORA_COLS  64


static int slora_lora_check(const slora_lora_segs_t *sg, int32_t *max_rank,
    int64_t *n_tok);
static int slora_lora_items(int isa, slora_lora_shrink_pt *shrink,
    slora_lora_expand_pt *expand);


int
slora_lora_shrink(float *v, int64_t ld_v, const float *x, int64_t ld_x,
    const float *base, int32_t in_dim, const slora_lora_segs_t *sg, int ith,
    int nth)
{
    return slora_lora_shrink_isa(v, ld_v, x, ld_x, base, in_dim, sg, ith, nth,
                                 SLORA_QISA_AUTO);
}


int
slora_lora_shrink_isa(float *v, int64_t ld_v, const float *x, int64_t ld_x,
    const float *base, int32_t in_dim, const slora_lora_segs_t *sg, int ith,
    int nth, int isa)
{
    int32_t               max_rank, s, r, t0, t1, j;
    int64_t               n_tok, item;
    const int64_t        *rows;
    slora_lora_shrink_pt  shrink;
    slora_lora_expand_pt  expand;

    if (v == NULL || x == NULL || base == NULL || in_dim <= 0 || nth < 1
        || ith < 0 || ith >= nth || ld_x < in_dim
        || slora_lora_check(sg, &max_rank, &n_tok) != 0
        || ld_v < max_rank || slora_lora_items(isa, &shrink, &expand) != 0)
    {
        return -1;
    }

    item = 0;

    for (s = 0; s < sg->n_segs; s++) {
        r = sg->rank[s];
        t0 = sg->seg_indptr[s];
        t1 = sg->seg_indptr[s + 1];
        rows = sg->a_rows[s];

        if (r == 0 || t0 == t1) {
            continue;
        }

        for (j = 0; j < r; j++, item++) {
            if (item % nth != ith) {
                continue;
            }

            shrink(v, ld_v, x, ld_x, base + rows[j], in_dim, t0, t1, j);
        }
    }

    return 0;
}


int
slora_lora_expand(float *y, int64_t ld_y, const float *v, int64_t ld_v,
    const float *base, int32_t out_dim, const slora_lora_segs_t *sg, int ith,
    int nth)
{
    return slora_lora_expand_isa(y, ld_y, v, ld_v, base, out_dim, sg, ith,
                                 nth, SLORA_QISA_AUTO);
}


int
slora_lora_expand_isa(float *y, int64_t ld_y, const float *v, int64_t ld_v,
    const float *base, int32_t out_dim, const slora_lora_segs_t *sg, int ith,
    int nth, int isa)
{
    int32_t               max_rank, n_blk, s, r, t0, t1, blk, c0, nc;
    int64_t               n_tok, item;
    const int64_t        *rows;
    float                 sc;
    slora_lora_shrink_pt  shrink;
    slora_lora_expand_pt  expand;

    if (y == NULL || v == NULL || base == NULL || out_dim <= 0 || nth < 1
        || ith < 0 || ith >= nth || ld_y < out_dim
        || slora_lora_check(sg, &max_rank, &n_tok) != 0
        || ld_v < max_rank || slora_lora_items(isa, &shrink, &expand) != 0)
    {
        return -1;
    }

    n_blk = (out_dim + SLORA_LORA_COLS - 1) / SLORA_LORA_COLS;
    item = 0;

    for (s = 0; s < sg->n_segs; s++) {
        r = sg->rank[s];
        t0 = sg->seg_indptr[s];
        t1 = sg->seg_indptr[s + 1];
        rows = sg->b_rows[s];
        sc = sg->scale[s];

        if (r == 0 || t0 == t1) {
            continue;
        }

        for (blk = 0; blk < n_blk; blk++, item++) {
            if (item % nth != ith) {
                continue;
            }

            c0 = blk * SLORA_LORA_COLS;
            nc = out_dim - c0 < SLORA_LORA_COLS ? out_dim - c0
                                                : SLORA_LORA_COLS;

            expand(y, ld_y, v, ld_v, base, rows, r, sc, t0, t1, c0, nc);
        }
    }

    return 0;
}


size_t
slora_lora_workspace_size(int64_t n_tok, int32_t max_rank)
{
    if (n_tok < 1) {
        n_tok = 1;
    }

    if (max_rank < 1) {
        max_rank = 1;
    }

    return (size_t) n_tok * (size_t) max_rank * sizeof(float);
}


int
slora_lora_apply(float *y, int64_t ld_y, const float *x, int64_t ld_x,
    const float *base, int32_t in_dim, int32_t out_dim,
    const slora_lora_segs_t *sg, void *work, size_t work_size)
{
    int32_t  max_rank;
    int64_t  n_tok;

    if (work == NULL || slora_lora_check(sg, &max_rank, &n_tok) != 0
        || work_size < slora_lora_workspace_size(n_tok, max_rank))
    {
        return -1;
    }

    if (max_rank == 0) {
        return 0;
    }

    if (slora_lora_shrink(work, max_rank, x, ld_x, base, in_dim, sg, 0, 1)
        != 0)
    {
        return -1;
    }

    return slora_lora_expand(y, ld_y, work, max_rank, base, out_dim, sg, 0,
                             1);
}


/* The work items' loops in instruction set isa (slora_qmatmul.h's
 * SLORA_QISA_*; AUTO: the widest this processor has), or -1 where it has
 * not that one. */
static int
slora_lora_items(int isa, slora_lora_shrink_pt *shrink,
    slora_lora_expand_pt *expand)
{
    if (!slora_qmatmul_isa_supported(isa)) {
        return -1;
    }

    *shrink = slora_lora_shrink_item;
    *expand = slora_lora_expand_item;

#ifdef SLORA_VEC_X86
    if ((isa == SLORA_QISA_AUTO || isa == SLORA_QISA_AVX512)
        && slora_qmatmul_isa_supported(SLORA_QISA_AVX512))
    {
        *shrink = slora_lora_shrink_item_avx512;
        *expand = slora_lora_expand_item_avx512;

    } else if (isa != SLORA_QISA_C
               && slora_qmatmul_isa_supported(SLORA_QISA_AVX2))
    {
        *shrink = slora_lora_shrink_item_avx2;
        *expand = slora_lora_expand_item_avx2;
    }
#endif

    return 0;
}


/*
 * Validates the segment description: non-decreasing indptr from 0, ranks
 * non-negative with row arrays present; returns the largest rank and the
 * number of token rows covered.
 */

static int
slora_lora_check(const slora_lora_segs_t *sg, int32_t *max_rank,
    int64_t *n_tok)
{
    int32_t  s;

    *max_rank = 0;
    *n_tok = 0;

    if (sg == NULL || sg->n_segs < 0) {
        return -1;
    }

    if (sg->n_segs == 0) {
        return 0;
    }

    if (sg->seg_indptr == NULL || sg->rank == NULL || sg->scale == NULL
        || sg->a_rows == NULL || sg->b_rows == NULL || sg->seg_indptr[0] < 0)
    {
        return -1;
    }

    for (s = 0; s < sg->n_segs; s++) {
        if (sg->seg_indptr[s + 1] < sg->seg_indptr[s] || sg->rank[s] < 0
            || (sg->rank[s] > 0
                && (sg->a_rows[s] == NULL || sg->b_rows[s] == NULL)))
        {
            return -1;
        }

        if (sg->rank[s] > *max_rank) {
            *max_rank = sg->rank[s];
        }
    }

    *n_tok = sg->seg_indptr[sg->n_segs];

    return 0;
}
