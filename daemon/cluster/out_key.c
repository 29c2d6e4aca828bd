/* out_key.c — see out_key.h.  Walks the top-level map with the bounded
 * cursor of core/mp_scan.h (no allocation, every length checked against the
 * bytes present), because rwkvd-nats sub runs it on bytes from the network:
 * msgpack-c would allocate for counts it has not seen. */
#include "daemon/cluster/out_key.h"

#include <string.h>

#include "core/mp_scan.h"

static bool str_is(const uint8_t *p, const rwkvd_mp_head *h, size_t off, const char *s)
{
    size_t n = strlen(s);
    return h->kind == RWKVD_MP_STR && h->n == n && memcmp(p + off + h->hdr, s, n) == 0;
}

int rwkvd_out_key_read(const void *data, size_t len, rwkvd_out_key *k)
{
    memset(k, 0, sizeof *k);
    const uint8_t *p = data;
    rwkvd_mp_head m;
    size_t end;
    /* exactly one complete object, a map */
    if (rwkvd_mp_skip(p, len, 0, &end) != 0 || end != len ||
        rwkvd_mp_read_head(p, len, 0, &m) != 0 || m.kind != RWKVD_MP_MAP)
        return -1;
    size_t off = m.hdr;
    for (uint64_t i = 0; i < m.n; i++) {
        rwkvd_mp_head kh, vh;
        size_t voff, next;
        if (rwkvd_mp_read_head(p, len, off, &kh) != 0 || rwkvd_mp_skip(p, len, off, &voff) != 0 ||
            rwkvd_mp_read_head(p, len, voff, &vh) != 0 || rwkvd_mp_skip(p, len, voff, &next) != 0)
            return -1;
        if (str_is(p, &kh, off, "type")) {
            static const char *names[] = {"", "block", "final", "error", "ack", "segments"};
            for (int t = 1; t < 6; t++)
                if (str_is(p, &vh, voff, names[t]))
                    k->type = (rwkvd_outk_type)t;
        } else if (str_is(p, &kh, off, "doc") &&
                   (vh.kind == RWKVD_MP_STR || vh.kind == RWKVD_MP_BIN) && vh.n >= 1 &&
                   vh.n <= sizeof k->doc) {
            memcpy(k->doc, p + voff + vh.hdr, (size_t)vh.n);
            k->doc_len = (size_t)vh.n;
            k->have_doc = true;
        } else if ((str_is(p, &kh, off, "block") || str_is(p, &kh, off, "inc")) &&
                   vh.kind == RWKVD_MP_UINT) {
            /* the value sits in the header: a fixint, or big-endian after
             * the type byte (non-negative, whatever the encoding) */
            uint64_t v = p[voff] < 0x80 ? p[voff] : 0;
            for (size_t b = 1; p[voff] >= 0x80 && b < vh.hdr; b++)
                v = v << 8 | p[voff + b];
            if (str_is(p, &kh, off, "block"))
                k->block = v;
            else
                k->inc = v;
        }
        off = next;
    }
    return 0;
}
