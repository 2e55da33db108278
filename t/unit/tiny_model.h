/*
 * tiny_model.h: the tiny random GGUF model that the engine-level unit
 * tests run on (2 layers, hidden 64, vocabulary 96), written by
 * slora_mkmodel into a test's temporary folder, and what those tests do
 * with it: an engine up as a check, random adapter folders. One
 * definition for every test that needs them; a failure to make the
 * model or an adapter bails out, since nothing can be tested without it.
 */

#ifndef TINY_MODEL_H
#define TINY_MODEL_H


#include <stdio.h>

#include "tap.h"
#include "slora_mkmodel.h"
#include "slora_model.h"
#include "slora_engine.h"
#include "slora_adapter.h"


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


/* An engine of conf, checked as what (NULL: failed, and said why). */
static inline slora_engine_t *
tiny_engine_up(const slora_engine_conf_t *conf, const char *what)
{
    slora_err_t      err;
    slora_engine_t  *e;

    e = slora_engine_init(conf, &err);

    if (!ok(e != NULL, "%s", what)) {
        diag("%s", err.msg);
    }

    return e;
}


/* root/name: a random PEFT adapter for the model of cfg. */
static inline void
tiny_adapter_make(const slora_model_config_t *cfg, const char *root,
    const char *name, int32_t rank, uint32_t mask, uint64_t seed, float scale)
{
    char                 dir[500];
    slora_err_t          err;
    slora_adapter_gen_t  gen;

    gen.rank = rank;
    gen.alpha = (float) rank;
    gen.proj_mask = mask;
    gen.seed = seed;
    gen.scale = scale;

    snprintf(dir, sizeof(dir), "%s/%s", root, name);
    if (slora_adapter_write_random(dir, cfg, &gen, &err) != SLORA_OK) {
        BAIL_OUT("%s", err.msg);
    }
}


/* How many adapters the list shows in tier; *first_n: how many of the
 * list's first ones in a row are. */
static inline int32_t
tiny_count_tier(slora_engine_t *e, const char *tier, int32_t *first_n)
{
    int32_t                      i, n, c;
    const slora_adapter_info_t  *list;

    n = slora_engine_adapter_list(e, NULL, 0, &list);
    c = 0;
    *first_n = 0;

    for (i = 0; i < n; i++) {
        if (strcmp(list[i].tier, tier) == 0) {
            c++;
            *first_n += *first_n == i;
        }
    }

    return c;
}


#endif /* TINY_MODEL_H */
