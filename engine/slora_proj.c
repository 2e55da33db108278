/*
 * slora_proj.c: the shapes and names of the seven projections LoRA may
 * target (slora_proj_e in slora_model.h), from a model's configuration.
 *
 * The one idea: these are pure functions of the configuration, kept
 * apart from the model loader so that the CUDA backend's library can
 * carry them without the file formats.
 */

#include "slora_model.h"


int32_t
slora_proj_in_dim(const slora_model_config_t *c, slora_proj_e p)
{
    switch (p) {
    case SLORA_PROJ_O:
        return c->n_heads * c->head_dim;
    case SLORA_PROJ_DOWN:
        return c->ffn;
    default:
        return c->hidden;
    }
}


int32_t
slora_proj_out_dim(const slora_model_config_t *c, slora_proj_e p)
{
    switch (p) {
    case SLORA_PROJ_Q:
        return c->n_heads * c->head_dim;
    case SLORA_PROJ_K:
    case SLORA_PROJ_V:
        return c->n_kv_heads * c->head_dim;
    case SLORA_PROJ_GATE:
    case SLORA_PROJ_UP:
        return c->ffn;
    default:
        return c->hidden;
    }
}


/*
 * Under tensor parallelism (Megatron) o and down are split by the rows of
 * their weights' input side: each GPU holds part of the input and makes
 * a partial output that an all-reduce sums. The other five are split by
 * output. So LoRA's side of width hidden is the one a GPU holds a slice
 * of: A's input for q, k, v, gate and up, B's output for o and down.
 */

int
slora_proj_row_split(slora_proj_e p)
{
    return p == SLORA_PROJ_O || p == SLORA_PROJ_DOWN;
}


const char *
slora_proj_name(slora_proj_e p)
{
    static const char  *names[SLORA_PROJ_N] = {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
        "down_proj"
    };

    if ((unsigned) p >= SLORA_PROJ_N) {
        return "unknown";
    }

    return names[p];
}

