/*
 * slora_catalog_int.h: the catalog's private layout, shared by its cache
 * (slora_catalog.c), its Redis thread (slora_catalog_redis.c) and its
 * adapter roots (slora_catalog_dir.c).
 *
 * The one idea: slora_catalog_s is divided by thread. The cache belongs
 * to the owner's thread, the fields under "the thread's own" to the
 * catalog thread; the fields between are set before the thread starts or
 * shared under the lock (stop, jobs, answers).
 */

#ifndef SLORA_CATALOG_INT_H
#define SLORA_CATALOG_INT_H


#include <pthread.h>
#include <sys/stat.h>

#include <hiredis/hiredis.h>

#include "slora_catalog.h"


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
    SLORA_MSG_HINTS,
    SLORA_MSG_WRITE,                /* job: register name from dir, or
                                       remove it (dir NULL) */
    SLORA_MSG_WRITTEN               /* answer to a write: its status, and
                                       the entry read back as a fetch's */
} slora_catalog_msg_e;


/* The one write to Redis the owner may have out (slora_catalog_runtime_*
 * with Redis as the source). */
typedef enum {
    SLORA_CAT_WRITE_NONE = 0,
    SLORA_CAT_WRITE_SENT,
    SLORA_CAT_WRITE_ANSWERED
} slora_catalog_write_e;


typedef struct slora_catalog_entry_s  slora_catalog_entry_t;

struct slora_catalog_entry_s {
    slora_catalog_entry_t      *next;       /* hash chain */
    slora_catalog_kind_e        kind;
    slora_catalog_state_e       state;
    int                         fetching;   /* a read is out */
    int                         refetch;    /* invalidated while it was:
                                               read again once answered */
    char                       *msg;        /* REFUSED, UNAVAILABLE */
    uint32_t                    hits;       /* uses not yet sent */
    int                         seen;       /* in the directory's last
                                               scan */
    int                         registered; /* by slora_catalog_register:
                                               the scan leaves it be */
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
    char                       *dir;        /* WRITE: NULL: remove */
    int                         create;     /* WRITE: only if absent */
    int                         write_status;   /* WRITTEN */
    char                       *write_msg;      /* WRITTEN: err's text */
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
    struct timespec             dir_mtime;  /* at the last scan */
    int32_t                     scan_changes;   /* entries it put */
    uint64_t                    registrations;  /* made so far: each a
                                                   version of its own */
    char                      **roots;      /* n_roots realpath()s, then
                                               their n_roots texts as
                                               configured (absolute, no
                                               "." or "..") */
    int32_t                     n_roots;

    slora_catalog_entry_t     **buckets;
    uint32_t                    mask;
    int32_t                     n_entries;
    int32_t                     n_negative;
    int32_t                     n_fetching; /* reads sent, not answered */
    slora_catalog_adapter_t   **list;       /* found adapters, by name */
    int32_t                     list_n;
    int                         list_fresh; /* 0: made again when asked */
    slora_catalog_hints_t       hints;

    slora_catalog_write_e       write_state;
    int                         write_remove;
    uint64_t                    write_owner;
    char                       *write_name;
    char                       *write_dir;  /* the realpath written */
    int                         write_rc;   /* ANSWERED: its status */
    char                        write_msg[SLORA_ERR_LEN];
    int64_t                     write_ns;   /* when answered */

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


/* slora_catalog.c */
slora_catalog_entry_t *slora_catalog_find(slora_catalog_t *cat,
    slora_catalog_kind_e kind, const char *name);
void slora_catalog_adapter_clear(slora_catalog_adapter_t *ad);
void slora_catalog_tenant_clear(slora_catalog_tenant_t *tn);
void slora_catalog_msg_free(slora_catalog_msg_t *m);
slora_catalog_msg_t *slora_catalog_msg_new(slora_catalog_msg_e type);
void slora_catalog_answer(slora_catalog_t *cat,
    slora_catalog_msg_t *m);
int slora_catalog_str_cmp(const void *a, const void *b);

/* Where owner's write of name (remove: its removal) is: SLORA_AGAIN
 * while it is out; once answered its status, err its message, once (the
 * turn is given back); SLORA_DONE where there is none, and the turn is
 * free; SLORA_BUSY where another's write holds it (the same name and
 * folder asked by another op too: the answer is the sender's alone). */
int slora_catalog_write_state(slora_catalog_t *cat, const char *name,
    int remove, uint64_t owner, slora_err_t *err);
/* Sends owner's write (dir NULL: remove; create: only where Redis holds
 * no adapter of the name) to the thread: SLORA_AGAIN. */
int slora_catalog_write_send(slora_catalog_t *cat, const char *name,
    const char *dir, int create, uint64_t owner, slora_err_t *err);

/* slora_catalog_write.c: the thread's writes, on its own connection;
 * create: refused (vLLM's "already been loaded") where the hash exists
 * when the write is made, whoever wrote it since this engine looked */
int slora_catalog_write_on(redisContext *c, const char *name,
    const char *dir, int create, slora_err_t *err);

/* slora_catalog_redis.c */
int slora_catalog_parse_url(slora_catalog_t *cat, const char *url,
    slora_err_t *err);
void *slora_catalog_main(void *arg);

/* slora_catalog_dir.c */
int slora_catalog_add_root(slora_catalog_t *cat, const char *root,
    slora_err_t *err);
/* SLORA_DECLINED: outside the roots */
int slora_catalog_confine(char **roots, int32_t n_roots,
    const char *name, const char *path, char **out, slora_err_t *err);
/* 1: path names a place under a root by its text; 0: it does not (or
 * its text cannot be read); -1: it holds a "..", which its text does
 * not resolve */
int slora_catalog_under_roots(slora_catalog_t *cat, const char *path);
/* 1 when the nearest place on path's way that exists (path itself, or
 * with its last names taken off) resolves to a root or to a place under
 * one: where path is missing, nothing outside the roots is told by
 * saying so; 0 when it resolves elsewhere (or path names none); -1 when
 * it cannot be told (a link whose target is missing, a link loop, a
 * folder on the way not searchable). */
int slora_catalog_parent_within(slora_catalog_t *cat, const char *path);
int slora_catalog_scan(slora_catalog_t *cat, slora_err_t *err);
int slora_catalog_put_folder(slora_catalog_t *cat, const char *name,
    const char *path, const struct stat *sb, slora_err_t *err);


#endif /* SLORA_CATALOG_INT_H */
