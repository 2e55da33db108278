/*
 * slora_backend_cpu_int.h: the CPU backend's private layout, shared by
 * the backend proper (slora_backend_cpu.c: the vtable, model loading,
 * the arena, batch checks and the layer loop) and its ops
 * (slora_backend_cpu_ops.c: the weight packing and the parallel ops).
 *
 * The one idea: a parallel op is a closure struct handed to the pool;
 * the layer loop fills one and calls the op's entry point, and the op
 * reads everything else (scratch, quantized weights, the pool) from
 * slora_cpu_t.
 */

#ifndef SLORA_BACKEND_CPU_INT_H
#define SLORA_BACKEND_CPU_INT_H


#include <stdatomic.h>

#include "slora_core.h"
#include "slora_model.h"
#include "slora_batch.h"
#include "slora_backend.h"
#include "slora_threads.h"

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
    slora_cpu_buf_t               seg_indptr;   /* [n_seqs + 1] int32 */
    slora_cpu_buf_t               seg_lora;     /* [n_seqs] int32 */
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
    slora_cpu_buf_t               draw_work;    /* slora_sample_row's */
} slora_cpu_t;


/* What one forward call derives from the batch before the layer loop. */
typedef struct {
    const slora_batch_t          *batch;
    const int64_t                *layer_off;
    slora_paged_kv_t              kv;
    slora_seq_index_t             ix;
    slora_lora_segs_t             segs[SLORA_PROJ_N];
    slora_batch_info_t            info;
    int64_t                       attention_ns;
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
    const float                  *q_norm;       /* Qwen3's, or NULL */
    const float                  *k_norm;
    int                           nth;          /* attention's shares */
    _Atomic int                   failed;
} slora_cpu_attn_op_t;


int slora_cpu_quantize_weights(slora_cpu_t *c, slora_err_t *err);
int slora_cpu_linear(slora_cpu_t *c, slora_cpu_linear_op_t *op);
int slora_cpu_norm(slora_cpu_t *c, float *out, float *x, const float *res,
    const float *w, int32_t n);
int slora_cpu_lora(slora_cpu_t *c, slora_cpu_step_t *st, int32_t l,
    slora_proj_e p, float *y, const float *x, slora_err_t *err);
void slora_cpu_act_share(void *ctx, int ith, int nth);
void slora_cpu_rope_share(void *ctx, int ith, int nth);
void slora_cpu_attn_share(void *ctx, int ith, int nth);
void slora_cpu_par(slora_cpu_t *c, int64_t elems, slora_threads_fn fn,
    void *ctx);


#endif /* SLORA_BACKEND_CPU_INT_H */
