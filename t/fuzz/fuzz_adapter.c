/*
 * fuzz_adapter.c: libFuzzer harness for a PEFT adapter folder as the
 * engine loads it: adapter_config.json (its keys, target_modules as a
 * list, a string or a regex), then adapter_model.safetensors, each
 * tensor's name mapped to a layer and projection, its shape checked
 * against the model and r, and its rows put into page images.
 *
 * An input is the config's bytes, a NUL, then the safetensors bytes
 * (fuzz_folder.h writes them into a folder of this process's own), and
 * the folder is loaded for a small Llama shape (2 layers, hidden 16,
 * 2 heads of 8, one kv head, ffn 32), whose rope permutes q and k's B
 * rows.
 *
 * The one idea: a hostile folder is refused with an error that names
 * the file or the adapter; one that loads gives page images that can be
 * read in full.
 *
 * Build and run: `make fuzz-adapter` (mk/fuzz.mk), which seeds
 * t/fuzz/corpus-adapter from `slora mkadapter` folders (tools/fuzz-seed).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_adapter.h"
#include "fuzz_folder.h"


#define FUZZ_PAGE_ELEMS  512            /* divides every width of the
                                         * shape: 8, 16, 32 */


static const char *const  fuzz_files[] = {
    "adapter_config.json", "adapter_model.safetensors"
};

static volatile uint8_t  fuzz_sink;

static void fuzz_shape(slora_model_config_t *cfg);


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                  i;
    uint8_t                 sum;
    const char             *dir;
    const uint8_t          *bytes;
    slora_err_t             err;
    slora_model_config_t    cfg;
    slora_adapter_conf_t    conf;
    slora_adapter_image_t   img;

    dir = fuzz_folder("adapter");
    fuzz_folder_write(dir, fuzz_files, 2, data, size);

    fuzz_shape(&cfg);

    memset(&err, 0, sizeof(err));

    if (slora_adapter_read_config(dir, &cfg, &conf, &err) != SLORA_OK) {
        if (strstr(err.msg, "adapter_config.json") == NULL) {
            fprintf(stderr, "config refused without naming it: %s\n",
                    err.msg);
            abort();
        }
        return 0;
    }

    if (conf.rank < 1 || conf.rank > SLORA_ADAPTER_MAX_RANK
        || conf.proj_mask == 0 || conf.proj_mask >= 1u << SLORA_PROJ_N)
    {
        fprintf(stderr, "config read with rank %d, targets 0x%x\n",
                (int) conf.rank, (unsigned) conf.proj_mask);
        abort();
    }

    memset(&err, 0, sizeof(err));

    if (slora_adapter_image_load(&cfg, FUZZ_PAGE_ELEMS, 1, NULL, "fuzz",
                                 dir, NULL, &img, &err)
        != SLORA_OK)
    {
        if (strstr(err.msg, dir) == NULL && strstr(err.msg, "fuzz") == NULL)
        {
            fprintf(stderr, "adapter refused without naming it: %s\n",
                    err.msg);
            abort();
        }
        if (img.host != NULL) {
            fprintf(stderr, "a refused adapter kept its images\n");
            abort();
        }
        return 0;
    }

    if (img.host == NULL || img.bytes == 0) {
        fprintf(stderr, "an adapter loaded without images\n");
        abort();
    }

    /* every byte of the images, for ASan to judge */
    bytes = img.host;
    sum = 0;
    for (i = 0; i < img.bytes; i++) {
        sum ^= bytes[i];
    }
    fuzz_sink = sum;

    slora_adapter_image_free(&img);

    return 0;
}


static void
fuzz_shape(slora_model_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->arch, "llama");
    cfg->n_layers = 2;
    cfg->hidden = 16;
    cfg->n_heads = 2;
    cfg->n_kv_heads = 1;
    cfg->head_dim = 8;
    cfg->ffn = 32;
    cfg->vocab = 32;
    cfg->max_ctx = 32;
    cfg->rope_theta = 10000;
    cfg->norm_eps = 1e-5f;
    cfg->rope = SLORA_ROPE_NORM;
}
