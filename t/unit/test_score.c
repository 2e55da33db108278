/*
 * test_score.c: a prompt's log-probabilities (slora_request_t
 * .prompt_logprobs, OpenAI's echo with logprobs) on SmolLM2-135M on the
 * CPU, greedy, against what generation itself says:
 *   (a) a text and its greedy continuation, scored as one prompt with
 *       max_tokens 0: every token after the first comes once, in order,
 *       before the request ends (LENGTH, no token); the continuation's
 *       tokens get the log-probabilities and the likeliest alternatives
 *       that generating them gave, each its row's argmax; every figure is
 *       a log-probability no larger than its row's likeliest, and every
 *       rank the count of alternatives at least as likely;
 *   (b) the same with an adapter (its own continuation);
 *   (c) in chunks of 16 tokens a step, and a prompt of more positions
 *       than a step scores (SLORA_ENGINE_SCORE_ROWS) beside generations:
 *       the same figures, every position once;
 *   (d) a prompt the prefix cache holds is computed whole for its scores
 *       (no token cached) and then enters the cache; with max_tokens > 0
 *       the scores come before the first token, which generation's are;
 *   (e) max_tokens 0 without the prompt's log-probabilities is refused;
 *   (f) in a pool too small for two such prompts at once, the newer,
 *       admitted as the older decodes, is put back to wait while
 *       scoring and computed again: it scores each position still once,
 *       in order, the same figures;
 *   (g) a chat's greedy answer that ends with a stop id: its DONE names
 *       the id with the log-probability that scoring the prompt, the
 *       answer and the id gives the id's place (a completion's best_of
 *       counts it among the answer's tokens).
 */

#include <math.h>
#include <string.h>

#include "tap.h"
#include "slora_engine.h"
#include "slora_tokenizer.h"


#define SMOLLM2   "models/SmolLM2-135M-Instruct.Q4_1.gguf"
#define MAXREQ    8
#define MAXPOS    640
#define GEN       24
#define ANSWER    200
#define TOP       3
#define CLOSE     1e-4
#define COPIES    20


typedef struct {
    /* TOKEN events */
    int32_t      tok[MAXREQ][MAXPOS];
    float        lp[MAXREQ][MAXPOS];
    int32_t      top[MAXREQ][MAXPOS][TOP];
    float        top_lp[MAXREQ][MAXPOS][TOP];
    int32_t      n[MAXREQ];
    /* SCORE events, by prompt position */
    int32_t      s_tok[MAXREQ][MAXPOS];
    float        s_lp[MAXREQ][MAXPOS];
    int32_t      s_rank[MAXREQ][MAXPOS];
    int32_t      s_top[MAXREQ][MAXPOS][TOP];
    float        s_top_lp[MAXREQ][MAXPOS][TOP];
    int32_t      s_n[MAXREQ];
    int          s_order[MAXREQ];       /* positions came 1, 2, ... */
    int          s_after_token[MAXREQ]; /* a SCORE after a TOKEN */
    int32_t      cached[MAXREQ];
    int          done[MAXREQ];
    int32_t      done_tok[MAXREQ];      /* DONE's token and log-prob */
    float        done_lp[MAXREQ];
    int          finish[MAXREQ];
    int          errors;
} sink_t;


static slora_tokenizer_t  *tok;
static sink_t              sk;
static int32_t             stops[8];   /* the requests' stop ids */
static int32_t             n_stops;


static slora_engine_t *engine(const char *adapters, int32_t batch_tokens,
    size_t pool);
static void submit(slora_engine_t *e, uint64_t id, const int32_t *prompt,
    int32_t n, int32_t max_tokens, int score, const char *adapter);
static void drain(slora_engine_t *e);
static void on_event(void *data, const slora_event_t *ev);
static int32_t encode(const char *text, int32_t *ids, int32_t cap);
static void check_against(int32_t sid, int32_t gid, int32_t from,
    const char *what);
static int sane(int32_t id, int32_t n_prompt);
static double max_diff(int32_t a, int32_t b, int32_t n_prompt);


static const char  chat[] =
    "<|im_start|>user\nSay hi in three words<|im_end|>\n"
    "<|im_start|>assistant\n";
static const char  text[] =
    "The lighthouse keeper climbed the stairs every evening at dusk, "
    "carrying a lamp and a";


int
main(void)
{
    double                first, last;
    int32_t               p[MAXPOS], q[MAXPOS], n_p, n_q, i, k;
    slora_err_t           err;
    slora_engine_t       *e;
    slora_request_t       req;
    slora_engine_stats_t  st;

    tok = slora_tokenizer_load(SMOLLM2, &err);
    if (tok == NULL) {
        BAIL_OUT("%s: %s (make models)", SMOLLM2, err.msg);
    }

    n_p = encode(text, p, MAXPOS);

    /* (a) */
    e = engine("random:n=2,ranks=8+16,targets=q+k+v+o,seed=5", 0, 0);
    memset(&sk, 0, sizeof(sk));
    submit(e, 0, p, n_p, GEN, 0, NULL);
    drain(e);
    is_int(sk.n[0], GEN, "the text's greedy continuation: %d tokens", GEN);

    memcpy(q, p, (size_t) n_p * sizeof(int32_t));
    memcpy(q + n_p, sk.tok[0], GEN * sizeof(int32_t));
    n_q = n_p + GEN;

    submit(e, 1, q, n_q, 0, 1, NULL);
    drain(e);
    ok(sk.done[1] && sk.finish[1] == SLORA_FINISH_LENGTH && sk.n[1] == 0,
       "max_tokens 0: ended (length) without a token");
    ok(sk.s_n[1] == n_q - 1 && sk.s_order[1], "every one of its %d tokens "
       "after the first scored once, in order (%d)", n_q - 1, sk.s_n[1]);

    for (i = 1, k = 1; i < n_q; i++) {
        k &= sk.s_tok[1][i] == q[i];
    }
    ok(k, "each score names the prompt's token");
    ok(sane(1, n_q), "each a log-probability no larger than its row's "
       "likeliest, alternatives likeliest first, its rank theirs");
    check_against(1, 0, n_p, "the continuation");

    /* (b) */
    submit(e, 2, p, n_p, GEN, 0, "r0001");
    drain(e);
    memcpy(q + n_p, sk.tok[2], GEN * sizeof(int32_t));
    ok(memcmp(sk.tok[2], sk.tok[0], GEN * sizeof(int32_t)) != 0,
       "the adapter continues otherwise");
    submit(e, 3, q, n_q, 0, 1, "r0001");
    drain(e);
    ok(sk.s_n[3] == n_q - 1 && sane(3, n_q), "with the adapter: %d scores",
       sk.s_n[3]);
    check_against(3, 2, n_p, "the adapter's continuation");

    /* (d) a prompt the cache holds: request 0's prompt and continuation
     * again, computed whole for its scores, then kept */
    memcpy(q + n_p, sk.tok[0], GEN * sizeof(int32_t));
    submit(e, 4, q, n_q, 1, 0, NULL);
    drain(e);
    submit(e, 5, q, n_q, 4, 1, NULL);
    drain(e);
    ok(sk.s_n[5] == n_q - 1 && !sk.s_after_token[5] && sk.cached[5] == 0,
       "a prompt held by the prefix cache: all %d scored (%d), before its "
       "first token, none of it cached (%d)", n_q - 1, sk.s_n[5],
       sk.cached[5]);
    diag("max |difference| from the first scoring: %.2e",
         max_diff(5, 1, n_q));
    ok(max_diff(5, 1, n_q) < 1e-4, "and the same figures");
    submit(e, 6, q, n_q, 1, 0, NULL);
    drain(e);
    ok(sk.cached[6] > 0, "then it is in the cache: %d tokens taken",
       sk.cached[6]);

    /* (e) */
    memset(&req, 0, sizeof(req));
    req.id = 7;
    req.prompt = p;
    req.n_prompt = n_p;
    req.sampling.top_p = 1;
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "max_tokens") != NULL,
       "max_tokens 0 without scores is refused: %s", err.msg);

    slora_engine_free(e);

    /* (c) the first scoring again, 16 tokens a step, beside generations;
     * then a prompt longer than a step scores, from the same engine */
    e = engine(NULL, 16, 0);
    memset(&sk, 0, sizeof(sk));
    submit(e, 0, p, n_p, GEN, 0, NULL);
    drain(e);
    memcpy(q + n_p, sk.tok[0], GEN * sizeof(int32_t));
    submit(e, 1, q, n_q, 0, 1, NULL);
    submit(e, 2, p, n_p, GEN, 0, NULL);
    submit(e, 3, q, n_q, 2, 1, NULL);
    drain(e);
    ok(sk.s_n[1] == n_q - 1 && sk.s_order[1] && sk.s_n[3] == n_q - 1
       && sk.s_order[3], "16 tokens a step, two at once: every position "
       "once, in order");
    check_against(1, 0, n_p, "in chunks");
    ok(memcmp(sk.tok[2], sk.tok[0], GEN * sizeof(int32_t)) == 0,
       "the generation beside them gives its tokens");
    slora_engine_free(e);

    e = engine(NULL, 0, 0);
    memset(&sk, 0, sizeof(sk));

    for (i = 0; i < COPIES; i++) {
        memcpy(q + i * n_p, p, (size_t) n_p * sizeof(int32_t));
    }
    n_q = COPIES * n_p;
    if (n_q - 1 <= 256 || n_q > MAXPOS) {
        BAIL_OUT("the long prompt has %d tokens", n_q);
    }

    submit(e, 0, q, n_q, 2, 1, NULL);
    submit(e, 1, p, n_p, GEN, 0, NULL);
    submit(e, 2, q, n_q, 0, 1, NULL);
    drain(e);
    ok(sk.s_n[0] == n_q - 1 && sk.s_order[0] && sk.s_n[2] == n_q - 1
       && sk.s_order[2] && sk.n[0] == 2,
       "a prompt of %d positions (a step scores 256): every one once, in "
       "order, twice", n_q - 1);
    ok(sane(0, n_q) && max_diff(0, 2, n_q) < 1e-4, "the same figures both "
       "times (%.2e)", max_diff(0, 2, n_q));

    /* the text once more is all but certain after so many times */
    for (i = 1, first = 0, last = 0; i < n_p; i++) {
        first += sk.s_lp[0][i];
        last += sk.s_lp[0][(COPIES - 1) * n_p + i];
    }
    ok(last > first / 4, "the last copy of the text is far likelier than "
       "the first: %.2f against %.2f", last, first);
    is_int(sk.errors, 0, "no request failed");

    slora_engine_free(e);

    /* (f) the KV of one 320-token prompt and some: SmolLM2's f32 KV is
     * 30 layers x 2 x 192 x 4 bytes a token, 46 KB */
    memcpy(&sk.s_lp[7], &sk.s_lp[0], sizeof(sk.s_lp[0]));
    e = engine(NULL, 64, (size_t) 480 * 30 * 2 * 192 * 4);
    memset(sk.s_n, 0, sizeof(sk.s_n));
    memset(sk.s_order, 0, sizeof(sk.s_order));
    submit(e, 0, q, n_q, 8, 1, NULL);
    submit(e, 1, q, n_q, 2, 1, NULL);
    drain(e);
    slora_engine_stats(e, &st);
    ok(st.preemptions > 0 && sk.errors == 0, "two such prompts in a pool "
       "for one and a half: %llu preemptions, no failure",
       (unsigned long long) st.preemptions);
    ok(sk.s_n[0] == n_q - 1 && sk.s_order[0] && sk.s_n[1] == n_q - 1
       && sk.s_order[1], "each position still scored once, in order");
    ok(max_diff(0, 7, n_q) < 1e-4 && max_diff(1, 7, n_q) < 1e-4,
       "the same figures (%.2e, %.2e)", max_diff(0, 7, n_q),
       max_diff(1, 7, n_q));

    slora_engine_free(e);

    /* (g) */
    e = engine(NULL, 0, 0);
    memset(&sk, 0, sizeof(sk));
    n_stops = slora_tokenizer_stop_ids(tok, stops, 8);
    if (slora_tokenizer_encode(tok, chat, strlen(chat), 1, 1, p, MAXPOS,
                               &n_p, &err)
        != SLORA_OK || n_stops == 0)
    {
        BAIL_OUT("the chat: %s; %d stop ids", err.msg, n_stops);
    }

    submit(e, 0, p, n_p, ANSWER, 0, NULL);
    drain(e);
    ok(sk.done[0] && sk.finish[0] == SLORA_FINISH_STOP && sk.done_tok[0] >= 0
       && sk.n[0] > 0 && sk.n[0] < ANSWER, "a chat's answer of %d tokens ends "
       "with stop id %d", sk.n[0], sk.done_tok[0]);

    memcpy(q, p, (size_t) n_p * sizeof(int32_t));
    memcpy(q + n_p, sk.tok[0], (size_t) sk.n[0] * sizeof(int32_t));
    n_q = n_p + sk.n[0];
    q[n_q++] = sk.done_tok[0];
    submit(e, 1, q, n_q, 0, 1, NULL);
    drain(e);
    diag("the stop id's log-probability: %.6f, scored %.6f",
         sk.done_lp[0], sk.s_lp[1][n_q - 1]);
    ok(sk.s_n[1] == n_q - 1 && sk.s_lp[1][n_q - 1] < -1e-6
       && fabs(sk.done_lp[0] - sk.s_lp[1][n_q - 1]) < CLOSE,
       "its DONE carries the id's log-probability, as scoring it gives");
    is_int(sk.errors, 0, "no request failed");

    slora_engine_free(e);
    slora_tokenizer_free(tok);

    return done_testing();
}


static slora_engine_t *
engine(const char *adapters, int32_t batch_tokens, size_t pool)
{
    slora_err_t          err;
    slora_engine_t      *e;
    slora_engine_conf_t  conf;

    memset(&conf, 0, sizeof(conf));
    conf.model_path = SMOLLM2;
    conf.adapter_dir = adapters;
    conf.n_threads = 2;
    conf.max_running = 4;
    conf.max_batch_tokens = batch_tokens;
    conf.pool_bytes = pool;
    conf.no_prefetch = 1;

    e = slora_engine_init(&conf, &err);
    if (e == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    return e;
}


static void
submit(slora_engine_t *e, uint64_t id, const int32_t *prompt, int32_t n,
    int32_t max_tokens, int score, const char *adapter)
{
    slora_err_t      err;
    slora_request_t  req;

    memset(&req, 0, sizeof(req));
    req.id = id;
    req.adapter = adapter;
    req.prompt = prompt;
    req.n_prompt = n;
    req.sampling.top_p = 1;
    req.sampling.max_tokens = max_tokens;
    req.logprobs = 1;
    req.top_logprobs = TOP;
    req.prompt_logprobs = score;
    req.prompt_top = TOP;
    req.stop_ids = stops;
    req.n_stop_ids = n_stops;
    sk.s_order[id] = 1;

    if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
        BAIL_OUT("request %d: %s", (int) id, err.msg);
    }
}


static void
drain(slora_engine_t *e)
{
    int  rc;

    do {
        rc = slora_engine_step(e, on_event, &sk);
    } while (rc == SLORA_OK);

    if (rc != SLORA_DONE) {
        BAIL_OUT("step: %d", rc);
    }
}


static void
on_event(void *data, const slora_event_t *ev)
{
    int32_t   j, r, k;
    sink_t   *s = data;

    r = (int32_t) ev->id;

    if (r < 0 || r >= MAXREQ) {
        BAIL_OUT("event for request %d", r);
    }

    switch (ev->type) {

    case SLORA_EV_TOKEN:
        k = s->n[r]++;
        s->tok[r][k] = ev->token;
        s->lp[r][k] = ev->logprob;
        s->cached[r] = ev->cached_tokens;

        for (j = 0; j < TOP && j < ev->n_top; j++) {
            s->top[r][k][j] = ev->top_ids[j];
            s->top_lp[r][k][j] = ev->top_logprobs[j];
        }
        break;

    case SLORA_EV_DONE:
        s->done[r] = 1;
        s->finish[r] = ev->finish;
        s->done_tok[r] = ev->token;
        s->done_lp[r] = ev->logprob;
        break;

    case SLORA_EV_ERROR:
        diag("request %d: %s", r, ev->error);
        s->errors++;
        break;

    case SLORA_EV_SCORE:
        k = ev->pos;
        s->s_order[r] &= k == s->s_n[r] + 1 && k < MAXPOS
                         && ev->n_top == TOP;
        s->s_after_token[r] |= s->n[r] > 0;
        s->s_n[r]++;

        if (k <= 0 || k >= MAXPOS) {
            break;
        }

        s->s_tok[r][k] = ev->token;
        s->s_lp[r][k] = ev->logprob;
        s->s_rank[r][k] = ev->rank;

        for (j = 0; j < TOP && j < ev->n_top; j++) {
            s->s_top[r][k][j] = ev->top_ids[j];
            s->s_top_lp[r][k][j] = ev->top_logprobs[j];
        }
        break;
    }
}


static int32_t
encode(const char *t, int32_t *ids, int32_t cap)
{
    int32_t      n;
    slora_err_t  err;

    if (slora_tokenizer_encode(tok, t, strlen(t), 1, 0, ids, cap, &n, &err)
        != SLORA_OK)
    {
        BAIL_OUT("encode: %s", err.msg);
    }

    return n;
}


/* Scoring sid's positions from..from + GEN - 1 against generation gid's
 * tokens 0..GEN - 1. */
static void
check_against(int32_t sid, int32_t gid, int32_t from, const char *what)
{
    int32_t  i, j, argmax, same_top;
    double   d, worst;

    worst = 0;
    argmax = 1;
    same_top = 1;

    for (i = 0; i < GEN; i++) {
        d = fabs((double) sk.s_lp[sid][from + i] - (double) sk.lp[gid][i]);
        worst = d > worst ? d : worst;
        argmax &= sk.s_top[sid][from + i][0] == sk.tok[gid][i]
                  && sk.s_rank[sid][from + i] == 1;

        for (j = 0; j < TOP; j++) {
            d = fabs((double) sk.s_top_lp[sid][from + i][j]
                     - (double) sk.top_lp[gid][i][j]);
            worst = d > worst ? d : worst;
            same_top &= sk.s_top[sid][from + i][j] == sk.top[gid][i][j]
                        || d < CLOSE;
        }
    }

    diag("%s: max |difference| from generation's figures %.2e", what,
         worst);
    ok(worst < CLOSE, "%s: each token's log-probability and its "
       "alternatives' as generating it gave (within %.0e)", what, CLOSE);
    ok(argmax && same_top, "%s: each its row's likeliest (rank 1), the same "
       "alternatives", what);
}


static int
sane(int32_t id, int32_t n_prompt)
{
    int32_t  i, j, in_top, more, ranked;

    ranked = 0;

    for (i = 1; i < n_prompt; i++) {
        if (!(sk.s_lp[id][i] <= 0)
            || sk.s_lp[id][i] > sk.s_top_lp[id][i][0] + 1e-6f)
        {
            return 0;
        }

        in_top = 0;

        for (j = 0; j < TOP; j++) {
            if (j > 0 && sk.s_top_lp[id][i][j] > sk.s_top_lp[id][i][j - 1]) {
                return 0;
            }

            if (sk.s_top[id][i][j] == sk.s_tok[id][i]) {
                in_top = 1;

                if (sk.s_top_lp[id][i][j] != sk.s_lp[id][i]) {
                    return 0;
                }
            }
        }

        if (!in_top && sk.s_lp[id][i] > sk.s_top_lp[id][i][TOP - 1]) {
            return 0;
        }

        /* the rank counts the tokens at least as likely: where one of
         * the alternatives is less likely, exactly those before it */
        for (j = 0, more = 0; j < TOP; j++) {
            more += sk.s_top_lp[id][i][j] >= sk.s_lp[id][i];
        }

        if (more < TOP ? sk.s_rank[id][i] != more
                       : sk.s_rank[id][i] < TOP)
        {
            return 0;
        }

        ranked += sk.s_rank[id][i] > 1;
    }

    /* a prompt's text is not all its rows' likeliest */
    return ranked > 0;
}


static double
max_diff(int32_t a, int32_t b, int32_t n_prompt)
{
    int32_t  i;
    double   d, worst;

    worst = 0;

    for (i = 1; i < n_prompt; i++) {
        d = fabs((double) sk.s_lp[a][i] - (double) sk.s_lp[b][i]);
        worst = d > worst ? d : worst;
    }

    return worst;
}
