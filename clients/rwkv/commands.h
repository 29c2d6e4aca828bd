/* commands.h — the `rwkv` subcommands, one file each.  argv[0] is the
 * subcommand's name; the return value is the process exit status. */
#ifndef RWKV_CLI_COMMANDS_H
#define RWKV_CLI_COMMANDS_H

int cmd_eval(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_quantize(int argc, char **argv);

#endif
