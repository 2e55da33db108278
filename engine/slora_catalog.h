/*
 * slora_catalog.h: which adapters and tenants exist, and where an
 * adapter's folder is. Two sources behind one interface: the adapter
 * directory (each sub-folder is an adapter named after it; no tenants),
 * and Redis (DESIGN.md section 6):
 *
 *     slora:adapter:<name>            hash: path, rank, alpha,
 *                                     target_modules, base_model, sha256,
 *                                     version
 *     slora:tenant:<tenant>           hash: default_adapter, priority,
 *                                     ttft_slo_ms, max_tokens, rate
 *     slora:tenant:<tenant>:adapters  set: adapters the tenant may use
 *                                     ("*": any); no set: the default only
 *     slora:pinned                    set: adapters kept resident (hint)
 *     slora:popular                   sorted set: uses per adapter (hint;
 *                                     the engine adds its own counts)
 *     channel slora:events            "adapter <name>", "tenant <name>",
 *                                     "hints" or "*": re-read that entry
 *
 * The one idea: the owner's thread never waits on Redis. A lookup answers
 * from a cache (a hash table by name); a miss returns SLORA_AGAIN and
 * queues a fetch for the catalog's own thread, which talks to Redis with
 * timeouts, and answers through a queue and a write to the owner's wake
 * fd; slora_catalog_poll() applies the answers. Entries read once keep
 * being served while Redis is down; a name never read fails at once with
 * SLORA_UNAVAILABLE. Invalidation events re-read an entry, serving the
 * old value until the new one arrives; after a reconnection everything
 * is re-read, since events may have been missed.
 *
 * Adapter paths are confined: realpath() of a path must lie under one of
 * the configured roots (so ".." and symlinks leading out are refused),
 * and names with "/", "..", a leading "." or control characters, or
 * that are not UTF-8, are refused before any lookup.
 */

#ifndef SLORA_CATALOG_H
#define SLORA_CATALOG_H


#include "slora_core.h"
#include "slora_rate.h"


/* An adapter file's path, NUL included: its folder's, the longest at
 * SLORA_ADAPTER_FOLDER_MAX bytes (slora_catalog_confine refuses
 * longer), then "/adapter_model.safetensors". */
#define SLORA_ADAPTER_PATH_LEN  1280
#define SLORA_ADAPTER_FOLDER_MAX                                            \
    (SLORA_ADAPTER_PATH_LEN - sizeof("/adapter_model.safetensors"))

/* The longest adapter directory: its path, "/" and the longest name an
 * adapter may have (255 bytes, slora_catalog_valid_name) fit
 * SLORA_ADAPTER_PATH_LEN, so that no folder's path is ever cut short
 * into another's. */
#define SLORA_ADAPTER_DIR_MAX  (SLORA_ADAPTER_PATH_LEN - 257)


/* Statuses beyond slora_core.h's, shared with slora_engine.h. */
#define SLORA_FORBIDDEN      -20
#define SLORA_UNAVAILABLE    -21
#define SLORA_LIMITED        -22    /* the tenant's rate is spent */


#define SLORA_CATALOG_CHANNEL  "slora:events"


typedef struct slora_catalog_s  slora_catalog_t;


typedef struct {
    const char          *redis_url;     /* "redis://host:port[/db]" or
                                           "host:port"; NULL or "": the
                                           directory */
    const char          *adapter_dir;   /* the directory source; a root */
    const char *const   *roots;         /* [n_roots] more roots */
    int32_t              n_roots;
    int32_t              connect_timeout_ms;    /* 0: 200 */
    int32_t              command_timeout_ms;    /* 0: 500 */
    int32_t              hint_interval_ms;      /* 0: 5000 */
    int32_t              n_popular;             /* 0: 32 */
    int                  wake_fd;       /* written when answers wait */
} slora_catalog_conf_t;


/* An adapter entry; strings owned by the catalog. */
typedef struct {
    const char          *name;
    const char          *path;          /* realpath, under a root */
    const char          *targets;       /* NULL: not given */
    const char          *base_model;
    const char          *sha256;        /* 64 hex digits, or NULL */
    const char          *version;
    int32_t              rank;          /* 0: not given */
    float                alpha;
    void                *data;          /* the owner's, kept across
                                           re-reads */
} slora_catalog_adapter_t;


typedef struct {
    const char          *name;
    const char          *default_adapter;   /* NULL: none */
    int32_t              priority;          /* larger: sooner */
    int32_t              ttft_slo_ms;       /* 0: none */
    int32_t              max_tokens;        /* 0: no limit */
    double               rate;              /* requests/s; 0: none */
    slora_rate_t         bucket;            /* the owner's, for rate:
                                               kept across re-reads */
    int                  allow_all;
    int32_t              n_allowed;
    char               **allowed;           /* [n_allowed], sorted */
} slora_catalog_tenant_t;


typedef struct {
    char               **pinned;
    int32_t              n_pinned;
    char               **popular;           /* most used first */
    int32_t              n_popular;
    uint64_t             gen;               /* bumped on each change */
} slora_catalog_hints_t;


typedef struct {
    int                  redis;             /* the source is Redis */
    int                  up;                /* Redis answers */
    uint64_t             fetches;           /* sent to the thread */
    uint64_t             cache_hits;
    uint64_t             cache_misses;
    uint64_t             invalidations;
    uint64_t             reconnects;
} slora_catalog_stats_t;


slora_catalog_t *slora_catalog_create(const slora_catalog_conf_t *conf,
    slora_err_t *err);
void slora_catalog_free(slora_catalog_t *cat);

/* A name the catalog may hold: not empty, no "/", "..", leading "." or
 * control character, UTF-8, shorter than 256 bytes. */
int slora_catalog_valid_name(const char *name);

/*
 * Lookups. SLORA_OK: *out stays valid until the next slora_catalog_poll()
 * or slora_catalog_put(); SLORA_AGAIN: a fetch is queued, poll later;
 * SLORA_DECLINED: no such entry; SLORA_ERROR: the entry is refused (its
 * path leads outside the roots...); SLORA_UNAVAILABLE: Redis does not
 * answer and the entry was never read. err says which.
 */
int slora_catalog_adapter(slora_catalog_t *cat, const char *name,
    slora_catalog_adapter_t **out, slora_err_t *err);
int slora_catalog_tenant(slora_catalog_t *cat, const char *name,
    slora_catalog_tenant_t **out, slora_err_t *err);

/* The default adapter, "*" and members of the set are allowed. */
int slora_catalog_tenant_allows(const slora_catalog_tenant_t *t,
    const char *adapter);

/* Adds or replaces an adapter entry by folder (checked against the roots
 * when there are any). */
int slora_catalog_put(slora_catalog_t *cat, const char *name,
    const char *dir, slora_catalog_adapter_t **out, slora_err_t *err);

/*
 * Adapters registered at run time (vLLM's load_lora_adapter and
 * unload_lora_adapter; slora_catalog_runtime.c): name served from the
 * folder dir, which must lie under the roots. check (NULL: none) judges
 * the folder's realpath, once it is known to lie under the roots, before
 * anything changes; a check that answers SLORA_AGAIN (its reading of
 * the folder goes on elsewhere) makes the call answer it, and the
 * caller calls again later, the whole judged again. A name the catalog
 * holds is refused unless replace.
 *
 * With the directory source the registration is the catalog's own: a
 * version of its own each time, so that one replacing another drops the
 * copies made of the one before; it shadows a sub-folder of its name
 * until dropped, when a lookup finds the folder again and the next
 * refresh lists it; a sub-folder's adapter is no registration to drop
 * (SLORA_ERROR). With Redis the registration is written there, as
 * `slora catalog register` writes it (its event tells every engine), and
 * dropping removes the adapter's hash, whoever wrote it: the call sends
 * the write to the catalog's thread and answers SLORA_AGAIN (poll, call
 * again) until its answer, and the entry read back after it, are in.
 *
 * runtime_add: SLORA_OK (*out the entry); SLORA_DECLINED where dir does
 * not exist; SLORA_UNAVAILABLE where Redis does not answer; SLORA_ERROR
 * otherwise (refused: err says why). runtime_drop: SLORA_OK;
 * SLORA_DECLINED where the catalog has no such adapter; SLORA_ERROR,
 * SLORA_UNAVAILABLE as above.
 */
typedef int (*slora_catalog_check_pt)(void *data, const char *path,
    slora_err_t *err);

int slora_catalog_runtime_add(slora_catalog_t *cat, const char *name,
    const char *dir, int replace, uint64_t owner, slora_catalog_check_pt check,
    void *data, slora_catalog_adapter_t **out, slora_err_t *err);
int slora_catalog_runtime_drop(slora_catalog_t *cat, const char *name,
    uint64_t owner, slora_err_t *err);
/* Whether name is a registration of the directory source. */
int slora_catalog_runtime_has(slora_catalog_t *cat, const char *name);
/* owner's op ended without its answer (its client went away): with
 * Redis, its write's turn is given back at once (once answered, if
 * out), not held for the owner for seconds. */
void slora_catalog_runtime_abandon(slora_catalog_t *cat, uint64_t owner);

/*
 * The directory source, read again where the folder changed since the
 * last read (its mtime: a sub-folder added, removed or renamed into
 * place): a new sub-folder is an adapter; one gone is unknown from then
 * on; one replaced by another of its name gets a new version (its
 * inode and mtime), so that the owner drops its cached copies. Files
 * rewritten inside an adapter's folder are not seen: replace the folder.
 * Returns 1 when the adapters changed, 0 when not (or not a directory
 * catalog), SLORA_ERROR when the folder cannot be read (the entries
 * stay as they were).
 */
int slora_catalog_refresh(slora_catalog_t *cat, slora_err_t *err);

/* Counts one use of an adapter; counts go to slora:popular in batches. */
void slora_catalog_hit(slora_catalog_t *cat, slora_catalog_adapter_t *a);

/* Applies what the thread answered. Returns how many answers there were
 * (0: nothing changed). */
int32_t slora_catalog_poll(slora_catalog_t *cat);

/* The adapter entries found, sorted by name; the array stays valid until
 * the next call, poll or put. It is sorted again only after the found
 * adapters changed. */
int32_t slora_catalog_adapters(slora_catalog_t *cat,
    slora_catalog_adapter_t ***list);

const slora_catalog_hints_t *slora_catalog_hints(const slora_catalog_t *cat);

/* Splits "redis://host:port/db", "host:port" or "host" (*host: malloc). */
int slora_catalog_url(const char *url, char **host, int *port, int *db,
    slora_err_t *err);
void slora_catalog_stats(const slora_catalog_t *cat,
    slora_catalog_stats_t *st);


/*
 * Writing the catalog (slora_catalog_write.c: `slora catalog`, tests):
 * every change publishes its event on slora:events.
 */
typedef struct slora_catalog_writer_s  slora_catalog_writer_t;


typedef struct {
    const char          *name;
    const char          *default_adapter;   /* NULL: left as is */
    const char *const   *allowed;           /* [n_allowed]; replaces the
                                               set when n_allowed >= 0 */
    int32_t              n_allowed;         /* -1: left as is */
    int32_t              priority;          /* each: INT32_MIN leaves it
                                               as is */
    int32_t              ttft_slo_ms;
    int32_t              max_tokens;
    double               rate;              /* < 0: left as is */
} slora_catalog_tenant_spec_t;


/* One adapter of a listing. */
typedef struct {
    const char          *name;
    const char          *path;
    const char          *rank;
    const char          *alpha;
    const char          *targets;
    const char          *base_model;
    const char          *sha256;
    const char          *version;
} slora_catalog_entry_info_t;


typedef void (*slora_catalog_list_cb)(void *data,
    const slora_catalog_entry_info_t *info);


slora_catalog_writer_t *slora_catalog_writer_open(const char *url,
    int32_t timeout_ms, slora_err_t *err);
void slora_catalog_writer_close(slora_catalog_writer_t *w);

/* Registers the PEFT folder dir as adapter name: absolute path, rank,
 * alpha and targets from adapter_config.json, the sha256 of
 * adapter_model.safetensors; version is incremented. */
int slora_catalog_register(slora_catalog_writer_t *w, const char *name,
    const char *dir, const char *base_model, slora_err_t *err);

/* Every sub-folder of dir (valid names); *n: how many. A folder that is
 * not an adapter fails the whole call, naming it. */
int slora_catalog_register_dir(slora_catalog_writer_t *w, const char *dir,
    const char *base_model, int32_t *n, slora_err_t *err);

/* SLORA_DECLINED: no such adapter. */
int slora_catalog_remove(slora_catalog_writer_t *w, const char *name,
    slora_err_t *err);

int slora_catalog_set_tenant(slora_catalog_writer_t *w,
    const slora_catalog_tenant_spec_t *t, slora_err_t *err);

/* Calls cb for each adapter, sorted by name; returns the count. */
int32_t slora_catalog_list(slora_catalog_writer_t *w,
    slora_catalog_list_cb cb, void *data, slora_err_t *err);

/* Publishes text on slora:events ("*", "hints", ...). */
int slora_catalog_publish(slora_catalog_writer_t *w, const char *text,
    slora_err_t *err);


#endif /* SLORA_CATALOG_H */
