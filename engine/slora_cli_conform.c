/*
 * slora_cli_conform.c: `slora conform`, one backend held to another on a
 * whole model: the same greedy requests (prompts of seeded random ids,
 * each with an adapter of a folder in turn, the first with none) run
 * alone and then all in one batch, on the device under test and on the
 * reference (the CPU backend by default). It prints where each request's
 * tokens part, if they do, and exits 0 only when every request gives the
 * same tokens everywhere. A CPU reference runs the exact f32 weights.
 *
 * The one idea: "alone" and "batched" on one device isolate the batching
 * (the mixed-adapter kernels, the page tables); device against reference
 * isolates the arithmetic. A parting that only happens across devices,
 * late, is the sign of a near-tie, bf16 against f32; one between alone
 * and batched on the same device is a bug in how a batch is put together,
 * unless it too falls on a near-tie. Every run reports the margin of each
 * greedy choice (top logit less the second), so a parting shows how near
 * the tie was. Adapters are read into host memory before the first
 * request, so the batched requests start in the same step every run.
 *
 * How near is near is measured, not assumed: over the steps where two
 * runs still agree, each choice's margin on one run less its margin on
 * the other is the noise their arithmetic puts between them (its drift).
 * A parting at a reference margin no larger than the largest drift seen
 * at agreeing steps is a near-tie by that measure; one at a larger
 * margin is not, and the verdict line says which. --weights q8_0 puts
 * the CPU's quantized path under test against its exact one, a pair
 * with known drift.
 *
 * --sample T makes the requests sampled instead (temperature T, top-k 40,
 * top-p 0.95, min-p 0.05 on the odd-numbered, a seed each). The device
 * under test then draws them where
 * its backend can (on a GPU: slora_sample.cu), while the reference, which
 * takes every row's logits to report margins, draws them on the host
 * with the CPU twin. Against a reference on the same device, so on the
 * same logits, every token must be equal.
 *
 * --logprobs makes the odd-numbered requests ask for their tokens'
 * log-probabilities, and their prompts' (every prompt position's logits
 * row, as echo asks), and prints, over the tokens where two runs agree
 * and over every prompt position, how far apart those are: the device's
 * figures against the reference's. A run that does not score a prompt's
 * every position, once and in order, fails the verdict.
 *
 * --penalties F,P,R gives the odd-numbered requests OpenAI's frequency
 * and presence penalties F and P and the repetition penalty R.
 *
 * Either way those requests are sampled on the host from their logits
 * rows, which a GPU copies back, while the others' ids stay the
 * backend's: the batched runs mix the two in every step.
 *
 * With adapters, one more run says whether they matter: the reference
 * alone with none. Adapters that move no request's tokens from the base
 * model's would let a broken LoRA path pass (bf16's drift and a small
 * scale can hide wrong columns), so such a run is no evidence; the
 * verdict then says ADAPTERS INERT and the exit status is 3.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_cli.h"
#include "slora_engine.h"
#include "slora_sampler.h"


#define SLORA_CONFORM_MAX  256


typedef struct {
    int32_t    *out;            /* [n_req, gen] */
    int32_t    *n_out;          /* [n_req] */
    float      *margin;         /* [n_req, gen]: the reference's */
    float      *logprob;        /* [n_req, gen], with --logprobs */
    float      *score;          /* [n_req, plen]: the prompt's, by
                                   position, with --logprobs */
    int32_t    *n_score;        /* [n_req]: positions scored in order */
    int32_t     plen;
    int32_t     gen;
    float       temperature;    /* 0: greedy */
    uint64_t    lookup_accepted;    /* --lookup: the drafts' tokens taken, */
    uint64_t    lookup_rejected;    /* and not */
    int32_t     done;
    int32_t     failed;
} slora_conform_run_t;


static const char  slora_conform_usage[] =
    "usage: slora conform --model M --device D [options]\n"
    "\n"
    "Runs the same greedy requests alone and batched on device D and on\n"
    "the reference, and compares their tokens. Exits 0 when all are\n"
    "equal, 2 where they part, 3 where the adapters move no request's\n"
    "tokens from the base model's (ADAPTERS INERT: no evidence).\n"
    "\n"
    "  --model M             GGUF file, HF folder or random:<shape>\n"
    "  --device D            the device under test (cuda)\n"
    "  --ref D               the reference device (cpu)\n"
    "  --tp N                GPUs of the device under test (1)\n"
    "  --ref-tp N            GPUs of the reference (1)\n"
    "  --adapters DIR        adapters used in turn (request 0: none)\n"
    "  --requests N          requests (5)\n"
    "  --prompt-len P        prompt tokens (32)\n"
    "  --gen G               generated tokens per request (32)\n"
    "  --threads T           CPU threads of the reference (all cores)\n"
    "  --prefetch-threads N  threads that read adapters ahead of need\n"
    "                        (0: half the cores, 1 to 4)\n"
    "  --weights W           CPU weights of the device under test: f32\n"
    "                        (exact, the default), q8_0 or native (the\n"
    "                        reference on the CPU is always f32)\n"
    "  --sample T            sampled requests at temperature T, top-k 40,\n"
    "                        top-p 0.95 (and min-p 0.05 on the odd-\n"
    "                        numbered), drawn by the device's backend (0:\n"
    "                        greedy)\n"
    "  --logprobs 1          the odd-numbered requests ask for their\n"
    "                        tokens' and prompts' log-probabilities; their\n"
    "                        gaps between runs are printed\n"
    "  --penalties F,P,R     frequency and presence penalties (-2..2) and\n"
    "                        repetition penalty (> 0) of the odd-numbered\n"
    "                        requests (0,0,1: none)\n"
    "  --lookup 1            the device under test drafts from each\n"
    "                        request's own tokens (speculate=lookup, alone\n"
    "                        and batched) and checks the drafts; its\n"
    "                        tokens are still compared with the\n"
    "                        reference's (which runs without)\n";


/* what every run of one conform shares */
typedef struct {
    const char                  *model;
    const slora_model_config_t  *cfg;
    const char                  *dir;       /* adapters, or NULL */
    int32_t                      threads;   /* CPU threads, 0: all */
    int32_t                      loaders;   /* adapter readers, 0: the
                                               engine's default */
    int32_t                      n_req;
    int32_t                      plen;
    const int32_t               *prompts;   /* n_req x plen */
    float                        frequency; /* the penalties */
    float                        presence;
    float                        repetition;
    int                          logprobs;  /* --logprobs */
    int                          lookup;    /* --lookup */
} slora_conform_job_t;


static int slora_conform_device(const slora_conform_job_t *job,
    const char *device, const char *weights, int32_t tp, int32_t batched,
    int32_t margins, slora_conform_run_t *run);
static void slora_conform_event(void *data, const slora_event_t *ev);
static int32_t slora_conform_part(const slora_conform_run_t *a,
    const slora_conform_run_t *b, int32_t r);
static int slora_conform_alloc(slora_conform_run_t *run, int32_t n_req,
    int32_t plen, int32_t gen);
static int slora_conform_drift(const char *what, const slora_conform_run_t *a,
    const slora_conform_run_t *b, int32_t n_req);
static int slora_conform_float_cmp(const void *a, const void *b);
static void slora_conform_lp_gap(const char *what,
    const slora_conform_run_t *a, const slora_conform_run_t *b,
    int32_t n_req);
static int slora_conform_score_gap(const char *what,
    const slora_conform_run_t *a, const slora_conform_run_t *b,
    int32_t n_req);


int
slora_cli_conform(int argc, char **argv)
{
    int                   i, rc, bad;
    long                  v;
    int                   logprobs, lookup;
    double                temperature, pf, pp, pr;
    char                 *end;
    const char           *opt, *val, *model, *device, *ref, *dir, *weights;
    int32_t               n_req, plen, gen, threads, loaders, r, vocab, p,
                          tp, ref_tp;
    int32_t               batch_part, dev_part, moved;
    int32_t              *prompts, *n;
    slora_err_t           err;
    slora_rng_t           rng;
    slora_model_config_t  cfg;
    slora_conform_run_t   runs[5];
    slora_conform_job_t   job, bare;
    static const char    *names[5] = {
        "device alone", "device batched", "reference alone",
        "reference batched", "reference alone without adapters"
    };

    model = NULL;
    device = "cuda";
    ref = "cpu";
    dir = NULL;
    weights = NULL;
    n_req = 5;
    plen = 32;
    gen = 32;
    threads = 0;
    loaders = 0;
    tp = 1;
    ref_tp = 1;
    temperature = 0;
    pf = 0;
    pp = 0;
    pr = 1;
    logprobs = 0;
    lookup = 0;

    for (i = 1; i < argc; i++) {
        opt = argv[i];

        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            fputs(slora_conform_usage, stdout);
            return 0;
        }

        if (i + 1 >= argc) {
            fprintf(stderr, "slora conform: %s needs a value (see --help)\n",
                    opt);
            return 1;
        }

        val = argv[++i];
        v = strtol(val, &end, 10);
        n = NULL;

        if (strcmp(opt, "--model") == 0) {
            model = val;
        } else if (strcmp(opt, "--device") == 0) {
            device = val;
        } else if (strcmp(opt, "--ref") == 0) {
            ref = val;
        } else if (strcmp(opt, "--adapters") == 0) {
            dir = val;
        } else if (strcmp(opt, "--weights") == 0) {
            if (strcmp(val, "f32") != 0 && strcmp(val, "q8_0") != 0
                && strcmp(val, "native") != 0)
            {
                fprintf(stderr, "slora conform: --weights \"%s\": not f32, "
                        "q8_0 or native\n", val);
                return 1;
            }
            weights = val;
        } else if (strcmp(opt, "--requests") == 0) {
            n = &n_req;
        } else if (strcmp(opt, "--prompt-len") == 0) {
            n = &plen;
        } else if (strcmp(opt, "--gen") == 0) {
            n = &gen;
        } else if (strcmp(opt, "--threads") == 0) {
            n = &threads;
        } else if (strcmp(opt, "--prefetch-threads") == 0) {
            if (*end != '\0' || v < 0 || v > 16) {
                fprintf(stderr, "slora conform: %s \"%s\": bad value\n", opt,
                        val);
                return 1;
            }
            loaders = (int32_t) v;
        } else if (strcmp(opt, "--tp") == 0) {
            n = &tp;
        } else if (strcmp(opt, "--ref-tp") == 0) {
            n = &ref_tp;
        } else if (strcmp(opt, "--logprobs") == 0) {
            if (*end != '\0' || v < 0 || v > 1) {
                fprintf(stderr, "slora conform: --logprobs \"%s\": not 0 or "
                        "1\n", val);
                return 1;
            }
            logprobs = (int) v;
        } else if (strcmp(opt, "--lookup") == 0) {
            if (*end != '\0' || v < 0 || v > 1) {
                fprintf(stderr, "slora conform: --lookup \"%s\": not 0 or "
                        "1\n", val);
                return 1;
            }
            lookup = (int) v;
        } else if (strcmp(opt, "--penalties") == 0) {
            if (sscanf(val, "%lf,%lf,%lf%n", &pf, &pp, &pr, &p) != 3
                || val[p] != '\0' || !(pf >= -2 && pf <= 2)
                || !(pp >= -2 && pp <= 2) || !(pr > 0 && pr <= 100))
            {
                fprintf(stderr, "slora conform: --penalties \"%s\": not "
                        "F,P,R with F and P in [-2, 2], R in (0, 100]\n",
                        val);
                return 1;
            }
        } else if (strcmp(opt, "--sample") == 0) {
            temperature = strtod(val, &end);
            if (*end != '\0' || !(temperature >= 0 && temperature <= 10)) {
                fprintf(stderr, "slora conform: --sample \"%s\": bad value\n",
                        val);
                return 1;
            }
        } else {
            fprintf(stderr, "slora conform: unknown option %s (see --help)\n",
                    opt);
            return 1;
        }

        if (n != NULL) {
            if (*end != '\0' || v < 1 || v > 4096
                || (n == &n_req && v > SLORA_CONFORM_MAX))
            {
                fprintf(stderr, "slora conform: %s \"%s\": bad value\n", opt,
                        val);
                return 1;
            }
            *n = (int32_t) v;
        }
    }

    if (model == NULL) {
        fprintf(stderr, "slora conform: --model is needed (see --help)\n");
        return 1;
    }

    if (weights != NULL && strcmp(device, "cpu") != 0) {
        fprintf(stderr, "slora conform: --weights is for a CPU device under "
                "test; %s holds bf16\n", device);
        return 1;
    }

    if (slora_model_config(model, &cfg, &err) != SLORA_OK) {
        fprintf(stderr, "slora conform: %s\n", err.msg);
        return 1;
    }

    vocab = cfg.vocab;
    prompts = malloc((size_t) n_req * (size_t) plen * sizeof(int32_t));
    if (prompts == NULL) {
        return 1;
    }

    slora_rng_seed(&rng, 7);
    for (p = 0; p < n_req * plen; p++) {
        prompts[p] = (int32_t) (slora_rng_next(&rng) % (uint64_t) vocab);
    }

    job.model = model;
    job.cfg = &cfg;
    job.dir = dir;
    job.threads = threads;
    job.loaders = loaders;
    job.n_req = n_req;
    job.plen = plen;
    job.prompts = prompts;
    job.frequency = (float) pf;
    job.presence = (float) pp;
    job.repetition = (float) pr;
    job.logprobs = logprobs;
    job.lookup = lookup;

    memset(runs, 0, sizeof(runs));
    rc = 1;

    for (i = 0; i < 4; i++) {
        /* the reference's rows all come back, with margins; sampled
         * rows of the device under test are its backend's to draw, and
         * with lookup its rows are picked where it drafts (margins keep
         * every row on the host, which drafts skip) */
        runs[i].temperature = (float) temperature;

        if (slora_conform_alloc(&runs[i], n_req, plen, gen) != SLORA_OK
            || slora_conform_device(&job, i < 2 ? device : ref,
                                    i < 2 ? weights : NULL,
                                    i < 2 ? tp : ref_tp, i % 2,
                                    i >= 2 || (temperature == 0 && !lookup),
                                    &runs[i])
               != SLORA_OK)
        {
            fprintf(stderr, "slora conform: the %s run failed\n", names[i]);
            goto done;
        }
    }

    /* the adapters' effect: the reference alone, the same requests with
     * no adapter */
    if (dir != NULL && n_req > 1) {
        bare = job;
        bare.dir = NULL;
        runs[4].temperature = (float) temperature;

        if (slora_conform_alloc(&runs[4], n_req, plen, gen) != SLORA_OK
            || slora_conform_device(&bare, ref, NULL, ref_tp, 0, 1, &runs[4])
               != SLORA_OK)
        {
            fprintf(stderr, "slora conform: the %s run failed\n", names[4]);
            goto done;
        }
    }

    bad = 0;
    printf("%s on %d GPU(s) against %s on %d, %s%s\n", device, tp, ref,
           ref_tp, temperature > 0 ? "sampled" : "greedy",
           pf != 0 || pp != 0 || pr != 1 ? ", with penalties" : "");
    printf("request  adapter  %s vs alone | %s vs %s\n", device, device, ref);

    for (r = 0; r < n_req; r++) {
        batch_part = slora_conform_part(&runs[1], &runs[0], r);
        dev_part = slora_conform_part(&runs[0], &runs[2], r);
        bad |= batch_part >= 0 || dev_part >= 0
               || slora_conform_part(&runs[3], &runs[2], r) >= 0;

        printf("%7d  %7s  batched %s", r,
               dir != NULL && r > 0 ? "yes" : "none",
               batch_part < 0 ? "equal" : "parts");
        if (batch_part >= 0 && (temperature > 0 || lookup)) {
            printf(" at %d", batch_part);

        } else if (batch_part >= 0) {
            printf(" at %d (margin alone %.4f)", batch_part,
                   (double) runs[0].margin[r * gen + batch_part]);
        }
        printf(" | %s", dev_part < 0 ? "equal" : "parts");
        if (dev_part >= 0) {
            printf(" at %d (%d vs %d, reference margin %.4f)", dev_part,
                   runs[0].out[r * gen + dev_part],
                   runs[2].out[r * gen + dev_part],
                   (double) runs[2].margin[r * gen + dev_part]);
        }
        printf(" (%d tokens)\n", runs[0].n_out[r]);
    }

    if (lookup) {
        printf("lookup's drafts on %s: alone %llu tokens taken, %llu "
               "rejected; batched %llu taken, %llu rejected\n", device,
               (unsigned long long) runs[0].lookup_accepted,
               (unsigned long long) runs[0].lookup_rejected,
               (unsigned long long) runs[1].lookup_accepted,
               (unsigned long long) runs[1].lookup_rejected);
    }

    /* margins of both sides only when greedy without lookup: a sampled
     * device's rows stay on the device, as a drafting one's do */
    if (temperature == 0 && !lookup) {
        if (slora_conform_drift("device batched against alone", &runs[1],
                                &runs[0], n_req) != SLORA_OK
            || slora_conform_drift("device against reference", &runs[0],
                                   &runs[2], n_req) != SLORA_OK)
        {
            goto done;
        }
    }

    if (logprobs) {
        slora_conform_lp_gap("device batched against alone", &runs[1],
                             &runs[0], n_req);
        slora_conform_lp_gap("device against reference", &runs[0],
                             &runs[2], n_req);

        if (slora_conform_score_gap("device batched against alone",
                                    &runs[1], &runs[0], n_req)
            != SLORA_OK
            || slora_conform_score_gap("device against reference",
                                       &runs[0], &runs[2], n_req)
               != SLORA_OK
            || slora_conform_score_gap("reference batched against alone",
                                       &runs[3], &runs[2], n_req)
               != SLORA_OK)
        {
            bad = 1;
        }
    }

    moved = 0;

    if (runs[4].out != NULL) {
        printf("adapters on %s:", ref);

        for (r = 1; r < n_req; r++) {
            p = slora_conform_part(&runs[2], &runs[4], r);
            moved += p >= 0;
            printf(" request %d %s", r, p < 0 ? "as without"
                                               : "parts from without at");
            if (p >= 0) {
                printf(" %d", p);
            }
            printf("%s", r + 1 < n_req ? "," : "\n");
        }

        if (moved == 0) {
            printf("the adapters move no request's tokens from the base "
                   "model's: this run does not hold the LoRA path (give "
                   "them more scale: slora mkadapter --scale)\n");
        }
    }

    printf("%s\n", bad ? "PARTS"
                   : runs[4].out != NULL && moved == 0 ? "ADAPTERS INERT"
                   : "ALL EQUAL");
    rc = bad ? 2 : runs[4].out != NULL && moved == 0 ? 3 : 0;

done:

    for (i = 0; i < 5; i++) {
        free(runs[i].out);
        free(runs[i].n_out);
        free(runs[i].margin);
        free(runs[i].logprob);
        free(runs[i].score);
        free(runs[i].n_score);
    }

    free(prompts);

    return rc;
}


static int
slora_conform_alloc(slora_conform_run_t *run, int32_t n_req, int32_t plen,
    int32_t gen)
{
    run->out = calloc((size_t) n_req * (size_t) gen, sizeof(int32_t));
    run->n_out = calloc((size_t) n_req, sizeof(int32_t));
    run->margin = calloc((size_t) n_req * (size_t) gen, sizeof(float));
    run->logprob = calloc((size_t) n_req * (size_t) gen, sizeof(float));
    run->score = calloc((size_t) n_req * (size_t) plen, sizeof(float));
    run->n_score = calloc((size_t) n_req, sizeof(int32_t));
    run->plen = plen;
    run->gen = gen;

    return run->out != NULL && run->n_out != NULL && run->margin != NULL
           && run->logprob != NULL && run->score != NULL
           && run->n_score != NULL
           ? SLORA_OK : SLORA_ERROR;
}


static int
slora_conform_device(const slora_conform_job_t *job, const char *device,
    const char *weights, int32_t tp, int32_t batched, int32_t margins,
    slora_conform_run_t *run)
{
    int32_t                      r, n_names, want, loaded, n_req, plen;
    const char                 **names;
    const slora_model_config_t  *cfg;
    slora_err_t                  err;
    slora_engine_t              *e;
    slora_engine_conf_t          conf;
    slora_engine_stats_t         st;
    slora_request_t              req;

    n_req = job->n_req;
    plen = job->plen;
    cfg = job->cfg;

    memset(&conf, 0, sizeof(conf));
    conf.model_path = job->model;
    conf.adapter_dir = job->dir;
    conf.device = device;
    conf.tensor_parallel = tp;
    conf.weights = strcmp(device, "cpu") != 0 ? NULL
                   : weights != NULL ? weights : "f32";
    conf.margins = margins;
    /* --lookup: every request drafts, alone and batched (the margins'
     * runs draft nothing) */
    conf.draft_lookup = job->lookup;
    conf.lookup_running = job->n_req;
    /* every run computes its prompts whole: a run alone must not take
     * the batched run's K/V, the comparison's other side */
    conf.no_prefix_cache = 1;
    conf.n_threads = job->threads;
    conf.prefetch_threads = job->loaders;
    conf.max_running = n_req;
    conf.max_batch_tokens = n_req * plen > 512 ? n_req * plen : 512;
    conf.max_ctx = plen + run->gen + 16;

    /* on the CPU: K/V of every request twice over, and room for
     * adapters; a device's pool takes its free memory anyway */
    if (strcmp(device, "cpu") == 0) {
        conf.pool_bytes = (size_t) cfg->n_layers * 2
                          * (size_t) cfg->n_kv_heads
                          * (size_t) cfg->head_dim * sizeof(float)
                          * (size_t) n_req * (size_t) conf.max_ctx * 2
                          + ((size_t) 256 << 20);
    }

    e = slora_engine_init(&conf, &err);
    if (e == NULL) {
        fprintf(stderr, "slora conform: %s: %s\n", device, err.msg);
        return SLORA_ERROR;
    }

    /* every adapter in host memory before the first request: with
     * several loader threads a request for one still on disk waits for
     * its read and joins a later step, which one depending on the read's
     * time, and "batched" would not be the same batch run to run
     * (bench/RESULTS.md, 20:31-20:36) */
    if (job->dir != NULL
        && slora_engine_preload(e, &loaded, &err) != SLORA_OK)
    {
        fprintf(stderr, "slora conform: %s: %s\n", device, err.msg);
        slora_engine_free(e);
        return SLORA_ERROR;
    }

    n_names = slora_engine_adapters(e, &names);

    for (r = 0; r < n_req; r++) {
        memset(&req, 0, sizeof(req));
        req.id = (uint64_t) r;
        req.adapter = n_names > 0 && r > 0 ? names[(r - 1) % n_names] : NULL;
        req.prompt = job->prompts + (size_t) r * (size_t) plen;
        req.n_prompt = plen;
        req.sampling.max_tokens = run->gen;
        req.sampling.top_p = 1;
        req.sampling.repeat_penalty = r % 2 ? job->repetition : 1;
        req.sampling.frequency_penalty = r % 2 ? job->frequency : 0;
        req.sampling.presence_penalty = r % 2 ? job->presence : 0;
        req.logprobs = r % 2 ? job->logprobs : 0;
        req.prompt_logprobs = req.logprobs;
        req.prompt_top = req.top_logprobs;

        if (run->temperature > 0) {
            req.sampling.temperature = run->temperature;
            req.sampling.top_k = 40;
            req.sampling.top_p = 0.95f;
            req.sampling.min_p = r % 2 ? 0.05f : 0;
            req.sampling.seed = 1000 + (uint64_t) r;
        }

        if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
            fprintf(stderr, "slora conform: %s\n", err.msg);
            slora_engine_free(e);
            return SLORA_ERROR;
        }

        want = batched ? (r + 1 == n_req ? n_req : -1) : r + 1;

        while (want > 0 && run->done + run->failed < want) {
            if (slora_cli_step(e, slora_conform_event, run) == SLORA_ERROR)
            {
                break;
            }
        }
    }

    slora_engine_stats(e, &st);
    run->lookup_accepted = st.lookup_accepted;
    run->lookup_rejected = st.lookup_rejected;

    slora_engine_free(e);

    return run->failed == 0 && run->done == n_req ? SLORA_OK : SLORA_ERROR;
}


static void
slora_conform_event(void *data, const slora_event_t *ev)
{
    slora_conform_run_t  *run = data;
    int32_t               r;

    r = (int32_t) ev->id;

    switch (ev->type) {

    case SLORA_EV_TOKEN:
        if (run->n_out[r] < run->gen) {
            run->margin[r * run->gen + run->n_out[r]] = ev->margin;
            run->logprob[r * run->gen + run->n_out[r]] = ev->logprob;
            run->out[r * run->gen + run->n_out[r]++] = ev->token;
        }
        break;

    case SLORA_EV_DONE:
        run->done++;
        break;

    case SLORA_EV_ERROR:
        fprintf(stderr, "slora conform: request %d: %s\n", r, ev->error);
        run->failed++;
        break;

    case SLORA_EV_SCORE:
        /* positions 1, 2, ... in order: n_score counts those */
        if (r >= 0 && ev->pos == run->n_score[r] + 1
            && ev->pos < run->plen)
        {
            run->score[r * run->plen + ev->pos] = ev->logprob;
            run->n_score[r]++;
        }
        break;
    }
}


/* The first step at which request r's tokens differ, or -1. */
static int32_t
slora_conform_part(const slora_conform_run_t *a, const slora_conform_run_t *b,
    int32_t r)
{
    int32_t  i, n;

    n = a->n_out[r] < b->n_out[r] ? a->n_out[r] : b->n_out[r];

    for (i = 0; i < n; i++) {
        if (a->out[r * a->gen + i] != b->out[r * b->gen + i]) {
            return i;
        }
    }

    return a->n_out[r] == b->n_out[r] ? -1 : n;
}


/*
 * The drift of run a from run b: over every step where their tokens
 * still agree, |a's margin - b's|, the noise between their arithmetic
 * on the same context. Prints its largest and its 99th percentile, then
 * each parting's margin on b (the side taken as the reference) and
 * whether it is within the largest drift: a near-tie by this measure.
 */
static int
slora_conform_drift(const char *what, const slora_conform_run_t *a,
    const slora_conform_run_t *b, int32_t n_req)
{
    int32_t   r, i, k, n, part, n_parts, n_within;
    float    *d, top, p99, m;

    d = malloc((size_t) n_req * (size_t) a->gen * sizeof(float));
    if (d == NULL) {
        fprintf(stderr, "slora conform: out of memory\n");
        return SLORA_ERROR;
    }

    n = 0;

    for (r = 0; r < n_req; r++) {
        part = slora_conform_part(a, b, r);
        k = part >= 0 ? part
                      : (a->n_out[r] < b->n_out[r] ? a->n_out[r] : b->n_out[r]);

        for (i = 0; i < k; i++) {
            m = a->margin[r * a->gen + i] - b->margin[r * b->gen + i];
            d[n++] = m < 0 ? -m : m;
        }
    }

    qsort(d, (size_t) n, sizeof(float), slora_conform_float_cmp);
    top = n > 0 ? d[n - 1] : 0;
    p99 = n > 0 ? d[(int32_t) ((double) (n - 1) * 0.99)] : 0;
    free(d);

    printf("drift, %s: %.4f at most, %.4f at the 99th percentile, over %d "
           "agreeing steps\n", what, (double) top, (double) p99, n);

    n_parts = 0;
    n_within = 0;

    for (r = 0; r < n_req; r++) {
        part = slora_conform_part(a, b, r);
        if (part < 0 || part >= b->n_out[r]) {
            continue;
        }

        m = b->margin[r * b->gen + part];
        n_parts++;
        n_within += m <= top;

        printf("  request %d parts at %d, margin %.4f: %s\n", r, part,
               (double) m, m <= top ? "within the drift, a near-tie"
                                    : "beyond the drift, not a near-tie");
    }

    if (n_parts > 0) {
        printf("  %d of %d partings within the drift\n", n_within, n_parts);
    }

    return SLORA_OK;
}


static int
slora_conform_float_cmp(const void *a, const void *b)
{
    float  x, y;

    x = *(const float *) a;
    y = *(const float *) b;

    return (x > y) - (x < y);
}


/* How far a's log-probabilities are from b's over the tokens where the
 * two still agree, for the requests that asked (the odd-numbered): the
 * largest and the mean |difference|. */
static void
slora_conform_lp_gap(const char *what, const slora_conform_run_t *a,
    const slora_conform_run_t *b, int32_t n_req)
{
    int32_t  r, i, k, n, part;
    double   d, top, sum;

    n = 0;
    top = 0;
    sum = 0;

    for (r = 1; r < n_req; r += 2) {
        part = slora_conform_part(a, b, r);
        k = part >= 0 ? part
                      : (a->n_out[r] < b->n_out[r] ? a->n_out[r] : b->n_out[r]);

        for (i = 0; i < k; i++) {
            d = fabs((double) a->logprob[r * a->gen + i]
                     - (double) b->logprob[r * b->gen + i]);
            top = d > top ? d : top;
            sum += d;
            n++;
        }
    }

    printf("logprobs, %s: %.4f at most, %.4f on average, over %d agreeing "
           "tokens\n", what, top, n > 0 ? sum / n : 0.0, n);
}


/* The prompts' log-probabilities of two runs (the odd-numbered
 * requests'): how far apart over every position; SLORA_ERROR when a run
 * did not score a prompt whole, in order. */
static int
slora_conform_score_gap(const char *what, const slora_conform_run_t *a,
    const slora_conform_run_t *b, int32_t n_req)
{
    int      whole;
    int32_t  r, i, n;
    double   d, top, sum;

    n = 0;
    top = 0;
    sum = 0;
    whole = 1;

    for (r = 1; r < n_req; r += 2) {
        whole &= a->n_score[r] == a->plen - 1 && b->n_score[r] == b->plen - 1;

        for (i = 1; i < a->plen && whole; i++) {
            d = fabs((double) a->score[r * a->plen + i]
                     - (double) b->score[r * b->plen + i]);
            top = d > top ? d : top;
            sum += d;
            n++;
        }
    }

    printf("prompt logprobs, %s: %.4f at most, %.4f on average, over %d "
           "positions%s\n", what, top, n > 0 ? sum / n : 0.0, n,
           whole ? "" : "; A PROMPT NOT SCORED WHOLE");

    return whole ? SLORA_OK : SLORA_ERROR;
}
