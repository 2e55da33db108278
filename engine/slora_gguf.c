/*
 * slora_gguf.c: the GGUF reader. The file is mapped read-only; open walks
 * header, metadata and tensor infos once through a bounds-checked cursor,
 * validates each against the file, and builds two name indexes.
 *
 * The one idea: nothing read from the file is trusted until checked, and
 * every check that fails says which file, which entry and which bytes
 * ("m.gguf: tensor 'blk.3.attn_q.weight': data [a, b) past end of file
 * (size c)"). Counts are capped twice: by a fixed limit and by the bytes
 * left, so a hostile count can neither allocate nor loop much; no two
 * tensors may share a byte of data, so none can make more of the file
 * than is in it.
 *
 * Layout (little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv;
 * n_kv times { string key, u32 type, value }; n_tensors times { string
 * name, u32 n_dims, u64 ne[n_dims] innermost first, u32 type, u64 offset };
 * padding to the alignment; the data section, tensor offsets relative to
 * its start. A string is a u64 length and that many bytes; an array is a
 * u32 element type, a u64 count and the elements.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slora_gguf.h"
#include "slora_names.h"


#define SLORA_GGUF_MAX_KV        (1 << 20)
#define SLORA_GGUF_MAX_TENSORS   (1 << 20)
#define SLORA_GGUF_MAX_KEY       1024
#define SLORA_GGUF_MAX_NAME      256
#define SLORA_GGUF_MAX_ALIGN     (1 << 30)
#define SLORA_GGUF_ALIGN         32


typedef struct {
    const char         *key;        /* in the mapping, key_len bytes */
    size_t              key_len;
    slora_gguf_type_e   type;
    slora_gguf_type_e   arr_type;
    uint64_t            arr_n;
    const uint8_t      *val;        /* value, or an array's first element */
    const uint8_t     **strs;       /* string arrays: [arr_n] */
    const uint8_t      *raw;        /* from the type field to the value end */
    size_t              raw_len;
} slora_gguf_kv_t;


struct slora_gguf_s {
    char                path[1024];
    const uint8_t      *base;
    size_t              size;
    int                 mapped;
    uint32_t            version;
    size_t              alignment;
    size_t              data_off;
    int64_t             n_kv;
    int64_t             n_tensors;
    slora_gguf_kv_t    *kv;         /* [n_kv] */
    slora_tensor_t     *tensors;    /* [n_tensors] */
    char               *names;      /* tensor names, NUL-terminated */
    size_t              names_len;
    size_t              names_cap;
    slora_names_t       kv_ix;
    slora_names_t       tensor_ix;
};


typedef struct {
    const uint8_t      *base;
    size_t              size;
    size_t              off;
    const char         *path;
    char                what[SLORA_GGUF_MAX_KEY + 16];  /* "key 'x': " */
    slora_err_t        *err;
} slora_gguf_cur_t;


static const char  *slora_gguf_type_names[SLORA_GGUF_TYPE_N] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string",
    "array", "u64", "i64", "f64"
};

static const size_t  slora_gguf_type_size[SLORA_GGUF_TYPE_N] = {
    1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8
};


static slora_gguf_t *slora_gguf_parse(slora_gguf_t *g, slora_err_t *err);
static int slora_gguf_need(slora_gguf_cur_t *c, size_t n, const char *what);
static int slora_gguf_u32(slora_gguf_cur_t *c, uint32_t *v,
    const char *what);
static int slora_gguf_u64(slora_gguf_cur_t *c, uint64_t *v,
    const char *what);
static int slora_gguf_string(slora_gguf_cur_t *c, const uint8_t **s,
    uint64_t *len, const char *what);
static int slora_gguf_read_kv(slora_gguf_cur_t *c, slora_gguf_kv_t *kv);
static int slora_gguf_read_value(slora_gguf_cur_t *c, slora_gguf_kv_t *kv,
    const char *key);
static int slora_gguf_read_tensor(slora_gguf_t *g, slora_gguf_cur_t *c,
    int64_t i);
static int slora_gguf_index_tensors(slora_gguf_t *g, slora_err_t *err);
static int slora_gguf_set_alignment(slora_gguf_t *g, slora_err_t *err);
static int slora_gguf_check_data(slora_gguf_t *g, slora_err_t *err);
static int slora_gguf_dtype(uint32_t type, slora_dtype_e *dt);
static const char *slora_gguf_type_name(slora_gguf_type_e t);
static const slora_gguf_kv_t *slora_gguf_lookup(const slora_gguf_t *g,
    const char *key, slora_err_t *err);
static int slora_gguf_int(slora_gguf_type_e t, const uint8_t *p,
    int64_t *s, uint64_t *u);
static int slora_gguf_get_int(const slora_gguf_t *g, const char *key,
    int64_t lo, int64_t hi, int64_t *out, slora_err_t *err);
static uint32_t slora_gguf_load_u32(const uint8_t *p);
static uint64_t slora_gguf_load_u64(const uint8_t *p);


slora_gguf_t *
slora_gguf_open(const char *path, slora_err_t *err)
{
    int            fd;
    void          *p;
    struct stat    st;
    slora_gguf_t  *g;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        slora_err_set(err, SLORA_ERROR, "%s: %s", path, strerror(errno));
        return NULL;
    }

    if (fstat(fd, &st) == -1) {
        slora_err_set(err, SLORA_ERROR, "%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }

    if (!S_ISREG(st.st_mode)) {
        slora_err_set(err, SLORA_ERROR, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }

    if (st.st_size == 0) {
        slora_err_set(err, SLORA_ERROR, "%s: empty file", path);
        close(fd);
        return NULL;
    }

    p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);

    if (p == MAP_FAILED) {
        slora_err_set(err, SLORA_ERROR, "%s: mmap: %s", path,
                      strerror(errno));
        return NULL;
    }

    g = calloc(1, sizeof(slora_gguf_t));
    if (g == NULL) {
        munmap(p, (size_t) st.st_size);
        slora_err_set(err, SLORA_ERROR, "%s: out of memory", path);
        return NULL;
    }

    snprintf(g->path, sizeof(g->path), "%s", path);
    g->base = p;
    g->size = (size_t) st.st_size;
    g->mapped = 1;

    return slora_gguf_parse(g, err);
}


slora_gguf_t *
slora_gguf_open_mem(const void *data, size_t size, const char *name,
    slora_err_t *err)
{
    slora_gguf_t  *g;

    g = calloc(1, sizeof(slora_gguf_t));
    if (g == NULL) {
        slora_err_set(err, SLORA_ERROR, "%s: out of memory", name);
        return NULL;
    }

    snprintf(g->path, sizeof(g->path), "%s", name);
    g->base = data;
    g->size = size;

    return slora_gguf_parse(g, err);
}


void
slora_gguf_close(slora_gguf_t *g)
{
    int64_t  i;

    if (g == NULL) {
        return;
    }

    if (g->kv != NULL) {
        for (i = 0; i < g->n_kv; i++) {
            free(g->kv[i].strs);
        }
    }

    free(g->kv);
    free(g->tensors);
    free(g->names);
    slora_names_free(&g->kv_ix);
    slora_names_free(&g->tensor_ix);

    if (g->mapped) {
        munmap((void *) g->base, g->size);
    }

    free(g);
}


static slora_gguf_t *
slora_gguf_parse(slora_gguf_t *g, slora_err_t *err)
{
    int64_t            i;
    uint32_t           magic, swapped;
    uint64_t           n_tensors, n_kv;
    slora_gguf_kv_t   *kv;
    slora_gguf_cur_t   c;

    c.base = g->base;
    c.size = g->size;
    c.off = 0;
    c.path = g->path;
    c.what[0] = '\0';
    c.err = err;

    if (slora_gguf_u32(&c, &magic, "magic") != SLORA_OK) {
        goto failed;
    }

    if (memcmp(g->base, "GGUF", 4) != 0) {
        slora_err_set(err, SLORA_ERROR, "%s: bad magic 0x%08x, not a GGUF "
                      "file", g->path, magic);
        goto failed;
    }

    if (slora_gguf_u32(&c, &g->version, "version") != SLORA_OK) {
        goto failed;
    }

    swapped = __builtin_bswap32(g->version);

    if (swapped == 2 || swapped == 3) {
        slora_err_set(err, SLORA_ERROR, "%s: big-endian GGUF not supported",
                      g->path);
        goto failed;
    }

    if (g->version != 2 && g->version != 3) {
        slora_err_set(err, SLORA_ERROR, "%s: GGUF version %u not supported "
                      "(only 2 and 3)", g->path, g->version);
        goto failed;
    }

    if (slora_gguf_u64(&c, &n_tensors, "tensor count") != SLORA_OK
        || slora_gguf_u64(&c, &n_kv, "metadata count") != SLORA_OK)
    {
        goto failed;
    }

    /* a key-value takes at least 8 + 1 + 4 + 1 bytes, a tensor info
     * 8 + 1 + 4 + 8 + 4 + 8 */

    if (n_kv > SLORA_GGUF_MAX_KV || n_kv > (g->size - c.off) / 14) {
        slora_err_set(err, SLORA_ERROR, "%s: metadata count %llu too large "
                      "for a file of %zu bytes", g->path,
                      (unsigned long long) n_kv, g->size);
        goto failed;
    }

    if (n_tensors > SLORA_GGUF_MAX_TENSORS
        || n_tensors > (g->size - c.off) / 33)
    {
        slora_err_set(err, SLORA_ERROR, "%s: tensor count %llu too large "
                      "for a file of %zu bytes", g->path,
                      (unsigned long long) n_tensors, g->size);
        goto failed;
    }

    g->n_kv = (int64_t) n_kv;
    g->n_tensors = (int64_t) n_tensors;

    g->kv = calloc(n_kv ? n_kv : 1, sizeof(slora_gguf_kv_t));
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof(slora_tensor_t));

    if (g->kv == NULL || g->tensors == NULL
        || slora_names_init(&g->kv_ix, n_kv) != SLORA_OK
        || slora_names_init(&g->tensor_ix, n_tensors) != SLORA_OK)
    {
        slora_err_set(err, SLORA_ERROR, "%s: out of memory", g->path);
        goto failed;
    }

    for (i = 0; i < g->n_kv; i++) {
        kv = &g->kv[i];

        if (slora_gguf_read_kv(&c, kv) != SLORA_OK) {
            goto failed;
        }

        if (slora_names_add(&g->kv_ix, kv->key, kv->key_len, i) != SLORA_OK)
        {
            slora_err_set(err, SLORA_ERROR, "%s: duplicate key '%.*s'",
                          g->path, (int) kv->key_len, kv->key);
            goto failed;
        }
    }

    if (slora_gguf_set_alignment(g, err) != SLORA_OK) {
        goto failed;
    }

    for (i = 0; i < g->n_tensors; i++) {
        if (slora_gguf_read_tensor(g, &c, i) != SLORA_OK) {
            goto failed;
        }
    }

    if (slora_gguf_index_tensors(g, err) != SLORA_OK) {
        goto failed;
    }

    g->data_off = c.off + (g->alignment - c.off % g->alignment)
                  % g->alignment;

    if (slora_gguf_check_data(g, err) != SLORA_OK) {
        goto failed;
    }

    return g;

failed:

    slora_gguf_close(g);
    return NULL;
}


static int
slora_gguf_read_kv(slora_gguf_cur_t *c, slora_gguf_kv_t *kv)
{
    uint32_t        type;
    uint64_t        len;
    const uint8_t  *key;

    if (slora_gguf_string(c, &key, &len, "metadata key") != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (len == 0 || len > SLORA_GGUF_MAX_KEY
        || memchr(key, '\0', len) != NULL)
    {
        return slora_err_set(c->err, SLORA_ERROR, "%s: bad metadata key at "
                             "offset %zu (length %llu)", c->path,
                             c->off - len, (unsigned long long) len);
    }

    kv->key = (const char *) key;
    kv->key_len = len;
    kv->raw = c->base + c->off;
    snprintf(c->what, sizeof(c->what), "key '%.*s': ", (int) len, key);

    if (slora_gguf_u32(c, &type, "metadata type") != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (type >= SLORA_GGUF_TYPE_N) {
        return slora_err_set(c->err, SLORA_ERROR, "%s: key '%.*s': unknown "
                             "value type %u", c->path, (int) len, key, type);
    }

    kv->type = type;

    if (slora_gguf_read_value(c, kv, (const char *) key) != SLORA_OK) {
        return SLORA_ERROR;
    }

    kv->raw_len = (size_t) (c->base + c->off - kv->raw);
    c->what[0] = '\0';

    return SLORA_OK;
}


static int
slora_gguf_read_value(slora_gguf_cur_t *c, slora_gguf_kv_t *kv,
    const char *key)
{
    int                 klen;
    size_t              esize, bytes;
    uint32_t            atype;
    uint64_t            n, i, len;
    const uint8_t      *s;
    slora_gguf_type_e   t;

    klen = (int) kv->key_len;
    t = kv->type;

    if (t == SLORA_GGUF_STR) {
        kv->val = c->base + c->off;
        return slora_gguf_string(c, &s, &len, "string value");
    }

    if (t != SLORA_GGUF_ARR) {
        kv->val = c->base + c->off;

        if (slora_gguf_need(c, slora_gguf_type_size[t], "value") != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        if (t == SLORA_GGUF_BOOL && kv->val[0] > 1) {
            return slora_err_set(c->err, SLORA_ERROR, "%s: key '%.*s': bool "
                                 "value %u is not 0 or 1", c->path, klen, key,
                                 kv->val[0]);
        }

        c->off += slora_gguf_type_size[t];
        return SLORA_OK;
    }

    if (slora_gguf_u32(c, &atype, "array type") != SLORA_OK
        || slora_gguf_u64(c, &n, "array length") != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (atype >= SLORA_GGUF_TYPE_N || atype == SLORA_GGUF_ARR) {
        return slora_err_set(c->err, SLORA_ERROR, "%s: key '%.*s': bad array "
                             "element type %u", c->path, klen, key, atype);
    }

    kv->arr_type = atype;
    kv->arr_n = n;
    kv->val = c->base + c->off;

    esize = atype == SLORA_GGUF_STR ? 8 : slora_gguf_type_size[atype];

    if (n > (c->size - c->off) / esize) {
        return slora_err_set(c->err, SLORA_ERROR, "%s: key '%.*s': array of "
                             "%llu %s elements at offset %zu past end of "
                             "file (size %zu)", c->path, klen, key,
                             (unsigned long long) n,
                             slora_gguf_type_name(atype), c->off, c->size);
    }

    if (atype != SLORA_GGUF_STR) {
        bytes = (size_t) n * esize;

        if (atype == SLORA_GGUF_BOOL) {
            for (i = 0; i < n; i++) {
                if (kv->val[i] > 1) {
                    return slora_err_set(c->err, SLORA_ERROR, "%s: key "
                                         "'%.*s': bool element %llu is not "
                                         "0 or 1", c->path, klen, key,
                                         (unsigned long long) i);
                }
            }
        }

        c->off += bytes;
        return SLORA_OK;
    }

    kv->strs = malloc((n ? n : 1) * sizeof(const uint8_t *));
    if (kv->strs == NULL) {
        return slora_err_set(c->err, SLORA_ERROR, "%s: key '%.*s': out of "
                             "memory for %llu strings", c->path, klen, key,
                             (unsigned long long) n);
    }

    for (i = 0; i < n; i++) {
        kv->strs[i] = c->base + c->off;

        if (slora_gguf_string(c, &s, &len, "array string") != SLORA_OK) {
            return SLORA_ERROR;
        }
    }

    return SLORA_OK;
}


static int
slora_gguf_read_tensor(slora_gguf_t *g, slora_gguf_cur_t *c, int64_t i)
{
    int              d, n_dims;
    char            *p;
    size_t           bytes, cap;
    int64_t          n;
    uint32_t         nd, type;
    uint64_t         len, ne[SLORA_TENSOR_MAX_DIMS], off;
    const uint8_t   *name;
    slora_dtype_e    dt;
    slora_tensor_t  *t;

    if (slora_gguf_string(c, &name, &len, "tensor name") != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (len == 0 || len > SLORA_GGUF_MAX_NAME
        || memchr(name, '\0', len) != NULL)
    {
        return slora_err_set(c->err, SLORA_ERROR, "%s: tensor %lld: bad "
                             "name (length %llu)", g->path, (long long) i,
                             (unsigned long long) len);
    }

    if (g->names_len + len + 1 > g->names_cap) {
        cap = 2 * g->names_cap + len + 1024;
        p = realloc(g->names, cap);
        if (p == NULL) {
            return slora_err_set(c->err, SLORA_ERROR, "%s: out of memory",
                                 g->path);
        }
        g->names = p;
        g->names_cap = cap;
    }

    /* names move while the buffer grows: t->name holds the name's offset
     * until slora_gguf_index_tensors() makes it a pointer */

    t = &g->tensors[i];
    p = g->names + g->names_len;
    memcpy(p, name, len);
    p[len] = '\0';
    snprintf(c->what, sizeof(c->what), "tensor '%s': ", p);
    t->name = (const char *) (uintptr_t) g->names_len;
    g->names_len += len + 1;

    if (slora_gguf_u32(c, &nd, "tensor dims") != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (nd == 0 || nd > SLORA_TENSOR_MAX_DIMS) {
        return slora_err_set(c->err, SLORA_ERROR, "%s: tensor '%s': %u "
                             "dimensions (1 to %d allowed)", g->path,
                             p, nd, SLORA_TENSOR_MAX_DIMS);
    }

    n_dims = (int) nd;
    n = 1;

    for (d = 0; d < n_dims; d++) {
        if (slora_gguf_u64(c, &ne[d], "tensor dim") != SLORA_OK) {
            return SLORA_ERROR;
        }

        if (ne[d] == 0 || ne[d] > (uint64_t) (INT64_MAX / n)) {
            return slora_err_set(c->err, SLORA_ERROR, "%s: tensor '%s': "
                                 "dim %d is %llu (zero, or the element "
                                 "count overflows)", g->path, p, d,
                                 (unsigned long long) ne[d]);
        }

        n *= (int64_t) ne[d];
    }

    if (slora_gguf_u32(c, &type, "tensor type") != SLORA_OK
        || slora_gguf_u64(c, &off, "tensor offset") != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (slora_gguf_dtype(type, &dt) != SLORA_OK) {
        return slora_err_set(c->err, SLORA_ERROR, "%s: tensor '%s': type id "
                             "%u not supported (F32, F16, BF16, Q8_0, Q4_0, "
                             "Q4_1, I32 are)", g->path, p, type);
    }

    if (slora_dtype_bytes(dt, (int64_t) ne[0], &bytes) != SLORA_OK
        || slora_dtype_bytes(dt, n, &bytes) != SLORA_OK)
    {
        return slora_err_set(c->err, SLORA_ERROR, "%s: tensor '%s': row of "
                             "%llu elements is not whole blocks of %s",
                             g->path, p, (unsigned long long) ne[0],
                             slora_dtype_name(dt));
    }

    t->dtype = dt;
    t->n_dims = n_dims;
    t->n_elems = n;
    t->n_bytes = bytes;

    for (d = 0; d < n_dims; d++) {
        t->dims[d] = (int64_t) ne[n_dims - 1 - d];
    }

    /* the data pointer is set once the data section is known; keep the
     * offset there until then */
    t->data = (const void *) (uintptr_t) off;
    c->what[0] = '\0';

    return SLORA_OK;
}


static int
slora_gguf_index_tensors(slora_gguf_t *g, slora_err_t *err)
{
    int64_t          i;
    slora_tensor_t  *t;

    for (i = 0; i < g->n_tensors; i++) {
        t = &g->tensors[i];
        t->name = g->names + (uintptr_t) t->name;

        if (slora_names_add(&g->tensor_ix, t->name, strlen(t->name), i)
            != SLORA_OK)
        {
            return slora_err_set(err, SLORA_ERROR, "%s: duplicate tensor "
                                 "'%s'", g->path, t->name);
        }
    }

    return SLORA_OK;
}


static int
slora_gguf_set_alignment(slora_gguf_t *g, slora_err_t *err)
{
    int64_t                 i;
    uint32_t                a;
    const slora_gguf_kv_t  *kv;

    g->alignment = SLORA_GGUF_ALIGN;

    i = slora_gguf_find_kv(g, "general.alignment");
    if (i < 0) {
        return SLORA_OK;
    }

    kv = &g->kv[i];

    if (kv->type != SLORA_GGUF_U32) {
        return slora_err_set(err, SLORA_ERROR, "%s: general.alignment has "
                             "type %s, expected u32", g->path,
                             slora_gguf_type_name(kv->type));
    }

    a = slora_gguf_load_u32(kv->val);

    if (a == 0 || (a & (a - 1)) != 0 || a > SLORA_GGUF_MAX_ALIGN) {
        return slora_err_set(err, SLORA_ERROR, "%s: general.alignment %u is "
                             "not a power of two up to 2^30", g->path, a);
    }

    g->alignment = a;

    return SLORA_OK;
}


static int
slora_gguf_check_data(slora_gguf_t *g, slora_err_t *err)
{
    size_t                 start, end;
    int64_t                i, a, b;
    uint64_t               off;
    slora_tensor_t        *t;
    const slora_tensor_t  *ta, *tb;

    for (i = 0; i < g->n_tensors; i++) {
        t = &g->tensors[i];
        off = (uint64_t) (uintptr_t) t->data;

        if (off % g->alignment != 0) {
            return slora_err_set(err, SLORA_ERROR, "%s: tensor '%s': offset "
                                 "%llu not a multiple of the alignment %zu",
                                 g->path, t->name, (unsigned long long) off,
                                 g->alignment);
        }

        if (off > SIZE_MAX - g->data_off
            || slora_add_size(g->data_off + off, t->n_bytes, &end)
               != SLORA_OK)
        {
            return slora_err_set(err, SLORA_ERROR, "%s: tensor '%s': data "
                                 "offset %llu + %zu bytes overflows",
                                 g->path, t->name, (unsigned long long) off,
                                 t->n_bytes);
        }

        start = g->data_off + off;

        if (end > g->size) {
            return slora_err_set(err, SLORA_ERROR, "%s: tensor '%s': data "
                                 "[%zu, %zu) past end of file (size %zu)",
                                 g->path, t->name, start, end, g->size);
        }

        t->data = g->base + g->data_off + off;
    }

    if (slora_tensor_overlap(g->tensors, g->n_tensors, &a, &b) != SLORA_OK) {
        return slora_err_set(err, SLORA_ERROR, "%s: out of memory",
                             g->path);
    }

    if (a >= 0) {
        ta = &g->tensors[a];
        tb = &g->tensors[b];
        start = (size_t) ((const uint8_t *) ta->data - g->base);
        end = (size_t) ((const uint8_t *) tb->data - g->base);

        return slora_err_set(err, SLORA_ERROR, "%s: tensors '%s' and '%s' "
                             "overlap: data [%zu, %zu) and [%zu, %zu)",
                             g->path, ta->name, tb->name, start,
                             start + ta->n_bytes, end, end + tb->n_bytes);
    }

    return SLORA_OK;
}


static int
slora_gguf_dtype(uint32_t type, slora_dtype_e *dt)
{
    switch (type) {
    case 0:
        *dt = SLORA_DT_F32;
        return SLORA_OK;
    case 1:
        *dt = SLORA_DT_F16;
        return SLORA_OK;
    case 2:
        *dt = SLORA_DT_Q4_0;
        return SLORA_OK;
    case 3:
        *dt = SLORA_DT_Q4_1;
        return SLORA_OK;
    case 8:
        *dt = SLORA_DT_Q8_0;
        return SLORA_OK;
    case 26:
        *dt = SLORA_DT_I32;
        return SLORA_OK;
    case 30:
        *dt = SLORA_DT_BF16;
        return SLORA_OK;
    default:
        return SLORA_ERROR;
    }
}


uint32_t
slora_gguf_type_id(slora_dtype_e dt)
{
    static const uint32_t  ids[SLORA_DT_N] = { 0, 1, 30, 8, 2, 3, 26 };

    slora_assert((unsigned) dt < SLORA_DT_N);

    return ids[dt];
}


static int
slora_gguf_need(slora_gguf_cur_t *c, size_t n, const char *what)
{
    if (n > c->size - c->off) {
        return slora_err_set(c->err, SLORA_ERROR, "%s: %struncated: %s at "
                             "offset %zu needs %zu bytes, file size %zu",
                             c->path, c->what, what, c->off, n, c->size);
    }

    return SLORA_OK;
}


static int
slora_gguf_u32(slora_gguf_cur_t *c, uint32_t *v, const char *what)
{
    if (slora_gguf_need(c, 4, what) != SLORA_OK) {
        return SLORA_ERROR;
    }

    *v = slora_gguf_load_u32(c->base + c->off);
    c->off += 4;

    return SLORA_OK;
}


static int
slora_gguf_u64(slora_gguf_cur_t *c, uint64_t *v, const char *what)
{
    if (slora_gguf_need(c, 8, what) != SLORA_OK) {
        return SLORA_ERROR;
    }

    *v = slora_gguf_load_u64(c->base + c->off);
    c->off += 8;

    return SLORA_OK;
}


static int
slora_gguf_string(slora_gguf_cur_t *c, const uint8_t **s, uint64_t *len,
    const char *what)
{
    if (slora_gguf_u64(c, len, what) != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (*len > c->size - c->off) {
        return slora_err_set(c->err, SLORA_ERROR, "%s: %s%s at offset %zu: "
                             "length %llu past end of file (size %zu)",
                             c->path, c->what, what, c->off - 8,
                             (unsigned long long) *len, c->size);
    }

    *s = c->base + c->off;
    c->off += (size_t) *len;

    return SLORA_OK;
}


static uint32_t
slora_gguf_load_u32(const uint8_t *p)
{
    uint32_t  v;

    memcpy(&v, p, 4);
    return v;
}


static uint64_t
slora_gguf_load_u64(const uint8_t *p)
{
    uint64_t  v;

    memcpy(&v, p, 8);
    return v;
}


static const char *
slora_gguf_type_name(slora_gguf_type_e t)
{
    return (unsigned) t < SLORA_GGUF_TYPE_N ? slora_gguf_type_names[t]
                                            : "unknown";
}


const char *
slora_gguf_path(const slora_gguf_t *g)
{
    return g->path;
}


uint32_t
slora_gguf_version(const slora_gguf_t *g)
{
    return g->version;
}


size_t
slora_gguf_alignment(const slora_gguf_t *g)
{
    return g->alignment;
}


int64_t
slora_gguf_n_kv(const slora_gguf_t *g)
{
    return g->n_kv;
}


int64_t
slora_gguf_find_kv(const slora_gguf_t *g, const char *key)
{
    return slora_names_find(&g->kv_ix, key, strlen(key));
}


const char *
slora_gguf_kv_key(const slora_gguf_t *g, int64_t i, size_t *len)
{
    slora_assert(i >= 0 && i < g->n_kv);

    *len = g->kv[i].key_len;
    return g->kv[i].key;
}


slora_gguf_type_e
slora_gguf_kv_type(const slora_gguf_t *g, int64_t i)
{
    slora_assert(i >= 0 && i < g->n_kv);

    return g->kv[i].type;
}


const uint8_t *
slora_gguf_kv_raw(const slora_gguf_t *g, int64_t i, size_t *len)
{
    slora_assert(i >= 0 && i < g->n_kv);

    *len = g->kv[i].raw_len;
    return g->kv[i].raw;
}


static const slora_gguf_kv_t *
slora_gguf_lookup(const slora_gguf_t *g, const char *key, slora_err_t *err)
{
    int64_t  i;

    i = slora_gguf_find_kv(g, key);
    if (i < 0) {
        slora_err_set(err, SLORA_DECLINED, "%s: key '%s' not found", g->path,
                      key);
        return NULL;
    }

    return &g->kv[i];
}


static int
slora_gguf_int(slora_gguf_type_e t, const uint8_t *p, int64_t *s,
    uint64_t *u)
{
    int8_t    i8;
    int16_t   i16;
    int32_t   i32;
    uint16_t  u16;

    /* returns 1 for a signed value in *s, 0 for an unsigned one in *u,
     * -1 for a type that is not an integer */

    switch (t) {
    case SLORA_GGUF_U8:
        *u = p[0];
        return 0;
    case SLORA_GGUF_I8:
        memcpy(&i8, p, 1);
        *s = i8;
        return 1;
    case SLORA_GGUF_U16:
        memcpy(&u16, p, 2);
        *u = u16;
        return 0;
    case SLORA_GGUF_I16:
        memcpy(&i16, p, 2);
        *s = i16;
        return 1;
    case SLORA_GGUF_U32:
        *u = slora_gguf_load_u32(p);
        return 0;
    case SLORA_GGUF_I32:
        memcpy(&i32, p, 4);
        *s = i32;
        return 1;
    case SLORA_GGUF_U64:
        *u = slora_gguf_load_u64(p);
        return 0;
    case SLORA_GGUF_I64:
        memcpy(s, p, 8);
        return 1;
    default:
        return -1;
    }
}


/*
 * The integer under key, of any of GGUF's integer types, into [lo, hi]:
 * SLORA_DECLINED where the key is absent, an error naming the key where
 * its type or value does not do.
 */
static int
slora_gguf_get_int(const slora_gguf_t *g, const char *key, int64_t lo,
    int64_t hi, int64_t *out, slora_err_t *err)
{
    int                     sig;
    int64_t                 s;
    uint64_t                u;
    const slora_gguf_kv_t  *kv;

    kv = slora_gguf_lookup(g, key, err);
    if (kv == NULL) {
        return SLORA_DECLINED;
    }

    sig = slora_gguf_int(kv->type, kv->val, &s, &u);

    if (sig < 0) {
        return slora_err_set(err, SLORA_ERROR, "%s: key '%s' has type %s, "
                             "expected an integer", g->path, key,
                             slora_gguf_type_name(kv->type));
    }

    if (sig == 0) {
        if (u > (uint64_t) hi) {
            return slora_err_set(err, SLORA_ERROR, "%s: key '%s': %llu is "
                                 "over %lld", g->path, key,
                                 (unsigned long long) u, (long long) hi);
        }
        s = (int64_t) u;
    }

    if (s < lo || s > hi) {
        return slora_err_set(err, SLORA_ERROR, "%s: key '%s': %lld is "
                             "outside [%lld, %lld]", g->path, key,
                             (long long) s, (long long) lo, (long long) hi);
    }

    *out = s;

    return SLORA_OK;
}


int
slora_gguf_get_u32(const slora_gguf_t *g, const char *key, uint32_t *out,
    slora_err_t *err)
{
    int      rc;
    int64_t  v;

    rc = slora_gguf_get_int(g, key, 0, UINT32_MAX, &v, err);
    if (rc == SLORA_OK) {
        *out = (uint32_t) v;
    }

    return rc;
}


int
slora_gguf_get_i32(const slora_gguf_t *g, const char *key, int32_t *out,
    slora_err_t *err)
{
    int      rc;
    int64_t  v;

    rc = slora_gguf_get_int(g, key, INT32_MIN, INT32_MAX, &v, err);
    if (rc == SLORA_OK) {
        *out = (int32_t) v;
    }

    return rc;
}


int
slora_gguf_get_f32(const slora_gguf_t *g, const char *key, float *out,
    slora_err_t *err)
{
    double                  d;
    const slora_gguf_kv_t  *kv;

    kv = slora_gguf_lookup(g, key, err);
    if (kv == NULL) {
        return SLORA_DECLINED;
    }

    if (kv->type == SLORA_GGUF_F32) {
        memcpy(out, kv->val, 4);
        return SLORA_OK;
    }

    if (kv->type == SLORA_GGUF_F64) {
        memcpy(&d, kv->val, 8);
        *out = (float) d;
        return SLORA_OK;
    }

    return slora_err_set(err, SLORA_ERROR, "%s: key '%s' has type %s, "
                         "expected f32", g->path, key,
                         slora_gguf_type_name(kv->type));
}


int
slora_gguf_get_bool(const slora_gguf_t *g, const char *key, int *out,
    slora_err_t *err)
{
    const slora_gguf_kv_t  *kv;

    kv = slora_gguf_lookup(g, key, err);
    if (kv == NULL) {
        return SLORA_DECLINED;
    }

    if (kv->type != SLORA_GGUF_BOOL) {
        return slora_err_set(err, SLORA_ERROR, "%s: key '%s' has type %s, "
                             "expected bool", g->path, key,
                             slora_gguf_type_name(kv->type));
    }

    *out = kv->val[0];

    return SLORA_OK;
}


int
slora_gguf_get_str(const slora_gguf_t *g, const char *key, const char **s,
    size_t *len, slora_err_t *err)
{
    const slora_gguf_kv_t  *kv;

    kv = slora_gguf_lookup(g, key, err);
    if (kv == NULL) {
        return SLORA_DECLINED;
    }

    if (kv->type != SLORA_GGUF_STR) {
        return slora_err_set(err, SLORA_ERROR, "%s: key '%s' has type %s, "
                             "expected string", g->path, key,
                             slora_gguf_type_name(kv->type));
    }

    *len = (size_t) slora_gguf_load_u64(kv->val);
    *s = (const char *) kv->val + 8;

    return SLORA_OK;
}


int
slora_gguf_get_cstr(const slora_gguf_t *g, const char *key, char *buf,
    size_t size, slora_err_t *err)
{
    int          rc;
    size_t       len;
    const char  *s;

    rc = slora_gguf_get_str(g, key, &s, &len, err);
    if (rc != SLORA_OK) {
        return rc;
    }

    if (len >= size || memchr(s, '\0', len) != NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: key '%s': string of %zu "
                             "bytes is too long or holds a NUL", g->path, key,
                             len);
    }

    memcpy(buf, s, len);
    buf[len] = '\0';

    return SLORA_OK;
}


int
slora_gguf_get_arr(const slora_gguf_t *g, const char *key,
    slora_gguf_arr_t *a, slora_err_t *err)
{
    const slora_gguf_kv_t  *kv;

    kv = slora_gguf_lookup(g, key, err);
    if (kv == NULL) {
        return SLORA_DECLINED;
    }

    if (kv->type != SLORA_GGUF_ARR) {
        return slora_err_set(err, SLORA_ERROR, "%s: key '%s' has type %s, "
                             "expected array", g->path, key,
                             slora_gguf_type_name(kv->type));
    }

    a->type = kv->arr_type;
    a->n = kv->arr_n;
    a->data = kv->val;
    a->strs = (const uint8_t *const *) kv->strs;

    return SLORA_OK;
}


int
slora_gguf_arr_str(const slora_gguf_arr_t *a, uint64_t i, const char **s,
    size_t *len)
{
    if (a->type != SLORA_GGUF_STR || i >= a->n) {
        return SLORA_ERROR;
    }

    *len = (size_t) slora_gguf_load_u64(a->strs[i]);
    *s = (const char *) a->strs[i] + 8;

    return SLORA_OK;
}


int
slora_gguf_arr_i32(const slora_gguf_arr_t *a, uint64_t i, int32_t *out)
{
    int       sig;
    int64_t   s;
    uint64_t  u;

    if (i >= a->n || a->type == SLORA_GGUF_STR) {
        return SLORA_ERROR;
    }

    sig = slora_gguf_int(a->type, a->data + i * slora_gguf_type_size[a->type],
                         &s, &u);

    if (sig < 0) {
        return SLORA_ERROR;
    }

    if (sig == 0) {
        if (u > INT32_MAX) {
            return SLORA_ERROR;
        }
        s = (int64_t) u;
    }

    if (s < INT32_MIN || s > INT32_MAX) {
        return SLORA_ERROR;
    }

    *out = (int32_t) s;

    return SLORA_OK;
}


int
slora_gguf_arr_f32(const slora_gguf_arr_t *a, uint64_t i, float *out)
{
    double  d;

    if (i >= a->n) {
        return SLORA_ERROR;
    }

    if (a->type == SLORA_GGUF_F32) {
        memcpy(out, a->data + i * 4, 4);
        return SLORA_OK;
    }

    if (a->type == SLORA_GGUF_F64) {
        memcpy(&d, a->data + i * 8, 8);
        *out = (float) d;
        return SLORA_OK;
    }

    return SLORA_ERROR;
}


int64_t
slora_gguf_n_tensors(const slora_gguf_t *g)
{
    return g->n_tensors;
}


const slora_tensor_t *
slora_gguf_tensor(const slora_gguf_t *g, int64_t i)
{
    if (i < 0 || i >= g->n_tensors) {
        return NULL;
    }

    return &g->tensors[i];
}


const slora_tensor_t *
slora_gguf_find_tensor(const slora_gguf_t *g, const char *name)
{
    int64_t  i;

    i = slora_names_find(&g->tensor_ix, name, strlen(name));

    return i < 0 ? NULL : &g->tensors[i];
}
