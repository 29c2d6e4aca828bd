/* session.h — one document being processed: everything that must survive
 * between its messages, and its conversion to and from a checkpoint.
 *
 * Token flow: text/bytes go through the document's streaming encoder (held
 * bytes stay in it), settled ids join `pending`.  A block of block_size
 * tokens runs once the token after it is known — the block's last surprisal
 * predicts that token — or at eof.  The surprisal of the first pending
 * token, computed with the block before it, is carried (run.carry_surprisal).
 *
 * A session in memory is "active"; finished or evicted documents live only
 * in their checkpoint files and cost no memory.
 */
#ifndef RWKVD_SESSION_H
#define RWKVD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/forward.h"
#include "core/tokenizer.h"
#include "daemon/checkpoint.h"
#include "core/msg_decode.h"
#include "daemon/output_stage.h"

/* An out-of-order message kept until the ones before it arrive. */
typedef struct rwkvd_held {
    uint64_t seq;
    uint8_t *bytes; /* the raw message, decoded again when its turn comes */
    size_t len;
} rwkvd_held;

typedef struct rwkvd_session {
    uint8_t doc[RWKVD_DOC_MAX];
    size_t doc_len;
    uint64_t hash;                 /* of doc, for the table */
    uint64_t incarnation;          /* daemon/wire/incarnation.h; set when loaded */
    struct rwkvd_session *hnext;   /* hash chain */
    struct rwkvd_session *lprev, *lnext; /* LRU list, most recent at the head */

    bool started;                  /* seq 0 was applied (options fixed) */
    rwkvd_doc_opts opts;
    uint32_t block_size;
    rwkvd_input_kind input;
    uint64_t next_seq;
    uint64_t blocks_done, tokens_done; /* completed blocks and their tokens */
    bool eof;                      /* eof applied: flush what is pending */
    bool finished;                 /* final emitted */
    /* RWKVD_CKPT_PRECISION_* the state is computed in: the daemon's, or
     * mixed once continued from a checkpoint of another precision
     * (--allow-precision-change); outputs name it, checkpoints record it */
    uint8_t precision;

    rwkv_encoder *enc;
    rwkv_ids pending;              /* tokens not yet in a completed block */
    rwkv_state *state;
    rwkvd_running run;             /* the outputs' running figures */
    uint32_t since_eos;            /* pooling eos: tokens since the last EOS (embed_doc.h) */
    rwkv_segmenter *seg;           /* opts.segment: segments so far (segments.h), else NULL */
    uint8_t *seg_ckpt;             /* [RWKV_SEGMENTER_BYTES] its serialised form, for to_ckpt */

    rwkvd_held *held;
    size_t n_held;
    size_t held_bytes;

    /* checkpoint bookkeeping */
    bool dirty;                    /* changed since the last checkpoint */
    bool on_disk;                  /* a checkpoint file exists */
    uint64_t blocks_at_ckpt;       /* blocks_done when last saved */
    double dirty_since;            /* monotonic seconds of the first unsaved change */
    bool failed;                   /* ended by an engine or checkpoint error */
    bool queued;                   /* in the ready list of the scheduler */
} rwkvd_session;

struct rwkvd_server;

/* A new, empty document (nothing received).  NULL with err on OOM. */
rwkvd_session *rwkvd_session_new(struct rwkvd_server *srv, const uint8_t *doc, size_t len,
                                 rwkv_error *err);

/* A document continued from its checkpoint (already verified against the
 * running model).  NULL with err when the snapshot cannot be restored (a
 * state the engine refuses, tokenizer bytes the encoder refuses). */
rwkvd_session *rwkvd_session_from_ckpt(struct rwkvd_server *srv, const rwkvd_ckpt *ck,
                                       rwkv_error *err);

/* Fills *ck with the session's snapshot; the arrays point into the session
 * and into *state_buf (malloc'ed here, the caller frees) — valid until the
 * session changes.  -1 with err on OOM. */
int rwkvd_session_to_ckpt(struct rwkvd_server *srv, rwkvd_session *s, rwkvd_ckpt *ck,
                          float **state_buf, rwkv_error *err);

void rwkvd_session_free(rwkvd_session *s); /* accepts NULL; frees held messages */

/* Starts the document's segmenter for opts->seg (on seq 0 with opts.segment).
 * -1 with err on OOM or options out of range. */
int rwkvd_session_start_segments(rwkvd_session *s, const rwkvd_doc_opts *opts, rwkv_error *err);

/* Tokens received so far, the partial block included. */
uint64_t rwkvd_session_tokens(const rwkvd_session *s);

/* True when a block can run now (enough tokens, or eof with tokens left),
 * or the final message is due. */
bool rwkvd_session_ready(const rwkvd_session *s);

#endif
