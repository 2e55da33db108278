/*
 * test_json.c: JSON mode (slora_json.h).
 *
 *   (a) the automaton on written cases: objects it takes whole (and is
 *       done only at their last byte), texts it refuses, where.
 *   (b) against a strict recursive-descent validator written here from
 *       RFC 8259 (with the automaton's limits: depth 64; blanks between
 *       tokens none, one, or a line break and an indent of at most 4 a
 *       level and 4): 20000 random objects, each cut and mutated; the
 *       automaton takes a text whole and is done iff the validator
 *       accepts it; every text it takes without being done is completed
 *       by a few bytes into one the validator accepts (no dead end).
 *   (c) the mask against trying every token, on a vocabulary of all 256
 *       bytes and multi-byte tokens, on SmolLM2's 49152 tokens, and on
 *       Llama 2's SentencePiece and Llama 3's byte-level vocabularies
 *       (llama.cpp's vocab files: SLORA_VOCAB_DIR), at the states of
 *       random walks that draw allowed tokens.
 *   (d) the engine on SmolLM2 (CPU): a greedy JSON-mode chat answer is
 *       an object cJSON parses and ends STOP as it closes, where the
 *       same request without JSON mode is not one; sampled answers are
 *       at every token the start of one; an engine without the
 *       tokenizer, and a json of 2, are refused.
 */

#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "tap.h"
#include "chat_run.h"
#include "slora_json.h"
#include "slora_engine.h"
#include "slora_sampler.h"


#define VOCAB_DIR_DEFAULT  "ref/llama_cpp_python-0.3.36/vendor/llama.cpp/models"
#define DOC_MAX  4096


static int ref_valid(const char *s, size_t n);
static size_t complete(slora_json_t *j, char *out, size_t cap);
static size_t gen_object(slora_rng_t *rng, char *out, size_t cap, int depth);
static void test_cases(void);
static void test_against_reference(void);
static void test_mask_small(void);
static void test_mask_vocab(const slora_json_vocab_t *v, int32_t n_vocab,
    const char *name, int walks, int steps, double close, uint64_t seed);
static void test_smollm2(void);
static void test_llama_vocabs(void);


int
main(void)
{
    test_cases();
    test_against_reference();
    test_mask_small();
    test_llama_vocabs();
    test_smollm2();

    return done_testing();
}


/* (a) */
static void
test_cases(void)
{
    size_t         i, k, n;
    slora_json_t   j;

    static const char  *good[] = {
        "{}",
        " \n{ }",
        "{\"a\":1}",
        "{\"a\": [1, -0.5e+10, 0, 1E3, true, false, null, {}, []]}",
        "{\"k\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}",
        "{\"\xc3\xa9\xe0\xa0\x80\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\":\"\"}",
        "{\"a\":{\"b\":{\"c\":[[[\"d\"]]]}}}",
        "{\"x\":\"\x7f\"}",
    };

    /* the text, and how many bytes of it are taken */
    static const struct { const char *s; size_t taken; }  bad[] = {
        { "[]", 0 },                        /* an object, not an array */
        { "\"a\"", 0 },
        { "{}}", 2 },                       /* nothing after it */
        { "{} ", 2 },
        { "{\"a\":01}", 6 },                /* no leading zero */
        { "{\"a\":-}", 6 },
        { "{\"a\":1.}", 7 },
        { "{\"a\":1e}", 7 },
        { "{\"a\":.5}", 5 },
        { "{\"a\":+1}", 5 },
        { "{\"a\":tru}", 8 },
        { "{\"a\":True}", 5 },
        { "{a:1}", 1 },                     /* keys are strings */
        { "{\"a\" 1}", 5 },
        { "{\"a\":1,}", 7 },                /* no trailing comma */
        { "{\"a\":[1,]}", 8 },
        { "{\"a\":[1}", 7 },                /* closers match */
        { "{\"a\":\"\x01\"}", 6 },          /* control byte */
        { "{\"a\":\"\\x\"}", 7 },           /* unknown escape */
        { "{\"a\":\"\\u12g4\"}", 10 },
        { "{\"a\":\"\\udc00\"}", 9 },       /* lone low surrogate */
        { "{\"a\":\"\\ud800x\"}", 12 },     /* high without its low */
        { "{\"a\":\"\\ud800\\u0041\"}", 14 },
        { "{\"a\":\"\xc0\xaf\"}", 6 },      /* overlong */
        { "{\"a\":\"\xe0\x80\x80\"}", 7 },
        { "{\"a\":\"\xed\xa0\x80\"}", 7 },  /* a surrogate in UTF-8 */
        { "{\"a\":\"\xf4\x90\x80\x80\"}", 7 },  /* past U+10FFFF */
        { "{\"a\":\"\xc3\"}", 7 },          /* cut sequence */
        { "{\"a\":\"\x80\"}", 6 },
    };

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        slora_json_init(&j, NULL);
        n = strlen(good[i]);

        for (k = 0; k < n; k++) {
            if (!slora_json_feed(&j, good[i] + k, 1)
                || slora_json_done(&j) != (k == n - 1))
            {
                break;
            }
        }

        ok(k == n && ref_valid(good[i], n), "takes good text %zu, done at "
           "its end", i);
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        slora_json_init(&j, NULL);
        n = strlen(bad[i].s);

        for (k = 0; k < n; k++) {
            if (!slora_json_feed(&j, bad[i].s + k, 1)) {
                break;
            }
        }

        is_int(k, bad[i].taken, "refuses %s at byte %zu", bad[i].s,
               bad[i].taken);
        ok(!ref_valid(bad[i].s, n), "the reference refuses it too");
    }

    /* the limits: 64 open containers; blanks between two tokens as a
     * printer writes them: none, one, or a line break (one blank before
     * it at most) and an indent of at most 4 a level open, and 4 */
    {
        char  deep[200], blanks[64];

        memset(deep, '[', sizeof(deep));
        memcpy(deep, "{\"a\":", 5);
        slora_json_init(&j, NULL);
        ok(slora_json_feed(&j, deep, 5 + 63)
           && !slora_json_feed(&j, "[", 1), "64 containers open, not 65");

        /* there an indent's limit (260) passes what the count holds */
        {
            char  many[300];

            memset(many, ' ', sizeof(many));
            ok(slora_json_feed(&j, "\n", 1)
               && slora_json_feed(&j, many, 255)
               && !slora_json_feed(&j, " ", 1),
               "64 open: a line break and 255 blanks, not 256");
        }

        memset(blanks, ' ', sizeof(blanks));
        slora_json_init(&j, NULL);
        ok(slora_json_feed(&j, "{ ", 2) && !slora_json_feed(&j, " ", 1),
           "one blank between tokens, not two");
        slora_json_init(&j, NULL);
        ok(slora_json_feed(&j, "{\r\n", 3) && slora_json_feed(&j, blanks, 8)
           && !slora_json_feed(&j, " ", 1),
           "a line break (\\r\\n) and an indent of 8 in an object, not 9");
        ok(slora_json_feed(&j, "\"a\":", 4) && slora_json_feed(&j, "{\n", 2)
           && slora_json_feed(&j, blanks, 12) && !slora_json_feed(&j, " ", 1),
           "12 a level deeper, not 13");
        slora_json_init(&j, NULL);
        ok(slora_json_feed(&j, "{\n\t", 3) && !slora_json_feed(&j, "\n", 1),
           "one line break between tokens, not two");
        slora_json_init(&j, NULL);
        ok(slora_json_feed(&j, "\n{\n\"a\"\n:\n1 }", 12)
           && slora_json_done(&j),
           "and again after each token, the count starting again");
        slora_json_init(&j, NULL);
        ok(slora_json_feed(&j, "{\"a\": [\n        1,\n        2\n    ],"
                           "\n    \"b\": {}\n}", 49)
           && slora_json_done(&j), "a 4-space pretty print is taken");
    }

    /* compact (vLLM's disable_any_whitespace): no blank between tokens,
     * those of strings kept; slora_json_init clears it */
    slora_json_init(&j, NULL);
    j.compact = 1;
    ok(slora_json_feed(&j, "{\"a b\":[1,{\"c\":\" d \"}]}", 23)
       && slora_json_done(&j), "compact: a text with no blanks but in its"
       " strings is taken");
    slora_json_init(&j, NULL);
    j.compact = 1;
    ok(!slora_json_feed(&j, " ", 1), "compact: no blank before the object");
    slora_json_init(&j, NULL);
    j.compact = 1;
    ok(slora_json_feed(&j, "{\"a\":", 5) && !slora_json_feed(&j, " ", 1),
       "compact: no blank after a colon");
    slora_json_init(&j, NULL);
    j.compact = 1;
    ok(slora_json_feed(&j, "{\"a\":1", 6) && !slora_json_feed(&j, "\n", 1),
       "compact: no line break after a value");
    slora_json_init(&j, NULL);
    ok(slora_json_feed(&j, "{\"a\": 1}", 8) && slora_json_done(&j),
       "slora_json_init clears it");
}


/* (b) */
static void
test_against_reference(void)
{
    int            taken, done, want, agree, dead, valid_docs, took_cut;
    char           doc[DOC_MAX], mut[DOC_MAX + 8], tail[DOC_MAX];
    size_t         n, m, cut, t, pos;
    int32_t        i, k;
    slora_rng_t    rng;
    slora_json_t   j;

    static const char  alphabet[] = "{}[]\":,019-+.eEtrufalsn\\ubd/ \n"
                                    "\x01\xc3\xa9\xe0\xa0\x80\xed\xf0\x90"
                                    "\xf4\x8f\xff";

    slora_rng_seed(&rng, 17);
    agree = 1;
    dead = 0;
    valid_docs = 0;
    took_cut = 1;

    for (i = 0; i < 20000; i++) {
        n = gen_object(&rng, doc, sizeof(doc), 0);

        if (!ref_valid(doc, n)) {
            ok(0, "the generator's object %d is valid: %.*s", i, (int) n,
               doc);
            return;
        }

        valid_docs++;

        /* every cut is taken and not done */
        cut = (size_t) (slora_rng_uniform(&rng) * (double) n);
        slora_json_init(&j, NULL);

        if (!slora_json_feed(&j, doc, cut) || slora_json_done(&j)) {
            took_cut = 0;
        }

        /* a mutation: replace, insert or delete one to three bytes */
        memcpy(mut, doc, n);
        m = n;

        for (k = 0; k < 1 + (int32_t) (slora_rng_next(&rng) % 3); k++) {
            pos = (size_t) (slora_rng_uniform(&rng) * (double) m);

            switch (slora_rng_next(&rng) % 3) {
            case 0:
                mut[pos] = alphabet[slora_rng_next(&rng)
                                    % (sizeof(alphabet) - 1)];
                break;
            case 1:
                memmove(mut + pos + 1, mut + pos, m - pos);
                mut[pos] = alphabet[slora_rng_next(&rng)
                                    % (sizeof(alphabet) - 1)];
                m++;
                break;
            default:
                if (m > 1) {
                    memmove(mut + pos, mut + pos + 1, m - pos - 1);
                    m--;
                }
            }
        }

        slora_json_init(&j, NULL);
        taken = slora_json_feed(&j, mut, m);
        done = taken && slora_json_done(&j);
        want = ref_valid(mut, m);

        if (done != want) {
            if (agree) {
                diag("automaton %d, reference %d: %.*s", done, want,
                     (int) m, mut);
            }
            agree = 0;
        }

        if (taken && !done) {
            t = complete(&j, tail, sizeof(tail));
            memcpy(doc, mut, m);
            memcpy(doc + m, tail, t);

            if (t == 0 || !ref_valid(doc, m + t)) {
                if (!dead) {
                    diag("no way on from: %.*s", (int) m, mut);
                }
                dead++;
            }
        }
    }

    ok(valid_docs == 20000, "20000 generated objects are valid");
    ok(took_cut, "every cut of them is taken, and not done");
    ok(agree, "on their mutations the automaton is done iff the reference "
       "accepts");
    is_int(dead, 0, "every text taken but not done has a way on");
}


/* (c): every byte, and tokens across the grammar's corners */
static void
test_mask_small(void)
{
    char                 bytes[256];
    size_t               lens[400];
    int32_t              i, n;
    const char          *toks[400];
    slora_err_t          err;
    slora_json_vocab_t  *v;

    static const char  *multi[] = {
        "{\"", "\":", "\": \"", "\",", "\", \"", "},", "}}", "]}", "[{",
        "true", "false", "null", "tr", "ue", "nul", "-0.", "1e+", "00",
        "123", "e-5", "\\u", "\\ud83d", "\\ude00", "\\n", "\\\"", "\"\"",
        "\xc3\xa9", "\xc3", "\xa9\"", "\xe2\x82\xac", "\xe2\x82", "\xac",
        "\xf0\x9f\x98\x80", "  ", "\n\n", "\n    ", "                ",
        "hello", " world", "a\"b", "\":1,\"", "x\":1,\"", "abc\\", "{}",
        "[]", ",\"a",
        "\x01", "\"}", "\"]", ",\n  \"", "0}", "1]", "e", "E", ".",
    };

    for (i = 0; i < 256; i++) {
        bytes[i] = (char) i;
        toks[i] = bytes + i;
        lens[i] = 1;
    }

    n = 256;

    for (i = 0; i < (int32_t) (sizeof(multi) / sizeof(multi[0])); i++) {
        toks[n] = multi[i];
        lens[n++] = strlen(multi[i]);
    }

    toks[n] = "";                   /* control tokens */
    lens[n++] = 0;
    toks[n] = "";
    lens[n++] = 0;

    v = slora_json_vocab_from(toks, lens, n, &err);
    if (v == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    test_mask_vocab(v, n, "bytes and corners", 300, 200, 0.05, 5);
    slora_json_vocab_free(v);
}


/* The mask equals trying every token at the states of random walks,
 * each from a random cut of a random object (strings, escapes, numbers,
 * nesting: every kind of state), drawing allowed tokens. */
static void
test_mask_vocab(const slora_json_vocab_t *v, int32_t n_vocab,
    const char *name, int walks, int steps, double close, uint64_t seed)
{
    int            w, s, same, any_done, counts;
    char           doc[DOC_MAX];
    float         *row;
    size_t         len;
    int32_t        id, n, allowed, pick, states;
    slora_rng_t    rng;
    slora_json_t   j, t;

    row = malloc((size_t) n_vocab * sizeof(float));
    if (row == NULL) {
        BAIL_OUT("no memory");
    }

    slora_rng_seed(&rng, seed);
    same = 1;
    counts = 1;
    any_done = 0;
    states = 0;

    for (w = 0; w < walks; w++) {
        len = gen_object(&rng, doc, sizeof(doc), 0);
        slora_json_init(&j, NULL);

        if (!slora_json_feed(&j, doc,
                             (size_t) (slora_rng_uniform(&rng)
                                       * (double) len)))
        {
            BAIL_OUT("a cut of a generated object is refused");
        }

        for (s = 0; s < steps && !slora_json_done(&j); s++) {
            for (id = 0; id < n_vocab; id++) {
                row[id] = 0;
            }

            n = slora_json_mask(&j, v, row);
            allowed = 0;
            states++;

            for (id = 0; id < n_vocab; id++) {
                t = j;

                if (slora_json_feed_token(&t, v, id)) {
                    allowed++;
                    same &= row[id] == 0;

                } else {
                    same &= row[id] == -INFINITY;
                }
            }

            counts &= n == allowed;

            if (allowed == 0) {
                break;
            }

            /* a random allowed token; now and then (close: how often) a
             * closer, or a string's end, so walks end */
            pick = (int32_t) (slora_rng_uniform(&rng) * (double) allowed);

            for (id = 0; id < n_vocab; id++) {
                if (row[id] == 0 && pick-- == 0) {
                    break;
                }
            }

            if (slora_rng_uniform(&rng) < close && !slora_json_in_text(&j)) {
                t = j;
                if (slora_json_feed(&t, "}", 1)) {
                    j = t;
                    continue;
                }
                t = j;
                if (slora_json_feed(&t, "]", 1)) {
                    j = t;
                    continue;
                }
            }

            if (slora_rng_uniform(&rng) < close && slora_json_in_text(&j)) {
                t = j;
                if (slora_json_feed(&t, "\"", 1)) {
                    j = t;
                    continue;
                }
            }

            slora_json_feed_token(&j, v, id);
        }

        any_done |= slora_json_done(&j);
    }

    ok(same, "%s: the mask is what trying every token gives, at %d states",
       name, states);
    ok(counts, "%s: and counts the tokens it allows", name);
    ok(any_done, "%s: some walks close their object", name);

    free(row);
}


/* (c) on the Llama family's two kinds of vocabulary */
static void
test_llama_vocabs(void)
{
    int                  i;
    char                 path[512];
    const char          *dir;
    slora_err_t          err;
    slora_tokenizer_t   *t;
    slora_json_vocab_t  *v;

    static const char   *names[] = { "llama-spm", "llama-bpe" };

    dir = getenv("SLORA_VOCAB_DIR");
    dir = dir ? dir : VOCAB_DIR_DEFAULT;

    for (i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/ggml-vocab-%s.gguf", dir, names[i]);

        t = slora_tokenizer_load(path, &err);
        if (t == NULL) {
            BAIL_OUT("%s: %s (tools/fetch-reference, or SLORA_VOCAB_DIR)",
                     path, err.msg);
        }

        v = slora_json_vocab_create(t, slora_tokenizer_n_vocab(t), &err);
        if (v == NULL) {
            BAIL_OUT("%s", err.msg);
        }

        test_mask_vocab(v, slora_tokenizer_n_vocab(t), names[i], 8, 30, 0.3,
                        11 + (uint64_t) i);

        slora_json_vocab_free(v);
        slora_tokenizer_free(t);
    }
}






/* (c) on SmolLM2's vocabulary, and (d) */
static void
test_smollm2(void)
{
    int                   i, prefixes;
    char                  text[8192];
    cJSON                *doc;
    int32_t               ids[CHAT_RUN_TOKENS], stop[8], k;
    chat_run_t            run;
    slora_err_t           err;
    slora_json_t          j;
    slora_engine_t       *e;
    slora_request_t       req;
    slora_tokenizer_t    *tok;
    slora_json_vocab_t   *v;

    tok = slora_tokenizer_load(CHAT_RUN_MODEL, &err);
    if (tok == NULL) {
        BAIL_OUT("%s: %s (make models)", CHAT_RUN_MODEL, err.msg);
    }

    v = slora_json_vocab_create(tok, slora_tokenizer_n_vocab(tok), &err);
    if (v == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    test_mask_vocab(v, slora_tokenizer_n_vocab(tok), "SmolLM2", 12, 40, 0.3,
                    9);

    /* (d) */
    e = chat_run_engine(tok);

    chat_run_request(&req, tok,
                     "Reply in JSON: what are three fruits and their colours?",
                     ids, stop);

    /* 0: JSON mode, greedy; 1: the same without; 2, 3: JSON mode at
     * temperature 1 */
    for (i = 0; i < 4; i++) {
        req.id = (uint64_t) i;
        req.sampling.json = i != 1;
        req.sampling.max_tokens = i == 1 ? 60 : 160;
        req.sampling.temperature = i >= 2 ? 1.0f : 0;
        req.sampling.seed = (uint64_t) i;

        if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
            BAIL_OUT("submit: %s", err.msg);
        }
    }

    chat_run_steps(e, &run);

    is_int(run.errors, 0, "no request failed");

    chat_run_text(tok, run.tokens[0], run.n[0], text, sizeof(text));
    diag("JSON mode, greedy: %s", text);
    doc = cJSON_Parse(text);
    ok(doc != NULL && cJSON_IsObject(doc), "the greedy answer in JSON mode "
       "is an object cJSON parses");
    cJSON_Delete(doc);
    is_int(run.finish[0], SLORA_FINISH_STOP, "and it ended as it closed");

    chat_run_text(tok, run.tokens[1], run.n[1], text, sizeof(text));
    diag("without: %.200s", text);
    doc = cJSON_Parse(text);
    ok(doc == NULL || !cJSON_IsObject(doc), "without JSON mode the answer "
       "is not one");
    cJSON_Delete(doc);

    for (i = 2; i < 4; i++) {
        slora_json_init(&j, NULL);
        prefixes = run.n[i] > 0;

        for (k = 0; k < run.n[i]; k++) {
            prefixes &= slora_json_feed_token(&j, v, run.tokens[i][k]);
        }

        chat_run_text(tok, run.tokens[i], run.n[i], text, sizeof(text));
        diag("JSON mode, seed %d: %s", i, text);
        ok(prefixes, "sampled answer %d is at every token the start of an "
           "object", i);

        if (run.finish[i] == SLORA_FINISH_STOP) {
            doc = cJSON_Parse(text);
            ok(slora_json_done(&j) && doc != NULL && cJSON_IsObject(doc),
               "it ended as it closed, an object cJSON parses");
            cJSON_Delete(doc);

        } else {
            ok(run.finish[i] == SLORA_FINISH_LENGTH && run.n[i] == 160
               && !slora_json_done(&j), "it ran to max_tokens, open");
        }
    }

    req.id = 9;
    req.sampling.json = 2;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "JSON mode") != NULL, "json 2 is refused: %s",
       err.msg);

    slora_engine_free(e);

    e = chat_run_engine(NULL);

    req.sampling.json = 1;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "tokenizer") != NULL, "an engine without the "
       "tokenizer refuses JSON mode: %s", err.msg);
    req.sampling.json = 0;
    ok(slora_engine_submit(e, &req, &err) == SLORA_OK, "and serves the "
       "request without it");

    slora_engine_free(e);
    slora_json_vocab_free(v);
    slora_tokenizer_free(tok);
}


/* The reference: RFC 8259's grammar by recursive descent, an object at
 * the top, with the automaton's limits (64 open containers; between
 * tokens none, one blank, or a line break with at most one blank
 * before it and an indent of at most 4 a level open, and 4, after). */
typedef struct {
    const u_char  *p;
    const u_char  *end;
    int            depth;
} ref_t;


static int ref_value(ref_t *r);


static int
ref_ws(ref_t *r)
{
    int  before, after, lines;

    before = 0;
    after = 0;
    lines = 0;

    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t'
                             || *r->p == '\n' || *r->p == '\r'))
    {
        if (*r->p == '\n') {
            lines++;

        } else if (lines) {
            after++;

        } else {
            before++;
        }

        r->p++;
    }

    return lines <= 1 && before <= 1
           && after <= SLORA_JSON_INDENT * (r->depth + 1);
}


static int
ref_is(ref_t *r, u_char c)
{
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return 1;
    }

    return 0;
}


static int
ref_hex4(ref_t *r, unsigned *code)
{
    int       i;
    unsigned  c;

    *code = 0;

    for (i = 0; i < 4; i++) {
        if (r->p == r->end) {
            return 0;
        }

        c = *r->p++;

        if (c >= '0' && c <= '9') {
            *code = *code * 16 + c - '0';

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            *code = *code * 16 + (c | 0x20) - 'a' + 10;

        } else {
            return 0;
        }
    }

    return 1;
}


/* One UTF-8 sequence whose lead byte c was read. */
static int
ref_utf8(ref_t *r, unsigned c)
{
    int       n, i;
    unsigned  lo, hi, b;

    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 1;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;

    } else {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (r->p == r->end) {
            return 0;
        }

        b = *r->p++;

        if (b < (i == 0 ? lo : 0x80) || b > (i == 0 ? hi : 0xbf)) {
            return 0;
        }
    }

    return 1;
}


static int
ref_string(ref_t *r)
{
    unsigned  c, code;

    if (!ref_is(r, '"')) {
        return 0;
    }

    while (r->p < r->end) {
        c = *r->p++;

        if (c == '"') {
            return 1;
        }

        if (c < 0x20) {
            return 0;
        }

        if (c >= 0x80) {
            if (!ref_utf8(r, c)) {
                return 0;
            }
            continue;
        }

        if (c != '\\') {
            continue;
        }

        if (r->p == r->end) {
            return 0;
        }

        c = *r->p++;

        if (c != 'u') {
            if (strchr("\"\\/bfnrt", (int) c) == NULL || c == 0) {
                return 0;
            }
            continue;
        }

        if (!ref_hex4(r, &code) || (code >= 0xdc00 && code <= 0xdfff)) {
            return 0;
        }

        if (code >= 0xd800 && code <= 0xdbff
            && (!ref_is(r, '\\') || !ref_is(r, 'u') || !ref_hex4(r, &code)
                || code < 0xdc00 || code > 0xdfff))
        {
            return 0;
        }
    }

    return 0;
}


static int
ref_digits(ref_t *r)
{
    int  n;

    for (n = 0; r->p < r->end && *r->p >= '0' && *r->p <= '9'; n++) {
        r->p++;
    }

    return n;
}


static int
ref_number(ref_t *r)
{
    (void) ref_is(r, '-');

    if (!ref_is(r, '0')) {
        if (r->p == r->end || *r->p < '1' || *r->p > '9') {
            return 0;
        }
        (void) ref_digits(r);
    }

    if (ref_is(r, '.') && ref_digits(r) == 0) {
        return 0;
    }

    if (ref_is(r, 'e') || ref_is(r, 'E')) {
        if (!ref_is(r, '+')) {
            (void) ref_is(r, '-');
        }

        if (ref_digits(r) == 0) {
            return 0;
        }
    }

    return 1;
}


static int
ref_literal(ref_t *r, const char *lit)
{
    size_t  n;

    n = strlen(lit);

    if ((size_t) (r->end - r->p) < n || memcmp(r->p, lit, n) != 0) {
        return 0;
    }

    r->p += n;
    return 1;
}


static int
ref_value(ref_t *r)
{
    u_char  open, close;

    if (r->p == r->end) {
        return 0;
    }

    switch (*r->p) {

    case '{':
    case '[':
        open = *r->p++;
        close = open == '{' ? '}' : ']';

        if (++r->depth > SLORA_JSON_DEPTH_MAX || !ref_ws(r)) {
            return 0;
        }

        if (ref_is(r, close)) {
            r->depth--;
            return 1;
        }

        for ( ;; ) {
            if (open == '{'
                && (!ref_string(r) || !ref_ws(r) || !ref_is(r, ':')
                    || !ref_ws(r)))
            {
                return 0;
            }

            if (!ref_value(r) || !ref_ws(r)) {
                return 0;
            }

            if (ref_is(r, close)) {
                r->depth--;
                return 1;
            }

            if (!ref_is(r, ',') || !ref_ws(r)) {
                return 0;
            }
        }

    case '"':
        return ref_string(r);

    case 't':
        return ref_literal(r, "true");

    case 'f':
        return ref_literal(r, "false");

    case 'n':
        return ref_literal(r, "null");

    default:
        return ref_number(r);
    }
}


static int
ref_valid(const char *s, size_t n)
{
    ref_t  r;

    r.p = (const u_char *) s;
    r.end = r.p + n;
    r.depth = 0;

    return ref_ws(&r) && r.p < r.end && *r.p == '{' && ref_value(&r)
           && r.p == r.end;
}


/* A way on from a state taken but not done: the first of a few bytes
 * that it takes, again and again, until it is done; 0 if none is. */
static size_t
complete(slora_json_t *j, char *out, size_t cap)
{
    size_t       n, k;
    slora_json_t t;

    static const char  ways[] = "\"}]:0dcu\\truefalsn\x80\x90\xa0{";

    for (n = 0; n < cap && !slora_json_done(j); n++) {
        for (k = 0; k < sizeof(ways) - 1; k++) {
            t = *j;
            if (slora_json_feed(&t, ways + k, 1)) {
                break;
            }
        }

        if (k == sizeof(ways) - 1) {
            return 0;
        }

        *j = t;
        out[n] = ways[k];
    }

    return slora_json_done(j) ? n : 0;
}


/* A random object: nested objects and arrays, strings with escapes,
 * surrogate pairs and UTF-8, numbers of every form, literals, blanks. */
typedef struct {
    char         *out;
    size_t        n;
    size_t        cap;
    slora_rng_t  *rng;
} gen_t;


static void
gen_put(gen_t *g, const char *s)
{
    size_t  len;

    len = strlen(s);

    if (g->n + len < g->cap) {
        memcpy(g->out + g->n, s, len);
        g->n += len;
    }
}


static uint64_t
gen_pick(gen_t *g, uint64_t n)
{
    return slora_rng_next(g->rng) % n;
}


static void
gen_ws(gen_t *g)
{
    static const char  *ws[] = { "", "", "", " ", "\n  ", "\t", "\r\n" };

    gen_put(g, ws[gen_pick(g, 7)]);
}


static void
gen_string(gen_t *g)
{
    uint64_t  i, n;

    static const char  *parts[] = {
        "a", "xyz", "Hello", " ", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9",
        "\\uD83D\\uDE00", "\\u0000", "\\uffff", "\xc3\xa9", "\xe0\xa0\x80",
        "\xed\x9f\xbf", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\x7f",
        "{", "]", ":", ",",
    };

    gen_put(g, "\"");
    n = gen_pick(g, 5);

    for (i = 0; i < n; i++) {
        gen_put(g, parts[gen_pick(g, sizeof(parts) / sizeof(parts[0]))]);
    }

    gen_put(g, "\"");
}


static void
gen_value(gen_t *g, int depth)
{
    uint64_t  i, n, kind;

    static const char  *numbers[] = {
        "0", "-0", "12", "-3.25", "1e5", "2.5E-3", "7e+2", "0.0", "-10E10",
    };
    static const char  *literals[] = { "true", "false", "null" };

    kind = gen_pick(g, depth < 3 ? 6 : 4);

    switch (kind) {

    case 0:
        gen_string(g);
        return;

    case 1:
        gen_put(g, numbers[gen_pick(g, 9)]);
        return;

    case 2:
    case 3:
        gen_put(g, literals[gen_pick(g, 3)]);
        return;

    default:
        n = gen_pick(g, 4);
        gen_put(g, kind == 4 ? "{" : "[");

        for (i = 0; i < n; i++) {
            gen_ws(g);
            if (i > 0) {
                gen_put(g, ",");
                gen_ws(g);
            }
            if (kind == 4) {
                gen_string(g);
                gen_ws(g);
                gen_put(g, ":");
                gen_ws(g);
            }
            gen_value(g, depth + 1);
        }

        gen_ws(g);
        gen_put(g, kind == 4 ? "}" : "]");
    }
}


static size_t
gen_object(slora_rng_t *rng, char *out, size_t cap, int depth)
{
    uint64_t  i, n;
    gen_t     g;

    g.out = out;
    g.n = 0;
    g.cap = cap;
    g.rng = rng;

    gen_ws(&g);
    gen_put(&g, "{");
    n = gen_pick(&g, 5);

    for (i = 0; i < n; i++) {
        gen_ws(&g);
        if (i > 0) {
            gen_put(&g, ",");
            gen_ws(&g);
        }
        gen_string(&g);
        gen_put(&g, ":");
        gen_ws(&g);
        gen_value(&g, depth + 1);
    }

    gen_ws(&g);
    gen_put(&g, "}");

    return g.n;
}
