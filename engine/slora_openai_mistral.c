/*
 * slora_openai_mistral.c: function calling in Mistral's own formats, for
 * the models whose templates write them (slora_openai_tool_format):
 *
 *   list (Mistral 7B v0.3, NeMo)
 *        [AVAILABLE_TOOLS][{"type": "function", "function": {...}}, ...]
 *        [/AVAILABLE_TOOLS] before the last user message, each function's
 *        string fields written raw; a call message [TOOL_CALLS][{"name",
 *        "arguments", "id"}, ...]</s>; a result [TOOL_RESULTS]{"content":
 *        TEXT, "call_id": "ID"}[/TOOL_RESULTS] (v0.3 puts a space after
 *        each opening mark)
 *   ids  (Mistral Small 3.2) [AVAILABLE_TOOLS]TOOLS[/AVAILABLE_TOOLS]
 *        before the last user message; each call [TOOL_CALLS]name
 *        [CALL_ID]id[ARGS]{...}; a result [TOOL_RESULTS]id[TOOL_CONTENT]
 *        TEXT[/TOOL_RESULTS]
 *   args (Devstral, Ministral 3) the tools after the system prompt; a
 *        call message's text, then each call [TOOL_CALLS]name[ARGS]{...};
 *        a result [TOOL_RESULTS]TEXT[/TOOL_RESULTS]
 *
 * TOOLS is the tools as tojson writes them; a call's arguments are
 * parsed and written as json.dumps does (as vLLM parses them before its
 * template sees them). Ids, where the template writes them, are 9
 * characters; a longer one is cut to its last 9, as vLLM does for
 * Mistral's models (an OpenAI id "call_..." works), a shorter one is a
 * 400. The chat template (engine/slora_chat.c) writes what is made here
 * as it is, the tools' block where the template puts it.
 *
 * The marks are the format's control tokens; what is made here lists the
 * spans that came from the request (the tools, a call's name, id and
 * arguments, a result's text and id) as plain, so a mark's text a client
 * puts into any of them stays text when the prompt is encoded.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_openai_int.h"
#include "slora_pyjson.h"


#define SLORA_OPENAI_MISTRAL_ID  9      /* a call id's characters */


static int slora_openai_mistral_id(cJSON *id, const char *what, size_t i,
    const char **out, slora_openai_err_t *err);
static void slora_openai_mistral_function(cJSON *fn, slora_pyjson_text_t *t);
static void slora_openai_mistral_puts(slora_pyjson_text_t *t, const char *s);


/*
 * The tools' block, a "tools" message after the system message (the
 * chat template writes it where its template does); Devstral's and
 * Ministral 3's put it right after the system prompt
 * (SLORA_CHAT_TOOLS_FIRST).
 */
int
slora_openai_mistral_tools(cJSON *tools, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    int                    k;
    size_t                 from;
    cJSON                 *tool;
    slora_pyjson_text_t    t;
    slora_openai_plain_t   p;

    memset(&t, 0, sizeof(t));
    memset(&p, 0, sizeof(p));

    if (req->tool_format == SLORA_OPENAI_TOOLFMT_MISTRAL_LIST) {
        slora_openai_mistral_puts(&t, req->tool_spaced
                                      ? "[AVAILABLE_TOOLS] ["
                                      : "[AVAILABLE_TOOLS][");
        k = 0;

        cJSON_ArrayForEach(tool, tools) {
            slora_openai_mistral_puts(&t, k++ ? ", " : "");
            from = t.n;
            slora_openai_mistral_puts(&t, "{\"type\": \"function\", "
                                          "\"function\": {");
            slora_openai_mistral_function(
                cJSON_GetObjectItemCaseSensitive(tool, "function"), &t);
            slora_openai_mistral_puts(&t, "}}");
            slora_openai_plain(&p, from, t.n);
        }

        slora_openai_mistral_puts(&t, "]");

    } else {
        slora_openai_mistral_puts(&t, "[AVAILABLE_TOOLS]");
        from = t.n;
        slora_pyjson_write(tools, -1, slora_pyjson_append, &t);
        slora_openai_plain(&p, from, t.n);
    }

    slora_openai_mistral_puts(&t, "[/AVAILABLE_TOOLS]");

    if (req->tool_format == SLORA_OPENAI_TOOLFMT_MISTRAL_ARGS) {
        req->chat_flags |= SLORA_CHAT_TOOLS_FIRST;
    }

    if (slora_openai_insert(req, (uint32_t) slora_openai_has_system(req),
                            "tools", "", 0, err)
        != SLORA_OK)
    {
        free(t.buf);
        free(p.span);
        return SLORA_ERROR;
    }

    return slora_openai_tool_verbatim(&t, &p,
                                      &req->msgs[slora_openai_has_system(req)],
                                      req, err);
}


/*
 * An assistant message's tool_calls (checked: each a function with a
 * valid name and arguments that parse; args the array of those parsed) as its
 * template writes them, the message's content: list's and ids' drop the
 * message's text, args' write it first.
 */
int
slora_openai_mistral_calls(cJSON *calls, cJSON *args, size_t i,
    slora_chat_msg_t *cm, slora_openai_req_t *req, slora_openai_err_t *err)
{
    int                    k;
    size_t                 from;
    cJSON                 *c, *fn, *dup, *a;
    const char            *id;
    slora_pyjson_text_t    t;
    slora_openai_plain_t   p;

    memset(&t, 0, sizeof(t));
    memset(&p, 0, sizeof(p));
    k = 0;

    switch (req->tool_format) {

    case SLORA_OPENAI_TOOLFMT_MISTRAL_LIST:
        slora_openai_mistral_puts(&t, req->tool_spaced ? "[TOOL_CALLS] ["
                                                       : "[TOOL_CALLS][");
        break;

    case SLORA_OPENAI_TOOLFMT_MISTRAL_ARGS:
        slora_pyjson_append(&t, cm->content, cm->content_len);
        slora_openai_plain_msg(&p, cm, 0);
        break;

    default:
        break;
    }

    a = args->child;

    cJSON_ArrayForEach(c, calls) {
        fn = cJSON_GetObjectItemCaseSensitive(c, "function");
        id = NULL;

        if (req->tool_format != SLORA_OPENAI_TOOLFMT_MISTRAL_ARGS
            && slora_openai_mistral_id(cJSON_GetObjectItemCaseSensitive(c,
                                                                        "id"),
                                       "tool_calls[].id", i, &id, err)
               != SLORA_OK)
        {
            free(t.buf);
            free(p.span);
            return SLORA_ERROR;
        }

        if (req->tool_format == SLORA_OPENAI_TOOLFMT_MISTRAL_LIST) {
            /* the function object as tojson writes it, its arguments
             * parsed, less its '}', then the id */
            dup = cJSON_Duplicate(fn, 1);

            if (dup == NULL
                || !cJSON_ReplaceItemInObjectCaseSensitive(
                        dup, "arguments", cJSON_Duplicate(a, 1)))
            {
                cJSON_Delete(dup);
                free(t.buf);
                free(p.span);
                return slora_openai_nomem(err);
            }

            /* the call's JSON, its id in it, all the request's */
            slora_openai_mistral_puts(&t, k ? ", " : "");
            from = t.n;
            slora_pyjson_write(dup, -1, slora_pyjson_append, &t);
            cJSON_Delete(dup);

            t.n -= t.failed ? 0 : 1;
            slora_openai_mistral_puts(&t, ", \"id\": \"");
            slora_openai_mistral_puts(&t, id);
            slora_openai_mistral_puts(&t, "\"}");
            slora_openai_plain(&p, from, t.n);

        } else {
            slora_openai_mistral_puts(&t, "[TOOL_CALLS]");
            from = t.n;
            slora_openai_mistral_puts(&t, cJSON_GetObjectItemCaseSensitive(
                                              fn, "name")->valuestring);
            slora_openai_plain(&p, from, t.n);

            if (id != NULL) {
                slora_openai_mistral_puts(&t, "[CALL_ID]");
                from = t.n;
                slora_openai_mistral_puts(&t, id);
                slora_openai_plain(&p, from, t.n);
            }

            slora_openai_mistral_puts(&t, "[ARGS]");
            from = t.n;
            slora_pyjson_write(a, -1, slora_pyjson_append, &t);
            slora_openai_plain(&p, from, t.n);
        }

        a = a->next;
        k++;
    }

    if (req->tool_format == SLORA_OPENAI_TOOLFMT_MISTRAL_LIST) {
        slora_openai_mistral_puts(&t, "]");
    }

    cm->calls = 1;

    return slora_openai_tool_verbatim(&t, &p, cm, req, err);
}


/* A tool message (m, the client's i-th) as its template writes it, its
 * content cm's. */
int
slora_openai_mistral_result(cJSON *m, size_t i, slora_chat_msg_t *cm,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    size_t                 from;
    const char            *id;
    slora_pyjson_text_t    t;
    slora_openai_plain_t   p;

    id = NULL;

    if (req->tool_format != SLORA_OPENAI_TOOLFMT_MISTRAL_ARGS
        && slora_openai_mistral_id(cJSON_GetObjectItemCaseSensitive(
                                       m, "tool_call_id"),
                                   "tool_call_id", i, &id, err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    memset(&t, 0, sizeof(t));
    memset(&p, 0, sizeof(p));

    switch (req->tool_format) {

    case SLORA_OPENAI_TOOLFMT_MISTRAL_LIST:
        slora_openai_mistral_puts(&t, req->tool_spaced
                                      ? "[TOOL_RESULTS] {\"content\": "
                                      : "[TOOL_RESULTS]{\"content\": ");
        slora_openai_plain_msg(&p, cm, t.n);
        slora_pyjson_append(&t, cm->content, cm->content_len);
        slora_openai_mistral_puts(&t, ", \"call_id\": \"");
        from = t.n;
        slora_openai_mistral_puts(&t, id);
        slora_openai_plain(&p, from, t.n);
        slora_openai_mistral_puts(&t, "\"}");
        break;

    case SLORA_OPENAI_TOOLFMT_MISTRAL_IDS:
        slora_openai_mistral_puts(&t, "[TOOL_RESULTS]");
        from = t.n;
        slora_openai_mistral_puts(&t, id);
        slora_openai_plain(&p, from, t.n);
        slora_openai_mistral_puts(&t, "[TOOL_CONTENT]");
        slora_openai_plain_msg(&p, cm, t.n);
        slora_pyjson_append(&t, cm->content, cm->content_len);
        break;

    default:
        slora_openai_mistral_puts(&t, "[TOOL_RESULTS]");
        slora_openai_plain_msg(&p, cm, t.n);
        slora_pyjson_append(&t, cm->content, cm->content_len);
        break;
    }

    slora_openai_mistral_puts(&t, "[/TOOL_RESULTS]");

    return slora_openai_tool_verbatim(&t, &p, cm, req, err);
}


/* A call's id as the template takes it: its last 9 characters (code
 * points, as Python's [-9:] counts them, not bytes: a cut inside a
 * character would leave invalid UTF-8 in the prompt), in the request's
 * arena; what names the field in the 400 for one that is missing or
 * shorter. */
static int
slora_openai_mistral_id(cJSON *id, const char *what, size_t i,
    const char **out, slora_openai_err_t *err)
{
    int          k;
    const char  *s;
    size_t       n;

    n = cJSON_IsString(id) ? strlen(id->valuestring) : 0;
    s = n > 0 ? id->valuestring + n : NULL;

    /* back over 9 characters: each begins where a byte is no
     * continuation byte (the string is valid UTF-8) */
    for (k = 0; s != NULL && k < SLORA_OPENAI_MISTRAL_ID; k++) {
        if (s == id->valuestring) {
            break;
        }

        do {
            s--;
        } while (s > id->valuestring && ((unsigned char) *s & 0xc0) == 0x80);
    }

    if (k < SLORA_OPENAI_MISTRAL_ID) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "messages", "messages[%zu].%s must be a "
                                 "string of at least %d characters: this "
                                 "model's chat template (Mistral's tool "
                                 "format) writes the last %d of each call's "
                                 "id", i, what, SLORA_OPENAI_MISTRAL_ID,
                                 SLORA_OPENAI_MISTRAL_ID);
    }

    *out = s;

    return SLORA_OK;
}


/* A function's fields as v0.3's and NeMo's templates write them: each
 * but "return" as '"key": ', then a string's text raw in quotes, other
 * values as tojson writes them, ", " between. */
static void
slora_openai_mistral_function(cJSON *fn, slora_pyjson_text_t *t)
{
    int     k;
    cJSON  *it;

    k = 0;

    cJSON_ArrayForEach(it, fn) {
        if (strcmp(it->string, "return") == 0) {
            continue;
        }

        slora_openai_mistral_puts(t, k++ ? ", \"" : "\"");
        slora_openai_mistral_puts(t, it->string);
        slora_openai_mistral_puts(t, "\": ");

        if (cJSON_IsString(it)) {
            slora_openai_mistral_puts(t, "\"");
            slora_openai_mistral_puts(t, it->valuestring);
            slora_openai_mistral_puts(t, "\"");

        } else {
            slora_pyjson_write(it, -1, slora_pyjson_append, t);
        }
    }
}


static void
slora_openai_mistral_puts(slora_pyjson_text_t *t, const char *s)
{
    slora_pyjson_append(t, s, strlen(s));
}
