/*
 * slora_spares.c: freed host blocks kept for reuse (slora_spares.h).
 *
 * The spares are one list, oldest put first, under a mutex: a get takes
 * the oldest spare that fits and whose mark has passed, and gives back
 * the oldest passed ones beyond the byte budget. Giving back and making
 * blocks happen outside the mutex, on the getter's thread.
 */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "slora_spares.h"


typedef struct slora_spare_s  slora_spare_t;

struct slora_spare_s {
    slora_spare_t  *next;
    void           *p;
    size_t          bytes;
    void           *mark;
};


struct slora_spares_s {
    slora_spares_conf_t   conf;
    pthread_mutex_t       lock;
    slora_spare_t        *head;         /* oldest first */
    slora_spare_t       **tail;
    size_t                n;
    size_t                bytes;
    size_t                made;
    size_t                reused;
};


static int slora_spare_passed(slora_spares_t *s, slora_spare_t *sp);
static void slora_spare_give_back(slora_spares_t *s, slora_spare_t *sp);


slora_spares_t *
slora_spares_create(const slora_spares_conf_t *conf)
{
    slora_spares_t  *s;

    if (conf->alloc == NULL || conf->release == NULL) {
        return NULL;
    }

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }

    s->conf = *conf;
    s->tail = &s->head;

    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        return NULL;
    }

    return s;
}


void
slora_spares_free(slora_spares_t *s)
{
    slora_spare_t  *sp;

    if (s == NULL) {
        return;
    }

    if (s->head != NULL && s->conf.drain != NULL) {
        s->conf.drain(s->conf.ctx);
    }

    while ((sp = s->head) != NULL) {
        s->head = sp->next;
        slora_spare_give_back(s, sp);
    }

    pthread_mutex_destroy(&s->lock);
    free(s);
}


void *
slora_spares_get(slora_spares_t *s, size_t bytes)
{
    void            *p;
    slora_spare_t   *sp, **pp, *give, *fit;

    give = NULL;
    fit = NULL;

    pthread_mutex_lock(&s->lock);

    pp = &s->head;

    while ((sp = *pp) != NULL) {
        if (fit == NULL && sp->bytes >= bytes
            && sp->bytes - bytes <= bytes / 8 && slora_spare_passed(s, sp))
        {
            fit = sp;

        } else if (s->bytes <= s->conf.max_bytes
                   || !slora_spare_passed(s, sp))
        {
            pp = &sp->next;
            continue;
        }

        *pp = sp->next;
        s->n--;
        s->bytes -= sp->bytes;

        if (sp != fit) {
            sp->next = give;
            give = sp;
        }
    }

    s->tail = pp;                   /* the last link, NULL */

    if (fit != NULL) {
        s->reused++;
    }

    pthread_mutex_unlock(&s->lock);

    while ((sp = give) != NULL) {
        give = sp->next;
        slora_spare_give_back(s, sp);
    }

    if (fit != NULL) {
        p = fit->p;
        if (fit->mark != NULL && s->conf.unmark != NULL) {
            s->conf.unmark(s->conf.ctx, fit->mark);
        }
        free(fit);

    } else {
        p = s->conf.alloc(s->conf.ctx, bytes);
        if (p == NULL) {
            return NULL;
        }

        pthread_mutex_lock(&s->lock);
        s->made++;
        pthread_mutex_unlock(&s->lock);
    }

    memset(p, 0, bytes);

    return p;
}


void
slora_spares_put(slora_spares_t *s, void *p, size_t bytes)
{
    slora_spare_t  *sp;

    if (p == NULL) {
        return;
    }

    sp = malloc(sizeof(*sp));
    if (sp == NULL) {
        /* no room to keep it: give it back once the uploads are done */
        if (s->conf.drain != NULL) {
            s->conf.drain(s->conf.ctx);
        }
        s->conf.release(s->conf.ctx, p);
        return;
    }

    sp->next = NULL;
    sp->p = p;
    sp->bytes = bytes;
    sp->mark = s->conf.mark != NULL ? s->conf.mark(s->conf.ctx) : NULL;

    pthread_mutex_lock(&s->lock);
    *s->tail = sp;
    s->tail = &sp->next;
    s->n++;
    s->bytes += bytes;
    pthread_mutex_unlock(&s->lock);
}


void
slora_spares_stats(slora_spares_t *s, size_t *n, size_t *bytes,
    size_t *made, size_t *reused)
{
    pthread_mutex_lock(&s->lock);
    *n = s->n;
    *bytes = s->bytes;
    *made = s->made;
    *reused = s->reused;
    pthread_mutex_unlock(&s->lock);
}


/* With no way to mark, every block is free at once; a block whose mark
 * could not be made waits for the end. */
static int
slora_spare_passed(slora_spares_t *s, slora_spare_t *sp)
{
    if (s->conf.mark == NULL) {
        return 1;
    }

    return sp->mark != NULL && s->conf.passed(s->conf.ctx, sp->mark);
}


static void
slora_spare_give_back(slora_spares_t *s, slora_spare_t *sp)
{
    if (sp->mark != NULL && s->conf.unmark != NULL) {
        s->conf.unmark(s->conf.ctx, sp->mark);
    }

    s->conf.release(s->conf.ctx, sp->p);
    free(sp);
}
