/* zip_reader.c — central-directory zip reader for torch.save archives (see
 * zip_reader.h).
 *
 * Order of work: find the end-of-central-directory record in the last
 * 64 KiB + 22 bytes, follow the zip64 locator when there is one (torch
 * always writes one), bound the central directory inside the file, then walk
 * it entry by entry, checking each local header.  All arithmetic on sizes
 * read from the file is done in uint64_t after checking against the buffer
 * length, so nothing can wrap.
 */
#include "core/io/zip_reader.h"

#include <stdlib.h>
#include <string.h>

#include "core/crc32.h"
#include "core/quote.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u

#define EOCD_LEN 22u
#define LOCATOR64_LEN 20u
#define EOCD64_LEN 56u
#define CENTRAL_LEN 46u
#define LOCAL_LEN 30u

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}

/* Where the central directory is, from the (zip64) end records. */
typedef struct cd_span {
    uint64_t offset, size, count;
    uint64_t end; /* first byte after the central directory may not pass this */
} cd_span;

static int find_directory(const rwkv_zip *z, cd_span *cd, rwkv_error *err)
{
    const unsigned char *b = z->buf;
    size_t len = z->len;
    if (len < EOCD_LEN)
        return rwkv_fail(err, "%s: zip: file is %zu bytes, too short for a zip archive",
                         z->label, len);
    size_t stop = len - EOCD_LEN > 0xFFFFu ? len - EOCD_LEN - 0xFFFFu : 0;
    size_t pos = len - EOCD_LEN;
    for (;;) {
        if (rd32(b + pos) == SIG_EOCD && pos + EOCD_LEN + rd16(b + pos + 20) == len)
            break;
        if (pos == stop)
            return rwkv_fail(err,
                             "%s: zip: no end-of-central-directory record in the last %zu "
                             "bytes (truncated or not a zip archive)",
                             z->label, len - stop);
        pos--;
    }
    const unsigned char *e = b + pos;
    uint16_t disk = rd16(e + 4), cd_disk = rd16(e + 6);
    uint64_t n_disk = rd16(e + 8), n_total = rd16(e + 10);
    cd->size = rd32(e + 12);
    cd->offset = rd32(e + 16);
    cd->count = n_total;
    cd->end = pos;
    int wants64 = n_total == 0xFFFF || cd->size == 0xFFFFFFFFu || cd->offset == 0xFFFFFFFFu;
    if (pos >= LOCATOR64_LEN && rd32(b + pos - LOCATOR64_LEN) == SIG_LOCATOR64) {
        size_t lpos = pos - LOCATOR64_LEN;
        const unsigned char *l = b + lpos;
        uint64_t rec = rd64(l + 8);
        if (rd32(l + 4) != 0 || rd32(l + 16) > 1)
            return rwkv_fail(err, "%s: zip: byte %zu: multi-disk zip64 archive not supported",
                             z->label, lpos);
        if (rec > lpos || lpos - rec < EOCD64_LEN)
            return rwkv_fail(err,
                             "%s: zip: byte %zu: zip64 locator points to byte %llu, outside "
                             "the archive",
                             z->label, lpos, (unsigned long long)rec);
        const unsigned char *r = b + rec;
        if (rd32(r) != SIG_EOCD64)
            return rwkv_fail(err, "%s: zip: byte %llu: bad zip64 end-of-directory signature",
                             z->label, (unsigned long long)rec);
        if (rd32(r + 16) != 0 || rd32(r + 20) != 0)
            return rwkv_fail(err, "%s: zip: byte %llu: multi-disk zip64 archive not supported",
                             z->label, (unsigned long long)rec);
        n_disk = rd64(r + 24);
        n_total = rd64(r + 32);
        cd->count = n_total;
        cd->size = rd64(r + 40);
        cd->offset = rd64(r + 48);
        cd->end = rec;
    } else if (wants64) {
        return rwkv_fail(err,
                         "%s: zip: byte %zu: end record defers to zip64 but there is no "
                         "zip64 locator",
                         z->label, pos);
    } else if (disk != 0 || cd_disk != 0) {
        return rwkv_fail(err, "%s: zip: byte %zu: multi-disk archive not supported", z->label,
                         pos);
    }
    if (n_disk != n_total)
        return rwkv_fail(err, "%s: zip: byte %zu: multi-disk archive not supported", z->label,
                         pos);
    if (cd->offset > cd->end || cd->size > cd->end - cd->offset)
        return rwkv_fail(err,
                         "%s: zip: central directory (byte %llu, %llu bytes) runs past its end "
                         "record at byte %llu",
                         z->label, (unsigned long long)cd->offset,
                         (unsigned long long)cd->size, (unsigned long long)cd->end);
    if (cd->count > cd->size / CENTRAL_LEN)
        return rwkv_fail(err,
                         "%s: zip: %llu entries claimed but the central directory holds only "
                         "%llu bytes",
                         z->label, (unsigned long long)cd->count, (unsigned long long)cd->size);
    return 0;
}

/* Applies the zip64 extended-information extra field (id 1) of one central
 * entry: each field that is all-ones in the fixed record is read from it. */
static int apply_zip64_extra(const unsigned char *x, size_t xlen, uint64_t *usize,
                             uint64_t *csize, uint64_t *lho, uint32_t disk)
{
    int need_u = *usize == 0xFFFFFFFFu, need_c = *csize == 0xFFFFFFFFu;
    int need_o = *lho == 0xFFFFFFFFu, need_d = disk == 0xFFFFu;
    size_t i = 0;
    while (i + 4 <= xlen) {
        uint16_t id = rd16(x + i), sz = rd16(x + i + 2);
        if (sz > xlen - i - 4)
            return -1;
        if (id == 1) {
            const unsigned char *f = x + i + 4;
            size_t need = 8u * (size_t)(need_u + need_c + need_o) + 4u * (size_t)need_d;
            if (sz < need)
                return -1;
            if (need_u)
                *usize = rd64(f), f += 8;
            if (need_c)
                *csize = rd64(f), f += 8;
            if (need_o)
                *lho = rd64(f), f += 8;
            return 0;
        }
        i += 4u + sz;
    }
    return (need_u || need_c || need_o || need_d) ? -1 : 0;
}

static int cmp_names(const void *a, const void *b, void *ctx)
{
    const rwkv_zip_entry *e = ctx;
    const rwkv_zip_entry *x = &e[*(const size_t *)a], *y = &e[*(const size_t *)b];
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static int read_entry(rwkv_zip *z, const cd_span *cd, uint64_t *pos, rwkv_zip_entry *out,
                      rwkv_error *err)
{
    const unsigned char *b = z->buf;
    uint64_t at = *pos, cd_end = cd->offset + cd->size;
    rwkv_quoted q;
    if (cd_end - at < CENTRAL_LEN)
        return rwkv_fail(err, "%s: zip: byte %llu: central directory entry truncated", z->label,
                         (unsigned long long)at);
    const unsigned char *c = b + at;
    if (rd32(c) != SIG_CENTRAL)
        return rwkv_fail(err, "%s: zip: byte %llu: bad central directory entry signature",
                         z->label, (unsigned long long)at);
    uint16_t flags = rd16(c + 8), method = rd16(c + 10);
    uint32_t crc = rd32(c + 16);
    uint64_t csize = rd32(c + 20), usize = rd32(c + 24);
    size_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
    uint32_t disk = rd16(c + 34);
    uint64_t lho = rd32(c + 42);
    if (cd_end - at - CENTRAL_LEN < (uint64_t)nlen + xlen + clen)
        return rwkv_fail(err, "%s: zip: byte %llu: central directory entry runs past the directory",
                         z->label, (unsigned long long)at);
    const char *name = (const char *)c + CENTRAL_LEN;
    rwkv_quote(&q, name, nlen);
    if (apply_zip64_extra(c + CENTRAL_LEN + nlen, xlen, &usize, &csize, &lho, disk) != 0)
        return rwkv_fail(err, "%s: zip: byte %llu: entry '%s': missing or malformed zip64 extra field",
                         z->label, (unsigned long long)at, q.s);
    if (flags & 1u)
        return rwkv_fail(err, "%s: zip: byte %llu: entry '%s' is encrypted", z->label,
                         (unsigned long long)at, q.s);
    if (method != 0)
        return rwkv_fail(err,
                         "%s: zip: byte %llu: entry '%s' is compressed (method %u); torch.save "
                         "writes stored entries",
                         z->label, (unsigned long long)at, q.s, (unsigned)method);
    if (csize != usize)
        return rwkv_fail(err,
                         "%s: zip: byte %llu: stored entry '%s' has compressed size %llu != size "
                         "%llu",
                         z->label, (unsigned long long)at, q.s, (unsigned long long)csize,
                         (unsigned long long)usize);
    if (disk != 0 && disk != 0xFFFFu)
        return rwkv_fail(err, "%s: zip: byte %llu: entry '%s' is on disk %u", z->label,
                         (unsigned long long)at, q.s, (unsigned)disk);
    /* the local header and the data must lie before the central directory */
    if (lho > cd->offset || cd->offset - lho < LOCAL_LEN)
        return rwkv_fail(err,
                         "%s: zip: byte %llu: entry '%s': local header offset %llu is outside "
                         "the data area",
                         z->label, (unsigned long long)at, q.s, (unsigned long long)lho);
    const unsigned char *l = b + lho;
    if (rd32(l) != SIG_LOCAL)
        return rwkv_fail(err, "%s: zip: byte %llu: entry '%s': bad local header signature",
                         z->label, (unsigned long long)lho, q.s);
    uint64_t lnlen = rd16(l + 26), lxlen = rd16(l + 28);
    uint64_t data = lho + LOCAL_LEN + lnlen + lxlen;
    if (rd16(l + 8) != 0)
        return rwkv_fail(err,
                         "%s: zip: byte %llu: entry '%s' is compressed (method %u) in its local "
                         "header; torch.save writes stored entries",
                         z->label, (unsigned long long)lho, q.s, (unsigned)rd16(l + 8));
    if (data > cd->offset || lnlen != nlen)
        return rwkv_fail(err, "%s: zip: byte %llu: entry '%s': local header does not match the "
                              "central directory",
                         z->label, (unsigned long long)lho, q.s);
    if (memcmp(l + LOCAL_LEN, name, nlen) != 0)
        return rwkv_fail(err, "%s: zip: byte %llu: entry '%s': local header names another entry",
                         z->label, (unsigned long long)lho, q.s);
    if (usize > cd->offset - data)
        return rwkv_fail(err,
                         "%s: zip: byte %llu: entry '%s': %llu bytes of data run past the data "
                         "area (ends at byte %llu)",
                         z->label, (unsigned long long)data, q.s, (unsigned long long)usize,
                         (unsigned long long)cd->offset);
    out->name = name;
    out->name_len = nlen;
    out->data = b + data;
    out->size = usize;
    out->data_offset = data;
    out->central_offset = at;
    out->crc = crc;
    *pos = at + CENTRAL_LEN + nlen + xlen + clen;
    return 0;
}

int rwkv_zip_open(rwkv_zip *z, const char *label, const void *buf, size_t len, rwkv_error *err)
{
    memset(z, 0, sizeof *z);
    z->label = label;
    z->buf = buf;
    z->len = len;
    cd_span cd = {0, 0, 0, 0};
    if (find_directory(z, &cd, err) != 0)
        return -1;
    size_t n = (size_t)cd.count; /* <= len / 46: fits */
    z->entries = calloc(n ? n : 1, sizeof *z->entries);
    z->sorted = calloc(n ? n : 1, sizeof *z->sorted);
    if (!z->entries || !z->sorted) {
        rwkv_zip_close(z);
        return rwkv_fail(err, "%s: zip: out of memory for %zu entries", label, n);
    }
    uint64_t pos = cd.offset;
    for (size_t i = 0; i < n; i++) {
        if (read_entry(z, &cd, &pos, &z->entries[i], err) != 0) {
            rwkv_zip_close(z);
            return -1;
        }
        z->sorted[i] = i;
    }
    z->count = n;
    qsort_r(z->sorted, n, sizeof *z->sorted, cmp_names, z->entries);
    for (size_t i = 1; i < n; i++) {
        if (cmp_names(&z->sorted[i - 1], &z->sorted[i], z->entries) == 0) {
            const rwkv_zip_entry *e = &z->entries[z->sorted[i]];
            rwkv_quoted q;
            rwkv_fail(err, "%s: zip: duplicate entry '%s'", label,
                      rwkv_quote(&q, e->name, e->name_len));
            rwkv_zip_close(z);
            return -1;
        }
    }
    return 0;
}

void rwkv_zip_close(rwkv_zip *z)
{
    if (!z)
        return;
    free(z->entries);
    free(z->sorted);
    z->entries = NULL;
    z->sorted = NULL;
    z->count = 0;
}

const rwkv_zip_entry *rwkv_zip_find(const rwkv_zip *z, const char *name, size_t name_len)
{
    size_t lo = 0, hi = z->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const rwkv_zip_entry *e = &z->entries[z->sorted[mid]];
        size_t n = e->name_len < name_len ? e->name_len : name_len;
        int c = memcmp(e->name, name, n);
        if (c == 0)
            c = (e->name_len > name_len) - (e->name_len < name_len);
        if (c == 0)
            return e;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int rwkv_zip_check_crc(const rwkv_zip *z, const rwkv_zip_entry *e, rwkv_error *err)
{
    uint32_t got = rwkv_crc32(0, e->data, (size_t)e->size);
    if (got == e->crc)
        return 0;
    rwkv_quoted q;
    return rwkv_fail(err,
                     "%s: zip: entry '%s' (byte %llu, %llu bytes): CRC-32 is %08x, the directory "
                     "says %08x (corrupt or truncated file)",
                     z->label, rwkv_quote(&q, e->name, e->name_len),
                     (unsigned long long)e->data_offset, (unsigned long long)e->size, got, e->crc);
}
