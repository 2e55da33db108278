/*
 * openai_eq.h: the comparisons the request parser's tests make of what
 * it parsed: a parsed string against a C string (its bytes, its length
 * and the NUL the parser puts after it), and two C strings where NULL
 * stands for JSON null.
 */

#ifndef OPENAI_EQ_H
#define OPENAI_EQ_H

#include <string.h>

#include "slora_openai.h"


static inline int
streq(const slora_openai_str_t *s, const char *want)
{
    return s->data != NULL && s->len == strlen(want)
           && memcmp(s->data, want, s->len) == 0 && s->data[s->len] == '\0';
}


/* Equal strings, NULL equal to NULL only. */
static inline int
nstreq(const char *a, const char *b)
{
    return (a && b) ? strcmp(a, b) == 0 : a == b;
}


#endif /* OPENAI_EQ_H */
