/*
 * test_gguf.c: the tensor types and the GGUF reader and writer.
 *
 * Conversions are checked against values worked out by hand; quantized
 * blocks are built byte by byte and their expected values computed from
 * the GGML formulas written out here; a file made by the writer is read
 * back field by field; then truncated and corrupted copies must each be
 * refused with an error naming the file, and random corruption must never
 * crash. Last, the real SmolLM2 file must load with its known shape.
 */

#include <stdint.h>
#include <unistd.h>
#include <sys/stat.h>

#include "tap.h"
#include "slora_gguf.h"
#include "slora_model.h"


#define SMOLLM2_DEFAULT  "models/SmolLM2-135M-Instruct.Q4_1.gguf"


static char  tmpdir[256];


static void
put_f16(uint8_t *p, uint16_t h)
{
    memcpy(p, &h, 2);
}


static uint8_t *
read_all(const char *path, size_t *size)
{
    uint8_t  *p;

    p = tap_read_file(path, size);
    if (p == NULL) {
        BAIL_OUT("cannot read %s", path);
    }

    return p;
}


static void
write_all(const char *path, const uint8_t *p, size_t n)
{
    FILE  *f;

    f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        BAIL_OUT("cannot write %s", path);
    }
}


/* Offset of the GGUF string s (u64 length then bytes) in buf, or 0. */
static size_t
find_gguf_str(const uint8_t *buf, size_t size, const char *s)
{
    size_t    i, len;
    uint64_t  n;

    len = strlen(s);
    n = len;

    for (i = 0; i + 8 + len <= size; i++) {
        if (memcmp(buf + i, &n, 8) == 0 && memcmp(buf + i + 8, s, len) == 0) {
            return i;
        }
    }

    return 0;
}


/* Opens a mutated copy from a real file; returns 1 when refused with an
 * error that names the file. */
static int
refused(const char *what, const uint8_t *buf, size_t size)
{
    char           path[512];
    slora_gguf_t  *g;
    slora_err_t    err;

    snprintf(path, sizeof(path), "%s/bad-%s.gguf", tmpdir, what);
    write_all(path, buf, size);

    err.msg[0] = '\0';
    g = slora_gguf_open(path, &err);

    if (g != NULL) {
        slora_gguf_close(g);
        diag("%s: opened, should be refused", what);
        return 0;
    }

    if (strstr(err.msg, path) == NULL) {
        diag("%s: error does not name the file: %s", what, err.msg);
        return 0;
    }

    diag("%s", err.msg);
    unlink(path);

    return 1;
}


static void
test_conversions(void)
{
    int       bad;
    uint32_t  h, bits;
    float     f;

    is_int(slora_f32_to_f16(1.0f), 0x3c00, "f16(1) = 0x3c00");
    is_int(slora_f32_to_f16(-2.0f), 0xc000, "f16(-2) = 0xc000");
    is_int(slora_f32_to_f16(65504.0f), 0x7bff, "f16(65504) = max");
    is_int(slora_f32_to_f16(65520.0f), 0x7c00, "f16(65520) rounds to inf");
    is_int(slora_f32_to_f16(0x1p-24f), 0x0001, "f16 smallest subnormal");
    is_int(slora_f32_to_f16(0x1p-25f), 0x0000, "2^-25 ties to even zero");
    is_int(slora_f32_to_f16(0x1.8p-25f), 0x0001, "1.5 * 2^-25 rounds up");
    is_int(slora_f32_to_f16(1.0f + 0x1p-11f), 0x3c00,
           "1 + half an ulp ties to even (down)");
    is_int(slora_f32_to_f16(1.0f + 0x3p-11f), 0x3c02,
           "1 + 1.5 ulp ties to even (up)");
    is_int(slora_f32_to_f16(0x1.ffcp-15f), 0x0400,
           "largest subnormal + rounding carries into the smallest normal");
    is_int(slora_f32_to_f16(-INFINITY), 0xfc00, "f16(-inf)");
    ok((slora_f32_to_f16(NAN) & 0x7c00) == 0x7c00
       && (slora_f32_to_f16(NAN) & 0x3ff) != 0, "f16(nan) is a NaN");

    ok(slora_f16_to_f32(0x3555) == 0x1.554p-2f, "f16 0x3555 = 0.333");
    ok(slora_f16_to_f32(0x8001) == -0x1p-24f, "f16 negative subnormal");
    ok(isinf(slora_f16_to_f32(0x7c00)), "f16 inf");
    ok(isnan(slora_f16_to_f32(0x7e00)), "f16 nan");

    bad = 0;
    for (h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0) {
            continue;
        }
        if (slora_f32_to_f16(slora_f16_to_f32((uint16_t) h)) != h) {
            bad++;
        }
    }
    is_int(bad, 0, "every non-NaN f16 survives f16 -> f32 -> f16");

    is_int(slora_f32_to_bf16(1.0f), 0x3f80, "bf16(1) = 0x3f80");
    bits = 0x3f808000;
    memcpy(&f, &bits, 4);
    is_int(slora_f32_to_bf16(f), 0x3f80, "bf16 tie rounds to even (down)");
    bits = 0x3f818000;
    memcpy(&f, &bits, 4);
    is_int(slora_f32_to_bf16(f), 0x3f82, "bf16 tie rounds to even (up)");
    bits = 0x3f808001;
    memcpy(&f, &bits, 4);
    is_int(slora_f32_to_bf16(f), 0x3f81, "bf16 above the tie rounds up");
    ok(isnan(slora_bf16_to_f32(slora_f32_to_bf16(NAN))), "bf16 keeps NaN");
    is_int(slora_f32_to_bf16(-NAN), 0x7fff,
           "bf16 of any NaN is the canonical 0x7fff, as on the device");
    ok(slora_bf16_to_f32(0xc040) == -3.0f, "bf16 0xc040 = -3");
}


static void
test_dtype_sizes(void)
{
    size_t  n;

    ok(slora_dtype_bytes(SLORA_DT_Q8_0, 64, &n) == SLORA_OK && n == 68,
       "Q8_0: 64 elements in 68 bytes");
    ok(slora_dtype_bytes(SLORA_DT_Q4_0, 64, &n) == SLORA_OK && n == 36,
       "Q4_0: 64 elements in 36 bytes");
    ok(slora_dtype_bytes(SLORA_DT_Q4_1, 32, &n) == SLORA_OK && n == 20,
       "Q4_1: 32 elements in 20 bytes");
    ok(slora_dtype_bytes(SLORA_DT_BF16, 3, &n) == SLORA_OK && n == 6,
       "BF16: 3 elements in 6 bytes");
    ok(slora_dtype_bytes(SLORA_DT_Q4_0, 48, &n) == SLORA_ERROR,
       "Q4_0: 48 elements is not whole blocks");
    ok(slora_dtype_bytes(SLORA_DT_F32, INT64_MAX, &n) == SLORA_ERROR,
       "F32: byte count overflow refused");
    is_str(slora_dtype_name(SLORA_DT_Q4_1), "Q4_1", "dtype name");
}


/* The test tensors: raw bytes and the values they must decode to. */
typedef struct {
    const char     *name;
    slora_dtype_e   dt;
    int             n_dims;
    int64_t         dims[4];
    uint8_t         raw[256];
    float           want[128];
} test_tensor_t;


static int
make_tensors(test_tensor_t *t)
{
    int       i, j, b;
    float     d, m;
    uint16_t  h;
    int32_t   v;

    memset(t, 0, 8 * sizeof(test_tensor_t));

    /* F32 [3, 5] */
    t[0].name = "f32.weight";
    t[0].dt = SLORA_DT_F32;
    t[0].n_dims = 2;
    t[0].dims[0] = 3;
    t[0].dims[1] = 5;
    for (i = 0; i < 15; i++) {
        t[0].want[i] = (float) i * 0.25f - 1.0f;
        memcpy(t[0].raw + 4 * i, &t[0].want[i], 4);
    }

    /* F16 [4, 8]: values k / 64 - 0.25 are exact in f16 */
    t[1].name = "f16.weight";
    t[1].dt = SLORA_DT_F16;
    t[1].n_dims = 2;
    t[1].dims[0] = 4;
    t[1].dims[1] = 8;
    for (i = 0; i < 32; i++) {
        t[1].want[i] = (float) i / 64.0f - 0.25f;
        h = slora_f32_to_f16(t[1].want[i]);
        put_f16(t[1].raw + 2 * i, h);
    }

    /* BF16 [2, 4]: bf16 0x4000 + i is 2 + i/64 */
    t[2].name = "bf16.weight";
    t[2].dt = SLORA_DT_BF16;
    t[2].n_dims = 2;
    t[2].dims[0] = 2;
    t[2].dims[1] = 4;
    for (i = 0; i < 8; i++) {
        h = (uint16_t) (0x4000 + i);
        put_f16(t[2].raw + 2 * i, h);
        t[2].want[i] = 2.0f + (float) i / 64.0f;
    }

    /* Q8_0 [2, 32]: block b has d = 0.5 (b = 0) or 0.125 (b = 1),
     * q_j = j - 16 (b = 0) or 3 * (15 - j) (b = 1) */
    t[3].name = "q8_0.weight";
    t[3].dt = SLORA_DT_Q8_0;
    t[3].n_dims = 2;
    t[3].dims[0] = 2;
    t[3].dims[1] = 32;
    for (b = 0; b < 2; b++) {
        d = b == 0 ? 0.5f : 0.125f;
        put_f16(t[3].raw + 34 * b, b == 0 ? 0x3800 : 0x3000);
        for (j = 0; j < 32; j++) {
            v = b == 0 ? j - 16 : 3 * (15 - j);
            t[3].raw[34 * b + 2 + j] = (uint8_t) (int8_t) v;
            t[3].want[32 * b + j] = (float) v * d;
        }
    }

    /* Q4_0 [1, 64]: byte j of block b holds q = j (low) and 15 - j (high);
     * element j is (lo - 8) * d, element j + 16 is (hi - 8) * d */
    t[4].name = "q4_0.weight";
    t[4].dt = SLORA_DT_Q4_0;
    t[4].n_dims = 2;
    t[4].dims[0] = 1;
    t[4].dims[1] = 64;
    for (b = 0; b < 2; b++) {
        d = b == 0 ? 0.25f : -1.0f;
        put_f16(t[4].raw + 18 * b, b == 0 ? 0x3400 : 0xbc00);
        for (j = 0; j < 16; j++) {
            t[4].raw[18 * b + 2 + j] = (uint8_t) (j | ((15 - j) << 4));
            t[4].want[32 * b + j] = (float) (j - 8) * d;
            t[4].want[32 * b + 16 + j] = (float) (15 - j - 8) * d;
        }
    }

    /* Q4_1 [2, 32]: d = 2 or 0.5, m = -1.5 or 3; value q * d + m */
    t[5].name = "q4_1.weight";
    t[5].dt = SLORA_DT_Q4_1;
    t[5].n_dims = 2;
    t[5].dims[0] = 2;
    t[5].dims[1] = 32;
    for (b = 0; b < 2; b++) {
        d = b == 0 ? 2.0f : 0.5f;
        m = b == 0 ? -1.5f : 3.0f;
        put_f16(t[5].raw + 20 * b, b == 0 ? 0x4000 : 0x3800);
        put_f16(t[5].raw + 20 * b + 2, b == 0 ? 0xbe00 : 0x4200);
        for (j = 0; j < 16; j++) {
            t[5].raw[20 * b + 4 + j] = (uint8_t) ((j * 7 % 16)
                                                  | ((j * 5 % 16) << 4));
            t[5].want[32 * b + j] = (float) (j * 7 % 16) * d + m;
            t[5].want[32 * b + 16 + j] = (float) (j * 5 % 16) * d + m;
        }
    }

    /* I32 [5] */
    t[6].name = "i32.ids";
    t[6].dt = SLORA_DT_I32;
    t[6].n_dims = 1;
    t[6].dims[0] = 5;
    for (i = 0; i < 5; i++) {
        v = (i - 2) * 1000;
        memcpy(t[6].raw + 4 * i, &v, 4);
        t[6].want[i] = (float) v;
    }

    /* F32 [2, 3, 4] */
    t[7].name = "blk.0.three_d";
    t[7].dt = SLORA_DT_F32;
    t[7].n_dims = 3;
    t[7].dims[0] = 2;
    t[7].dims[1] = 3;
    t[7].dims[2] = 4;
    for (i = 0; i < 24; i++) {
        t[7].want[i] = (float) (i * i) - 7.5f;
        memcpy(t[7].raw + 4 * i, &t[7].want[i], 4);
    }

    return 8;
}


static const char  *str_arr[] = { "hello", "", "\xc4\xa0world", "<|im_end|>" };
static const int32_t  i32_arr[] = { 1, -2, 3, 2147483647, -2147483647 - 1 };
static const float  f32_arr[] = { 0.5f, -1.25f, 1e-30f };


static void
write_test_file(const char *path, test_tensor_t *t, int n, uint32_t align)
{
    int                   i;
    slora_err_t           err;
    slora_gguf_writer_t  *w;

    w = slora_gguf_writer_new();

    if (slora_gguf_writer_str(w, "general.architecture", "llama", &err)
        || slora_gguf_writer_u32(w, "test.u32", 4000000000u, &err)
        || slora_gguf_writer_i32(w, "test.i32", -7, &err)
        || slora_gguf_writer_f32(w, "test.f32", 0.1f, &err)
        || slora_gguf_writer_bool(w, "test.bool", 1, &err)
        || slora_gguf_writer_str_arr(w, "test.strs", str_arr, 4, &err)
        || slora_gguf_writer_i32_arr(w, "test.i32s", i32_arr, 5, &err)
        || slora_gguf_writer_f32_arr(w, "test.f32s", f32_arr, 3, &err)
        || (align && slora_gguf_writer_u32(w, "general.alignment", align,
                                           &err)))
    {
        BAIL_OUT("writer: %s", err.msg);
    }

    for (i = 0; i < n; i++) {
        if (slora_gguf_writer_tensor(w, t[i].name, t[i].dt, t[i].n_dims,
                                     t[i].dims, t[i].raw, &err))
        {
            BAIL_OUT("writer: %s", err.msg);
        }
    }

    ok(slora_gguf_writer_str(w, "test.u32", "again", &err) == SLORA_ERROR,
       "writer refuses a duplicate key");
    ok(slora_gguf_writer_tensor(w, t[0].name, t[0].dt, t[0].n_dims,
                                t[0].dims, t[0].raw, &err) == SLORA_ERROR,
       "writer refuses a duplicate tensor");

    if (slora_gguf_writer_write(w, path, &err)) {
        BAIL_OUT("writer: %s", err.msg);
    }

    slora_gguf_writer_free(w);
}


static void
test_round_trip(const char *path, test_tensor_t *t, int n)
{
    int                    i, d, same;
    char                   buf[8];
    float                  f, out[128];
    size_t                 len;
    int32_t                i32;
    uint32_t               u32;
    uint64_t               k;
    const char            *s;
    slora_err_t            err;
    slora_gguf_t          *g;
    slora_gguf_arr_t       a;
    const slora_tensor_t  *tt;

    g = slora_gguf_open(path, &err);
    if (g == NULL) {
        BAIL_OUT("open %s: %s", path, err.msg);
    }

    is_int(slora_gguf_version(g), 3, "version 3");
    is_int(slora_gguf_n_kv(g), 8, "8 metadata entries");
    is_int(slora_gguf_n_tensors(g), n, "%d tensors", n);
    is_int(slora_gguf_alignment(g), 32, "default alignment 32");

    ok(slora_gguf_get_str(g, "general.architecture", &s, &len, &err) == 0
       && len == 5 && memcmp(s, "llama", 5) == 0, "string value");
    ok(slora_gguf_get_u32(g, "test.u32", &u32, &err) == 0
       && u32 == 4000000000u, "u32 value");
    ok(slora_gguf_get_i32(g, "test.u32", &i32, &err) == SLORA_ERROR,
       "u32 4e9 does not fit i32");
    ok(slora_gguf_get_i32(g, "test.i32", &i32, &err) == 0 && i32 == -7,
       "i32 value");
    ok(slora_gguf_get_u32(g, "test.i32", &u32, &err) == SLORA_ERROR
       && strstr(err.msg, "test.i32") != NULL,
       "negative i32 refused as u32, error names the key");
    ok(slora_gguf_get_f32(g, "test.f32", &f, &err) == 0 && f == 0.1f,
       "f32 value");
    ok(slora_gguf_get_f32(g, "general.architecture", &f, &err)
       == SLORA_ERROR && strstr(err.msg, path) != NULL,
       "string refused as f32, error names the file");
    ok(slora_gguf_get_bool(g, "test.bool", &i, &err) == 0 && i == 1,
       "bool value");
    ok(slora_gguf_get_u32(g, "no.such.key", &u32, &err) == SLORA_DECLINED
       && strstr(err.msg, "no.such.key") != NULL, "absent key: DECLINED");
    ok(slora_gguf_get_cstr(g, "general.architecture", buf, 5, &err)
       == SLORA_ERROR, "cstr that does not fit refused");

    ok(slora_gguf_get_arr(g, "test.strs", &a, &err) == 0
       && a.type == SLORA_GGUF_STR && a.n == 4, "string array: 4 elements");
    same = 1;
    for (k = 0; k < 4; k++) {
        same &= slora_gguf_arr_str(&a, k, &s, &len) == 0
                && len == strlen(str_arr[k])
                && memcmp(s, str_arr[k], len) == 0;
    }
    ok(same, "string array elements round-trip");
    ok(slora_gguf_arr_str(&a, 4, &s, &len) == SLORA_ERROR,
       "string array index 4 out of range");
    ok(slora_gguf_arr_i32(&a, 0, &i32) == SLORA_ERROR,
       "string array refuses i32 access");

    ok(slora_gguf_get_arr(g, "test.i32s", &a, &err) == 0 && a.n == 5,
       "i32 array");
    same = 1;
    for (k = 0; k < 5; k++) {
        same &= slora_gguf_arr_i32(&a, k, &i32) == 0 && i32 == i32_arr[k];
    }
    ok(same, "i32 array elements round-trip");

    ok(slora_gguf_get_arr(g, "test.f32s", &a, &err) == 0 && a.n == 3,
       "f32 array");
    same = 1;
    for (k = 0; k < 3; k++) {
        same &= slora_gguf_arr_f32(&a, k, &f) == 0 && f == f32_arr[k];
    }
    ok(same, "f32 array elements round-trip");
    ok(slora_gguf_get_arr(g, "test.u32", &a, &err) == SLORA_ERROR,
       "a scalar is not an array");

    for (i = 0; i < n; i++) {
        tt = slora_gguf_find_tensor(g, t[i].name);
        if (!ok(tt != NULL, "tensor %s found", t[i].name)) {
            continue;
        }

        same = tt->dtype == t[i].dt && tt->n_dims == t[i].n_dims;
        for (d = 0; d < t[i].n_dims; d++) {
            same &= tt->dims[d] == t[i].dims[d];
        }
        ok(same, "%s: dtype %s and dims outermost first", t[i].name,
           slora_dtype_name(tt->dtype));
        ok(((uintptr_t) tt->data) % 32 == 0, "%s: data aligned to 32",
           t[i].name);

        memset(out, 0, sizeof(out));
        ok(slora_tensor_to_f32(tt, out, &err) == 0
           && memcmp(out, t[i].want, (size_t) tt->n_elems * 4) == 0,
           "%s: %lld values dequantize exactly", t[i].name,
           (long long) tt->n_elems);
    }

    ok(slora_gguf_find_tensor(g, "f32.weigh") == NULL, "no prefix match");
    ok(slora_gguf_tensor(g, n) == NULL && slora_gguf_tensor(g, 0) != NULL,
       "tensor by index");

    slora_gguf_close(g);
}


static void
put_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}


static void
put_u64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}


static void
test_corrupt(const char *path)
{
    int            bad, good, i;
    char           name[64];
    size_t         size, len, o, ti;
    uint8_t       *orig, *buf;
    uint32_t       nd;
    slora_err_t    err;
    slora_gguf_t  *g;
    float         *tmp;

    orig = read_all(path, &size);
    buf = malloc(size);

    /* every truncation, from memory; every 61st also from a file */
    bad = 0;
    for (len = 0; len < size; len++) {
        g = slora_gguf_open_mem(orig, len, "trunc.gguf", &err);
        if (g != NULL || strstr(err.msg, "trunc.gguf") == NULL) {
            bad++;
            slora_gguf_close(g);
        }
    }
    is_int(bad, 0, "all %zu truncations refused, naming the file", size);

    bad = 0;
    for (len = 1; len < size; len += 61) {
        snprintf(name, sizeof(name), "trunc%zu", len);
        if (!refused(name, orig, len)) {
            bad++;
        }
    }
    is_int(bad, 0, "truncated files refused, naming the file");

    memcpy(buf, orig, size);
    buf[0] = 'G'; buf[1] = 'G'; buf[2] = 'M'; buf[3] = 'L';
    ok(refused("magic", buf, size), "bad magic");

    memcpy(buf, orig, size);
    put_u32(buf + 4, 1);
    ok(refused("version1", buf, size), "version 1");

    put_u32(buf + 4, 4);
    ok(refused("version4", buf, size), "version 4");

    put_u32(buf + 4, 0x03000000);
    ok(refused("bigendian", buf, size), "big-endian version");

    memcpy(buf, orig, size);
    put_u64(buf + 8, 1ULL << 40);
    ok(refused("ntensors", buf, size), "huge tensor count");

    memcpy(buf, orig, size);
    put_u64(buf + 16, UINT64_MAX);
    ok(refused("nkv", buf, size), "huge metadata count");

    memcpy(buf, orig, size);
    put_u64(buf + 24, 1ULL << 62);
    ok(refused("keylen", buf, size), "huge key length");

    memcpy(buf, orig, size);
    o = find_gguf_str(buf, size, "general.architecture");
    put_u32(buf + o + 8 + 20, 13);
    ok(refused("kvtype", buf, size), "unknown metadata type 13");

    memcpy(buf, orig, size);
    o = find_gguf_str(buf, size, "test.bool");
    buf[o + 8 + 9 + 4] = 2;
    ok(refused("boolval", buf, size), "bool value 2");

    memcpy(buf, orig, size);
    o = find_gguf_str(buf, size, "test.i32s");
    put_u32(buf + o + 8 + 9 + 4, SLORA_GGUF_ARR);
    ok(refused("nested", buf, size), "array of arrays");

    memcpy(buf, orig, size);
    put_u64(buf + o + 8 + 9 + 8, 1ULL << 61);
    ok(refused("arrlen", buf, size), "huge array length");

    memcpy(buf, orig, size);
    o = find_gguf_str(buf, size, "test.strs");
    put_u64(buf + o + 8 + 9 + 16, 1ULL << 50);
    ok(refused("arrstr", buf, size), "huge string inside an array");

    memcpy(buf, orig, size);
    o = find_gguf_str(buf, size, "test.i32");
    memcpy(buf + o + 8, "test.u32", 8);
    ok(refused("dupkey", buf, size), "duplicate key");

    /* tensor infos: name, u32 n_dims, u64 ne[n_dims], u32 type, u64 off */
    ti = find_gguf_str(orig, size, "f16.weight") + 8 + 10;
    nd = 2;

    memcpy(buf, orig, size);
    put_u64(buf + ti + 4 + 8 * nd + 4, (uint64_t) size);
    ok(refused("offset", buf, size), "tensor offset past end of file");

    memcpy(buf, orig, size);
    put_u64(buf + ti + 4 + 8 * nd + 4, 1ULL << 63);
    ok(refused("offsetovf", buf, size), "tensor offset near 2^64");

    memcpy(buf, orig, size);
    put_u64(buf + ti + 4 + 8 * nd + 4, 0x24);
    ok(refused("misaligned", buf, size), "tensor offset not aligned");

    /* f32.weight's 60 bytes are at offset 0 of the data */
    memcpy(buf, orig, size);
    put_u64(buf + ti + 4 + 8 * nd + 4, 32);
    g = slora_gguf_open_mem(buf, size, "overlap.gguf", &err);
    ok(g == NULL && strstr(err.msg, "overlap.gguf: tensors 'f32.weight' "
                           "and 'f16.weight' overlap") != NULL,
       "tensor data overlapping another's refused, naming both: %s",
       g ? "opened" : err.msg);
    slora_gguf_close(g);

    put_u64(buf + ti + 4 + 8 * nd + 4, 0);
    ok(refused("alias", buf, size), "two tensors at the same offset");

    memcpy(buf, orig, size);
    put_u32(buf + ti + 4 + 8 * nd, 12);
    ok(refused("typeQ4K", buf, size), "type id 12 (Q4_K) unsupported");

    put_u32(buf + ti + 4 + 8 * nd, 99);
    ok(refused("type99", buf, size), "type id 99 unknown");

    memcpy(buf, orig, size);
    put_u32(buf + ti, 0);
    ok(refused("ndims0", buf, size), "zero dims");

    put_u32(buf + ti, 5);
    ok(refused("ndims5", buf, size), "five dims");

    memcpy(buf, orig, size);
    put_u64(buf + ti + 4, 0);
    ok(refused("dim0", buf, size), "a dim of zero");

    memcpy(buf, orig, size);
    put_u64(buf + ti + 4, 1ULL << 40);
    put_u64(buf + ti + 12, 1ULL << 40);
    ok(refused("dimovf", buf, size), "element count overflow");

    memcpy(buf, orig, size);
    put_u64(buf + ti + 4, 1ULL << 20);
    ok(refused("datalen", buf, size), "tensor data past end of file");

    memcpy(buf, orig, size);
    o = find_gguf_str(buf, size, "q4_0.weight") + 8 + 11;
    put_u64(buf + o + 4, 48);
    ok(refused("blocks", buf, size), "Q4_0 row of 48 is not whole blocks");

    memcpy(buf, orig, size);
    o = find_gguf_str(buf, size, "f16.weight");
    memcpy(buf + o + 8, "f32.weight", 10);
    ok(refused("duptensor", buf, size), "duplicate tensor name");

    /* random corruption: refused with the name, or opened and readable */
    srand(7);
    bad = good = 0;
    tmp = malloc(128 * sizeof(float));
    for (i = 0; i < 3000; i++) {
        memcpy(buf, orig, size);
        buf[rand() % size] ^= (uint8_t) (1 + rand() % 255);
        if (i % 2) {
            buf[rand() % 64] ^= (uint8_t) (1 + rand() % 255);
        }

        g = slora_gguf_open_mem(buf, size, "flip.gguf", &err);
        if (g == NULL) {
            bad += strstr(err.msg, "flip.gguf") == NULL;
            continue;
        }

        good++;
        for (o = 0; o < (size_t) slora_gguf_n_tensors(g); o++) {
            const slora_tensor_t  *t = slora_gguf_tensor(g, (int64_t) o);

            if (t->n_elems <= 128) {
                slora_tensor_to_f32(t, tmp, &err);
            }
        }
        slora_gguf_close(g);
    }
    free(tmp);
    is_int(bad, 0, "3000 random corruptions: every refusal names the file "
           "(%d still opened)", good);

    free(orig);
    free(buf);
}


static void
test_alignment(test_tensor_t *t, int n)
{
    int                    i, aligned;
    char                   path[512];
    slora_err_t            err;
    slora_gguf_t          *g;
    uint8_t               *buf;
    size_t                 size, o;

    snprintf(path, sizeof(path), "%s/align.gguf", tmpdir);
    write_test_file(path, t, n, 256);

    g = slora_gguf_open(path, &err);
    if (!ok(g != NULL, "alignment 256 file opens")) {
        diag("%s", err.msg);
        return;
    }

    is_int(slora_gguf_alignment(g), 256, "general.alignment read");
    aligned = 1;
    for (i = 0; i < n; i++) {
        aligned &= ((uintptr_t) slora_gguf_tensor(g, i)->data) % 256 == 0;
    }
    ok(aligned, "every tensor's data 256-aligned");
    slora_gguf_close(g);

    buf = read_all(path, &size);
    o = find_gguf_str(buf, size, "general.alignment");
    put_u32(buf + o + 8 + 17 + 4, 48);
    ok(refused("align48", buf, size), "general.alignment 48 refused");
    put_u32(buf + o + 8 + 17, SLORA_GGUF_I32);
    put_u32(buf + o + 8 + 17 + 4, 256);
    ok(refused("aligntype", buf, size), "general.alignment as i32 refused");
    free(buf);
}


static void
test_smollm2(void)
{
    int                    n_q41, n_q80, n_f32, i, same;
    float                  d;
    int64_t                k;
    const char            *path;
    slora_err_t            err;
    slora_model_t         *m;
    slora_gguf_arr_t       a;
    const slora_tensor_t  *t;
    const uint8_t         *blk;
    uint16_t               h;

    path = getenv("SLORA_SMOLLM2");
    if (path == NULL) {
        path = SMOLLM2_DEFAULT;
    }

    if (access(path, R_OK) != 0) {
        BAIL_OUT("%s missing: run tools/fetch-model", path);
    }

    m = slora_model_load(path, &err);
    if (m == NULL) {
        BAIL_OUT("%s: %s", path, err.msg);
    }

    is_str(m->cfg.arch, "llama", "SmolLM2: llama");
    is_int(m->cfg.n_layers, 30, "SmolLM2: 30 layers");
    is_int(m->cfg.hidden, 576, "SmolLM2: hidden 576");
    is_int(m->cfg.n_heads, 9, "SmolLM2: 9 heads");
    is_int(m->cfg.n_kv_heads, 3, "SmolLM2: 3 kv heads");
    is_int(m->cfg.head_dim, 64, "SmolLM2: head size 64");
    is_int(m->cfg.ffn, 1536, "SmolLM2: ffn 1536");
    is_int(m->cfg.vocab, 49152, "SmolLM2: vocab 49152");
    ok(m->cfg.tied_embeddings && m->w.output == m->w.tok_embd,
       "SmolLM2: tied embeddings");
    ok(m->cfg.rope_theta == 100000.0f, "SmolLM2: rope theta 100000");
    is_int(m->cfg.rope, SLORA_ROPE_NORM, "SmolLM2: NORM rope (GGUF llama)");
    is_int(m->cfg.qkv_bias, 0, "SmolLM2: no qkv bias");
    ok(m->cfg.norm_eps > 0 && m->cfg.norm_eps < 1e-4f, "SmolLM2: rms eps");
    ok(m->gguf != NULL, "SmolLM2: GGUF kept open for the tokenizer");

    n_q41 = n_q80 = n_f32 = 0;
    for (k = 0; k < slora_gguf_n_tensors(m->gguf); k++) {
        t = slora_gguf_tensor(m->gguf, k);
        n_q41 += t->dtype == SLORA_DT_Q4_1;
        n_q80 += t->dtype == SLORA_DT_Q8_0;
        n_f32 += t->dtype == SLORA_DT_F32;
    }
    is_int(slora_gguf_n_tensors(m->gguf), 272, "SmolLM2: 272 tensors");
    ok(n_q41 > 0 && n_q80 > 0 && n_f32 > 0,
       "SmolLM2: Q4_1 (%d), Q8_0 (%d) and F32 (%d) tensors", n_q41, n_q80,
       n_f32);

    ok(slora_gguf_get_arr(m->gguf, "tokenizer.ggml.tokens", &a, &err) == 0
       && a.type == SLORA_GGUF_STR && a.n == 49152,
       "SmolLM2: 49152 tokens in the tokenizer metadata");

    /* the first block of token_embd decoded from the raw bytes here */
    t = slora_gguf_find_tensor(m->gguf, "token_embd.weight");
    blk = t->data;
    same = t->dtype == SLORA_DT_Q8_0 || t->dtype == SLORA_DT_Q4_1;
    if (t->dtype == SLORA_DT_Q8_0) {
        memcpy(&h, blk, 2);
        d = slora_f16_to_f32(h);
        for (i = 0; i < 32; i++) {
            same &= m->w.tok_embd[i] == (float) (int8_t) blk[2 + i] * d;
        }
    }
    ok(same, "SmolLM2: token_embd (%s) block 0 decodes by hand",
       slora_dtype_name(t->dtype));

    same = 1;
    for (i = 0; i < m->cfg.hidden; i++) {
        same &= isfinite(m->w.layers[29].w_down[i])
                && isfinite(m->w.out_norm[i]);
    }
    ok(same && m->w.out_norm[0] != 0, "SmolLM2: last weights finite");

    slora_model_free(m);
}


int
main(void)
{
    int            n;
    char           path[512];
    test_tensor_t  t[8];

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/slora-test-gguf-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    test_conversions();
    test_dtype_sizes();

    n = make_tensors(t);
    snprintf(path, sizeof(path), "%s/rt.gguf", tmpdir);
    write_test_file(path, t, n, 0);
    test_round_trip(path, t, n);
    test_corrupt(path);
    test_alignment(t, n);

    unlink(path);
    snprintf(path, sizeof(path), "%s/align.gguf", tmpdir);
    unlink(path);
    rmdir(tmpdir);

    test_smollm2();

    return done_testing();
}
