/*
 * slora_engine.h: the engine as a library. It owns a model, a backend,
 * the unified pool, the adapter tiers and the scheduler; callers submit
 * requests of token ids and call slora_engine_step() in a loop, receiving
 * tokens through a callback. The nginx engine process, the command-line
 * tool and the tests all drive it the same way. Nothing here knows text:
 * tokenizing and stop strings belong to the caller.
 *
 * Not thread-safe: one thread owns an engine.
 */

#ifndef SLORA_ENGINE_H
#define SLORA_ENGINE_H


#include "slora_core.h"
#include "slora_model.h"


typedef struct slora_engine_s  slora_engine_t;


typedef struct {
    const char   *model_path;       /* GGUF file or HF folder */
    const char   *adapter_dir;      /* embedded catalog: sub-folder = adapter */
    const char   *device;           /* "cpu" (default) */
    int32_t       n_threads;        /* 0: all cores */
    size_t        pool_bytes;       /* 0: default (KV for max_running
                                       sequences of max_ctx plus room) */
    size_t        host_cache_bytes; /* host tier budget; 0: 1 GiB */
    int32_t       max_batch_tokens; /* token budget of one step; 0: 512 */
    int32_t       max_running;      /* running sequences at most; 0: 64 */
    int32_t       max_ctx;          /* 0: the model's, capped at 4096 */
    int32_t       max_waiting;      /* queued requests at most; 0: 4096 */
} slora_engine_conf_t;


typedef struct {
    float         temperature;      /* 0: greedy */
    int32_t       top_k;            /* 0: off */
    float         top_p;            /* 1: off */
    float         repeat_penalty;   /* 1: off */
    uint64_t      seed;
    int32_t       max_tokens;       /* new tokens at most, > 0 */
} slora_sampling_t;


typedef struct {
    uint64_t          id;           /* the caller's, echoed in events */
    const char       *adapter;      /* adapter name; NULL or "": base model */
    const int32_t    *prompt;       /* [n_prompt] */
    int32_t           n_prompt;
    const int32_t    *stop_ids;     /* tokens that end generation (EOS...) */
    int32_t           n_stop_ids;
    slora_sampling_t  sampling;
} slora_request_t;


/* A stop id ends a request with DONE (finish STOP, token: the id) and is
 * not delivered as a TOKEN. */
typedef enum {
    SLORA_EV_TOKEN = 0,             /* token: one new token */
    SLORA_EV_DONE,                  /* finish: why it ended */
    SLORA_EV_ERROR                  /* error: text; the request is over */
} slora_event_e;


typedef enum {
    SLORA_FINISH_NONE = 0,
    SLORA_FINISH_STOP,              /* a stop id was sampled */
    SLORA_FINISH_LENGTH,            /* max_tokens or context reached */
    SLORA_FINISH_CANCEL             /* slora_engine_cancel() */
} slora_finish_e;


typedef struct {
    slora_event_e     type;
    uint64_t          id;
    int32_t           token;
    slora_finish_e    finish;
    const char       *error;
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
    uint64_t          adapter_evictions;    /* from the pool */
    uint64_t          adapter_hits;         /* found in the pool */
    uint64_t          preemptions;
    uint64_t          steps;
    uint64_t          tokens_prefilled;
    uint64_t          tokens_decoded;
    int64_t           last_step_ns;
    int64_t           adapter_pool_elems;   /* pages of resident adapters,
                                               in elements of one layer */
    int64_t           adapter_used_elems;   /* of those, used by rows */
    int32_t           free_runs;            /* runs of consecutive free
                                               pages */
    int32_t           free_run_max;         /* the longest, in pages */
} slora_engine_stats_t;


slora_engine_t *slora_engine_init(const slora_engine_conf_t *conf,
    slora_err_t *err);
void slora_engine_free(slora_engine_t *e);

/* Registers one more adapter under name, read from the PEFT folder dir
 * (its adapter_config.json is checked now, its weights on first use).
 * SLORA_DECLINED: the name is taken. */
int slora_engine_add_adapter(slora_engine_t *e, const char *name,
    const char *dir, slora_err_t *err);

/* Queues a request. SLORA_BUSY: the queue is full; SLORA_DECLINED: the
 * adapter is unknown; SLORA_ERROR: the request is invalid (err says). */
int slora_engine_submit(slora_engine_t *e, const slora_request_t *req,
    slora_err_t *err);

/* Ends a request at the next step; its pages are freed then and a DONE
 * event with SLORA_FINISH_CANCEL is delivered. SLORA_DECLINED if unknown. */
int slora_engine_cancel(slora_engine_t *e, uint64_t id);

/* Runs one iteration. Returns SLORA_OK after work, SLORA_DONE when there
 * was nothing to do, SLORA_ERROR on a backend failure. */
int slora_engine_step(slora_engine_t *e, slora_event_cb cb, void *data);

const slora_model_config_t *slora_engine_model_config(
    const slora_engine_t *e);
void slora_engine_stats(const slora_engine_t *e, slora_engine_stats_t *st);

/* Names of the adapters the catalog knows, for /v1/models. Returns the
 * count; names[i] stay valid until the next call or slora_engine_free. */
int32_t slora_engine_adapters(slora_engine_t *e, const char ***names);


#endif /* SLORA_ENGINE_H */
