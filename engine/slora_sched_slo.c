/*
 * slora_sched_slo.c: SLO admission with early abort (S-LoRA sections 4
 * and 7.5), and the step-time model its estimates stand on.
 *
 * The one idea: a request that cannot have its first token within its
 * SLO is refused while it still waits, before any compute is spent on
 * it, and the requests behind it are estimated without it: the hopeless
 * are dropped first, so those that can still make their deadline do.
 *
 * Design. Every plan walks the waiting queue in admission order (higher
 * priority first, then a request that already had its first token and
 * was preempted, then the earliest deadline, arrival + SLO) and
 * estimates each request's time to first token, the end of the step
 * that computes the last of its prompt:
 *
 *     P     = the prefill tokens of running requests still to compute
 *             + those of the kept requests ahead of it + its own, less
 *             those the prefix cache would give it at admission or the
 *             requests ahead will have entered in it by then
 *             (slora_sched_ahead.c; for the requests estimated: the
 *             others count whole)
 *     W     = their attention work: each prefill token's position + 1
 *     D, C  = the running requests (one decode token each per step) and
 *             their contexts, summed
 *     steps = ceil((P + skipped) / max(1, max_batch_tokens - D))
 *     est   = its wait so far + steps * per_step + (P + steps * D)
 *             * per_token + (W + steps * C) * per_pair
 *
 * A request whose est exceeds its SLO (its tenant's ttft_slo_ms, else
 * conf slo_ttft_ms) is aborted (SLORA_ABORTED, with a retry time) and
 * adds nothing to P. Requests without an SLO, and preempted ones that had
 * their first token already, are never aborted; without an SLO a request
 * is ordered as if it had one of a minute. The estimate assumes a running
 * slot is free: a request held back by max_running is caught as its wait
 * grows.
 *
 * A request's first tokens share a step with the last of those ahead of
 * it, and make that step, which ends in their first token, longer. The
 * walk keeps the step in which the last requests kept (or running ones
 * still in their prompts) get theirs, and the tightest time left to
 * their SLOs; when a request would make that step end too late, it is
 * deferred to the next step (its unused budget is `skipped`): it is
 * kept, and admission stops at it for this plan. If deferred it would
 * miss its own SLO, it is aborted instead: one of the two would miss,
 * and it is the later in order.
 *
 * Admission takes the kept requests in that order, with adapter
 * clustering: when the first one's adapter is not in the pool, a request
 * of the same priority whose deadline is within cluster_ms of the first's
 * and whose adapter is resident goes first.
 *
 * The step-time model: exponentially weighted means (weight 1/8 on the
 * newest step) of tokens n, time t less attention's, n^2 and n*t, and
 * the least-squares line through them, t = per_step + per_token * n.
 * When the steps' sizes barely vary the line is not determined, and all
 * the time is put on the tokens; a negative intercept or slope is
 * clamped the same way. per_pair is the mean attention time over the
 * mean attention work, where the backend measures attention (the CPU's,
 * where a long context's prompt costs far more a token than a short
 * one's); elsewhere 0.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_sched_int.h"


#define SLORA_SCHED_EWMA        0.125
#define SLORA_SCHED_NO_SLO_MS   60000


typedef struct {
    slora_req_t         *r;
    int64_t              deadline;      /* ns */
    int                  started;       /* had its first token */
    int                  deferred;      /* kept, but not before the next
                                           step: admission stops at it */
} slora_slo_entry_t;


/* Where a plan's walk stands: the prefill ahead, and the step in which
 * the last request kept (or running) gets its first token. */
typedef struct {
    slora_sched_model_t  m;
    int32_t              d;             /* running: a decode token each */
    int32_t              budget;        /* prefill tokens a step */
    int64_t              ctx;           /* the running ones' contexts */
    int64_t              p;             /* prefill tokens ahead */
    int64_t              skip;          /* budget left unused in steps
                                           ahead: deferred requests */
    double               w;             /* their attention work */
    int64_t              open;          /* that step, from 1; 0: none */
    double               room;          /* ns to the tightest SLO of those
                                           getting theirs in it */
    int32_t              n_open;        /* those with an SLO */
} slora_slo_walk_t;


typedef struct {
    slora_slo_entry_t   *order;         /* [cap]: kept, admission order */
    int32_t              n;
    int32_t              cap;
    int32_t              next;          /* entries before it are taken */
    int                  valid;         /* order built by this plan */
    slora_sched_ahead_t  ahead;         /* pages the kept ones enter */
} slora_slo_t;


static int slora_sched_slo_init(slora_sched_t *s, slora_err_t *err);
static void slora_sched_slo_free(slora_sched_t *s);
static void slora_sched_slo_prepare(slora_sched_t *s,
    slora_sched_step_t *step, int64_t now_ns);
static slora_req_t *slora_sched_slo_pick(slora_sched_t *s);
static int64_t slora_sched_slo_of(const slora_sched_t *s,
    const slora_req_t *r);
static int slora_sched_slo_cmp(const void *a, const void *b);
static void slora_sched_ewma(slora_sched_means_t *m, uint64_t samples,
    double x, double y);
static void slora_sched_fit(const slora_sched_means_t *m, double *a,
    double *b);
static double slora_slo_time(const slora_slo_walk_t *wk, int64_t skip,
    int64_t p, double w);
static void slora_slo_finish(slora_slo_walk_t *wk, double room);
static void slora_slo_refuse(slora_sched_t *s, slora_sched_step_t *step,
    slora_req_t *r, double excess);


const slora_sched_policy_t  slora_sched_slo = {
    "slo",
    slora_sched_slo_init,
    slora_sched_slo_free,
    NULL,
    slora_sched_slo_prepare,
    slora_sched_slo_pick,
    NULL,
    NULL,
    NULL
};


void
slora_sched_observe(slora_sched_t *s, const slora_sched_step_t *step,
    int64_t ns, int64_t attention_ns)
{
    double                 a, b, c, att;
    slora_sched_timing_t  *tm;

    if (step->n_tokens <= 0 || ns < 0) {
        return;
    }

    if (attention_ns < 0 || attention_ns > ns) {
        attention_ns = 0;
    }

    tm = &s->timing;

    slora_sched_ewma(&tm->tokens, tm->samples, (double) step->n_tokens,
                     (double) (ns - attention_ns));
    slora_sched_ewma(&tm->attention, tm->samples, (double) step->n_pairs,
                     (double) attention_ns);
    tm->samples++;

    /* attention: a part a step, and the rest by its work; where the work
     * barely varied, the last slope found stands */
    c = tm->model.per_pair_ns;
    slora_sched_fit(&tm->attention, &att, &c);

    /* the rest: a part a step, and the rest by tokens; where the steps'
     * sizes barely varied, all by tokens */
    b = tm->tokens.y / tm->tokens.x;
    slora_sched_fit(&tm->tokens, &a, &b);

    tm->model.per_step_ns = llround(a + att);
    tm->model.per_token_ns = llround(b);
    tm->model.per_pair_ns = c;
}


/* Folds the point (x, y) into the means m, the first one taken whole. */
static void
slora_sched_ewma(slora_sched_means_t *m, uint64_t samples, double x,
    double y)
{
    if (samples == 0) {
        m->x = x;
        m->y = y;
        m->xx = x * x;
        m->xy = x * y;
        return;
    }

    m->x += SLORA_SCHED_EWMA * (x - m->x);
    m->y += SLORA_SCHED_EWMA * (y - m->y);
    m->xx += SLORA_SCHED_EWMA * (x * x - m->xx);
    m->xy += SLORA_SCHED_EWMA * (x * y - m->xy);
}


/*
 * The least-squares line y = a + b x through the means, neither term
 * negative. When x barely varied the line is not determined: then b is
 * the caller's (it comes in set), and a what it leaves. A negative slope
 * puts all of y on a, a negative intercept all of it on x.
 */
static void
slora_sched_fit(const slora_sched_means_t *m, double *a, double *b)
{
    double  var, cov;

    var = m->xx - m->x * m->x;
    cov = m->xy - m->x * m->y;

    if (var > 1.0 && var > 0.0025 * m->x * m->x) {
        *b = cov / var;
    }

    *a = m->y - *b * m->x;

    if (*b < 0) {
        *b = 0;
        *a = m->y;

    } else if (*a < 0) {
        *a = 0;
        *b = m->x > 0 ? m->y / m->x : 0;
    }
}


void
slora_sched_step_model(const slora_sched_t *s, slora_sched_model_t *m)
{
    *m = s->timing.model;
}


static int
slora_sched_slo_init(slora_sched_t *s, slora_err_t *err)
{
    s->policy_data = calloc(1, sizeof(slora_slo_t));
    if (s->policy_data == NULL) {
        return slora_err_set(err, SLORA_ERROR, "scheduler: out of memory");
    }

    return SLORA_OK;
}


static void
slora_sched_slo_free(slora_sched_t *s)
{
    slora_slo_t  *st;

    st = s->policy_data;
    if (st == NULL) {
        return;
    }

    free(st->order);
    slora_sched_ahead_free(&st->ahead);
    free(st);
    s->policy_data = NULL;
}


static void
slora_sched_slo_prepare(slora_sched_t *s, slora_sched_step_t *step,
    int64_t now_ns)
{
    int32_t             n, cap, ahead, cached, ahead_pages;
    int                 ahead_ok;
    int64_t             p_i, p_o, end, skip, slo, wait;
    double              w_i, est, room;
    slora_slo_t        *st;
    slora_slo_walk_t    wk;
    slora_req_t        *r;
    slora_slo_entry_t  *e, *grown;

    st = s->policy_data;
    st->n = 0;
    st->next = 0;
    st->valid = 0;

    if (s->waiting.n > st->cap) {
        cap = s->waiting.n > 2 * st->cap ? s->waiting.n : 2 * st->cap;
        grown = realloc(st->order, (size_t) cap * sizeof(slora_slo_entry_t));
        if (grown == NULL) {
            /* no estimate this plan: admission in arrival order */
            return;
        }
        st->order = grown;
        st->cap = cap;
    }

    n = 0;
    for (r = s->waiting.head; r != NULL; r = r->next) {
        e = &st->order[n++];
        e->r = r;
        e->started = r->n_tokens > r->n_prompt;
        slo = slora_sched_slo_of(s, r);
        e->deadline = r->arrival_ns
                      + (slo > 0 ? slo
                                 : (int64_t) SLORA_SCHED_NO_SLO_MS * 1000000);
    }

    if (n > 0) {
        /* qsort's base may not be NULL, even for none */
        qsort(st->order, (size_t) n, sizeof(slora_slo_entry_t),
              slora_sched_slo_cmp);
    }

    memset(&wk, 0, sizeof(wk));
    wk.m = s->timing.model;
    wk.d = s->running.n;
    wk.budget = s->conf.max_batch_tokens - wk.d > 1
                ? s->conf.max_batch_tokens - wk.d : 1;
    wk.room = HUGE_VAL;

    ahead_ok = s->prefix != NULL;
    slora_sched_ahead_reset(&st->ahead);

    /* the first pages, which tell the requests that share a beginning */
    for (r = s->running.head; ahead_ok && r != NULL; r = r->next) {
        if (r->n_tokens - r->n_computed > 1 && !r->unshared) {
            ahead_ok = slora_sched_ahead_first(s, &st->ahead, r) == SLORA_OK;
        }
    }

    for (e = st->order; ahead_ok && e < st->order + n; e++) {
        if (!e->started) {
            ahead_ok = slora_sched_ahead_first(s, &st->ahead, e->r)
                       == SLORA_OK;
        }
    }

    for (r = s->running.head; r != NULL; r = r->next) {
        wk.ctx += r->n_tokens;

        if (r->n_tokens - r->n_computed <= 1) {
            continue;
        }

        wk.p += r->n_tokens - r->n_computed;
        wk.w += (double) slora_sched_pairs(r->n_computed, r->n_tokens);

        /* one already past its SLO is not kept to it: holding others
         * back for it would make them miss theirs and save nothing */
        slo = slora_sched_slo_of(s, r);
        wait = now_ns > r->arrival_ns ? now_ns - r->arrival_ns : 0;
        slora_slo_finish(&wk, slo > wait && r->n_tokens == r->n_prompt
                              ? (double) (slo - wait) : HUGE_VAL);

        if (ahead_ok && !r->unshared) {
            ahead_ok = slora_sched_ahead_add(s, &st->ahead, r) == SLORA_OK;
        }
    }

    ahead = 0;

    for (e = st->order; e < st->order + n; e++) {
        r = e->r;
        slo = slora_sched_slo_of(s, r);
        wait = now_ns > r->arrival_ns ? now_ns - r->arrival_ns : 0;
        cached = 0;

        if (slo > 0 && !e->started) {
            cached = slora_sched_cached(s, r);
            ahead_pages = ahead_ok
                          ? slora_sched_ahead_pages(s, &st->ahead, r) : 0;
            cached = ahead_pages * s->tpp > cached ? ahead_pages * s->tpp
                                                   : cached;
        }

        p_i = wk.p + r->n_tokens - cached;
        w_i = wk.w + (double) slora_sched_pairs(cached, r->n_tokens);
        room = slo > 0 && !e->started ? (double) (slo - wait) : HUGE_VAL;
        e->deferred = 0;

        if (room < HUGE_VAL) {
            est = slora_slo_time(&wk, 0, p_i, w_i);

            if (est > room) {
                slora_err_set(&r->err, SLORA_ABORTED, "time to first "
                              "token estimated at %.3f s, above its SLO of "
                              "%.3f s (%d requests and %lld tokens to "
                              "prefill ahead of it)",
                              ((double) wait + est) / 1e9,
                              (double) slo / 1e9, ahead + s->running.n,
                              (long long) wk.p);
                slora_slo_refuse(s, step, r, est - room);
                continue;
            }
        }

        /* its first tokens would fill the step in which those kept last
         * get their first token: that step must still end in their time,
         * or it waits for the next step */
        end = wk.open * wk.budget - wk.skip;
        p_o = p_i < end ? p_i : end;

        if (!e->started && wk.n_open > 0 && p_o > wk.p
            && slora_slo_time(&wk, 0, p_o,
                              wk.w + (w_i - wk.w) * (double) (p_o - wk.p)
                                     / (double) (p_i - wk.p))
               > wk.room)
        {
            skip = end - wk.p;

            if (room < HUGE_VAL) {
                est = slora_slo_time(&wk, skip, p_i, w_i);

                if (est > room) {
                    slora_err_set(&r->err, SLORA_ABORTED, "time to first "
                                  "token estimated at %.3f s, above its "
                                  "SLO of %.3f s, unless it made those "
                                  "getting their first token in its step "
                                  "(%d) miss theirs",
                                  ((double) wait + est) / 1e9,
                                  (double) slo / 1e9, wk.n_open);
                    slora_slo_refuse(s, step, r, est - room);
                    continue;
                }
            }

            wk.skip += skip;
            e->deferred = 1;
        }

        wk.p = p_i;
        wk.w = w_i;
        slora_slo_finish(&wk, room);
        st->order[st->n++] = *e;
        ahead++;

        if (ahead_ok && !e->started) {
            ahead_ok = slora_sched_ahead_add(s, &st->ahead, r) == SLORA_OK;
        }
    }

    st->valid = 1;
}


/* The time from now to the end of the step in which the prefill ahead
 * reaches p tokens, of attention work w, with skip more of the steps'
 * budget left unused: the steps' own, every token's, the running
 * requests' decode tokens in each, and the attention over the prefill
 * and over the running requests' contexts in each. */
static double
slora_slo_time(const slora_slo_walk_t *wk, int64_t skip, int64_t p,
    double w)
{
    int64_t  steps;

    steps = (p + wk->skip + skip + wk->budget - 1) / wk->budget;

    return (double) steps * (double) wk->m.per_step_ns
           + (double) (p + steps * wk->d) * (double) wk->m.per_token_ns
           + (w + (double) steps * (double) wk->ctx) * wk->m.per_pair_ns;
}


/* A request kept, or one running that still computes its prompt, gets
 * its first token in the step where the prefill ahead ends (wk->p); room:
 * the time left to its SLO (HUGE_VAL: none). */
static void
slora_slo_finish(slora_slo_walk_t *wk, double room)
{
    int64_t  k;

    k = (wk->p + wk->skip + wk->budget - 1) / wk->budget;

    if (k != wk->open) {
        wk->open = k;
        wk->room = HUGE_VAL;
        wk->n_open = 0;
    }

    if (room < HUGE_VAL) {
        wk->room = room < wk->room ? room : wk->room;
        wk->n_open++;
    }
}


/* Refuses waiting request r, r->err set: its first token would come late
 * by excess ns, or make others late by that much. */
static void
slora_slo_refuse(slora_sched_t *s, slora_sched_step_t *step, slora_req_t *r,
    double excess)
{
    r->err.retry_ms = excess > 1e9 ? (int32_t) fmin(ceil(excess / 1e6),
                                                    3600000)
                                   : 1000;

    /* aborted or, the step's list full, left out of this plan and aborted
     * at the next: either way not ahead */
    (void) slora_sched_abort(s, step, r);
}


static slora_req_t *
slora_sched_slo_pick(slora_sched_t *s)
{
    int64_t             window;
    slora_slo_t        *st;
    slora_slo_entry_t  *first, *e;

    st = s->policy_data;

    if (!st->valid) {
        return s->waiting.head;
    }

    while (st->next < st->n
           && st->order[st->next].r->state != SLORA_REQ_WAITING)
    {
        st->next++;
    }

    if (st->next == st->n || st->order[st->next].deferred) {
        return NULL;
    }

    first = &st->order[st->next];

    if (s->conf.cluster_ms < 0 || slora_sched_resident(first->r)) {
        return first->r;
    }

    window = (int64_t) s->conf.cluster_ms * 1000000;

    for (e = first + 1; e < st->order + st->n; e++) {
        if (e->deferred || e->r->priority != first->r->priority
            || e->started != first->started
            || e->deadline > first->deadline + window)
        {
            break;
        }

        if (e->r->state == SLORA_REQ_WAITING && slora_sched_resident(e->r)) {
            return e->r;
        }
    }

    return first->r;
}


/* r's TTFT SLO in ns, 0: none. */
static int64_t
slora_sched_slo_of(const slora_sched_t *s, const slora_req_t *r)
{
    int32_t  ms;

    ms = r->ttft_slo_ms > 0 ? r->ttft_slo_ms : s->conf.slo_ttft_ms;

    return (int64_t) ms * 1000000;
}


/* Priority, then started ones, then deadline, then arrival. */
static int
slora_sched_slo_cmp(const void *a, const void *b)
{
    const slora_slo_entry_t  *x, *y;

    x = a;
    y = b;

    if (x->r->priority != y->r->priority) {
        return x->r->priority > y->r->priority ? -1 : 1;
    }

    if (x->started != y->started) {
        return x->started ? -1 : 1;
    }

    if (x->deadline != y->deadline) {
        return x->deadline < y->deadline ? -1 : 1;
    }

    return x->r->seq < y->r->seq ? -1 : (x->r->seq > y->r->seq);
}
