/*
 * slora_rope.h: rotary position embedding applied in place to the q and
 * k rows of a batch of tokens, each token at its own position.
 *
 * The one idea: pair i of a head turns by pos * theta^(-2i/head_dim),
 * divided by factors[i] where the model scales its frequencies (Llama
 * 3.1's rope_freqs: 1 for the fast pairs, 8 for the slow, smoothed
 * between); the angle is computed in double so that long contexts keep
 * the same rotation on every backend. Two layouts name which elements form pair
 * i: NORM takes (2i, 2i+1), NEOX takes (i, i + head_dim/2).
 *
 * The CUDA twin does no trigonometry: it reads the cos and sin of each
 * position and pair from a table that slora_rope_table() fills on the
 * host with the very expressions the CPU twin uses, so the two agree to
 * the bit on the angles, and a decode step's few tokens do not wait on
 * double-precision pow, cos and sin.
 */

#ifndef SLORA_ROPE_H
#define SLORA_ROPE_H


#include <stdint.h>

#include "slora_attention.h"


#define SLORA_ROPE_LAYOUT_NORM  0
#define SLORA_ROPE_LAYOUT_NEOX  1


/* q: [n_tok] rows of ld_q elements holding [n_heads, head_dim];
 * k: [n_tok] rows of ld_k elements holding [n_kv_heads, head_dim];
 * pos: [n_tok]. k may be NULL with n_kv_heads 0. head_dim is even.
 * factors: [head_dim / 2] divisors of the pairs' frequencies, or NULL.
 * Turns the tokens of share ith of nth (tokens [n_tok*ith/nth,
 * n_tok*(ith+1)/nth)); a single-threaded caller passes 0, 1. */
int slora_rope(float *q, int64_t ld_q, float *k, int64_t ld_k,
    const int32_t *pos, int64_t n_tok, int32_t n_heads, int32_t n_kv_heads,
    int32_t head_dim, float theta, const float *factors, int layout,
    int ith, int nth);


/* The angles' table of positions [0, n_pos): table[p * head_dim + i] is
 * the cos of pair i at position p and table[p * head_dim + head_dim/2 +
 * i] its sin, (float) of the double the CPU twin computes. */
int slora_rope_table(float *table, int32_t n_pos, int32_t head_dim,
    float theta, const float *factors);

/*
 * Llama 3.1's frequency divisors (rope_scaling "llama3"), as
 * convert_hf_to_gguf.py writes them into rope_freqs: a pair whose
 * wavelength 2 pi / theta^(-2i/head_dim) is shorter than old_ctx /
 * high is left (1), one longer than old_ctx / low is slowed by factor,
 * and one between by 1 / ((1 - s) / factor + s), s = (old_ctx /
 * wavelength - low) / (high - low). out: [head_dim / 2]. -1 on values
 * out of range (factor and old_ctx > 0, high > low).
 */
int slora_rope_llama3_factors(float *out, int32_t head_dim, float theta,
    float factor, float low, float high, float old_ctx);

/* CUDA twin (kernels/slora_rope.cu): q and k are bf16 device memory (raw
 * bits), pos a device array of positions below the table's n_pos (the
 * caller's to ensure), table slora_rope_table()'s in device memory.
 * stream is a cudaStream_t. */
int slora_rope_cuda(uint16_t *q, int64_t ld_q, uint16_t *k, int64_t ld_k,
    const int32_t *pos, int64_t n_tok, int32_t n_heads, int32_t n_kv_heads,
    int32_t head_dim, const float *table, int layout, void *stream);

/* slora_rope_cuda and then slora_kv_store_cuda (slora_attention.h) in
 * one launch: the turned k rows and the v rows [n_tok] of ld_v go to
 * the page slots of ix's sequences (device arrays, ix->n_seqs > 0; the
 * rows are ix's, in order) as they are written back. -2 where the rows
 * do not allow 16-byte steps (head_dim a multiple of 16, rows and
 * strides 16-byte aligned): the caller makes the two calls instead.
 * d, unless NULL, holds fp32 LoRA deltas of the q|k|v rows (row stride
 * ld_d, q's at 0, k's at n_heads * head_dim, v's after them,
 * slora_lora_expand_delta_cuda): each q, k and v element is first
 * rounded to bf16(y + d), as the expand into y would have left it. */
int slora_rope_store_cuda(uint16_t *q, int64_t ld_q, uint16_t *k,
    int64_t ld_k, const uint16_t *v, int64_t ld_v, const int32_t *pos,
    int64_t n_tok, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim,
    const float *table, int layout, uint16_t *kv, int64_t page_elems,
    int32_t tokens_per_page, const slora_seq_index_t *ix, const float *d,
    int64_t ld_d, void *stream);

#endif /* SLORA_ROPE_H */
