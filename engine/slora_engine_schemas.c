/*
 * slora_engine_schemas.c: the compiled constraints the engine keeps. A
 * request's schema (or regex, grammar, choice, structural tag) is
 * compiled at its submit on the engine thread, between steps, where a
 * compile that spends its work budget (some 4 ms, bench/RESULTS.md)
 * holds every running request's next token. Clients send the same
 * constraint again and again (one application's response_format, one
 * set of tools, the n choices of one request), so the engine keeps the
 * last SLORA_ENGINE_SCHEMAS compiled, by form and text, and a request
 * of one of them takes it as it is.
 *
 * The one idea: a compiled schema is read only once made (one
 * allocation, which nothing writes after its compile), so requests share
 * one, counted. The least recently taken that no request holds makes
 * room; where every entry is held, or the schema alone is over
 * SLORA_ENGINE_SCHEMA_BYTES, the compile is the request's own, freed
 * with it. The entries hold at most SLORA_ENGINE_SCHEMA_BYTES between
 * them.
 */

#include <stdlib.h>
#include <string.h>

#include "slora_engine_int.h"


static slora_engine_schema_t *slora_engine_schema_find(slora_engine_t *e,
    int form, const char *text, size_t len, uint64_t hash);
static slora_engine_schema_t *slora_engine_schema_room(slora_engine_t *e,
    size_t size);
static void slora_engine_schema_clear(slora_engine_t *e,
    slora_engine_schema_t *k);


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
    char                   *copy;
    size_t                  size;
    uint64_t                hash;
    slora_json_schema_t    *s;
    slora_engine_schema_t  *k;

    hash = slora_fnv1a(text, len);
    *held = NULL;

    k = slora_engine_schema_find(e, form, text, len, hash);

    if (k != NULL) {
        k->refs++;
        k->used = ++e->schema_clock;
        e->schema_hits++;
        *held = k;
        return k->schema;
    }

    s = slora_json_form_parse(form, text, len, err);
    if (s == NULL) {
        return NULL;
    }

    e->schema_compiles++;
    size = slora_json_schema_size(s) + len;

    k = slora_engine_schema_room(e, size);
    copy = k != NULL ? malloc(len + 1) : NULL;

    if (copy == NULL) {
        /* every entry held, too big to keep, or no memory for the key:
         * the request's own */
        return s;
    }

    memcpy(copy, text, len);
    copy[len] = '\0';

    k->schema = s;
    k->text = copy;
    k->len = len;
    k->hash = hash;
    k->form = form;
    k->size = size;
    k->refs = 1;
    k->used = ++e->schema_clock;
    e->schema_bytes += size;
    *held = k;

    return s;
}


/* q's schema let go: held's count down (it stays kept for the next
 * request of its text), or s freed where it was q's own. */
void
slora_engine_schema_drop(slora_engine_schema_t *held, slora_json_schema_t *s)
{
    if (held != NULL) {
        held->refs--;
        return;
    }

    slora_json_schema_free(s);
}


/* Every kept schema freed: the engine's end, no request left. */
void
slora_engine_schemas_free(slora_engine_t *e)
{
    uint32_t  i;

    for (i = 0; i < SLORA_ENGINE_SCHEMAS; i++) {
        if (e->schemas[i].schema != NULL) {
            slora_engine_schema_clear(e, &e->schemas[i]);
        }
    }
}


static slora_engine_schema_t *
slora_engine_schema_find(slora_engine_t *e, int form, const char *text,
    size_t len, uint64_t hash)
{
    uint32_t                i;
    slora_engine_schema_t  *k;

    for (i = 0; i < SLORA_ENGINE_SCHEMAS; i++) {
        k = &e->schemas[i];

        if (k->schema != NULL && k->hash == hash && k->len == len
            && k->form == form && memcmp(k->text, text, len) == 0)
        {
            return k;
        }
    }

    return NULL;
}


/* An empty entry for a schema of size bytes, the least recently taken
 * of those no request holds cleared while the entries would hold too
 * much; NULL: none to clear, or size alone is over the bound. */
static slora_engine_schema_t *
slora_engine_schema_room(slora_engine_t *e, size_t size)
{
    uint32_t                i;
    slora_engine_schema_t  *k, *empty, *oldest;

    if (size > SLORA_ENGINE_SCHEMA_BYTES) {
        return NULL;
    }

    for ( ;; ) {
        empty = NULL;
        oldest = NULL;

        for (i = 0; i < SLORA_ENGINE_SCHEMAS; i++) {
            k = &e->schemas[i];

            if (k->schema == NULL) {
                empty = empty != NULL ? empty : k;

            } else if (k->refs == 0
                       && (oldest == NULL || k->used < oldest->used))
            {
                oldest = k;
            }
        }

        if (empty != NULL
            && e->schema_bytes + size <= SLORA_ENGINE_SCHEMA_BYTES)
        {
            return empty;
        }

        if (oldest == NULL) {
            return NULL;
        }

        slora_engine_schema_clear(e, oldest);
    }
}


static void
slora_engine_schema_clear(slora_engine_t *e, slora_engine_schema_t *k)
{
    e->schema_bytes -= k->size;
    slora_json_schema_free(k->schema);
    free(k->text);
    memset(k, 0, sizeof(*k));
}
