/*
 * ref_files.h: where the unit tests find the files they hold the code
 * to: llama.cpp's vocabulary test files from the reference sdist
 * (SLORA_VOCAB_DIR, else ref/ as tools/fetch-reference leaves it) and
 * SmolLM2's GGUF (SLORA_SMOLLM2, else models/ as make fetch-model leaves
 * it). A test without them bails out, saying how to get them.
 */

#ifndef REF_FILES_H
#define REF_FILES_H

#include <stdlib.h>
#include <sys/stat.h>

#include "tap.h"
#include "slora_tokenizer.h"


#define REF_VOCAB_DIR  "ref/llama_cpp_python-0.3.36/vendor/llama.cpp/models"
#define REF_SMOLLM2    "models/SmolLM2-135M-Instruct.Q4_1.gguf"


/* The folder of llama.cpp's ggml-vocab-*.gguf files. */
static inline const char *
ref_vocab_dir(void)
{
    const char   *dir;
    struct stat   st;

    dir = getenv("SLORA_VOCAB_DIR");
    dir = dir ? dir : REF_VOCAB_DIR;

    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        BAIL_OUT("%s: no llama.cpp vocab folder; run tools/fetch-reference "
                 "or set SLORA_VOCAB_DIR", dir);
    }

    return dir;
}


/* SmolLM2's tokenizer, loaded; *path (where not NULL) its file's. */
static inline slora_tokenizer_t *
ref_smollm2(const char **path)
{
    const char         *p;
    slora_err_t         err;
    slora_tokenizer_t  *t;

    p = getenv("SLORA_SMOLLM2");
    p = p ? p : REF_SMOLLM2;
    t = slora_tokenizer_load(p, &err);

    if (t == NULL) {
        BAIL_OUT("%s: %s (run make fetch-model)", p, err.msg);
    }

    if (path != NULL) {
        *path = p;
    }

    return t;
}

#endif /* REF_FILES_H */
