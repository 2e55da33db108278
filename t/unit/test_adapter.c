/*
 * test_adapter.c: PEFT folders (config variants accepted and refused with
 * a message naming the cause, tensors of the wrong shape or module), the
 * page plan (no row straddles a page, no two rows overlap, the waste is
 * what the pages hold beyond the rows), and the tiers: the pool copy holds
 * exactly A and B^T row by row, pinned adapters are never evicted, idle
 * ones go least recently used first, the host tier keeps to its budget.
 * Files rewritten in place are read again once they settle; an image
 * read from them before is not installed beside the old pool copy.
 * Tensor-parallel slices: images and the pool copy are slice-major (slice
 * s of a row at page_start + s * (pe / N) + q / N), with N = 1 the plain
 * layout, and widths or pages N does not divide are refused.
 */

#include <stdint.h>
#include <unistd.h>
#include <sys/stat.h>

#include "tap.h"
#include "slora_adapter.h"
#include "slora_safetensors.h"
#include "tiny_config.h"
#include "fake_backend.h"


static slora_model_config_t  cfg;
static char                  tmp[256];


static void write_text(const char *dir, const char *name, const char *text);
static int read_conf(const char *json, slora_adapter_conf_t *conf,
    slora_err_t *err);
static void test_config(void);
static void test_plan(void);
static void test_bad_tensors(void);
static void test_tiers(slora_rope_e rope);
static void test_slices(void);
static void test_slices_refused(void);
static void test_warm(void);
static void test_rewritten(void);
static void test_install(void);
static void test_names(void);
static void copy_file(const char *from, const char *to);
static slora_pool_t *pool_40(const slora_pool_geom_t *g, fake_backend_t *fb);
static void add_adapters(slora_adapters_t *set, const char *prefix,
    uint64_t seed, int n, slora_adapter_t **a);
static int64_t slice_pos(const slora_adapter_plan_t *plan, int64_t row_off,
    int32_t width, int32_t j);
static int check_rows(const char *dir, const slora_adapter_plan_t *plan,
    const float *layers, int64_t layer_stride, const int64_t *row_off,
    int plain, uint8_t *mark, int64_t *n_checked);


int
main(void)
{
    char  *d, cmd[300];

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-adapter-XXXXXX");
    d = mkdtemp(tmp);
    if (d == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    tiny_config(&cfg, SLORA_ROPE_NEOX);
    test_config();
    test_plan();
    test_bad_tensors();
    test_tiers(SLORA_ROPE_NEOX);
    test_tiers(SLORA_ROPE_NORM);
    test_slices();
    test_slices_refused();
    test_warm();
    test_rewritten();
    test_install();
    test_names();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}



static void
test_config(void)
{
    int                   rc;
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

    rc = read_conf("{\"r\": 4, \"target_modules\": "
                   "\".*layers\\\\.1\\\\.self_attn\\\\.k_proj\"}", &c, &err);
    ok(rc == SLORA_OK && c.proj_mask == 1u << SLORA_PROJ_K,
       "regex target_modules of a later layer alone: %s",
       rc == SLORA_OK ? "its module" : err.msg);

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

    /* past int's range: refused before any cast (UBSan under make asan) */
    ok(read_conf("{\"r\": 7.7e73, \"target_modules\": [\"q_proj\"]}", &c,
                 &err) == SLORA_ERROR && strstr(err.msg, "\"r\"") != NULL,
       "r of 7.7e73 refused: %s", err.msg);
    ok(read_conf("{\"r\": -1e300, \"target_modules\": [\"q_proj\"]}", &c,
                 &err) == SLORA_ERROR, "r of -1e300 refused");

    ok(read_conf("{\"target_modules\": [\"q_proj\"]}", &c, &err)
       == SLORA_ERROR && strstr(err.msg, "\"r\"") != NULL,
       "missing r refused: %s", err.msg);

    /* finite as a double, inf as the float it is kept in */
    ok(read_conf("{\"r\": 8, \"lora_alpha\": 1e39, \"target_modules\": "
                 "[\"q_proj\"]}", &c, &err)
       == SLORA_ERROR && strstr(err.msg, "lora_alpha") != NULL,
       "lora_alpha of 1e39 refused: %s", err.msg);
    ok(read_conf("{\"r\": 8, \"lora_alpha\": -1e39, \"target_modules\": "
                 "[\"q_proj\"]}", &c, &err)
       == SLORA_ERROR && strstr(err.msg, "lora_alpha") != NULL,
       "lora_alpha of -1e39 refused: %s", err.msg);
    rc = read_conf("{\"r\": 1, \"lora_alpha\": 3e38, \"target_modules\": "
                   "[\"q_proj\"]}", &c, &err);
    ok(rc == SLORA_OK && isfinite(c.scale) && c.scale == c.alpha,
       "lora_alpha of 3e38, within a float: its scale %g", c.scale);

    ok(read_conf("{\"r\": 8}", &c, &err) == SLORA_ERROR
       && strstr(err.msg, "target_modules") != NULL,
       "missing target_modules refused: %s", err.msg);

    ok(read_conf("{\"r\": 8, \"target_modules\": [\"q_proj\"], "
                 "\"use_dora\": true}", &c, &err) == SLORA_ERROR
       && strstr(err.msg, "DoRA") != NULL, "DoRA refused: %s", err.msg);

    /* PEFT reads "false" and 1 as true: not a bool, not guessed */
    ok(read_conf("{\"r\": 4, \"target_modules\": [\"q_proj\"], "
                 "\"use_rslora\": \"false\"}", &c, &err) == SLORA_ERROR
       && strstr(err.msg, "use_rslora") != NULL,
       "use_rslora as a string refused: %s", err.msg);
    ok(read_conf("{\"r\": 4, \"target_modules\": [\"q_proj\"], "
                 "\"use_dora\": 1}", &c, &err) == SLORA_ERROR,
       "use_dora as a number refused");
    ok(read_conf("{\"r\": 4, \"target_modules\": [\"q_proj\"], "
                 "\"fan_in_fan_out\": \"true\"}", &c, &err) == SLORA_ERROR,
       "fan_in_fan_out as a string refused");
    ok(read_conf("{\"r\": 4, \"target_modules\": [\"q_proj\"], "
                 "\"use_rslora\": null, \"use_dora\": false, "
                 "\"fan_in_fan_out\": false}", &c, &err) == SLORA_OK
       && c.scale == 1.0f, "null and false flags taken");

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

            if (slora_adapter_plan(&cfg, &c, pe, 1, &plan, &err)
                != SLORA_OK)
            {
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
    ok(slora_adapter_plan(&cfg, &c, 100, 1, &plan, &err) == SLORA_ERROR
       && strstr(err.msg, "wider than a page") != NULL,
       "rows wider than a page refused: %s", err.msg);
}


static void
test_bad_tensors(void)
{
    int                          rc, l, side;
    char                         dir[512], path[600], name[128];
    float                        buf[8 * 128];
    int32_t                      ibuf[8 * 64];
    int64_t                      dims[2];
    slora_err_t                  err;
    slora_pool_t                *pool;
    fake_backend_t               fb;
    slora_adapter_t             *a;
    slora_adapters_t            *set;
    slora_pool_geom_t            g = { 2, 32, 64, 128, 4, 0, 1 };
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

    /* integers where weights should be */
    snprintf(dir, sizeof(dir), "%s/ints", tmp);
    mkdir(dir, 0755);
    write_text(dir, "adapter_config.json", "{\"r\": 8, \"target_modules\": "
               "[\"q_proj\"]}");
    memset(ibuf, 0, sizeof(ibuf));
    w = slora_safetensors_writer_new();
    for (l = 0; l < 2; l++) {
        for (side = 0; side < 2; side++) {
            snprintf(name, sizeof(name), "base_model.model.model.layers.%d."
                     "self_attn.q_proj.lora_%c.weight", l, side ? 'B' : 'A');
            dims[0] = side ? 64 : 8;
            dims[1] = side ? 8 : 64;
            slora_safetensors_writer_tensor(w, name, SLORA_DT_I32, 2, dims,
                                            ibuf, &err);
        }
    }
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    slora_safetensors_writer_write(w, path, &err);
    slora_safetensors_writer_free(w);

    slora_adapters_add(set, "ints", dir, &a, &err);
    ok(slora_adapter_acquire(set, a, &err) == SLORA_ERROR
       && strstr(err.msg, "dtype I32") != NULL,
       "I32 tensors refused: %s", err.msg);

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
    int                     rc, bad, p, side, l;
    uint64_t                loads, gen0;
    char                    dir[512], path[600], tname[160];
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
    slora_pool_geom_t       g = { 2, 32, 64, 128, 4, 0, 1 };
    const char             *rn;

    rn = rope == SLORA_ROPE_NORM ? "norm" : "neox";
    tiny_config(&cfg, rope);

    /* rank 8, all targets: 8192 elements a layer = 16 pages of 512 */
    pool = pool_40(&g, &fb);

    /* a host budget of about one adapter (2 layers * 16 pages * 2 KiB) */
    set = slora_adapters_create(&cfg, pool, &fb.b, 70000, &err);
    add_adapters(set, "t", 100, 4, a);

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

    /* an admin pin holds one reference however often it is asked */
    ok(slora_adapter_pin(set, a[0], &err) == SLORA_OK
       && slora_adapter_pin(set, a[0], &err) == SLORA_OK,
       "%s: t0 pinned twice", rn);
    slora_adapters_stats(set, &s);
    ok(slora_adapter_refs(a[0]) == 1 && s.pinned == 1
       && slora_adapter_pinned(a[0]),
       "%s: one reference, one pin (refs %d, pinned %d)", rn,
       slora_adapter_refs(a[0]), s.pinned);
    is_int(slora_adapter_unpin(set, a[0]), SLORA_OK, "%s: unpin t0", rn);
    is_int(slora_adapter_unpin(set, a[0]), SLORA_DECLINED,
           "%s: a second unpin is declined", rn);
    slora_adapters_stats(set, &s);
    ok(slora_adapter_refs(a[0]) == 0 && s.pinned == 0
       && slora_adapters_evict(set, 40) == 1,
       "%s: unpinned, t0 holds nothing and goes at the next eviction", rn);

    /* pins hold at most the cap's pages, half of the pool's 40 unless
     * set: one adapter of 16. A second is refused, whether its size is
     * known before it is read (t1) or only after (t3, never read) */
    ok(slora_adapter_pin(set, a[0], &err) == SLORA_OK, "%s: t0 pinned", rn);
    rc = slora_adapter_pin(set, a[1], &err);
    ok(rc == SLORA_BUSY && strstr(err.msg, "32 of the pool's 40") != NULL
       && !slora_adapter_pinned(a[1]) && slora_adapter_refs(a[1]) == 0,
       "%s: t1 over the pins' cap is busy (%s)", rn, err.msg);
    rc = slora_adapter_pin(set, a[3], &err);
    ok(rc == SLORA_BUSY && strstr(err.msg, "32 of the pool's 40") != NULL
       && !slora_adapter_pinned(a[3]) && slora_adapter_refs(a[3]) == 0,
       "%s: so is t3, read first (%s)", rn, err.msg);
    slora_adapters_stats(set, &s);
    ok(s.pinned == 1 && s.pin_pages == 16 && s.pin_cap == 20,
       "%s: one pin of 16 pages, the cap 20 (%d, %d, %d)", rn, s.pinned,
       s.pin_pages, s.pin_cap);
    slora_adapters_set_pin_cap(set, 32);
    ok(slora_adapter_pin(set, a[1], &err) == SLORA_OK,
       "%s: t1 pinned under a cap of 32: %s", rn, err.msg);
    is_int(slora_adapter_unpin(set, a[0]), SLORA_OK, "%s: t0 unpinned", rn);
    slora_adapters_set_pin_cap(set, 20);
    is_int(slora_adapter_unpin(set, a[1]), SLORA_OK, "%s: t1 unpinned", rn);
    slora_adapters_stats(set, &s);
    ok(s.pinned == 0 && s.pin_pages == 0 && slora_adapters_evict(set, 40) == 2,
       "%s: no pin, no pinned page; t0 and t1 go at the next eviction "
       "(t3, refused and idle, made room for t1)", rn);

    /* a new source while in use: the old copy serves its holder, nobody
     * new gets it, and it leaves the pool with its last user; the next
     * acquire reads the new folder */
    ok(slora_adapter_acquire(set, a[3], &err) == SLORA_OK
       && slora_adapter_acquire(set, a[0], &err) == SLORA_OK
       && slora_adapter_in_host(a[0]),
       "%s: t3 and t0 in use, t0's host copy kept", rn);
    slora_adapters_stats(set, &s);
    loads = s.loads;
    gen0 = slora_adapter_gen(a[0]);
    snprintf(dir, sizeof(dir), "%s/t3", tmp);
    ok(slora_adapters_set_source(set, a[0], dir, NULL, NULL, &err) == 1
       && slora_adapter_gen(a[0]) == gen0 + 1,
       "%s: t0 pointed at t3's folder: a new generation", rn);
    is_int(slora_adapters_set_source(set, a[0], dir, NULL, NULL, &err), 0,
           "%s: the same source again changes nothing", rn);
    rc = slora_adapter_acquire(set, a[0], &err);
    ok(rc == SLORA_BUSY && strstr(err.msg, "source changed") != NULL,
       "%s: while the old copy is held, t0 is busy (%s)", rn, err.msg);
    is_int(slora_pool_count(pool, SLORA_PAGE_ADAPTER), 32,
           "%s: the held copy stays in the pool", rn);
    slora_adapter_release(set, a[0]);
    is_int(slora_pool_count(pool, SLORA_PAGE_ADAPTER), 16,
           "%s: its last user gone, the old copy leaves the pool", rn);
    ok(slora_adapter_acquire(set, a[0], &err) == SLORA_OK,
       "%s: t0 again: %s", rn, err.msg);
    slora_adapters_stats(set, &s);
    bad = 0;

    for (l = 0; l < 2; l++) {
        for (r = 0; r < 8; r++) {
            for (j = 0; j < cfg.hidden; j++) {
                off = slora_pool_layer_offset(pool, l) + j;
                bad += fb.arena[off + slora_adapter_lora(a[0])->a_rows[0][r]]
                       != fb.arena[off
                                   + slora_adapter_lora(a[3])->a_rows[0][r]];
            }
        }
    }

    ok(bad == 0 && s.loads == loads + 1,
       "%s: read from the new folder: t0's q A rows are t3's (%d differ, "
       "%llu loads)", rn, bad, (unsigned long long) (s.loads - loads));

    /* a pinned adapter given a new source loses its pin with the copy */
    slora_adapter_release(set, a[3]);
    slora_adapter_release(set, a[0]);
    slora_adapter_pin(set, a[0], &err);
    snprintf(dir, sizeof(dir), "%s/t0", tmp);
    slora_adapters_set_source(set, a[0], dir, NULL, NULL, &err);
    slora_adapters_stats(set, &s);
    ok(s.pinned == 0 && slora_adapter_refs(a[0]) == 0
       && !slora_adapter_pinned(a[0]) && slora_adapter_n_pages(a[0]) == 0,
       "%s: a pinned t0 given a new source: unpinned and out of the pool",
       rn);
    slora_adapters_evict(set, 40);
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 40,
           "%s: pool free at the end", rn);

    slora_adapters_free(set);
    slora_pool_free(pool);
    free(fb.arena);
    tiny_config(&cfg, SLORA_ROPE_NEOX);
}


static void
test_slices(void)
{
    int                          p, ok1;
    char                         dir[512];
    uint8_t                     *mark;
    int32_t                      n, i, k, r, *phys_n;
    int64_t                      lay, checked, over, stray, bad, *phys, e, m;
    slora_err_t                  err;
    slora_pool_t                *pool;
    fake_backend_t               fb;
    slora_adapter_t             *a;
    slora_adapters_t            *set;
    const slora_lora_t          *lo;
    slora_adapter_image_t        img, img1;
    slora_pool_geom_t            g = { 2, 32, 64, 128, 4, 0, 2 };
    slora_adapter_gen_t          gen = { 8, 16, 0x7f, 77, 0.5f };
    const slora_adapter_plan_t  *plan;
    static const int32_t         slices[] = { 1, 2, 4 };

    tiny_config(&cfg, SLORA_ROPE_NEOX);
    snprintf(dir, sizeof(dir), "%s/sliced", tmp);
    if (slora_adapter_write_random(dir, &cfg, &gen, &err) != SLORA_OK) {
        BAIL_OUT("%s", err.msg);
    }

    memset(&img1, 0, sizeof(img1));

    for (i = 0; i < 3; i++) {
        n = slices[i];
        if (!ok(slora_adapter_image_load(&cfg, 512, n, NULL, "s", dir, NULL,
                                         &img, &err) == SLORA_OK,
                "%d slices: PEFT image", n))
        {
            diag("%s", err.msg);
            continue;
        }

        lay = (int64_t) img.plan.n_pages * img.plan.page_elems;
        mark = calloc((size_t) (2 * lay), 1);
        bad = check_rows(dir, &img.plan, img.host, lay, img.plan.row_off,
                         n == 1, mark, &checked);

        over = 0;
        stray = 0;
        for (e = 0; e < 2 * lay; e++) {
            over += mark[e] > 1;
            stray += mark[e] == 0 && ((const float *) img.host)[e] != 0.0f;
        }

        is_int(img.plan.slices, n, "%d slices: the plan says so", n);
        ok(bad == 0 && checked == 2 * img.plan.used_elems && over == 0
           && stray == 0, "%d slices: every element j of every row at %s "
           "(%lld checked, %lld wrong, %lld overlaps, %lld strays)", n,
           n == 1 ? "row_off + j, as before slices"
                  : "page_start + s (pe / N) + q / N + (j - s W / N)",
           (long long) checked, (long long) bad, (long long) over,
           (long long) stray);

        if (n == 1) {
            img1 = img;

        } else {
            ok1 = img.bytes == img1.bytes
                  && img.plan.n_rows == img1.plan.n_rows
                  && img.plan.n_pages == img1.plan.n_pages;
            for (k = 0; ok1 && k < img.plan.n_rows; k++) {
                ok1 = img.plan.row_off[k] == img1.plan.row_off[k];
            }
            ok(ok1, "%d slices: the same plan, bytes and pages as 1", n);
            ok(img1.host != NULL
               && memcmp(img.host, img1.host, img.bytes) != 0,
               "%d slices: but not the same image", n);
            slora_adapter_image_free(&img);
        }

        free(mark);
    }

    slora_adapter_image_free(&img1);

    /* a set over a pool of 2 slices uploads slice-major pages */
    pool = pool_40(&g, &fb);
    set = slora_adapters_create(&cfg, pool, &fb.b, 1 << 20, &err);

    /* a first one takes pages 0..15, so "sliced" lands further on */
    snprintf(dir, sizeof(dir), "%s/sliced-first", tmp);
    gen.seed = 78;
    slora_adapter_write_random(dir, &cfg, &gen, &err);
    slora_adapters_add(set, "first", dir, &a, &err);
    slora_adapter_acquire(set, a, &err);
    slora_adapter_release(set, a);
    memset(fb.arena, 0, (size_t) fb.n * sizeof(float));

    snprintf(dir, sizeof(dir), "%s/sliced", tmp);
    slora_adapters_add(set, "sliced", dir, &a, &err);

    if (!ok(slora_adapter_acquire(set, a, &err) == SLORA_OK,
            "2-slice pool: acquire"))
    {
        diag("%s", err.msg);

    } else {
        plan = slora_adapter_get_plan(a);
        lo = slora_adapter_lora(a);
        phys = malloc((size_t) plan->n_rows * sizeof(int64_t));
        phys_n = calloc((size_t) plan->n_rows, sizeof(int32_t));

        for (p = 0; p < SLORA_PROJ_N; p++) {
            for (r = 0; r < lo->rank; r++) {
                phys[plan->first_row[p][0] + r] = lo->a_rows[p][r];
                phys[plan->first_row[p][1] + r] = lo->b_rows[p][r];
                phys_n[plan->first_row[p][0] + r]++;
                phys_n[plan->first_row[p][1] + r]++;
            }
        }

        m = 0;
        for (k = 0; k < plan->n_rows; k++) {
            m += phys_n[k] == 1 && phys[k] / 512 >= 16;
        }

        lay = slora_pool_layer_offset(pool, 1);
        mark = calloc((size_t) fb.n, 1);
        bad = check_rows(dir, plan, fb.arena, lay, phys, 0, mark, &checked);

        over = 0;
        stray = 0;
        for (e = 0; e < fb.n; e++) {
            over += mark[e] > 1;
            stray += mark[e] == 0 && fb.arena[e] != 0.0f;
        }

        ok(plan->slices == 2 && m == plan->n_rows,
           "2-slice pool: the set plans for its pool's slices, rows in "
           "pages past the first adapter's");
        ok(bad == 0 && checked == 2 * plan->used_elems && over == 0
           && stray == 0, "2-slice pool: the arena holds every row "
           "slice-major at its physical offset (%lld checked, %lld wrong, "
           "%lld overlaps, %lld strays)", (long long) checked,
           (long long) bad, (long long) over, (long long) stray);

        free(mark);
        free(phys);
        free(phys_n);
        slora_adapter_release(set, a);
    }

    slora_adapters_free(set);
    slora_pool_free(pool);
    free(fb.arena);
}


static void
test_slices_refused(void)
{
    char                   dir[512];
    slora_err_t            err;
    slora_adapter_conf_t   c;
    slora_adapter_plan_t   plan;
    slora_adapter_image_t  img;

    tiny_config(&cfg, SLORA_ROPE_NEOX);
    memset(&c, 0, sizeof(c));
    c.rank = 4;
    c.proj_mask = 0x7f;

    ok(slora_adapter_plan(&cfg, &c, 512, 0, &plan, &err) == SLORA_ERROR
       && strstr(err.msg, "0 tensor-parallel slices, at least 1") != NULL,
       "0 slices refused: %s", err.msg);
    ok(slora_adapter_plan(&cfg, &c, 514, 4, &plan, &err) == SLORA_ERROR
       && strstr(err.msg, "page of 514 elements does not split in 4")
          != NULL, "a page 4 does not divide refused: %s", err.msg);

    cfg.ffn = 100;
    ok(slora_adapter_plan(&cfg, &c, 800, 8, &plan, &err) == SLORA_ERROR
       && strstr(err.msg, "gate_proj rows (64 in, 100 out) do not split in "
                 "8 tensor-parallel slices") != NULL,
       "rows of 100 in 8 slices refused: %s", err.msg);
    ok(slora_adapter_plan(&cfg, &c, 800, 4, &plan, &err) == SLORA_OK
       && plan.slices == 4, "but in 4 they split");
    slora_adapter_plan_free(&plan);
    tiny_config(&cfg, SLORA_ROPE_NEOX);

    snprintf(dir, sizeof(dir), "%s/sliced", tmp);
    ok(slora_adapter_image_load(&cfg, 576, 3, NULL, "three", dir, NULL, &img,
                                &err) == SLORA_ERROR
       && strstr(err.msg, "adapter three") != NULL
       && strstr(err.msg, "q_proj rows (64 in, 64 out) do not split in 3")
          != NULL, "a PEFT image in 3 slices refused: %s", err.msg);
    ok(img.host == NULL, "and nothing is left allocated");
}


/* Where element j of a row at row_off (of width) is, slice-major: the
 * formula of slora_pool.h, written out here on its own. */
static int64_t
slice_pos(const slora_adapter_plan_t *plan, int64_t row_off, int32_t width,
    int32_t j)
{
    int32_t  n, w, s;
    int64_t  pe, q;

    n = plan->slices;
    pe = plan->page_elems;
    q = row_off % pe;
    w = width / n;
    s = j / w;

    return row_off - q + s * (pe / n) + q / n + (j - s * w);
}


/*
 * Counts elements of the adapter in dir (its safetensors file) that are
 * not where they belong in layers (a layer every layer_stride elements):
 * at row_off[row] + j if plain, else slice_pos(). mark counts the visits
 * of every element; n_checked the elements looked at.
 */
static int
check_rows(const char *dir, const slora_adapter_plan_t *plan,
    const float *layers, int64_t layer_stride, const int64_t *row_off,
    int plain, uint8_t *mark, int64_t *n_checked)
{
    int                    p, side, bad;
    char                   path[600], tname[160];
    float                 *ref, want;
    int32_t                l, r, j, rank, in, out, width, row;
    int64_t                pos;
    slora_err_t            err;
    slora_safetensors_t   *st;
    const slora_tensor_t  *t;
    static const char     *mod[SLORA_PROJ_N] = {
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
        "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"
    };

    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    st = slora_safetensors_open(path, &err);
    if (st == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    ref = malloc((size_t) 1024 * 128 * sizeof(float));
    bad = 0;
    *n_checked = 0;

    for (l = 0; l < cfg.n_layers; l++) {
        for (p = 0; p < SLORA_PROJ_N; p++) {
            if (plan->first_row[p][0] < 0) {
                continue;
            }

            rank = plan->first_row[p][1] - plan->first_row[p][0];
            in = slora_proj_in_dim(&cfg, p);
            out = slora_proj_out_dim(&cfg, p);

            for (side = 0; side < 2; side++) {
                snprintf(tname, sizeof(tname), "base_model.model.model."
                         "layers.%d.%s.lora_%c.weight", l, mod[p],
                         side ? 'B' : 'A');
                t = slora_safetensors_find(st, tname);
                if (t == NULL || t->n_elems > 1024 * 128) {
                    BAIL_OUT("%s missing", tname);
                }
                slora_tensor_to_f32(t, ref, &err);
                width = side ? out : in;

                for (r = 0; r < rank; r++) {
                    row = plan->first_row[p][side] + r;

                    for (j = 0; j < width; j++) {
                        want = side ? ref[(size_t) j * rank + r]
                                    : ref[(size_t) r * in + j];
                        pos = plain ? row_off[row] + j
                                    : slice_pos(plan, row_off[row], width, j);
                        pos += l * layer_stride;
                        bad += layers[pos] != want;
                        mark[pos] += mark[pos] < 255;
                        (*n_checked)++;
                    }
                }
            }
        }
    }

    free(ref);
    slora_safetensors_close(st);

    return bad;
}


/*
 * Uploads ahead of need (slora_adapters_warm): only an adapter in host
 * memory only, into free pages beyond the reserve, evicting nothing; it
 * waits idle, its admission is a hit with the same rows as an upload at
 * admission, and it is evicted like any idle adapter. With a backend
 * whose writes land later (a fence), the step that first uses it, and
 * whoever gets its pages, wait for it: a fence at that hit or eviction,
 * and at every upload made at admission.
 */
static void
test_warm(void)
{
    int                     same;
    float                  *ref;
    slora_err_t             err;
    slora_pool_t           *pool;
    fake_backend_t          fb;
    slora_adapter_t        *a[3];
    slora_adapters_t       *set;
    const slora_lora_t     *lo;
    slora_adapters_stats_t  s;
    slora_pool_geom_t       g = { 2, 32, 64, 128, 4, 0, 1 };

    /* 40 pages; each adapter takes 16 */
    pool = pool_40(&g, &fb);
    fb.b.fence = fake_fence;
    set = slora_adapters_create(&cfg, pool, &fb.b, 1 << 20, &err);
    add_adapters(set, "w", 300, 3, a);

    is_int(slora_adapters_warm(set, a[0], 0, &err), SLORA_DECLINED,
           "warm: an adapter not in host memory is not read for it");

    /* w0 read and uploaded at admission, then evicted: host copy only */
    ok(slora_adapter_acquire(set, a[0], &err) == SLORA_OK, "warm: w0");
    is_int(fb.fences, 1, "warm: an upload at admission is fenced");
    lo = slora_adapter_lora(a[0]);
    ref = malloc((size_t) 8 * 64 * sizeof(float));
    memcpy(ref, fb.arena + slora_pool_layer_offset(pool, 1)
                + lo->a_rows[SLORA_PROJ_V][0], 64 * sizeof(float));
    slora_adapter_release(set, a[0]);
    is_int(slora_adapters_evict(set, 40), 1, "warm: w0 evicted");
    memset(fb.arena, 0, (size_t) fb.n * sizeof(float));

    is_int(slora_adapters_warm(set, a[0], 25, &err), SLORA_DECLINED,
           "warm: not into the reserve (16 pages + 25 > 40 free)");
    is_int(slora_adapters_warm(set, a[0], 24, &err), SLORA_OK,
           "warm: w0 from its host copy, 24 pages kept free");
    slora_adapters_stats(set, &s);
    ok(slora_adapter_tier(a[0]) == SLORA_TIER_POOL
       && slora_adapter_refs(a[0]) == 0 && s.warmed == 1 && s.uploads == 2
       && s.loads == 1 && fb.fences == 1,
       "warm: resident and idle, one more upload, no disk read, no fence");
    is_int(slora_adapters_warm(set, a[0], 0, &err), SLORA_DECLINED,
           "warm: not twice");

    ok(slora_adapter_acquire(set, a[0], &err) == SLORA_OK, "warm: admitted");
    slora_adapters_stats(set, &s);
    lo = slora_adapter_lora(a[0]);
    same = memcmp(ref, fb.arena + slora_pool_layer_offset(pool, 1)
                       + lo->a_rows[SLORA_PROJ_V][0], 64 * sizeof(float))
           == 0;
    ok(s.hits == 1 && s.uploads == 2 && fb.fences == 2 && same,
       "warm: the admission is a hit, fenced once, the same rows");
    ok(slora_adapter_acquire(set, a[0], &err) == SLORA_OK
       && fb.fences == 2, "warm: a second holder needs no fence");
    slora_adapter_release(set, a[0]);
    slora_adapter_release(set, a[0]);

    /* w1 warmed, then evicted unused: its pages wait for the copy */
    ok(slora_adapter_acquire(set, a[1], &err) == SLORA_OK, "warm: w1");
    slora_adapter_release(set, a[1]);
    slora_adapters_evict(set, 40);
    fb.fences = 0;
    ok(slora_adapters_warm(set, a[1], 0, &err) == SLORA_OK
       && fb.fences == 0, "warm: w1 uploaded ahead, no fence");
    is_int(slora_adapters_evict(set, 40), 1, "warm: w1 evicted unused");
    is_int(fb.fences, 1, "warm: its eviction is fenced");
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 40, "warm: pool free");

    /* a full pool evicts nothing for a warm */
    ok(slora_adapter_acquire(set, a[2], &err) == SLORA_OK
       && slora_adapter_acquire(set, a[0], &err) == SLORA_OK,
       "warm: w2 and w0 held");
    is_int(slora_adapters_warm(set, a[1], 0, &err), SLORA_DECLINED,
           "warm: 8 free pages: none for w1");
    slora_adapter_release(set, a[2]);
    slora_adapter_release(set, a[0]);

    free(ref);
    slora_adapters_free(set);
    slora_pool_free(pool);
    free(fb.arena);
}


/*
 * Files rewritten in place (the folder's name, mtime and the files' names
 * as they were): nothing changes while they are younger than a second (a
 * writer may be half way), then the copies go as for a new source, the
 * pool copy with its last holder, and the next acquire reads the new
 * weights; a random adapter has no files to look at.
 */
static void
test_rewritten(void)
{
    int                     same;
    char                    from[600], to[600];
    uint64_t                gen0, loads;
    struct stat             before, after;
    slora_err_t             err;
    slora_pool_t           *pool;
    fake_backend_t          fb;
    slora_adapter_t        *a[2], *r;
    slora_adapters_t       *set;
    const slora_lora_t     *lo;
    slora_adapters_stats_t  s;
    slora_pool_geom_t       g = { 2, 32, 64, 128, 4, 0, 1 };

    pool = pool_40(&g, &fb);
    set = slora_adapters_create(&cfg, pool, &fb.b, 1 << 20, &err);
    add_adapters(set, "rw", 400, 2, a);

    ok(slora_adapter_acquire(set, a[0], &err) == SLORA_OK
       && slora_adapter_acquire(set, a[1], &err) == SLORA_OK,
       "rewritten: rw0 and rw1 in use");
    is_int(slora_adapters_check_files(set, a[0]), 0,
           "rewritten: files as read: nothing to do");

    /* rw1's weights written over rw0's, the file kept (fopen "w") */
    snprintf(from, sizeof(from), "%s/rw1/adapter_model.safetensors", tmp);
    snprintf(to, sizeof(to), "%s/rw0/adapter_model.safetensors", tmp);
    stat(to, &before);
    copy_file(from, to);
    stat(to, &after);
    ok(before.st_ino == after.st_ino, "rewritten: the same file, in place");

    gen0 = slora_adapter_gen(a[0]);
    ok(slora_adapters_check_files(set, a[0]) == 0
       && slora_adapter_gen(a[0]) == gen0
       && slora_adapter_tier(a[0]) == SLORA_TIER_POOL,
       "rewritten: within a second of the write, the copies stay");

    usleep(1100000);
    ok(slora_adapters_check_files(set, a[0]) == 1
       && slora_adapter_gen(a[0]) == gen0 + 1,
       "rewritten: a second later, a new generation");
    ok(slora_adapter_acquire(set, a[0], &err) == SLORA_BUSY,
       "rewritten: the held copy is not acquired again (%s)", err.msg);
    is_int(slora_adapters_check_files(set, a[0]), 0,
           "rewritten: once stale, not again");
    slora_adapter_release(set, a[0]);
    ok(slora_adapter_tier(a[0]) == SLORA_TIER_DISK,
       "rewritten: its last holder gone, no copy left");

    slora_adapters_stats(set, &s);
    loads = s.loads;
    if (!ok(slora_adapter_acquire(set, a[0], &err) == SLORA_OK,
            "rewritten: rw0 acquired again"))
    {
        diag("%s", err.msg);
    }
    slora_adapters_stats(set, &s);
    is_int((int) (s.loads - loads), 1, "rewritten: read from disk again");
    lo = slora_adapter_lora(a[0]);
    same = memcmp(fb.arena + slora_pool_layer_offset(pool, 1)
                  + lo->a_rows[SLORA_PROJ_V][0],
                  fb.arena + slora_pool_layer_offset(pool, 1)
                  + slora_adapter_lora(a[1])->a_rows[SLORA_PROJ_V][0],
                  64 * sizeof(float))
           == 0;
    ok(same, "rewritten: rw0's v A rows now rw1's");
    is_int(slora_adapters_check_files(set, a[0]), 0,
           "rewritten: the new files are its own now");
    slora_adapter_release(set, a[0]);
    slora_adapter_release(set, a[1]);

    slora_adapters_add(set, "rnd", "random:rank=8,targets=q+v,seed=5", &r,
                       &err);
    ok(slora_adapter_acquire(set, r, &err) == SLORA_OK
       && slora_adapters_check_files(set, r) == 0,
       "rewritten: a random adapter has no files to look at");
    slora_adapter_release(set, r);

    slora_adapters_free(set);
    slora_pool_free(pool);
    free(fb.arena);
}


/*
 * install() beside a pool copy, the host copy gone (a host budget of one
 * byte): an image of the files the pool copy came from becomes its host
 * copy; one of files rewritten in place since, not yet settled (q and v
 * become o and v at the same rank: as many pages and rows, in other
 * projections), is declined and the pool copy kept, since the host copy
 * is what the pool copy is uploaded from again.
 */
static void
test_install(void)
{
    int                     i;
    char                    dir[2][512], ov_dir[512], name[32];
    char                    from[600], to[600];
    slora_err_t             err;
    slora_pool_t           *pool;
    fake_backend_t          fb;
    slora_adapter_t        *a[2];
    slora_adapters_t       *set;
    slora_pool_geom_t       g = { 2, 32, 64, 128, 4, 0, 1 };
    slora_adapter_image_t   img;
    slora_adapter_gen_t     qv = { 8, 16, 0, 21, 0.5f };
    slora_adapter_gen_t     ov = { 8, 16, 0, 22, 0.5f };
    static const char      *files[2] = {
        "adapter_config.json", "adapter_model.safetensors"
    };

    qv.proj_mask = (1u << SLORA_PROJ_Q) | (1u << SLORA_PROJ_V);
    ov.proj_mask = (1u << SLORA_PROJ_O) | (1u << SLORA_PROJ_V);

    pool = pool_40(&g, &fb);
    set = slora_adapters_create(&cfg, pool, &fb.b, 1, &err);

    for (i = 0; i < 2; i++) {
        snprintf(dir[i], sizeof(dir[i]), "%s/inst%d", tmp, i);
        snprintf(name, sizeof(name), "inst%d", i);
        if (slora_adapter_write_random(dir[i], &cfg, &qv, &err) != SLORA_OK
            || slora_adapters_add(set, name, dir[i], &a[i], &err)
               != SLORA_OK
            || slora_adapter_acquire(set, a[i], &err) != SLORA_OK)
        {
            BAIL_OUT("install: %s", err.msg);
        }
        slora_adapter_release(set, a[i]);
    }

    ok(!slora_adapter_in_host(a[0]) && !slora_adapter_in_host(a[1])
       && slora_adapter_tier(a[0]) == SLORA_TIER_POOL
       && slora_adapter_tier(a[1]) == SLORA_TIER_POOL,
       "install: both in the pool, neither in host memory");

    snprintf(ov_dir, sizeof(ov_dir), "%s/inst-ov", tmp);
    slora_adapter_write_random(ov_dir, &cfg, &ov, &err);
    for (i = 0; i < 2; i++) {
        snprintf(from, sizeof(from), "%s/%s", ov_dir, files[i]);
        snprintf(to, sizeof(to), "%s/%s", dir[1], files[i]);
        copy_file(from, to);
    }

    ok(slora_adapter_image_load(&cfg, slora_pool_page_elems(pool), 1, NULL,
                                "inst0", dir[0], NULL, &img, &err)
       == SLORA_OK
       && slora_adapters_install(set, a[0], slora_adapter_gen(a[0]), &img)
          == SLORA_OK
       && slora_adapter_in_host(a[0]),
       "install: the pool copy's own files: the image is its host copy");

    if (!ok(slora_adapter_image_load(&cfg, slora_pool_page_elems(pool), 1,
                                     NULL, "inst1", dir[1], NULL, &img, &err)
            == SLORA_OK, "install: the rewritten folder reads"))
    {
        diag("%s", err.msg);

    } else {
        ok(img.plan.n_pages == slora_adapter_get_plan(a[1])->n_pages
           && img.plan.n_rows == slora_adapter_get_plan(a[1])->n_rows,
           "install: o and v take the pages and rows q and v took");
        is_int(slora_adapters_install(set, a[1], slora_adapter_gen(a[1]),
                                      &img),
               SLORA_DECLINED, "install: rewritten in place: declined");
        ok(!slora_adapter_in_host(a[1])
           && slora_adapter_tier(a[1]) == SLORA_TIER_POOL
           && slora_adapter_lora(a[1])->proj_mask == qv.proj_mask,
           "install: the pool copy stays as it was read, q and v");
        slora_adapter_image_free(&img);
    }

    slora_adapters_free(set);
    slora_pool_free(pool);
    free(fb.arena);
}


/* A pool of 40 pages of g over fb's arena (f32, written by fake_write). */
static slora_pool_t *
pool_40(const slora_pool_geom_t *g, fake_backend_t *fb)
{
    slora_err_t    err;
    slora_pool_t  *pool;

    memset(fb, 0, sizeof(*fb));
    fb->b.write_arena = fake_write;
    pool = slora_pool_create(g, (size_t) 40 * 2 * 512 * 4, &err);
    fb->n = (int64_t) 40 * 2 * 512;
    fb->arena = calloc((size_t) fb->n, sizeof(float));

    if (pool == NULL || fb->arena == NULL) {
        BAIL_OUT("pool: %s", err.msg);
    }

    return pool;
}


/* n adapters PREFIX0, PREFIX1, ... (rank 8, every target, seeds seed,
 * seed + 1, ...) written under tmp and registered in set as a[0..n). */
static void
add_adapters(slora_adapters_t *set, const char *prefix, uint64_t seed,
    int n, slora_adapter_t **a)
{
    int                   i;
    char                  dir[512], name[32];
    slora_err_t           err;
    slora_adapter_gen_t   gen = { 8, 16, 0x7f, 1, 0.5f };

    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "%s%d", prefix, i);
        snprintf(dir, sizeof(dir), "%s/%s", tmp, name);
        gen.seed = seed + (uint64_t) i;

        if (slora_adapter_write_random(dir, &cfg, &gen, &err) != SLORA_OK
            || slora_adapters_add(set, name, dir, &a[i], &err) != SLORA_OK)
        {
            BAIL_OUT("%s", err.msg);
        }
    }
}


static void
copy_file(const char *from, const char *to)
{
    char     buf[65536];
    FILE    *in, *out;
    size_t   n;

    in = fopen(from, "rb");
    out = fopen(to, "wb");
    if (in == NULL || out == NULL) {
        BAIL_OUT("cannot copy %s to %s", from, to);
    }

    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
        if (fwrite(buf, 1, n, out) != n) {
            BAIL_OUT("cannot write %s", to);
        }
    }

    fclose(in);
    fclose(out);
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


/*
 * The set's name index over many adapters: 5000 registered (the index
 * starts at 64 names and is built again, larger, six times on the way),
 * each found as itself afterwards, an unknown name not found, a name
 * registered again declined after the growth as before it.
 */
static void
test_names(void)
{
    int                 i, bad;
    char                name[32];
    slora_err_t         err;
    slora_pool_t       *pool;
    fake_backend_t      fb;
    slora_adapter_t    *a, *first;
    slora_adapters_t   *set;
    slora_pool_geom_t   g = { 2, 32, 64, 128, 4, 0, 1 };

    memset(&fb, 0, sizeof(fb));
    fb.b.write_arena = fake_write;
    pool = slora_pool_create(&g, (size_t) 4 * 2 * 512 * 4, &err);
    set = slora_adapters_create(&cfg, pool, &fb.b, 1 << 20, &err);

    bad = 0;
    first = NULL;

    for (i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "tenant-%d", i);

        if (slora_adapters_add(set, name, tmp, &a, &err) != SLORA_OK) {
            bad++;
        }

        if (i == 0) {
            first = a;
            is_int(slora_adapters_add(set, "tenant-0", tmp, NULL, &err),
                   SLORA_DECLINED, "a second tenant-0 declined, before the "
                   "index grows");
        }
    }

    is_int(bad, 0, "5000 names registered");
    is_int(slora_adapters_count(set), 5000, "... and counted");

    bad = 0;
    for (i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "tenant-%d", i);
        a = slora_adapters_find(set, name);
        bad += a == NULL || strcmp(slora_adapter_name(a), name) != 0
               || a != slora_adapters_get(set, i);
    }

    is_int(bad, 0, "each found as itself, at its place in the set");
    ok(slora_adapters_find(set, "tenant-0") == first,
       "tenant-0 is still the first one registered");
    ok(slora_adapters_find(set, "tenant-5000") == NULL
       && slora_adapters_find(set, "tenant-") == NULL
       && slora_adapters_find(set, "") == NULL,
       "names never registered are not found");
    is_int(slora_adapters_add(set, "tenant-4321", tmp, NULL, &err),
           SLORA_DECLINED, "a name registered again is declined after the "
           "growth: %s", err.msg);
    is_int(slora_adapters_count(set), 5000, "... and not counted");

    slora_adapters_free(set);
    slora_pool_free(pool);
}
