/*
 * slora_cuda_lora.c: LoRA's launches in a CUDA step: for the projections
 * that share an input (q, k and v; gate and up; o; down), one shrink
 * launch and one expand over every adapter of the batch, whatever their
 * ranks (kernels/slora_lora.cu: MBGMV for decode rows, MBGMM for
 * prompts), forked beside the base GEMM or in line, the expand adding
 * into the GEMM's output or into fp32 deltas the next kernel adds.
 *
 * The one idea: slora_cuda_backend.c's layer loop says what it wants
 * (slora_cuda_lora_call_t) and this file decides how: which rows have
 * adapters on these projections, on which stream, and whether the
 * expand can go before the GEMM; a tensor-parallel rank's shrink is
 * summed over the ranks before its expand (S-LoRA's section 6).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "slora_cuda_int.h"


static int slora_cuda_lora_delta(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_cuda_lora_call_t *lc, cudaStream_t s, slora_err_t *err);
static void slora_cuda_lora_segs(slora_cuda_t *c, slora_cuda_step_t *st,
    const slora_cuda_lora_call_t *lc, slora_lora_segs_t *sg, uint16_t **y,
    int32_t *width);


/*
 * y += LoRA(x) for the projections of out[], which share the input x (q,
 * k and v, or gate and up): one shrink launch for all of them, one
 * expand. On a tensor-parallel rank, S-LoRA's way: the side of width
 * hidden is this rank's slice (A's input columns for q, k, v, gate, up;
 * B's output columns for o, down), so the shrink gives partial x A's,
 * one all-reduce sums those of every projection in out[], and the
 * expand adds this rank's part. For o and down that part is a slice of
 * the partial output whose all-reduce (slora_cuda_sum) follows, so B's
 * output travels inside the base layer's sum. lora_comm 0 skips the
 * sum: the ablation's wrong answers.
 *
 * The shrink needs only x, so it is launched before the base GEMM, on
 * the side stream: it forks from the compute stream where x is ready and
 * runs beside the GEMM, and the expand, which adds into the GEMM's
 * output, joins it. A captured decode graph holds the fork as two
 * branches. Only steps of at most SLORA_CUDA_FORK_MAX tokens fork: their
 * GEMMs stream weights and leave room beside them, while a batch of 256
 * measured 0.4 ms slower forked (bench/RESULTS.md). The fork is not
 * free: at batch 64 a step's 64 forks and joins alone, nothing on the
 * side stream, cost 0.5 ms; the same kernels in line cost 1.1 ms, beside
 * the GEMM 0.4 more than the bare fork (bench/RESULTS.md, 20:20-20:25).
 * The step profile keeps everything on one stream, so that each op's
 * time stays its own; so does $SLORA_CUDA_FORK=0, for an A/B.
 */

int
slora_cuda_lora_shrink(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_cuda_lora_call_t *lc, slora_err_t *err)
{
    slora_lora_segs_t   sg[SLORA_LORA_MAX_PROJ];
    int32_t             slice, in;
    int64_t             part;
    int                 split;
    cudaStream_t        s;

    lc->forked = 0;
    lc->delta = NULL;

    if (!slora_cuda_lora_wanted(st, lc)) {
        return SLORA_OK;
    }

    slice = c->cfg.hidden / c->tp_n;
    split = c->tp_n > 1 && slora_proj_row_split(lc->out[0].p);
    in = c->tp_n == 1 || split ? slora_proj_in_dim(&c->cfg, lc->out[0].p)
                               : slice;
    slora_cuda_lora_segs(c, st, lc, sg, NULL, NULL);

    s = c->stream;

    if (c->forks && c->prof == NULL
        && st->batch->n_tokens <= SLORA_CUDA_FORK_MAX)
    {
        if (slora_cuda_check(cudaEventRecord(c->fork, c->stream),
                             "LoRA fork", err)
            != SLORA_OK
            || slora_cuda_check(cudaStreamWaitEvent(c->side, c->fork, 0),
                                "LoRA fork", err)
               != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        s = c->side;
        lc->forked = 1;
    }

    part = slora_cuda_lora_part(st->batch->n_tokens, st->info.max_rank);

    if (slora_lora_shrink_cuda(c->lora_work.p, st->info.max_rank, part,
                               (float *) c->lora_work.p
                               + SLORA_LORA_MAX_PROJ * part,
                               SLORA_LORA_SPLIT_MAX * SLORA_LORA_MAX_PROJ
                               * part,
                               c->tp_n == 1 || split
                               ? lc->x : lc->x + c->tp_rank * slice,
                               lc->ld_x, c->arena + st->layer_off[lc->l], in,
                               sg, lc->n_out, st->batch->n_tokens,
                               st->info.max_rank, st->max_seg_len, s)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "LoRA shrink on %s refused",
                             slora_proj_name(lc->out[0].p));
    }

    if (lc->may_delta && slora_cuda_lora_deltas(c, st)
        && slora_cuda_lora_delta(c, st, lc, s, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (lc->forked) {
        return slora_cuda_check(cudaEventRecord(c->join, c->side),
                                "LoRA join", err);
    }

    slora_cuda_mark(c, SLORA_OP_LORA);

    return SLORA_OK;
}


/*
 * A decode step's expand beside the base GEMM: it writes fp32 deltas of
 * the call's outputs (kernels/slora_lora.h), in the columns their
 * outputs have in the row of out[0], and the kernel that reads the
 * GEMM's output next adds them (RoPE with the KV store for q, k and v,
 * the residual's RMSNorm for o and down). So the expand leaves the
 * compute stream's chain: a layer's two launches after GEMMs become
 * none. One delta buffer serves every call: each is read before the
 * next call's fork, later on the compute stream. Which steps do so is
 * slora_cuda_lora_deltas()'s: steps of the GEMV's few rows keep the
 * expand after the GEMM, as their projections are short enough that the
 * shrink and expand beside them take longer (batch 1: LoRA 0.04 ms a
 * step slower this way, batches 16 and 64 0.13-0.14 ms faster;
 * bench/RESULTS.md, 16:19); prompts keep it too (their MBGMM expand).
 */

static int
slora_cuda_lora_delta(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_cuda_lora_call_t *lc, cudaStream_t s, slora_err_t *err)
{
    slora_lora_segs_t   sg[SLORA_LORA_MAX_PROJ];
    uint16_t           *y[SLORA_LORA_MAX_PROJ];
    float              *d[SLORA_LORA_MAX_PROJ];
    int32_t             width[SLORA_LORA_MAX_PROJ];
    int64_t             part;
    int                 k;

    part = slora_cuda_lora_part(st->batch->n_tokens, st->info.max_rank);
    slora_cuda_lora_segs(c, st, lc, sg, y, width);

    for (k = 0; k < lc->n_out; k++) {
        d[k] = (float *) c->lora_delta.p + (y[k] - y[0]);
    }

    if (slora_lora_expand_delta_cuda(d, lc->out[0].ld_y, width,
                                     c->lora_work.p, st->info.max_rank, part,
                                     c->arena + st->layer_off[lc->l], sg,
                                     lc->n_out, st->info.max_rank,
                                     st->max_seg_len, s)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "LoRA expand on %s refused",
                             slora_proj_name(lc->out[0].p));
    }

    lc->delta = c->lora_delta.p;

    return SLORA_OK;
}


int
slora_cuda_lora_expand(slora_cuda_t *c, slora_cuda_step_t *st,
    const slora_cuda_lora_call_t *lc, slora_err_t *err)
{
    slora_lora_segs_t   sg[SLORA_LORA_MAX_PROJ];
    uint16_t           *y[SLORA_LORA_MAX_PROJ];
    int32_t             width[SLORA_LORA_MAX_PROJ];
    int64_t             part;

    if (!slora_cuda_lora_wanted(st, lc)) {
        return SLORA_OK;
    }

    if (lc->forked
        && slora_cuda_check(cudaStreamWaitEvent(c->stream, c->join, 0),
                            "LoRA join", err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (lc->delta != NULL) {
        return SLORA_OK;            /* done beside the GEMM */
    }

    part = slora_cuda_lora_part(st->batch->n_tokens, st->info.max_rank);
    slora_cuda_lora_segs(c, st, lc, sg, y, width);

    if (c->tp_n > 1 && c->comm.lora_comm) {
        if (slora_cuda_allreduce(c, c->lora_work.p, lc->n_out * part, 1, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        slora_cuda_mark(c, SLORA_OP_COMM);
    }

    if (slora_lora_expand_cuda(y, lc->out[0].ld_y, width, c->lora_work.p,
                               st->info.max_rank, part,
                               c->arena + st->layer_off[lc->l], sg,
                               lc->n_out, st->info.max_rank, st->max_seg_len,
                               c->stream)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "LoRA expand on %s refused",
                             slora_proj_name(lc->out[0].p));
    }

    slora_cuda_mark(c, SLORA_OP_LORA);

    return SLORA_OK;
}


/*
 * Whether an adapter of the step targets one of the call's projections:
 * a batch whose adapters are on q, k, v and o launches nothing for gate,
 * up and down (the kernels would find rank 0 in every segment, but a
 * decode step pays each launch).
 */

int
slora_cuda_lora_wanted(const slora_cuda_step_t *st,
    const slora_cuda_lora_call_t *lc)
{
    int  k;

    for (k = 0; k < lc->n_out; k++) {
        if (st->info.proj_mask & (1u << lc->out[k].p)) {
            return 1;
        }
    }

    return 0;
}


/* The segments of the call's projections, and their outputs and output
 * widths unless y is NULL (the shrink needs only the segments). */
static void
slora_cuda_lora_segs(slora_cuda_t *c, slora_cuda_step_t *st,
    const slora_cuda_lora_call_t *lc, slora_lora_segs_t *sg, uint16_t **y,
    int32_t *width)
{
    int32_t  slice;
    int      k, split;

    slice = c->cfg.hidden / c->tp_n;
    split = c->tp_n > 1 && slora_proj_row_split(lc->out[0].p);

    for (k = 0; k < lc->n_out; k++) {
        sg[k] = st->segs[lc->out[k].p];

        if (y == NULL) {
            continue;
        }

        y[k] = split ? lc->out[k].y + c->tp_rank * slice : lc->out[k].y;
        width[k] = split ? slice
                         : slora_proj_out_dim(&c->cfg, lc->out[k].p);
    }
}
