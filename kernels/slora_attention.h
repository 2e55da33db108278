/*
 * slora_attention.h: causal, grouped-query attention over a paged KV
 * cache, and the store that fills it.
 *
 * Layout (the pool's, slora_pool.h): kv points at one layer's region of
 * the arena; page p starts at kv + p * page_elems and holds
 * K[tokens_per_page][kv_dim] then V[tokens_per_page][kv_dim], with
 * kv_dim = n_kv_heads * head_dim. A sequence's position t lives in page
 * kv_indices[kv_indptr[s] + t / tokens_per_page], slot t % tokens_per_page.
 *
 * The one idea: a batch is described by CSR-style index arrays (the
 * query rows of sequence s are [qo_indptr[s], qo_indptr[s + 1]), its
 * pages are kv_indices[kv_indptr[s] .. kv_indptr[s + 1])), so prefill
 * chunks and decode tokens of many sequences go through one launch, and
 * a device twin can take the very same arrays.
 */

#ifndef SLORA_ATTENTION_H
#define SLORA_ATTENTION_H


#include <stddef.h>
#include <stdint.h>


typedef struct {
    float          *kv;                 /* one layer's region of the arena */
    int64_t         page_elems;
    int32_t         tokens_per_page;
    int32_t         n_kv_heads;
    int32_t         head_dim;
} slora_paged_kv_t;


typedef struct {
    int32_t         n_seqs;
    const int32_t  *qo_indptr;          /* [n_seqs + 1] query/token rows */
    const int32_t  *seq_pos;            /* [n_seqs] position of first row */
    const int32_t  *kv_indptr;          /* [n_seqs + 1] into kv_indices */
    const int32_t  *kv_indices;         /* page ids */
    const int32_t  *dec_items;          /* the decode kernel's work list */
    const int32_t  *dec_first;          /* (slora_attention_decode_items) */
} slora_seq_index_t;


/* Writes rows k[r,:] and v[r,:] (kv_dim each) of every sequence's new
 * tokens into the page slots of positions seq_pos[s] + i. The caller
 * guarantees each sequence's pages cover those positions and that page
 * ids are inside the arena. */
int slora_kv_store(const slora_paged_kv_t *c, const slora_seq_index_t *ix,
    const float *k, int64_t ld_k, const float *v, int64_t ld_v);

/* Bytes of workspace slora_attention needs: a few rows of scores per
 * share (nth of them) for contexts up to max_ctx positions. */
size_t slora_attention_workspace_size(int32_t max_ctx, int nth);

/* out[r, h*head_dim ..] = softmax(q_h . K^T / sqrt(head_dim)) V over
 * positions 0 .. pos(r) of r's sequence, for the n_heads query heads of
 * each row; head h reads kv head h / (n_heads / n_kv_heads). The keys
 * and values of the new rows must already be stored. Work is cut into
 * units of a few consecutive query rows of one head; a call runs those of
 * share ith of nth (units ith, ith + nth, ...) in slice ith of work, so
 * the shares of one call may run at once on different threads. A
 * single-threaded caller passes 0, 1. */
int slora_attention(float *out, int64_t ld_out, const float *q, int64_t ld_q,
    int32_t n_heads, const slora_paged_kv_t *c, const slora_seq_index_t *ix,
    void *work, size_t work_size, int ith, int nth);

/* The same on the given instruction set (SLORA_QISA_*, slora_qmatmul.h);
 * every supported one gives the same bits. -1 where isa is not
 * supported. */
int slora_attention_isa(float *out, int64_t ld_out, const float *q,
    int64_t ld_q, int32_t n_heads, const slora_paged_kv_t *c,
    const slora_seq_index_t *ix, void *work, size_t work_size, int ith,
    int nth, int isa);


/*
 * CUDA twins (kernels/slora_attention.cu). kv is the layer's region of a
 * bf16 arena with the page layout above, q, k, v and out are bf16 rows
 * (raw bits); ix itself and ix->n_seqs are host memory, the arrays it
 * points to device memory. max_q_len >= every sequence's row count (the
 * launcher cannot read qo_indptr). head_dim is a multiple of 8 and at
 * most 256, page_elems, the strides and pointers keep 16-byte alignment.
 * One block serves a tile of query rows and the query heads that share
 * one kv head, so K and V are read once per tile whatever the group
 * size. stream is a cudaStream_t. They never allocate.
 */
int slora_kv_store_cuda(uint16_t *kv, int64_t page_elems,
    int32_t tokens_per_page, int32_t n_kv_heads, int32_t head_dim,
    const slora_seq_index_t *ix, int32_t max_q_len, const uint16_t *k,
    int64_t ld_k, const uint16_t *v, int64_t ld_v, void *stream);
int slora_attention_cuda(uint16_t *out, int64_t ld_out, const uint16_t *q,
    int64_t ld_q, int32_t n_heads, const uint16_t *kv, int64_t page_elems,
    int32_t tokens_per_page, int32_t n_kv_heads, int32_t head_dim,
    const slora_seq_index_t *ix, int32_t max_q_len, void *stream);

/* The same for the sequences of more than one row only (prefill chunks):
 * a step that mixes them with decode rows sends those to the decode
 * kernel below. */
int slora_attention_prefill_cuda(uint16_t *out, int64_t ld_out,
    const uint16_t *q, int64_t ld_q, int32_t n_heads, const uint16_t *kv,
    int64_t page_elems, int32_t tokens_per_page, int32_t n_kv_heads,
    int32_t head_dim, const slora_seq_index_t *ix, int32_t max_q_len,
    void *stream);

/*
 * Decode rows (kernels/slora_attention_decode.cu): the sequences of one
 * row, at position seq_pos[s] below max_ctx; sequences of more rows are
 * left alone. dec_ctx: the decode rows' contexts (seq_pos[s] + 1)
 * summed, or 0 where the caller does not know it.
 * The contexts are split over blocks (flash-decoding) as the shape says
 * (slora_attention_decode_shape), and the blocks take the splits from a
 * work list in the index (ix->dec_items, ix->dec_first) that
 * slora_attention_decode_items() writes in host memory for the caller
 * to copy. The splits' partial states need
 * slora_attention_decode_work_size() bytes of device work (0: no
 * sequence is split, work may be NULL). Takes query groups of 1 to 16
 * heads per kv head at head_dim 64 and 128 (groups of 3 and more on
 * tensor cores), and of 1, 2, 3, 4 or 8 at 256: other shapes return -2
 * and go to slora_attention_cuda. Same layout rules otherwise.
 */
typedef struct {
    int32_t         chunk;              /* positions of one split */
    int32_t         n_splits;           /* of the longest context */
    int32_t         n_items;            /* the work list's length */
} slora_dec_shape_t;

size_t slora_attention_decode_work_size(int32_t n_seqs, int32_t n_heads,
    int32_t n_kv_heads, int32_t head_dim, int32_t max_ctx, int64_t dec_ctx);
/* The split the decode kernel will use (what a captured graph of a
 * decode step depends on); zeros for a shape it does not take. */
void slora_attention_decode_shape(int32_t n_seqs, int32_t n_heads,
    int32_t n_kv_heads, int32_t head_dim, int32_t max_ctx, int64_t dec_ctx,
    slora_dec_shape_t *sh);
/* The work list of a step of that shape, from the host's qo_indptr,
 * seq_pos and kv_indptr: items[4 sh->n_items], each a split's query
 * row, first page (into kv_indices), first position (-1 where it is the
 * sequence's whole context) and end, -1s past the last (the array
 * 16-byte aligned on the device); first[n_seqs], each decode row's
 * first item (-1 for other rows). Returns the items written, -1 where
 * they would be more than sh->n_items (a dec_ctx short of the sum). */
int32_t slora_attention_decode_items(const slora_dec_shape_t *sh,
    int32_t n_seqs, const int32_t *qo_indptr, const int32_t *seq_pos,
    const int32_t *kv_indptr, int32_t *items, int32_t *first);
int slora_attention_decode_cuda(uint16_t *out, int64_t ld_out,
    const uint16_t *q, int64_t ld_q, int32_t n_heads, const uint16_t *kv,
    int64_t page_elems, int32_t tokens_per_page, int32_t n_kv_heads,
    int32_t head_dim, const slora_seq_index_t *ix, int32_t max_ctx,
    int64_t dec_ctx, void *work, size_t work_size, void *stream);

#endif /* SLORA_ATTENTION_H */
