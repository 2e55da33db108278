/*
 * tap.h: the few macros the C unit tests use to speak TAP, so prove runs
 * them beside the nginx tests. A test binary prints "ok N - name" or
 * "not ok N - name", then the plan "1..N" at the end (done_testing).
 */

#ifndef SLORA_TAP_H
#define SLORA_TAP_H


#include <stdint.h>
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


/* The whole file at path, NUL-terminated, in memory the caller frees;
 * *len gets its size. NULL when it cannot be read. */
static void *
tap_read_file(const char *path, size_t *len) __attribute__((unused));

static void *
tap_read_file(const char *path, size_t *len)
{
    FILE  *f;
    char  *buf;
    long   n;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        fclose(f);
        return NULL;
    }

    buf = (char *) malloc((size_t) n + 1);
    if (buf == NULL || fread(buf, 1, (size_t) n, f) != (size_t) n) {
        free(buf);
        fclose(f);
        return NULL;
    }

    buf[n] = '\0';
    fclose(f);
    *len = (size_t) n;

    return buf;
}


/* Index of the largest of v[0..n), the lowest on ties (greedy). */
static int32_t
tap_argmax(const float *v, int32_t n) __attribute__((unused));

static int32_t
tap_argmax(const float *v, int32_t n)
{
    int32_t  i, best;

    best = 0;
    for (i = 1; i < n; i++) {
        if (v[i] > v[best]) {
            best = i;
        }
    }

    return best;
}


/*
 * A seeded xorshift generator, so a test's random inputs are the same on
 * every run: tap_seed() once, then uniform floats in [-1, 1), integers in
 * [0, n), and shuffles.
 */

static uint64_t  tap_rng_state = 0x2545f4914f6cdd1dull;

static void tap_seed(uint64_t seed) __attribute__((unused));
static float tap_frand(void) __attribute__((unused));
static int tap_irand(int n) __attribute__((unused));
static void tap_shuffle(int32_t *a, int n) __attribute__((unused));


static void
tap_seed(uint64_t seed)
{
    tap_rng_state = seed;
}


static float
tap_frand(void)
{
    tap_rng_state ^= tap_rng_state << 13;
    tap_rng_state ^= tap_rng_state >> 7;
    tap_rng_state ^= tap_rng_state << 17;
    return (float) ((tap_rng_state >> 11) * (1.0 / 9007199254740992.0))
           * 2.0f - 1.0f;
}


static int
tap_irand(int n)
{
    return (int) ((tap_frand() + 1.0f) * 0.5f * (float) n) % n;
}


static void
tap_shuffle(int32_t *a, int n)
{
    int      i, j;
    int32_t  t;

    for (i = n - 1; i > 0; i--) {
        j = tap_irand(i + 1);
        t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}


#endif /* SLORA_TAP_H */
