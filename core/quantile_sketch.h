/* quantile_sketch.h — a bounded-memory, deterministic quantile sketch of
 * non-negative values (mean surprisals in nats), for streaming anomaly
 * scores.
 *
 * Why this shape: a document's segments are scored against all the segments
 * before it, over documents of any length, and the sketch must live in the
 * document's checkpoint so a restart continues the same scores bit for bit.
 * A fixed-width histogram does all of that with integer state only: values
 * in [0, RWKV_QSKETCH_MAX) fall into bins of 1/RWKV_QSKETCH_PER_NAT nats
 * (larger values into the last bin), the rank of a value is the count below
 * its bin plus half of its own bin, over the total.  Ranks are exact up to
 * the bin width (1/32 nat), whatever the number of values; no randomness, no
 * floating-point accumulation, order-independent.  Counts are kept in a
 * Fenwick tree so add and rank cost O(log bins) (a million lines need 2e7
 * steps, not 2e9).
 *
 * Serialised form (checkpoints): u64 total, then u64 count per bin, all
 * little-endian: RWKV_QSKETCH_BYTES bytes.  Loading trusts nothing: the
 * counts must add up to the total without overflow, and the total stay
 * below RWKV_QSKETCH_N_MAX (so adding can never wrap).
 * Not thread safe; a sketch is a plain value (copy it with =).
 */
#ifndef RWKV_QUANTILE_SKETCH_H
#define RWKV_QUANTILE_SKETCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define RWKV_QSKETCH_BINS 2048
#define RWKV_QSKETCH_PER_NAT 32
#define RWKV_QSKETCH_MAX ((double)RWKV_QSKETCH_BINS / RWKV_QSKETCH_PER_NAT) /* 64 nats */
#define RWKV_QSKETCH_BYTES (8 + 8 * RWKV_QSKETCH_BINS)
#define RWKV_QSKETCH_N_MAX (UINT64_C(1) << 62) /* totals loaded above it are refused */

typedef struct rwkv_qsketch {
    uint64_t n;                        /* values added */
    uint64_t tree[RWKV_QSKETCH_BINS];  /* Fenwick tree over the bin counts */
} rwkv_qsketch;

void rwkv_qsketch_init(rwkv_qsketch *q);

/* The bin of x: NaN and negatives go to bin 0, +inf and x >= MAX to the last. */
size_t rwkv_qsketch_bin(double x);

/* Adds one value (see rwkv_qsketch_bin for out-of-range values). */
void rwkv_qsketch_add(rwkv_qsketch *q, double x);

/* The rank of x among the values added, in [0, 1]: (values in lower bins +
 * half of those in x's bin) / n.  NaN when nothing was added. */
double rwkv_qsketch_rank(const rwkv_qsketch *q, double x);

/* Values in bin b (b < RWKV_QSKETCH_BINS). */
uint64_t rwkv_qsketch_count(const rwkv_qsketch *q, size_t b);

/* Writes the serialised form into out[RWKV_QSKETCH_BYTES]. */
void rwkv_qsketch_store(const rwkv_qsketch *q, uint8_t *out);

/* Reads the serialised form from untrusted bytes.  Returns 0, or -1 with
 * err naming label and the byte offset (len not RWKV_QSKETCH_BYTES, counts
 * that overflow or do not add up to the total); *q is then untouched. */
int rwkv_qsketch_load(rwkv_qsketch *q, const uint8_t *in, size_t len, const char *label,
                      rwkv_error *err);

#endif
