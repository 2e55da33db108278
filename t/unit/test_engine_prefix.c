/*
 * test_engine_prefix.c: the prefix cache in the engine, on the tiny
 * random model (greedy): every request gives the tokens it gives with the
 * cache off; a repeat, a chat's next turn, an adapter's requests and a
 * batch of repeats report as cached exactly the full pages of their
 * prompts that earlier requests of the same owner computed, short of
 * the last token; the stats agree with the events and every kept page is
 * idle at the end. The cache alone and under the scheduler is
 * test_prefix.c's.
 */

#include <sys/stat.h>

#include "tap.h"
#include "tiny_model.h"
#include "slora_engine.h"
#include "slora_pool.h"
#include "slora_adapter.h"


#define MAXGEN   32


typedef struct {
    int32_t     tokens[8][MAXGEN];
    int32_t     n[8];
    int32_t     cached[8];
    int         done[8];
} px_sink_t;


static char                   tmp[256];
static char                   model[300];
static slora_model_config_t   mcfg;


static void test_prefix(void);
static void prefix_run(slora_engine_t *e, const int32_t *prompt,
    px_sink_t *ps);
static void on_prefix(void *data, const slora_event_t *ev);


int
main(void)
{
    char  cmd[300];

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-engine-prefix-XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    tiny_model_make(tmp, 7, 256, model, sizeof(model), &mcfg);

    test_prefix();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}




static void
on_prefix(void *data, const slora_event_t *ev)
{
    px_sink_t  *ps = data;

    if (ev->id >= 8) {
        return;
    }

    if (ev->type == SLORA_EV_TOKEN && ps->n[ev->id] < MAXGEN) {
        ps->tokens[ev->id][ps->n[ev->id]++] = ev->token;
        ps->cached[ev->id] = ev->cached_tokens;

    } else if (ev->type == SLORA_EV_DONE) {
        ps->done[ev->id] = 1;
    }
}


/*
 * The requests of test_prefix, each on its own (ids 0-4) or together
 * (ids 5-7 repeat 0), into ps: 0 a prompt of 40 tokens, 1 the same
 * again, 2 it with 12 tokens more (a chat's next turn), 3 and 4 the
 * first under adapter ad1.
 */
static void
prefix_run(slora_engine_t *e, const int32_t *prompt, px_sink_t *ps)
{
    int              i;
    slora_err_t      err;
    slora_request_t  req;

    memset(ps, 0, sizeof(*ps));

    for (i = 0; i < 8; i++) {
        memset(&req, 0, sizeof(req));
        req.id = (uint64_t) i;
        req.prompt = prompt;
        req.n_prompt = i == 2 ? 52 : 40;
        req.adapter = i == 3 || i == 4 ? "ad1" : NULL;
        req.sampling.top_p = 1;
        req.sampling.max_tokens = 12;

        if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
            diag("submit %d: %s", i, err.msg);
        }

        if (i < 5) {
            while (slora_engine_step(e, on_prefix, ps) == SLORA_OK) {
                /* alone */
            }
        }
    }

    while (slora_engine_step(e, on_prefix, ps) == SLORA_OK) {
        /* 5-7 together */
    }
}


/*
 * The prefix cache on the tiny model, greedy: every request gives the
 * tokens it gives with the cache off, and reports as cached the full
 * pages of its prompt that an earlier request of the same adapter
 * computed, short of its last token.
 */
static void
test_prefix(void)
{
    int                   i, bad;
    int32_t               prompt[52], tpp, k;
    uint32_t              x;
    uint64_t              sum;
    slora_err_t           err;
    slora_pool_t         *pool;
    slora_engine_t       *e;
    slora_pool_geom_t     g;
    slora_engine_conf_t   conf;
    slora_engine_stats_t  st;
    char                  root[300];
    static px_sink_t      off, on;

    /* the engine's pages hold as many tokens as a pool of its shape */
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
    slora_pool_free(pool);

    x = 4242;
    for (i = 0; i < 52; i++) {
        x = x * 1664525 + 1013904223;
        prompt[i] = (int32_t) ((x >> 8) % (uint32_t) mcfg.vocab);
    }

    snprintf(root, sizeof(root), "%s/adapters", tmp);
    mkdir(root, 0755);
    tiny_adapter_make(&mcfg, root, "ad1", 16, 0x05, 1001, 1.0f);

    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.adapter_dir = root;
    conf.n_threads = 1;
    conf.no_prefix_cache = 1;

    e = tiny_engine_up(&conf, "prefix: engine up without the cache");
    if (e == NULL) {
        return;
    }
    prefix_run(e, prompt, &off);
    slora_engine_stats(e, &st);
    slora_engine_free(e);

    bad = 0;
    for (i = 0; i < 8; i++) {
        bad += off.n[i] != 12 || off.cached[i] != 0;
    }
    is_int(bad, 0, "prefix off: 12 tokens each, none cached");
    ok(st.prefix_lookups == 0 && st.prefix_hit_tokens == 0
       && st.prefix_pages == 0 && st.pages_cached == 0,
       "prefix off: no lookups, hits or pages");

    conf.no_prefix_cache = 0;
    e = tiny_engine_up(&conf, "prefix: engine up with the cache");
    if (e == NULL) {
        return;
    }
    prefix_run(e, prompt, &on);
    slora_engine_stats(e, &st);
    slora_engine_free(e);

    bad = 0;
    for (i = 0; i < 8; i++) {
        bad += on.n[i] != 12
               || memcmp(on.tokens[i], off.tokens[i], 12 * sizeof(int32_t));
    }
    is_int(bad, 0, "prefix on: every request's tokens as with it off "
           "(pages of %d tokens)", tpp);

    /* the last prompt token is computed for its logits */
    k = (40 - 1) / tpp * tpp;
    ok(on.cached[0] == 0 && on.cached[1] == k,
       "a prompt's repeat takes its full pages but the last token's: "
       "%d then %d, want 0 then %d", on.cached[0], on.cached[1], k);

    /* request 0 computed its 40 prompt and 11 generated tokens; the next
     * turn shares the pages within the 40 */
    ok(on.cached[2] == 40 / tpp * tpp,
       "the next turn takes the pages of the prompt it extends: %d, "
       "want %d", on.cached[2], 40 / tpp * tpp);
    ok(on.cached[3] == 0 && on.cached[4] == k,
       "under an adapter the base model's pages are not taken, its own "
       "are: %d then %d", on.cached[3], on.cached[4]);
    ok(on.cached[5] == k && on.cached[6] == k && on.cached[7] == k,
       "three repeats admitted together all take the pages: %d %d %d",
       on.cached[5], on.cached[6], on.cached[7]);

    sum = 0;
    for (i = 0; i < 8; i++) {
        sum += (uint64_t) on.cached[i];
    }
    ok(st.prefix_lookups == 8 && st.prefix_hit_tokens == sum,
       "stats: %llu lookups (want 8), %llu hit tokens (the reported %llu)",
       (unsigned long long) st.prefix_lookups,
       (unsigned long long) st.prefix_hit_tokens,
       (unsigned long long) sum);
    ok(st.prefix_pages > 0 && st.pages_cached == st.prefix_pages
       && st.pages_kv == 0,
       "at the end every kept page is idle: %d kept, %d idle, %d KV",
       st.prefix_pages, st.pages_cached, st.pages_kv);
}
