/*
 * test_sched_policy.c: the admission policies, without a model. A driver
 * plays the engine as test_sched.c does (plan at a given time, mark the
 * chunks computed, append a token where a chunk reached its end) and
 * records the order in which requests were admitted.
 *
 * Checked, each against what a wrong policy would do: LCFS admits the
 * newest first (FCFS the oldest); the step-time model recovers the line
 * its samples lie on; SLO early abort refuses exactly the requests whose
 * estimate exceeds their SLO, those behind estimated without them, and
 * priority moves a request ahead of the estimate; clustering admits a
 * resident adapter's request before an equally urgent one that needs a
 * load, and not a less urgent one; VTC alternates a flooding tenant with
 * a quiet one, balances weighted tokens, lifts a newly active tenant so
 * it banks no credit, and lets a higher priority go first. Preemption for
 * fair share: with the slots full of a flood, a quiet tenant's request
 * runs one step after it came, the preempted request ends with all its
 * tokens, fcfs, lcfs and slo preempt nothing; never for a tenant of more
 * service or against a higher priority; a tenant with a request running
 * only when far below; and no ping-pong in long runs.
 *
 * And edges: a preempted request that had its first token is never
 * aborted; the estimate counts running decodes' tokens in every step and
 * none of them as prefill; one plan's aborts stop at the cap; clustering
 * never passes a higher priority; the victim is of the tenant with the
 * larger counter; a lone request's waiver ends after 3 preemptions of a
 * victim; a preempted request's prompt is charged once.
 */

#include <unistd.h>

#include "tap.h"
#include "slora_sched.h"


#define MS  1000000LL               /* ns */
#define T0  (1000000 * MS)          /* the tests' "now" */


typedef struct {
    slora_backend_t   b;
    float            *arena;
    int64_t           n;
} fake_backend_t;


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


static int fake_write(slora_backend_t *b, int64_t off, const float *src,
    int64_t n, slora_err_t *err);
static void mkworld(world_t *w, const slora_sched_policy_t *policy,
    int32_t pages, int32_t budget, int32_t running, int32_t slo_ms,
    int32_t cluster_ms);
static void freeworld(world_t *w);
static treq_t *mkreq(uint64_t id, int32_t n_prompt, int32_t want,
    const char *tenant, int32_t priority);
static void submit(world_t *w, treq_t *q, int64_t arrival);
static int run_step(world_t *w, slora_sched_step_t *st, int64_t now);
static void feed_model(slora_sched_t *s, int64_t per_step, int64_t per_tok);
static void test_lcfs(void);
static void test_step_model(void);
static void test_abort(void);
static void test_abort_edges(void);
static void test_cluster(void);
static void test_vtc_share(void);
static void test_vtc_weights(void);
static void test_vtc_lift(void);
static void test_vtc_priority(void);
static void test_fair_preempt(void);
static void test_fair_no_thrash(void);
static void test_fair_no_preempt(void);
static void test_fair_far_below(void);
static void test_abort_started(void);
static void test_abort_decodes(void);
static void test_abort_cap(void);
static void test_fair_victim_counter(void);
static void test_fair_waiver_cap(void);
static int exact(const treq_t *q);


int
main(void)
{
    char  cmd[300];

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-policy-XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    cfg.n_layers = 2;
    cfg.hidden = 64;
    cfg.n_heads = 4;
    cfg.n_kv_heads = 2;
    cfg.head_dim = 16;
    cfg.ffn = 128;
    cfg.vocab = 64;
    cfg.rope = SLORA_ROPE_NEOX;

    fb.b.write_arena = fake_write;

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
    test_vtc_share();
    test_vtc_weights();
    test_vtc_lift();
    test_vtc_priority();
    test_fair_preempt();
    test_fair_no_thrash();
    test_fair_no_preempt();
    test_fair_far_below();
    test_abort_started();
    test_abort_decodes();
    test_abort_cap();
    test_fair_victim_counter();
    test_fair_waiver_cap();

    free(fb.arena);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

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
    int            i;
    int64_t        a, b;
    world_t        w;

    mkworld(&w, &slora_sched_slo, 16, 64, 4, 0, 0);

    slora_sched_step_model(w.s, &a, &b);
    ok(a == 0 && b == 0, "no step seen: a zero model");

    /* t = 10 ms + 1 ms a token, sizes 8 and 64 */
    feed_model(w.s, 10 * MS, 1 * MS);
    slora_sched_step_model(w.s, &a, &b);
    ok(a == 10 * MS && b == 1 * MS, "the line through the steps: %lld ns "
       "a step, %lld ns a token", (long long) a, (long long) b);

    /* the machine gets slower: t = 20 ms + 3 ms a token */
    for (i = 0; i < 200; i++) {
        slora_sched_observe(w.s, i % 2 ? 8 : 64,
                            20 * MS + 3 * MS * (i % 2 ? 8 : 64));
    }
    slora_sched_step_model(w.s, &a, &b);
    ok(llabs(a - 20 * MS) < MS / 100 && llabs(b - 3 * MS) < MS / 100,
       "recent steps weigh most: %lld and %lld after 200 new steps",
       (long long) a, (long long) b);

    freeworld(&w);

    /* steps of one size: the time goes to the tokens */
    mkworld(&w, &slora_sched_slo, 16, 64, 4, 0, 0);
    for (i = 0; i < 10; i++) {
        slora_sched_observe(w.s, 10, 5 * MS);
    }
    slora_sched_step_model(w.s, &a, &b);
    ok(a == 0 && b == MS / 2, "one size only: 0 a step, %lld a token",
       (long long) b);

    /* a step that took longer with fewer tokens: no negative slope */
    slora_sched_observe(w.s, 2, 50 * MS);
    slora_sched_step_model(w.s, &a, &b);
    ok(a >= 0 && b >= 0, "no negative term (%lld, %lld)", (long long) a,
       (long long) b);

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
 *   r8   its own SLO of 116 ms (deadline after the others): P = 80 + 16,
 *        est 116: kept. Had r5..r7 counted, P would be 144 and est 174.
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
    q[8]->r.ttft_slo_ms = 116;

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
    is_int(q[5]->r.retry_after_ms, 1000, "retry after a second");
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
    ok(st.n_failed == 1 && big->r.retry_after_ms == 2220,
       "retry after the excess: %d ms", big->r.retry_after_ms);

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
 * A flooding tenant queues 40 requests, then a quiet one 10, all alike:
 * until the quiet tenant's last admission both are backlogged, and VTC
 * serves them in turn. FCFS makes the quiet tenant wait for all 40.
 */
static void
test_vtc_share(void)
{
    int                  p, i, flood_before, quiet_last;
    treq_t              *fl[40], *qu[10];
    world_t              w;
    slora_sched_step_t   st;

    const slora_sched_policy_t  *pol[2] = { &slora_sched_fair,
                                             &slora_sched_fcfs };

    for (p = 0; p < 2; p++) {
        mkworld(&w, pol[p], 256, 64, 4, 0, 0);

        for (i = 0; i < 40; i++) {
            fl[i] = mkreq(i, 8, 4, "flood", 0);
            submit(&w, fl[i], T0 + i);
        }
        for (i = 0; i < 10; i++) {
            qu[i] = mkreq(100 + i, 8, 4, "quiet", 0);
            submit(&w, qu[i], T0 + 100 + i);
        }

        while (run_step(&w, &st, T0 + 1000)) {
            /* drain */
        }

        quiet_last = 0;
        for (i = 0; i < 10; i++) {
            quiet_last = qu[i]->admitted > quiet_last ? qu[i]->admitted
                                                      : quiet_last;
        }

        flood_before = 0;
        for (i = 0; i < 40; i++) {
            flood_before += fl[i]->admitted < quiet_last;
        }

        if (p == 0) {
            ok(flood_before >= 9 && flood_before <= 11,
               "fair: %d flood admissions beside the quiet tenant's 10 "
               "(share %.0f%%)", flood_before,
               100.0 * 10 / (10 + flood_before));

        } else {
            is_int(flood_before, 40, "fcfs: the quiet tenant waits for all "
                   "40 of the flood");
        }

        is_int(w.bad, 0, "%s: no invariant broken", pol[p]->name);
        is_int(slora_pool_count(w.pool, SLORA_PAGE_FREE), 256,
               "%s: pool all free", pol[p]->name);

        for (i = 0; i < 40; i++) {
            free(fl[i]);
        }
        for (i = 0; i < 10; i++) {
            free(qu[i]);
        }
        freeworld(&w);
    }
}


/*
 * Weighted tokens, not requests: tenant A's requests have 24 prompt
 * tokens, B's 4 (both 2 generated; weights 1 and 2, so 28 against 8).
 * When B's queue runs dry, both have received about as much.
 */
static void
test_vtc_weights(void)
{
    int                  i, b_last;
    int64_t              wa, wb;
    treq_t              *a[20], *b[60];
    world_t              w;
    slora_sched_step_t   st;

    mkworld(&w, &slora_sched_fair, 512, 32, 2, 0, 0);

    for (i = 0; i < 20; i++) {
        a[i] = mkreq(i, 24, 2, "a", 0);
        submit(&w, a[i], T0);
    }
    for (i = 0; i < 60; i++) {
        b[i] = mkreq(100 + i, 4, 2, "b", 0);
        submit(&w, b[i], T0);
    }

    while (run_step(&w, &st, T0)) {
        /* drain */
    }

    b_last = 0;
    for (i = 0; i < 60; i++) {
        b_last = b[i]->admitted > b_last ? b[i]->admitted : b_last;
    }

    wa = 0;
    wb = 60 * (4 + 2 * 2);
    for (i = 0; i < 20; i++) {
        wa += a[i]->admitted < b_last ? 24 + 2 * 2 : 0;
    }

    ok(wa * 4 >= wb * 3 && wa * 3 <= wb * 4, "weighted service balanced "
       "while both wait: a %lld, b %lld (b's last admission: %d of 80)",
       (long long) wa, (long long) wb, b_last);
    is_int(w.bad, 0, "no invariant broken");

    for (i = 0; i < 20; i++) {
        free(a[i]);
    }
    for (i = 0; i < 60; i++) {
        free(b[i]);
    }
    freeworld(&w);
}


/*
 * Tenant "old" floods; tenant "late" has one long request running and
 * nothing waiting, so it is not backlogged while old's counter climbs
 * past its own. After 30 admissions late queues 10 more and a brand-new
 * tenant "new" 10: late is lifted to old's counter, new starts there, and
 * the three share the next 15 admissions (late a little less: its long
 * request is still charged for every token). Without the lift late would
 * take about 10 of them in a row on the credit banked while it only ran
 * one request; created at 0, new would take every one of them.
 */
static void
test_vtc_lift(void)
{
    int                  i, start, n_late, n_new, long_gen;
    treq_t              *old[40], *late[11], *fresh[10];
    world_t              w;
    slora_sched_step_t   st;

    mkworld(&w, &slora_sched_fair, 256, 64, 3, 0, 0);

    late[0] = mkreq(1000, 8, 200, "late", 0);
    submit(&w, late[0], T0);

    for (i = 0; i < 40; i++) {
        old[i] = mkreq(i, 8, 4, "old", 0);
        submit(&w, old[i], T0);
    }

    while (w.n_admitted < 30 && run_step(&w, &st, T0)) {
        /* old, beside late's one long request */
    }
    start = w.n_admitted;
    long_gen = late[0]->gen;

    for (i = 0; i < 10; i++) {
        late[i + 1] = mkreq(1001 + i, 8, 4, "late", 0);
        submit(&w, late[i + 1], T0 + 1);
        fresh[i] = mkreq(2000 + i, 8, 4, "new", 0);
        submit(&w, fresh[i], T0 + 1);
    }

    while (run_step(&w, &st, T0 + 1)) {
        /* drain */
    }

    n_late = 0;
    n_new = 0;
    for (i = 0; i < 10; i++) {
        n_late += late[i + 1]->admitted > start
                  && late[i + 1]->admitted <= start + 15;
        n_new += fresh[i]->admitted > start
                 && fresh[i]->admitted <= start + 15;
    }

    ok(late[0]->admitted == 1 && long_gen > 30 && long_gen < 200,
       "late's long request ran beside old's (%d tokens by then)",
       long_gen);
    ok(n_late >= 2 && n_late <= 6, "late, backlogged again, has %d of the "
       "next 15 admissions (no banked credit)", n_late);
    ok(n_new >= 3 && n_new <= 7, "a new tenant has %d of them (starts at "
       "the others' counter)", n_new);
    is_int(w.bad, 0, "no invariant broken");

    for (i = 0; i < 40; i++) {
        free(old[i]);
    }
    for (i = 0; i < 11; i++) {
        free(late[i]);
    }
    for (i = 0; i < 10; i++) {
        free(fresh[i]);
    }
    freeworld(&w);
}


static void
test_vtc_priority(void)
{
    int                  i, gold_first;
    treq_t              *std[5], *gold[3];
    world_t              w;
    slora_sched_step_t   st;

    mkworld(&w, &slora_sched_fair, 256, 64, 1, 0, 0);

    for (i = 0; i < 5; i++) {
        std[i] = mkreq(i, 8, 2, "std", 0);
        submit(&w, std[i], T0);
    }
    for (i = 0; i < 3; i++) {
        gold[i] = mkreq(10 + i, 8, 2, "gold", 1);
        submit(&w, gold[i], T0 + 1);
    }

    while (run_step(&w, &st, T0 + 1)) {
        /* drain */
    }

    gold_first = 1;
    for (i = 0; i < 3; i++) {
        gold_first &= gold[i]->admitted <= 3;
    }
    ok(gold_first, "the priority-1 tenant's 3 requests first, whatever "
       "its counter");
    is_int(w.bad, 0, "no invariant broken");

    for (i = 0; i < 5; i++) {
        free(std[i]);
    }
    for (i = 0; i < 3; i++) {
        free(gold[i]);
    }
    freeworld(&w);
}


/*
 * Two running slots, both held by a flooding tenant's requests (8 prompt
 * tokens, 24 generated), 8 more of them waiting. After 4 steps a quiet
 * tenant sends one request. Under fair it is lifted to the flood's
 * counter (a tie, which the flood's older request wins), passes below it
 * once the flood's running requests are charged one more step, and at the
 * plan after (the second since it came) takes a slot by preemption: of
 * the two flood requests, as far along as each other, the newer. That one
 * is recomputed later and ends with all its tokens. fcfs, lcfs and slo
 * preempt nothing: the quiet request waits for a slot to free.
 */
static void
test_fair_preempt(void)
{
    int                  p, i, arrive, delay[4], right;
    uint64_t             pre[4];
    treq_t              *fl[10], *qu;
    world_t              w;
    slora_sched_step_t   st;

    const slora_sched_policy_t  *pol[4] = { &slora_sched_fair,
                                             &slora_sched_fcfs,
                                             &slora_sched_lcfs,
                                             &slora_sched_slo };

    for (p = 0; p < 4; p++) {
        mkworld(&w, pol[p], 256, 64, 2, 0, 0);

        for (i = 0; i < 10; i++) {
            fl[i] = mkreq(i, 8, 24, "flood", 0);
            submit(&w, fl[i], T0 + i);
        }

        for (i = 0; i < 4; i++) {
            run_step(&w, &st, T0 + 100);
        }

        qu = mkreq(100, 8, 2, "quiet", 0);
        submit(&w, qu, T0 + 200);
        arrive = w.steps;

        while (run_step(&w, &st, T0 + 300)) {
            /* drain */
        }

        delay[p] = qu->admit_step - arrive;
        pre[p] = slora_sched_preemptions(w.s);

        right = exact(qu);
        for (i = 0; i < 10; i++) {
            right &= exact(fl[i]);
        }

        if (p == 0) {
            ok(fl[1]->r.n_preempted == 1 && fl[0]->r.n_preempted == 0
               && qu->r.n_preempted == 0,
               "fair: the victim is the newer of the two flood requests "
               "running");
            ok(fl[1]->starts == 2 && fl[1]->admit_step == 1,
               "fair: it ran from the first plan and was recomputed once");
            is_int(fl[1]->r.n_charged, 8 + 24, "fair: the preempted "
                   "request charged its prompt once, not again when "
                   "re-admitted, and its 24 tokens");
        }

        ok(right, "%s: every request ends with its tokens (24, the quiet "
           "one 2) in order, prefilled once more per preemption",
           pol[p]->name);
        is_int(w.bad, 0, "%s: no invariant broken", pol[p]->name);
        is_int(slora_pool_count(w.pool, SLORA_PAGE_FREE), 256,
               "%s: pool all free", pol[p]->name);

        for (i = 0; i < 10; i++) {
            free(fl[i]);
        }
        free(qu);
        freeworld(&w);
    }

    is_int(delay[0], 1, "fair: the quiet request has a slot at the first "
           "plan after it came, slots full of the flood (a tie: it runs "
           "nothing)");
    is_int((int) pre[0], 1, "fair: one preemption for it");

    for (p = 1; p < 4; p++) {
        ok(pre[p] == 0 && delay[p] > 10, "%s: no preemption; the quiet "
           "request waits %d plans for a slot", pol[p]->name, delay[p]);
    }
}


/*
 * Long runs where preemption could ping-pong. Two tenants flood with
 * requests of 8 prompt tokens and 40 generated (16 each), on one running
 * slot and on two: whoever holds the slots has more service than the one
 * waiting with nothing running, again and again. And a quiet tenant that
 * sends a short request every 12 steps beside one flood on two slots,
 * then every 3 steps beside a flood of short requests.
 * A request is first preempted after its first step at the earliest (a
 * context of 9 tokens), and after a preemption it must generate as many
 * tokens as it recomputed: 9, 18, 36, and 72 is past its 48, so at most 3
 * preemptions a request, 96 in all (time slicing on one slot, not one a
 * step); each quiet request costs at most one, and has a slot at the
 * next plan; all end with their tokens.
 */
static void
test_fair_no_thrash(void)
{
    int                  c, i, right, most, n_quiet, late;
    uint64_t             pre;
    treq_t              *a[16], *b[16], *qu[20];
    world_t              w;
    slora_sched_step_t   st;

    for (c = 0; c < 2; c++) {
        mkworld(&w, &slora_sched_fair, 512, 64, c + 1, 0, 0);

        for (i = 0; i < 16; i++) {
            a[i] = mkreq(i, 8, 40, "a", 0);
            b[i] = mkreq(100 + i, 8, 40, "b", 0);
            submit(&w, a[i], T0 + 2 * i);
            submit(&w, b[i], T0 + 2 * i + 1);
        }

        while (run_step(&w, &st, T0 + 1000) && w.steps < 100000) {
            /* drain */
        }

        pre = slora_sched_preemptions(w.s);
        right = 1;
        most = 0;
        for (i = 0; i < 16; i++) {
            right &= exact(a[i]) && exact(b[i]);
            most = a[i]->r.n_preempted > most ? a[i]->r.n_preempted : most;
            most = b[i]->r.n_preempted > most ? b[i]->r.n_preempted : most;
        }

        diag("two floods, %d slot(s): %llu preemptions in %d steps, at "
             "most %d for one request", c + 1, (unsigned long long) pre,
             w.steps, most);
        ok(right, "two floods, %d slot(s): all 32 end with their tokens",
           c + 1);
        ok(most <= 3, "two floods, %d slot(s): no request preempted more "
           "than 3 times (%d)", c + 1, most);
        ok(pre <= 96, "two floods, %d slot(s): %llu preemptions in %d "
           "steps, at most 3 a request", c + 1, (unsigned long long) pre,
           w.steps);
        is_int(w.bad, 0, "two floods, %d slot(s): no invariant broken",
               c + 1);

        for (i = 0; i < 16; i++) {
            free(a[i]);
            free(b[i]);
        }
        freeworld(&w);
    }

    /* the quiet tenant beside a flood of long requests, then of short
     * ones (12 generated, quiet requests every 3 plans) that the guard
     * alone would cover for the rest of their lives after one preemption:
     * 12 of 20 quiet requests then wait for a slot */
    for (c = 0; c < 2; c++) {
        mkworld(&w, &slora_sched_fair, 512, 64, 2, 0, 0);

        for (i = 0; i < 16; i++) {
            a[i] = mkreq(i, 8, c == 0 ? 40 : 12, "flood", 0);
            submit(&w, a[i], T0 + i);
        }

        n_quiet = 0;
        late = 0;
        while (run_step(&w, &st, T0 + 1000) && w.steps < 100000) {
            if (w.steps % (c == 0 ? 12 : 3) == 0 && n_quiet < 20) {
                qu[n_quiet] = mkreq(200 + n_quiet, 4, 2, "quiet", 0);
                submit(&w, qu[n_quiet], T0 + 1000 + n_quiet);
                n_quiet++;
            }
        }

        right = 1;
        most = 0;
        for (i = 0; i < n_quiet; i++) {
            right &= exact(qu[i]);
            late += qu[i]->admit_step - qu[i]->submit_step > 1;
        }
        for (i = 0; i < 16; i++) {
            right &= exact(a[i]);
            most = a[i]->r.n_preempted > most ? a[i]->r.n_preempted : most;
        }
        pre = slora_sched_preemptions(w.s);

        diag("quiet beside a flood of %d-token requests: %d quiet "
             "requests, %llu preemptions, at most %d of one flood request, "
             "%d not admitted at the next plan", c == 0 ? 40 : 12, n_quiet,
             (unsigned long long) pre, most, late);
        ok(right && n_quiet == 20, "quiet beside a flood of %d-token "
           "requests: all end with their tokens", c == 0 ? 40 : 12);
        ok(pre <= (uint64_t) n_quiet && most <= 3, "quiet beside a flood "
           "of %d-token requests: at most one preemption a quiet request "
           "(%llu for %d), at most 3 of one flood request (%d)",
           c == 0 ? 40 : 12, (unsigned long long) pre, n_quiet, most);
        is_int(late, 0, "quiet beside a flood of %d-token requests: every "
               "quiet request has a slot at the next plan",
               c == 0 ? 40 : 12);
        is_int(w.bad, 0, "quiet beside a flood of %d-token requests: no "
               "invariant broken", c == 0 ? 40 : 12);

        for (i = 0; i < 16; i++) {
            free(a[i]);
        }
        for (i = 0; i < n_quiet; i++) {
            free(qu[i]);
        }
        freeworld(&w);
    }
}


/*
 * Never for a tenant of equal or more service, nor of a lower priority.
 * Two slots, held by tenant "long" (2 requests, 8 prompt tokens and 60
 * generated): after 5 steps a third tenant sends one request.
 *   new   a tenant never seen: it starts at the floor, below long, and
 *         takes a slot at once (the control);
 *   rich  it ran 2 requests of 40 tokens alone before: its counter 176,
 *         long's 24 after admission and 4 more a step, 44 when rich
 *         comes: no preemption until long's passes 176, 33 steps later
 *         (long's requests still have some 25 steps to go then);
 *   gold  long's tenant has priority 1, the newcomer 0: it waits for a
 *         long request to end.
 */
static void
test_fair_no_preempt(void)
{
    int                  c, i, arrive, delay[3];
    uint64_t             pre[3];
    treq_t              *lg[2], *rich[2], *nq;
    world_t              w;
    slora_sched_step_t   st;

    static const char   *name[3] = { "new", "rich", "gold" };

    for (c = 0; c < 3; c++) {
        mkworld(&w, &slora_sched_fair, 256, 64, 2, 0, 0);

        rich[0] = NULL;
        rich[1] = NULL;

        if (c == 1) {
            for (i = 0; i < 2; i++) {
                rich[i] = mkreq(50 + i, 8, 40, name[c], 0);
                submit(&w, rich[i], T0);
            }
            while (run_step(&w, &st, T0)) {
                /* rich alone */
            }
        }

        for (i = 0; i < 2; i++) {
            lg[i] = mkreq(i, 8, 60, "long", c == 2);
            submit(&w, lg[i], T0 + 1);
        }

        for (i = 0; i < 5; i++) {
            run_step(&w, &st, T0 + 1);
        }

        nq = mkreq(100, 8, 2, name[c], 0);
        submit(&w, nq, T0 + 2);
        arrive = w.steps;

        while (run_step(&w, &st, T0 + 2)) {
            /* drain */
        }

        delay[c] = nq->admit_step - arrive;
        pre[c] = slora_sched_preemptions(w.s);

        ok(exact(nq) && exact(lg[0]) && exact(lg[1]) && w.bad == 0,
           "%s: all end with their tokens, no invariant broken", name[c]);

        free(lg[0]);
        free(lg[1]);
        free(rich[0]);
        free(rich[1]);
        free(nq);
        freeworld(&w);
    }

    ok(delay[0] == 1 && pre[0] == 1, "new: preempts at the first plan "
       "(after %d, %llu preemption)", delay[0], (unsigned long long) pre[0]);
    ok(delay[1] >= 30 && delay[1] <= 40 && pre[1] == 1, "rich: more "
       "service than long: no preemption until long's passes it (%d plans, "
       "%llu preemption)", delay[1], (unsigned long long) pre[1]);
    ok(delay[2] > 50 && pre[2] == 0, "gold: a higher priority is never "
       "preempted (%d plans, %llu preemptions)", delay[2],
       (unsigned long long) pre[2]);
}


/*
 * Far below: three slots, budget 16 (the gap: 16 tokens times the weight
 * 2, 32). Tenant q runs one long request beside two of a flood with a
 * backlog; after 5 steps q sends another. It is lifted to the flood's
 * counter, and q having a request running, waits until the flood is 32
 * ahead: 2 a step (two flood decodes at 2 against q's one), some 16
 * steps; then one flood request is preempted for it.
 */
static void
test_fair_far_below(void)
{
    int                  i, arrive, right, victims;
    treq_t              *q[2], *fl[8];
    world_t              w;
    slora_sched_step_t   st;

    mkworld(&w, &slora_sched_fair, 512, 16, 3, 0, 0);

    q[0] = mkreq(1000, 8, 100, "q", 0);
    submit(&w, q[0], T0);
    for (i = 0; i < 8; i++) {
        fl[i] = mkreq(i, 8, 100, "flood", 0);
        submit(&w, fl[i], T0 + 1 + i);
    }

    for (i = 0; i < 5; i++) {
        run_step(&w, &st, T0 + 10);
    }

    right = slora_sched_running(w.s) == 3 && q[0]->admitted != 0;

    q[1] = mkreq(1001, 8, 4, "q", 0);
    submit(&w, q[1], T0 + 20);
    arrive = w.steps;

    while (run_step(&w, &st, T0 + 30) && q[1]->admitted == 0) {
        /* until q's second request runs */
    }

    ok(right, "3 slots: q's long request and two of the flood");
    ok(q[1]->admit_step - arrive >= 12 && q[1]->admit_step - arrive <= 20,
       "q, with one request running, gets a second slot only when far "
       "below: %d plans after it came", q[1]->admit_step - arrive);

    victims = 0;
    for (i = 0; i < 8; i++) {
        victims += fl[i]->r.n_preempted;
    }
    ok(victims == 1 && q[0]->r.n_preempted == 0
       && slora_sched_preemptions(w.s) == 1, "by preempting one flood "
       "request");

    while (run_step(&w, &st, T0 + 30)) {
        /* drain */
    }

    right = exact(q[0]) && exact(q[1]);
    for (i = 0; i < 8; i++) {
        right &= exact(fl[i]);
    }
    ok(right && w.bad == 0, "all end with their tokens");

    free(q[0]);
    free(q[1]);
    for (i = 0; i < 8; i++) {
        free(fl[i]);
    }
    freeworld(&w);
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
 * Two slots, tenants big (24 prompt tokens) and small (8) one request
 * each, charged 24 and 8 at admission and 2 a token since. A third
 * tenant's request preempts big's, the larger counter, not small's.
 */
static void
test_fair_victim_counter(void)
{
    treq_t              *big, *small, *qu;
    world_t              w;
    slora_sched_step_t   st;

    mkworld(&w, &slora_sched_fair, 256, 64, 2, 0, 0);

    big = mkreq(1, 24, 20, "big", 0);
    small = mkreq(2, 8, 20, "small", 0);
    submit(&w, big, T0);
    submit(&w, small, T0);
    run_step(&w, &st, T0);
    run_step(&w, &st, T0);

    qu = mkreq(3, 4, 2, "quiet", 0);
    submit(&w, qu, T0 + 1);
    run_step(&w, &st, T0 + 1);

    ok(qu->admitted != 0 && big->r.n_preempted == 1
       && small->r.n_preempted == 0, "the victim is of the tenant with "
       "the larger counter (big)");

    while (run_step(&w, &st, T0 + 1)) {
        /* drain */
    }
    ok(exact(big) && exact(small) && exact(qu) && w.bad == 0,
       "all end with their tokens");

    free(big);
    free(small);
    free(qu);
    freeworld(&w);
}


/*
 * One slot, a flood request of 200 tokens; a step after it runs again, a
 * new tenant sends a request of one token (done in the step it is
 * admitted). Just re-admitted, the flood request is guarded against
 * thrashing, but a lone request is waived past the guard: 3 times. The
 * fourth waits for the guard to lapse.
 */
static void
test_fair_waiver_cap(void)
{
    int                  i, adm[4], pre[4];
    treq_t              *f, *qu[4];
    world_t              w;
    slora_sched_step_t   st;

    static const char   *name[4] = { "q0", "q1", "q2", "q3" };

    mkworld(&w, &slora_sched_fair, 256, 64, 1, 0, 0);

    f = mkreq(0, 8, 200, "flood", 0);
    submit(&w, f, T0);

    for (i = 0; i < 4; i++) {
        while (w.steps < 1000
               && ((i > 0 && !qu[i - 1]->done)
                   || f->r.state != SLORA_REQ_RUNNING))
        {
            run_step(&w, &st, T0);
        }
        run_step(&w, &st, T0);

        qu[i] = mkreq(100 + i, 1, 1, name[i], 0);
        submit(&w, qu[i], T0 + 1 + i);
        run_step(&w, &st, T0 + 1 + i);

        adm[i] = qu[i]->admitted != 0;
        pre[i] = f->r.n_preempted;
    }

    ok(adm[0] && adm[1] && adm[2] && pre[0] == 1 && pre[1] == 2
       && pre[2] == 3, "3 lone requests preempt the guarded flood request "
       "at once (%d %d %d times)", pre[0], pre[1], pre[2]);
    ok(!adm[3] && pre[3] == 3, "the fourth is refused the waiver: the "
       "victim was preempted 3 times (%d)", pre[3]);

    while (run_step(&w, &st, T0 + 10)) {
        /* drain */
    }
    ok(exact(f) && exact(qu[0]) && exact(qu[3]) && w.bad == 0,
       "all end with their tokens");

    free(f);
    for (i = 0; i < 4; i++) {
        free(qu[i]);
    }
    freeworld(&w);
}


/* q ended with its prompt and exactly its tokens, in order, prefilled
 * from position 0 once and once more for every preemption. */
static int
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


/* Steps of 8 and 64 tokens lying on t = per_step + per_tok * n. */
static void
feed_model(slora_sched_t *s, int64_t per_step, int64_t per_tok)
{
    int  i;

    for (i = 0; i < 40; i++) {
        slora_sched_observe(s, i % 2 ? 8 : 64,
                            per_step + per_tok * (i % 2 ? 8 : 64));
    }
}


/* Plans at now and plays the step; 0 when there was nothing to do. */
static int
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


static void
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

    w->s = slora_sched_create(&sc, w->pool, w->set, policy, &err);
    if (w->s == NULL) {
        BAIL_OUT("%s", err.msg);
    }
}


static void
freeworld(world_t *w)
{
    slora_sched_free(w->s);
    slora_adapters_free(w->set);
    slora_pool_free(w->pool);
}


static treq_t *
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


static void
submit(world_t *w, treq_t *q, int64_t arrival)
{
    slora_err_t  err;

    q->r.arrival_ns = arrival;
    q->submit_step = w->steps;

    if (slora_sched_submit(w->s, &q->r, &err) != SLORA_OK) {
        BAIL_OUT("%s", err.msg);
    }
}


static int
fake_write(slora_backend_t *b, int64_t off, const float *src, int64_t n,
    slora_err_t *err)
{
    fake_backend_t  *f = (fake_backend_t *) b;

    if (off < 0 || n < 0 || off + n > f->n) {
        return slora_err_set(err, SLORA_ERROR, "fake: write outside");
    }

    memcpy(f->arena + off, src, (size_t) n * sizeof(float));

    return SLORA_OK;
}
