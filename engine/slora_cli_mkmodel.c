/*
 * slora_cli_mkmodel.c: `slora mkmodel`, which writes a tiny random
 * Llama-family model (slora_mkmodel.h) for tests and demos.
 *
 * The one idea: this file only turns arguments into a
 * slora_mkmodel_conf_t; every check on the shape is the library's, so
 * the tests that call the library directly cover what this tool writes.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_cli.h"
#include "slora_mkmodel.h"


#define SLORA_MKMODEL_TEMPLATE_MAX  (1u << 20)  /* a chat template's bytes */


static const char  slora_mkmodel_usage[] =
    "usage: slora mkmodel --out PATH [options]\n"
    "\n"
    "Writes a tiny Llama-family model with random weights N(0, 0.02) and\n"
    "norms of 1: a GGUF file, or a folder with config.json and\n"
    "model.safetensors.\n"
    "\n"
    "  --out PATH            output file (gguf) or folder (safetensors)\n"
    "  --format F            gguf (default) or safetensors\n"
    "  --seed N              random seed (1)\n"
    "  --layers N            layers (2)\n"
    "  --hidden N            hidden size (64)\n"
    "  --heads N             attention heads (4)\n"
    "  --kv-heads N          key/value heads (2)\n"
    "  --head-dim N          head size of its own, as Mistral NeMo's\n"
    "                        (default hidden / heads)\n"
    "  --rope-llama3 N       Llama 3.1's RoPE scaling (factor 8, low 1,\n"
    "                        high 4) from an original context of N\n"
    "                        (Llama 3.1's: 8192)\n"
    "  --ffn N               feed-forward size (128)\n"
    "  --vocab N             vocabulary size (256; the tokenizer's with\n"
    "                        --tokenizer)\n"
    "  --ctx N               context length (256)\n"
    "  --arch A              llama (default), qwen2 (q/k/v biases) or\n"
    "                        qwen3 (q and k heads RMS-normed)\n"
    "  --tied 0|1            output shares the token embeddings (0)\n"
    "  --dtype T             f32 (default) or f16\n"
    "  --tokenizer GGUF      copy tokenizer.* metadata from this GGUF\n"
    "                        (gguf output only)\n"
    "  --chat-template FILE  a Jinja chat template for\n"
    "                        tokenizer.chat_template (with --tokenizer)\n";


static int32_t *slora_mkmodel_field(slora_mkmodel_conf_t *c,
    const char *opt);
static int slora_mkmodel_int(const char *opt, const char *s, long min,
    long max, long *out);


int
slora_cli_mkmodel(int argc, char **argv)
{
    int                    i, rc, vocab_given;
    char                  *chat_template;
    long                   v;
    size_t                 len;
    int32_t               *field;
    const char            *opt, *val, *out, *template_path;
    slora_err_t            err;
    slora_mkmodel_conf_t   c;

    slora_mkmodel_defaults(&c);
    out = NULL;
    template_path = NULL;
    vocab_given = 0;

    for (i = 1; i < argc; i++) {
        opt = argv[i];

        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            fputs(slora_mkmodel_usage, stdout);
            return 0;
        }

        if (i + 1 >= argc) {
            fprintf(stderr, "slora mkmodel: %s needs a value (see --help)\n",
                    opt);
            return 1;
        }

        val = argv[++i];

        if (strcmp(opt, "--out") == 0) {
            out = val;

        } else if (strcmp(opt, "--format") == 0) {
            if (strcmp(val, "gguf") == 0) {
                c.gguf = 1;

            } else if (strcmp(val, "safetensors") == 0) {
                c.gguf = 0;

            } else {
                fprintf(stderr, "slora mkmodel: --format %s: gguf or "
                        "safetensors\n", val);
                return 1;
            }

        } else if (strcmp(opt, "--arch") == 0) {
            if (strcmp(val, "llama") == 0) {
                c.qwen2 = 0;

            } else if (strcmp(val, "qwen2") == 0) {
                c.qwen2 = 1;

            } else if (strcmp(val, "qwen3") == 0) {
                c.qwen3 = 1;

            } else {
                fprintf(stderr, "slora mkmodel: --arch %s: llama, qwen2 or "
                        "qwen3\n", val);
                return 1;
            }

        } else if (strcmp(opt, "--dtype") == 0) {
            if (strcmp(val, "f32") == 0) {
                c.dtype = SLORA_DT_F32;

            } else if (strcmp(val, "f16") == 0) {
                c.dtype = SLORA_DT_F16;

            } else {
                fprintf(stderr, "slora mkmodel: --dtype %s: f32 or f16\n",
                        val);
                return 1;
            }

        } else if (strcmp(opt, "--tokenizer") == 0) {
            c.tokenizer = val;

        } else if (strcmp(opt, "--chat-template") == 0) {
            template_path = val;

        } else if (strcmp(opt, "--seed") == 0) {
            if (slora_mkmodel_int(opt, val, 0, 0x7fffffffL, &v) != 0) {
                return 1;
            }
            c.seed = (uint64_t) v;

        } else if (strcmp(opt, "--tied") == 0) {
            if (slora_mkmodel_int(opt, val, 0, 1, &v) != 0) {
                return 1;
            }
            c.tied = (int) v;

        } else {
            field = slora_mkmodel_field(&c, opt);

            if (field == NULL) {
                fprintf(stderr, "slora mkmodel: unknown option %s (see "
                        "--help)\n", opt);
                return 1;
            }

            if (slora_mkmodel_int(opt, val, 1, 1 << 24, &v) != 0) {
                return 1;
            }

            *field = (int32_t) v;
            vocab_given |= field == &c.vocab;
        }
    }

    if (out == NULL) {
        fprintf(stderr, "slora mkmodel: --out is required (see --help)\n");
        return 1;
    }

    if (c.tokenizer != NULL && !vocab_given) {
        c.vocab = 0;
    }

    chat_template = NULL;

    if (template_path != NULL) {
        chat_template = slora_read_file(template_path,
                                        SLORA_MKMODEL_TEMPLATE_MAX, &len,
                                        &err);
        if (chat_template == NULL) {
            fprintf(stderr, "slora mkmodel: --chat-template %s\n", err.msg);
            return 1;
        }

        c.chat_template = chat_template;
    }

    rc = slora_mkmodel(&c, out, &err);
    free(chat_template);

    if (rc != 0) {
        fprintf(stderr, "slora mkmodel: %s\n", err.msg);
        return 1;
    }

    return 0;
}


static int
slora_mkmodel_int(const char *opt, const char *s, long min, long max,
    long *out)
{
    long   v;
    char  *end;

    v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "slora mkmodel: %s %s: an integer in [%ld, %ld] "
                "wanted\n", opt, s, min, max);
        return -1;
    }

    *out = v;

    return 0;
}


/* The size field an integer option sets, or NULL. */
static int32_t *
slora_mkmodel_field(slora_mkmodel_conf_t *c, const char *opt)
{
    if (strcmp(opt, "--layers") == 0) {
        return &c->n_layers;
    }

    if (strcmp(opt, "--hidden") == 0) {
        return &c->hidden;
    }

    if (strcmp(opt, "--heads") == 0) {
        return &c->n_heads;
    }

    if (strcmp(opt, "--kv-heads") == 0) {
        return &c->n_kv_heads;
    }

    if (strcmp(opt, "--head-dim") == 0) {
        return &c->head_dim;
    }

    if (strcmp(opt, "--rope-llama3") == 0) {
        return &c->rope_llama3;
    }

    if (strcmp(opt, "--ffn") == 0) {
        return &c->ffn;
    }

    if (strcmp(opt, "--vocab") == 0) {
        return &c->vocab;
    }

    if (strcmp(opt, "--ctx") == 0) {
        return &c->max_ctx;
    }

    return NULL;
}
