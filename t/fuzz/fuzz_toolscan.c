/*
 * fuzz_toolscan.c: libFuzzer harness for reading tool calls out of an
 * answer (engine/slora_tool_scan.h), which a worker runs on every
 * detokenized piece of an answer to a request with tools.
 *
 * The input's first byte picks the form (modulo 3: a bare call, calls
 * in <tool_call> tags, a JSON array of calls) and the arguments' key
 * (the next bit of its third: "arguments" or Llama 3.1's "parameters")
 * and the rest is the answer's text. Oracles beyond
 * the sanitizers: fed whole, a byte at a time, and in pieces whose sizes
 * the text's own bytes give, the scanner reports the same calls (names,
 * each call's arguments as the same bytes), stops at the same byte when
 * the text is not calls, and ends in the same state; every name is 1 to
 * 64 bytes a function's name may hold; an argument piece lies inside
 * the piece fed.
 */

#include <stdlib.h>
#include <string.h>

#include "slora_tool_scan.h"


#define FUZZ_TOOL_CALLS  8


typedef struct {
    char        names[FUZZ_TOOL_CALLS][SLORA_TOOL_NAME_MAX + 1];
    size_t      args_from[FUZZ_TOOL_CALLS];
    size_t      args_len[FUZZ_TOOL_CALLS];
    size_t      args_contiguous;
    uint32_t    n_calls;
    long        not_at;
    int         whole;
} fuzz_tool_out_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* Feeds text[0..n) in pieces of step bytes (0: sizes from the text). */
static void
fuzz_tool_feed(const char *text, size_t n, slora_tool_shape_e shape,
    int params, size_t step, fuzz_tool_out_t *o)
{
    size_t             at, piece, took, off, len, k;
    slora_tool_ev_e    ev;
    slora_tool_scan_t  t;

    memset(o, 0, sizeof(fuzz_tool_out_t));
    o->not_at = -1;
    o->args_contiguous = 1;
    slora_tool_scan_init(&t, shape, params);

    for (at = 0; at < n && o->not_at < 0; /* void */) {
        piece = step ? step : 1 + (unsigned char) text[at] % 9;
        piece = piece > n - at ? n - at : piece;

        while (piece > 0) {
            took = slora_tool_scan(&t, text + at, piece, &ev, &off, &len);

            if (took > piece || (ev == SLORA_TOOL_ARGS
                                 && (off + len > took || len == 0)))
            {
                abort();
            }

            if (ev == SLORA_TOOL_NAME) {
                if (t.name_len == 0 || t.name_len > SLORA_TOOL_NAME_MAX
                    || strlen(t.name) != t.name_len)
                {
                    abort();
                }

                if (o->n_calls < FUZZ_TOOL_CALLS) {
                    memcpy(o->names[o->n_calls], t.name, t.name_len + 1);
                }

                o->n_calls++;

            } else if (ev == SLORA_TOOL_ARGS && o->n_calls > 0
                       && o->n_calls <= FUZZ_TOOL_CALLS)
            {
                k = o->n_calls - 1;

                if (o->args_len[k] == 0) {
                    o->args_from[k] = at + off;

                } else if (o->args_from[k] + o->args_len[k] != at + off) {
                    o->args_contiguous = 0;
                }

                o->args_len[k] += len;

            } else if (ev == SLORA_TOOL_NOT) {
                o->not_at = (long) (at + took);
                break;
            }

            at += took;
            piece -= took;
        }
    }

    o->whole = slora_tool_scan_whole(&t);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                 i, params;
    size_t              k;
    fuzz_tool_out_t     o[3];
    slora_tool_shape_e  shape;

    if (size == 0) {
        return 0;
    }

    shape = (slora_tool_shape_e) (data[0] % 5);
    params = data[0] / 5 % 2;

    fuzz_tool_feed((const char *) data + 1, size - 1, shape, params, size,
                   &o[0]);
    fuzz_tool_feed((const char *) data + 1, size - 1, shape, params, 1,
                   &o[1]);
    fuzz_tool_feed((const char *) data + 1, size - 1, shape, params, 0,
                   &o[2]);

    for (i = 0; i < 3; i++) {
        if (!o[i].args_contiguous) {
            abort();
        }
    }

    for (i = 1; i < 3; i++) {
        if (o[i].n_calls != o[0].n_calls || o[i].not_at != o[0].not_at
            || o[i].whole != o[0].whole)
        {
            abort();
        }

        for (k = 0; k < o[0].n_calls && k < FUZZ_TOOL_CALLS; k++) {
            if (strcmp(o[i].names[k], o[0].names[k]) != 0
                || o[i].args_from[k] != o[0].args_from[k]
                || o[i].args_len[k] != o[0].args_len[k])
            {
                abort();
            }
        }
    }

    return 0;
}
