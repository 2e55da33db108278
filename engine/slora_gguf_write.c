/*
 * slora_gguf_write.c: the GGUF writer our tools use (slora mkmodel, the
 * tests). It builds the metadata section in a growing buffer as entries
 * arrive, keeps copies of the tensors, and writes a version 3 file in one
 * pass: header, metadata, tensor infos, padding, data.
 *
 * The one idea: the writer produces exactly what the reader checks, with
 * each tensor's data at an offset that is a multiple of the alignment, so
 * a round trip through both is the test of each.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_gguf.h"


typedef struct {
    uint8_t  *p;
    size_t    len;
    size_t    cap;
} slora_gbuf_t;


typedef struct {
    char            *name;
    slora_dtype_e    dtype;
    int              n_dims;
    int64_t          dims[SLORA_TENSOR_MAX_DIMS];
    void            *data;
    size_t           n_bytes;
} slora_gguf_wtensor_t;


struct slora_gguf_writer_s {
    slora_gbuf_t            kv;         /* the metadata section */
    uint64_t                n_kv;
    char                  **keys;       /* [n_kv] */
    slora_gguf_wtensor_t   *tensors;
    size_t                  n_tensors;
    size_t                  cap_tensors;
    uint32_t                alignment;
};


static int slora_gbuf_add(slora_gbuf_t *b, const void *p, size_t n);
static int slora_gbuf_u32(slora_gbuf_t *b, uint32_t v);
static int slora_gbuf_u64(slora_gbuf_t *b, uint64_t v);
static int slora_gbuf_str(slora_gbuf_t *b, const char *s, size_t len);
static int slora_gguf_writer_key(slora_gguf_writer_t *w, const char *key,
    size_t len, uint32_t type, slora_err_t *err);
static int slora_gguf_writer_arr(slora_gguf_writer_t *w, const char *key,
    uint32_t type, const void *v, size_t n, size_t esize, slora_err_t *err);
static int slora_gguf_writer_oom(slora_err_t *err);


slora_gguf_writer_t *
slora_gguf_writer_new(void)
{
    slora_gguf_writer_t  *w;

    w = calloc(1, sizeof(slora_gguf_writer_t));
    if (w == NULL) {
        return NULL;
    }

    w->alignment = 32;

    return w;
}


void
slora_gguf_writer_free(slora_gguf_writer_t *w)
{
    size_t  i;

    if (w == NULL) {
        return;
    }

    for (i = 0; i < w->n_kv; i++) {
        free(w->keys[i]);
    }

    for (i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].data);
    }

    free(w->keys);
    free(w->tensors);
    free(w->kv.p);
    free(w);
}


int
slora_gguf_writer_str(slora_gguf_writer_t *w, const char *key,
    const char *s, slora_err_t *err)
{
    if (slora_gguf_writer_key(w, key, strlen(key), SLORA_GGUF_STR, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (slora_gbuf_str(&w->kv, s, strlen(s)) != SLORA_OK) {
        return slora_gguf_writer_oom(err);
    }

    return SLORA_OK;
}


int
slora_gguf_writer_u32(slora_gguf_writer_t *w, const char *key, uint32_t v,
    slora_err_t *err)
{
    if (strcmp(key, "general.alignment") == 0
        && (v == 0 || (v & (v - 1)) != 0))
    {
        return slora_err_set(err, SLORA_ERROR, "general.alignment %u is not "
                             "a power of two", v);
    }

    if (slora_gguf_writer_key(w, key, strlen(key), SLORA_GGUF_U32, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (slora_gbuf_u32(&w->kv, v) != SLORA_OK) {
        return slora_gguf_writer_oom(err);
    }

    if (strcmp(key, "general.alignment") == 0) {
        w->alignment = v;
    }

    return SLORA_OK;
}


int
slora_gguf_writer_i32(slora_gguf_writer_t *w, const char *key, int32_t v,
    slora_err_t *err)
{
    if (slora_gguf_writer_key(w, key, strlen(key), SLORA_GGUF_I32, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (slora_gbuf_add(&w->kv, &v, 4) != SLORA_OK) {
        return slora_gguf_writer_oom(err);
    }

    return SLORA_OK;
}


int
slora_gguf_writer_f32(slora_gguf_writer_t *w, const char *key, float v,
    slora_err_t *err)
{
    if (slora_gguf_writer_key(w, key, strlen(key), SLORA_GGUF_F32, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (slora_gbuf_add(&w->kv, &v, 4) != SLORA_OK) {
        return slora_gguf_writer_oom(err);
    }

    return SLORA_OK;
}


int
slora_gguf_writer_bool(slora_gguf_writer_t *w, const char *key, int v,
    slora_err_t *err)
{
    uint8_t  b;

    if (slora_gguf_writer_key(w, key, strlen(key), SLORA_GGUF_BOOL, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    b = v ? 1 : 0;

    if (slora_gbuf_add(&w->kv, &b, 1) != SLORA_OK) {
        return slora_gguf_writer_oom(err);
    }

    return SLORA_OK;
}


int
slora_gguf_writer_str_arr(slora_gguf_writer_t *w, const char *key,
    const char *const *s, size_t n, slora_err_t *err)
{
    size_t  i;

    if (slora_gguf_writer_key(w, key, strlen(key), SLORA_GGUF_ARR, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (slora_gbuf_u32(&w->kv, SLORA_GGUF_STR) != SLORA_OK
        || slora_gbuf_u64(&w->kv, n) != SLORA_OK)
    {
        return slora_gguf_writer_oom(err);
    }

    for (i = 0; i < n; i++) {
        if (slora_gbuf_str(&w->kv, s[i], strlen(s[i])) != SLORA_OK) {
            return slora_gguf_writer_oom(err);
        }
    }

    return SLORA_OK;
}


int
slora_gguf_writer_i32_arr(slora_gguf_writer_t *w, const char *key,
    const int32_t *v, size_t n, slora_err_t *err)
{
    return slora_gguf_writer_arr(w, key, SLORA_GGUF_I32, v, n, 4, err);
}


int
slora_gguf_writer_f32_arr(slora_gguf_writer_t *w, const char *key,
    const float *v, size_t n, slora_err_t *err)
{
    return slora_gguf_writer_arr(w, key, SLORA_GGUF_F32, v, n, 4, err);
}


int
slora_gguf_writer_copy_kv(slora_gguf_writer_t *w, const slora_gguf_t *g,
    int64_t i, slora_err_t *err)
{
    size_t          klen, rlen;
    const char     *key;
    const uint8_t  *raw;
    uint32_t        type, a;

    key = slora_gguf_kv_key(g, i, &klen);
    raw = slora_gguf_kv_raw(g, i, &rlen);

    memcpy(&type, raw, 4);

    if (slora_gguf_writer_key(w, key, klen, type, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (slora_gbuf_add(&w->kv, raw + 4, rlen - 4) != SLORA_OK) {
        return slora_gguf_writer_oom(err);
    }

    if (type == SLORA_GGUF_U32 && klen == 17
        && memcmp(key, "general.alignment", 17) == 0)
    {
        memcpy(&a, raw + 4, 4);
        w->alignment = a;
    }

    return SLORA_OK;
}


int
slora_gguf_writer_tensor(slora_gguf_writer_t *w, const char *name,
    slora_dtype_e dt, int n_dims, const int64_t *dims, const void *data,
    slora_err_t *err)
{
    int                    d;
    size_t                 i, cap;
    int64_t                n;
    slora_gguf_wtensor_t  *t;

    if (n_dims < 1 || n_dims > SLORA_TENSOR_MAX_DIMS || (unsigned) dt
        >= SLORA_DT_N)
    {
        return slora_err_set(err, SLORA_ERROR, "tensor '%s': bad type or "
                             "dims", name);
    }

    for (i = 0; i < w->n_tensors; i++) {
        if (strcmp(w->tensors[i].name, name) == 0) {
            return slora_err_set(err, SLORA_ERROR, "tensor '%s' added twice",
                                 name);
        }
    }

    if (w->n_tensors == w->cap_tensors) {
        cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        t = realloc(w->tensors, cap * sizeof(slora_gguf_wtensor_t));
        if (t == NULL) {
            return slora_gguf_writer_oom(err);
        }
        w->tensors = t;
        w->cap_tensors = cap;
    }

    t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof(slora_gguf_wtensor_t));

    n = 1;
    for (d = 0; d < n_dims; d++) {
        if (dims[d] <= 0 || dims[d] > INT64_MAX / n) {
            return slora_err_set(err, SLORA_ERROR, "tensor '%s': bad dim %d",
                                 name, d);
        }
        n *= dims[d];
        t->dims[d] = dims[d];
    }

    if (slora_dtype_bytes(dt, dims[n_dims - 1], &t->n_bytes) != SLORA_OK
        || slora_dtype_bytes(dt, n, &t->n_bytes) != SLORA_OK)
    {
        return slora_err_set(err, SLORA_ERROR, "tensor '%s': rows are not "
                             "whole blocks of %s", name,
                             slora_dtype_name(dt));
    }

    t->name = strdup(name);
    t->data = malloc(t->n_bytes ? t->n_bytes : 1);

    if (t->name == NULL || t->data == NULL) {
        free(t->name);
        free(t->data);
        return slora_gguf_writer_oom(err);
    }

    memcpy(t->data, data, t->n_bytes);
    t->dtype = dt;
    t->n_dims = n_dims;
    w->n_tensors++;

    return SLORA_OK;
}


int
slora_gguf_writer_write(slora_gguf_writer_t *w, const char *path,
    slora_err_t *err)
{
    int                    d, rc;
    FILE                  *f;
    size_t                 i, off, pad;
    slora_gbuf_t           h;
    slora_gguf_wtensor_t  *t;
    static const uint8_t   zeros[4096];

    memset(&h, 0, sizeof(h));
    rc = SLORA_ERROR;

    if (slora_gbuf_add(&h, "GGUF", 4) != SLORA_OK
        || slora_gbuf_u32(&h, 3) != SLORA_OK
        || slora_gbuf_u64(&h, w->n_tensors) != SLORA_OK
        || slora_gbuf_u64(&h, w->n_kv) != SLORA_OK
        || slora_gbuf_add(&h, w->kv.p, w->kv.len) != SLORA_OK)
    {
        free(h.p);
        return slora_gguf_writer_oom(err);
    }

    off = 0;

    for (i = 0; i < w->n_tensors; i++) {
        t = &w->tensors[i];

        if (slora_gbuf_str(&h, t->name, strlen(t->name)) != SLORA_OK
            || slora_gbuf_u32(&h, (uint32_t) t->n_dims) != SLORA_OK)
        {
            free(h.p);
            return slora_gguf_writer_oom(err);
        }

        for (d = t->n_dims - 1; d >= 0; d--) {
            if (slora_gbuf_u64(&h, (uint64_t) t->dims[d]) != SLORA_OK) {
                free(h.p);
                return slora_gguf_writer_oom(err);
            }
        }

        if (slora_gbuf_u32(&h, slora_gguf_type_id(t->dtype)) != SLORA_OK
            || slora_gbuf_u64(&h, off) != SLORA_OK)
        {
            free(h.p);
            return slora_gguf_writer_oom(err);
        }

        off += t->n_bytes;
        off += (w->alignment - off % w->alignment) % w->alignment;
    }

    f = fopen(path, "wb");
    if (f == NULL) {
        free(h.p);
        return slora_err_set(err, SLORA_ERROR, "%s: %s", path,
                             strerror(errno));
    }

    pad = (w->alignment - h.len % w->alignment) % w->alignment;

    if (fwrite(h.p, 1, h.len, f) != h.len) {
        goto failed;
    }

    for (i = 0; i <= w->n_tensors; i++) {
        while (pad > 0) {
            off = pad < sizeof(zeros) ? pad : sizeof(zeros);
            if (fwrite(zeros, 1, off, f) != off) {
                goto failed;
            }
            pad -= off;
        }

        if (i == w->n_tensors) {
            break;
        }

        t = &w->tensors[i];

        if (fwrite(t->data, 1, t->n_bytes, f) != t->n_bytes) {
            goto failed;
        }

        pad = (w->alignment - t->n_bytes % w->alignment) % w->alignment;
    }

    rc = SLORA_OK;

failed:

    free(h.p);

    if (fclose(f) != 0 || rc != SLORA_OK) {
        return slora_err_set(err, SLORA_ERROR, "%s: write failed: %s", path,
                             strerror(errno));
    }

    return SLORA_OK;
}


static int
slora_gguf_writer_key(slora_gguf_writer_t *w, const char *key, size_t len,
    uint32_t type, slora_err_t *err)
{
    char   **keys, *k;
    size_t   i;

    for (i = 0; i < w->n_kv; i++) {
        if (strlen(w->keys[i]) == len && memcmp(w->keys[i], key, len) == 0) {
            return slora_err_set(err, SLORA_ERROR, "key '%.*s' added twice",
                                 (int) len, key);
        }
    }

    keys = realloc(w->keys, (w->n_kv + 1) * sizeof(char *));
    if (keys == NULL) {
        return slora_gguf_writer_oom(err);
    }
    w->keys = keys;

    k = strndup(key, len);
    if (k == NULL) {
        return slora_gguf_writer_oom(err);
    }

    if (slora_gbuf_str(&w->kv, key, len) != SLORA_OK
        || slora_gbuf_u32(&w->kv, type) != SLORA_OK)
    {
        free(k);
        return slora_gguf_writer_oom(err);
    }

    w->keys[w->n_kv++] = k;

    return SLORA_OK;
}


static int
slora_gguf_writer_arr(slora_gguf_writer_t *w, const char *key,
    uint32_t type, const void *v, size_t n, size_t esize, slora_err_t *err)
{
    if (slora_gguf_writer_key(w, key, strlen(key), SLORA_GGUF_ARR, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (slora_gbuf_u32(&w->kv, type) != SLORA_OK
        || slora_gbuf_u64(&w->kv, n) != SLORA_OK
        || slora_gbuf_add(&w->kv, v, n * esize) != SLORA_OK)
    {
        return slora_gguf_writer_oom(err);
    }

    return SLORA_OK;
}


static int
slora_gguf_writer_oom(slora_err_t *err)
{
    return slora_err_set(err, SLORA_ERROR, "gguf writer: out of memory");
}


static int
slora_gbuf_add(slora_gbuf_t *b, const void *p, size_t n)
{
    size_t    cap;
    uint8_t  *np;

    if (n > SIZE_MAX / 2 - b->len) {
        return SLORA_ERROR;
    }

    if (b->len + n > b->cap) {
        cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) {
            cap *= 2;
        }

        np = realloc(b->p, cap);
        if (np == NULL) {
            return SLORA_ERROR;
        }

        b->p = np;
        b->cap = cap;
    }

    if (n > 0) {
        memcpy(b->p + b->len, p, n);
    }

    b->len += n;

    return SLORA_OK;
}


static int
slora_gbuf_u32(slora_gbuf_t *b, uint32_t v)
{
    return slora_gbuf_add(b, &v, 4);
}


static int
slora_gbuf_u64(slora_gbuf_t *b, uint64_t v)
{
    return slora_gbuf_add(b, &v, 8);
}


static int
slora_gbuf_str(slora_gbuf_t *b, const char *s, size_t len)
{
    if (slora_gbuf_u64(b, len) != SLORA_OK) {
        return SLORA_ERROR;
    }

    return slora_gbuf_add(b, s, len);
}
