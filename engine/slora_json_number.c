/*
 * slora_json_number.c: the automaton's numbers (slora_json_lex.h): RFC
 * 8259's number grammar a byte at a time, and a schema's bounds on an
 * integer or a number, kept so that a digit is drawn only if the value
 * can still end inside them.
 *
 * The one idea: a bounded value's digits so far are kept as an exact
 * integer (an integer's magnitude; a number's digits and where its point
 * is), and each digit asks whether any way of going on, or ending, lands
 * inside the bounds as a JSON parser would read it, so the answer never
 * reaches a dead end.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_json_lex.h"


static int slora_json_fmeets(double a, int a_open, double b, int b_open,
    const slora_json_node_t *n);
static double slora_json_decimal(int neg, uint64_t m, uint32_t frac);


/*
 * A bounded integer's byte that its lexer took (rc 1) or that ended it
 * (AGAIN): a digit must leave the integer able to end inside lo..hi,
 * and the integer may end only there. The value so far is f->cand (its
 * magnitude, f->a digits, negative when f->b).
 */
int
slora_json_bounded(slora_json_frame_t *f, const slora_json_node_t *n,
    unsigned c, int rc)
{
    __int128  v;

    if (rc == SLORA_JSON_AGAIN) {
        v = (f->b & SLORA_JSON_B_NEG) ? -(__int128) f->cand
                                      : (__int128) f->cand;

        return f->a > 0 && v >= n->lo && v <= n->hi ? SLORA_JSON_AGAIN : 0;
    }

    /* a digit: 19 of them at most, past which no int64 bound reaches */
    if (f->a == 19
        || !slora_json_reachable(n, (int) (f->b & SLORA_JSON_B_NEG),
                                 f->cand * 10 + (c - '0'), f->a + 1))
    {
        return 0;
    }

    f->cand = f->cand * 10 + (c - '0');
    f->a++;

    return 1;
}


/*
 * Whether an integer begun as the sign and the digits (digits of them,
 * magnitude v) can still end inside n->lo..n->hi: as it is, or with k
 * more digits, magnitude v * 10^k up to v * 10^k + 10^k - 1, for k up to
 * 19 digits in all (a leading zero takes none).
 */
int
slora_json_reachable(const slora_json_node_t *n, int neg, uint64_t v,
    uint32_t digits)
{
    uint32_t  k;
    __int128  p, low, high, lo, hi;

    if (digits == 0) {
        /* a bare '-': some negative integer, or -0 */
        return n->lo <= 0;
    }

    for (k = 0, p = 1; digits + k <= 19; k++, p *= 10) {
        if (k > 0 && v == 0) {
            break;
        }

        low = (__int128) v * p;
        high = low + p - 1;
        lo = neg ? -high : low;
        hi = neg ? -low : high;

        if (lo <= n->hi && hi >= n->lo) {
            return 1;
        }
    }

    return 0;
}


/*
 * A bounded number's byte that its lexer took (rc 1) or that ended it
 * (AGAIN), as slora_json_bounded is an integer's: no exponent; a digit
 * or the point must leave the number able to end inside flo..fhi; it
 * may end only there, its value read from its text as a validator reads
 * it. Its digits are cand (at most 19 of them once the first that is
 * not 0 came), f->a of them, the fraction's in b's high bits.
 */
int
slora_json_fbounded(slora_json_frame_t *f, const slora_json_node_t *n,
    unsigned c, int rc)
{
    int       neg, point;
    double    v;
    uint32_t  frac;
    uint64_t  m;

    neg = (f->b & SLORA_JSON_B_NEG) != 0;
    point = (f->b & SLORA_JSON_B_POINT) != 0;
    frac = f->b >> SLORA_JSON_B_FRAC;

    if (rc == SLORA_JSON_AGAIN) {
        v = slora_json_decimal(neg, f->cand, frac);

        return slora_json_fmeets(v, 0, v, 0, n) ? SLORA_JSON_AGAIN : 0;
    }

    if (c == 'e' || c == 'E') {
        return 0;
    }

    if (c == '.') {
        /* a digit must follow it */
        if (f->cand >= 1000000000000000000ULL
            || !slora_json_freachable(n, neg, 1, f->cand, f->a, 0))
        {
            return 0;
        }

        f->b |= SLORA_JSON_B_POINT;
        return 1;
    }

    /* a digit */
    if (f->cand >= 1000000000000000000ULL
        || (point && frac == SLORA_JSON_FRAC_MAX))
    {
        return 0;
    }

    m = f->cand * 10 + (c - '0');
    frac += point;

    /* past the digits' limits the number ends here: its own value must
     * be in bounds; else some value the digits after can make */
    if (m >= 1000000000000000000ULL
        || (point && frac == SLORA_JSON_FRAC_MAX)
        ? !slora_json_fmeets(slora_json_decimal(neg, m, frac), 0,
                             slora_json_decimal(neg, m, frac), 0, n)
        : !slora_json_freachable(n, neg, point, m, f->a + 1, frac))
    {
        return 0;
    }

    f->cand = m;
    f->a++;
    f->b = (f->b & (SLORA_JSON_B_NEG | SLORA_JSON_B_POINT))
           | (frac << SLORA_JSON_B_FRAC);

    return 1;
}


/*
 * Whether a number begun as the sign and digits (m their value, frac of
 * them after the point, when there is one) can still end inside
 * flo..fhi: its values are [m, m + 1) scaled by 10^-frac after the
 * point; before it, [m 10^k, (m + 1) 10^k) for k more digits (none
 * after a leading 0), up to 19 digits; a bare '-', (-inf, 0].
 */
int
slora_json_freachable(const slora_json_node_t *n, int neg, int point,
    uint64_t m, uint32_t digits, uint32_t frac)
{
    double    a, b, p;
    uint32_t  k, frac0;
    uint64_t  q;

    frac0 = frac;

    if (digits == 0) {
        return slora_json_fmeets(-INFINITY, 1, 0, 0, n);
    }

    /* after the point: from its value as it is to the most the digits
     * left can add (19 significant ones, 40 decimals), both as a
     * validator reads them, so a bound a hair away is not taken for
     * one the digits can still pass */
    if (point) {
        for (k = 0, q = m; q > 0; q /= 10) {
            k++;
        }

        k = 19 - k < SLORA_JSON_FRAC_MAX - frac ? 19 - k
                                              : SLORA_JSON_FRAC_MAX - frac;

        for (q = m; k > 0; k--, frac++) {
            q = q * 10 + 9;
        }

        a = slora_json_decimal(0, m, frac0);
        b = slora_json_decimal(0, q, frac);

        return neg ? slora_json_fmeets(-b, 0, -a, 0, n)
                   : slora_json_fmeets(a, 0, b, 0, n);
    }

    /* (read as doubles, a and b may meet: the values hold a's still) */
    if (m == 0 && digits == 1) {
        a = slora_json_decimal(0, m, frac);
        b = fmax(slora_json_decimal(0, m + 1, frac), nextafter(a, INFINITY));

        return neg ? slora_json_fmeets(-b, 1, -a, 0, n)
                   : slora_json_fmeets(a, 0, b, 1, n);
    }

    for (k = 0, p = 1; digits + k <= 19; k++, p *= 10) {
        a = (double) m * p;
        b = fmax((double) (m + 1) * p, nextafter(a, INFINITY));

        if (neg ? slora_json_fmeets(-b, 1, -a, 0, n)
                : slora_json_fmeets(a, 0, b, 1, n))
        {
            return 1;
        }
    }

    return 0;
}


/* Whether the interval a..b (each end open when said) meets flo..fhi. */
static int
slora_json_fmeets(double a, int a_open, double b, int b_open,
    const slora_json_node_t *n)
{
    int     lo_open, hi_open;
    double  lo, hi;

    lo = a > n->flo ? a : n->flo;
    lo_open = a > n->flo ? a_open
              : a < n->flo ? (n->excl & 1) != 0
              : a_open || (n->excl & 1);
    hi = b < n->fhi ? b : n->fhi;
    hi_open = b < n->fhi ? b_open
              : b > n->fhi ? (n->excl & 2) != 0
              : b_open || (n->excl & 2);

    return lo < hi || (lo == hi && !lo_open && !hi_open);
}


/* The value of the decimal digits m with frac of them after the point,
 * as strtod reads their text (as a JSON parser reads the number). */
static double
slora_json_decimal(int neg, uint64_t m, uint32_t frac)
{
    int   n;
    char  digits[32], text[80], *p;

    n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long) m);
    p = text;

    if (neg) {
        *p++ = '-';
    }

    if ((uint32_t) n > frac) {
        memcpy(p, digits, (size_t) n - frac);
        p += n - frac;

    } else {
        *p++ = '0';
    }

    if (frac > 0) {
        *p++ = '.';

        for ( /* void */ ; (uint32_t) n < frac; frac--) {
            *p++ = '0';
        }

        memcpy(p, digits + n - frac, frac);
        p += frac;
    }

    *p = '\0';

    return strtod(text, NULL);
}


/* A number's byte: taken, refused, or (the number whole) AGAIN. An
 * integer has no fraction and no exponent. */
int
slora_json_number(slora_json_t *j, int integer, unsigned c)
{
    int  digit;

    digit = c >= '0' && c <= '9';

    switch (j->part) {

    case SLORA_JSON_N_MINUS:
        if (!digit) {
            return 0;
        }

        j->part = c == '0' ? SLORA_JSON_N_ZERO : SLORA_JSON_N_INT;
        return 1;

    case SLORA_JSON_N_INT:
        if (digit) {
            return 1;
        }

        /* fall through */

    case SLORA_JSON_N_ZERO:
        if (c == '.' && !integer) {
            j->part = SLORA_JSON_N_DOT;
            return 1;
        }

        if ((c == 'e' || c == 'E') && !integer) {
            j->part = SLORA_JSON_N_EXP;
            return 1;
        }

        return SLORA_JSON_AGAIN;

    case SLORA_JSON_N_DOT:
    case SLORA_JSON_N_FRAC:
        if (digit) {
            j->part = SLORA_JSON_N_FRAC;
            return 1;
        }

        if (j->part == SLORA_JSON_N_DOT) {
            return 0;
        }

        if (c == 'e' || c == 'E') {
            j->part = SLORA_JSON_N_EXP;
            return 1;
        }

        return SLORA_JSON_AGAIN;

    case SLORA_JSON_N_EXP:
        if (c == '+' || c == '-') {
            j->part = SLORA_JSON_N_EXP_SIGN;
            return 1;
        }

        /* fall through */

    case SLORA_JSON_N_EXP_SIGN:
        if (!digit) {
            return 0;
        }

        j->part = SLORA_JSON_N_EXP_DIGITS;
        return 1;

    default:            /* EXP_DIGITS */
        return digit ? 1 : SLORA_JSON_AGAIN;
    }
}
