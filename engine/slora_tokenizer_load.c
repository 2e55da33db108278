/*
 * slora_tokenizer_load.c: builds a tokenizer from a GGUF file's
 * tokenizer.* metadata, or from an HF tokenizer.json (with its
 * tokenizer_config.json for BOS, EOS and the chat template).
 *
 * The one idea: both formats are reduced to the same few facts (tokens
 * with scores and types, merges in rank order, a pre-tokenizer as a list
 * of regexes, special ids, the BOS policy) and handed to the builder in
 * slora_tokenizer.c. tokenizer.json's pre_tokenizer tree is flattened to
 * the regex list: ByteLevel's own regex, Split patterns, and Digits.
 */

#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "slora_gguf.h"
#include "slora_tokenizer_int.h"


#define SLORA_TOK_JSON_MAX   (512u << 20)

/* tokenizer.json's ids may leave gaps, each made an [UNUSED_n] token,
 * but the ids may run past the n entries listed (vocab and added_tokens)
 * by n / 8 + SLORA_TOK_JSON_GAPS at most: a real vocabulary numbers its
 * tokens densely, and one id near 2^24 in a file of two entries would
 * make 16M filler tokens (half a minute and 900 MB) */
#define SLORA_TOK_JSON_GAPS  1024

#define SLORA_RE_BYTELEVEL                                                    \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+"        \
    "|\\s+(?!\\S)|\\s+"


static int slora_tok_gguf_merges(slora_tokenizer_t *t, const slora_gguf_t *g,
    slora_err_t *err);
static void slora_tok_guess_chat(slora_tokenizer_t *t, const char *tmpl,
    size_t len);
static int slora_tok_json_pre(slora_tokenizer_t *t, const cJSON *pre,
    slora_err_t *err);
static int slora_tok_json_is_spm(const cJSON *root);
static const char *slora_tok_json_token_text(const cJSON *v);
static int slora_tok_json_config(slora_tokenizer_t *t, const cJSON *root,
    const char *config_path, slora_err_t *err);


slora_tokenizer_t *
slora_tokenizer_load(const char *path, slora_err_t *err)
{
    char                tj[4096], tc[4096];
    size_t              n;
    struct stat         st;

    if (stat(path, &st) != 0) {
        slora_err_set(err, SLORA_ERROR, "%s: cannot open tokenizer", path);
        return NULL;
    }

    if (S_ISDIR(st.st_mode)) {
        snprintf(tj, sizeof(tj), "%s/tokenizer.json", path);
        snprintf(tc, sizeof(tc), "%s/tokenizer_config.json", path);
        return slora_tok_load_json(tj, tc, err);
    }

    n = strlen(path);

    if (n >= 5 && strcmp(path + n - 5, ".json") == 0) {
        snprintf(tc, sizeof(tc), "%s", path);
        n = strlen(tc);

        while (n > 0 && tc[n - 1] != '/') {
            n--;
        }

        snprintf(tc + n, sizeof(tc) - n, "tokenizer_config.json");

        return slora_tok_load_json(path, tc, err);
    }

    return slora_tok_load_gguf(path, err);
}


/* GGUF */


static int
slora_tok_gguf_merges(slora_tokenizer_t *t, const slora_gguf_t *g,
    slora_err_t *err)
{
    int                rc;
    uint64_t           i;
    size_t             len, k;
    const char        *s;
    slora_gguf_arr_t   a;

    rc = slora_gguf_get_arr(g, "tokenizer.ggml.merges", &a, err);
    if (rc == SLORA_DECLINED) {
        return slora_err_set(err, SLORA_ERROR,
                             "%s: BPE vocabulary without "
                             "tokenizer.ggml.merges", t->path);
    }

    if (rc != SLORA_OK) {
        return SLORA_ERROR;
    }

    for (i = 0; i < a.n; i++) {
        if (slora_gguf_arr_str(&a, i, &s, &len) != SLORA_OK) {
            return slora_err_set(err, SLORA_ERROR,
                                 "%s: tokenizer.ggml.merges[%llu] is not a "
                                 "string", t->path, (unsigned long long) i);
        }

        /* "left right", the split at the first space after byte 0 */
        for (k = 1; k < len && s[k] != ' '; k++) {
            /* void */
        }

        if (k >= len || i > INT32_MAX) {
            continue;                       /* llama.cpp ignores these */
        }

        if (slora_tok_add_merge(t, s, k, s + k + 1, len - k - 1,
                                (int32_t) i) != SLORA_OK)
        {
            return slora_err_set(err, SLORA_ERROR,
                                 "%s: out of memory for merges", t->path);
        }
    }

    return SLORA_OK;
}


slora_tokenizer_t *
slora_tok_load_gguf(const char *path, slora_err_t *err)
{
    int                 rc, b, have_scores, have_types;
    char                model[32], pre[64];
    float               score;
    size_t              len;
    int32_t             type, id, iscore;
    uint32_t            u;
    uint64_t            i;
    const char         *s;
    slora_gguf_t       *g;
    slora_gguf_arr_t    toks, scores, types;
    slora_tok_kind_e    kind;
    slora_tokenizer_t  *t;

    t = NULL;

    g = slora_gguf_open(path, err);
    if (g == NULL) {
        return NULL;
    }

    rc = slora_gguf_get_cstr(g, "tokenizer.ggml.model", model, sizeof(model),
                             err);
    if (rc != SLORA_OK) {
        if (rc == SLORA_DECLINED) {
            slora_err_set(err, SLORA_ERROR, "%s: no tokenizer.ggml.model",
                          path);
        }

        goto failed;
    }

    if (strcmp(model, "llama") == 0) {
        kind = SLORA_TOK_SPM;

    } else if (strcmp(model, "gpt2") == 0) {
        kind = SLORA_TOK_BPE;

    } else {
        slora_err_set(err, SLORA_ERROR, "%s: tokenizer model \"%s\" is not "
                      "supported (only \"llama\" and \"gpt2\")", path, model);
        goto failed;
    }

    if (slora_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks, err)
        != SLORA_OK)
    {
        slora_err_prefix(err, "tokenizer");
        goto failed;
    }

    if (toks.type != SLORA_GGUF_STR || toks.n == 0 || toks.n > (1 << 24)) {
        slora_err_set(err, SLORA_ERROR, "%s: tokenizer.ggml.tokens is not a "
                      "list of 1 to 2^24 strings", path);
        goto failed;
    }

    t = slora_tok_new(kind, (int32_t) toks.n, path, err);
    if (t == NULL) {
        goto failed;
    }

    rc = slora_gguf_get_arr(g, "tokenizer.ggml.scores", &scores, err);
    have_scores = rc == SLORA_OK;

    if (rc == SLORA_ERROR || (have_scores && scores.n < toks.n)) {
        slora_err_set(err, SLORA_ERROR, "%s: tokenizer.ggml.scores: not an "
                      "array of %llu numbers", path,
                      (unsigned long long) toks.n);
        goto failed;
    }

    rc = slora_gguf_get_arr(g, "tokenizer.ggml.token_type", &types, err);
    have_types = rc == SLORA_OK;

    if (rc == SLORA_ERROR || (have_types && types.n < toks.n)) {
        slora_err_set(err, SLORA_ERROR, "%s: tokenizer.ggml.token_type: not "
                      "an array of %llu integers", path,
                      (unsigned long long) toks.n);
        goto failed;
    }

    for (i = 0; i < toks.n; i++) {
        score = 0.0f;
        iscore = INT32_MIN;
        type = SLORA_TOK_NORMAL;

        if (slora_gguf_arr_str(&toks, i, &s, &len) != SLORA_OK
            || (have_scores && slora_gguf_arr_f32(&scores, i, &score)
                               != SLORA_OK
                && slora_gguf_arr_i32(&scores, i, &iscore) != SLORA_OK)
            || (have_types && slora_gguf_arr_i32(&types, i, &type)
                              != SLORA_OK))
        {
            slora_err_set(err, SLORA_ERROR, "%s: tokenizer entry %llu is "
                          "malformed", path, (unsigned long long) i);
            goto failed;
        }

        if (iscore != INT32_MIN) {
            score = (float) iscore;
        }

        if (slora_tok_set_token(t, (int32_t) i, s, len, score, type, err)
            != SLORA_OK)
        {
            goto failed;
        }
    }

    if (kind == SLORA_TOK_SPM) {
        t->bos = 1;
        t->eos = 2;
        t->unk = 0;
        t->add_bos = 1;
        t->add_space_prefix = 1;

    } else {
        if (slora_tok_gguf_merges(t, g, err) != SLORA_OK) {
            goto failed;
        }

        rc = slora_gguf_get_cstr(g, "tokenizer.ggml.pre", pre, sizeof(pre),
                                 err);
        if (rc == SLORA_ERROR) {
            goto failed;
        }

        if (slora_tok_set_pre(t, rc == SLORA_OK ? pre : "default", err)
            != SLORA_OK)
        {
            goto failed;
        }
    }

    {
        static const struct {
            const char  *key;
            size_t       field;
        } ids[] = {
            { "tokenizer.ggml.bos_token_id",
              offsetof(slora_tokenizer_t, bos) },
            { "tokenizer.ggml.eos_token_id",
              offsetof(slora_tokenizer_t, eos) },
            { "tokenizer.ggml.eot_token_id",
              offsetof(slora_tokenizer_t, eot) },
            { "tokenizer.ggml.eom_token_id",
              offsetof(slora_tokenizer_t, eom) },
            { "tokenizer.ggml.unknown_token_id",
              offsetof(slora_tokenizer_t, unk) },
        };
        size_t  k;

        for (k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
            rc = slora_gguf_get_u32(g, ids[k].key, &u, err);

            if (rc == SLORA_ERROR) {
                goto failed;
            }

            if (rc == SLORA_OK && u < (uint32_t) t->n_vocab) {
                id = (int32_t) u;
                memcpy((char *) t + ids[k].field, &id, sizeof(id));
            }
        }
    }

    rc = slora_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b, err);
    if (rc == SLORA_ERROR) {
        goto failed;
    }

    if (rc == SLORA_OK) {
        t->add_bos = b ? 1 : 0;
    }

    if (kind == SLORA_TOK_SPM) {
        rc = slora_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b,
                                 err);
        if (rc == SLORA_ERROR) {
            goto failed;
        }

        if (rc == SLORA_OK) {
            t->add_space_prefix = b ? 1 : 0;
        }
    }

    rc = slora_gguf_get_str(g, "tokenizer.chat_template", &s, &len, err);
    if (rc == SLORA_ERROR) {
        goto failed;
    }

    if (slora_tok_finish(t, err) != SLORA_OK) {
        goto failed;
    }

    slora_tok_guess_chat(t, rc == SLORA_OK ? s : NULL, len);
    slora_gguf_close(g);

    return t;

failed:

    slora_tokenizer_free(t);
    slora_gguf_close(g);

    return NULL;
}


/* A template's text decides; without one the vocabulary does. The
 * template writes the BOS first where its text names bos_token (Llama's,
 * Mistral's; not Qwen's or SmolLM2's ChatML, whatever the tokenizer
 * adds: a ChatML fine-tune of a Mistral base has none, as vLLM renders
 * it); without a template, where the tokenizer adds one. Called once
 * add_bos is known. */
static void
slora_tok_guess_chat(slora_tokenizer_t *t, const char *tmpl, size_t len)
{
    t->chat_bos = tmpl != NULL && len > 0
                  ? memmem(tmpl, len, "bos_token", 9) != NULL
                  : t->add_bos;

    if (tmpl != NULL && len > 0) {
        t->chat = slora_chat_detect(tmpl, len);
        t->chat_system = slora_chat_default_system(t->chat, tmpl, len);
        t->chat_think = t->chat == SLORA_CHAT_CHATML
                        && memmem(tmpl, len, "enable_thinking", 15) != NULL;
        t->chat_call_ids = t->chat != SLORA_CHAT_MISTRAL_V7
                           || memmem(tmpl, len, "[CALL_ID]", 9) != NULL;
        t->chat_flags = slora_chat_template_flags(t->chat, tmpl, len);
        return;
    }

    t->chat_call_ids = 1;

    if (slora_tokenizer_find(t, "<|im_start|>", 12) >= 0) {
        t->chat = SLORA_CHAT_CHATML;

    } else if (slora_tokenizer_find(t, "<|start_header_id|>", 19) >= 0) {
        t->chat = SLORA_CHAT_LLAMA3;

    } else if (slora_tokenizer_find(t, "[INST]", 6) >= 0) {
        t->chat = SLORA_CHAT_MISTRAL;

    } else if (slora_tokenizer_find(t, "<\xef\xbd\x9cUser\xef\xbd\x9c>", 12)
               >= 0)
    {
        t->chat = SLORA_CHAT_DEEPSEEK_R1;

    } else if (t->kind == SLORA_TOK_SPM) {
        t->chat = SLORA_CHAT_LLAMA2;

    } else {
        t->chat = SLORA_CHAT_CHATML;
    }
}


/* tokenizer.json */


static int
slora_tok_json_pre(slora_tokenizer_t *t, const cJSON *pre, slora_err_t *err)
{
    char         *q;
    size_t        n, k, j;
    const char   *type, *s;
    const cJSON  *it, *pat, *v;

    if (pre == NULL || cJSON_IsNull(pre)) {
        return SLORA_OK;
    }

    type = cJSON_GetStringValue(cJSON_GetObjectItem(pre, "type"));
    if (type == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: pre_tokenizer without "
                             "a type", t->path);
    }

    if (strcmp(type, "Sequence") == 0) {
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(pre, "pretokenizers")) {
            if (slora_tok_json_pre(t, it, err) != SLORA_OK) {
                return SLORA_ERROR;
            }
        }

        return SLORA_OK;
    }

    if (strcmp(type, "ByteLevel") == 0) {
        v = cJSON_GetObjectItem(pre, "use_regex");

        if (v == NULL || cJSON_IsTrue(v)) {
            return slora_tok_add_regex(t, SLORA_RE_BYTELEVEL, err);
        }

        return SLORA_OK;
    }

    if (strcmp(type, "Digits") == 0) {
        v = cJSON_GetObjectItem(pre, "individual_digits");

        return slora_tok_add_regex(t, cJSON_IsTrue(v) ? "\\p{N}" : "\\p{N}+",
                                   err);
    }

    if (strcmp(type, "Split") == 0) {
        s = cJSON_GetStringValue(cJSON_GetObjectItem(pre, "behavior"));

        if (s != NULL && strcmp(s, "Isolated") != 0) {
            return slora_err_set(err, SLORA_ERROR, "%s: Split pre-tokenizer "
                                 "behavior \"%s\" is not supported", t->path,
                                 s);
        }

        pat = cJSON_GetObjectItem(pre, "pattern");
        s = cJSON_GetStringValue(cJSON_GetObjectItem(pat, "Regex"));

        if (s != NULL) {
            return slora_tok_add_regex(t, s, err);
        }

        s = cJSON_GetStringValue(cJSON_GetObjectItem(pat, "String"));
        if (s == NULL) {
            return slora_err_set(err, SLORA_ERROR, "%s: Split pre-tokenizer "
                                 "without a pattern", t->path);
        }

        /* a literal: escape every non-alphanumeric ASCII character */
        n = strlen(s);
        q = malloc(n * 2 + 1);
        if (q == NULL) {
            return slora_err_set(err, SLORA_ERROR, "%s: out of memory",
                                 t->path);
        }

        for (k = 0, j = 0; k < n; k++) {
            if ((unsigned char) s[k] < 0x80
                && !((s[k] >= '0' && s[k] <= '9')
                     || ((s[k] | 0x20) >= 'a' && (s[k] | 0x20) <= 'z')))
            {
                q[j++] = '\\';
            }

            q[j++] = s[k];
        }

        q[j] = '\0';
        k = (size_t) slora_tok_add_regex(t, q, err);
        free(q);

        return (int) k;
    }

    if (strcmp(type, "Metaspace") == 0) {
        return SLORA_OK;                    /* SentencePiece: see is_spm */
    }

    return slora_err_set(err, SLORA_ERROR, "%s: pre-tokenizer \"%s\" is not "
                         "supported", t->path, type);
}


/* SentencePiece-style BPE: byte fallback, U+2581 for spaces. */
static int
slora_tok_json_is_spm(const cJSON *root)
{
    char         *s;
    int           spm;
    const cJSON  *model;

    model = cJSON_GetObjectItem(root, "model");

    if (cJSON_IsTrue(cJSON_GetObjectItem(model, "byte_fallback"))) {
        return 1;
    }

    s = cJSON_PrintUnformatted(cJSON_GetObjectItem(root, "pre_tokenizer"));
    spm = s != NULL && strstr(s, "\"Metaspace\"") != NULL;
    free(s);

    if (spm) {
        return 1;
    }

    s = cJSON_PrintUnformatted(cJSON_GetObjectItem(root, "normalizer"));
    spm = s != NULL && strstr(s, "\xe2\x96\x81") != NULL;
    free(s);

    return spm;
}


static const char *
slora_tok_json_token_text(const cJSON *v)
{
    if (cJSON_IsString(v)) {
        return v->valuestring;
    }

    return cJSON_GetStringValue(cJSON_GetObjectItem(v, "content"));
}


slora_tokenizer_t *
slora_tok_load_json(const char *path, const char *config_path,
    slora_err_t *err)
{
    int                 spm, type, rank;
    char               *text, *s;
    size_t              len, k;
    int32_t             n_vocab, id;
    int64_t             n_entries;
    const char         *a, *b, *str;
    cJSON              *root;
    const cJSON        *model, *vocab, *added, *merges, *it, *v;
    slora_tokenizer_t  *t;

    t = NULL;
    text = slora_read_file(path, SLORA_TOK_JSON_MAX, &len, err);
    if (text == NULL) {
        if (err != NULL) {
            err->code = SLORA_ERROR;
        }

        return NULL;
    }

    root = cJSON_ParseWithLength(text, len);
    free(text);

    if (root == NULL) {
        slora_err_set(err, SLORA_ERROR, "%s: not valid JSON", path);
        return NULL;
    }

    model = cJSON_GetObjectItem(root, "model");
    vocab = cJSON_GetObjectItem(model, "vocab");
    added = cJSON_GetObjectItem(root, "added_tokens");
    merges = cJSON_GetObjectItem(model, "merges");
    str = cJSON_GetStringValue(cJSON_GetObjectItem(model, "type"));

    if (str == NULL || strcmp(str, "BPE") != 0 || !cJSON_IsObject(vocab)) {
        slora_err_set(err, SLORA_ERROR, "%s: model is not a BPE model with "
                      "a vocab", path);
        goto failed;
    }

    n_vocab = 0;
    n_entries = 0;

    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0
            || it->valuedouble >= (1 << 24))
        {
            slora_err_set(err, SLORA_ERROR, "%s: vocab entry \"%s\" has a "
                          "bad id", path, it->string);
            goto failed;
        }

        if (it->valueint + 1 > n_vocab) {
            n_vocab = it->valueint + 1;
        }

        n_entries++;
    }

    cJSON_ArrayForEach(it, added) {
        v = cJSON_GetObjectItem(it, "id");

        if (!cJSON_IsNumber(v) || v->valuedouble < 0
            || v->valuedouble >= (1 << 24)
            || !cJSON_IsString(cJSON_GetObjectItem(it, "content")))
        {
            slora_err_set(err, SLORA_ERROR, "%s: added_tokens entry without "
                          "a good id and content", path);
            goto failed;
        }

        if (v->valueint + 1 > n_vocab) {
            n_vocab = v->valueint + 1;
        }

        n_entries++;
    }

    if (n_vocab > n_entries + n_entries / 8 + SLORA_TOK_JSON_GAPS) {
        slora_err_set(err, SLORA_ERROR, "%s: token id %d is far past the "
                      "%lld tokens listed (at most %lld ids may be left "
                      "unnamed)", path, (int) (n_vocab - 1),
                      (long long) n_entries,
                      (long long) (n_entries / 8 + SLORA_TOK_JSON_GAPS));
        goto failed;
    }

    spm = slora_tok_json_is_spm(root);
    t = slora_tok_new(spm ? SLORA_TOK_SPM : SLORA_TOK_BPE, n_vocab, path,
                      err);
    if (t == NULL) {
        goto failed;
    }

    cJSON_ArrayForEach(it, vocab) {
        str = it->string;
        type = SLORA_TOK_NORMAL;

        if (spm && slora_tok_lookup(t, str, strlen(str)) < 0
            && strlen(str) == 6 && strncmp(str, "<0x", 3) == 0)
        {
            type = SLORA_TOK_BYTE;
        }

        if (slora_tok_set_token(t, it->valueint, str, strlen(str),
                                spm ? -1e30f : 0.0f, type, err) != SLORA_OK)
        {
            goto failed;
        }
    }

    cJSON_ArrayForEach(it, added) {
        id = cJSON_GetObjectItem(it, "id")->valueint;
        str = cJSON_GetObjectItem(it, "content")->valuestring;
        type = cJSON_IsTrue(cJSON_GetObjectItem(it, "special"))
               ? SLORA_TOK_CONTROL : SLORA_TOK_USER_DEFINED;

        if (slora_tok_set_token(t, id, str, strlen(str), 0.0f, type, err)
            != SLORA_OK)
        {
            goto failed;
        }

        if (cJSON_IsTrue(cJSON_GetObjectItem(it, "lstrip"))) {
            t->entries[id].flags |= SLORA_TOK_LSTRIP;
        }

        if (cJSON_IsTrue(cJSON_GetObjectItem(it, "rstrip"))) {
            t->entries[id].flags |= SLORA_TOK_RSTRIP;
        }
    }

    for (id = 0; id < n_vocab; id++) {
        char  name[32];

        if (t->entries[id].len == 0) {
            k = (size_t) snprintf(name, sizeof(name), "[UNUSED_%d]", (int) id);

            if (slora_tok_set_token(t, id, name, k, 0.0f, SLORA_TOK_UNUSED,
                                    err) != SLORA_OK)
            {
                goto failed;
            }
        }
    }

    rank = 0;

    cJSON_ArrayForEach(it, merges) {
        s = NULL;

        if (cJSON_IsString(it)) {
            str = it->valuestring;
            len = strlen(str);

            /* "left right", the split at the first space after byte 0
             * (bounded by len: "" has no byte 1) */
            for (k = 1; k < len && str[k] != ' '; k++) {
                /* void */
            }

            if (k >= len) {
                slora_err_set(err, SLORA_ERROR, "%s: merge %d \"%s\" is not "
                              "\"left right\"", path, rank, str);
                goto failed;
            }

            a = str;
            b = str + k + 1;
            len = k;

        } else if (cJSON_GetArraySize(it) == 2
                   && cJSON_IsString(cJSON_GetArrayItem(it, 0))
                   && cJSON_IsString(cJSON_GetArrayItem(it, 1)))
        {
            a = cJSON_GetArrayItem(it, 0)->valuestring;
            b = cJSON_GetArrayItem(it, 1)->valuestring;
            len = strlen(a);

        } else {
            slora_err_set(err, SLORA_ERROR, "%s: merge %d is neither a string "
                          "nor a pair of strings", path, rank);
            goto failed;
        }

        if (spm) {
            /* SentencePiece merges by score: the earlier the merge that
             * makes a token, the better its score */
            s = malloc(len + strlen(b));
            if (s == NULL) {
                slora_err_set(err, SLORA_ERROR, "%s: out of memory", path);
                goto failed;
            }

            memcpy(s, a, len);
            memcpy(s + len, b, strlen(b));
            id = slora_tok_lookup(t, s, len + strlen(b));
            free(s);

            if (id >= 0 && id < n_vocab && t->entries[id].score < -1e29f) {
                t->entries[id].score = (float) -rank;
            }

        } else if (slora_tok_add_merge(t, a, len, b, strlen(b), rank)
                   != SLORA_OK)
        {
            slora_err_set(err, SLORA_ERROR, "%s: out of memory", path);
            goto failed;
        }

        rank++;
    }

    if (spm) {
        t->add_bos = 1;
        t->add_space_prefix = 1;
        snprintf(t->pre, sizeof(t->pre), "spm");

    } else {
        snprintf(t->pre, sizeof(t->pre), "json");
        t->ignore_merges = cJSON_IsTrue(cJSON_GetObjectItem(model,
                                                            "ignore_merges"));

        if (slora_tok_json_pre(t, cJSON_GetObjectItem(root, "pre_tokenizer"),
                               err) != SLORA_OK)
        {
            goto failed;
        }
    }

    v = cJSON_GetObjectItem(root, "pre_tokenizer");
    s = cJSON_PrintUnformatted(v);

    if (spm && s != NULL && strstr(s, "\"prepend_scheme\":\"never\"")) {
        t->add_space_prefix = 0;
    }

    free(s);

    if (slora_tok_json_config(t, root, config_path, err) != SLORA_OK
        || slora_tok_finish(t, err) != SLORA_OK)
    {
        goto failed;
    }

    cJSON_Delete(root);

    return t;

failed:

    slora_tokenizer_free(t);
    cJSON_Delete(root);

    return NULL;
}


/* BOS, EOS, add_bos_token and the chat template, from
 * tokenizer_config.json when there is one, else from the post-processor
 * and the vocabulary. */
static int
slora_tok_json_config(slora_tokenizer_t *t, const cJSON *root,
    const char *config_path, slora_err_t *err)
{
    char         *text, *pp;
    size_t        len;
    const char   *s;
    cJSON        *cfg;
    const cJSON  *v, *it;

    cfg = NULL;
    text = slora_read_file(config_path, SLORA_TOK_JSON_MAX, &len,
                           err);

    if (text == NULL && err != NULL && err->code == SLORA_ERROR) {
        return SLORA_ERROR;
    }

    if (text != NULL) {
        cfg = cJSON_ParseWithLength(text, len);
        free(text);

        if (cfg == NULL) {
            return slora_err_set(err, SLORA_ERROR, "%s: not valid JSON",
                                 config_path);
        }
    }

    s = slora_tok_json_token_text(cJSON_GetObjectItem(cfg, "bos_token"));
    if (s != NULL) {
        t->bos = slora_tokenizer_find(t, s, strlen(s));
    }

    s = slora_tok_json_token_text(cJSON_GetObjectItem(cfg, "eos_token"));
    if (s != NULL) {
        t->eos = slora_tokenizer_find(t, s, strlen(s));
    }

    s = slora_tok_json_token_text(cJSON_GetObjectItem(cfg, "unk_token"));
    if (s != NULL) {
        t->unk = slora_tokenizer_find(t, s, strlen(s));
    }

    v = cJSON_GetObjectItem(cfg, "add_bos_token");

    if (cJSON_IsBool(v)) {
        t->add_bos = cJSON_IsTrue(v);

    } else if (t->kind == SLORA_TOK_BPE) {
        /* a TemplateProcessing that starts with the BOS token adds it */
        t->add_bos = 0;
        pp = cJSON_PrintUnformatted(cJSON_GetObjectItem(root,
                                                        "post_processor"));

        if (pp != NULL && t->bos >= 0) {
            char  probe[320];

            snprintf(probe, sizeof(probe),
                     "\"single\":[{\"SpecialToken\":{\"id\":\"%.*s\"",
                     (int) t->entries[t->bos].len,
                     t->strs + t->entries[t->bos].off);
            t->add_bos = strstr(pp, probe) != NULL;
        }

        free(pp);
    }

    v = cJSON_GetObjectItem(cfg, "chat_template");
    s = cJSON_GetStringValue(v);

    if (s == NULL && cJSON_IsArray(v)) {
        cJSON_ArrayForEach(it, v) {
            const char  *name;

            name = cJSON_GetStringValue(cJSON_GetObjectItem(it, "name"));

            if (name != NULL && strcmp(name, "default") == 0) {
                s = cJSON_GetStringValue(cJSON_GetObjectItem(it,
                                                             "template"));
            }
        }
    }

    slora_tok_guess_chat(t, s, s ? strlen(s) : 0);
    cJSON_Delete(cfg);

    return SLORA_OK;
}
