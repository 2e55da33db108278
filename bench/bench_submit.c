/*
 * bench_submit.c: times slora_engine_submit for requests with a lazy
 * schema's trigger (tool_choice "auto"'s <tool_call>, Llama's
 * <function=, a ReAct "Action: "), three requests of each trigger in a
 * row on SmolLM2: the first makes the trigger guard's list of tokens
 * that hold the trigger whole (a walk of the vocabulary), the others of
 * the same triggers take the engine's kept list. Then three
 * constraints without a trigger (a tools-like schema of eight functions
 * with patterns, a guided_regex that compiles near the work budget, a
 * guided_choice of 64 texts), three requests of each in a row: the
 * first compiles it, the others take it as the engine keeps it
 * (slora_engine_schemas.c).
 *
 *     bench_submit
 *
 * The one idea: submit runs on the engine's one thread, between steps,
 * so what it costs a request is what every running request waits.
 *
 * Build (from the repository root, after `make lib`):
 *     cc -std=gnu11 -O2 -Iengine -Ikernels -It/unit bench/bench_submit.c \
 *         build/libslora.a $(pkg-config --libs libcjson libpcre2-8 \
 *         openblas hiredis libcrypto) -lpthread -lm -o build/bench_submit
 */

#include <stdio.h>
#include <string.h>

#include "chat_run.h"
#include "slora_core.h"
#include "slora_json.h"


/* req submitted three times in a row (ids 0 to 2), each submit's time
 * printed under name. */
static int
bench_submit_three(slora_engine_t *e, slora_request_t *req,
    const char *name)
{
    int          r;
    int64_t      t0;
    slora_err_t  err;

    for (r = 0; r < 3; r++) {
        req->id = (uint64_t) r;
        t0 = slora_now_ns();

        if (slora_engine_submit(e, req, &err) != SLORA_OK) {
            fprintf(stderr, "bench_submit: %s\n", err.msg);
            return SLORA_ERROR;
        }

        printf("%-12s request %d: %8.1f us\n", name, r,
               (double) (slora_now_ns() - t0) / 1e3);
    }

    return SLORA_OK;
}


/* Constraint t's text into buf, and req's form for it. */
static void
bench_submit_constraint(int t, slora_request_t *req, char *buf, size_t cap)
{
    int     i;
    size_t  n;

    n = 0;

    if (t == 0) {
        n += (size_t) snprintf(buf + n, cap - n, "{\"type\":\"array\","
                               "\"items\":{\"anyOf\":[");

        for (i = 0; i < 8; i++) {
            n += (size_t) snprintf(buf + n, cap - n,
                                   "%s{\"type\":\"object\",\"properties\":"
                                   "{\"name\":{\"const\":\"f%d\"},"
                                   "\"arguments\":{\"type\":\"object\","
                                   "\"properties\":{\"id\":{\"type\":"
                                   "\"string\",\"pattern\":"
                                   "\"^[A-Z]{2}-[0-9]{4,8}$\"},\"when\":"
                                   "{\"type\":\"string\",\"format\":"
                                   "\"date-time\"},\"n\":{\"type\":"
                                   "\"integer\"}},\"required\":[\"id\"]}},"
                                   "\"required\":[\"name\","
                                   "\"arguments\"]}", i ? "," : "", i);
        }

        snprintf(buf + n, cap - n, "]}}");
        req->json_form = SLORA_JSON_FORM_SCHEMA;

    } else if (t == 1) {
        snprintf(buf, cap, "(\\w|.){1,400}");
        req->json_form = SLORA_JSON_FORM_REGEX;

    } else {
        n += (size_t) snprintf(buf + n, cap - n, "[");

        for (i = 0; i < 64; i++) {
            n += (size_t) snprintf(buf + n, cap - n, "%s\"label %d of the "
                                   "set\"", i ? "," : "", i * 7);
        }

        snprintf(buf + n, cap - n, "]");
        req->json_form = SLORA_JSON_FORM_CHOICE;
    }

    req->json_schema = buf;
    req->json_schema_len = strlen(buf);
}


int
main(void)
{
    int                  t;
    char                 text[64];
    int32_t              ids[CHAT_RUN_TOKENS], stop[8];
    chat_run_t           run;
    slora_err_t          err;
    slora_engine_t      *e;
    slora_request_t      req;
    slora_tokenizer_t   *tok;

    static char         cons[8192];
    static const char  *const triggers[] = {
        "<tool_call>", "<function=", "Action: "
    };
    static const char  *const names[] = { "tools", "regex", "choice" };

    tok = slora_tokenizer_load(CHAT_RUN_MODEL, &err);
    if (tok == NULL) {
        fprintf(stderr, "bench_submit: %s\n", err.msg);
        return 1;
    }

    e = chat_run_engine(tok);
    chat_run_request(&req, tok, "Hi", ids, stop);
    req.sampling.max_tokens = 1;
    req.json_schema = "{\"type\":\"object\"}";
    req.json_schema_len = strlen(req.json_schema);
    req.json_form = SLORA_JSON_FORM_SCHEMA;

    for (t = 0; t < 3; t++) {
        req.json_trigger = triggers[t];
        req.json_trigger_len = strlen(triggers[t]);

        if (bench_submit_three(e, &req, triggers[t]) != SLORA_OK) {
            return 1;
        }

        /* the requests run: request 0's one token */
        chat_run_steps(e, &run);
        chat_run_text(tok, run.tokens[0], run.n[0], text, sizeof(text));
        printf("%-12s answered \"%s\"\n", triggers[t], text);
    }

    req.json_trigger = NULL;
    req.json_trigger_len = 0;

    for (t = 0; t < 3; t++) {
        bench_submit_constraint(t, &req, cons, sizeof(cons));

        if (bench_submit_three(e, &req, names[t]) != SLORA_OK) {
            return 1;
        }

        chat_run_steps(e, &run);
    }

    slora_engine_free(e);
    slora_tokenizer_free(tok);

    return 0;
}
