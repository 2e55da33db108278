/*
 * slora_engine.h: the engine as a library. It owns a model, a backend,
 * the unified pool, the adapter tiers and the scheduler; callers submit
 * requests of token ids and call slora_engine_step() in a loop, receiving
 * tokens through a callback. The nginx engine process, the command-line
 * tool and the tests all drive it the same way. Nothing here knows text
 * (tokenizing and stop strings belong to the caller) but the tokens'
 * bytes, from the caller's tokenizer, that JSON mode checks.
 *
 * Adapters and tenants come from the catalog (slora_catalog.h): the
 * adapter directory, or Redis. With Redis a request whose tenant or
 * adapter is not cached yet waits in the engine ("resolving") while the
 * catalog's thread reads it; slora_engine_step() returns SLORA_AGAIN when
 * only such requests are left, and the owner should then wait for
 * slora_engine_wake_fd() to become readable (or a new request) before
 * stepping again. A step whose backend failed ends its own requests;
 * SLORA_FATAL says the backend cannot go on (a GPU's context is lost)
 * and the owner should start over in a new process. A prefetch thread
 * reads adapters from disk into the host tier ahead of need.
 *
 * Not thread-safe: one thread owns an engine.
 */

#ifndef SLORA_ENGINE_H
#define SLORA_ENGINE_H


#include "slora_core.h"
#include "slora_model.h"
#include "slora_catalog.h"
#include "slora_tokenizer.h"


/* slora_request_t's json_trigger_lead */
#define SLORA_TRIGGER_LEAD  1
#define SLORA_TRIGGER_ENDS  2


typedef struct slora_engine_s  slora_engine_t;


typedef struct {
    const char   *model_path;       /* GGUF file or HF folder */
    const char   *adapter_dir;      /* embedded catalog: sub-folder = adapter */
    const char   *device;           /* "cpu" (default), "cuda[:N]" */
    int32_t       tensor_parallel;  /* GPUs of one model, from N on;
                                       0: 1 */
    const char   *backend_lib;      /* the CUDA backend's .so, or NULL
                                       (slora_backend_open) */
    int           margins;          /* TOKEN events carry the logit
                                       margin (slora conform); keeps
                                       every logits row on the host */
    const char   *weights;          /* CPU GEMM weights: "native" (NULL,
                                       the default: the file's Q4_1
                                       blocks, else Q8_0), "q8_0" or
                                       "f32" (exact) */
    int32_t       n_threads;        /* 0: all cores */
    size_t        pool_bytes;       /* 0: default (KV for max_running
                                       sequences of max_ctx plus room) */
    size_t        host_cache_bytes; /* host tier budget; 0: 1 GiB */
    int32_t       max_batch_tokens; /* token budget of one step; 0: 512 */
    int32_t       max_running;      /* running sequences at most; 0: 64 */
    int32_t       max_ctx;          /* 0: the model's, capped at 4096 */
    int32_t       max_waiting;      /* queued requests at most; 0: 4096 */

    const char   *redis_url;        /* catalog in Redis ("redis://h:p/db"
                                       or "h:p"); NULL: adapter_dir */
    const char *const *adapter_roots;   /* [n_adapter_roots]: folders
                                       adapter paths must lie under,
                                       beside adapter_dir; Redis needs
                                       one at least */
    int32_t       n_adapter_roots;
    int32_t       redis_connect_timeout_ms; /* 0: 200 */
    int32_t       redis_timeout_ms; /* per command; 0: 500 */
    int32_t       hint_interval_ms; /* re-read slora:pinned and
                                       slora:popular; 0: 5000 */
    int32_t       pinned_max;       /* percent of the pool's pages pinned
                                       adapters may hold, 1..100; 0: 50 */
    int           no_prefetch;      /* 1: no prefetch threads */
    int           no_prefix_cache;  /* 1: every prompt computed whole
                                       (slora_prefix.h) */
    int           draft_lookup;     /* 1: a request without a prediction
                                       drafts from its own tokens (prompt
                                       lookup, slora_draft.h), */
    int32_t       lookup_running;   /* while the engine holds at most
                                       this many requests, running or
                                       waiting; 0: 1 (where a step has
                                       few rows, drafts cost little
                                       beside it; in a full one each
                                       costs a row's share) */
    int32_t       prefetch_threads; /* 0: default (half the cores, 1 to
                                       4) */

    const char   *schedule;         /* admission policy: "fcfs" (NULL,
                                       the default), "lcfs", "slo" (early
                                       abort) or "fair" (per tenant) */
    int32_t       slo_ttft_ms;      /* slo: the TTFT SLO of requests whose
                                       tenant sets none; 0: none */
    int32_t       fair_prefill;     /* fair: weight of a prompt token;
                                       0: 1 */
    int32_t       fair_decode;      /* fair: weight of a generated token;
                                       0: 2 */
    const slora_tokenizer_t *tokenizer; /* the model's, for JSON mode
                                       (slora_sampling_t.json); NULL:
                                       JSON mode is refused */
} slora_engine_conf_t;


/* The most tokens a request's logit_bias may name (OpenAI's limit), and
 * its allowed_token_ids (vLLM's, held to the same bound). */
#define SLORA_LOGIT_BIAS_MAX  300
#define SLORA_ALLOWED_MAX     300
/* the ints of a request's bad_ids (vLLM's bad_words, as token runs) */
#define SLORA_BAD_MAX         256


typedef struct {
    float         temperature;      /* 0: greedy */
    int32_t       top_k;            /* 0: off */
    float         top_p;            /* 1: off; 0 (what a top_p under
                                       float's range comes to): the
                                       likeliest alone */
    float         min_p;            /* 0: off; else keep what is at least
                                       min_p as likely as the likeliest
                                       (after the temperature) */
    float         repeat_penalty;   /* 1, or 0 and less: off */
    uint64_t      seed;
    int32_t       max_tokens;       /* new tokens at most, > 0 (or 0
                                       with prompt_logprobs) */
    int32_t       min_tokens;       /* vLLM's: no stop id is drawn before
                                       this many new tokens (0..
                                       max_tokens); such rows are the
                                       host's until then */
    float         frequency_penalty; /* OpenAI's, -2..2, 0: off */
    float         presence_penalty; /* OpenAI's, -2..2, 0: off */
    /* OpenAI's logit_bias: logit_bias[k] (-100..100) is added to the
     * logit of token logit_bias_ids[k] (distinct ids) before anything
     * else; 0 entries: off */
    int32_t       n_logit_bias;
    int32_t       logit_bias_ids[SLORA_LOGIT_BIAS_MAX];
    float         logit_bias[SLORA_LOGIT_BIAS_MAX];
    /* vLLM's allowed_token_ids: only these tokens are drawn (the rest's
     * logits -inf after the bias, before the penalties); 0 entries: any */
    int32_t       n_allowed;
    int32_t       allowed_ids[SLORA_ALLOWED_MAX];
    /* vLLM's bad_words as runs of tokens, each its length and then its
     * ids: a run's last token is not drawn where the output so far ends
     * in the rest of it (a run of one: never), after the bias; 0: none */
    int32_t       n_bad;
    int32_t       bad_ids[SLORA_BAD_MAX];
    /* 1: JSON mode (OpenAI's response_format json_object): only tokens
     * that keep the output the start of a JSON object are drawn, after
     * the bias, the penalties and the temperature alike, and the request
     * ends (DONE, STOP, token -1) as the object closes (slora_json.h) */
    int32_t       json;
} slora_sampling_t;


/*
 * Tenants (Redis catalog only; with the directory they are ignored): a
 * request with a tenant and no adapter (NULL, "" or "default") gets the
 * tenant's default adapter (none: the base model); "base" asks for the
 * base model, which only a tenant without a default adapter may use; a
 * named adapter must be the default or in the tenant's allowed set. The
 * tenant's max_tokens clamps the request's; its priority and ttft_slo_ms
 * go to the scheduler; its rate (requests a second, slora_rate.h) refuses
 * a request beyond it (SLORA_LIMITED, err.retry_ms). With either catalog
 * the tenant's name is its fair share account under schedule "fair" (no
 * tenant: one anonymous account).
 */
/* The most alternatives a token's log-probabilities come with (OpenAI's
 * top_logprobs at most). */
#define SLORA_LOGPROBS_MAX  20


typedef struct {
    uint64_t          id;           /* the caller's, echoed in events */
    const char       *adapter;      /* adapter name; NULL or "": base model
                                       (or the tenant's default); "default":
                                       the tenant's default; "base": the
                                       base model */
    const char       *tenant;       /* NULL: none */
    uint64_t          cache_salt[2]; /* vLLM's cache_salt, the first 128
                                       bits of its SHA-256: the prefix
                                       cache's pages are shared only
                                       between requests of the same salt
                                       (and adapter and tenant); {0, 0}:
                                       none */
    int               rate_free;    /* 1: the tenant's rate does not
                                       count it (a request's choices
                                       after its first) */
    const int32_t    *prompt;       /* [n_prompt] */
    int32_t           n_prompt;
    const int32_t    *stop_ids;     /* tokens that end generation (EOS...) */
    int32_t           n_stop_ids;
    slora_sampling_t  sampling;
    int               logprobs;     /* 1: TOKEN events carry the token's
                                       log-probability (its logits row
                                       comes to the host): the model's
                                       own, log-softmax of the raw
                                       logits, before the logit bias,
                                       the penalties, the temperature,
                                       the cuts and a JSON mask (vLLM's
                                       default, raw logprobs); its
                                       alternatives alike */
    int32_t           top_logprobs; /* and this many of the likeliest
                                       tokens, 0..SLORA_LOGPROBS_MAX */
    int               prompt_logprobs;  /* 1: SCORE events give every
                                       prompt token after the first its
                                       log-probability, its rank and
                                       prompt_top alternatives, all
                                       before the first TOKEN; the
                                       prompt is computed whole, none of
                                       it taken from the prefix cache.
                                       max_tokens may then be 0: the
                                       request ends (DONE, LENGTH, token
                                       -1) once its prompt is scored */
    int32_t           prompt_top;   /* 0..SLORA_LOGPROBS_MAX */
    const char       *json_schema;  /* OpenAI's response_format
                                       json_schema: the schema's text
                                       (json_schema_len bytes), compiled
                                       at submit (slora_json.h); the
                                       output is one object it admits,
                                       as JSON mode's is one object.
                                       NULL: none */
    size_t            json_schema_len;
    int               json_compact; /* 1: JSON mode's or json_schema's
                                       JSON (SLORA_JSON_FORM_SCHEMA)
                                       without a blank between its
                                       tokens (vLLM's
                                       disable_any_whitespace) */
    int               json_form;    /* what json_schema's text is
                                       (slora_json_form_e): a JSON schema,
                                       vLLM's guided_choice (a JSON array
                                       of texts; the output one of them as
                                       it is) or its guided_regex (the
                                       output a text it matches whole) */
    const char       *json_trigger; /* with json_schema: the schema holds
                                       only after the output's text ends
                                       with these json_trigger_len bytes
                                       (1..SLORA_JSON_TRIGGER_MAX), until
                                       the value it admits is whole, and
                                       again after the next time; the
                                       value's end does not end the
                                       request (a tool call the model
                                       chose to make: "<tool_call>").
                                       NULL: from the first token, to
                                       the end */
    size_t            json_trigger_len;
    const char       *json_gate;    /* with json_trigger: text the output
                                       must have held before the trigger
                                       counts (a reasoning model's
                                       closing mark: its calls come after
                                       its thinking), json_gate_len bytes;
                                       NULL: none */
    size_t            json_gate_len;
    int               json_trigger_lead; /* SLORA_TRIGGER_LEAD: the
                                       trigger is the value's first bytes
                                       and counts only as the output's
                                       first (Llama 3.1's call:
                                       '{"name":'), the value whole ends
                                       the request; SLORA_TRIGGER_ENDS:
                                       found anywhere, its value ends the
                                       request (Mistral's list of calls);
                                       0: the value whole, free again */
    int64_t           arrived_ns;   /* when it reached the server
                                       (slora_now_ns()'s clock), where
                                       its SLO's time starts; 0, or
                                       later than the submit: then */
    const int32_t    *prediction;   /* [n_prediction]: what the output is
                                       expected to be, mostly (OpenAI's
                                       predicted outputs): drafts from it
                                       are computed beside the last token
                                       and kept as far as they are what
                                       would have been picked
                                       (slora_draft.h). The output is the
                                       same as without (on the CPU; a
                                       GPU's verify steps may flip a
                                       bf16 near-tie, as batching may);
                                       DONE events count the draft tokens
                                       taken and not.
                                       Requests that need their rows on
                                       the host (penalties, log-
                                       probabilities, min_tokens, JSON)
                                       run without drafts. NULL: none */
    int32_t           n_prediction; /* 0..max_ctx */
} slora_request_t;


/* A stop id ends a request with DONE (finish STOP, token: the id) and is
 * not delivered as a TOKEN. */
typedef enum {
    SLORA_EV_TOKEN = 0,             /* token: one new token */
    SLORA_EV_DONE,                  /* finish: why it ended */
    SLORA_EV_ERROR,                 /* error: text; the request is over */
    SLORA_EV_SCORE                  /* token: the prompt's at pos, with
                                       its log-probability after the
                                       tokens before it (prompt_logprobs) */
} slora_event_e;


typedef enum {
    SLORA_FINISH_NONE = 0,
    SLORA_FINISH_STOP,              /* a stop id was sampled, or JSON
                                       mode's object closed */
    SLORA_FINISH_LENGTH,            /* max_tokens or context reached */
    SLORA_FINISH_CANCEL             /* slora_engine_cancel() */
} slora_finish_e;


/*
 * Why a request failed, for the HTTP status: in ERROR events, and from
 * slora_engine_errcode() for the status slora_engine_submit() returned.
 */
typedef enum {
    SLORA_ERRCODE_NONE = 0,
    SLORA_ERRCODE_BAD_REQUEST,      /* 400: the request is invalid */
    SLORA_ERRCODE_NOT_FOUND,        /* 404 model_not_found: no such
                                       adapter (or its catalog entry is
                                       refused: path outside the roots) */
    SLORA_ERRCODE_FORBIDDEN,        /* 403: "adapter X is not allowed for
                                       tenant T", "unknown tenant T" */
    SLORA_ERRCODE_BUSY,             /* 429: the queue is full */
    SLORA_ERRCODE_UNAVAILABLE,      /* 503: "catalog unavailable: redis
                                       127.0.0.1:6379: Connection refused"
                                       for a name never read */
    SLORA_ERRCODE_SLO,              /* 429: aborted by admission control,
                                       its TTFT SLO cannot be met
                                       (schedule "slo"); retry_after_ms */
    SLORA_ERRCODE_RATE,             /* 429: its tenant's rate is spent;
                                       retry_after_ms */
    SLORA_ERRCODE_INTERNAL          /* 500: adapter unreadable (missing or
                                       corrupt file, sha256 mismatch),
                                       backend failure */
} slora_errcode_e;


typedef struct {
    slora_event_e     type;
    uint64_t          id;
    int32_t           token;
    slora_finish_e    finish;
    const char       *error;        /* ERROR: for the client; the
                                       request is named by id only */
    slora_errcode_e   code;         /* ERROR events */
    int32_t           retry_after_ms;   /* ERROR SLO and RATE: when a
                                           retry may be admitted; else 0 */
    float             margin;       /* TOKEN with conf.margins: the top
                                       logit less the second; else 0 */
    int32_t           pos;          /* SCORE: token's place in the
                                       prompt, 1..n_prompt - 1, in order */
    float             logprob;      /* TOKEN of a request with logprobs,
                                       its DONE of a stop id (that id's),
                                       and SCORE: the token's
                                       log-probability under the model
                                       (its raw logits, before penalties
                                       and temperature) */
    int32_t           rank;         /* SCORE: 1 + the tokens likelier
                                       than the prompt's, its ties
                                       counted (vLLM's) */
    int32_t           n_top;        /* its top_logprobs alternatives,
                                       likeliest first (lower id on a
                                       tie), valid during the call: */
    const int32_t    *top_ids;      /* [n_top] */
    const float      *top_logprobs; /* [n_top] */
    int32_t           cached_tokens;    /* TOKEN, and the DONE of a stop
                                           id: of the prompt, the tokens
                                           the request's first admission
                                           took from the prefix cache
                                           (the same on every one) */
    int32_t           accepted_prediction;  /* DONE: draft tokens from
                                           the prediction that were
                                           taken */
    int32_t           rejected_prediction;  /* DONE: and computed, not
                                           taken */
} slora_event_t;


typedef void (*slora_event_cb)(void *data, const slora_event_t *ev);


typedef struct {
    int32_t           waiting;
    int32_t           running;
    int32_t           pages_total;
    int32_t           pages_free;
    int32_t           pages_kv;
    int32_t           pages_adapter;
    int32_t           adapters_in_pool;
    int32_t           adapters_in_host;
    uint64_t          adapter_loads;        /* disk -> host */
    uint64_t          adapter_uploads;      /* host -> pool */
    uint64_t          adapter_warmed;       /* of them, ahead of need */
    uint64_t          adapter_evictions;    /* from the pool */
    uint64_t          adapter_hits;         /* found in the pool */
    uint64_t          preemptions;
    uint64_t          slo_aborted;          /* refused by schedule "slo" */
    uint64_t          rate_limited;         /* refused by their tenant's
                                               rate */
    uint64_t          steps;
    uint64_t          tokens_prefilled;
    uint64_t          tokens_decoded;
    int64_t           last_step_ns;
    int64_t           last_step_device_ns;  /* the device's part of it
                                               (0: not measured) */
    int64_t           last_step_rows_ns;    /* its rows worked out on
                                               the host after the
                                               forward: log-probabilities,
                                               host draws, JSON masks */
    int32_t           last_step_prefill;    /* its prefill tokens */
    int64_t           model_step_ns;        /* the step-time model
                                               (slora_sched.h): a step's
                                               own time, */
    int64_t           model_token_ns;       /* a token's, */
    double            model_pair_ns;        /* attention's per token and
                                               key (0: not timed) */
    int32_t           last_step_decode;     /* its decode tokens */
    int64_t           adapter_pool_elems;   /* pages of resident adapters,
                                               in elements of one layer */
    int64_t           adapter_used_elems;   /* of those, used by rows */

    int32_t           resolving;            /* waiting on the catalog */
    int32_t           adapters_pinned;      /* by the admin or hints */
    size_t            host_bytes;           /* host tier, now */
    size_t            host_bytes_peak;      /* the most after any step */
    size_t            host_budget;
    int32_t           pages_used_peak;      /* kv + adapter pages, the
                                               most after any step */
    size_t            pool_bytes;           /* the arena: pages_total
                                               pages in every layer */
    uint64_t          host_hits;            /* pool miss, host copy there */
    uint64_t          host_misses;          /* pool miss read from disk on
                                               the engine thread */
    uint64_t          host_evictions;
    uint64_t          prefetched;           /* host copies read by the
                                               prefetch thread */
    uint64_t          load_errors;          /* adapter reads that failed */
    int               catalog_redis;
    int               catalog_up;
    uint64_t          catalog_hits;
    uint64_t          catalog_misses;
    uint64_t          catalog_fetches;
    uint64_t          catalog_invalidations;
    uint64_t          catalog_reconnects;
    int32_t           pages_cached;         /* KV pages the prefix cache
                                               keeps that no request holds
                                               (reclaimable; not in
                                               pages_kv) */
    int32_t           prefix_pages;         /* pages the prefix cache
                                               indexes, held or not */
    uint64_t          prefix_lookups;       /* admissions that looked */
    uint64_t          prefix_hit_tokens;    /* tokens they took from it */
    uint64_t          prediction_accepted;  /* predictions' draft tokens
                                               taken (slora_draft.h), */
    uint64_t          prediction_rejected;  /* and computed, not taken */
    uint64_t          lookup_accepted;      /* drafts from requests' own
                                               tokens (speculate=lookup):
                                               taken, */
    uint64_t          lookup_rejected;      /* and computed, not taken */
    uint64_t          prefix_evictions;     /* pages reclaimed from it */
    uint64_t          schema_compiles;      /* constraints compiled at
                                               submit, */
    uint64_t          schema_hits;          /* and taken as kept
                                               (slora_engine_schemas.c) */
    int32_t           schemas_kept;         /* compiled ones kept, */
    int32_t           schemas_compiling;    /* on the compile thread
                                               (slora_engine_schema_ready),
                                               */
    size_t            schema_bytes;         /* their bytes */
} slora_engine_stats_t;


/* One adapter the catalog knows, for the admin API. */
typedef struct {
    const char       *name;
    const char       *path;
    const char       *tier;         /* "disk", "host" or "pool" */
    int               pinned;
    int32_t           refs;         /* running requests, and the pin */
    int32_t           rank;         /* 0: never read */
    size_t            host_bytes;
    int32_t           pool_pages;
} slora_adapter_info_t;


slora_engine_t *slora_engine_init(const slora_engine_conf_t *conf,
    slora_err_t *err);
void slora_engine_free(slora_engine_t *e);

/* Registers one more adapter under name, read from the PEFT folder dir
 * (its adapter_config.json is checked now, its weights on first use).
 * SLORA_DECLINED: the name is taken. */
int slora_engine_add_adapter(slora_engine_t *e, const char *name,
    const char *dir, slora_err_t *err);

/*
 * vLLM's runtime registration (load_lora_adapter, unload_lora_adapter;
 * slora_catalog_runtime_add): name served from the PEFT folder dir, which
 * must lie under the catalog's roots: the catalog's own entry with the
 * adapter directory, written to Redis with Redis. The folder's config
 * and weights are read and checked against the model before anything
 * changes, then the adapter is made resident as an admin load makes it.
 * replace: a name already served takes the new folder, its old copies
 * dropped as the last request holding them ends; else such a name is
 * refused. owner: who asks (with Redis a write's answer is its sender's
 * alone: the op's slot and generation). SLORA_OK: registered, *path the
 * folder's realpath as the catalog holds it (NULL where Redis took the
 * write but this engine has not read it back), err's text a note where
 * the adapter could not be made resident now (its first request reads
 * it); SLORA_AGAIN while a prefetch thread reads the folder's weights
 * (neither the engine's thread nor its streams wait for them), or with
 * Redis while the write is out: call again after a step (the engine's
 * wake fd says when either ended); SLORA_DECLINED: dir does not exist;
 * SLORA_UNAVAILABLE: Redis does not answer; SLORA_ERROR: refused.
 * Deregistering: the name is unknown from then on (with Redis its hash
 * is removed, whoever wrote it), its copies dropped as the requests
 * holding them end; with the directory a sub-folder of its name is
 * served again at once, listed from the next refresh. SLORA_DECLINED: no
 * such adapter; SLORA_ERROR: a sub-folder's, not registered.
 */
int slora_engine_register_adapter(slora_engine_t *e, const char *name,
    const char *dir, int replace, uint64_t owner, const char **path,
    slora_err_t *err);
int slora_engine_deregister_adapter(slora_engine_t *e, const char *name,
    uint64_t owner, slora_err_t *err);
/* A registration made by an engine before this one (the folder catalog:
 * the zone keeps them), served again: its config checked, its weights
 * read at its first request as any adapter's, so that a thousand of
 * them cost a new engine's start a thousand small reads. */
int slora_engine_restore_adapter(slora_engine_t *e, const char *name,
    const char *dir, slora_err_t *err);
/* A registration or deregistration of owner ended unanswered (its client
 * went away): the catalog's turn it held is given back. */
void slora_engine_abandon_registration(slora_engine_t *e, uint64_t owner);
/* A registration of owner was answered (by its caller, maybe before the
 * engine judged it): the folder's read it handed out, if any, is
 * dropped, so that the next registration's is handed out. */
void slora_engine_registration_end(slora_engine_t *e, uint64_t owner);

/*
 * Queues a request. SLORA_OK: queued, or resolving (its outcome comes as
 * events). Refusals known at once: SLORA_BUSY: the queue is full;
 * SLORA_DECLINED: the adapter is unknown; SLORA_FORBIDDEN: the tenant is
 * unknown or may not use the adapter; SLORA_UNAVAILABLE: the catalog
 * cannot answer; SLORA_ERROR: the request is invalid. err says which;
 * slora_engine_errcode() maps the status to a code.
 */
int slora_engine_submit(slora_engine_t *e, const slora_request_t *req,
    slora_err_t *err);

/* Ends a request at the next step; its pages are freed then and a DONE
 * event with SLORA_FINISH_CANCEL is delivered. SLORA_DECLINED if unknown. */
int slora_engine_cancel(slora_engine_t *e, uint64_t id);

/* Runs one iteration. Returns SLORA_OK after work, SLORA_DONE when there
 * was nothing to do, SLORA_AGAIN when only requests resolving in the
 * catalog are left (wait on slora_engine_wake_fd()), SLORA_ERROR on a
 * backend failure (the step's requests got an error event), SLORA_FATAL
 * when the backend cannot go on. */
int slora_engine_step(slora_engine_t *e, slora_event_cb cb, void *data);

const slora_model_config_t *slora_engine_model_config(
    const slora_engine_t *e);
void slora_engine_stats(const slora_engine_t *e, slora_engine_stats_t *st);

/* The pool's free pages as runs of consecutive pages: how many runs, and
 * the longest. A scan of every page (some 500 000 for SmolLM2 on an
 * H200, a millisecond), so it is not in slora_engine_stats, which a
 * driver may read after every step. */
void slora_engine_free_runs(const slora_engine_t *e, int32_t *runs,
    int32_t *longest);

/* Names of the adapters the catalog knows, for /v1/models. Returns the
 * count; names[i] stay valid until the next call or slora_engine_free.
 * With Redis: those read so far. */
int32_t slora_engine_adapters(slora_engine_t *e, const char ***names);

/* The adapter folder read again where it changed (slora_catalog_refresh:
 * adapters added, removed, replaced); 1 when the adapters changed, 0 when
 * not or with Redis, SLORA_ERROR when the folder cannot be read. A stat()
 * when nothing changed: a driver calls it every second or so. */
int slora_engine_refresh_adapters(slora_engine_t *e, slora_err_t *err);

/* The files of the folder's adapters with copies in host memory or the
 * pool (slora_adapters_check_files), 64 a call in turn: returns how many
 * were found rewritten in place and dropped, to be read again at their
 * next use, *name one of them (NULL if none). Two stat()s an adapter
 * (some 0.5 ms for 64); nothing with Redis. A driver calls it every
 * second or so. */
int32_t slora_engine_check_files(slora_engine_t *e, const char **name);

/* The tenant's catalog entry (Redis only), for its model list; valid
 * until the next step. SLORA_AGAIN: the catalog is reading it (call
 * again after the wake fd), SLORA_DECLINED: unknown, SLORA_UNAVAILABLE:
 * Redis does not answer and it was never read, SLORA_ERROR: the catalog
 * is the adapter directory (no tenants). */
int slora_engine_tenant(slora_engine_t *e, const char *name,
    const slora_catalog_tenant_t **t, slora_err_t *err);

/* Readable (an eventfd) when the catalog, prefetch or compile thread has
 * news; slora_engine_step() reads it. */
int slora_engine_wake_fd(const slora_engine_t *e);

/* 1 where a request of the constraint text (json_form form) may be
 * submitted now without a compile on the engine's thread: the engine
 * keeps it compiled (or the submit must compile it: none can be made
 * ahead, or the compile thread refused it and the submit says why). 0:
 * it compiles on the engine's compile thread; the wake fd is written
 * when it is done, and the caller holds the request back until a later
 * call says 1. The constraint compiled is spared for the request until
 * its submit, through the step after the one that saw it done: a caller
 * asks again after each step. A caller that cannot hold requests back
 * just submits: the submit compiles. */
int slora_engine_schema_ready(slora_engine_t *e, int form, const char *text,
    size_t len);

/* A constraint's key: its form and text hashed, never 0. */
uint64_t slora_engine_schema_key(int form, const char *text, size_t len);

/* The keys of up to n constraints the engine has compiled and keeps (not
 * those refused or compiling), the most recently taken first, into
 * keys[]; the count. A constraint whose key is among them compiles: a
 * caller that would compile one to refuse it early (nginx's worker) need
 * not. */
int32_t slora_engine_schema_keys(const slora_engine_t *e, uint64_t *keys,
    int32_t n);

/* Changes whenever a constraint is kept or cleared: the keys are read
 * again only where it moved. */
uint64_t slora_engine_schema_version(const slora_engine_t *e);

/* The code for a status slora_engine_submit() or an admin call returned. */
slora_errcode_e slora_engine_errcode(int status);

/*
 * Admin operations on one adapter by name. Each may return SLORA_AGAIN
 * (the catalog is reading the name: call again after the wake fd),
 * SLORA_DECLINED (unknown), SLORA_UNAVAILABLE (catalog down).
 *   load:   read it and make it resident in the pool (idle, evictable);
 *           SLORA_BUSY: the pool has no room now; SLORA_ERROR: unreadable
 *   unload: drop it from the pool and the host tier; SLORA_BUSY: running
 *           requests or a pin hold it
 *   pin:    load it and never evict it; unpin: evictable again
 *           (SLORA_DECLINED if it was not pinned)
 */
int slora_engine_adapter_load(slora_engine_t *e, const char *name,
    slora_err_t *err);
int slora_engine_adapter_unload(slora_engine_t *e, const char *name,
    slora_err_t *err);
int slora_engine_adapter_pin(slora_engine_t *e, const char *name,
    slora_err_t *err);
int slora_engine_adapter_unpin(slora_engine_t *e, const char *name,
    slora_err_t *err);

/*
 * Forgets every page the prefix cache keeps, as if it had never kept
 * any: none is found again; those no request holds go back to the pool
 * now, those running requests hold when they let go of them. Returns
 * how many went back now (0 without the cache). For operators (cold-
 * cache measurements, dropping what earlier prompts left in memory).
 */
int32_t slora_engine_prefix_flush(slora_engine_t *e);

/*
 * Reads every adapter the catalog lists (with Redis: those read so far)
 * into the host tier, in the list's order, each one that fits in what is
 * left of the tier's budget (host_cache_bytes); those already in host
 * memory are kept. The images are read on up to n_threads threads at
 * once (no more than 64) and installed here, so a later request of a
 * preloaded adapter only copies it from host memory to the pool, as in
 * S-LoRA's measurements. For before serving: it returns when all are
 * read. The images count as loads and as prefetched in the stats.
 * *loaded: the listed adapters in host memory when it returns.
 * SLORA_ERROR: an adapter cannot be read (err names the first found);
 * the others are read and installed all the same.
 */
int slora_engine_preload(slora_engine_t *e, int32_t *loaded,
    slora_err_t *err);

/* The adapters the catalog knows, sorted by name, with their tier: those
 * after the name after (NULL or "": from the first), at most max of them
 * (0: all), so that a page of a long listing costs its own length; valid
 * until the next call, slora_engine_step() or slora_engine_free. Returns
 * the count. */
int32_t slora_engine_adapter_list(slora_engine_t *e, const char *after,
    int32_t max, const slora_adapter_info_t **list);


#endif /* SLORA_ENGINE_H */
