/*
 * slora_engine_lazy.c: a request's constrained output set up at its
 * submit: its schema (or regex, grammar, choice, structural tag)
 * compiled, and for a lazy one the triggers it holds from (a tool
 * call's, one request field; a structural tag's, its own), the gate
 * they count from (a reasoning model's closing mark), each matched by
 * its text and by the control token that text is, and the guard list of
 * tokens that hold a trigger whole.
 *
 * The one idea: a request's triggers are set once here, so the step
 * (slora_engine_take.c, slora_engine_host.c) only feeds and guards
 * them; the guard list, a walk of the vocabulary, is kept for the next
 * request of the same triggers.
 */

#include <stdlib.h>
#include <string.h>

#include "slora_engine_int.h"


static int slora_engine_guard_set(slora_engine_t *e,
    slora_engine_req_t *q);
static int slora_engine_gate_guard_set(slora_engine_t *e,
    slora_engine_req_t *q);
static int32_t *slora_engine_holding(slora_engine_t *e,
    const slora_json_trigger_t *t, uint32_t n, int32_t *count);
static void slora_engine_trigger_set(const slora_engine_t *e,
    slora_json_trigger_t *t, const char *text, size_t len);
static int32_t slora_engine_control_id(const slora_engine_t *e,
    const char *text, size_t len);


int
slora_engine_lazy_set(slora_engine_t *e, slora_engine_req_t *q,
    const slora_request_t *req, slora_err_t *err)
{
    size_t       text_len;
    uint32_t     t;
    const char  *text;

    q->schema = slora_engine_schema_take(e, req->json_form, req->json_schema,
                                         req->json_schema_len,
                                         &q->schema_held, err);

    if (q->schema == NULL) {
        slora_err_prefix(err, "request %llu: %s",
                         (unsigned long long) req->id,
                         slora_json_form_name(req->json_form));
        return SLORA_ERROR;
    }

    if (req->json_trigger != NULL) {
        slora_engine_trigger_set(e, &q->trigger[0], req->json_trigger,
                                 req->json_trigger_len);
        q->trigger[0].lead = req->json_trigger_lead == SLORA_TRIGGER_LEAD;
        q->trigger_ends = req->json_trigger_lead != 0;
        q->n_triggers = 1;

    } else if (req->json_form == SLORA_JSON_FORM_TAGS) {
        /* a structural tag's: its begin goes on from the trigger */
        q->n_triggers = slora_json_tags_triggers(q->schema);
        q->trigger_ends = slora_json_tags_end_first(q->schema) != 0;
        q->trigger_whole = 1;
        q->tag_first = slora_json_tags_first(q->schema) != 0;

        for (t = 0; t < q->n_triggers; t++) {
            text = slora_json_tags_trigger(q->schema, t, &text_len);
            slora_engine_trigger_set(e, &q->trigger[t], text, text_len);
        }
    }

    if (req->json_trigger != NULL
        && req->json_form == SLORA_JSON_FORM_TAGS
        && slora_json_tags_triggers(q->schema) > 0)
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: a structural "
                             "tag with triggers takes no other trigger",
                             (unsigned long long) req->id);
    }

    if (req->json_gate != NULL && q->n_triggers == 0) {
        return slora_err_set(err, SLORA_ERROR, "request %llu: a gate needs "
                             "a trigger", (unsigned long long) req->id);
    }

    /* a trigger written begins its value, or is not drawn */
    if (q->n_triggers > 0 && !q->trigger[0].lead
        && slora_engine_guard_set(e, q) != SLORA_OK)
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: no memory",
                             (unsigned long long) req->id);
    }

    /* a lazy schema holds from its trigger on; at_least_one's first
     * tag from the start, or from the gate (slora_engine_take) */
    q->sampling.json = q->n_triggers == 0
                       || (q->tag_first && req->json_gate == NULL);

    if (req->json_gate != NULL) {
        slora_engine_trigger_set(e, &q->gate, req->json_gate,
                                 req->json_gate_len);
    }

    /* at_least_one's gate passed is its first tag begun, or not drawn */
    if (q->tag_first && req->json_gate != NULL
        && slora_engine_gate_guard_set(e, q) != SLORA_OK)
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: no memory",
                             (unsigned long long) req->id);
    }

    return SLORA_OK;
}


/* q's guard list (slora_json_trigger_guard): the tokens that hold one
 * of its triggers whole and run on, a few of the vocabulary or none;
 * the last list made kept by its triggers' texts, since the requests of
 * one tool template or one client share them and a list is a walk of
 * the whole vocabulary. */
static int
slora_engine_guard_set(slora_engine_t *e, slora_engine_req_t *q)
{
    int32_t   *ids, n;
    uint32_t   k;

    for (k = 0; k < q->n_triggers && q->n_triggers == e->n_guard_of; k++) {
        if (q->trigger[k].len != e->guard_of[k].len
            || memcmp(q->trigger[k].text, e->guard_of[k].text,
                      q->trigger[k].len) != 0)
        {
            break;
        }
    }

    if (k < q->n_triggers || q->n_triggers != e->n_guard_of) {
        ids = slora_engine_holding(e, q->trigger, q->n_triggers, &n);

        if (ids == NULL) {
            return SLORA_ERROR;
        }

        free(e->guard_ids);
        e->guard_ids = ids;
        e->n_guard_ids = n;
        e->n_guard_of = q->n_triggers;
        memcpy(e->guard_of, q->trigger,
               q->n_triggers * sizeof(slora_json_trigger_t));
    }

    if (e->n_guard_ids == 0) {
        return SLORA_OK;
    }

    q->guard = malloc((size_t) e->n_guard_ids * sizeof(int32_t));

    if (q->guard == NULL) {
        return SLORA_ERROR;
    }

    memcpy(q->guard, e->guard_ids, (size_t) e->n_guard_ids * sizeof(int32_t));
    q->n_guard = e->n_guard_ids;

    return SLORA_OK;
}


/* q's gate's guard list (at_least_one behind a gate): the tokens that
 * hold the gate whole and run on; a walk of the vocabulary each such
 * request (a gate that is one control token, as Qwen3's </think>, has
 * none). */
static int
slora_engine_gate_guard_set(slora_engine_t *e, slora_engine_req_t *q)
{
    int32_t  n;

    q->gate_guard = slora_engine_holding(e, &q->gate, 1, &n);

    if (q->gate_guard == NULL) {
        return SLORA_ERROR;
    }

    q->n_gate_guard = n;

    return SLORA_OK;
}


/* The tokens that hold one of the n triggers t[] whole and run on
 * (slora_json_trigger_tokens: a walk of the vocabulary), *count of
 * them, in an array of their size (one entry at least); NULL: no
 * memory. */
static int32_t *
slora_engine_holding(slora_engine_t *e, const slora_json_trigger_t *t,
    uint32_t n, int32_t *count)
{
    int32_t  *ids, *shrunk;

    ids = malloc((size_t) e->model->cfg.vocab * sizeof(int32_t));

    if (ids == NULL) {
        return NULL;
    }

    *count = slora_json_trigger_tokens(t, n, e->json_vocab, ids);
    shrunk = realloc(ids, (size_t) (*count > 0 ? *count : 1)
                          * sizeof(int32_t));

    return shrunk != NULL ? shrunk : ids;
}


/* A trigger (or a gate) watching for text[0..len) (1 to
 * SLORA_JSON_TRIGGER_MAX bytes), and for the control token whose text
 * it is. */
static void
slora_engine_trigger_set(const slora_engine_t *e, slora_json_trigger_t *t,
    const char *text, size_t len)
{
    memcpy(t->text, text, len);
    t->len = (uint32_t) len;
    t->id = slora_engine_control_id(e, text, len);
}


/* The control token whose text is text[0..len) (Mistral's
 * [TOOL_CALLS]), -1 where the model's vocabulary has none. */
static int32_t
slora_engine_control_id(const slora_engine_t *e, const char *text,
    size_t len)
{
    int32_t  id;

    if (e->conf.tokenizer == NULL) {
        return -1;
    }

    id = slora_tokenizer_find(e->conf.tokenizer, text, len);

    return id >= 0 && slora_tokenizer_is_special(e->conf.tokenizer, id)
           ? id : -1;
}
