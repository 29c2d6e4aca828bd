/* sink.h — rwkvd-sink's configuration and exit codes.
 *
 * rwkvd-sink is the consumer end of the emit socket (PROTOCOL.md §4): it
 * writes every output once, as JSON Lines or as raw float32 files, and
 * deduplicates the at-least-once stream by (doc, block) and (doc, "final")
 * (§8.3), across its own restarts too (--append rebuilds the set of keys
 * from what is already written).
 *
 * Exit status: 0 normally (after --until-final N finals, an idle timeout,
 * or SIGINT/SIGTERM); 1 on failure, or when any re-emitted copy differed
 * from the first under --verify-identical, or an output could not be
 * decoded; 2 for bad arguments.
 */
#ifndef RWKVD_SINK_SINK_H
#define RWKVD_SINK_SINK_H

#include <stdbool.h>
#include <stdint.h>

#define SINK_OK 0
#define SINK_FAIL 1
#define SINK_USAGE 2

#define SINK_DEFAULT_EMIT "tcp://127.0.0.1:5556"

typedef struct sink_config {
    const char *emit;          /* endpoint to connect the PULL socket to */
    const char *out;           /* JSONL file; NULL = stdout (unless raw) */
    const char *raw;           /* raw output directory; NULL = JSONL */
    bool append;               /* keep what --out / --raw already holds */
    bool verify;               /* --verify-identical */
    uint64_t until_final;      /* 0 = run until stopped */
    double idle_timeout;       /* seconds; 0 = none */
    bool quiet;                /* no acks or notes on stderr */
    uint64_t segments_top;     /* --segments-top N; 0 = off */
} sink_config;

/* Parses argv.  SINK_OK, SINK_USAGE after one line on stderr, or -1 after
 * printing --help on stdout. */
int sink_parse_args(int argc, char **argv, sink_config *cfg);

#endif
