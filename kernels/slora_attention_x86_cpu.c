/*
 * slora_attention_x86_cpu.c: query rows of paged attention in AVX2 and in
 * AVX-512, for head dims that are multiples of 16; slora_attention_cpu.c
 * chooses the widest the processor has at run time. Both are compiled
 * here from one body (slora_attention_rows_x86.h), each with its
 * instruction set's target.
 *
 * The one idea: they give the portable row's bits (slora_attention_cpu.c,
 * slora_vec_cpu.h), only faster. A score is slora_vec_dot's sixteen
 * partial sums in two AVX2 registers or one AVX-512 register, each lane
 * multiplying then adding in the same order (no FMA: it would round once
 * where the portable code rounds twice; the build passes
 * -ffp-contract=off), then the same folding tree, done for eight keys at
 * once by shuffles that add the same pairs. The output row stays in
 * registers, 64 or 128 columns a pass, each column adding w v in
 * position order as slora_vec_axpy does. Softmax's exponentials are
 * slora_expf's, eight at a time in four-lane doubles, every operation
 * the scalar one's. A call takes up to SLORA_ATTN_ROWS consecutive query
 * rows of one head and walks the keys and values once for all of them:
 * eight keys, then sixteen values at a time, stay in L1 while every row
 * uses them, so a long context, whose K and V outgrow L2, is read from
 * memory once a block of rows instead of once a row.
 */

#include <math.h>
#include <string.h>

#include "slora_attention_int.h"
#include "slora_vec_cpu.h"
#include "slora_vec_x86_cpu.h"


#ifdef SLORA_VEC_X86

#include <immintrin.h>

#define SLORA_ATTN_INLINE SLORA_ATTN_TARGET __attribute__((always_inline))
#define SLORA_ATTN_GROUP  16            /* positions whose values stay in
                                           L1 while every row adds them */
#define SLORA_ATTN_QREGS  8             /* registers of q held for the
                                           eight keys of a score block */


/* AVX2: eight floats a register */

#define SLORA_ATTN_TARGET     __attribute__((target("avx2")))
#define SLORA_ATTN_W          8
#define SLORA_V               __m256
#define SLORA_V_LOAD          _mm256_loadu_ps
#define SLORA_V_STORE         _mm256_storeu_ps
#define SLORA_V_ADD           _mm256_add_ps
#define SLORA_V_MUL           _mm256_mul_ps
#define SLORA_V_SET1          _mm256_set1_ps
#define SLORA_V_ZERO          _mm256_setzero_ps
#define slora_attn_sums       slora_attn_sums_avx2
#define slora_attn_qregs      slora_attn_qregs_avx2
#define slora_attn_dot8       slora_attn_dot8_avx2
#define slora_attn_fold       slora_attn_fold_avx2
#define slora_attn_dot1       slora_attn_dot1_avx2
#define slora_attn_pv         slora_attn_pv_avx2
#define slora_attn_rows       slora_attn_rows_avx2

#include "slora_attention_rows_x86.h"

#undef SLORA_ATTN_TARGET
#undef SLORA_ATTN_W
#undef SLORA_V
#undef SLORA_V_LOAD
#undef SLORA_V_STORE
#undef SLORA_V_ADD
#undef SLORA_V_MUL
#undef SLORA_V_SET1
#undef SLORA_V_ZERO
#undef slora_attn_sums
#undef slora_attn_qregs
#undef slora_attn_dot8
#undef slora_attn_fold
#undef slora_attn_dot1
#undef slora_attn_pv
#undef slora_attn_rows


/* AVX-512: sixteen */

#define SLORA_ATTN_TARGET     __attribute__((target("avx2,avx512f,avx512vl," \
                                                    "avx512bw,avx512dq")))
#define SLORA_ATTN_W          16
#define SLORA_V               __m512
#define SLORA_V_LOAD          _mm512_loadu_ps
#define SLORA_V_STORE         _mm512_storeu_ps
#define SLORA_V_ADD           _mm512_add_ps
#define SLORA_V_MUL           _mm512_mul_ps
#define SLORA_V_SET1          _mm512_set1_ps
#define SLORA_V_ZERO          _mm512_setzero_ps
#define slora_attn_sums       slora_attn_sums_avx512
#define slora_attn_qregs      slora_attn_qregs_avx512
#define slora_attn_dot8       slora_attn_dot8_avx512
#define slora_attn_fold       slora_attn_fold_avx512
#define slora_attn_dot1       slora_attn_dot1_avx512
#define slora_attn_pv         slora_attn_pv_avx512
#define slora_attn_rows       slora_attn_rows_avx512

#include "slora_attention_rows_x86.h"

#endif /* SLORA_VEC_X86 */
