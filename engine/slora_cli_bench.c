/*
 * slora_cli_bench.c: `slora bench`, engine-only throughput: random prompts
 * of fixed length over the adapters of a folder (round robin; the base
 * model when no folder is given), generation of a fixed length with no
 * stop (S-LoRA's ignore_eos), first one request alone, then N requests
 * with C in flight.
 *
 * The one idea: the same engine and the same requests measured twice, one
 * stream and then many, so the batching gain is read off directly and no
 * tokenizer or HTTP cost is in the figures.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_cli.h"
#include "slora_engine.h"
#include "slora_sampler.h"


typedef struct {
    int32_t     in_flight;
    int32_t     finished;
    int32_t     failed;
    uint64_t    generated;
} slora_bench_state_t;


static const char  slora_bench_usage[] =
    "usage: slora bench --model M [options]\n"
    "\n"
    "Engine-only throughput: requests of random token ids, no tokenizer.\n"
    "\n"
    "  --model M             GGUF file or HF folder\n"
    "  --adapters DIR        adapters (sub-folders), used round robin;\n"
    "                        without it, the base model\n"
    "  --requests N          requests in the batched run (64)\n"
    "  --concurrency C       requests in flight at once (16)\n"
    "  --prompt-len P        prompt tokens (64)\n"
    "  --gen G               generated tokens per request (32)\n"
    "  --threads T           CPU threads (all cores)\n";


static int slora_bench_num(const char *s, long min, long max, int32_t *out);
static int slora_bench_submit(slora_engine_t *e, uint64_t id,
    const char *adapter, int32_t prompt_len, int32_t gen, int32_t vocab,
    slora_rng_t *rng, int32_t *buf);
static void slora_bench_event(void *data, const slora_event_t *ev);


int
slora_cli_bench(int argc, char **argv)
{
    int                    i, rc;
    double                 single, batched, secs, step_ms;
    int32_t                n_req, conc, plen, gen, n_names, *buf, submitted;
    int32_t                vocab;
    int64_t                t0, step_ns;
    uint64_t               steps0;
    const char            *opt, *val, *model, *dir, **names, *adapter;
    slora_err_t            err;
    slora_rng_t            rng;
    slora_model_t         *m;
    slora_engine_t        *e;
    slora_bench_state_t    bs;
    slora_engine_conf_t    conf;
    slora_engine_stats_t   st;

    model = NULL;
    dir = NULL;
    n_req = 64;
    conc = 16;
    plen = 64;
    gen = 32;
    memset(&conf, 0, sizeof(conf));

    for (i = 1; i < argc; i++) {
        opt = argv[i];

        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            fputs(slora_bench_usage, stdout);
            return 0;
        }

        if (i + 1 >= argc) {
            fprintf(stderr, "slora bench: %s needs a value (see --help)\n",
                    opt);
            return 1;
        }

        val = argv[++i];
        rc = SLORA_OK;

        if (strcmp(opt, "--model") == 0) {
            model = val;

        } else if (strcmp(opt, "--adapters") == 0) {
            dir = val;

        } else if (strcmp(opt, "--requests") == 0) {
            rc = slora_bench_num(val, 1, 1000000, &n_req);

        } else if (strcmp(opt, "--concurrency") == 0) {
            rc = slora_bench_num(val, 1, 4096, &conc);

        } else if (strcmp(opt, "--prompt-len") == 0) {
            rc = slora_bench_num(val, 1, 1 << 20, &plen);

        } else if (strcmp(opt, "--gen") == 0) {
            rc = slora_bench_num(val, 1, 1 << 20, &gen);

        } else if (strcmp(opt, "--threads") == 0) {
            rc = slora_bench_num(val, 1, 1024, &conf.n_threads);

        } else {
            fprintf(stderr, "slora bench: unknown option %s (see --help)\n",
                    opt);
            return 1;
        }

        if (rc != SLORA_OK) {
            fprintf(stderr, "slora bench: %s \"%s\": bad value\n", opt, val);
            return 1;
        }
    }

    if (model == NULL) {
        fprintf(stderr, "slora bench: --model is needed (see --help)\n");
        return 1;
    }

    conf.model_path = model;
    conf.adapter_dir = dir;
    conf.max_running = conc;
    conf.max_batch_tokens = plen + conc > 512 ? plen + conc : 512;
    conf.max_waiting = conc;
    conf.max_ctx = plen + gen;

    /* K/V for every request in flight at full length, twice over: the
     * other half holds the adapters (the engine's default assumes half
     * lengths and would preempt) */
    m = slora_model_load(model, &err);
    if (m == NULL) {
        fprintf(stderr, "slora bench: %s\n", err.msg);
        return 1;
    }
    conf.pool_bytes = (size_t) m->cfg.n_layers * 2 * (size_t) m->cfg.n_kv_heads
                      * (size_t) m->cfg.head_dim * sizeof(float)
                      * (size_t) conc * (size_t) (plen + gen + 32) * 2;
    slora_model_free(m);

    e = slora_engine_init(&conf, &err);
    if (e == NULL) {
        fprintf(stderr, "slora bench: %s\n", err.msg);
        return 1;
    }

    n_names = slora_engine_adapters(e, &names);
    if (dir != NULL && n_names == 0) {
        fprintf(stderr, "slora bench: %s holds no adapter folder\n", dir);
        slora_engine_free(e);
        return 1;
    }

    vocab = slora_engine_model_config(e)->vocab;
    buf = malloc((size_t) plen * sizeof(int32_t));
    if (buf == NULL) {
        slora_engine_free(e);
        return 1;
    }

    slora_rng_seed(&rng, 42);
    memset(&bs, 0, sizeof(bs));
    rc = 1;

    /* one stream */

    adapter = n_names > 0 ? names[0] : NULL;
    t0 = slora_now_ns();

    if (slora_bench_submit(e, 0, adapter, plen, gen, vocab, &rng, buf)
        != SLORA_OK)
    {
        goto done;
    }
    bs.in_flight = 1;

    while (slora_engine_step(e, slora_bench_event, &bs) == SLORA_OK) {
        /* until done */
    }

    secs = (double) (slora_now_ns() - t0) / 1e9;
    single = (double) bs.generated / secs;

    if (bs.failed) {
        goto done;
    }

    printf("single stream: %llu tokens in %.2f s: %.1f tokens/s "
           "(prompt %d, adapter %s)\n", (unsigned long long) bs.generated,
           secs, single, plen, adapter ? adapter : "none");

    /* many */

    memset(&bs, 0, sizeof(bs));
    slora_engine_stats(e, &st);
    steps0 = st.steps;
    step_ns = 0;
    submitted = 0;
    t0 = slora_now_ns();

    while (bs.finished + bs.failed < n_req) {
        while (bs.in_flight < conc && submitted < n_req) {
            adapter = n_names > 0 ? names[submitted % n_names] : NULL;
            if (slora_bench_submit(e, (uint64_t) submitted + 1, adapter,
                                   plen, gen, vocab, &rng, buf)
                != SLORA_OK)
            {
                goto done;
            }
            submitted++;
            bs.in_flight++;
        }

        if (slora_engine_step(e, slora_bench_event, &bs) == SLORA_ERROR) {
            fprintf(stderr, "slora bench: a step failed\n");
            goto done;
        }

        slora_engine_stats(e, &st);
        step_ns += st.last_step_ns;
    }

    secs = (double) (slora_now_ns() - t0) / 1e9;
    batched = (double) bs.generated / secs;
    slora_engine_stats(e, &st);
    step_ms = st.steps > steps0
              ? (double) step_ns / 1e6 / (double) (st.steps - steps0) : 0;

    printf("batched: %d requests, %d in flight, %d adapter%s: %llu tokens "
           "in %.2f s: %.1f tokens/s generated, %.1f tokens/s with "
           "prompts\n", n_req, conc, n_names, n_names == 1 ? "" : "s",
           (unsigned long long) bs.generated, secs, batched,
           ((double) bs.generated + (double) n_req * plen) / secs);
    printf("steps: %llu, mean %.2f ms; adapter loads %llu, evictions %llu, "
           "preemptions %llu; failed requests %d\n",
           (unsigned long long) (st.steps - steps0), step_ms,
           (unsigned long long) st.adapter_loads,
           (unsigned long long) st.adapter_evictions,
           (unsigned long long) st.preemptions, bs.failed);
    printf("batched / single stream: %.2fx\n", batched / single);

    rc = bs.failed ? 1 : 0;

done:

    free(buf);
    slora_engine_free(e);

    return rc;
}


static int
slora_bench_submit(slora_engine_t *e, uint64_t id, const char *adapter,
    int32_t prompt_len, int32_t gen, int32_t vocab, slora_rng_t *rng,
    int32_t *buf)
{
    int32_t          i;
    slora_err_t      err;
    slora_request_t  req;

    for (i = 0; i < prompt_len; i++) {
        buf[i] = (int32_t) (slora_rng_next(rng) % (uint64_t) vocab);
    }

    memset(&req, 0, sizeof(req));
    req.id = id;
    req.adapter = adapter;
    req.prompt = buf;
    req.n_prompt = prompt_len;
    req.sampling.max_tokens = gen;
    req.sampling.top_p = 1;
    req.sampling.repeat_penalty = 1;

    if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
        fprintf(stderr, "slora bench: %s\n", err.msg);
        return SLORA_ERROR;
    }

    return SLORA_OK;
}


static void
slora_bench_event(void *data, const slora_event_t *ev)
{
    slora_bench_state_t  *bs = data;

    switch (ev->type) {

    case SLORA_EV_TOKEN:
        bs->generated++;
        break;

    case SLORA_EV_DONE:
        bs->in_flight--;
        bs->finished++;
        break;

    case SLORA_EV_ERROR:
        fprintf(stderr, "slora bench: request %llu: %s\n",
                (unsigned long long) ev->id, ev->error);
        bs->in_flight--;
        bs->failed++;
        break;
    }
}


static int
slora_bench_num(const char *s, long min, long max, int32_t *out)
{
    long   v;
    char  *end;

    errno = 0;
    v = strtol(s, &end, 10);

    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return SLORA_ERROR;
    }

    *out = (int32_t) v;
    return SLORA_OK;
}
