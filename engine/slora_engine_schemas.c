/*
 * slora_engine_schemas.c: the compiled constraints the engine keeps, and
 * their compiles off its step loop. A request's schema (or regex,
 * grammar, choice, structural tag) is compiled at its submit, on the
 * engine thread between steps, where a compile that spends its work
 * budget (some 4 ms, bench/RESULTS.md) holds every running request's
 * next token. Clients send the same constraint again and again (one
 * application's response_format, one set of tools, the n choices of one
 * request), so the engine keeps the last SLORA_ENGINE_SCHEMAS compiled,
 * by form and text, and a request of one of them takes it as it is. A
 * caller that can hold a request back (nginx's engine process) asks
 * slora_engine_schema_ready() first: a constraint not kept is compiled
 * on the engine's compile thread, and the request submitted once it is
 * kept, so that no compile runs on the step loop at all.
 *
 * The one idea: a compiled schema is read only once made (one
 * allocation, which nothing writes after its compile), so requests share
 * one, counted. The least recently taken that no request holds makes
 * room; one the compile thread made for parked requests is spared
 * until their submits (through the step after the one that saw it done:
 * a request is asked again after each step; one whose client went runs
 * out then), or it could be cleared for the next compile and compiled
 * again, over and over. Where every entry is held, compiling
 * or so spared, the entries grow by a table of SLORA_ENGINE_SCHEMAS (an
 * entry never moves: requests point at theirs), so that a new
 * constraint is compiled on the thread however many distinct ones are
 * live; they never shrink, their count the most live at once. The
 * entries hold at most SLORA_ENGINE_SCHEMA_BYTES between them, but for
 * those held or spared: a new one's room is made by clearing the
 * others, and what goes over the bound is cleared as its requests let it
 * go (and at each step, for the spared); a schema over that bound alone
 * is the request's own, compiled at its submit and freed with it (one
 * from the compile thread is kept until it is let go). The compile
 * thread reads only its job's copy of the text and writes only the job;
 * the engine thread installs the done jobs into their entries.
 */

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slora_engine_int.h"


typedef struct slora_engine_job_s  slora_engine_job_t;

struct slora_engine_job_s {
    slora_engine_job_t     *next;
    slora_engine_schema_t  *entry;
    int                     form;
    char                   *text;           /* the entry's, which stays
                                               while it compiles */
    size_t                  len;
    slora_json_schema_t    *schema;         /* NULL: refused, */
    char                    msg[SLORA_ERR_LEN];  /* saying why */
};

struct slora_engine_compiler_s {
    pthread_t               thread;
    pthread_mutex_t         lock;
    pthread_cond_t          cond;
    slora_engine_job_t     *todo;           /* oldest first */
    slora_engine_job_t    **todo_tail;
    slora_engine_job_t     *done;
    int                     stop;
    int                     wake_fd;
};


static void *slora_engine_compiler_run(void *data);
static int slora_engine_compiler_start(slora_engine_t *e);
static void slora_engine_schemas_install(slora_engine_t *e);
static void slora_engine_schemas_trim(slora_engine_t *e);
static slora_engine_schema_t *slora_engine_schema_find(slora_engine_t *e,
    int form, const char *text, size_t len, uint64_t hash);
static slora_engine_schema_t *slora_engine_schema_room(slora_engine_t *e,
    size_t size, const slora_engine_schema_t *keep);
static slora_engine_schema_t *slora_engine_schema_empty(slora_engine_t *e);
static slora_engine_schema_t *slora_engine_schema_grow(slora_engine_t *e);
static slora_engine_schema_t *slora_engine_schema_oldest(slora_engine_t *e,
    const slora_engine_schema_t *keep);
static int slora_engine_schema_fresh(const slora_engine_t *e,
    const slora_engine_schema_t *k);
static int slora_engine_schema_set(slora_engine_t *e,
    slora_engine_schema_t *k, int form, const char *text, size_t len,
    uint64_t hash);
static void slora_engine_schema_clear(slora_engine_t *e,
    slora_engine_schema_t *k);
static uint64_t slora_engine_schema_mix(int form, uint64_t hash);


/*
 * The compiled schema of text in form, for q: one kept, or compiled and
 * kept where there is room. *held is the entry q holds (NULL: the schema
 * is q's own); slora_engine_schema_drop lets it go. NULL: the compiler
 * refused it, err says why.
 */
slora_json_schema_t *
slora_engine_schema_take(slora_engine_t *e, int form, const char *text,
    size_t len, slora_engine_schema_t **held, slora_err_t *err)
{
    size_t                  size;
    uint64_t                hash;
    slora_json_schema_t    *s;
    slora_engine_schema_t  *k;

    hash = slora_fnv1a(text, len);
    *held = NULL;

    k = slora_engine_schema_find(e, form, text, len, hash);

    if (k != NULL && k->schema != NULL) {
        k->refs++;
        k->used = ++e->schema_clock;
        e->schema_hits++;
        *held = k;
        return k->schema;
    }

    if (k != NULL && k->refused != NULL) {
        /* the compile thread's answer, not compiled again */
        slora_err_set(err, SLORA_ERROR, "%s", k->refused);
        return NULL;
    }

    s = slora_json_form_parse(form, text, len, err);
    if (s == NULL) {
        return NULL;
    }

    e->schema_compiles++;

    if (k != NULL) {
        /* compiling on the thread: this one is the request's own */
        return s;
    }

    size = slora_json_schema_size(s) + len;
    k = slora_engine_schema_room(e, size, NULL);

    if (k == NULL || slora_engine_schema_set(e, k, form, text, len, hash)
                     != SLORA_OK)
    {
        /* too big to keep, or no memory: the request's own */
        return s;
    }

    k->schema = s;
    k->size = size;
    k->refs = 1;
    e->schema_bytes += size;
    e->schema_version++;
    *held = k;

    return s;
}


/* q's schema let go: held's count down (it stays kept for the next
 * request of its text, but where the entries hold more than their
 * bytes' bound), or s freed where it was q's own. */
void
slora_engine_schema_drop(slora_engine_t *e, slora_engine_schema_t *held,
    slora_json_schema_t *s)
{
    if (held == NULL) {
        slora_json_schema_free(s);
        return;
    }

    held->refs--;

    if (held->refs == 0) {
        slora_engine_schemas_trim(e);
    }
}


void
slora_engine_schemas_step(slora_engine_t *e)
{
    e->schema_steps++;
    slora_engine_schemas_install(e);

    /* those spared for a parked request that is gone run out */
    slora_engine_schemas_trim(e);
}


/*
 * 1 where a request of text in form may be submitted now without a
 * compile on the step loop (kept; or refused by the compile thread, the
 * submit giving its reason), or where it cannot be compiled ahead (no
 * memory, or no compile thread: the submit compiles it). 0: it is
 * compiling on the compile thread, the jobs in the order asked; the
 * engine's wake fd is written when it is done, and the request waits for
 * a later call to say 1.
 */
int
slora_engine_schema_ready(slora_engine_t *e, int form, const char *text,
    size_t len)
{
    uint64_t                hash;
    slora_engine_job_t     *job;
    slora_engine_schema_t  *k;

    slora_engine_schemas_install(e);

    hash = slora_fnv1a(text, len);
    k = slora_engine_schema_find(e, form, text, len, hash);

    if (k != NULL) {
        if (k->schema != NULL) {
            /* the most recent: kept for the submit that follows */
            k->used = ++e->schema_clock;
            return 1;
        }

        /* compiling; or refused on the thread, which the submit says */
        return !k->compiling;
    }

    if (e->compiler == NULL && slora_engine_compiler_start(e) != SLORA_OK) {
        return 1;
    }

    /* an entry, whatever the bytes kept: the install makes room for the
     * schema's once it knows them; the entries grow rather than clear
     * one compiled for another parked request */
    k = slora_engine_schema_empty(e);

    if (k == NULL && (k = slora_engine_schema_oldest(e, NULL)) != NULL) {
        slora_engine_schema_clear(e, k);
    }

    if (k == NULL) {
        k = slora_engine_schema_grow(e);
    }

    job = k != NULL ? calloc(1, sizeof(slora_engine_job_t)) : NULL;

    if (job == NULL
        || slora_engine_schema_set(e, k, form, text, len, hash) != SLORA_OK)
    {
        free(job);
        return 1;
    }

    k->compiling = 1;
    job->entry = k;
    job->form = form;
    job->text = k->text;
    job->len = len;

    pthread_mutex_lock(&e->compiler->lock);
    *e->compiler->todo_tail = job;
    e->compiler->todo_tail = &job->next;
    pthread_cond_signal(&e->compiler->cond);
    pthread_mutex_unlock(&e->compiler->lock);

    return 0;
}


/* The compile thread stopped (the engine's end begins: before its wake
 * fd closes). Jobs not done are dropped with their entries. */
void
slora_engine_schemas_stop(slora_engine_t *e)
{
    slora_engine_job_t  *job;

    if (e->compiler == NULL) {
        return;
    }

    pthread_mutex_lock(&e->compiler->lock);
    e->compiler->stop = 1;
    pthread_cond_signal(&e->compiler->cond);
    pthread_mutex_unlock(&e->compiler->lock);

    pthread_join(e->compiler->thread, NULL);

    while (e->compiler->todo != NULL || e->compiler->done != NULL) {
        job = e->compiler->todo != NULL ? e->compiler->todo
                                        : e->compiler->done;

        if (job == e->compiler->todo) {
            e->compiler->todo = job->next;

        } else {
            e->compiler->done = job->next;
        }

        slora_json_schema_free(job->schema);
        free(job);
    }

    pthread_mutex_destroy(&e->compiler->lock);
    pthread_cond_destroy(&e->compiler->cond);
    free(e->compiler);
    e->compiler = NULL;
}


uint64_t
slora_engine_schema_key(int form, const char *text, size_t len)
{
    return slora_engine_schema_mix(form, slora_fnv1a(text, len));
}


/* The most recently taken first: each pass finds the kept entry taken
 * last before the one the pass before found (the clock's values are
 * each one entry's). Asked as the keys change, n passes over the
 * entries. */
int32_t
slora_engine_schema_keys(const slora_engine_t *e, uint64_t *keys, int32_t n)
{
    int32_t                           got;
    uint32_t                          i;
    uint64_t                          before;
    const slora_engine_schema_t      *k, *next;
    const slora_engine_schema_tab_t  *t;

    before = UINT64_MAX;

    for (got = 0; got < n; got++) {
        next = NULL;

        for (t = &e->schemas; t != NULL; t = t->next) {
            for (i = 0; i < SLORA_ENGINE_SCHEMAS; i++) {
                k = &t->entry[i];

                if (k->schema != NULL && k->used < before
                    && (next == NULL || k->used > next->used))
                {
                    next = k;
                }
            }
        }

        if (next == NULL) {
            break;
        }

        keys[got] = slora_engine_schema_mix(next->form, next->hash);
        before = next->used;
    }

    return got;
}


uint64_t
slora_engine_schema_version(const slora_engine_t *e)
{
    return e->schema_version;
}


/* Every kept schema freed: the engine's end, no request left. */
void
slora_engine_schemas_free(slora_engine_t *e)
{
    uint32_t                    i;
    slora_engine_schema_tab_t  *t, *next;

    slora_engine_schemas_stop(e);

    for (t = &e->schemas; t != NULL; t = next) {
        next = t->next;

        for (i = 0; i < SLORA_ENGINE_SCHEMAS; i++) {
            if (t->entry[i].text != NULL) {
                slora_engine_schema_clear(e, &t->entry[i]);
            }
        }

        if (t != &e->schemas) {
            free(t);
        }
    }

    e->schemas.next = NULL;
}


/* The compiled entries, and those compiling (the engine's stats). */
void
slora_engine_schemas_count(const slora_engine_t *e, int32_t *kept,
    int32_t *compiling)
{
    uint32_t                          i;
    const slora_engine_schema_tab_t  *t;

    *kept = 0;
    *compiling = 0;

    for (t = &e->schemas; t != NULL; t = t->next) {
        for (i = 0; i < SLORA_ENGINE_SCHEMAS; i++) {
            *kept += t->entry[i].schema != NULL;
            *compiling += t->entry[i].compiling;
        }
    }
}


static int
slora_engine_compiler_start(slora_engine_t *e)
{
    int                       rc;
    sigset_t                  all, old;
    slora_engine_compiler_t  *c;

    c = calloc(1, sizeof(slora_engine_compiler_t));
    if (c == NULL) {
        return SLORA_ERROR;
    }

    c->wake_fd = e->wake_fd;
    c->todo_tail = &c->todo;

    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return SLORA_ERROR;
    }

    if (pthread_cond_init(&c->cond, NULL) != 0) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        return SLORA_ERROR;
    }

    /* signals stay the engine's thread's (its poll is woken by them) */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&c->thread, NULL, slora_engine_compiler_run, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (rc != 0) {
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return SLORA_ERROR;
    }

    e->compiler = c;

    return SLORA_OK;
}


/* The compile thread: one job at a time, the engine woken after each. */
static void *
slora_engine_compiler_run(void *data)
{
    ssize_t                   w;
    uint64_t                  one;
    slora_err_t               err;
    slora_engine_job_t       *job;
    slora_engine_compiler_t  *c = data;

    one = 1;

    pthread_mutex_lock(&c->lock);

    for ( ;; ) {
        while (c->todo == NULL && !c->stop) {
            pthread_cond_wait(&c->cond, &c->lock);
        }

        if (c->stop) {
            break;
        }

        job = c->todo;
        c->todo = job->next;

        if (c->todo == NULL) {
            c->todo_tail = &c->todo;
        }

        pthread_mutex_unlock(&c->lock);

        job->schema = slora_json_form_parse(job->form, job->text, job->len,
                                            &err);

        if (job->schema == NULL) {
            snprintf(job->msg, sizeof(job->msg), "%s", err.msg);
        }

        pthread_mutex_lock(&c->lock);
        job->next = c->done;
        c->done = job;

        if (c->wake_fd >= 0) {
            w = write(c->wake_fd, &one, sizeof(one));
            (void) w;
        }
    }

    pthread_mutex_unlock(&c->lock);

    return NULL;
}


/* The compile thread's done jobs into their entries (the engine thread,
 * at each step and each slora_engine_schema_ready), spared for their
 * parked requests. */
static void
slora_engine_schemas_install(slora_engine_t *e)
{
    slora_engine_job_t     *job, *next;
    slora_engine_schema_t  *k;

    if (e->compiler == NULL) {
        return;
    }

    pthread_mutex_lock(&e->compiler->lock);
    job = e->compiler->done;
    e->compiler->done = NULL;
    pthread_mutex_unlock(&e->compiler->lock);

    for ( /* void */ ; job != NULL; job = next) {
        next = job->next;
        k = job->entry;
        k->compiling = 0;
        k->fresh = 1;
        k->done_step = e->schema_steps;
        k->used = ++e->schema_clock;

        if (job->schema != NULL) {
            e->schema_compiles++;
            k->size = slora_json_schema_size(job->schema) + k->len;
            slora_engine_schema_room(e, k->size, k);
            k->schema = job->schema;
            e->schema_bytes += k->size;
            e->schema_version++;

        } else {
            /* NULL without memory: the submit compiles it again */
            k->refused = strdup(job->msg);

            if (k->refused == NULL) {
                slora_engine_schema_clear(e, k);
            }
        }

        free(job);
    }
}


static slora_engine_schema_t *
slora_engine_schema_find(slora_engine_t *e, int form, const char *text,
    size_t len, uint64_t hash)
{
    uint32_t                    i;
    slora_engine_schema_t      *k;
    slora_engine_schema_tab_t  *t;

    for (t = &e->schemas; t != NULL; t = t->next) {
        for (i = 0; i < SLORA_ENGINE_SCHEMAS; i++) {
            k = &t->entry[i];

            if (k->text != NULL && k->hash == hash && k->len == len
                && k->form == form && memcmp(k->text, text, len) == 0)
            {
                return k;
            }
        }
    }

    return NULL;
}


/* An empty entry for a schema of size bytes, the least recently used of
 * those slora_engine_schema_oldest may clear cleared while the entries
 * would hold too much, and the entries grown where every one is held,
 * compiling or spared; NULL: size alone is over the bound, or no memory.
 * With keep (an entry whose compile is done) only the bytes are made
 * room for, as far as those entries allow. */
static slora_engine_schema_t *
slora_engine_schema_room(slora_engine_t *e, size_t size,
    const slora_engine_schema_t *keep)
{
    slora_engine_schema_t  *empty, *oldest;

    if (size > SLORA_ENGINE_SCHEMA_BYTES && keep == NULL) {
        return NULL;
    }

    for ( ;; ) {
        empty = slora_engine_schema_empty(e);

        if ((empty != NULL || keep != NULL)
            && e->schema_bytes + size <= SLORA_ENGINE_SCHEMA_BYTES)
        {
            return empty;
        }

        oldest = slora_engine_schema_oldest(e, keep);

        if (oldest == NULL) {
            /* what is kept is held: the bytes go over the bound until
             * their requests end */
            return keep != NULL ? NULL
                   : empty != NULL ? empty : slora_engine_schema_grow(e);
        }

        slora_engine_schema_clear(e, oldest);
    }
}


/* The first empty entry, or NULL. */
static slora_engine_schema_t *
slora_engine_schema_empty(slora_engine_t *e)
{
    uint32_t                    i;
    slora_engine_schema_tab_t  *t;

    for (t = &e->schemas; t != NULL; t = t->next) {
        for (i = 0; i < SLORA_ENGINE_SCHEMAS; i++) {
            if (t->entry[i].text == NULL) {
                return &t->entry[i];
            }
        }
    }

    return NULL;
}


/* A table of empty entries more, every entry held, compiling or spared:
 * its first entry, or NULL without memory. */
static slora_engine_schema_t *
slora_engine_schema_grow(slora_engine_t *e)
{
    slora_engine_schema_tab_t  *t, **last;

    t = calloc(1, sizeof(slora_engine_schema_tab_t));
    if (t == NULL) {
        return NULL;
    }

    for (last = &e->schemas.next; *last != NULL; last = &(*last)->next) {
        /* void */
    }

    *last = t;

    return &t->entry[0];
}


/* The entry to clear for room: the least recently taken of those no
 * request holds, not compiling, not spared for a parked request (nor
 * keep). NULL: none. */
static slora_engine_schema_t *
slora_engine_schema_oldest(slora_engine_t *e,
    const slora_engine_schema_t *keep)
{
    uint32_t                    i;
    slora_engine_schema_t      *k, *oldest;
    slora_engine_schema_tab_t  *t;

    oldest = NULL;

    for (t = &e->schemas; t != NULL; t = t->next) {
        for (i = 0; i < SLORA_ENGINE_SCHEMAS; i++) {
            k = &t->entry[i];

            if (k->text == NULL || k == keep || k->refs > 0
                || k->compiling || slora_engine_schema_fresh(e, k))
            {
                continue;
            }

            if (oldest == NULL || k->used < oldest->used) {
                oldest = k;
            }
        }
    }

    return oldest;
}


/* 1 while k, compiled on the thread, waits for the submits of the
 * requests parked on it: through the step after the one that saw it
 * done (a request whose compile is done is asked again after each
 * step), whether or not one of them took it already (another's submit
 * may have failed and let it go). */
static int
slora_engine_schema_fresh(const slora_engine_t *e,
    const slora_engine_schema_t *k)
{
    return k->fresh && e->schema_steps - k->done_step < 2;
}


/* While the entries hold more than their bound (requests held them
 * over it, or they were spared), the least recently taken that may go
 * cleared. */
static void
slora_engine_schemas_trim(slora_engine_t *e)
{
    slora_engine_schema_t  *k;

    while (e->schema_bytes > SLORA_ENGINE_SCHEMA_BYTES
           && (k = slora_engine_schema_oldest(e, NULL)) != NULL)
    {
        slora_engine_schema_clear(e, k);
    }
}


/* k (empty) takes text as its key, its schema to come. */
static int
slora_engine_schema_set(slora_engine_t *e, slora_engine_schema_t *k,
    int form, const char *text, size_t len, uint64_t hash)
{
    k->text = malloc(len + 1);
    if (k->text == NULL) {
        return SLORA_ERROR;
    }

    memcpy(k->text, text, len);
    k->text[len] = '\0';
    k->len = len;
    k->hash = hash;
    k->form = form;
    k->used = ++e->schema_clock;

    return SLORA_OK;
}


static void
slora_engine_schema_clear(slora_engine_t *e, slora_engine_schema_t *k)
{
    if (k->schema != NULL) {
        e->schema_bytes -= k->size;
        e->schema_version++;
        slora_json_schema_free(k->schema);
    }

    free(k->text);
    free(k->refused);
    memset(k, 0, sizeof(*k));
}


/* A key of the text's hash and its form (mixed in by an odd multiplier,
 * the golden ratio's), never 0. */
static uint64_t
slora_engine_schema_mix(int form, uint64_t hash)
{
    uint64_t  key;

    key = hash ^ ((uint64_t) (form + 1) * 0x9e3779b97f4a7c15ull);

    return key != 0 ? key : 1;
}
