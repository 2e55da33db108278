/*
 * slora_gguf.h: a reader for GGUF files (versions 2 and 3), mapped into
 * memory, and a small writer for the files our own tools make.
 *
 * The one idea: slora_gguf_open() checks the whole file once, every
 * length, count, type, offset and name, and indexes it; after that every
 * lookup is safe and cheap and points into the mapping. Strings from the
 * file are (pointer, length) pairs and are not NUL-terminated, except
 * tensor names, which the reader copies.
 *
 * Lookups return SLORA_OK, SLORA_DECLINED when the key is absent (err is
 * still filled, so a caller that needs the key can pass it on), or
 * SLORA_ERROR when the key holds a value of the wrong type or range.
 */

#ifndef SLORA_GGUF_H
#define SLORA_GGUF_H


#include "slora_tensor.h"


typedef struct slora_gguf_s  slora_gguf_t;


/* Value types of GGUF metadata, numbered as in the file. */
typedef enum {
    SLORA_GGUF_U8 = 0,
    SLORA_GGUF_I8,
    SLORA_GGUF_U16,
    SLORA_GGUF_I16,
    SLORA_GGUF_U32,
    SLORA_GGUF_I32,
    SLORA_GGUF_F32,
    SLORA_GGUF_BOOL,
    SLORA_GGUF_STR,
    SLORA_GGUF_ARR,
    SLORA_GGUF_U64,
    SLORA_GGUF_I64,
    SLORA_GGUF_F64,
    SLORA_GGUF_TYPE_N
} slora_gguf_type_e;


/* An array value; filled by slora_gguf_get_arr(), valid while the file
 * is open. */
typedef struct {
    slora_gguf_type_e       type;       /* element type, never ARR */
    uint64_t                n;
    const uint8_t          *data;       /* first element */
    const uint8_t  *const  *strs;       /* STR arrays: each string's header */
} slora_gguf_arr_t;


slora_gguf_t *slora_gguf_open(const char *path, slora_err_t *err);

/* Same checks over a buffer the caller keeps alive until close; name is
 * used in error messages. */
slora_gguf_t *slora_gguf_open_mem(const void *data, size_t size,
    const char *name, slora_err_t *err);
void slora_gguf_close(slora_gguf_t *g);

const char *slora_gguf_path(const slora_gguf_t *g);
uint32_t slora_gguf_version(const slora_gguf_t *g);
size_t slora_gguf_alignment(const slora_gguf_t *g);


/* Metadata, by index and by key. */
int64_t slora_gguf_n_kv(const slora_gguf_t *g);
int64_t slora_gguf_find_kv(const slora_gguf_t *g, const char *key);
const char *slora_gguf_kv_key(const slora_gguf_t *g, int64_t i,
    size_t *len);
slora_gguf_type_e slora_gguf_kv_type(const slora_gguf_t *g, int64_t i);

/* Any integer type whose value fits. */
int slora_gguf_get_u32(const slora_gguf_t *g, const char *key,
    uint32_t *out, slora_err_t *err);
int slora_gguf_get_i32(const slora_gguf_t *g, const char *key,
    int32_t *out, slora_err_t *err);
/* F32 or F64. */
int slora_gguf_get_f32(const slora_gguf_t *g, const char *key, float *out,
    slora_err_t *err);
int slora_gguf_get_bool(const slora_gguf_t *g, const char *key, int *out,
    slora_err_t *err);
int slora_gguf_get_str(const slora_gguf_t *g, const char *key,
    const char **s, size_t *len, slora_err_t *err);
/* Copies a string value into buf as a C string; SLORA_ERROR when it holds
 * a NUL byte or does not fit. */
int slora_gguf_get_cstr(const slora_gguf_t *g, const char *key, char *buf,
    size_t size, slora_err_t *err);
int slora_gguf_get_arr(const slora_gguf_t *g, const char *key,
    slora_gguf_arr_t *a, slora_err_t *err);

/* Elements of an array: SLORA_ERROR when i is out of range or the element
 * type does not convert (i32: any integer type that fits; f32: F32, F64). */
int slora_gguf_arr_str(const slora_gguf_arr_t *a, uint64_t i,
    const char **s, size_t *len);
int slora_gguf_arr_i32(const slora_gguf_arr_t *a, uint64_t i, int32_t *out);
int slora_gguf_arr_f32(const slora_gguf_arr_t *a, uint64_t i, float *out);


/* Tensors; dims in the returned views are outermost first. */
int64_t slora_gguf_n_tensors(const slora_gguf_t *g);
const slora_tensor_t *slora_gguf_tensor(const slora_gguf_t *g, int64_t i);
const slora_tensor_t *slora_gguf_find_tensor(const slora_gguf_t *g,
    const char *name);


/* For the writer: the GGML type id of dt, and the bytes of entry i from
 * its type field to the end of its value. */
uint32_t slora_gguf_type_id(slora_dtype_e dt);
const uint8_t *slora_gguf_kv_raw(const slora_gguf_t *g, int64_t i,
    size_t *len);


/* The writer: collects metadata and tensors in memory, then writes a
 * version 3 file. A u32 "general.alignment" added as metadata sets the
 * alignment of the data section (32 when absent). */
typedef struct slora_gguf_writer_s  slora_gguf_writer_t;

slora_gguf_writer_t *slora_gguf_writer_new(void);
void slora_gguf_writer_free(slora_gguf_writer_t *w);

int slora_gguf_writer_str(slora_gguf_writer_t *w, const char *key,
    const char *s, slora_err_t *err);
int slora_gguf_writer_u32(slora_gguf_writer_t *w, const char *key,
    uint32_t v, slora_err_t *err);
int slora_gguf_writer_i32(slora_gguf_writer_t *w, const char *key,
    int32_t v, slora_err_t *err);
int slora_gguf_writer_f32(slora_gguf_writer_t *w, const char *key,
    float v, slora_err_t *err);
int slora_gguf_writer_bool(slora_gguf_writer_t *w, const char *key,
    int v, slora_err_t *err);
int slora_gguf_writer_str_arr(slora_gguf_writer_t *w, const char *key,
    const char *const *s, size_t n, slora_err_t *err);
int slora_gguf_writer_i32_arr(slora_gguf_writer_t *w, const char *key,
    const int32_t *v, size_t n, slora_err_t *err);
int slora_gguf_writer_f32_arr(slora_gguf_writer_t *w, const char *key,
    const float *v, size_t n, slora_err_t *err);

/* Copies metadata entry i of an open file, whatever its type. */
int slora_gguf_writer_copy_kv(slora_gguf_writer_t *w, const slora_gguf_t *g,
    int64_t i, slora_err_t *err);

/* Adds a tensor; dims outermost first, data holds exactly the bytes of
 * n_elems elements of dt (any type but SLORA_DT_N) and is copied. */
int slora_gguf_writer_tensor(slora_gguf_writer_t *w, const char *name,
    slora_dtype_e dt, int n_dims, const int64_t *dims, const void *data,
    slora_err_t *err);

int slora_gguf_writer_write(slora_gguf_writer_t *w, const char *path,
    slora_err_t *err);


#endif /* SLORA_GGUF_H */
