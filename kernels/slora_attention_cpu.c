/*
 * slora_attention_cpu.c: paged attention and the KV store on the CPU.
 *
 * The one idea: one (sequence, head) pair is one task; its queries walk
 * the sequence's page table page by page, so a position never costs a
 * division, and keys of a page are read contiguously. A call runs the
 * tasks of one share (ith, ith + nth, ...), whose scores live in share
 * ith's slice of the workspace; softmax runs in float with the maximum
 * subtracted first. Dot products keep 16 partial sums, a fixed order the
 * compiler vectorizes without being allowed to reassociate.
 */

#include <math.h>
#include <string.h>

#include "slora_attention.h"
#include "slora_vec_cpu.h"


static int slora_attn_check(const slora_paged_kv_t *c,
    const slora_seq_index_t *ix);
static int32_t slora_attn_max_ctx(const slora_seq_index_t *ix);
static void slora_attn_row(float *o, const float *qh, const float *kv,
    const slora_paged_kv_t *c, const int32_t *pages, int32_t n_ctx,
    int32_t kvh, float *sc);


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

    return (size_t) max_ctx * (size_t) nth * sizeof(float);
}


int
slora_attention(float *out, int64_t ld_out, const float *q, int64_t ld_q,
    int32_t n_heads, const slora_paged_kv_t *c, const slora_seq_index_t *ix,
    void *work, size_t work_size, int ith, int nth)
{
    int32_t         max_ctx, group, s, h, r, p;
    int64_t         n_tasks, task;
    const int32_t  *pages;
    float          *sc;

    if (out == NULL || q == NULL || work == NULL || nth < 1 || ith < 0
        || ith >= nth
        || slora_attn_check(c, ix) != 0 || n_heads <= 0
        || n_heads % c->n_kv_heads != 0
        || ld_q < (int64_t) n_heads * c->head_dim
        || ld_out < (int64_t) n_heads * c->head_dim)
    {
        return -1;
    }

    max_ctx = slora_attn_max_ctx(ix);

    if (work_size < slora_attention_workspace_size(max_ctx, nth)) {
        return -1;
    }

    group = n_heads / c->n_kv_heads;
    n_tasks = (int64_t) ix->n_seqs * n_heads;
    sc = (float *) work + (size_t) ith * max_ctx;

    for (task = ith; task < n_tasks; task += nth) {
        s = (int32_t) (task / n_heads);
        h = (int32_t) (task % n_heads);
        pages = ix->kv_indices + ix->kv_indptr[s];

        for (r = ix->qo_indptr[s]; r < ix->qo_indptr[s + 1]; r++) {
            p = ix->seq_pos[s] + (r - ix->qo_indptr[s]);

            slora_attn_row(out + (int64_t) r * ld_out
                               + (int64_t) h * c->head_dim,
                           q + (int64_t) r * ld_q + (int64_t) h * c->head_dim,
                           c->kv, c, pages, p + 1, h / group, sc);
        }
    }

    return 0;
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
slora_attn_row(float *o, const float *qh, const float *kv,
    const slora_paged_kv_t *c, const int32_t *pages, int32_t n_ctx,
    int32_t kvh, float *sc)
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
        page = kv + (int64_t) pages[pi] * c->page_elems + (int64_t) kvh * d;
        n = n_ctx - t < tpp ? n_ctx - t : tpp;

        for (j = 0; j < n; j++, t++) {
            sc[t] = slora_vec_dot(qh, page + (int64_t) j * kv_dim, d)
                    * scale;
            mx = sc[t] > mx ? sc[t] : mx;
        }
    }

    sum = 0.0f;

    for (t = 0; t < n_ctx; t++) {
        sc[t] = expf(sc[t] - mx);
        sum += sc[t];
    }

    memset(o, 0, (size_t) d * sizeof(float));

    for (t = 0, pi = 0; t < n_ctx; pi++) {
        page = kv + (int64_t) pages[pi] * c->page_elems
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
