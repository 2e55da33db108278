/*
 * slora_queue.h: the shared zone between nginx workers and the engine
 * process, as an ABI both sides compile: a header (magic, version, engine
 * epoch and heartbeat, counters, histograms), a fixed array of request
 * slots with their prompt and output token buffers, a submission ring
 * (workers to engine), the table of adapter names the engine knows and
 * the adapters registered at run time, which outlive an engine.
 *
 * The one idea: a slot is owned by two parties at once, the worker that
 * serves the HTTP request and the engine that runs it, each holding one bit
 * of slot->refs; whoever drops the last bit returns the slot to FREE. So a
 * client may vanish mid-generation (the worker sets cancel and leaves) and
 * the engine may die mid-generation (its successor, seeing an older epoch,
 * fails the slot and drops the dead engine's bit), and so may a worker
 * (the engine, finding its pid gone, cancels and drops the worker's bit),
 * without a slot ever being reused while the other side still writes to
 * it.
 *
 * Everything in the region is addressed by offsets from its base, with
 * fixed-width fields and C11 atomics, because each process maps it at its
 * own address. Tokens are published by the engine with a release store of
 * slot->n_out; a reader loads it with acquire and may then read that many.
 *
 * Slot life:  FREE -claim-> CLAIMED -submit-> SUBMITTED -engine-> RUNNING
 *             -> FINISHED | FAILED -> (both bits dropped) FREE.
 */

#ifndef SLORA_QUEUE_H
#define SLORA_QUEUE_H


#include <stdatomic.h>

#include "slora_core.h"


#define SLORA_QUEUE_MAGIC        0x514c5253u        /* "SRLQ" */
#define SLORA_QUEUE_VERSION      46

#define SLORA_QUEUE_ADAPTER_LEN  128    /* adapter name, NUL included */
#define SLORA_QUEUE_TENANT_LEN   128    /* tenant name, NUL included */
#define SLORA_QUEUE_CODE_LEN     32     /* OpenAI error code */
#define SLORA_QUEUE_ERR_LEN      256
#define SLORA_QUEUE_SCHEMA_KEYS  64     /* constraints known to compile */
#define SLORA_QUEUE_STOP_IDS     32     /* the model's and a request's */
#define SLORA_QUEUE_BIAS_MAX     300    /* logit_bias entries */
#define SLORA_QUEUE_ALLOWED_MAX  300    /* allowed_token_ids entries */
#define SLORA_QUEUE_BAD_MAX      256    /* bad_words' runs: a length, then
                                           that many token ids, each */
#define SLORA_QUEUE_SCHEMA_LEN   (16384 + 32)  /* a response_format
                                           schema's text and a lazy
                                           one's trigger
                                           (SLORA_JSON_SCHEMA_MAX +
                                           SLORA_JSON_TRIGGER_MAX) */
#define SLORA_QUEUE_SLOTS_MAX    4096   /* slots of a zone: requests
                                           running or waiting, as many
                                           as the engine lets wait by
                                           default (slora_engine.h,
                                           max_waiting) */
#define SLORA_QUEUE_NAMES_BYTES  (256 * 1024)
#define SLORA_QUEUE_NAME_SLOTS   (SLORA_QUEUE_NAMES_BYTES)  /* a power of
                                    two, twice the names that fit (each
                                    takes two bytes at least) */

#define SLORA_QUEUE_PATH_LEN     1280   /* a registered adapter's folder,
                                           NUL included
                                           (SLORA_ADAPTER_PATH_LEN) */
#define SLORA_QUEUE_REGISTRY_MAX 1024   /* adapters registered at run
                                           time (vLLM's
                                           load_lora_adapter) */

#define SLORA_REF_WORKER         1u
#define SLORA_REF_ENGINE         2u


typedef enum {
    SLORA_SLOT_FREE = 0,
    SLORA_SLOT_CLAIMED,                 /* a worker is filling it */
    SLORA_SLOT_SUBMITTED,               /* in the ring */
    SLORA_SLOT_RUNNING,                 /* the engine has it */
    SLORA_SLOT_FINISHED,                /* n_out final, finish set */
    SLORA_SLOT_FAILED                   /* err_status and err set */
} slora_slot_state_e;


/*
 * What a slot asks of the engine. GENERATE runs a request; the others are
 * answered at once (or after the catalog has read a name) by the engine
 * process, which writes its answer into the slot's prompt buffer, read as
 * bytes (answer_len of them), and then finishes the slot:
 *   MODELS    the adapters the slot's tenant may use (no tenant: those the
 *             catalog knows), sorted by name, each "d" (the tenant's
 *             default) or "-", the name and a NUL; first, for a tenant
 *             without a default adapter, "bbase" and a NUL: the base
 *             model is its default;
 *   ADAPTERS  the adapter list with tiers, comma-separated JSON objects;
 *   LOAD, UNLOAD, PIN, UNPIN  on the adapter named in slot->adapter;
 *   PREFIX_FLUSH  empties the prefix cache: the pages it returned to the
 *             pool now, in decimal digits.
 * Listings start after the name in slot->adapter ("": from the first); one
 * that did not fit sets more and leaves the last name it wrote there.
 */
typedef enum {
    SLORA_OP_GENERATE = 0,
    SLORA_OP_MODELS,
    SLORA_OP_ADAPTERS,
    SLORA_OP_LOAD,
    SLORA_OP_UNLOAD,
    SLORA_OP_PIN,
    SLORA_OP_UNPIN,
    SLORA_OP_PREFIX_FLUSH,
    SLORA_OP_REGISTER,                  /* the adapter's folder in the
                                           prompt buffer, n_prompt bytes */
    SLORA_OP_REPLACE,                   /* the same, over a served name */
    SLORA_OP_DEREGISTER
} slora_op_e;


/* Histograms: cumulative buckets in seconds (Prometheus "le"), the last
 * bucket is +Inf. Observations are stored in microseconds. */
#define SLORA_HIST_BUCKETS  14

typedef struct {
    _Atomic uint64_t   bucket[SLORA_HIST_BUCKETS];
    _Atomic uint64_t   count;
    _Atomic uint64_t   sum_us;
} slora_hist_t;

extern const double  slora_hist_le[SLORA_HIST_BUCKETS - 1];


/* Fine histograms, for what takes microseconds: buckets 1, 2, 3, 5, 7
 * per decade from 1 us to 1 s, then +Inf; observations in nanoseconds. */
#define SLORA_HIST_FINE_BUCKETS  32

typedef struct {
    _Atomic uint64_t   bucket[SLORA_HIST_FINE_BUCKETS];
    _Atomic uint64_t   count;
    _Atomic uint64_t   sum_ns;
} slora_hist_fine_t;

extern const double  slora_hist_fine_le[SLORA_HIST_FINE_BUCKETS - 1];


/* HTTP statuses counted in requests_total; the last index is "other". */
#define SLORA_STATUS_N  14

extern const int  slora_status_codes[SLORA_STATUS_N - 1];


typedef struct {
    _Atomic uint64_t   seq;
    uint32_t           slot;
    uint32_t           gen;
} slora_ring_cell_t;


/* A bounded multi-producer single-consumer ring (Vyukov's sequence
 * cells): producers race on tail with a CAS, the consumer alone moves
 * head. cap is a power of two. */
typedef struct {
    uint32_t           cap;
    uint32_t           pad;
    _Atomic uint64_t   head;
    _Atomic uint64_t   tail;
    slora_ring_cell_t  cells[];         /* [cap] */
} slora_ring_t;


typedef struct {
    _Atomic uint32_t   state;           /* slora_slot_state_e */
    _Atomic uint32_t   refs;            /* SLORA_REF_WORKER | _ENGINE */
    _Atomic uint32_t   cancel;          /* set by the worker */
    _Atomic int32_t    n_out;           /* tokens published */
    uint32_t           gen;             /* bumped at every claim */
    uint32_t           epoch;           /* engine epoch that ran it */
    uint32_t           op;              /* slora_op_e */
    int32_t            worker_pid;      /* the claimer's: a slot whose
                                           worker died is reaped */

    char               adapter[SLORA_QUEUE_ADAPTER_LEN]; /* "": base;
                                           "default": the tenant's;
                                           "base": base under a tenant */
    char               tenant[SLORA_QUEUE_TENANT_LEN];   /* "": none */
    uint64_t           cache_salt[2];   /* slora_request_t's: the prefix
                                           cache shares pages only within
                                           one salt; {0, 0}: none */
    uint32_t           rate_free;       /* 1: its tenant's rate does not
                                           count it (a request's slots
                                           after its first) */

    float              temperature;
    float              top_p;
    float              min_p;
    float              repeat_penalty;
    float              frequency_penalty;
    float              presence_penalty;
    int32_t            logprobs;        /* -1: none; else how many
                                           alternatives each token's
                                           log-probability comes with */
    int32_t            top_k;
    int32_t            json;            /* 1: JSON mode (response_format
                                           json_object) */
    uint32_t           schema_len;      /* bytes of a response_format
                                           json_schema's text in
                                           slora_queue_schema(); 0: none */
    int32_t            schema_form;     /* what that text is
                                           (slora_json_form_e): a JSON
                                           schema, vLLM's guided_choice,
                                           its guided_regex or its
                                           guided_grammar */
    int32_t            json_compact;    /* 1: that schema's JSON, or JSON
                                           mode's, without blanks
                                           between tokens */
    uint32_t           trigger_len;     /* a lazy schema's trigger, its
                                           bytes after the schema's in
                                           slora_queue_schema(); 0: the
                                           schema holds throughout */
    int32_t            trigger_lead;    /* 1: a lead trigger, 2: the
                                           value ends the output
                                           (slora_request_t's
                                           json_trigger_lead) */
    uint32_t           gate_len;        /* the trigger's gate, its bytes
                                           after the trigger's
                                           (slora_request_t's
                                           json_gate); 0: none */
    int32_t            prompt_logprobs; /* -1: none; else every prompt
                                           token after the first gets its
                                           log-probability record
                                           (slora_queue_score), its rank
                                           and this many alternatives
                                           (0..top_cap), before the first
                                           token is published or the
                                           slot finishes; max_tokens may
                                           then be 0 */
    uint64_t           seed;
    int32_t            max_tokens;
    int32_t            min_tokens;      /* stop ids held back until then */
    int32_t            n_prompt;
    int32_t            n_prediction;    /* a prediction of the output
                                           (slora_request_t.prediction):
                                           its tokens follow the prompt's
                                           in the slot's prompt buffer */
    int32_t            accepted_prediction; /* written by the engine
                                           before it finishes the slot:
                                           the prediction's draft tokens
                                           taken, */
    int32_t            rejected_prediction; /* and computed, not taken */
    int32_t            n_cached;        /* of the prompt, the tokens taken
                                           from the prefix cache: written
                                           by the engine before it
                                           publishes the first token */
    int32_t            n_stop_ids;
    int32_t            stop_ids[SLORA_QUEUE_STOP_IDS];
    int32_t            n_logit_bias;    /* added to these tokens' logits */
    int32_t            logit_bias_ids[SLORA_QUEUE_BIAS_MAX];
    float              logit_bias[SLORA_QUEUE_BIAS_MAX];
    int32_t            n_allowed;       /* vLLM's allowed_token_ids: only
                                           these are drawn; 0: any */
    int32_t            allowed_ids[SLORA_QUEUE_ALLOWED_MAX];
    int32_t            n_bad;           /* vLLM's bad_words as runs of
                                           tokens (slora_sampling_t's
                                           bad_ids); 0: none */
    int32_t            bad_ids[SLORA_QUEUE_BAD_MAX];

    int32_t            finish;          /* slora_finish_e */
    int32_t            stop_token;      /* STOP by a stop id: that id (no
                                           TOKEN published it); else -1 */
    float              stop_logprob;    /* with logprobs, that id's log-
                                           probability; else 0 */
    int32_t            err_status;      /* HTTP status of a failure */
    char               err[SLORA_QUEUE_ERR_LEN];
    char               err_code[SLORA_QUEUE_CODE_LEN];  /* "": by status */
    int32_t            retry_after;     /* seconds, for Retry-After of a
                                           429; 0: the worker's default */

    uint32_t           answer_len;      /* bytes of an op's answer */
    uint32_t           more;            /* a listing goes on */

    int64_t            t_submit_ns;     /* CLOCK_MONOTONIC */
    int64_t            t_start_ns;
    int64_t            t_end_ns;
} slora_slot_t;


typedef struct {
    uint32_t           n_slots;
    uint32_t           prompt_cap;      /* tokens per slot */
    uint32_t           output_cap;      /* tokens per slot */
    uint32_t           top_cap;         /* alternatives a token's
                                           log-probability record holds,
                                           0..SLORA_QUEUE_TOP_MAX */
} slora_queue_geom_t;


#define SLORA_QUEUE_TOP_MAX      20


/* One alternative of a token: an id and its log-probability. */
typedef struct {
    int32_t            id;
    float              logprob;
} slora_top_t;


/* A token's log-probability and its n_top likeliest alternatives (the
 * record holds top_cap); a prompt token's rank too (an output token's 0). */
typedef struct {
    float              logprob;
    int32_t            rank;
    int32_t            n_top;
    slora_top_t        top[];
} slora_logprob_t;


/* One slot of the names' hash index: where the name starts in the names
 * area, plus one (0: empty), and its index among them. */
typedef struct {
    uint32_t           off1;
    uint32_t           index;
} slora_name_slot_t;


/* An adapter registered at run time: written by the zone's engine only
 * (one at a time), read by the next one at its start, and by the master
 * while the engine may be writing it (a reload's copy): seq is odd while
 * a write is under way, and moves with each. */
typedef struct {
    _Atomic uint32_t   seq;
    uint32_t           used;
    char               name[SLORA_QUEUE_ADAPTER_LEN];
    char               path[SLORA_QUEUE_PATH_LEN];
} slora_registration_t;


typedef struct {
    uint32_t           magic;
    uint32_t           version;
    uint64_t           size;
    uint64_t           conf_hash;

    slora_queue_geom_t geom;
    uint32_t           ring_cap;
    uint64_t           slots_off;       /* slora_slot_t [n_slots] */
    uint64_t           prompt_off;      /* int32_t [n_slots][prompt_cap] */
    uint64_t           output_off;      /* int32_t [n_slots][output_cap] */
    uint64_t           published_off;   /* int64_t [n_slots][output_cap] */
    uint64_t           logprobs_off;    /* slora_logprob_t records,
                                           [n_slots][output_cap] */
    uint64_t           ring_off;        /* slora_ring_t */
    uint64_t           names_off;       /* char [SLORA_QUEUE_NAMES_BYTES] */
    uint64_t           name_ix_off;     /* slora_name_slot_t
                                           [SLORA_QUEUE_NAME_SLOTS] */
    uint64_t           registry_off;    /* slora_registration_t
                                           [SLORA_QUEUE_REGISTRY_MAX] */
    uint64_t           scores_off;      /* slora_logprob_t records,
                                           [n_slots][prompt_cap]; not
                                           zeroed by init */
    uint64_t           schemas_off;     /* char [n_slots]
                                           [SLORA_QUEUE_SCHEMA_LEN]; not
                                           zeroed by init */

    /* engine state, written by the engine */
    _Atomic uint32_t   epoch;           /* 0: no engine ever started */
    _Atomic uint32_t   ready;           /* model loaded, names published */
    _Atomic int32_t    engine_pid;
    _Atomic uint32_t   restarts;
    _Atomic int64_t    heartbeat_ns;
    _Atomic int32_t    n_ctx;           /* context length the engine runs */
    _Atomic uint32_t   n_names;
    _Atomic uint32_t   names_all;       /* every adapter's name is in
                                           names (else the engine is
                                           asked: slora_queue_names_all) */
    _Atomic int64_t    registry_copied_ns;  /* when a reload's master
                                           copied the registry into its
                                           new zone (0: never) */
    char               engine_err[SLORA_QUEUE_ERR_LEN];

    _Atomic int32_t    waiting;
    _Atomic int32_t    running;
    _Atomic int32_t    pages_total;
    _Atomic int32_t    pages_free;
    _Atomic int32_t    pages_kv;
    _Atomic int32_t    pages_adapter;
    _Atomic int32_t    adapters_in_pool;
    _Atomic int32_t    adapters_in_host;
    _Atomic uint64_t   adapter_loads;
    _Atomic uint64_t   adapter_evictions;
    _Atomic uint64_t   adapter_hits;
    _Atomic uint64_t   adapter_uploads;     /* host -> pool */
    _Atomic uint64_t   adapter_warmed;      /* of them, ahead of need */
    _Atomic int32_t    adapters_pinned;
    _Atomic int32_t    resolving;           /* waiting on the catalog */
    _Atomic uint64_t   host_bytes;          /* host tier, now */
    _Atomic uint64_t   host_budget;
    _Atomic uint64_t   host_hits;
    _Atomic uint64_t   host_misses;
    _Atomic uint64_t   host_evictions;
    _Atomic uint64_t   prefetched;
    _Atomic uint64_t   load_errors;
    _Atomic uint32_t   catalog_redis;
    _Atomic uint32_t   catalog_up;
    _Atomic uint64_t   catalog_hits;
    _Atomic uint64_t   catalog_misses;
    _Atomic uint64_t   catalog_fetches;
    _Atomic uint64_t   catalog_invalidations;
    _Atomic uint64_t   catalog_reconnects;
    _Atomic uint64_t   host_bytes_peak;     /* the most after any step */
    _Atomic int32_t    pages_used_peak;     /* kv + adapter, likewise */
    _Atomic uint64_t   pool_bytes;          /* the arena, every layer */
    _Atomic uint64_t   preemptions;         /* requests put back to wait */
    _Atomic uint64_t   slo_aborted;         /* refused by schedule=slo */
    _Atomic uint64_t   rate_limited;        /* refused by their tenant's
                                               rate */
    _Atomic int32_t    pages_cached;        /* KV pages the prefix cache
                                               keeps, no request's */
    _Atomic int32_t    prefix_pages;        /* pages it indexes */
    _Atomic uint64_t   prefix_lookups;      /* admissions that looked */
    _Atomic uint64_t   prefix_hit_tokens;   /* prompt tokens it gave */
    _Atomic uint64_t   prefix_evictions;    /* pages reclaimed from it */
    _Atomic uint64_t   schema_compiles;     /* constraints compiled, */
    _Atomic uint64_t   schema_hits;         /* taken as kept, */
    _Atomic int32_t    schemas_kept;        /* kept, */
    _Atomic int32_t    schemas_compiling;   /* on the compile thread, */
    _Atomic uint64_t   schema_bytes;        /* their bytes */
    _Atomic uint64_t   schema_known_hits;   /* requests whose constraint
                                               a worker found among: */
    _Atomic uint64_t   schema_keys[SLORA_QUEUE_SCHEMA_KEYS];
                                            /* the keys of constraints the
                                               engine compiled and keeps,
                                               the last used first
                                               (slora_engine_schema_keys;
                                               0: none), which a worker
                                               need not compile to check */
    _Atomic uint64_t   prediction_accepted; /* predictions' draft tokens
                                               taken, */
    _Atomic uint64_t   prediction_rejected; /* and not */
    _Atomic uint64_t   lookup_accepted;     /* lookup's draft tokens
                                               (speculate=lookup) taken, */
    _Atomic uint64_t   lookup_rejected;     /* and not */
    _Atomic int64_t    model_step_ns;       /* the step-time model: a
                                               step's own time, */
    _Atomic int64_t    model_token_ns;      /* a token's, */
    _Atomic int64_t    model_pair_ps;       /* attention's per token and
                                               key, in picoseconds */
    slora_hist_t       step_seconds;

    /* request accounting, written by workers */
    _Atomic uint32_t   slots_used;
    _Atomic uint64_t   requests_total;
    _Atomic uint64_t   requests_by_status[SLORA_STATUS_N];
    _Atomic uint64_t   tokens_prompt;
    _Atomic uint64_t   tokens_completion;
    slora_hist_t       ttft_seconds;
    slora_hist_t       inter_token_seconds;
    slora_hist_fine_t  delivery_seconds; /* publish to socket write */
} slora_queue_t;


/* Bytes a region of this geometry needs (0 if it overflows). */
size_t slora_queue_size(const slora_queue_geom_t *g);

/* Lays a fresh region out in base[0..size). Everything is zeroed. */
int slora_queue_init(void *base, size_t size, const slora_queue_geom_t *g,
    uint64_t conf_hash, slora_err_t *err);

/* Checks that base holds a region of this version and geometry. */
int slora_queue_check(const slora_queue_t *q, const slora_queue_geom_t *g,
    slora_err_t *err);

slora_slot_t *slora_queue_slot(slora_queue_t *q, uint32_t i);
int32_t *slora_queue_prompt(slora_queue_t *q, uint32_t i);  /* [prompt_cap] */
int32_t *slora_queue_output(slora_queue_t *q, uint32_t i);  /* [output_cap] */
/* When each output token was published, CLOCK_MONOTONIC ns; entry k is
 * written before n_out passes k, so it reads like the token itself. */
int64_t *slora_queue_published(slora_queue_t *q, uint32_t i);
/* Bytes of one token's log-probability record (top_cap alternatives):
 * 8-aligned; a slot's records lie one after another. */
size_t slora_queue_lp_size(const slora_queue_geom_t *g);
/* Output token k's log-probability record (written, as the token, before
 * n_out passes k; filled only for a slot that asked for them). */
slora_logprob_t *slora_queue_logprob(slora_queue_t *q, uint32_t i,
    uint32_t k);
/* Prompt token k's log-probability record, k >= 1, for a slot with
 * prompt_logprobs (written by the engine before it publishes the first
 * token or finishes the slot; never zeroed, so read only then). */
slora_logprob_t *slora_queue_score(slora_queue_t *q, uint32_t i,
    uint32_t k);
/* Slot i's response_format schema text, slot->schema_len bytes (written
 * by the worker before it submits; never zeroed). */
char *slora_queue_schema(slora_queue_t *q, uint32_t i);
slora_ring_t *slora_queue_ring(slora_queue_t *q);

/* Worker side. claim: FREE -> CLAIMED, refs = WORKER, gen bumped; hint
 * spreads the search start. SLORA_BUSY when every slot is taken. */
int slora_queue_claim(slora_queue_t *q, uint32_t hint, uint32_t *idx);

/* CLAIMED -> SUBMITTED with the engine's bit set, then into the ring.
 * The slot's fields must be filled before. */
int slora_queue_submit(slora_queue_t *q, uint32_t idx);

/* Drops who's bit (SLORA_REF_WORKER or _ENGINE); the last one frees the
 * slot. Returns 1 if the slot became FREE. */
int slora_queue_release(slora_queue_t *q, uint32_t idx, uint32_t who);

/* Engine side: the slots whose worker died (killed, or crashed) without
 * letting them go: each gets its cancel flag and loses the worker's bit,
 * as that worker's release would have done, so that the engine stops
 * its request and the slot comes back. Returns how many. */
uint32_t slora_queue_reap(slora_queue_t *q);

/* Engine side, at a new engine's start (the ring's one consumer): a pop
 * cut between its two stores by the old engine's death, mended (else
 * the producers a lap later find that cell full for good). Returns how
 * many cells it mended. */
uint32_t slora_ring_repair(slora_ring_t *r);

/* Engine side, once a second after slora_queue_reap: what a worker
 * killed inside a submission left. A push cut between its two stores
 * leaves the ring's head cell claimed and never published, and every
 * later submission waits behind it; a worker killed after marking its
 * slot submitted leaves that slot submitted with only the engine's bit,
 * never popped. Such a slot ("lost": submitted, no worker's bit, not
 * held by the engine) seen at two looks in a row is failed and let go;
 * the head cell unpublished at two looks in a row while a lost slot
 * waits is released unread (a live worker publishes within
 * instructions; only a dead one leaves it so for a second). held[i]:
 * the engine holds slot i (running, or waiting on the catalog). r keeps
 * what a look saw for the next; zeroed at first, marks [n_slots].
 * Returns the cells released and the slots let go. */
typedef struct {
    uint64_t           stuck;           /* head + 1 seen unpublished */
    uint32_t          *marks;           /* [n_slots]: gen + 1 seen lost */
} slora_recover_t;

uint32_t slora_queue_recover(slora_queue_t *q, const uint8_t *held,
    slora_recover_t *r);

/* Engine side: the terminal transitions. Both publish with release
 * stores and drop the engine's bit. */
void slora_queue_finish(slora_queue_t *q, uint32_t idx, int32_t finish);
void slora_queue_fail(slora_queue_t *q, uint32_t idx, int32_t status,
    const char *msg);

/* Appends a token and its publish time, and with lp its log-probability
 * and up to top_cap of its n_top alternatives; SLORA_BUSY if the output
 * buffer is full. */
int slora_queue_publish(slora_queue_t *q, uint32_t idx, int32_t token,
    float logprob, int32_t n_top, const int32_t *top_ids,
    const float *top_logprobs);

/*
 * Adapters registered at run time (engine side), kept in the zone so that
 * an engine respawned after a crash serves them again, and copied into a
 * reload's new zone (slora_queue_registry_copy) for its new engine.
 * put: name's folder, replacing one of that name; SLORA_BUSY when the
 * table is full. drop: 1 when name was there. get: entry i
 * (< SLORA_QUEUE_REGISTRY_MAX), NULL where unused.
 */
int slora_queue_registry_put(slora_queue_t *q, const char *name,
    const char *path);
int slora_queue_registry_drop(slora_queue_t *q, const char *name);
/* Whether put would find room for name. */
int slora_queue_registry_room(const slora_queue_t *q, const char *name);
const slora_registration_t *slora_queue_registry_get(const slora_queue_t *q,
    uint32_t i);
/* The registrations of from into to (a fresh zone), as many as fit. */
void slora_queue_registry_copy(slora_queue_t *to, const slora_queue_t *from);

/* Adapter names, published by the engine once loaded; as many as fit in
 * SLORA_QUEUE_NAMES_BYTES (the rest: an error, and names_all 0). */
int slora_queue_set_names(slora_queue_t *q, const char **names,
    uint32_t n, slora_err_t *err);
/* The published names are no longer all the engine's adapters (its
 * folder changed since): workers leave the names they lack, and lists,
 * to the engine from then on. */
void slora_queue_names_stale(slora_queue_t *q);
/* Whether the published names are all the engine's adapters: if not, a
 * name missing from them may still be one, which only the engine knows,
 * and a list of them is the engine's to answer. */
int slora_queue_names_all(slora_queue_t *q);
/* Index of name among the published names, -1 if absent: one probe or a
 * few of the names' hash index in the zone, which the engine writes with
 * them, so a worker checks a request's adapter in constant time. */
int32_t slora_queue_find_name(slora_queue_t *q, const char *name,
    size_t len);
/* Iterates: *pos starts at 0; returns the next name or NULL. */
const char *slora_queue_next_name(slora_queue_t *q, uint32_t *pos);

/* Ring primitives (exposed for tests). */
size_t slora_ring_size(uint32_t cap);
void slora_ring_init(slora_ring_t *r, uint32_t cap);
int slora_ring_push(slora_ring_t *r, uint32_t slot, uint32_t gen);
int slora_ring_pop(slora_ring_t *r, uint32_t *slot, uint32_t *gen);

/* Histograms and status accounting. */
void slora_hist_observe(slora_hist_t *h, double seconds);
void slora_hist_fine_observe(slora_hist_fine_t *h, int64_t ns);
void slora_queue_count_status(slora_queue_t *q, int status);


#endif /* SLORA_QUEUE_H */
