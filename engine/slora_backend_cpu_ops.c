/*
 * slora_backend_cpu_ops.c: the CPU backend's ops, the work the layer
 * loop of slora_backend_cpu.c hands to the pool: the projections, norms,
 * activation, RoPE, attention and LoRA of a step, and at load time the
 * packing of the weights into Q8_0 or the file's Q4_1.
 *
 * The one idea: one pool of threads for the whole step, the engine's own
 * (slora_threads.h), whose idle workers sleep instead of spinning, so
 * other processes on the cores (nginx workers, clients) do not slow a
 * step down tenfold as OpenMP's spinning team did. Every parallel op is a
 * small closure run over the pool's shares; ops too small to pay for a
 * dispatch (one decode row's norm, RoPE, SiLU) run on the calling thread.
 * GEMMs split their output columns over the shares and call OpenBLAS
 * single-threaded on each slice (OpenBLAS's own workers, spinning beside
 * ours on the same cores, made 2-thread decode twice as slow as 1
 * thread); the q, k, v projections go in one dispatch, and gate and up in
 * another. With weights "q8_0" the projection and output matrices are
 * quantized to Q8_0 at load and the GEMMs become slora_qmatmul over
 * activations quantized once per input (34 bytes read per 32 weights
 * instead of 128, and single-stream decode waits on memory); a pass
 * shares each weight row among up to eight tokens, but a (row, token)
 * gets the same arithmetic whatever the batch, so a request's tokens
 * never depend on what else is in the batch. "f32" keeps the exact
 * OpenBLAS path. "native" keeps the file's own Q4_1 blocks where it has
 * them (slora_q4_1_matmul: 20 bytes per 32 weights, against activations
 * quantized the same way as for Q8_0) and takes Q8_0 for every other
 * matrix, with the same guarantee.
 */

#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <cblas.h>

#include "slora_backend_cpu_int.h"
#include "slora_gguf.h"

#include "slora_norm.h"
#include "slora_rope.h"
#include "slora_act.h"


/* Closures private to the ops; the shared ones are in
 * slora_backend_cpu_int.h. */


/* A load-time job: matrices to quantize; a share takes its slice of
 * every matrix's rows. */
typedef struct {
    const float                  *src[SLORA_PROJ_N + 1];
    slora_block_q8_0_t           *dst[SLORA_PROJ_N + 1];
    int64_t                       rows[SLORA_PROJ_N + 1];
    int32_t                       cols[SLORA_PROJ_N + 1];
    int                           n;
} slora_cpu_quant_op_t;


typedef struct {
    float                        *out;
    float                        *x;
    const float                  *res;          /* NULL: plain rmsnorm */
    const float                  *w;
    int32_t                       n;
    int32_t                       dim;
    float                         eps;
    _Atomic int                   failed;
} slora_cpu_norm_op_t;


typedef struct {
    float                        *y;
    const float                  *x;
    const float                  *base;
    float                        *v;
    const slora_lora_segs_t      *sg;
    int32_t                       in;
    int32_t                       out;
    int32_t                       ld_v;
    int                           expand;
    _Atomic int                   failed;
} slora_cpu_lora_op_t;


static void slora_cpu_quant_share(void *ctx, int ith, int nth);
static slora_block_q8_0_t *slora_cpu_qalloc(const float *w, int64_t rows,
    int32_t cols, slora_cpu_quant_op_t *op, int *failed);
static void *slora_cpu_native(slora_cpu_t *c, const char *name,
    const float *w, int64_t rows, int32_t cols, int *failed);
static void slora_cpu_xq_share(void *ctx, int ith, int nth);
static void slora_cpu_linear_share(void *ctx, int ith, int nth);
static void slora_cpu_norm_share(void *ctx, int ith, int nth);
static void slora_cpu_lora_share(void *ctx, int ith, int nth);


/*
 * Quantized copies of every projection and of the output matrix, Q8_0
 * quantized over the pool one layer at a time; with weights "native" a
 * matrix the file holds as Q4_1 is packed from the file's blocks
 * instead. A matrix whose rows are not a multiple of 32 wide stays f32.
 */

int
slora_cpu_quantize_weights(slora_cpu_t *c, slora_err_t *err)
{
    static const char            *names[SLORA_PROJ_N] = {
        "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
        "ffn_down"
    };
    const slora_model_config_t   *cfg = &c->cfg;
    const slora_layer_weights_t  *L;
    const float                  *w[SLORA_PROJ_N];
    slora_cpu_qlayer_t           *q;
    slora_cpu_quant_op_t          op;
    char                          name[64];
    int32_t                       l, p, out, in;
    int                           failed;

    c->ql = calloc((size_t) cfg->n_layers, sizeof(slora_cpu_qlayer_t));
    if (c->ql == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: cpu backend: out of "
                             "memory", c->model->path);
    }

    failed = 0;

    for (l = 0; l < cfg->n_layers && !failed; l++) {
        L = &c->model->w.layers[l];
        q = &c->ql[l];
        memset(&op, 0, sizeof(op));

        w[SLORA_PROJ_Q] = L->wq;
        w[SLORA_PROJ_K] = L->wk;
        w[SLORA_PROJ_V] = L->wv;
        w[SLORA_PROJ_O] = L->wo;
        w[SLORA_PROJ_GATE] = L->w_gate;
        w[SLORA_PROJ_UP] = L->w_up;
        w[SLORA_PROJ_DOWN] = L->w_down;

        for (p = 0; p < SLORA_PROJ_N && !failed; p++) {
            out = slora_proj_out_dim(cfg, p);
            in = slora_proj_in_dim(cfg, p);

            if (c->mode == SLORA_CPU_NATIVE) {
                snprintf(name, sizeof(name), "blk.%d.%s.weight", (int) l,
                         names[p]);
                q->q41[p] = slora_cpu_native(c, name, w[p], out, in,
                                             &failed);
            }

            if (q->q41[p] == NULL) {
                q->q8[p] = slora_cpu_qalloc(w[p], out, in, &op, &failed);
            }
        }

        if (l == cfg->n_layers - 1 && !failed) {
            if (c->mode == SLORA_CPU_NATIVE) {
                c->q41_output = slora_cpu_native(c, cfg->tied_embeddings
                                                    ? "token_embd.weight"
                                                    : "output.weight",
                                                 c->model->w.output,
                                                 cfg->vocab, cfg->hidden,
                                                 &failed);
            }

            if (c->q41_output == NULL) {
                c->q_output = slora_cpu_qalloc(c->model->w.output,
                                               cfg->vocab, cfg->hidden, &op,
                                               &failed);
            }
        }

        if (!failed) {
            slora_threads_run(c->pool, slora_cpu_quant_share, &op);
        }
    }

    if (failed) {
        return slora_err_set(err, SLORA_ERROR, "%s: cpu backend: out of "
                             "memory for quantized weights", c->model->path);
    }

    return SLORA_OK;
}


/*
 * The packed Q4_1 copy of the file's tensor name, when the file holds it
 * as Q4_1 [rows, cols] with cols a multiple of 64 and its first and last
 * rows are, value for value, the model's f32 rows w (so the loader did
 * not reorder them); NULL otherwise, and the caller takes Q8_0.
 */

static void *
slora_cpu_native(slora_cpu_t *c, const char *name, const float *w,
    int64_t rows, int32_t cols, int *failed)
{
    const slora_tensor_t       *t;
    const slora_block_q4_1_t   *blk;
    float                      *row;
    void                       *p;
    size_t                      size;
    int64_t                     nb, r;
    int                         same;

    t = c->model->gguf != NULL ? slora_gguf_find_tensor(c->model->gguf, name)
                               : NULL;
    size = slora_q4_1_pack_size(rows, cols);

    if (t == NULL || t->dtype != SLORA_DT_Q4_1 || t->n_dims != 2
        || t->dims[0] != rows || t->dims[1] != cols || size == 0
        || t->n_bytes != size || (uintptr_t) t->data % 2 != 0 || *failed)
    {
        return NULL;
    }

    blk = t->data;
    nb = cols / SLORA_QK4_1;
    row = malloc((size_t) cols * sizeof(float));

    if (row == NULL) {
        *failed = 1;
        return NULL;
    }

    same = 1;

    for (r = 0; r < rows && same; r += rows - 1 > 0 ? rows - 1 : 1) {
        slora_dequantize_q4_1(row, blk + r * nb, cols);
        same = memcmp(row, w + r * cols, (size_t) cols * sizeof(float)) == 0;
    }

    free(row);

    if (!same) {
        return NULL;
    }

    if (posix_memalign(&p, 64, size) != 0) {
        *failed = 1;
        return NULL;
    }

    if (slora_q4_1_pack(p, size, blk, rows, cols) != 0) {
        free(p);
        return NULL;
    }

    return p;
}


/* Allocates the Q8_0 copy of w [rows, cols] and adds it to op; NULL
 * (and w stays f32) when cols is not a multiple of 32. */

static slora_block_q8_0_t *
slora_cpu_qalloc(const float *w, int64_t rows, int32_t cols,
    slora_cpu_quant_op_t *op, int *failed)
{
    slora_block_q8_0_t  *q;
    void                *p;

    if (cols % SLORA_QK8_0 != 0 || *failed) {
        return NULL;
    }

    if (posix_memalign(&p, 64, (size_t) rows * (cols / SLORA_QK8_0)
                                * sizeof(slora_block_q8_0_t))
        != 0)
    {
        *failed = 1;
        return NULL;
    }

    q = p;
    op->src[op->n] = w;
    op->dst[op->n] = q;
    op->rows[op->n] = rows;
    op->cols[op->n] = cols;
    op->n++;

    return q;
}


static void
slora_cpu_quant_share(void *ctx, int ith, int nth)
{
    slora_cpu_quant_op_t  *op = ctx;
    int64_t                r0, r1, nb;
    int                    i;

    for (i = 0; i < op->n; i++) {
        r0 = op->rows[i] * ith / nth;
        r1 = op->rows[i] * (ith + 1) / nth;
        nb = op->cols[i] / SLORA_QK8_0;

        slora_quantize_q8_0(op->dst[i] + r0 * nb,
                            op->src[i] + r0 * op->cols[i],
                            (r1 - r0) * op->cols[i]);
    }
}


/*
 * y[n, out] = x[n, in] . w[out, in]^T (+ bias[out]) for every GEMM of
 * op, in one dispatch. Each share takes the same slice of the output
 * columns of every GEMM and runs a single-threaded OpenBLAS GEMM on it:
 * one pool of threads for the whole step, so OpenBLAS's workers and
 * ours never spin against each other. GEMMs with quantized weights first
 * get x quantized into c->xq (Q8_0) or c->xq41 (Q4_1), as the reserve
 * sized them, once for the op.
 */

int
slora_cpu_linear(slora_cpu_t *c, slora_cpu_linear_op_t *op)
{
    int  k, q8, q41;

    q8 = 0;
    q41 = 0;

    for (k = 0; k < op->n_gemm; k++) {
        slora_assert(op->g[k].x == op->g[0].x && op->g[k].in == op->g[0].in);
        q8 |= op->g[k].wq != NULL && op->g[k].w41 == NULL;
        q41 |= op->g[k].w41 != NULL;
    }

    atomic_store(&op->failed, 0);
    op->xq = q8 ? c->xq.p : NULL;
    op->xq_size = c->xq.cap;
    op->xq41 = q41 ? c->xq41.p : NULL;
    op->xq41_size = c->xq41.cap;

    if (q8 || q41) {
        slora_cpu_par(c, (int64_t) op->n * op->g[0].in * (q8 + q41),
                      slora_cpu_xq_share, op);
    }

    if (!atomic_load(&op->failed)) {
        slora_threads_run(c->pool, slora_cpu_linear_share, op);
    }

    return atomic_load(&op->failed) ? SLORA_ERROR : SLORA_OK;
}


static void
slora_cpu_xq_share(void *ctx, int ith, int nth)
{
    slora_cpu_linear_op_t  *op = ctx;

    if ((op->xq != NULL
         && slora_qmatmul_quantize(op->xq, op->xq_size, op->g[0].x,
                                   op->g[0].in, op->n, op->g[0].in, ith, nth)
            != 0)
        || (op->xq41 != NULL
            && slora_q4_1_quantize_act(op->xq41, op->xq41_size, op->g[0].x,
                                       op->g[0].in, op->n, op->g[0].in, ith,
                                       nth)
               != 0))
    {
        atomic_store(&op->failed, 1);
    }
}


static void
slora_cpu_linear_share(void *ctx, int ith, int nth)
{
    slora_cpu_linear_op_t   *op = ctx;
    const slora_cpu_gemm_t  *gm;
    int32_t                  per, c0, nc, t, i, k;
    float                   *yt;

    for (k = 0; k < op->n_gemm; k++) {
        gm = &op->g[k];

        if (gm->w41 != NULL) {
            if (slora_q4_1_matmul(gm->y, gm->out, op->xq41, op->xq41_size,
                                  gm->w41, gm->bias, op->n, gm->out, gm->in,
                                  ith, nth)
                != 0)
            {
                atomic_store(&op->failed, 1);
            }

            continue;
        }

        if (gm->wq != NULL) {
            if (slora_qmatmul(gm->y, gm->out, op->xq, op->xq_size, gm->wq,
                              gm->bias, op->n, gm->out, gm->in, ith, nth)
                != 0)
            {
                atomic_store(&op->failed, 1);
            }

            continue;
        }

        per = ((gm->out + nth - 1) / nth + 15) & ~15;
        c0 = ith * per;
        nc = gm->out - c0 < per ? gm->out - c0 : per;

        if (nc <= 0) {
            continue;
        }

        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, op->n, nc,
                    gm->in, 1.0f, gm->x, gm->in, gm->w + (int64_t) c0 * gm->in,
                    gm->in, 0.0f, gm->y + c0, gm->out);

        if (gm->bias != NULL) {
            for (t = 0; t < op->n; t++) {
                yt = gm->y + (int64_t) t * gm->out + c0;

                for (i = 0; i < nc; i++) {
                    yt[i] += gm->bias[c0 + i];
                }
            }
        }
    }
}


/* out = rmsnorm(x) * w, after x += res when res is not NULL. */

int
slora_cpu_norm(slora_cpu_t *c, float *out, float *x, const float *res,
    const float *w, int32_t n)
{
    slora_cpu_norm_op_t  op;

    memset(&op, 0, sizeof(op));
    op.out = out;
    op.x = x;
    op.res = res;
    op.w = w;
    op.n = n;
    op.dim = c->cfg.hidden;
    op.eps = c->cfg.norm_eps;

    slora_cpu_par(c, (int64_t) n * op.dim, slora_cpu_norm_share, &op);

    return atomic_load(&op.failed) ? SLORA_ERROR : SLORA_OK;
}


static void
slora_cpu_norm_share(void *ctx, int ith, int nth)
{
    slora_cpu_norm_op_t  *op = ctx;
    int                   rc;

    if (op->res == NULL) {
        rc = slora_rmsnorm(op->out, op->dim, op->x, op->dim, op->w, op->n,
                           op->dim, op->eps, ith, nth);

    } else {
        rc = slora_add_rmsnorm(op->out, op->dim, op->x, op->dim, op->res,
                               op->dim, op->w, op->n, op->dim, op->eps, ith,
                               nth);
    }

    if (rc != 0) {
        atomic_store(&op->failed, 1);
    }
}


void
slora_cpu_act_share(void *ctx, int ith, int nth)
{
    slora_cpu_act_op_t  *op = ctx;

    if (slora_silu_mul(op->g, op->dim, op->g, op->dim, op->u, op->dim, op->n,
                       op->dim, ith, nth)
        != 0)
    {
        atomic_store(&op->failed, 1);
    }
}


void
slora_cpu_rope_share(void *ctx, int ith, int nth)
{
    slora_cpu_attn_op_t         *op = ctx;
    const slora_model_config_t  *cfg = &op->c->cfg;
    int64_t                      n = op->st->batch->n_tokens;

    /* Qwen3: each head of q and k RMS-normed first */
    if (op->q_norm != NULL
        && (slora_head_rmsnorm(op->q, op->c->q_dim, n, cfg->n_heads,
                               cfg->head_dim, op->q_norm, cfg->norm_eps, ith,
                               nth)
            != 0
            || slora_head_rmsnorm(op->k, op->c->kv_dim, n, cfg->n_kv_heads,
                                  cfg->head_dim, op->k_norm, cfg->norm_eps,
                                  ith, nth)
               != 0))
    {
        atomic_store(&op->failed, 1);
        return;
    }

    if (slora_rope(op->q, op->c->q_dim, op->k, op->c->kv_dim, op->c->pos.p,
                   op->st->batch->n_tokens, cfg->n_heads, cfg->n_kv_heads,
                   cfg->head_dim, cfg->rope_theta,
                   op->c->model->w.rope_freqs,
                   cfg->rope == SLORA_ROPE_NEOX ? SLORA_ROPE_LAYOUT_NEOX
                                                : SLORA_ROPE_LAYOUT_NORM,
                   ith, nth)
        != 0)
    {
        atomic_store(&op->failed, 1);
    }
}


void
slora_cpu_attn_share(void *ctx, int ith, int nth)
{
    slora_cpu_attn_op_t  *op = ctx;
    slora_cpu_t          *c = op->c;

    if (slora_attention(op->att, c->q_dim, op->q, c->q_dim, c->cfg.n_heads,
                        &op->st->kv, &op->st->ix, c->attn_work.p,
                        c->attn_work.cap, ith, nth)
        != 0)
    {
        atomic_store(&op->failed, 1);
    }
}


/*
 * y += LoRA(x) for projection p of layer l over the batch's segments:
 * the shrink into the workspace, then the expand, each one dispatch;
 * nothing where no adapter of the batch targets p.
 */

int
slora_cpu_lora(slora_cpu_t *c, slora_cpu_step_t *st, int32_t l,
    slora_proj_e p, float *y, const float *x, slora_err_t *err)
{
    slora_cpu_lora_op_t  op;

    if (!(st->info.proj_mask & (1u << p))) {
        return SLORA_OK;
    }

    memset(&op, 0, sizeof(op));
    op.y = y;
    op.x = x;
    op.base = c->arena + st->layer_off[l];
    op.v = c->lora_work.p;
    op.sg = &st->segs[p];
    op.in = slora_proj_in_dim(&c->cfg, p);
    op.out = slora_proj_out_dim(&c->cfg, p);
    op.ld_v = st->info.max_rank;

    slora_threads_run(c->pool, slora_cpu_lora_share, &op);

    op.expand = 1;

    if (!atomic_load(&op.failed)) {
        slora_threads_run(c->pool, slora_cpu_lora_share, &op);
    }

    if (atomic_load(&op.failed)) {
        return slora_err_set(err, SLORA_ERROR, "LoRA on %s failed",
                             slora_proj_name(p));
    }

    return SLORA_OK;
}


static void
slora_cpu_lora_share(void *ctx, int ith, int nth)
{
    slora_cpu_lora_op_t  *op = ctx;
    int                   rc;

    if (op->expand) {
        rc = slora_lora_expand(op->y, op->out, op->v, op->ld_v, op->base,
                               op->out, op->sg, ith, nth);

    } else {
        rc = slora_lora_shrink(op->v, op->ld_v, op->x, op->in, op->base,
                               op->in, op->sg, ith, nth);
    }

    if (rc != 0) {
        atomic_store(&op->failed, 1);
    }
}


/* Runs fn over the pool, or on the calling thread alone when the op
 * touches fewer than SLORA_CPU_PAR_MIN elements. */

void
slora_cpu_par(slora_cpu_t *c, int64_t elems, slora_threads_fn fn, void *ctx)
{
    if (elems < SLORA_CPU_PAR_MIN) {
        fn(ctx, 0, 1);
        return;
    }

    slora_threads_run(c->pool, fn, ctx);
}
