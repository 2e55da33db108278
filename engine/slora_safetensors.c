/*
 * slora_safetensors.c: the safetensors reader, the folder reader over
 * shards, and the single-file writer.
 *
 * The one idea: the JSON header is parsed from a NUL-terminated copy with
 * cJSON, then every entry is checked before a view is made: a known dtype,
 * at most four non-negative integral dims, offsets that are integers with
 * begin <= end <= data size, and end - begin equal to the bytes the shape
 * and dtype need; each dim at most 2^31 - 1, even where another is 0 and
 * the count would not overflow. Ranges may not overlap, as the format's
 * reference reader holds (two names for the same bytes would let a small
 * file expand into any amount of f32 once loaded), nor leave the file.
 * Holes between them, which that reader refuses too, are let be: without
 * overlaps the tensors take no more bytes than the file.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "slora_safetensors.h"
#include "slora_names.h"
#include "slora_utf8.h"


#define SLORA_ST_MAX_HEADER   (100 * 1024 * 1024)
#define SLORA_ST_MAX_INDEX    (64 * 1024 * 1024)
#define SLORA_ST_MAX_SHARDS   4096
#define SLORA_ST_MAX_INT      9007199254740992.0      /* 2^53 */
#define SLORA_ST_MAX_DIM      INT32_MAX               /* of each dim */


typedef struct {
    const char     *name;
    size_t          size;           /* bytes per element */
    slora_dtype_e   dtype;          /* SLORA_DT_N: listed, not convertible */
} slora_st_dtype_t;


static const slora_st_dtype_t  slora_st_dtypes[] = {
    { "F32",     4, SLORA_DT_F32 },
    { "F16",     2, SLORA_DT_F16 },
    { "BF16",    2, SLORA_DT_BF16 },
    { "I32",     4, SLORA_DT_I32 },
    { "F64",     8, SLORA_DT_N },
    { "I64",     8, SLORA_DT_N },
    { "U64",     8, SLORA_DT_N },
    { "U32",     4, SLORA_DT_N },
    { "I16",     2, SLORA_DT_N },
    { "U16",     2, SLORA_DT_N },
    { "I8",      1, SLORA_DT_N },
    { "U8",      1, SLORA_DT_N },
    { "BOOL",    1, SLORA_DT_N },
    { "F8_E4M3", 1, SLORA_DT_N },
    { "F8_E5M2", 1, SLORA_DT_N },
    { NULL,      0, SLORA_DT_N }
};


struct slora_safetensors_s {
    char               path[1024];
    const uint8_t     *base;
    size_t             size;
    size_t             data_size;   /* after the header */
    int                mapped;
    cJSON             *root;        /* names point into it */
    cJSON             *meta;        /* __metadata__ or NULL */
    slora_tensor_t    *tensors;
    int64_t            n_tensors;
    slora_names_t      ix;
};


typedef struct {
    const slora_tensor_t       *t;
    const slora_safetensors_t  *file;
} slora_st_entry_t;


struct slora_safetensors_dir_s {
    slora_safetensors_t  **shards;
    int64_t                n_shards;
    slora_st_entry_t      *entries;
    int64_t                n_entries;
    slora_names_t          ix;
};


typedef struct {
    char            *name;
    slora_dtype_e    dtype;
    int              n_dims;
    int64_t          dims[SLORA_TENSOR_MAX_DIMS];
    void            *data;
    size_t           n_bytes;
} slora_st_wtensor_t;


struct slora_safetensors_writer_s {
    slora_st_wtensor_t  *tensors;
    size_t               n;
    size_t               cap;
};


static slora_safetensors_t *slora_st_parse(slora_safetensors_t *st,
    slora_err_t *err);
static int slora_st_entry(slora_safetensors_t *st, cJSON *e,
    slora_tensor_t *t, const uint8_t *data, size_t data_size,
    slora_err_t *err);
static int slora_st_int(const cJSON *v, uint64_t *out);
static int slora_st_overlap(slora_safetensors_t *st, const uint8_t *data,
    slora_err_t *err);
static int slora_st_read_file(const char *path, size_t max, char **buf,
    size_t *len, slora_err_t *err);
static int slora_st_dir_add(slora_safetensors_dir_t *d,
    slora_safetensors_t *st, slora_err_t *err);
static int slora_st_dir_index(slora_safetensors_dir_t *d, const char *dir,
    const char *index, slora_err_t *err);


slora_safetensors_t *
slora_safetensors_open(const char *path, slora_err_t *err)
{
    int                   fd;
    void                 *p;
    struct stat           sb;
    slora_safetensors_t  *st;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        slora_err_set(err, SLORA_ERROR, "%s: %s", path, strerror(errno));
        return NULL;
    }

    if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || sb.st_size < 8) {
        slora_err_set(err, SLORA_ERROR, "%s: not a safetensors file (%s)",
                      path, S_ISREG(sb.st_mode) ? "shorter than 8 bytes"
                                                : "not a regular file");
        close(fd);
        return NULL;
    }

    p = mmap(NULL, (size_t) sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);

    if (p == MAP_FAILED) {
        slora_err_set(err, SLORA_ERROR, "%s: mmap: %s", path,
                      strerror(errno));
        return NULL;
    }

    st = calloc(1, sizeof(slora_safetensors_t));
    if (st == NULL) {
        munmap(p, (size_t) sb.st_size);
        slora_err_set(err, SLORA_ERROR, "%s: out of memory", path);
        return NULL;
    }

    snprintf(st->path, sizeof(st->path), "%s", path);
    st->base = p;
    st->size = (size_t) sb.st_size;
    st->mapped = 1;

    return slora_st_parse(st, err);
}


slora_safetensors_t *
slora_safetensors_open_mem(const void *data, size_t size, const char *name,
    slora_err_t *err)
{
    slora_safetensors_t  *st;

    st = calloc(1, sizeof(slora_safetensors_t));
    if (st == NULL) {
        slora_err_set(err, SLORA_ERROR, "%s: out of memory", name);
        return NULL;
    }

    snprintf(st->path, sizeof(st->path), "%s", name);
    st->base = data;
    st->size = size;

    return slora_st_parse(st, err);
}


void
slora_safetensors_close(slora_safetensors_t *st)
{
    if (st == NULL) {
        return;
    }

    cJSON_Delete(st->root);
    free(st->tensors);
    slora_names_free(&st->ix);

    if (st->mapped) {
        munmap((void *) st->base, st->size);
    }

    free(st);
}


static slora_safetensors_t *
slora_st_parse(slora_safetensors_t *st, slora_err_t *err)
{
    char      *hdr;
    size_t     data_size;
    int64_t    n;
    uint64_t   hlen;
    cJSON     *e;

    if (st->size < 8) {
        slora_err_set(err, SLORA_ERROR, "%s: truncated: %zu bytes, the "
                      "header length alone takes 8", st->path, st->size);
        goto failed;
    }

    memcpy(&hlen, st->base, 8);

    if (hlen < 2 || hlen > SLORA_ST_MAX_HEADER || hlen > st->size - 8) {
        slora_err_set(err, SLORA_ERROR, "%s: header length %llu: not in "
                      "[2, %d] or past end of file (size %zu)", st->path,
                      (unsigned long long) hlen, SLORA_ST_MAX_HEADER,
                      st->size);
        goto failed;
    }

    if (st->base[8] != '{') {
        slora_err_set(err, SLORA_ERROR, "%s: header does not start with "
                      "'{'", st->path);
        goto failed;
    }

    hdr = malloc((size_t) hlen + 1);
    if (hdr == NULL) {
        slora_err_set(err, SLORA_ERROR, "%s: out of memory", st->path);
        goto failed;
    }

    memcpy(hdr, st->base + 8, (size_t) hlen);
    hdr[hlen] = '\0';

    st->root = cJSON_ParseWithLength(hdr, (size_t) hlen);
    free(hdr);

    if (st->root == NULL || !cJSON_IsObject(st->root)) {
        slora_err_set(err, SLORA_ERROR, "%s: header is not a JSON object",
                      st->path);
        goto failed;
    }

    n = 0;
    cJSON_ArrayForEach(e, st->root) {
        n++;
    }

    st->tensors = calloc(n ? (size_t) n : 1, sizeof(slora_tensor_t));

    if (st->tensors == NULL
        || slora_names_init(&st->ix, (size_t) n) != SLORA_OK)
    {
        slora_err_set(err, SLORA_ERROR, "%s: out of memory", st->path);
        goto failed;
    }

    data_size = st->size - 8 - (size_t) hlen;
    st->data_size = data_size;

    cJSON_ArrayForEach(e, st->root) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(e)) {
                slora_err_set(err, SLORA_ERROR, "%s: __metadata__ is not an "
                              "object", st->path);
                goto failed;
            }
            st->meta = e;
            continue;
        }

        if (slora_st_entry(st, e, &st->tensors[st->n_tensors],
                           st->base + 8 + hlen, data_size, err)
            != SLORA_OK)
        {
            goto failed;
        }

        if (slora_names_add(&st->ix, e->string, strlen(e->string),
                            st->n_tensors)
            != SLORA_OK)
        {
            slora_err_set(err, SLORA_ERROR, "%s: duplicate tensor '%s'",
                          st->path, e->string);
            goto failed;
        }

        st->n_tensors++;
    }

    if (slora_st_overlap(st, st->base + 8 + hlen, err) != SLORA_OK) {
        goto failed;
    }

    return st;

failed:

    slora_safetensors_close(st);
    return NULL;
}


static int
slora_st_entry(slora_safetensors_t *st, cJSON *e, slora_tensor_t *t,
    const uint8_t *data, size_t data_size, slora_err_t *err)
{
    int                      d, n_dims;
    size_t                   bytes;
    uint64_t                 v, begin, end;
    int64_t                  n;
    cJSON                   *dt, *shape, *offs, *x;
    const char              *name;
    const slora_st_dtype_t  *sd;

    name = e->string;

    if (name[0] == '\0') {
        return slora_err_set(err, SLORA_ERROR, "%s: tensor with an empty "
                             "name", st->path);
    }

    dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");

    if (!cJSON_IsObject(e) || !cJSON_IsString(dt) || !cJSON_IsArray(shape)
        || !cJSON_IsArray(offs))
    {
        return slora_err_set(err, SLORA_ERROR, "%s: tensor '%s': needs "
                             "dtype, shape and data_offsets", st->path, name);
    }

    for (sd = slora_st_dtypes; sd->name != NULL; sd++) {
        if (strcmp(sd->name, dt->valuestring) == 0) {
            break;
        }
    }

    if (sd->name == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: tensor '%s': unknown "
                             "dtype '%.*s'", st->path, name,
                             slora_utf8_cut(dt->valuestring, 32),
                             dt->valuestring);
    }

    n_dims = cJSON_GetArraySize(shape);

    if (n_dims > SLORA_TENSOR_MAX_DIMS) {
        return slora_err_set(err, SLORA_ERROR, "%s: tensor '%s': %d dims, at "
                             "most %d supported", st->path, name, n_dims,
                             SLORA_TENSOR_MAX_DIMS);
    }

    n = 1;
    d = 0;

    cJSON_ArrayForEach(x, shape) {
        if (slora_st_int(x, &v) != SLORA_OK || v > SLORA_ST_MAX_DIM
            || (n != 0 && v > (uint64_t) (INT64_MAX / n)))
        {
            return slora_err_set(err, SLORA_ERROR, "%s: tensor '%s': dim %d "
                                 "is not an integer in [0, 2^31), or the "
                                 "element count overflows", st->path, name,
                                 d);
        }

        t->dims[d++] = (int64_t) v;
        n *= (int64_t) v;
    }

    if (cJSON_GetArraySize(offs) != 2
        || slora_st_int(cJSON_GetArrayItem(offs, 0), &begin) != SLORA_OK
        || slora_st_int(cJSON_GetArrayItem(offs, 1), &end) != SLORA_OK
        || begin > end)
    {
        return slora_err_set(err, SLORA_ERROR, "%s: tensor '%s': "
                             "data_offsets is not [begin, end] with "
                             "begin <= end", st->path, name);
    }

    if (end > data_size) {
        return slora_err_set(err, SLORA_ERROR, "%s: tensor '%s': data "
                             "[%llu, %llu) past end of data (size %zu)",
                             st->path, name, (unsigned long long) begin,
                             (unsigned long long) end, data_size);
    }

    if (slora_mul_size((size_t) n, sd->size, &bytes) != SLORA_OK
        || bytes != end - begin)
    {
        return slora_err_set(err, SLORA_ERROR, "%s: tensor '%s': %llu bytes "
                             "of data for %lld elements of %s", st->path,
                             name, (unsigned long long) (end - begin),
                             (long long) n, sd->name);
    }

    t->name = name;
    t->dtype = sd->dtype;
    t->n_dims = n_dims;
    t->n_elems = n;
    t->data = data + begin;
    t->n_bytes = bytes;

    return SLORA_OK;
}


/* Refuses two tensors that share a byte of data, naming both. */
static int
slora_st_overlap(slora_safetensors_t *st, const uint8_t *data,
    slora_err_t *err)
{
    int64_t               a, b;
    const slora_tensor_t  *ta, *tb;

    if (slora_tensor_overlap(st->tensors, st->n_tensors, &a, &b)
        != SLORA_OK)
    {
        return slora_err_set(err, SLORA_ERROR, "%s: out of memory",
                             st->path);
    }

    if (a < 0) {
        return SLORA_OK;
    }

    ta = &st->tensors[a];
    tb = &st->tensors[b];

    return slora_err_set(err, SLORA_ERROR, "%s: tensors '%s' and '%s' "
                         "overlap: data [%zu, %zu) and [%zu, %zu)", st->path,
                         ta->name, tb->name,
                         (size_t) ((const uint8_t *) ta->data - data),
                         (size_t) ((const uint8_t *) ta->data - data)
                         + ta->n_bytes,
                         (size_t) ((const uint8_t *) tb->data - data),
                         (size_t) ((const uint8_t *) tb->data - data)
                         + tb->n_bytes);
}


static int
slora_st_int(const cJSON *v, uint64_t *out)
{
    double  d;

    if (!cJSON_IsNumber(v)) {
        return SLORA_ERROR;
    }

    d = v->valuedouble;

    if (!(d >= 0 && d <= SLORA_ST_MAX_INT) || d != (double) (uint64_t) d) {
        return SLORA_ERROR;
    }

    *out = (uint64_t) d;

    return SLORA_OK;
}


const char *
slora_safetensors_path(const slora_safetensors_t *st)
{
    return st->path;
}


size_t
slora_safetensors_data_size(const slora_safetensors_t *st)
{
    return st->data_size;
}


int64_t
slora_safetensors_n_tensors(const slora_safetensors_t *st)
{
    return st->n_tensors;
}


const slora_tensor_t *
slora_safetensors_tensor(const slora_safetensors_t *st, int64_t i)
{
    if (i < 0 || i >= st->n_tensors) {
        return NULL;
    }

    return &st->tensors[i];
}


const slora_tensor_t *
slora_safetensors_find(const slora_safetensors_t *st, const char *name)
{
    int64_t  i;

    i = slora_names_find(&st->ix, name, strlen(name));

    return i < 0 ? NULL : &st->tensors[i];
}


const char *
slora_safetensors_meta(const slora_safetensors_t *st, const char *key)
{
    cJSON  *v;

    if (st->meta == NULL) {
        return NULL;
    }

    v = cJSON_GetObjectItemCaseSensitive(st->meta, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}


slora_safetensors_dir_t *
slora_safetensors_dir_open(const char *dir, slora_err_t *err)
{
    char                      path[1280];
    int64_t                   i;
    struct stat               sb;
    slora_safetensors_t      *st;
    slora_safetensors_dir_t  *d;

    d = calloc(1, sizeof(slora_safetensors_dir_t));
    if (d == NULL) {
        slora_err_set(err, SLORA_ERROR, "%s: out of memory", dir);
        return NULL;
    }

    snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);

    if (stat(path, &sb) == 0) {
        if (slora_st_dir_index(d, dir, path, err) != SLORA_OK) {
            goto failed;
        }
        return d;
    }

    snprintf(path, sizeof(path), "%s/model.safetensors", dir);

    if (stat(path, &sb) != 0) {
        slora_err_set(err, SLORA_ERROR, "%s: no model.safetensors or "
                      "model.safetensors.index.json", dir);
        goto failed;
    }

    st = slora_safetensors_open(path, err);
    if (st == NULL) {
        goto failed;
    }

    if (slora_st_dir_add(d, st, err) != SLORA_OK) {
        goto failed;
    }

    if (slora_names_init(&d->ix, (size_t) st->n_tensors) != SLORA_OK) {
        slora_err_set(err, SLORA_ERROR, "%s: out of memory", path);
        goto failed;
    }

    /* names are unique within a file: the reader checked */

    for (i = 0; i < st->n_tensors; i++) {
        d->entries[i].t = &st->tensors[i];
        d->entries[i].file = st;
        slora_names_add(&d->ix, st->tensors[i].name,
                        strlen(st->tensors[i].name), i);
    }

    return d;

failed:

    slora_safetensors_dir_close(d);
    return NULL;
}


/* Adds an open shard to d (d owns it from here, even on failure) and
 * grows the entry table to hold its tensors. */
static int
slora_st_dir_add(slora_safetensors_dir_t *d, slora_safetensors_t *st,
    slora_err_t *err)
{
    slora_st_entry_t      *e;
    slora_safetensors_t  **s;

    s = realloc(d->shards, (size_t) (d->n_shards + 1) * sizeof(*s));
    if (s == NULL) {
        slora_safetensors_close(st);
        return slora_err_set(err, SLORA_ERROR, "%s: out of memory",
                             st->path);
    }

    d->shards = s;
    d->shards[d->n_shards++] = st;

    e = realloc(d->entries, (size_t) (d->n_entries + st->n_tensors + 1)
                            * sizeof(*e));
    if (e == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: out of memory",
                             st->path);
    }

    d->entries = e;
    d->n_entries += st->n_tensors;

    return SLORA_OK;
}


static int
slora_st_dir_index(slora_safetensors_dir_t *d, const char *dir,
    const char *index, slora_err_t *err)
{
    int                   rc;
    char                 *text, path[1280];
    size_t                len;
    int64_t               i, j, total;
    cJSON                *root, *map, *e;
    const char           *shard;
    slora_safetensors_t  *st;
    slora_names_t         files;

    text = NULL;
    len = 0;

    if (slora_st_read_file(index, SLORA_ST_MAX_INDEX, &text, &len, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    root = cJSON_ParseWithLength(text, len);
    free(text);

    rc = SLORA_ERROR;
    memset(&files, 0, sizeof(files));

    map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");

    if (!cJSON_IsObject(map)) {
        slora_err_set(err, SLORA_ERROR, "%s: not JSON with a weight_map "
                      "object", index);
        goto done;
    }

    if (slora_names_init(&files, SLORA_ST_MAX_SHARDS) != SLORA_OK) {
        slora_err_set(err, SLORA_ERROR, "%s: out of memory", index);
        goto done;
    }

    /* open each shard once, in the order first named */

    cJSON_ArrayForEach(e, map) {
        if (!cJSON_IsString(e)) {
            slora_err_set(err, SLORA_ERROR, "%s: weight_map['%s'] is not a "
                          "string", index, e->string);
            goto done;
        }

        shard = e->valuestring;

        if (shard[0] == '\0' || strchr(shard, '/') != NULL
            || strcmp(shard, ".") == 0 || strcmp(shard, "..") == 0)
        {
            slora_err_set(err, SLORA_ERROR, "%s: weight_map['%s']: shard "
                          "'%.*s' is not a file name in the folder", index,
                          e->string, slora_utf8_cut(shard, 64), shard);
            goto done;
        }

        if (slora_names_find(&files, shard, strlen(shard)) >= 0) {
            continue;
        }

        if (d->n_shards == SLORA_ST_MAX_SHARDS) {
            slora_err_set(err, SLORA_ERROR, "%s: more than %d shards", index,
                          SLORA_ST_MAX_SHARDS);
            goto done;
        }

        snprintf(path, sizeof(path), "%s/%s", dir, shard);

        st = slora_safetensors_open(path, err);
        if (st == NULL || slora_st_dir_add(d, st, err) != SLORA_OK) {
            goto done;
        }

        slora_names_add(&files, shard, strlen(shard), d->n_shards - 1);
    }

    if (d->n_shards == 0) {
        slora_err_set(err, SLORA_ERROR, "%s: weight_map is empty", index);
        goto done;
    }

    if (slora_names_init(&d->ix, (size_t) d->n_entries) != SLORA_OK) {
        slora_err_set(err, SLORA_ERROR, "%s: out of memory", index);
        goto done;
    }

    total = 0;

    for (i = 0; i < d->n_shards; i++) {
        st = d->shards[i];

        for (j = 0; j < st->n_tensors; j++) {
            d->entries[total].t = &st->tensors[j];
            d->entries[total].file = st;

            if (slora_names_add(&d->ix, st->tensors[j].name,
                                strlen(st->tensors[j].name), total)
                != SLORA_OK)
            {
                slora_err_set(err, SLORA_ERROR, "%s: tensor '%s' is in more "
                              "than one shard", st->path,
                              st->tensors[j].name);
                goto done;
            }

            total++;
        }
    }

    cJSON_ArrayForEach(e, map) {
        i = slora_names_find(&d->ix, e->string, strlen(e->string));
        j = slora_names_find(&files, e->valuestring,
                             strlen(e->valuestring));

        if (i < 0 || d->entries[i].file != d->shards[j]) {
            slora_err_set(err, SLORA_ERROR, "%s: tensor '%s' is not in its "
                          "shard %s", index, e->string, e->valuestring);
            goto done;
        }
    }

    rc = SLORA_OK;

done:

    slora_names_free(&files);
    cJSON_Delete(root);

    return rc;
}


void
slora_safetensors_dir_close(slora_safetensors_dir_t *d)
{
    int64_t  i;

    if (d == NULL) {
        return;
    }

    for (i = 0; i < d->n_shards; i++) {
        slora_safetensors_close(d->shards[i]);
    }

    free(d->shards);
    free(d->entries);
    slora_names_free(&d->ix);
    free(d);
}


int64_t
slora_safetensors_dir_n_tensors(const slora_safetensors_dir_t *d)
{
    return d->n_entries;
}


const slora_tensor_t *
slora_safetensors_dir_tensor(const slora_safetensors_dir_t *d, int64_t i)
{
    if (i < 0 || i >= d->n_entries) {
        return NULL;
    }

    return d->entries[i].t;
}


const slora_tensor_t *
slora_safetensors_dir_find(const slora_safetensors_dir_t *d,
    const char *name)
{
    int64_t  i;

    i = slora_names_find(&d->ix, name, strlen(name));

    return i < 0 ? NULL : d->entries[i].t;
}


const char *
slora_safetensors_dir_file(const slora_safetensors_dir_t *d,
    const slora_tensor_t *t)
{
    int64_t  i;

    for (i = 0; i < d->n_entries; i++) {
        if (d->entries[i].t == t) {
            return d->entries[i].file->path;
        }
    }

    return "(unknown file)";
}


static int
slora_st_read_file(const char *path, size_t max, char **buf, size_t *len,
    slora_err_t *err)
{
    FILE         *f;
    char         *p;
    size_t        n;
    struct stat   sb;

    f = fopen(path, "rb");
    if (f == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: %s", path,
                             strerror(errno));
    }

    if (fstat(fileno(f), &sb) != 0 || sb.st_size < 0
        || (uint64_t) sb.st_size > max)
    {
        fclose(f);
        return slora_err_set(err, SLORA_ERROR, "%s: not a file of at most "
                             "%zu bytes", path, max);
    }

    n = (size_t) sb.st_size;

    p = malloc(n + 1);
    if (p == NULL) {
        fclose(f);
        return slora_err_set(err, SLORA_ERROR, "%s: out of memory", path);
    }

    if (fread(p, 1, n, f) != n) {
        fclose(f);
        free(p);
        return slora_err_set(err, SLORA_ERROR, "%s: read failed", path);
    }

    fclose(f);

    p[n] = '\0';
    *buf = p;
    *len = n;

    return SLORA_OK;
}


slora_safetensors_writer_t *
slora_safetensors_writer_new(void)
{
    return calloc(1, sizeof(slora_safetensors_writer_t));
}


void
slora_safetensors_writer_free(slora_safetensors_writer_t *w)
{
    size_t  i;

    if (w == NULL) {
        return;
    }

    for (i = 0; i < w->n; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].data);
    }

    free(w->tensors);
    free(w);
}


int
slora_safetensors_writer_tensor(slora_safetensors_writer_t *w,
    const char *name, slora_dtype_e dt, int n_dims, const int64_t *dims,
    const void *data, slora_err_t *err)
{
    int                  d;
    size_t               i, cap;
    int64_t              n;
    slora_st_wtensor_t  *t;

    if (dt != SLORA_DT_F32 && dt != SLORA_DT_F16 && dt != SLORA_DT_BF16
        && dt != SLORA_DT_I32)
    {
        return slora_err_set(err, SLORA_ERROR, "tensor '%s': safetensors "
                             "cannot hold %s", name, slora_dtype_name(dt));
    }

    if (n_dims < 0 || n_dims > SLORA_TENSOR_MAX_DIMS
        || strcmp(name, "__metadata__") == 0 || name[0] == '\0')
    {
        return slora_err_set(err, SLORA_ERROR, "tensor '%s': bad name or "
                             "dims", name);
    }

    for (i = 0; i < w->n; i++) {
        if (strcmp(w->tensors[i].name, name) == 0) {
            return slora_err_set(err, SLORA_ERROR, "tensor '%s' added twice",
                                 name);
        }
    }

    if (w->n == w->cap) {
        cap = w->cap ? 2 * w->cap : 64;
        t = realloc(w->tensors, cap * sizeof(slora_st_wtensor_t));
        if (t == NULL) {
            return slora_err_set(err, SLORA_ERROR, "out of memory");
        }
        w->tensors = t;
        w->cap = cap;
    }

    t = &w->tensors[w->n];
    memset(t, 0, sizeof(slora_st_wtensor_t));

    n = 1;
    for (d = 0; d < n_dims; d++) {
        if (dims[d] < 0 || (n != 0 && dims[d] > INT64_MAX / n)) {
            return slora_err_set(err, SLORA_ERROR, "tensor '%s': bad dim %d",
                                 name, d);
        }
        n *= dims[d];
        t->dims[d] = dims[d];
    }

    if (slora_dtype_bytes(dt, n, &t->n_bytes) != SLORA_OK) {
        return slora_err_set(err, SLORA_ERROR, "tensor '%s': too large",
                             name);
    }

    t->name = strdup(name);
    t->data = malloc(t->n_bytes ? t->n_bytes : 1);

    if (t->name == NULL || t->data == NULL) {
        free(t->name);
        free(t->data);
        return slora_err_set(err, SLORA_ERROR, "out of memory");
    }

    if (t->n_bytes > 0) {
        memcpy(t->data, data, t->n_bytes);
    }

    t->dtype = dt;
    t->n_dims = n_dims;
    w->n++;

    return SLORA_OK;
}


int
slora_safetensors_writer_write(slora_safetensors_writer_t *w,
    const char *path, slora_err_t *err)
{
    int                  d, ok;
    char                *json;
    FILE                *f;
    size_t               i, off, len, pad;
    cJSON               *root, *e, *meta, *shape, *offs;
    uint64_t             hlen;
    slora_st_wtensor_t  *t;

    root = cJSON_CreateObject();
    meta = cJSON_AddObjectToObject(root, "__metadata__");
    ok = root != NULL && meta != NULL
         && cJSON_AddStringToObject(meta, "format", "pt") != NULL;

    off = 0;

    for (i = 0; ok && i < w->n; i++) {
        t = &w->tensors[i];

        e = cJSON_AddObjectToObject(root, t->name);
        shape = e ? cJSON_AddArrayToObject(e, "shape") : NULL;
        offs = e ? cJSON_AddArrayToObject(e, "data_offsets") : NULL;

        ok = e != NULL && shape != NULL && offs != NULL
             && cJSON_AddStringToObject(e, "dtype",
                                        slora_dtype_name(t->dtype)) != NULL;

        for (d = 0; ok && d < t->n_dims; d++) {
            ok = cJSON_AddItemToArray(shape,
                     cJSON_CreateNumber((double) t->dims[d]));
        }

        ok = ok
             && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double) off))
             && cJSON_AddItemToArray(offs,
                    cJSON_CreateNumber((double) (off + t->n_bytes)));

        off += t->n_bytes;
    }

    json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);

    if (json == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: out of memory", path);
    }

    len = strlen(json);
    pad = (8 - len % 8) % 8;
    hlen = len + pad;

    f = fopen(path, "wb");
    if (f == NULL) {
        free(json);
        return slora_err_set(err, SLORA_ERROR, "%s: %s", path,
                             strerror(errno));
    }

    ok = fwrite(&hlen, 8, 1, f) == 1 && fwrite(json, 1, len, f) == len
         && fwrite("        ", 1, pad, f) == pad;

    for (i = 0; ok && i < w->n; i++) {
        t = &w->tensors[i];
        ok = fwrite(t->data, 1, t->n_bytes, f) == t->n_bytes;
    }

    free(json);

    if (fclose(f) != 0 || !ok) {
        return slora_err_set(err, SLORA_ERROR, "%s: write failed: %s", path,
                             strerror(errno));
    }

    return SLORA_OK;
}
