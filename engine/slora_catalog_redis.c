/*
 * slora_catalog_redis.c: the catalog's own thread: two hiredis
 * connections to Redis, the reads of adapter and tenant hashes and of the
 * hints, the use counts it adds to slora:popular, the events of its
 * subscriber connection, and reconnection with backoff.
 *
 * The one idea: this thread alone talks to Redis, and it reaches the
 * owner's thread only through messages: it takes the jobs queued by
 * slora_catalog.c and answers with slora_catalog_answer(); it never
 * touches the cache.
 *
 * Design. The thread connects twice (commands, and a SUBSCRIBE connection
 * it reads with poll()), and when either fails it answers every job
 * "unavailable" at once and reconnects with backoff (50 ms doubling to
 * 2 s); a successful reconnection is followed by "*", every entry read
 * again.
 */

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "slora_catalog_int.h"
#include "slora_utf8.h"


#define SLORA_CATALOG_BACKOFF_MS  50
#define SLORA_CATALOG_BACKOFF_MAX 2000


static int slora_catalog_connect(slora_catalog_t *cat);
static void slora_catalog_disconnect(slora_catalog_t *cat,
    redisContext *failed);
static void slora_catalog_write_job(slora_catalog_t *cat,
    slora_catalog_msg_t *job);
static void slora_catalog_run_job(slora_catalog_t *cat,
    slora_catalog_msg_t *job);
static int slora_catalog_read_adapter(slora_catalog_t *cat,
    slora_catalog_msg_t *m);
static int slora_catalog_read_tenant(slora_catalog_t *cat,
    slora_catalog_msg_t *m);
static int slora_catalog_read_hints(slora_catalog_t *cat);
static int slora_catalog_busy(slora_catalog_t *cat, redisReply *r);
static int slora_catalog_send_hits(slora_catalog_t *cat,
    slora_catalog_msg_t *job);
static int slora_catalog_read_events(slora_catalog_t *cat, int may_read);
static void slora_catalog_event(slora_catalog_t *cat, const char *text,
    size_t len);
static int slora_catalog_adapter_field(const char *key);
static char **slora_catalog_strings(const redisReply *r, int32_t *n);
static char *slora_catalog_strdup(const char *s);
static struct timeval slora_catalog_tv(int32_t ms);


int
slora_catalog_parse_url(slora_catalog_t *cat, const char *url,
    slora_err_t *err)
{
    return slora_catalog_url(url, &cat->host, &cat->port, &cat->db, err);
}


/* "redis://host:port/db", "host:port", "host" */
int
slora_catalog_url(const char *url, char **host, int *port, int *db,
    slora_err_t *err)
{
    long         v;
    char        *end;
    size_t       len;
    const char  *s, *colon, *slash;

    s = url;
    if (strncmp(s, "redis://", 8) == 0) {
        s += 8;
    }

    slash = strchr(s, '/');
    colon = strchr(s, ':');
    if (colon != NULL && slash != NULL && colon > slash) {
        colon = NULL;
    }

    len = colon ? (size_t) (colon - s)
                : slash ? (size_t) (slash - s) : strlen(s);

    *host = strndup(len ? s : "127.0.0.1", len ? len : 9);
    *port = 6379;
    *db = 0;

    if (*host == NULL) {
        return slora_err_set(err, SLORA_ERROR, "catalog: no memory");
    }

    if (colon != NULL) {
        errno = 0;
        v = strtol(colon + 1, &end, 10);
        if (errno != 0 || end == colon + 1 || v < 1 || v > 65535
            || (*end != '\0' && *end != '/'))
        {
            return slora_err_set(err, SLORA_ERROR, "catalog: redis url "
                                 "\"%s\": bad port", url);
        }
        *port = (int) v;
    }

    if (slash != NULL && slash[1] != '\0') {
        errno = 0;
        v = strtol(slash + 1, &end, 10);
        if (errno != 0 || *end != '\0' || v < 0 || v > 1000000) {
            return slora_err_set(err, SLORA_ERROR, "catalog: redis url "
                                 "\"%s\": bad database number", url);
        }
        *db = (int) v;
    }

    return SLORA_OK;
}


void *
slora_catalog_main(void *arg)
{
    int                   n, stop, timeout;
    char                  buf[256];
    int64_t               now, retry_at, hints_at, backoff, wait;
    struct pollfd         pfd[2];
    slora_catalog_t      *cat;
    slora_catalog_msg_t  *jobs, *next, *m;

    cat = arg;
    retry_at = 0;
    hints_at = 0;
    backoff = SLORA_CATALOG_BACKOFF_MS;

    for ( ;; ) {
        now = slora_now_ns();

        if (cat->cmd == NULL && now >= retry_at) {
            if (slora_catalog_connect(cat) == SLORA_OK) {
                backoff = SLORA_CATALOG_BACKOFF_MS;
                hints_at = 0;

                m = slora_catalog_msg_new(SLORA_MSG_STATE);
                if (m != NULL) {
                    m->up = 1;
                    slora_catalog_answer(cat, m);
                }

                m = slora_catalog_msg_new(SLORA_MSG_INVALIDATE);
                if (m != NULL) {
                    slora_catalog_answer(cat, m);
                }

            } else {
                retry_at = slora_now_ns() + backoff * 1000000;
                backoff = backoff * 2 < SLORA_CATALOG_BACKOFF_MAX
                          ? backoff * 2 : SLORA_CATALOG_BACKOFF_MAX;
            }
        }

        pthread_mutex_lock(&cat->lock);
        stop = cat->stop;
        jobs = cat->jobs.head;
        cat->jobs.head = NULL;
        cat->jobs.tail = NULL;
        pthread_mutex_unlock(&cat->lock);

        for ( /* void */ ; jobs != NULL; jobs = next) {
            next = jobs->next;
            if (stop) {
                slora_catalog_msg_free(jobs);
                continue;
            }
            slora_catalog_run_job(cat, jobs);
        }

        if (stop) {
            break;
        }

        if (cat->cmd != NULL && (slora_now_ns() >= hints_at || cat->hints_due))
        {
            cat->hints_due = 0;
            slora_catalog_read_hints(cat);
            hints_at = slora_now_ns() + (int64_t) cat->hint_ms * 1000000;
        }

        if (cat->cmd == NULL && retry_at <= slora_now_ns()) {
            retry_at = slora_now_ns() + backoff * 1000000;
        }

        now = slora_now_ns();
        wait = cat->cmd == NULL ? retry_at - now : hints_at - now;
        timeout = wait <= 0 ? 0 : (int) (wait / 1000000) + 1;
        timeout = timeout > 1000 ? 1000 : timeout;

        pfd[0].fd = cat->pipe[0];
        pfd[0].events = POLLIN;
        pfd[0].revents = 0;
        pfd[1].fd = cat->sub != NULL ? cat->sub->fd : -1;
        pfd[1].events = POLLIN;
        pfd[1].revents = 0;

        n = poll(pfd, 2, timeout);
        if (n <= 0) {
            continue;
        }

        if (pfd[0].revents & POLLIN) {
            while (read(cat->pipe[0], buf, sizeof(buf)) > 0) {
                /* drained */
            }
        }

        if (cat->sub != NULL && (pfd[1].revents & (POLLIN | POLLERR | POLLHUP))
            && slora_catalog_read_events(cat, 1) != SLORA_OK)
        {
            slora_catalog_disconnect(cat, cat->sub);
            retry_at = slora_now_ns() + backoff * 1000000;
        }
    }

    slora_catalog_disconnect(cat, NULL);

    return NULL;
}


static int
slora_catalog_connect(slora_catalog_t *cat)
{
    int               i;
    redisReply       *r;
    redisContext     *c[2];
    struct timeval    ctv, tv;

    ctv = slora_catalog_tv(cat->connect_ms);
    tv = slora_catalog_tv(cat->command_ms);

    c[0] = NULL;
    c[1] = NULL;

    for (i = 0; i < 2; i++) {
        c[i] = redisConnectWithTimeout(cat->host, cat->port, ctv);
        if (c[i] == NULL || c[i]->err) {
            goto failed;
        }

        if (redisSetTimeout(c[i], tv) != REDIS_OK) {
            goto failed;
        }
    }

    r = cat->db > 0 ? redisCommand(c[0], "SELECT %d", cat->db)
                    : redisCommand(c[0], "PING");
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        if (r != NULL) {
            snprintf(c[0]->errstr, sizeof(c[0]->errstr), "%s", r->str);
            c[0]->err = REDIS_ERR_OTHER;
            freeReplyObject(r);
        }
        goto failed;
    }
    freeReplyObject(r);

    r = redisCommand(c[1], "SUBSCRIBE %s", SLORA_CATALOG_CHANNEL);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r != NULL) {
            snprintf(c[1]->errstr, sizeof(c[1]->errstr), "SUBSCRIBE: not "
                     "an array");
            c[1]->err = REDIS_ERR_OTHER;
            freeReplyObject(r);
        }
        goto failed;
    }
    freeReplyObject(r);

    cat->cmd = c[0];
    cat->sub = c[1];

    /* events that came with the SUBSCRIBE reply */
    if (slora_catalog_read_events(cat, 0) != SLORA_OK) {
        slora_catalog_disconnect(cat, cat->sub);
        return SLORA_ERROR;
    }

    return SLORA_OK;

failed:

    cat->cmd = c[0];
    cat->sub = c[1];
    slora_catalog_disconnect(cat, c[1] != NULL && c[1]->err ? c[1] : c[0]);

    return SLORA_ERROR;
}


/* Closes both connections; failed (if any) says why, for the owner. */
static void
slora_catalog_disconnect(slora_catalog_t *cat, redisContext *failed)
{
    const char           *why;
    slora_catalog_msg_t  *m;

    if (failed != NULL || cat->cmd == NULL) {
        why = failed == NULL ? "cannot allocate a context"
              : failed->errstr[0] == '\0' ? "connection failed"
              : strstr(failed->errstr, "temporarily unavailable") != NULL
                ? "timed out" : failed->errstr;

        snprintf(cat->err_text, sizeof(cat->err_text), "catalog "
                 "unavailable: redis %s:%d: %s", cat->host, cat->port, why);

        m = slora_catalog_msg_new(SLORA_MSG_STATE);
        if (m != NULL) {
            m->up = 0;
            m->msg = strdup(cat->err_text);
            slora_catalog_answer(cat, m);
        }
    }

    if (cat->cmd != NULL) {
        redisFree(cat->cmd);
    }

    if (cat->sub != NULL) {
        redisFree(cat->sub);
    }

    cat->cmd = NULL;
    cat->sub = NULL;
}


static void
slora_catalog_run_job(slora_catalog_t *cat, slora_catalog_msg_t *job)
{
    int  rc;

    if (job->type == SLORA_MSG_HITS) {
        if (cat->cmd != NULL && slora_catalog_send_hits(cat, job) != SLORA_OK)
        {
            slora_catalog_disconnect(cat, cat->cmd);
        }
        slora_catalog_msg_free(job);
        return;
    }

    if (job->type == SLORA_MSG_WRITE) {
        slora_catalog_write_job(cat, job);
        return;
    }

    job->type = SLORA_MSG_ANSWER;

    if (cat->cmd == NULL) {
        rc = SLORA_UNAVAILABLE;

    } else {
        rc = job->kind == SLORA_CAT_ADAPTER
             ? slora_catalog_read_adapter(cat, job)
             : slora_catalog_read_tenant(cat, job);

        if (rc == SLORA_UNAVAILABLE) {
            slora_catalog_disconnect(cat, cat->cmd);
        }
    }

    if (rc == SLORA_UNAVAILABLE) {
        free(job->msg);
        job->msg = strdup(cat->err_text);
    }

    job->status = rc;
    slora_catalog_answer(cat, job);
}


/* A write, then the entry as Redis holds it after, read as a fetch is:
 * the owner finds it at once, before the write's event comes back. */
static void
slora_catalog_write_job(slora_catalog_t *cat, slora_catalog_msg_t *job)
{
    int          rc;
    slora_err_t  err;

    job->type = SLORA_MSG_WRITTEN;
    job->kind = SLORA_CAT_ADAPTER;
    err.msg[0] = '\0';

    if (cat->cmd == NULL) {
        rc = slora_err_set(&err, SLORA_UNAVAILABLE, "%s", cat->err_text);

    } else {
        rc = slora_catalog_write_on(cat->cmd, job->name, job->dir,
                                    job->create, &err);

        if (rc != SLORA_OK && cat->cmd->err) {
            /* the connection, not the write, failed */
            slora_err_set(&err, SLORA_UNAVAILABLE, "redis %s:%d: %s",
                          cat->host, cat->port, cat->cmd->errstr);
            rc = SLORA_UNAVAILABLE;
            slora_catalog_disconnect(cat, cat->cmd);
        }
    }

    job->write_status = rc;
    job->write_msg = strdup(err.msg);

    if (cat->cmd == NULL) {
        job->status = SLORA_UNAVAILABLE;
        job->msg = strdup(cat->err_text);

    } else {
        job->status = slora_catalog_read_adapter(cat, job);

        if (job->status == SLORA_UNAVAILABLE) {
            slora_catalog_disconnect(cat, cat->cmd);
            free(job->msg);
            job->msg = strdup(cat->err_text);
        }
    }

    slora_catalog_answer(cat, job);
}


/* SLORA_OK, SLORA_DECLINED, SLORA_ERROR (m->msg), SLORA_UNAVAILABLE. */
static int
slora_catalog_read_adapter(slora_catalog_t *cat, slora_catalog_msg_t *m)
{
    int           rc;
    long          v;
    char         *end, *path, **field;
    size_t        i, k;
    double        d;
    slora_err_t   err;
    redisReply   *r, *key, *val;

    r = redisCommand(cat->cmd, "HGETALL slora:adapter:%s", m->name);
    if (r == NULL || slora_catalog_busy(cat, r)) {
        freeReplyObject(r);
        return SLORA_UNAVAILABLE;
    }

    rc = SLORA_ERROR;
    path = NULL;

    if (r->type != REDIS_REPLY_ARRAY) {
        slora_err_set(&err, SLORA_ERROR, "catalog: slora:adapter:%s: %s",
                      m->name, r->type == REDIS_REPLY_ERROR ? r->str
                                                            : "not a hash");
        goto done;
    }

    if (r->elements == 0) {
        slora_err_set(&err, SLORA_DECLINED, "unknown adapter \"%s\"",
                      m->name);
        rc = SLORA_DECLINED;
        goto done;
    }

    memset(&err, 0, sizeof(err));

    for (i = 0; i + 1 < r->elements; i += 2) {
        key = r->element[i];
        val = r->element[i + 1];

        if (key->type != REDIS_REPLY_STRING
            || val->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        field = NULL;

        /* read up to a NUL byte, a value would be another one: a path
         * cut there another folder, "8\0x" a rank of 8 */
        if (memchr(val->str, '\0', val->len) != NULL
            && slora_catalog_adapter_field(key->str))
        {
            slora_err_set(&err, SLORA_ERROR, "catalog: adapter %s: %s "
                          "\"%.*s\" holds a NUL byte", m->name, key->str,
                          slora_utf8_cut(val->str, 64), val->str);
            goto done;
        }

        if (strcmp(key->str, "path") == 0) {
            field = &path;

        } else if (strcmp(key->str, "target_modules") == 0) {
            field = (char **) &m->ad.targets;

        } else if (strcmp(key->str, "base_model") == 0) {
            field = (char **) &m->ad.base_model;

        } else if (strcmp(key->str, "version") == 0) {
            field = (char **) &m->ad.version;

        } else if (strcmp(key->str, "sha256") == 0) {
            for (k = 0; k < val->len && strchr("0123456789abcdefABCDEF",
                                                val->str[k]) != NULL
                        && val->str[k] != '\0'; k++)
            {
                /* hex digits */
            }
            if (val->len != 0 && (val->len != 64 || k != 64)) {
                slora_err_set(&err, SLORA_ERROR, "catalog: adapter %s: "
                              "sha256 \"%.*s\" is not 64 hex digits",
                              m->name, slora_utf8_cut(val->str, 80),
                              val->str);
                goto done;
            }
            field = (char **) &m->ad.sha256;

        } else if (strcmp(key->str, "rank") == 0) {
            errno = 0;
            v = strtol(val->str, &end, 10);
            if (errno != 0 || *end != '\0' || v < 1 || v > 65536) {
                slora_err_set(&err, SLORA_ERROR, "catalog: adapter %s: "
                              "rank \"%.*s\" is not a positive integer",
                              m->name, slora_utf8_cut(val->str, 32),
                              val->str);
                goto done;
            }
            m->ad.rank = (int32_t) v;

        } else if (strcmp(key->str, "alpha") == 0) {
            d = strtod(val->str, &end);
            if (*end != '\0' || end == val->str || !isfinite(d)
                || fabs(d) > FLT_MAX)
            {
                slora_err_set(&err, SLORA_ERROR, "catalog: adapter %s: "
                              "alpha \"%.*s\" is not a number", m->name,
                              slora_utf8_cut(val->str, 32), val->str);
                goto done;
            }
            m->ad.alpha = (float) d;
        }

        if (field != NULL && val->len > 0) {
            free(*field);
            *field = strndup(val->str, val->len);
            if (*field == NULL) {
                slora_err_set(&err, SLORA_ERROR, "catalog: no memory");
                goto done;
            }
        }
    }

    if (path == NULL) {
        slora_err_set(&err, SLORA_ERROR, "catalog: adapter %s has no path",
                      m->name);
        goto done;
    }

    if (path[0] != '/') {
        slora_err_set(&err, SLORA_ERROR, "catalog: adapter %s: path \"%s\" "
                      "is not absolute: refused", m->name, path);
        goto done;
    }

    if (slora_catalog_confine(cat->roots, cat->n_roots, m->name, path,
                              (char **) &m->ad.path, &err)
        != SLORA_OK)
    {
        goto done;
    }

    rc = SLORA_OK;

done:

    freeReplyObject(r);
    free(path);

    if (rc != SLORA_OK) {
        slora_catalog_adapter_clear(&m->ad);
        m->msg = strdup(err.msg);
    }

    return rc;
}


static int
slora_catalog_read_tenant(slora_catalog_t *cat, slora_catalog_msg_t *m)
{
    int            rc;
    long           v;
    char          *end;
    size_t         i;
    int32_t        j, *dst;
    slora_err_t    err;
    redisReply    *r, *s, *key, *val;

    if (redisAppendCommand(cat->cmd, "HGETALL slora:tenant:%s", m->name)
        != REDIS_OK
        || redisAppendCommand(cat->cmd, "SMEMBERS slora:tenant:%s:adapters",
                              m->name)
           != REDIS_OK)
    {
        return SLORA_UNAVAILABLE;
    }

    r = NULL;
    s = NULL;

    if (redisGetReply(cat->cmd, (void **) &r) != REDIS_OK) {
        return SLORA_UNAVAILABLE;
    }

    if (redisGetReply(cat->cmd, (void **) &s) != REDIS_OK) {
        freeReplyObject(r);
        return SLORA_UNAVAILABLE;
    }

    if (slora_catalog_busy(cat, r) || slora_catalog_busy(cat, s)) {
        freeReplyObject(r);
        freeReplyObject(s);
        return SLORA_UNAVAILABLE;
    }

    rc = SLORA_ERROR;

    if (r->type != REDIS_REPLY_ARRAY || s->type != REDIS_REPLY_ARRAY) {
        slora_err_set(&err, SLORA_ERROR, "catalog: tenant %s: %s", m->name,
                      r->type == REDIS_REPLY_ERROR ? r->str
                      : s->type == REDIS_REPLY_ERROR ? s->str
                      : "not a hash and a set");
        goto done;
    }

    if (r->elements == 0) {
        slora_err_set(&err, SLORA_DECLINED, "unknown tenant \"%s\"",
                      m->name);
        rc = SLORA_DECLINED;
        goto done;
    }

    for (i = 0; i + 1 < r->elements; i += 2) {
        key = r->element[i];
        val = r->element[i + 1];

        if (key->type != REDIS_REPLY_STRING
            || val->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        if (strcmp(key->str, "default_adapter") == 0) {
            if (val->len == 0) {
                continue;
            }
            /* read up to a NUL byte, it would be another name */
            if (memchr(val->str, '\0', val->len) != NULL) {
                slora_err_set(&err, SLORA_ERROR, "catalog: tenant %s: "
                              "default_adapter \"%.*s\" holds a NUL byte",
                              m->name, slora_utf8_cut(val->str, 64),
                              val->str);
                goto done;
            }
            free((char *) m->tn.default_adapter);
            m->tn.default_adapter = strndup(val->str, val->len);
            if (m->tn.default_adapter == NULL) {
                slora_err_set(&err, SLORA_ERROR, "catalog: no memory");
                goto done;
            }
            continue;
        }

        if (strcmp(key->str, "rate") == 0) {
            /* ERANGE: one that underflows to 0 would be no limit at all */
            errno = 0;
            m->tn.rate = strtod(val->str, &end);
            if (errno != 0 || end != val->str + val->len || end == val->str
                || !(m->tn.rate >= 0) || !isfinite(m->tn.rate))
            {
                slora_err_set(&err, SLORA_ERROR, "catalog: tenant %s: rate "
                              "\"%.*s\" is not a number >= 0 in range",
                              m->name, slora_utf8_cut(val->str, 32),
                              val->str);
                goto done;
            }
            continue;
        }

        dst = strcmp(key->str, "priority") == 0 ? &m->tn.priority
              : strcmp(key->str, "ttft_slo_ms") == 0 ? &m->tn.ttft_slo_ms
              : strcmp(key->str, "max_tokens") == 0 ? &m->tn.max_tokens
              : NULL;

        if (dst == NULL) {
            continue;
        }

        /* all of it: "100\0..." is no 100 */
        errno = 0;
        v = strtol(val->str, &end, 10);
        if (errno != 0 || end != val->str + val->len || end == val->str
            || v < (dst == &m->tn.priority ? -1000000 : 0) || v > INT32_MAX)
        {
            slora_err_set(&err, SLORA_ERROR, "catalog: tenant %s: %s "
                          "\"%.*s\" is not an integer in range", m->name,
                          key->str, slora_utf8_cut(val->str, 32), val->str);
            goto done;
        }
        *dst = (int32_t) v;
    }

    m->tn.allowed = slora_catalog_strings(s, &m->tn.n_allowed);
    if (m->tn.allowed == NULL && s->elements > 0) {
        slora_err_set(&err, SLORA_ERROR, "catalog: no memory");
        goto done;
    }

    for (j = 0; j < m->tn.n_allowed; j++) {
        m->tn.allow_all |= strcmp(m->tn.allowed[j], "*") == 0;
    }

    if (m->tn.n_allowed > 0) {
        qsort(m->tn.allowed, (size_t) m->tn.n_allowed, sizeof(char *),
              slora_catalog_str_cmp);
    }

    rc = SLORA_OK;

done:

    freeReplyObject(r);
    freeReplyObject(s);

    if (rc != SLORA_OK) {
        slora_catalog_tenant_clear(&m->tn);
        m->msg = strdup(err.msg);
    }

    return rc;
}


static int
slora_catalog_read_hints(slora_catalog_t *cat)
{
    redisReply           *p, *q;
    slora_catalog_msg_t  *m;

    if (redisAppendCommand(cat->cmd, "SMEMBERS slora:pinned") != REDIS_OK
        || redisAppendCommand(cat->cmd, "ZREVRANGE slora:popular 0 %d",
                              cat->n_popular - 1)
           != REDIS_OK)
    {
        slora_catalog_disconnect(cat, cat->cmd);
        return SLORA_ERROR;
    }

    p = NULL;
    q = NULL;

    if (redisGetReply(cat->cmd, (void **) &p) != REDIS_OK
        || redisGetReply(cat->cmd, (void **) &q) != REDIS_OK)
    {
        freeReplyObject(p);
        slora_catalog_disconnect(cat, cat->cmd);
        return SLORA_ERROR;
    }

    if (slora_catalog_busy(cat, p) || slora_catalog_busy(cat, q)) {
        /* the hints as they were, until the server answers again */
        freeReplyObject(p);
        freeReplyObject(q);
        return SLORA_OK;
    }

    m = slora_catalog_msg_new(SLORA_MSG_HINTS);

    if (m != NULL) {
        m->hints.pinned = slora_catalog_strings(p, &m->hints.n_pinned);
        m->hints.popular = slora_catalog_strings(q, &m->hints.n_popular);
        slora_catalog_answer(cat, m);
    }

    freeReplyObject(p);
    freeReplyObject(q);

    return SLORA_OK;
}


static int
slora_catalog_send_hits(slora_catalog_t *cat, slora_catalog_msg_t *job)
{
    int32_t      i, sent;
    redisReply  *r;

    sent = 0;

    for (i = 0; i < job->n; i++) {
        if (redisAppendCommand(cat->cmd, "ZINCRBY slora:popular %u %s",
                               job->counts[i], job->names[i])
            != REDIS_OK)
        {
            return SLORA_ERROR;
        }
        sent++;
    }

    for (i = 0; i < sent; i++) {
        if (redisGetReply(cat->cmd, (void **) &r) != REDIS_OK) {
            return SLORA_ERROR;
        }
        freeReplyObject(r);
    }

    return SLORA_OK;
}


/* Handles the events the subscriber connection has buffered and, with
 * may_read (poll said readable), what one read of its socket brings.
 * SLORA_ERROR: the connection failed. */
static int
slora_catalog_read_events(slora_catalog_t *cat, int may_read)
{
    int          first;
    void        *reply;
    redisReply  *r;

    for (first = 1; ; first = 0) {
        reply = NULL;
        if (redisGetReplyFromReader(cat->sub, &reply) != REDIS_OK) {
            return SLORA_ERROR;
        }

        if (reply == NULL) {
            if (!first || !may_read) {
                return SLORA_OK;
            }

            /* nothing buffered: read the socket once (poll said so) */
            if (redisBufferRead(cat->sub) != REDIS_OK) {
                return SLORA_ERROR;
            }

            if (redisGetReplyFromReader(cat->sub, &reply) != REDIS_OK) {
                return SLORA_ERROR;
            }

            if (reply == NULL) {
                return SLORA_OK;
            }
        }

        r = reply;

        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3
            && r->element[0]->type == REDIS_REPLY_STRING
            && strcmp(r->element[0]->str, "message") == 0
            && r->element[2]->type == REDIS_REPLY_STRING)
        {
            slora_catalog_event(cat, r->element[2]->str,
                                r->element[2]->len);
        }

        freeReplyObject(r);
    }
}


/* "adapter <name>", "tenant <name>", "hints", "*" */
static void
slora_catalog_event(slora_catalog_t *cat, const char *text, size_t len)
{
    size_t                n;
    slora_catalog_msg_t  *m;
    slora_catalog_kind_e  kind;

    if (len == 5 && memcmp(text, "hints", 5) == 0) {
        cat->hints_due = 1;
        return;
    }

    if (len == 1 && text[0] == '*') {
        m = slora_catalog_msg_new(SLORA_MSG_INVALIDATE);
        if (m != NULL) {
            slora_catalog_answer(cat, m);
        }
        return;
    }

    if (len > 8 && memcmp(text, "adapter ", 8) == 0) {
        kind = SLORA_CAT_ADAPTER;
        n = 8;

    } else if (len > 7 && memcmp(text, "tenant ", 7) == 0) {
        kind = SLORA_CAT_TENANT;
        n = 7;

    } else {
        return;
    }

    m = slora_catalog_msg_new(SLORA_MSG_INVALIDATE);
    if (m == NULL) {
        return;
    }

    m->kind = kind;
    m->name = strndup(text + n, len - n);

    if (m->name == NULL || !slora_catalog_valid_name(m->name)) {
        slora_catalog_msg_free(m);
        return;
    }

    slora_catalog_answer(cat, m);
}


/* A field of an adapter's hash that the catalog reads. */
static int
slora_catalog_adapter_field(const char *key)
{
    size_t              i;
    static const char  *fields[] = {
        "path", "rank", "alpha", "target_modules", "base_model", "sha256",
        "version"
    };

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (strcmp(key, fields[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


/* The strings of an array reply, or NULL (none, or no memory). */
static char **
slora_catalog_strings(const redisReply *r, int32_t *n)
{
    char    **list;
    size_t    i;

    *n = 0;

    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        return NULL;
    }

    list = calloc(r->elements, sizeof(char *));
    if (list == NULL) {
        return NULL;
    }

    for (i = 0; i < r->elements; i++) {
        /* a name holds no NUL byte: "a\0b" read up to it would be "a"
         * (a tenant's set would allow an adapter it does not name) */
        if (r->element[i]->type != REDIS_REPLY_STRING
            || strlen(r->element[i]->str) != r->element[i]->len)
        {
            continue;
        }

        list[*n] = slora_catalog_strdup(r->element[i]->str);
        if (list[*n] != NULL) {
            (*n)++;
        }
    }

    return list;
}


static char *
slora_catalog_strdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}


static struct timeval
slora_catalog_tv(int32_t ms)
{
    struct timeval  tv;

    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;

    return tv;
}


/*
 * An error reply that says the server cannot answer now (LOADING its data
 * after a restart, BUSY with a script, MASTERDOWN, TRYAGAIN, ...), as
 * against one about the key (WRONGTYPE: the catalog's data is wrong, a
 * refusal to keep). Such a reply is the catalog unavailable, not the name
 * refused: what was read before stays served. Its text goes where the
 * disconnect that follows reads why.
 */
static int
slora_catalog_busy(slora_catalog_t *cat, redisReply *r)
{
    if (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "WRONGTYPE", 9) == 0)
    {
        return 0;
    }

    snprintf(cat->cmd->errstr, sizeof(cat->cmd->errstr), "answered \"%.*s\"",
             slora_utf8_cut(r->str, 100), r->str);

    return 1;
}

