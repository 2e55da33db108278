/*
 * sched_world.h: the scheduler without a model, as the policy tests
 * drive it (test_sched_policy.c, test_sched_fair.c): a pool and an
 * adapter set on a fake backend, requests that record when they were
 * admitted, and a driver that plans at a given time, marks the chunks
 * computed and appends a token where a chunk reached its end. One
 * definition for both files; setup failures bail out.
 */

#ifndef SCHED_WORLD_H
#define SCHED_WORLD_H


#include <unistd.h>

#include "tap.h"
#include "slora_sched.h"
#include "tiny_config.h"
#include "fake_backend.h"


#define MS  1000000LL               /* ns */
#define T0  (1000000 * MS)          /* the tests' "now" */


typedef struct {
    slora_req_t       r;
    int32_t           want;         /* tokens to generate */
    int32_t           gen;
    int               done;
    int               admitted;     /* order of admission, from 1; 0: not */
    int               admit_step;   /* the step it was first admitted in */
    int               submit_step;  /* plans run when it came */
    int               starts;       /* items from position 0: 1 + the
                                       times it was recomputed */
} treq_t;


typedef struct {
    slora_sched_t      *s;
    slora_pool_t       *pool;
    slora_adapters_t   *set;
    int                 n_admitted;     /* numbers admissions: by step,
                                           within a step by arrival */
    int                 steps;          /* plans run, from 1 */
    int                 bad;
} world_t;


static slora_model_config_t  cfg;
static char                  tmp[256];
static fake_backend_t        fb;
static int                   world_prefix_cache;    /* mkworld's */


/* A temporary folder named after the test, the model shape the pool and
 * adapters are sized for, and the fake backend; world_done removes it. */
static inline void
world_init(const char *name)
{
    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-%s-XXXXXX", name);
    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    tiny_config(&cfg, SLORA_ROPE_NEOX);

    fb.b.write_arena = fake_write;
}


static inline void
world_done(void)
{
    char  cmd[300];

    free(fb.arena);
    fb.arena = NULL;

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }
}


/* q ended with its prompt and exactly its tokens, in order, prefilled
 * from position 0 once and once more for every preemption. */
static inline int
exact(const treq_t *q)
{
    int32_t  i;

    if (!q->done || q->gen != q->want
        || q->r.n_tokens != q->r.n_prompt + q->want
        || q->starts != 1 + q->r.n_preempted)
    {
        return 0;
    }

    for (i = 0; i < q->r.n_tokens; i++) {
        if (q->r.tokens[i] != (i < q->r.n_prompt ? i % 50
                                                 : 1000 + i - q->r.n_prompt))
        {
            return 0;
        }
    }

    return 1;
}


/* Reports a step of n tokens and attention work pairs that took ns,
 * attention_ns of it in attention (0: not measured). */
static inline void
observe(slora_sched_t *s, int32_t n, int64_t pairs, int64_t ns,
    int64_t attention_ns)
{
    slora_sched_step_t  st;

    memset(&st, 0, sizeof(st));
    st.n_tokens = n;
    st.n_pairs = pairs;
    slora_sched_observe(s, &st, ns, attention_ns);
}


/* Steps of 8 and 64 tokens lying on t = per_step + per_tok * n, their
 * attention not measured. */
static inline void
feed_model(slora_sched_t *s, int64_t per_step, int64_t per_tok)
{
    int  i;

    for (i = 0; i < 40; i++) {
        observe(s, i % 2 ? 8 : 64, 1000, per_step + per_tok * (i % 2 ? 8 : 64),
                0);
    }
}


/* Plans at now and plays the step; 0 when there was nothing to do. */
static inline int
run_step(world_t *w, slora_sched_step_t *st, int64_t now)
{
    int32_t               i, tokens;
    treq_t               *q;
    slora_sched_item_t   *it;

    slora_sched_plan_at(w->s, st, now);
    w->steps++;

    tokens = 0;
    for (i = 0; i < st->n_items; i++) {
        it = &st->items[i];
        tokens += it->n_tokens;
        w->bad += it->req->n_pages * 8 < it->pos + it->n_tokens;

        q = (treq_t *) it->req;
        if (q->admitted == 0) {
            q->admitted = ++w->n_admitted;
            q->admit_step = w->steps;
        }
        q->starts += it->pos == 0;
    }
    w->bad += tokens != st->n_tokens;

    for (i = 0; i < st->n_failed; i++) {
        w->bad += st->failed[i]->state != SLORA_REQ_DONE;
    }

    slora_sched_advance(w->s, st);

    for (i = 0; i < st->n_items; i++) {
        it = &st->items[i];
        if (!it->logits) {
            continue;
        }

        q = (treq_t *) it->req;
        q->r.tokens[q->r.n_tokens] = 1000 + q->gen;
        q->r.n_tokens++;
        q->gen++;

        if (q->gen == q->want) {
            slora_sched_finish(w->s, &q->r);
            free(q->r.pages);
            q->r.pages = NULL;
            q->done = 1;
        }
    }

    return st->n_items > 0 || st->n_failed > 0;
}


static inline void
mkworld(world_t *w, const slora_sched_policy_t *policy, int32_t pages,
    int32_t budget, int32_t running, int32_t slo_ms, int32_t cluster_ms)
{
    slora_err_t         err;
    slora_sched_conf_t  sc;
    slora_pool_geom_t   g = { 2, 32, 64, 128, 4, 0, 1 };

    memset(w, 0, sizeof(*w));

    w->pool = slora_pool_create(&g, (size_t) pages * 2 * 512 * 4, &err);
    if (w->pool == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    free(fb.arena);
    fb.n = (int64_t) pages * 2 * 512;
    fb.arena = calloc((size_t) fb.n, sizeof(float));

    w->set = slora_adapters_create(&cfg, w->pool, &fb.b, 1 << 20, &err);
    if (w->set == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    memset(&sc, 0, sizeof(sc));
    sc.max_batch_tokens = budget;
    sc.max_running = running;
    sc.slo_ttft_ms = slo_ms;
    sc.cluster_ms = cluster_ms;
    sc.prefix_cache = world_prefix_cache;

    w->s = slora_sched_create(&sc, w->pool, w->set, policy, &err);
    if (w->s == NULL) {
        BAIL_OUT("%s", err.msg);
    }
}


static inline void
freeworld(world_t *w)
{
    slora_sched_free(w->s);
    slora_adapters_free(w->set);
    slora_pool_free(w->pool);
}


static inline treq_t *
mkreq(uint64_t id, int32_t n_prompt, int32_t want, const char *tenant,
    int32_t priority)
{
    int32_t   i;
    treq_t   *q;

    q = calloc(1, sizeof(treq_t) + (size_t) (n_prompt + want)
                                   * sizeof(int32_t));
    q->r.id = id;
    q->r.tokens = (int32_t *) (q + 1);
    q->r.n_prompt = n_prompt;
    q->r.n_tokens = n_prompt;
    q->r.cap = n_prompt + want;
    q->r.tenant = tenant;
    q->r.priority = priority;
    q->want = want;

    for (i = 0; i < n_prompt; i++) {
        q->r.tokens[i] = i % 50;
    }

    return q;
}


static inline void
submit(world_t *w, treq_t *q, int64_t arrival)
{
    slora_err_t  err;

    q->r.arrival_ns = arrival;
    q->submit_step = w->steps;

    if (slora_sched_submit(w->s, &q->r, &err) != SLORA_OK) {
        BAIL_OUT("%s", err.msg);
    }
}


#endif /* SCHED_WORLD_H */
