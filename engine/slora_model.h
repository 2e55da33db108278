/*
 * slora_model.h: a Llama-family model in host memory: its configuration,
 * its weights dequantized to f32, and the loaders that build it from a
 * GGUF file or a Hugging Face safetensors folder.
 *
 * Shaped like llama2.c's run.c: a config struct and a weights struct whose
 * every pointer carries its shape. Linear weights are row-major
 * [out, in], so y = x W^T. The forward pass itself lives with the backend
 * (slora_backend.h); this file only owns the numbers.
 *
 * RoPE layout: GGUF files of the llama architecture store q and k rows
 * permuted so that rotated pairs are adjacent (SLORA_ROPE_NORM); HF
 * checkpoints and GGUF qwen2 rotate the two halves of each head
 * (SLORA_ROPE_NEOX). LoRA B matrices for q and k, trained against HF row
 * order, must be permuted the same way before use on a NORM model:
 * slora_model_permute_qk_rows() does it.
 */

#ifndef SLORA_MODEL_H
#define SLORA_MODEL_H


#include "slora_core.h"


typedef enum {
    SLORA_ROPE_NORM = 0,        /* pairs (2i, 2i+1) */
    SLORA_ROPE_NEOX             /* pairs (i, i + head_dim/2) */
} slora_rope_e;


/* The seven projections LoRA may target, in this fixed order. */
typedef enum {
    SLORA_PROJ_Q = 0,
    SLORA_PROJ_K,
    SLORA_PROJ_V,
    SLORA_PROJ_O,
    SLORA_PROJ_GATE,
    SLORA_PROJ_UP,
    SLORA_PROJ_DOWN,
    SLORA_PROJ_N
} slora_proj_e;


typedef struct {
    char          arch[32];         /* "llama", "qwen2", "qwen3" */
    char          name[128];        /* general.name or folder name */
    int32_t       n_layers;
    int32_t       hidden;           /* dim */
    int32_t       n_heads;
    int32_t       n_kv_heads;
    int32_t       head_dim;         /* the model's (GGUF key_length,
                                       HF head_dim), else hidden /
                                       n_heads */
    int32_t       ffn;              /* intermediate size */
    int32_t       vocab;
    int32_t       max_ctx;          /* context length from metadata */
    float         rope_theta;
    float         norm_eps;
    slora_rope_e  rope;
    int           tied_embeddings;  /* output uses tok_embd */
    int           qkv_bias;         /* Qwen2 */
    int           qk_norm;          /* Qwen3: q and k heads RMS-normed
                                       before RoPE */
} slora_model_config_t;


typedef struct {
    float        *attn_norm;        /* [hidden] */
    float        *wq;               /* [n_heads * head_dim, hidden] */
    float        *wk;               /* [n_kv_heads * head_dim, hidden] */
    float        *wv;               /* [n_kv_heads * head_dim, hidden] */
    float        *wo;               /* [hidden, n_heads * head_dim] */
    float        *bq;               /* [n_heads * head_dim] or NULL */
    float        *bk;               /* [n_kv_heads * head_dim] or NULL */
    float        *bv;               /* [n_kv_heads * head_dim] or NULL */
    float        *q_norm;           /* [head_dim] or NULL: each head of
                                       q RMS-normed (Qwen3) */
    float        *k_norm;           /* [head_dim] or NULL: of k */
    float        *ffn_norm;         /* [hidden] */
    float        *w_gate;           /* [ffn, hidden] */
    float        *w_up;             /* [ffn, hidden] */
    float        *w_down;           /* [hidden, ffn] */
} slora_layer_weights_t;


typedef struct {
    float                  *tok_embd;   /* [vocab, hidden] */
    float                  *out_norm;   /* [hidden] */
    float                  *output;     /* [vocab, hidden]; == tok_embd
                                           if tied */
    slora_layer_weights_t  *layers;     /* [n_layers] */
    float                  *rope_freqs; /* [head_dim / 2] divisors of the
                                           pairs' RoPE frequencies (Llama
                                           3.1's rope_freqs), or NULL */
} slora_model_weights_t;


typedef struct slora_gguf_s  slora_gguf_t;


#define SLORA_MODEL_PATH_LEN  1024     /* a model's path, NUL included */


typedef struct {
    slora_model_config_t    cfg;
    slora_model_weights_t   w;
    char                    path[SLORA_MODEL_PATH_LEN];
    slora_gguf_t           *gguf;       /* kept open for the tokenizer, or
                                           NULL */
    void                   *mem;        /* one allocation behind all weights */
    size_t                  mem_size;
    /* a random model whose weights were left for the backend to make
     * (slora_model_random_deferred): w holds no tensor, and each is
     * slora_random_value of random_seed and its key */
    int                     random_deferred;
    uint64_t                random_seed;
} slora_model_t;


/* A random model's tensors: the global ones (layer -1), then each
 * layer's (slora_model_random_tensor gives their keys and scales). */
typedef enum {
    SLORA_RT_TOK_EMBD = 0,
    SLORA_RT_OUT_NORM,
    SLORA_RT_OUTPUT,
    SLORA_RT_ATTN_NORM,
    SLORA_RT_WQ,
    SLORA_RT_WK,
    SLORA_RT_WV,
    SLORA_RT_WO,
    SLORA_RT_FFN_NORM,
    SLORA_RT_GATE,
    SLORA_RT_UP,
    SLORA_RT_DOWN
} slora_random_tensor_e;


/* Loads a GGUF file or an HF folder (config.json + *.safetensors),
 * whichever path names. Weights are dequantized to f32. */
slora_model_t *slora_model_load(const char *path, slora_err_t *err);
void slora_model_free(slora_model_t *m);

/* "random:<shape>[,key=value...]": a model with random weights and no
 * tokenizer (slora_model_random.c says which shapes and keys);
 * slora_model_load takes such specs too. */
int slora_model_is_random(const char *path);
slora_model_t *slora_model_random(const char *spec, slora_err_t *err);
/* The configuration of such a spec, without making its weights. */
int slora_model_random_config(const char *spec, slora_model_config_t *cfg,
    slora_err_t *err);
/* The configuration of the model path names: a random spec's without
 * making its weights, a file's by loading it. */
int slora_model_config(const char *path, slora_model_config_t *cfg,
    slora_err_t *err);
/* Such a model with no weights in host memory, for a backend that makes
 * them where they are used (random_deferred). */
slora_model_t *slora_model_random_deferred(const char *spec,
    slora_err_t *err);
/* Tensor t's key and scale (kernels/slora_random.h); l is the layer, -1
 * for the global tensors. */
void slora_model_random_tensor(const slora_model_config_t *c, int32_t l,
    slora_random_tensor_e t, uint64_t *key, float *amp);

/* Input and output widths of projection p. */
int32_t slora_proj_in_dim(const slora_model_config_t *c, slora_proj_e p);
int32_t slora_proj_out_dim(const slora_model_config_t *c, slora_proj_e p);
const char *slora_proj_name(slora_proj_e p);      /* "q_proj", ... */
/* 1 for o and down, whose input tensor parallelism splits (slora_proj.c) */
int slora_proj_row_split(slora_proj_e p);

/* Permutes rows of a [n_head * head_dim, cols] matrix from HF order to
 * the GGUF NORM order (llama.cpp's convert permute), in place. */
int slora_model_permute_qk_rows(float *w, int32_t n_head, int32_t head_dim,
    int64_t cols);


#endif /* SLORA_MODEL_H */
