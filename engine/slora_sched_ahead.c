/*
 * slora_sched_ahead.c: the prompt pages that requests ahead of a waiting
 * one will have put in the prefix cache by the time it runs, for the SLO
 * estimate (slora_sched_slo.c).
 *
 * The one idea: a burst of prompts that begin alike (a tenant's system
 * prompt) computes that beginning once: the first admitted computes its
 * pages and enters them in the cache, and the others take them, awaiting
 * a page a running request is computing (slora_sched.c). An estimate that
 * counted each of them as computing its whole prompt would refuse most
 * of the burst for work that never happens. So a plan walks its requests
 * in the estimate's order and keeps a set of the pages they will have
 * entered: the running requests' first, then each waiting request kept
 * ahead; a request's pages whose every token up to the page's end, and
 * whose owner, are those of a page in the set cost it no prefill.
 *
 * A page is named by a 64-bit hash of its owner and all its tokens from
 * the first, chained page by page. Unlike the cache itself, which
 * compares tokens and never trusts a hash alone, this trusts the hash: a
 * collision costs one estimate, not a wrong token. Only requests whose
 * first page another request of the plan has too are hashed further (a
 * first pass names every request's first page): a queue of prompts that
 * begin each their own way costs a page's hash a request, not its
 * prompt's.
 */

#include <stdlib.h>
#include <string.h>

#include "slora_sched_int.h"


#define SLORA_AHEAD_MIN_CAP  256            /* a power of two */


static uint64_t slora_ahead_first(const slora_sched_t *s,
    const slora_req_t *r);
static uint64_t slora_ahead_owner(const slora_req_t *r);
static uint64_t slora_ahead_page(uint64_t h, const int32_t *tokens,
    int32_t n);
static uint64_t slora_ahead_mix(uint64_t h, uint64_t v);
static void slora_keys_reset(slora_sched_keys_t *k);
static void slora_keys_free(slora_sched_keys_t *k);
static int slora_keys_has(const slora_sched_keys_t *k, uint64_t key);
static int slora_keys_put(slora_sched_keys_t *k, uint64_t key);
static int slora_keys_grow(slora_sched_keys_t *k);


void
slora_sched_ahead_reset(slora_sched_ahead_t *a)
{
    slora_keys_reset(&a->pages);
    slora_keys_reset(&a->firsts);
    slora_keys_reset(&a->shared);
}


void
slora_sched_ahead_free(slora_sched_ahead_t *a)
{
    slora_keys_free(&a->pages);
    slora_keys_free(&a->firsts);
    slora_keys_free(&a->shared);
}


/*
 * The first pass: names r's first page, and marks it shared when another
 * request named it before. SLORA_ERROR: out of memory.
 */
int
slora_sched_ahead_first(slora_sched_t *s, slora_sched_ahead_t *a,
    const slora_req_t *r)
{
    uint64_t  h;

    if (r->n_tokens < s->tpp) {
        return SLORA_OK;
    }

    h = slora_ahead_first(s, r);

    if (slora_keys_has(&a->firsts, h)) {
        return slora_keys_put(&a->shared, h);
    }

    return slora_keys_put(&a->firsts, h);
}


/*
 * Enters the full pages of r's tokens, those it has computed or will
 * compute and enter in the cache, where its first page is shared.
 * SLORA_ERROR: out of memory (the estimate then counts what is not in
 * the set as prefill).
 */
int
slora_sched_ahead_add(slora_sched_t *s, slora_sched_ahead_t *a,
    const slora_req_t *r)
{
    int32_t   k, n;
    uint64_t  h;

    n = r->n_tokens / s->tpp;

    if (n == 0 || !slora_keys_has(&a->shared, slora_ahead_first(s, r))) {
        return SLORA_OK;
    }

    h = slora_ahead_owner(r);

    for (k = 0; k < n; k++) {
        h = slora_ahead_page(h, r->tokens + (int64_t) k * s->tpp, s->tpp);

        if (slora_keys_put(&a->pages, h) != SLORA_OK) {
            return SLORA_ERROR;
        }
    }

    return SLORA_OK;
}


/*
 * How many pages from r's first the set holds, at most those the cache
 * could give it (its last token is always computed, for its logits; a
 * prompt owing log-probabilities takes none).
 */
int32_t
slora_sched_ahead_pages(const slora_sched_t *s, const slora_sched_ahead_t *a,
    const slora_req_t *r)
{
    int32_t   k, max;
    uint64_t  h;

    max = (r->n_tokens - 1) / s->tpp;

    if (max == 0 || a->pages.n == 0 || r->n_scored < r->score_to
        || !slora_keys_has(&a->shared, slora_ahead_first(s, r)))
    {
        return 0;
    }

    h = slora_ahead_owner(r);

    for (k = 0; k < max; k++) {
        h = slora_ahead_page(h, r->tokens + (int64_t) k * s->tpp, s->tpp);

        if (!slora_keys_has(&a->pages, h)) {
            break;
        }
    }

    return k;
}


/* r's first page's name (r has one) */
static uint64_t
slora_ahead_first(const slora_sched_t *s, const slora_req_t *r)
{
    return slora_ahead_page(slora_ahead_owner(r), r->tokens, s->tpp);
}


/* The chain's start: r's owner, the weights it runs where it holds its
 * adapter (older ones where the source changed since), else as its
 * admission will pin it (the adapter's weights of now, as
 * slora_sched_cached() peeks with); its tenant and cache salt. */
static uint64_t
slora_ahead_owner(const slora_req_t *r)
{
    uint64_t  h;

    h = slora_ahead_mix(0, (uint64_t) (uintptr_t) r->adapter);
    h = slora_ahead_mix(h, r->adapter == NULL ? 0
                           : r->pinned ? r->owner.gen
                           : slora_adapter_gen(r->adapter));

    h = slora_ahead_mix(h, r->owner.tenant);
    h = slora_ahead_mix(h, r->owner.salt[0]);

    return slora_ahead_mix(h, r->owner.salt[1]);
}


/* The page of n tokens after the chain h: never 0, the set's empty
 * slot. */
static uint64_t
slora_ahead_page(uint64_t h, const int32_t *tokens, int32_t n)
{
    int32_t  i;

    for (i = 0; i < n; i++) {
        h = slora_ahead_mix(h, (uint32_t) tokens[i]);
    }

    h = slora_ahead_mix(h, (uint64_t) n);

    return h != 0 ? h : 1;
}


/* one word into h: splitmix64's step and finaliser */
static uint64_t
slora_ahead_mix(uint64_t h, uint64_t v)
{
    h += 0x9e3779b97f4a7c15ULL + v;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;

    return h ^ (h >> 31);
}


static void
slora_keys_reset(slora_sched_keys_t *k)
{
    if (k->n > 0) {
        memset(k->keys, 0, (size_t) k->cap * sizeof(uint64_t));
    }

    k->n = 0;
}


static void
slora_keys_free(slora_sched_keys_t *k)
{
    free(k->keys);
    k->keys = NULL;
    k->cap = 0;
    k->n = 0;
}


static int
slora_keys_has(const slora_sched_keys_t *k, uint64_t key)
{
    uint32_t  i;

    if (k->n == 0) {
        return 0;
    }

    for (i = (uint32_t) key & (k->cap - 1); k->keys[i] != 0;
         i = (i + 1) & (k->cap - 1))
    {
        if (k->keys[i] == key) {
            return 1;
        }
    }

    return 0;
}


/* open addressing, linear probing, at most half full */
static int
slora_keys_put(slora_sched_keys_t *k, uint64_t key)
{
    uint32_t  i;

    if (2 * (k->n + 1) > k->cap && slora_keys_grow(k) != SLORA_OK) {
        return SLORA_ERROR;
    }

    for (i = (uint32_t) key & (k->cap - 1); k->keys[i] != 0;
         i = (i + 1) & (k->cap - 1))
    {
        if (k->keys[i] == key) {
            return SLORA_OK;
        }
    }

    k->keys[i] = key;
    k->n++;

    return SLORA_OK;
}


static int
slora_keys_grow(slora_sched_keys_t *k)
{
    uint64_t  *keys, *old;
    uint32_t   cap, old_cap, i, j;

    cap = k->cap > 0 ? 2 * k->cap : SLORA_AHEAD_MIN_CAP;
    if (cap <= k->cap) {
        return SLORA_ERROR;
    }

    keys = calloc(cap, sizeof(uint64_t));
    if (keys == NULL) {
        return SLORA_ERROR;
    }

    old = k->keys;
    old_cap = k->cap;

    for (i = 0; i < old_cap; i++) {
        if (old[i] == 0) {
            continue;
        }

        for (j = (uint32_t) old[i] & (cap - 1); keys[j] != 0;
             j = (j + 1) & (cap - 1))
        {
            /* the next slot */
        }

        keys[j] = old[i];
    }

    free(old);
    k->keys = keys;
    k->cap = cap;

    return SLORA_OK;
}
