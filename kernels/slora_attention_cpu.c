/*
 * slora_attention_cpu.c: paged attention and the KV store on the CPU.
 *
 * The one idea: up to SLORA_ATTN_ROWS consecutive query rows of one head
 * are one unit of work; a row walks its sequence's page table page by
 * page, so a position never costs a division, and keys of a page are read
 * contiguously. The units are dealt out in turn (unit u to share u mod
 * nth), so that a single long prompt, whose rows cost in proportion to
 * their position, splits evenly however few its heads; a share's scores
 * live in its slice of the workspace. Softmax runs in float with the
 * maximum subtracted first, by slora_vec_cpu.h's exp. Dot products keep
 * 16 partial sums, a fixed order the compiler vectorizes without being
 * allowed to reassociate; where the processor has AVX2 and the head dim
 * is a multiple of 16, slora_attention_x86_cpu.c computes the same rows,
 * to the bit, several times faster, reading a block's keys and values
 * once for all its rows and taking eight exponentials at once.
 * So a row's result depends on nothing but its own query and context:
 * not on the share, the batch or the instruction set.
 */

#include <math.h>
#include <string.h>

#include "slora_attention_int.h"
#include "slora_qmatmul.h"
#include "slora_vec_cpu.h"


static int slora_attn_check(const slora_paged_kv_t *c,
    const slora_seq_index_t *ix);
static int32_t slora_attn_max_ctx(const slora_seq_index_t *ix);
static void slora_attn_row(float *o, const float *qh,
    const slora_paged_kv_t *c, const int32_t *pages, int32_t n_ctx,
    int32_t kvh, float *sc);
static void slora_attn_rows(float *o, int64_t ld_o, const float *q,
    int64_t ld_q, const slora_paged_kv_t *c, const int32_t *pages,
    int32_t n_ctx, int32_t nr, int32_t kvh, float *sc);
static slora_attn_rows_pt slora_attn_rows_for(int32_t head_dim, int isa);


int
slora_kv_store(const slora_paged_kv_t *c, const slora_seq_index_t *ix,
    const float *k, int64_t ld_k, const float *v, int64_t ld_v)
{
    int32_t   s, r, t, tpp;
    int64_t   kv_dim, pg;
    size_t    row;
    float    *page;

    if (slora_attn_check(c, ix) != 0 || k == NULL || v == NULL) {
        return -1;
    }

    tpp = c->tokens_per_page;
    kv_dim = (int64_t) c->n_kv_heads * c->head_dim;
    row = (size_t) kv_dim * sizeof(float);

    if (ld_k < kv_dim || ld_v < kv_dim) {
        return -1;
    }

    for (s = 0; s < ix->n_seqs; s++) {
        for (r = ix->qo_indptr[s]; r < ix->qo_indptr[s + 1]; r++) {
            t = ix->seq_pos[s] + (r - ix->qo_indptr[s]);
            pg = ix->kv_indices[ix->kv_indptr[s] + t / tpp];
            page = c->kv + pg * c->page_elems;

            memcpy(page + (int64_t) (t % tpp) * kv_dim,
                   k + (int64_t) r * ld_k, row);
            memcpy(page + (int64_t) (tpp + t % tpp) * kv_dim,
                   v + (int64_t) r * ld_v, row);
        }
    }

    return 0;
}


size_t
slora_attention_workspace_size(int32_t max_ctx, int nth)
{
    if (max_ctx < 1) {
        max_ctx = 1;
    }

    if (nth < 1) {
        nth = 1;
    }

    return (size_t) max_ctx * (size_t) nth * SLORA_ATTN_ROWS * sizeof(float);
}


int
slora_attention(float *out, int64_t ld_out, const float *q, int64_t ld_q,
    int32_t n_heads, const slora_paged_kv_t *c, const slora_seq_index_t *ix,
    void *work, size_t work_size, int ith, int nth)
{
    return slora_attention_isa(out, ld_out, q, ld_q, n_heads, c, ix, work,
                               work_size, ith, nth, SLORA_QISA_AUTO);
}


int
slora_attention_isa(float *out, int64_t ld_out, const float *q,
    int64_t ld_q, int32_t n_heads, const slora_paged_kv_t *c,
    const slora_seq_index_t *ix, void *work, size_t work_size, int ith,
    int nth, int isa)
{
    int32_t             max_ctx, group, s, h, r, nr, p;
    int64_t             unit;
    const int32_t      *pages;
    float              *sc;
    slora_attn_rows_pt  rows;

    if (out == NULL || q == NULL || work == NULL || nth < 1 || ith < 0
        || ith >= nth
        || slora_attn_check(c, ix) != 0 || n_heads <= 0
        || n_heads % c->n_kv_heads != 0
        || ld_q < (int64_t) n_heads * c->head_dim
        || ld_out < (int64_t) n_heads * c->head_dim)
    {
        return -1;
    }

    rows = slora_attn_rows_for(c->head_dim, isa);
    if (rows == NULL) {
        return -1;
    }

    max_ctx = slora_attn_max_ctx(ix);

    if (work_size < slora_attention_workspace_size(max_ctx, nth)) {
        return -1;
    }

    group = n_heads / c->n_kv_heads;
    sc = (float *) work + (size_t) ith * SLORA_ATTN_ROWS * max_ctx;
    unit = 0;

    for (s = 0; s < ix->n_seqs; s++) {
        pages = ix->kv_indices + ix->kv_indptr[s];

        for (h = 0; h < n_heads; h++) {
            for (r = ix->qo_indptr[s]; r < ix->qo_indptr[s + 1];
                 r += SLORA_ATTN_ROWS)
            {
                if (unit++ % nth != ith) {
                    continue;
                }

                p = ix->seq_pos[s] + (r - ix->qo_indptr[s]);
                nr = ix->qo_indptr[s + 1] - r;
                nr = nr < SLORA_ATTN_ROWS ? nr : SLORA_ATTN_ROWS;

                rows(out + (int64_t) r * ld_out + (int64_t) h * c->head_dim,
                     ld_out,
                     q + (int64_t) r * ld_q + (int64_t) h * c->head_dim, ld_q,
                     c, pages, p + 1, nr, h / group, sc);
            }
        }
    }

    return 0;
}


/* The rows for isa (SLORA_QISA_AUTO: the best this processor runs); NULL
 * where isa is not supported. AVX-512's rows need SLORA_QISA_AVX512's
 * processor (AVX2's run on one without VNNI); a head dim the x86 rows do
 * not take goes to the portable ones. */
static slora_attn_rows_pt
slora_attn_rows_for(int32_t head_dim, int isa)
{
    if (!slora_qmatmul_isa_supported(isa)) {
        return NULL;
    }

#ifdef SLORA_VEC_X86
    if (head_dim % 16 == 0 && head_dim <= SLORA_ATTN_X86_MAX_DIM) {
        if ((isa == SLORA_QISA_AUTO || isa == SLORA_QISA_AVX512)
            && slora_qmatmul_isa_supported(SLORA_QISA_AVX512))
        {
            return slora_attn_rows_avx512;
        }

        if (isa != SLORA_QISA_C
            && slora_qmatmul_isa_supported(SLORA_QISA_AVX2))
        {
            return slora_attn_rows_avx2;
        }
    }
#endif

    return slora_attn_rows;
}


/* The portable rows: one after the other. */
static void
slora_attn_rows(float *o, int64_t ld_o, const float *q, int64_t ld_q,
    const slora_paged_kv_t *c, const int32_t *pages, int32_t n_ctx,
    int32_t nr, int32_t kvh, float *sc)
{
    int32_t  r;

    for (r = 0; r < nr; r++) {
        slora_attn_row(o + r * ld_o, q + r * ld_q, c, pages, n_ctx + r, kvh,
                       sc);
    }
}


static int
slora_attn_check(const slora_paged_kv_t *c, const slora_seq_index_t *ix)
{
    if (c == NULL || ix == NULL || c->kv == NULL || c->tokens_per_page <= 0
        || c->n_kv_heads <= 0 || c->head_dim <= 0
        || c->page_elems
           < 2 * (int64_t) c->tokens_per_page * c->n_kv_heads * c->head_dim
        || ix->n_seqs < 0
        || (ix->n_seqs > 0
            && (ix->qo_indptr == NULL || ix->seq_pos == NULL
                || ix->kv_indptr == NULL || ix->kv_indices == NULL)))
    {
        return -1;
    }

    return 0;
}


static int32_t
slora_attn_max_ctx(const slora_seq_index_t *ix)
{
    int32_t  s, n, m;

    m = 1;

    for (s = 0; s < ix->n_seqs; s++) {
        n = ix->seq_pos[s] + ix->qo_indptr[s + 1] - ix->qo_indptr[s];
        if (n > m) {
            m = n;
        }
    }

    return m;
}


static void
slora_attn_row(float *o, const float *qh, const slora_paged_kv_t *c,
    const int32_t *pages, int32_t n_ctx, int32_t kvh, float *sc)
{
    int32_t       t, j, n, d, pi, tpp;
    int64_t       kv_dim;
    const float  *page;
    float         scale, mx, sum, w;

    d = c->head_dim;
    tpp = c->tokens_per_page;
    kv_dim = (int64_t) c->n_kv_heads * d;
    scale = 1.0f / sqrtf((float) d);
    mx = -INFINITY;

    for (t = 0, pi = 0; t < n_ctx; pi++) {
        page = c->kv + (int64_t) pages[pi] * c->page_elems
               + (int64_t) kvh * d;
        n = n_ctx - t < tpp ? n_ctx - t : tpp;

        for (j = 0; j < n; j++, t++) {
            sc[t] = slora_vec_dot(qh, page + (int64_t) j * kv_dim, d)
                    * scale;
            mx = sc[t] > mx ? sc[t] : mx;
        }
    }

    for (t = 0; t < n_ctx; t++) {
        sc[t] = slora_expf(sc[t] - mx);
    }

    sum = slora_vec_sum(sc, n_ctx);

    memset(o, 0, (size_t) d * sizeof(float));

    for (t = 0, pi = 0; t < n_ctx; pi++) {
        page = c->kv + (int64_t) pages[pi] * c->page_elems
               + (int64_t) tpp * kv_dim + (int64_t) kvh * d;
        n = n_ctx - t < tpp ? n_ctx - t : tpp;

        for (j = 0; j < n; j++, t++) {
            slora_vec_axpy(o, sc[t], page + (int64_t) j * kv_dim, d);
        }
    }

    w = 1.0f / sum;

    for (j = 0; j < d; j++) {
        o[j] *= w;
    }
}
