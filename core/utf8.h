/* utf8.h — strict UTF-8: the lead-byte rules, and validation of untrusted
 * text.
 *
 * Validation is used for the `text` payload of ingest messages and for doc
 * ids echoed as msgpack str; the lead-byte rules also by the tokenizers'
 * decoders (World literals, BPE text), so the tree has one UTF-8 table.  Strict means RFC 3629: no overlong forms, no UTF-16
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated
 * sequence at the end.  U+0000 is valid.  An ASCII fast path checks 8 bytes
 * per step, so validating a multi-megabyte message costs well under a
 * millisecond.
 */
#ifndef RWKVD_UTF8_H
#define RWKVD_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The one table of well-formed UTF-8 lead bytes (Unicode §3.9, Table 3-7),
 * shared by the validator and the tokenizers' decoders: for lead byte c,
 * the continuation bytes that follow (*need: 0 for ASCII, 1..3) and the
 * allowed range [*lo, *hi] of the FIRST continuation byte (the others are
 * 80..BF) — which rules out overlongs (E0, F0), surrogates (ED) and code
 * points above U+10FFFF (F4).  -1 for a byte that cannot start a
 * sequence (80..C1, F5..FF). */
int rwkv_utf8_lead(uint8_t c, size_t *need, uint8_t *lo, uint8_t *hi);

/* Returns n when p[0..n) is valid UTF-8, otherwise the offset of the first
 * byte of the first invalid (or truncated) sequence.  Thread safe. */
size_t rwkvd_utf8_check(const uint8_t *p, size_t n);

#endif
