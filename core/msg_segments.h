/* msg_segments.h — the "segments" emit message (PROTOCOL.md §4.6): a batch
 * of finished segments of one document (core/segments.h), sent after the
 * block whose tokens finished them, so a million short lines are a few
 * thousand messages, not a million.
 *
 * Same promises as msg_encode.h: appends exactly one message, fixed key
 * order, byte-identical for the same inputs; 0, or -1 with err when memory
 * runs out or the arguments break the contract (no segments, a segment with
 * an empty or reversed range).
 */
#ifndef RWKVD_MSG_SEGMENTS_H
#define RWKVD_MSG_SEGMENTS_H

#include "core/msg_encode.h"
#include "core/segments.h"

typedef struct rwkvd_segments_out {
    uint64_t block;              /* the block after which these segments were finished */
    const rwkv_segment *segs;    /* [n], consecutive indices */
    size_t n;                    /* >= 1 */
    bool text;                   /* write each segment's "text" (opts.segment_text > 0) */
} rwkvd_segments_out;

int rwkvd_encode_segments(msgpack_sbuffer *sb, const rwkvd_out_head *h,
                          const rwkvd_segments_out *s, rwkv_error *err);

#endif
