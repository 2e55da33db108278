/*
 * bench_forward.c: times the CPU backend on a random model shaped like
 * SmolLM2-135M (30 layers, hidden 576, 9 heads over 3 KV heads, ffn
 * 1536, vocab 49152, tied embeddings), or on a model file of that shape:
 * one prefill, then single-token decode steps, optionally with a LoRA
 * adapter on all seven projections.
 *
 *     bench_forward [threads [prefill_tokens [decode_steps [rank
 *                   [weights [model.gguf]]]]]]
 *
 * weights is the backend's "f32" (default), "q8_0" or "native" ("native"
 * differs from "q8_0" only with a model file, whose Q4_1 blocks it
 * keeps).
 *
 * The one idea: only the backend is measured; the model, pages and
 * adapter rows are laid out by hand, the way the engine would, so the
 * numbers say what a step costs and nothing else.
 *
 * Build (from the repository root, after `make lib`):
 *     cc -std=gnu11 -O2 -Iengine -Ikernels \
 *         $(pkg-config --cflags openblas) bench/bench_forward.c \
 *         build/libslora.a $(pkg-config --libs libcjson libpcre2-8 \
 *         openblas hiredis libcrypto) -lpthread -lm -o build/bench_forward
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_core.h"
#include "slora_model.h"
#include "slora_batch.h"
#include "slora_backend.h"


#define B_LAYERS   30
#define B_HIDDEN   576
#define B_HEADS    9
#define B_KV       3
#define B_HD       64
#define B_KV_DIM   (B_KV * B_HD)
#define B_FFN      1536
#define B_VOCAB    49152
#define B_TPP      16
#define B_PAGE     (2 * B_TPP * B_KV_DIM)      /* 6144: 576, 192, 1536 */


static float *bench_weights(size_t n, float amp);
static slora_model_t *bench_model(void);
static void bench_place(int64_t *off, int32_t n, int32_t w, int32_t *next);
static int bench_lora(slora_backend_t *be, const int64_t *layer_off,
    slora_lora_t *lo, int64_t **rows, int32_t rank, int32_t *next_page);


static uint32_t  bench_rng = 12345;


static float *
bench_weights(size_t n, float amp)
{
    float   *w;
    size_t   i;

    w = malloc(n * sizeof(float));
    if (w == NULL) {
        fprintf(stderr, "bench_forward: out of memory\n");
        exit(1);
    }

    for (i = 0; i < n; i++) {
        bench_rng = bench_rng * 1664525u + 1013904223u;
        w[i] = amp * ((float) (bench_rng >> 8) / 8388608.0f - 1.0f);
    }

    return w;
}


static slora_model_t *
bench_model(void)
{
    slora_model_t          *m;
    slora_layer_weights_t  *L;
    int32_t                 l;
    float                   a;

    m = calloc(1, sizeof(slora_model_t));
    m->w.layers = calloc(B_LAYERS, sizeof(slora_layer_weights_t));
    if (m == NULL || m->w.layers == NULL) {
        return NULL;
    }

    strcpy(m->cfg.arch, "llama");
    strcpy(m->path, "random-smollm2-135m");
    m->cfg.n_layers = B_LAYERS;
    m->cfg.hidden = B_HIDDEN;
    m->cfg.n_heads = B_HEADS;
    m->cfg.n_kv_heads = B_KV;
    m->cfg.head_dim = B_HD;
    m->cfg.ffn = B_FFN;
    m->cfg.vocab = B_VOCAB;
    m->cfg.max_ctx = 8192;
    m->cfg.rope_theta = 100000.0f;
    m->cfg.norm_eps = 1e-5f;
    m->cfg.rope = SLORA_ROPE_NORM;
    m->cfg.tied_embeddings = 1;

    a = 0.07f;

    m->w.tok_embd = bench_weights((size_t) B_VOCAB * B_HIDDEN, 1.0f);
    m->w.output = m->w.tok_embd;
    m->w.out_norm = bench_weights(B_HIDDEN, 1.0f);

    for (l = 0; l < B_LAYERS; l++) {
        L = &m->w.layers[l];
        L->attn_norm = bench_weights(B_HIDDEN, 1.0f);
        L->wq = bench_weights((size_t) B_HIDDEN * B_HIDDEN, a);
        L->wk = bench_weights((size_t) B_KV_DIM * B_HIDDEN, a);
        L->wv = bench_weights((size_t) B_KV_DIM * B_HIDDEN, a);
        L->wo = bench_weights((size_t) B_HIDDEN * B_HIDDEN, a);
        L->ffn_norm = bench_weights(B_HIDDEN, 1.0f);
        L->w_gate = bench_weights((size_t) B_FFN * B_HIDDEN, a);
        L->w_up = bench_weights((size_t) B_FFN * B_HIDDEN, a);
        L->w_down = bench_weights((size_t) B_HIDDEN * B_FFN, a);
    }

    return m;
}


/* n rows of width w, packed into fresh pages from *next */
static void
bench_place(int64_t *off, int32_t n, int32_t w, int32_t *next)
{
    int32_t  per, i;

    per = B_PAGE / w;

    for (i = 0; i < n; i++) {
        off[i] = (int64_t) (*next + i / per) * B_PAGE
                 + (int64_t) (i % per) * w;
    }

    *next += (n + per - 1) / per;
}


static int
bench_lora(slora_backend_t *be, const int64_t *layer_off, slora_lora_t *lo,
    int64_t **rows, int32_t rank, int32_t *next_page)
{
    static const int32_t  in[SLORA_PROJ_N] = {
        B_HIDDEN, B_HIDDEN, B_HIDDEN, B_HIDDEN, B_HIDDEN, B_HIDDEN, B_FFN
    };
    static const int32_t  out[SLORA_PROJ_N] = {
        B_HIDDEN, B_KV_DIM, B_KV_DIM, B_HIDDEN, B_FFN, B_FFN, B_HIDDEN
    };
    int32_t               p, l, j;
    float                *row;
    slora_err_t           err;

    row = bench_weights(B_FFN, 0.05f);
    memset(lo, 0, sizeof(slora_lora_t));

    for (p = 0; p < SLORA_PROJ_N; p++) {
        rows[2 * p] = malloc(rank * sizeof(int64_t));
        rows[2 * p + 1] = malloc(rank * sizeof(int64_t));
        bench_place(rows[2 * p], rank, in[p], next_page);
        bench_place(rows[2 * p + 1], rank, out[p], next_page);

        for (l = 0; l < B_LAYERS; l++) {
            for (j = 0; j < rank; j++) {
                if (be->write_arena(be, layer_off[l] + rows[2 * p][j], row,
                                    in[p], &err)
                    != SLORA_OK
                    || be->write_arena(be, layer_off[l] + rows[2 * p + 1][j],
                                       row, out[p], &err)
                       != SLORA_OK)
                {
                    fprintf(stderr, "bench_forward: %s\n", err.msg);
                    free(row);
                    return -1;
                }
            }
        }

        lo->a_rows[p] = rows[2 * p];
        lo->b_rows[p] = rows[2 * p + 1];
    }

    lo->rank = rank;
    lo->scale = 2.0f;
    lo->proj_mask = (1u << SLORA_PROJ_N) - 1;

    free(row);
    return 0;
}


int
main(int argc, char **argv)
{
    slora_model_t      *m;
    slora_backend_t    *be;
    slora_err_t         err;
    slora_batch_seq_t   seq;
    slora_batch_t       b;
    slora_lora_t        lo;
    int64_t             layer_off[B_LAYERS], *rows[2 * SLORA_PROJ_N];
    int32_t            *toks, *pages, n_threads, n_pre, n_dec, rank;
    int32_t             n_pages, ctx_pages, next, i, l;
    int64_t             t0, t1, dec_ns;
    float              *logits;
    const char         *weights;
    slora_model_t      *file;

    n_threads = argc > 1 ? atoi(argv[1]) : 2;
    n_pre = argc > 2 ? atoi(argv[2]) : 128;
    n_dec = argc > 3 ? atoi(argv[3]) : 32;
    rank = argc > 4 ? atoi(argv[4]) : 0;
    weights = argc > 5 ? argv[5] : "f32";
    file = NULL;

    if (n_threads < 1 || n_pre < 1 || n_dec < 1 || rank < 0 || rank > 256) {
        fprintf(stderr, "usage: bench_forward [threads [prefill [decode "
                "[rank [weights]]]]]\n");
        return 2;
    }

    if (argc > 6) {
        file = slora_model_load(argv[6], &err);
        if (file == NULL) {
            fprintf(stderr, "bench_forward: %s\n", err.msg);
            return 1;
        }

        if (file->cfg.n_layers != B_LAYERS || file->cfg.hidden != B_HIDDEN
            || file->cfg.n_heads != B_HEADS || file->cfg.n_kv_heads != B_KV
            || file->cfg.ffn != B_FFN || file->cfg.vocab != B_VOCAB)
        {
            fprintf(stderr, "bench_forward: %s is not shaped like "
                    "SmolLM2-135M\n", argv[6]);
            return 1;
        }
    }

    m = file != NULL ? file : bench_model();
    be = slora_backend_cpu_create(n_threads, weights, &err);
    if (m == NULL || be == NULL) {
        fprintf(stderr, "bench_forward: setup failed: %s\n",
                be == NULL ? err.msg : "out of memory");
        return 1;
    }

    ctx_pages = (n_pre + n_dec + B_TPP - 1) / B_TPP;
    n_pages = ctx_pages + (rank > 0 ? 2 * SLORA_PROJ_N * rank : 0) + 1;

    for (l = 0; l < B_LAYERS; l++) {
        layer_off[l] = (int64_t) l * n_pages * B_PAGE;
    }

    if (be->load_model(be, m, &err) != SLORA_OK
        || be->alloc_arena(be, (size_t) B_LAYERS * n_pages * B_PAGE
                               * sizeof(float), B_PAGE, &err)
           != SLORA_OK)
    {
        fprintf(stderr, "bench_forward: %s\n", err.msg);
        return 1;
    }

    next = ctx_pages;
    if (rank > 0 && bench_lora(be, layer_off, &lo, rows, rank, &next) != 0) {
        return 1;
    }

    toks = malloc((n_pre + n_dec) * sizeof(int32_t));
    pages = malloc(ctx_pages * sizeof(int32_t));
    logits = malloc((size_t) B_VOCAB * sizeof(float));

    for (i = 0; i < n_pre + n_dec; i++) {
        toks[i] = (i * 7919) % B_VOCAB;
    }

    for (i = 0; i < ctx_pages; i++) {
        pages[i] = ctx_pages - 1 - i;
    }

    memset(&seq, 0, sizeof(seq));
    seq.pages = pages;
    seq.n_pages = ctx_pages;
    seq.lora = rank > 0 ? 0 : -1;
    seq.logits_row = 0;
    seq.n_rows = 1;

    memset(&b, 0, sizeof(b));
    b.n_seqs = 1;
    b.seqs = &seq;
    b.n_loras = rank > 0 ? 1 : 0;
    b.loras = &lo;
    b.n_logits = 1;
    b.logits = logits;

    seq.pos = 0;
    seq.n_tokens = n_pre;
    b.n_tokens = n_pre;
    b.tokens = toks;

    t0 = slora_now_ns();
    if (be->forward(be, &b, layer_off, B_PAGE, B_TPP, &err) != SLORA_OK) {
        fprintf(stderr, "bench_forward: %s\n", err.msg);
        return 1;
    }
    t1 = slora_now_ns();

    printf("threads %d, rank %d: prefill %d tokens: %.1f ms "
           "(%.1f tokens/s)\n", n_threads, rank, n_pre, (t1 - t0) / 1e6,
           n_pre / ((t1 - t0) / 1e9));

    dec_ns = 0;

    for (i = 0; i < n_dec; i++) {
        seq.pos = n_pre + i;
        seq.n_tokens = 1;
        b.n_tokens = 1;
        b.tokens = toks + n_pre + i;

        t0 = slora_now_ns();
        if (be->forward(be, &b, layer_off, B_PAGE, B_TPP, &err) != SLORA_OK)
        {
            fprintf(stderr, "bench_forward: %s\n", err.msg);
            return 1;
        }
        dec_ns += slora_now_ns() - t0;
    }

    printf("threads %d, rank %d, %s: decode %d steps at context %d..%d: "
           "%.2f ms/token\n", n_threads, rank, weights, n_dec, n_pre,
           n_pre + n_dec - 1, dec_ns / 1e6 / n_dec);

    be->free(be);

    if (rank > 0) {
        for (i = 0; i < 2 * SLORA_PROJ_N; i++) {
            free(rows[i]);
        }
    }

    free(toks);
    free(pages);
    free(logits);

    if (file != NULL) {
        slora_model_free(file);
        return 0;
    }

    free(m->w.tok_embd);
    free(m->w.out_norm);
    for (l = 0; l < B_LAYERS; l++) {
        free(m->w.layers[l].attn_norm);
        free(m->w.layers[l].wq);
        free(m->w.layers[l].wk);
        free(m->w.layers[l].wv);
        free(m->w.layers[l].wo);
        free(m->w.layers[l].ffn_norm);
        free(m->w.layers[l].w_gate);
        free(m->w.layers[l].w_up);
        free(m->w.layers[l].w_down);
    }
    free(m->w.layers);
    free(m);

    return 0;
}
