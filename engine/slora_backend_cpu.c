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
 * Design. One pool of threads: the engine's own (slora_threads.h), whose
 * idle workers sleep instead of spinning, so other processes on the
 * cores (nginx workers, clients) do not slow a step down tenfold as
 * OpenMP's spinning team did. Every parallel op is a small closure run
 * over the pool's shares; ops too small to pay for a dispatch (one
 * decode row's norm, RoPE, SiLU) run on the calling thread. GEMMs split
 * their output columns over the shares and call OpenBLAS
 * single-threaded on each slice (OpenBLAS's own workers, spinning
 * beside ours on the same cores, made 2-thread decode twice as slow as
 * 1 thread); the q, k, v projections go in one dispatch, and gate and
 * up in another. With weights "q8_0" the projection and output matrices
 * are quantized to Q8_0 at load and the GEMMs become slora_qmatmul over
 * activations quantized once per input (34 bytes read per 32 weights
 * instead of 128, and single-stream decode waits on memory); it runs
 * the same code for every batch size, so a request's tokens never
 * depend on what else is in the batch. "f32" keeps the exact OpenBLAS
 * path. "native" keeps the file's own Q4_1 blocks where it has them
 * (slora_q4_1_matmul: 20 bytes per 32 weights, against activations
 * quantized the same way as for Q8_0) and takes Q8_0 for every other
 * matrix; it runs the same code for every batch size too. Scratch
 * buffers belong to the backend and only grow, so a
 * steady stream of same-shaped steps allocates nothing. A batch is
 * checked once up front (token count, page coverage, page ids and
 * adapter row offsets inside the arena, logits rows); after that the
 * kernels run without per-row checks.
 */

#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <cblas.h>

#include "slora_core.h"
#include "slora_model.h"
#include "slora_batch.h"
#include "slora_backend.h"
#include "slora_threads.h"
#include "slora_gguf.h"

#include "slora_norm.h"
#include "slora_rope.h"
#include "slora_act.h"
#include "slora_embed.h"
#include "slora_attention.h"
#include "slora_lora.h"
#include "slora_qmatmul.h"


/* Ops on fewer elements than this run on the calling thread. */
#define SLORA_CPU_PAR_MIN  (1 << 14)

#define SLORA_CPU_GEMMS    3

#define SLORA_CPU_F32      0            /* weights "f32" */
#define SLORA_CPU_Q8_0     1            /* weights "q8_0" */
#define SLORA_CPU_NATIVE   2            /* weights "native" */


typedef struct {
    void                         *p;
    size_t                        cap;          /* bytes */
} slora_cpu_buf_t;


/* Quantized copies of one layer's matrices, by slora_proj_e: packed Q4_1
 * from the file, else Q8_0, else (both NULL) the matrix stays f32. */
typedef struct {
    slora_block_q8_0_t           *q8[SLORA_PROJ_N];
    void                         *q41[SLORA_PROJ_N];
} slora_cpu_qlayer_t;


typedef struct {
    const slora_model_t          *model;
    slora_model_config_t          cfg;
    int32_t                       q_dim;        /* n_heads * head_dim */
    int32_t                       kv_dim;       /* n_kv_heads * head_dim */
    int32_t                       max_in;       /* widest GEMM input */
    int                           n_threads;
    slora_threads_t              *pool;
    int                           mode;         /* SLORA_CPU_F32, ... */
    slora_cpu_qlayer_t           *ql;           /* [n_layers] or NULL */
    slora_block_q8_0_t           *q_output;    /* [vocab, hidden / 32] */
    void                         *q41_output;   /* packed Q4_1 or NULL */

    float                        *arena;
    int64_t                       arena_elems;

    /* per-token rows, grown to the largest batch seen */
    slora_cpu_buf_t               x;            /* [n, hidden] residual */
    slora_cpu_buf_t               h;            /* [n, hidden] normed */
    slora_cpu_buf_t               q;            /* [n, q_dim] */
    slora_cpu_buf_t               k;            /* [n, kv_dim] */
    slora_cpu_buf_t               v;            /* [n, kv_dim] */
    slora_cpu_buf_t               att;          /* [n, q_dim] */
    slora_cpu_buf_t               o;            /* [n, hidden] */
    slora_cpu_buf_t               g;            /* [n, ffn] */
    slora_cpu_buf_t               u;            /* [n, ffn] */
    slora_cpu_buf_t               pos;          /* [n] int32 */

    /* per-sequence indices */
    slora_cpu_buf_t               qo_indptr;    /* [n_seqs + 1] int32 */
    slora_cpu_buf_t               seq_pos;      /* [n_seqs] int32 */
    slora_cpu_buf_t               kv_indptr;    /* [n_seqs + 1] int32 */
    slora_cpu_buf_t               kv_indices;   /* [sum pages] int32 */
    slora_cpu_buf_t               seg_rank;     /* [PROJ_N, n_seqs] int32 */
    slora_cpu_buf_t               seg_scale;    /* [n_seqs] float */
    slora_cpu_buf_t               seg_a;        /* [PROJ_N, n_seqs] ptr */
    slora_cpu_buf_t               seg_b;        /* [PROJ_N, n_seqs] ptr */

    /* workspaces and the logits path */
    slora_cpu_buf_t               attn_work;
    slora_cpu_buf_t               lora_work;
    slora_cpu_buf_t               lrow;         /* [m] int32 seq of row */
    slora_cpu_buf_t               lx;           /* [m, hidden] */
    slora_cpu_buf_t               lout;         /* [m, vocab] */
    slora_cpu_buf_t               xq;           /* activations, Q8_0 */
    slora_cpu_buf_t               xq41;         /* activations, Q4_1 */
} slora_cpu_t;


/* What one forward call derives from the batch before the layer loop. */
typedef struct {
    const slora_batch_t          *batch;
    const int64_t                *layer_off;
    slora_paged_kv_t              kv;
    slora_seq_index_t             ix;
    slora_lora_segs_t             segs[SLORA_PROJ_N];
    int32_t                       max_rank;
    int32_t                       max_ctx;
    int32_t                       n_logits;     /* rows that want logits */
    int                           direct;       /* logits rows 0, 1, ... */
} slora_cpu_step_t;


/*
 * Closures of the parallel ops: what one dispatch over the pool needs.
 * A share that fails sets failed; the caller reads it after the run.
 */

typedef struct {
    float                        *y;            /* [n, out] */
    const float                  *x;            /* [n, in] */
    const float                  *w;            /* [out, in] */
    const float                  *bias;         /* [out] or NULL */
    int32_t                       out;
    int32_t                       in;
    const slora_block_q8_0_t     *wq;           /* Q8_0 of w, or NULL */
    const void                   *w41;          /* packed Q4_1, or NULL */
} slora_cpu_gemm_t;


/* The GEMMs of one op share x, so x is quantized once for all. */
typedef struct {
    slora_cpu_gemm_t              g[SLORA_CPU_GEMMS];
    int                           n_gemm;
    int32_t                       n;
    void                         *xq;           /* NULL: no Q8_0 GEMM */
    size_t                        xq_size;
    void                         *xq41;         /* NULL: no Q4_1 GEMM */
    size_t                        xq41_size;
    _Atomic int                   failed;
} slora_cpu_linear_op_t;


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
    float                        *g;
    const float                  *u;
    int32_t                       n;
    int32_t                       dim;
    _Atomic int                   failed;
} slora_cpu_act_op_t;


typedef struct {
    slora_cpu_t                  *c;
    slora_cpu_step_t             *st;
    float                        *q;
    float                        *k;
    float                        *att;
    int                           nth;          /* attention's shares */
    _Atomic int                   failed;
} slora_cpu_attn_op_t;


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


static int slora_cpu_load_model(slora_backend_t *b, const slora_model_t *m,
    slora_err_t *err);
static int slora_cpu_alloc_arena(slora_backend_t *b, size_t bytes,
    slora_err_t *err);
static int slora_cpu_write_arena(slora_backend_t *b, int64_t off,
    const float *src, int64_t n, slora_err_t *err);
static int slora_cpu_read_arena(slora_backend_t *b, int64_t off, float *dst,
    int64_t n, slora_err_t *err);
static int slora_cpu_forward(slora_backend_t *b, const slora_batch_t *batch,
    const int64_t *pool_layer_off, int64_t page_elems,
    int32_t tokens_per_page, slora_err_t *err);
static void slora_cpu_free(slora_backend_t *b);

static int slora_cpu_check_batch(slora_cpu_t *c, slora_cpu_step_t *st,
    int64_t page_elems, int32_t tokens_per_page, slora_err_t *err);
static int slora_cpu_check_lora(slora_cpu_t *c, const slora_lora_t *lo,
    int32_t idx, int64_t limit, slora_err_t *err);
static int slora_cpu_reserve(slora_cpu_t *c, const slora_cpu_step_t *st,
    slora_err_t *err);
static int slora_cpu_index(slora_cpu_t *c, slora_cpu_step_t *st);
static int slora_cpu_layer(slora_cpu_t *c, slora_cpu_step_t *st, int32_t l,
    slora_err_t *err);
static int slora_cpu_quantize_weights(slora_cpu_t *c, slora_err_t *err);
static void slora_cpu_quant_share(void *ctx, int ith, int nth);
static slora_block_q8_0_t *slora_cpu_qalloc(const float *w, int64_t rows,
    int32_t cols, slora_cpu_quant_op_t *op, int *failed);
static void *slora_cpu_native(slora_cpu_t *c, const char *name,
    const float *w, int64_t rows, int32_t cols, int *failed);
static int slora_cpu_linear(slora_cpu_t *c, slora_cpu_linear_op_t *op);
static void slora_cpu_xq_share(void *ctx, int ith, int nth);
static void slora_cpu_linear_share(void *ctx, int ith, int nth);
static int slora_cpu_norm(slora_cpu_t *c, float *out, float *x,
    const float *res, const float *w, int32_t n);
static void slora_cpu_norm_share(void *ctx, int ith, int nth);
static void slora_cpu_act_share(void *ctx, int ith, int nth);
static void slora_cpu_rope_share(void *ctx, int ith, int nth);
static void slora_cpu_attn_share(void *ctx, int ith, int nth);
static int slora_cpu_lora(slora_cpu_t *c, slora_cpu_step_t *st, int32_t l,
    slora_proj_e p, float *y, const float *x, slora_err_t *err);
static void slora_cpu_lora_share(void *ctx, int ith, int nth);
static void slora_cpu_par(slora_cpu_t *c, int64_t elems,
    slora_threads_fn fn, void *ctx);
static int slora_cpu_logits(slora_cpu_t *c, slora_cpu_step_t *st);
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


/*
 * Quantized copies of every projection and of the output matrix, Q8_0
 * quantized over the pool one layer at a time; with weights "native" a
 * matrix the file holds as Q4_1 is packed from the file's blocks
 * instead. A matrix whose rows are not a multiple of 32 wide stays f32.
 */

static int
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


static int
slora_cpu_alloc_arena(slora_backend_t *b, size_t bytes, slora_err_t *err)
{
    slora_cpu_t  *c = b->data;
    void         *p;

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

    memset(&st, 0, sizeof(st));
    st.batch = batch;
    st.layer_off = pool_layer_off;

    if (slora_cpu_check_batch(c, &st, page_elems, tokens_per_page, err)
        != SLORA_OK
        || slora_cpu_reserve(c, &st, err) != SLORA_OK
        || slora_cpu_index(c, &st) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

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

    if (slora_cpu_logits(c, &st) != SLORA_OK) {
        return slora_err_set(err, SLORA_ERROR, "cpu backend: logits failed");
    }

    return SLORA_OK;
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
    at.nth = c->n_threads;

    slora_cpu_par(c, n >= 4 ? SLORA_CPU_PAR_MIN : 0, slora_cpu_rope_share,
                  &at);

    if (atomic_load(&at.failed)) {
        return slora_err_set(err, SLORA_ERROR, "rope failed");
    }

    if (slora_kv_store(&st->kv, &st->ix, k, c->kv_dim, v, c->kv_dim) != 0) {
        return slora_err_set(err, SLORA_ERROR, "paged kv store failed");
    }

    slora_threads_run_n(c->pool, at.nth, slora_cpu_attn_share, &at);

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
 * y[n, out] = x[n, in] . w[out, in]^T (+ bias[out]) for every GEMM of
 * op, in one dispatch. Each share takes the same slice of the output
 * columns of every GEMM and runs a single-threaded OpenBLAS GEMM on it:
 * one pool of threads for the whole step, so OpenBLAS's workers and
 * ours never spin against each other. GEMMs with quantized weights first
 * get x quantized into c->xq (Q8_0) or c->xq41 (Q4_1), as the reserve
 * sized them, once for the op.
 */

static int
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

static int
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


static void
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


static void
slora_cpu_rope_share(void *ctx, int ith, int nth)
{
    slora_cpu_attn_op_t         *op = ctx;
    const slora_model_config_t  *cfg = &op->c->cfg;

    if (slora_rope(op->q, op->c->q_dim, op->k, op->c->kv_dim, op->c->pos.p,
                   op->st->batch->n_tokens, cfg->n_heads, cfg->n_kv_heads,
                   cfg->head_dim, cfg->rope_theta,
                   cfg->rope == SLORA_ROPE_NEOX ? SLORA_ROPE_LAYOUT_NEOX
                                                : SLORA_ROPE_LAYOUT_NORM,
                   ith, nth)
        != 0)
    {
        atomic_store(&op->failed, 1);
    }
}


static void
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
 * the shrink into the workspace, then the expand, each one dispatch.
 */

static int
slora_cpu_lora(slora_cpu_t *c, slora_cpu_step_t *st, int32_t l,
    slora_proj_e p, float *y, const float *x, slora_err_t *err)
{
    slora_cpu_lora_op_t  op;

    if (st->max_rank == 0) {
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
    op.ld_v = st->max_rank;

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

static void
slora_cpu_par(slora_cpu_t *c, int64_t elems, slora_threads_fn fn, void *ctx)
{
    if (elems < SLORA_CPU_PAR_MIN) {
        fn(ctx, 0, 1);
        return;
    }

    slora_threads_run(c->pool, fn, ctx);
}


/*
 * h holds the output-normed rows; the last row of every sequence that
 * asked for logits is gathered, multiplied by the output matrix, and its
 * logits land in its batch row. When the rows asked for are 0, 1, ... in
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
    int32_t               s, i, m, last, hidden, vocab;
    slora_cpu_linear_op_t  lin;

    hidden = c->cfg.hidden;
    vocab = c->cfg.vocab;
    m = 0;

    for (s = 0; s < bt->n_seqs; s++) {
        if (bt->seqs[s].logits_row < 0) {
            continue;
        }

        last = st->ix.qo_indptr[s + 1] - 1;
        memcpy(lx + (int64_t) m * hidden, h + (int64_t) last * hidden,
               (size_t) hidden * sizeof(float));
        lrow[m] = bt->seqs[s].logits_row;
        m++;
    }

    if (m == 0) {
        return SLORA_OK;
    }

    lout = st->direct ? bt->logits : c->lout.p;

    memset(&lin, 0, sizeof(lin));
    lin.n = m;
    lin.n_gemm = 1;
    lin.g[0] = (slora_cpu_gemm_t) { lout, lx, c->model->w.output, NULL, vocab,
                                    hidden, c->q_output, c->q41_output };

    if (slora_cpu_linear(c, &lin) != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (!st->direct) {
        for (i = 0; i < m; i++) {
            memcpy(bt->logits + (int64_t) lrow[i] * vocab,
                   lout + (int64_t) i * vocab, (size_t) vocab * sizeof(float));
        }
    }

    return SLORA_OK;
}


/*
 * Everything a batch could get wrong is found here, before any compute:
 * afterwards the kernels index the arena without checks.
 */

static int
slora_cpu_check_batch(slora_cpu_t *c, slora_cpu_step_t *st,
    int64_t page_elems, int32_t tokens_per_page, slora_err_t *err)
{
    const slora_batch_t      *bt = st->batch;
    const slora_batch_seq_t  *sq;
    int64_t                   max_off, limit, need;
    int32_t                   s, l, i, sum, n_pages;

    if (bt->n_tokens < 0 || bt->n_seqs < 0 || bt->n_loras < 0
        || (bt->n_tokens > 0 && bt->tokens == NULL)
        || (bt->n_seqs > 0 && bt->seqs == NULL)
        || (bt->n_loras > 0 && bt->loras == NULL))
    {
        return slora_err_set(err, SLORA_ERROR, "cpu backend: batch: bad "
                             "counts (%d tokens, %d seqs, %d loras)",
                             bt->n_tokens, bt->n_seqs, bt->n_loras);
    }

    if (tokens_per_page <= 0
        || page_elems < 2 * (int64_t) tokens_per_page * c->kv_dim)
    {
        return slora_err_set(err, SLORA_ERROR, "cpu backend: page of %lld "
                             "elements cannot hold %d tokens of K and V",
                             (long long) page_elems, tokens_per_page);
    }

    max_off = 0;
    st->direct = 1;

    for (l = 0; l < c->cfg.n_layers; l++) {
        if (st->layer_off[l] < 0 || st->layer_off[l] > c->arena_elems) {
            return slora_err_set(err, SLORA_ERROR, "cpu backend: layer %d "
                                 "offset %lld outside the arena", l,
                                 (long long) st->layer_off[l]);
        }

        max_off = st->layer_off[l] > max_off ? st->layer_off[l] : max_off;
    }

    /* elements of a layer's region that every layer has */
    limit = c->arena_elems - max_off;

    sum = 0;

    for (s = 0; s < bt->n_seqs; s++) {
        sq = &bt->seqs[s];

        if (sq->n_tokens < 0 || sq->pos < 0 || sq->n_pages < 0
            || (sq->n_pages > 0 && sq->pages == NULL)
            || sq->n_tokens > bt->n_tokens - sum)
        {
            return slora_err_set(err, SLORA_ERROR, "cpu backend: batch: "
                                 "sequence %d: bad counts", s);
        }

        sum += sq->n_tokens;
        need = ((int64_t) sq->pos + sq->n_tokens + tokens_per_page - 1)
               / tokens_per_page;

        if (need > sq->n_pages) {
            return slora_err_set(err, SLORA_ERROR, "cpu backend: batch: "
                                 "sequence %d: %d pages cover %lld "
                                 "positions, need %lld", s, sq->n_pages,
                                 (long long) sq->n_pages * tokens_per_page,
                                 (long long) sq->pos + sq->n_tokens);
        }

        n_pages = (int32_t) need;

        for (i = 0; i < n_pages; i++) {
            if (sq->pages[i] < 0
                || ((int64_t) sq->pages[i] + 1) * page_elems > limit)
            {
                return slora_err_set(err, SLORA_ERROR, "cpu backend: batch: "
                                     "sequence %d: page %d outside the "
                                     "arena", s, sq->pages[i]);
            }
        }

        if (sq->lora < -1 || sq->lora >= bt->n_loras) {
            return slora_err_set(err, SLORA_ERROR, "cpu backend: batch: "
                                 "sequence %d: adapter %d of %d", s,
                                 sq->lora, bt->n_loras);
        }

        if (sq->logits_row >= 0) {
            if (sq->logits_row >= bt->n_logits || bt->logits == NULL
                || sq->n_tokens == 0)
            {
                return slora_err_set(err, SLORA_ERROR, "cpu backend: "
                                     "batch: sequence %d: logits row %d of "
                                     "%d", s, sq->logits_row, bt->n_logits);
            }

            st->direct &= sq->logits_row == st->n_logits;
            st->n_logits++;
        }

        if (sq->pos + sq->n_tokens > st->max_ctx) {
            st->max_ctx = sq->pos + sq->n_tokens;
        }
    }

    if (sum != bt->n_tokens) {
        return slora_err_set(err, SLORA_ERROR, "cpu backend: batch: "
                             "sequences hold %d tokens, batch has %d", sum,
                             bt->n_tokens);
    }

    for (i = 0; i < bt->n_loras; i++) {
        if (slora_cpu_check_lora(c, &bt->loras[i], i, limit, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        if (bt->loras[i].proj_mask != 0
            && bt->loras[i].rank > st->max_rank)
        {
            st->max_rank = bt->loras[i].rank;
        }
    }

    st->kv.page_elems = page_elems;
    st->kv.tokens_per_page = tokens_per_page;
    st->kv.n_kv_heads = c->cfg.n_kv_heads;
    st->kv.head_dim = c->cfg.head_dim;

    return SLORA_OK;
}


static int
slora_cpu_check_lora(slora_cpu_t *c, const slora_lora_t *lo, int32_t idx,
    int64_t limit, slora_err_t *err)
{
    int32_t  p, j, in, out;

    if (lo->proj_mask >> SLORA_PROJ_N != 0
        || (lo->proj_mask != 0 && lo->rank <= 0))
    {
        return slora_err_set(err, SLORA_ERROR, "cpu backend: batch: adapter "
                             "%d: rank %d, mask 0x%x", idx, lo->rank,
                             lo->proj_mask);
    }

    for (p = 0; p < SLORA_PROJ_N; p++) {
        if (!(lo->proj_mask & (1u << p))) {
            continue;
        }

        if (lo->a_rows[p] == NULL || lo->b_rows[p] == NULL) {
            return slora_err_set(err, SLORA_ERROR, "cpu backend: batch: "
                                 "adapter %d: %s has no rows", idx,
                                 slora_proj_name(p));
        }

        in = slora_proj_in_dim(&c->cfg, p);
        out = slora_proj_out_dim(&c->cfg, p);

        for (j = 0; j < lo->rank; j++) {
            if (lo->a_rows[p][j] < 0 || lo->a_rows[p][j] > limit - in
                || lo->b_rows[p][j] < 0 || lo->b_rows[p][j] > limit - out)
            {
                return slora_err_set(err, SLORA_ERROR, "cpu backend: batch: "
                                     "adapter %d: %s row %d outside the "
                                     "arena", idx, slora_proj_name(p), j);
            }
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
    m = (size_t) (st->n_logits > 0 ? st->n_logits : 1);
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
        || slora_cpu_grow(&c->seg_rank, SLORA_PROJ_N * ns * sizeof(int32_t),
                          err)
           != SLORA_OK
        || slora_cpu_grow(&c->seg_scale, ns * f, err) != SLORA_OK
        || slora_cpu_grow(&c->seg_a, SLORA_PROJ_N * ns * sizeof(void *), err)
           != SLORA_OK
        || slora_cpu_grow(&c->seg_b, SLORA_PROJ_N * ns * sizeof(void *), err)
           != SLORA_OK
        || slora_cpu_grow(&c->attn_work,
                          slora_attention_workspace_size(st->max_ctx,
                                                         c->n_threads),
                          err)
           != SLORA_OK
        || slora_cpu_grow(&c->lora_work,
                          slora_lora_workspace_size((int64_t) n,
                                                    st->max_rank),
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
    if (st->n_logits > 0 && !st->direct
        && slora_cpu_grow(&c->lout, m * c->cfg.vocab * f, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    return SLORA_OK;
}


/*
 * Fills the CSR indices attention and LoRA read: token rows and
 * positions per sequence, the pages each sequence uses, and per
 * projection the rank, scale and row arrays of each sequence's adapter
 * (rank 0 where the sequence runs the base model on that projection).
 */

static int
slora_cpu_index(slora_cpu_t *c, slora_cpu_step_t *st)
{
    const slora_batch_t      *bt = st->batch;
    const slora_batch_seq_t  *sq;
    const slora_lora_t       *lo;
    int32_t                  *qo, *sp, *kvp, *kvi, *pos, *rank;
    float                    *scale;
    const int64_t           **a, **b;
    int32_t                   s, i, p, ns, np, tpp;

    qo = c->qo_indptr.p;
    sp = c->seq_pos.p;
    kvp = c->kv_indptr.p;
    kvi = c->kv_indices.p;
    pos = c->pos.p;
    rank = c->seg_rank.p;
    scale = c->seg_scale.p;
    a = c->seg_a.p;
    b = c->seg_b.p;
    ns = bt->n_seqs;
    tpp = st->kv.tokens_per_page;

    qo[0] = 0;
    kvp[0] = 0;

    for (s = 0; s < ns; s++) {
        sq = &bt->seqs[s];
        qo[s + 1] = qo[s] + sq->n_tokens;
        sp[s] = sq->pos;

        np = (sq->pos + sq->n_tokens + tpp - 1) / tpp;
        memcpy(kvi + kvp[s], sq->pages, (size_t) np * sizeof(int32_t));
        kvp[s + 1] = kvp[s] + np;

        for (i = 0; i < sq->n_tokens; i++) {
            pos[qo[s] + i] = sq->pos + i;
        }

        lo = sq->lora >= 0 ? &bt->loras[sq->lora] : NULL;
        scale[s] = lo != NULL ? lo->scale : 0.0f;

        for (p = 0; p < SLORA_PROJ_N; p++) {
            if (lo != NULL && (lo->proj_mask & (1u << p))) {
                rank[p * ns + s] = lo->rank;
                a[p * ns + s] = lo->a_rows[p];
                b[p * ns + s] = lo->b_rows[p];

            } else {
                rank[p * ns + s] = 0;
                a[p * ns + s] = NULL;
                b[p * ns + s] = NULL;
            }
        }
    }

    st->ix.n_seqs = ns;
    st->ix.qo_indptr = qo;
    st->ix.seq_pos = sp;
    st->ix.kv_indptr = kvp;
    st->ix.kv_indices = kvi;

    for (p = 0; p < SLORA_PROJ_N; p++) {
        st->segs[p].n_segs = ns;
        st->segs[p].seg_indptr = qo;
        st->segs[p].rank = rank + p * ns;
        st->segs[p].scale = scale;
        st->segs[p].a_rows = (const int64_t *const *) (a + p * ns);
        st->segs[p].b_rows = (const int64_t *const *) (b + p * ns);
    }

    return SLORA_OK;
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
