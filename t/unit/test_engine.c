/*
 * test_engine.c: the whole engine on a tiny random model (GGUF, llama,
 * so q/k LoRA rows go through the rope permutation).
 *
 *   (a) batching is invisible: 32 requests over 8 adapters of ranks 8, 16,
 *       32 and 64 plus 8 base-model requests, run together, give every
 *       request the greedy tokens it gets alone; adapters do change the
 *       output; seeded sampling repeats; bad submissions are refused;
 *       an unreadable adapter fails only its own request; cancel frees.
 *   (b) the pool under pressure (S-LoRA's trace): 2000 rank-8 adapters,
 *       a pool holding about 50 of them beside the KV cache, 500 requests
 *       with power-law popularity (index = floor(n * U^(1/alpha)),
 *       alpha 0.3): none fails, adapters are evicted, and the pool ends
 *       with no KV page and only idle adapters in it.
 *   (c) preload: a catalog of 24 random adapters and a host tier that
 *       holds 10: slora_engine_preload() reads the first 10 (on 3
 *       threads), and no more; their requests read nothing again and
 *       get the tokens they get without it; a second call reads nothing;
 *       unreadable adapters are named while the others are read.
 *   (d) uploads ahead of need: one running slot, requests queued behind
 *       it with adapters in host memory: theirs go to the pool while the
 *       step before their admission runs, their admission finds them
 *       resident, and every request gets the tokens it gets alone.
 *   (g) log-probabilities: greedy tokens are the same with and without
 *       them (host sampling against the backend's argmax), each is its
 *       row's likeliest, the alternatives come likeliest first; batched
 *       and alone give the same figures.
 *   (e) cancels: 150 requests, running and waiting, cancelled before one
 *       step all end in that step (reaped 64 at a time), pages freed.
 *   (f) a forward that fails (the faulty backend, build/t/): each
 *       request of the batch gets its own ERROR and is ended; the step
 *       returns SLORA_ERROR, or SLORA_FATAL for a lost device.
 *   (h) schedule=slo counts a request's wait from when it reached the
 *       server (slora_request_t.arrived_ns), not from its submission: one
 *       that arrived 2 s ago with an SLO of 1 s is refused at once, the
 *       one submitted beside it without a time runs.
 */

#include <libgen.h>
#include <poll.h>
#include <unistd.h>
#include <sys/stat.h>

#include "tap.h"
#include "tiny_model.h"
#include "slora_engine.h"
#include "slora_adapter.h"
#include "slora_mkmodel.h"
#include "slora_prefetch.h"
#include "slora_sampler.h"


/* five 3-byte characters */
#define EURO5  "\u20ac\u20ac\u20ac\u20ac\u20ac"


#define MAXREQ   600
#define MAXGEN   32
#define MAXCTX   256                 /* the tiny model's context */


typedef struct {
    int32_t     tokens[MAXREQ][MAXGEN];
    int32_t     n[MAXREQ];
    int         done[MAXREQ];
    int         finish[MAXREQ];
    int         failed[MAXREQ];
    int         errors;
    char        last_error[512];
    int         error_id;
} sink_t;



static char                   tmp[256];
static char                   model[300];
static slora_model_config_t   mcfg;


static void on_event(void *data, const slora_event_t *ev);
static int drain(slora_engine_t *e, sink_t *s, int max_steps);
static void test_batching(void);
static void test_pool_trace(void);
static void test_preload(void);
static void test_burst(void);
static void test_warm(void);
static void test_cancel_many(void);
static void test_logprobs(void);
static void on_logprob(void *data, const slora_event_t *ev);
static void test_fault(const char *mode, int want);
static void test_slo_arrival(void);


int
main(void)
{
    char                  cmd[300];

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-engine-XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    tiny_model_make(tmp, 7, MAXCTX, model, sizeof(model), &mcfg);

    diag("model: %d layers, hidden %d, heads %d/%d, ffn %d, vocab %d, "
         "rope %s", mcfg.n_layers, mcfg.hidden, mcfg.n_heads,
         mcfg.n_kv_heads, mcfg.ffn, mcfg.vocab,
         mcfg.rope == SLORA_ROPE_NORM ? "norm" : "neox");

    test_batching();
    test_pool_trace();
    test_preload();
    test_burst();
    test_warm();
    test_cancel_many();
    test_logprobs();
    test_fault("error", SLORA_ERROR);
    test_fault("lost", SLORA_FATAL);
    test_slo_arrival();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}


static void
test_batching(void)
{
    int                   i, j, rc, bad, differ, same_len;
    char                  root[400], name[32], path[500], ctx_msg[64];
    uint32_t              x;
    int32_t               prompt[40][24], n_prompt[40], alone[40][MAXGEN];
    int32_t               n_alone[40], stop, ids[3], long_prompt[MAXCTX];
    const char           *adapter[40], **names;
    slora_err_t           err;
    slora_engine_t       *e, *e2;
    slora_request_t       req;
    slora_engine_conf_t   conf;
    slora_engine_stats_t  st;
    static sink_t         s, s2;
    static const int32_t  ranks[4] = { 8, 16, 32, 64 };
    static const uint32_t masks[8] = { 0x7f, 0x05, 0x0f, 0x70, 0x01, 0x7f,
                                       0x22, 0x48 };

    snprintf(root, sizeof(root), "%s/adapters", tmp);
    mkdir(root, 0755);

    for (i = 0; i < 8; i++) {
        snprintf(name, sizeof(name), "ad%d", i);
        tiny_adapter_make(&mcfg, root, name, ranks[i % 4], masks[i],
                          1000 + i, 1.0f);
    }

    /* a catalog entry whose config is broken, and a hidden folder */
    snprintf(path, sizeof(path), "%s/broken", root);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/.hidden", root);
    mkdir(path, 0755);

    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.adapter_dir = root;
    conf.n_threads = 1;
    conf.max_batch_tokens = 96;
    conf.max_running = 48;

    e = tiny_engine_up(&conf, "engine up");
    if (e == NULL) {
        return;
    }

    is_int(slora_engine_adapters(e, &names), 9, "catalog: 8 adapters and "
           "broken, not .hidden");
    ok(strcmp(names[0], "ad0") == 0 && strcmp(names[8], "broken") == 0,
       "catalog sorted by name");

    x = 99;
    for (i = 0; i < 40; i++) {
        x = x * 1664525 + 1013904223;
        n_prompt[i] = 3 + (int32_t) ((x >> 8) % 20);
        for (j = 0; j < n_prompt[i]; j++) {
            x = x * 1664525 + 1013904223;
            prompt[i][j] = (int32_t) ((x >> 8) % (uint32_t) mcfg.vocab);
        }
        if (i < 32) {
            snprintf(name, sizeof(name), "ad%d", i % 8);
            adapter[i] = strdup(name);
        } else {
            adapter[i] = NULL;
        }
    }

    memset(&req, 0, sizeof(req));
    req.sampling.top_p = 1;
    req.sampling.repeat_penalty = 1;

    /* each alone */
    bad = 0;
    for (i = 0; i < 40; i++) {
        req.id = i;
        req.adapter = adapter[i];
        req.prompt = prompt[i];
        req.n_prompt = n_prompt[i];
        req.sampling.max_tokens = 8 + i % 9;

        rc = slora_engine_submit(e, &req, &err);
        if (rc != SLORA_OK) {
            diag("submit %d: %s", i, err.msg);
            bad++;
            continue;
        }
        drain(e, &s, 100);
        n_alone[i] = s.n[i];
        memcpy(alone[i], s.tokens[i], sizeof(alone[i]));
        bad += !s.done[i] || s.finish[i] != SLORA_FINISH_LENGTH
               || s.n[i] != req.sampling.max_tokens;
    }
    is_int(bad, 0, "40 requests alone: each ends at max_tokens");

    /* the same prompt with and without each adapter */
    differ = 0;
    for (i = 0; i < 8; i++) {
        req.id = 100 + i;
        req.adapter = NULL;
        req.prompt = prompt[i];
        req.n_prompt = n_prompt[i];
        req.sampling.max_tokens = 8 + i % 9;
        slora_engine_submit(e, &req, &err);
        drain(e, &s, 100);
        differ += memcmp(s.tokens[100 + i], alone[i],
                         (size_t) n_alone[i] * sizeof(int32_t)) != 0;
    }
    ok(differ >= 6, "adapters change the greedy output (%d of 8 differ "
       "from the base model)", differ);

    /* all together */
    memset(&s, 0, sizeof(s));
    for (i = 0; i < 40; i++) {
        req.id = 200 + i;
        req.adapter = adapter[i];
        req.prompt = prompt[i];
        req.n_prompt = n_prompt[i];
        req.sampling.max_tokens = 8 + i % 9;
        if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
            diag("submit %d: %s", i, err.msg);
        }
    }

    drain(e, &s, 1000);
    slora_engine_stats(e, &st);

    bad = 0;
    for (i = 0; i < 40; i++) {
        same_len = s.n[200 + i] == n_alone[i];
        if (!same_len || memcmp(s.tokens[200 + i], alone[i],
                                (size_t) n_alone[i] * sizeof(int32_t)) != 0)
        {
            diag("request %d (%s) differs in the batch", i,
                 adapter[i] ? adapter[i] : "base");
            bad++;
        }
    }
    is_int(bad, 0, "40 requests batched (8 adapters, ranks 8-64, and base) "
           "give each its tokens alone");
    ok(st.steps > 0 && st.tokens_decoded > 0 && st.pages_kv == 0,
       "stats: %llu steps, %llu prefilled, %llu decoded, %d adapters "
       "resident, no KV page left", (unsigned long long) st.steps,
       (unsigned long long) st.tokens_prefilled,
       (unsigned long long) st.tokens_decoded, st.adapters_in_pool);

    /* seeded sampling: same seed, same tokens, alone or beside others */
    req.adapter = "ad1";
    req.prompt = prompt[1];
    req.n_prompt = n_prompt[1];
    req.sampling.max_tokens = 16;
    req.sampling.temperature = 0.9f;
    req.sampling.top_k = 40;
    req.sampling.seed = 1234;
    req.id = 300;
    slora_engine_submit(e, &req, &err);
    drain(e, &s, 100);
    req.id = 301;
    slora_engine_submit(e, &req, &err);
    req.id = 302;
    req.sampling.seed = 4321;
    slora_engine_submit(e, &req, &err);
    req.id = 303;
    req.adapter = "ad2";
    slora_engine_submit(e, &req, &err);
    drain(e, &s, 100);
    ok(memcmp(s.tokens[300], s.tokens[301], 16 * sizeof(int32_t)) == 0,
       "same seed, same sampled tokens");
    ok(memcmp(s.tokens[300], s.tokens[302], 16 * sizeof(int32_t)) != 0,
       "another seed, other tokens");

    /* the same seed through the engine's own sampler (margins on: every
     * logits row comes back to the host) draws the same tokens as the
     * backend's draws did */
    conf.margins = 1;
    e2 = slora_engine_init(&conf, &err);
    if (e2 == NULL) {
        BAIL_OUT("%s", err.msg);
    }
    req.adapter = "ad1";
    req.sampling.seed = 1234;
    req.id = 300;
    slora_engine_submit(e2, &req, &err);
    drain(e2, &s2, 100);
    ok(s2.n[300] == 16
       && memcmp(s2.tokens[300], s.tokens[300], 16 * sizeof(int32_t)) == 0,
       "the backend's draws and the engine's sampler give one seed's "
       "tokens alike");
    slora_engine_free(e2);
    conf.margins = 0;
    memset(&req.sampling, 0, sizeof(req.sampling));
    req.sampling.top_p = 1;
    req.sampling.max_tokens = 8;

    /* stop ids end a request without a TOKEN event for them */
    stop = alone[33][3];
    ids[0] = stop;
    req.id = 310;
    req.adapter = adapter[33];
    req.prompt = prompt[33];
    req.n_prompt = n_prompt[33];
    req.stop_ids = ids;
    req.n_stop_ids = 1;
    slora_engine_submit(e, &req, &err);
    drain(e, &s, 100);
    for (j = 0; j < 3 && alone[33][j] != stop; j++) {
        /* the first occurrence */
    }
    ok(s.finish[310] == SLORA_FINISH_STOP && s.n[310] == j,
       "stop id: DONE STOP after %d tokens", j);

    /* a stop id that is the very first token: DONE STOP, no token */
    ids[0] = alone[34][0];
    req.id = 311;
    req.adapter = adapter[34];
    req.prompt = prompt[34];
    req.n_prompt = n_prompt[34];
    slora_engine_submit(e, &req, &err);
    drain(e, &s, 100);
    ok(s.done[311] && s.finish[311] == SLORA_FINISH_STOP && s.n[311] == 0,
       "stop id as the first token: DONE STOP after 0 tokens (%d)",
       s.n[311]);
    req.stop_ids = NULL;
    req.n_stop_ids = 0;

    /* the context's edge: prompt + max_tokens == max_ctx runs to the
     * last position; one token more is refused at submit */
    for (j = 0; j < MAXCTX - 6; j++) {
        long_prompt[j] = prompt[j % 40][j % n_prompt[j % 40]];
    }
    req.id = 312;
    req.adapter = "ad2";
    req.prompt = long_prompt;
    req.n_prompt = MAXCTX - 6;
    req.sampling.max_tokens = 6;
    is_int(slora_engine_submit(e, &req, &err), SLORA_OK,
           "prompt %d + max_tokens 6 == the context %d: accepted",
           MAXCTX - 6, MAXCTX);
    drain(e, &s, 100);
    ok(s.done[312] && s.finish[312] == SLORA_FINISH_LENGTH && s.n[312] == 6,
       "it fills the context: 6 tokens, DONE LENGTH");
    req.id = 313;
    req.sampling.max_tokens = 7;
    snprintf(ctx_msg, sizeof(ctx_msg), "must fit the context of %d", MAXCTX);
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, ctx_msg) != NULL,
       "one more is refused: %s", err.msg);
    req.sampling.max_tokens = 0;
    req.n_prompt = 4;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "max_tokens >= 1") != NULL,
       "max_tokens 0 is refused: %s", err.msg);
    req.sampling.max_tokens = 4;
    req.sampling.min_tokens = 5;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "min_tokens") != NULL,
       "min_tokens over max_tokens is refused: %s", err.msg);
    req.sampling.min_tokens = 0;
    req.sampling.max_tokens = 8;

    /* refusals */
    req.id = 320;
    req.adapter = "nope";
    is_int(slora_engine_submit(e, &req, &err), SLORA_DECLINED,
           "unknown adapter: declined");
    req.adapter = "../ad0";
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "refused") != NULL, "../ad0: %s", err.msg);
    req.adapter = ".hidden";
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR,
       ".hidden refused");

    /* the refused name quoted whole characters: ".." and 22 of 3 bytes,
     * which 64 bytes would end inside the 21st */
    req.adapter = ".." EURO5 EURO5 EURO5 EURO5 "\u20ac\u20ac";
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "\".." EURO5 EURO5 EURO5 EURO5 "\" is refused")
          != NULL,
       "a refused name cut between characters: \"..\" and 20 (%s)",
       err.msg);
    req.adapter = NULL;
    req.sampling.max_tokens = 256;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "context") != NULL, "too long: %s", err.msg);
    req.sampling.max_tokens = 4;
    ids[0] = mcfg.vocab;
    req.prompt = ids;
    req.n_prompt = 1;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "vocabulary") != NULL, "token id: %s", err.msg);
    req.n_prompt = 0;
    is_int(slora_engine_submit(e, &req, &err), SLORA_ERROR, "empty prompt");
    req.prompt = prompt[0];
    req.n_prompt = n_prompt[0];
    req.sampling.n_logit_bias = 1;
    req.sampling.logit_bias_ids[0] = mcfg.vocab;
    req.sampling.logit_bias[0] = 1;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "logit bias 1 on token") != NULL,
       "logit bias on a token past the vocabulary: %s", err.msg);
    req.sampling.logit_bias_ids[0] = 0;
    req.sampling.logit_bias[0] = 101;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR,
       "logit bias 101: refused");
    req.sampling.n_logit_bias = SLORA_LOGIT_BIAS_MAX + 1;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "logit biases") != NULL,
       "%d logit biases: %s", SLORA_LOGIT_BIAS_MAX + 1, err.msg);
    req.sampling.n_logit_bias = 0;
    req.sampling.n_allowed = 1;
    req.sampling.allowed_ids[0] = mcfg.vocab;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "allowed token") != NULL,
       "an allowed token past the vocabulary: %s", err.msg);
    req.sampling.n_allowed = SLORA_ALLOWED_MAX + 1;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "allowed tokens") != NULL,
       "%d allowed tokens: %s", SLORA_ALLOWED_MAX + 1, err.msg);
    req.sampling.n_allowed = 0;
    req.sampling.n_bad = 3;
    req.sampling.bad_ids[0] = 3;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "run of 3") != NULL,
       "a bad word's run past its ints: %s", err.msg);
    req.sampling.bad_ids[0] = 2;
    req.sampling.bad_ids[1] = 1;
    req.sampling.bad_ids[2] = mcfg.vocab;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "bad word token") != NULL,
       "a bad word's token past the vocabulary: %s", err.msg);
    req.sampling.n_bad = 0;

    /* a broken adapter fails its request only */
    memset(&s, 0, sizeof(s));
    req.prompt = prompt[0];
    req.n_prompt = n_prompt[0];
    req.sampling.max_tokens = 8;
    req.id = 400;
    req.adapter = "broken";
    slora_engine_submit(e, &req, &err);
    req.id = 401;
    req.adapter = "ad0";
    slora_engine_submit(e, &req, &err);
    drain(e, &s, 100);
    ok(s.errors == 1 && s.error_id == 400
       && strstr(s.last_error, "broken/adapter_config.json") != NULL,
       "broken adapter: one ERROR event: %s", s.last_error);
    ok(s.done[401] && memcmp(s.tokens[401], alone[0],
                             8 * sizeof(int32_t)) == 0,
       "the other request is unaffected");

    /* cancel */
    req.id = 410;
    req.sampling.max_tokens = 30;
    slora_engine_submit(e, &req, &err);
    slora_engine_step(e, on_event, &s);
    is_int(slora_engine_cancel(e, 410), SLORA_OK, "cancel");
    is_int(slora_engine_cancel(e, 410), SLORA_DECLINED,
           "a second cancel before the step: declined");
    is_int(slora_engine_cancel(e, 999), SLORA_DECLINED, "cancel unknown");
    drain(e, &s, 10);
    slora_engine_stats(e, &st);
    ok(s.finish[410] == SLORA_FINISH_CANCEL && st.pages_kv == 0
       && st.running == 0 && st.waiting == 0,
       "cancelled: DONE CANCEL, its pages freed");

    /* a path-registered adapter */
    snprintf(path, sizeof(path), "%s/ad3", root);
    is_int(slora_engine_add_adapter(e, "extra", path, &err), SLORA_OK,
           "add_adapter");
    is_int(slora_engine_add_adapter(e, "extra", path, &err), SLORA_DECLINED,
           "add_adapter twice: declined");
    ok(slora_engine_add_adapter(e, "x", "/nonexistent", &err) == SLORA_ERROR
       && strstr(err.msg, "adapter x: /nonexistent: No such file") != NULL,
       "add_adapter of a missing folder: %s", err.msg);
    req.id = 420;
    req.adapter = "extra";
    req.prompt = prompt[3];
    req.n_prompt = n_prompt[3];
    req.sampling.max_tokens = n_alone[3];
    slora_engine_submit(e, &req, &err);
    drain(e, &s, 100);
    ok(memcmp(s.tokens[420], alone[3], (size_t) n_alone[3] * sizeof(int32_t))
       == 0, "the same folder under another name gives the same tokens");

    slora_engine_free(e);

    for (i = 0; i < 32; i++) {
        free((void *) adapter[i]);
    }

    conf.device = "cuda";
    e = slora_engine_init(&conf, &err);
    ok(e == NULL && strstr(err.msg, "cuda") != NULL, "device cuda: %s",
       err.msg);
}


static void
test_pool_trace(void)
{
    int                   i, j, bad, max_runs, max_running;
    char                  root[400], name[32], dir[500];
    double                u, waste;
    int32_t               prompt[32], pages_start, max_ad_pages, runs,
                          longest;
    int64_t               t0;
    uint64_t              x;
    slora_err_t           err;
    slora_rng_t           rng;
    slora_engine_t       *e;
    slora_request_t       req;
    slora_engine_conf_t   conf;
    slora_engine_stats_t  st;
    slora_adapter_gen_t   gen;
    static sink_t         s;

    snprintf(root, sizeof(root), "%s/many", tmp);
    mkdir(root, 0755);

    t0 = slora_now_ns();
    memset(&gen, 0, sizeof(gen));
    gen.rank = 8;
    gen.alpha = 16;
    gen.proj_mask = (1u << SLORA_PROJ_Q) | (1u << SLORA_PROJ_V);
    gen.scale = 0.5f;

    for (i = 0; i < 2000; i++) {
        snprintf(dir, sizeof(dir), "%s/a%04d", root, i);
        gen.seed = 5000 + i;
        if (slora_adapter_write_random(dir, &mcfg, &gen, &err) != SLORA_OK) {
            BAIL_OUT("%s", err.msg);
        }
    }
    diag("2000 adapters written in %.2f s",
         (double) (slora_now_ns() - t0) / 1e9);

    /* rank 8 on q, v: 1792 elements a layer, 4 pages of 512: 50 adapters
     * are 200 pages; 16 running requests of <= 32 tokens, 64 pages */
    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.adapter_dir = root;
    conf.n_threads = 1;
    conf.max_batch_tokens = 128;
    conf.max_running = 16;
    conf.host_cache_bytes = 20 * 4 * 512 * 4 * (size_t) mcfg.n_layers;
    conf.pool_bytes = (size_t) 264 * 512 * 4 * (size_t) mcfg.n_layers;

    e = tiny_engine_up(&conf, "engine over 2000 adapters");
    if (e == NULL) {
        return;
    }

    slora_engine_stats(e, &st);
    pages_start = st.pages_free;
    is_int(st.pages_total, 264, "264 pages");
    is_int(pages_start, 264, "all free at the start");
    slora_engine_free_runs(e, &runs, &longest);
    ok(runs == 1 && longest == 264, "... in one run of 264 (%d runs, the "
       "longest %d)", runs, longest);

    slora_rng_seed(&rng, 42);
    x = 0;
    memset(&req, 0, sizeof(req));
    req.sampling.top_p = 1;
    req.sampling.repeat_penalty = 1;
    bad = 0;

    for (i = 0; i < 500; i++) {
        u = slora_rng_uniform(&rng);
        j = (int) (2000 * pow(u, 1 / 0.3));
        snprintf(name, sizeof(name), "a%04d", j);

        req.id = i;
        req.adapter = name;
        req.n_prompt = 4 + (int32_t) (slora_rng_next(&rng) % 13);
        for (j = 0; j < req.n_prompt; j++) {
            prompt[j] = (int32_t) (slora_rng_next(&rng)
                                   % (uint64_t) mcfg.vocab);
        }
        req.prompt = prompt;
        req.sampling.max_tokens = 2 + (int32_t) (slora_rng_next(&rng) % 5);
        x += (uint64_t) req.sampling.max_tokens;

        if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
            diag("submit %d: %s", i, err.msg);
            bad++;
        }
    }
    is_int(bad, 0, "500 requests queued");

    t0 = slora_now_ns();
    max_runs = 0;
    max_running = 0;
    max_ad_pages = 0;

    for (i = 0; i < 100000; i++) {
        if (slora_engine_step(e, on_event, &s) == SLORA_DONE) {
            break;
        }
        slora_engine_stats(e, &st);
        slora_engine_free_runs(e, &runs, &longest);
        max_runs = runs > max_runs ? runs : max_runs;
        max_running = st.running > max_running ? st.running : max_running;
        max_ad_pages = st.pages_adapter > max_ad_pages ? st.pages_adapter
                                                       : max_ad_pages;
    }

    slora_engine_stats(e, &st);
    slora_engine_free_runs(e, &runs, &longest);

    bad = 0;
    for (i = 0; i < 500; i++) {
        bad += !s.done[i] || s.finish[i] != SLORA_FINISH_LENGTH;
    }

    is_int(s.errors, 0, "no request failed");
    is_int(bad, 0, "all 500 requests ended at their length");
    is_int(st.tokens_decoded + 500, (long long) x,
           "every token generated: %llu", (unsigned long long) x);
    ok(st.adapter_evictions > 0, "adapters evicted: %llu (loads %llu, "
       "uploads %llu, hits %llu, preemptions %llu)",
       (unsigned long long) st.adapter_evictions,
       (unsigned long long) st.adapter_loads,
       (unsigned long long) st.adapter_uploads,
       (unsigned long long) st.adapter_hits,
       (unsigned long long) st.preemptions);
    ok(st.pages_kv == 0 && st.running == 0 && st.waiting == 0,
       "no KV page, nothing running or waiting at the end");
    is_int(st.pages_free + st.pages_adapter + st.pages_cached, pages_start,
           "the pool returns to its starting free count but for idle "
           "adapters and the prefix cache's pages");
    is_int(st.pages_cached, st.prefix_pages,
           "every page the prefix cache keeps is idle at the end (%d)",
           st.prefix_pages);
    /* the longest run and at least a page for each other run */
    ok(runs >= 1 && longest >= 1 && (runs - 1) + longest <= st.pages_free,
       "the free pages in %d runs, the longest %d, of %d free", runs,
       longest, st.pages_free);
    is_int(st.pages_adapter, 4 * st.adapters_in_pool,
           "4 pages per resident adapter (%d resident, at most %d pages "
           "of adapters seen)", st.adapters_in_pool, max_ad_pages);

    waste = st.adapter_pool_elems > 0
            ? 100.0 * (double) (st.adapter_pool_elems - st.adapter_used_elems)
              / (double) st.adapter_pool_elems
            : 0;
    diag("%llu steps in %.2f s, up to %d running; adapter page waste "
         "%.1f%% (1792 of 2048 elements used a layer); free pages now in "
         "%d runs (longest %d), at most %d runs during the trace",
         (unsigned long long) st.steps,
         (double) (slora_now_ns() - t0) / 1e9, max_running, waste,
         runs, longest, max_runs);
    ok(waste > 12.4 && waste < 12.6, "adapter waste 12.5%%");

    slora_engine_free(e);
}


static void
test_preload(void)
{
    int                   i;
    char                  root[400], path[500];
    FILE                 *f;
    size_t                image;
    int32_t               prompt[8], loaded, ref[MAXGEN], first_n;
    slora_err_t           err;
    slora_engine_t       *e;
    slora_request_t       req;
    slora_engine_conf_t   conf;
    slora_engine_stats_t  st;
    static sink_t         s;
    static const char     spec[] = "random:n=24,ranks=8,targets=q+v,seed=3";

    for (i = 0; i < 8; i++) {
        prompt[i] = (i * 37 + 11) % mcfg.vocab;
    }

    memset(&req, 0, sizeof(req));
    req.prompt = prompt;
    req.n_prompt = 8;
    req.sampling.top_p = 1;
    req.sampling.repeat_penalty = 1;
    req.sampling.max_tokens = 12;

    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.adapter_dir = spec;
    conf.n_threads = 3;
    conf.max_batch_tokens = 64;
    conf.max_running = 8;

    /* without preload: the reference tokens of r0005 and its image's
     * size, which every adapter of the catalog shares */
    e = tiny_engine_up(&conf, "preload: reference engine up");
    if (e == NULL) {
        return;
    }

    memset(&s, 0, sizeof(s));
    req.id = 1;
    req.adapter = "r0005";
    slora_engine_submit(e, &req, &err);
    drain(e, &s, 100);
    memcpy(ref, s.tokens[1], sizeof(ref));
    slora_engine_stats(e, &st);
    image = st.host_bytes;
    ok(s.done[1] && s.n[1] == 12 && st.adapter_loads == 1 && image > 0,
       "reference: 12 tokens, one load, an image of %zu bytes", image);
    slora_engine_free(e);

    /* a host tier of 10.5 images */
    conf.host_cache_bytes = image * 10 + image / 2;
    e = tiny_engine_up(&conf, "preload engine up");
    if (e == NULL) {
        return;
    }

    slora_engine_stats(e, &st);
    ok(st.adapter_loads == 0 && st.adapters_in_host == 0,
       "nothing in host memory before the preload");
    is_int(slora_engine_preload(e, &loaded, &err), SLORA_OK, "preload");
    is_int(loaded, 10, "10 adapters of 24 fit the host tier");
    slora_engine_stats(e, &st);
    ok(st.adapters_in_host == 10 && st.host_bytes == 10 * image
       && st.adapter_loads == 10 && st.host_evictions == 0
       && st.adapters_in_pool == 0,
       "stats: 10 in host memory (%zu bytes), 10 loads, none dropped, "
       "none in the pool", st.host_bytes);
    is_int(tiny_count_tier(e, "host", &first_n), 10,
           "the list says 10 in host");
    is_int(first_n, 10, "... r0000 to r0009, the catalog's first");
    is_int(tiny_count_tier(e, "disk", &first_n), 14,
           "... the other 14 on disk");

    is_int(slora_engine_preload(e, &loaded, &err), SLORA_OK,
           "preload again");
    slora_engine_stats(e, &st);
    ok(loaded == 10 && st.adapter_loads == 10,
       "... reads nothing more: %d in host, %llu loads", loaded,
       (unsigned long long) st.adapter_loads);

    memset(&s, 0, sizeof(s));
    req.id = 2;
    slora_engine_submit(e, &req, &err);
    drain(e, &s, 100);
    slora_engine_stats(e, &st);
    ok(s.done[2] && s.n[2] == 12
       && memcmp(s.tokens[2], ref, 12 * sizeof(int32_t)) == 0,
       "r0005 preloaded gives the tokens it gives without preload");
    ok(st.adapter_loads == 10 && st.host_hits == 1 && st.host_misses == 0
       && st.adapter_uploads == 1,
       "... and is uploaded from host memory, not read again");

    req.id = 3;
    req.adapter = "r0015";
    slora_engine_submit(e, &req, &err);
    drain(e, &s, 100);
    slora_engine_stats(e, &st);
    ok(s.done[3] && st.adapter_loads == 11,
       "r0015, beyond the budget, is read at its request");
    slora_engine_free(e);

    /* a folder catalog: one adapter's weights are garbage, another has
     * no config */
    snprintf(root, sizeof(root), "%s/pre", tmp);
    mkdir(root, 0755);
    tiny_adapter_make(&mcfg, root, "ad0", 8, 0x05, 1, 1.0f);
    tiny_adapter_make(&mcfg, root, "ad1", 16, 0x7f, 2, 1.0f);
    tiny_adapter_make(&mcfg, root, "ad2", 8, 0x05, 3, 1.0f);
    tiny_adapter_make(&mcfg, root, "ad3", 4, 0x01, 4, 1.0f);

    snprintf(path, sizeof(path), "%s/ad2/adapter_model.safetensors", root);
    f = fopen(path, "w");
    if (f == NULL || fputs("not safetensors", f) < 0 || fclose(f) != 0) {
        BAIL_OUT("cannot write %s", path);
    }

    conf.adapter_dir = root;
    conf.host_cache_bytes = 0;
    e = tiny_engine_up(&conf, "folder engine up");
    if (e == NULL) {
        return;
    }

    ok(slora_engine_preload(e, &loaded, &err) == SLORA_ERROR
       && strstr(err.msg, "ad2") != NULL,
       "garbage weights: preload fails naming them: %s", err.msg);
    is_int(loaded, 3, "... the 3 others are in host memory");
    slora_engine_free(e);

    snprintf(path, sizeof(path), "%s/broken", root);
    mkdir(path, 0755);
    e = tiny_engine_up(&conf, "folder engine with a broken entry up");
    if (e == NULL) {
        return;
    }

    ok(slora_engine_preload(e, &loaded, &err) == SLORA_ERROR
       && strstr(err.msg, "broken/adapter_config.json") != NULL,
       "no config: preload fails naming it first: %s", err.msg);
    is_int(loaded, 3, "... the 3 readable are in host memory all the same");
    slora_engine_free(e);
}


static void
on_event(void *data, const slora_event_t *ev)
{
    sink_t  *s = data;

    if (ev->id >= MAXREQ) {
        return;
    }

    switch (ev->type) {

    case SLORA_EV_TOKEN:
        if (s->n[ev->id] < MAXGEN) {
            s->tokens[ev->id][s->n[ev->id]++] = ev->token;
        }
        break;

    case SLORA_EV_DONE:
        s->done[ev->id] = 1;
        s->finish[ev->id] = ev->finish;
        break;

    case SLORA_EV_ERROR:
        s->failed[ev->id]++;
        s->errors++;
        s->error_id = (int) ev->id;
        snprintf(s->last_error, sizeof(s->last_error), "%s", ev->error);
        break;

    case SLORA_EV_SCORE:
        /* none of its requests asks for them (test_score.c) */
        s->errors++;
        break;
    }
}


static int
drain(slora_engine_t *e, sink_t *s, int max_steps)
{
    int            i, rc;
    struct pollfd  pfd;

    for (i = 0; i < max_steps; i++) {
        rc = slora_engine_step(e, on_event, s);
        if (rc == SLORA_DONE) {
            return i;
        }
        if (rc == SLORA_AGAIN) {
            /* adapters being read by the loader threads */
            pfd.fd = slora_engine_wake_fd(e);
            pfd.events = POLLIN;
            (void) poll(&pfd, 1, 100);
            continue;
        }
        if (rc != SLORA_OK) {
            diag("step failed");
            return -1;
        }
    }

    return i;
}


static void
test_warm(void)
{
    int                   k, i, same;
    int32_t               prompt[8], loaded;
    char                  name[16];
    slora_err_t           err;
    slora_engine_t       *e;
    slora_request_t       req;
    slora_engine_conf_t   conf;
    slora_engine_stats_t  st[2];
    static sink_t         s[2];

    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.adapter_dir = "random:n=6,ranks=8+16,targets=q+k+v+o,seed=11";
    conf.n_threads = 2;
    conf.max_batch_tokens = 64;
    conf.max_running = 1;

    for (i = 0; i < 8; i++) {
        prompt[i] = (i * 53 + 7) % mcfg.vocab;
    }

    memset(&req, 0, sizeof(req));
    req.prompt = prompt;
    req.n_prompt = 8;
    req.sampling.top_p = 1;
    req.sampling.repeat_penalty = 1;
    req.sampling.max_tokens = 6;

    /* k 0: each request alone; k 1: all four queued at once */
    for (k = 0; k < 2; k++) {
        e = slora_engine_init(&conf, &err);
        if (!ok(e != NULL, "warm: engine up (%s)", k ? "queued" : "alone")
            || !ok(slora_engine_preload(e, &loaded, &err) == SLORA_OK
                   && loaded == 6, "warm: the 6 adapters in host memory"))
        {
            diag("%s", err.msg);
            return;
        }

        memset(&s[k], 0, sizeof(s[k]));

        for (i = 1; i <= 4; i++) {
            snprintf(name, sizeof(name), "r%04d", i);
            req.id = (uint64_t) i;
            req.adapter = name;
            slora_engine_submit(e, &req, &err);
            if (k == 0) {
                drain(e, &s[k], 200);
            }
        }

        drain(e, &s[k], 400);
        slora_engine_stats(e, &st[k]);
        slora_engine_free(e);
    }

    same = 1;
    for (i = 1; i <= 4; i++) {
        same &= s[0].done[i] && s[1].done[i] && s[1].n[i] == 6
                && memcmp(s[0].tokens[i], s[1].tokens[i],
                          6 * sizeof(int32_t)) == 0;
    }

    ok(st[0].adapter_warmed == 0 && st[0].adapter_uploads == 4,
       "warm: alone, nothing waits, nothing goes ahead (4 uploads)");
    ok(st[1].adapter_warmed == 3 && st[1].adapter_uploads == 4
       && st[1].adapter_hits == 3,
       "warm: queued, the 3 waiting requests' adapters went ahead "
       "(%llu of %llu uploads) and their admissions were hits (%llu)",
       (unsigned long long) st[1].adapter_warmed,
       (unsigned long long) st[1].adapter_uploads,
       (unsigned long long) st[1].adapter_hits);
    ok(same && s[1].errors == 0, "warm: every request the tokens it gets "
       "alone");
}


/*
 * A burst of requests for cold adapters with nothing running, more of
 * them than the loaders take at once (SLORA_PREFETCH_MAX): with one
 * loader thread the engine reads those it admits itself, one after
 * another; with several, the loaders read all of them (every one counts
 * as prefetched: those beyond the loaders' queue wait for a place in it,
 * not for a read on the engine's thread) and the answers are the same.
 */
#define BURST  (SLORA_PREFETCH_MAX + 8)

static void
test_burst(void)
{
    int                   k, i, same;
    int32_t               prompt[8], threads[2] = { 1, 4 };
    char                  spec[100];
    slora_err_t           err;
    slora_engine_t       *e;
    slora_request_t       req;
    slora_engine_conf_t   conf;
    slora_engine_stats_t  st;
    char                  name[16];
    static sink_t         s[2];

    for (i = 0; i < 8; i++) {
        prompt[i] = (i * 29 + 5) % mcfg.vocab;
    }

    for (k = 0; k < 2; k++) {
        memset(&conf, 0, sizeof(conf));
        conf.model_path = model;
        snprintf(spec, sizeof(spec), "random:n=%d,ranks=64,"
                 "targets=q+k+v+o+gate+up+down,seed=5", BURST);
        conf.adapter_dir = spec;
        conf.n_threads = 2;
        conf.max_batch_tokens = 8 * BURST;
        conf.max_running = BURST;
        conf.prefetch_threads = threads[k];

        e = slora_engine_init(&conf, &err);
        if (!ok(e != NULL, "burst: engine with %d loader thread(s) up",
                threads[k]))
        {
            diag("%s", err.msg);
            return;
        }

        memset(&s[k], 0, sizeof(s[k]));

        for (i = 0; i < BURST; i++) {
            memset(&req, 0, sizeof(req));
            snprintf(name, sizeof(name), "r%04d", i);
            req.id = (uint64_t) i + 1;
            req.adapter = name;
            req.prompt = prompt;
            req.n_prompt = 8;
            req.sampling.top_p = 1;
            req.sampling.repeat_penalty = 1;
            req.sampling.max_tokens = 6;
            if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
                diag("submit: %s", err.msg);
            }
        }

        drain(e, &s[k], 400);
        slora_engine_stats(e, &st);

        for (i = 1; i <= BURST && s[k].done[i] && s[k].n[i] == 6; i++) {
            /* all done */
        }

        ok(i == BURST + 1, "burst, %d loader(s): %d answers of 6 tokens",
           threads[k], BURST);
        is_int((int) st.adapter_loads, BURST, "burst, %d loader(s): %d "
               "reads", threads[k], BURST);
        if (k == 0) {
            ok(st.prefetched < BURST, "burst, 1 loader: %d of %d read at "
               "admission (the loader takes only those left waiting)",
               BURST - (int) st.prefetched, BURST);

        } else {
            is_int((int) st.prefetched, BURST, "burst, 4 loaders: all %d "
                   "read by the loaders, none at admission", BURST);
        }

        slora_engine_free(e);
    }

    same = 1;
    for (i = 1; i <= BURST; i++) {
        same &= memcmp(s[0].tokens[i], s[1].tokens[i],
                       sizeof(s[0].tokens[i])) == 0;
    }

    ok(same, "burst: the same tokens with 1 and with 4 loaders");
}


/*
 * More cancels than one round of reaping (SLORA_ENGINE_REAP, 64): 150
 * requests, 64 running and the rest waiting, all cancelled before one
 * step. That step ends every one with DONE CANCEL, frees their pages,
 * and leaves nothing running or waiting; the next has nothing to do.
 */
#define NCANCEL  150

static void
test_cancel_many(void)
{
    int                   i, n_ok, n_cancel, rc;
    int32_t               prompt[4] = { 3, 14, 15, 92 };
    slora_err_t           err;
    slora_engine_t       *e;
    slora_request_t       req;
    slora_engine_conf_t   conf;
    slora_engine_stats_t  st;
    static sink_t         s;

    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.n_threads = 1;
    conf.max_batch_tokens = 512;
    conf.max_running = 64;

    e = tiny_engine_up(&conf, "cancels: engine up");
    if (e == NULL) {
        return;
    }

    memset(&req, 0, sizeof(req));
    req.prompt = prompt;
    req.n_prompt = 4;
    req.sampling.top_p = 1;
    req.sampling.max_tokens = 20;

    for (i = 0; i < NCANCEL; i++) {
        req.id = (uint64_t) i;
        slora_engine_submit(e, &req, &err);
    }

    memset(&s, 0, sizeof(s));
    slora_engine_step(e, on_event, &s);
    slora_engine_stats(e, &st);
    ok(st.running == 64 && st.waiting == NCANCEL - 64 && st.pages_kv > 0,
       "cancels: %d running with KV pages, %d waiting", st.running,
       st.waiting);

    n_ok = 0;
    for (i = 0; i < NCANCEL; i++) {
        n_ok += slora_engine_cancel(e, (uint64_t) i) == SLORA_OK;
    }

    memset(&s, 0, sizeof(s));
    rc = slora_engine_step(e, on_event, &s);

    n_cancel = 0;
    for (i = 0; i < NCANCEL; i++) {
        n_cancel += s.done[i] && s.finish[i] == SLORA_FINISH_CANCEL
                    && s.n[i] == 0;
    }
    slora_engine_stats(e, &st);

    ok(rc == SLORA_OK && n_ok == NCANCEL && n_cancel == NCANCEL,
       "cancels: %d cancelled, one step ends all with DONE CANCEL (%d)",
       n_ok, n_cancel);
    ok(st.running == 0 && st.waiting == 0 && st.pages_kv == 0,
       "... nothing left running (%d) or waiting (%d), no KV page (%d)",
       st.running, st.waiting, st.pages_kv);
    is_int(slora_engine_step(e, on_event, &s), SLORA_DONE,
           "... and the next step has nothing to do");

    slora_engine_free(e);
}


/*
 * The faulty backend (t/backend/slora_backend_faulty.c, made by `make
 * unit` beside this test's folder, build/t/) fails every forward after the
 * first, as mode says. Three requests prefill together; in the next
 * step's failed forward each gets an ERROR of its own and is ended,
 * its pages freed, and the step returns want: SLORA_ERROR for a failed
 * step, SLORA_FATAL for a lost device.
 */
static void
test_fault(const char *mode, int want)
{
    int                   i, rc, each;
    char                  lib[1100], exe[1024];
    ssize_t               n;
    int32_t               prompt[4] = { 27, 18, 28, 18 };
    slora_err_t           err;
    slora_engine_t       *e;
    slora_request_t       req;
    slora_engine_conf_t   conf;
    slora_engine_stats_t  st;
    static sink_t         s;

    /* build/t/unit/test_engine: build/t/libslora_backend_faulty.so */
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    snprintf(lib, sizeof(lib), "%s/../libslora_backend_faulty.so",
             dirname(exe));
    if (access(lib, R_OK) != 0) {
        snprintf(lib, sizeof(lib), "build/t/libslora_backend_faulty.so");
    }
    if (!ok(access(lib, R_OK) == 0, "fault %s: the faulty backend %s is "
            "built (make unit builds it)", mode, lib))
    {
        return;
    }

    setenv("SLORA_FAULTY_STEPS", "1", 1);
    setenv("SLORA_FAULTY_MODE", mode, 1);

    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.device = "cuda";
    conf.backend_lib = lib;
    conf.n_threads = 1;

    e = slora_engine_init(&conf, &err);
    unsetenv("SLORA_FAULTY_STEPS");
    unsetenv("SLORA_FAULTY_MODE");
    if (!ok(e != NULL, "fault %s: engine up on the faulty backend", mode)) {
        diag("%s", err.msg);
        return;
    }

    memset(&req, 0, sizeof(req));
    req.prompt = prompt;
    req.n_prompt = 4;
    req.sampling.top_p = 1;
    req.sampling.max_tokens = 8;

    for (i = 0; i < 3; i++) {
        req.id = (uint64_t) i;
        slora_engine_submit(e, &req, &err);
    }

    memset(&s, 0, sizeof(s));
    rc = slora_engine_step(e, on_event, &s);
    ok(rc == SLORA_OK && s.n[0] == 1 && s.n[1] == 1 && s.n[2] == 1
       && s.errors == 0, "fault %s: the first forward, 3 prefills, works",
       mode);

    rc = slora_engine_step(e, on_event, &s);
    slora_engine_stats(e, &st);

    each = 0;
    for (i = 0; i < 3; i++) {
        each += s.failed[i] == 1 && !s.done[i] && s.n[i] == 1;
    }

    is_int(rc, want, "fault %s: the failed step returns %s", mode,
           want == SLORA_FATAL ? "SLORA_FATAL" : "SLORA_ERROR");
    ok(each == 3 && s.errors == 3
       && strstr(s.last_error, "faulty backend") != NULL,
       "... each of the 3 requests gets one ERROR: %s", s.last_error);
    ok(st.running == 0 && st.waiting == 0 && st.pages_kv == 0,
       "... and is ended, its pages freed");

    slora_engine_free(e);
}



/* What test_logprobs keeps of its TOKEN events, by request id (< 8). */
typedef struct {
    int32_t     n[8];
    int32_t     token[8][MAXGEN];
    float       lp[8][MAXGEN];
    int32_t     n_top[8][MAXGEN];
    int32_t     top_id[8][MAXGEN][4];
    float       top_lp[8][MAXGEN][4];
} lp_sink_t;


static void
on_logprob(void *data, const slora_event_t *ev)
{
    int32_t     k, j;
    lp_sink_t  *ls = data;

    if (ev->type != SLORA_EV_TOKEN || ev->id >= 8
        || ls->n[ev->id] >= MAXGEN)
    {
        return;
    }

    k = ls->n[ev->id]++;
    ls->token[ev->id][k] = ev->token;
    ls->lp[ev->id][k] = ev->logprob;
    ls->n_top[ev->id][k] = ev->n_top;

    for (j = 0; j < ev->n_top && j < 4; j++) {
        ls->top_id[ev->id][k][j] = ev->top_ids[j];
        ls->top_lp[ev->id][k][j] = ev->top_logprobs[j];
    }
}


/*
 * Requests 0-2 greedy over 12 tokens, one at a time then together:
 * 0 without log-probabilities, 1 with 4 alternatives, 2 with none (the
 * token's own only). 3 sampled with 4 alternatives, 4 sampled without
 * (drawn by the backend, beside the rows the host samples).
 */
static void
test_logprobs(void)
{
    int                   i, k, j, bad, order, run;
    int32_t               prompt[5] = { 11, 7, 42, 9, 30 };
    slora_err_t           err;
    slora_engine_t       *e;
    slora_request_t       req;
    slora_engine_conf_t   conf;
    static lp_sink_t      alone, together;

    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.n_threads = 1;

    e = tiny_engine_up(&conf, "logprobs: engine up");
    if (e == NULL) {
        return;
    }

    memset(&req, 0, sizeof(req));
    req.prompt = prompt;
    req.n_prompt = 5;
    req.sampling.top_p = 1;
    req.sampling.max_tokens = 12;

    for (run = 0; run < 2; run++) {
        for (i = 0; i < 5; i++) {
            req.id = (uint64_t) i;
            req.logprobs = i > 0 && i < 4;
            req.top_logprobs = i == 2 ? 0 : 4;
            req.sampling.temperature = i >= 3 ? 0.8f : 0;
            req.sampling.seed = 5;
            if (!ok(slora_engine_submit(e, &req, &err) == SLORA_OK,
                    "logprobs: submit %d, run %d", i, run))
            {
                diag("%s", err.msg);
            }

            if (run == 0) {
                while (slora_engine_step(e, on_logprob, &alone) == SLORA_OK) {
                    /* alone */
                }
            }
        }

        if (run == 1) {
            while (slora_engine_step(e, on_logprob, &together) == SLORA_OK) {
                /* together */
            }
        }
    }

    ok(alone.n[0] == 12 && alone.n[1] == 12 && alone.n[2] == 12
       && memcmp(alone.token[0], alone.token[1], 12 * sizeof(int32_t)) == 0
       && memcmp(alone.token[0], alone.token[2], 12 * sizeof(int32_t)) == 0,
       "greedy: the same 12 tokens with log-probabilities as without");
    ok(alone.lp[0][0] == 0 && alone.n_top[0][0] == 0,
       "without logprobs the events carry none");

    bad = 0;
    order = 0;

    for (k = 0; k < 12; k++) {
        bad += alone.n_top[1][k] != 4 || alone.top_id[1][k][0]
               != alone.token[1][k] || alone.top_lp[1][k][0] != alone.lp[1][k]
               || !(alone.lp[1][k] <= 0) || alone.lp[2][k] != alone.lp[1][k]
               || alone.n_top[2][k] != 0;

        for (j = 1; j < 4; j++) {
            order += !(alone.top_lp[1][k][j] <= alone.top_lp[1][k][j - 1]);
        }
    }

    ok(bad == 0 && order == 0, "greedy: each token the likeliest of 4 "
       "alternatives, likeliest first, its log-probability theirs and <= 0, "
       "the same with no alternatives asked (%d wrong, %d out of order)",
       bad, order);

    bad = 0;

    for (k = 0; k < alone.n[3]; k++) {
        for (j = 0; j < 4; j++) {
            bad += alone.top_id[3][k][j] == alone.token[3][k]
                   && alone.top_lp[3][k][j] != alone.lp[3][k];
        }

        bad += alone.lp[3][k] > alone.top_lp[3][k][0];
    }

    ok(alone.n[3] == 12 && bad == 0, "sampled: a token among the "
       "alternatives has their figure, none is likelier than the first");

    bad = 0;

    for (i = 0; i < 5; i++) {
        bad += together.n[i] != alone.n[i]
               || memcmp(together.token[i], alone.token[i],
                         sizeof(alone.token[i])) != 0
               || memcmp(together.top_id[i], alone.top_id[i],
                         sizeof(alone.top_id[i])) != 0;

        for (k = 0; k < alone.n[i]; k++) {
            bad += fabsf(together.lp[i][k] - alone.lp[i][k]) > 1e-4f;
        }
    }

    is_int(bad, 0, "batched, the same tokens, alternatives and "
           "log-probabilities as alone, the backend's draw among them");

    req.id = 9;
    req.logprobs = 1;
    req.top_logprobs = SLORA_LOGPROBS_MAX + 1;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "top_logprobs 21 not in [0, 20]") != NULL,
       "top_logprobs past the most: %s", err.msg);

    slora_engine_free(e);
}


static void
test_slo_arrival(void)
{
    int                   i;
    int32_t               prompt[8];
    slora_err_t           err;
    slora_engine_t       *e;
    slora_request_t       req;
    slora_engine_conf_t   conf;
    static sink_t         s;

    for (i = 0; i < 8; i++) {
        prompt[i] = (i * 13 + 3) % mcfg.vocab;
    }

    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.n_threads = 2;
    conf.schedule = "slo";
    conf.slo_ttft_ms = 1000;

    e = slora_engine_init(&conf, &err);
    if (!ok(e != NULL, "slo: engine up")) {
        diag("%s", err.msg);
        return;
    }

    memset(&s, 0, sizeof(s));
    memset(&req, 0, sizeof(req));
    req.prompt = prompt;
    req.n_prompt = 8;
    req.sampling.top_p = 1;
    req.sampling.repeat_penalty = 1;
    req.sampling.max_tokens = 4;

    /* steps to learn from */
    req.id = 1;
    (void) slora_engine_submit(e, &req, &err);
    drain(e, &s, 100);

    req.id = 2;
    req.arrived_ns = slora_now_ns() - 2000000000LL;
    (void) slora_engine_submit(e, &req, &err);
    req.id = 3;
    req.arrived_ns = 0;
    (void) slora_engine_submit(e, &req, &err);
    drain(e, &s, 100);

    ok(s.done[1] && s.n[1] == 4, "slo: the first request ran");
    ok(s.failed[2] == 1 && !s.done[2] && strstr(s.last_error, "SLO")
       != NULL, "slo: the one that arrived 2 s ago is refused: %s",
       s.last_error);
    ok(s.done[3] && s.n[3] == 4 && s.failed[3] == 0, "slo: the one beside "
       "it, arrived now, runs");

    slora_engine_free(e);
}
