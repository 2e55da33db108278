/*
 * slora_cli.c: the `slora` command-line tool's entry point. Each
 * subcommand lives in its own engine/slora_cli_<name>.c and is reached
 * through the table below; `slora help` and `slora <cmd> --help` say what
 * each one takes.
 */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_cli.h"


typedef struct {
    const char  *name;
    int        (*run)(int argc, char **argv);
    const char  *summary;
} slora_cli_cmd_t;


static void slora_cli_usage(FILE *f);


static const slora_cli_cmd_t  slora_cli_cmds[] = {
    { "generate", slora_cli_generate,
      "generate text from a prompt, with or without an adapter" },
    { "tokenize", slora_cli_tokenize, "print the token ids of a text" },
    { "bench", slora_cli_bench,
      "engine-only throughput: concurrent requests over adapters" },
    { "mkmodel", slora_cli_mkmodel,
      "write a tiny random Llama model (GGUF or safetensors)" },
    { "mkadapter", slora_cli_mkadapter,
      "write a random LoRA adapter in HF PEFT layout" },
    { "catalog", slora_cli_catalog,
      "register adapters and tenants in the Redis catalog" },
    { "conform", slora_cli_conform,
      "one device against another: the same requests, alone and batched" },
    { "replay", slora_cli_replay,
      "a request trace played against the engine alone, in real time" },
    { NULL, NULL, NULL }
};


int
main(int argc, char **argv)
{
    const slora_cli_cmd_t  *cmd;

    if (argc < 2 || strcmp(argv[1], "help") == 0
        || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
    {
        slora_cli_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }

    for (cmd = slora_cli_cmds; cmd->name != NULL; cmd++) {
        if (strcmp(argv[1], cmd->name) == 0) {
            return cmd->run(argc - 1, argv + 1);
        }
    }

    fprintf(stderr, "slora: unknown command \"%s\"\n", argv[1]);
    slora_cli_usage(stderr);

    return 2;
}


static void
slora_cli_usage(FILE *f)
{
    const slora_cli_cmd_t  *cmd;

    fprintf(f, "usage: slora <command> [options]   (slora <command> --help)"
               "\n\ncommands:\n");

    for (cmd = slora_cli_cmds; cmd->name != NULL; cmd++) {
        fprintf(f, "  %-10s %s\n", cmd->name, cmd->summary);
    }
}


int
slora_cli_step(slora_engine_t *e, slora_event_cb cb, void *data)
{
    int            rc;
    struct pollfd  pfd;

    rc = slora_engine_step(e, cb, data);

    if (rc == SLORA_FATAL) {
        return SLORA_ERROR;     /* a command's run stops at any failure */
    }

    if (rc == SLORA_AGAIN) {
        pfd.fd = slora_engine_wake_fd(e);
        pfd.events = POLLIN;
        pfd.revents = 0;
        (void) poll(&pfd, 1, 50);
    }

    return rc;
}


int
slora_cli_number(const char *s, double min, double max, double *out)
{
    char    *end;
    double   v;

    errno = 0;
    v = strtod(s, &end);

    if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max)) {
        return SLORA_ERROR;
    }

    *out = v;
    return SLORA_OK;
}


int
slora_cli_int_list(const char *s, long min, long max, int32_t *out,
    int32_t cap, int32_t *n)
{
    char  *end;
    long   v;

    *n = 0;

    while (*s != '\0') {
        errno = 0;
        v = strtol(s, &end, 10);

        if (errno != 0 || end == s || v < min || v > max || *n == cap
            || (*end != ',' && *end != '\0'))
        {
            return -1;
        }

        out[(*n)++] = (int32_t) v;
        s = *end == ',' ? end + 1 : end;
    }

    return *n > 0 ? 0 : -1;
}
