/*
 * slora_spares.h: host memory blocks kept for reuse once freed, for
 * memory that is slow to get and to give back: the CUDA backend's pinned
 * pages, which the host tier's adapter images live in.
 *
 * The one idea: under adapter churn the host tier drops an image for
 * each one it takes in, and the images come in a few sizes (one a rank).
 * Pinning 100-300 MB and unpinning it again costs tens of milliseconds
 * and takes the driver's lock, and a freed block may still be read by an
 * upload in flight. So a freed block is put aside with a mark (a point on
 * the backend's upload streams after every write enqueued so far), and
 * never waited for; the next get of about its size, on a loader thread,
 * takes it once its mark has passed. Blocks beyond a byte budget are
 * given back by get, on the loader's thread, never by put, which the
 * engine's thread calls.
 */

#ifndef SLORA_SPARES_H
#define SLORA_SPARES_H


#include <stddef.h>


typedef struct slora_spares_s  slora_spares_t;


/* How the blocks are made, given back and ordered after the uploads.
 * alloc returns a block (not zeroed) or NULL; release gives one back;
 * mark returns a point after everything enqueued so far (NULL if it
 * cannot: such a block is only given back at the end); passed says 1
 * once a mark's point has been passed; unmark frees a mark; drain waits
 * for every upload enqueued so far. */
typedef struct {
    void   *(*alloc)(void *ctx, size_t bytes);
    void    (*release)(void *ctx, void *p);
    void   *(*mark)(void *ctx);
    int     (*passed)(void *ctx, void *mark);
    void    (*unmark)(void *ctx, void *mark);
    void    (*drain)(void *ctx);
    void     *ctx;
    size_t    max_bytes;            /* spares kept at most */
} slora_spares_conf_t;


slora_spares_t *slora_spares_create(const slora_spares_conf_t *conf);

/* Drains the uploads, then gives every spare back. */
void slora_spares_free(slora_spares_t *s);

/* A zeroed block of bytes: a spare whose mark has passed and whose size
 * is bytes to bytes + bytes / 8, else a new one; NULL if none can be
 * had. Gives back the oldest passed spares beyond max_bytes first. Any
 * thread. */
void *slora_spares_get(slora_spares_t *s, size_t bytes);

/* p, of bytes (as gotten), is free once the uploads enqueued so far have
 * read it. Does not wait. Any thread. */
void slora_spares_put(slora_spares_t *s, void *p, size_t bytes);

/* The spares now, and their bytes; blocks ever made and ever reused. */
void slora_spares_stats(slora_spares_t *s, size_t *n, size_t *bytes,
    size_t *made, size_t *reused);


#endif /* SLORA_SPARES_H */
