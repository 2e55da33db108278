/*
 * slora_mkmodel.h: writes a tiny Llama-family model with random weights,
 * as a GGUF file or as a Hugging Face folder, for tests and demos
 * (`slora mkmodel`).
 *
 * The one idea: the weights depend only on the seed and the shape, never
 * on the format. They are drawn in HF order; the GGUF writer permutes q
 * and k rows as llama.cpp's converter does for the llama architecture, so
 * both files hold the same model.
 */

#ifndef SLORA_MKMODEL_H
#define SLORA_MKMODEL_H


#include "slora_tensor.h"


typedef struct {
    int            gguf;            /* 1: GGUF file, 0: safetensors folder */
    uint64_t       seed;
    int32_t        n_layers;
    int32_t        hidden;
    int32_t        n_heads;
    int32_t        n_kv_heads;
    int32_t        head_dim;        /* 0: hidden / n_heads; else written
                                       as the model's own (key_length) */
    int32_t        ffn;
    int32_t        vocab;           /* 0: the tokenizer's, else required */
    int32_t        max_ctx;
    int            qwen2;           /* arch qwen2 (q/k/v biases), else llama */
    int            qwen3;           /* arch qwen3 (q and k heads RMS-normed,
                                       the norms' weights about 1) */
    int            tied;
    int32_t        rope_llama3;     /* 0, or Llama 3.1's RoPE scaling
                                       (factor 8, low 1, high 4) from this
                                       original context (Llama 3.1's
                                       8192): GGUF rope_freqs.weight,
                                       config.json rope_scaling */
    slora_dtype_e  dtype;           /* SLORA_DT_F32 or SLORA_DT_F16 */
    const char    *tokenizer;       /* GGUF to copy tokenizer.* from, or NULL */
    const char    *chat_template;   /* a Jinja chat template's text for
                                       tokenizer.chat_template (the
                                       tokenizer's replaced), or NULL */
} slora_mkmodel_conf_t;


/* Fills conf with the defaults: GGUF, seed 1, 2 layers, hidden 64, 4
 * heads, 2 kv heads, ffn 128, vocab 256, context 256, llama, untied, f32. */
void slora_mkmodel_defaults(slora_mkmodel_conf_t *conf);

/* Writes the model to out: a .gguf file, or a folder (created if needed)
 * with config.json and model.safetensors. */
int slora_mkmodel(const slora_mkmodel_conf_t *conf, const char *out,
    slora_err_t *err);


#endif /* SLORA_MKMODEL_H */
