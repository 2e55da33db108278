/*
 * slora_cuda_int.h: the CUDA backend's private layout, shared by its
 * files: the backend proper (slora_cuda_backend.c: the vtable, weights,
 * the layer loop, results), a step's scratch and indices
 * (slora_cuda_step.c), the decode graphs and the step profile
 * (slora_cuda_graph.c), uploads and the host tier's memory
 * (slora_cuda_upload.c), and tensor parallelism (slora_cuda_tp.c: one
 * slora_cuda_t a GPU, each holding a Megatron shard, and the all-reduces
 * between them). Built into libslora_cuda.so only.
 *
 * The one idea: everything a step needs on the device lives in buffers
 * that only grow, so a captured decode graph stays valid until one of
 * them moves (graphs_stale).
 */

#ifndef SLORA_CUDA_INT_H
#define SLORA_CUDA_INT_H


#include <pthread.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include "slora_core.h"
#include "slora_model.h"
#include "slora_batch.h"
#include "slora_backend.h"
#include "slora_cuda_gemm.h"
#include "slora_meet.h"
#include "slora_spares.h"

#include "slora_allreduce.h"
#include "slora_attention.h"
#include "slora_gemv.h"
#include "slora_lora.h"


#define SLORA_CUDA_STAGE       (16 << 20)       /* f32 elements per upload */
#define SLORA_CUDA_STAGE_BYTES ((int64_t) SLORA_CUDA_STAGE * 4)
#define SLORA_CUDA_GEMM_WORK   (32 << 20)       /* cuBLASLt workspace */
#define SLORA_CUDA_ALIGN       16
#define SLORA_CUDA_MARKS       4096             /* profile events a step */
#define SLORA_CUDA_GRAPHS      16               /* decode graphs kept */
#define SLORA_CUDA_GRAPH_SEEN  32               /* keys remembered, so
                                                   that a key is captured
                                                   on its second step */
#define SLORA_CUDA_FORK_MAX    64               /* tokens of a step whose
                                                   LoRA shrinks fork */
#define SLORA_CUDA_TP_MAX      8                /* GPUs of one model */
#define SLORA_CUDA_AR_CAP      (8 << 20)        /* one-shot all-reduce bytes */
#define SLORA_CUDA_SPARE_BYTES ((size_t) 2 << 30)  /* freed pinned images
                                                   kept for reuse */

/* f32 elements of one projection's x A, [n, max_rank] rounded up to 16
 * bytes, so q, k and v sit side by side for one launch and, on a
 * tensor-parallel rank, one all-reduce */
#define slora_cuda_lora_part(n, max_rank)                                   \
    ((((int64_t) (n) * (max_rank)) + 3) & ~(int64_t) 3)


/* What the step profile ($SLORA_CUDA_PROFILE) charges time to. */
typedef enum {
    SLORA_OP_INDEX = 0, SLORA_OP_EMBED, SLORA_OP_GEMM_QKV, SLORA_OP_LORA,
    SLORA_OP_ROPE_KV, SLORA_OP_ATTENTION, SLORA_OP_GEMM_O, SLORA_OP_NORM,
    SLORA_OP_GEMM_GU, SLORA_OP_ACT, SLORA_OP_GEMM_DOWN, SLORA_OP_LOGITS,
    SLORA_OP_COMM, SLORA_OP_N
} slora_cuda_op_e;


typedef struct {
    cudaEvent_t               ev[SLORA_CUDA_MARKS];
    int                       op[SLORA_CUDA_MARKS];
    int                       n;
    double                    ms[2][SLORA_OP_N];  /* [prefill?][op] */
    double                    wall_ms[2];
    uint64_t                  steps[2];
    uint64_t                  skip;             /* first steps left out */
    uint64_t                  skipped;
    int64_t                   t0;
    uint64_t                  writes;           /* arena writes (uploads) */
    double                    write_mb;
    double                    write_host_ms;    /* the caller's time */
} slora_cuda_prof_t;


typedef struct {
    void                     *p;
    size_t                    cap;
} slora_cuda_buf_t;


typedef struct {
    uint16_t                 *attn_norm;        /* [hidden] */
    uint16_t                 *wqkv;             /* [q + 2 kv, hidden] */
    uint16_t                 *bqkv;             /* [q + 2 kv] or NULL */
    uint16_t                 *q_norm;           /* [head_dim] or NULL:
                                                   Qwen3's head norms */
    uint16_t                 *k_norm;
    uint16_t                 *wo;               /* [hidden, q] */
    uint16_t                 *ffn_norm;         /* [hidden] */
    uint16_t                 *wgu;              /* [2 ffn, hidden] */
    uint16_t                 *wdown;            /* [hidden, ffn] */
} slora_cuda_layer_t;


/* What a captured decode step depends on (slora_cuda_graph_get). */
typedef struct {
    int32_t                   n_seqs;
    int32_t                   n_logits;
    int32_t                   max_rank;
    uint32_t                  proj_mask;        /* LoRA launches made */
    slora_dec_shape_t         dec;              /* decode attention plan */
    int32_t                   argmax;
    int32_t                   draws;
    int32_t                   score_k;          /* -1: no scores */
    int32_t                   n_segs;           /* LoRA launches' grids */
    int32_t                   max_seg_len;
} slora_cuda_gkey_t;


typedef struct {
    slora_cuda_gkey_t         key;
    cudaGraphExec_t           exec;             /* NULL: free slot */
    uint64_t                  used;
} slora_cuda_graph_t;


/*
 * What tensor-parallel ranks that share GPUs (SLORA_TP_SHARE_GPUS) share
 * besides the meeting of every step (slora_cuda_comm_t's meet). A
 * kernel that spins on a GPU until its peers' come can hold the SMs that
 * a peer's own kernels wait for there, so such ranks sum without one:
 * each copies its part into its staging, and once all have (the staged
 * events, their records ordered by a meeting of the ranks' threads),
 * each sums every rank's staging (slora_cuda_allreduce).
 */
typedef struct {
    cudaEvent_t               staged[SLORA_CUDA_TP_MAX];  /* a rank's copy
                                                             done */
    cudaEvent_t               read[SLORA_CUDA_TP_MAX];    /* its sum read
                                                             the others' */
} slora_cuda_share_t;


/*
 * The sums a tensor-parallel rank makes with its peers: the one-shot
 * kernel (kernels/slora_allreduce.cu) for what fits, NCCL (loaded with
 * dlopen() by slora_cuda_tp.c, so a single GPU never needs it) for the
 * rest.
 */
typedef struct {
    void                     *nccl;             /* ncclComm_t */
    slora_allreduce_t        *ar;               /* NULL: NCCL only */
    int                       lora_comm;        /* 0: the ablation */
    slora_meet_t             *meet;             /* the ranks' threads */
    slora_cuda_share_t       *share;            /* NULL: a GPU a rank */
    uint64_t                  n_one_shot;       /* calls, for the log */
    uint64_t                  n_nccl;
} slora_cuda_comm_t;


typedef struct {
    int                       device;
    int32_t                   tp_rank;          /* this GPU's shard */
    int32_t                   tp_n;             /* 1: no parallelism */
    slora_cuda_comm_t         comm;
    uint64_t                  fail_at;          /* $SLORA_CUDA_TP_FAIL's
                                                   step; 0: none */
    uint64_t                  steps;            /* with tokens, so far */
    cudaStream_t              stream;           /* compute */
    cudaStream_t              side;             /* LoRA shrinks beside
                                                   the base GEMM */
    cudaEvent_t               fork;             /* stream -> side */
    cudaEvent_t               join;             /* side -> stream */
    cudaEvent_t               busy[2];          /* a forward's device
                                                   work: first, last */
    int64_t                   device_ns;        /* between them, the last
                                                   forward */
    cudaStream_t              upload;           /* adapter rows */
    cudaEvent_t               uploaded;         /* at the last fence */
    cudaEvent_t               written;          /* the last upload's end */
    pthread_mutex_t           upload_lock;
    slora_cuda_gemm_t        *gemm;

    const slora_model_t      *model;
    slora_model_config_t      cfg;              /* this shard's heads, ffn */
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

    float                    *stage;            /* device, f32, a ring */
    int64_t                   ring;             /* its next free byte */
    float                    *stage_host;       /* pinned, f32 */

    /* device rows, grown to the largest step seen */
    slora_cuda_buf_t          x;                /* [n, hidden] residual */
    slora_cuda_buf_t          h;                /* [n, hidden] normed */
    slora_cuda_buf_t          qkv;              /* [n, qkv_dim] */
    slora_cuda_buf_t          att;              /* [n, q_dim] */
    slora_cuda_buf_t          o;                /* [n, hidden] */
    slora_cuda_buf_t          gu;               /* [n, 2 ffn] */
    slora_cuda_buf_t          lora_work;
    slora_cuda_buf_t          lora_delta;       /* f32 [n, max(qkv, hidden)]:
                                                   a decode expand's out */
    slora_cuda_buf_t          attn_work;        /* decode splits */
    slora_cuda_buf_t          lx;               /* [m, hidden] */
    slora_cuda_buf_t          lout;             /* [m, vocab] f32 */
    slora_cuda_buf_t          ids;              /* [m] argmax */
    slora_cuda_buf_t          scores;           /* [m] slora_score_t */
    slora_cuda_buf_t          ix;               /* the step's indices */
    slora_cuda_buf_t          rope;             /* slora_rope_table() */
    int32_t                   rope_pos;         /* positions it holds */

    /* host scratch of the index: segments' adapters, row table
     * addresses */
    slora_cuda_buf_t          seg_lora;
    slora_cuda_buf_t          lora_tab;

    /* pinned host twins */
    slora_cuda_buf_t          ix_host;
    slora_cuda_buf_t          lout_host;
    slora_cuda_buf_t          ids_host;
    slora_cuda_buf_t          scores_host;

    slora_cuda_prof_t        *prof;             /* NULL: off */

    int                       graphs;           /* decode graphs on */
    int                       forks;            /* LoRA's shrink beside
                                                   the GEMM (side) */
    int                       graph_edges;      /* print each capture's
                                                   edge census */
    int                       graphs_stale;     /* scratch moved */
    slora_cuda_graph_t        graph[SLORA_CUDA_GRAPHS];
    uint64_t                  graph_clock;
    uint64_t                  graph_captures;
    slora_cuda_gkey_t         graph_seen[SLORA_CUDA_GRAPH_SEEN];
    int32_t                   graph_seen_n;     /* filled, up to SEEN */
    int32_t                   graph_seen_next;  /* the next one replaced */
} slora_cuda_t;


/* The host tier's pinned memory for a model's GPUs (slora_cuda_upload.c):
 * the backend's host_mem.ctx. */
typedef struct {
    slora_cuda_t             *rank[SLORA_CUDA_TP_MAX];
    int32_t                   n;
    slora_spares_t           *spares;
} slora_cuda_host_t;


/* Where the step's indices sit in the ix block (byte offsets). */
typedef struct {
    size_t                    tokens, pos, qo, seq_pos, kv_indptr, dec_items,
                              dec_first, seg_indptr, tiles;
    size_t                    kv_indices, rank, scale, lidx, draws,
                              score_tok, seg_a, seg_b;
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
    const slora_draw_t       *draws;            /* device, [m], or NULL */
    const int32_t            *score_tok;        /* device, [m], or NULL */
    int32_t                  *lrow;             /* host, [m] */
    slora_dec_shape_t         dec;              /* the decode attention's
                                                   split and work list */
    int32_t                   n_segs;           /* LoRA segments */
    int32_t                   max_seg_len;      /* tokens of the longest */
} slora_cuda_step_t;


/* slora_cuda_backend.c: one GPU, or one rank of several */
slora_cuda_t *slora_cuda_rank_create(int device, int32_t tp_rank,
    int32_t tp_n, slora_err_t *err);
int slora_cuda_rank_load(slora_cuda_t *c, const slora_model_t *m,
    slora_err_t *err);
int slora_cuda_rank_arena(slora_cuda_t *c, size_t bytes, slora_err_t *err);
int slora_cuda_rank_forward(slora_cuda_t *c, const slora_batch_t *batch,
    const int64_t *layer_off, int64_t page_elems, int32_t tokens_per_page,
    slora_err_t *err);
size_t slora_cuda_rank_mem_free(slora_cuda_t *c);
void slora_cuda_rank_free(slora_cuda_t *c);
int slora_cuda_compute(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_err_t *err);

/* slora_cuda_upload.c */
int slora_cuda_rank_write(slora_cuda_t *c, int64_t off, const float *src,
    int64_t n, slora_err_t *err);
int slora_cuda_rank_write_cols(slora_cuda_t *c, int64_t off,
    const float *src, int32_t rows, int32_t width, int64_t ld,
    slora_err_t *err);
int slora_cuda_rank_write_pages(slora_cuda_t *c, const void *src,
    int32_t elem_size, int32_t n, int64_t page_elems, const int64_t *dst,
    int32_t part, int32_t parts, slora_err_t *err);
int slora_cuda_rank_read(slora_cuda_t *c, int64_t off, float *dst,
    int64_t n, slora_err_t *err);
int slora_cuda_upload(slora_cuda_t *c, uint16_t *dst, const float *src,
    int64_t n, slora_err_t *err);
int slora_cuda_upload_cols(slora_cuda_t *c, uint16_t *dst, const float *src,
    int32_t rows, int64_t width, int64_t ld, slora_err_t *err);
int slora_cuda_rank_fence(slora_cuda_t *c, slora_err_t *err);
int slora_cuda_host_init(slora_cuda_host_t *h, slora_cuda_t *const *rank,
    int32_t n, slora_host_mem_t *mem, slora_err_t *err);
void slora_cuda_host_done(slora_cuda_host_t *h);
void *slora_cuda_host_alloc(void *ctx, size_t bytes);
void slora_cuda_host_free(void *ctx, void *p, size_t bytes);
void slora_cuda_host_release(void *p);

/* slora_cuda_tp.c */
slora_backend_t *slora_cuda_tp_create(int device, int32_t tp_n,
    slora_err_t *err);
int slora_cuda_allreduce(slora_cuda_t *c, void *buf, int64_t n, int f32,
    slora_err_t *err);

/* slora_cuda_step.c */
int slora_cuda_reserve(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_cuda_layout_t *lay, slora_err_t *err);
int slora_cuda_index(slora_cuda_t *c, slora_cuda_step_t *st,
    const slora_cuda_layout_t *lay, slora_err_t *err);
int slora_cuda_lost(slora_cuda_t *c, slora_err_t *err);
int slora_cuda_grow(slora_cuda_t *c, slora_cuda_buf_t *buf, size_t need,
    int pinned, slora_err_t *err);
void slora_cuda_buf_free(slora_cuda_buf_t *buf, int pinned);
int slora_cuda_check(cudaError_t rc, const char *what, slora_err_t *err);
size_t slora_cuda_up(size_t n);

/*
 * Whether a step's LoRA expands run beside the base GEMMs, into fp32
 * deltas (slora_cuda_backend.c, slora_cuda_lora_delta): decode steps
 * past the GEMV's rows, with adapters, on one GPU. The delta buffer is
 * sized for such steps only (slora_cuda_reserve): prompts never need it.
 */
static inline int
slora_cuda_lora_deltas(const slora_cuda_t *c, const slora_cuda_step_t *st)
{
    return c->tp_n == 1 && st->info.max_q_len == 1 && st->info.max_rank > 0
           && st->batch->n_tokens > SLORA_GEMV_MAX_N;
}

/* slora_cuda_lora.c */
typedef struct {
    slora_proj_e              p;
    uint16_t                 *y;
    int64_t                   ld_y;
} slora_cuda_lora_out_t;


/* One LoRA call over projections sharing an input: its shrink, launched
 * before their base GEMM, then its expand after it; or, where the kernel
 * after the GEMM can add a delta (may_delta), the expand too before the
 * GEMM, into fp32 deltas that kernel adds (delta). */
typedef struct {
    const slora_cuda_lora_out_t  *out;
    int                           n_out;
    int                           forked;     /* shrink on c->side */
    int                           may_delta;
    const float                  *delta;      /* [n, ld of out[0]] */
    const uint16_t               *x;
    int64_t                       ld_x;
    int32_t                       l;
} slora_cuda_lora_call_t;

/* whether any row of the step has an adapter on one of lc's
 * projections */
int slora_cuda_lora_wanted(const slora_cuda_step_t *st,
    const slora_cuda_lora_call_t *lc);
int slora_cuda_lora_shrink(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_cuda_lora_call_t *lc, slora_err_t *err);
int slora_cuda_lora_expand(slora_cuda_t *c, slora_cuda_step_t *st,
    const slora_cuda_lora_call_t *lc, slora_err_t *err);


/* slora_cuda_graph.c */

int slora_cuda_graph_get(slora_cuda_t *c, slora_cuda_step_t *st,
    cudaGraphExec_t *exec, slora_err_t *err);
void slora_cuda_graphs_drop(slora_cuda_t *c);
void slora_cuda_mark(slora_cuda_t *c, slora_cuda_op_e op);
void slora_cuda_prof_step(slora_cuda_t *c, int prefill);
void slora_cuda_prof_print(slora_cuda_t *c);


#endif /* SLORA_CUDA_INT_H */
