/*
 * slora_batch.c: what every backend does with a batch before it
 * computes: check it once (token count, page coverage, page ids and
 * adapter row offsets inside the arena, logits rows) and lay out the
 * CSR indices that attention and the LoRA kernels read.
 *
 * The one idea: a batch is checked here, in one place, against the
 * arena's size; afterwards the kernels of any backend index the arena
 * without per-row checks, so a wrong batch can only ever be refused,
 * never read out of bounds.
 */

#include <string.h>

#include "slora_batch.h"


static int slora_batch_check_lora(const slora_lora_t *lo, int32_t idx,
    const slora_model_config_t *cfg, int32_t slices, int64_t limit,
    const char *who, slora_err_t *err);


int
slora_batch_check(const slora_batch_t *bt, const slora_model_config_t *cfg,
    int32_t slices, const int64_t *layer_off, int64_t arena_elems,
    int64_t page_elems, int32_t tokens_per_page, const char *who,
    slora_batch_info_t *info, slora_err_t *err)
{
    const slora_batch_seq_t  *sq;
    int64_t                   max_off, limit, need, kv_dim;
    int32_t                   s, l, i, sum, n_pages;

    memset(info, 0, sizeof(slora_batch_info_t));

    if (bt->n_tokens < 0 || bt->n_seqs < 0 || bt->n_loras < 0
        || (bt->n_tokens > 0 && bt->tokens == NULL)
        || (bt->n_seqs > 0 && bt->seqs == NULL)
        || (bt->n_loras > 0 && bt->loras == NULL))
    {
        return slora_err_set(err, SLORA_ERROR, "%s: batch: bad counts (%d "
                             "tokens, %d seqs, %d loras)", who, bt->n_tokens,
                             bt->n_seqs, bt->n_loras);
    }

    kv_dim = (int64_t) cfg->n_kv_heads * cfg->head_dim;

    if (slices < 1 || kv_dim % slices != 0) {
        return slora_err_set(err, SLORA_ERROR, "%s: K and V rows of %lld "
                             "do not split in %d tensor-parallel slices",
                             who, (long long) kv_dim, slices);
    }

    /* a part's page holds its share of the K and V heads */
    kv_dim /= slices;

    if (tokens_per_page <= 0
        || page_elems < 2 * (int64_t) tokens_per_page * kv_dim)
    {
        return slora_err_set(err, SLORA_ERROR, "%s: page of %lld elements "
                             "cannot hold %d tokens of K and V", who,
                             (long long) page_elems, tokens_per_page);
    }

    max_off = 0;
    info->direct = 1;

    for (l = 0; l < cfg->n_layers; l++) {
        if (layer_off[l] < 0 || layer_off[l] > arena_elems) {
            return slora_err_set(err, SLORA_ERROR, "%s: layer %d offset %lld "
                                 "outside the arena", who, l,
                                 (long long) layer_off[l]);
        }

        max_off = layer_off[l] > max_off ? layer_off[l] : max_off;
    }

    /* elements of a layer's region that every layer has */
    limit = arena_elems - max_off;

    sum = 0;

    for (s = 0; s < bt->n_seqs; s++) {
        sq = &bt->seqs[s];

        if (sq->n_tokens < 0 || sq->pos < 0 || sq->n_pages < 0
            || (sq->n_pages > 0 && sq->pages == NULL)
            || sq->n_tokens > bt->n_tokens - sum)
        {
            return slora_err_set(err, SLORA_ERROR, "%s: batch: sequence %d: "
                                 "bad counts", who, s);
        }

        sum += sq->n_tokens;
        need = ((int64_t) sq->pos + sq->n_tokens + tokens_per_page - 1)
               / tokens_per_page;

        if (need > sq->n_pages) {
            return slora_err_set(err, SLORA_ERROR, "%s: batch: sequence %d: "
                                 "%d pages cover %lld positions, need %lld",
                                 who, s, sq->n_pages,
                                 (long long) sq->n_pages * tokens_per_page,
                                 (long long) sq->pos + sq->n_tokens);
        }

        n_pages = (int32_t) need;

        for (i = 0; i < n_pages; i++) {
            if (sq->pages[i] < 0
                || ((int64_t) sq->pages[i] + 1) * page_elems > limit)
            {
                return slora_err_set(err, SLORA_ERROR, "%s: batch: sequence "
                                     "%d: page %d outside the arena", who, s,
                                     sq->pages[i]);
            }
        }

        info->n_pages += n_pages;

        if (sq->lora < -1 || sq->lora >= bt->n_loras) {
            return slora_err_set(err, SLORA_ERROR, "%s: batch: sequence %d: "
                                 "adapter %d of %d", who, s, sq->lora,
                                 bt->n_loras);
        }

        if (sq->logits_row >= 0) {
            if (sq->n_rows < 1 || sq->n_rows > sq->n_tokens
                || sq->logits_row > bt->n_logits - sq->n_rows
                || bt->logits == NULL)
            {
                return slora_err_set(err, SLORA_ERROR, "%s: batch: sequence "
                                     "%d: logits rows %d..%d of %d", who, s,
                                     sq->logits_row,
                                     sq->logits_row + sq->n_rows - 1,
                                     bt->n_logits);
            }

            info->direct &= sq->logits_row == info->n_logits;
            info->n_logits += sq->n_rows;

        } else if (sq->n_rows != 0) {
            return slora_err_set(err, SLORA_ERROR, "%s: batch: sequence %d: "
                                 "%d logits rows without a first",
                                 who, s, sq->n_rows);
        }

        if (sq->pos + sq->n_tokens > info->max_ctx) {
            info->max_ctx = sq->pos + sq->n_tokens;
        }

        if (sq->n_tokens == 1) {
            info->dec_ctx += sq->pos + 1;
        }

        if (sq->n_tokens > info->max_q_len) {
            info->max_q_len = sq->n_tokens;
        }
    }

    if (sum != bt->n_tokens) {
        return slora_err_set(err, SLORA_ERROR, "%s: batch: sequences hold %d "
                             "tokens, batch has %d", who, sum, bt->n_tokens);
    }

    for (i = 0; i < bt->n_loras; i++) {
        if (slora_batch_check_lora(&bt->loras[i], i, cfg, slices, limit,
                                   who, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        if (bt->loras[i].proj_mask != 0
            && bt->loras[i].rank > info->max_rank)
        {
            info->max_rank = bt->loras[i].rank;
        }

        info->proj_mask |= bt->loras[i].proj_mask;
    }

    return SLORA_OK;
}


/* An adapter's rows, at the pool's offsets, inside a part of limit
 * elements a layer: a row of width W at off is W / slices at off /
 * slices there, and only a multiple of slices can be split so. */

static int
slora_batch_check_lora(const slora_lora_t *lo, int32_t idx,
    const slora_model_config_t *cfg, int32_t slices, int64_t limit,
    const char *who, slora_err_t *err)
{
    int32_t  p, j, in, out;
    int64_t  a, b;

    if (lo->proj_mask >> SLORA_PROJ_N != 0
        || (lo->proj_mask != 0 && lo->rank <= 0))
    {
        return slora_err_set(err, SLORA_ERROR, "%s: batch: adapter %d: rank "
                             "%d, mask 0x%x", who, idx, lo->rank,
                             lo->proj_mask);
    }

    for (p = 0; p < SLORA_PROJ_N; p++) {
        if (!(lo->proj_mask & (1u << p))) {
            continue;
        }

        if (lo->a_rows[p] == NULL || lo->b_rows[p] == NULL) {
            return slora_err_set(err, SLORA_ERROR, "%s: batch: adapter %d: "
                                 "%s has no rows", who, idx,
                                 slora_proj_name(p));
        }

        in = slora_proj_in_dim(cfg, p) / slices;
        out = slora_proj_out_dim(cfg, p) / slices;

        for (j = 0; j < lo->rank; j++) {
            a = lo->a_rows[p][j];
            b = lo->b_rows[p][j];

            if (a < 0 || a % slices != 0 || a / slices > limit - in
                || b < 0 || b % slices != 0 || b / slices > limit - out)
            {
                return slora_err_set(err, SLORA_ERROR, "%s: batch: adapter "
                                     "%d: %s row %d outside the arena", who,
                                     idx, slora_proj_name(p), j);
            }
        }
    }

    return SLORA_OK;
}


void
slora_batch_index(const slora_batch_t *bt, int32_t tokens_per_page,
    int32_t max_seg_tokens, slora_batch_index_t *ix)
{
    const slora_batch_seq_t  *sq;
    const slora_lora_t       *lo;
    int32_t                   s, i, p, g, ns, np, len;

    ns = bt->n_seqs;

    ix->qo_indptr[0] = 0;
    ix->kv_indptr[0] = 0;
    ix->seg_indptr[0] = 0;
    g = -1;

    for (s = 0; s < ns; s++) {
        sq = &bt->seqs[s];
        ix->qo_indptr[s + 1] = ix->qo_indptr[s] + sq->n_tokens;
        ix->seq_pos[s] = sq->pos;

        np = (sq->pos + sq->n_tokens + tokens_per_page - 1) / tokens_per_page;
        memcpy(ix->kv_indices + ix->kv_indptr[s], sq->pages,
               (size_t) np * sizeof(int32_t));
        ix->kv_indptr[s + 1] = ix->kv_indptr[s] + np;

        for (i = 0; i < sq->n_tokens; i++) {
            ix->pos[ix->qo_indptr[s] + i] = sq->pos + i;
        }

        /* the sequence joins the open segment when it has the same
         * adapter and the segment has room */
        len = g >= 0 ? ix->qo_indptr[s + 1] - ix->seg_indptr[g] : 0;

        if (g >= 0 && ix->seg_lora[g] == sq->lora
            && (max_seg_tokens <= 0 || len <= max_seg_tokens))
        {
            ix->seg_indptr[g + 1] = ix->qo_indptr[s + 1];
            continue;
        }

        g++;
        ix->seg_lora[g] = sq->lora;
        ix->seg_indptr[g + 1] = ix->qo_indptr[s + 1];
    }

    ix->n_segs = g + 1;

    for (g = 0; g < ix->n_segs; g++) {
        lo = ix->seg_lora[g] >= 0 ? &bt->loras[ix->seg_lora[g]] : NULL;
        ix->scale[g] = lo != NULL ? lo->scale : 0.0f;

        for (p = 0; p < SLORA_PROJ_N; p++) {
            ix->rank[p * ix->n_segs + g] =
                (lo != NULL && (lo->proj_mask & (1u << p))) ? lo->rank : 0;
        }
    }
}
