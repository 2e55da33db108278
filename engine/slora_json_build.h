/*
 * slora_json_build.h: the JSON schema compiler's builder, shared by its
 * first pass (slora_json_schema.c: a node for each schema object) and
 * its second (slora_json_settle.c: references resolved, unions
 * settled). Not for the automaton.
 *
 * The one idea: the graph grows in arrays addressed by index, so that a
 * node, a property or an alternative may be reserved before what it
 * points at is compiled, and moved arrays never leave a pointer stale.
 */

#ifndef SLORA_JSON_BUILD_H
#define SLORA_JSON_BUILD_H


#include <cjson/cJSON.h>

#include "slora_json_int.h"


#define SLORA_JSON_K_REF        100     /* a placeholder while compiling */
#define SLORA_JSON_ONE_OF       1       /* a union's min while compiling:
                                           oneOf, no value in two of its
                                           alternatives */
#define SLORA_JSON_NESTING_MAX  64      /* schema objects within each
                                           other */
#define SLORA_JSON_NODES_MAX    4096
#define SLORA_JSON_PATH_LEN     160


typedef struct {
    const cJSON        *at;
    uint32_t            node;
} slora_json_memo_t;


typedef struct {
    slora_json_node_t  *nodes;
    uint32_t            n_nodes;
    uint32_t            cap_nodes;
    slora_json_prop_t  *props;
    uint32_t            n_props;
    uint32_t            cap_props;
    slora_json_text_t  *texts;
    uint32_t            n_texts;
    uint32_t            cap_texts;
    uint32_t           *alts;
    uint32_t            n_alts;
    uint32_t            cap_alts;
    char               *bytes;
    uint32_t            n_bytes;
    uint32_t            cap_bytes;
    char               *regexes;        /* patterns' automata */
    uint32_t            n_regexes;      /* bytes */
    uint32_t            cap_regexes;
    size_t              regex_work;     /* the patterns' budget, shared
                                           (slora_regex_compile) */
    slora_json_memo_t  *memo;           /* $ref targets compiled */
    uint32_t            n_memo;
    uint32_t            cap_memo;
    uint8_t            *settled;        /* [n_nodes], second pass */
    const cJSON        *doc;
    int                 nesting;
    size_t              path_len;
    char                path[SLORA_JSON_PATH_LEN];
    slora_err_t        *err;
} slora_json_build_t;



/* A builder holding the built-in nodes (slora_json_build_free after it,
 * whatever it returns). */
int slora_json_build_init(slora_json_build_t *b, slora_err_t *err);

/* The first pass over the schema doc, a document of its own ($ref's "#"
 * is doc): its node, or SLORA_JSON_NONE (b->err set). */
uint32_t slora_json_compile_doc(slora_json_build_t *b, const cJSON *doc);

/* The graph b built, rooted at root, packed in one block (freed with
 * slora_json_schema_free). */
slora_json_schema_t *slora_json_pack(slora_json_build_t *b, uint32_t root);

void slora_json_build_free(slora_json_build_t *b);

/* text[0..len) read as JSON (what names it in errors): at most
 * SLORA_JSON_SCHEMA_MAX bytes, no NUL in a string, a key given twice
 * its last. */
cJSON *slora_json_doc(const char *text, size_t len, const char *what,
    slora_err_t *err);

/* Makes *p hold need elements of size bytes (doubling). */
int slora_json_grow(slora_json_build_t *b, void **p, uint32_t *cap,
    uint32_t need, size_t size);

/* A new node: its index, or SLORA_JSON_NONE (b->err set). */
uint32_t slora_json_node(slora_json_build_t *b, uint32_t kind, uint32_t n,
    uint32_t first);

/* n alternatives' places at the end of alts: the first's index. */
uint32_t slora_json_alts(slora_json_build_t *b, uint32_t n);

/* The second pass: references to their targets, unions settled. */
int slora_json_settle(slora_json_build_t *b);

/* SLORA_OK where every node root reaches admits a value of finite
 * size, else an error naming the case. */
int slora_json_finite(slora_json_build_t *b, uint32_t root);

/* *id past any placeholder to the node it stands for. */
int slora_json_resolve(slora_json_build_t *b, uint32_t *id);

/* The first pass's primitives (slora_json_schema.c). Fails the build
 * with fmt, which names arg (when not NULL) then the place: returns
 * SLORA_JSON_NONE. */
uint32_t slora_json_fail(slora_json_build_t *b, const char *fmt,
    const char *arg);

/* sch's keyword, a whole number 0 to 1e9, into *out (left as is where
 * absent); SLORA_ERROR (failed) where it is another thing. */
int slora_json_count(slora_json_build_t *b, const cJSON *sch,
    const char *keyword, uint32_t *out);

/* value's compact JSON text into t (the builder's bytes). */
int slora_json_text(slora_json_build_t *b, const cJSON *value,
    slora_json_text_t *t);

/* p[0..len) as it is into t (the builder's bytes). */
int slora_json_bytes(slora_json_build_t *b, const char *p, size_t len,
    slora_json_text_t *t);

/* The pattern sch's format is held to; NULL: none, or an annotation. */
const char *slora_json_format(const cJSON *sch);

/* minimum, maximum, exclusiveMinimum, exclusiveMaximum; NULL-ended. */
extern const char  *const slora_json_bounds[];

/* enum, or const alone, filtered by the keywords beside them
 * (slora_json_literals.c): a node, or SLORA_JSON_NONE (failed). */
uint32_t slora_json_compile_literals(slora_json_build_t *b,
    const cJSON *sch);


#endif /* SLORA_JSON_BUILD_H */
