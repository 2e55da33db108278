/*
 * slora_json_choice.c: answers held to other than one JSON document, as
 * schemas (slora_json.h): vLLM's guided_choice, whose answer is one of
 * some strings, its guided_regex, whose answer is a text the regular
 * expression matches whole (and guided_grammar's without recursion,
 * written out as one: slora_json_grammar.c); as they are, not as JSON.
 *
 * The one idea: the automaton already matches a node of literal texts
 * byte by byte, and a string's pattern by its automaton, and is done
 * when its root value ends, so each is a schema of one such node at the
 * root, marked raw (no blanks before it, no quotes around it). No
 * choice may be the start of another: the answer ends when its value
 * does, and "yes" could never end beside "yes please". A regex's answer
 * ends where nothing can extend the match, and may end (with the
 * model's end of text) wherever it is a match.
 */

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "slora_json_int.h"


slora_json_schema_t *
slora_json_choice_parse(const char *text, size_t len, slora_err_t *err)
{
    int                   n, i, k;
    char                 *p;
    size_t                n_bytes, a, b;
    cJSON                *doc, *it, *other;
    slora_json_text_t    *texts;
    slora_json_node_t    *root;
    slora_json_schema_t  *s;

    if (len > SLORA_JSON_SCHEMA_MAX) {
        slora_err_set(err, SLORA_ERROR, "the choices are %zu bytes as "
                      "JSON; at most %d", len, SLORA_JSON_SCHEMA_MAX);
        return NULL;
    }

    doc = cJSON_ParseWithLength(text, len);
    n = cJSON_GetArraySize(doc);

    if (!cJSON_IsArray(doc) || n == 0 || n > SLORA_JSON_CHOICES_MAX) {
        cJSON_Delete(doc);
        slora_err_set(err, SLORA_ERROR, "the choices must be an array of "
                      "1 to %d strings", SLORA_JSON_CHOICES_MAX);
        return NULL;
    }

    n_bytes = 0;
    i = 0;

    cJSON_ArrayForEach(it, doc) {
        if (!cJSON_IsString(it) || it->valuestring[0] == '\0') {
            cJSON_Delete(doc);
            slora_err_set(err, SLORA_ERROR, "choice %d is not a non-empty "
                          "string", i);
            return NULL;
        }

        a = strlen(it->valuestring);
        n_bytes += a;
        k = 0;

        cJSON_ArrayForEach(other, doc) {
            if (k == i) {
                break;
            }

            b = strlen(other->valuestring);

            if (memcmp(it->valuestring, other->valuestring,
                       a < b ? a : b) == 0)
            {
                slora_err_set(err, SLORA_ERROR, a == b
                              ? "choices %d and %d are the same text"
                              : "choice %d and choice %d: one is the "
                                "start of the other, so the shorter "
                                "could never end", k, i);
                cJSON_Delete(doc);
                return NULL;
            }

            k++;
        }

        i++;
    }

    s = slora_json_raw_schema((uint32_t) n, n_bytes, 0, &root, &texts, &p,
                              err);
    if (s == NULL) {
        cJSON_Delete(doc);
        return NULL;
    }

    root->kind = SLORA_JSON_K_LITERAL;
    root->n = (uint32_t) n;
    root->first = SLORA_JSON_TEXTS_BUILTIN;
    a = 0;
    i = 0;

    cJSON_ArrayForEach(it, doc) {
        b = strlen(it->valuestring);
        texts[i].off = (uint32_t) (sizeof(SLORA_JSON_BYTES_BUILTIN) - 1 + a);
        texts[i].len = (uint32_t) b;
        memcpy(p + a, it->valuestring, b);
        a += b;
        i++;
    }

    cJSON_Delete(doc);

    return s;
}


slora_json_schema_t *
slora_json_form_parse(int form, const char *text, size_t len,
    slora_err_t *err)
{
    switch (form) {
    case SLORA_JSON_FORM_SCHEMA:
        return slora_json_schema_parse(text, len, err);
    case SLORA_JSON_FORM_CHOICE:
        return slora_json_choice_parse(text, len, err);
    case SLORA_JSON_FORM_REGEX:
        return slora_json_regex_parse(text, len, err);
    case SLORA_JSON_FORM_GRAMMAR:
        return slora_json_grammar_parse(text, len, err);
    case SLORA_JSON_FORM_TAGS:
        return slora_json_tags_parse(text, len, err);
    default:
        slora_err_set(err, SLORA_ERROR, "no schema form %d", form);
        return NULL;
    }
}


const char *
slora_json_form_name(int form)
{
    return form == SLORA_JSON_FORM_CHOICE ? "guided_choice"
           : form == SLORA_JSON_FORM_REGEX ? "guided_regex"
           : form == SLORA_JSON_FORM_GRAMMAR ? "guided_grammar"
           : form == SLORA_JSON_FORM_TAGS ? "structural_tag"
           : "response_format's schema";
}


slora_json_schema_t *
slora_json_regex_parse(const char *text, size_t len, slora_err_t *err)
{
    return slora_json_whole_parse(text, len, SLORA_REGEX_WHOLE, "the regex",
                                  err);
}


slora_json_schema_t *
slora_json_whole_parse(const char *text, size_t len, int how,
    const char *what, slora_err_t *err)
{
    char                 *p, *at;
    slora_regex_t        *r;
    slora_json_text_t    *texts;
    slora_json_node_t    *root;
    slora_json_schema_t  *s;

    r = slora_regex_compile(text, len, 0, SLORA_REGEX_NONE, how, NULL, err);
    if (r == NULL) {
        if (how & SLORA_REGEX_LONG) {
            /* a byte of an expression the client never saw tells it
             * nothing */
            at = strstr(err->msg, " at byte ");
            if (at != NULL) {
                *at = '\0';
            }

            (void) slora_err_prefix(err, "the grammar, written out as one "
                                    "regular expression (each rule where "
                                    "it is named), is refused");
        }

        return NULL;
    }

    if (slora_regex_final(r, 0, 0)) {
        free(r);
        slora_err_set(err, SLORA_ERROR, "%s matches only the empty text",
                      what);
        return NULL;
    }

    s = slora_json_raw_schema(0, 0, r->size, &root, &texts, &p, err);
    if (s == NULL) {
        free(r);
        return NULL;
    }

    root->kind = SLORA_JSON_K_STRING;
    root->n = 1;
    memcpy((void *) s->regexes, r, r->size);

    free(r);

    return s;
}


/*
 * A raw schema's block, packed as slora_json_schema_parse packs one: the
 * built-in nodes, then its root (*root, zeroed but for max NONE); the
 * built-in texts, then n_texts more (*texts); the built-in bytes, then
 * n_bytes more (*bytes) and a NUL; a pattern's automaton of regex_size
 * bytes at s->regexes, 8-byte aligned.
 */
slora_json_schema_t *
slora_json_raw_schema(uint32_t n_texts, size_t n_bytes, size_t regex_size,
    slora_json_node_t **root, slora_json_text_t **texts, char **bytes,
    slora_err_t *err)
{
    char                 *p;
    size_t                size;
    slora_json_text_t    *t;
    slora_json_node_t    *nodes;
    slora_json_schema_t  *s;

    size = sizeof(slora_json_schema_t)
           + (SLORA_JSON_N_BUILTIN + 1) * sizeof(slora_json_node_t)
           + (SLORA_JSON_TEXTS_BUILTIN + n_texts) * sizeof(slora_json_text_t)
           + sizeof(SLORA_JSON_BYTES_BUILTIN) + n_bytes;
    size = (size + 7) & ~(size_t) 7;

    s = malloc(size + regex_size);
    if (s == NULL) {
        slora_err_set(err, SLORA_ERROR, "out of memory");
        return NULL;
    }

    nodes = (slora_json_node_t *) (s + 1);
    t = (slora_json_text_t *) (nodes + SLORA_JSON_N_BUILTIN + 1);
    p = (char *) (t + SLORA_JSON_TEXTS_BUILTIN + n_texts);

    memcpy(nodes, slora_json_builtin_nodes,
           SLORA_JSON_N_BUILTIN * sizeof(slora_json_node_t));
    memset(&nodes[SLORA_JSON_N_BUILTIN], 0, sizeof(slora_json_node_t));
    nodes[SLORA_JSON_N_BUILTIN].max = SLORA_JSON_NONE;
    memcpy(t, slora_json_builtin_texts,
           SLORA_JSON_TEXTS_BUILTIN * sizeof(slora_json_text_t));
    memcpy(p, SLORA_JSON_BYTES_BUILTIN, sizeof(SLORA_JSON_BYTES_BUILTIN) - 1);
    p[sizeof(SLORA_JSON_BYTES_BUILTIN) - 1 + n_bytes] = '\0';

    s->nodes = nodes;
    s->props = NULL;
    s->texts = t;
    s->alts = NULL;
    s->bytes = p;
    s->regexes = (const char *) s + size;
    s->n_nodes = SLORA_JSON_N_BUILTIN + 1;
    s->root = SLORA_JSON_N_BUILTIN;
    s->raw = 1;
    s->size = size + regex_size;
    s->triggers = 0;
    s->n_triggers = 0;
    s->trigger_ends = 0;
    s->tag_first = 0;

    *root = &nodes[SLORA_JSON_N_BUILTIN];
    *texts = t + SLORA_JSON_TEXTS_BUILTIN;
    *bytes = p + sizeof(SLORA_JSON_BYTES_BUILTIN) - 1;

    return s;
}
