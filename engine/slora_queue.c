/*
 * slora_queue.c: layout and state transitions of the shared zone between
 * nginx workers and the engine process (slora_queue.h says why each slot
 * carries two ownership bits).
 *
 * The submission ring is Vyukov's bounded queue with a sequence number per
 * cell: a producer owns a cell once its CAS on tail succeeds and publishes
 * it by storing seq = pos + 1; the consumer takes it when seq says so and
 * hands it back with seq = pos + cap. The ring holds at least as many
 * cells as there are slots and a slot is in it at most once, so a push
 * never finds it full unless the zone is corrupt. A push and a pop are
 * two stores each; what a process killed between them leaves is mended
 * by the engine (slora_ring_repair, slora_queue_recover).
 */

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "slora_queue.h"
#include "slora_utf8.h"


#define SLORA_ALIGN(n)  (((n) + 63) & ~(uint64_t) 63)


const double  slora_hist_le[SLORA_HIST_BUCKETS - 1] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0
};

const double  slora_hist_fine_le[SLORA_HIST_FINE_BUCKETS - 1] = {
    1e-6, 2e-6, 3e-6, 5e-6, 7e-6, 1e-5, 2e-5, 3e-5, 5e-5, 7e-5,
    1e-4, 2e-4, 3e-4, 5e-4, 7e-4, 1e-3, 2e-3, 3e-3, 5e-3, 7e-3,
    1e-2, 2e-2, 3e-2, 5e-2, 7e-2, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0
};

const int  slora_status_codes[SLORA_STATUS_N - 1] = {
    200, 400, 401, 403, 404, 405, 408, 413, 429, 499, 500, 503, 504
};


static uint32_t slora_queue_ring_cap(uint32_t n_slots);
static int slora_queue_layout(const slora_queue_geom_t *g, slora_queue_t *h);
static void slora_queue_registry_begin(slora_registration_t *r);
static void slora_queue_registry_end(slora_registration_t *r);

/* reads of an entry a reload's copy makes while its engine writes it */
#define SLORA_QUEUE_REGISTRY_TRIES  1000


static uint32_t
slora_queue_ring_cap(uint32_t n_slots)
{
    uint32_t  cap;

    cap = 2;
    while (cap < n_slots) {
        cap <<= 1;
    }

    return cap;
}


size_t
slora_queue_lp_size(const slora_queue_geom_t *g)
{
    size_t  n;

    n = sizeof(slora_logprob_t) + (size_t) g->top_cap * sizeof(slora_top_t);

    return (n + 7) & ~(size_t) 7;
}


static int
slora_queue_layout(const slora_queue_geom_t *g, slora_queue_t *h)
{
    size_t    slots, prompt, output, published, logprobs, scores, schemas,
              off;
    uint32_t  cap;

    if (g->n_slots == 0 || g->n_slots > SLORA_QUEUE_SLOTS_MAX
        || g->prompt_cap == 0 || g->prompt_cap > (1u << 24)
        || g->output_cap == 0 || g->output_cap > (1u << 24)
        || g->top_cap > SLORA_QUEUE_TOP_MAX)
    {
        return SLORA_ERROR;
    }

    cap = slora_queue_ring_cap(g->n_slots);

    if (slora_mul_size(g->n_slots, sizeof(slora_slot_t), &slots) != SLORA_OK
        || slora_mul_size((size_t) g->n_slots * 4, g->prompt_cap, &prompt)
           != SLORA_OK
        || slora_mul_size((size_t) g->n_slots * 4, g->output_cap, &output)
           != SLORA_OK
        || slora_mul_size((size_t) g->n_slots * 8, g->output_cap,
                          &published)
           != SLORA_OK
        || slora_mul_size((size_t) g->n_slots * slora_queue_lp_size(g),
                          g->output_cap, &logprobs)
           != SLORA_OK
        || slora_mul_size((size_t) g->n_slots * slora_queue_lp_size(g),
                          g->prompt_cap, &scores)
           != SLORA_OK
        || slora_mul_size(g->n_slots, SLORA_QUEUE_SCHEMA_LEN, &schemas)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    off = SLORA_ALIGN(sizeof(slora_queue_t));
    h->slots_off = off;
    off = SLORA_ALIGN(off + slots);
    h->prompt_off = off;
    off = SLORA_ALIGN(off + prompt);
    h->output_off = off;
    off = SLORA_ALIGN(off + output);
    h->published_off = off;
    off = SLORA_ALIGN(off + published);
    h->logprobs_off = off;
    off = SLORA_ALIGN(off + logprobs);
    h->ring_off = off;
    off = SLORA_ALIGN(off + slora_ring_size(cap));
    h->names_off = off;
    off = SLORA_ALIGN(off + SLORA_QUEUE_NAMES_BYTES);
    h->name_ix_off = off;
    off = SLORA_ALIGN(off + SLORA_QUEUE_NAME_SLOTS
                            * sizeof(slora_name_slot_t));
    h->registry_off = off;
    off = SLORA_ALIGN(off + SLORA_QUEUE_REGISTRY_MAX
                            * sizeof(slora_registration_t));
    /* last: the regions init leaves as the mapping gave them */
    h->scores_off = off;
    off = SLORA_ALIGN(off + scores);
    h->schemas_off = off;
    off = SLORA_ALIGN(off + schemas);

    h->size = off;
    h->ring_cap = cap;
    h->geom = *g;

    return SLORA_OK;
}


size_t
slora_queue_size(const slora_queue_geom_t *g)
{
    slora_queue_t  h;

    memset(&h, 0, sizeof(h));

    if (slora_queue_layout(g, &h) != SLORA_OK) {
        return 0;
    }

    return h.size;
}


int
slora_queue_init(void *base, size_t size, const slora_queue_geom_t *g,
    uint64_t conf_hash, slora_err_t *err)
{
    slora_queue_t  *q;

    q = base;

    if (((uintptr_t) base & 63) != 0) {
        return slora_err_set(err, SLORA_ERROR,
                             "slora queue: region not 64-byte aligned");
    }

    memset(q, 0, sizeof(slora_queue_t));

    if (slora_queue_layout(g, q) != SLORA_OK) {
        return slora_err_set(err, SLORA_ERROR,
                             "slora queue: bad geometry (slots %u, prompt %u,"
                             " output %u, top %u)", g->n_slots, g->prompt_cap,
                             g->output_cap, g->top_cap);
    }

    if (q->size > size) {
        return slora_err_set(err, SLORA_ERROR,
                             "slora queue: needs %zu bytes, region has %zu",
                             (size_t) q->size, size);
    }

    /* the prompts' log-probability records and the schemas are written
     * before they are read (slora_queue_score, slora_queue_schema), so
     * pages no request with echo or a schema touched stay unmapped */
    memset((char *) base + sizeof(slora_queue_t), 0,
           q->scores_off - sizeof(slora_queue_t));

    slora_ring_init(slora_queue_ring(q), q->ring_cap);

    q->conf_hash = conf_hash;
    q->version = SLORA_QUEUE_VERSION;
    atomic_thread_fence(memory_order_release);
    q->magic = SLORA_QUEUE_MAGIC;

    return SLORA_OK;
}


int
slora_queue_check(const slora_queue_t *q, const slora_queue_geom_t *g,
    slora_err_t *err)
{
    if (q->magic != SLORA_QUEUE_MAGIC || q->version != SLORA_QUEUE_VERSION) {
        return slora_err_set(err, SLORA_ERROR,
                             "slora queue: bad magic or version (%08x, %u)",
                             q->magic, q->version);
    }

    if (q->geom.n_slots != g->n_slots || q->geom.prompt_cap != g->prompt_cap
        || q->geom.output_cap != g->output_cap
        || q->geom.top_cap != g->top_cap)
    {
        return slora_err_set(err, SLORA_ERROR,
                             "slora queue: geometry changed");
    }

    return SLORA_OK;
}


slora_slot_t *
slora_queue_slot(slora_queue_t *q, uint32_t i)
{
    slora_assert(i < q->geom.n_slots);

    return (slora_slot_t *) ((char *) q + q->slots_off) + i;
}


int32_t *
slora_queue_prompt(slora_queue_t *q, uint32_t i)
{
    slora_assert(i < q->geom.n_slots);

    return (int32_t *) ((char *) q + q->prompt_off)
           + (size_t) i * q->geom.prompt_cap;
}


int32_t *
slora_queue_output(slora_queue_t *q, uint32_t i)
{
    slora_assert(i < q->geom.n_slots);

    return (int32_t *) ((char *) q + q->output_off)
           + (size_t) i * q->geom.output_cap;
}


int64_t *
slora_queue_published(slora_queue_t *q, uint32_t i)
{
    slora_assert(i < q->geom.n_slots);

    return (int64_t *) ((char *) q + q->published_off)
           + (size_t) i * q->geom.output_cap;
}


slora_logprob_t *
slora_queue_logprob(slora_queue_t *q, uint32_t i, uint32_t k)
{
    slora_assert(i < q->geom.n_slots && k < q->geom.output_cap);

    return (slora_logprob_t *) ((char *) q + q->logprobs_off
                                + ((size_t) i * q->geom.output_cap + k)
                                  * slora_queue_lp_size(&q->geom));
}


slora_logprob_t *
slora_queue_score(slora_queue_t *q, uint32_t i, uint32_t k)
{
    slora_assert(i < q->geom.n_slots && k < q->geom.prompt_cap);

    return (slora_logprob_t *) ((char *) q + q->scores_off
                                + ((size_t) i * q->geom.prompt_cap + k)
                                  * slora_queue_lp_size(&q->geom));
}


char *
slora_queue_schema(slora_queue_t *q, uint32_t i)
{
    slora_assert(i < q->geom.n_slots);

    return (char *) q + q->schemas_off + (size_t) i * SLORA_QUEUE_SCHEMA_LEN;
}


slora_ring_t *
slora_queue_ring(slora_queue_t *q)
{
    return (slora_ring_t *) ((char *) q + q->ring_off);
}


int
slora_queue_claim(slora_queue_t *q, uint32_t hint, uint32_t *idx)
{
    uint32_t       i, k, n, expect;
    slora_slot_t  *s;

    n = q->geom.n_slots;

    for (k = 0; k < n; k++) {
        i = (hint + k) % n;
        s = slora_queue_slot(q, i);

        expect = SLORA_SLOT_FREE;
        if (atomic_load_explicit(&s->state, memory_order_relaxed) != expect
            || !atomic_compare_exchange_strong(&s->state, &expect,
                                               SLORA_SLOT_CLAIMED))
        {
            continue;
        }

        s->gen++;
        s->op = SLORA_OP_GENERATE;
        s->worker_pid = (int32_t) getpid();
        s->adapter[0] = '\0';
        s->tenant[0] = '\0';
        s->err_code[0] = '\0';
        s->answer_len = 0;
        s->more = 0;
        atomic_store(&s->refs, SLORA_REF_WORKER);
        atomic_store(&s->cancel, 0);
        atomic_store(&s->n_out, 0);
        s->finish = 0;
        s->stop_token = -1;
        s->stop_logprob = 0;
        s->err_status = 0;
        s->retry_after = 0;
        s->err[0] = '\0';
        s->t_start_ns = 0;
        s->t_end_ns = 0;
        s->logprobs = -1;
        s->n_cached = 0;
        s->n_prediction = 0;
        s->accepted_prediction = 0;
        s->rejected_prediction = 0;
        s->schema_len = 0;

        atomic_fetch_add(&q->slots_used, 1);
        *idx = i;

        return SLORA_OK;
    }

    return SLORA_BUSY;
}


int
slora_queue_submit(slora_queue_t *q, uint32_t idx)
{
    slora_slot_t  *s;

    s = slora_queue_slot(q, idx);

    slora_assert(atomic_load(&s->state) == SLORA_SLOT_CLAIMED);

    s->epoch = atomic_load(&q->epoch);
    s->t_submit_ns = slora_now_ns();
    atomic_fetch_or(&s->refs, SLORA_REF_ENGINE);
    atomic_store_explicit(&s->state, SLORA_SLOT_SUBMITTED,
                          memory_order_release);

    if (slora_ring_push(slora_queue_ring(q), idx, s->gen) != SLORA_OK) {
        /* cannot happen: the ring has a cell for every slot */
        atomic_fetch_and(&s->refs, ~SLORA_REF_ENGINE);
        atomic_store(&s->state, SLORA_SLOT_CLAIMED);
        return SLORA_BUSY;
    }

    return SLORA_OK;
}


int
slora_queue_release(slora_queue_t *q, uint32_t idx, uint32_t who)
{
    uint32_t       old;
    slora_slot_t  *s;

    s = slora_queue_slot(q, idx);

    old = atomic_fetch_and(&s->refs, ~who);

    if ((old & who) == 0 || (old & ~who) != 0) {
        return 0;
    }

    /* no owner's pid outlives the slot's use: a reap that reads the
     * next claim's gen before its pid finds 0, not a dead pid */
    s->worker_pid = 0;

    atomic_fetch_sub(&q->slots_used, 1);
    atomic_store_explicit(&s->state, SLORA_SLOT_FREE, memory_order_release);

    return 1;
}


uint32_t
slora_queue_reap(slora_queue_t *q)
{
    int32_t        pid;
    uint32_t       i, n, gen, refs, who;
    slora_slot_t  *s;

    n = 0;

    for (i = 0; i < q->geom.n_slots; i++) {
        s = slora_queue_slot(q, i);

        if (atomic_load_explicit(&s->state, memory_order_acquire)
            == SLORA_SLOT_FREE)
        {
            continue;
        }

        /* refs first: a claim stores its gen and pid before its worker
         * bit, so a bit seen here comes with that claim's gen and pid */
        refs = atomic_load_explicit(&s->refs, memory_order_acquire);
        gen = s->gen;
        pid = s->worker_pid;

        /* EPERM: alive, another user's; a zombie is alive until its
         * master reaps it. A dead worker's bit is dropped by no one
         * else, so its slot cannot be freed and claimed again meanwhile
         * (the gen checks a claim that came just before the load) */
        if (!(refs & SLORA_REF_WORKER) || pid <= 0
            || kill(pid, 0) == 0 || errno != ESRCH || s->gen != gen)
        {
            continue;
        }

        atomic_store(&s->cancel, 1);

        /* still claimed: a submit cut after it set the engine's bit and
         * before its state said SUBMITTED; no engine ever takes such a
         * slot, so that bit goes with the worker's */
        who = SLORA_REF_WORKER;

        if (atomic_load_explicit(&s->state, memory_order_acquire)
            == SLORA_SLOT_CLAIMED)
        {
            who |= SLORA_REF_ENGINE;
        }

        slora_queue_release(q, i, who);
        n++;
    }

    return n;
}


void
slora_queue_finish(slora_queue_t *q, uint32_t idx, int32_t finish)
{
    slora_slot_t  *s;

    s = slora_queue_slot(q, idx);

    s->finish = finish;
    s->t_end_ns = slora_now_ns();
    atomic_store_explicit(&s->state, SLORA_SLOT_FINISHED,
                          memory_order_release);

    slora_queue_release(q, idx, SLORA_REF_ENGINE);
}


void
slora_queue_fail(slora_queue_t *q, uint32_t idx, int32_t status,
    const char *msg)
{
    size_t         n;
    slora_slot_t  *s;

    s = slora_queue_slot(q, idx);

    n = strlen(msg);
    if (n >= sizeof(s->err)) {
        n = sizeof(s->err) - 1;

        /* cut before a character the room would split (the worker sends
         * the message in JSON, which must stay UTF-8) */
        while (n > 0 && ((unsigned char) msg[n] & 0xc0) == 0x80) {
            n--;
        }
    }

    memcpy(s->err, msg, n);
    s->err[n] = '\0';
    s->err_status = status;
    s->t_end_ns = slora_now_ns();
    atomic_store_explicit(&s->state, SLORA_SLOT_FAILED, memory_order_release);

    slora_queue_release(q, idx, SLORA_REF_ENGINE);
}


int
slora_queue_publish(slora_queue_t *q, uint32_t idx, int32_t token,
    float logprob, int32_t n_top, const int32_t *top_ids,
    const float *top_logprobs)
{
    int32_t           n, j;
    slora_slot_t     *s;
    slora_logprob_t  *lp;

    s = slora_queue_slot(q, idx);
    n = atomic_load_explicit(&s->n_out, memory_order_relaxed);

    if (n < 0 || (uint32_t) n >= q->geom.output_cap) {
        return SLORA_BUSY;
    }

    slora_queue_output(q, idx)[n] = token;
    slora_queue_published(q, idx)[n] = slora_now_ns();

    if (s->logprobs >= 0) {
        lp = slora_queue_logprob(q, idx, (uint32_t) n);
        lp->logprob = logprob;
        lp->rank = 0;
        lp->n_top = n_top < (int32_t) q->geom.top_cap
                    ? n_top : (int32_t) q->geom.top_cap;

        for (j = 0; j < lp->n_top; j++) {
            lp->top[j].id = top_ids[j];
            lp->top[j].logprob = top_logprobs[j];
        }
    }

    atomic_store_explicit(&s->n_out, n + 1, memory_order_release);

    return SLORA_OK;
}


int
slora_queue_set_names(slora_queue_t *q, const char **names, uint32_t n,
    slora_err_t *err)
{
    char               *base, *p, *end;
    size_t              len;
    uint32_t            i, h;
    slora_name_slot_t  *ix;

    base = (char *) q + q->names_off;
    ix = (slora_name_slot_t *) ((char *) q + q->name_ix_off);
    p = base;
    end = p + SLORA_QUEUE_NAMES_BYTES - 1;

    /* no names while they are rewritten: a worker finds none */
    atomic_store_explicit(&q->n_names, 0, memory_order_release);
    memset(ix, 0, SLORA_QUEUE_NAME_SLOTS * sizeof(slora_name_slot_t));

    for (i = 0; i < n; i++) {
        len = strlen(names[i]);

        if (len == 0 || len >= SLORA_QUEUE_ADAPTER_LEN) {
            slora_err_set(err, SLORA_ERROR, "adapter name \"%.*s\" is empty "
                          "or longer than %d bytes; %u of %u published",
                          slora_utf8_cut(names[i], 64), names[i],
                          SLORA_QUEUE_ADAPTER_LEN - 1, i, n);
            break;
        }

        if ((size_t) (end - p) < len + 1) {
            slora_err_set(err, SLORA_ERROR, "%u adapter names do not fit in "
                          "%d bytes; %u published", n,
                          SLORA_QUEUE_NAMES_BYTES, i);
            break;
        }

        memcpy(p, names[i], len + 1);

        /* each name takes two bytes at least, so the slots are never
         * more than half full */
        for (h = (uint32_t) slora_fnv1a(names[i], len);
             ix[h & (SLORA_QUEUE_NAME_SLOTS - 1)].off1 != 0;
             h++)
        {
            /* void */
        }

        ix[h & (SLORA_QUEUE_NAME_SLOTS - 1)].off1 = (uint32_t) (p - base) + 1;
        ix[h & (SLORA_QUEUE_NAME_SLOTS - 1)].index = i;
        p += len + 1;
    }

    *p = '\0';
    atomic_store_explicit(&q->names_all, i == n, memory_order_release);
    atomic_store_explicit(&q->n_names, i, memory_order_release);

    return i == n ? SLORA_OK : SLORA_ERROR;
}


static slora_registration_t *
slora_queue_registry(const slora_queue_t *q)
{
    return (slora_registration_t *) ((char *) q + q->registry_off);
}


int
slora_queue_registry_put(slora_queue_t *q, const char *name,
    const char *path)
{
    uint32_t               i;
    slora_registration_t  *r, *free_one;

    if (strlen(name) >= SLORA_QUEUE_ADAPTER_LEN
        || strlen(path) >= SLORA_QUEUE_PATH_LEN)
    {
        return SLORA_ERROR;
    }

    r = slora_queue_registry(q);
    free_one = NULL;

    for (i = 0; i < SLORA_QUEUE_REGISTRY_MAX; i++) {
        if (r[i].used && strcmp(r[i].name, name) == 0) {
            free_one = &r[i];
            break;
        }

        if (!r[i].used && free_one == NULL) {
            free_one = &r[i];
        }
    }

    if (free_one == NULL) {
        return SLORA_BUSY;
    }

    /* the next engine reads it after this one is gone; the master, a
     * reload's copy, maybe meanwhile: seq brackets the write */
    slora_queue_registry_begin(free_one);
    strcpy(free_one->name, name);
    strcpy(free_one->path, path);
    free_one->used = 1;
    slora_queue_registry_end(free_one);

    return SLORA_OK;
}


static void
slora_queue_registry_begin(slora_registration_t *r)
{
    atomic_fetch_add_explicit(&r->seq, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}


static void
slora_queue_registry_end(slora_registration_t *r)
{
    atomic_fetch_add_explicit(&r->seq, 1, memory_order_release);
}


int
slora_queue_registry_drop(slora_queue_t *q, const char *name)
{
    uint32_t               i;
    slora_registration_t  *r;

    r = slora_queue_registry(q);

    for (i = 0; i < SLORA_QUEUE_REGISTRY_MAX; i++) {
        if (r[i].used && strcmp(r[i].name, name) == 0) {
            slora_queue_registry_begin(&r[i]);
            r[i].used = 0;
            slora_queue_registry_end(&r[i]);
            return 1;
        }
    }

    return 0;
}


int
slora_queue_registry_room(const slora_queue_t *q, const char *name)
{
    uint32_t                     i;
    const slora_registration_t  *r;

    r = slora_queue_registry(q);

    for (i = 0; i < SLORA_QUEUE_REGISTRY_MAX; i++) {
        if (!r[i].used || strcmp(r[i].name, name) == 0) {
            return 1;
        }
    }

    return 0;
}


const slora_registration_t *
slora_queue_registry_get(const slora_queue_t *q, uint32_t i)
{
    const slora_registration_t  *r;

    if (i >= SLORA_QUEUE_REGISTRY_MAX) {
        return NULL;
    }

    r = slora_queue_registry(q);

    return r[i].used ? &r[i] : NULL;
}


void
slora_queue_registry_copy(slora_queue_t *to, const slora_queue_t *from)
{
    uint32_t                     i, k, seq;
    slora_registration_t         e;
    const slora_registration_t  *r;

    for (i = 0; i < SLORA_QUEUE_REGISTRY_MAX; i++) {
        r = slora_queue_registry_get(from, i);
        if (r == NULL) {
            continue;
        }

        /*
         * Read into a copy, between two equal even seqs: the old engine
         * may be writing the entry (a load_inplace rewrites its path),
         * and what is checked must be what is put. An entry written
         * throughout the tries is left out. Names and paths are NUL-ended
         * where the engine wrote them; an entry without, torn by an
         * engine that died mid-write, is left out too.
         */
        for (k = 0; k < SLORA_QUEUE_REGISTRY_TRIES; k++) {
            seq = atomic_load_explicit(&r->seq, memory_order_acquire);
            if (seq & 1) {
                continue;
            }

            memcpy(&e, r, sizeof(e));
            atomic_thread_fence(memory_order_acquire);

            if (atomic_load_explicit(&r->seq, memory_order_relaxed) == seq) {
                break;
            }
        }

        if (k == SLORA_QUEUE_REGISTRY_TRIES || !e.used) {
            continue;
        }

        if (memchr(e.name, '\0', sizeof(e.name)) != NULL
            && memchr(e.path, '\0', sizeof(e.path)) != NULL
            && e.name[0] != '\0' && e.path[0] != '\0')
        {
            (void) slora_queue_registry_put(to, e.name, e.path);
        }
    }
}


void
slora_queue_names_stale(slora_queue_t *q)
{
    atomic_store_explicit(&q->names_all, 0, memory_order_release);
}


int
slora_queue_names_all(slora_queue_t *q)
{
    return (int) atomic_load_explicit(&q->names_all, memory_order_acquire);
}


int32_t
slora_queue_find_name(slora_queue_t *q, const char *name, size_t len)
{
    uint32_t                  h;
    const char               *base, *p;
    const slora_name_slot_t  *ix, *sl;

    if (atomic_load_explicit(&q->n_names, memory_order_acquire) == 0
        || len == 0 || len >= SLORA_QUEUE_ADAPTER_LEN)
    {
        return -1;
    }

    base = (const char *) q + q->names_off;
    ix = (const slora_name_slot_t *) ((const char *) q + q->name_ix_off);

    for (h = (uint32_t) slora_fnv1a(name, len); ; h++) {
        sl = &ix[h & (SLORA_QUEUE_NAME_SLOTS - 1)];

        if (sl->off1 == 0 || sl->off1 > SLORA_QUEUE_NAMES_BYTES) {
            return -1;
        }

        p = base + sl->off1 - 1;

        if (strncmp(p, name, len) == 0 && p[len] == '\0') {
            return (int32_t) sl->index;
        }
    }
}


const char *
slora_queue_next_name(slora_queue_t *q, uint32_t *pos)
{
    const char  *p;

    if (atomic_load_explicit(&q->n_names, memory_order_acquire) == 0
        || *pos >= SLORA_QUEUE_NAMES_BYTES)
    {
        return NULL;
    }

    p = (const char *) q + q->names_off + *pos;

    if (*p == '\0') {
        return NULL;
    }

    *pos += (uint32_t) strlen(p) + 1;

    return p;
}


size_t
slora_ring_size(uint32_t cap)
{
    return sizeof(slora_ring_t) + (size_t) cap * sizeof(slora_ring_cell_t);
}


void
slora_ring_init(slora_ring_t *r, uint32_t cap)
{
    uint32_t  i;

    slora_assert(cap >= 2 && (cap & (cap - 1)) == 0);

    r->cap = cap;
    atomic_store(&r->head, 0);
    atomic_store(&r->tail, 0);

    for (i = 0; i < cap; i++) {
        atomic_store(&r->cells[i].seq, i);
    }
}


int
slora_ring_push(slora_ring_t *r, uint32_t slot, uint32_t gen)
{
    int64_t             diff;
    uint64_t            pos, seq;
    slora_ring_cell_t  *c;

    pos = atomic_load_explicit(&r->tail, memory_order_relaxed);

    for ( ;; ) {
        c = &r->cells[pos & (r->cap - 1)];
        seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        diff = (int64_t) seq - (int64_t) pos;

        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&r->tail, &pos,
                                                      pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed))
            {
                break;
            }

        } else if (diff < 0) {
            return SLORA_BUSY;

        } else {
            pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
        }
    }

    c->slot = slot;
    c->gen = gen;
    atomic_store_explicit(&c->seq, pos + 1, memory_order_release);

    return SLORA_OK;
}


int
slora_ring_pop(slora_ring_t *r, uint32_t *slot, uint32_t *gen)
{
    uint64_t            pos, seq;
    slora_ring_cell_t  *c;

    pos = atomic_load_explicit(&r->head, memory_order_relaxed);
    c = &r->cells[pos & (r->cap - 1)];
    seq = atomic_load_explicit(&c->seq, memory_order_acquire);

    if (seq != pos + 1) {
        return SLORA_AGAIN;
    }

    *slot = c->slot;
    *gen = c->gen;
    atomic_store_explicit(&r->head, pos + 1, memory_order_relaxed);
    atomic_store_explicit(&c->seq, pos + r->cap, memory_order_release);

    return SLORA_OK;
}


void
slora_hist_observe(slora_hist_t *h, double seconds)
{
    int  i;

    if (!(seconds >= 0)) {
        seconds = 0;
    }

    for (i = 0; i < SLORA_HIST_BUCKETS - 1; i++) {
        if (seconds <= slora_hist_le[i]) {
            break;
        }
    }

    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t) (seconds * 1e6),
                              memory_order_relaxed);
}


void
slora_hist_fine_observe(slora_hist_fine_t *h, int64_t ns)
{
    int     i;
    double  seconds;

    if (ns < 0) {
        ns = 0;
    }

    seconds = ns / 1e9;

    for (i = 0; i < SLORA_HIST_FINE_BUCKETS - 1; i++) {
        if (seconds <= slora_hist_fine_le[i]) {
            break;
        }
    }

    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, (uint64_t) ns,
                              memory_order_relaxed);
}


void
slora_queue_count_status(slora_queue_t *q, int status)
{
    int  i;

    for (i = 0; i < SLORA_STATUS_N - 1; i++) {
        if (slora_status_codes[i] == status) {
            break;
        }
    }

    atomic_fetch_add_explicit(&q->requests_by_status[i], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&q->requests_total, 1, memory_order_relaxed);
}


uint32_t
slora_ring_repair(slora_ring_t *r)
{
    uint32_t            n;
    uint64_t            head;
    slora_ring_cell_t  *c;

    n = 0;
    head = atomic_load(&r->head);

    if (head > 0) {
        /* popped at head - 1 (head moved), not handed back */
        c = &r->cells[(head - 1) & (r->cap - 1)];

        if (atomic_load(&c->seq) == head) {
            atomic_store_explicit(&c->seq, head - 1 + r->cap,
                                  memory_order_release);
            n++;
        }
    }

    /* released unread (slora_queue_recover), head not yet moved */
    c = &r->cells[head & (r->cap - 1)];

    if (atomic_load(&c->seq) == head + r->cap) {
        atomic_store(&r->head, head + 1);
        n++;
    }

    return n;
}


uint32_t
slora_queue_recover(slora_queue_t *q, const uint8_t *held,
    slora_recover_t *r)
{
    int                 stuck, was_stuck;
    uint32_t            i, n, lost, gen;
    uint64_t            head, tail, seq;
    slora_ring_t       *ring;
    slora_slot_t       *s;
    slora_ring_cell_t  *c;

    n = 0;
    lost = 0;
    ring = slora_queue_ring(q);

    head = atomic_load(&ring->head);
    tail = atomic_load(&ring->tail);
    c = &ring->cells[head & (ring->cap - 1)];
    seq = atomic_load_explicit(&c->seq, memory_order_acquire);

    /* the head cell claimed and not published, later ones waiting */
    stuck = tail > head && seq == head;
    was_stuck = r->stuck != 0;

    for (i = 0; i < q->geom.n_slots; i++) {
        s = slora_queue_slot(q, i);
        gen = s->gen;

        if (held[i]
            || atomic_load_explicit(&s->state, memory_order_acquire)
               != SLORA_SLOT_SUBMITTED
            || atomic_load(&s->refs) != SLORA_REF_ENGINE)
        {
            r->marks[i] = 0;
            continue;
        }

        lost++;

        /* behind a stuck head its cell may yet be popped once mended */
        if (r->marks[i] == gen + 1 && !stuck && !was_stuck) {
            slora_queue_fail(q, i, 503, "the worker that submitted it"
                             " died");
            r->marks[i] = 0;
            n++;
            continue;
        }

        r->marks[i] = gen + 1;
    }

    if (!stuck) {
        r->stuck = 0;
        return n;
    }

    if (r->stuck != head + 1 || lost == 0) {
        r->stuck = head + 1;
        return n;
    }

    /* as a pop: the cell handed back first, then head (a death between
     * the two is mended by slora_ring_repair) */
    if (atomic_compare_exchange_strong(&c->seq, &seq, head + ring->cap)) {
        atomic_store(&ring->head, head + 1);
        n++;
    }

    r->stuck = 0;

    return n;
}
