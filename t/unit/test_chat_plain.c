/*
 * test_chat_plain.c: text encoded with plain spans, the parts of a chat's
 * text that came from the request (slora_tokenizer_encode_chat): a
 * special token's text is that token only outside them.
 *
 *   (e) the partition's edges: a special token overlapping a span's
 *       first or last byte is text, one just outside it a token;
 *       user-defined tokens are cut inside spans too, as parse_special
 *       = 0 cuts them; encode_upto's limit holds.
 */

#define _GNU_SOURCE

#include <stdint.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "tap.h"
#include "slora_gguf.h"
#include "slora_tokenizer.h"


#define SMOLLM2_DEFAULT    "models/SmolLM2-135M-Instruct.Q4_1.gguf"
#define MISTRAL_DIR        "t/data/gen/smollm2-mistral-marks"
#define MAX_IDS            65536


static int32_t  ids_a[MAX_IDS], ids_b[MAX_IDS];


static int32_t enc(const slora_tokenizer_t *t, const char *text, size_t n,
    int add_special, int special, int32_t *ids, int32_t cap);
static int32_t enc_spans(const slora_tokenizer_t *t, const char *text,
    size_t n, const slora_span_t *sp, size_t n_sp, int32_t *ids);
static int count(const int32_t *ids, int32_t n, int32_t id);
static int same(const int32_t *a, int32_t na, const int32_t *b, int32_t nb);
static slora_tokenizer_t *make_mistral(const char *gguf_path);
static void test_edges(const slora_tokenizer_t *smol,
    const slora_tokenizer_t *mis);


/* Mistral's marks, added to SmolLM2's vocabulary as control tokens in
 * this order (make_mistral), with Hermes' result tags */
static const char *const  mistral_marks[] = {
    "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
    "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_CALLS]",
    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CONTENT]", "[CALL_ID]",
    "[ARGS]", "</s>", "<tool_response>", "</tool_response>", NULL
};


/* (e) The partition's edges. */
static void
test_edges(const slora_tokenizer_t *smol, const slora_tokenizer_t *mis)
{
    int                  i;
    char                 buf[256];
    int32_t              na, nb, end, tc;
    slora_err_t          err;
    slora_span_t         sp[2];

    static const char    text[] = "ab<|im_end|>cd";   /* the mark: 2..11 */
    static const struct {
        size_t   off, len;
        int      cut;
    } edges[] = {
        { 0, 2, 1 }, { 0, 3, 0 }, { 11, 3, 0 }, { 12, 2, 1 }, { 4, 2, 0 },
        { 0, 14, 0 },
    };

    end = slora_tokenizer_find(smol, "<|im_end|>", 10);

    for (i = 0; i < (int) (sizeof(edges) / sizeof(edges[0])); i++) {
        sp[0].off = edges[i].off;
        sp[0].len = edges[i].len;
        na = enc_spans(smol, text, sizeof(text) - 1, sp, 1, ids_a);
        nb = enc(smol, text, sizeof(text) - 1, 1, edges[i].cut, ids_b,
                 MAX_IDS);
        ok(count(ids_a, na, end) == edges[i].cut
           && same(ids_a, na, ids_b, nb),
           "partition: a span of bytes %zu to %zu, the mark at 2 to 11: %s",
           edges[i].off, edges[i].off + edges[i].len - 1,
           edges[i].cut ? "a token" : "text");
    }

    /* of two marks in a row, the one a span holds is text */
    sp[0].off = 0;
    sp[0].len = 10;
    na = enc_spans(smol, "<|im_end|><|im_end|>", 20, sp, 1, ids_a);
    ok(count(ids_a, na, end) == 1 && ids_a[na - 1] == end,
       "partition: a mark in a span is text, the next one outside it a "
       "token");

    /* no spans: parse_special = 1 */
    na = enc_spans(smol, text, sizeof(text) - 1, sp, 0, ids_a);
    nb = enc(smol, text, sizeof(text) - 1, 1, 1, ids_b, MAX_IDS);
    ok(same(ids_a, na, ids_b, nb), "partition: no spans, parse_special");

    /* user-defined tokens are cut in a span, as parse_special = 0 cuts
     * them */
    tc = slora_tokenizer_find(mis, "<tool_call>", 11);
    sp[0].off = 0;
    sp[0].len = 13;
    na = enc_spans(mis, "a<tool_call>b", 13, sp, 1, ids_a);
    nb = enc(mis, "a<tool_call>b", 13, 1, 0, ids_b, MAX_IDS);
    ok(tc >= 0 && !slora_tokenizer_is_special(mis, tc)
       && count(ids_a, na, tc) == 1 && same(ids_a, na, ids_b, nb),
       "partition: a user-defined token in a span is cut, as "
       "parse_special = 0 does");

    /* the limit */
    for (i = 0; i < (int) sizeof(buf); i++) {
        buf[i] = i % 4 ? 'a' : ' ';
    }

    sp[0].off = 10;
    sp[0].len = 100;
    ok(slora_tokenizer_encode_chat(smol, buf, sizeof(buf), 1, sp, 1, ids_a,
                                   5, 5, &na, &err) == SLORA_BUSY
       && na == 6,
       "encode_chat: past its limit SLORA_BUSY, n = limit + 1");
}


static int32_t
enc(const slora_tokenizer_t *t, const char *text, size_t n,
    int add_special, int special, int32_t *ids, int32_t cap)
{
    int32_t      k;
    slora_err_t  err;

    if (slora_tokenizer_encode(t, text, n, add_special, special, ids, cap,
                               &k, &err)
        != SLORA_OK)
    {
        BAIL_OUT("encode: %s", err.msg);
    }

    return k;
}


/* The text's ids with plain spans sp[0..n_sp). */
static int32_t
enc_spans(const slora_tokenizer_t *t, const char *text, size_t n,
    const slora_span_t *sp, size_t n_sp, int32_t *ids)
{
    int32_t      k;
    slora_err_t  err;

    if (slora_tokenizer_encode_chat(t, text, n, 1, sp, n_sp, ids, MAX_IDS,
                                    MAX_IDS, &k, &err)
        != SLORA_OK)
    {
        BAIL_OUT("encode_chat: %s", err.msg);
    }

    return k;
}


static int
count(const int32_t *ids, int32_t n, int32_t id)
{
    int32_t  i;
    int      k;

    for (i = 0, k = 0; i < n; i++) {
        k += ids[i] == id;
    }

    return k;
}


static int
same(const int32_t *a, int32_t na, const int32_t *b, int32_t nb)
{
    return na == nb && memcmp(a, b, (size_t) na * sizeof(int32_t)) == 0;
}


/*
 * SmolLM2's vocabulary as an HF tokenizer.json, its control tokens and
 * Mistral's marks (mistral_marks) added as special tokens, <tool_call>
 * and </tool_call> as user-defined ones; loaded.
 */
static slora_tokenizer_t *
make_mistral(const char *gguf_path)
{
    int                 k;
    char               *s, text[1024], path[512];
    size_t              len;
    int32_t             type, n_vocab;
    uint64_t            i;
    FILE               *f;
    cJSON              *root, *model, *vocab, *merges, *added, *pre, *seq,
                       *o;
    slora_err_t         err;
    slora_gguf_t       *gg;
    slora_gguf_arr_t    toks, types, mrg;
    slora_tokenizer_t  *t;

    static const char  *user_defined[] = { "<tool_call>", "</tool_call>" };

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
    added = cJSON_AddArrayToObject(root, "added_tokens");

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
            cJSON_AddItemToArray(added, o);
        }
    }

    n_vocab = (int32_t) toks.n;

    for (k = 0; k < 2 || mistral_marks[k - 2] != NULL; k++) {
        o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double) n_vocab++);
        cJSON_AddStringToObject(o, "content",
                                k < 2 ? user_defined[k]
                                      : mistral_marks[k - 2]);
        cJSON_AddBoolToObject(o, "special", k >= 2);
        cJSON_AddItemToArray(added, o);
    }

    for (i = 0; i < mrg.n; i++) {
        slora_gguf_arr_str(&mrg, i, (const char **) &s, &len);
        snprintf(text, sizeof(text), "%.*s", (int) len, s);
        cJSON_AddItemToArray(merges, cJSON_CreateString(text));
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

    mkdir("t/data", 0755);
    mkdir("t/data/gen", 0755);
    mkdir(MISTRAL_DIR, 0755);

    snprintf(path, sizeof(path), "%s/tokenizer.json", MISTRAL_DIR);
    s = cJSON_PrintUnformatted(root);
    f = fopen(path, "w");

    if (s == NULL || f == NULL || fputs(s, f) < 0 || fclose(f) != 0) {
        BAIL_OUT("%s: cannot be written", path);
    }

    free(s);
    cJSON_Delete(root);
    slora_gguf_close(gg);

    t = slora_tokenizer_load(path, &err);
    if (t == NULL) {
        BAIL_OUT("%s: %s", path, err.msg);
    }

    return t;
}


int
main(void)
{
    const char         *smol_path;
    slora_err_t         err;
    slora_tokenizer_t  *smol, *mis;

    smol_path = getenv("SLORA_SMOLLM2");
    smol_path = smol_path ? smol_path : SMOLLM2_DEFAULT;
    smol = slora_tokenizer_load(smol_path, &err);

    if (smol == NULL) {
        BAIL_OUT("%s: %s (run make fetch-model)", smol_path, err.msg);
    }

    mis = make_mistral(smol_path);

    test_edges(smol, mis);

    slora_tokenizer_free(mis);
    slora_tokenizer_free(smol);

    return done_testing();
}
