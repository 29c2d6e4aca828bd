/* segments.h (daemon) — a document's segment output: after each block, its
 * tokens go through the document's segmenter (core/segments.h) and the
 * segments they finished leave as ONE "segments" message (PROTOCOL.md §4.6).
 *
 * Why per block: a block's surprisals are all known when it finishes (the
 * first one carried from the block before), and the segmenter state after
 * a block is exactly what the checkpoint (taken between blocks) keeps, so a
 * block computed again after a restart gives the same segments message.
 * Memory: the segmenter is fixed-size; the segments finished by one block
 * are at most its bytes, freed once the message is queued.
 */
#ifndef RWKVD_SEGMENTS_H
#define RWKVD_SEGMENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

struct rwkvd_server;
struct rwkvd_session;

/* Segments tokens[0..n) (surprisal sur[0..n), NaN for none) of the block
 * numbered `block`, finishing the text when `last`, and queues the message
 * if a segment was finished.  The session's segmenter only moves on when
 * everything succeeded; -1 with err (out of memory, a token without bytes)
 * leaves it as it was. */
int rwkvd_segments_block(struct rwkvd_server *srv, struct rwkvd_session *s,
                         const uint32_t *tokens, int n, const float *sur, bool last,
                         uint64_t block, rwkv_error *err);

#endif
