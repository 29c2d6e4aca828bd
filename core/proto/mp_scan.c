/* mp_scan.c — the msgpack pre-scan and cursor helpers (see mp_scan.h).
 *
 * Wire format reference: the msgpack spec (github.com/msgpack/msgpack,
 * spec.md).  Every multi-byte length is big-endian.  The scan keeps one
 * counter per open container (how many objects it still expects); that
 * fixed array is the whole "stack", so hostile nesting costs nothing.
 */
#include "core/mp_scan.h"

static uint64_t be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

int rwkvd_mp_read_head(const uint8_t *p, size_t len, size_t off, rwkvd_mp_head *h)
{
    if (off >= len)
        return -1;
    uint8_t b = p[off];
    size_t extra = 0; /* bytes after the type byte that hold a length or value */
    h->n = 0;
    if (b <= 0x7f) {
        h->kind = RWKVD_MP_UINT;
    } else if (b <= 0x8f) {
        h->kind = RWKVD_MP_MAP, h->n = b & 0x0f;
    } else if (b <= 0x9f) {
        h->kind = RWKVD_MP_ARRAY, h->n = b & 0x0f;
    } else if (b <= 0xbf) {
        h->kind = RWKVD_MP_STR, h->n = b & 0x1f;
    } else if (b >= 0xe0) {
        h->kind = RWKVD_MP_NINT;
    } else {
        switch (b) {
        case 0xc0: h->kind = RWKVD_MP_NIL; break;
        case 0xc2: case 0xc3: h->kind = RWKVD_MP_BOOL; break;
        case 0xc4: case 0xc5: case 0xc6:
            h->kind = RWKVD_MP_BIN, extra = (size_t)1 << (b - 0xc4); break;
        case 0xc7: case 0xc8: case 0xc9:
            h->kind = RWKVD_MP_EXT, extra = ((size_t)1 << (b - 0xc7)) + 1; break;
        case 0xca: h->kind = RWKVD_MP_FLOAT, extra = 4; break;
        case 0xcb: h->kind = RWKVD_MP_FLOAT, extra = 8; break;
        case 0xcc: case 0xcd: case 0xce: case 0xcf:
            h->kind = RWKVD_MP_UINT, extra = (size_t)1 << (b - 0xcc); break;
        case 0xd0: case 0xd1: case 0xd2: case 0xd3:
            /* signed encodings: the kind depends on the value's sign */
            extra = (size_t)1 << (b - 0xd0);
            if (len - off - 1 < extra)
                return -1;
            h->kind = (p[off + 1] & 0x80) ? RWKVD_MP_NINT : RWKVD_MP_UINT;
            break;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
            h->kind = RWKVD_MP_EXT, extra = 1, h->n = (uint64_t)1 << (b - 0xd4); break;
        case 0xd9: case 0xda: case 0xdb:
            h->kind = RWKVD_MP_STR, extra = (size_t)1 << (b - 0xd9); break;
        case 0xdc: case 0xdd:
            h->kind = RWKVD_MP_ARRAY, extra = (size_t)2 << (b - 0xdc); break;
        case 0xde: case 0xdf:
            h->kind = RWKVD_MP_MAP, extra = (size_t)2 << (b - 0xde); break;
        default: /* 0xc1: never used */
            return -1;
        }
    }
    if (len - off - 1 < extra)
        return -1;
    h->hdr = 1 + extra;
    const uint8_t *q = p + off + 1;
    switch (h->kind) {
    case RWKVD_MP_STR: case RWKVD_MP_BIN: case RWKVD_MP_ARRAY: case RWKVD_MP_MAP:
        if (extra)
            h->n = be(q, extra);
        break;
    case RWKVD_MP_EXT:
        if (b <= 0xc9) /* ext 8/16/32: length, then the type byte */
            h->n = be(q, extra - 1);
        break;
    case RWKVD_MP_FLOAT: case RWKVD_MP_UINT: case RWKVD_MP_NINT:
        h->n = 0; /* value bytes are part of the header */
        break;
    default:
        break;
    }
    return 0;
}

/* Bytes of data that follow the header and are not objects themselves. */
static uint64_t data_bytes(const rwkvd_mp_head *h)
{
    return (h->kind == RWKVD_MP_STR || h->kind == RWKVD_MP_BIN || h->kind == RWKVD_MP_EXT) ? h->n : 0;
}

int rwkvd_mp_skip(const uint8_t *p, size_t len, size_t off, size_t *next)
{
    uint64_t pending = 1; /* objects still to skip */
    while (pending) {
        rwkvd_mp_head h;
        if (rwkvd_mp_read_head(p, len, off, &h) != 0)
            return -1;
        off += h.hdr;
        uint64_t d = data_bytes(&h);
        if (d > len - off)
            return -1;
        off += (size_t)d;
        pending--;
        if (h.kind == RWKVD_MP_ARRAY || h.kind == RWKVD_MP_MAP) {
            uint64_t kids = h.kind == RWKVD_MP_MAP ? 2 * h.n : h.n; /* n < 2^32 */
            /* every pending object needs a byte: bounds pending by len */
            if (kids > len - off || pending > len - off - kids)
                return -1;
            pending += kids;
        }
    }
    *next = off;
    return 0;
}

int rwkvd_mp_child(const uint8_t *p, size_t len, size_t off, uint64_t index, size_t *child)
{
    rwkvd_mp_head h;
    if (rwkvd_mp_read_head(p, len, off, &h) != 0)
        return -1;
    uint64_t kids;
    if (h.kind == RWKVD_MP_ARRAY)
        kids = h.n;
    else if (h.kind == RWKVD_MP_MAP)
        kids = 2 * h.n;
    else
        return -1;
    if (index >= kids)
        return -1;
    size_t at = off + h.hdr;
    for (uint64_t i = 0; i < index; i++)
        if (rwkvd_mp_skip(p, len, at, &at) != 0)
            return -1;
    if (at >= len)
        return -1;
    *child = at;
    return 0;
}

static int scan_fail(rwkvd_reason *reason, size_t *offset, rwkv_error *err, rwkvd_reason r,
                     size_t off, const char *what)
{
    *reason = r;
    *offset = off;
    return rwkv_fail(err, "offset %zu: %s", off, what);
}

int rwkvd_mp_scan(const uint8_t *p, size_t len, const rwkvd_mp_limits *lim,
                  rwkvd_reason *reason, size_t *offset, rwkv_error *err)
{
    uint64_t left[RWKVD_MP_DEPTH_MAX + 1]; /* objects still expected per level */
    unsigned depth = 0, max_depth = lim->max_depth;
    if (max_depth > RWKVD_MP_DEPTH_MAX)
        max_depth = RWKVD_MP_DEPTH_MAX;
    size_t off = 0, items = 0;
    left[0] = 1;
    if (len == 0)
        return scan_fail(reason, offset, err, RWKVD_R_MALFORMED, 0, "empty message");
    for (;;) {
        while (depth > 0 && left[depth] == 0)
            depth--;
        if (left[depth] == 0)
            break; /* depth 0: the one top-level object is complete */
        left[depth]--;
        rwkvd_mp_head h;
        if (off >= len)
            return scan_fail(reason, offset, err, RWKVD_R_MALFORMED, off,
                             "message ends where an object should start");
        if (rwkvd_mp_read_head(p, len, off, &h) != 0)
            return scan_fail(reason, offset, err, RWKVD_R_MALFORMED, off,
                             p[off] == 0xc1 ? "reserved byte 0xc1" : "object header cut short");
        if (++items > lim->max_items)
            return scan_fail(reason, offset, err, RWKVD_R_TOO_MANY, off,
                             "more objects than the message limit allows");
        if (h.kind == RWKVD_MP_EXT)
            return scan_fail(reason, offset, err, RWKVD_R_UNSUPPORTED_TYPE, off,
                             "msgpack ext types are not accepted");
        size_t at = off;
        off += h.hdr;
        uint64_t d = data_bytes(&h);
        if (d > len - off)
            return scan_fail(reason, offset, err, RWKVD_R_MALFORMED, at,
                             "str/bin length runs past the end of the message");
        off += (size_t)d;
        if (h.kind != RWKVD_MP_ARRAY && h.kind != RWKVD_MP_MAP)
            continue;
        uint64_t kids = h.kind == RWKVD_MP_MAP ? 2 * h.n : h.n;
        if (kids > len - off)
            return scan_fail(reason, offset, err, RWKVD_R_MALFORMED, at,
                             h.kind == RWKVD_MP_MAP ? "map claims more entries than bytes remain"
                                                    : "array claims more elements than bytes remain");
        /* depth before counts: a container where the schema allows none
         * (max_array 0 in a flat control map) is too deep, not too many */
        if (depth + 1 > max_depth)
            return scan_fail(reason, offset, err, RWKVD_R_TOO_DEEP, at, "containers nested too deeply");
        if (h.kind == RWKVD_MP_MAP && h.n > lim->max_map)
            return scan_fail(reason, offset, err, RWKVD_R_TOO_MANY, at, "map has too many entries");
        if (h.kind == RWKVD_MP_ARRAY && h.n > lim->max_array)
            return scan_fail(reason, offset, err, RWKVD_R_TOO_MANY, at, "array has too many elements");
        left[++depth] = kids;
    }
    if (off != len)
        return scan_fail(reason, offset, err, RWKVD_R_MALFORMED, off,
                         "bytes after the end of the message object");
    return 0;
}
