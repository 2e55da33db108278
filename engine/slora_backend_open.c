/*
 * slora_backend_open.c: from a device name to a backend. The CPU
 * backend is linked in; the CUDA backend lives in its own shared library
 * (libslora_cuda.so, mk/cuda.mk) that only the engine process loads, so
 * nginx's master and workers, and any build without CUDA, never touch
 * the CUDA runtime.
 *
 * The one idea: the library exports one symbol,
 * slora_backend_cuda_create(device, tp, err), returning the same vtable
 * the CPU backend fills; everything after that goes through the vtable
 * (and the few helpers here that fill in an entry a backend left out).
 *
 * Which file: the one named (cuda_lib=, --cuda-lib), else
 * $SLORA_CUDA_LIB, else libslora_cuda.so beside the object this code is
 * linked into (the nginx module as `make install` lays it out, in
 * nginx's modules folder), else libslora_cuda.so on the loader's path.
 */

#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slora_backend.h"


typedef slora_backend_t *(*slora_backend_cuda_create_pt)(int device,
    int32_t tp, slora_err_t *err);


static int slora_backend_gpu(const char *device, int *gpu, slora_err_t *err);
static const char *slora_backend_beside(char *buf, size_t size);


slora_backend_t *
slora_backend_open(const char *device, int32_t tp, int n_threads,
    const char *weights, const char *lib, slora_err_t *err)
{
    void                          *h;
    int                            gpu = 0;
    char                           beside[PATH_MAX];
    slora_backend_cuda_create_pt   create;

    if (tp < 1 || tp > 64) {
        slora_err_set(err, SLORA_ERROR, "engine: tensor_parallel=%d: not "
                      "1 to 64", tp);
        return NULL;
    }

    if (device == NULL || device[0] == '\0' || strcmp(device, "cpu") == 0) {
        if (tp != 1) {
            slora_err_set(err, SLORA_ERROR, "engine: tensor_parallel=%d "
                          "needs device=cuda; the CPU backend is one "
                          "process's threads already", tp);
            return NULL;
        }

        return slora_backend_cpu_create(n_threads,
                                        weights != NULL ? weights : "native",
                                        err);
    }

    if (slora_backend_gpu(device, &gpu, err) != SLORA_OK) {
        return NULL;
    }

    if (weights != NULL && strcmp(weights, "bf16") != 0) {
        slora_err_set(err, SLORA_ERROR, "engine: device \"%s\" keeps weights "
                      "in bf16; weights=\"%s\" is for the CPU", device,
                      weights);
        return NULL;
    }

    if (lib == NULL || lib[0] == '\0') {
        lib = getenv("SLORA_CUDA_LIB");
    }

    if (lib == NULL || lib[0] == '\0') {
        lib = slora_backend_beside(beside, sizeof(beside));
    }

    h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        slora_err_set(err, SLORA_ERROR, "engine: device \"%s\": cannot load "
                      "the CUDA backend: %s", device, dlerror());
        return NULL;
    }

    create = (slora_backend_cuda_create_pt) dlsym(h,
                                                  "slora_backend_cuda_create");
    if (create == NULL) {
        slora_err_set(err, SLORA_ERROR, "engine: %s: no "
                      "slora_backend_cuda_create: %s", lib, dlerror());
        dlclose(h);
        return NULL;
    }

    return create(gpu, tp, err);
}


/* libslora_cuda.so beside the object holding this code where one is
 * there, else the bare name for the loader's path */

static const char *
slora_backend_beside(char *buf, size_t size)
{
    int          n;
    Dl_info      info;
    const char  *slash;

    if (dladdr((void *) slora_backend_beside, &info) == 0
        || info.dli_fname == NULL
        || (slash = strrchr(info.dli_fname, '/')) == NULL)
    {
        return "libslora_cuda.so";
    }

    n = snprintf(buf, size, "%.*s/libslora_cuda.so",
                 (int) (slash - info.dli_fname), info.dli_fname);

    if (n < 0 || (size_t) n >= size || access(buf, R_OK) != 0) {
        return "libslora_cuda.so";
    }

    return buf;
}


static int
slora_backend_gpu(const char *device, int *gpu, slora_err_t *err)
{
    char  *end;
    long   n;

    if (strcmp(device, "cuda") == 0) {
        *gpu = 0;
        return SLORA_OK;
    }

    if (strncmp(device, "cuda:", 5) == 0) {
        errno = 0;
        n = strtol(device + 5, &end, 10);

        if (errno == 0 && end != device + 5 && *end == '\0' && n >= 0
            && n < 1024)
        {
            *gpu = (int) n;
            return SLORA_OK;
        }
    }

    return slora_err_set(err, SLORA_ERROR, "engine: device \"%s\": not "
                         "\"cpu\", \"cuda\" or \"cuda:N\"", device);
}


int
slora_backend_write_pages(slora_backend_t *b, const void *src,
    int32_t elem_size, int32_t n, int64_t page_elems, const int64_t *dst,
    slora_err_t *err)
{
    int32_t  i;

    if (b->write_pages != NULL) {
        return b->write_pages(b, src, elem_size, n, page_elems, dst, err);
    }

    if (elem_size != sizeof(float)) {
        return slora_err_set(err, SLORA_ERROR, "backend %s: writes f32 "
                             "pages only, not %d-byte values", b->name,
                             elem_size);
    }

    for (i = 0; i < n; i++) {
        if (b->write_arena(b, dst[i],
                           (const float *) src + (int64_t) i * page_elems,
                           page_elems, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }
    }

    return SLORA_OK;
}
