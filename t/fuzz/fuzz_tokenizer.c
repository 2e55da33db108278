/*
 * fuzz_tokenizer.c: libFuzzer harness for the tokenizer. Arbitrary bytes
 * are encoded with SmolLM2's byte-level BPE vocabulary and llama.cpp's
 * llama-spm SentencePiece vocabulary, with and without special-token
 * parsing. Invalid UTF-8 must be refused with SLORA_ERROR; valid text must
 * decode back, through the streaming detokenizer one token at a time, to
 * exactly the input (SentencePiece: after the one space it prepends), and
 * every chunk the detokenizer emits must be whole UTF-8. (SentencePiece
 * with special parsing is not compared: it prepends a space after each
 * special token, as llama.cpp does.) A chat's encoding
 * (slora_tokenizer_encode_chat) with the whole text one plain span must
 * give the ids of special parsing off, with none those of it on, and
 * with spans cut from the input by its first byte must not fail.
 *
 * The one idea: both tokenizers are lossless on valid UTF-8 made of bytes
 * their vocabularies can spell (byte fallback), so there the round trip is
 * an exact oracle.
 *
 * Paths: SLORA_SMOLLM2 (default models/SmolLM2-135M-Instruct.Q4_1.gguf)
 * and SLORA_VOCAB_DIR (default llama.cpp's models/ under ref/), relative
 * to the repository root.
 */

#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_tokenizer.h"


#define FUZZ_MAX_IDS   65536


static slora_tokenizer_t  *fuzz_tok[2];
static int                 fuzz_spm[2] = { 0, 1 };
static uint8_t             fuzz_has_byte[2][256];


static slora_tokenizer_t *fuzz_load(const char *path);
static void fuzz_bytes(int k);
static void fuzz_chat(int k, const uint8_t *data, size_t size);
static int fuzz_utf8_valid(const uint8_t *s, size_t n);


static slora_tokenizer_t *
fuzz_load(const char *path)
{
    slora_err_t         err;
    slora_tokenizer_t  *t;

    t = slora_tokenizer_load(path, &err);
    if (t == NULL) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err.msg);
        abort();
    }

    return t;
}


/* Which bytes a vocabulary can spell; SmolLM2 lacks a few control bytes
 * and 0xf1, which encode drops as llama.cpp does. */
static void
fuzz_bytes(int k)
{
    char     buf[64];
    size_t   n;
    int32_t  id;

    for (id = 0; id < slora_tokenizer_n_vocab(fuzz_tok[k]); id++) {
        if (!slora_tokenizer_is_special(fuzz_tok[k], id)
            && slora_tokenizer_token_bytes(fuzz_tok[k], id, buf, sizeof(buf),
                                           &n) == SLORA_OK
            && n == 1)
        {
            fuzz_has_byte[k][(uint8_t) buf[0]] = 1;
        }
    }
}


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char         path[1024];
    const char  *smol, *dir;

    smol = getenv("SLORA_SMOLLM2");
    dir = getenv("SLORA_VOCAB_DIR");

    snprintf(path, sizeof(path), "%s/ggml-vocab-llama-spm.gguf",
             dir ? dir : "ref/llama_cpp_python-0.3.36/vendor/llama.cpp/"
                         "models");

    fuzz_tok[0] = fuzz_load(smol ? smol
                                 : "models/SmolLM2-135M-Instruct.Q4_1.gguf");
    fuzz_tok[1] = fuzz_load(path);

    fuzz_bytes(0);
    fuzz_bytes(1);

    return 0;
}


static int
fuzz_utf8_valid(const uint8_t *s, size_t n)
{
    size_t   i, k, need;
    uint8_t  c, lo, hi;

    for (i = 0; i < n; i += need) {
        c = s[i];

        if (c < 0x80) {
            need = 1;
            continue;
        }

        if (c < 0xc2 || c > 0xf4) {
            return 0;
        }

        need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

        if (i + need > n) {
            return 0;
        }

        for (k = 1; k < need; k++) {
            lo = 0x80;
            hi = 0xbf;

            if (k == 1) {
                lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
                hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
            }

            if (s[i + k] < lo || s[i + k] > hi) {
                return 0;
            }
        }
    }

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                 k, special, rc, valid;
    char               *dec, chunk[4096];
    size_t              dl, cl, off;
    int32_t             n, i, *ids;
    slora_err_t         err;
    slora_detok_t       d;
    slora_tokenizer_t  *t;

    if (size > 8192) {
        return 0;
    }

    valid = fuzz_utf8_valid(data, size);
    ids = malloc(FUZZ_MAX_IDS * sizeof(int32_t));
    dec = malloc(size * 2 + 8);

    for (k = 0; k < 2; k++) {
        t = fuzz_tok[k];

        for (special = 0; special < 2; special++) {
            rc = slora_tokenizer_encode(t, (const char *) data, size, 0,
                                        special, ids, FUZZ_MAX_IDS, &n,
                                        &err);

            if (!valid) {
                if (rc != SLORA_ERROR) {
                    fprintf(stderr, "fuzz_tokenizer: invalid UTF-8 accepted "
                            "(tokenizer %d)\n", k);
                    abort();
                }

                continue;
            }

            if (rc != SLORA_OK) {
                fprintf(stderr, "fuzz_tokenizer: encode: %s\n", err.msg);
                abort();
            }

            slora_detok_init(&d);
            dl = 0;

            for (i = 0; i <= n; i++) {
                if (i < n) {
                    rc = slora_detok_push(&d, t, ids[i], 0, chunk,
                                          sizeof(chunk), &cl);
                } else {
                    rc = slora_detok_flush(&d, chunk, sizeof(chunk), &cl);
                }

                if (rc != SLORA_OK || !fuzz_utf8_valid((uint8_t *) chunk, cl)
                    || dl + cl > size * 2 + 8)
                {
                    fprintf(stderr, "fuzz_tokenizer: decode of id %d: rc %d, "
                            "%zu bytes after %zu (tokenizer %d)\n",
                            i < n ? ids[i] : -1, rc, cl, dl, k);
                    abort();
                }

                memcpy(dec + dl, chunk, cl);
                dl += cl;
            }

            if (fuzz_spm[k] && special) {
                continue;       /* a space follows each parsed <s> */
            }

            for (off = 0; off < size && fuzz_has_byte[k][data[off]]; off++) {
                /* void */
            }

            if (off < size) {
                continue;       /* a byte the vocabulary cannot spell */
            }

            if (fuzz_spm[k] && memmem(data, size, "\xe2\x96\x81", 3) != NULL) {
                continue;       /* U+2581 is SentencePiece's space */
            }

            off = (fuzz_spm[k] && size > 0) ? 1 : 0;

            if (dl != size + off || memcmp(dec + off, data, size) != 0
                || (off && dec[0] != ' '))
            {
                fprintf(stderr, "fuzz_tokenizer: round trip differs "
                        "(tokenizer %d, special %d)\n", k, special);
                abort();
            }
        }

        if (valid) {
            fuzz_chat(k, data, size);
        }
    }

    free(dec);
    free(ids);

    return 0;
}


/* The text as a chat with plain spans: all of it one span is parsing
 * off, no span parsing on; spans of 2^(data[0] % 8) bytes every other
 * one (their edges inside characters too) encode without failing. */
static void
fuzz_chat(int k, const uint8_t *data, size_t size)
{
    int            special, rc;
    size_t         i, step, n_plain;
    int32_t        n, nc, *ids, *chat;
    slora_err_t    err;
    slora_span_t  *plain;

    ids = malloc(FUZZ_MAX_IDS * sizeof(int32_t));
    chat = malloc(FUZZ_MAX_IDS * sizeof(int32_t));
    plain = malloc((size / 2 + 2) * sizeof(slora_span_t));

    if (ids == NULL || chat == NULL || plain == NULL) {
        abort();
    }

    plain[0].off = 0;
    plain[0].len = size;

    for (special = 0; special < 2; special++) {
        rc = slora_tokenizer_encode(fuzz_tok[k], (const char *) data, size,
                                    1, special, ids, FUZZ_MAX_IDS, &n, &err);
        rc |= slora_tokenizer_encode_chat(fuzz_tok[k], (const char *) data,
                                          size, SLORA_TOK_BOS_TOKENIZER,
                                          plain, !special, chat,
                                          FUZZ_MAX_IDS, FUZZ_MAX_IDS, &nc,
                                          &err);

        if (rc != SLORA_OK || n != nc
            || memcmp(ids, chat, (size_t) n * sizeof(int32_t)) != 0)
        {
            fprintf(stderr, "fuzz_tokenizer: a chat's encoding with %s "
                    "differs from special %d (tokenizer %d)\n",
                    special ? "no span" : "one span", special, k);
            abort();
        }
    }

    step = size > 0 ? (size_t) 1 << (data[0] % 8) : 1;
    n_plain = 0;

    for (i = 0; i < size; i += 2 * step) {
        plain[n_plain].off = i;
        plain[n_plain].len = i + step <= size ? step : size - i;
        n_plain++;
    }

    if (slora_tokenizer_encode_chat(fuzz_tok[k], (const char *) data, size,
                                    SLORA_TOK_BOS_TOKENIZER, plain, n_plain,
                                    chat, FUZZ_MAX_IDS,
                                    FUZZ_MAX_IDS, &nc, &err)
        != SLORA_OK)
    {
        fprintf(stderr, "fuzz_tokenizer: a chat's encoding with %zu spans: "
                "%s (tokenizer %d)\n", n_plain, err.msg, k);
        abort();
    }

    free(plain);
    free(chat);
    free(ids);
}
