/*
 * test_openai_conv.c: the Conversations API's bodies and items
 * (engine/slora_openai_conv.c, engine/slora_openai_items.c).
 *
 *   (a) a new conversation: no body, or items and metadata; its object
 *       and its messages; metadata's limits and bad items each a 400
 *       naming the field.
 *   (b) items added: their messages, to append, and the answer listing
 *       them under ids that go on from the conversation's places (its
 *       messages counted by a scan, checked on strings that hold
 *       brackets, commas and quotes); none, or more than 20, a 400.
 *   (c) the list: newest first by default, asc, limit, after, and a bad
 *       cursor a 400.
 *   (d) an item read and removed: the others keep their ids (a message,
 *       one call of two, an answer's text beside its calls); an unknown
 *       id a 404.
 *   (e) metadata updated; without it a 400.
 *   (f) an answer's items stored with the ids they had: listed and
 *       removed under those.
 *   (g) a reasoning item added (its reasoning_text parts, or its
 *       summary's) is the reasoning_content of the assistant's message
 *       or call after it, and listed back as a reasoning item before
 *       that message's items (rs_ + the place; an answer's under the id
 *       it had; an empty one none); read by its id; removed, its
 *       message's text and calls stay, and removing the text keeps the
 *       reasoning; every other item keeps its id. Several parts, of
 *       reasoning items in a row, joined by newlines. One with nothing
 *       of the assistant's after it a message of its own: listed, in
 *       no prompt.
 *   (h) a removal that leaves an assistant's message nothing to list
 *       (its reasoning or its one call beside an empty text, the
 *       reasoning left after its text) marks it: in no list nor prompt;
 *       one left with its reasoning alone is listed, in no prompt but
 *       as the think block of the assistant's message or call right
 *       after it (added later), as one add of both makes it.
 *   (i) an assistant's message of an empty text alone, added so: listed
 *       as a message of one empty output_text, prompted as an empty
 *       turn, read and removed by its id.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#include "slora_openai.h"


#define CONV_ID  "conv_abc"
/* "é" (two bytes of UTF-8) 8 and 64 times */
#define E8       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" \
                 "\xc3\xa9"
#define E64      E8 E8 E8 E8 E8 E8 E8 E8


static char *list(const char *conv, const char *order, const char *limit,
    const char *after, slora_openai_err_t *err);
static char *drop(char *conv, const char *item, slora_openai_err_t *err);
static int prompt(const char *conv);
static char *think_prompt(const char *conv);
static char *add(const char *body, int n, slora_openai_err_t *err);
static char *made(const char *body);
static void test_empty_text(void);
static char *joined(const char *first, ...);


static void
test_new(void)
{
    int                 rc;
    char               *conv, *obj;
    slora_openai_err_t  err;

    static const char  body[] =
        "{\"items\":[{\"type\":\"message\",\"role\":\"user\",\"content\":"
        "\"Hi\"},{\"role\":\"assistant\",\"content\":[{\"type\":"
        "\"output_text\",\"text\":\"Hello.\"}]}],\"metadata\":{\"topic\":"
        "\"demo\"}}";

    memset(&err, 0, sizeof(err));
    rc = slora_openai_conv_new(NULL, 0, CONV_ID, 1700000000, &conv, &obj,
                               &err);
    ok(rc == SLORA_OK, "no body: a conversation: %s", err.msg);
    is_str(conv, "[]", "no body: no messages");
    is_str(obj, "{\"id\":\"conv_abc\",\"object\":\"conversation\","
           "\"created_at\":1700000000,\"metadata\":{}}",
           "no body: its object, metadata {}");
    free(conv);
    free(obj);

    rc = slora_openai_conv_new(body, sizeof(body) - 1, CONV_ID, 5, &conv,
                               &obj, &err);
    ok(rc == SLORA_OK, "items and metadata: %s", err.msg);
    is_str(conv, "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":"
           "\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
           "\"Hello.\"}]}]", "the items as chat messages");
    is_str(obj, "{\"id\":\"conv_abc\",\"object\":\"conversation\","
           "\"created_at\":5,\"metadata\":{\"topic\":\"demo\"}}",
           "the object with its metadata");
    free(conv);
    free(obj);

    {
        size_t       i;
        const char  *bad[][2] = {
            { "{\"metadata\":{\"a\":1}}", "metadata" },
            { "{\"metadata\":[]}", "metadata" },
            { "{\"metadata\":{\"a\":\"1\",\"b\":\"1\",\"c\":\"1\",\"d\":\"1\","
              "\"e\":\"1\",\"f\":\"1\",\"g\":\"1\",\"h\":\"1\",\"i\":\"1\","
              "\"j\":\"1\",\"k\":\"1\",\"l\":\"1\",\"m\":\"1\",\"n\":\"1\","
              "\"o\":\"1\",\"p\":\"1\",\"q\":\"1\"}}", "metadata" },
            { "{\"metadata\":{\"k12345678901234567890123456789012345678901"
              "23456789012345678901234\":\"v\"}}", "metadata" },
            /* 65 characters of two bytes each */
            { "{\"metadata\":{\"" E64 "\xc3\xa9\":\"v\"}}", "metadata" },
            { "{\"items\":{}}", "items" },
            { "{\"items\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":"
              "\"wizard\",\"content\":\"b\"}]}", "items" },
            { "{\"items\":[{\"type\":\"web_search_call\"}]}", "items" },
            { "[1]", NULL },
        };

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            memset(&err, 0, sizeof(err));
            rc = slora_openai_conv_new(bad[i][0], strlen(bad[i][0]),
                                       CONV_ID, 5, &conv, &obj, &err);
            ok(rc == SLORA_ERROR && err.status == 400 && conv == NULL
               && obj == NULL
               && (bad[i][1] == NULL
                   ? err.param == NULL
                   : err.param != NULL && strcmp(err.param, bad[i][1]) == 0),
               "%s: 400 naming %s: %s", bad[i][0],
               bad[i][1] ? bad[i][1] : "nothing", err.msg);
        }

        ok(strstr(err.msg, "JSON") != NULL || err.code != NULL,
           "the last, not an object, said so: %s", err.msg);

        /* the limits count characters: 128 and 1024 bytes are in */
        memset(&err, 0, sizeof(err));
        rc = slora_openai_conv_new("{\"metadata\":{\"" E64 "\":\""
                                   E64 E64 E64 E64 E64 E64 E64 E64 "\"}}",
                                   sizeof("{\"metadata\":{\"\":\"\"}}") - 1
                                   + 9 * sizeof(E64) - 9,
                                   CONV_ID, 5, &conv, &obj, &err);
        ok(rc == SLORA_OK, "metadata of 64 and 512 two-byte characters: %s",
           err.msg);
        free(conv);
        free(obj);
    }

    {
        char    big[4096];
        size_t  n;
        int     i;

        n = (size_t) snprintf(big, sizeof(big), "{\"items\":[");

        for (i = 0; i < 21; i++) {
            n += (size_t) snprintf(big + n, sizeof(big) - n,
                                   "%s{\"role\":\"user\",\"content\":\"%d\"}",
                                   i ? "," : "", i);
        }

        n += (size_t) snprintf(big + n, sizeof(big) - n, "]}");

        rc = slora_openai_conv_new(big, n, CONV_ID, 5, &conv, &obj, &err);
        ok(rc == SLORA_ERROR && err.status == 400
           && strcmp(err.param, "items") == 0,
           "21 items at once: 400: %s", err.msg);
    }
}


static void
test_add(void)
{
    int                 rc, n;
    char               *out, *answer;
    slora_openai_err_t  err;

    static const char  conv[] =
        "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\","
        "\"content\":\"Hello.\"}]";
    static const char  body[] =
        "{\"items\":[{\"role\":\"user\",\"content\":\"Weather?\"},{\"type\":"
        "\"function_call\",\"call_id\":\"c1\",\"name\":\"get_weather\","
        "\"arguments\":\"{}\"},{\"type\":\"function_call_output\","
        "\"call_id\":\"c1\",\"output\":\"18 C\"}]}";

    memset(&err, 0, sizeof(err));
    n = slora_openai_json_count(conv, sizeof(conv) - 1);
    is_int(n, 2, "the conversation's messages counted: 2");
    rc = slora_openai_conv_add(body, sizeof(body) - 1, n, CONV_ID,
                               sizeof(CONV_ID) - 1, &out, &answer, &err);
    ok(rc == SLORA_OK, "three items added: %s", err.msg);
    is_str(out, "[{\"role\":\"user\",\"content\":\"Weather?\"},{\"role\":"
           "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\","
           "\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
           "\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
           "\"c1\",\"content\":\"18 C\"}]",
           "the three as messages, to append");
    is_str(answer, "{\"object\":\"list\",\"data\":[{\"id\":\"msg_abc_2\","
           "\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":"
           "\"input_text\",\"text\":\"Weather?\"}],\"status\":\"completed\"},"
           "{\"id\":\"fc_abc_3_0\",\"type\":\"function_call\",\"call_id\":"
           "\"c1\",\"name\":\"get_weather\",\"arguments\":\"{}\",\"status\":"
           "\"completed\"},{\"id\":\"fco_abc_4\",\"type\":"
           "\"function_call_output\",\"call_id\":\"c1\",\"output\":\"18 C\","
           "\"status\":\"completed\"}],\"first_id\":\"msg_abc_2\","
           "\"last_id\":\"fco_abc_4\",\"has_more\":false}",
           "the answer: the new items alone, ids from their places on");
    free(out);
    free(answer);

    rc = slora_openai_conv_add("{\"items\":[]}", 12, 2, CONV_ID,
                               sizeof(CONV_ID) - 1, &out, &answer, &err);
    ok(rc == SLORA_ERROR && err.status == 400 && out == NULL
       && answer == NULL && strcmp(err.param, "items") == 0,
       "no items: 400: %s", err.msg);

    rc = slora_openai_conv_add("{}", 2, 2, CONV_ID, sizeof(CONV_ID) - 1,
                               &out, &answer, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.code, "missing_required_parameter") == 0,
       "items missing: 400 missing_required_parameter: %s", err.msg);
}


/* The scan that counts a stored array's messages: strings holding
 * brackets, commas and escaped quotes, nesting, blanks, an empty array,
 * and what is not an array. */
static void
test_count(void)
{
    size_t       i;
    const char  *cases[][2] = {
        { "[]", "0" },
        { " [ ] ", "0" },
        { "[1]", "1" },
        { "[{\"a\":[1,2,{\"b\":\"],[,\"}]},\"x\\\",]\",3]", "3" },
        { "[\"\\\\\",{}]", "2" },
        { "[[],[[]],{}]", "3" },
        { "{\"a\":1}", "-1" },
        { "[1,2", "-1" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        is_int(slora_openai_json_count(cases[i][0], strlen(cases[i][0])),
               atoi(cases[i][1]), "json_count(%s) = %s", cases[i][0],
               cases[i][1]);
    }
}


static void
test_list(void)
{
    char               *out;
    slora_openai_err_t  err;

    static const char  conv[] =
        "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\","
        "\"content\":\"A\"},{\"role\":\"assistant\",\"content\":\"B\"},"
        "{\"role\":\"user\",\"content\":\"C\"}]";
    static const char  tool[] =
        "[{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":"
        "[{\"type\":\"text\",\"text\":\"42 degrees\"}]}]";

    memset(&err, 0, sizeof(err));
    out = list(conv, NULL, "2", NULL, &err);
    ok(out != NULL && strstr(out, "\"first_id\":\"msg_abc_3\","
                                  "\"last_id\":\"msg_abc_2\","
                                  "\"has_more\":true") != NULL,
       "newest first by default, limit 2, more after: %s", out);
    free(out);

    out = list(conv, "asc", "2", "msg_abc_1", &err);
    ok(out != NULL && strstr(out, "\"first_id\":\"msg_abc_2\","
                                  "\"last_id\":\"msg_abc_3\","
                                  "\"has_more\":false") != NULL
       && strstr(out, "\"role\":\"assistant\",\"content\":[{\"type\":"
                      "\"output_text\",\"text\":\"B\"") != NULL,
       "asc after the second: the last two, the answer's output_text: %s",
       out);
    free(out);

    out = list(conv, "desc", "5", "msg_abc_1", &err);
    ok(out != NULL && strstr(out, "\"first_id\":\"msg_abc_0\","
                                  "\"last_id\":\"msg_abc_0\","
                                  "\"has_more\":false") != NULL,
       "desc after the second: the first alone, nothing past it: %s", out);
    free(out);

    out = list(tool, "asc", NULL, NULL, &err);
    ok(out != NULL && strstr(out, "\"type\":\"function_call_output\","
                                  "\"call_id\":\"c1\",\"output\":"
                                  "[{\"type\":\"input_text\",\"text\":"
                                  "\"42 degrees\"}]") != NULL,
       "a call's output given as parts: listed as its text parts: %s", out);
    free(out);

    out = list(conv, NULL, NULL, "msg_zzz_1", &err);
    ok(out == NULL && err.status == 400 && strcmp(err.param, "after") == 0
       && strstr(err.msg, "conversation") != NULL,
       "an unknown cursor: 400: %s", err.msg);

    out = list(conv, "sideways", NULL, NULL, &err);
    ok(out == NULL && err.status == 400 && strcmp(err.param, "order") == 0,
       "a bad order: 400: %s", err.msg);
}


static void
test_item(void)
{
    int                 rc;
    char               *out, *after;
    slora_openai_err_t  err;

    static const char  conv[] =
        "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\","
        "\"content\":\"Let me look.\",\"tool_calls\":[{\"id\":\"c1\","
        "\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":"
        "\"{}\"}},{\"id\":\"c2\",\"type\":\"function\",\"function\":{"
        "\"name\":\"b\",\"arguments\":\"{}\"}}]},{\"role\":\"user\","
        "\"content\":\"Thanks\"}]";

    memset(&err, 0, sizeof(err));
    rc = slora_openai_conv_item(conv, sizeof(conv) - 1, CONV_ID,
                                sizeof(CONV_ID) - 1, "fc_abc_1_1", 10, 0,
                                &out, &err);
    is_str(rc == SLORA_OK ? out : err.msg,
           "{\"id\":\"fc_abc_1_1\",\"type\":\"function_call\",\"call_id\":"
           "\"c2\",\"name\":\"b\",\"arguments\":\"{}\",\"status\":"
           "\"completed\"}", "an item read by its id");
    free(out);

    rc = slora_openai_conv_item(conv, sizeof(conv) - 1, CONV_ID,
                                sizeof(CONV_ID) - 1, "fc_abc_1_0", 10, 1,
                                &out, &err);
    ok(rc == SLORA_OK, "the first call removed: %s", err.msg);
    after = list(out, "asc", NULL, NULL, &err);
    ok(after != NULL && strstr(after, "fc_abc_1_0") == NULL
       && strstr(after, "\"id\":\"fc_abc_1_1\"") != NULL
       && strstr(after, "\"id\":\"msg_abc_1\"") != NULL
       && strstr(after, "\"id\":\"msg_abc_2\"") != NULL,
       "gone from the list; the other call and the rest keep their ids: %s",
       after);
    free(after);

    rc = slora_openai_conv_item(out, strlen(out), CONV_ID,
                                sizeof(CONV_ID) - 1, "msg_abc_1", 9, 1,
                                &after, &err);
    free(out);
    out = after;
    ok(rc == SLORA_OK, "the answer's text removed: %s", err.msg);
    after = list(out, "asc", NULL, NULL, &err);
    ok(after != NULL && strstr(after, "msg_abc_1\"") == NULL
       && strstr(after, "Let me look") == NULL
       && strstr(after, "\"id\":\"fc_abc_1_1\"") != NULL,
       "its text gone, its other call kept: %s", after);
    free(after);

    rc = slora_openai_conv_item(out, strlen(out), CONV_ID,
                                sizeof(CONV_ID) - 1, "msg_abc_0", 9, 1,
                                &after, &err);
    free(out);
    out = after;
    after = list(out, "asc", NULL, NULL, &err);
    ok(rc == SLORA_OK && after != NULL
       && strstr(after, "\"first_id\":\"fc_abc_1_1\",\"last_id\":"
                        "\"msg_abc_2\"") != NULL,
       "the first message removed: the list starts at the call: %s", after);
    free(after);

    rc = slora_openai_conv_item(out, strlen(out), CONV_ID,
                                sizeof(CONV_ID) - 1, "msg_abc_0", 9, 0,
                                &after, &err);
    ok(rc == SLORA_ERROR && err.status == 404
       && strcmp(err.code, "not_found") == 0,
       "a removed item is not found: %s", err.msg);

    rc = slora_openai_conv_item(out, strlen(out), CONV_ID,
                                sizeof(CONV_ID) - 1, "msg_abc_7", 9, 1,
                                &after, &err);
    ok(rc == SLORA_ERROR && err.status == 404 && after == NULL,
       "an unknown item: 404: %s", err.msg);
    free(out);
}


/* An answer's message and calls stored with the ids their items had
 * (item_id) are listed, read and removed under those. */
static void
test_given_ids(void)
{
    int                 rc;
    char               *out, *after;
    slora_openai_err_t  err;

    static const char  conv[] =
        "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\","
        "\"content\":\"Look.\",\"item_id\":\"msg_r00\",\"tool_calls\":[{"
        "\"id\":\"call_r01\",\"type\":\"function\",\"function\":{\"name\":"
        "\"a\",\"arguments\":\"{}\"},\"item_id\":\"fc_r01\"}]}]";

    memset(&err, 0, sizeof(err));
    out = list(conv, "asc", NULL, NULL, &err);
    ok(out != NULL
       && strstr(out, "\"first_id\":\"msg_abc_0\",\"last_id\":\"fc_r01\"")
          != NULL
       && strstr(out, "\"id\":\"msg_r00\"") != NULL
       && strstr(out, "item_id") == NULL,
       "an answer's items listed under the ids they had: %s", out);
    free(out);

    rc = slora_openai_conv_item(conv, sizeof(conv) - 1, CONV_ID,
                                sizeof(CONV_ID) - 1, "fc_r01", 6, 1, &out,
                                &err);
    after = rc == SLORA_OK ? list(out, "asc", NULL, NULL, &err) : NULL;
    ok(after != NULL && strstr(after, "fc_r01") == NULL
       && strstr(after, "msg_r00") != NULL,
       "the call removed by its id, the message kept: %s", after);
    free(after);
    free(out);
}


static void
test_reasoning(void)
{
    int                 rc, n;
    char               *out, *answer, *conv, *after;
    slora_openai_err_t  err;

    static const char  base[] = "[{\"role\":\"user\",\"content\":\"Hi\"}]";
    static const char  body[] =
        "{\"items\":[{\"role\":\"user\",\"content\":\"Weather?\"},{\"type\":"
        "\"reasoning\",\"id\":\"rs_x\",\"summary\":[],\"content\":[{\"type\":"
        "\"reasoning_text\",\"text\":\"Look it up.\"}]},{\"type\":"
        "\"function_call\",\"call_id\":\"c1\",\"name\":\"w\",\"arguments\":"
        "\"{}\"},{\"type\":\"function_call_output\",\"call_id\":\"c1\","
        "\"output\":\"18 C\"},{\"type\":\"reasoning\",\"summary\":[{\"type\":"
        "\"summary_text\",\"text\":\"Mild.\"}]},{\"role\":\"assistant\","
        "\"content\":\"Sunny.\"}]}";
    static const char  given[] =
        "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\","
        "\"content\":\"Sunny.\",\"item_id\":\"msg_r01\",\"reasoning_content\":"
        "\"Hm.\",\"reasoning_item_id\":\"rs_r00\"},{\"role\":\"assistant\","
        "\"content\":\"Yes.\",\"reasoning_content\":\"\"}]";

    memset(&err, 0, sizeof(err));
    n = slora_openai_json_count(base, sizeof(base) - 1);
    rc = slora_openai_conv_add(body, sizeof(body) - 1, n, CONV_ID,
                               sizeof(CONV_ID) - 1, &out, &answer, &err);
    ok(rc == SLORA_OK, "reasoning items added: %s", err.msg);
    is_str(answer, "{\"object\":\"list\",\"data\":[{\"id\":\"msg_abc_1\","
           "\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":"
           "\"input_text\",\"text\":\"Weather?\"}],\"status\":\"completed\"},"
           "{\"id\":\"rs_abc_2\",\"type\":\"reasoning\",\"summary\":[],"
           "\"content\":[{\"type\":\"reasoning_text\",\"text\":"
           "\"Look it up.\"}],\"status\":\"completed\"},{\"id\":\"fc_abc_2_0\","
           "\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"w\","
           "\"arguments\":\"{}\",\"status\":\"completed\"},{\"id\":"
           "\"fco_abc_3\",\"type\":\"function_call_output\",\"call_id\":"
           "\"c1\",\"output\":\"18 C\",\"status\":\"completed\"},{\"id\":"
           "\"rs_abc_4\",\"type\":\"reasoning\",\"summary\":[],\"content\":"
           "[{\"type\":\"reasoning_text\",\"text\":\"Mild.\"}],\"status\":"
           "\"completed\"},{\"id\":\"msg_abc_4\",\"type\":\"message\",\"role\":"
           "\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":"
           "\"Sunny.\",\"annotations\":[]}],\"status\":\"completed\"}],"
           "\"first_id\":\"msg_abc_1\",\"last_id\":\"msg_abc_4\","
           "\"has_more\":false}",
           "the answer lists each reasoning item before its message's items");

    /* the conversation with them: base's messages, then the new ones */
    conv = joined(base, out, NULL);
    free(out);
    free(answer);

    rc = slora_openai_conv_item(conv, strlen(conv), CONV_ID,
                                sizeof(CONV_ID) - 1, "rs_abc_2", 8, 0, &out,
                                &err);
    is_str(rc == SLORA_OK ? out : err.msg,
           "{\"id\":\"rs_abc_2\",\"type\":\"reasoning\",\"summary\":[],"
           "\"content\":[{\"type\":\"reasoning_text\",\"text\":"
           "\"Look it up.\"}],\"status\":\"completed\"}",
           "a reasoning item read by its id");
    free(out);

    rc = slora_openai_conv_item(conv, strlen(conv), CONV_ID,
                                sizeof(CONV_ID) - 1, "rs_abc_2", 8, 1, &out,
                                &err);
    if (rc != SLORA_OK) {
        out = strdup(conv);
    }
    ok(rc == SLORA_OK && strstr(out, "Look it up") == NULL
       && strstr(out, "\"tool_calls\":[{\"id\":\"c1\"") != NULL
       && strstr(out, "deleted") == NULL,
       "removed: its text gone from the message, the call kept, nothing "
       "marked: %s", out);
    after = list(out, "asc", NULL, NULL, &err);
    ok(after != NULL && strstr(after, "rs_abc_2") == NULL
       && strstr(after, "\"first_id\":\"msg_abc_0\",\"last_id\":"
                        "\"msg_abc_4\"") != NULL
       && strstr(after, "\"id\":\"fc_abc_2_0\"") != NULL
       && strstr(after, "\"id\":\"fco_abc_3\"") != NULL
       && strstr(after, "\"id\":\"rs_abc_4\"") != NULL,
       "gone from the list; the call and the rest keep their ids: %s",
       after);
    free(after);
    free(conv);
    conv = out;

    rc = slora_openai_conv_item(conv, strlen(conv), CONV_ID,
                                sizeof(CONV_ID) - 1, "rs_abc_2", 8, 0, &out,
                                &err);
    ok(rc == SLORA_ERROR && err.status == 404,
       "a removed reasoning item is not found: %s", err.msg);
    if (rc == SLORA_OK) {
        free(out);
    }

    rc = slora_openai_conv_item(conv, strlen(conv), CONV_ID,
                                sizeof(CONV_ID) - 1, "msg_abc_4", 9, 1, &out,
                                &err);
    after = rc == SLORA_OK ? list(out, "asc", NULL, NULL, &err) : NULL;
    ok(after != NULL && strstr(after, "msg_abc_4") == NULL
       && strstr(after, "Sunny") == NULL
       && strstr(after, "\"last_id\":\"rs_abc_4\"") != NULL,
       "a message's text removed: its reasoning kept, under its id: %s",
       after);
    free(after);
    free(out);
    free(conv);

    out = list(given, "asc", NULL, NULL, &err);
    ok(out != NULL
       && strstr(out, "\"first_id\":\"msg_abc_0\",\"last_id\":"
                      "\"msg_abc_2\"") != NULL
       && strstr(out, "{\"id\":\"rs_r00\",\"type\":\"reasoning\"") != NULL
       && strstr(out, "\"id\":\"rs_abc_2\"") == NULL
       && strstr(out, "reasoning_item_id") == NULL,
       "an answer's reasoning listed under the id it had; an empty one "
       "not listed: %s", out);
    free(out);

    rc = slora_openai_conv_item(given, sizeof(given) - 1, CONV_ID,
                                sizeof(CONV_ID) - 1, "rs_r00", 6, 1, &out,
                                &err);
    ok(rc == SLORA_OK && strstr(out, "Hm.") == NULL
       && strstr(out, "rs_r00") == NULL
       && strstr(out, "\"item_id\":\"msg_r01\"") != NULL,
       "removed by that id, with it: %s", rc == SLORA_OK ? out : err.msg);
    if (rc == SLORA_OK) {
        free(out);
    }
}


/* A removal that leaves an assistant's message with nothing listed (its
 * reasoning beside an empty text, the one call of an empty text) marks
 * it removed, so no prompt holds an empty turn no listing shows; one
 * left with its reasoning alone is listed, and in no prompt. */
static void
test_emptied(void)
{
    char               *conv, *out;
    slora_openai_err_t  err;

    static const char  body[] =
        "{\"items\":[{\"role\":\"user\",\"content\":\"Hi\"},{\"type\":"
        "\"reasoning\",\"summary\":[{\"type\":\"summary_text\",\"text\":"
        "\"r1\"}]},{\"role\":\"assistant\",\"content\":\"\"},{\"role\":"
        "\"assistant\",\"content\":\"\"},{\"type\":\"function_call\","
        "\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{}\"},{\"type\":"
        "\"function_call_output\",\"call_id\":\"c1\",\"output\":\"x\"},"
        "{\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\","
        "\"text\":\"r4\"}]},{\"role\":\"assistant\",\"content\":"
        "\"Sure.\"},{\"role\":\"user\",\"content\":\"ok\"}]}";

    conv = made(body);

    /* 6 messages and the input's: the empty texts are the client's */
    is_int(prompt(conv), 7, "the conversation prompted, its empty texts "
           "as sent");

    conv = drop(conv, "rs_abc_1", &err);
    out = list(conv, "asc", NULL, NULL, &err);
    ok(strstr(conv, "\"deleted\":true") != NULL && out != NULL
       && strstr(out, "abc_1") == NULL && prompt(conv) == 6,
       "the reasoning of an empty text removed: its message marked, in no "
       "list nor prompt: %s", conv);
    free(out);

    conv = drop(conv, "fc_abc_2_0", &err);
    out = list(conv, "asc", NULL, NULL, &err);
    ok(strstr(conv, "\"content\":\"\",\"tool_calls\"") != NULL
       && strstr(strstr(conv, "\"tool_calls\""), "}],\"deleted\":true")
          != NULL
       && out != NULL && strstr(out, "abc_2") == NULL && prompt(conv) == 5,
       "the one call of an empty text removed: its message marked, in no "
       "list nor prompt: %s", conv);
    free(out);

    conv = drop(conv, "msg_abc_4", &err);
    out = list(conv, "asc", NULL, NULL, &err);
    ok(out != NULL && strstr(out, "\"id\":\"rs_abc_4\"") != NULL
       && strstr(out, "msg_abc_4") == NULL && prompt(conv) == 4,
       "an answer's text removed, its reasoning left: listed, in no prompt: "
       "%s", out);
    free(out);

    conv = drop(conv, "rs_abc_4", &err);
    out = list(conv, "asc", NULL, NULL, &err);
    ok(strstr(conv, "r4") == NULL
       && strstr(conv, "\"content\":null,\"deleted\":true") != NULL
       && out != NULL && strstr(out, "abc_4") == NULL && prompt(conv) == 4,
       "... and that reasoning removed: the message marked: %s", conv);
    free(out);
    free(conv);
}


/* An assistant's message of an empty text alone, added so: an item of
 * its own (a message of one empty output_text), as the prompt reads it
 * (an empty turn), found by its id; removed, in no list nor prompt. */
static void
test_empty_text(void)
{
    int                 rc;
    char               *conv, *out;
    slora_openai_err_t  err;

    static const char  body[] =
        "{\"items\":[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":"
        "\"assistant\",\"content\":\"\"},{\"role\":\"user\",\"content\":"
        "\"ok\"}]}";

    conv = made(body);

    out = list(conv, "asc", NULL, NULL, &err);
    ok(out != NULL
       && strstr(out, "{\"id\":\"msg_abc_1\",\"type\":\"message\","
                      "\"role\":\"assistant\",\"content\":[{\"type\":"
                      "\"output_text\",\"text\":\"\"") != NULL
       && strstr(out, "msg_abc_2") != NULL && prompt(conv) == 4,
       "an empty text added alone: listed, and prompted: %s",
       out != NULL ? out : err.msg);
    free(out);

    rc = slora_openai_conv_item(conv, strlen(conv), CONV_ID,
                                sizeof(CONV_ID) - 1, "msg_abc_1", 9, 0, &out,
                                &err);
    ok(rc == SLORA_OK && strstr(out, "\"role\":\"assistant\"") != NULL,
       "... read by its id: %s", rc == SLORA_OK ? out : err.msg);
    if (rc == SLORA_OK) {
        free(out);
    }

    conv = drop(conv, "msg_abc_1", &err);
    out = list(conv, "asc", NULL, NULL, &err);
    ok(out != NULL && strstr(out, "msg_abc_1") == NULL
       && strstr(out, "msg_abc_2") != NULL && prompt(conv) == 3,
       "... removed: in no list nor prompt, the next item's id kept: %s",
       out != NULL ? out : err.msg);
    free(out);
    free(conv);
}


/* A reasoning item added with nothing of the assistant's after it (a
 * user message next, or last) is kept as an assistant message of its
 * text alone: listed back as a reasoning item, in no prompt. */
static void
test_alone(void)
{
    int                 rc, n;
    char               *out, *answer, *conv, *obj;
    slora_openai_err_t  err;

    static const char  base[] = "[{\"role\":\"user\",\"content\":\"Hi\"}]";
    static const char  body[] =
        "{\"items\":[{\"type\":\"reasoning\",\"summary\":[{\"type\":"
        "\"summary_text\",\"text\":\"r1\"}]},{\"role\":\"user\","
        "\"content\":\"Q\"},{\"type\":\"reasoning\",\"content\":[{\"type\":"
        "\"reasoning_text\",\"text\":\"r3\"}]},{\"type\":\"reasoning\","
        "\"summary\":[]}]}";
    static const char  last[] =
        "{\"items\":[{\"role\":\"user\",\"content\":\"Hi\"},{\"type\":"
        "\"reasoning\",\"summary\":[{\"type\":\"summary_text\",\"text\":"
        "\"r\"}]}]}";

    memset(&err, 0, sizeof(err));
    n = slora_openai_json_count(base, sizeof(base) - 1);
    rc = slora_openai_conv_add(body, sizeof(body) - 1, n, CONV_ID,
                               sizeof(CONV_ID) - 1, &out, &answer, &err);
    is_str(rc == SLORA_OK ? out : err.msg,
           "[{\"role\":\"assistant\",\"content\":null,"
           "\"reasoning_content\":\"r1\"},{\"role\":\"user\",\"content\":"
           "\"Q\"},{\"role\":\"assistant\",\"content\":null,"
           "\"reasoning_content\":\"r3\"}]",
           "reasoning items with nothing of the assistant's after them: "
           "messages of their own, not dropped");
    ok(rc == SLORA_OK
       && strstr(answer, "\"data\":[{\"id\":\"rs_abc_1\",\"type\":"
                         "\"reasoning\"") != NULL
       && strstr(answer, "\"first_id\":\"rs_abc_1\",\"last_id\":"
                         "\"rs_abc_3\"") != NULL
       && strstr(answer, "\"id\":\"msg_abc_2\"") != NULL,
       "listed as the reasoning items added: %s",
       rc == SLORA_OK ? answer : err.msg);

    if (rc != SLORA_OK) {
        return;
    }

    conv = joined(base, out, NULL);
    free(out);
    free(answer);

    is_int(prompt(conv), 3, "in no prompt: the two user messages and the "
           "input's");
    free(conv);

    rc = slora_openai_conv_new(last, sizeof(last) - 1, CONV_ID, 5, &out,
                               &obj, &err);
    is_str(rc == SLORA_OK ? out : err.msg,
           "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":"
           "\"assistant\",\"content\":null,\"reasoning_content\":\"r\"}]",
           "a new conversation's last reasoning item kept too");

    if (rc == SLORA_OK) {
        free(out);
        free(obj);
    }
}


/* Reasoning added alone and the assistant's call added after it, in
 * another add: the prompt gives the call that reasoning as its think
 * block, as one add of both does (Qwen3's think turns write it back);
 * reasoning alone before a user message stays in no prompt. */
static void
test_later(void)
{
    char                *one, *first, *second, *both, *apart, *pa, *pb;
    slora_openai_err_t   err;

    static const char  base[] = "[{\"role\":\"user\",\"content\":\"Hi\"}]";
    static const char  rs[] =
        "{\"items\":[{\"type\":\"reasoning\",\"content\":[{\"type\":"
        "\"reasoning_text\",\"text\":\"plan\"}]}]}";
    static const char  call[] =
        "{\"items\":[{\"type\":\"function_call\",\"call_id\":\"c1\","
        "\"name\":\"f\",\"arguments\":\"{}\"}]}";
    static const char  all[] =
        "{\"items\":[{\"type\":\"reasoning\",\"content\":[{\"type\":"
        "\"reasoning_text\",\"text\":\"plan\"}]},{\"type\":"
        "\"function_call\",\"call_id\":\"c1\",\"name\":\"f\","
        "\"arguments\":\"{}\"}]}";

    memset(&err, 0, sizeof(err));
    one = add(all, 1, &err);
    first = add(rs, 1, &err);
    second = add(call, 2, &err);

    if (one == NULL || first == NULL || second == NULL) {
        ok(0, "adds refused: %s", err.msg);
        free(one);
        free(first);
        free(second);
        return;
    }

    /* base's messages, then each add's */
    both = joined(base, one, NULL);
    apart = joined(base, first, second, NULL);

    pa = think_prompt(both);
    pb = think_prompt(apart);
    ok(pa != NULL && pb != NULL && strcmp(pa, pb) == 0
       && strstr(pb, "plan") != NULL,
       "reasoning added, then its call in another add: the call's think "
       "block, the prompt one add of both gives (%s)", pb ? pb : "refused");
    free(pa);
    free(pb);

    /* the reasoning before a user message: still in no prompt */
    free(apart);
    apart = joined(base, first, base, second, NULL);
    pb = think_prompt(apart);
    ok(pb != NULL && strstr(pb, "plan") == NULL,
       "reasoning alone before a user message: in no prompt (%s)",
       pb ? pb : "refused");
    free(pb);

    free(one);
    free(first);
    free(second);
    free(both);
    free(apart);
}


/* Reasoning items' parts joined: each part of each, by newlines, into
 * the reasoning_content of the assistant's message after them; an item
 * of no parts adds nothing, and one of an empty part an empty text. */
static void
test_joined(void)
{
    int                 rc;
    char               *conv, *obj;
    slora_openai_err_t  err;

    static const char  body[] =
        "{\"items\":[{\"role\":\"user\",\"content\":\"Q\"},{\"type\":"
        "\"reasoning\",\"content\":[{\"type\":\"reasoning_text\",\"text\":"
        "\"a\"},{\"type\":\"reasoning_text\",\"text\":\"b\"}]},{\"type\":"
        "\"reasoning\",\"content\":[],\"summary\":[{\"type\":"
        "\"summary_text\",\"text\":\"c\"}]},{\"type\":\"reasoning\","
        "\"summary\":[]},{\"role\":\"assistant\",\"content\":\"A\"},"
        "{\"type\":\"reasoning\",\"summary\":[]},{\"role\":\"assistant\","
        "\"content\":\"B\"},{\"type\":\"reasoning\",\"content\":[{\"type\":"
        "\"reasoning_text\",\"text\":\"\"}]},{\"role\":\"assistant\","
        "\"content\":\"C\"}]}";

    memset(&err, 0, sizeof(err));
    rc = slora_openai_conv_new(body, sizeof(body) - 1, CONV_ID, 5, &conv,
                               &obj, &err);
    is_str(rc == SLORA_OK ? conv : err.msg,
           "[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":"
           "\"assistant\",\"content\":\"A\",\"reasoning_content\":"
           "\"a\\nb\\nc\"},{\"role\":\"assistant\",\"content\":\"B\"},"
           "{\"role\":\"assistant\",\"content\":\"C\",\"reasoning_content\":"
           "\"\"}]", "reasoning items' parts joined by newlines; none of no "
           "parts, an empty one of an empty part");

    if (rc == SLORA_OK) {
        free(conv);
        free(obj);
    }
}


static void
test_update(void)
{
    int                 rc;
    char               *out;
    slora_openai_err_t  err;

    static const char  obj[] =
        "{\"id\":\"conv_abc\",\"object\":\"conversation\",\"created_at\":5,"
        "\"metadata\":{\"a\":\"1\"}}";

    memset(&err, 0, sizeof(err));
    rc = slora_openai_conv_update("{\"metadata\":{\"b\":\"2\"}}", 22, obj,
                                  sizeof(obj) - 1, &out, &err);
    is_str(rc == SLORA_OK ? out : err.msg,
           "{\"id\":\"conv_abc\",\"object\":\"conversation\",\"created_at\":"
           "5,\"metadata\":{\"b\":\"2\"}}", "metadata replaced");
    free(out);

    rc = slora_openai_conv_update("{}", 2, obj, sizeof(obj) - 1, &out, &err);
    ok(rc == SLORA_ERROR && err.status == 400 && out == NULL
       && strcmp(err.code, "missing_required_parameter") == 0,
       "no metadata: 400: %s", err.msg);
}


int
main(void)
{
    test_new();
    test_add();
    test_count();
    test_list();
    test_item();
    test_given_ids();
    test_reasoning();
    test_joined();
    test_emptied();
    test_empty_text();
    test_alone();
    test_later();
    test_update();

    done_testing();
}


/* A page of conv's items: NULL with err set where the query is bad. */
static char *
list(const char *conv, const char *order, const char *limit,
    const char *after, slora_openai_err_t *err)
{
    char                    *out;
    slora_openai_items_q_t   q;

    memset(&q, 0, sizeof(q));
    q.order.data = order;
    q.order.len = order ? strlen(order) : 0;
    q.limit.data = limit;
    q.limit.len = limit ? strlen(limit) : 0;
    q.after.data = after;
    q.after.len = after ? strlen(after) : 0;

    if (slora_openai_conv_list(conv, strlen(conv), CONV_ID,
                               sizeof(CONV_ID) - 1, &q, &out, err)
        != SLORA_OK)
    {
        return NULL;
    }

    return out;
}


/* conv (freed) with its item removed; BAIL_OUT where it cannot be. */
static char *
drop(char *conv, const char *item, slora_openai_err_t *err)
{
    char  *out;

    if (slora_openai_conv_item(conv, strlen(conv), CONV_ID,
                               sizeof(CONV_ID) - 1, item, strlen(item), 1,
                               &out, err)
        != SLORA_OK)
    {
        BAIL_OUT("%s not removed: %s", item, err->msg);
    }

    free(conv);

    return out;
}


/* The lookup of prompt(): the conversation is data. */
static int
lookup(void *data, slora_openai_stored_e what, const char *id, size_t len,
    const char **conv, size_t *conv_len)
{
    (void) what;
    (void) id;
    (void) len;

    *conv = data;
    *conv_len = strlen(data);

    return SLORA_OK;
}


/* The chat messages of a Responses request continuing conv with one
 * more user message (what its prompt renders); -1 where it is refused. */
static int
prompt(const char *conv)
{
    int                 n;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  body[] =
        "{\"model\":\"m\",\"conversation\":\"conv_abc\",\"input\":"
        "\"next\"}";

    memset(&err, 0, sizeof(err));

    n = slora_openai_parse_responses(body, sizeof(body) - 1, NULL, lookup,
                                     (void *) conv, &req, &err)
        == SLORA_OK ? (int) req.n_msgs : -1;

    if (n < 0) {
        diag("refused: %s", err.msg);
    }

    slora_openai_req_free(&req);

    return n;
}


/* The messages of a conversation made from body; BAIL_OUT where it
 * cannot be. */
static char *
made(const char *body)
{
    char                *conv, *obj;
    slora_openai_err_t   err;

    memset(&err, 0, sizeof(err));

    if (slora_openai_conv_new(body, strlen(body), CONV_ID, 5, &conv, &obj,
                              &err)
        != SLORA_OK)
    {
        BAIL_OUT("a conversation not made: %s", err.msg);
    }

    free(obj);

    return conv;
}


/* The messages a body's items add after n messages (the conversation's
 * JSON array); NULL where refused. */
static char *
add(const char *body, int n, slora_openai_err_t *err)
{
    char  *out, *answer;

    if (slora_openai_conv_add(body, strlen(body), n, CONV_ID,
                              sizeof(CONV_ID) - 1, &out, &answer, err)
        != SLORA_OK)
    {
        return NULL;
    }

    free(answer);

    return out;
}


/* The messages of a Responses request continuing conv with call c1's
 * output (so the assistant's turns before it are past the last user
 * query), under Qwen3's think turns (ChatML): each one's role and text,
 * one a line, to free; NULL where it is refused. */
static char *
think_prompt(const char *conv)
{
    char                   *out;
    size_t                  len, at;
    uint32_t                i;
    slora_openai_req_t      req;
    slora_openai_err_t      err;
    slora_openai_limits_t   lim;

    static const char  body[] =
        "{\"model\":\"m\",\"conversation\":\"conv_abc\",\"input\":"
        "[{\"type\":\"function_call_output\",\"call_id\":\"c1\","
        "\"output\":\"R\"}]}";

    memset(&err, 0, sizeof(err));
    lim = slora_openai_default_limits;
    lim.chat = SLORA_CHAT_CHATML;
    lim.chat_flags = SLORA_CHAT_THINK_TURNS;

    if (slora_openai_parse_responses(body, sizeof(body) - 1, &lim, lookup,
                                     (void *) conv, &req, &err)
        != SLORA_OK)
    {
        diag("refused: %s", err.msg);
        return NULL;
    }

    len = 1;
    for (i = 0; i < req.n_msgs; i++) {
        len += strlen(req.msgs[i].role) + req.msgs[i].content_len + 3;
    }

    out = malloc(len);
    if (out == NULL) {
        BAIL_OUT("out of memory");
    }

    at = 0;
    for (i = 0; i < req.n_msgs; i++) {
        at += (size_t) snprintf(out + at, len - at, "%s: %.*s\n",
                                req.msgs[i].role,
                                (int) req.msgs[i].content_len,
                                req.msgs[i].content);
    }

    slora_openai_req_free(&req);

    return out;
}


/* The messages of JSON arrays (non-empty; NULL after the last) as one
 * array, a conversation stored add after add, to free. */
static char *
joined(const char *first, ...)
{
    char        *out;
    size_t       len, at, n;
    va_list      ap;
    const char  *a;

    len = 2;
    va_start(ap, first);
    for (a = first; a != NULL; a = va_arg(ap, const char *)) {
        len += strlen(a) - 1;
    }
    va_end(ap);

    out = malloc(len);
    if (out == NULL) {
        BAIL_OUT("out of memory");
    }

    out[0] = '[';
    at = 1;
    va_start(ap, first);
    for (a = first; a != NULL; a = va_arg(ap, const char *)) {
        /* its items, between its brackets; a comma before all but the
         * first array's */
        n = strlen(a) - 2;
        if (at > 1) {
            out[at++] = ',';
        }
        memcpy(out + at, a + 1, n);
        at += n;
    }
    va_end(ap);

    out[at++] = ']';
    out[at] = '\0';

    return out;
}
