/*
 * ngx_http_slora_module.h: what the module's files share: the main and
 * location configuration, the per-request context, and the functions each
 * concern file offers the others.
 *
 * The one idea: three kinds of process touch this module's state. The
 * master parses the configuration, loads the tokenizer, creates the shared
 * zone and the eventfds, and spawns the engine; workers inherit all of it
 * by fork and serve HTTP; the engine process (ngx_http_slora_engine_proc.c)
 * runs the model and talks to workers only through the zone
 * (engine/slora_queue.h) and eventfds. Nothing a worker does blocks on the
 * engine.
 */

#ifndef NGX_HTTP_SLORA_MODULE_H
#define NGX_HTTP_SLORA_MODULE_H


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "slora_engine.h"
#include "slora_openai.h"
#include "slora_queue.h"
#include "slora_tokenizer.h"
#include "slora_tool_scan.h"


#define NGX_HTTP_SLORA_DEFAULT_MAX_TOKENS  256
#define NGX_HTTP_SLORA_MAX_CALLS           SLORA_OPENAI_CALLS_MAX
#define NGX_HTTP_SLORA_MAX_STOPS           4
#define NGX_HTTP_SLORA_PROMPT_LP_MAX       (1 << 19)   /* prompt_logprobs'
                                                      entries a request */
#define NGX_HTTP_SLORA_PASS_BYTES          16384   /* a stream's events
                                                      made a pass */
#define NGX_HTTP_SLORA_TICK_MS             500
#define NGX_HTTP_SLORA_STALE_MS            60000
#define NGX_HTTP_SLORA_CHAT_AUTO           -1

/* copies a string literal, returns the end */
#define ngx_http_slora_lit(p, s)  ngx_cpymem(p, s, sizeof(s) - 1)
#define ngx_http_slora_same(a, b)                                             \
    ((a)->len == (b)->len && ngx_strncmp((a)->data, (b)->data, (a)->len) == 0)

#define NGX_HTTP_SLORA_API_NONE            0
#define NGX_HTTP_SLORA_API_OPENAI          1


typedef enum {
    NGX_HTTP_SLORA_CHAT = 0,
    NGX_HTTP_SLORA_COMPLETION
} ngx_http_slora_kind_e;


/* The model's own stop ids a slot carries; a request's stop_token_ids
 * fill the rest of SLORA_QUEUE_STOP_IDS. */
#define NGX_HTTP_SLORA_MODEL_STOP_IDS  16


typedef struct {
    ngx_flag_t                 enabled;       /* slora_engine given */
    ngx_str_t                  model;         /* full path */
    ngx_str_t                  model_id;      /* file name less .gguf */
    ngx_str_t                  device;        /* "cpu", "cuda[:N]" */
    ngx_str_t                  cuda_lib;      /* the CUDA backend's .so */
    ngx_int_t                  tensor_parallel;   /* GPUs of the model */
    ngx_str_t                  tokenizer_path; /* else the model's own */
    ngx_str_t                  weights;       /* "native", "q8_0", "f32" */
    ngx_int_t                  threads;
    size_t                     pool;
    ngx_int_t                  max_batch_tokens;
    ngx_int_t                  max_running;
    ngx_int_t                  max_ctx;
    ngx_int_t                  slots;
    ngx_int_t                  max_tokens;
    ngx_int_t                  top_logprobs;  /* alternatives a token's
                                                 log-probability may come
                                                 with, 0..20 */
    ngx_str_t                  schedule;      /* fcfs, lcfs, slo, fair */
    ngx_msec_t                 slo_ttft;      /* 0: none */
    ngx_int_t                  fair_prefill;  /* fair_weights=P:D */
    ngx_int_t                  fair_decode;
    ngx_flag_t                 prefix_cache;  /* prefix_cache=on|off */
    ngx_flag_t                 draft_lookup;  /* speculate=lookup|off */
    ngx_int_t                  lookup_requests;  /* speculate_requests=;
                                                 0: the engine's */
    ngx_int_t                  pinned_max;    /* percent of the pool
                                                 pins may hold */
    ngx_str_t                  adapter_dir;   /* "" when not configured */
    size_t                     host_cache;
    ngx_flag_t                 prefetch;      /* slora_adapters prefetch= */
    ngx_flag_t                 preload;       /* slora_adapters preload= */
    ngx_int_t                  prefetch_threads;  /* 0: the engine's */
    ngx_str_t                  registry;      /* slora_adapters registry=:
                                                 the file that keeps the
                                                 run-time registrations
                                                 across restarts
                                                 (NUL-terminated); "":
                                                 none */
    ngx_str_t                  redis_url;     /* slora_catalog; "": none */
    ngx_array_t               *roots;         /* of ngx_str_t, full paths */
    ngx_msec_t                 catalog_timeout;   /* per command; 0: the
                                                     engine's default */

    uint32_t                   hash;          /* of every field above */
    ngx_shm_zone_t            *zone;
    ngx_shm_zone_t            *store;         /* slora_responses_store */
    ngx_str_t                  engine_file;   /* where slora_engine is */
    ngx_uint_t                 engine_line;
    ngx_str_t                  thread_pool_name; /* slora_thread_pool */
#if (NGX_THREADS)
    ngx_thread_pool_t         *thread_pool;   /* NULL: "off" */
#endif

    slora_tokenizer_t         *tokenizer;
    slora_chat_e               model_template;
    int32_t                    stop_ids[NGX_HTTP_SLORA_MODEL_STOP_IDS];
    int32_t                    n_stop_ids;
} ngx_http_slora_main_conf_t;


typedef struct {
    ngx_uint_t                 api;
    ngx_http_complex_value_t  *tenant;
    ngx_http_complex_value_t  *cache_salt;    /* slora_cache_salt: the
                                                 operator's part of a
                                                 request's prefix cache
                                                 salt */
    ngx_int_t                  chat_template; /* CHAT_AUTO or slora_chat_e */
    ngx_flag_t                 reasoning;     /* a chat answer's think
                                                 block is its "reasoning",
                                                 apart from its content */
    ngx_msec_t                 deadline;
} ngx_http_slora_loc_conf_t;


/* A growing buffer of printed log-probability entries. */
typedef struct {
    u_char                    *data;
    size_t                     len;
    size_t                     cap;
} ngx_http_slora_lpbuf_t;


/* A token of an answer whose think block is still read: its first byte
 * in the choice's text and, with logprobs, where its entry ends in the
 * entries' part[0]. */
typedef struct {
    size_t                     text;
    size_t                     entry;
} ngx_http_slora_think_mark_t;


/* The entries of the tokens taken and not yet sent: chat's content list
 * in part[0]; a completion's tokens, token_logprobs, top_logprobs and
 * text_offset lists in part[0..3]. */
typedef struct {
    ngx_http_slora_lpbuf_t     part[4];
    ngx_uint_t                 n;
    ngx_http_slora_lpbuf_t     raw;           /* scratch: a token's bytes */
    ngx_http_slora_lpbuf_t     text;          /* and its text */
    unsigned                   as_ids:1;      /* its text "token_id:N" */
} ngx_http_slora_lp_t;


typedef struct ngx_http_slora_ctx_s  ngx_http_slora_ctx_t;


/* A Responses answer's output item: the message, a function call, or
 * the reasoning before them (slora_reasoning); its text (or arguments)
 * is [off, off + len) of the answer's kept text, or of text where that
 * is not NULL. */
#define NGX_HTTP_SLORA_ITEM_MESSAGE    0
#define NGX_HTTP_SLORA_ITEM_CALL       1
#define NGX_HTTP_SLORA_ITEM_REASONING  2

typedef struct {
    ngx_uint_t                 kind;          /* NGX_HTTP_SLORA_ITEM_* */
    char                       name[SLORA_TOOL_NAME_MAX + 1];
    const u_char              *text;
    size_t                     off;
    size_t                     len;
} ngx_http_slora_item_t;


/* A Responses answer as it goes out (ngx_http_slora_responses.c): its
 * items, the text they hold (a stream's events drop what they send from
 * the choice's text, and the done events and the last response object
 * need all of it), and the next event's sequence_number. */
typedef struct {
    ngx_http_slora_item_t      item[NGX_HTTP_SLORA_MAX_CALLS + 2];
    ngx_uint_t                 n_items;
    ngx_uint_t                 open;          /* the last item still takes
                                                 text */
    ngx_http_slora_lpbuf_t     kept;
    ngx_http_slora_lpbuf_t     kept_lp;       /* the message's tokens'
                                                 log-probability entries,
                                                 chat's */
    ngx_uint_t                 seq;
} ngx_http_slora_resp_t;


/* A tool call read from a whole answer: its arguments are text's bytes
 * [args, args + args_len). */
typedef struct {
    char                       name[SLORA_TOOL_NAME_MAX + 1];
    size_t                     args;
    size_t                     args_len;
} ngx_http_slora_call_t;


/*
 * A finished choice's output its slow client has not taken yet, copied out
 * of the slot so the slot can go back (ngx_http_slora_take_keep): tokens
 * [from, n_out), when each was published, their log-probability records
 * (with logprobs) and the slot's last word.
 */
typedef struct {
    int32_t                    from;          /* n_done when kept */
    int32_t                    n_out;         /* the slot's final count */
    int32_t                   *ids;           /* [n_out - from] */
    int64_t                   *published;     /* [n_out - from] */
    u_char                    *logprobs;      /* [n_out - from] records of
                                                 lp_size bytes (with
                                                 logprobs) */
    size_t                     lp_size;
    int32_t                    finish;        /* slora_finish_e */
    int32_t                    stop_token;    /* the slot's */
    float                      stop_logprob;  /* the slot's */
    int32_t                    n_cached;
    int32_t                    accepted;
    int32_t                    rejected;
} ngx_http_slora_kept_t;


/*
 * One slot of a request and what came of it: a choice of a generation
 * (a request asks for n of them, each its own engine request), or an
 * op's one slot (ngx_http_slora_admin.c), whose answer gathers in text.
 */
typedef struct {
    ngx_http_slora_ctx_t      *ctx;
    ngx_uint_t                 index;         /* "index" in the answer */

    uint32_t                   slot;
    ngx_connection_t          *wc;            /* the slot's eventfd */
    ngx_http_slora_kept_t     *kept;          /* finished, its slot given
                                                 back: the output read
                                                 from here */

    int32_t                    n_done;        /* output tokens consumed */
    int32_t                    n_cached;      /* prompt tokens from the
                                                 prefix cache (the slot's) */
    int32_t                    accepted;      /* the prediction's draft
                                                 tokens taken (the
                                                 slot's, at the end), */
    int32_t                    rejected;      /* and not */
    int64_t                    t_last_ns;
    const char                *finish;        /* "stop", "length", NULL */

    slora_detok_t              detok;
    u_char                    *text;          /* held back or accumulated */
    size_t                     text_len;
    size_t                     text_cap;
    size_t                     n_chars;       /* code points generated,
                                                 counted with logprobs */

    ngx_http_slora_lp_t        lp;            /* with logprobs */
    ngx_http_slora_lpbuf_t     ids;           /* with vLLM's
                                                 return_token_ids: the ids
                                                 taken and not yet sent,
                                                 printed */
    const int32_t             *prompt_ids;    /* its prompt's */
    int32_t                    n_prompt_ids;
    int32_t                    stop_token;    /* the stop id that ended
                                                 it, -1: none (set at its
                                                 end) */
    float                      stop_logprob;  /* that id's log-probability
                                                 (with best_of or
                                                 logprobs) */
    ngx_http_slora_lpbuf_t     prompt_lp;     /* with vLLM's
                                                 prompt_logprobs, the first
                                                 choice of its prompt: the
                                                 list's entries, which its
                                                 other choices show too */
    size_t                     scan_from;     /* text's bytes before it no
                                                 stop string may match in
                                                 (the echoed prompt's) */

    slora_tool_scan_t          tool;          /* with tools: the answer
                                                 read as calls */
    size_t                     tool_blank;    /* "auto": text's first bytes
                                                 known blanks (no mark
                                                 begins in them) */
    size_t                     tool_fed;      /* text's bytes the scanner
                                                 took while undecided
                                                 (held back) */
    ngx_http_slora_call_t     *calls;         /* not streaming: the calls
                                                 read, at the end */
    ngx_uint_t                 n_calls;       /* calls read (or begun in
                                                 the stream) */
    size_t                     tool_content;  /* not streaming: text's
                                                 bytes before the calls
                                                 that are content */

    unsigned                   have_slot:1;
    unsigned                   counted:1;     /* its tokens in the totals */
    unsigned                   finished:1;
    unsigned                   echoed:1;      /* its prompt taken (echo,
                                                 prompt_logprobs) */
    unsigned                   reads_scores:1;    /* it takes its prompt's
                                                     prompt_logprobs */
    unsigned                   prompt_ids_sent:1; /* return_token_ids: its
                                                     prompt's ids went */
    unsigned                   tool_text:1;   /* the answer is text, not
                                                 calls */
    unsigned                   tool_shut:1;   /* no more calls: one was
                                                 asked for, or what came
                                                 after them was none */
    unsigned                   tool_tagged:1; /* "auto": a tag came, the
                                                 scanner reads from it */
    unsigned                   tool_spoke:1;  /* "auto": text before it
                                                 went out */
    unsigned                   think:2;       /* NGX_HTTP_SLORA_THINK_* */
    u_char                    *reason;        /* not streaming: the think
                                                 block's text */
    size_t                     reason_len;
    ngx_array_t               *think_marks;   /* slora_reasoning: the marks
                                                 of its tokens while the
                                                 block may be read */
    int32_t                    reason_tokens; /* tokens that began in the
                                                 block (its marks too) */
    double                     lp_sum;        /* with best_of: its tokens'
                                                 log-probabilities summed
                                                 (not the stop id's) */
} ngx_http_slora_choice_t;


struct ngx_http_slora_ctx_s {
    ngx_http_request_t        *request;
    ngx_http_slora_kind_e      kind;

    ngx_str_t                  model;         /* as the client named it */
    ngx_str_t                  adapter;       /* "" for the base model */
    ngx_str_t                  tenant;
    u_char                     id[40];        /* "chatcmpl-..." */
    size_t                     id_len;
    time_t                     created;

    int32_t                    n_prompt;
    ngx_int_t                  ttft_ms;       /* -1 until a first token */
    ngx_uint_t                 retry_after;   /* seconds, for a 429 the
                                                 engine gave; 0: default */

    ngx_http_slora_choice_t   *choice;        /* n_choices of them */
    ngx_uint_t                 n_choices;
    ngx_uint_t                 n_each;        /* choices a prompt (n; with
                                                 best_of its candidates):
                                                 prompt k's are k * n_each
                                                 on */
    ngx_uint_t                 n_best;        /* best_of above n: the
                                                 choices shown a prompt,
                                                 the likeliest of its
                                                 n_each candidates; 0:
                                                 all */
    ngx_uint_t                 lead;          /* the choice shown first
                                                 (ngx_http_slora_ranked):
                                                 with best_of the
                                                 likeliest; else 0 */
    ngx_uint_t                 n_finished;

    ngx_event_t                tick;
    ngx_msec_t                 deadline;      /* absolute, ngx_current_msec */
    ngx_uint_t                 engine_done;   /* every choice's slot ended:
                                                 the deadline is then the
                                                 client's, from that end */
    int64_t                    t_start_ns;

    ngx_str_t                  stop[NGX_HTTP_SLORA_MAX_STOPS];
    ngx_uint_t                 n_stop;
    size_t                     stop_max;

    ngx_chain_t               *free;
    ngx_chain_t               *busy;
    u_char                    *scratch;       /* an event's JSON, before
                                                 it is framed (reused) */
    size_t                     scratch_cap;
    size_t                     pass_bytes;    /* events made by this pass
                                                 of the pump */
    ngx_buf_t                 *errpage;       /* JSON for nginx's page */

    int32_t                    top_logprobs;  /* with logprobs, the
                                                 alternatives a token's
                                                 entry shows */
    int32_t                    prompt_top;    /* with prompt_lp: and a
                                                 prompt token's */

    slora_op_e                 op;            /* GENERATE, or an op of
                                                 ngx_http_slora_admin.c */
    ngx_str_t                  op_path;       /* REGISTER, REPLACE: the
                                                 adapter's folder */
    ngx_uint_t                 tools;         /* slora_openai_tools_e */
    int32_t                    shown[5];      /* control tokens detokenized
                                                 as their text: Mistral's
                                                 marks of calls with tools
                                                 ([TOOL_CALLS], [ARGS],
                                                 [CALL_ID]), of a think
                                                 block with reasoning
                                                 ([THINK], [/THINK]); -1:
                                                 none */
    const char                *think_open;    /* slora_reasoning: the think
                                                 block's marks; NULL: off */
    const char                *think_close;
    unsigned                   think_first:1; /* the answer is expected
                                                 to think first (its
                                                 prompt opened the block,
                                                 or its template's model
                                                 does) */

    ngx_str_t                  chat_echo;     /* vLLM's chat echo: the
                                                 text each choice's
                                                 content begins with */
    ngx_http_slora_resp_t     *resp;          /* a Responses API request:
                                                 its answer's items */
    ngx_str_t                  resp_echo;     /* the request's fields the
                                                 response object echoes */
    ngx_str_t                  resp_conv;     /* its input's messages,
                                                 chat's, in JSON */
    ngx_str_t                  resp_prev;     /* previous_response_id */
    ngx_str_t                  resp_conversation; /* conversation: its id */
    unsigned                   resp_store:1;  /* stored when it ends */
    unsigned                   resp_background:1; /* answered at once,
                                                 "queued"; the answer
                                                 goes to the store
                                                 (ngx_http_slora_resp_
                                                 detach) */
    unsigned                   resp_shut:1;   /* background: the client's
                                                 connection shut for
                                                 writing */
    unsigned                   detached:1;    /* a background stream whose
                                                 client went: nothing is
                                                 sent, the answer goes on
                                                 to the store */

    unsigned                   stream:1;
    unsigned                   plain:1;       /* a stream of bare text
                                                 (GET stream format=text),
                                                 not of events */
    unsigned                   include_usage:1;
    unsigned                   continuous_usage:1;    /* the counts so far
                                                         in every chunk */
    unsigned                   prediction:1;  /* usage says what came of
                                                 it */
    unsigned                   logprobs:1;
    unsigned                   echo:1;        /* a completion's prompt
                                                 comes first */
    unsigned                   return_ids:1;  /* vLLM's return_token_ids */
    unsigned                   prompt_lp:1;   /* vLLM's prompt_logprobs,
                                                 in the answer (read by
                                                 each prompt's first
                                                 choice) */
    unsigned                   show_special:1;    /* control tokens of
                                                     the answer shown */
    unsigned                   stop_in_output:1;  /* a matched stop
                                                     string ends the
                                                     text */
    unsigned                   tokens_as_ids:1;   /* logprobs name
                                                     tokens
                                                     "token_id:N" */
    unsigned                   tool_one:1;    /* parallel_tool_calls
                                                 false */
    unsigned                   tool_format:3; /* the model's format for
                                                 calls
                                                 (slora_openai_toolfmt_e) */
    unsigned                   header_sent:1;
    unsigned                   finished:1;
    unsigned                   errpage_sent:1;
};


extern ngx_module_t  ngx_http_slora_module;


/* ngx_http_slora_engine_conf.c */
char *ngx_http_slora_engine(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

/* ngx_http_slora_zone.c */
ngx_int_t ngx_http_slora_zone_add(ngx_conf_t *cf,
    ngx_http_slora_main_conf_t *smcf);
slora_queue_t *ngx_http_slora_queue(ngx_http_slora_main_conf_t *smcf);
const char *ngx_http_slora_engine_down(slora_queue_t *q);

/* ngx_http_slora_engine_spawn.c */
ngx_int_t ngx_http_slora_engine_prepare(ngx_conf_t *cf,
    ngx_http_slora_main_conf_t *smcf);
ngx_int_t ngx_http_slora_engine_start(ngx_cycle_t *cycle,
    ngx_http_slora_main_conf_t *smcf);
ngx_uint_t ngx_http_slora_engine_zone_salt(ngx_http_slora_main_conf_t *smcf);
ngx_int_t ngx_http_slora_slot_fd(uint32_t slot);
ngx_int_t ngx_http_slora_submit_notify(void);
int ngx_http_slora_submit_fd(void);
void ngx_http_slora_engine_setup(ngx_cycle_t *cycle);

/* ngx_http_slora_engine_proc.c */
void ngx_http_slora_engine_cycle(ngx_cycle_t *cycle, void *data);

/* ngx_http_slora_encode.c (the rest in ngx_http_slora_prompt.h) */
ngx_int_t ngx_http_slora_encode_conf(ngx_conf_t *cf,
    ngx_http_slora_main_conf_t *smcf);

/* ngx_http_slora_handler.c */
ngx_int_t ngx_http_slora_api_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_slora_valid_name(ngx_str_t *name);
ngx_int_t ngx_http_slora_tenant(ngx_http_request_t *r, ngx_str_t *tenant);
ngx_int_t ngx_http_slora_cache_salt(ngx_http_request_t *r,
    slora_openai_req_t *req);
ngx_uint_t ngx_http_slora_tenant_valid(ngx_str_t *tenant);
ngx_int_t ngx_http_slora_query_arg(ngx_http_request_t *r, const char *name,
    slora_openai_str_t *out);
ngx_int_t ngx_http_slora_read_body(ngx_http_request_t *r, ngx_str_t *body);

/* ngx_http_slora_reply.c */
ngx_int_t ngx_http_slora_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, const char *code,
    const char *param, const char *fmt, ...);
ngx_int_t ngx_http_slora_send_parse_err(ngx_http_request_t *r,
    slora_openai_err_t *oe);
ngx_int_t ngx_http_slora_not_allowed(ngx_http_request_t *r,
    const char *allow);
ngx_int_t ngx_http_slora_not_ready(ngx_http_request_t *r, slora_queue_t *q,
    ngx_uint_t probe);
ngx_int_t ngx_http_slora_add_header(ngx_http_request_t *r, const char *key,
    const char *value);
ngx_int_t ngx_http_slora_send_body(ngx_http_request_t *r, ngx_uint_t status,
    ngx_buf_t *b, const char *type);

/* ngx_http_slora_models.c */
ngx_int_t ngx_http_slora_models(ngx_http_request_t *r);
ngx_int_t ngx_http_slora_model_path(ngx_http_request_t *r, ngx_str_t *id);

/* ngx_http_slora_openai.c: each *_json writes at most *_max bytes */
u_char *ngx_http_slora_json_str(u_char *p, const u_char *s, size_t len);
u_char *ngx_http_slora_json_cstr(u_char *p, const char *s);
size_t ngx_http_slora_error_max(size_t msg_len);
u_char *ngx_http_slora_error_json(u_char *p, const char *type,
    const char *code, const char *param, const u_char *msg, size_t len);
size_t ngx_http_slora_chunk_max(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, size_t len);
u_char *ngx_http_slora_chunk_json(u_char *p, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, const u_char *text, size_t len,
    const char *finish, ngx_uint_t role);
u_char *ngx_http_slora_reason_chunk_json(u_char *p,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch,
    const u_char *text, size_t len);
u_char *ngx_http_slora_tool_chunk_json(u_char *p, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, ngx_uint_t k, const char *name,
    const u_char *args, size_t len);
u_char *ngx_http_slora_usage_json(u_char *p, ngx_http_slora_ctx_t *ctx);
int32_t ngx_http_slora_completion_tokens(ngx_http_slora_ctx_t *ctx);
int32_t ngx_http_slora_choice_tokens(ngx_http_slora_choice_t *ch);
int32_t ngx_http_slora_reasoning_tokens(ngx_http_slora_ctx_t *ctx);
int32_t ngx_http_slora_cached_tokens(ngx_http_slora_ctx_t *ctx);
ngx_buf_t *ngx_http_slora_response_json(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx);
ngx_buf_t *ngx_http_slora_models_json(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, slora_queue_t *q);
size_t ngx_http_slora_model_max(size_t id_len, size_t parent_len);
u_char *ngx_http_slora_model_obj(u_char *p, ngx_str_t *id, ngx_str_t *parent,
    ngx_uint_t is_default, int32_t max_len);
int32_t ngx_http_slora_n_ctx(slora_queue_t *q);

/* ngx_http_slora_logprobs.c */
ngx_int_t ngx_http_slora_lp_add(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch, int32_t token,
    const slora_logprob_t *zrec, size_t offset);
ngx_int_t ngx_http_slora_lp_prompt(ngx_http_request_t *r,
    ngx_http_slora_choice_t *ch, int32_t token, const slora_logprob_t *zrec,
    int32_t max_top);
size_t ngx_http_slora_lp_max(ngx_http_slora_choice_t *ch);
ngx_int_t ngx_http_slora_ids_add(ngx_http_request_t *r,
    ngx_http_slora_choice_t *ch, int32_t token);
size_t ngx_http_slora_ids_max(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch);
u_char *ngx_http_slora_ids_json(u_char *p, ngx_http_slora_choice_t *ch);
u_char *ngx_http_slora_prompt_ids_json(u_char *p,
    ngx_http_slora_choice_t *ch);
ngx_int_t ngx_http_slora_lp_put(ngx_http_request_t *r,
    ngx_http_slora_lpbuf_t *b, const u_char *data, size_t len);
u_char *ngx_http_slora_lp_json(u_char *p, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, ngx_uint_t whole);

/* ngx_http_slora_stream.c */
ngx_http_slora_ctx_t *ngx_http_slora_ctx_create(ngx_http_request_t *r,
    ngx_uint_t n);
ngx_int_t ngx_http_slora_stream_start(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx);
ngx_int_t ngx_http_slora_emit(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, const u_char *data, size_t len,
    ngx_chain_t ***ll);
ngx_int_t ngx_http_slora_emit_event(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, const char *event, const u_char *data,
    size_t len, ngx_chain_t ***ll);
u_char *ngx_http_slora_scratch(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, size_t size);
u_char *ngx_http_slora_random_id(u_char *p);
ngx_int_t ngx_http_slora_emit_text(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch, size_t len,
    ngx_chain_t ***ll);
void ngx_http_slora_stream_exit_process(void);
void ngx_http_slora_stream_release(ngx_http_slora_ctx_t *ctx);
void ngx_http_slora_choice_let_go(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch);
ngx_int_t ngx_http_slora_stream_accept(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx);
ngx_int_t ngx_http_slora_stream_header(ngx_http_request_t *r,
    ngx_uint_t plain);
void ngx_http_slora_stream_fail(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_uint_t status, const char *type,
    const char *code, const char *msg);
void ngx_http_slora_choice_fail(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch,
    slora_queue_t *q);
const char *ngx_http_slora_error_type(ngx_uint_t status);
const char *ngx_http_slora_error_code(ngx_uint_t status);

/* ngx_http_slora_take.c */
ngx_int_t ngx_http_slora_take_tokens(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch,
    slora_queue_t *q, ngx_chain_t ***ll);
uint32_t ngx_http_slora_take_state(slora_queue_t *q,
    ngx_http_slora_choice_t *ch);
void ngx_http_slora_take_end(slora_queue_t *q, ngx_http_slora_choice_t *ch);
void ngx_http_slora_take_delivered(slora_queue_t *q,
    ngx_http_slora_choice_t *ch, int32_t from);
void ngx_http_slora_take_keep(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, slora_queue_t *q);
ngx_int_t ngx_http_slora_take_rest(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch);
ngx_int_t ngx_http_slora_append(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch, int32_t token,
    ngx_uint_t flush);

/* ngx_http_slora_tools.c */
void ngx_http_slora_tool_start(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch);
ngx_int_t ngx_http_slora_tool_take(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch, size_t len,
    ngx_chain_t ***ll);
ngx_int_t ngx_http_slora_tool_read(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch);
const char *ngx_http_slora_tool_finish(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch);
void ngx_http_slora_tool_marks(ngx_http_slora_ctx_t *ctx);

/* ngx_http_slora_think.c: a reasoning model's think block */
void ngx_http_slora_think_init(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_str_t *prompt, slora_chat_e chat);
size_t ngx_http_slora_think_trigger(ngx_http_slora_ctx_t *ctx, u_char *dst,
    size_t cap);
ngx_int_t ngx_http_slora_think_take(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch, size_t *len,
    ngx_uint_t final, ngx_chain_t ***ll);
ngx_int_t ngx_http_slora_think_mark(ngx_http_request_t *r,
    ngx_http_slora_choice_t *ch, size_t start);

/* ngx_http_slora_responses.c: the Responses API's answer */
ngx_int_t ngx_http_slora_resp_open(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_chain_t ***ll);
ngx_int_t ngx_http_slora_resp_state(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, const char *type, const char *status,
    ngx_chain_t ***ll);
ngx_int_t ngx_http_slora_resp_text(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch,
    const u_char *text, size_t len, ngx_chain_t ***ll);
ngx_int_t ngx_http_slora_resp_reason(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, const u_char *text, size_t len,
    ngx_chain_t ***ll);
ngx_int_t ngx_http_slora_resp_call(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, const char *name, const u_char *args,
    size_t len, ngx_chain_t ***ll);
ngx_int_t ngx_http_slora_resp_end(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch,
    ngx_chain_t ***ll);
ngx_int_t ngx_http_slora_resp_finish(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_chain_t ***ll);
ngx_int_t ngx_http_slora_resp_fail(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, const char *code, const u_char *msg,
    size_t len, ngx_chain_t ***ll);
ngx_buf_t *ngx_http_slora_resp_body(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx);
ngx_int_t ngx_http_slora_resp_queue(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx);
void ngx_http_slora_resp_detach(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx);
void ngx_http_slora_resp_sent(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_int_t rc);
ngx_int_t ngx_http_slora_resp_mark(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, const char *status, const char *code,
    const u_char *msg, size_t len, ngx_uint_t how);
ngx_int_t ngx_http_slora_resp_restatus(ngx_http_request_t *r, ngx_str_t *obj,
    const char *status, const char *error);

/* ngx_http_slora_store.c: the Responses API's stored responses; a put's
 * how: */
#define NGX_HTTP_SLORA_STORE_DONE     0   /* an answer that ended: stored,
                                             replacing one of its id */
#define NGX_HTTP_SLORA_STORE_RUNNING  1   /* a background answer begun
                                             (queued, in_progress): kept
                                             from eviction, not continued */
#define NGX_HTTP_SLORA_STORE_UPDATE   2   /* with either: only over a
                                             running record of its id (not
                                             one cancelled or deleted) */
#define NGX_HTTP_SLORA_STORE_CANCELLED  4 /* a state: a running record
                                             cancelled */
#define NGX_HTTP_SLORA_STORE_FAILED   8   /* a state, and with _UPDATE a
                                             put's how: a background
                                             answer that failed (no answer
                                             to continue) */
#define NGX_HTTP_SLORA_STORE_STREAM  16   /* with _RUNNING: a background
                                             stream, whose events are kept
                                             for GET ?stream=true */
#define NGX_HTTP_SLORA_STORE_CONV    32   /* a state and a put's how: a
                                             conversation (the
                                             Conversations API); with
                                             _UPDATE only over its record
                                             as read (its gen) */

/* A background stream's events as read from the store (from an offset),
 * at most the caller's buffer's worth. */
typedef struct {
    ngx_str_t                  bytes;     /* the events past the offset */
    size_t                     more;      /* and the bytes past them */
    ngx_int_t                  state;     /* the record's (STORE_DONE...) */
    unsigned                   streamed:1;  /* stored with _STREAM */
    unsigned                   ended:1;   /* no more will come: the
                                             answering request ended, or
                                             its worker died */
    unsigned                   lost:1;    /* not kept: no room for them */
} ngx_http_slora_store_events_t;

/* The store's figures (/status, /metrics). */
typedef struct {
    size_t                     size;        /* the zone's bytes */
    size_t                     free;        /* its free pages' bytes */
    ngx_uint_t                 responses;   /* records kept */
    ngx_uint_t                 conversations; /* of them conversations */
    ngx_uint_t                 running;     /* background answers going */
    ngx_uint_t                 evictions;   /* records dropped for room */
    ngx_uint_t                 events_lost; /* streams' events let go */
} ngx_http_slora_store_stats_t;

char *ngx_http_slora_store_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_slora_store_get(ngx_http_request_t *r, const u_char *id,
    size_t len, ngx_str_t *tenant, ngx_str_t *conv, ngx_str_t *obj);
ngx_int_t ngx_http_slora_store_put(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *tenant, ngx_str_t *prev, ngx_str_t *conv, ngx_str_t *obj,
    ngx_uint_t how, ngx_uint_t gen);
ngx_int_t ngx_http_slora_store_conversation(ngx_http_request_t *r,
    const u_char *id, size_t len, ngx_str_t *tenant, ngx_str_t *conv,
    ngx_str_t *obj, ngx_uint_t *gen, ngx_uint_t drop);
ngx_int_t ngx_http_slora_store_state(ngx_http_request_t *r,
    const u_char *id, size_t len, ngx_str_t *tenant, ngx_uint_t drop);
ngx_int_t ngx_http_slora_store_append(ngx_http_request_t *r,
    const u_char *id, size_t len, ngx_str_t *tenant, ngx_chain_t *out,
    ngx_uint_t end);
ngx_int_t ngx_http_slora_store_events(ngx_http_request_t *r,
    const u_char *id, size_t len, ngx_str_t *tenant, size_t off,
    u_char *dst, size_t cap, ngx_http_slora_store_events_t *ev);
ngx_int_t ngx_http_slora_store_stats(ngx_http_request_t *r,
    ngx_http_slora_store_stats_t *ss);
ngx_int_t ngx_http_slora_store_cancel(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *tenant, ngx_str_t *obj);
int ngx_http_slora_store_prev(void *data, slora_openai_stored_e what,
    const char *id, size_t len, const char **conv, size_t *conv_len);

/* ngx_http_slora_conv.c: the Conversations API */
ngx_int_t ngx_http_slora_conv_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_slora_conv_route(ngx_http_request_t *r);
ngx_int_t ngx_http_slora_conv_extend(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *tenant, ngx_str_t *msgs);
ngx_int_t ngx_http_slora_json_join(ngx_pool_t *pool, ngx_str_t *a,
    ngx_str_t *b, ngx_str_t *out);

/* ngx_http_slora_store_api.c */
ngx_int_t ngx_http_slora_store_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_slora_store_none(ngx_http_request_t *r, ngx_str_t *id);
ngx_int_t ngx_http_slora_items_query(ngx_http_request_t *r,
    slora_openai_items_q_t *q);

/* ngx_http_slora_resume.c */
ngx_int_t ngx_http_slora_resume(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *tenant);

/* ngx_http_slora_admin.c */
ngx_int_t ngx_http_slora_admin_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_slora_op_start(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, const ngx_str_t *tenant,
    const ngx_str_t *name);
void ngx_http_slora_op_pump(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    slora_queue_t *q, uint32_t st);

/* ngx_http_slora_status.c */
ngx_int_t ngx_http_slora_status_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_slora_metrics_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_slora_health_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_slora_status_init(ngx_conf_t *cf);

/* ngx_http_slora_filter.c */
ngx_int_t ngx_http_slora_filter_init(ngx_conf_t *cf);

/* ngx_http_slora_variables.c */
ngx_int_t ngx_http_slora_add_variables(ngx_conf_t *cf);


#endif /* NGX_HTTP_SLORA_MODULE_H */
