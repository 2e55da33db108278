/*
 * slora_openai_guided.c: vLLM's guided decoding, in both of its spellings:
 * the request fields guided_json, guided_choice, guided_regex and
 * guided_grammar of its earlier releases, and the structured_outputs
 * object that replaced them ({"json": ..., "regex": ..., "choice":
 * [...], "grammar": ..., "json_object": true, "structural_tag": ...},
 * one of them). Each becomes what response_format's schema becomes
 * (slora_openai_answer.c): req->schema, its text of a slora_json_form_e,
 * compiled once here so that one this server cannot hold is refused
 * with a 400 naming the field, or req->json for JSON mode.
 *
 * The one idea: the two spellings share one reader for each kind (a
 * schema, a list of choices, a text of a regular expression or of a
 * grammar), given the name the client used, so that an error names the
 * field the client wrote ("structured_outputs.choice", or
 * "guided_choice"). A structural tag, in either of its shapes (vLLM's
 * earlier list of structures and triggers, or xgrammar's format of
 * triggered tags), becomes the one shape slora_json_tags_parse takes.
 * What vLLM serves and this server does not (a whitespace pattern, a
 * left-recursive grammar: slora_json_grammar.c, a tag format other than
 * a tag or triggered tags of JSON schemas) is refused rather than
 * ignored, since the answer would not be held to it.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_json.h"
#include "slora_openai_int.h"


static int slora_openai_structured(cJSON *so, slora_openai_req_t *req,
    slora_openai_err_t *err);
static int slora_openai_guided_json(cJSON *item, const char *param,
    slora_openai_req_t *req, slora_openai_err_t *err);
static int slora_openai_choice(cJSON *item, const char *param,
    slora_openai_req_t *req, slora_openai_err_t *err);
static int slora_openai_text_form(cJSON *item, const char *param, int form,
    slora_openai_req_t *req, slora_openai_err_t *err);
static int slora_openai_format_tags(cJSON *format, cJSON *out,
    const char *param, slora_openai_err_t *err);
static int slora_openai_tag_content(cJSON *tag, cJSON *out,
    const char *param, slora_openai_err_t *err);
static int slora_openai_tag_put(cJSON *out, const char *name,
    const cJSON *item, const char *param, slora_openai_err_t *err);
static void slora_openai_format_names(slora_openai_err_t *err, int one);


/*
 * guided_json (a schema, as an object or as its text) is response_format
 * json_schema's twin; guided_choice (an array of strings) makes the
 * answer one of them, as they are; guided_regex (a string) a text the
 * regular expression matches whole; guided_grammar (a string) a text of
 * the grammar; guided_whitespace_pattern is refused. One of them at
 * most, and not beside structured_outputs.
 */
int
slora_openai_guided(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    cJSON        *item, *so;
    size_t        i;
    const char   *first;

    static const char  *guided[] = {
        "guided_json", "guided_choice", "guided_regex", "guided_grammar"
    };

    item = cJSON_GetObjectItemCaseSensitive(root,
                                            "guided_whitespace_pattern");

    if (item != NULL && !cJSON_IsNull(item)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter",
                                 "guided_whitespace_pattern",
                                 "guided_whitespace_pattern is not "
                                 "supported by this server; guided_json, "
                                 "guided_choice, guided_regex, "
                                 "guided_grammar, structured_outputs and "
                                 "response_format are");
    }

    so = cJSON_GetObjectItemCaseSensitive(root, "structured_outputs");
    if (cJSON_IsNull(so)) {
        so = NULL;
    }

    first = so != NULL ? "structured_outputs" : NULL;

    for (i = 0; i < sizeof(guided) / sizeof(guided[0]); i++) {
        item = cJSON_GetObjectItemCaseSensitive(root, guided[i]);

        if (item == NULL || cJSON_IsNull(item)) {
            continue;
        }

        if (first != NULL) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", guided[i],
                                     "%s and %s: give one", guided[i],
                                     first);
        }

        first = guided[i];
    }

    if (so != NULL) {
        return slora_openai_structured(so, req, err);
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "guided_choice");

    if (item != NULL && !cJSON_IsNull(item)) {
        return slora_openai_choice(item, "guided_choice", req, err);
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "guided_regex");

    if (item != NULL && !cJSON_IsNull(item)) {
        return slora_openai_text_form(item, "guided_regex",
                                      SLORA_JSON_FORM_REGEX, req, err);
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "guided_grammar");

    if (item != NULL && !cJSON_IsNull(item)) {
        return slora_openai_text_form(item, "guided_grammar",
                                      SLORA_JSON_FORM_GRAMMAR, req, err);
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "guided_json");

    if (item == NULL || cJSON_IsNull(item)) {
        return SLORA_OK;
    }

    return slora_openai_guided_json(item, "guided_json", req, err);
}


/*
 * structured_outputs, as vLLM's StructuredOutputsParams reads it: one
 * constraint of json, regex, choice, grammar, json_object and
 * structural_tag (none, or two, is a 400, as vLLM's; disable_any_whitespace
 * holds a tag's JSON too), and the options
 * disable_any_whitespace (the JSON without a blank between its
 * tokens), disable_additional_properties (vLLM's closes the objects
 * that declare properties and say nothing of additionalProperties: here
 * such an object admits only its declared properties anyway),
 * whitespace_pattern (refused) and disable_fallback (this server has
 * no backend to fall back to: nothing to disable). A field it does not
 * know is a 400, as a typo would otherwise go unseen.
 */
static int
slora_openai_structured(cJSON *so, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    cJSON        *it, *kind;
    size_t        i, k;
    const char   *first, *param;

    /* each with its name for an error's param, which must outlive us */
    static const char  *kinds[][2] = {
        { "json", "structured_outputs.json" },
        { "regex", "structured_outputs.regex" },
        { "choice", "structured_outputs.choice" },
        { "grammar", "structured_outputs.grammar" },
        { "json_object", "structured_outputs.json_object" },
        { "structural_tag", "structured_outputs.structural_tag" }
    };

    static const char  *options[] = {
        "disable_any_whitespace", "disable_additional_properties",
        "whitespace_pattern", "disable_fallback"
    };

    if (!cJSON_IsObject(so)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "structured_outputs", "structured_outputs "
                                 "must be an object holding one of json, "
                                 "regex, choice, grammar, json_object or "
                                 "structural_tag");
    }

    cJSON_ArrayForEach(it, so) {
        for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
            if (strcmp(it->string, kinds[i][0]) == 0) {
                break;
            }
        }

        if (i < sizeof(kinds) / sizeof(kinds[0])) {
            continue;
        }

        for (i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
            if (strcmp(it->string, options[i]) == 0) {
                break;
            }
        }

        if (i == sizeof(options) / sizeof(options[0])) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "structured_outputs",
                                     "structured_outputs has no field "
                                     "\"%.*s\" (it takes json, regex, "
                                     "choice, grammar, json_object, "
                                     "structural_tag and their options)",
                                     slora_utf8_cut(it->string, 64),
                                     it->string);
        }

        /* the options but whitespace_pattern (a string) are booleans */
        if (strcmp(options[i], "whitespace_pattern") != 0
            && !cJSON_IsNull(it) && !cJSON_IsBool(it))
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", "structured_outputs",
                                     "structured_outputs.%s must be a "
                                     "boolean", options[i]);
        }
    }

    kind = NULL;
    k = 0;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        it = cJSON_GetObjectItemCaseSensitive(so, kinds[i][0]);

        if (it == NULL || cJSON_IsNull(it)) {
            continue;
        }

        if (kind != NULL) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", kinds[i][1],
                                     "%s and %s: give one", kinds[i][1],
                                     kinds[k][1]);
        }

        k = i;
        kind = it;
    }

    if (kind == NULL) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "missing_required_parameter",
                                 "structured_outputs", "structured_outputs "
                                 "holds no constraint: give one of json, "
                                 "regex, choice, grammar, json_object or "
                                 "structural_tag");
    }

    first = kinds[k][0];
    param = kinds[k][1];

    it = cJSON_GetObjectItemCaseSensitive(so, "whitespace_pattern");

    if (it != NULL && !cJSON_IsNull(it)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter",
                                 "structured_outputs.whitespace_pattern",
                                 "structured_outputs.whitespace_pattern is "
                                 "not supported by this server: JSON is "
                                 "written with no blank, one, or a line "
                                 "break and an indent between its tokens");
    }

    /* a choice's, a regex's or a grammar's text has no blanks but its
     * own */
    req->json_compact = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
                                         so, "disable_any_whitespace"))
                        && (strcmp(first, "json") == 0
                            || strcmp(first, "json_object") == 0
                            || strcmp(first, "structural_tag") == 0);

    if (strcmp(first, "choice") == 0) {
        return slora_openai_choice(kind, param, req, err);
    }

    if (strcmp(first, "regex") == 0) {
        return slora_openai_text_form(kind, param, SLORA_JSON_FORM_REGEX,
                                      req, err);
    }

    if (strcmp(first, "grammar") == 0) {
        return slora_openai_text_form(kind, param, SLORA_JSON_FORM_GRAMMAR,
                                      req, err);
    }

    if (strcmp(first, "json") == 0) {
        return slora_openai_guided_json(kind, param, req, err);
    }

    if (strcmp(first, "structural_tag") == 0) {
        return slora_openai_structural_tag(kind, param, req, err);
    }

    /* json_object */

    if (!cJSON_IsTrue(kind)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 cJSON_IsBool(kind) ? "invalid_value"
                                                    : "invalid_type",
                                 param, "%s must be true (JSON mode: the "
                                 "answer is one JSON object)", param);
    }

    if (req->json || req->schema.data != NULL) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 param, "%s and a JSON response_format: "
                                 "give one", param);
    }

    req->json = 1;

    return SLORA_OK;
}


/* A schema, as an object or as its JSON text. */
static int
slora_openai_guided_json(cJSON *item, const char *param,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    int     rc;
    cJSON  *doc;

    if (req->json || req->schema.data != NULL) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 param, "%s and a JSON response_format: "
                                 "give one", param);
    }

    if (cJSON_IsObject(item)) {
        return slora_openai_schema(item, param, req, err);
    }

    if (cJSON_IsString(item) && slora_json_holds_nul(item->valuestring)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 param, "%s's text holds a NUL character "
                                 "(\\u0000) in a string: strings may not "
                                 "hold one", param);
    }

    doc = cJSON_IsString(item) ? cJSON_Parse(item->valuestring) : NULL;

    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 param, "%s must be a schema: an object, or"
                                 " its JSON text", param);
    }

    rc = slora_openai_schema(doc, param, req, err);
    cJSON_Delete(doc);

    return rc;
}


/* choices: their strings, checked as a client's strings are (UTF-8),
 * then compiled and kept as a schema is (none empty, none the start of
 * another). */
static int
slora_openai_choice(cJSON *item, const char *param, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    cJSON               *it;
    slora_openai_str_t   s;

    if (req->json || req->schema.data != NULL) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 param, "%s and a JSON response_format: "
                                 "give one", param);
    }

    if (!cJSON_IsArray(item)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 param, "%s must be an array of strings",
                                 param);
    }

    cJSON_ArrayForEach(it, item) {
        if (!cJSON_IsString(it)) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", param, "%s must be an "
                                     "array of strings", param);
        }

        if (slora_openai_string(it, param, &s, req, err) != SLORA_OK) {
            return SLORA_ERROR;
        }
    }

    req->schema_form = SLORA_JSON_FORM_CHOICE;

    return slora_openai_schema(item, param, req, err);
}


/* A regular expression or a grammar (form): a string, checked as a
 * client's strings are (UTF-8), then compiled and kept as a schema's
 * text is. */
static int
slora_openai_text_form(cJSON *item, const char *param, int form,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    slora_openai_str_t  s;

    if (req->json || req->schema.data != NULL) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 param, "%s and a JSON response_format: "
                                 "give one", param);
    }

    if (slora_openai_string(item, param, &s, req, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    req->schema_form = form;

    return slora_openai_schema_text(s.data, s.len, param, req, err);
}


/*
 * A structural tag (structured_outputs.structural_tag, its JSON text as
 * vLLM takes it or the object, or response_format of type
 * "structural_tag"), in either shape: {"structures": [{"begin",
 * "schema", "end"}...], "triggers": [...]}, vLLM's earlier, or
 * {"format": F}, xgrammar's, where F is one tag {"type": "tag",
 * "begin", "content": {"type": "json_schema", "json_schema"}, "end"}
 * (the answer that tag) or {"type": "triggered_tags", "triggers",
 * "tags": [tag...], "at_least_one", "stop_after_first"}. Made
 * the one shape the engine takes (slora_json_tags_parse), compiled
 * here once so that one it cannot hold is a 400 now.
 */
int
slora_openai_structural_tag(cJSON *item, const char *param,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    int          rc;
    char        *text;
    cJSON       *doc, *tag, *type, *format, *out, *list, *trig, *it, *one;

    if (req->json || req->schema.data != NULL) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 param, "%s and a JSON response_format: "
                                 "give one", param);
    }

    doc = NULL;

    if (cJSON_IsString(item)) {
        if (slora_json_holds_nul(item->valuestring)) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", param, "%s's text "
                                     "holds a NUL character (\\u0000)",
                                     param);
        }

        /* read as json.loads reads it: a key named twice, its last */
        doc = cJSON_Parse(item->valuestring);
        tag = doc;

        if (doc != NULL && slora_pyjson_dict(doc) != 0) {
            cJSON_Delete(doc);
            return slora_openai_nomem(err);
        }

    } else {
        tag = item;
    }

    if (!cJSON_IsObject(tag)) {
        cJSON_Delete(doc);
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 param, "%s must be an object, or its JSON "
                                 "text: {\"structures\": [...], "
                                 "\"triggers\": [...]} or {\"format\": "
                                 "...}", param);
    }

    type = cJSON_GetObjectItemCaseSensitive(tag, "type");
    format = cJSON_GetObjectItemCaseSensitive(tag, "format");
    out = cJSON_CreateObject();
    rc = SLORA_ERROR;

    if (out == NULL) {
        rc = slora_openai_nomem(err);
        goto done;
    }

    if (type != NULL && !(cJSON_IsString(type)
                          && strcmp(type->valuestring, "structural_tag")
                             == 0))
    {
        slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value", param,
                          "%s's type must be \"structural_tag\"", param);
        goto done;
    }

    if (format != NULL) {
        type = cJSON_GetObjectItemCaseSensitive(format, "type");

        if (!cJSON_IsObject(format) || !cJSON_IsString(type)) {
            slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                              param, "%s's format must be an object with a "
                              "type", param);
            goto done;
        }

        if (strcmp(type->valuestring, "tag") == 0) {
            /* the answer is this one tag */
            list = cJSON_AddArrayToObject(out, "structures");
            trig = cJSON_AddArrayToObject(out, "triggers");
            one = cJSON_CreateObject();

            if (list == NULL || trig == NULL || one == NULL) {
                cJSON_Delete(one);
                rc = slora_openai_nomem(err);
                goto done;
            }

            cJSON_AddItemToArray(list, one);

            if (slora_openai_tag_content(format, one, param, err)
                != SLORA_OK)
            {
                goto done;
            }

        } else if (strcmp(type->valuestring, "triggered_tags") == 0) {
            if (slora_openai_format_tags(format, out, param, err)
                != SLORA_OK)
            {
                goto done;
            }

        } else {
            slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                              "unsupported_parameter", param, "%s's format "
                              "type \"%.*s\" is not supported by this "
                              "server: \"tag\" and \"triggered_tags\", "
                              "of JSON schemas, are", param,
                              slora_utf8_cut(type->valuestring, 64),
                              type->valuestring);
            goto done;
        }

    } else {
        /* vLLM's earlier shape, as it is */
        list = cJSON_GetObjectItemCaseSensitive(tag, "structures");
        trig = cJSON_GetObjectItemCaseSensitive(tag, "triggers");

        if (!cJSON_IsArray(list) || !cJSON_IsArray(trig)) {
            slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                              "missing_required_parameter", param, "%s must "
                              "hold structures and triggers (arrays), or a "
                              "format", param);
            goto done;
        }

        it = cJSON_Duplicate(list, 1);

        if (it == NULL || !cJSON_AddItemToObject(out, "structures", it)) {
            cJSON_Delete(it);
            rc = slora_openai_nomem(err);
            goto done;
        }

        it = cJSON_Duplicate(trig, 1);

        if (it == NULL || !cJSON_AddItemToObject(out, "triggers", it)) {
            cJSON_Delete(it);
            rc = slora_openai_nomem(err);
            goto done;
        }

        it = cJSON_GetObjectItemCaseSensitive(tag, "stop_after_first");

        if (it != NULL && !cJSON_IsBool(it)) {
            slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                              param, "%s's stop_after_first must be a "
                              "boolean", param);
            goto done;
        }

        if (cJSON_IsTrue(it)
            && cJSON_AddTrueToObject(out, "stop_after_first") == NULL)
        {
            rc = slora_openai_nomem(err);
            goto done;
        }
    }

    trig = cJSON_GetObjectItemCaseSensitive(out, "triggers");

    if (format == NULL || strcmp(type->valuestring, "tag") != 0) {
        if (cJSON_GetArraySize(trig) == 0) {
            slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                              param, "%s's triggers must hold 1 to %d "
                              "strings", param, SLORA_JSON_TRIGGERS_MAX);
            goto done;
        }
    }

    text = cJSON_PrintUnformatted(out);
    if (text == NULL) {
        rc = slora_openai_nomem(err);
        goto done;
    }

    req->schema_form = SLORA_JSON_FORM_TAGS;
    req->tags_triggered = cJSON_GetArraySize(trig) > 0;
    rc = slora_openai_schema_text(text, strlen(text), param, req, err);
    free(text);

    if (rc != SLORA_OK && format != NULL) {
        slora_openai_format_names(err, !req->tags_triggered);
    }

done:

    cJSON_Delete(out);
    cJSON_Delete(doc);

    return rc;
}


/* xgrammar's triggered tags into out's structures, triggers,
 * stop_after_first and at_least_one (the answer begins with a tag). */
static int
slora_openai_format_tags(cJSON *format, cJSON *out, const char *param,
    slora_openai_err_t *err)
{
    cJSON  *tags, *trig, *least, *first, *list, *it, *one, *copy;

    tags = cJSON_GetObjectItemCaseSensitive(format, "tags");
    trig = cJSON_GetObjectItemCaseSensitive(format, "triggers");
    least = cJSON_GetObjectItemCaseSensitive(format, "at_least_one");
    first = cJSON_GetObjectItemCaseSensitive(format, "stop_after_first");

    if (!cJSON_IsArray(tags) || !cJSON_IsArray(trig)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "missing_required_parameter", param,
                                 "%s's triggered_tags must hold tags and "
                                 "triggers (arrays)", param);
    }

    if ((least != NULL && !cJSON_IsBool(least))
        || (first != NULL && !cJSON_IsBool(first)))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 param, "%s's at_least_one and "
                                 "stop_after_first must be booleans", param);
    }

    list = cJSON_AddArrayToObject(out, "structures");

    if (list == NULL) {
        return slora_openai_nomem(err);
    }

    copy = cJSON_Duplicate(trig, 1);

    if (copy == NULL || !cJSON_AddItemToObject(out, "triggers", copy)) {
        cJSON_Delete(copy);
        return slora_openai_nomem(err);
    }

    if (cJSON_AddBoolToObject(out, "stop_after_first", cJSON_IsTrue(first))
        == NULL
        || (cJSON_IsTrue(least)
            && cJSON_AddTrueToObject(out, "at_least_one") == NULL))
    {
        return slora_openai_nomem(err);
    }

    cJSON_ArrayForEach(it, tags) {
        one = cJSON_CreateObject();

        if (one == NULL || !cJSON_AddItemToArray(list, one)) {
            cJSON_Delete(one);
            return slora_openai_nomem(err);
        }

        if (slora_openai_tag_content(it, one, param, err) != SLORA_OK) {
            return SLORA_ERROR;
        }
    }

    return SLORA_OK;
}


/*
 * An error about tags made from xgrammar's format, named as the client
 * wrote them: structures[k] is format.tags[k] (format, where it is one
 * tag), a structure's schema its content.json_schema, and triggers[k]
 * format.triggers[k].
 */
static void
slora_openai_format_names(slora_openai_err_t *err, int one)
{
    int          k, n;
    char         out[SLORA_OPENAI_MSG_LEN];
    size_t       o;
    const char  *p, *schema;

    o = 0;
    p = err->msg;

    while (*p != '\0' && o < sizeof(out) - 1) {
        n = 0;

        if (strncmp(p, "structures[", 11) == 0
            && sscanf(p + 11, "%d]%n", &k, &n) == 1 && n > 0)
        {
            p += 11 + n;
            schema = "";

            if (strncmp(p, ".schema", 7) == 0) {
                p += 7;
                schema = ".content.json_schema";
            }

            if (one) {
                o += snprintf(out + o, sizeof(out) - o, "format%s", schema);

            } else {
                o += snprintf(out + o, sizeof(out) - o, "format.tags[%d]%s",
                              k, schema);
            }

            o = o < sizeof(out) - 1 ? o : sizeof(out) - 1;
            continue;
        }

        if (strncmp(p, "triggers[", 9) == 0) {
            o += snprintf(out + o, sizeof(out) - o, "format.");
            o = o < sizeof(out) - 1 ? o : sizeof(out) - 1;

            if (o == sizeof(out) - 1) {
                break;
            }
        }

        out[o++] = *p++;
    }

    memcpy(err->msg, out, o);
    err->msg[o] = '\0';
    err->len = o;
}


/* xgrammar's tag {"type": "tag", "begin", "content": {"type":
 * "json_schema", "json_schema": S}, "end"} into out as {"begin", "schema":
 * S, "end"}: a content other than a JSON schema is refused. */
static int
slora_openai_tag_content(cJSON *tag, cJSON *out, const char *param,
    slora_openai_err_t *err)
{
    cJSON  *type, *content, *kind, *sch;

    type = cJSON_GetObjectItemCaseSensitive(tag, "type");
    content = cJSON_GetObjectItemCaseSensitive(tag, "content");
    kind = cJSON_GetObjectItemCaseSensitive(content, "type");
    sch = cJSON_GetObjectItemCaseSensitive(content, "json_schema");

    if (!cJSON_IsObject(tag)
        || (type != NULL && !(cJSON_IsString(type)
                              && strcmp(type->valuestring, "tag") == 0)))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 param, "%s: each tag must be an object of "
                                 "type \"tag\" with begin, content and "
                                 "end", param);
    }

    if (!cJSON_IsObject(content) || !cJSON_IsString(kind)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 param, "%s: a tag's content must be an "
                                 "object with a type", param);
    }

    if (strcmp(kind->valuestring, "json_schema") != 0) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter", param, "%s: a "
                                 "tag's content of type \"%.*s\" is not "
                                 "supported by this server: \"json_schema\""
                                 " is", param,
                                 slora_utf8_cut(kind->valuestring, 64),
                                 kind->valuestring);
    }

    if (!cJSON_IsObject(sch) && !cJSON_IsBool(sch)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 param, "%s: a tag's json_schema must be a "
                                 "schema (an object)", param);
    }

    if (slora_openai_tag_put(out, "begin",
                             cJSON_GetObjectItemCaseSensitive(tag, "begin"),
                             param, err) != SLORA_OK
        || slora_openai_tag_put(out, "schema", sch, param, err) != SLORA_OK
        || slora_openai_tag_put(out, "end",
                                cJSON_GetObjectItemCaseSensitive(tag, "end"),
                                param, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    return SLORA_OK;
}


/* A copy of a tag's item as out's field name; a tag without it is a 400
 * naming what it lacks. */
static int
slora_openai_tag_put(cJSON *out, const char *name, const cJSON *item,
    const char *param, slora_openai_err_t *err)
{
    cJSON  *copy;

    if (item == NULL) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "missing_required_parameter", param,
                                 "%s: a tag has no %s", param, name);
    }

    copy = cJSON_Duplicate(item, 1);

    if (copy == NULL || !cJSON_AddItemToObject(out, name, copy)) {
        cJSON_Delete(copy);
        return slora_openai_nomem(err);
    }

    return SLORA_OK;
}
