/* server.h — the daemon as one struct, and the pieces of its main loop.
 *
 * rwkvd is one event loop (server.c) over four descriptors: the ingest PULL
 * socket, the control ROUTER, the emit PUSH (only while outputs wait) and
 * the read end of a signal self-pipe (server.c says why not a signalfd).
 * The engine runs inside the loop, one batch at a time, with its own thread
 * pool; everything else is single-threaded, so sessions need no locks.  The
 * data path, file by file:
 *   ingest.c        message -> document (sequencing, held messages, tokenizer)
 *   docs.c          the documents in memory (doc_table.c, ready_fifo.c)
 *   sched.c         documents with a ready block -> one engine batch
 *   output_stage.c  engine results -> block/final messages (pooling across
 *                   blocks, normalisation, surprisal carry; top-k comes
 *                   from the engine)
 *   outputs.c       encoding and queuing of every message
 *   outbox.c        messages -> emit socket (+ emit_journal.c)
 *   persist.c       documents <-> checkpoint files, eviction
 *   control.c       status / resume / checkpoint / drop / health
 */
#ifndef RWKVD_SERVER_H
#define RWKVD_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/forward.h"
#include "core/model.h"
#include "core/tokenizer.h"
#include "daemon/checkpoint.h"
#include "daemon/cluster/transport.h"
#include "daemon/ckpt_store.h"
#include "daemon/config.h"
#include "daemon/doc_table.h"
#include "daemon/emit_journal.h"
#include "core/msg_encode.h"
#include "daemon/outbox.h"
#include "daemon/ready_fifo.h"
#include "daemon/session.h"
#include "daemon/wire/curve.h"

/* Most documents in one engine batch, and most tokens. */
#define RWKVD_BATCH_DOCS 16
#define RWKVD_BATCH_TOKENS 4096

typedef struct rwkvd_server {
    rwkvd_config cfg;
    int argc;
    char **argv, **envp;          /* kept for SIGHUP reloads */

    /* model */
    rwkv_model *model;
    const rwkv_model_info *mi;
    rwkv_tokenizer *tok;
    rwkv_engine *engine;
    rwkvd_model_id model_id;
    rwkvd_out_head head_template; /* model sha256, dim (doc and options per output) */

    /* storage */
    rwkvd_ckpt_store *store;
    int state_dirfd;
    rwkvd_journal *journal;
    rwkvd_outbox *outbox;
    uint64_t max_ckpt_raw;

    /* sockets */
    void *zctx, *ingest, *emit, *control;
    rwkvd_curve *curve;           /* CURVE + ZAP allow-lists; NULL = plaintext */
    char replay_model_hex[65];    /* start-up journal replay: this model's sha256 */
    size_t replay_skipped;        /* records not replayed (journal_filter.h) */
    int sigfd;                    /* read end of the signal self-pipe */
    /* cluster mode (--nats): reads and publishes instead of the ingest and
     * emit sockets, which are then not bound (daemon/cluster/transport.h) */
    rwkvd_transport *transport;

    /* documents in memory */
    rwkvd_doc_table docs;         /* by id, and least recently used */
    rwkvd_ready_fifo ready;       /* sessions with work, oldest first */
    size_t held_bytes;            /* all held messages */
    /* documents found on disk at start-up with work left (eof received or
     * a full block pending): loaded and run as room allows, since no
     * message may ever come to wake them */
    struct rwkvd_doc_ref *wake;
    size_t n_wake, wake_done;
    uint64_t pending_tokens;      /* all sessions' pending tokens */

    /* figures for status and /metrics */
    rwkvd_status_info stats;
    double started_at;
    double tps_time[11];
    uint64_t tps_tokens[11];
    int tps_n;
    bool stopping, degraded;
    uint64_t watchdog_usec;       /* $WATCHDOG_USEC, 0 = no systemd watchdog */
    double last_watchdog, last_status; /* when they were last sent */

    /* the /metrics endpoint reads a copy under this lock */
    pthread_mutex_t snap_mu;
    rwkvd_status_info snap;
    void *http;                   /* struct MHD_Daemon */
    struct rwkvd_http_embed *http_embed; /* POST /v1/embeddings (http_embeddings.h) */
} rwkvd_server;

typedef struct rwkvd_doc_ref {
    uint8_t doc[RWKVD_DOC_MAX];
    size_t len;
} rwkvd_doc_ref;

/* Monotonic seconds. */
double rwkvd_now(void);

/* ---- server.c ---- */
int rwkvd_server_init(rwkvd_server *srv, rwkv_error *err);
int rwkvd_server_run(rwkvd_server *srv);   /* until SIGTERM/SIGINT; 0 on a clean stop */
void rwkvd_server_free(rwkvd_server *srv);

/* ---- docs.c: the documents in memory (doc_table.h, ready_fifo.h) ---- */
rwkvd_session *rwkvd_docs_find(rwkvd_server *srv, const uint8_t *doc, size_t len);
int rwkvd_docs_insert(rwkvd_server *srv, rwkvd_session *s, rwkv_error *err);
void rwkvd_docs_remove(rwkvd_server *srv, rwkvd_session *s); /* does not free */
void rwkvd_docs_touch(rwkvd_server *srv, rwkvd_session *s);
/* Queues a session for the scheduler if it has work and is not queued. */
void rwkvd_ready_push(rwkvd_server *srv, rwkvd_session *s);
rwkvd_session *rwkvd_ready_pop(rwkvd_server *srv); /* NULL when empty */

/* ---- persist.c ---- */
/* What a checkpoint must match to be continued here: the running model,
 * and its precision unless allow_precision_change (PROTOCOL.md §8.1). */
rwkvd_model_id rwkvd_persist_expect(const rwkvd_server *srv);
/* The session of a document: in memory, else loaded from its checkpoint,
 * else (create) a new one.  Makes room by evicting the least recently used
 * document.  Returns 0 with *out (NULL when absent and !create), or -1 with
 * *reason (checkpoint_bad, other_model, io_error, overloaded) and err. */
int rwkvd_persist_open(rwkvd_server *srv, const uint8_t *doc, size_t len, bool create,
                       rwkvd_session **out, rwkvd_reason *reason, rwkv_error *err);
/* Writes the session's checkpoint (after making the emit journal durable). */
int rwkvd_persist_save(rwkvd_server *srv, rwkvd_session *s, rwkv_error *err);
/* Saves if needed and frees it from memory. -1 (kept in memory) when the
 * save fails. */
int rwkvd_persist_evict(rwkvd_server *srv, rwkvd_session *s, rwkv_error *err);
/* Checkpoints due by block count or age; all dirty ones when `all`.
 * Returns the number written; failures are logged and counted. */
int rwkvd_checkpoint_due(rwkvd_server *srv, bool all);
/* Forgets a document everywhere; *existed tells whether it was known. */
int rwkvd_doc_drop(rwkvd_server *srv, const uint8_t *doc, size_t len, bool *existed,
                   rwkv_error *err);

/* ---- ingest.c ---- */
void rwkvd_handle_ingest(rwkvd_server *srv, const void *buf, size_t len);

/* ---- sched.c ---- */
/* Runs one engine batch if any document is ready; returns whether it did. */
bool rwkvd_run_batch(rwkvd_server *srv);

/* ---- outputs.c ---- */
/* Queues an error output (and logs it, and counts the reason). */
void rwkvd_emit_error(rwkvd_server *srv, const uint8_t *doc, size_t doc_len, bool have_seq,
                      uint64_t seq, rwkvd_reason reason, const char *message,
                      bool have_expected, uint64_t expected);
void rwkvd_emit_ack(rwkvd_server *srv, const uint8_t *doc, size_t doc_len, uint64_t seq,
                    uint64_t next_seq);

/* ---- control.c ---- */
void rwkvd_handle_control(rwkvd_server *srv);
void rwkvd_stats_refresh(rwkvd_server *srv); /* fills srv->stats */

#endif
