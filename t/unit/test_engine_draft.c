/*
 * test_engine_draft.c: speculative decoding from a prediction in the
 * engine (slora_request_t.prediction, slora_draft.h), on the tiny random
 * model with the CPU backend. A request gives the very tokens it gives
 * without a prediction, greedy and sampled (same seed), whether the
 * prediction is its output, an edit of it or unrelated; a right one
 * takes most tokens from drafts in far fewer steps. In one batch beside
 * requests without, and under an adapter, each request still gives its
 * own tokens; max_tokens and stop ids end it where they would; a request
 * whose rows the host picks (a penalty) drafts nothing; and no rejected
 * draft's K/V reaches the prefix cache: a later turn that takes the
 * cached pages answers as it does with the cache off. With lookup
 * (drafts from a request's own tokens, slora_engine_conf_t.draft_lookup)
 * every request gives its tokens again, alone and together, a
 * prediction still drafts from the prediction, and the drafts taken are
 * lookup's, not reported as a prediction's; by default only a lone
 * request drafts, and with more allowed a batch's requests draft
 * beside each other.
 */

#include <sys/stat.h>

#include "tap.h"
#include "tiny_model.h"
#include "slora_engine.h"


#define MAXGEN   160
#define NREQ     8


typedef struct {
    int32_t         tokens[NREQ][MAXGEN];
    int32_t         n[NREQ];
    int             done[NREQ];
    slora_finish_e  finish[NREQ];
    int32_t         accepted[NREQ];
    int32_t         rejected[NREQ];
    int32_t         cached[NREQ];
} dr_sink_t;


/* One request of a test: what slora_request_t takes that varies. */
typedef struct {
    const int32_t  *prompt;
    int32_t         n_prompt;
    const int32_t  *pred;
    int32_t         n_pred;
    int32_t         max_tokens;
    float           temperature;
    float           frequency_penalty;
    int32_t         stop;           /* a stop id, or -1 */
    const char     *adapter;
} dr_req_t;


static char                   tmp[256];
static char                   model[300];
static char                   root[300];
static slora_model_config_t   mcfg;


static slora_engine_t *engine_up(int cache, int lookup, const char *what);
static void on_event(void *data, const slora_event_t *ev);
static uint64_t run(slora_engine_t *e, const dr_req_t *rq, int n,
    int together, dr_sink_t *ds);
static int same(const dr_sink_t *a, int i, const dr_sink_t *b, int j);
static int32_t edit_of(const int32_t *src, int32_t n, const int32_t *junk,
    int32_t *out);
static void test_drafts(void);
static void test_prefix(void);
static void test_pages(void);
static void test_lookup(void);
static void random_tokens(uint32_t *x, int32_t *out, int32_t n);
static void plain_req(dr_req_t *r, const int32_t *prompt, int32_t n_prompt,
    int32_t max_tokens);
static uint64_t references(slora_engine_t *e, const int32_t *prompt,
    int32_t n_prompt, int32_t max_tokens, dr_req_t *rq, dr_sink_t *ref);


int
main(void)
{
    char  cmd[300];

    snprintf(tmp, sizeof(tmp), "/tmp/slora-test-engine-draft-XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        BAIL_OUT("mkdtemp failed");
    }

    tiny_model_make(tmp, 11, 512, model, sizeof(model), &mcfg);
    snprintf(root, sizeof(root), "%s/adapters", tmp);
    mkdir(root, 0755);
    tiny_adapter_make(&mcfg, root, "ad1", 16, 0x0f, 1001, 1.0f);

    test_drafts();
    test_prefix();
    test_pages();
    test_lookup();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) {
        diag("could not remove %s", tmp);
    }

    return done_testing();
}


static void
test_drafts(void)
{
    int                   i, bad;
    int32_t               prompt[20], edit[MAXGEN + 8], edit2[MAXGEN + 8];
    int32_t               junk[120], n_edit;
    int32_t               f;
    uint32_t              x;
    uint64_t              steps_plain, steps_pred;
    slora_engine_t       *e;
    dr_req_t              rq[NREQ];
    static dr_sink_t      ref, got, bat;

    x = 777;
    random_tokens(&x, prompt, 20);
    random_tokens(&x, junk, 120);

    e = engine_up(0, 0, "drafts: engine up");
    if (e == NULL) {
        return;
    }

    memset(rq, 0, sizeof(rq));
    steps_plain = references(e, prompt, 20, 120, rq, &ref);
    ok(ref.n[0] == 120 && ref.n[1] == 120 && ref.n[2] == 120,
       "references: 120 tokens each (%d, %d, %d) in %llu steps",
       ref.n[0], ref.n[1], ref.n[2], (unsigned long long) steps_plain);

    /* the prediction is the output */
    rq[0].pred = ref.tokens[0];
    rq[0].n_pred = ref.n[0];
    steps_pred = run(e, rq, 1, 0, &got);
    ok(same(&got, 0, &ref, 0), "greedy, its own output predicted: the same "
       "tokens");
    ok(got.accepted[0] >= 100 && got.rejected[0] == 0,
       "... %d taken from drafts, %d rejected", got.accepted[0],
       got.rejected[0]);
    ok(steps_pred * 4 < steps_plain, "... in %llu steps, not %llu",
       (unsigned long long) steps_pred, (unsigned long long) steps_plain);

    /* an edit of it */
    n_edit = edit_of(ref.tokens[0], ref.n[0], junk, edit);
    rq[0].pred = edit;
    rq[0].n_pred = n_edit;
    (void) run(e, rq, 1, 0, &got);
    ok(same(&got, 0, &ref, 0) && got.accepted[0] >= 60
       && got.rejected[0] > 0,
       "greedy, an edit predicted: the same tokens (%d taken, %d "
       "rejected)", got.accepted[0], got.rejected[0]);

    rq[0].pred = junk;
    rq[0].n_pred = 120;
    (void) run(e, rq, 1, 0, &got);
    ok(same(&got, 0, &ref, 0), "greedy, an unrelated prediction: the same "
       "tokens (%d taken, %d rejected)", got.accepted[0], got.rejected[0]);

    rq[1].pred = ref.tokens[1];
    rq[1].n_pred = ref.n[1];
    (void) run(e, rq + 1, 1, 0, &got);
    ok(same(&got, 0, &ref, 1) && got.accepted[0] >= 100,
       "sampled (seed 0, T 1), its own output predicted: the same tokens, "
       "%d from drafts", got.accepted[0]);

    rq[3].pred = ref.tokens[3];
    rq[3].n_pred = ref.n[3];
    (void) run(e, rq + 3, 1, 0, &got);
    ok(same(&got, 0, &ref, 3) && got.accepted[0] == 0
       && got.rejected[0] == 0,
       "a penalty (rows picked on the host): no drafts, the same tokens");

    /* all together in one batch, the adapter's with an edit predicted
     * (the references' requests 0-3 again, 4 and 5 the first two
     * without predictions) */
    rq[0].pred = ref.tokens[0];
    rq[0].n_pred = ref.n[0];
    rq[2].pred = edit2;
    rq[2].n_pred = edit_of(ref.tokens[2], ref.n[2], junk, edit2);
    rq[4] = rq[0];
    rq[4].pred = NULL;
    rq[4].n_pred = 0;
    rq[5] = rq[1];
    rq[5].pred = NULL;
    rq[5].n_pred = 0;
    (void) run(e, rq, 6, 1, &bat);
    bad = 0;
    for (i = 0; i < 6; i++) {
        bad += !same(&bat, i, &ref, i < 4 ? i : i - 4);
    }
    is_int(bad, 0, "six at once, four with predictions (greedy, sampled, "
           "the adapter's, a penalty's) and two without: each its own "
           "tokens");
    ok(bat.accepted[0] >= 100 && bat.accepted[1] >= 100
       && bat.accepted[2] > 0 && bat.accepted[4] == 0,
       "... the predicted ones drafted (%d, %d, %d)", bat.accepted[0],
       bat.accepted[1], bat.accepted[2]);

    /* max_tokens below the prediction */
    rq[0].max_tokens = 50;
    (void) run(e, rq, 1, 0, &got);
    bad = got.n[0] != 50 || got.finish[0] != SLORA_FINISH_LENGTH
          || memcmp(got.tokens[0], ref.tokens[0], 50 * sizeof(int32_t));
    ok(!bad, "max_tokens 50 under a prediction of 120: its first 50 "
       "tokens, finish length (%d)", got.n[0]);

    /* a stop id the drafts run over: the output's token at 41, where
     * it is first seen */
    f = 41;
    for (i = 0; i < 41; i++) {
        if (ref.tokens[0][i] == ref.tokens[0][41]) {
            f = i;
            break;
        }
    }
    rq[0].max_tokens = 120;
    rq[0].stop = ref.tokens[0][f];
    (void) run(e, rq, 1, 0, &got);
    bad = got.n[0] != f || got.finish[0] != SLORA_FINISH_STOP
          || memcmp(got.tokens[0], ref.tokens[0],
                    (size_t) f * sizeof(int32_t));
    ok(!bad, "a stop id inside a draft: the tokens before it, finish stop "
       "(%d of %d)", got.n[0], f);
    ok(got.accepted[0] > 0 && got.accepted[0] <= got.n[0],
       "... the drafts' tokens past the stop not counted taken (%d taken, "
       "%d rejected)", got.accepted[0], got.rejected[0]);

    slora_engine_free(e);
}


/*
 * No rejected draft reaches the prefix cache: a request with an edited
 * prediction, then a next turn (its prompt, 100 tokens of its output and
 * 8 more) that takes its full pages from the cache, answers as the next
 * turn does with the cache off.
 */
static void
test_pages(void)
{
    int32_t               prompt[20], junk[120], n, bad, kv[MAXGEN + 1];
    uint32_t              x;
    slora_err_t           err;
    slora_engine_t       *e;
    slora_request_t       req;
    slora_engine_stats_t  st;
    static dr_sink_t      got;

    x = 4242;
    random_tokens(&x, prompt, 20);
    random_tokens(&x, junk, 120);

    e = engine_up(0, 0, "pages: engine up");
    if (e == NULL) {
        return;
    }

    /* the pages a request without a prediction holds after each step,
     * by its output's length; then with an unrelated prediction, whose
     * drafts are rejected, at the same lengths */
    memset(&req, 0, sizeof(req));
    req.prompt = prompt;
    req.n_prompt = 20;
    req.sampling.top_p = 1;
    req.sampling.max_tokens = 100;

    memset(&got, 0, sizeof(got));
    memset(kv, 0, sizeof(kv));
    (void) slora_engine_submit(e, &req, &err);

    while (slora_engine_step(e, on_event, &got) == SLORA_OK) {
        slora_engine_stats(e, &st);
        n = got.n[0];
        kv[n] = got.done[0] ? kv[n] : st.pages_kv;
    }

    req.prediction = junk;
    req.n_prediction = 120;
    memset(&got, 0, sizeof(got));
    bad = 0;
    (void) slora_engine_submit(e, &req, &err);

    while (slora_engine_step(e, on_event, &got) == SLORA_OK) {
        slora_engine_stats(e, &st);
        n = got.n[0];
        if (!got.done[0] && kv[n] > 0 && st.pages_kv > kv[n]) {
            diag("at %d tokens %d pages, without drafts %d", n, st.pages_kv,
                 kv[n]);
            bad++;
        }
    }

    ok(got.n[0] == 100 && got.rejected[0] > 0 && bad == 0,
       "pages: a rejected draft's pages go back at once (%d rejected, %d "
       "steps held more)", got.rejected[0], bad);

    slora_engine_free(e);
}


static void
test_prefix(void)
{
    int                   i;
    int32_t               prompt[20], turn[128], edit[160], n_edit;
    slora_engine_t       *e;
    dr_req_t              rq[2];
    static dr_sink_t      first, on, off;

    for (i = 0; i < 20; i++) {
        prompt[i] = (i * 37 + 5) % mcfg.vocab;
    }

    /* without the cache: the first request and the next turn */
    e = engine_up(0, 0, "prefix: engine up without the cache");
    if (e == NULL) {
        return;
    }

    memset(rq, 0, sizeof(rq));
    plain_req(&rq[0], prompt, 20, 120);
    (void) run(e, rq, 1, 0, &first);

    memcpy(turn, prompt, 20 * sizeof(int32_t));
    memcpy(turn + 20, first.tokens[0], 100 * sizeof(int32_t));
    for (i = 120; i < 128; i++) {
        turn[i] = (i * 11) % mcfg.vocab;
    }
    plain_req(&rq[1], turn, 128, 24);
    (void) run(e, rq + 1, 1, 0, &off);
    slora_engine_free(e);

    /* with it, the first request alone fills it, its drafts cut all
     * along (every fourth token of the prediction changed) */
    n_edit = first.n[0];
    for (i = 0; i < n_edit; i++) {
        edit[i] = i % 4 == 3 ? (first.tokens[0][i] + 1) % mcfg.vocab
                             : first.tokens[0][i];
    }
    rq[0].pred = edit;
    rq[0].n_pred = n_edit;

    e = engine_up(1, 0, "prefix: engine up with the cache");
    if (e == NULL) {
        return;
    }
    (void) run(e, rq, 1, 0, &on);
    ok(same(&on, 0, &first, 0) && on.rejected[0] > 10,
       "prefix: a request with drafts cut all along (%d rejected) gives "
       "its tokens", on.rejected[0]);
    (void) run(e, rq + 1, 1, 0, &on);
    slora_engine_free(e);

    ok(on.cached[0] >= 64 && same(&on, 0, &off, 0),
       "prefix: the next turn takes %d cached tokens, the pages that "
       "request computed, and answers as with the cache off",
       on.cached[0]);
}


/*
 * Lookup: the prompt holds a run of the model's own greedy output, so
 * that its next output repeats what the prompt holds; each request
 * (greedy, sampled, the adapter's, a penalty's) gives the tokens it gives
 * without lookup, alone and six together, and a prediction is still
 * drafted from.
 */
static void
test_lookup(void)
{
    int                   i, bad;
    int32_t               prompt[20 + MAXGEN];
    uint32_t              x;
    uint64_t              steps_plain, steps_lookup, taken, lost;
    slora_engine_t       *e;
    dr_req_t              rq[NREQ];
    slora_engine_stats_t  a, b;
    static dr_sink_t      ref, got, bat;

    x = 4242;
    random_tokens(&x, prompt, 20);

    e = engine_up(0, 0, "lookup: engine up without it");
    if (e == NULL) {
        return;
    }

    /* the prompt: 20 tokens, then their greedy output's first 100 */
    memset(rq, 0, sizeof(rq));
    plain_req(&rq[0], prompt, 20, 100);
    (void) run(e, rq, 1, 0, &ref);
    memcpy(prompt + 20, ref.tokens[0], 100 * sizeof(int32_t));

    /* the references, and 4 greedy with its output predicted */
    steps_plain = references(e, prompt, 120, 100, rq, &ref);
    rq[4] = rq[0];
    slora_engine_free(e);

    /* the default: drafts while the engine holds one request */
    e = engine_up(0, -1, "lookup: engine up with it");
    if (e == NULL) {
        return;
    }

    slora_engine_stats(e, &a);
    steps_lookup = run(e, rq, 1, 0, &got);
    slora_engine_stats(e, &b);
    taken = b.lookup_accepted - a.lookup_accepted;
    lost = b.lookup_rejected - a.lookup_rejected;
    ok(same(&got, 0, &ref, 0) && taken >= 20,
       "lookup, greedy: the same %d tokens, %llu from drafts (%llu "
       "rejected)", got.n[0], (unsigned long long) taken,
       (unsigned long long) lost);
    ok(steps_lookup + taken / 2 <= steps_plain,
       "... in %llu steps, not %llu", (unsigned long long) steps_lookup,
       (unsigned long long) steps_plain);
    ok(got.accepted[0] == 0 && got.rejected[0] == 0
       && b.prediction_accepted == 0 && b.prediction_rejected == 0,
       "... none of it counted as a prediction's");

    bad = 0;
    for (i = 1; i < 4; i++) {
        slora_engine_stats(e, &a);
        (void) run(e, rq + i, 1, 0, &got);
        slora_engine_stats(e, &b);
        bad += !same(&got, 0, &ref, i);
        if (i == 3) {
            ok(b.lookup_accepted == a.lookup_accepted
               && b.lookup_rejected == a.lookup_rejected,
               "lookup, a penalty (rows picked on the host): no drafts");
        }
    }
    is_int(bad, 0, "lookup: sampled, the adapter's, a penalty's: each "
           "its tokens without lookup");

    /* a prediction drafts from the prediction, not the prompt */
    rq[4].pred = ref.tokens[0];
    rq[4].n_pred = ref.n[0];
    slora_engine_stats(e, &a);
    (void) run(e, rq + 4, 1, 0, &got);
    slora_engine_stats(e, &b);
    ok(same(&got, 0, &ref, 0) && got.accepted[0] >= 80
       && b.lookup_accepted == a.lookup_accepted
       && b.lookup_rejected == a.lookup_rejected,
       "lookup, a request with a prediction: drafted from it (%d taken), "
       "not by lookup", got.accepted[0]);

    /* six together, 0-3 again and 4, 5 as 0, 1: above the default's
     * one request, no drafts (they all end at once, at max_tokens) */
    rq[4] = rq[0];
    rq[5] = rq[1];
    slora_engine_stats(e, &a);
    (void) run(e, rq, 6, 1, &bat);
    slora_engine_stats(e, &b);
    bad = 0;
    for (i = 0; i < 6; i++) {
        bad += !same(&bat, i, &ref, i < 4 ? i : i - 4);
    }
    ok(bad == 0 && b.lookup_accepted == a.lookup_accepted
       && b.lookup_rejected == a.lookup_rejected,
       "lookup, six at once on the default: each its own tokens, no "
       "drafts");
    slora_engine_free(e);

    /* drafts while eight are held: the six draft beside each other */
    e = engine_up(0, 8, "lookup: engine up with it for eight");
    if (e == NULL) {
        return;
    }

    slora_engine_stats(e, &a);
    (void) run(e, rq, 6, 1, &bat);
    slora_engine_stats(e, &b);
    bad = 0;
    for (i = 0; i < 6; i++) {
        bad += !same(&bat, i, &ref, i < 4 ? i : i - 4);
    }
    ok(bad == 0 && b.lookup_accepted - a.lookup_accepted >= 60,
       "lookup for eight, six at once: each its own tokens, %llu from "
       "drafts", (unsigned long long) (b.lookup_accepted - a.lookup_accepted));

    slora_engine_free(e);
}


/* n tokens of the model's vocabulary from the generator *x. */
static void
random_tokens(uint32_t *x, int32_t *out, int32_t n)
{
    int32_t  i;

    for (i = 0; i < n; i++) {
        *x = *x * 1664525 + 1013904223;
        out[i] = (int32_t) ((*x >> 8) % (uint32_t) mcfg.vocab);
    }
}


/* A request of max_tokens greedy tokens after prompt, without a
 * prediction, a stop id or an adapter. */
static void
plain_req(dr_req_t *r, const int32_t *prompt, int32_t n_prompt,
    int32_t max_tokens)
{
    memset(r, 0, sizeof(*r));
    r->prompt = prompt;
    r->n_prompt = n_prompt;
    r->max_tokens = max_tokens;
    r->stop = -1;
}


/* The references, each alone and without a prediction, set in rq[0, 4)
 * and run into ref: 0 greedy, 1 sampled, 2 under the adapter, 3 with a
 * penalty; returns request 0's steps. */
static uint64_t
references(slora_engine_t *e, const int32_t *prompt, int32_t n_prompt,
    int32_t max_tokens, dr_req_t *rq, dr_sink_t *ref)
{
    int               i;
    uint64_t          steps;
    static dr_sink_t  alone;

    for (i = 0; i < 4; i++) {
        plain_req(&rq[i], prompt, n_prompt, max_tokens);
    }
    rq[1].temperature = 1.0f;
    rq[2].adapter = "ad1";
    rq[3].frequency_penalty = 0.5f;

    steps = run(e, rq, 1, 0, ref);
    (void) run(e, rq + 1, 3, 0, &alone);
    for (i = 1; i < 4; i++) {
        memcpy(ref->tokens[i], alone.tokens[i - 1], sizeof(ref->tokens[i]));
        ref->n[i] = alone.n[i - 1];
        ref->finish[i] = alone.finish[i - 1];
    }

    return steps;
}


/* The tiny model's engine, one thread, the adapters' folder, the prefix
 * cache on or off, lookup on or off. */
static slora_engine_t *
engine_up(int cache, int lookup, const char *what)
{
    slora_engine_conf_t  conf;

    memset(&conf, 0, sizeof(conf));
    conf.model_path = model;
    conf.adapter_dir = root;
    conf.n_threads = 1;
    conf.no_prefix_cache = !cache;
    conf.draft_lookup = lookup != 0;
    conf.lookup_running = lookup > 0 ? lookup : 0;

    return tiny_engine_up(&conf, what);
}


static void
on_event(void *data, const slora_event_t *ev)
{
    dr_sink_t  *ds = data;

    if (ev->id >= NREQ) {
        return;
    }

    if (ev->type == SLORA_EV_TOKEN && ds->n[ev->id] < MAXGEN) {
        ds->tokens[ev->id][ds->n[ev->id]++] = ev->token;
        ds->cached[ev->id] = ev->cached_tokens;

    } else if (ev->type == SLORA_EV_DONE) {
        ds->done[ev->id] = 1;
        ds->finish[ev->id] = ev->finish;
        ds->accepted[ev->id] = ev->accepted_prediction;
        ds->rejected[ev->id] = ev->rejected_prediction;

    } else if (ev->type == SLORA_EV_ERROR) {
        diag("request %llu: %s", (unsigned long long) ev->id, ev->error);
        ds->done[ev->id] = 1;
    }
}


/* Runs rq[0, n) (ids 0..n-1) one after another, or submitted together;
 * returns the steps it took. */
static uint64_t
run(slora_engine_t *e, const dr_req_t *rq, int n, int together,
    dr_sink_t *ds)
{
    int                   i;
    slora_err_t           err;
    slora_request_t       req;
    slora_engine_stats_t  a, b;

    memset(ds, 0, sizeof(*ds));
    slora_engine_stats(e, &a);

    for (i = 0; i < n; i++) {
        memset(&req, 0, sizeof(req));
        req.id = (uint64_t) i;
        req.prompt = rq[i].prompt;
        req.n_prompt = rq[i].n_prompt;
        req.prediction = rq[i].pred;
        req.n_prediction = rq[i].n_pred;
        req.adapter = rq[i].adapter;
        req.stop_ids = &rq[i].stop;
        req.n_stop_ids = rq[i].stop >= 0;
        req.sampling.top_p = 1;
        req.sampling.max_tokens = rq[i].max_tokens;
        req.sampling.temperature = rq[i].temperature;
        req.sampling.frequency_penalty = rq[i].frequency_penalty;

        if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
            diag("submit %d: %s", i, err.msg);
            ds->done[i] = 1;
        }

        if (!together) {
            while (!ds->done[i]
                   && slora_engine_step(e, on_event, ds) == SLORA_OK)
            {
                /* alone */
            }
        }
    }

    while (slora_engine_step(e, on_event, ds) == SLORA_OK) {
        /* together */
    }

    slora_engine_stats(e, &b);

    return b.steps - a.steps;
}


/* Request i of a gave the tokens and the finish request j of b did. */
static int
same(const dr_sink_t *a, int i, const dr_sink_t *b, int j)
{
    return a->done[i] && a->n[i] == b->n[j] && a->finish[i] == b->finish[j]
           && memcmp(a->tokens[i], b->tokens[j],
                     (size_t) a->n[i] * sizeof(int32_t))
              == 0;
}


/* src[0, n) edited into out: 5 tokens changed at 30, 5 of junk inserted
 * at 60, 5 deleted at 90; returns its length. */
static int32_t
edit_of(const int32_t *src, int32_t n, const int32_t *junk, int32_t *out)
{
    int32_t  i, k;

    k = 0;
    for (i = 0; i < n; i++) {
        if (i == 60) {
            memcpy(out + k, junk, 5 * sizeof(int32_t));
            k += 5;
        }
        if (i >= 90 && i < 95) {
            continue;
        }
        out[k++] = i >= 30 && i < 35 ? (src[i] + 1) % mcfg.vocab : src[i];
    }

    return k;
}
