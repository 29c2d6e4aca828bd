/* send.h — rwkvd-send's configuration and the pieces main.c ties together.
 *
 * rwkvd-send streams one file (or stdin) to rwkvd as ONE document: message
 * seq k carries bytes [k*chunk, (k+1)*chunk) of the input, so a re-run after
 * a crash asks `resume` and continues exactly where the daemon stopped.  The
 * chunk size must therefore be the same on every run of one document.
 *
 * Exit status: 0 when every message was sent (and, unless --no-wait, the
 * daemon has processed the whole document); 1 on failure; 2 for bad
 * arguments.  Every failure is ONE line on stderr, "rwkvd-send: ...".
 */
#ifndef RWKVD_SEND_SEND_H
#define RWKVD_SEND_SEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/msg_decode.h"

#define SEND_OK 0
#define SEND_FAIL 1
#define SEND_USAGE 2

#define SEND_DEFAULT_CHUNK (64u * 1024u)
#define SEND_MAX_CHUNK (1024u * 1024u * 1024u)
#define SEND_DEFAULT_TIMEOUT 60.0
#define SEND_DEFAULT_INGEST "tcp://127.0.0.1:5555"
#define SEND_DEFAULT_CONTROL "tcp://127.0.0.1:5557"

typedef struct send_config {
    const char *path;              /* file, or "-" for stdin */
    uint8_t doc[RWKVD_DOC_MAX];    /* document id bytes */
    size_t doc_len;
    char doc_label[RWKVD_DOC_MAX + 1]; /* printable form of doc for messages */
    size_t chunk;                  /* bytes per message */
    /* opts on seq 0: only what was given on the command line is sent */
    bool set_outputs;
    const char *outputs[4];        /* names in the order given, no repeats */
    size_t n_outputs;
    const char *pooling;           /* NULL: not given */
    bool no_normalize;
    unsigned topk;                 /* 0: not given */
    const char *ingest;
    const char *control;
    const char *curve_server_key;  /* the daemon's public key file; NULL = plaintext */
    const char *curve_key;         /* this client's key pair file */
    double timeout;                /* seconds without progress; 0 = wait forever */
    bool quiet;
    bool no_wait;                  /* exit once handed over, without confirmation */
    const char *nats;              /* NULL: ZeroMQ; else NATS URL(s) (nats_out.c) */
    const char *nats_creds, *nats_ca; /* NULL: none */
} send_config;

/* Parses argv into *cfg.  Returns SEND_OK, SEND_USAGE after printing one
 * line on stderr, or -1 after printing --help on stdout (exit 0). */
int send_parse_args(int argc, char **argv, send_config *cfg);

/* Runs the whole transfer; returns the exit status (after printing). */
int send_run(const send_config *cfg);

/* The same to a NATS JetStream cluster (nats_out.c). */
int send_run_nats(const send_config *cfg);

struct msgpack_sbuffer;
/* One ingest message: v, doc, seq, bytes, [eof], [opts] (PROTOCOL.md §3). */
int send_encode(const send_config *cfg, uint64_t seq, const uint8_t *data, size_t len, bool eof,
                struct msgpack_sbuffer *sb);

#endif
