/* checkpoint.h — one document's snapshot: everything needed to continue it
 * exactly, as bytes (the file format); see ckpt_store.h for the files.
 *
 * File format v1 (all integers little-endian):
 *
 *   header, uncompressed, 204 + doc_len bytes, protected by its own CRC-32
 *   (flags bits 6-7: the precision, 0 fp32, 1 bf16, 2 int8, 3 mixed; see
 *   rwkvd_model_id):
 *     0   8  magic "RWKVDCKP"             100  1  pooling (0 last, 1 mean)
 *     8   4  format version (1)           101  1  normalize (0/1)
 *    12   4  header size (204 + doc_len)  102  1  input kind (0 none yet,
 *    16   4  flags: 1 finished,                   1 text/bytes, 2 tokens)
 *              2 has state, 4 has last    103  1  reserved, 0
 *              embedding, 8 has carried   104  4  topk
 *              surprisal, 16 eof received 108  4  pending tokenizer bytes
 *              (final still due), 32 segment
 *              state, 64-128 precision;
 *              others 0
 *    20   4  generation (rwkv_generation) 112  4  pending tokens
 *    24   4  n_layer                      116  4  doc_len (1..256)
 *    28   4  n_embd (C)                   120  8  compressed payload size
 *    32   4  vocab (V)                    128  4  CRC-32 of the compressed payload
 *    36   4  block size (B)               132  4  carried surprisal (f32; 0
 *                                                  unless flag 8)
 *    40   8  state floats (S)             136 32  model sha256
 *    48   8  next seq                     168 32  tokenizer sha256 (0s: bytes)
 *    56   8  blocks done                  200  n  doc id
 *    64   8  tokens done (in blocks)      200+n 4 CRC-32 of bytes [0, 200+n)
 *    72   8  mean count
 *    80   8  surprisal sum (float64)
 *    88   8  surprisal count
 *    96   4  outputs (RWKVD_OUT_* bits)
 *
 *   payload: ONE zstd frame (content size and XXH64 checksum flags set) of
 *     f64[C] mean sum (pooling mean only), f32[S] state (flag 2),
 *     f32[C] last ln_out (flag 4), u32[pending tokens], u8[pending bytes],
 *     u8[RWKV_SEGMENTER_BYTES] segmenter state (flag 32, core/segments.h)
 *   in that order, so every array is naturally aligned in the decompressed
 *   buffer and the reader hands out pointers into it (no second copy of a
 *   state of tens of MB).  Nothing follows the frame.
 *
 * Why split so: everything small (counters, options, model identity) sits in
 * the CRC-checked header, so `resume`, `status` and other-model refusal read
 * 300 bytes and never decompress; the header fixes every array length, so
 * the payload size is COMPUTED, capped and checked against the frame's
 * content size before a byte is allocated; the payload CRC is checked before
 * decompressing, and zstd's own checksum after.
 *
 * Versions: flag 32 (opts.segment) was added without a version bump: files
 * without segments are byte-identical to before, and a reader that predates
 * the flag refuses files that have it (unknown flag bits are corrupt), so no
 * reader ever drops segment state silently.
 *
 * Both directions apply the same consistency rules (checkpoint.c; encoder in
 * ckpt_encode.c, decoder in ckpt_decode.c), so the writer can never produce
 * a file the reader refuses.
 * All functions are thread safe; structs are used by one thread at a time.
 */
#ifndef RWKVD_CHECKPOINT_H
#define RWKVD_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/msg_decode.h"

#define RWKVD_CKPT_MAGIC "RWKVDCKP"
#define RWKVD_CKPT_VERSION 1
/* Format v3 = v1's layout (8 header bytes more, below) for an EmbeddingRWKV
 * document: byte 100 pooling 2
 * (eos: the mean sum and count hold the sum of ln_out at the EOS tokens and
 * their number) and byte 103 its task (0 retrieval, 1 similarity, 2
 * classification; v1 keeps it 0).  Other documents are still written as
 * v1 (or v2), so a daemon without EmbeddingRWKV reads everything it could
 * before and refuses a v3/v4 file by its version. */
#define RWKVD_CKPT_VERSION_EOS 3
/* ... whose header has 8 more bytes before the doc id: 200 u32 eos_every
 * (0: none), 204 u32 tokens since the last EOS; the doc id at 208. */
#define RWKVD_CKPT_HEADER_EOS_EXTRA 8
#define RWKVD_CKPT_HEADER_FIXED 204 /* header bytes besides the doc id */
/* Format v2 = v1 plus the fencing token of cluster mode (PROTOCOL.md §12.6):
 * 8 more header bytes, the token (u64, never 0), before the doc id.  A
 * checkpoint without a token (token 0: not in cluster mode) is written as
 * v1, byte for byte as before.
 * The two extensions combine: the version is 1 + (fenced ? 1 : 0) + (eos ? 2
 * : 0), so v3 is EmbeddingRWKV and v4 EmbeddingRWKV in cluster mode; after
 * byte 200 come the token (if fenced), then eos_every and the tokens since
 * the last EOS (if eos), then the doc id and the header CRC.  Every version
 * 1..4 is read. */
#define RWKVD_CKPT_VERSION_FENCED 2
#define RWKVD_CKPT_VERSION_MAX 4
#define RWKVD_CKPT_HEADER_FENCE_EXTRA 8
#define RWKVD_CKPT_HEADER_MAX                                                               \
    (RWKVD_CKPT_HEADER_FIXED + RWKVD_CKPT_HEADER_FENCE_EXTRA + RWKVD_CKPT_HEADER_EOS_EXTRA + \
     RWKVD_DOC_MAX)

/* The version a checkpoint is written as, and what a version holds. */
static inline uint32_t rwkvd_ckpt_version_of(bool fenced, bool eos)
{
    return RWKVD_CKPT_VERSION + (fenced ? 1u : 0u) + (eos ? 2u : 0u);
}
static inline bool rwkvd_ckpt_version_fenced(uint32_t v)
{
    return ((v - 1) & 1u) != 0;
}
static inline bool rwkvd_ckpt_version_eos(uint32_t v)
{
    return ((v - 1) & 2u) != 0;
}
/* Header bytes of a checkpoint of this version and doc id length. */
static inline size_t rwkvd_ckpt_header_bytes(uint32_t v, size_t doc_len)
{
    return RWKVD_CKPT_HEADER_FIXED + doc_len +
           (rwkvd_ckpt_version_fenced(v) ? RWKVD_CKPT_HEADER_FENCE_EXTRA : 0) +
           (rwkvd_ckpt_version_eos(v) ? RWKVD_CKPT_HEADER_EOS_EXTRA : 0);
}
#define RWKVD_CKPT_PENDING_BYTES_MAX 1024 /* tokenizer bytes held mid-token */
#define RWKVD_BLOCK_MAX 65536             /* tokens per block */
/* Tokens received but not yet in a completed block: a single message may
 * bring up to max_tokens_per_message ids (or max_message_size bytes) at
 * once, so this is bounded by those limits, not by the block size. */
#define RWKVD_CKPT_PENDING_TOKENS_MAX (UINT64_C(1) << 30)
#define RWKVD_CKPT_EMBD_MAX 65536         /* caps on shape fields read from files */
#define RWKVD_CKPT_VOCAB_MAX (1u << 24)
#define RWKVD_CKPT_LAYER_MAX 4096
#define RWKVD_CKPT_STATE_MAX (UINT64_C(1) << 32)
/* Precision codes of a checkpoint (rwkvd_model_id.precision): 0..2 are
 * rwkv_precision's fp32, bf16, int8; 3 says the document's state was
 * computed in one and continued in another (--allow-precision-change), which
 * only a document with a completed block can be.  ANY is never in a file: as
 * the expectation it accepts every precision (the caller decides). */
#define RWKVD_CKPT_PRECISION_MIXED 3
#define RWKVD_CKPT_PRECISION_MAX 3        /* mixed */
#define RWKVD_CKPT_PRECISION_ANY 255
#define RWKVD_CKPT_RAW_DEFAULT_MAX (UINT64_C(1) << 33) /* 8 GiB decompressed */

/* What a checkpoint must match to be continued by the running daemon. */
typedef struct rwkvd_model_id {
    uint8_t model_sha256[32];
    uint8_t tokenizer_sha256[32]; /* all zero for the built-in bytes tokenizer */
    uint32_t generation;          /* rwkv_generation value (70 = RWKV-7) */
    uint32_t n_layer, n_embd, vocab;
    uint64_t state_floats;
    /* The precision the state was computed in (0 fp32, 1 bf16, 2 int8, 3
     * mixed: RWKVD_CKPT_PRECISION_*): flag bits 6-7, which files written
     * before precisions existed have 0, so they read as fp32.  As the
     * expectation: the daemon's precision, which a checkpoint must have
     * (other_model otherwise), or RWKVD_CKPT_PRECISION_ANY to accept every
     * one (--allow-precision-change: the caller marks the document mixed). */
    uint8_t precision;
} rwkvd_model_id;

/* "fp32", "bf16", "int8", "mixed" ("?" for anything else): the name outputs
 * carry (PROTOCOL.md §4.1). */
const char *rwkvd_ckpt_precision_name(unsigned precision);

/* The precision a document loaded from a checkpoint recorded as `recorded`
 * continues in, on a daemon running `running` (0..2): the same when they
 * match; mixed once a state computed in one precision goes on in another;
 * `running` when nothing was computed yet (no completed block: the state is
 * still the initial one, the same in every precision). */
uint8_t rwkvd_ckpt_precision_continued(uint8_t recorded, uint8_t running, uint64_t tokens_done);

typedef enum rwkvd_input_kind {
    RWKVD_INPUT_NONE = 0,   /* nothing received yet */
    RWKVD_INPUT_BYTES = 1,  /* text or bytes (through the tokenizer) */
    RWKVD_INPUT_TOKENS = 2, /* token ids */
} rwkvd_input_kind;

/* One snapshot.  For encoding the caller points the arrays at its own data
 * (borrowed, owned == NULL).  The decoder fills them with pointers into one
 * allocation it owns (`owned`); free it with rwkvd_ckpt_release. */
typedef struct rwkvd_ckpt {
    rwkvd_model_id model;
    uint8_t doc[RWKVD_DOC_MAX];
    size_t doc_len;                /* 1..RWKVD_DOC_MAX */
    uint64_t next_seq;             /* the seq the document expects next */
    uint64_t blocks_done;          /* blocks completed (and emitted) */
    uint64_t tokens_done;          /* tokens in those blocks */
    uint32_t block_size;           /* the document's B (kept across restarts) */
    bool finished;                 /* eof processed, final emitted */
    bool eof;                      /* eof received, the final still due (a
                                      finished document has finished set instead) */
    rwkvd_input_kind input;
    rwkvd_doc_opts opts;
    const uint8_t *pending_bytes;  /* tokenizer bytes not yet a token */
    size_t n_pending_bytes;        /* <= RWKVD_CKPT_PENDING_BYTES_MAX */
    const uint32_t *pending_tokens; /* tokens not yet in a completed block */
    size_t n_pending_tokens;       /* <= RWKVD_CKPT_PENDING_TOKENS_MAX */
    const double *mean_sum;        /* [n_embd], iff opts.pooling == MEAN or EOS */
    uint64_t mean_count;           /* tokens summed into mean_sum */
    const float *last_emb;         /* [n_embd] ln_out at the last token, or NULL */
    double surprisal_sum;          /* running sum (nats), finite, >= 0 */
    uint64_t surprisal_count;
    /* The surprisal of the first pending token, computed with the block
     * before it (a block runs once the token after it is known, so the
     * prediction across the boundary is taken then and carried). */
    bool has_carry;
    float carry_surprisal;         /* finite, >= 0 when has_carry */
    uint32_t since_eos;            /* pooling eos: tokens since the last EOS (< eos_every) */
    const float *state;            /* [state_floats]; NULL only when finished */
    uint64_t fence;                /* lease revision it was written under (cluster
                                      mode), 0 = none: format v2/v4 iff not 0 */
    /* The segmenter (core/segments.h), serialised: [RWKV_SEGMENTER_BYTES]
     * iff opts.segment.  The decoder sets opts.segment and opts.seg from it;
     * its token count must equal tokens_done. */
    const uint8_t *segment_state;
    void *owned;                   /* set by the decoder only */
} rwkvd_ckpt;

/* Frees what the decoder allocated and clears the array pointers.  Accepts
 * NULL and caller-built structs (owned == NULL: nothing is freed). */
void rwkvd_ckpt_release(rwkvd_ckpt *ck);

/* Why a checkpoint could not be used. */
typedef enum rwkvd_ckpt_status {
    RWKVD_CKPT_OK = 0,
    RWKVD_CKPT_NOT_FOUND,   /* no file (store only) */
    RWKVD_CKPT_CORRUPT,     /* bad magic/version/checksum, truncated, inconsistent */
    RWKVD_CKPT_OTHER_MODEL, /* made with another model or tokenizer */
    RWKVD_CKPT_IO,          /* the file could not be read or written */
    RWKVD_CKPT_NOMEM,
} rwkvd_ckpt_status;

const char *rwkvd_ckpt_status_name(rwkvd_ckpt_status s);

/* Encodes ck at zstd `level` (ZSTD_minCLevel()..ZSTD_maxCLevel(); the
 * daemon's default 1 packs a 0.1B state as small as 3 does, ~1.4x faster).  Returns 0 with *out (malloc'ed, the caller frees) and
 * *out_len, or -1 with err set when ck breaks a rule of the format (the
 * message names the field) or memory runs out. */
int rwkvd_ckpt_encode(const rwkvd_ckpt *ck, int level, uint8_t **out, size_t *out_len,
                      rwkv_error *err);

/* The header alone (what `resume` and listings need). */
typedef struct rwkvd_ckpt_info {
    rwkvd_model_id model;
    uint8_t doc[RWKVD_DOC_MAX];
    size_t doc_len;
    uint64_t next_seq, blocks_done, tokens_done;
    size_t n_pending_tokens;
    uint32_t block_size;
    bool finished;
    bool eof;                     /* eof received, final still due */
    size_t header_size;
    uint64_t comp_size, raw_size;
    uint64_t fence;           /* 0 = none (format v1) */
} rwkvd_ckpt_info;

/* Validates the header at the start of buf[0..len) — magic, version, CRC,
 * every field's range and consistency, and, when expect is not NULL, the
 * model identity — without touching the payload (len may be just the first
 * RWKVD_CKPT_HEADER_MAX bytes of a file).  Returns 0, or -1 with *status and
 * err = "label: offset N: reason". */
int rwkvd_ckpt_read_header(const char *label, const void *buf, size_t len,
                           const rwkvd_model_id *expect, rwkvd_ckpt_info *info,
                           rwkvd_ckpt_status *status, rwkv_error *err);

/* Decodes a whole file image.  expect: the running model (a mismatch is
 * RWKVD_CKPT_OTHER_MODEL), or NULL to accept any model (tools, fuzzing).
 * max_raw caps the decompressed payload (0: RWKVD_CKPT_RAW_DEFAULT_MAX); it
 * is checked before anything is allocated.  Returns 0 with *out filled (call
 * rwkvd_ckpt_release), or -1 with *status, err naming label and reason, and
 * nothing allocated. */
int rwkvd_ckpt_decode(const char *label, const void *buf, size_t len,
                      const rwkvd_model_id *expect, uint64_t max_raw, rwkvd_ckpt *out,
                      rwkvd_ckpt_status *status, rwkv_error *err);

#endif
