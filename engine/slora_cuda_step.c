/*
 * slora_cuda_step.c: a CUDA step's scratch and indices: the device rows
 * and pinned twins that only grow, and the one block of indices a step
 * sends (tokens, positions, page tables, LoRA segments and the row
 * tables of their adapters), laid out in pinned memory and copied in one
 * transfer.
 *
 * The one idea: what a kernel is given a pointer to sits at an offset
 * that depends on the step's token, sequence and logits counts and the
 * decode attention's shape only (a captured decode graph's key), and
 * what varies from step to step at the same counts (page ids, row
 * tables) comes last, so a captured decode graph's pointers stay right.
 */

#include <stdlib.h>
#include <string.h>

#include "slora_cuda_int.h"
#include "slora_rope.h"


static int slora_cuda_host_grow(slora_cuda_buf_t *buf, size_t need,
    slora_err_t *err);
static int slora_cuda_rope_grow(slora_cuda_t *c, int32_t n_pos,
    slora_err_t *err);
static void slora_cuda_rows(const slora_cuda_t *c, int64_t *dst,
    const int64_t *src, int32_t r);


int
slora_cuda_reserve(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_cuda_layout_t *lay, slora_err_t *err)
{
    const slora_batch_t  *bt = st->batch;
    size_t                n, ns, m, ml, rows, b16, hb16, lw;
    int32_t               i;

    n = (size_t) bt->n_tokens;
    ns = (size_t) bt->n_seqs;
    m = (size_t) (st->info.n_logits > 0 ? st->info.n_logits : 1);
    b16 = sizeof(uint16_t);

    /* the logits' scratch is rank 0's alone (slora_cuda_logits): at a
     * vocabulary of 152k a step of 1024 rows is 0.6 GB of it */
    ml = c->tp_rank == 0 ? m : 0;

    slora_attention_decode_shape(bt->n_seqs, c->cfg.n_heads,
                                 c->cfg.n_kv_heads, c->cfg.head_dim,
                                 st->info.max_ctx, st->info.dec_ctx,
                                 &st->dec);

    rows = 0;
    for (i = 0; i < bt->n_loras; i++) {
        rows += (size_t) SLORA_PROJ_N * 2 * (size_t) bt->loras[i].rank;
    }

    /* what kernels are given a pointer to first, at offsets that depend
     * on the token, sequence and logits counts and the decode shape only
     * (a captured decode graph keeps them); the page ids and row tables,
     * whose sizes vary from step to step, last */
    lay->tokens = 0;
    lay->pos = lay->tokens + slora_cuda_up(n * sizeof(int32_t));
    lay->qo = lay->pos + slora_cuda_up(n * sizeof(int32_t));
    lay->seq_pos = lay->qo + slora_cuda_up((ns + 1) * sizeof(int32_t));
    lay->kv_indptr = lay->seq_pos + slora_cuda_up(ns * sizeof(int32_t));
    lay->dec_items = lay->kv_indptr
                     + slora_cuda_up((ns + 1) * sizeof(int32_t));
    lay->dec_first = lay->dec_items
                     + slora_cuda_up(4 * (size_t) st->dec.n_items
                                     * sizeof(int32_t));
    lay->seg_indptr = lay->dec_first + slora_cuda_up(ns * sizeof(int32_t));
    lay->tiles = lay->seg_indptr + slora_cuda_up((ns + 1) * sizeof(int32_t));
    lay->rank = lay->tiles + slora_cuda_up((ns + 1) * sizeof(int32_t));
    lay->scale = lay->rank
                 + slora_cuda_up(SLORA_PROJ_N * ns * sizeof(int32_t));
    lay->lidx = lay->scale + slora_cuda_up(ns * sizeof(float));
    lay->draws = lay->lidx + slora_cuda_up(m * sizeof(int32_t));
    lay->score_tok = lay->draws + slora_cuda_up(m * sizeof(slora_draw_t));
    lay->seg_a = lay->score_tok + slora_cuda_up(m * sizeof(int32_t));
    lay->seg_b = lay->seg_a + slora_cuda_up(SLORA_PROJ_N * ns
                                            * sizeof(void *));
    lay->kv_indices = lay->seg_b + slora_cuda_up(SLORA_PROJ_N * ns
                                                 * sizeof(void *));
    lay->rows = lay->kv_indices
                + slora_cuda_up((size_t) st->info.n_pages * sizeof(int32_t));
    lay->total = lay->rows + slora_cuda_up(rows * sizeof(int64_t))
                 + m * sizeof(int32_t);

    hb16 = n * (size_t) c->cfg.hidden * b16;

    /* x A of q, k and v side by side, one block each (slora_cuda_lora),
     * then room for the slices of a split shrink's partials */
    lw = (1 + SLORA_LORA_SPLIT_MAX) * SLORA_LORA_MAX_PROJ * sizeof(float)
         * (size_t) slora_cuda_lora_part(n, st->info.max_rank > 0
                                            ? st->info.max_rank : 1);

    if (slora_cuda_grow(c, &c->x, hb16, 0, err) != SLORA_OK
        || slora_cuda_grow(c, &c->h, hb16, 0, err) != SLORA_OK
        || slora_cuda_grow(c, &c->qkv, n * c->qkv_dim * b16, 0, err)
           != SLORA_OK
        || slora_cuda_grow(c, &c->att, n * c->q_dim * b16, 0, err)
           != SLORA_OK
        || slora_cuda_grow(c, &c->o, hb16, 0, err) != SLORA_OK
        || slora_cuda_grow(c, &c->gu, n * 2 * c->cfg.ffn * b16, 0, err)
           != SLORA_OK
        || slora_cuda_grow(c, &c->lora_work, lw, 0, err) != SLORA_OK
        || (slora_cuda_lora_deltas(c, st)
            && slora_cuda_grow(c, &c->lora_delta,
                               n * (c->qkv_dim > c->cfg.hidden
                                    ? c->qkv_dim : c->cfg.hidden)
                               * sizeof(float), 0, err)
               != SLORA_OK)
        || slora_cuda_grow(c, &c->attn_work,
                           slora_attention_decode_work_size(bt->n_seqs,
                               c->cfg.n_heads, c->cfg.n_kv_heads,
                               c->cfg.head_dim, st->info.max_ctx,
                               st->info.dec_ctx),
                           0, err)
           != SLORA_OK
        || slora_cuda_grow(c, &c->lx, ml * c->cfg.hidden * b16, 0, err)
           != SLORA_OK
        || slora_cuda_grow(c, &c->lout, ml * c->cfg.vocab * sizeof(float), 0,
                           err)
           != SLORA_OK
        || slora_cuda_grow(c, &c->ids, ml * sizeof(int32_t), 0, err)
           != SLORA_OK
        || (bt->score_tok != NULL
            && (slora_cuda_grow(c, &c->scores, ml * sizeof(slora_score_t), 0,
                                err)
                != SLORA_OK
                || slora_cuda_grow(c, &c->scores_host,
                                   ml * sizeof(slora_score_t), 1, err)
                   != SLORA_OK))
        || slora_cuda_grow(c, &c->ix, lay->total, 0, err) != SLORA_OK
        || slora_cuda_host_grow(&c->seg_lora, ns * sizeof(int32_t), err)
           != SLORA_OK
        || slora_cuda_host_grow(&c->lora_tab,
                                ((size_t) bt->n_loras + 1) * 2
                                * SLORA_PROJ_N * sizeof(void *), err)
           != SLORA_OK
        || slora_cuda_grow(c, &c->ix_host, lay->total, 1, err) != SLORA_OK
        || slora_cuda_grow(c, &c->ids_host, ml * sizeof(int32_t), 1, err)
           != SLORA_OK
        || ((bt->ids == NULL || bt->host_rows != NULL)
            && slora_cuda_grow(c, &c->lout_host,
                               ml * c->cfg.vocab * sizeof(float), 1, err)
               != SLORA_OK)
        || slora_cuda_rope_grow(c, st->info.max_ctx, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    return SLORA_OK;
}


/*
 * RoPE's table (slora_rope.h) holds positions [0, rope_pos); a step that
 * reaches past it makes it again on the host, at twice the size or more
 * (at least 1024 positions), and copies it over. Outside any capture:
 * reserve runs before the step's launches.
 */

static int
slora_cuda_rope_grow(slora_cuda_t *c, int32_t n_pos, slora_err_t *err)
{
    int32_t   hd;
    size_t    bytes;
    float    *table;

    if (n_pos <= c->rope_pos) {
        return SLORA_OK;
    }

    n_pos = n_pos > 2 * c->rope_pos ? n_pos : 2 * c->rope_pos;
    n_pos = n_pos > 1024 ? n_pos : 1024;
    hd = c->cfg.head_dim;
    bytes = (size_t) n_pos * (size_t) hd * sizeof(float);

    table = malloc(bytes);
    if (table == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: out of "
                             "memory");
    }

    if (slora_rope_table(table, n_pos, hd, c->cfg.rope_theta,
                         c->model->w.rope_freqs)
        != 0)
    {
        free(table);
        return slora_err_set(err, SLORA_ERROR, "cuda backend: RoPE table "
                             "refused");
    }

    /* on the compute stream its kernels read it from, and waited for
     * (a pageable cudaMemcpy may return before its DMA lands, and the
     * legacy stream orders nothing for non-blocking ones) */
    if (slora_cuda_grow(c, &c->rope, bytes, 0, err) != SLORA_OK
        || slora_cuda_check(cudaMemcpyAsync(c->rope.p, table, bytes,
                                            cudaMemcpyHostToDevice,
                                            c->stream),
                            "RoPE table copy", err)
           != SLORA_OK
        || slora_cuda_check(cudaStreamSynchronize(c->stream),
                            "RoPE table copy", err)
           != SLORA_OK)
    {
        free(table);
        return SLORA_ERROR;
    }

    free(table);
    c->rope_pos = n_pos;

    return SLORA_OK;
}


/*
 * Lays the step's indices out in the pinned block (the CSR indices of
 * slora_batch_index, the logits rows, and per projection the device
 * pointers to each adapter's row tables, which follow in the same block)
 * and sends them to the device in one copy.
 */

int
slora_cuda_index(slora_cuda_t *c, slora_cuda_step_t *st,
    const slora_cuda_layout_t *lay, slora_err_t *err)
{
    const slora_batch_t  *bt = st->batch;
    const slora_lora_t   *lo;
    slora_batch_index_t   bx;
    char                 *hb, *db;
    int64_t              *rows, **a_tab, **b_tab;
    const int64_t       **seg_a, **seg_b;
    int32_t              *lidx, s, p, i, j, g, ns, ng, m, r, len;
    slora_lora_segs_t     tl;
    size_t                k;
    int64_t              *tab_a_dev, *tab_b_dev;

    hb = c->ix_host.p;
    db = c->ix.p;
    ns = bt->n_seqs;

    memcpy(hb + lay->tokens, bt->tokens,
           (size_t) bt->n_tokens * sizeof(int32_t));

    bx.qo_indptr = (int32_t *) (hb + lay->qo);
    bx.seq_pos = (int32_t *) (hb + lay->seq_pos);
    bx.kv_indptr = (int32_t *) (hb + lay->kv_indptr);
    bx.kv_indices = (int32_t *) (hb + lay->kv_indices);
    bx.pos = (int32_t *) (hb + lay->pos);
    bx.seg_indptr = (int32_t *) (hb + lay->seg_indptr);
    bx.seg_lora = c->seg_lora.p;
    bx.rank = (int32_t *) (hb + lay->rank);
    bx.scale = (float *) (hb + lay->scale);

    /* a decode step keeps LoRA segments within the MBGMV kernels' reach */
    slora_batch_index(bt, st->tokens_per_page,
                      st->info.max_q_len == 1 ? SLORA_LORA_GMV_MAX_SEG : 0,
                      &bx);

    if (slora_attention_decode_items(&st->dec, ns, bx.qo_indptr, bx.seq_pos,
                                     bx.kv_indptr,
                                     (int32_t *) (hb + lay->dec_items),
                                     (int32_t *) (hb + lay->dec_first))
        < 0)
    {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: the decode "
                             "attention's work list outgrew its shape");
    }

    ng = bx.n_segs;
    st->n_segs = ng;
    st->max_seg_len = 0;

    for (g = 0; g < ng; g++) {
        len = bx.seg_indptr[g + 1] - bx.seg_indptr[g];
        st->max_seg_len = len > st->max_seg_len ? len : st->max_seg_len;
    }

    /* logits rows in sequence order; lrow maps them to batch rows */
    lidx = (int32_t *) (hb + lay->lidx);
    st->lrow = (int32_t *) (hb + lay->total
                            - (size_t) (st->info.n_logits > 0
                                        ? st->info.n_logits : 1)
                              * sizeof(int32_t));
    m = 0;

    for (s = 0; s < ns; s++) {
        for (j = 0; j < bt->seqs[s].n_rows; j++) {
            lidx[m] = bx.qo_indptr[s + 1] - bt->seqs[s].n_rows + j;
            st->lrow[m] = bt->seqs[s].logits_row + j;

            /* the draws and the scored tokens in the device's row
             * order */
            if (bt->draws != NULL) {
                ((slora_draw_t *) (hb + lay->draws))[m] =
                    bt->draws[st->lrow[m]];
            }

            if (bt->score_tok != NULL) {
                ((int32_t *) (hb + lay->score_tok))[m] =
                    bt->score_tok[st->lrow[m]];
            }

            m++;
        }
    }

    /* each adapter's row tables once (device addresses kept in a_tab and
     * b_tab, [n_loras][PROJ_N]), then the per-segment pointers */
    seg_a = (const int64_t **) (hb + lay->seg_a);
    seg_b = (const int64_t **) (hb + lay->seg_b);
    rows = (int64_t *) (hb + lay->rows);
    a_tab = c->lora_tab.p;
    b_tab = a_tab + (size_t) bt->n_loras * SLORA_PROJ_N;
    k = 0;

    for (i = 0; i < bt->n_loras; i++) {
        lo = &bt->loras[i];

        for (p = 0; p < SLORA_PROJ_N; p++) {
            a_tab[i * SLORA_PROJ_N + p] = NULL;
            b_tab[i * SLORA_PROJ_N + p] = NULL;

            if (!(lo->proj_mask & (1u << p))) {
                continue;
            }

            r = lo->rank;
            slora_cuda_rows(c, rows + k, lo->a_rows[p], r);
            a_tab[i * SLORA_PROJ_N + p] = (int64_t *) (db + lay->rows) + k;
            k += (size_t) r;
            slora_cuda_rows(c, rows + k, lo->b_rows[p], r);
            b_tab[i * SLORA_PROJ_N + p] = (int64_t *) (db + lay->rows) + k;
            k += (size_t) r;
        }
    }

    for (g = 0; g < ng; g++) {
        i = bx.seg_lora[g];

        for (p = 0; p < SLORA_PROJ_N; p++) {
            seg_a[p * ng + g] = i >= 0 && bx.rank[p * ng + g] > 0
                                ? a_tab[i * SLORA_PROJ_N + p] : NULL;
            seg_b[p * ng + g] = i >= 0 && bx.rank[p * ng + g] > 0
                                ? b_tab[i * SLORA_PROJ_N + p] : NULL;
        }
    }

    /* the MBGMM kernels' work tiles */
    slora_lora_tiles_cuda(bx.seg_indptr, ng, (int32_t *) (hb + lay->tiles),
                          &tl);

    if (slora_cuda_check(cudaMemcpyAsync(db, hb, lay->total,
                                         cudaMemcpyHostToDevice, c->stream),
                         "step indices", err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    st->tokens = (const int32_t *) (db + lay->tokens);
    st->pos = (const int32_t *) (db + lay->pos);
    st->lidx = (const int32_t *) (db + lay->lidx);
    st->draws = bt->draws != NULL
                ? (const slora_draw_t *) (db + lay->draws) : NULL;
    st->score_tok = bt->score_tok != NULL
                    ? (const int32_t *) (db + lay->score_tok) : NULL;

    st->ix.n_seqs = ns;
    st->ix.qo_indptr = (const int32_t *) (db + lay->qo);
    st->ix.seq_pos = (const int32_t *) (db + lay->seq_pos);
    st->ix.kv_indptr = (const int32_t *) (db + lay->kv_indptr);
    st->ix.dec_items = (const int32_t *) (db + lay->dec_items);
    st->ix.dec_first = (const int32_t *) (db + lay->dec_first);
    st->ix.kv_indices = (const int32_t *) (db + lay->kv_indices);

    tab_a_dev = (int64_t *) (db + lay->seg_a);
    tab_b_dev = (int64_t *) (db + lay->seg_b);

    for (p = 0; p < SLORA_PROJ_N; p++) {
        st->segs[p].n_segs = ng;
        st->segs[p].seg_indptr = (const int32_t *) (db + lay->seg_indptr);
        st->segs[p].n_tiles = tl.n_tiles;
        st->segs[p].n_long = tl.n_long;
        st->segs[p].tile_indptr = (const int32_t *) (db + lay->tiles);
        st->segs[p].rank = (const int32_t *) (db + lay->rank) + p * ng;
        st->segs[p].scale = (const float *) (db + lay->scale);
        st->segs[p].a_rows = (const int64_t *const *) tab_a_dev + p * ng;
        st->segs[p].b_rows = (const int64_t *const *) tab_b_dev + p * ng;
    }

    return SLORA_OK;
}


/*
 * An adapter's row offsets in this GPU's arena: the pool's own on one
 * GPU; on a rank of tp_n, 1/tp_n of them, since its arena holds part
 * s of every slice-major page (slora_pool.h) and rows start at multiples
 * of tp_n.
 */

static void
slora_cuda_rows(const slora_cuda_t *c, int64_t *dst, const int64_t *src,
    int32_t r)
{
    int32_t  i;

    if (c->tp_n == 1) {
        memcpy(dst, src, (size_t) r * sizeof(int64_t));
        return;
    }

    for (i = 0; i < r; i++) {
        dst[i] = src[i] / c->tp_n;
    }
}


/* Plain host scratch (never seen by the device). */
static int
slora_cuda_host_grow(slora_cuda_buf_t *buf, size_t need, slora_err_t *err)
{
    void  *p;

    if (need <= buf->cap) {
        return SLORA_OK;
    }

    p = realloc(buf->p, need);
    if (p == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: out of "
                             "memory");
    }

    buf->p = p;
    buf->cap = need;

    return SLORA_OK;
}


int
slora_cuda_grow(slora_cuda_t *c, slora_cuda_buf_t *buf, size_t need,
    int pinned, slora_err_t *err)
{
    void    *p;
    size_t   cap;

    if (need <= buf->cap) {
        return SLORA_OK;
    }

    cap = buf->cap * 2 > need ? buf->cap * 2 : need;
    cap = slora_cuda_up(cap);

    if ((pinned ? cudaHostAlloc(&p, cap, cudaHostAllocDefault)
                : cudaMalloc(&p, cap))
        != cudaSuccess)
    {
        cudaGetLastError();
        return slora_err_set(err, SLORA_ERROR, "cuda backend: cannot "
                             "allocate %zu bytes of %s scratch", cap,
                             pinned ? "pinned" : "device");
    }

    slora_cuda_buf_free(buf, pinned);
    buf->p = p;
    buf->cap = cap;
    c->graphs_stale = 1;

    return SLORA_OK;
}


void
slora_cuda_buf_free(slora_cuda_buf_t *buf, int pinned)
{
    if (buf->p != NULL) {
        if (pinned) {
            cudaFreeHost(buf->p);

        } else {
            cudaFree(buf->p);
        }
    }

    buf->p = NULL;
    buf->cap = 0;
}


int
slora_cuda_check(cudaError_t rc, const char *what, slora_err_t *err)
{
    if (rc == cudaSuccess) {
        return SLORA_OK;
    }

    cudaGetLastError();

    return slora_err_set(err, SLORA_ERROR, "cuda backend: %s: %s", what,
                         cudaGetErrorString(rc));
}


/*
 * After a failed step: an error that leaves the GPU's context unusable
 * (a bad address, a failed launch, an uncorrectable ECC error) comes
 * back from every later call, so the step's error becomes SLORA_FATAL
 * and the process that owns the engine starts over (nginx respawns the
 * engine process). Other errors leave the next step free to try.
 */

int
slora_cuda_lost(slora_cuda_t *c, slora_err_t *err)
{
    cudaError_t  rc;

    cudaSetDevice(c->device);
    rc = cudaDeviceSynchronize();

    switch (rc) {

    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorDevicesUnavailable:
        if (err != NULL) {
            slora_err_prefix(err, "the GPU's context is lost (%s)",
                             cudaGetErrorString(rc));
            err->code = SLORA_FATAL;
        }

        return SLORA_FATAL;

    default:
        cudaGetLastError();
        return SLORA_ERROR;
    }
}


size_t
slora_cuda_up(size_t n)
{
    return (n + SLORA_CUDA_ALIGN - 1) & ~(size_t) (SLORA_CUDA_ALIGN - 1);
}
