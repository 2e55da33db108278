/*
 * slora_model.c: loads a Llama-family model from a GGUF file or from a
 * Hugging Face folder (config.json + safetensors) into host memory as f32.
 *
 * The one idea: both formats are read through one table of weight kinds,
 * each with its GGUF and HF name pattern and its expected shape from the
 * configuration. A first pass sizes every weight, one allocation holds
 * them all, a second pass finds, checks and dequantizes each tensor into
 * its slot. Every mismatch names the file, the tensor and both shapes.
 */

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "slora_model.h"
#include "slora_gguf.h"
#include "slora_safetensors.h"
#include "slora_rope.h"
#include "slora_utf8.h"


#define SLORA_MODEL_MAX_LAYERS   1024
#define SLORA_MODEL_MAX_DIM      (1 << 17)
#define SLORA_MODEL_MAX_HEAD_DIM 512
#define SLORA_MODEL_MAX_VOCAB    (1 << 22)
#define SLORA_MODEL_MAX_DIVISOR  1e6f        /* of a RoPE frequency */
#define SLORA_MODEL_ALIGN        16          /* floats: 64 bytes */
#define SLORA_CONFIG_MAX         (16 * 1024 * 1024)


typedef enum {
    SLORA_W_TOK_EMBD = 0,
    SLORA_W_OUT_NORM,
    SLORA_W_OUTPUT,
    SLORA_W_ATTN_NORM,              /* first per-layer kind */
    SLORA_W_Q,
    SLORA_W_K,
    SLORA_W_V,
    SLORA_W_O,
    SLORA_W_BQ,
    SLORA_W_BK,
    SLORA_W_BV,
    SLORA_W_Q_NORM,
    SLORA_W_K_NORM,
    SLORA_W_FFN_NORM,
    SLORA_W_GATE,
    SLORA_W_UP,
    SLORA_W_DOWN,
    SLORA_W_N
} slora_wkind_e;


static const char  *slora_gguf_names[SLORA_W_N] = {
    "token_embd.weight",
    "output_norm.weight",
    "output.weight",
    "blk.%d.attn_norm.weight",
    "blk.%d.attn_q.weight",
    "blk.%d.attn_k.weight",
    "blk.%d.attn_v.weight",
    "blk.%d.attn_output.weight",
    "blk.%d.attn_q.bias",
    "blk.%d.attn_k.bias",
    "blk.%d.attn_v.bias",
    "blk.%d.attn_q_norm.weight",
    "blk.%d.attn_k_norm.weight",
    "blk.%d.ffn_norm.weight",
    "blk.%d.ffn_gate.weight",
    "blk.%d.ffn_up.weight",
    "blk.%d.ffn_down.weight"
};

static const char  *slora_hf_names[SLORA_W_N] = {
    "model.embed_tokens.weight",
    "model.norm.weight",
    "lm_head.weight",
    "model.layers.%d.input_layernorm.weight",
    "model.layers.%d.self_attn.q_proj.weight",
    "model.layers.%d.self_attn.k_proj.weight",
    "model.layers.%d.self_attn.v_proj.weight",
    "model.layers.%d.self_attn.o_proj.weight",
    "model.layers.%d.self_attn.q_proj.bias",
    "model.layers.%d.self_attn.k_proj.bias",
    "model.layers.%d.self_attn.v_proj.bias",
    "model.layers.%d.self_attn.q_norm.weight",
    "model.layers.%d.self_attn.k_norm.weight",
    "model.layers.%d.post_attention_layernorm.weight",
    "model.layers.%d.mlp.gate_proj.weight",
    "model.layers.%d.mlp.up_proj.weight",
    "model.layers.%d.mlp.down_proj.weight"
};


/* Integer keys a GGUF model must have, after "<arch>.". */
static const struct {
    const char  *suffix;
    size_t       offset;
} slora_gguf_required[] = {
    { "block_count",          offsetof(slora_model_config_t, n_layers) },
    { "embedding_length",     offsetof(slora_model_config_t, hidden) },
    { "feed_forward_length",  offsetof(slora_model_config_t, ffn) },
    { "attention.head_count", offsetof(slora_model_config_t, n_heads) },
    { "context_length",       offsetof(slora_model_config_t, max_ctx) },
    { NULL, 0 }
};


/* Where tensors come from: one of the two readers. */
typedef struct {
    const slora_gguf_t             *gguf;
    const slora_safetensors_dir_t  *dir;
    const char                     *file;
    const char                    **names;
} slora_model_src_t;


static int slora_model_load_gguf(slora_model_t *m, slora_model_src_t *src,
    slora_err_t *err);
static int slora_model_load_hf(slora_model_t *m, slora_model_src_t *src,
    slora_safetensors_dir_t **dir, slora_err_t *err);
static int slora_model_hf_config(slora_model_t *m, const char *file,
    const char *text, size_t len, slora_err_t *err);
static int slora_json_int(const cJSON *root, const char *file,
    const char *key, int required, int32_t dflt, int32_t *out,
    slora_err_t *err);
static int slora_json_num(const cJSON *root, const char *file,
    const char *key, double dflt, float *out, slora_err_t *err);
static void slora_model_name(slora_model_config_t *c, const char *s);
static int slora_model_check_config(slora_model_config_t *c,
    const char *file, slora_err_t *err);
static int slora_model_rope_freqs(slora_model_t *m, const slora_tensor_t *t,
    const char *file, slora_err_t *err);
static int slora_model_rope_scaling(slora_model_t *m, const cJSON *rs,
    const char *file, slora_err_t *err);
static int32_t slora_model_bad_divisor(const float *d, int32_t n);
static const slora_tensor_t *slora_model_find(const slora_model_src_t *src,
    slora_wkind_e k, int32_t layer, char *name, size_t size);
static int slora_model_shape(const slora_model_config_t *c, slora_wkind_e k,
    int64_t *dims);
static float **slora_model_slot(slora_model_t *m, slora_wkind_e k,
    int32_t layer);
static int slora_model_wanted(const slora_model_config_t *c,
    slora_wkind_e k);
static int slora_model_fill(slora_model_t *m, const slora_model_src_t *src,
    slora_err_t *err);
static void slora_model_dims(char *buf, size_t size, const int64_t *dims,
    int n);
static int slora_model_refuse_extra(const slora_model_config_t *c,
    const slora_model_src_t *src, slora_err_t *err);


slora_model_t *
slora_model_load(const char *path, slora_err_t *err)
{
    int                       rc;
    struct stat               sb;
    slora_model_t            *m;
    slora_model_src_t         src;
    slora_safetensors_dir_t  *dir;

    if (slora_model_is_random(path)) {
        return slora_model_random(path, err);
    }

    if (strlen(path) >= SLORA_MODEL_PATH_LEN) {
        slora_err_set(err, SLORA_ERROR, "a model path of %zu bytes: at most"
                      " %d", strlen(path), SLORA_MODEL_PATH_LEN - 1);
        return NULL;
    }

    if (stat(path, &sb) != 0) {
        slora_err_set(err, SLORA_ERROR, "%s: %s", path, strerror(errno));
        return NULL;
    }

    m = calloc(1, sizeof(slora_model_t));
    if (m == NULL) {
        slora_err_set(err, SLORA_ERROR, "%s: out of memory", path);
        return NULL;
    }

    snprintf(m->path, sizeof(m->path), "%s", path);
    memset(&src, 0, sizeof(src));
    dir = NULL;

    if (S_ISDIR(sb.st_mode)) {
        rc = slora_model_load_hf(m, &src, &dir, err);

    } else {
        rc = slora_model_load_gguf(m, &src, err);
    }

    if (rc == SLORA_OK) {
        rc = slora_model_fill(m, &src, err);
    }

    slora_safetensors_dir_close(dir);

    if (rc != SLORA_OK) {
        slora_model_free(m);
        return NULL;
    }

    return m;
}


int
slora_model_config(const char *path, slora_model_config_t *cfg,
    slora_err_t *err)
{
    slora_model_t  *m;

    if (slora_model_is_random(path)) {
        return slora_model_random_config(path, cfg, err);
    }

    m = slora_model_load(path, err);
    if (m == NULL) {
        return SLORA_ERROR;
    }

    *cfg = m->cfg;
    slora_model_free(m);

    return SLORA_OK;
}


void
slora_model_free(slora_model_t *m)
{
    if (m == NULL) {
        return;
    }

    slora_gguf_close(m->gguf);
    free(m->w.layers);
    free(m->w.rope_freqs);
    free(m->mem);
    free(m);
}


static int
slora_model_load_gguf(slora_model_t *m, slora_model_src_t *src,
    slora_err_t *err)
{
    int                    i, rc, rc2;
    char                   key[128], arch[32], type[32];
    float                  factor;
    const char            *file, *base;
    uint32_t               u;
    slora_gguf_t          *g;
    slora_model_config_t  *c;
    const slora_tensor_t  *t;

    c = &m->cfg;
    file = m->path;

    g = slora_gguf_open(file, err);
    if (g == NULL) {
        return SLORA_ERROR;
    }

    m->gguf = g;
    src->gguf = g;
    src->file = file;
    src->names = slora_gguf_names;

    if (slora_gguf_get_cstr(g, "general.architecture", arch, sizeof(arch),
                            err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (strcmp(arch, "llama") == 0) {
        c->rope = SLORA_ROPE_NORM;

    } else if (strcmp(arch, "qwen2") == 0) {
        c->rope = SLORA_ROPE_NEOX;
        c->qkv_bias = 1;

    } else if (strcmp(arch, "qwen3") == 0) {
        c->rope = SLORA_ROPE_NEOX;
        c->qk_norm = 1;

    } else {
        return slora_err_set(err, SLORA_ERROR, "%s: architecture '%s' not "
                             "supported (llama, qwen2, qwen3 are)", file,
                             arch);
    }

    memcpy(c->arch, arch, sizeof(c->arch));

    if (slora_gguf_get_cstr(g, "general.name", c->name, sizeof(c->name),
                            NULL)
        != SLORA_OK)
    {
        base = strrchr(file, '/');
        slora_model_name(c, base ? base + 1 : file);
    }

    for (i = 0; slora_gguf_required[i].suffix != NULL; i++) {
        snprintf(key, sizeof(key), "%s.%s", arch,
                 slora_gguf_required[i].suffix);

        if (slora_gguf_get_i32(g, key, (int32_t *) ((char *) c
                                   + slora_gguf_required[i].offset), err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }
    }

    snprintf(key, sizeof(key), "%s.attention.head_count_kv", arch);
    rc = slora_gguf_get_i32(g, key, &c->n_kv_heads, err);
    if (rc == SLORA_DECLINED) {
        c->n_kv_heads = c->n_heads;

    } else if (rc != SLORA_OK) {
        return SLORA_ERROR;
    }

    snprintf(key, sizeof(key), "%s.attention.layer_norm_rms_epsilon", arch);
    if (slora_gguf_get_f32(g, key, &c->norm_eps, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    snprintf(key, sizeof(key), "%s.rope.freq_base", arch);
    rc = slora_gguf_get_f32(g, key, &c->rope_theta, err);
    if (rc == SLORA_DECLINED) {
        c->rope_theta = 10000.0f;

    } else if (rc != SLORA_OK) {
        return SLORA_ERROR;
    }

    snprintf(key, sizeof(key), "%s.rope.scaling.type", arch);
    rc = slora_gguf_get_cstr(g, key, type, sizeof(type), err);
    if (rc == SLORA_ERROR || (rc == SLORA_OK && strcmp(type, "none") != 0))
    {
        return slora_err_set(err, SLORA_ERROR, "%s: RoPE scaling \"%s\" is "
                             "not supported (Llama 3.1's rope_freqs is)",
                             file, rc == SLORA_OK ? type : "?");
    }

    /* llama.cpp reads a factor without a type (or the older
     * rope.scale_linear) as linear scaling; 0 and 1 are none, and a type
     * "none" scales nothing whatever the factor */
    for (i = 0; rc == SLORA_DECLINED && i < 2; i++) {
        snprintf(key, sizeof(key), "%s.rope.%s", arch,
                 i == 0 ? "scaling.factor" : "scale_linear");
        rc2 = slora_gguf_get_f32(g, key, &factor, err);

        if (rc2 == SLORA_ERROR) {
            return SLORA_ERROR;
        }

        if (rc2 == SLORA_OK && factor != 0.0f && factor != 1.0f) {
            return slora_err_set(err, SLORA_ERROR, "%s: %s %g without "
                                 "rope.scaling.type is linear RoPE scaling, "
                                 "which is not supported", file, key,
                                 (double) factor);
        }
    }

    t = slora_gguf_find_tensor(g, "token_embd.weight");
    if (t == NULL || t->n_dims != 2 || t->dims[0] > SLORA_MODEL_MAX_VOCAB) {
        return slora_err_set(err, SLORA_ERROR, "%s: tensor "
                             "'token_embd.weight' missing or not 2-D",
                             file);
    }

    c->vocab = (int32_t) t->dims[0];

    snprintf(key, sizeof(key), "%s.vocab_size", arch);
    rc = slora_gguf_get_u32(g, key, &u, err);
    if (rc == SLORA_ERROR || (rc == SLORA_OK && u != (uint32_t) c->vocab)) {
        return slora_err_set(err, SLORA_ERROR, "%s: %s does not match the "
                             "%d rows of token_embd.weight", file, key,
                             (int) c->vocab);
    }

    c->tied_embeddings = slora_gguf_find_tensor(g, "output.weight") == NULL;

    if (slora_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL) {
        c->qkv_bias = 1;
    }

    /* a head size of its own (Mistral NeMo, Mistral Small 3: 128 where
     * hidden / heads is 160); values as wide as keys */
    snprintf(key, sizeof(key), "%s.attention.key_length", arch);
    rc = slora_gguf_get_u32(g, key, &u, err);
    if (rc == SLORA_ERROR || (rc == SLORA_OK && u > SLORA_MODEL_MAX_HEAD_DIM))
    {
        return slora_err_set(err, SLORA_ERROR, "%s: %s out of range (1 to "
                             "%d)", file, key, SLORA_MODEL_MAX_HEAD_DIM);
    }
    c->head_dim = rc == SLORA_OK ? (int32_t) u : 0;

    snprintf(key, sizeof(key), "%s.attention.value_length", arch);
    rc = slora_gguf_get_u32(g, key, &u, err);
    if (rc == SLORA_ERROR
        || (rc == SLORA_OK && c->head_dim != 0 && u != (uint32_t) c->head_dim))
    {
        return slora_err_set(err, SLORA_ERROR, "%s: %s is not the key length "
                             "%d", file, key, (int) c->head_dim);
    }

    if (slora_model_check_config(c, file, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    t = slora_gguf_find_tensor(g, "rope_freqs.weight");
    if (t != NULL && slora_model_rope_freqs(m, t, file, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    snprintf(key, sizeof(key), "%s.rope.dimension_count", arch);
    rc = slora_gguf_get_u32(g, key, &u, err);
    if (rc == SLORA_ERROR || (rc == SLORA_OK && u != (uint32_t) c->head_dim))
    {
        return slora_err_set(err, SLORA_ERROR, "%s: %s is not the head size "
                             "%d (partial RoPE is not supported)", file, key,
                             (int) c->head_dim);
    }

    return SLORA_OK;
}


static int
slora_model_load_hf(slora_model_t *m, slora_model_src_t *src,
    slora_safetensors_dir_t **dir, slora_err_t *err)
{
    int            rc;
    char           file[1280], *text;
    FILE          *f;
    size_t         n;
    struct stat    sb;
    const char    *base;

    snprintf(file, sizeof(file), "%s/config.json", m->path);

    f = fopen(file, "rb");
    if (f == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: %s", file,
                             strerror(errno));
    }

    if (fstat(fileno(f), &sb) != 0 || sb.st_size > SLORA_CONFIG_MAX) {
        fclose(f);
        return slora_err_set(err, SLORA_ERROR, "%s: not a file of at most "
                             "%d bytes", file, SLORA_CONFIG_MAX);
    }

    n = (size_t) sb.st_size;
    text = malloc(n + 1);

    if (text == NULL || fread(text, 1, n, f) != n) {
        fclose(f);
        free(text);
        return slora_err_set(err, SLORA_ERROR, "%s: read failed", file);
    }

    fclose(f);
    text[n] = '\0';

    rc = slora_model_hf_config(m, file, text, n, err);
    free(text);

    if (rc != SLORA_OK) {
        return SLORA_ERROR;
    }

    /* the folder's name, without trailing slashes */

    snprintf(file, sizeof(file), "%s", m->path);
    n = strlen(file);
    while (n > 1 && file[n - 1] == '/') {
        file[--n] = '\0';
    }

    base = strrchr(file, '/');
    slora_model_name(&m->cfg, base ? base + 1 : file);

    *dir = slora_safetensors_dir_open(m->path, err);
    if (*dir == NULL) {
        return SLORA_ERROR;
    }

    src->dir = *dir;
    src->file = m->path;
    src->names = slora_hf_names;

    if (slora_safetensors_dir_find(*dir,
                                   "model.layers.0.self_attn.q_proj.bias")
        != NULL)
    {
        m->cfg.qkv_bias = 1;
    }

    return SLORA_OK;
}


static int
slora_model_hf_config(slora_model_t *m, const char *file, const char *text,
    size_t len, slora_err_t *err)
{
    int                    rc;
    cJSON                 *root, *v, *a, *scaling;
    int32_t                window;
    const char            *type;
    slora_model_config_t  *c;

    c = &m->cfg;
    rc = SLORA_ERROR;

    root = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(root)) {
        slora_err_set(err, SLORA_ERROR, "%s: not a JSON object", file);
        goto done;
    }

    type = NULL;

    a = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    v = cJSON_GetArrayItem(a, 0);
    if (cJSON_IsArray(a) && cJSON_IsString(v)) {
        type = v->valuestring;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (type == NULL && cJSON_IsString(v)) {
        type = v->valuestring;
    }

    if (type == NULL) {
        slora_err_set(err, SLORA_ERROR, "%s: no architectures or "
                      "model_type", file);
        goto done;
    }

    if (strcmp(type, "LlamaForCausalLM") == 0 || strcmp(type, "llama") == 0
        || strcmp(type, "MistralForCausalLM") == 0
        || strcmp(type, "mistral") == 0)
    {
        snprintf(c->arch, sizeof(c->arch), "llama");

    } else if (strcmp(type, "Qwen2ForCausalLM") == 0
               || strcmp(type, "qwen2") == 0)
    {
        snprintf(c->arch, sizeof(c->arch), "qwen2");
        c->qkv_bias = 1;

    } else if (strcmp(type, "Qwen3ForCausalLM") == 0
               || strcmp(type, "qwen3") == 0)
    {
        snprintf(c->arch, sizeof(c->arch), "qwen3");
        c->qk_norm = 1;

    } else {
        slora_err_set(err, SLORA_ERROR, "%s: architecture '%.*s' not "
                      "supported (Llama, Mistral, Qwen2, Qwen3 are)", file,
                      slora_utf8_cut(type, 64), type);
        goto done;
    }

    c->rope = SLORA_ROPE_NEOX;

    if (slora_json_int(root, file, "hidden_size", 1, 0, &c->hidden, err)
        != SLORA_OK
        || slora_json_int(root, file, "intermediate_size", 1, 0, &c->ffn, err)
           != SLORA_OK
        || slora_json_int(root, file, "num_hidden_layers", 1, 0, &c->n_layers,
                          err) != SLORA_OK
        || slora_json_int(root, file, "num_attention_heads", 1, 0,
                          &c->n_heads, err) != SLORA_OK
        || slora_json_int(root, file, "num_key_value_heads", 0, c->n_heads,
                          &c->n_kv_heads, err) != SLORA_OK
        || slora_json_int(root, file, "vocab_size", 1, 0, &c->vocab, err)
           != SLORA_OK
        || slora_json_int(root, file, "max_position_embeddings", 0, 2048,
                          &c->max_ctx, err) != SLORA_OK
        || slora_json_num(root, file, "rms_norm_eps", 1e-6, &c->norm_eps, err)
           != SLORA_OK
        || slora_json_num(root, file, "rope_theta", 10000.0, &c->rope_theta,
                          err) != SLORA_OK)
    {
        goto done;
    }

    /* a sliding window: Mistral's (7B v0.1's 4096), Qwen2's and Qwen3's
     * where use_sliding_window is true (Llama has none). Within it a
     * token sees all before it, so the context is cut to the window
     * and full attention stays exact past where it would not be */
    v = cJSON_GetObjectItemCaseSensitive(root, "use_sliding_window");
    if (strcmp(type, "MistralForCausalLM") == 0
        || strcmp(type, "mistral") == 0
        || (strcmp(c->arch, "llama") != 0 && cJSON_IsTrue(v)))
    {
        if (slora_json_int(root, file, "sliding_window", 0, 0, &window, err)
            != SLORA_OK)
        {
            goto done;
        }

        if (window != 0 && window < c->max_ctx) {
            c->max_ctx = window;
        }
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    c->tied_embeddings = cJSON_IsTrue(v);

    v = cJSON_GetObjectItemCaseSensitive(root, "attention_bias");
    if (cJSON_IsTrue(v)) {
        slora_err_set(err, SLORA_ERROR, "%s: attention_bias (with an o_proj "
                      "bias) is not supported", file);
        goto done;
    }

    scaling = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (cJSON_IsNull(scaling)) {
        scaling = NULL;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (v != NULL && (!cJSON_IsString(v) || strcmp(v->valuestring, "silu")))
    {
        slora_err_set(err, SLORA_ERROR, "%s: hidden_act is not \"silu\"",
                      file);
        goto done;
    }

    /* a head size of its own (MistralForCausalLM's head_dim) */
    v = cJSON_GetObjectItemCaseSensitive(root, "head_dim");
    c->head_dim = 0;
    if (v != NULL && !cJSON_IsNull(v)
        && slora_json_int(root, file, "head_dim", 1, 0, &c->head_dim, err)
           != SLORA_OK)
    {
        goto done;
    }

    if (slora_model_check_config(c, file, err) != SLORA_OK
        || (scaling != NULL
            && slora_model_rope_scaling(m, scaling, file, err) != SLORA_OK))
    {
        goto done;
    }

    rc = SLORA_OK;

done:

    cJSON_Delete(root);
    return rc;
}


/* GGUF's rope_freqs.weight: [head_dim / 2] divisors, each finite and
 * positive. */
static int
slora_model_rope_freqs(slora_model_t *m, const slora_tensor_t *t,
    const char *file, slora_err_t *err)
{
    int32_t  i, half;

    half = m->cfg.head_dim / 2;

    if (t->n_dims != 1 || t->dims[0] != half) {
        return slora_err_set(err, SLORA_ERROR, "%s: tensor "
                             "'rope_freqs.weight' is not [%d] (head size "
                             "%d)", file, (int) half, (int) m->cfg.head_dim);
    }

    m->w.rope_freqs = malloc((size_t) half * sizeof(float));
    if (m->w.rope_freqs == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: out of memory", file);
    }

    if (slora_tensor_to_f32(t, m->w.rope_freqs, err) != SLORA_OK) {
        return slora_err_prefix(err, "%s: rope_freqs.weight", file);
    }

    i = slora_model_bad_divisor(m->w.rope_freqs, half);

    if (i >= 0) {
        return slora_err_set(err, SLORA_ERROR, "%s: rope_freqs.weight[%d] "
                             "is %g: not a frequency divisor", file, (int) i,
                             (double) m->w.rope_freqs[i]);
    }

    return SLORA_OK;
}


/* The first of d[0 .. n-1] that is no frequency divisor (NaN, infinite,
 * or not in (0, SLORA_MODEL_MAX_DIVISOR)), or -1. */
static int32_t
slora_model_bad_divisor(const float *d, int32_t n)
{
    int32_t  i;

    for (i = 0; i < n; i++) {
        if (!(d[i] > 0.0f && d[i] < SLORA_MODEL_MAX_DIVISOR)) {
            return i;
        }
    }

    return -1;
}


/* config.json's rope_scaling: Llama 3.1's ("llama3") made into the
 * divisors its GGUF conversion writes, "default" none; any other kind
 * refused. Its numbers must be finite (a double past a float's range is
 * not) and the divisors made bounded as rope_freqs.weight's are. */
static int
slora_model_rope_scaling(slora_model_t *m, const cJSON *rs,
    const char *file, slora_err_t *err)
{
    float        factor, low, high, old_ctx;
    const cJSON  *type;

    type = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (type == NULL) {
        type = cJSON_GetObjectItemCaseSensitive(rs, "type");
    }

    /* transformers' "default" is no scaling */
    if (cJSON_IsObject(rs) && cJSON_IsString(type)
        && strcmp(type->valuestring, "default") == 0)
    {
        return SLORA_OK;
    }

    if (!cJSON_IsObject(rs) || !cJSON_IsString(type)
        || strcmp(type->valuestring, "llama3") != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "%s: rope_scaling %s%s%s is "
                             "not supported (\"llama3\" is)", file,
                             cJSON_IsString(type) ? "\"" : "",
                             cJSON_IsString(type) ? type->valuestring
                                                  : "without a rope_type",
                             cJSON_IsString(type) ? "\"" : "");
    }

    if (slora_json_num(rs, file, "factor", 8.0, &factor, err) != SLORA_OK
        || slora_json_num(rs, file, "low_freq_factor", 1.0, &low, err)
           != SLORA_OK
        || slora_json_num(rs, file, "high_freq_factor", 4.0, &high, err)
           != SLORA_OK
        || slora_json_num(rs, file, "original_max_position_embeddings",
                          8192.0, &old_ctx, err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    m->w.rope_freqs = malloc((size_t) (m->cfg.head_dim / 2) * sizeof(float));
    if (m->w.rope_freqs == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: out of memory", file);
    }

    if (!isfinite(factor) || !isfinite(low) || !isfinite(high)
        || !isfinite(old_ctx)
        || slora_rope_llama3_factors(m->w.rope_freqs, m->cfg.head_dim,
                                     m->cfg.rope_theta, factor, low, high,
                                     old_ctx)
           != 0
        || slora_model_bad_divisor(m->w.rope_freqs, m->cfg.head_dim / 2)
           >= 0)
    {
        return slora_err_set(err, SLORA_ERROR, "%s: rope_scaling: factor "
                             "%g, low_freq_factor %g, high_freq_factor %g, "
                             "original_max_position_embeddings %g out of "
                             "range", file, (double) factor, (double) low,
                             (double) high, (double) old_ctx);
    }

    return SLORA_OK;
}


static int
slora_json_int(const cJSON *root, const char *file, const char *key,
    int required, int32_t dflt, int32_t *out, slora_err_t *err)
{
    double  d;
    cJSON   *v;

    v = cJSON_GetObjectItemCaseSensitive(root, key);

    if (v == NULL || cJSON_IsNull(v)) {
        if (required) {
            return slora_err_set(err, SLORA_ERROR, "%s: \"%s\" missing",
                                 file, key);
        }
        *out = dflt;
        return SLORA_OK;
    }

    d = cJSON_IsNumber(v) ? v->valuedouble : -1;

    if (!(d >= 0 && d <= INT32_MAX) || d != (double) (int32_t) d) {
        return slora_err_set(err, SLORA_ERROR, "%s: \"%s\" is not a "
                             "non-negative 32-bit integer", file, key);
    }

    *out = (int32_t) d;

    return SLORA_OK;
}


static int
slora_json_num(const cJSON *root, const char *file, const char *key,
    double dflt, float *out, slora_err_t *err)
{
    cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(root, key);

    if (v == NULL || cJSON_IsNull(v)) {
        *out = (float) dflt;
        return SLORA_OK;
    }

    if (!cJSON_IsNumber(v)) {
        return slora_err_set(err, SLORA_ERROR, "%s: \"%s\" is not a number",
                             file, key);
    }

    *out = (float) v->valuedouble;

    return SLORA_OK;
}


/* Copies s into c->name, cut to fit. */
static void
slora_model_name(slora_model_config_t *c, const char *s)
{
    size_t  n;

    n = strlen(s);
    if (n > sizeof(c->name) - 1) {
        n = sizeof(c->name) - 1;
    }

    memcpy(c->name, s, n);
    c->name[n] = '\0';
}


static int
slora_model_check_config(slora_model_config_t *c, const char *file,
    slora_err_t *err)
{
    if (c->n_layers < 1 || c->n_layers > SLORA_MODEL_MAX_LAYERS
        || c->hidden < 1 || c->hidden > SLORA_MODEL_MAX_DIM
        || c->ffn < 1 || c->ffn > SLORA_MODEL_MAX_DIM
        || c->vocab < 1 || c->vocab > SLORA_MODEL_MAX_VOCAB
        || c->n_heads < 1 || c->n_kv_heads < 1 || c->max_ctx < 1)
    {
        return slora_err_set(err, SLORA_ERROR, "%s: config out of range: "
                             "layers %d, hidden %d, ffn %d, vocab %d, heads "
                             "%d, kv heads %d, context %d", file,
                             (int) c->n_layers, (int) c->hidden,
                             (int) c->ffn, (int) c->vocab, (int) c->n_heads,
                             (int) c->n_kv_heads, (int) c->max_ctx);
    }

    if (c->n_heads % c->n_kv_heads != 0
        || (c->head_dim == 0
            && (c->hidden % c->n_heads != 0
                || (c->hidden / c->n_heads) % 2 != 0))
        || c->head_dim % 2 != 0 || c->head_dim < 0
        || c->head_dim > SLORA_MODEL_MAX_HEAD_DIM)
    {
        return slora_err_set(err, SLORA_ERROR, "%s: hidden %d, heads %d, kv "
                             "heads %d, head size %d%s: kv heads must divide "
                             "heads, and the head size be even and at most "
                             "%d", file, (int) c->hidden, (int) c->n_heads,
                             (int) c->n_kv_heads,
                             (int) (c->head_dim != 0
                                    ? c->head_dim : c->hidden / c->n_heads),
                             c->head_dim != 0 ? ""
                             : c->hidden % c->n_heads != 0
                               ? " (hidden / heads, which do not divide)"
                               : " (hidden / heads)",
                             SLORA_MODEL_MAX_HEAD_DIM);
    }

    if (!(c->norm_eps > 0 && c->norm_eps < 1)
        || !(c->rope_theta > 1 && c->rope_theta < 1e12f))
    {
        return slora_err_set(err, SLORA_ERROR, "%s: rms eps %g or rope "
                             "theta %g out of range", file,
                             (double) c->norm_eps, (double) c->rope_theta);
    }

    if (c->head_dim == 0) {
        c->head_dim = c->hidden / c->n_heads;
    }

    /* q's width (heads * head size) and k's and v's (kv heads * head
     * size), counted in 64 bits: past here they are int32 products (the
     * projections' and the adapters' widths) */

    if ((int64_t) c->n_heads * c->head_dim > SLORA_MODEL_MAX_DIM
        || (int64_t) c->n_kv_heads * c->head_dim > SLORA_MODEL_MAX_DIM)
    {
        return slora_err_set(err, SLORA_ERROR, "%s: heads %d, kv heads %d "
                             "of size %d: attention %lld wide, at most %d",
                             file, (int) c->n_heads, (int) c->n_kv_heads,
                             (int) c->head_dim,
                             (long long) c->n_heads * c->head_dim,
                             SLORA_MODEL_MAX_DIM);
    }

    return SLORA_OK;
}


static int
slora_model_wanted(const slora_model_config_t *c, slora_wkind_e k)
{
    if (k == SLORA_W_OUTPUT) {
        return !c->tied_embeddings;
    }

    if (k == SLORA_W_BQ || k == SLORA_W_BK || k == SLORA_W_BV) {
        return c->qkv_bias;
    }

    if (k == SLORA_W_Q_NORM || k == SLORA_W_K_NORM) {
        return c->qk_norm;
    }

    return 1;
}


static int
slora_model_shape(const slora_model_config_t *c, slora_wkind_e k,
    int64_t *dims)
{
    int64_t  q, kv;

    q = (int64_t) c->n_heads * c->head_dim;
    kv = (int64_t) c->n_kv_heads * c->head_dim;

    switch (k) {
    case SLORA_W_TOK_EMBD:
    case SLORA_W_OUTPUT:
        dims[0] = c->vocab;
        dims[1] = c->hidden;
        return 2;
    case SLORA_W_OUT_NORM:
    case SLORA_W_ATTN_NORM:
    case SLORA_W_FFN_NORM:
        dims[0] = c->hidden;
        return 1;
    case SLORA_W_Q:
        dims[0] = q;
        dims[1] = c->hidden;
        return 2;
    case SLORA_W_K:
    case SLORA_W_V:
        dims[0] = kv;
        dims[1] = c->hidden;
        return 2;
    case SLORA_W_O:
        dims[0] = c->hidden;
        dims[1] = q;
        return 2;
    case SLORA_W_BQ:
        dims[0] = q;
        return 1;
    case SLORA_W_BK:
    case SLORA_W_BV:
        dims[0] = kv;
        return 1;
    case SLORA_W_Q_NORM:
    case SLORA_W_K_NORM:
        dims[0] = c->head_dim;
        return 1;
    case SLORA_W_GATE:
    case SLORA_W_UP:
        dims[0] = c->ffn;
        dims[1] = c->hidden;
        return 2;
    case SLORA_W_DOWN:
        dims[0] = c->hidden;
        dims[1] = c->ffn;
        return 2;
    default:
        slora_assert(0);
        return 0;
    }
}


static float **
slora_model_slot(slora_model_t *m, slora_wkind_e k, int32_t layer)
{
    slora_layer_weights_t  *l;

    l = layer >= 0 ? &m->w.layers[layer] : NULL;

    switch (k) {
    case SLORA_W_TOK_EMBD:
        return &m->w.tok_embd;
    case SLORA_W_OUT_NORM:
        return &m->w.out_norm;
    case SLORA_W_OUTPUT:
        return &m->w.output;
    case SLORA_W_ATTN_NORM:
        return &l->attn_norm;
    case SLORA_W_Q:
        return &l->wq;
    case SLORA_W_K:
        return &l->wk;
    case SLORA_W_V:
        return &l->wv;
    case SLORA_W_O:
        return &l->wo;
    case SLORA_W_BQ:
        return &l->bq;
    case SLORA_W_BK:
        return &l->bk;
    case SLORA_W_BV:
        return &l->bv;
    case SLORA_W_Q_NORM:
        return &l->q_norm;
    case SLORA_W_K_NORM:
        return &l->k_norm;
    case SLORA_W_FFN_NORM:
        return &l->ffn_norm;
    case SLORA_W_GATE:
        return &l->w_gate;
    case SLORA_W_UP:
        return &l->w_up;
    case SLORA_W_DOWN:
        return &l->w_down;
    default:
        slora_assert(0);
        return NULL;
    }
}


static const slora_tensor_t *
slora_model_find(const slora_model_src_t *src, slora_wkind_e k,
    int32_t layer, char *name, size_t size)
{
    snprintf(name, size, src->names[k], (int) layer);

    if (src->gguf != NULL) {
        return slora_gguf_find_tensor(src->gguf, name);
    }

    return slora_safetensors_dir_find(src->dir, name);
}


/* Biases slora does not apply must not be there: a model that has them
 * would run wrong without a word. */
/* "[a, b, c]": a shape as an error names it, every dim of it. */
static void
slora_model_dims(char *buf, size_t size, const int64_t *dims, int n)
{
    int     d;
    size_t  len;

    len = (size_t) snprintf(buf, size, "[");

    for (d = 0; d < n && len < size; d++) {
        len += (size_t) snprintf(buf + len, size - len, "%s%lld",
                                 d > 0 ? ", " : "", (long long) dims[d]);
    }

    if (len < size) {
        snprintf(buf + len, size - len, "]");
    }
}


static int
slora_model_refuse_extra(const slora_model_config_t *c,
    const slora_model_src_t *src, slora_err_t *err)
{
    int                    i;
    static const char     *gguf[] = {
        "blk.0.attn_output.bias", "blk.0.ffn_gate.bias", "blk.0.ffn_up.bias",
        "blk.0.ffn_down.bias", "blk.0.attn_q_norm.weight", NULL
    };
    static const char     *hf[] = {
        "model.layers.0.self_attn.o_proj.bias",
        "model.layers.0.mlp.gate_proj.bias", "model.layers.0.mlp.up_proj.bias",
        "model.layers.0.mlp.down_proj.bias",
        "model.layers.0.self_attn.q_norm.weight", NULL
    };
    const char           **list;
    const slora_tensor_t  *t;

    list = src->gguf != NULL ? gguf : hf;

    for (i = 0; list[i] != NULL; i++) {
        /* q's norm is Qwen3's own */
        if (c->qk_norm && strstr(list[i], "q_norm") != NULL) {
            continue;
        }

        t = src->gguf != NULL ? slora_gguf_find_tensor(src->gguf, list[i])
                              : slora_safetensors_dir_find(src->dir, list[i]);
        if (t != NULL) {
            return slora_err_set(err, SLORA_ERROR, "%s: tensor '%s': "
                                 "architecture %s does not apply it", src->file,
                                 list[i], c->arch);
        }
    }

    return SLORA_OK;
}


static int
slora_model_fill(slora_model_t *m, const slora_model_src_t *src,
    slora_err_t *err)
{
    int                    pass, nd, d, ok;
    char                   name[160], have[96], want[96];
    float                **slot, *mem;
    size_t                 total, n, off;
    int32_t                l, first, last;
    int64_t                dims[2];
    slora_wkind_e          k;
    const slora_tensor_t  *t;
    slora_model_config_t  *c;

    c = &m->cfg;

    if (slora_model_refuse_extra(&m->cfg, src, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    m->w.layers = calloc((size_t) c->n_layers, sizeof(slora_layer_weights_t));
    if (m->w.layers == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: out of memory",
                             src->file);
    }

    total = 0;
    mem = NULL;

    /* pass 0 finds, checks and sizes every weight; pass 1 points at and
     * fills its slot */

    for (pass = 0; pass < 2; pass++) {
        off = 0;

        for (k = 0; k < SLORA_W_N; k++) {
            if (!slora_model_wanted(c, k)) {
                continue;
            }

            first = k < SLORA_W_ATTN_NORM ? -1 : 0;
            last = k < SLORA_W_ATTN_NORM ? -1 : c->n_layers - 1;

            for (l = first; l <= last; l++) {
                nd = slora_model_shape(c, k, dims);
                n = (size_t) dims[0] * (size_t) (nd == 2 ? dims[1] : 1);
                t = slora_model_find(src, k, l, name, sizeof(name));

                if (pass == 0) {
                    /* check before allocating: a file cannot make us
                     * allocate for tensors it does not hold */

                    if (t == NULL) {
                        return slora_err_set(err, SLORA_ERROR, "%s: tensor "
                                             "'%s' missing", src->file, name);
                    }

                    ok = t->n_dims == nd;
                    for (d = 0; ok && d < nd; d++) {
                        ok = t->dims[d] == dims[d];
                    }

                    if (!ok) {
                        slora_model_dims(have, sizeof(have), t->dims,
                                         t->n_dims);
                        slora_model_dims(want, sizeof(want), dims, nd);

                        return slora_err_set(err, SLORA_ERROR, "%s: tensor "
                                             "'%s': shape %s (%d dims), "
                                             "expected %s", src->file, name,
                                             have, t->n_dims, want);
                    }

                    if (t->dtype == SLORA_DT_I32 || t->dtype == SLORA_DT_N) {
                        return slora_err_set(err, SLORA_ERROR, "%s: tensor "
                                             "'%s': dtype %s is not a weight "
                                             "type", src->file, name,
                                             slora_dtype_name(t->dtype));
                    }

                    /* the dims are capped, so this cannot overflow */
                    total += (n + SLORA_MODEL_ALIGN - 1)
                             / SLORA_MODEL_ALIGN * SLORA_MODEL_ALIGN;
                    continue;
                }

                slot = slora_model_slot(m, k, l);
                *slot = mem + off;

                if (slora_tensor_to_f32(t, *slot, err) != SLORA_OK) {
                    return slora_err_prefix(err, "%s", src->file);
                }

                off += (n + SLORA_MODEL_ALIGN - 1)
                       / SLORA_MODEL_ALIGN * SLORA_MODEL_ALIGN;
            }
        }

        if (pass == 0) {
            if (slora_mul_size(total, sizeof(float), &m->mem_size)
                != SLORA_OK
                || posix_memalign(&m->mem, 64, m->mem_size) != 0)
            {
                m->mem = NULL;
                return slora_err_set(err, SLORA_ERROR, "%s: no memory for "
                                     "%zu floats of weights", src->file,
                                     total);
            }
            mem = m->mem;
        }
    }

    if (c->tied_embeddings) {
        m->w.output = m->w.tok_embd;
    }

    return SLORA_OK;
}


int
slora_model_permute_qk_rows(float *w, int32_t n_head, int32_t head_dim,
    int64_t cols)
{
    float    *tmp, *head;
    size_t    row;
    int32_t   h, i, j, half;

    if (n_head < 1 || head_dim < 2 || head_dim % 2 != 0 || cols < 1) {
        return SLORA_ERROR;
    }

    row = (size_t) cols * sizeof(float);
    half = head_dim / 2;

    tmp = malloc((size_t) head_dim * row);
    if (tmp == NULL) {
        return SLORA_ERROR;
    }

    /* per head, row 2i + j of the result is row j * half + i of the input:
     * numpy's reshape(n_head, 2, half, cols).swapaxes(1, 2) */

    for (h = 0; h < n_head; h++) {
        head = w + (size_t) h * head_dim * cols;
        memcpy(tmp, head, (size_t) head_dim * row);

        for (i = 0; i < half; i++) {
            for (j = 0; j < 2; j++) {
                memcpy(head + (size_t) (2 * i + j) * cols,
                       tmp + (size_t) (j * half + i) * cols, row);
            }
        }
    }

    free(tmp);

    return SLORA_OK;
}
