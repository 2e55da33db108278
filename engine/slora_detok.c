/*
 * slora_detok.c: the streaming detokenizer. Token ids come in one at a
 * time, as the sampler picks them, and leave as text that is always valid
 * UTF-8, so each piece can be sent to the client at once.
 *
 * The one idea: a token's bytes may end inside a character, so an
 * incomplete but so far valid tail waits in the slora_detok_t until the
 * next token completes it; each maximal invalid subpart becomes one
 * U+FFFD, and flush turns whatever is left into U+FFFD too.
 */

#include <stdlib.h>
#include <string.h>

#include "slora_tokenizer_int.h"


static size_t slora_utf8_prefix(const uint8_t *s, size_t n, int *full);
static size_t slora_detok_emit(uint8_t *in, size_t n, int final,
    char *out, size_t *used);


void
slora_detok_init(slora_detok_t *d)
{
    memset(d, 0, sizeof(slora_detok_t));
}


void
slora_detok_init_text(slora_detok_t *d, const slora_tokenizer_t *t)
{
    memset(d, 0, sizeof(slora_detok_t));
    d->lead = t->kind == SLORA_TOK_SPM && t->add_space_prefix;
}


/* How many leading bytes of s[0..n) agree with some valid UTF-8 sequence
 * (0 when s[0] cannot start one); *full is set when they form one. */
static size_t
slora_utf8_prefix(const uint8_t *s, size_t n, int *full)
{
    size_t   need, i;
    uint8_t  c, lo, hi;

    *full = 0;
    c = s[0];

    if (c < 0x80) {
        *full = 1;
        return 1;
    }

    if (c < 0xc2 || c > 0xf4) {
        return 0;
    }

    need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

    for (i = 1; i < need && i < n; i++) {
        lo = 0x80;
        hi = 0xbf;

        if (i == 1) {
            lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
        }

        if (s[i] < lo || s[i] > hi) {
            return i;
        }
    }

    *full = (i == need);

    return i;
}


/* Writes the complete characters of in[0..n) to out + *used, one U+FFFD
 * for each maximal invalid subpart; returns how many input bytes were
 * consumed. Unless final, an incomplete but so far valid tail is left. */
static size_t
slora_detok_emit(uint8_t *in, size_t n, int final, char *out, size_t *used)
{
    int      full;
    size_t   i, k, p;

    i = 0;
    k = *used;

    while (i < n) {
        p = slora_utf8_prefix(in + i, n - i, &full);

        if (full) {
            memcpy(out + k, in + i, p);
            k += p;
            i += p;
            continue;
        }

        if (p > 0 && i + p == n && !final) {
            break;                          /* wait for the rest */
        }

        memcpy(out + k, "\xef\xbf\xbd", 3);
        k += 3;
        i += p ? p : 1;
    }

    *used = k;

    return i;
}


int
slora_detok_push(slora_detok_t *d, const slora_tokenizer_t *t, int32_t id,
    int skip_special, char *out, size_t cap, size_t *n)
{
    size_t                    len, used, k, worst, skip;
    uint8_t                  *in, stack[256];
    const slora_tok_entry_t  *e;

    *n = 0;

    if (id < 0 || id >= t->n_vocab) {
        return SLORA_ERROR;
    }

    e = &t->entries[id];

    if (skip_special
        && (e->type == SLORA_TOK_CONTROL || e->type == SLORA_TOK_UNKNOWN))
    {
        d->n_tokens++;
        return SLORA_OK;
    }

    /* the space the encoder put before the text: a normal token's
     * U+2581 (lead is cleared once the push is taken, as BUSY takes
     * nothing and the caller pushes the token again) */
    skip = d->lead && e->piece_len > 0 && e->type == SLORA_TOK_NORMAL
           && t->pieces[e->piece_off] == ' ';

    len = d->n_pending + e->piece_len - skip;
    worst = (e->piece_len + 8) * 3;

    if (worst > cap) {
        return SLORA_BUSY;
    }

    in = len <= sizeof(stack) ? stack : malloc(len);
    if (in == NULL) {
        return SLORA_ERROR;
    }

    memcpy(in, d->pending, d->n_pending);
    memcpy(in + d->n_pending, t->pieces + e->piece_off + skip,
           e->piece_len - skip);

    used = 0;
    k = slora_detok_emit(in, len, 0, out, &used);

    slora_assert(len - k < sizeof(d->pending));
    d->n_pending = (uint32_t) (len - k);
    memcpy(d->pending, in + k, d->n_pending);

    if (in != stack) {
        free(in);
    }

    if (e->piece_len > 0) {
        d->lead = 0;
    }

    d->n_tokens++;
    *n = used;

    return SLORA_OK;
}


int
slora_detok_flush(slora_detok_t *d, char *out, size_t cap, size_t *n)
{
    size_t  used;

    *n = 0;

    if (d->n_pending * 3 > cap) {
        return SLORA_BUSY;
    }

    used = 0;
    (void) slora_detok_emit(d->pending, d->n_pending, 1, out, &used);
    d->n_pending = 0;
    *n = used;

    return SLORA_OK;
}
