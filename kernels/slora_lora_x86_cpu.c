/*
 * slora_lora_x86_cpu.c: the LoRA kernels' work items on the CPU in AVX2
 * and in AVX-512; slora_lora_cpu.c chooses the widest the processor has
 * at run time.
 *
 * The one idea: they give the portable items' bits (slora_lora_int.h),
 * only wider: one body (slora_lora_items_x86.h) compiled for each set,
 * each lane multiplying then adding in the portable order (no FMA: the
 * build passes -ffp-contract=off, and a fused multiply-add would round
 * once where the portable code rounds twice).
 */

#include "slora_lora_int.h"


#ifdef SLORA_VEC_X86

#include <immintrin.h>


/* AVX2: eight floats a register */

#define SLORA_LORA_TARGET           __attribute__((target("avx2")))
#define SLORA_LV                    __m256
#define SLORA_LV_W                  8
#define SLORA_LV_LOAD               _mm256_loadu_ps
#define SLORA_LV_STORE              _mm256_storeu_ps
#define SLORA_LV_ADD                _mm256_add_ps
#define SLORA_LV_MUL                _mm256_mul_ps
#define SLORA_LV_SET1               _mm256_set1_ps
#define SLORA_LV_ZERO               _mm256_setzero_ps
#define slora_lora_shrink_item_x86  slora_lora_shrink_item_avx2
#define slora_lora_expand_item_x86  slora_lora_expand_item_avx2

#include "slora_lora_items_x86.h"

#undef SLORA_LORA_TARGET
#undef SLORA_LV
#undef SLORA_LV_W
#undef SLORA_LV_LOAD
#undef SLORA_LV_STORE
#undef SLORA_LV_ADD
#undef SLORA_LV_MUL
#undef SLORA_LV_SET1
#undef SLORA_LV_ZERO
#undef slora_lora_shrink_item_x86
#undef slora_lora_expand_item_x86


/* AVX-512: sixteen */

#define SLORA_LORA_TARGET           __attribute__((target("avx2,avx512f")))
#define SLORA_LV                    __m512
#define SLORA_LV_W                  16
#define SLORA_LV_LOAD               _mm512_loadu_ps
#define SLORA_LV_STORE              _mm512_storeu_ps
#define SLORA_LV_ADD                _mm512_add_ps
#define SLORA_LV_MUL                _mm512_mul_ps
#define SLORA_LV_SET1               _mm512_set1_ps
#define SLORA_LV_ZERO               _mm512_setzero_ps
#define slora_lora_shrink_item_x86  slora_lora_shrink_item_avx512
#define slora_lora_expand_item_x86  slora_lora_expand_item_avx512

#include "slora_lora_items_x86.h"

#endif /* SLORA_VEC_X86 */
