/*
 * fuzz_hfmodel.c: libFuzzer harness for a Hugging Face model folder as
 * the engine loads it (slora_model_load on a folder): config.json, its
 * architecture, shape and RoPE keys, then model.safetensors, every
 * weight found by its name, its shape checked against the config and
 * converted to f32.
 *
 * An input is config.json's bytes, a NUL, then the safetensors bytes
 * (fuzz_folder.h writes them into a folder of this process's own).
 *
 * The one idea: a hostile folder is refused with an error that names a
 * file of it; one that loads has a shape the engine can run.
 *
 * Build and run: `make fuzz-hfmodel` (mk/fuzz.mk), which seeds
 * t/fuzz/corpus-hfmodel from `slora mkmodel --format safetensors`
 * folders (tools/fuzz-seed).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_model.h"
#include "fuzz_folder.h"


static const char *const  fuzz_files[] = { "config.json", "model.safetensors" };


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char                  *dir;
    slora_err_t                  err;
    slora_model_t               *m;
    const slora_model_config_t  *c;

    dir = fuzz_folder("hfmodel");
    fuzz_folder_write(dir, fuzz_files, 2, data, size);

    memset(&err, 0, sizeof(err));

    m = slora_model_load(dir, &err);

    if (m == NULL) {
        if (strstr(err.msg, dir) == NULL) {
            fprintf(stderr, "model refused without naming it: %s\n",
                    err.msg);
            abort();
        }
        return 0;
    }

    c = &m->cfg;

    if (c->n_layers < 1 || c->hidden < 1 || c->n_heads < 1
        || c->n_kv_heads < 1 || c->n_heads % c->n_kv_heads != 0
        || c->head_dim < 1 || c->ffn < 1 || c->vocab < 1 || c->max_ctx < 1)
    {
        fprintf(stderr, "model loaded with layers %d hidden %d heads %d/%d "
                "head_dim %d ffn %d vocab %d ctx %d\n", (int) c->n_layers,
                (int) c->hidden, (int) c->n_heads, (int) c->n_kv_heads,
                (int) c->head_dim, (int) c->ffn, (int) c->vocab,
                (int) c->max_ctx);
        abort();
    }

    slora_model_free(m);

    return 0;
}
