/*
 * ngx_http_slora_store.c: the Responses API's stored responses
 * (`slora_responses_store SIZE;`): a shared-memory zone every worker
 * reads and writes, holding each stored response's object (for GET
 * .../responses/{id}) and its conversation (the chat messages that led
 * to it and its answer, as a JSON array), which a later request's
 * previous_response_id continues and .../input_items lists. A response
 * belongs to its tenant: another tenant finds nothing, as for an id
 * never stored.
 *
 * The one idea: a bounded LRU cache, not a database. Records live in a
 * slab pool, found by an rbtree keyed on the id's CRC32 (the id breaks
 * ties) and ordered in a queue by last use; when the pool is full the
 * least recently used records are dropped until the new one fits, so a
 * conversation that is still being continued stays and an abandoned one
 * goes. A record holds only its own messages (its input and its answer)
 * and points to the response it continues, so a chain of N turns takes
 * N turns' bytes, not N^2 / 2: its conversation is the chain's messages
 * joined, oldest first, and reading it touches the whole chain. A
 * record others continue is never dropped for room (its continuations
 * go first), and one deleted while others continue it leaves the tree
 * but keeps its messages until they go. With tenant=SIZE each tenant's
 * bytes are counted (a second rbtree, by the tenant's name) and a
 * tenant over its share drops its own least recently used records
 * first, so that no tenant's flood pushes out another's conversations;
 * a reload keeps the store, and may change that share but not turn it
 * on or off (the bytes are counted only under it).
 * Every operation holds the zone's mutex only to copy bytes in or out;
 * nothing under it waits for anything else.
 *
 * A background response (ngx_http_slora_resp_detach) is stored running
 * when it is accepted, its object "queued", and replaced as it goes and
 * when it ends, each time only if it is still running: a cancel (POST
 * .../cancel: the object "cancelled" at once) or a delete leaves
 * nothing for the answering worker to overwrite, and its next tick sees
 * that and lets the engine go. A running record is not dropped for
 * room, nor continued by previous_response_id. One whose worker died
 * (killed, or crashed) is found so when it is next read, and stored
 * "failed" then.
 *
 * A conversation (the Conversations API, ngx_http_slora_conv.c) is a
 * record of its own kind in the same cache: its messages and its object,
 * no chain, found only as a conversation. It changes by replacement:
 * each put numbers its record (gen), and an update goes over the record
 * it read or not at all, so that two requests adding to one
 * conversation at once cannot lose either's items.
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_store_int.h"


static ngx_int_t ngx_http_slora_store_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_slora_store_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_slora_stored_t *ngx_http_slora_store_find(
    ngx_http_slora_store_t *st, const u_char *id, size_t len,
    ngx_str_t *tenant);
static void ngx_http_slora_store_drop(ngx_http_slora_store_t *st,
    ngx_http_slora_stored_t *rec);
static void ngx_http_slora_store_unlink(ngx_http_slora_store_t *st,
    ngx_http_slora_stored_t *rec);
static ngx_int_t ngx_http_slora_store_evict(ngx_http_slora_store_t *st,
    ngx_http_slora_store_tenant_t *t);
static ngx_http_slora_store_tenant_t *ngx_http_slora_store_tenant(
    ngx_http_slora_store_t *st, u_char *name, size_t len, ngx_uint_t make);
static ngx_int_t ngx_http_slora_store_room(ngx_http_slora_store_t *st,
    ngx_http_slora_store_tenant_t *t, size_t need);
static void ngx_http_slora_store_let_go(ngx_http_slora_store_t *st,
    ngx_http_slora_store_tenant_t *t);
static size_t ngx_http_slora_store_size(ngx_http_slora_stored_t *rec);
static ngx_uint_t ngx_http_slora_store_orphan(ngx_http_slora_stored_t *rec);
static ngx_int_t ngx_http_slora_store_read(ngx_http_request_t *r,
    const u_char *id, size_t len, ngx_str_t *tenant, ngx_uint_t conversation,
    ngx_str_t *conv, ngx_str_t *obj, ngx_uint_t *gen, ngx_uint_t drop);
static ngx_int_t ngx_http_slora_store_copy(ngx_http_request_t *r,
    ngx_http_slora_store_t *st, ngx_http_slora_stored_t *rec,
    ngx_str_t *conv, ngx_str_t *obj);
static ngx_int_t ngx_http_slora_store_obj(ngx_http_request_t *r,
    ngx_http_slora_stored_t *rec, ngx_str_t *obj);
static ngx_int_t ngx_http_slora_store_conv(ngx_http_request_t *r,
    ngx_http_slora_store_t *st, ngx_http_slora_stored_t *rec,
    ngx_str_t *conv);
static ngx_http_slora_stored_t *ngx_http_slora_store_find_live(
    ngx_http_request_t *r, ngx_http_slora_store_t *st, const u_char *id,
    size_t len, ngx_str_t *tenant);
static ngx_int_t ngx_http_slora_store_restate(ngx_http_request_t *r,
    ngx_http_slora_store_t *st, ngx_http_slora_stored_t **recp,
    const char *status, const char *error, ngx_uint_t state);
static ngx_http_slora_store_t *ngx_http_slora_store_of(
    ngx_http_request_t *r);


/* slora_responses_store SIZE; (http) */
char *
ngx_http_slora_store_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_slora_main_conf_t *smcf = conf;

    ssize_t                  size, tenant_max;
    ngx_str_t               *value, name, arg;
    ngx_http_slora_store_t  *st;

    if (smcf->store != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_responses_store \"%V\": a size of %uz"
                           " or more (k, m)", &value[1], 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    tenant_max = 0;

    if (cf->args->nelts == 3) {
        arg = value[2];

        if (arg.len <= sizeof("tenant=") - 1
            || ngx_strncmp(arg.data, "tenant=", sizeof("tenant=") - 1) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "slora_responses_store: \"%V\": tenant=SIZE"
                               " (each tenant's share at most) is the one"
                               " parameter", &arg);
            return NGX_CONF_ERROR;
        }

        arg.data += sizeof("tenant=") - 1;
        arg.len -= sizeof("tenant=") - 1;
        tenant_max = ngx_parse_size(&arg);

        if (tenant_max == NGX_ERROR || tenant_max < (ssize_t) ngx_pagesize
            || tenant_max > size)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "slora_responses_store tenant=\"%V\": a"
                               " size from %uz to the store's (k, m)", &arg,
                               ngx_pagesize);
            return NGX_CONF_ERROR;
        }
    }

    st = ngx_pcalloc(cf->pool, sizeof(ngx_http_slora_store_t));
    if (st == NULL) {
        return NGX_CONF_ERROR;
    }

    st->tenant_max = tenant_max;

    ngx_str_set(&name, "slora_responses");

    smcf->store = ngx_shared_memory_add(cf, &name, size,
                                        &ngx_http_slora_module);
    if (smcf->store == NULL) {
        return NGX_CONF_ERROR;
    }

    if (smcf->store->data) {
        return "is duplicate";
    }

    smcf->store->init = ngx_http_slora_store_init_zone;
    smcf->store->data = st;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_slora_store_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_slora_store_t  *old = data;

    size_t                   len;
    ngx_http_slora_store_t  *st;

    st = shm_zone->data;

    if (old) {
        if ((st->tenant_max == 0) != (old->tenant_max == 0)) {
            /* the tenants' bytes are counted only under tenant=: off and
             * on again would leave the counts of records gone meanwhile */
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "slora_responses_store: tenant= is not turned on"
                          " or off by a reload (each tenant's bytes are"
                          " counted only under it); restart nginx, or give"
                          " the store another size (a new, empty store)");
            return NGX_ERROR;
        }

        st->sh = old->sh;
        st->shpool = old->shpool;
        return NGX_OK;
    }

    st->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        st->sh = st->shpool->data;
        return NGX_OK;
    }

    st->sh = ngx_slab_alloc(st->shpool, sizeof(ngx_http_slora_store_sh_t));
    if (st->sh == NULL) {
        return NGX_ERROR;
    }

    st->shpool->data = st->sh;

    ngx_rbtree_init(&st->sh->rbtree, &st->sh->sentinel,
                    ngx_http_slora_store_insert);
    ngx_queue_init(&st->sh->lru);
    ngx_rbtree_init(&st->sh->tenants, &st->sh->tenants_sentinel,
                    ngx_str_rbtree_insert_value);

    len = sizeof(" in slora_responses_store \"\"") + shm_zone->shm.name.len;

    st->shpool->log_ctx = ngx_slab_alloc(st->shpool, len);
    if (st->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(st->shpool->log_ctx, " in slora_responses_store \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full pool is not an error here: the oldest records make room */
    st->shpool->log_nomem = 0;

    return NGX_OK;
}


/* Copies the record of id the tenant may see: its conversation (the
 * chain's messages, oldest first) into *conv and its object into *obj
 * (either may be NULL), from r's pool; the chain becomes the most
 * recently used. NGX_DECLINED: none. */
ngx_int_t
ngx_http_slora_store_get(ngx_http_request_t *r, const u_char *id,
    size_t len, ngx_str_t *tenant, ngx_str_t *conv, ngx_str_t *obj)
{
    return ngx_http_slora_store_read(r, id, len, tenant, 0, conv, obj, NULL,
                                     0);
}


/*
 * The conversation id (ngx_http_slora_conv.c) the tenant may see: its
 * messages and its object copied into conv and obj (either may be NULL),
 * from r's pool, and the put that made its record in *gen; with drop it
 * is deleted. NGX_DECLINED: none.
 */
ngx_int_t
ngx_http_slora_store_conversation(ngx_http_request_t *r, const u_char *id,
    size_t len, ngx_str_t *tenant, ngx_str_t *conv, ngx_str_t *obj,
    ngx_uint_t *gen, ngx_uint_t drop)
{
    return ngx_http_slora_store_read(r, id, len, tenant, 1, conv, obj, gen,
                                     drop);
}


/* The two above: a response (conversation 0: found as
 * ngx_http_slora_store_find_live finds it) or a conversation, copied out
 * under the mutex. */
static ngx_int_t
ngx_http_slora_store_read(ngx_http_request_t *r, const u_char *id,
    size_t len, ngx_str_t *tenant, ngx_uint_t conversation, ngx_str_t *conv,
    ngx_str_t *obj, ngx_uint_t *gen, ngx_uint_t drop)
{
    ngx_int_t                 rc;
    ngx_http_slora_store_t   *st;
    ngx_http_slora_stored_t  *rec;

    st = ngx_http_slora_store_of(r);
    if (st == NULL) {
        return NGX_DECLINED;
    }

    rc = NGX_DECLINED;

    ngx_shmtx_lock(&st->shpool->mutex);

    if (conversation) {
        rec = ngx_http_slora_store_find(st, id, len, tenant);
        rec = rec != NULL && rec->state == NGX_HTTP_SLORA_STORE_CONV
              ? rec : NULL;

    } else {
        rec = ngx_http_slora_store_find_live(r, st, id, len, tenant);
    }

    if (rec != NULL) {
        rc = ngx_http_slora_store_copy(r, st, rec, conv, obj);

        if (gen != NULL) {
            *gen = rec->gen;
        }

        if (drop) {
            ngx_http_slora_store_unlink(st, rec);
        }
    }

    ngx_shmtx_unlock(&st->shpool->mutex);

    return rc;
}


/* Under the mutex: rec's conversation (its chain's messages) and its
 * object copied into conv and obj (either may be NULL), from r's pool;
 * rec (with conv, its chain) made the most recently used. */
static ngx_int_t
ngx_http_slora_store_copy(ngx_http_request_t *r, ngx_http_slora_store_t *st,
    ngx_http_slora_stored_t *rec, ngx_str_t *conv, ngx_str_t *obj)
{
    ngx_int_t  rc;

    if (conv != NULL) {
        rc = ngx_http_slora_store_conv(r, st, rec, conv);

    } else {
        rc = NGX_OK;
        ngx_queue_remove(&rec->queue);
        ngx_queue_insert_head(&st->sh->lru, &rec->queue);
    }

    if (obj != NULL && rc == NGX_OK) {
        rc = ngx_http_slora_store_obj(r, rec, obj);
    }

    return rc;
}


/* Under the mutex: rec's object copied into *obj, from r's pool. */
static ngx_int_t
ngx_http_slora_store_obj(ngx_http_request_t *r, ngx_http_slora_stored_t *rec,
    ngx_str_t *obj)
{
    obj->len = rec->obj_len;
    obj->data = ngx_pnalloc(r->pool, rec->obj_len);

    if (obj->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(obj->data, rec->data + rec->conv_len, rec->obj_len);

    return NGX_OK;
}


/* Under the mutex: the chain's messages of rec joined into one array,
 * oldest first; the chain made the most recently used, rec the last of
 * it, so that the first a drop for room finds of it is the one nothing
 * continues (the others follow as each becomes so). */
static ngx_int_t
ngx_http_slora_store_conv(ngx_http_request_t *r, ngx_http_slora_store_t *st,
    ngx_http_slora_stored_t *rec, ngx_str_t *conv)
{
    u_char                   *p;
    size_t                    size;
    ngx_uint_t                n, i;
    ngx_http_slora_stored_t  *c, **chain;

    n = 0;
    size = sizeof("[]") - 1;

    for (c = rec; c != NULL; c = c->prev) {
        n++;
        /* its messages without the brackets, and a comma */
        size += c->conv_len - 2 + 1;
    }

    chain = ngx_palloc(r->pool, n * sizeof(ngx_http_slora_stored_t *));
    conv->data = ngx_pnalloc(r->pool, size);

    if (chain == NULL || conv->data == NULL) {
        return NGX_ERROR;
    }

    i = n;

    for (c = rec; c != NULL; c = c->prev) {
        chain[--i] = c;
        ngx_queue_remove(&c->queue);
        ngx_queue_insert_head(&st->sh->lru, &c->queue);
    }

    p = conv->data;
    *p++ = '[';

    for (i = 0; i < n; i++) {
        c = chain[i];

        if (c->conv_len > 2) {
            if (p > conv->data + 1) {
                *p++ = ',';
            }

            p = ngx_cpymem(p, c->data + 1, c->conv_len - 2);
        }
    }

    *p++ = ']';
    conv->len = p - conv->data;

    return NGX_OK;
}


/*
 * Stores a response (replacing one of the same id): conv its own
 * messages (a JSON array), continuing prev's (NULL or empty: none),
 * dropping the least recently used responses no other continues until it
 * fits; how: NGX_HTTP_SLORA_STORE_DONE, _RUNNING (with _STREAM: a
 * background stream, its events kept) or _FAILED, any with _UPDATE (the
 * record's events go on with it); or _CONV, a conversation, with _UPDATE
 * only over its record as read (gen, ngx_http_slora_store_conversation).
 * NGX_DECLINED: it cannot fit (one of more than half the zone is not
 * tried: it would empty the store), or prev is no longer kept (an
 * update goes on continuing what its record continues); an update
 * that cannot fit leaves the record it would replace (a response's
 * stored "failed" with the code store_full: it will not be answered).
 * NGX_ABORT (an update): the record is no longer running (cancelled), or
 * no longer kept (deleted); NGX_BUSY: the conversation changed since it
 * was read.
 */
ngx_int_t
ngx_http_slora_store_put(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *tenant, ngx_str_t *prev, ngx_str_t *conv, ngx_str_t *obj,
    ngx_uint_t how, ngx_uint_t gen)
{
    size_t                          size, need;
    ngx_uint_t                      big;
    ngx_http_slora_store_t         *st;
    ngx_http_slora_stored_t        *rec, *parent, *old;
    ngx_http_slora_store_log_t      log;
    ngx_http_slora_store_tenant_t  *t;

    st = ngx_http_slora_store_of(r);

    if (st == NULL || id->len > NGX_HTTP_SLORA_STORE_ID
        || tenant->len > SLORA_QUEUE_TENANT_LEN)
    {
        return NGX_DECLINED;
    }

    size = offsetof(ngx_http_slora_stored_t, data) + conv->len + obj->len;

    /* dropping every other response would not make room; a background
     * answer's record is then stored "failed" (below), not left running */
    big = size > (size_t) (st->shpool->end - st->shpool->start) / 2;

    if (big
        && (how & (NGX_HTTP_SLORA_STORE_CONV|NGX_HTTP_SLORA_STORE_UPDATE))
           != NGX_HTTP_SLORA_STORE_UPDATE)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "slora: %s %V (%uz bytes) does not fit"
                      " slora_responses_store (half of it at most)",
                      (how & NGX_HTTP_SLORA_STORE_CONV) ? "conversation"
                                                        : "response",
                      id, size);
        return NGX_DECLINED;
    }

    ngx_shmtx_lock(&st->shpool->mutex);

    rec = ngx_http_slora_store_find(st, id->data, id->len, tenant);

    if ((how & NGX_HTTP_SLORA_STORE_UPDATE)
        && (rec == NULL
            || rec->state != ((how & NGX_HTTP_SLORA_STORE_CONV)
                              ? NGX_HTTP_SLORA_STORE_CONV
                              : NGX_HTTP_SLORA_STORE_RUNNING)))
    {
        /* cancelled or deleted while it was answered */
        ngx_shmtx_unlock(&st->shpool->mutex);
        return NGX_ABORT;
    }

    if ((how & NGX_HTTP_SLORA_STORE_CONV) && rec != NULL && rec->gen != gen)
    {
        /* a conversation changed since it was read: read it again */
        ngx_shmtx_unlock(&st->shpool->mutex);
        return NGX_BUSY;
    }

    parent = NULL;

    if ((how & NGX_HTTP_SLORA_STORE_UPDATE)
        && !(how & NGX_HTTP_SLORA_STORE_CONV))
    {
        /* a background answer continues what its record continues, kept
         * for it even where it was deleted meanwhile */
        parent = rec->prev;

    } else if (prev != NULL && prev->len) {
        parent = ngx_http_slora_store_find(st, prev->data, prev->len,
                                           tenant);

        if (parent == NULL) {
            /* dropped or deleted while this one was answered */
            ngx_shmtx_unlock(&st->shpool->mutex);
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "slora: response %V not stored: the response it"
                          " continues, %V, is no longer kept", id, prev);
            return NGX_DECLINED;
        }
    }

    if (parent != NULL) {
        /* not to be dropped for this one's room */
        parent->refs++;
    }

    ngx_memzero(&log, sizeof(ngx_http_slora_store_log_t));
    old = NULL;

    if (rec != NULL
        && (how & (NGX_HTTP_SLORA_STORE_CONV|NGX_HTTP_SLORA_STORE_UPDATE)))
    {
        /* a conversation, or a background answer's record, stays (not
         * dropped for room) until its new record is in */
        old = rec;
        old->refs++;

    } else if (rec != NULL) {
        ngx_http_slora_store_unlink(st, rec);
    }

    /* tenant=: within the tenant's share, its own oldest dropped first
     * (the old conversation's bytes counted as going) */
    t = NULL;
    rec = NULL;
    need = size - (old != NULL ? ngx_min(size, ngx_http_slora_store_size(old))
                               : 0);

    if (st->tenant_max) {
        t = ngx_http_slora_store_tenant(st, tenant->data, tenant->len, 1);
    }

    if (!big
        && (st->tenant_max == 0
            || (t != NULL
                && ngx_http_slora_store_room(st, t, need) == NGX_OK)))
    {
        for ( ;; ) {
            rec = ngx_slab_alloc_locked(st->shpool, size);

            if (rec != NULL
                || ngx_http_slora_store_evict(st, NULL) != NGX_OK)
            {
                break;
            }
        }
    }

    if (old != NULL) {
        old->refs--;
    }

    if (rec == NULL) {
        if (parent != NULL && --parent->refs == 0 && parent->gone) {
            ngx_http_slora_store_drop(st, parent);
        }

        if (old != NULL && !(how & NGX_HTTP_SLORA_STORE_CONV)
            && ngx_http_slora_store_restate(r, st, &old, "failed",
                                            "{\"code\":\"store_full\","
                                            "\"message\":\"the answer did"
                                            " not fit the response store\"}",
                                            NGX_HTTP_SLORA_STORE_FAILED)
               != NGX_OK
            && old != NULL)
        {
            /* not even room to say so */
            ngx_http_slora_store_unlink(st, old);
        }

        if (t != NULL) {
            ngx_http_slora_store_let_go(st, t);
        }

        ngx_shmtx_unlock(&st->shpool->mutex);
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "slora: %s %V (%uz bytes) does not fit"
                      " slora_responses_store%s",
                      (how & NGX_HTTP_SLORA_STORE_CONV) ? "conversation"
                                                        : "response",
                      id, size,
                      big ? " (half of it at most)"
                      : st->tenant_max ? " within its tenant's share" : "");
        return NGX_DECLINED;
    }

    rec->node.key = ngx_crc32_short(id->data, id->len);
    rec->prev = parent;
    rec->refs = 0;
    rec->gone = 0;
    rec->state = how & ~(NGX_HTTP_SLORA_STORE_UPDATE
                         |NGX_HTTP_SLORA_STORE_STREAM);
    rec->owner = ngx_pid;
    rec->gen = ++st->sh->gen;

    if (old != NULL && !(how & NGX_HTTP_SLORA_STORE_CONV)) {
        /* a background answer's events go on with its new record
         * (their bytes still its tenant's) */
        log = old->log;
        old->log.data = NULL;
        old->log.cap = 0;
    }

    log.streamed |= (how & NGX_HTTP_SLORA_STORE_STREAM) != 0;
    rec->log = log;
    ngx_memcpy(rec->id, id->data, id->len);
    rec->id_len = id->len;
    /* no tenant has no data: memcpy's source must not be NULL */
    if (tenant->len) {
        ngx_memcpy(rec->tenant, tenant->data, tenant->len);
    }

    rec->tenant_len = tenant->len;
    rec->conv_len = conv->len;
    rec->obj_len = obj->len;
    ngx_memcpy(rec->data, conv->data, conv->len);
    ngx_memcpy(rec->data + conv->len, obj->data, obj->len);

    if (old != NULL) {
        ngx_http_slora_store_unlink(st, old);
    }

    ngx_rbtree_insert(&st->sh->rbtree, &rec->node);
    ngx_queue_insert_head(&st->sh->lru, &rec->queue);

    if (t != NULL) {
        /* its events' bytes were the tenant's already */
        t->bytes += size;
        ngx_http_slora_store_let_go(st, t);
    }

    ngx_shmtx_unlock(&st->shpool->mutex);

    return NGX_OK;
}


/* The state of the record of id the tenant may see
 * (NGX_HTTP_SLORA_STORE_DONE, _RUNNING, _CANCELLED or _FAILED), and with
 * drop the
 * record deleted; NGX_DECLINED: none (never stored, dropped or
 * deleted). */
ngx_int_t
ngx_http_slora_store_state(ngx_http_request_t *r, const u_char *id,
    size_t len, ngx_str_t *tenant, ngx_uint_t drop)
{
    ngx_int_t                 rc;
    ngx_http_slora_store_t   *st;
    ngx_http_slora_stored_t  *rec;

    st = ngx_http_slora_store_of(r);
    if (st == NULL) {
        return NGX_DECLINED;
    }

    ngx_shmtx_lock(&st->shpool->mutex);

    rec = ngx_http_slora_store_find_live(r, st, id, len, tenant);
    rc = rec != NULL ? (ngx_int_t) rec->state : NGX_DECLINED;

    if (rec != NULL && drop) {
        ngx_http_slora_store_unlink(st, rec);
    }

    ngx_shmtx_unlock(&st->shpool->mutex);

    return rc;
}


/*
 * A background stream's events (out's bytes, before they are sent)
 * added to its record's, and with end the record told that no more will
 * come (out may then be NULL). Only by the answering worker; nothing is
 * added to a cancelled record. Where the store has no room for them they
 * are let go (lost: a GET ?stream=true says so) and the answer goes on.
 * NGX_DECLINED: not such a record (any more).
 */
ngx_int_t
ngx_http_slora_store_append(ngx_http_request_t *r, const u_char *id,
    size_t len, ngx_str_t *tenant, ngx_chain_t *out, ngx_uint_t end)
{
    u_char                         *data;
    size_t                          n, cap;
    ngx_uint_t                      lost;
    ngx_chain_t                    *cl;
    ngx_http_slora_store_t         *st;
    ngx_http_slora_stored_t        *rec;
    ngx_http_slora_store_tenant_t  *t;

    st = ngx_http_slora_store_of(r);
    if (st == NULL) {
        return NGX_DECLINED;
    }

    n = 0;

    for (cl = out; cl; cl = cl->next) {
        n += cl->buf->last - cl->buf->pos;
    }

    lost = 0;

    ngx_shmtx_lock(&st->shpool->mutex);

    rec = ngx_http_slora_store_find(st, id, len, tenant);

    if (rec == NULL || !rec->log.streamed || rec->log.end
        || rec->owner != ngx_pid)
    {
        ngx_shmtx_unlock(&st->shpool->mutex);
        return NGX_DECLINED;
    }

    if (rec->state == NGX_HTTP_SLORA_STORE_CANCELLED) {
        /* what is sent after a cancel, before the tick sees it, is not
         * the answer's */
        n = 0;
        out = NULL;
    }

    if (n && !rec->log.lost && rec->log.len + n > rec->log.cap) {
        cap = ngx_max(2 * rec->log.cap, rec->log.len + n);
        cap = ngx_max(cap, ngx_pagesize);
        data = NULL;

        /* the tenant's share (tenant=), held while its room is made */
        t = st->tenant_max
            ? ngx_http_slora_store_tenant(st, rec->tenant, rec->tenant_len,
                                          1)
            : NULL;

        /* not more than a record may take; rec itself not dropped for
         * the room (an ended one could be) */
        rec->refs++;

        if (cap <= (size_t) (st->shpool->end - st->shpool->start) / 2
            && (t == NULL
                || ngx_http_slora_store_room(st, t, cap - rec->log.cap)
                   == NGX_OK))
        {
            for ( ;; ) {
                data = ngx_slab_alloc_locked(st->shpool, cap);

                if (data != NULL
                    || ngx_http_slora_store_evict(st, NULL) != NGX_OK)
                {
                    break;
                }
            }
        }

        rec->refs--;

        if (data != NULL && rec->log.len) {
            ngx_memcpy(data, rec->log.data, rec->log.len);
        }

        if (rec->log.data != NULL) {
            ngx_slab_free_locked(st->shpool, rec->log.data);
        }

        if (t != NULL) {
            t->bytes = t->bytes - ngx_min(t->bytes, rec->log.cap)
                       + (data != NULL ? cap : 0);
            ngx_http_slora_store_let_go(st, t);
        }

        rec->log.data = data;
        rec->log.cap = data != NULL ? cap : 0;

        if (data == NULL) {
            rec->log.len = 0;
            rec->log.lost = 1;
            st->sh->events_lost++;
            lost = 1;
        }
    }

    if (!rec->log.lost) {
        for (cl = out; cl; cl = cl->next) {
            n = cl->buf->last - cl->buf->pos;

            if (n) {
                ngx_memcpy(rec->log.data + rec->log.len, cl->buf->pos, n);
                rec->log.len += n;
            }
        }
    }

    if (end) {
        rec->log.end = 1;
    }

    ngx_shmtx_unlock(&st->shpool->mutex);

    if (lost) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "slora: the events of background response %*s are"
                      " no longer kept: slora_responses_store has no room"
                      " for them (the answer goes on)", len, id);
    }

    return NGX_OK;
}


/*
 * The events of the record of id the tenant may see, past off: at most
 * cap bytes of them copied to dst (none where off is at their end or
 * past it; ev->more, the bytes left past those), and what the record
 * says of them. NGX_DECLINED: none (never stored, dropped or deleted).
 */
ngx_int_t
ngx_http_slora_store_events(ngx_http_request_t *r, const u_char *id,
    size_t len, ngx_str_t *tenant, size_t off, u_char *dst, size_t cap,
    ngx_http_slora_store_events_t *ev)
{
    ngx_int_t                 rc;
    ngx_http_slora_store_t   *st;
    ngx_http_slora_stored_t  *rec;

    ngx_memzero(ev, sizeof(ngx_http_slora_store_events_t));

    st = ngx_http_slora_store_of(r);
    if (st == NULL) {
        return NGX_DECLINED;
    }

    rc = NGX_OK;

    ngx_shmtx_lock(&st->shpool->mutex);

    rec = ngx_http_slora_store_find_live(r, st, id, len, tenant);

    if (rec == NULL) {
        rc = NGX_DECLINED;

    } else {
        ev->state = rec->state;
        ev->streamed = rec->log.streamed;
        ev->lost = rec->log.lost;
        /* a worker that died sends no more either */
        ev->ended = rec->log.end || ngx_http_slora_store_orphan(rec);

        if (off < rec->log.len) {
            ev->bytes.len = ngx_min(rec->log.len - off, cap);
            ev->bytes.data = dst;
            ev->more = rec->log.len - off - ev->bytes.len;

            if (ev->bytes.len) {
                ngx_memcpy(dst, rec->log.data + off, ev->bytes.len);
            }
        }
    }

    ngx_shmtx_unlock(&st->shpool->mutex);

    return rc;
}


/*
 * A background response being answered cancelled: its record's object
 * says "cancelled" (the answering worker's next tick lets its engine
 * request go, and stores nothing over it); *obj the object after, from
 * r's pool. The record's state after (_CANCELLED for one cancelled
 * already; _DONE or _FAILED for one that ended, left as it was);
 * NGX_DECLINED: none.
 */
ngx_int_t
ngx_http_slora_store_cancel(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *tenant, ngx_str_t *obj)
{
    ngx_int_t                 rc;
    ngx_http_slora_store_t   *st;
    ngx_http_slora_stored_t  *rec;

    st = ngx_http_slora_store_of(r);
    if (st == NULL) {
        return NGX_DECLINED;
    }

    rc = NGX_DECLINED;
    ngx_str_null(obj);

    ngx_shmtx_lock(&st->shpool->mutex);

    rec = ngx_http_slora_store_find_live(r, st, id->data, id->len, tenant);

    if (rec != NULL && rec->state == NGX_HTTP_SLORA_STORE_RUNNING
        && ngx_http_slora_store_restate(r, st, &rec, "cancelled", NULL,
                                        NGX_HTTP_SLORA_STORE_CANCELLED)
           != NGX_OK)
    {
        rec = NULL;
        rc = NGX_ERROR;
    }

    if (rec != NULL) {
        rc = ngx_http_slora_store_obj(r, rec, obj) == NGX_OK
             ? (ngx_int_t) rec->state : NGX_ERROR;
    }

    ngx_shmtx_unlock(&st->shpool->mutex);

    return rc;
}


/* Under the mutex: the record of id the tenant may see, as find's; a
 * running one whose worker died (killed, or crashed: nothing else ends
 * it) is first stored "failed", as a foreground answer's request would
 * have ended. */
static ngx_http_slora_stored_t *
ngx_http_slora_store_find_live(ngx_http_request_t *r,
    ngx_http_slora_store_t *st, const u_char *id, size_t len,
    ngx_str_t *tenant)
{
    ngx_http_slora_stored_t  *rec;

    rec = ngx_http_slora_store_find(st, id, len, tenant);

    if (rec != NULL && rec->state == NGX_HTTP_SLORA_STORE_CONV) {
        /* a conversation is not a response */
        return NULL;
    }

    if (rec == NULL || rec->state != NGX_HTTP_SLORA_STORE_RUNNING
        || !ngx_http_slora_store_orphan(rec))
    {
        return rec;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "slora: background response %*s failed: the worker %P"
                  " answering it died", rec->id_len, rec->id, rec->owner);

    /* without the memory to say so it stays as it was, found */
    (void) ngx_http_slora_store_restate(r, st, &rec, "failed",
                                        "{\"code\":\"worker_lost\","
                                        "\"message\":\"the worker"
                                        " answering it died before its"
                                        " answer\"}",
                                        NGX_HTTP_SLORA_STORE_FAILED);

    return rec;
}


/*
 * Under the mutex: *recp with its object's status (and the error, a JSON
 * object, where not NULL) replaced, in state: a new record in its place
 * in the tree, the queue and its chain (*recp then the new one), the
 * least recently used others dropped for its room, or where that leaves
 * none beside it (a record near half the store: two of it do not fit),
 * in the room the old one leaves. NGX_DECLINED: no room even so, or no
 * memory; *recp as it was, in a block of its own again where it made way
 * (NULL where that was not had back, which the room it left rules out).
 */
static ngx_int_t
ngx_http_slora_store_restate(ngx_http_request_t *r,
    ngx_http_slora_store_t *st, ngx_http_slora_stored_t **recp,
    const char *status, const char *error, ngx_uint_t state)
{
    size_t                          head, size;
    ngx_str_t                       obj;
    ngx_uint_t                      out;
    ngx_http_slora_stored_t        *rec, *copy;
    ngx_http_slora_store_tenant_t  *t;

    rec = *recp;

    obj.len = rec->obj_len;
    obj.data = rec->data + rec->conv_len;

    if (ngx_http_slora_resp_restatus(r, &obj, status, error) != NGX_OK) {
        return NGX_DECLINED;
    }

    head = offsetof(ngx_http_slora_stored_t, data) + rec->conv_len;
    size = head + rec->obj_len;
    out = 0;

    /* a full store is the usual one: others make room, not rec */
    rec->refs++;

    for ( ;; ) {
        copy = ngx_slab_alloc_locked(st->shpool, head + obj.len);

        if (copy != NULL || ngx_http_slora_store_evict(st, NULL) != NGX_OK) {
            break;
        }
    }

    rec->refs--;

    if (copy == NULL && rec->refs == 0) {
        /* no room beside it: rec makes way, kept meanwhile in r's pool
         * (nothing continues it: only the tree and the queue point to
         * it, its events and the one it continues go with the copy) */
        copy = ngx_pnalloc(r->pool, size);
        if (copy == NULL) {
            return NGX_DECLINED;
        }

        ngx_memcpy(copy, rec, size);
        ngx_rbtree_delete(&st->sh->rbtree, &rec->node);
        ngx_queue_remove(&rec->queue);
        ngx_slab_free_locked(st->shpool, rec);
        rec = copy;
        out = 1;

        copy = ngx_slab_alloc_locked(st->shpool, head + obj.len);

        if (copy == NULL) {
            /* as it was, in the room it left */
            copy = ngx_slab_alloc_locked(st->shpool, size);
            *recp = copy;

            if (copy != NULL) {
                ngx_memcpy(copy, rec, size);
                ngx_rbtree_insert(&st->sh->rbtree, &copy->node);
                ngx_queue_insert_head(&st->sh->lru, &copy->queue);
            }

            return NGX_DECLINED;
        }
    }

    if (copy == NULL) {
        return NGX_DECLINED;
    }

    ngx_memcpy(copy, rec, head);
    ngx_memcpy(copy->data + copy->conv_len, obj.data, obj.len);
    copy->obj_len = obj.len;
    copy->state = state;

    t = st->tenant_max
        ? ngx_http_slora_store_tenant(st, rec->tenant, rec->tenant_len, 0)
        : NULL;

    if (t != NULL) {
        /* no room check: a status's few bytes over the share */
        t->bytes = t->bytes + ngx_http_slora_store_size(copy)
                   - ngx_min(t->bytes, ngx_http_slora_store_size(rec));
    }

    if (!out) {
        ngx_rbtree_delete(&st->sh->rbtree, &rec->node);
        ngx_queue_remove(&rec->queue);
        ngx_slab_free_locked(st->shpool, rec);
    }

    ngx_rbtree_insert(&st->sh->rbtree, &copy->node);
    ngx_queue_insert_head(&st->sh->lru, &copy->queue);
    *recp = copy;

    return NGX_OK;
}


/* The parser's lookup of previous_response_id or conversation (data:
 * the request): the conversation of a response, or the conversation,
 * the request's tenant stored. */
int
ngx_http_slora_store_prev(void *data, slora_openai_stored_e what,
    const char *id, size_t len, const char **conv, size_t *conv_len)
{
    ngx_int_t            state;
    ngx_str_t            tenant, c;
    ngx_http_request_t  *r = data;

    if (ngx_http_slora_tenant(r, &tenant) != NGX_OK) {
        return SLORA_DECLINED;
    }

    if (what == SLORA_OPENAI_CONVERSATION) {
        if (ngx_http_slora_store_conversation(r, (const u_char *) id, len,
                                              &tenant, &c, NULL, NULL, 0)
            != NGX_OK)
        {
            return SLORA_DECLINED;
        }

        *conv = (const char *) c.data;
        *conv_len = c.len;

        return SLORA_OK;
    }

    state = ngx_http_slora_store_state(r, (const u_char *) id, len, &tenant,
                                       0);

    if (state != NGX_HTTP_SLORA_STORE_DONE) {
        /* a background response not answered yet, or cancelled, has no
         * answer to continue */
        return state == NGX_DECLINED ? SLORA_DECLINED : SLORA_BUSY;
    }

    if (ngx_http_slora_store_get(r, (const u_char *) id, len, &tenant, &c,
                                 NULL)
        != NGX_OK)
    {
        return SLORA_DECLINED;
    }

    *conv = (const char *) c.data;
    *conv_len = c.len;

    return SLORA_OK;
}


/* The store's zone; NULL when slora_responses_store is not set. */
static ngx_http_slora_store_t *
ngx_http_slora_store_of(ngx_http_request_t *r)
{
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);

    return smcf->store != NULL ? smcf->store->data : NULL;
}


/* Under the mutex: the record of id, if it is the tenant's. */
static ngx_http_slora_stored_t *
ngx_http_slora_store_find(ngx_http_slora_store_t *st, const u_char *id,
    size_t len, ngx_str_t *tenant)
{
    ngx_int_t                 rc;
    uint32_t                  hash;
    ngx_rbtree_node_t        *node, *sentinel;
    ngx_http_slora_stored_t  *rec;

    hash = ngx_crc32_short((u_char *) id, len);
    node = st->sh->rbtree.root;
    sentinel = st->sh->rbtree.sentinel;

    while (node != sentinel) {
        if (hash != node->key) {
            node = hash < node->key ? node->left : node->right;
            continue;
        }

        rec = (ngx_http_slora_stored_t *) node;
        rc = ngx_memn2cmp((u_char *) id, rec->id, len, rec->id_len);

        if (rc == 0) {
            return tenant->len == rec->tenant_len
                   && (tenant->len == 0
                       || ngx_memcmp(tenant->data, rec->tenant, tenant->len)
                          == 0)
                   ? rec : NULL;
        }

        node = rc < 0 ? node->left : node->right;
    }

    return NULL;
}


/* Under the mutex: a record no other continues out of the tree, the
 * queue and the pool, and with it each deleted one it continued that
 * nothing else continues now. */
static void
ngx_http_slora_store_drop(ngx_http_slora_store_t *st,
    ngx_http_slora_stored_t *rec)
{
    ngx_http_slora_stored_t        *prev;
    ngx_http_slora_store_tenant_t  *t;

    while (rec != NULL) {
        if (!rec->gone) {
            ngx_rbtree_delete(&st->sh->rbtree, &rec->node);
        }

        ngx_queue_remove(&rec->queue);
        prev = rec->prev;

        t = st->tenant_max
            ? ngx_http_slora_store_tenant(st, rec->tenant, rec->tenant_len,
                                          0)
            : NULL;

        if (t != NULL) {
            t->bytes -= ngx_min(t->bytes, ngx_http_slora_store_size(rec));

            if (t->bytes == 0 && !t->held) {
                ngx_http_slora_store_let_go(st, t);
            }
        }

        if (rec->log.data != NULL) {
            ngx_slab_free_locked(st->shpool, rec->log.data);
        }

        ngx_slab_free_locked(st->shpool, rec);

        rec = prev != NULL && --prev->refs == 0 && prev->gone ? prev : NULL;
    }
}


/* Under the mutex: a record deleted (or replaced): out of the tree, and
 * out of the pool unless others continue it. */
static void
ngx_http_slora_store_unlink(ngx_http_slora_store_t *st,
    ngx_http_slora_stored_t *rec)
{
    ngx_rbtree_delete(&st->sh->rbtree, &rec->node);
    rec->gone = 1;

    if (rec->refs == 0) {
        ngx_http_slora_store_drop(st, rec);
    }
}


/* Under the mutex: the least recently used record no other continues
 * (of tenant t's, where not NULL) dropped to make room; NGX_DECLINED:
 * none. */
static ngx_int_t
ngx_http_slora_store_evict(ngx_http_slora_store_t *st,
    ngx_http_slora_store_tenant_t *t)
{
    ngx_queue_t              *q;
    ngx_http_slora_stored_t  *rec;

    for (q = ngx_queue_last(&st->sh->lru);
         q != ngx_queue_sentinel(&st->sh->lru);
         q = ngx_queue_prev(q))
    {
        rec = ngx_queue_data(q, ngx_http_slora_stored_t, queue);

        if (t != NULL
            && ngx_memn2cmp(rec->tenant, t->name, rec->tenant_len,
                            t->sn.str.len)
               != 0)
        {
            continue;
        }

        /* a running one only where its worker died */
        if (rec->refs == 0
            && (rec->state != NGX_HTTP_SLORA_STORE_RUNNING
                || ngx_http_slora_store_orphan(rec)))
        {
            ngx_http_slora_store_drop(st, rec);
            st->sh->evictions++;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/* The store's figures for /status and /metrics; NGX_DECLINED: no store.
 * Counted by a walk over the records under the mutex (a few thousand at
 * most: microseconds), so that no count can drift from the records. */
ngx_int_t
ngx_http_slora_store_stats(ngx_http_request_t *r,
    ngx_http_slora_store_stats_t *ss)
{
    ngx_queue_t              *q;
    ngx_http_slora_store_t   *st;
    ngx_http_slora_stored_t  *rec;

    ngx_memzero(ss, sizeof(ngx_http_slora_store_stats_t));

    st = ngx_http_slora_store_of(r);
    if (st == NULL) {
        return NGX_DECLINED;
    }

    ngx_shmtx_lock(&st->shpool->mutex);

    ss->size = st->shpool->end - st->shpool->start;
    ss->free = st->shpool->pfree << ngx_pagesize_shift;
    ss->evictions = st->sh->evictions;
    ss->events_lost = st->sh->events_lost;

    for (q = ngx_queue_head(&st->sh->lru);
         q != ngx_queue_sentinel(&st->sh->lru);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_slora_stored_t, queue);

        if (rec->gone) {
            /* deleted, kept only for the conversations continuing it */
            continue;
        }

        if (rec->state == NGX_HTTP_SLORA_STORE_CONV) {
            ss->conversations++;
            continue;
        }

        ss->responses++;

        if (rec->state == NGX_HTTP_SLORA_STORE_RUNNING
            && !ngx_http_slora_store_orphan(rec))
        {
            ss->running++;
        }
    }

    ngx_shmtx_unlock(&st->shpool->mutex);

    return NGX_OK;
}


/* Under the mutex: the share of the tenant name (tenant=), made where
 * make and it has none yet (NULL: no memory for it, or none and not
 * make); held until ngx_http_slora_store_let_go. */
static ngx_http_slora_store_tenant_t *
ngx_http_slora_store_tenant(ngx_http_slora_store_t *st, u_char *name,
    size_t len, ngx_uint_t make)
{
    uint32_t                        hash;
    ngx_str_t                       key;
    ngx_http_slora_store_tenant_t  *t;

    key.data = name;
    key.len = len;
    hash = ngx_crc32_short(name, len);

    t = (ngx_http_slora_store_tenant_t *)
        ngx_str_rbtree_lookup(&st->sh->tenants, &key, hash);

    if (t != NULL || !make) {
        if (t != NULL && make) {
            t->held = 1;
        }

        return t;
    }

    for ( ;; ) {
        t = ngx_slab_alloc_locked(st->shpool,
                                  sizeof(ngx_http_slora_store_tenant_t));

        if (t != NULL || ngx_http_slora_store_evict(st, NULL) != NGX_OK) {
            break;
        }
    }

    if (t == NULL) {
        return NULL;
    }

    if (len) {
        ngx_memcpy(t->name, name, len);
    }

    t->sn.node.key = hash;
    t->sn.str.data = t->name;
    t->sn.str.len = len;
    t->bytes = 0;
    t->held = 1;
    ngx_rbtree_insert(&st->sh->tenants, &t->sn.node);

    return t;
}


/* Under the mutex: room for need more bytes within the tenant's share,
 * its own least recently used records dropped for it; NGX_DECLINED:
 * there is not (the share too small, or what it holds not to be
 * dropped: running, or continued). */
static ngx_int_t
ngx_http_slora_store_room(ngx_http_slora_store_t *st,
    ngx_http_slora_store_tenant_t *t, size_t need)
{
    if (need > st->tenant_max) {
        return NGX_DECLINED;
    }

    while (t->bytes + need > st->tenant_max) {
        if (ngx_http_slora_store_evict(st, t) != NGX_OK) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* Under the mutex: a share no longer held; gone with its last byte. */
static void
ngx_http_slora_store_let_go(ngx_http_slora_store_t *st,
    ngx_http_slora_store_tenant_t *t)
{
    t->held = 0;

    if (t->bytes == 0) {
        ngx_rbtree_delete(&st->sh->tenants, &t->sn.node);
        ngx_slab_free_locked(st->shpool, t);
    }
}


/* Whether the worker that wrote rec is gone (killed, or crashed):
 * nothing more will come from it. EPERM and zombies count as alive. */
static ngx_uint_t
ngx_http_slora_store_orphan(ngx_http_slora_stored_t *rec)
{
    return kill(rec->owner, 0) == -1 && ngx_errno == NGX_ESRCH;
}


/* The bytes a record takes, with its events: what its tenant is
 * charged. */
static size_t
ngx_http_slora_store_size(ngx_http_slora_stored_t *rec)
{
    return offsetof(ngx_http_slora_stored_t, data) + rec->conv_len
           + rec->obj_len + rec->log.cap;
}


/* The tree's order: the id's CRC32, then the id. */
static void
ngx_http_slora_store_insert(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t        **p;
    ngx_http_slora_stored_t   *a, *b;

    for ( ;; ) {
        if (node->key != temp->key) {
            p = node->key < temp->key ? &temp->left : &temp->right;

        } else {
            a = (ngx_http_slora_stored_t *) node;
            b = (ngx_http_slora_stored_t *) temp;
            p = ngx_memn2cmp(a->id, b->id, a->id_len, b->id_len) < 0
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}
