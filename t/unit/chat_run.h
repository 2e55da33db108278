/*
 * chat_run.h: SmolLM2 answering a chat in the unit tests that run it
 * through the engine on the CPU: the engine, one user message's request
 * (rendered through the model's chat template and tokenized as the
 * server does it), the events of up to four requests collected, and
 * token ids back to their text.
 *
 * The one idea: the prompt and the answer's text are made the server's
 * way, so that what a test asserts of them is what a client would see;
 * a test sets only what its requests differ in.
 */

#ifndef CHAT_RUN_H
#define CHAT_RUN_H


#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "slora_engine.h"
#include "slora_tokenizer.h"


#define CHAT_RUN_MODEL   "models/SmolLM2-135M-Instruct.Q4_1.gguf"
#define CHAT_RUN_TOKENS  512


/* Requests 0 to 3's tokens, finishes and failures. */
typedef struct {
    int32_t         tokens[4][CHAT_RUN_TOKENS];
    int32_t         n[4];
    slora_finish_e  finish[4];
    int32_t         stopped_by[4];  /* the DONE event's token: the stop id
                                       that ended it, -1 for none */
    int             errors;
    char            error[256];     /* the last error's message */
} chat_run_t;


/* The engine on SmolLM2, 2 threads, 4 requests at once; tok NULL: one
 * without the tokenizer. Bails out on error. */
static slora_engine_t *
chat_run_engine(const slora_tokenizer_t *tok)
{
    slora_err_t           err;
    slora_engine_t       *e;
    slora_engine_conf_t   conf;

    memset(&conf, 0, sizeof(conf));
    conf.model_path = CHAT_RUN_MODEL;
    conf.n_threads = 2;
    conf.max_running = 4;
    conf.no_prefetch = 1;
    conf.tokenizer = tok;

    e = slora_engine_init(&conf, &err);
    if (e == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    return e;
}


/* req (zeroed first) for one user message: its prompt ids into
 * ids[CHAT_RUN_TOKENS], the model's stop ids into stop[8], top_p 1. */
static void
chat_run_request(slora_request_t *req, const slora_tokenizer_t *tok,
    const char *content, int32_t *ids, int32_t *stop)
{
    char                prompt[1024];
    size_t              n;
    int32_t             n_ids;
    slora_err_t         err;
    slora_span_t        span[8];
    slora_chat_msg_t    msg;
    slora_chat_plain_t  plain;

    memset(&msg, 0, sizeof(msg));
    msg.role = "user";
    msg.role_len = 4;
    msg.content = content;
    msg.content_len = strlen(content);

    plain.span = span;
    plain.cap = 8;

    if (slora_chat_render(slora_tokenizer_chat_template(tok), &msg, 1,
                          SLORA_CHAT_GEN_PROMPT, prompt, sizeof(prompt), &n,
                          &plain, &err) != SLORA_OK
        || slora_tokenizer_encode_chat(tok, prompt, n,
                                       slora_tokenizer_chat_bos(tok)
                                       ? SLORA_TOK_BOS_TEMPLATE : 0,
                                       plain.span,
                                       plain.n, ids, CHAT_RUN_TOKENS,
                                       CHAT_RUN_TOKENS, &n_ids, &err)
           != SLORA_OK)
    {
        BAIL_OUT("prompt: %s", err.msg);
    }

    memset(req, 0, sizeof(slora_request_t));
    req->prompt = ids;
    req->n_prompt = n_ids;
    req->stop_ids = stop;
    req->n_stop_ids = slora_tokenizer_stop_ids(tok, stop, 8);
    req->sampling.top_p = 1;
}


static void
chat_run_event(void *data, const slora_event_t *ev)
{
    int          i;
    chat_run_t  *run;

    run = data;
    i = (int) ev->id;

    if (ev->type == SLORA_EV_TOKEN && run->n[i] < CHAT_RUN_TOKENS) {
        run->tokens[i][run->n[i]++] = ev->token;

    } else if (ev->type == SLORA_EV_DONE) {
        run->finish[i] = ev->finish;
        run->stopped_by[i] = ev->token;

    } else if (ev->type == SLORA_EV_ERROR) {
        diag("request %d: %s", i, ev->error);
        snprintf(run->error, sizeof(run->error), "%s", ev->error);
        run->errors++;
    }
}


/* Steps e until every request submitted (ids 0 to 3) has ended. */
static void
chat_run_steps(slora_engine_t *e, chat_run_t *run)
{
    memset(run, 0, sizeof(chat_run_t));

    while (slora_engine_step(e, chat_run_event, run) == SLORA_OK) {
        /* void */
    }
}


/* ids' bytes, NUL-terminated, into out[0..cap); their length. */
static size_t
chat_run_text(const slora_tokenizer_t *t, const int32_t *ids, int32_t n,
    char *out, size_t cap)
{
    size_t   len, at;
    int32_t  i;

    at = 0;

    for (i = 0; i < n; i++) {
        if (slora_tokenizer_token_bytes(t, ids[i], out + at, cap - at - 1,
                                        &len)
            != SLORA_OK)
        {
            break;
        }
        at += len;
    }

    out[at] = '\0';
    return at;
}


/* 1 when request id ended at its first token with the error a trigger's
 * guard gives where it leaves no allowed token */
static inline int
chat_run_guard_refused(const chat_run_t *run, int32_t id)
{
    return run->errors == 1 && run->n[id] == 0
           && strstr(run->error, "write a trigger that no call or tag may "
                                 "follow") != NULL;
}


#endif /* CHAT_RUN_H */
