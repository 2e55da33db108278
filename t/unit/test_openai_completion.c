/*
 * test_openai_completion.c: a completion's best_of and suffix as the
 * request parser reads them (slora_openai_completion.c): best_of's
 * candidates and the choices returned of them, refused below n, past
 * the request's candidates, streamed, at temperature 0 and on chat;
 * suffix kept for the worker, "" asking nothing, refused with echo,
 * token ids, truncate_prompt_tokens, and on chat. What the worker
 * makes of them is t/openai.t's (best_of's ranking) and t/fim.t's (the
 * prompt around the suffix).
 */

#include <string.h>

#include "tap.h"
#include "slora_openai.h"
#include "openai_eq.h"


#define MSGS  "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"


static const bad_case_t  refusals[] = {
    { "completions: best_of -5", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"best_of\":-5}",
      400, "invalid_value", "best_of" },
    { "completions: best_of 17 (more candidates than a request's)", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"best_of\":17}",
      400, "invalid_value", "best_of" },
    { "completions: best_of 2.5", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"best_of\":2.5}",
      400, "invalid_value", "best_of" },
    { "completions: best_of a string", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"best_of\":\"2\"}",
      400, "invalid_type", "best_of" },
    { "completions: best_of 3 streamed (the best known at the end)", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"best_of\":3,"
      "\"stream\":true}",
      400, "invalid_value", "best_of" },
    { "completions: best_of 2 over 9 prompts (18 candidates)", COMP,
      "{\"model\":\"base\",\"prompt\":[\"a\",\"b\",\"c\",\"d\","
      "\"e\",\"f\",\"g\",\"h\",\"i\"],\"best_of\":2}",
      400, "invalid_value", "best_of" },
    { "chat: best_of 2 (chat has none)", CHAT,
      "{\"model\":\"base\"," MSGS ",\"best_of\":2}",
      400, "unsupported_parameter", "best_of" },
    { "chat: best_of 17 (refused as chat's, not as out of range)", CHAT,
      "{\"model\":\"base\"," MSGS ",\"best_of\":17}",
      400, "unsupported_parameter", "best_of" },
    { "chat: best_of a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"best_of\":\"2\"}",
      400, "unsupported_parameter", "best_of" },
    { "completions: best_of 3 at temperature 0 (the same answer thrice)",
      COMP, "{\"model\":\"base\",\"prompt\":\"hi\",\"best_of\":3,"
      "\"temperature\":0}",
      400, "invalid_value", "best_of" },
    { "completions: best_of 1 with n 2 (fewer candidates than choices)",
      COMP, "{\"model\":\"base\",\"prompt\":\"hi\",\"best_of\":1,"
      "\"n\":2}",
      400, "invalid_value", "best_of" },
    { "completions: best_of 2 with n 3", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"best_of\":2,\"n\":3}",
      400, "invalid_value", "best_of" },
    { "chat: suffix (a completion's)", CHAT,
      "{\"model\":\"base\"," MSGS ",\"suffix\":\"x\"}",
      400, "unsupported_parameter", "suffix" },
    { "completions: suffix a number", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"suffix\":7}",
      400, "invalid_type", "suffix" },
    { "completions: suffix with echo", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"suffix\":\"x\","
      "\"echo\":true}",
      400, "invalid_value", "suffix" },
    { "completions: suffix after token ids", COMP,
      "{\"model\":\"base\",\"prompt\":[\"hi\",[1,2]],"
      "\"suffix\":\"x\"}",
      400, "invalid_value", "suffix" },
    { "completions: suffix with truncate_prompt_tokens", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"suffix\":\"x\","
      "\"truncate_prompt_tokens\":3}",
      400, "invalid_value", "suffix" },
};


int
main(void)
{
    int                 rc;
    size_t              i;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        refused_as(refusals[i].name, refusals[i].kind, refusals[i].body,
                   refusals[i].status, refusals[i].code, refusals[i].param);
    }

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
               "\"echo\":false,\"best_of\":1,\"suffix\":\"\"}", &req, &err);
    is_int(rc, SLORA_OK, "completions: echo false, best_of 1, suffix \"\": "
           "accepted");
    slora_openai_req_free(&req);
    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
               "\"best_of\":1,\"n\":2}", &req, &err);
    is_str(err.msg, "best_of must be greater than or equal to n, got n=2 and"
           " best_of=1", "message: best_of 1 below n 2");
    slora_openai_req_free(&req);
    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
               "\"best_of\":1,\"n\":1}", &req, &err);
    ok(rc == SLORA_OK && req.n == 1, "completions: best_of 1 with n 1: "
       "accepted");
    slora_openai_req_free(&req);
    /* suffix: kept for the worker; "" asks for nothing */
    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":[\"a\",\"b\"],"
               "\"suffix\":\"}\\n\"}", &req, &err);
    ok(rc == SLORA_OK && req.suffix.len == 2
       && memcmp(req.suffix.data, "}\n", 2) == 0,
       "completions: suffix kept, over two prompts");
    slora_openai_req_free(&req);
    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"a\","
               "\"suffix\":\"\",\"echo\":true}", &req, &err);
    ok(rc == SLORA_OK && req.suffix.data == NULL && req.echo,
       "completions: suffix \"\" with echo: nothing asked");
    slora_openai_req_free(&req);
    /* best_of: n candidates, n_best returned */
    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
               "\"best_of\":5,\"n\":2}", &req, &err);
    ok(rc == SLORA_OK && req.n == 5 && req.n_best == 2,
       "completions: best_of 5 with n 2: 5 candidates, 2 returned");
    slora_openai_req_free(&req);
    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
               "\"best_of\":3}", &req, &err);
    ok(rc == SLORA_OK && req.n == 3 && req.n_best == 1,
       "completions: best_of 3: 3 candidates, 1 returned");
    slora_openai_req_free(&req);
    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
               "\"best_of\":2,\"n\":2,\"stream\":true,"
               "\"temperature\":0}", &req, &err);
    ok(rc == SLORA_OK && req.n == 2 && req.n_best == 0,
       "completions: best_of n streamed, greedy: n choices, all returned");
    slora_openai_req_free(&req);
    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":[\"a\",\"b\"],"
               "\"best_of\":8}", &req, &err);
    ok(rc == SLORA_OK && req.n == 8 && req.n_best == 1,
       "completions: best_of 8 over 2 prompts: 16 candidates");
    slora_openai_req_free(&req);
    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"best_of\":1}",
               &req, &err);
    ok(rc == SLORA_OK && req.n == 1 && req.n_best == 0,
       "chat: best_of 1 accepted");
    slora_openai_req_free(&req);

    return done_testing();
}
