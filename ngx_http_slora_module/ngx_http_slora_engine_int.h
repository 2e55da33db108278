/*
 * ngx_http_slora_engine_int.h: what the engine process's files share:
 * its loop's context (ngx_http_slora_engine_proc.c runs the loop,
 * ngx_http_slora_engine_load.c loads the model and takes back what dead
 * processes left in the slots, ngx_http_slora_engine_registry.c keeps the
 * adapters registered at run time).
 */

#ifndef NGX_HTTP_SLORA_ENGINE_INT_H
#define NGX_HTTP_SLORA_ENGINE_INT_H


#include "ngx_http_slora_module.h"


#define NGX_HTTP_SLORA_LOAD_RETRY_NS  (1000 * 1000000LL)    /* doubling */
#define NGX_HTTP_SLORA_LOAD_RETRY_MAX (32000 * 1000000LL)


typedef struct {
    ngx_cycle_t                 *cycle;
    ngx_http_slora_main_conf_t  *smcf;
    slora_queue_t               *q;
    slora_engine_t              *engine;
    uint32_t                     epoch;
    uint32_t                     n_slots;
    uint32_t                     n_active;
    uint8_t                     *active;      /* [n_slots] */
    uint8_t                     *cancelled;   /* [n_slots] */
    uint8_t                     *dirty;       /* [n_slots] */
    uint8_t                     *pending;     /* [n_slots] ops waiting on
                                                 the catalog, generations
                                                 on their constraint's
                                                 compile */
    uint32_t                    *dirty_list;  /* [n_slots] */
    uint8_t                     *held;        /* [n_slots]: active or
                                                 pending, for recover */
    slora_recover_t              recover;     /* its marks [n_slots] */
    uint32_t                     n_dirty;
    uint32_t                     n_pending;
    int64_t                      stats_ns;    /* last published */
    int64_t                      refresh_ns;  /* the adapter folder's
                                                 last look */
    int64_t                      load_ns;     /* the last failed load's
                                                 end */
    int64_t                      load_wait_ns; /* until the next try */
    uint64_t                     keys_version; /* the engine's constraint
                                                 keys last published, its
                                                 slora_engine_schema_version
                                                 + 1 (0: none yet) */
    unsigned                     redis:1;
    unsigned                     refresh_failed:1;
    unsigned                     quitting:1;
    unsigned                     registry_hold:1;  /* registry=: a file
                                                 that did not read and
                                                 could not be set aside:
                                                 not written over */
} ngx_http_slora_engine_ctx_t;


/* ngx_http_slora_engine_load.c */
void ngx_http_slora_engine_load(ngx_http_slora_engine_ctx_t *ec);
void ngx_http_slora_engine_reap(ngx_http_slora_engine_ctx_t *ec);
void ngx_http_slora_engine_orphans(ngx_http_slora_engine_ctx_t *ec);

/* ngx_http_slora_engine_registry.c */
void ngx_http_slora_engine_restore(ngx_http_slora_engine_ctx_t *ec);
int ngx_http_slora_engine_register(ngx_http_slora_engine_ctx_t *ec,
    uint32_t i, slora_slot_t *s, const u_char *buf, slora_err_t *err);
int ngx_http_slora_engine_deregister(ngx_http_slora_engine_ctx_t *ec,
    uint32_t i, slora_slot_t *s, slora_err_t *err);
void ngx_http_slora_engine_abandon(ngx_http_slora_engine_ctx_t *ec,
    uint32_t i, slora_slot_t *s);

/* ngx_http_slora_engine_proc.c */
void ngx_http_slora_engine_mark(ngx_http_slora_engine_ctx_t *ec, uint32_t i);
void ngx_http_slora_engine_wake(ngx_http_slora_engine_ctx_t *ec);
void ngx_http_slora_engine_stats(ngx_http_slora_engine_ctx_t *ec);


#endif /* NGX_HTTP_SLORA_ENGINE_INT_H */
