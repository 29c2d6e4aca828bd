/* segments.h — a token stream cut into segments (log lines, or records
 * ended by any delimiter of 1..16 bytes), with per-segment surprisal figures
 * and a streaming anomaly score.
 *
 * Rules (PROTOCOL.md "segments"): a segment is the bytes after the previous
 * delimiter through its own delimiter (so with "\n", a CRLF line keeps its
 * "\r\n"); the last one ends at the end of the text and exists only when it
 * has bytes.  A token belongs to the segment that holds its FIRST byte, so a
 * token spanning a delimiter counts in the segment where it starts, and a
 * segment can have bytes but no tokens (the "\n" of a "\n\n" token).  The
 * figures only depend on the token stream and its bytes, never on how the
 * text was cut into messages or blocks.
 *
 * Byte offsets are prefix sums of the tokens' byte lengths: exact for
 * tokenizers whose tokens spell their input (rwkv_tokenizer_spells_input).
 *
 * Memory: a segmenter is a fixed-size value (about 16.5 KiB, most of it the
 * quantile sketch) whatever the segment lengths; it keeps counters, not
 * bytes.  It serialises to RWKV_SEGMENTER_BYTES for checkpoints.
 *
 * Score: a segment's mean surprisal over its scored tokens, ranked among the
 * means of the document's earlier segments (core/quantile_sketch.h); a
 * segment is anomalous when at least `warmup` segments were scored before it
 * and its score is above anomaly_quantile.  Not thread safe; a segmenter is a
 * plain value (copy it with =).
 */
#ifndef RWKV_SEGMENTS_H
#define RWKV_SEGMENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/quantile_sketch.h"

#define RWKV_SEG_DELIM_MAX 16
#define RWKV_SEG_TEXT_MAX 256 /* most leading bytes of a segment reported */
#define RWKV_SEG_QUANTILE_DEFAULT 0.99
#define RWKV_SEG_WARMUP_DEFAULT 100
/* Byte counts loaded from a checkpoint above this are refused, so counters
 * can never wrap (2^62 bytes is 4 EiB). */
#define RWKV_SEG_OFFSET_MAX (UINT64_C(1) << 62)

typedef struct rwkv_seg_config {
    uint8_t delim[RWKV_SEG_DELIM_MAX];
    uint8_t delim_len;        /* 1..RWKV_SEG_DELIM_MAX */
    double anomaly_quantile;  /* in (0, 1) */
    uint64_t warmup;          /* scored segments before any is anomalous */
    uint16_t text_cap;        /* 0..RWKV_SEG_TEXT_MAX leading bytes kept per segment */
} rwkv_seg_config;

/* "\n" lines, quantile 0.99, warm-up 100, no text. */
void rwkv_seg_config_lines(rwkv_seg_config *c);
/* 0 when c is within the ranges above, else -1 with err naming the field. */
int rwkv_seg_config_check(const rwkv_seg_config *c, rwkv_error *err);

/* Same delimiter and anomaly settings. */
bool rwkv_seg_config_equal(const rwkv_seg_config *a, const rwkv_seg_config *b);

/* One finished segment.  Ranges are half-open. */
typedef struct rwkv_segment {
    uint64_t index;                /* 0-based */
    uint64_t byte_start, byte_end; /* byte_end > byte_start */
    uint64_t tok_start, tok_end;   /* tokens whose first byte is inside */
    uint64_t n_scored;             /* tokens with a surprisal (the document's first has none) */
    double surprisal_sum;          /* nats, 0 when n_scored == 0 */
    float surprisal_max;           /* valid when n_scored > 0 */
    uint64_t max_pos;              /* absolute token position of the max (first one) */
    bool has_score;                /* n_scored > 0 and an earlier segment was scored */
    double score;                  /* rank in [0, 1] */
    bool anomalous;
    uint16_t text_len;             /* min(text_cap, its bytes) */
    uint8_t text[RWKV_SEG_TEXT_MAX]; /* its first text_len bytes */
} rwkv_segment;

typedef struct rwkv_segmenter {
    rwkv_seg_config cfg;
    uint8_t fail[RWKV_SEG_DELIM_MAX]; /* KMP failure function of cfg.delim (derived) */
    uint32_t match;                /* delimiter bytes matched at the end of the open segment */
    uint64_t index;                /* of the open segment */
    uint64_t byte_pos, byte_start; /* bytes seen; where the open segment starts */
    uint64_t tok_pos, tok_start;   /* tokens seen; the open segment's first token */
    uint64_t n_scored;
    double sum;
    float max;
    uint64_t max_pos;
    uint16_t text_len;             /* leading bytes of the open segment kept */
    uint8_t text[RWKV_SEG_TEXT_MAX];
    rwkv_qsketch sketch;           /* means of the scored segments so far */
} rwkv_segmenter;

/* Called once per finished segment; a non-zero return stops the feed and is
 * returned by it (the segmenter is then in an unspecified state). */
typedef int (*rwkv_segment_fn)(void *ctx, const rwkv_segment *seg);

/* Starts a text.  -1 with err when cfg is out of range. */
int rwkv_segmenter_init(rwkv_segmenter *s, const rwkv_seg_config *cfg, rwkv_error *err);

/* The next token: its bytes and its surprisal (NaN: none, e.g. the first
 * token of a document).  Calls fn for every segment a delimiter inside the
 * token ends.  Returns 0 or fn's non-zero value. */
int rwkv_segmenter_token(rwkv_segmenter *s, const uint8_t *bytes, size_t len, float surprisal,
                         rwkv_segment_fn fn, void *ctx);

/* End of the text: the open segment, if it has bytes, is finished (fn).
 * The counters stay where they are (a checkpoint of a finished document
 * still matches its token count); feed no more tokens.  Returns 0 or fn's
 * value. */
int rwkv_segmenter_finish(rwkv_segmenter *s, rwkv_segment_fn fn, void *ctx);

/* Serialised form, little-endian (checkpoints): see segmenter.c. */
#define RWKV_SEGMENTER_BYTES (128 + RWKV_SEG_TEXT_MAX + RWKV_QSKETCH_BYTES)
void rwkv_segmenter_store(const rwkv_segmenter *s, uint8_t *out);
/* From untrusted bytes: every field checked (ranges and consistency), err
 * names label and the byte offset.  0, or -1 with *s untouched. */
int rwkv_segmenter_load(rwkv_segmenter *s, const uint8_t *in, size_t len, const char *label,
                        rwkv_error *err);

#endif
