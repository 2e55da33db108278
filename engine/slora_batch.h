/*
 * slora_batch.h: one engine step as the scheduler hands it to a backend.
 * Sequences follow each other in the token array; each names the KV pages
 * that cover its positions and the LoRA adapter (if any) it runs with.
 * Prefill chunks and decode tokens mix freely, as do adapters of
 * different ranks and the bare base model: the backend's LoRA kernels
 * take the whole mix in one launch per projection.
 */

#ifndef SLORA_BATCH_H
#define SLORA_BATCH_H


#include "slora_core.h"
#include "slora_model.h"


/* An adapter resident in the pool, as the kernels see it. Row offsets are
 * element offsets from the start of a layer's region of the arena
 * (slora_pool_layer_offset); the layout is the same in every layer. */
typedef struct {
    int32_t          rank;
    float            scale;                      /* lora_alpha / r */
    uint32_t         proj_mask;                  /* 1 << SLORA_PROJ_* */
    const int64_t   *a_rows[SLORA_PROJ_N];       /* [rank]: A is [rank, in] */
    const int64_t   *b_rows[SLORA_PROJ_N];       /* [rank]: B^T is [rank, out] */
} slora_lora_t;


typedef struct {
    int32_t          n_tokens;      /* tokens of this sequence in the step */
    int32_t          pos;           /* position of its first token */
    int32_t          n_pages;
    const int32_t   *pages;         /* covers positions [0, pos + n_tokens) */
    int32_t          lora;          /* index into loras[], -1: base model */
    int32_t          logits_row;    /* row in logits for its last token, -1 */
} slora_batch_seq_t;


typedef struct {
    int32_t                   n_seqs;
    int32_t                   n_tokens;
    const int32_t            *tokens;      /* [n_tokens], seq after seq */
    const slora_batch_seq_t  *seqs;        /* [n_seqs] */
    int32_t                   n_loras;
    const slora_lora_t       *loras;       /* [n_loras] */
    int32_t                   n_logits;
    float                    *logits;      /* [n_logits, vocab] */
} slora_batch_t;


#endif /* SLORA_BATCH_H */
