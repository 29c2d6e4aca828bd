/* msg_encode.h — plain C structs -> msgpack bytes: the emit messages (block,
 * final, error, ack) and the control replies (PROTOCOL.md §4 and §6).
 *
 * Encoding uses msgpack-c's packer into a caller-owned msgpack_sbuffer; each
 * function APPENDS exactly one message, so the caller does
 *     msgpack_sbuffer_init(&sb);  rwkvd_encode_block(&sb, ...);
 *     ... send sb.data/sb.size (or take it with msgpack_sbuffer_release) ...
 *     msgpack_sbuffer_destroy(&sb);
 * Key order and integer widths are fixed (msgpack-c always picks the
 * shortest integer form), so the same inputs give byte-identical messages —
 * the property the at-least-once contract (PROTOCOL.md §5) relies on when a
 * block is emitted again after a restart.  Vectors go out as bin of
 * little-endian float32/uint32, whatever the host byte order.
 *
 * Every function returns 0, or -1 with err set when memory runs out (the
 * buffer then holds a partial message: clear it) or when the struct breaks
 * its own contract (an output requested but its pointer NULL, k or dim 0).
 * Thread safe on distinct buffers.
 */
#ifndef RWKVD_MSG_ENCODE_H
#define RWKVD_MSG_ENCODE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/msg_decode.h"
#include "core/reason.h"

/* ---- emit messages ---- */

/* What every block/final output names (PROTOCOL.md §4.1). */
typedef struct rwkvd_out_head {
    const uint8_t *doc;       /* echoed as str when valid UTF-8, else bin */
    size_t doc_len;
    uint64_t incarnation;     /* `inc`, written only when above 0 (PROTOCOL.md §8.4) */
    uint8_t model_sha256[32]; /* written as 64 lower-case hex digits */
    uint32_t dim;             /* embedding dimension (n_embd) */
    rwkvd_pooling pooling;
    bool normalize;
    /* the precision the document's state was computed in: "fp32", "bf16",
     * "int8", or "mixed" once continued in another (PROTOCOL.md §8.1);
     * required (NULL breaks the contract) */
    const char *precision;
    uint32_t v;               /* written as `v` on block/final; 0 means 1 (2: EmbeddingRWKV) */
} rwkvd_out_head;

typedef struct rwkvd_block_out {
    uint64_t block;               /* 0-based block number within the document */
    uint64_t tok_start, tok_end;  /* token range [tok_start, tok_end), non-empty */
    uint32_t outputs;             /* RWKVD_OUT_* bits: which of the below to write */
    const float *embedding;       /* [dim] */
    const float *logits_last;     /* [vocab] */
    uint32_t vocab;
    const uint32_t *topk_ids;     /* [(tok_end - tok_start) * k], row per token */
    const float *topk_logprobs;   /* same shape, natural log */
    uint32_t k;
    const float *surprisal;       /* [tok_end - tok_start], nats */
} rwkvd_block_out;

typedef struct rwkvd_final_out {
    uint64_t tokens;              /* tokens in the document */
    uint64_t blocks;              /* block messages of the document */
    uint32_t outputs;             /* RWKVD_OUT_* bits the document asked for */
    const float *embedding;       /* [dim]; NULL = nil (an empty document, or embedding_error) */
    const char *embedding_error;  /* v2: why there is no embedding (no EOS); NULL: absent */
    bool has_mean_surprisal;      /* false = nil (fewer than 2 tokens) */
    double mean_surprisal;
} rwkvd_final_out;

typedef struct rwkvd_error_out {
    const uint8_t *doc;           /* NULL: nil (the message had no usable doc) */
    size_t doc_len;
    bool have_seq;
    uint64_t seq;
    rwkvd_reason reason;
    const char *message;          /* one line; sanitised to printable ASCII */
    bool have_expected_seq;       /* seq_gap: the seq the document waits for */
    uint64_t expected_seq;
} rwkvd_error_out;

int rwkvd_encode_block(msgpack_sbuffer *sb, const rwkvd_out_head *h, const rwkvd_block_out *b,
                       rwkv_error *err);
int rwkvd_encode_final(msgpack_sbuffer *sb, const rwkvd_out_head *h, const rwkvd_final_out *f,
                       rwkv_error *err);
int rwkvd_encode_error(msgpack_sbuffer *sb, const rwkvd_error_out *e, rwkv_error *err);
/* A duplicate (seq below the next expected one): acknowledged, ignored. */
int rwkvd_encode_ack(msgpack_sbuffer *sb, const uint8_t *doc, size_t doc_len, uint64_t seq,
                     uint64_t next_seq, rwkv_error *err);

/* ---- control replies ---- */

/* Everything `status` reports; metrics.h renders the same struct for
 * Prometheus, so the two can never disagree. */
typedef struct rwkvd_status_info {
    uint8_t model_sha256[32];
    const char *model_path;       /* may be NULL -> "" */
    const char *generation;       /* e.g. "RWKV-7 (x070)" */
    uint32_t n_layer, dim, vocab;
    uint64_t state_floats;
    const char *tokenizer;        /* "bytes", "world" */
    const char *device;           /* "cpu", "cuda:0" */
    const char *precision;        /* the engine's: "fp32", "bf16", "int8" (may be NULL -> "") */
    uint32_t block_size;
    double uptime_s;
    uint64_t docs_active, docs_on_disk, docs_max_active, docs_finished_total;
    uint64_t held_messages, ingest_queue, emit_queue;
    uint64_t messages_total, tokens_total, blocks_total;
    double tokens_per_s;          /* over the last 10 s */
    uint64_t checkpoints_total, checkpoint_failures_total;
    double checkpoint_seconds_sum;
    uint64_t rejected[RWKVD_REASON_COUNT]; /* index 0 (ok) unused */
    /* CURVE handshakes refused by the ZAP handler: producer, consumer,
     * operator (/metrics only, filled when it renders) */
    uint64_t auth_refused[3];
    /* cluster mode (PROTOCOL.md §12); reported only when on */
    struct rwkvd_cluster_status {
        bool on;
        char worker[65];
        uint32_t partitions, owned, workers;
        uint64_t leases_acquired, leases_lost, leases_released, lease_renewals;
        uint64_t unacked, published, acked, lag; /* lag: undelivered, owned partitions */
        uint32_t n_leases;                       /* entries of `leases` (at most 64) */
        struct rwkvd_lease_status {
            uint32_t partition;
            uint64_t revision, lag;
        } leases[64];
    } cluster;
} rwkvd_status_info;

typedef struct rwkvd_resume_info {
    const uint8_t *doc;
    size_t doc_len;
    bool known;                   /* in memory or on disk */
    const char *where;            /* "memory", "disk", "none" */
    uint64_t next_seq;            /* the seq the producer must send next */
    uint64_t tokens;              /* tokens received (partial block included) */
    uint64_t blocks;              /* blocks completed and emitted */
    bool finished;                /* eof was processed */
} rwkvd_resume_info;

typedef enum rwkvd_health { RWKVD_HEALTH_OK, RWKVD_HEALTH_DEGRADED, RWKVD_HEALTH_STOPPING } rwkvd_health;

int rwkvd_reply_error(msgpack_sbuffer *sb, const rwkvd_ctl_request *req, rwkvd_reason reason,
                      const char *message, rwkv_error *err);
int rwkvd_reply_health(msgpack_sbuffer *sb, const rwkvd_ctl_request *req, rwkvd_health health,
                       double uptime_s, rwkv_error *err);
int rwkvd_reply_status(msgpack_sbuffer *sb, const rwkvd_ctl_request *req,
                       const rwkvd_status_info *s, rwkv_error *err);
int rwkvd_reply_resume(msgpack_sbuffer *sb, const rwkvd_ctl_request *req,
                       const rwkvd_resume_info *r, rwkv_error *err);
int rwkvd_reply_checkpoint(msgpack_sbuffer *sb, const rwkvd_ctl_request *req, uint64_t written,
                           uint64_t failed, double seconds, rwkv_error *err);
int rwkvd_reply_drop(msgpack_sbuffer *sb, const rwkvd_ctl_request *req, bool dropped,
                     rwkv_error *err);

/* ---- shared packing helpers (also used by tests and tools) ---- */

/* A doc id: str when the bytes are valid UTF-8, else bin. */
int rwkvd_pack_doc(msgpack_packer *pk, const uint8_t *doc, size_t doc_len);
/* A NUL-terminated C string as str. */
int rwkvd_pack_cstr(msgpack_packer *pk, const char *s);
/* n floats as a bin of n*4 bytes, little-endian. */
int rwkvd_pack_f32(msgpack_packer *pk, const float *v, size_t n);
/* n uint32 as a bin of n*4 bytes, little-endian. */
int rwkvd_pack_u32(msgpack_packer *pk, const uint32_t *v, size_t n);

#endif
