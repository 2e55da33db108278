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
#include "fuzz_tok_check.h"


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
        fuzz_tok_check(t);
        slora_tokenizer_free(t);
    }

    close(fd);

    return 0;
}

