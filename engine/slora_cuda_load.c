/*
 * slora_cuda_load.c: the CUDA backend's weights, loaded once per GPU:
 * the model's tensors in bf16, a tensor-parallel rank's shard of each,
 * uploaded from the host's f32 values or, for a random model whose
 * weights were never made on the host, made on the GPU.
 *
 * The one idea: every tensor goes through slora_cuda_put with its place
 * in the whole tensor (first element, rows, width, row stride), so one
 * description of a rank's shard serves the upload and the device-side
 * generator alike.
 */

#include <stdlib.h>
#include <string.h>

#include "slora_cuda_int.h"
#include "slora_random.h"


static int slora_cuda_load_layer(slora_cuda_t *c, int32_t l,
    slora_cuda_layer_t *D, slora_err_t *err);
static int slora_cuda_put(slora_cuda_t *c, uint16_t *dst, const float *src,
    int32_t l, slora_random_tensor_e t, int64_t first, int32_t rows,
    int64_t width, int64_t ld, slora_err_t *err);
static uint16_t *slora_cuda_weight(slora_cuda_t *c, size_t elems,
    slora_err_t *err);


/*
 * The weights in bf16: every one on a single GPU; on rank r of N, the
 * rows of q, k, v, gate and up and the columns of o and down that its
 * heads and its part of the FFN use, and the embedding and norms whole.
 * Only rank 0 computes logits, so only it holds an untied output matrix.
 * A random model whose weights were never made on the host has them
 * made here, on the GPU, shard by shard (slora_cuda_put).
 */

int
slora_cuda_rank_load(slora_cuda_t *c, const slora_model_t *m,
    slora_err_t *err)
{
    const slora_model_config_t    *cfg;
    size_t                         hidden, vocab;
    int32_t                        l, n;

    if (m == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: no model");
    }

    if (c->model != NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: cuda backend: a model "
                             "is loaded already (%s)", m->path,
                             c->model->path);
    }

    cfg = &m->cfg;

    if (cfg->n_layers <= 0 || cfg->hidden <= 0 || cfg->n_heads <= 0
        || cfg->n_kv_heads <= 0 || cfg->n_heads % cfg->n_kv_heads != 0
        || cfg->head_dim <= 0 || cfg->head_dim % 8 != 0
        || cfg->head_dim > 256 || cfg->hidden % 8 != 0 || cfg->ffn <= 0
        || cfg->ffn % 8 != 0 || cfg->vocab <= 0 || cfg->rope_theta <= 0.0f)
    {
        return slora_err_set(err, SLORA_ERROR, "%s: cuda backend: shape not "
                             "supported (layers %d, hidden %d, heads %d/%d, "
                             "head_dim %d, ffn %d, vocab %d): widths must be "
                             "multiples of 8, head_dim at most 256", m->path,
                             cfg->n_layers, cfg->hidden, cfg->n_heads,
                             cfg->n_kv_heads, cfg->head_dim, cfg->ffn,
                             cfg->vocab);
    }

    if (!m->random_deferred
        && (m->w.tok_embd == NULL || m->w.out_norm == NULL
            || m->w.output == NULL || m->w.layers == NULL))
    {
        return slora_err_set(err, SLORA_ERROR,
                             "%s: cuda backend: missing global weights",
                             m->path);
    }

    n = c->tp_n;

    if (cfg->n_heads % n != 0 || cfg->n_kv_heads % n != 0
        || cfg->hidden % (8 * n) != 0 || cfg->ffn % (8 * n) != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "%s: tensor_parallel=%d must "
                             "divide the heads (%d) and KV heads (%d), and "
                             "hidden (%d) and ffn (%d) by 8 x %d", m->path,
                             n, cfg->n_heads, cfg->n_kv_heads, cfg->hidden,
                             cfg->ffn, n);
    }

    if (slora_cuda_check(cudaSetDevice(c->device), "cudaSetDevice", err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    c->model = m;
    c->cfg = *cfg;
    c->cfg.n_heads /= n;
    c->cfg.n_kv_heads /= n;
    c->cfg.ffn /= n;
    c->q_dim = c->cfg.n_heads * cfg->head_dim;
    c->kv_dim = c->cfg.n_kv_heads * cfg->head_dim;
    c->qkv_dim = c->q_dim + 2 * c->kv_dim;

    c->allocs = calloc((size_t) cfg->n_layers * 10 + 4, sizeof(void *));
    c->layers = calloc((size_t) cfg->n_layers, sizeof(slora_cuda_layer_t));
    if (c->allocs == NULL || c->layers == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: out of memory");
    }

    hidden = (size_t) cfg->hidden;
    vocab = (size_t) cfg->vocab;

    c->tok_embd = slora_cuda_weight(c, vocab * hidden, err);
    c->out_norm = slora_cuda_weight(c, hidden, err);

    if (c->tok_embd == NULL || c->out_norm == NULL
        || slora_cuda_put(c, c->tok_embd, m->w.tok_embd, -1,
                          SLORA_RT_TOK_EMBD, 0, 1,
                          (int64_t) (vocab * hidden),
                          (int64_t) (vocab * hidden), err)
           != SLORA_OK
        || slora_cuda_put(c, c->out_norm, m->w.out_norm, -1,
                          SLORA_RT_OUT_NORM, 0, 1, (int64_t) hidden,
                          (int64_t) hidden, err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (!m->random_deferred && m->w.output == m->w.tok_embd) {
        c->output = c->tok_embd;

    } else if (c->tp_rank == 0) {
        c->output = slora_cuda_weight(c, vocab * hidden, err);
        if (c->output == NULL
            || slora_cuda_put(c, c->output, m->w.output, -1,
                              SLORA_RT_OUTPUT, 0, 1,
                              (int64_t) (vocab * hidden),
                              (int64_t) (vocab * hidden), err)
               != SLORA_OK)
        {
            return SLORA_ERROR;
        }
    }

    for (l = 0; l < cfg->n_layers; l++) {
        if (slora_cuda_load_layer(c, l, &c->layers[l], err) != SLORA_OK)
        {
            return slora_err_prefix(err, "%s: cuda backend: layer %d",
                                    m->path, l);
        }
    }

    return slora_cuda_check(cudaStreamSynchronize(c->upload), "weights",
                            err);
}


static int
slora_cuda_load_layer(slora_cuda_t *c, int32_t l, slora_cuda_layer_t *D,
    slora_err_t *err)
{
    const slora_layer_weights_t  *L;
    slora_layer_weights_t         none;
    size_t                        hidden, ffn, q, kv, r;
    int64_t                       qh, kvh, fh;
    int                           ok;

    memset(&none, 0, sizeof(none));
    L = c->model->random_deferred ? &none : &c->model->w.layers[l];

    if (!c->model->random_deferred
        && (L->attn_norm == NULL || L->wq == NULL || L->wk == NULL
            || L->wv == NULL || L->wo == NULL || L->ffn_norm == NULL
            || L->w_gate == NULL || L->w_up == NULL || L->w_down == NULL
            || (L->bq != NULL) != (L->bk != NULL)
            || (L->bq != NULL) != (L->bv != NULL)
            || (L->q_norm != NULL) != (L->k_norm != NULL)))
    {
        return slora_err_set(err, SLORA_ERROR, "missing weights");
    }

    hidden = (size_t) c->cfg.hidden;
    ffn = (size_t) c->cfg.ffn;
    q = (size_t) c->q_dim;
    kv = (size_t) c->kv_dim;
    r = (size_t) c->tp_rank;

    D->attn_norm = slora_cuda_weight(c, hidden, err);
    D->wqkv = slora_cuda_weight(c, (q + 2 * kv) * hidden, err);
    D->wo = slora_cuda_weight(c, hidden * q, err);
    D->ffn_norm = slora_cuda_weight(c, hidden, err);
    D->wgu = slora_cuda_weight(c, 2 * ffn * hidden, err);
    D->wdown = slora_cuda_weight(c, hidden * ffn, err);

    if (D->attn_norm == NULL || D->wqkv == NULL || D->wo == NULL
        || D->ffn_norm == NULL || D->wgu == NULL || D->wdown == NULL)
    {
        return SLORA_ERROR;
    }

    /* a rank's rows of q, k, v, gate and up are one stretch of each
     * tensor; its columns of o and down are hidden rows of a stretch */
    qh = (int64_t) (q * hidden);
    kvh = (int64_t) (kv * hidden);
    fh = (int64_t) (ffn * hidden);

    ok = slora_cuda_put(c, D->attn_norm, L->attn_norm, l, SLORA_RT_ATTN_NORM,
                        0, 1, (int64_t) hidden, (int64_t) hidden, err)
         == SLORA_OK
         && slora_cuda_put(c, D->wqkv, L->wq, l, SLORA_RT_WQ,
                           (int64_t) r * qh, 1, qh, qh, err) == SLORA_OK
         && slora_cuda_put(c, D->wqkv + q * hidden, L->wk, l, SLORA_RT_WK,
                           (int64_t) r * kvh, 1, kvh, kvh, err) == SLORA_OK
         && slora_cuda_put(c, D->wqkv + (q + kv) * hidden, L->wv, l,
                           SLORA_RT_WV, (int64_t) r * kvh, 1, kvh, kvh, err)
            == SLORA_OK
         && slora_cuda_put(c, D->wo, L->wo, l, SLORA_RT_WO,
                           (int64_t) (r * q), (int32_t) hidden, (int64_t) q,
                           (int64_t) (q * c->tp_n), err) == SLORA_OK
         && slora_cuda_put(c, D->ffn_norm, L->ffn_norm, l, SLORA_RT_FFN_NORM,
                           0, 1, (int64_t) hidden, (int64_t) hidden, err)
            == SLORA_OK
         && slora_cuda_put(c, D->wgu, L->w_gate, l, SLORA_RT_GATE,
                           (int64_t) r * fh, 1, fh, fh, err) == SLORA_OK
         && slora_cuda_put(c, D->wgu + ffn * hidden, L->w_up, l, SLORA_RT_UP,
                           (int64_t) r * fh, 1, fh, fh, err) == SLORA_OK
         && slora_cuda_put(c, D->wdown, L->w_down, l, SLORA_RT_DOWN,
                           (int64_t) (r * ffn), (int32_t) hidden,
                           (int64_t) ffn, (int64_t) (ffn * c->tp_n), err)
            == SLORA_OK;

    if (!ok) {
        return SLORA_ERROR;
    }

    /* the heads' norms: one vector every head shares, whole on every
     * rank */
    if (L->q_norm != NULL) {
        D->q_norm = slora_cuda_weight(c, (size_t) c->cfg.head_dim, err);
        D->k_norm = slora_cuda_weight(c, (size_t) c->cfg.head_dim, err);

        if (D->q_norm == NULL || D->k_norm == NULL
            || slora_cuda_upload(c, D->q_norm, L->q_norm,
                                 (int64_t) c->cfg.head_dim, err)
               != SLORA_OK
            || slora_cuda_upload(c, D->k_norm, L->k_norm,
                                 (int64_t) c->cfg.head_dim, err)
               != SLORA_OK)
        {
            return SLORA_ERROR;
        }
    }

    if (L->bq != NULL) {
        D->bqkv = slora_cuda_weight(c, q + 2 * kv, err);

        if (D->bqkv == NULL
            || slora_cuda_upload(c, D->bqkv, L->bq + r * q, (int64_t) q, err)
               != SLORA_OK
            || slora_cuda_upload(c, D->bqkv + q, L->bk + r * kv,
                                 (int64_t) kv, err)
               != SLORA_OK
            || slora_cuda_upload(c, D->bqkv + q + kv, L->bv + r * kv,
                                 (int64_t) kv, err)
               != SLORA_OK)
        {
            return SLORA_ERROR;
        }
    }

    return SLORA_OK;
}


static uint16_t *
slora_cuda_weight(slora_cuda_t *c, size_t elems, slora_err_t *err)
{
    void  *p;

    if (cudaMalloc(&p, elems * sizeof(uint16_t)) != cudaSuccess) {
        slora_err_set(err, SLORA_ERROR, "cuda backend: out of device memory "
                      "for %zu weights (%zu bytes already held)", elems,
                      c->weight_bytes);
        return NULL;
    }

    c->allocs[c->n_allocs++] = p;
    c->weight_bytes += elems * sizeof(uint16_t);

    return p;
}


/*
 * rows x width values of tensor t (of layer l; -1: a global one) from its
 * element first, rows ld apart, to the dense bf16 block at dst: the
 * model's f32 values uploaded from src + first, or, where the model's
 * weights were never made on the host (random_deferred), the same
 * values made on the GPU from their key.
 */

static int
slora_cuda_put(slora_cuda_t *c, uint16_t *dst, const float *src, int32_t l,
    slora_random_tensor_e t, int64_t first, int32_t rows, int64_t width,
    int64_t ld, slora_err_t *err)
{
    const slora_model_t  *m = c->model;
    uint64_t              key;
    float                 amp;

    if (!m->random_deferred) {
        return slora_cuda_upload_cols(c, dst, src + first, rows, width, ld,
                                      err);
    }

    slora_model_random_tensor(&m->cfg, l, t, &key, &amp);

    if (slora_random_fill_bf16_cuda(dst, rows, width, ld, first,
                                    m->random_seed, key, amp, c->upload)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: random "
                             "weights refused");
    }

    return SLORA_OK;
}
