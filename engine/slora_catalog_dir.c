/*
 * slora_catalog_dir.c: the catalog's adapter roots and its directory
 * source: the realpath()s of the roots, the check that confines an
 * adapter's path to them, and the scan that registers every sub-folder
 * of the adapter directory.
 *
 * The one idea: a path is judged by its realpath(), never by its text, so
 * ".." and symlinks that lead out of every root are refused wherever the
 * path came from: the directory, slora_catalog_put() or a Redis hash.
 */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "slora_catalog_int.h"
#include "slora_adapter.h"


static int slora_catalog_scan_random(slora_catalog_t *cat,
    slora_err_t *err);


int
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
int
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
int
slora_catalog_scan(slora_catalog_t *cat, slora_err_t *err)
{
    DIR                      *d;
    char                      path[1280];
    struct stat               sb;
    struct dirent            *de;
    slora_err_t               skip;
    slora_catalog_adapter_t  *ad;

    if (slora_adapter_is_random(cat->dir)) {
        return slora_catalog_scan_random(cat, err);
    }

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


/* A random catalog (slora_adapter_random.c): its n entries, each with
 * its own one-adapter spec in place of a path. */
static int
slora_catalog_scan_random(slora_catalog_t *cat, slora_err_t *err)
{
    char                      name[32], spec[256];
    int32_t                   i;
    slora_adapter_random_t    rs;
    slora_catalog_adapter_t  *ad;

    if (slora_adapter_random_spec(cat->dir, 1, &rs, err) != SLORA_OK) {
        return slora_err_prefix(err, "adapter dir");
    }

    for (i = 0; i < rs.n; i++) {
        if (slora_adapter_random_entry(&rs, i, name, sizeof(name), spec,
                                       sizeof(spec))
            != SLORA_OK
            || slora_catalog_put(cat, name, spec, &ad, err) != SLORA_OK)
        {
            return slora_err_prefix(err, "adapter dir");
        }
    }

    return SLORA_OK;
}
