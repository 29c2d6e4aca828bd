/* mp_scan.h — bounded structural pre-scan of untrusted msgpack bytes.
 *
 * msgpack-c (Debian 4.0) allocates n * sizeof(msgpack_object) as soon as it
 * reads an array header claiming n elements, before it has seen them: a
 * 5-byte message "dd ff ff ff ff" asks for ~100 GB.  So no byte reaches
 * msgpack-c before rwkvd_mp_scan has walked the whole message, iteratively,
 * and proved that it is exactly ONE well-formed object in which
 *   - every str/bin length fits in the bytes that remain,
 *   - every array of n elements / map of n entries has at least n / 2n bytes
 *     left (each object takes at least one byte) and n is within the limits,
 *   - containers nest no deeper than max_depth,
 *   - the total number of objects is at most max_items,
 *   - there is no ext type (ext/fixext/timestamp) and no reserved byte 0xc1,
 *   - nothing follows the object.
 * After a successful scan msgpack-c allocates at most about 48 bytes per
 * object actually present, so at most 48 * max_items in all.
 *
 * The small cursor helpers (head/skip/child) are what the decoders use to
 * point error messages at exact byte offsets; they are bounds-checked on
 * their own and never trust an earlier scan.
 */
#ifndef RWKVD_MP_SCAN_H
#define RWKVD_MP_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/reason.h"

#define RWKVD_MP_DEPTH_MAX 16

typedef struct rwkvd_mp_limits {
    unsigned max_depth; /* containers nested at most this deep: a top-level map is
                           depth 1; 1..RWKVD_MP_DEPTH_MAX */
    size_t max_items;   /* objects in the whole message (containers count too) */
    size_t max_map;     /* entries in any one map */
    size_t max_array;   /* elements in any one array */
} rwkvd_mp_limits;

typedef enum rwkvd_mp_kind {
    RWKVD_MP_NIL,
    RWKVD_MP_BOOL,
    RWKVD_MP_UINT,  /* non-negative integer (any encoding) */
    RWKVD_MP_NINT,  /* negative integer */
    RWKVD_MP_FLOAT, /* float32 or float64 */
    RWKVD_MP_STR,
    RWKVD_MP_BIN,
    RWKVD_MP_ARRAY,
    RWKVD_MP_MAP,
    RWKVD_MP_EXT, /* ext, fixext (incl. timestamp) */
} rwkvd_mp_kind;

typedef struct rwkvd_mp_head {
    rwkvd_mp_kind kind;
    size_t hdr;     /* bytes of the header (type byte + length/value bytes) */
    uint64_t n;     /* str/bin/ext: data bytes; array: elements; map: entries */
} rwkvd_mp_head;

/* The whole pre-scan.  Returns 0 when p[0..len) is exactly one object within
 * the limits; otherwise -1, *reason set to RWKVD_R_MALFORMED, _TOO_DEEP,
 * _TOO_MANY or _UNSUPPORTED_TYPE, *offset to the offending byte and err to
 * one line "offset N: ...".  O(len) time, no allocation.  Thread safe. */
int rwkvd_mp_scan(const uint8_t *p, size_t len, const rwkvd_mp_limits *lim,
                  rwkvd_reason *reason, size_t *offset, rwkv_error *err);

/* Reads the header of the object at off.  Returns 0, or -1 when off is at or
 * past the end, the header is cut short, or the byte is 0xc1.  Lengths are
 * NOT checked against the remaining bytes (rwkvd_mp_skip does that). */
int rwkvd_mp_read_head(const uint8_t *p, size_t len, size_t off, rwkvd_mp_head *h);

/* Offset just past the complete object at off (children included), in
 * *next.  -1 when anything is cut short or malformed.  Iterative, no stack. */
int rwkvd_mp_skip(const uint8_t *p, size_t len, size_t off, size_t *next);

/* Offset of element `index` of the array or map at off (for a map, keys and
 * values interleave: entry i has its key at 2i and its value at 2i+1).  -1
 * when off is not a container, index is out of range, or bytes are bad.
 * O(bytes skipped); meant for error paths and small maps. */
int rwkvd_mp_child(const uint8_t *p, size_t len, size_t off, uint64_t index, size_t *child);

#endif
