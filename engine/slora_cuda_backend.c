/*
 * slora_cuda_backend.c: the CUDA backend, built into libslora_cuda.so,
 * which the engine dlopen()s for device=cuda (slora_backend_open.c).
 * Weights live on the GPU in bf16, the pool's arena too (KV pages and
 * adapter rows side by side, as on the CPU), and a forward pass runs the
 * whole batch through the kernels/ twins of the CPU backend's ops, with
 * the base projections through cuBLASLt (slora_cuda_gemm.c).
 *
 * The one idea: the layer loop is the CPU backend's, op for op, so the
 * two can be held to each other; what differs is only where the data is.
 * q, k and v come out of one GEMM over the concatenated weights, gate and
 * up out of another, and the kernels read them as strided views of one
 * buffer. A step's indices (tokens, positions, page tables, adapter row
 * tables) are laid out in pinned host memory and go to the device in one
 * copy; after that nothing but kernels and GEMMs is enqueued until the
 * logits, or with greedy sampling only the chosen ids, come back.
 *
 * Adapter rows reach the arena through write_arena on a stream of their
 * own: pinned staging, a copy and a bf16 conversion, overlapped with
 * whatever the compute stream is running.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "slora_core.h"
#include "slora_model.h"
#include "slora_batch.h"
#include "slora_backend.h"
#include "slora_cuda_gemm.h"

#include "slora_act.h"
#include "slora_argmax.h"
#include "slora_attention.h"
#include "slora_convert.h"
#include "slora_embed.h"
#include "slora_lora.h"
#include "slora_norm.h"
#include "slora_rope.h"


#define SLORA_CUDA_STAGE       (16 << 20)       /* f32 elements per upload */
#define SLORA_CUDA_GEMM_WORK   (32 << 20)       /* cuBLASLt workspace */
#define SLORA_CUDA_ALIGN       16
#define SLORA_CUDA_MARKS       4096             /* profile events a step */
#define SLORA_CUDA_GRAPHS      16               /* decode graphs kept */


/* What the step profile ($SLORA_CUDA_PROFILE) charges time to. */
typedef enum {
    SLORA_OP_INDEX = 0, SLORA_OP_EMBED, SLORA_OP_GEMM_QKV, SLORA_OP_LORA,
    SLORA_OP_ROPE_KV, SLORA_OP_ATTENTION, SLORA_OP_GEMM_O, SLORA_OP_NORM,
    SLORA_OP_GEMM_GU, SLORA_OP_ACT, SLORA_OP_GEMM_DOWN, SLORA_OP_LOGITS,
    SLORA_OP_N
} slora_cuda_op_e;


static const char  *slora_cuda_op_names[SLORA_OP_N] = {
    "indices", "embedding", "GEMM q,k,v", "LoRA (all)", "RoPE + KV store",
    "attention", "GEMM o", "RMSNorm", "GEMM gate,up", "SiLU-and-mul",
    "GEMM down", "logits + argmax"
};


typedef struct {
    cudaEvent_t               ev[SLORA_CUDA_MARKS];
    int                       op[SLORA_CUDA_MARKS];
    int                       n;
    double                    ms[2][SLORA_OP_N];  /* [prefill?][op] */
    double                    wall_ms[2];
    uint64_t                  steps[2];
    int64_t                   t0;
} slora_cuda_prof_t;


typedef struct {
    void                     *p;
    size_t                    cap;
} slora_cuda_buf_t;


typedef struct {
    uint16_t                 *attn_norm;        /* [hidden] */
    uint16_t                 *wqkv;             /* [q + 2 kv, hidden] */
    uint16_t                 *bqkv;             /* [q + 2 kv] or NULL */
    uint16_t                 *wo;               /* [hidden, q] */
    uint16_t                 *ffn_norm;         /* [hidden] */
    uint16_t                 *wgu;              /* [2 ffn, hidden] */
    uint16_t                 *wdown;            /* [hidden, ffn] */
} slora_cuda_layer_t;


/* What a captured decode step depends on (slora_cuda_graph_run). */
typedef struct {
    int32_t                   n_seqs;
    int32_t                   n_logits;
    int32_t                   max_rank;
    int32_t                   chunk;            /* decode attention split */
    int32_t                   n_splits;
    int32_t                   argmax;
    int32_t                   work;
    int32_t                   n_segs;           /* LoRA launches' grids */
    int32_t                   max_seg_len;
} slora_cuda_gkey_t;


typedef struct {
    slora_cuda_gkey_t         key;
    cudaGraphExec_t           exec;             /* NULL: free slot */
    uint64_t                  used;
} slora_cuda_graph_t;


typedef struct {
    int                       device;
    cudaStream_t              stream;           /* compute */
    cudaStream_t              upload;           /* adapter rows */
    pthread_mutex_t           upload_lock;
    slora_cuda_gemm_t        *gemm;

    const slora_model_t      *model;
    slora_model_config_t      cfg;
    int32_t                   q_dim;
    int32_t                   kv_dim;
    int32_t                   qkv_dim;          /* q + 2 kv */

    uint16_t                 *tok_embd;         /* [vocab, hidden] */
    uint16_t                 *out_norm;
    uint16_t                 *output;           /* == tok_embd if tied */
    slora_cuda_layer_t       *layers;           /* [n_layers] */
    void                    **allocs;           /* every weight cudaMalloc */
    int32_t                   n_allocs;
    size_t                    weight_bytes;

    uint16_t                 *arena;
    int64_t                   arena_elems;

    float                    *stage;            /* device, f32 */
    float                    *stage_host;       /* pinned, f32 */

    /* device rows, grown to the largest step seen */
    slora_cuda_buf_t          x;                /* [n, hidden] residual */
    slora_cuda_buf_t          h;                /* [n, hidden] normed */
    slora_cuda_buf_t          qkv;              /* [n, qkv_dim] */
    slora_cuda_buf_t          att;              /* [n, q_dim] */
    slora_cuda_buf_t          o;                /* [n, hidden] */
    slora_cuda_buf_t          gu;               /* [n, 2 ffn] */
    slora_cuda_buf_t          lora_work;
    slora_cuda_buf_t          attn_work;        /* decode splits */
    slora_cuda_buf_t          lx;               /* [m, hidden] */
    slora_cuda_buf_t          lout;             /* [m, vocab] f32 */
    slora_cuda_buf_t          ids;              /* [m] argmax */
    slora_cuda_buf_t          ix;               /* the step's indices */

    /* host scratch of the index: segments' adapters, row table
     * addresses */
    slora_cuda_buf_t          seg_lora;
    slora_cuda_buf_t          lora_tab;

    /* pinned host twins */
    slora_cuda_buf_t          ix_host;
    slora_cuda_buf_t          lout_host;
    slora_cuda_buf_t          ids_host;

    slora_cuda_prof_t        *prof;             /* NULL: off */

    int                       graphs;           /* decode graphs on */
    int                       graphs_stale;     /* scratch moved */
    slora_cuda_graph_t        graph[SLORA_CUDA_GRAPHS];
    uint64_t                  graph_clock;
    uint64_t                  graph_captures;
} slora_cuda_t;


/* Where the step's indices sit in the ix block (byte offsets). */
typedef struct {
    size_t                    tokens, pos, qo, seq_pos, kv_indptr, seg_indptr;
    size_t                    kv_indices, rank, scale, lidx, seg_a, seg_b;
    size_t                    rows, total;
} slora_cuda_layout_t;


typedef struct {
    const slora_batch_t      *batch;
    const int64_t            *layer_off;
    slora_batch_info_t        info;
    int64_t                   page_elems;
    int32_t                   tokens_per_page;
    slora_seq_index_t         ix;               /* device arrays */
    slora_lora_segs_t         segs[SLORA_PROJ_N];
    const int32_t            *tokens;           /* device */
    const int32_t            *pos;              /* device */
    const int32_t            *lidx;             /* device, [m] */
    int32_t                  *lrow;             /* host, [m] */
    int32_t                   n_segs;           /* LoRA segments */
    int32_t                   max_seg_len;      /* tokens of the longest */
} slora_cuda_step_t;


slora_backend_t *slora_backend_cuda_create(int device, slora_err_t *err);

static int slora_cuda_load_model(slora_backend_t *b, const slora_model_t *m,
    slora_err_t *err);
static int slora_cuda_alloc_arena(slora_backend_t *b, size_t bytes,
    slora_err_t *err);
static int slora_cuda_write_arena(slora_backend_t *b, int64_t off,
    const float *src, int64_t n, slora_err_t *err);
static int slora_cuda_read_arena(slora_backend_t *b, int64_t off, float *dst,
    int64_t n, slora_err_t *err);
static int slora_cuda_forward(slora_backend_t *b, const slora_batch_t *batch,
    const int64_t *pool_layer_off, int64_t page_elems,
    int32_t tokens_per_page, slora_err_t *err);
static size_t slora_cuda_mem_free(slora_backend_t *b);
static void slora_cuda_free(slora_backend_t *b);

static uint16_t *slora_cuda_weight(slora_cuda_t *c, size_t elems,
    slora_err_t *err);
static int slora_cuda_upload(slora_cuda_t *c, uint16_t *dst, const float *src,
    int64_t n, slora_err_t *err);
static int slora_cuda_load_layer(slora_cuda_t *c,
    const slora_layer_weights_t *L, slora_cuda_layer_t *D, slora_err_t *err);
static int slora_cuda_reserve(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_cuda_layout_t *lay, slora_err_t *err);
static int slora_cuda_index(slora_cuda_t *c, slora_cuda_step_t *st,
    const slora_cuda_layout_t *lay, slora_err_t *err);
static int slora_cuda_layer(slora_cuda_t *c, slora_cuda_step_t *st,
    int32_t l, slora_err_t *err);
static int slora_cuda_linear(slora_cuda_t *c, void *y, int64_t ld_y,
    const uint16_t *x, int64_t ld_x, const uint16_t *w, const uint16_t *bias,
    int32_t out, int32_t in, int32_t n, int f32_out, slora_err_t *err);
static int slora_cuda_lora(slora_cuda_t *c, slora_cuda_step_t *st, int32_t l,
    slora_proj_e p, uint16_t *y, int64_t ld_y, const uint16_t *x,
    int64_t ld_x, slora_err_t *err);
static int slora_cuda_logits(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_err_t *err);
static int slora_cuda_finish(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_err_t *err);
static int slora_cuda_compute(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_err_t *err);
static int slora_cuda_graph_run(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_err_t *err);
static void slora_cuda_graphs_drop(slora_cuda_t *c);
static int slora_cuda_grow(slora_cuda_t *c, slora_cuda_buf_t *buf,
    size_t need, int pinned, slora_err_t *err);
static int slora_cuda_host_grow(slora_cuda_buf_t *buf, size_t need,
    slora_err_t *err);
static void slora_cuda_buf_free(slora_cuda_buf_t *buf, int pinned);
static int slora_cuda_check(cudaError_t rc, const char *what,
    slora_err_t *err);
static void slora_cuda_mark(slora_cuda_t *c, slora_cuda_op_e op);
static void slora_cuda_prof_step(slora_cuda_t *c, int prefill);
static void slora_cuda_prof_print(slora_cuda_t *c);


static size_t
slora_cuda_up(size_t n)
{
    return (n + SLORA_CUDA_ALIGN - 1) & ~(size_t) (SLORA_CUDA_ALIGN - 1);
}


slora_backend_t *
slora_backend_cuda_create(int device, slora_err_t *err)
{
    slora_backend_t  *b;
    slora_cuda_t     *c;
    int               n;

    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        slora_err_set(err, SLORA_ERROR, "cuda backend: no CUDA device");
        return NULL;
    }

    if (device < 0 || device >= n) {
        slora_err_set(err, SLORA_ERROR, "cuda backend: device %d of %d",
                      device, n);
        return NULL;
    }

    b = calloc(1, sizeof(slora_backend_t));
    c = calloc(1, sizeof(slora_cuda_t));

    if (b == NULL || c == NULL) {
        free(b);
        free(c);
        slora_err_set(err, SLORA_ERROR, "cuda backend: out of memory");
        return NULL;
    }

    c->device = device;
    pthread_mutex_init(&c->upload_lock, NULL);

    b->name = "cuda";
    b->elem_size = sizeof(uint16_t);
    b->load_model = slora_cuda_load_model;
    b->alloc_arena = slora_cuda_alloc_arena;
    b->write_arena = slora_cuda_write_arena;
    b->read_arena = slora_cuda_read_arena;
    b->forward = slora_cuda_forward;
    b->mem_free = slora_cuda_mem_free;
    b->free = slora_cuda_free;
    b->data = c;

    if (slora_cuda_check(cudaSetDevice(device), "cudaSetDevice", err)
        != SLORA_OK
        || slora_cuda_check(cudaStreamCreateWithFlags(&c->stream,
                                                      cudaStreamNonBlocking),
                            "stream", err)
           != SLORA_OK
        || slora_cuda_check(cudaStreamCreateWithFlags(&c->upload,
                                                      cudaStreamNonBlocking),
                            "stream", err)
           != SLORA_OK
        || slora_cuda_check(cudaMalloc((void **) &c->stage,
                                       SLORA_CUDA_STAGE * sizeof(float)),
                            "staging buffer", err)
           != SLORA_OK
        || slora_cuda_check(cudaHostAlloc((void **) &c->stage_host,
                                          SLORA_CUDA_STAGE * sizeof(float),
                                          cudaHostAllocDefault),
                            "pinned staging buffer", err)
           != SLORA_OK)
    {
        slora_cuda_free(b);
        return NULL;
    }

    c->gemm = slora_cuda_gemm_create(SLORA_CUDA_GEMM_WORK, err);
    if (c->gemm == NULL) {
        slora_cuda_free(b);
        return NULL;
    }

    c->graphs = getenv("SLORA_CUDA_GRAPHS") == NULL
                || strcmp(getenv("SLORA_CUDA_GRAPHS"), "0") != 0;

    if (getenv("SLORA_CUDA_PROFILE") != NULL) {
        c->prof = calloc(1, sizeof(slora_cuda_prof_t));
        for (n = 0; c->prof != NULL && n < SLORA_CUDA_MARKS; n++) {
            cudaEventCreate(&c->prof->ev[n]);
        }
    }

    return b;
}


static int
slora_cuda_load_model(slora_backend_t *b, const slora_model_t *m,
    slora_err_t *err)
{
    slora_cuda_t                  *c = b->data;
    const slora_model_config_t    *cfg;
    size_t                         hidden, vocab;
    int32_t                        l;

    if (m == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: no model");
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

    if (m->w.tok_embd == NULL || m->w.out_norm == NULL
        || m->w.output == NULL || m->w.layers == NULL)
    {
        return slora_err_set(err, SLORA_ERROR,
                             "%s: cuda backend: missing global weights",
                             m->path);
    }

    c->model = m;
    c->cfg = *cfg;
    c->q_dim = cfg->n_heads * cfg->head_dim;
    c->kv_dim = cfg->n_kv_heads * cfg->head_dim;
    c->qkv_dim = c->q_dim + 2 * c->kv_dim;

    c->allocs = calloc((size_t) cfg->n_layers * 8 + 4, sizeof(void *));
    c->layers = calloc((size_t) cfg->n_layers, sizeof(slora_cuda_layer_t));
    if (c->allocs == NULL || c->layers == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: out of memory");
    }

    hidden = (size_t) cfg->hidden;
    vocab = (size_t) cfg->vocab;

    c->tok_embd = slora_cuda_weight(c, vocab * hidden, err);
    c->out_norm = slora_cuda_weight(c, hidden, err);

    if (c->tok_embd == NULL || c->out_norm == NULL
        || slora_cuda_upload(c, c->tok_embd, m->w.tok_embd,
                             (int64_t) (vocab * hidden), err)
           != SLORA_OK
        || slora_cuda_upload(c, c->out_norm, m->w.out_norm,
                             (int64_t) hidden, err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (m->w.output == m->w.tok_embd) {
        c->output = c->tok_embd;

    } else {
        c->output = slora_cuda_weight(c, vocab * hidden, err);
        if (c->output == NULL
            || slora_cuda_upload(c, c->output, m->w.output,
                                 (int64_t) (vocab * hidden), err)
               != SLORA_OK)
        {
            return SLORA_ERROR;
        }
    }

    for (l = 0; l < cfg->n_layers; l++) {
        if (slora_cuda_load_layer(c, &m->w.layers[l], &c->layers[l], err)
            != SLORA_OK)
        {
            return slora_err_prefix(err, "%s: cuda backend: layer %d",
                                    m->path, l);
        }
    }

    return slora_cuda_check(cudaStreamSynchronize(c->upload), "weights",
                            err);
}


static int
slora_cuda_load_layer(slora_cuda_t *c, const slora_layer_weights_t *L,
    slora_cuda_layer_t *D, slora_err_t *err)
{
    size_t   hidden, ffn, q, kv;
    int      ok;

    if (L->attn_norm == NULL || L->wq == NULL || L->wk == NULL
        || L->wv == NULL || L->wo == NULL || L->ffn_norm == NULL
        || L->w_gate == NULL || L->w_up == NULL || L->w_down == NULL
        || (L->bq != NULL) != (L->bk != NULL)
        || (L->bq != NULL) != (L->bv != NULL))
    {
        return slora_err_set(err, SLORA_ERROR, "missing weights");
    }

    hidden = (size_t) c->cfg.hidden;
    ffn = (size_t) c->cfg.ffn;
    q = (size_t) c->q_dim;
    kv = (size_t) c->kv_dim;

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

    ok = slora_cuda_upload(c, D->attn_norm, L->attn_norm, (int64_t) hidden,
                           err) == SLORA_OK
         && slora_cuda_upload(c, D->wqkv, L->wq, (int64_t) (q * hidden), err)
            == SLORA_OK
         && slora_cuda_upload(c, D->wqkv + q * hidden, L->wk,
                              (int64_t) (kv * hidden), err) == SLORA_OK
         && slora_cuda_upload(c, D->wqkv + (q + kv) * hidden, L->wv,
                              (int64_t) (kv * hidden), err) == SLORA_OK
         && slora_cuda_upload(c, D->wo, L->wo, (int64_t) (hidden * q), err)
            == SLORA_OK
         && slora_cuda_upload(c, D->ffn_norm, L->ffn_norm, (int64_t) hidden,
                              err) == SLORA_OK
         && slora_cuda_upload(c, D->wgu, L->w_gate, (int64_t) (ffn * hidden),
                              err) == SLORA_OK
         && slora_cuda_upload(c, D->wgu + ffn * hidden, L->w_up,
                              (int64_t) (ffn * hidden), err) == SLORA_OK
         && slora_cuda_upload(c, D->wdown, L->w_down,
                              (int64_t) (hidden * ffn), err) == SLORA_OK;

    if (!ok) {
        return SLORA_ERROR;
    }

    if (L->bq != NULL) {
        D->bqkv = slora_cuda_weight(c, q + 2 * kv, err);

        if (D->bqkv == NULL
            || slora_cuda_upload(c, D->bqkv, L->bq, (int64_t) q, err)
               != SLORA_OK
            || slora_cuda_upload(c, D->bqkv + q, L->bk, (int64_t) kv, err)
               != SLORA_OK
            || slora_cuda_upload(c, D->bqkv + q + kv, L->bv, (int64_t) kv,
                                 err)
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
 * f32 host values to bf16 device values through the f32 staging buffer,
 * on the upload stream; the caller synchronizes that stream before it
 * relies on the data or reuses the source.
 */

static int
slora_cuda_upload(slora_cuda_t *c, uint16_t *dst, const float *src,
    int64_t n, slora_err_t *err)
{
    int64_t  i, k;

    for (i = 0; i < n; i += k) {
        k = n - i < SLORA_CUDA_STAGE ? n - i : SLORA_CUDA_STAGE;

        /* the previous chunk's conversion reads the staging buffer */
        if (slora_cuda_check(cudaStreamSynchronize(c->upload), "upload", err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        memcpy(c->stage_host, src + i, (size_t) k * sizeof(float));

        if (slora_cuda_check(cudaMemcpyAsync(c->stage, c->stage_host,
                                             (size_t) k * sizeof(float),
                                             cudaMemcpyHostToDevice,
                                             c->upload),
                             "upload", err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        if (slora_convert_bf16_cuda(dst + i, c->stage, k, c->upload) != 0) {
            return slora_err_set(err, SLORA_ERROR, "cuda backend: bf16 "
                                 "conversion refused");
        }
    }

    return SLORA_OK;
}


static int
slora_cuda_alloc_arena(slora_backend_t *b, size_t bytes, slora_err_t *err)
{
    slora_cuda_t  *c = b->data;
    void          *p;

    if (bytes < sizeof(uint16_t) || bytes % SLORA_CUDA_ALIGN != 0) {
        return slora_err_set(err, SLORA_ERROR,
                             "cuda backend: arena of %zu bytes", bytes);
    }

    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        cudaGetLastError();
        return slora_err_set(err, SLORA_ERROR, "cuda backend: cannot "
                             "allocate an arena of %zu bytes (%zu free)",
                             bytes, slora_cuda_mem_free(b));
    }

    if (slora_cuda_check(cudaMemset(p, 0, bytes), "arena", err) != SLORA_OK)
    {
        cudaFree(p);
        return SLORA_ERROR;
    }

    cudaFree(c->arena);
    c->arena = p;
    c->arena_elems = (int64_t) (bytes / sizeof(uint16_t));

    return SLORA_OK;
}


static int
slora_cuda_write_arena(slora_backend_t *b, int64_t off, const float *src,
    int64_t n, slora_err_t *err)
{
    slora_cuda_t  *c = b->data;
    int            rc;

    if (c->arena == NULL || off < 0 || n < 0 || off > c->arena_elems
        || n > c->arena_elems - off || (n > 0 && src == NULL))
    {
        return slora_err_set(err, SLORA_ERROR,
                             "cuda backend: write of %lld elements at %lld "
                             "outside the arena of %lld", (long long) n,
                             (long long) off, (long long) c->arena_elems);
    }

    pthread_mutex_lock(&c->upload_lock);

    /* the device is per thread: the caller may be another thread */
    rc = slora_cuda_check(cudaSetDevice(c->device), "cudaSetDevice", err);
    if (rc == SLORA_OK) {
        rc = slora_cuda_upload(c, c->arena + off, src, n, err);
    }

    if (rc == SLORA_OK) {
        rc = slora_cuda_check(cudaStreamSynchronize(c->upload),
                              "adapter upload", err);
    }

    pthread_mutex_unlock(&c->upload_lock);

    return rc;
}


static int
slora_cuda_read_arena(slora_backend_t *b, int64_t off, float *dst, int64_t n,
    slora_err_t *err)
{
    slora_cuda_t  *c = b->data;
    uint16_t      *tmp;
    uint32_t       u;
    int64_t        i;

    if (c->arena == NULL || off < 0 || n < 0 || off > c->arena_elems
        || n > c->arena_elems - off || (n > 0 && dst == NULL))
    {
        return slora_err_set(err, SLORA_ERROR,
                             "cuda backend: read of %lld elements at %lld "
                             "outside the arena of %lld", (long long) n,
                             (long long) off, (long long) c->arena_elems);
    }

    if (n == 0) {
        return SLORA_OK;
    }

    tmp = malloc((size_t) n * sizeof(uint16_t));
    if (tmp == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: out of memory");
    }

    if (slora_cuda_check(cudaMemcpy(tmp, c->arena + off,
                                    (size_t) n * sizeof(uint16_t),
                                    cudaMemcpyDeviceToHost),
                         "arena read", err)
        != SLORA_OK)
    {
        free(tmp);
        return SLORA_ERROR;
    }

    for (i = 0; i < n; i++) {
        u = (uint32_t) tmp[i] << 16;
        memcpy(&dst[i], &u, sizeof(float));
    }

    free(tmp);

    return SLORA_OK;
}


static size_t
slora_cuda_mem_free(slora_backend_t *b)
{
    size_t  avail, total;

    (void) b;

    if (cudaMemGetInfo(&avail, &total) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }

    return avail;
}


static int
slora_cuda_forward(slora_backend_t *b, const slora_batch_t *batch,
    const int64_t *pool_layer_off, int64_t page_elems,
    int32_t tokens_per_page, slora_err_t *err)
{
    slora_cuda_t          *c = b->data;
    slora_cuda_step_t      st;
    slora_cuda_layout_t    lay;
    int32_t                n, i;
    int                    rc;

    if (c->model == NULL || c->arena == NULL) {
        return slora_err_set(err, SLORA_ERROR,
                             "cuda backend: forward before load_model and "
                             "alloc_arena");
    }

    if (batch == NULL || pool_layer_off == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: no batch");
    }

    memset(&st, 0, sizeof(st));
    st.batch = batch;
    st.layer_off = pool_layer_off;
    st.page_elems = page_elems;
    st.tokens_per_page = tokens_per_page;

    if (slora_batch_check(batch, &c->cfg, pool_layer_off, c->arena_elems,
                          page_elems, tokens_per_page, "cuda backend",
                          &st.info, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (page_elems % 8 != 0) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: page of %lld "
                             "elements is not a multiple of 8",
                             (long long) page_elems);
    }

    n = batch->n_tokens;

    for (i = 0; i < n; i++) {
        if (batch->tokens[i] < 0 || batch->tokens[i] >= c->cfg.vocab) {
            return slora_err_set(err, SLORA_ERROR, "cuda backend: batch: "
                                 "token id %d outside the vocabulary of %d",
                                 batch->tokens[i], c->cfg.vocab);
        }
    }

    if (n == 0) {
        return SLORA_OK;
    }

    if (c->prof != NULL) {
        c->prof->t0 = slora_now_ns();
        slora_cuda_mark(c, SLORA_OP_INDEX);
    }

    if (slora_cuda_reserve(c, &st, &lay, err) != SLORA_OK
        || slora_cuda_index(c, &st, &lay, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    slora_cuda_mark(c, SLORA_OP_INDEX);

    /* decode steps replay a captured graph; others launch one by one */
    rc = c->graphs && c->prof == NULL && n == batch->n_seqs
         ? slora_cuda_graph_run(c, &st, err)
         : slora_cuda_compute(c, &st, err);

    if (rc != SLORA_OK || slora_cuda_finish(c, &st, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (c->prof != NULL) {
        slora_cuda_mark(c, SLORA_OP_LOGITS);
        slora_cuda_prof_step(c, n > batch->n_seqs);
    }

    return SLORA_OK;
}


/* Everything a step enqueues between its indices and its results. */

static int
slora_cuda_compute(slora_cuda_t *c, slora_cuda_step_t *st, slora_err_t *err)
{
    int32_t  l, n;

    n = st->batch->n_tokens;

    if (slora_embed_cuda(c->x.p, c->cfg.hidden, c->tok_embd, c->cfg.vocab,
                         c->cfg.hidden, st->tokens, n, NULL, c->stream)
        != 0
        || slora_rmsnorm_cuda(c->h.p, c->cfg.hidden, c->x.p, c->cfg.hidden,
                              c->layers[0].attn_norm, n, c->cfg.hidden,
                              c->cfg.norm_eps, c->stream)
           != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: embedding "
                             "refused");
    }

    slora_cuda_mark(c, SLORA_OP_EMBED);

    for (l = 0; l < c->cfg.n_layers; l++) {
        if (slora_cuda_layer(c, st, l, err) != SLORA_OK) {
            return slora_err_prefix(err, "cuda backend: layer %d", l);
        }
    }

    return slora_cuda_logits(c, st, err);
}


/*
 * A decode step is the same few hundred launches every time for a given
 * shape, so it is captured once into a CUDA graph and replayed: what
 * changes from step to step (tokens, positions, page tables, adapter row
 * tables) is data in the index block, copied before the replay, while
 * every pointer and launch size the graph holds depends only on the key.
 * Scratch that moves (a buffer grew) drops every graph.
 */

static int
slora_cuda_graph_run(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_err_t *err)
{
    slora_cuda_graph_t  *gr, *slot;
    slora_cuda_gkey_t    key;
    cudaGraph_t          graph;
    cudaError_t          rc;
    int32_t              i, chunk, n_splits;
    size_t               work;

    if (c->graphs_stale) {
        slora_cuda_graphs_drop(c);
        c->graphs_stale = 0;
    }

    work = slora_attention_decode_work_size(st->batch->n_seqs, c->cfg.n_heads,
                                            c->cfg.n_kv_heads,
                                            c->cfg.head_dim,
                                            st->info.max_ctx);
    chunk = 0;
    n_splits = 0;
    slora_attention_decode_shape(st->batch->n_seqs, c->cfg.n_kv_heads,
                                 st->info.max_ctx, &chunk, &n_splits);

    memset(&key, 0, sizeof(key));
    key.n_seqs = st->batch->n_seqs;
    key.n_logits = st->info.n_logits;
    key.max_rank = st->info.max_rank;
    key.chunk = chunk;
    key.n_splits = n_splits;
    key.argmax = st->batch->argmax != NULL;
    key.work = work > 0;
    key.n_segs = st->n_segs;
    key.max_seg_len = st->max_seg_len;

    slot = NULL;

    for (i = 0; i < SLORA_CUDA_GRAPHS; i++) {
        gr = &c->graph[i];

        if (gr->exec != NULL && memcmp(&gr->key, &key, sizeof(key)) == 0) {
            gr->used = ++c->graph_clock;
            return slora_cuda_check(cudaGraphLaunch(gr->exec, c->stream),
                                    "graph launch", err);
        }

        if (slot == NULL || gr->exec == NULL
            || (slot->exec != NULL && gr->used < slot->used))
        {
            slot = gr;
        }
    }

    if (slot->exec != NULL) {
        cudaGraphExecDestroy(slot->exec);
        slot->exec = NULL;
    }

    if (slora_cuda_check(cudaStreamBeginCapture(c->stream,
                             cudaStreamCaptureModeThreadLocal),
                         "graph capture", err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (slora_cuda_compute(c, st, err) != SLORA_OK) {
        if (cudaStreamEndCapture(c->stream, &graph) == cudaSuccess) {
            cudaGraphDestroy(graph);
        }
        cudaGetLastError();
        return SLORA_ERROR;
    }

    rc = cudaStreamEndCapture(c->stream, &graph);
    if (rc != cudaSuccess) {
        return slora_cuda_check(rc, "graph capture", err);
    }

    rc = cudaGraphInstantiate(&slot->exec, graph, 0);
    cudaGraphDestroy(graph);

    if (rc != cudaSuccess) {
        slot->exec = NULL;
        return slora_cuda_check(rc, "graph instantiate", err);
    }

    slot->key = key;
    slot->used = ++c->graph_clock;
    c->graph_captures++;

    return slora_cuda_check(cudaGraphLaunch(slot->exec, c->stream),
                            "graph launch", err);
}


static void
slora_cuda_graphs_drop(slora_cuda_t *c)
{
    int32_t  i;

    for (i = 0; i < SLORA_CUDA_GRAPHS; i++) {
        if (c->graph[i].exec != NULL) {
            cudaGraphExecDestroy(c->graph[i].exec);
            c->graph[i].exec = NULL;
        }
    }
}


/*
 * One transformer block over all rows of the step, as in the CPU
 * backend: on entry h holds rmsnorm(x) with this layer's attn_norm, on
 * exit x has both residuals added and h the next layer's normed input.
 */

static int
slora_cuda_layer(slora_cuda_t *c, slora_cuda_step_t *st, int32_t l,
    slora_err_t *err)
{
    const slora_model_config_t  *cfg = &c->cfg;
    const slora_cuda_layer_t    *D = &c->layers[l];
    const uint16_t              *next_norm;
    uint16_t                    *x, *h, *qkv, *k, *v, *att, *o, *g, *u, *kv;
    int32_t                      n, hidden, ffn;
    int64_t                      ld;
    int                          rc;

    n = st->batch->n_tokens;
    hidden = cfg->hidden;
    ffn = cfg->ffn;
    ld = c->qkv_dim;
    x = c->x.p;
    h = c->h.p;
    qkv = c->qkv.p;
    k = qkv + c->q_dim;
    v = k + c->kv_dim;
    att = c->att.p;
    o = c->o.p;
    g = c->gu.p;
    u = g + ffn;
    kv = c->arena + st->layer_off[l];

    /* attention */

    if (slora_cuda_linear(c, qkv, ld, h, hidden, D->wqkv, D->bqkv, c->qkv_dim,
                          hidden, n, 0, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    slora_cuda_mark(c, SLORA_OP_GEMM_QKV);

    if (slora_cuda_lora(c, st, l, SLORA_PROJ_Q, qkv, ld, h, hidden, err)
        != SLORA_OK
        || slora_cuda_lora(c, st, l, SLORA_PROJ_K, k, ld, h, hidden, err)
           != SLORA_OK
        || slora_cuda_lora(c, st, l, SLORA_PROJ_V, v, ld, h, hidden, err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    slora_cuda_mark(c, SLORA_OP_LORA);

    if (slora_rope_cuda(qkv, ld, k, ld, st->pos, n, cfg->n_heads,
                        cfg->n_kv_heads, cfg->head_dim, cfg->rope_theta,
                        cfg->rope == SLORA_ROPE_NEOX ? SLORA_ROPE_LAYOUT_NEOX
                                                     : SLORA_ROPE_LAYOUT_NORM,
                        c->stream)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "rope refused");
    }

    if (slora_kv_store_cuda(kv, st->page_elems, st->tokens_per_page,
                            cfg->n_kv_heads, cfg->head_dim, &st->ix,
                            st->info.max_q_len, k, ld, v, ld, c->stream)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "paged kv store refused");
    }

    slora_cuda_mark(c, SLORA_OP_ROPE_KV);

    /* decode rows split the context (flash-decoding), prefill chunks go
     * to the tiled kernel; a shape the decode kernel does not take (-2)
     * sends every row to the tiled kernel */
    rc = slora_attention_decode_cuda(att, c->q_dim, qkv, ld, cfg->n_heads,
                                     kv, st->page_elems, st->tokens_per_page,
                                     cfg->n_kv_heads, cfg->head_dim, &st->ix,
                                     st->info.max_ctx, c->attn_work.p,
                                     c->attn_work.cap, c->stream);

    if (rc == -2) {
        rc = slora_attention_cuda(att, c->q_dim, qkv, ld, cfg->n_heads, kv,
                                  st->page_elems, st->tokens_per_page,
                                  cfg->n_kv_heads, cfg->head_dim, &st->ix,
                                  st->info.max_q_len, c->stream);

    } else if (rc == 0 && st->info.max_q_len > 1) {
        rc = slora_attention_prefill_cuda(att, c->q_dim, qkv, ld,
                                          cfg->n_heads, kv, st->page_elems,
                                          st->tokens_per_page,
                                          cfg->n_kv_heads, cfg->head_dim,
                                          &st->ix, st->info.max_q_len,
                                          c->stream);
    }

    if (rc != 0) {
        return slora_err_set(err, SLORA_ERROR, "paged attention refused");
    }

    slora_cuda_mark(c, SLORA_OP_ATTENTION);

    if (slora_cuda_linear(c, o, hidden, att, c->q_dim, D->wo, NULL, hidden,
                          c->q_dim, n, 0, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    slora_cuda_mark(c, SLORA_OP_GEMM_O);

    if (slora_cuda_lora(c, st, l, SLORA_PROJ_O, o, hidden, att, c->q_dim,
                        err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    slora_cuda_mark(c, SLORA_OP_LORA);

    if (slora_add_rmsnorm_cuda(h, hidden, x, hidden, o, hidden, D->ffn_norm,
                               n, hidden, cfg->norm_eps, c->stream)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "rmsnorm refused");
    }

    slora_cuda_mark(c, SLORA_OP_NORM);

    /* MLP */

    if (slora_cuda_linear(c, g, 2 * (int64_t) ffn, h, hidden, D->wgu, NULL,
                          2 * ffn, hidden, n, 0, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    slora_cuda_mark(c, SLORA_OP_GEMM_GU);

    if (slora_cuda_lora(c, st, l, SLORA_PROJ_GATE, g, 2 * (int64_t) ffn,
                        h, hidden, err)
        != SLORA_OK
        || slora_cuda_lora(c, st, l, SLORA_PROJ_UP, u, 2 * (int64_t) ffn,
                           h, hidden, err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (slora_silu_mul_cuda(g, 2 * (int64_t) ffn, g, 2 * (int64_t) ffn, u,
                            2 * (int64_t) ffn, n, ffn, c->stream)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "silu_mul refused");
    }

    slora_cuda_mark(c, SLORA_OP_ACT);

    if (slora_cuda_linear(c, o, hidden, g, 2 * (int64_t) ffn, D->wdown, NULL,
                          hidden, ffn, n, 0, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    slora_cuda_mark(c, SLORA_OP_GEMM_DOWN);

    if (slora_cuda_lora(c, st, l, SLORA_PROJ_DOWN, o, hidden, g,
                        2 * (int64_t) ffn, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    slora_cuda_mark(c, SLORA_OP_LORA);

    next_norm = l + 1 < cfg->n_layers ? c->layers[l + 1].attn_norm
                                      : c->out_norm;

    if (slora_add_rmsnorm_cuda(h, hidden, x, hidden, o, hidden, next_norm, n,
                               hidden, cfg->norm_eps, c->stream)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "rmsnorm refused");
    }

    slora_cuda_mark(c, SLORA_OP_NORM);

    return SLORA_OK;
}


static int
slora_cuda_linear(slora_cuda_t *c, void *y, int64_t ld_y, const uint16_t *x,
    int64_t ld_x, const uint16_t *w, const uint16_t *bias, int32_t out,
    int32_t in, int32_t n, int f32_out, slora_err_t *err)
{
    slora_cuda_gemm_shape_t  s;

    memset(&s, 0, sizeof(s));
    s.out = out;
    s.n = n;
    s.in = in;
    s.f32_out = f32_out;
    s.ld_x = ld_x;
    s.ld_y = ld_y;
    s.bias = bias != NULL;

    return slora_cuda_gemm(c->gemm, &s, y, x, w, bias, c->stream, err);
}


static int
slora_cuda_lora(slora_cuda_t *c, slora_cuda_step_t *st, int32_t l,
    slora_proj_e p, uint16_t *y, int64_t ld_y, const uint16_t *x,
    int64_t ld_x, slora_err_t *err)
{
    if (st->info.max_rank == 0) {
        return SLORA_OK;
    }

    if (slora_lora_apply_cuda(y, ld_y, x, ld_x, c->arena + st->layer_off[l],
                              slora_proj_in_dim(&c->cfg, p),
                              slora_proj_out_dim(&c->cfg, p), &st->segs[p],
                              st->batch->n_tokens, st->info.max_rank,
                              st->max_seg_len, c->lora_work.p,
                              c->lora_work.cap, c->stream)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "LoRA on %s refused",
                             slora_proj_name(p));
    }

    return SLORA_OK;
}


/*
 * The last row of every sequence that wants logits is gathered (the
 * embedding kernel over h), multiplied by the output matrix in fp32, and
 * either its argmax or the whole row comes back to the host.
 */

static int
slora_cuda_logits(slora_cuda_t *c, slora_cuda_step_t *st, slora_err_t *err)
{
    const slora_batch_t  *bt = st->batch;
    int32_t               m, hidden, vocab;

    m = st->info.n_logits;
    hidden = c->cfg.hidden;
    vocab = c->cfg.vocab;

    if (m == 0) {
        return SLORA_OK;
    }

    if (slora_embed_cuda(c->lx.p, hidden, c->h.p, bt->n_tokens, hidden,
                         st->lidx, m, NULL, c->stream)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: logits gather "
                             "refused");
    }

    if (slora_cuda_linear(c, c->lout.p, vocab, c->lx.p, hidden, c->output,
                          NULL, vocab, hidden, m, 1, err)
        != SLORA_OK)
    {
        return slora_err_prefix(err, "cuda backend: logits");
    }

    if (bt->argmax != NULL
        && slora_argmax_rows_cuda(c->ids.p, c->lout.p, vocab, m, vocab,
                                  c->stream)
           != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: argmax "
                             "refused");
    }

    return SLORA_OK;
}


/* The step's results back to the host: the argmax ids, or the logits
 * rows, each into its batch row. */

static int
slora_cuda_finish(slora_cuda_t *c, slora_cuda_step_t *st, slora_err_t *err)
{
    const slora_batch_t  *bt = st->batch;
    int32_t               m, i, vocab, *ids;
    float                *rows;

    m = st->info.n_logits;
    vocab = c->cfg.vocab;

    if (m == 0) {
        return slora_cuda_check(cudaStreamSynchronize(c->stream), "step",
                                err);
    }

    if (bt->argmax != NULL) {
        if (slora_cuda_check(cudaMemcpyAsync(c->ids_host.p, c->ids.p,
                                                (size_t) m * sizeof(int32_t),
                                                cudaMemcpyDeviceToHost,
                                                c->stream),
                                "argmax", err)
               != SLORA_OK
            || slora_cuda_check(cudaStreamSynchronize(c->stream), "step", err)
               != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        ids = c->ids_host.p;
        for (i = 0; i < m; i++) {
            bt->argmax[st->lrow[i]] = ids[i];
        }

        return SLORA_OK;
    }

    if (slora_cuda_check(cudaMemcpyAsync(c->lout_host.p, c->lout.p,
                                         (size_t) m * vocab * sizeof(float),
                                         cudaMemcpyDeviceToHost, c->stream),
                         "logits", err)
        != SLORA_OK
        || slora_cuda_check(cudaStreamSynchronize(c->stream), "step", err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    rows = c->lout_host.p;

    if (st->info.direct) {
        memcpy(bt->logits, rows, (size_t) m * vocab * sizeof(float));
        return SLORA_OK;
    }

    for (i = 0; i < m; i++) {
        memcpy(bt->logits + (int64_t) st->lrow[i] * vocab,
               rows + (int64_t) i * vocab, (size_t) vocab * sizeof(float));
    }

    return SLORA_OK;
}


static int
slora_cuda_reserve(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_cuda_layout_t *lay, slora_err_t *err)
{
    const slora_batch_t  *bt = st->batch;
    size_t                n, ns, m, rows, b16, hb16;
    int32_t               i;

    n = (size_t) bt->n_tokens;
    ns = (size_t) bt->n_seqs;
    m = (size_t) (st->info.n_logits > 0 ? st->info.n_logits : 1);
    b16 = sizeof(uint16_t);

    rows = 0;
    for (i = 0; i < bt->n_loras; i++) {
        rows += (size_t) SLORA_PROJ_N * 2 * (size_t) bt->loras[i].rank;
    }

    /* what kernels are given a pointer to first, at offsets that depend
     * on the token, sequence and logits counts only (a captured decode
     * graph keeps them); the page ids and row tables, whose sizes vary
     * from step to step, last */
    lay->tokens = 0;
    lay->pos = lay->tokens + slora_cuda_up(n * sizeof(int32_t));
    lay->qo = lay->pos + slora_cuda_up(n * sizeof(int32_t));
    lay->seq_pos = lay->qo + slora_cuda_up((ns + 1) * sizeof(int32_t));
    lay->kv_indptr = lay->seq_pos + slora_cuda_up(ns * sizeof(int32_t));
    lay->seg_indptr = lay->kv_indptr
                      + slora_cuda_up((ns + 1) * sizeof(int32_t));
    lay->rank = lay->seg_indptr + slora_cuda_up((ns + 1) * sizeof(int32_t));
    lay->scale = lay->rank
                 + slora_cuda_up(SLORA_PROJ_N * ns * sizeof(int32_t));
    lay->lidx = lay->scale + slora_cuda_up(ns * sizeof(float));
    lay->seg_a = lay->lidx + slora_cuda_up(m * sizeof(int32_t));
    lay->seg_b = lay->seg_a + slora_cuda_up(SLORA_PROJ_N * ns
                                            * sizeof(void *));
    lay->kv_indices = lay->seg_b + slora_cuda_up(SLORA_PROJ_N * ns
                                                 * sizeof(void *));
    lay->rows = lay->kv_indices
                + slora_cuda_up((size_t) st->info.n_pages * sizeof(int32_t));
    lay->total = lay->rows + slora_cuda_up(rows * sizeof(int64_t))
                 + m * sizeof(int32_t);

    hb16 = n * (size_t) c->cfg.hidden * b16;

    if (slora_cuda_grow(c, &c->x, hb16, 0, err) != SLORA_OK
        || slora_cuda_grow(c, &c->h, hb16, 0, err) != SLORA_OK
        || slora_cuda_grow(c, &c->qkv, n * c->qkv_dim * b16, 0, err)
           != SLORA_OK
        || slora_cuda_grow(c, &c->att, n * c->q_dim * b16, 0, err)
           != SLORA_OK
        || slora_cuda_grow(c, &c->o, hb16, 0, err) != SLORA_OK
        || slora_cuda_grow(c, &c->gu, n * 2 * c->cfg.ffn * b16, 0, err)
           != SLORA_OK
        || slora_cuda_grow(c, &c->lora_work,
                           slora_lora_workspace_size((int64_t) n,
                                                     st->info.max_rank),
                           0, err)
           != SLORA_OK
        || slora_cuda_grow(c, &c->attn_work,
                           slora_attention_decode_work_size(bt->n_seqs,
                               c->cfg.n_heads, c->cfg.n_kv_heads,
                               c->cfg.head_dim, st->info.max_ctx),
                           0, err)
           != SLORA_OK
        || slora_cuda_grow(c, &c->lx, m * c->cfg.hidden * b16, 0, err)
           != SLORA_OK
        || slora_cuda_grow(c, &c->lout, m * c->cfg.vocab * sizeof(float), 0,
                           err)
           != SLORA_OK
        || slora_cuda_grow(c, &c->ids, m * sizeof(int32_t), 0, err) != SLORA_OK
        || slora_cuda_grow(c, &c->ix, lay->total, 0, err) != SLORA_OK
        || slora_cuda_host_grow(&c->seg_lora, ns * sizeof(int32_t), err)
           != SLORA_OK
        || slora_cuda_host_grow(&c->lora_tab,
                                ((size_t) bt->n_loras + 1) * 2
                                * SLORA_PROJ_N * sizeof(void *), err)
           != SLORA_OK
        || slora_cuda_grow(c, &c->ix_host, lay->total, 1, err) != SLORA_OK
        || slora_cuda_grow(c, &c->ids_host, m * sizeof(int32_t), 1, err)
           != SLORA_OK
        || (bt->argmax == NULL
            && slora_cuda_grow(c, &c->lout_host,
                               m * c->cfg.vocab * sizeof(float), 1, err)
               != SLORA_OK))
    {
        return SLORA_ERROR;
    }

    return SLORA_OK;
}


/*
 * Lays the step's indices out in the pinned block (the CSR indices of
 * slora_batch_index, the logits rows, and per projection the device
 * pointers to each adapter's row tables, which follow in the same block)
 * and sends them to the device in one copy.
 */

static int
slora_cuda_index(slora_cuda_t *c, slora_cuda_step_t *st,
    const slora_cuda_layout_t *lay, slora_err_t *err)
{
    const slora_batch_t  *bt = st->batch;
    const slora_lora_t   *lo;
    slora_batch_index_t   bx;
    char                 *hb, *db;
    int64_t              *rows, **a_tab, **b_tab;
    const int64_t       **seg_a, **seg_b;
    int32_t              *lidx, s, p, i, g, ns, ng, m, r, len;
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
        if (bt->seqs[s].logits_row >= 0) {
            lidx[m] = bx.qo_indptr[s + 1] - 1;
            st->lrow[m] = bt->seqs[s].logits_row;
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
            memcpy(rows + k, lo->a_rows[p], (size_t) r * sizeof(int64_t));
            a_tab[i * SLORA_PROJ_N + p] = (int64_t *) (db + lay->rows) + k;
            k += (size_t) r;
            memcpy(rows + k, lo->b_rows[p], (size_t) r * sizeof(int64_t));
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

    st->ix.n_seqs = ns;
    st->ix.qo_indptr = (const int32_t *) (db + lay->qo);
    st->ix.seq_pos = (const int32_t *) (db + lay->seq_pos);
    st->ix.kv_indptr = (const int32_t *) (db + lay->kv_indptr);
    st->ix.kv_indices = (const int32_t *) (db + lay->kv_indices);

    tab_a_dev = (int64_t *) (db + lay->seg_a);
    tab_b_dev = (int64_t *) (db + lay->seg_b);

    for (p = 0; p < SLORA_PROJ_N; p++) {
        st->segs[p].n_segs = ng;
        st->segs[p].seg_indptr = (const int32_t *) (db + lay->seg_indptr);
        st->segs[p].rank = (const int32_t *) (db + lay->rank) + p * ng;
        st->segs[p].scale = (const float *) (db + lay->scale);
        st->segs[p].a_rows = (const int64_t *const *) tab_a_dev + p * ng;
        st->segs[p].b_rows = (const int64_t *const *) tab_b_dev + p * ng;
    }

    return SLORA_OK;
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


static int
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


static void
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


static int
slora_cuda_check(cudaError_t rc, const char *what, slora_err_t *err)
{
    if (rc == cudaSuccess) {
        return SLORA_OK;
    }

    cudaGetLastError();

    return slora_err_set(err, SLORA_ERROR, "cuda backend: %s: %s", what,
                         cudaGetErrorString(rc));
}


static void
slora_cuda_mark(slora_cuda_t *c, slora_cuda_op_e op)
{
    slora_cuda_prof_t  *p = c->prof;

    if (p == NULL || p->n >= SLORA_CUDA_MARKS) {
        return;
    }

    cudaEventRecord(p->ev[p->n], c->stream);
    p->op[p->n++] = op;
}


/* Charges the GPU time between marks to the op each mark ends. */
static void
slora_cuda_prof_step(slora_cuda_t *c, int prefill)
{
    slora_cuda_prof_t  *p = c->prof;
    float               ms;
    int                 i;

    if (p->n == 0) {
        return;
    }

    cudaEventSynchronize(p->ev[p->n - 1]);

    for (i = 1; i < p->n; i++) {
        if (cudaEventElapsedTime(&ms, p->ev[i - 1], p->ev[i]) == cudaSuccess)
        {
            p->ms[prefill][p->op[i]] += ms;
        }
    }

    p->wall_ms[prefill] += (double) (slora_now_ns() - p->t0) / 1e6;
    p->steps[prefill]++;
    p->n = 0;
}


static void
slora_cuda_prof_print(slora_cuda_t *c)
{
    slora_cuda_prof_t  *p = c->prof;
    double              sum;
    int                 k, i;

    for (k = 0; k < 2; k++) {
        if (p->steps[k] == 0) {
            continue;
        }

        sum = 0;
        for (i = 0; i < SLORA_OP_N; i++) {
            sum += p->ms[k][i];
        }

        fprintf(stderr, "cuda profile, %s steps: %llu, wall %.3f ms a step, "
                "GPU %.3f ms a step\n", k ? "prefill" : "decode-only",
                (unsigned long long) p->steps[k],
                p->wall_ms[k] / (double) p->steps[k],
                sum / (double) p->steps[k]);

        for (i = 0; i < SLORA_OP_N; i++) {
            fprintf(stderr, "  %-18s %9.3f ms a step  %5.1f%%\n",
                    slora_cuda_op_names[i],
                    p->ms[k][i] / (double) p->steps[k],
                    sum > 0 ? 100.0 * p->ms[k][i] / sum : 0.0);
        }
    }
}


static void
slora_cuda_free(slora_backend_t *b)
{
    slora_cuda_t  *c;
    int32_t        i;

    if (b == NULL) {
        return;
    }

    c = b->data;

    if (c != NULL) {
        if (c->stream != NULL) {
            cudaStreamSynchronize(c->stream);
        }

        if (c->upload != NULL) {
            cudaStreamSynchronize(c->upload);
        }

        for (i = 0; i < c->n_allocs; i++) {
            cudaFree(c->allocs[i]);
        }

        free(c->allocs);
        free(c->layers);
        cudaFree(c->arena);
        cudaFree(c->stage);

        if (c->stage_host != NULL) {
            cudaFreeHost(c->stage_host);
        }

        slora_cuda_buf_free(&c->x, 0);
        slora_cuda_buf_free(&c->h, 0);
        slora_cuda_buf_free(&c->qkv, 0);
        slora_cuda_buf_free(&c->att, 0);
        slora_cuda_buf_free(&c->o, 0);
        slora_cuda_buf_free(&c->gu, 0);
        slora_cuda_buf_free(&c->lora_work, 0);
        slora_cuda_buf_free(&c->attn_work, 0);
        slora_cuda_buf_free(&c->lx, 0);
        slora_cuda_buf_free(&c->lout, 0);
        slora_cuda_buf_free(&c->ids, 0);
        slora_cuda_buf_free(&c->ix, 0);
        slora_cuda_buf_free(&c->ix_host, 1);
        free(c->seg_lora.p);
        free(c->lora_tab.p);
        slora_cuda_buf_free(&c->lout_host, 1);
        slora_cuda_buf_free(&c->ids_host, 1);

        slora_cuda_gemm_free(c->gemm);

        if (c->upload != NULL) {
            cudaStreamDestroy(c->upload);
        }

        if (c->stream != NULL) {
            cudaStreamDestroy(c->stream);
        }

        slora_cuda_graphs_drop(c);

        if (c->prof != NULL) {
            slora_cuda_prof_print(c);
            for (i = 0; i < SLORA_CUDA_MARKS; i++) {
                cudaEventDestroy(c->prof->ev[i]);
            }
            free(c->prof);
        }

        pthread_mutex_destroy(&c->upload_lock);
        free(c);
    }

    free(b);
}
