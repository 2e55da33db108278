/*
 * slora_regex_int.h: a pattern's syntax tree, shared by its parser
 * (slora_regex_parse.c) and the automaton's builder (slora_regex.c), and
 * the builder's questions of lengths (slora_regex_len.c).
 *
 * The one idea: every character a pattern can name (a literal, a class,
 * ".", an escape) is a set of code points as sorted ranges, so the
 * builder sees only sets, concatenation, alternation and repetition;
 * where a top-level alternative is not anchored, the parser has already
 * put "any text" before or after it.
 */

#ifndef SLORA_REGEX_INT_H
#define SLORA_REGEX_INT_H


#include "slora_regex.h"


#define SLORA_RE_NODES_MAX   8192
#define SLORA_RE_RANGES_MAX  65536
#define SLORA_RE_DEPTH_MAX   64         /* groups within each other */
#define SLORA_RE_CODE_MAX    0x10ffff


typedef enum {
    SLORA_RE_EMPTY = 0,         /* the empty text */
    SLORA_RE_SET,               /* one code point of ranges[a, a + n) */
    SLORA_RE_CAT,               /* kids[a, a + n) one after another */
    SLORA_RE_ALT,               /* one of kids[a, a + n) */
    SLORA_RE_REPEAT,            /* node a, min..max times */
    SLORA_RE_BYTE               /* the one byte a, as it is: a grammar's
                                   call of a rule (slora_regex.h's
                                   SLORA_REGEX_CALLS) */
} slora_re_kind_e;


typedef struct {
    uint32_t    kind;
    uint32_t    a;
    uint32_t    n;
    uint32_t    min;
    uint32_t    max;            /* SLORA_REGEX_NONE: no limit */
} slora_re_node_t;


typedef struct {
    uint32_t    lo;
    uint32_t    hi;
} slora_re_range_t;


typedef struct {
    slora_re_node_t   *nodes;
    uint32_t           n_nodes;
    uint32_t           cap_nodes;
    slora_re_range_t  *ranges;
    uint32_t           n_ranges;
    uint32_t           cap_ranges;
    uint32_t          *kids;
    uint32_t           n_kids;
    uint32_t           cap_kids;
    uint32_t           root;
} slora_re_tree_t;


#define SLORA_RE_FAR         (UINT32_MAX - 1)   /* no match reachable */


/* Edges by state: to[off[s], off[s + 1]), each w 1 (a lead byte: one
 * character more) or 0. */
typedef struct {
    uint32_t   *off;
    uint32_t   *to;
    uint8_t    *w;
    uint32_t    n;
} slora_re_edges_t;


/* Parses pattern[0..len) into t (zeroed by the caller; its arrays freed
 * with slora_re_tree_free whatever the outcome); how: SLORA_REGEX_SEARCH
 * or SLORA_REGEX_WHOLE, maybe with SLORA_REGEX_LONG. */
int slora_re_parse(slora_re_tree_t *t, const char *pattern, size_t len,
    int how, slora_err_t *err);

void slora_re_tree_free(slora_re_tree_t *t);

/* The automaton's lengths (slora_regex_len.c): its edges by state from
 * next[n][n_classes] (lead[c]: class c's bytes begin a character), freed
 * with slora_re_edges_free; the least characters from each state to an
 * accepting one (SLORA_RE_FAR: none); the most (SLORA_REGEX_NONE: no
 * limit); bits[s * words ..]: bit L set when a match ends exactly L
 * characters on from s, L up to max. */
int slora_re_edges(slora_re_edges_t *e, const uint16_t *next,
    const uint8_t *lead, uint32_t n, uint32_t n_classes);
void slora_re_edges_free(slora_re_edges_t *e);
int slora_re_least(const slora_re_edges_t *e, uint32_t n,
    const uint8_t *accept, uint32_t *dist);
int slora_re_most(const slora_re_edges_t *e, uint32_t n, uint32_t *most);
void slora_re_lengths(const slora_re_edges_t *e, uint32_t n,
    const uint8_t *accept, uint32_t max, uint32_t words, uint64_t *bits);


#endif /* SLORA_REGEX_INT_H */
