/*
 * ngx_http_slora_resume.c: GET .../responses/{id}?stream=true
 * [&starting_after=N], a background stream's events again: those the
 * store kept (ngx_http_slora_store_append: every event the answering
 * worker sent, whether its client was still there or not), from the one
 * after sequence_number N (all of them without it), then each as it
 * comes, until the answer ends. What OpenAI's clients call to pick up a
 * background stream whose connection dropped
 * (`client.responses.retrieve(id, stream=True, starting_after=N)`); any
 * number may follow one answer, in any worker.
 *
 * The one idea: the reader follows the store, not the engine. The
 * answering worker alone holds the engine's slot; a reader polls the
 * record every NGX_HTTP_SLORA_RESUME_POLL ms for the events past what it
 * read (at most a buffer of them a read, the buffer reused once the
 * client took its bytes, and read again at once where more wait), and
 * sends the whole ones (each ends with an empty line; the
 * n-th kept is sequence_number n, as the stream numbers them from 0).
 * It ends where the record says no more will come: the answer's request
 * ended (its last event, response.completed or the like, is kept before
 * that), or its worker died, for which it sends response.failed itself
 * with the stored object (worker_lost). A cancelled one ends after what
 * was sent before the cancel; one deleted, or whose events the store
 * had no room for, ends with an error event.
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_sse.h"


#define NGX_HTTP_SLORA_RESUME_POLL  50      /* ms between reads */
#define NGX_HTTP_SLORA_RESUME_READ  65536   /* bytes a read, at first */


typedef struct {
    ngx_http_request_t        *request;
    ngx_str_t                  id;
    ngx_str_t                  tenant;
    size_t                     off;         /* the record's events read */
    ngx_uint_t                 seq;         /* events read: the next one's
                                               sequence_number */
    ngx_uint_t                 first;       /* the first to send */
    ngx_uint_t                 terminal;    /* the last read ended the
                                               response */
    off_t                      sent;        /* the connection's bytes sent
                                               when last seen moving */
    ngx_msec_t                 moved;       /* and when */
    ngx_event_t                poll;
    u_char                    *buf;         /* a read's bytes, reused */
    size_t                     cap;
    ngx_chain_t               *out;         /* and what sends them */
} ngx_http_slora_resume_t;


static void ngx_http_slora_resume_poll(ngx_event_t *ev);
static ngx_int_t ngx_http_slora_resume_read(ngx_http_slora_resume_t *rs);
static ngx_int_t ngx_http_slora_resume_fetch(ngx_http_slora_resume_t *rs);
static ngx_int_t ngx_http_slora_resume_output(ngx_http_request_t *r,
    ngx_chain_t *in);
static void ngx_http_slora_resume_writer(ngx_http_request_t *r);
static ngx_int_t ngx_http_slora_resume_send(ngx_http_slora_resume_t *rs,
    ngx_int_t rc, ngx_http_slora_store_events_t *ev);
static ngx_int_t ngx_http_slora_resume_take(ngx_http_slora_resume_t *rs,
    ngx_str_t *bytes, ngx_chain_t ***ll, size_t *rest);
static ngx_int_t ngx_http_slora_resume_event(ngx_http_slora_resume_t *rs,
    const char *type, u_char *tail, size_t len, ngx_chain_t ***ll);
static void ngx_http_slora_resume_cleanup(void *data);


/*
 * The first read answers what cannot be streamed (a 404 for a response
 * not kept; a 400 for one that was not a background stream, or whose
 * events were not kept, or a bad starting_after); then the SSE header
 * and the kept events, and the request lives on in its poll.
 */
ngx_int_t
ngx_http_slora_resume(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *tenant)
{
    ngx_int_t                       rc, after;
    ngx_http_cleanup_t             *cln;
    slora_openai_str_t              arg;
    ngx_http_slora_resume_t        *rs;
    ngx_http_slora_store_events_t   ev;

    after = -1;

    rc = ngx_http_slora_query_arg(r, "starting_after", &arg);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_OK) {
        after = arg.len ? ngx_atoi((u_char *) arg.data, arg.len) : NGX_ERROR;

        if (after == NGX_ERROR) {
            return ngx_http_slora_send_error(r, NGX_HTTP_BAD_REQUEST,
                                             "invalid_request_error",
                                             "invalid_value",
                                             "starting_after",
                                             "starting_after must be a"
                                             " sequence number (an integer"
                                             " of 0 or more), not \"%*s\"",
                                             arg.len, arg.data);
        }
    }

    rc = ngx_http_slora_store_events(r, id->data, id->len, tenant, 0, NULL,
                                     0, &ev);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_slora_store_none(r, id);
    }

    if (!ev.streamed) {
        return ngx_http_slora_send_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request_error",
                                         "invalid_value", "stream",
                                         "Response '%V' was not created"
                                         " with background and stream"
                                         " true: it has no events to"
                                         " stream (GET it without"
                                         " stream)", id);
    }

    if (ev.lost) {
        return ngx_http_slora_send_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request_error",
                                         "stream_not_kept", "stream",
                                         "The events of response '%V' were"
                                         " not kept: slora_responses_store"
                                         " had no room for them (GET it"
                                         " without stream)", id);
    }

    rs = ngx_pcalloc(r->pool, sizeof(ngx_http_slora_resume_t));
    cln = ngx_http_cleanup_add(r, 0);

    if (rs == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rs->request = r;
    rs->id = *id;
    rs->tenant = *tenant;
    rs->first = (ngx_uint_t) after + 1;      /* after -1: all */
    rs->poll.handler = ngx_http_slora_resume_poll;
    rs->poll.data = rs;
    rs->poll.log = r->connection->log;

    cln->handler = ngx_http_slora_resume_cleanup;
    cln->data = rs;

    if (ngx_http_slora_stream_header(r, 0) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a client that goes ends it (nothing else is read); one that reads
     * takes the bytes nginx holds as the socket drains */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_slora_resume_writer;
    r->main->count++;

    /* what is kept goes out at once, the header with it */
    rs->moved = ngx_current_msec;
    rc = ngx_http_slora_resume_fetch(rs);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }

    return NGX_DONE;
}


static void
ngx_http_slora_resume_poll(ngx_event_t *ev)
{
    ngx_int_t                 rc;
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_slora_resume_t  *rs;

    rs = ev->data;
    r = rs->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    rc = ngx_http_slora_resume_read(rs);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }

    ngx_http_run_posted_requests(c);
}


/* Reads the events kept since the last read and sends them (see
 * ngx_http_slora_resume_send). A reader that has not taken what was
 * sent gets nothing more read for it (its events wait in the store, not
 * in the worker), and one that takes nothing for send_timeout is let
 * go. */
static ngx_int_t
ngx_http_slora_resume_read(ngx_http_slora_resume_t *rs)
{
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_core_loc_conf_t  *clcf;

    r = rs->request;
    c = r->connection;

    if ((r->buffered || c->buffered)
        && ngx_http_slora_resume_output(r, NULL) == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    if (c->sent != rs->sent) {
        rs->sent = c->sent;
        rs->moved = ngx_current_msec;
    }

    if (r->buffered || c->buffered) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (ngx_current_msec - rs->moved >= clcf->send_timeout) {
            ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                          "slora: client timed out");
            c->timedout = 1;
            return NGX_HTTP_REQUEST_TIME_OUT;
        }

        ngx_add_timer(&rs->poll, NGX_HTTP_SLORA_RESUME_POLL);
        return NGX_DONE;
    }

    return ngx_http_slora_resume_fetch(rs);
}


/* Reads at most the reader's buffer of the events past rs->off (a
 * buffer twice as large where one event is longer) and sends them. */
static ngx_int_t
ngx_http_slora_resume_fetch(ngx_http_slora_resume_t *rs)
{
    ngx_int_t                       rc;
    ngx_http_request_t             *r;
    ngx_http_slora_store_events_t   ev;

    r = rs->request;

    for ( ;; ) {
        if (rs->buf == NULL) {
            rs->cap = NGX_HTTP_SLORA_RESUME_READ;
            rs->buf = ngx_pnalloc(r->pool, rs->cap);

            if (rs->buf == NULL) {
                return NGX_ERROR;
            }
        }

        rc = ngx_http_slora_store_events(r, rs->id.data, rs->id.len,
                                         &rs->tenant, rs->off, rs->buf,
                                         rs->cap, &ev);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        /* an event longer than the buffer: a buffer twice as large */
        if (rc == NGX_OK && ev.more > 0
            && memmem(ev.bytes.data, ev.bytes.len, "\n\n", 2) == NULL)
        {
            ngx_pfree(r->pool, rs->buf);
            rs->cap *= 2;
            rs->buf = ngx_pnalloc(r->pool, rs->cap);

            if (rs->buf == NULL) {
                return NGX_ERROR;
            }

            continue;
        }

        return ngx_http_slora_resume_send(rs, rc, &ev);
    }
}


/*
 * Sends what a read of the store found (rc: NGX_DECLINED where the
 * record is gone); NGX_DONE: more to come, the next poll armed; else
 * the stream's end handed to the output, the request's result (NGX_AGAIN
 * where the client has not taken it all yet: nginx's writer sends the
 * rest).
 */
static ngx_int_t
ngx_http_slora_resume_send(ngx_http_slora_resume_t *rs, ngx_int_t rc,
    ngx_http_slora_store_events_t *ev)
{
    u_char               *p, *tail;
    size_t                rest;
    ngx_str_t             obj;
    ngx_chain_t          *out, **ll, *cl;
    ngx_http_request_t   *r;

    r = rs->request;
    out = NULL;
    ll = &out;

    if (rc == NGX_DECLINED || ev->lost) {
        /* deleted or dropped, or its events let go, while followed */
        tail = ngx_pnalloc(r->pool, 256 + 6 * rs->id.len);
        if (tail == NULL) {
            return NGX_ERROR;
        }

        p = ngx_http_slora_lit(tail, ",\"code\":");
        p = ngx_http_slora_json_cstr(p, rc == NGX_DECLINED
                                        ? "not_found" : "stream_not_kept");
        p = ngx_http_slora_lit(p, ",\"message\":");
        p = ngx_http_slora_json_cstr(p, rc == NGX_DECLINED
                                        ? "the response is no longer kept"
                                          " (deleted, or dropped for room)"
                                        : "the response's events are no"
                                          " longer kept"
                                          " (slora_responses_store had no"
                                          " room for them)");
        p = ngx_http_slora_lit(p, ",\"param\":null}");

        if (ngx_http_slora_resume_event(rs, "error", tail, p - tail, &ll)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        goto last;
    }

    if (ngx_http_slora_resume_take(rs, &ev->bytes, &ll, &rest) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ev->ended && rest == 0 && ev->more == 0) {
        /* all there will be; where its worker died before the end, the
         * stored object ("failed", worker_lost) says so */
        if (ev->state == NGX_HTTP_SLORA_STORE_FAILED && !rs->terminal
            && ngx_http_slora_store_get(r, rs->id.data, rs->id.len,
                                        &rs->tenant, NULL, &obj)
               == NGX_OK)
        {
            while (obj.len && obj.data[obj.len - 1] == '\n') {
                obj.len--;
            }

            tail = ngx_pnalloc(r->pool, obj.len + 32);
            if (tail == NULL) {
                return NGX_ERROR;
            }

            p = ngx_http_slora_lit(tail, ",\"response\":");
            p = ngx_cpymem(p, obj.data, obj.len);
            *p++ = '}';

            if (ngx_http_slora_resume_event(rs, "response.failed", tail,
                                            p - tail, &ll)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        goto last;
    }

    if (out != NULL) {
        for (cl = out; cl; cl = cl->next) {
            cl->buf->flush = cl->next == NULL;
        }

        if (ngx_http_slora_resume_output(r, out) == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    /* the buffer's bytes still to go: read again once they went */
    ngx_add_timer(&rs->poll, ev->more ? 1 : NGX_HTTP_SLORA_RESUME_POLL);

    return NGX_DONE;

last:

    return ngx_http_output_filter(r, out) == NGX_ERROR
           ? NGX_ERROR : ngx_http_send_special(r, NGX_HTTP_LAST);
}


/* The whole events of bytes (the record's past rs->off) read: those from
 * rs->first on added to *ll; *rest: the bytes of an unended one left. */
static ngx_int_t
ngx_http_slora_resume_take(ngx_http_slora_resume_t *rs, ngx_str_t *bytes,
    ngx_chain_t ***ll, size_t *rest)
{
    u_char       *p, *q, *last, *from;
    ngx_buf_t    *b;
    ngx_uint_t    i;
    ngx_chain_t  *cl;

    static ngx_str_t  ends[] = {
        ngx_string("event: response.completed\n"),
        ngx_string("event: response.incomplete\n"),
        ngx_string("event: response.failed\n")
    };

    p = bytes->data;
    last = bytes->data + bytes->len;
    from = NULL;

    for ( ;; ) {
        /* an event ends with an empty line; its data lines are JSON, with
         * no line break of their own */
        for (q = p; q + 1 < last && !(q[0] == '\n' && q[1] == '\n'); q++) {
            /* void */
        }

        if (q + 1 >= last) {
            break;
        }

        if (rs->seq >= rs->first && from == NULL) {
            from = p;
        }

        rs->terminal = 0;

        for (i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
            if ((size_t) (q + 2 - p) > ends[i].len
                && ngx_strncmp(p, ends[i].data, ends[i].len) == 0)
            {
                rs->terminal = 1;
            }
        }

        rs->seq++;
        p = q + 2;
    }

    rs->off += p - bytes->data;
    *rest = last - p;

    if (from == NULL) {
        return NGX_OK;
    }

    /* one buffer a reader: the last read's bytes left nginx before this
     * read (ngx_http_slora_resume_read) */
    if (rs->out == NULL) {
        b = ngx_calloc_buf(rs->request->pool);
        rs->out = ngx_alloc_chain_link(rs->request->pool);

        if (b == NULL || rs->out == NULL) {
            return NGX_ERROR;
        }

        rs->out->buf = b;
    }

    cl = rs->out;
    b = cl->buf;
    ngx_memzero(b, sizeof(ngx_buf_t));
    b->pos = from;
    b->last = p;
    b->memory = 1;
    cl->buf = b;
    cl->next = NULL;
    **ll = cl;
    *ll = &cl->next;

    return NGX_OK;
}


/* An event of the server's own, numbered next: type's, with tail the
 * members after its sequence_number (and the closing brace). */
static ngx_int_t
ngx_http_slora_resume_event(ngx_http_slora_resume_t *rs, const char *type,
    u_char *tail, size_t len, ngx_chain_t ***ll)
{
    u_char       *data, *p;
    size_t        size;
    ngx_buf_t    *b;
    ngx_pool_t   *pool;
    ngx_chain_t  *cl;

    pool = rs->request->pool;

    data = ngx_pnalloc(pool, 64 + ngx_strlen(type) + NGX_INT_T_LEN + len);
    if (data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(data, "{\"type\":\"%s\",\"sequence_number\":%ui", type,
                    rs->seq++);
    p = ngx_cpymem(p, tail, len);

    size = ngx_http_slora_sse_frame(NULL, 0, type, data, p - data);

    b = ngx_create_temp_buf(pool, size);
    cl = ngx_alloc_chain_link(pool);

    if (b == NULL || cl == NULL) {
        return NGX_ERROR;
    }

    b->last += ngx_http_slora_sse_frame(b->pos, size, type, data, p - data);
    cl->buf = b;
    cl->next = NULL;
    **ll = cl;
    *ll = &cl->next;

    return NGX_OK;
}


/* Hands in to nginx's output; what the socket did not take goes as it
 * drains (the write event armed), not only at the next poll. */
static ngx_int_t
ngx_http_slora_resume_output(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_http_core_loc_conf_t  *clcf;

    if (ngx_http_output_filter(r, in) == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (r->buffered || r->connection->buffered) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (ngx_handle_write_event(r->connection->write, clcf->send_lowat)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_slora_resume_writer(ngx_http_request_t *r)
{
    if (ngx_http_slora_resume_output(r, NULL) == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);
    }
}


static void
ngx_http_slora_resume_cleanup(void *data)
{
    ngx_http_slora_resume_t  *rs = data;

    if (rs->poll.timer_set) {
        ngx_del_timer(&rs->poll);
    }
}
