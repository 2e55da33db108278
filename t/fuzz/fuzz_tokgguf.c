/*
 * fuzz_tokgguf.c: libFuzzer harness for the GGUF tokenizer loader
 * (slora_tokenizer_load on a GGUF file): tokenizer.ggml.model, tokens,
 * scores, token types, merges, the pre-tokenizer's name, the special ids
 * and the chat template, read from the bytes behind a memfd.
 *
 * The one idea: fuzz_gguf.c takes the reader and the model as far as
 * they go, fuzz_tokenizer.c encodes with fixed vocabularies; this one
 * builds the tokenizer itself from hostile metadata. A refusal names the
 * file; a tokenizer that loads encodes text, with and without special
 * tokens, to ids of its own vocabulary, and its special ids are in it.
 *
 * Build and run: `make fuzz-tokgguf` (mk/fuzz.mk), which seeds
 * t/fuzz/corpus-tokgguf with llama.cpp's vocabulary GGUFs and a tiny
 * model that carries a real tokenizer (tools/fuzz-seed).
 */

#define _GNU_SOURCE

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "slora_tokenizer.h"


#define FUZZ_TEXT  "Hello world 123 <|im_start|>user\n\xc3\xa9\xe2\x96\x81 x"


static void fuzz_check(slora_tokenizer_t *t);


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                 fd;
    char                path[64];
    slora_err_t         err;
    slora_tokenizer_t  *t;

    fd = memfd_create("fuzz-tokgguf", MFD_CLOEXEC);
    if (fd < 0) {
        perror("memfd_create");
        abort();
    }

    if (write(fd, data, size) != (ssize_t) size) {
        perror("write");
        abort();
    }

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    memset(&err, 0, sizeof(err));

    t = slora_tokenizer_load(path, &err);

    if (t == NULL) {
        if (strstr(err.msg, path) == NULL) {
            fprintf(stderr, "tokenizer refused without naming it: %s\n",
                    err.msg);
            abort();
        }

    } else {
        fuzz_check(t);
        slora_tokenizer_free(t);
    }

    close(fd);

    return 0;
}


static void
fuzz_check(slora_tokenizer_t *t)
{
    int          special;
    int32_t      ids[256], n, i, n_vocab;
    slora_err_t  err;

    n_vocab = slora_tokenizer_n_vocab(t);

    if (slora_tokenizer_bos(t) >= n_vocab
        || slora_tokenizer_eos(t) >= n_vocab)
    {
        fprintf(stderr, "bos %d, eos %d of a vocabulary of %d\n",
                (int) slora_tokenizer_bos(t), (int) slora_tokenizer_eos(t),
                (int) n_vocab);
        abort();
    }

    for (special = 0; special < 2; special++) {
        n = 0;

        if (slora_tokenizer_encode(t, FUZZ_TEXT, sizeof(FUZZ_TEXT) - 1, 1,
                                   special, ids, 256, &n, &err)
            != SLORA_OK)
        {
            continue;
        }

        for (i = 0; i < n && i < 256; i++) {
            if (ids[i] < 0 || ids[i] >= n_vocab) {
                fprintf(stderr, "id %d of a vocabulary of %d\n",
                        (int) ids[i], (int) n_vocab);
                abort();
            }
        }
    }
}
