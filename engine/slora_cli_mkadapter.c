/*
 * slora_cli_mkadapter.c: `slora mkadapter`, which writes a random LoRA
 * adapter for a model in Hugging Face PEFT layout (adapter_config.json and
 * adapter_model.safetensors), for tests, demos and benchmarks.
 *
 * The one idea: the shapes come from the model itself, so the adapter
 * always fits it; the values come from slora_adapter_write_random(), whose
 * B is not zero (a trained adapter's B is not either), so the adapter
 * really changes what the model says.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "slora_cli.h"
#include "slora_adapter.h"


static const char  slora_mkadapter_usage[] =
    "usage: slora mkadapter --model M --out DIR [options]\n"
    "\n"
    "Writes a random LoRA adapter shaped for model M (GGUF file or HF\n"
    "folder) as a PEFT folder DIR.\n"
    "\n"
    "  --model M             the base model\n"
    "  --out DIR             output folder (created)\n"
    "  --rank R              LoRA rank (8)\n"
    "  --alpha A             lora_alpha (the rank: scale 1)\n"
    "  --targets LIST        comma-separated of q,k,v,o,gate,up,down\n"
    "                        (q,v)\n"
    "  --seed S              random seed (1)\n"
    "  --count N             N adapters: DIR/a0000 ... with seeds S, S+1,\n"
    "                        ...\n"
    "  --ranks LIST          with --count: ranks used in turn (8,16,...)\n"
    "  --scale X             size of B(Ax) relative to x (0.5; q,v at 0.5\n"
    "                        moves a real model, all seven at 2 breaks it)\n";


static int slora_mkadapter_num(const char *s, double min, double max,
    int integer, double *out);
static int slora_mkadapter_targets(const char *s, uint32_t *mask);


int
slora_cli_mkadapter(int argc, char **argv)
{
    int                   i;
    double                v;
    const char           *opt, *val, *model, *out;
    slora_err_t           err;
    slora_model_config_t  cfg;
    slora_adapter_gen_t   gen;
    int32_t               count, k, n_ranks, ranks[16];
    uint64_t              seed;
    char                  path[4096];

    memset(&gen, 0, sizeof(gen));
    gen.rank = 8;
    gen.seed = 1;
    gen.scale = 0.5f;
    gen.proj_mask = (1u << SLORA_PROJ_Q) | (1u << SLORA_PROJ_V);
    model = NULL;
    out = NULL;
    count = 1;
    n_ranks = 0;

    for (i = 1; i < argc; i++) {
        opt = argv[i];

        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            fputs(slora_mkadapter_usage, stdout);
            return 0;
        }

        if (i + 1 >= argc) {
            fprintf(stderr, "slora mkadapter: %s needs a value (see --help)"
                    "\n", opt);
            return 1;
        }

        val = argv[++i];

        if (strcmp(opt, "--model") == 0) {
            model = val;

        } else if (strcmp(opt, "--out") == 0) {
            out = val;

        } else if (strcmp(opt, "--targets") == 0) {
            if (slora_mkadapter_targets(val, &gen.proj_mask) != SLORA_OK) {
                fprintf(stderr, "slora mkadapter: --targets \"%s\": use "
                        "q,k,v,o,gate,up,down\n", val);
                return 1;
            }

        } else if (strcmp(opt, "--rank") == 0) {
            if (slora_mkadapter_num(val, 1, SLORA_ADAPTER_MAX_RANK, 1, &v)
                != SLORA_OK)
            {
                goto bad;
            }
            gen.rank = (int32_t) v;

        } else if (strcmp(opt, "--alpha") == 0) {
            if (slora_mkadapter_num(val, 1e-6, 1e6, 0, &v) != SLORA_OK) {
                goto bad;
            }
            gen.alpha = (float) v;

        } else if (strcmp(opt, "--seed") == 0) {
            if (slora_mkadapter_num(val, 0, 1e15, 1, &v) != SLORA_OK) {
                goto bad;
            }
            gen.seed = (uint64_t) v;

        } else if (strcmp(opt, "--count") == 0) {
            if (slora_mkadapter_num(val, 1, 100000, 1, &v) != SLORA_OK) {
                goto bad;
            }
            count = (int32_t) v;

        } else if (strcmp(opt, "--ranks") == 0) {
            if (slora_cli_int_list(val, 1, SLORA_ADAPTER_MAX_RANK, ranks, 16,
                                   &n_ranks)
                != SLORA_OK)
            {
                goto bad;
            }

        } else if (strcmp(opt, "--scale") == 0) {
            if (slora_mkadapter_num(val, 1e-9, 1e3, 0, &v) != SLORA_OK) {
                goto bad;
            }
            gen.scale = (float) v;

        } else {
            fprintf(stderr, "slora mkadapter: unknown option %s (see "
                    "--help)\n", opt);
            return 1;
        }
    }

    if (model == NULL || out == NULL) {
        fprintf(stderr, "slora mkadapter: --model and --out are needed "
                "(see --help)\n");
        return 1;
    }

    /* only the shape is needed: a random spec gives it without weights */
    if (slora_model_config(model, &cfg, &err) != SLORA_OK) {
        fprintf(stderr, "slora mkadapter: %s\n", err.msg);
        return 1;
    }

    seed = gen.seed;

    for (k = 0; k < count; k++) {
        if (count > 1) {
            snprintf(path, sizeof(path), "%s/a%04d", out, k);
            gen.seed = seed + (uint64_t) k;
            gen.rank = n_ranks > 0 ? ranks[k % n_ranks] : gen.rank;

            if (k == 0 && mkdir(out, 0755) != 0 && errno != EEXIST) {
                fprintf(stderr, "slora mkadapter: %s: %s\n", out,
                        strerror(errno));
                return 1;
            }

        } else {
            snprintf(path, sizeof(path), "%s", out);
        }

        if (slora_adapter_write_random(path, &cfg, &gen, &err) != SLORA_OK) {
            fprintf(stderr, "slora mkadapter: %s\n", err.msg);
            return 1;
        }

        printf("%s: rank %d, alpha %g, targets 0x%02x, seed %llu\n", path,
               gen.rank,
               gen.alpha > 0 ? (double) gen.alpha : (double) gen.rank,
               gen.proj_mask, (unsigned long long) gen.seed);
    }


    return 0;

bad:

    fprintf(stderr, "slora mkadapter: %s \"%s\": bad value\n", opt, val);
    return 1;
}


static int
slora_mkadapter_num(const char *s, double min, double max, int integer,
    double *out)
{
    char    *end;
    double   v;

    errno = 0;
    v = strtod(s, &end);

    if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max)
        || (integer && v != (double) (int64_t) v))
    {
        return SLORA_ERROR;
    }

    *out = v;
    return SLORA_OK;
}


/* "q,v" or "q_proj,v_proj" -> mask */
static int
slora_mkadapter_targets(const char *s, uint32_t *mask)
{
    int          p;
    size_t       len, plen;
    const char  *comma, *name;

    static const char  *shorts[SLORA_PROJ_N] = {
        "q", "k", "v", "o", "gate", "up", "down"
    };

    *mask = 0;

    while (*s != '\0') {
        comma = strchr(s, ',');
        len = comma ? (size_t) (comma - s) : strlen(s);

        for (p = 0; p < SLORA_PROJ_N; p++) {
            name = slora_proj_name(p);
            plen = strlen(shorts[p]);
            if ((len == plen && memcmp(s, shorts[p], len) == 0)
                || (len == strlen(name) && memcmp(s, name, len) == 0))
            {
                break;
            }
        }

        if (p == SLORA_PROJ_N) {
            return SLORA_ERROR;
        }

        *mask |= 1u << p;
        s += len;
        s += *s == ',';
    }

    return *mask ? SLORA_OK : SLORA_ERROR;
}
