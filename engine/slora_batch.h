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
#include "slora_sample.h"
#include "slora_score.h"


/* An adapter resident in the pool, as the kernels see it. Row offsets are
 * element offsets from the start of a layer's region of the arena
 * (slora_pool_layer_offset); the layout is the same in every layer. */
typedef struct {
    int32_t          rank;
    float            scale;                      /* lora_alpha / r */
    uint32_t         proj_mask;                  /* 1 << SLORA_PROJ_* */
    const int64_t   *a_rows[SLORA_PROJ_N];       /* [rank]: A is [rank, in] */
    const int64_t   *b_rows[SLORA_PROJ_N];       /* [rank]: B^T is
                                                    [rank, out] */
} slora_lora_t;


typedef struct {
    int32_t          n_tokens;      /* tokens of this sequence in the step */
    int32_t          pos;           /* position of its first token */
    int32_t          n_pages;
    const int32_t   *pages;         /* covers positions [0, pos + n_tokens) */
    int32_t          lora;          /* index into loras[], -1: base model */
    int32_t          logits_row;    /* -1: no logits; else the row of the
                                       first of its last n_rows tokens,
                                       the others in the rows after */
    int32_t          n_rows;        /* 1 (its last token), up to n_tokens
                                       (a prompt's log-probabilities);
                                       0 without logits */
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
    /* NULL, or [n_logits]: the backend writes each logits row's id here
     * and need not fill logits at all, so decoding copies one id a
     * sequence off a device: the argmax (slora_argmax.h), or with draws
     * (a backend whose `draws` is set) the draw of draws[row] when its
     * inv_temp > 0 (slora_sample.h) */
    int32_t                  *ids;
    const slora_draw_t       *draws;       /* NULL: every row greedy */
    /* NULL, or [n_logits] beside ids: rows whose whole logits the
     * backend writes into logits as well, for the engine to sample
     * itself (a penalty, log-probabilities); their ids are not read */
    const uint8_t            *host_rows;
    /* NULL, or [n_logits] beside ids (a backend whose `scores` is set):
     * rows whose log-softmax the backend works out itself (a prompt's
     * positions), scores[row] the log-probability of token
     * score_tok[row] and its score_k likeliest (slora_score.h); -1: not
     * such a row. Their logits and ids are not read. */
    const int32_t            *score_tok;
    int32_t                   score_k;
    slora_score_t            *scores;         /* [n_logits] */
} slora_batch_t;


/* What a backend derives from a batch once, before any compute. */
typedef struct {
    int32_t                   n_logits;    /* logits rows, every
                                              sequence's summed */
    int                       direct;      /* their rows are 0, 1, ...
                                              in token order */
    int32_t                   max_rank;    /* largest rank in use */
    uint32_t                  proj_mask;   /* 1 << SLORA_PROJ_* of the
                                              projections an adapter of
                                              the batch targets */
    int32_t                   max_ctx;     /* largest pos + n_tokens */
    int64_t                   dec_ctx;     /* pos + 1 of the sequences of
                                              one token, summed */
    int32_t                   max_q_len;   /* most tokens of one sequence */
    int32_t                   n_pages;     /* pages the sequences use */
} slora_batch_info_t;


/* The CSR indices of a step (slora_batch_index fills them): token rows
 * per sequence, positions, the pages each sequence reads; and the LoRA
 * segments: runs of consecutive sequences with the same adapter (the
 * scheduler groups them), so a segment's A and B rows are read once for
 * all its tokens. Per projection p, rank[p * n_segs + g] is segment g's
 * rank (0 where it runs the base model on p). */
typedef struct {
    int32_t                  *qo_indptr;   /* [n_seqs + 1] */
    int32_t                  *seq_pos;     /* [n_seqs] */
    int32_t                  *kv_indptr;   /* [n_seqs + 1] */
    int32_t                  *kv_indices;  /* [info.n_pages] */
    int32_t                  *pos;         /* [n_tokens] */
    int32_t                  *seg_indptr;  /* [n_seqs + 1]: token rows */
    int32_t                  *seg_lora;    /* [n_seqs]: index in loras[] */
    int32_t                  *rank;        /* [SLORA_PROJ_N * n_seqs] */
    float                    *scale;       /* [n_seqs] */
    int32_t                   n_segs;      /* filled */
} slora_batch_index_t;


/* Checks everything a batch could get wrong against an arena of
 * arena_elems elements whose layer regions start at layer_off[]; who
 * names the backend in the error. Fills info. The arena may be one of
 * slices parts of the pool (a tensor-parallel rank's, slora_pool.h):
 * then layer_off, arena_elems and page_elems are the part's, while cfg
 * is the whole model's and the adapters' row offsets are the pool's, a
 * row of width W at offset off lying at off / slices in the part, W /
 * slices wide. slices 1: no tensor parallelism. */
int slora_batch_check(const slora_batch_t *bt, const slora_model_config_t *cfg,
    int32_t slices, const int64_t *layer_off, int64_t arena_elems,
    int64_t page_elems, int32_t tokens_per_page, const char *who,
    slora_batch_info_t *info, slora_err_t *err);

/* Fills ix for a batch slora_batch_check accepted; a LoRA segment takes
 * at most max_seg_tokens tokens (a run longer than that is cut; 0: no
 * limit), so a backend can keep decode segments short enough for its
 * decode kernels. */
void slora_batch_index(const slora_batch_t *bt, int32_t tokens_per_page,
    int32_t max_seg_tokens, slora_batch_index_t *ix);


#endif /* SLORA_BATCH_H */
