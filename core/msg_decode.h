/* msg_decode.h — untrusted msgpack bytes -> plain C structs: one ingest
 * message, or one control request (protocol v1, daemon/PROTOCOL.md).
 *
 * How a message is decoded, in order:
 *   1. size check against the limit (before anything is read);
 *   2. rwkvd_mp_scan: a bounded, iterative structural walk proving the bytes
 *      are one well-formed object with every claimed length present and every
 *      count, the depth and the object total within limits (mp_scan.h);
 *   3. msgpack-c (msgpack_unpack_next) builds the object tree — it can no
 *      longer over-allocate, see mp_scan.h;
 *   4. a schema walk over the tree checks every field: keys are short str and
 *      unique, unknown keys are refused (typos must not pass silently; new
 *      fields come with a new `v`), types, ranges, UTF-8, token ids.
 * Every refusal yields one reason code (reason.h) and one human line naming
 * the byte offset, e.g. "ingest message: offset 9: field \"seq\": negative".
 *
 * Why msgpack-c behind a pre-scan rather than our own cursor decoder: the
 * library is the well-kept reference implementation (and fuzzed upstream);
 * its one hazard for hostile input — allocating for counts it has not seen —
 * is exactly what the pre-scan removes.  The price is msgpack-c's object
 * tree: 24 bytes per array element, so a token list sent as a msgpack array
 * costs up to 24 * max_tokens bytes while it is decoded (24 MiB at the
 * default limit).  Bulk producers should send tokens as a bin of uint32 LE,
 * which costs 4 bytes per token.
 *
 * Where the offsets come from: values are read from the tree, offsets from
 * walking the raw bytes in step with it (rwkvd_mp_skip/child), so both views
 * of the message must agree — the pre-scan guarantees they do.
 *
 * Decoding is all-or-nothing: a refused message leaves no allocation behind
 * and the document's state must not change (PROTOCOL.md §5).  All functions
 * are thread safe (no globals); a struct is used by one thread at a time.
 */
#ifndef RWKVD_MSG_DECODE_H
#define RWKVD_MSG_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/reason.h"
#include "core/segments.h"

#define RWKVD_PROTOCOL_VERSION 1
/* v 2 (PROTOCOL.md §3.2, §4.3, §4.6): opts.task and opts.eos_every for
 * EmbeddingRWKV models (a daemon serving one writes v 2 on its block and
 * final outputs), and the segment options with the "segments" output
 * (written as v 2).  Every v 1 message means what it meant: the v 2 keys
 * are unknown fields there. */
#define RWKVD_PROTOCOL_VERSION_MAX 2
#define RWKVD_PROTOCOL_VERSION_SEGMENTS 2
#define RWKVD_EOS_EVERY_MAX (UINT32_C(1) << 30)
#define RWKVD_DOC_MAX 256                           /* bytes in a document id */
#define RWKVD_SEQ_MAX ((UINT64_C(1) << 53) - 1)     /* exact in a double */
#define RWKVD_TOPK_MAX 64
#define RWKVD_TOPK_DEFAULT 5
#define RWKVD_KEY_MAX 32                            /* bytes in a map key */
#define RWKVD_MSG_DEPTH 3                           /* map > opts map > outputs array */
#define RWKVD_MSG_MAP_MAX 16                        /* entries in any ingest map */
#define RWKVD_CTL_MAX_BYTES 65536                   /* a control request */
#define RWKVD_CTL_ID_MAX 64                         /* bytes of a str request id */
#define RWKVD_CTL_CMD_MAX 32                        /* bytes of a cmd echoed when unknown */

/* ---- per-document options (opts on seq 0) ---- */
enum {
    RWKVD_OUT_EMBEDDING = 1u << 0,
    RWKVD_OUT_LOGITS_LAST = 1u << 1,
    RWKVD_OUT_TOPK = 1u << 2,
    RWKVD_OUT_SURPRISAL = 1u << 3,
    RWKVD_OUT_ALL = 0xFu,
    RWKVD_OUT_DEFAULT = RWKVD_OUT_EMBEDDING | RWKVD_OUT_SURPRISAL,
};

typedef enum rwkvd_pooling {
    RWKVD_POOL_LAST = 0, /* ln_out at the last token */
    RWKVD_POOL_MEAN = 1, /* running mean of ln_out over all tokens so far */
    RWKVD_POOL_EOS = 2,  /* EmbeddingRWKV: mean of ln_out at the EOS tokens, then the
                            task head (set by the daemon, never read from the wire) */
} rwkvd_pooling;

typedef struct rwkvd_doc_opts {
    uint32_t outputs;      /* RWKVD_OUT_* bits */
    rwkvd_pooling pooling;
    bool normalize;        /* L2-normalize embeddings */
    uint32_t topk;         /* 1..RWKVD_TOPK_MAX */
    /* v2, EmbeddingRWKV (core/embedding.h): the task head, a
     * rwkv_embed_task (0 retrieval, 1 similarity, 2 classification) */
    bool has_task;         /* opts.task was given */
    uint8_t task;
    uint32_t eos_every;    /* v2: EOS after every k tokens (0: none), 1..RWKVD_EOS_EVERY_MAX */
    bool outputs_given;    /* opts.outputs was given (else the model's default) */
    bool segment;          /* segments output (opts.segment given) */
    rwkv_seg_config seg;   /* its delimiter and anomaly settings */
} rwkvd_doc_opts;

/* Defaults: outputs {embedding, surprisal}, pooling last, normalize true, topk 5,
 * no segments (seg: lines, quantile 0.99, warm-up 100, used once segment is set). */
void rwkvd_doc_opts_default(rwkvd_doc_opts *o);
/* 0 when o is within every range above, else -1 with err saying which. */
int rwkvd_doc_opts_check(const rwkvd_doc_opts *o, rwkv_error *err);
const char *rwkvd_pooling_name(rwkvd_pooling p);   /* "last", "mean", "?" */
const char *rwkvd_output_name(uint32_t bit);       /* "embedding", ...; "?" */

/* ---- ingest ---- */
typedef struct rwkvd_msg_limits {
    size_t max_msg_bytes; /* whole message; refused before anything is read */
    size_t max_tokens;    /* ids in one message, either encoding */
    uint32_t vocab_size;  /* every id must be below it; > 0 */
} rwkvd_msg_limits;

typedef enum rwkvd_payload_kind {
    RWKVD_PAYLOAD_NONE = 0, /* only with eof = true */
    RWKVD_PAYLOAD_TEXT,     /* valid UTF-8 */
    RWKVD_PAYLOAD_BYTES,    /* any bytes */
    RWKVD_PAYLOAD_TOKENS,   /* ids < vocab_size */
} rwkvd_payload_kind;

typedef struct rwkvd_ingest {
    uint8_t doc[RWKVD_DOC_MAX];
    size_t doc_len;
    bool have_doc;          /* doc decoded (also set on failure when it was valid) */
    uint64_t seq;
    uint32_t v;             /* protocol version of the message, 1..RWKVD_PROTOCOL_VERSION_MAX */
    bool have_seq;          /* seq decoded (also set on failure when it was valid) */
    bool eof;
    bool has_opts;          /* opts given; opts holds defaults otherwise */
    rwkvd_doc_opts opts;
    rwkvd_payload_kind kind;
    const uint8_t *data;    /* TEXT/BYTES: BORROWED, points into the message
                               buffer, valid as long as that buffer is */
    size_t data_len;
    uint32_t *tokens;       /* TOKENS: OWNED (malloc), host byte order */
    size_t n_tokens;
} rwkvd_ingest;

/* Decodes one ingest message.  Returns 0 with *out filled, or -1 with
 * *reason set (never RWKVD_OK), err holding one line, out->tokens NULL, and
 * out->have_doc / have_seq telling whether out->doc / seq may be echoed in
 * the error output.  *out needs no initialisation.  Out of memory gives
 * RWKVD_R_OVERLOADED.  Cost: O(len). */
int rwkvd_ingest_decode(const void *buf, size_t len, const rwkvd_msg_limits *lim,
                        rwkvd_ingest *out, rwkvd_reason *reason, rwkv_error *err);

/* Best effort, for error outputs: sets out->doc/doc_len/have_doc and
 * out->seq/have_seq from the top-level map of buf when they are readable
 * there, without msgpack-c and without trusting any count (the walk stops at
 * the first entry it cannot step over).  Leaves fields already set alone and
 * never fails.  rwkvd_ingest_decode calls it on every message it reads; the
 * server calls it on the first frame of a multi-frame message.
 * O(len), no allocation, thread safe. */
void rwkvd_ingest_peek(const void *buf, size_t len, rwkvd_ingest *out);

/* Frees the owned token array; *m is then empty.  Accepts a zeroed or
 * failed struct and NULL. */
void rwkvd_ingest_clear(rwkvd_ingest *m);

/* ---- control requests ---- */
typedef enum rwkvd_cmd {
    RWKVD_CMD_STATUS = 0,
    RWKVD_CMD_RESUME,
    RWKVD_CMD_CHECKPOINT,
    RWKVD_CMD_DROP,
    RWKVD_CMD_HEALTH,
    RWKVD_CMD_COUNT
} rwkvd_cmd;

const char *rwkvd_cmd_name(rwkvd_cmd c); /* "status", ...; "?" */

typedef enum rwkvd_id_kind { RWKVD_ID_NONE = 0, RWKVD_ID_UINT, RWKVD_ID_STR } rwkvd_id_kind;

/* The client's request id, echoed verbatim in the reply. */
typedef struct rwkvd_ctl_id {
    rwkvd_id_kind kind;
    uint64_t u;
    uint8_t s[RWKVD_CTL_ID_MAX];
    size_t len;
} rwkvd_ctl_id;

typedef struct rwkvd_ctl_request {
    rwkvd_cmd cmd;
    bool have_cmd;           /* cmd decoded (also on failure, for the reply) */
    /* the cmd as sent, when readable (a str of 1..RWKVD_CTL_CMD_MAX bytes of
     * valid UTF-8), known or not: an unknown command's reply echoes it */
    uint8_t cmd_text[RWKVD_CTL_CMD_MAX];
    size_t cmd_text_len;
    rwkvd_ctl_id id;         /* decoded as early as possible, also on failure */
    bool has_doc;
    uint8_t doc[RWKVD_DOC_MAX];
    size_t doc_len;
} rwkvd_ctl_request;

/* Decodes one control request (at most RWKVD_CTL_MAX_BYTES).  `doc` is
 * required for resume and drop, optional for checkpoint, refused for status
 * and health.  Returns 0, or -1 with *reason and err set; out->id and
 * out->have_cmd remain usable for the error reply.  Allocates nothing that
 * outlives the call. */
int rwkvd_ctl_decode(const void *buf, size_t len, rwkvd_ctl_request *out,
                     rwkvd_reason *reason, rwkv_error *err);

#endif
