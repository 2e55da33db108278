/*
 * slora_engine_int.h: the engine's private layout, shared by its files:
 * slora_engine.c (life, submission, steps, stats), slora_engine_take.c
 * (what a step's picks do to their requests, drafts and their
 * verifying), slora_engine_host.c (the rows worked out on the host) and
 * slora_engine_adapters.c (adapters by name through the catalog,
 * requests waiting on the catalog or on a read, prefetch and hints, the
 * admin operations), slora_engine_lazy.c (a request's constraint set up)
 * and slora_engine_schemas.c (compiled constraints kept).
 */

#ifndef SLORA_ENGINE_INT_H
#define SLORA_ENGINE_INT_H


#include <stdio.h>

#include "slora_engine.h"
#include "slora_backend.h"
#include "slora_pool.h"
#include "slora_adapter.h"
#include "slora_sched.h"
#include "slora_sampler.h"
#include "slora_prefetch.h"
#include "slora_threads.h"
#include "slora_json.h"
#include "slora_draft.h"


#define SLORA_ENGINE_MAX_CTX        4096
#define SLORA_ENGINE_POOL_CAP       ((size_t) 2 << 30)
#define SLORA_ENGINE_REAP           64
#define SLORA_ENGINE_LOOKAHEAD      64      /* waiting requests prefetched */
#define SLORA_ENGINE_WARM           16      /* and uploaded ahead */
#define SLORA_ENGINE_LOOKUP_RUNNING 1       /* speculate=lookup drafts while
                                               the engine holds this many
                                               requests, at most (on the
                                               CPU a row costs near half a
                                               lone step: bench/
                                               RESULTS.md, "Prompt
                                               lookup") */
#define SLORA_ENGINE_WARM_RESERVE   16      /* 1/16 of the pool stays free */
#define SLORA_ENGINE_SCORE_ROWS     256     /* a step's logits rows for
                                               prompts' log-probabilities
                                               at least (scored on the
                                               host: at most) */
#define SLORA_ENGINE_SCORE_ROWS_MAX 1024    /* and at most */
#define SLORA_ENGINE_SCHEMAS        32      /* compiled constraints kept
                                               (entries of a table, which
                                               grows by as many where
                                               every one is held,
                                               compiling or spared) */
#define SLORA_ENGINE_SCHEMA_BYTES   ((size_t) 8 << 20)
                                            /* and their bytes, at most (a
                                               JSON schema compiles to
                                               some 10-300 KB, a regex
                                               of 800 any characters to
                                               some 460 KB) */


/* A compiled constraint kept (slora_engine_schemas.c): empty (text NULL),
 * compiling on the compile thread, compiled (schema), or refused there
 * (refused). */
typedef struct slora_engine_compiler_s  slora_engine_compiler_t;

typedef struct {
    slora_json_schema_t    *schema;         /* NULL: an empty entry */
    char                   *text;           /* its text, the key, */
    size_t                  len;
    int                     form;           /* with its form */
    uint64_t                hash;
    size_t                  size;           /* the schema's bytes and the
                                               text's */
    uint32_t                refs;           /* requests holding it */
    unsigned                compiling:1;
    unsigned                fresh:1;        /* compiled on the thread */
    uint64_t                done_step;      /* at this step (the engine's
                                               schema_steps): spared for
                                               its parked requests until
                                               two steps later */
    char                   *refused;        /* the compile thread's
                                               reason, where it refused
                                               it */
    uint64_t                used;           /* the clock at its last use
                                               (set, installed, asked
                                               ready, taken) */
} slora_engine_schema_t;

/* The entries, a table of SLORA_ENGINE_SCHEMAS and the tables added
 * after it; an entry stays where it is (requests point at theirs). */
typedef struct slora_engine_schema_tab_s  slora_engine_schema_tab_t;

struct slora_engine_schema_tab_s {
    slora_engine_schema_t       entry[SLORA_ENGINE_SCHEMAS];
    slora_engine_schema_tab_t  *next;
};


typedef struct slora_engine_req_s  slora_engine_req_t;

struct slora_engine_req_s {
    slora_req_t             r;              /* first: the scheduler's */
    slora_sampling_t        sampling;
    slora_rng_t             rng;
    int32_t                *stop_ids;       /* [n_stop] */
    int32_t                 n_stop;
    int32_t                 max_tokens;     /* as asked */
    int32_t                 top_logprobs;   /* -1: no logprobs */
    int32_t                 score_top;      /* alternatives of a prompt
                                               token's log-probability
                                               (r.score_to) */
    slora_json_t            json;           /* JSON mode: the output so
                                               far (sampling.json) */
    slora_json_schema_t    *schema;         /* its schema; NULL: any
                                               object */
    slora_engine_schema_t  *schema_held;    /* the kept entry it is;
                                               NULL: the request's own */
    unsigned                json_compact:1; /* json.compact at each start
                                               of the schema */
    unsigned                trigger_ends:1; /* the value whole is the
                                               output whole: a lead
                                               trigger's, and Mistral's
                                               list of calls */
    unsigned                trigger_whole:1; /* the value begins with
                                               its trigger's own text (a
                                               structural tag's begin) */
    unsigned                tag_first:1;    /* a structural tag's
                                               at_least_one: a tag from
                                               the start, or the gate */
    slora_json_trigger_t    gate;           /* the triggers' gate (len 0:
                                               none, or passed) */
    slora_json_trigger_t    trigger[SLORA_JSON_TRIGGERS_MAX];
                                            /* a lazy schema's, n_triggers
                                               of them: sampling.json is
                                               set while it holds */
    uint32_t                n_triggers;
    int32_t                *guard;          /* [n_guard]: the tokens that
                                               hold a lazy schema's
                                               trigger whole and run on
                                               (slora_json_trigger_guard);
                                               NULL: none */
    int32_t                 n_guard;
    int32_t                *gate_guard;     /* at_least_one behind a
                                               gate: the tokens that hold
                                               the gate whole and run on;
                                               NULL: none */
    int32_t                 n_gate_guard;
    slora_draft_t           draft;          /* from its prediction (kept
                                               after stop_ids) */
    slora_rng_t             rng_before;     /* rng before a draft's rows
                                               drew: a step redraws as many
                                               as it took tokens */
    char                   *tenant;         /* NULL: none */
    char                   *adapter;        /* as asked; NULL: none */
    slora_engine_req_t     *next_resolving;
    unsigned                loading:1;      /* waits for its adapter */
    unsigned                load_asked:1;   /* a read was asked for it */
    unsigned                seen:1;         /* waited a step in the
                                               scheduler */
    unsigned                used:1;         /* its adapter's use counted */
    unsigned                rated:1;        /* its tenant's rate has
                                               judged it */
    unsigned                rate_free:1;    /* the rate does not count it
                                               (slora_request_t) */
};


/* What the host works out for a step's item (slora_engine_host.c). */
typedef struct {
    int32_t                 tok;            /* -1: JSON mode allowed no
                                               token */
    int32_t                 n_top;
    float                   logprob;        /* the token's, raw */
    int32_t                 rank;           /* a prompt token's score:
                                               slora_score_t's */
    int32_t                 top_ids[SLORA_LOGPROBS_MAX];
    float                   top_lp[SLORA_LOGPROBS_MAX];
    uint8_t                 on_host;        /* else the backend's id */
} slora_engine_pick_t;


typedef struct {
    slora_threads_t        *pool;           /* NULL: the engine's thread */
    int                     n;              /* threads (shares) */
    slora_sampler_t       **samplers;       /* [n] */
    float                  *lp_rows;        /* [n][vocab]: raw copies */
    int32_t                *items;          /* [max_running] */
    slora_engine_pick_t    *picks;          /* [max_running], by item */
    int32_t                *score_items;    /* [max_rows]: the item of a
                                               prompt row to score, */
    int32_t                *score_rows;     /* [max_rows]: and its row */
    slora_engine_pick_t    *scores;         /* [max_rows], by row: tok the
                                               prompt's token scored */
} slora_engine_host_t;


/*
 * A registration's folder read by a prefetch thread, so that the
 * engine's thread (and every stream) does not wait for its weights: one
 * at a time; another registration waits for this one's owner to take it
 * (slora_engine_adapters.c).
 */
typedef enum {
    SLORA_READING_NONE = 0,
    SLORA_READING_OUT,          /* with a thread */
    SLORA_READING_DONE          /* done holds its outcome */
} slora_engine_reading_e;

typedef struct {
    slora_engine_reading_e  state;
    uint64_t                owner;          /* its registration's */
    int                     orphan;         /* its owner went away */
    char                   *path;           /* the folder's realpath */
    slora_prefetch_done_t   done;
} slora_engine_reading_t;


/* The logits row of item i's last token, the one its pick reads. */
#define slora_engine_last_row(e, i)                                           \
    ((e)->seqs[i].logits_row + (e)->seqs[i].n_rows - 1)


struct slora_engine_s {
    slora_engine_conf_t     conf;
    slora_model_t          *model;
    slora_backend_t        *backend;
    slora_pool_t           *pool;
    int64_t                *layer_off;      /* [n_layers] */
    slora_adapters_t       *adapters;
    slora_sched_t          *sched;
    slora_engine_host_t     host;
    slora_json_vocab_t     *json_vocab;     /* NULL: no tokenizer, no JSON
                                               mode */
    slora_json_trigger_t    guard_of[SLORA_JSON_TRIGGERS_MAX];
                                            /* the triggers of the last
                                               guard list made, n_guard_of
                                               of them (requests of one
                                               tool template share it) */
    uint32_t                n_guard_of;
    int32_t                *guard_ids;      /* [n_guard_ids]: that list */
    int32_t                 n_guard_ids;
    slora_engine_schema_tab_t  schemas;
    slora_engine_compiler_t *compiler;      /* NULL: not started */
    uint64_t                schema_clock;
    uint64_t                schema_steps;   /* steps begun */
    uint64_t                schema_version; /* changes as a constraint is
                                               kept or cleared */
    size_t                  schema_bytes;   /* the kept entries' */
    uint64_t                schema_compiles;
    uint64_t                schema_hits;

    int32_t                *tokens;         /* [max_batch_tokens] */
    slora_batch_seq_t      *seqs;           /* [max_running] */
    slora_lora_t           *loras;          /* [max_running] */
    float                  *logits;         /* [max_rows, vocab], in the
                                               backend's host memory */
    size_t                  logits_bytes;
    int32_t                *ids;            /* [max_rows] */
    slora_draw_t           *draws;          /* [max_rows] */
    uint8_t                *host_rows;      /* [max_rows] */
    int32_t                *score_tok;      /* [max_rows]: the prompt
                                               token a row scores, for a
                                               backend that scores (-1:
                                               none) */
    slora_score_t          *scores;         /* [max_rows]: its answers */
    int32_t                 max_rows;       /* logits rows of a step:
                                               max_running and
                                               score_rows */
    int32_t                 score_rows;     /* of them, a step's for
                                               prompts' log-probabilities:
                                               SLORA_ENGINE_SCORE_ROWS, or
                                               max_batch_tokens (up to
                                               _MAX) where the backend
                                               scores them */

    const char            **names;
    slora_adapter_info_t   *infos;
    int32_t                 n_cancel;

    slora_catalog_t        *catalog;
    int                     redis;
    slora_adapter_image_t   checked;        /* a registration's folder as
                                               its check read it, made
                                               the adapter's host copy
                                               (have_checked) */
    int                     have_checked;
    slora_engine_reading_t  reading;        /* a registration's folder
                                               being read by a prefetch
                                               thread */
    uint64_t                asking;         /* the registration being
                                               checked: its owner */
    int32_t                 files_next;     /* the adapter whose files
                                               the next refresh looks at
                                               first */
    slora_prefetch_t       *prefetch;
    int                     wake_fd;
    slora_engine_req_t     *resolving;      /* arrival order */
    slora_engine_req_t    **resolving_tail;
    int32_t                 n_resolving;
    uint64_t                rate_limited;   /* requests their tenant's
                                               rate refused */
    uint64_t                hints_gen;      /* hints applied */
    int                     hints_pending;  /* some names still resolving */
    slora_adapter_t       **hint_pins;      /* pinned because of hints */
    int32_t                 n_hint_pins;

    uint64_t                steps;
    uint64_t                tokens_prefilled;
    uint64_t                tokens_decoded;
    uint64_t                prediction_accepted; /* predictions' draft
                                               tokens taken, */
    uint64_t                prediction_rejected; /* and not */
    uint64_t                lookup_accepted; /* lookup's draft tokens
                                               taken, */
    uint64_t                lookup_rejected; /* and not */
    int64_t                 last_step_ns;
    int64_t                 last_step_device_ns;
    int32_t                 last_step_captured;
    int64_t                 last_step_setup_ns;
    int64_t                 last_step_attention_ns;
    int64_t                 last_step_rows_ns;  /* its host rows */
    int32_t                 last_step_prefill;
    int32_t                 last_step_decode;
    size_t                  host_bytes_peak;
    int32_t                 pages_used_peak;

    FILE                   *step_log;       /* $SLORA_STEP_LOG, or NULL */
    int64_t                 log_t0;
};


int slora_engine_catalog(slora_engine_t *e, slora_err_t *err);
/* Takes q out of the scheduler and frees it. */
void slora_engine_end(slora_engine_t *e, slora_engine_req_t *q);

/* slora_engine_take.c */
/* Takes tok, the pick of logits row row (pk the host's pick, or NULL), as
 * q's next token; 1 when q ended (and is freed). */
int slora_engine_take(slora_engine_t *e, slora_engine_req_t *q, int32_t tok,
    const slora_engine_pick_t *pk, int32_t row, slora_event_cb cb,
    void *data);
/* Item i of the step ran q's last token and its draft: keeps the draft
 * as far as it equals the picks, then the pick that differs. */
void slora_engine_verify(slora_engine_t *e, const slora_sched_item_t *it,
    int32_t i, const slora_batch_t *batch, slora_event_cb cb, void *data);
/* Sets the drafts of the running requests with predictions, before the
 * plan. */
void slora_engine_drafts(slora_engine_t *e);
/* Whether q's pick is the host's (slora_engine_picks). */
int slora_engine_on_host(const slora_engine_t *e,
    const slora_engine_req_t *q);
void slora_engine_emit(slora_event_cb cb, void *data,
    slora_event_e type, uint64_t id, int32_t token, slora_finish_e finish,
    const char *error, slora_errcode_e code);
/* The ERROR event of a request refused with a time to ask again (its
 * SLO, its tenant's rate): err's code, text and retry_ms. */
void slora_engine_refuse(slora_event_cb cb, void *data, uint64_t id,
    const slora_err_t *err);
void slora_engine_req_free(slora_engine_t *e, slora_engine_req_t *q);
int slora_engine_resolve(slora_engine_t *e, slora_engine_req_t *q,
    slora_err_t *err);
int slora_engine_resolve_all(slora_engine_t *e, slora_event_cb cb,
    void *data);
int slora_engine_reap_resolving(slora_engine_t *e, slora_event_cb cb,
    void *data);
int slora_engine_wait_load(slora_engine_t *e, slora_engine_req_t *q);
void slora_engine_prefetch(slora_engine_t *e);
void slora_engine_warm(slora_engine_t *e);
void slora_engine_prefetch_install(slora_engine_t *e);
/* A registration check's image not taken as a host copy, freed. */
void slora_engine_drop_checked(slora_engine_t *e);
/* Drops a registration's read, its image and path. */
void slora_engine_reading_clear(slora_engine_t *e);
void slora_engine_hints(slora_engine_t *e);

/* slora_engine_log.c */
void slora_engine_log_open(slora_engine_t *e);
/* A step's moments, slora_now_ns(): its start, after the installs of
 * what the loaders read, after resolving and prefetch asks, after the
 * plan (admission's reads and uploads), after the warm uploads (the
 * forward's start), and its end. */
typedef struct {
    int64_t     start;
    int64_t     installed;
    int64_t     resolved;
    int64_t     planned;
    int64_t     run;
    int64_t     end;
} slora_engine_times_t;

void slora_engine_log_step(slora_engine_t *e, const slora_sched_step_t *step,
    const slora_engine_times_t *t);

/* slora_engine_schemas.c */
slora_json_schema_t *slora_engine_schema_take(slora_engine_t *e, int form,
    const char *text, size_t len, slora_engine_schema_t **held,
    slora_err_t *err);
void slora_engine_schema_drop(slora_engine_t *e, slora_engine_schema_t *held,
    slora_json_schema_t *s);
/* At each step's start: the compile thread's done jobs installed, and
 * the freshness of those a parked request never took run out. */
void slora_engine_schemas_step(slora_engine_t *e);
void slora_engine_schemas_stop(slora_engine_t *e);
void slora_engine_schemas_free(slora_engine_t *e);
void slora_engine_schemas_count(const slora_engine_t *e, int32_t *kept,
    int32_t *compiling);

/* slora_engine_lazy.c */
/* q's schema compiled from req (or kept from an earlier request of the
 * same), and its triggers, gate and guard list set (req->json_schema not
 * NULL); on error q is the caller's to free. */
int slora_engine_lazy_set(slora_engine_t *e, slora_engine_req_t *q,
    const slora_request_t *req, slora_err_t *err);

/* slora_engine_host.c */
/* 1 while q's stop ids may not be drawn yet (sampling.min_tokens). */
#define slora_engine_holds_stops(q)                                           \
    ((q)->n_stop > 0                                                          \
     && (q)->r.n_tokens - (q)->r.n_prompt < (q)->sampling.min_tokens)

/* 1 where q's next token must not write a trigger that its value does
 * not go on from (slora_json_trigger_guard): in free text before a
 * lazy schema's triggers (not a lead one), past the gate, where a token
 * holds a trigger whole or the text ends with a trigger's first bytes. */
#define slora_engine_guards_triggers(q)                                       \
    (!(q)->sampling.json && (q)->n_triggers > 0 && !(q)->trigger[0].lead   \
     && (q)->gate.len == 0                                                 \
     && ((q)->n_guard > 0                                                  \
         || slora_json_triggers_begun((q)->trigger, (q)->n_triggers)))

/* 1 where q's next token may complete its lead trigger (the output so
 * far blanks and the trigger's first bytes), and must not run on past
 * it where the value does not go (slora_json_trigger_guard_lead). */
#define slora_engine_guards_lead(q)                                           \
    (!(q)->sampling.json && (q)->n_triggers > 0 && (q)->trigger[0].lead    \
     && (q)->trigger[0].seen < (q)->trigger[0].len)

/* 1 where q's next token must not pass its gate with bytes its first
 * tag cannot begin with (a structural tag's at_least_one behind a gate):
 * a token holds the gate whole, or the text ends with its first bytes. */
#define slora_engine_guards_gate(q)                                           \
    ((q)->tag_first && (q)->gate.len > 0                                   \
     && ((q)->n_gate_guard > 0 || slora_json_triggers_begun(&(q)->gate, 1)))

int slora_engine_host_init(slora_engine_host_t *h, int32_t vocab,
    int32_t max_running, int32_t max_rows, int32_t n_threads,
    slora_err_t *err);
void slora_engine_host_free(slora_engine_host_t *h);
void slora_engine_host_picks(slora_engine_t *e,
    const slora_sched_step_t *step, const slora_batch_t *batch);
void slora_engine_log_close(slora_engine_t *e);


#endif /* SLORA_ENGINE_INT_H */
