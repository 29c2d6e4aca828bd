/* utf8.h — strict UTF-8 validation of untrusted text.
 *
 * Used for the `text` payload of ingest messages and for doc ids echoed as
 * msgpack str.  Strict means RFC 3629: no overlong forms, no UTF-16
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated
 * sequence at the end.  U+0000 is valid.  An ASCII fast path checks 8 bytes
 * per step, so validating a multi-megabyte message costs well under a
 * millisecond.
 */
#ifndef RWKVD_UTF8_H
#define RWKVD_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Returns n when p[0..n) is valid UTF-8, otherwise the offset of the first
 * byte of the first invalid (or truncated) sequence.  Thread safe. */
size_t rwkvd_utf8_check(const uint8_t *p, size_t n);

#endif
