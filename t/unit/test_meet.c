/*
 * test_meet.c: a group's meetings (engine/slora_meet.h) with real
 * threads. No thread leaves a round before every thread has come; every
 * thread learns of a failure in the round it was reported, and only
 * then; a thread that breaks the group frees the threads waiting for it,
 * and every later meeting returns at once; a thread that waits for
 * something else, watching whether the group is broken, sees the break
 * and not a failed round; a group of one never waits. A meeting that
 * hangs is caught by an alarm.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <pthread.h>
#include <unistd.h>
#include <time.h>

#include "tap.h"

#include "slora_meet.h"


#define T_N       4
#define T_ROUNDS  300


typedef struct {
    slora_meet_t     m;
    _Atomic int      arrived[T_ROUNDS];
    _Atomic int      early;             /* left before all had come */
    int              fail_round[2];     /* rounds a thread reports */
    int              got[T_N][T_ROUNDS];
    int32_t          n;
} t_rounds_t;


typedef struct {
    t_rounds_t      *g;
    int32_t          id;
} t_arg_t;


static void *
t_rounds_thread(void *p)
{
    t_arg_t     *a = p;
    t_rounds_t  *g = a->g;
    int          r, failed;

    for (r = 0; r < T_ROUNDS; r++) {
        atomic_fetch_add(&g->arrived[r], 1);

        /* round k's failure comes from thread k % n */
        failed = (r == g->fail_round[0] || r == g->fail_round[1])
                 && a->id == r % g->n;

        g->got[a->id][r] = slora_meet(&g->m, failed);

        if (atomic_load(&g->arrived[r]) != g->n) {
            atomic_fetch_add(&g->early, 1);
        }
    }

    return NULL;
}


static void
test_rounds(void)
{
    static t_rounds_t  g;
    pthread_t          th[T_N];
    t_arg_t            arg[T_N];
    int                i, r, want, right;

    memset(&g, 0, sizeof(g));
    g.n = T_N;
    g.fail_round[0] = 57;
    g.fail_round[1] = 201;

    ok(slora_meet_init(&g.m, T_N) == 0, "a group of %d", T_N);

    for (i = 0; i < T_N; i++) {
        arg[i].g = &g;
        arg[i].id = i;
        pthread_create(&th[i], NULL, t_rounds_thread, &arg[i]);
    }

    for (i = 0; i < T_N; i++) {
        pthread_join(th[i], NULL);
    }

    ok(atomic_load(&g.early) == 0, "%d threads x %d rounds: none left a "
       "round before all had come (%d early)", T_N, T_ROUNDS,
       atomic_load(&g.early));

    right = 1;

    for (r = 0; r < T_ROUNDS; r++) {
        want = r == g.fail_round[0] || r == g.fail_round[1];

        for (i = 0; i < T_N; i++) {
            right &= g.got[i][r] == want;
        }
    }

    ok(right, "every thread learns of a failure in rounds %d and %d, "
       "reported by one thread, and of none in the other rounds",
       g.fail_round[0], g.fail_round[1]);

    slora_meet_destroy(&g.m);
}


typedef struct {
    slora_meet_t     m;
    int              rounds_ok[3];      /* meetings that returned 0 */
    int              after[3];          /* 1s after the first 1 */
    int64_t          wait_ns[3];        /* the meeting the break ended */
} t_break_t;


typedef struct {
    t_break_t       *g;
    int32_t          id;
} t_barg_t;


static int64_t
t_now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}


static void *
t_break_thread(void *p)
{
    t_barg_t   *a = p;
    t_break_t  *g = a->g;
    int64_t     t0;
    int         r;

    /* thread 2 meets 10 rounds, then leaves the group for good */
    if (a->id == 2) {
        for (r = 0; r < 10; r++) {
            g->rounds_ok[2] += slora_meet(&g->m, 0) == 0;
        }

        usleep(50000);
        slora_meet_break(&g->m);
        return NULL;
    }

    for ( ;; ) {
        t0 = t_now_ns();

        if (slora_meet(&g->m, 0) != 0) {
            g->wait_ns[a->id] = t_now_ns() - t0;
            break;
        }

        g->rounds_ok[a->id]++;
    }

    for (r = 0; r < 5; r++) {
        g->after[a->id] += slora_meet(&g->m, 0);
    }

    return NULL;
}


static void
test_break(void)
{
    static t_break_t  g;
    pthread_t         th[3];
    t_barg_t          arg[3];
    int               i;

    memset(&g, 0, sizeof(g));
    ok(slora_meet_init(&g.m, 3) == 0, "a group of 3");

    for (i = 0; i < 3; i++) {
        arg[i].g = &g;
        arg[i].id = i;
        pthread_create(&th[i], NULL, t_break_thread, &arg[i]);
    }

    for (i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
    }

    ok(g.rounds_ok[0] == 10 && g.rounds_ok[1] == 10 && g.rounds_ok[2] == 10,
       "the three met 10 rounds before the break (%d, %d, %d)",
       g.rounds_ok[0], g.rounds_ok[1], g.rounds_ok[2]);
    ok(g.wait_ns[0] >= 40000000 && g.wait_ns[1] >= 40000000,
       "the two others waited in the 11th for the thread that left, until "
       "it broke the group (%.0f and %.0f ms)", g.wait_ns[0] / 1e6,
       g.wait_ns[1] / 1e6);
    ok(g.after[0] == 5 && g.after[1] == 5, "every meeting after the break "
       "returns 1 at once (%d and %d of 5)", g.after[0], g.after[1]);

    slora_meet_destroy(&g.m);
}


typedef struct {
    slora_meet_t     m;
    int              failed;            /* the first round's answer */
} t_watch_t;


static void *
t_watch_thread(void *p)
{
    t_watch_t  *g = p;

    g->failed = slora_meet(&g->m, 1);
    usleep(50000);
    slora_meet_break(&g->m);

    return NULL;
}


/* Thread 0 meets thread 1 in a round that thread 1 fails, then waits
 * as a rank waits for its GPU, polling, until thread 1 breaks the group
 * 50 ms later. */
static void
test_watch(void)
{
    static t_watch_t  g;
    pthread_t         th;
    int64_t           t0, polls;
    int               failed, before, after;

    memset(&g, 0, sizeof(g));
    ok(slora_meet_init(&g.m, 2) == 0, "a group of 2");
    pthread_create(&th, NULL, t_watch_thread, &g);

    failed = slora_meet(&g.m, 0);
    before = slora_meet_broken(&g.m);
    t0 = t_now_ns();

    for (polls = 0; !slora_meet_broken(&g.m); polls++) {
        /* void */
    }

    after = slora_meet_broken(&g.m);
    t0 = t_now_ns() - t0;
    pthread_join(th, NULL);

    ok(failed == 1 && g.failed == 1 && before == 0,
       "a failed round is told to both, and does not break the group");
    ok(after == 1 && t0 >= 40000000 && polls > 0,
       "a thread watching the group sees the break when it comes (after "
       "%.0f ms)", t0 / 1e6);
    ok(slora_meet(&g.m, 0) == 1, "and meets no more");

    slora_meet_destroy(&g.m);
}


static void
test_alone(void)
{
    slora_meet_t  m;
    int           a, b, c;

    ok(slora_meet_init(&m, 0) == -1 && slora_meet_init(NULL, 2) == -1,
       "no group of 0, no group without its struct");

    ok(slora_meet_init(&m, 1) == 0, "a group of 1");
    a = slora_meet(&m, 0);
    b = slora_meet(&m, 1);
    c = slora_meet(&m, 0);
    ok(a == 0 && b == 1 && c == 0, "alone: no wait, its own failure only "
       "in its round (%d %d %d)", a, b, c);
    slora_meet_destroy(&m);
}


int
main(void)
{
    /* a meeting that never returns fails the test instead of hanging */
    alarm(60);

    test_alone();
    test_rounds();
    test_break();
    test_watch();

    return done_testing();
}
