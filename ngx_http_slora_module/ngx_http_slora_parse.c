/*
 * ngx_http_slora_parse.c: a request's body parsed (a chat or a
 * completion, or a Responses body with the stored history it continues:
 * previous_response_id's chain, or a conversation), the parse on the
 * thread pool where it is long work: a long history, or a constraint's
 * compile. Nothing bounds a history but half the store, and its parse
 * (the cJSON tree, the removed items passed over, the chat messages
 * checked and copied) costs some 20 ms a megabyte of short messages: at
 * the store's 8 MB a worker would be held 180 ms. A schema's, a
 * guided_regex's or a grammar's compile, which refuses with a 400 one the
 * engine could not hold, is bounded by its work budget, some 4 ms
 * (bench/RESULTS.md, the regex compile): a worker held that long for
 * every guided request. A history longer than NGX_HTTP_SLORA_HISTORY_HERE,
 * and any constraint, is parsed on a thread of slora_thread_pool (a work
 * of ngx_http_slora_encode.c's, made again as a long text's encoding
 * is); every body where no pool is set is parsed at once, as is one
 * with neither.
 *
 * The one idea: the store is read on the worker, the long work is done
 * on the thread. The body is parsed here with the compile passed over
 * (compile_later) and the history's lookup copying the record under the
 * zone's lock (a memcpy); where the copy is long the lookup stops the
 * parse (SLORA_AGAIN); where it went through with a constraint passed
 * over it ends; either way the thread parses the body again given that
 * copy, compiling: the thread reads nothing but the body, the copy (both
 * in the request's pool) and the limits, and writes nothing but its own
 * parsed request (malloc'd, freed with the request's pool). The request
 * made again finds the done parse by its body, and takes it whole: the
 * history is the one copied, whatever the store holds by then (as if
 * the parse had been at once), and the store is not read a second time.
 * An error the parse finds (a corrupt record among them: the same 404;
 * a constraint refused: the same 400) is the same answer as at once.
 * A constraint the engine keeps compiled (its key in the zone) is not
 * compiled at all: it goes to the engine as it came, without the thread.
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_prompt.h"


/* longer histories go to the thread pool: some 0.6 ms of a parse of
 * short messages on one core (bench/bench_conv.c), less for long ones */
#define NGX_HTTP_SLORA_HISTORY_HERE  32768


typedef struct {
    ngx_http_slora_work_t        work;

    /* the call, as the thread sees it */
    const u_char                *body;
    size_t                       len;
    slora_openai_kind_e          kind;
    ngx_uint_t                   responses;
    slora_openai_limits_t        lim;        /* compiling */
    ngx_uint_t                   kept;       /* the store is kept: the
                                                parse has a lookup */
    ngx_uint_t                   looked_up;  /* the history copied: */
    slora_openai_stored_e        what;
    const u_char                *conv;
    size_t                       conv_len;

    /* what the thread found */
    slora_openai_req_t          *req;
    int                          rc;
    slora_openai_err_t           err;
} ngx_http_slora_parse_t;


/* The worker's lookup, as the parse calls it. */
typedef struct {
    ngx_http_request_t          *request;
    ngx_uint_t                   stop;       /* a long history stops it */
    ngx_uint_t                   looked_up;  /* the history copied: */
    slora_openai_stored_e        what;
    const u_char                *conv;
    size_t                       conv_len;
} ngx_http_slora_lookup_t;


static int ngx_http_slora_parse_lookup(void *data,
    slora_openai_stored_e what, const char *id, size_t len,
    const char **conv, size_t *conv_len);
static int ngx_http_slora_parse_given(void *data,
    slora_openai_stored_e what, const char *id, size_t len,
    const char **conv, size_t *conv_len);
static int ngx_http_slora_parse_body(const ngx_str_t *body,
    slora_openai_kind_e kind, ngx_uint_t responses,
    const slora_openai_limits_t *lim, slora_openai_prev_pt prev,
    void *prev_data, slora_openai_req_t *req, slora_openai_err_t *err);
static void ngx_http_slora_parse_run(ngx_http_slora_work_t *w);
static ngx_int_t ngx_http_slora_parse_answer(ngx_http_slora_parse_t *p,
    slora_openai_req_t **req, slora_openai_err_t *err);
static int ngx_http_slora_schema_known(void *data, int form,
    const char *text, size_t len);
static void ngx_http_slora_parse_count(ngx_http_slora_main_conf_t *smcf,
    int rc, const slora_openai_req_t *req);


/*
 * The body of kind (slora_openai_parse), or a Responses body
 * (slora_openai_parse_responses, its history read from the store where
 * one is kept), under lim: NGX_OK with *req the request; NGX_DECLINED,
 * err says why (its 4xx, or a 500); NGX_ERROR without memory; or
 * NGX_AGAIN: the parse went to the thread pool, and enc's again() will
 * make the request anew, where the same call answers at once. Each
 * making passes the same lim.
 */
ngx_int_t
ngx_http_slora_parse(ngx_http_slora_encoder_t *enc, const ngx_str_t *body,
    slora_openai_kind_e kind, ngx_uint_t responses,
    const slora_openai_limits_t *lim, slora_openai_req_t **req,
    slora_openai_err_t *err)
{
    int                           rc;
    ngx_http_request_t           *r;
    slora_openai_req_t           *here;
    slora_openai_limits_t         later;
    ngx_http_slora_work_t        *w;
    ngx_http_slora_lookup_t       lk;
    ngx_http_slora_parse_t       *p;
    ngx_http_slora_main_conf_t   *smcf;

    r = enc->request;
    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);

    /* the parse done on the thread for this body */
    for (w = enc->done; w; w = w->next) {
        p = (ngx_http_slora_parse_t *) w;

        if (w->kind == NGX_HTTP_SLORA_WORK_PARSE && p->len == body->len
            && ngx_memcmp(p->body, body->data, body->len) == 0)
        {
            ngx_http_slora_parse_count(smcf, p->rc, p->req);
            return ngx_http_slora_parse_answer(p, req, err);
        }
    }

    here = ngx_http_slora_req_create(r);
    if (here == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&lk, sizeof(lk));
    lk.request = r;
    lk.stop = enc->pool != NULL;

    /* a constraint the engine keeps compiled is not compiled to check;
     * with a pool, another one's compile is left to the thread */
    later = *lim;
    later.compile_later = enc->pool != NULL;
    later.schema_known = ngx_http_slora_schema_known;
    later.schema_known_data = ngx_http_slora_queue(smcf);

    rc = ngx_http_slora_parse_body(body, kind, responses, &later,
                                   smcf->store != NULL
                                   ? ngx_http_slora_parse_lookup : NULL,
                                   &lk, here, err);

    if (rc != SLORA_AGAIN && !here->schema_uncompiled) {
        *req = here;
        ngx_http_slora_parse_count(smcf, rc, here);
        return rc == SLORA_OK ? NGX_OK : NGX_DECLINED;
    }

    /* a long history, or a constraint to compile: the whole parse again,
     * on the thread, given the copy (here's parse is freed with the
     * pool). So too where the body failed after its constraint was
     * passed over: a constraint refused is the answer where it comes
     * first, as in a parse that compiles at once. */

    w = ngx_http_slora_work_alloc(enc, NGX_HTTP_SLORA_WORK_PARSE,
                                  sizeof(ngx_http_slora_parse_t),
                                  ngx_http_slora_parse_run);
    if (w == NULL) {
        return NGX_ERROR;
    }

    p = (ngx_http_slora_parse_t *) w;
    w->len = body->len + lk.conv_len;
    p->body = body->data;
    p->len = body->len;
    p->kind = kind;
    p->responses = responses;
    p->lim = later;
    p->lim.compile_later = 0;
    p->kept = smcf->store != NULL;
    p->looked_up = lk.looked_up;
    p->what = lk.what;
    p->conv = lk.conv;
    p->conv_len = lk.conv_len;

    p->req = ngx_http_slora_req_create(r);
    if (p->req == NULL) {
        return NGX_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "slora: a body of %uz bytes to parse, a history of %uz,"
                   " a constraint %ui", body->len, lk.conv_len,
                   (ngx_uint_t) here->schema_uncompiled);

    if (ngx_http_slora_work_post(w) == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    return ngx_http_slora_parse_answer(p, req, err);
}


/* On the worker: the store's lookup (ngx_http_slora_store_prev, the
 * record copied into the request's pool), kept for the thread, which
 * stops the parse where the copy is long and a pool is set. */
static int
ngx_http_slora_parse_lookup(void *data, slora_openai_stored_e what,
    const char *id, size_t len, const char **conv, size_t *conv_len)
{
    int                       rc;
    ngx_http_slora_lookup_t  *lk = data;

    rc = ngx_http_slora_store_prev(lk->request, what, id, len, conv,
                                   conv_len);

    if (rc != SLORA_OK) {
        return rc;
    }

    lk->looked_up = 1;
    lk->what = what;
    lk->conv = (const u_char *) *conv;
    lk->conv_len = *conv_len;

    return lk->stop && *conv_len > NGX_HTTP_SLORA_HISTORY_HERE
           ? SLORA_AGAIN : SLORA_OK;
}


/* On the thread: the history the worker copied. The body is the same,
 * so the parse asks for the same one (an id of it, of that kind). */
static int
ngx_http_slora_parse_given(void *data, slora_openai_stored_e what,
    const char *id, size_t len, const char **conv, size_t *conv_len)
{
    ngx_http_slora_parse_t  *p = data;

    if (!p->looked_up || what != p->what) {
        return SLORA_DECLINED;
    }

    *conv = (const char *) p->conv;
    *conv_len = p->conv_len;

    return SLORA_OK;
}


/* The body of kind, or a Responses body, parsed by the engine's parser. */
static int
ngx_http_slora_parse_body(const ngx_str_t *body, slora_openai_kind_e kind,
    ngx_uint_t responses, const slora_openai_limits_t *lim,
    slora_openai_prev_pt prev, void *prev_data, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    if (responses) {
        return slora_openai_parse_responses((const char *) body->data,
                                            body->len, lim, prev, prev_data,
                                            req, err);
    }

    return slora_openai_parse((const char *) body->data, body->len, kind,
                              lim, req, err);
}


/* The parse itself: the body, the copy and p's own request only. */
static void
ngx_http_slora_parse_run(ngx_http_slora_work_t *w)
{
    ngx_str_t                body;
    ngx_http_slora_parse_t  *p = (ngx_http_slora_parse_t *) w;

    ngx_memzero(&p->err, sizeof(p->err));

    body.data = (u_char *) p->body;
    body.len = p->len;

    p->rc = ngx_http_slora_parse_body(&body, p->kind, p->responses, &p->lim,
                                      p->kept ? ngx_http_slora_parse_given
                                              : NULL,
                                      p, p->req, &p->err);
}


/* A done parse's answer as the call gives it. */
static ngx_int_t
ngx_http_slora_parse_answer(ngx_http_slora_parse_t *p,
    slora_openai_req_t **req, slora_openai_err_t *err)
{
    *req = p->req;
    *err = p->err;

    return p->rc == SLORA_OK ? NGX_OK : NGX_DECLINED;
}


/*
 * 1 where the engine keeps the constraint compiled: its key is among
 * those the engine process writes into the zone as they change, the
 * most recently used first (ngx_http_slora_engine_stats). It compiles,
 * then: neither the worker nor the thread compiles it to check it. The
 * worker's and the thread's (data: the zone); the keys are read one at
 * a time, a stale one as good as a fresh one (a constraint that
 * compiled once always does).
 */
static int
ngx_http_slora_schema_known(void *data, int form, const char *text,
    size_t len)
{
    uint64_t        key;
    ngx_uint_t      i;
    slora_queue_t  *q = data;

    if (q == NULL) {
        return 0;
    }

    key = slora_engine_schema_key(form, text, len);

    for (i = 0; i < SLORA_QUEUE_SCHEMA_KEYS; i++) {
        if (atomic_load_explicit(&q->schema_keys[i], memory_order_relaxed)
            == key)
        {
            return 1;
        }
    }

    return 0;
}


/* A parse whose constraint was taken as known, counted once where the
 * request parsed (/status's constraints "known"). */
static void
ngx_http_slora_parse_count(ngx_http_slora_main_conf_t *smcf, int rc,
    const slora_openai_req_t *req)
{
    slora_queue_t  *q;

    q = ngx_http_slora_queue(smcf);

    if (q != NULL && rc == SLORA_OK && req != NULL && req->schema_was_known)
    {
        atomic_fetch_add_explicit(&q->schema_known_hits, 1,
                                  memory_order_relaxed);
    }
}
