/*
 * test_adapter_files.c: a PEFT folder's files as the engine reads them
 * when they change under it or are not files at all. A weights file cut
 * short while its adapter is read (between the read and the page
 * images) leaves the image read from the bytes as they were, where a
 * mapping of it would fault (SIGBUS); with the catalog's sha256 pin, a
 * weights file swapped back and forth while adapters are read never
 * gives an image of the file the pin does not name: the pin is checked
 * on the bytes that are parsed.
 * A FIFO, a folder or a symlink where a file should be (to a file
 * outside the folder, to /dev/zero) is refused at once with a message
 * naming the adapter and the file, where it hung the engine or loaded
 * another folder's weights; so is a file larger than its config allows.
 * The host image is allocated only after every tensor is checked, and
 * for the modules that have weights: on a Llama 3 8B shape a folder of
 * r = 1024 over every module with no tensors is refused with no host
 * allocation (10.5 GiB were asked for in f32), one of a single layer's
 * q_proj pair gets an image of q_proj's rows only; tensors whose ranges
 * alias one block of the file are refused.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <sys/stat.h>

#include "tap.h"
#include "slora_adapter.h"
#include "slora_safetensors.h"
#include "tiny_config.h"


#define PAGE_ELEMS  512


static slora_model_config_t  cfg;
static char                  tmp[256];
static const char           *cut_path;
static atomic_int            swap_stop;
static int                   n_allocs;
static size_t                largest;


static void test_cut_short(void);
static void test_pin_swapped(void);
static void test_not_files(void);
static void test_checked_first(void);
static void big_config(slora_model_config_t *big);
static void *count_alloc(void *ctx, size_t bytes);
static void write_raw(const char *dir, const char *config,
    const char *header, size_t data_bytes);
static void check_refused(const char *name, const char *why);
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
    test_not_files();
    test_checked_first();

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


/*
 * What is no regular file of the folder. A FIFO blocked open() and a
 * read of /dev/zero never ended: the alarm fails the test instead of
 * hanging it.
 */
static void
test_not_files(void)
{
    int                    rc;
    char                   dir[512], path[600], other[600];
    char                   hex[SLORA_SHA256_HEX];
    slora_err_t            err;
    slora_adapter_conf_t   conf;

    alarm(20);

    snprintf(dir, sizeof(dir), "%s/fifo-config", tmp);
    write_adapter(dir, 4);
    snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
    unlink(path);
    if (mkfifo(path, 0644) != 0) {
        BAIL_OUT("mkfifo %s failed", path);
    }
    rc = slora_adapter_read_config(dir, &cfg, &conf, &err);
    ok(rc == SLORA_ERROR
       && strstr(err.msg, "fifo-config/adapter_config.json is not a "
                          "regular file (a FIFO)") != NULL,
       "a FIFO for adapter_config.json: refused: %s", err.msg);
    check_refused("fifo-config", "adapter_config.json is not a regular "
                  "file (a FIFO)");

    snprintf(dir, sizeof(dir), "%s/fifo-weights", tmp);
    write_adapter(dir, 4);
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    unlink(path);
    if (mkfifo(path, 0644) != 0) {
        BAIL_OUT("mkfifo %s failed", path);
    }
    check_refused("fifo-weights", "adapter_model.safetensors is not a "
                  "regular file (a FIFO)");
    ok(slora_sha256_file(path, hex, &err) == SLORA_ERROR
       && strstr(err.msg, "not a regular file") != NULL,
       "a FIFO is not hashed: %s", err.msg);

    snprintf(dir, sizeof(dir), "%s/folder-weights", tmp);
    write_adapter(dir, 4);
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    unlink(path);
    mkdir(path, 0755);
    check_refused("folder-weights", "adapter_model.safetensors is not a "
                  "regular file (a folder)");

    /* another adapter's weights, outside the folder, under this name */
    snprintf(dir, sizeof(dir), "%s/link-weights", tmp);
    write_adapter(dir, 4);
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    snprintf(other, sizeof(other), "%s/pin-b/adapter_model.safetensors",
             tmp);
    unlink(path);
    if (symlink(other, path) != 0) {
        BAIL_OUT("symlink %s failed", path);
    }
    check_refused("link-weights", "adapter_model.safetensors is a "
                  "symlink");
    ok(slora_adapter_file_sha256(dir, "adapter_model.safetensors", hex,
                                 &err)
       == SLORA_ERROR && strstr(err.msg, "is a symlink") != NULL,
       "a symlinked file is not hashed for the catalog either: %s",
       err.msg);

    snprintf(dir, sizeof(dir), "%s/link-config", tmp);
    write_adapter(dir, 4);
    snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
    snprintf(other, sizeof(other), "%s/pin-b/adapter_config.json", tmp);
    unlink(path);
    if (symlink(other, path) != 0) {
        BAIL_OUT("symlink %s failed", path);
    }
    check_refused("link-config", "adapter_config.json is a symlink");

    snprintf(dir, sizeof(dir), "%s/zero", tmp);
    write_adapter(dir, 4);
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    unlink(path);
    if (symlink("/dev/zero", path) != 0) {
        BAIL_OUT("symlink %s failed", path);
    }
    check_refused("zero", "adapter_model.safetensors is a symlink");

    /* r = 8 over every projection of the tiny shape: 64 KiB of f32 and
     * 16 MiB of header at most; a sparse file past that is not read */
    snprintf(dir, sizeof(dir), "%s/huge", tmp);
    write_adapter(dir, 4);
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    if (truncate(path, (off_t) (16 << 20) + 65537) != 0) {
        BAIL_OUT("truncate %s failed", path);
    }
    check_refused("huge", "adapter_model.safetensors: 16842753 bytes, "
                  "more than the 16842752 it may take");

    /* a symlink in the folder's path (the folder renamed away and a link
     * to another put in its place after the catalog judged its path, or
     * a folder above it so replaced): refused, naming the link; the
     * folder by its own path loads */
    snprintf(dir, sizeof(dir), "%s/real-parent", tmp);
    mkdir(dir, 0755);
    snprintf(dir, sizeof(dir), "%s/real-parent/adapter", tmp);
    write_adapter(dir, 4);
    snprintf(path, sizeof(path), "%s/link-parent", tmp);
    snprintf(other, sizeof(other), "%s/real-parent", tmp);
    if (symlink(other, path) != 0) {
        BAIL_OUT("symlink %s failed", path);
    }
    snprintf(path, sizeof(path), "%s/link-folder", tmp);
    if (symlink(dir, path) != 0) {
        BAIL_OUT("symlink %s failed", path);
    }
    check_refused("link-parent/adapter", "link-parent is a symlink");
    check_refused("link-folder", "link-folder is a symlink");
    ok(slora_adapter_file_sha256(path, "adapter_model.safetensors", hex,
                                 &err)
       == SLORA_ERROR && strstr(err.msg, "link-folder is a symlink") != NULL,
       "nor hashed for the catalog through it: %s", err.msg);
    ok(slora_adapter_file_sha256(dir, "adapter_model.safetensors", hex,
                                 &err)
       == SLORA_OK, "by its own path the folder is read: %s",
       err.msg);

    alarm(0);
}


static void
test_checked_first(void)
{
    int                          rc;
    char                         dir[512], path[600], header[1200];
    float                       *buf;
    int64_t                      dims[2];
    slora_err_t                  err;
    slora_host_mem_t             mem = { count_alloc, cut_free, NULL, 4 };
    slora_adapter_conf_t         q;
    slora_adapter_plan_t         plan;
    slora_model_config_t         big;
    slora_adapter_image_t        img;
    slora_safetensors_writer_t  *w;

    big_config(&big);

    /* 74 bytes: r = 1024 over every module, and "{}" */
    snprintf(dir, sizeof(dir), "%s/bomb", tmp);
    write_raw(dir, "{\"r\": 1024, \"target_modules\": \"all-linear\"}",
              "{}", 0);
    n_allocs = 0;
    largest = 0;
    rc = slora_adapter_image_load(&big, 16384, 1, &mem, "bomb", dir, NULL,
                                  &img, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "no LoRA weights") != NULL,
       "no tensors at r = 1024: refused: %s", err.msg);
    ok(n_allocs == 0, "... before any host image (%d asked for, the "
       "largest %zu bytes)", n_allocs, largest);

    /* all-linear at r = 16, weights for layer 0's q_proj only */
    snprintf(dir, sizeof(dir), "%s/one-pair", tmp);
    write_raw(dir, "{\"r\": 16, \"target_modules\": \"all-linear\"}",
              "{}", 0);
    buf = calloc((size_t) 16 * 4096, sizeof(float));
    w = slora_safetensors_writer_new();
    dims[0] = 16;
    dims[1] = 4096;
    slora_safetensors_writer_tensor(w, "base_model.model.model.layers.0."
                                    "self_attn.q_proj.lora_A.weight",
                                    SLORA_DT_F32, 2, dims, buf, &err);
    dims[0] = 4096;
    dims[1] = 16;
    slora_safetensors_writer_tensor(w, "base_model.model.model.layers.0."
                                    "self_attn.q_proj.lora_B.weight",
                                    SLORA_DT_F32, 2, dims, buf, &err);
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    if (slora_safetensors_writer_write(w, path, &err) != SLORA_OK) {
        BAIL_OUT("%s", err.msg);
    }
    slora_safetensors_writer_free(w);
    free(buf);

    memset(&q, 0, sizeof(q));
    q.rank = 16;
    q.proj_mask = 1u << SLORA_PROJ_Q;
    if (slora_adapter_plan(&big, &q, 16384, 1, &plan, &err) != SLORA_OK) {
        BAIL_OUT("%s", err.msg);
    }

    n_allocs = 0;
    largest = 0;
    rc = slora_adapter_image_load(&big, 16384, 1, &mem, "one-pair", dir,
                                  NULL, &img, &err);
    if (!ok(rc == SLORA_OK, "one layer's q_proj pair under all-linear: "
            "read"))
    {
        diag("%s", err.msg);

    } else {
        ok(img.conf.proj_mask == q.proj_mask
           && img.plan.n_pages == plan.n_pages
           && img.bytes == (size_t) big.n_layers * (size_t) plan.n_pages
                           * 16384 * sizeof(float)
           && n_allocs == 1 && largest == img.bytes,
           "... planned for q_proj alone: one image of %zu bytes (%zu "
           "asked for)", img.bytes, largest);
        slora_adapter_image_free(&img);
    }

    slora_adapter_plan_free(&plan);

    /* four tensors of 2 KiB over the same 2 KiB */
    snprintf(header, sizeof(header),
             "{\"base_model.model.model.layers.0.self_attn.q_proj.lora_A."
             "weight\": {\"dtype\": \"F32\", \"shape\": [8, 64], "
             "\"data_offsets\": [0, 2048]}, "
             "\"base_model.model.model.layers.0.self_attn.q_proj.lora_B."
             "weight\": {\"dtype\": \"F32\", \"shape\": [64, 8], "
             "\"data_offsets\": [0, 2048]}, "
             "\"base_model.model.model.layers.1.self_attn.q_proj.lora_A."
             "weight\": {\"dtype\": \"F32\", \"shape\": [8, 64], "
             "\"data_offsets\": [0, 2048]}, "
             "\"base_model.model.model.layers.1.self_attn.q_proj.lora_B."
             "weight\": {\"dtype\": \"F32\", \"shape\": [64, 8], "
             "\"data_offsets\": [0, 2048]}}");
    snprintf(dir, sizeof(dir), "%s/alias", tmp);
    write_raw(dir, "{\"r\": 8, \"target_modules\": [\"q_proj\"]}", header,
              2048);
    rc = slora_adapter_image_load(&cfg, PAGE_ELEMS, 1, NULL, "alias", dir,
                                  NULL, &img, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "overlap") != NULL,
       "tensors aliasing one block: refused: %s", err.msg);
    if (rc == SLORA_OK) {
        slora_adapter_image_free(&img);
    }
}


/* A Llama 3 8B's shape. */
static void
big_config(slora_model_config_t *big)
{
    memset(big, 0, sizeof(slora_model_config_t));
    strcpy(big->arch, "llama");
    big->n_layers = 32;
    big->hidden = 4096;
    big->n_heads = 32;
    big->n_kv_heads = 8;
    big->head_dim = 128;
    big->ffn = 14336;
    big->vocab = 128256;
    big->max_ctx = 8192;
    big->rope_theta = 500000;
    big->norm_eps = 1e-5f;
    big->rope = SLORA_ROPE_NEOX;
}


/* Counts what is asked for; more than 64 MiB is refused, not taken. */
static void *
count_alloc(void *ctx, size_t bytes)
{
    n_allocs++;
    if (bytes > largest) {
        largest = bytes;
    }

    return bytes > (64 << 20) ? NULL : calloc(1, bytes);
}


/* dir with config, and a safetensors file of header and data_bytes of
 * zeros. */
static void
write_raw(const char *dir, const char *config, const char *header,
    size_t data_bytes)
{
    char      path[600];
    FILE     *f;
    size_t    i;
    uint64_t  len;

    mkdir(dir, 0755);

    snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
    f = fopen(path, "w");
    if (f == NULL) {
        BAIL_OUT("cannot write %s", path);
    }
    fputs(config, f);
    fclose(f);

    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    f = fopen(path, "wb");
    if (f == NULL) {
        BAIL_OUT("cannot write %s", path);
    }
    len = strlen(header);
    fwrite(&len, 8, 1, f);
    fputs(header, f);
    for (i = 0; i < data_bytes; i++) {
        fputc(0, f);
    }
    fclose(f);
}


/* The folder tmp/name is refused as an adapter, with why and its name. */
static void
check_refused(const char *name, const char *why)
{
    int                    rc;
    char                   dir[512], adapter[300];
    slora_err_t            err;
    slora_adapter_image_t  img;

    snprintf(dir, sizeof(dir), "%s/%s", tmp, name);
    snprintf(adapter, sizeof(adapter), "adapter %s: ", name);

    rc = slora_adapter_image_load(&cfg, PAGE_ELEMS, 1, NULL, name, dir,
                                  "0000", &img, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, why) != NULL
       && strncmp(err.msg, adapter, strlen(adapter)) == 0
       && img.host == NULL,
       "%s: refused: %s", name, err.msg);
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
