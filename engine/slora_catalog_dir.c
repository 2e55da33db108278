/*
 * slora_catalog_dir.c: the catalog's adapter roots and its directory
 * source: the realpath()s of the roots, the check that confines an
 * adapter's path to them, and the scan that registers every sub-folder
 * of the adapter directory (leaving be the names registered at run time:
 * slora_catalog_runtime.c).
 *
 * The one idea: a path is judged by its realpath(), never by its text, so
 * ".." and symlinks that lead out of every root are refused wherever the
 * path came from: the directory, slora_catalog_put() or a Redis hash.
 * Its text says only how much a refusal may tell
 * (slora_catalog_under_roots): of a path a client names at run time that
 * is not under a root by its text (or holds a "..", which its text does
 * not resolve), the answer does not say whether anything is there.
 */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slora_catalog_int.h"
#include "slora_adapter.h"


static int slora_catalog_scan_random(slora_catalog_t *cat,
    slora_err_t *err);


/*
 * out: path's text made absolute (against the working directory) with
 * "." and repeated slashes taken out. SLORA_DECLINED where it holds a
 * "..", SLORA_ERROR (errno set) where it does not fit cap or the working
 * directory cannot be read.
 */
static int
slora_catalog_lexical(const char *path, char *out, size_t cap)
{
    size_t       n, len;
    const char  *p, *end;

    n = 0;

    if (path[0] != '/') {
        if (getcwd(out, cap) == NULL) {
            return SLORA_ERROR;
        }
        n = strlen(out);
        if (n == 1) {
            n = 0;              /* "/": components add their own slash */
        }
    }

    for (p = path; *p != '\0'; p = end) {
        while (*p == '/') {
            p++;
        }

        end = strchr(p, '/');
        if (end == NULL) {
            end = p + strlen(p);
        }

        len = (size_t) (end - p);

        if (len == 0 || (len == 1 && p[0] == '.')) {
            continue;
        }

        if (len == 2 && p[0] == '.' && p[1] == '.') {
            /* the kernel goes up from where the text before it leads,
             * which the text does not say: no text to judge by */
            return SLORA_DECLINED;
        }

        if (n + 1 + len + 1 > cap) {
            errno = ENAMETOOLONG;
            return SLORA_ERROR;
        }

        out[n++] = '/';
        memcpy(out + n, p, len);
        n += len;
    }

    if (n == 0) {
        if (cap < 2) {
            errno = ENAMETOOLONG;
            return SLORA_ERROR;
        }
        out[n++] = '/';
    }

    out[n] = '\0';

    return SLORA_OK;
}


/* path lies strictly under root (both absolute, without "." or "..") */
static int
slora_catalog_path_under(const char *path, const char *root)
{
    size_t  len;

    len = strlen(root);

    return strncmp(path, root, len) == 0
           && (path[len] == '/' || (len == 1 && path[1] != '\0'));
}


int
slora_catalog_add_root(slora_catalog_t *cat, const char *root,
    slora_err_t *err)
{
    int     rc;
    char   *rp, *text, **grown;
    char    buf[PATH_MAX];

    rc = slora_catalog_lexical(root, buf, sizeof(buf));
    if (rc == SLORA_ERROR) {
        return SLORA_ERROR;
    }

    rp = realpath(root, NULL);
    if (rp == NULL) {
        return SLORA_ERROR;
    }

    /* a root's text with ".." says nothing its realpath does not */
    text = strdup(rc == SLORA_OK ? buf : rp);
    if (text == NULL) {
        free(rp);
        errno = ENOMEM;
        return SLORA_ERROR;
    }

    grown = realloc(cat->roots,
                    (size_t) (cat->n_roots + 1) * 2 * sizeof(char *));
    if (grown == NULL) {
        free(rp);
        free(text);
        errno = ENOMEM;
        return SLORA_ERROR;
    }

    /* the realpaths first, as slora_catalog_confine takes them, then
     * the texts: the n texts move up one place to make room */
    memmove(grown + cat->n_roots + 1, grown + cat->n_roots,
            (size_t) cat->n_roots * sizeof(char *));
    grown[cat->n_roots] = rp;
    grown[2 * cat->n_roots + 1] = text;

    cat->roots = grown;
    cat->n_roots++;

    return SLORA_OK;
}


int
slora_catalog_under_roots(slora_catalog_t *cat, const char *path)
{
    int      rc;
    char     buf[PATH_MAX];
    int32_t  i;

    rc = slora_catalog_lexical(path, buf, sizeof(buf));
    if (rc != SLORA_OK) {
        return rc == SLORA_DECLINED ? -1 : 0;
    }

    /* a root as configured, or as its links resolve */
    for (i = 0; i < 2 * cat->n_roots; i++) {
        if (slora_catalog_path_under(buf, cat->roots[i])) {
            return 1;
        }
    }

    return 0;
}


int
slora_catalog_parent_within(slora_catalog_t *cat, const char *path)
{
    int          in;
    char         buf[PATH_MAX], *rp, *slash;
    size_t       len;
    int32_t      i;
    struct stat  sb;

    len = strlen(path);
    if (len == 0 || len >= sizeof(buf)) {
        return 0;
    }

    memcpy(buf, path, len + 1);

    /*
     * The nearest place on the way that exists, path itself first. A
     * link whose target is missing (it exists, and does not resolve)
     * leads somewhere unknown: whether that lies outside cannot be told
     * without telling whether its target exists.
     */
    for ( ;; ) {
        while (len > 1 && buf[len - 1] == '/') {
            buf[--len] = '\0';
        }

        rp = realpath(buf, NULL);

        if (rp != NULL) {
            break;
        }

        if (errno != ENOENT && errno != ENOTDIR) {
            return -1;
        }

        if (lstat(buf, &sb) == 0) {
            return -1;
        }

        slash = strrchr(buf, '/');
        if (slash == NULL || slash == buf) {
            return 0;
        }

        *slash = '\0';
        len = (size_t) (slash - buf);
    }

    in = 0;

    for (i = 0; i < cat->n_roots && !in; i++) {
        in = strcmp(rp, cat->roots[i]) == 0
             || slora_catalog_path_under(rp, cat->roots[i]);
    }

    free(rp);

    return in;
}


/* *out: realpath(path), which must lie strictly under one of the roots
 * (SLORA_DECLINED where it does not; SLORA_ERROR where it has none, or
 * one too long). */
int
slora_catalog_confine(char **roots, int32_t n_roots, const char *name,
    const char *path, char **out, slora_err_t *err)
{
    char     *rp;
    int32_t   i;

    rp = realpath(path, NULL);
    if (rp == NULL) {
        return slora_err_set(err, SLORA_ERROR, "adapter %s: %s: %s", name,
                             path, strerror(errno));
    }

    /* its files' paths must fit SLORA_ADAPTER_PATH_LEN, or they would be
     * cut and never open */
    if (strlen(rp) > SLORA_ADAPTER_FOLDER_MAX) {
        slora_err_set(err, SLORA_ERROR, "adapter %s: its folder's path is "
                      "%zu bytes long, more than the %zu an adapter's may "
                      "be: refused", name, strlen(rp),
                      (size_t) SLORA_ADAPTER_FOLDER_MAX);
        free(rp);
        return SLORA_ERROR;
    }

    for (i = 0; i < n_roots; i++) {
        if (slora_catalog_path_under(rp, roots[i])) {
            *out = rp;
            return SLORA_OK;
        }
    }

    slora_err_set(err, SLORA_ERROR, "adapter %s: %s (%s) is outside the "
                  "adapter roots: refused", name, path, rp);
    free(rp);

    return SLORA_DECLINED;
}


/* The directory source: every sub-folder with a valid name. */
int
slora_catalog_scan(slora_catalog_t *cat, slora_err_t *err)
{
    DIR            *d;
    char            path[SLORA_ADAPTER_PATH_LEN];
    struct stat     sb;
    struct dirent  *de;
    slora_err_t     skip;

    if (slora_adapter_is_random(cat->dir)) {
        return slora_catalog_scan_random(cat, err);
    }

    /* the mtime before the read: a change during it is seen next time */
    if (stat(cat->dir, &sb) != 0 || (d = opendir(cat->dir)) == NULL) {
        return slora_err_set(err, SLORA_ERROR, "adapter dir %s: %s",
                             cat->dir, strerror(errno));
    }

    cat->dir_mtime = sb.st_mtim;

    while ((de = readdir(d)) != NULL) {
        if (!slora_catalog_valid_name(de->d_name)) {
            continue;
        }

        snprintf(path, sizeof(path), "%s/%s", cat->dir, de->d_name);
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            continue;
        }

        /* a folder whose path leads outside the roots is left out */
        (void) slora_catalog_put_folder(cat, de->d_name, path, &sb, &skip);
    }

    closedir(d);

    return SLORA_OK;
}


int
slora_catalog_refresh(slora_catalog_t *cat, slora_err_t *err)
{
    uint32_t                 b;
    struct stat              sb;
    slora_catalog_entry_t   *en;

    if (cat->redis || cat->dir == NULL || slora_adapter_is_random(cat->dir)) {
        return 0;
    }

    if (stat(cat->dir, &sb) != 0) {
        return slora_err_set(err, SLORA_ERROR, "adapter dir %s: %s",
                             cat->dir, strerror(errno));
    }

    if (sb.st_mtim.tv_sec == cat->dir_mtime.tv_sec
        && sb.st_mtim.tv_nsec == cat->dir_mtime.tv_nsec)
    {
        return 0;
    }

    for (b = 0; b <= cat->mask; b++) {
        for (en = cat->buckets[b]; en != NULL; en = en->next) {
            en->seen = 0;
        }
    }

    cat->scan_changes = 0;

    if (slora_catalog_scan(cat, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    /* what the scan did not see is gone; its data stays the owner's */
    for (b = 0; b <= cat->mask; b++) {
        for (en = cat->buckets[b]; en != NULL; en = en->next) {
            if (en->kind == SLORA_CAT_ADAPTER && en->state == SLORA_CAT_FOUND
                && !en->seen && !en->registered)
            {
                slora_catalog_adapter_clear(&en->ad);
                en->state = SLORA_CAT_MISSING;
                cat->n_negative++;
                cat->list_fresh = 0;
                cat->scan_changes++;
            }
        }
    }

    return cat->scan_changes > 0;
}


/*
 * An adapter entry for a sub-folder of the directory, sb its stat():
 * its version is the folder's inode and mtime, so a folder replaced by
 * another of its name is a new version.
 */
int
slora_catalog_put_folder(slora_catalog_t *cat, const char *name,
    const char *path, const struct stat *sb, slora_err_t *err)
{
    int                       same;
    char                      version[64], *rp;
    struct stat               lsb;
    slora_catalog_entry_t    *en;
    slora_catalog_adapter_t  *ad;

    snprintf(version, sizeof(version), "dir:%llu:%lld.%09ld",
             (unsigned long long) sb->st_ino, (long long) sb->st_mtim.tv_sec,
             sb->st_mtim.tv_nsec);

    en = slora_catalog_find(cat, SLORA_CAT_ADAPTER, name);

    /* a registered name shadows the folder of that name */
    if (en != NULL && en->registered) {
        return SLORA_OK;
    }

    if (en != NULL && en->state == SLORA_CAT_FOUND && en->ad.version != NULL
        && strcmp(en->ad.version, version) == 0)
    {
        /* a symlink may now reach the same folder by another path (it
         * was renamed, the link re-pointed): the old one leads nowhere */
        same = 1;

        if (lstat(path, &lsb) == 0 && S_ISLNK(lsb.st_mode)) {
            rp = realpath(path, NULL);
            same = rp != NULL && strcmp(rp, en->ad.path) == 0;
            free(rp);
        }

        if (same) {
            en->seen = 1;
            return SLORA_OK;
        }
    }

    if (slora_catalog_put(cat, name, path, &ad, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    cat->scan_changes++;
    ad->version = strdup(version);
    if (ad->version == NULL) {
        return slora_err_set(err, SLORA_ERROR, "catalog: no memory");
    }

    en = slora_catalog_find(cat, SLORA_CAT_ADAPTER, name);
    en->seen = 1;

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
