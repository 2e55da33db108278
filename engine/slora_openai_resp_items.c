/*
 * slora_openai_resp_items.c: a Responses API request's input items (and
 * a conversation's items, which are the same) as the chat messages they
 * mean: messages (a string or text parts; an assistant's refusal parts),
 * function_call items joining the assistant message before them, and
 * function_call_output items as tool messages; an earlier answer's
 * reasoning item as the reasoning_content of the assistant message or
 * call after it (vLLM's field, which Qwen3's template writes back in a
 * tool-calling loop); where none follows, passed over in a request's
 * input, kept in a conversation as an assistant message of that
 * reasoning alone (listed, and in no prompt: slora_openai_conv_live).
 *
 * The one idea: each item is checked in its own terms and named by its
 * place (input[i] or items[i]) where it is wrong, before the chat
 * parser sees the messages it became: a call joined to a message has no
 * place of its own there. So is an output that answers no call before
 * it (a Responses input's, where all it follows is at hand), as OpenAI
 * refuses one: the call ids seen are kept in a set, so that an output
 * finds its call without a walk through a long conversation.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "slora_json.h"
#include "slora_names.h"
#include "slora_openai_int.h"
#include "slora_tool_scan.h"


static int slora_openai_resp_message(cJSON *it, const char *param,
    size_t i, cJSON *msgs, slora_openai_err_t *err);
static cJSON *slora_openai_resp_text(cJSON *content, const char *param,
    size_t i, const char *what, int refusal, slora_openai_err_t *err);
static int slora_openai_resp_call(cJSON *it, const char *param, size_t i,
    cJSON *msgs, cJSON **last, slora_openai_err_t *err);
static int slora_openai_resp_output(cJSON *it, const char *param, size_t i,
    cJSON *msgs, slora_openai_err_t *err);
static cJSON *slora_openai_resp_parts(cJSON *it, const char **key,
    const char **kind);
static int slora_openai_resp_reasoning(cJSON *it, const char *param,
    size_t i, slora_openai_err_t *err);
static int slora_openai_resp_reason_to(cJSON *m, cJSON *from, cJSON *to,
    slora_openai_err_t *err);
static int slora_openai_resp_reason_text(cJSON *from, cJSON *to,
    cJSON **text, slora_openai_err_t *err);
static int slora_openai_resp_ends(cJSON *it, cJSON *type);
static int slora_openai_resp_alone(cJSON *msgs, cJSON *from, cJSON *to,
    int *kept, slora_openai_err_t *err);
static int slora_openai_resp_ids_init(slora_names_t *ids, cJSON *msgs,
    cJSON *items, slora_openai_err_t *err);
static void slora_openai_resp_ids_add(slora_names_t *ids, cJSON *id);
static int slora_openai_resp_answers(cJSON *it, const char *param,
    size_t i, slora_names_t *ids, slora_openai_err_t *err);


/*
 * Responses API items (messages, function calls and their outputs; an
 * earlier answer's reasoning, the reasoning_content of the assistant
 * message or call after it) appended to msgs as the chat messages they
 * mean; errors name param ("input", a conversation's "items"). input:
 * a Responses request's input, msgs its prompt's messages as they are,
 * so each function_call_output answers a call before it, in msgs (all
 * the items follow) or among the items, else a 400 naming it, and a
 * reasoning item that nothing of the assistant's follows is passed over
 * (a message of its own would be an empty assistant turn); else a
 * conversation's items, to store, which a prompt reads through
 * slora_openai_conv_live: an output's call not looked for (the
 * conversation is not at hand), and such reasoning kept as an assistant
 * message of it alone, content null, which the items list and that
 * leaves out. made (NULL: not wanted; else room for an int an item):
 * the item each message appended was begun by, *n of them.
 */
int
slora_openai_resp_items(cJSON *items, const char *param, cJSON *msgs,
    int input, int *made, int *n, slora_openai_err_t *err)
{
    int             added, kept;
    size_t          i, reason_i;
    cJSON          *it, *m, *type, *last, *tail, *reason;
    slora_names_t   ids;

    i = 0;
    last = NULL;
    tail = NULL;

    /* the call ids seen, where outputs are paired with them */
    ids.slots = NULL;

    /* the first of the reasoning items before this one (item reason_i),
     * their text not yet given to the assistant's item after them (every
     * other item gives it or drops it, so they are all the items from it
     * on) */
    reason = NULL;
    reason_i = 0;

    if (input && slora_openai_resp_ids_init(&ids, msgs, items, err)
                  != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    cJSON_ArrayForEach(it, items) {
        /* a call joins the assistant message before it, if any */
        added = 1;

        if (!cJSON_IsObject(it)) {
            slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                              param, "%s[%zu] must be an object", param, i);
            goto failed;
        }

        type = cJSON_GetObjectItemCaseSensitive(it, "type");

        /* reasoning that this item, not the assistant's, ends: a
         * conversation's is kept as a message of its own, before it */
        if (reason != NULL && !input && slora_openai_resp_ends(it, type)) {
            if (slora_openai_resp_alone(msgs, reason, it, &kept, err)
                != SLORA_OK)
            {
                goto failed;
            }

            if (made != NULL && kept) {
                made[(*n)++] = (int) reason_i;
            }

            reason = NULL;
        }

        if (type == NULL || slora_openai_resp_is(type, "message")) {
            if (slora_openai_resp_message(it, param, i, msgs, err)
                != SLORA_OK)
            {
                goto failed;
            }

            /* the message it made, at the list's end: walked to from
             * the end seen before (an index walks from the start, and
             * msgs may begin with a long conversation) */
            for (m = tail != NULL ? tail : msgs->child;
                 m != NULL && m->next != NULL;
                 m = m->next)
            {
                /* void */
            }

            tail = m;
            last = slora_openai_resp_is(cJSON_GetObjectItemCaseSensitive(
                                            m, "role"), "assistant")
                   ? m : NULL;

            if (slora_openai_resp_reason_to(last, reason, it, err)
                != SLORA_OK)
            {
                goto failed;
            }

            reason = NULL;

        } else if (slora_openai_resp_is(type, "function_call")) {
            added = last == NULL;

            if (slora_openai_resp_call(it, param, i, msgs, &last,
                                       err) != SLORA_OK
                || slora_openai_resp_reason_to(last, reason, it, err)
                   != SLORA_OK)
            {
                goto failed;
            }

            reason = NULL;

            if (ids.slots != NULL) {
                slora_openai_resp_ids_add(&ids,
                    cJSON_GetObjectItemCaseSensitive(it, "call_id"));
            }

        } else if (slora_openai_resp_is(type, "function_call_output")) {
            if (slora_openai_resp_output(it, param, i, msgs, err) != SLORA_OK
                || (ids.slots != NULL
                    && slora_openai_resp_answers(it, param, i, &ids, err)
                       != SLORA_OK))
            {
                goto failed;
            }

            last = NULL;
            reason = NULL;

        } else if (slora_openai_resp_is(type, "reasoning")) {
            /* an earlier answer's reasoning (slora_reasoning), sent back
             * with its output: the reasoning_content of the assistant's
             * message or call after it, which Qwen3's template writes
             * back past the last user query (slora_openai_think.c) */
            added = 0;

            if (slora_openai_resp_reasoning(it, param, i, err)
                != SLORA_OK)
            {
                goto failed;
            }

            if (reason == NULL) {
                reason = it;
                reason_i = i;
            }

        } else {
            slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                              "unsupported_parameter", param,
                              "%s[%zu]: items of type %s are not"
                              " supported by this server (message,"
                              " function_call, function_call_output"
                              " and reasoning are)", param, i,
                              cJSON_IsString(type)
                              ? type->valuestring : "(not a string)");
            goto failed;
        }

        if (made != NULL && added) {
            made[(*n)++] = (int) i;
        }

        i++;
    }

    /* reasoning items last, no answer of their own after them: passed
     * over, or a conversation's message of their own */
    if (reason != NULL && !input) {
        if (slora_openai_resp_alone(msgs, reason, NULL, &kept, err)
            != SLORA_OK)
        {
            goto failed;
        }

        if (made != NULL && kept) {
            made[(*n)++] = (int) reason_i;
        }
    }

    slora_names_free(&ids);

    return SLORA_OK;

failed:

    slora_names_free(&ids);

    return SLORA_ERROR;
}


/* The set of the ids of msgs' calls (the instructions, a stored
 * conversation: what the items follow), with room for a call an item
 * more: the names' index (slora_names.h), whose strings, the cJSON
 * trees', outlive it. */
static int
slora_openai_resp_ids_init(slora_names_t *ids, cJSON *msgs, cJSON *items,
    slora_openai_err_t *err)
{
    size_t   n;
    cJSON   *m, *c;

    n = (size_t) cJSON_GetArraySize(items);

    cJSON_ArrayForEach(m, msgs) {
        n += (size_t) cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                                             m, "tool_calls"));
    }

    if (slora_names_init(ids, n) != SLORA_OK) {
        ids->slots = NULL;
        return slora_openai_nomem(err);
    }

    cJSON_ArrayForEach(m, msgs) {
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(m,
                                                               "tool_calls"))
        {
            slora_openai_resp_ids_add(ids,
                                      cJSON_GetObjectItemCaseSensitive(c,
                                                                       "id"));
        }
    }

    return SLORA_OK;
}


/* A call's id, where it is a string, put in the set: room for it was
 * made (one an item, one a call of msgs), and one seen twice is there
 * once. */
static void
slora_openai_resp_ids_add(slora_names_t *ids, cJSON *id)
{
    if (cJSON_IsString(id)) {
        (void) slora_names_add(ids, id->valuestring, strlen(id->valuestring),
                               0);
    }
}


/* A function_call_output item answers a call before it, as OpenAI
 * requires: one that answers none would be a tool message the template
 * writes after no call of the model's. */
static int
slora_openai_resp_answers(cJSON *it, const char *param, size_t i,
    slora_names_t *ids, slora_openai_err_t *err)
{
    const char  *id;

    id = cJSON_GetObjectItemCaseSensitive(it, "call_id")->valuestring;

    if (slora_names_find(ids, id, strlen(id)) >= 0) {
        return SLORA_OK;
    }

    return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                             param, "%s[%zu]: no function_call with call_id"
                             " \"%.*s\" comes before this"
                             " function_call_output", param, i,
                             slora_utf8_cut(id, 64), id);
}


/* A reasoning item's parts: its content's (reasoning_text), else, where
 * that is absent, null or empty, its summary's (summary_text), as vLLM
 * reads them; *key and *kind name which. */
static cJSON *
slora_openai_resp_parts(cJSON *it, const char **key, const char **kind)
{
    cJSON  *parts;

    *key = "content";
    *kind = "reasoning_text";
    parts = cJSON_GetObjectItemCaseSensitive(it, *key);

    if (parts == NULL || cJSON_IsNull(parts)
        || (cJSON_IsArray(parts) && cJSON_GetArraySize(parts) == 0))
    {
        *key = "summary";
        *kind = "summary_text";
        parts = cJSON_GetObjectItemCaseSensitive(it, *key);
    }

    return parts;
}


/* A reasoning item's parts checked, each of its kind with its text: a
 * bad one is named by the item's place, which the message its text
 * joins does not have. */
static int
slora_openai_resp_reasoning(cJSON *it, const char *param, size_t i,
    slora_openai_err_t *err)
{
    cJSON       *parts, *part;
    const char  *key, *kind;

    parts = slora_openai_resp_parts(it, &key, &kind);

    if (parts != NULL && !cJSON_IsNull(parts) && !cJSON_IsArray(parts)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 param, "%s[%zu].%s must be an array of"
                                 " %s parts", param, i, key, kind);
    }

    cJSON_ArrayForEach(part, parts) {
        if (!slora_openai_resp_is(cJSON_GetObjectItemCaseSensitive(part,
                                                                   "type"),
                                  kind)
            || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(part,
                                                                "text")))
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", param, "%s[%zu].%s"
                                     " must be an array of %s parts, each"
                                     " with its text", param, i, key,
                                     kind);
        }
    }

    return SLORA_OK;
}


/* The text of the reasoning items from "from" up to "to" (checked; NULL:
 * to the end) as the reasoning_content of m, the assistant's message
 * after them; where m has some already (reasoning, its message, more
 * reasoning and a call that joins that message), after it
 * (slora_openai_reason_join); m NULL (no assistant's item after them):
 * passed over. */
static int
slora_openai_resp_reason_to(cJSON *m, cJSON *from, cJSON *to,
    slora_openai_err_t *err)
{
    cJSON  *r;

    if (from == NULL || m == NULL) {
        return SLORA_OK;
    }

    if (slora_openai_resp_reason_text(from, to, &r, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    return r != NULL ? slora_openai_reason_join(m, r, 0, err) : SLORA_OK;
}


/*
 * The reasoning text r (a string item, taken whatever comes) as the
 * reasoning_content of the assistant's message m; where m has some
 * already, the two with a newline between, r's first where before, as
 * a message has one think block.
 */
int
slora_openai_reason_join(cJSON *m, cJSON *r, int before,
    slora_openai_err_t *err)
{
    char         *buf;
    size_t        a, b;
    cJSON        *had;
    const char   *first, *second;

    had = cJSON_GetObjectItemCaseSensitive(m, "reasoning_content");

    if (!cJSON_IsString(had)) {
        if (had != NULL) {
            cJSON_DeleteItemFromObjectCaseSensitive(m, "reasoning_content");
        }

        if (!cJSON_AddItemToObject(m, "reasoning_content", r)) {
            cJSON_Delete(r);
            return slora_openai_nomem(err);
        }

        return SLORA_OK;
    }

    /* the joined text in r's own buffer, as reason_text makes it */
    first = before ? r->valuestring : had->valuestring;
    second = before ? had->valuestring : r->valuestring;
    a = strlen(first);
    b = strlen(second);
    buf = cJSON_malloc(a + 1 + b + 1);

    if (buf == NULL) {
        cJSON_Delete(r);
        return slora_openai_nomem(err);
    }

    memcpy(buf, first, a);
    buf[a] = '\n';
    memcpy(buf + a + 1, second, b + 1);
    cJSON_free(r->valuestring);
    r->valuestring = buf;

    if (!cJSON_ReplaceItemInObjectCaseSensitive(m, "reasoning_content", r)) {
        cJSON_Delete(r);
        return slora_openai_nomem(err);
    }

    return SLORA_OK;
}


/* The text of the reasoning items from "from" up to "to" (checked; NULL:
 * to the end), every part of each joined by a newline, as a string item
 * in *text; NULL where they have no parts at all. The lengths are summed
 * first and the parts copied once, into the string's own buffer: a long
 * reasoning sent back in many parts costs its length, not the square of
 * its parts. */
static int
slora_openai_resp_reason_text(cJSON *from, cJSON *to, cJSON **text,
    slora_openai_err_t *err)
{
    char        *p, *buf;
    size_t       len, n, k;
    cJSON       *it, *part, *r;
    const char  *key, *kind, *s;

    *text = NULL;
    len = 0;
    n = 0;

    for (it = from; it != to; it = it->next) {
        cJSON_ArrayForEach(part, slora_openai_resp_parts(it, &key, &kind)) {
            len += (n++ > 0)
                   + strlen(cJSON_GetObjectItemCaseSensitive(part, "text")
                            ->valuestring);
        }
    }

    if (n == 0) {
        return SLORA_OK;
    }

    /* a string item made of "" whose buffer is then this one, as cJSON
     * would have allocated it (slora_pyjson.c does alike) */
    r = cJSON_CreateString("");
    buf = cJSON_malloc(len + 1);

    if (r == NULL || buf == NULL) {
        cJSON_Delete(r);
        cJSON_free(buf);
        return slora_openai_nomem(err);
    }

    cJSON_free(r->valuestring);
    r->valuestring = buf;
    p = buf;
    k = 0;

    for (it = from; it != to; it = it->next) {
        cJSON_ArrayForEach(part, slora_openai_resp_parts(it, &key, &kind)) {
            if (k++ > 0) {
                *p++ = '\n';
            }

            s = cJSON_GetObjectItemCaseSensitive(part, "text")->valuestring;
            n = strlen(s);
            memcpy(p, s, n);
            p += n;
        }
    }

    *p = '\0';
    *text = r;

    return SLORA_OK;
}


/* Whether the item it (of type type) ends a run of reasoning items with
 * nothing of the assistant's: a message not the assistant's, or a
 * function_call_output (an assistant's message or a call takes their
 * text; another reasoning item goes on with them). */
static int
slora_openai_resp_ends(cJSON *it, cJSON *type)
{
    if (type == NULL || slora_openai_resp_is(type, "message")) {
        return !slora_openai_resp_is(cJSON_GetObjectItemCaseSensitive(
                                         it, "role"), "assistant");
    }

    return slora_openai_resp_is(type, "function_call_output");
}


/* The reasoning items from "from" up to "to" (NULL: to the end), with
 * nothing of the assistant's after them, as a conversation keeps them:
 * an assistant message of their text alone, content null, appended to
 * msgs (*kept: 1), listed as their reasoning item and in no prompt
 * (slora_openai_conv_live), so that an item added is not lost; none
 * (*kept: 0) where they have no parts, nothing to keep. */
static int
slora_openai_resp_alone(cJSON *msgs, cJSON *from, cJSON *to, int *kept,
    slora_openai_err_t *err)
{
    cJSON  *r, *m;

    *kept = 0;

    if (slora_openai_resp_reason_text(from, to, &r, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (r == NULL) {
        return SLORA_OK;
    }

    m = cJSON_CreateObject();

    if (m == NULL || !cJSON_AddItemToArray(msgs, m)) {
        cJSON_Delete(m);
        cJSON_Delete(r);
        return slora_openai_nomem(err);
    }

    if (cJSON_AddStringToObject(m, "role", "assistant") == NULL
        || cJSON_AddNullToObject(m, "content") == NULL
        || !cJSON_AddItemToObject(m, "reasoning_content", r))
    {
        if (cJSON_GetObjectItemCaseSensitive(m, "reasoning_content") != r) {
            cJSON_Delete(r);
        }

        return slora_openai_nomem(err);
    }

    *kept = 1;

    return SLORA_OK;
}


/* A message item: role and content (a string, or text parts). */
static int
slora_openai_resp_message(cJSON *it, const char *param, size_t i,
    cJSON *msgs, slora_openai_err_t *err)
{
    cJSON  *role, *content, *m;

    role = cJSON_GetObjectItemCaseSensitive(it, "role");

    if (!(slora_openai_resp_is(role, "user")
          || slora_openai_resp_is(role, "assistant")
          || slora_openai_resp_is(role, "system")
          || slora_openai_resp_is(role, "developer")))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 param, "%s[%zu].role must be user,"
                                 " assistant, system or developer", param,
                                 i);
    }

    content = slora_openai_resp_text(cJSON_GetObjectItemCaseSensitive(
                                         it, "content"),
                                     param, i, "content",
                                     strcmp(role->valuestring, "assistant")
                                     == 0, err);
    if (content == NULL) {
        return SLORA_ERROR;
    }

    m = cJSON_CreateObject();

    if (m == NULL || !cJSON_AddItemToArray(msgs, m)) {
        cJSON_Delete(m);
        cJSON_Delete(content);
        return slora_openai_nomem(err);
    }

    if (cJSON_AddStringToObject(m, "role", role->valuestring) == NULL
        || !cJSON_AddItemToObject(m, "content", content))
    {
        return slora_openai_nomem(err);
    }

    return SLORA_OK;
}


/* A content (a string, or an array of input_text and output_text parts;
 * refusal: an assistant's, whose refusal parts, an earlier answer's
 * refusal sent back, are its text too) as a string item; NULL with err
 * set when it is none of those. */
static cJSON *
slora_openai_resp_text(cJSON *content, const char *param, size_t i,
    const char *what, int refusal, slora_openai_err_t *err)
{
    int           k;
    cJSON        *part, *type, *text, *parts, *out;
    const char   *key;

    if (cJSON_IsString(content)) {
        text = cJSON_CreateString(content->valuestring);
        if (text == NULL) {
            slora_openai_nomem(err);
        }

        return text;
    }

    if (!cJSON_IsArray(content)) {
        slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type", param,
                          "%s[%zu].%s must be a string or an array of"
                          " text parts", param, i, what);
        return NULL;
    }

    parts = cJSON_CreateArray();
    if (parts == NULL) {
        slora_openai_nomem(err);
        return NULL;
    }

    k = 0;

    cJSON_ArrayForEach(part, content) {
        type = cJSON_GetObjectItemCaseSensitive(part, "type");

        key = slora_openai_resp_is(type, "input_text")
              || slora_openai_resp_is(type, "output_text") ? "text"
              : refusal && slora_openai_resp_is(type, "refusal") ? "refusal"
              : NULL;

        if (key == NULL) {
            cJSON_Delete(parts);
            slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                              cJSON_IsString(type) ? "unsupported_parameter"
                                                   : "invalid_type",
                              param, "%s[%zu].%s: only input_text and"
                              " output_text parts%s are supported by this"
                              " server's model", param, i, what,
                              refusal ? " (and an answer's refusal parts)"
                                      : "");
            return NULL;
        }

        text = cJSON_GetObjectItemCaseSensitive(part, key);

        if (!cJSON_IsString(text)) {
            cJSON_Delete(parts);
            slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                              param, "%s[%zu].%s[%d].%s must be a string",
                              param, i, what, k, key);
            return NULL;
        }

        out = cJSON_CreateObject();

        if (out == NULL || !cJSON_AddItemToArray(parts, out)) {
            cJSON_Delete(out);
            cJSON_Delete(parts);
            slora_openai_nomem(err);
            return NULL;
        }

        if (cJSON_AddStringToObject(out, "type", "text") == NULL
            || cJSON_AddStringToObject(out, "text", text->valuestring)
               == NULL)
        {
            cJSON_Delete(parts);
            slora_openai_nomem(err);
            return NULL;
        }

        k++;
    }

    return parts;
}


/* A function_call item: a call of the assistant message before it (the
 * one last points to, made if there is none). */
static int
slora_openai_resp_call(cJSON *it, const char *param, size_t i, cJSON *msgs,
    cJSON **last, slora_openai_err_t *err)
{
    cJSON  *id, *name, *args, *calls, *c, *fn, *parsed;

    id = cJSON_GetObjectItemCaseSensitive(it, "call_id");
    name = cJSON_GetObjectItemCaseSensitive(it, "name");
    args = cJSON_GetObjectItemCaseSensitive(it, "arguments");

    if (!cJSON_IsString(id) || !cJSON_IsString(name)
        || !cJSON_IsString(args))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 param, "%s[%zu]: a function_call item"
                                 " needs the strings call_id, name and"
                                 " arguments", param, i);
    }

    /* the checks chat makes of a message's calls, made here where the
     * call's own item can be named (a call joins the message before) */
    if (!slora_openai_tool_name_ok(name->valuestring)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 param, "%s[%zu].name must be 1 to %d"
                                 " letters, digits, '_', '-' or '.'", param,
                                 i, SLORA_TOOL_NAME_MAX);
    }

    if (slora_json_holds_nul(args->valuestring)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 param, "%s[%zu].arguments hold a NUL"
                                 " character (\\u0000) in a string", param,
                                 i);
    }

    parsed = args->valuestring[0] != '\0' ? cJSON_Parse(args->valuestring)
                                          : cJSON_CreateObject();

    if (parsed == NULL) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 param, "%s[%zu].arguments are not JSON",
                                 param, i);
    }

    cJSON_Delete(parsed);

    if (*last == NULL) {
        *last = cJSON_CreateObject();

        if (*last == NULL || !cJSON_AddItemToArray(msgs, *last)
            || cJSON_AddStringToObject(*last, "role", "assistant") == NULL
            || cJSON_AddNullToObject(*last, "content") == NULL)
        {
            return slora_openai_nomem(err);
        }
    }

    calls = cJSON_GetObjectItemCaseSensitive(*last, "tool_calls");
    if (calls == NULL) {
        calls = cJSON_AddArrayToObject(*last, "tool_calls");
    }

    c = cJSON_CreateObject();

    if (calls == NULL || c == NULL || !cJSON_AddItemToArray(calls, c)
        || cJSON_AddStringToObject(c, "id", id->valuestring) == NULL
        || cJSON_AddStringToObject(c, "type", "function") == NULL
        || (fn = cJSON_AddObjectToObject(c, "function")) == NULL
        || cJSON_AddStringToObject(fn, "name", name->valuestring) == NULL
        || cJSON_AddStringToObject(fn, "arguments", args->valuestring)
           == NULL)
    {
        return slora_openai_nomem(err);
    }

    return SLORA_OK;
}


/* A function_call_output item: a tool message answering call_id. */
static int
slora_openai_resp_output(cJSON *it, const char *param, size_t i,
    cJSON *msgs, slora_openai_err_t *err)
{
    cJSON  *id, *out, *m;

    id = cJSON_GetObjectItemCaseSensitive(it, "call_id");

    if (!cJSON_IsString(id)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 param, "%s[%zu]: a function_call_output"
                                 " item needs the string call_id", param,
                                 i);
    }

    out = slora_openai_resp_text(cJSON_GetObjectItemCaseSensitive(it,
                                                                  "output"),
                                 param, i, "output", 0, err);
    if (out == NULL) {
        return SLORA_ERROR;
    }

    m = cJSON_CreateObject();

    if (m == NULL || !cJSON_AddItemToArray(msgs, m)) {
        cJSON_Delete(m);
        cJSON_Delete(out);
        return slora_openai_nomem(err);
    }

    if (cJSON_AddStringToObject(m, "role", "tool") == NULL
        || cJSON_AddStringToObject(m, "tool_call_id", id->valuestring)
           == NULL
        || !cJSON_AddItemToObject(m, "content", out))
    {
        return slora_openai_nomem(err);
    }

    return SLORA_OK;
}
