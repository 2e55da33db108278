/*
 * slora_core.c: the error object, checked size arithmetic, the clock and
 * a small file read whole.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "slora_core.h"
#include "slora_utf8.h"


int
slora_err_set(slora_err_t *err, int code, const char *fmt, ...)
{
    int      n;
    va_list  ap;

    if (err != NULL) {
        err->code = code;
        err->retry_ms = 0;
        va_start(ap, fmt);
        n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);

        if (n >= (int) sizeof(err->msg)) {
            err->msg[slora_utf8_whole(err->msg, sizeof(err->msg) - 1)] = '\0';
        }
    }

    return code;
}


int
slora_err_prefix(slora_err_t *err, const char *fmt, ...)
{
    char     old[SLORA_ERR_LEN];
    size_t   n;
    va_list  ap;

    if (err == NULL) {
        return SLORA_ERROR;
    }

    memcpy(old, err->msg, sizeof(old));

    va_start(ap, fmt);
    n = (size_t) vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);

    if (n + 2 < sizeof(err->msg)) {
        err->msg[n++] = ':';
        err->msg[n++] = ' ';
        err->msg[n] = '\0';
        strncat(err->msg, old, sizeof(err->msg) - n - 1);
    }

    n = strlen(err->msg);

    if (n == sizeof(err->msg) - 1) {
        err->msg[slora_utf8_whole(err->msg, n)] = '\0';
    }

    return err->code;
}


void
slora_assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "slora: assertion \"%s\" failed at %s:%d\n",
            cond, file, line);
    abort();
}


int
slora_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) {
        return SLORA_ERROR;
    }

    *out = a * b;
    return SLORA_OK;
}


int
slora_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a) {
        return SLORA_ERROR;
    }

    *out = a + b;
    return SLORA_OK;
}


char *
slora_read_file(const char *path, size_t max, size_t *len, slora_err_t *err)
{
    FILE         *f;
    char         *buf, *p;
    size_t        cap, n;
    struct stat   st;

    f = fopen(path, "rb");
    if (f == NULL) {
        slora_err_set(err, SLORA_DECLINED, "%s: %s", path, strerror(errno));
        return NULL;
    }

    /* a regular file's size to begin with; a pipe's grows as it comes */
    cap = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)
          && (uint64_t) st.st_size <= max
          ? (size_t) st.st_size + 1 : 4096;
    buf = NULL;
    n = 0;

    for ( ;; ) {
        p = realloc(buf, cap + 1);
        if (p == NULL) {
            slora_err_set(err, SLORA_ERROR, "%s: out of memory", path);
            goto failed;
        }

        buf = p;
        n += fread(buf + n, 1, cap - n, f);

        if (n > max) {
            slora_err_set(err, SLORA_ERROR, "%s: more than %zu bytes", path,
                          max);
            goto failed;
        }

        if (n < cap || ferror(f)) {
            break;
        }

        cap = cap > max / 2 ? max + 1 : cap * 2;
    }

    if (ferror(f)) {
        slora_err_set(err, SLORA_ERROR, "%s: read error", path);
        goto failed;
    }

    fclose(f);
    buf[n] = '\0';
    *len = n;

    return buf;

failed:

    fclose(f);
    free(buf);

    return NULL;
}


int64_t
slora_now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}


uint64_t
slora_fnv1a(const char *data, size_t len)
{
    uint64_t  h;
    size_t    i;

    h = 0xcbf29ce484222325ULL;

    for (i = 0; i < len; i++) {
        h ^= (uint8_t) data[i];
        h *= 0x100000001b3ULL;
    }

    /* tables index by the low bits: fold the high ones into them */
    return h ^ (h >> 29);
}


void *
slora_host_alloc(const slora_host_mem_t *mem, size_t bytes)
{
    if (mem == NULL || mem->alloc == NULL) {
        return calloc(1, bytes);
    }

    return mem->alloc(mem->ctx, bytes);
}


void
slora_host_free(const slora_host_mem_t *mem, void *p, size_t bytes)
{
    if (p == NULL) {
        return;
    }

    if (mem == NULL || mem->alloc == NULL) {
        free(p);
        return;
    }

    mem->free(mem->ctx, p, bytes);
}


int32_t
slora_host_elem_size(const slora_host_mem_t *mem)
{
    return mem != NULL && mem->elem_size == 2 ? 2 : 4;
}
