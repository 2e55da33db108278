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
 * estimates each request's time to first token:
 *
 *     P     = the prefill tokens of running requests still to compute
 *             + those of the kept requests ahead of it + its own, less
 *             those the prefix cache would give it at admission or the
 *             requests ahead will have entered in it by then
 *             (slora_sched_ahead.c; for the requests estimated: the
 *             others count whole)
 *     D     = the running requests (one decode token each per step)
 *     steps = ceil(P / max(1, max_batch_tokens - D))
 *     est   = its wait so far + steps * per_step + (P + steps * D)
 *             * per_token
 *
 * A request whose est exceeds its SLO (its tenant's ttft_slo_ms, else
 * conf slo_ttft_ms) is aborted (SLORA_ABORTED, with a retry time) and
 * adds nothing to P. Requests without an SLO, and preempted ones that had
 * their first token already, are never aborted; without an SLO a request
 * is ordered as if it had one of a minute. The estimate assumes a running
 * slot is free: a request held back by max_running is caught as its wait
 * grows.
 *
 * Admission takes the kept requests in that order, with adapter
 * clustering: when the first one's adapter is not in the pool, a request
 * of the same priority whose deadline is within cluster_ms of the first's
 * and whose adapter is resident goes first.
 *
 * The step-time model: exponentially weighted means (weight 1/8 on the
 * newest step) of tokens n, time t, n^2 and n*t, and the least-squares
 * line through them, t = per_step + per_token * n. When the steps' sizes
 * barely vary the line is not determined, and all the time is put on the
 * tokens; a negative intercept or slope is clamped the same way.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "slora_sched_int.h"


#define SLORA_SCHED_EWMA        0.125
#define SLORA_SCHED_NO_SLO_MS   60000


typedef struct {
    slora_req_t         *r;
    int64_t              deadline;      /* ns */
    int                  started;       /* had its first token */
} slora_slo_entry_t;


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


const slora_sched_policy_t  slora_sched_slo = {
    "slo",
    slora_sched_slo_init,
    slora_sched_slo_free,
    NULL,
    slora_sched_slo_prepare,
    slora_sched_slo_pick,
    NULL,
    NULL
};


void
slora_sched_observe(slora_sched_t *s, int32_t n_tokens, int64_t ns)
{
    double                 x, y, a, b, var, cov;
    slora_sched_timing_t  *tm;

    if (n_tokens <= 0 || ns < 0) {
        return;
    }

    tm = &s->timing;
    x = (double) n_tokens;
    y = (double) ns;

    if (tm->samples == 0) {
        tm->n = x;
        tm->t = y;
        tm->nn = x * x;
        tm->nt = x * y;

    } else {
        tm->n += SLORA_SCHED_EWMA * (x - tm->n);
        tm->t += SLORA_SCHED_EWMA * (y - tm->t);
        tm->nn += SLORA_SCHED_EWMA * (x * x - tm->nn);
        tm->nt += SLORA_SCHED_EWMA * (x * y - tm->nt);
    }

    tm->samples++;

    var = tm->nn - tm->n * tm->n;
    cov = tm->nt - tm->n * tm->t;

    if (var > 1.0 && var > 0.0025 * tm->n * tm->n) {
        b = cov / var;
        a = tm->t - b * tm->n;

    } else {
        b = tm->t / tm->n;
        a = 0;
    }

    if (b < 0) {
        b = 0;
        a = tm->t;

    } else if (a < 0) {
        a = 0;
        b = tm->t / tm->n;
    }

    tm->per_step_ns = llround(a);
    tm->per_token_ns = llround(b);
}


void
slora_sched_step_model(const slora_sched_t *s, int64_t *per_step_ns,
    int64_t *per_token_ns)
{
    *per_step_ns = s->timing.per_step_ns;
    *per_token_ns = s->timing.per_token_ns;
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
    int32_t             n, cap, ahead, budget, d, cached, ahead_pages;
    int                 ahead_ok;
    int64_t             p, p_i, slo, wait, steps, tokens;
    double              est, excess;
    slora_slo_t        *st;
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

    qsort(st->order, (size_t) n, sizeof(slora_slo_entry_t),
          slora_sched_slo_cmp);

    d = s->running.n;
    budget = s->conf.max_batch_tokens - d > 1 ? s->conf.max_batch_tokens - d
                                              : 1;
    p = 0;
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
        if (r->n_tokens - r->n_computed > 1) {
            p += r->n_tokens - r->n_computed;

            if (ahead_ok && !r->unshared) {
                ahead_ok = slora_sched_ahead_add(s, &st->ahead, r)
                           == SLORA_OK;
            }
        }
    }

    ahead = 0;

    for (e = st->order; e < st->order + n; e++) {
        r = e->r;
        slo = slora_sched_slo_of(s, r);
        cached = 0;

        if (slo > 0 && !e->started) {
            cached = slora_sched_cached(s, r);
            ahead_pages = ahead_ok
                          ? slora_sched_ahead_pages(s, &st->ahead, r) : 0;
            cached = ahead_pages * s->tpp > cached ? ahead_pages * s->tpp
                                                   : cached;
        }

        p_i = p + r->n_tokens - cached;

        if (slo > 0 && !e->started) {
            wait = now_ns > r->arrival_ns ? now_ns - r->arrival_ns : 0;
            steps = (p_i + budget - 1) / budget;
            tokens = p_i + steps * d;
            est = (double) wait
                  + (double) steps * (double) s->timing.per_step_ns
                  + (double) tokens * (double) s->timing.per_token_ns;

            if (est > (double) slo) {
                excess = est - (double) wait - (double) slo;
                r->retry_after_ms = excess > 1e9
                                    ? (int32_t) fmin(ceil(excess / 1e6),
                                                     3600000)
                                    : 1000;

                slora_err_set(&r->err, SLORA_ABORTED, "time to first token "
                              "estimated at %.3f s, above its SLO of %.3f s "
                              "(%d requests and %lld tokens to prefill "
                              "ahead of it)", est / 1e9, (double) slo / 1e9,
                              ahead + s->running.n, (long long) p);

                /* aborted or, the step's list full, left out of this
                 * plan and aborted at the next: either way not ahead */
                (void) slora_sched_abort(s, step, r);
                continue;
            }
        }

        p = p_i;
        st->order[st->n++] = *e;
        ahead++;

        if (ahead_ok && !e->started) {
            ahead_ok = slora_sched_ahead_add(s, &st->ahead, r) == SLORA_OK;
        }
    }

    st->valid = 1;
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

    if (st->next == st->n) {
        return NULL;
    }

    first = &st->order[st->next];

    if (s->conf.cluster_ms < 0 || slora_sched_resident(first->r)) {
        return first->r;
    }

    window = (int64_t) s->conf.cluster_ms * 1000000;

    for (e = first + 1; e < st->order + st->n; e++) {
        if (e->r->priority != first->r->priority
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
