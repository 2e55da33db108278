/*
 * slora_rope_cpu.c: RoPE on the CPU, one token per loop iteration; a
 * call turns the tokens of one share (ith of nth).
 *
 * The one idea: a token's cos/sin pairs are the same for every head, so
 * the loop runs pair-major and turns that pair in all q and k heads
 * before computing the next angle; nothing is cached between calls, so
 * no workspace is needed. slora_rope_angle() is the one place an angle
 * is made, for this loop and for the CUDA twin's table.
 */

#include <stddef.h>
#include <math.h>

#include "slora_rope.h"


static void slora_rope_angle(int32_t p, int32_t i, int32_t head_dim,
    float theta, const float *factors, float *c, float *s);
static void slora_rope_pair(float *x, int64_t a, int64_t b, float c, float s);


int
slora_rope(float *q, int64_t ld_q, float *k, int64_t ld_k,
    const int32_t *pos, int64_t n_tok, int32_t n_heads, int32_t n_kv_heads,
    int32_t head_dim, float theta, const float *factors, int layout,
    int ith, int nth)
{
    int64_t  t, t1;

    if (q == NULL || pos == NULL || n_tok < 0 || n_heads <= 0
        || n_kv_heads < 0 || head_dim <= 0 || head_dim % 2 != 0
        || theta <= 0.0f || ld_q < (int64_t) n_heads * head_dim
        || (n_kv_heads > 0
            && (k == NULL || ld_k < (int64_t) n_kv_heads * head_dim))
        || (layout != SLORA_ROPE_LAYOUT_NORM
            && layout != SLORA_ROPE_LAYOUT_NEOX)
        || nth < 1 || ith < 0 || ith >= nth)
    {
        return -1;
    }

    t1 = n_tok * (ith + 1) / nth;

    for (t = n_tok * ith / nth; t < t1; t++) {
        float    *qt = q + t * ld_q;
        float    *kt = k != NULL ? k + t * ld_k : NULL;
        int32_t   half = head_dim / 2;
        int32_t   i, h;
        int64_t   a, b;
        float     c, s;

        for (i = 0; i < half; i++) {
            slora_rope_angle(pos[t], i, head_dim, theta, factors, &c, &s);

            if (layout == SLORA_ROPE_LAYOUT_NORM) {
                a = 2 * i;
                b = 2 * i + 1;

            } else {
                a = i;
                b = i + half;
            }

            for (h = 0; h < n_heads; h++) {
                slora_rope_pair(qt + (int64_t) h * head_dim, a, b, c, s);
            }

            for (h = 0; h < n_kv_heads; h++) {
                slora_rope_pair(kt + (int64_t) h * head_dim, a, b, c, s);
            }
        }
    }

    return 0;
}


int
slora_rope_table(float *table, int32_t n_pos, int32_t head_dim, float theta,
    const float *factors)
{
    int32_t  p, i, half;

    if (table == NULL || n_pos < 0 || head_dim <= 0 || head_dim % 2 != 0
        || theta <= 0.0f)
    {
        return -1;
    }

    half = head_dim / 2;

    for (p = 0; p < n_pos; p++) {
        for (i = 0; i < half; i++) {
            slora_rope_angle(p, i, head_dim, theta, factors,
                             &table[(int64_t) p * head_dim + i],
                             &table[(int64_t) p * head_dim + half + i]);
        }
    }

    return 0;
}


int
slora_rope_llama3_factors(float *out, int32_t head_dim, float theta,
    float factor, float low, float high, float old_ctx)
{
    int32_t  i;
    double   freq, wavelen, smooth;

    if (out == NULL || head_dim <= 0 || head_dim % 2 != 0 || theta <= 0.0f
        || !(factor > 0.0f) || !(old_ctx > 0.0f) || !(high > low)
        || !(low > 0.0f))
    {
        return -1;
    }

    for (i = 0; i < head_dim / 2; i++) {
        freq = pow((double) theta, -2.0 * i / (double) head_dim);
        wavelen = 2 * M_PI / freq;

        if (wavelen < (double) old_ctx / high) {
            out[i] = 1.0f;

        } else if (wavelen > (double) old_ctx / low) {
            out[i] = factor;

        } else {
            smooth = ((double) old_ctx / wavelen - low) / (high - low);
            out[i] = (float) (1.0 / ((1.0 - smooth) / factor + smooth));
        }
    }

    return 0;
}


static void
slora_rope_angle(int32_t p, int32_t i, int32_t head_dim, float theta,
    const float *factors, float *c, float *s)
{
    double  ang;

    ang = (double) p * pow((double) theta, -2.0 * i / (double) head_dim);
    if (factors != NULL) {
        ang /= (double) factors[i];
    }
    *c = (float) cos(ang);
    *s = (float) sin(ang);
}


static void
slora_rope_pair(float *x, int64_t a, int64_t b, float c, float s)
{
    float  x0, x1;

    x0 = x[a];
    x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
}
