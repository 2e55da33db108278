/*
 * slora_names.c: the name index of slora_names.h: FNV-1a hashes
 * (slora_fnv1a), linear probing, a table of at least twice as many slots
 * as names.
 */

#include <stdlib.h>
#include <string.h>

#include "slora_names.h"


int
slora_names_init(slora_names_t *ix, size_t max_names)
{
    size_t  size;

    size = 16;
    while (size < 2 * max_names) {
        if (size > SIZE_MAX / 4 / sizeof(slora_names_slot_t)) {
            return SLORA_ERROR;
        }
        size *= 2;
    }

    ix->slots = calloc(size, sizeof(slora_names_slot_t));
    if (ix->slots == NULL) {
        return SLORA_ERROR;
    }

    ix->mask = size - 1;
    ix->n = 0;

    return SLORA_OK;
}


void
slora_names_free(slora_names_t *ix)
{
    free(ix->slots);
    ix->slots = NULL;
    ix->n = 0;
}


int
slora_names_add(slora_names_t *ix, const char *name, size_t len,
    int64_t value)
{
    size_t               i;
    slora_names_slot_t  *s;

    if (2 * (ix->n + 1) > ix->mask + 1) {
        return SLORA_ERROR;
    }

    for (i = (size_t) slora_fnv1a(name, len) & ix->mask;
         /* void */ ;
         i = (i + 1) & ix->mask)
    {
        s = &ix->slots[i];

        if (s->name == NULL) {
            s->name = name;
            s->len = len;
            s->value = value;
            ix->n++;
            return SLORA_OK;
        }

        if (s->len == len && memcmp(s->name, name, len) == 0) {
            return SLORA_DECLINED;
        }
    }
}


int64_t
slora_names_find(const slora_names_t *ix, const char *name, size_t len)
{
    size_t                     i;
    const slora_names_slot_t  *s;

    if (ix->slots == NULL) {
        return -1;
    }

    for (i = (size_t) slora_fnv1a(name, len) & ix->mask;
         /* void */ ;
         i = (i + 1) & ix->mask)
    {
        s = &ix->slots[i];

        if (s->name == NULL) {
            return -1;
        }

        if (s->len == len && memcmp(s->name, name, len) == 0) {
            return s->value;
        }
    }
}
