/*
 * slora_meet.c: a group's meetings (see slora_meet.h).
 *
 * The one idea: a round is a counter under one mutex. The last thread
 * in closes the round: it fixes the round's answer, resets the counts
 * for the next and bumps round, which is what the others wait to see
 * change. A waiter reads the answer before it can come again, and the
 * next round cannot close without it, so the answer it reads is its
 * round's.
 */

#include "slora_meet.h"


int
slora_meet_init(slora_meet_t *m, int32_t n)
{
    if (m == NULL || n < 1) {
        return -1;
    }

    m->n = n;
    m->in = 0;
    m->failed = 0;
    m->any_failed = 0;
    m->broken = 0;
    m->round = 0;

    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        return -1;
    }

    if (pthread_cond_init(&m->all_in, NULL) != 0) {
        pthread_mutex_destroy(&m->lock);
        return -1;
    }

    return 0;
}


int
slora_meet(slora_meet_t *m, int failed)
{
    uint64_t  round;
    int       any;

    pthread_mutex_lock(&m->lock);

    round = m->round;
    m->failed += failed != 0;

    if (m->broken) {
        /* nobody waits for the thread that left */

    } else if (++m->in == m->n) {
        m->any_failed = m->failed > 0;
        m->in = 0;
        m->failed = 0;
        m->round++;
        pthread_cond_broadcast(&m->all_in);

    } else {
        while (m->round == round && !m->broken) {
            pthread_cond_wait(&m->all_in, &m->lock);
        }
    }

    any = m->broken || m->any_failed;
    pthread_mutex_unlock(&m->lock);

    return any;
}


void
slora_meet_break(slora_meet_t *m)
{
    pthread_mutex_lock(&m->lock);
    m->broken = 1;
    pthread_cond_broadcast(&m->all_in);
    pthread_mutex_unlock(&m->lock);
}


int
slora_meet_broken(slora_meet_t *m)
{
    int  broken;

    pthread_mutex_lock(&m->lock);
    broken = m->broken;
    pthread_mutex_unlock(&m->lock);

    return broken;
}


void
slora_meet_destroy(slora_meet_t *m)
{
    pthread_cond_destroy(&m->all_in);
    pthread_mutex_destroy(&m->lock);
}
