/*
 * slora_threads.c: the compute thread pool (see slora_threads.h).
 *
 * The one idea: a job is one 64-bit word, claim = generation << 32 |
 * nth << 16 | next share, and a share is taken by a compare-and-swap
 * that bumps next. A thread that still holds an old generation fails the
 * swap, so late workers can never touch a job that has moved on, and the
 * caller needs no barrier with threads that never showed up: it waits
 * for the count of finished shares only.
 *
 * Design. Sleeping and waking go through two futex words. Workers wait
 * for a new generation on gen_word: they spin on it for spin_iters
 * pauses (calibrated at create to about 30 us), then announce themselves
 * in sleepers and sleep; the caller publishes a job and wakes them only
 * when sleepers is non-zero, so back-to-back dispatches to spinning
 * workers make no system call. The caller waits on done the same way,
 * flagging caller_sleeping before it sleeps; the worker that finishes
 * the last share wakes it. Both handshakes are Dekker-style: each side
 * stores, then loads the other's word, all seq_cst, so at least one of
 * them sees the other and no wake-up is lost. Workers block every
 * signal, which stays with the thread that owns the pool (nginx's).
 */

#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/futex.h>

#include "slora_core.h"
#include "slora_threads.h"


#define SLORA_THREADS_SPIN_NS    30000
#define SLORA_THREADS_MAX_SHARE  65535


typedef struct {
    slora_threads_t              *tp;
    int                           id;
} slora_threads_arg_t;


struct slora_threads_s {
    /* the job: written by the caller, read by every thread */
    _Alignas(64) _Atomic uint64_t claim;
    _Atomic(slora_threads_fn)     fn;
    _Atomic(void *)               ctx;

    _Alignas(64) _Atomic uint32_t done;
    _Atomic int                   caller_sleeping;

    _Alignas(64) _Atomic uint32_t gen_word;
    _Atomic int                   sleepers;
    _Atomic int                   stop;

    _Alignas(64) uint32_t         gen;          /* caller's copy */
    int                           n_threads;
    int                           n_started;
    long                          spin_iters;
    pthread_t                    *threads;
    slora_threads_arg_t          *args;
};


static void *slora_threads_main(void *arg);
static void slora_threads_work(slora_threads_t *tp, uint32_t g);
static void slora_threads_wait_done(slora_threads_t *tp, uint32_t n);
static void slora_threads_pause(void);
static long slora_threads_calibrate(void);
static void slora_futex_wait(_Atomic uint32_t *addr, uint32_t val);
static void slora_futex_wake(_Atomic uint32_t *addr, int n);


slora_threads_t *
slora_threads_create(int n_threads, slora_err_t *err)
{
    slora_threads_t  *tp;
    sigset_t          all, old;
    int               i, rc;

    if (n_threads < 1 || n_threads > SLORA_THREADS_MAX) {
        slora_err_set(err, SLORA_ERROR, "thread pool: %d threads",
                      n_threads);
        return NULL;
    }

    if (posix_memalign((void **) &tp, 64, sizeof(slora_threads_t)) != 0) {
        slora_err_set(err, SLORA_ERROR, "thread pool: out of memory");
        return NULL;
    }

    memset(tp, 0, sizeof(slora_threads_t));
    atomic_init(&tp->claim, 0);
    atomic_init(&tp->fn, NULL);
    atomic_init(&tp->ctx, NULL);
    atomic_init(&tp->done, 0);
    atomic_init(&tp->caller_sleeping, 0);
    atomic_init(&tp->gen_word, 0);
    atomic_init(&tp->sleepers, 0);
    atomic_init(&tp->stop, 0);
    tp->n_threads = n_threads;

    if (n_threads == 1) {
        return tp;
    }

    tp->spin_iters = slora_threads_calibrate();
    tp->threads = calloc((size_t) n_threads, sizeof(pthread_t));
    tp->args = calloc((size_t) n_threads, sizeof(slora_threads_arg_t));

    if (tp->threads == NULL || tp->args == NULL) {
        slora_threads_free(tp);
        slora_err_set(err, SLORA_ERROR, "thread pool: out of memory");
        return NULL;
    }

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);

    rc = 0;

    for (i = 1; i < n_threads; i++) {
        tp->args[i].tp = tp;
        tp->args[i].id = i;

        rc = pthread_create(&tp->threads[i], NULL, slora_threads_main,
                            &tp->args[i]);
        if (rc != 0) {
            break;
        }

        tp->n_started++;
    }

    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (rc != 0) {
        slora_threads_free(tp);
        slora_err_set(err, SLORA_ERROR, "thread pool: cannot start thread "
                      "%d of %d: %s", i, n_threads, strerror(rc));
        return NULL;
    }

    return tp;
}


int
slora_threads_count(const slora_threads_t *tp)
{
    return tp->n_threads;
}


void
slora_threads_run(slora_threads_t *tp, slora_threads_fn fn, void *ctx)
{
    slora_threads_run_n(tp, tp->n_threads, fn, ctx);
}


void
slora_threads_run_n(slora_threads_t *tp, int n_shares, slora_threads_fn fn,
    void *ctx)
{
    uint32_t  g;
    int       i;

    slora_assert(n_shares >= 1 && n_shares <= SLORA_THREADS_MAX_SHARE);

    if (tp->n_threads == 1 || n_shares == 1) {
        for (i = 0; i < n_shares; i++) {
            fn(ctx, i, n_shares);
        }

        return;
    }

    atomic_store_explicit(&tp->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&tp->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&tp->done, 0, memory_order_relaxed);

    g = ++tp->gen;

    atomic_store_explicit(&tp->claim,
                          (uint64_t) g << 32 | (uint64_t) n_shares << 16,
                          memory_order_release);
    atomic_store(&tp->gen_word, g);

    if (atomic_load(&tp->sleepers) > 0) {
        slora_futex_wake(&tp->gen_word, INT_MAX);
    }

    slora_threads_work(tp, g);
    slora_threads_wait_done(tp, (uint32_t) n_shares);
}


void
slora_threads_free(slora_threads_t *tp)
{
    int  i;

    if (tp == NULL) {
        return;
    }

    if (tp->n_started > 0) {
        atomic_store(&tp->stop, 1);
        atomic_fetch_add(&tp->gen_word, 1);
        slora_futex_wake(&tp->gen_word, INT_MAX);

        for (i = 1; i <= tp->n_started; i++) {
            pthread_join(tp->threads[i], NULL);
        }
    }

    free(tp->threads);
    free(tp->args);
    free(tp);
}


static void *
slora_threads_main(void *arg)
{
    slora_threads_t  *tp = ((slora_threads_arg_t *) arg)->tp;
    uint32_t          last, g;
    long              k;

    last = 0;

    for ( ;; ) {
        k = 0;

        while ((g = atomic_load_explicit(&tp->gen_word,
                                         memory_order_acquire))
               == last)
        {
            if (k++ < tp->spin_iters) {
                slora_threads_pause();
                continue;
            }

            atomic_fetch_add(&tp->sleepers, 1);

            if (atomic_load(&tp->gen_word) == last) {
                slora_futex_wait(&tp->gen_word, last);
            }

            atomic_fetch_sub(&tp->sleepers, 1);
            k = 0;
        }

        if (atomic_load_explicit(&tp->stop, memory_order_acquire)) {
            return NULL;
        }

        last = g;
        slora_threads_work(tp, g);
    }
}


/*
 * Claims and runs shares of generation g until none is left or the job
 * has moved on. A successful swap on a word of generation g means the
 * job is still g's (the caller cannot publish another until this share
 * is counted done), so fn and ctx read after it are g's.
 */

static void
slora_threads_work(slora_threads_t *tp, uint32_t g)
{
    slora_threads_fn  fn;
    uint64_t          w;
    uint32_t          n, i;
    void             *ctx;

    w = atomic_load_explicit(&tp->claim, memory_order_acquire);

    for ( ;; ) {
        n = (uint32_t) (w >> 16) & 0xffff;
        i = (uint32_t) w & 0xffff;

        if ((uint32_t) (w >> 32) != g || i >= n) {
            return;
        }

        if (!atomic_compare_exchange_weak_explicit(&tp->claim, &w, w + 1,
                                                   memory_order_acq_rel,
                                                   memory_order_acquire))
        {
            continue;
        }

        fn = atomic_load_explicit(&tp->fn, memory_order_relaxed);
        ctx = atomic_load_explicit(&tp->ctx, memory_order_relaxed);

        fn(ctx, (int) i, (int) n);

        if (atomic_fetch_add(&tp->done, 1) + 1 == n
            && atomic_load(&tp->caller_sleeping))
        {
            slora_futex_wake(&tp->done, 1);
        }

        w = atomic_load_explicit(&tp->claim, memory_order_acquire);
    }
}


static void
slora_threads_wait_done(slora_threads_t *tp, uint32_t n)
{
    uint32_t  d;
    long      k;

    for (k = 0; k < tp->spin_iters; k++) {
        if (atomic_load_explicit(&tp->done, memory_order_acquire) == n) {
            return;
        }

        slora_threads_pause();
    }

    atomic_store(&tp->caller_sleeping, 1);

    while ((d = atomic_load(&tp->done)) != n) {
        slora_futex_wait(&tp->done, d);
    }

    atomic_store(&tp->caller_sleeping, 0);
}


static void
slora_threads_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__ ("yield");
#endif
}


/* Pauses that make SLORA_THREADS_SPIN_NS on this CPU (a pause takes from
 * a few to 150 cycles depending on the core). */

static long
slora_threads_calibrate(void)
{
    int64_t  t0, dt;
    long     i, n;

    n = 2048;
    t0 = slora_now_ns();

    for (i = 0; i < n; i++) {
        slora_threads_pause();
    }

    dt = slora_now_ns() - t0;

    if (dt < 1) {
        dt = 1;
    }

    n = (long) ((int64_t) SLORA_THREADS_SPIN_NS * n / dt);

    return n < 256 ? 256 : n > 1000000 ? 1000000 : n;
}


static void
slora_futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    (void) syscall(SYS_futex, (uint32_t *) addr, FUTEX_WAIT_PRIVATE, val,
                   NULL, NULL, 0);
}


static void
slora_futex_wake(_Atomic uint32_t *addr, int n)
{
    (void) syscall(SYS_futex, (uint32_t *) addr, FUTEX_WAKE_PRIVATE, n,
                   NULL, NULL, 0);
}
