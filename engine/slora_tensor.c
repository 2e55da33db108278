/*
 * slora_tensor.c: element types of stored tensors, their sizes, and the
 * dequantization of each into f32.
 *
 * The one idea: the block types follow GGML's layouts exactly. A block of
 * 32 elements stores an f16 scale d (Q4_1 adds an f16 minimum m) and then
 * the quants; Q8_0 keeps 32 signed bytes, Q4_0 and Q4_1 pack 32 nibbles
 * into 16 bytes, the low nibble of byte j is element j and the high nibble
 * is element j + 16. Data may sit at any address inside a mapping, so every
 * load goes through memcpy.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slora_tensor.h"


#define SLORA_QK  32                /* elements in a quantized block */


typedef struct {
    const char  *name;
    int64_t      block;             /* elements per block */
    size_t       bytes;             /* bytes per block */
} slora_dtype_info_t;


static const slora_dtype_info_t  slora_dtypes[SLORA_DT_N] = {
    { "F32",  1,        4 },
    { "F16",  1,        2 },
    { "BF16", 1,        2 },
    { "Q8_0", SLORA_QK, 2 + SLORA_QK },
    { "Q4_0", SLORA_QK, 2 + SLORA_QK / 2 },
    { "Q4_1", SLORA_QK, 4 + SLORA_QK / 2 },
    { "I32",  1,        4 },
};


static int slora_tensor_cmp_data(const void *a, const void *b);
static uint16_t slora_load_u16(const uint8_t *p);
static void slora_deq_q8_0(const uint8_t *src, float *dst, int64_t nb);
static void slora_deq_q4_0(const uint8_t *src, float *dst, int64_t nb);
static void slora_deq_q4_1(const uint8_t *src, float *dst, int64_t nb);


const char *
slora_dtype_name(slora_dtype_e dt)
{
    if ((unsigned) dt >= SLORA_DT_N) {
        return "unsupported";
    }

    return slora_dtypes[dt].name;
}


int
slora_dtype_bytes(slora_dtype_e dt, int64_t n, size_t *out)
{
    const slora_dtype_info_t  *di;

    if ((unsigned) dt >= SLORA_DT_N || n < 0) {
        return SLORA_ERROR;
    }

    di = &slora_dtypes[dt];

    if (n % di->block != 0) {
        return SLORA_ERROR;
    }

    return slora_mul_size((size_t) (n / di->block), di->bytes, out);
}


int
slora_tensor_to_f32(const slora_tensor_t *t, float *dst, slora_err_t *err)
{
    int64_t         i, n;
    size_t          need;
    int32_t         v;
    const uint8_t  *p;

    n = t->n_elems;
    p = t->data;

    if (slora_dtype_bytes(t->dtype, n, &need) != SLORA_OK) {
        return slora_err_set(err, SLORA_ERROR,
                             "tensor '%s': cannot convert %lld elements of "
                             "type %s to f32", t->name, (long long) n,
                             slora_dtype_name(t->dtype));
    }

    if (need > t->n_bytes) {
        return slora_err_set(err, SLORA_ERROR,
                             "tensor '%s': %zu bytes given, %zu needed",
                             t->name, t->n_bytes, need);
    }

    switch (t->dtype) {

    case SLORA_DT_F32:
        memcpy(dst, p, need);
        break;

    case SLORA_DT_F16:
        for (i = 0; i < n; i++) {
            dst[i] = slora_f16_to_f32(slora_load_u16(p + 2 * i));
        }
        break;

    case SLORA_DT_BF16:
        for (i = 0; i < n; i++) {
            dst[i] = slora_bf16_to_f32(slora_load_u16(p + 2 * i));
        }
        break;

    case SLORA_DT_Q8_0:
        slora_deq_q8_0(p, dst, n / SLORA_QK);
        break;

    case SLORA_DT_Q4_0:
        slora_deq_q4_0(p, dst, n / SLORA_QK);
        break;

    case SLORA_DT_Q4_1:
        slora_deq_q4_1(p, dst, n / SLORA_QK);
        break;

    case SLORA_DT_I32:
        for (i = 0; i < n; i++) {
            memcpy(&v, p + 4 * i, 4);
            dst[i] = (float) v;
        }
        break;

    default:
        return slora_err_set(err, SLORA_ERROR, "tensor '%s': unsupported type",
                             t->name);
    }

    return SLORA_OK;
}


int
slora_tensor_overlap(const slora_tensor_t *t, int64_t n, int64_t *a,
    int64_t *b)
{
    int64_t                 i;
    const slora_tensor_t  **by, *prev;

    *a = -1;
    *b = -1;

    if (n < 2) {
        return SLORA_OK;
    }

    by = malloc((size_t) n * sizeof(slora_tensor_t *));
    if (by == NULL) {
        return SLORA_ERROR;
    }

    for (i = 0; i < n; i++) {
        by[i] = &t[i];
    }

    qsort(by, (size_t) n, sizeof(slora_tensor_t *), slora_tensor_cmp_data);

    /* by start: with none overlapping so far, each tensor ends before the
     * next starts, so the one before is the only one to check */

    prev = NULL;

    for (i = 0; i < n; i++) {
        if (by[i]->n_bytes == 0) {
            continue;
        }

        if (prev != NULL
            && (uintptr_t) by[i]->data
               < (uintptr_t) prev->data + prev->n_bytes)
        {
            *a = prev - t;
            *b = by[i] - t;
            break;
        }

        prev = by[i];
    }

    free(by);

    return SLORA_OK;
}


/* By data address, then by index: the same pair whatever qsort does. */
static int
slora_tensor_cmp_data(const void *a, const void *b)
{
    uintptr_t              x, y;
    const slora_tensor_t  *ta, *tb;

    ta = *(const slora_tensor_t *const *) a;
    tb = *(const slora_tensor_t *const *) b;
    x = (uintptr_t) ta->data;
    y = (uintptr_t) tb->data;

    if (x != y) {
        return x < y ? -1 : 1;
    }

    return ta < tb ? -1 : ta > tb;
}


static uint16_t
slora_load_u16(const uint8_t *p)
{
    uint16_t  v;

    memcpy(&v, p, 2);
    return v;
}


static void
slora_deq_q8_0(const uint8_t *src, float *dst, int64_t nb)
{
    int      j;
    float    d;
    int64_t  b;

    for (b = 0; b < nb; b++) {
        const uint8_t  *blk = src + b * (2 + SLORA_QK);
        float          *y = dst + b * SLORA_QK;

        d = slora_f16_to_f32(slora_load_u16(blk));

        for (j = 0; j < SLORA_QK; j++) {
            y[j] = (float) (int8_t) blk[2 + j] * d;
        }
    }
}


static void
slora_deq_q4_0(const uint8_t *src, float *dst, int64_t nb)
{
    int      j;
    float    d;
    int64_t  b;

    for (b = 0; b < nb; b++) {
        const uint8_t  *blk = src + b * (2 + SLORA_QK / 2);
        float          *y = dst + b * SLORA_QK;

        d = slora_f16_to_f32(slora_load_u16(blk));

        for (j = 0; j < SLORA_QK / 2; j++) {
            y[j] = (float) ((blk[2 + j] & 0x0f) - 8) * d;
            y[j + SLORA_QK / 2] = (float) ((blk[2 + j] >> 4) - 8) * d;
        }
    }
}


static void
slora_deq_q4_1(const uint8_t *src, float *dst, int64_t nb)
{
    int      j;
    float    d, m;
    int64_t  b;

    for (b = 0; b < nb; b++) {
        const uint8_t  *blk = src + b * (4 + SLORA_QK / 2);
        float          *y = dst + b * SLORA_QK;

        d = slora_f16_to_f32(slora_load_u16(blk));
        m = slora_f16_to_f32(slora_load_u16(blk + 2));

        for (j = 0; j < SLORA_QK / 2; j++) {
            y[j] = (float) (blk[4 + j] & 0x0f) * d + m;
            y[j + SLORA_QK / 2] = (float) (blk[4 + j] >> 4) * d + m;
        }
    }
}


float
slora_f16_to_f32(uint16_t h)
{
    uint32_t  sign, exp, mant, bits;
    float     f;

    sign = (uint32_t) (h & 0x8000) << 16;
    exp = (h >> 10) & 0x1f;
    mant = h & 0x3ff;

    if (exp == 0x1f) {
        bits = sign | 0x7f800000 | (mant << 13);

    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);

    } else if (mant == 0) {
        bits = sign;

    } else {
        /* subnormal: mant * 2^-24 is exact in f32 */
        f = (float) mant * 0x1p-24f;
        return sign ? -f : f;
    }

    memcpy(&f, &bits, 4);
    return f;
}


uint16_t
slora_f32_to_f16(float f)
{
    int32_t   e;
    uint32_t  bits, sign, mant, shift, half, rest, r;

    memcpy(&bits, &f, 4);
    sign = (bits >> 16) & 0x8000;
    e = (int32_t) ((bits >> 23) & 0xff);
    mant = bits & 0x7fffff;

    if (e == 0xff) {
        /* inf stays inf, NaN stays a quiet NaN */
        return (uint16_t) (sign | 0x7c00 | (mant ? 0x200 | (mant >> 13) : 0));
    }

    e -= 127 - 15;

    if (e >= 0x1f) {
        return (uint16_t) (sign | 0x7c00);
    }

    if (e <= 0) {
        if (e < -10) {
            return (uint16_t) sign;     /* below half the smallest subnormal */
        }

        mant |= 0x800000;
        shift = (uint32_t) (14 - e);
        r = mant >> shift;
        rest = mant & ((1u << shift) - 1);
        half = 1u << (shift - 1);

        if (rest > half || (rest == half && (r & 1))) {
            r++;
        }

        return (uint16_t) (sign | r);
    }

    r = ((uint32_t) e << 10) | (mant >> 13);
    rest = mant & 0x1fff;

    if (rest > 0x1000 || (rest == 0x1000 && (r & 1))) {
        r++;                            /* may carry into inf: correct */
    }

    return (uint16_t) (sign | r);
}
