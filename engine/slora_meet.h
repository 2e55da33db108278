/*
 * slora_meet.h: where a fixed group of threads meets, round after round:
 * a barrier that also tells every thread whether any thread of the
 * round came failed, and that a thread can break for good when it will
 * not come again, so that the others stop waiting instead of hanging.
 * Tensor-parallel ranks meet here before each step's kernels, ranks
 * that share a GPU around each sum too, and a rank that fails past the
 * step's meeting breaks the group (engine/slora_cuda_tp.c).
 */

#ifndef SLORA_MEET_H
#define SLORA_MEET_H


#include <stdint.h>
#include <pthread.h>


typedef struct {
    pthread_mutex_t           lock;
    pthread_cond_t            all_in;
    int32_t                   n;                /* threads of the group */
    int32_t                   in;               /* come this round */
    int32_t                   failed;           /* of them, failed */
    int                       any_failed;       /* the last round's */
    int                       broken;
    uint64_t                  round;
} slora_meet_t;


/* A group of n (>= 1) threads. 0, or -1 on bad n or failure. */
int slora_meet_init(slora_meet_t *m, int32_t n);

/* Returns once all n threads have come this round, or at once if the
 * group is broken: 1 if any of the round came failed (failed != 0) or
 * the group is broken, else 0; every thread of a round gets the same. */
int slora_meet(slora_meet_t *m, int failed);

/* A thread that will come to no more meetings: those waiting now return
 * 1, and so does every meeting after. */
void slora_meet_break(slora_meet_t *m);

/* Whether a thread has broken the group: for a thread that waits for
 * something else (its GPU) that a thread which left may never give. A
 * round that came failed does not break it. */
int slora_meet_broken(slora_meet_t *m);

/* No thread may be in slora_meet(). */
void slora_meet_destroy(slora_meet_t *m);


#endif /* SLORA_MEET_H */
