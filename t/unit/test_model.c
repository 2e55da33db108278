/*
 * test_model.c: the model loader over both formats, the mkmodel
 * generator, and the q/k row permutation.
 *
 * The same seed written as GGUF and as a safetensors folder must load to
 * the same configuration and the same numbers, with GGUF llama's q and k
 * rows permuted exactly as the direct formula says. Models with one
 * wrong or missing tensor, or a bad config, must be refused with an error
 * that names the file and the tensor.
 */

#include <stdint.h>
#include <unistd.h>
#include <sys/stat.h>

#include "tap.h"
#include "slora_model.h"
#include "slora_mkmodel.h"
#include "slora_gguf.h"


static char  tmpdir[64];


static void
test_permute(void)
{
    int       same;
    float    *w, *orig;
    int32_t   n_head, hd, h, i, j;
    int64_t   c, cols, r;
    float     tiny[4] = { 0, 1, 2, 3 };

    ok(slora_model_permute_qk_rows(tiny, 1, 4, 1) == SLORA_OK
       && tiny[0] == 0 && tiny[1] == 2 && tiny[2] == 1 && tiny[3] == 3,
       "one head of 4 rows: 0 1 2 3 -> 0 2 1 3");

    n_head = 3;
    hd = 8;
    cols = 5;
    w = malloc((size_t) n_head * hd * cols * sizeof(float));
    orig = malloc((size_t) n_head * hd * cols * sizeof(float));
    for (r = 0; r < (int64_t) n_head * hd * cols; r++) {
        orig[r] = w[r] = (float) r;
    }

    ok(slora_model_permute_qk_rows(w, n_head, hd, cols) == SLORA_OK,
       "permute 3 heads of 8");

    /* row h*hd + 2i + j of the result is row h*hd + j*hd/2 + i */
    same = 1;
    for (h = 0; h < n_head; h++) {
        for (i = 0; i < hd / 2; i++) {
            for (j = 0; j < 2; j++) {
                for (c = 0; c < cols; c++) {
                    same &= w[((int64_t) h * hd + 2 * i + j) * cols + c]
                            == orig[((int64_t) h * hd + j * hd / 2 + i) * cols
                                    + c];
                }
            }
        }
    }
    ok(same, "permuted rows match the direct formula");

    ok(slora_model_permute_qk_rows(w, 2, 3, 4) == SLORA_ERROR,
       "odd head size refused");

    free(w);
    free(orig);
}


static slora_model_t *
make_and_load(slora_mkmodel_conf_t *c, const char *name)
{
    char            path[256];
    slora_err_t     err;
    slora_model_t  *m;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);

    if (slora_mkmodel(c, path, &err) != SLORA_OK) {
        BAIL_OUT("mkmodel %s: %s", name, err.msg);
    }

    m = slora_model_load(path, &err);
    if (m == NULL) {
        BAIL_OUT("load %s: %s", name, err.msg);
    }

    return m;
}


/* The model of c in both formats: name.gguf as *g, folder name-hf as
 * *s. */
static void
make_both(slora_mkmodel_conf_t *c, const char *name, slora_model_t **g,
    slora_model_t **s)
{
    char  file[128];

    snprintf(file, sizeof(file), "%s.gguf", name);
    c->gguf = 1;
    *g = make_and_load(c, file);
    snprintf(file, sizeof(file), "%s-hf", name);
    c->gguf = 0;
    *s = make_and_load(c, file);
}


static int
same_floats(const float *a, const float *b, size_t n)
{
    return a != NULL && b != NULL && memcmp(a, b, n * sizeof(float)) == 0;
}


static void
compare_models(const char *what, slora_model_t *g, slora_model_t *s)
{
    int                    same, l;
    float                 *tmp;
    size_t                 q, kv, h, f, v;
    slora_model_config_t  *a, *b;

    a = &g->cfg;
    b = &s->cfg;

    ok(strcmp(a->arch, b->arch) == 0 && a->n_layers == b->n_layers
       && a->hidden == b->hidden && a->n_heads == b->n_heads
       && a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim
       && a->ffn == b->ffn && a->vocab == b->vocab
       && a->max_ctx == b->max_ctx && a->rope_theta == b->rope_theta
       && a->norm_eps == b->norm_eps
       && a->tied_embeddings == b->tied_embeddings
       && a->qkv_bias == b->qkv_bias,
       "%s: GGUF and safetensors configs identical", what);

    h = (size_t) a->hidden;
    f = (size_t) a->ffn;
    v = (size_t) a->vocab;
    q = (size_t) a->n_heads * a->head_dim;
    kv = (size_t) a->n_kv_heads * a->head_dim;

    tmp = malloc(q * h * sizeof(float));

    same = same_floats(g->w.tok_embd, s->w.tok_embd, v * h)
           && same_floats(g->w.out_norm, s->w.out_norm, h)
           && same_floats(g->w.output, s->w.output, v * h)
           && (a->tied_embeddings ? g->w.output == g->w.tok_embd
                                  : g->w.output != g->w.tok_embd);

    for (l = 0; l < a->n_layers; l++) {
        slora_layer_weights_t  *x = &g->w.layers[l], *y = &s->w.layers[l];

        same &= same_floats(x->wv, y->wv, kv * h)
                && same_floats(x->wo, y->wo, h * q)
                && same_floats(x->w_gate, y->w_gate, f * h)
                && same_floats(x->w_up, y->w_up, f * h)
                && same_floats(x->w_down, y->w_down, h * f)
                && same_floats(x->attn_norm, y->attn_norm, h)
                && same_floats(x->ffn_norm, y->ffn_norm, h);

        if (a->qkv_bias) {
            same &= same_floats(x->bq, y->bq, q)
                    && same_floats(x->bk, y->bk, kv)
                    && same_floats(x->bv, y->bv, kv);
        } else {
            same &= x->bq == NULL && y->bq == NULL;
        }

        /* q and k: GGUF llama holds HF rows permuted */
        memcpy(tmp, y->wq, q * h * sizeof(float));
        if (a->rope == SLORA_ROPE_NORM) {
            slora_model_permute_qk_rows(tmp, a->n_heads, a->head_dim,
                                        a->hidden);
        }
        same &= same_floats(x->wq, tmp, q * h);

        memcpy(tmp, y->wk, kv * h * sizeof(float));
        if (a->rope == SLORA_ROPE_NORM) {
            slora_model_permute_qk_rows(tmp, a->n_kv_heads, a->head_dim,
                                        a->hidden);
        }
        same &= same_floats(x->wk, tmp, kv * h);
    }

    ok(same, "%s: every weight equal (q, k through the permutation)", what);

    same = 0;
    for (l = 0; l < (int) (q * h); l++) {
        same |= g->w.layers[0].wq[l] != s->w.layers[0].wq[l];
    }
    ok(a->rope == SLORA_ROPE_NEOX || same,
       "%s: the permutation is not the identity here", what);

    free(tmp);
}


static void
test_formats_agree(void)
{
    slora_model_t         *g, *s;
    slora_mkmodel_conf_t   c;

    slora_mkmodel_defaults(&c);
    c.seed = 42;
    c.n_layers = 3;
    c.hidden = 64;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.ffn = 96;
    c.vocab = 200;
    c.max_ctx = 512;

    make_both(&c, "llama", &g, &s);

    is_int(g->cfg.rope, SLORA_ROPE_NORM, "GGUF llama: NORM rope");
    is_int(s->cfg.rope, SLORA_ROPE_NEOX, "HF llama: NEOX rope");
    is_int(g->cfg.n_layers, 3, "3 layers");
    is_int(g->cfg.ffn, 96, "ffn 96");
    is_int(g->cfg.max_ctx, 512, "context 512");
    is_int(g->cfg.tied_embeddings, 0, "untied");
    is_str(s->cfg.name, "llama-hf", "HF model named after its folder");
    is_str(g->cfg.name, "slora-tiny-llama-s42", "GGUF model: general.name");
    ok(g->gguf != NULL && s->gguf == NULL, "only the GGUF stays open");
    compare_models("llama f32", g, s);

    is_int(slora_proj_in_dim(&g->cfg, SLORA_PROJ_O), 64, "o_proj in 64");
    is_int(slora_proj_out_dim(&g->cfg, SLORA_PROJ_K), 32, "k_proj out 32");
    is_int(slora_proj_in_dim(&g->cfg, SLORA_PROJ_DOWN), 96, "down in 96");
    is_int(slora_proj_out_dim(&g->cfg, SLORA_PROJ_GATE), 96, "gate out 96");
    is_int(slora_proj_out_dim(&g->cfg, SLORA_PROJ_DOWN), 64, "down out 64");
    is_str(slora_proj_name(SLORA_PROJ_GATE), "gate_proj", "gate_proj name");

    slora_model_free(g);
    slora_model_free(s);

    /* a head size of its own (Mistral NeMo: 32 heads of 128, hidden
     * 5120), wider and narrower than hidden / heads */
    slora_mkmodel_defaults(&c);
    c.seed = 9;
    c.head_dim = 32;
    make_both(&c, "wide-heads", &g, &s);
    ok(g->cfg.head_dim == 32 && s->cfg.head_dim == 32 && g->cfg.hidden == 64
       && g->cfg.n_heads == 4, "head_dim 32 over hidden 64 and 4 heads, in "
       "both formats (GGUF key_length, HF head_dim)");
    is_int(slora_proj_out_dim(&g->cfg, SLORA_PROJ_Q), 128, "q_proj out 128");
    is_int(slora_proj_in_dim(&g->cfg, SLORA_PROJ_O), 128, "o_proj in 128");
    is_int(slora_proj_out_dim(&g->cfg, SLORA_PROJ_K), 64, "k_proj out 64");
    compare_models("llama head_dim 32", g, s);
    slora_model_free(g);
    slora_model_free(s);

    /* Llama 3.1's RoPE scaling: GGUF's rope_freqs.weight and the HF
     * config's rope_scaling make the same divisors */
    slora_mkmodel_defaults(&c);
    c.seed = 11;
    c.rope_llama3 = 128;
    make_both(&c, "rope-llama3", &g, &s);
    ok(g->w.rope_freqs != NULL && s->w.rope_freqs != NULL
       && memcmp(g->w.rope_freqs, s->w.rope_freqs, 8 * sizeof(float)) == 0,
       "llama3 RoPE scaling: the same divisors from both formats");
    ok(g->w.rope_freqs[0] == 1.0f && g->w.rope_freqs[7] == 8.0f
       && g->w.rope_freqs[2] > 1.0f && g->w.rope_freqs[2] < 8.0f,
       "... 1 for the fastest pair, 8 for the slowest, between for one "
       "between (%g %g %g)", g->w.rope_freqs[0], g->w.rope_freqs[2],
       g->w.rope_freqs[7]);
    compare_models("llama rope_llama3", g, s);
    slora_model_free(g);
    slora_model_free(s);
    slora_mkmodel_defaults(&c);
    g = make_and_load(&c, "no-rope-scaling.gguf");
    ok(g->w.rope_freqs == NULL, "no RoPE scaling: no divisors");
    slora_model_free(g);

    /* Qwen3: q and k heads RMS-normed, in both formats, NEOX, no bias */
    slora_mkmodel_defaults(&c);
    c.seed = 12;
    c.qwen3 = 1;
    c.head_dim = 32;
    make_both(&c, "qwen3", &g, &s);
    ok(g->cfg.qk_norm && s->cfg.qk_norm && !g->cfg.qkv_bias
       && g->cfg.rope == SLORA_ROPE_NEOX && strcmp(g->cfg.arch, "qwen3") == 0
       && strcmp(s->cfg.arch, "qwen3") == 0,
       "qwen3: head norms, no biases, NEOX, in both formats");
    ok(g->w.layers[1].q_norm != NULL && g->w.layers[1].k_norm != NULL
       && memcmp(g->w.layers[1].q_norm, s->w.layers[1].q_norm,
                 32 * sizeof(float)) == 0
       && memcmp(g->w.layers[1].k_norm, s->w.layers[1].k_norm,
                 32 * sizeof(float)) == 0
       && g->w.layers[1].q_norm[0] != 1.0f,
       "qwen3: the same head norms from both formats, not all ones");
    compare_models("qwen3 head_dim 32", g, s);
    slora_model_free(g);
    slora_model_free(s);

    slora_mkmodel_defaults(&c);
    c.seed = 10;
    c.head_dim = 8;
    c.gguf = 0;
    s = make_and_load(&c, "narrow-heads-hf");
    ok(s->cfg.head_dim == 8 && slora_proj_out_dim(&s->cfg, SLORA_PROJ_Q)
       == 32, "head_dim 8: q_proj out 32 over hidden 64");
    slora_model_free(s);

    slora_mkmodel_defaults(&c);
    c.seed = 7;
    c.qwen2 = 1;
    c.tied = 1;
    c.dtype = SLORA_DT_F16;

    make_both(&c, "qwen2", &g, &s);

    ok(g->cfg.qkv_bias && s->cfg.qkv_bias, "qwen2: q/k/v biases");
    ok(g->cfg.rope == SLORA_ROPE_NEOX && s->cfg.rope == SLORA_ROPE_NEOX,
       "qwen2: NEOX rope in both formats");
    ok(g->cfg.tied_embeddings && s->cfg.tied_embeddings, "qwen2: tied");
    compare_models("qwen2 f16 tied", g, s);

    slora_model_free(g);
    slora_model_free(s);
}


/* rewrite() adds the f32 key rewrite_key (when not NULL) of value
 * rewrite_val. */
static const char  *rewrite_key;
static float        rewrite_val;


/* Copies src into dst, leaving out tensor `skip`, giving tensor `reshape`
 * (added when absent) the dims {rows, cols} and zeros, and setting the
 * architecture to arch when not NULL. */
static void
rewrite(const char *src, const char *dst, const char *skip,
    const char *reshape, int64_t rows, int64_t cols, const char *arch)
{
    float                 *zeros;
    size_t                 len;
    int64_t                i, dims[2];
    const char            *key;
    slora_err_t            err;
    slora_gguf_t          *g;
    slora_gguf_writer_t   *w;
    const slora_tensor_t  *t;

    g = slora_gguf_open(src, &err);
    w = slora_gguf_writer_new();
    if (g == NULL || w == NULL) {
        BAIL_OUT("rewrite %s", src);
    }

    for (i = 0; i < slora_gguf_n_kv(g); i++) {
        key = slora_gguf_kv_key(g, i, &len);
        if (arch != NULL && len == 20
            && memcmp(key, "general.architecture", 20) == 0)
        {
            slora_gguf_writer_str(w, "general.architecture", arch, &err);
            continue;
        }
        if (slora_gguf_writer_copy_kv(w, g, i, &err) != SLORA_OK) {
            BAIL_OUT("copy kv: %s", err.msg);
        }
    }

    if (rewrite_key != NULL
        && slora_gguf_writer_f32(w, rewrite_key, rewrite_val, &err)
           != SLORA_OK)
    {
        BAIL_OUT("add kv: %s", err.msg);
    }

    zeros = calloc((size_t) (rows * cols + 1), sizeof(float));
    dims[0] = rows;
    dims[1] = cols;

    /* a name not in the file is added */
    if (reshape != NULL && slora_gguf_find_tensor(g, reshape) == NULL) {
        slora_gguf_writer_tensor(w, reshape, SLORA_DT_F32, 2, dims, zeros,
                                 &err);
    }

    for (i = 0; i < slora_gguf_n_tensors(g); i++) {
        t = slora_gguf_tensor(g, i);

        if (skip != NULL && strcmp(t->name, skip) == 0) {
            continue;
        }

        if (reshape != NULL && strcmp(t->name, reshape) == 0) {
            slora_gguf_writer_tensor(w, t->name, SLORA_DT_F32, 2, dims,
                                     zeros, &err);
            continue;
        }

        if (slora_gguf_writer_tensor(w, t->name, t->dtype, t->n_dims,
                                     t->dims, t->data, &err) != SLORA_OK)
        {
            BAIL_OUT("copy tensor: %s", err.msg);
        }
    }

    if (slora_gguf_writer_write(w, dst, &err) != SLORA_OK) {
        BAIL_OUT("rewrite: %s", err.msg);
    }

    free(zeros);
    slora_gguf_writer_free(w);
    slora_gguf_close(g);
}


static int
load_fails(const char *path, const char *needle, slora_err_t *err)
{
    slora_model_t  *m;

    m = slora_model_load(path, err);
    if (m != NULL) {
        slora_model_free(m);
        return 0;
    }

    diag("%s", err->msg);

    return strstr(err->msg, path) != NULL && strstr(err->msg, needle) != NULL;
}


static void
test_refusals(void)
{
    char                   src[256], dst[256], cfg[300];
    FILE                  *f;
    slora_err_t            err;
    slora_gguf_t          *g;
    slora_model_t         *m;
    slora_mkmodel_conf_t   c;

    snprintf(src, sizeof(src), "%s/llama.gguf", tmpdir);
    snprintf(dst, sizeof(dst), "%s/bad.gguf", tmpdir);

    rewrite(src, dst, NULL, "blk.1.attn_k.weight", 64, 64, NULL);
    ok(load_fails(dst, "'blk.1.attn_k.weight': shape [64, 64] (2 dims), "
                  "expected [32, 64]", &err),
       "wrong k shape refused, naming the tensor and both shapes");

    /* a 1-D weight given 2 dims: both shapes named as they are */
    rewrite(src, dst, NULL, "blk.0.attn_norm.weight", 1, 64, NULL);
    ok(load_fails(dst, "'blk.0.attn_norm.weight': shape [1, 64] (2 dims), "
                  "expected [64]", &err),
       "a norm of 2 dims refused, its expected shape [64]");

    rewrite(src, dst, "blk.2.ffn_up.weight", NULL, 0, 0, NULL);
    ok(load_fails(dst, "'blk.2.ffn_up.weight' missing", &err),
       "missing tensor refused, naming it");

    rewrite(src, dst, NULL, "token_embd.weight", 200, 32, NULL);
    ok(load_fails(dst, "token_embd.weight", &err),
       "token_embd of the wrong width refused");

    rewrite(src, dst, NULL, "blk.0.attn_q_norm.weight", 1, 16, NULL);
    ok(load_fails(dst, "'blk.0.attn_q_norm.weight': architecture llama "
                  "does not apply it", &err),
       "a head norm in a llama model refused, not ignored");

    rewrite(src, dst, NULL, "rope_freqs.weight", 2, 4, NULL);
    ok(load_fails(dst, "'rope_freqs.weight' is not [8]", &err),
       "RoPE divisors of the wrong shape refused");

    /* llama.cpp scales linearly by a factor that has no type */
    rewrite_key = "llama.rope.scaling.factor";
    rewrite_val = 4.0f;
    rewrite(src, dst, NULL, NULL, 0, 0, NULL);
    ok(load_fails(dst, "llama.rope.scaling.factor 4 without "
                  "rope.scaling.type is linear", &err),
       "a RoPE scaling factor without a type refused, not ignored");

    rewrite_key = "llama.rope.scale_linear";
    rewrite(src, dst, NULL, NULL, 0, 0, NULL);
    ok(load_fails(dst, "llama.rope.scale_linear 4", &err),
       "the older rope.scale_linear refused, not ignored");

    rewrite_key = "llama.rope.scaling.factor";
    rewrite_val = 1.0f;
    rewrite(src, dst, NULL, NULL, 0, 0, NULL);
    m = slora_model_load(dst, &err);
    ok(m != NULL, "a RoPE scaling factor of 1 is none: %s",
       m != NULL ? "loaded" : err.msg);
    slora_model_free(m);
    rewrite_key = NULL;

    rewrite(src, dst, NULL, NULL, 0, 0, "gpt2");
    ok(load_fails(dst, "'gpt2' not supported", &err),
       "unsupported architecture refused");

    rewrite(src, dst, NULL, "blk.0.attn_output.bias", 1, 64, NULL);
    ok(load_fails(dst, "blk.0.attn_output.bias", &err),
       "a bias slora does not apply is refused, not ignored");

    g = slora_gguf_open(src, &err);
    ok(g != NULL && slora_gguf_find_kv(g, "llama.vocab_size") >= 0,
       "mkmodel writes llama.vocab_size");
    slora_gguf_close(g);

    slora_mkmodel_defaults(&c);
    c.gguf = 0;
    c.tied = 1;
    snprintf(dst, sizeof(dst), "%s/badcfg", tmpdir);
    if (slora_mkmodel(&c, dst, &err) != SLORA_OK) {
        BAIL_OUT("%s", err.msg);
    }

    snprintf(cfg, sizeof(cfg), "%s/config.json", dst);
    f = fopen(cfg, "w");
    fputs("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
          "\"num_hidden_layers\":2,\"num_attention_heads\":4,"
          "\"vocab_size\":256}", f);
    fclose(f);
    ok(load_fails(dst, "intermediate_size", &err),
       "config.json without intermediate_size refused");

    f = fopen(cfg, "w");
    fputs("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
          "\"intermediate_size\":128,\"num_hidden_layers\":2,"
          "\"num_attention_heads\":4,\"num_key_value_heads\":2,"
          "\"vocab_size\":256,\"rope_scaling\":{\"type\":\"linear\","
          "\"factor\":2.0}}", f);
    fclose(f);
    ok(load_fails(dst, "rope_scaling \"linear\" is not supported", &err),
       "rope_scaling other than llama3's refused");

    f = fopen(cfg, "w");
    fputs("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
          "\"intermediate_size\":128,\"num_hidden_layers\":2,"
          "\"num_attention_heads\":4,\"num_key_value_heads\":2,"
          "\"vocab_size\":256,\"tie_word_embeddings\":true,"
          "\"rope_scaling\":{\"rope_type\":\"default\"}}", f);
    fclose(f);
    m = slora_model_load(dst, &err);
    ok(m != NULL && m->w.rope_freqs == NULL,
       "rope_scaling \"default\" is none: %s", m ? "loaded" : err.msg);
    slora_model_free(m);

    /* llama3 scaling's numbers, bounded as rope_freqs.weight's are */
    {
        static const char  *scalings[] = {
            "\"factor\":1e7",
            "\"factor\":1e39",
            "\"high_freq_factor\":1e39",
            "\"original_max_position_embeddings\":1e39",
        };
        size_t              i;

        for (i = 0; i < sizeof(scalings) / sizeof(scalings[0]); i++) {
            f = fopen(cfg, "w");
            fprintf(f, "{\"architectures\":[\"LlamaForCausalLM\"],"
                    "\"hidden_size\":64,\"intermediate_size\":128,"
                    "\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                    "\"num_key_value_heads\":2,\"vocab_size\":256,"
                    "\"tie_word_embeddings\":true,\"rope_scaling\":"
                    "{\"rope_type\":\"llama3\",%s}}", scalings[i]);
            fclose(f);
            ok(load_fails(dst, "rope_scaling: factor", &err),
               "rope_scaling llama3 with %s refused", scalings[i]);
        }
    }

    /* Mistral 7B v0.1's window of 4096 in a context of 32768: cut to
     * the window, where full attention is the model's */
    f = fopen(cfg, "w");
    fputs("{\"architectures\":[\"MistralForCausalLM\"],\"hidden_size\":64,"
          "\"intermediate_size\":128,\"num_hidden_layers\":2,"
          "\"num_attention_heads\":4,\"num_key_value_heads\":2,"
          "\"vocab_size\":256,\"tie_word_embeddings\":true,"
          "\"max_position_embeddings\":32768,\"sliding_window\":4096}", f);
    fclose(f);
    m = slora_model_load(dst, &err);
    ok(m != NULL && m->cfg.max_ctx == 4096,
       "Mistral's sliding_window bounds the context: %d",
       m ? (int) m->cfg.max_ctx : -1);
    slora_model_free(m);

    f = fopen(cfg, "w");
    fputs("{\"architectures\":[\"MistralForCausalLM\"],\"hidden_size\":64,"
          "\"intermediate_size\":128,\"num_hidden_layers\":2,"
          "\"num_attention_heads\":4,\"num_key_value_heads\":2,"
          "\"vocab_size\":256,\"tie_word_embeddings\":true,"
          "\"sliding_window\":\"4096\"}", f);
    fclose(f);
    ok(load_fails(dst, "sliding_window", &err),
       "a sliding_window that is no integer refused");

    /* Qwen2's window only where use_sliding_window says so; Llama has
     * none, whatever the file says */
    f = fopen(cfg, "w");
    fputs("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
          "\"intermediate_size\":128,\"num_hidden_layers\":2,"
          "\"num_attention_heads\":4,\"num_key_value_heads\":2,"
          "\"vocab_size\":256,\"tie_word_embeddings\":true,"
          "\"max_position_embeddings\":8192,\"sliding_window\":1024}", f);
    fclose(f);
    m = slora_model_load(dst, &err);
    ok(m != NULL && m->cfg.max_ctx == 8192,
       "Llama's context is not cut by a sliding_window: %d",
       m ? (int) m->cfg.max_ctx : -1);
    slora_model_free(m);

    f = fopen(cfg, "w");
    fputs("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
          "\"intermediate_size\":128,\"num_hidden_layers\":2,"
          "\"num_attention_heads\":4,\"num_key_value_heads\":2,"
          "\"vocab_size\":256,\"tie_word_embeddings\":false}", f);
    fclose(f);
    ok(load_fails(dst, "'lm_head.weight' missing", &err),
       "untied config without lm_head.weight refused");

    f = fopen(cfg, "w");
    fputs("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
          "\"intermediate_size\":128,\"num_hidden_layers\":3,"
          "\"num_attention_heads\":4,\"num_key_value_heads\":2,"
          "\"vocab_size\":256,\"tie_word_embeddings\":true}", f);
    fclose(f);
    ok(load_fails(dst, "model.layers.2.", &err),
       "config with more layers than the weights refused");

    f = fopen(cfg, "w");
    fputs("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
          "\"intermediate_size\":128,\"num_hidden_layers\":2,"
          "\"num_attention_heads\":3,\"vocab_size\":256}", f);
    fclose(f);
    ok(load_fails(dst, "heads", &err), "heads not dividing hidden refused");

    f = fopen(cfg, "w");
    fputs("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
          "\"intermediate_size\":128,\"num_hidden_layers\":2,"
          "\"num_attention_heads\":4,\"head_dim\":15,\"vocab_size\":256}",
          f);
    fclose(f);
    ok(load_fails(dst, "head size 15", &err), "an odd head_dim refused");

    /* 2^16 heads of 64: q 2^22 wide, and 2^32 at 2^26 heads, past the
     * 32 bits the projections compute it in */
    f = fopen(cfg, "w");
    fputs("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
          "\"intermediate_size\":128,\"num_hidden_layers\":2,"
          "\"num_attention_heads\":65536,\"num_key_value_heads\":65536,"
          "\"head_dim\":64,\"vocab_size\":256}", f);
    fclose(f);
    ok(load_fails(dst, "attention 4194304 wide, at most 131072", &err),
       "heads times head_dim past the widest dimension refused");

    f = fopen(cfg, "w");
    fputs("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
          "\"intermediate_size\":128,\"num_hidden_layers\":2,"
          "\"num_attention_heads\":67108864,\"num_key_value_heads\":1,"
          "\"head_dim\":64,\"vocab_size\":256}", f);
    fclose(f);
    ok(load_fails(dst, "attention 4294967296 wide", &err),
       "heads times head_dim of 2^32 refused, counted in 64 bits");

    f = fopen(cfg, "w");
    fputs("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
          "\"intermediate_size\":128,\"num_hidden_layers\":2,"
          "\"num_attention_heads\":4,\"num_key_value_heads\":2,"
          "\"head_dim\":32,\"vocab_size\":256,"
          "\"tie_word_embeddings\":true}", f);
    fclose(f);
    ok(load_fails(dst, "'model.layers.0.self_attn.q_proj.weight': shape "
                  "[64, 64] (2 dims), expected [128, 64]", &err),
       "head_dim 32 against weights of 16: q_proj's shape refused");

    slora_mkmodel_defaults(&c);
    snprintf(dst, sizeof(dst), "%s/odd.gguf", tmpdir);
    c.head_dim = 7;
    ok(slora_mkmodel(&c, dst, &err) == SLORA_ERROR
       && strstr(err.msg, "head size 7") != NULL,
       "mkmodel refuses an odd head size: %s", err.msg);
}


int
main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "t/data/gen/test_model");
    mkdir("t/data", 0755);
    mkdir("t/data/gen", 0755);
    mkdir(tmpdir, 0755);

    test_permute();
    test_formats_agree();
    test_refusals();

    return done_testing();
}
