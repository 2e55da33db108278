/*
 * slora_cuda_ahead.c: the CUDA backend's read-ahead of weights into L2
 * during a decode step ($SLORA_CUDA_L2_AHEAD MiB a GEMM; 0 or unset:
 * off).
 *
 * The one idea: a decode step is a chain of GEMMs that each stream their
 * weights once, with gaps between them where the memory bus idles (the
 * norm and activation kernels, a GEMM's start and tail). A read-ahead
 * forked into such a gap asks for the first bytes of each K slice of
 * every row of the next GEMM's weight (kernels/slora_l2.h), so the gap
 * moves bytes the GEMM would have waited for. It runs on a stream of its
 * own, which a captured graph holds as a branch, and joins the compute
 * stream after the GEMM it serves, so no launch on the compute stream
 * waits for it. With $SLORA_CUDA_L2_EARLY=1 it forks earlier, beside the
 * GEMM (or the attention) before, and its lines are kept ahead of that
 * kernel's stream (evict_last).
 */

#include <stdlib.h>
#include <string.h>

#include "slora_cuda_int.h"
#include "slora_l2.h"


#define SLORA_AHEAD_MAX_N   256     /* rows of a step that reads ahead */
#define SLORA_AHEAD_LINE    128     /* bytes: L2's line */


static int64_t slora_cuda_ahead_env(const char *name, int64_t max);


int
slora_cuda_ahead_init(slora_cuda_t *c, slora_err_t *err)
{
    slora_cuda_ahead_t  *a = &c->ahead;

    memset(a, 0, sizeof(*a));
    a->budget = slora_cuda_ahead_env("SLORA_CUDA_L2_AHEAD", 1024) << 20;
    a->early = slora_cuda_ahead_env("SLORA_CUDA_L2_EARLY", 1) == 1;

    if (a->budget == 0) {
        return SLORA_OK;
    }

    if (slora_cuda_check(cudaStreamCreateWithFlags(&a->stream,
                                                   cudaStreamNonBlocking),
                         "read-ahead stream", err)
        != SLORA_OK
        || slora_cuda_check(cudaEventCreateWithFlags(&a->fork,
                                                     cudaEventDisableTiming),
                            "read-ahead event", err)
           != SLORA_OK
        || slora_cuda_check(cudaEventCreateWithFlags(&a->done,
                                                     cudaEventDisableTiming),
                            "read-ahead event", err)
           != SLORA_OK)
    {
        slora_cuda_ahead_free(c);
        return SLORA_ERROR;
    }

    return SLORA_OK;
}


void
slora_cuda_ahead_free(slora_cuda_t *c)
{
    slora_cuda_ahead_t  *a = &c->ahead;

    if (a->stream != NULL) {
        cudaStreamDestroy(a->stream);
    }

    if (a->fork != NULL) {
        cudaEventDestroy(a->fork);
    }

    if (a->done != NULL) {
        cudaEventDestroy(a->done);
    }

    memset(a, 0, sizeof(*a));
}


/*
 * Reads ahead the weight of GEMM `which` of layer l, where the call site
 * is the one the setting picks (early: beside the kernel before the gap;
 * otherwise in the gap itself). The shape is the one slora_cuda_layer's
 * GEMM asks for, so the K split is that of the plan it will run.
 */

int
slora_cuda_ahead(slora_cuda_t *c, const slora_cuda_step_t *st, int32_t l,
    slora_cuda_ahead_e which, int early, slora_err_t *err)
{
    slora_cuda_ahead_t        *a = &c->ahead;
    const slora_cuda_layer_t  *D;
    slora_cuda_gemm_shape_t    s;
    slora_l2_ahead_t           d;
    const uint16_t            *w;
    int64_t                    row, slice, bytes;
    int32_t                    n, splits, hidden, ffn;

    n = st->batch->n_tokens;

    if (a->budget == 0 || early != a->early || n > SLORA_AHEAD_MAX_N
        || l >= c->cfg.n_layers)
    {
        return SLORA_OK;
    }

    D = &c->layers[l];
    hidden = c->cfg.hidden;
    ffn = c->cfg.ffn;

    memset(&s, 0, sizeof(s));
    s.n = n;

    switch (which) {

    case SLORA_AHEAD_QKV:
        s.out = c->qkv_dim;
        s.in = hidden;
        s.ld_x = hidden;
        s.ld_y = c->qkv_dim;
        s.bias = D->bqkv != NULL;
        w = D->wqkv;
        break;

    case SLORA_AHEAD_O:
        s.out = hidden;
        s.in = c->q_dim;
        s.ld_x = c->q_dim;
        s.ld_y = hidden;
        w = D->wo;
        break;

    case SLORA_AHEAD_GU:
        s.out = 2 * ffn;
        s.in = hidden;
        s.ld_x = hidden;
        s.ld_y = 2 * (int64_t) ffn;
        w = D->wgu;
        break;

    default:
        s.out = hidden;
        s.in = ffn;
        s.ld_x = 2 * (int64_t) ffn;
        s.ld_y = hidden;
        w = D->wdown;
        break;
    }

    /* the first bytes of each K slice of every row, a line at least */
    splits = slora_cuda_gemm_splits(c->gemm, &s);
    row = (int64_t) s.in * (int64_t) sizeof(uint16_t);
    slice = (row / splits + SLORA_AHEAD_LINE - 1) / SLORA_AHEAD_LINE
            * SLORA_AHEAD_LINE;
    bytes = a->budget / ((int64_t) s.out * splits) / SLORA_AHEAD_LINE
            * SLORA_AHEAD_LINE;
    bytes = bytes < slice ? bytes : slice;

    if (bytes < SLORA_AHEAD_LINE || slice * (splits - 1) + bytes > row) {
        return SLORA_OK;
    }

    memset(&d, 0, sizeof(d));
    d.base = w;
    d.rows = s.out;
    d.ld = row;
    d.slice = slice;
    d.n_slices = splits;
    d.bytes = (int32_t) bytes;
    d.keep = a->early;

    if (slora_cuda_check(cudaEventRecord(a->fork, c->stream), "read-ahead "
                         "fork", err)
        != SLORA_OK
        || slora_cuda_check(cudaStreamWaitEvent(a->stream, a->fork, 0),
                            "read-ahead fork", err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (slora_l2_ahead_cuda(&d, a->stream) != 0) {
        return slora_err_set(err, SLORA_ERROR, "read-ahead of layer %d's "
                             "weight %d refused", l, (int) which);
    }

    a->pending = 1;

    return slora_cuda_check(cudaEventRecord(a->done, a->stream),
                            "read-ahead join", err);
}


/* After the GEMM a read-ahead served: the compute stream takes the
 * branch back (a captured graph must end with every branch joined). */

int
slora_cuda_ahead_join(slora_cuda_t *c, slora_err_t *err)
{
    if (!c->ahead.pending) {
        return SLORA_OK;
    }

    c->ahead.pending = 0;

    return slora_cuda_check(cudaStreamWaitEvent(c->stream, c->ahead.done, 0),
                            "read-ahead join", err);
}


static int64_t
slora_cuda_ahead_env(const char *name, int64_t max)
{
    const char  *e;
    char        *end;
    long long    v;

    e = getenv(name);
    if (e == NULL || *e == '\0') {
        return 0;
    }

    v = strtoll(e, &end, 10);

    return *end == '\0' && v > 0 ? (v < max ? v : max) : 0;
}
