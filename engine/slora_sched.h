/*
 * slora_sched.h: the scheduler (S-LoRA sections 4 and 6): which requests
 * run in the next step and how many of their tokens. Iteration-level
 * continuous batching: every step carries one token for each running
 * decode and fills the rest of the token budget with prefill chunks;
 * requests are admitted when their adapter can be made resident and their
 * next chunk's KV pages exist; the pool running dry evicts idle adapters
 * first and then preempts the newest running request, which goes back to
 * the waiting queue to be recomputed. A policy may also name a running
 * request to preempt the same way when every running slot is taken (fair
 * share does, for a tenant that has none).
 *
 * The mechanism is here; the choice of which waiting request to admit is
 * a policy, a small vtable: FCFS, LCFS, SLO admission with early abort
 * (slora_sched_slo.c) and per-tenant fair share (slora_sched_fair.c).
 */

#ifndef SLORA_SCHED_H
#define SLORA_SCHED_H


#include "slora_core.h"
#include "slora_pool.h"
#include "slora_adapter.h"
#include "slora_prefix.h"


/* A status beyond slora_core.h's and slora_catalog.h's: admission control
 * refused the request, its first token cannot come within its SLO. */
#define SLORA_ABORTED  -30

#define SLORA_SCHED_POLICIES  "fcfs, lcfs, slo, fair"


typedef enum {
    SLORA_REQ_NEW = 0,
    SLORA_REQ_WAITING,
    SLORA_REQ_RUNNING,
    SLORA_REQ_DONE
} slora_req_state_e;


/*
 * A request as the scheduler sees it; the engine embeds it first in its
 * own request. tokens[0, n_tokens) are the prompt and what was generated;
 * the K/V of tokens[0, n_computed) is in the request's pages.
 */
typedef struct slora_req_s  slora_req_t;

struct slora_req_s {
    uint64_t             id;
    uint64_t             seq;           /* arrival order */
    slora_adapter_t     *adapter;       /* NULL: base model */
    int32_t             *tokens;        /* [cap] */
    int32_t              n_prompt;
    int32_t              n_tokens;
    int32_t              cap;           /* prompt + max_tokens */
    int32_t              n_computed;
    int32_t             *pages;         /* [max_pages] */
    int32_t              n_pages;
    int32_t              max_pages;
    int                  pinned;        /* holds a reference on adapter */
    int                  cancelled;
    slora_req_state_e    state;
    slora_req_t         *prev;
    slora_req_t         *next;
    slora_err_t          err;           /* why it failed */
    int32_t              priority;      /* the tenant's; larger: sooner */
    int32_t              ttft_slo_ms;   /* the tenant's; 0: the
                                           scheduler's slo_ttft_ms */
    int64_t              arrival_ns;    /* when it was submitted */
    const char          *tenant;        /* fair share account, valid while
                                           the request is in the
                                           scheduler; NULL: anonymous */
    uint64_t             cache_salt[2]; /* slora_request_t's: part of its
                                           pages' owner; {0, 0}: none */
    int32_t              n_charged;     /* fair: tokens charged, the
                                           prompt's less the cached */
    void                *account;       /* fair: the tenant's counter */
    int32_t              n_preempted;   /* times put back to wait */
    int32_t              run_from;      /* n_tokens when last admitted */
    slora_prefix_owner_t owner;         /* its pages': adapter, the
                                           generation of the weights it
                                           runs, tenant, cache salt */
    int32_t              n_shared;      /* pages[0, n_shared): prefix
                                           cache entries it holds */
    int                  unshared;      /* a page it computed had an
                                           equal entry: enters no more */
    int                  awaits;        /* running, it computes nothing
                                           while another request computes
                                           its next page, to take it */
    int32_t              n_cached;      /* prompt tokens its first
                                           admission took from the
                                           prefix cache */
    int32_t              score_to;      /* the caller's: positions
                                           [0, score_to) of the prompt
                                           owe their logits (a prompt's
                                           log-probabilities: n_prompt -
                                           1); 0: none. While any is owed
                                           nothing comes from the prefix
                                           cache */
    int32_t              n_scored;      /* positions [0, n_scored) of
                                           them were delivered */
    int32_t              n_draft;       /* tokens[n_tokens - n_draft,
                                           n_tokens): a draft the engine
                                           set after the last token
                                           (speculative decoding,
                                           slora_draft.h): computed with
                                           it in one item, each position's
                                           logits taken, the plan cuts it
                                           to what the step has room for
                                           (0: none); slora_sched_settle
                                           keeps what was taken */
};


/* One sequence of a step: n_tokens tokens from position pos. */
typedef struct {
    slora_req_t         *req;
    int32_t              pos;
    int32_t              n_tokens;
    int                  logits;        /* the chunk ends at n_tokens */
    int32_t              n_rows;        /* its last n_rows tokens want
                                           logits: 1 with logits, more
                                           where the prompt's owed ones
                                           (score_to) come first, or the
                                           draft's, else 0 */
    int32_t              draft;         /* of the tokens, the last this
                                           many are a draft (req->n_draft
                                           then), each one's row a pick */
} slora_sched_item_t;


typedef struct {
    slora_sched_item_t  *items;         /* [n_items], grouped by adapter */
    int32_t              n_items;
    int32_t              n_tokens;
    int32_t              n_decode;
    int32_t              n_prefill;     /* tokens of prefill chunks */
    int32_t              n_rows;        /* logits rows, the items' */
    int64_t              n_pairs;       /* attention's work: each token's
                                           context (its position + 1),
                                           summed */
    slora_req_t        **failed;        /* [n_failed]: out of the sched */
    int32_t              n_failed;
} slora_sched_step_t;


typedef struct slora_sched_s  slora_sched_t;


/* Attention's work to compute positions [from, to) of a sequence: each
 * token attends to its position + 1 keys (slora_sched_step_t.n_pairs). */
static inline int64_t
slora_sched_pairs(int64_t from, int64_t to)
{
    return (to * (to + 1) - from * (from + 1)) / 2;
}


/*
 * A policy. Only name and pick are required; the other hooks may be NULL.
 *   init, free  the policy's state (slora_sched_int.h: s->policy_data);
 *   moved       r changed state, from `from` to r->state: NEW -> WAITING
 *               (submitted), WAITING -> RUNNING (admitted), RUNNING ->
 *               WAITING (preempted), any -> DONE (left the scheduler);
 *   prepare     once a plan, after the running requests took their
 *               tokens and before admission: may abort waiting requests
 *               (slora_sched_abort);
 *   pick        the waiting request to admit next, NULL to admit none;
 *               called until it returns NULL or the step is full, each
 *               pick admitted or failed before the next call, or the
 *               admission stops (no room for the pick: head of line);
 *   computed    a step computed an item (after n_computed moved; for
 *               a draft's item, the one token sampled after it);
 *   settled     slora_sched_settle kept taken tokens of r's draft: as
 *               many more generated;
 *   victim      once a plan, before the running requests take their
 *               tokens, when every running slot is taken and a request
 *               waits: a running request to put back to wait (preempted
 *               as when the pool runs dry, counted in preemptions) so
 *               that the next pick may take its slot; NULL for none.
 */
typedef struct {
    const char          *name;
    int                (*init)(slora_sched_t *s, slora_err_t *err);
    void               (*free)(slora_sched_t *s);
    void               (*moved)(slora_sched_t *s, slora_req_t *r,
                                slora_req_state_e from);
    void               (*prepare)(slora_sched_t *s, slora_sched_step_t *step,
                                  int64_t now_ns);
    slora_req_t       *(*pick)(slora_sched_t *s);
    void               (*computed)(slora_sched_t *s,
                                   const slora_sched_item_t *it);
    slora_req_t       *(*victim)(slora_sched_t *s);
    void               (*settled)(slora_sched_t *s, slora_req_t *r,
                                  int32_t taken);
} slora_sched_policy_t;


extern const slora_sched_policy_t  slora_sched_fcfs;  /* arrival order */
extern const slora_sched_policy_t  slora_sched_lcfs;  /* newest first */
extern const slora_sched_policy_t  slora_sched_slo;   /* early abort */
extern const slora_sched_policy_t  slora_sched_fair;  /* VTC */

/* The fair policy's state, for tests: the counter of r's tenant (r in
 * the scheduler), and how many tenants' entries have no request. */
int64_t slora_sched_fair_counter(const slora_req_t *r);
uint32_t slora_sched_fair_idle(const slora_sched_t *s);

/* The policy named name (SLORA_SCHED_POLICIES), NULL if none is. */
const slora_sched_policy_t *slora_sched_policy(const char *name);


typedef struct {
    int32_t              max_batch_tokens;
    int32_t              max_running;
    int32_t              slo_ttft_ms;   /* slo: the TTFT SLO of requests
                                           without their own; 0: none */
    int32_t              cluster_ms;    /* slo: deadlines this close are
                                           equally urgent and a resident
                                           adapter goes first; 0: 100,
                                           -1: no clustering */
    int32_t              fair_prefill;  /* fair: charge per prompt token;
                                           0: 1 */
    int32_t              fair_decode;   /* fair: charge per generated
                                           token; 0: 2 */
    int                  prefix_cache;  /* 1: full KV pages are kept and
                                           shared (slora_prefix.h) */
    int32_t              score_rows;    /* logits rows a step gives the
                                           prompt positions requests owe
                                           (score_to), their last rows
                                           included; 0: 256 */
} slora_sched_conf_t;


slora_sched_t *slora_sched_create(const slora_sched_conf_t *conf,
    slora_pool_t *pool, slora_adapters_t *adapters,
    const slora_sched_policy_t *policy, slora_err_t *err);
void slora_sched_free(slora_sched_t *s);

/* Queues req (its tokens, n_prompt, cap and adapter set; priority,
 * ttft_slo_ms, arrival_ns and tenant for the policies); allocates its
 * page table. */
int slora_sched_submit(slora_sched_t *s, slora_req_t *req, slora_err_t *err);

/*
 * Plans the next step into step (valid until the next call). Requests
 * that cannot run at all (adapter unreadable, larger than the pool) are
 * taken out of the scheduler and listed in step->failed with req->err;
 * those the policy refused have req->err.code SLORA_ABORTED and
 * req->err.retry_ms. plan_at takes the time (CLOCK_MONOTONIC ns) from
 * the caller, plan reads the clock.
 */
void slora_sched_plan(slora_sched_t *s, slora_sched_step_t *step);
void slora_sched_plan_at(slora_sched_t *s, slora_sched_step_t *step,
    int64_t now_ns);

/* The step ran: its chunks' K/V are in the cache (a draft's, until
 * slora_sched_settle says how much of it stays). */
void slora_sched_advance(slora_sched_t *s, const slora_sched_step_t *step);

/* After a step that computed req's draft: its first taken tokens were
 * right and stay, computed; the rest go (tokens back to before the
 * draft, whose taken part the caller appends again). */
void slora_sched_settle(slora_sched_t *s, slora_req_t *req, int32_t taken);

/* Takes req's draft back (all of it, or its last n tokens). */
void slora_sched_undraft(slora_req_t *req, int32_t n);

/* Takes req out of the scheduler: frees its pages and its adapter pin. */
void slora_sched_finish(slora_sched_t *s, slora_req_t *req);

/* Takes cancelled requests out (as finish does), at most cap of them,
 * into out[]; returns how many. */
int32_t slora_sched_reap(slora_sched_t *s, slora_req_t **out, int32_t cap);

slora_req_t *slora_sched_find(slora_sched_t *s, uint64_t id);

/* slora_prefix_flush() on the cache, 0 without one. */
int32_t slora_sched_prefix_flush(slora_sched_t *s);

/* The prefix cache's figures; all 0 without one. */
void slora_sched_prefix_stats(const slora_sched_t *s,
    slora_prefix_stats_t *st);
/* The oldest waiting request (then ->next), or NULL. */
slora_req_t *slora_sched_waiting_head(slora_sched_t *s);
/* Any request still in the scheduler (running first), or NULL. */
slora_req_t *slora_sched_first(slora_sched_t *s);

int32_t slora_sched_waiting(const slora_sched_t *s);
int32_t slora_sched_running(const slora_sched_t *s);
uint64_t slora_sched_preemptions(const slora_sched_t *s);
uint64_t slora_sched_aborted(const slora_sched_t *s);

/*
 * The step-time model (slora_sched_slo.c): the owner reports every step
 * it ran: its tokens and attention work (step->n_tokens, n_pairs), its
 * wall time, and the part of that spent in attention where the backend
 * measures it (slora_backend_t.attention_ns; 0: not measured). The model
 * keeps exponentially weighted means and fits
 *     time = per_step + per_token * tokens + per_pair * pairs
 * to them, which the SLO policy's estimates use: per_pair from the
 * attention time over the work, the line from the rest. Where attention
 * is not measured per_pair is 0 and the line takes all the time. All are
 * 0 before any step.
 */
typedef struct {
    int64_t              per_step_ns;
    int64_t              per_token_ns;
    double               per_pair_ns;
} slora_sched_model_t;

void slora_sched_observe(slora_sched_t *s, const slora_sched_step_t *step,
    int64_t ns, int64_t attention_ns);
void slora_sched_step_model(const slora_sched_t *s, slora_sched_model_t *m);


#endif /* SLORA_SCHED_H */
