/*
 * grammar_run.h: what the guided_grammar tests (test_grammar.c,
 * test_grammar_stack.c) share: whether a compiled grammar derives a
 * text, a grammar held to texts it derives and texts it does not, and
 * the engine's greedy and sampled answers under a grammar on SmolLM2,
 * each held to an expression PCRE2 reads, written by hand.
 */

#ifndef GRAMMAR_RUN_H
#define GRAMMAR_RUN_H


#include <string.h>

#include "tap.h"
#include "pcre_whole.h"
#include "chat_run.h"
#include "slora_json.h"
#include "slora_engine.h"


/* 1 when the grammar's schema takes text whole and the answer may end
 * there. */
static inline int
grammar_derives(const slora_json_schema_t *s, const char *text)
{
    slora_json_t  j;

    slora_json_init(&j, s);

    return slora_json_feed(&j, text, strlen(text))
           && (slora_json_done(&j) || slora_json_may_end(&j));
}


/* The grammar is taken (one test), and derives each of in[0, n) and
 * none of out[0, n) (another); a NULL ends either list early. */
static inline void
grammar_texts(const char *what, const char *grammar, const char *const *in,
    const char *const *out, size_t n)
{
    int                   good;
    size_t                k;
    slora_err_t           err;
    slora_json_schema_t  *s;

    s = slora_json_grammar_parse(grammar, strlen(grammar), &err);
    if (!ok(s != NULL, "%s: taken", what)) {
        diag("%s", err.msg);
        return;
    }

    good = 1;

    for (k = 0; k < n && in[k] != NULL; k++) {
        if (!grammar_derives(s, in[k])) {
            diag("not derived: \"%s\"", in[k]);
            good = 0;
        }
    }

    for (k = 0; k < n && out[k] != NULL; k++) {
        if (grammar_derives(s, out[k])) {
            diag("derived: \"%s\"", out[k]);
            good = 0;
        }
    }

    ok(good, "%s: the texts it derives, and none of the others", what);

    slora_json_schema_free(s);
}


/* Two requests under grammar to prompt, greedy and sampled (48 tokens at
 * most): none fails, each answer a whole match of by_hand (PCRE2's
 * syntax), ending stop. */
static inline void
grammar_answers(const slora_tokenizer_t *tok, const char *grammar,
    const char *prompt, const char *by_hand)
{
    int               k;
    char              text[CHAT_RUN_TOKENS * 8];
    int32_t           ids[CHAT_RUN_TOKENS], stop[8];
    chat_run_t        run;
    slora_err_t       err;
    slora_engine_t   *e;
    slora_request_t   req;

    e = chat_run_engine(tok);
    chat_run_request(&req, tok, prompt, ids, stop);

    for (k = 0; k < 2; k++) {
        req.id = (uint64_t) k;
        req.json_schema = grammar;
        req.json_schema_len = strlen(grammar);
        req.json_form = SLORA_JSON_FORM_GRAMMAR;
        req.sampling.max_tokens = 48;
        req.sampling.temperature = k > 0 ? 1.0f : 0;
        req.sampling.seed = 5;

        if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
            BAIL_OUT("submit: %s", err.msg);
        }
    }

    chat_run_steps(e, &run);
    is_int(run.errors, 0, "the grammar's requests: none failed");

    for (k = 0; k < 2; k++) {
        chat_run_text(tok, run.tokens[k], run.n[k], text, sizeof(text));
        ok(run.finish[k] == SLORA_FINISH_STOP && pcre_whole(by_hand, text),
           "%s: \"%s\", a text of the grammar as PCRE2 reads /%s/, ending "
           "stop", k ? "sampled" : "greedy", text, by_hand);
    }

    slora_engine_free(e);
}


#endif /* GRAMMAR_RUN_H */
