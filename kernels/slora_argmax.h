/*
 * slora_argmax.h: greedy decoding's choice, the first index of the
 * largest value of each row of logits.
 *
 * The one idea: ties go to the lowest index on both sides, so the
 * device's parallel reduction picks what the CPU's left-to-right scan
 * picks, and greedy tokens can be compared across backends.
 */

#ifndef SLORA_ARGMAX_H
#define SLORA_ARGMAX_H


#include <stdint.h>


/* out[r] = the lowest i with x[r, i] the largest of x[r, 0:n], for the
 * rows r < rows, ld elements apart; a NaN is never chosen where the row
 * has a number (as the draw, slora_sample.h, never takes one), and a
 * row of NaNs gives 0. n >= 1. */
void slora_argmax_rows(int32_t *out, const float *x, int64_t ld,
    int64_t rows, int64_t n);


/* CUDA twin (kernels/slora_argmax.cu): x and out are device memory;
 * it gives what the CPU gives, NaNs and infinities included. stream is
 * a cudaStream_t.
 * Returns 0, or -1 on bad arguments or a refused launch. */
int slora_argmax_rows_cuda(int32_t *out, const float *x, int64_t ld,
    int64_t rows, int64_t n, void *stream);

#endif /* SLORA_ARGMAX_H */
