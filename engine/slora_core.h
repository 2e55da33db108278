/*
 * slora_core.h: what every engine file shares: status codes that mirror
 * nginx's, the error object that carries text from where a thing failed
 * to whoever reports it, and the few limits the whole engine agrees on.
 *
 * The one idea: a function that can fail returns a status and, when given
 * a slora_err_t, fills it with one line that names the object and what is
 * wrong with it ("model.gguf: tensor blk.3.attn_q.weight: offset 9123 past
 * end of file"). Nothing in the engine prints on its own behalf.
 */

#ifndef SLORA_CORE_H
#define SLORA_CORE_H


#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>


#define SLORA_OK          0
#define SLORA_ERROR      -1
#define SLORA_AGAIN      -2
#define SLORA_BUSY       -3
#define SLORA_DONE       -4
#define SLORA_DECLINED   -5
#define SLORA_FATAL      -6     /* the backend cannot go on: start over */


#define SLORA_ERR_LEN    512


typedef struct {
    int     code;                   /* SLORA_ERROR, SLORA_BUSY, ... */
    int32_t retry_ms;               /* a refusal's (a rate, an SLO): when
                                       to ask again, ms; 0: not said */
    char    msg[SLORA_ERR_LEN];
} slora_err_t;


/* Sets err (when not NULL; retry_ms 0) and returns code, so callers can
 * write "return slora_err_set(err, SLORA_ERROR, "%s: bad magic", path);". */
int slora_err_set(slora_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an error already set. */
int slora_err_prefix(slora_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));


/* Aborts with a message: only for broken invariants, never user input. */
#define slora_assert(cond)                                                    \
    do {                                                                      \
        if (!(cond)) {                                                        \
            slora_assert_fail(#cond, __FILE__, __LINE__);                     \
        }                                                                     \
    } while (0)

void slora_assert_fail(const char *cond, const char *file, int line)
    __attribute__((noreturn));


/* Checked size arithmetic for sizes read from files. */
int slora_mul_size(size_t a, size_t b, size_t *out);
int slora_add_size(size_t a, size_t b, size_t *out);

/* The file at path (a pipe too), at most max bytes, read whole into a
 * malloc()ed buffer with a NUL after its *len bytes; NULL with err set:
 * SLORA_DECLINED when it cannot be opened, SLORA_ERROR else. */
char *slora_read_file(const char *path, size_t max, size_t *len,
    slora_err_t *err);

/* Monotonic clock in nanoseconds. */
int64_t slora_now_ns(void);

/* FNV-1a (64 bits) over len bytes, its high bits folded into the low:
 * the hash of every name table. */
uint64_t slora_fnv1a(const char *data, size_t len);


/*
 * Where host copies of adapters live (slora_adapter_image_t): heap
 * memory when mem or its alloc is NULL (the CPU backend's), else what a
 * backend reads faster, as the CUDA backend's pinned pages that its copy
 * engine reads with no staging copy. alloc returns zeroed memory or
 * NULL; free takes what alloc returned, with the bytes asked for, and
 * lets it go once nothing the backend has enqueued still reads it.
 * elem_size is the bytes of an image's value: 4 (f32; also 0), or 2
 * for a backend that computes in bf16 (values rounded as
 * kernels/slora_convert.h, once, as an image is read).
 */
typedef struct {
    void   *(*alloc)(void *ctx, size_t bytes);
    void    (*free)(void *ctx, void *p, size_t bytes);
    void     *ctx;
    int32_t   elem_size;
} slora_host_mem_t;

void *slora_host_alloc(const slora_host_mem_t *mem, size_t bytes);
void slora_host_free(const slora_host_mem_t *mem, void *p, size_t bytes);
int32_t slora_host_elem_size(const slora_host_mem_t *mem);


#endif /* SLORA_CORE_H */
