/*
 * test_catalog_dir.c: the adapter directory as the catalog (no Redis),
 * read again by slora_catalog_refresh: nothing when the folder did not
 * change; a folder added is an adapter, one removed unknown, one
 * replaced a new version (the owner's data kept); a file is no adapter;
 * a folder that cannot be read leaves the entries; an adapter reached by
 * a symlink re-pointed at its folder renamed is found at the new path.
 * Registrations at run time (slora_catalog_runtime_add): a folder under
 * the root served under a name, its version its own; a name held refused
 * unless replacing; a check that refuses leaves the catalog as it was; a
 * path outside the root, a missing one (SLORA_DECLINED), a file refused;
 * outside the root by its text, a missing path or a file refused in the
 * folder's words, a path with ".." refused, and a link to the root a
 * way in (a missing folder through it SLORA_DECLINED, as by the root's
 * own name);
 * a refresh keeps them, and a registered name shadows a sub-folder of
 * its name until dropped, when the folder is served (and listed from the
 * next refresh); a folder's adapter cannot be dropped as a registration.
 */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "tap.h"
#include "slora_catalog.h"


static char  tmp[256];


static void touch_later(const char *path);
static void test_refresh(void);
static void test_long_dir(void);
static void test_runtime(void);
static void touch_in(const char *dir, const char *name);
static int refuse(void *data, const char *path, slora_err_t *err);


int
main(void)
{
    char  cmd[300];

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-catalog-dir-XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    test_refresh();
    test_long_dir();
    test_runtime();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}


/* path's mtime moved on by a second: a change the refresh must see
 * even where the file system's clock would give the same stamp */
static void
touch_later(const char *path)
{
    struct stat      sb;
    struct timespec  t[2];

    if (stat(path, &sb) != 0) {
        BAIL_OUT("stat %s", path);
    }

    t[0] = sb.st_atim;
    t[1] = sb.st_mtim;
    t[1].tv_sec++;

    if (utimensat(AT_FDCWD, path, t, 0) != 0) {
        BAIL_OUT("utimensat %s", path);
    }
}


/*
 * The directory source read again: nothing when the folder did not
 * change; a folder added is an adapter, one removed unknown, one
 * replaced a new version (the version a pointer's data survives); a
 * file is no adapter; a folder that cannot be read leaves the entries.
 */
static void
test_refresh(void)
{
    int                       rc;
    char                      dir[400], a[500], b[500], c[500], f[500];
    char                      old_version[128];
    slora_err_t               err;
    slora_catalog_t          *cat;
    slora_catalog_conf_t      conf;
    slora_catalog_adapter_t  *ad, **list;

    snprintf(dir, sizeof(dir), "%s/refresh", tmp);
    snprintf(a, sizeof(a), "%s/a", dir);
    snprintf(b, sizeof(b), "%s/b", dir);
    snprintf(c, sizeof(c), "%s/c", dir);
    snprintf(f, sizeof(f), "%s/file", dir);
    mkdir(dir, 0755);
    mkdir(a, 0755);

    memset(&conf, 0, sizeof(conf));
    conf.adapter_dir = dir;
    cat = slora_catalog_create(&conf, &err);
    if (!ok(cat != NULL, "a directory catalog: %s", cat ? "" : err.msg)) {
        return;
    }

    is_int(slora_catalog_adapters(cat, &list), 1, "one adapter at start");
    is_int(slora_catalog_refresh(cat, &err), 0,
           "the folder unchanged: nothing to do");

    rc = slora_catalog_adapter(cat, "a", &ad, &err);
    ok(rc == SLORA_OK && ad->version != NULL
       && strncmp(ad->version, "dir:", 4) == 0,
       "an adapter's version is its folder's: %s",
       rc == SLORA_OK && ad->version ? ad->version : err.msg);
    ad->data = (void *) cat;       /* the owner's, to outlive re-reads */
    snprintf(old_version, sizeof(old_version), "%s", ad->version);

    mkdir(b, 0755);
    touch_later(dir);
    is_int(slora_catalog_refresh(cat, &err), 1, "a folder added: a change");
    is_int(slora_catalog_adapters(cat, &list), 2, "two adapters");
    ok(slora_catalog_adapter(cat, "b", &ad, &err) == SLORA_OK,
       "the new one is found");
    is_int(slora_catalog_refresh(cat, &err), 0, "then nothing again");

    rmdir(a);
    mkdir(a, 0755);         /* another folder of the same name */
    touch_later(a);
    touch_later(dir);
    is_int(slora_catalog_refresh(cat, &err), 1, "a folder replaced: a change");
    rc = slora_catalog_adapter(cat, "a", &ad, &err);
    ok(rc == SLORA_OK && strcmp(ad->version, old_version) != 0
       && ad->data == (void *) cat,
       "a new version (%s, was %s), the owner's data kept",
       rc == SLORA_OK ? ad->version : err.msg, old_version);

    rmdir(b);
    touch_later(dir);
    is_int(slora_catalog_refresh(cat, &err), 1, "a folder removed: a change");
    rc = slora_catalog_adapter(cat, "b", &ad, &err);
    ok(rc == SLORA_DECLINED && strstr(err.msg, "unknown adapter") != NULL,
       "it is unknown: %s", err.msg);
    is_int(slora_catalog_adapters(cat, &list), 1, "one adapter listed");

    /* back before the next look: a lookup finds it on disk */
    mkdir(b, 0755);
    ok(slora_catalog_adapter(cat, "b", &ad, &err) == SLORA_OK,
       "a removed folder back is found at once by name");

    mkdir(c, 0755);
    rc = open(f, O_WRONLY | O_CREAT, 0644);
    if (rc >= 0) {
        close(rc);
    }
    touch_later(dir);
    is_int(slora_catalog_refresh(cat, &err), 1, "a folder and a file added");
    ok(slora_catalog_adapter(cat, "file", &ad, &err) == SLORA_DECLINED,
       "a file is no adapter");
    is_int(slora_catalog_adapters(cat, &list), 3, "three adapters: a, b, c");

    /* the folder gone: an error, and the adapters read before stay */
    snprintf(f, sizeof(f), "%s/refresh-away", tmp);
    if (rename(dir, f) != 0) {
        BAIL_OUT("rename %s", dir);
    }
    rc = slora_catalog_refresh(cat, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "adapter dir") != NULL,
       "the folder gone: an error: %s", err.msg);
    is_int(slora_catalog_adapters(cat, &list), 3, "the adapters kept");
    if (rename(f, dir) != 0) {
        BAIL_OUT("rename %s", f);
    }

    slora_catalog_free(cat);

    /* s, a symlink to the folder v1, re-pointed at it renamed v2: the
     * same folder (inode and mtime), which s now reaches at v2 */
    snprintf(dir, sizeof(dir), "%s/refresh-link", tmp);
    snprintf(a, sizeof(a), "%s/v1", dir);
    snprintf(b, sizeof(b), "%s/v2", dir);
    snprintf(c, sizeof(c), "%s/s", dir);
    mkdir(dir, 0755);
    mkdir(a, 0755);

    if (symlink("v1", c) != 0) {
        BAIL_OUT("symlink %s", c);
    }

    conf.adapter_dir = dir;
    cat = slora_catalog_create(&conf, &err);
    if (!ok(cat != NULL, "link: a directory catalog: %s",
            cat ? "" : err.msg))
    {
        return;
    }

    rc = slora_catalog_adapter(cat, "s", &ad, &err);
    ok(rc == SLORA_OK && strcmp(ad->path, a) == 0, "link: s is at %s",
       rc == SLORA_OK ? ad->path : err.msg);

    if (rename(a, b) != 0 || unlink(c) != 0 || symlink("v2", c) != 0) {
        BAIL_OUT("rename %s", a);
    }
    touch_later(dir);

    is_int(slora_catalog_refresh(cat, &err), 1, "link: re-pointed: a change");
    rc = slora_catalog_adapter(cat, "s", &ad, &err);
    ok(rc == SLORA_OK && strcmp(ad->path, b) == 0,
       "link: s is at its folder's new path %s: %s", b,
       rc == SLORA_OK ? ad->path : err.msg);

    slora_catalog_free(cat);
}


/* An adapter directory so long that a folder's path in it could be cut
 * short (into another folder's) is refused, naming the limit; one at the
 * limit is taken. */
static void
test_long_dir(void)
{
    char                   dir[SLORA_ADAPTER_PATH_LEN + 8];
    size_t                 n;
    slora_err_t            err;
    slora_catalog_t       *cat;
    slora_catalog_conf_t   conf;

    /* tmp, then "/." to the length asked: the same folder */
    n = (size_t) snprintf(dir, sizeof(dir), "%s", tmp);

    while (n + 2 <= SLORA_ADAPTER_DIR_MAX) {
        dir[n++] = '/';
        dir[n++] = '.';
    }

    dir[n] = '\0';

    memset(&conf, 0, sizeof(conf));
    conf.adapter_dir = dir;
    cat = slora_catalog_create(&conf, &err);
    ok(cat != NULL, "an adapter dir of %zu bytes, at most %d, taken: %s", n,
       SLORA_ADAPTER_DIR_MAX, cat ? "" : err.msg);
    slora_catalog_free(cat);

    dir[n++] = '/';
    dir[n++] = '.';
    dir[n] = '\0';
    cat = slora_catalog_create(&conf, &err);
    ok(cat == NULL && strstr(err.msg, "longer than") != NULL,
       "an adapter dir of %zu bytes refused: %s", n,
       cat ? "created" : err.msg);
    slora_catalog_free(cat);
}


static int
refuse(void *data, const char *path, slora_err_t *err)
{
    *(int *) data += 1;
    return slora_err_set(err, SLORA_ERROR, "%s: refused by the check", path);
}


static void
touch_in(const char *dir, const char *name)
{
    char  path[700];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    close(open(path, O_CREAT | O_WRONLY, 0644));
}


static void
test_runtime(void)
{
    int                       checked, rc;
    char                      dir[300], hid[400], v1[500], v2[500], x[700];
    char                      out[500], file[600], version[64];
    char                      empty[600], link[400];
    slora_err_t               err;
    slora_catalog_t          *cat;
    slora_catalog_conf_t      conf;
    slora_catalog_adapter_t  *ad, **list;

    snprintf(dir, sizeof(dir), "%s/runtime", tmp);
    snprintf(hid, sizeof(hid), "%s/.versions", dir);
    snprintf(v1, sizeof(v1), "%s/v1", hid);
    snprintf(v2, sizeof(v2), "%s/v2", hid);
    snprintf(x, sizeof(x), "%s/x", dir);
    snprintf(out, sizeof(out), "%s/outside", tmp);
    snprintf(file, sizeof(file), "%s/file", hid);
    mkdir(dir, 0755);
    mkdir(hid, 0755);
    mkdir(v1, 0755);
    mkdir(v2, 0755);
    mkdir(out, 0755);
    close(open(file, O_CREAT | O_WRONLY, 0644));
    /* an adapter's folder holds its config (read by the owner's check,
     * none here); hid/empty holds nothing */
    touch_in(v1, "adapter_config.json");
    touch_in(v2, "adapter_config.json");
    touch_in(out, "adapter_config.json");
    snprintf(empty, sizeof(empty), "%s/empty", hid);
    mkdir(empty, 0755);

    memset(&conf, 0, sizeof(conf));
    conf.adapter_dir = dir;
    cat = slora_catalog_create(&conf, &err);
    if (!ok(cat != NULL, "a directory catalog: %s", cat ? "" : err.msg)) {
        return;
    }

    is_int(slora_catalog_adapters(cat, &list), 0, "the hidden folder is "
           "no adapter");

    is_int(slora_catalog_runtime_add(cat, "sql", v1, 0, 0, NULL, NULL, &ad,
                                     &err), SLORA_OK, "sql registered");
    rc = slora_catalog_adapter(cat, "sql", &ad, &err);
    ok(rc == SLORA_OK && strcmp(ad->path, v1) == 0 && ad->version != NULL
       && strncmp(ad->version, "registered:", 11) == 0,
       "sql found at v1, a version of its own: %s",
       rc == SLORA_OK ? ad->version : err.msg);
    snprintf(version, sizeof(version), "%s", ad->version);
    ok(slora_catalog_runtime_has(cat, "sql"), "sql is a registration");

    rc = slora_catalog_runtime_add(cat, "sql", v2, 0, 0, NULL, NULL, &ad,
                                   &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "already been loaded") != NULL,
       "sql again refused: %s", err.msg);

    checked = 0;
    rc = slora_catalog_runtime_add(cat, "sql", v2, 1, 0, refuse, &checked,
                                   &ad, &err);
    ok(rc == SLORA_ERROR && checked == 1
       && strstr(err.msg, "refused by the check") != NULL,
       "a replacement the check refuses: %s", err.msg);
    rc = slora_catalog_adapter(cat, "sql", &ad, &err);
    ok(rc == SLORA_OK && strcmp(ad->path, v1) == 0
       && strcmp(ad->version, version) == 0,
       "... sql as it was (v1, the same version)");

    is_int(slora_catalog_runtime_add(cat, "sql", v2, 1, 0, NULL, NULL, &ad,
                                     &err), SLORA_OK, "sql replaced by v2");
    rc = slora_catalog_adapter(cat, "sql", &ad, &err);
    ok(rc == SLORA_OK && strcmp(ad->path, v2) == 0
       && strcmp(ad->version, version) != 0,
       "... at v2, another version");

    rc = slora_catalog_runtime_add(cat, "o", out, 0, 0, NULL, NULL, &ad, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "outside the adapter roots"),
       "a folder outside the root refused: %s", err.msg);
    ok(strstr(err.msg, out) != NULL, "... the path named");

    /* what lies outside the roots is not told: a missing path, a file,
     * the same words as the folder's (less its path); through ".." too */
    snprintf(x, sizeof(x), "%s/nothing", out);
    rc = slora_catalog_runtime_add(cat, "o", x, 0, 0, NULL, NULL, &ad, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "outside the adapter roots")
       && strstr(err.msg, "No such file") == NULL,
       "a missing path outside the root: refused, not SLORA_DECLINED: %s",
       err.msg);
    snprintf(x, sizeof(x), "%s/adapter_config.json", out);
    rc = slora_catalog_runtime_add(cat, "o", x, 0, 0, NULL, NULL, &ad, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "outside the adapter roots")
       && strstr(err.msg, "not a folder") == NULL,
       "a file outside the root: refused as outside: %s", err.msg);
    /* a "..": what the kernel passes on its way is not told either */
    snprintf(x, sizeof(x), "%s/../../../nothing", v1);
    rc = slora_catalog_runtime_add(cat, "o", x, 0, 0, NULL, NULL, &ad, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "holds \"..\""),
       "a path with \"..\" refused: %s", err.msg);
    snprintf(x, sizeof(x), "%s/adapter_config.json/../../runtime/.versions/v1",
             out);
    rc = slora_catalog_runtime_add(cat, "o", x, 0, 0, NULL, NULL, &ad, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "holds \"..\""),
       "... through a file outside: the same words: %s", err.msg);
    snprintf(x, sizeof(x), "%s/../runtime/.versions/v1", dir);
    rc = slora_catalog_runtime_add(cat, "back", x, 0, 0, NULL, NULL, &ad,
                                   &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "holds \"..\""),
       "... out of the root and back in: the same: %s", err.msg);

    /* a link under the root that leads out: refused, where it leads not
     * told */
    snprintf(link, sizeof(link), "%s/leak", dir);
    unlink(link);
    ok(symlink(out, link) == 0, "a link under the root to a folder outside");
    rc = slora_catalog_runtime_add(cat, "leak", link, 0, 0, NULL, NULL, &ad,
                                   &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "outside the adapter roots")
       && strstr(err.msg, out) == NULL,
       "... refused, its target not named: %s", err.msg);
    unlink(link);

    /* a link to the root is a way in: the path by its realpath */
    snprintf(link, sizeof(link), "%s/rootlink", tmp);
    unlink(link);
    ok(symlink(dir, link) == 0, "a link to the root");
    snprintf(x, sizeof(x), "%s/.versions/v1", link);
    is_int(slora_catalog_runtime_add(cat, "via", x, 0, 0, NULL, NULL, &ad,
                                     &err),
           SLORA_OK, "a folder through a link to the root: registered");
    rc = slora_catalog_adapter(cat, "via", &ad, &err);
    ok(rc == SLORA_OK && strcmp(ad->path, v1) == 0,
       "... at its realpath: %s", rc == SLORA_OK ? ad->path : err.msg);
    is_int(slora_catalog_runtime_drop(cat, "via", 0, &err), SLORA_OK,
           "... dropped");
    snprintf(x, sizeof(x), "%s/.versions/nothing", link);
    rc = slora_catalog_runtime_add(cat, "via", x, 0, 0, NULL, NULL, &ad,
                                   &err);
    ok(rc == SLORA_DECLINED && strstr(err.msg, "No adapter found at"),
       "a missing folder through the link: SLORA_DECLINED, as by the "
       "root's own name (vLLM's 404): %s", err.msg);
    snprintf(x, sizeof(x), "%s/nothing", hid);
    is_int(slora_catalog_runtime_add(cat, "n", x, 0, 0, NULL, NULL, &ad, &err),
           SLORA_DECLINED, "a missing folder: SLORA_DECLINED");
    rc = slora_catalog_runtime_add(cat, "e", empty, 0, 0, NULL, NULL, &ad,
                                   &err);
    ok(rc == SLORA_DECLINED && strstr(err.msg, "No adapter found"),
       "a folder with no adapter_config.json: SLORA_DECLINED (vLLM's 404):"
       " %s", err.msg);
    rc = slora_catalog_runtime_add(cat, "f", file, 0, 0, NULL, NULL, &ad,
                                   &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "not a folder"),
       "a file refused: %s", err.msg);
    ok(slora_catalog_adapter(cat, "o", &ad, &err) != SLORA_OK
       && slora_catalog_adapter(cat, "n", &ad, &err) != SLORA_OK
       && slora_catalog_adapter(cat, "f", &ad, &err) != SLORA_OK,
       "none of them found");

    /* a sub-folder of the registered name, and another one */
    snprintf(x, sizeof(x), "%s/sql", dir);
    mkdir(x, 0755);
    snprintf(x, sizeof(x), "%s/plain", dir);
    mkdir(x, 0755);
    touch_later(dir);
    is_int(slora_catalog_refresh(cat, &err), 1, "the folder changed");
    is_int(slora_catalog_adapters(cat, &list), 2, "sql and plain listed");
    rc = slora_catalog_adapter(cat, "sql", &ad, &err);
    ok(rc == SLORA_OK && strcmp(ad->path, v2) == 0,
       "sql still the registration, the sub-folder of its name shadowed");

    rc = slora_catalog_runtime_drop(cat, "plain", 0, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "remove the folder"),
       "a folder's adapter is no registration to drop: %s", err.msg);
    is_int(slora_catalog_runtime_drop(cat, "nope", 0, &err), SLORA_DECLINED,
           "an unknown name: SLORA_DECLINED");

    is_int(slora_catalog_runtime_drop(cat, "sql", 0, &err), SLORA_OK,
           "sql dropped");
    ok(!slora_catalog_runtime_has(cat, "sql"), "... no registration");
    is_int(slora_catalog_adapters(cat, &list), 1, "... not listed until "
           "the folder is read again");
    is_int(slora_catalog_refresh(cat, &err), 1, "the next refresh reads "
           "the folder again");
    is_int(slora_catalog_adapters(cat, &list), 2, "... sql listed again");
    snprintf(x, sizeof(x), "%s/sql", dir);
    rc = slora_catalog_adapter(cat, "sql", &ad, &err);
    ok(rc == SLORA_OK && strcmp(ad->path, x) == 0
       && strncmp(ad->version, "dir:", 4) == 0,
       "sql is its sub-folder now: %s", rc == SLORA_OK ? ad->path : err.msg);

    slora_catalog_free(cat);
}
