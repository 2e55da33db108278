/*
 * ngx_http_slora_engine_registry.c: adapters registered at run time, on
 * the engine's side: vLLM's load_lora_adapter and unload_lora_adapter
 * (ngx_http_slora_admin.c takes them from the client), answered on the
 * engine's thread, and the registrations an engine finds in its zone at
 * its start served again.
 *
 * The one idea: the engine library holds a registration
 * (slora_engine_register_adapter), the zone keeps it
 * (slora_queue_registry_put), so that an engine respawned after a crash,
 * or started on a reload's new zone (which the master fills from the old
 * one: ngx_http_slora_zone.c), serves the same names. The zone is written
 * only after the engine took the registration, and only by the engine.
 * With the catalog in Redis the registration is written there, which
 * keeps it for every engine: the zone keeps none, and the op waits
 * (SLORA_AGAIN, retried after each step) for the catalog's thread.
 */

#include "ngx_http_slora_module.h"

#include "ngx_http_slora_engine_int.h"
#include "slora_catalog.h"


_Static_assert(SLORA_QUEUE_PATH_LEN >= SLORA_ADAPTER_PATH_LEN,
               "a registered folder's path fits the zone's entry");


/* Who asks, for the catalog: the slot and its claim's generation, so
 * that a Redis write's answer goes to the op that sent it and to no
 * other op of the same name in another slot. */
static uint64_t
ngx_http_slora_engine_owner(uint32_t i, const slora_slot_t *s)
{
    return ((uint64_t) i << 32) | s->gen;
}


/*
 * At the engine's start, before its names are published. With Redis the
 * zone's entries (a reload from the folder catalog copied them) are left
 * as they are: Redis holds that catalog's registrations, and these would
 * be written into it.
 */
void
ngx_http_slora_engine_restore(ngx_http_slora_engine_ctx_t *ec)
{
    char                         name[SLORA_QUEUE_ADAPTER_LEN];
    char                         path[SLORA_QUEUE_PATH_LEN];
    uint32_t                     i, n;
    slora_err_t                  err;
    const slora_registration_t  *r;

    if (ec->redis) {
        return;
    }

    n = 0;

    for (i = 0; i < SLORA_QUEUE_REGISTRY_MAX; i++) {
        r = slora_queue_registry_get(ec->q, i);
        if (r == NULL) {
            continue;
        }

        /* a copy: a failure drops the entry it was read from */
        ngx_cpystrn((u_char *) name, (u_char *) r->name, sizeof(name));
        ngx_cpystrn((u_char *) path, (u_char *) r->path, sizeof(path));

        err.msg[0] = '\0';

        if (slora_engine_restore_adapter(ec->engine, name, path, &err)
            != SLORA_OK)
        {
            ngx_log_error(NGX_LOG_WARN, ec->cycle->log, 0,
                          "slora engine: adapter \"%s\", registered at run"
                          " time from %s, is no longer served: %s", name,
                          path, err.msg);
            (void) slora_queue_registry_drop(ec->q, name);
            continue;
        }

        n++;
    }

    if (n > 0) {
        ngx_log_error(NGX_LOG_NOTICE, ec->cycle->log, 0,
                      "slora engine: %uD adapters registered at run time"
                      " served again", n);
    }
}


/*
 * REGISTER and REPLACE: the folder's path is the slot's prompt buffer,
 * n_prompt bytes (the worker checked them: no NUL, shorter than
 * SLORA_QUEUE_PATH_LEN).
 */
int
ngx_http_slora_engine_register(ngx_http_slora_engine_ctx_t *ec, uint32_t i,
    slora_slot_t *s, const u_char *buf, slora_err_t *err)
{
    int          rc;
    char         path[SLORA_QUEUE_PATH_LEN];
    const char  *real;

    if (s->n_prompt == 0 || s->n_prompt >= SLORA_QUEUE_PATH_LEN
        || ngx_strlchr((u_char *) buf, (u_char *) buf + s->n_prompt, '\0')
           != NULL)
    {
        return slora_err_set(err, SLORA_ERROR, "lora_path must be a path"
                             " of 1 to %d bytes", SLORA_QUEUE_PATH_LEN - 1);
    }

    ngx_memcpy(path, buf, s->n_prompt);
    path[s->n_prompt] = '\0';

    if (!ec->redis && !slora_queue_registry_room(ec->q, s->adapter)) {
        slora_engine_registration_end(ec->engine,
                                      ngx_http_slora_engine_owner(i, s));
        return slora_err_set(err, SLORA_ERROR, "%d adapters are registered"
                             " at run time, the most this server keeps:"
                             " unload some, or put their folders in the"
                             " adapter directory", SLORA_QUEUE_REGISTRY_MAX);
    }

    rc = slora_engine_register_adapter(ec->engine, s->adapter, path,
                                       s->op == SLORA_OP_REPLACE,
                                       ngx_http_slora_engine_owner(i, s),
                                       &real, err);
    if (rc != SLORA_OK) {
        return rc;
    }

    /*
     * Redis keeps its own; for the folder catalog room was there, and
     * the engine is the zone's one writer. The folder's realpath, as the
     * catalog checked and serves it: a link under the roots moved later
     * does not move what an engine restored from the zone serves.
     */
    if (!ec->redis) {
        (void) slora_queue_registry_put(ec->q, s->adapter,
                                        real != NULL ? real : path);
    }

    slora_queue_names_stale(ec->q);

    ngx_log_error(NGX_LOG_NOTICE, ec->cycle->log, 0,
                  "slora engine: adapter \"%s\" registered from %s%s",
                  s->adapter, real != NULL ? real : path,
                  s->op == SLORA_OP_REPLACE ? " (load_inplace)" : "");

    if (err->msg[0] != '\0') {
        ngx_log_error(NGX_LOG_WARN, ec->cycle->log, 0,
                      "slora engine: adapter \"%s\" %s", s->adapter,
                      err->msg);
    }

    return SLORA_OK;
}


/* A pending registration op whose client went away. */
void
ngx_http_slora_engine_abandon(ngx_http_slora_engine_ctx_t *ec, uint32_t i,
    slora_slot_t *s)
{
    if (s->op == SLORA_OP_REGISTER || s->op == SLORA_OP_REPLACE
        || s->op == SLORA_OP_DEREGISTER)
    {
        slora_engine_abandon_registration(ec->engine,
                                          ngx_http_slora_engine_owner(i, s));
    }
}


int
ngx_http_slora_engine_deregister(ngx_http_slora_engine_ctx_t *ec, uint32_t i,
    slora_slot_t *s, slora_err_t *err)
{
    int  rc;

    rc = slora_engine_deregister_adapter(ec->engine, s->adapter,
                                         ngx_http_slora_engine_owner(i, s),
                                         err);
    if (rc != SLORA_OK) {
        return rc;
    }

    (void) slora_queue_registry_drop(ec->q, s->adapter);
    slora_queue_names_stale(ec->q);

    ngx_log_error(NGX_LOG_NOTICE, ec->cycle->log, 0,
                  "slora engine: adapter \"%s\" unregistered", s->adapter);

    return SLORA_OK;
}
