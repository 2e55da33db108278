/*
 * slora_engine_host.c: the host's part of a step's rows: the
 * log-probabilities a request asked for, and the tokens drawn on the
 * host (a penalty, a logit bias, JSON mode, stop ids held back by
 * min_tokens, or a backend that does not draw), each row by itself, over
 * a pool of threads.
 *
 * The one idea: a row's work reads its logits, its request's history and
 * generator, and a scratch of its own, so rows go side by side; what
 * follows them (appending the token, stop ids, events, ends) stays on
 * the engine's thread, in the step's order (slora_engine_run). Share ith
 * of the pool takes rows ith, ith + nth, ... with sampler ith and raw
 * row ith. A row with log-probabilities keeps a raw copy, since a
 * penalty or a bias changes the row the draw reads, and its token's
 * figure is the raw one.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slora_engine_int.h"


#define SLORA_ENGINE_HOST_THREADS  8


typedef struct {
    slora_engine_t             *e;
    const slora_sched_step_t   *step;
    const slora_batch_t        *batch;
    int32_t                     n;          /* rows in e->host.items */
} slora_engine_host_job_t;


static void slora_engine_host_share(void *ctx, int ith, int nth);


/* n_threads: the engine's (its threads= setting), of which the host's
 * part takes up to SLORA_ENGINE_HOST_THREADS. */
int
slora_engine_host_init(slora_engine_host_t *h, int32_t vocab,
    int32_t max_running, int32_t n_threads, slora_err_t *err)
{
    int  i;

    memset(h, 0, sizeof(slora_engine_host_t));

    h->n = n_threads < 1 ? 1 : n_threads > SLORA_ENGINE_HOST_THREADS
                               ? SLORA_ENGINE_HOST_THREADS : n_threads;

    h->samplers = calloc((size_t) h->n, sizeof(slora_sampler_t *));
    h->lp_rows = malloc((size_t) h->n * (size_t) vocab * sizeof(float));
    h->items = malloc((size_t) max_running * sizeof(int32_t));
    h->picks = calloc((size_t) max_running, sizeof(slora_engine_pick_t));

    if (h->samplers == NULL || h->lp_rows == NULL || h->items == NULL
        || h->picks == NULL)
    {
        return slora_err_set(err, SLORA_ERROR, "engine: out of memory");
    }

    for (i = 0; i < h->n; i++) {
        h->samplers[i] = slora_sampler_create(vocab, err);
        if (h->samplers[i] == NULL) {
            return SLORA_ERROR;
        }
    }

    if (h->n > 1) {
        h->pool = slora_threads_create(h->n, err);
        if (h->pool == NULL) {
            return SLORA_ERROR;
        }
    }

    return SLORA_OK;
}


void
slora_engine_host_free(slora_engine_host_t *h)
{
    int  i;

    slora_threads_free(h->pool);

    for (i = 0; h->samplers != NULL && i < h->n; i++) {
        slora_sampler_free(h->samplers[i]);
    }

    free(h->samplers);
    free(h->lp_rows);
    free(h->items);
    free(h->picks);
    memset(h, 0, sizeof(slora_engine_host_t));
}


/*
 * Marks the step's items whose rows the host works on (picks[i].on_host)
 * and works them out: picks[i].tok, and with log-probabilities its
 * figure and the likeliest alternatives. The other items' tokens are the
 * backend's (batch->ids).
 */
void
slora_engine_host_picks(slora_engine_t *e, const slora_sched_step_t *step,
    const slora_batch_t *batch)
{
    int32_t                   i, row;
    slora_engine_req_t       *q;
    slora_engine_host_t      *h;
    slora_engine_host_job_t   job;

    h = &e->host;
    job.n = 0;

    for (i = 0; i < step->n_items; i++) {
        h->picks[i].on_host = 0;

        if (!step->items[i].logits) {
            continue;
        }

        q = (slora_engine_req_t *) step->items[i].req;
        row = e->seqs[i].logits_row;

        if (q->top_logprobs >= 0 || batch->ids == NULL
            || (batch->host_rows != NULL && batch->host_rows[row]))
        {
            h->picks[i].on_host = 1;
            h->items[job.n++] = i;
        }
    }

    if (job.n == 0) {
        return;
    }

    job.e = e;
    job.step = step;
    job.batch = batch;

    if (job.n == 1 || h->pool == NULL) {
        slora_engine_host_share(&job, 0, 1);
        return;
    }

    slora_threads_run_n(h->pool, h->n, slora_engine_host_share, &job);
}


static void
slora_engine_host_share(void *ctx, int ith, int nth)
{
    slora_engine_host_job_t  *job = ctx;
    slora_engine_t           *e = job->e;
    const slora_batch_t      *bt = job->batch;
    double                    lse;
    float                    *row, *raw;
    int32_t                   k, i, j, vocab, lrow;
    slora_engine_req_t       *q;
    slora_engine_pick_t      *pk;

    vocab = e->model->cfg.vocab;
    raw = e->host.lp_rows + (size_t) ith * (size_t) vocab;

    for (k = ith; k < job->n; k += nth) {
        i = e->host.items[k];
        q = (slora_engine_req_t *) job->step->items[i].req;
        pk = &e->host.picks[i];
        lrow = e->seqs[i].logits_row;
        row = e->logits + (size_t) lrow * (size_t) vocab;
        lse = 0;
        pk->n_top = 0;

        if (q->top_logprobs >= 0) {
            /* the raw row: the draw may change it (penalties, a bias) */
            memcpy(raw, row, (size_t) vocab * sizeof(float));
            pk->n_top = q->top_logprobs < vocab ? q->top_logprobs : vocab;
            lse = slora_logprobs(raw, vocab, pk->n_top, pk->top_ids,
                                 pk->top_lp);
        }

        if (bt->ids != NULL
            && (bt->host_rows == NULL || !bt->host_rows[lrow]))
        {
            pk->tok = bt->ids[lrow];

        } else if (q->sampling.json
                   && slora_json_mask(&q->json, e->json_vocab, row) == 0)
        {
            pk->tok = -1;

        } else {
            for (j = 0; slora_engine_holds_stops(q) && j < q->n_stop; j++) {
                if (q->stop_ids[j] >= 0 && q->stop_ids[j] < vocab) {
                    row[q->stop_ids[j]] = -INFINITY;
                }
            }

            pk->tok = slora_sample(e->host.samplers[ith], &q->sampling,
                                   &q->rng, row, q->r.tokens, q->r.n_tokens,
                                   q->r.n_prompt);
        }

        if (q->top_logprobs >= 0 && pk->tok >= 0) {
            pk->logprob = (float) ((double) raw[pk->tok] - lse);
        }
    }
}
