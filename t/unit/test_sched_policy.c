/*
 * test_sched_policy.c: the admission policies but fair share, without a
 * model, driven as sched_world.h plays the engine (plan at a given time,
 * mark the chunks computed, append a token where a chunk reached its end)
 * and recording the order in which requests were admitted.
 *
 * Checked, each against what a wrong policy would do: LCFS admits the
 * newest first (FCFS the oldest); the step-time model recovers the line
 * its samples lie on; SLO early abort refuses exactly the requests whose
 * estimate exceeds their SLO, those behind estimated without them, and
 * priority moves a request ahead of the estimate; clustering admits a
 * resident adapter's request before an equally urgent one that needs a
 * load, and not a less urgent one.
 *
 * And edges: a preempted request that had its first token is never
 * aborted; the estimate counts running decodes' tokens in every step and
 * none of them as prefill; one plan's aborts stop at the cap; clustering
 * never passes a higher priority; with the prefix cache, a prompt's
 * cached tokens are not counted as prefill to come, nor those a request
 * ahead of it in the same burst will have computed, but for a prompt
 * owing log-probabilities, which computes them all. The fair share is
 * test_sched_fair.c's.
 */

#include <math.h>

#include "sched_world.h"


static void test_lcfs(void);
static void test_step_model(void);
static void test_abort(void);
static void test_abort_edges(void);
static void test_cluster(void);
static void test_abort_started(void);
static void test_abort_decodes(void);
static void test_abort_cap(void);
static void test_abort_cached(int on);
static void test_abort_burst(int on);
static void test_abort_burst_tenants(void);
static void test_abort_burst_scored(void);
static void test_abort_computing_stale(void);
static void test_abort_burst_many(void);
static void test_abort_computing(void);
static void test_abort_context(void);
static void test_abort_defer(void);
static void test_abort_late(void);
static void slo_world(world_t *w, int cache, int32_t pages, int32_t budget,
    int32_t running, int32_t slo_ms);
static void free_reqs(treq_t **q, int32_t n);


int
main(void)
{
    world_init("policy");

    ok(slora_sched_policy("fcfs") == &slora_sched_fcfs
       && slora_sched_policy("lcfs") == &slora_sched_lcfs
       && slora_sched_policy("slo") == &slora_sched_slo
       && slora_sched_policy("fair") == &slora_sched_fair
       && slora_sched_policy("edf") == NULL, "policies found by name");

    test_lcfs();
    test_step_model();
    test_abort();
    test_abort_edges();
    test_cluster();
    test_abort_started();
    test_abort_decodes();
    test_abort_cap();
    test_abort_cached(0);
    test_abort_cached(1);
    test_abort_burst(0);
    test_abort_burst(1);
    test_abort_burst_tenants();
    test_abort_burst_scored();
    test_abort_burst_many();
    test_abort_computing();
    test_abort_computing_stale();
    test_abort_context();
    test_abort_defer();
    test_abort_late();

    world_done();

    return done_testing();
}


/* One running request at a time; a sixth arrives after the first plan. */
static void
test_lcfs(void)
{
    int                  p, i, order[6];
    char                 got[2][32];
    treq_t              *q[6];
    world_t              w;
    slora_sched_step_t   st;

    const slora_sched_policy_t  *pol[2] = { &slora_sched_lcfs,
                                             &slora_sched_fcfs };

    for (p = 0; p < 2; p++) {
        mkworld(&w, pol[p], 64, 64, 1, 0, 0);

        for (i = 0; i < 5; i++) {
            q[i] = mkreq(i + 1, 4, 2, NULL, 0);
            submit(&w, q[i], T0 + i);
        }

        run_step(&w, &st, T0 + 10);
        q[5] = mkreq(6, 4, 2, NULL, 0);
        submit(&w, q[5], T0 + 11);

        while (run_step(&w, &st, T0 + 20)) {
            /* drain */
        }

        for (i = 0; i < 6; i++) {
            order[q[i]->admitted - 1] = (int) q[i]->r.id;
        }

        snprintf(got[p], sizeof(got[p]), "%d%d%d%d%d%d", order[0],
                 order[1], order[2], order[3], order[4], order[5]);

        is_int(w.bad, 0, "%s: no invariant broken", pol[p]->name);

        for (i = 0; i < 6; i++) {
            free(q[i]);
        }
        freeworld(&w);
    }

    is_str(got[0], "564321", "LCFS: the newest waiting request each time "
           "(6 came while 5 ran)");
    is_str(got[1], "123456", "FCFS on the same arrivals: oldest first");
}


static void
test_step_model(void)
{
    int                  i;
    int32_t              n;
    double               t;
    world_t              w;
    slora_sched_model_t  m;

    mkworld(&w, &slora_sched_slo, 16, 64, 4, 0, 0);

    slora_sched_step_model(w.s, &m);
    ok(m.per_step_ns == 0 && m.per_token_ns == 0 && m.per_pair_ns == 0,
       "no step seen: a zero model");

    /* t = 10 ms + 1 ms a token, sizes 8 and 64 */
    feed_model(w.s, 10 * MS, 1 * MS);
    slora_sched_step_model(w.s, &m);
    ok(m.per_step_ns == 10 * MS && m.per_token_ns == 1 * MS
       && m.per_pair_ns == 0, "the line through the steps: %lld ns a "
       "step, %lld ns a token; attention not measured, nothing a pair",
       (long long) m.per_step_ns, (long long) m.per_token_ns);

    /* the machine gets slower: t = 20 ms + 3 ms a token */
    for (i = 0; i < 200; i++) {
        observe(w.s, i % 2 ? 8 : 64, 0, 20 * MS + 3 * MS * (i % 2 ? 8 : 64),
                0);
    }
    slora_sched_step_model(w.s, &m);
    ok(llabs(m.per_step_ns - 20 * MS) < MS / 100
       && llabs(m.per_token_ns - 3 * MS) < MS / 100,
       "recent steps weigh most: %lld and %lld after 200 new steps",
       (long long) m.per_step_ns, (long long) m.per_token_ns);

    freeworld(&w);

    /*
     * Attention measured: t = 10 ms + 1 ms a token + 2 ms + 2 us a pair
     * (attention's own part a step: its dispatch in every layer), over
     * prompts of 64 tokens at contexts 0 to 960 and decode steps of 8
     * at context 500: the pairs do not follow the tokens, and a line
     * alone would put them on the tokens; attention's time over its
     * work alone would put its part a step on the decodes' pairs.
     */
    mkworld(&w, &slora_sched_slo, 16, 64, 4, 0, 0);
    for (i = 0; i < 64; i++) {
        int64_t  pairs;

        n = i % 2 ? 8 : 64;
        pairs = i % 2 ? 8 * 500 : slora_sched_pairs(64 * (i % 16),
                                                    64 * (i % 16) + 64);
        observe(w.s, n, pairs, 12 * MS + n * MS + 2000 * pairs,
                2 * MS + 2000 * pairs);
    }
    slora_sched_step_model(w.s, &m);
    ok(m.per_step_ns == 12 * MS && m.per_token_ns == MS
       && fabs(m.per_pair_ns - 2000) < 1e-6, "attention measured: %lld ns "
       "a step, %lld a token, %.3f a pair", (long long) m.per_step_ns,
       (long long) m.per_token_ns, m.per_pair_ns);

    /* then decodes alone, their work all alike: the slope found stands */
    for (i = 0; i < 100; i++) {
        observe(w.s, 8, 8 * 500, 12 * MS + 8 * MS + 2000 * 8 * 500,
                2 * MS + 2000 * 8 * 500);
    }
    slora_sched_step_model(w.s, &m);
    t = (double) m.per_step_ns + 8.0 * (double) m.per_token_ns
        + 8 * 500 * m.per_pair_ns;
    ok(fabs(m.per_pair_ns - 2000) < 1 && fabs(t - 28 * MS) < MS / 100,
       "100 decode steps later: %.3f ns a pair; such a step is still "
       "put at %.3f ms", m.per_pair_ns, t / MS);

    freeworld(&w);

    /* a backend's attention time past the step's own is not believed */
    mkworld(&w, &slora_sched_slo, 16, 64, 4, 0, 0);
    for (i = 0; i < 40; i++) {
        n = i % 2 ? 8 : 64;
        observe(w.s, n, 100 * n * (i % 5), 10 * MS + n * MS,
                10 * MS + n * MS + 1);
    }
    slora_sched_step_model(w.s, &m);
    ok(m.per_step_ns == 10 * MS && m.per_token_ns == MS
       && m.per_pair_ns == 0, "attention times longer than their steps "
       "are read as none: %lld, %lld, %.3f", (long long) m.per_step_ns,
       (long long) m.per_token_ns, m.per_pair_ns);

    freeworld(&w);

    /* steps of one size: the time goes to the tokens */
    mkworld(&w, &slora_sched_slo, 16, 64, 4, 0, 0);
    for (i = 0; i < 10; i++) {
        observe(w.s, 10, 0, 5 * MS, 0);
    }
    slora_sched_step_model(w.s, &m);
    ok(m.per_step_ns == 0 && m.per_token_ns == MS / 2, "one size only: 0 "
       "a step, %lld a token", (long long) m.per_token_ns);

    /* a step that took longer with fewer tokens: no negative slope */
    observe(w.s, 2, 0, 50 * MS, 0);
    slora_sched_step_model(w.s, &m);
    ok(m.per_step_ns >= 0 && m.per_token_ns >= 0, "no negative term (%lld, "
       "%lld)", (long long) m.per_step_ns, (long long) m.per_token_ns);

    freeworld(&w);
}


/*
 * Budget 64, nothing running, 10 ms a step and 1 ms a token, SLO 100 ms;
 * requests of 16 tokens. In admission order (earliest deadline first):
 *   r9   arrived 90 ms ago: est 90 + 10 + 16 = 116 > 100: aborted,
 *        so it is not ahead of anyone;
 *   r0..r3  P = 16..64, one step: est 26, 42, 58, 74;
 *   r4   P = 80, two steps: est 20 + 80 = 100, equal: kept;
 *   r5   P = 96: est 116: aborted; r6, r7 likewise (still 96 ahead
 *        counted, the aborted adding nothing);
 *   r8   its own SLO of 126 ms (deadline after the others): P = 80 + 16,
 *        est 116, but in r4's step, which would end at 116 ms, past r4's
 *        SLO: deferred to the third step, est 30 + 96 = 126: kept. Had
 *        r5..r7 counted, P would be 144 and est 174.
 */
static void
test_abort(void)
{
    int                  i, j, aborted, right, listed;
    treq_t              *q[10];
    world_t              w;
    slora_sched_step_t   st;

    mkworld(&w, &slora_sched_slo, 256, 64, 32, 100, 0);
    feed_model(w.s, 10 * MS, 1 * MS);

    for (i = 0; i < 10; i++) {
        q[i] = mkreq(i, 16, 3, NULL, 0);
    }
    q[8]->r.ttft_slo_ms = 126;

    for (i = 0; i < 9; i++) {
        submit(&w, q[i], T0);
    }
    submit(&w, q[9], T0 - 90 * MS);

    run_step(&w, &st, T0);

    aborted = 0;
    right = 1;
    for (i = 0; i < 10; i++) {
        listed = 0;
        for (j = 0; j < st.n_failed; j++) {
            listed |= st.failed[j] == &q[i]->r;
        }

        if (i >= 5 && i <= 7) {
            right &= listed && q[i]->r.err.code == SLORA_ABORTED
                     && q[i]->r.state == SLORA_REQ_DONE;
        } else if (i == 9) {
            right &= listed;
        } else {
            right &= !listed && q[i]->r.state != SLORA_REQ_DONE;
        }

        aborted += listed;
    }

    is_int(aborted, 4, "4 aborted in the first plan");
    ok(right, "exactly r5, r6, r7 (est 116 > 100) and r9 (waited 90 ms, "
       "est 116)");
    is_int((int) slora_sched_aborted(w.s), 4, "the count says 4");
    ok(strstr(q[5]->r.err.msg, "estimated at 0.116 s") != NULL
       && strstr(q[5]->r.err.msg, "SLO of 0.100 s") != NULL,
       "the reason, in numbers: %s", q[5]->r.err.msg);
    is_int(q[5]->r.err.retry_ms, 1000, "retry after a second");
    is_int(st.n_items, 4, "r0..r3 admitted into the budget of 64");
    ok(st.n_prefill == 64 && q[9]->r.n_pages == 0 && q[5]->r.n_pages == 0,
       "no compute and no page for an aborted request");

    /* time stands still: r4 and r8 are now estimated behind the running
     * decodes, well within their SLOs, and everything else completes */
    while (run_step(&w, &st, T0)) {
        w.bad += st.n_failed != 0;
    }

    for (i = 0; i < 10; i++) {
        if (i < 5 || i == 8) {
            w.bad += !q[i]->done;
        }
    }
    is_int(w.bad, 0, "r0..r4 and r8 complete, nothing else fails");
    is_int(slora_pool_count(w.pool, SLORA_PAGE_FREE), 256, "pool all free");

    for (i = 0; i < 10; i++) {
        free(q[i]->r.pages);
        free(q[i]);
    }
    freeworld(&w);
}


static void
test_abort_edges(void)
{
    int                  i, n_keep;
    treq_t              *hi, *lo[8], *late, *none, *big;
    world_t              w;
    slora_sched_step_t   st;

    /* priority: a later request of priority 5 is estimated first, so
     * one more of the priority-0 requests is aborted (r3 now: 16 ahead) */
    mkworld(&w, &slora_sched_slo, 256, 64, 32, 100, 0);
    feed_model(w.s, 10 * MS, 1 * MS);

    for (i = 0; i < 8; i++) {
        lo[i] = mkreq(i, 16, 2, NULL, 0);
        submit(&w, lo[i], T0);
    }
    hi = mkreq(100, 16, 2, NULL, 5);
    submit(&w, hi, T0);

    run_step(&w, &st, T0);

    n_keep = 0;
    for (i = 0; i < 8; i++) {
        n_keep += lo[i]->r.state != SLORA_REQ_DONE;
    }
    ok(hi->admitted != 0 && lo[3]->admitted == 0,
       "the priority-5 request is admitted first (with lo0..lo2)");
    is_int(n_keep, 4, "4 of the priority-0 requests kept (est 42..100)");
    ok(lo[3]->r.state != SLORA_REQ_DONE && lo[4]->r.state == SLORA_REQ_DONE,
       "the cut after the fourth");

    while (run_step(&w, &st, T0)) {
        /* drain */
    }

    free(hi);
    for (i = 0; i < 8; i++) {
        free(lo[i]->r.pages);
        free(lo[i]);
    }
    freeworld(&w);

    /* no default SLO: a request without one waits forever unharmed; one
     * whose tenant gives 50 ms is refused after 60 ms of waiting, even
     * before the model has seen a step */
    mkworld(&w, &slora_sched_slo, 64, 64, 4, 0, 0);
    none = mkreq(1, 8, 2, NULL, 0);
    late = mkreq(2, 8, 2, NULL, 0);
    late->r.ttft_slo_ms = 50;
    submit(&w, none, T0 - 10000 * MS);
    submit(&w, late, T0 - 60 * MS);

    run_step(&w, &st, T0);
    ok(st.n_failed == 1 && st.failed[0] == &late->r,
       "waited past its SLO with no step model: aborted");
    ok(none->admitted == 1, "no SLO: admitted after 10 s of waiting");

    while (run_step(&w, &st, T0)) {
        /* drain */
    }
    ok(none->done, "and done");

    free(none);
    free(late->r.pages);
    free(late);
    freeworld(&w);

    /* a big backlog: the retry time is how much the estimate is over */
    mkworld(&w, &slora_sched_slo, 64, 64, 4, 100, 0);
    feed_model(w.s, 10 * MS, 1 * MS);
    big = mkreq(1, 2000, 1, NULL, 0);
    submit(&w, big, T0);
    run_step(&w, &st, T0);

    /* 32 steps: 320 ms + 2000 ms, 2220 ms over the SLO */
    ok(st.n_failed == 1 && big->r.err.retry_ms == 2220,
       "retry after the excess: %d ms", big->r.err.retry_ms);

    free(big->r.pages);
    free(big);
    freeworld(&w);
}


/*
 * One running request at a time; q0's adapter a0 is on disk, a1 is in the
 * pool. q1 (a1) arrived 40 ms after q0: within the window of 100 ms it is
 * as urgent, and is admitted first; 200 ms after, it is not; nor when q0
 * has the higher priority.
 */
static void
test_cluster(void)
{
    int                   i, c, first[5];
    char                  dir[400], name[16];
    treq_t               *q0, *q1;
    world_t               w;
    slora_err_t           err;
    slora_adapter_t      *ad[2];
    slora_sched_step_t    st;
    slora_adapter_gen_t   gen = { 2, 4, 1u << SLORA_PROJ_Q, 1, 0.1f };

    struct {
        const slora_sched_policy_t  *policy;
        int32_t                      cluster_ms;
        int64_t                      gap;
        int32_t                      prio;      /* q0's */
    } cases[5] = {
        { &slora_sched_slo, 0, 40 * MS, 0 },
        { &slora_sched_slo, 0, 200 * MS, 0 },
        { &slora_sched_slo, -1, 40 * MS, 0 },
        { &slora_sched_fcfs, 0, 40 * MS, 0 },
        { &slora_sched_slo, 0, 40 * MS, 1 },
    };

    for (c = 0; c < 5; c++) {
        mkworld(&w, cases[c].policy, 64, 64, 1, 1000, cases[c].cluster_ms);

        for (i = 0; i < 2; i++) {
            snprintf(name, sizeof(name), "c%d", i);
            snprintf(dir, sizeof(dir), "%s/%s", tmp, name);
            gen.seed = i + 1;
            if (c == 0
                && slora_adapter_write_random(dir, &cfg, &gen, &err)
                   != SLORA_OK)
            {
                BAIL_OUT("%s", err.msg);
            }
            if (slora_adapters_add(w.set, name, dir, &ad[i], &err)
                != SLORA_OK)
            {
                BAIL_OUT("%s", err.msg);
            }
        }

        if (slora_adapter_acquire(w.set, ad[1], &err) != SLORA_OK) {
            BAIL_OUT("%s", err.msg);
        }
        slora_adapter_release(w.set, ad[1]);

        q0 = mkreq(1, 8, 1, NULL, cases[c].prio);
        q1 = mkreq(2, 8, 1, NULL, 0);
        q0->r.adapter = ad[0];
        q1->r.adapter = ad[1];
        submit(&w, q0, T0 - 300 * MS);
        submit(&w, q1, T0 - 300 * MS + cases[c].gap);

        ok(slora_adapter_tier(ad[0]) != SLORA_TIER_POOL
           && slora_adapter_tier(ad[1]) == SLORA_TIER_POOL,
           "case %d: c0 not resident, c1 resident", c);

        run_step(&w, &st, T0);
        first[c] = q1->admitted == 1 ? 1 : q0->admitted == 1 ? 0 : -1;

        while (run_step(&w, &st, T0)) {
            /* drain */
        }
        w.bad += !q0->done || !q1->done;
        is_int(w.bad, 0, "case %d: both done", c);

        free(q0);
        free(q1);
        freeworld(&w);
    }

    is_int(first[0], 1, "slo, 40 ms apart: the resident adapter's request "
           "first");
    is_int(first[1], 0, "slo, 200 ms apart (beyond 100): the earlier "
           "deadline first");
    is_int(first[2], 0, "slo, clustering off: the earlier deadline first");
    is_int(first[3], 0, "fcfs: arrival order whatever is resident");
    is_int(first[4], 0, "slo, 40 ms apart, c0's request of priority 1: "
           "the higher priority first, its adapter resident or not");
}


/*
 * A preempted request that had its first token is never aborted for its
 * SLO. A pool of 4 pages, two requests of 8 + 20 tokens: when both need
 * a third page the newer, b, is preempted with 9 tokens generated and
 * waits for pages. Planned 10 s later (its SLO 100 ms), it still waits.
 */
static void
test_abort_started(void)
{
    treq_t              *a, *b;
    world_t              w;
    slora_sched_step_t   st;

    mkworld(&w, &slora_sched_slo, 4, 64, 2, 100, 0);

    a = mkreq(1, 8, 20, NULL, 0);
    b = mkreq(2, 8, 20, NULL, 0);
    submit(&w, a, T0);
    submit(&w, b, T0);

    while (w.steps < 100
           && !(b->r.state == SLORA_REQ_WAITING && b->r.n_preempted > 0))
    {
        run_step(&w, &st, T0);
    }

    ok(b->r.state == SLORA_REQ_WAITING && b->r.n_tokens > b->r.n_prompt,
       "b preempted after its first token (%d generated)", b->gen);

    run_step(&w, &st, T0 + 10000 * MS);
    ok(st.n_failed == 0 && b->r.state == SLORA_REQ_WAITING
       && slora_sched_aborted(w.s) == 0, "10 s past its SLO, the started "
       "request is not aborted: it waits");

    while (run_step(&w, &st, T0 + 10000 * MS)) {
        w.bad += st.n_failed != 0;
    }
    ok(exact(a) && exact(b) && w.bad == 0, "both end with their tokens");

    free(a);
    free(b);
    freeworld(&w);
}


/*
 * The estimate with D = 4 running decodes, 10 ms a step and 1 ms a token:
 * x and y (16 tokens each) waited 80 ms. The decodes are no prefill
 * (P = 16), but take a token of every step: one step of 20 tokens, est
 * 80 + 10 + 20 = 110 ms. x's SLO of 108 is missed, it is aborted; y's of
 * 112 is not, estimated without x. Leaving out the decodes' tokens (106)
 * would keep x and abort y; counting them as prefill (114) both.
 */
static void
test_abort_decodes(void)
{
    int                  i;
    treq_t              *d[4], *x, *y;
    world_t              w;
    slora_sched_step_t   st;

    mkworld(&w, &slora_sched_slo, 256, 64, 8, 0, 0);
    feed_model(w.s, 10 * MS, 1 * MS);

    for (i = 0; i < 4; i++) {
        d[i] = mkreq(i, 8, 40, NULL, 0);
        submit(&w, d[i], T0);
    }
    run_step(&w, &st, T0);
    run_step(&w, &st, T0);

    x = mkreq(10, 16, 2, NULL, 0);
    y = mkreq(11, 16, 2, NULL, 0);
    x->r.ttft_slo_ms = 108;
    y->r.ttft_slo_ms = 112;
    submit(&w, x, T0 - 80 * MS);
    submit(&w, y, T0 - 80 * MS);

    run_step(&w, &st, T0);

    ok(st.n_decode == 4 && st.n_failed == 1 && st.failed[0] == &x->r,
       "4 decodes running: x (SLO 108 ms) aborted");
    ok(strstr(x->r.err.msg, "estimated at 0.110 s") != NULL,
       "its estimate counts the 4 decode tokens of its step: %s",
       x->r.err.msg);
    ok(strstr(x->r.err.msg, "4 requests and 0 tokens to prefill") != NULL,
       "running decodes add no prefill tokens ahead of it");
    ok(y->admitted != 0 && y->r.state != SLORA_REQ_DONE,
       "y (SLO 112 ms, est 110) kept and admitted");

    while (run_step(&w, &st, T0)) {
        w.bad += st.n_failed != 0;
    }
    ok(exact(y) && exact(d[0]) && exact(d[3]) && w.bad == 0,
       "the others end with their tokens");

    for (i = 0; i < 4; i++) {
        free(d[i]);
    }
    free(x->r.pages);
    free(x);
    free(y);
    freeworld(&w);
}


/*
 * 300 hopeless requests (waited 1 s, SLO 100 ms), 4 running slots: the
 * step's failure list holds 2 * 4 + 256; one plan aborts at most 256 + 4,
 * keeping room for the failures admission may still find. The rest are
 * aborted at the next plan.
 */
static void
test_abort_cap(void)
{
    int                  i;
    treq_t              *q[300];
    world_t              w;
    slora_sched_step_t   st;

    mkworld(&w, &slora_sched_slo, 64, 64, 4, 100, 0);

    for (i = 0; i < 300; i++) {
        q[i] = mkreq(i, 8, 1, NULL, 0);
        submit(&w, q[i], T0 - 1000 * MS);
    }

    run_step(&w, &st, T0);
    ok(st.n_failed <= 256 + 4, "one plan aborts at most 256 + max_running "
       "(%d)", st.n_failed);
    ok(st.n_failed == 256 + 4 && slora_sched_waiting(w.s) == 40,
       "the cap reached, 40 left waiting");

    run_step(&w, &st, T0);
    ok(st.n_failed == 40 && slora_sched_waiting(w.s) == 0
       && slora_sched_aborted(w.s) == 300, "the next plan aborts the rest");
    is_int(w.bad, 0, "no invariant broken");

    for (i = 0; i < 300; i++) {
        free(q[i]->r.pages);
        free(q[i]);
    }
    freeworld(&w);
}




/*
 * 10 ms a step and 1 ms a token, an SLO of 100 ms, a budget of 64: a
 * request of 48 prompt tokens runs (est 58 ms), then one of 120 whose
 * first 48 are the same (est 140 ms whole: aborted). With the cache its
 * 6 cached pages are not prefill to come (est 92 ms): admitted, from
 * position 48.
 */
static void
test_abort_cached(int on)
{
    treq_t              *a, *b, *q[2];
    world_t              w;
    slora_sched_step_t   st;

    slo_world(&w, on, 256, 64, 32, 100);

    a = mkreq(1, 48, 2, NULL, 0);
    submit(&w, a, T0);
    while (run_step(&w, &st, T0)) {
        w.bad += st.n_failed != 0;
    }

    b = mkreq(2, 120, 2, NULL, 0);
    submit(&w, b, T0);
    run_step(&w, &st, T0);

    if (on) {
        ok(st.n_failed == 0 && st.n_items == 1 && st.items[0].req == &b->r
           && st.items[0].pos == 48,
           "cache on: admitted past its 48 cached tokens (%d failed, "
           "from %d)", st.n_failed, st.n_items ? st.items[0].pos : -1);
    } else {
        ok(st.n_failed == 1 && b->r.err.code == SLORA_ABORTED
           && strstr(b->r.err.msg, "estimated at 0.140 s") != NULL,
           "cache off: aborted, estimated at 140 ms: %s", b->r.err.msg);
    }

    while (run_step(&w, &st, T0)) {
        /* b's last steps */
    }
    ok(a->done && w.bad == 0 && b->done == on,
       "cache %s: the first ran; the second %s", on ? "on" : "off",
       on ? "too" : "did not");

    q[0] = a;
    q[1] = b;
    free_reqs(q, 2);
    freeworld(&w);
}


/*
 * The same model, six requests of the same 48-token prompt at once (a
 * burst that begins alike: a system prompt). Counted whole, the first
 * is estimated at 58 ms and the second at 116 (two steps, 96 tokens):
 * five are aborted. With the cache the first computes the prompt and the
 * others take its 5 full pages, computing their last 8 tokens: 66, 74,
 * 92, 100 ms, and the sixth 108, aborted; the five admitted all finish,
 * having computed the prompt's pages once.
 */
static void
test_abort_burst(int on)
{
    treq_t              *q[6];
    world_t              w;
    slora_sched_step_t   st;
    int32_t              i, n_done, prefill;

    slo_world(&w, on, 256, 64, 32, 100);

    for (i = 0; i < 6; i++) {
        q[i] = mkreq((uint64_t) i + 1, 48, 2, NULL, 0);
        submit(&w, q[i], T0);
    }

    prefill = 0;
    run_step(&w, &st, T0);

    for (i = 0; i < st.n_items; i++) {
        prefill += st.items[i].pos < st.items[i].req->n_prompt
                   ? st.items[i].n_tokens : 0;
    }

    if (on) {
        ok(st.n_failed == 1 && st.failed[0] == &q[5]->r
           && strstr(q[5]->r.err.msg, "estimated at 0.108 s") != NULL,
           "cache on: the sixth aborted, estimated at 108 ms (%d failed): "
           "%s", st.n_failed, q[5]->r.err.msg);
    } else {
        ok(st.n_failed == 5 && q[0]->r.err.code == SLORA_OK
           && strstr(q[1]->r.err.msg, "estimated at 0.116 s") != NULL,
           "cache off: five aborted, the second estimated at 116 ms (%d "
           "failed): %s", st.n_failed, q[1]->r.err.msg);
    }

    while (run_step(&w, &st, T0)) {
        for (i = 0; i < st.n_items; i++) {
            prefill += st.items[i].pos < st.items[i].req->n_prompt
                       ? st.items[i].n_tokens : 0;
        }
    }

    n_done = 0;
    for (i = 0; i < 6; i++) {
        n_done += q[i]->done;
    }

    ok(n_done == (on ? 5 : 1) && w.bad == 0
       && prefill == (on ? 48 + 4 * 8 : 48),
       "cache %s: %d finished, %d prompt tokens computed", on ? "on" : "off",
       n_done, prefill);

    free_reqs(q, 6);
    freeworld(&w);
}


/*
 * The burst of test_abort_burst from two tenants in turn, a, b, a, b,
 * a, b, the cache on: tenants never share pages, so b's requests take
 * nothing from a's ahead of them. a's: 58, 66, 74 ms, admitted; b's,
 * each counted whole behind them: 116, 124, 132 ms, aborted.
 */
static void
test_abort_burst_tenants(void)
{
    treq_t              *q[6];
    world_t              w;
    slora_sched_step_t   st;
    int32_t              i, a_failed;

    slo_world(&w, 1, 256, 64, 32, 100);

    for (i = 0; i < 6; i++) {
        q[i] = mkreq((uint64_t) i + 1, 48, 2, i % 2 == 0 ? "a" : "b", 0);
        submit(&w, q[i], T0);
    }

    run_step(&w, &st, T0);

    a_failed = 0;
    for (i = 0; i < st.n_failed; i++) {
        a_failed += st.failed[i] == &q[0]->r || st.failed[i] == &q[2]->r
                    || st.failed[i] == &q[4]->r;
    }

    ok(st.n_failed == 3 && a_failed == 0
       && strstr(q[1]->r.err.msg, "estimated at 0.116 s") != NULL
       && strstr(q[5]->r.err.msg, "estimated at 0.132 s") != NULL,
       "tenants apart: b's three aborted, a's kept (%d failed): %s",
       st.n_failed, q[5]->r.err.msg);

    while (run_step(&w, &st, T0)) {
        /* a's requests run */
    }

    ok(q[0]->done && q[2]->done && q[4]->done && w.bad == 0,
       "a's three finished");

    free_reqs(q, 6);
    freeworld(&w);
}


/*
 * The burst of test_abort_burst, two requests, the second owing its
 * prompt's log-probabilities: it computes its every position, none taken
 * from the cache, so the first's pages ahead of it save it nothing: 116
 * ms (96 tokens), aborted, as with the cache off.
 */
static void
test_abort_burst_scored(void)
{
    treq_t              *q[2];
    world_t              w;
    slora_sched_step_t   st;

    slo_world(&w, 1, 256, 64, 32, 100);

    q[0] = mkreq(1, 48, 2, NULL, 0);
    q[1] = mkreq(2, 48, 2, NULL, 0);
    q[1]->r.score_to = 47;
    submit(&w, q[0], T0);
    submit(&w, q[1], T0);

    run_step(&w, &st, T0);

    ok(st.n_failed == 1 && st.failed[0] == &q[1]->r
       && strstr(q[1]->r.err.msg, "estimated at 0.116 s") != NULL,
       "a scored prompt behind a burst's first is counted whole: aborted "
       "at 116 ms (%d failed): %s", st.n_failed, q[1]->r.err.msg);

    while (run_step(&w, &st, T0)) {
        /* the first runs */
    }

    ok(q[0]->done && w.bad == 0, "the first finished");

    free_reqs(q, 2);
    freeworld(&w);
}


/*
 * 40 requests of 64-token prompts, each its own, then 40 more of the
 * same prompts in the same order, an SLO of 3335 ms: each of the second
 * forty will take its twin's 7 pages, so the last is estimated at 3330
 * ms (2560 + 40 * 8 tokens, 45 steps): none aborted. Counted whole it
 * would be at 5920. The set of pages ahead names 320 pages by then, past
 * its first size: a page lost as it grew would cost its request 56
 * tokens more and the last its SLO.
 */
static void
test_abort_burst_many(void)
{
    treq_t              *q[80];
    world_t              w;
    slora_sched_step_t   st;
    int32_t              i, t;

    slo_world(&w, 1, 2048, 64, 64, 3335);

    for (i = 0; i < 80; i++) {
        q[i] = mkreq((uint64_t) i + 1, 64, 2, NULL, 0);

        for (t = 0; t < 64; t++) {
            q[i]->r.tokens[t] = 100 * (i % 40) + t;
        }

        submit(&w, q[i], T0);
    }

    run_step(&w, &st, T0);

    ok(st.n_failed == 0,
       "40 prompts then the same 40: none aborted (%d failed)%s%s",
       st.n_failed, st.n_failed > 0 ? ": " : "",
       st.n_failed > 0 ? st.failed[0]->err.msg : "");

    while (run_step(&w, &st, T0)) {
        /* they run, or are aborted waiting for a slot */
    }

    ok(w.bad == 0, "no invariant broken");

    free_reqs(q, 80);
    freeworld(&w);
}


/*
 * 10 ms a step and 1 ms a token, a budget of 32, an SLO of 90 ms, the
 * cache on: a request of 64 prompt tokens (est 84 ms) has computed 32 of
 * them (4 pages cached) when one of the same prompt arrives. Counting
 * only the cached pages it would be estimated at 97 ms (a's 32 tokens
 * left and its own 32, 3 steps beside a's decode): aborted. The pages a
 * is computing are its too, 7 of its 8 full pages: 32 + 8 tokens, 62
 * ms, kept.
 */
static void
test_abort_computing(void)
{
    treq_t              *a, *b, *q[2];
    world_t              w;
    slora_sched_step_t   st;

    slo_world(&w, 1, 256, 32, 32, 90);

    a = mkreq(1, 64, 2, NULL, 0);
    submit(&w, a, T0);
    run_step(&w, &st, T0);

    b = mkreq(2, 64, 2, NULL, 0);
    submit(&w, b, T0);
    run_step(&w, &st, T0);

    ok(st.n_failed == 0 && b->r.err.code == SLORA_OK,
       "a prompt another is computing: kept (%d failed)%s%s",
       st.n_failed, st.n_failed > 0 ? ": " : "",
       st.n_failed > 0 ? b->r.err.msg : "");

    while (run_step(&w, &st, T0)) {
        /* both run */
    }

    ok(a->done && b->done && w.bad == 0, "both finished");

    q[0] = a;
    q[1] = b;
    free_reqs(q, 2);
    freeworld(&w);
}


/*
 * test_abort_computing under an adapter whose source changes while a
 * computes: a goes on with the old weights and enters its pages under
 * them, b will run the new ones and can take none of them: counted
 * whole (a's 32 tokens left and its own 64), aborted.
 */
static void
test_abort_computing_stale(void)
{
    char                  dir[300];
    treq_t               *a, *b, *q[2];
    world_t               w;
    slora_err_t           err;
    slora_adapter_t      *ad;
    slora_sched_step_t    st;
    slora_adapter_gen_t   gen = { 4, 4, 0x7f, 5, 0.5f };

    slo_world(&w, 1, 256, 32, 32, 90);

    snprintf(dir, sizeof(dir), "%s/stale", tmp);
    if (slora_adapter_write_random(dir, &cfg, &gen, &err) != SLORA_OK
        || slora_adapters_add(w.set, "stale", dir, &ad, &err) != SLORA_OK)
    {
        BAIL_OUT("%s", err.msg);
    }

    a = mkreq(1, 64, 2, NULL, 0);
    a->r.adapter = ad;
    submit(&w, a, T0);
    run_step(&w, &st, T0);

    if (slora_adapters_set_source(w.set, ad, dir, NULL, "v2", &err) != 1) {
        BAIL_OUT("source unchanged");
    }

    b = mkreq(2, 64, 2, NULL, 0);
    b->r.adapter = ad;
    submit(&w, b, T0);
    run_step(&w, &st, T0);

    ok(st.n_failed == 1 && st.failed[0] == &b->r,
       "a prompt another computes under an adapter's old weights: "
       "counted whole, aborted (%d failed)", st.n_failed);

    while (run_step(&w, &st, T0)) {
        /* a runs */
    }

    ok(a->done && w.bad == 0, "the first finished");

    q[0] = a;
    q[1] = b;
    free_reqs(q, 2);
    freeworld(&w);
}


/* 10 ms a step and 1 ms a token, schedule=slo, the prefix cache on or
 * off */
static void
slo_world(world_t *w, int cache, int32_t pages, int32_t budget,
    int32_t running, int32_t slo_ms)
{
    world_prefix_cache = cache;
    mkworld(w, &slora_sched_slo, pages, budget, running, slo_ms, 0);
    world_prefix_cache = 0;
    feed_model(w->s, 10 * MS, 1 * MS);
}


static void
free_reqs(treq_t **q, int32_t n)
{
    int32_t  i;

    for (i = 0; i < n; i++) {
        free(q[i]->r.pages);
        free(q[i]);
    }
}


/*
 * The context term: steps of 10 ms + 1 ms a token + 1 us a pair, their
 * attention measured; budget 512, SLO 600 ms. A 512-token prompt attends
 * over 131328 pairs: est 10 + 512 + 131.3 ms, past its SLO, though its
 * tokens alone (522 ms) are not; a 256-token one, 10 + 256 + 32.9: kept.
 */
static void
test_abort_context(void)
{
    int                  i;
    int64_t              pairs;
    treq_t              *a, *b;
    world_t              w;
    slora_sched_step_t   st;

    mkworld(&w, &slora_sched_slo, 256, 512, 4, 600, 0);

    for (i = 0; i < 40; i++) {
        pairs = i % 2 ? 4 * 300 : slora_sched_pairs(0, 64 + 8 * i);
        observe(w.s, i % 2 ? 4 : 64 + 8 * i, pairs,
                10 * MS + (i % 2 ? 4 : 64 + 8 * i) * MS + 1000 * pairs,
                1000 * pairs);
    }

    a = mkreq(1, 512, 2, NULL, 0);
    b = mkreq(2, 256, 2, NULL, 0);
    submit(&w, a, T0);
    submit(&w, b, T0 + 1);

    run_step(&w, &st, T0 + 1);

    ok(a->r.state == SLORA_REQ_DONE && a->r.err.code == SLORA_ABORTED,
       "the 512-token prompt is refused on its attention's work");
    ok(strstr(a->r.err.msg, "estimated at 0.653 s") != NULL, "its estimate "
       "counts the work: %s", a->r.err.msg);
    ok(b->r.state == SLORA_REQ_RUNNING && st.n_prefill == 256, "the "
       "256-token prompt is admitted");

    while (run_step(&w, &st, T0 + 1)) {
        /* drain */
    }
    ok(b->done && w.bad == 0, "it completes");

    free(a->r.pages);
    free(b->r.pages);
    free(a);
    free(b);
    freeworld(&w);
}


/*
 * Budget 64, 10 ms a step and 1 ms a token. r1 (16 tokens, SLO 100 ms)
 * came 60 ms ago: est 26 ms, 40 left to its SLO. r2 (32 tokens, SLO 1 s)
 * in its step would end it at 58 ms, making r1 late: deferred to the
 * next step. r3 (32 tokens, SLO 65 ms) likewise, but deferred it would
 * be late itself (est 68 ms): refused. r4 (8 tokens, SLO 1 s) comes after
 * r2 and waits with it. So the first plan admits r1 alone; its step ends
 * at 26 ms, where with all three it would end at 66, past r1's SLO.
 */
static void
test_abort_defer(void)
{
    treq_t              *r1, *r2, *r3, *r4;
    world_t              w;
    slora_sched_step_t   st;

    mkworld(&w, &slora_sched_slo, 256, 64, 8, 1000, 0);
    feed_model(w.s, 10 * MS, 1 * MS);

    r1 = mkreq(1, 16, 2, NULL, 0);
    r1->r.ttft_slo_ms = 100;
    r2 = mkreq(2, 32, 2, NULL, 0);
    r3 = mkreq(3, 32, 2, NULL, 0);
    r3->r.ttft_slo_ms = 65;
    r4 = mkreq(4, 8, 2, NULL, 0);
    submit(&w, r1, T0 - 60 * MS);
    submit(&w, r2, T0);
    submit(&w, r3, T0);
    submit(&w, r4, T0);

    run_step(&w, &st, T0);

    ok(st.n_items == 1 && st.items[0].req == &r1->r && st.n_prefill == 16,
       "the first step is r1's alone (%d items, %d tokens)", st.n_items,
       st.n_prefill);
    ok(r3->r.state == SLORA_REQ_DONE && r3->r.err.code == SLORA_ABORTED
       && strstr(r3->r.err.msg, "unless it made those getting their "
                 "first token in its step (1)") != NULL,
       "r3 is refused: in time only at r1's cost: %s", r3->r.err.msg);
    ok(r2->r.state == SLORA_REQ_WAITING && r4->r.state == SLORA_REQ_WAITING,
       "r2 and r4 wait for the next step");
    is_int(st.n_failed, 1, "only r3 is refused");

    run_step(&w, &st, T0 + 26 * MS);

    ok(r2->r.state == SLORA_REQ_RUNNING && r4->r.state == SLORA_REQ_RUNNING
       && st.n_prefill == 40, "the next step admits r2 and r4 (%d prefill "
       "tokens)", st.n_prefill);

    while (run_step(&w, &st, T0 + 100 * MS)) {
        /* drain */
    }
    ok(r1->done && r2->done && r4->done && w.bad == 0, "r1, r2, r4 "
       "complete");

    free(r3->r.pages);
    free(r1);
    free(r2);
    free(r3);
    free(r4);
    freeworld(&w);
}


/*
 * A prompt already past its SLO holds no one back: R (100 tokens, a
 * 150 ms SLO, 64 a step at 10 ms + 1 ms a token) is still prefilling
 * 200 ms after it came when W (8 tokens, 60 ms) arrives; W fits in R's
 * last prefill step well within its SLO. With R's SLO 10 s, W is
 * admitted; with R late, W was aborted, its step held to R's time left
 * (a negative one, which no step meets).
 */
static void
test_abort_late(void)
{
    int                  late;
    treq_t              *r, *w1;
    world_t              w;
    slora_sched_step_t   st;

    for (late = 0; late < 2; late++) {
        mkworld(&w, &slora_sched_slo, 256, 64, 8, 0, 0);
        feed_model(w.s, 10 * MS, 1 * MS);
        r = mkreq(1, 100, 4, NULL, 0);
        r->r.ttft_slo_ms = late ? 150 : 10000;
        submit(&w, r, T0);
        run_step(&w, &st, T0);
        w1 = mkreq(2, 8, 2, NULL, 0);
        w1->r.ttft_slo_ms = 60;
        w1->r.tokens[0] = 7;
        submit(&w, w1, T0 + 200 * MS);
        run_step(&w, &st, T0 + 200 * MS);
        ok(w1->r.state != SLORA_REQ_DONE && w1->admitted,
           "late: R %s, W admitted beside its last prefill step (%s)",
           late ? "past its SLO" : "within its SLO",
           w1->r.state == SLORA_REQ_DONE ? w1->r.err.msg : "not aborted");

        while (run_step(&w, &st, T0 + 300 * MS)) {
            /* drained */
        }

        free(r->r.pages);
        free(r);
        free(w1->r.pages);
        free(w1);
        freeworld(&w);
    }
}

