/*
 * slora_prefix.c: the KV prefix cache (slora_prefix.h): entries by page
 * id, a chained hash table over their keys, and the list of idle leaves
 * the pool reclaims from.
 *
 * The one idea: an entry's key is (parent page, owner, the page's
 * tokens), so equal keys mean equal prefixes and a hit is
 * confirmed by comparing one page of tokens. Reclaiming only leaves
 * (entries no request holds and no entry names as parent) keeps every
 * entry reachable from the start of its prompt. Requests let go of their
 * entries deepest first, so a chain's leaf goes on the list before its
 * parent becomes a leaf; a parent left a leaf by a reclaim goes where
 * its own last letting go puts it (a prompt's head that requests keep
 * using outlives the child it once had). A flush moves the
 * cache to a new epoch: entries of an older one are never found, and go
 * to the pool as soon as no request holds them. The hashes (of pages and
 * of tenants' names) start from a random key of the process, so no
 * client can make pages that share a bucket, or a name that shares
 * another tenant's hash, ahead of time.
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "slora_prefix.h"
#include "slora_sha256.h"


#define SLORA_PREFIX_PLACE_STEPS  64    /* slora_prefix_lru_place's walk */

typedef struct {
    uint64_t             hash;
    slora_prefix_owner_t owner;
    int32_t              parent;        /* page of the entry before; -1 */
    int32_t              next;          /* hash chain; -1: end */
    int32_t              refs;          /* requests holding it */
    int32_t              children;      /* entries naming it as parent */
    int32_t              lru_prev;      /* idle leaves, oldest first */
    int32_t              lru_next;
    uint64_t             last;          /* when last let go of (clock) */
    uint32_t             epoch;         /* slora_prefix_flush's count */
    uint8_t              used;
    uint8_t              on_lru;
} slora_prefix_entry_t;


struct slora_prefix_s {
    slora_pool_t          *pool;
    int32_t                tpp;
    int32_t                n_pages;
    slora_prefix_entry_t  *entry;       /* [n_pages], by page id */
    int32_t               *tokens;      /* [n_pages][tpp] */
    int32_t               *bucket;      /* [mask + 1]; -1: empty */
    uint64_t               mask;
    int32_t                lru_head;
    int32_t                lru_tail;
    uint32_t               epoch;
    uint64_t               clock;       /* lettings go, counted */
    slora_prefix_stats_t   stats;
};


static int32_t slora_prefix_reclaim_cb(void *data, int32_t n);
static int32_t slora_prefix_match(slora_prefix_t *pc,
    const slora_prefix_owner_t *o, const int32_t *tokens, int32_t i,
    int32_t parent);
static int32_t slora_prefix_find(slora_prefix_t *pc, uint64_t hash,
    const slora_prefix_owner_t *o, int32_t parent, const int32_t *tokens);
static uint64_t slora_prefix_hash(const slora_prefix_owner_t *o,
    int32_t parent, const int32_t *tokens, int32_t tpp);
static uint64_t slora_prefix_mix(uint64_t h, uint64_t v);
static void slora_prefix_lru_push(slora_prefix_t *pc, int32_t page,
    int head);
static void slora_prefix_lru_place(slora_prefix_t *pc, int32_t page);
static void slora_prefix_lru_remove(slora_prefix_t *pc, int32_t page);
static void slora_prefix_unlink(slora_prefix_t *pc, int32_t page);
static int32_t slora_prefix_forget(slora_prefix_t *pc, int32_t page,
    int32_t *parent);
static uint64_t slora_prefix_key(void);


int
slora_prefix_salt(const void *data, size_t len, uint64_t salt[2])
{
    unsigned char  md[SLORA_SHA256_LEN];

    if (slora_sha256_raw(data, len, md) != SLORA_OK) {
        return SLORA_ERROR;
    }

    memcpy(salt, md, 2 * sizeof(uint64_t));

    /* a digest that starts so stands for another */
    if (salt[0] == 0 && salt[1] == 0) {
        salt[1] = 1;
    }

    return SLORA_OK;
}


uint64_t
slora_prefix_tenant(const char *name)
{
    uint64_t  h;

    if (name == NULL || name[0] == '\0') {
        return 0;
    }

    h = slora_prefix_key();
    while (*name != '\0') {
        h = slora_prefix_mix(h, (unsigned char) *name++);
    }

    return h != 0 ? h : 1;
}


slora_prefix_t *
slora_prefix_create(slora_pool_t *pool, slora_err_t *err)
{
    uint64_t         n_buckets;
    slora_prefix_t  *pc;

    (void) slora_prefix_key();

    pc = calloc(1, sizeof(slora_prefix_t));
    if (pc == NULL) {
        slora_err_set(err, SLORA_ERROR, "prefix cache: out of memory");
        return NULL;
    }

    pc->pool = pool;
    pc->tpp = slora_pool_tokens_per_page(pool);
    pc->n_pages = slora_pool_n_pages(pool);
    pc->lru_head = -1;
    pc->lru_tail = -1;

    /* a power of two at least twice the entries there can be */
    n_buckets = 2;
    while (n_buckets < 2 * (uint64_t) pc->n_pages) {
        n_buckets <<= 1;
    }

    pc->mask = n_buckets - 1;
    pc->entry = calloc((size_t) pc->n_pages, sizeof(slora_prefix_entry_t));
    pc->tokens = malloc((size_t) pc->n_pages * (size_t) pc->tpp
                        * sizeof(int32_t));
    pc->bucket = malloc((size_t) n_buckets * sizeof(int32_t));

    if (pc->entry == NULL || pc->tokens == NULL || pc->bucket == NULL) {
        slora_err_set(err, SLORA_ERROR, "prefix cache: out of memory for "
                      "%d pages", pc->n_pages);
        free(pc->entry);
        free(pc->tokens);
        free(pc->bucket);
        free(pc);
        return NULL;
    }

    memset(pc->bucket, 0xff, (size_t) n_buckets * sizeof(int32_t));

    slora_pool_set_reclaim(pool, slora_prefix_reclaim_cb, pc);

    return pc;
}


void
slora_prefix_free(slora_prefix_t *pc)
{
    if (pc == NULL) {
        return;
    }

    slora_prefix_reclaim(pc, pc->n_pages);
    slora_pool_set_reclaim(pc->pool, NULL, NULL);

    free(pc->entry);
    free(pc->tokens);
    free(pc->bucket);
    free(pc);
}


int32_t
slora_prefix_take(slora_prefix_t *pc, const slora_prefix_owner_t *o,
    const int32_t *tokens, int32_t from, int32_t max_pages, int32_t *pages)
{
    int32_t                i, page, parent;
    slora_prefix_entry_t  *e;

    pc->stats.lookups++;
    parent = from > 0 ? pages[from - 1] : -1;

    for (i = from; i < max_pages; i++) {
        page = slora_prefix_match(pc, o, tokens, i, parent);
        if (page < 0) {
            break;
        }

        e = &pc->entry[page];

        if (e->refs++ == 0) {
            if (e->on_lru) {
                slora_prefix_lru_remove(pc, page);
            }

            slora_pool_set_kind(pc->pool, page, SLORA_PAGE_KV);
            pc->stats.idle--;
        }

        pages[i] = page;
        parent = page;
    }

    if (i > from) {
        pc->stats.hit_tokens += (uint64_t) (i - from) * (uint64_t) pc->tpp;
    }

    return i;
}


int32_t
slora_prefix_peek(slora_prefix_t *pc, const slora_prefix_owner_t *o,
    const int32_t *tokens, int32_t max_pages)
{
    int32_t  i, page, parent;

    parent = -1;

    for (i = 0; i < max_pages; i++) {
        page = slora_prefix_match(pc, o, tokens, i, parent);
        if (page < 0) {
            break;
        }

        parent = page;
    }

    return i;
}


int
slora_prefix_put(slora_prefix_t *pc, const slora_prefix_owner_t *o,
    const int32_t *tokens, int32_t i, const int32_t *pages)
{
    int32_t                page, parent;
    uint64_t               hash;
    const int32_t         *t;
    slora_prefix_entry_t  *e;

    parent = i > 0 ? pages[i - 1] : -1;
    page = pages[i];
    t = tokens + (int64_t) i * pc->tpp;

    slora_assert(page >= 0 && page < pc->n_pages && !pc->entry[page].used);
    slora_assert(parent < 0 || (pc->entry[parent].used
                                && pc->entry[parent].refs > 0));

    /* after a flush a page is never found under its old parent: a child
     * entered there would never be found either */
    if (parent >= 0 && pc->entry[parent].epoch != pc->epoch) {
        return 0;
    }

    hash = slora_prefix_hash(o, parent, t, pc->tpp);

    if (slora_prefix_find(pc, hash, o, parent, t) >= 0) {
        return 0;
    }

    e = &pc->entry[page];
    e->hash = hash;
    e->owner = *o;
    e->epoch = pc->epoch;
    e->parent = parent;
    e->refs = 1;
    e->children = 0;
    e->used = 1;
    e->on_lru = 0;
    e->next = pc->bucket[hash & pc->mask];
    pc->bucket[hash & pc->mask] = page;

    memcpy(pc->tokens + (int64_t) page * pc->tpp, t,
           (size_t) pc->tpp * sizeof(int32_t));

    if (parent >= 0) {
        pc->entry[parent].children++;
    }

    pc->stats.pages++;
    pc->stats.entered++;

    return 1;
}


void
slora_prefix_drop(slora_prefix_t *pc, int32_t n, const int32_t *pages)
{
    int32_t                i, parent;
    slora_prefix_entry_t  *e;

    /* deepest first: a leaf joins the list before its parent is one */
    for (i = n - 1; i >= 0; i--) {
        e = &pc->entry[pages[i]];
        slora_assert(e->used && e->refs > 0);

        if (--e->refs > 0) {
            continue;
        }

        e->last = ++pc->clock;
        slora_pool_set_kind(pc->pool, pages[i], SLORA_PAGE_CACHED);
        pc->stats.idle++;

        if (e->children > 0) {
            continue;
        }

        if (e->epoch != pc->epoch) {
            /* flushed while held: never found again, so gone now */
            (void) slora_prefix_forget(pc, pages[i], &parent);
            continue;
        }

        slora_prefix_lru_push(pc, pages[i], 0);
    }
}


int32_t
slora_prefix_flush(slora_prefix_t *pc)
{
    pc->epoch++;

    /* the idle entries are the list's leaves and, leaf by leaf, their
     * parents: all of them */
    return slora_prefix_reclaim(pc, pc->n_pages);
}


int32_t
slora_prefix_reclaim(slora_prefix_t *pc, int32_t n)
{
    int32_t                done, page, parent;
    slora_prefix_entry_t  *p;

    done = 0;

    while (done < n && pc->lru_head >= 0) {
        page = pc->lru_head;
        slora_prefix_lru_remove(pc, page);
        done += slora_prefix_forget(pc, page, &parent);

        if (parent >= 0) {
            p = &pc->entry[parent];

            if (p->children == 0 && p->refs == 0) {
                slora_prefix_lru_place(pc, parent);
            }
        }
    }

    return done;
}


/*
 * An idle leaf out of the cache, its page to the pool, and *parent the
 * entry it hung from (-1: none). A parent of an older epoch left an idle
 * leaf goes with it, and so on up: it is never found, so nothing keeps
 * it. Returns the pages released.
 */
static int32_t
slora_prefix_forget(slora_prefix_t *pc, int32_t page, int32_t *parent)
{
    int32_t                n;
    slora_prefix_entry_t  *e, *p;

    for (n = 1; ; n++) {
        e = &pc->entry[page];
        slora_assert(e->used && e->refs == 0 && e->children == 0
                     && !e->on_lru);

        *parent = e->parent;
        slora_prefix_unlink(pc, page);
        e->used = 0;
        slora_pool_release(pc->pool, 1, &page);

        pc->stats.pages--;
        pc->stats.idle--;
        pc->stats.evictions++;

        if (*parent < 0) {
            return n;
        }

        p = &pc->entry[*parent];
        p->children--;

        /* a parent with children had none on the list */
        if (p->epoch == pc->epoch || p->refs > 0 || p->children > 0) {
            return n;
        }

        page = *parent;
    }
}


void
slora_prefix_stats(const slora_prefix_t *pc, slora_prefix_stats_t *st)
{
    *st = pc->stats;
}


static int32_t
slora_prefix_reclaim_cb(void *data, int32_t n)
{
    return slora_prefix_reclaim(data, n);
}


/* The entry of page i of tokens after the entry parent, or -1. */
static int32_t
slora_prefix_match(slora_prefix_t *pc, const slora_prefix_owner_t *o,
    const int32_t *tokens, int32_t i, int32_t parent)
{
    const int32_t  *t;

    t = tokens + (int64_t) i * pc->tpp;

    return slora_prefix_find(pc, slora_prefix_hash(o, parent, t, pc->tpp),
                             o, parent, t);
}


static int32_t
slora_prefix_find(slora_prefix_t *pc, uint64_t hash,
    const slora_prefix_owner_t *o, int32_t parent, const int32_t *tokens)
{
    int32_t                page;
    slora_prefix_entry_t  *e;

    for (page = pc->bucket[hash & pc->mask]; page >= 0; page = e->next) {
        e = &pc->entry[page];

        if (e->hash == hash && e->parent == parent
            && slora_prefix_same_owner(&e->owner, o) && e->epoch == pc->epoch
            && memcmp(pc->tokens + (int64_t) page * pc->tpp, tokens,
                      (size_t) pc->tpp * sizeof(int32_t)) == 0)
        {
            return page;
        }
    }

    return -1;
}


static uint64_t
slora_prefix_hash(const slora_prefix_owner_t *o, int32_t parent,
    const int32_t *tokens, int32_t tpp)
{
    int32_t   i;
    uint64_t  h;

    h = slora_prefix_mix(slora_prefix_key(), (uintptr_t) o->adapter);
    h = slora_prefix_mix(h, o->gen);
    h = slora_prefix_mix(h, o->tenant);
    h = slora_prefix_mix(h, o->salt[0]);
    h = slora_prefix_mix(h, o->salt[1]);
    h = slora_prefix_mix(h, (uint32_t) parent);

    for (i = 0; i < tpp; i++) {
        h = slora_prefix_mix(h, (uint32_t) tokens[i]);
    }

    return h;
}


/* The process's key, drawn on first use (the engine's thread makes the
 * caches and hashes tenants). */
static uint64_t
slora_prefix_key(void)
{
    static uint64_t  key;

    if (key == 0
        && getrandom(&key, sizeof(key), GRND_NONBLOCK) != sizeof(key))
    {
        key = slora_prefix_mix((uint64_t) time(NULL), (uint64_t) getpid());
    }

    return key != 0 ? key : 1;
}


/* One word more into h: splitmix64's step and finalizer. */
static uint64_t
slora_prefix_mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h += 0x9e3779b97f4a7c15ULL;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;

    return h ^ (h >> 31);
}


/* To the tail (the most recent), or with head to the head (next out). */
static void
slora_prefix_lru_push(slora_prefix_t *pc, int32_t page, int head)
{
    slora_prefix_entry_t  *e;

    e = &pc->entry[page];
    slora_assert(!e->on_lru);

    if (head) {
        e->lru_prev = -1;
        e->lru_next = pc->lru_head;

        if (pc->lru_head >= 0) {
            pc->entry[pc->lru_head].lru_prev = page;
        } else {
            pc->lru_tail = page;
        }

        pc->lru_head = page;

    } else {
        e->lru_next = -1;
        e->lru_prev = pc->lru_tail;

        if (pc->lru_tail >= 0) {
            pc->entry[pc->lru_tail].lru_next = page;
        } else {
            pc->lru_head = page;
        }

        pc->lru_tail = page;
    }

    e->on_lru = 1;
}


/*
 * A parent left an idle leaf by a reclaim goes where its own last
 * letting go puts it among the list's: a system prompt that requests
 * held without its children is newer than they were. The list is in that
 * order (pushes at the tail are the newest), so the place is looked for
 * from the end it is nearer, SLORA_PREFIX_PLACE_STEPS entries at most
 * from each (where neither finds it, that far from the newest end).
 */
static void
slora_prefix_lru_place(slora_prefix_t *pc, int32_t page)
{
    int32_t                i, at, k;
    slora_prefix_entry_t  *e, *n;

    e = &pc->entry[page];

    /* from the oldest: the first entry newer than it */
    for (at = pc->lru_head, k = 0;
         at >= 0 && k < SLORA_PREFIX_PLACE_STEPS
         && pc->entry[at].last < e->last;
         at = pc->entry[at].lru_next, k++)
    {
        /* void */
    }

    if (at >= 0 && k == SLORA_PREFIX_PLACE_STEPS) {
        /* from the newest: the last entry older than it, or as far */
        for (i = pc->lru_tail, k = 0;
             i >= 0 && k < SLORA_PREFIX_PLACE_STEPS
             && pc->entry[i].last > e->last;
             i = pc->entry[i].lru_prev, k++)
        {
            at = i;
        }

        if (k < SLORA_PREFIX_PLACE_STEPS) {
            at = i >= 0 ? pc->entry[i].lru_next : pc->lru_head;
        }
    }

    if (at < 0) {
        slora_prefix_lru_push(pc, page, 0);
        return;
    }

    if (at == pc->lru_head) {
        slora_prefix_lru_push(pc, page, 1);
        return;
    }

    /* before at */
    n = &pc->entry[at];
    e->lru_next = at;
    e->lru_prev = n->lru_prev;
    pc->entry[n->lru_prev].lru_next = page;
    n->lru_prev = page;
    e->on_lru = 1;
}


static void
slora_prefix_lru_remove(slora_prefix_t *pc, int32_t page)
{
    slora_prefix_entry_t  *e;

    e = &pc->entry[page];
    slora_assert(e->on_lru);

    if (e->lru_prev >= 0) {
        pc->entry[e->lru_prev].lru_next = e->lru_next;
    } else {
        pc->lru_head = e->lru_next;
    }

    if (e->lru_next >= 0) {
        pc->entry[e->lru_next].lru_prev = e->lru_prev;
    } else {
        pc->lru_tail = e->lru_prev;
    }

    e->on_lru = 0;
}


/* Out of its hash chain. */
static void
slora_prefix_unlink(slora_prefix_t *pc, int32_t page)
{
    int32_t               *at;
    slora_prefix_entry_t  *e;

    e = &pc->entry[page];

    for (at = &pc->bucket[e->hash & pc->mask]; *at != page;
         at = &pc->entry[*at].next)
    {
        slora_assert(*at >= 0);
    }

    *at = e->next;
}
