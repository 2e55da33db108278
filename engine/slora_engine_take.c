/*
 * slora_engine_take.c: what a step's picks do to their requests: each
 * token taken (a stop id ends the request, JSON mode follows the text,
 * a TOKEN event, max_tokens reached ends it), a draft verified against
 * the picks of its rows, and the drafts set before a plan for requests
 * with a prediction (speculative decoding, slora_draft.h).
 *
 * The one idea: a verified draft's tokens go through the same taking as
 * any pick, one at a time, so stop ids, max_tokens and the events are
 * the same whether a token came alone or from a draft.
 */

#include <math.h>
#include <string.h>

#include "slora_engine_int.h"


static void slora_engine_done(slora_engine_req_t *q, int32_t tok,
    const slora_engine_pick_t *pk, slora_finish_e finish, slora_event_cb cb,
    void *data);
static float slora_engine_margin(const float *logits, int32_t vocab);
static void slora_engine_trigger_came(const slora_engine_t *e,
    slora_engine_req_t *q, int k, int32_t tok);
static void slora_engine_gate_opens(const slora_engine_t *e,
    slora_engine_req_t *q, int32_t tok);


/*
 * Takes token tok as q's next (the pick of logits row row, pk the
 * host's pick or NULL): a stop id ends the request (DONE), JSON mode
 * follows it, else a TOKEN event; max_tokens reached ends it too.
 * Returns 1 when q ended (and is freed).
 */
int
slora_engine_take(slora_engine_t *e, slora_engine_req_t *q, int32_t tok,
    const slora_engine_pick_t *pk, int32_t row, slora_event_cb cb,
    void *data)
{
    int            stop, k;
    int32_t        j;
    slora_event_t  ev;

    stop = 0;
    for (j = 0; j < q->n_stop; j++) {
        stop |= q->stop_ids[j] == tok;
    }

    if (q->gate.len > 0 && tok >= 0) {
        /* the triggers count from the gate on: the token that passes it
         * is looked at for one in its bytes after the gate (not for a
         * lead trigger, which opens the answer) */
        if (slora_json_trigger_feed(&q->gate, e->json_vocab, tok)) {
            q->gate.len = 0;

            if (q->tag_first) {
                slora_engine_gate_opens(e, q, tok);

            } else {
                k = slora_json_triggers_feed_past(q->trigger, q->n_triggers,
                                                  e->json_vocab, tok,
                                                  q->gate.past);

                if (k >= 0) {
                    slora_engine_trigger_came(e, q, k, tok);
                }
            }
        }

    } else if (!q->sampling.json && tok >= 0
               && (k = slora_json_triggers_feed(q->trigger, q->n_triggers,
                                                e->json_vocab, tok)) >= 0)
    {
        slora_engine_trigger_came(e, q, k, tok);

    } else if (q->sampling.json
               && !(stop && slora_json_may_end(&q->json))
               && (tok < 0 || !slora_json_feed_token(&q->json,
                                                     e->json_vocab, tok)))
    {
        /* no token of the vocabulary goes on with the object */
        slora_engine_emit(cb, data, SLORA_EV_ERROR, q->r.id, -1,
                          SLORA_FINISH_NONE, "JSON mode: no token of "
                          "the vocabulary continues the output",
                          SLORA_ERRCODE_NONE);
        slora_engine_end(e, q);
        return 1;

    } else if (tok < 0) {
        /* allowed_token_ids left none: the only ones held back, as
         * min_tokens holds the stop ids, or refused by a trigger's guard
         * (each would write a trigger its value cannot follow) */
        slora_engine_emit(cb, data, SLORA_EV_ERROR, q->r.id, -1,
                          SLORA_FINISH_NONE,
                          slora_engine_guards_triggers(q)
                          || slora_engine_guards_lead(q)
                          ? "allowed_token_ids: none of them may come next "
                            "(held back until min_tokens, or each would "
                            "write a trigger that no call or tag may "
                            "follow)"
                          : "allowed_token_ids: none of them may come next",
                          SLORA_ERRCODE_NONE);
        slora_engine_end(e, q);
        return 1;
    }

    q->r.tokens[q->r.n_tokens++] = tok;

    if (stop) {
        slora_engine_done(q, tok, pk, SLORA_FINISH_STOP, cb, data);
        slora_engine_end(e, q);
        return 1;
    }

    if (cb != NULL) {
        memset(&ev, 0, sizeof(ev));
        ev.type = SLORA_EV_TOKEN;
        ev.id = q->r.id;
        ev.token = tok;
        ev.cached_tokens = q->r.n_cached;

        if (e->conf.margins) {
            ev.margin = slora_engine_margin(e->logits
                                            + (size_t) row
                                              * e->model->cfg.vocab,
                                            e->model->cfg.vocab);
        }

        if (q->top_logprobs >= 0 && pk != NULL) {
            ev.logprob = pk->logprob;
            ev.n_top = pk->n_top;
            ev.top_ids = pk->top_ids;
            ev.top_logprobs = pk->top_lp;
        }

        cb(data, &ev);
    }

    if (q->sampling.json && slora_json_done(&q->json)
        && q->n_triggers > 0 && !q->trigger_ends)
    {
        /* a lazy schema's value is whole: free until its trigger comes
         * again */
        q->sampling.json = 0;

    } else if (q->sampling.json && slora_json_done(&q->json)) {
        slora_engine_done(q, -1, NULL, SLORA_FINISH_STOP, cb, data);
        slora_engine_end(e, q);
        return 1;
    }

    if (q->r.n_tokens == q->r.cap) {
        slora_engine_done(q, -1, NULL, SLORA_FINISH_LENGTH, cb, data);
        slora_engine_end(e, q);
        return 1;
    }

    return 0;
}


/*
 * Item i ran q's last token and its draft (slora_draft.h): the draft's
 * tokens stay as far as each is the pick of the row before it, then the
 * pick that differs (or, with the whole draft taken, the last row's)
 * comes too; the generator keeps one draw a token taken.
 */
void
slora_engine_verify(slora_engine_t *e, const slora_sched_item_t *it,
    int32_t i, const slora_batch_t *batch, slora_event_cb cb, void *data)
{
    int32_t              row, taken, kept, j, k, *draft;
    slora_engine_req_t  *q;

    q = (slora_engine_req_t *) it->req;
    row = e->seqs[i].logits_row;
    draft = q->r.tokens + q->r.n_tokens - it->draft;

    for (taken = 0;
         taken < it->draft && batch->ids[row + taken] == draft[taken];
         taken++)
    {
        /* the draft's token is the pick */
    }

    /* a stop id taken ends the output: the draft's tokens after it were
     * computed, not taken (the DONE event counts them so) */
    kept = taken;

    for (j = 0; j < kept; j++) {
        for (k = 0; k < q->n_stop; k++) {
            if (q->stop_ids[k] == draft[j]) {
                kept = j + 1;
                break;
            }
        }
    }

    slora_draft_taken(&q->draft, it->draft, kept);

    if (q->draft.lookup) {
        e->lookup_accepted += (uint64_t) kept;
        e->lookup_rejected += (uint64_t) (it->draft - kept);

    } else {
        e->prediction_accepted += (uint64_t) kept;
        e->prediction_rejected += (uint64_t) (it->draft - kept);
    }

    if (!slora_sampling_greedy(&q->sampling)) {
        q->rng = q->rng_before;
        for (j = 0; j <= taken; j++) {
            (void) slora_rng_uniform(&q->rng);
        }
    }

    slora_sched_settle(e->sched, &q->r, taken);

    for (j = 0; j <= taken; j++) {
        if (slora_engine_take(e, q, batch->ids[row + j], NULL, row + j, cb,
                              data))
        {
            return;
        }
    }
}


/*
 * Drafts for the running requests that decode with a prediction, or with
 * lookup (speculate=lookup): set after their last token, the plan runs them
 * with it as far as the step has room. None where the host picks the rows
 * (penalties, log-probabilities, held stops, margins), where JSON holds or
 * may (a schema), or where only the last token is left.
 */
void
slora_engine_drafts(slora_engine_t *e)
{
    int                  lookup;
    int32_t              n, room;
    slora_req_t         *r;
    slora_engine_req_t  *q;

    if (e->conf.margins) {
        return;
    }

    /* lookup's drafts where the engine holds few requests: in a full
     * step each costs a row's share of it (slora_engine.h) */
    lookup = e->conf.draft_lookup
             && slora_sched_running(e->sched) + slora_sched_waiting(e->sched)
                <= e->conf.lookup_running;

    for (r = slora_sched_first(e->sched);
         r != NULL && r->state == SLORA_REQ_RUNNING;
         r = r->next)
    {
        q = (slora_engine_req_t *) r;

        if (!slora_draft_on(&q->draft) || (q->draft.lookup && !lookup)
            || r->awaits || r->n_draft > 0
            || r->n_tokens - r->n_computed != 1 || r->n_tokens <= r->n_prompt
            || q->schema != NULL || slora_engine_on_host(e, q))
        {
            continue;
        }

        room = r->cap - r->n_tokens - 1;
        n = slora_draft_propose(&q->draft, r->tokens, r->n_tokens,
                                r->n_tokens - r->n_prompt,
                                r->tokens + r->n_tokens,
                                room < SLORA_DRAFT_MAX ? room
                                                       : SLORA_DRAFT_MAX);
        r->n_tokens += n;
        r->n_draft = n;
    }
}


/* Trigger k of q came with token tok: the schema holds from the next
 * token (a lead trigger's value has begun, or the token ran on past the
 * trigger: from where it is; the guards refuse a token that runs on
 * where the value does not go, but the token that passes the gate may,
 * and leaves the answer free). */
static void
slora_engine_trigger_came(const slora_engine_t *e, slora_engine_req_t *q,
    int k, int32_t tok)
{
    const slora_json_trigger_t  *t;

    t = &q->trigger[k];
    slora_json_init(&q->json, q->schema);
    q->json.compact = q->json_compact;
    q->sampling.json = t->lead
                       ? slora_json_trigger_lead(t, &q->json, e->json_vocab,
                                                 tok)
                       : q->trigger_whole
                       ? slora_json_trigger_whole(t, &q->json, e->json_vocab,
                                                  tok)
                       : slora_json_trigger_past(t, &q->json, e->json_vocab,
                                                 tok);
}


/* at_least_one's first tag after a gate: it begins with the bytes of
 * tok past the gate (slora_engine_guards_gate refused a token whose
 * bytes there it cannot take; were one drawn all the same, allowed_
 * token_ids leaving no other, the tag begins after them). */
static void
slora_engine_gate_opens(const slora_engine_t *e, slora_engine_req_t *q,
    int32_t tok)
{
    slora_json_t  past;

    slora_json_init(&q->json, q->schema);
    q->json.compact = q->json_compact;
    q->sampling.json = 1;

    slora_json_copy(&past, &q->json);

    if (slora_json_trigger_past(&q->gate, &past, e->json_vocab, tok)) {
        slora_json_copy(&q->json, &past);
    }
}


/* Whether q's pick is the host's: a penalty or a bias, log-
 * probabilities, stop ids held back, a lazy schema's triggers guarded
 * this step (a token may complete one: slora_engine_guards_triggers,
 * _gate, _lead), or a draw the backend cannot make. */
int
slora_engine_on_host(const slora_engine_t *e, const slora_engine_req_t *q)
{
    return q->top_logprobs >= 0 || slora_engine_guards_triggers(q)
           || slora_engine_guards_gate(q) || slora_engine_guards_lead(q)
           || !slora_sampling_plain(&q->sampling)
           || slora_engine_holds_stops(q)
           || (!slora_sampling_greedy(&q->sampling) && !e->backend->draws);
}


/* q's DONE event: its token (a stop id, or -1) and, with logprobs, the
 * stop id's log-probability (pk: the host's pick of it), why, the
 * prompt's cached tokens and its drafts' tokens taken and not. */
static void
slora_engine_done(slora_engine_req_t *q, int32_t tok,
    const slora_engine_pick_t *pk, slora_finish_e finish, slora_event_cb cb,
    void *data)
{
    slora_event_t  ev;

    if (cb == NULL) {
        return;
    }

    memset(&ev, 0, sizeof(ev));
    ev.type = SLORA_EV_DONE;
    ev.id = q->r.id;
    ev.token = tok;
    ev.finish = finish;
    ev.cached_tokens = q->r.n_cached;
    if (tok >= 0 && q->top_logprobs >= 0 && pk != NULL) {
        ev.logprob = pk->logprob;
    }
    if (!q->draft.lookup) {
        ev.accepted_prediction = (int32_t) q->draft.accepted;
        ev.rejected_prediction = (int32_t) q->draft.rejected;
    }
    cb(data, &ev);
}


/* The largest logit less the second largest: how near a greedy choice
 * was to going the other way. */
static float
slora_engine_margin(const float *logits, int32_t vocab)
{
    float    a, b;
    int32_t  i;

    a = -INFINITY;
    b = -INFINITY;

    for (i = 0; i < vocab; i++) {
        if (logits[i] > a) {
            b = a;
            a = logits[i];

        } else if (logits[i] > b) {
            b = logits[i];
        }
    }

    return a - b;
}
