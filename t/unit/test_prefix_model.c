/*
 * test_prefix_model.c: the prefix cache under long random runs, checked
 * against models. First the cache alone: requests take runs of entries,
 * compute and enter pages after them and let go, with reclaims and
 * flushes between; every take must find the run a plain model of the
 * entries finds, every put enter what it enters, every reclaim release
 * the idle leaves it says (least recently let go of first, a flushed
 * entry once nothing holds it), and the pool's kinds follow. Then the
 * scheduler over it, the driver playing the engine: every position a
 * step computes is written, into the page the request's table names, as
 * a hash of the request's adapter, the version of its weights and its
 * tokens up to there, with the tenant that wrote it; before a step
 * computes from a position, the request's pages must hold exactly its
 * own such values for every position before it, and no request reads a
 * page another tenant wrote. Between steps requests come (prompt
 * families: a page multiple long, one token more, all but the last
 * token alike, a prompt again as n > 1 choices, log-probabilities owed),
 * decodes carry drafts, requests are cancelled, adapters get new
 * versions, are unloaded or uploaded ahead of need, the cache is
 * flushed; after every operation the books hold: each page counted
 * once, owned by one request at most, entries read-only, adapters pinned
 * by their running requests alone.
 * When all end, only the cache's and the adapters' pages are not free.
 */

#include <stdio.h>
#include <unistd.h>

#include "tap.h"
#include "slora_prefix.h"
#include "slora_sched.h"
#include "tiny_config.h"
#include "fake_backend.h"


#define TPP       8
#define N_AD      3
#define N_REQ     40
#define MAX_TOK   80


typedef struct {
    slora_req_t       r;
    int32_t           want;
    int32_t           gen;
    int               live;
    int               ad;               /* -1: base */
    int               tenant;
    int               pinned;           /* as the model saw it */
    uint64_t          ver;              /* weights it runs, while pinned */
    int32_t           preempted;        /* r.n_preempted when last seen */
    uint8_t           rows[MAX_TOK];    /* positions whose logits came */
    int32_t           tok[MAX_TOK];
} mreq_t;


typedef struct {
    uint64_t          val;
    int               tenant;
    int               set;
    uint64_t          writer;           /* request id */
    uint64_t          wver;
    uint64_t          wgen;
    int               wad;
} slot_t;


static slora_model_config_t  cfg;
static fake_backend_t        fb;
static slora_pool_geom_t     geom = { 2, 32, 64, 128, 4, 0, 1 };
static const char           *tenants[3] = { NULL, "acme", "umbrella" };
static uint64_t              rng;
static slot_t               *kv;        /* [pages][TPP] */
static uint64_t              ver[N_AD]; /* the model's weights versions */
static slora_adapter_t      *ads[N_AD];
static char                  dirs[N_AD][64];
static int32_t               fams[4][MAX_TOK];
static int                   bad;
static uint64_t              n_awaits, n_hits, n_preempt, n_steps;


static uint32_t
rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;

    return (uint32_t) (rng % n);
}


static uint64_t
mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h += 0x9e3779b97f4a7c15ULL;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;

    return h ^ (h >> 31);
}


/* What position pos of q's K/V is: its weights and tokens [0, pos]. */
static uint64_t
expect(const mreq_t *q, int32_t pos)
{
    int32_t   i;
    uint64_t  h;

    h = mix((uint64_t) (q->ad + 1), q->ad >= 0 ? q->ver : 0);

    for (i = 0; i <= pos; i++) {
        h = mix(h, (uint32_t) q->r.tokens[i]);
    }

    return h;
}


/* The token the model picks after position pos. */
static int32_t
next_token(const mreq_t *q, int32_t pos)
{
    return 100 + (int32_t) (expect(q, pos) % 7);
}


#define BAD(...)                                                              \
    do { if (bad++ < 10) { diag(__VA_ARGS__); } } while (0)


static void
check_books(slora_pool_t *pool, slora_sched_t *s, mreq_t *q, int32_t n,
    int step)
{
    int32_t               i, k, p, np, counts[SLORA_PAGE_KIND_N], refs,
                         *own, *held, ad_pages;
    slora_prefix_stats_t  st;

    np = slora_pool_n_pages(pool);
    own = calloc((size_t) np, sizeof(int32_t));
    held = calloc((size_t) np, sizeof(int32_t));
    memset(counts, 0, sizeof(counts));

    for (p = 0; p < np; p++) {
        counts[slora_pool_page_kind(pool, p)]++;
    }

    for (k = 0; k < SLORA_PAGE_KIND_N; k++) {
        if (counts[k] != slora_pool_count(pool, k)) {
            BAD("step %d: kind %d counted %d, the pool says %d", step, k,
                counts[k], slora_pool_count(pool, k));
        }
    }

    for (i = 0; i < n; i++) {
        if (!q[i].live || q[i].r.pages == NULL) {
            continue;
        }

        if (q[i].r.n_shared > q[i].r.n_pages
            || q[i].r.n_pages > q[i].r.max_pages)
        {
            BAD("step %d: req %d shared %d of %d pages", step, i,
                q[i].r.n_shared, q[i].r.n_pages);
        }

        for (k = 0; k < q[i].r.n_pages; k++) {
            p = q[i].r.pages[k];

            if (slora_pool_page_kind(pool, p) != SLORA_PAGE_KV) {
                BAD("step %d: req %d page %d (%d) is kind %d", step, i, k,
                    p, slora_pool_page_kind(pool, p));
            }

            if (k < q[i].r.n_shared) {
                held[p]++;
            } else {
                if (own[p]++ > 0) {
                    BAD("step %d: page %d owned twice", step, p);
                }
            }
        }
    }

    for (p = 0; p < np; p++) {
        if (own[p] && held[p]) {
            BAD("step %d: page %d both own and an entry", step, p);
        }
    }

    slora_sched_prefix_stats(s, &st);
    if (st.idle != slora_pool_count(pool, SLORA_PAGE_CACHED)) {
        BAD("step %d: %d idle entries, %d CACHED pages", step, st.idle,
            slora_pool_count(pool, SLORA_PAGE_CACHED));
    }

    ad_pages = 0;
    for (k = 0; k < N_AD; k++) {
        refs = 0;
        for (i = 0; i < n; i++) {
            refs += q[i].live && q[i].r.pinned && q[i].r.adapter == ads[k];
        }

        if (refs != slora_adapter_refs(ads[k])) {
            BAD("step %d: adapter %d has %d refs, %d requests pin it", step,
                k, slora_adapter_refs(ads[k]), refs);
        }

        if (slora_adapter_tier(ads[k]) == SLORA_TIER_POOL) {
            ad_pages += slora_adapter_n_pages(ads[k]);
        }
    }

    if (ad_pages != slora_pool_count(pool, SLORA_PAGE_ADAPTER)) {
        BAD("step %d: adapters hold %d pages, the pool counts %d", step,
            ad_pages, slora_pool_count(pool, SLORA_PAGE_ADAPTER));
    }

    free(own);
    free(held);
}


/* A request, or with like one more of like's prompt (n > 1). */
static void
new_req(slora_sched_t *s, mreq_t *q, uint64_t id, const mreq_t *like)
{
    int32_t      n, f, i, kind;
    slora_err_t  err;

    memset(q, 0, sizeof(*q));

    f = (int32_t) rnd(4);
    kind = (int) rnd(6);

    switch (kind) {
    case 0:
        n = TPP * (1 + (int32_t) rnd(5));          /* a page multiple */
        break;
    case 1:
        n = TPP * (1 + (int32_t) rnd(5)) + 1;      /* one more */
        break;
    default:
        n = 1 + (int32_t) rnd(48);
    }

    for (i = 0; i < n; i++) {
        q->tok[i] = fams[f][i];
    }

    if (rnd(4) == 0) {
        q->tok[n - 1] = 900 + (int32_t) rnd(20);  /* all but the last */
    }

    if (rnd(10) == 0 && n > 3) {
        q->tok[n / 2] = 950 + (int32_t) rnd(3);
    }

    q->want = 1 + (int32_t) rnd(12);
    q->ad = (int) rnd(N_AD + 1) - 1;
    q->tenant = (int) rnd(3);
    q->r.id = id;
    q->r.adapter = q->ad >= 0 ? ads[q->ad] : NULL;
    q->r.tokens = q->tok;
    q->r.n_prompt = n;
    q->r.n_tokens = n;
    q->r.cap = n + q->want;
    q->r.tenant = tenants[q->tenant];
    q->r.score_to = rnd(6) == 0 ? n - 1 : 0;
    q->live = 1;

    if (like != NULL) {
        memcpy(q->tok, like->tok, sizeof(q->tok));
        q->r.n_prompt = like->r.n_prompt;
        q->r.n_tokens = like->r.n_prompt;
        q->r.cap = like->r.n_prompt + q->want;
        q->r.score_to = like->r.score_to;
        q->ad = like->ad;
        q->r.adapter = like->r.adapter;
        q->tenant = like->tenant;
        q->r.tenant = like->r.tenant;
    }

    if (slora_sched_submit(s, &q->r, &err) != SLORA_OK) {
        BAIL_OUT("%s", err.msg);
    }
}


static void
end_req(mreq_t *q, int finished)
{
    int32_t  i;

    for (i = 0; finished && i < q->r.score_to; i++) {
        if (!q->rows[i]) {
            BAD("req %llu ended without position %d's logits",
                (unsigned long long) q->r.id, i);
            break;
        }
    }

    free(q->r.pages);
    q->r.pages = NULL;
    q->live = 0;
}


/* One random run; returns its broken invariants. */
static int
run(uint64_t seed, int32_t pages, const slora_sched_policy_t *policy,
    int32_t ops)
{
    int32_t               i, j, k, pos, p, op, n_live;
    uint64_t              id;
    int64_t               now;
    slora_err_t           err;
    slora_pool_t         *pool;
    slora_sched_t        *s;
    slora_adapters_t     *set;
    slora_sched_conf_t    sc;
    slora_sched_step_t    st;
    slora_sched_item_t   *it;
    slora_req_t          *reaped[N_REQ];
    mreq_t               *q, *m;
    slot_t               *sl;
    slora_prefix_stats_t  ps;
    int32_t               base, taken, d[8];
    char                  v[32], name[16];

    rng = seed * 2654435761ULL + 1;
    bad = 0;

    pool = slora_pool_create(&geom, (size_t) pages * 2 * 512 * 4, &err);
    if (pool == NULL || slora_pool_tokens_per_page(pool) != TPP) {
        BAIL_OUT("pool");
    }

    free(fb.arena);
    fb.n = (int64_t) pages * 2 * 512;
    fb.arena = calloc((size_t) fb.n, sizeof(float));
    set = slora_adapters_create(&cfg, pool, &fb.b, 1 << 20, &err);
    if (set == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    for (k = 0; k < N_AD; k++) {
        snprintf(name, sizeof(name), "u%d", k);
        if (slora_adapters_add(set, name, dirs[k], &ads[k], &err)
            != SLORA_OK)
        {
            BAIL_OUT("%s", err.msg);
        }
        ver[k] = 0;
    }

    memset(&sc, 0, sizeof(sc));
    sc.max_batch_tokens = rnd(4) == 0 ? 1 + (int32_t) rnd(8)
                                      : 8 + (int32_t) rnd(40);
    sc.max_running = 1 + (int32_t) rnd(12);
    if (sc.max_running > sc.max_batch_tokens) {
        sc.max_running = sc.max_batch_tokens;
    }
    sc.prefix_cache = 1;
    sc.slo_ttft_ms = 1000;
    sc.score_rows = rnd(2) ? 0 : 1 + (int32_t) rnd(10);
    s = slora_sched_create(&sc, pool, set, policy, &err);
    if (s == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    kv = calloc((size_t) pages * TPP, sizeof(slot_t));
    q = calloc(N_REQ, sizeof(mreq_t));
    id = 1;
    now = 1000000000000LL;

    for (op = 0; op < ops + 3000; op++) {
        j = (int32_t) rnd(100);
        n_live = 0;
        for (i = 0; i < N_REQ; i++) {
            n_live += q[i].live;
        }

        if (op >= ops) {
            /* then no more come: every one must end */
            if (n_live == 0) {
                break;
            }
            j = 99;
        }

        if (j < 25 || (n_live == 0 && op < ops - 1)) {
            /* new requests, a burst of equal ones at times */
            k = rnd(4) == 0 ? 1 + (int32_t) rnd(3) : 1;
            for (i = 0; i < N_REQ && k > 0; i++) {
                if (q[i].live) {
                    continue;
                }
                new_req(s, &q[i], id++, k > 1 && i > 0 && q[i - 1].live
                                        && rnd(2) ? &q[i - 1] : NULL);
                k--;
            }

        } else if (j < 30) {
            /* a cancellation, mid-prefill or not */
            i = (int32_t) rnd(N_REQ);
            if (q[i].live) {
                q[i].r.cancelled = 1;
                k = slora_sched_reap(s, reaped, N_REQ);
                if (k != 1 || reaped[0] != &q[i].r) {
                    BAD("op %d: reaped %d", op, k);
                }
                free(q[i].r.pages);
                q[i].r.pages = NULL;
                q[i].live = 0;
            }

        } else if (j < 33) {
            /* a new version of an adapter's weights */
            k = (int32_t) rnd(N_AD);
            ver[k]++;
            snprintf(v, sizeof(v), "v%llu", (unsigned long long) ver[k]);
            if (slora_adapters_set_source(set, ads[k], dirs[k], NULL, v,
                                          &err) != 1)
            {
                BAD("op %d: set_source", op);
            }

        } else if (j < 35) {
            k = (int32_t) rnd(N_AD);
            (void) slora_adapters_unload(set, ads[k], &err);

        } else if (j < 36) {
            (void) slora_sched_prefix_flush(s);

        } else if (j < 38) {
            /* an adapter in host memory uploaded ahead of need, over
             * the cache's idle pages */
            k = (int32_t) rnd(N_AD);
            (void) slora_adapters_warm(set, ads[k], (int32_t) rnd(8), &err);

        } else {
            /* a step, some decodes with a draft after their last token
             * (speculative decoding) */
            for (i = 0; i < N_REQ; i++) {
                m = &q[i];
                if (!m->live || m->r.state != SLORA_REQ_RUNNING
                    || m->r.awaits || m->r.n_draft > 0
                    || m->r.n_tokens - m->r.n_computed != 1
                    || m->r.n_tokens <= m->r.n_prompt || rnd(3) != 0)
                {
                    continue;
                }

                k = m->r.cap - m->r.n_tokens - 1;
                k = k < 4 ? k : 4;
                k = k > 0 ? 1 + (int32_t) rnd((uint32_t) k) : 0;

                for (j = 0; j < k; j++) {
                    pos = m->r.n_tokens;
                    m->r.tokens[pos] = rnd(2) ? next_token(m, pos - 1)
                                              : 100 + (int32_t) rnd(7);
                    m->r.n_tokens++;
                }
                m->r.n_draft = k;
            }

            now += 5000000;
            slora_sched_plan_at(s, &st, now);

            for (i = 0; i < st.n_failed; i++) {
                m = (mreq_t *) st.failed[i];
                if (m->r.err.code != SLORA_ABORTED
                    && strstr(m->r.err.msg, "than the pool has") == NULL)
                {
                    BAD("op %d: req %llu failed: %s", op,
                        (unsigned long long) m->r.id, m->r.err.msg);
                }
                m->pinned = 0;
                end_req(m, 0);
            }

            /* the weights each request runs: those current when pinned */
            for (i = 0; i < N_REQ; i++) {
                m = &q[i];
                if (!m->live) {
                    continue;
                }
                if (m->r.pinned
                    && (!m->pinned || m->r.n_preempted != m->preempted))
                {
                    /* pinned anew (preempted and admitted again in one
                     * plan, at times) */
                    m->ver = ver[m->ad];
                }
                m->pinned = m->r.pinned;
                m->preempted = m->r.n_preempted;
                if (m->ad < 0 && m->r.state == SLORA_REQ_RUNNING) {
                    m->ver = 0;
                }
            }

            for (i = 0; i < st.n_items; i++) {
                it = &st.items[i];
                m = (mreq_t *) it->req;

                if (it->pos != m->r.n_computed
                    || m->r.n_pages * TPP < it->pos + it->n_tokens
                    || it->pos + it->n_tokens > m->r.n_tokens)
                {
                    BAD("op %d: req %llu item %d+%d, computed %d, pages %d",
                        op, (unsigned long long) m->r.id, it->pos,
                        it->n_tokens, m->r.n_computed, m->r.n_pages);
                    continue;
                }

                for (pos = 0; pos < it->pos; pos++) {
                    p = m->r.pages[pos / TPP];
                    sl = &kv[p * TPP + pos % TPP];

                    if (!sl->set || sl->val != expect(m, pos)) {
                        diag("written by %llu ad %d ver %llu gen %llu; "
                             "reader gen %llu shared %d computed %d "
                             "adapter gen %llu",
                             (unsigned long long) sl->writer, sl->wad,
                             (unsigned long long) sl->wver,
                             (unsigned long long) sl->wgen,
                             (unsigned long long) m->r.owner.gen,
                             m->r.n_shared, m->r.n_computed,
                             m->ad >= 0 ? (unsigned long long)
                                 slora_adapter_gen(ads[m->ad]) : 0ULL);
                        BAD("op %d: req %llu (ad %d ver %llu tenant %d) "
                            "reads wrong K/V at %d (page %d)", op,
                            (unsigned long long) m->r.id, m->ad,
                            (unsigned long long) m->ver, m->tenant, pos, p);
                        break;
                    }

                    if (sl->tenant != m->tenant) {
                        BAD("op %d: req %llu of tenant %d reads tenant %d's "
                            "page %d", op, (unsigned long long) m->r.id,
                            m->tenant, sl->tenant, p);
                        break;
                    }
                }

                for (pos = it->pos; pos < it->pos + it->n_tokens; pos++) {
                    if (pos / TPP < m->r.n_shared) {
                        BAD("op %d: req %llu writes its entry %d", op,
                            (unsigned long long) m->r.id, pos / TPP);
                        break;
                    }
                    p = m->r.pages[pos / TPP];
                    kv[p * TPP + pos % TPP].val = expect(m, pos);
                    kv[p * TPP + pos % TPP].tenant = m->tenant;
                    kv[p * TPP + pos % TPP].set = 1;
                    kv[p * TPP + pos % TPP].writer = m->r.id;
                    kv[p * TPP + pos % TPP].wver = m->ver;
                    kv[p * TPP + pos % TPP].wgen = m->r.owner.gen;
                    kv[p * TPP + pos % TPP].wad = m->ad;
                }

                for (pos = it->pos + it->n_tokens - it->n_rows;
                     pos < it->pos + it->n_tokens; pos++)
                {
                    m->rows[pos] = 1;
                }
            }

            n_steps++;
            for (i = 0; i < N_REQ; i++) {
                n_awaits += q[i].live && q[i].r.awaits;
            }

            slora_sched_advance(s, &st);

            for (i = 0; i < st.n_items; i++) {
                it = &st.items[i];
                if (!it->logits) {
                    continue;
                }

                m = (mreq_t *) it->req;

                if (it->draft > 0) {
                    /* the picks after each of the draft's tokens: those
                     * equal to the draft's next are taken */
                    base = m->r.n_tokens - it->draft;
                    for (taken = 0;
                         taken < it->draft
                         && m->r.tokens[base + taken]
                            == next_token(m, base + taken - 1);
                         taken++)
                    {
                        /* void */
                    }

                    memcpy(d, m->r.tokens + base,
                           (size_t) it->draft * sizeof(int32_t));
                    slora_sched_settle(s, &m->r, taken);

                    for (j = 0; j < taken && m->gen + 1 < m->want; j++) {
                        m->r.tokens[m->r.n_tokens++] = d[j];
                        m->gen++;
                    }

                    if (j < taken) {
                        /* the output ended inside the draft */
                        m->r.tokens[m->r.n_tokens++] = d[j];
                        m->gen++;
                        slora_sched_finish(s, &m->r);
                        m->pinned = 0;
                        end_req(m, 1);
                        continue;
                    }
                }

                pos = m->r.n_tokens;
                m->r.tokens[pos] = next_token(m, pos - 1);
                m->r.n_tokens++;
                m->gen++;

                if (m->gen == m->want) {
                    slora_sched_finish(s, &m->r);
                    m->pinned = 0;
                    end_req(m, 1);
                }
            }
        }

        for (i = 0; i < N_REQ; i++) {
            if (q[i].live && !q[i].r.pinned) {
                q[i].pinned = 0;
            }
        }

        check_books(pool, s, q, N_REQ, op);

        if (bad > 10) {
            break;
        }
    }

    /* all end */
    for (i = 0; i < N_REQ; i++) {
        if (q[i].live) {
            BAD("req %llu never ended: %s, %d of %d computed, %d pages, "
                "awaits %d", (unsigned long long) q[i].r.id,
                q[i].r.state == SLORA_REQ_RUNNING ? "running" : "waiting",
                q[i].r.n_computed, q[i].r.n_tokens, q[i].r.n_pages,
                q[i].r.awaits);
            slora_sched_finish(s, &q[i].r);
            free(q[i].r.pages);
            q[i].r.pages = NULL;
            q[i].live = 0;
        }
    }

    check_books(pool, s, q, N_REQ, ops);

    if (slora_pool_count(pool, SLORA_PAGE_KV) != 0) {
        BAD("%d KV pages left with no request",
            slora_pool_count(pool, SLORA_PAGE_KV));
    }

    (void) slora_sched_prefix_flush(s);
    slora_adapters_evict(set, pages);

    if (slora_pool_count(pool, SLORA_PAGE_FREE) != pages) {
        BAD("%d of %d pages free at the end",
            slora_pool_count(pool, SLORA_PAGE_FREE), pages);
    }

    slora_sched_prefix_stats(s, &ps);
    n_hits += ps.hit_tokens;
    n_preempt += slora_sched_preemptions(s);

    slora_sched_free(s);
    slora_adapters_free(set);
    slora_pool_free(pool);
    free(kv);
    free(q);

    return bad;
}


/*
 * The cache alone against a model of its documented behaviour: requests
 * (holders) take runs of entries, compute and enter pages after them,
 * let go; reclaims and flushes come between. Every take must find the
 * run the model finds, every put enter what the model enters, and every
 * reclaim release the idle leaves the model says, least recently let go
 * of first (a flushed entry as soon as nothing holds it or a child); the
 * pool's kinds and the stats follow the model's after every operation.
 */

#define C_HOLD   8
#define C_PAGES  6

typedef struct {
    int               used;
    int               owner;
    int32_t           parent;
    int32_t           tok[TPP];
    int32_t           refs;
    int32_t           children;
    uint64_t          last;
    uint32_t          epoch;
} ment_t;

typedef struct {
    int               live;
    int               owner;
    int32_t           tok[C_PAGES * TPP];
    int32_t           pages[C_PAGES];
    int32_t           n_held;
    int32_t           n_own;
} mhold_t;

static ment_t       *ment;
static uint64_t      mclock;
static uint32_t      mepoch;
static int           owners_a[2];
static int32_t       c_np;


static void
c_owner(int k, slora_prefix_owner_t *o)
{
    o->adapter = k & 1 ? &owners_a[1] : NULL;
    o->gen = (uint64_t) (k >> 1 & 1);
    o->tenant = k >> 2 ? 0x1234 : 0;
}


static int32_t
m_find(int owner, int32_t parent, const int32_t *tok)
{
    int32_t  p;

    for (p = 0; p < c_np; p++) {
        if (ment[p].used && ment[p].epoch == mepoch
            && ment[p].owner == owner && ment[p].parent == parent
            && memcmp(ment[p].tok, tok, TPP * sizeof(int32_t)) == 0)
        {
            return p;
        }
    }

    return -1;
}


/* Out of the model, with flushed parents left idle leaves; counted. */
static int32_t
m_forget(int32_t p)
{
    int32_t  n, par;

    for (n = 1; ; n++) {
        par = ment[p].parent;
        ment[p].used = 0;

        if (par < 0) {
            return n;
        }

        ment[par].children--;

        if (ment[par].epoch == mepoch || ment[par].refs > 0
            || ment[par].children > 0)
        {
            return n;
        }

        p = par;
    }
}


static int32_t
m_reclaim(int32_t n)
{
    int32_t   p, best, done;

    done = 0;

    while (done < n) {
        best = -1;
        for (p = 0; p < c_np; p++) {
            if (ment[p].used && ment[p].refs == 0 && ment[p].children == 0
                && (best < 0 || ment[p].last < ment[best].last))
            {
                best = p;
            }
        }

        if (best < 0) {
            break;
        }

        done += m_forget(best);
    }

    return done;
}


static void
m_drop(int32_t n, const int32_t *pages)
{
    int32_t  i;
    ment_t  *e;

    for (i = n - 1; i >= 0; i--) {
        e = &ment[pages[i]];

        if (--e->refs > 0) {
            continue;
        }

        e->last = ++mclock;

        if (e->children == 0 && e->epoch != mepoch) {
            (void) m_forget(pages[i]);
        }
    }
}


static void
c_check(slora_pool_t *pool, slora_prefix_t *pc, mhold_t *h, int op)
{
    int32_t               p, i, k, idle, pages;
    slora_page_kind_e     want;
    slora_prefix_stats_t  st;
    static uint8_t        own[256];

    memset(own, 0, sizeof(own));
    for (i = 0; i < C_HOLD; i++) {
        for (k = 0; h[i].live && k < h[i].n_own; k++) {
            own[h[i].pages[h[i].n_held + k]] = 1;
        }
    }

    idle = 0;
    pages = 0;

    for (p = 0; p < c_np; p++) {
        if (ment[p].used) {
            pages++;
            idle += ment[p].refs == 0;
            want = ment[p].refs > 0 ? SLORA_PAGE_KV : SLORA_PAGE_CACHED;

        } else {
            want = own[p] ? SLORA_PAGE_KV : SLORA_PAGE_FREE;
        }

        if (slora_pool_page_kind(pool, p) != want) {
            BAD("op %d: page %d is kind %d, the model's %d", op, p,
                slora_pool_page_kind(pool, p), want);
        }
    }

    slora_prefix_stats(pc, &st);
    if (st.pages != pages || st.idle != idle) {
        BAD("op %d: %d entries, %d idle; the model's %d, %d", op, st.pages,
            st.idle, pages, idle);
    }
}


static int
cache_run(uint64_t seed, int32_t np, int32_t ops)
{
    int                   op, j;
    int32_t               i, k, n, max, got, want, p, f,
                          fam[3][C_PAGES * TPP];
    slora_err_t           err;
    slora_pool_t         *pool;
    slora_prefix_t       *pc;
    slora_prefix_owner_t  o;
    ment_t               *e;
    mhold_t               h[C_HOLD], *m;

    rng = seed * 0x2545f4914f6cdd1dULL + 3;
    bad = 0;
    c_np = np;
    mclock = 0;
    mepoch = 0;

    pool = slora_pool_create(&geom, (size_t) np * 2 * 512 * 4, &err);
    pc = pool != NULL ? slora_prefix_create(pool, &err) : NULL;
    if (pc == NULL || slora_pool_n_pages(pool) != np) {
        BAIL_OUT("cache: %s", err.msg);
    }

    ment = calloc((size_t) np, sizeof(ment_t));
    memset(h, 0, sizeof(h));

    for (f = 0; f < 3; f++) {
        for (i = 0; i < C_PAGES * TPP; i++) {
            fam[f][i] = (int32_t) rnd(3) == 0 ? (int32_t) rnd(4) : i % 5;
        }
    }

    for (op = 0; op < ops && bad <= 10; op++) {
        j = (int) rnd(100);
        m = &h[rnd(C_HOLD)];

        if (j < 30 && !m->live) {
            /* a request comes: takes what is cached */
            f = (int32_t) rnd(3);
            memcpy(m->tok, fam[f], sizeof(m->tok));
            if (rnd(3) == 0) {
                m->tok[rnd(C_PAGES * TPP)] = (int32_t) rnd(5);
            }
            m->owner = (int) rnd(8);
            m->live = 1;
            m->n_held = 0;
            m->n_own = 0;

            max = 1 + (int32_t) rnd(C_PAGES);
            c_owner(m->owner, &o);
            got = slora_prefix_take(pc, &o, m->tok, 0, max, m->pages);

            for (want = 0; want < max; want++) {
                p = m_find(m->owner, want > 0 ? m->pages[want - 1] : -1,
                           m->tok + want * TPP);
                if (p < 0 || (want < got && m->pages[want] != p)) {
                    break;
                }
            }

            if (got != want) {
                BAD("op %d: took %d pages, the model %d", op, got, want);
            }

            for (i = 0; i < got; i++) {
                ment[m->pages[i]].refs++;
            }
            m->n_held = got;

        } else if (j < 65 && m->live && m->n_held + m->n_own < C_PAGES) {
            /* it computes its next page and enters it, unless it had to
             * keep one of its own before */
            k = m->n_held + m->n_own;

            if (slora_pool_count(pool, SLORA_PAGE_FREE) == 0) {
                /* as the scheduler's growth: the pool reclaims */
                (void) m_reclaim(1);
                (void) slora_pool_reclaim(pool, 1);
            }

            if (slora_pool_alloc(pool, SLORA_PAGE_KV, 1, m->pages + k)
                != SLORA_OK)
            {
                goto check;
            }

            if (m->n_own > 0) {
                m->n_own++;
                goto check;
            }

            c_owner(m->owner, &o);
            p = k > 0 ? m->pages[k - 1] : -1;
            want = !(p >= 0 && ment[p].epoch != mepoch)
                   && m_find(m->owner, p, m->tok + k * TPP) < 0;
            got = slora_prefix_put(pc, &o, m->tok, k, m->pages);

            if (got != want) {
                BAD("op %d: put gave %d, the model %d", op, got, want);
            }

            if (got) {
                e = &ment[m->pages[k]];
                e->used = 1;
                e->owner = m->owner;
                e->parent = p;
                memcpy(e->tok, m->tok + k * TPP, sizeof(e->tok));
                e->refs = 1;
                e->children = 0;
                e->epoch = mepoch;
                if (p >= 0) {
                    ment[p].children++;
                }
                m->n_held++;

            } else {
                m->n_own++;
            }

        } else if (j < 85 && m->live) {
            /* it ends */
            slora_prefix_drop(pc, m->n_held, m->pages);
            m_drop(m->n_held, m->pages);
            slora_pool_release(pool, m->n_own, m->pages + m->n_held);
            m->live = 0;

        } else if (j < 97) {
            n = 1 + (int32_t) rnd(4);
            want = m_reclaim(n);
            got = slora_prefix_reclaim(pc, n);
            if (got != want) {
                BAD("op %d: reclaimed %d, the model %d", op, got, want);
            }

        } else {
            mepoch++;
            want = m_reclaim(np);
            got = slora_prefix_flush(pc);
            if (got != want) {
                BAD("op %d: a flush released %d, the model %d", op, got,
                    want);
            }
        }

    check:

        c_check(pool, pc, h, op);
    }

    for (i = 0; i < C_HOLD; i++) {
        if (h[i].live) {
            slora_prefix_drop(pc, h[i].n_held, h[i].pages);
            slora_pool_release(pool, h[i].n_own, h[i].pages + h[i].n_held);
        }
    }

    slora_prefix_free(pc);
    if (slora_pool_count(pool, SLORA_PAGE_FREE) != np) {
        BAD("the cache freed left %d of %d pages free",
            slora_pool_count(pool, SLORA_PAGE_FREE), np);
    }

    slora_pool_free(pool);
    free(ment);

    return bad;
}


int
main(int argc, char **argv)
{
    char                         tmp[] = "/tmp/slora-pmodel-XXXXXX", cmd[96];
    int32_t                      f, i, runs, ops;
    uint64_t                     seed, first;
    slora_err_t                  err;
    slora_adapter_gen_t          g = { 2, 4, 0x7f, 1, 0.5f };
    const slora_sched_policy_t  *pol[4] = { &slora_sched_fcfs,
                                            &slora_sched_lcfs,
                                            &slora_sched_slo,
                                            &slora_sched_fair };

    tiny_config(&cfg, SLORA_ROPE_NEOX);
    fb.b.write_arena = fake_write;

    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    for (i = 0; i < N_AD; i++) {
        snprintf(dirs[i], sizeof(dirs[i]), "%s/u%d", tmp, i);
        g.seed = 1 + i;
        if (slora_adapter_write_random(dirs[i], &cfg, &g, &err) != SLORA_OK) {
            BAIL_OUT("%s", err.msg);
        }
    }

    for (f = 0; f < 4; f++) {
        for (i = 0; i < MAX_TOK; i++) {
            fams[f][i] = f < 2 ? (i * 7) % 50 + (i >= 16 ? f * 100 : 0)
                               : (f * 31 + i * 11) % 60;
        }
    }

    first = argc > 1 ? strtoull(argv[1], NULL, 10) : 1;
    runs = argc > 2 ? atoi(argv[2]) : 200;
    ops = argc > 3 ? atoi(argv[3]) : 400;

    for (seed = first; seed < first + (uint64_t) runs; seed++) {
        f = cache_run(seed, 6 + (int32_t) (seed % 50), ops);
        ok(f == 0, "cache alone, seed %llu: %d broken",
           (unsigned long long) seed, f);
    }

    for (seed = first; seed < first + (uint64_t) runs; seed++) {
        rng = seed;
        f = run(seed, seed % 5 == 0 ? 150 + (int32_t) (seed % 150)
                                    : 24 + (int32_t) (seed % 40),
                pol[seed % 4], ops);
        ok(f == 0, "seed %llu: %d broken", (unsigned long long) seed, f);
    }

    diag("%llu steps, %llu awaiting, %llu tokens from the cache, "
         "%llu preemptions", (unsigned long long) n_steps,
         (unsigned long long) n_awaits, (unsigned long long) n_hits,
         (unsigned long long) n_preempt);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}
