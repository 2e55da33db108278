/*
 * ngx_http_slora_store_int.h: the stored responses' records as they lie
 * in the store's zone (ngx_http_slora_store.c): the zone's tree and
 * queue, the tenants' shares, a record and its background stream's
 * events.
 *
 * The one idea: a record is one slab block, its header then its bytes
 * (its own messages, then its object), and a background stream's events
 * a block of their own that goes from record to record as the response
 * is replaced.
 */

#ifndef NGX_HTTP_SLORA_STORE_INT_H
#define NGX_HTTP_SLORA_STORE_INT_H


#include "ngx_http_slora_module.h"


#define NGX_HTTP_SLORA_STORE_ID  40     /* an id's bytes, at most */


typedef struct {
    ngx_rbtree_t               rbtree;
    ngx_rbtree_node_t          sentinel;
    ngx_queue_t                lru;           /* most recently used first */
    ngx_uint_t                 evictions;     /* records dropped for room */
    ngx_uint_t                 events_lost;   /* streams' events let go */
    ngx_uint_t                 gen;           /* puts so far: a record's
                                                 gen */
    ngx_rbtree_t               tenants;       /* tenant=: their shares */
    ngx_rbtree_node_t          tenants_sentinel;
} ngx_http_slora_store_sh_t;


typedef struct {
    ngx_http_slora_store_sh_t *sh;
    ngx_slab_pool_t           *shpool;
    size_t                     tenant_max;    /* tenant=SIZE; 0: none */
} ngx_http_slora_store_t;


/* A tenant's share of the store (tenant=): the bytes its records and
 * their events take. Made with its first record, dropped with its last
 * (not while a put or an append of its own holds it). */
typedef struct {
    ngx_str_node_t             sn;            /* key: ngx_crc32 of name */
    size_t                     bytes;
    ngx_uint_t                 held;
    u_char                     name[SLORA_QUEUE_TENANT_LEN];
} ngx_http_slora_store_tenant_t;


/* A background stream's events as sent (SSE frames), for GET
 * ?stream=true to replay and follow; they go on with the record each
 * time it is replaced. */
typedef struct {
    u_char                    *data;          /* a slab block of cap, or
                                                 NULL */
    size_t                     len;
    size_t                     cap;
    unsigned                   streamed:1;    /* stored with _STREAM */
    unsigned                   end:1;         /* its request ended */
    unsigned                   lost:1;        /* no room for them */
} ngx_http_slora_store_log_t;


typedef struct ngx_http_slora_stored_s  ngx_http_slora_stored_t;

/* A stored response: its own messages' bytes (a JSON array), then its
 * object's. */
struct ngx_http_slora_stored_s {
    ngx_rbtree_node_t          node;          /* key: ngx_crc32 of id */
    ngx_queue_t                queue;
    ngx_http_slora_stored_t   *prev;          /* the response it continues */
    ngx_uint_t                 refs;          /* responses continuing it */
    ngx_uint_t                 gone;          /* deleted: out of the tree,
                                                 kept for refs */
    ngx_uint_t                 state;         /* STORE_DONE, _RUNNING,
                                                 _CANCELLED, _FAILED */
    ngx_pid_t                  owner;         /* running: the worker
                                                 answering it */
    ngx_uint_t                 gen;           /* the put that made it: a
                                                 conversation's update
                                                 goes over the one read */
    ngx_http_slora_store_log_t  log;          /* a background stream's
                                                 events */
    u_char                     id[NGX_HTTP_SLORA_STORE_ID];
    size_t                     id_len;
    u_char                     tenant[SLORA_QUEUE_TENANT_LEN];
    size_t                     tenant_len;
    size_t                     conv_len;
    size_t                     obj_len;
    u_char                     data[1];
};


#endif /* NGX_HTTP_SLORA_STORE_INT_H */
