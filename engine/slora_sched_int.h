/*
 * slora_sched_int.h: the scheduler's private layout, shared by the
 * mechanism (slora_sched.c) and the policies that need more than the
 * queues' order (slora_sched_slo.c, with slora_sched_ahead.c, and
 * slora_sched_fair.c).
 *
 * The one idea: a policy reads the queues and the step-time model and
 * keeps its own state behind s->policy_data; it changes the scheduler
 * only through slora_sched_abort() and by naming a victim to preempt, so
 * the queues, the pages and the adapter pins stay the mechanism's alone.
 */

#ifndef SLORA_SCHED_INT_H
#define SLORA_SCHED_INT_H


#include "slora_sched.h"


#define SLORA_SCHED_ABORTS      256     /* aborts one plan may list, at
                                         * least: up to max_running more
                                         * where no running request fails */
#define SLORA_SCHED_CLUSTER_MS  100
#define SLORA_SCHED_SCORE_ROWS  256


typedef struct {
    slora_req_t         *head;
    slora_req_t         *tail;
    int32_t              n;
} slora_req_queue_t;


/* Exponentially weighted means of points (x, y) and of x^2 and x*y. */
typedef struct {
    double               x;
    double               y;
    double               xx;
    double               xy;
} slora_sched_means_t;


/* The steps run, and the model fitted to them (slora_sched_slo.c). */
typedef struct {
    slora_sched_means_t  tokens;        /* tokens, ns less attention's */
    slora_sched_means_t  attention;     /* work, ns in attention */
    uint64_t             samples;
    slora_sched_model_t  model;
} slora_sched_timing_t;


struct slora_sched_s {
    slora_sched_conf_t            conf;
    slora_pool_t                 *pool;
    slora_adapters_t             *adapters;
    slora_prefix_t               *prefix;     /* NULL: none */
    const slora_sched_policy_t   *policy;
    void                         *policy_data;
    int32_t                       tpp;

    slora_req_queue_t             waiting;
    slora_req_queue_t             running;
    uint64_t                      next_seq;
    uint64_t                      preemptions;
    uint64_t                      aborted;
    slora_sched_timing_t          timing;

    slora_sched_item_t           *items;      /* [max_running] */
    slora_req_t                 **failed;     /* [failed_cap] */
    int32_t                       failed_cap;
};


/*
 * For policies, in prepare: takes waiting request r out of the scheduler
 * into step->failed; r->err (code SLORA_ABORTED, with retry_ms)
 * must be set. SLORA_BUSY: the step's list is full, r stays waiting.
 */
int slora_sched_abort(slora_sched_t *s, slora_sched_step_t *step,
    slora_req_t *r);

/* The tokens of waiting request r that the prefix cache would give it
 * if it were admitted now (0 without a cache). */
int32_t slora_sched_cached(slora_sched_t *s, const slora_req_t *r);

/* Whether r needs no adapter upload to run: the base model, or its
 * adapter is in the pool. */
int slora_sched_resident(const slora_req_t *r);


/*
 * The pages requests ahead will have entered in the prefix cache
 * (slora_sched_ahead.c), for the SLO estimate: a plan names every
 * request's first page (first), then fills the set with the pages of the
 * running requests that still compute their prompts and of each waiting
 * request it keeps (add), and asks of each waiting request how many of
 * its first pages are in it (pages). Zeroed, it is empty.
 */
typedef struct {
    uint64_t            *keys;          /* open addressing; 0: empty */
    uint32_t             cap;           /* a power of two, or 0 */
    uint32_t             n;
} slora_sched_keys_t;

typedef struct {
    slora_sched_keys_t   pages;         /* the pages ahead */
    slora_sched_keys_t   firsts;        /* first pages named */
    slora_sched_keys_t   shared;        /* ... by two requests or more */
} slora_sched_ahead_t;

void slora_sched_ahead_reset(slora_sched_ahead_t *a);
void slora_sched_ahead_free(slora_sched_ahead_t *a);
int slora_sched_ahead_first(slora_sched_t *s, slora_sched_ahead_t *a,
    const slora_req_t *r);
int slora_sched_ahead_add(slora_sched_t *s, slora_sched_ahead_t *a,
    const slora_req_t *r);
int32_t slora_sched_ahead_pages(const slora_sched_t *s,
    const slora_sched_ahead_t *a, const slora_req_t *r);


#endif /* SLORA_SCHED_INT_H */
