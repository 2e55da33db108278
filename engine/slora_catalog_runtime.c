/*
 * slora_catalog_runtime.c: adapters registered at run time (vLLM's
 * load_lora_adapter and unload_lora_adapter), in either source. With the
 * adapter directory, a registration is an entry of the catalog's own,
 * served beside the sub-folders (and over one of its name) until it is
 * dropped. With Redis, it is written to Redis, as `slora catalog
 * register` writes it, so that every engine of the catalog serves it.
 *
 * The one idea: the folder is judged (its realpath under the roots) and
 * checked (the owner's check: its files against the model) before
 * anything changes, in either source; and with Redis the owner's thread
 * still never waits on Redis: the write goes to the catalog's thread,
 * the call answers SLORA_AGAIN until the write's answer, with the entry
 * read back, has been applied, and the next call after takes that
 * answer.
 */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "slora_catalog_int.h"
#include "slora_utf8.h"


static int slora_catalog_runtime_judge(slora_catalog_t *cat,
    const char *name, const char *dir, int taken,
    slora_catalog_check_pt check, void *data, char **real,
    slora_err_t *err);
static int slora_catalog_runtime_redis(slora_catalog_t *cat,
    const char *name, const char *dir, int replace, uint64_t owner,
    slora_catalog_check_pt check, void *data, slora_catalog_adapter_t **out,
    slora_err_t *err);


int
slora_catalog_runtime_add(slora_catalog_t *cat, const char *name,
    const char *dir, int replace, uint64_t owner, slora_catalog_check_pt check,
    void *data, slora_catalog_adapter_t **out, slora_err_t *err)
{
    int                       rc;
    char                      version[32], *real;
    slora_err_t               looked;
    slora_catalog_entry_t    *en;
    slora_catalog_adapter_t  *ad;

    if (cat->redis) {
        return slora_catalog_runtime_redis(cat, name, dir, replace, owner,
                                           check, data, out, err);
    }

    if (cat->dir == NULL || cat->n_roots == 0) {
        return slora_err_set(err, SLORA_ERROR, "no adapter folder is "
                             "configured (slora_adapters dir=): a registered"
                             " adapter's folder must lie under it");
    }

    /* looked up, not only found: a sub-folder made since the last scan
     * is a name taken as well */
    rc = slora_catalog_adapter(cat, name, &ad, &looked);

    rc = slora_catalog_runtime_judge(cat, name, dir,
                                     !replace && rc == SLORA_OK,
                                     check, data, &real, err);
    if (rc != SLORA_OK) {
        return rc;
    }

    rc = slora_catalog_put(cat, name, real, &ad, err);
    free(real);

    if (rc != SLORA_OK) {
        return SLORA_ERROR;
    }

    snprintf(version, sizeof(version), "registered:%llu",
             (unsigned long long) ++cat->registrations);

    ad->version = strdup(version);
    if (ad->version == NULL) {
        return slora_err_set(err, SLORA_ERROR, "catalog: no memory");
    }

    en = slora_catalog_find(cat, SLORA_CAT_ADAPTER, name);
    en->registered = 1;
    *out = ad;

    return SLORA_OK;
}


int
slora_catalog_runtime_drop(slora_catalog_t *cat, const char *name,
    uint64_t owner, slora_err_t *err)
{
    int                       rc;
    slora_catalog_entry_t    *en;
    slora_catalog_adapter_t  *ad;

    if (cat->redis) {
        rc = slora_catalog_write_state(cat, name, 1, owner, err);

        if (rc == SLORA_DONE) {
            rc = slora_catalog_adapter(cat, name, &ad, err);

            if (rc == SLORA_OK || rc == SLORA_ERROR) {
                /* a refused entry is Redis's too, and may go */
                return slora_catalog_write_send(cat, name, NULL, 0, owner,
                                                err);
            }
        }

        if (rc == SLORA_BUSY) {
            rc = SLORA_AGAIN;
        }

        if (rc == SLORA_DECLINED) {
            return slora_err_set(err, SLORA_DECLINED, "The lora adapter "
                                 "'%.*s' cannot be found.",
                                 slora_utf8_cut(name, 64), name);
        }

        return rc;
    }

    en = slora_catalog_find(cat, SLORA_CAT_ADAPTER, name);

    if (en == NULL || en->state != SLORA_CAT_FOUND) {
        return slora_err_set(err, SLORA_DECLINED, "The lora adapter '%.*s'"
                             " cannot be found.", slora_utf8_cut(name, 64),
                             name);
    }

    if (!en->registered) {
        return slora_err_set(err, SLORA_ERROR, "adapter \"%.*s\" is a "
                             "folder of the adapter directory, not one "
                             "registered at run time: remove the folder to"
                             " remove it", slora_utf8_cut(name, 64), name);
    }

    /* gone until the next scan, which finds a sub-folder of its name */
    slora_catalog_adapter_clear(&en->ad);
    en->registered = 0;
    en->state = SLORA_CAT_MISSING;
    cat->n_negative++;
    cat->list_fresh = 0;
    cat->dir_mtime.tv_sec = 0;
    cat->dir_mtime.tv_nsec = 0;

    return SLORA_OK;
}


int
slora_catalog_runtime_has(slora_catalog_t *cat, const char *name)
{
    slora_catalog_entry_t  *en;

    en = slora_catalog_find(cat, SLORA_CAT_ADAPTER, name);

    return en != NULL && en->state == SLORA_CAT_FOUND && en->registered;
}


/*
 * With Redis: the first call judges and sends the write; the calls while
 * it is out (or another's is) answer SLORA_AGAIN; the owner's first call
 * after its answer takes it, the entry already read back. A write Redis
 * took is a registration, whatever the read back found: every engine
 * reads the entry at its next lookup (*out NULL where this one has not
 * read the folder just written).
 */
static int
slora_catalog_runtime_redis(slora_catalog_t *cat, const char *name,
    const char *dir, int replace, uint64_t owner,
    slora_catalog_check_pt check, void *data, slora_catalog_adapter_t **out,
    slora_err_t *err)
{
    int                       rc;
    char                     *real;
    slora_catalog_entry_t    *en;
    slora_catalog_adapter_t  *ad;

    rc = slora_catalog_write_state(cat, name, 0, owner, err);

    if (rc == SLORA_OK) {
        en = slora_catalog_find(cat, SLORA_CAT_ADAPTER, name);
        *out = NULL;

        if (en != NULL && en->state == SLORA_CAT_FOUND
            && en->ad.path != NULL && cat->write_dir != NULL
            && strcmp(en->ad.path, cat->write_dir) == 0)
        {
            *out = &en->ad;
        }

        return SLORA_OK;
    }

    if (rc != SLORA_DONE) {
        return rc == SLORA_BUSY ? SLORA_AGAIN : rc;
    }

    rc = slora_catalog_adapter(cat, name, &ad, err);

    if (rc == SLORA_AGAIN || rc == SLORA_UNAVAILABLE) {
        return rc;
    }

    rc = slora_catalog_runtime_judge(cat, name, dir,
                                     !replace && rc != SLORA_DECLINED,
                                     check, data, &real, err);
    if (rc != SLORA_OK) {
        return rc;
    }

    rc = slora_catalog_write_send(cat, name, real, !replace, owner, err);
    free(real);

    return rc;
}


/* *real: the folder's realpath, under the roots and passed by check;
 * taken: the name is served and not to be replaced. */
static int
slora_catalog_runtime_judge(slora_catalog_t *cat, const char *name,
    const char *dir, int taken, slora_catalog_check_pt check, void *data,
    char **real, slora_err_t *err)
{
    int          rc, under, e;
    char         conf[PATH_MAX + 32];
    struct stat  sb;

    if (taken) {
        return slora_err_set(err, SLORA_ERROR, "The lora adapter '%.*s' has"
                             " already been loaded.",
                             slora_utf8_cut(name, 64), name);
    }

    if (!slora_catalog_valid_name(name)) {
        return slora_err_set(err, SLORA_ERROR, "adapter name \"%.*s\" is "
                             "refused (empty, \"..\", \"/\", a leading \".\" "
                             "or a control character)",
                             slora_utf8_cut(name, 64), name);
    }

    /*
     * A path that names a place under a root by its text, with no "..",
     * is the caller's to ask about: whether it exists. One that does not
     * is judged by its realpath alone (a link to a root is one way in)
     * and refused in the same words whatever is there, so that the answer
     * does not tell what lies outside the roots; nor does it tell where a
     * link under the roots leads.
     */
    under = slora_catalog_under_roots(cat, dir);

    if (under < 0) {
        /* the kernel would resolve it through what lies on the way,
         * outside the roots maybe, and the answer tell of that */
        return slora_err_set(err, SLORA_ERROR, "adapter %s: %.*s holds "
                             "\"..\": name the folder without it",
                             name, slora_utf8_cut(dir, 256), dir);
    }

    if (under && stat(dir, &sb) != 0) {
        e = errno;

        /* a link under the roots that leads out, or somewhere that
         * cannot be told: what lies there is not told */
        if (slora_catalog_parent_within(cat, dir) != 1) {
            return slora_err_set(err, SLORA_ERROR, "adapter %s: %.*s is "
                                 "outside the adapter roots: refused", name,
                                 slora_utf8_cut(dir, 256), dir);
        }

        return slora_err_set(err, e == ENOENT ? SLORA_DECLINED : SLORA_ERROR,
                             "No adapter found at %.*s: %s",
                             slora_utf8_cut(dir, 256), dir, strerror(e));
    }

    rc = slora_catalog_confine(cat->roots, cat->n_roots, name, dir, real,
                               err);
    if (rc != SLORA_OK) {
        /* missing in a folder that is a root's or under one, named
         * through a link to it: vLLM's 404, as by the root's own name */
        if (!under && rc != SLORA_DECLINED && lstat(dir, &sb) != 0
            && errno == ENOENT && slora_catalog_parent_within(cat, dir) == 1)
        {
            return slora_err_set(err, SLORA_DECLINED, "No adapter found at"
                                 " %.*s: %s", slora_utf8_cut(dir, 256), dir,
                                 strerror(ENOENT));
        }

        /* nor where a link under the roots leads */
        if (!under || rc == SLORA_DECLINED) {
            slora_err_set(err, SLORA_ERROR, "adapter %s: %.*s is outside the"
                          " adapter roots: refused", name,
                          slora_utf8_cut(dir, 256), dir);
        }
        return SLORA_ERROR;
    }

    if (stat(*real, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        slora_err_set(err, SLORA_ERROR, "%.*s is not a folder (an adapter "
                      "is a folder with adapter_config.json and "
                      "adapter_model.safetensors)",
                      slora_utf8_cut(dir, 256), dir);
        free(*real);
        *real = NULL;
        return SLORA_ERROR;
    }

    /* vLLM's 404 too: a folder that holds no adapter */
    if (snprintf(conf, sizeof(conf), "%s/adapter_config.json", *real)
            < (int) sizeof(conf)
        && stat(conf, &sb) != 0 && errno == ENOENT)
    {
        slora_err_set(err, SLORA_DECLINED, "No adapter found at %.*s: it "
                      "holds no adapter_config.json",
                      slora_utf8_cut(dir, 256), dir);
        free(*real);
        *real = NULL;
        return SLORA_DECLINED;
    }

    rc = check != NULL ? check(data, *real, err) : SLORA_OK;

    if (rc != SLORA_OK) {
        free(*real);
        *real = NULL;
        return rc == SLORA_AGAIN ? SLORA_AGAIN : SLORA_ERROR;
    }

    return SLORA_OK;
}
