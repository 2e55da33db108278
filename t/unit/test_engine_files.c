/*
 * test_engine_files.c: adapter files rewritten in place, as the engine
 * looks at them (slora_engine_check_files): 64 adapters with copies a
 * look, in turn. Of 70 in host memory, the last one's rewrite is found
 * by the second look, not the first, and only its copy is dropped; two
 * looks more find nothing.
 */

#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "tiny_model.h"
#include "slora_engine.h"


#define MAXCTX   256


static char                   tmp[256];
static char                   model[300];
static slora_model_config_t   mcfg;


static void test_check_files(void);


int
main(void)
{
    char  cmd[300];

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-engine-files-XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    tiny_model_make(tmp, 7, MAXCTX, model, sizeof(model), &mcfg);
    test_check_files();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}


static void
test_check_files(void)
{
    int                   i;
    char                  root[400], name[32], path[500];
    FILE                 *f;
    int32_t               loaded, first_n;
    slora_err_t           err;
    const char           *which;
    slora_engine_t       *e;
    slora_engine_conf_t   conf;

    snprintf(root, sizeof(root), "%s/files", tmp);
    mkdir(root, 0755);

    for (i = 0; i < 70; i++) {
        snprintf(name, sizeof(name), "f%03d", i);
        tiny_adapter_make(&mcfg, root, name, 8, 0x05, 100 + i, 1.0f);
    }

    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.adapter_dir = root;
    conf.n_threads = 2;
    conf.max_batch_tokens = 64;
    conf.max_running = 8;
    conf.host_cache_bytes = (size_t) 64 << 20;

    e = tiny_engine_up(&conf, "files: engine up");
    if (e == NULL) {
        return;
    }

    i = slora_engine_preload(e, &loaded, &err);
    ok(i == SLORA_OK && loaded == 70, "files: 70 adapters in host memory "
       "(%d)", loaded);

    /* f069's config written over with the same text, a second ago */
    snprintf(path, sizeof(path), "%s/f069/adapter_config.json", root);
    f = fopen(path, "r+");
    if (f == NULL || (i = fgetc(f)) == EOF || fseek(f, 0, SEEK_SET) != 0
        || fputc(i, f) == EOF || fclose(f) != 0)
    {
        BAIL_OUT("cannot rewrite %s", path);
    }
    usleep(1100000);

    is_int(slora_engine_check_files(e, &which), 0,
           "files: the first look (f000..f063) finds nothing");
    i = slora_engine_check_files(e, &which);
    ok(i == 1 && which != NULL && strcmp(which, "f069") == 0,
       "files: the second finds f069 (%d: %s)", i, which ? which : "none");
    ok(tiny_count_tier(e, "disk", &first_n) == 1
       && tiny_count_tier(e, "host", &first_n) == 69,
       "files: f069's copy dropped, the 69 others kept");
    is_int(slora_engine_check_files(e, &which)
           + slora_engine_check_files(e, &which), 0,
           "files: two more looks (all 69 again) find nothing");

    slora_engine_free(e);
}
