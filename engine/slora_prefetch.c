/*
 * slora_prefetch.c: a small fixed pool of threads that turn adapter
 * folders into host page images, fed and drained by the engine's thread.
 *
 * The one idea: a load is a slot that moves from "queued" to "running"
 * to "done" under one mutex; the file reading happens outside it. A
 * thread claims the oldest queued slot by marking it running under the
 * mutex, so no two threads ever take the same load, and a key has one
 * slot at most (submit declines a second), so no adapter is read twice
 * at once. At most SLORA_PREFETCH_MAX slots exist, so a burst of hints
 * cannot queue unbounded work or memory. Two condition variables:
 * "cond" wakes a thread for work, "done" wakes an engine thread that
 * settles a running load (slora_prefetch_settle()).
 */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slora_prefetch.h"


typedef enum {
    SLORA_PF_FREE = 0,
    SLORA_PF_QUEUED,
    SLORA_PF_RUNNING,
    SLORA_PF_DONE
} slora_prefetch_state_e;


typedef struct {
    slora_prefetch_state_e   state;
    uint64_t                 order;
    char                    *name;
    char                    *dir;
    char                    *sha256;
    slora_prefetch_done_t    done;
} slora_prefetch_slot_t;


struct slora_prefetch_s {
    slora_model_config_t     cfg;
    int64_t                  page_elems;
    int32_t                  slices;
    const slora_host_mem_t  *mem;
    int                      wake_fd;
    int32_t                  n_threads;
    int32_t                  started;
    pthread_t                threads[SLORA_PREFETCH_MAX];
    pthread_mutex_t          lock;
    pthread_cond_t           cond;
    pthread_cond_t           done;
    int                      stop;
    uint64_t                 next_order;
    int32_t                  n_out;
    int32_t                  running;
    int32_t                  peak_running;
    slora_prefetch_slot_t    slots[SLORA_PREFETCH_MAX];
};


static void *slora_prefetch_main(void *arg);
static void slora_prefetch_clear(slora_prefetch_slot_t *s);
static slora_prefetch_slot_t *slora_prefetch_find(slora_prefetch_t *p,
    const void *key);


slora_prefetch_t *
slora_prefetch_create(const slora_model_config_t *cfg, int64_t page_elems,
    int32_t slices, const slora_host_mem_t *mem, int32_t n_threads,
    int wake_fd, slora_err_t *err)
{
    long               cores;
    slora_prefetch_t  *p;

    if (n_threads < 0 || n_threads > SLORA_PREFETCH_MAX) {
        slora_err_set(err, SLORA_ERROR, "prefetch: %d threads: not 0 (the "
                      "default) to %d", n_threads, SLORA_PREFETCH_MAX);
        return NULL;
    }

    /* half the cores, which the engine's steps need too, 1 to 4 */
    if (n_threads == 0) {
        cores = sysconf(_SC_NPROCESSORS_ONLN) / 2;
        n_threads = (int32_t) (cores < 1 ? 1 : cores > SLORA_PREFETCH_THREADS
                                               ? SLORA_PREFETCH_THREADS
                                               : cores);
    }

    p = calloc(1, sizeof(slora_prefetch_t));
    if (p == NULL) {
        slora_err_set(err, SLORA_ERROR, "prefetch: out of memory");
        return NULL;
    }

    p->cfg = *cfg;
    p->page_elems = page_elems;
    p->slices = slices;
    p->mem = mem;
    p->wake_fd = wake_fd;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    pthread_cond_init(&p->done, NULL);

    while (p->started < n_threads) {
        if (pthread_create(&p->threads[p->started], NULL,
                           slora_prefetch_main, p)
            != 0)
        {
            slora_prefetch_free(p);
            slora_err_set(err, SLORA_ERROR, "prefetch: cannot start thread "
                          "%d of %d", p->started + 1, n_threads);
            return NULL;
        }

        p->started++;
    }

    return p;
}


void
slora_prefetch_free(slora_prefetch_t *p)
{
    int32_t  i;

    if (p == NULL) {
        return;
    }

    /* a running load finishes, a queued one is dropped with its slot */
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);

    for (i = 0; i < p->started; i++) {
        pthread_join(p->threads[i], NULL);
    }

    for (i = 0; i < SLORA_PREFETCH_MAX; i++) {
        slora_prefetch_clear(&p->slots[i]);
    }

    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}


int
slora_prefetch_submit(slora_prefetch_t *p, void *key, uint64_t gen,
    const char *name, const char *dir, const char *sha256)
{
    int32_t                 i, free_slot;
    slora_prefetch_slot_t  *s;

    pthread_mutex_lock(&p->lock);

    free_slot = -1;
    for (i = 0; i < SLORA_PREFETCH_MAX; i++) {
        s = &p->slots[i];
        if (s->state == SLORA_PF_FREE) {
            free_slot = free_slot < 0 ? i : free_slot;

        } else if (s->done.key == key) {
            pthread_mutex_unlock(&p->lock);
            return SLORA_DECLINED;
        }
    }

    if (free_slot < 0) {
        pthread_mutex_unlock(&p->lock);
        return SLORA_BUSY;
    }

    s = &p->slots[free_slot];
    s->name = strdup(name);
    s->dir = strdup(dir);
    s->sha256 = sha256 != NULL ? strdup(sha256) : NULL;

    if (s->name == NULL || s->dir == NULL
        || (sha256 != NULL && s->sha256 == NULL))
    {
        slora_prefetch_clear(s);
        pthread_mutex_unlock(&p->lock);
        return SLORA_ERROR;
    }

    s->done.key = key;
    s->done.gen = gen;
    s->order = p->next_order++;
    s->state = SLORA_PF_QUEUED;
    p->n_out++;

    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);

    return SLORA_OK;
}


int
slora_prefetch_take(slora_prefetch_t *p, slora_prefetch_done_t *out)
{
    int32_t                 i;
    slora_prefetch_slot_t  *s;

    pthread_mutex_lock(&p->lock);

    for (i = 0; i < SLORA_PREFETCH_MAX; i++) {
        s = &p->slots[i];
        if (s->state != SLORA_PF_DONE) {
            continue;
        }

        *out = s->done;
        memset(&s->done, 0, sizeof(s->done));
        slora_prefetch_clear(s);
        p->n_out--;

        pthread_mutex_unlock(&p->lock);
        return 1;
    }

    pthread_mutex_unlock(&p->lock);

    return 0;
}


int
slora_prefetch_pending(slora_prefetch_t *p, const void *key)
{
    int  found;

    pthread_mutex_lock(&p->lock);
    found = slora_prefetch_find(p, key) != NULL;
    pthread_mutex_unlock(&p->lock);

    return found;
}


int
slora_prefetch_settle(slora_prefetch_t *p, const void *key)
{
    slora_prefetch_slot_t  *s;

    pthread_mutex_lock(&p->lock);

    s = slora_prefetch_find(p, key);

    if (s != NULL && s->state == SLORA_PF_QUEUED) {
        slora_prefetch_clear(s);
        p->n_out--;
        s = NULL;
    }

    while (s != NULL && s->state == SLORA_PF_RUNNING) {
        pthread_cond_wait(&p->done, &p->lock);
        s = slora_prefetch_find(p, key);
    }

    pthread_mutex_unlock(&p->lock);

    return s != NULL;
}


int32_t
slora_prefetch_out(slora_prefetch_t *p)
{
    int32_t  n;

    pthread_mutex_lock(&p->lock);
    n = p->n_out;
    pthread_mutex_unlock(&p->lock);

    return n;
}


int32_t
slora_prefetch_threads(slora_prefetch_t *p)
{
    return p->n_threads;
}


int32_t
slora_prefetch_running(slora_prefetch_t *p)
{
    int32_t  n;

    pthread_mutex_lock(&p->lock);
    n = p->running;
    pthread_mutex_unlock(&p->lock);

    return n;
}


int32_t
slora_prefetch_peak_running(slora_prefetch_t *p)
{
    int32_t  n;

    pthread_mutex_lock(&p->lock);
    n = p->peak_running;
    pthread_mutex_unlock(&p->lock);

    return n;
}


static void *
slora_prefetch_main(void *arg)
{
    int32_t                 i;
    ssize_t                 w;
    uint64_t                one;
    slora_prefetch_t       *p;
    slora_prefetch_slot_t  *s, *pick;

    p = arg;
    one = 1;

    pthread_mutex_lock(&p->lock);

    for ( ;; ) {
        pick = NULL;
        for (i = 0; i < SLORA_PREFETCH_MAX; i++) {
            s = &p->slots[i];
            if (s->state == SLORA_PF_QUEUED
                && (pick == NULL || s->order < pick->order))
            {
                pick = s;
            }
        }

        if (p->stop) {
            break;
        }

        if (pick == NULL) {
            pthread_cond_wait(&p->cond, &p->lock);
            continue;
        }

        pick->state = SLORA_PF_RUNNING;
        p->running++;
        if (p->running > p->peak_running) {
            p->peak_running = p->running;
        }
        pthread_mutex_unlock(&p->lock);

        /* the slot's strings are not touched by others while RUNNING */
        pick->done.status = slora_adapter_image_load(&p->cfg, p->page_elems,
                                                     p->slices, p->mem,
                                                     pick->name, pick->dir,
                                                     pick->sha256,
                                                     &pick->done.img,
                                                     &pick->done.err);

        pthread_mutex_lock(&p->lock);
        pick->state = SLORA_PF_DONE;
        p->running--;
        pthread_cond_broadcast(&p->done);

        if (p->wake_fd >= 0) {
            w = write(p->wake_fd, &one, sizeof(one));
            (void) w;
        }
    }

    pthread_mutex_unlock(&p->lock);

    return NULL;
}


/* The slot of key's load, under the lock; NULL if none is out. */
static slora_prefetch_slot_t *
slora_prefetch_find(slora_prefetch_t *p, const void *key)
{
    int32_t  i;

    for (i = 0; i < SLORA_PREFETCH_MAX; i++) {
        if (p->slots[i].state != SLORA_PF_FREE
            && p->slots[i].done.key == key)
        {
            return &p->slots[i];
        }
    }

    return NULL;
}


static void
slora_prefetch_clear(slora_prefetch_slot_t *s)
{
    slora_adapter_image_free(&s->done.img);
    free(s->name);
    free(s->dir);
    free(s->sha256);
    s->name = NULL;
    s->dir = NULL;
    s->sha256 = NULL;
    s->done.key = NULL;
    s->state = SLORA_PF_FREE;
}
