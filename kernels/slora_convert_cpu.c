/*
 * slora_convert_cpu.c: f32 to bf16 on the CPU, bit for bit what
 * __float2bfloat16_rn does on the device.
 *
 * The one idea: bf16 is the top half of an f32; rounding adds 0x7fff
 * plus the lowest kept bit before truncating, which is round to
 * nearest with ties to even. Every NaN becomes the canonical bf16 NaN,
 * 0x7fff, as the device's cvt.rn.bf16.f32 gives it (an H200 showed it:
 * keeping the payload differed from the device).
 */

#include <string.h>

#include "slora_convert.h"


uint16_t
slora_f32_to_bf16(float f)
{
    uint32_t  u;

    memcpy(&u, &f, sizeof(u));

    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return 0x7fffu;
    }

    u += 0x7fffu + ((u >> 16) & 1u);

    return (uint16_t) (u >> 16);
}


float
slora_bf16_to_f32(uint16_t h)
{
    uint32_t  bits;
    float     f;

    bits = (uint32_t) h << 16;
    memcpy(&f, &bits, sizeof(f));

    return f;
}


void
slora_convert_bf16(uint16_t *dst, const float *src, int64_t n)
{
    int64_t  i;

    for (i = 0; i < n; i++) {
        dst[i] = slora_f32_to_bf16(src[i]);
    }
}


void
slora_convert_pages_bf16(uint16_t *dst, const int64_t *dst_off,
    const float *src, int32_t n, int64_t width)
{
    int32_t  i;

    for (i = 0; i < n; i++) {
        slora_convert_bf16(dst + dst_off[i], src + (int64_t) i * width,
                           width);
    }
}


void
slora_copy_pages_bf16(uint16_t *dst, const int64_t *dst_off,
    const uint16_t *src, int32_t n, int64_t width)
{
    int32_t  i;

    for (i = 0; i < n; i++) {
        memcpy(dst + dst_off[i], src + (int64_t) i * width,
               (size_t) width * sizeof(uint16_t));
    }
}
