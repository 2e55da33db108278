/*
 * ngx_http_slora_history.c: a Responses body parsed with the stored
 * history it continues (previous_response_id's chain, or a
 * conversation), the parse on the thread pool where that history is
 * long. Nothing bounds a history but half the store, and its parse (the
 * cJSON tree, the removed items passed over, the chat messages checked
 * and copied) costs some 20 ms a megabyte of short messages: at the
 * store's 8 MB a worker would be held 180 ms. A history longer than
 * NGX_HTTP_SLORA_HISTORY_HERE is parsed on a thread of slora_thread_pool
 * (a work of ngx_http_slora_encode.c's, made again as a long text's
 * encoding is); a shorter one, and every one where no pool is set, is
 * parsed at once, as is a body that continues nothing.
 *
 * The one idea: the store is read on the worker, the parse is done on
 * the thread. The body is parsed here up to the history's lookup, which
 * copies the record under the zone's lock (a memcpy); where the copy is
 * long the lookup stops the parse (SLORA_AGAIN), and the thread parses
 * the body again given that copy: the thread reads nothing but the
 * body, the copy (both in the request's pool) and the limits, and writes
 * nothing but its own parsed request (malloc'd, freed with the request's
 * pool). The request made again finds the done parse by its body, and
 * takes it whole: the history is the one copied, whatever the store
 * holds by then (as if the parse had been at once), and the store is
 * not read a second time. An error the parse finds (a corrupt record
 * among them: the same 404) is the same answer as at once.
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
    slora_openai_limits_t        lim;
    slora_openai_stored_e        what;
    const u_char                *conv;       /* the history copied */
    size_t                       conv_len;

    /* what the thread found */
    slora_openai_req_t          *req;
    int                          rc;
    slora_openai_err_t           err;
} ngx_http_slora_history_t;


/* The worker's lookup, as the parse calls it. */
typedef struct {
    ngx_http_request_t          *request;
    ngx_uint_t                   stop;       /* a long history stops it */
    slora_openai_stored_e        what;
    const u_char                *conv;       /* where it stopped */
    size_t                       conv_len;
} ngx_http_slora_lookup_t;


static int ngx_http_slora_history_lookup(void *data,
    slora_openai_stored_e what, const char *id, size_t len,
    const char **conv, size_t *conv_len);
static int ngx_http_slora_history_given(void *data,
    slora_openai_stored_e what, const char *id, size_t len,
    const char **conv, size_t *conv_len);
static void ngx_http_slora_history_run(ngx_http_slora_work_t *w);
static ngx_int_t ngx_http_slora_history_answer(ngx_http_slora_history_t *h,
    slora_openai_req_t **req, slora_openai_err_t *err);


/*
 * The Responses body (slora_openai_parse_responses under lim, its
 * history read from the store where one is kept): NGX_OK with *req the
 * request; NGX_DECLINED, err says why (its 4xx, or a 500); NGX_ERROR
 * without memory; or NGX_AGAIN: the history went to the thread pool,
 * and enc's again() will make the request anew, where the same call
 * answers at once. Each making passes the same lim.
 */
ngx_int_t
ngx_http_slora_history_parse(ngx_http_slora_encoder_t *enc,
    const ngx_str_t *body, const slora_openai_limits_t *lim,
    slora_openai_req_t **req, slora_openai_err_t *err)
{
    int                           rc;
    ngx_http_request_t           *r;
    slora_openai_req_t           *here;
    ngx_http_slora_work_t        *w;
    ngx_http_slora_lookup_t       lk;
    ngx_http_slora_history_t     *h;
    ngx_http_slora_main_conf_t   *smcf;

    r = enc->request;

    /* the parse done on the thread for this body */
    for (w = enc->done; w; w = w->next) {
        h = (ngx_http_slora_history_t *) w;

        if (w->kind == NGX_HTTP_SLORA_WORK_HISTORY && h->len == body->len
            && ngx_memcmp(h->body, body->data, body->len) == 0)
        {
            return ngx_http_slora_history_answer(h, req, err);
        }
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);

    here = ngx_http_slora_req_create(r);
    if (here == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&lk, sizeof(lk));
    lk.request = r;
    lk.stop = enc->pool != NULL;

    rc = slora_openai_parse_responses((const char *) body->data, body->len,
                                      lim,
                                      smcf->store != NULL
                                      ? ngx_http_slora_history_lookup : NULL,
                                      &lk, here, err);

    if (rc != SLORA_AGAIN) {
        *req = here;
        return rc == SLORA_OK ? NGX_OK : NGX_DECLINED;
    }

    /* the history is long: the whole parse again, on the thread, given
     * the copy (here's partial parse is freed with the pool) */

    w = ngx_http_slora_work_alloc(enc, NGX_HTTP_SLORA_WORK_HISTORY,
                                  sizeof(ngx_http_slora_history_t),
                                  ngx_http_slora_history_run);
    if (w == NULL) {
        return NGX_ERROR;
    }

    h = (ngx_http_slora_history_t *) w;
    w->len = lk.conv_len;
    h->body = body->data;
    h->len = body->len;
    h->lim = *lim;
    h->what = lk.what;
    h->conv = lk.conv;
    h->conv_len = lk.conv_len;

    h->req = ngx_http_slora_req_create(r);
    if (h->req == NULL) {
        return NGX_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "slora: a stored history of %uz bytes to parse",
                   lk.conv_len);

    if (ngx_http_slora_work_post(w) == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    return ngx_http_slora_history_answer(h, req, err);
}


/* On the worker: the store's lookup (ngx_http_slora_store_prev, the
 * record copied into the request's pool), which stops the parse where
 * the copy is long and a pool is set. */
static int
ngx_http_slora_history_lookup(void *data, slora_openai_stored_e what,
    const char *id, size_t len, const char **conv, size_t *conv_len)
{
    int                       rc;
    ngx_http_slora_lookup_t  *lk = data;

    rc = ngx_http_slora_store_prev(lk->request, what, id, len, conv,
                                   conv_len);

    if (rc != SLORA_OK || !lk->stop
        || *conv_len <= NGX_HTTP_SLORA_HISTORY_HERE)
    {
        return rc;
    }

    lk->what = what;
    lk->conv = (const u_char *) *conv;
    lk->conv_len = *conv_len;

    return SLORA_AGAIN;
}


/* On the thread: the history the worker copied. The body is the same,
 * so the parse asks for the same one (an id of it, of that kind). */
static int
ngx_http_slora_history_given(void *data, slora_openai_stored_e what,
    const char *id, size_t len, const char **conv, size_t *conv_len)
{
    ngx_http_slora_history_t  *h = data;

    if (what != h->what) {
        return SLORA_DECLINED;
    }

    *conv = (const char *) h->conv;
    *conv_len = h->conv_len;

    return SLORA_OK;
}


/* The parse itself: the body, the copy and h's own request only. */
static void
ngx_http_slora_history_run(ngx_http_slora_work_t *w)
{
    ngx_http_slora_history_t  *h = (ngx_http_slora_history_t *) w;

    ngx_memzero(&h->err, sizeof(h->err));

    h->rc = slora_openai_parse_responses((const char *) h->body, h->len,
                                         &h->lim,
                                         ngx_http_slora_history_given, h,
                                         h->req, &h->err);
}


/* A done parse's answer as the call gives it. */
static ngx_int_t
ngx_http_slora_history_answer(ngx_http_slora_history_t *h,
    slora_openai_req_t **req, slora_openai_err_t *err)
{
    *req = h->req;
    *err = h->err;

    return h->rc == SLORA_OK ? NGX_OK : NGX_DECLINED;
}
