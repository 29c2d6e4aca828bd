/* keyset.h — the set of outputs already written, for deduplication:
 * key (doc bytes, incarnation, block number) — KEYSET_FINAL stands for
 * "final"; the incarnation is the output's `inc`, 0 when absent (PROTOCOL.md
 * §8.4), so a dropped and reused document id is a new document — mapped
 * to a 64-bit hash of the message bytes first written under it (for
 * --verify-identical).
 *
 * Open addressing with linear probing, grown at 70% load, so lookups stay
 * O(1) however many blocks a long run collects; doc ids are copied into an
 * arena owned by the set (at most 256 bytes each).  About 40 bytes plus the
 * doc id per key.  Not thread safe.
 */
#ifndef RWKVD_SINK_KEYSET_H
#define RWKVD_SINK_KEYSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYSET_FINAL UINT64_MAX
/* A segments output (PROTOCOL.md §4.6) after block b is keyed b | this bit
 * (block numbers stay below 2^63). */
#define KEYSET_SEGMENTS_BIT (UINT64_C(1) << 63)

typedef struct keyset keyset;

/* NULL when out of memory. */
keyset *keyset_new(void);
/* Frees the set and its arena; accepts NULL. */
void keyset_free(keyset *s);

/* 1 when the key is present (*msg_hash, *has_hash filled when not NULL),
 * 0 when absent. */
int keyset_find(const keyset *s, const uint8_t *doc, size_t doc_len, uint64_t inc,
                uint64_t block, uint64_t *msg_hash, bool *has_hash);

/* Adds a key that is not present yet (has_hash false: its hash is unknown,
 * e.g. a record written by an older sink).  0, or -1 when out of memory
 * (the set is unchanged). */
int keyset_add(keyset *s, const uint8_t *doc, size_t doc_len, uint64_t inc, uint64_t block,
               uint64_t msg_hash, bool has_hash);

size_t keyset_count(const keyset *s);

/* A fast 64-bit hash of n bytes (not cryptographic: it detects differences
 * between copies of a message, nothing adversarial).  Thread safe. */
uint64_t hash64(const void *p, size_t n, uint64_t seed);

#endif
