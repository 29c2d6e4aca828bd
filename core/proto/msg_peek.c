/* msg_peek.c — doc and seq read straight from the bytes of an ingest message
 * that the pre-scan refused (contract in msg_decode.h).
 *
 * A refused message is usually a good map up to one bad value; its producer
 * still wants the error keyed by the doc and seq it sent.  msgpack-c never
 * sees a message refused as too deep, with too many elements or cut short,
 * so this walks the top-level map with the bounds-checked cursor helpers of
 * mp_scan.h instead, and stops at the first entry it cannot step over; the
 * decoder uses the same walk for every message, so one rule names doc and
 * seq in all error outputs: the first "doc" that is a str or bin of
 * 1..RWKVD_DOC_MAX bytes, the first "seq" that is an unsigned integer up to
 * RWKVD_SEQ_MAX.
 */
#include <string.h>

#include "core/mp_scan.h"
#include "core/msg_decode.h"

/* The value of the unsigned integer whose header is h at off (the value
 * bytes are part of the header, big-endian, after the type byte). */
static uint64_t uint_value(const uint8_t *p, size_t off, const rwkvd_mp_head *h)
{
    if (h->hdr == 1)
        return p[off]; /* positive fixint */
    uint64_t v = 0;
    for (size_t i = 1; i < h->hdr; i++)
        v = v << 8 | p[off + i];
    return v;
}

static bool key_is(const uint8_t *p, size_t off, const rwkvd_mp_head *h, const char *name)
{
    size_t n = strlen(name);
    return h->kind == RWKVD_MP_STR && h->n == n && memcmp(p + off + h->hdr, name, n) == 0;
}

void rwkvd_ingest_peek(const void *buf, size_t len, rwkvd_ingest *out)
{
    const uint8_t *p = buf;
    rwkvd_mp_head h;
    if (!p || rwkvd_mp_read_head(p, len, 0, &h) != 0 || h.kind != RWKVD_MP_MAP)
        return;
    size_t off = h.hdr;
    /* every entry takes two bytes at least: the walk ends by len, whatever
     * count the header claims */
    for (uint64_t k = 0; k < h.n && !(out->have_doc && out->have_seq); k++) {
        rwkvd_mp_head kh, vh;
        size_t val_off, next;
        if (rwkvd_mp_skip(p, len, off, &val_off) != 0 ||
            rwkvd_mp_read_head(p, len, off, &kh) != 0 ||
            rwkvd_mp_read_head(p, len, val_off, &vh) != 0)
            return;
        /* the key is whole (skip proved it); the value's bytes are checked
         * against what remains before they are read */
        bool whole = vh.hdr + (uint64_t)((vh.kind == RWKVD_MP_STR || vh.kind == RWKVD_MP_BIN)
                                             ? vh.n : 0) <= len - val_off;
        if (!out->have_doc && key_is(p, off, &kh, "doc") && whole &&
            (vh.kind == RWKVD_MP_STR || vh.kind == RWKVD_MP_BIN) && vh.n >= 1 &&
            vh.n <= RWKVD_DOC_MAX) {
            memcpy(out->doc, p + val_off + vh.hdr, (size_t)vh.n);
            out->doc_len = (size_t)vh.n;
            out->have_doc = true;
        }
        if (!out->have_seq && key_is(p, off, &kh, "seq") && vh.kind == RWKVD_MP_UINT) {
            uint64_t v = uint_value(p, val_off, &vh);
            if (v <= RWKVD_SEQ_MAX) {
                out->seq = v;
                out->have_seq = true;
            }
        }
        if (rwkvd_mp_skip(p, len, val_off, &next) != 0)
            return;
        off = next;
    }
}
