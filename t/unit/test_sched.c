/*
 * test_sched.c: the scheduler without a model. A driver plays the engine:
 * it runs the plan, marks the chunks computed, appends a token for every
 * sequence that reached its last token, and finishes requests at their
 * length. Checked: chunked prefill under the budget with decodes first,
 * max_running, adapter clustering, idle adapters evicted before any
 * preemption, preemption of the newest request with its tokens kept,
 * failures that leave the others running, cancellation, and a pool that
 * ends as it started. Every step stays within max_batch_tokens, a prefill
 * chunk beside a decode included; an adapter that does not fit while a
 * request runs makes its request wait, not fail.
 */

#include <unistd.h>

#include "tap.h"
#include "slora_sched.h"
#include "tiny_config.h"
#include "fake_backend.h"


typedef struct {
    slora_req_t       r;
    int32_t           want;         /* tokens to generate */
    int32_t           gen;
    int               done;
} treq_t;


static slora_model_config_t  cfg;
static char                  tmp[256];
static fake_backend_t        fb;
static int32_t               max_tokens;    /* the scheduler's budget */
static int32_t               score_rows;    /* mksched's; 0: the default */


static treq_t *mkreq(uint64_t id, int32_t n_prompt, int32_t want,
    slora_adapter_t *a);
static int run_step(slora_sched_t *s, slora_sched_step_t *st, int *bad);
static slora_sched_t *mksched(int32_t pages, int32_t budget, int32_t running,
    const slora_sched_policy_t *policy, slora_pool_t **pool,
    slora_adapters_t **set);
static void test_chunks(void);
static void test_preempt(void);
static void test_adapters(void);
static void test_fail_cancel(void);
static void test_reserve(void);
static void test_adapter_wait(void);
static void test_scores(void);


int
main(void)
{
    char  cmd[300];

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-sched-XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    tiny_config(&cfg, SLORA_ROPE_NEOX);

    fb.b.write_arena = fake_write;

    test_chunks();
    test_preempt();
    test_adapters();
    test_fail_cancel();
    test_reserve();
    test_adapter_wait();
    test_scores();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}


static void
test_chunks(void)
{
    int                  bad, i;
    treq_t              *a, *b, *c;
    slora_pool_t        *pool;
    slora_sched_t       *s;
    slora_adapters_t    *set;
    slora_sched_step_t   st;

    s = mksched(64, 16, 2, &slora_sched_fcfs, &pool, &set);

    a = mkreq(1, 40, 3, NULL);
    b = mkreq(2, 5, 2, NULL);
    c = mkreq(3, 3, 1, NULL);
    slora_sched_submit(s, &a->r, NULL);
    slora_sched_submit(s, &b->r, NULL);
    slora_sched_submit(s, &c->r, NULL);

    bad = 0;

    run_step(s, &st, &bad);
    ok(st.n_items == 1 && st.items[0].req == &a->r && st.n_tokens == 16
       && !st.items[0].logits, "step 1: a's first chunk of 16");
    is_int(a->r.n_pages, 2, "16 tokens, 8 per page: 2 pages");

    run_step(s, &st, &bad);
    ok(st.n_items == 1 && st.n_tokens == 16 && st.items[0].pos == 16,
       "step 2: a's second chunk (b waits: the budget is spent)");

    run_step(s, &st, &bad);
    ok(st.n_items == 2 && st.items[0].req == &a->r
       && st.items[0].n_tokens == 8 && st.items[0].logits
       && st.items[1].req == &b->r && st.items[1].n_tokens == 5,
       "step 3: a's last 8 with logits, b admitted into the 8 left");
    is_int(a->gen, 1, "a sampled its first token");

    run_step(s, &st, &bad);
    ok(st.n_items == 2 && st.n_decode == 2 && st.n_tokens == 2,
       "step 4: two decodes; c waits for max_running 2");
    is_int(slora_sched_running(s), 1, "b finished after its 2 tokens");

    run_step(s, &st, &bad);
    ok(st.n_items == 2 && st.n_decode == 1 && st.n_prefill == 3,
       "step 5: a's decode and c's prompt");

    for (i = 0; i < 10 && run_step(s, &st, &bad); i++) {
        /* drain */
    }

    ok(a->done && b->done && c->done, "all done");
    is_int(bad, 0, "no invariant broken");
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 64, "pool all free");

    free(a);
    free(b);
    free(c);
    slora_sched_free(s);
    slora_adapters_free(set);
    slora_pool_free(pool);
}


/* 12 pages of 8 tokens; 6 requests of 20 + 20 tokens each want 5 pages */
static void
test_preempt(void)
{
    int                  bad, i, j, steps, all;
    treq_t              *q[6];
    slora_pool_t        *pool;
    slora_sched_t       *s;
    slora_adapters_t    *set;
    slora_sched_step_t   st;

    s = mksched(12, 64, 6, &slora_sched_fcfs, &pool, &set);

    for (i = 0; i < 6; i++) {
        q[i] = mkreq(10 + i, 20, 20, NULL);
        slora_sched_submit(s, &q[i]->r, NULL);
    }

    bad = 0;
    steps = 0;
    while (run_step(s, &st, &bad) && steps < 1000) {
        steps++;
        bad += slora_pool_count(pool, SLORA_PAGE_FREE) < 0;
        bad += st.n_failed != 0;
    }

    all = 1;
    for (i = 0; i < 6; i++) {
        all &= q[i]->done && q[i]->gen == 20;
        bad += q[i]->r.n_tokens != 40;
        for (j = 0; j < 20; j++) {
            bad += q[i]->r.tokens[20 + j] != 1000 + j;
        }
        free(q[i]);
    }

    ok(all, "6 requests too big for the pool together all complete");
    ok(slora_sched_preemptions(s) > 0, "by preemption (%llu of them, %d "
       "steps)", (unsigned long long) slora_sched_preemptions(s), steps);
    is_int(bad, 0, "no failure, no token lost on recompute");
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 12, "pool all free");

    slora_sched_free(s);
    slora_adapters_free(set);
    slora_pool_free(pool);
}


static void
test_adapters(void)
{
    int                   bad, i, j, grouped;
    char                  dir[400], name[16];
    treq_t               *q[9], *big;
    slora_err_t           err;
    slora_pool_t         *pool;
    slora_sched_t        *s;
    slora_adapter_t      *ad[3];
    slora_adapters_t     *set;
    slora_sched_step_t    st;
    slora_adapter_gen_t   gen = { 2, 4, 1u << SLORA_PROJ_Q, 1, 0.1f };

    /* rank 2 on q: 256 elements a layer, one page of 512 */
    s = mksched(12, 64, 9, &slora_sched_fcfs, &pool, &set);

    for (i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "a%d", i);
        snprintf(dir, sizeof(dir), "%s/%s", tmp, name);
        gen.seed = i + 1;
        if (slora_adapter_write_random(dir, &cfg, &gen, &err) != SLORA_OK) {
            BAIL_OUT("%s", err.msg);
        }
        slora_adapters_add(set, name, dir, &ad[i], &err);
    }

    /* interleaved arrivals: a0 a1 a2 base a0 a1 a2 base a0 */
    for (i = 0; i < 9; i++) {
        q[i] = mkreq(100 + i, 4, 2, i % 4 == 3 ? NULL : ad[i % 4 % 3]);
        slora_sched_submit(s, &q[i]->r, NULL);
    }

    bad = 0;
    run_step(s, &st, &bad);
    is_int(st.n_items, 9, "all 9 admitted (3 adapter pages, 9 KV pages)");

    grouped = 1;
    for (i = 0; i < st.n_items; i++) {
        for (j = i + 2; j < st.n_items; j++) {
            if (st.items[j].req->adapter == st.items[i].req->adapter
                && st.items[j - 1].req->adapter != st.items[i].req->adapter)
            {
                grouped = 0;
            }
        }
    }
    ok(grouped, "sequences of one adapter are contiguous in the step");
    ok(st.items[0].req->adapter == NULL && st.items[1].req->adapter == NULL,
       "base-model sequences together");
    is_int(slora_pool_count(pool, SLORA_PAGE_ADAPTER), 3, "3 adapters in");
    is_int(slora_adapter_refs(ad[0]), 3, "a0 pinned by its 3 requests");

    while (run_step(s, &st, &bad)) {
        /* drain */
    }
    is_int(slora_adapter_refs(ad[0]), 0, "pins dropped as requests end");
    is_int(slora_pool_count(pool, SLORA_PAGE_ADAPTER), 3,
           "idle adapters stay resident");

    /* 9 free pages; a request growing to 10 evicts one idle adapter and
     * preempts nothing */
    big = mkreq(200, 75, 5, NULL);
    slora_sched_submit(s, &big->r, NULL);
    run_step(s, &st, &bad);
    ok(st.n_items == 1 && st.n_tokens == 64, "big admitted, chunk of 64");
    is_int(slora_pool_count(pool, SLORA_PAGE_ADAPTER), 3,
           "its 8 pages fit beside the idle adapters");

    while (run_step(s, &st, &bad)) {
        /* drain */
    }

    ok(big->done, "big done");
    is_int(slora_pool_count(pool, SLORA_PAGE_ADAPTER), 2,
           "one idle adapter evicted as it grew to 10 pages");
    is_int(slora_sched_preemptions(s), 0, "no preemption");
    is_int(bad, 0, "no invariant broken");
    slora_adapters_evict(set, 12);
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 12, "pool all free");

    for (i = 0; i < 9; i++) {
        bad += !q[i]->done;
        free(q[i]);
    }
    is_int(bad, 0, "all adapter requests done");
    free(big);

    slora_sched_free(s);
    slora_adapters_free(set);
    slora_pool_free(pool);
}


static void
test_fail_cancel(void)
{
    int                  bad;
    char                 dir[400];
    treq_t              *ok1, *broken, *huge, *cancel;
    slora_err_t          err;
    slora_req_t         *out[4];
    slora_pool_t        *pool;
    slora_sched_t       *s;
    slora_adapter_t     *a;
    slora_adapters_t    *set;
    slora_sched_step_t   st;

    s = mksched(8, 64, 4, &slora_sched_fcfs, &pool, &set);

    snprintf(dir, sizeof(dir), "%s/missing", tmp);
    slora_adapters_add(set, "missing", dir, &a, &err);

    ok1 = mkreq(1, 4, 3, NULL);
    broken = mkreq(2, 4, 3, a);
    huge = mkreq(3, 70, 20, NULL);
    cancel = mkreq(4, 4, 30, NULL);
    slora_sched_submit(s, &ok1->r, NULL);
    slora_sched_submit(s, &broken->r, NULL);
    slora_sched_submit(s, &cancel->r, NULL);

    bad = 0;
    run_step(s, &st, &bad);
    ok(st.n_failed == 1 && st.failed[0] == &broken->r
       && strstr(broken->r.err.msg, "missing/adapter_config.json") != NULL,
       "unreadable adapter fails its request: %s", broken->r.err.msg);
    is_int(st.n_items, 2, "the others run");

    cancel->r.cancelled = 1;
    is_int(slora_sched_reap(s, out, 4), 1, "one cancelled reaped");
    ok(out[0] == &cancel->r && cancel->r.n_pages == 0
       && slora_sched_find(s, 4) == NULL, "its pages freed, it is gone");

    while (run_step(s, &st, &bad)) {
        /* drain */
    }
    ok(ok1->done, "the healthy request finished");

    slora_sched_submit(s, &huge->r, NULL);
    run_step(s, &st, &bad);
    ok(st.n_items == 1 && st.n_tokens == 64, "huge: its first 64 fit");
    run_step(s, &st, &bad);
    ok(st.n_failed == 1 && strstr(huge->r.err.msg, "more KV pages") != NULL,
       "a request larger than the pool fails alone: %s", huge->r.err.msg);
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 8, "pool all free");
    is_int(bad, 0, "no invariant broken");

    free(ok1);
    free(broken->r.pages);
    free(broken);
    free(huge->r.pages);
    free(huge);
    free(cancel->r.pages);
    free(cancel);

    slora_sched_free(s);
    slora_adapters_free(set);
    slora_pool_free(pool);
}


/*
 * The decode reserve: budget 16, LCFS. The newer b (4 tokens) is admitted
 * first, then the older a (40) takes the 12 left. At the next plan a,
 * older, is visited first, with 28 to prefill, while b decodes: a's chunk
 * is 15, not 16, and the step carries 16 tokens, not 17.
 */
static void
test_reserve(void)
{
    int                  bad, i, over;
    treq_t              *a, *b;
    slora_pool_t        *pool;
    slora_sched_t       *s;
    slora_adapters_t    *set;
    slora_sched_step_t   st;

    s = mksched(64, 16, 2, &slora_sched_lcfs, &pool, &set);

    a = mkreq(1, 40, 3, NULL);
    b = mkreq(2, 4, 6, NULL);
    slora_sched_submit(s, &a->r, NULL);
    slora_sched_submit(s, &b->r, NULL);

    bad = 0;
    run_step(s, &st, &bad);
    ok(st.n_items == 2 && st.n_tokens == 16 && b->gen == 1
       && a->r.n_computed == 12, "lcfs: b's 4 and a's first 12");

    run_step(s, &st, &bad);
    ok(st.n_tokens <= 16, "a prefill chunk beside a decode: %d tokens in "
       "a budget of 16", st.n_tokens);
    ok(st.n_items == 2 && st.n_decode == 1 && st.n_prefill == 15,
       "the chunk leaves the decode its token: 15 + 1");

    over = 0;
    for (i = 0; i < 20 && run_step(s, &st, &bad); i++) {
        over += st.n_tokens > 16;
    }

    is_int(over, 0, "no step over the budget of 16");
    ok(a->done && b->done, "both done");
    is_int(bad, 0, "no invariant broken (every step within its budget)");
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 64, "pool all free");

    free(a);
    free(b);
    slora_sched_free(s);
    slora_adapters_free(set);
    slora_pool_free(pool);
}


/*
 * A pool of 2 pages, both taken by a running request's KV: the next
 * request's adapter (one page) does not fit now, but will when the first
 * ends. It waits; only with nothing running would it fail.
 */
static void
test_adapter_wait(void)
{
    int                   bad, i;
    char                  dir[400];
    treq_t               *a, *b;
    slora_err_t           err;
    slora_pool_t         *pool;
    slora_sched_t        *s;
    slora_adapter_t      *ad;
    slora_adapters_t     *set;
    slora_sched_step_t    st;
    slora_adapter_gen_t   gen = { 2, 4, 1u << SLORA_PROJ_Q, 7, 0.1f };

    s = mksched(2, 64, 4, &slora_sched_fcfs, &pool, &set);

    snprintf(dir, sizeof(dir), "%s/wait", tmp);
    if (slora_adapter_write_random(dir, &cfg, &gen, &err) != SLORA_OK
        || slora_adapters_add(set, "wait", dir, &ad, &err) != SLORA_OK)
    {
        BAIL_OUT("%s", err.msg);
    }

    a = mkreq(1, 10, 3, NULL);
    b = mkreq(2, 4, 2, ad);
    slora_sched_submit(s, &a->r, NULL);
    slora_sched_submit(s, &b->r, NULL);

    bad = 0;
    run_step(s, &st, &bad);
    ok(st.n_items == 1 && st.items[0].req == &a->r && a->r.n_pages == 2,
       "a runs on both pages");
    ok(st.n_failed == 0 && b->r.state == SLORA_REQ_WAITING,
       "b's adapter does not fit beside one running request: b waits, "
       "not failed");

    for (i = 0; i < 10 && run_step(s, &st, &bad); i++) {
        bad += st.n_failed != 0;
    }

    ok(a->done && b->done, "b ran once a ended");
    is_int(bad, 0, "no failure, no invariant broken");

    free(a);
    free(b);
    slora_sched_free(s);
    slora_adapters_free(set);
    slora_pool_free(pool);
}


/* Plans and plays one step; returns 0 when there was nothing to do. */
/*
 * A prompt owing its log-probabilities (score_to) takes a logits row for
 * each of its positions, in chunks cut to the step's score_rows (8
 * here), its last chunk's rows ending with the first token's; a request
 * beside it keeps its one row a step.
 */
static void
test_scores(void)
{
    int                  bad, i, cut, rows_ok;
    int32_t              want[4] = { 8, 8, 8, 6 }, scored[4];
    treq_t              *a, *b;
    slora_pool_t        *pool;
    slora_sched_t       *s;
    slora_adapters_t    *set;
    slora_sched_step_t   st;

    score_rows = 8;
    s = mksched(64, 64, 2, &slora_sched_fcfs, &pool, &set);
    score_rows = 0;

    a = mkreq(1, 30, 2, NULL);
    a->r.score_to = 29;
    b = mkreq(2, 10, 6, NULL);
    slora_sched_submit(s, &a->r, NULL);
    slora_sched_submit(s, &b->r, NULL);

    bad = 0;
    cut = 1;
    rows_ok = 1;

    for (i = 0; i < 4; i++) {
        run_step(s, &st, &bad);
        scored[i] = a->r.n_scored;
        cut &= st.items[0].req == &a->r && st.items[0].pos == 8 * i
               && st.items[0].n_tokens == want[i]
               && st.items[0].n_rows == want[i]
               && st.items[0].logits == (i == 3);
        rows_ok &= st.n_rows == want[i] + 1
                   && st.items[1].req == &b->r && st.items[1].n_rows == 1;
    }

    ok(cut, "a prompt of 30 owing 29 scores: chunks of 8, 8, 8 and 6, a "
       "row a token, the last with the first token's");
    ok(rows_ok, "the request beside it: one row a step, the step's rows "
       "counted");
    ok(scored[0] == 8 && scored[1] == 16 && scored[2] == 24
       && scored[3] == 29, "n_scored: %d, %d, %d, %d", scored[0], scored[1],
       scored[2], scored[3]);

    run_step(s, &st, &bad);
    ok(st.items[0].req == &a->r && st.items[0].n_tokens == 1
       && st.items[0].n_rows == 1, "then it decodes as any other");

    for (i = 0; i < 10 && run_step(s, &st, &bad); i++) {
        /* drain */
    }

    ok(a->done && b->done && bad == 0, "both done, no invariant broken");

    free(a);
    free(b);
    slora_sched_free(s);
    slora_adapters_free(set);
    slora_pool_free(pool);
}


static int
run_step(slora_sched_t *s, slora_sched_step_t *st, int *bad)
{
    int32_t               i, tokens;
    treq_t               *q;
    slora_sched_item_t   *it;

    slora_sched_plan(s, st);

    tokens = 0;
    for (i = 0; i < st->n_items; i++) {
        it = &st->items[i];
        tokens += it->n_tokens;
        *bad += it->req->n_pages * 8 < it->pos + it->n_tokens;
    }
    *bad += tokens != st->n_tokens || tokens > max_tokens;

    slora_sched_advance(s, st);

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
            slora_sched_finish(s, &q->r);
            free(q->r.pages);
            q->r.pages = NULL;
            q->done = 1;
        }
    }

    return st->n_items > 0 || st->n_failed > 0;
}


static slora_sched_t *
mksched(int32_t pages, int32_t budget, int32_t running,
    const slora_sched_policy_t *policy, slora_pool_t **pool,
    slora_adapters_t **set)
{
    slora_err_t         err;
    slora_sched_t      *s;
    slora_sched_conf_t  sc;
    slora_pool_geom_t   g = { 2, 32, 64, 128, 4, 0, 1 };

    *pool = slora_pool_create(&g, (size_t) pages * 2 * 512 * 4, &err);
    if (*pool == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    free(fb.arena);
    fb.n = (int64_t) pages * 2 * 512;
    fb.arena = calloc((size_t) fb.n, sizeof(float));

    *set = slora_adapters_create(&cfg, *pool, &fb.b, 1 << 20, &err);

    memset(&sc, 0, sizeof(sc));
    sc.max_batch_tokens = budget;
    sc.max_running = running;
    sc.score_rows = score_rows;
    max_tokens = budget;
    s = slora_sched_create(&sc, *pool, *set, policy, &err);
    if (s == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    return s;
}


static treq_t *
mkreq(uint64_t id, int32_t n_prompt, int32_t want, slora_adapter_t *a)
{
    int32_t   i;
    treq_t   *q;

    q = calloc(1, sizeof(treq_t) + (size_t) (n_prompt + want)
                                   * sizeof(int32_t));
    q->r.id = id;
    q->r.adapter = a;
    q->r.tokens = (int32_t *) (q + 1);
    q->r.n_prompt = n_prompt;
    q->r.n_tokens = n_prompt;
    q->r.cap = n_prompt + want;
    q->want = want;

    for (i = 0; i < n_prompt; i++) {
        q->r.tokens[i] = i % 50;
    }

    return q;
}
