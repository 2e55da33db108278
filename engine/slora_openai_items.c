/*
 * slora_openai_items.c: a stored response's input items (the Responses
 * API's GET .../responses/{id}/input_items): the conversation the store
 * keeps for it, less its answer, listed as the API's items a page at a
 * time.
 *
 * The one idea: the store keeps chat messages (what
 * previous_response_id continues), so the items are read back out of
 * them: a system, developer or user message is a message of input_text,
 * an assistant's text a message of output_text and each of its calls a
 * function_call, a tool message a function_call_output; an assistant's
 * reasoning_content (a reasoning item sent back, an answer's think
 * block) a reasoning item before its message and calls. The answer is
 * the conversation's last message and is not input. Items were not
 * given ids when they came in, so each is named after the response and
 * its place in the conversation (msg_, fc_, fco_, rs_ + the response
 * id's random part + "_" + the place): the same item keeps its id from
 * page to page, which is what a cursor ("after") needs, and the prefix
 * tells a message's reasoning, text and calls apart. An answer's
 * message, calls and reasoning are stored with the ids their items had
 * (item_id, reasoning_item_id), and keep them. A conversation's items
 * (the Conversations API) are read the same way, all of its messages,
 * named after the conversation; one removed from it is marked in its
 * place (slora_openai_conv.c) and left out here, a reasoning removed
 * with its text, which only it holds, and a message that a removal left
 * with no item to list (an empty text beside the reasoning or the call
 * removed) marked too, so that no prompt reads it as an empty turn.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "slora_openai_int.h"


#define SLORA_OPENAI_ITEMS_LIMIT  100   /* a page's items, at most */


static cJSON *slora_openai_items_step(cJSON *all, cJSON *it, int asc);
static int slora_openai_items_list(const char *conv, size_t conv_len,
    int answer, int place, const char *prefix, const char *id,
    size_t id_len, const slora_openai_items_q_t *q, char **out,
    slora_openai_err_t *err);
static void slora_openai_items_hex(const char *id, size_t id_len,
    const char *prefix, char *hex, size_t size);
static int slora_openai_items_all(cJSON *msgs, int answer, int first,
    const char *hex, cJSON *all, slora_openai_err_t *err);
static int slora_openai_items_query(const slora_openai_items_q_t *q,
    int64_t *limit, int *asc, slora_openai_err_t *err);
static int slora_openai_items_of(cJSON *msg, int place, const char *hex,
    cJSON *items);
static cJSON *slora_openai_item_reason(cJSON *msg);
static int slora_openai_item_said(cJSON *msg);
static int slora_openai_item_left(cJSON *msg);
static int slora_openai_item_calls(cJSON *msg);
static int slora_openai_item_reasoning(cJSON *msg, int place,
    const char *hex, cJSON *items);
static cJSON *slora_openai_item(cJSON *items, const char *prefix,
    const char *hex, int place, int sub, const char *type, cJSON *given);
static int slora_openai_item_parts(cJSON *it, const char *key,
    cJSON *content, int output);


int
slora_openai_input_items(const char *conv, size_t conv_len, const char *id,
    size_t id_len, const slora_openai_items_q_t *q, char **out,
    slora_openai_err_t *err)
{
    /* every message but the last (the answer) */
    return slora_openai_items_list(conv, conv_len, 1, 0, "resp_", id,
                                   id_len, q, out, err);
}


int
slora_openai_conv_list(const char *conv, size_t conv_len, const char *id,
    size_t id_len, const slora_openai_items_q_t *q, char **out,
    slora_openai_err_t *err)
{
    return slora_openai_items_list(conv, conv_len, 0, 0, "conv_", id,
                                   id_len, q, out, err);
}


int
slora_openai_conv_list_from(const char *msgs, size_t len, int first,
    const char *id, size_t id_len, char **out, slora_openai_err_t *err)
{
    slora_openai_items_q_t  q;

    memset(&q, 0, sizeof(q));
    q.order.data = "asc";
    q.order.len = 3;
    q.limit.data = "100";
    q.limit.len = 3;

    return slora_openai_items_list(msgs, len, 0, first, "conv_", id, id_len,
                                   &q, out, err);
}


int
slora_openai_conv_item(const char *conv, size_t conv_len, const char *id,
    size_t id_len, const char *item, size_t item_len, int drop, char **out,
    slora_openai_err_t *err)
{
    int          rc, left;
    char         hex[64];
    cJSON       *msgs, *all, *it, *ids, *place, *msg, *call;
    const char  *s;

    *out = NULL;

    slora_openai_items_hex(id, id_len, "conv_", hex, sizeof(hex));

    msgs = cJSON_ParseWithLength(conv, conv_len);
    all = cJSON_CreateArray();

    if (all == NULL) {
        rc = slora_openai_nomem(err);
        goto done;
    }

    rc = slora_openai_items_all(msgs, 0, 0, hex, all, err);
    if (rc != SLORA_OK) {
        goto done;
    }

    /* by the list's links: an index into a cJSON array walks it */
    cJSON_ArrayForEach(it, all) {
        ids = cJSON_GetObjectItemCaseSensitive(it, "id");

        if (strlen(ids->valuestring) == item_len
            && memcmp(ids->valuestring, item, item_len) == 0)
        {
            break;
        }
    }

    if (it == NULL) {
        rc = slora_openai_fail(err, 404, SLORA_OPENAI_BAD, "not_found",
                               "item_id", "Item with id '%.*s' not found"
                               " in this conversation",
                               (int) (item_len < 64 ? item_len : 64), item);
        goto done;
    }

    if (!drop) {
        /* the item alone, without the place it was found by */
        cJSON_DeleteItemFromObjectCaseSensitive(it, "_place");
        cJSON_DeleteItemFromObjectCaseSensitive(it, "_sub");
        *out = cJSON_PrintUnformatted(it);
        rc = *out != NULL ? SLORA_OK : slora_openai_nomem(err);
        goto done;
    }

    /* marked, so that every other item keeps its place and its id */
    place = cJSON_GetObjectItemCaseSensitive(it, "_place");
    msg = cJSON_GetArrayItem(msgs, place->valueint);
    s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "type"));
    ids = cJSON_GetObjectItemCaseSensitive(it, "_sub");
    call = ids != NULL
           ? cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                                    msg, "tool_calls"), ids->valueint)
           : NULL;

    if (call != NULL) {
        rc = cJSON_AddTrueToObject(call, "deleted") != NULL;

    } else if (strcmp(s, "reasoning") == 0) {
        /* the message's reasoning alone: no other item holds it, so no
         * mark is needed for the others to keep their ids; but where it
         * was the message's last item (its empty text no item beside
         * it), the message goes too, before that text would list */
        left = slora_openai_item_said(msg) || slora_openai_item_calls(msg);
        cJSON_DeleteItemFromObjectCaseSensitive(msg, "reasoning_content");
        cJSON_DeleteItemFromObjectCaseSensitive(msg, "reasoning_item_id");
        rc = left || cJSON_AddTrueToObject(msg, "deleted") != NULL;

    } else if (strcmp(s, "message") == 0
               && (cJSON_GetObjectItemCaseSensitive(msg, "tool_calls")
                   != NULL
                   || slora_openai_item_reason(msg) != NULL))
    {
        /* an answer's text, its calls and its reasoning staying */
        rc = cJSON_ReplaceItemInObjectCaseSensitive(msg, "content",
                                                    cJSON_CreateNull());

    } else {
        rc = cJSON_AddTrueToObject(msg, "deleted") != NULL;
    }

    /* a message whose last item that was listed went (its reasoning, a
     * call, its text) is marked too: what is left of it, an empty text,
     * would be an assistant's turn in a prompt that no listing shows */
    if (rc && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "deleted"))
        && !slora_openai_item_left(msg))
    {
        rc = cJSON_AddTrueToObject(msg, "deleted") != NULL;
    }

    *out = rc ? cJSON_PrintUnformatted(msgs) : NULL;
    rc = *out != NULL ? SLORA_OK : slora_openai_nomem(err);

done:

    cJSON_Delete(all);      /* before msgs: it holds references into them */
    cJSON_Delete(msgs);

    return rc;
}


/* The item after it in the order asked (asc: first to last, else last
 * to first), NULL past the end; it NULL: the first in that order. */
static cJSON *
slora_openai_items_step(cJSON *all, cJSON *it, int asc)
{
    if (asc) {
        return it != NULL ? it->next : all->child;
    }

    if (it == NULL) {
        for (it = all->child; it != NULL && it->next != NULL; it = it->next) {
            /* void */
        }

        return it;
    }

    /* the first child's prev is the last, not NULL */
    return it == all->child ? NULL : it->prev;
}


/* The items of msgs (conv[0..conv_len), the last left out where
 * answer, the first at place place) listed a page at a time; ids after
 * the random part of id (less prefix). */
static int
slora_openai_items_list(const char *conv, size_t conv_len, int answer,
    int place, const char *prefix, const char *id, size_t id_len,
    const slora_openai_items_q_t *q, char **out, slora_openai_err_t *err)
{
    int      asc, rc, i, more;
    int64_t  limit;
    char     hex[64], *text;
    cJSON   *msgs, *all, *page, *list, *it, *first, *last, *ids, *from;

    *out = NULL;

    if (slora_openai_items_query(q, &limit, &asc, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    slora_openai_items_hex(id, id_len, prefix, hex, sizeof(hex));

    msgs = cJSON_ParseWithLength(conv, conv_len);
    all = cJSON_CreateArray();
    page = cJSON_CreateArray();
    list = cJSON_CreateObject();
    rc = SLORA_OK;

    if (all == NULL || page == NULL || list == NULL) {
        rc = slora_openai_nomem(err);
        goto done;
    }

    rc = slora_openai_items_all(msgs, answer, place, hex, all, err);
    if (rc != SLORA_OK) {
        goto done;
    }

    /* walked by the list's links, from either end (an index into a
     * cJSON array walks it from the start: a page deep in a long
     * conversation would cost the square of its items) */
    from = slora_openai_items_step(all, NULL, asc);

    if (q->after.data != NULL) {
        for ( /* void */ ; from != NULL;
             from = slora_openai_items_step(all, from, asc))
        {
            ids = cJSON_GetObjectItemCaseSensitive(from, "id");

            if (strlen(ids->valuestring) == q->after.len
                && memcmp(ids->valuestring, q->after.data, q->after.len)
                   == 0)
            {
                break;
            }
        }

        if (from == NULL) {
            rc = slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                   "invalid_value", "after", "after names "
                                   "no item of this %s", answer
                                   ? "response's input" : "conversation");
            goto done;
        }

        from = slora_openai_items_step(all, from, asc);
    }

    /* the page: up to limit items from "from" on, in the order asked,
     * each copied without its places */
    first = NULL;
    last = NULL;

    for (i = 0; from != NULL && i < limit;
         from = slora_openai_items_step(all, from, asc), i++)
    {
        it = cJSON_Duplicate(from, 1);

        if (it != NULL) {
            cJSON_DeleteItemFromObjectCaseSensitive(it, "_place");
            cJSON_DeleteItemFromObjectCaseSensitive(it, "_sub");
        }

        if (it == NULL || !cJSON_AddItemToArray(page, it)) {
            cJSON_Delete(it);
            rc = slora_openai_nomem(err);
            goto done;
        }

        first = first != NULL ? first : it;
        last = it;
    }

    more = from != NULL;

    if (cJSON_AddStringToObject(list, "object", "list") == NULL
        || !cJSON_AddItemToObject(list, "data", page))
    {
        rc = slora_openai_nomem(err);
        goto done;
    }

    page = NULL;

    if ((first != NULL
         ? cJSON_AddStringToObject(list, "first_id",
               cJSON_GetObjectItemCaseSensitive(first, "id")->valuestring)
         : cJSON_AddNullToObject(list, "first_id")) == NULL
        || (last != NULL
            ? cJSON_AddStringToObject(list, "last_id",
                  cJSON_GetObjectItemCaseSensitive(last, "id")->valuestring)
            : cJSON_AddNullToObject(list, "last_id")) == NULL
        || cJSON_AddBoolToObject(list, "has_more", more) == NULL)
    {
        rc = slora_openai_nomem(err);
        goto done;
    }

    text = cJSON_PrintUnformatted(list);

    if (text == NULL) {
        rc = slora_openai_nomem(err);
        goto done;
    }

    *out = text;

done:

    cJSON_Delete(all);      /* before msgs: it holds references into them */
    cJSON_Delete(msgs);
    cJSON_Delete(page);
    cJSON_Delete(list);

    return rc;
}


/* id's random part (id less prefix) in hex[0..size). */
static void
slora_openai_items_hex(const char *id, size_t id_len, const char *prefix,
    char *hex, size_t size)
{
    size_t  n;

    n = strlen(prefix);

    if (id_len > n && memcmp(id, prefix, n) == 0) {
        id += n;
        id_len -= n;
    }

    if (id_len >= size) {
        id_len = size - 1;
    }

    memcpy(hex, id, id_len);
    hex[id_len] = '\0';
}


/* Every item of msgs (less the last message where answer; the first at
 * place first) appended to all, each with its message's place
 * ("_place") and, for a call, its place among the message's calls
 * ("_sub"): what a removal marks. */
static int
slora_openai_items_all(cJSON *msgs, int answer, int first, const char *hex,
    cJSON *all, slora_openai_err_t *err)
{
    int     n, i;
    cJSON  *msg;

    if (!cJSON_IsArray(msgs)) {
        return slora_openai_fail(err, 500, "server_error", NULL, NULL,
                                 "the stored conversation is not a list of"
                                 " messages");
    }

    n = cJSON_GetArraySize(msgs) - (answer ? 1 : 0);
    i = 0;

    cJSON_ArrayForEach(msg, msgs) {
        if (i >= n) {
            break;
        }

        if (slora_openai_items_of(msg, first + i++, hex, all) != SLORA_OK) {
            return slora_openai_nomem(err);
        }
    }

    return SLORA_OK;
}


/* limit: 1 to 100, default 20; order: "asc" or "desc", the default (as
 * OpenAI lists them: newest first). */
static int
slora_openai_items_query(const slora_openai_items_q_t *q, int64_t *limit,
    int *asc, slora_openai_err_t *err)
{
    *limit = 20;
    *asc = 0;

    if (q->limit.data != NULL
        && (slora_openai_atoi(&q->limit, limit) != SLORA_OK
            || *limit < 1 || *limit > SLORA_OPENAI_ITEMS_LIMIT))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "invalid_value", "limit", "limit must "
                                 "be an integer from 1 to %d",
                                 SLORA_OPENAI_ITEMS_LIMIT);
    }

    if (q->order.data != NULL) {
        if (q->order.len == 3 && memcmp(q->order.data, "asc", 3) == 0) {
            *asc = 1;

        } else if (!(q->order.len == 4
                     && memcmp(q->order.data, "desc", 4) == 0))
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "order", "order must "
                                     "be \"asc\" or \"desc\"");
        }
    }

    return SLORA_OK;
}


/* The items of the conversation's message at place, appended to items. */
static int
slora_openai_items_of(cJSON *msg, int place, const char *hex, cJSON *items)
{
    int          k;
    cJSON       *it, *calls, *call, *fn, *content;
    const char  *role, *text;

    role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg,
                                                                 "role"));
    content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    text = cJSON_GetStringValue(content);

    if (role == NULL
        || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "deleted")))
    {
        /* a conversation's item removed (slora_openai_conv_item) */
        return SLORA_OK;
    }

    if (strcmp(role, "tool") == 0) {
        it = slora_openai_item(items, "fco_", hex, place, -1,
                               "function_call_output", NULL);

        /* an output given as parts is listed as its input_text parts */
        return it != NULL
               && cJSON_AddItemReferenceToObject(it, "call_id",
                      cJSON_GetObjectItemCaseSensitive(msg, "tool_call_id"))
               && (cJSON_IsArray(content)
                   ? slora_openai_item_parts(it, "output", content, 0)
                     == SLORA_OK
                   : cJSON_AddStringToObject(it, "output",
                                             text != NULL ? text : "")
                     != NULL)
               && cJSON_AddStringToObject(it, "status", "completed") != NULL
               ? SLORA_OK : SLORA_ERROR;
    }

    /* the reasoning first, as the answer gave it */
    if (slora_openai_item_reasoning(msg, place, hex, items) != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (slora_openai_item_said(msg)) {
        it = slora_openai_item(items, "msg_", hex, place, -1, "message",
                               cJSON_GetObjectItemCaseSensitive(msg,
                                                                "item_id"));

        if (it == NULL
            || cJSON_AddStringToObject(it, "role", role) == NULL
            || slora_openai_item_parts(it, "content", content,
                                       strcmp(role, "assistant") == 0)
               != SLORA_OK
            || cJSON_AddStringToObject(it, "status", "completed") == NULL)
        {
            return SLORA_ERROR;
        }
    }

    calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    k = 0;

    cJSON_ArrayForEach(call, calls) {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(call, "deleted"))) {
            k++;
            continue;
        }

        fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        it = slora_openai_item(items, "fc_", hex, place, k++,
                               "function_call",
                               cJSON_GetObjectItemCaseSensitive(call,
                                                                "item_id"));

        if (it == NULL
            || !cJSON_AddItemReferenceToObject(it, "call_id",
                   cJSON_GetObjectItemCaseSensitive(call, "id"))
            || !cJSON_AddItemReferenceToObject(it, "name",
                   cJSON_GetObjectItemCaseSensitive(fn, "name"))
            || !cJSON_AddItemReferenceToObject(it, "arguments",
                   cJSON_GetObjectItemCaseSensitive(fn, "arguments"))
            || cJSON_AddStringToObject(it, "status", "completed") == NULL)
        {
            return SLORA_ERROR;
        }
    }

    return SLORA_OK;
}


/* An assistant message's reasoning_content where it has some (a string
 * not empty); NULL: none. */
static cJSON *
slora_openai_item_reason(cJSON *msg)
{
    cJSON       *reason;
    const char  *role;

    role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg,
                                                                 "role"));
    reason = cJSON_GetObjectItemCaseSensitive(msg, "reasoning_content");

    return role != NULL && strcmp(role, "assistant") == 0
           && cJSON_IsString(reason) && reason->valuestring[0] != '\0'
           ? reason : NULL;
}


/* Whether a message's text is listed as a message item: any but an
 * assistant's; an assistant's where it says something (text or parts),
 * or where its empty text is all it holds (an item added so, which the
 * prompt reads as an empty turn): beside its calls or its reasoning an
 * empty text is no item of its own. */
static int
slora_openai_item_said(cJSON *msg)
{
    cJSON       *content;
    const char  *role, *text;

    role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg,
                                                                 "role"));
    content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    text = cJSON_GetStringValue(content);

    return role == NULL || strcmp(role, "assistant") != 0
           || (text != NULL
               && (*text != '\0'
                   || (cJSON_GetObjectItemCaseSensitive(msg, "tool_calls")
                       == NULL
                       && slora_openai_item_reason(msg) == NULL)))
           || cJSON_GetArraySize(content) > 0;
}


/*
 * Whether a message not removed lists an item still: its text, its
 * reasoning or a call not removed. One that lists none after a removal
 * is marked removed, so that the listing and the prompt agree: an
 * assistant's message of its reasoning alone is listed, as its
 * reasoning item, and left out of a prompt (slora_openai_conv_live: no
 * text, no call; the template has nothing of the assistant's to write
 * it with); one of nothing at all is neither.
 */
static int
slora_openai_item_left(cJSON *msg)
{
    return slora_openai_item_said(msg)
           || slora_openai_item_reason(msg) != NULL
           || slora_openai_item_calls(msg);
}


/* Whether a message has a call not removed. */
static int
slora_openai_item_calls(cJSON *msg)
{
    cJSON  *call;

    cJSON_ArrayForEach(call, cJSON_GetObjectItemCaseSensitive(msg,
                                                              "tool_calls"))
    {
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(call, "deleted")))
        {
            return 1;
        }
    }

    return 0;
}


/* The reasoning item of the message at place, where it has reasoning,
 * appended to items, shaped as the response's reasoning output item
 * (ngx_http_slora_responses.c): no summary, the text one reasoning_text
 * part. */
static int
slora_openai_item_reasoning(cJSON *msg, int place, const char *hex,
    cJSON *items)
{
    cJSON  *reason, *it, *parts, *part;

    reason = slora_openai_item_reason(msg);

    if (reason == NULL) {
        return SLORA_OK;
    }

    it = slora_openai_item(items, "rs_", hex, place, -1, "reasoning",
                           cJSON_GetObjectItemCaseSensitive(
                               msg, "reasoning_item_id"));

    if (it == NULL || cJSON_AddArrayToObject(it, "summary") == NULL) {
        return SLORA_ERROR;
    }

    parts = cJSON_AddArrayToObject(it, "content");
    part = cJSON_CreateObject();

    if (parts == NULL || part == NULL || !cJSON_AddItemToArray(parts, part)) {
        cJSON_Delete(part);
        return SLORA_ERROR;
    }

    return cJSON_AddStringToObject(part, "type", "reasoning_text") != NULL
           && cJSON_AddItemReferenceToObject(part, "text", reason)
           && cJSON_AddStringToObject(it, "status", "completed") != NULL
           ? SLORA_OK : SLORA_ERROR;
}


/* A new item appended to items: {"id": given (an answer's item, stored
 * with the id it had) or prefix hex "_" place ["_" sub], "type": type},
 * and its place for the caller ("_place", "_sub": taken out before it is
 * shown); NULL: out of memory. */
static cJSON *
slora_openai_item(cJSON *items, const char *prefix, const char *hex,
    int place, int sub, const char *type, cJSON *given)
{
    char    id[128];
    cJSON  *it;

    if (cJSON_IsString(given) && strlen(given->valuestring) < sizeof(id)) {
        snprintf(id, sizeof(id), "%s", given->valuestring);

    } else if (sub < 0) {
        snprintf(id, sizeof(id), "%s%s_%d", prefix, hex, place);

    } else {
        snprintf(id, sizeof(id), "%s%s_%d_%d", prefix, hex, place, sub);
    }

    it = cJSON_CreateObject();

    if (it == NULL || !cJSON_AddItemToArray(items, it)) {
        cJSON_Delete(it);
        return NULL;
    }

    return cJSON_AddStringToObject(it, "id", id) != NULL
           && cJSON_AddStringToObject(it, "type", type) != NULL
           && cJSON_AddNumberToObject(it, "_place", place) != NULL
           && (sub < 0 || cJSON_AddNumberToObject(it, "_sub", sub) != NULL)
           ? it : NULL;
}


/* A message item's content (key "content"), or a function_call_output's
 * output given as parts (key "output"): a part for the stored content's
 * string, or one for each of its text parts; input_text, or the
 * assistant's output_text. */
static int
slora_openai_item_parts(cJSON *it, const char *key, cJSON *content,
    int output)
{
    cJSON  *parts, *part, *src;

    parts = cJSON_AddArrayToObject(it, key);

    if (parts == NULL) {
        return SLORA_ERROR;
    }

    src = cJSON_IsArray(content) ? content->child : content;

    for ( /* void */ ; src != NULL;
         src = cJSON_IsArray(content) ? src->next : NULL)
    {
        part = cJSON_CreateObject();

        if (part == NULL || !cJSON_AddItemToArray(parts, part)) {
            cJSON_Delete(part);
            return SLORA_ERROR;
        }

        if (cJSON_AddStringToObject(part, "type", output ? "output_text"
                                                         : "input_text")
               == NULL
            || cJSON_AddStringToObject(part, "text",
                   cJSON_IsString(src) ? src->valuestring
                   : cJSON_IsString(cJSON_GetObjectItemCaseSensitive(src,
                                                                     "text"))
                   ? cJSON_GetObjectItemCaseSensitive(src, "text")
                         ->valuestring
                   : "") == NULL
            || (output && cJSON_AddArrayToObject(part, "annotations")
                          == NULL))
        {
            return SLORA_ERROR;
        }
    }

    return SLORA_OK;
}
