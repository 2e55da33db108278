/*
 * slora_cli_replay.c: `slora replay`, a request trace played against the
 * engine alone, in real time: the engine-only side of the serving
 * experiment, whose HTTP side is bench/loadgen against nginx.
 *
 * The one idea: the same trace file (bench/loadgen gen writes it) and
 * the same definitions as bench/loadgen_report.py: a request is sent at
 * its arrival time, its time to first token counts from that time, a
 * request refused by admission control (the 429 of the server) is an
 * SLO miss, and attainment is the share of all requests whose first
 * token came within the SLO. What differs from the server's figures is
 * what HTTP, nginx's workers and the shared zone cost.
 *
 * Several --trace options play their traces one after another on the
 * one engine, as bench/loadgen's rate sweep does against one server:
 * what a trace leaves in the pool and the host tier is there for the
 * next, on both paths.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slora_cli.h"
#include "slora_engine.h"
#include "slora_sampler.h"


#define SLORA_REPLAY_MAX_REQ     1000000
#define SLORA_REPLAY_LINE        1024
#define SLORA_REPLAY_MAX_TRACES  16


typedef struct {
    double      arrival;            /* seconds from the trace's start */
    char       *adapter;            /* NULL: the base model */
    char       *tenant;
    int32_t     prompt;
    int32_t     output;

    int64_t     sent_ns;            /* the scheduled time, absolute */
    int64_t     first_ns;
    int64_t     last_ns;
    int64_t     end_ns;
    int32_t     tokens;
    int         state;              /* 0 waiting, 1 sent, 2 ok, 3 refused,
                                       4 error */
} slora_replay_req_t;


typedef struct {
    slora_replay_req_t  *reqs;
    int32_t              n;
    int32_t              ended;
    uint64_t             first_id;  /* request ids first_id .. + n - 1 */
    double              *gaps;      /* inter-token times, seconds */
    int64_t              n_gaps;
    int64_t              cap_gaps;
    uint64_t             generated;
} slora_replay_t;


static const char  slora_replay_usage[] =
    "usage: slora replay --model M --trace FILE [options]\n"
    "\n"
    "Plays a request trace against the engine alone, in real time, and\n"
    "prints what bench/loadgen prints for the server: requests ok,\n"
    "refused (429), failed; SLO attainment; requests and generated\n"
    "tokens a second; time to first token, inter-token and end-to-end\n"
    "latency. Prompts are random token ids of the trace's lengths.\n"
    "\n"
    "  --model M             GGUF file or HF folder\n"
    "  --trace FILE          CSV with a header naming arrival, adapter,\n"
    "                        tenant, prompt_tokens, output_tokens (the\n"
    "                        columns bench/loadgen gen writes); given\n"
    "                        more than once (16 at most), the traces\n"
    "                        play one after another on one engine\n"
    "  --adapters DIR        the catalog the trace's adapters are in (a\n"
    "                        folder, or random:n=N,...)\n"
    "  --schedule S          fcfs (default), lcfs, slo or fair\n"
    "  --slo-ttft S          the time-to-first-token SLO in seconds: slo's\n"
    "                        admission and the attainment figure (0: none)\n"
    "  --max-running N       running requests at most (64)\n"
    "  --step-tokens N       a step's token budget (512)\n"
    "  --max-ctx N           context at most (the trace's longest)\n"
    "  --threads T           CPU threads (all cores)\n"
    "  --device D            cpu (default), cuda or cuda:N\n"
    "  --tp N                tensor parallel over N GPUs from D on (1)\n"
    "  --host-cache MIB      the host tier's budget\n"
    "  --preload 1           read every adapter into the host tier first\n"
    "  --shared-prefix N     the first N tokens of every prompt are the\n"
    "                        same (a system prompt) (0)\n"
    "  --prefix-cache 0      every prompt computed whole: no KV pages kept\n"
    "                        and shared between requests (1)\n";


static int slora_replay_read(const char *path, slora_replay_t *rp);
static int slora_replay_field(char **fields, int32_t n_fields, int col,
    const char *path, int64_t line, const char *name, int32_t *out);
static void slora_replay_event(void *data, const slora_event_t *ev);
static void slora_replay_report(const slora_replay_t *rp, double wall,
    double slo);
static void slora_replay_tenants(const slora_replay_t *rp, double *ttft);
static double slora_replay_pct(double *v, int64_t n, double p);
static int slora_replay_cmp(const void *a, const void *b);
static int slora_replay_by_arrival(const void *a, const void *b);
static void slora_replay_free(slora_replay_t *rp);
static int slora_replay_play(slora_engine_t *e, slora_replay_t *rp,
    int32_t *buf, slora_rng_t *rng, int32_t shared, double slo);


int
slora_cli_replay(int argc, char **argv)
{
    int                    i, rc;
    int32_t                n, t, n_traces, max_ctx, max_waiting, v, preload,
                           loaded, shared, prefix_cache, *buf;
    long                   num;
    uint64_t               first_id;
    double                 slo;
    char                  *end;
    const char            *opt, *val, *traces[SLORA_REPLAY_MAX_TRACES];
    slora_err_t            err;
    slora_rng_t            rng;
    slora_engine_t        *e;
    slora_replay_t         rp[SLORA_REPLAY_MAX_TRACES];
    slora_engine_conf_t    conf;

    memset(&conf, 0, sizeof(conf));
    memset(rp, 0, sizeof(rp));
    n_traces = 0;
    slo = 0;
    preload = 0;
    shared = 0;
    prefix_cache = 1;
    conf.max_running = 64;
    conf.max_batch_tokens = 512;

    for (i = 1; i < argc; i++) {
        opt = argv[i];

        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            fputs(slora_replay_usage, stdout);
            return 0;
        }

        if (i + 1 >= argc) {
            fprintf(stderr, "slora replay: %s needs a value\n", opt);
            return 1;
        }

        val = argv[++i];
        v = 0;
        errno = 0;

        if (strcmp(opt, "--model") == 0) {
            conf.model_path = val;

        } else if (strcmp(opt, "--trace") == 0) {
            if (n_traces == SLORA_REPLAY_MAX_TRACES) {
                fprintf(stderr, "slora replay: more than %d traces\n",
                        SLORA_REPLAY_MAX_TRACES);
                return 1;
            }
            traces[n_traces++] = val;

        } else if (strcmp(opt, "--adapters") == 0) {
            conf.adapter_dir = val;

        } else if (strcmp(opt, "--schedule") == 0) {
            conf.schedule = val;

        } else if (strcmp(opt, "--device") == 0) {
            conf.device = val;

        } else if (strcmp(opt, "--slo-ttft") == 0) {
            slo = strtod(val, &end);
            if (*end != '\0' || end == val || errno != 0
                || !(slo >= 0 && slo <= 3600))
            {
                fprintf(stderr, "slora replay: --slo-ttft \"%s\": not 0 to "
                        "3600 seconds\n", val);
                return 1;
            }

        } else {
            num = strtol(val, &end, 10);
            if (*end != '\0' || end == val || errno != 0 || num < 0
                || num > 1 << 24)
            {
                fprintf(stderr, "slora replay: %s \"%s\": bad value\n", opt,
                        val);
                return 1;
            }

            v = (int32_t) num;

            if (strcmp(opt, "--max-running") == 0 && v > 0) {
                conf.max_running = v;

            } else if (strcmp(opt, "--step-tokens") == 0 && v > 0) {
                conf.max_batch_tokens = v;

            } else if (strcmp(opt, "--max-ctx") == 0 && v > 0) {
                conf.max_ctx = v;

            } else if (strcmp(opt, "--threads") == 0) {
                conf.n_threads = v;

            } else if (strcmp(opt, "--tp") == 0 && v > 0) {
                conf.tensor_parallel = v;

            } else if (strcmp(opt, "--host-cache") == 0 && v > 0) {
                conf.host_cache_bytes = (size_t) v << 20;

            } else if (strcmp(opt, "--preload") == 0 && v <= 1) {
                preload = v;

            } else if (strcmp(opt, "--shared-prefix") == 0) {
                shared = v;

            } else if (strcmp(opt, "--prefix-cache") == 0 && v <= 1) {
                prefix_cache = v;

            } else {
                fprintf(stderr, "slora replay: %s \"%s\": unknown option or "
                        "bad value (see --help)\n", opt, val);
                return 1;
            }
        }
    }

    if (conf.model_path == NULL || n_traces == 0) {
        fprintf(stderr, "slora replay: --model and --trace are needed (see "
                "--help)\n");
        return 1;
    }

    e = NULL;
    buf = NULL;
    rc = 1;
    max_ctx = 0;
    max_waiting = 0;
    first_id = 0;

    for (t = 0; t < n_traces; t++) {
        if (slora_replay_read(traces[t], &rp[t]) != SLORA_OK) {
            goto done;
        }

        rp[t].first_id = first_id;
        first_id += (uint64_t) rp[t].n;
        max_waiting = rp[t].n > max_waiting ? rp[t].n : max_waiting;

        for (n = 0; n < rp[t].n; n++) {
            v = rp[t].reqs[n].prompt + rp[t].reqs[n].output;
            max_ctx = v > max_ctx ? v : max_ctx;
        }
    }

    conf.max_ctx = conf.max_ctx > 0 ? conf.max_ctx : max_ctx;
    conf.max_waiting = max_waiting;
    conf.slo_ttft_ms = (int32_t) (slo * 1e3);
    conf.no_prefix_cache = !prefix_cache;

    e = slora_engine_init(&conf, &err);
    if (e == NULL) {
        fprintf(stderr, "slora replay: %s\n", err.msg);
        goto done;
    }

    buf = malloc((size_t) max_ctx * sizeof(int32_t));
    if (buf == NULL) {
        goto done;
    }

    if (preload) {
        if (slora_engine_preload(e, &loaded, &err) != SLORA_OK) {
            fprintf(stderr, "slora replay: preload: %s\n", err.msg);
            goto done;
        }
        printf("preload: %d adapters in host memory\n", loaded);
    }

    slora_rng_seed(&rng, 42);

    for (t = 0; t < n_traces; t++) {
        if (n_traces > 1) {
            printf("== trace %s\n", traces[t]);
        }

        if (slora_replay_play(e, &rp[t], buf, &rng, shared, slo)
            != SLORA_OK)
        {
            goto done;
        }
    }

    rc = 0;

done:

    free(buf);
    if (e != NULL) {
        slora_engine_free(e);
    }

    for (t = 0; t < n_traces; t++) {
        slora_replay_free(&rp[t]);
    }

    return rc;
}


/* One trace, in real time from now, then its report. */
static int
slora_replay_play(slora_engine_t *e, slora_replay_t *rp, int32_t *buf,
    slora_rng_t *rng, int32_t shared, double slo)
{
    int                  step;
    int32_t              n, v, vocab;
    int64_t              t0, now, due, wait;
    slora_err_t          err;
    slora_request_t      req;
    slora_rng_t          same;
    slora_replay_req_t  *q;
    struct timespec      ts;

    vocab = slora_engine_model_config(e)->vocab;
    t0 = slora_now_ns();
    n = 0;

    while (rp->ended < rp->n) {
        now = slora_now_ns();

        /* every request whose time has come, at its scheduled time */
        while (n < rp->n
               && t0 + (int64_t) (rp->reqs[n].arrival * 1e9) <= now)
        {
            q = &rp->reqs[n];

            /* the shared part from a generator of its own, the same each
             * time (slora bench's) */
            slora_rng_seed(&same, 7);

            for (v = 0; v < q->prompt; v++) {
                buf[v] = (int32_t) (slora_rng_next(v < shared ? &same : rng)
                                    % (uint64_t) vocab);
            }

            memset(&req, 0, sizeof(req));
            req.id = rp->first_id + (uint64_t) n;
            req.adapter = q->adapter;
            req.tenant = q->tenant;
            req.prompt = buf;
            req.n_prompt = q->prompt;
            req.sampling.max_tokens = q->output;
            req.sampling.top_p = 1;
            req.sampling.repeat_penalty = 1;
            q->sent_ns = t0 + (int64_t) (q->arrival * 1e9);
            req.arrived_ns = q->sent_ns;
            q->state = 1;

            if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
                fprintf(stderr, "slora replay: request %d: %s\n", n,
                        err.msg);
                q->state = 4;
                rp->ended++;
            }

            n++;
        }

        step = slora_cli_step(e, slora_replay_event, rp);

        if (step == SLORA_ERROR) {
            fprintf(stderr, "slora replay: a step failed\n");
            return SLORA_ERROR;
        }

        /* nothing to do before the next arrival: sleep till then */
        if (step == SLORA_DONE && n < rp->n) {
            due = t0 + (int64_t) (rp->reqs[n].arrival * 1e9);
            wait = due - slora_now_ns();
            if (wait > 0) {
                ts.tv_sec = (time_t) (wait / 1000000000);
                ts.tv_nsec = (long) (wait % 1000000000);
                nanosleep(&ts, NULL);
            }
        }
    }

    slora_replay_report(rp, (double) (slora_now_ns() - t0) / 1e9, slo);

    return SLORA_OK;
}


static void
slora_replay_event(void *data, const slora_event_t *ev)
{
    slora_replay_t      *rp = data;
    slora_replay_req_t  *q;
    double              *g;
    int64_t              now;

    if (ev->id < rp->first_id || ev->id - rp->first_id >= (uint64_t) rp->n) {
        return;
    }

    q = &rp->reqs[ev->id - rp->first_id];
    now = slora_now_ns();

    switch (ev->type) {

    case SLORA_EV_TOKEN:
        if (q->tokens++ == 0) {
            q->first_ns = now;

        } else {
            if (rp->n_gaps == rp->cap_gaps) {
                g = realloc(rp->gaps, (size_t) (rp->cap_gaps * 2 + 1024)
                                      * sizeof(double));
                if (g != NULL) {
                    rp->gaps = g;
                    rp->cap_gaps = rp->cap_gaps * 2 + 1024;
                }
            }
            if (rp->n_gaps < rp->cap_gaps) {
                rp->gaps[rp->n_gaps++] = (double) (now - q->last_ns) / 1e9;
            }
        }
        q->last_ns = now;
        rp->generated++;
        break;

    case SLORA_EV_DONE:
        q->state = 2;
        q->end_ns = now;
        rp->ended++;
        break;

    case SLORA_EV_ERROR:
        q->state = ev->code == SLORA_ERRCODE_SLO ? 3 : 4;
        q->end_ns = now;
        rp->ended++;
        if (q->state == 4) {
            fprintf(stderr, "slora replay: request %llu: %s\n",
                    (unsigned long long) ev->id, ev->error);
        }
        break;

    case SLORA_EV_SCORE:
        /* none of its requests asks for a prompt's log-probabilities */
        break;
    }
}


/* loadgen's summary line, one request set. */
static void
slora_replay_report(const slora_replay_t *rp, double wall, double slo)
{
    int32_t              i, ok, refused, failed, met;
    int64_t              n_ttft, n_e2e;
    double              *ttft, *e2e, span;
    slora_replay_req_t  *q;

    ttft = malloc((size_t) (rp->n + 1) * sizeof(double));
    e2e = malloc((size_t) (rp->n + 1) * sizeof(double));
    if (ttft == NULL || e2e == NULL) {
        free(ttft);
        free(e2e);
        return;
    }

    ok = refused = failed = met = 0;
    n_ttft = n_e2e = 0;

    for (i = 0; i < rp->n; i++) {
        q = &rp->reqs[i];
        ok += q->state == 2;
        refused += q->state == 3;
        failed += q->state == 4;

        if (q->state == 2 && q->tokens > 0) {
            ttft[n_ttft++] = (double) (q->first_ns - q->sent_ns) / 1e9;
            e2e[n_e2e++] = (double) (q->end_ns - q->sent_ns) / 1e9;
            met += slo <= 0
                   || (double) (q->first_ns - q->sent_ns) / 1e9 <= slo;
        }
    }

    span = rp->n > 1 ? rp->reqs[rp->n - 1].arrival : 0;

    printf("replay: %d requests over %.1f s (%.2f a second offered), wall "
           "%.1f s\n", rp->n, span, span > 0 ? rp->n / span : 0.0, wall);
    /* with no SLO, attainment is the share that got an answer */
    printf("ok %d, 429 %d, err %d; attainment %.1f%% (SLO %.3f s); %.2f "
           "req/s; %.0f tokens/s; ttft p50 %.0f ms, p99 %.0f ms; itl p50 "
           "%.0f ms; e2e p50 %.0f ms\n", ok, refused, failed,
           rp->n > 0 ? 100.0 * met / rp->n : 0.0, slo, (double) ok / wall,
           (double) rp->generated / wall,
           1e3 * slora_replay_pct(ttft, n_ttft, 50),
           1e3 * slora_replay_pct(ttft, n_ttft, 99),
           1e3 * slora_replay_pct(rp->gaps, rp->n_gaps, 50),
           1e3 * slora_replay_pct(e2e, n_e2e, 50));

    slora_replay_tenants(rp, ttft);

    free(ttft);
    free(e2e);
}


/*
 * With tenants in the trace, one line each (in order of first arrival):
 * what fair share is judged by, each tenant's first tokens.
 */
static void
slora_replay_tenants(const slora_replay_t *rp, double *ttft)
{
    int32_t              i, j, n, ok;
    const char          *t;
    slora_replay_req_t  *q;

    for (i = 0; i < rp->n; i++) {
        t = rp->reqs[i].tenant;

        if (t == NULL) {
            continue;
        }

        for (j = 0; j < i; j++) {
            if (rp->reqs[j].tenant != NULL
                && strcmp(rp->reqs[j].tenant, t) == 0)
            {
                break;
            }
        }

        if (j < i) {
            continue;               /* printed at its first request */
        }

        n = ok = 0;

        for (j = i; j < rp->n; j++) {
            q = &rp->reqs[j];

            if (q->tenant == NULL || strcmp(q->tenant, t) != 0) {
                continue;
            }

            n++;

            if (q->state == 2 && q->tokens > 0) {
                ttft[ok++] = (double) (q->first_ns - q->sent_ns) / 1e9;
            }
        }

        printf("tenant %s: %d requests, %d ok; ttft p50 %.1f ms, p99 %.1f "
               "ms\n", t, n, ok, 1e3 * slora_replay_pct(ttft, ok, 50),
               1e3 * slora_replay_pct(ttft, ok, 99));
    }
}


/* The p-th percentile of v (sorted here), nearest rank; 0 if empty. */
static double
slora_replay_pct(double *v, int64_t n, double p)
{
    int64_t  k;

    if (n == 0) {
        return 0;
    }

    qsort(v, (size_t) n, sizeof(double), slora_replay_cmp);
    k = (int64_t) (p / 100.0 * (double) n + 0.5) - 1;
    k = k < 0 ? 0 : k >= n ? n - 1 : k;

    return v[k];
}


static int
slora_replay_cmp(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


static int
slora_replay_by_arrival(const void *a, const void *b)
{
    return slora_replay_cmp(&((const slora_replay_req_t *) a)->arrival,
                            &((const slora_replay_req_t *) b)->arrival);
}


/*
 * The trace: a header naming its columns, then one request a line, in
 * any order (sorted here by arrival, shifted to start at 0). Quoted
 * fields are not taken: names hold no comma.
 */
static int
slora_replay_read(const char *path, slora_replay_t *rp)
{
    FILE                *f;
    char                 line[SLORA_REPLAY_LINE], *fields[16], *p, *end;
    int32_t              n_fields, k, cap;
    int64_t              ln;
    int                  col[5], c, rc;
    double               t0;
    slora_replay_req_t  *q;
    static const char   *names[5] = { "arrival", "adapter", "tenant",
                                      "prompt_tokens", "output_tokens" };

    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "slora replay: %s: %s\n", path, strerror(errno));
        return SLORA_ERROR;
    }

    rc = SLORA_ERROR;
    cap = 0;
    ln = 0;

    for (c = 0; c < 5; c++) {
        col[c] = -1;
    }

    while (fgets(line, sizeof(line), f) != NULL) {
        ln++;

        if (strchr(line, '\n') == NULL && !feof(f)) {
            fprintf(stderr, "slora replay: %s:%lld: line too long\n", path,
                    (long long) ln);
            goto done;
        }

        line[strcspn(line, "\r\n")] = '\0';

        if (line[0] == '\0') {
            continue;
        }

        if (strchr(line, '"') != NULL) {
            fprintf(stderr, "slora replay: %s:%lld: quoted fields are not "
                    "taken\n", path, (long long) ln);
            goto done;
        }

        n_fields = 0;
        p = line;
        while (n_fields < 16) {
            fields[n_fields++] = p;
            p = strchr(p, ',');
            if (p == NULL) {
                break;
            }
            *p++ = '\0';
        }

        /* the first line that is not blank */
        if (col[0] < 0) {
            for (k = 0; k < n_fields; k++) {
                for (c = 0; c < 5; c++) {
                    if (strcmp(fields[k], names[c]) == 0) {
                        col[c] = k;
                    }
                }
            }

            if (col[0] < 0 || col[3] < 0 || col[4] < 0) {
                fprintf(stderr, "slora replay: %s: the header names no "
                        "arrival, prompt_tokens or output_tokens column\n",
                        path);
                goto done;
            }
            continue;
        }

        if (rp->n == SLORA_REPLAY_MAX_REQ) {
            fprintf(stderr, "slora replay: %s: more than %d requests\n",
                    path, SLORA_REPLAY_MAX_REQ);
            goto done;
        }

        if (rp->n == cap) {
            cap = cap * 2 + 256;
            q = realloc(rp->reqs, (size_t) cap * sizeof(slora_replay_req_t));
            if (q == NULL) {
                fprintf(stderr, "slora replay: out of memory\n");
                goto done;
            }
            rp->reqs = q;
        }

        q = &rp->reqs[rp->n];
        memset(q, 0, sizeof(*q));

        if (col[0] >= n_fields) {
            fprintf(stderr, "slora replay: %s:%lld: no arrival\n", path,
                    (long long) ln);
            goto done;
        }

        errno = 0;
        q->arrival = strtod(fields[col[0]], &end);
        if (*end != '\0' || errno != 0 || end == fields[col[0]]
            || !(q->arrival >= 0 && q->arrival < 1e7))
        {
            fprintf(stderr, "slora replay: %s:%lld: arrival \"%s\" is not a "
                    "time in seconds\n", path, (long long) ln,
                    fields[col[0]]);
            goto done;
        }

        if (slora_replay_field(fields, n_fields, col[3], path, ln,
                               "prompt_tokens", &q->prompt)
            != SLORA_OK
            || slora_replay_field(fields, n_fields, col[4], path, ln,
                                  "output_tokens", &q->output)
               != SLORA_OK)
        {
            goto done;
        }

        rp->n++;

        if ((col[1] >= 0 && col[1] < n_fields && fields[col[1]][0] != '\0'
             && (q->adapter = strdup(fields[col[1]])) == NULL)
            || (col[2] >= 0 && col[2] < n_fields
                && fields[col[2]][0] != '\0'
                && (q->tenant = strdup(fields[col[2]])) == NULL))
        {
            fprintf(stderr, "slora replay: out of memory\n");
            goto done;
        }
    }

    if (rp->n == 0) {
        fprintf(stderr, "slora replay: %s: no requests\n", path);
        goto done;
    }

    qsort(rp->reqs, (size_t) rp->n, sizeof(slora_replay_req_t),
          slora_replay_by_arrival);

    t0 = rp->reqs[0].arrival;
    for (k = 0; k < rp->n; k++) {
        rp->reqs[k].arrival -= t0;
    }

    rc = SLORA_OK;

done:

    fclose(f);

    return rc;
}


static int
slora_replay_field(char **fields, int32_t n_fields, int col,
    const char *path, int64_t line, const char *name, int32_t *out)
{
    char  *end;
    long   v;

    if (col >= n_fields) {
        fprintf(stderr, "slora replay: %s:%lld: no %s\n", path,
                (long long) line, name);
        return SLORA_ERROR;
    }

    errno = 0;
    v = strtol(fields[col], &end, 10);
    if (*end != '\0' || end == fields[col] || errno != 0 || v < 1
        || v > 1 << 20)
    {
        fprintf(stderr, "slora replay: %s:%lld: %s \"%s\" is not an integer "
                "from 1 to %d\n", path, (long long) line, name, fields[col],
                1 << 20);
        return SLORA_ERROR;
    }

    *out = (int32_t) v;

    return SLORA_OK;
}


static void
slora_replay_free(slora_replay_t *rp)
{
    int32_t  i;

    for (i = 0; i < rp->n; i++) {
        free(rp->reqs[i].adapter);
        free(rp->reqs[i].tenant);
    }

    free(rp->reqs);
    free(rp->gaps);
    memset(rp, 0, sizeof(*rp));
}
