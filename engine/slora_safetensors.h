/*
 * slora_safetensors.h: readers for safetensors files and for Hugging Face
 * folders of them (one model.safetensors, or shards listed by
 * model.safetensors.index.json), and a writer of single files.
 *
 * The one idea: a safetensors file is an 8-byte little-endian header
 * length, a JSON header naming each tensor's dtype, shape and
 * [begin, end) byte range in the data that follows, then the data. The
 * reader maps the file, checks every range against the shape, the dtype
 * and the file, and hands out slora_tensor_t views into the mapping.
 * Tensors of a dtype slora cannot convert (I64, U8, F64, ...) are listed
 * with dtype SLORA_DT_N so that a reader of other tensors is not refused.
 */

#ifndef SLORA_SAFETENSORS_H
#define SLORA_SAFETENSORS_H


#include "slora_tensor.h"


typedef struct slora_safetensors_s      slora_safetensors_t;
typedef struct slora_safetensors_dir_s  slora_safetensors_dir_t;
typedef struct slora_safetensors_writer_s  slora_safetensors_writer_t;


slora_safetensors_t *slora_safetensors_open(const char *path,
    slora_err_t *err);

/* Same checks over a buffer the caller keeps alive until close. */
slora_safetensors_t *slora_safetensors_open_mem(const void *data,
    size_t size, const char *name, slora_err_t *err);
void slora_safetensors_close(slora_safetensors_t *st);

const char *slora_safetensors_path(const slora_safetensors_t *st);
/* The bytes of the data after the header, which the tensors index. */
size_t slora_safetensors_data_size(const slora_safetensors_t *st);
int64_t slora_safetensors_n_tensors(const slora_safetensors_t *st);
const slora_tensor_t *slora_safetensors_tensor(const slora_safetensors_t *st,
    int64_t i);
const slora_tensor_t *slora_safetensors_find(const slora_safetensors_t *st,
    const char *name);
/* A string of the header's __metadata__, or NULL. */
const char *slora_safetensors_meta(const slora_safetensors_t *st,
    const char *key);


/* A folder: dir/model.safetensors.index.json when present (every shard it
 * names is opened, and every tensor it maps must be in its shard), else
 * dir/model.safetensors. Names are unique across shards. */
slora_safetensors_dir_t *slora_safetensors_dir_open(const char *dir,
    slora_err_t *err);
void slora_safetensors_dir_close(slora_safetensors_dir_t *d);

int64_t slora_safetensors_dir_n_tensors(const slora_safetensors_dir_t *d);
const slora_tensor_t *slora_safetensors_dir_tensor(
    const slora_safetensors_dir_t *d, int64_t i);
const slora_tensor_t *slora_safetensors_dir_find(
    const slora_safetensors_dir_t *d, const char *name);
/* The file that holds tensor t, for error messages. */
const char *slora_safetensors_dir_file(const slora_safetensors_dir_t *d,
    const slora_tensor_t *t);


/* The writer: tensors of F32, F16, BF16 or I32, dims outermost first,
 * data copied; written in the order added. */
slora_safetensors_writer_t *slora_safetensors_writer_new(void);
void slora_safetensors_writer_free(slora_safetensors_writer_t *w);
int slora_safetensors_writer_tensor(slora_safetensors_writer_t *w,
    const char *name, slora_dtype_e dt, int n_dims, const int64_t *dims,
    const void *data, slora_err_t *err);
int slora_safetensors_writer_write(slora_safetensors_writer_t *w,
    const char *path, slora_err_t *err);


#endif /* SLORA_SAFETENSORS_H */
