/*
 * slora_cli_generate.c: `slora generate`, one prompt through the engine,
 * with or without a LoRA adapter, the text streamed to stdout as it is
 * sampled.
 *
 * The one idea: this is the engine's smallest client, driven exactly as
 * the nginx engine process drives it: text becomes ids (the tokenizer,
 * the chat template for --chat), ids go in as one request, tokens come
 * back as events and become text again through a streaming detokenizer
 * that never splits a UTF-8 character.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_cli.h"
#include "slora_engine.h"
#include "slora_json.h"
#include "slora_tokenizer.h"


#define SLORA_GEN_MAX_STOP  16


typedef struct {
    const slora_tokenizer_t  *tok;
    slora_detok_t             detok;
    int32_t                   n_gen;
    int                       done;
    int                       failed;
    int                       ids;          /* print ids, not text */
    int64_t                   t_first;
    int32_t                   n_scored;     /* prompt tokens scored */
    double                    score;        /* their log-probabilities,
                                               summed */
    int32_t                   accepted;     /* prediction tokens taken */
    int32_t                   rejected;     /* and not */
} slora_gen_state_t;


static const char  slora_generate_usage[] =
    "usage: slora generate --model M (--prompt TEXT | --chat TEXT) "
    "[options]\n"
    "\n"
    "Generates text from a prompt, streamed to stdout; timings go to\n"
    "stderr.\n"
    "\n"
    "  --model M             GGUF file or HF folder\n"
    "  --adapter DIR         a LoRA adapter (PEFT folder)\n"
    "  --prompt TEXT         raw prompt text\n"
    "  --chat TEXT           a user message, through the model's chat\n"
    "                        template\n"
    "  --max-tokens N        new tokens at most (128)\n"
    "  --temperature T       0 is greedy (0)\n"
    "  --top-k K             0 is off (0)\n"
    "  --top-p P             1 is off (1)\n"
    "  --min-p P             0 is off (0)\n"
    "  --repeat-penalty R    1 is off (1)\n"
    "  --frequency-penalty F OpenAI's, -2..2, over generated tokens (0)\n"
    "  --presence-penalty P  OpenAI's, -2..2, over generated tokens (0)\n"
    "  --seed S              sampling seed (0)\n"
    "  --prediction TEXT     what the output is expected to be, mostly\n"
    "                        (OpenAI's predicted outputs): drafts from it\n"
    "                        are checked several tokens a step; the\n"
    "                        output is the same, the steps fewer\n"
    "  --lookup 1            without a prediction, drafts from the\n"
    "                        prompt and the output so far (prompt\n"
    "                        lookup): the same output\n"
    "  --json 1              JSON mode: the output is one JSON object\n"
    "  --json-schema TEXT    the output is one object this JSON schema\n"
    "                        admits (as response_format json_schema)\n"
    "  --choice JSON         the output is one of these texts, a JSON\n"
    "                        array of strings (as vLLM's guided_choice)\n"
    "  --regex RE            the output is a text this regular expression\n"
    "                        matches whole (as vLLM's guided_regex)\n"
    "  --grammar G           the output is a text of this EBNF grammar's\n"
    "                        rule root (as vLLM's guided_grammar)\n"
    "  --prompt-logprobs 1   the prompt's log-probability under the model\n"
    "                        (and adapter) and its perplexity, on stderr;\n"
    "                        --max-tokens may then be 0\n"
    "  --threads N           CPU threads (all cores)\n"
    "  --device D            cpu (default), cuda or cuda:N\n"
    "  --ids 1               print the generated token ids, not the text\n";


static void slora_generate_event(void *data, const slora_event_t *ev);


int
slora_cli_generate(int argc, char **argv)
{
    int                    i, rc, chat, print_ids;
    char                  *text_buf;
    size_t                 n;
    double                 v, secs;
    int32_t               *ids, n_ids, stop[SLORA_GEN_MAX_STOP], n_stop;
    int32_t                max_ctx;
    int64_t                t0;
    const char            *opt, *val, *model, *adapter, *text, *prediction;
    int32_t               *pred, n_pred;
    slora_engine_stats_t   st;
    slora_err_t            err;
    slora_engine_t        *e;
    slora_request_t        req;
    slora_gen_state_t      gs;
    slora_tokenizer_t     *tok;
    slora_chat_plain_t     plain;
    slora_engine_conf_t    conf;

    memset(&conf, 0, sizeof(conf));
    memset(&req, 0, sizeof(req));
    req.sampling.max_tokens = 128;
    req.sampling.top_p = 1;
    req.sampling.repeat_penalty = 1;

    model = NULL;
    adapter = NULL;
    text = NULL;
    prediction = NULL;
    pred = NULL;
    chat = 0;
    print_ids = 0;

    for (i = 1; i < argc; i++) {
        opt = argv[i];

        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            fputs(slora_generate_usage, stdout);
            return 0;
        }

        if (i + 1 >= argc) {
            fprintf(stderr, "slora generate: %s needs a value (see --help)\n",
                    opt);
            return 1;
        }

        val = argv[++i];
        rc = SLORA_OK;

        if (strcmp(opt, "--model") == 0) {
            model = val;

        } else if (strcmp(opt, "--adapter") == 0) {
            adapter = val;

        } else if (strcmp(opt, "--prompt") == 0
                   || strcmp(opt, "--chat") == 0)
        {
            if (text != NULL) {
                fprintf(stderr, "slora generate: one of --prompt and --chat"
                        "\n");
                return 1;
            }
            text = val;
            chat = opt[2] == 'c';

        } else if (strcmp(opt, "--max-tokens") == 0) {
            rc = slora_cli_number(val, 0, 1 << 20, &v);
            req.sampling.max_tokens = (int32_t) v;

        } else if (strcmp(opt, "--temperature") == 0) {
            rc = slora_cli_number(val, 0, 100, &v);
            req.sampling.temperature = (float) v;

        } else if (strcmp(opt, "--top-k") == 0) {
            rc = slora_cli_number(val, 0, 1 << 30, &v);
            req.sampling.top_k = (int32_t) v;

        } else if (strcmp(opt, "--top-p") == 0) {
            rc = slora_cli_number(val, 0, 1, &v);
            req.sampling.top_p = (float) v;

        } else if (strcmp(opt, "--min-p") == 0) {
            rc = slora_cli_number(val, 0, 1, &v);
            req.sampling.min_p = (float) v;

        } else if (strcmp(opt, "--repeat-penalty") == 0) {
            rc = slora_cli_number(val, 0, 100, &v);
            req.sampling.repeat_penalty = (float) v;

        } else if (strcmp(opt, "--frequency-penalty") == 0) {
            rc = slora_cli_number(val, -2, 2, &v);
            req.sampling.frequency_penalty = (float) v;

        } else if (strcmp(opt, "--presence-penalty") == 0) {
            rc = slora_cli_number(val, -2, 2, &v);
            req.sampling.presence_penalty = (float) v;

        } else if (strcmp(opt, "--prediction") == 0) {
            prediction = val;

        } else if (strcmp(opt, "--lookup") == 0) {
            rc = slora_cli_number(val, 0, 1, &v);
            conf.draft_lookup = (int) v;

        } else if (strcmp(opt, "--seed") == 0) {
            rc = slora_cli_number(val, 0, 1e15, &v);
            req.sampling.seed = (uint64_t) v;

        } else if (strcmp(opt, "--threads") == 0) {
            rc = slora_cli_number(val, 1, 1024, &v);
            conf.n_threads = (int32_t) v;

        } else if (strcmp(opt, "--device") == 0) {
            conf.device = val;

        } else if (strcmp(opt, "--json") == 0) {
            rc = slora_cli_number(val, 0, 1, &v);
            req.sampling.json = v > 0;

        } else if (strcmp(opt, "--json-schema") == 0
                   || strcmp(opt, "--choice") == 0
                   || strcmp(opt, "--regex") == 0
                   || strcmp(opt, "--grammar") == 0)
        {
            req.json_schema = val;
            req.json_schema_len = strlen(val);
            req.json_form = strcmp(opt, "--choice") == 0
                            ? SLORA_JSON_FORM_CHOICE
                            : strcmp(opt, "--regex") == 0
                            ? SLORA_JSON_FORM_REGEX
                            : strcmp(opt, "--grammar") == 0
                            ? SLORA_JSON_FORM_GRAMMAR : SLORA_JSON_FORM_SCHEMA;

        } else if (strcmp(opt, "--prompt-logprobs") == 0) {
            rc = slora_cli_number(val, 0, 1, &v);
            req.prompt_logprobs = v > 0;

        } else if (strcmp(opt, "--ids") == 0) {
            rc = slora_cli_number(val, 0, 1, &v);
            print_ids = v > 0;

        } else {
            fprintf(stderr, "slora generate: unknown option %s (see --help)"
                    "\n", opt);
            return 1;
        }

        if (rc != SLORA_OK) {
            fprintf(stderr, "slora generate: %s \"%s\": bad value\n", opt,
                    val);
            return 1;
        }
    }

    if (model == NULL || text == NULL) {
        fprintf(stderr, "slora generate: --model and --prompt or --chat are "
                "needed (see --help)\n");
        return 1;
    }

    tok = slora_tokenizer_load(model, &err);
    if (tok == NULL) {
        fprintf(stderr, "slora generate: %s\n", err.msg);
        return 1;
    }

    conf.model_path = model;
    conf.max_running = 1;
    conf.tokenizer = tok;
    e = slora_engine_init(&conf, &err);
    if (e == NULL) {
        fprintf(stderr, "slora generate: %s\n", err.msg);
        slora_tokenizer_free(tok);
        return 1;
    }

    rc = 1;
    ids = NULL;
    text_buf = NULL;
    plain.span = NULL;
    plain.n = 0;

    if (adapter != NULL) {
        if (slora_engine_add_adapter(e, "cli", adapter, &err) != SLORA_OK) {
            fprintf(stderr, "slora generate: %s\n", err.msg);
            goto done;
        }
        req.adapter = "cli";
    }

    if (chat) {
        text_buf = slora_chat_user_prompt(tok,
                                          slora_tokenizer_chat_template(tok),
                                          text, strlen(text), &n, &plain,
                                          &err);
        if (text_buf == NULL) {
            fprintf(stderr, "slora generate: %s\n", err.msg);
            goto done;
        }
        text = text_buf;
    }

    max_ctx = slora_engine_model_config(e)->max_ctx;
    max_ctx = max_ctx > 0 && max_ctx < 4096 ? max_ctx : 4096;

    ids = malloc((size_t) max_ctx * sizeof(int32_t));
    if (ids == NULL) {
        fprintf(stderr, "slora generate: no memory\n");
        goto done;
    }

    /* a chat's message is text, as a request's: special tokens only in
     * the template's */
    if ((chat ? slora_tokenizer_encode_chat(tok, text, strlen(text),
                                            slora_tokenizer_chat_bos(tok)
                                            ? SLORA_TOK_BOS_TEMPLATE : 0,
                                            plain.span, plain.n, ids,
                                            max_ctx, max_ctx, &n_ids, &err)
              : slora_tokenizer_encode(tok, text, strlen(text), 1, 0, ids,
                                       max_ctx, &n_ids, &err))
        != SLORA_OK)
    {
        fprintf(stderr, "slora generate: prompt: %s\n",
                err.code == SLORA_BUSY ? "longer than the context" : err.msg);
        goto done;
    }

    if (n_ids >= max_ctx) {
        fprintf(stderr, "slora generate: the prompt fills the context of %d"
                "\n", max_ctx);
        goto done;
    }

    if (req.sampling.max_tokens == 0 && !req.prompt_logprobs) {
        fprintf(stderr, "slora generate: --max-tokens 0 needs "
                "--prompt-logprobs 1\n");
        goto done;
    }

    if (n_ids + req.sampling.max_tokens > max_ctx) {
        req.sampling.max_tokens = max_ctx - n_ids;
    }

    n_pred = 0;

    if (prediction != NULL) {
        pred = malloc((size_t) max_ctx * sizeof(int32_t));
        if (pred == NULL
            || slora_tokenizer_encode(tok, prediction, strlen(prediction), 0,
                                      0, pred, max_ctx, &n_pred, &err)
               != SLORA_OK)
        {
            fprintf(stderr, "slora generate: prediction: %s\n",
                    pred == NULL ? "no memory"
                    : err.code == SLORA_BUSY ? "longer than the context"
                    : err.msg);
            goto done;
        }
    }

    req.prediction = pred;
    req.n_prediction = n_pred;

    n_stop = slora_tokenizer_stop_ids(tok, stop, SLORA_GEN_MAX_STOP);
    n_stop = n_stop < SLORA_GEN_MAX_STOP ? n_stop : SLORA_GEN_MAX_STOP;

    req.id = 1;
    req.prompt = ids;
    req.n_prompt = n_ids;
    req.stop_ids = stop;
    req.n_stop_ids = n_stop;

    if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
        fprintf(stderr, "slora generate: %s\n", err.msg);
        goto done;
    }

    memset(&gs, 0, sizeof(gs));
    gs.tok = tok;
    gs.ids = print_ids;
    slora_detok_init(&gs.detok);

    t0 = slora_now_ns();

    while (!gs.done) {
        if (slora_cli_step(e, slora_generate_event, &gs) == SLORA_DONE) {
            break;
        }
    }

    secs = (double) (slora_now_ns() - t0) / 1e9;
    putchar('\n');
    fflush(stdout);

    if (gs.failed) {
        goto done;
    }

    if (req.prompt_logprobs) {
        fprintf(stderr, "slora generate: the prompt's log-probability %.4f "
                "over its %d tokens after the first (perplexity %.4f)\n",
                gs.score, gs.n_scored,
                gs.n_scored > 0 ? exp(-gs.score / gs.n_scored) : 1.0);
    }

    if (prediction != NULL) {
        slora_engine_stats(e, &st);
        fprintf(stderr, "slora generate: the prediction's %d tokens: %d "
                "taken, %d rejected; %llu steps\n", n_pred, gs.accepted,
                gs.rejected, (unsigned long long) st.steps);

    } else if (conf.draft_lookup) {
        slora_engine_stats(e, &st);
        fprintf(stderr, "slora generate: lookup's drafts: %llu tokens "
                "taken, %llu rejected; %llu steps\n",
                (unsigned long long) st.lookup_accepted,
                (unsigned long long) st.lookup_rejected,
                (unsigned long long) st.steps);
    }

    fprintf(stderr, "slora generate: %d prompt tokens, %d generated in "
            "%.2f s (first token %.0f ms, %.1f tokens/s after it)\n", n_ids,
            gs.n_gen, secs, (double) (gs.t_first - t0) / 1e6,
            gs.n_gen > 1 ? (gs.n_gen - 1)
                           / ((double) (slora_now_ns() - gs.t_first) / 1e9)
                         : 0.0);
    rc = 0;

done:

    free(ids);
    free(pred);
    free(text_buf);
    free(plain.span);
    slora_engine_free(e);
    slora_tokenizer_free(tok);

    return rc;
}


static void
slora_generate_event(void *data, const slora_event_t *ev)
{
    char                out[4096];
    size_t              n;
    slora_gen_state_t  *gs = data;

    switch (ev->type) {

    case SLORA_EV_TOKEN:
        if (gs->n_gen++ == 0) {
            gs->t_first = slora_now_ns();
        }
        if (gs->ids) {
            printf("%d ", ev->token);
            break;
        }
        if (slora_detok_push(&gs->detok, gs->tok, ev->token, 1, out,
                             sizeof(out), &n)
            == SLORA_OK)
        {
            fwrite(out, 1, n, stdout);
            fflush(stdout);
        }
        break;

    case SLORA_EV_DONE:
        if (gs->ids) {
            printf("\n");

        } else if (slora_detok_flush(&gs->detok, out, sizeof(out), &n)
                   == SLORA_OK)
        {
            fwrite(out, 1, n, stdout);
        }
        if (gs->n_gen == 0) {
            gs->t_first = slora_now_ns();
        }
        gs->accepted = ev->accepted_prediction;
        gs->rejected = ev->rejected_prediction;
        gs->done = 1;
        break;

    case SLORA_EV_ERROR:
        fprintf(stderr, "slora generate: %s\n", ev->error);
        gs->done = 1;
        gs->failed = 1;
        break;

    case SLORA_EV_SCORE:
        gs->n_scored++;
        gs->score += ev->logprob;
        break;
    }
}

