/*
 * slora_tensor.h: the view of a tensor stored in a model or adapter file,
 * the same whichever reader (GGUF, safetensors) found it. The data stays
 * in the reader's mmap; slora_tensor_to_f32() dequantizes it into memory
 * the caller owns. Dims are listed PyTorch-style, outermost first:
 * a linear layer's weight is { out, in }.
 */

#ifndef SLORA_TENSOR_H
#define SLORA_TENSOR_H


#include "slora_core.h"
#include "slora_convert.h"          /* slora_f32_to_bf16 */


typedef enum {
    SLORA_DT_F32 = 0,
    SLORA_DT_F16,
    SLORA_DT_BF16,
    SLORA_DT_Q8_0,
    SLORA_DT_Q4_0,
    SLORA_DT_Q4_1,
    SLORA_DT_I32,
    SLORA_DT_N
} slora_dtype_e;


#define SLORA_TENSOR_MAX_DIMS  4


typedef struct {
    const char      *name;
    slora_dtype_e    dtype;
    int              n_dims;
    int64_t          dims[SLORA_TENSOR_MAX_DIMS];   /* outermost first */
    int64_t          n_elems;
    const void      *data;        /* inside the reader's mapping */
    size_t           n_bytes;
} slora_tensor_t;


const char *slora_dtype_name(slora_dtype_e dt);

/* Bytes taken by n elements of dt; n must be a multiple of the block size
 * for block types. Returns SLORA_ERROR when it is not, or on overflow. */
int slora_dtype_bytes(slora_dtype_e dt, int64_t n, size_t *out);

/* Dequantizes t into dst[t->n_elems]. */
int slora_tensor_to_f32(const slora_tensor_t *t, float *dst, slora_err_t *err);

/* Two tensors of t[0 .. n-1] whose data share a byte (an empty tensor
 * shares none): *a and *b their indexes, *a's data first; -1 and -1 when
 * there are none. SLORA_ERROR only when out of memory. */
int slora_tensor_overlap(const slora_tensor_t *t, int64_t n, int64_t *a,
    int64_t *b);

/* float <-> half conversions, round to nearest even; bf16's both ways
 * are the kernels' own (slora_convert.h). */
float slora_f16_to_f32(uint16_t h);
uint16_t slora_f32_to_f16(float f);


#endif /* SLORA_TENSOR_H */
