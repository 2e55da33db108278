/*
 * slora_cli.h: the subcommands of the `slora` tool. Each takes the
 * arguments after the tool's name (argv[0] is the subcommand), prints
 * errors to stderr and returns the process exit status.
 */

#ifndef SLORA_CLI_H
#define SLORA_CLI_H


#include <stdint.h>

#include "slora_engine.h"


int slora_cli_generate(int argc, char **argv);
int slora_cli_tokenize(int argc, char **argv);
int slora_cli_bench(int argc, char **argv);
int slora_cli_mkmodel(int argc, char **argv);
int slora_cli_mkadapter(int argc, char **argv);
int slora_cli_catalog(int argc, char **argv);
int slora_cli_conform(int argc, char **argv);
int slora_cli_replay(int argc, char **argv);

/* One engine step for the subcommands that drive the engine: when it
 * has nothing to do but wait (adapters being read by the loader
 * threads), waits for its wake fd, 50 ms at most, instead of spinning.
 * Returns what slora_engine_step() did, SLORA_FATAL as SLORA_ERROR. */
int slora_cli_step(slora_engine_t *e, slora_event_cb cb, void *data);

/* Parses a number in [min, max] (strtod's syntax, the whole string):
 * SLORA_OK, or SLORA_ERROR on anything else. */
int slora_cli_number(const char *s, double min, double max, double *out);

/* Parses "a,b,c" into out[0..cap), each in [min, max]: 0, or -1 on
 * anything else (an empty list too). */
int slora_cli_int_list(const char *s, long min, long max, int32_t *out,
    int32_t cap, int32_t *n);


#endif /* SLORA_CLI_H */
