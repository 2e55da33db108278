/*
 * test_backend_open.c: what the engine needs around its backends, checked
 * on the CPU: device names and a CUDA library that is not there
 * (slora_backend_open), random models named by a spec
 * (slora_model_random) and the same models deferred, their weights made
 * block by block in bf16 as a device makes them (slora_random.h), the
 * row argmax every greedy choice goes through
 * (slora_argmax_rows), the bf16 rounding weights take on a GPU
 * (slora_convert_bf16), and the engine's greedy path, which hands the
 * argmax to the backend, against its sampling path with margins on.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#include "slora_core.h"
#include "slora_model.h"
#include "slora_backend.h"
#include "slora_engine.h"
#include "slora_argmax.h"
#include "slora_convert.h"
#include "slora_random.h"


static void test_open(void);
static void test_random(void);
static void test_random_deferred(void);
static void test_argmax(void);
static void test_convert(void);
static void test_engine_paths(void);
static int run_greedy(int margins, int32_t *out, float *margin, int32_t n);


int
main(void)
{
    test_open();
    test_random();
    test_random_deferred();
    test_argmax();
    test_convert();
    test_engine_paths();

    return done_testing();
}


static void
test_open(void)
{
    slora_err_t       err;
    slora_backend_t  *b;
    size_t            i;
    static const char *bad[] = { "gpu", "cuda:", "cuda:x", "cuda:-1",
                                 "cuda:99999", "CPU" };

    b = slora_backend_open(NULL, 1, 1, NULL, NULL, &err);
    ok(b != NULL && strcmp(b->name, "cpu") == 0, "no device is the CPU");
    if (b != NULL) {
        ok(b->mem_free == NULL, "the CPU sizes its pool from host memory");
        b->free(b);
    }

    b = slora_backend_open("cpu", 1, 1, "q8_0", NULL, &err);
    ok(b != NULL, "cpu with q8_0 weights");
    if (b != NULL) {
        b->free(b);
    }

    b = slora_backend_open("cpu", 1, 1, "int3", NULL, &err);
    ok(b == NULL && strstr(err.msg, "int3") != NULL,
       "unknown CPU weights refused: %s", err.msg);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        b = slora_backend_open(bad[i], 1, 1, NULL, NULL, &err);
        ok(b == NULL && strstr(err.msg, bad[i]) != NULL
           && strstr(err.msg, "cuda:N") != NULL,
           "device \"%s\" refused: %s", bad[i], err.msg);
    }

    b = slora_backend_open("cuda", 1, 1, "q8_0", NULL, &err);
    ok(b == NULL && strstr(err.msg, "bf16") != NULL,
       "CPU weights on a GPU refused: %s", err.msg);

    b = slora_backend_open("cuda:1", 1, 1, NULL,
                           "/nonexistent/libslora_cuda.so", &err);
    ok(b == NULL && strstr(err.msg, "cannot load the CUDA backend") != NULL
       && strstr(err.msg, "/nonexistent/libslora_cuda.so") != NULL,
       "a missing CUDA library is named: %s", err.msg);

    b = slora_backend_open("cuda", 1, 1, NULL, "libm.so.6", &err);
    ok(b == NULL && strstr(err.msg, "slora_backend_cuda_create") != NULL,
       "a library without the entry point refused: %s", err.msg);

    b = slora_backend_open("cpu", 2, 1, NULL, NULL, &err);
    ok(b == NULL && strstr(err.msg, "tensor_parallel=2") != NULL
       && strstr(err.msg, "device=cuda") != NULL,
       "tensor parallelism on the CPU refused: %s", err.msg);

    b = slora_backend_open("cuda", 0, 1, NULL, NULL, &err);
    ok(b == NULL && strstr(err.msg, "tensor_parallel=0") != NULL,
       "tensor_parallel=0 refused: %s", err.msg);
}


static void
test_random(void)
{
    slora_err_t            err;
    slora_model_t         *a, *b, *c;
    slora_model_config_t   cfg;
    size_t                 n, i, ones;
    int                    same, differ, in_range;
    float                  lim;

    ok(slora_model_is_random("random:llama-7b"), "random: is a spec");
    ok(!slora_model_is_random("models/random.gguf"), "a path is not");

    ok(slora_model_random_config("random:llama-70b", &cfg, &err) == SLORA_OK
       && cfg.hidden == 8192 && cfg.n_layers == 80 && cfg.n_heads == 64
       && cfg.n_kv_heads == 8 && cfg.ffn == 28672 && cfg.vocab == 32000
       && cfg.head_dim == 128, "llama-70b's shape without its weights");

    ok(slora_model_random_config("random:llama-13b,layers=2,vocab=512",
                                 &cfg, &err) == SLORA_OK
       && cfg.hidden == 5120 && cfg.n_layers == 2 && cfg.vocab == 512
       && cfg.head_dim == 128, "overrides");

    ok(slora_model_random_config("random:gpt-5", &cfg, &err) != SLORA_OK
       && strstr(err.msg, "unknown shape") != NULL,
       "unknown shape: %s", err.msg);
    ok(slora_model_random_config("random:llama-7b,layers", &cfg, &err)
       != SLORA_OK && strstr(err.msg, "key=value") != NULL,
       "no value: %s", err.msg);
    ok(slora_model_random_config("random:llama-7b,layers=0", &cfg, &err)
       != SLORA_OK, "layers=0 refused: %s", err.msg);
    ok(slora_model_random_config("random:llama-7b,layers=2x", &cfg, &err)
       != SLORA_OK, "layers=2x refused: %s", err.msg);
    ok(slora_model_random_config("random:llama-7b,depth=2", &cfg, &err)
       != SLORA_OK && strstr(err.msg, "depth") != NULL,
       "unknown key: %s", err.msg);
    ok(slora_model_random_config("random:llama-7b,heads=7", &cfg, &err)
       != SLORA_OK && strstr(err.msg, "fit") != NULL,
       "heads that do not divide hidden: %s", err.msg);

    a = slora_model_load("random:smollm2-135m,layers=2,vocab=256", &err);
    b = slora_model_load("random:smollm2-135m,layers=2,vocab=256", &err);
    c = slora_model_load("random:smollm2-135m,layers=2,vocab=256,seed=9",
                         &err);
    ok(a != NULL && b != NULL && c != NULL, "three small random models");

    if (a == NULL || b == NULL || c == NULL) {
        slora_model_free(a);
        slora_model_free(b);
        slora_model_free(c);
        return;
    }

    n = a->mem_size / sizeof(float);
    same = memcmp(a->mem, b->mem, a->mem_size) == 0;
    differ = 0;
    for (i = 0; i < n; i++) {
        differ += ((float *) a->mem)[i] != ((float *) c->mem)[i];
    }
    ok(same, "one spec, one model (%zu weights)", n);
    ok(differ > (int) (n / 2), "another seed, other weights (%d of %zu)",
       differ, n);

    /* norms are ones, matrices uniform within 1/sqrt(in) and not flat */
    ones = 0;
    for (i = 0; i < (size_t) a->cfg.hidden; i++) {
        ones += a->w.layers[1].ffn_norm[i] == 1.0f;
    }
    is_int(ones, a->cfg.hidden, "ffn_norm is all ones");

    lim = 1.0f / sqrtf((float) a->cfg.ffn);
    in_range = 1;
    differ = 0;
    for (i = 0; i < (size_t) a->cfg.hidden * a->cfg.ffn; i++) {
        in_range &= fabsf(a->w.layers[0].w_down[i]) <= lim;
        differ += fabsf(a->w.layers[0].w_down[i]) > lim / 2;
    }
    ok(in_range && differ > a->cfg.hidden * a->cfg.ffn / 3,
       "w_down within 1/sqrt(ffn) and spread over it");

    ok(a->w.output != a->w.tok_embd, "output is its own matrix");

    slora_model_free(a);
    slora_model_free(b);
    slora_model_free(c);
}


/*
 * A deferred model has the spec's shape and seed and no weights; every
 * block a backend makes from a tensor's key (a whole norm, a rank's rows
 * of q, its columns of o and of down) is the host model's f32 values
 * rounded to bf16, bit for bit. The first values are pinned, so a change
 * to the generator (which would make every recorded figure another
 * model's) fails here.
 */

static void
test_random_deferred(void)
{
    static const char      *spec = "random:smollm2-135m,layers=2,vocab=256";
    slora_err_t             err;
    slora_model_t          *a, *d, *none;
    slora_backend_t        *be;
    slora_random_tensor_e   t;
    slora_model_config_t    cfg;
    uint64_t                key;
    float                   amp;
    uint16_t               *blk;
    const float            *src;
    int64_t                 rows, cols, ld, first, r, c;
    int32_t                 h, q, f, k, l;
    int                     bad;

    a = slora_model_load(spec, &err);
    d = slora_model_random_deferred(spec, &err);
    ok(a != NULL && d != NULL, "a random model, and the same deferred");

    if (a == NULL || d == NULL) {
        slora_model_free(a);
        slora_model_free(d);
        return;
    }

    ok(d->random_deferred && d->w.tok_embd == NULL && d->w.layers == NULL
       && d->mem == NULL && d->random_seed == a->random_seed
       && memcmp(&d->cfg, &a->cfg, sizeof(d->cfg)) == 0,
       "deferred: the shape and seed, no weights");

    ok(slora_model_config(spec, &cfg, &err) == SLORA_OK
       && memcmp(&cfg, &a->cfg, sizeof(cfg)) == 0
       && slora_model_config("/nonexistent/model.gguf", &cfg, &err)
          != SLORA_OK,
       "a path's configuration: a random spec's, and a missing file "
       "refused: %s", err.msg);

    none = slora_model_random_deferred("random:llama-7b,heads=7", &err);
    ok(none == NULL && strstr(err.msg, "fit") != NULL,
       "a deferred spec is checked as well: %s", err.msg);

    be = slora_backend_open("cpu", 1, 1, NULL, NULL, &err);
    ok(be != NULL && be->makes_random == 0
       && be->load_model(be, d, &err) != SLORA_OK
       && strstr(err.msg, "left for a device") != NULL,
       "the CPU backend makes no weights and refuses a deferred model: %s",
       err.msg);
    if (be != NULL) {
        be->free(be);
    }

    be = slora_backend_open("cpu", 1, 1, NULL, NULL, &err);
    ok(be != NULL && be->load_model(be, a, &err) == SLORA_OK
       && be->load_model(be, a, &err) != SLORA_OK
       && strstr(err.msg, "loaded already") != NULL,
       "the CPU backend loads a model once, a second refused: %s", err.msg);
    if (be != NULL) {
        be->free(be);
    }

    h = a->cfg.hidden;
    q = a->cfg.n_heads * a->cfg.head_dim;
    f = a->cfg.ffn;

    slora_model_random_tensor(&d->cfg, -1, SLORA_RT_TOK_EMBD, &key, &amp);
    ok(slora_random_value(d->random_seed, key, 0, amp) == a->w.tok_embd[0]
       && a->w.tok_embd[0] == -0x1.8cea8p-8f
       && a->w.layers[1].wo[12345] == 0x1.bde69cp-6f
       && a->w.layers[0].w_down[777] == -0x1.6e09eap-6f,
       "the generator's values are the ones every figure was made with");

    blk = malloc((size_t) h * f * sizeof(uint16_t));

    /* tensor, layer, host values, block: rows x cols from first, ld */
    for (k = 0; k < 5; k++) {
        switch (k) {
        case 0:         /* a norm: ones */
            t = SLORA_RT_FFN_NORM; l = 1; src = a->w.layers[1].ffn_norm;
            rows = 1; cols = h; ld = h; first = 0;
            break;
        case 1:         /* rank 1 of 3's rows of q */
            t = SLORA_RT_WQ; l = 0; src = a->w.layers[0].wq;
            rows = 1; cols = (int64_t) q / 3 * h; ld = cols; first = cols;
            break;
        case 2:         /* rank 2 of 3's columns of o */
            t = SLORA_RT_WO; l = 1; src = a->w.layers[1].wo;
            rows = h; cols = q / 3; ld = q; first = 2 * (q / 3);
            break;
        case 3:         /* rank 1 of 2's columns of down */
            t = SLORA_RT_DOWN; l = 0; src = a->w.layers[0].w_down;
            rows = h; cols = f / 2; ld = f; first = f / 2;
            break;
        default:        /* the untied output matrix */
            t = SLORA_RT_OUTPUT; l = -1; src = a->w.output;
            rows = 1; cols = (int64_t) a->cfg.vocab * h; ld = cols;
            first = 0;
        }

        slora_model_random_tensor(&d->cfg, l, t, &key, &amp);
        slora_random_fill_bf16(blk, rows, cols, ld, first, d->random_seed,
                               key, amp);
        bad = 0;

        for (r = 0; r < rows; r++) {
            for (c = 0; c < cols; c++) {
                bad += blk[r * cols + c]
                       != slora_f32_to_bf16(src[first + r * ld + c]);
            }
        }

        is_int(bad, 0, "block %d (%lld x %lld from %lld) made in bf16 is the "
               "host's tensor rounded", k, (long long) rows,
               (long long) cols, (long long) first);
    }

    free(blk);
    slora_model_free(a);
    slora_model_free(d);
}


static void
test_argmax(void)
{
    float    x[3 * 8] = {
        1, 5, 2, 5, 0, 0, 0, 0,         /* tie: the first */
        -3, -2, -1, -7, -1, -9, -1, -4, /* tie later on */
        0, 0, 0, 0, 0, 0, 0, 9          /* last */
    };
    float    nan_first[4] = { NAN, 1, 3, 2 };
    int32_t  out[3];

    slora_argmax_rows(out, x, 8, 3, 8);
    is_int(out[0], 1, "ties go to the lowest index");
    is_int(out[1], 2, "ties go to the lowest index, negatives");
    is_int(out[2], 7, "the last column");

    slora_argmax_rows(out, x + 8, 8, 1, 2);
    is_int(out[0], 1, "only n columns are read");

    slora_argmax_rows(out, nan_first, 4, 1, 4);
    is_int(out[0], 2, "a NaN in front gives way to the numbers after it");
}


static void
test_convert(void)
{
    uint16_t  h[4];
    float     f[4];
    uint32_t  u;

    /* the rounding itself is test_gguf's; here the array form and the
     * ends of the range */
    f[0] = -2.5f;
    f[1] = INFINITY;
    u = 0x7f7fffff;                 /* the largest float rounds to inf */
    memcpy(&f[2], &u, 4);
    u = 0x00000001;                 /* the smallest subnormal rounds to 0 */
    memcpy(&f[3], &u, 4);

    slora_convert_bf16(h, f, 4);

    is_int(h[0], 0xc020, "-2.5");
    is_int(h[1], 0x7f80, "inf");
    is_int(h[2], 0x7f80, "FLT_MAX rounds to inf");
    is_int(h[3], 0x0000, "the smallest subnormal rounds to 0");
}


/*
 * Greedy requests through the engine twice: the backend's argmax (the
 * default for greedy steps) and, with margins on, the host's sampler over
 * the logits. They must agree token for token, and every margin must be a
 * real gap (>= 0, finite).
 */

static void
test_engine_paths(void)
{
    int32_t  a[64], b[64];
    float    ma[64], mb[64];
    int      i, ok_margins;

    if (run_greedy(0, a, ma, 64) != SLORA_OK
        || run_greedy(1, b, mb, 64) != SLORA_OK)
    {
        ok(0, "greedy runs");
        return;
    }

    ok(memcmp(a, b, sizeof(a)) == 0, "backend argmax and host sampling give "
       "the same 4 x 16 tokens");

    ok_margins = 1;
    for (i = 0; i < 64; i++) {
        ok_margins &= ma[i] == 0.0f && mb[i] >= 0.0f && isfinite(mb[i]);
    }
    ok(ok_margins, "margins only when asked, and each a finite gap");
}


typedef struct {
    int32_t  *out;
    float    *margin;
    int32_t   n[4];
    int32_t   done;
} greedy_run_t;


static void
greedy_event(void *data, const slora_event_t *ev)
{
    greedy_run_t  *g = data;
    int32_t        r;

    r = (int32_t) ev->id;

    if (ev->type == SLORA_EV_TOKEN && g->n[r] < 16) {
        g->margin[r * 16 + g->n[r]] = ev->margin;
        g->out[r * 16 + g->n[r]++] = ev->token;

    } else if (ev->type != SLORA_EV_TOKEN) {
        g->done++;
    }
}


static int
run_greedy(int margins, int32_t *out, float *margin, int32_t n)
{
    int32_t               prompt[4][12], r, i;
    slora_err_t           err;
    slora_engine_t       *e;
    slora_engine_conf_t   conf;
    slora_request_t       req;
    greedy_run_t          g;

    memset(&conf, 0, sizeof(conf));
    conf.model_path = "random:smollm2-135m,layers=2,vocab=256,seed=3";
    conf.n_threads = 1;
    conf.weights = "f32";
    conf.max_running = 4;
    conf.max_ctx = 64;
    conf.margins = margins;

    e = slora_engine_init(&conf, &err);
    if (e == NULL) {
        diag("%s", err.msg);
        return SLORA_ERROR;
    }

    memset(&g, 0, sizeof(g));
    memset(out, 0, (size_t) n * sizeof(int32_t));
    g.out = out;
    g.margin = margin;

    for (r = 0; r < 4; r++) {
        for (i = 0; i < 12; i++) {
            prompt[r][i] = (r * 37 + i * 11) % 256;
        }

        memset(&req, 0, sizeof(req));
        req.id = (uint64_t) r;
        req.prompt = prompt[r];
        req.n_prompt = 12;
        req.sampling.max_tokens = 16;
        req.sampling.top_p = 1;
        req.sampling.repeat_penalty = 1;

        if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
            diag("%s", err.msg);
            slora_engine_free(e);
            return SLORA_ERROR;
        }
    }

    while (g.done < 4) {
        if (slora_engine_step(e, greedy_event, &g) == SLORA_ERROR) {
            break;
        }
    }

    slora_engine_free(e);

    return g.done == 4 ? SLORA_OK : SLORA_ERROR;
}
