/*
 * test_token_text.c: each token's vocabulary entry as the model file
 * spells it (slora_tokenizer_token_text, what /tokenize's
 * return_token_strs answers, HF's convert_ids_to_tokens) on SmolLM2's
 * byte-level BPE and on llama.cpp's SentencePiece test vocabulary: a
 * text's ids spelled back, each token's entry found again by its text,
 * and ids out of range.
 */

#include <stdint.h>
#include <string.h>

#include "tap.h"
#include "slora_tokenizer.h"
#include "ref_files.h"




static void spelled(const slora_tokenizer_t *t, const char *name,
    const char *text, const char *shown, int parse_special,
    const char *want);
static void entries(const slora_tokenizer_t *t, const char *name);


int
main(void)
{
    char                path[1024];
    const char         *dir;
    slora_err_t         err;
    slora_tokenizer_t  *smol, *spm;

    smol = ref_smollm2(NULL);
    dir = ref_vocab_dir();
    snprintf(path, sizeof(path), "%s/ggml-vocab-llama-spm.gguf", dir);
    spm = slora_tokenizer_load(path, &err);

    if (spm == NULL) {
        BAIL_OUT("%s: %s (run tools/fetch-reference)", path, err.msg);
    }

    /* byte-level BPE: a space is U+0120 and a newline U+010A, as in
     * tokenizer.json; a control token its own text */
    spelled(smol, "smollm2", "Hello world,\nhi", "Hello world,\\nhi", 0,
            "Hello|\xc4\xa0world|,|\xc4\x8a|hi");
    spelled(smol, "smollm2", "<|im_start|>user", "<|im_start|>user", 1,
            "<|im_start|>|user");

    /* SentencePiece: a space is U+2581, a byte with no piece <0xNN> */
    spelled(spm, "llama-spm", "Hello world\n", "Hello world\\n", 0,
            "\xe2\x96\x81Hello|\xe2\x96\x81world|<0x0A>");

    entries(smol, "smollm2");
    entries(spm, "llama-spm");

    slora_tokenizer_free(smol);
    slora_tokenizer_free(spm);

    return done_testing();
}


/* text's ids (no BOS), their entries joined by '|', against want; shown:
 * text as the test's name gives it */
static void
spelled(const slora_tokenizer_t *t, const char *name, const char *text,
    const char *shown, int parse_special, const char *want)
{
    char         got[1024];
    size_t       len, at;
    int32_t      ids[64], n, i;
    const char  *s;
    slora_err_t  err;

    if (!ok(slora_tokenizer_encode(t, text, strlen(text), 0, parse_special,
                                   ids, 64, &n, &err) == SLORA_OK,
            "%s: \"%s\" encodes", name, shown))
    {
        diag("%s", err.msg);
        return;
    }

    at = 0;

    for (i = 0; i < n; i++) {
        s = slora_tokenizer_token_text(t, ids[i], &len);

        if (s == NULL || at + len + 2 > sizeof(got)) {
            break;
        }

        if (i > 0) {
            got[at++] = '|';
        }

        memcpy(got + at, s, len);
        at += len;
    }

    got[at] = '\0';

    ok(i == n && strcmp(got, want) == 0,
       "%s: \"%s\" spelled as the vocabulary has it: %s", name, shown,
       got);
}


/* every entry names its own id again (slora_tokenizer_find), and ids
 * past either end have none */
static void
entries(const slora_tokenizer_t *t, const char *name)
{
    size_t       len;
    int32_t      id, n_vocab, bad;
    const char  *s;

    n_vocab = slora_tokenizer_n_vocab(t);
    bad = 0;

    for (id = 0; id < n_vocab; id++) {
        s = slora_tokenizer_token_text(t, id, &len);

        if (s == NULL || len == 0 || slora_tokenizer_find(t, s, len) != id) {
            bad++;
        }
    }

    ok(n_vocab > 1000 && bad == 0,
       "%s: each of the %d entries is its own token's text (%d not)", name,
       n_vocab, bad);

    len = 7;
    ok(slora_tokenizer_token_text(t, -1, &len) == NULL && len == 0
       && slora_tokenizer_token_text(t, n_vocab, &len) == NULL && len == 0,
       "%s: no entry for -1 or %d", name, n_vocab);
}
