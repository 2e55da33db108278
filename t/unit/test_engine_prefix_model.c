/*
 * test_engine_prefix_model.c: the engine with its prefix cache on the
 * tiny random model under random traffic, greedy: requests of a few
 * prompt families (page multiples, one token more, all but the last
 * token alike), under two adapters and the base model, three tenants,
 * prompt log-probabilities at times, arrive while others run in a pool
 * small enough to preempt, some cancelled mid-way, and an adapter's
 * files are rewritten (new weights) between bursts. Every request must
 * give exactly the tokens (and scores) it gives alone with the cache off
 * under the weights it ran; a cancelled one a prefix of them. At the end
 * no KV page is held.
 */

#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "tiny_model.h"
#include "slora_engine.h"
#include "slora_pool.h"
#include "slora_adapter.h"


#define NREQ     64
#define MAXGEN   12
#define MAXP     64


typedef struct {
    int32_t     prompt[MAXP];
    int32_t     n_prompt;
    int32_t     max_tokens;
    int         ad;                     /* 0 base, 1 ad1, 2 ad2 */
    int         ver;                    /* ad1's weights: 0 or 1 */
    int         tenant;
    int         scores;                 /* prompt_logprobs */
    int32_t     tokens[MAXGEN];
    int32_t     n;
    float       score[MAXP];
    int32_t     n_score;
    int         done;
    int         cancelled;
    int         error;
} ereq_t;


static char                   tmp[256];
static char                   model[300];
static char                   root[300];
static slora_model_config_t   mcfg;
static ereq_t                 reqs[NREQ];
static const char            *tenants[3] = { NULL, "acme", "umbrella" };
static uint64_t               rng;


static uint32_t
rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;

    return (uint32_t) (rng % n);
}


static void
on_ev(void *data, const slora_event_t *ev)
{
    ereq_t  *set = data;
    ereq_t  *q;

    if (ev->id >= NREQ) {
        return;
    }

    q = &set[ev->id];

    if (ev->type == SLORA_EV_TOKEN && q->n < MAXGEN) {
        q->tokens[q->n++] = ev->token;

    } else if (ev->type == SLORA_EV_SCORE && q->n_score < MAXP) {
        q->score[q->n_score++] = ev->logprob;

    } else if (ev->type == SLORA_EV_DONE) {
        q->done = 1;

    } else if (ev->type == SLORA_EV_ERROR) {
        q->error = 1;
        diag("request %llu: %s", (unsigned long long) ev->id, ev->error);
    }
}


static const char *
ad_name(const ereq_t *q, int ref)
{
    if (q->ad == 0) {
        return NULL;
    }

    if (q->ad == 2) {
        return "ad2";
    }

    /* the cache-off engine has ad1's new weights as ad1b */
    return ref && q->ver ? "ad1b" : "ad1";
}


static int
submit(slora_engine_t *e, ereq_t *q, uint64_t id, int ref)
{
    slora_err_t      err;
    slora_request_t  req;

    memset(&req, 0, sizeof(req));
    req.id = id;
    req.prompt = q->prompt;
    req.n_prompt = q->n_prompt;
    req.adapter = ad_name(q, ref);
    req.tenant = tenants[q->tenant];
    req.prompt_logprobs = q->scores;
    req.prompt_top = 0;
    req.sampling.top_p = 1;
    req.sampling.max_tokens = q->max_tokens;

    if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
        diag("submit %llu: %s", (unsigned long long) id, err.msg);
        return SLORA_ERROR;
    }

    return SLORA_OK;
}


static void
write_ad1(int ver)
{
    /* the file system's clock must see the rewrite */
    usleep(20000);
    tiny_adapter_make(&mcfg, root, "ad1", 8, 0x05, ver ? 77 : 1001, 1.0f);
}


static void
mkprompt(ereq_t *q, const int32_t fam[4][MAXP], int32_t tpp)
{
    int32_t  i, f, n;

    f = (int32_t) rnd(4);

    switch (rnd(5)) {
    case 0:
        n = tpp * (1 + (int32_t) rnd(3));
        break;
    case 1:
        n = tpp * (1 + (int32_t) rnd(3)) + 1;
        break;
    default:
        n = 2 + (int32_t) rnd(40);
    }

    if (n > MAXP) {
        n = MAXP;
    }

    for (i = 0; i < n; i++) {
        q->prompt[i] = fam[f][i];
    }

    if (rnd(4) == 0) {
        q->prompt[n - 1] = (int32_t) rnd((uint32_t) mcfg.vocab);
    }

    q->n_prompt = n;
    q->max_tokens = 1 + (int32_t) rnd(MAXGEN);
    q->ad = (int) rnd(3);
    q->tenant = (int) rnd(3);
    q->scores = rnd(8) == 0;
}


static int
run(uint64_t seed, int32_t tpp, size_t page_bytes)
{
    int                   bad, ver, live;
    int32_t               i, j, n, fam[4][MAXP];
    slora_err_t           err;
    slora_engine_t       *e, *ref;
    slora_engine_conf_t   conf;
    slora_engine_stats_t  st;
    static ereq_t         one[NREQ];

    rng = seed * 0x9e3779b97f4a7c15ULL + 7;
    memset(reqs, 0, sizeof(reqs));
    bad = 0;
    ver = 0;
    write_ad1(0);

    for (i = 0; i < 4; i++) {
        for (j = 0; j < MAXP; j++) {
            fam[i][j] = i < 2 ? (j * 7 + (j >= 2 * tpp ? i * 13 : 0))
                                % mcfg.vocab
                              : (int32_t) rnd((uint32_t) mcfg.vocab);
        }
    }

    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.adapter_dir = root;
    conf.n_threads = 1;
    conf.no_prefetch = rnd(2);
    conf.max_running = 2 + (int32_t) rnd(6);
    conf.max_batch_tokens = 16 + (int32_t) rnd(48);
    conf.pool_bytes = page_bytes * (size_t) (12 + rnd(30));
    conf.draft_lookup = rnd(2);
    conf.lookup_running = 1 + (int32_t) rnd(8);

    e = slora_engine_init(&conf, &err);
    if (e == NULL) {
        diag("%s", err.msg);
        return 1;
    }

    n = 0;
    for (j = 0; j < 4000 && (n < NREQ || slora_engine_step(e, on_ev, reqs)
                                         == SLORA_OK); j++)
    {
        if (n < NREQ && rnd(3) != 0) {
            live = 0;
            for (i = 0; i < n; i++) {
                live += !reqs[i].done && !reqs[i].error
                        && !reqs[i].cancelled && reqs[i].ad == 1;
            }

            /* ad1's files rewritten while nothing uses it */
            if (live == 0 && rnd(6) == 0) {
                if (slora_engine_adapter_unload(e, "ad1", &err)
                    != SLORA_OK)
                {
                    diag("unload: %s", err.msg);
                }
                ver = !ver;
                write_ad1(ver);
            }

            mkprompt(&reqs[n], fam, tpp);
            reqs[n].ver = ver;
            if (submit(e, &reqs[n], (uint64_t) n, 0) != SLORA_OK) {
                bad++;
            }
            n++;
        }

        if (rnd(60) == 0) {
            (void) slora_engine_prefix_flush(e);
        }

        if (n > 0 && rnd(25) == 0) {
            i = (int32_t) rnd((uint32_t) n);
            if (!reqs[i].done && !reqs[i].error && !reqs[i].cancelled) {
                reqs[i].cancelled = 1;
                (void) slora_engine_cancel(e, (uint64_t) i);
            }
        }

        if (n < NREQ) {
            (void) slora_engine_step(e, on_ev, reqs);
        }
    }

    slora_engine_stats(e, &st);
    if (st.pages_kv != 0 || st.running != 0 || st.waiting != 0) {
        diag("seed %llu: at the end %d KV pages, %d running, %d waiting",
             (unsigned long long) seed, st.pages_kv, st.running,
             st.waiting);
        bad++;
    }
    diag("seed %llu: %llu preemptions, %llu hit tokens, %d pages of %d "
         "tokens", (unsigned long long) seed,
         (unsigned long long) st.preemptions,
         (unsigned long long) st.prefix_hit_tokens, st.pages_total, tpp);
    slora_engine_free(e);

    /* each alone, the cache off, the weights it ran */
    conf.no_prefix_cache = 1;
    conf.draft_lookup = 0;
    conf.pool_bytes = 0;
    conf.max_running = 1;

    tiny_adapter_make(&mcfg, root, "ad1b", 8, 0x05, 77, 1.0f);
    write_ad1(0);

    ref = slora_engine_init(&conf, &err);
    if (ref == NULL) {
        diag("%s", err.msg);
        return bad + 1;
    }

    memset(one, 0, sizeof(one));

    for (i = 0; i < n; i++) {
        memcpy(&one[i], &reqs[i], sizeof(ereq_t));
        one[i].n = 0;
        one[i].n_score = 0;
        one[i].done = 0;
        one[i].error = 0;

        if (submit(ref, &one[i], (uint64_t) i, 1) != SLORA_OK) {
            bad++;
            continue;
        }

        while (slora_engine_step(ref, on_ev, one) == SLORA_OK) {
            /* alone */
        }

        if (reqs[i].error) {
            continue;
        }

        if ((reqs[i].cancelled ? reqs[i].n > one[i].n : reqs[i].n
                                                        != one[i].n)
            || memcmp(reqs[i].tokens, one[i].tokens,
                      (size_t) reqs[i].n * sizeof(int32_t)) != 0
            || (!reqs[i].cancelled && reqs[i].n_score != one[i].n_score)
            || memcmp(reqs[i].score, one[i].score,
                      (size_t) reqs[i].n_score * sizeof(float)) != 0)
        {
            if (bad++ < 5) {
                diag("seed %llu: request %d (%d prompt tokens, ad %d ver %d "
                     "tenant %d scores %d%s) gave %d tokens, alone %d, "
                     "first %d vs %d", (unsigned long long) seed, i,
                     reqs[i].n_prompt, reqs[i].ad, reqs[i].ver,
                     reqs[i].tenant, reqs[i].scores,
                     reqs[i].cancelled ? " cancelled" : "", reqs[i].n,
                     one[i].n, reqs[i].n ? reqs[i].tokens[0] : -1,
                     one[i].n ? one[i].tokens[0] : -1);
            }
        }
    }

    slora_engine_free(ref);

    return bad;
}


int
main(int argc, char **argv)
{
    int                 i, runs;
    uint64_t            first;
    char                cmd[300];
    int32_t             tpp;
    size_t              page_bytes;
    slora_err_t         err;
    slora_pool_t       *pool;
    slora_pool_geom_t   g;

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-engine-pmodel-XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    tiny_model_make(tmp, 7, 256, model, sizeof(model), &mcfg);

    snprintf(root, sizeof(root), "%s/adapters", tmp);
    mkdir(root, 0755);
    tiny_adapter_make(&mcfg, root, "ad2", 8, 0x0f, 2002, 1.0f);

    memset(&g, 0, sizeof(g));
    g.n_layers = mcfg.n_layers;
    g.kv_dim = mcfg.n_kv_heads * mcfg.head_dim;
    g.hidden = mcfg.hidden;
    g.ffn = mcfg.ffn;
    g.elem_size = 4;
    pool = slora_pool_create(&g, (size_t) 1 << 26, &err);
    if (pool == NULL) {
        BAIL_OUT("%s", err.msg);
    }
    tpp = slora_pool_tokens_per_page(pool);
    page_bytes = slora_pool_arena_bytes(pool)
                 / (size_t) slora_pool_n_pages(pool);
    slora_pool_free(pool);

    first = argc > 1 ? strtoull(argv[1], NULL, 10) : 1;
    runs = argc > 2 ? atoi(argv[2]) : 8;

    for (i = 0; i < runs; i++) {
        is_int(run(first + (uint64_t) i, tpp, page_bytes), 0,
               "seed %llu: every request's tokens as alone without the "
               "cache", (unsigned long long) (first + (uint64_t) i));
    }

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}
