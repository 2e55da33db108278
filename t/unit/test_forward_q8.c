/*
 * test_forward_q8.c: the CPU backend's quantized weights, "q8_0" (every
 * matrix requantized to Q8_0) and "native" (the file's own Q4_1 blocks,
 * Q8_0 for its Q8_0 output matrix), on the real SmolLM2-135M-Instruct
 * Q4_1 model, against its own f32 path. For every
 * prompt of t/golden/forward/q4_1.json the prefill logits must stay
 * close to f32's: the rms difference, relative to the rms logit, within
 * 3 times that of llama.cpp's own quantized kernels (its Q4_1 x Q8_1
 * logits in the goldens) or under 5%. The greedy tokens are compared
 * and the agreement reported (quantized weights may part ways after a
 * while, but the first token must agree in most prompts). "native" must
 * not give q8_0's logits (it reads other weights). Then batch
 * invariance, for both: 16 sequences of different lengths in one step
 * give, row for row, the same logits to the bit as each sequence alone.
 *
 * The one idea: like test_forward_golden.c, no pool and no engine: the
 * test lays out the arena's KV pages itself.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cjson/cJSON.h>

#include "tap.h"

#include "slora_core.h"
#include "slora_model.h"
#include "slora_batch.h"
#include "slora_backend.h"


#define GOLDEN       "t/golden/forward/q4_1.json"
#define TPP          16
#define SEQ_PAGES    8                  /* 128 positions per sequence */
#define N_SEQS       16
#define N_GREEDY     32
#define N_MODES      2


typedef struct {
    slora_backend_t    *be;
    int64_t            *loff;
    int64_t             page_elems;
} env_t;




static int
env_init(env_t *e, const slora_model_t *m, const char *weights)
{
    slora_err_t  err;
    int64_t      n_pages;
    int32_t      l;

    e->be = slora_backend_cpu_create(2, weights, &err);
    if (e->be == NULL || e->be->load_model(e->be, m, &err) != SLORA_OK) {
        BAIL_OUT("%s backend: %s", weights, err.msg);
    }

    e->page_elems = 2 * (int64_t) TPP * m->cfg.n_kv_heads * m->cfg.head_dim;
    n_pages = (int64_t) N_SEQS * SEQ_PAGES;
    e->loff = malloc(m->cfg.n_layers * sizeof(int64_t));

    for (l = 0; l < m->cfg.n_layers; l++) {
        e->loff[l] = l * n_pages * e->page_elems;
    }

    if (e->be->alloc_arena(e->be, (size_t) (m->cfg.n_layers * n_pages
                                            * e->page_elems)
                                  * sizeof(float), e->page_elems, &err)
        != SLORA_OK)
    {
        BAIL_OUT("%s", err.msg);
    }

    return 0;
}


/* Prefill of toks[0..n) in sequence slot 0, then greedy decode; out[i]
 * the greedy tokens, first the prefill's logits. */

static int
greedy(env_t *e, const slora_model_t *m, int32_t *toks, int32_t n,
    int32_t *out, float *first)
{
    slora_batch_seq_t   seq;
    slora_batch_t       b;
    slora_err_t         err;
    int32_t             pages[SEQ_PAGES], i, vocab;
    float              *logits;

    vocab = m->cfg.vocab;
    logits = malloc((size_t) vocab * sizeof(float));

    for (i = 0; i < SEQ_PAGES; i++) {
        pages[i] = SEQ_PAGES - 1 - i;
    }

    memset(&seq, 0, sizeof(seq));
    seq.n_tokens = n;
    seq.n_pages = SEQ_PAGES;
    seq.pages = pages;
    seq.lora = -1;
    seq.logits_row = 0;
    seq.n_rows = 1;

    memset(&b, 0, sizeof(b));
    b.n_seqs = 1;
    b.n_tokens = n;
    b.tokens = toks;
    b.seqs = &seq;
    b.n_logits = 1;
    b.logits = logits;

    for (i = 0; i < N_GREEDY; i++) {
        if (e->be->forward(e->be, &b, e->loff, e->page_elems, TPP, &err)
            != SLORA_OK)
        {
            diag("forward: %s", err.msg);
            free(logits);
            return -1;
        }

        if (i == 0) {
            memcpy(first, logits, (size_t) vocab * sizeof(float));
        }

        out[i] = tap_argmax(logits, vocab);
        toks[n + i] = out[i];

        seq.pos = n + i;
        seq.n_tokens = 1;
        b.n_tokens = 1;
        b.tokens = &toks[n + i];
    }

    free(logits);

    return 0;
}


static void
test_batch_invariance(env_t *e, const char *mode, const slora_model_t *m,
    const int32_t *ids, int32_t n_ids)
{
    slora_batch_seq_t   seqs[N_SEQS];
    slora_batch_t       b;
    slora_err_t         err;
    int32_t            *pages, *toks, s, i, len, total, vocab, bad;
    float              *all, *one;

    vocab = m->cfg.vocab;
    pages = malloc(N_SEQS * SEQ_PAGES * sizeof(int32_t));
    toks = malloc(N_SEQS * 8 * sizeof(int32_t));
    all = malloc((size_t) N_SEQS * vocab * sizeof(float));
    one = malloc((size_t) vocab * sizeof(float));

    for (i = 0; i < N_SEQS * SEQ_PAGES; i++) {
        pages[i] = (i * 37) % (N_SEQS * SEQ_PAGES);
    }

    memset(seqs, 0, sizeof(seqs));
    total = 0;

    for (s = 0; s < N_SEQS; s++) {
        len = 1 + (s * 5) % 7;

        for (i = 0; i < len; i++) {
            toks[total + i] = ids[(s * 3 + i) % n_ids];
        }

        seqs[s].n_tokens = len;
        seqs[s].pos = 0;
        seqs[s].pages = pages + s * SEQ_PAGES;
        seqs[s].n_pages = SEQ_PAGES;
        seqs[s].lora = -1;
        seqs[s].logits_row = s;
        seqs[s].n_rows = 1;
        total += len;
    }

    memset(&b, 0, sizeof(b));
    b.n_seqs = N_SEQS;
    b.n_tokens = total;
    b.tokens = toks;
    b.seqs = seqs;
    b.n_logits = N_SEQS;
    b.logits = all;

    ok(e->be->forward(e->be, &b, e->loff, e->page_elems, TPP, &err)
       == SLORA_OK, "%s: %d sequences, %d rows in one step", mode, N_SEQS,
       total);

    bad = 0;
    total = 0;

    for (s = 0; s < N_SEQS; s++) {
        b.n_seqs = 1;
        b.n_tokens = seqs[s].n_tokens;
        b.tokens = toks + total;
        b.seqs = &seqs[s];
        b.n_logits = 1;
        b.logits = one;
        seqs[s].logits_row = 0;
        total += seqs[s].n_tokens;

        if (e->be->forward(e->be, &b, e->loff, e->page_elems, TPP, &err)
            != SLORA_OK)
        {
            bad++;
            continue;
        }

        bad += memcmp(one, all + (size_t) s * vocab,
                      (size_t) vocab * sizeof(float))
               != 0;
    }

    ok(bad == 0, "%s: each sequence alone gives its batch row's logits "
       "to the bit (%d of %d differ)", mode, bad, N_SEQS);

    free(pages); free(toks); free(all); free(one);
}


int
main(void)
{
    static const char  *modes[N_MODES] = { "q8_0", "native" };
    slora_model_t      *m;
    slora_err_t         err;
    cJSON              *root, *cases, *cs, *model, *pids, *name;
    char               *json;
    env_t               f32, qe[N_MODES];
    int32_t            *toks, n, i, k, same, prefix, got_f[N_GREEDY];
    int32_t             got_q[N_GREEDY], first_ok[N_MODES], n_cases;
    int32_t             tot_same[N_MODES], differ;
    float              *lf, *lq, *l8;
    double              d, mx, num, den, ref;
    float              *gold;
    char                path[512];
    size_t              len;
    int                 run_ok;

    json = tap_read_file(GOLDEN, &len);
    if (json == NULL) {
        BAIL_OUT("cannot read " GOLDEN);
    }

    root = cJSON_Parse(json);
    free(json);
    model = cJSON_GetObjectItem(root, "model");
    cases = cJSON_GetObjectItem(root, "cases");

    if (!cJSON_IsString(model) || !cJSON_IsArray(cases)) {
        BAIL_OUT(GOLDEN ": no model or cases");
    }

    m = slora_model_load(model->valuestring, &err);
    if (m == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    env_init(&f32, m, "f32");

    for (k = 0; k < N_MODES; k++) {
        env_init(&qe[k], m, modes[k]);
        first_ok[k] = 0;
        tot_same[k] = 0;
    }

    lf = malloc((size_t) m->cfg.vocab * sizeof(float));
    lq = malloc((size_t) m->cfg.vocab * sizeof(float));
    l8 = malloc((size_t) m->cfg.vocab * sizeof(float));
    n_cases = 0;
    differ = 0;

    cJSON_ArrayForEach(cs, cases) {
        name = cJSON_GetObjectItem(cs, "name");
        pids = cJSON_GetObjectItem(cs, "prompt_ids");
        n = cJSON_GetArraySize(pids);

        if (n < 1 || n + N_GREEDY > SEQ_PAGES * TPP) {
            ok(0, "%s: %d prompt tokens fit", name->valuestring, n);
            continue;
        }

        toks = malloc((n + N_GREEDY) * sizeof(int32_t));

        for (i = 0; i < n; i++) {
            toks[i] = cJSON_GetArrayItem(pids, i)->valueint;
        }

        run_ok = greedy(&f32, m, toks, n, got_f, lf) == 0;

        /* yardstick: llama.cpp's own quantized kernels on this model */
        snprintf(path, sizeof(path), "t/golden/forward/%s.q4_1.f32",
                 name->valuestring);
        gold = tap_read_file(path, &len);
        ref = -1;
        den = 1e-30;

        for (i = 0; i < m->cfg.vocab; i++) {
            den += (double) lf[i] * lf[i];
        }

        if (gold != NULL && len == (size_t) m->cfg.vocab * sizeof(float)) {
            ref = 0;
            for (i = 0; i < m->cfg.vocab; i++) {
                ref += ((double) gold[i] - lf[i]) * ((double) gold[i] - lf[i]);
            }
            ref = sqrt(ref / den);
        }

        free(gold);

        for (k = 0; k < N_MODES; k++) {
            run_ok &= greedy(&qe[k], m, toks, n, got_q, lq) == 0;

            if (k == 0) {
                memcpy(l8, lq, (size_t) m->cfg.vocab * sizeof(float));

            } else {
                differ += memcmp(l8, lq, (size_t) m->cfg.vocab
                                         * sizeof(float))
                          != 0;
            }

            d = 0;
            mx = 1e-30;
            num = 0;
            for (i = 0; i < m->cfg.vocab; i++) {
                d = fmax(d, fabs((double) lq[i] - lf[i]));
                mx = fmax(mx, fabs((double) lf[i]));
                num += ((double) lq[i] - lf[i]) * ((double) lq[i] - lf[i]);
            }
            num = sqrt(num / den);

            same = 0;
            prefix = -1;
            for (i = 0; i < N_GREEDY; i++) {
                same += got_q[i] == got_f[i];
                if (prefix < 0 && got_q[i] != got_f[i]) {
                    prefix = i;
                }
            }
            prefix = prefix < 0 ? N_GREEDY : prefix;

            ok(run_ok && ref >= 0 && num < fmax(0.05, 3 * ref), "%s: "
               "%d-token prompt: %s prefill logits: rms difference %.4f of "
               "f32's rms, llama.cpp's own %.4f (max %.3f of max |logit|)",
               name->valuestring, n, modes[k], num, ref, d / mx);
            diag("%s: %s greedy tokens: %d of %d agree with f32, first %d "
                 "identical", name->valuestring, modes[k], same, N_GREEDY,
                 prefix);

            first_ok[k] += got_q[0] == got_f[0];
            tot_same[k] += same;
        }

        n_cases++;
        free(toks);
    }

    for (k = 0; k < N_MODES; k++) {
        ok(n_cases > 0 && 2 * first_ok[k] > n_cases, "%s picks f32's first "
           "token in %d of %d prompts", modes[k], first_ok[k], n_cases);
        diag("%s: greedy agreement with f32 over all prompts: %d of %d "
             "tokens", modes[k], tot_same[k], n_cases * N_GREEDY);
    }

    ok(n_cases > 0 && differ == n_cases, "native's prefill logits differ "
       "from q8_0's in %d of %d prompts (it reads the Q4_1 blocks)",
       differ, n_cases);

    pids = cJSON_GetObjectItem(cJSON_GetArrayItem(cases, 0), "prompt_ids");
    toks = malloc(cJSON_GetArraySize(pids) * sizeof(int32_t));
    for (i = 0; i < cJSON_GetArraySize(pids); i++) {
        toks[i] = cJSON_GetArrayItem(pids, i)->valueint;
    }

    for (k = 0; k < N_MODES; k++) {
        test_batch_invariance(&qe[k], modes[k], m, toks,
                              cJSON_GetArraySize(pids));
    }

    free(toks);

    f32.be->free(f32.be);
    free(f32.loff);

    for (k = 0; k < N_MODES; k++) {
        qe[k].be->free(qe[k].be);
        free(qe[k].loff);
    }

    free(lf);
    free(lq);
    free(l8);
    slora_model_free(m);
    cJSON_Delete(root);

    return done_testing();
}
