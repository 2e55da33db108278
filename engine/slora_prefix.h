/*
 * slora_prefix.h: the KV prefix cache. A full KV page of computed tokens
 * is entered in the cache as its request computes it, and kept after the
 * request ends, keyed by its owner (the adapter, the generation of its
 * weights, the tenant), the page's tokens and the entry of the page
 * before it; a request whose tokens start with the same pages under the
 * same owner holds those pages instead of computing them again. A
 * tenant's system prompt, the turns of a chat and a request preempted
 * and admitted again all begin with pages some request already computed.
 * Tenants never share pages: one could otherwise tell from its cached
 * tokens, or from how soon its first token came, how another tenant's
 * prompts begin. A request's cache salt (vLLM's cache_salt) is part of
 * its owner too, so users within one tenant can keep their pages apart.
 *
 * The one idea: an entry is a page, named by its page id, and its key
 * names the whole prefix through its parent, so a lookup walks a prompt
 * page by page and compares tokens, never trusting a hash alone. Pages
 * are shared read-only: a request holds only full pages of positions
 * below its first position to compute, and writes its new K/V into pages
 * of its own. An entry no request holds is CACHED in the pool, which
 * reclaims it (least recently let go of, leaves first, so that every
 * entry's parent stays) when anything needs a page.
 *
 * Not thread-safe: the engine thread alone calls it, as it does the
 * scheduler that owns it.
 */

#ifndef SLORA_PREFIX_H
#define SLORA_PREFIX_H


#include "slora_core.h"
#include "slora_pool.h"


typedef struct slora_prefix_s  slora_prefix_t;


/* Whose K/V a page holds: requests share pages within one owner only. */
typedef struct {
    const void      *adapter;           /* NULL: the base model */
    uint64_t         gen;               /* the adapter's weights */
    uint64_t         tenant;            /* slora_prefix_tenant(); 0: none */
    uint64_t         salt[2];           /* the request's cache salt (vLLM's
                                           cache_salt: the first 128 bits
                                           of its SHA-256); {0, 0}: none */
} slora_prefix_owner_t;


typedef struct {
    int32_t          pages;             /* entries, held or not */
    int32_t          idle;              /* of them, held by no request */
    uint64_t         lookups;           /* slora_prefix_take calls */
    uint64_t         hit_tokens;        /* tokens they found */
    uint64_t         entered;           /* pages entered */
    uint64_t         evictions;         /* pages reclaimed */
} slora_prefix_stats_t;


/* Whether pages of owner a may serve owner b: every part the same. */
static inline int
slora_prefix_same_owner(const slora_prefix_owner_t *a,
    const slora_prefix_owner_t *b)
{
    return a->adapter == b->adapter && a->gen == b->gen
           && a->tenant == b->tenant && a->salt[0] == b->salt[0]
           && a->salt[1] == b->salt[1];
}

/* A salt part of an owner: the first 128 bits of the SHA-256 of len
 * bytes at data, never {0, 0} (which is none). */
int slora_prefix_salt(const void *data, size_t len, uint64_t salt[2]);

/* The tenant part of an owner: a 64-bit hash of the name, 0 for none. */
uint64_t slora_prefix_tenant(const char *name);

/* A cache over pool's pages; it becomes the pool's reclaimer. */
slora_prefix_t *slora_prefix_create(slora_pool_t *pool, slora_err_t *err);
/* Returns the pages no request holds to the pool, then frees the cache;
 * the requests holding entries must have let go of them before. */
void slora_prefix_free(slora_prefix_t *pc);

/*
 * The longest run of entries of owner o that starts tokens, at most
 * max_pages of them, held by the caller (until slora_prefix_drop), their
 * page ids in pages[]; pages[0, from) are entries of that run the caller
 * holds already, and the run goes on after them. Returns its length.
 */
int32_t slora_prefix_take(slora_prefix_t *pc, const slora_prefix_owner_t *o,
    const int32_t *tokens, int32_t from, int32_t max_pages, int32_t *pages);

/* How many pages slora_prefix_take would take now, taking none: for
 * estimates of what a waiting request will have to compute. */
int32_t slora_prefix_peek(slora_prefix_t *pc, const slora_prefix_owner_t *o,
    const int32_t *tokens, int32_t max_pages);

/*
 * Enters page pages[i], whose tokens tokens[i * tpp, (i + 1) * tpp) have
 * their K/V computed, as owner o's; pages[0, i) must be entries the
 * caller holds. Returns 1 when entered (the caller then holds it as
 * an entry), 0 when an equal entry exists already or a flush forgot the
 * pages before it (the page stays the caller's own, and so must every
 * later one).
 */
int slora_prefix_put(slora_prefix_t *pc, const slora_prefix_owner_t *o,
    const int32_t *tokens, int32_t i, const int32_t *pages);

/* Lets go of the entries pages[0, n) that the caller held. */
void slora_prefix_drop(slora_prefix_t *pc, int32_t n, const int32_t *pages);

/* Forgets every entry: none is found again; those no request holds are
 * released now (returns how many), those held when let go of. */
int32_t slora_prefix_flush(slora_prefix_t *pc);

/* Releases up to n pages no request holds to the pool; returns how many
 * (the pool's reclaimer). */
int32_t slora_prefix_reclaim(slora_prefix_t *pc, int32_t n);

void slora_prefix_stats(const slora_prefix_t *pc, slora_prefix_stats_t *st);


#endif /* SLORA_PREFIX_H */
