/*
 * slora_vec_cpu.h: the vector loops the CPU twins share: a dot product
 * and y += w x. They are written so that -O2 vectorizes them without
 * -march flags or intrinsics.
 *
 * The one idea: the dot product keeps 16 running sums and folds them in a
 * fixed tree, so its result depends only on n, never on how the caller
 * shared the work out between threads.
 */

#ifndef SLORA_VEC_CPU_H
#define SLORA_VEC_CPU_H


#include <stdint.h>


static inline float
slora_vec_dot(const float *restrict a, const float *restrict b, int32_t n)
{
    float    acc[16], tail;
    int32_t  i, j;

    for (j = 0; j < 16; j++) {
        acc[j] = 0.0f;
    }

    for (i = 0; i + 16 <= n; i += 16) {
        for (j = 0; j < 16; j++) {
            acc[j] += a[i + j] * b[i + j];
        }
    }

    tail = 0.0f;

    for ( /* void */ ; i < n; i++) {
        tail += a[i] * b[i];
    }

    for (j = 0; j < 8; j++) {
        acc[j] += acc[j + 8];
    }

    for (j = 0; j < 4; j++) {
        acc[j] += acc[j + 4];
    }

    return (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail;
}


/* Blocks of 16 with a known trip count, which -O2's cheap vectorizer
 * takes (a plain loop of unknown n it leaves scalar); each element sees
 * the same multiply and add either way. */
static inline void
slora_vec_axpy(float *restrict y, float w, const float *restrict x,
    int32_t n)
{
    int32_t  i, j;

    for (i = 0; i + 16 <= n; i += 16) {
        for (j = 0; j < 16; j++) {
            y[i + j] += w * x[i + j];
        }
    }

    for ( /* void */ ; i < n; i++) {
        y[i] += w * x[i];
    }
}


#endif /* SLORA_VEC_CPU_H */
