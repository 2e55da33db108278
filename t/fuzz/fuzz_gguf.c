/*
 * fuzz_gguf.c: libFuzzer harness for the GGUF reader and the model loader
 * on top of it. Each input is opened from memory, every metadata entry is
 * read through the typed getters (arrays element by element), every
 * tensor is dequantized; then the same bytes, behind a memfd, go through
 * slora_model_load().
 *
 * The one idea: the reader promises that whatever opens is safe to read
 * in full, so the harness reads all of it and lets ASan/UBSan judge.
 *
 * Build and run (from the repository root):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Wno-unknown-pragmas \
 *       -Iengine -I/usr/include/cjson t/fuzz/fuzz_gguf.c \
 *       engine/slora_core.c engine/slora_tensor.c engine/slora_names.c \
 *       engine/slora_gguf.c engine/slora_safetensors.c \
 *       engine/slora_model.c -lcjson -lm -o build/fuzz_gguf
 *   mkdir -p t/fuzz/corpus-gguf
 *   bin/slora mkmodel --out t/fuzz/corpus-gguf/tiny.gguf --layers 1 \
 *       --hidden 8 --heads 2 --kv-heads 1 --ffn 16 --vocab 16
 *   bin/slora mkmodel --out t/fuzz/corpus-gguf/qwen2.gguf --arch qwen2 \
 *       --layers 1 --hidden 8 --heads 2 --kv-heads 1 --ffn 16 --vocab 16 \
 *       --tied 1 --dtype f16
 *   head -c 65536 models/SmolLM2-135M-Instruct.Q4_1.gguf \
 *       > t/fuzz/corpus-gguf/smollm2-head.gguf
 *   build/fuzz_gguf -max_total_time=600 -max_len=65536 t/fuzz/corpus-gguf
 */

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "slora_gguf.h"
#include "slora_model.h"


static void fuzz_read_all(slora_gguf_t *g);
static void fuzz_load_model(const uint8_t *data, size_t size);


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    slora_err_t    err;
    slora_gguf_t  *g;

    g = slora_gguf_open_mem(data, size, "fuzz.gguf", &err);

    if (g == NULL) {
        if (strncmp(err.msg, "fuzz.gguf: ", 11) != 0) {
            abort();
        }
        return 0;
    }

    fuzz_read_all(g);
    slora_gguf_close(g);

    fuzz_load_model(data, size);

    return 0;
}


static void
fuzz_read_all(slora_gguf_t *g)
{
    int                    b;
    char                   buf[64], cbuf[32];
    size_t                 j;
    volatile unsigned      sum;
    float                  f, *dst;
    size_t                 len;
    int32_t                i32;
    int64_t                i;
    uint32_t               u32;
    uint64_t               k;
    const char            *key, *s;
    slora_err_t            err;
    slora_gguf_arr_t       a;
    const slora_tensor_t  *t;

    for (i = 0; i < slora_gguf_n_kv(g); i++) {
        key = slora_gguf_kv_key(g, i, &len);
        snprintf(buf, sizeof(buf), "%.*s", (int) len, key);

        if (slora_gguf_find_kv(g, buf) < 0 && strlen(buf) == len) {
            abort();
        }

        slora_gguf_get_u32(g, buf, &u32, &err);
        slora_gguf_get_i32(g, buf, &i32, &err);
        slora_gguf_get_f32(g, buf, &f, &err);
        slora_gguf_get_bool(g, buf, &b, &err);
        slora_gguf_get_str(g, buf, &s, &len, &err);
        slora_gguf_get_cstr(g, buf, cbuf, sizeof(cbuf), &err);

        if (slora_gguf_get_arr(g, buf, &a, &err) == SLORA_OK) {
            for (k = 0; k < a.n && k < 4096; k++) {
                if (slora_gguf_arr_str(&a, k, &s, &len) == SLORA_OK) {
                    for (j = 0, sum = 0; j < len; j++) {
                        sum += (unsigned char) s[j];
                    }
                }
                slora_gguf_arr_i32(&a, k, &i32);
                slora_gguf_arr_f32(&a, k, &f);
            }
        }
    }

    for (i = 0; i < slora_gguf_n_tensors(g); i++) {
        t = slora_gguf_tensor(g, i);

        if (slora_gguf_find_tensor(g, t->name) != t) {
            abort();
        }

        if (t->n_elems > (1 << 24)) {
            continue;
        }

        dst = malloc((size_t) t->n_elems * sizeof(float));
        if (dst != NULL) {
            if (slora_tensor_to_f32(t, dst, &err) != SLORA_OK) {
                abort();
            }
            free(dst);
        }
    }
}


static void
fuzz_load_model(const uint8_t *data, size_t size)
{
    int             fd;
    char            path[64];
    slora_err_t     err;
    slora_model_t  *m;

    fd = memfd_create("fuzz-model", MFD_CLOEXEC);
    if (fd < 0) {
        return;
    }

    if (write(fd, data, size) == (ssize_t) size) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        m = slora_model_load(path, &err);
        slora_model_free(m);
    }

    close(fd);
}
