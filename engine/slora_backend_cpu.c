/*
 * slora_backend_cpu.c: the CPU backend, the reference every other backend
 * is held to. It keeps pointers to the model's f32 weights, owns the
 * pool's arena in host memory, and runs the forward pass of a whole
 * batch (prefill chunks and decode tokens of many sequences, each with
 * its own adapter or none) one layer at a time over all tokens at once.
 *
 * The one idea: every per-token operation is a GEMM over the batch's rows
 * (OpenBLAS) followed by one LoRA launch over the batch's segments; only
 * attention looks at sequences, through their page tables. The layer loop
 * reads like llama2.c's run.c:
 *
 *     x = embed(tokens)
 *     h = rmsnorm(x, attn_norm[0])
 *     per layer:
 *         q, k, v = h Wq^T, h Wk^T, h Wv^T (+ bias) + LoRA
 *         rope(q, k); store k, v in the pages; att = attention(q)
 *         o = att Wo^T + LoRA;          x += o; h = rmsnorm(x, ffn_norm)
 *         a = silu(h Wg^T + LoRA) * (h Wu^T + LoRA)
 *         d = a Wd^T + LoRA;            x += d; h = rmsnorm(x, next norm)
 *     logits = h Wout^T, for the rows that asked for them only
 *
 * The parallel ops and the packing of the weights into Q8_0 or Q4_1
 * live in slora_backend_cpu_ops.c. Scratch buffers belong to the
 * backend and only grow, so a steady stream of same-shaped steps
 * allocates nothing. A batch is checked once up front (token count,
 * page coverage, page ids and adapter row offsets inside the arena,
 * logits rows); after that the kernels run without per-row checks.
 */

#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <cblas.h>

#include "slora_backend_cpu_int.h"

#include "slora_argmax.h"
#include "slora_embed.h"


static int slora_cpu_load_model(slora_backend_t *b, const slora_model_t *m,
    slora_err_t *err);
static int slora_cpu_alloc_arena(slora_backend_t *b, size_t bytes,
    int64_t page_elems, slora_err_t *err);
static int slora_cpu_write_arena(slora_backend_t *b, int64_t off,
    const float *src, int64_t n, slora_err_t *err);
static int slora_cpu_read_arena(slora_backend_t *b, int64_t off, float *dst,
    int64_t n, slora_err_t *err);
static int slora_cpu_forward(slora_backend_t *b, const slora_batch_t *batch,
    const int64_t *pool_layer_off, int64_t page_elems,
    int32_t tokens_per_page, slora_err_t *err);
static void slora_cpu_free(slora_backend_t *b);

static int slora_cpu_reserve(slora_cpu_t *c, const slora_cpu_step_t *st,
    slora_err_t *err);
static void slora_cpu_index(slora_cpu_t *c, slora_cpu_step_t *st);
static int slora_cpu_layer(slora_cpu_t *c, slora_cpu_step_t *st, int32_t l,
    slora_err_t *err);
static int slora_cpu_logits(slora_cpu_t *c, slora_cpu_step_t *st);
static int slora_cpu_picks(slora_cpu_t *c, const slora_batch_t *batch,
    slora_err_t *err);
static void slora_cpu_pick_share(void *ctx, int ith, int nth);
static int slora_cpu_grow(slora_cpu_buf_t *buf, size_t need,
    slora_err_t *err);
static void slora_cpu_buf_free(slora_cpu_buf_t *buf);


slora_backend_t *
slora_backend_cpu_create(int n_threads, const char *weights,
    slora_err_t *err)
{
    slora_backend_t  *b;
    slora_cpu_t      *c;
    int               mode;

    if (n_threads < 1) {
        slora_err_set(err, SLORA_ERROR, "cpu backend: %d threads", n_threads);
        return NULL;
    }

    if (weights == NULL || strcmp(weights, "f32") == 0) {
        mode = SLORA_CPU_F32;

    } else if (strcmp(weights, "q8_0") == 0) {
        mode = SLORA_CPU_Q8_0;

    } else if (strcmp(weights, "native") == 0) {
        mode = SLORA_CPU_NATIVE;

    } else {
        slora_err_set(err, SLORA_ERROR, "cpu backend: weights \"%s\": not "
                      "\"f32\", \"q8_0\" or \"native\"", weights);
        return NULL;
    }

    b = calloc(1, sizeof(slora_backend_t));
    c = calloc(1, sizeof(slora_cpu_t));

    if (b == NULL || c == NULL) {
        free(b);
        free(c);
        slora_err_set(err, SLORA_ERROR, "cpu backend: out of memory");
        return NULL;
    }

    c->n_threads = n_threads;
    c->mode = mode;
    c->pool = slora_threads_create(n_threads, err);

    if (c->pool == NULL) {
        free(b);
        free(c);
        return NULL;
    }

    b->name = "cpu";
    b->elem_size = sizeof(float);
    b->load_model = slora_cpu_load_model;
    b->alloc_arena = slora_cpu_alloc_arena;
    b->write_arena = slora_cpu_write_arena;
    b->read_arena = slora_cpu_read_arena;
    b->forward = slora_cpu_forward;
    b->free = slora_cpu_free;
    b->draws = 1;
    b->data = c;

    openblas_set_num_threads(1);

    return b;
}


static int
slora_cpu_load_model(slora_backend_t *b, const slora_model_t *m,
    slora_err_t *err)
{
    slora_cpu_t                   *c = b->data;
    const slora_model_config_t    *cfg;
    const slora_layer_weights_t   *L;
    int32_t                        l;

    if (m == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cpu backend: no model");
    }

    if (c->model != NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: cpu backend: a model "
                             "is loaded already (%s)", m->path,
                             c->model->path);
    }

    cfg = &m->cfg;

    if (cfg->n_layers <= 0 || cfg->hidden <= 0 || cfg->n_heads <= 0
        || cfg->n_kv_heads <= 0 || cfg->n_heads % cfg->n_kv_heads != 0
        || cfg->head_dim <= 0 || cfg->head_dim % 2 != 0 || cfg->ffn <= 0
        || cfg->vocab <= 0 || cfg->rope_theta <= 0.0f)
    {
        return slora_err_set(err, SLORA_ERROR,
                             "%s: cpu backend: bad configuration (layers %d, "
                             "hidden %d, heads %d/%d, head_dim %d, ffn %d, "
                             "vocab %d)", m->path, cfg->n_layers, cfg->hidden,
                             cfg->n_heads, cfg->n_kv_heads, cfg->head_dim,
                             cfg->ffn, cfg->vocab);
    }

    if (m->random_deferred) {
        return slora_err_set(err, SLORA_ERROR, "%s: cpu backend: the random "
                             "model's weights were left for a device to "
                             "make", m->path);
    }

    if (m->w.tok_embd == NULL || m->w.out_norm == NULL
        || m->w.output == NULL || m->w.layers == NULL)
    {
        return slora_err_set(err, SLORA_ERROR,
                             "%s: cpu backend: missing global weights",
                             m->path);
    }

    for (l = 0; l < cfg->n_layers; l++) {
        L = &m->w.layers[l];

        if (L->attn_norm == NULL || L->wq == NULL || L->wk == NULL
            || L->wv == NULL || L->wo == NULL || L->ffn_norm == NULL
            || L->w_gate == NULL || L->w_up == NULL || L->w_down == NULL)
        {
            return slora_err_set(err, SLORA_ERROR,
                                 "%s: cpu backend: layer %d: missing weights",
                                 m->path, l);
        }
    }

    c->model = m;
    c->cfg = *cfg;
    c->q_dim = cfg->n_heads * cfg->head_dim;
    c->kv_dim = cfg->n_kv_heads * cfg->head_dim;
    c->max_in = cfg->hidden > cfg->ffn ? cfg->hidden : cfg->ffn;
    c->max_in = c->q_dim > c->max_in ? c->q_dim : c->max_in;

    if (c->mode != SLORA_CPU_F32) {
        return slora_cpu_quantize_weights(c, err);
    }

    return SLORA_OK;
}


static int
slora_cpu_alloc_arena(slora_backend_t *b, size_t bytes, int64_t page_elems,
    slora_err_t *err)
{
    slora_cpu_t  *c = b->data;
    void         *p;

    (void) page_elems;

    if (bytes < sizeof(float) || bytes % sizeof(float) != 0) {
        return slora_err_set(err, SLORA_ERROR,
                             "cpu backend: arena of %zu bytes", bytes);
    }

    if (posix_memalign(&p, 64, bytes) != 0) {
        return slora_err_set(err, SLORA_ERROR,
                             "cpu backend: cannot allocate an arena of "
                             "%zu bytes", bytes);
    }

    memset(p, 0, bytes);

    free(c->arena);
    c->arena = p;
    c->arena_elems = (int64_t) (bytes / sizeof(float));

    return SLORA_OK;
}


static int
slora_cpu_write_arena(slora_backend_t *b, int64_t off, const float *src,
    int64_t n, slora_err_t *err)
{
    slora_cpu_t  *c = b->data;

    if (c->arena == NULL || off < 0 || n < 0 || off > c->arena_elems
        || n > c->arena_elems - off || (n > 0 && src == NULL))
    {
        return slora_err_set(err, SLORA_ERROR,
                             "cpu backend: write of %lld elements at %lld "
                             "outside the arena of %lld", (long long) n,
                             (long long) off, (long long) c->arena_elems);
    }

    if (n > 0) {
        memcpy(c->arena + off, src, (size_t) n * sizeof(float));
    }

    return SLORA_OK;
}


static int
slora_cpu_read_arena(slora_backend_t *b, int64_t off, float *dst, int64_t n,
    slora_err_t *err)
{
    slora_cpu_t  *c = b->data;

    if (c->arena == NULL || off < 0 || n < 0 || off > c->arena_elems
        || n > c->arena_elems - off || (n > 0 && dst == NULL))
    {
        return slora_err_set(err, SLORA_ERROR,
                             "cpu backend: read of %lld elements at %lld "
                             "outside the arena of %lld", (long long) n,
                             (long long) off, (long long) c->arena_elems);
    }

    if (n > 0) {
        memcpy(dst, c->arena + off, (size_t) n * sizeof(float));
    }

    return SLORA_OK;
}


static int
slora_cpu_forward(slora_backend_t *b, const slora_batch_t *batch,
    const int64_t *pool_layer_off, int64_t page_elems,
    int32_t tokens_per_page, slora_err_t *err)
{
    slora_cpu_t             *c = b->data;
    const slora_model_t     *m = c->model;
    slora_cpu_step_t         st;
    int32_t                  l, n;

    if (m == NULL || c->arena == NULL) {
        return slora_err_set(err, SLORA_ERROR,
                             "cpu backend: forward before load_model and "
                             "alloc_arena");
    }

    if (batch == NULL || pool_layer_off == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cpu backend: no batch");
    }

    b->attention_ns = 0;

    memset(&st, 0, sizeof(st));
    st.batch = batch;
    st.layer_off = pool_layer_off;

    if (slora_batch_check(batch, &c->cfg, 1, pool_layer_off,
                          c->arena_elems, page_elems, tokens_per_page,
                          "cpu backend", &st.info, err)
        != SLORA_OK
        || slora_cpu_reserve(c, &st, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    st.kv.page_elems = page_elems;
    st.kv.tokens_per_page = tokens_per_page;
    st.kv.n_kv_heads = c->cfg.n_kv_heads;
    st.kv.head_dim = c->cfg.head_dim;

    slora_cpu_index(c, &st);

    n = batch->n_tokens;

    if (n == 0) {
        return SLORA_OK;
    }

    if (slora_embed(c->x.p, c->cfg.hidden, m->w.tok_embd, c->cfg.vocab,
                    c->cfg.hidden, batch->tokens, n)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR,
                             "cpu backend: batch: token id outside the "
                             "vocabulary of %d", c->cfg.vocab);
    }

    if (slora_cpu_norm(c, c->h.p, c->x.p, NULL, m->w.layers[0].attn_norm,
                       n)
        != SLORA_OK)
    {
        return slora_err_set(err, SLORA_ERROR, "cpu backend: rmsnorm failed");
    }

    for (l = 0; l < c->cfg.n_layers; l++) {
        if (slora_cpu_layer(c, &st, l, err) != SLORA_OK) {
            return slora_err_prefix(err, "cpu backend: layer %d", l);
        }
    }

    b->attention_ns = st.attention_ns;

    if (slora_cpu_logits(c, &st) != SLORA_OK) {
        return slora_err_set(err, SLORA_ERROR, "cpu backend: logits failed");
    }

    if (batch->ids != NULL) {
        return slora_cpu_picks(c, batch, err);
    }

    return SLORA_OK;
}


/* What a share of a step's picks works on. */
typedef struct {
    slora_cpu_t           *c;
    const slora_batch_t   *batch;
    size_t                 scratch;     /* bytes of draw_work a share */
} slora_cpu_picks_t;


/*
 * The id of every logits row: its argmax, or its draw where draws says
 * so (slora_sample_row). Rows are independent, so with more than one the
 * pool's threads take them side by side, share ith the rows ith, ith +
 * nth, ..., each with a scratch of its own in draw_work.
 */
static int
slora_cpu_picks(slora_cpu_t *c, const slora_batch_t *batch, slora_err_t *err)
{
    int                nth;
    slora_cpu_picks_t  pk;

    nth = batch->n_logits > 1 ? c->n_threads : 1;

    pk.c = c;
    pk.batch = batch;
    pk.scratch = batch->draws != NULL
                 ? slora_sample_scratch_size(c->cfg.vocab) : 0;

    if (pk.scratch > 0
        && slora_cpu_grow(&c->draw_work, pk.scratch * (size_t) nth, err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (nth == 1) {
        slora_cpu_pick_share(&pk, 0, 1);

    } else {
        slora_threads_run(c->pool, slora_cpu_pick_share, &pk);
    }

    return SLORA_OK;
}


static void
slora_cpu_pick_share(void *ctx, int ith, int nth)
{
    slora_cpu_picks_t    *pk = ctx;
    const slora_batch_t  *bt = pk->batch;
    int32_t               r, vocab;
    const float          *row;

    vocab = pk->c->cfg.vocab;

    for (r = ith; r < bt->n_logits; r += nth) {
        row = bt->logits + (size_t) r * vocab;

        if (bt->draws != NULL && bt->draws[r].inv_temp > 0.0f) {
            bt->ids[r] = slora_sample_row(row, vocab, &bt->draws[r],
                                          (char *) pk->c->draw_work.p
                                          + pk->scratch * (size_t) ith);

        } else {
            slora_argmax_rows(&bt->ids[r], row, vocab, 1, vocab);
        }
    }
}


/*
 * One transformer block over all rows of the step. On entry h holds
 * rmsnorm(x) with this layer's attn_norm; on exit x has both residuals
 * added and h holds rmsnorm(x) with the next layer's attn_norm (or the
 * output norm after the last layer).
 */

static int
slora_cpu_layer(slora_cpu_t *c, slora_cpu_step_t *st, int32_t l,
    slora_err_t *err)
{
    const slora_model_config_t    *cfg = &c->cfg;
    const slora_layer_weights_t   *L = &c->model->w.layers[l];
    const slora_cpu_qlayer_t      *Q;
    slora_cpu_qlayer_t             none;
    const float                   *next_norm;
    float                         *x, *h, *q, *k, *v, *att, *o, *g, *u;
    int32_t                        n, hidden;
    int64_t                        t0;
    slora_cpu_linear_op_t          lin;
    slora_cpu_attn_op_t            at;
    slora_cpu_act_op_t             act;

    n = st->batch->n_tokens;
    hidden = cfg->hidden;
    memset(&none, 0, sizeof(none));
    Q = c->ql != NULL ? &c->ql[l] : &none;
    x = c->x.p;
    h = c->h.p;
    q = c->q.p;
    k = c->k.p;
    v = c->v.p;
    att = c->att.p;
    o = c->o.p;
    g = c->g.p;
    u = c->u.p;

    /* attention */

    memset(&lin, 0, sizeof(lin));
    lin.n = n;
    lin.n_gemm = 3;
    lin.g[0] = (slora_cpu_gemm_t) { q, h, L->wq, L->bq, c->q_dim, hidden,
                                    Q->q8[SLORA_PROJ_Q],
                                    Q->q41[SLORA_PROJ_Q] };
    lin.g[1] = (slora_cpu_gemm_t) { k, h, L->wk, L->bk, c->kv_dim, hidden,
                                    Q->q8[SLORA_PROJ_K],
                                    Q->q41[SLORA_PROJ_K] };
    lin.g[2] = (slora_cpu_gemm_t) { v, h, L->wv, L->bv, c->kv_dim, hidden,
                                    Q->q8[SLORA_PROJ_V],
                                    Q->q41[SLORA_PROJ_V] };

    if (slora_cpu_linear(c, &lin) != SLORA_OK) {
        return slora_err_set(err, SLORA_ERROR, "q, k, v projections failed");
    }

    if (slora_cpu_lora(c, st, l, SLORA_PROJ_Q, q, h, err) != SLORA_OK
        || slora_cpu_lora(c, st, l, SLORA_PROJ_K, k, h, err) != SLORA_OK
        || slora_cpu_lora(c, st, l, SLORA_PROJ_V, v, h, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    st->kv.kv = c->arena + st->layer_off[l];

    memset(&at, 0, sizeof(at));
    at.c = c;
    at.st = st;
    at.q = q;
    at.k = k;
    at.att = att;
    at.q_norm = L->q_norm;
    at.k_norm = L->k_norm;
    at.nth = c->n_threads;

    slora_cpu_par(c, n >= 4 ? SLORA_CPU_PAR_MIN : 0, slora_cpu_rope_share,
                  &at);

    if (atomic_load(&at.failed)) {
        return slora_err_set(err, SLORA_ERROR, "rope failed");
    }

    if (slora_kv_store(&st->kv, &st->ix, k, c->kv_dim, v, c->kv_dim) != 0) {
        return slora_err_set(err, SLORA_ERROR, "paged kv store failed");
    }

    t0 = slora_now_ns();
    slora_threads_run_n(c->pool, at.nth, slora_cpu_attn_share, &at);
    st->attention_ns += slora_now_ns() - t0;

    if (atomic_load(&at.failed)) {
        return slora_err_set(err, SLORA_ERROR, "paged attention failed");
    }

    lin.n_gemm = 1;
    lin.g[0] = (slora_cpu_gemm_t) { o, att, L->wo, NULL, hidden, c->q_dim,
                                    Q->q8[SLORA_PROJ_O],
                                    Q->q41[SLORA_PROJ_O] };

    if (slora_cpu_linear(c, &lin) != SLORA_OK) {
        return slora_err_set(err, SLORA_ERROR, "o projection failed");
    }

    if (slora_cpu_lora(c, st, l, SLORA_PROJ_O, o, att, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (slora_cpu_norm(c, h, x, o, L->ffn_norm, n) != SLORA_OK) {
        return slora_err_set(err, SLORA_ERROR, "rmsnorm failed");
    }

    /* MLP */

    lin.n_gemm = 2;
    lin.g[0] = (slora_cpu_gemm_t) { g, h, L->w_gate, NULL, cfg->ffn, hidden,
                                    Q->q8[SLORA_PROJ_GATE],
                                    Q->q41[SLORA_PROJ_GATE] };
    lin.g[1] = (slora_cpu_gemm_t) { u, h, L->w_up, NULL, cfg->ffn, hidden,
                                    Q->q8[SLORA_PROJ_UP],
                                    Q->q41[SLORA_PROJ_UP] };

    if (slora_cpu_linear(c, &lin) != SLORA_OK) {
        return slora_err_set(err, SLORA_ERROR, "gate, up projections failed");
    }

    if (slora_cpu_lora(c, st, l, SLORA_PROJ_GATE, g, h, err) != SLORA_OK
        || slora_cpu_lora(c, st, l, SLORA_PROJ_UP, u, h, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    memset(&act, 0, sizeof(act));
    act.g = g;
    act.u = u;
    act.n = n;
    act.dim = cfg->ffn;
    slora_cpu_par(c, (int64_t) n * cfg->ffn, slora_cpu_act_share, &act);

    if (atomic_load(&act.failed)) {
        return slora_err_set(err, SLORA_ERROR, "silu_mul failed");
    }

    lin.n_gemm = 1;
    lin.g[0] = (slora_cpu_gemm_t) { o, g, L->w_down, NULL, hidden, cfg->ffn,
                                    Q->q8[SLORA_PROJ_DOWN],
                                    Q->q41[SLORA_PROJ_DOWN] };

    if (slora_cpu_linear(c, &lin) != SLORA_OK) {
        return slora_err_set(err, SLORA_ERROR, "down projection failed");
    }

    if (slora_cpu_lora(c, st, l, SLORA_PROJ_DOWN, o, g, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    next_norm = l + 1 < cfg->n_layers ? c->model->w.layers[l + 1].attn_norm
                                      : c->model->w.out_norm;

    if (slora_cpu_norm(c, h, x, o, next_norm, n) != SLORA_OK) {
        return slora_err_set(err, SLORA_ERROR, "rmsnorm failed");
    }

    return SLORA_OK;
}


/*
 * h holds the output-normed rows; the last n_rows rows of every
 * sequence that asked for logits (its last token's, or a prompt's every
 * token's) are gathered, multiplied by the output matrix, and their
 * logits land in their batch rows. When the rows asked for are 0, 1, ... in
 * sequence order (the usual case) the GEMM writes the batch's logits
 * directly.
 */

static int
slora_cpu_logits(slora_cpu_t *c, slora_cpu_step_t *st)
{
    const slora_batch_t  *bt = st->batch;
    int32_t              *lrow = c->lrow.p;
    float                *lx = c->lx.p;
    float                *lout;
    const float          *h = c->h.p;
    int32_t               s, i, j, m, first, hidden, vocab;
    slora_cpu_linear_op_t  lin;

    hidden = c->cfg.hidden;
    vocab = c->cfg.vocab;
    m = 0;

    for (s = 0; s < bt->n_seqs; s++) {
        if (bt->seqs[s].logits_row < 0) {
            continue;
        }

        first = st->ix.qo_indptr[s + 1] - bt->seqs[s].n_rows;

        for (j = 0; j < bt->seqs[s].n_rows; j++) {
            memcpy(lx + (int64_t) m * hidden,
                   h + (int64_t) (first + j) * hidden,
                   (size_t) hidden * sizeof(float));
            lrow[m] = bt->seqs[s].logits_row + j;
            m++;
        }
    }

    if (m == 0) {
        return SLORA_OK;
    }

    lout = st->info.direct ? bt->logits : c->lout.p;

    memset(&lin, 0, sizeof(lin));
    lin.n = m;
    lin.n_gemm = 1;
    lin.g[0] = (slora_cpu_gemm_t) { lout, lx, c->model->w.output, NULL, vocab,
                                    hidden, c->q_output, c->q41_output };

    if (slora_cpu_linear(c, &lin) != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (!st->info.direct) {
        for (i = 0; i < m; i++) {
            memcpy(bt->logits + (int64_t) lrow[i] * vocab,
                   lout + (int64_t) i * vocab, (size_t) vocab * sizeof(float));
        }
    }

    return SLORA_OK;
}


static int
slora_cpu_reserve(slora_cpu_t *c, const slora_cpu_step_t *st,
    slora_err_t *err)
{
    const slora_batch_t  *bt = st->batch;
    size_t                n, ns, f, np, m;
    int32_t               s;

    n = (size_t) (bt->n_tokens > 0 ? bt->n_tokens : 1);
    ns = (size_t) bt->n_seqs + 1;
    m = (size_t) (st->info.n_logits > 0 ? st->info.n_logits : 1);
    f = sizeof(float);

    np = 1;
    for (s = 0; s < bt->n_seqs; s++) {
        np += (size_t) bt->seqs[s].n_pages;
    }

    if (slora_cpu_grow(&c->x, n * c->cfg.hidden * f, err) != SLORA_OK
        || slora_cpu_grow(&c->h, n * c->cfg.hidden * f, err) != SLORA_OK
        || slora_cpu_grow(&c->q, n * c->q_dim * f, err) != SLORA_OK
        || slora_cpu_grow(&c->k, n * c->kv_dim * f, err) != SLORA_OK
        || slora_cpu_grow(&c->v, n * c->kv_dim * f, err) != SLORA_OK
        || slora_cpu_grow(&c->att, n * c->q_dim * f, err) != SLORA_OK
        || slora_cpu_grow(&c->o, n * c->cfg.hidden * f, err) != SLORA_OK
        || slora_cpu_grow(&c->g, n * c->cfg.ffn * f, err) != SLORA_OK
        || slora_cpu_grow(&c->u, n * c->cfg.ffn * f, err) != SLORA_OK
        || slora_cpu_grow(&c->pos, n * sizeof(int32_t), err) != SLORA_OK
        || slora_cpu_grow(&c->qo_indptr, ns * sizeof(int32_t), err)
           != SLORA_OK
        || slora_cpu_grow(&c->seq_pos, ns * sizeof(int32_t), err)
           != SLORA_OK
        || slora_cpu_grow(&c->kv_indptr, ns * sizeof(int32_t), err)
           != SLORA_OK
        || slora_cpu_grow(&c->kv_indices, np * sizeof(int32_t), err)
           != SLORA_OK
        || slora_cpu_grow(&c->seg_indptr, ns * sizeof(int32_t), err)
           != SLORA_OK
        || slora_cpu_grow(&c->seg_lora, ns * sizeof(int32_t), err)
           != SLORA_OK
        || slora_cpu_grow(&c->seg_rank, SLORA_PROJ_N * ns * sizeof(int32_t),
                          err)
           != SLORA_OK
        || slora_cpu_grow(&c->seg_scale, ns * f, err) != SLORA_OK
        || slora_cpu_grow(&c->seg_a, SLORA_PROJ_N * ns * sizeof(void *), err)
           != SLORA_OK
        || slora_cpu_grow(&c->seg_b, SLORA_PROJ_N * ns * sizeof(void *), err)
           != SLORA_OK
        || slora_cpu_grow(&c->attn_work,
                          slora_attention_workspace_size(st->info.max_ctx,
                                                         c->n_threads),
                          err)
           != SLORA_OK
        || slora_cpu_grow(&c->lora_work,
                          slora_lora_workspace_size((int64_t) n,
                                                    st->info.max_rank),
                          err)
           != SLORA_OK
        || (c->mode != SLORA_CPU_F32
            && slora_cpu_grow(&c->xq, slora_qmatmul_act_size((int64_t) n,
                                                             c->max_in),
                              err)
               != SLORA_OK)
        || (c->mode == SLORA_CPU_NATIVE
            && slora_cpu_grow(&c->xq41,
                              slora_q4_1_act_size((int64_t) n,
                                                  (c->max_in + 63) & ~63),
                              err)
               != SLORA_OK)
        || slora_cpu_grow(&c->lrow, m * sizeof(int32_t), err) != SLORA_OK
        || slora_cpu_grow(&c->lx, m * c->cfg.hidden * f, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    /* logits rows out of order or with gaps go through lout */
    if (st->info.n_logits > 0 && !st->info.direct
        && slora_cpu_grow(&c->lout, m * c->cfg.vocab * f, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    return SLORA_OK;
}


/*
 * The CSR indices attention and LoRA read (slora_batch_index), then per
 * projection the row arrays of each LoRA segment's adapter, host
 * pointers into the batch's slora_lora_t.
 */

static void
slora_cpu_index(slora_cpu_t *c, slora_cpu_step_t *st)
{
    const slora_batch_t      *bt = st->batch;
    const slora_lora_t       *lo;
    slora_batch_index_t       bx;
    const int64_t           **a, **b;
    int32_t                   g, p, ns, ng, i;

    ns = bt->n_seqs;
    a = c->seg_a.p;
    b = c->seg_b.p;

    bx.qo_indptr = c->qo_indptr.p;
    bx.seq_pos = c->seq_pos.p;
    bx.kv_indptr = c->kv_indptr.p;
    bx.kv_indices = c->kv_indices.p;
    bx.pos = c->pos.p;
    bx.seg_indptr = c->seg_indptr.p;
    bx.seg_lora = c->seg_lora.p;
    bx.rank = c->seg_rank.p;
    bx.scale = c->seg_scale.p;

    slora_batch_index(bt, st->kv.tokens_per_page, 0, &bx);

    ng = bx.n_segs;

    for (g = 0; g < ng; g++) {
        lo = bx.seg_lora[g] >= 0 ? &bt->loras[bx.seg_lora[g]] : NULL;

        for (p = 0; p < SLORA_PROJ_N; p++) {
            i = p * ng + g;
            a[i] = bx.rank[i] > 0 ? lo->a_rows[p] : NULL;
            b[i] = bx.rank[i] > 0 ? lo->b_rows[p] : NULL;
        }
    }

    st->ix.n_seqs = ns;
    st->ix.qo_indptr = bx.qo_indptr;
    st->ix.seq_pos = bx.seq_pos;
    st->ix.kv_indptr = bx.kv_indptr;
    st->ix.kv_indices = bx.kv_indices;
    st->ix.dec_items = NULL;                    /* the GPU's decode kernel's */
    st->ix.dec_first = NULL;

    for (p = 0; p < SLORA_PROJ_N; p++) {
        st->segs[p].n_segs = ng;
        st->segs[p].seg_indptr = bx.seg_indptr;
        st->segs[p].n_tiles = 0;                /* CUDA's only */
        st->segs[p].n_long = 0;
        st->segs[p].tile_indptr = NULL;
        st->segs[p].rank = bx.rank + p * ng;
        st->segs[p].scale = bx.scale;
        st->segs[p].a_rows = (const int64_t *const *) (a + p * ng);
        st->segs[p].b_rows = (const int64_t *const *) (b + p * ng);
    }
}

static int
slora_cpu_grow(slora_cpu_buf_t *buf, size_t need, slora_err_t *err)
{
    void    *p;
    size_t   cap;

    if (need <= buf->cap) {
        return SLORA_OK;
    }

    cap = buf->cap * 2 > need ? buf->cap * 2 : need;
    cap = (cap + 63) & ~(size_t) 63;

    if (posix_memalign(&p, 64, cap) != 0) {
        return slora_err_set(err, SLORA_ERROR, "cpu backend: cannot allocate "
                             "%zu bytes of scratch", cap);
    }

    free(buf->p);
    buf->p = p;
    buf->cap = cap;

    return SLORA_OK;
}


static void
slora_cpu_buf_free(slora_cpu_buf_t *buf)
{
    free(buf->p);
    buf->p = NULL;
    buf->cap = 0;
}


static void
slora_cpu_free(slora_backend_t *b)
{
    slora_cpu_t  *c;
    int32_t       l, p;

    if (b == NULL) {
        return;
    }

    c = b->data;

    if (c != NULL) {
        slora_threads_free(c->pool);
        free(c->arena);

        slora_cpu_buf_free(&c->x);
        slora_cpu_buf_free(&c->h);
        slora_cpu_buf_free(&c->q);
        slora_cpu_buf_free(&c->k);
        slora_cpu_buf_free(&c->v);
        slora_cpu_buf_free(&c->att);
        slora_cpu_buf_free(&c->o);
        slora_cpu_buf_free(&c->g);
        slora_cpu_buf_free(&c->u);
        slora_cpu_buf_free(&c->pos);
        slora_cpu_buf_free(&c->qo_indptr);
        slora_cpu_buf_free(&c->seq_pos);
        slora_cpu_buf_free(&c->kv_indptr);
        slora_cpu_buf_free(&c->kv_indices);
        slora_cpu_buf_free(&c->seg_indptr);
        slora_cpu_buf_free(&c->seg_lora);
        slora_cpu_buf_free(&c->seg_rank);
        slora_cpu_buf_free(&c->seg_scale);
        slora_cpu_buf_free(&c->seg_a);
        slora_cpu_buf_free(&c->seg_b);
        slora_cpu_buf_free(&c->attn_work);
        slora_cpu_buf_free(&c->lora_work);
        slora_cpu_buf_free(&c->lrow);
        slora_cpu_buf_free(&c->lx);
        slora_cpu_buf_free(&c->lout);
        slora_cpu_buf_free(&c->xq);
        slora_cpu_buf_free(&c->xq41);
        slora_cpu_buf_free(&c->draw_work);

        if (c->ql != NULL) {
            for (l = 0; l < c->cfg.n_layers; l++) {
                for (p = 0; p < SLORA_PROJ_N; p++) {
                    free(c->ql[l].q8[p]);
                    free(c->ql[l].q41[p]);
                }
            }

            free(c->ql);
        }

        free(c->q_output);
        free(c->q41_output);

        free(c);
    }

    free(b);
}
