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
 * function_call, a tool message a function_call_output. The answer is
 * the conversation's last message and is not input. Items were not
 * given ids when they came in, so each is named after the response and
 * its place in the conversation (msg_, fc_, fco_ + the response id's
 * random part + "_" + the place): the same item keeps its id from page
 * to page, which is what a cursor ("after") needs.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "slora_openai_int.h"


#define SLORA_OPENAI_ITEMS_LIMIT  100   /* a page's items, at most */


static int slora_openai_items_query(const slora_openai_items_q_t *q,
    int64_t *limit, int *asc, slora_openai_err_t *err);
static int slora_openai_items_of(cJSON *msg, int place, const char *hex,
    cJSON *items);
static cJSON *slora_openai_item(cJSON *items, const char *prefix,
    const char *hex, int place, int sub, const char *type);
static int slora_openai_item_parts(cJSON *it, cJSON *content, int output);


int
slora_openai_input_items(const char *conv, size_t conv_len, const char *id,
    size_t id_len, const slora_openai_items_q_t *q, char **out,
    slora_openai_err_t *err)
{
    int      asc, rc, n, i, from, step, k, more;
    int64_t  limit;
    char     hex[64], *text;
    cJSON   *msgs, *msg, *all, *page, *list, *it, *first, *last, *ids;

    *out = NULL;

    if (slora_openai_items_query(q, &limit, &asc, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    /* the id's random part: resp_<hex> */
    if (id_len > 5 && memcmp(id, "resp_", 5) == 0) {
        id += 5;
        id_len -= 5;
    }

    if (id_len >= sizeof(hex)) {
        id_len = sizeof(hex) - 1;
    }

    memcpy(hex, id, id_len);
    hex[id_len] = '\0';

    msgs = cJSON_ParseWithLength(conv, conv_len);
    all = cJSON_CreateArray();
    page = cJSON_CreateArray();
    list = cJSON_CreateObject();
    rc = SLORA_OK;

    if (all == NULL || page == NULL || list == NULL) {
        rc = slora_openai_nomem(err);
        goto done;
    }

    if (!cJSON_IsArray(msgs)) {
        rc = slora_openai_fail(err, 500, "server_error", NULL, NULL,
                               "the stored conversation is not a list of "
                               "messages");
        goto done;
    }

    /* every message but the last (the answer) */
    n = cJSON_GetArraySize(msgs) - 1;
    i = 0;

    cJSON_ArrayForEach(msg, msgs) {
        if (i >= n) {
            break;
        }

        if (slora_openai_items_of(msg, i++, hex, all) != SLORA_OK) {
            rc = slora_openai_nomem(err);
            goto done;
        }
    }

    n = cJSON_GetArraySize(all);
    from = asc ? 0 : n - 1;
    step = asc ? 1 : -1;

    if (q->after.data != NULL) {
        for (k = from; k >= 0 && k < n; k += step) {
            ids = cJSON_GetObjectItemCaseSensitive(
                      cJSON_GetArrayItem(all, k), "id");

            if (strlen(ids->valuestring) == q->after.len
                && memcmp(ids->valuestring, q->after.data, q->after.len)
                   == 0)
            {
                break;
            }
        }

        if (k < 0 || k >= n) {
            rc = slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                   "invalid_value", "after", "after names "
                                   "no input item of this response");
            goto done;
        }

        from = k + step;
    }

    /* the page: up to limit items from "from" on, in the order asked;
     * detached from all and attached to the page one by one */
    for (k = from, i = 0; k >= 0 && k < n && i < limit; k += step, i++) {
        it = cJSON_Duplicate(cJSON_GetArrayItem(all, k), 1);

        if (it == NULL || !cJSON_AddItemToArray(page, it)) {
            cJSON_Delete(it);
            rc = slora_openai_nomem(err);
            goto done;
        }
    }

    more = k >= 0 && k < n;
    first = cJSON_GetArrayItem(page, 0);
    last = cJSON_GetArrayItem(page, cJSON_GetArraySize(page) - 1);

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

    if (role == NULL) {
        return SLORA_OK;
    }

    if (strcmp(role, "tool") == 0) {
        it = slora_openai_item(items, "fco_", hex, place, -1,
                               "function_call_output");

        return it != NULL
               && cJSON_AddItemReferenceToObject(it, "call_id",
                      cJSON_GetObjectItemCaseSensitive(msg, "tool_call_id"))
               && cJSON_AddStringToObject(it, "output",
                                          text != NULL ? text : "") != NULL
               && cJSON_AddStringToObject(it, "status", "completed") != NULL
               ? SLORA_OK : SLORA_ERROR;
    }

    if (strcmp(role, "assistant") != 0 || (text != NULL && *text != '\0')
        || cJSON_GetArraySize(content) > 0)
    {
        it = slora_openai_item(items, "msg_", hex, place, -1, "message");

        if (it == NULL
            || cJSON_AddStringToObject(it, "role", role) == NULL
            || slora_openai_item_parts(it, content,
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
        fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        it = slora_openai_item(items, "fc_", hex, place, k++,
                               "function_call");

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


/* A new item appended to items: {"id": prefix hex "_" place ["_" sub],
 * "type": type}; NULL: out of memory. */
static cJSON *
slora_openai_item(cJSON *items, const char *prefix, const char *hex,
    int place, int sub, const char *type)
{
    char    id[128];
    cJSON  *it;

    if (sub < 0) {
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
           ? it : NULL;
}


/* A message item's content: a part for the stored content's string, or
 * one for each of its text parts; input_text, or the assistant's
 * output_text. */
static int
slora_openai_item_parts(cJSON *it, cJSON *content, int output)
{
    cJSON  *parts, *part, *src;

    parts = cJSON_AddArrayToObject(it, "content");

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
