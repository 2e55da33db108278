/*
 * test_openai_vllm.c: vLLM's return_token_ids (a bool, on chat and
 * completions; anything else a 400 naming it) and prompt_logprobs in the
 * request parser (engine/slora_openai_answer.c's slora_openai_logprobs
 * for the second): a count of
 * alternatives from 0 to the limit, on chat and completions alike, apart
 * from logprobs' own; a completion that asks for it may be the prompt's
 * alone (max_tokens 0); a stream takes 0 and passes it over, and refuses
 * more with vLLM's words; -1 (the whole vocabulary), past the limit, a
 * fraction or a string are refused naming the field. Every request is
 * freed, failed ones too, so the ASan build finds a leak.
 */

#include "tap.h"

#include "slora_openai.h"
#include "openai_eq.h"


#define CHAT  SLORA_OPENAI_CHAT
#define COMP  SLORA_OPENAI_COMPLETION
#define MSGS  "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"


static void test_return_ids(void);
static void test_served(void);
static void test_refused(void);


int
main(void)
{
    test_return_ids();
    test_served();
    test_refused();

    return done_testing();
}


static void
test_return_ids(void)
{
    int                  rc;
    slora_openai_req_t   req;
    slora_openai_err_t   err;

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"return_token_ids\":true}",
               &req, &err);
    ok(rc == SLORA_OK && req.return_ids, "chat: return_token_ids true");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\",\"stream\":true,"
               "\"return_token_ids\":true}", &req, &err);
    ok(rc == SLORA_OK && req.return_ids && req.stream,
       "completions: return_token_ids true with a stream");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
               "\"return_token_ids\":null}", &req, &err);
    ok(rc == SLORA_OK && !req.return_ids, "return_token_ids null: off");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"return_token_ids\":1}",
               &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.param, "return_token_ids") == 0,
       "return_token_ids 1: 400 naming it (%s)", err.msg);
    slora_openai_req_free(&req);
}


static void
test_served(void)
{
    int                  rc;
    slora_openai_req_t   req;
    slora_openai_err_t   err;

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
               "\"prompt_logprobs\":3,\"logprobs\":1}", &req, &err);
    ok(rc == SLORA_OK && req.prompt_logprobs && req.prompt_top == 3
       && req.logprobs && req.top_logprobs == 1,
       "completions: prompt_logprobs 3 beside logprobs 1, each its own "
       "count (%s)", rc == SLORA_OK ? "ok" : err.msg);
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"prompt_logprobs\":0}",
               &req, &err);
    ok(rc == SLORA_OK && req.prompt_logprobs && req.prompt_top == 0
       && !req.logprobs, "chat: prompt_logprobs 0, the tokens' own "
       "figures, without logprobs");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"prompt_logprobs\":20}",
               &req, &err);
    ok(rc == SLORA_OK && req.prompt_top == 20, "chat: prompt_logprobs 20, "
       "the limit");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
               "\"prompt_logprobs\":2,\"max_tokens\":0}", &req, &err);
    ok(rc == SLORA_OK && req.prompt_logprobs && req.max_tokens == 0
       && !req.echo, "completions: max_tokens 0 with prompt_logprobs, the "
       "prompt scored alone");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
               "\"prompt_logprobs\":0,\"stream\":true}", &req, &err);
    ok(rc == SLORA_OK && !req.prompt_logprobs && req.stream,
       "a stream with prompt_logprobs 0: accepted, nothing asked (vLLM's)");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"prompt_logprobs\":null}",
               &req, &err);
    ok(rc == SLORA_OK && !req.prompt_logprobs, "prompt_logprobs null: none");
    slora_openai_req_free(&req);
}


static void
test_refused(void)
{
    int                  rc;
    size_t               i;
    slora_openai_req_t   req;
    slora_openai_err_t   err;

    static const struct {
        slora_openai_kind_e  kind;
        const char          *body;
        const char          *msg;
    } bad[] = {
        { COMP, "{\"model\":\"base\",\"prompt\":\"hi\",\"prompt_logprobs\":1,"
          "\"stream\":true}",
          "`prompt_logprobs` are not available when `stream=True`." },
        { CHAT, "{\"model\":\"base\"," MSGS ",\"stream\":true,"
          "\"prompt_logprobs\":5}",
          "`prompt_logprobs` are not available when `stream=True`." },
        { COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
          "\"prompt_logprobs\":-1}",
          "prompt_logprobs -1 (every token of the vocabulary) is not "
          "served: at most 20 alternatives" },
        { CHAT, "{\"model\":\"base\"," MSGS ",\"prompt_logprobs\":21}",
          "prompt_logprobs must be an integer from 0 to 20" },
        { CHAT, "{\"model\":\"base\"," MSGS ",\"prompt_logprobs\":-2}",
          "prompt_logprobs must be an integer from 0 to 20" },
        { COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
          "\"prompt_logprobs\":1.5}",
          "prompt_logprobs must be an integer from 0 to 20" },
        { COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
          "\"prompt_logprobs\":\"2\"}",
          "prompt_logprobs must be an integer" },
        { COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
          "\"prompt_logprobs\":true}",
          "prompt_logprobs must be an integer" },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rc = parse(bad[i].kind, bad[i].body, &req, &err);
        ok(rc == SLORA_ERROR && err.status == 400
           && strcmp(err.param, "prompt_logprobs") == 0
           && strcmp(err.msg, bad[i].msg) == 0,
           "refused: %s: %s", bad[i].body, err.msg);
        slora_openai_req_free(&req);
    }
}
