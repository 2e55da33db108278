/*
 * test_tokenizer.c: the tokenizer against llama.cpp. Its vocabulary test
 * files (models/ggml-vocab-*.gguf with .inp/.out, found through
 * SLORA_VOCAB_DIR) and goldens made with its llama-tokenize for SmolLM2
 * (t/golden/tokenizer/smollm2.txt) give the expected ids; then streaming
 * decode, chat templates, invalid UTF-8 and speed.
 */

#define _GNU_SOURCE

#include <dirent.h>
#include <time.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tap.h"
#include "slora_gguf.h"
#include "slora_tokenizer.h"
#include "hf_vocab.h"
#include "ref_files.h"


#define GOLDEN             "t/golden/tokenizer/smollm2.txt"
#define MAX_IDS            (1 << 20)

/* a message's last fields: not made, all of its content the request's */
#define PLAIN_ALL          0, NULL, 0, 0


static int32_t  ids[MAX_IDS];


static int utf8_ok(const char *s, size_t n);
static char *stream_decode(const slora_tokenizer_t *t, const int32_t *v,
    int32_t n, int skip_special, int text, size_t *len);
static void test_vocab(const char *dir, const char *name, int spm);
static size_t unescape(const char *s, char *out);
static void test_smollm2(const slora_tokenizer_t *t);
static void test_detok_bytes(const slora_tokenizer_t *t);
static void test_missing_bytes(const slora_tokenizer_t *t);
static void test_detok_edges(const char *dir);
static void byte_tokens(const slora_tokenizer_t *t, int32_t *byte_id);
static void test_invalid_utf8(const slora_tokenizer_t *t);
static void test_chat(const slora_tokenizer_t *smol);
static void test_stops(const slora_tokenizer_t *t);
static char *read_template(const char *dir, const char *file, size_t *len);
static void test_json(const slora_tokenizer_t *smol, const char *gguf_path,
    int pairs);
static void test_speed(const slora_tokenizer_t *t);


static int
utf8_ok(const char *s, size_t n)
{
    size_t          i, k, need;
    const uint8_t  *u;

    u = (const uint8_t *) s;

    for (i = 0; i < n; i += need) {
        if (u[i] < 0x80) {
            need = 1;
            continue;
        }

        need = u[i] >= 0xf0 ? 4 : u[i] >= 0xe0 ? 3 : u[i] >= 0xc2 ? 2 : 0;

        if (need == 0 || u[i] > 0xf4 || i + need > n) {
            return 0;
        }

        for (k = 1; k < need; k++) {
            if ((u[i + k] & 0xc0) != 0x80) {
                return 0;
            }
        }
    }

    return 1;
}


/* Streams ids through the detokenizer (text: as a text the tokenizer
 * encoded, slora_detok_init_text); every chunk must be whole UTF-8.
 * Returns the concatenation (malloc'd), or NULL if a chunk was not. */
static char *
stream_decode(const slora_tokenizer_t *t, const int32_t *v, int32_t n,
    int skip_special, int text, size_t *len)
{
    char           *out, chunk[4096];
    size_t          cap, k;
    int32_t         i;
    slora_detok_t   d;

    cap = 1024;
    out = malloc(cap);
    *len = 0;

    if (text) {
        slora_detok_init_text(&d, t);

    } else {
        slora_detok_init(&d);
    }

    for (i = 0; i <= n; i++) {
        if (i < n) {
            if (slora_detok_push(&d, t, v[i], skip_special, chunk,
                                 sizeof(chunk), &k) != SLORA_OK)
            {
                free(out);
                return NULL;
            }

        } else {
            slora_detok_flush(&d, chunk, sizeof(chunk), &k);
        }

        if (!utf8_ok(chunk, k)) {
            free(out);
            return NULL;
        }

        while (*len + k + 1 > cap) {
            cap *= 2;
            out = realloc(out, cap);
        }

        memcpy(out + *len, chunk, k);
        *len += k;
    }

    out[*len] = '\0';

    return out;
}


/* llama.cpp's test-tokenizer-0 format: .inp holds the strings separated
 * by "\n__ggml_vocab_test__\n", .out one line of ids per string; ids are
 * for add_special = false, parse_special = false. */
static void
test_vocab(const char *dir, const char *name, int spm)
{
    char               path[1024], *inp, *out, *p, *q, *line, *end, *dec;
    const char        *sep;
    size_t             il, ol, sl, dl;
    int                n_cases, n_bad, n_dec_bad, n_text_bad, rc;
    int32_t            n, want[4096], nw, i;
    slora_err_t        err;
    slora_tokenizer_t *t;

    sep = "\n__ggml_vocab_test__\n";
    sl = strlen(sep);

    snprintf(path, sizeof(path), "%s/ggml-vocab-%s.gguf", dir, name);
    t = slora_tokenizer_load(path, &err);

    if (!ok(t != NULL, "%s: loads", name)) {
        diag("%s", err.msg);
        return;
    }

    snprintf(path, sizeof(path), "%s/ggml-vocab-%s.gguf.inp", dir, name);
    inp = tap_read_file(path, &il);
    snprintf(path, sizeof(path), "%s/ggml-vocab-%s.gguf.out", dir, name);
    out = tap_read_file(path, &ol);

    if (!ok(inp != NULL && out != NULL, "%s: .inp and .out read", name)) {
        slora_tokenizer_free(t);
        return;
    }

    n_cases = 0;
    n_bad = 0;
    n_dec_bad = 0;
    n_text_bad = 0;
    p = inp;
    line = out;

    while (p != NULL && p <= inp + il && *line != '\0') {
        q = memmem(p, (size_t) (inp + il - p), sep, sl);
        end = q ? q : inp + il;

        nw = 0;

        for (;;) {
            while (*line == ' ') {
                line++;
            }

            if (*line == '\n' || *line == '\0') {
                break;
            }

            want[nw++] = (int32_t) strtol(line, &line, 10);
        }

        if (*line == '\n') {
            line++;
        }

        rc = slora_tokenizer_encode(t, p, (size_t) (end - p), 0, 0, ids,
                                    MAX_IDS, &n, &err);

        if (rc != SLORA_OK || n != nw
            || memcmp(ids, want, (size_t) n * sizeof(int32_t)) != 0)
        {
            if (n_bad++ < 3) {
                diag("%s: case %d \"%.*s\": rc %d, %d ids, want %d", name,
                     n_cases, (int) (end - p < 60 ? end - p : 60), p, rc,
                     (int) n, (int) nw);

                for (i = 0; i < n && i < 24; i++) {
                    printf(" %d/%d", ids[i], i < nw ? want[i] : -1);
                }

                printf("\n");
            }
        }

        /* decoding gives the text back (SentencePiece: after the space
         * it prepends) */
        dec = stream_decode(t, ids, n, 0, 0, &dl);

        if (dec == NULL
            || dl != (size_t) (end - p) + (spm && end > p ? 1 : 0)
            || memcmp(dec + (spm && end > p ? 1 : 0), p,
                      (size_t) (end - p)) != 0)
        {
            if (n_dec_bad++ < 3) {
                diag("%s: case %d decodes differently", name, n_cases);
            }
        }

        free(dec);

        /* decoded as a text (an echoed prompt): as it was, without the
         * space SentencePiece prepends */
        dec = stream_decode(t, ids, n, 0, 1, &dl);

        if (dec == NULL || dl != (size_t) (end - p)
            || memcmp(dec, p, (size_t) (end - p)) != 0)
        {
            if (n_text_bad++ < 3) {
                diag("%s: case %d decodes as a text differently", name,
                     n_cases);
            }
        }

        free(dec);
        n_cases++;
        p = q ? q + sl : NULL;
    }

    ok(n_cases > 10 && n_bad == 0, "%s: ids of %d strings equal "
       "llama.cpp's (%d differ)", name, n_cases, n_bad);
    ok(n_dec_bad == 0, "%s: streaming decode gives back all %d strings",
       name, n_cases);
    ok(n_text_bad == 0, "%s: decoded as a text, all %d strings come back "
       "as they were", name, n_cases);

    free(inp);
    free(out);
    slora_tokenizer_free(t);
}


static size_t
unescape(const char *s, char *out)
{
    size_t  k;

    for (k = 0; *s != '\0' && *s != '\n'; s++) {
        if (*s != '\\') {
            out[k++] = *s;
            continue;
        }

        s++;

        switch (*s) {
        case 'n':  out[k++] = '\n'; break;
        case 't':  out[k++] = '\t'; break;
        case 'r':  out[k++] = '\r'; break;
        case '\\': out[k++] = '\\'; break;
        case 'x':
            out[k++] = (char) strtol((char []) { s[1], s[2], 0 }, NULL, 16);
            s += 2;
            break;
        default:
            BAIL_OUT("bad escape in " GOLDEN);
        }
    }

    return k;
}


static void
test_smollm2(const slora_tokenizer_t *t)
{
    char         *g, *line, text[4096], *dec;
    size_t        gl, tl, dl;
    int           special, n_cases, n_bad, n_dec_bad, rc;
    int32_t       want[4096], nw, n;
    slora_err_t   err;

    g = tap_read_file(GOLDEN, &gl);
    if (g == NULL) {
        BAIL_OUT("%s missing: run tools/make-tokenizer-goldens", GOLDEN);
    }

    n_cases = 0;
    n_bad = 0;
    n_dec_bad = 0;

    for (line = g; line != NULL && *line != '\0'; ) {
        if (line[0] != '>') {
            line = strchr(line, '\n');
            line = line ? line + 1 : NULL;
            continue;
        }

        special = line[2] == '1';
        tl = unescape(line + 4, text);
        line = strchr(line, '\n') + 1;

        if (line[0] != '=') {
            BAIL_OUT("%s: '>' line without '=' line", GOLDEN);
        }

        line += 1;
        nw = 0;

        while (*line == ' ') {
            want[nw++] = (int32_t) strtol(line, &line, 10);
        }

        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;

        rc = slora_tokenizer_encode(t, text, tl, 1, special, ids, MAX_IDS,
                                    &n, &err);

        if (rc != SLORA_OK || n != nw
            || memcmp(ids, want, (size_t) n * sizeof(int32_t)) != 0)
        {
            if (n_bad++ < 5) {
                diag("smollm2: \"%.*s\": %d ids, want %d", (int) tl, text,
                     (int) n, (int) nw);
            }
        }

        dec = stream_decode(t, ids, n, 0, 0, &dl);

        if (dec == NULL || dl != tl || memcmp(dec, text, tl) != 0) {
            if (n_dec_bad++ < 5) {
                diag("smollm2: \"%.*s\" decodes to \"%s\"", (int) tl, text,
                     dec ? dec : "(split UTF-8)");
            }
        }

        free(dec);
        n_cases++;
    }

    ok(n_cases >= 40 && n_bad == 0, "smollm2: ids of %d golden strings "
       "equal llama-tokenize's (%d differ)", n_cases, n_bad);
    ok(n_dec_bad == 0, "smollm2: streaming decode, one token at a time, "
       "gives back all %d strings, each chunk whole UTF-8", n_cases);

    free(g);
}


/* The edges of UTF-8's well-formed table (Unicode 15, table 3-7), each
 * pushed a byte a token and flushed: the lowest and highest valid
 * sequence of each lead byte pass through whole; an overlong form, a
 * surrogate, a code point past U+10FFFF and the lead bytes C0, C1 and F5
 * give one U+FFFD per maximal invalid subpart, as the standard's
 * "substitution of maximal subparts" says. On llama.cpp's Llama SPM
 * vocabulary, whose byte tokens <0x00>..<0xFF> hold every byte (SmolLM2's
 * has none for bytes no valid UTF-8 holds, such as C0, C1 and F5). */
static void
test_detok_edges(const char *dir)
{
    char                path[512], out[64];
    size_t              i, j, k, total;
    int                 missing;
    int32_t             byte_id[256], n;
    slora_err_t         err;
    slora_detok_t       d;
    slora_tokenizer_t  *t;

    static const struct {
        const char  *in;
        const char  *want;
    } cases[] = {
        { "\xc2\x80", "\xc2\x80" },                    /* U+0080 */
        { "\xdf\xbf", "\xdf\xbf" },                    /* U+07FF */
        { "\xc1\xbf", "\xef\xbf\xbd\xef\xbf\xbd" },    /* overlong */
        { "\xc0\x80", "\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xe0\xa0\x80", "\xe0\xa0\x80" },            /* U+0800 */
        { "\xe0\x9f\xbf",                              /* overlong */
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xe1\x80\x80", "\xe1\x80\x80" },            /* U+1000 */
        { "\xed\x9f\xbf", "\xed\x9f\xbf" },            /* U+D7FF */
        { "\xed\xa0\x80",                              /* U+D800 */
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xee\x80\x80", "\xee\x80\x80" },            /* U+E000 */
        { "\xef\xbf\xbf", "\xef\xbf\xbf" },            /* U+FFFF */
        { "\xf0\x90\x80\x80", "\xf0\x90\x80\x80" },    /* U+10000 */
        { "\xf0\x8f\xbf\xbf",                          /* overlong */
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xf3\xbf\xbf\xbf", "\xf3\xbf\xbf\xbf" },    /* U+FFFFF */
        { "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf" },    /* U+10FFFF */
        { "\xf4\x90\x80\x80",                          /* U+110000 */
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xf5\x80", "\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xe1\x80" "A", "\xef\xbf\xbd" "A" },        /* cut by ASCII */
    };

    snprintf(path, sizeof(path), "%s/ggml-vocab-llama-spm.gguf", dir);
    t = slora_tokenizer_load(path, &err);

    if (t == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    byte_tokens(t, byte_id);
    missing = 0;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (j = 0; cases[i].in[j]; j++) {
            missing += byte_id[(uint8_t) cases[i].in[j]] < 0;
        }
    }

    is_int(missing, 0, "llama-spm: every byte of the UTF-8 edges has a "
           "token");

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        slora_detok_init(&d);
        total = 0;

        for (j = 0; cases[i].in[j]; j++) {
            slora_detok_push(&d, t, byte_id[(uint8_t) cases[i].in[j]], 1,
                             out + total, sizeof(out) - total, &k);
            total += k;
        }

        slora_detok_flush(&d, out + total, sizeof(out) - total, &k);
        total += k;

        ok(total == strlen(cases[i].want)
           && memcmp(out, cases[i].want, total) == 0,
           "detok: UTF-8 edge case %zu (%zu bytes) gives %zu bytes as "
           "Unicode's table says", i, strlen(cases[i].in),
           strlen(cases[i].want));
    }

    /* an echoed prompt: BOS hidden, then the text as it was given */
    slora_tokenizer_encode(t, "Paris is", 8, 1, 0, ids, MAX_IDS, &n, &err);
    slora_detok_init_text(&d, t);
    total = 0;

    for (i = 0; i < (size_t) n; i++) {
        slora_detok_push(&d, t, ids[i], 1, out + total, sizeof(out) - total,
                         &k);
        total += k;
    }

    ok(n == 3 && ids[0] == slora_tokenizer_bos(t) && total == 8
       && memcmp(out, "Paris is", 8) == 0,
       "detok: a prompt decoded as a text after its hidden BOS is the "
       "text, without the space SentencePiece put before it");

    /* SLORA_BUSY takes nothing: the token pushed again with room still
     * loses its space */
    slora_detok_init_text(&d, t);
    slora_detok_push(&d, t, ids[0], 1, out, sizeof(out), &k);
    ok(slora_detok_push(&d, t, ids[1], 1, out, 8, &k) == SLORA_BUSY
       && slora_detok_push(&d, t, ids[1], 1, out, sizeof(out), &k)
          == SLORA_OK
       && k == 5 && memcmp(out, "Paris", 5) == 0,
       "detok: a token refused for room, pushed again, is the text "
       "without the space SentencePiece put before it");

    slora_tokenizer_free(t);
}


/* byte_id[b]: a token whose text is the one byte b, or -1. */
static void
byte_tokens(const slora_tokenizer_t *t, int32_t *byte_id)
{
    char     buf[64];
    size_t   n;
    int32_t  id, i;

    for (i = 0; i < 256; i++) {
        byte_id[i] = -1;
    }

    for (id = 0; id < slora_tokenizer_n_vocab(t); id++) {
        if (slora_tokenizer_token_bytes(t, id, buf, sizeof(buf), &n)
            == SLORA_OK && n == 1 && !slora_tokenizer_is_special(t, id)
            && byte_id[(uint8_t) buf[0]] < 0)
        {
            byte_id[(uint8_t) buf[0]] = id;
        }
    }
}


/* SmolLM2 has no token for bytes 0x04, 0x06, 0x13 (and 0xf1): encoding
 * leaves them out, as llama.cpp and HF do, never writing its unknown id
 * 0, <|endoftext|>, where a user pasted a control byte. */
static void
test_missing_bytes(const slora_tokenizer_t *t)
{
    int32_t      got[16], n;
    int          rc;
    slora_err_t  err;

    rc = slora_tokenizer_encode(t, "a\x04" "b\x06" "c\x13", 6, 0, 0, got, 16,
                                &n, &err);
    ok(rc == SLORA_OK && n == 3 && got[0] == 81 && got[1] == 82
       && got[2] == 83, "SmolLM2: bytes without a token left out of "
       "\"a\\x04b\\x06c\\x13\" ([81, 82, 83]), no <|endoftext|> (%d ids)",
       rc == SLORA_OK ? (int) n : -1);
}


/* Byte tokens pushed one at a time: nothing until the character is
 * whole; a cut sequence flushes as U+FFFD; a stray byte is U+FFFD. */
static void
test_detok_bytes(const slora_tokenizer_t *t)
{
    int32_t        id, byte_id[256];
    char           out[256];
    size_t         k, total;
    int            i;
    slora_detok_t  d;
    const uint8_t  emoji[4] = { 0xf0, 0x9f, 0x98, 0x80 };

    byte_tokens(t, byte_id);

    ok(byte_id[0xf0] >= 0 && byte_id[0x9f] >= 0 && byte_id[0x98] >= 0
       && byte_id[0x80] >= 0 && byte_id[0xe4] >= 0 && byte_id[0xbd] >= 0
       && byte_id['A'] >= 0, "smollm2: the bytes used below have tokens");

    slora_detok_init(&d);
    total = 0;

    for (i = 0; i < 4; i++) {
        slora_detok_push(&d, t, byte_id[emoji[i]], 1, out + total,
                         sizeof(out) - total, &k);
        if (i < 3) {
            is_int(k, 0, "detok: byte %d of a 4-byte character holds back",
                   i + 1);
        }

        total += k;
    }

    ok(total == 4 && memcmp(out, emoji, 4) == 0,
       "detok: the 4th byte releases the whole character");

    slora_detok_init(&d);
    slora_detok_push(&d, t, byte_id[0xe4], 1, out, sizeof(out), &k);
    slora_detok_push(&d, t, byte_id[0xbd], 1, out, sizeof(out), &k);
    is_int(k, 0, "detok: 2 of 3 bytes held");
    slora_detok_flush(&d, out, sizeof(out), &k);
    ok(k == 3 && memcmp(out, "\xef\xbf\xbd", 3) == 0,
       "detok: flush turns a cut character into one U+FFFD");

    slora_detok_init(&d);
    slora_detok_push(&d, t, byte_id[0x80], 1, out, sizeof(out), &k);
    ok(k == 3 && memcmp(out, "\xef\xbf\xbd", 3) == 0,
       "detok: a stray continuation byte is U+FFFD at once");

    slora_detok_init(&d);
    slora_detok_push(&d, t, byte_id[0xf0], 1, out, sizeof(out), &k);
    slora_detok_push(&d, t, byte_id['A'], 1, out, sizeof(out), &k);
    ok(k == 4 && memcmp(out, "\xef\xbf\xbd" "A", 4) == 0,
       "detok: a lead byte followed by ASCII is U+FFFD then the ASCII");

    id = slora_tokenizer_find(t, "<|im_end|>", 10);
    slora_detok_init(&d);
    slora_detok_push(&d, t, id, 1, out, sizeof(out), &k);
    is_int(k, 0, "detok: skip_special hides <|im_end|>");
    slora_detok_push(&d, t, id, 0, out, sizeof(out), &k);
    ok(k == 10 && memcmp(out, "<|im_end|>", 10) == 0,
       "detok: without skip_special <|im_end|> is its text");
}


static void
test_invalid_utf8(const slora_tokenizer_t *t)
{
    static const char  *bad[] = {
        "abc\x80", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "x\xed\xa0\x80y",
        "\xf4\x90\x80\x80", "\xff", "ok \xe2\x82 cut", NULL
    };
    int                 i, all;
    int32_t             n;
    slora_err_t         err;

    all = 1;

    for (i = 0; bad[i] != NULL; i++) {
        err.msg[0] = '\0';

        if (slora_tokenizer_encode(t, bad[i], strlen(bad[i]), 1, 1, ids,
                                   MAX_IDS, &n, &err) != SLORA_ERROR
            || strstr(err.msg, "not valid UTF-8") == NULL
            || strstr(err.msg, "offset") == NULL)
        {
            diag("invalid UTF-8 case %d: \"%s\"", i, err.msg);
            all = 0;
        }
    }

    ok(all, "invalid UTF-8 (stray, cut, overlong, surrogate, > U+10FFFF) "
       "is SLORA_ERROR naming the offset");
    diag("e.g. %s", err.msg);

    ok(slora_tokenizer_encode(t, "Hello world", 11, 0, 0, ids, 1, &n, &err)
       == SLORA_BUSY && n == 2, "too small an id buffer is SLORA_BUSY with "
       "the count needed");
}


/* slora_tokenizer_encode_upto: the count is exact up to the limit, stops
 * one past it (whether the stop falls in a run of words or on a special
 * token between them), and the ids it wrote are the whole encoding's. */
static void
test_limit(const slora_tokenizer_t *t)
{
    char         *text, *p;
    int32_t       n, full, limit, *a;
    size_t        cap;
    slora_err_t   err;
    int           i, all;

    cap = 64 * 1024;
    text = malloc(cap);
    a = malloc(MAX_IDS * sizeof(int32_t));

    if (text == NULL || a == NULL) {
        BAIL_OUT("out of memory");
    }

    p = text;

    for (i = 0; i < 1000; i++) {
        p += sprintf(p, "%s%d lorem%x ", i % 7 == 0 ? "<|im_start|>" : "",
                     i * 7919 % 1000, i);
    }

    full = 0;
    i = slora_tokenizer_encode(t, text, p - text, 1, 1, a, MAX_IDS, &full,
                               &err);
    ok(i == SLORA_OK && full > 2000,
       "a 1000-word text with special tokens: %d tokens", full);

    all = 1;

    for (limit = 100; limit < full; limit += 137) {
        n = 0;

        if (slora_tokenizer_encode_upto(t, text, p - text, 1, 1, ids, 50,
                                        limit, &n, &err) != SLORA_BUSY
            || n != limit + 1 || strstr(err.msg, "more than") == NULL
            || memcmp(ids, a, 50 * sizeof(int32_t)) != 0)
        {
            diag("limit %d: n %d, %s", limit, n, err.msg);
            all = 0;
        }
    }

    ok(all, "past the limit: SLORA_BUSY, n is limit + 1 (\"more than\"), "
       "the first cap ids the whole encoding's");

    ok(slora_tokenizer_encode_upto(t, text, p - text, 1, 1, ids, 50, full,
                                   &n, &err) == SLORA_BUSY && n == full,
       "a limit the text reaches: the exact count");

    ok(slora_tokenizer_encode_upto(t, text, p - text, 1, 1, ids, full, 10,
                                   &n, &err) == SLORA_OK && n == full
       && memcmp(ids, a, full * sizeof(int32_t)) == 0,
       "a limit under cap counts to cap: all the ids");

    free(text);
    free(a);
}


/* Llama 3.1's system header and a first user turn, as its template
 * writes them for "You are terse." and "Hi!" */
/* DeepSeek-R1's marks (U+FF5C bars, U+2581 spaces) */
#define R1_USER       "<\xef\xbd\x9c" "User" "\xef\xbd\x9c>"
#define R1_ASSISTANT  "<\xef\xbd\x9c" "Assistant" "\xef\xbd\x9c>"
#define R1_EOS        "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence" \
                      "\xef\xbd\x9c>"
#define LLAMA31_HEAD                                                         \
    "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge "      \
    "Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are terse."      \
    "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!"


/* The text template tmpl should give, from want written with Llama 3.1's
 * date: llama3.2's has today's (local time, as strftime_now). */
static const char *
chat_dated(slora_chat_e tmpl, const char *want, char *out, size_t cap)
{
    char         date[32];
    time_t       now;
    struct tm    tm;
    const char  *at;

    at = strstr(want, "26 Jul 2024");

    if (tmpl != SLORA_CHAT_LLAMA32 || at == NULL) {
        return want;
    }

    now = time(NULL);
    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%d %b %Y", &tm);
    snprintf(out, cap, "%.*s%s%s", (int) (at - want), want, date,
             at + strlen("26 Jul 2024"));

    return out;
}


static void
test_chat(const slora_tokenizer_t *smol)
{
    static const slora_chat_msg_t  msgs[] = {
        { "system", 6, "You are terse.", 14, 0, 0, PLAIN_ALL },
        { "user", 4, "Hi!", 3, 0, 0, PLAIN_ALL },
        { "assistant", 9, "Hello.", 6, 0, 0, PLAIN_ALL },
        { "user", 4, "What is 2+2?", 12, 0, 0, PLAIN_ALL },
    };
    static const char             *want[SLORA_CHAT_N] = {
        /* chatml: SmolLM2's and Qwen2's template */
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nHi!<|im_end|>\n"
        "<|im_start|>assistant\nHello.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n",
        /* llama2: Llama-2-chat's template, less the first bos_token */
        "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi! [/INST]"
        " Hello. </s><s>[INST] What is 2+2? [/INST]",
        /* llama3: Llama-3-Instruct's template, less the first bos_token */
        "<|start_header_id|>system<|end_header_id|>\n\nYou are terse."
        "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!"
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello."
        "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
        "What is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        /* mistral: Mistral-7B-Instruct-v0.3's template, less bos_token */
        "[INST] Hi![/INST] Hello.</s>[INST] You are terse.\n\n"
        "What is 2+2?[/INST]",
        /* llama3.1: Llama-3.1-8B-Instruct's template (3.3's is the same),
         * as tools/chat-reference renders it */
        LLAMA31_HEAD
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello."
        "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
        "What is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        /* llama3.2: Llama-3.2-3B-Instruct's, today's date in place of
         * 3.1's (chat_dated) */
        LLAMA31_HEAD
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello."
        "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
        "What is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        /* mistral-v3-tekken: Mistral-Nemo-Instruct-2407's, as
         * tools/chat-reference renders it (bos <s>, eos </s>) */
        "[INST]Hi![/INST]Hello.</s>[INST]You are terse.\n\n"
        "What is 2+2?[/INST]",
        /* mistral-v7-tekken: Mistral-Small-3.2-24B-Instruct-2506's */
        "[SYSTEM_PROMPT]You are terse.[/SYSTEM_PROMPT][INST]Hi![/INST]"
        "Hello.</s>[INST]What is 2+2?[/INST]",
        /* deepseek-r1: DeepSeek-R1-Distill-Llama-8B's, as
         * tools/chat-reference renders it */
        "You are terse." R1_USER "Hi!" R1_ASSISTANT "Hello." R1_EOS R1_USER
        "What is 2+2?" R1_ASSISTANT "<think>\n",
    };
    char                           buf[1024], dated[1024];
    size_t                         n;
    int                            i, rc;
    const char                    *w;
    slora_chat_e                   e;
    slora_err_t                    err;
    slora_chat_msg_t               bad[2], ws[3];

    for (i = 0; i < SLORA_CHAT_N; i++) {
        w = chat_dated((slora_chat_e) i, want[i], dated, sizeof(dated));
        rc = slora_chat_render((slora_chat_e) i, msgs, 4,
                               SLORA_CHAT_GEN_PROMPT, buf, sizeof(buf), &n,
                               NULL, &err);
        ok(rc == SLORA_OK && n == strlen(w), "chat %s: renders",
           slora_chat_name((slora_chat_e) i));
        is_str(buf, w, "chat %s: system+user+assistant+user gives "
               "the official template's text",
               slora_chat_name((slora_chat_e) i));

        rc = slora_chat_render((slora_chat_e) i, msgs, 4,
                               SLORA_CHAT_GEN_PROMPT, buf, 10, &n, NULL, &err);
        ok(rc == SLORA_BUSY && n == strlen(w),
           "chat %s: small buffer is SLORA_BUSY with the size needed",
           slora_chat_name((slora_chat_e) i));

        is_int(slora_chat_from_name(slora_chat_name((slora_chat_e) i), &e),
               SLORA_OK, "chat: name %s is known",
               slora_chat_name((slora_chat_e) i));
        is_int(e, i, "chat: name maps back");
    }

    ok(slora_chat_from_name("vicuna", &e) == SLORA_DECLINED,
       "chat: unknown name declined");

    /* Qwen3's enable_thinking false: an empty think block after the
     * assistant's header */
    rc = slora_chat_render(SLORA_CHAT_CHATML, &msgs[1], 1,
                           SLORA_CHAT_GEN_PROMPT | SLORA_CHAT_NO_THINK, buf,
                           sizeof(buf), &n, NULL, &err);
    is_str(rc == SLORA_OK ? buf : err.msg, "<|im_start|>user\nHi!<|im_end|>\n"
           "<|im_start|>assistant\n<think>\n\n</think>\n\n",
           "chat chatml: no thinking, as Qwen3's template writes it");

    /*
     * The last message an assistant's, left open (continue_final_message):
     * each template's text up to where that content ends, as transformers
     * cuts the rendered text; without the generation prompt alone, the
     * messages closed and no assistant header (Llama 2's and Mistral's
     * templates have no such switch: their text is the same).
     */
    {
        static const char  *open[SLORA_CHAT_N] = {
            "<|im_start|>system\nYou are terse.<|im_end|>\n"
            "<|im_start|>user\nHi!<|im_end|>\n"
            "<|im_start|>assistant\nHello.",
            "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi! [/INST]"
            " Hello.",
            "<|start_header_id|>system<|end_header_id|>\n\nYou are terse."
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!"
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
            "Hello.",
            /* Mistral's template puts the system text into the user
             * turn that is the last message, so behind an assistant's
             * it has none to go in: dropped, as the official one does */
            "[INST] Hi![/INST] Hello.",
            LLAMA31_HEAD "<|eot_id|><|start_header_id|>assistant"
            "<|end_header_id|>\n\nHello.",
            LLAMA31_HEAD "<|eot_id|><|start_header_id|>assistant"
            "<|end_header_id|>\n\nHello.",
            "[INST]Hi![/INST]Hello.",
            "[SYSTEM_PROMPT]You are terse.[/SYSTEM_PROMPT][INST]Hi![/INST]"
            "Hello.",
            "You are terse." R1_USER "Hi!" R1_ASSISTANT "Hello.",
        };
        static const char  *closed[SLORA_CHAT_N] = {
            "<|im_start|>system\nYou are terse.<|im_end|>\n"
            "<|im_start|>user\nHi!<|im_end|>\n",
            "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi! [/INST]",
            "<|start_header_id|>system<|end_header_id|>\n\nYou are terse."
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!"
            "<|eot_id|>",
            "[INST] You are terse.\n\nHi![/INST]",
            LLAMA31_HEAD "<|eot_id|>",
            LLAMA31_HEAD "<|eot_id|>",
            "[INST]You are terse.\n\nHi![/INST]",
            "[SYSTEM_PROMPT]You are terse.[/SYSTEM_PROMPT][INST]Hi![/INST]",
            "You are terse." R1_USER "Hi!",
        };

        for (i = 0; i < SLORA_CHAT_N; i++) {
            rc = slora_chat_render((slora_chat_e) i, msgs, 3,
                                   SLORA_CHAT_CONTINUE, buf, sizeof(buf), &n,
                                   NULL, &err);
            is_str(rc == SLORA_OK ? buf : err.msg,
                   chat_dated((slora_chat_e) i, open[i], dated,
                              sizeof(dated)),
                   "chat %s: the assistant's last message continued",
                   slora_chat_name((slora_chat_e) i));
            rc = slora_chat_render((slora_chat_e) i, msgs, 2, 0, buf,
                                   sizeof(buf), &n, NULL, &err);
            is_str(rc == SLORA_OK ? buf : err.msg,
                   chat_dated((slora_chat_e) i, closed[i], dated,
                              sizeof(dated)), "chat %s: no "
                   "generation prompt", slora_chat_name((slora_chat_e) i));
        }

        ok(slora_chat_render(SLORA_CHAT_CHATML, msgs, 4, SLORA_CHAT_CONTINUE,
                             buf, sizeof(buf), &n, NULL, &err) == SLORA_ERROR
           && slora_chat_render(SLORA_CHAT_CHATML, msgs, 3,
                                SLORA_CHAT_CONTINUE|SLORA_CHAT_GEN_PROMPT,
                                buf, sizeof(buf), &n, NULL, &err)
              == SLORA_ERROR,
           "chat: continuing a user's message, or with the generation "
           "prompt, is SLORA_ERROR (%s)", err.msg);
    }

    bad[0] = msgs[1];
    bad[1] = (slora_chat_msg_t) { "tool", 4, "x", 1, 0, 0, PLAIN_ALL };
    ok(slora_chat_render(SLORA_CHAT_CHATML, bad, 2, SLORA_CHAT_GEN_PROMPT, buf,
                         sizeof(buf), &n, NULL, &err) == SLORA_ERROR
       && strstr(err.msg, "role \"tool\"") != NULL,
       "chat: role tool is SLORA_ERROR (%s)", err.msg);

    bad[1] = msgs[1];
    ok(slora_chat_render(SLORA_CHAT_LLAMA2, bad, 2, SLORA_CHAT_GEN_PROMPT, buf,
                         sizeof(buf), &n, NULL, &err) == SLORA_ERROR,
       "chat llama2: user, user is SLORA_ERROR (%s)", err.msg);

    /*
     * A system message after the first: ChatML's and Llama 3's official
     * templates render any role at any place; Mistral's raise, since
     * after the optional first system message roles must alternate user,
     * assistant; Llama 2's lets one stand in an assistant's place and
     * writes nothing for it (in a user's place it raises).
     */
    bad[0] = msgs[1];
    bad[1] = msgs[0];
    ok(slora_chat_render(SLORA_CHAT_CHATML, bad, 2, SLORA_CHAT_GEN_PROMPT, buf,
                         sizeof(buf), &n, NULL, &err) == SLORA_OK
       && n == strlen("<|im_start|>user\n") + msgs[1].content_len
               + strlen("<|im_end|>\n<|im_start|>system\n")
               + msgs[0].content_len
               + strlen("<|im_end|>\n<|im_start|>assistant\n")
       && memcmp(buf + n - strlen("<|im_start|>assistant\n"),
                 "<|im_start|>assistant\n",
                 strlen("<|im_start|>assistant\n")) == 0,
       "chat chatml: a later system message is rendered in place");
    rc = slora_chat_render(SLORA_CHAT_LLAMA2, bad, 2, SLORA_CHAT_GEN_PROMPT,
                           buf, sizeof(buf), &n, NULL, &err);
    is_str(rc == SLORA_OK ? buf : err.msg, "[INST] Hi! [/INST]",
           "chat llama2: a system message in an assistant's place is not "
           "written, as the official template does");
    ok(slora_chat_render(SLORA_CHAT_MISTRAL, bad, 2, SLORA_CHAT_GEN_PROMPT,
                         buf, sizeof(buf), &n, NULL, &err) == SLORA_ERROR,
       "chat mistral: a system message after the first is SLORA_ERROR");

    /* A system message alone: Llama 2 and Mistral have no user turn to
     * put it in, ChatML renders it. */
    ok(slora_chat_render(SLORA_CHAT_LLAMA2, msgs, 1, SLORA_CHAT_GEN_PROMPT,
                         buf, sizeof(buf), &n, NULL, &err) == SLORA_ERROR
       && strstr(err.msg, "no user message") != NULL,
       "chat llama2: a system message alone is SLORA_ERROR (%s)", err.msg);
    ok(slora_chat_render(SLORA_CHAT_MISTRAL, msgs, 1, SLORA_CHAT_GEN_PROMPT,
                         buf, sizeof(buf), &n, NULL, &err) == SLORA_ERROR
       && strstr(err.msg, "no user message") != NULL,
       "chat mistral: a system message alone is SLORA_ERROR (%s)", err.msg);
    is_int(slora_chat_render(SLORA_CHAT_CHATML, msgs, 1, SLORA_CHAT_GEN_PROMPT,
                             buf, sizeof(buf), &n, NULL, &err), SLORA_OK,
           "chat chatml: a system message alone renders");

    /* The text and its NUL must fit: exactly the text's size is too
     * small, one more holds both; NULL with 0 asks for the size. */
    memset(buf, 'x', sizeof(buf));
    rc = slora_chat_render(SLORA_CHAT_CHATML, msgs, 4, SLORA_CHAT_GEN_PROMPT,
                           buf, strlen(want[SLORA_CHAT_CHATML]), &n, NULL,
                           &err);
    ok(rc == SLORA_BUSY && n == strlen(want[SLORA_CHAT_CHATML]),
       "chat: a buffer of exactly the text's size is SLORA_BUSY");
    rc = slora_chat_render(SLORA_CHAT_CHATML, msgs, 4, SLORA_CHAT_GEN_PROMPT,
                           buf, strlen(want[SLORA_CHAT_CHATML]) + 1, &n,
                           NULL, &err);
    ok(rc == SLORA_OK && n == strlen(want[SLORA_CHAT_CHATML])
       && buf[n] == '\0' && memcmp(buf, want[SLORA_CHAT_CHATML], n) == 0,
       "chat: one byte more holds the text and its NUL");
    rc = slora_chat_render(SLORA_CHAT_CHATML, msgs, 4, SLORA_CHAT_GEN_PROMPT,
                           NULL, 0, &n, NULL, &err);
    ok(rc == SLORA_BUSY && n == strlen(want[SLORA_CHAT_CHATML]),
       "chat: NULL and 0 give the size");

    /* Jinja's trim is Python's strip(): \t to \r, space and \x1c to \x1f
     * go from both ends; \x08 and \x0e are not whitespace and stay. */
    ws[0] = (slora_chat_msg_t) { "user", 4, "\x1c\t Hi!\r\n\v\f\x1f", 11, 0, 0,
                                 PLAIN_ALL };
    rc = slora_chat_render(SLORA_CHAT_LLAMA3, ws, 1, SLORA_CHAT_GEN_PROMPT,
                           buf, sizeof(buf), &n, NULL, &err);
    is_str(rc == SLORA_OK ? buf : err.msg,
           "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n",
           "chat llama3: the content's ASCII whitespace trimmed at both ends");
    ws[0] = (slora_chat_msg_t) { "user", 4, "\x08Hi!\x0e", 5, 0, 0,
                                 PLAIN_ALL };
    rc = slora_chat_render(SLORA_CHAT_LLAMA3, ws, 1, SLORA_CHAT_GEN_PROMPT,
                           buf, sizeof(buf), &n, NULL, &err);
    is_str(rc == SLORA_OK ? buf : err.msg,
           "<|start_header_id|>user<|end_header_id|>\n\n\x08Hi!\x0e"
           "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
           "chat llama3: \\x08 and \\x0e are not trimmed");
    ws[0] = (slora_chat_msg_t) { "user", 4, "Hi!", 3, 0, 0, PLAIN_ALL };
    ws[1] = (slora_chat_msg_t) { "assistant", 9, " \tHello.\x1f\n", 10, 0, 0,
                                 PLAIN_ALL };
    ws[2] = (slora_chat_msg_t) { "user", 4, "x", 1, 0, 0, PLAIN_ALL };
    rc = slora_chat_render(SLORA_CHAT_MISTRAL, ws, 3, SLORA_CHAT_GEN_PROMPT,
                           buf, sizeof(buf), &n, NULL, &err);
    is_str(rc == SLORA_OK ? buf : err.msg,
           "[INST] Hi![/INST] Hello.</s>[INST] x[/INST]",
           "chat mistral: the assistant's text trimmed");
    ws[0] = (slora_chat_msg_t) { "system", 6, "S", 1, 0, 0, PLAIN_ALL };
    ws[1] = (slora_chat_msg_t) { "user", 4, "  Hi! \x1c", 7, 0, 0, PLAIN_ALL };
    rc = slora_chat_render(SLORA_CHAT_LLAMA2, ws, 2, SLORA_CHAT_GEN_PROMPT,
                           buf, sizeof(buf), &n, NULL, &err);
    is_str(rc == SLORA_OK ? buf : err.msg,
           "[INST] <<SYS>>\nS\n<</SYS>>\n\n  Hi! [/INST]",
           "chat llama2: after the system block only the user text's end is "
           "trimmed");
    ws[1] = (slora_chat_msg_t) { "user", 4, " \n\t", 3, 0, 0, PLAIN_ALL };
    rc = slora_chat_render(SLORA_CHAT_LLAMA2, ws, 2, SLORA_CHAT_GEN_PROMPT,
                           buf, sizeof(buf), &n, NULL, &err);
    is_str(rc == SLORA_OK ? buf : err.msg,
           "[INST] <<SYS>>\nS\n<</SYS>> [/INST]",
           "chat llama2: a blank first user text after the system block "
           "strips the block's blank lines too, as strip() does");

    is_str(slora_chat_name(slora_tokenizer_chat_template(smol)), "chatml",
           "smollm2: chat template detected as ChatML");
    is_str(slora_tokenizer_chat_system(smol) ? slora_tokenizer_chat_system(smol)
                                             : "(none)",
           "You are a helpful AI assistant named SmolLM, trained by Hugging "
           "Face", "smollm2: its template's default system message");

    ok(slora_chat_detect("{{ '<|start_header_id|>' }}", 26)
       == SLORA_CHAT_LLAMA3
       && slora_chat_detect("[INST] <<SYS>>", 14) == SLORA_CHAT_LLAMA2
       && slora_chat_detect("{{ '[INST] ' }}", 15) == SLORA_CHAT_MISTRAL,
       "chat: Jinja markers pick llama3, llama2, mistral");
}


/*
 * Llama 3.1's turns of function calling, as engine/slora_openai_tools.c
 * puts them into the messages (the tools' block before the first user
 * text, the call as the assistant's content, both verbatim; the result a
 * tool message), against tools/chat-reference's rendering of the same
 * conversation by the official template; and the three Llama 3.x
 * templates told apart by their own text.
 */
static void
test_chat_llama31(const char *dir)
{
    static const char  tools_block[] =
        "Given the following functions, please respond with a JSON for a "
        "function call with its proper arguments that best answers the "
        "given prompt.\n\nRespond in the format {\"name\": function name, "
        "\"parameters\": dictionary of argument name and its value}.Do not "
        "use variables.\n\n{\n    \"type\": \"function\",\n    "
        "\"function\": {\n        \"name\": \"w\"\n    }\n}\n\nWeather?";
    static const char  want[] =
        "<|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython"
        "\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024"
        "\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n";
    static const char  tail[] =
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        "{\"name\": \"w\", \"parameters\": {}}<|eot_id|>"
        "<|start_header_id|>ipython<|end_header_id|>\n\n"
        "\" \\\"sunny\\\"\\n\\\\ \xc3\xa9\\u0001\"<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n";
    static const struct {
        const char    *file;
        slora_chat_e   tmpl;
    } files[] = {
        { "meta-llama-Llama-3.1-8B-Instruct.jinja", SLORA_CHAT_LLAMA31 },
        { "meta-llama-Llama-3.2-3B-Instruct.jinja", SLORA_CHAT_LLAMA32 },
        { "meta-llama-Llama-3.3-70B-Instruct.jinja", SLORA_CHAT_LLAMA31 },
        { "mistralai-Mistral-Nemo-Instruct-2407.jinja",
          SLORA_CHAT_MISTRAL_TEKKEN },
        { "Mistral-Small-3.2-24B-Instruct-2506.jinja", SLORA_CHAT_MISTRAL_V7 },
        { "unsloth-mistral-Devstral-Small-2507.jinja", SLORA_CHAT_MISTRAL_V7 },
        { "mistralai-Ministral-3-14B-Reasoning-2512.jinja",
          SLORA_CHAT_MISTRAL_V7 },
        { "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja",
          SLORA_CHAT_DEEPSEEK_R1 },
        { "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
          SLORA_CHAT_DEEPSEEK_R1 },
    };
    char               buf[2048], expect[1024], *text;
    size_t             n, len;
    unsigned           i, rc;
    slora_err_t        err;
    slora_chat_msg_t   msgs[3];

    msgs[0] = (slora_chat_msg_t) { "user", 4, tools_block,
                                   sizeof(tools_block) - 1, 1, 0, PLAIN_ALL };
    msgs[1] = (slora_chat_msg_t) { "assistant", 9,
                                   "{\"name\": \"w\", \"parameters\": {}}",
                                   31, 1, 0, PLAIN_ALL };
    msgs[2] = (slora_chat_msg_t) { "tool", 4, " \"sunny\"\n\\ \xc3\xa9\x01",
                                   14, 0, 0, PLAIN_ALL };

    snprintf(expect, sizeof(expect), "%s%s%s", want, tools_block, tail);
    rc = slora_chat_render(SLORA_CHAT_LLAMA31, msgs, 3,
                           SLORA_CHAT_GEN_PROMPT|SLORA_CHAT_TOOLS, buf,
                           sizeof(buf), &n, NULL, &err);
    is_str(rc == SLORA_OK ? buf : err.msg, expect, "chat llama3.1: tools, a "
           "call and its result: the official template's text (the "
           "result an ipython turn, a JSON string)");

    /* the same turns, the first not marked verbatim: trimmed, as any
     * user text (here the same: the block has no blanks at its ends) */
    msgs[0] = (slora_chat_msg_t) { "user", 4, "  Hi \n", 6, 0, 0, PLAIN_ALL };
    rc = slora_chat_render(SLORA_CHAT_LLAMA31, msgs, 1, 0, buf, sizeof(buf),
                           &n, NULL, &err);
    ok(rc == SLORA_OK && strstr(buf, "\n\nHi<|eot_id|>") != NULL
       && strstr(buf, "Environment") == NULL,
       "chat llama3.1: a user text trimmed; no tools, no Environment line");
    msgs[0].verbatim = 1;
    rc = slora_chat_render(SLORA_CHAT_LLAMA31, msgs, 1, 0, buf, sizeof(buf),
                           &n, NULL, &err);
    ok(rc == SLORA_OK && strstr(buf, "\n\n  Hi \n<|eot_id|>") != NULL,
       "chat llama3.1: a verbatim text kept as it is");

    msgs[0] = (slora_chat_msg_t) { "user", 4, "Hi", 2, 0, 0, PLAIN_ALL };
    ok(slora_chat_render(SLORA_CHAT_LLAMA3, &msgs[1], 2, 0, buf, sizeof(buf),
                         &n, NULL, &err) == SLORA_ERROR
       && strstr(err.msg, "role \"tool\"") != NULL,
       "chat llama3: a tool message is SLORA_ERROR (%s)", err.msg);

    /* the default system message a ChatML template writes itself */
    {
        static const struct {
            const char  *file;
            const char  *system;
        } defaults[] = {
            { "Qwen-Qwen2.5-7B-Instruct.jinja", "You are Qwen, created by "
              "Alibaba Cloud. You are a helpful assistant." },
            { "Qwen-Qwen3-0.6B.jinja", NULL },
        };
        static const char  own[] = "{{ '<|im_start|>system\\n' + "
                                   "messages[0]['content'] + '<|im_end|>' }}";
        char              *sys;

        for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
            text = read_template(dir, defaults[i].file, &len);

            sys = len > 0 ? slora_chat_default_system(slora_chat_detect(text,
                                                                        len),
                                                      text, len)
                          : NULL;
            ok(len > 0 && (defaults[i].system == NULL
                           ? sys == NULL
                           : sys != NULL
                             && strcmp(sys, defaults[i].system) == 0),
               "chat: %s's default system message: %s", defaults[i].file,
               sys ? sys : "none");
            free(sys);
            free(text);
        }

        ok(slora_chat_default_system(SLORA_CHAT_CHATML, own, sizeof(own) - 1)
           == NULL, "chat: a system turn of the messages' text is no default");

        /* exactly the template's bytes, no NUL after them (ASan sees a
         * read past the end) */
        for (i = 0; i < 2; i++) {
            static const char  *cut[] = {
                "{{ x }}<|im_start|>system",
                "<|im_start|>system<|im_start|>system\nBe kind.<|im_end|>"
            };

            len = strlen(cut[i]);
            text = malloc(len);
            memcpy(text, cut[i], len);
            sys = slora_chat_default_system(SLORA_CHAT_CHATML, text, len);
            ok(i == 0 ? sys == NULL : sys && strcmp(sys, "Be kind.") == 0,
               "chat: %s: %s", i == 0 ? "a template that ends with the "
               "system head has no default" : "a system head right after "
               "another one is found", sys ? sys : "none");
            free(sys);
            free(text);
        }
    }

    /* Mistral v7's default_system_message: literals joined by +, escapes
     * read as Jinja reads them, today's date where the template puts it */
    {
        char        *sys, *dated, today[16];
        time_t       now;
        struct tm    tm;

        static const char  head[] = "You are Mistral Small 3, a Large "
            "Language Model (LLM) created by Mistral AI, a French startup "
            "headquartered in Paris.\nYour knowledge base was last updated "
            "on 2023-10-01. The current date is \x01.\n\nWhen you're not";
        static const char  quoted[] = "(e.g. \"What are some good "
            "restaurants around me?\" => \"Where are you?\"";
        static const char  devstral[] = "You are Devstral, a helpful "
            "agentic model trained by Mistral AI and using the OpenHands "
            "scaffold. You can interact with a computer to solve tasks.\n\n"
            "<ROLE>\n";
        static const char  joined[] = "{%- set default_system_message = "
            "'a\\'b' + \"\\n\\\"c\\d\" -%}";
        static const char  other[] = "{%- set default_system_message = "
            "name + 'x' %}";

        text = read_template(dir, "Mistral-Small-3.2-24B-Instruct-2506.jinja",
                             &len);

        sys = len > 0 ? slora_chat_default_system(SLORA_CHAT_MISTRAL_V7,
                                                  text, len)
                      : NULL;
        ok(sys != NULL && strncmp(sys, head, sizeof(head) - 1) == 0
           && strstr(sys, quoted) != NULL
           && strlen(sys) > 1500
           && strcmp(sys + strlen(sys) - 15, "at the moment.") != 0
           && strcmp(sys + strlen(sys) - 14, "at the moment.") == 0,
           "chat: Mistral Small 3.2's default system message, its date "
           "marked, its quotes read (%zu bytes)", sys ? strlen(sys) : 0);

        now = time(NULL);
        localtime_r(&now, &tm);
        strftime(today, sizeof(today), "%Y-%m-%d", &tm);
        dated = slora_chat_system_text(sys);
        ok(dated != NULL && strstr(dated, today) != NULL
           && strchr(dated, SLORA_CHAT_TODAY) == NULL
           && strlen(dated) == strlen(sys) + strlen(today) - 1,
           "chat: the default as a chat sends it: today's date, %s", today);
        ok(slora_chat_system_text("no date") == NULL,
           "chat: a default without a date is sent as it is");
        free(dated);
        free(sys);
        free(text);

        text = read_template(dir, "unsloth-mistral-Devstral-Small-2507.jinja",
                             &len);
        sys = len > 0 ? slora_chat_default_system(SLORA_CHAT_MISTRAL_V7,
                                                  text, len)
                      : NULL;
        ok(sys != NULL && strncmp(sys, devstral, sizeof(devstral) - 1) == 0
           && strchr(sys, SLORA_CHAT_TODAY) == NULL,
           "chat: Devstral's default system message, single-quoted, no "
           "date");
        free(sys);
        free(text);

        sys = slora_chat_default_system(SLORA_CHAT_MISTRAL_V7, joined,
                                        sizeof(joined) - 1);
        is_str(sys, "a'b\n\"c\\d", "chat: literals joined, \\' \\n "
               "\\\" read, an unknown escape kept");
        free(sys);
        ok(slora_chat_default_system(SLORA_CHAT_MISTRAL_V7, other,
                                     sizeof(other) - 1) == NULL,
           "chat: a default built of other names is none");
    }

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        text = read_template(dir, files[i].file, &len);

        ok(len > 0 && slora_chat_detect(text, len) == files[i].tmpl,
           "chat: %s is %s", files[i].file,
           slora_chat_name(files[i].tmpl));
        free(text);
    }
}


/* dir/templates/file (llama.cpp's models folder), its first 64 KiB; a
 * malloc()ed text (NULL and *len 0 when unread). */
static char *
read_template(const char *dir, const char *file, size_t *len)
{
    char   path[512], *text;
    FILE  *f;

    snprintf(path, sizeof(path), "%s/templates/%s", dir, file);
    f = fopen(path, "rb");
    text = f != NULL ? malloc(65536) : NULL;
    *len = text != NULL ? fread(text, 1, 65536, f) : 0;

    if (f != NULL) {
        fclose(f);
    }

    return text;
}


static void
test_stops(const slora_tokenizer_t *t)
{
    int32_t  stop[16], n, i, im_end, found;

    im_end = slora_tokenizer_find(t, "<|im_end|>", 10);
    n = slora_tokenizer_stop_ids(t, stop, 16);
    found = 0;

    for (i = 0; i < n; i++) {
        found |= stop[i] == im_end;
    }

    ok(n >= 1 && found, "smollm2: <|im_end|> (%d) is a stop id (%d stop "
       "ids)", im_end, n);
    ok(slora_tokenizer_eos(t) >= 0, "smollm2: has eos %d",
       slora_tokenizer_eos(t));
}


/* Writes SmolLM2's vocabulary as an HF folder (tokenizer.json as SmolLM2
 * ships it: Digits then ByteLevel; merges as "a b" strings or as pairs),
 * loads it, and compares ids with the GGUF tokenizer on the goldens. */
static void
test_json(const slora_tokenizer_t *smol, const char *gguf_path, int pairs)
{
    char               *g, *line, text[4096], dir[256], path[512];
    size_t              gl, tl;
    int32_t             a[4096], b[4096], na, nb, n_vocab;
    int                 n_cases, n_bad, special;
    FILE               *f;
    cJSON              *root, *added;
    slora_err_t         err;
    slora_tokenizer_t  *t;

    root = hf_vocab_from_gguf(gguf_path, pairs, &added, &n_vocab);
    snprintf(dir, sizeof(dir), "t/data/gen/smollm2-hf-%d", pairs);
    hf_vocab_write(root, dir, path, sizeof(path));

    snprintf(path, sizeof(path), "%s/tokenizer_config.json", dir);
    f = fopen(path, "w");
    fputs("{\"bos_token\": \"<|im_start|>\", \"eos_token\": "
          "{\"content\": \"<|im_end|>\"}, \"chat_template\": "
          "\"{% for m in messages %}{{'<|im_start|>' + m['role']}}"
          "{% endfor %}\"}", f);
    fclose(f);

    t = slora_tokenizer_load(dir, &err);
    if (!ok(t != NULL, "tokenizer.json (%s merges): loads",
            pairs ? "pair" : "string"))
    {
        diag("%s", err.msg);
        return;
    }

    is_int(slora_tokenizer_n_vocab(t), slora_tokenizer_n_vocab(smol),
           "tokenizer.json: same vocabulary size");
    ok(slora_tokenizer_eos(t) == slora_tokenizer_find(t, "<|im_end|>", 10)
       && slora_tokenizer_bos(t) == 1 && !slora_tokenizer_add_bos(t)
       && slora_tokenizer_chat_template(t) == SLORA_CHAT_CHATML,
       "tokenizer_config.json: bos, eos, no add_bos, ChatML template");

    g = tap_read_file(GOLDEN, &gl);
    n_cases = 0;
    n_bad = 0;

    for (line = g; line != NULL && *line != '\0'; ) {
        if (line[0] == '>') {
            special = line[2] == '1';
            tl = unescape(line + 4, text);
            slora_tokenizer_encode(t, text, tl, 1, special, a, 4096, &na,
                                   &err);
            slora_tokenizer_encode(smol, text, tl, 1, special, b, 4096, &nb,
                                   &err);
            n_cases++;

            if (na != nb || memcmp(a, b, (size_t) na * sizeof(int32_t))) {
                if (n_bad++ < 3) {
                    diag("tokenizer.json: \"%.*s\" differs", (int) tl,
                         text);
                }
            }
        }

        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }

    ok(n_bad == 0 && n_cases > 40, "tokenizer.json: same ids as the GGUF "
       "on %d golden strings (%d differ)", n_cases, n_bad);

    free(g);
    slora_tokenizer_free(t);
}


static void
test_speed(const slora_tokenizer_t *t)
{
    static const char  *words[] = {
        "the", "of", "and", "a", "to", "in", "is", "you", "that", "it",
        "he", "was", "for", "on", "are", "as", "with", "his", "they", "I",
        "at", "be", "this", "have", "from", "or", "one", "had", "by",
        "word", "but", "not", "what", "all", "were", "we", "when", "your",
        "can", "said", "there", "use", "an", "each", "which", "she", "do",
        "how", "their", "if", "will", "up", "other", "about", "out",
        "many", "then", "them", "these", "so", "some", "her", "would",
        "make", "like", "him", "into", "time", "has", "look", "two",
        "more", "write", "go", "see", "number", "no", "way", "could",
        "people", "my", "than", "first", "water", "been", "call", "who",
        "oil", "its", "now", "find", "long", "down", "day", "did", "get",
        "come", "made", "may", "part", "tokenizer", "understanding",
        "nevertheless", "characteristically", "Mississippi", "don't",
        "1984", "3.5%", "e-mail", NULL
    };
    char                *text;
    size_t               n, k, nw;
    uint64_t             x;
    int32_t              n_ids;
    int64_t              t0, t1;
    double               ms;
    slora_err_t          err;

    for (nw = 0; words[nw] != NULL; nw++) {
        /* void */
    }

    text = malloc(110000);
    n = 0;
    x = 88172645463325252ULL;

    while (n < 100000) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        k = (size_t) (x % nw);
        n += (size_t) sprintf(text + n, "%s%s", words[k],
                              x % 17 == 0 ? ".\n" : x % 7 == 0 ? ", " : " ");
    }

    t0 = slora_now_ns();
    slora_tokenizer_encode(t, text, n, 0, 1, ids, MAX_IDS, &n_ids, &err);
    t1 = slora_now_ns();
    ms = (double) (t1 - t0) / 1e6;

    diag("speed: %zu bytes of English -> %d tokens in %.2f ms (%.1f MB/s)",
         n, (int) n_ids, ms, (double) n / 1e3 / ms);
    ok(n_ids > 10000 && ms < 1000.0, "speed: 100 KB encodes in %.1f ms", ms);

    free(text);
}


int
main(void)
{
    const char         *dir, *smol_path;
    slora_tokenizer_t  *smol;

    static const char  *bpe[] = {
        "llama-bpe", "gpt-2", "qwen2", "starcoder", "falcon",
        "deepseek-coder", "deepseek-llm", "command-r", "refact", "mpt",
        "qwen35", NULL
    };
    static const char  *spm[] = { "llama-spm", "phi-3", NULL };
    int                 i;

    dir = ref_vocab_dir();

    for (i = 0; spm[i] != NULL; i++) {
        test_vocab(dir, spm[i], 1);
    }

    for (i = 0; bpe[i] != NULL; i++) {
        test_vocab(dir, bpe[i], 0);
    }

    smol = ref_smollm2(&smol_path);

    test_smollm2(smol);
    test_detok_bytes(smol);
    test_missing_bytes(smol);
    test_detok_edges(dir);
    test_invalid_utf8(smol);
    test_limit(smol);
    test_stops(smol);
    test_chat(smol);
    test_chat_llama31(dir);
    test_speed(smol);
    test_json(smol, smol_path, 0);
    test_json(smol, smol_path, 1);

    slora_tokenizer_free(smol);

    return done_testing();
}
