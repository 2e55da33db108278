/*
 * slora_threads.h: the engine's own pool of compute threads, the one the
 * CPU backend runs every parallel op through (ggml's design, in place of
 * OpenMP).
 *
 * A pool of n threads is the caller plus n - 1 pthreads that live as long
 * as the pool. slora_threads_run() cuts an op into nth shares and returns
 * when every share is done; fn(ctx, ith, nth) computes share ith of nth.
 *
 * The one idea: shares are claimed, not assigned. Each thread, the caller
 * included, takes the next unclaimed share until none is left, so a
 * worker the kernel has not scheduled yet (another process holds its
 * core) costs nothing: the threads that are running do its share, and a
 * step degrades to one-thread speed instead of waiting for it. Which
 * thread runs a share never changes what the share computes, so results
 * depend on nth only, never on timing. Idle workers spin for a bounded
 * time (about 30 us) and then sleep on a futex, so a pool between steps
 * costs no CPU and the hundreds of dispatches of one step stay cheap.
 */

#ifndef SLORA_THREADS_H
#define SLORA_THREADS_H


#include "slora_core.h"


#define SLORA_THREADS_MAX  1024   /* threads a pool may have */


typedef struct slora_threads_s  slora_threads_t;

/* Computes share ith of nth (0 <= ith < nth) of an op described by ctx. */
typedef void (*slora_threads_fn)(void *ctx, int ith, int nth);


/* A pool of n_threads (1 .. SLORA_THREADS_MAX) threads: the caller and
 * n_threads - 1 workers started now. */
slora_threads_t *slora_threads_create(int n_threads, slora_err_t *err);

/* The pool's thread count, the caller included. */
int slora_threads_count(const slora_threads_t *tp);

/* Runs fn(ctx, ith, nth) for ith = 0 .. nth - 1 with nth the pool's
 * thread count, and returns when all have returned. */
void slora_threads_run(slora_threads_t *tp, slora_threads_fn fn, void *ctx);

/* The same with nth = n_shares (1 .. 65535): more shares than threads
 * balance better when a thread is slow or absent. One caller at a time;
 * fn must not call back into the pool. */
void slora_threads_run_n(slora_threads_t *tp, int n_shares,
    slora_threads_fn fn, void *ctx);

/* Stops and joins the workers; tp may be NULL. */
void slora_threads_free(slora_threads_t *tp);


#endif /* SLORA_THREADS_H */
