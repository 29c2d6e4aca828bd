/* bpe_text.c — the Unicode the BPE pipeline needs: lossy UTF-8 decoding,
 * the character classes of the ByteLevel split pattern, and NFC.
 *
 * The Unicode data comes from utf8proc (Debian libutf8proc): categories for
 * \p{L} and \p{N}, canonical combining classes, decompositions and the
 * composition table.  Only the White_Space list is ours, because the
 * reference's \s is Oniguruma's (the White_Space property), which no library
 * call gives directly and which differs from PCRE2's, Python's and
 * JavaScript's \s; the fixtures probe it.
 *
 * NFC is done per "unit": a code point that starts an NFC boundary
 * (bpe_nfc_boundary) and the code points after it that do not.  A unit of one
 * code point without a canonical decomposition is already NFC (most text:
 * ASCII, CJK, Hangul syllables); other units are decomposed with utf8proc,
 * put in canonical order by our own stable sort (utf8proc's own sort is
 * quadratic in the number of marks, and a hostile text can be nothing but
 * marks), and composed with utf8proc_normalize_utf32.
 *
 * Invalid UTF-8: the reference only takes strings, so we define encode(bytes)
 * as encode(from_utf8_lossy(bytes)): each maximal invalid subpart is U+FFFD.
 */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/tokenize/bpe_internal.h"
#include "core/utf8.h"

size_t bpe_utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t need;
    uint8_t lo, hi;
    if (rwkv_utf8_lead(c, &need, &lo, &hi) != 0) {
        *cp = 0xFFFD;
        return 1;
    }
    /* the lead's payload bits: 5, 4 or 3 of them */
    uint32_t v = c & (0x3Fu >> need);
    size_t i = 1;
    for (; i <= need && i < n; i++) {
        uint8_t d = s[i];
        if (d < lo || d > hi)
            break;
        v = (v << 6) | (d & 0x3F);
        lo = 0x80;
        hi = 0xBF;
    }
    if (i <= need) { /* truncated or broken: the valid prefix is one U+FFFD */
        *cp = 0xFFFD;
        return i;
    }
    *cp = v;
    return need + 1;
}

size_t bpe_utf8_put(uint32_t cp, uint8_t *d)
{
    if (cp < 0x80) {
        d[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (uint8_t)(0xC0 | (cp >> 6));
        d[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (uint8_t)(0xE0 | (cp >> 12));
        d[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (uint8_t)(0xF0 | (cp >> 18));
    d[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---------------------------------------------------------------- classes */

#define P_ BPE_P
#define S_ BPE_S
#define N_ BPE_N
#define L_ BPE_L
const uint8_t bpe_ascii_class[128] = {
    P_, P_, P_, P_, P_, P_, P_, P_, P_, S_, S_, S_, S_, S_, P_, P_, /* 0x00 */
    P_, P_, P_, P_, P_, P_, P_, P_, P_, P_, P_, P_, P_, P_, P_, P_, /* 0x10 */
    S_, P_, P_, P_, P_, P_, P_, P_, P_, P_, P_, P_, P_, P_, P_, P_, /* 0x20 */
    N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, P_, P_, P_, P_, P_, P_, /* 0x30 */
    P_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, /* 0x40 */
    L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, P_, P_, P_, P_, P_, /* 0x50 */
    P_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, /* 0x60 */
    L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, P_, P_, P_, P_, P_, /* 0x70 */
};
#undef P_
#undef S_
#undef N_
#undef L_

static bool white_space(uint32_t cp)
{
    /* Unicode White_Space (PropList.txt), which is Oniguruma's \s */
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

int bpe_class(uint32_t cp)
{
    if (cp < 0x80)
        return bpe_ascii_class[cp];
    if (white_space(cp))
        return BPE_S;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return BPE_L;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return BPE_N;
    default:
        return BPE_P;
    }
}

/* ---------------------------------------------------------------- NFC */

static bool hangul_vt(uint32_t cp)
{
    return (cp >= 0x1161 && cp <= 0x1175) || (cp >= 0x11A8 && cp <= 0x11C2);
}

/* A starter that never composes with what precedes it. */
static bool quiet_starter(uint32_t cp, const utf8proc_property_t *p)
{
    if (p->combining_class != 0 || hangul_vt(cp))
        return false;
    /* utf8proc 2.8: comb_index >= 0x8000 marks a second of a composition */
    return p->comb_index == UINT16_MAX || !(p->comb_index & 0x8000);
}

static bool canonical_decomposition(const utf8proc_property_t *p)
{
    return p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0;
}

bool bpe_nfc_inert(uint32_t cp)
{
    return cp < 0xC0 || !canonical_decomposition(utf8proc_get_property((utf8proc_int32_t)cp));
}

bool bpe_nfc_boundary(uint32_t cp)
{
    if (cp < 0x300) /* nothing below U+0300 combines backwards or decomposes to a mark */
        return true;
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    if (!quiet_starter(cp, p))
        return false;
    if (!canonical_decomposition(p))
        return true;
    utf8proc_int32_t d[8];
    int bc = 0;
    utf8proc_ssize_t k = utf8proc_decompose_char((utf8proc_int32_t)cp, d, 8,
                                                 UTF8PROC_DECOMPOSE, &bc);
    if (k < 1 || k > 8)
        return false;
    return quiet_starter((uint32_t)d[0], utf8proc_get_property(d[0]));
}

int bpe_buf_reserve(bpe_buf *b, size_t extra, rwkv_error *err)
{
    if (extra <= b->cap - b->n)
        return 0;
    if (extra > SIZE_MAX / 4 - b->n)
        return rwkv_fail(err, "bpe: buffer size overflow");
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->n < extra)
        cap *= 2;
    uint8_t *nb = realloc(b->b, cap);
    if (!nb)
        return rwkv_fail(err, "bpe: out of memory for %zu bytes", cap);
    b->b = nb;
    b->cap = cap;
    return 0;
}

void bpe_scratch_free(bpe_scratch *sc)
{
    if (!sc)
        return;
    free(sc->cps.v);
    free(sc->tmp.v);
    free(sc->norm.b);
    free(sc->ccc.b);
    memset(sc, 0, sizeof *sc);
}

int bpe_u32_reserve(bpe_u32 *b, size_t extra, rwkv_error *err)
{
    if (extra <= b->cap - b->n)
        return 0;
    if (extra > SIZE_MAX / 16 - b->n)
        return rwkv_fail(err, "bpe: buffer size overflow");
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->n < extra)
        cap *= 2;
    uint32_t *nv = realloc(b->v, cap * sizeof *nv);
    if (!nv)
        return rwkv_fail(err, "bpe: out of memory for %zu code points", cap);
    b->v = nv;
    b->cap = cap;
    return 0;
}

/* Stable sort of v[0..n) by key k[0..n) (canonical ordering of one run of
 * non-starters): insertion sort for short runs, counting sort otherwise.
 * The keys are not needed afterwards and are left as they are by the
 * counting sort. */
static int sort_marks(uint32_t *v, uint8_t *k, size_t n, rwkv_error *err)
{
    if (n < 2)
        return 0;
    if (n <= 32) {
        for (size_t i = 1; i < n; i++) {
            uint32_t cv = v[i];
            uint8_t ck = k[i];
            size_t j = i;
            for (; j > 0 && k[j - 1] > ck; j--) {
                v[j] = v[j - 1];
                k[j] = k[j - 1];
            }
            v[j] = cv;
            k[j] = ck;
        }
        return 0;
    }
    uint32_t *tv = malloc(n * sizeof *tv);
    if (!tv)
        return rwkv_fail(err, "bpe: out of memory sorting %zu marks", n);
    size_t count[257] = {0};
    for (size_t i = 0; i < n; i++)
        count[k[i] + 1]++;
    for (int c = 1; c < 257; c++)
        count[c] += count[c - 1];
    for (size_t i = 0; i < n; i++)
        tv[count[k[i]]++] = v[i];
    memcpy(v, tv, n * sizeof *v);
    free(tv);
    return 0;
}

/* NFC of one unit cps[0..n) appended to out. */
static int nfc_unit(const uint32_t *cps, size_t n, bpe_buf *out, bpe_u32 *tmp, bpe_buf *ccc,
                    rwkv_error *err)
{
    tmp->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (bpe_u32_reserve(tmp, 8, err) != 0)
            return -1;
        int bc = 0;
        utf8proc_ssize_t k = utf8proc_decompose_char((utf8proc_int32_t)cps[i],
                                                     (utf8proc_int32_t *)tmp->v + tmp->n, 8,
                                                     UTF8PROC_DECOMPOSE, &bc);
        if (k < 1 || k > 8)
            return rwkv_fail(err, "bpe: cannot decompose U+%04X (internal error)", cps[i]);
        tmp->n += (size_t)k;
    }
    ccc->n = 0;
    if (bpe_buf_reserve(ccc, tmp->n, err) != 0)
        return -1;
    for (size_t i = 0; i < tmp->n; i++)
        ccc->b[i] = (uint8_t)utf8proc_get_property((utf8proc_int32_t)tmp->v[i])->combining_class;
    for (size_t i = 0; i < tmp->n;) { /* canonical order: sort each run of non-starters */
        if (ccc->b[i] == 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < tmp->n && ccc->b[j] != 0)
            j++;
        if (sort_marks(tmp->v + i, ccc->b + i, j - i, err) != 0)
            return -1;
        i = j;
    }
    utf8proc_ssize_t m = utf8proc_normalize_utf32((utf8proc_int32_t *)tmp->v,
                                                  (utf8proc_ssize_t)tmp->n,
                                                  UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (m < 0 || (size_t)m > tmp->n)
        return rwkv_fail(err, "bpe: NFC composition failed (internal error)");
    if (bpe_buf_reserve(out, (size_t)m * 4, err) != 0)
        return -1;
    for (utf8proc_ssize_t i = 0; i < m; i++)
        out->n += bpe_utf8_put(tmp->v[i], out->b + out->n);
    return 0;
}

int bpe_nfc(const uint32_t *cps, size_t n, bpe_buf *out, bpe_u32 *tmp, bpe_buf *ccc,
            rwkv_error *err)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && !bpe_nfc_boundary(cps[j]))
            j++;
        uint32_t cp = cps[i];
        if (j == i + 1 && bpe_nfc_inert(cp)) {
            if (bpe_buf_reserve(out, 4, err) != 0)
                return -1;
            out->n += bpe_utf8_put(cp, out->b + out->n);
        } else if (nfc_unit(cps + i, j - i, out, tmp, ccc, err) != 0) {
            return -1;
        }
        i = j;
    }
    return 0;
}
