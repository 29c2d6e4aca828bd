/* main.c — `rwkv`: the command-line face of the engine.
 *
 * Only dispatch lives here; each subcommand is one file (eval.c,
 * tokenize.c, info.c, generate.c, mkmodel.c, embed.c, quantize.c) exposing `int cmd_X(int argc,
 * char **argv)` where argv[0] is the subcommand's name, and returning the
 * process exit status (cli.h: 0, 1 failure, 2 bad arguments).
 */
#include <stdio.h>
#include <string.h>

#include "clients/rwkv/cli.h"
#include "clients/rwkv/commands.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"eval", cmd_eval, "run a model over a text file: logits, hidden states, surprisal, state"},
    {"tokenize", cmd_tokenize, "print the token ids of a text file"},
    {"info", cmd_info, "describe a model checkpoint"},
    {"generate", cmd_generate, "sample text from a model, streamed to stdout"},
    {"embed", cmd_embed, "EmbeddingRWKV document embeddings, one float32 row per input"},
    {"mkmodel", cmd_mkmodel, "write a random-weight RWKV-7 model of any shape"},
    {"quantize", cmd_quantize, "write a model as an int8 file (--precision int8 only)"},
};

static void usage(FILE *to)
{
    fprintf(to, "usage: rwkv COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(to, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(to, "\n'rwkv COMMAND --help' describes each command's options.\n"
                "Every error prints one line on stderr and exits non-zero "
                "(2 for bad arguments, 1 otherwise).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "rwkv: a command is required (see 'rwkv --help')\n");
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        if (argc > 2 && strcmp(name, "help") == 0) {
            for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
                if (strcmp(argv[2], commands[i].name) == 0) {
                    char *sub[] = {argv[2], "--help", NULL};
                    return commands[i].run(2, sub);
                }
            fprintf(stderr, "rwkv: unknown command '%s' (see 'rwkv --help')\n", argv[2]);
            return CLI_USAGE;
        }
        usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "rwkv: unknown command '%s' (see 'rwkv --help')\n", name);
    return CLI_USAGE;
}
