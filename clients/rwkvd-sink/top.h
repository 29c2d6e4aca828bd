/* top.h — rwkvd-sink --segments-top N: the N most anomalous segments seen
 * in segments outputs (PROTOCOL.md §4.6), over all documents, printed at
 * exit.
 *
 * "Most anomalous" = highest score, ties (scores saturate at 1 for a
 * segment above all earlier ones) broken by mean surprisal per token, then
 * by arrival order.  A min-heap of N entries: O(log N) per segment, memory
 * fixed by N whatever the stream's length.  Segments without a score are
 * not ranked.  Not thread safe.
 */
#ifndef RWKVD_SINK_TOP_H
#define RWKVD_SINK_TOP_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct seg_top seg_top;

/* NULL when out of memory; n >= 1. */
seg_top *seg_top_new(size_t n);
void seg_top_free(seg_top *t); /* accepts NULL */

/* Offers every segment of one (new, not duplicate) segments output of doc.
 * Malformed segment entries are skipped.  -1 when out of memory. */
int seg_top_offer(seg_top *t, const uint8_t *doc, size_t doc_len, const msgpack_object *root);

/* Prints the kept segments, best first, one line each. */
void seg_top_print(const seg_top *t, FILE *f);

#endif
