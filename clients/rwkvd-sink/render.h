/* render.h — one decoded output message (a msgpack map, PROTOCOL.md §4)
 * -> one JSON object on one line, and the key fields the sink needs.
 *
 * Record layout: "type", "doc" and (for blocks) "block" come first, so a
 * restarted sink can find the key of each line by reading only its start
 * (reload.c); then every other field of the message in its own order;
 * block and final records end with "msg_hash" (16 hex digits, hash64 of the
 * message bytes, written by the caller).  Values:
 *   - embedding, logits_last, surprisal, topk.logprobs (bin of f32 LE):
 *     arrays of numbers printed with %.9g, which reads back as the same
 *     float32; NaN and infinities become null;
 *   - topk.ids (bin of u32 LE): arrays of integers;
 *   - str: a JSON string when valid UTF-8, else {"hex": "..."};
 *     any other bin: {"hex": "..."};
 *   - float64: %.17g (null when not finite); integers, bools, nil as such.
 * In raw mode the vector fields are not printed: each becomes
 * {"file": "<stem>.<name>.<f32|u32>", "n": count} and is handed back to the
 * caller as a blob to write.
 *
 * The message must have passed rwkvd_mp_scan (bounded depth), so the
 * recursion here is bounded.  Thread safe on distinct buffers.
 */
#ifndef RWKVD_SINK_RENDER_H
#define RWKVD_SINK_RENDER_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* A growable text buffer.  oom is set (and further appends ignored) when
 * memory runs out. */
typedef struct tbuf {
    char *p;
    size_t len, cap;
    bool oom;
} tbuf;

void tbuf_put(tbuf *b, const void *s, size_t n);
void tbuf_puts(tbuf *b, const char *s);
void tbuf_free(tbuf *b);

/* The fields of an output that the sink acts on. */
typedef enum out_type { OUT_BLOCK, OUT_FINAL, OUT_ERROR, OUT_ACK, OUT_SEGMENTS, OUT_OTHER } out_type;

typedef struct out_info {
    out_type type;
    bool has_doc;                 /* doc is str or bin (not nil/absent) */
    const uint8_t *doc;           /* points into the msgpack object */
    size_t doc_len;
    uint64_t block;               /* OUT_BLOCK, OUT_SEGMENTS (below 2^63) */
    uint64_t inc;                 /* the document's incarnation ("inc"; 0 when absent) */
    /* for the stderr line of errors and acks (absent: has_* false) */
    bool has_seq, has_next_seq, has_expected_seq;
    uint64_t seq, next_seq, expected_seq;
    const char *reason, *message, *status;   /* not NUL-terminated: see *_len */
    size_t reason_len, message_len, status_len;
} out_info;

/* Checks the shape the sink relies on: a map whose keys (at any depth) are
 * str of 1..32 printable ASCII bytes; "type" a str;
 * block and final outputs with a str/bin "doc", blocks with an integer
 * "block"; vector fields (embedding, logits_last, surprisal, topk.ids,
 * topk.logprobs) bins of a multiple of 4 bytes when present.  0, or -1 with
 * err saying what is wrong. */
int render_classify(const msgpack_object *root, out_info *info, rwkv_error *err);

#define RENDER_MAX_BLOBS 8
typedef struct render_blob {
    char name[48];                /* "<stem>.<field>.<f32|u32>" */
    const void *data;             /* points into the msgpack object */
    size_t len;
} render_blob;

/* Appends the record for root (classified as info) to b, WITHOUT the closing
 * brace, so the caller can add "msg_hash".  raw_stem NULL: vectors printed
 * inline; else vectors become blobs in blobs[0..*n_blobs). */
void render_record(tbuf *b, const msgpack_object *root, const out_info *info,
                   const char *raw_stem, render_blob *blobs, size_t *n_blobs);

/* Appends a JSON string for bytes that are valid UTF-8, else {"hex":...}. */
void render_bytes_as_text(tbuf *b, const uint8_t *p, size_t n);

/* Writes a printable ASCII rendering of p[0..n) (non-printable bytes as
 * \xNN, at most max bytes shown) for stderr lines. */
void render_printable(tbuf *b, const uint8_t *p, size_t n, size_t max);

#endif
