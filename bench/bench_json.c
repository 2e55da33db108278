/*
 * bench_json.c: times JSON mode's mask (slora_json_mask) on SmolLM2's
 * 49152 tokens at states of each kind: before the object, after '{', in
 * a key, after it, after ':', in a string value, in a number, after '[',
 * in a literal, after a backslash. Prints the tokens each state allows
 * and the best of five rounds of 200 masks, in microseconds a row.
 *
 *     bench_json [model.gguf]
 *
 * The one idea: the mask runs once a step for every JSON-mode request,
 * on the host, so its cost a row is what JSON mode adds to a step.
 *
 * Build (from the repository root, after `make lib`):
 *     cc -std=gnu11 -O2 -Iengine -Ikernels bench/bench_json.c \
 *         build/libslora.a $(pkg-config --libs libcjson libpcre2-8 \
 *         openblas hiredis libcrypto) -lpthread -lm -o build/bench_json
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_json.h"


#define BENCH_JSON_ROUNDS  5
#define BENCH_JSON_MASKS   200


int
main(int argc, char **argv)
{
    int                  i, r, k;
    float               *row;
    double               best, us;
    int32_t              n_vocab, n;
    int64_t              t0;
    const char          *path;
    slora_err_t          err;
    slora_json_t         j;
    slora_tokenizer_t   *t;
    slora_json_vocab_t  *v;

    static const char  *texts[] = {
        "", "{", "{\"na", "{\"name\"", "{\"name\":", "{\"name\": \"App",
        "{\"a\": 12", "{\"a\": [", "{\"a\": tr", "{\"a\": \"\\",
    };

    path = argc > 1 ? argv[1] : "models/SmolLM2-135M-Instruct.Q4_1.gguf";

    t = slora_tokenizer_load(path, &err);
    if (t == NULL) {
        fprintf(stderr, "bench_json: %s\n", err.msg);
        return 1;
    }

    n_vocab = slora_tokenizer_n_vocab(t);
    t0 = slora_now_ns();
    v = slora_json_vocab_create(t, n_vocab, &err);
    row = calloc((size_t) n_vocab, sizeof(float));

    if (v == NULL || row == NULL) {
        fprintf(stderr, "bench_json: %s\n", v ? "no memory" : err.msg);
        return 1;
    }

    printf("%d tokens, their table in %.1f ms\n", n_vocab,
           (double) (slora_now_ns() - t0) / 1e6);
    printf("%-18s %8s %10s\n", "after", "allowed", "us a row");

    for (i = 0; i < (int) (sizeof(texts) / sizeof(texts[0])); i++) {
        slora_json_init(&j, NULL);

        if (!slora_json_feed(&j, texts[i], strlen(texts[i]))) {
            fprintf(stderr, "bench_json: \"%s\" refused\n", texts[i]);
            return 1;
        }

        best = 1e30;
        n = 0;

        for (r = 0; r < BENCH_JSON_ROUNDS; r++) {
            t0 = slora_now_ns();

            for (k = 0; k < BENCH_JSON_MASKS; k++) {
                n = slora_json_mask(&j, v, row);
            }

            us = (double) (slora_now_ns() - t0) / 1e3 / BENCH_JSON_MASKS;
            best = us < best ? us : best;
        }

        printf("%-18s %8d %10.1f\n", texts[i], n, best);
    }

    free(row);
    slora_json_vocab_free(v);
    slora_tokenizer_free(t);

    return 0;
}
