/*
 * test_json_choice.c: answers held to a schema in other ways than one
 * whole JSON document (slora_json.h).
 *
 *   (a) a choice of texts (vLLM's guided_choice): the lists refused; each
 *       text taken whole, done at its last byte, nothing before or after
 *       it, no other; the mask against every SmolLM2 token along each;
 *       the engine's greedy and sampled answers one of the texts.
 *   (b) a lazy schema (tools, "auto"): its trigger found at the end of
 *       the output however the tokens split it, once; the engine's
 *       greedy answer the free one up to the trigger, a value the schema
 *       admits right after it, and free again after that; a lead trigger
 *       (a call that opens the answer) whose completing token would run
 *       on where the call does not go is refused that token.
 *   (c) a regular expression (vLLM's guided_regex): the text as it is,
 *       may end wherever it is a match, done where nothing extends it;
 *       the mask against every token along texts; the engine's greedy
 *       and sampled answers each a whole match as PCRE2 reads the
 *       expression, ending with the model's end of text where the match
 *       could go on.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "pcre_whole.h"
#include "chat_run.h"
#include "mask_check.h"
#include "slora_json.h"
#include "slora_engine.h"


static void test_choice(const slora_tokenizer_t *tok,
    const slora_json_vocab_t *v);
static void test_trigger_lead(const slora_tokenizer_t *tok);
static void test_trigger(const slora_tokenizer_t *tok,
    const slora_json_vocab_t *v);
static void test_regex(const slora_tokenizer_t *tok,
    const slora_json_vocab_t *v);
static int lead_guarded(slora_engine_t *e, slora_request_t *req,
    const slora_tokenizer_t *tok, char *text, size_t size);


int
main(void)
{
    slora_tokenizer_t   *tok;
    slora_json_vocab_t  *v;

    v = mask_check_vocab(&tok);

    test_choice(tok, v);
    test_trigger(tok, v);
    test_regex(tok, v);

    slora_json_vocab_free(v);
    slora_tokenizer_free(tok);

    return done_testing();
}


/* (a) */
static void
test_choice(const slora_tokenizer_t *tok, const slora_json_vocab_t *v)
{
    int                   i, k, whole, others, same, in;
    char                  text[CHAT_RUN_TOKENS * 8], big[1024];
    size_t                n, at, states;
    int32_t               ids[256], stop[4];
    chat_run_t            run;
    slora_err_t           err;
    slora_json_t          j;
    slora_engine_t       *e;
    slora_request_t       req;
    slora_json_schema_t  *s;

    static const char  *choices[] = { "positive", "negative", "neutral",
                                      "{\"x\": 1}", "\xc3\xa9t\xc3\xa9" };
    static const char   list[] = "[\"positive\",\"negative\",\"neutral\","
                                 "\"{\\\"x\\\": 1}\",\"\u00e9t\u00e9\"]";
    static const struct { const char *list; const char *says; }  bad[] = {
        { "[\"yes\",\"yes please\"]", "one is the start of the other" },
        { "[\"a\",\"b\",\"a\"]", "the same text" },
        { "[\"a\",\"\"]", "choice 1 is not a non-empty string" },
        { "[\"a\",2]", "choice 1 is not a non-empty string" },
        { "[]", "an array of 1 to 64 strings" },
        { "{\"a\":1}", "an array of 1 to 64 strings" },
        { "[\"a\"", "an array of 1 to 64 strings" },
    };

    for (i = 0; i < (int) (sizeof(bad) / sizeof(bad[0])); i++) {
        err.msg[0] = '\0';
        s = slora_json_choice_parse(bad[i].list, strlen(bad[i].list), &err);
        ok(s == NULL && strstr(err.msg, bad[i].says) != NULL,
           "choices %s refused: %s", bad[i].list, err.msg);
        slora_json_schema_free(s);
    }

    n = (size_t) sprintf(big, "[\"c0\"");
    for (k = 1; k < 65; k++) {
        n += (size_t) sprintf(big + n, ",\"c%d\"", k);
    }
    sprintf(big + n, "]");
    s = slora_json_choice_parse(big, strlen(big), &err);
    ok(s == NULL, "65 choices refused");
    slora_json_schema_free(s);

    s = slora_json_choice_parse(list, strlen(list), &err);
    ok(s != NULL, "five choices, JSON among them, compile: %s",
       s ? "" : err.msg);
    if (s == NULL) {
        return;
    }

    whole = 1;
    others = 1;

    for (i = 0; i < 5; i++) {
        slora_json_init(&j, s);
        n = strlen(choices[i]);

        for (at = 0; at < n; at++) {
            whole &= slora_json_feed(&j, choices[i] + at, 1)
                     && slora_json_done(&j) == (at == n - 1);
        }

        /* nothing after it */
        others &= !slora_json_feed(&j, " ", 1);
    }

    ok(whole, "each text taken whole, done only at its last byte");
    ok(others, "and nothing taken after it");

    {
        static const char  *no[] = { " positive", "Positive", "pos itive",
                                     "\"positive\"", "neutra", "x" };

        others = 1;

        for (i = 0; i < (int) (sizeof(no) / sizeof(no[0])); i++) {
            slora_json_init(&j, s);
            others &= !(slora_json_feed(&j, no[i], strlen(no[i]))
                        && slora_json_done(&j));
        }

        ok(others, "no blank before, no other case, spelling, quotes, "
           "part or text");
    }

    /* the mask along each text */
    states = 0;
    same = mask_agrees_along(tok, v, s, choices, 5, &states);
    ok(same && states > 0, "the mask is what trying each of SmolLM2's "
       "tokens gives, at every byte of each text (%zu states)", states);
    slora_json_schema_free(s);

    /* the engine: greedy, and sampled twice */
    e = chat_run_engine(tok);
    chat_run_request(&req, tok, "Is this review positive, negative or "
                     "neutral? \"The food was cold and the waiter rude.\"",
                     ids, stop);

    /* the fourth with min_tokens past any text's tokens: a text the
     * choice ends lets the stop ids come all the same */
    for (i = 0; i < 4; i++) {
        req.id = (uint64_t) i;
        req.json_schema = list;
        req.json_schema_len = strlen(list);
        req.json_form = SLORA_JSON_FORM_CHOICE;
        req.sampling.max_tokens = 16;
        req.sampling.temperature = i == 1 || i == 2 ? 1.5f : 0;
        req.sampling.seed = (uint64_t) i;
        req.sampling.min_tokens = i == 3 ? 12 : 0;

        if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
            BAIL_OUT("submit: %s", err.msg);
        }
    }

    memset(&run, 0, sizeof(run));
    chat_run_steps(e, &run);
    is_int(run.errors, 0, "no choice request failed");

    for (i = 0; i < 4; i++) {
        chat_run_text(tok, run.tokens[i], run.n[i], text, sizeof(text));
        in = 0;

        for (k = 0; k < 5; k++) {
            in |= strcmp(text, choices[k]) == 0;
        }

        ok(in && run.finish[i] == SLORA_FINISH_STOP, "answer %d is one of "
           "the texts, ending as it does%s: %s", i,
           i == 3 ? " (min_tokens 12)" : "", text);
    }

    req.sampling.min_tokens = 0;

    req.id = 9;
    req.json_schema = "[\"a\",\"ab\"]";
    req.json_schema_len = strlen(req.json_schema);
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "guided_choice") != NULL
       && strstr(err.msg, "the start of the other") != NULL,
       "choices the compiler refuses are refused at submit: %s", err.msg);

    slora_engine_free(e);
}


/* (b) */
static void
test_trigger(const slora_tokenizer_t *tok, const slora_json_vocab_t *v)
{
    int                    i, k, fired, at_end, whole, after, gated;
    char                   text[CHAT_RUN_TOKENS * 8], trig[64];
    size_t                 n;
    int32_t                ids[256], stop[4];
    chat_run_t             run, run_free;
    slora_err_t            err;
    slora_json_t           j;
    slora_engine_t        *e;
    slora_request_t        req;
    slora_json_vocab_t    *tv;
    slora_json_schema_t   *s;
    slora_json_trigger_t   t;

    /* 8: a control token (no bytes), the trigger's own */
    static const char    *toks[] = { "<tool", "_call", ">", "<tool_call>",
                                     "x<tool_call>", "<tool_call>y", "\n",
                                     "_call>", "" };
    static const size_t   lens[] = { 5, 5, 1, 11, 12, 12, 1, 6, 0 };
    static const struct { int32_t ids[4]; int n; int fires; }  cases[] = {
        { { 0, 1, 2 }, 3, 1 },          /* split in three */
        { { 3 }, 1, 1 },                /* one token */
        { { 4 }, 1, 1 },                /* at a token's end */
        { { 5 }, 1, 1 },                /* running on past it */
        { { 6, 0, 7 }, 3, 1 },          /* after other text */
        { { 0, 6, 1, 2 }, 4, 0 },       /* broken by a newline */
        { { 6, 8 }, 2, 1 },             /* its control token */
        { { 0, 8, 1, 2 }, 4, 1 },       /* that token, then no text */
    };
    static const char  one[] = "{\"type\":\"object\",\"properties\":{"
                               "\"n\":{\"type\":\"integer\"}},"
                               "\"required\":[\"n\"]}";

    tv = slora_json_vocab_from(toks, lens, 9, &err);
    if (tv == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    at_end = 1;

    for (i = 0; i < (int) (sizeof(cases) / sizeof(cases[0])); i++) {
        memset(&t, 0, sizeof(t));
        memcpy(t.text, "<tool_call>", 11);
        t.len = 11;
        t.id = 8;
        fired = 0;

        for (k = 0; k < cases[i].n; k++) {
            fired += slora_json_trigger_feed(&t, tv, cases[i].ids[k]);
        }

        at_end &= fired == cases[i].fires
                  && slora_json_trigger_feed(&t, tv, 6) == 0;
    }

    ok(at_end, "a trigger is found however tokens split it, at a token's "
       "end or inside one, not across other text, once; and at its own "
       "control token");
    memset(&t, 0, sizeof(t));
    memcpy(t.text, "<tool_call>", 11);
    t.len = 11;
    t.id = 8;
    ok(slora_json_trigger_feed(&t, tv, 0) == 0
       && slora_json_trigger_feed(&t, tv, 6) == 0
       && slora_json_trigger_feed(&t, tv, 5) == 1 && t.past == 1
       && slora_json_trigger_feed(&t, tv, 3) == 1 && t.past == 0,
       "a trigger that a token runs on past: the bytes past it counted, "
       "for the schema to take");
    slora_json_vocab_free(tv);

    /* a token that runs on past the trigger with blanks: they are before
     * the value, none of it, compact or not (a think block's
     * "</think>\n\n{"); a blank inside the value is the value's */
    {
        static const char    *ttoks[] = { "</think>\n\n{", "</think>{ " };
        static const size_t   tlens[] = { 11, 10 };

        tv = slora_json_vocab_from(ttoks, tlens, 2, &err);
        if (tv == NULL) {
            BAIL_OUT("%s", err.msg);
        }

        whole = 1;

        for (k = 0; k < 2; k++) {
            memset(&t, 0, sizeof(t));
            memcpy(t.text, "</think>", 8);
            t.len = 8;
            t.id = -1;
            slora_json_init(&j, NULL);
            j.compact = (uint8_t) k;
            whole &= slora_json_trigger_feed(&t, tv, 0) == 1 && t.past == 3
                     && slora_json_trigger_past(&t, &j, tv, 0) == 1
                     && j.depth == 1;
        }

        ok(whole, "blanks past the trigger, before the value: passed over,"
           " compact or not");
        memset(&t, 0, sizeof(t));
        memcpy(t.text, "</think>", 8);
        t.len = 8;
        t.id = -1;
        slora_json_init(&j, NULL);
        j.compact = 1;
        ok(slora_json_trigger_feed(&t, tv, 1) == 1 && t.past == 2
           && slora_json_trigger_past(&t, &j, tv, 1) == 0,
           "... a blank inside a compact value refused");
        slora_json_vocab_free(tv);
    }

    /* the engine: the free greedy answer; then with a schema that holds
     * from its first few bytes on */
    e = chat_run_engine(tok);
    chat_run_request(&req, tok, "Describe a city in JSON.", ids, stop);
    req.id = 0;
    req.sampling.max_tokens = 48;
    req.sampling.temperature = 0;

    if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
        BAIL_OUT("submit: %s", err.msg);
    }

    memset(&run, 0, sizeof(run));
    chat_run_steps(e, &run);
    run_free = run;

    for (k = 1; k <= run.n[0]; k++) {
        chat_run_text(tok, run.tokens[0], k, trig, sizeof(trig));
        if (strlen(trig) >= 3) {
            break;
        }
    }

    n = strlen(trig);
    ok(n >= 3 && n <= SLORA_JSON_TRIGGER_MAX, "the trigger: the free "
       "answer's first %d tokens, \"%s\"", k, trig);

    req.id = 1;
    req.json_schema = one;
    req.json_schema_len = strlen(one);
    req.json_trigger = trig;
    req.json_trigger_len = n;

    if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
        BAIL_OUT("submit: %s", err.msg);
    }

    memset(&run, 0, sizeof(run));
    chat_run_steps(e, &run);
    chat_run_text(tok, run.tokens[1], run.n[1], text, sizeof(text));
    diag("lazy: %s", text);

    s = slora_json_schema_parse(one, strlen(one), &err);
    slora_json_init(&j, s);
    whole = strncmp(text, trig, n) == 0;

    for (i = k; whole && i < run.n[1] && !slora_json_done(&j); i++) {
        whole = slora_json_feed_token(&j, v, run.tokens[1][i]);
    }

    after = run.n[1] - i;
    ok(whole && slora_json_done(&j), "the same answer to the trigger, then "
       "a value the schema admits");
    ok(after > 0, "and it goes on after the value (%d tokens more), the "
       "value's end no end of the answer", after);

    /* behind a gate of the same text, the trigger passes the gate at
     * the answer's start and does not fire there: the free answer (but
     * for a second time the text comes) */
    req.id = 3;
    req.json_trigger_len = n;
    req.json_gate = trig;
    req.json_gate_len = n;

    if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
        BAIL_OUT("submit: %s", err.msg);
    }

    memset(&run, 0, sizeof(run));
    chat_run_steps(e, &run);
    chat_run_text(tok, run.tokens[3], run.n[3], text, sizeof(text));
    gated = strstr(text + n, trig) == NULL && run.n[3] == run_free.n[0]
            && memcmp(run.tokens[3], run_free.tokens[0],
                      (size_t) run.n[3] * sizeof(int32_t)) == 0;
    ok(gated, "a trigger behind a gate it passes at the start: the free "
       "answer, the schema never held");

    req.json_gate = NULL;
    req.json_gate_len = 0;
    req.id = 2;
    req.json_trigger_len = SLORA_JSON_TRIGGER_MAX + 1;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "trigger") != NULL, "a trigger of %d bytes is "
       "refused: %s", SLORA_JSON_TRIGGER_MAX + 1, err.msg);

    slora_json_schema_free(s);
    slora_engine_free(e);

    test_trigger_lead(tok);
}


/*
 * A lead trigger (Llama 3.1's call, '{"name":'): found only as the
 * output's first bytes, however tokens split them or run on past them,
 * and the value held from those bytes on; in the engine, an answer that
 * begins otherwise is the free answer, and one that begins with it is
 * the call, ending where the call does.
 */
static void
test_trigger_lead(const slora_tokenizer_t *tok)
{
    int                    i, k, fired, good, taken;
    char                   text[CHAT_RUN_TOKENS * 8];
    char                   free_text[CHAT_RUN_TOKENS * 8];
    int32_t                ids[256], stop[4], brace;
    chat_run_t             run;
    slora_err_t            err;
    slora_json_t           j;
    slora_engine_t        *e;
    slora_request_t        req;
    slora_json_vocab_t    *tv;
    slora_json_schema_t   *s;
    slora_json_trigger_t   t;

    static const char    *toks[] = { "{\"", "name", "\":", "\":\"", " {",
                                     "x", "\":\"y", "\n", "\"name\":",
                                     " {\"name\":" };
    static const size_t   lens[] = { 2, 4, 2, 3, 2, 1, 4, 1, 7, 9 };
    static const struct { int32_t ids[4]; int n; int fires; uint32_t at; }
        cases[] = {
        { { 0, 1, 2 }, 3, 1, 6 },       /* split in three */
        { { 0, 1, 3 }, 3, 1, 6 },       /* the last runs on past it */
        { { 0, 1, 6 }, 3, 1, 6 },       /* further */
        { { 7, 0, 1, 2 }, 4, 1, 6 },    /* after a blank */
        { { 4, 8 }, 2, 1, 1 },          /* after a blank in its token */
        { { 9 }, 1, 1, 0 },             /* one token, a blank first */
        { { 4, 0, 1, 2 }, 4, 0, 0 },    /* a brace twice */
        { { 5, 0, 1, 2 }, 4, 0, 0 },    /* text first */
        { { 0, 5, 1, 2 }, 4, 0, 0 },    /* broken */
    };
    static const char  call[] =
        "{\"type\":\"object\",\"properties\":{\"name\":{\"const\":"
        "\"get_time\"},\"parameters\":{\"type\":\"object\","
        "\"properties\":{},\"additionalProperties\":false}},"
        "\"required\":[\"name\",\"parameters\"]}";

    tv = slora_json_vocab_from(toks, lens, 10, &err);
    s = slora_json_schema_parse(call, strlen(call), &err);
    if (tv == NULL || s == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    good = 1;

    for (i = 0; i < (int) (sizeof(cases) / sizeof(cases[0])); i++) {
        memset(&t, 0, sizeof(t));
        memcpy(t.text, "{\"name\":", 8);
        t.len = 8;
        t.lead = 1;
        t.id = -1;
        fired = 0;

        for (k = 0; k < cases[i].n && !fired; k++) {
            fired = slora_json_trigger_feed(&t, tv, cases[i].ids[k]);
        }

        taken = 0;

        if (fired) {
            slora_json_init(&j, s);
            taken = slora_json_trigger_lead(&t, &j, tv,
                                            cases[i].ids[k - 1]);
        }

        good &= fired == cases[i].fires && (!fired || t.at == cases[i].at)
                && slora_json_trigger_feed(&t, tv, 0) == 0
                && slora_json_trigger_feed(&t, tv, 2) == 0
                && taken == (fired && cases[i].ids[k - 1] != 6);

        if (!good) {
            diag("case %d: fired %d at %u, taken %d", i, fired, t.at, taken);
            break;
        }
    }

    ok(good, "a lead trigger is found only as the output's first bytes "
       "but blanks, however split, the token that ends it maybe running "
       "on; the value then takes those bytes (\"y\" is no name the "
       "schema has)");
    slora_json_vocab_free(tv);

    /* the engine: the free greedy answer, then the same with the lead
     * trigger (it begins otherwise: the same answer), then with the
     * tokens '{"', 'name' and '":' pushed up (the model writes them
     * first, in that order: the call, the schema's one value, and the
     * answer ends with it) */
    e = chat_run_engine(tok);
    chat_run_request(&req, tok, "What time is it?", ids, stop);
    req.sampling.max_tokens = 40;
    req.sampling.temperature = 0;

    for (k = 0; k < 2; k++) {
        req.id = (uint64_t) k;
        req.json_schema = k ? call : NULL;
        req.json_schema_len = k ? strlen(call) : 0;
        req.json_trigger = k ? "{\"name\":" : NULL;
        req.json_trigger_len = k ? 8 : 0;
        req.json_trigger_lead = k;

        if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
            BAIL_OUT("submit: %s", err.msg);
        }
    }

    memset(&run, 0, sizeof(run));
    chat_run_steps(e, &run);
    chat_run_text(tok, run.tokens[0], run.n[0], free_text,
                  sizeof(free_text));
    chat_run_text(tok, run.tokens[1], run.n[1], text, sizeof(text));
    ok(run.n[0] == run.n[1] && strcmp(text, free_text) == 0
       && strncmp(free_text, "{\"name\":", 8) != 0,
       "an answer that does not begin with the lead trigger is the free "
       "one (%d tokens)", run.n[1]);

    req.id = 2;
    req.sampling.n_logit_bias = 3;

    for (k = 0; k < 3; k++) {
        brace = slora_tokenizer_find(tok, toks[k], lens[k]);
        req.sampling.logit_bias_ids[k] = brace;
        req.sampling.logit_bias[k] = 100;
        good &= brace >= 0;
    }

    ok(good, "SmolLM2 has the tokens '{\"', 'name' and '\":'");

    /* pushed, '{"' wants to come inside the empty parameters too, where
     * it may not: the model fills the blanks it may write there first */
    req.sampling.max_tokens = 120;

    if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
        BAIL_OUT("submit: %s", err.msg);
    }

    memset(&run, 0, sizeof(run));
    chat_run_steps(e, &run);
    chat_run_text(tok, run.tokens[2], run.n[2], text, sizeof(text));
    diag("lead: %s", text);
    slora_json_init(&j, s);
    ok(strncmp(text, "{\"name\":", 8) == 0
       && slora_json_feed(&j, text, strlen(text)) && slora_json_done(&j)
       && run.n[2] < req.sampling.max_tokens,
       "an answer that begins with it is the call the schema holds, and "
       "ends with it");

    /* the guard: with a name that must be a number, '":"' pushed up
     * would complete the trigger and run on where the call does not go
     * (and the answer then be free text that begins like a call): it is
     * refused, and the answer goes on otherwise */
    ok(lead_guarded(e, &req, tok, text, sizeof(text)),
       "pushed to write '{\"name\":\"' where the name is a number, the "
       "token that would complete the trigger with '\"' is refused: %s",
       text);

    /* the lead '{' and '{}' the only token allowed: it would complete
     * the trigger and close the object where "name" must come, so the
     * guard leaves none, and the error says why */
    req.id = 3;
    req.json_trigger = "{";
    req.json_trigger_len = 1;
    req.sampling.n_logit_bias = 0;
    req.sampling.n_allowed = 1;
    req.sampling.allowed_ids[0] = slora_tokenizer_find(tok, "{}", 2);

    if (req.sampling.allowed_ids[0] < 0
        || slora_engine_submit(e, &req, &err) != SLORA_OK)
    {
        BAIL_OUT("SmolLM2's '{}'; submit: %s", err.msg);
    }

    memset(&run, 0, sizeof(run));
    chat_run_steps(e, &run);
    req.sampling.n_allowed = 0;
    ok(chat_run_guard_refused(&run, 3),
       "allowed_token_ids of '{}' alone under the lead '{' where a name "
       "must come: an error naming the trigger: %s", run.error);

    req.json_trigger = NULL;
    req.json_trigger_len = 0;
    req.id = 3;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "trigger") != NULL,
       "a lead without a trigger is refused: %s", err.msg);

    slora_json_schema_free(s);
    slora_engine_free(e);
}



/* Request 3 (req's chat and lead trigger, the name a number), '{"', 'name'
 * and '":"' pushed up: whether it answers, with no call or one the
 * schema holds, and never begins '{"name":"'. */
static int
lead_guarded(slora_engine_t *e, slora_request_t *req,
    const slora_tokenizer_t *tok, char *text, size_t size)
{
    int                   k, good;
    chat_run_t            run;
    slora_err_t           err;
    slora_json_t          j;
    slora_json_schema_t  *s;

    static const char    *toks[] = { "{\"", "name", "\":\"" };
    static const size_t   lens[] = { 2, 4, 3 };
    static const char     number[] =
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":"
        "\"integer\"}},\"required\":[\"name\"]}";

    s = slora_json_schema_parse(number, strlen(number), &err);
    if (s == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    req->id = 3;
    req->json_schema = number;
    req->json_schema_len = strlen(number);
    req->sampling.max_tokens = 40;
    req->sampling.n_logit_bias = 3;

    for (k = 0, good = 1; k < 3; k++) {
        req->sampling.logit_bias_ids[k] = slora_tokenizer_find(tok, toks[k],
                                                               lens[k]);
        req->sampling.logit_bias[k] = 100;
        good &= req->sampling.logit_bias_ids[k] >= 0;
    }

    if (!good || slora_engine_submit(e, req, &err) != SLORA_OK) {
        BAIL_OUT("SmolLM2's '{\"', 'name', '\":\"'; submit: %s", err.msg);
    }

    memset(&run, 0, sizeof(run));
    chat_run_steps(e, &run);
    chat_run_text(tok, run.tokens[3], run.n[3], text, size);

    slora_json_init(&j, s);
    good = run.n[3] > 0 && run.errors == 0
           && strncmp(text, "{\"name\":\"", 9) != 0
           && (strncmp(text, "{\"name\":", 8) != 0
               || slora_json_feed(&j, text, strlen(text)));
    slora_json_schema_free(s);

    return good;
}

/* (c) */
static void
test_regex(const slora_tokenizer_t *tok, const slora_json_vocab_t *v)
{
    int                   i, good, same;
    char                  text[CHAT_RUN_TOKENS * 8];
    float                *row;
    size_t                at, states;
    int32_t               ids[CHAT_RUN_TOKENS], stop[8];
    chat_run_t            run;
    slora_err_t           err;
    slora_json_t          j;
    slora_engine_t       *e;
    slora_request_t       req;
    slora_json_schema_t  *s;

    static const char  zip[] = "\\d{5}(-\\d{4})?";
    static const char  *texts[] = { "12345", "12345-6789" };

    static const struct {
        const char  *prompt;
        const char  *re;
        int          max_tokens;
    } asks[] = {
        { "How many legs does a spider have? Answer with a number.",
          "[0-9]+", 8 },
        { "Is the sky green? Answer yes or no, then say why in a few words.",
          "(Yes|No), because [a-z ]{5,40}\\.", 48 },
        { "Give a date in ISO format.", "\\d{4}-\\d{2}-\\d{2}", 16 },
    };

    s = slora_json_regex_parse(zip, strlen(zip), &err);
    ok(s != NULL, "guided_regex %s compiles: %s", zip, s ? "" : err.msg);
    if (s == NULL) {
        return;
    }

    slora_json_init(&j, s);
    good = !slora_json_may_end(&j) && slora_json_feed(&j, "1234", 4)
           && !slora_json_may_end(&j) && slora_json_feed(&j, "5", 1)
           && slora_json_may_end(&j) && !slora_json_done(&j)
           && slora_json_feed(&j, "-678", 4) && !slora_json_may_end(&j)
           && slora_json_feed(&j, "9", 1) && slora_json_done(&j)
           && !slora_json_may_end(&j) && !slora_json_feed(&j, "0", 1);
    ok(good, "12345 may end, 12345-678 may not, 12345-6789 is done and "
       "takes nothing more");

    slora_json_init(&j, s);
    ok(!slora_json_feed(&j, " 1", 2) && (slora_json_init(&j, s), 1)
       && !slora_json_feed(&j, "\"1", 2) && (slora_json_init(&j, s), 1)
       && !slora_json_feed(&j, "123456", 6),
       "no blank or quote before it, no sixth digit");

    states = 0;
    same = mask_agrees_along(tok, v, s, texts, 2, &states);
    row = malloc((size_t) slora_tokenizer_n_vocab(tok) * sizeof(float));
    same &= row != NULL;

    slora_json_schema_free(s);

    /* quotes and backslashes are the text's own bytes here */
    s = slora_json_regex_parse("\"[a-z\\\\]+\"", 10, &err);
    slora_json_init(&j, s);
    ok(s != NULL && slora_json_feed(&j, "\"a\\b\"", 5)
       && slora_json_done(&j), "a regex of quotes and a backslash takes "
       "them as they are: %s", s ? "" : err.msg);

    for (at = 0; s != NULL && at < 5 && same; at++) {
        slora_json_init(&j, s);
        slora_json_feed(&j, "\"a\\b\"", at);
        same &= mask_agrees(tok, v, &j, row);
        states++;
    }

    ok(same && states > 0, "the mask is what trying each of SmolLM2's "
       "tokens gives, at every byte (%zu states)", states);
    free(row);
    slora_json_schema_free(s);

    s = slora_json_regex_parse("(|)", 3, &err);
    ok(s == NULL && strstr(err.msg, "only the empty text") != NULL,
       "a regex of the empty text alone refused: %s", err.msg);

    /* the engine: each prompt greedy, then sampled */
    e = chat_run_engine(tok);

    for (i = 0; i < 3; i++) {
        int  k;

        chat_run_request(&req, tok, asks[i].prompt, ids, stop);

        for (k = 0; k < 2; k++) {
            req.id = (uint64_t) k;
            req.json_schema = asks[i].re;
            req.json_schema_len = strlen(asks[i].re);
            req.json_form = SLORA_JSON_FORM_REGEX;
            req.sampling.max_tokens = asks[i].max_tokens;
            req.sampling.temperature = k > 0 ? 1.0f : 0;
            req.sampling.seed = (uint64_t) i + 3;

            if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
                BAIL_OUT("submit: %s", err.msg);
            }
        }

        chat_run_steps(e, &run);
        is_int(run.errors, 0, "/%s/: no request failed", asks[i].re);

        for (k = 0; k < 2; k++) {
            chat_run_text(tok, run.tokens[k], run.n[k], text, sizeof(text));
            ok(run.finish[k] == SLORA_FINISH_STOP
               && pcre_whole(asks[i].re, text),
               "/%s/ %s: \"%s\", a whole match as PCRE2 reads it, ending "
               "stop", asks[i].re, k ? "sampled" : "greedy", text);
        }
    }

    slora_engine_free(e);
}
