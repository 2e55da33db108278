/*
 * test_forward.c: the CPU backend's paged, batched forward pass against a
 * plain reference written here (dense KV arrays, one token at a time,
 * double accumulators) on tiny random models built in memory, whose
 * heads are wider than hidden / heads (4 of 24 over 64: q and the
 * attention 96 wide).
 *
 *   (a) three sequences over shuffled, non-contiguous pages: prefill in
 *       one chunk then decode, and prefill in uneven chunks that mix
 *       with other sequences' decode tokens; logits at every requested
 *       row to 1e-4 relative. Run for a NORM-rope model and for a
 *       NEOX-rope model with q/k/v bias.
 *   (b) adapters of ranks 8, 16 and 64 on all seven projections, their A
 *       and B^T rows scattered through arena pages: unmerged logits equal
 *       the reference on weights merged as W + (alpha/r) B A.
 *   (c) three adapters of different ranks (one on a subset of
 *       projections) and base-only sequences in one batch: each sequence
 *       gets the logits it gets when run alone, to 1e-5.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "tap.h"

#include "slora_core.h"
#include "slora_model.h"
#include "slora_batch.h"
#include "slora_backend.h"


#define N_LAYERS     3
#define HIDDEN       64
#define N_HEADS      4
#define N_KV         2
#define HEAD_DIM     24             /* not HIDDEN / N_HEADS: a head size
                                       of its own, as Mistral NeMo's */
#define Q_DIM        (N_HEADS * HEAD_DIM)
#define KV_DIM       (N_KV * HEAD_DIM)
#define FFN          96
#define VOCAB        97
#define PAGE_ELEMS   192            /* 2 tokens of K+V; 3, 4, 2 LoRA rows */
#define TPP          (PAGE_ELEMS / (2 * KV_DIM))
#define N_PAGES      640
#define MAX_CTX      64
#define MAX_SEQS     8


/* max |a - b| / max |b| */
static double
rel_err(const float *a, const float *b, size_t n)
{
    double  d, m;
    size_t  i;

    d = 0;
    m = 1e-30;

    for (i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) {
            return INFINITY;
        }
        d = fmax(d, fabs((double) a[i] - b[i]));
        m = fmax(m, fabs((double) b[i]));
    }

    return d / m;
}


/* ---- the tiny model: every weight in one block, so it clones ---- */

static float *
bump(slora_model_t *m, size_t *used, size_t n)
{
    float  *p;

    p = (float *) m->mem + *used;
    *used += n;

    if (*used * sizeof(float) > m->mem_size) {
        BAIL_OUT("model block too small");
    }

    return p;
}


static void
fill(float *w, size_t n, float center, float amp)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        w[i] = center + amp * tap_frand();
    }
}


static slora_model_t *
tiny_model(slora_rope_e rope, int bias)
{
    slora_model_t          *m;
    slora_layer_weights_t  *L;
    size_t                  used;
    int32_t                 l;
    float                   aw, af;

    m = calloc(1, sizeof(slora_model_t));
    m->w.layers = calloc(N_LAYERS, sizeof(slora_layer_weights_t));
    m->mem_size = (2 * VOCAB * HIDDEN + HIDDEN
                   + N_LAYERS * (2 * Q_DIM * HIDDEN
                                 + 2 * KV_DIM * HIDDEN + 3 * HIDDEN * FFN
                                 + 2 * HIDDEN + Q_DIM + 2 * KV_DIM))
                  * sizeof(float);
    m->mem = malloc(m->mem_size);

    strcpy(m->cfg.arch, "llama");
    strcpy(m->cfg.name, "tiny");
    strcpy(m->path, "tiny");
    m->cfg.n_layers = N_LAYERS;
    m->cfg.hidden = HIDDEN;
    m->cfg.n_heads = N_HEADS;
    m->cfg.n_kv_heads = N_KV;
    m->cfg.head_dim = HEAD_DIM;
    m->cfg.ffn = FFN;
    m->cfg.vocab = VOCAB;
    m->cfg.max_ctx = MAX_CTX;
    m->cfg.rope_theta = 10000.0f;
    m->cfg.norm_eps = 1e-5f;
    m->cfg.rope = rope;
    m->cfg.qkv_bias = bias;

    used = 0;
    aw = 1.7f / sqrtf(HIDDEN);
    af = 1.7f / sqrtf(FFN);

    m->w.tok_embd = bump(m, &used, VOCAB * HIDDEN);
    fill(m->w.tok_embd, VOCAB * HIDDEN, 0, 1);
    m->w.out_norm = bump(m, &used, HIDDEN);
    fill(m->w.out_norm, HIDDEN, 1, 0.2f);
    m->w.output = bump(m, &used, VOCAB * HIDDEN);
    fill(m->w.output, VOCAB * HIDDEN, 0, aw);

    for (l = 0; l < N_LAYERS; l++) {
        L = &m->w.layers[l];

        L->attn_norm = bump(m, &used, HIDDEN);
        fill(L->attn_norm, HIDDEN, 1, 0.2f);
        L->wq = bump(m, &used, Q_DIM * HIDDEN);
        fill(L->wq, Q_DIM * HIDDEN, 0, 2 * aw);
        L->wk = bump(m, &used, KV_DIM * HIDDEN);
        fill(L->wk, KV_DIM * HIDDEN, 0, 2 * aw);
        L->wv = bump(m, &used, KV_DIM * HIDDEN);
        fill(L->wv, KV_DIM * HIDDEN, 0, aw);
        L->wo = bump(m, &used, HIDDEN * Q_DIM);
        fill(L->wo, HIDDEN * Q_DIM, 0, aw);
        L->ffn_norm = bump(m, &used, HIDDEN);
        fill(L->ffn_norm, HIDDEN, 1, 0.2f);
        L->w_gate = bump(m, &used, FFN * HIDDEN);
        fill(L->w_gate, FFN * HIDDEN, 0, aw);
        L->w_up = bump(m, &used, FFN * HIDDEN);
        fill(L->w_up, FFN * HIDDEN, 0, aw);
        L->w_down = bump(m, &used, HIDDEN * FFN);
        fill(L->w_down, HIDDEN * FFN, 0, af);

        if (bias) {
            L->bq = bump(m, &used, Q_DIM);
            fill(L->bq, Q_DIM, 0, 0.5f);
            L->bk = bump(m, &used, KV_DIM);
            fill(L->bk, KV_DIM, 0, 0.5f);
            L->bv = bump(m, &used, KV_DIM);
            fill(L->bv, KV_DIM, 0, 0.5f);
        }
    }

    return m;
}


static float *
rebase(const slora_model_t *src, const slora_model_t *dst, const float *p)
{
    if (p == NULL) {
        return NULL;
    }

    return (float *) dst->mem + (p - (const float *) src->mem);
}


static slora_model_t *
clone_model(const slora_model_t *s)
{
    slora_model_t          *m;
    slora_layer_weights_t  *L;
    const slora_layer_weights_t  *S;
    int32_t                 l;

    m = calloc(1, sizeof(slora_model_t));
    *m = *s;
    m->mem = malloc(s->mem_size);
    memcpy(m->mem, s->mem, s->mem_size);
    m->w.layers = calloc(N_LAYERS, sizeof(slora_layer_weights_t));

    m->w.tok_embd = rebase(s, m, s->w.tok_embd);
    m->w.out_norm = rebase(s, m, s->w.out_norm);
    m->w.output = rebase(s, m, s->w.output);

    for (l = 0; l < N_LAYERS; l++) {
        L = &m->w.layers[l];
        S = &s->w.layers[l];
        L->attn_norm = rebase(s, m, S->attn_norm);
        L->wq = rebase(s, m, S->wq);
        L->wk = rebase(s, m, S->wk);
        L->wv = rebase(s, m, S->wv);
        L->wo = rebase(s, m, S->wo);
        L->bq = rebase(s, m, S->bq);
        L->bk = rebase(s, m, S->bk);
        L->bv = rebase(s, m, S->bv);
        L->ffn_norm = rebase(s, m, S->ffn_norm);
        L->w_gate = rebase(s, m, S->w_gate);
        L->w_up = rebase(s, m, S->w_up);
        L->w_down = rebase(s, m, S->w_down);
    }

    return m;
}


static void
free_model(slora_model_t *m)
{
    free(m->mem);
    free(m->w.layers);
    free(m);
}


/* ---- the reference: one token at a time, dense cache, doubles ---- */

typedef struct {
    double   k[N_LAYERS][MAX_CTX][KV_DIM];
    double   v[N_LAYERS][MAX_CTX][KV_DIM];
} ref_cache_t;


static void
ref_rmsnorm(double *out, const double *x, const float *w, int n, float eps)
{
    double  ss;
    int     i;

    ss = 0;
    for (i = 0; i < n; i++) {
        ss += x[i] * x[i];
    }
    ss = 1.0 / sqrt(ss / n + eps);
    for (i = 0; i < n; i++) {
        out[i] = x[i] * ss * w[i];
    }
}


static void
ref_matvec(double *y, const double *x, const float *w, const float *b,
    int out, int in)
{
    double  acc;
    int     o, i;

    for (o = 0; o < out; o++) {
        acc = b != NULL ? b[o] : 0;
        for (i = 0; i < in; i++) {
            acc += (double) w[(size_t) o * in + i] * x[i];
        }
        y[o] = acc;
    }
}


static void
ref_rope(double *x, int n_heads, int pos, slora_rope_e rope, float theta)
{
    int     h, i, a, b;
    double  ang, x0, x1;

    for (h = 0; h < n_heads; h++) {
        for (i = 0; i < HEAD_DIM / 2; i++) {
            a = rope == SLORA_ROPE_NEOX ? i : 2 * i;
            b = rope == SLORA_ROPE_NEOX ? i + HEAD_DIM / 2 : 2 * i + 1;
            ang = pos * pow(theta, -2.0 * i / HEAD_DIM);
            x0 = x[h * HEAD_DIM + a];
            x1 = x[h * HEAD_DIM + b];
            x[h * HEAD_DIM + a] = x0 * cos(ang) - x1 * sin(ang);
            x[h * HEAD_DIM + b] = x0 * sin(ang) + x1 * cos(ang);
        }
    }
}


static void
ref_token(const slora_model_t *m, ref_cache_t *rc, int32_t tok, int pos,
    float *logits)
{
    const slora_layer_weights_t  *L;
    double   x[HIDDEN], h[HIDDEN], q[Q_DIM], k[KV_DIM], v[KV_DIM];
    double   att[Q_DIM], o[HIDDEN], g[FFN], u[FFN], sc[MAX_CTX];
    double   lg[VOCAB], mx, sum, acc;
    int      l, i, t, hh, kh, j;
    float    eps = m->cfg.norm_eps;

    for (i = 0; i < HIDDEN; i++) {
        x[i] = m->w.tok_embd[tok * HIDDEN + i];
    }

    for (l = 0; l < N_LAYERS; l++) {
        L = &m->w.layers[l];

        ref_rmsnorm(h, x, L->attn_norm, HIDDEN, eps);
        ref_matvec(q, h, L->wq, L->bq, Q_DIM, HIDDEN);
        ref_matvec(k, h, L->wk, L->bk, KV_DIM, HIDDEN);
        ref_matvec(v, h, L->wv, L->bv, KV_DIM, HIDDEN);
        ref_rope(q, N_HEADS, pos, m->cfg.rope, m->cfg.rope_theta);
        ref_rope(k, N_KV, pos, m->cfg.rope, m->cfg.rope_theta);
        memcpy(rc->k[l][pos], k, sizeof(k));
        memcpy(rc->v[l][pos], v, sizeof(v));

        for (hh = 0; hh < N_HEADS; hh++) {
            kh = hh / (N_HEADS / N_KV);
            mx = -INFINITY;
            for (t = 0; t <= pos; t++) {
                acc = 0;
                for (j = 0; j < HEAD_DIM; j++) {
                    acc += q[hh * HEAD_DIM + j]
                           * rc->k[l][t][kh * HEAD_DIM + j];
                }
                sc[t] = acc / sqrt(HEAD_DIM);
                mx = fmax(mx, sc[t]);
            }
            sum = 0;
            for (t = 0; t <= pos; t++) {
                sc[t] = exp(sc[t] - mx);
                sum += sc[t];
            }
            for (j = 0; j < HEAD_DIM; j++) {
                acc = 0;
                for (t = 0; t <= pos; t++) {
                    acc += sc[t] * rc->v[l][t][kh * HEAD_DIM + j];
                }
                att[hh * HEAD_DIM + j] = acc / sum;
            }
        }

        ref_matvec(o, att, L->wo, NULL, HIDDEN, Q_DIM);
        for (i = 0; i < HIDDEN; i++) {
            x[i] += o[i];
        }

        ref_rmsnorm(h, x, L->ffn_norm, HIDDEN, eps);
        ref_matvec(g, h, L->w_gate, NULL, FFN, HIDDEN);
        ref_matvec(u, h, L->w_up, NULL, FFN, HIDDEN);
        for (i = 0; i < FFN; i++) {
            g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
        }
        ref_matvec(o, g, L->w_down, NULL, HIDDEN, FFN);
        for (i = 0; i < HIDDEN; i++) {
            x[i] += o[i];
        }
    }

    ref_rmsnorm(h, x, m->w.out_norm, HIDDEN, eps);
    ref_matvec(lg, h, m->w.output, NULL, VOCAB, HIDDEN);

    for (i = 0; i < VOCAB; i++) {
        logits[i] = (float) lg[i];
    }
}


/* logits[pos][vocab] for every position of toks */
static void
ref_sequence(const slora_model_t *m, const int32_t *toks, int n,
    float *logits)
{
    ref_cache_t  *rc;
    int           p;

    rc = malloc(sizeof(ref_cache_t));

    for (p = 0; p < n; p++) {
        ref_token(m, rc, toks[p], p, logits + (size_t) p * VOCAB);
    }

    free(rc);
}


/* ---- pages, sequences and steps through the backend ---- */

static int32_t  free_pages[N_PAGES];
static int32_t  n_free;


static void
pages_reset(void)
{
    int32_t  i;

    for (i = 0; i < N_PAGES; i++) {
        free_pages[i] = i;
    }

    tap_shuffle(free_pages, N_PAGES);
    n_free = N_PAGES;
}


static int32_t
page_take(void)
{
    if (n_free == 0) {
        BAIL_OUT("test pool exhausted");
    }

    return free_pages[--n_free];
}


typedef struct {
    int32_t   toks[MAX_CTX];
    int32_t   n_toks;
    int32_t   done;             /* tokens already through the backend */
    int32_t   pages[MAX_CTX];
    int32_t   n_pages;
    int32_t   lora;
} tseq_t;


static void
tseq_init(tseq_t *s, int n_toks, int32_t lora)
{
    int  i;

    memset(s, 0, sizeof(tseq_t));
    s->n_toks = n_toks;
    s->lora = lora;

    for (i = 0; i < n_toks; i++) {
        s->toks[i] = tap_irand(VOCAB);
    }
}


typedef struct {
    slora_backend_t  *be;
    int64_t           layer_off[N_LAYERS];
    slora_lora_t     *loras;
    int32_t           n_loras;
} tenv_t;


/*
 * Runs one step: sequence i feeds chunk[i] more tokens (0: absent); its
 * logits land in row row[i] of logits. Pages are taken as positions
 * grow, so a sequence's pages are scattered among everyone else's.
 */

static int
step(tenv_t *env, tseq_t *seqs, int n, const int *chunk, const int *row,
    float *logits, int n_logits, slora_err_t *err)
{
    slora_batch_seq_t  bs[MAX_SEQS];
    int32_t            toks[MAX_SEQS * MAX_CTX];
    slora_batch_t      b;
    int                i, j, nb, nt;

    memset(&b, 0, sizeof(b));
    nb = 0;
    nt = 0;

    for (i = 0; i < n; i++) {
        if (chunk[i] == 0) {
            continue;
        }

        while (seqs[i].n_pages * TPP < seqs[i].done + chunk[i]) {
            seqs[i].pages[seqs[i].n_pages++] = page_take();
        }

        bs[nb].n_tokens = chunk[i];
        bs[nb].pos = seqs[i].done;
        bs[nb].n_pages = seqs[i].n_pages;
        bs[nb].pages = seqs[i].pages;
        bs[nb].lora = seqs[i].lora;
        bs[nb].logits_row = row[i];
        bs[nb].n_rows = row[i] >= 0;

        for (j = 0; j < chunk[i]; j++) {
            toks[nt++] = seqs[i].toks[seqs[i].done + j];
        }

        seqs[i].done += chunk[i];
        nb++;
    }

    b.n_seqs = nb;
    b.n_tokens = nt;
    b.tokens = toks;
    b.seqs = bs;
    b.n_loras = env->n_loras;
    b.loras = env->loras;
    b.n_logits = n_logits;
    b.logits = logits;

    return env->be->forward(env->be, &b, env->layer_off, PAGE_ELEMS, TPP,
                            err);
}


static slora_backend_t *
backend_for(const slora_model_t *m, tenv_t *env)
{
    slora_backend_t  *be;
    slora_err_t       err;
    int32_t           l;

    be = slora_backend_cpu_create(2, "f32", &err);
    if (be == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    if (be->load_model(be, m, &err) != SLORA_OK
        || be->alloc_arena(be, (size_t) N_LAYERS * N_PAGES * PAGE_ELEMS
                               * sizeof(float), PAGE_ELEMS, &err)
           != SLORA_OK)
    {
        BAIL_OUT("%s", err.msg);
    }

    memset(env, 0, sizeof(tenv_t));
    env->be = be;

    for (l = 0; l < N_LAYERS; l++) {
        env->layer_off[l] = (int64_t) l * N_PAGES * PAGE_ELEMS;
    }

    return be;
}


/* ---- (a) paged batched forward == reference ---- */

static void
test_paged(slora_rope_e rope, int bias)
{
    static const int    lens[3] = { 11, 7, 16 };
    static const int    chunks[5][3] = {
        { 5, 7, 3 }, { 6, 1, 3 }, { 1, 1, 3 }, { 0, 1, 7 }, { 1, 1, 1 }
    };
    slora_model_t      *m;
    slora_backend_t    *be;
    tenv_t              env;
    tseq_t              seqs[3];
    slora_err_t         err;
    float              *ref[3], logits[3 * VOCAB];
    int                 s, d, ch[3], row[3], n_dec, rc;
    double              worst, e;
    const char         *name;

    name = rope == SLORA_ROPE_NEOX ? "neox+bias" : "norm";
    m = tiny_model(rope, bias);
    be = backend_for(m, &env);
    pages_reset();
    n_dec = 4;

    for (s = 0; s < 3; s++) {
        tseq_init(&seqs[s], lens[s] + n_dec, -1);
        ref[s] = malloc((size_t) (lens[s] + n_dec) * VOCAB * sizeof(float));
        ref_sequence(m, seqs[s].toks, lens[s] + n_dec, ref[s]);
    }

    /* prefill in one chunk, then decode; logits rows reversed */

    for (s = 0; s < 3; s++) {
        ch[s] = lens[s];
        row[s] = 2 - s;
    }

    rc = step(&env, seqs, 3, ch, row, logits, 3, &err);
    ok(rc == SLORA_OK, "%s: prefill step runs%s%s", name,
       rc ? ": " : "", rc ? err.msg : "");

    worst = 0;
    for (s = 0; s < 3; s++) {
        worst = fmax(worst, rel_err(logits + (2 - s) * VOCAB,
                                    ref[s] + (lens[s] - 1) * VOCAB, VOCAB));
    }
    ok(worst < 1e-4, "%s: one-chunk prefill logits match: %.2e", name,
       worst);

    for (d = 0; d < n_dec; d++) {
        for (s = 0; s < 3; s++) {
            ch[s] = 1;
            row[s] = s;
        }

        rc = step(&env, seqs, 3, ch, row, logits, 3, &err);

        worst = 0;
        for (s = 0; s < 3; s++) {
            worst = fmax(worst, rel_err(logits + s * VOCAB,
                                        ref[s] + (lens[s] + d) * VOCAB,
                                        VOCAB));
        }
        ok(rc == SLORA_OK && worst < 1e-4,
           "%s: decode step %d logits match: %.2e", name, d, worst);
    }

    be->free(be);
    be = backend_for(m, &env);
    pages_reset();

    /* the same sequences in uneven chunks; logits after every chunk */

    for (s = 0; s < 3; s++) {
        seqs[s].done = 0;
        seqs[s].n_pages = 0;
    }

    for (d = 0; d < 5; d++) {
        for (s = 0; s < 3; s++) {
            ch[s] = chunks[d][s];
            row[s] = ch[s] ? s : -1;
        }

        memset(logits, 0, sizeof(logits));
        rc = step(&env, seqs, 3, ch, row, logits, 3, &err);

        worst = 0;
        for (s = 0; s < 3; s++) {
            if (ch[s] == 0) {
                continue;
            }

            e = rel_err(logits + s * VOCAB,
                        ref[s] + (seqs[s].done - 1) * VOCAB, VOCAB);
            worst = fmax(worst, e);
        }
        ok(rc == SLORA_OK && worst < 1e-4,
           "%s: chunked step %d logits match: %.2e", name, d, worst);
    }

    /* what a wrong batch gets */

    seqs[0].done = seqs[0].n_toks - 1;
    seqs[0].toks[seqs[0].done] = VOCAB;
    ch[0] = 1;
    row[0] = 0;
    ok(step(&env, seqs, 1, ch, row, logits, 1, &err) == SLORA_ERROR,
       "%s: token id == vocab refused: %s", name, err.msg);

    seqs[0].done = 0;
    seqs[0].toks[0] = 1;
    row[0] = 1;
    ok(step(&env, seqs, 1, ch, row, logits, 1, &err) == SLORA_ERROR,
       "%s: logits row past n_logits refused: %s", name, err.msg);

    seqs[0].done = 0;
    seqs[0].pages[0] = N_PAGES;
    row[0] = 0;
    ok(step(&env, seqs, 1, ch, row, logits, 1, &err) == SLORA_ERROR,
       "%s: page outside the arena refused: %s", name, err.msg);

    be->free(be);

    for (s = 0; s < 3; s++) {
        free(ref[s]);
    }

    free_model(m);
}


/* ---- adapters scattered through the arena ---- */

typedef struct {
    int32_t    rank;
    float      alpha;
    float     *a[SLORA_PROJ_N];     /* [rank, in] */
    float     *bt[SLORA_PROJ_N];    /* [rank, out]: B^T */
    int64_t   *a_rows[SLORA_PROJ_N];
    int64_t   *b_rows[SLORA_PROJ_N];
} tlora_t;


static int32_t
proj_in(int p)
{
    return p == SLORA_PROJ_DOWN ? FFN : p == SLORA_PROJ_O ? Q_DIM : HIDDEN;
}


static int32_t
proj_out(int p)
{
    switch (p) {
    case SLORA_PROJ_K:
    case SLORA_PROJ_V:
        return KV_DIM;
    case SLORA_PROJ_GATE:
    case SLORA_PROJ_UP:
        return FFN;
    case SLORA_PROJ_Q:
        return Q_DIM;
    default:
        return HIDDEN;
    }
}


/*
 * Places n rows of width w in fresh pages: every slot of w floats in
 * those pages is a candidate, and the slots are handed out shuffled.
 */

static void
place_rows(int64_t *off, int n, int w)
{
    int32_t  per, n_pages, i, *slots, page;
    int32_t  pages[N_PAGES];

    per = PAGE_ELEMS / w;
    n_pages = (n + per - 1) / per + 1;
    slots = malloc((size_t) n_pages * per * sizeof(int32_t));

    for (i = 0; i < n_pages; i++) {
        pages[i] = page_take();
    }

    for (i = 0; i < n_pages * per; i++) {
        slots[i] = i;
    }
    tap_shuffle(slots, n_pages * per);

    for (i = 0; i < n; i++) {
        page = pages[slots[i] / per];
        off[i] = (int64_t) page * PAGE_ELEMS + (int64_t) (slots[i] % per) * w;
    }

    free(slots);
}


/* Random A and B for every layer and projection in mask; rows written
 * to the arena, layer by layer, at the same offsets. */
static void
tlora_make(tlora_t *t, slora_lora_t *lo, tenv_t *env, int32_t rank,
    float alpha, uint32_t mask)
{
    int32_t      p, l, j, in, out;
    slora_err_t  err;
    size_t       na, nb;

    memset(t, 0, sizeof(tlora_t));
    memset(lo, 0, sizeof(slora_lora_t));
    t->rank = rank;
    t->alpha = alpha;

    for (p = 0; p < SLORA_PROJ_N; p++) {
        if (!(mask & (1u << p))) {
            continue;
        }

        in = proj_in(p);
        out = proj_out(p);
        na = (size_t) N_LAYERS * rank * in;
        nb = (size_t) N_LAYERS * rank * out;

        t->a[p] = malloc(na * sizeof(float));
        t->bt[p] = malloc(nb * sizeof(float));
        fill(t->a[p], na, 0, 1.7f / sqrtf(in));
        fill(t->bt[p], nb, 0, 0.9f / sqrtf(rank));

        t->a_rows[p] = malloc(rank * sizeof(int64_t));
        t->b_rows[p] = malloc(rank * sizeof(int64_t));
        place_rows(t->a_rows[p], rank, in);
        place_rows(t->b_rows[p], rank, out);

        for (l = 0; l < N_LAYERS; l++) {
            for (j = 0; j < rank; j++) {
                if (env->be->write_arena(env->be,
                                         env->layer_off[l] + t->a_rows[p][j],
                                         t->a[p] + ((size_t) l * rank + j)
                                                   * in,
                                         in, &err)
                    != SLORA_OK
                    || env->be->write_arena(env->be,
                                            env->layer_off[l]
                                            + t->b_rows[p][j],
                                            t->bt[p] + ((size_t) l * rank + j)
                                                       * out,
                                            out, &err)
                       != SLORA_OK)
                {
                    BAIL_OUT("%s", err.msg);
                }
            }
        }

        lo->a_rows[p] = t->a_rows[p];
        lo->b_rows[p] = t->b_rows[p];
    }

    lo->rank = rank;
    lo->scale = alpha / rank;
    lo->proj_mask = mask;
}


static void
tlora_free(tlora_t *t)
{
    int  p;

    for (p = 0; p < SLORA_PROJ_N; p++) {
        free(t->a[p]);
        free(t->bt[p]);
        free(t->a_rows[p]);
        free(t->b_rows[p]);
    }
}


/* W += (alpha / r) B A for every layer and projection the adapter has */
static void
merge(slora_model_t *m, const tlora_t *t)
{
    slora_layer_weights_t  *L;
    float                  *w;
    int32_t                 p, l, o, i, j, in, out;
    double                  acc;

    for (l = 0; l < N_LAYERS; l++) {
        L = &m->w.layers[l];

        for (p = 0; p < SLORA_PROJ_N; p++) {
            if (t->a[p] == NULL) {
                continue;
            }

            w = p == SLORA_PROJ_Q ? L->wq : p == SLORA_PROJ_K ? L->wk
                : p == SLORA_PROJ_V ? L->wv : p == SLORA_PROJ_O ? L->wo
                : p == SLORA_PROJ_GATE ? L->w_gate
                : p == SLORA_PROJ_UP ? L->w_up : L->w_down;
            in = proj_in(p);
            out = proj_out(p);

            for (o = 0; o < out; o++) {
                for (i = 0; i < in; i++) {
                    acc = 0;
                    for (j = 0; j < t->rank; j++) {
                        acc += (double) t->bt[p][((size_t) l * t->rank + j)
                                                 * out + o]
                               * t->a[p][((size_t) l * t->rank + j) * in + i];
                    }
                    w[(size_t) o * in + i] += (float) (t->alpha / t->rank
                                                       * acc);
                }
            }
        }
    }
}


/* ---- (b) unmerged LoRA == merged weights ---- */

static void
test_lora_merged(void)
{
    /* the last adapter skips k, o and gate: the q, k, v and the gate, up
     * calls each have one projection with it and one without, and o has
     * none in the batch */
    static const int32_t  ranks[4] = { 8, 16, 64, 16 };
    static const uint32_t masks[4] = {
        (1u << SLORA_PROJ_N) - 1, (1u << SLORA_PROJ_N) - 1,
        (1u << SLORA_PROJ_N) - 1,
        (1u << SLORA_PROJ_Q) | (1u << SLORA_PROJ_V) | (1u << SLORA_PROJ_UP)
        | (1u << SLORA_PROJ_DOWN)
    };
    slora_model_t        *m, *mm;
    slora_backend_t      *be;
    tenv_t                env;
    tlora_t               tl;
    slora_lora_t          lo;
    tseq_t                seq;
    slora_err_t           err;
    float                *ref, *base, logits[VOCAB];
    int                   r, d, ch, row, n, rc;
    double                worst, moved;

    m = tiny_model(SLORA_ROPE_NORM, 0);

    for (r = 0; r < 4; r++) {
        be = backend_for(m, &env);
        pages_reset();

        tlora_make(&tl, &lo, &env, ranks[r], 2.0f * ranks[r] / 3, masks[r]);
        env.loras = &lo;
        env.n_loras = 1;

        mm = clone_model(m);
        merge(mm, &tl);

        n = 12;
        tseq_init(&seq, n, 0);
        ref = malloc((size_t) n * VOCAB * sizeof(float));
        base = malloc((size_t) n * VOCAB * sizeof(float));
        ref_sequence(mm, seq.toks, n, ref);
        ref_sequence(m, seq.toks, n, base);

        ch = 9;
        row = 0;
        rc = step(&env, &seq, 1, &ch, &row, logits, 1, &err);
        worst = rel_err(logits, ref + 8 * VOCAB, VOCAB);
        moved = rel_err(base + 8 * VOCAB, ref + 8 * VOCAB, VOCAB);

        for (d = 0; d < 3; d++) {
            ch = 1;
            rc |= step(&env, &seq, 1, &ch, &row, logits, 1, &err);
            worst = fmax(worst, rel_err(logits, ref + (9 + d) * VOCAB,
                                        VOCAB));
        }

        ok(rc == SLORA_OK && worst < 1e-4,
           "rank %d on %s: unmerged == merged: %.2e "
           "(the adapter moves logits by %.2e)", ranks[r],
           r < 3 ? "all projections" : "q, v, up and down", worst, moved);
        ok(moved > 1e-2, "rank %d: the adapter does change the logits",
           ranks[r]);

        free(ref);
        free(base);
        free_model(mm);
        tlora_free(&tl);
        be->free(be);
    }

    free_model(m);
}


/* ---- (c) a mixed batch == each sequence alone ---- */

static void
test_lora_mixed(void)
{
    enum { NS = 5, NL = 3, NDEC = 3 };
    static const int32_t  ranks[NL] = { 16, 8, 64 };
    static const int32_t  which[NS] = { 0, -1, 2, 1, -1 };
    static const int      lens[NS] = { 6, 9, 1, 13, 4 };
    slora_model_t        *m;
    slora_backend_t      *be;
    tenv_t                env;
    tlora_t               tl[NL];
    slora_lora_t          lo[NL];
    tseq_t                seqs[NS], alone;
    slora_err_t           err;
    float                *mixed, *solo, logits[NS * VOCAB];
    int                   s, d, ch[NS], row[NS], rc, c1, r1;
    double                worst, spread;
    uint32_t              all;

    m = tiny_model(SLORA_ROPE_NORM, 0);
    be = backend_for(m, &env);
    pages_reset();

    all = (1u << SLORA_PROJ_N) - 1;
    for (s = 0; s < NL; s++) {
        tlora_make(&tl[s], &lo[s], &env, ranks[s], 16.0f,
                   s == 0 ? (1u << SLORA_PROJ_Q) | (1u << SLORA_PROJ_V)
                            | (1u << SLORA_PROJ_DOWN)
                          : all);
    }
    env.loras = lo;
    env.n_loras = NL;

    mixed = malloc((size_t) NS * (NDEC + 1) * VOCAB * sizeof(float));
    solo = malloc((size_t) NS * (NDEC + 1) * VOCAB * sizeof(float));

    for (s = 0; s < NS; s++) {
        tseq_init(&seqs[s], lens[s] + NDEC, which[s]);
    }

    /* everyone together: prefill, then decode */
    rc = SLORA_OK;
    for (d = 0; d <= NDEC; d++) {
        for (s = 0; s < NS; s++) {
            ch[s] = d == 0 ? lens[s] : 1;
            row[s] = s;
        }
        rc |= step(&env, seqs, NS, ch, row, logits, NS, &err);
        for (s = 0; s < NS; s++) {
            memcpy(mixed + ((size_t) s * (NDEC + 1) + d) * VOCAB,
                   logits + s * VOCAB, VOCAB * sizeof(float));
        }
    }
    ok(rc == SLORA_OK, "mixed batch of ranks 16 (q,v,down), 8, 64 and "
       "base-only runs");

    /* each one alone, with fresh pages */
    for (s = 0; s < NS; s++) {
        alone = seqs[s];
        alone.done = 0;
        alone.n_pages = 0;

        for (d = 0; d <= NDEC; d++) {
            c1 = d == 0 ? lens[s] : 1;
            r1 = 0;
            rc |= step(&env, &alone, 1, &c1, &r1, logits, 1, &err);
            memcpy(solo + ((size_t) s * (NDEC + 1) + d) * VOCAB, logits,
                   VOCAB * sizeof(float));
        }
    }

    for (s = 0; s < NS; s++) {
        worst = rel_err(mixed + (size_t) s * (NDEC + 1) * VOCAB,
                        solo + (size_t) s * (NDEC + 1) * VOCAB,
                        (NDEC + 1) * VOCAB);
        ok(rc == SLORA_OK && worst < 1e-5,
           "sequence %d (adapter %d): batched == alone: %.2e", s, which[s],
           worst);
    }

    /* the two base-only sequences differ from what an adapter gives */
    alone = seqs[1];
    alone.done = 0;
    alone.n_pages = 0;
    alone.lora = 2;
    c1 = lens[1];
    r1 = 0;
    step(&env, &alone, 1, &c1, &r1, logits, 1, &err);
    spread = rel_err(logits, solo + (size_t) 1 * (NDEC + 1) * VOCAB, VOCAB);
    ok(spread > 1e-2, "adapter 2 on sequence 1 changes its logits: %.2e",
       spread);

    /* a row offset outside the arena is refused */
    tl[1].a_rows[SLORA_PROJ_Q][3] = (int64_t) N_PAGES * PAGE_ELEMS - 10;
    alone.lora = 1;
    alone.done = 0;
    ok(step(&env, &alone, 1, &c1, &r1, logits, 1, &err) == SLORA_ERROR,
       "adapter row outside the arena refused: %s", err.msg);

    for (s = 0; s < NL; s++) {
        tlora_free(&tl[s]);
    }
    free(mixed);
    free(solo);
    be->free(be);
    free_model(m);
}


int
main(void)
{
    tap_seed(0x2545f4914f6cdd1dull);

    test_paged(SLORA_ROPE_NORM, 0);
    test_paged(SLORA_ROPE_NEOX, 1);
    test_lora_merged();
    test_lora_mixed();

    return done_testing();
}
