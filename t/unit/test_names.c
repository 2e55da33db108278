/*
 * test_names.c: the name index (engine/slora_names.h). A table for n
 * names holds at least n and refuses the one past half its slots; a name
 * and another that begins with it, hashed to the same slot, are two
 * names, found each at its own value, neither taken for a duplicate of
 * the other; a name given twice is declined and keeps its first value.
 *
 * The one idea: the collisions that matter are made on purpose (a search
 * for a longer name that lands in a shorter one's slot), since random
 * names would meet them too rarely to test the length checks.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tap.h"

#include "slora_names.h"


/* A name "<prefix><n>" whose slot in a table of mask + 1 is prefix's. */
static void
colliding(const char *prefix, size_t mask, char *out, size_t size)
{
    uint32_t  n;
    uint64_t  want;

    want = slora_fnv1a(prefix, strlen(prefix)) & mask;

    for (n = 0; n < 100000000; n++) {
        snprintf(out, size, "%s%u", prefix, n);
        if ((slora_fnv1a(out, strlen(out)) & mask) == want) {
            return;
        }
    }

    BAIL_OUT("no name collides with %s", prefix);
}


int
main(void)
{
    int            i, full;
    char           names[16][16], longer[32];
    slora_names_t  ix;

    /* room: a table for 4 names has 16 slots and takes 8 */
    ok(slora_names_init(&ix, 4) == SLORA_OK && ix.mask == 15,
       "a table for 4 names has 16 slots");

    full = 0;
    for (i = 0; i < 9; i++) {
        snprintf(names[i], sizeof(names[i]), "n%d", i);
        if (slora_names_add(&ix, names[i], strlen(names[i]), i)
            != SLORA_OK)
        {
            break;
        }
        full = i + 1;
    }
    is_int(full, 8, "it takes 8 names, half its slots, and refuses the 9th");
    is_int(slora_names_find(&ix, "n7", 2), 7, "the 8th is found");
    slora_names_free(&ix);

    /* a name and a longer one in the same slot */
    ok(slora_names_init(&ix, 4) == SLORA_OK, "a fresh table");
    colliding("ab", ix.mask, longer, sizeof(longer));

    is_int(slora_names_add(&ix, longer, strlen(longer), 1), SLORA_OK,
           "%s, in ab's slot, added", longer);
    is_int(slora_names_find(&ix, "ab", 2), -1,
           "ab is not found in its place");
    is_int(slora_names_add(&ix, "ab", 2, 2), SLORA_OK,
           "ab is added: no duplicate of %s", longer);
    ok(slora_names_find(&ix, "ab", 2) == 2
       && slora_names_find(&ix, longer, strlen(longer)) == 1,
       "each is found at its own value");

    is_int(slora_names_add(&ix, "ab", 2, 3), SLORA_DECLINED,
           "ab again: declined");
    is_int(slora_names_find(&ix, "ab", 2), 2, "... its first value kept");
    slora_names_free(&ix);

    return done_testing();
}
