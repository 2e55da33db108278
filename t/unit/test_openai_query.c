/*
 * test_openai_query.c: the GET stream's query arguments
 * (slora_openai_parse_query: prompt, model, chat, max_tokens as decimal
 * digits, temperature as JSON writes a number) from a table of cases
 * with the status, code and param a client sees, the fields a good
 * query parses to, and the parsers' UTF-8 check. Every request is freed,
 * failed ones too, so the ASan build finds a leak or a use after free.
 */

#include "tap.h"

#include "slora_openai.h"
#include "openai_eq.h"


typedef struct {
    const char           *name;
    const char           *model, *prompt, *chat, *max_tokens, *temperature;
    int                   status;       /* 0: parses */
    const char           *code;
    const char           *param;
} query_case_t;


static const query_case_t  query_cases[] = {
    { "no prompt", "base", NULL, NULL, NULL, NULL,
      400, "missing_required_parameter", "prompt" },
    { "max_tokens 0", "base", "hi", NULL, "0", NULL,
      400, "invalid_value", "max_tokens" },
    { "max_tokens -1", "base", "hi", NULL, "-1", NULL,
      400, "invalid_value", "max_tokens" },
    { "max_tokens 12x", "base", "hi", NULL, "12x", NULL,
      400, "invalid_value", "max_tokens" },
    { "max_tokens past int64", "base", "hi", NULL, "9223372036854775808",
      NULL, 400, "invalid_value", "max_tokens" },
    { "max_tokens empty", "base", "hi", NULL, "", NULL,
      400, "invalid_value", "max_tokens" },
    { "temperature 3", "base", "hi", NULL, NULL, "3",
      400, "invalid_value", "temperature" },
    { "temperature empty", "base", "hi", NULL, NULL, "",
      400, "invalid_value", "temperature" },
    { "temperature nan", "base", "hi", NULL, NULL, "nan",
      400, "invalid_value", "temperature" },
    { "temperature -1", "base", "hi", NULL, NULL, "-1",
      400, "invalid_value", "temperature" },
    { "temperature with leading blanks", "base", "hi", NULL, NULL, "  1",
      400, "invalid_value", "temperature" },
    { "temperature with a tail", "base", "hi", NULL, NULL, "0.5abc",
      400, "invalid_value", "temperature" },
    { "temperature in hex", "base", "hi", NULL, NULL, "0x1p0",
      400, "invalid_value", "temperature" },
    { "temperature with a plus", "base", "hi", NULL, NULL, "+1",
      400, "invalid_value", "temperature" },
    { "temperature a bare point", "base", "hi", NULL, NULL, ".5",
      400, "invalid_value", "temperature" },
    { "temperature inf", "base", "hi", NULL, NULL, "inf",
      400, "invalid_value", "temperature" },
    { "temperature with an exponent", "base", "hi", NULL, NULL, "15e-1",
      0, NULL, NULL },
    { "temperature -0", "base", "hi", NULL, NULL, "-0",
      0, NULL, NULL },
    { "invalid UTF-8 prompt", "base", "\xff\xfe", NULL, NULL, NULL,
      400, "invalid_utf8", "prompt" },
    { "invalid UTF-8 model", "\xc3", "hi", NULL, NULL, NULL,
      400, "invalid_utf8", "prompt" },
    { "all good", "ad0", "hi", "1", "9223372036854775807", "0.5",
      0, NULL, NULL },
};


static void test_query(void);
static void test_utf8(void);
static void qarg(slora_openai_str_t *arg, const char *s);


int
main(void)
{
    test_query();
    test_utf8();

    return done_testing();
}


static void
test_query(void)
{
    int                    rc;
    size_t                 i;
    slora_openai_req_t     req;
    slora_openai_err_t     err;
    slora_openai_query_t   q;
    const query_case_t    *c;

    for (i = 0; i < sizeof(query_cases) / sizeof(query_cases[0]); i++) {
        c = &query_cases[i];

        qarg(&q.model, c->model);
        qarg(&q.prompt, c->prompt);
        qarg(&q.chat, c->chat);
        qarg(&q.max_tokens, c->max_tokens);
        qarg(&q.temperature, c->temperature);
        memset(&err, 0, sizeof(err));

        rc = slora_openai_parse_query(&q, NULL, &req, &err);

        if (c->status == 0) {
            ok(rc == SLORA_OK, "query %s: parses", c->name);

        } else {
            if (!ok(rc == SLORA_ERROR && err.status == c->status
                    && nstreq(err.type, "invalid_request_error")
                    && nstreq(err.code, c->code)
                    && nstreq(err.param, c->param),
                    "query %s: %d %s %s", c->name, c->status, c->code,
                    c->param))
            {
                diag("got rc %d, %d %s %s: %s", rc, err.status,
                     err.code ? err.code : "null",
                     err.param ? err.param : "null", err.msg);
            }
        }

        slora_openai_req_free(&req);
    }

    qarg(&q.model, NULL);
    qarg(&q.prompt, "tell me");
    qarg(&q.chat, "true");
    qarg(&q.max_tokens, "12");
    qarg(&q.temperature, "0");

    rc = slora_openai_parse_query(&q, NULL, &req, &err);
    ok(rc == SLORA_OK && req.kind == SLORA_OPENAI_CHAT
       && streq(&req.model, "base") && req.n_msgs == 1
       && req.msgs[0].role_len == 4 && req.msgs[0].content_len == 7
       && memcmp(req.msgs[0].content, "tell me", 7) == 0
       && req.max_tokens == 12 && req.temperature == 0.0 && req.stream
       && req.top_p == 1.0,
       "query: chat=true, model defaults to base, fields");
    slora_openai_req_free(&req);

    qarg(&q.model, "ad0");
    qarg(&q.chat, "yes");
    qarg(&q.max_tokens, NULL);
    qarg(&q.temperature, NULL);

    rc = slora_openai_parse_query(&q, NULL, &req, &err);
    ok(rc == SLORA_OK && req.kind == SLORA_OPENAI_COMPLETION
       && streq(&req.model, "ad0")
       && streq(&req.prompts[0].text, "tell me") && req.msgs == NULL
       && req.max_tokens == -1 && req.temperature == 1.0 && req.stream,
       "query: chat=yes is a completion; defaults");
    slora_openai_req_free(&req);
}


static void
test_utf8(void)
{
    ok(slora_utf8_text_valid("caf\xc3\xa9 \xf0\x9f\x98\x80", 10),
       "utf8: valid");
    ok(slora_utf8_text_valid("", 0), "utf8: empty");
    ok(!slora_utf8_text_valid("a\0b", 3), "utf8: NUL");
    ok(!slora_utf8_text_valid("\xe0\x80\xaf", 3), "utf8: overlong");
    ok(!slora_utf8_text_valid("\xed\xa0\x80", 3), "utf8: surrogate");
    ok(!slora_utf8_text_valid("\xf4\x90\x80\x80", 4), "utf8: > U+10FFFF");
    ok(!slora_utf8_text_valid("\xe2\x82", 2), "utf8: cut");
    ok(!slora_utf8_text_valid("\xff", 1), "utf8: 0xff");
    ok(!slora_utf8_text_valid("\x80", 1), "utf8: lone continuation");
    ok(!slora_utf8_text_valid("\xc0\xaf", 2), "utf8: overlong '/'");
}


static void
qarg(slora_openai_str_t *arg, const char *s)
{
    arg->data = s;
    arg->len = s ? strlen(s) : 0;
}
