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
 *
 * The zone lives as long as its master: with `slora_adapters
 * registry=FILE` the engine also writes the zone's registrations to a
 * file after each change (a new file renamed over the old, so that a
 * crash mid-write leaves the old one whole), and an engine that finds
 * its zone's registry empty, as a freshly started nginx's is, reads
 * them from it: a restart or a binary upgrade serves them again. Each
 * read back is judged as a restored registration is, so a file edited
 * by hand registers nothing a request could not; a file that does not
 * read is set aside (FILE.unread), not written over with none.
 */

#include <cjson/cJSON.h>

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


#define NGX_HTTP_SLORA_REGISTRY_FILE_MAX  (8 << 20)   /* 1024 entries of
                                                          the longest names
                                                          and paths, JSON */

static void ngx_http_slora_engine_registry_read(
    ngx_http_slora_engine_ctx_t *ec);
static void ngx_http_slora_engine_registry_aside(
    ngx_http_slora_engine_ctx_t *ec, const char *why);
static void ngx_http_slora_engine_registry_save(
    ngx_http_slora_engine_ctx_t *ec);


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

    ngx_http_slora_engine_registry_read(ec);

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

    /* those dropped, dropped there too */
    ngx_http_slora_engine_registry_save(ec);
}


/*
 * registry=FILE read into an empty zone (a fresh nginx's): {"registered":
 * [{"name": N, "path": P}, ...]}. An entry that is not two strings that
 * fit the zone is passed over, saying so; the restore then judges each.
 */
static void
ngx_http_slora_engine_registry_read(ngx_http_slora_engine_ctx_t *ec)
{
    char               *text;
    size_t              len;
    uint32_t            i, n, bad;
    ngx_uint_t          level;
    ngx_file_info_t     fi;
    cJSON              *root, *list, *it, *name, *path;
    slora_err_t         err;
    const ngx_str_t    *file;

    file = &ec->smcf->registry;

    if (file->len == 0) {
        return;
    }

    for (i = 0; i < SLORA_QUEUE_REGISTRY_MAX; i++) {
        if (slora_queue_registry_get(ec->q, i) != NULL) {
            return;                 /* a respawn's or a reload's zone */
        }
    }

    if (ngx_file_info(file->data, &fi) == NGX_FILE_ERROR) {
        if (ngx_errno != NGX_ENOENT) {
            ngx_http_slora_engine_registry_aside(ec, strerror(ngx_errno));
        }

        return;                     /* none kept yet */
    }

    /* (a FIFO would hold the engine's thread) */
    if (!ngx_is_file(&fi)) {
        ngx_http_slora_engine_registry_aside(ec, "is not a regular file");
        return;
    }

    text = slora_read_file((const char *) file->data,
                           NGX_HTTP_SLORA_REGISTRY_FILE_MAX, &len, &err);
    if (text == NULL) {
        ngx_http_slora_engine_registry_aside(ec, err.msg);
        return;
    }

    root = cJSON_ParseWithLength(text, len);
    free(text);
    list = cJSON_GetObjectItemCaseSensitive(root, "registered");

    if (!cJSON_IsArray(list)) {
        cJSON_Delete(root);
        ngx_http_slora_engine_registry_aside(ec, "holds no {\"registered\":"
                                             " [...]}");
        return;
    }

    n = 0;
    bad = 0;

    cJSON_ArrayForEach(it, list) {
        name = cJSON_GetObjectItemCaseSensitive(it, "name");
        path = cJSON_GetObjectItemCaseSensitive(it, "path");

        if (!cJSON_IsString(name) || !cJSON_IsString(path)
            || n == SLORA_QUEUE_REGISTRY_MAX
            || slora_queue_registry_put(ec->q, name->valuestring,
                                        path->valuestring)
               != SLORA_OK)
        {
            bad++;
            continue;
        }

        n++;
    }

    cJSON_Delete(root);

    level = bad ? NGX_LOG_WARN : NGX_LOG_NOTICE;

    ngx_log_error(level, ec->cycle->log, 0,
                  "slora engine: %uD run-time registrations read from %V"
                  "%s", n, file,
                  bad ? ", some entries passed over (not a name and a path"
                        " that fit, or past the most kept)" : "");
}


/*
 * registry=FILE did not read (why): its registrations are not served
 * again, and it is kept as FILE.unread for whoever wrote it, rather than
 * written over with none; where it cannot be moved, it is not written
 * while this engine runs.
 */
static void
ngx_http_slora_engine_registry_aside(ngx_http_slora_engine_ctx_t *ec,
    const char *why)
{
    u_char            aside[PATH_MAX];
    const ngx_str_t  *file;

    file = &ec->smcf->registry;
    ngx_snprintf(aside, sizeof(aside), "%V.unread%Z", file);

    if (rename((char *) file->data, (char *) aside) == 0) {
        ngx_log_error(NGX_LOG_WARN, ec->cycle->log, 0,
                      "slora engine: %V %s: its run-time registrations are"
                      " not served again; it is kept as %s, and %V is"
                      " written anew", file, why, aside, file);
        return;
    }

    ec->registry_hold = 1;

    ngx_log_error(NGX_LOG_WARN, ec->cycle->log, ngx_errno,
                  "slora engine: %V %s: its run-time registrations are not"
                  " served again, and it cannot be set aside as %s: it is"
                  " left as it is, and the registrations made while this"
                  " engine runs are not kept (mend or move it, then"
                  " restart)", file, why, aside);
}


/* The zone's registrations into registry=FILE, replacing it whole. */
static void
ngx_http_slora_engine_registry_save(ngx_http_slora_engine_ctx_t *ec)
{
    int                          fd, ok;
    char                        *text, *target;
    size_t                       len, done;
    ngx_err_t                    e;
    ssize_t                      w;
    cJSON                       *root, *list, *it;
    uint32_t                     i;
    u_char                       tmp[PATH_MAX];
    ngx_str_t                    dst;
    const ngx_str_t             *file;
    struct stat                  sb;
    const slora_registration_t  *r;

    file = &ec->smcf->registry;

    if (file->len == 0 || ec->redis || ec->registry_hold) {
        return;
    }

    root = cJSON_CreateObject();
    list = cJSON_AddArrayToObject(root, "registered");
    ok = list != NULL;

    for (i = 0; ok && i < SLORA_QUEUE_REGISTRY_MAX; i++) {
        r = slora_queue_registry_get(ec->q, i);
        if (r == NULL) {
            continue;
        }

        it = cJSON_CreateObject();
        ok = it != NULL && cJSON_AddItemToArray(list, it)
             && cJSON_AddStringToObject(it, "name", r->name) != NULL
             && cJSON_AddStringToObject(it, "path", r->path) != NULL;
    }

    text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);

    if (text == NULL) {
        ngx_log_error(NGX_LOG_WARN, ec->cycle->log, 0,
                      "slora engine: no memory to keep the run-time"
                      " registrations in %V", file);
        return;
    }

    /* a FILE that is a symlink stays one: the new file is renamed over
     * the file it leads to (a link to none, or too long a path, is
     * replaced as a file) */
    dst = *file;
    target = NULL;

    if (lstat((char *) file->data, &sb) == 0 && S_ISLNK(sb.st_mode)) {
        target = realpath((char *) file->data, NULL);

        if (target != NULL && ngx_strlen(target) + 32 < sizeof(tmp)) {
            dst.data = (u_char *) target;
            dst.len = ngx_strlen(target);
        }
    }

    /* (the configuration made sure the name fits); the process's own,
     * as in a binary upgrade two engines write the file */
    ngx_snprintf(tmp, sizeof(tmp), "%V.%P.tmp%Z", &dst, ngx_pid);

    fd = open((char *) tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    len = ngx_strlen(text);
    done = 0;

    while (fd != -1 && done < len) {
        w = write(fd, text + done, len - done);

        if (w == -1 && ngx_errno == NGX_EINTR) {
            continue;
        }

        if (w <= 0) {
            break;
        }

        done += (size_t) w;
    }

    ngx_free(text);

    /* no fsync: the engine's thread does not wait for the disk (a crash
     * of the process loses nothing written; a power cut may lose the
     * last change) */
    ok = fd != -1 && done == len;
    e = ngx_errno;

    if (fd != -1 && close(fd) == -1 && ok) {
        ok = 0;
        e = ngx_errno;
    }

    if (ok && rename((char *) tmp, (char *) dst.data) == -1) {
        ok = 0;
        e = ngx_errno;
    }

    free(target);

    if (!ok) {
        ngx_log_error(NGX_LOG_WARN, ec->cycle->log, e,
                      "slora engine: the run-time registrations cannot be"
                      " kept in %V (an nginx restart will not serve them"
                      " again)", file);

        if (fd != -1) {
            (void) unlink((char *) tmp);
        }
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
        ngx_http_slora_engine_registry_save(ec);
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
    ngx_http_slora_engine_registry_save(ec);
    slora_queue_names_stale(ec->q);

    ngx_log_error(NGX_LOG_NOTICE, ec->cycle->log, 0,
                  "slora engine: adapter \"%s\" unregistered", s->adapter);

    return SLORA_OK;
}
