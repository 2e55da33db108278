/*
 * slora_model_random.c: models with random weights named by a spec
 * instead of a file, for benchmarks of shapes nobody should have to
 * download: "random:llama-7b", "random:llama-13b", "random:llama-70b",
 * "random:smollm2-135m", "random:mistral-nemo-12b" (a head size of
 * its own: 32 heads of 128 over a hidden size of 5120), each optionally
 * followed by overrides,
 * "random:llama-7b,layers=4,vocab=49152,seed=7".
 *
 * The one idea: every weight is a pure function of (seed, tensor,
 * index), a counter-based hash (kernels/slora_random.h), so the threads
 * that fill the model in parallel need no shared state and the same
 * spec is the same model on every machine and every backend; a backend
 * that makes weights where they are used (the CUDA backend, on the GPU)
 * gets the model deferred, with no weights at all in host memory.
 * Weights are uniform in [-1/sqrt(in), 1/sqrt(in)], norms are 1, so
 * activations keep their scale through any depth. There is no
 * tokenizer: such a model takes token ids (`slora bench`).
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slora_model.h"
#include "slora_random.h"


#define SLORA_RANDOM_THREADS  32


typedef struct {
    const char   *name;
    int32_t       layers, hidden, heads, kv_heads, head_dim, ffn, vocab;
} slora_random_shape_t;


typedef struct {
    float        *w;
    size_t        n;
    float         amp;                  /* 0: all ones */
    uint64_t      key;
} slora_random_tensor_t;


typedef struct {
    slora_random_tensor_t  *t;
    int32_t                 n_t;
    size_t                  total;
    int                     ith;
    int                     nth;
    uint64_t                seed;
} slora_random_job_t;


static const slora_random_shape_t  slora_random_shapes[] = {
    { "llama-7b",          32, 4096, 32, 32,   0, 11008,  32000 },
    { "llama-13b",         40, 5120, 40, 40,   0, 13824,  32000 },
    { "llama-70b",         80, 8192, 64,  8,   0, 28672,  32000 },
    { "smollm2-135m",      30,  576,  9,  3,   0,  1536,  49152 },
    { "mistral-nemo-12b",  40, 5120, 32,  8, 128, 14336, 131072 },
    { NULL, 0, 0, 0, 0, 0, 0, 0 }
};


static slora_model_t *slora_random_new(const char *spec, slora_err_t *err);
static int slora_random_parse(const char *spec, slora_model_config_t *c,
    uint64_t *seed, slora_err_t *err);
static void *slora_random_fill(void *arg);


int
slora_model_is_random(const char *path)
{
    return strncmp(path, "random:", 7) == 0;
}


int
slora_model_random_config(const char *spec, slora_model_config_t *cfg,
    slora_err_t *err)
{
    uint64_t  seed;

    return slora_random_parse(spec, cfg, &seed, err);
}


slora_model_t *
slora_model_random_deferred(const char *spec, slora_err_t *err)
{
    slora_model_t  *m;

    m = slora_random_new(spec, err);
    if (m != NULL) {
        m->random_deferred = 1;
    }

    return m;
}


/* The model's header: its spec parsed, no weights. */
static slora_model_t *
slora_random_new(const char *spec, slora_err_t *err)
{
    slora_model_t  *m;

    m = calloc(1, sizeof(slora_model_t));
    if (m == NULL) {
        slora_err_set(err, SLORA_ERROR, "%s: out of memory", spec);
        return NULL;
    }

    snprintf(m->path, sizeof(m->path), "%s", spec);

    if (slora_random_parse(spec, &m->cfg, &m->random_seed, err) != SLORA_OK) {
        free(m);
        return NULL;
    }

    return m;
}


slora_model_t *
slora_model_random(const char *spec, slora_err_t *err)
{
    slora_model_t            *m;
    slora_model_config_t     *c;
    slora_layer_weights_t    *L;
    slora_random_tensor_t    *t;
    slora_random_job_t        jobs[SLORA_RANDOM_THREADS];
    pthread_t                 tid[SLORA_RANDOM_THREADS];
    uint64_t                  seed;
    size_t                    total, h, q, kv, f, v;
    int32_t                   l, n_t, i;
    long                      cores;
    int                       nth, started[SLORA_RANDOM_THREADS];
    float                    *p;

    m = slora_random_new(spec, err);
    if (m == NULL) {
        return NULL;
    }

    c = &m->cfg;
    seed = m->random_seed;
    h = (size_t) c->hidden;
    q = (size_t) c->n_heads * (size_t) c->head_dim;
    kv = (size_t) c->n_kv_heads * (size_t) c->head_dim;
    f = (size_t) c->ffn;
    v = (size_t) c->vocab;

    total = 2 * v * h + h
            + (size_t) c->n_layers * (2 * h + q * h + 2 * kv * h + h * q
                                      + 3 * f * h);

    m->w.layers = calloc((size_t) c->n_layers, sizeof(slora_layer_weights_t));
    t = calloc((size_t) c->n_layers * 9 + 3, sizeof(slora_random_tensor_t));

    if (m->w.layers == NULL || t == NULL
        || posix_memalign(&m->mem, 64, total * sizeof(float)) != 0)
    {
        m->mem = NULL;
        free(t);
        slora_model_free(m);
        slora_err_set(err, SLORA_ERROR, "%s: cannot allocate %zu bytes of "
                      "weights", spec, total * sizeof(float));
        return NULL;
    }

    m->mem_size = total * sizeof(float);
    p = m->mem;
    n_t = 0;

#define slora_random_take(dst, count, layer, tensor)                          \
    do {                                                                      \
        t[n_t].w = p;                                                         \
        t[n_t].n = (count);                                                   \
        slora_model_random_tensor(c, layer, tensor, &t[n_t].key,             \
                                  &t[n_t].amp);                               \
        (dst) = p;                                                            \
        p += (count);                                                         \
        n_t++;                                                                \
    } while (0)

    slora_random_take(m->w.tok_embd, v * h, -1, SLORA_RT_TOK_EMBD);
    slora_random_take(m->w.out_norm, h, -1, SLORA_RT_OUT_NORM);
    slora_random_take(m->w.output, v * h, -1, SLORA_RT_OUTPUT);

    for (l = 0; l < c->n_layers; l++) {
        L = &m->w.layers[l];
        slora_random_take(L->attn_norm, h, l, SLORA_RT_ATTN_NORM);
        slora_random_take(L->wq, q * h, l, SLORA_RT_WQ);
        slora_random_take(L->wk, kv * h, l, SLORA_RT_WK);
        slora_random_take(L->wv, kv * h, l, SLORA_RT_WV);
        slora_random_take(L->wo, h * q, l, SLORA_RT_WO);
        slora_random_take(L->ffn_norm, h, l, SLORA_RT_FFN_NORM);
        slora_random_take(L->w_gate, f * h, l, SLORA_RT_GATE);
        slora_random_take(L->w_up, f * h, l, SLORA_RT_UP);
        slora_random_take(L->w_down, h * f, l, SLORA_RT_DOWN);
    }

#undef slora_random_take

    cores = sysconf(_SC_NPROCESSORS_ONLN);
    nth = cores > 0 ? (int) cores : 1;
    nth = nth < SLORA_RANDOM_THREADS ? nth : SLORA_RANDOM_THREADS;

    for (i = 0; i < nth; i++) {
        jobs[i].t = t;
        jobs[i].n_t = n_t;
        jobs[i].total = total;
        jobs[i].ith = i;
        jobs[i].nth = nth;
        jobs[i].seed = seed;
        started[i] = 0;
    }

    for (i = 1; i < nth; i++) {
        started[i] = pthread_create(&tid[i], NULL, slora_random_fill,
                                    &jobs[i]) == 0;
        if (!started[i]) {
            slora_random_fill(&jobs[i]);
        }
    }

    slora_random_fill(&jobs[0]);

    for (i = 1; i < nth; i++) {
        if (started[i]) {
            pthread_join(tid[i], NULL);
        }
    }

    free(t);

    return m;
}


/*
 * Share ith of nth: the elements [total*ith/nth, total*(ith+1)/nth) of
 * the one allocation, whichever tensors they fall in.
 */

static void *
slora_random_fill(void *arg)
{
    slora_random_job_t  *j = arg;
    size_t               lo, hi, base, a, b, i;
    int32_t              k;
    float                amp;

    lo = j->total / (size_t) j->nth * (size_t) j->ith;
    hi = j->ith + 1 == j->nth ? j->total
                              : j->total / (size_t) j->nth
                                * (size_t) (j->ith + 1);
    base = 0;

    for (k = 0; k < j->n_t; k++) {
        a = lo > base ? lo - base : 0;
        b = hi - base < j->t[k].n ? hi - base : j->t[k].n;
        amp = j->t[k].amp;

        if (hi > base) {
            for (i = a; i < b; i++) {
                j->t[k].w[i] = slora_random_value(j->seed, j->t[k].key,
                                                  (uint64_t) i, amp);
            }
        }

        base += j->t[k].n;
        if (base >= hi) {
            break;
        }
    }

    return NULL;
}


static int
slora_random_parse(const char *spec, slora_model_config_t *c, uint64_t *seed,
    slora_err_t *err)
{
    const slora_random_shape_t  *s;
    const char                  *p, *eq, *end;
    char                         key[32], *e;
    size_t                       n;
    long long                    val;

    p = spec + 7;
    end = strchr(p, ',');
    n = end != NULL ? (size_t) (end - p) : strlen(p);

    for (s = slora_random_shapes; s->name != NULL; s++) {
        if (strlen(s->name) == n && strncmp(s->name, p, n) == 0) {
            break;
        }
    }

    if (s->name == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: unknown shape: not "
                             "llama-7b, llama-13b, llama-70b, "
                             "smollm2-135m or mistral-nemo-12b", spec);
    }

    memset(c, 0, sizeof(*c));
    snprintf(c->arch, sizeof(c->arch), "llama");
    snprintf(c->name, sizeof(c->name), "%s", spec);
    c->n_layers = s->layers;
    c->hidden = s->hidden;
    c->n_heads = s->heads;
    c->n_kv_heads = s->kv_heads;
    c->head_dim = s->head_dim;
    c->ffn = s->ffn;
    c->vocab = s->vocab;
    c->max_ctx = 4096;
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-5f;
    c->rope = SLORA_ROPE_NORM;
    *seed = 1;

    while (end != NULL) {
        p = end + 1;
        end = strchr(p, ',');
        n = end != NULL ? (size_t) (end - p) : strlen(p);
        eq = memchr(p, '=', n);

        if (eq == NULL || (size_t) (eq - p) >= sizeof(key)) {
            return slora_err_set(err, SLORA_ERROR, "%s: \"%.*s\": not "
                                 "key=value", spec, (int) n, p);
        }

        memcpy(key, p, (size_t) (eq - p));
        key[eq - p] = '\0';

        errno = 0;
        val = strtoll(eq + 1, &e, 10);

        if (errno != 0 || e == eq + 1 || e != p + n || val < 1
            || val > 1000000)
        {
            return slora_err_set(err, SLORA_ERROR, "%s: %s: not a number "
                                 "in [1, 1000000]", spec, key);
        }

        if (strcmp(key, "layers") == 0) {
            c->n_layers = (int32_t) val;
        } else if (strcmp(key, "hidden") == 0) {
            c->hidden = (int32_t) val;
        } else if (strcmp(key, "heads") == 0) {
            c->n_heads = (int32_t) val;
        } else if (strcmp(key, "kv_heads") == 0) {
            c->n_kv_heads = (int32_t) val;
        } else if (strcmp(key, "head_dim") == 0) {
            c->head_dim = (int32_t) val;
        } else if (strcmp(key, "ffn") == 0) {
            c->ffn = (int32_t) val;
        } else if (strcmp(key, "vocab") == 0) {
            c->vocab = (int32_t) val;
        } else if (strcmp(key, "ctx") == 0) {
            c->max_ctx = (int32_t) val;
        } else if (strcmp(key, "seed") == 0) {
            *seed = (uint64_t) val;
        } else {
            return slora_err_set(err, SLORA_ERROR, "%s: unknown key \"%s\" "
                                 "(layers, hidden, heads, kv_heads, "
                                 "head_dim, ffn, vocab, ctx, seed)", spec,
                                 key);
        }
    }

    if (c->n_heads % c->n_kv_heads != 0 || c->head_dim % 2 != 0
        || c->head_dim > 512
        || (c->head_dim == 0
            && (c->hidden % c->n_heads != 0
                || (c->hidden / c->n_heads) % 2 != 0)))
    {
        return slora_err_set(err, SLORA_ERROR, "%s: hidden %d, heads %d, "
                             "kv_heads %d, head_dim %d do not fit together",
                             spec, c->hidden, c->n_heads, c->n_kv_heads,
                             c->head_dim);
    }

    if (c->head_dim == 0) {
        c->head_dim = c->hidden / c->n_heads;
    }

    return SLORA_OK;
}
