/*
 * tiny_model.h: the tiny random GGUF model that the engine-level unit
 * tests run on (2 layers, hidden 64, vocabulary 96), written by
 * slora_mkmodel into a test's temporary folder. One definition for every
 * test that needs it; a failure bails out, since nothing can be tested
 * without it.
 */

#ifndef TINY_MODEL_H
#define TINY_MODEL_H


#include <stdio.h>

#include "tap.h"
#include "slora_mkmodel.h"
#include "slora_model.h"


/* dir/tiny.gguf from seed with a context of max_ctx; its path into
 * path[len] and its configuration into cfg. */
static void
tiny_model_make(const char *dir, uint64_t seed, int32_t max_ctx, char *path,
    size_t len, slora_model_config_t *cfg)
{
    slora_err_t           err;
    slora_model_t        *m;
    slora_mkmodel_conf_t  mc;

    slora_mkmodel_defaults(&mc);
    mc.seed = seed;
    mc.vocab = 96;
    mc.max_ctx = max_ctx;
    snprintf(path, len, "%s/tiny.gguf", dir);

    if (slora_mkmodel(&mc, path, &err) != SLORA_OK) {
        BAIL_OUT("mkmodel: %s", err.msg);
    }

    m = slora_model_load(path, &err);
    if (m == NULL) {
        BAIL_OUT("load: %s", err.msg);
    }

    *cfg = m->cfg;
    slora_model_free(m);
}


#endif /* TINY_MODEL_H */
