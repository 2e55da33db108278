/*
 * slora_catalog.c: the catalog's interface and its cache: adapter and
 * tenant entries in a hash table owned by the engine's thread, filled
 * from the adapter directory or by the catalog's own thread that reads
 * Redis (slora_catalog_redis.c).
 *
 * The one idea: the two threads share only two message queues under one
 * mutex. The owner's thread queues jobs (fetch this adapter, this tenant,
 * add these use counts) and wakes the catalog thread through a pipe; the
 * catalog thread answers each job, reports invalidations read from its
 * subscriber connection, its up/down state and the hints, and wakes the
 * owner through the owner's fd. The cache itself is touched by the
 * owner's thread alone.
 *
 * Design. An entry is PENDING (a fetch is out), FOUND, MISSING, REFUSED
 * (its fields or path were refused) or UNAVAILABLE (the fetch could not
 * reach Redis). A FOUND entry that is invalidated stays FOUND while it is
 * read again; a negative one goes back to PENDING. An entry has one read
 * out at most: invalidated while one is, it is read again once that one
 * is answered, however many events came meanwhile.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slora_catalog_int.h"
#include "slora_adapter.h"
#include "slora_utf8.h"


#define SLORA_CATALOG_NEG_MAX     8192
#define SLORA_CATALOG_FETCH_MAX   1024  /* reads out at once: past them a
                                           name not cached is refused as
                                           unavailable, not queued */


static uint32_t slora_catalog_hash(slora_catalog_kind_e kind,
    const char *name);
static slora_catalog_entry_t *slora_catalog_insert(slora_catalog_t *cat,
    slora_catalog_kind_e kind, const char *name);
static void slora_catalog_drop(slora_catalog_t *cat,
    slora_catalog_entry_t *en);
static void slora_catalog_entry_free(slora_catalog_entry_t *en);
static int slora_catalog_lookup(slora_catalog_t *cat,
    slora_catalog_kind_e kind, const char *name,
    slora_catalog_entry_t **out, slora_err_t *err);
static void slora_catalog_fetch(slora_catalog_t *cat,
    slora_catalog_entry_t *en);
static void slora_catalog_apply(slora_catalog_t *cat,
    slora_catalog_msg_t *m);
static void slora_catalog_invalidate(slora_catalog_t *cat,
    slora_catalog_kind_e kind, const char *name);
static void slora_catalog_invalidate_one(slora_catalog_t *cat,
    slora_catalog_entry_t *en);
static void slora_catalog_flush_hits(slora_catalog_t *cat);
static void slora_catalog_hints_clear(slora_catalog_hints_t *h);
static void slora_catalog_push(slora_catalog_queue_t *q,
    slora_catalog_msg_t *m);
static void slora_catalog_send(slora_catalog_t *cat, slora_catalog_msg_t *m);
static int slora_catalog_adapter_cmp(const void *a, const void *b);
static void slora_catalog_wake(int fd);


slora_catalog_t *
slora_catalog_create(const slora_catalog_conf_t *conf, slora_err_t *err)
{
    int32_t           i;
    slora_catalog_t  *cat;

    cat = calloc(1, sizeof(slora_catalog_t));
    if (cat == NULL) {
        slora_err_set(err, SLORA_ERROR, "catalog: out of memory");
        return NULL;
    }

    cat->pipe[0] = -1;
    cat->pipe[1] = -1;
    cat->wake_fd = conf->wake_fd;
    cat->mask = 255;
    cat->buckets = calloc(cat->mask + 1, sizeof(slora_catalog_entry_t *));
    pthread_mutex_init(&cat->lock, NULL);

    if (cat->buckets == NULL) {
        slora_err_set(err, SLORA_ERROR, "catalog: out of memory");
        goto failed;
    }

    if (conf->adapter_dir != NULL
        && strlen(conf->adapter_dir) > SLORA_ADAPTER_DIR_MAX)
    {
        slora_err_set(err, SLORA_ERROR, "adapter dir %.*s...: longer than "
                      "%d bytes", slora_utf8_cut(conf->adapter_dir, 64),
                      conf->adapter_dir, SLORA_ADAPTER_DIR_MAX);
        goto failed;
    }

    if (conf->adapter_dir != NULL && conf->adapter_dir[0] != '\0') {
        cat->dir = strdup(conf->adapter_dir);
        if (cat->dir == NULL
            || (!slora_adapter_is_random(conf->adapter_dir)
                && slora_catalog_add_root(cat, conf->adapter_dir, err)
                   != SLORA_OK))
        {
            slora_err_set(err, SLORA_ERROR, "adapter dir %s: %s",
                          conf->adapter_dir, strerror(errno));
            goto failed;
        }
    }

    for (i = 0; i < conf->n_roots; i++) {
        if (slora_catalog_add_root(cat, conf->roots[i], err) != SLORA_OK) {
            slora_err_set(err, SLORA_ERROR, "adapter root %s: %s",
                          conf->roots[i], strerror(errno));
            goto failed;
        }
    }

    if (conf->redis_url == NULL || conf->redis_url[0] == '\0') {
        if (cat->dir != NULL && slora_catalog_scan(cat, err) != SLORA_OK) {
            goto failed;
        }
        return cat;
    }

    cat->redis = 1;
    cat->stats.redis = 1;

    if (cat->n_roots == 0) {
        slora_err_set(err, SLORA_ERROR, "catalog: redis %s needs adapter "
                      "roots (the adapter directory or roots) to confine "
                      "adapter paths to", conf->redis_url);
        goto failed;
    }

    if (slora_catalog_parse_url(cat, conf->redis_url, err) != SLORA_OK) {
        goto failed;
    }

    cat->connect_ms = conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms
                                                   : 200;
    cat->command_ms = conf->command_timeout_ms > 0 ? conf->command_timeout_ms
                                                   : 500;
    cat->hint_ms = conf->hint_interval_ms > 0 ? conf->hint_interval_ms
                                              : 5000;
    cat->n_popular = conf->n_popular > 0 ? conf->n_popular : 32;
    snprintf(cat->down_msg, sizeof(cat->down_msg), "catalog unavailable: "
             "redis %s:%d: not connected yet", cat->host, cat->port);

    if (pipe(cat->pipe) != 0) {
        slora_err_set(err, SLORA_ERROR, "catalog: pipe: %s",
                      strerror(errno));
        goto failed;
    }

    for (i = 0; i < 2; i++) {
        fcntl(cat->pipe[i], F_SETFL, O_NONBLOCK);
        fcntl(cat->pipe[i], F_SETFD, FD_CLOEXEC);
    }

    if (pthread_create(&cat->thread, NULL, slora_catalog_main, cat) != 0) {
        slora_err_set(err, SLORA_ERROR, "catalog: cannot start its thread");
        goto failed;
    }

    cat->started = 1;

    return cat;

failed:

    slora_catalog_free(cat);
    return NULL;
}


void
slora_catalog_free(slora_catalog_t *cat)
{
    int32_t                 i;
    uint32_t                b;
    slora_catalog_msg_t    *m, *next;
    slora_catalog_entry_t  *en, *en_next;

    if (cat == NULL) {
        return;
    }

    if (cat->started) {
        pthread_mutex_lock(&cat->lock);
        cat->stop = 1;
        pthread_mutex_unlock(&cat->lock);
        slora_catalog_wake(cat->pipe[1]);
        pthread_join(cat->thread, NULL);
    }

    for (m = cat->jobs.head; m != NULL; m = next) {
        next = m->next;
        slora_catalog_msg_free(m);
    }

    for (m = cat->answers.head; m != NULL; m = next) {
        next = m->next;
        slora_catalog_msg_free(m);
    }

    if (cat->buckets != NULL) {
        for (b = 0; b <= cat->mask; b++) {
            for (en = cat->buckets[b]; en != NULL; en = en_next) {
                en_next = en->next;
                slora_catalog_entry_free(en);
            }
        }
    }

    for (i = 0; i < 2 * cat->n_roots; i++) {
        free(cat->roots[i]);
    }

    free(cat->write_name);
    free(cat->write_dir);

    if (cat->pipe[0] >= 0) {
        close(cat->pipe[0]);
        close(cat->pipe[1]);
    }

    slora_catalog_hints_clear(&cat->hints);
    pthread_mutex_destroy(&cat->lock);
    free(cat->roots);
    free(cat->buckets);
    free(cat->list);
    free(cat->dir);
    free(cat->host);
    free(cat);
}


int
slora_catalog_valid_name(const char *name)
{
    const unsigned char  *p;

    if (name == NULL || name[0] == '\0' || name[0] == '.'
        || strchr(name, '/') != NULL || strstr(name, "..") != NULL
        || strlen(name) >= 256)
    {
        return 0;
    }

    for (p = (const unsigned char *) name; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return 0;
        }
    }

    /* names go out in JSON (the model list, the admin list), which must
     * be UTF-8, and no JSON request could name one that is not */
    return slora_utf8_text_valid(name, strlen(name));
}


int
slora_catalog_adapter(slora_catalog_t *cat, const char *name,
    slora_catalog_adapter_t **out, slora_err_t *err)
{
    int                     rc;
    slora_catalog_entry_t  *en;

    rc = slora_catalog_lookup(cat, SLORA_CAT_ADAPTER, name, &en, err);
    if (rc == SLORA_OK) {
        *out = &en->ad;
    }

    return rc;
}


int
slora_catalog_tenant(slora_catalog_t *cat, const char *name,
    slora_catalog_tenant_t **out, slora_err_t *err)
{
    int                     rc;
    slora_catalog_entry_t  *en;

    rc = slora_catalog_lookup(cat, SLORA_CAT_TENANT, name, &en, err);
    if (rc == SLORA_OK) {
        *out = &en->tn;
    }

    return rc;
}


int
slora_catalog_tenant_allows(const slora_catalog_tenant_t *t,
    const char *adapter)
{
    if (t->allow_all
        || (t->default_adapter != NULL
            && strcmp(t->default_adapter, adapter) == 0))
    {
        return 1;
    }

    return t->n_allowed > 0
           && bsearch(&adapter, t->allowed, (size_t) t->n_allowed,
                      sizeof(char *), slora_catalog_str_cmp) != NULL;
}


int
slora_catalog_put(slora_catalog_t *cat, const char *name, const char *dir,
    slora_catalog_adapter_t **out, slora_err_t *err)
{
    char                   *path;
    slora_catalog_entry_t  *en;

    if (!slora_catalog_valid_name(name)) {
        return slora_err_set(err, SLORA_ERROR, "adapter name \"%.*s\" is "
                             "refused (empty, \"..\", \"/\", a leading \".\" "
                             "or a control character)",
                             slora_utf8_cut(name, 64), name);
    }

    /* a random adapter's spec names no file: nothing to confine */
    if (cat->n_roots > 0 && !slora_adapter_is_random(dir)) {
        if (slora_catalog_confine(cat->roots, cat->n_roots, name, dir, &path,
                                  err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

    } else if (!slora_adapter_is_random(dir)) {
        /* no roots: the folder by its realpath still, the one path its
         * files are opened along (slora_adapter_file.c) */
        path = realpath(dir, NULL);
        if (path == NULL) {
            return slora_err_set(err, SLORA_ERROR, "adapter %s: %s: %s",
                                 name, dir, strerror(errno));
        }

    } else {
        path = strdup(dir);
        if (path == NULL) {
            return slora_err_set(err, SLORA_ERROR, "catalog: no memory");
        }
    }

    en = slora_catalog_find(cat, SLORA_CAT_ADAPTER, name);
    if (en == NULL) {
        en = slora_catalog_insert(cat, SLORA_CAT_ADAPTER, name);
        if (en == NULL) {
            free(path);
            return slora_err_set(err, SLORA_ERROR, "catalog: no memory");
        }

    } else {
        if (en->state != SLORA_CAT_FOUND) {
            cat->n_negative--;
        }
        slora_catalog_adapter_clear(&en->ad);
    }

    free(en->msg);
    en->msg = NULL;
    en->state = SLORA_CAT_FOUND;
    en->ad.name = en->name;
    en->ad.path = path;
    *out = &en->ad;
    cat->list_fresh = 0;

    return SLORA_OK;
}


void
slora_catalog_hit(slora_catalog_t *cat, slora_catalog_adapter_t *a)
{
    slora_catalog_entry_t  *en;

    if (!cat->redis) {
        return;
    }

    en = (slora_catalog_entry_t *) ((char *) a
                                    - offsetof(slora_catalog_entry_t, ad));
    en->hits++;
    cat->hits_pending++;
}


int32_t
slora_catalog_poll(slora_catalog_t *cat)
{
    int32_t               n;
    slora_catalog_msg_t  *m, *next;

    if (!cat->redis) {
        return 0;
    }

    pthread_mutex_lock(&cat->lock);
    m = cat->answers.head;
    cat->answers.head = NULL;
    cat->answers.tail = NULL;
    pthread_mutex_unlock(&cat->lock);

    for (n = 0; m != NULL; m = next, n++) {
        next = m->next;
        slora_catalog_apply(cat, m);
        slora_catalog_msg_free(m);
    }

    if (cat->hits_pending > 0 && cat->up
        && slora_now_ns() - cat->hits_flushed_ns
           > (int64_t) cat->hint_ms * 1000000)
    {
        slora_catalog_flush_hits(cat);
    }

    return n;
}


int32_t
slora_catalog_adapters(slora_catalog_t *cat, slora_catalog_adapter_t ***list)
{
    int32_t                   n;
    uint32_t                  b;
    slora_catalog_entry_t    *en;
    slora_catalog_adapter_t **l;

    /* made again only after the found adapters changed: a listing of a
     * large catalog asks page after page, from the engine's thread */
    if (cat->list_fresh) {
        *list = cat->list;
        return cat->list_n;
    }

    l = realloc(cat->list, (size_t) (cat->n_entries + 1)
                           * sizeof(slora_catalog_adapter_t *));
    if (l == NULL) {
        *list = cat->list;
        return 0;
    }

    cat->list = l;
    n = 0;

    for (b = 0; b <= cat->mask; b++) {
        for (en = cat->buckets[b]; en != NULL; en = en->next) {
            if (en->kind == SLORA_CAT_ADAPTER
                && en->state == SLORA_CAT_FOUND)
            {
                l[n++] = &en->ad;
            }
        }
    }

    qsort(l, (size_t) n, sizeof(slora_catalog_adapter_t *),
          slora_catalog_adapter_cmp);
    *list = l;
    cat->list_n = n;
    cat->list_fresh = 1;

    return n;
}


const slora_catalog_hints_t *
slora_catalog_hints(const slora_catalog_t *cat)
{
    return &cat->hints;
}


void
slora_catalog_stats(const slora_catalog_t *cat, slora_catalog_stats_t *st)
{
    *st = cat->stats;
    st->up = cat->redis ? cat->up : 1;
}


static uint32_t
slora_catalog_hash(slora_catalog_kind_e kind, const char *name)
{
    return (uint32_t) slora_fnv1a(name, strlen(name)) ^ (uint32_t) kind;
}


slora_catalog_entry_t *
slora_catalog_find(slora_catalog_t *cat, slora_catalog_kind_e kind,
    const char *name)
{
    slora_catalog_entry_t  *en;

    en = cat->buckets[slora_catalog_hash(kind, name) & cat->mask];

    for ( /* void */ ; en != NULL; en = en->next) {
        if (en->kind == kind && strcmp(en->name, name) == 0) {
            return en;
        }
    }

    return NULL;
}


static slora_catalog_entry_t *
slora_catalog_insert(slora_catalog_t *cat, slora_catalog_kind_e kind,
    const char *name)
{
    uint32_t                 b, mask;
    slora_catalog_entry_t   *en, *next, **grown;

    if ((uint32_t) cat->n_entries > cat->mask) {
        mask = cat->mask * 2 + 1;
        grown = calloc((size_t) mask + 1, sizeof(slora_catalog_entry_t *));

        if (grown != NULL) {
            for (b = 0; b <= cat->mask; b++) {
                for (en = cat->buckets[b]; en != NULL; en = next) {
                    next = en->next;
                    en->next = grown[slora_catalog_hash(en->kind, en->name)
                                     & mask];
                    grown[slora_catalog_hash(en->kind, en->name) & mask] = en;
                }
            }

            free(cat->buckets);
            cat->buckets = grown;
            cat->mask = mask;
        }
    }

    en = calloc(1, sizeof(slora_catalog_entry_t));
    if (en == NULL) {
        return NULL;
    }

    en->name = strdup(name);
    if (en->name == NULL) {
        free(en);
        return NULL;
    }

    en->kind = kind;
    en->state = SLORA_CAT_PENDING;
    en->ad.name = en->name;
    en->tn.name = en->name;

    b = slora_catalog_hash(kind, name) & cat->mask;
    en->next = cat->buckets[b];
    cat->buckets[b] = en;
    cat->n_entries++;
    cat->n_negative++;

    return en;
}


static void
slora_catalog_drop(slora_catalog_t *cat, slora_catalog_entry_t *en)
{
    slora_catalog_entry_t  **p;

    p = &cat->buckets[slora_catalog_hash(en->kind, en->name) & cat->mask];
    while (*p != en) {
        p = &(*p)->next;
    }

    *p = en->next;
    cat->n_entries--;
    cat->list_fresh = 0;

    if (en->state != SLORA_CAT_FOUND) {
        cat->n_negative--;
    }

    slora_catalog_entry_free(en);
}


static void
slora_catalog_entry_free(slora_catalog_entry_t *en)
{
    slora_catalog_adapter_clear(&en->ad);
    slora_catalog_tenant_clear(&en->tn);
    free(en->msg);
    free(en->name);
    free(en);
}


static int
slora_catalog_lookup(slora_catalog_t *cat, slora_catalog_kind_e kind,
    const char *name, slora_catalog_entry_t **out, slora_err_t *err)
{
    char                      path[SLORA_ADAPTER_PATH_LEN];
    uint32_t                  b;
    struct stat               sb;
    const char               *what;
    slora_catalog_entry_t    *en, *next;

    what = kind == SLORA_CAT_ADAPTER ? "adapter" : "tenant";

    if (!slora_catalog_valid_name(name)) {
        return slora_err_set(err, SLORA_ERROR, "%s name \"%.*s\" is "
                             "refused (empty, \"..\", \"/\", a leading \".\" "
                             "or a control character)", what,
                             slora_utf8_cut(name, 64), name);
    }

    en = slora_catalog_find(cat, kind, name);

    if (en == NULL
        || (!cat->redis && en->state == SLORA_CAT_MISSING))
    {
        cat->stats.cache_misses++;

        if (!cat->redis) {
            /* a folder added to the directory since, or back */
            snprintf(path, sizeof(path), "%s/%s", cat->dir ? cat->dir : "",
                     name);
            if (kind == SLORA_CAT_ADAPTER && cat->dir != NULL
                && !slora_adapter_is_random(cat->dir)
                && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            {
                if (slora_catalog_put_folder(cat, name, path, &sb, err)
                    != SLORA_OK)
                {
                    return SLORA_ERROR;
                }
                *out = slora_catalog_find(cat, kind, name);
                return SLORA_OK;
            }

            return slora_err_set(err, SLORA_DECLINED, "unknown %s \"%s\"",
                                 what, name);
        }

        if (cat->state_known && !cat->up) {
            return slora_err_set(err, SLORA_UNAVAILABLE, "%s",
                                 cat->down_msg);
        }

        if (cat->n_fetching >= SLORA_CATALOG_FETCH_MAX) {
            /* a flood of names never seen: each a round trip on the one
             * catalog thread, and an entry until it is answered */
            return slora_err_set(err, SLORA_UNAVAILABLE, "catalog busy:"
                                 " %d names being read", cat->n_fetching);
        }

        if (cat->n_negative >= SLORA_CATALOG_NEG_MAX) {
            for (b = 0; b <= cat->mask; b++) {
                for (en = cat->buckets[b]; en != NULL; en = next) {
                    next = en->next;
                    if (en->state != SLORA_CAT_FOUND
                        && en->state != SLORA_CAT_PENDING
                        && en->ad.data == NULL)
                    {
                        slora_catalog_drop(cat, en);
                    }
                }
            }
        }

        en = slora_catalog_insert(cat, kind, name);
        if (en == NULL) {
            return slora_err_set(err, SLORA_ERROR, "catalog: no memory");
        }

        slora_catalog_fetch(cat, en);

        return SLORA_AGAIN;
    }

    switch (en->state) {

    case SLORA_CAT_FOUND:
        cat->stats.cache_hits++;
        *out = en;
        return SLORA_OK;

    case SLORA_CAT_PENDING:
        return SLORA_AGAIN;

    case SLORA_CAT_MISSING:
        cat->stats.cache_hits++;
        return slora_err_set(err, SLORA_DECLINED, "unknown %s \"%s\"", what,
                             name);

    case SLORA_CAT_REFUSED:
        cat->stats.cache_hits++;
        return slora_err_set(err, SLORA_ERROR, "%s",
                             en->msg ? en->msg : "refused");

    case SLORA_CAT_UNAVAILABLE:
        if (!cat->up) {
            return slora_err_set(err, SLORA_UNAVAILABLE, "%s",
                                 en->msg ? en->msg : cat->down_msg);
        }
        en->state = SLORA_CAT_PENDING;
        slora_catalog_fetch(cat, en);
        return SLORA_AGAIN;
    }

    return slora_err_set(err, SLORA_ERROR, "catalog: bad entry state");
}


static void
slora_catalog_fetch(slora_catalog_t *cat, slora_catalog_entry_t *en)
{
    slora_catalog_msg_t  *m;

    /* one read out an entry at most: a storm of events (each "*" asks
     * for every entry) would queue a read an event, which the one thread
     * works through while new names wait */
    if (en->fetching) {
        en->refetch = 1;
        return;
    }

    m = slora_catalog_msg_new(SLORA_MSG_FETCH);
    if (m == NULL || (m->name = strdup(en->name)) == NULL) {
        /* answered as unavailable now, read again at the next lookup */
        slora_catalog_msg_free(m);
        free(en->msg);
        en->msg = NULL;
        en->state = en->state == SLORA_CAT_FOUND ? SLORA_CAT_FOUND
                                                 : SLORA_CAT_UNAVAILABLE;
        return;
    }

    m->kind = en->kind;
    en->fetching = 1;
    cat->stats.fetches++;
    cat->n_fetching++;
    slora_catalog_send(cat, m);
}


/* A turn answered this long ago is no one's: its op was cancelled. */
#define SLORA_CATALOG_WRITE_KEEP_NS  (10 * 1000000000LL)
/* The owner of a write whose op was abandoned: its answer is no one's. */
#define SLORA_CATALOG_NO_OWNER       UINT64_MAX


void
slora_catalog_runtime_abandon(slora_catalog_t *cat, uint64_t owner)
{
    if (cat->write_state == SLORA_CAT_WRITE_NONE
        || cat->write_owner != owner)
    {
        return;
    }

    if (cat->write_state == SLORA_CAT_WRITE_ANSWERED) {
        cat->write_state = SLORA_CAT_WRITE_NONE;
        return;
    }

    /* out: the turn ends with its answer */
    cat->write_owner = SLORA_CATALOG_NO_OWNER;
}


int
slora_catalog_write_state(slora_catalog_t *cat, const char *name,
    int remove, uint64_t owner, slora_err_t *err)
{
    int  mine;

    if (cat->write_state == SLORA_CAT_WRITE_NONE) {
        return SLORA_DONE;
    }

    mine = cat->write_owner == owner && cat->write_remove == remove
           && strcmp(cat->write_name, name) == 0;

    if (cat->write_state == SLORA_CAT_WRITE_SENT) {
        return slora_err_set(err, mine ? SLORA_AGAIN : SLORA_BUSY,
                             "the catalog is writing adapter \"%s\" to "
                             "Redis", cat->write_name);
    }

    if (!mine) {
        if (slora_now_ns() - cat->write_ns < SLORA_CATALOG_WRITE_KEEP_NS) {
            return slora_err_set(err, SLORA_BUSY, "the catalog's write of "
                                 "adapter \"%s\" waits for its answer to be"
                                 " read", cat->write_name);
        }

        cat->write_state = SLORA_CAT_WRITE_NONE;

        return SLORA_DONE;
    }

    cat->write_state = SLORA_CAT_WRITE_NONE;
    err->code = cat->write_rc;
    snprintf(err->msg, sizeof(err->msg), "%s", cat->write_msg);

    return cat->write_rc;
}


int
slora_catalog_write_send(slora_catalog_t *cat, const char *name,
    const char *dir, int create, uint64_t owner, slora_err_t *err)
{
    char                 *keep, *keep_dir;
    slora_catalog_msg_t  *m;

    m = slora_catalog_msg_new(SLORA_MSG_WRITE);
    keep = strdup(name);
    keep_dir = dir != NULL ? strdup(dir) : NULL;

    if (m == NULL || keep == NULL || (dir != NULL && keep_dir == NULL)
        || (m->name = strdup(name)) == NULL
        || (dir != NULL && (m->dir = strdup(dir)) == NULL))
    {
        slora_catalog_msg_free(m);
        free(keep);
        free(keep_dir);
        return slora_err_set(err, SLORA_ERROR, "catalog: out of memory");
    }

    m->kind = SLORA_CAT_ADAPTER;
    m->create = create;
    free(cat->write_name);
    free(cat->write_dir);
    cat->write_name = keep;
    cat->write_dir = keep_dir;
    cat->write_owner = owner;
    cat->write_remove = dir == NULL;
    cat->write_state = SLORA_CAT_WRITE_SENT;
    slora_catalog_send(cat, m);

    return slora_err_set(err, SLORA_AGAIN, "the catalog is writing adapter"
                         " \"%s\" to Redis", name);
}


static void
slora_catalog_apply(slora_catalog_t *cat, slora_catalog_msg_t *m)
{
    slora_catalog_entry_t  *en;
    slora_catalog_state_e   was;

    switch (m->type) {

    case SLORA_MSG_STATE:
        if (m->up && !cat->up && cat->state_known) {
            cat->stats.reconnects++;
        }
        cat->up = m->up;
        cat->state_known = 1;
        if (!m->up && m->msg != NULL) {
            snprintf(cat->down_msg, sizeof(cat->down_msg), "%s", m->msg);
        }
        return;

    case SLORA_MSG_INVALIDATE:
        cat->stats.invalidations++;
        slora_catalog_invalidate(cat, m->kind, m->name);
        return;

    case SLORA_MSG_HINTS:
        slora_catalog_hints_clear(&cat->hints);
        cat->hints.pinned = m->hints.pinned;
        cat->hints.n_pinned = m->hints.n_pinned;
        cat->hints.popular = m->hints.popular;
        cat->hints.n_popular = m->hints.n_popular;
        cat->hints.gen++;
        memset(&m->hints, 0, sizeof(m->hints));
        return;

    case SLORA_MSG_ANSWER:
        /* every read sent is answered once, its entry kept or not */
        cat->n_fetching--;
        break;

    case SLORA_MSG_WRITTEN:
        cat->write_state = cat->write_owner == SLORA_CATALOG_NO_OWNER
                           ? SLORA_CAT_WRITE_NONE : SLORA_CAT_WRITE_ANSWERED;
        cat->write_rc = m->write_status;
        cat->write_ns = slora_now_ns();
        snprintf(cat->write_msg, sizeof(cat->write_msg), "%s",
                 m->write_msg != NULL ? m->write_msg : "");

        /* the entry read back is kept, even where none was looked up */
        if (slora_catalog_find(cat, m->kind, m->name) == NULL
            && slora_catalog_insert(cat, m->kind, m->name) == NULL)
        {
            return;
        }
        break;

    default:
        return;
    }

    en = slora_catalog_find(cat, m->kind, m->name);
    if (en == NULL) {
        return;
    }

    en->fetching = 0;
    was = en->state;

    if (m->status == SLORA_UNAVAILABLE) {
        /* the reconnection reads everything again */
        en->refetch = 0;

        if (en->state != SLORA_CAT_FOUND) {
            en->state = SLORA_CAT_UNAVAILABLE;
            free(en->msg);
            en->msg = m->msg;
            m->msg = NULL;
        }
        return;
    }

    free(en->msg);
    en->msg = NULL;

    if (m->status == SLORA_OK) {
        if (m->kind == SLORA_CAT_ADAPTER) {
            m->ad.data = en->ad.data;
            slora_catalog_adapter_clear(&en->ad);
            en->ad = m->ad;
            en->ad.name = en->name;
            memset(&m->ad, 0, sizeof(m->ad));

        } else {
            m->tn.bucket = en->tn.bucket;
            slora_catalog_tenant_clear(&en->tn);
            en->tn = m->tn;
            en->tn.name = en->name;
            memset(&m->tn, 0, sizeof(m->tn));
        }

        en->state = SLORA_CAT_FOUND;

    } else {
        en->state = m->status == SLORA_DECLINED ? SLORA_CAT_MISSING
                                                : SLORA_CAT_REFUSED;
        en->msg = m->msg;
        m->msg = NULL;
    }

    if (was == SLORA_CAT_FOUND && en->state != SLORA_CAT_FOUND) {
        cat->n_negative++;
        cat->list_fresh = 0;

    } else if (was != SLORA_CAT_FOUND && en->state == SLORA_CAT_FOUND) {
        cat->n_negative--;
        cat->list_fresh = 0;
    }

    /* invalidated since this read went out: it may carry the old value */
    if (en->refetch) {
        en->refetch = 0;
        slora_catalog_invalidate_one(cat, en);
    }
}


static void
slora_catalog_invalidate(slora_catalog_t *cat, slora_catalog_kind_e kind,
    const char *name)
{
    uint32_t                b;
    slora_catalog_entry_t  *en, *next;

    if (name != NULL) {
        en = slora_catalog_find(cat, kind, name);
        if (en != NULL) {
            slora_catalog_invalidate_one(cat, en);
        }
        return;
    }

    for (b = 0; b <= cat->mask; b++) {
        for (en = cat->buckets[b]; en != NULL; en = next) {
            next = en->next;

            if (en->state != SLORA_CAT_FOUND && en->state != SLORA_CAT_PENDING
                && en->ad.data == NULL)
            {
                slora_catalog_drop(cat, en);
                continue;
            }

            slora_catalog_invalidate_one(cat, en);
        }
    }
}


static void
slora_catalog_invalidate_one(slora_catalog_t *cat, slora_catalog_entry_t *en)
{
    if (en->state != SLORA_CAT_FOUND) {
        en->state = SLORA_CAT_PENDING;
    }

    /* a fetch already out may carry the old value: asked again once it
     * is answered */
    slora_catalog_fetch(cat, en);
}


static void
slora_catalog_flush_hits(slora_catalog_t *cat)
{
    int32_t                 n;
    uint32_t                b;
    slora_catalog_msg_t    *m;
    slora_catalog_entry_t  *en;

    cat->hits_flushed_ns = slora_now_ns();

    n = 0;
    for (b = 0; b <= cat->mask; b++) {
        for (en = cat->buckets[b]; en != NULL; en = en->next) {
            n += en->hits > 0;
        }
    }

    m = slora_catalog_msg_new(SLORA_MSG_HITS);
    if (m == NULL || n == 0) {
        slora_catalog_msg_free(m);
        return;
    }

    m->names = calloc((size_t) n, sizeof(char *));
    m->counts = calloc((size_t) n, sizeof(uint32_t));
    if (m->names == NULL || m->counts == NULL) {
        slora_catalog_msg_free(m);
        return;
    }

    for (b = 0; b <= cat->mask; b++) {
        for (en = cat->buckets[b]; en != NULL; en = en->next) {
            if (en->hits == 0) {
                continue;
            }
            m->names[m->n] = strdup(en->name);
            if (m->names[m->n] == NULL) {
                continue;
            }
            m->counts[m->n++] = en->hits;
            en->hits = 0;
        }
    }

    cat->hits_pending = 0;
    slora_catalog_send(cat, m);
}


void
slora_catalog_adapter_clear(slora_catalog_adapter_t *ad)
{
    free((char *) ad->path);
    free((char *) ad->targets);
    free((char *) ad->base_model);
    free((char *) ad->sha256);
    free((char *) ad->version);
    ad->path = NULL;
    ad->targets = NULL;
    ad->base_model = NULL;
    ad->sha256 = NULL;
    ad->version = NULL;
}


void
slora_catalog_tenant_clear(slora_catalog_tenant_t *tn)
{
    int32_t  i;

    for (i = 0; i < tn->n_allowed; i++) {
        free(tn->allowed[i]);
    }

    free(tn->allowed);
    free((char *) tn->default_adapter);
    tn->allowed = NULL;
    tn->n_allowed = 0;
    tn->default_adapter = NULL;
}


static void
slora_catalog_hints_clear(slora_catalog_hints_t *h)
{
    int32_t  i;

    for (i = 0; i < h->n_pinned; i++) {
        free(h->pinned[i]);
    }

    for (i = 0; i < h->n_popular; i++) {
        free(h->popular[i]);
    }

    free(h->pinned);
    free(h->popular);
    h->pinned = NULL;
    h->popular = NULL;
    h->n_pinned = 0;
    h->n_popular = 0;
}


void
slora_catalog_msg_free(slora_catalog_msg_t *m)
{
    int32_t  i;

    if (m == NULL) {
        return;
    }

    slora_catalog_adapter_clear(&m->ad);
    slora_catalog_tenant_clear(&m->tn);
    slora_catalog_hints_clear(&m->hints);

    for (i = 0; i < m->n; i++) {
        free(m->names[i]);
    }

    free(m->names);
    free(m->counts);
    free(m->name);
    free(m->msg);
    free(m->dir);
    free(m->write_msg);
    free(m);
}


slora_catalog_msg_t *
slora_catalog_msg_new(slora_catalog_msg_e type)
{
    slora_catalog_msg_t  *m;

    m = calloc(1, sizeof(slora_catalog_msg_t));
    if (m != NULL) {
        m->type = type;
    }

    return m;
}


static void
slora_catalog_push(slora_catalog_queue_t *q, slora_catalog_msg_t *m)
{
    m->next = NULL;

    if (q->tail != NULL) {
        q->tail->next = m;
    } else {
        q->head = m;
    }

    q->tail = m;
}


/* Owner's thread: a job for the catalog thread. */
static void
slora_catalog_send(slora_catalog_t *cat, slora_catalog_msg_t *m)
{
    pthread_mutex_lock(&cat->lock);
    slora_catalog_push(&cat->jobs, m);
    pthread_mutex_unlock(&cat->lock);

    slora_catalog_wake(cat->pipe[1]);
}


/* Catalog thread: an answer for the owner. */
void
slora_catalog_answer(slora_catalog_t *cat, slora_catalog_msg_t *m)
{
    pthread_mutex_lock(&cat->lock);
    slora_catalog_push(&cat->answers, m);
    pthread_mutex_unlock(&cat->lock);

    slora_catalog_wake(cat->wake_fd);
}


int
slora_catalog_str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


static int
slora_catalog_adapter_cmp(const void *a, const void *b)
{
    return strcmp((*(slora_catalog_adapter_t *const *) a)->name,
                  (*(slora_catalog_adapter_t *const *) b)->name);
}


static void
slora_catalog_wake(int fd)
{
    ssize_t   n;
    uint64_t  one;

    if (fd < 0) {
        return;
    }

    one = 1;
    n = write(fd, &one, sizeof(one));
    (void) n;
}
