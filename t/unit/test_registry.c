/*
 * test_registry.c: the adapters registered at run time as the shared zone
 * keeps them (engine/slora_queue.h, slora_queue_registry_*). A fresh zone
 * holds none; a name put is found with its path, put again its path is
 * replaced in the same entry; the table takes SLORA_QUEUE_REGISTRY_MAX
 * names and refuses the next (room says so first) but still replaces a
 * name it holds; a drop makes room; names and paths too long for an
 * entry are refused; a copy into a fresh zone gives the same names and
 * paths, and leaves out an entry torn by a dying writer (no NUL).
 *
 * The one idea: every entry is compared through the public calls, so a
 * layout that put the table over another region (the names, the slots)
 * shows as a lost or changed entry after the zone's other parts are
 * written.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#include "slora_queue.h"


static slora_queue_t *
fresh_zone(void)
{
    void                *mem;
    size_t               size;
    slora_err_t          err;
    slora_queue_geom_t   geom = { 3, 16, 4, 3 };

    size = slora_queue_size(&geom);
    mem = aligned_alloc(64, size);
    if (mem == NULL) {
        BAIL_OUT("no memory for a zone of %zu bytes", size);
    }

    memset(mem, 0xa5, size);

    if (slora_queue_init(mem, size, &geom, 7, &err) != SLORA_OK) {
        BAIL_OUT("init: %s", err.msg);
    }

    return mem;
}


/* The registered (name, path) pairs as "name=path;" in entry order. */
static void
listing(const slora_queue_t *q, char *out, size_t cap)
{
    size_t                       n;
    uint32_t                     i;
    const slora_registration_t  *r;

    n = 0;
    out[0] = '\0';

    for (i = 0; i < SLORA_QUEUE_REGISTRY_MAX + 4; i++) {
        r = slora_queue_registry_get(q, i);
        if (r != NULL && n < cap) {
            n += (size_t) snprintf(out + n, cap - n, "%s=%s;", r->name,
                                   r->path);
        }
    }
}


int
main(void)
{
    int                    found, all;
    char                   name[64], path[64], list[256], *big;
    uint32_t               i;
    const char            *names[2] = { "a", "b" };
    slora_err_t            err;
    slora_queue_t         *q, *to;
    slora_registration_t  *torn, *writing;

    q = fresh_zone();

    listing(q, list, sizeof(list));
    is_str(list, "", "a fresh zone holds no registration");
    ok(slora_queue_registry_room(q, "sql"), "room in a fresh zone");

    is_int(slora_queue_registry_put(q, "sql", "/a/v1"), SLORA_OK, "put sql");
    is_int(slora_queue_registry_put(q, "chat", "/a/c"), SLORA_OK,
           "put chat");
    is_int(slora_queue_registry_put(q, "sql", "/a/v2"), SLORA_OK,
           "put sql again");
    listing(q, list, sizeof(list));
    is_str(list, "sql=/a/v2;chat=/a/c;", "sql's path replaced in its own "
           "entry, chat kept");

    /* the zone's other regions written: the table is apart from them */
    is_int(slora_queue_set_names(q, names, 2, &err), SLORA_OK,
           "adapter names published");
    memset(slora_queue_prompt(q, 2), 0x5a, 16 * sizeof(int32_t));
    memset(slora_queue_schema(q, 2), 0x5a, SLORA_QUEUE_SCHEMA_LEN);
    listing(q, list, sizeof(list));
    is_str(list, "sql=/a/v2;chat=/a/c;", "the registrations untouched by "
           "the names, the prompt and the schema regions");

    is_int(slora_queue_registry_drop(q, "sql"), 1, "drop sql");
    is_int(slora_queue_registry_drop(q, "sql"), 0, "drop sql again: absent");
    listing(q, list, sizeof(list));
    is_str(list, "chat=/a/c;", "chat alone");

    /* full: chat and SLORA_QUEUE_REGISTRY_MAX - 1 more */
    all = 1;
    for (i = 1; i < SLORA_QUEUE_REGISTRY_MAX; i++) {
        snprintf(name, sizeof(name), "n%u", i);
        snprintf(path, sizeof(path), "/a/p%u", i);
        all &= slora_queue_registry_put(q, name, path) == SLORA_OK;
    }
    ok(all, "%d registrations in all taken", SLORA_QUEUE_REGISTRY_MAX);
    ok(!slora_queue_registry_room(q, "one-more"), "no room for one more");
    is_int(slora_queue_registry_put(q, "one-more", "/a/x"), SLORA_BUSY,
           "one more: SLORA_BUSY");
    ok(slora_queue_registry_room(q, "n7"), "room for a name held");
    is_int(slora_queue_registry_put(q, "n7", "/a/seven"), SLORA_OK,
           "a name held replaced in a full table");
    is_int(slora_queue_registry_drop(q, "n9"), 1, "drop n9");
    is_int(slora_queue_registry_put(q, "one-more", "/a/x"), SLORA_OK,
           "one more, once a drop made room");

    /* too long for an entry */
    big = malloc(SLORA_QUEUE_PATH_LEN + 1);
    if (big == NULL) {
        BAIL_OUT("no memory");
    }
    memset(big, 'p', SLORA_QUEUE_PATH_LEN);
    big[0] = '/';
    big[SLORA_QUEUE_PATH_LEN] = '\0';
    is_int(slora_queue_registry_drop(q, "chat"), 1, "drop chat");
    is_int(slora_queue_registry_put(q, "long", big), SLORA_ERROR,
           "a path of SLORA_QUEUE_PATH_LEN bytes refused");
    big[SLORA_QUEUE_PATH_LEN - 1] = '\0';
    is_int(slora_queue_registry_put(q, "long", big), SLORA_OK,
           "one byte shorter taken");
    memset(big, 'n', SLORA_QUEUE_ADAPTER_LEN);
    big[SLORA_QUEUE_ADAPTER_LEN] = '\0';
    is_int(slora_queue_registry_put(q, big, "/a/n"), SLORA_ERROR,
           "a name of SLORA_QUEUE_ADAPTER_LEN bytes refused");
    free(big);

    /* copied into a fresh zone, a torn entry left out */
    for (i = 0; i < SLORA_QUEUE_REGISTRY_MAX; i++) {
        if (slora_queue_registry_get(q, i) != NULL
            && strcmp(slora_queue_registry_get(q, i)->name, "n5") == 0)
        {
            torn = (slora_registration_t *) slora_queue_registry_get(q, i);
            memset(torn->path, 'x', sizeof(torn->path));
        }

        /* n3 being written (its seq odd) throughout the copy's tries */
        if (slora_queue_registry_get(q, i) != NULL
            && strcmp(slora_queue_registry_get(q, i)->name, "n3") == 0)
        {
            writing = (slora_registration_t *) slora_queue_registry_get(q, i);
            atomic_fetch_add(&writing->seq, 1);
        }
    }

    to = fresh_zone();
    slora_queue_registry_copy(to, q);

    all = 1;
    found = 0;
    for (i = 0; i < SLORA_QUEUE_REGISTRY_MAX; i++) {
        const slora_registration_t  *r = slora_queue_registry_get(to, i);

        if (r == NULL) {
            continue;
        }

        found++;
        if (strcmp(r->name, "n7") == 0) {
            all &= strcmp(r->path, "/a/seven") == 0;
        } else if (strcmp(r->name, "one-more") == 0) {
            all &= strcmp(r->path, "/a/x") == 0;
        } else if (strcmp(r->name, "long") == 0) {
            all &= strlen(r->path) == SLORA_QUEUE_PATH_LEN - 1;
        } else if (r->name[0] == 'n') {
            snprintf(path, sizeof(path), "/a/p%s", r->name + 1);
            all &= strcmp(r->path, path) == 0 && strcmp(r->name, "n5") != 0
                   && strcmp(r->name, "n9") != 0
                   && strcmp(r->name, "n3") != 0;
        } else {
            all = 0;
        }
    }
    is_int(found, SLORA_QUEUE_REGISTRY_MAX - 2, "the copy holds every "
           "entry but the torn one and the one being written");
    ok(all, "each with its own path");

    free(q);
    free(to);

    return done_testing();
}
