/*
 * slora_sched.c: the scheduling mechanism: two queues ordered by arrival
 * (waiting, running), the plan of one step under a token budget, KV page
 * growth, and preemption by recomputation.
 *
 * The one idea: a request is only a token array and a count of tokens
 * whose K/V is cached. A decode is the case "one token left to compute",
 * a prefill chunk any larger case, and a preempted request simply has its
 * count set back to zero: it is prefilled again, prompt and generated
 * tokens alike, and continues where it was. Nothing is ever lost.
 *
 * Design. A step is planned in three moves, after a preemption the policy
 * may ask for:
 *   0. when every running slot is taken and a request waits, the policy
 *      (its victim hook) may name one running request to preempt, at
 *      most one a plan, so that its next pick takes the slot;
 *   1. running requests, oldest first: decodes take one token each (their
 *      tokens are reserved before any prefill chunk), unfinished prefills
 *      take what remains of the budget; each grows its KV pages, and when
 *      the pool is dry, idle adapters are evicted first, then the newest
 *      running request is preempted (it may be the one growing);
 *   2. admission, in the policy's order, while the budget and max_running
 *      allow: the request's adapter is made resident and pinned, the
 *      prefix cache's pages of its tokens taken and its first chunk's
 *      pages allocated, or the request waits (head of line); before it,
 *      the policy may abort waiting requests. A request whose next page
 *      a running request is computing (the same tokens under the same
 *      owner: a burst of one system prompt) is admitted to compute
 *      nothing until that page is cached, then takes it and goes on;
 *   3. the step's sequences are grouped by adapter for the LoRA kernels.
 * Every change of a request's state goes through slora_sched_move(),
 * which tells the policy (its moved hook).
 *
 * The two policies that need nothing but the queues' order live here:
 * FCFS (the head of the waiting queue) and LCFS (its tail).
 */

#include <stdlib.h>
#include <string.h>

#include "slora_sched_int.h"


static slora_req_t *slora_sched_fcfs_pick(slora_sched_t *s);
static slora_req_t *slora_sched_lcfs_pick(slora_sched_t *s);
static void slora_sched_move(slora_sched_t *s, slora_req_t *r,
    slora_req_state_e to);
static int slora_sched_grow(slora_sched_t *s, slora_req_t *r, int32_t n_tok);
static void slora_sched_drop(slora_sched_t *s, slora_req_t *r);
static void slora_sched_take_prefix(slora_sched_t *s, slora_req_t *r);
static int slora_sched_computing(slora_sched_t *s, const slora_req_t *r);
static void slora_sched_share(slora_sched_t *s, slora_req_t *r);
static void slora_sched_let_go(slora_sched_t *s, slora_req_t *r);
static void slora_sched_unadmit(slora_sched_t *s, slora_req_t *r);
static void slora_sched_preempt(slora_sched_t *s, slora_req_t *r);
static void slora_sched_fail(slora_sched_t *s, slora_sched_step_t *step,
    slora_req_t *r);
static int32_t slora_sched_score_rows(const slora_req_t *r, int32_t chunk);
static int32_t slora_sched_score_cap(const slora_req_t *r, int32_t chunk,
    int32_t left);
static void slora_sched_add_item(slora_sched_step_t *step, slora_req_t *r,
    int32_t chunk);
static int slora_sched_item_cmp(const void *a, const void *b);
static void slora_req_queue_insert(slora_req_queue_t *q, slora_req_t *r);
static void slora_req_queue_remove(slora_req_queue_t *q, slora_req_t *r);


const slora_sched_policy_t  slora_sched_fcfs = {
    "fcfs", NULL, NULL, NULL, NULL, slora_sched_fcfs_pick, NULL, NULL, NULL
};


const slora_sched_policy_t  slora_sched_lcfs = {
    "lcfs", NULL, NULL, NULL, NULL, slora_sched_lcfs_pick, NULL, NULL, NULL
};


static const slora_sched_policy_t  *slora_sched_policies[] = {
    &slora_sched_fcfs,
    &slora_sched_lcfs,
    &slora_sched_slo,
    &slora_sched_fair,
    NULL
};


const slora_sched_policy_t *
slora_sched_policy(const char *name)
{
    const slora_sched_policy_t  **p;

    for (p = slora_sched_policies; *p != NULL; p++) {
        if (strcmp((*p)->name, name) == 0) {
            return *p;
        }
    }

    return NULL;
}


slora_sched_t *
slora_sched_create(const slora_sched_conf_t *conf, slora_pool_t *pool,
    slora_adapters_t *adapters, const slora_sched_policy_t *policy,
    slora_err_t *err)
{
    slora_sched_t  *s;

    if (conf->max_batch_tokens < 1 || conf->max_running < 1
        || conf->max_running > conf->max_batch_tokens)
    {
        slora_err_set(err, SLORA_ERROR, "scheduler: max_running %d must be "
                      "in 1..max_batch_tokens (%d)", conf->max_running,
                      conf->max_batch_tokens);
        return NULL;
    }

    if (conf->slo_ttft_ms < 0 || conf->cluster_ms < -1
        || conf->fair_prefill < 0 || conf->fair_decode < 0
        || conf->score_rows < 0)
    {
        slora_err_set(err, SLORA_ERROR, "scheduler: slo_ttft_ms %d, "
                      "cluster_ms %d, fair weights %d:%d, score_rows %d: "
                      "none may be negative", conf->slo_ttft_ms,
                      conf->cluster_ms, conf->fair_prefill,
                      conf->fair_decode, conf->score_rows);
        return NULL;
    }

    s = calloc(1, sizeof(slora_sched_t));
    if (s == NULL) {
        slora_err_set(err, SLORA_ERROR, "scheduler: out of memory");
        return NULL;
    }

    s->conf = *conf;
    s->conf.cluster_ms = conf->cluster_ms != 0 ? conf->cluster_ms
                                               : SLORA_SCHED_CLUSTER_MS;
    s->conf.fair_prefill = conf->fair_prefill > 0 ? conf->fair_prefill : 1;
    s->conf.fair_decode = conf->fair_decode > 0 ? conf->fair_decode : 2;
    s->conf.score_rows = conf->score_rows > 0 ? conf->score_rows
                                              : SLORA_SCHED_SCORE_ROWS;
    s->pool = pool;
    s->adapters = adapters;
    s->tpp = slora_pool_tokens_per_page(pool);

    /* failures of running requests, aborts, failures at admission */
    s->failed_cap = 2 * conf->max_running + SLORA_SCHED_ABORTS;
    s->items = calloc((size_t) conf->max_running,
                      sizeof(slora_sched_item_t));
    s->failed = calloc((size_t) s->failed_cap, sizeof(slora_req_t *));

    if (s->items == NULL || s->failed == NULL) {
        slora_sched_free(s);
        slora_err_set(err, SLORA_ERROR, "scheduler: out of memory");
        return NULL;
    }

    if (conf->prefix_cache) {
        s->prefix = slora_prefix_create(pool, err);
        if (s->prefix == NULL) {
            slora_sched_free(s);
            return NULL;
        }
    }

    s->policy = policy != NULL ? policy : &slora_sched_fcfs;

    if (s->policy->init != NULL && s->policy->init(s, err) != SLORA_OK) {
        /* the policy's free takes what its init left */
        slora_sched_free(s);
        return NULL;
    }

    return s;
}


void
slora_sched_free(slora_sched_t *s)
{
    if (s == NULL) {
        return;
    }

    if (s->policy != NULL && s->policy->free != NULL) {
        s->policy->free(s);
    }

    slora_prefix_free(s->prefix);
    free(s->items);
    free(s->failed);
    free(s);
}


int
slora_sched_submit(slora_sched_t *s, slora_req_t *req, slora_err_t *err)
{
    slora_assert(req->n_prompt >= 1 && req->n_tokens == req->n_prompt
                 && req->cap >= req->n_tokens
                 && req->score_to >= 0 && req->score_to < req->n_prompt);

    req->max_pages = (req->cap + s->tpp - 1) / s->tpp;
    req->pages = malloc((size_t) req->max_pages * sizeof(int32_t));
    if (req->pages == NULL) {
        return slora_err_set(err, SLORA_ERROR, "no memory for a request");
    }

    req->n_pages = 0;
    req->n_computed = 0;
    req->pinned = 0;
    req->n_charged = 0;
    req->account = NULL;
    req->n_preempted = 0;
    req->run_from = 0;
    req->owner.adapter = req->adapter;
    req->owner.gen = 0;
    req->owner.tenant = slora_prefix_tenant(req->tenant);
    req->owner.salt[0] = req->cache_salt[0];
    req->owner.salt[1] = req->cache_salt[1];
    req->n_shared = 0;
    req->unshared = 0;
    req->awaits = 0;
    req->n_cached = 0;
    req->n_scored = 0;
    req->seq = s->next_seq++;
    req->state = SLORA_REQ_NEW;
    slora_sched_move(s, req, SLORA_REQ_WAITING);

    return SLORA_OK;
}


void
slora_sched_plan(slora_sched_t *s, slora_sched_step_t *step)
{
    slora_sched_plan_at(s, step, slora_now_ns());
}


void
slora_sched_plan_at(slora_sched_t *s, slora_sched_step_t *step,
    int64_t now_ns)
{
    int          rc;
    int32_t      budget, reserve, need, chunk, score, room;
    slora_req_t  *r, *next, *victim;

    memset(step, 0, sizeof(*step));
    step->items = s->items;
    step->failed = s->failed;

    budget = s->conf.max_batch_tokens;
    score = s->conf.score_rows;

    /* 0. the policy's preemption */

    if (s->policy->victim != NULL && s->running.n >= s->conf.max_running
        && s->waiting.n > 0)
    {
        victim = s->policy->victim(s);
        if (victim != NULL) {
            slora_sched_preempt(s, victim);
        }
    }

    reserve = 0;
    for (r = s->running.head; r != NULL; r = r->next) {
        reserve += r->n_tokens - r->n_draft - r->n_computed == 1;
    }

    /* 1. running requests, oldest first */

    for (r = s->running.head; r != NULL; r = next) {
        if (r->awaits) {
            /* the page it waited for may be cached now, and more */
            slora_sched_take_prefix(s, r);

            if (slora_sched_computing(s, r)) {
                next = r->next;
                continue;
            }

            r->awaits = 0;

            /* the pages it took may leave it its last token alone: a
             * token the reserve above did not count, so it takes one
             * beyond the reserve, or waits for the next plan, which
             * counts it */
            if (r->n_tokens - r->n_draft - r->n_computed == 1) {
                if (budget - reserve < 1) {
                    next = r->next;
                    continue;
                }

                reserve++;
            }
        }

        need = r->n_tokens - r->n_computed;
        slora_assert(need >= 1);

        if (need - r->n_draft == 1) {
            /* its last token, and its draft as far as the step's tokens
             * beyond those reserved and its rows allow */
            reserve--;
            room = budget - 1 - reserve < score ? budget - 1 - reserve
                                                : score;
            if (r->n_draft > room) {
                slora_sched_undraft(r, room > 0 ? r->n_draft - room
                                                : r->n_draft);
            }
            chunk = 1 + r->n_draft;

        } else {
            chunk = need < budget - reserve ? need : budget - reserve;
            chunk = slora_sched_score_cap(r, chunk, score);
            if (chunk <= 0) {
                next = r->next;
                continue;
            }
        }

        while (slora_sched_grow(s, r, r->n_computed + chunk) != SLORA_OK) {
            if (r->n_draft > 0) {
                /* no pages for a draft: the token alone */
                slora_sched_undraft(r, r->n_draft);
                chunk = 1;
                continue;
            }

            victim = s->running.tail;

            if (victim == r && s->running.head == r) {
                slora_err_set(&r->err, SLORA_ERROR, "%d tokens need more "
                              "KV pages than the pool has",
                              r->n_computed + chunk);
                next = r->next;
                slora_sched_fail(s, step, r);
                r = NULL;
                break;
            }

            if (victim != r
                && victim->n_tokens - victim->n_draft - victim->n_computed
                   == 1)
            {
                reserve--;
            }

            slora_sched_preempt(s, victim);

            if (victim == r) {
                r = NULL;
                break;
            }
        }

        if (r == NULL) {
            /* r was the tail: nothing after it is left to visit */
            next = NULL;
            continue;
        }

        next = r->next;
        slora_sched_add_item(step, r, chunk);
        budget -= chunk;
        score -= slora_sched_score_rows(r, chunk) + r->n_draft;
    }

    /* 2. admission */

    if (s->policy->prepare != NULL) {
        s->policy->prepare(s, step, now_ns);
    }

    while (s->running.n < s->conf.max_running && budget > 0
           && step->n_failed < s->failed_cap)
    {
        r = s->policy->pick(s);
        if (r == NULL) {
            break;
        }

        slora_assert(r->state == SLORA_REQ_WAITING && r->n_computed == 0);

        if (r->adapter != NULL && !r->pinned) {
            rc = slora_adapter_acquire(s->adapters, r->adapter, &r->err);

            if (rc == SLORA_ERROR) {
                slora_sched_fail(s, step, r);
                continue;
            }

            if (rc != SLORA_OK) {
                if (s->running.n == 0) {
                    slora_err_prefix(&r->err, "adapter does not fit in the "
                                     "pool");
                    r->err.code = SLORA_ERROR;
                    slora_sched_fail(s, step, r);
                    continue;
                }
                break;
            }

            r->pinned = 1;
            r->owner.gen = slora_adapter_gen(r->adapter);
        }

        slora_sched_take_prefix(s, r);

        if (s->prefix != NULL && slora_sched_computing(s, r)) {
            r->awaits = 1;
            slora_sched_move(s, r, SLORA_REQ_RUNNING);
            continue;
        }

        need = r->n_tokens - r->n_computed;
        chunk = need < budget ? need : budget;
        chunk = slora_sched_score_cap(r, chunk, score);

        if (chunk <= 0) {
            /* the step's rows for prompts' log-probabilities are taken:
             * the next step's are its */
            slora_sched_unadmit(s, r);
            break;
        }

        if (slora_sched_grow(s, r, r->n_computed + chunk) != SLORA_OK) {
            if (s->running.n == 0) {
                slora_err_set(&r->err, SLORA_ERROR, "%d tokens need more "
                              "KV pages than the pool has beside its "
                              "adapter", chunk);
                slora_sched_fail(s, step, r);
                continue;
            }

            slora_sched_unadmit(s, r);
            break;
        }

        slora_sched_move(s, r, SLORA_REQ_RUNNING);

        slora_sched_add_item(step, r, chunk);
        budget -= chunk;
        score -= slora_sched_score_rows(r, chunk);
    }

    /* the engine's token buffer holds max_batch_tokens */
    slora_assert(step->n_tokens <= s->conf.max_batch_tokens);

    /* 3. adapter clustering */

    qsort(step->items, (size_t) step->n_items, sizeof(slora_sched_item_t),
          slora_sched_item_cmp);
}


void
slora_sched_advance(slora_sched_t *s, const slora_sched_step_t *step)
{
    int32_t       i;
    slora_req_t  *r;

    for (i = 0; i < step->n_items; i++) {
        r = step->items[i].req;
        slora_assert(r->n_computed == step->items[i].pos);
        r->n_computed += step->items[i].n_tokens;

        if (step->items[i].draft > 0) {
            /* shared once slora_sched_settle has said what stays */
            if (s->policy->computed != NULL) {
                s->policy->computed(s, &step->items[i]);
            }
            continue;
        }

        if (r->n_scored < r->score_to && r->n_computed > r->n_scored) {
            r->n_scored = r->n_computed < r->score_to ? r->n_computed
                                                      : r->score_to;
        }

        slora_assert(r->n_computed <= r->n_tokens
                     && r->n_computed <= r->n_pages * s->tpp);

        if (s->prefix != NULL) {
            slora_sched_share(s, r);
        }

        if (s->policy->computed != NULL) {
            s->policy->computed(s, &step->items[i]);
        }
    }
}


void
slora_sched_settle(slora_sched_t *s, slora_req_t *req, int32_t taken)
{
    int32_t  keep;

    slora_assert(req->n_draft > 0 && taken >= 0 && taken <= req->n_draft
                 && req->n_computed == req->n_tokens);

    req->n_tokens -= req->n_draft;
    req->n_computed = req->n_tokens + taken;
    req->n_draft = 0;

    /* the pages that only the rest held go back (the next plan grows
     * r again for its next token, as for any) */
    keep = (req->n_computed + s->tpp - 1) / s->tpp;

    if (req->n_pages > keep) {
        slora_pool_release(s->pool, req->n_pages - keep, req->pages + keep);
        req->n_pages = keep;
    }

    if (taken > 0 && s->policy->settled != NULL) {
        s->policy->settled(s, req, taken);
    }

    if (s->prefix != NULL) {
        slora_sched_share(s, req);
    }
}


void
slora_sched_undraft(slora_req_t *req, int32_t n)
{
    slora_assert(n >= 0 && n <= req->n_draft);

    req->n_tokens -= n;
    req->n_draft -= n;
}


void
slora_sched_finish(slora_sched_t *s, slora_req_t *req)
{
    slora_sched_drop(s, req);
}


int32_t
slora_sched_reap(slora_sched_t *s, slora_req_t **out, int32_t cap)
{
    int32_t       n, q;
    slora_req_t  *r, *next;

    n = 0;

    for (q = 0; q < 2; q++) {
        for (r = q ? s->running.head : s->waiting.head;
             r != NULL && n < cap;
             r = next)
        {
            next = r->next;
            if (r->cancelled) {
                slora_sched_drop(s, r);
                out[n++] = r;
            }
        }
    }

    return n;
}


slora_req_t *
slora_sched_find(slora_sched_t *s, uint64_t id)
{
    int           q;
    slora_req_t  *r;

    for (q = 0; q < 2; q++) {
        for (r = q ? s->running.head : s->waiting.head; r; r = r->next) {
            if (r->id == id) {
                return r;
            }
        }
    }

    return NULL;
}


int32_t
slora_sched_prefix_flush(slora_sched_t *s)
{
    return s->prefix != NULL ? slora_prefix_flush(s->prefix) : 0;
}


void
slora_sched_prefix_stats(const slora_sched_t *s, slora_prefix_stats_t *st)
{
    if (s->prefix == NULL) {
        memset(st, 0, sizeof(*st));
        return;
    }

    slora_prefix_stats(s->prefix, st);
}


slora_req_t *
slora_sched_waiting_head(slora_sched_t *s)
{
    return s->waiting.head;
}


slora_req_t *
slora_sched_first(slora_sched_t *s)
{
    return s->running.head != NULL ? s->running.head : s->waiting.head;
}


int32_t
slora_sched_waiting(const slora_sched_t *s)
{
    return s->waiting.n;
}


int32_t
slora_sched_running(const slora_sched_t *s)
{
    return s->running.n;
}


uint64_t
slora_sched_preemptions(const slora_sched_t *s)
{
    return s->preemptions;
}


uint64_t
slora_sched_aborted(const slora_sched_t *s)
{
    return s->aborted;
}


int
slora_sched_abort(slora_sched_t *s, slora_sched_step_t *step,
    slora_req_t *r)
{
    slora_assert(r->state == SLORA_REQ_WAITING
                 && r->err.code == SLORA_ABORTED);

    /* room is kept for the failures admission may still find */
    if (step->n_failed >= s->failed_cap - s->conf.max_running) {
        return SLORA_BUSY;
    }

    slora_sched_fail(s, step, r);
    s->aborted++;

    return SLORA_OK;
}


int32_t
slora_sched_cached(slora_sched_t *s, const slora_req_t *r)
{
    slora_prefix_owner_t  o;

    if (s->prefix == NULL || r->n_scored < r->score_to) {
        return 0;
    }

    /* the generation its admission will pin */
    o = r->owner;
    o.gen = r->adapter != NULL ? slora_adapter_gen(r->adapter) : 0;

    return slora_prefix_peek(s->prefix, &o, r->tokens,
                             (r->n_tokens - 1) / s->tpp) * s->tpp;
}


int
slora_sched_resident(const slora_req_t *r)
{
    return r->adapter == NULL
           || slora_adapter_tier(r->adapter) == SLORA_TIER_POOL;
}


static slora_req_t *
slora_sched_fcfs_pick(slora_sched_t *s)
{
    return s->waiting.head;
}


static slora_req_t *
slora_sched_lcfs_pick(slora_sched_t *s)
{
    return s->waiting.tail;
}


/* The one place a request changes state: its queues, then the policy. */
static void
slora_sched_move(slora_sched_t *s, slora_req_t *r, slora_req_state_e to)
{
    slora_req_state_e  from;

    from = r->state;

    if (from == SLORA_REQ_WAITING) {
        slora_req_queue_remove(&s->waiting, r);

    } else if (from == SLORA_REQ_RUNNING) {
        slora_req_queue_remove(&s->running, r);
    }

    r->state = to;

    if (to == SLORA_REQ_WAITING) {
        slora_req_queue_insert(&s->waiting, r);

    } else if (to == SLORA_REQ_RUNNING) {
        slora_req_queue_insert(&s->running, r);
        r->run_from = r->n_tokens;
    }

    if (s->policy->moved != NULL) {
        s->policy->moved(s, r, from);
    }
}


/* Gives r pages for positions [0, n_tok); evicts idle adapters if the
 * pool lacks them. SLORA_BUSY: still not enough. */
static int
slora_sched_grow(slora_sched_t *s, slora_req_t *r, int32_t n_tok)
{
    int32_t  need;

    slora_assert(n_tok <= r->cap);

    need = (n_tok + s->tpp - 1) / s->tpp - r->n_pages;
    if (need <= 0) {
        return SLORA_OK;
    }

    if (slora_pool_count(s->pool, SLORA_PAGE_FREE) < need) {
        slora_adapters_evict(s->adapters, need);
    }

    if (slora_pool_alloc(s->pool, SLORA_PAGE_KV, need, r->pages + r->n_pages)
        != SLORA_OK)
    {
        return SLORA_BUSY;
    }

    r->n_pages += need;

    return SLORA_OK;
}


static void
slora_sched_drop(slora_sched_t *s, slora_req_t *r)
{
    slora_sched_let_go(s, r);

    if (r->pinned) {
        slora_adapter_release(s->adapters, r->adapter);
        r->pinned = 0;
    }

    if (r->state != SLORA_REQ_DONE) {
        slora_sched_move(s, r, SLORA_REQ_DONE);
    }
}


/* r as it was before its admission: no pages, nothing computed, no pin
 * on its adapter. */
static void
slora_sched_unadmit(slora_sched_t *s, slora_req_t *r)
{
    slora_sched_let_go(s, r);
    slora_sched_undraft(r, r->n_draft);
    r->n_computed = 0;

    if (r->pinned) {
        slora_adapter_release(s->adapters, r->adapter);
        r->pinned = 0;
    }
}


static void
slora_sched_preempt(slora_sched_t *s, slora_req_t *r)
{
    slora_assert(r->state == SLORA_REQ_RUNNING);

    slora_sched_unadmit(s, r);
    slora_sched_move(s, r, SLORA_REQ_WAITING);

    r->n_preempted++;
    s->preemptions++;
}


/*
 * Before r computes anything (at admission, and while it awaits a page):
 * the longest run of cached pages of r's owner (adapter, weights,
 * tenant) that starts r's tokens becomes the head of its page table,
 * their tokens computed; at least the last token is left to compute, for
 * its logits.
 */
static void
slora_sched_take_prefix(slora_sched_t *s, slora_req_t *r)
{
    int32_t  n;

    if (s->prefix == NULL || r->n_scored < r->score_to) {
        /* a prompt owing log-probabilities computes its every position */
        return;
    }

    slora_assert(r->n_pages == r->n_shared
                 && r->n_computed == r->n_shared * s->tpp);

    n = slora_prefix_take(s->prefix, &r->owner, r->tokens, r->n_shared,
                          (r->n_tokens - 1) / s->tpp, r->pages);

    r->n_pages = n;
    r->n_shared = n;
    r->n_computed = n * s->tpp;

    if (r->n_preempted == 0) {
        r->n_cached = r->n_computed;
    }
}


/*
 * Whether another running request, one that computes, is computing the
 * page r would compute next and will enter it in the cache: the same
 * owner, the same page before it (the same entry) and the same tokens in
 * it. Then r is better off taking it than computing it too.
 */
static int
slora_sched_computing(slora_sched_t *s, const slora_req_t *r)
{
    int32_t             k, end;
    const slora_req_t  *q;

    k = r->n_shared;
    end = (k + 1) * s->tpp;

    if (k >= (r->n_tokens - 1) / s->tpp || r->n_scored < r->score_to) {
        return 0;                           /* no page it could take */
    }

    for (q = s->running.head; q != NULL; q = q->next) {
        if (q == r || q->awaits || q->unshared || q->n_shared != k
            || q->n_computed >= end || q->n_tokens < end
            || !slora_prefix_same_owner(&q->owner, &r->owner)
            || (k > 0 && q->pages[k - 1] != r->pages[k - 1])
            || memcmp(q->tokens + k * s->tpp, r->tokens + k * s->tpp,
                      (size_t) s->tpp * sizeof(int32_t))
               != 0)
        {
            continue;
        }

        return 1;
    }

    return 0;
}


/* Enters r's full computed pages in the prefix cache, in order, until
 * one has an equal entry (the request that made it keeps the prefix). */
static void
slora_sched_share(slora_sched_t *s, slora_req_t *r)
{
    while (!r->unshared && (r->n_shared + 1) * s->tpp <= r->n_computed) {
        if (!slora_prefix_put(s->prefix, &r->owner, r->tokens, r->n_shared,
                              r->pages))
        {
            r->unshared = 1;
            break;
        }

        r->n_shared++;
    }
}


/* r's pages go: the entries it holds back to the cache, its own to the
 * pool. */
static void
slora_sched_let_go(slora_sched_t *s, slora_req_t *r)
{
    if (r->n_shared > 0) {
        slora_prefix_drop(s->prefix, r->n_shared, r->pages);
    }

    slora_pool_release(s->pool, r->n_pages - r->n_shared,
                       r->pages + r->n_shared);
    r->n_pages = 0;
    r->n_shared = 0;
    r->unshared = 0;
    r->awaits = 0;
}


static void
slora_sched_fail(slora_sched_t *s, slora_sched_step_t *step, slora_req_t *r)
{
    slora_sched_drop(s, r);
    step->failed[step->n_failed++] = r;
}


/*
 * The logits rows r's next chunk of chunk tokens takes for the prompt
 * positions it owes (score_to): those of the chunk from n_scored on, to
 * the chunk's end, which is before score_to or the prompt's last token
 * (whose row is the first token's, counted with them). 0: it owes none
 * there.
 */
static int32_t
slora_sched_score_rows(const slora_req_t *r, int32_t chunk)
{
    int32_t  from;

    if (r->n_scored >= r->score_to) {
        return 0;
    }

    from = r->n_computed > r->n_scored ? r->n_computed : r->n_scored;

    return r->n_computed + chunk > from ? r->n_computed + chunk - from : 0;
}


/* chunk, cut so that r's rows for owed positions fit in the step's
 * left; 0: none fits. */
static int32_t
slora_sched_score_cap(const slora_req_t *r, int32_t chunk, int32_t left)
{
    int32_t  from;

    if (r->n_scored >= r->score_to
        || slora_sched_score_rows(r, chunk) <= left)
    {
        return chunk;
    }

    from = r->n_computed > r->n_scored ? r->n_computed : r->n_scored;

    return from - r->n_computed + (left > 0 ? left : 0);
}


static void
slora_sched_add_item(slora_sched_step_t *step, slora_req_t *r, int32_t chunk)
{
    slora_sched_item_t  *it;

    it = &step->items[step->n_items++];
    it->req = r;
    it->pos = r->n_computed;
    it->n_tokens = chunk;
    it->logits = r->n_computed + chunk == r->n_tokens;
    it->n_rows = slora_sched_score_rows(r, chunk);
    it->draft = r->n_draft;

    if (it->n_rows == 0) {
        it->n_rows = it->logits + it->draft;
    }

    step->n_tokens += chunk;
    step->n_rows += it->n_rows;
    step->n_pairs += slora_sched_pairs(r->n_computed, r->n_computed + chunk);

    if (r->n_tokens - r->n_draft - r->n_computed == 1) {
        step->n_decode++;
    } else {
        step->n_prefill += chunk;
    }
}


static int
slora_sched_item_cmp(const void *a, const void *b)
{
    uintptr_t                  x, y;
    const slora_sched_item_t  *p, *q;

    p = a;
    q = b;
    x = (uintptr_t) p->req->adapter;
    y = (uintptr_t) q->req->adapter;

    if (x != y) {
        return x < y ? -1 : 1;
    }

    return p->req->seq < q->req->seq ? -1 : (p->req->seq > q->req->seq);
}


/* Keeps a queue in arrival order; new arrivals go to the tail at once. */
static void
slora_req_queue_insert(slora_req_queue_t *q, slora_req_t *r)
{
    slora_req_t  *at;

    at = q->tail;
    while (at != NULL && at->seq > r->seq) {
        at = at->prev;
    }

    r->prev = at;
    r->next = at ? at->next : q->head;

    if (r->next != NULL) {
        r->next->prev = r;
    } else {
        q->tail = r;
    }

    if (at != NULL) {
        at->next = r;
    } else {
        q->head = r;
    }

    q->n++;
}


static void
slora_req_queue_remove(slora_req_queue_t *q, slora_req_t *r)
{
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        q->head = r->next;
    }

    if (r->next != NULL) {
        r->next->prev = r->prev;
    } else {
        q->tail = r->prev;
    }

    r->prev = NULL;
    r->next = NULL;
    q->n--;
}
