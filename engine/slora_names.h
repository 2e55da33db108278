/*
 * slora_names.h: a fixed-size index from names to small integers, used by
 * the file readers to find tensors and keys by name and to refuse
 * duplicates that a hostile file may carry.
 *
 * The one idea: open addressing over a power-of-two table sized once, at
 * least twice the number of names, so lookups stay short and the table
 * never grows. Names are not copied: they must outlive the index.
 */

#ifndef SLORA_NAMES_H
#define SLORA_NAMES_H


#include "slora_core.h"


typedef struct {
    const char  *name;
    size_t       len;
    int64_t      value;
} slora_names_slot_t;


typedef struct {
    slora_names_slot_t  *slots;
    size_t               mask;
    size_t               n;
} slora_names_t;


int slora_names_init(slora_names_t *ix, size_t max_names);
void slora_names_free(slora_names_t *ix);

/* Returns SLORA_OK, SLORA_DECLINED when name is already there (its value
 * is left as it was), SLORA_ERROR when the table is full. */
int slora_names_add(slora_names_t *ix, const char *name, size_t len,
    int64_t value);

/* The value stored for name, or -1. */
int64_t slora_names_find(const slora_names_t *ix, const char *name,
    size_t len);


#endif /* SLORA_NAMES_H */
