/*
 * test_adapter_files.c: a PEFT folder's files as the engine reads them
 * when they change under it. A weights file cut short while its adapter
 * is read (between the read and the page images) leaves the image read
 * from the bytes as they were, where a mapping of it would fault
 * (SIGBUS); with the catalog's sha256 pin, a weights file swapped back
 * and forth while adapters are read never gives an image of the file the
 * pin does not name: the pin is checked on the bytes that are parsed.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <sys/stat.h>

#include "tap.h"
#include "slora_adapter.h"
#include "tiny_config.h"


#define PAGE_ELEMS  512


static slora_model_config_t  cfg;
static char                  tmp[256];
static const char           *cut_path;
static atomic_int            swap_stop;


static void test_cut_short(void);
static void test_pin_swapped(void);
static void *cut_alloc(void *ctx, size_t bytes);
static void cut_free(void *ctx, void *p, size_t bytes);
static void *swap_main(void *arg);
static void write_adapter(const char *dir, uint64_t seed);


int
main(void)
{
    char  *d, cmd[300];

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-adapter-files-XXXXXX");
    d = mkdtemp(tmp);
    if (d == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    tiny_config(&cfg, SLORA_ROPE_NEOX);
    test_cut_short();
    test_pin_swapped();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}


/*
 * The host image's allocation comes after the file is read and before
 * its tensors are converted: the file is cut to 100 bytes there, as
 * `cp new.safetensors adapter_model.safetensors` does first.
 */
static void
test_cut_short(void)
{
    int                    rc;
    char                   dir[512], path[600];
    slora_err_t            err;
    slora_host_mem_t       mem = { cut_alloc, cut_free, NULL, 4 };
    slora_adapter_image_t  ref, img;

    snprintf(dir, sizeof(dir), "%s/cut", tmp);
    write_adapter(dir, 1);
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);

    if (!ok(slora_adapter_image_load(&cfg, PAGE_ELEMS, 1, NULL, "cut", dir,
                                     NULL, &ref, &err)
            == SLORA_OK, "cut short: read whole first"))
    {
        diag("%s", err.msg);
        return;
    }

    cut_path = path;
    rc = slora_adapter_image_load(&cfg, PAGE_ELEMS, 1, &mem, "cut", dir,
                                  NULL, &img, &err);
    cut_path = NULL;

    if (!ok(rc == SLORA_OK, "cut short: the engine lives on, the adapter "
            "read from the bytes read before the cut"))
    {
        diag("%s", err.msg);
        slora_adapter_image_free(&ref);
        return;
    }

    ok(img.bytes == ref.bytes && memcmp(img.host, ref.host, img.bytes) == 0,
       "cut short: the image is the whole file's");

    slora_adapter_image_free(&img);
    slora_adapter_image_free(&ref);

    ok(slora_adapter_image_load(&cfg, PAGE_ELEMS, 1, NULL, "cut", dir, NULL,
                                &img, &err)
       == SLORA_ERROR && strstr(err.msg, "adapter_model.safetensors") != NULL,
       "cut short: read again, the 100 bytes left are refused: %s", err.msg);
}


/*
 * adapter_model.safetensors swapped between two adapters' files (rename
 * over it, as a deploy does) while it is read over and over with the
 * first one's sha256 pinned: every load either is the first file's or is
 * refused; none is the second's.
 */
static void
test_pin_swapped(void)
{
    int                    i, good, refused, other;
    char                   a[512], b[512], dir[512], files[3][600];
    char                   hex[SLORA_SHA256_HEX];
    int64_t                until;
    pthread_t              th;
    slora_err_t            err;
    slora_adapter_image_t  ref, img;

    snprintf(a, sizeof(a), "%s/pin-a", tmp);
    snprintf(b, sizeof(b), "%s/pin-b", tmp);
    snprintf(dir, sizeof(dir), "%s/pin", tmp);
    write_adapter(a, 2);
    write_adapter(b, 3);
    write_adapter(dir, 2);

    snprintf(files[0], sizeof(files[0]), "%s/adapter_model.safetensors", a);
    snprintf(files[1], sizeof(files[1]), "%s/adapter_model.safetensors", b);
    snprintf(files[2], sizeof(files[2]), "%s/adapter_model.safetensors",
             dir);

    if (slora_sha256_file(files[0], hex, &err) != SLORA_OK
        || slora_adapter_image_load(&cfg, PAGE_ELEMS, 1, NULL, "pin", dir,
                                    hex, &ref, &err)
           != SLORA_OK)
    {
        BAIL_OUT("pin: %s", err.msg);
    }

    atomic_store(&swap_stop, 0);
    if (pthread_create(&th, NULL, swap_main, files) != 0) {
        BAIL_OUT("pthread_create failed");
    }

    good = 0;
    refused = 0;
    other = 0;
    until = slora_now_ns() + 1500000000LL;

    for (i = 0; i < 20000 && slora_now_ns() < until; i++) {
        if (slora_adapter_image_load(&cfg, PAGE_ELEMS, 1, NULL, "pin", dir,
                                     hex, &img, &err)
            != SLORA_OK)
        {
            refused += strstr(err.msg, "the catalog says") != NULL;
            continue;
        }

        if (img.bytes == ref.bytes
            && memcmp(img.host, ref.host, img.bytes) == 0)
        {
            good++;

        } else {
            other++;
        }

        slora_adapter_image_free(&img);
    }

    atomic_store(&swap_stop, 1);
    pthread_join(th, NULL);

    diag("pin: %d loads: %d the pinned file's, %d refused by the pin, "
         "%d another's", i, good, refused, other);
    is_int(other, 0, "pin: no load gives weights the pin does not name");
    ok(good > 0, "pin: the pinned file loads");

    slora_adapter_image_free(&ref);
}


/* Swaps files[2] between copies of files[0] and files[1] until told. */
static void *
swap_main(void *arg)
{
    int     k;
    char    link_path[620];
    char  (*files)[600] = arg;

    snprintf(link_path, sizeof(link_path), "%s.new", files[2]);

    for (k = 0; !atomic_load(&swap_stop); k ^= 1) {
        unlink(link_path);
        if (link(files[k], link_path) != 0
            || rename(link_path, files[2]) != 0)
        {
            diag("swap: cannot link %s over %s", files[k], files[2]);
            break;
        }
    }

    return NULL;
}


static void *
cut_alloc(void *ctx, size_t bytes)
{
    if (cut_path != NULL && truncate(cut_path, 100) != 0) {
        diag("cannot truncate %s", cut_path);
    }

    return calloc(1, bytes);
}


static void
cut_free(void *ctx, void *p, size_t bytes)
{
    free(p);
}


/* A random adapter of r = 8 over every projection. */
static void
write_adapter(const char *dir, uint64_t seed)
{
    slora_err_t          err;
    slora_adapter_gen_t  gen = { 8, 16, 0x7f, 0, 0.5f };

    gen.seed = seed;

    if (slora_adapter_write_random(dir, &cfg, &gen, &err) != SLORA_OK) {
        BAIL_OUT("%s: %s", dir, err.msg);
    }
}
