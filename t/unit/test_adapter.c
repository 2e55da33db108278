/*
 * test_adapter.c: PEFT folders (config variants accepted and refused with
 * a message naming the cause, tensors of the wrong shape or module), the
 * page plan (no row straddles a page, no two rows overlap, the waste is
 * what the pages hold beyond the rows), and the tiers: the pool copy holds
 * exactly A and B^T row by row, pinned adapters are never evicted, idle
 * ones go least recently used first, the host tier keeps to its budget.
 */

#include <stdint.h>
#include <unistd.h>
#include <sys/stat.h>

#include "tap.h"
#include "slora_adapter.h"
#include "slora_safetensors.h"


typedef struct {
    slora_backend_t   b;
    float            *arena;
    int64_t           n;
} fake_backend_t;


static slora_model_config_t  cfg;
static char                  tmp[256];


static int fake_write(slora_backend_t *b, int64_t off, const float *src,
    int64_t n, slora_err_t *err);
static void make_cfg(slora_rope_e rope);
static void write_text(const char *dir, const char *name, const char *text);
static int read_conf(const char *json, slora_adapter_conf_t *conf,
    slora_err_t *err);
static void test_config(void);
static void test_plan(void);
static void test_bad_tensors(void);
static void test_tiers(slora_rope_e rope);


int
main(void)
{
    char  *d, cmd[300];

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-adapter-XXXXXX");
    d = mkdtemp(tmp);
    if (d == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    make_cfg(SLORA_ROPE_NEOX);
    test_config();
    test_plan();
    test_bad_tensors();
    test_tiers(SLORA_ROPE_NEOX);
    test_tiers(SLORA_ROPE_NORM);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}


static void
make_cfg(slora_rope_e rope)
{
    memset(&cfg, 0, sizeof(cfg));
    strcpy(cfg.arch, "llama");
    cfg.n_layers = 2;
    cfg.hidden = 64;
    cfg.n_heads = 4;
    cfg.n_kv_heads = 2;
    cfg.head_dim = 16;
    cfg.ffn = 128;
    cfg.vocab = 64;
    cfg.max_ctx = 256;
    cfg.rope_theta = 10000;
    cfg.norm_eps = 1e-5f;
    cfg.rope = rope;
}


static void
test_config(void)
{
    slora_err_t           err;
    slora_adapter_conf_t  c;

    ok(read_conf("{\"r\": 8, \"lora_alpha\": 16, \"target_modules\": "
                 "[\"q_proj\", \"v_proj\"]}", &c, &err) == SLORA_OK
       && c.rank == 8 && c.scale == 2.0f
       && c.proj_mask == ((1u << SLORA_PROJ_Q) | (1u << SLORA_PROJ_V)),
       "list targets, scale alpha / r");

    ok(read_conf("{\"r\": 16, \"lora_alpha\": 16, \"use_rslora\": true, "
                 "\"target_modules\": \"down_proj\"}", &c, &err) == SLORA_OK
       && c.scale == 4.0f && c.proj_mask == 1u << SLORA_PROJ_DOWN,
       "string target, rslora scale alpha / sqrt(r)");

    ok(read_conf("{\"r\": 4, \"target_modules\": \"all-linear\"}", &c, &err)
       == SLORA_OK && c.proj_mask == 0x7f && c.scale == 1.0f,
       "all-linear, alpha defaults to r");

    ok(read_conf("{\"r\": 4, \"target_modules\": "
                 "\".*\\\\.(q|v)_proj\"}", &c, &err) == SLORA_OK
       && c.proj_mask == ((1u << SLORA_PROJ_Q) | (1u << SLORA_PROJ_V)),
       "regex target_modules full-matched against module paths");

    ok(read_conf("{\"r\": 4, \"target_modules\": [\"model.layers.0.mlp."
                 "up_proj\"]}", &c, &err) == SLORA_OK
       && c.proj_mask == 1u << SLORA_PROJ_UP, "dotted module path");

    ok(read_conf("{\"r\": 8, \"target_modules\": [\"q_proj\", "
                 "\"embed_tokens\"]}", &c, &err) == SLORA_ERROR
       && strstr(err.msg, "\"embed_tokens\" cannot be applied") != NULL
       && strstr(err.msg, "adapter_config.json") != NULL,
       "embed_tokens refused: %s", err.msg);

    ok(read_conf("{\"r\": 8, \"target_modules\": [\"lm_head\"]}", &c, &err)
       == SLORA_ERROR && strstr(err.msg, "lm_head") != NULL,
       "lm_head refused: %s", err.msg);

    ok(read_conf("{\"r\": 8, \"target_modules\": \"lm_head|embed\"}", &c,
                 &err) == SLORA_ERROR
       && strstr(err.msg, "matches no module") != NULL,
       "regex matching nothing we apply refused: %s", err.msg);

    ok(read_conf("{\"r\": 0, \"target_modules\": [\"q_proj\"]}", &c, &err)
       == SLORA_ERROR && strstr(err.msg, "\"r\"") != NULL,
       "r = 0 refused: %s", err.msg);

    ok(read_conf("{\"r\": 2.5, \"target_modules\": [\"q_proj\"]}", &c, &err)
       == SLORA_ERROR, "fractional r refused");

    ok(read_conf("{\"target_modules\": [\"q_proj\"]}", &c, &err)
       == SLORA_ERROR && strstr(err.msg, "\"r\"") != NULL,
       "missing r refused: %s", err.msg);

    ok(read_conf("{\"r\": 8}", &c, &err) == SLORA_ERROR
       && strstr(err.msg, "target_modules") != NULL,
       "missing target_modules refused: %s", err.msg);

    ok(read_conf("{\"r\": 8, \"target_modules\": [\"q_proj\"], "
                 "\"use_dora\": true}", &c, &err) == SLORA_ERROR
       && strstr(err.msg, "DoRA") != NULL, "DoRA refused: %s", err.msg);

    ok(read_conf("{\"r\": 8, \"target_modules\": [\"q_proj\"], "
                 "\"modules_to_save\": [\"lm_head\"]}", &c, &err)
       == SLORA_ERROR && strstr(err.msg, "modules_to_save") != NULL,
       "modules_to_save refused: %s", err.msg);

    ok(read_conf("{\"r\": 8, \"target_modules\": [\"q_proj\"], "
                 "\"peft_type\": \"IA3\"}", &c, &err) == SLORA_ERROR
       && strstr(err.msg, "peft_type") != NULL,
       "other PEFT types refused: %s", err.msg);

    ok(read_conf("{\"r\": 8, ", &c, &err) == SLORA_ERROR
       && strstr(err.msg, "not a JSON object") != NULL,
       "broken JSON refused: %s", err.msg);

    ok(slora_adapter_read_config("/nonexistent/dir", &cfg, &c, &err)
       == SLORA_ERROR && strstr(err.msg, "/nonexistent/dir/adapter_config"
                                ".json") != NULL,
       "missing folder named: %s", err.msg);
}


static void
test_plan(void)
{
    int                    bad_straddle, bad_overlap, i;
    uint8_t               *used;
    int64_t                sum, j, pe;
    slora_err_t            err;
    slora_adapter_conf_t   c;
    slora_adapter_plan_t   plan;
    static const int64_t   pes[] = { 512, 600, 192 };
    static const int32_t   ranks[] = { 8, 3, 64 };
    int                    pi, ri;

    for (pi = 0; pi < 3; pi++) {
        for (ri = 0; ri < 3; ri++) {
            pe = pes[pi];
            memset(&c, 0, sizeof(c));
            c.rank = ranks[ri];
            c.proj_mask = 0x7f;

            if (slora_adapter_plan(&cfg, &c, pe, &plan, &err) != SLORA_OK) {
                ok(0, "plan: %s", err.msg);
                continue;
            }

            used = calloc((size_t) (plan.n_pages * pe), 1);
            bad_straddle = 0;
            bad_overlap = 0;
            sum = 0;

            for (i = 0; i < plan.n_rows; i++) {
                bad_straddle += plan.row_off[i] % pe + plan.row_width[i] > pe;
                for (j = 0; j < plan.row_width[i]; j++) {
                    bad_overlap += used[plan.row_off[i] + j]++ != 0;
                }
                sum += plan.row_width[i];
            }

            /* rows: q 64+64, k 64+32, v 64+32, o 64+64, gate 64+128,
             * up 64+128, down 128+64 = 1024 per rank */
            is_int(plan.n_rows, 14 * c.rank, "pe %lld r %d: rows",
                   (long long) pe, c.rank);
            is_int(sum, 1024 * (int64_t) c.rank, "pe %lld r %d: elements",
                   (long long) pe, c.rank);
            is_int(plan.used_elems, sum, "pe %lld r %d: used_elems",
                   (long long) pe, c.rank);
            ok(bad_straddle == 0 && bad_overlap == 0,
               "pe %lld r %d: no row straddles a page, none overlaps "
               "(%d pages, waste %lld elements, %.1f%%)", (long long) pe,
               c.rank, plan.n_pages,
               (long long) (plan.n_pages * pe - plan.used_elems),
               100.0 * (double) (plan.n_pages * pe - plan.used_elems)
               / (double) (plan.n_pages * pe));

            if (pe % 128 == 0) {
                is_int(plan.n_pages, (sum + pe - 1) / pe,
                       "pe %lld r %d: widths that divide the page waste "
                       "only the last page", (long long) pe, c.rank);
            }

            free(used);
            slora_adapter_plan_free(&plan);
        }
    }

    c.rank = 4;
    c.proj_mask = 1u << SLORA_PROJ_DOWN;
    ok(slora_adapter_plan(&cfg, &c, 100, &plan, &err) == SLORA_ERROR
       && strstr(err.msg, "wider than a page") != NULL,
       "rows wider than a page refused: %s", err.msg);
}


static void
test_bad_tensors(void)
{
    int                          rc;
    char                         dir[512], path[600];
    float                        buf[8 * 128];
    int64_t                      dims[2];
    slora_err_t                  err;
    slora_pool_t                *pool;
    fake_backend_t               fb;
    slora_adapter_t             *a;
    slora_adapters_t            *set;
    slora_pool_geom_t            g = { 2, 32, 64, 128, 4, 0 };
    slora_adapter_gen_t          gen = { 8, 16, 0x7f, 1, 0.5f };
    slora_safetensors_writer_t  *w;

    memset(&fb, 0, sizeof(fb));
    fb.b.write_arena = fake_write;

    pool = slora_pool_create(&g, (size_t) 64 * 2 * 512 * 4, &err);
    fb.n = (int64_t) 64 * 2 * 512;
    fb.arena = calloc((size_t) fb.n, sizeof(float));
    set = slora_adapters_create(&cfg, pool, &fb.b, 1 << 20, &err);

    /* config says r = 4, tensors are r = 8 */
    snprintf(dir, sizeof(dir), "%s/rank-mismatch", tmp);
    slora_adapter_write_random(dir, &cfg, &gen, &err);
    write_text(dir, "adapter_config.json", "{\"r\": 4, \"target_modules\": "
               "\"all-linear\"}");
    slora_adapters_add(set, "rank-mismatch", dir, &a, &err);
    rc = slora_adapter_acquire(set, a, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "shape [8, 64]") != NULL
       && strstr(err.msg, "want [4, 64]") != NULL
       && strstr(err.msg, "adapter_model.safetensors") != NULL,
       "rank mismatch: %s", err.msg);

    /* an adapter trained on a model with a narrower ffn */
    snprintf(dir, sizeof(dir), "%s/other-ffn", tmp);
    gen.proj_mask = 1u << SLORA_PROJ_DOWN;
    slora_adapter_write_random(dir, &cfg, &gen, &err);
    cfg.ffn = 256;
    slora_adapters_free(set);
    set = slora_adapters_create(&cfg, pool, &fb.b, 1 << 20, &err);
    slora_adapters_add(set, "other-ffn", dir, &a, &err);
    rc = slora_adapter_acquire(set, a, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "down_proj.lora_A") != NULL
       && strstr(err.msg, "want [8, 256]") != NULL,
       "adapter of a model with another ffn: %s", err.msg);
    cfg.ffn = 128;
    slora_adapters_free(set);
    set = slora_adapters_create(&cfg, pool, &fb.b, 1 << 20, &err);

    /* a tensor of a module we cannot apply */
    snprintf(dir, sizeof(dir), "%s/lm-head", tmp);
    mkdir(dir, 0755);
    write_text(dir, "adapter_config.json", "{\"r\": 8, \"target_modules\": "
               "\"all-linear\"}");
    memset(buf, 0, sizeof(buf));
    w = slora_safetensors_writer_new();
    dims[0] = 8;
    dims[1] = 64;
    slora_safetensors_writer_tensor(w, "base_model.model.model.layers.0."
                                    "self_attn.q_proj.lora_A.weight",
                                    SLORA_DT_F32, 2, dims, buf, &err);
    slora_safetensors_writer_tensor(w, "base_model.model.lm_head.lora_A."
                                    "weight", SLORA_DT_F32, 2, dims, buf,
                                    &err);
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    slora_safetensors_writer_write(w, path, &err);
    slora_safetensors_writer_free(w);

    slora_adapters_add(set, "lm-head", dir, &a, &err);
    ok(slora_adapter_acquire(set, a, &err) == SLORA_ERROR
       && strstr(err.msg, "lm_head.lora_A.weight is not a LoRA weight")
          != NULL, "lm_head tensor refused: %s", err.msg);

    /* A without B */
    snprintf(dir, sizeof(dir), "%s/half", tmp);
    mkdir(dir, 0755);
    write_text(dir, "adapter_config.json", "{\"r\": 8, \"target_modules\": "
               "[\"q_proj\"]}");
    w = slora_safetensors_writer_new();
    slora_safetensors_writer_tensor(w, "base_model.model.model.layers.1."
                                    "self_attn.q_proj.lora_A.weight",
                                    SLORA_DT_F32, 2, dims, buf, &err);
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    slora_safetensors_writer_write(w, path, &err);
    slora_safetensors_writer_free(w);

    slora_adapters_add(set, "half", dir, &a, &err);
    ok(slora_adapter_acquire(set, a, &err) == SLORA_ERROR
       && strstr(err.msg, "layer 1 q_proj has lora_A without lora_B")
          != NULL, "A without B refused: %s", err.msg);

    /* a tensor outside target_modules */
    write_text(dir, "adapter_config.json", "{\"r\": 8, \"target_modules\": "
               "[\"v_proj\"]}");
    ok(slora_adapter_acquire(set, a, &err) == SLORA_ERROR
       && strstr(err.msg, "not in target_modules") != NULL,
       "tensor outside target_modules refused: %s", err.msg);

    /* a layer the model lacks */
    snprintf(dir, sizeof(dir), "%s/deep", tmp);
    mkdir(dir, 0755);
    write_text(dir, "adapter_config.json", "{\"r\": 8, \"target_modules\": "
               "[\"q_proj\"]}");
    w = slora_safetensors_writer_new();
    slora_safetensors_writer_tensor(w, "base_model.model.model.layers.7."
                                    "self_attn.q_proj.lora_A.weight",
                                    SLORA_DT_F32, 2, dims, buf, &err);
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    slora_safetensors_writer_write(w, path, &err);
    slora_safetensors_writer_free(w);

    slora_adapters_add(set, "deep", dir, &a, &err);
    ok(slora_adapter_acquire(set, a, &err) == SLORA_ERROR
       && strstr(err.msg, "layer 7, the model has 2") != NULL,
       "layer out of range refused: %s", err.msg);

    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 64,
           "failed loads leave the pool untouched");

    ok(slora_adapters_add(set, "../x", dir, NULL, &err) == SLORA_ERROR
       && slora_adapters_add(set, ".hidden", dir, NULL, &err) == SLORA_ERROR
       && slora_adapters_add(set, "a/b", dir, NULL, &err) == SLORA_ERROR,
       "names with .., / or a leading . refused: %s", err.msg);
    is_int(slora_adapters_add(set, "deep", dir, NULL, &err), SLORA_DECLINED,
           "a name registered twice is declined");

    slora_adapters_free(set);
    slora_pool_free(pool);
    free(fb.arena);
}


static void
test_tiers(slora_rope_e rope)
{
    int                     rc, i, bad, p, side, l;
    char                    dir[512], path[600], name[32], tname[160];
    float                  *ref, v;
    int32_t                 r, j, in, out, heads;
    int64_t                 off;
    slora_err_t             err;
    slora_pool_t           *pool;
    fake_backend_t          fb;
    slora_adapter_t        *a[4];
    slora_adapters_t       *set;
    slora_safetensors_t    *st;
    const slora_lora_t     *lo;
    const slora_tensor_t   *t;
    slora_adapters_stats_t  s;
    slora_pool_geom_t       g = { 2, 32, 64, 128, 4, 0 };
    slora_adapter_gen_t     gen = { 8, 16, 0x7f, 1, 0.5f };
    const char             *rn;

    rn = rope == SLORA_ROPE_NORM ? "norm" : "neox";
    make_cfg(rope);

    /* rank 8, all targets: 8192 elements a layer = 16 pages of 512 */
    pool = slora_pool_create(&g, (size_t) 40 * 2 * 512 * 4, &err);
    fb.n = (int64_t) 40 * 2 * 512;
    fb.arena = calloc((size_t) fb.n, sizeof(float));
    fb.b.write_arena = fake_write;

    /* a host budget of about one adapter (2 layers * 16 pages * 2 KiB) */
    set = slora_adapters_create(&cfg, pool, &fb.b, 70000, &err);

    for (i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        snprintf(dir, sizeof(dir), "%s/%s", tmp, name);
        gen.seed = 100 + i;
        if (slora_adapter_write_random(dir, &cfg, &gen, &err) != SLORA_OK) {
            BAIL_OUT("%s", err.msg);
        }
        slora_adapters_add(set, name, dir, &a[i], &err);
    }

    rc = slora_adapter_acquire(set, a[0], &err);
    if (!ok(rc == SLORA_OK, "%s: acquire t0", rn)) {
        diag("%s", err.msg);
        return;
    }

    is_int(slora_pool_count(pool, SLORA_PAGE_ADAPTER), 16,
           "%s: 16 adapter pages", rn);

    lo = slora_adapter_lora(a[0]);
    ok(lo->rank == 8 && lo->scale == 2.0f && lo->proj_mask == 0x7f,
       "%s: rank, scale, mask", rn);

    /* every row in the arena equals the file's A row or B^T row */
    snprintf(path, sizeof(path), "%s/t0/adapter_model.safetensors", tmp);
    st = slora_safetensors_open(path, &err);
    ref = malloc(128 * 8 * sizeof(float));
    bad = 0;

    for (l = 0; l < 2; l++) {
        for (p = 0; p < SLORA_PROJ_N; p++) {
            in = p == SLORA_PROJ_DOWN ? 128 : 64;
            out = p == SLORA_PROJ_K || p == SLORA_PROJ_V ? 32
                  : p == SLORA_PROJ_GATE || p == SLORA_PROJ_UP ? 128 : 64;

            for (side = 0; side < 2; side++) {
                snprintf(tname, sizeof(tname), "base_model.model.model."
                         "layers.%d.%s.lora_%c.weight", l,
                         p == SLORA_PROJ_Q ? "self_attn.q_proj"
                         : p == SLORA_PROJ_K ? "self_attn.k_proj"
                         : p == SLORA_PROJ_V ? "self_attn.v_proj"
                         : p == SLORA_PROJ_O ? "self_attn.o_proj"
                         : p == SLORA_PROJ_GATE ? "mlp.gate_proj"
                         : p == SLORA_PROJ_UP ? "mlp.up_proj"
                         : "mlp.down_proj", side ? 'B' : 'A');
                t = slora_safetensors_find(st, tname);
                if (t == NULL) {
                    BAIL_OUT("%s missing", tname);
                }
                slora_tensor_to_f32(t, ref, &err);

                if (side && rope == SLORA_ROPE_NORM
                    && (p == SLORA_PROJ_Q || p == SLORA_PROJ_K))
                {
                    /* HF half-split pairs (i, i + d/2) become adjacent */
                    heads = p == SLORA_PROJ_Q ? 4 : 2;
                    for (r = 0; r < 8; r++) {
                        for (j = 0; j < heads * 16; j++) {
                            off = slora_pool_layer_offset(pool, l)
                                  + lo->b_rows[p][r] + j;
                            v = ref[(size_t) ((j / 16) * 16
                                              + (j % 16) / 2
                                              + (j % 2) * 8) * 8 + r];
                            bad += fb.arena[off] != v;
                        }
                    }
                    continue;
                }

                for (r = 0; r < 8; r++) {
                    for (j = 0; j < (side ? out : in); j++) {
                        off = slora_pool_layer_offset(pool, l)
                              + (side ? lo->b_rows[p][r] : lo->a_rows[p][r])
                              + j;
                        v = side ? ref[(size_t) j * 8 + r]
                                 : ref[(size_t) r * in + j];
                        bad += fb.arena[off] != v;
                    }
                }
            }
        }
    }

    is_int(bad, 0, "%s: the pool holds A rows and B^T rows exactly, all "
           "layers%s", rn, rope == SLORA_ROPE_NORM
                           ? ", q/k rows in rope NORM order" : "");
    free(ref);
    slora_safetensors_close(st);

    /* pool of 40 pages: two adapters fit, a third needs an eviction */
    ok(slora_adapter_acquire(set, a[1], &err) == SLORA_OK, "%s: t1", rn);
    rc = slora_adapter_acquire(set, a[2], &err);
    ok(rc == SLORA_BUSY && strstr(err.msg, "16 pages wanted, 8 free"),
       "%s: both pinned: t2 is busy (%s)", rn, err.msg);
    is_int(slora_pool_count(pool, SLORA_PAGE_ADAPTER), 32,
           "%s: a busy acquire takes nothing", rn);

    slora_adapter_release(set, a[1]);
    slora_adapter_release(set, a[0]);
    ok(slora_adapter_acquire(set, a[2], &err) == SLORA_OK,
       "%s: t2 after t0, t1 went idle", rn);
    slora_adapters_stats(set, &s);
    is_int(s.evictions, 1, "%s: one eviction", rn);

    ok(slora_adapter_acquire(set, a[0], &err) == SLORA_OK,
       "%s: t0 again", rn);
    slora_adapters_stats(set, &s);
    ok(s.evictions == 1 && s.hits == 1,
       "%s: t1, the least recently used, was evicted; t0 was a hit", rn);

    ok(slora_adapter_acquire(set, a[1], &err) == SLORA_BUSY,
       "%s: t1: no room while t0, t2 are pinned", rn);

    slora_adapter_release(set, a[2]);
    slora_adapter_release(set, a[0]);
    slora_adapter_acquire(set, a[0], &err);
    ok(slora_adapter_acquire(set, a[1], &err) == SLORA_OK,
       "%s: t1 once t2 went idle", rn);
    slora_adapters_stats(set, &s);
    ok(s.evictions == 2 && s.hits == 2,
       "%s: t2 evicted, not t0, touched after it (%llu evictions)", rn,
       (unsigned long long) s.evictions);
    is_int(s.in_pool, 2, "%s: two in the pool", rn);
    is_int(slora_adapter_refs(a[0]), 1, "%s: t0 pinned once", rn);

    slora_adapter_release(set, a[0]);
    ok(slora_adapter_acquire(set, a[2], &err) == SLORA_OK,
       "%s: t2 comes back in place of the idle t0", rn);
    ok(s.host_bytes <= 70000 && s.in_host <= 1,
       "%s: host tier within its budget (%zu bytes, %d adapters)", rn,
       s.host_bytes, s.in_host);
    ok(s.loads >= 4, "%s: dropped host copies are read again (%llu loads)",
       rn, (unsigned long long) s.loads);
    is_int(s.pool_elems - s.pool_used_elems, 0,
           "%s: all-linear rank 8 wastes nothing on this geometry", rn);

    slora_adapter_release(set, a[2]);
    slora_adapter_release(set, a[1]);
    is_int(slora_adapters_evict(set, 40), 2, "%s: evict all idle", rn);
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 40,
           "%s: pool free again", rn);

    slora_adapters_free(set);
    slora_pool_free(pool);
    free(fb.arena);
    make_cfg(SLORA_ROPE_NEOX);
}


static int
fake_write(slora_backend_t *b, int64_t off, const float *src, int64_t n,
    slora_err_t *err)
{
    fake_backend_t  *fb = (fake_backend_t *) b;

    if (off < 0 || n < 0 || off + n > fb->n) {
        return slora_err_set(err, SLORA_ERROR, "fake: write outside");
    }

    memcpy(fb->arena + off, src, (size_t) n * sizeof(float));

    return SLORA_OK;
}


static void
write_text(const char *dir, const char *name, const char *text)
{
    char   path[600];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL) {
        BAIL_OUT("cannot write %s", path);
    }
    fputs(text, f);
    fclose(f);
}


static int
read_conf(const char *json, slora_adapter_conf_t *conf, slora_err_t *err)
{
    char  dir[512];

    snprintf(dir, sizeof(dir), "%s/conf", tmp);
    mkdir(dir, 0755);
    write_text(dir, "adapter_config.json", json);

    return slora_adapter_read_config(dir, &cfg, conf, err);
}
