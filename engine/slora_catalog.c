/*
 * slora_catalog.c: the catalog: a cache of adapter and tenant entries
 * owned by the engine's thread, filled from the adapter directory or by a
 * thread of its own that reads Redis.
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
 * read again; a negative one goes back to PENDING. The thread connects
 * twice (commands, and a SUBSCRIBE connection it reads with poll()), and
 * when either fails it answers every job "unavailable" at once and
 * reconnects with backoff (50 ms doubling to 2 s); a successful
 * reconnection is followed by "*", every entry read again.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "slora_catalog.h"


#define SLORA_CATALOG_NEG_MAX     8192
#define SLORA_CATALOG_BACKOFF_MS  50
#define SLORA_CATALOG_BACKOFF_MAX 2000


typedef enum {
    SLORA_CAT_ADAPTER = 0,
    SLORA_CAT_TENANT
} slora_catalog_kind_e;


typedef enum {
    SLORA_CAT_PENDING = 0,
    SLORA_CAT_FOUND,
    SLORA_CAT_MISSING,
    SLORA_CAT_REFUSED,
    SLORA_CAT_UNAVAILABLE
} slora_catalog_state_e;


typedef enum {
    SLORA_MSG_FETCH = 0,            /* job: read kind/name */
    SLORA_MSG_HITS,                 /* job: add counts to slora:popular */
    SLORA_MSG_ANSWER,               /* answer to a fetch */
    SLORA_MSG_INVALIDATE,           /* kind/name, or name NULL: all */
    SLORA_MSG_STATE,                /* up or down (text) */
    SLORA_MSG_HINTS
} slora_catalog_msg_e;


typedef struct slora_catalog_entry_s  slora_catalog_entry_t;

struct slora_catalog_entry_s {
    slora_catalog_entry_t      *next;       /* hash chain */
    slora_catalog_kind_e        kind;
    slora_catalog_state_e       state;
    int                         fetching;
    char                       *msg;        /* REFUSED, UNAVAILABLE */
    uint32_t                    hits;       /* uses not yet sent */
    slora_catalog_adapter_t     ad;
    slora_catalog_tenant_t      tn;
    char                       *name;
};


typedef struct slora_catalog_msg_s  slora_catalog_msg_t;

struct slora_catalog_msg_s {
    slora_catalog_msg_t        *next;
    slora_catalog_msg_e         type;
    slora_catalog_kind_e        kind;
    int                         status;     /* ANSWER: SLORA_OK... */
    int                         up;         /* STATE */
    char                       *name;
    char                       *msg;
    slora_catalog_adapter_t     ad;         /* ANSWER, adapter */
    slora_catalog_tenant_t      tn;         /* ANSWER, tenant */
    slora_catalog_hints_t       hints;      /* HINTS */
    char                      **names;      /* HITS */
    uint32_t                   *counts;
    int32_t                     n;
};


typedef struct {
    slora_catalog_msg_t        *head;
    slora_catalog_msg_t        *tail;
} slora_catalog_queue_t;


struct slora_catalog_s {
    int                         redis;
    char                       *dir;
    char                      **roots;      /* realpath()s */
    int32_t                     n_roots;

    slora_catalog_entry_t     **buckets;
    uint32_t                    mask;
    int32_t                     n_entries;
    int32_t                     n_negative;
    slora_catalog_adapter_t   **list;
    slora_catalog_hints_t       hints;

    int                         up;
    int                         state_known;
    char                        down_msg[SLORA_ERR_LEN];
    uint32_t                    hits_pending;
    int64_t                     hits_flushed_ns;
    slora_catalog_stats_t       stats;

    /* the thread, and what it shares */
    char                       *host;
    int                         port;
    int                         db;
    int32_t                     connect_ms;
    int32_t                     command_ms;
    int32_t                     hint_ms;
    int32_t                     n_popular;
    int                         wake_fd;
    int                         pipe[2];
    pthread_t                   thread;
    int                         started;
    pthread_mutex_t             lock;
    int                         stop;
    slora_catalog_queue_t       jobs;
    slora_catalog_queue_t       answers;

    /* the thread's own */
    int                         hints_due;
    redisContext               *cmd;
    redisContext               *sub;
    char                        err_text[SLORA_ERR_LEN];
};


static int slora_catalog_parse_url(slora_catalog_t *cat, const char *url,
    slora_err_t *err);
static int slora_catalog_add_root(slora_catalog_t *cat, const char *root,
    slora_err_t *err);
static int slora_catalog_confine(char **roots, int32_t n_roots,
    const char *name, const char *path, char **out, slora_err_t *err);
static int slora_catalog_scan(slora_catalog_t *cat, slora_err_t *err);
static uint32_t slora_catalog_hash(slora_catalog_kind_e kind,
    const char *name);
static slora_catalog_entry_t *slora_catalog_find(slora_catalog_t *cat,
    slora_catalog_kind_e kind, const char *name);
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
static void slora_catalog_adapter_clear(slora_catalog_adapter_t *ad);
static void slora_catalog_tenant_clear(slora_catalog_tenant_t *tn);
static void slora_catalog_hints_clear(slora_catalog_hints_t *h);
static void slora_catalog_msg_free(slora_catalog_msg_t *m);
static slora_catalog_msg_t *slora_catalog_msg_new(slora_catalog_msg_e type);
static void slora_catalog_push(slora_catalog_queue_t *q,
    slora_catalog_msg_t *m);
static void slora_catalog_send(slora_catalog_t *cat, slora_catalog_msg_t *m);
static void slora_catalog_answer(slora_catalog_t *cat,
    slora_catalog_msg_t *m);
static void *slora_catalog_main(void *arg);
static int slora_catalog_connect(slora_catalog_t *cat);
static void slora_catalog_disconnect(slora_catalog_t *cat,
    redisContext *failed);
static void slora_catalog_run_job(slora_catalog_t *cat,
    slora_catalog_msg_t *job);
static int slora_catalog_read_adapter(slora_catalog_t *cat,
    slora_catalog_msg_t *m);
static int slora_catalog_read_tenant(slora_catalog_t *cat,
    slora_catalog_msg_t *m);
static int slora_catalog_read_hints(slora_catalog_t *cat);
static int slora_catalog_send_hits(slora_catalog_t *cat,
    slora_catalog_msg_t *job);
static int slora_catalog_read_events(slora_catalog_t *cat, int may_read);
static void slora_catalog_event(slora_catalog_t *cat, const char *text,
    size_t len);
static char **slora_catalog_strings(const redisReply *r, int32_t *n);
static int slora_catalog_str_cmp(const void *a, const void *b);
static int slora_catalog_adapter_cmp(const void *a, const void *b);
static char *slora_catalog_strdup(const char *s);
static void slora_catalog_wake(int fd);
static struct timeval slora_catalog_tv(int32_t ms);


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

    if (conf->adapter_dir != NULL && conf->adapter_dir[0] != '\0') {
        cat->dir = strdup(conf->adapter_dir);
        if (cat->dir == NULL
            || slora_catalog_add_root(cat, conf->adapter_dir, err)
               != SLORA_OK)
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

    for (i = 0; i < cat->n_roots; i++) {
        free(cat->roots[i]);
    }

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

    return 1;
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
    const slora_catalog_tenant_t **out, slora_err_t *err)
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
        return slora_err_set(err, SLORA_ERROR, "adapter name \"%.64s\" is "
                             "refused (empty, \"..\", \"/\", a leading \".\" "
                             "or a control character)", name);
    }

    if (cat->n_roots > 0) {
        if (slora_catalog_confine(cat->roots, cat->n_roots, name, dir, &path,
                                  err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
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
    uint32_t                b;
    slora_catalog_entry_t  *en;

    *st = cat->stats;
    st->up = cat->redis ? cat->up : 1;
    st->adapters = 0;
    st->tenants = 0;

    for (b = 0; b <= cat->mask; b++) {
        for (en = cat->buckets[b]; en != NULL; en = en->next) {
            if (en->state == SLORA_CAT_FOUND) {
                st->adapters += en->kind == SLORA_CAT_ADAPTER;
                st->tenants += en->kind == SLORA_CAT_TENANT;
            }
        }
    }
}


static int
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


static int
slora_catalog_add_root(slora_catalog_t *cat, const char *root,
    slora_err_t *err)
{
    char   *rp, **grown;

    rp = realpath(root, NULL);
    if (rp == NULL) {
        return SLORA_ERROR;
    }

    grown = realloc(cat->roots, (size_t) (cat->n_roots + 1) * sizeof(char *));
    if (grown == NULL) {
        free(rp);
        errno = ENOMEM;
        return SLORA_ERROR;
    }

    cat->roots = grown;
    cat->roots[cat->n_roots++] = rp;

    return SLORA_OK;
}


/* *out: realpath(path), which must lie strictly under one of the roots. */
static int
slora_catalog_confine(char **roots, int32_t n_roots, const char *name,
    const char *path, char **out, slora_err_t *err)
{
    char     *rp;
    size_t    len;
    int32_t   i;

    rp = realpath(path, NULL);
    if (rp == NULL) {
        return slora_err_set(err, SLORA_ERROR, "adapter %s: %s: %s", name,
                             path, strerror(errno));
    }

    for (i = 0; i < n_roots; i++) {
        len = strlen(roots[i]);
        if (strncmp(rp, roots[i], len) == 0
            && (rp[len] == '/' || (len == 1 && rp[1] != '\0')))
        {
            *out = rp;
            return SLORA_OK;
        }
    }

    slora_err_set(err, SLORA_ERROR, "adapter %s: %s (%s) is outside the "
                  "adapter roots: refused", name, path, rp);
    free(rp);

    return SLORA_ERROR;
}


/* The directory source: every sub-folder with a valid name. */
static int
slora_catalog_scan(slora_catalog_t *cat, slora_err_t *err)
{
    DIR                      *d;
    char                      path[1280];
    struct stat               sb;
    struct dirent            *de;
    slora_err_t               skip;
    slora_catalog_adapter_t  *ad;

    d = opendir(cat->dir);
    if (d == NULL) {
        return slora_err_set(err, SLORA_ERROR, "adapter dir %s: %s",
                             cat->dir, strerror(errno));
    }

    while ((de = readdir(d)) != NULL) {
        if (!slora_catalog_valid_name(de->d_name)) {
            continue;
        }

        snprintf(path, sizeof(path), "%s/%s", cat->dir, de->d_name);
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            continue;
        }

        /* a folder whose path leads outside the roots is left out */
        (void) slora_catalog_put(cat, de->d_name, path, &ad, &skip);
    }

    closedir(d);

    return SLORA_OK;
}


static uint32_t
slora_catalog_hash(slora_catalog_kind_e kind, const char *name)
{
    uint32_t  h;

    h = 2166136261u ^ (uint32_t) kind;
    for ( /* void */ ; *name != '\0'; name++) {
        h = (h ^ (unsigned char) *name) * 16777619u;
    }

    return h;
}


static slora_catalog_entry_t *
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
    char                      path[1280];
    uint32_t                  b;
    struct stat               sb;
    const char               *what;
    slora_catalog_entry_t    *en, *next;
    slora_catalog_adapter_t  *ad;

    what = kind == SLORA_CAT_ADAPTER ? "adapter" : "tenant";

    if (!slora_catalog_valid_name(name)) {
        return slora_err_set(err, SLORA_ERROR, "%s name \"%.64s\" is "
                             "refused (empty, \"..\", \"/\", a leading \".\" "
                             "or a control character)", what, name);
    }

    en = slora_catalog_find(cat, kind, name);

    if (en == NULL) {
        cat->stats.cache_misses++;

        if (!cat->redis) {
            /* a folder added to the directory since */
            snprintf(path, sizeof(path), "%s/%s", cat->dir ? cat->dir : "",
                     name);
            if (kind == SLORA_CAT_ADAPTER && cat->dir != NULL
                && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            {
                if (slora_catalog_put(cat, name, path, &ad, err) != SLORA_OK) {
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
    slora_catalog_send(cat, m);
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

    } else if (was != SLORA_CAT_FOUND && en->state == SLORA_CAT_FOUND) {
        cat->n_negative--;
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

    /* a fetch already out may carry the old value: ask again */
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


static void
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


static void
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


static void
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
    free(m);
}


static slora_catalog_msg_t *
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
static void
slora_catalog_answer(slora_catalog_t *cat, slora_catalog_msg_t *m)
{
    pthread_mutex_lock(&cat->lock);
    slora_catalog_push(&cat->answers, m);
    pthread_mutex_unlock(&cat->lock);

    slora_catalog_wake(cat->wake_fd);
}


static void *
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
    if (r == NULL) {
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
                              "sha256 \"%.80s\" is not 64 hex digits",
                              m->name, val->str);
                goto done;
            }
            field = (char **) &m->ad.sha256;

        } else if (strcmp(key->str, "rank") == 0) {
            errno = 0;
            v = strtol(val->str, &end, 10);
            if (errno != 0 || *end != '\0' || v < 1 || v > 65536) {
                slora_err_set(&err, SLORA_ERROR, "catalog: adapter %s: "
                              "rank \"%.32s\" is not a positive integer",
                              m->name, val->str);
                goto done;
            }
            m->ad.rank = (int32_t) v;

        } else if (strcmp(key->str, "alpha") == 0) {
            d = strtod(val->str, &end);
            if (*end != '\0' || end == val->str) {
                slora_err_set(&err, SLORA_ERROR, "catalog: adapter %s: "
                              "alpha \"%.32s\" is not a number", m->name,
                              val->str);
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
            free((char *) m->tn.default_adapter);
            m->tn.default_adapter = strndup(val->str, val->len);
            if (m->tn.default_adapter == NULL) {
                slora_err_set(&err, SLORA_ERROR, "catalog: no memory");
                goto done;
            }
            continue;
        }

        if (strcmp(key->str, "rate") == 0) {
            m->tn.rate = strtod(val->str, &end);
            if (*end != '\0' || end == val->str || !(m->tn.rate >= 0)) {
                slora_err_set(&err, SLORA_ERROR, "catalog: tenant %s: rate "
                              "\"%.32s\" is not a number >= 0", m->name,
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

        errno = 0;
        v = strtol(val->str, &end, 10);
        if (errno != 0 || *end != '\0' || end == val->str
            || v < (dst == &m->tn.priority ? -1000000 : 0) || v > INT32_MAX)
        {
            slora_err_set(&err, SLORA_ERROR, "catalog: tenant %s: %s "
                          "\"%.32s\" is not an integer in range", m->name,
                          key->str, val->str);
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
        if (r->element[i]->type != REDIS_REPLY_STRING) {
            continue;
        }

        list[*n] = slora_catalog_strdup(r->element[i]->str);
        if (list[*n] != NULL) {
            (*n)++;
        }
    }

    return list;
}


static int
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


static char *
slora_catalog_strdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
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


static struct timeval
slora_catalog_tv(int32_t ms)
{
    struct timeval  tv;

    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;

    return tv;
}
