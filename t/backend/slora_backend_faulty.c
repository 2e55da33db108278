/*
 * slora_backend_faulty.c: a backend for the tests of what the engine
 * process does when its device fails (t/device_faults.t). It is the CPU
 * backend behind the CUDA backend's entry point, slora_backend_cuda_create,
 * so `device=cuda cuda_lib=` loads it as it loads libslora_cuda.so, and
 * its forward fails once $SLORA_FAULTY_STEPS forwards have gone well:
 *
 *   SLORA_FAULTY_MODE=lost    as a GPU whose context is lost: SLORA_FATAL
 *   SLORA_FAULTY_MODE=error   as a step that failed and may not again:
 *                             SLORA_ERROR
 *
 * and, with SLORA_FAULTY_HOLD=PATH, it cannot be created while PATH
 * exists, as a GPU whose memory another process (an engine of the old
 * binary, in a binary upgrade) still holds.
 *
 * The one idea: a mock, for faults no machine without a GPU can cause;
 * everything up to the fault is the real CPU backend's work, and a new
 * engine process counts its steps afresh.
 */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slora_backend.h"


slora_backend_t *slora_backend_cuda_create(int device, int32_t tp,
    slora_err_t *err);

static int slora_faulty_forward(slora_backend_t *b,
    const slora_batch_t *batch, const int64_t *pool_layer_off,
    int64_t page_elems, int32_t tokens_per_page, slora_err_t *err);
static void slora_faulty_free(slora_backend_t *b);


static slora_backend_t  *slora_faulty_inner;
static long              slora_faulty_left;
static int               slora_faulty_lost;


slora_backend_t *
slora_backend_cuda_create(int device, int32_t tp, slora_err_t *err)
{
    slora_backend_t  *b;
    const char       *steps, *mode, *hold;

    steps = getenv("SLORA_FAULTY_STEPS");
    mode = getenv("SLORA_FAULTY_MODE");
    hold = getenv("SLORA_FAULTY_HOLD");

    if (hold != NULL && access(hold, F_OK) == 0) {
        slora_err_set(err, SLORA_ERROR, "faulty backend: out of device "
                      "memory (held while %s exists)", hold);
        return NULL;
    }

    if (steps == NULL || mode == NULL
        || (strcmp(mode, "lost") != 0 && strcmp(mode, "error") != 0))
    {
        slora_err_set(err, SLORA_ERROR, "faulty backend: set "
                      "SLORA_FAULTY_STEPS and SLORA_FAULTY_MODE (lost or "
                      "error)");
        return NULL;
    }

    slora_faulty_inner = slora_backend_cpu_create(1, "native", err);
    if (slora_faulty_inner == NULL) {
        return NULL;
    }

    b = malloc(sizeof(slora_backend_t));
    if (b == NULL) {
        slora_faulty_inner->free(slora_faulty_inner);
        slora_err_set(err, SLORA_ERROR, "faulty backend: out of memory");
        return NULL;
    }

    /* the CPU backend's ops work on b->data, which both share */
    *b = *slora_faulty_inner;
    b->name = "faulty";
    b->forward = slora_faulty_forward;
    b->free = slora_faulty_free;

    slora_faulty_left = atol(steps);
    slora_faulty_lost = strcmp(mode, "lost") == 0;

    return b;
}


static int
slora_faulty_forward(slora_backend_t *b, const slora_batch_t *batch,
    const int64_t *pool_layer_off, int64_t page_elems,
    int32_t tokens_per_page, slora_err_t *err)
{
    if (slora_faulty_left > 0) {
        slora_faulty_left--;
        return slora_faulty_inner->forward(slora_faulty_inner, batch,
                                           pool_layer_off, page_elems,
                                           tokens_per_page, err);
    }

    if (slora_faulty_lost) {
        return slora_err_set(err, SLORA_FATAL, "faulty backend: the "
                             "device's context is lost");
    }

    return slora_err_set(err, SLORA_ERROR, "faulty backend: the step "
                         "failed");
}


static void
slora_faulty_free(slora_backend_t *b)
{
    slora_faulty_inner->free(slora_faulty_inner);
    slora_faulty_inner = NULL;
    free(b);
}
