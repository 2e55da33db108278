/*
 * slora_openai_conv.c: OpenAI's Conversations API bodies (POST
 * /v1/conversations, POST .../conversations/{id} and POST
 * .../conversations/{id}/items) and what a Responses request's
 * conversation reads of one: a conversation is kept as its object
 * ({"id", "object": "conversation", "created_at", "metadata"}) and its
 * items as the chat messages they mean, a JSON array like a stored
 * response's, so that the store, the prompt and the item listing
 * (slora_openai_items.c) are the responses' own.
 *
 * The one idea: an item's id is its place. Items come in without ids
 * and are read back out of the messages (msg_, fc_, fco_, rs_ + the
 * conversation id's random part + the place; an answer's keep the ids
 * their items had, stored with them), so a removed item stays in its
 * place, marked ("deleted": true on the message or the call; a
 * reasoning item's text, which no other item holds, taken out of its
 * message; a message that lists no item after it, marked too), and the
 * items after it keep their ids; what a prompt reads of the
 * conversation (slora_openai_conv_live) leaves the marked out, and an
 * assistant's reasoning alone, listed as its item, with it.
 * An add makes only the new messages, to be appended as bytes: the
 * places they take come from a count of the conversation's messages by
 * a scan (slora_openai_json_count), not a parse. Metadata is checked as
 * OpenAI limits it: 16 pairs, keys of 64 characters at most, string
 * values of 512 (characters, not bytes: the body's UTF-8 is valid by
 * then).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "slora_openai_int.h"


#define SLORA_OPENAI_CONV_ADD       20  /* items one call may add */
#define SLORA_OPENAI_META_PAIRS     16
#define SLORA_OPENAI_META_KEY       64
#define SLORA_OPENAI_META_VALUE     512


static int slora_openai_conv_items(cJSON *root, int required, cJSON *msgs,
    slora_openai_err_t *err);
static int slora_openai_conv_print(cJSON *json, char **out,
    slora_openai_err_t *err);
static size_t slora_openai_conv_chars(const char *s);


int
slora_openai_conv_new(const char *body, size_t len, const char *id,
    int64_t created, char **conv, char **obj, slora_openai_err_t *err)
{
    int     rc;
    cJSON  *root, *msgs, *o, *meta;

    *conv = NULL;
    *obj = NULL;

    /* no body at all: a conversation of no items */
    root = len ? slora_openai_root(body, len, err) : cJSON_CreateObject();
    if (root == NULL) {
        return len ? SLORA_ERROR : slora_openai_nomem(err);
    }

    rc = SLORA_ERROR;
    o = NULL;
    msgs = cJSON_CreateArray();

    if (msgs == NULL) {
        slora_openai_nomem(err);
        goto done;
    }

    if (slora_openai_conv_items(root, 0, msgs, err) != SLORA_OK) {
        goto done;
    }

    meta = slora_openai_metadata(root, err);
    if (meta == NULL) {
        goto done;
    }

    o = cJSON_CreateObject();

    if (o == NULL || !cJSON_AddItemToObject(o, "id", cJSON_CreateString(id))
        || cJSON_AddStringToObject(o, "object", "conversation") == NULL
        || cJSON_AddNumberToObject(o, "created_at", (double) created)
           == NULL
        || !cJSON_AddItemToObject(o, "metadata", meta))
    {
        cJSON_Delete(meta);
        slora_openai_nomem(err);
        goto done;
    }

    if (slora_openai_conv_print(msgs, conv, err) != SLORA_OK
        || slora_openai_conv_print(o, obj, err) != SLORA_OK)
    {
        free(*conv);
        *conv = NULL;
        goto done;
    }

    rc = SLORA_OK;

done:

    cJSON_Delete(o);
    cJSON_Delete(msgs);
    cJSON_Delete(root);

    return rc;
}


int
slora_openai_conv_update(const char *body, size_t len, const char *obj,
    size_t obj_len, char **out, slora_openai_err_t *err)
{
    int     rc;
    cJSON  *root, *o, *meta;

    *out = NULL;

    root = slora_openai_root(body, len, err);
    if (root == NULL) {
        return SLORA_ERROR;
    }

    rc = SLORA_ERROR;
    o = cJSON_ParseWithLength(obj, obj_len);

    if (!cJSON_IsObject(o)) {
        slora_openai_fail(err, 500, "server_error", NULL, NULL,
                          "the stored conversation is not an object");
        goto done;
    }

    if (cJSON_GetObjectItemCaseSensitive(root, "metadata") == NULL) {
        slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                          "missing_required_parameter", "metadata",
                          "metadata is required: the conversation's new"
                          " key-value pairs");
        goto done;
    }

    meta = slora_openai_metadata(root, err);
    if (meta == NULL) {
        goto done;
    }

    if (!cJSON_ReplaceItemInObjectCaseSensitive(o, "metadata", meta)) {
        cJSON_Delete(meta);
        slora_openai_nomem(err);
        goto done;
    }

    rc = slora_openai_conv_print(o, out, err);

done:

    cJSON_Delete(o);
    cJSON_Delete(root);

    return rc;
}


int
slora_openai_conv_add(const char *body, size_t len, int places,
    const char *id, size_t id_len, char **out, char **answer,
    slora_openai_err_t *err)
{
    int     rc;
    cJSON  *root, *msgs;

    *out = NULL;
    *answer = NULL;

    root = slora_openai_root(body, len, err);
    if (root == NULL) {
        return SLORA_ERROR;
    }

    rc = SLORA_ERROR;
    msgs = cJSON_CreateArray();

    if (msgs == NULL) {
        slora_openai_nomem(err);
        goto done;
    }

    /* the new messages alone, and their items listed from the place
     * after the conversation's last */
    if (slora_openai_conv_items(root, 1, msgs, err) != SLORA_OK
        || slora_openai_conv_print(msgs, out, err) != SLORA_OK)
    {
        goto done;
    }

    rc = slora_openai_conv_list_from(*out, strlen(*out), places, id, id_len,
                                     answer, err);

done:

    if (rc != SLORA_OK) {
        free(*out);
        *out = NULL;
    }

    cJSON_Delete(msgs);
    cJSON_Delete(root);

    return rc;
}


int
slora_openai_json_count(const char *text, size_t len)
{
    int          depth, n, value;
    const char  *p, *end;

    p = text;
    end = text + len;

    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
    }

    if (p == end || *p++ != '[') {
        return -1;
    }

    depth = 0;
    n = 0;
    value = 0;

    for ( ; p < end; p++) {
        switch (*p) {

        case '"':
            /* a string: to its closing quote, escapes skipped */
            for (p++; p < end && *p != '"'; p++) {
                if (*p == '\\') {
                    p++;
                }
            }

            value = 1;
            break;

        case '[':
        case '{':
            depth++;
            value = 1;
            break;

        case ']':
        case '}':
            if (depth-- == 0) {
                return n + value;
            }

            break;

        case ',':
            if (depth == 0) {
                n++;
                value = 0;
            }

            break;

        case ' ':
        case '\t':
        case '\r':
        case '\n':
            break;

        default:
            value = 1;
        }
    }

    return -1;
}


/*
 * The messages a prompt reads: the removed ones and calls left out, and
 * so is a message of no text (null) and no call left, an assistant's
 * reasoning alone (listed as its reasoning item, slora_openai_items.c):
 * the template has nothing of the assistant's to write it with; where
 * the assistant's message or call comes right after it (added later, or
 * left after a removal), that reasoning is its think block, before its
 * own, as one add of both makes it. An empty text (""), as a client
 * sent it, stays: a removal that leaves one with nothing else marks its
 * message (slora_openai_conv_item).
 */
int
slora_openai_conv_live(cJSON *msgs, slora_openai_err_t *err)
{
    cJSON  *m, *next, *calls, *c, *cn, *content, *r;

    for (m = msgs->child; m != NULL; m = next) {
        next = m->next;
        calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");

        for (c = calls != NULL ? calls->child : NULL; c != NULL; c = cn) {
            cn = c->next;

            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "deleted")))
            {
                cJSON_Delete(cJSON_DetachItemViaPointer(calls, c));
            }
        }

        if (calls != NULL && cJSON_GetArraySize(calls) == 0) {
            cJSON_DeleteItemFromObjectCaseSensitive(m, "tool_calls");
            calls = NULL;
        }

        content = cJSON_GetObjectItemCaseSensitive(m, "content");

        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "deleted"))) {
            cJSON_Delete(cJSON_DetachItemViaPointer(msgs, m));
            continue;
        }

        if (calls != NULL || !cJSON_IsNull(content)) {
            continue;
        }

        r = cJSON_DetachItemFromObjectCaseSensitive(m, "reasoning_content");

        if (cJSON_IsString(r) && next != NULL
            && slora_openai_resp_is(cJSON_GetObjectItemCaseSensitive(next,
                                                                   "role"),
                                    "assistant")
            && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(next,
                                                              "deleted")))
        {
            if (slora_openai_reason_join(next, r, 1, err) != SLORA_OK) {
                cJSON_Delete(cJSON_DetachItemViaPointer(msgs, m));
                return SLORA_ERROR;
            }

            r = NULL;
        }

        cJSON_Delete(r);
        cJSON_Delete(cJSON_DetachItemViaPointer(msgs, m));
    }

    return SLORA_OK;
}


/* The items (at most 20; required: at least one) of a body as chat
 * messages appended to msgs. */
static int
slora_openai_conv_items(cJSON *root, int required, cJSON *msgs,
    slora_openai_err_t *err)
{
    cJSON  *items;

    items = cJSON_GetObjectItemCaseSensitive(root, "items");

    if (!required && (items == NULL || cJSON_IsNull(items))) {
        return SLORA_OK;
    }

    if (!cJSON_IsArray(items)
        || cJSON_GetArraySize(items) > SLORA_OPENAI_CONV_ADD
        || (required && cJSON_GetArraySize(items) == 0))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 items == NULL ? "missing_required_parameter"
                                               : "invalid_type",
                                 "items", "items must be an array of %s%d"
                                 " items", required ? "1 to " : "up to ",
                                 SLORA_OPENAI_CONV_ADD);
    }

    /* a conversation's items: an output's call may be in the
     * conversation, which an add has not at hand, so not looked for; a
     * reasoning item with nothing of the assistant's after it kept as a
     * message of its own, listed and left out of prompts */
    return slora_openai_resp_items(items, "items", msgs, 0, NULL, NULL, err);
}


/* The body's metadata (absent or null: {}), checked; NULL with err set
 * when it breaks OpenAI's limits. */
cJSON *
slora_openai_metadata(cJSON *root, slora_openai_err_t *err)
{
    int     n;
    cJSON  *meta, *kv;

    meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");

    if (meta == NULL || cJSON_IsNull(meta)) {
        meta = cJSON_CreateObject();
        if (meta == NULL) {
            slora_openai_nomem(err);
        }

        return meta;
    }

    if (!cJSON_IsObject(meta)) {
        slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                          "metadata", "metadata must be an object of string"
                          " values");
        return NULL;
    }

    n = 0;

    cJSON_ArrayForEach(kv, meta) {
        if (++n > SLORA_OPENAI_META_PAIRS) {
            slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                              "metadata", "metadata may hold %d pairs at"
                              " most", SLORA_OPENAI_META_PAIRS);
            return NULL;
        }

        if (slora_openai_conv_chars(kv->string) > SLORA_OPENAI_META_KEY) {
            slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                              "metadata", "metadata's keys are %d"
                              " characters at most", SLORA_OPENAI_META_KEY);
            return NULL;
        }

        if (!cJSON_IsString(kv)
            || slora_openai_conv_chars(kv->valuestring)
               > SLORA_OPENAI_META_VALUE)
        {
            slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                              "metadata", "metadata's values are strings of"
                              " %d characters at most",
                              SLORA_OPENAI_META_VALUE);
            return NULL;
        }
    }

    meta = cJSON_Duplicate(meta, 1);
    if (meta == NULL) {
        slora_openai_nomem(err);
    }

    return meta;
}


/* json printed compact into *out (malloc'd). */
static int
slora_openai_conv_print(cJSON *json, char **out, slora_openai_err_t *err)
{
    *out = cJSON_PrintUnformatted(json);

    return *out != NULL ? SLORA_OK : slora_openai_nomem(err);
}


/* The characters of valid UTF-8: its bytes less its continuation bytes. */
static size_t
slora_openai_conv_chars(const char *s)
{
    size_t  n;

    for (n = 0; *s; s++) {
        n += ((unsigned char) *s & 0xc0) != 0x80;
    }

    return n;
}

