/*
 * test_confine.c: where an adapter's folder may be: strictly under one of
 * the roots (slora_catalog_confine), judged by its real path, and short
 * enough that its files' paths fit the engine's (SLORA_ADAPTER_PATH_LEN).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "tap.h"
#include "slora_catalog_int.h"


static char  tmp[256];
static char  root[300];


static void test_confine(void);


int
main(void)
{
    char  cmd[300];

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-confine-XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    snprintf(root, sizeof(root), "%s/root", tmp);
    mkdir(root, 0755);

    test_confine();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}


/*
 * An adapter's path lies strictly under a root: not the root itself, and
 * not a sibling folder whose name only begins with the root's; under the
 * root "/", anything but "/". And a catalog name is never a path.
 */
static void
test_confine(void)
{
    int          rc;
    char         sib[600], in[600], *real_root, *slash, *out;
    char        *roots[1];
    slora_err_t  err;

    real_root = realpath(root, NULL);
    if (real_root == NULL) {
        BAIL_OUT("realpath %s", root);
    }
    roots[0] = real_root;

    snprintf(in, sizeof(in), "%s/a", root);
    snprintf(sib, sizeof(sib), "%s-evil", root);
    mkdir(in, 0755);
    mkdir(sib, 0755);

    out = NULL;
    rc = slora_catalog_confine(roots, 1, "a", in, &out, &err);
    ok(rc == SLORA_OK && out != NULL
       && strncmp(out, real_root, strlen(real_root)) == 0,
       "a folder under the root is taken: %s", out ? out : err.msg);
    free(out);

    out = NULL;
    rc = slora_catalog_confine(roots, 1, "evil", sib, &out, &err);
    ok(rc == SLORA_DECLINED && out == NULL
       && strstr(err.msg, "outside the adapter roots") != NULL,
       "a sibling that shares the root's prefix is refused: %s", err.msg);

    rc = slora_catalog_confine(roots, 1, "root", root, &out, &err);
    ok(rc == SLORA_DECLINED && strstr(err.msg, "outside") != NULL,
       "the root itself is refused: %s", err.msg);

    /* a folder whose files' paths would not fit SLORA_ADAPTER_PATH_LEN:
     * refused, not taken and then never opened */
    {
        char    deep[SLORA_ADAPTER_PATH_LEN + 256];
        size_t  len;

        len = (size_t) snprintf(deep, sizeof(deep), "%s", root);

        while (len < SLORA_ADAPTER_FOLDER_MAX) {
            len += (size_t) snprintf(deep + len, sizeof(deep) - len, "/%0200d",
                                     0);
            mkdir(deep, 0755);
        }

        out = NULL;
        rc = slora_catalog_confine(roots, 1, "deep", deep, &out, &err);
        ok(rc == SLORA_ERROR && out == NULL
           && strstr(err.msg, "more than the") != NULL,
           "a folder of %zu bytes is refused: %s", len, err.msg);

        while (len > strlen(root)) {
            rmdir(deep);
            len = (size_t) (strrchr(deep, '/') - deep);
            deep[len] = '\0';
        }
    }

    slash = (char *) "/";
    ok(slora_catalog_confine(&slash, 1, "top", "/", &out, &err)
       == SLORA_DECLINED, "under the root /, / itself is refused");
    out = NULL;
    ok(slora_catalog_confine(&slash, 1, "tmp", tmp, &out, &err) == SLORA_OK,
       "and a folder under it is taken");
    free(out);

    ok(!slora_catalog_valid_name("a/b") && !slora_catalog_valid_name("..")
       && !slora_catalog_valid_name("x/../y")
       && slora_catalog_valid_name("a.b"),
       "catalog names with a slash or \"..\" are not names");

    /* names go out in JSON: one that is not UTF-8 is none */
    ok(!slora_catalog_valid_name("caf\xe9")
       && !slora_catalog_valid_name("\xc3")
       && slora_catalog_valid_name("caf\xc3\xa9"),
       "a catalog name must be UTF-8 (Latin-1 \"caf\\xe9\" is none)");

    rmdir(in);
    rmdir(sib);
    free(real_root);
}
