/*
 * test_sched_fair.c: the fair-share policy (slora_sched_fair.c), without
 * a model, driven as sched_world.h plays the engine.
 *
 * Checked, each against what a wrong policy would do: VTC alternates a
 * flooding tenant with a quiet one, balances weighted tokens, lifts a
 * newly active tenant so it banks no credit, and lets a higher priority
 * go first. Preemption for fair share: with the slots full of a flood, a
 * quiet tenant's request runs one step after it came, the preempted
 * request ends with all its tokens, fcfs, lcfs and slo preempt nothing;
 * never for a tenant of more service or against a higher priority; a
 * tenant with a request running only when far below; and no ping-pong in
 * long runs. And edges: the victim is of the tenant with the larger
 * counter; a lone request's waiver ends after 3 preemptions of a victim;
 * a preempted request's prompt is charged once. With the prefix cache,
 * a prompt is charged less what the cache gave it, at admission or, for
 * a request that waited for another's pages, at its first chunk; so a
 * tenant whose prompts hit the cache is served by what it costs.
 */

#include "sched_world.h"


static void test_vtc_share(void);
static void test_vtc_weights(void);
static void test_vtc_lift(void);
static void test_vtc_priority(void);
static void test_fair_preempt(void);
static void test_fair_no_thrash(void);
static void test_fair_no_preempt(void);
static void test_fair_far_below(void);
static void test_fair_victim_counter(void);
static void test_fair_waiver_cap(void);
static void test_fair_cached(void);
static void test_fair_cached_share(void);
static void test_fair_drafts(void);
static void test_fair_idle_count(void);
static void test_fair_tie_lone(void);


int
main(void)
{
    world_init("fair");

    test_vtc_share();
    test_vtc_weights();
    test_vtc_lift();
    test_vtc_priority();
    test_fair_preempt();
    test_fair_no_thrash();
    test_fair_no_preempt();
    test_fair_far_below();
    test_fair_victim_counter();
    test_fair_waiver_cap();
    test_fair_cached();
    test_fair_cached_share();
    test_fair_drafts();
    test_fair_idle_count();
    test_fair_tie_lone();

    world_done();

    return done_testing();
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

    /* a draft is no token generated: with one of 16 tokens set (the
     * engine sets drafts before the plan), the guard holds still */
    for (i = 0; i < 16; i++) {
        f->r.tokens[f->r.n_tokens + i] = 1000 + f->gen + i;
    }
    f->r.n_tokens += 16;
    f->r.n_draft = 16;
    slora_sched_plan_at(w.s, &st, T0 + 5);
    slora_sched_advance(w.s, &st);

    ok(f->r.n_preempted == 3 && qu[3]->r.state == SLORA_REQ_WAITING,
       "a draft set on the guarded request does not lift the guard "
       "(preempted %d times)", f->r.n_preempted);

    if (f->r.n_draft > 0) {
        slora_sched_settle(w.s, &f->r, 0);
        f->r.tokens[f->r.n_tokens++] = 1000 + f->gen++;
    }

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


/*
 * A 40-token prompt run once enters 5 pages in the cache; the same prompt
 * again takes 4 of them (its last token is computed for its logits) and
 * is charged its last 8 tokens and 2 generated. Two such prompts at once
 * in a fresh world: the second waits for the first's pages, then takes
 * them, and is charged the same.
 */
static void
test_fair_cached(void)
{
    treq_t              *a, *b, *c, *d;
    world_t              w;
    slora_sched_step_t   st;

    world_prefix_cache = 1;
    mkworld(&w, &slora_sched_fair, 256, 64, 4, 0, 0);
    world_prefix_cache = 0;

    a = mkreq(1, 40, 2, "t", 0);
    submit(&w, a, T0);
    while (run_step(&w, &st, T0 + 10)) {
        /* drain */
    }

    b = mkreq(2, 40, 2, "t", 0);
    submit(&w, b, T0 + 20);
    while (run_step(&w, &st, T0 + 30)) {
        /* drain */
    }

    ok(a->done && b->done && a->gen == 2 && b->gen == 2, "fair, cached: "
       "both ended with their tokens");
    is_int(a->r.n_charged, 40 + 2, "fair, cached: the first prompt is "
           "charged whole, and its 2 tokens");
    is_int(b->r.n_cached, 32, "fair, cached: the second took 4 pages from "
           "the cache");
    is_int(b->r.n_charged, 8 + 2, "fair, cached: and is charged the 8 "
           "tokens computed for it, and its 2");
    is_int(w.bad, 0, "fair, cached: no invariant broken");

    free(a);
    free(b);
    freeworld(&w);

    world_prefix_cache = 1;
    mkworld(&w, &slora_sched_fair, 256, 64, 4, 0, 0);
    world_prefix_cache = 0;

    c = mkreq(3, 40, 2, "t", 0);
    d = mkreq(4, 40, 2, "t", 0);
    submit(&w, c, T0);
    submit(&w, d, T0 + 1);
    while (run_step(&w, &st, T0 + 10)) {
        /* drain */
    }

    ok(c->done && d->done && c->gen == 2 && d->gen == 2, "fair, a burst: "
       "both ended with their tokens");
    is_int(d->r.n_cached, 32, "fair, a burst: the second waited for the "
           "first's pages and took 4");
    is_int(c->r.n_charged + d->r.n_charged, 40 + 2 + 8 + 2, "fair, a "
           "burst: the prompt is charged once whole, then its last 8 "
           "tokens (%d and %d)", c->r.n_charged, d->r.n_charged);
    is_int(w.bad, 0, "fair, a burst: no invariant broken");

    free(c);
    free(d);
    freeworld(&w);
}


/*
 * Tenant "long" asks the same 64-token prompt 20 times (after a first
 * run, 56 tokens of each come from the cache: 8 computed and 4 generated,
 * 16 weighted tokens), tenant "short" 20 distinct 8-token prompts (the
 * same 16). Both cost alike, so they are served alike: until the short
 * tenant's last admission, about as many of the long one's. Charged whole
 * prompts, the long tenant would get one admission to the other's 4.5.
 */
static void
test_fair_cached_share(void)
{
    int                  i, long_before, short_last;
    treq_t              *warm, *lg[20], *sh[20];
    world_t              w;
    slora_sched_step_t   st;

    world_prefix_cache = 1;
    mkworld(&w, &slora_sched_fair, 512, 64, 2, 0, 0);
    world_prefix_cache = 0;

    warm = mkreq(1, 64, 4, "long", 0);
    submit(&w, warm, T0);
    while (run_step(&w, &st, T0 + 10)) {
        /* drain */
    }

    for (i = 0; i < 20; i++) {
        lg[i] = mkreq(100 + i, 64, 4, "long", 0);
        submit(&w, lg[i], T0 + 100 + i);
    }

    for (i = 0; i < 20; i++) {
        sh[i] = mkreq(200 + i, 8, 4, "short", 0);
        sh[i]->r.tokens[0] = 50 + i;
        submit(&w, sh[i], T0 + 200 + i);
    }

    while (run_step(&w, &st, T0 + 1000)) {
        /* drain */
    }

    short_last = 0;
    for (i = 0; i < 20; i++) {
        short_last = sh[i]->admitted > short_last ? sh[i]->admitted
                                                  : short_last;
    }

    long_before = 0;
    for (i = 0; i < 20; i++) {
        long_before += lg[i]->admitted < short_last;
    }

    ok(long_before >= 16, "fair, cached: %d of the long tenant's cached "
       "prompts admitted beside the short tenant's 20", long_before);
    is_int(lg[19]->r.n_charged, 8 + 4, "fair, cached: a long prompt is "
           "charged its 8 computed tokens and its 4");
    is_int(w.bad, 0, "fair, cached: no invariant broken");
    is_int(slora_pool_count(w.pool, SLORA_PAGE_FREE)
           + slora_pool_count(w.pool, SLORA_PAGE_CACHED), 512,
           "fair, cached: every page free or cached");

    free(warm);
    for (i = 0; i < 20; i++) {
        free(lg[i]);
        free(sh[i]);
    }
    freeworld(&w);
}


/*
 * A draft's kept tokens are decoding's service: four drafts of 8, each
 * kept whole, generate 36 tokens (8 and the one after, 4 times), and
 * the tenant's counter grows by 36 times fair_decode (2), not by 4
 * times it (a client predicting its answer paid about 1/9 of it).
 */
static void
test_fair_drafts(void)
{
    int                  i, j;
    int64_t              c0;
    treq_t              *a;
    world_t              w;
    slora_sched_step_t   st;

    mkworld(&w, &slora_sched_fair, 64, 32, 2, 0, 0);
    a = mkreq(1, 8, 60, "t", 0);
    submit(&w, a, T0);
    run_step(&w, &st, T0);
    c0 = slora_sched_fair_counter(&a->r);

    for (i = 0; i < 4; i++) {
        for (j = 0; j < 8; j++) {
            a->r.tokens[a->r.n_tokens + j] = 1000 + a->gen + j;
        }

        a->r.n_tokens += 8;
        a->r.n_draft = 8;
        slora_sched_plan_at(w.s, &st, T0 + 1 + i);
        slora_sched_advance(w.s, &st);
        slora_sched_settle(w.s, &a->r, 8);

        for (j = 0; j < 9; j++) {
            a->r.tokens[a->r.n_tokens++] = 1000 + a->gen++;
        }
    }

    is_int((int) (slora_sched_fair_counter(&a->r) - c0), 36 * 2,
           "drafts: 36 tokens from 4 drafts kept whole charge 36 tokens");

    while (run_step(&w, &st, T0 + 100)) {
        /* drained */
    }

    free(a->r.pages);
    free(a);
    freeworld(&w);
}


/*
 * A tenant whose last request ends (here cancelled while it waited) with
 * its counter at the floor leaves the table, and the count of idle
 * entries stays right (it wrapped to 2^32 - 1, and every plan then swept
 * the whole table).
 */
static void
test_fair_idle_count(void)
{
    treq_t       *a;
    world_t       w;
    slora_req_t  *out[4];

    mkworld(&w, &slora_sched_fair, 64, 16, 1, 0, 0);
    a = mkreq(1, 8, 4, "alice", 0);
    submit(&w, a, T0);
    a->r.cancelled = 1;
    is_int(slora_sched_reap(w.s, out, 4), 1, "idle: the cancelled one reaped");
    is_int((int) slora_sched_fair_idle(w.s), 0,
           "idle: its tenant gone, no idle entry counted (not 2^32 - 1)");
    free(a->r.pages);
    free(a);
    freeworld(&w);
}


/*
 * One running slot; the flood's one running request and a newcomer at
 * a tie: the flood's request is not put back for it (nothing would run
 * for the flood, and the tie's break took the one just put back in the
 * same plan: a preemption, and its recompute, for nothing). Whatever
 * the plan, a request put back is not the one it runs.
 */
static void
test_fair_tie_lone(void)
{
    int                  i, k, j, pre, again;
    treq_t              *a, *b, *c, *q[3];
    world_t              w;
    int32_t              before[3];
    slora_sched_step_t   st;

    mkworld(&w, &slora_sched_fair, 256, 64, 1, 0, 0);
    a = mkreq(1, 16, 40, "flood", 0);
    c = mkreq(2, 16, 40, "flood", 0);
    submit(&w, a, T0);
    submit(&w, c, T0);
    run_step(&w, &st, T0);
    b = mkreq(3, 16, 4, "quiet", 0);
    submit(&w, b, T0 + 1);
    q[0] = a;
    q[1] = b;
    q[2] = c;

    pre = 0;
    again = 0;

    for (i = 0; i < 200 && !(a->done && b->done && c->done); i++) {
        for (k = 0; k < 3; k++) {
            before[k] = q[k]->r.n_preempted;
        }

        run_step(&w, &st, T0 + 2 + i);

        for (k = 0; k < 3; k++) {
            if (q[k]->r.n_preempted == before[k]) {
                continue;
            }

            pre++;

            for (j = 0; j < st.n_items; j++) {
                again += st.items[j].req == &q[k]->r;
            }
        }
    }

    ok(b->done && again == 0, "tie: all served, %d preemptions, %d of them"
       " taking back the request put back in the same plan", pre, again);

    while (run_step(&w, &st, T0 + 1000)) {
        /* drained */
    }

    for (k = 0; k < 3; k++) {
        free(q[k]->r.pages);
        free(q[k]);
    }

    freeworld(&w);
}
