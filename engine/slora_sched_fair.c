/*
 * slora_sched_fair.c: per-tenant fair share, the Virtual Token Counter
 * (VTC, Sheng et al., "Fairness in Serving Large Language Models", OSDI
 * 2024), as a scheduler policy.
 *
 * The one idea: every tenant has a counter of the service it received,
 * in weighted tokens (fair_prefill per prompt token computed, charged
 * when a request is admitted, less those the prefix cache gives it, or
 * at its first chunk when it was admitted to wait for pages another
 * request is computing; fair_decode per generated token, charged as each
 * is sampled), and admission always serves the backlogged tenant with
 * the smallest counter. A tenant that becomes backlogged again has its
 * counter lifted to the smallest counter of those backlogged (or, when
 * none is, to the last one to leave), so time spent idle is never banked
 * as credit against the others. Among tenants of different priorities
 * (the catalog's), the higher goes first whatever the counters.
 *
 * Admission order alone cannot free a running slot: with every slot held
 * by a flooding tenant, a quiet one would wait for one of its requests to
 * end. So when every slot is taken and the request the pick would admit
 * belongs to a tenant with nothing running (or one whose counter trails
 * the other's by the gap, max_batch_tokens times the larger weight), a
 * running request of another tenant is preempted for it (recomputed
 * later, keeping its tokens, as when the pool runs dry): of the tenant of
 * the lowest priority and then the largest counter, its request with the
 * least computed (the least work lost). Never one of a tenant with less
 * service than the pick's or of a higher priority, and at a tie only for
 * a tenant that runs nothing: one that comes back is lifted to the
 * flood's counter, a tie, and takes a slot at once (at equal counters the
 * pick prefers the tenant with less running). The flood keeps a running
 * request, so it cannot preempt back at a tie. Against thrashing, a
 * request preempted before is not again until it has generated, since it
 * was last admitted, as many tokens as it had to recompute and at least
 * SLORA_FAIR_MIN_RUN: its preemptions cost at most the work it did, and
 * their number grows with the log of its length. A tenant with a single
 * request, never preempted, and nothing running (the interactive user
 * fair share is for) may preempt such a request anyway, up to
 * SLORA_FAIR_MAX_PREEMPT times in the victim's life: a flood of short
 * requests would otherwise be all guarded at once, and a request that
 * was preempted back loses the waiver, so no two can ping-pong.
 *
 * Design. Tenants are found by name in a hash table (the request's
 * tenant string; no tenant is the anonymous account ""). A tenant is
 * backlogged while it has waiting requests; the backlogged ones are
 * linked in a list, the minimum taken over it. The floor, the largest
 * such minimum seen, never goes down, so a tenant with no request left
 * whose counter is at or below it would be lifted to it anyway: its
 * entry is freed (at once, or by a sweep when idle entries pile up), and
 * the table holds only tenants that are active or ahead of the floor.
 * The pick scans the waiting queue: O(waiting) a pick; the victim, one
 * pick and a scan of the running queue.
 */

#include <stdlib.h>
#include <string.h>

#include "slora_sched_int.h"


#define SLORA_FAIR_BUCKETS      64      /* at first; doubles as it fills */
#define SLORA_FAIR_SWEEP        64      /* idle entries before a sweep */
#define SLORA_FAIR_MIN_RUN      8       /* tokens before a preempted
                                           request may be again */
#define SLORA_FAIR_MAX_PREEMPT  3       /* for lone requests, sooner */


typedef struct slora_fair_tenant_s  slora_fair_tenant_t;

struct slora_fair_tenant_s {
    slora_fair_tenant_t   *next;        /* hash chain */
    slora_fair_tenant_t   *bl_prev;     /* backlogged list */
    slora_fair_tenant_t   *bl_next;
    int64_t                counter;     /* weighted tokens served */
    int32_t                n_reqs;      /* in the scheduler */
    int32_t                n_waiting;
    uint32_t               hash;
    char                   name[];
};


typedef struct {
    slora_fair_tenant_t  **buckets;     /* [n_buckets] */
    uint32_t               n_buckets;
    uint32_t               n_tenants;
    uint32_t               n_idle;      /* entries with no request */
    uint32_t               sweep_at;
    slora_fair_tenant_t   *backlogged;
    int64_t                floor;
    slora_fair_tenant_t   *spill;       /* for tenants no memory was left
                                           for: one shared account */
} slora_fair_t;


static int slora_sched_fair_init(slora_sched_t *s, slora_err_t *err);
static void slora_sched_fair_free(slora_sched_t *s);
static void slora_sched_fair_moved(slora_sched_t *s, slora_req_t *r,
    slora_req_state_e from);
static void slora_sched_fair_prepare(slora_sched_t *s,
    slora_sched_step_t *step, int64_t now_ns);
static slora_req_t *slora_sched_fair_pick(slora_sched_t *s);
static void slora_sched_fair_settled(slora_sched_t *s, slora_req_t *r,
    int32_t taken);
static void slora_sched_fair_computed(slora_sched_t *s,
    const slora_sched_item_t *it);
static slora_req_t *slora_sched_fair_victim(slora_sched_t *s);
static int slora_fair_before(const slora_req_t *a, const slora_req_t *b);
static slora_fair_tenant_t *slora_fair_account(slora_fair_t *f,
    const char *name);
static int64_t slora_fair_floor(slora_fair_t *f);
static void slora_fair_charge_prompt(slora_sched_t *s, slora_req_t *r,
    int32_t cached);
static void slora_fair_remove(slora_fair_t *f, slora_fair_tenant_t *t);
static void slora_fair_grow(slora_fair_t *f);


const slora_sched_policy_t  slora_sched_fair = {
    "fair",
    slora_sched_fair_init,
    slora_sched_fair_free,
    slora_sched_fair_moved,
    slora_sched_fair_prepare,
    slora_sched_fair_pick,
    slora_sched_fair_computed,
    slora_sched_fair_victim,
    slora_sched_fair_settled
};


static int
slora_sched_fair_init(slora_sched_t *s, slora_err_t *err)
{
    slora_fair_t  *f;

    f = calloc(1, sizeof(slora_fair_t));
    if (f == NULL) {
        return slora_err_set(err, SLORA_ERROR, "scheduler: out of memory");
    }

    f->n_buckets = SLORA_FAIR_BUCKETS;
    f->sweep_at = SLORA_FAIR_SWEEP;
    f->buckets = calloc(f->n_buckets, sizeof(slora_fair_tenant_t *));
    f->spill = calloc(1, sizeof(slora_fair_tenant_t) + 1);

    s->policy_data = f;

    if (f->buckets == NULL || f->spill == NULL) {
        return slora_err_set(err, SLORA_ERROR, "scheduler: out of memory");
    }

    return SLORA_OK;
}


static void
slora_sched_fair_free(slora_sched_t *s)
{
    uint32_t              i;
    slora_fair_t         *f;
    slora_fair_tenant_t  *t, *next;

    f = s->policy_data;
    if (f == NULL) {
        return;
    }

    for (i = 0; f->buckets != NULL && i < f->n_buckets; i++) {
        for (t = f->buckets[i]; t != NULL; t = next) {
            next = t->next;
            free(t);
        }
    }

    free(f->buckets);
    free(f->spill);
    free(f);
    s->policy_data = NULL;
}


static void
slora_sched_fair_moved(slora_sched_t *s, slora_req_t *r,
    slora_req_state_e from)
{
    int64_t               floor;
    slora_fair_t         *f;
    slora_fair_tenant_t  *t;

    f = s->policy_data;

    if (from == SLORA_REQ_NEW) {
        t = slora_fair_account(f, r->tenant != NULL ? r->tenant : "");
        r->account = t;

        if (t->n_reqs++ == 0 && t != f->spill) {
            f->n_idle--;
        }
    }

    t = r->account;

    if (from == SLORA_REQ_WAITING && --t->n_waiting == 0) {
        /* no longer backlogged */
        if (t->bl_prev != NULL) {
            t->bl_prev->bl_next = t->bl_next;
        } else {
            f->backlogged = t->bl_next;
        }

        if (t->bl_next != NULL) {
            t->bl_next->bl_prev = t->bl_prev;
        }

        t->bl_prev = NULL;
        t->bl_next = NULL;

        if (f->backlogged == NULL && t->counter > f->floor) {
            f->floor = t->counter;
        }
    }

    if (r->state == SLORA_REQ_WAITING && t->n_waiting++ == 0) {
        /* backlogged again: lifted, it banks no credit */
        floor = slora_fair_floor(f);
        if (t->counter < floor) {
            t->counter = floor;
        }

        t->bl_prev = NULL;
        t->bl_next = f->backlogged;
        if (f->backlogged != NULL) {
            f->backlogged->bl_prev = t;
        }
        f->backlogged = t;
    }

    if (r->state == SLORA_REQ_RUNNING && r->n_charged == 0 && !r->awaits) {
        slora_fair_charge_prompt(s, r, r->n_computed);
    }

    if (r->state == SLORA_REQ_DONE) {
        r->account = NULL;

        if (--t->n_reqs > 0 || t == f->spill) {
            return;
        }

        /* idle now; one the floor has caught up with goes at once
         * (slora_fair_remove counts an idle entry less) */
        f->n_idle++;

        if (t->counter <= slora_fair_floor(f)) {
            slora_fair_remove(f, t);
        }
    }
}


/* Frees idle entries the floor has caught up with, when they pile up. */
static void
slora_sched_fair_prepare(slora_sched_t *s, slora_sched_step_t *step,
    int64_t now_ns)
{
    int64_t               floor;
    uint32_t              i;
    slora_fair_t         *f;
    slora_fair_tenant_t  *t, *next;

    f = s->policy_data;

    if (f->n_idle < f->sweep_at) {
        return;
    }

    floor = slora_fair_floor(f);

    for (i = 0; i < f->n_buckets; i++) {
        for (t = f->buckets[i]; t != NULL; t = next) {
            next = t->next;
            if (t->n_reqs == 0 && t->counter <= floor) {
                slora_fair_remove(f, t);
            }
        }
    }

    f->sweep_at = 2 * f->n_idle + SLORA_FAIR_SWEEP;
}


/* The oldest waiting request of the highest priority, of the tenant with
 * the smallest counter among them. */
static slora_req_t *
slora_sched_fair_pick(slora_sched_t *s)
{
    slora_req_t          *r, *best;
    slora_fair_tenant_t  *t, *bt;

    best = NULL;
    bt = NULL;

    for (r = s->waiting.head; r != NULL; r = r->next) {
        t = r->account;

        /* at equal counters the tenant with less running goes first */
        if (best == NULL || r->priority > best->priority
            || (r->priority == best->priority
                && (t->counter < bt->counter
                    || (t->counter == bt->counter
                        && t->n_reqs - t->n_waiting
                           < bt->n_reqs - bt->n_waiting))))
        {
            best = r;
            bt = t;
        }
    }

    return best;
}


static void
slora_sched_fair_computed(slora_sched_t *s, const slora_sched_item_t *it)
{
    slora_fair_tenant_t  *t;

    if (it->req->n_charged == 0) {
        /* admitted while it awaited another's pages: its first chunk
         * starts after all it took from the cache */
        slora_fair_charge_prompt(s, it->req, it->pos);
    }

    if (!it->logits) {
        return;
    }

    /* the chunk ends where a token is sampled: one token generated */
    t = it->req->account;
    t->counter += s->conf.fair_decode;
    it->req->n_charged++;
}


/* A draft's tokens kept: each a token generated, charged as decoding's
 * (computed charged the one sampled after them). */
static void
slora_sched_fair_settled(slora_sched_t *s, slora_req_t *r, int32_t taken)
{
    slora_fair_tenant_t  *t;

    t = r->account;
    t->counter += (int64_t) taken * s->conf.fair_decode;
    r->n_charged += taken;
}


/* Charges r's prompt once, less the first cached tokens the prefix cache
 * gave it: the service it receives is what is computed for it. */
static void
slora_fair_charge_prompt(slora_sched_t *s, slora_req_t *r, int32_t cached)
{
    slora_fair_tenant_t  *t;

    slora_assert(cached < r->n_prompt);

    t = r->account;
    t->counter += (int64_t) (r->n_prompt - cached) * s->conf.fair_prefill;
    r->n_charged = r->n_prompt - cached;
}


/* The running request whose slot the next pick should take, or NULL (the
 * rule is in the file's header). */
static slora_req_t *
slora_sched_fair_victim(slora_sched_t *s)
{
    int32_t               need;
    int64_t               gap;
    slora_req_t          *b, *r, *v;
    slora_fair_tenant_t  *tb, *t;

    b = slora_sched_fair_pick(s);
    if (b == NULL) {
        return NULL;
    }

    tb = b->account;
    gap = (int64_t) s->conf.max_batch_tokens
          * (s->conf.fair_prefill > s->conf.fair_decode
             ? s->conf.fair_prefill : s->conf.fair_decode);
    v = NULL;

    for (r = s->running.head; r != NULL; r = r->next) {
        t = r->account;

        /* never for more service; at a tie only for a tenant that runs
         * nothing (it comes back lifted to the others' counter), and
         * only from a tenant that keeps another running: one left with
         * nothing running ties with it, and the pick's tie-break (less
         * running, then arrival) would take the one just put back */
        if (t == tb || r->priority > b->priority
            || t->counter < tb->counter
            || (t->counter == tb->counter
                && (tb->n_reqs > tb->n_waiting
                    || t->n_reqs - t->n_waiting <= 1)))
        {
            continue;
        }

        /* tb runs something already: only when far below */
        if (tb->n_reqs > tb->n_waiting && t->counter - tb->counter < gap) {
            continue;
        }

        /* the guard against thrashing, waived for a tenant with one
         * request, never preempted, and nothing running (an interactive
         * one), up to SLORA_FAIR_MAX_PREEMPT preemptions of a request */
        if (r->n_preempted > 0
            && !(tb->n_reqs == 1 && tb->n_waiting == 1
                 && b->n_preempted == 0
                 && r->n_preempted < SLORA_FAIR_MAX_PREEMPT))
        {
            need = r->run_from > SLORA_FAIR_MIN_RUN ? r->run_from
                                                    : SLORA_FAIR_MIN_RUN;
            /* a draft set before the plan is no token generated yet */
            if (r->n_tokens - r->n_draft - r->run_from < need) {
                continue;
            }
        }

        if (v == NULL || slora_fair_before(r, v)) {
            v = r;
        }
    }

    return v;
}


/* Whether running request a is a better victim than b. */
static int
slora_fair_before(const slora_req_t *a, const slora_req_t *b)
{
    const slora_fair_tenant_t  *ta, *tb;

    ta = a->account;
    tb = b->account;

    if (a->priority != b->priority) {
        return a->priority < b->priority;
    }

    if (ta->counter != tb->counter) {
        return ta->counter > tb->counter;
    }

    if (a->n_computed != b->n_computed) {
        return a->n_computed < b->n_computed;
    }

    return a->seq > b->seq;
}


/* The entry for name, made (idle, at the floor) if there is none. */
static slora_fair_tenant_t *
slora_fair_account(slora_fair_t *f, const char *name)
{
    size_t                len;
    uint32_t              h;
    slora_fair_tenant_t  *t;

    h = (uint32_t) slora_fnv1a(name, strlen(name));

    for (t = f->buckets[h & (f->n_buckets - 1)]; t != NULL; t = t->next) {
        if (t->hash == h && strcmp(t->name, name) == 0) {
            return t;
        }
    }

    len = strlen(name);
    t = calloc(1, sizeof(slora_fair_tenant_t) + len + 1);
    if (t == NULL) {
        return f->spill;
    }

    memcpy(t->name, name, len + 1);
    t->hash = h;
    t->counter = slora_fair_floor(f);
    t->next = f->buckets[h & (f->n_buckets - 1)];
    f->buckets[h & (f->n_buckets - 1)] = t;
    f->n_tenants++;
    f->n_idle++;

    if (f->n_tenants > f->n_buckets) {
        slora_fair_grow(f);
    }

    return t;
}


/* The smallest counter of the backlogged tenants, never below what it
 * was: new tenants are lifted to it. */
static int64_t
slora_fair_floor(slora_fair_t *f)
{
    int64_t               min;
    slora_fair_tenant_t  *t;

    if (f->backlogged == NULL) {
        return f->floor;
    }

    min = f->backlogged->counter;
    for (t = f->backlogged->bl_next; t != NULL; t = t->bl_next) {
        if (t->counter < min) {
            min = t->counter;
        }
    }

    if (min > f->floor) {
        f->floor = min;
    }

    return f->floor;
}


/* Frees idle entry t. */
static void
slora_fair_remove(slora_fair_t *f, slora_fair_tenant_t *t)
{
    slora_fair_tenant_t  **pp;

    slora_assert(t->n_reqs == 0 && t->n_waiting == 0);

    for (pp = &f->buckets[t->hash & (f->n_buckets - 1)]; *pp != t;
         pp = &(*pp)->next)
    {
        /* void */
    }

    *pp = t->next;
    f->n_tenants--;
    f->n_idle--;
    free(t);
}


/* Doubles the table; stays as it is if there is no memory. */
static void
slora_fair_grow(slora_fair_t *f)
{
    uint32_t               i, n;
    slora_fair_tenant_t   *t, *next, **b;

    n = f->n_buckets * 2;
    b = calloc(n, sizeof(slora_fair_tenant_t *));
    if (b == NULL) {
        return;
    }

    for (i = 0; i < f->n_buckets; i++) {
        for (t = f->buckets[i]; t != NULL; t = next) {
            next = t->next;
            t->next = b[t->hash & (n - 1)];
            b[t->hash & (n - 1)] = t;
        }
    }

    free(f->buckets);
    f->buckets = b;
    f->n_buckets = n;
}


int64_t
slora_sched_fair_counter(const slora_req_t *r)
{
    return ((const slora_fair_tenant_t *) r->account)->counter;
}


uint32_t
slora_sched_fair_idle(const slora_sched_t *s)
{
    return ((const slora_fair_t *) s->policy_data)->n_idle;
}

