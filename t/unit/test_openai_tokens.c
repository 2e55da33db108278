/*
 * test_openai_tokens.c: the token endpoints' bodies (vLLM's /tokenize and
 * /detokenize, engine/slora_openai.c's slora_openai_parse_tokenize and
 * slora_openai_parse_detokenize): a prompt or chat messages to encode,
 * token ids to decode, and the options each takes, parsed to the
 * request's fields or refused naming the field. Every request is freed,
 * failed ones too, so the ASan build finds a leak or a use after free.
 */

#include "tap.h"

#include "slora_openai.h"
#include "openai_eq.h"


#define CHAT  SLORA_OPENAI_CHAT
#define COMP  SLORA_OPENAI_COMPLETION


static void test_tokens(void);


int
main(void)
{
    test_tokens();

    return done_testing();
}


/* The token endpoints' bodies. */
static void
test_tokens(void)
{
    int                  rc;
    const char          *b;
    slora_openai_req_t   req;
    slora_openai_err_t   err;

    b = "{\"prompt\":\"Hello\"}";
    rc = slora_openai_parse_tokenize(b, strlen(b), NULL, &req, &err);
    ok(rc == SLORA_OK && req.kind == COMP && req.n_prompts == 1
       && streq(&req.prompts[0].text, "Hello"),
       "tokenize: a prompt string, no model");
    slora_openai_req_free(&req);

    b = "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":"
        "\"hi\"}]}";
    rc = slora_openai_parse_tokenize(b, strlen(b), NULL, &req, &err);
    ok(rc == SLORA_OK && req.kind == CHAT && req.n_msgs == 1,
       "tokenize: messages make a chat");
    slora_openai_req_free(&req);

    b = "{\"prompt\":\"Hello\",\"messages\":null}";
    rc = slora_openai_parse_tokenize(b, strlen(b), NULL, &req, &err);
    ok(rc == SLORA_OK && req.kind == COMP && req.n_prompts == 1
       && streq(&req.prompts[0].text, "Hello"),
       "tokenize: messages null is no chat: the prompt (%s)",
       rc == SLORA_OK ? "ok" : err.msg);
    slora_openai_req_free(&req);

    b = "{\"prompt\":\"Hello\",\"add_special_tokens\":false}";
    rc = slora_openai_parse_tokenize(b, strlen(b), NULL, &req, &err);
    ok(rc == SLORA_OK && req.no_special,
       "tokenize: add_special_tokens false, a prompt without BOS");
    slora_openai_req_free(&req);

    b = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    rc = slora_openai_parse_tokenize(b, strlen(b), NULL, &req, &err);
    ok(rc == SLORA_OK && req.kind == CHAT && !req.add_special,
       "tokenize: messages, the template's BOS alone by default");
    slora_openai_req_free(&req);

    b = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        "\"add_special_tokens\":true}";
    rc = slora_openai_parse_tokenize(b, strlen(b), NULL, &req, &err);
    ok(rc == SLORA_OK && req.kind == CHAT && req.add_special,
       "tokenize: messages with add_special_tokens true, the tokenizer's "
       "BOS on top of the template's, as a chat request has it");
    slora_openai_req_free(&req);

    b = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        "\"add_special_tokens\":1}";
    rc = slora_openai_parse_tokenize(b, strlen(b), NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.code, "invalid_type") == 0
       && strcmp(err.param, "add_special_tokens") == 0,
       "tokenize: messages, add_special_tokens not a boolean: %s", err.msg);
    slora_openai_req_free(&req);

    b = "{\"prompt\":\"Hello\",\"return_token_strs\":true}";
    rc = slora_openai_parse_tokenize(b, strlen(b), NULL, &req, &err);
    ok(rc == SLORA_OK && req.token_strs,
       "tokenize: vLLM's return_token_strs true asks for the entries");
    slora_openai_req_free(&req);

    b = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        "\"return_token_strs\":true}";
    rc = slora_openai_parse_tokenize(b, strlen(b), NULL, &req, &err);
    ok(rc == SLORA_OK && req.kind == CHAT && req.token_strs,
       "tokenize: messages with return_token_strs true");
    slora_openai_req_free(&req);

    b = "{\"prompt\":\"Hello\",\"return_token_strs\":false}";
    rc = slora_openai_parse_tokenize(b, strlen(b), NULL, &req, &err);
    ok(rc == SLORA_OK && !req.token_strs,
       "tokenize: return_token_strs false, ids alone");
    slora_openai_req_free(&req);

    b = "{\"prompt\":\"Hello\"}";
    rc = slora_openai_parse_tokenize(b, strlen(b), NULL, &req, &err);
    ok(rc == SLORA_OK && !req.token_strs,
       "tokenize: no return_token_strs, ids alone");
    slora_openai_req_free(&req);

    b = "{\"prompt\":\"Hello\",\"return_token_strs\":\"yes\"}";
    rc = slora_openai_parse_tokenize(b, strlen(b), NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.code, "invalid_type") == 0
       && strcmp(err.param, "return_token_strs") == 0,
       "tokenize: return_token_strs not a boolean: %s", err.msg);
    slora_openai_req_free(&req);

    b = "{\"prompt\":[\"a\",\"b\"]}";
    rc = slora_openai_parse_tokenize(b, strlen(b), NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.param, "prompt") == 0,
       "tokenize: two prompts refused: %s", err.msg);
    slora_openai_req_free(&req);

    b = "{\"prompt\":[1,2]}";
    rc = slora_openai_parse_tokenize(b, strlen(b), NULL, &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.param, "prompt") == 0,
       "tokenize: token ids refused");
    slora_openai_req_free(&req);

    b = "{}";
    rc = slora_openai_parse_tokenize(b, strlen(b), NULL, &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.code, "missing_required_parameter")
       == 0, "tokenize: nothing to tokenize");
    slora_openai_req_free(&req);

    b = "{\"tokens\":[9906,0,2147483647]}";
    rc = slora_openai_parse_detokenize(b, strlen(b), &req, &err);
    ok(rc == SLORA_OK && req.n_prompts == 1 && req.prompts[0].n_ids == 3
       && req.prompts[0].ids[0] == 9906 && req.prompts[0].ids[2]
          == 2147483647, "detokenize: token ids");
    slora_openai_req_free(&req);

    b = "{\"tokens\":[]}";
    rc = slora_openai_parse_detokenize(b, strlen(b), &req, &err);
    ok(rc == SLORA_OK && req.n_prompts == 1 && req.prompts[0].n_ids == 0,
       "detokenize: no token ids, the empty text");
    slora_openai_req_free(&req);

    b = "{\"tokens\":\"9906\"}";
    rc = slora_openai_parse_detokenize(b, strlen(b), &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.code, "invalid_type") == 0
       && strcmp(err.param, "tokens") == 0, "detokenize: tokens a string");
    slora_openai_req_free(&req);

    b = "{\"tokens\":[1,-2]}";
    rc = slora_openai_parse_detokenize(b, strlen(b), &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.param, "tokens") == 0,
       "detokenize: a negative id: %s", err.msg);
    slora_openai_req_free(&req);

    b = "{\"tokens\":[1]";
    rc = slora_openai_parse_detokenize(b, strlen(b), &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.code, "invalid_json") == 0,
       "detokenize: malformed JSON");
    slora_openai_req_free(&req);

    b = "{\"tokens\":[1]} {\"tokens\":[2]}";
    rc = slora_openai_parse_detokenize(b, strlen(b), &req, &err);
    ok(rc == SLORA_ERROR && err.code != NULL
       && strcmp(err.code, "invalid_json") == 0,
       "detokenize: two objects are no JSON object, as for every body");
    slora_openai_req_free(&req);

    b = "{\"tokens\":[1]}x";
    rc = slora_openai_parse_detokenize(b, strlen(b), &req, &err);
    ok(rc == SLORA_ERROR && err.code != NULL
       && strcmp(err.code, "invalid_json") == 0,
       "detokenize: trailing garbage");
    slora_openai_req_free(&req);

    b = "{}";
    rc = slora_openai_parse_detokenize(b, strlen(b), &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.code, "missing_required_parameter")
       == 0, "detokenize: no tokens");
    slora_openai_req_free(&req);
}
