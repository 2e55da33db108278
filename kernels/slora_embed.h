/*
 * slora_embed.h: the token embedding lookup.
 *
 * The one idea: an id outside the table is refused before any row is
 * copied, so a hostile token id cannot read past the weights.
 */

#ifndef SLORA_EMBED_H
#define SLORA_EMBED_H


#include <stdint.h>


/* out[t,:] = table[ids[t],:] for t < n; table is [vocab, dim] dense.
 * Returns -1 when any id is outside [0, vocab). */
int slora_embed(float *out, int64_t ld_out, const float *table,
    int64_t vocab, int64_t dim, const int32_t *ids, int64_t n);


/* CUDA twin (kernels/slora_embed.cu): table and out are bf16 device
 * memory (raw bits), ids a device array; dim and ld_out are multiples of
 * 8. The launcher cannot read ids, so the caller validates them on the
 * host first; on the device an id outside the table still copies
 * nothing: its row is zeroed and *bad (device memory, may be NULL) is
 * set to 1. stream is a cudaStream_t. */
int slora_embed_cuda(uint16_t *out, int64_t ld_out, const uint16_t *table,
    int64_t vocab, int64_t dim, const int32_t *ids, int64_t n, int32_t *bad,
    void *stream);

#endif /* SLORA_EMBED_H */
