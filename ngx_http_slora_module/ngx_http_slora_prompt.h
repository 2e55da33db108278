/*
 * ngx_http_slora_prompt.h: what the content handler
 * (ngx_http_slora_handler.c) and the prompt's making
 * (ngx_http_slora_prompt.c) share: an error on its way to OpenAI's error
 * object, a prompt's ids, and the calls between them.
 */

#ifndef NGX_HTTP_SLORA_PROMPT_H
#define NGX_HTTP_SLORA_PROMPT_H


#include "ngx_http_slora_module.h"
#include "slora_openai.h"


/* how far a prompt too long for the context is counted: its 413 gives
 * the count up to twice the context, "more than" that beyond */
#define NGX_HTTP_SLORA_COUNT_TO(n_ctx)                                        \
    ((int32_t) ngx_min(2 * (int64_t) (n_ctx), INT32_MAX - 1))

/* the most tokens of a text kept whole to be cut to its last ones
 * (vLLM's truncate_prompt_tokens): 4 MB of ids */
#define NGX_HTTP_SLORA_KEEP_FROM  (1 << 20)

/* the tokens req's truncate_prompt_tokens keeps of a prompt, 0: all */
#define ngx_http_slora_keep(req, n_ctx)                                       \
    ((req)->keep_last < 0 ? (n_ctx) : (req)->keep_last)


typedef struct {
    ngx_uint_t         status;
    const char        *type;
    const char        *code;
    const char        *param;
    u_char             msg[256];
    size_t             len;
} ngx_http_slora_err_t;


/* A prompt's token ids, and the new tokens its choices may have. */
typedef struct {
    int32_t           *ids;
    int32_t            n;
    int32_t            max_tokens;
} ngx_http_slora_prompt_t;


/* A request's work off the event loop (ngx_http_slora_encode.c): the
 * thread pool its long pieces go to, and those done, for the request's
 * next making. */
typedef struct ngx_http_slora_work_s     ngx_http_slora_work_t;
typedef struct ngx_http_slora_encoder_s  ngx_http_slora_encoder_t;

struct ngx_http_slora_encoder_s {
    ngx_http_request_t         *request;
#if (NGX_THREADS)
    ngx_thread_pool_t          *pool;         /* NULL: all of it at once */
#else
    void                       *pool;         /* always NULL */
#endif
    ngx_http_slora_work_t      *done;
    void                      (*again)(ngx_http_slora_encoder_t *enc);
    void                       *data;         /* again()'s own */
};


/* What goes to the pool. */
typedef enum {
    NGX_HTTP_SLORA_WORK_ENCODE = 0,           /* a text's tokens */
    NGX_HTTP_SLORA_WORK_PARSE                 /* a body parsed with its
                                                 stored history or its
                                                 constraint's compile
                                                 (ngx_http_slora_parse.c) */
} ngx_http_slora_work_e;

/* One piece of work: its kind's call and answer follow it in the same
 * allocation (ngx_http_slora_work_alloc's size). */
struct ngx_http_slora_work_s {
    ngx_http_slora_work_e       kind;
    size_t                      len;          /* its bytes, for the log */
    void                      (*run)(ngx_http_slora_work_t *w);
    ngx_http_slora_encoder_t   *encoder;
    ngx_http_slora_work_t      *next;         /* in encoder->done */
#if (NGX_THREADS)
    ngx_thread_task_t          *task;
#endif
};


/* ngx_http_slora_encode.c */
ngx_http_slora_encoder_t *ngx_http_slora_encoder_create(
    ngx_http_request_t *r, void (*again)(ngx_http_slora_encoder_t *enc),
    void *data);
ngx_http_slora_work_t *ngx_http_slora_work_alloc(
    ngx_http_slora_encoder_t *enc, ngx_http_slora_work_e kind, size_t size,
    void (*run)(ngx_http_slora_work_t *w));
ngx_int_t ngx_http_slora_work_post(ngx_http_slora_work_t *w);
ngx_int_t ngx_http_slora_encode(ngx_http_slora_encoder_t *enc,
    const slora_tokenizer_t *tokenizer, const u_char *text, size_t len,
    ngx_uint_t add_special, const slora_chat_plain_t *plain, int32_t *ids,
    int32_t cap, int32_t limit, int32_t *n, slora_err_t *err);

/* ngx_http_slora_parse.c */
ngx_int_t ngx_http_slora_parse(ngx_http_slora_encoder_t *enc,
    const ngx_str_t *body, slora_openai_kind_e kind, ngx_uint_t responses,
    const slora_openai_limits_t *lim, slora_openai_req_t **req,
    slora_openai_err_t *err);

/* ngx_http_slora_prompt.c */
slora_chat_e ngx_http_slora_chat_template(ngx_http_request_t *r);
ngx_int_t ngx_http_slora_render(ngx_http_request_t *r,
    slora_openai_req_t *req, int32_t n_ctx, ngx_str_t *text,
    slora_chat_plain_t *plain, ngx_http_slora_err_t *e);
ngx_int_t ngx_http_slora_prompt_ids(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, ngx_http_slora_kind_e kind,
    ngx_str_t *text, const slora_chat_plain_t *plain, ngx_uint_t add_special,
    const slora_openai_prompt_t *pr, int32_t n_ctx, int32_t limit,
    int32_t keep, ngx_http_slora_encoder_t *enc,
    ngx_http_slora_prompt_t *out, ngx_http_slora_err_t *e);
ngx_int_t ngx_http_slora_vocab_ids(ngx_http_slora_main_conf_t *smcf,
    const int32_t *ids, uint32_t n, const char *param,
    ngx_http_slora_err_t *e);
ngx_int_t ngx_http_slora_allowed_ids(ngx_http_slora_main_conf_t *smcf,
    const slora_openai_req_t *req, ngx_http_slora_err_t *e);
ngx_int_t ngx_http_slora_bad_ids(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, const slora_openai_req_t *req,
    int32_t *bad, int32_t cap, int32_t *n, ngx_http_slora_err_t *e);
ngx_int_t ngx_http_slora_fim_ids(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, const slora_openai_req_t *req,
    const slora_openai_prompt_t *pr, int32_t n_ctx,
    ngx_http_slora_encoder_t *enc, ngx_http_slora_prompt_t *out,
    ngx_http_slora_err_t *e);
ngx_int_t ngx_http_slora_chat_ids(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, slora_openai_req_t *req,
    int32_t n_ctx, ngx_str_t *text, ngx_http_slora_encoder_t *enc,
    ngx_http_slora_prompt_t *out, ngx_http_slora_err_t *e);
ngx_int_t ngx_http_slora_truncate(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, slora_openai_req_t *req,
    int32_t n_ctx, ngx_str_t *text, ngx_http_slora_encoder_t *enc,
    ngx_http_slora_prompt_t *out, ngx_http_slora_err_t *e);
ngx_int_t ngx_http_slora_prompt_lp_bound(const slora_openai_req_t *req,
    const ngx_http_slora_prompt_t *prompt, ngx_uint_t n_prompts,
    ngx_http_slora_err_t *e);

/* ngx_http_slora_slot.c */
void ngx_http_slora_slot_sampling(ngx_http_slora_ctx_t *ctx,
    const slora_openai_req_t *req, slora_queue_t *q,
    ngx_http_slora_choice_t *ch, ngx_uint_t i,
    const ngx_http_slora_prompt_t *pi, const int32_t *bad, int32_t n_bad);

/* ngx_http_slora_handler.c */
slora_openai_req_t *ngx_http_slora_req_create(ngx_http_request_t *r);
ngx_int_t ngx_http_slora_fail(ngx_http_slora_err_t *e, ngx_uint_t status,
    const char *type, const char *code, const char *param,
    const char *fmt, ...);


#endif /* NGX_HTTP_SLORA_PROMPT_H */
