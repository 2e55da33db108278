/*
 * test_prefix.c: the KV prefix cache over a real pool, then under the
 * scheduler. Checked: a lookup takes the longest run of equal pages and
 * no more than asked, never across adapters, generations or a differing
 * token; an equal page is not entered twice; pages no request holds are
 * CACHED in the pool and only they are reclaimed, leaves first, the
 * least recently let go of first; the pool's reclaimer frees them for
 * any allocation; and in the scheduler, a repeated prompt starts past
 * its cached pages with its last token left to compute, an adapter's
 * requests share only among themselves, and the pool ends as it started.
 * The engine's tokens with it are test_engine_prefix.c's.
 */

#include <stdio.h>
#include <unistd.h>

#include "tap.h"
#include "slora_prefix.h"
#include "slora_sched.h"
#include "tiny_config.h"
#include "fake_backend.h"


#define TPP  8                          /* the geometry's page: 8 tokens */


typedef struct {
    slora_req_t       r;
    int32_t           want;
    int32_t           gen;
    int               done;
    int32_t           preempted;        /* preemptions seen by run_all */
    int32_t           resumed_at;       /* first position computed after
                                           the last, -1: none */
} treq_t;


static slora_model_config_t  cfg;
static fake_backend_t        fb;
static slora_pool_geom_t     geom = { 2, 32, 64, 128, 4, 0, 1 };


static void test_lookup(void);
static void test_reclaim(void);
static void test_flush(void);
static void test_sched(int on);
static void test_preempt(int on);
static void test_burst(int on, int cancel);
static void test_await_budget(void);
static void test_rewritten(void);
static void test_keyed(void);
static void test_hot_parent(void);
static treq_t *mkreq(uint64_t id, const int32_t *prompt, int32_t n_prompt,
    int32_t want, slora_adapter_t *a);
static void run_all(slora_sched_t *s, treq_t **q, int32_t n);
static int drive(slora_sched_t *s, treq_t **q, int32_t n, int cancel,
    int32_t *computed, int32_t *most);


int
main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--tenant") == 0) {
        printf("%016llx\n",
               (unsigned long long) slora_prefix_tenant(argv[2]));
        return 0;
    }

    tiny_config(&cfg, SLORA_ROPE_NEOX);
    fb.b.write_arena = fake_write;

    test_lookup();
    test_reclaim();
    test_flush();
    test_sched(1);
    test_sched(0);
    test_preempt(1);
    test_preempt(0);
    test_burst(1, 0);
    test_burst(0, 0);
    test_burst(1, 1);
    test_await_budget();
    test_rewritten();
    test_keyed();
    test_hot_parent();

    return done_testing();
}


static slora_pool_t *
mkpool(int32_t pages)
{
    slora_err_t    err;
    slora_pool_t  *pool;

    pool = slora_pool_create(&geom, (size_t) pages * 2 * 512 * 4, &err);
    if (pool == NULL || slora_pool_tokens_per_page(pool) != TPP) {
        BAIL_OUT("pool: %s", pool == NULL ? err.msg : "not 8 tokens a page");
    }

    return pool;
}


static void
fill(int32_t *t, int32_t n, int32_t seed)
{
    int32_t  i;

    for (i = 0; i < n; i++) {
        t[i] = (seed * 131 + i * 7) % 1000;
    }
}


/* A request's pages: n_alloc from the pool, the first n_enter of them
 * (tokens t computed) entered in order as owner o's; setup, so a failure
 * bails out. */
static void
computed_pages(slora_pool_t *pool, slora_prefix_t *pc,
    const slora_prefix_owner_t *o, const int32_t *t, int32_t n_alloc,
    int32_t n_enter, int32_t *pages)
{
    int32_t  i;

    if (slora_pool_alloc(pool, SLORA_PAGE_KV, n_alloc, pages) != SLORA_OK) {
        BAIL_OUT("no %d pages for a request", n_alloc);
    }

    for (i = 0; i < n_enter; i++) {
        if (slora_prefix_put(pc, o, t, i, pages) != 1) {
            BAIL_OUT("page %d not entered", i);
        }
    }
}


static void
test_lookup(void)
{
    int                    a, b;
    int32_t                t[32], u[32], p[4], q[4], got[4], n;
    slora_err_t            err;
    slora_pool_t          *pool;
    slora_prefix_t        *pc;
    slora_prefix_owner_t   oa = { &a, 0, 0, { 0, 0 } },
                           ob = { &b, 0, 0, { 0, 0 } },
                           oa1 = { &a, 1, 0, { 0, 0 } },
                           obase = { NULL, 0, 0, { 0, 0 } },
                           ot = { &a, 0, 0, { 0, 0 } },
                           os1 = { &a, 0, 0, { 7, 9 } },
                           os2 = { &a, 0, 0, { 7, 10 } };

    ot.tenant = slora_prefix_tenant("t1");

    pool = mkpool(16);
    pc = slora_prefix_create(pool, &err);
    fill(t, 32, 1);
    memcpy(u, t, sizeof(t));
    u[20] = 999;                        /* page 2 differs */

    ok(slora_pool_alloc(pool, SLORA_PAGE_KV, 3, p) == SLORA_OK, "3 pages");
    is_int(slora_prefix_put(pc, &oa, t, 0, p)
           + slora_prefix_put(pc, &oa, t, 1, p)
           + slora_prefix_put(pc, &oa, t, 2, p), 3,
           "a request enters its 3 computed pages in order");

    n = slora_prefix_take(pc, &oa, t, 0, 4, got);
    ok(n == 3 && got[0] == p[0] && got[1] == p[1] && got[2] == p[2],
       "the same tokens take the 3 pages, in order (%d)", n);
    slora_prefix_drop(pc, n, got);

    is_int(slora_prefix_take(pc, &oa, t, 0, 2, got), 2,
           "no more than asked");
    slora_prefix_drop(pc, 2, got);
    is_int(slora_prefix_take(pc, &oa, t, 0, 0, got), 0, "nor when none is");
    is_int(slora_prefix_take(pc, &oa, u, 0, 4, got), 2,
           "a token differing in page 2 stops the run there");
    slora_prefix_drop(pc, 2, got);
    is_int(slora_prefix_take(pc, &ob, t, 0, 4, got), 0,
           "another adapter's requests take none");
    is_int(slora_prefix_take(pc, &oa1, t, 0, 4, got), 0,
           "nor the same adapter's next generation of weights");
    is_int(slora_prefix_take(pc, &obase, t, 0, 4, got), 0,
           "nor the base model");
    is_int(slora_prefix_take(pc, &ot, t, 0, 4, got), 0,
           "nor a tenant's requests those of no tenant");
    is_int(slora_prefix_take(pc, &os1, t, 0, 4, got), 0,
           "nor a salted request an unsalted one's");

    /* a salt's pages serve that salt alone */
    ok(slora_pool_alloc(pool, SLORA_PAGE_KV, 1, q) == SLORA_OK, "1 page");
    is_int(slora_prefix_put(pc, &os1, t, 0, q), 1,
           "a salted request enters its page beside the unsalted one's");
    n = slora_prefix_take(pc, &os1, t, 0, 4, got);
    ok(n == 1 && got[0] == q[0], "the same salt takes it (%d)", n);
    slora_prefix_drop(pc, n, got);
    is_int(slora_prefix_take(pc, &os2, t, 0, 4, got), 0,
           "a salt differing in its second half takes none");
    n = slora_prefix_take(pc, &oa, t, 0, 4, got);
    ok(n == 3 && got[0] == p[0], "the unsalted still take their own (%d)",
       n);
    slora_prefix_drop(pc, n, got);
    slora_prefix_drop(pc, 1, q);
    ok(slora_prefix_same_owner(&os1, &os1)
       && !slora_prefix_same_owner(&os1, &os2)
       && !slora_prefix_same_owner(&oa, &os1)
       && !slora_prefix_same_owner(&oa, &ot)
       && !slora_prefix_same_owner(&oa, &oa1)
       && !slora_prefix_same_owner(&oa, &ob),
       "owners are the same only when every part is");
    ok(slora_prefix_tenant("t1") != slora_prefix_tenant("t2")
       && slora_prefix_tenant("t1") == ot.tenant
       && slora_prefix_tenant(NULL) == 0 && slora_prefix_tenant("") == 0,
       "a tenant's part is its name's hash, 0 for none");

    /* a second request computed the same first page on its own */
    ok(slora_pool_alloc(pool, SLORA_PAGE_KV, 1, q) == SLORA_OK, "1 page");
    is_int(slora_prefix_put(pc, &oa, t, 0, q), 0,
           "an equal page is not entered twice");
    slora_pool_release(pool, 1, q);

    /* a page under another parent is another key */
    fill(u, 32, 2);
    memcpy(u + 8, t + 8, 8 * sizeof(int32_t));
    ok(slora_pool_alloc(pool, SLORA_PAGE_KV, 2, q) == SLORA_OK, "2 pages");
    is_int(slora_prefix_put(pc, &oa, u, 0, q)
           + slora_prefix_put(pc, &oa, u, 1, q), 2,
           "page 1's tokens after another page 0 are a page of their own");
    n = slora_prefix_take(pc, &oa, u, 0, 4, got);
    ok(n == 2 && got[1] == q[1], "and are found after it (%d)", n);
    slora_prefix_drop(pc, n, got);

    is_int(slora_pool_count(pool, SLORA_PAGE_KV), 5,
           "the entries its makers hold are KV pages");
    slora_prefix_drop(pc, 3, p);
    slora_prefix_drop(pc, 2, q);
    ok(slora_pool_count(pool, SLORA_PAGE_KV) == 0
       && slora_pool_count(pool, SLORA_PAGE_CACHED) == 6,
       "let go of, they are CACHED (the salted page too): %d",
       slora_pool_count(pool, SLORA_PAGE_CACHED));

    slora_prefix_free(pc);
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), slora_pool_n_pages(pool),
           "freeing the cache returns its idle pages");
    slora_pool_free(pool);
}


static void
test_reclaim(void)
{
    int                    a;
    int32_t                t[24], u[24], p[3], q[3], got[3], all[32], n;
    slora_err_t            err;
    slora_pool_t          *pool;
    slora_prefix_t        *pc;
    slora_prefix_stats_t   st;
    slora_prefix_owner_t   oa = { &a, 0, 0, { 0, 0 } };

    pool = mkpool(8);
    pc = slora_prefix_create(pool, &err);
    fill(t, 24, 3);
    memcpy(u, t, sizeof(t));
    u[12] = 998;                        /* shares page 0 only */

    /* request 1: pages p0 p1 p2; request 2: p0 (taken) then q1 */
    computed_pages(pool, pc, &oa, t, 3, 3, p);

    is_int(slora_prefix_take(pc, &oa, u, 0, 2, q), 1, "u shares page 0");
    slora_pool_alloc(pool, SLORA_PAGE_KV, 1, q + 1);
    is_int(slora_prefix_put(pc, &oa, u, 1, q), 1, "and enters its own 1");

    is_int(slora_prefix_reclaim(pc, 8), 0, "held entries are not reclaimed");

    slora_prefix_drop(pc, 3, p);        /* request 1 ends first */
    slora_prefix_drop(pc, 2, q);

    /* leaves p2 (older) and q1; p0 has two children, p1 one */
    is_int(slora_prefix_reclaim(pc, 1), 1, "one reclaimed");
    ok(slora_pool_page_kind(pool, p[2]) == SLORA_PAGE_FREE
       && slora_pool_page_kind(pool, q[1]) == SLORA_PAGE_CACHED,
       "the leaf let go of first goes first");
    is_int(slora_prefix_reclaim(pc, 1), 1, "one more");
    ok(slora_pool_page_kind(pool, p[1]) == SLORA_PAGE_FREE
       && slora_pool_page_kind(pool, p[0]) == SLORA_PAGE_CACHED,
       "then its parent, a leaf now; page 0 stays for its other child");
    n = slora_prefix_take(pc, &oa, u, 0, 3, got);
    ok(n == 2 && got[0] == p[0] && got[1] == q[1],
       "the other chain is whole (%d)", n);
    slora_prefix_drop(pc, n, got);

    /* the pool's reclaimer serves any allocation */
    n = slora_pool_count(pool, SLORA_PAGE_FREE);
    ok(slora_pool_alloc(pool, SLORA_PAGE_ADAPTER, n + 1, all) == SLORA_BUSY,
       "an allocation past the free pages fails by itself");
    is_int(slora_pool_reclaim(pool, n + 2), n + 2,
           "slora_pool_reclaim frees the cached pages asked for");
    ok(slora_pool_alloc(pool, SLORA_PAGE_ADAPTER, n + 2, all) == SLORA_OK,
       "and the allocation fits");

    slora_prefix_stats(pc, &st);
    ok(st.pages == 0 && st.idle == 0 && st.evictions == 4
       && st.entered == 4,
       "stats: %d pages, %d idle, %llu evicted, %llu entered", st.pages,
       st.idle, (unsigned long long) st.evictions,
       (unsigned long long) st.entered);
    is_int(slora_prefix_reclaim(pc, 1), 0, "nothing left to reclaim");

    slora_pool_release(pool, n + 2, all);
    slora_prefix_free(pc);
    slora_pool_free(pool);
}


/*
 * A flush: the idle entries go at once, held ones when let go of, and
 * none is found again, nor can a holder of flushed pages enter more; the
 * cache works as before for what comes after.
 */
static void
test_flush(void)
{
    int                    a;
    int32_t                t[32], u[32], p[4], q[3], got[4], n;
    slora_err_t            err;
    slora_pool_t          *pool;
    slora_prefix_t        *pc;
    slora_prefix_stats_t   st;
    slora_prefix_owner_t   oa = { &a, 0, 0, { 0, 0 } };

    pool = mkpool(16);
    pc = slora_prefix_create(pool, &err);
    fill(t, 32, 4);
    fill(u, 32, 5);

    /* u's 3 pages idle; t's first 2 held by a request that computes on */
    computed_pages(pool, pc, &oa, u, 3, 3, q);
    slora_prefix_drop(pc, 3, q);
    computed_pages(pool, pc, &oa, t, 4, 2, p);

    n = slora_pool_count(pool, SLORA_PAGE_FREE);
    is_int(slora_prefix_flush(pc), 3, "a flush releases the 3 idle pages");
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), n + 3,
           "... to the pool");
    ok(slora_prefix_take(pc, &oa, u, 0, 3, got) == 0
       && slora_prefix_take(pc, &oa, t, 0, 2, got) == 0
       && slora_prefix_peek(pc, &oa, t, 2) == 0,
       "nothing flushed is found, held or not");
    is_int(slora_prefix_put(pc, &oa, t, 2, p), 0,
           "a holder of flushed pages enters no more after them");

    slora_prefix_stats(pc, &st);
    ok(st.pages == 2 && st.idle == 0, "the held 2 stay until let go of "
       "(%d pages, %d idle)", st.pages, st.idle);
    slora_prefix_drop(pc, 2, p);
    slora_pool_release(pool, 2, p + 2);
    slora_prefix_stats(pc, &st);
    ok(st.pages == 0 && st.idle == 0
       && slora_pool_count(pool, SLORA_PAGE_CACHED) == 0
       && slora_pool_count(pool, SLORA_PAGE_FREE) == slora_pool_n_pages(pool),
       "let go of, they go to the pool at once");

    /* a flushed chain held in part: its idle tail goes now, its held
     * head when let go of, deepest first */
    computed_pages(pool, pc, &oa, u, 3, 3, q);
    slora_prefix_drop(pc, 3, q);
    is_int(slora_prefix_take(pc, &oa, u, 0, 2, got), 2, "after a flush the "
           "cache keeps and finds pages again");
    is_int(slora_prefix_flush(pc), 1, "a flush under a holder of 2 of 3 "
           "releases the third");
    slora_prefix_drop(pc, 2, got);
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), slora_pool_n_pages(pool),
           "and the 2 when let go of");

    slora_prefix_free(pc);
    slora_pool_free(pool);
}


/*
 * Under the scheduler (on: with the cache): a prompt of 30 tokens runs,
 * then again, then under an adapter twice, then 24 of its tokens; a long
 * prompt then needs the pool's every page.
 */
static void
test_sched(int on)
{
    int32_t               t[60], pages, free0;
    slora_err_t           err;
    slora_pool_t         *pool;
    slora_sched_t        *s;
    slora_adapter_t      *ad;
    slora_adapters_t     *set;
    slora_sched_conf_t    sc;
    slora_prefix_stats_t  ps;
    treq_t               *q[6];

    pages = 12;
    pool = mkpool(pages);
    free(fb.arena);
    fb.n = (int64_t) pages * 2 * 512;
    fb.arena = calloc((size_t) fb.n, sizeof(float));
    set = slora_adapters_create(&cfg, pool, &fb.b, 1 << 20, &err);
    if (set == NULL
        || slora_adapters_add(set, "x", "random:rank=8,targets=q+v,seed=1",
                              &ad, &err)
           != SLORA_OK)
    {
        BAIL_OUT("adapters: %s", err.msg);
    }

    memset(&sc, 0, sizeof(sc));
    sc.max_batch_tokens = 64;
    sc.max_running = 4;
    sc.prefix_cache = on;
    s = slora_sched_create(&sc, pool, set, NULL, &err);
    if (s == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    free0 = slora_pool_count(pool, SLORA_PAGE_FREE);
    fill(t, 60, 5);

    q[0] = mkreq(1, t, 30, 4, NULL);
    run_all(s, q, 1);
    q[1] = mkreq(2, t, 30, 4, NULL);
    run_all(s, q + 1, 1);
    q[2] = mkreq(3, t, 30, 4, ad);
    run_all(s, q + 2, 1);
    q[3] = mkreq(4, t, 30, 4, ad);
    run_all(s, q + 3, 1);
    q[4] = mkreq(5, t, 24, 4, NULL);
    run_all(s, q + 4, 1);

    if (on) {
        ok(q[0]->r.n_cached == 0 && q[1]->r.n_cached == 24,
           "a repeat starts past its 3 cached pages, its last 6 tokens "
           "computed: %d then %d", q[0]->r.n_cached, q[1]->r.n_cached);
        ok(q[2]->r.n_cached == 0 && q[3]->r.n_cached == 24,
           "under an adapter: none of the base's, then its own: %d, %d",
           q[2]->r.n_cached, q[3]->r.n_cached);
        is_int(q[4]->r.n_cached, 16, "24 tokens take 2 pages: the third "
               "holds the last token, computed for its logits");

    } else {
        ok(q[1]->r.n_cached == 0 && q[3]->r.n_cached == 0
           && q[4]->r.n_cached == 0, "without the cache, nothing cached");
    }

    /* 60 tokens and 28 to generate: 11 pages of the 12, with an adapter
     * of 1 resident: the cache's idle pages must go */
    q[5] = mkreq(6, t + 1, 59, 28, NULL);
    run_all(s, q + 5, 1);
    ok(q[5]->done, "a prompt that needs the cache's pages runs");

    slora_sched_prefix_stats(s, &ps);
    if (on) {
        ok(ps.evictions > 0 && ps.pages == ps.idle,
           "its pages were reclaimed (%llu); what is kept is idle (%d)",
           (unsigned long long) ps.evictions, ps.pages);
    } else {
        ok(ps.pages == 0 && ps.lookups == 0, "no cache, no figures");
    }

    is_int(slora_pool_count(pool, SLORA_PAGE_KV), 0, "no request holds a "
           "page at the end");
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE)
           + slora_pool_count(pool, SLORA_PAGE_CACHED)
           + slora_pool_count(pool, SLORA_PAGE_ADAPTER), free0,
           "free, cached and adapter pages are the pool");

    slora_sched_free(s);
    slora_adapters_free(set);
    slora_pool_free(pool);

    for (pages = 0; pages < 6; pages++) {
        free(q[pages]);
    }
}


/*
 * Two requests of 30 prompt tokens and 50 to generate need 10 pages each
 * of a pool of 16: the newer is preempted. With the cache, the pages it
 * had computed are kept while the other needs only some of them, and it
 * resumes past what is left of them; either way both end with the
 * tokens they would have alone.
 */
static void
test_preempt(int on)
{
    int32_t              t[2][30], i, bad;
    slora_err_t          err;
    slora_pool_t        *pool;
    slora_sched_t       *s;
    slora_adapters_t    *set;
    slora_sched_conf_t   sc;
    treq_t              *q[2];

    pool = mkpool(16);
    set = slora_adapters_create(&cfg, pool, &fb.b, 1 << 20, &err);

    memset(&sc, 0, sizeof(sc));
    sc.max_batch_tokens = 64;
    sc.max_running = 4;
    sc.prefix_cache = on;
    s = slora_sched_create(&sc, pool, set, NULL, &err);
    if (set == NULL || s == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    fill(t[0], 30, 8);
    fill(t[1], 30, 9);
    q[0] = mkreq(1, t[0], 30, 50, NULL);
    q[1] = mkreq(2, t[1], 30, 50, NULL);
    run_all(s, q, 2);

    bad = 0;
    for (i = 0; i < 2; i++) {
        bad += !q[i]->done || q[i]->gen != 50
               || memcmp(q[i]->r.tokens, t[i], sizeof(t[i])) != 0;
    }
    is_int(bad, 0, "cache %s: both requests ran to their end",
           on ? "on" : "off");

    ok(q[1]->preempted > 0 && q[0]->preempted == 0,
       "cache %s: the newer was preempted (%d)", on ? "on" : "off",
       q[1]->preempted);

    if (on) {
        ok(q[1]->resumed_at > 0 && q[1]->resumed_at % TPP == 0,
           "it resumed past the pages it had computed: at %d",
           q[1]->resumed_at);
    } else {
        is_int(q[1]->resumed_at, 0, "it computed everything again");
    }

    is_int(slora_pool_count(pool, SLORA_PAGE_KV), 0, "no page held at the "
           "end");

    slora_sched_free(s);
    slora_adapters_free(set);
    slora_pool_free(pool);
    free(q[0]);
    free(q[1]);
}


/*
 * A burst of 4 requests of the same 40 prompt tokens (5 pages), admitted
 * together: with the cache, the first computes them and the others
 * await its pages, then take 4 and compute their last 8 (64 prompt
 * tokens computed in all, not 160), and end with their tokens. With
 * cancel, in steps of 16 tokens, the first is cancelled after its first
 * step, its 2 pages cached: the second takes them and computes the other
 * 24, the last two await it and compute 8 each (56).
 */
static void
test_burst(int on, int cancel)
{
    int                   bad;
    int32_t               t[40], i, computed, want;
    slora_err_t           err;
    slora_pool_t         *pool;
    slora_sched_t        *s;
    slora_adapters_t     *set;
    slora_sched_conf_t    sc;
    treq_t               *q[4];

    pool = mkpool(64);
    set = slora_adapters_create(&cfg, pool, &fb.b, 1 << 20, &err);

    memset(&sc, 0, sizeof(sc));
    sc.max_batch_tokens = cancel ? 16 : 64;
    sc.max_running = 8;
    sc.prefix_cache = on;
    s = slora_sched_create(&sc, pool, set, NULL, &err);
    if (set == NULL || s == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    fill(t, 40, 6);
    for (i = 0; i < 4; i++) {
        q[i] = mkreq((uint64_t) i + 1, t, 40, 3, NULL);
    }

    computed = 0;
    bad = drive(s, q, 4, cancel, &computed, NULL);

    for (i = cancel; i < 4; i++) {
        bad += !q[i]->done || q[i]->r.n_tokens != 43
               || memcmp(q[i]->r.tokens, t, sizeof(t)) != 0;
    }

    want = !on ? 160 : cancel ? 16 + 24 + 2 * 8 : 40 + 3 * 8;
    ok(bad == 0 && computed == want,
       "cache %s%s: every request ends with its tokens; %d prompt tokens "
       "computed, want %d", on ? "on" : "off",
       cancel ? ", the first cancelled" : "", computed, want);

    if (on && !cancel) {
        ok(q[0]->r.n_cached == 0 && q[1]->r.n_cached == 32
           && q[2]->r.n_cached == 32 && q[3]->r.n_cached == 32,
           "the first computed them, the others took 32 each");
    }

    is_int(slora_pool_count(pool, SLORA_PAGE_KV), 0, "no page held at the "
           "end");

    slora_sched_free(s);
    slora_adapters_free(set);
    slora_pool_free(pool);

    for (i = 0; i < 4; i++) {
        free(q[i]->r.pages);
        free(q[i]);
    }
}


/*
 * A request that waited for another's page and, taking it, is left its
 * last prompt token alone was not counted among the tokens the plan
 * reserves for such rows: it must not spend a reserved one, or a
 * prefill after it takes the whole budget and the step outgrows
 * max_batch_tokens (the engine's token buffer).
 */
static void
test_await_budget(void)
{
    int                  bad;
    int32_t              a[12], p[150], i, most;
    slora_err_t          err;
    slora_pool_t        *pool;
    slora_sched_t       *s;
    slora_adapters_t    *set;
    slora_sched_conf_t   sc;
    treq_t              *q[3];

    pool = mkpool(64);
    set = slora_adapters_create(&cfg, pool, &fb.b, 1 << 20, &err);

    memset(&sc, 0, sizeof(sc));
    sc.max_batch_tokens = 32;
    sc.max_running = 8;
    sc.prefix_cache = 1;
    s = slora_sched_create(&sc, pool, set, NULL, &err);
    if (set == NULL || s == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    fill(a, 12, 7);
    fill(p, 150, 8);
    q[0] = mkreq(1, a, 12, 8, NULL);    /* computes page 0 of a */
    q[1] = mkreq(2, a, TPP + 1, 8, NULL);   /* that page and one token:
                                               waits for q[0]'s */
    q[2] = mkreq(3, p, 150, 4, NULL);   /* a long prefill after it */

    most = 0;
    bad = drive(s, q, 3, 0, NULL, &most);

    ok(bad == 0 && most <= 32 && q[0]->done && q[1]->done && q[2]->done,
       "a request left its last token by an awaited page: steps of at "
       "most %d tokens (max_batch_tokens 32), all three done", most);
    is_int(q[1]->r.n_cached, TPP, "it took the awaited page");

    slora_sched_free(s);
    slora_adapters_free(set);
    slora_pool_free(pool);

    for (i = 0; i < 3; i++) {
        free(q[i]->r.pages);
        free(q[i]);
    }
}


/*
 * An adapter with no copy left (here unloaded) is read again from its
 * folder: files rewritten in place meanwhile make a new source, and the
 * pages its old weights computed are no longer its prefix; files as
 * they were keep them.
 */
static void
test_rewritten(void)
{
    char                 tmp[] = "/tmp/slora-prefix-XXXXXX", dir[64],
                         cmd[96];
    int32_t              t[30], pages;
    uint64_t             gen0;
    slora_err_t          err;
    slora_pool_t        *pool;
    slora_sched_t       *s;
    slora_adapter_t     *ad;
    slora_adapters_t    *set;
    slora_sched_conf_t   sc;
    slora_adapter_gen_t  g = { 8, 16, 0x7f, 1, 0.5f };
    treq_t              *q[4];

    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    snprintf(dir, sizeof(dir), "%s/u0", tmp);

    pages = 40;
    pool = mkpool(pages);
    free(fb.arena);
    fb.n = (int64_t) pages * 2 * 512;
    fb.arena = calloc((size_t) fb.n, sizeof(float));
    set = slora_adapters_create(&cfg, pool, &fb.b, 1 << 20, &err);
    if (set == NULL
        || slora_adapter_write_random(dir, &cfg, &g, &err) != SLORA_OK
        || slora_adapters_add(set, "u0", dir, &ad, &err) != SLORA_OK)
    {
        BAIL_OUT("adapters: %s", err.msg);
    }

    memset(&sc, 0, sizeof(sc));
    sc.max_batch_tokens = 64;
    sc.max_running = 4;
    sc.prefix_cache = 1;
    s = slora_sched_create(&sc, pool, set, NULL, &err);
    if (s == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    fill(t, 30, 9);

    q[0] = mkreq(1, t, 30, 4, ad);
    run_all(s, q, 1);
    gen0 = slora_adapter_gen(ad);

    ok(slora_adapters_unload(set, ad, &err) == SLORA_OK,
       "unloaded: %s", err.msg);
    q[1] = mkreq(2, t, 30, 4, ad);
    run_all(s, q + 1, 1);
    ok(q[1]->r.n_cached == 24 && slora_adapter_gen(ad) == gen0,
       "read again from unchanged files: its 3 cached pages taken (%d)",
       q[1]->r.n_cached);

    /* a training job writes new weights over the files (past the file
     * system's clock tick) */
    ok(slora_adapters_unload(set, ad, &err) == SLORA_OK, "unloaded again");
    usleep(20000);
    g.seed = 99;
    if (slora_adapter_write_random(dir, &cfg, &g, &err) != SLORA_OK) {
        BAIL_OUT("%s", err.msg);
    }

    q[2] = mkreq(3, t, 30, 4, ad);
    run_all(s, q + 2, 1);
    ok(q[2]->r.n_cached == 0 && slora_adapter_gen(ad) == gen0 + 1,
       "read again from rewritten files: a new generation, none of the "
       "old weights' pages taken (%d)", q[2]->r.n_cached);

    q[3] = mkreq(4, t, 30, 4, ad);
    run_all(s, q + 3, 1);
    is_int(q[3]->r.n_cached, 24, "the new weights' pages serve the next");

    slora_sched_free(s);
    slora_adapters_free(set);
    slora_pool_free(pool);

    for (pages = 0; pages < 4; pages++) {
        free(q[pages]->r.pages);
        free(q[pages]);
    }

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }
}


/* A tenant's hash is keyed by the process: this test run again (as
 * `test_prefix --tenant acme`, which prints it) gives the same name
 * another. */
static void
test_keyed(void)
{
    char       line[64], self[4096], cmd[4200];
    FILE      *f;
    ssize_t    n;
    uint64_t   mine;
    long long  theirs;

    mine = slora_prefix_tenant("acme");

    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        BAIL_OUT("no path of this test");
    }
    self[n] = '\0';
    snprintf(cmd, sizeof(cmd), "'%s' --tenant acme", self);

    f = popen(cmd, "r");
    if (f == NULL || fgets(line, sizeof(line), f) == NULL) {
        BAIL_OUT("no hash from a second process");
    }
    pclose(f);
    theirs = (long long) strtoull(line, NULL, 16);

    ok(mine == slora_prefix_tenant("acme") && mine != 0,
       "a tenant's hash is the same within a process");
    ok((uint64_t) theirs != mine, "another process hashes it otherwise "
       "(%016llx, %016llx)", (unsigned long long) mine,
       (unsigned long long) theirs);
}


/*
 * A parent left a leaf by a reclaim goes where its own last letting go
 * puts it: a system prompt's pages that requests keep taking without the
 * child they once had outlive an older, unrelated leaf.
 */
static void
test_hot_parent(void)
{
    int                    a;
    int32_t                tx[32], ty[8], px[4], py[1], got[3], i, n;
    slora_err_t            err;
    slora_pool_t          *pool;
    slora_prefix_t        *pc;
    slora_prefix_owner_t   oa = { &a, 0, 0, { 0, 0 } };

    pool = mkpool(16);
    pc = slora_prefix_create(pool, &err);
    fill(tx, 32, 11);
    fill(ty, 8, 12);

    /* X: a system prompt S of 3 pages and a page C after it */
    computed_pages(pool, pc, &oa, tx, 4, 4, px);
    slora_prefix_drop(pc, 4, px);

    /* Y: an unrelated page L, let go of after X */
    computed_pages(pool, pc, &oa, ty, 1, 1, py);
    slora_prefix_drop(pc, 1, py);

    /* five requests take S alone */
    for (i = 0; i < 5; i++) {
        n = slora_prefix_take(pc, &oa, tx, 0, 3, got);
        if (n != 3) {
            BAIL_OUT("S not taken whole (%d)", n);
        }
        slora_prefix_drop(pc, n, got);
    }

    is_int(slora_prefix_reclaim(pc, 1), 1, "one reclaimed");
    ok(slora_pool_page_kind(pool, px[3]) == SLORA_PAGE_FREE,
       "C, the oldest leaf, first");
    is_int(slora_prefix_reclaim(pc, 1), 1, "one more");
    ok(slora_pool_page_kind(pool, py[0]) == SLORA_PAGE_FREE
       && slora_pool_page_kind(pool, px[2]) == SLORA_PAGE_CACHED,
       "then L, let go of before S's last use, not S's last page");

    slora_prefix_free(pc);
    slora_pool_free(pool);
}


static treq_t *
mkreq(uint64_t id, const int32_t *prompt, int32_t n_prompt, int32_t want,
    slora_adapter_t *a)
{
    treq_t  *q;

    q = calloc(1, sizeof(treq_t) + (size_t) (n_prompt + want)
                                   * sizeof(int32_t));
    q->r.id = id;
    q->r.adapter = a;
    q->r.tokens = (int32_t *) (q + 1);
    q->r.n_prompt = n_prompt;
    q->r.n_tokens = n_prompt;
    q->r.cap = n_prompt + want;
    q->want = want;
    q->resumed_at = -1;
    memcpy(q->r.tokens, prompt, (size_t) n_prompt * sizeof(int32_t));

    return q;
}


/* Plays the engine for q[0, n) until all are done: every chunk's first
 * position must be what the request has computed, within its pages. */
static void
run_all(slora_sched_t *s, treq_t **q, int32_t n)
{
    is_int(drive(s, q, n, 0, NULL, NULL), 0, "requests %llu..: every chunk "
           "where its request stands", (unsigned long long) q[0]->r.id);
}


/*
 * run_all's driver: submits q[0, n) and plays the steps until nothing
 * is left; with cancel, q[0] is cancelled after the first step; the
 * prompt tokens computed are added up in *computed, the most tokens of
 * a step kept in *most (each if not NULL). Returns the broken
 * invariants.
 */
static int
drive(slora_sched_t *s, treq_t **q, int32_t n, int cancel,
    int32_t *computed, int32_t *most)
{
    int                  bad;
    int32_t              i, steps;
    slora_err_t          err;
    treq_t              *t;
    slora_req_t         *reaped[1];
    slora_sched_step_t   st;
    slora_sched_item_t  *it;

    for (i = 0; i < n; i++) {
        if (slora_sched_submit(s, &q[i]->r, &err) != SLORA_OK) {
            BAIL_OUT("%s", err.msg);
        }
    }

    bad = 0;

    for (steps = 0; steps < 1000; steps++) {
        if (cancel && steps == 1) {
            q[0]->r.cancelled = 1;
            bad += slora_sched_reap(s, reaped, 1) != 1;
            free(q[0]->r.pages);
            q[0]->r.pages = NULL;
        }

        slora_sched_plan(s, &st);
        if (st.n_items == 0) {
            bad += st.n_failed;
            break;
        }

        if (most != NULL && st.n_tokens > *most) {
            *most = st.n_tokens;
        }

        for (i = 0; i < st.n_items; i++) {
            it = &st.items[i];
            bad += it->pos != it->req->n_computed
                   || it->req->n_pages * TPP < it->pos + it->n_tokens;

            t = (treq_t *) it->req;
            if (t->r.n_preempted > t->preempted) {
                t->preempted = t->r.n_preempted;
                t->resumed_at = it->pos;
            }

            if (computed != NULL && it->pos < it->req->n_prompt) {
                *computed += it->n_tokens;
            }
        }

        slora_sched_advance(s, &st);

        for (i = 0; i < st.n_items; i++) {
            it = &st.items[i];
            if (!it->logits) {
                continue;
            }

            t = (treq_t *) it->req;
            t->r.tokens[t->r.n_tokens++] = 1000 + t->gen++;

            if (t->gen == t->want) {
                slora_sched_finish(s, &t->r);
                free(t->r.pages);
                t->r.pages = NULL;
                t->done = 1;
            }
        }
    }

    return bad;
}
