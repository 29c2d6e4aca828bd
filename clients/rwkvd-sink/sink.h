/* sink.h — rwkvd-sink's configuration and exit codes.
 *
 * rwkvd-sink is the consumer end of the emit socket (PROTOCOL.md §4): it
 * writes every output once, as JSON Lines or as raw float32 files, and
 * deduplicates the at-least-once stream by (doc, inc, block) and
 * (doc, inc, "final") (§8.3-8.4), across its own restarts too (--append rebuilds the set of keys
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
    const char *curve_server_key; /* the daemon's public key file; NULL = plaintext */
    const char *curve_key;     /* this client's key pair file */
    const char *out;           /* JSONL file; NULL = stdout (unless raw) */
    const char *raw;           /* raw output directory; NULL = JSONL */
    bool append;               /* keep what --out / --raw already holds */
    bool verify;               /* --verify-identical */
    uint64_t until_final;      /* 0 = run until stopped */
    double idle_timeout;       /* seconds; 0 = none */
    bool quiet;                /* no acks or notes on stderr */
    const char *nats;          /* NULL: ZeroMQ; else NATS URL(s) (nats_in.c) */
    const char *durable;       /* the durable consumer's name, with nats */
    const char *nats_creds, *nats_ca; /* NULL: none */
    uint64_t segments_top;     /* --segments-top N; 0 = off */
} sink_config;

/* The NATS source (nats_in.c): fetches from the durable consumer on
 * RWKVD_OUT, hands each message to on_msg (-1 stops), calls on_batch (flush;
 * -1 stops) and only then acks the batch.  Stops when done(ctx) is true,
 * on a signal (*stop), or after idle_timeout seconds without a message
 * (SINK_FAIL then when until_final was set).  Returns an exit status. */
int sink_nats_run(const sink_config *cfg, int (*on_msg)(void *ctx, const uint8_t *p, size_t n),
                  int (*on_batch)(void *ctx), bool (*done)(void *ctx), void *ctx,
                  volatile int *stop);

/* Parses argv.  SINK_OK, SINK_USAGE after one line on stderr, or -1 after
 * printing --help on stdout. */
int sink_parse_args(int argc, char **argv, sink_config *cfg);

#endif
