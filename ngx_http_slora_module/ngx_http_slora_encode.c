/*
 * ngx_http_slora_encode.c: a request's long work taken off the event
 * loop, and the first such work, its texts' tokens. Byte-pair merging
 * costs the worker time in proportion to the text: a megabyte that is
 * one word (a run of letters the pre-tokenizer does not split), or any
 * long text of a SentencePiece model (merged as one piece), holds a
 * worker for half a second, and every other request on it waits. A text
 * longer than NGX_HTTP_SLORA_ENCODE_HERE is encoded on a thread of the
 * pool slora_thread_pool names (nginx's "default" unless told); shorter
 * ones, and every text where no pool is set, are encoded at once. The
 * same machinery parses a body with a long stored history or a
 * constraint to compile (ngx_http_slora_parse.c): each is a kind of
 * work, its call and its answer after an ngx_http_slora_work_t.
 *
 * The one idea: the request is made again rather than resumed. Where a
 * piece of work goes to the pool, the call answers NGX_AGAIN and its
 * callers hand that up to the body handler, which returns; when the
 * thread is done, the handler's again() runs the request's making from
 * the top, and the same call, on the same bytes (a chat is rendered
 * again, to the same text), finds the finished work here (enc->done).
 * Nothing before a prompt's tokens takes a slot or writes a byte to the
 * client, so doing it twice costs only the render. The thread touches
 * nothing but what its call holds (here the tokenizer, read only, the
 * text, and the encoding's own buffers), all made before it was posted;
 * the request cannot go away meanwhile (the body handler's reference is
 * held until its making ends, and the request is blocked, as for nginx's
 * own thread tasks).
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_prompt.h"


/* longer texts go to the thread pool: some 5 ms of a SentencePiece
 * model's merging on one core, less for byte-level BPE */
#define NGX_HTTP_SLORA_ENCODE_HERE  8192


typedef struct {
    ngx_http_slora_work_t        work;

    /* the call, as the thread sees it */
    const slora_tokenizer_t     *tokenizer;
    const u_char                *text;
    size_t                       len;
    ngx_uint_t                   add_special;
    const slora_span_t          *plain;       /* NULL: not a chat */
    size_t                       n_plain;
    int32_t                      cap;
    int32_t                      limit;

    /* what the thread found */
    int32_t                     *ids;
    int32_t                      n;
    int                          rc;
    slora_err_t                  err;
} ngx_http_slora_encoding_t;


#if (NGX_THREADS)
static void ngx_http_slora_work_thread(void *data, ngx_log_t *log);
static void ngx_http_slora_work_done(ngx_event_t *ev);
#endif
static ngx_http_slora_encoding_t *ngx_http_slora_encode_find(
    ngx_http_slora_encoder_t *enc, const ngx_http_slora_encoding_t *call);
static void ngx_http_slora_encode_run(ngx_http_slora_work_t *w);
static int ngx_http_slora_encode_answer(const ngx_http_slora_encoding_t *en,
    int32_t *ids, int32_t *n, slora_err_t *err);


/* slora_thread_pool: the pool long work goes to, nginx's "default" (32
 * threads a worker, unless a thread_pool of that name says otherwise)
 * where the directive is not given, none for "off". */
ngx_int_t
ngx_http_slora_encode_conf(ngx_conf_t *cf, ngx_http_slora_main_conf_t *smcf)
{
    if (smcf->thread_pool_name.len == 0) {
        ngx_str_set(&smcf->thread_pool_name, "default");
    }

    if (smcf->thread_pool_name.len == 3
        && ngx_strncmp(smcf->thread_pool_name.data, "off", 3) == 0)
    {
        return NGX_OK;
    }

#if (NGX_THREADS)
    smcf->thread_pool = ngx_thread_pool_add(cf, &smcf->thread_pool_name);

    return smcf->thread_pool != NULL ? NGX_OK : NGX_ERROR;
#else
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "slora_thread_pool \"%V\": this nginx has no thread"
                       " pools (built without --with-threads); say"
                       " \"slora_thread_pool off\"",
                       &smcf->thread_pool_name);
    return NGX_ERROR;
#endif
}


/* An encoder for r: long work goes to smcf's thread pool where one is
 * set and again is given (the request's making, run again when the work
 * is done), else it is done at once. */
ngx_http_slora_encoder_t *
ngx_http_slora_encoder_create(ngx_http_request_t *r,
    void (*again)(ngx_http_slora_encoder_t *enc), void *data)
{
    ngx_http_slora_encoder_t    *enc;
#if (NGX_THREADS)
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
#endif

    enc = ngx_pcalloc(r->pool, sizeof(ngx_http_slora_encoder_t));
    if (enc == NULL) {
        return NULL;
    }

    enc->request = r;
    enc->again = again;
    enc->data = data;
#if (NGX_THREADS)
    enc->pool = again != NULL ? smcf->thread_pool : NULL;
#endif

    return enc;
}


/*
 * text[0..len) to its token ids, as slora_tokenizer_encode_chat (plain
 * not NULL: the spans of a rendered chat that came from the request) or
 * slora_tokenizer_encode_upto (plain NULL) would: their SLORA_* answer,
 * ids[0..cap), *n and err. Or NGX_AGAIN: the encoding went to the
 * thread pool, and enc's again() will make the request anew, where the
 * same call answers at once. enc NULL: at once.
 */
ngx_int_t
ngx_http_slora_encode(ngx_http_slora_encoder_t *enc,
    const slora_tokenizer_t *tokenizer, const u_char *text, size_t len,
    ngx_uint_t add_special, const slora_chat_plain_t *plain, int32_t *ids,
    int32_t cap, int32_t limit, int32_t *n, slora_err_t *err)
{
    ngx_http_slora_work_t      *w;
    ngx_http_slora_encoding_t   call, *en;

    ngx_memzero(&call, sizeof(call));
    call.tokenizer = tokenizer;
    call.text = text;
    call.len = len;
    call.add_special = add_special;
    call.plain = plain != NULL ? plain->span : NULL;
    call.n_plain = plain != NULL ? plain->n : 0;
    call.cap = cap;
    call.limit = limit;
    call.ids = ids;

    if (enc == NULL || enc->pool == NULL || len <= NGX_HTTP_SLORA_ENCODE_HERE)
    {
        ngx_http_slora_encode_run(&call.work);
        return ngx_http_slora_encode_answer(&call, ids, n, err);
    }

    en = ngx_http_slora_encode_find(enc, &call);

    if (en != NULL) {
        return ngx_http_slora_encode_answer(en, ids, n, err);
    }

    w = ngx_http_slora_work_alloc(enc, NGX_HTTP_SLORA_WORK_ENCODE,
                                  sizeof(ngx_http_slora_encoding_t),
                                  ngx_http_slora_encode_run);
    if (w == NULL) {
        return slora_err_set(err, SLORA_ERROR, "out of memory");
    }

    /* the call for the thread, its ids its own; the text and spans it
     * points at stay in the request's pool (a making again renders into
     * new buffers and frees none) */
    en = (ngx_http_slora_encoding_t *) w;
    call.work = *w;
    *en = call;
    en->work.len = len;
    en->ids = ngx_palloc(enc->request->pool,
                         (size_t) ngx_max(cap, 1) * sizeof(int32_t));

    if (en->ids == NULL) {
        return slora_err_set(err, SLORA_ERROR, "out of memory");
    }

    if (ngx_http_slora_work_post(w) == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    return ngx_http_slora_encode_answer(en, ids, n, err);
}


/* A piece of work of kind for enc's pool: size bytes (its kind's struct,
 * an ngx_http_slora_work_t first), zeroed, run() to be called on the
 * thread. NULL: no memory. */
ngx_http_slora_work_t *
ngx_http_slora_work_alloc(ngx_http_slora_encoder_t *enc,
    ngx_http_slora_work_e kind, size_t size,
    void (*run)(ngx_http_slora_work_t *w))
{
    ngx_http_slora_work_t  *w;
#if (NGX_THREADS)
    ngx_thread_task_t      *task;

    task = ngx_thread_task_alloc(enc->request->pool, size);
    if (task == NULL) {
        return NULL;
    }

    w = task->ctx;
    w->task = task;

    task->handler = ngx_http_slora_work_thread;
    task->event.handler = ngx_http_slora_work_done;
    task->event.data = w;
#else
    w = ngx_pcalloc(enc->request->pool, size);
    if (w == NULL) {
        return NULL;
    }
#endif

    w->kind = kind;
    w->run = run;
    w->encoder = enc;

    return w;
}


/* w to the thread pool: NGX_AGAIN, and the encoder's again() makes the
 * request anew when it is done. Or NGX_OK: the pool's queue was full (or
 * there is none) and w was done here, at once. */
ngx_int_t
ngx_http_slora_work_post(ngx_http_slora_work_t *w)
{
#if (NGX_THREADS)
    ngx_http_request_t  *r;

    r = w->encoder->request;

    if (w->encoder->pool != NULL
        && ngx_thread_task_post(w->encoder->pool, w->task) == NGX_OK)
    {
        /* as nginx's own thread tasks: a request blocked is not
         * terminated under the thread's feet */
        r->main->blocked++;

        return NGX_AGAIN;
    }
#endif

    /* no pool, or its queue is full: the worker does it */
    w->run(w);

    return NGX_OK;
}


/* One of enc's finished encodings made by the same call (the same bytes,
 * spans and bounds), or NULL. */
static ngx_http_slora_encoding_t *
ngx_http_slora_encode_find(ngx_http_slora_encoder_t *enc,
    const ngx_http_slora_encoding_t *call)
{
    ngx_http_slora_work_t      *w;
    ngx_http_slora_encoding_t  *en;

    for (w = enc->done; w; w = w->next) {
        if (w->kind != NGX_HTTP_SLORA_WORK_ENCODE) {
            continue;
        }

        en = (ngx_http_slora_encoding_t *) w;

        if (en->len == call->len
            && en->add_special == call->add_special
            && en->cap == call->cap
            && en->limit == call->limit
            && (en->plain == NULL) == (call->plain == NULL)
            && en->n_plain == call->n_plain
            && ngx_memcmp(en->text, call->text, call->len) == 0
            && (call->n_plain == 0
                || ngx_memcmp(en->plain, call->plain,
                              call->n_plain * sizeof(slora_span_t))
                   == 0))
        {
            return en;
        }
    }

    return NULL;
}


/* The encoding itself: en's ids, count, answer and error. */
static void
ngx_http_slora_encode_run(ngx_http_slora_work_t *w)
{
    ngx_http_slora_encoding_t  *en = (ngx_http_slora_encoding_t *) w;

    en->err.msg[0] = '\0';
    en->n = 0;

    en->rc = en->plain != NULL
             ? slora_tokenizer_encode_chat(en->tokenizer,
                                           (const char *) en->text, en->len,
                                           (int) en->add_special, en->plain,
                                           en->n_plain, en->ids, en->cap,
                                           en->limit, &en->n, &en->err)
             : slora_tokenizer_encode_upto(en->tokenizer,
                                           (const char *) en->text, en->len,
                                           (int) en->add_special, 0, en->ids,
                                           en->cap, en->limit, &en->n,
                                           &en->err);
}


/* A done encoding's answer as the call gives it: ids[0..cap), *n, *err
 * and the SLORA_* code. */
static int
ngx_http_slora_encode_answer(const ngx_http_slora_encoding_t *en,
    int32_t *ids, int32_t *n, slora_err_t *err)
{
    if (ids != en->ids) {
        ngx_memcpy(ids, en->ids,
                   (size_t) ngx_min(en->n, en->cap) * sizeof(int32_t));
    }

    *n = en->n;
    *err = en->err;

    return en->rc;
}


#if (NGX_THREADS)

/* On a thread of the pool: what the work's call holds only. */
static void
ngx_http_slora_work_thread(void *data, ngx_log_t *log)
{
    ngx_http_slora_work_t  *w = data;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                   "slora: work %d of %uz bytes on a thread",
                   (int) w->kind, w->len);

    w->run(w);
}


/* Back on the event loop: the work is kept for the next making, and the
 * request is made again. */
static void
ngx_http_slora_work_done(ngx_event_t *ev)
{
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_slora_work_t     *w;
    ngx_http_slora_encoder_t  *enc;

    w = ev->data;
    enc = w->encoder;
    r = enc->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    w->next = enc->done;
    enc->done = w;
    r->main->blocked--;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "slora: work %d of %uz bytes done", (int) w->kind,
                   w->len);

    enc->again(enc);

    ngx_http_run_posted_requests(c);
}

#endif
