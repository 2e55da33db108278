/*
 * tap.h: the few macros the C unit tests use to speak TAP, so prove runs
 * them beside the nginx tests. A test binary prints "ok N - name" or
 * "not ok N - name", then the plan "1..N" at the end (done_testing).
 */

#ifndef SLORA_TAP_H
#define SLORA_TAP_H


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdarg.h>


static int  tap_n, tap_failed;


#define ok(cond, ...)                                                         \
    tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                                \
    do {                                                                      \
        long long  g_ = (long long) (got), w_ = (long long) (want);           \
        if (!tap_ok(g_ == w_, __FILE__, __LINE__, __VA_ARGS__)) {             \
            printf("#   got: %lld\n#  want: %lld\n", g_, w_);                 \
        }                                                                     \
    } while (0)

#define is_str(got, want, ...)                                                \
    do {                                                                      \
        const char  *g_ = (got), *w_ = (want);                                \
        int          e_ = (g_ && w_) ? strcmp(g_, w_) == 0 : g_ == w_;        \
        if (!tap_ok(e_, __FILE__, __LINE__, __VA_ARGS__)) {                   \
            printf("#   got: '%s'\n#  want: '%s'\n", g_ ? g_ : "(null)",      \
                   w_ ? w_ : "(null)");                                       \
        }                                                                     \
    } while (0)

#define diag(...)                                                             \
    do { printf("# "); printf(__VA_ARGS__); printf("\n"); } while (0)

#define BAIL_OUT(...)                                                         \
    do {                                                                      \
        printf("Bail out! "); printf(__VA_ARGS__); printf("\n");              \
        exit(255);                                                            \
    } while (0)


static int
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), unused));

static int
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list  ap;

    tap_n++;
    printf("%sok %d - ", pass ? "" : "not ", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");

    if (!pass) {
        tap_failed++;
        printf("#   Failed test at %s line %d.\n", file, line);
    }

    fflush(stdout);
    return pass;
}


static int
done_testing(void) __attribute__((unused));

static int
done_testing(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}


/* Largest |a-b| / max(|b|, floor) over n floats. */
static double
tap_max_rel_err(const float *a, const float *b, size_t n, double floor_)
    __attribute__((unused));

static double
tap_max_rel_err(const float *a, const float *b, size_t n, double floor_)
{
    size_t  i;
    double  d, m, worst;

    worst = 0;
    for (i = 0; i < n; i++) {
        d = fabs((double) a[i] - (double) b[i]);
        m = fabs((double) b[i]);
        d /= (m > floor_ ? m : floor_);
        if (d > worst || isnan(d)) {
            worst = isnan(d) ? INFINITY : d;
        }
    }

    return worst;
}


#endif /* SLORA_TAP_H */
