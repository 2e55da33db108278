/*
 * fuzz_request.c: libFuzzer harness for what a worker does with a client's
 * request before it takes a slot: slora_openai_parse() of the body as a
 * chat (for the model's template and for Llama 3.1's, whose tools are
 * written another way) and as a text completion, as a Responses API
 * request (the last chat's template; its previous_response_id and its
 * conversation from a lookup of fixed ones), as the Conversations API's
 * bodies (a new conversation, items added, metadata; a stored array's
 * messages counted by a scan as a parse counts them), as the
 * token endpoints' bodies, and of
 * the GET stream's arguments (the input split at '&'); then, for each
 * request that parses, the chat template render and the tokenization
 * with SmolLM2's tokenizer, as ngx_http_slora_handler.c does them
 * (template from the model, the render buffer grown on SLORA_BUSY,
 * encode with special tokens parsed for chat only, into a 4096-token
 * context).
 *
 * Oracles beyond the sanitizers: a refused request carries a 400, a 404
 * (an id the lookup has not) or a 500,
 * a type and a one-line message; a parsed one holds only NUL-terminated,
 * valid UTF-8 strings, values inside the documented ranges, and a render
 * the tokenizer accepts (it refuses only invalid UTF-8, which would mean
 * the parser let some through); no item removed from a conversation
 * reaches a prompt; a conversation's bodies give JSON of their kind, and
 * each item added is found, removed and then not found by its id.
 *
 * The one idea: the parser is the first code a hostile byte reaches, and
 * the render and the tokenizer the next, so they are fuzzed together.
 *
 * The model: SLORA_SMOLLM2 (default models/SmolLM2-135M-Instruct.Q4_1.gguf,
 * relative to the repository root), loaded once.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "slora_openai.h"
#include "slora_tokenizer.h"


#define FUZZ_N_CTX  4096


static slora_tokenizer_t  *fuzz_tok;
static slora_chat_e        fuzz_tmpl;
static slora_openai_limits_t  fuzz_lim;    /* the last chat's */
static int32_t             fuzz_ids[FUZZ_N_CTX];


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_str(const slora_openai_str_t *s, const char *what);
static void fuzz_check_req(const slora_openai_req_t *req);
static void fuzz_check_err(const slora_openai_err_t *err);
static void fuzz_worker(const slora_openai_req_t *req);
static void fuzz_encode(const char *text, size_t n,
    const slora_chat_plain_t *plain);
static void fuzz_tokens(const uint8_t *data, size_t size);
static void fuzz_responses(const uint8_t *data, size_t size);
static int fuzz_prev(void *data, slora_openai_stored_e what,
    const char *id, size_t len, const char **conv, size_t *conv_len);
static void fuzz_conversations(const uint8_t *data, size_t size);
static void fuzz_json_of(const char *text, int type, const char *what);
static void fuzz_query(const uint8_t *data, size_t size);
static void fuzz_fail(const char *what) __attribute__((noreturn));


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char   *path;
    slora_err_t   err;

    path = getenv("SLORA_SMOLLM2");
    if (path == NULL) {
        path = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    }

    fuzz_tok = slora_tokenizer_load(path, &err);
    if (fuzz_tok == NULL) {
        fprintf(stderr, "fuzz_request: %s\n", err.msg);
        abort();
    }

    fuzz_tmpl = slora_tokenizer_chat_template(fuzz_tok);

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                    k, rc;
    slora_openai_req_t     req;
    slora_openai_err_t     err;
    slora_openai_kind_e    kinds[4] = { SLORA_OPENAI_CHAT,
                                        SLORA_OPENAI_COMPLETION,
                                        SLORA_OPENAI_CHAT,
                                        SLORA_OPENAI_CHAT };

    /* the chat for the model's template (with its default system
     * message), for Llama 3.1's and for Mistral's or DeepSeek-R1's (the
     * size picks which), whose tools and calls are written other ways */
    for (k = 0; k < 4; k++) {
        memset(&err, 0, sizeof(err));
        fuzz_lim = slora_openai_default_limits;
        fuzz_tmpl = k < 2 ? slora_tokenizer_chat_template(fuzz_tok)
                    : k == 2 ? SLORA_CHAT_LLAMA31
                    : size % 4 == 0 ? SLORA_CHAT_MISTRAL
                    : size % 4 == 1 ? SLORA_CHAT_MISTRAL_TEKKEN
                    : size % 4 == 2 ? SLORA_CHAT_MISTRAL_V7
                    : SLORA_CHAT_DEEPSEEK_R1;
        fuzz_lim.chat = fuzz_tmpl;
        fuzz_lim.call_ids = size % 2;
        fuzz_lim.system = k < 2 ? slora_tokenizer_chat_system(fuzz_tok)
                                : NULL;

        rc = slora_openai_parse((const char *) data, size, kinds[k],
                                &fuzz_lim, &req, &err);

        if (rc == SLORA_OK) {
            if (req.kind != kinds[k]) {
                fuzz_fail("kind changed");
            }

            fuzz_check_req(&req);
            fuzz_worker(&req);

        } else if (rc == SLORA_ERROR) {
            fuzz_check_err(&err);

        } else {
            fuzz_fail("parse returned neither OK nor ERROR");
        }

        slora_openai_req_free(&req);
    }

    fuzz_responses(data, size);
    fuzz_conversations(data, size);
    fuzz_query(data, size);
    fuzz_tokens(data, size);

    return 0;
}


/* A store of every "resp_..." id: a user's question and a call. */
static int
fuzz_prev(void *data, slora_openai_stored_e what, const char *id,
    size_t len, const char **conv, size_t *conv_len)
{
    static const char  stored[] =
        "[{\"role\":\"user\",\"content\":\"Weather?\"},{\"role\":"
        "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"{}\"}}]}]";

    /* a conversation's, an item removed from it */
    static const char  kept[] =
        "[{\"role\":\"user\",\"content\":\"Hi\",\"deleted\":true},"
        "{\"role\":\"user\",\"content\":\"Weather?\"},{\"role\":"
        "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"{}\"},\"deleted\":true}]}]";

    (void) data;

    if (what == SLORA_OPENAI_CONVERSATION
        && len >= 5 && memcmp(id, "conv_", 5) == 0)
    {
        *conv = kept;
        *conv_len = sizeof(kept) - 1;
        return SLORA_OK;
    }

    if (what != SLORA_OPENAI_PREVIOUS || len < 5
        || memcmp(id, "resp_", 5) != 0)
    {
        return SLORA_DECLINED;
    }

    *conv = stored;
    *conv_len = sizeof(stored) - 1;

    return SLORA_OK;
}


/* The body as a Responses API request: a chat, marked, with the echoed
 * fields compact JSON members (they go into the response object as they
 * are); a refusal as any other. */
static void
fuzz_responses(const uint8_t *data, size_t size)
{
    int                 rc;
    char               *obj;
    size_t              i;
    cJSON              *echo;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    /* the request fields a response object echoes (their defaults where
     * the request leaves them out) */
    static const char  *fuzz_resp_echo[] = {
        "conversation", "instructions", "max_output_tokens", "metadata",
        "parallel_tool_calls", "temperature", "text", "tool_choice",
        "tools", "top_logprobs", "top_p", "truncation", "user"
    };

    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_responses((const char *) data, size, NULL,
                                      fuzz_prev, NULL, &req, &err);

    if (rc == SLORA_OK) {
        if (req.kind != SLORA_OPENAI_CHAT || !req.responses
            || req.resp_echo.data == NULL)
        {
            fuzz_fail("responses: not a marked chat with its echo");
        }

        fuzz_check_req(&req);
        fuzz_check_str(&req.resp_echo, "resp_echo");

        if (req.resp_conversation.data != NULL) {
            /* the conversation's first message ("Hi") was removed: its
             * first live one, "Weather?", comes first after any system
             * message (the instructions) */
            fuzz_check_str(&req.resp_conversation, "resp_conversation");

            for (i = 0; i < req.n_msgs
                        && req.msgs[i].role_len == 6
                        && memcmp(req.msgs[i].role, "system", 6) == 0;
                 i++)
            {
                /* the instructions */
            }

            if (i == req.n_msgs || req.msgs[i].content_len != 8
                || memcmp(req.msgs[i].content, "Weather?", 8) != 0)
            {
                fuzz_fail("responses: a removed item reached the prompt");
            }
        }
        fuzz_check_str(&req.resp_conv, "resp_conv");

        echo = cJSON_ParseWithLength(req.resp_conv.data, req.resp_conv.len);
        if (!cJSON_IsArray(echo)) {
            fuzz_fail("responses: the conversation is not a JSON array");
        }

        cJSON_Delete(echo);

        obj = malloc(req.resp_echo.len + 3);
        if (obj == NULL) {
            abort();
        }

        obj[0] = '{';
        memcpy(obj + 1, req.resp_echo.data, req.resp_echo.len);
        memcpy(obj + 1 + req.resp_echo.len, "}", 2);
        echo = cJSON_Parse(obj);
        free(obj);

        if (echo == NULL
            || cJSON_GetArraySize(echo) != (int) (sizeof(fuzz_resp_echo)
                                                  / sizeof(fuzz_resp_echo[0])))
        {
            fuzz_fail("responses: the echo is not its JSON members");
        }

        for (i = 0; i < sizeof(fuzz_resp_echo) / sizeof(fuzz_resp_echo[0]);
             i++)
        {
            if (!cJSON_HasObjectItem(echo, fuzz_resp_echo[i])) {
                fuzz_fail("responses: the echo lacks a member");
            }
        }

        cJSON_Delete(echo);
        fuzz_worker(&req);

    } else if (rc == SLORA_ERROR) {
        fuzz_check_err(&err);

    } else {
        fuzz_fail("responses: neither OK nor ERROR");
    }

    slora_openai_req_free(&req);
}


/* The body as each of the Conversations API's: a new conversation, items
 * added to one, its metadata replaced; what each writes is JSON of its
 * kind (the messages an array, the object an object), and the items the
 * new messages hold are listed, read and removed by their ids. */
static void
fuzz_conversations(const uint8_t *data, size_t size)
{
    int                     rc, n;
    char                   *conv, *obj, *out, *list, *one, *added;
    cJSON                  *page, *it;
    slora_openai_err_t      err;
    slora_openai_items_q_t  q;

    static const char  kept[] =
        "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\","
        "\"content\":\"Hello\",\"tool_calls\":[{\"id\":\"c\",\"type\":"
        "\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
        "\"{}\"}}]}]";
    static const char  object[] =
        "{\"id\":\"conv_f\",\"object\":\"conversation\",\"created_at\":1,"
        "\"metadata\":{}}";

    memset(&err, 0, sizeof(err));
    rc = slora_openai_conv_new((const char *) data, size, "conv_f", 1, &conv,
                               &obj, &err);

    if (rc == SLORA_OK) {
        fuzz_json_of(conv, cJSON_Array, "conv_new's messages");
        fuzz_json_of(obj, cJSON_Object, "conv_new's object");

        page = cJSON_Parse(conv);
        if (slora_openai_json_count(conv, strlen(conv))
            != cJSON_GetArraySize(page))
        {
            fuzz_fail("conversations: a scan's count is not the parse's");
        }

        cJSON_Delete(page);
        free(conv);
        free(obj);

    } else {
        fuzz_check_err(&err);
    }

    memset(&err, 0, sizeof(err));
    rc = slora_openai_conv_update((const char *) data, size, object,
                                  sizeof(object) - 1, &out, &err);

    if (rc == SLORA_OK) {
        fuzz_json_of(out, cJSON_Object, "conv_update's object");
        free(out);

    } else {
        fuzz_check_err(&err);
    }

    memset(&err, 0, sizeof(err));
    rc = slora_openai_conv_add((const char *) data, size,
                               slora_openai_json_count(kept,
                                                       sizeof(kept) - 1),
                               "conv_f", 6, &added, &list, &err);

    if (rc != SLORA_OK) {
        fuzz_check_err(&err);
        return;
    }

    fuzz_json_of(added, cJSON_Array, "conv_add's messages");
    fuzz_json_of(list, cJSON_Object, "conv_add's answer");

    /* the conversation grown as the worker grows it: the arrays' bytes
     * joined */
    out = malloc(sizeof(kept) + strlen(added));
    if (out == NULL) {
        abort();
    }

    memcpy(out, kept, sizeof(kept) - 2);
    out[sizeof(kept) - 2] = ',';
    strcpy(out + sizeof(kept) - 1, added + 1);

    page = cJSON_Parse(out);
    if (slora_openai_json_count(out, strlen(out))
        != cJSON_GetArraySize(page)
        || slora_openai_json_count(added, strlen(added))
           != cJSON_GetArraySize(page) - 2)
    {
        fuzz_fail("conversations: a scan's count is not the parse's");
    }

    cJSON_Delete(page);
    free(added);

    /* every item the answer names is in the new conversation, and goes
     * from it when removed */
    memset(&q, 0, sizeof(q));
    page = cJSON_Parse(list);
    n = 0;

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(page, "data")) {
        const char  *id;

        id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "id"));
        if (id == NULL) {
            fuzz_fail("conversations: an item without an id");
        }

        if (slora_openai_conv_item(out, strlen(out), "conv_f", 6, id,
                                   strlen(id), 0, &one, &err)
            != SLORA_OK)
        {
            fuzz_fail("conversations: an added item is not found");
        }

        free(one);

        if (slora_openai_conv_item(out, strlen(out), "conv_f", 6, id,
                                   strlen(id), 1, &one, &err)
            != SLORA_OK)
        {
            fuzz_fail("conversations: an added item cannot be removed");
        }

        if (slora_openai_conv_item(one, strlen(one), "conv_f", 6, id,
                                   strlen(id), 0, &conv, &err)
            != SLORA_ERROR || err.status != 404)
        {
            fuzz_fail("conversations: a removed item is still found");
        }

        free(one);
        n++;
    }

    if (n == 0 || n > 20) {
        fuzz_fail("conversations: items added, but not 1 to 20 listed");
    }

    cJSON_Delete(page);
    free(list);

    if (slora_openai_conv_list(out, strlen(out), "conv_f", 6, &q, &list,
                               &err)
        != SLORA_OK)
    {
        fuzz_fail("conversations: the grown conversation cannot be listed");
    }

    free(list);
    free(out);
}


/* text (malloc'd by the engine) is JSON of the given type. */
static void
fuzz_json_of(const char *text, int type, const char *what)
{
    cJSON  *j;

    j = cJSON_Parse(text);

    if (j == NULL || (j->type & 0xff) != type) {
        fprintf(stderr, "%s: ", what);
        fuzz_fail("not the JSON it should be");
    }

    cJSON_Delete(j);
}


/* The token endpoints' bodies: a tokenize request parses as one of the
 * two kinds with one text prompt, a detokenize one into one prompt of
 * ids (none for []); a refusal as any other. */
static void
fuzz_tokens(const uint8_t *data, size_t size)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_tokenize((const char *) data, size, &fuzz_lim,
                                     &req, &err);

    if (rc == SLORA_OK) {
        fuzz_check_req(&req);

        if (req.kind == SLORA_OPENAI_COMPLETION
            && (req.n_prompts != 1 || req.prompts[0].text.data == NULL))
        {
            fuzz_fail("tokenize: not one text prompt");
        }

        fuzz_worker(&req);

    } else {
        fuzz_check_err(&err);
    }

    slora_openai_req_free(&req);

    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_detokenize((const char *) data, size, &req,
                                       &err);

    if (rc == SLORA_OK) {
        /* [] is one prompt of no ids, the empty text back */
        if (req.n_prompts != 1 || req.prompts[0].text.data != NULL) {
            fuzz_fail("detokenize: not one prompt of ids");
        }

    } else {
        fuzz_check_err(&err);
    }

    slora_openai_req_free(&req);
}


/* The GET stream variant: the input's first four '&' split it into
 * model, prompt, chat, max_tokens and temperature. */
static void
fuzz_query(const uint8_t *data, size_t size)
{
    int                   i, rc;
    size_t                start, at;
    slora_openai_req_t    req;
    slora_openai_err_t    err;
    slora_openai_query_t  q;
    slora_openai_str_t   *f[5];

    memset(&q, 0, sizeof(q));
    f[0] = &q.model;
    f[1] = &q.prompt;
    f[2] = &q.chat;
    f[3] = &q.max_tokens;
    f[4] = &q.temperature;

    start = 0;

    for (i = 0; i < 5 && start <= size; i++) {
        at = start;
        while (at < size && (i == 4 || data[at] != '&')) {
            at++;
        }

        /* an empty field is absent, as when the argument is not given */
        if (at > start) {
            f[i]->data = (const char *) data + start;
            f[i]->len = at - start;
        }

        start = at + 1;
    }

    memset(&err, 0, sizeof(err));

    rc = slora_openai_parse_query(&q, NULL, &req, &err);

    if (rc == SLORA_OK) {
        if (!req.stream || req.max_tokens == 0) {
            fuzz_fail("query: stream unset or max_tokens 0");
        }

        fuzz_check_req(&req);
        fuzz_worker(&req);

    } else {
        fuzz_check_err(&err);
    }

    slora_openai_req_free(&req);
}


/* What ngx_http_slora_start() and ngx_http_slora_render() do with it. */
static void
fuzz_worker(const slora_openai_req_t *req)
{
    int                 rc;
    char               *text;
    size_t              cap, n, k;
    uint32_t            i;
    slora_err_t         err;
    slora_chat_plain_t  plain;

    text = NULL;

    if (req->kind == SLORA_OPENAI_CHAT) {
        cap = 256;
        plain.cap = 8;

        for (i = 0; i < req->n_msgs; i++) {
            cap += req->msgs[i].content_len + 64;
            plain.cap += 2 + req->msgs[i].n_plain;
        }

        for ( ;; ) {
            text = malloc(cap);
            plain.span = malloc(plain.cap * sizeof(slora_span_t));
            if (text == NULL || plain.span == NULL) {
                fuzz_fail("out of memory");
            }

            n = 0;
            rc = slora_chat_render(fuzz_tmpl, req->msgs, (int) req->n_msgs,
                                   req->chat_flags, text, cap, &n, &plain,
                                   &err);

            if (rc == SLORA_BUSY && (n + 1 > cap || plain.n > plain.cap)) {
                free(text);
                free(plain.span);
                cap = n + 1 > cap ? n + 1 : cap;
                plain.cap = plain.n > plain.cap ? plain.n : plain.cap;
                continue;
            }

            break;
        }

        if (rc != SLORA_OK
            && (fuzz_tmpl == SLORA_CHAT_MISTRAL
                || fuzz_tmpl == SLORA_CHAT_MISTRAL_TEKKEN
                || (fuzz_tmpl == SLORA_CHAT_MISTRAL_V7
                    && !(req->chat_flags & SLORA_CHAT_ANY_ORDER)))
            && (strstr(err.msg, "must alternate") != NULL
                || strstr(err.msg, "no user message") != NULL))
        {
            /* these templates' own refusal: the module's 400 */
            free(text);
            free(plain.span);
            return;
        }

        if (rc != SLORA_OK) {
            fprintf(stderr, "render: %s\n", err.msg);
            fuzz_fail("a parsed chat does not render");
        }

        /* the request's spans: in order, apart, not empty, in the text */
        for (k = 0; k < plain.n; k++) {
            if (plain.span[k].len == 0 || plain.span[k].off > n
                || plain.span[k].len > n - plain.span[k].off
                || (k > 0 && plain.span[k].off <= plain.span[k - 1].off
                                                  + plain.span[k - 1].len))
            {
                fuzz_fail("a plain span out of order or out of the text");
            }
        }

        fuzz_encode(text, n, &plain);
        free(text);
        free(plain.span);
        return;
    }

    /* a completion's text prompts; token id prompts are not encoded */
    for (i = 0; i < req->n_prompts; i++) {
        if (req->prompts[i].text.data != NULL) {
            fuzz_encode(req->prompts[i].text.data, req->prompts[i].text.len,
                        NULL);
        }
    }
}


/* text's ids as the worker makes them: a chat's (plain: the request's
 * spans in it), or a completion's (plain NULL) */
static void
fuzz_encode(const char *text, size_t n, const slora_chat_plain_t *plain)
{
    int          rc;
    int32_t      n_ids;
    slora_err_t  err;

    n_ids = 0;
    rc = plain != NULL
         ? slora_tokenizer_encode_chat(fuzz_tok, text, n,
                                       slora_tokenizer_chat_bos(fuzz_tok)
                                       ? SLORA_TOK_BOS_TEMPLATE : 0,
                                       plain->span,
                                       plain->n, fuzz_ids, FUZZ_N_CTX,
                                       FUZZ_N_CTX, &n_ids, &err)
         : slora_tokenizer_encode(fuzz_tok, text, n, 1, 0, fuzz_ids,
                                  FUZZ_N_CTX, &n_ids, &err);

    if (rc == SLORA_ERROR) {
        fprintf(stderr, "encode: %s\n", err.msg);
        fuzz_fail("the tokenizer refuses a parsed request");
    }

    if (rc == SLORA_OK && (n_ids < 0 || n_ids > FUZZ_N_CTX)) {
        fuzz_fail("encode: token count out of range");
    }
}


static void
fuzz_check_req(const slora_openai_req_t *req)
{
    uint32_t  i, k;

    fuzz_check_str(&req->model, "model");

    if (req->kind == SLORA_OPENAI_CHAT) {
        if (req->n_msgs == 0 || req->msgs == NULL) {
            fuzz_fail("chat without messages");
        }

        for (i = 0; i < req->n_msgs; i++) {
            if (!slora_utf8_text_valid(req->msgs[i].role,
                                         req->msgs[i].role_len)
                || !slora_utf8_text_valid(req->msgs[i].content,
                                            req->msgs[i].content_len)
                || req->msgs[i].content[req->msgs[i].content_len] != '\0')
            {
                fuzz_fail("a message is not NUL-terminated UTF-8");
            }

            /* a made message's plain spans in order, in its content */
            for (k = 0; req->msgs[i].made && k < req->msgs[i].n_plain; k++) {
                if (req->msgs[i].plain[k].off > req->msgs[i].content_len
                    || req->msgs[i].plain[k].len
                       > req->msgs[i].content_len - req->msgs[i].plain[k].off
                    || (k > 0 && req->msgs[i].plain[k].off
                                 < req->msgs[i].plain[k - 1].off
                                   + req->msgs[i].plain[k - 1].len))
                {
                    fuzz_fail("a made message's spans out of its content");
                }
            }
        }

    } else {
        if (req->n_prompts == 0 || req->n_prompts > SLORA_OPENAI_MAX_N
            || req->n_prompts * req->n > SLORA_OPENAI_MAX_N)
        {
            fuzz_fail("prompts out of range");
        }

        for (i = 0; i < req->n_prompts; i++) {
            if (req->prompts[i].text.data != NULL) {
                fuzz_check_str(&req->prompts[i].text, "prompt");

            } else if (req->prompts[i].n_ids == 0) {
                fuzz_fail("an empty prompt of token ids");
            }

            for (k = 0; req->prompts[i].text.data == NULL
                        && k < req->prompts[i].n_ids; k++)
            {
                if (req->prompts[i].ids[k] < 0) {
                    fuzz_fail("a negative token id");
                }
            }
        }
    }

    if (req->n_stop > SLORA_OPENAI_MAX_STOPS) {
        fuzz_fail("too many stop strings");
    }

    if (req->n_bad_words > SLORA_OPENAI_MAX_BAD) {
        fuzz_fail("too many bad_words");
    }

    for (i = 0; i < req->n_bad_words; i++) {
        fuzz_check_str(&req->bad_words[i], "bad_words");

        if (req->bad_words[i].len == 0
            || req->bad_words[i].len > SLORA_OPENAI_BAD_LEN)
        {
            fuzz_fail("a bad word of no bytes, or too many, kept");
        }
    }

    if (req->keep_last < -1) {
        fuzz_fail("truncate_prompt_tokens below -1 kept");
    }

    if (req->n_allowed > SLORA_OPENAI_MAX_ALLOWED) {
        fuzz_fail("too many allowed_token_ids");
    }

    for (i = 0; i < req->n_allowed; i++) {
        if (req->allowed_ids[i] < 0) {
            fuzz_fail("a negative allowed token id");
        }
    }

    for (i = 0; i < req->n_stop; i++) {
        fuzz_check_str(&req->stop[i], "stop");

        if (req->stop[i].len == 0) {
            fuzz_fail("an empty stop string was kept");
        }
    }

    if ((req->prompt_logprobs && req->stream)
        || req->prompt_top < 0 || req->prompt_top > 20
        || (!req->prompt_logprobs && req->prompt_top != 0))
    {
        fuzz_fail("prompt_logprobs kept with a stream, or outside 0..20");
    }

    /* 0: a completion's prompt alone (echo, prompt_logprobs) */
    if ((req->max_tokens == 0
         && !(req->kind == SLORA_OPENAI_COMPLETION
              && (req->echo || req->prompt_logprobs)))
        || req->max_tokens < -1
        || !(req->temperature >= 0 && req->temperature <= 2)
        || !(req->top_p > 0 && req->top_p <= 1)
        || req->top_k < 0 || req->top_k > 1000000
        || !(req->frequency_penalty >= -2 && req->frequency_penalty <= 2)
        || !(req->presence_penalty >= -2 && req->presence_penalty <= 2)
        || !(req->repetition_penalty > 0 && req->repetition_penalty <= 100)
        || req->top_logprobs < 0 || req->top_logprobs > 20
        || (!req->logprobs && req->top_logprobs != 0))
    {
        fuzz_fail("a value outside its range");
    }
}


static void
fuzz_check_str(const slora_openai_str_t *s, const char *what)
{
    if (s->data == NULL || s->data[s->len] != '\0'
        || !slora_utf8_text_valid(s->data, s->len))
    {
        fprintf(stderr, "%s: ", what);
        fuzz_fail("not a NUL-terminated UTF-8 string");
    }
}


/* 404: an id the lookup has none of (previous_response_id,
 * conversation) */
static void
fuzz_check_err(const slora_openai_err_t *err)
{
    if ((err->status != 400 && err->status != 404 && err->status != 500)
        || err->type == NULL
        || err->len == 0 || err->len != strlen(err->msg)
        || memchr(err->msg, '\n', err->len) != NULL)
    {
        fuzz_fail("a refusal without a status, type or one-line message");
    }
}


static void
fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz_request: %s\n", what);
    abort();
}
