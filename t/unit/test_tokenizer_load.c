/*
 * test_tokenizer_load.c: the tokenizer.json loader on hostile files, a
 * GGUF vocabulary that names one text twice, and where a chat's BOS comes
 * from (the template's text, not the tokenizer's add_bos_token).
 *
 * Each case writes a small HF folder (tokenizer.json, and
 * tokenizer_config.json when given) with one fault, and the loader must
 * refuse it with an error that names tokenizer.json and says what is
 * wrong; a case next to it, the same file without the fault, must load.
 * Under the ASan build (make asan) the refusals are also checked for
 * reads out of bounds.
 */

#define _GNU_SOURCE

#include <stdint.h>
#include <unistd.h>
#include <sys/stat.h>

#include "tap.h"
#include "slora_gguf.h"
#include "slora_tokenizer.h"


static char  tmpdir[64];


static void write_text(const char *file, const char *text);
static slora_tokenizer_t *load(const char *json, const char *config,
    slora_err_t *err);
static int refused(const char *json, const char *config, const char *needle);
static void test_regex_utf8(void);
static void test_merges(void);
static void test_vocab_gaps(void);
static void test_vocab_reused_ids(void);
static void test_gguf_duplicate(void);
static void test_chat_bos(void);
static int ids_are(const slora_tokenizer_t *t, int chat, int add_special,
    const int32_t *want, int32_t n_want);


static void
write_text(const char *file, const char *text)
{
    char   path[256];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, file);

    if (text == NULL) {
        unlink(path);
        return;
    }

    f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        BAIL_OUT("cannot write %s", path);
    }
}


/* The folder of json (and config, or none) loaded. */
static slora_tokenizer_t *
load(const char *json, const char *config, slora_err_t *err)
{
    write_text("tokenizer.json", json);
    write_text("tokenizer_config.json", config);

    err->msg[0] = '\0';

    return slora_tokenizer_load(tmpdir, err);
}


/* 1 when the folder is refused with an error naming tokenizer.json and
 * holding needle. */
static int
refused(const char *json, const char *config, const char *needle)
{
    slora_err_t         err;
    slora_tokenizer_t  *t;

    t = load(json, config, &err);

    if (t != NULL) {
        slora_tokenizer_free(t);
        diag("loaded, should be refused");
        return 0;
    }

    diag("%s", err.msg);

    return strstr(err.msg, "tokenizer.json") != NULL
           && strstr(err.msg, needle) != NULL;
}


/* A Split pre-tokenizer's pattern is the file's text: PCRE2 must check
 * its UTF-8 (a lead byte last made it read past the pattern). */
static void
test_regex_utf8(void)
{
    slora_err_t         err;
    slora_tokenizer_t  *t;

#define TOK_SPLIT(pattern)                                                    \
    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},"               \
    "\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Split\","                   \
    "\"pattern\":" pattern ",\"behavior\":\"Isolated\"}}"

    t = load(TOK_SPLIT("{\"Regex\":\"a\xc3\xa9|\\\\s+\"}"), NULL, &err);
    ok(t != NULL, "a Split regex of valid UTF-8 loads%s%s",
       t ? "" : ": ", t ? "" : err.msg);
    slora_tokenizer_free(t);

    ok(refused(TOK_SPLIT("{\"Regex\":\"a\xf4\"}"), NULL,
               "regex is not valid UTF-8 at byte 1"),
       "a Split regex ending in a lead byte is refused");
    ok(refused(TOK_SPLIT("{\"Regex\":\"\xc3(\"}"), NULL, "not valid UTF-8"),
       "a Split regex with a cut sequence is refused");
    ok(refused(TOK_SPLIT("{\"String\":\"x\xff\"}"), NULL, "not valid UTF-8"),
       "a Split string of invalid UTF-8 is refused");

#undef TOK_SPLIT
}


/* A merge "left right" is split at its first space after byte 0; the
 * empty string has no byte 1 to look at. */
static void
test_merges(void)
{
    slora_err_t         err;
    slora_tokenizer_t  *t;

#define TOK_MERGES(merges)                                                    \
    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,"                \
    "\"ab\":2},\"merges\":" merges "}}"

    t = load(TOK_MERGES("[\"a b\"]"), NULL, &err);
    ok(t != NULL && slora_tokenizer_n_vocab(t) == 3, "merges [\"a b\"] load%s"
       "%s", t ? "" : ": ", t ? "" : err.msg);
    slora_tokenizer_free(t);

    ok(refused(TOK_MERGES("[\"\"]"), NULL, "merge 0 \"\" is not"),
       "merges [\"\"] refused, no byte read past it (ASan)");
    ok(refused(TOK_MERGES("[\"a b\", \"ab\"]"), NULL, "merge 1 \"ab\" is not"),
       "a merge without a space refused");

#undef TOK_MERGES
}


/* Ids may leave a few gaps (filled with unused tokens), not millions:
 * the file of two entries, one of them id 2^24 - 1, is refused at once
 * rather than made 16M tokens. */
static void
test_vocab_gaps(void)
{
    int64_t             t0, ms;
    slora_err_t         err;
    slora_tokenizer_t  *t;

    static const char   far[] = "{\"model\": {\"type\": \"BPE\", \"vocab\": "
                                "{\"a\": 0, \"b\": 16777215}, \"merges\": "
                                "[]}, \"pre_tokenizer\": null}";

    t = load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,"
             "\"b\":1000},\"merges\":[]}}", NULL, &err);
    ok(t != NULL && slora_tokenizer_n_vocab(t) == 1001
       && slora_tokenizer_find(t, "b", 1) == 1000,
       "vocab ids 0 and 1000 load, the gap filled (%d tokens)",
       t ? (int) slora_tokenizer_n_vocab(t) : -1);
    slora_tokenizer_free(t);

    t0 = slora_now_ns();
    ok(refused(far, NULL, "token id 16777215 is far past the 2 tokens"),
       "the %zu-byte file with id 2^24 - 1 is refused", sizeof(far) - 1);
    ms = (slora_now_ns() - t0) / 1000000;
    ok(ms < 1000, "... in %lld ms", (long long) ms);

    ok(refused("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},"
               "\"merges\":[]},\"added_tokens\":[{\"id\":5000,"
               "\"content\":\"<x>\",\"special\":true}]}", NULL,
               "token id 5000 is far past the 2 tokens"),
       "an added token's id far past the entries is refused");
}


/* Ids given again with other texts: each text took a slot of the
 * string map, which was sized by the ids alone; 3000 texts over 5 ids
 * filled it, and the next lookup probed it forever (the alarm ends
 * that). The last text an id is given is its text. */
static void
test_vocab_reused_ids(void)
{
    int                 i;
    char               *json, *p;
    slora_err_t         err;
    slora_tokenizer_t  *t;

    json = malloc(3000 * 16 + 128);
    if (json == NULL) {
        BAIL_OUT("out of memory");
    }

    p = json + sprintf(json, "{\"model\":{\"type\":\"BPE\",\"vocab\":{");

    for (i = 0; i < 3000; i++) {
        p += sprintf(p, "%s\"a%d\":%d", i ? "," : "", i, i % 5);
    }

    sprintf(p, "},\"merges\":[]}}");

    alarm(20);
    t = load(json, NULL, &err);
    alarm(0);

    ok(t != NULL && slora_tokenizer_n_vocab(t) == 5
       && slora_tokenizer_find(t, "a2997", 5) == 2
       && slora_tokenizer_find(t, "a2999", 5) == 4,
       "3000 vocab texts over 5 ids load, each id its last text%s%s",
       t ? "" : ": ", t ? "" : err.msg);
    slora_tokenizer_free(t);
    free(json);
}


/* A GGUF vocabulary with one text at two ids: the later id is the
 * text's, as llama.cpp's token_to_id map keeps it ("ab" merged from "a"
 * and "b" is id 3, not 2). */
static void
test_gguf_duplicate(void)
{
    char                  path[128];
    size_t                n;
    int32_t               ids[8], n_ids;
    slora_err_t           err;
    slora_tokenizer_t    *t;
    slora_gguf_writer_t  *w;

    static const char    *toks[] = { "a", "b", "ab", "ab" };
    static const char    *merges[] = { "a b" };

    snprintf(path, sizeof(path), "%s/dup.gguf", tmpdir);
    w = slora_gguf_writer_new();

    if (w == NULL
        || slora_gguf_writer_str(w, "tokenizer.ggml.model", "gpt2", &err)
        || slora_gguf_writer_str(w, "tokenizer.ggml.pre", "gpt-2", &err)
        || slora_gguf_writer_str_arr(w, "tokenizer.ggml.tokens", toks, 4,
                                     &err)
        || slora_gguf_writer_str_arr(w, "tokenizer.ggml.merges", merges, 1,
                                     &err)
        || slora_gguf_writer_write(w, path, &err))
    {
        BAIL_OUT("cannot write %s", path);
    }

    slora_gguf_writer_free(w);

    t = slora_tokenizer_load(path, &err);
    n_ids = -1;
    n = 0;

    if (t != NULL
        && slora_tokenizer_encode(t, "ab", 2, 0, 0, ids, 8, &n_ids, &err)
           == SLORA_OK)
    {
        n = (size_t) n_ids;
    }

    ok(t != NULL && n == 1 && ids[0] == 3
       && slora_tokenizer_find(t, "ab", 2) == 3,
       "gguf: of two tokens \"ab\" the later, id 3, is the text's (%zu "
       "ids, the first %d)", n, n > 0 ? (int) ids[0] : -1);
    slora_tokenizer_free(t);
    unlink(path);
}


/*
 * A rendered chat's BOS is the template's: one where the template's text
 * writes bos_token first, none where it does not, whatever the tokenizer
 * adds to a text (a ChatML fine-tune of a base whose tokenizer adds
 * <s>: vLLM's chat prompt has none); vLLM's add_special_tokens puts the
 * tokenizer's before it. Without a template, the tokenizer decides. The
 * chats are encoded as the server encodes them: the template's BOS
 * asked for where slora_tokenizer_chat_bos says it writes one.
 */
static void
test_chat_bos(void)
{
    slora_err_t         err;
    slora_tokenizer_t  *t;

    static const int32_t  ab[] = { 0, 1 }, s_ab[] = { 2, 0, 1 },
                          ss_ab[] = { 2, 2, 0, 1 };

#define TOK_BOS                                                               \
    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,"            \
    "\"<s>\":2,\"<|im_start|>\":3},\"merges\":[]},\"added_tokens\":["       \
    "{\"id\":2,\"content\":\"<s>\",\"special\":true},{\"id\":3,"            \
    "\"content\":\"<|im_start|>\",\"special\":true}]}"
#define CHATML  "{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}"

    t = load(TOK_BOS, "{\"bos_token\":\"<s>\",\"add_bos_token\":true,"
             "\"chat_template\":\"" CHATML "\"}", &err);
    ok(t != NULL && !slora_tokenizer_chat_bos(t) && ids_are(t, 0, 1, s_ab, 3)
       && ids_are(t, 1, 0, ab, 2) && ids_are(t, 1, 1, s_ab, 3),
       "a template without bos_token, a tokenizer adding <s>: a text gets "
       "it, a chat none, a chat with add_special_tokens the tokenizer's%s%s",
       t ? "" : ": ", t ? "" : err.msg);
    slora_tokenizer_free(t);

    t = load(TOK_BOS, "{\"bos_token\":\"<s>\",\"add_bos_token\":false,"
             "\"chat_template\":\"{{ bos_token }}" CHATML "\"}", &err);
    ok(t != NULL && slora_tokenizer_chat_bos(t) && ids_are(t, 0, 1, ab, 2)
       && ids_are(t, 1, 0, s_ab, 3) && ids_are(t, 1, 1, s_ab, 3),
       "a template writing bos_token, a tokenizer adding none: a text "
       "none, a chat the template's, with add_special_tokens no more%s%s",
       t ? "" : ": ", t ? "" : err.msg);
    slora_tokenizer_free(t);

    t = load(TOK_BOS, "{\"bos_token\":\"<s>\",\"add_bos_token\":true}",
             &err);
    ok(t != NULL && slora_tokenizer_chat_bos(t) && ids_are(t, 1, 0, s_ab, 3)
       && ids_are(t, 1, 1, ss_ab, 4),
       "no template, a tokenizer adding <s>: a chat gets it, two with "
       "add_special_tokens%s%s", t ? "" : ": ", t ? "" : err.msg);
    slora_tokenizer_free(t);

#undef CHATML
#undef TOK_BOS
}


/* 1 when "ab" encodes to want: as a text with add_special (chat 0), or
 * as a rendered chat as the server encodes one (chat 1): the template's
 * BOS where t's template writes one, the tokenizer's too where
 * add_special (vLLM's add_special_tokens). */
static int
ids_are(const slora_tokenizer_t *t, int chat, int add_special,
    const int32_t *want, int32_t n_want)
{
    int          rc, bos;
    int32_t      ids[8], n, i;
    slora_err_t  err;

    bos = (slora_tokenizer_chat_bos(t) ? SLORA_TOK_BOS_TEMPLATE : 0)
          | (add_special ? SLORA_TOK_BOS_TOKENIZER : 0);

    rc = chat ? slora_tokenizer_encode_chat(t, "ab", 2, bos, NULL, 0, ids, 8,
                                            8, &n, &err)
              : slora_tokenizer_encode(t, "ab", 2, add_special, 0, ids, 8,
                                       &n, &err);

    if (rc != SLORA_OK || n != n_want) {
        diag("chat %d, add_special %d: %d ids%s%s", chat, add_special,
             rc == SLORA_OK ? (int) n : -1, rc == SLORA_OK ? "" : ": ",
             rc == SLORA_OK ? "" : err.msg);
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (ids[i] != want[i]) {
            diag("chat %d, add_special %d: id %d is %d", chat, add_special,
                 (int) i, (int) ids[i]);
            return 0;
        }
    }

    return 1;
}


int
main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/slora-test-tokload-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    test_regex_utf8();
    test_merges();
    test_vocab_gaps();
    test_vocab_reused_ids();
    test_gguf_duplicate();
    test_chat_bos();

    write_text("tokenizer.json", NULL);
    write_text("tokenizer_config.json", NULL);
    rmdir(tmpdir);

    return done_testing();
}
