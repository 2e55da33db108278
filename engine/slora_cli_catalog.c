/*
 * slora_cli_catalog.c: `slora catalog`, which writes the Redis catalog
 * the engines read: register adapter folders, list and remove them, set
 * tenants. Every change is published on slora:events, so running engines
 * pick it up without a restart.
 *
 * The one idea: the tool only parses arguments; what goes into Redis
 * (absolute path, rank, alpha, targets and sha256 read from the folder
 * itself) is computed by slora_catalog_write.c, which the tests use too.
 */

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_cli.h"
#include "slora_catalog.h"


static const char  slora_catalog_usage[] =
    "usage: slora catalog [--redis URL] <command> [arguments]\n"
    "\n"
    "Writes the adapter catalog in Redis (URL: redis://127.0.0.1:6379).\n"
    "\n"
    "  register DIR [--base NAME]   every sub-folder of DIR becomes adapter\n"
    "                               slora:adapter:<folder name>\n"
    "  list                         the adapters, one a line\n"
    "  remove NAME                  drops adapter NAME\n"
    "  tenant NAME [--default A] [--allow A,B,...] [--priority N]\n"
    "              [--ttft-slo MS] [--max-tokens N] [--rate R]\n"
    "                               creates or updates tenant NAME\n"
    "                               (--allow '*': any adapter; \"\": none\n"
    "                               but the default)\n";


static void slora_catalog_print(void *data,
    const slora_catalog_entry_info_t *info);
static int slora_catalog_int(const char *opt, const char *s, int32_t *out);
static int slora_catalog_tenant_cmd(slora_catalog_writer_t *w, int argc,
    char **argv);


int
slora_cli_catalog(int argc, char **argv)
{
    int                      i, rc;
    int32_t                  n;
    const char              *url, *cmd, *base;
    slora_err_t              err;
    slora_catalog_writer_t  *w;

    url = "redis://127.0.0.1:6379";
    i = 1;

    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(slora_catalog_usage, stdout);
            return 0;
        }

        if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc) {
            url = argv[i + 1];
            i += 2;
            continue;
        }

        fprintf(stderr, "slora catalog: unknown option %s (see --help)\n",
                argv[i]);
        return 2;
    }

    if (i >= argc) {
        fputs(slora_catalog_usage, stderr);
        return 2;
    }

    cmd = argv[i++];

    if (strcmp(cmd, "register") != 0 && strcmp(cmd, "list") != 0
        && strcmp(cmd, "remove") != 0 && strcmp(cmd, "tenant") != 0)
    {
        fprintf(stderr, "slora catalog: unknown command \"%s\" (see "
                "--help)\n", cmd);
        return 2;
    }

    w = slora_catalog_writer_open(url, 2000, &err);
    if (w == NULL) {
        fprintf(stderr, "slora catalog: %s\n", err.msg);
        return 1;
    }

    rc = SLORA_OK;

    if (strcmp(cmd, "register") == 0) {
        base = NULL;
        if (i + 3 == argc && strcmp(argv[i + 1], "--base") == 0) {
            base = argv[i + 2];

        } else if (i + 1 != argc) {
            fputs(slora_catalog_usage, stderr);
            slora_catalog_writer_close(w);
            return 2;
        }

        rc = slora_catalog_register_dir(w, argv[i], base, &n, &err);
        if (rc == SLORA_OK) {
            printf("%d adapters registered from %s\n", n, argv[i]);
        }

    } else if (strcmp(cmd, "list") == 0) {
        rc = slora_catalog_list(w, slora_catalog_print, NULL, &err) < 0
             ? SLORA_ERROR : SLORA_OK;

    } else if (strcmp(cmd, "remove") == 0) {
        if (i + 1 != argc) {
            fputs(slora_catalog_usage, stderr);
            slora_catalog_writer_close(w);
            return 2;
        }
        rc = slora_catalog_remove(w, argv[i], &err);

    } else {
        /* it closes w */
        return slora_catalog_tenant_cmd(w, argc - i, argv + i);
    }

    slora_catalog_writer_close(w);

    if (rc != SLORA_OK) {
        fprintf(stderr, "slora catalog: %s\n", err.msg);
        return 1;
    }

    return 0;
}


static int
slora_catalog_tenant_cmd(slora_catalog_writer_t *w, int argc, char **argv)
{
    int                           i, rc;
    char                         *list, *p, **allowed;
    double                        rate;
    slora_err_t                   err;
    slora_catalog_tenant_spec_t   t;

    if (argc < 1) {
        fputs(slora_catalog_usage, stderr);
        slora_catalog_writer_close(w);
        return 2;
    }

    memset(&t, 0, sizeof(t));
    t.name = argv[0];
    t.n_allowed = -1;
    t.priority = INT32_MIN;
    t.ttft_slo_ms = INT32_MIN;
    t.max_tokens = INT32_MIN;
    t.rate = -1;
    list = NULL;
    allowed = NULL;
    rc = 2;

    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--default") == 0) {
            t.default_adapter = argv[i + 1];

        } else if (strcmp(argv[i], "--allow") == 0) {
            free(list);
            list = strdup(argv[i + 1]);

        } else if (strcmp(argv[i], "--priority") == 0) {
            if (slora_catalog_int(argv[i], argv[i + 1], &t.priority) != 0) {
                goto done;
            }

        } else if (strcmp(argv[i], "--ttft-slo") == 0) {
            if (slora_catalog_int(argv[i], argv[i + 1], &t.ttft_slo_ms) != 0)
            {
                goto done;
            }

        } else if (strcmp(argv[i], "--max-tokens") == 0) {
            if (slora_catalog_int(argv[i], argv[i + 1], &t.max_tokens) != 0) {
                goto done;
            }

        } else if (strcmp(argv[i], "--rate") == 0) {
            errno = 0;
            rate = strtod(argv[i + 1], &p);
            if (errno != 0 || *p != '\0' || p == argv[i + 1]
                || !(rate >= 0) || !isfinite(rate))
            {
                fprintf(stderr, "slora catalog: --rate wants a number >= 0"
                        " (requests a second; 0: none)\n");
                goto done;
            }
            t.rate = rate;

        } else {
            fprintf(stderr, "slora catalog: unknown option %s\n", argv[i]);
            goto done;
        }
    }

    if (i != argc) {
        fprintf(stderr, "slora catalog: %s needs a value\n", argv[i]);
        goto done;
    }

    if (list != NULL) {
        allowed = calloc(strlen(list) / 2 + 2, sizeof(char *));
        if (allowed == NULL) {
            fprintf(stderr, "slora catalog: no memory\n");
            rc = 1;
            goto done;
        }

        t.n_allowed = 0;
        for (p = strtok(list, ","); p != NULL; p = strtok(NULL, ",")) {
            allowed[t.n_allowed++] = p;
        }
        t.allowed = (const char *const *) allowed;
    }

    if (slora_catalog_set_tenant(w, &t, &err) != SLORA_OK) {
        fprintf(stderr, "slora catalog: %s\n", err.msg);
        rc = 1;
        goto done;
    }

    printf("tenant %s updated\n", t.name);
    rc = 0;

done:

    free(list);
    free(allowed);
    slora_catalog_writer_close(w);

    return rc;
}


static void
slora_catalog_print(void *data, const slora_catalog_entry_info_t *info)
{
    printf("%s\trank=%s alpha=%s targets=%s base=%s version=%s sha256=%.12s"
           "\t%s\n", info->name, info->rank ? info->rank : "-",
           info->alpha ? info->alpha : "-",
           info->targets ? info->targets : "-",
           info->base_model && info->base_model[0] ? info->base_model : "-",
           info->version ? info->version : "-",
           info->sha256 ? info->sha256 : "-",
           info->path ? info->path : "-");
}


static int
slora_catalog_int(const char *opt, const char *s, int32_t *out)
{
    long   v;
    char  *end;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v < 0 || v > INT32_MAX) {
        fprintf(stderr, "slora catalog: %s wants an integer >= 0\n", opt);
        return -1;
    }

    *out = (int32_t) v;

    return 0;
}
