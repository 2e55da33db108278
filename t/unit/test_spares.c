/*
 * test_spares.c: freed host blocks kept for reuse (engine/slora_spares.c)
 * over a counting allocator and marks that pass when the test says: a
 * block comes back only once its mark has passed and only to a get of
 * about its size, zeroed; a put never waits and never gives back; the
 * spares beyond the budget are given back by the next get, oldest first;
 * free drains once and gives back every spare; and threads that get and
 * put at once lose no block. Without marks a put block is free at once;
 * a block whose mark could not be made is never handed out again, and
 * only free gives it back.
 */

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "slora_spares.h"


typedef struct {
    size_t      made;
    size_t      released;
    size_t      drains;
    uint64_t    marks;              /* marks made so far */
    uint64_t    passed_upto;        /* marks below this have passed */
    size_t      unmarked;
    pthread_mutex_t  lock;
} fake_t;


static fake_t  fk;


static void *fake_alloc(void *ctx, size_t bytes);
static void fake_release(void *ctx, void *p);
static void *fake_mark(void *ctx);
static int fake_passed(void *ctx, void *mark);
static void fake_unmark(void *ctx, void *mark);
static void fake_drain(void *ctx);
static slora_spares_t *make(size_t max_bytes);
static void fake_conf(slora_spares_conf_t *conf, size_t max_bytes);
static void test_reuse(void);
static void test_budget(void);
static void test_threads(void);
static void test_unmarked(void);
static void test_no_mark(void);
static void *fake_mark_none(void *ctx);
static void test_no_unmark(void);
static void *fake_mark_seq(void *ctx);
static int fake_passed_seq(void *ctx, void *mark);


int
main(void)
{
    pthread_mutex_init(&fk.lock, NULL);

    test_reuse();
    test_budget();
    test_threads();
    test_unmarked();
    test_no_mark();
    test_no_unmark();

    return done_testing();
}


static void
test_reuse(void)
{
    size_t           n, bytes, made, reused;
    unsigned char   *a, *b, *c;
    slora_spares_t  *s;

    s = make(1 << 20);

    a = slora_spares_get(s, 1000);
    ok(a != NULL && fk.made == 1, "a get with no spares makes a block");
    memset(a, 0xab, 1000);

    slora_spares_put(s, a, 1000);
    slora_spares_stats(s, &n, &bytes, &made, &reused);
    ok(n == 1 && bytes == 1000 && fk.released == 0 && fk.drains == 0,
       "a put keeps the block, gives nothing back, waits for nothing");

    b = slora_spares_get(s, 1000);
    ok(b != NULL && b != a && fk.made == 2,
       "while its mark has not passed, a get makes another block");

    fk.passed_upto = fk.marks;          /* the uploads caught up */

    c = slora_spares_get(s, 1000);
    ok(c == a && fk.made == 2, "once it has passed, a get takes the spare");
    ok(c[0] == 0 && c[999] == 0 && memchr(c, 0xab, 1000) == NULL,
       "... zeroed");
    ok(fk.unmarked == 1, "... and its mark is freed");

    slora_spares_put(s, c, 1000);
    slora_spares_put(s, b, 1000);
    fk.passed_upto = fk.marks;

    a = slora_spares_get(s, 900);
    ok(a == c, "a get of up to 1/8 less takes a passed spare (900 of 1000)");
    b = slora_spares_get(s, 800);
    ok(b != NULL && fk.made == 3, "... but not of more than 1/8 less (800)");
    c = slora_spares_get(s, 1001);
    ok(c != NULL && fk.made == 4, "... nor of more bytes (1001)");

    slora_spares_put(s, a, 900);
    slora_spares_put(s, b, 800);
    slora_spares_put(s, c, 1001);
    slora_spares_stats(s, &n, &bytes, &made, &reused);
    ok(n == 4 && bytes == 3701 && made == 4 && reused == 2,
       "stats: 4 spares of 3701 bytes, 4 made, 2 reused");

    slora_spares_free(s);
    ok(fk.released == 4 && fk.drains == 1 && fk.unmarked == fk.marks,
       "free drains once, gives back all 4 blocks and frees every mark");
}


static void
test_budget(void)
{
    int              i;
    size_t           n, bytes, made, reused;
    void            *p[6], *q;
    slora_spares_t  *s;

    s = make(3000);

    for (i = 0; i < 6; i++) {
        p[i] = slora_spares_get(s, 1000);
    }

    for (i = 0; i < 6; i++) {
        slora_spares_put(s, p[i], 1000);
    }

    slora_spares_stats(s, &n, &bytes, &made, &reused);
    ok(n == 6 && fk.released == 0, "6 puts over a 3000-byte budget keep "
       "all 6: a put gives nothing back");

    fk.passed_upto = fk.marks - 1;      /* the newest has not passed */

    q = slora_spares_get(s, 5000);
    slora_spares_stats(s, &n, &bytes, &made, &reused);
    ok(q != NULL && fk.released == 3 && n == 3 && bytes == 3000,
       "a get gives back the oldest passed spares beyond the budget (3)");

    /* the 3 kept: p[3], p[4] (passed) and p[5] (not) */
    p[0] = slora_spares_get(s, 1000);
    ok(p[0] == p[3], "the oldest passed spare fits first");

    slora_spares_put(s, p[0], 1000);
    slora_spares_put(s, q, 5000);
    slora_spares_free(s);
}


/* 4 threads get and put blocks of 4 sizes while the marks pass. */

#define THREADS  4
#define ROUNDS   2000

static slora_spares_t  *shared;


static void *
churn(void *arg)
{
    int       i, k;
    size_t    size;
    uint8_t  *p;
    int       bad;

    k = (int) (intptr_t) arg;
    bad = 0;

    for (i = 0; i < ROUNDS; i++) {
        size = (size_t) 512 << ((i + k) % 4);
        p = slora_spares_get(shared, size);
        if (p == NULL || p[0] != 0 || p[size - 1] != 0) {
            bad++;
            continue;
        }

        memset(p, k + 1, size);
        slora_spares_put(shared, p, size);

        pthread_mutex_lock(&fk.lock);
        fk.passed_upto = fk.marks > 2 ? fk.marks - 2 : 0;
        pthread_mutex_unlock(&fk.lock);
    }

    return (void *) (intptr_t) bad;
}


static void
test_threads(void)
{
    int         t, bad;
    void       *r;
    size_t      n, bytes, made, reused;
    pthread_t   th[THREADS];

    shared = make(64 * 1024);

    for (t = 0; t < THREADS; t++) {
        pthread_create(&th[t], NULL, churn, (void *) (intptr_t) t);
    }

    bad = 0;
    for (t = 0; t < THREADS; t++) {
        pthread_join(th[t], &r);
        bad += (int) (intptr_t) r;
    }

    slora_spares_stats(shared, &n, &bytes, &made, &reused);
    ok(bad == 0, "4 threads x %d rounds: every block came zeroed", ROUNDS);
    ok(made + reused == (size_t) THREADS * ROUNDS && reused > made,
       "... every get made or reused one (%zu made, %zu reused)", made,
       reused);

    slora_spares_free(shared);
    ok(fk.released == fk.made, "... and free gave back every block made "
       "(%zu)", fk.made);
}


/*
 * No way to mark (memory no upload reads; unmark is there, mark is not):
 * two gets without a put are two blocks; a put block goes back to the
 * next get of its size at once, zeroed, and is not handed out twice;
 * unmark is never called on the NULL mark such a block has.
 */
static void
test_unmarked(void)
{
    size_t                n, bytes, made, reused;
    unsigned char        *a, *b, *c, *d;
    slora_spares_t       *s;
    slora_spares_conf_t   conf;

    memset(&conf, 0, sizeof(conf));
    ok(slora_spares_create(&conf) == NULL, "no alloc or release: refused");

    fake_conf(&conf, 1 << 20);
    conf.mark = NULL;
    conf.passed = NULL;
    conf.drain = NULL;

    s = slora_spares_create(&conf);
    a = slora_spares_get(s, 1000);
    b = slora_spares_get(s, 1000);
    ok(a != NULL && b != NULL && a != b && fk.made == 2,
       "unmarked: two gets without a put, two blocks");

    memset(a, 0xab, 1000);
    slora_spares_put(s, a, 1000);
    c = slora_spares_get(s, 1000);
    d = slora_spares_get(s, 1000);
    ok(c == a && fk.made == 3,
       "... a put block goes to the next get of its size at once");
    ok(d != NULL && d != a && d != b,
       "... and to that get only: the next one makes another");
    ok(c[0] == 0 && c[999] == 0 && memchr(c, 0xab, 1000) == NULL,
       "... zeroed");

    slora_spares_put(s, b, 1000);
    slora_spares_put(s, c, 1000);
    slora_spares_put(s, d, 1000);
    slora_spares_stats(s, &n, &bytes, &made, &reused);
    ok(n == 3 && bytes == 3000 && made == 3 && reused == 1,
       "stats: 3 spares of 3000 bytes, 3 made, 1 reused");

    slora_spares_free(s);
    ok(fk.released == 3 && fk.unmarked == 0,
       "free gives back the 3; no NULL mark was ever unmarked");
}


/*
 * A mark that cannot be made (the backend's mark returns NULL): the
 * block may still be read, so no get hands it out, even of its size,
 * and no budget gives it back; free does, after draining, and frees no
 * NULL mark.
 */
static void
test_no_mark(void)
{
    size_t                n, bytes, made, reused;
    void                 *a, *b, *c;
    slora_spares_t       *s;
    slora_spares_conf_t   conf;

    fake_conf(&conf, 0);
    conf.mark = fake_mark_none;

    s = slora_spares_create(&conf);
    a = slora_spares_get(s, 1000);
    slora_spares_put(s, a, 1000);
    b = slora_spares_get(s, 1000);
    c = slora_spares_get(s, 1000);
    slora_spares_stats(s, &n, &bytes, &made, &reused);
    ok(b != a && c != a && b != c && fk.made == 3 && reused == 0,
       "no mark: a put block is not handed out again");
    ok(n == 1 && bytes == 1000 && fk.released == 0,
       "... nor given back beyond a budget of 0 bytes");

    slora_spares_free(s);
    ok(fk.released == 1 && fk.drains == 1 && fk.unmarked == 0,
       "free drains, then gives it back, freeing no NULL mark");

    free(b);
    free(c);
}


/*
 * Marks that need no freeing (no unmark; a mark is a count): a passed
 * spare is handed out, one beyond the budget given back, and free gives
 * back the rest, all without an unmark to call.
 */
static void
test_no_unmark(void)
{
    void                 *a, *b, *c;
    slora_spares_t       *s;
    slora_spares_conf_t   conf;

    fake_conf(&conf, 1000);
    conf.mark = fake_mark_seq;
    conf.passed = fake_passed_seq;
    conf.unmark = NULL;
    conf.drain = NULL;

    s = slora_spares_create(&conf);
    a = slora_spares_get(s, 1000);
    b = slora_spares_get(s, 2000);
    slora_spares_put(s, a, 1000);
    slora_spares_put(s, b, 2000);
    fk.passed_upto = fk.marks + 1;

    c = slora_spares_get(s, 2000);
    ok(c == b && fk.released == 1,
       "no unmark: a passed spare is taken, the one over budget given back");

    slora_spares_put(s, c, 2000);
    slora_spares_free(s);
    ok(fk.released == 2 && fk.made == 2, "... and free gives back the other");
}


static slora_spares_t *
make(size_t max_bytes)
{
    slora_spares_conf_t  conf;

    fake_conf(&conf, max_bytes);

    return slora_spares_create(&conf);
}


/* Every fake function in conf, and the fake's counts at 0; a test may
 * take some functions out before it creates the spares. */
static void
fake_conf(slora_spares_conf_t *conf, size_t max_bytes)
{
    memset(conf, 0, sizeof(slora_spares_conf_t));
    conf->alloc = fake_alloc;
    conf->release = fake_release;
    conf->mark = fake_mark;
    conf->passed = fake_passed;
    conf->unmark = fake_unmark;
    conf->drain = fake_drain;
    conf->ctx = &fk;
    conf->max_bytes = max_bytes;

    fk.made = 0;
    fk.released = 0;
    fk.drains = 0;
    fk.marks = 0;
    fk.passed_upto = 0;
    fk.unmarked = 0;
}


static void *
fake_alloc(void *ctx, size_t bytes)
{
    fake_t  *f = ctx;
    void    *p;

    p = malloc(bytes);
    if (p != NULL) {
        /* not zeroed, as pinned memory comes */
        memset(p, 0x5a, bytes);
        pthread_mutex_lock(&f->lock);
        f->made++;
        pthread_mutex_unlock(&f->lock);
    }

    return p;
}


static void
fake_release(void *ctx, void *p)
{
    fake_t  *f = ctx;

    pthread_mutex_lock(&f->lock);
    f->released++;
    pthread_mutex_unlock(&f->lock);
    free(p);
}


static void *
fake_mark(void *ctx)
{
    fake_t    *f = ctx;
    uint64_t  *m;

    m = malloc(sizeof(*m));
    if (m != NULL) {
        pthread_mutex_lock(&f->lock);
        *m = f->marks++;
        pthread_mutex_unlock(&f->lock);
    }

    return m;
}


/* A mark that cannot be made. */
static void *
fake_mark_none(void *ctx)
{
    (void) ctx;

    return NULL;
}


/* Marks 1, 2, 3...: points that need no freeing. */
static void *
fake_mark_seq(void *ctx)
{
    fake_t  *f = ctx;

    return (void *) (uintptr_t) ++f->marks;
}


static int
fake_passed_seq(void *ctx, void *mark)
{
    fake_t  *f = ctx;

    return (uintptr_t) mark < f->passed_upto;
}


static int
fake_passed(void *ctx, void *mark)
{
    fake_t  *f = ctx;
    int      yes;

    pthread_mutex_lock(&f->lock);
    yes = *(uint64_t *) mark < f->passed_upto;
    pthread_mutex_unlock(&f->lock);

    return yes;
}


static void
fake_unmark(void *ctx, void *mark)
{
    fake_t  *f = ctx;

    pthread_mutex_lock(&f->lock);
    f->unmarked++;
    pthread_mutex_unlock(&f->lock);
    free(mark);
}


static void
fake_drain(void *ctx)
{
    fake_t  *f = ctx;

    pthread_mutex_lock(&f->lock);
    f->drains++;
    f->passed_upto = f->marks;
    pthread_mutex_unlock(&f->lock);
}
