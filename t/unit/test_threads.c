/*
 * test_threads.c: the compute thread pool. Every share of a run is done
 * exactly once and before the run returns, over many back-to-back runs,
 * after the workers have gone to sleep, with more and fewer shares than
 * threads, and with one thread (everything on the caller); workers do
 * take part; pools start and stop cleanly many times over.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <pthread.h>
#include <time.h>

#include "tap.h"

#include "slora_core.h"
#include "slora_threads.h"


#define T_ELEMS  10007
#define T_MAX    64


typedef struct {
    _Atomic int      hits[T_ELEMS];     /* times element i was written */
    int64_t          n;
} t_cover_t;


typedef struct {
    uint32_t         run;
    _Atomic uint32_t seen[T_MAX];       /* run id each share saw */
    _Atomic int      calls;
    pthread_t        caller;
    _Atomic int      on_worker;
    int64_t          spin_ns;
} t_runs_t;


static void t_cover(void *ctx, int ith, int nth);
static void t_runs(void *ctx, int ith, int nth);
static int t_check_cover(slora_threads_t *tp, int n_shares);
static void t_sleep_ms(int ms);


static void
t_cover(void *ctx, int ith, int nth)
{
    t_cover_t  *c = ctx;
    int64_t     i, i0, i1;

    i0 = c->n * ith / nth;
    i1 = c->n * (ith + 1) / nth;

    for (i = i0; i < i1; i++) {
        atomic_fetch_add(&c->hits[i], 1);
    }
}


static void
t_runs(void *ctx, int ith, int nth)
{
    t_runs_t  *r = ctx;
    int64_t    t0;

    if (r->spin_ns > 0) {
        t0 = slora_now_ns();
        while (slora_now_ns() - t0 < r->spin_ns) {
            /* busy: the share takes a while */
        }
    }

    atomic_store(&r->seen[ith], r->run);
    atomic_fetch_add(&r->calls, 1);

    if (!pthread_equal(pthread_self(), r->caller)) {
        atomic_store(&r->on_worker, 1);
    }

    (void) nth;
}


/* Runs a cover job of n_shares (0: the pool's count) and returns 1 when
 * every element was written exactly once. */

static int
t_check_cover(slora_threads_t *tp, int n_shares)
{
    static t_cover_t  c;
    int64_t           i;

    memset(&c, 0, sizeof(c));
    c.n = T_ELEMS;

    if (n_shares == 0) {
        slora_threads_run(tp, t_cover, &c);

    } else {
        slora_threads_run_n(tp, n_shares, t_cover, &c);
    }

    for (i = 0; i < T_ELEMS; i++) {
        if (atomic_load(&c.hits[i]) != 1) {
            diag("element %lld written %d times", (long long) i,
                 atomic_load(&c.hits[i]));
            return 0;
        }
    }

    return 1;
}


static void
t_sleep_ms(int ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long) (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}


int
main(void)
{
    static t_runs_t   r;
    slora_threads_t  *tp;
    slora_err_t       err;
    int               nt, i, bad, shares[] = { 1, 2, 3, 5, 7, 64, 1000 };
    uint32_t          k, n_runs;
    int64_t           t0, dt, want;

    ok(slora_threads_create(0, &err) == NULL && err.msg[0] != '\0',
       "a pool of 0 threads is refused: %s", err.msg);
    slora_threads_free(NULL);

    /* one thread: everything on the caller, in share order */
    tp = slora_threads_create(1, &err);
    ok(tp != NULL && slora_threads_count(tp) == 1, "pool of 1 thread");
    ok(t_check_cover(tp, 0), "1 thread: every element once");
    ok(t_check_cover(tp, 7), "1 thread, 7 shares: every element once");

    memset(&r, 0, sizeof(r));
    r.caller = pthread_self();
    r.run = 1;
    slora_threads_run_n(tp, 5, t_runs, &r);
    ok(atomic_load(&r.calls) == 5 && atomic_load(&r.on_worker) == 0,
       "1 thread: 5 shares ran on the caller");
    slora_threads_free(tp);

    for (nt = 2; nt <= 4; nt++) {
        tp = slora_threads_create(nt, &err);
        if (tp == NULL) {
            BAIL_OUT("%s", err.msg);
        }

        ok(slora_threads_count(tp) == nt, "pool of %d threads", nt);
        ok(t_check_cover(tp, 0), "%d threads: every element once", nt);

        bad = 0;
        for (i = 0; i < (int) (sizeof(shares) / sizeof(shares[0])); i++) {
            bad += !t_check_cover(tp, shares[i]);
        }
        ok(bad == 0, "%d threads, 1..1000 shares: every element once", nt);

        /* back to back: each run's shares are all done when it returns */
        memset(&r, 0, sizeof(r));
        r.caller = pthread_self();
        n_runs = 20000;
        bad = 0;
        t0 = slora_now_ns();

        for (k = 1; k <= n_runs; k++) {
            r.run = k;
            slora_threads_run_n(tp, nt + (int) (k % 3), t_runs, &r);

            for (i = 0; i < nt + (int) (k % 3); i++) {
                bad += atomic_load(&r.seen[i]) != k;
            }
        }

        dt = slora_now_ns() - t0;
        ok(bad == 0, "%d threads: %u back-to-back runs, every share done "
           "before return", nt, n_runs);
        want = 0;
        for (k = 1; k <= n_runs; k++) {
            want += nt + (int64_t) (k % 3);
        }
        is_int(atomic_load(&r.calls), want,
               "%d threads: shares called once each", nt);
        diag("%d threads: %.2f us per empty dispatch", nt,
             dt / 1e3 / n_runs);

        /* after the workers fell asleep */
        bad = 0;
        for (k = 0; k < 5; k++) {
            t_sleep_ms(5);
            bad += !t_check_cover(tp, 0);
        }
        ok(bad == 0, "%d threads: runs after 5 ms idle are complete", nt);

        /* workers take part when shares take a while: within 5 s of
         * runs, on a machine whose other load may keep them off the
         * cores for a while (the pool gives a core back) */
        memset(&r, 0, sizeof(r));
        r.caller = pthread_self();
        r.spin_ns = 200000;
        t0 = slora_now_ns();
        for (k = 1; !atomic_load(&r.on_worker)
                    && slora_now_ns() - t0 < 5000000000LL; k++)
        {
            r.run = k;
            slora_threads_run(tp, t_runs, &r);
        }
        ok(atomic_load(&r.on_worker), "%d threads: workers ran shares "
           "(%u runs)", nt, k - 1);

        slora_threads_free(tp);
    }

    /* clean start and stop, busy or idle */
    bad = 0;
    for (i = 0; i < 50; i++) {
        tp = slora_threads_create(3, &err);
        if (tp == NULL) {
            bad++;
            continue;
        }

        if (i % 2 == 0) {
            bad += !t_check_cover(tp, 0);
        }

        slora_threads_free(tp);
    }
    ok(bad == 0, "50 pools of 3 started, used and stopped");

    return done_testing();
}
