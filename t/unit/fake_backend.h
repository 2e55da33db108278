/*
 * fake_backend.h: a backend with no device for the model-less unit tests
 * (adapters, scheduler): the arena is a host array of n floats that
 * write_arena checks and copies into, and fence only counts its calls.
 * One definition for every test that needs it.
 */

#ifndef FAKE_BACKEND_H
#define FAKE_BACKEND_H


#include <string.h>

#include "slora_backend.h"


typedef struct {
    slora_backend_t   b;
    float            *arena;        /* [n] */
    int64_t           n;
    int               fences;       /* fake_fence calls */
} fake_backend_t;


static inline int
fake_write(slora_backend_t *b, int64_t off, const float *src, int64_t n,
    slora_err_t *err)
{
    fake_backend_t  *f = (fake_backend_t *) b;

    if (off < 0 || n < 0 || off + n > f->n) {
        return slora_err_set(err, SLORA_ERROR, "fake: write outside");
    }

    memcpy(f->arena + off, src, (size_t) n * sizeof(float));

    return SLORA_OK;
}


static inline int
fake_fence(slora_backend_t *b, slora_err_t *err)
{
    fake_backend_t  *f = (fake_backend_t *) b;

    f->fences++;

    return SLORA_OK;
}


#endif /* FAKE_BACKEND_H */
