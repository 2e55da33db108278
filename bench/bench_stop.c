/*
 * bench/bench_stop.c: what a streamed token's stop-string scan costs the
 * worker (ngx_http_slora_stop_scan, ngx_http_slora_text.c) on the text
 * it holds, the worst a request can make it: four stop strings of the
 * most bytes the API takes (1024), each 1023 a's and another byte, and
 * an answer of a's (the model asked to repeat a letter) with one other
 * byte last, so that every tail almost matches every stop. Prints the
 * microseconds a scan over 1024 + 16 held bytes takes, and the same on
 * an ordinary English answer with four short stops.
 *
 * Build (from the repository root):
 *     cc -std=gnu11 -O2 -Ingx_http_slora_module bench/bench_stop.c \
 *         -o build/bench_stop && build/bench_stop
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../ngx_http_slora_module/ngx_http_slora_text.c"


static double
bench_us(const unsigned char *text, size_t len,
    const ngx_http_slora_text_t *stops, size_t n, int rounds)
{
    int              i;
    size_t           which, safe, sum;
    struct timespec  t0, t1;

    sum = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    for (i = 0; i < rounds; i++) {
        sum += ngx_http_slora_stop_scan(text, len, stops, n, &which, &safe);
        sum += safe;
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);

    if (sum == 0) {
        printf("(no scan ran)\n");
    }

    return ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec))
           / 1e3 / rounds;
}


int
main(void)
{
    size_t                 k, len;
    unsigned char          text[1040], sb[4][NGX_HTTP_SLORA_STOP_MAX];
    ngx_http_slora_text_t  st[4];

    static const char      english[] =
        "The capital of France is Paris, a city on the Seine known for its "
        "museums, its cafes and the tower built for the fair of 1889. ";
    static const char     *words[4] = { "###", "END", "\n\nUser:",
                                        "</answer>" };

    for (k = 0; k < 4; k++) {
        memset(sb[k], 'a', sizeof(sb[k]));
        sb[k][sizeof(sb[k]) - 1] = (unsigned char) ('b' + k);
        st[k].data = sb[k];
        st[k].len = sizeof(sb[k]);
    }

    memset(text, 'a', sizeof(text));
    text[sizeof(text) - 1] = 'z';

    printf("4 stops of 1024 bytes, 1040 held bytes almost matching: "
           "%.2f us a scan\n", bench_us(text, sizeof(text), st, 4, 2000));

    for (len = 0; len < sizeof(text); len++) {
        text[len] = (unsigned char) english[len % (sizeof(english) - 1)];
    }

    for (k = 0; k < 4; k++) {
        st[k].data = (const unsigned char *) words[k];
        st[k].len = strlen(words[k]);
    }

    printf("4 short stops, 1040 bytes of English:                  "
           "%.2f us a scan\n", bench_us(text, sizeof(text), st, 4, 20000));

    return 0;
}
