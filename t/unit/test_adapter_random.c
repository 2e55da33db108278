/*
 * test_adapter_random.c: adapters named by a random: spec instead of a
 * folder (slora_adapter_random.c): the spec's grammar and its errors,
 * page images that depend on the seed and nothing else, with the sizes
 * mkadapter gives, the same rows in tensor-parallel slices stored
 * slice-major, host copies from the memory a backend names, and a
 * catalog of them in the engine: listed, loaded through the tiers, and
 * each request's greedy tokens the same alone and batched, and not the
 * base model's.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#include "slora_core.h"
#include "slora_model.h"
#include "slora_adapter.h"
#include "slora_convert.h"
#include "slora_engine.h"
#include "slora_tokenizer.h"


#define N_REQ   5
#define N_GEN   12


static void test_spec(void);
static int utf8_whole_text(const char *s);
static void test_image(void);
static void test_image_slices(void);
static void test_host_mem(void);
static void *count_alloc(void *ctx, size_t bytes);
static void count_free(void *ctx, void *p, size_t bytes);
static void test_engine(void);


/* A host_mem that counts, or refuses with refuse set. */
typedef struct {
    int      allocs;
    int      frees;
    int      refuse;
    size_t   bytes;
    size_t   freed;                 /* bytes given back */
    void    *last;
} counting_t;


int
main(void)
{
    test_spec();
    test_image();
    test_image_slices();
    test_host_mem();
    test_engine();

    return done_testing();
}


static void
test_spec(void)
{
    slora_err_t             err;
    slora_adapter_conf_t    conf;
    slora_adapter_random_t  rs;
    char                    name[32], spec[256];
    size_t                  i;
    static const char      *bad[] = {
        "random:targets=q",                 /* no rank */
        "random:rank=0",
        "random:rank=8,targets=x",
        "random:rank=8,targets=q+",
        "random:rank=8,depth=2",
        "random:rank=8,n=10",               /* a catalog key */
        "random:rank=8.5",
        "random:rank",
        "folder/of/adapter",
    };

    ok(slora_adapter_random_config("random:rank=8,targets=q+k+v+o,seed=3",
                                   &conf, &err) == SLORA_OK
       && conf.rank == 8 && conf.scale == 1.0f
       && conf.proj_mask == 0x0f, "a one-adapter spec");

    ok(slora_adapter_random_config("random:rank=64", &conf, &err) == SLORA_OK
       && conf.proj_mask == ((1u << SLORA_PROJ_Q) | (1u << SLORA_PROJ_V)),
       "targets default to q and v, as mkadapter's");

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ok(slora_adapter_random_config(bad[i], &conf, &err) != SLORA_OK,
           "refused: %s (%s)", bad[i], err.msg);
    }

    ok(slora_adapter_random_spec("random:n=12,ranks=8+16+32,targets=q+down,"
                                 "seed=5", 1, &rs, &err) == SLORA_OK
       && rs.n == 12 && rs.n_ranks == 3 && rs.ranks[2] == 32
       && rs.proj_mask == ((1u << SLORA_PROJ_Q) | (1u << SLORA_PROJ_DOWN)),
       "a catalog spec");
    ok(slora_adapter_random_spec("random:n=12", 1, &rs, &err) != SLORA_OK,
       "a catalog needs ranks: %s", err.msg);
    ok(slora_adapter_random_spec("random:n=5,ranks=8+2000", 1, &rs, &err)
       != SLORA_OK, "rank 2000 refused: %s", err.msg);

    /* a spec quoted at 128 bytes and a message cut at its buffer's end,
     * each inside a 3-byte character: both go back to where one ends */
    memcpy(spec, "random:rank=8,xy", 16);
    for (i = 0; i < 79; i++) {
        memcpy(spec + 16 + 3 * i, "\xe2\x82\xac", 3);           /* U+20AC */
    }
    spec[16 + 3 * 79] = '\0';
    {
        char  big[1024];

        snprintf(big, sizeof(big), "%s%s%s", spec, spec + 16, spec + 16);
        ok(slora_adapter_random_config(big, &conf, &err) != SLORA_OK
           && utf8_whole_text(err.msg) && strlen(err.msg) == 510
           && strncmp(err.msg, big, 127) == 0 && err.msg[127] == ':',
           "a quote of 127 bytes and a message of 510: whole characters");
    }

    slora_adapter_random_spec("random:n=12,ranks=8+16+32,targets=q+down,"
                              "seed=5", 1, &rs, &err);
    ok(slora_adapter_random_entry(&rs, 4, name, sizeof(name), spec,
                                  sizeof(spec)) == SLORA_OK
       && strcmp(name, "r0004") == 0
       && slora_adapter_random_config(spec, &conf, &err) == SLORA_OK
       && conf.rank == 16 && conf.proj_mask == rs.proj_mask
       && strstr(spec, "seed=9") != NULL,
       "entry 4: r0004, rank 16 (in turn), seed 5 + 4: %s", spec);
}


/* 1 when s is valid UTF-8 to its NUL */
static int
utf8_whole_text(const char *s)
{
    size_t  n, k, len;

    len = strlen(s);

    for (n = 0; n < len; n += k) {
        k = slora_utf8_valid((const uint8_t *) s + n, len - n);
        if (k == 0) {
            return 0;
        }
    }

    return 1;
}


static void
test_image(void)
{
    slora_err_t            err;
    slora_model_config_t   cfg;
    slora_adapter_image_t  a, b, c;
    int64_t                n, i, lay;
    int32_t                row, j, in, out, differ, inside;
    float                  amp_a, amp_b, *p;

    slora_model_random_config("random:smollm2-135m,layers=2", &cfg, &err);

    ok(slora_adapter_image_load(&cfg, 4608, 1, NULL, "x",
                                "random:rank=8,seed=2,"
                                "targets=q+k+v+o+gate+up+down", NULL, &a,
                                &err) == SLORA_OK, "an image from a spec");
    ok(slora_adapter_image_load(&cfg, 4608, 1, NULL, "x",
                                "random:rank=8,seed=2,"
                                "targets=q+k+v+o+gate+up+down", NULL, &b,
                                &err) == SLORA_OK
       && slora_adapter_image_load(&cfg, 4608, 1, NULL, "x",
                                   "random:rank=8,seed=3,"
                                   "targets=q+k+v+o+gate+up+down", NULL, &c,
                                   &err) == SLORA_OK, "two more");

    if (a.host == NULL || b.host == NULL || c.host == NULL) {
        slora_adapter_image_free(&a);
        slora_adapter_image_free(&b);
        slora_adapter_image_free(&c);
        return;
    }

    n = (int64_t) (a.bytes / sizeof(float));
    ok(a.bytes == b.bytes && memcmp(a.host, b.host, a.bytes) == 0,
       "one spec, one image (%lld floats)", (long long) n);

    differ = 0;
    for (i = 0; i < n; i++) {
        differ += ((const float *) a.host)[i] != ((const float *) c.host)[i];
    }
    ok(differ > n / 4, "another seed, other weights (%d differ)", differ);

    /* A rows of gate within sqrt(3/hidden), B^T rows of down within
     * 0.5 sqrt(3/8), both spread, in every layer */
    in = slora_proj_in_dim(&cfg, SLORA_PROJ_GATE);
    out = slora_proj_out_dim(&cfg, SLORA_PROJ_DOWN);
    amp_a = sqrtf(3.0f / (float) in);
    amp_b = 0.5f * sqrtf(3.0f / 8.0f);
    lay = (int64_t) a.plan.n_pages * a.plan.page_elems;
    inside = 1;
    differ = 0;

    for (i = 0; i < cfg.n_layers; i++) {
        for (j = 0; j < 8; j++) {
            row = a.plan.first_row[SLORA_PROJ_GATE][0] + j;
            p = (float *) a.host + i * lay + a.plan.row_off[row];
            inside &= fabsf(p[0]) <= amp_a && fabsf(p[in - 1]) <= amp_a;
            differ += fabsf(p[in / 2]) > amp_a / 4;

            row = a.plan.first_row[SLORA_PROJ_DOWN][1] + j;
            p = (float *) a.host + i * lay + a.plan.row_off[row];
            inside &= fabsf(p[0]) <= amp_b && fabsf(p[out - 1]) <= amp_b;
            differ += fabsf(p[out / 2]) > amp_b / 4;
        }
    }

    ok(inside, "values within mkadapter's bounds");
    ok(differ > 16, "and spread over them (%d of 32 above a quarter)",
       differ);

    slora_adapter_image_free(&a);
    slora_adapter_image_free(&b);
    slora_adapter_image_free(&c);
}


/*
 * An image's host copy comes from the slora_host_mem_t it is given (the
 * CUDA backend's pinned pages) and goes back to it; the same bytes as
 * from the heap; in bf16 when the memory asks for 2-byte values (half
 * the bytes, every value the f32 one rounded as kernels/slora_convert.h
 * rounds); a refused allocation is a clear error.
 */
static void
test_host_mem(void)
{
    slora_err_t            err;
    slora_model_config_t   cfg;
    slora_adapter_image_t  heap, mine, half;
    slora_host_mem_t       mem;
    counting_t             cnt;
    const char            *spec;
    const float           *f;
    const uint16_t        *h;
    size_t                 i, n, bad;
    int                    rc, frees;

    slora_model_random_config("random:smollm2-135m,layers=2", &cfg, &err);
    spec = "random:rank=8,seed=5,targets=q+v+down";

    memset(&cnt, 0, sizeof(cnt));
    memset(&mem, 0, sizeof(mem));
    mem.alloc = count_alloc;
    mem.free = count_free;
    mem.ctx = &cnt;

    rc = slora_adapter_image_load(&cfg, 4608, 1, NULL, "x", spec, NULL,
                                  &heap, &err);
    rc |= slora_adapter_image_load(&cfg, 4608, 1, &mem, "x", spec, NULL,
                                   &mine, &err);

    ok(rc == SLORA_OK && cnt.allocs == 1 && cnt.bytes == mine.bytes
       && cnt.last == mine.host && mine.host != NULL,
       "the host copy from the given memory: %d allocation of %zu bytes",
       cnt.allocs, cnt.bytes);
    ok(rc == SLORA_OK && heap.bytes == mine.bytes
       && memcmp(heap.host, mine.host, mine.bytes) == 0,
       "the same bytes as from the heap");

    slora_adapter_image_free(&mine);
    ok(cnt.frees == 1 && cnt.allocs == 1 && cnt.freed == cnt.bytes,
       "and freed there once (%d), with the bytes it was given (%zu)",
       cnt.frees, cnt.freed);

    mem.elem_size = 2;
    rc = slora_adapter_image_load(&cfg, 4608, 1, &mem, "x", spec, NULL,
                                  &half, &err);
    n = heap.bytes / sizeof(float);
    bad = 0;
    f = heap.host;
    h = half.host;
    for (i = 0; rc == SLORA_OK && i < n; i++) {
        bad += h[i] != slora_f32_to_bf16(f[i]);
    }
    ok(rc == SLORA_OK && half.elem_size == 2 && heap.elem_size == 4
       && half.bytes == n * 2 && bad == 0,
       "bf16 memory: %zu values in %zu bytes, each the f32 one rounded "
       "(%zu differ)", n, half.bytes, bad);
    slora_adapter_image_free(&half);
    slora_adapter_image_free(&heap);
    mem.elem_size = 0;
    frees = cnt.frees;

    cnt.refuse = 1;
    rc = slora_adapter_image_load(&cfg, 4608, 1, &mem, "refused", spec,
                                  NULL, &mine, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "adapter refused: no memory")
                            != NULL,
       "a refused allocation is an error: %s", err.msg);
    slora_adapter_image_free(&mine);
    ok(cnt.frees == frees, "with nothing to free");
}


static void *
count_alloc(void *ctx, size_t bytes)
{
    counting_t  *c = ctx;

    if (c->refuse) {
        return NULL;
    }

    c->allocs++;
    c->bytes += bytes;
    c->last = calloc(1, bytes);

    return c->last;
}


static void
count_free(void *ctx, void *p, size_t bytes)
{
    counting_t  *c = ctx;

    c->frees++;
    c->freed += bytes;
    free(p);
}


/* Each row of the plain image a (1 slice) is in d (n slices) slice-major:
 * its slice s at page_start + s * (pe / n) + q / n; nothing else in d. */
static void
test_image_slices(void)
{
    slora_err_t            err;
    slora_model_config_t   cfg;
    slora_adapter_image_t  a, d;
    uint8_t               *mark;
    int32_t                n, i, row, j, w, sl;
    int64_t                lay, l, q, pos, pe, e, bad, over, stray, checked;
    static const int32_t   slices[] = { 2, 3, 4 };
    static const char     *spec = "random:rank=8,seed=5,"
                                  "targets=q+k+v+o+gate+up+down";

    slora_model_random_config("random:smollm2-135m,layers=2", &cfg, &err);

    if (!ok(slora_adapter_image_load(&cfg, 4608, 1, NULL, "x", spec, NULL, &a,
                                     &err) == SLORA_OK, "the plain image"))
    {
        diag("%s", err.msg);
        return;
    }

    pe = a.plan.page_elems;
    lay = (int64_t) a.plan.n_pages * pe;

    /* the plain image: rows whole at row_off, nothing between them */
    mark = calloc((size_t) (cfg.n_layers * lay), 1);
    bad = 0;
    for (l = 0; l < cfg.n_layers; l++) {
        for (row = 0; row < a.plan.n_rows; row++) {
            for (j = 0; j < a.plan.row_width[row]; j++) {
                pos = l * lay + a.plan.row_off[row] + j;
                bad += ((const float *) a.host)[pos] == 0.0f;
                mark[pos] += mark[pos] < 255;
            }
        }
    }

    over = 0;
    stray = 0;
    for (e = 0; e < cfg.n_layers * lay; e++) {
        over += mark[e] > 1;
        stray += mark[e] == 0 && ((const float *) a.host)[e] != 0.0f;
    }
    free(mark);

    ok(a.plan.slices == 1 && bad == 0 && over == 0 && stray == 0,
       "1 slice: every row whole at row_off, nothing elsewhere (%lld zero "
       "values, %lld overlaps, %lld strays)", (long long) bad,
       (long long) over, (long long) stray);

    for (i = 0; i < 3; i++) {
        n = slices[i];
        if (!ok(slora_adapter_image_load(&cfg, 4608, n, NULL, "x", spec, NULL,
                                         &d, &err) == SLORA_OK,
                "%d slices: an image from the spec", n))
        {
            diag("%s", err.msg);
            continue;
        }

        mark = calloc((size_t) (cfg.n_layers * lay), 1);
        bad = 0;
        checked = 0;

        for (l = 0; l < cfg.n_layers; l++) {
            for (row = 0; row < a.plan.n_rows; row++) {
                w = a.plan.row_width[row] / n;
                q = a.plan.row_off[row] % pe;

                for (j = 0; j < a.plan.row_width[row]; j++) {
                    sl = j / w;
                    pos = l * lay + a.plan.row_off[row] - q + sl * (pe / n)
                          + q / n + (j - sl * w);
                    bad += ((const float *) d.host)[pos]
                           != ((const float *) a.host)[l * lay
                                                       + a.plan.row_off[row]
                                                       + j];
                    mark[pos] += mark[pos] < 255;
                    checked++;
                }
            }
        }

        over = 0;
        stray = 0;
        for (e = 0; e < cfg.n_layers * lay; e++) {
            over += mark[e] > 1;
            stray += mark[e] == 0 && ((const float *) d.host)[e] != 0.0f;
        }

        ok(d.bytes == a.bytes && d.plan.slices == n && bad == 0
           && over == 0 && stray == 0
           && checked == cfg.n_layers * a.plan.used_elems,
           "%d slices: each row of the plain image, element j at row_off + "
           "j, is slice-major here (%lld checked, %lld wrong, %lld "
           "overlaps, %lld strays)", n, (long long) checked, (long long) bad,
           (long long) over, (long long) stray);

        free(mark);
        slora_adapter_image_free(&d);
    }

    ok(slora_adapter_image_load(&cfg, 4608, 9, NULL, "nine", spec, NULL, &d,
                                &err) == SLORA_ERROR
       && strstr(err.msg, "adapter nine") != NULL
       && strstr(err.msg, "k_proj rows (576 in, 192 out) do not split in 9")
          != NULL, "192-wide rows in 9 slices refused: %s", err.msg);
    ok(slora_adapter_image_load(&cfg, 4608, 5, NULL, "five", spec, NULL, &d,
                                &err) == SLORA_ERROR
       && strstr(err.msg, "4608 elements does not split in 5") != NULL,
       "a page 5 does not divide refused: %s", err.msg);

    slora_adapter_image_free(&a);
}


typedef struct {
    int32_t   out[N_REQ][N_GEN];
    int32_t   n[N_REQ];
    int32_t   done;
    int32_t   failed;
} run_t;


static void
on_event(void *data, const slora_event_t *ev)
{
    run_t    *r = data;
    int32_t   i;

    i = (int32_t) ev->id;

    if (ev->type == SLORA_EV_TOKEN && r->n[i] < N_GEN) {
        r->out[i][r->n[i]++] = ev->token;

    } else if (ev->type != SLORA_EV_TOKEN) {
        if (ev->type == SLORA_EV_ERROR) {
            diag("request %d: %s", i, ev->error);
            r->failed++;
        }
        r->done++;
    }
}


/* Request i runs adapter names[i] (NULL: base) on prompt i; batched:
 * all submitted first. */
static int
run(slora_engine_t *e, const char **names, int batched, run_t *r)
{
    int32_t          prompt[16], i, k;
    slora_err_t      err;
    slora_request_t  req;

    memset(r, 0, sizeof(*r));

    for (i = 0; i < N_REQ; i++) {
        for (k = 0; k < 16; k++) {
            prompt[k] = (i * 31 + k * 7) % 256;
        }

        memset(&req, 0, sizeof(req));
        req.id = (uint64_t) i;
        req.adapter = names[i];
        req.prompt = prompt;
        req.n_prompt = 16;
        req.sampling.max_tokens = N_GEN;
        req.sampling.top_p = 1;
        req.sampling.repeat_penalty = 1;

        if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
            diag("%s", err.msg);
            return SLORA_ERROR;
        }

        while (!batched && r->done < i + 1) {
            if (slora_engine_step(e, on_event, r) == SLORA_ERROR) {
                return SLORA_ERROR;
            }
        }
    }

    while (r->done < N_REQ) {
        if (slora_engine_step(e, on_event, r) == SLORA_ERROR) {
            return SLORA_ERROR;
        }
    }

    for (i = 0; i < N_REQ; i++) {
        if (r->n[i] != N_GEN) {
            r->failed++;
        }
    }

    return r->failed == 0 ? SLORA_OK : SLORA_ERROR;
}


static void
test_engine(void)
{
    slora_err_t            err;
    slora_engine_t        *e;
    slora_engine_conf_t    conf;
    slora_engine_stats_t   st;
    const char           **list;
    int32_t                n, i, same_base;
    run_t                  alone, batched, base;
    const char            *names[N_REQ] = { "r0000", "r0001", "r0002",
                                            "r0049", NULL };
    const char            *none[N_REQ] = { NULL, NULL, NULL, NULL, NULL };

    memset(&conf, 0, sizeof(conf));
    conf.model_path = "random:smollm2-135m,layers=2,vocab=256,seed=4";
    conf.adapter_dir = "random:n=50,ranks=8+16+32+64,"
                       "targets=q+k+v+o+gate+up+down,scale=2";
    conf.n_threads = 1;
    conf.weights = "f32";
    conf.max_running = N_REQ;
    conf.max_ctx = 64;
    conf.pool_bytes = (size_t) 64 << 20;

    e = slora_engine_init(&conf, &err);
    ok(e != NULL, "an engine over a random catalog");
    if (e == NULL) {
        diag("%s", err.msg);
        return;
    }

    n = slora_engine_adapters(e, &list);
    is_int(n, 50, "50 adapters listed");

    ok(run(e, names, 0, &alone) == SLORA_OK
       && run(e, names, 1, &batched) == SLORA_OK
       && run(e, none, 1, &base) == SLORA_OK,
       "three runs, every request %d tokens", N_GEN);

    ok(memcmp(alone.out, batched.out, sizeof(alone.out)) == 0
       && memcmp(alone.n, batched.n, sizeof(alone.n)) == 0,
       "batched over four adapters equals alone, token for token");

    same_base = 0;
    for (i = 0; i < N_REQ - 1; i++) {
        same_base += memcmp(alone.out[i], base.out[i],
                            sizeof(alone.out[i])) == 0;
    }
    is_int(same_base, 0, "each adapter changes its answer from the base "
           "model's");
    ok(memcmp(alone.out[N_REQ - 1], base.out[N_REQ - 1],
              sizeof(alone.out[0])) == 0, "the base request is the base");

    slora_engine_stats(e, &st);
    ok(st.adapter_loads >= 4, "the adapters went through the tiers "
       "(%llu loads)", (unsigned long long) st.adapter_loads);

    slora_engine_free(e);
}
