/*
 * slora_model_keys.c: the names a random model's tensors go by
 * (engine/slora_model_random.c): each tensor's key, which with the
 * model's seed and an element's index makes its value
 * (kernels/slora_random.h), and its scale.
 *
 * The one idea: the host that fills a model and a backend that makes
 * its weights on a device (the CUDA backend, which carries its own copy
 * of this file) ask the same function, so they make the same model.
 */

#include <math.h>

#include "slora_model.h"


void
slora_model_random_tensor(const slora_model_config_t *c, int32_t l,
    slora_random_tensor_e t, uint64_t *key, float *amp)
{
    int32_t  in;

    /* the order the tensors were first laid out in: 1, 2, 3 for the
     * global ones, then nine a layer */
    *key = l < 0 ? (uint64_t) t + 1
                 : 4 + (uint64_t) l * 9 + (uint64_t) (t - SLORA_RT_ATTN_NORM);

    switch (t) {
    case SLORA_RT_OUT_NORM:
    case SLORA_RT_ATTN_NORM:
    case SLORA_RT_FFN_NORM:
        in = 0;
        break;
    case SLORA_RT_WO:
        in = c->n_heads * c->head_dim;
        break;
    case SLORA_RT_DOWN:
        in = c->ffn;
        break;
    default:
        in = c->hidden;
    }

    *amp = in > 0 ? 1.0f / sqrtf((float) in) : 0.0f;
}
