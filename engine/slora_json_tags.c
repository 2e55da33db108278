/*
 * slora_json_tags.c: vLLM's structural tags (xgrammar's), compiled into
 * the node graph the constrained-output automaton walks: text the model
 * writes freely until it writes one of the triggers, then the rest of a
 * tag's begin text, a JSON value its schema admits and its end text,
 * then freely again (slora_json.h, SLORA_JSON_FORM_TAGS).
 *
 * The one idea: a tag is a value framed by two texts, so the tags are
 * one root node (SLORA_JSON_K_FRAMED) whose alternatives are told apart
 * by their begin texts as a literal's texts are, each schema compiled
 * as a document of its own into the same graph; the triggers stay in
 * the schema for the engine, which watches the free text for them and
 * starts the automaton on the trigger's own bytes, every begin text
 * beginning with one. Without triggers the output is one tag whole;
 * with them and at_least_one, it begins with a tag whole and is free
 * after it, as with triggers alone.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_json_build.h"
#include "slora_utf8.h"


static int slora_json_tags_text(slora_json_build_t *b, const cJSON *item,
    const char *what, uint32_t k, size_t max, slora_json_text_t *t);
static int slora_json_tags_check(slora_json_build_t *b, uint32_t texts,
    uint32_t n, uint32_t triggers, uint32_t n_triggers);


slora_json_schema_t *
slora_json_tags_parse(const char *text, size_t len, slora_err_t *err)
{
    int                   rc;
    cJSON                *doc, *list, *trig, *it, *sch, *ends, *first;
    uint32_t              k, n, n_trig, texts, alts, triggers, root, id;
    slora_json_build_t    b;
    slora_json_schema_t  *s;

    doc = slora_json_doc(text, len, "the structural tag", err);
    if (doc == NULL) {
        return NULL;
    }

    list = cJSON_GetObjectItemCaseSensitive(doc, "structures");
    trig = cJSON_GetObjectItemCaseSensitive(doc, "triggers");
    ends = cJSON_GetObjectItemCaseSensitive(doc, "stop_after_first");
    first = cJSON_GetObjectItemCaseSensitive(doc, "at_least_one");
    n = (uint32_t) cJSON_GetArraySize(list);
    n_trig = (uint32_t) cJSON_GetArraySize(trig);
    s = NULL;

    if (!cJSON_IsObject(doc)) {
        slora_err_set(err, SLORA_ERROR, "the structural tag must be an "
                      "object with structures and triggers");
        goto done;
    }

    cJSON_ArrayForEach(it, doc) {
        if (strcmp(it->string, "structures") != 0
            && strcmp(it->string, "triggers") != 0
            && strcmp(it->string, "stop_after_first") != 0
            && strcmp(it->string, "at_least_one") != 0)
        {
            slora_err_set(err, SLORA_ERROR, "the structural tag has no field"
                          " \"%.64s\" (structures, triggers, "
                          "stop_after_first, at_least_one)", it->string);
            goto done;
        }
    }

    if (!cJSON_IsArray(list) || n == 0 || n > SLORA_JSON_TAGS_MAX) {
        slora_err_set(err, SLORA_ERROR, "structures must be an array of 1 "
                      "to %d tags", SLORA_JSON_TAGS_MAX);
        goto done;
    }

    if (!cJSON_IsArray(trig) || n_trig > SLORA_JSON_TRIGGERS_MAX) {
        slora_err_set(err, SLORA_ERROR, "triggers must be an array of at "
                      "most %d strings", SLORA_JSON_TRIGGERS_MAX);
        goto done;
    }

    if (ends != NULL && !cJSON_IsBool(ends)) {
        slora_err_set(err, SLORA_ERROR, "stop_after_first must be a "
                      "boolean");
        goto done;
    }

    if (first != NULL && !cJSON_IsBool(first)) {
        slora_err_set(err, SLORA_ERROR, "at_least_one must be a boolean");
        goto done;
    }

    if (slora_json_build_init(&b, err) != SLORA_OK) {
        goto built;
    }

    /* each tag's begin and end text, side by side, then the triggers */
    if (slora_json_grow(&b, (void **) &b.texts, &b.cap_texts,
                        b.n_texts + 2 * n + n_trig, sizeof(slora_json_text_t))
        != SLORA_OK)
    {
        goto built;
    }

    texts = b.n_texts;
    triggers = texts + 2 * n;
    b.n_texts += 2 * n + n_trig;
    k = 0;

    cJSON_ArrayForEach(it, list) {
        if (!cJSON_IsObject(it)) {
            slora_err_set(err, SLORA_ERROR, "structures[%u] must be an "
                          "object with begin, schema and end", k);
            goto built;
        }

        sch = cJSON_GetObjectItemCaseSensitive(it, "schema");

        if (slora_json_tags_text(&b, cJSON_GetObjectItemCaseSensitive(it,
                                         "begin"), "begin", k,
                                 SLORA_JSON_TAG_TEXT_MAX,
                                 &b.texts[texts + 2 * k]) != SLORA_OK
            || slora_json_tags_text(&b, cJSON_GetObjectItemCaseSensitive(it,
                                            "end"), "end", k,
                                    SLORA_JSON_TAG_TEXT_MAX,
                                    &b.texts[texts + 2 * k + 1]) != SLORA_OK)
        {
            goto built;
        }

        if (!cJSON_IsObject(sch) && !cJSON_IsTrue(sch)) {
            slora_err_set(err, SLORA_ERROR, "structures[%u].schema must "
                          "be an object or true", k);
            goto built;
        }

        k++;
    }

    k = 0;

    cJSON_ArrayForEach(it, trig) {
        if (slora_json_tags_text(&b, it, NULL, k, SLORA_JSON_TRIGGER_MAX,
                                 &b.texts[triggers + k]) != SLORA_OK)
        {
            goto built;
        }

        k++;
    }

    if (slora_json_tags_check(&b, texts, n, triggers, n_trig) != SLORA_OK) {
        goto built;
    }

    /* the schemas, each a document of its own, behind the root */
    alts = slora_json_alts(&b, n);
    root = slora_json_node(&b, SLORA_JSON_K_FRAMED, n, texts);

    if (alts == SLORA_JSON_NONE || root == SLORA_JSON_NONE) {
        goto built;
    }

    b.nodes[root].min = alts;
    k = 0;

    cJSON_ArrayForEach(it, list) {
        id = slora_json_compile_doc(&b,
                 cJSON_GetObjectItemCaseSensitive(it, "schema"));

        if (id == SLORA_JSON_NONE) {
            slora_err_prefix(err, "structures[%u].schema", k);
            goto built;
        }

        b.alts[alts + k++] = id;
    }

    rc = slora_json_settle(&b);

    if (rc == SLORA_OK) {
        rc = slora_json_finite(&b, root);
    }

    if (rc == SLORA_OK) {
        s = slora_json_pack(&b, root);
    }

    if (s != NULL) {
        s->triggers = triggers;
        s->n_triggers = n_trig;
        s->trigger_ends = cJSON_IsTrue(ends);
        s->tag_first = n_trig > 0 && cJSON_IsTrue(first);
    }

built:

    slora_json_build_free(&b);

done:

    cJSON_Delete(doc);

    return s;
}


/* A tag's begin or end text (what), or a trigger (what NULL), the k-th:
 * a string of 1 to max bytes of UTF-8, into t. */
static int
slora_json_tags_text(slora_json_build_t *b, const cJSON *item,
    const char *what, uint32_t k, size_t max, slora_json_text_t *t)
{
    char    name[48];
    size_t  len;

    if (what != NULL) {
        snprintf(name, sizeof(name), "structures[%u].%s", k, what);

    } else {
        snprintf(name, sizeof(name), "triggers[%u]", k);
    }

    if (!cJSON_IsString(item)) {
        return slora_err_set(b->err, SLORA_ERROR, "%s must be a string",
                             name);
    }

    len = strlen(item->valuestring);

    if (len == 0 || len > max) {
        return slora_err_set(b->err, SLORA_ERROR, "%s is %zu bytes: 1 to "
                             "%zu", name, len, max);
    }

    if (!slora_utf8_text_valid(item->valuestring, len)) {
        return slora_err_set(b->err, SLORA_ERROR, "%s is not UTF-8", name);
    }

    return slora_json_bytes(b, item->valuestring, len, t);
}


/* No begin text the start of another (the automaton takes the one whose
 * bytes came whole), and with triggers every begin text begins with one
 * (a tag comes only after one) and each begins a begin text (the text
 * after one is a tag's). */
static int
slora_json_tags_check(slora_json_build_t *b, uint32_t texts, uint32_t n,
    uint32_t triggers, uint32_t n_triggers)
{
    uint32_t                  i, k;
    const slora_json_text_t  *p, *q;

    for (i = 0; i < n; i++) {
        p = &b->texts[texts + 2 * i];

        for (k = 0; k < n; k++) {
            q = &b->texts[texts + 2 * k];

            if (k != i && p->len <= q->len
                && memcmp(b->bytes + p->off, b->bytes + q->off, p->len) == 0)
            {
                return slora_err_set(b->err, SLORA_ERROR, "structures[%u]."
                                     "begin is %s structures[%u].begin: no "
                                     "begin may be the start of another", i,
                                     p->len == q->len ? "the same as"
                                                      : "the start of", k);
            }
        }

        for (k = 0; k < n_triggers; k++) {
            q = &b->texts[triggers + k];

            if (q->len <= p->len
                && memcmp(b->bytes + p->off, b->bytes + q->off, q->len) == 0)
            {
                break;
            }
        }

        if (n_triggers > 0 && k == n_triggers) {
            return slora_err_set(b->err, SLORA_ERROR, "structures[%u].begin "
                                 "does not begin with a trigger: every "
                                 "tag's does",
                                 i);
        }
    }

    for (k = 0; k < n_triggers; k++) {
        q = &b->texts[triggers + k];

        for (i = 0; i < n; i++) {
            p = &b->texts[texts + 2 * i];

            if (q->len <= p->len
                && memcmp(b->bytes + p->off, b->bytes + q->off, q->len) == 0)
            {
                break;
            }
        }

        if (i == n) {
            return slora_err_set(b->err, SLORA_ERROR, "triggers[%u] begins "
                                 "no tag: each begins one tag's begin at "
                                 "least", k);
        }
    }

    return SLORA_OK;
}


uint32_t
slora_json_tags_triggers(const slora_json_schema_t *s)
{
    return s->n_triggers;
}


const char *
slora_json_tags_trigger(const slora_json_schema_t *s, uint32_t k,
    size_t *len)
{
    const slora_json_text_t  *t;

    t = &s->texts[s->triggers + k];
    *len = t->len;

    return s->bytes + t->off;
}


int
slora_json_tags_end_first(const slora_json_schema_t *s)
{
    return (int) s->trigger_ends;
}


int
slora_json_tags_first(const slora_json_schema_t *s)
{
    return (int) s->tag_first;
}
