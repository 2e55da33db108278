/*
 * slora_cli.h: the subcommands of the `slora` tool. Each takes the
 * arguments after the tool's name (argv[0] is the subcommand), prints
 * errors to stderr and returns the process exit status.
 */

#ifndef SLORA_CLI_H
#define SLORA_CLI_H


int slora_cli_generate(int argc, char **argv);
int slora_cli_tokenize(int argc, char **argv);
int slora_cli_bench(int argc, char **argv);
int slora_cli_mkmodel(int argc, char **argv);
int slora_cli_mkadapter(int argc, char **argv);
int slora_cli_catalog(int argc, char **argv);


#endif /* SLORA_CLI_H */
