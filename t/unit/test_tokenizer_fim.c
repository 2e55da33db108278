/*
 * test_tokenizer_fim.c: the fill-in-the-middle marks a completion's
 * suffix puts around its prompt (slora_tokenizer_fim), on llama.cpp's
 * vocabulary test files (SLORA_VOCAB_DIR) and SmolLM2's (SLORA_SMOLLM2).
 */

#include <stdio.h>

#include "tap.h"
#include "slora_tokenizer.h"
#include "ref_files.h"


static void test_fim(const char *dir, const slora_tokenizer_t *smol);


int
main(void)
{
    slora_tokenizer_t  *smol;

    smol = ref_smollm2(NULL);
    test_fim(ref_vocab_dir(), smol);
    slora_tokenizer_free(smol);

    return done_testing();
}


/*
 * Fill-in-the-middle marks: found in the vocabularies that have them, by
 * their ids there (StarCoder's first ids; DeepSeek Coder's, whose
 * middle's mark is named "end" and the suffix's "hole"), none in those
 * without (Llama 2's, GPT-2's, SmolLM2's, whose vocabulary spells them
 * as text).
 */
static void
test_fim(const char *dir, const slora_tokenizer_t *smol)
{
    int                 rc;
    char                path[1024];
    size_t              i;
    int32_t             fim[3];
    slora_err_t         err;
    slora_tokenizer_t  *t;

    static const struct {
        const char  *name;
        int32_t      want[3];       /* -1: none */
    } cases[] = {
        { "starcoder", { 1, 3, 2 } },
        { "deepseek-coder", { 32016, 32015, 32017 } },
        { "llama-spm", { -1, -1, -1 } },
        { "gpt-2", { -1, -1, -1 } },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(path, sizeof(path), "%s/ggml-vocab-%s.gguf", dir,
                 cases[i].name);
        t = slora_tokenizer_load(path, &err);

        if (!ok(t != NULL, "fim: %s loads", cases[i].name)) {
            continue;
        }

        fim[0] = fim[1] = fim[2] = -1;
        rc = slora_tokenizer_fim(t, fim);

        if (cases[i].want[0] < 0) {
            ok(rc == SLORA_ERROR, "fim: %s has no marks", cases[i].name);

        } else {
            ok(rc == SLORA_OK && fim[0] == cases[i].want[0]
               && fim[1] == cases[i].want[1] && fim[2] == cases[i].want[2],
               "fim: %s's marks %d %d %d", cases[i].name, fim[0], fim[1],
               fim[2]);
        }

        slora_tokenizer_free(t);
    }

    ok(slora_tokenizer_fim(smol, fim) == SLORA_ERROR,
       "fim: SmolLM2 has no marks (its vocabulary spells them as text)");
}
