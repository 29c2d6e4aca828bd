/* stream_check.h — the check every tokenizer's streaming test makes: text
 * fed to the streaming encoder in random pieces gives exactly the
 * whole-text ids, the held bytes after every feed are the text's last bytes
 * and within the tokenizer's bound, and (optionally) they survive being
 * moved to a new encoder through pending/restore, as a checkpoint does. */
#ifndef TESTS_STREAM_CHECK_H
#define TESTS_STREAM_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "core/tokenizer.h"

int ids_same(const rwkv_ids *a, const rwkv_ids *b);

/* Streams buf in pieces of 1..max_piece bytes (random from *seed); with
 * ckpt_every > 0 moves the held bytes to a new encoder every ckpt_every
 * feeds.  0 when the ids equal want; otherwise nonzero with why filled
 * (-1 an encoder error, -2 a bad held tail or refused restore, -3 other
 * ids). */
int stream_check(const rwkv_tokenizer *tok, const uint8_t *buf, size_t n, size_t max_piece,
                 unsigned ckpt_every, uint64_t *seed, const rwkv_ids *want, char *why,
                 size_t why_n);

#endif
