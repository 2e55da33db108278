/*
 * test_safetensors.c: the safetensors reader, folder reader and writer.
 *
 * A file made by the writer is read back value by value; files written
 * by hand here with one fault each (dtype, shape, offsets, JSON, lengths)
 * must be refused with an error naming the file; every truncation and
 * random corruption must be refused or read safely; a sharded folder with
 * an index resolves each name to its shard, and a bad index is refused.
 */

#include <stdint.h>
#include <unistd.h>
#include <sys/stat.h>

#include "tap.h"
#include "slora_safetensors.h"


static char  tmpdir[64];
static char  hdr_err[SLORA_ERR_LEN];          /* refused_hdr's last error */


static void
write_all(const char *path, const void *p, size_t n)
{
    FILE  *f;

    f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        BAIL_OUT("cannot write %s", path);
    }
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


/* Writes an 8-byte length, the header as given, and data_len bytes. */
static void
write_raw(const char *path, const char *header, size_t data_len)
{
    FILE      *f;
    uint64_t   n;
    size_t     i;

    n = strlen(header);
    f = fopen(path, "wb");
    if (f == NULL) {
        BAIL_OUT("cannot write %s", path);
    }
    fwrite(&n, 8, 1, f);
    fwrite(header, 1, n, f);
    for (i = 0; i < data_len; i++) {
        fputc((int) (i * 37 & 0xff), f);
    }
    fclose(f);
}


/* 1 when the hand-written file is refused with an error naming it. */
static int
refused_hdr(const char *what, const char *header, size_t data_len)
{
    char                  path[512];
    slora_err_t           err;
    slora_safetensors_t  *st;

    snprintf(path, sizeof(path), "%s/%s.safetensors", tmpdir, what);
    write_raw(path, header, data_len);

    err.msg[0] = '\0';
    st = slora_safetensors_open(path, &err);
    unlink(path);

    if (st != NULL) {
        slora_safetensors_close(st);
        diag("%s: opened, should be refused", what);
        return 0;
    }

    diag("%s", err.msg);
    snprintf(hdr_err, sizeof(hdr_err), "%s", err.msg);

    return strstr(err.msg, path) != NULL;
}


/* 1 when the hand-written file opens. */
static int
opens_hdr(const char *what, const char *header, size_t data_len)
{
    char                  path[512];
    slora_err_t           err;
    slora_safetensors_t  *st;

    snprintf(path, sizeof(path), "%s/%s.safetensors", tmpdir, what);
    write_raw(path, header, data_len);

    st = slora_safetensors_open(path, &err);
    unlink(path);

    if (st == NULL) {
        diag("%s", err.msg);
        return 0;
    }

    slora_safetensors_close(st);

    return 1;
}


static void
test_round_trip(void)
{
    int                          i, same;
    char                         path[512];
    float                        f32[6], out[16];
    size_t                       size;
    int32_t                      i32[3];
    uint8_t                     *buf;
    uint16_t                     f16[4], bf16[4];
    uint64_t                     hlen;
    slora_err_t                  err;
    slora_safetensors_t         *st;
    slora_safetensors_writer_t  *w;
    const slora_tensor_t        *t;
    int64_t                      d23[2] = { 2, 3 }, d4[1] = { 4 },
                                 d22[2] = { 2, 2 }, d3[1] = { 3 },
                                 d04[2] = { 0, 4 };

    for (i = 0; i < 6; i++) {
        f32[i] = (float) i * 1.5f - 2.0f;
    }
    for (i = 0; i < 4; i++) {
        f16[i] = slora_f32_to_f16((float) i * 0.5f - 1.0f);
        bf16[i] = slora_f32_to_bf16((float) i * 4.0f + 0.5f);
    }
    i32[0] = -5;
    i32[1] = 0;
    i32[2] = 123456;

    w = slora_safetensors_writer_new();
    if (slora_safetensors_writer_tensor(w, "a.f32", SLORA_DT_F32, 2, d23,
                                        f32, &err)
        || slora_safetensors_writer_tensor(w, "b.f16", SLORA_DT_F16, 1, d4,
                                           f16, &err)
        || slora_safetensors_writer_tensor(w, "empty", SLORA_DT_F32, 2, d04,
                                           f32, &err)
        || slora_safetensors_writer_tensor(w, "c.bf16", SLORA_DT_BF16, 2,
                                           d22, bf16, &err)
        || slora_safetensors_writer_tensor(w, "scalar", SLORA_DT_F32, 0, NULL,
                                           f32 + 5, &err)
        || slora_safetensors_writer_tensor(w, "d.i32", SLORA_DT_I32, 1, d3,
                                           i32, &err))
    {
        BAIL_OUT("writer: %s", err.msg);
    }

    ok(slora_safetensors_writer_tensor(w, "q", SLORA_DT_Q4_0, 1, d4, f32,
                                       &err) == SLORA_ERROR,
       "writer refuses Q4_0");
    ok(slora_safetensors_writer_tensor(w, "a.f32", SLORA_DT_F32, 1, d4, f32,
                                       &err) == SLORA_ERROR,
       "writer refuses a duplicate name");

    snprintf(path, sizeof(path), "%s/rt.safetensors", tmpdir);
    if (slora_safetensors_writer_write(w, path, &err)) {
        BAIL_OUT("write: %s", err.msg);
    }
    slora_safetensors_writer_free(w);

    buf = read_all(path, &size);
    memcpy(&hlen, buf, 8);
    ok(hlen % 8 == 0 && buf[8] == '{', "header padded to 8, starts with {");
    free(buf);

    st = slora_safetensors_open(path, &err);
    if (st == NULL) {
        BAIL_OUT("open: %s", err.msg);
    }

    is_int(slora_safetensors_n_tensors(st), 6, "6 tensors");
    is_str(slora_safetensors_meta(st, "format"), "pt", "__metadata__ format");
    ok(slora_safetensors_meta(st, "nope") == NULL, "absent metadata: NULL");

    t = slora_safetensors_find(st, "a.f32");
    ok(t && t->dtype == SLORA_DT_F32 && t->n_dims == 2 && t->dims[0] == 2
       && t->dims[1] == 3 && t->n_elems == 6 && t->n_bytes == 24,
       "a.f32: F32 [2, 3]");
    ok(t && slora_tensor_to_f32(t, out, &err) == 0
       && memcmp(out, f32, 24) == 0, "a.f32 values");

    t = slora_safetensors_find(st, "b.f16");
    same = t && t->dtype == SLORA_DT_F16 && slora_tensor_to_f32(t, out, &err)
           == 0;
    for (i = 0; same && i < 4; i++) {
        same = out[i] == (float) i * 0.5f - 1.0f;
    }
    ok(same, "b.f16 values");

    t = slora_safetensors_find(st, "c.bf16");
    same = t && t->dtype == SLORA_DT_BF16
           && slora_tensor_to_f32(t, out, &err) == 0;
    for (i = 0; same && i < 4; i++) {
        same = out[i] == (float) i * 4.0f + 0.5f;
    }
    ok(same, "c.bf16 values");

    t = slora_safetensors_find(st, "d.i32");
    ok(t && t->dtype == SLORA_DT_I32 && slora_tensor_to_f32(t, out, &err) == 0
       && out[0] == -5 && out[1] == 0 && out[2] == 123456, "d.i32 values");

    t = slora_safetensors_find(st, "scalar");
    ok(t && t->n_dims == 0 && t->n_elems == 1
       && slora_tensor_to_f32(t, out, &err) == 0 && out[0] == f32[5],
       "scalar: no dims, one element");

    t = slora_safetensors_find(st, "empty");
    ok(t && t->n_elems == 0 && t->n_bytes == 0 && t->dims[1] == 4,
       "empty [0, 4] tensor");
    ok(slora_safetensors_find(st, "a.f3") == NULL, "absent name: NULL");

    slora_safetensors_close(st);
}


static void
test_hand_written(void)
{
    char                  path[512];
    float                 out[4];
    slora_err_t           err;
    slora_safetensors_t  *st;
    const slora_tensor_t *t;

    snprintf(path, sizeof(path), "%s/i64.safetensors", tmpdir);
    write_raw(path, "{\"pos\":{\"dtype\":\"I64\",\"shape\":[2],"
              "\"data_offsets\":[0,16]},\"w\":{\"dtype\":\"F32\","
              "\"shape\":[1],\"data_offsets\":[16,20]}}", 20);
    st = slora_safetensors_open(path, &err);
    ok(st != NULL, "an I64 tensor does not stop the file from opening");
    if (st != NULL) {
        t = slora_safetensors_find(st, "pos");
        ok(t && t->dtype == SLORA_DT_N
           && slora_tensor_to_f32(t, out, &err) == SLORA_ERROR,
           "the I64 tensor is listed but cannot be converted");
        slora_safetensors_close(st);
    }
    unlink(path);

    ok(refused_hdr("dtype", "{\"a\":{\"dtype\":\"Q9\",\"shape\":[1],"
                   "\"data_offsets\":[0,4]}}", 4), "unknown dtype");
    ok(refused_hdr("size", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                   "\"data_offsets\":[0,4]}}", 8),
       "offsets disagree with shape");
    ok(refused_hdr("pastend", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                   "\"data_offsets\":[4,12]}}", 8), "data past end");
    ok(refused_hdr("order", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],"
                   "\"data_offsets\":[4,0]}}", 8), "begin > end");
    ok(refused_hdr("negdim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],"
                   "\"data_offsets\":[0,0]}}", 8), "negative dim");
    ok(refused_hdr("fracoff", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                   "\"data_offsets\":[0.5,4.5]}}", 8), "fractional offset");
    ok(refused_hdr("hugeoff", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                   "\"data_offsets\":[1e300,1e300]}}", 8), "huge offset");
    ok(refused_hdr("dims5", "{\"a\":{\"dtype\":\"F32\",\"shape\":"
                   "[1,1,1,1,1],\"data_offsets\":[0,4]}}", 8), "five dims");
    ok(refused_hdr("ovf", "{\"a\":{\"dtype\":\"F32\",\"shape\":"
                   "[2147483647,2147483647,2147483647],\"data_offsets\":"
                   "[0,4]}}", 8), "element count overflow");
    ok(refused_hdr("zerodim", "{\"a\":{\"dtype\":\"F32\",\"shape\":"
                   "[0,9007199254740992],\"data_offsets\":[0,0]}}", 8),
       "a dim of 2^53 after a dim of 0 (no elements) refused");
    ok(refused_hdr("dim31", "{\"a\":{\"dtype\":\"F32\",\"shape\":"
                   "[2147483648,0],\"data_offsets\":[0,0]}}", 8),
       "a dim of 2^31 refused");
    ok(opens_hdr("dim31m1", "{\"a\":{\"dtype\":\"F32\",\"shape\":"
                 "[0,2147483647],\"data_offsets\":[0,0]}}", 8),
       "a dim of 2^31 - 1 opens");
    ok(refused_hdr("nodtype", "{\"a\":{\"shape\":[1],"
                   "\"data_offsets\":[0,4]}}", 8), "no dtype");
    ok(refused_hdr("offs3", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                   "\"data_offsets\":[0,4,8]}}", 8), "three offsets");
    ok(refused_hdr("dup", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                   "\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\","
                   "\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
       "duplicate name");
    ok(refused_hdr("meta", "{\"__metadata__\":3}", 0),
       "__metadata__ not an object");
    ok(refused_hdr("json", "{\"a\":{\"dtype\":\"F32\"", 8), "broken JSON");
    ok(refused_hdr("array", "[1, 2]", 0), "header not an object");
    ok(refused_hdr("notobj", "{\"a\":5}", 0), "entry not an object");
    ok(refused_hdr("empty", "{\"\":{\"dtype\":\"F32\",\"shape\":[1],"
                   "\"data_offsets\":[0,4]}}", 8), "empty name");

    /* two names for the same bytes: a small file would load as any
     * amount of f32 */
    ok(refused_hdr("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                   "\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\","
                   "\"shape\":[2],\"data_offsets\":[4,12]}}", 12)
       && strstr(hdr_err, "tensors 'a' and 'b' overlap: data [0, 8) and "
                 "[4, 12)") != NULL,
       "overlapping ranges refused, naming both tensors");
    ok(refused_hdr("alias", "{\"b\":{\"dtype\":\"F16\",\"shape\":[2,2],"
                   "\"data_offsets\":[8,16]},\"c\":{\"dtype\":\"F32\","
                   "\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":"
                   "\"BF16\",\"shape\":[4],\"data_offsets\":[8,16]}}", 16)
       && strstr(hdr_err, "tensors 'b' and 'a' overlap: data [8, 16) and "
                 "[8, 16)") != NULL,
       "two tensors of the same range refused");
    ok(refused_hdr("inside", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],"
                   "\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\","
                   "\"shape\":[1],\"data_offsets\":[16,20]},\"c\":{\"dtype\":"
                   "\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 20)
       && strstr(hdr_err, "'a' and 'c' overlap") != NULL,
       "a range inside another refused");
    ok(opens_hdr("empty-inside", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                 "\"data_offsets\":[0,8]},\"e\":{\"dtype\":\"F32\",\"shape\":"
                 "[0,3],\"data_offsets\":[4,4]}}", 8),
       "an empty tensor inside another's range shares no byte: opens");
    ok(opens_hdr("hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                 "\"data_offsets\":[8,12]},\"b\":{\"dtype\":\"F32\","
                 "\"shape\":[1],\"data_offsets\":[0,4]}}", 16),
       "ranges out of order with holes between them open");

    snprintf(path, sizeof(path), "%s/short.safetensors", tmpdir);
    write_all(path, "\x10\0\0", 3);
    st = slora_safetensors_open(path, &err);
    ok(st == NULL && strstr(err.msg, path) != NULL, "3-byte file refused");
    unlink(path);
}


static void
test_truncations_and_flips(void)
{
    int                   bad, good, i;
    char                  path[512];
    float                *tmp;
    size_t                size, len;
    int64_t               k;
    uint8_t              *orig, *buf;
    slora_err_t           err;
    slora_safetensors_t  *st;
    const slora_tensor_t *t;

    snprintf(path, sizeof(path), "%s/rt.safetensors", tmpdir);
    orig = read_all(path, &size);
    buf = malloc(size);

    bad = 0;
    for (len = 0; len < size; len++) {
        st = slora_safetensors_open_mem(orig, len, "cut.safetensors", &err);
        if (st != NULL || strstr(err.msg, "cut.safetensors") == NULL) {
            bad++;
            slora_safetensors_close(st);
        }
    }
    is_int(bad, 0, "all %zu truncations refused, naming the file", size);

    tmp = malloc(64 * sizeof(float));
    srand(11);
    bad = good = 0;
    for (i = 0; i < 3000; i++) {
        memcpy(buf, orig, size);
        buf[rand() % size] ^= (uint8_t) (1 + rand() % 255);
        if (i % 3 == 0) {
            buf[rand() % 8] ^= (uint8_t) (1 + rand() % 255);
        }

        st = slora_safetensors_open_mem(buf, size, "flip.safetensors", &err);
        if (st == NULL) {
            bad += strstr(err.msg, "flip.safetensors") == NULL;
            continue;
        }
        good++;
        for (k = 0; k < slora_safetensors_n_tensors(st); k++) {
            t = slora_safetensors_tensor(st, k);
            if (t->n_elems <= 64) {
                slora_tensor_to_f32(t, tmp, &err);
            }
        }
        slora_safetensors_close(st);
    }
    is_int(bad, 0, "3000 random corruptions: every refusal names the file "
           "(%d still opened)", good);

    free(tmp);
    free(orig);
    free(buf);
}


static void
write_shard(const char *dir, const char *file, const char *const *names,
    int n, float base)
{
    int                          i;
    char                         path[512];
    float                        v[4];
    slora_err_t                  err;
    slora_safetensors_writer_t  *w;
    int64_t                      dims[1] = { 4 };

    w = slora_safetensors_writer_new();
    for (i = 0; i < n; i++) {
        v[0] = base + (float) i;
        v[1] = v[2] = v[3] = -v[0];
        if (slora_safetensors_writer_tensor(w, names[i], SLORA_DT_F32, 1,
                                            dims, v, &err))
        {
            BAIL_OUT("%s", err.msg);
        }
    }

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if (slora_safetensors_writer_write(w, path, &err)) {
        BAIL_OUT("%s", err.msg);
    }
    slora_safetensors_writer_free(w);
}


static void
write_index(const char *dir, const char *json)
{
    char  path[512];

    snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
    write_all(path, json, strlen(json));
}


static void
test_folder(void)
{
    char                      dir[300], path[512];
    float                     out[4];
    slora_err_t               err;
    slora_safetensors_dir_t  *d;
    const slora_tensor_t     *t;
    static const char        *s1[] = { "x.a", "x.b" }, *s2[] = { "y.c" },
                             *s3[] = { "x.a" };

    snprintf(dir, sizeof(dir), "%s/sharded", tmpdir);
    mkdir(dir, 0755);

    d = slora_safetensors_dir_open(dir, &err);
    ok(d == NULL && strstr(err.msg, dir) != NULL,
       "empty folder refused, naming it");

    write_shard(dir, "model-00001-of-00002.safetensors", s1, 2, 10.0f);
    write_shard(dir, "model-00002-of-00002.safetensors", s2, 1, 20.0f);
    write_index(dir, "{\"metadata\":{\"total_size\":48},\"weight_map\":{"
                "\"x.a\":\"model-00001-of-00002.safetensors\","
                "\"y.c\":\"model-00002-of-00002.safetensors\","
                "\"x.b\":\"model-00001-of-00002.safetensors\"}}");

    d = slora_safetensors_dir_open(dir, &err);
    if (!ok(d != NULL, "sharded folder opens")) {
        diag("%s", err.msg);
        return;
    }

    is_int(slora_safetensors_dir_n_tensors(d), 3, "3 tensors in 2 shards");
    t = slora_safetensors_dir_find(d, "y.c");
    ok(t && slora_tensor_to_f32(t, out, &err) == 0 && out[0] == 20.0f
       && out[1] == -20.0f, "y.c read from shard 2");
    ok(t && strstr(slora_safetensors_dir_file(d, t), "00002-of") != NULL,
       "y.c's file is shard 2");
    t = slora_safetensors_dir_find(d, "x.b");
    ok(t && slora_tensor_to_f32(t, out, &err) == 0 && out[0] == 11.0f,
       "x.b read from shard 1");
    ok(slora_safetensors_dir_find(d, "z") == NULL, "absent name: NULL");
    slora_safetensors_dir_close(d);

    write_index(dir, "{\"weight_map\":{\"x.a\":"
                "\"model-00001-of-00002.safetensors\",\"y.c\":"
                "\"model-00001-of-00002.safetensors\"}}");
    d = slora_safetensors_dir_open(dir, &err);
    ok(d == NULL && strstr(err.msg, "y.c") != NULL,
       "index naming the wrong shard refused: %s", err.msg);
    slora_safetensors_dir_close(d);

    write_index(dir, "{\"weight_map\":{\"x.a\":\"../rt.safetensors\"}}");
    d = slora_safetensors_dir_open(dir, &err);
    ok(d == NULL && strstr(err.msg, "not a file name") != NULL,
       "shard path leaving the folder refused");
    slora_safetensors_dir_close(d);

    write_index(dir, "{\"weight_map\":{\"x.a\":\"missing.safetensors\"}}");
    d = slora_safetensors_dir_open(dir, &err);
    ok(d == NULL && strstr(err.msg, "missing.safetensors") != NULL,
       "missing shard refused, naming it");
    slora_safetensors_dir_close(d);

    write_shard(dir, "dup.safetensors", s3, 1, 30.0f);
    write_index(dir, "{\"weight_map\":{\"x.a\":"
                "\"model-00001-of-00002.safetensors\",\"x.z\":"
                "\"dup.safetensors\"}}");
    d = slora_safetensors_dir_open(dir, &err);
    ok(d == NULL && strstr(err.msg, "more than one shard") != NULL,
       "a name in two shards refused");
    slora_safetensors_dir_close(d);

    write_index(dir, "{\"weight_map\":[1]}");
    d = slora_safetensors_dir_open(dir, &err);
    ok(d == NULL && strstr(err.msg, "index.json") != NULL,
       "index without a weight_map object refused");
    slora_safetensors_dir_close(d);

    snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/dup.safetensors", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/model-00001-of-00002.safetensors", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/model-00002-of-00002.safetensors", dir);
    unlink(path);

    write_shard(dir, "model.safetensors", s1, 2, 5.0f);
    d = slora_safetensors_dir_open(dir, &err);
    ok(d != NULL && slora_safetensors_dir_n_tensors(d) == 2
       && slora_safetensors_dir_find(d, "x.b") != NULL,
       "single model.safetensors folder");
    slora_safetensors_dir_close(d);

    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    unlink(path);
    rmdir(dir);
}


int
main(void)
{
    char  path[512];

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/slora-test-st-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    test_round_trip();
    test_hand_written();
    test_truncations_and_flips();
    test_folder();

    snprintf(path, sizeof(path), "%s/rt.safetensors", tmpdir);
    unlink(path);
    rmdir(tmpdir);

    return done_testing();
}
