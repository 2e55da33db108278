/*
 * slora_mkmodel.c: the tiny random model generator behind `slora mkmodel`.
 * Weights are N(0, 0.02) from a seeded splitmix64 stream through
 * Box-Muller, norms are ones; the file is written by our own GGUF or
 * safetensors writer.
 *
 * The one idea: tensors are drawn in one fixed order (HF names, layer by
 * layer) whatever the output format, and only the output stage differs:
 * names, metadata, and for GGUF llama the q/k row permutation. Loading
 * either file therefore gives the same numbers, up to that permutation.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "slora_mkmodel.h"
#include "slora_model.h"
#include "slora_gguf.h"
#include "slora_safetensors.h"
#include "slora_rope.h"


#define SLORA_MK_STD  0.02


typedef struct {
    uint64_t                     state;
    int                          have_spare;
    double                       spare;
} slora_mk_rng_t;


typedef struct {
    const slora_mkmodel_conf_t  *conf;
    slora_gguf_writer_t         *gw;
    slora_safetensors_writer_t  *sw;
    slora_mk_rng_t               rng;
    float                       *buf;
    uint16_t                    *half;
    int32_t                      head_dim;
} slora_mk_t;


/* One tensor of the model: HF name, GGUF name, its kind of values. */
typedef enum {
    SLORA_MK_RANDOM = 0,
    SLORA_MK_ONES,
    SLORA_MK_NEAR_ONE,              /* 1 + N(0, 0.25): Qwen3's head norms */
    SLORA_MK_PERMUTE_Q,             /* random, GGUF llama permutes rows */
    SLORA_MK_PERMUTE_K
} slora_mk_kind_e;


static uint64_t slora_mk_next(slora_mk_rng_t *r);
static double slora_mk_normal(slora_mk_rng_t *r);
static int slora_mk_tensor(slora_mk_t *mk, const char *hf, const char *gg,
    int32_t layer, slora_mk_kind_e kind, int64_t rows, int64_t cols,
    slora_err_t *err);
static int slora_mk_gguf_meta(slora_mk_t *mk, slora_err_t *err);
static int slora_mk_rope_scaling(cJSON *root, int32_t old_ctx);
static int slora_mk_config_json(const slora_mkmodel_conf_t *c,
    const char *dir, slora_err_t *err);
static int slora_mk_check(slora_mkmodel_conf_t *c, slora_gguf_t **tok,
    slora_err_t *err);


void
slora_mkmodel_defaults(slora_mkmodel_conf_t *conf)
{
    memset(conf, 0, sizeof(slora_mkmodel_conf_t));

    conf->gguf = 1;
    conf->seed = 1;
    conf->n_layers = 2;
    conf->hidden = 64;
    conf->n_heads = 4;
    conf->n_kv_heads = 2;
    conf->ffn = 128;
    conf->vocab = 256;
    conf->max_ctx = 256;
    conf->dtype = SLORA_DT_F32;
}


int
slora_mkmodel(const slora_mkmodel_conf_t *conf, const char *out,
    slora_err_t *err)
{
    int                    rc;
    char                   path[1280];
    size_t                 max, len;
    int32_t                l, q, kv, h, f;
    int64_t                i, dims[1];
    const char            *key;
    slora_mk_t             mk;
    slora_gguf_t          *tok;
    slora_mkmodel_conf_t   c;

    c = *conf;
    tok = NULL;

    if (slora_mk_check(&c, &tok, err) != SLORA_OK) {
        slora_gguf_close(tok);
        return SLORA_ERROR;
    }

    memset(&mk, 0, sizeof(mk));
    mk.conf = &c;
    mk.rng.state = c.seed;
    mk.head_dim = c.head_dim != 0 ? c.head_dim : c.hidden / c.n_heads;

    h = c.hidden;
    f = c.ffn;
    q = c.n_heads * mk.head_dim;
    kv = c.n_kv_heads * mk.head_dim;

    max = (size_t) c.vocab * (size_t) h;
    if ((size_t) f * (size_t) h > max) {
        max = (size_t) f * (size_t) h;
    }
    if ((size_t) q * (size_t) h > max) {
        max = (size_t) q * (size_t) h;
    }

    mk.buf = malloc(max * sizeof(float));
    mk.half = malloc(max * sizeof(uint16_t));

    if (c.gguf) {
        mk.gw = slora_gguf_writer_new();

    } else {
        mk.sw = slora_safetensors_writer_new();
    }

    rc = SLORA_ERROR;

    if (mk.buf == NULL || mk.half == NULL
        || (mk.gw == NULL && mk.sw == NULL))
    {
        slora_err_set(err, SLORA_ERROR, "mkmodel: out of memory");
        goto done;
    }

    if (c.gguf && slora_mk_gguf_meta(&mk, err) != SLORA_OK) {
        goto done;
    }

    /* copy the tokenizer once the model keys are in, as llama.cpp's
     * converter orders them */

    if (tok != NULL) {
        for (i = 0; i < slora_gguf_n_kv(tok); i++) {
            key = slora_gguf_kv_key(tok, i, &len);

            if (len > 10 && memcmp(key, "tokenizer.", 10) == 0
                && !(c.chat_template != NULL
                     && len == sizeof("tokenizer.chat_template") - 1
                     && memcmp(key, "tokenizer.chat_template", len) == 0)
                && slora_gguf_writer_copy_kv(mk.gw, tok, i, err) != SLORA_OK)
            {
                goto done;
            }
        }
    }

    if (c.chat_template != NULL
        && slora_gguf_writer_str(mk.gw, "tokenizer.chat_template",
                                 c.chat_template, err) != SLORA_OK)
    {
        goto done;
    }

    /* Llama 3.1's frequency divisors, first, as convert_hf_to_gguf.py's
     * generate_extra_tensors() puts them */
    if (c.rope_llama3 && c.gguf) {
        dims[0] = mk.head_dim / 2;

        if (slora_rope_llama3_factors(mk.buf, mk.head_dim, 10000.0f, 8.0f,
                                      1.0f, 4.0f, (float) c.rope_llama3)
            != 0
            || slora_gguf_writer_tensor(mk.gw, "rope_freqs.weight",
                                        SLORA_DT_F32, 1, dims, mk.buf, err)
               != SLORA_OK)
        {
            goto done;
        }
    }

    if (slora_mk_tensor(&mk, "model.embed_tokens.weight", "token_embd.weight",
                        -1, SLORA_MK_RANDOM, c.vocab, h, err) != SLORA_OK)
    {
        goto done;
    }

    for (l = 0; l < c.n_layers; l++) {
        if (slora_mk_tensor(&mk, "input_layernorm.weight", "attn_norm.weight",
                            l, SLORA_MK_ONES, h, 0, err) != SLORA_OK
            || slora_mk_tensor(&mk, "self_attn.q_proj.weight",
                               "attn_q.weight", l, SLORA_MK_PERMUTE_Q, q, h,
                               err) != SLORA_OK
            || slora_mk_tensor(&mk, "self_attn.k_proj.weight",
                               "attn_k.weight", l, SLORA_MK_PERMUTE_K, kv, h,
                               err) != SLORA_OK
            || slora_mk_tensor(&mk, "self_attn.v_proj.weight",
                               "attn_v.weight", l, SLORA_MK_RANDOM, kv, h,
                               err) != SLORA_OK
            || slora_mk_tensor(&mk, "self_attn.o_proj.weight",
                               "attn_output.weight", l, SLORA_MK_RANDOM, h, q,
                               err) != SLORA_OK)
        {
            goto done;
        }

        if (c.qwen2
            && (slora_mk_tensor(&mk, "self_attn.q_proj.bias", "attn_q.bias",
                                l, SLORA_MK_RANDOM, q, 0, err) != SLORA_OK
                || slora_mk_tensor(&mk, "self_attn.k_proj.bias",
                                   "attn_k.bias", l, SLORA_MK_RANDOM, kv, 0,
                                   err) != SLORA_OK
                || slora_mk_tensor(&mk, "self_attn.v_proj.bias",
                                   "attn_v.bias", l, SLORA_MK_RANDOM, kv, 0,
                                   err) != SLORA_OK))
        {
            goto done;
        }

        if (c.qwen3
            && (slora_mk_tensor(&mk, "self_attn.q_norm.weight",
                                "attn_q_norm.weight", l, SLORA_MK_NEAR_ONE,
                                mk.head_dim, 0, err) != SLORA_OK
                || slora_mk_tensor(&mk, "self_attn.k_norm.weight",
                                   "attn_k_norm.weight", l,
                                   SLORA_MK_NEAR_ONE, mk.head_dim, 0, err)
                   != SLORA_OK))
        {
            goto done;
        }

        if (slora_mk_tensor(&mk, "post_attention_layernorm.weight",
                            "ffn_norm.weight", l, SLORA_MK_ONES, h, 0, err)
            != SLORA_OK
            || slora_mk_tensor(&mk, "mlp.gate_proj.weight", "ffn_gate.weight",
                               l, SLORA_MK_RANDOM, f, h, err) != SLORA_OK
            || slora_mk_tensor(&mk, "mlp.up_proj.weight", "ffn_up.weight", l,
                               SLORA_MK_RANDOM, f, h, err) != SLORA_OK
            || slora_mk_tensor(&mk, "mlp.down_proj.weight", "ffn_down.weight",
                               l, SLORA_MK_RANDOM, h, f, err) != SLORA_OK)
        {
            goto done;
        }
    }

    if (slora_mk_tensor(&mk, "model.norm.weight", "output_norm.weight", -1,
                        SLORA_MK_ONES, h, 0, err) != SLORA_OK)
    {
        goto done;
    }

    if (!c.tied
        && slora_mk_tensor(&mk, "lm_head.weight", "output.weight", -1,
                           SLORA_MK_RANDOM, c.vocab, h, err) != SLORA_OK)
    {
        goto done;
    }

    if (c.gguf) {
        rc = slora_gguf_writer_write(mk.gw, out, err);
        goto done;
    }

    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        slora_err_set(err, SLORA_ERROR, "%s: %s", out, strerror(errno));
        goto done;
    }

    if (slora_mk_config_json(&c, out, err) != SLORA_OK) {
        goto done;
    }

    snprintf(path, sizeof(path), "%s/model.safetensors", out);
    rc = slora_safetensors_writer_write(mk.sw, path, err);

done:

    slora_gguf_writer_free(mk.gw);
    slora_safetensors_writer_free(mk.sw);
    slora_gguf_close(tok);
    free(mk.buf);
    free(mk.half);

    return rc;
}


static int
slora_mk_check(slora_mkmodel_conf_t *c, slora_gguf_t **tok,
    slora_err_t *err)
{
    int               rc;
    slora_gguf_arr_t  a;

    if (c->n_layers < 1 || c->n_layers > 256 || c->hidden < 2
        || c->hidden > 16384 || c->n_heads < 1 || c->n_kv_heads < 1
        || c->ffn < 1 || c->ffn > 65536 || c->max_ctx < 1
        || c->vocab < 0 || c->vocab > (1 << 20))
    {
        return slora_err_set(err, SLORA_ERROR, "a size is out of range "
                             "(layers 1..256, hidden 2..16384, ffn 1..65536, "
                             "vocab up to 2^20, heads and context >= 1)");
    }

    if (c->n_heads % c->n_kv_heads != 0
        || (c->head_dim == 0
            && (c->hidden % c->n_heads != 0
                || (c->hidden / c->n_heads) % 2 != 0))
        || c->head_dim < 0 || c->head_dim % 2 != 0 || c->head_dim > 512)
    {
        return slora_err_set(err, SLORA_ERROR, "hidden %d, heads %d, kv "
                             "heads %d, head size %d: kv heads must divide "
                             "heads, and the head size (hidden / heads where "
                             "not given) be even and at most 512",
                             (int) c->hidden, (int) c->n_heads,
                             (int) c->n_kv_heads, (int) c->head_dim);
    }

    if (c->dtype != SLORA_DT_F32 && c->dtype != SLORA_DT_F16) {
        return slora_err_set(err, SLORA_ERROR, "dtype must be f32 or f16");
    }

    if (c->chat_template != NULL && c->tokenizer == NULL) {
        return slora_err_set(err, SLORA_ERROR, "a chat template goes with a "
                             "tokenizer (--tokenizer)");
    }

    if (c->tokenizer == NULL) {
        if (c->vocab < 1) {
            return slora_err_set(err, SLORA_ERROR, "a vocab size is needed "
                                 "without a tokenizer");
        }
        return SLORA_OK;
    }

    if (!c->gguf) {
        return slora_err_set(err, SLORA_ERROR, "--tokenizer works only with "
                             "GGUF output");
    }

    *tok = slora_gguf_open(c->tokenizer, err);
    if (*tok == NULL) {
        return SLORA_ERROR;
    }

    rc = slora_gguf_get_arr(*tok, "tokenizer.ggml.tokens", &a, err);
    if (rc != SLORA_OK || a.type != SLORA_GGUF_STR || a.n < 1
        || a.n > (1 << 20))
    {
        return slora_err_set(err, SLORA_ERROR, "%s: no usable "
                             "tokenizer.ggml.tokens array", c->tokenizer);
    }

    if (c->vocab != 0 && (uint64_t) c->vocab != a.n) {
        return slora_err_set(err, SLORA_ERROR, "vocab %d given, the "
                             "tokenizer %s has %llu tokens", (int) c->vocab,
                             c->tokenizer, (unsigned long long) a.n);
    }

    c->vocab = (int32_t) a.n;

    return SLORA_OK;
}


static int
slora_mk_gguf_meta(slora_mk_t *mk, slora_err_t *err)
{
    int                          i, n;
    char                         key[96], name[96];
    const char                  *arch;
    const slora_mkmodel_conf_t  *c;
    struct {
        const char  *suffix;
        uint32_t     value;
    }                            u[10];

    c = mk->conf;
    arch = c->qwen2 ? "qwen2" : c->qwen3 ? "qwen3" : "llama";

    snprintf(name, sizeof(name), "slora-tiny-%s-s%llu", arch,
             (unsigned long long) c->seed);

    u[0].suffix = "block_count";
    u[0].value = (uint32_t) c->n_layers;
    u[1].suffix = "context_length";
    u[1].value = (uint32_t) c->max_ctx;
    u[2].suffix = "embedding_length";
    u[2].value = (uint32_t) c->hidden;
    u[3].suffix = "feed_forward_length";
    u[3].value = (uint32_t) c->ffn;
    u[4].suffix = "attention.head_count";
    u[4].value = (uint32_t) c->n_heads;
    u[5].suffix = "attention.head_count_kv";
    u[5].value = (uint32_t) c->n_kv_heads;
    u[6].suffix = "rope.dimension_count";
    u[6].value = (uint32_t) mk->head_dim;
    u[7].suffix = "vocab_size";
    u[7].value = (uint32_t) c->vocab;
    /* a head size of its own, as convert_hf_to_gguf.py writes head_dim */
    u[8].suffix = "attention.key_length";
    u[8].value = (uint32_t) mk->head_dim;
    u[9].suffix = "attention.value_length";
    u[9].value = (uint32_t) mk->head_dim;
    n = c->head_dim != 0 ? 10 : 8;

    if (slora_gguf_writer_str(mk->gw, "general.architecture", arch, err)
        != SLORA_OK
        || slora_gguf_writer_str(mk->gw, "general.name", name, err)
           != SLORA_OK
        || slora_gguf_writer_u32(mk->gw, "general.file_type",
                                 c->dtype == SLORA_DT_F16 ? 1 : 0, err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "%s.%s", arch, u[i].suffix);
        if (slora_gguf_writer_u32(mk->gw, key, u[i].value, err) != SLORA_OK) {
            return SLORA_ERROR;
        }
    }

    snprintf(key, sizeof(key), "%s.attention.layer_norm_rms_epsilon", arch);
    if (slora_gguf_writer_f32(mk->gw, key, 1e-5f, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    snprintf(key, sizeof(key), "%s.rope.freq_base", arch);

    return slora_gguf_writer_f32(mk->gw, key, 10000.0f, err);
}


/* Llama 3.1's config.json rope_scaling, from old_ctx positions. */
static int
slora_mk_rope_scaling(cJSON *root, int32_t old_ctx)
{
    cJSON  *r;

    r = cJSON_AddObjectToObject(root, "rope_scaling");

    return r != NULL
           && cJSON_AddStringToObject(r, "rope_type", "llama3") != NULL
           && cJSON_AddNumberToObject(r, "factor", 8.0) != NULL
           && cJSON_AddNumberToObject(r, "low_freq_factor", 1.0) != NULL
           && cJSON_AddNumberToObject(r, "high_freq_factor", 4.0) != NULL
           && cJSON_AddNumberToObject(r, "original_max_position_embeddings",
                                      old_ctx) != NULL;
}


static int
slora_mk_config_json(const slora_mkmodel_conf_t *c, const char *dir,
    slora_err_t *err)
{
    int     ok;
    char    path[1280], *text;
    FILE   *f;
    cJSON  *root, *a;

    root = cJSON_CreateObject();
    a = cJSON_AddArrayToObject(root, "architectures");

    ok = root != NULL && a != NULL
         && cJSON_AddItemToArray(a, cJSON_CreateString(
                c->qwen2 ? "Qwen2ForCausalLM"
                : c->qwen3 ? "Qwen3ForCausalLM" : "LlamaForCausalLM"))
         && cJSON_AddStringToObject(root, "model_type",
                                    c->qwen2 ? "qwen2"
                                    : c->qwen3 ? "qwen3" : "llama") != NULL
         && cJSON_AddNumberToObject(root, "hidden_size", c->hidden) != NULL
         && cJSON_AddNumberToObject(root, "intermediate_size", c->ffn) != NULL
         && cJSON_AddNumberToObject(root, "num_hidden_layers", c->n_layers)
            != NULL
         && cJSON_AddNumberToObject(root, "num_attention_heads", c->n_heads)
            != NULL
         && cJSON_AddNumberToObject(root, "num_key_value_heads",
                                    c->n_kv_heads) != NULL
         && (c->head_dim == 0
             || cJSON_AddNumberToObject(root, "head_dim", c->head_dim)
                != NULL)
         && cJSON_AddNumberToObject(root, "vocab_size", c->vocab) != NULL
         && cJSON_AddNumberToObject(root, "max_position_embeddings",
                                    c->max_ctx) != NULL
         && cJSON_AddNumberToObject(root, "rms_norm_eps", 1e-5) != NULL
         && cJSON_AddNumberToObject(root, "rope_theta", 10000.0) != NULL
         && (c->rope_llama3 == 0 || slora_mk_rope_scaling(root,
                                                           c->rope_llama3))
         && cJSON_AddBoolToObject(root, "tie_word_embeddings", c->tied)
            != NULL
         && cJSON_AddStringToObject(root, "hidden_act", "silu") != NULL
         && cJSON_AddStringToObject(root, "torch_dtype",
                                    c->dtype == SLORA_DT_F16 ? "float16"
                                                             : "float32")
            != NULL;

    text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);

    if (text == NULL) {
        return slora_err_set(err, SLORA_ERROR, "mkmodel: out of memory");
    }

    snprintf(path, sizeof(path), "%s/config.json", dir);

    f = fopen(path, "w");
    if (f == NULL) {
        free(text);
        return slora_err_set(err, SLORA_ERROR, "%s: %s", path,
                             strerror(errno));
    }

    ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    free(text);

    if (fclose(f) != 0 || !ok) {
        return slora_err_set(err, SLORA_ERROR, "%s: write failed", path);
    }

    return SLORA_OK;
}


static int
slora_mk_tensor(slora_mk_t *mk, const char *hf, const char *gg,
    int32_t layer, slora_mk_kind_e kind, int64_t rows, int64_t cols,
    slora_err_t *err)
{
    int            n_dims;
    char           name[160];
    int64_t        i, n, dims[2];
    const void    *data;
    slora_dtype_e  dt;

    n_dims = cols > 0 ? 2 : 1;
    n = rows * (cols > 0 ? cols : 1);
    dims[0] = rows;
    dims[1] = cols;

    for (i = 0; i < n; i++) {
        mk->buf[i] = kind == SLORA_MK_ONES
                     ? 1.0f
                     : kind == SLORA_MK_NEAR_ONE
                     ? (float) (1.0 + 0.25 * slora_mk_normal(&mk->rng))
                     : (float) (SLORA_MK_STD * slora_mk_normal(&mk->rng));

        /* f16 models hold f16 values even where GGUF keeps f32 */
        if (mk->conf->dtype == SLORA_DT_F16) {
            mk->buf[i] = slora_f16_to_f32(slora_f32_to_f16(mk->buf[i]));
        }
    }

    if (mk->gw != NULL && !mk->conf->qwen2 && !mk->conf->qwen3
        && (kind == SLORA_MK_PERMUTE_Q || kind == SLORA_MK_PERMUTE_K))
    {
        if (slora_model_permute_qk_rows(mk->buf,
                                        kind == SLORA_MK_PERMUTE_Q
                                        ? mk->conf->n_heads
                                        : mk->conf->n_kv_heads,
                                        mk->head_dim, cols)
            != SLORA_OK)
        {
            return slora_err_set(err, SLORA_ERROR, "mkmodel: out of memory");
        }
    }

    /* norms stay f32 in GGUF, as llama.cpp's converter keeps 1-D tensors */

    dt = mk->conf->dtype;
    data = mk->buf;

    if (dt == SLORA_DT_F16 && (n_dims == 2 || mk->sw != NULL)) {
        for (i = 0; i < n; i++) {
            mk->half[i] = slora_f32_to_f16(mk->buf[i]);
        }
        data = mk->half;

    } else {
        dt = SLORA_DT_F32;
    }

    if (mk->gw != NULL) {
        if (layer < 0) {
            snprintf(name, sizeof(name), "%s", gg);

        } else {
            snprintf(name, sizeof(name), "blk.%d.%s", (int) layer, gg);
        }

        return slora_gguf_writer_tensor(mk->gw, name, dt, n_dims, dims, data,
                                        err);
    }

    if (layer < 0) {
        snprintf(name, sizeof(name), "%s", hf);

    } else {
        snprintf(name, sizeof(name), "model.layers.%d.%s", (int) layer, hf);
    }

    return slora_safetensors_writer_tensor(mk->sw, name, dt, n_dims, dims,
                                           data, err);
}


static uint64_t
slora_mk_next(slora_mk_rng_t *r)
{
    uint64_t  z;

    r->state += 0x9e3779b97f4a7c15ULL;
    z = r->state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


static double
slora_mk_normal(slora_mk_rng_t *r)
{
    double  u1, u2, rad;

    if (r->have_spare) {
        r->have_spare = 0;
        return r->spare;
    }

    /* u1 in (0, 1], so log(u1) is finite */
    u1 = ((double) (slora_mk_next(r) >> 11) + 1.0) * 0x1p-53;
    u2 = (double) (slora_mk_next(r) >> 11) * 0x1p-53;
    rad = sqrt(-2.0 * log(u1));

    r->spare = rad * sin(2.0 * M_PI * u2);
    r->have_spare = 1;

    return rad * cos(2.0 * M_PI * u2);
}
