/*
 * fuzz_safetensors.c: libFuzzer harness for the safetensors reader. Each
 * input is opened from memory, every tensor is looked up by name and
 * converted to f32 when its dtype allows, and the __metadata__ is read.
 *
 * The one idea: a file that opens must be safe to read in full; one that
 * does not must say so with an error that names it.
 *
 * Build and run (from the repository root):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Wno-unknown-pragmas \
 *       -Iengine -I/usr/include/cjson t/fuzz/fuzz_safetensors.c \
 *       engine/slora_core.c engine/slora_tensor.c engine/slora_names.c \
 *       engine/slora_safetensors.c -lcjson -lm -o build/fuzz_safetensors
 *   mkdir -p t/fuzz/corpus-safetensors
 *   bin/slora mkmodel --format safetensors --out /tmp/fz --layers 1 \
 *       --hidden 8 --heads 2 --kv-heads 1 --ffn 16 --vocab 16
 *   cp /tmp/fz/model.safetensors t/fuzz/corpus-safetensors/tiny
 *   build/fuzz_safetensors -max_total_time=600 -max_len=65536 \
 *       t/fuzz/corpus-safetensors
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_safetensors.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    float                 *dst;
    int64_t                i;
    const char            *fmt;
    slora_err_t            err;
    slora_safetensors_t   *st;
    const slora_tensor_t  *t;

    st = slora_safetensors_open_mem(data, size, "fuzz.safetensors", &err);

    if (st == NULL) {
        if (strncmp(err.msg, "fuzz.safetensors: ", 18) != 0) {
            abort();
        }
        return 0;
    }

    fmt = slora_safetensors_meta(st, "format");
    if (fmt != NULL && strlen(fmt) > size) {
        abort();
    }

    for (i = 0; i < slora_safetensors_n_tensors(st); i++) {
        t = slora_safetensors_tensor(st, i);

        if (slora_safetensors_find(st, t->name) != t) {
            abort();
        }

        if (t->dtype == SLORA_DT_N || t->n_elems > (1 << 24)) {
            continue;
        }

        dst = malloc((size_t) t->n_elems * sizeof(float) + 1);
        if (dst != NULL) {
            if (slora_tensor_to_f32(t, dst, &err) != SLORA_OK) {
                abort();
            }
            free(dst);
        }
    }

    slora_safetensors_close(st);

    return 0;
}
