/*
 * slora_catalog_write.c: the writing side of the Redis catalog, for
 * `slora catalog`, the tests and the catalog's own thread (vLLM's
 * load_lora_adapter with Redis as the source): register adapter
 * folders, remove them, set tenants, list, publish events.
 *
 * The one idea: what a reader trusts is computed here from the folder
 * itself (realpath, adapter_config.json, the sha256 of the weights), and
 * every write is followed by its event on slora:events, so engines
 * re-read the entry within a round trip.
 */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "slora_catalog_int.h"
#include "slora_adapter.h"
#include "slora_names.h"
#include "slora_utf8.h"


struct slora_catalog_writer_s {
    redisContext  *c;
    char          *where;
};


typedef struct {
    char          *name;
    redisReply    *r;
} slora_catalog_row_t;


static int slora_catalog_reply(slora_catalog_writer_t *w, redisReply *r,
    const char *what, slora_err_t *err);
static int slora_catalog_register_as(slora_catalog_writer_t *w,
    const char *name, const char *dir, const char *base_model, int create,
    slora_err_t *err);
static int slora_catalog_taken(const char *name, slora_err_t *err);
static int slora_catalog_name_cmp(const void *a, const void *b);
static int slora_catalog_row_cmp(const void *a, const void *b);
static const char *slora_catalog_field(const redisReply *r,
    const char *key);


slora_catalog_writer_t *
slora_catalog_writer_open(const char *url, int32_t timeout_ms,
    slora_err_t *err)
{
    int                      port, db;
    char                    *host, where[300];
    redisReply              *r;
    struct timeval           tv;
    slora_catalog_writer_t  *w;

    if (slora_catalog_url(url, &host, &port, &db, err) != SLORA_OK) {
        return NULL;
    }

    snprintf(where, sizeof(where), "redis %s:%d", host, port);

    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;

    w = calloc(1, sizeof(slora_catalog_writer_t));
    if (w == NULL || (w->where = strdup(where)) == NULL) {
        free(w);
        free(host);
        slora_err_set(err, SLORA_ERROR, "catalog: no memory");
        return NULL;
    }

    w->c = redisConnectWithTimeout(host, port, tv);
    free(host);

    if (w->c == NULL || w->c->err || redisSetTimeout(w->c, tv) != REDIS_OK) {
        slora_err_set(err, SLORA_ERROR, "%s: %s", where,
                      w->c != NULL ? w->c->errstr : "no memory");
        slora_catalog_writer_close(w);
        return NULL;
    }

    if (db > 0) {
        r = redisCommand(w->c, "SELECT %d", db);
        if (slora_catalog_reply(w, r, "SELECT", err) != SLORA_OK) {
            slora_catalog_writer_close(w);
            return NULL;
        }
        freeReplyObject(r);
    }

    return w;
}


void
slora_catalog_writer_close(slora_catalog_writer_t *w)
{
    if (w == NULL) {
        return;
    }

    if (w->c != NULL) {
        redisFree(w->c);
    }

    free(w->where);
    free(w);
}


int
slora_catalog_register(slora_catalog_writer_t *w, const char *name,
    const char *dir, const char *base_model, slora_err_t *err)
{
    return slora_catalog_register_as(w, name, dir, base_model, 0, err);
}


/*
 * create: the hash is written only where it does not exist, watched from
 * the look to the transaction (a write between makes EXEC answer nil),
 * so that of two engines registering one name at once the second is
 * told the name is taken, as vLLM tells a client.
 */
static int
slora_catalog_register_as(slora_catalog_writer_t *w, const char *name,
    const char *dir, const char *base_model, int create, slora_err_t *err)
{
    int                    p, rc;
    char                  *path, targets[128], rank[16];
    char                   alpha[32], hex[SLORA_SHA256_HEX], event[300];
    size_t                 len;
    redisReply            *r;
    slora_adapter_conf_t   conf;

    if (!slora_catalog_valid_name(name)) {
        return slora_err_set(err, SLORA_ERROR, "adapter name \"%.*s\" is "
                             "refused", slora_utf8_cut(name, 64), name);
    }

    /* the folder by its realpath, the path the hash holds and the
     * engine reads (through no link) */
    path = realpath(dir, NULL);
    if (path == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: %s", dir,
                             strerror(errno));
    }

    /* the file as the engine would read it: no symlink, no FIFO */
    if (slora_adapter_read_config(path, NULL, &conf, err) != SLORA_OK
        || slora_adapter_file_sha256(path, "adapter_model.safetensors", hex,
                                     err)
           != SLORA_OK)
    {
        free(path);
        return SLORA_ERROR;
    }

    targets[0] = '\0';
    len = 0;
    for (p = 0; p < SLORA_PROJ_N; p++) {
        if (conf.proj_mask & (1u << p)) {
            len += snprintf(targets + len, sizeof(targets) - len, "%s%s",
                            len ? "," : "", slora_proj_name(p));
        }
    }

    snprintf(rank, sizeof(rank), "%d", conf.rank);
    snprintf(alpha, sizeof(alpha), "%g", (double) conf.alpha);
    snprintf(event, sizeof(event), "adapter %s", name);

    if (create) {
        r = redisCommand(w->c, "WATCH slora:adapter:%s", name);
        if (slora_catalog_reply(w, r, "WATCH", err) != SLORA_OK) {
            free(path);
            return SLORA_ERROR;
        }
        freeReplyObject(r);

        r = redisCommand(w->c, "EXISTS slora:adapter:%s", name);
        rc = slora_catalog_reply(w, r, "EXISTS", err);
        p = rc != SLORA_OK
            || !(r->type == REDIS_REPLY_INTEGER && r->integer == 0);
        if (rc == SLORA_OK) {
            freeReplyObject(r);
        }

        if (p) {
            /* no transaction follows: the watch must not outlive this
             * write on the connection, the next one's EXEC would answer
             * nil for it */
            free(path);
            r = redisCommand(w->c, "UNWATCH");

            if (r == NULL || r->type != REDIS_REPLY_STATUS) {
                /* a watch that may still stand: the connection is given
                 * up (the thread reconnects), not left to fail the next
                 * transaction on it */
                w->c->err = REDIS_ERR_OTHER;
                snprintf(w->c->errstr, sizeof(w->c->errstr), "UNWATCH "
                         "failed");
            }

            if (r != NULL) {
                freeReplyObject(r);
            }

            return rc == SLORA_OK ? slora_catalog_taken(name, err) : rc;
        }
    }

    redisAppendCommand(w->c, "MULTI");
    redisAppendCommand(w->c, "HSET slora:adapter:%s path %s rank %s "
                       "alpha %s target_modules %s base_model %s sha256 %s",
                       name, path, rank, alpha, targets,
                       base_model != NULL ? base_model : "", hex);
    redisAppendCommand(w->c, "HINCRBY slora:adapter:%s version 1", name);
    redisAppendCommand(w->c, "EXEC");
    redisAppendCommand(w->c, "PUBLISH %s %s", SLORA_CATALOG_CHANNEL, event);

    free(path);
    rc = SLORA_OK;

    for (p = 0; p < 5; p++) {
        r = NULL;
        if (redisGetReply(w->c, (void **) &r) != REDIS_OK) {
            return slora_err_set(err, SLORA_ERROR, "%s: %s", w->where,
                                 w->c->errstr);
        }
        if (rc == SLORA_OK
            && slora_catalog_reply(w, r, "register", err) != SLORA_OK)
        {
            rc = SLORA_ERROR;
            continue;
        }
        if (rc == SLORA_OK && create && p == 3
            && r->type == REDIS_REPLY_NIL)
        {
            /* EXEC: the watched hash was written since the look */
            rc = slora_catalog_taken(name, err);
        }
        freeReplyObject(r);
    }

    return rc;
}


static int
slora_catalog_taken(const char *name, slora_err_t *err)
{
    return slora_err_set(err, SLORA_ERROR, "The lora adapter '%.*s' has "
                         "already been loaded.", slora_utf8_cut(name, 64),
                         name);
}


int
slora_catalog_register_dir(slora_catalog_writer_t *w, const char *dir,
    const char *base_model, int32_t *n, slora_err_t *err)
{
    int             rc;
    DIR            *d;
    char            path[SLORA_ADAPTER_PATH_LEN], **names, **grown;
    size_t          cnt, cap, i;
    struct stat     sb;
    struct dirent  *de;

    *n = 0;

    if (strlen(dir) > SLORA_ADAPTER_DIR_MAX) {
        return slora_err_set(err, SLORA_ERROR, "%.*s...: longer than %d "
                             "bytes", slora_utf8_cut(dir, 64), dir,
                             SLORA_ADAPTER_DIR_MAX);
    }

    d = opendir(dir);
    if (d == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: %s", dir,
                             strerror(errno));
    }

    names = NULL;
    cnt = 0;
    cap = 0;
    rc = SLORA_OK;

    while ((de = readdir(d)) != NULL) {
        if (!slora_catalog_valid_name(de->d_name)) {
            continue;
        }

        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            continue;
        }

        if (cnt == cap) {
            cap = cap ? cap * 2 : 64;
            grown = realloc(names, cap * sizeof(char *));
            if (grown == NULL) {
                rc = slora_err_set(err, SLORA_ERROR, "%s: no memory", dir);
                break;
            }
            names = grown;
        }

        names[cnt] = strdup(de->d_name);
        if (names[cnt] == NULL) {
            rc = slora_err_set(err, SLORA_ERROR, "%s: no memory", dir);
            break;
        }
        cnt++;
    }

    closedir(d);

    if (rc == SLORA_OK && cnt > 0) {
        qsort(names, cnt, sizeof(char *), slora_catalog_name_cmp);
    }

    for (i = 0; i < cnt; i++) {
        if (rc == SLORA_OK) {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            rc = slora_catalog_register(w, names[i], path, base_model, err);
            *n += rc == SLORA_OK;
        }
        free(names[i]);
    }

    free(names);

    return rc;
}


int
slora_catalog_remove(slora_catalog_writer_t *w, const char *name,
    slora_err_t *err)
{
    char         event[300];
    long long    n;
    redisReply  *r;

    if (!slora_catalog_valid_name(name)) {
        return slora_err_set(err, SLORA_ERROR, "adapter name \"%.*s\" is "
                             "refused", slora_utf8_cut(name, 64), name);
    }

    r = redisCommand(w->c, "DEL slora:adapter:%s", name);
    if (slora_catalog_reply(w, r, "DEL", err) != SLORA_OK) {
        return SLORA_ERROR;
    }
    n = r->integer;
    freeReplyObject(r);

    r = redisCommand(w->c, "SREM slora:pinned %s", name);
    if (slora_catalog_reply(w, r, "SREM", err) != SLORA_OK) {
        return SLORA_ERROR;
    }
    freeReplyObject(r);

    snprintf(event, sizeof(event), "adapter %s", name);
    r = redisCommand(w->c, "PUBLISH %s %s", SLORA_CATALOG_CHANNEL, event);
    if (slora_catalog_reply(w, r, "PUBLISH", err) != SLORA_OK) {
        return SLORA_ERROR;
    }
    freeReplyObject(r);

    if (n == 0) {
        return slora_err_set(err, SLORA_DECLINED, "adapter \"%s\" is not "
                             "in the catalog", name);
    }

    return SLORA_OK;
}


int
slora_catalog_write_on(redisContext *c, const char *name, const char *dir,
    int create, slora_err_t *err)
{
    slora_catalog_writer_t  w;

    w.c = c;
    w.where = (char *) "the catalog's Redis";

    if (dir == NULL) {
        return slora_catalog_remove(&w, name, err);
    }

    return slora_catalog_register_as(&w, name, dir, NULL, create, err);
}


int
slora_catalog_set_tenant(slora_catalog_writer_t *w,
    const slora_catalog_tenant_spec_t *t, slora_err_t *err)
{
    int32_t       i, *v;
    char          num[32], event[300];
    redisReply   *r;
    const char   *key;
    static const char  *keys[] = { "priority", "ttft_slo_ms", "max_tokens" };

    if (!slora_catalog_valid_name(t->name)) {
        return slora_err_set(err, SLORA_ERROR, "tenant name \"%.*s\" is "
                             "refused", slora_utf8_cut(t->name, 64), t->name);
    }

    if (t->default_adapter != NULL && t->default_adapter[0] != '\0'
        && !slora_catalog_valid_name(t->default_adapter))
    {
        return slora_err_set(err, SLORA_ERROR, "adapter name \"%.*s\" is "
                             "refused", slora_utf8_cut(t->default_adapter, 64),
                             t->default_adapter);
    }

    /* what the engine would refuse to read, refused before any write */
    if (!(t->rate < 0) && !(isfinite(t->rate) && t->rate >= 0)) {
        return slora_err_set(err, SLORA_ERROR, "tenant %s: rate %g is not "
                             "a number >= 0", t->name, t->rate);
    }

    /* a tenant exists once its hash does */
    r = redisCommand(w->c, "HSETNX slora:tenant:%s priority 0", t->name);
    if (slora_catalog_reply(w, r, "HSETNX", err) != SLORA_OK) {
        return SLORA_ERROR;
    }
    freeReplyObject(r);

    if (t->default_adapter != NULL) {
        r = redisCommand(w->c, "HSET slora:tenant:%s default_adapter %s",
                         t->name, t->default_adapter);
        if (slora_catalog_reply(w, r, "HSET", err) != SLORA_OK) {
            return SLORA_ERROR;
        }
        freeReplyObject(r);
    }

    for (i = 0; i < 3; i++) {
        v = (int32_t *) (i == 0 ? &t->priority : i == 1 ? &t->ttft_slo_ms
                                                        : &t->max_tokens);
        if (*v == INT32_MIN) {
            continue;
        }

        key = keys[i];
        snprintf(num, sizeof(num), "%d", *v);
        r = redisCommand(w->c, "HSET slora:tenant:%s %s %s", t->name, key,
                         num);
        if (slora_catalog_reply(w, r, "HSET", err) != SLORA_OK) {
            return SLORA_ERROR;
        }
        freeReplyObject(r);
    }

    if (t->rate >= 0) {
        /* the fewest digits that read back as the rate: "%g" wrote
         * 1234567 as 1.23457e+06; 0.2 stays "0.2" */
        for (i = 15; i <= 17; i++) {
            snprintf(num, sizeof(num), "%.*g", (int) i, t->rate);
            if (strtod(num, NULL) == t->rate) {
                break;
            }
        }
        r = redisCommand(w->c, "HSET slora:tenant:%s rate %s", t->name, num);
        if (slora_catalog_reply(w, r, "HSET", err) != SLORA_OK) {
            return SLORA_ERROR;
        }
        freeReplyObject(r);
    }

    if (t->n_allowed >= 0) {
        for (i = 0; i < t->n_allowed; i++) {
            if (strcmp(t->allowed[i], "*") != 0
                && !slora_catalog_valid_name(t->allowed[i]))
            {
                return slora_err_set(err, SLORA_ERROR, "adapter name "
                                     "\"%.*s\" is refused",
                                     slora_utf8_cut(t->allowed[i], 64),
                                     t->allowed[i]);
            }
        }

        /* one transaction: an engine reading between the two would see
         * the set empty or half made (403s) */
        redisAppendCommand(w->c, "MULTI");
        redisAppendCommand(w->c, "DEL slora:tenant:%s:adapters", t->name);

        for (i = 0; i < t->n_allowed; i++) {
            redisAppendCommand(w->c, "SADD slora:tenant:%s:adapters %s",
                               t->name, t->allowed[i]);
        }

        redisAppendCommand(w->c, "EXEC");

        for (i = 0; i < t->n_allowed + 3; i++) {
            r = NULL;

            if (redisGetReply(w->c, (void **) &r) != REDIS_OK) {
                return slora_err_set(err, SLORA_ERROR, "%s: %s", w->where,
                                     w->c->errstr);
            }

            if (slora_catalog_reply(w, r, "allowed adapters", err)
                != SLORA_OK)
            {
                /* the rest read, so the connection stays in step */
                for (i++; i < t->n_allowed + 3; i++) {
                    if (redisGetReply(w->c, (void **) &r) == REDIS_OK) {
                        freeReplyObject(r);
                    }
                }

                return SLORA_ERROR;
            }

            freeReplyObject(r);
        }
    }

    snprintf(event, sizeof(event), "tenant %s", t->name);
    r = redisCommand(w->c, "PUBLISH %s %s", SLORA_CATALOG_CHANNEL, event);
    if (slora_catalog_reply(w, r, "PUBLISH", err) != SLORA_OK) {
        return SLORA_ERROR;
    }
    freeReplyObject(r);

    return SLORA_OK;
}


int32_t
slora_catalog_list(slora_catalog_writer_t *w, slora_catalog_list_cb cb,
    void *data, slora_err_t *err)
{
    char                        cursor[32];
    size_t                      i, k, n, cap;
    redisReply                 *r, *keys;
    slora_catalog_row_t        *rows, *grown;
    slora_catalog_entry_info_t  info;

    rows = NULL;
    n = 0;
    cap = 0;
    snprintf(cursor, sizeof(cursor), "0");

    do {
        r = redisCommand(w->c, "SCAN %s MATCH slora:adapter:* COUNT 1000",
                         cursor);
        if (slora_catalog_reply(w, r, "SCAN", err) != SLORA_OK) {
            goto failed;
        }

        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
            || r->element[0]->type != REDIS_REPLY_STRING
            || r->element[1]->type != REDIS_REPLY_ARRAY)
        {
            freeReplyObject(r);
            slora_err_set(err, SLORA_ERROR, "%s: SCAN: bad reply", w->where);
            goto failed;
        }

        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        keys = r->element[1];

        for (i = 0; i < keys->elements; i++) {
            if (keys->element[i]->type != REDIS_REPLY_STRING
                || keys->element[i]->len < sizeof("slora:adapter:") - 1)
            {
                continue;
            }

            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                grown = realloc(rows, cap * sizeof(slora_catalog_row_t));
                if (grown == NULL) {
                    freeReplyObject(r);
                    slora_err_set(err, SLORA_ERROR, "catalog: no memory");
                    goto failed;
                }
                rows = grown;
            }

            rows[n].name = strdup(keys->element[i]->str
                                  + sizeof("slora:adapter:") - 1);
            rows[n].r = NULL;
            if (rows[n].name == NULL) {
                freeReplyObject(r);
                slora_err_set(err, SLORA_ERROR, "catalog: no memory");
                goto failed;
            }
            n++;
        }

        freeReplyObject(r);

    } while (strcmp(cursor, "0") != 0);

    if (n > 0) {
        qsort(rows, n, sizeof(slora_catalog_row_t), slora_catalog_row_cmp);
    }

    /* SCAN may give a key twice (the table rehashed meanwhile) */
    for (i = 1, k = n > 0; i < n; i++) {
        if (strcmp(rows[i].name, rows[k - 1].name) == 0) {
            free(rows[i].name);
            continue;
        }

        rows[k++] = rows[i];
    }

    n = k;

    for (i = 0; i < n; i++) {
        rows[i].r = redisCommand(w->c, "HGETALL slora:adapter:%s",
                                 rows[i].name);
        if (slora_catalog_reply(w, rows[i].r, "HGETALL", err) != SLORA_OK) {
            rows[i].r = NULL;
            goto failed;
        }

        info.name = rows[i].name;
        info.path = slora_catalog_field(rows[i].r, "path");
        info.rank = slora_catalog_field(rows[i].r, "rank");
        info.alpha = slora_catalog_field(rows[i].r, "alpha");
        info.targets = slora_catalog_field(rows[i].r, "target_modules");
        info.base_model = slora_catalog_field(rows[i].r, "base_model");
        info.sha256 = slora_catalog_field(rows[i].r, "sha256");
        info.version = slora_catalog_field(rows[i].r, "version");

        cb(data, &info);
    }

    for (i = 0; i < n; i++) {
        freeReplyObject(rows[i].r);
        free(rows[i].name);
    }
    free(rows);

    return (int32_t) n;

failed:

    for (i = 0; i < n; i++) {
        if (rows[i].r != NULL) {
            freeReplyObject(rows[i].r);
        }
        free(rows[i].name);
    }
    free(rows);

    return SLORA_ERROR;
}


int
slora_catalog_publish(slora_catalog_writer_t *w, const char *text,
    slora_err_t *err)
{
    redisReply  *r;

    r = redisCommand(w->c, "PUBLISH %s %s", SLORA_CATALOG_CHANNEL, text);
    if (slora_catalog_reply(w, r, "PUBLISH", err) != SLORA_OK) {
        return SLORA_ERROR;
    }
    freeReplyObject(r);

    return SLORA_OK;
}


/* SLORA_OK, or the error (r is freed then). */
static int
slora_catalog_reply(slora_catalog_writer_t *w, redisReply *r,
    const char *what, slora_err_t *err)
{
    size_t  i;

    if (r == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: %s: %s", w->where, what,
                             w->c->errstr[0] ? w->c->errstr : "no reply");
    }

    if (r->type == REDIS_REPLY_ERROR) {
        slora_err_set(err, SLORA_ERROR, "%s: %s: %s", w->where, what,
                      r->str);
        freeReplyObject(r);
        return SLORA_ERROR;
    }

    /* EXEC's: the transaction's commands' replies, any of them an error
     * (WRONGTYPE: a key of another type) */
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        if (r->element[i]->type == REDIS_REPLY_ERROR) {
            slora_err_set(err, SLORA_ERROR, "%s: %s: %s", w->where, what,
                          r->element[i]->str);
            freeReplyObject(r);
            return SLORA_ERROR;
        }
    }

    return SLORA_OK;
}


static int
slora_catalog_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


static int
slora_catalog_row_cmp(const void *a, const void *b)
{
    return strcmp(((const slora_catalog_row_t *) a)->name,
                  ((const slora_catalog_row_t *) b)->name);
}


static const char *
slora_catalog_field(const redisReply *r, const char *key)
{
    size_t  i;

    if (r->type != REDIS_REPLY_ARRAY) {
        return NULL;
    }

    for (i = 0; i + 1 < r->elements; i += 2) {
        if (r->element[i]->type == REDIS_REPLY_STRING
            && strcmp(r->element[i]->str, key) == 0)
        {
            return r->element[i + 1]->str;
        }
    }

    return NULL;
}
