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


_Static_assert(SLORA_SCORE_TOP_MAX >= SLORA_LOGPROBS_MAX,
               "a scored row holds every alternative a request may ask for");


typedef struct {
    slora_engine_t             *e;
    const slora_sched_step_t   *step;
    const slora_batch_t        *batch;
    int32_t                     n;          /* rows in e->host.items */
    int32_t                     n_scores;   /* in e->host.score_rows */
} slora_engine_host_job_t;


static void slora_engine_host_share(void *ctx, int ith, int nth);
static void slora_engine_host_pick(slora_engine_host_job_t *job, int ith,
    int32_t i);
static int32_t slora_engine_host_json(slora_engine_t *e,
    slora_engine_req_t *q, float *row, float *scratch);
static void slora_engine_host_score(slora_engine_host_job_t *job,
    int32_t i, int32_t row);


/* n_threads: the engine's (its threads= setting), of which the host's
 * part takes up to SLORA_ENGINE_HOST_THREADS. */
int
slora_engine_host_init(slora_engine_host_t *h, int32_t vocab,
    int32_t max_running, int32_t max_rows, int32_t n_threads,
    slora_err_t *err)
{
    int  i;

    memset(h, 0, sizeof(slora_engine_host_t));

    h->n = n_threads < 1 ? 1 : n_threads > SLORA_ENGINE_HOST_THREADS
                               ? SLORA_ENGINE_HOST_THREADS : n_threads;

    h->samplers = calloc((size_t) h->n, sizeof(slora_sampler_t *));
    h->lp_rows = malloc((size_t) h->n * (size_t) vocab * sizeof(float));
    h->items = malloc((size_t) max_running * sizeof(int32_t));
    h->picks = calloc((size_t) max_running, sizeof(slora_engine_pick_t));
    h->score_items = malloc((size_t) max_rows * sizeof(int32_t));
    h->score_rows = malloc((size_t) max_rows * sizeof(int32_t));
    h->scores = calloc((size_t) max_rows, sizeof(slora_engine_pick_t));

    if (h->samplers == NULL || h->lp_rows == NULL || h->items == NULL
        || h->picks == NULL || h->score_items == NULL
        || h->score_rows == NULL || h->scores == NULL)
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
    free(h->score_items);
    free(h->score_rows);
    free(h->scores);
    memset(h, 0, sizeof(slora_engine_host_t));
}


/*
 * Marks the step's items whose rows the host works on (picks[i].on_host)
 * and works them out: picks[i].tok, and with log-probabilities its
 * figure and the likeliest alternatives. The other items' tokens are the
 * backend's (batch->ids). And scores the prompt rows of items that owe
 * a prompt's log-probabilities (every row of theirs but a last one that
 * picks): scores[row].
 */
void
slora_engine_host_picks(slora_engine_t *e, const slora_sched_step_t *step,
    const slora_batch_t *batch)
{
    int32_t                   i, j, row;
    slora_engine_req_t       *q;
    slora_engine_host_t      *h;
    slora_engine_host_job_t   job;
    const slora_sched_item_t *it;

    h = &e->host;
    job.n = 0;
    job.n_scores = 0;

    for (i = 0; i < step->n_items; i++) {
        it = &step->items[i];
        h->picks[i].on_host = 0;

        for (j = 0; j < it->n_rows - it->logits - it->draft; j++) {
            h->score_items[job.n_scores] = i;
            h->score_rows[job.n_scores++] = e->seqs[i].logits_row + j;
        }

        if (!it->logits) {
            continue;
        }

        q = (slora_engine_req_t *) it->req;
        row = slora_engine_last_row(e, i);

        if (q->top_logprobs >= 0 || batch->ids == NULL
            || (batch->host_rows != NULL && batch->host_rows[row]))
        {
            h->picks[i].on_host = 1;
            h->items[job.n++] = i;
        }
    }

    if (job.n + job.n_scores == 0) {
        return;
    }

    job.e = e;
    job.step = step;
    job.batch = batch;

    if (job.n + job.n_scores == 1 || h->pool == NULL) {
        slora_engine_host_share(&job, 0, 1);
        return;
    }

    slora_threads_run_n(h->pool, h->n, slora_engine_host_share, &job);
}


static void
slora_engine_host_share(void *ctx, int ith, int nth)
{
    slora_engine_host_job_t  *job = ctx;
    int32_t                   k;

    for (k = ith; k < job->n + job->n_scores; k += nth) {
        if (k < job->n) {
            slora_engine_host_pick(job, ith, job->e->host.items[k]);

        } else {
            slora_engine_host_score(job, job->e->host.score_items[k - job->n],
                                    job->e->host.score_rows[k - job->n]);
        }
    }
}


/* Item i's pick, by share ith. */
static void
slora_engine_host_pick(slora_engine_host_job_t *job, int ith, int32_t i)
{
    slora_engine_t           *e = job->e;
    const slora_batch_t      *bt = job->batch;
    double                    lse;
    float                    *row, *raw;
    int32_t                   j, vocab, lrow;
    slora_engine_req_t       *q;
    slora_engine_pick_t      *pk;

    vocab = e->model->cfg.vocab;
    raw = e->host.lp_rows + (size_t) ith * (size_t) vocab;
    q = (slora_engine_req_t *) job->step->items[i].req;
    pk = &e->host.picks[i];
    lrow = slora_engine_last_row(e, i);
    row = e->logits + (size_t) lrow * (size_t) vocab;
    lse = 0;
    pk->n_top = 0;

    if (q->top_logprobs >= 0) {
        /* the raw row: the draw may change it (penalties, a bias) */
        memcpy(raw, row, (size_t) vocab * sizeof(float));
        pk->n_top = q->top_logprobs < vocab ? q->top_logprobs : vocab;
        lse = slora_score_row(raw, vocab, pk->n_top, pk->top_ids,
                              pk->top_lp);
    }

    if (bt->ids != NULL && (bt->host_rows == NULL || !bt->host_rows[lrow])) {
        pk->tok = bt->ids[lrow];

    } else if (q->sampling.json
               && slora_engine_host_json(e, q, row, raw) == 0)
    {
        pk->tok = -1;

    } else {
        if (slora_engine_guards_gate(q)) {
            /* at_least_one: the gate passed is its first tag begun */
            slora_json_trigger_guard(&q->gate, 1, q->schema, q->json_compact,
                                     0, e->json_vocab, q->gate_guard,
                                     q->n_gate_guard, row);
        }

        if (slora_engine_guards_triggers(q)) {
            /* a trigger begins its value, or is not written */
            slora_json_trigger_guard(q->trigger, q->n_triggers, q->schema,
                                     q->json_compact, q->trigger_whole,
                                     e->json_vocab, q->guard, q->n_guard,
                                     row);
        }

        if (slora_engine_guards_lead(q)) {
            /* an answer that begins a call is the call */
            slora_json_trigger_guard_lead(&q->trigger[0], q->schema,
                                          q->json_compact, e->json_vocab,
                                          row);
        }

        for (j = 0; slora_engine_holds_stops(q) && j < q->n_stop; j++) {
            if (q->stop_ids[j] >= 0 && q->stop_ids[j] < vocab) {
                row[q->stop_ids[j]] = -INFINITY;
            }
        }

        pk->tok = slora_sample(e->host.samplers[ith], &q->sampling, &q->rng,
                               row, q->r.tokens, q->r.n_tokens,
                               q->r.n_prompt);
    }

    if (q->top_logprobs >= 0 && pk->tok >= 0) {
        pk->logprob = (float) ((double) raw[pk->tok] - lse);
    }
}


/* Masks row to the tokens that keep q's output one its schema admits
 * (slora_json_mask); where the output may end as it is (a guided regex's
 * match), the request's stop tokens stay as they were, their logits
 * kept in scratch (a copy of the row, or [vocab] to spare) at their
 * places. How many tokens may follow. */
static int32_t
slora_engine_host_json(slora_engine_t *e, slora_engine_req_t *q, float *row,
    float *scratch)
{
    int       may_end;
    int32_t   j, n, vocab, id;

    vocab = e->model->cfg.vocab;
    may_end = slora_json_may_end(&q->json);

    for (j = 0; may_end && q->top_logprobs < 0 && j < q->n_stop; j++) {
        id = q->stop_ids[j];

        if (id >= 0 && id < vocab) {
            scratch[id] = row[id];
        }
    }

    n = slora_json_mask(&q->json, e->json_vocab, row);

    for (j = 0; may_end && j < q->n_stop; j++) {
        id = q->stop_ids[j];

        if (id >= 0 && id < vocab && row[id] == -INFINITY
            && scratch[id] != -INFINITY)
        {
            row[id] = scratch[id];
            n++;
        }
    }

    return n;
}


/* The prompt token after the position of item i's logits row `row`: its
 * log-probability and its request's alternatives, into scores[row]: the
 * backend's, or worked out here from the row (slora_score.h). */
static void
slora_engine_host_score(slora_engine_host_job_t *job, int32_t i,
    int32_t row)
{
    slora_engine_t            *e = job->e;
    int32_t                    vocab, pos;
    slora_score_t              own;
    slora_engine_req_t        *q;
    slora_engine_pick_t       *sc;
    const slora_score_t       *bs;
    const slora_sched_item_t  *it;

    vocab = e->model->cfg.vocab;
    it = &job->step->items[i];
    q = (slora_engine_req_t *) it->req;
    sc = &e->host.scores[row];

    /* the row's position, whose logits say what comes at pos + 1 */
    pos = it->pos + it->n_tokens - it->n_rows + (row - e->seqs[i].logits_row);
    slora_assert(pos >= 0 && pos < q->r.score_to);

    sc->tok = q->r.tokens[pos + 1];

    if (job->batch->score_tok != NULL && job->batch->score_tok[row] >= 0) {
        /* the backend's: its request's share of the step's alternatives */
        bs = &job->batch->scores[row];

    } else {
        /* the same from the row's logits, here */
        bs = &own;
        slora_score_rows(&own, e->logits + (size_t) row * (size_t) vocab,
                         vocab, vocab, &sc->tok, 1,
                         q->score_top < vocab ? q->score_top : vocab);
    }

    sc->n_top = q->score_top < bs->n_top ? q->score_top : bs->n_top;
    sc->logprob = bs->logprob;
    sc->rank = bs->rank;
    memcpy(sc->top_ids, bs->top_ids, (size_t) sc->n_top * sizeof(int32_t));
    memcpy(sc->top_lp, bs->top_lp, (size_t) sc->n_top * sizeof(float));
}
