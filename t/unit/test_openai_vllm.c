/*
 * test_openai_vllm.c: vLLM's return_token_ids (a bool, on chat and
 * completions; anything else a 400 naming it) and prompt_logprobs in the
 * request parser (engine/slora_openai_answer.c's slora_openai_logprobs
 * for the second): a count of
 * alternatives from 0 to the limit, on chat and completions alike, apart
 * from logprobs' own; a completion that asks for it may be the prompt's
 * alone (max_tokens 0); a stream takes 0 and passes it over, and refuses
 * more with vLLM's words; -1 (the whole vocabulary), past the limit, a
 * fraction or a string are refused naming the field. cache_salt: a
 * non-empty string kept as the first 128 bits of its SHA-256, on chat,
 * completions and the Responses API, the same salt the same bits; an
 * empty one or another type a 400 naming it. priority: 0 or null pass,
 * anything else is a 400 naming it (a tenant's priority is the
 * catalog's). Every request is freed,
 * failed ones too, so the ASan build finds a leak.
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
static void test_cache_salt(void);
static void test_priority(void);


int
main(void)
{
    test_return_ids();
    test_served();
    test_refused();
    test_cache_salt();
    test_priority();

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


static void
test_cache_salt(void)
{
    int                  rc;
    uint64_t             first[2];
    const char          *body;
    slora_openai_req_t   req;
    slora_openai_err_t   err;

    /* SHA-256("abc")'s first 16 bytes (FIPS 180-2's example) */
    static const unsigned char  abc[16] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
        0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23
    };

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"cache_salt\":\"abc\"}",
               &req, &err);
    ok(rc == SLORA_OK && memcmp(req.cache_salt, abc, 16) == 0,
       "chat: cache_salt \"abc\", its SHA-256's first 128 bits");
    memcpy(first, req.cache_salt, sizeof(first));
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
               "\"cache_salt\":\"abc\"}", &req, &err);
    ok(rc == SLORA_OK && req.cache_salt[0] == first[0]
       && req.cache_salt[1] == first[1],
       "completions: the same salt, the same bits");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
               "\"cache_salt\":\"abd\"}", &req, &err);
    ok(rc == SLORA_OK && (req.cache_salt[0] != first[0]
                          || req.cache_salt[1] != first[1]),
       "another salt, other bits");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"cache_salt\":null}",
               &req, &err);
    ok(rc == SLORA_OK && req.cache_salt[0] == 0 && req.cache_salt[1] == 0,
       "cache_salt null: none");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS "}", &req, &err);
    ok(rc == SLORA_OK && req.cache_salt[0] == 0 && req.cache_salt[1] == 0,
       "no cache_salt: none");
    slora_openai_req_free(&req);

    body = "{\"model\":\"base\",\"input\":\"Hi\",\"cache_salt\":\"abc\"}";
    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_responses(body, strlen(body), NULL, NULL, NULL,
                                      &req, &err);
    ok(rc == SLORA_OK && memcmp(req.cache_salt, abc, 16) == 0,
       "the Responses API: cache_salt taken as chat takes it (%s)",
       err.msg);
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"cache_salt\":\"\"}",
               &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.param, "cache_salt") == 0
       && strcmp(err.code, "invalid_value") == 0
       && strcmp(err.msg, "cache_salt must be a non-empty string") == 0,
       "cache_salt \"\": 400 (%s)", err.msg);
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
               "\"cache_salt\":42}", &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.param, "cache_salt") == 0
       && strcmp(err.code, "invalid_type") == 0,
       "cache_salt 42: 400 invalid_type (%s)", err.msg);
    slora_openai_req_free(&req);
}


static void
test_priority(void)
{
    int                  rc;
    size_t               i;
    const char          *body;
    slora_openai_req_t   req;
    slora_openai_err_t   err;

    static const struct {
        slora_openai_kind_e  kind;
        const char          *body;
        int                  taken;
    } cases[] = {
        { CHAT, "{\"model\":\"base\"," MSGS ",\"priority\":0}", 1 },
        { COMP, "{\"model\":\"base\",\"prompt\":\"x\",\"priority\":null}",
          1 },
        { CHAT, "{\"model\":\"base\"," MSGS ",\"priority\":1}", 0 },
        { COMP, "{\"model\":\"base\",\"prompt\":\"x\",\"priority\":-5}",
          0 },
        { CHAT, "{\"model\":\"base\"," MSGS ",\"priority\":\"0\"}", 0 },
    };

    body = "{\"model\":\"base\",\"input\":\"Hi\",\"priority\":3}";
    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_responses(body, strlen(body), NULL, NULL, NULL,
                                      &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.param, "priority") == 0,
       "the Responses API: priority 3 refused as chat refuses it (%s)",
       err.msg);
    slora_openai_req_free(&req);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rc = parse(cases[i].kind, cases[i].body, &req, &err);

        if (cases[i].taken) {
            ok(rc == SLORA_OK, "taken: %s", cases[i].body);

        } else {
            ok(rc == SLORA_ERROR && err.status == 400
               && strcmp(err.param, "priority") == 0
               && strcmp(err.code, "unsupported_parameter") == 0
               && strstr(err.msg, "--priority") != NULL,
               "refused: %s: %s", cases[i].body, err.msg);
        }

        slora_openai_req_free(&req);
    }
}
