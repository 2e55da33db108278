/*
 * slora_cli_bench.c: `slora bench`, engine-only throughput: random prompts
 * of fixed length over the adapters of a folder (round robin; the base
 * model when no folder is given), generation of a fixed length with no
 * stop (S-LoRA's ignore_eos), first one request alone, then N requests
 * with C in flight. With --preload 1 every adapter is read into the host
 * tier first, untimed, as in S-LoRA's measurements.
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


/* What the requests of a run carry besides their random prompts. */
typedef struct {
    int32_t     penalized;          /* the first K: a presence penalty */
    int32_t     shared;             /* prompt tokens every request shares
                                       (a system prompt), at the start */
    float       temperature;        /* 0: greedy; else drawn at it, each
                                       request seeded by its id */
    float       top_p;
    int32_t     long_len;           /* the first request of a run: a
                                       prompt of this many tokens (one
                                       long context among short ones);
                                       0: the others' */
} slora_bench_prompts_t;


typedef struct {
    uint64_t    steps0;
    uint64_t    prefix_hits0;
    uint64_t    loads0;             /* the stats when the run began */
    uint64_t    uploads0;
    uint64_t    warmed0;
    uint64_t    host_hits0;
    uint64_t    evictions0;
    uint64_t    preemptions0;
    uint64_t    drafts_taken;       /* --lookup: drafted tokens taken */
    uint64_t    drafts_left;        /* and computed, not taken (the
                                       run's, from the stats' counts) */
    int64_t     total_ns;           /* every step */
    int64_t     dec_ns;             /* decode-only steps */
    int64_t     dec_dev_ns;         /* their device part */
    int64_t     dec_rows_ns;        /* their host rows */
    uint64_t    dec_steps;
    int64_t     full_ns;            /* decode-only steps of every request
                                       in flight (concurrency of them):
                                       a step at the batch named */
    uint64_t    full_steps;
    uint64_t    dec_tokens;
    int32_t     dec_most;           /* the most rows a decode-only step
                                       decoded */
    uint64_t    generated;
    int32_t     failed;
    double      secs;
} slora_bench_result_t;


static const char  slora_bench_usage[] =
    "usage: slora bench --model M [options]\n"
    "\n"
    "Engine-only throughput: requests of random token ids, no tokenizer.\n"
    "\n"
    "  --model M             GGUF file or HF folder\n"
    "  --adapters DIR        adapters (sub-folders), used round robin;\n"
    "                        without it, the base model; or a catalog\n"
    "                        made in memory: random:n=N,ranks=8+16,\n"
    "                        targets=q+k+v+o (r0000 .. )\n"
    "  --requests N          requests in the batched run (64)\n"
    "  --concurrency C       requests in flight at once (16)\n"
    "  --prompt-len P        prompt tokens (64)\n"
    "  --long-prompt L       the first request of each run has L prompt\n"
    "                        tokens, the rest P: one long context among\n"
    "                        short ones (0: none)\n"
    "  --gen G               generated tokens per request (32)\n"
    "  --threads T           CPU threads (all cores)\n"
    "  --device D            cpu (default), cuda or cuda:N\n"
    "  --tp N                tensor parallel over N GPUs from D on (1)\n"
    "  --pool MIB            the pool's size (default: the engine's on a\n"
    "                        device, room for every request on the CPU)\n"
    "  --host-cache MIB      the host tier's budget (default: 16384 on a\n"
    "                        device, the engine's 1024 on the CPU)\n"
    "  --preload 1           before anything is timed, read every adapter\n"
    "                        into the host tier (as many as its budget\n"
    "                        holds; says how many, and how long it took),\n"
    "                        so the runs only copy adapters from host\n"
    "                        memory to the pool, as S-LoRA measures (0)\n"
    "  --prefetch-threads N  threads that read adapters ahead of need\n"
    "                        (0: the engine's default, half the cores, 1\n"
    "                        to 4)\n"
    "  --single 0            skip the single-stream run\n"
    "  --penalized K         the first K requests of each run carry a\n"
    "                        presence penalty (0.5), so their rows are\n"
    "                        sampled on the host (0)\n"
    "  --temperature T       every request drawn at T, seeded by its id\n"
    "                        (0: greedy, the default)\n"
    "  --top-p P             and cut to its top P (1: no cut)\n"
    "  --shared-prefix N     the first N tokens of every prompt are the\n"
    "                        same (a system prompt) (0)\n"
    "  --prefix-cache 0      every prompt computed whole: no KV pages kept\n"
    "                        and shared between requests (1)\n"
    "  --step-tokens N       a step's token budget (prompt + in flight, at\n"
    "                        least 512)\n"
    "  --lookup 1            every request drafts from its own tokens\n"
    "                        (speculate=lookup, whatever the number in\n"
    "                        flight) and the engine checks the drafts:\n"
    "                        the same greedy tokens in fewer steps where\n"
    "                        the output repeats its prompt or itself;\n"
    "                        each run says how many drafted tokens were\n"
    "                        taken (0)\n"
    "  --batches LIST        instead of the batched run, one run per batch\n"
    "                        size (requests = in flight = B), base model\n"
    "                        then adapters, one line each: the mean\n"
    "                        decode-only step (the last, with fewer\n"
    "                        requests left, among them) and its time on\n"
    "                        the device; the full step, the mean of those\n"
    "                        with all B decoding (a step at batch B);\n"
    "                        where no step held all B (the pool too\n"
    "                        small), a line after the row says so\n"
    "\n"
    "The batched run's adapter figures are its own: loads (read or made\n"
    "into host memory), uploads (host memory to the pool; how many found\n"
    "their image already there), pool evictions, preemptions.\n";


static int slora_bench_num(const char *s, long min, long max, int32_t *out);
static int slora_bench_batched(slora_engine_t *e, int32_t n_req,
    int32_t conc, const char **names, int32_t n_names, int32_t plen,
    int32_t gen, int32_t vocab, const slora_bench_prompts_t *pr,
    slora_rng_t *rng, int32_t *buf, slora_bench_result_t *res);
static void slora_bench_print(slora_engine_t *e,
    const slora_bench_result_t *res);
static void slora_bench_drafts(const slora_bench_result_t *res);
static int slora_bench_submit(slora_engine_t *e, uint64_t id,
    const char *adapter, int32_t prompt_len, int32_t gen, int32_t vocab,
    const slora_bench_prompts_t *pr, int penalized, slora_rng_t *rng,
    int32_t *buf);
static void slora_bench_event(void *data, const slora_event_t *ev);


int
slora_cli_bench(int argc, char **argv)
{
    int                    i, k, rc, step;
    double                 single, secs, v;
    int32_t                n_req, conc, plen, gen, n_names, *buf, vocab;
    int32_t                pool_mib, do_single, batches[16], n_batches,
                           prefix_cache, lookup;
    int32_t                step_tokens, host_mib, preload, loaded, longest;
    int64_t                t0;
    const char            *opt, *val, *model, *dir, **names, *adapter;
    slora_err_t            err;
    slora_rng_t            rng;
    slora_model_config_t   cfg;
    slora_bench_prompts_t  pr, none;
    slora_engine_t        *e;
    slora_bench_state_t    bs;
    slora_engine_conf_t    conf;
    slora_engine_stats_t   st;
    slora_bench_result_t   res;

    model = NULL;
    dir = NULL;
    n_req = 64;
    conc = 16;
    plen = 64;
    gen = 32;
    do_single = 1;
    pool_mib = 0;
    n_batches = 0;
    memset(&pr, 0, sizeof(pr));
    pr.top_p = 1;
    memset(&none, 0, sizeof(none));
    none.top_p = 1;
    prefix_cache = 1;
    step_tokens = 0;
    host_mib = 0;
    preload = 0;
    lookup = 0;
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

        } else if (strcmp(opt, "--device") == 0) {
            conf.device = val;

        } else if (strcmp(opt, "--tp") == 0) {
            rc = slora_bench_num(val, 1, 64, &conf.tensor_parallel);

        } else if (strcmp(opt, "--pool") == 0) {
            rc = slora_bench_num(val, 1, 1 << 30, &pool_mib);
            conf.pool_bytes = (size_t) pool_mib << 20;

        } else if (strcmp(opt, "--host-cache") == 0) {
            rc = slora_bench_num(val, 1, 1 << 30, &host_mib);
            conf.host_cache_bytes = (size_t) host_mib << 20;

        } else if (strcmp(opt, "--preload") == 0) {
            rc = slora_bench_num(val, 0, 1, &preload);

        } else if (strcmp(opt, "--prefetch-threads") == 0) {
            rc = slora_bench_num(val, 0, 16, &conf.prefetch_threads);

        } else if (strcmp(opt, "--batches") == 0) {
            rc = slora_cli_int_list(val, 1, 4096, batches, 16, &n_batches);

        } else if (strcmp(opt, "--step-tokens") == 0) {
            rc = slora_bench_num(val, 1, 1 << 20, &step_tokens);

        } else if (strcmp(opt, "--single") == 0) {
            rc = slora_bench_num(val, 0, 1, &do_single);

        } else if (strcmp(opt, "--penalized") == 0) {
            rc = slora_bench_num(val, 0, 1 << 20, &pr.penalized);

        } else if (strcmp(opt, "--temperature") == 0) {
            rc = slora_cli_number(val, 0, 100, &v);
            pr.temperature = (float) v;

        } else if (strcmp(opt, "--top-p") == 0) {
            rc = slora_cli_number(val, 0, 1, &v);
            pr.top_p = (float) v;

        } else if (strcmp(opt, "--shared-prefix") == 0) {
            rc = slora_bench_num(val, 0, 1 << 20, &pr.shared);

        } else if (strcmp(opt, "--long-prompt") == 0) {
            rc = slora_bench_num(val, 0, 1 << 20, &pr.long_len);

        } else if (strcmp(opt, "--prefix-cache") == 0) {
            rc = slora_bench_num(val, 0, 1, &prefix_cache);

        } else if (strcmp(opt, "--lookup") == 0) {
            rc = slora_bench_num(val, 0, 1, &lookup);

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

    if (pr.shared > plen) {
        fprintf(stderr, "slora bench: --shared-prefix %d is longer than "
                "the prompt (%d)\n", pr.shared, plen);
        return 1;
    }

    conf.no_prefix_cache = !prefix_cache;

    conf.model_path = model;
    conf.adapter_dir = dir;
    for (i = 0; i < n_batches; i++) {
        conc = batches[i] > conc ? batches[i] : conc;
    }

    conf.max_running = conc;
    conf.draft_lookup = lookup;
    conf.lookup_running = lookup ? conc : 0;
    conf.max_batch_tokens = plen + conc > 512 ? plen + conc : 512;
    if (step_tokens > conf.max_batch_tokens) {
        conf.max_batch_tokens = step_tokens;
    }
    conf.max_waiting = conc;
    longest = pr.long_len > plen ? pr.long_len : plen;
    conf.max_ctx = longest + gen;

    /* a device's pool holds every adapter; the host tier should too */
    if (host_mib == 0 && conf.device != NULL
        && strcmp(conf.device, "cpu") != 0)
    {
        conf.host_cache_bytes = (size_t) 16 << 30;
    }

    /* K/V for every request in flight at full length, twice over: the
     * other half holds the adapters (the engine's default assumes half
     * lengths and would preempt) */
    if (conf.pool_bytes == 0
        && (conf.device == NULL || strcmp(conf.device, "cpu") == 0))
    {
        if (slora_model_config(model, &cfg, &err) != SLORA_OK) {
            fprintf(stderr, "slora bench: %s\n", err.msg);
            return 1;
        }
        conf.pool_bytes = (size_t) cfg.n_layers * 2
                          * (size_t) cfg.n_kv_heads
                          * (size_t) cfg.head_dim * sizeof(float)
                          * (size_t) conc * (size_t) (longest + gen + 32)
                          * 2;
    }

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
    buf = malloc((size_t) longest * sizeof(int32_t));
    if (buf == NULL) {
        slora_engine_free(e);
        return 1;
    }

    slora_rng_seed(&rng, 42);
    memset(&bs, 0, sizeof(bs));
    rc = 1;

    /* every adapter in host memory before anything is timed */

    if (preload) {
        t0 = slora_now_ns();

        if (slora_engine_preload(e, &loaded, &err) != SLORA_OK) {
            fprintf(stderr, "slora bench: preload: %s\n", err.msg);
            goto done;
        }

        secs = (double) (slora_now_ns() - t0) / 1e9;
        slora_engine_stats(e, &st);

        printf("preload: %d of %d adapters in host memory, %.1f of %.0f "
               "MiB, in %.2f s\n", loaded, n_names,
               (double) st.host_bytes / (double) (1 << 20),
               (double) st.host_budget / (double) (1 << 20), secs);
        fflush(stdout);
    }

    /* one stream */

    single = 0;

    if (do_single) {
        adapter = n_names > 0 ? names[0] : NULL;
        t0 = slora_now_ns();

        if (slora_bench_submit(e, 0, adapter, plen, gen, vocab, &pr, 0,
                               &rng, buf)
            != SLORA_OK)
        {
            goto done;
        }
        bs.in_flight = 1;

        do {
            step = slora_cli_step(e, slora_bench_event, &bs);
        } while (step == SLORA_OK || step == SLORA_AGAIN);

        secs = (double) (slora_now_ns() - t0) / 1e9;
        single = (double) bs.generated / secs;

        if (bs.failed) {
            goto done;
        }

        printf("single stream: %llu tokens in %.2f s: %.1f tokens/s "
               "(prompt %d, adapter %s)\n",
               (unsigned long long) bs.generated, secs, single, plen,
               adapter ? adapter : "none");
    }

    /* many: one run, or with --batches one run per size, base model
     * then adapters */

    if (n_batches == 0) {
        rc = slora_bench_batched(e, n_req, conc, names, n_names, plen, gen,
                                 vocab, &pr, &rng, buf, &res);
        if (rc == SLORA_OK) {
            printf("batched: %d requests, %d in flight, %d adapter%s: %llu "
                   "tokens in %.2f s: %.1f tokens/s generated, %.1f "
                   "tokens/s with prompts\n", n_req, conc, n_names,
                   n_names == 1 ? "" : "s",
                   (unsigned long long) res.generated, res.secs,
                   (double) res.generated / res.secs,
                   ((double) res.generated + (double) n_req * plen
                    + (pr.long_len > 0 ? pr.long_len - plen : 0))
                   / res.secs);
            slora_bench_print(e, &res);

            if (single > 0) {
                printf("batched / single stream: %.2fx\n",
                       (double) res.generated / res.secs / single);
            }
        }

        rc = rc == SLORA_OK ? 0 : 1;
        goto done;
    }

    /* every adapter resident before anything is timed, as HF PEFT's
     * are: one short request each */
    if (n_names > 0
        && slora_bench_batched(e, n_names, n_names < conc ? n_names : conc,
                               names, n_names, plen < 8 ? plen : 8, 1, vocab,
                               &none, &rng, buf, &res)
           != SLORA_OK)
    {
        rc = 1;
        goto done;
    }

    printf("%6s %9s %14s %12s %12s %12s %12s %12s %12s\n", "batch",
           "adapters", "decode step", "on device", "host rows", "full step",
           "decode tok/s", "overall tok/s", "prefill s");

    for (i = 0; i < n_batches; i++) {
        for (k = 0; k < (n_names > 0 ? 2 : 1); k++) {
            if (slora_bench_batched(e, batches[i], batches[i], names,
                                    k == 0 ? 0 : n_names, plen, gen, vocab,
                                    &pr, &rng, buf, &res)
                != SLORA_OK)
            {
                rc = 1;
                goto done;
            }

            printf("%6d %9d %11.3f ms %9.3f ms %9.3f ms %9.3f ms %12.1f "
                   "%12.1f %12.3f\n",
                   batches[i], k == 0 ? 0 : n_names,
                   res.dec_steps > 0 ? (double) res.dec_ns / 1e6
                                       / (double) res.dec_steps : 0.0,
                   res.dec_steps > 0 ? (double) res.dec_dev_ns / 1e6
                                       / (double) res.dec_steps : 0.0,
                   res.dec_steps > 0 ? (double) res.dec_rows_ns / 1e6
                                       / (double) res.dec_steps : 0.0,
                   res.full_steps > 0 ? (double) res.full_ns / 1e6
                                        / (double) res.full_steps : 0.0,
                   res.dec_ns > 0 ? (double) res.dec_tokens
                                    / ((double) res.dec_ns / 1e9) : 0.0,
                   (double) res.generated / res.secs,
                   (double) (res.total_ns - res.dec_ns) / 1e9);

            if (lookup) {
                printf("batch %d, %d adapters: ", batches[i],
                       k == 0 ? 0 : n_names);
                slora_bench_drafts(&res);
            }

            /* a batch the pool could not hold in flight at once: its
             * steps are of smaller batches, and the row must say so */
            if (res.dec_steps > 0 && res.full_steps == 0) {
                printf("batch %d: no step decoded all %d at once (at most "
                       "%d: the pool's room), so the row above is of "
                       "smaller batches\n", batches[i], batches[i],
                       res.dec_most);
            }

            fflush(stdout);
        }
    }

    rc = 0;

done:

    free(buf);
    slora_engine_free(e);

    return rc;
}


/*
 * n_req requests with conc in flight, adapters round robin (none when
 * n_names is 0), until all are done; decode-only steps (no prefill
 * token in them) are timed apart, since they are what the roofline
 * speaks of.
 */

static int
slora_bench_batched(slora_engine_t *e, int32_t n_req, int32_t conc,
    const char **names, int32_t n_names, int32_t plen, int32_t gen,
    int32_t vocab, const slora_bench_prompts_t *pr, slora_rng_t *rng,
    int32_t *buf, slora_bench_result_t *res)
{
    int32_t                submitted;
    int64_t                t0;
    const char            *adapter;
    slora_bench_state_t    bs;
    slora_engine_stats_t   st;

    memset(&bs, 0, sizeof(bs));
    memset(res, 0, sizeof(*res));
    slora_engine_stats(e, &st);
    res->steps0 = st.steps;
    res->loads0 = st.adapter_loads;
    res->uploads0 = st.adapter_uploads;
    res->warmed0 = st.adapter_warmed;
    res->host_hits0 = st.host_hits;
    res->evictions0 = st.adapter_evictions;
    res->preemptions0 = st.preemptions;
    res->prefix_hits0 = st.prefix_hit_tokens;
    res->drafts_taken = st.lookup_accepted;
    res->drafts_left = st.lookup_rejected;
    submitted = 0;
    t0 = slora_now_ns();

    while (bs.finished + bs.failed < n_req) {
        while (bs.in_flight < conc && submitted < n_req) {
            adapter = n_names > 0 ? names[submitted % n_names] : NULL;
            if (slora_bench_submit(e, (uint64_t) submitted + 1, adapter,
                                   submitted == 0 && pr->long_len > 0
                                   ? pr->long_len : plen, gen, vocab, pr,
                                   submitted < pr->penalized, rng, buf)
                != SLORA_OK)
            {
                return SLORA_ERROR;
            }
            submitted++;
            bs.in_flight++;
        }

        if (slora_cli_step(e, slora_bench_event, &bs) == SLORA_ERROR) {
            fprintf(stderr, "slora bench: a step failed\n");
            return SLORA_ERROR;
        }

        slora_engine_stats(e, &st);
        res->total_ns += st.last_step_ns;

        if (st.last_step_prefill == 0 && st.last_step_decode > 0) {
            res->dec_ns += st.last_step_ns;
            res->dec_dev_ns += st.last_step_device_ns;
            res->dec_rows_ns += st.last_step_rows_ns;
            res->dec_steps++;
            res->dec_tokens += st.last_step_decode;

            if (st.last_step_decode > res->dec_most) {
                res->dec_most = st.last_step_decode;
            }

            if (st.last_step_decode == conc) {
                res->full_ns += st.last_step_ns;
                res->full_steps++;
            }
        }
    }

    res->secs = (double) (slora_now_ns() - t0) / 1e9;
    res->generated = bs.generated;
    res->drafts_taken = st.lookup_accepted - res->drafts_taken;
    res->drafts_left = st.lookup_rejected - res->drafts_left;
    res->failed = bs.failed;

    if (bs.failed) {
        fprintf(stderr, "slora bench: %d requests failed\n", bs.failed);
        return SLORA_ERROR;
    }

    return SLORA_OK;
}


static void
slora_bench_print(slora_engine_t *e, const slora_bench_result_t *res)
{
    slora_engine_stats_t  st;

    slora_engine_stats(e, &st);

    printf("steps: %llu, mean %.2f ms; adapter loads %llu, uploads %llu "
           "(%llu ahead of need, %llu at admission from host memory), "
           "evictions %llu, preemptions %llu\n",
           (unsigned long long) (st.steps - res->steps0),
           st.steps > res->steps0
           ? (double) res->total_ns / 1e6 / (double) (st.steps - res->steps0)
           : 0.0,
           (unsigned long long) (st.adapter_loads - res->loads0),
           (unsigned long long) (st.adapter_uploads - res->uploads0),
           (unsigned long long) (st.adapter_warmed - res->warmed0),
           (unsigned long long) (st.host_hits - res->host_hits0),
           (unsigned long long) (st.adapter_evictions - res->evictions0),
           (unsigned long long) (st.preemptions - res->preemptions0));
    printf("prefix cache: %llu prompt tokens taken from it\n",
           (unsigned long long) (st.prefix_hit_tokens - res->prefix_hits0));

    if (res->drafts_taken + res->drafts_left > 0) {
        printf("lookup: ");
        slora_bench_drafts(res);
    }

    if (res->dec_steps > 0) {
        printf("decode-only steps: %llu, mean %.3f ms at a mean batch of "
               "%.1f; %llu of them full (every request in flight "
               "decoding), mean %.3f ms\n",
               (unsigned long long) res->dec_steps,
               (double) res->dec_ns / 1e6 / (double) res->dec_steps,
               (double) res->dec_tokens / (double) res->dec_steps,
               (unsigned long long) res->full_steps,
               res->full_steps > 0 ? (double) res->full_ns / 1e6
                                     / (double) res->full_steps : 0.0);
    }
}


/* A run's drafts (--lookup), after the caller's label. */
static void
slora_bench_drafts(const slora_bench_result_t *res)
{
    printf("%llu of %llu tokens generated were drafts taken; %llu drafted "
           "tokens computed and not taken\n",
           (unsigned long long) res->drafts_taken,
           (unsigned long long) res->generated,
           (unsigned long long) res->drafts_left);
}


static int
slora_bench_submit(slora_engine_t *e, uint64_t id, const char *adapter,
    int32_t prompt_len, int32_t gen, int32_t vocab,
    const slora_bench_prompts_t *pr, int penalized, slora_rng_t *rng,
    int32_t *buf)
{
    int32_t          i;
    slora_err_t      err;
    slora_rng_t      same;
    slora_request_t  req;

    /* the shared part from a generator of its own, the same each time */
    slora_rng_seed(&same, 7);

    for (i = 0; i < prompt_len; i++) {
        buf[i] = (int32_t) (slora_rng_next(i < pr->shared ? &same : rng)
                            % (uint64_t) vocab);
    }

    memset(&req, 0, sizeof(req));
    req.id = id;
    req.adapter = adapter;
    req.prompt = buf;
    req.n_prompt = prompt_len;
    req.sampling.max_tokens = gen;
    req.sampling.temperature = pr->temperature;
    req.sampling.top_p = pr->top_p;
    req.sampling.repeat_penalty = 1;
    req.sampling.presence_penalty = penalized ? 0.5f : 0;
    req.sampling.seed = id;

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

    case SLORA_EV_SCORE:
        /* none of its requests asks for a prompt's log-probabilities */
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
