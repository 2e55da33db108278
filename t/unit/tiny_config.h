/*
 * tiny_config.h: the model shape the model-less unit tests (scheduler,
 * pool, adapters, batches) size things for: a Llama of 2 layers, hidden
 * 64, 4 heads over 2 KV heads of 16, FFN 128, vocabulary 64, context
 * 256. One definition, so that a test's pages and adapter rows follow
 * from the same numbers as the others'. (tiny_model.h writes a model
 * file for the tests that run one.)
 */

#ifndef TINY_CONFIG_H
#define TINY_CONFIG_H


#include <string.h>

#include "slora_model.h"


static inline void
tiny_config(slora_model_config_t *cfg, slora_rope_e rope)
{
    memset(cfg, 0, sizeof(slora_model_config_t));
    strcpy(cfg->arch, "llama");
    cfg->n_layers = 2;
    cfg->hidden = 64;
    cfg->n_heads = 4;
    cfg->n_kv_heads = 2;
    cfg->head_dim = 16;
    cfg->ffn = 128;
    cfg->vocab = 64;
    cfg->max_ctx = 256;
    cfg->rope_theta = 10000;
    cfg->norm_eps = 1e-5f;
    cfg->rope = rope;
}


#endif /* TINY_CONFIG_H */
