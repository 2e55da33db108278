/*
 * test_engine_schemas.c: the compiled constraints the engine keeps
 * (engine/slora_engine_schemas.c), on SmolLM2 on the CPU, through its
 * stats (what /status shows as "constraints").
 *
 *   (a) four requests of one guided_choice, greedy and sampled, at once:
 *       one compile, three taken as kept, one kept; each answer one of
 *       the texts.
 *   (b) the same list after they ended: taken as kept, the greedy answer
 *       the same as before.
 *   (c) a list the compiler refuses: refused at submit, nothing kept.
 *   (d) SLORA_ENGINE_SCHEMAS + 1 regexes, each run in turn: the oldest
 *       no request holds makes room (kept stays at the bound; the first
 *       compiled again, the last taken as kept).
 *   (e) the bound's worth of regexes waiting at once, and one more: the
 *       entries grow for it (compiled and kept, the same again taken as
 *       kept), its answer a match; a held entry is not cleared for it;
 *       with the grown entries held too, one more asked with
 *       slora_engine_schema_ready compiles on the thread, not at its
 *       submit; after they end, every one stays kept.
 *   (f) long regexes, some 280 KB compiled each, in turn: the kept
 *       bytes reach SLORA_ENGINE_SCHEMA_BYTES before the count's bound
 *       and stay within it.
 *   (g) slora_engine_schema_ready: a constraint not kept compiles on the
 *       compile thread (0; behind slow ones, so still compiling when
 *       asked again: no second compile), the wake fd is written as each
 *       is done, then 1 and the submit
 *       takes it as kept; one the compiler refuses says 1 once done, and
 *       the submit refuses it with the compiler's reason, nothing kept;
 *       the keys (slora_engine_schema_keys) those of the kept alone;
 *       jobs compile in the order asked; the engine freed with a compile
 *       on the thread.
 *   (h) on an engine of its own: with every other entry held, a
 *       constraint compiled on the thread and not yet taken is spared
 *       when one more is asked ready (the entries grow; asked again it
 *       is ready, not compiled again); two steps later, its request
 *       gone, it is cleared for the next like any other; one taken by
 *       a request that is let go at once stays spared for another
 *       parked on it, through the same steps.
 *   (i) a burst of long regexes held at once takes the kept bytes over
 *       SLORA_ENGINE_SCHEMA_BYTES; their requests cancelled, all ended by
 *       one step, the bytes are back within it with no step or new
 *       constraint after to make room; the keys
 *       the most recently taken first; the keys' version moves as a
 *       constraint is kept, not as one is taken.
 * The ASan build finds a schema freed while held, or one never freed.
 */

#include <poll.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "chat_run.h"
#include "slora_json.h"
#include "slora_engine_int.h"


static void test_shared(slora_engine_t *e, const slora_tokenizer_t *tok);
static void test_bounds(slora_engine_t *e, const slora_tokenizer_t *tok);
static void test_bytes(slora_engine_t *e, const slora_tokenizer_t *tok);
static void test_ready(slora_engine_t *e, const slora_tokenizer_t *tok);
static void test_ready_order(slora_engine_t *e);
static void test_spared(const slora_tokenizer_t *tok);
static void test_burst(slora_engine_t *e, const slora_tokenizer_t *tok);
static int ready_after_wake(slora_engine_t *e, const char *re);
static void held_regexes(slora_engine_t *e, slora_request_t *req, int n,
    int from);
static int woken(slora_engine_t *e);
static void submit(slora_engine_t *e, slora_request_t *req, uint64_t id,
    int form, const char *text);
static void run_all(slora_engine_t *e);
static void collect(void *data, const slora_event_t *ev);


static const char  list[] = "[\"positive\",\"negative\",\"neutral\"]";


int
main(void)
{
    slora_err_t         err;
    slora_engine_t     *e;
    slora_tokenizer_t  *tok;

    tok = slora_tokenizer_load(CHAT_RUN_MODEL, &err);
    if (tok == NULL) {
        BAIL_OUT("%s: %s (make models)", CHAT_RUN_MODEL, err.msg);
    }

    e = chat_run_engine(tok);

    test_shared(e, tok);
    test_bounds(e, tok);
    test_bytes(e, tok);
    test_ready(e, tok);

    /* the engine's end with a compile on the thread */
    is_int(slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX,
                                     "(\\w|.){1,355}", 14), 0,
           "(g) a compile on the thread as the engine is freed");
    slora_engine_free(e);

    test_spared(tok);
    slora_tokenizer_free(tok);

    return done_testing();
}


/* (a), (b), (c) */
static void
test_shared(slora_engine_t *e, const slora_tokenizer_t *tok)
{
    int                    i, k, in;
    char                   text[CHAT_RUN_TOKENS], first[CHAT_RUN_TOKENS];
    int32_t                ids[CHAT_RUN_TOKENS], stop[8];
    chat_run_t             run;
    slora_err_t            err;
    slora_request_t        req;
    slora_engine_stats_t   st;

    static const char  *texts[] = { "positive", "negative", "neutral" };

    chat_run_request(&req, tok, "Is this review positive, negative or "
                     "neutral? \"The soup was cold.\"", ids, stop);
    req.sampling.max_tokens = 16;

    for (i = 0; i < 4; i++) {
        req.sampling.temperature = i == 0 ? 0 : 1.5f;
        req.sampling.seed = (uint64_t) i;
        submit(e, &req, (uint64_t) i, SLORA_JSON_FORM_CHOICE, list);
    }

    slora_engine_stats(e, &st);
    ok(st.schema_compiles == 1 && st.schema_hits == 3 && st.schemas_kept == 1
       && st.schema_bytes > strlen(list),
       "(a) four requests of one list: compiled %llu, taken as kept %llu, "
       "kept %d (%zu bytes)", (unsigned long long) st.schema_compiles,
       (unsigned long long) st.schema_hits, st.schemas_kept,
       st.schema_bytes);

    chat_run_steps(e, &run);
    is_int(run.errors, 0, "(a) no request failed");

    for (i = 0; i < 4; i++) {
        chat_run_text(tok, run.tokens[i], run.n[i], text, sizeof(text));
        in = 0;

        for (k = 0; k < 3; k++) {
            in |= strcmp(text, texts[k]) == 0;
        }

        ok(in && run.finish[i] == SLORA_FINISH_STOP,
           "(a) answer %d is one of the texts: %s", i, text);

        if (i == 0) {
            memcpy(first, text, sizeof(first));
        }
    }

    req.sampling.temperature = 0;
    submit(e, &req, 0, SLORA_JSON_FORM_CHOICE, list);

    slora_engine_stats(e, &st);
    ok(st.schema_compiles == 1 && st.schema_hits == 4
       && st.schemas_kept == 1,
       "(b) the list again after they ended: taken as kept (%llu compiled,"
       " %llu taken)", (unsigned long long) st.schema_compiles,
       (unsigned long long) st.schema_hits);

    chat_run_steps(e, &run);
    chat_run_text(tok, run.tokens[0], run.n[0], text, sizeof(text));
    is_str(text, first, "(b) the same greedy answer");

    req.id = 1;
    req.json_schema = "[\"a\",\"ab\"]";
    req.json_schema_len = strlen(req.json_schema);
    req.json_form = SLORA_JSON_FORM_CHOICE;

    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR,
       "(c) a list the compiler refuses is refused: %s", err.msg);

    slora_engine_stats(e, &st);
    ok(st.schema_compiles == 1 && st.schemas_kept == 1,
       "(c) nothing compiled or kept for it");
}


/* (d), (e) */
static void
test_bounds(slora_engine_t *e, const slora_tokenizer_t *tok)
{
    int                    i;
    char                   re[SLORA_ENGINE_SCHEMAS + 2][32], more[32];
    char                   text[CHAT_RUN_TOKENS];
    int32_t                ids[CHAT_RUN_TOKENS], stop[8];
    uint64_t               compiles, hits;
    slora_request_t        req;
    slora_engine_stats_t   st;

    chat_run_request(&req, tok, "A code, please.", ids, stop);
    req.sampling.max_tokens = 1;

    for (i = 0; i < SLORA_ENGINE_SCHEMAS + 2; i++) {
        snprintf(re[i], sizeof(re[i]), "[0-9]{%d}x", i + 1);
    }

    /* (d) one at a time: each ends before the next */
    slora_engine_stats(e, &st);
    compiles = st.schema_compiles;

    for (i = 0; i < SLORA_ENGINE_SCHEMAS + 1; i++) {
        submit(e, &req, 0, SLORA_JSON_FORM_REGEX, re[i]);
        run_all(e);
    }

    slora_engine_stats(e, &st);
    ok(st.schemas_kept == SLORA_ENGINE_SCHEMAS
       && st.schema_compiles == compiles + SLORA_ENGINE_SCHEMAS + 1,
       "(d) %d regexes in turn: each compiled, %d kept",
       SLORA_ENGINE_SCHEMAS + 1, st.schemas_kept);

    compiles = st.schema_compiles;
    hits = st.schema_hits;
    submit(e, &req, 0, SLORA_JSON_FORM_REGEX, re[SLORA_ENGINE_SCHEMAS]);
    run_all(e);
    submit(e, &req, 0, SLORA_JSON_FORM_REGEX, re[0]);
    run_all(e);

    slora_engine_stats(e, &st);
    ok(st.schema_hits == hits + 1 && st.schema_compiles == compiles + 1,
       "(d) the last taken as kept, the first (the oldest, cleared for "
       "it) compiled again");

    /* (e) the bound's worth waiting at once, every entry held, and one
     * more: its own */
    req.sampling.max_tokens = 8;
    compiles = st.schema_compiles;
    hits = st.schema_hits;

    for (i = 0; i < SLORA_ENGINE_SCHEMAS; i++) {
        submit(e, &req, (uint64_t) (100 + i), SLORA_JSON_FORM_REGEX,
               re[i + 1]);
    }

    slora_engine_stats(e, &st);
    ok(st.schemas_kept == SLORA_ENGINE_SCHEMAS
       && st.schema_hits + st.schema_compiles
          == hits + compiles + SLORA_ENGINE_SCHEMAS,
       "(e) %d waiting, each holding its entry", SLORA_ENGINE_SCHEMAS);

    compiles = st.schema_compiles;
    submit(e, &req, 0, SLORA_JSON_FORM_REGEX, "[a-z]{3}-[0-9]{2}");

    slora_engine_stats(e, &st);
    ok(st.schema_compiles == compiles + 1
       && st.schemas_kept == SLORA_ENGINE_SCHEMAS + 1,
       "(e) one more: compiled and kept, every entry held (kept %d)",
       st.schemas_kept);

    hits = st.schema_hits;
    submit(e, &req, 1, SLORA_JSON_FORM_REGEX, "[a-z]{3}-[0-9]{2}");

    slora_engine_stats(e, &st);
    ok(st.schema_compiles == compiles + 1 && st.schema_hits == hits + 1,
       "(e) it again: taken as kept");

    /* the grown entries held too, and one more asked ready */
    for (i = 1; i < SLORA_ENGINE_SCHEMAS; i++) {
        snprintf(more, sizeof(more), "[a-f]{%d}y", i);
        submit(e, &req, (uint64_t) (200 + i), SLORA_JSON_FORM_REGEX, more);
    }

    slora_engine_stats(e, &st);
    compiles = st.schema_compiles;
    snprintf(more, sizeof(more), "[0-9]{2}:[0-9]{2}");

    ok(st.schemas_kept == 2 * SLORA_ENGINE_SCHEMAS
       && slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, more,
                                    strlen(more)) == 0
       && woken(e)
       && slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, more,
                                    strlen(more)) == 1,
       "(e) %d held, one more asked ready: compiled on the thread",
       st.schemas_kept);

    submit(e, &req, 2, SLORA_JSON_FORM_REGEX, more);
    slora_engine_stats(e, &st);
    ok(st.schema_compiles == compiles + 1
       && st.schemas_kept == 2 * SLORA_ENGINE_SCHEMAS + 1,
       "(e) its submit compiles nothing (kept %d)", st.schemas_kept);

    {
        chat_run_t  run;

        memset(&run, 0, sizeof(run));

        while (slora_engine_step(e, collect, &run) == SLORA_OK) {
            /* void */
        }

        is_int(run.errors, 0, "(e) no request failed");
        chat_run_text(tok, run.tokens[0], run.n[0], text, sizeof(text));
        ok(strlen(text) == 6 && text[3] == '-'
           && strspn(text, "abcdefghijklmnopqrstuvwxyz") == 3
           && strspn(text + 4, "0123456789") == 2,
           "(e) its answer a match: %s", text);
    }

    compiles = st.schema_compiles;
    hits = st.schema_hits;
    submit(e, &req, 0, SLORA_JSON_FORM_REGEX, re[1]);
    submit(e, &req, 1, SLORA_JSON_FORM_REGEX, "[a-z]{3}-[0-9]{2}");
    run_all(e);

    slora_engine_stats(e, &st);
    ok(st.schema_compiles == compiles && st.schema_hits == hits + 2
       && st.schemas_kept == 2 * SLORA_ENGINE_SCHEMAS + 1,
       "(e) after they end, all kept (%d): the first held and the one "
       "more taken as kept", st.schemas_kept);
}


/* (f) */
static void
test_bytes(slora_engine_t *e, const slora_tokenizer_t *tok)
{
    int                    i;
    char                   re[32];
    size_t                 most;
    int32_t                ids[CHAT_RUN_TOKENS], stop[8];
    slora_request_t        req;
    slora_engine_stats_t   st;

    chat_run_request(&req, tok, "Say anything.", ids, stop);
    req.sampling.max_tokens = 1;
    most = 0;

    for (i = 0; i < SLORA_ENGINE_SCHEMAS; i++) {
        snprintf(re, sizeof(re), "(\\w|.){1,%d}", 370 + i);
        submit(e, &req, 0, SLORA_JSON_FORM_REGEX, re);
        run_all(e);

        slora_engine_stats(e, &st);
        most = st.schema_bytes > most ? st.schema_bytes : most;
    }

    diag("(f) kept %d, %zu bytes at most", st.schemas_kept, most);
    ok(most <= SLORA_ENGINE_SCHEMA_BYTES
       && st.schemas_kept < SLORA_ENGINE_SCHEMAS
       && most > SLORA_ENGINE_SCHEMA_BYTES / 2,
       "(f) %d long regexes: the kept bytes reach the bound and stay "
       "within it (%zu of %zu), fewer kept than the count's bound (%d)",
       SLORA_ENGINE_SCHEMAS, most, SLORA_ENGINE_SCHEMA_BYTES,
       st.schemas_kept);
}


static void
submit(slora_engine_t *e, slora_request_t *req, uint64_t id, int form,
    const char *text)
{
    slora_err_t  err;

    req->id = id;
    req->json_schema = text;
    req->json_schema_len = strlen(text);
    req->json_form = form;

    if (slora_engine_submit(e, req, &err) != SLORA_OK) {
        BAIL_OUT("submit %s: %s", text, err.msg);
    }
}


/* Steps e until every request has ended (of any id); bails out on an
 * error. */
static void
run_all(slora_engine_t *e)
{
    chat_run_t  run;

    memset(&run, 0, sizeof(run));

    while (slora_engine_step(e, collect, &run) == SLORA_OK) {
        /* void */
    }

    if (run.errors > 0) {
        BAIL_OUT("a request failed: %s", run.error);
    }
}


/* chat_run_event's for request 0, errors of every request counted. */
static void
collect(void *data, const slora_event_t *ev)
{
    if (ev->id == 0 || ev->type == SLORA_EV_ERROR) {
        chat_run_event(data, ev);
    }
}


/* (g) */
static void
test_ready(slora_engine_t *e, const slora_tokenizer_t *tok)
{
    int                    r1, r2, r3, k, waits;
    char                   text[CHAT_RUN_TOKENS];
    ssize_t                got;
    uint64_t               v;
    int32_t                ids[CHAT_RUN_TOKENS], stop[8];
    chat_run_t             run;
    slora_err_t            err;
    slora_request_t        req;
    slora_engine_stats_t   st, was;

    static const char  re[] = "[a-z]{2}=[0-9]{3}";
    static const char  *slow[] = { "(.|\\n){0,600}", "(.|\\n){0,601}",
                                    "(.|\\n){0,602}" };
    static const char  bad[] = "[\"a\",\"ab\"]";

    chat_run_request(&req, tok, "A setting, please.", ids, stop);
    req.sampling.max_tokens = 16;
    slora_engine_stats(e, &was);

    /* three regexes of some 3 ms each ahead of it on the thread (which
     * (e) has started), so that it is still compiling when asked again
     * on a loaded machine too */
    for (k = 0, r1 = 0; k < 3; k++) {
        r1 |= slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, slow[k],
                                        strlen(slow[k]));
    }

    r2 = slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, re,
                                   strlen(re));
    r3 = slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, re,
                                   strlen(re));
    slora_engine_stats(e, &st);
    ok(r1 == 0 && r2 == 0 && r3 == 0 && st.schemas_compiling >= 1,
       "(g) a new regex behind others: compiling on the thread (%d, %d, "
       "%d; %d compiling)", r1, r2, r3, st.schemas_compiling);

    for (waits = 0, r1 = 0; waits < 16 && !r1 && woken(e); waits++) {
        got = read(slora_engine_wake_fd(e), &v, sizeof(v));
        (void) got;
        r1 = slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, re,
                                       strlen(re));
    }

    slora_engine_stats(e, &st);
    ok(r1 == 1 && st.schemas_compiling == 0
       && st.schema_compiles == was.schema_compiles + 4,
       "(g) the wake fd written as each is done, then ready, each compiled "
       "once (%llu)",
       (unsigned long long) (st.schema_compiles - was.schema_compiles));

    submit(e, &req, 0, SLORA_JSON_FORM_REGEX, re);
    slora_engine_stats(e, &st);
    ok(st.schema_hits == was.schema_hits + 1
       && st.schema_compiles == was.schema_compiles + 4,
       "(g) its submit takes it as kept, compiles nothing");

    chat_run_steps(e, &run);
    chat_run_text(tok, run.tokens[0], run.n[0], text, sizeof(text));
    ok(run.errors == 0 && strlen(text) == 6 && text[2] == '='
       && strspn(text, "abcdefghijklmnopqrstuvwxyz") == 2
       && strspn(text + 3, "0123456789") == 3,
       "(g) its answer a match: %s", text);

    slora_engine_stats(e, &was);
    r1 = slora_engine_schema_ready(e, SLORA_JSON_FORM_CHOICE, bad,
                                   strlen(bad));
    ok(r1 == 0 && woken(e), "(g) a list the compiler refuses: on the "
       "thread, then the wake fd");
    r1 = slora_engine_schema_ready(e, SLORA_JSON_FORM_CHOICE, bad,
                                   strlen(bad));
    slora_engine_stats(e, &st);
    r2 = slora_engine_schema_ready(e, SLORA_JSON_FORM_CHOICE, bad,
                                   strlen(bad));
    ok(r1 == 1 && r2 == 1 && st.schemas_kept == was.schemas_kept
       && st.schemas_compiling == 0,
       "(g) then 1, and 1 again (its refusal kept, not compiled again), "
       "nothing compiled kept for it");

    req.id = 1;
    req.json_schema = bad;
    req.json_schema_len = strlen(bad);
    req.json_form = SLORA_JSON_FORM_CHOICE;

    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "the start of the other") != NULL,
       "(g) its submit refuses it with the compiler's reason: %s", err.msg);

    /* the keys: the compiled regex's, not the refused list's, nor the
     * regex's text in another form; as many as are kept, or n */
    {
        int32_t   n, j, has_re, has_bad, has_other;
        uint64_t  keys[256];

        slora_engine_stats(e, &st);
        n = slora_engine_schema_keys(e, keys, 256);
        has_re = has_bad = has_other = 0;

        for (j = 0; j < n; j++) {
            has_re |= keys[j] == slora_engine_schema_key(
                                     SLORA_JSON_FORM_REGEX, re, strlen(re));
            has_bad |= keys[j] == slora_engine_schema_key(
                                      SLORA_JSON_FORM_CHOICE, bad,
                                      strlen(bad));
            has_other |= keys[j] == slora_engine_schema_key(
                                        SLORA_JSON_FORM_GRAMMAR, re,
                                        strlen(re));
        }

        ok(n == st.schemas_kept && has_re && !has_bad && !has_other
           && slora_engine_schema_keys(e, keys, 1) == 1,
           "(g) the keys of the %d kept: the regex's, not the refused "
           "list's nor another form's", n);
    }

    test_ready_order(e);
}


/* (g) the jobs in the order asked: four regexes of some 3 ms each asked
 * at once; the second is done by the time the fourth is (asked last
 * first, the fourth would be done before the second and the third) */
static void
test_ready_order(slora_engine_t *e)
{
    int       k, waits, second, fourth;
    char      re[4][32];
    uint64_t  v;
    ssize_t   n;

    for (k = 0; k < 4; k++) {
        snprintf(re[k], sizeof(re[k]), "(\\w|.){1,%d}", 350 - k);
        is_int(slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, re[k],
                                         strlen(re[k])), 0,
               "(g) regex %d asked: compiling", k);
    }

    second = 0;
    fourth = 0;

    for (waits = 0; waits < 16 && !second && !fourth && woken(e); waits++) {
        n = read(slora_engine_wake_fd(e), &v, sizeof(v));
        (void) n;

        /* the fourth asked first: installing the done jobs, both seen */
        fourth = slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, re[3],
                                           strlen(re[3]));
        second = slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, re[1],
                                           strlen(re[1]));
    }

    ok(second,
       "(g) the second asked done no later than the fourth (%d, %d)",
       second, fourth);
}


/* 1 once the engine's wake fd is readable (5 s at most); a step reads
 * it. */
static int
woken(slora_engine_t *e)
{
    struct pollfd  pfd;

    pfd.fd = slora_engine_wake_fd(e);
    pfd.events = POLLIN;

    return poll(&pfd, 1, 5000) == 1;
}


/* (h), then (i) on the same engine */
static void
test_spared(const slora_tokenizer_t *tok)
{
    int                    r;
    int32_t                ids[CHAT_RUN_TOKENS], stop[8];
    uint64_t               compiles;
    chat_run_t             run;
    slora_engine_t        *e;
    slora_request_t        req;
    slora_engine_stats_t   st;

    static const char  a[] = "[a-c]{5}";
    static const char  b[] = "[d-f]{5}";
    static const char  c[] = "[g-i]{5}";
    static const char  d[] = "[j-l]{5}";

    e = chat_run_engine(tok);
    chat_run_request(&req, tok, "Digits, please.", ids, stop);
    req.sampling.max_tokens = 16;

    /* every entry but one held, by requests that run on for steps */
    held_regexes(e, &req, SLORA_ENGINE_SCHEMAS - 1, 0);

    r = slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, a, strlen(a));
    ok(r == 0 && ready_after_wake(e, a),
       "(h) %d held, one more compiled on the thread and ready",
       SLORA_ENGINE_SCHEMAS - 1);

    r = slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, b, strlen(b));
    ok(r == 0 && ready_after_wake(e, b),
       "(h) and one more asked ready: compiled on the thread");

    slora_engine_stats(e, &st);
    compiles = st.schema_compiles;
    r = slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, a, strlen(a));
    slora_engine_stats(e, &st);
    ok(r == 1 && st.schema_compiles == compiles
       && st.schemas_kept == SLORA_ENGINE_SCHEMAS + 1,
       "(h) the first, not yet taken, was spared: ready again (%d), not "
       "compiled again, %d kept (the entries grew)", r, st.schemas_kept);

    /* the second table's other entries held too; two steps: neither
     * request came, both run out */
    held_regexes(e, &req, SLORA_ENGINE_SCHEMAS - 1, SLORA_ENGINE_SCHEMAS);
    memset(&run, 0, sizeof(run));
    slora_engine_step(e, collect, &run);
    slora_engine_step(e, collect, &run);
    slora_engine_stats(e, &st);
    compiles = st.schema_compiles;

    r = slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, c, strlen(c));
    ok(r == 0 && ready_after_wake(e, c),
       "(h) two steps later, one more asked ready: compiled");

    slora_engine_stats(e, &st);
    ok(run.errors == 0
       && st.running + st.waiting == 2 * SLORA_ENGINE_SCHEMAS - 2
       && st.schemas_kept == 2 * SLORA_ENGINE_SCHEMAS
       && st.schema_compiles == compiles + 1,
       "(h) in the entry of one run out, the entries not grown (%d kept, "
       "%d requests on)", st.schemas_kept, st.running + st.waiting);

    /* the one run out held again, so every entry is held but the last
     * compiled; that one taken by a request let go at once (its
     * client gone): still spared for any other parked on it */
    submit(e, &req, 500, SLORA_JSON_FORM_REGEX, b);
    submit(e, &req, 501, SLORA_JSON_FORM_REGEX, c);
    slora_engine_cancel(e, 501);
    slora_engine_step(e, collect, &run);
    slora_engine_stats(e, &st);
    compiles = st.schema_compiles;

    r = slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, d, strlen(d));
    ok(r == 0 && ready_after_wake(e, d),
       "(h) one more asked ready after it was taken and let go: compiled");

    r = slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, c, strlen(c));
    slora_engine_stats(e, &st);
    ok(r == 1 && run.errors == 0 && st.schema_compiles == compiles + 1
       && st.schemas_kept == 2 * SLORA_ENGINE_SCHEMAS + 1,
       "(h) the one taken and let go still spared: ready (%d), not "
       "compiled again, %d kept (the entries grew)", r, st.schemas_kept);

    run_all(e);
    test_burst(e, tok);
    slora_engine_free(e);
}


/* (i) */
static void
test_burst(slora_engine_t *e, const slora_tokenizer_t *tok)
{
    int                    i;
    char                   re[SLORA_ENGINE_SCHEMAS][32];
    int32_t                n, ids[CHAT_RUN_TOKENS], stop[8];
    uint64_t               version, keys[2];
    chat_run_t             run;
    slora_request_t        req;
    slora_engine_stats_t   st;

    chat_run_request(&req, tok, "Say anything.", ids, stop);
    req.sampling.max_tokens = 1;

    for (i = 0; i < SLORA_ENGINE_SCHEMAS; i++) {
        snprintf(re[i], sizeof(re[i]), "(\\w|.){1,%d}", 380 + i);
        submit(e, &req, (uint64_t) (400 + i), SLORA_JSON_FORM_REGEX, re[i]);
    }

    slora_engine_stats(e, &st);
    ok(st.schema_bytes > SLORA_ENGINE_SCHEMA_BYTES,
       "(i) %d long regexes held at once: %zu bytes kept, over the bound "
       "(%zu)", SLORA_ENGINE_SCHEMAS, st.schema_bytes,
       SLORA_ENGINE_SCHEMA_BYTES);

    /* their clients gone: all end in one step, and no step after it
     * (an idle server's) */
    for (i = 0; i < SLORA_ENGINE_SCHEMAS; i++) {
        slora_engine_cancel(e, (uint64_t) (400 + i));
    }

    memset(&run, 0, sizeof(run));
    slora_engine_step(e, collect, &run);
    slora_engine_stats(e, &st);

    ok(st.schema_bytes <= SLORA_ENGINE_SCHEMA_BYTES && st.schemas_kept > 0
       && st.running + st.waiting == 0 && run.errors == 0,
       "(i) their requests ended in one step: %zu bytes kept, within the "
       "bound (%d kept)", st.schema_bytes, st.schemas_kept);

    n = slora_engine_schema_keys(e, keys, 2);
    ok(n == 2
       && keys[0] == slora_engine_schema_key(SLORA_JSON_FORM_REGEX,
                                             re[SLORA_ENGINE_SCHEMAS - 1],
                                             strlen(re[SLORA_ENGINE_SCHEMAS
                                                       - 1]))
       && keys[1] == slora_engine_schema_key(SLORA_JSON_FORM_REGEX,
                                             re[SLORA_ENGINE_SCHEMAS - 2],
                                             strlen(re[SLORA_ENGINE_SCHEMAS
                                                       - 2])),
       "(i) the keys: the last taken first, the one before it second");

    version = slora_engine_schema_version(e);
    submit(e, &req, 0, SLORA_JSON_FORM_REGEX, re[SLORA_ENGINE_SCHEMAS - 1]);
    run_all(e);
    ok(slora_engine_schema_version(e) == version,
       "(i) the keys' version the same after a kept one is taken");

    submit(e, &req, 0, SLORA_JSON_FORM_REGEX, "[x-z]{4}");
    run_all(e);
    ok(slora_engine_schema_version(e) != version,
       "(i) and moved once a new one is kept");
}


/* 1 once the compile of re, asked ready, is done: the wake fd read and
 * re asked again (at most 16 wakes). */
static int
ready_after_wake(slora_engine_t *e, const char *re)
{
    int       r, waits;
    ssize_t   got;
    uint64_t  v;

    r = 0;

    for (waits = 0; waits < 16 && !r && woken(e); waits++) {
        got = read(slora_engine_wake_fd(e), &v, sizeof(v));
        (void) got;
        r = slora_engine_schema_ready(e, SLORA_JSON_FORM_REGEX, re,
                                      strlen(re));
    }

    return r;
}


/* n requests of regexes from..from+n, each its own, that hold their
 * entries for some steps: 20 digits at least, 16 tokens at most. */
static void
held_regexes(slora_engine_t *e, slora_request_t *req, int n, int from)
{
    int   i;
    char  re[32];

    for (i = from; i < from + n; i++) {
        snprintf(re, sizeof(re), "[0-9]{20,%d}", 20 + i);
        submit(e, req, (uint64_t) (300 + i), SLORA_JSON_FORM_REGEX, re);
    }
}
