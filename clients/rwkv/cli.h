/* cli.h — what the `rwkv` subcommands share: the one-line error
 * convention, option-value parsing, getopt error reporting, the model and
 * tokenizer loading every subcommand does the same way, and output files
 * that are removed again when a command fails half-way.
 *
 * Convention: every failure prints exactly ONE line on stderr, starting
 * with "rwkv: <command>: ", and the command returns a non-zero status:
 * CLI_USAGE (2) for bad arguments, CLI_FAIL (1) for everything else.
 */
#ifndef RWKV_CLI_H
#define RWKV_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/model.h"
#include "core/tokenizer.h"

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

/* Prints "rwkv: <cmd>: <message>\n" to stderr; returns CLI_FAIL. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for argument errors, with a pointer to --help; returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For getopt_long with opterr = 0 and an optstring starting with ':'.
 * Reports the option getopt returned '?' or ':' for; returns CLI_USAGE. */
int cli_bad_option(const char *cmd, int c, char *const argv[]);

/* Whole-string number parsing with a range; 0, or -1 after reporting
 * "<opt>: ..." as a usage error. */
int cli_parse_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi,
                     double *out);

/* --device DEV: "cpu", "cuda" or "cuda:N" (N decimal).  0, or -1 after
 * reporting a usage error; whether the device exists is the engine's
 * business (rwkv_engine_new_on). */
int cli_parse_device(const char *cmd, const char *s);

/* --precision P: fp32, bf16, int8 or auto into *out (and *given = 1).
 * 0, or -1 after reporting a usage error; whether this CPU runs it is the
 * engine's business (rwkv_engine_new_opts names the missing feature). */
int cli_parse_precision(const char *cmd, const char *s, int *out, int *given);

/* --vocab V or --bytes (exactly one is required).  0, or CLI_USAGE /
 * CLI_FAIL after reporting. */
int cli_load_tokenizer(const char *cmd, const char *vocab, int bytes, rwkv_tokenizer **out);
int cli_load_model(const char *cmd, const char *path, rwkv_model **out);

/* The tokenizer's ids must all be valid model inputs. */
int cli_check_vocab(const char *cmd, const rwkv_tokenizer *t, const rwkv_model *m);

/* Input: a path or "-" for stdin. NULL after reporting. */
FILE *cli_open_input(const char *cmd, const char *path);
void cli_close_input(FILE *f);

/* An output file that disappears again if the command fails. */
typedef struct cli_out {
    const char *path; /* NULL: not requested */
    FILE *f;
} cli_out;

int cli_out_open(const char *cmd, cli_out *o);                 /* no-op when path is NULL */
int cli_out_write(const char *cmd, cli_out *o, const void *p, size_t n);
int cli_out_close(const char *cmd, cli_out *o);                /* reports write-back errors */
void cli_out_discard(cli_out *o);                              /* close + unlink */

/* Wall-clock seconds (monotonic). */
double cli_now(void);

#endif
