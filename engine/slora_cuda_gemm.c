/*
 * slora_cuda_gemm.c: the CUDA backend's base projections through
 * cuBLASLt: y[n, out] = x[n, in] W^T (+ bias), bf16 in, fp32 accumulate,
 * bf16 or fp32 out.
 *
 * The one idea: asking cuBLASLt for an algorithm costs more than a small
 * decode GEMM itself, so the descriptors and the chosen algorithm are
 * made once per shape (out, n, in, strides, output type, bias) and kept
 * in an open-addressed table; a steady stream of decode steps looks
 * nothing up but the table. Prefill chunks of every length make shapes
 * of their own, so a full table drops the shapes of more than
 * SLORA_GEMM_KEEP_N rows and keeps the decode ones.
 *
 * A decode step's projection does not come here at all where our own
 * kernels stream W faster than cuBLASLt's thin ones. A large W at
 * SLORA_GEMM_MMA_LO to SLORA_GEMM_MMA_HI rows goes to the TMA and wgmma
 * kernel (kernels/slora_gemv_mma.cu), except where the rest measured
 * faster on an H200 (bench/RESULTS.md, 18:49-19:17): a single row of a
 * wide W (q,k,v and gate,up of the 7B, over 64 W rows a block) goes to
 * the CUDA-core GEMV (kernels/slora_gemv.cu); over 48 rows of the widest
 * (over 128 W rows a block: gate,up), to cuBLASLt. A GEMM with LoRA's
 * shrink and expand beside it gives the kernel SLORA_GEMM_MMA_BESIDE
 * percent of the SMs, the rest to them: on every SM it would hold them
 * up until its end (a step of 64 rows with adapters 0.27 ms faster than
 * with cuBLASLt there, bench/RESULTS.md, 20:03). A step of at most
 * SLORA_GEMV_MAX_N rows that the first leaves goes to the GEMV. With
 * LoRA beside it, the kernel lets the one after it (the expand that
 * joins it) in SLORA_GEMM_LET_IN stages before its end, so that its
 * launch hides behind the GEMM's last stages; with nothing beside, at
 * its exit: what follows a plain GEMM (RoPE, a norm, the next GEMM)
 * would sit beside those stages and slow them (bench/RESULTS.md,
 * 2026-12-06 02:11-02:23: -0.2 ms a step at 64 rows with adapters, +0.1
 * without). $SLORA_CUDA_WS_LET_IN=N sets the stages (below 0: at the
 * exit too).
 * $SLORA_CUDA_MMA=lo-hi moves the first range (0: none) and
 * $SLORA_CUDA_THIN=0 sends every shape to cuBLASLt, for A/B runs in one
 * call.
 *
 * The MLP's gate and up with no LoRA on them in the step take the
 * kernel's fused form where it takes their rows at all
 * (slora_cuda_gemm_glu): silu(gate) * up comes out of the GEMM, whose
 * launch then stands for three (GEMM, SiLU-and-mul and the gap after
 * cuBLASLt, which launches nothing early). $SLORA_CUDA_GLU=0 keeps the
 * GEMM and SiLU-and-mul apart.
 *
 * Row-major y = x W^T is column-major y^T = W^T' x^T': W (row-major
 * [out, in]) read as column-major [in, out] and transposed, x read as
 * column-major [in, n], y written as column-major [out, n].
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_cuda_gemm.h"
#include "slora_gemv.h"


#define SLORA_GEMM_SLOTS   4096         /* a power of two */
#define SLORA_GEMM_KEEP_N  256          /* rows of the shapes kept */
#define SLORA_GEMM_WARM_DIM  256        /* the plan made at creation */
#define SLORA_GEMM_MMA_LO  2          /* rows where the TMA kernel wins */
#define SLORA_GEMM_MMA_HI  64
#define SLORA_GEMM_MMA_BESIDE  80     /* percent of the SMs it takes
                                         with LoRA beside it */
#define SLORA_GEMM_LET_IN  4          /* ... and the stages before its
                                         end at which it lets the expand
                                         in */
#define SLORA_GEMM_MMA_MIN_W  (1 << 22) /* W's elements: below, launch
                                         * costs rule, not the stream */
#define SLORA_GEMM_GEMV_WIDE  64      /* W rows a block over which one
                                       * row streams faster on the GEMV */
#define SLORA_GEMM_BLAS_WIDE  128     /* ... and over which cuBLASLt */
#define SLORA_GEMM_BLAS_WIDE_N  48    /* ... is faster past these rows */


typedef struct {
    int                        used;
    slora_cuda_gemm_shape_t    key;
    cublasLtMatmulDesc_t       op;
    cublasLtMatrixLayout_t     la;
    cublasLtMatrixLayout_t     lb;
    cublasLtMatrixLayout_t     lc;
    cublasLtMatmulAlgo_t       algo;
} slora_cuda_gemm_plan_t;


struct slora_cuda_gemm_s {
    cublasLtHandle_t           lt;
    void                      *work;
    size_t                     work_size;
    slora_cuda_gemm_plan_t    *plans;       /* [SLORA_GEMM_SLOTS] */
    int32_t                    n_plans;
    int                        thin;        /* our kernels for few rows */
    int32_t                    mma_lo;      /* rows for the TMA kernel */
    int32_t                    mma_hi;
    int                        glu;         /* its fused MLP form */
    int32_t                    let_in;      /* with LoRA beside it */
    int64_t                    setup_ns;    /* slora_cuda_gemm_setup_ns */
};


static slora_cuda_gemm_plan_t *slora_cuda_gemm_plan(slora_cuda_gemm_t *g,
    const slora_cuda_gemm_shape_t *s, slora_err_t *err);
static int slora_cuda_gemm_make(slora_cuda_gemm_t *g,
    slora_cuda_gemm_plan_t *p, slora_err_t *err);
static int32_t slora_cuda_gemm_mma(slora_cuda_gemm_t *g,
    const slora_cuda_gemm_shape_t *s, int aligned);
static void slora_cuda_gemm_evict(slora_cuda_gemm_t *g);
static void slora_cuda_gemm_plan_free(slora_cuda_gemm_plan_t *p);
static uint64_t slora_cuda_gemm_hash(const slora_cuda_gemm_shape_t *s);


slora_cuda_gemm_t *
slora_cuda_gemm_create(size_t work_size, slora_err_t *err)
{
    slora_cuda_gemm_t       *g;
    slora_cuda_gemm_shape_t  warm;
    cublasStatus_t           st;
    const char              *e;

    g = calloc(1, sizeof(slora_cuda_gemm_t));
    if (g == NULL) {
        slora_err_set(err, SLORA_ERROR, "cuda backend: out of memory");
        return NULL;
    }

    g->plans = calloc(SLORA_GEMM_SLOTS, sizeof(slora_cuda_gemm_plan_t));
    if (g->plans == NULL) {
        free(g);
        slora_err_set(err, SLORA_ERROR, "cuda backend: out of memory");
        return NULL;
    }

    st = cublasLtCreate(&g->lt);
    if (st != CUBLAS_STATUS_SUCCESS) {
        free(g->plans);
        free(g);
        slora_err_set(err, SLORA_ERROR, "cuda backend: cublasLtCreate: "
                      "status %d", (int) st);
        return NULL;
    }

    if (work_size > 0 && cudaMalloc(&g->work, work_size) != cudaSuccess) {
        cublasLtDestroy(g->lt);
        free(g->plans);
        free(g);
        slora_err_set(err, SLORA_ERROR, "cuda backend: cannot allocate "
                      "%zu bytes of GEMM workspace", work_size);
        return NULL;
    }

    g->work_size = work_size;

    g->thin = getenv("SLORA_CUDA_THIN") == NULL
              || strcmp(getenv("SLORA_CUDA_THIN"), "0") != 0;
    g->mma_lo = SLORA_GEMM_MMA_LO;
    g->mma_hi = SLORA_GEMM_MMA_HI;
    g->glu = getenv("SLORA_CUDA_GLU") == NULL
             || strcmp(getenv("SLORA_CUDA_GLU"), "0") != 0;
    e = getenv("SLORA_CUDA_WS_LET_IN");
    g->let_in = e != NULL && *e != '\0' ? (int32_t) atoi(e)
                                        : SLORA_GEMM_LET_IN;

    e = getenv("SLORA_CUDA_MMA");
    if (e != NULL && (sscanf(e, "%d-%d", &g->mma_lo, &g->mma_hi) != 2
                      || g->mma_lo < 1 || g->mma_hi > SLORA_GEMV_MMA_MAX_N))
    {
        g->mma_lo = 1;          /* "0", or anything else: none */
        g->mma_hi = 0;
    }

    /* cuBLASLt's first algorithm query in a process sets the library up:
     * 0.1 s on an H200, which the first prompt long enough for cuBLASLt
     * paid (bench/RESULTS.md, 20:14). One plan now moves it to start;
     * later shapes' plans take a fraction of a millisecond */
    memset(&warm, 0, sizeof(warm));
    warm.out = SLORA_GEMM_WARM_DIM;
    warm.in = SLORA_GEMM_WARM_DIM;
    warm.n = SLORA_GEMM_WARM_DIM;
    warm.ld_x = SLORA_GEMM_WARM_DIM;
    warm.ld_y = SLORA_GEMM_WARM_DIM;

    if (slora_cuda_gemm_plan(g, &warm, err) == NULL) {
        slora_cuda_gemm_free(g);
        return NULL;
    }

    g->setup_ns = 0;

    return g;
}


void
slora_cuda_gemm_free(slora_cuda_gemm_t *g)
{
    int32_t  i;

    if (g == NULL) {
        return;
    }

    for (i = 0; i < SLORA_GEMM_SLOTS; i++) {
        if (g->plans[i].used) {
            slora_cuda_gemm_plan_free(&g->plans[i]);
        }
    }

    cudaFree(g->work);
    cublasLtDestroy(g->lt);
    free(g->plans);
    free(g);
}


int64_t
slora_cuda_gemm_setup_ns(const slora_cuda_gemm_t *g)
{
    return g->setup_ns;
}


int
slora_cuda_gemm(slora_cuda_gemm_t *g, const slora_cuda_gemm_shape_t *s,
    void *y, const uint16_t *x, const uint16_t *w, const uint16_t *bias,
    cudaStream_t stream, slora_err_t *err)
{
    slora_cuda_gemm_plan_t  *p;
    cublasStatus_t           st;
    slora_cuda_gemm_shape_t  key;
    float                    alpha, beta;
    int32_t                  tr;
    int                      aligned;

    if (s->n == 0) {
        return SLORA_OK;
    }

    aligned = s->in % 8 == 0 && s->ld_x % 8 == 0 && ((uintptr_t) x & 15) == 0
              && ((uintptr_t) w & 15) == 0;

    tr = slora_cuda_gemm_mma(g, s, aligned);

    if (tr > 0) {
        if (slora_gemv_mma_cuda(y, s->ld_y, s->f32_out, x, s->ld_x, w,
                                s->bias ? bias : NULL, s->n, s->out, s->in,
                                tr, s->beside ? g->let_in : -1, stream)
            != 0)
        {
            return slora_err_set(err, SLORA_ERROR, "cuda backend: tensor-"
                                 "core GEMV [%d x %d] x [%d x %d]^T refused",
                                 s->n, s->in, s->out, s->in);
        }

        return SLORA_OK;
    }

    if (g->thin && aligned && s->n <= SLORA_GEMV_MAX_N) {
        if (slora_gemv_cuda(y, s->ld_y, s->f32_out, x, s->ld_x, w,
                            s->bias ? bias : NULL, s->n, s->out, s->in,
                            stream)
            != 0)
        {
            return slora_err_set(err, SLORA_ERROR, "cuda backend: GEMV "
                                 "[%d x %d] x [%d x %d]^T refused", s->n,
                                 s->in, s->out, s->in);
        }

        return SLORA_OK;
    }

    /* what runs beside a GEMM does not change cuBLASLt's plan for it */
    key = *s;
    key.beside = 0;

    p = slora_cuda_gemm_plan(g, &key, err);
    if (p == NULL) {
        return SLORA_ERROR;
    }

    if (s->bias) {
        st = cublasLtMatmulDescSetAttribute(p->op,
                                            CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                            &bias, sizeof(bias));
        if (st != CUBLAS_STATUS_SUCCESS) {
            return slora_err_set(err, SLORA_ERROR, "cuda backend: GEMM bias: "
                                 "status %d", (int) st);
        }
    }

    alpha = 1.0f;
    beta = 0.0f;

    st = cublasLtMatmul(g->lt, p->op, &alpha, w, p->la, x, p->lb, &beta, y,
                        p->lc, y, p->lc, &p->algo, g->work, g->work_size,
                        stream);

    if (st != CUBLAS_STATUS_SUCCESS) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: GEMM [%d x %d] "
                             "x [%d x %d]^T: status %d", s->n, s->in, s->out,
                             s->in, (int) st);
    }

    return SLORA_OK;
}


int
slora_cuda_gemm_glu(slora_cuda_gemm_t *g, const slora_cuda_gemm_shape_t *s,
    uint16_t *y, const uint16_t *x, const uint16_t *w, cudaStream_t stream,
    slora_err_t *err)
{
    int32_t  tr;

    if (s->n == 0) {
        return SLORA_OK;
    }

    /* the rows where the kernel takes a GEMM, but for cuBLASLt's past
     * SLORA_GEMM_BLAS_WIDE_N, where the fused form makes up for its
     * slower stream; a single row of a wide W stays on the GEMV */
    tr = slora_gemv_mma_rows(s->out, 100);

    if (!g->glu || !g->thin || s->bias || s->f32_out || s->beside
        || s->in % 8 != 0 || s->ld_x % 8 != 0 || ((uintptr_t) x & 15) != 0
        || ((uintptr_t) w & 15) != 0 || s->n < g->mma_lo || s->n > g->mma_hi
        || 2 * (int64_t) s->out * s->in < SLORA_GEMM_MMA_MIN_W
        || 2 * tr > SLORA_GEMV_MMA_MAX_ROWS
        || (s->n == 1 && 2 * tr > SLORA_GEMM_GEMV_WIDE))
    {
        return SLORA_DECLINED;
    }

    if (slora_gemv_mma_glu_cuda(y, s->ld_y, x, s->ld_x, w, s->n, s->out,
                                s->in, tr, stream)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: tensor-core "
                             "gate and up [%d x %d] x [%d x %d]^T refused",
                             s->n, s->in, 2 * s->out, s->in);
    }

    return SLORA_OK;
}


/* the W rows a block of the TMA and wgmma kernel takes for this shape,
 * or 0 for a shape it does not take (the paragraph atop says why): by
 * its rows, W's size, the rows a block of it would take and what runs
 * beside it */
static int32_t
slora_cuda_gemm_mma(slora_cuda_gemm_t *g, const slora_cuda_gemm_shape_t *s,
    int aligned)
{
    int32_t  tr;

    if (!g->thin || !aligned || s->n < g->mma_lo || s->n > g->mma_hi
        || (int64_t) s->out * s->in < SLORA_GEMM_MMA_MIN_W)
    {
        return 0;
    }

    tr = slora_gemv_mma_rows(s->out, s->beside ? SLORA_GEMM_MMA_BESIDE : 100);

    if ((s->n == 1 && tr > SLORA_GEMM_GEMV_WIDE)
        || (s->n > SLORA_GEMM_BLAS_WIDE_N && tr > SLORA_GEMM_BLAS_WIDE))
    {
        return 0;
    }

    return tr;
}


static slora_cuda_gemm_plan_t *
slora_cuda_gemm_plan(slora_cuda_gemm_t *g, const slora_cuda_gemm_shape_t *s,
    slora_err_t *err)
{
    slora_cuda_gemm_plan_t  *p;
    uint64_t                 h;
    int64_t                  t0;
    int32_t                  i;
    int                      rc;

    h = slora_cuda_gemm_hash(s);

    for (i = 0; i < SLORA_GEMM_SLOTS; i++) {
        p = &g->plans[(h + (uint64_t) i) & (SLORA_GEMM_SLOTS - 1)];

        if (!p->used) {
            break;
        }

        if (memcmp(&p->key, s, sizeof(*s)) == 0) {
            return p;
        }
    }

    if (i == SLORA_GEMM_SLOTS || g->n_plans >= SLORA_GEMM_SLOTS / 4 * 3) {
        slora_cuda_gemm_evict(g);
        return slora_cuda_gemm_plan(g, s, err);
    }

    memset(p, 0, sizeof(*p));
    p->key = *s;
    t0 = slora_now_ns();
    rc = slora_cuda_gemm_make(g, p, err);
    g->setup_ns += slora_now_ns() - t0;

    if (rc != SLORA_OK) {
        slora_cuda_gemm_plan_free(p);
        memset(p, 0, sizeof(*p));
        return NULL;
    }

    p->used = 1;
    g->n_plans++;

    return p;
}


/*
 * A full table drops the plans of more than SLORA_GEMM_KEEP_N rows,
 * which cost a heuristic query to make again, and keeps the rest (at
 * most half the table; past that everything goes). Captured graphs hold
 * their own launches and need no plan.
 */

static void
slora_cuda_gemm_evict(slora_cuda_gemm_t *g)
{
    slora_cuda_gemm_plan_t  *keep, *p;
    int32_t                  i, j, n_keep;
    uint64_t                 h;

    keep = malloc(sizeof(slora_cuda_gemm_plan_t) * SLORA_GEMM_SLOTS / 2);
    n_keep = 0;

    for (i = 0; i < SLORA_GEMM_SLOTS; i++) {
        p = &g->plans[i];

        if (!p->used) {
            continue;
        }

        if (keep != NULL && p->key.n <= SLORA_GEMM_KEEP_N
            && n_keep < SLORA_GEMM_SLOTS / 2)
        {
            keep[n_keep++] = *p;

        } else {
            slora_cuda_gemm_plan_free(p);
        }
    }

    memset(g->plans, 0, sizeof(slora_cuda_gemm_plan_t) * SLORA_GEMM_SLOTS);
    g->n_plans = n_keep;

    for (i = 0; i < n_keep; i++) {
        h = slora_cuda_gemm_hash(&keep[i].key);

        for (j = 0; j < SLORA_GEMM_SLOTS; j++) {
            p = &g->plans[(h + (uint64_t) j) & (SLORA_GEMM_SLOTS - 1)];

            if (!p->used) {
                *p = keep[i];
                break;
            }
        }
    }

    free(keep);
}


static int
slora_cuda_gemm_make(slora_cuda_gemm_t *g, slora_cuda_gemm_plan_t *p,
    slora_err_t *err)
{
    const slora_cuda_gemm_shape_t    *s = &p->key;
    cublasLtMatmulPreference_t        pref;
    cublasLtMatmulHeuristicResult_t   res;
    cublasOperation_t                 ta, tb;
    cublasLtEpilogue_t                epi;
    cudaDataType_t                    ct;
    cublasStatus_t                    st;
    int                               n_res;

    ta = CUBLAS_OP_T;
    tb = CUBLAS_OP_N;
    ct = s->f32_out ? CUDA_R_32F : CUDA_R_16BF;

    st = cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (st == CUBLAS_STATUS_SUCCESS) {
        st = cublasLtMatmulDescSetAttribute(p->op,
                                            CUBLASLT_MATMUL_DESC_TRANSA,
                                            &ta, sizeof(ta));
    }
    if (st == CUBLAS_STATUS_SUCCESS) {
        st = cublasLtMatmulDescSetAttribute(p->op,
                                            CUBLASLT_MATMUL_DESC_TRANSB,
                                            &tb, sizeof(tb));
    }
    if (st == CUBLAS_STATUS_SUCCESS && s->bias) {
        epi = CUBLASLT_EPILOGUE_BIAS;
        st = cublasLtMatmulDescSetAttribute(p->op,
                                            CUBLASLT_MATMUL_DESC_EPILOGUE,
                                            &epi, sizeof(epi));
    }
    if (st == CUBLAS_STATUS_SUCCESS) {
        st = cublasLtMatrixLayoutCreate(&p->la, CUDA_R_16BF, (uint64_t) s->in,
                                        (uint64_t) s->out, s->in);
    }
    if (st == CUBLAS_STATUS_SUCCESS) {
        st = cublasLtMatrixLayoutCreate(&p->lb, CUDA_R_16BF, (uint64_t) s->in,
                                        (uint64_t) s->n, s->ld_x);
    }
    if (st == CUBLAS_STATUS_SUCCESS) {
        st = cublasLtMatrixLayoutCreate(&p->lc, ct, (uint64_t) s->out,
                                        (uint64_t) s->n, s->ld_y);
    }

    if (st != CUBLAS_STATUS_SUCCESS) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: GEMM "
                             "descriptors: status %d", (int) st);
    }

    st = cublasLtMatmulPreferenceCreate(&pref);
    if (st == CUBLAS_STATUS_SUCCESS) {
        st = cublasLtMatmulPreferenceSetAttribute(pref,
                 CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &g->work_size,
                 sizeof(g->work_size));
    }

    n_res = 0;
    if (st == CUBLAS_STATUS_SUCCESS) {
        st = cublasLtMatmulAlgoGetHeuristic(g->lt, p->op, p->la, p->lb,
                                            p->lc, p->lc, pref, 1, &res,
                                            &n_res);
    }

    cublasLtMatmulPreferenceDestroy(pref);

    if (st != CUBLAS_STATUS_SUCCESS || n_res == 0) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: no cuBLASLt "
                             "algorithm for [%d x %d] x [%d x %d]^T (status "
                             "%d)", s->n, s->in, s->out, s->in, (int) st);
    }

    p->algo = res.algo;

    return SLORA_OK;
}


static void
slora_cuda_gemm_plan_free(slora_cuda_gemm_plan_t *p)
{
    if (p->lc != NULL) {
        cublasLtMatrixLayoutDestroy(p->lc);
    }

    if (p->lb != NULL) {
        cublasLtMatrixLayoutDestroy(p->lb);
    }

    if (p->la != NULL) {
        cublasLtMatrixLayoutDestroy(p->la);
    }

    if (p->op != NULL) {
        cublasLtMatmulDescDestroy(p->op);
    }
}


static uint64_t
slora_cuda_gemm_hash(const slora_cuda_gemm_shape_t *s)
{
    uint64_t  h;

    h = (uint64_t) s->out * 0x9e3779b97f4a7c15ull;
    h ^= (uint64_t) s->n + (h << 6) + (h >> 2);
    h ^= (uint64_t) s->in * 0xbf58476d1ce4e5b9ull;
    h ^= (uint64_t) s->ld_x * 31 + (uint64_t) s->ld_y * 131
         + (uint64_t) s->f32_out * 7 + (uint64_t) s->bias * 3;
    h ^= h >> 31;

    return h;
}
