/*
 * slora_openai_messages.c: a chat's messages as the request parser reads
 * them (slora_openai.c calls it in its fixed order): each message's role
 * and content, text parts joined, an assistant's refusal read as its
 * text, its calls and a tool's results made in the template's format
 * (slora_openai_tools.c), and Qwen3's think blocks of earlier turns
 * (slora_openai_think.c); and chat's echo and prediction, contents
 * alike.
 */

#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "slora_openai_int.h"


static size_t slora_openai_last_query(cJSON *msgs,
    slora_openai_req_t *req);
static int slora_openai_content(cJSON *m, size_t i, slora_chat_msg_t *cm,
    slora_openai_req_t *req, slora_openai_err_t *err);
static int slora_openai_text(cJSON *content, int refusal,
    const char *param, const char *what, slora_openai_str_t *out,
    slora_openai_req_t *req, slora_openai_err_t *err);
static cJSON *slora_openai_part(cJSON *part, int refusal);


int
slora_openai_messages(cJSON *msgs, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    int                 rc, prev_tool;
    size_t              i, k, query;
    cJSON              *m, *role;
    slora_chat_msg_t   *cm;
    slora_openai_str_t  s;

    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 msgs ? "invalid_type"
                                      : "missing_required_parameter",
                                 "messages", "messages must be a non-empty"
                                 " array");
    }

    req->n_msgs = (uint32_t) cJSON_GetArraySize(msgs);
    req->msgs = slora_openai_alloc(req,
                                   req->n_msgs * sizeof(slora_chat_msg_t));
    if (req->msgs == NULL) {
        return slora_openai_nomem(err);
    }

    memset(req->msgs, 0, req->n_msgs * sizeof(slora_chat_msg_t));

    /* k: the client's message; i: the chat's (tool messages in a row
     * are one turn) */
    i = 0;
    k = 0;
    prev_tool = 0;
    query = (req->chat_flags & SLORA_CHAT_THINK_TURNS)
            ? slora_openai_last_query(msgs, req) : 0;

    cJSON_ArrayForEach(m, msgs) {
        cm = &req->msgs[i];

        if (!cJSON_IsObject(m)) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", "messages",
                                     "messages[%zu] must be an object", k);
        }

        role = cJSON_GetObjectItemCaseSensitive(m, "role");

        if (slora_openai_string(role, "messages.role", &s, req, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        /* OpenAI's newer "developer" is its instructions' role, which the
         * models served here were tuned to read as "system" */
        if (s.len == 9 && memcmp(s.data, "developer", 9) == 0) {
            s.data = "system";
            s.len = 6;
        }

        if (!((s.len == 6 && memcmp(s.data, "system", 6) == 0)
              || (s.len == 4 && memcmp(s.data, "user", 4) == 0)
              || (s.len == 4 && memcmp(s.data, "tool", 4) == 0)
              || (s.len == 9 && memcmp(s.data, "assistant", 9) == 0)))
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "messages.role",
                                     "messages[%zu].role must be system,"
                                     " developer, user, assistant or tool",
                                     k);
        }

        cm->role = s.data;
        cm->role_len = s.len;

        if (slora_openai_content(m, k, cm, req, err) != SLORA_OK
            || slora_openai_msg_unsupported(m, k, err) != SLORA_OK
            || ((req->chat_flags & SLORA_CHAT_THINK_TURNS)
                && s.len == 9 && memcmp(s.data, "assistant", 9) == 0
                && slora_openai_think_turn(m, k, query, m->next == NULL, cm,
                                           req, err)
                   != SLORA_OK))
        {
            return SLORA_ERROR;
        }

        rc = slora_openai_tool_message(m, k, cm,
                                       prev_tool ? &req->msgs[i - 1] : NULL,
                                       req, err);
        if (rc == SLORA_ERROR) {
            return SLORA_ERROR;
        }

        prev_tool = s.len == 4 && memcmp(s.data, "tool", 4) == 0;
        i += rc != SLORA_DONE;
        k++;
    }

    req->n_msgs = (uint32_t) i;

    return SLORA_OK;
}


/*
 * The index of msgs' last user query (Qwen3's last_query_index: the last
 * user message whose content is not a tool's result, as the template
 * reads it: the content as this parser reads it, its text parts joined),
 * else the last message's; read before the messages are, since an
 * assistant's think block is kept only past it. A message this cannot
 * read is passed over: the messages' loop refuses it, in its order.
 */
static size_t
slora_openai_last_query(cJSON *msgs, slora_openai_req_t *req)
{
    size_t              k, query;
    cJSON              *m, *role;
    slora_chat_msg_t    cm;
    slora_openai_err_t  err;

    query = (size_t) cJSON_GetArraySize(msgs) - 1;
    k = 0;

    cJSON_ArrayForEach(m, msgs) {
        role = cJSON_GetObjectItemCaseSensitive(m, "role");

        if (cJSON_IsString(role) && strcmp(role->valuestring, "user") == 0) {
            memset(&cm, 0, sizeof(slora_chat_msg_t));
            cm.role = "user";
            cm.role_len = 4;

            if (slora_openai_content(m, k, &cm, req, &err) == SLORA_OK
                && slora_openai_think_query(cm.content, cm.content_len))
            {
                query = k;
            }
        }

        k++;
    }

    return query;
}


/*
 * A message's content: a string, null (or absent), or an array of text
 * parts, concatenated. An assistant's may hold refusal parts
 * ({"type": "refusal", "refusal": ...}), and its refusal field (the
 * answer's refusal, sent back) follows its content: both are what the
 * assistant said, read as its text.
 */
static int
slora_openai_content(cJSON *m, size_t i, slora_chat_msg_t *cm,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    int                 asst;
    char                what[48], *p;
    cJSON              *content, *refusal;
    slora_openai_str_t  s, r;

    asst = cm->role_len == 9 && memcmp(cm->role, "assistant", 9) == 0;
    content = cJSON_GetObjectItemCaseSensitive(m, "content");
    refusal = asst ? cJSON_GetObjectItemCaseSensitive(m, "refusal") : NULL;

    s.data = "";
    s.len = 0;

    if (content != NULL && !cJSON_IsNull(content)) {
        snprintf(what, sizeof(what), "messages[%zu].content", i);

        if (slora_openai_text(content, asst, "messages.content", what, &s,
                              req, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }
    }

    if (refusal != NULL && !cJSON_IsNull(refusal)) {
        if (!cJSON_IsString(refusal)) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", "messages.refusal",
                                     "messages[%zu].refusal must be a "
                                     "string", i);
        }

        if (slora_openai_string(refusal, "messages.refusal", &r, req, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        if (r.len > 0) {
            p = slora_openai_alloc(req, s.len + r.len + 1);
            if (p == NULL) {
                return slora_openai_nomem(err);
            }

            memcpy(p, s.data, s.len);
            memcpy(p + s.len, r.data, r.len + 1);
            s.data = p;
            s.len += r.len;
        }
    }

    cm->content = s.data;
    cm->content_len = s.len;

    return SLORA_OK;
}


/*
 * A content: a string, or an array of text parts ({"type": "text",
 * "text": ...}) joined by newlines (as vLLM's and llama.cpp's servers
 * join them for a template that takes a string), with refusal parts
 * ({"type": "refusal", "refusal": ...}) where refusal is set (an
 * assistant's); a part of another type (an image's, beside a text or
 * not) is refused, not dropped; param names it in errors, what in
 * their messages.
 */
static int
slora_openai_text(cJSON *content, int refusal, const char *param,
    const char *what, slora_openai_str_t *out, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    char        *p;
    size_t       len, n;
    cJSON       *part, *text, *type;
    const char  *name;

    if (!cJSON_IsArray(content)) {
        return slora_openai_string(content, param, out, req, err);
    }

    len = 0;

    cJSON_ArrayForEach(part, content) {
        type = cJSON_GetObjectItemCaseSensitive(part, "type");

        if (type != NULL
            && !(cJSON_IsString(type)
                 && (strcmp(type->valuestring, "text") == 0
                     || (refusal
                         && strcmp(type->valuestring, "refusal") == 0))))
        {
            name = cJSON_IsString(type) ? type->valuestring
                                        : "other than a string";

            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", param,
                                     "%s parts must be text parts: this"
                                     " server reads text, not a part of"
                                     " type %.*s", what,
                                     slora_utf8_cut(name, 32), name);
        }

        text = slora_openai_part(part, refusal);

        if (!cJSON_IsString(text)) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", param,
                                     "%s parts must be text parts", what);
        }

        /* a newline before each part but the first */
        len += (part != content->child) + strlen(text->valuestring);
    }

    p = slora_openai_alloc(req, len + 1);
    if (p == NULL) {
        return slora_openai_nomem(err);
    }

    out->data = p;
    out->len = len;

    cJSON_ArrayForEach(part, content) {
        if (part != content->child) {
            *p++ = '\n';
        }

        text = slora_openai_part(part, refusal);
        n = strlen(text->valuestring);
        memcpy(p, text->valuestring, n);
        p += n;
    }

    *p = '\0';

    if (!slora_utf8_text_valid(out->data, len)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_utf8",
                                 param, "%s is not valid UTF-8", what);
    }

    return SLORA_OK;
}


/* A part's text: a refusal part's refusal (where taken), else its
 * text. */
static cJSON *
slora_openai_part(cJSON *part, int refusal)
{
    cJSON  *type;

    type = cJSON_GetObjectItemCaseSensitive(part, "type");

    if (refusal && cJSON_IsString(type)
        && strcmp(type->valuestring, "refusal") == 0)
    {
        return cJSON_GetObjectItemCaseSensitive(part, "refusal");
    }

    return cJSON_GetObjectItemCaseSensitive(part, "text");
}


/*
 * vLLM's chat echo (a boolean, default false): the answer's content
 * begins with the last message's text where that message's role is the
 * answer's, the assistant's with add_generation_prompt (a prefilled
 * answer), any without it (vLLM answers in the last message's role;
 * here the message's role stays "assistant"). Its text read again as
 * the client wrote it, parts joined by newlines: the messages' loop has
 * by now rewritten a message in its template's format (a think block
 * written back, tool calls).
 */
int
slora_openai_chat_echo(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    int                k;
    cJSON             *msgs, *last, *role;
    unsigned           flag;
    slora_chat_msg_t   cm;

    flag = 0;

    if (slora_openai_bool(root, "echo", &flag, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (!flag) {
        return SLORA_OK;
    }

    /* the messages' loop has read them: an array of objects, a role a
     * string each */
    msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    k = cJSON_GetArraySize(msgs) - 1;
    last = cJSON_GetArrayItem(msgs, k);
    role = cJSON_GetObjectItemCaseSensitive(last, "role");

    if (!cJSON_IsString(role)
        || ((req->chat_flags & SLORA_CHAT_GEN_PROMPT)
            && strcmp(role->valuestring, "assistant") != 0))
    {
        return SLORA_OK;
    }

    memset(&cm, 0, sizeof(slora_chat_msg_t));
    cm.role = role->valuestring;
    cm.role_len = strlen(role->valuestring);

    if (slora_openai_content(last, (size_t) k, &cm, req, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (cm.content_len > 0) {
        req->chat_echo.data = cm.content;
        req->chat_echo.len = cm.content_len;
    }

    return SLORA_OK;
}


/*
 * OpenAI's predicted outputs (chat): prediction {"type": "content",
 * "content": text}, what the answer is expected to be, mostly (an edited
 * text's original); the engine checks drafts from it several tokens a
 * step (slora_draft.h). Null or absent: none.
 */
int
slora_openai_prediction(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    cJSON  *item, *type, *content;

    item = cJSON_GetObjectItemCaseSensitive(root, "prediction");

    if (item == NULL || cJSON_IsNull(item)) {
        return SLORA_OK;
    }

    type = cJSON_GetObjectItemCaseSensitive(item, "type");
    content = cJSON_GetObjectItemCaseSensitive(item, "content");

    if (!cJSON_IsObject(item) || !cJSON_IsString(type)
        || strcmp(type->valuestring, "content") != 0
        || !(cJSON_IsString(content) || cJSON_IsArray(content)))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "prediction", "prediction must be "
                                 "{\"type\": \"content\", \"content\": a "
                                 "string or text parts}");
    }

    return slora_openai_text(content, 0, "prediction", "prediction.content",
                             &req->prediction, req, err);
}
