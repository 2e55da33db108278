/*
 * slora_openai_guided.c: vLLM's guided decoding, in both of its spellings:
 * the request fields guided_json, guided_choice, guided_regex and
 * guided_grammar of its earlier releases, and the structured_outputs
 * object that replaced them ({"json": ..., "regex": ..., "choice":
 * [...], "grammar": ..., "json_object": true}, one of them). Each becomes what response_format's schema becomes
 * (slora_openai_answer.c): req->schema, its text of a slora_json_form_e,
 * compiled once here so that one this server cannot hold is refused
 * with a 400 naming the field, or req->json for JSON mode.
 *
 * The one idea: the two spellings share one reader for each kind (a
 * schema, a list of choices, a text of a regular expression or of a
 * grammar), given the name the client used, so that an error names the
 * field the client wrote ("structured_outputs.choice", or
 * "guided_choice"). What vLLM serves and this server does not (a
 * structural tag, a whitespace pattern, a left-recursive grammar:
 * slora_json_grammar.c) is refused rather than ignored, since the
 * answer would not be held to it.
 */

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
 * structural_tag (none, or two, is a 400, as vLLM's), and the options
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
                                 "regex, choice, grammar or json_object");
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
                                     "choice, grammar, json_object and "
                                     "their options)",
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
                                 "regex, choice, grammar or json_object");
    }

    first = kinds[k][0];
    param = kinds[k][1];

    if (strcmp(first, "structural_tag") == 0) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter", param,
                                 "%s is not supported by this server; "
                                 "structured_outputs' json, regex, choice, "
                                 "grammar and json_object are", param);
    }

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
                            || strcmp(first, "json_object") == 0);

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
