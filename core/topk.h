/* topk.h — the k most likely next tokens of rows of logits (the engine's
 * top-k output, forward.h; PROTOCOL.md §4.2 `topk`).  Pure functions,
 * thread safe. */
#ifndef RWKV_TOPK_H
#define RWKV_TOPK_H

#include <stddef.h>
#include <stdint.h>

/* For each of n rows of logits [n][V]: the k highest-ranked ids, descending,
 * and their natural-log probabilities (logit - logsumexp of the row).  The
 * ranking is a total order: higher logit first, equal logits by lower id,
 * NaN below every number.  k is clamped to V.  ids and logprobs are [n][k].
 * O(V log k) per row whatever the logits (a min-heap of the k best). */
void rwkv_topk_rows(const float *logits, size_t n, uint32_t V, uint32_t k, uint32_t *ids,
                     float *logprobs);

#endif
