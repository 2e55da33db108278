/*
 * bench_regex.c: what compiling a guided_regex costs the worker that
 * refuses it early (slora_regex_compile, on nginx's thread pool, or on
 * the event loop without one) and the engine's compile thread: for each
 * pattern, its automaton's states and the best of five compiles in
 * milliseconds, or the refusal and the time it took. The patterns are
 * long bounded repeats of classes (an answer of up to 400-800
 * characters, in ASCII and in every UTF-8 length) and ones made to spend
 * the compile's whole budget, the worker's longest compiles.
 *
 *     bench_regex [pattern ...]
 *
 * Build (from the repository root, after `make lib`):
 *     cc -std=gnu11 -O2 -Iengine -Ikernels bench/bench_regex.c \
 *         build/libslora.a $(pkg-config --libs libcjson libpcre2-8 \
 *         openblas hiredis libcrypto) -lpthread -lm -o build/bench_regex
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_regex.h"


#define BENCH_REGEX_ROUNDS  5


static const char  *bench_regex_default[] = {
    "[a-z ]{1,500}", "\\w{500}", ".{100}", ".{400}", "[\\s\\S]{0,500}",
    "(\\w|.){1,400}", "(.|\\n){0,400}", ".{500}", ".{800}",
    "(.|\\n){0,800}", ".{1,1000}", "(.{0,10}){80}", "(.|..){0,400}",
    "(a|b)*a(a|b){14}",
};


int
main(int argc, char **argv)
{
    int              i, k, n;
    double           ms, best;
    int64_t          t0;
    uint32_t         states;
    const char     **pats;
    slora_err_t      err;
    slora_regex_t   *r;

    pats = argc > 1 ? (const char **) argv + 1 : bench_regex_default;
    n = argc > 1 ? argc - 1
                 : (int) (sizeof(bench_regex_default)
                          / sizeof(bench_regex_default[0]));

    printf("%-24s %8s %10s  %s\n", "guided_regex", "states", "ms (best)",
           "refused");

    for (i = 0; i < n; i++) {
        best = 0.0;
        states = 0;
        err.msg[0] = '\0';

        for (k = 0; k < BENCH_REGEX_ROUNDS; k++) {
            t0 = slora_now_ns();
            r = slora_regex_compile(pats[i], strlen(pats[i]), 0,
                                    SLORA_REGEX_NONE, SLORA_REGEX_WHOLE,
                                    NULL, &err);
            ms = (double) (slora_now_ns() - t0) / 1e6;
            best = k == 0 || ms < best ? ms : best;
            states = r != NULL ? r->n_states : 0;
            free(r);
        }

        printf("%-24s %8u %10.2f  %s\n", pats[i], states, best,
               states == 0 ? err.msg : "");
    }

    return 0;
}
