/*
 * slora_adapter_peft.c: reads a Hugging Face PEFT LoRA folder
 * (adapter_config.json and adapter_model.safetensors), checks it against
 * the model (target modules, tensor names and shapes, finite values, the
 * catalog's sha256) and lays it out as the host tier's f32 page images;
 * also writes random PEFT folders for tests and benchmarks.
 *
 * The one idea: the folder is untrusted input and this file is its only
 * parser (slora_adapter_file.c reads its files). Everything PEFT can say
 * that we cannot apply exactly (DoRA, fan_in_fan_out, bias,
 * modules_to_save, per-module ranks) is refused with an error naming the
 * file, and what is accepted comes out already in the page plan's row
 * layout (A rows, B^T rows, q/k rows permuted for rope), so the tiers in
 * slora_adapter.c only ever copy whole pages.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "slora_adapter.h"
#include "slora_safetensors.h"
#include "slora_sampler.h"
#include "slora_utf8.h"


#define SLORA_ADAPTER_CONFIG_MAX  (1 << 20)
#define SLORA_ADAPTER_HEADER_MAX  (16 << 20)
#define SLORA_ADAPTER_REGEX_LAYERS  256     /* a regex target_modules is
                                               tried on, without a model */


static const char  *slora_adapter_proj_path[SLORA_PROJ_N] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
    "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"
};


static int slora_adapter_config_at(int *dfd, const char *dir,
    const slora_model_config_t *cfg, slora_adapter_conf_t *conf,
    slora_err_t *err);
static int slora_adapter_flag_ok(const cJSON *root, const char *key);
static int slora_adapter_proj_by_name(const char *s, size_t len);
static int slora_adapter_targets(const char *path, const cJSON *t,
    int32_t n_layers, uint32_t *mask, slora_err_t *err);
static int slora_adapter_targets_regex(const char *path, const char *re,
    int32_t n_layers, uint32_t *mask, slora_err_t *err);
static int slora_adapter_parse_name(const char *name, int32_t *layer,
    int *proj, int *is_b);
static int slora_adapter_fill(const slora_model_config_t *cfg,
    slora_adapter_image_t *img, const slora_tensor_t *t, int32_t layer,
    int proj, int is_b, float *tmp, float *row_buf, slora_err_t *err);
static int slora_adapter_scan(const slora_model_config_t *cfg,
    slora_adapter_conf_t *conf, const slora_safetensors_t *st,
    const char *path, slora_err_t *err);
static size_t slora_adapter_weights_max(const slora_model_config_t *cfg,
    const slora_adapter_conf_t *conf);
static int slora_adapter_write_config(const char *dir,
    const slora_adapter_gen_t *gen, slora_err_t *err);


int
slora_adapter_read_config(const char *dir, const slora_model_config_t *cfg,
    slora_adapter_conf_t *conf, slora_err_t *err)
{
    int  dfd, rc;

    if (slora_adapter_is_random(dir)) {
        return slora_adapter_random_config(dir, conf, err);
    }

    dfd = -1;
    rc = slora_adapter_config_at(&dfd, dir, cfg, conf, err);

    if (dfd != -1) {
        close(dfd);
    }

    return rc;
}


/* read_config with the folder *dfd (slora_adapter_file_read()). */
static int
slora_adapter_config_at(int *dfd, const char *dir,
    const slora_model_config_t *cfg, slora_adapter_conf_t *conf,
    slora_err_t *err)
{
    int           rc;
    char          path[SLORA_ADAPTER_PATH_LEN];
    size_t        len;
    cJSON        *root, *v;
    uint8_t      *text;
    const char   *why;

    snprintf(path, sizeof(path), "%s/adapter_config.json", dir);

    if (slora_adapter_file_read(dfd, dir, "adapter_config.json",
                                SLORA_ADAPTER_CONFIG_MAX, &text, &len, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    root = cJSON_ParseWithLength((const char *) text, len);
    free(text);

    if (root == NULL || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return slora_err_set(err, SLORA_ERROR, "%s: not a JSON object",
                             path);
    }

    memset(conf, 0, sizeof(*conf));
    rc = SLORA_ERROR;
    why = NULL;

    v = cJSON_GetObjectItemCaseSensitive(root, "peft_type");
    if (v != NULL && (!cJSON_IsString(v)
                      || strcmp(v->valuestring, "LORA") != 0))
    {
        why = "peft_type is not \"LORA\"";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "r");
    /* the range first: a cast of a double past int's range is undefined */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 1
                                && v->valuedouble <= SLORA_ADAPTER_MAX_RANK)
        || v->valuedouble != floor(v->valuedouble))
    {
        slora_err_set(err, SLORA_ERROR, "%s: \"r\" must be an integer in "
                      "1..%d", path, SLORA_ADAPTER_MAX_RANK);
        goto failed;
    }
    conf->rank = (int32_t) v->valuedouble;

    v = cJSON_GetObjectItemCaseSensitive(root, "lora_alpha");
    if (v == NULL) {
        conf->alpha = (float) conf->rank;

    } else if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        why = "\"lora_alpha\" is not a number";
        goto done;

    } else {
        conf->alpha = (float) v->valuedouble;
    }

    /* PEFT takes any truthy value for its flags ("false", 1): only a
     * JSON bool or null reads the same here and there */
    if (!slora_adapter_flag_ok(root, "use_rslora")
        || !slora_adapter_flag_ok(root, "use_dora")
        || !slora_adapter_flag_ok(root, "fan_in_fan_out"))
    {
        why = "\"use_rslora\", \"use_dora\" and \"fan_in_fan_out\" must "
              "each be true, false or null";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "use_rslora");
    conf->rslora = cJSON_IsTrue(v);
    conf->scale = conf->rslora ? conf->alpha / sqrtf((float) conf->rank)
                               : conf->alpha / (float) conf->rank;

    /* a finite double past float's range is inf as a float (IEEE), and
     * so would be every output of the adapter */
    if (!isfinite(conf->alpha) || !isfinite(conf->scale)) {
        why = "\"lora_alpha\" does not fit a float: its scale is not "
              "finite";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "use_dora");
    if (cJSON_IsTrue(v)) {
        why = "DoRA adapters (use_dora) are not supported";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "fan_in_fan_out");
    if (cJSON_IsTrue(v)) {
        why = "fan_in_fan_out adapters are not supported";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "bias");
    if (v != NULL && !cJSON_IsNull(v)
        && (!cJSON_IsString(v) || strcmp(v->valuestring, "none") != 0))
    {
        why = "\"bias\" other than \"none\" is not supported";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "modules_to_save");
    if (v != NULL && !cJSON_IsNull(v)
        && !(cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0))
    {
        why = "\"modules_to_save\" (fully trained modules) is not supported";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "rank_pattern");
    if (v != NULL && !cJSON_IsNull(v) && cJSON_GetArraySize(v) != 0) {
        why = "\"rank_pattern\" (per-module ranks) is not supported";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "alpha_pattern");
    if (v != NULL && !cJSON_IsNull(v) && cJSON_GetArraySize(v) != 0) {
        why = "\"alpha_pattern\" (per-module alphas) is not supported";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "target_modules");
    if (slora_adapter_targets(path, v,
                              cfg != NULL ? cfg->n_layers
                                          : SLORA_ADAPTER_REGEX_LAYERS,
                              &conf->proj_mask, err)
        != SLORA_OK)
    {
        goto failed;
    }

    if (cfg != NULL && cfg->n_heads * cfg->head_dim <= 0) {
        why = "the model's configuration is incomplete";
        goto done;
    }

    rc = SLORA_OK;

done:

    if (why != NULL) {
        slora_err_set(err, SLORA_ERROR, "%s: %s", path, why);
    }

failed:

    cJSON_Delete(root);
    return rc;
}


int
slora_adapter_image_load(const slora_model_config_t *cfg, int64_t page_elems,
    int32_t slices, const slora_host_mem_t *mem, const char *name,
    const char *dir, const char *sha256, slora_adapter_image_t *img,
    slora_err_t *err)
{
    int                    proj, is_b, rc, dfd;
    char                   path[SLORA_ADAPTER_PATH_LEN], hex[SLORA_SHA256_HEX];
    float                 *tmp;
    size_t                 tmp_elems, len, max;
    uint8_t               *data;
    int32_t                layer, max_width;
    int64_t                i, n;
    slora_safetensors_t   *st;
    const slora_tensor_t  *t;

    if (slora_adapter_is_random(dir)) {
        return slora_adapter_image_random(cfg, page_elems, slices, mem,
                                          name, dir, img, err);
    }

    memset(img, 0, sizeof(*img));
    img->mem = mem;

    /* before the read: a rewrite during it differs from the stamp */
    slora_adapter_stamp(dir, &img->stamp);

    /* the folder opened once, both files read relative to it */
    dfd = -1;

    if (slora_adapter_config_at(&dfd, dir, cfg, &img->conf, err)
        != SLORA_OK)
    {
        if (dfd != -1) {
            close(dfd);
        }
        return slora_err_prefix(err, "adapter %s", name);
    }

    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);

    /* read once: the pin and the parse see the same bytes, and a file
     * cut short meanwhile cannot fault a mapping */
    max = slora_adapter_weights_max(cfg, &img->conf);
    rc = slora_adapter_file_read(&dfd, dir, "adapter_model.safetensors", max,
                                 &data, &len, err);
    close(dfd);

    if (rc != SLORA_OK) {
        return slora_err_prefix(err, "adapter %s", name);
    }

    if (sha256 != NULL && sha256[0] != '\0') {
        if (slora_sha256_buf(data, len, hex) != SLORA_OK) {
            free(data);
            return slora_err_set(err, SLORA_ERROR, "%s: sha256 failed",
                                 path);
        }

        if (strcasecmp(hex, sha256) != 0) {
            free(data);
            return slora_err_set(err, SLORA_ERROR, "%s: sha256 is %s, the "
                                 "catalog says %.*s: refused", path, hex,
                                 slora_utf8_cut(sha256, 64), sha256);
        }
    }

    st = slora_safetensors_open_mem(data, len, path, err);
    if (st == NULL) {
        free(data);
        return SLORA_ERROR;
    }

    tmp = NULL;
    rc = SLORA_ERROR;

    /* every tensor checked, and the plan made for those there are,
     * before the image is allocated: its size is theirs */
    if (slora_adapter_scan(cfg, &img->conf, st, path, err) != SLORA_OK) {
        goto done;
    }

    if (slora_adapter_plan(cfg, &img->conf, page_elems, slices, &img->plan,
                           err)
        != SLORA_OK)
    {
        slora_err_prefix(err, "adapter %s", name);
        goto done;
    }

    (void) slora_adapter_image_alloc(img, cfg->n_layers, mem);

    /* a tensor [rank, width] or [width, rank], then one row of it */
    max_width = 0;
    for (i = 0; i < img->plan.n_rows; i++) {
        if (img->plan.row_width[i] > max_width) {
            max_width = img->plan.row_width[i];
        }
    }
    tmp_elems = ((size_t) img->conf.rank + 1) * (size_t) max_width;
    tmp = malloc(tmp_elems * sizeof(float));

    if (img->host == NULL || tmp == NULL) {
        slora_err_set(err, SLORA_ERROR, "%s: no memory for %zu bytes", path,
                      img->bytes);
        goto done;
    }

    n = slora_safetensors_n_tensors(st);

    for (i = 0; i < n; i++) {
        t = slora_safetensors_tensor(st, i);

        /* as the scan found it */
        (void) slora_adapter_parse_name(t->name, &layer, &proj, &is_b);

        if (slora_adapter_fill(cfg, img, t, layer, proj, is_b, tmp,
                               tmp + tmp_elems - (size_t) max_width, err)
            != SLORA_OK)
        {
            slora_err_prefix(err, "%s", path);
            goto done;
        }
    }

    rc = SLORA_OK;

done:

    slora_safetensors_close(st);
    free(data);
    free(tmp);

    if (rc != SLORA_OK) {
        slora_adapter_image_free(img);
    }

    return rc;
}


/*
 * The first pass over the tensors of path, before anything is sized by
 * them: each a LoRA weight (parse_name) of a layer the model has and of
 * a module in target_modules, given once, of the shape the model and r
 * give and a float dtype (F32, F16, BF16); A and B in pairs, at least
 * one pair; their bytes within the file's data (the format lets ranges
 * alias, so that a small file could stand for a large adapter).
 * conf->proj_mask becomes the modules with weights: only they take rows
 * in the plan.
 */
static int
slora_adapter_scan(const slora_model_config_t *cfg,
    slora_adapter_conf_t *conf, const slora_safetensors_t *st,
    const char *path, slora_err_t *err)
{
    int                    proj, is_b, rc;
    size_t                 bytes;
    uint8_t               *seen;
    int32_t                layer, n_layers, want0, want1;
    int64_t                i, n;
    uint32_t               mask;
    const slora_tensor_t  *t;

    n_layers = cfg->n_layers;

    seen = calloc((size_t) n_layers * SLORA_PROJ_N * 2, 1);
    if (seen == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: no memory", path);
    }

    rc = SLORA_ERROR;
    bytes = 0;
    n = slora_safetensors_n_tensors(st);

    for (i = 0; i < n; i++) {
        t = slora_safetensors_tensor(st, i);

        if (slora_adapter_parse_name(t->name, &layer, &proj, &is_b)
            != SLORA_OK)
        {
            slora_err_set(err, SLORA_ERROR, "%s: tensor %s is not a LoRA "
                          "weight of a module we can apply (q, k, v, o, "
                          "gate, up, down projections)", path, t->name);
            goto done;
        }

        if (layer >= n_layers) {
            slora_err_set(err, SLORA_ERROR, "%s: tensor %s: layer %d, the "
                          "model has %d", path, t->name, layer, n_layers);
            goto done;
        }

        if (!(conf->proj_mask & (1u << proj))) {
            slora_err_set(err, SLORA_ERROR, "%s: tensor %s: %s is not in "
                          "target_modules", path, t->name,
                          slora_proj_name(proj));
            goto done;
        }

        if (seen[(layer * SLORA_PROJ_N + proj) * 2 + is_b]++) {
            slora_err_set(err, SLORA_ERROR, "%s: tensor %s given twice",
                          path, t->name);
            goto done;
        }

        want0 = is_b ? slora_proj_out_dim(cfg, proj) : conf->rank;
        want1 = is_b ? conf->rank : slora_proj_in_dim(cfg, proj);

        if (t->n_dims != 2 || t->dims[0] != want0 || t->dims[1] != want1) {
            slora_err_set(err, SLORA_ERROR, "%s: tensor %s: shape [%lld, "
                          "%lld], the model and r=%d want [%d, %d]", path,
                          t->name, (long long) t->dims[0],
                          (long long) (t->n_dims > 1 ? t->dims[1] : 0),
                          conf->rank, want0, want1);
            goto done;
        }

        /* as the model's weights: no integer (I32) read as a float */
        if (t->dtype != SLORA_DT_F32 && t->dtype != SLORA_DT_F16
            && t->dtype != SLORA_DT_BF16)
        {
            slora_err_set(err, SLORA_ERROR, "%s: tensor %s: dtype %s, LoRA "
                          "weights are F32, F16 or BF16", path, t->name,
                          slora_dtype_name(t->dtype));
            goto done;
        }

        bytes += t->n_bytes;
    }

    mask = 0;
    n = 0;

    for (i = 0; i < (int64_t) n_layers * SLORA_PROJ_N; i++) {
        if (seen[2 * i] != seen[2 * i + 1]) {
            slora_err_set(err, SLORA_ERROR, "%s: layer %d %s has lora_%c "
                          "without lora_%c", path, (int) (i / SLORA_PROJ_N),
                          slora_proj_name((int) (i % SLORA_PROJ_N)),
                          seen[2 * i] ? 'A' : 'B', seen[2 * i] ? 'B' : 'A');
            goto done;
        }

        if (seen[2 * i]) {
            mask |= 1u << (i % SLORA_PROJ_N);
            n++;
        }
    }

    if (n == 0) {
        slora_err_set(err, SLORA_ERROR, "%s: no LoRA weights", path);
        goto done;
    }

    if (bytes > slora_safetensors_data_size(st)) {
        slora_err_set(err, SLORA_ERROR, "%s: its tensors take %zu bytes, "
                      "the file holds %zu: their ranges overlap", path,
                      bytes, slora_safetensors_data_size(st));
        goto done;
    }

    conf->proj_mask = mask;
    rc = SLORA_OK;

done:

    free(seen);

    return rc;
}


/*
 * The most bytes adapter_model.safetensors may hold: every tensor the
 * config and the model shape, in f32 (the widest dtype we convert), and
 * a header of SLORA_ADAPTER_HEADER_MAX.
 */
static size_t
slora_adapter_weights_max(const slora_model_config_t *cfg,
    const slora_adapter_conf_t *conf)
{
    int     p;
    size_t  elems;

    elems = 0;
    for (p = 0; p < SLORA_PROJ_N; p++) {
        if (conf->proj_mask & (1u << p)) {
            elems += (size_t) slora_proj_in_dim(cfg, p)
                     + (size_t) slora_proj_out_dim(cfg, p);
        }
    }

    return elems * (size_t) conf->rank * (size_t) cfg->n_layers
           * sizeof(float) + SLORA_ADAPTER_HEADER_MAX;
}


void
slora_adapter_stamp(const char *dir, slora_adapter_stamp_t *stamp)
{
    int                   i;
    char                  path[SLORA_ADAPTER_PATH_LEN];
    struct stat           sb;
    slora_file_stamp_t   *fs;
    static const char    *file[2] = {
        "adapter_config.json", "adapter_model.safetensors"
    };

    memset(stamp, 0, sizeof(*stamp));
    stamp->valid = 1;

    for (i = 0; i < 2; i++) {
        fs = i == 0 ? &stamp->config : &stamp->weights;
        snprintf(path, sizeof(path), "%s/%s", dir, file[i]);

        if (stat(path, &sb) != 0) {
            continue;
        }

        fs->dev = (uint64_t) sb.st_dev;
        fs->ino = (uint64_t) sb.st_ino;
        fs->size = (int64_t) sb.st_size;
        fs->mtime_ns = (int64_t) sb.st_mtim.tv_sec * 1000000000
                       + sb.st_mtim.tv_nsec;
        fs->ctime_ns = (int64_t) sb.st_ctim.tv_sec * 1000000000
                       + sb.st_ctim.tv_nsec;
    }
}


int
slora_adapter_stamp_same(const slora_adapter_stamp_t *a,
    const slora_adapter_stamp_t *b)
{
    int                        i;
    const slora_file_stamp_t  *x, *y;

    if (a->valid != b->valid) {
        return 0;
    }

    for (i = 0; i < 2; i++) {
        x = i == 0 ? &a->config : &a->weights;
        y = i == 0 ? &b->config : &b->weights;

        if (x->dev != y->dev || x->ino != y->ino || x->size != y->size
            || x->mtime_ns != y->mtime_ns || x->ctime_ns != y->ctime_ns)
        {
            return 0;
        }
    }

    return 1;
}


void
slora_adapter_image_free(slora_adapter_image_t *img)
{
    slora_host_free(img->mem, img->host, img->bytes);
    img->host = NULL;
    slora_adapter_plan_free(&img->plan);
}


/* A flag of adapter_config.json: absent, null, true or false. */
static int
slora_adapter_flag_ok(const cJSON *root, const char *key)
{
    const cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(root, key);

    return v == NULL || cJSON_IsNull(v) || cJSON_IsBool(v);
}


static int
slora_adapter_proj_by_name(const char *s, size_t len)
{
    int          p;
    const char  *name;

    for (p = 0; p < SLORA_PROJ_N; p++) {
        name = slora_proj_name(p);
        if (strlen(name) == len && memcmp(name, s, len) == 0) {
            return p;
        }
    }

    return -1;
}


static int
slora_adapter_targets(const char *path, const cJSON *t, int32_t n_layers,
    uint32_t *mask, slora_err_t *err)
{
    int           p;
    size_t        len;
    const char   *s, *dot;
    const cJSON  *item;

    *mask = 0;

    if (cJSON_IsString(t)) {
        if (strcmp(t->valuestring, "all-linear") == 0) {
            *mask = (1u << SLORA_PROJ_N) - 1;
            return SLORA_OK;
        }

        p = slora_adapter_proj_by_name(t->valuestring,
                                       strlen(t->valuestring));
        if (p >= 0) {
            *mask = 1u << p;
            return SLORA_OK;
        }

        return slora_adapter_targets_regex(path, t->valuestring, n_layers,
                                           mask, err);
    }

    if (!cJSON_IsArray(t) || cJSON_GetArraySize(t) == 0) {
        return slora_err_set(err, SLORA_ERROR, "%s: \"target_modules\" must "
                             "be a non-empty list or a string", path);
    }

    cJSON_ArrayForEach(item, t) {
        if (!cJSON_IsString(item)) {
            return slora_err_set(err, SLORA_ERROR, "%s: \"target_modules\" "
                                 "holds a non-string", path);
        }

        /* "model.layers.0.self_attn.q_proj" names the same as "q_proj" */
        s = item->valuestring;
        dot = strrchr(s, '.');
        s = dot ? dot + 1 : s;
        len = strlen(s);

        p = slora_adapter_proj_by_name(s, len);
        if (p < 0) {
            return slora_err_set(err, SLORA_ERROR, "%s: target module "
                                 "\"%s\" cannot be applied (supported: "
                                 "q_proj, k_proj, v_proj, o_proj, gate_proj, "
                                 "up_proj, down_proj)", path,
                                 item->valuestring);
        }

        *mask |= 1u << p;
    }

    return SLORA_OK;
}


/* PEFT full-matches a string target_modules against module paths: a
 * module is a target where the path of any of the n_layers layers'
 * matches (a regex may name some layers only, as
 * ".*layers\.(1[0-9])\.self_attn\.q_proj" does). */
static int
slora_adapter_targets_regex(const char *path, const char *re,
    int32_t n_layers, uint32_t *mask, slora_err_t *err)
{
    int                    p, rc;
    int32_t                layer;
    char                   mod[128];
    size_t                 off;
    pcre2_code            *code;
    pcre2_match_data      *md;
    PCRE2_UCHAR            msg[128];

    code = pcre2_compile((PCRE2_SPTR) re, PCRE2_ZERO_TERMINATED,
                         PCRE2_ANCHORED | PCRE2_ENDANCHORED, &rc, &off, NULL);
    if (code == NULL) {
        pcre2_get_error_message(rc, msg, sizeof(msg));
        return slora_err_set(err, SLORA_ERROR, "%s: \"target_modules\" "
                             "regex at %zu: %s", path, off, (char *) msg);
    }

    md = pcre2_match_data_create_from_pattern(code, NULL);
    if (md == NULL) {
        pcre2_code_free(code);
        return slora_err_set(err, SLORA_ERROR, "%s: no memory", path);
    }

    for (p = 0; p < SLORA_PROJ_N; p++) {
        for (layer = 0; layer < n_layers && !(*mask & (1u << p)); layer++) {
            snprintf(mod, sizeof(mod), "model.layers.%d.%s", (int) layer,
                     slora_adapter_proj_path[p]);
            if (pcre2_match(code, (PCRE2_SPTR) mod, strlen(mod), 0, 0, md,
                            NULL)
                >= 0)
            {
                *mask |= 1u << p;
            }
        }
    }

    pcre2_match_data_free(md);
    pcre2_code_free(code);

    if (*mask == 0) {
        return slora_err_set(err, SLORA_ERROR, "%s: \"target_modules\" "
                             "\"%s\" matches no module we can apply", path,
                             re);
    }

    return SLORA_OK;
}


/*
 * base_model.model.model.layers.N.self_attn.q_proj.lora_A[.default].weight
 * Returns SLORA_OK or SLORA_DECLINED for any other name.
 */
static int
slora_adapter_parse_name(const char *name, int32_t *layer, int *proj,
    int *is_b)
{
    int          p;
    long         n;
    char        *end;
    size_t       len;
    const char  *s;

    s = strstr(name, "layers.");
    if (s == NULL || (s != name && s[-1] != '.')) {
        return SLORA_DECLINED;
    }

    s += sizeof("layers.") - 1;
    if (*s < '0' || *s > '9') {
        return SLORA_DECLINED;
    }

    errno = 0;
    n = strtol(s, &end, 10);
    if (errno != 0 || *end != '.' || n > INT32_MAX) {
        return SLORA_DECLINED;
    }
    s = end + 1;

    for (p = 0; p < SLORA_PROJ_N; p++) {
        len = strlen(slora_adapter_proj_path[p]);
        if (strncmp(s, slora_adapter_proj_path[p], len) == 0
            && s[len] == '.')
        {
            break;
        }
    }

    if (p == SLORA_PROJ_N) {
        return SLORA_DECLINED;
    }

    s += len + 1;

    if (strcmp(s, "lora_A.weight") == 0
        || strcmp(s, "lora_A.default.weight") == 0)
    {
        *is_b = 0;

    } else if (strcmp(s, "lora_B.weight") == 0
               || strcmp(s, "lora_B.default.weight") == 0)
    {
        *is_b = 1;

    } else {
        return SLORA_DECLINED;
    }

    *layer = (int32_t) n;
    *proj = p;

    return SLORA_OK;
}


/* Copies tensor t (A [r, in] or B [out, r]) into the page images; tmp
 * holds the tensor, row_buf a row of B^T. */
static int
slora_adapter_fill(const slora_model_config_t *cfg,
    slora_adapter_image_t *img, const slora_tensor_t *t, int32_t layer,
    int proj, int is_b, float *tmp, float *row_buf, slora_err_t *err)
{
    int32_t   r, rank, row, j, in, out, heads;
    void     *base;

    rank = img->conf.rank;
    in = slora_proj_in_dim(cfg, proj);
    out = slora_proj_out_dim(cfg, proj);

    /* the scan checked it */
    slora_assert(t->n_dims == 2 && t->dims[0] == (is_b ? out : rank)
                 && t->dims[1] == (is_b ? rank : in));

    if (slora_tensor_to_f32(t, tmp, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    for (j = 0; j < (int32_t) t->n_elems; j++) {
        if (!isfinite(tmp[j])) {
            return slora_err_set(err, SLORA_ERROR, "tensor %s: element %d "
                                 "is not finite", t->name, j);
        }
    }

    if (is_b && cfg->rope == SLORA_ROPE_NORM
        && (proj == SLORA_PROJ_Q || proj == SLORA_PROJ_K))
    {
        heads = proj == SLORA_PROJ_Q ? cfg->n_heads : cfg->n_kv_heads;
        if (slora_model_permute_qk_rows(tmp, heads, cfg->head_dim, rank)
            != SLORA_OK)
        {
            return slora_err_set(err, SLORA_ERROR, "tensor %s: cannot "
                                 "permute rows for rope", t->name);
        }
    }

    base = slora_adapter_image_layer(img, layer);

    for (r = 0; r < rank; r++) {
        row = img->plan.first_row[proj][is_b] + r;

        if (!is_b) {
            slora_adapter_row_put(&img->plan, base, img->elem_size, row,
                                  tmp + (size_t) r * in);

        } else {
            for (j = 0; j < out; j++) {
                row_buf[j] = tmp[(size_t) j * rank + r];
            }
            slora_adapter_row_put(&img->plan, base, img->elem_size, row,
                                  row_buf);
        }
    }

    return SLORA_OK;
}


int
slora_adapter_write_random(const char *dir, const slora_model_config_t *cfg,
    const slora_adapter_gen_t *gen, slora_err_t *err)
{
    int                         p, side, rc;
    char                        path[SLORA_ADAPTER_PATH_LEN], name[160];
    float                      *buf, amp;
    size_t                      max_elems;
    int32_t                     l, in, out;
    int64_t                     i, n, dims[2];
    slora_rng_t                 rng;
    slora_safetensors_writer_t *w;

    if (gen->rank < 1 || gen->rank > SLORA_ADAPTER_MAX_RANK
        || gen->proj_mask == 0 || gen->proj_mask >= (1u << SLORA_PROJ_N))
    {
        return slora_err_set(err, SLORA_ERROR, "mkadapter: rank 1..%d and "
                             "at least one target wanted",
                             SLORA_ADAPTER_MAX_RANK);
    }

    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        return slora_err_set(err, SLORA_ERROR, "%s: %s", dir,
                             strerror(errno));
    }

    if (slora_adapter_write_config(dir, gen, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    max_elems = (size_t) gen->rank
                * (size_t) (cfg->ffn > cfg->hidden ? cfg->ffn : cfg->hidden);
    if ((size_t) cfg->n_heads * cfg->head_dim > (size_t) cfg->hidden) {
        max_elems = (size_t) gen->rank * cfg->n_heads * cfg->head_dim;
    }

    buf = malloc(max_elems * sizeof(float));
    w = slora_safetensors_writer_new();

    if (buf == NULL || w == NULL) {
        free(buf);
        slora_safetensors_writer_free(w);
        return slora_err_set(err, SLORA_ERROR, "mkadapter: no memory");
    }

    slora_rng_seed(&rng, gen->seed);
    rc = SLORA_ERROR;

    /*
     * A ~ U(-1, 1) * sqrt(3 / in) has unit variance per input, so (Ax)_i
     * has the size of an rms element of x; B ~ U(-1, 1) * scale *
     * sqrt(3 / r) keeps B(Ax) at scale times that.
     */
    for (l = 0; l < cfg->n_layers; l++) {
        for (p = 0; p < SLORA_PROJ_N; p++) {
            if (!(gen->proj_mask & (1u << p))) {
                continue;
            }

            in = slora_proj_in_dim(cfg, p);
            out = slora_proj_out_dim(cfg, p);

            for (side = 0; side < 2; side++) {
                dims[0] = side ? out : gen->rank;
                dims[1] = side ? gen->rank : in;
                n = dims[0] * dims[1];
                amp = side ? (gen->scale > 0 ? gen->scale : 0.5f)
                             * sqrtf(3.0f / (float) gen->rank)
                           : sqrtf(3.0f / (float) in);

                for (i = 0; i < n; i++) {
                    buf[i] = amp * (float) (2 * slora_rng_uniform(&rng) - 1);
                }

                snprintf(name, sizeof(name), "base_model.model.model.layers."
                         "%d.%s.lora_%c.weight", l,
                         slora_adapter_proj_path[p], side ? 'B' : 'A');

                if (slora_safetensors_writer_tensor(w, name, SLORA_DT_F32, 2,
                                                    dims, buf, err)
                    != SLORA_OK)
                {
                    goto done;
                }
            }
        }
    }

    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    rc = slora_safetensors_writer_write(w, path, err);

done:

    free(buf);
    slora_safetensors_writer_free(w);

    return rc;
}


static int
slora_adapter_write_config(const char *dir, const slora_adapter_gen_t *gen,
    slora_err_t *err)
{
    int     p, first, rc;
    char    path[SLORA_ADAPTER_PATH_LEN];
    FILE   *f;

    snprintf(path, sizeof(path), "%s/adapter_config.json", dir);

    f = fopen(path, "w");
    if (f == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: %s", path,
                             strerror(errno));
    }

    fprintf(f, "{\n  \"peft_type\": \"LORA\",\n  \"task_type\": "
               "\"CAUSAL_LM\",\n  \"r\": %d,\n  \"lora_alpha\": %g,\n"
               "  \"lora_dropout\": 0.0,\n  \"bias\": \"none\",\n"
               "  \"fan_in_fan_out\": false,\n  \"use_rslora\": false,\n"
               "  \"target_modules\": [", gen->rank,
            gen->alpha > 0 ? gen->alpha : (double) gen->rank);

    first = 1;
    for (p = 0; p < SLORA_PROJ_N; p++) {
        if (gen->proj_mask & (1u << p)) {
            fprintf(f, "%s\"%s\"", first ? "" : ", ", slora_proj_name(p));
            first = 0;
        }
    }

    fprintf(f, "],\n  \"slora_seed\": %llu\n}\n",
            (unsigned long long) gen->seed);

    rc = ferror(f);
    if (fclose(f) != 0 || rc) {
        return slora_err_set(err, SLORA_ERROR, "%s: write error", path);
    }

    return SLORA_OK;
}
