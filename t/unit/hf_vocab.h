/*
 * hf_vocab.h: for the tokenizer tests: a GGUF's byte-level BPE
 * vocabulary written as a Hugging Face tokenizer.json, as SmolLM2 ships
 * its own (a Sequence of Digits, one digit a piece, then ByteLevel).
 *
 * The one idea: the GGUF is the reference's; the JSON made of it is the
 * HF loader's input, so both loaders can be held to the same ids. A test
 * adds what it needs (more added tokens, a config) before writing it.
 */

#ifndef HF_VOCAB_H
#define HF_VOCAB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "tap.h"
#include "slora_gguf.h"


/*
 * gguf_path's vocabulary as tokenizer.json's tree (the caller's to
 * delete): "model" a BPE of its vocab and merges ("a b" strings, or with
 * pairs ["a", "b"] lists), its control tokens (type 3) in
 * "added_tokens" as special ones, that list left in *added; *n_vocab the
 * vocabulary's size.
 */
static cJSON *
hf_vocab_from_gguf(const char *gguf_path, int pairs, cJSON **added,
    int32_t *n_vocab)
{
    char              *s, text[4096];
    size_t             len, k;
    int32_t            type;
    uint64_t           i;
    cJSON             *root, *model, *vocab, *merges, *pre, *seq, *o, *pair;
    slora_err_t        err;
    slora_gguf_t      *gg;
    slora_gguf_arr_t   toks, types, mrg;

    gg = slora_gguf_open(gguf_path, &err);
    if (gg == NULL
        || slora_gguf_get_arr(gg, "tokenizer.ggml.tokens", &toks, &err)
        || slora_gguf_get_arr(gg, "tokenizer.ggml.token_type", &types, &err)
        || slora_gguf_get_arr(gg, "tokenizer.ggml.merges", &mrg, &err))
    {
        BAIL_OUT("%s: %s", gguf_path, err.msg);
    }

    root = cJSON_CreateObject();
    model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    vocab = cJSON_AddObjectToObject(model, "vocab");
    merges = cJSON_AddArrayToObject(model, "merges");
    *added = cJSON_AddArrayToObject(root, "added_tokens");

    for (i = 0; i < toks.n; i++) {
        slora_gguf_arr_str(&toks, i, (const char **) &s, &len);
        slora_gguf_arr_i32(&types, i, &type);
        snprintf(text, sizeof(text), "%.*s", (int) len, s);
        cJSON_AddNumberToObject(vocab, text, (double) i);

        if (type == 3) {
            o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "id", (double) i);
            cJSON_AddStringToObject(o, "content", text);
            cJSON_AddBoolToObject(o, "special", 1);
            cJSON_AddItemToArray(*added, o);
        }
    }

    *n_vocab = (int32_t) toks.n;

    for (i = 0; i < mrg.n; i++) {
        slora_gguf_arr_str(&mrg, i, (const char **) &s, &len);
        snprintf(text, sizeof(text), "%.*s", (int) len, s);

        if (!pairs) {
            cJSON_AddItemToArray(merges, cJSON_CreateString(text));
            continue;
        }

        for (k = 1; k < len && text[k] != ' '; k++) {
            /* void */
        }

        text[k] = '\0';
        pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(text));
        cJSON_AddItemToArray(pair, cJSON_CreateString(text + k + 1));
        cJSON_AddItemToArray(merges, pair);
    }

    pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "Sequence");
    seq = cJSON_AddArrayToObject(pre, "pretokenizers");
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "Digits");
    cJSON_AddBoolToObject(o, "individual_digits", 1);
    cJSON_AddItemToArray(seq, o);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ByteLevel");
    cJSON_AddBoolToObject(o, "add_prefix_space", 0);
    cJSON_AddBoolToObject(o, "use_regex", 1);
    cJSON_AddItemToArray(seq, o);

    slora_gguf_close(gg);

    return root;
}


/* root written as dir/tokenizer.json (dir made under t/data/gen), and
 * deleted; the file's path in path. */
static void
hf_vocab_write(cJSON *root, const char *dir, char *path, size_t size)
{
    char  *s;
    FILE  *f;

    mkdir("t/data", 0755);
    mkdir("t/data/gen", 0755);
    mkdir(dir, 0755);

    snprintf(path, size, "%s/tokenizer.json", dir);
    s = cJSON_PrintUnformatted(root);
    f = fopen(path, "w");

    if (s == NULL || f == NULL || fputs(s, f) < 0 || fclose(f) != 0) {
        BAIL_OUT("%s: cannot be written", path);
    }

    free(s);
    cJSON_Delete(root);
}


#endif /* HF_VOCAB_H */
