/*
 * test_openai_items.c: a stored response's input items
 * (engine/slora_openai_items.c).
 *
 *   (a) a conversation of every kind of message (system, developer, a
 *       user's text parts, an assistant's reasoning, text and two calls,
 *       two tool results, the answer last) lists as the Responses API's
 *       items, each field as written, the reasoning an item before its
 *       message's (shaped as the response's reasoning output item), the
 *       answer left out, ids from the response id and the place;
 *   (b) pages: newest first by default, oldest first with order asc,
 *       limit, has_more, first_id and last_id, after (a reasoning item's
 *       id too); walking the pages gives every item once;
 *   (c) a bad limit, order or after is a 400 naming it.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tap.h"

#include "slora_openai.h"


#define ID  "resp_0123456789abcdef01234567"
#define HEX "0123456789abcdef01234567"

static const char  conv[] =
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"developer\",\"content\":\"Use metric.\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Paris\"},"
    "{\"type\":\"text\",\"text\":\" and Rome?\"}]},"
    "{\"role\":\"assistant\",\"content\":\"Looking.\",\"reasoning_content\":"
    "\"Both cities.\",\"tool_calls\":["
    "{\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"w\","
    "\"arguments\":\"{\\\"c\\\":\\\"Paris\\\"}\"}},"
    "{\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"w\","
    "\"arguments\":\"{}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_a\",\"content\":\"18 C\"},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_b\",\"content\":\"20 C\","
    "\"reasoning_content\":\"not a tool's\"},"
    "{\"role\":\"assistant\",\"content\":\"Both mild.\","
    "\"reasoning_content\":\"Say so.\"}]";

/* the items oldest first, as compact JSON */
static const char  *want[] = {
    "{\"id\":\"msg_" HEX "_0\",\"type\":\"message\",\"role\":\"system\","
    "\"content\":[{\"type\":\"input_text\",\"text\":\"Be brief.\"}],"
    "\"status\":\"completed\"}",
    "{\"id\":\"msg_" HEX "_1\",\"type\":\"message\",\"role\":\"developer\","
    "\"content\":[{\"type\":\"input_text\",\"text\":\"Use metric.\"}],"
    "\"status\":\"completed\"}",
    "{\"id\":\"msg_" HEX "_2\",\"type\":\"message\",\"role\":\"user\","
    "\"content\":[{\"type\":\"input_text\",\"text\":\"Paris\"},"
    "{\"type\":\"input_text\",\"text\":\" and Rome?\"}],"
    "\"status\":\"completed\"}",
    "{\"id\":\"rs_" HEX "_3\",\"type\":\"reasoning\",\"summary\":[],"
    "\"content\":[{\"type\":\"reasoning_text\",\"text\":\"Both cities.\"}],"
    "\"status\":\"completed\"}",
    "{\"id\":\"msg_" HEX "_3\",\"type\":\"message\",\"role\":\"assistant\","
    "\"content\":[{\"type\":\"output_text\",\"text\":\"Looking.\","
    "\"annotations\":[]}],\"status\":\"completed\"}",
    "{\"id\":\"fc_" HEX "_3_0\",\"type\":\"function_call\",\"call_id\":"
    "\"call_a\",\"name\":\"w\",\"arguments\":\"{\\\"c\\\":\\\"Paris\\\"}\","
    "\"status\":\"completed\"}",
    "{\"id\":\"fc_" HEX "_3_1\",\"type\":\"function_call\",\"call_id\":"
    "\"call_b\",\"name\":\"w\",\"arguments\":\"{}\",\"status\":"
    "\"completed\"}",
    "{\"id\":\"fco_" HEX "_4\",\"type\":\"function_call_output\","
    "\"call_id\":\"call_a\",\"output\":\"18 C\",\"status\":\"completed\"}",
    "{\"id\":\"fco_" HEX "_5\",\"type\":\"function_call_output\","
    "\"call_id\":\"call_b\",\"output\":\"20 C\",\"status\":\"completed\"}",
};

#define N_ITEMS  ((int) (sizeof(want) / sizeof(want[0])))


static cJSON *list(const char *limit, const char *order, const char *after,
    slora_openai_err_t *err);
static void set(slora_openai_str_t *s, const char *v);
static const char *item_id(int k);


int
main(void)
{
    int                 k, same, seen, pages;
    char               *text, after[128];
    cJSON              *l, *data, *it;
    slora_openai_err_t  err;

    /* (a) */
    l = list(NULL, "asc", NULL, &err);
    data = cJSON_GetObjectItemCaseSensitive(l, "data");
    same = cJSON_GetArraySize(data) == N_ITEMS;
    k = 0;

    cJSON_ArrayForEach(it, data) {
        text = cJSON_PrintUnformatted(it);
        if (k >= N_ITEMS || strcmp(text, want[k]) != 0) {
            diag("item %d: %s", k, text);
            same = 0;
        }
        free(text);
        k++;
    }

    ok(same, "every message but the answer as the API's items, oldest "
       "first, each field as stored");
    ok(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(l, "has_more"))
       && strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                     l, "object")), "list") == 0
       && strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                     l, "first_id")), item_id(0)) == 0
       && strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                     l, "last_id")), item_id(N_ITEMS - 1)) == 0,
       "a list object: first_id, last_id, has_more false");
    cJSON_Delete(l);

    /* (b) */
    l = list(NULL, NULL, NULL, &err);
    data = cJSON_GetObjectItemCaseSensitive(l, "data");
    same = cJSON_GetArraySize(data) == N_ITEMS;

    for (k = 0; k < N_ITEMS && same; k++) {
        same = strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                          cJSON_GetArrayItem(data, k), "id")),
                      item_id(N_ITEMS - 1 - k)) == 0;
    }

    ok(same, "by default newest first");
    cJSON_Delete(l);

    l = list("3", "asc", NULL, &err);
    data = cJSON_GetObjectItemCaseSensitive(l, "data");
    ok(cJSON_GetArraySize(data) == 3
       && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "has_more"))
       && strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                     l, "last_id")), item_id(2)) == 0,
       "limit 3: three items, has_more, last_id the third");
    cJSON_Delete(l);

    for (k = 0; k < 2; k++) {
        after[0] = '\0';
        seen = 0;
        same = 1;

        for (pages = 0; pages < 10; pages++) {
            l = list("3", k ? "desc" : "asc", after[0] ? after : NULL, &err);
            data = cJSON_GetObjectItemCaseSensitive(l, "data");

            cJSON_ArrayForEach(it, data) {
                same &= seen < N_ITEMS
                        && strcmp(cJSON_GetStringValue(
                                      cJSON_GetObjectItemCaseSensitive(it,
                                                                       "id")),
                                  item_id(k ? N_ITEMS - 1 - seen : seen))
                           == 0;
                seen++;
            }

            if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l,
                                                               "has_more")))
            {
                cJSON_Delete(l);
                break;
            }

            snprintf(after, sizeof(after), "%s",
                     cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                         l, "last_id")));
            cJSON_Delete(l);
        }

        ok(same && seen == N_ITEMS && pages == 2, "%s, pages of 3 by after: "
           "every item once, in order, in 3 pages", k ? "desc" : "asc");
    }

    l = list("2", "asc", "rs_" HEX "_3", &err);
    ok(l != NULL
       && strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                     l, "first_id")), "msg_" HEX "_3") == 0
       && strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                     l, "last_id")), "fc_" HEX "_3_0") == 0,
       "after a reasoning item: its message's text and first call");
    cJSON_Delete(l);

    l = list("5", "asc", item_id(N_ITEMS - 1), &err);
    ok(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(l, "data")) == 0
       && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(l, "first_id"))
       && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(l, "last_id"))
       && cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(l, "has_more")),
       "after the last: an empty page, null ids");
    cJSON_Delete(l);

    /* (c) */
    {
        static const char  *bad[][4] = {
            { "0", NULL, NULL, "limit" },
            { "101", NULL, NULL, "limit" },
            { "2x", NULL, NULL, "limit" },
            { "", NULL, NULL, "limit" },
            { NULL, "up", NULL, "order" },
            { NULL, NULL, "msg_" HEX "_99", "after" },
            { NULL, NULL, "msg_" HEX "_6", "after" },   /* the answer */
            { NULL, NULL, "rs_" HEX "_6", "after" },    /* its reasoning */
        };

        for (k = 0; k < (int) (sizeof(bad) / sizeof(bad[0])); k++) {
            l = list(bad[k][0], bad[k][1], bad[k][2], &err);
            ok(l == NULL && err.status == 400 && err.param != NULL
               && strcmp(err.param, bad[k][3]) == 0,
               "limit %s, order %s, after %s: 400 naming %s (%s)",
               bad[k][0] ? bad[k][0] : "-", bad[k][1] ? bad[k][1] : "-",
               bad[k][2] ? bad[k][2] : "-", bad[k][3], err.msg);
            cJSON_Delete(l);
        }
    }

    l = list("100", NULL, NULL, &err);
    ok(l != NULL, "limit 100 taken");
    cJSON_Delete(l);

    return done_testing();
}


/* The page for the query (NULL: absent), parsed; NULL on an error. */
static cJSON *
list(const char *limit, const char *order, const char *after,
    slora_openai_err_t *err)
{
    int                     rc;
    char                   *text;
    cJSON                  *l;
    slora_openai_items_q_t  q;

    memset(&q, 0, sizeof(slora_openai_items_q_t));
    memset(err, 0, sizeof(slora_openai_err_t));
    set(&q.limit, limit);
    set(&q.order, order);
    set(&q.after, after);

    rc = slora_openai_input_items(conv, sizeof(conv) - 1, ID,
                                  sizeof(ID) - 1, &q, &text, err);
    if (rc != SLORA_OK) {
        return NULL;
    }

    l = cJSON_Parse(text);
    free(text);

    return l;
}


static void
set(slora_openai_str_t *s, const char *v)
{
    s->data = v;
    s->len = v != NULL ? strlen(v) : 0;
}


/* The id of the k-th item, oldest first. */
static const char *
item_id(int k)
{
    static char   id[N_ITEMS][128];
    cJSON        *it;

    it = cJSON_Parse(want[k]);
    snprintf(id[k], sizeof(id[k]), "%s",
             cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it,
                                                                   "id")));
    cJSON_Delete(it);

    return id[k];
}
