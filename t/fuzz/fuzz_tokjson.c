/*
 * fuzz_tokjson.c: libFuzzer harness for the Hugging Face tokenizer loader
 * (slora_tokenizer_load on a folder): tokenizer.json's vocab, added
 * tokens, merges and pre-tokenizer tree, whose regexes go to PCRE2, then
 * tokenizer_config.json's special tokens and chat template, whose text
 * picks the chat format and its default system message.
 *
 * An input is tokenizer.json's bytes, a NUL, then tokenizer_config.json's
 * (fuzz_folder.h writes them into a folder of this process's own); an
 * input without a NUL is a folder without a config, as many are.
 *
 * The one idea: a hostile folder is refused with an error that names a
 * file of it; one that loads has its special ids in its vocabulary and
 * encodes text, with and without special tokens, to ids of it. (A load
 * that takes long, as ids far past the entries once did, is libFuzzer's
 * slow unit.)
 *
 * Build and run: `make fuzz-tokjson` (mk/fuzz.mk), which seeds
 * t/fuzz/corpus-tokjson from the reference's real vocabularies made
 * into tokenizer.json folders (tools/fuzz-seed).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slora_tokenizer.h"
#include "fuzz_folder.h"
#include "fuzz_tok_check.h"


static const char *const  fuzz_files[] = {
    "tokenizer.json", "tokenizer_config.json"
};


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                path[256];
    const char         *dir;
    struct stat         st;
    slora_err_t         err;
    slora_tokenizer_t  *t;

    dir = fuzz_folder("tokjson");
    fuzz_folder_write(dir, fuzz_files, 2, data, size);

    /* an empty config is none */
    snprintf(path, sizeof(path), "%s/%s", dir, fuzz_files[1]);

    if (stat(path, &st) == 0 && st.st_size == 0) {
        unlink(path);
    }

    memset(&err, 0, sizeof(err));

    t = slora_tokenizer_load(dir, &err);

    if (t == NULL) {
        if (strstr(err.msg, dir) == NULL) {
            fprintf(stderr, "tokenizer refused without naming it: %s\n",
                    err.msg);
            abort();
        }
        return 0;
    }

    fuzz_tok_check(t);

    slora_tokenizer_free(t);

    return 0;
}
