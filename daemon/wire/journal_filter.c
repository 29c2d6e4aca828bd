/* journal_filter.c — see journal_filter.h. */
#include "daemon/wire/journal_filter.h"

#include <string.h>

#include "core/mp_scan.h"
#include "core/msg_decode.h"
#include "daemon/wire/incarnation.h"

/* A non-negative integer's value (mp_read_head has already checked that
 * its bytes are there). */
static uint64_t uint_value(const uint8_t *p, const rwkvd_mp_head *h)
{
    if (h->hdr == 1)
        return p[0];
    uint64_t v = 0;
    for (size_t i = 1; i < h->hdr; i++)
        v = v << 8 | p[i];
    return v;
}

static bool key_is(const uint8_t *p, const rwkvd_mp_head *h, const char *name)
{
    size_t n = strlen(name);
    return h->kind == RWKVD_MP_STR && h->n == n && memcmp(p + h->hdr, name, n) == 0;
}

int rwkvd_output_identity(const void *msg, size_t len, rwkvd_output_id *out)
{
    const uint8_t *p = msg;
    memset(out, 0, sizeof *out);
    rwkvd_mp_head m;
    if (rwkvd_mp_read_head(p, len, 0, &m) != 0 || m.kind != RWKVD_MP_MAP)
        return -1;
    size_t off = m.hdr;
    for (uint64_t i = 0; i < m.n; i++) {
        rwkvd_mp_head k, v;
        size_t voff;
        if (rwkvd_mp_read_head(p, len, off, &k) != 0 || rwkvd_mp_skip(p, len, off, &voff) != 0 ||
            rwkvd_mp_read_head(p, len, voff, &v) != 0)
            return -1;
        size_t next;
        if (rwkvd_mp_skip(p, len, voff, &next) != 0)
            return -1;
        const uint8_t *kp = p + off, *vp = p + voff;
        /* str/bin bodies lie within [voff, next): mp_skip checked them */
        if (key_is(kp, &k, "doc")) {
            if ((v.kind != RWKVD_MP_STR && v.kind != RWKVD_MP_BIN) || v.n < 1 || v.n > RWKVD_DOC_MAX)
                return -1;
            out->have_doc = true;
            out->doc = vp + v.hdr;
            out->doc_len = (size_t)v.n;
        } else if (key_is(kp, &k, "inc")) {
            if (v.kind != RWKVD_MP_UINT)
                return -1;
            out->inc = uint_value(vp, &v);
        } else if (key_is(kp, &k, "model")) {
            if (v.kind != RWKVD_MP_STR || v.n != 64)
                return -1;
            memcpy(out->model_hex, vp + v.hdr, 64);
            out->model_hex[64] = '\0';
            out->have_model = true;
        }
        off = next;
    }
    return 0;
}

bool rwkvd_journal_keep(int dirfd, const char *dir_label, const char *model_hex,
                        const void *msg, size_t len, const char **why)
{
    rwkvd_output_id id;
    if (rwkvd_output_identity(msg, len, &id) != 0)
        return true;
    if (id.have_model && strcmp(id.model_hex, model_hex) != 0) {
        *why = "another model";
        return false;
    }
    uint64_t cur;
    rwkv_error err;
    if (id.have_doc && rwkvd_incarnation_get(dirfd, dir_label, id.doc, id.doc_len, &cur, &err) == 0 &&
        id.inc < cur) {
        *why = "a dropped incarnation";
        return false;
    }
    return true;
}
