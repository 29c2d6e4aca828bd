/* bpe_cut.c — where the text may be cut into independently encoded chunks,
 * and the matching of added tokens on the raw text.
 *
 * A position P of a chunk is a natural cut point when encode(A ++ B) ==
 * encode(A) ++ encode(B) for every A that ends like the chunk before P and
 * every B that starts like the text at P.  Let b be the character at P, and
 * a, a' the last two characters of NFC(A) (within the chunk).  P is a cut
 * point when it is a character boundary (lossy UTF-8) that no raw added token
 * straddles, and one of:
 *
 *  1. a raw added token (<|endoftext|>) starts or ends at P: the reference
 *     splits the text there before anything else;
 *  2. NFC leaves the boundary alone (bpe_nfc_boundary(b)), and
 *     a. A ends with k >= 1 spaces and the file has the 2..K-space tokens:
 *        k mod K != 1, and b is not a space unless k mod K == 0.  The spaces
 *        all went into added tokens, which end a piece, and no run of spaces
 *        crosses P (a run of K spaces is always one token, counted from the
 *        run's start, so multiples of K are safe even inside a run);
 *     b. A does not end with a space and, by class (\p{L}, \p{N}, \s, other):
 *        class(a) != class(b) (no run of the pattern continues across P), a
 *        is not an apostrophe before a letter (a contraction could form), and
 *        if a is whitespace, a' is not (then a is a one-character run, which
 *        is one word whether or not a non-space follows; a longer run ends
 *        differently at the end of a piece than before a letter).
 *
 * NFC never changes the class of the first character of B (canonical
 * decompositions keep the class of their first code point: checked for all
 * of Unicode when this was written), never creates or removes U+0020 or an
 * apostrophe, so b can be read raw; a comes from NFC of the last unit of A.
 * Everything is read from P's left within the chunk and at most
 * bpe_lookahead() bytes to its right (a raw added token starting at P), so
 * the streaming and the whole-text encoders agree on every cut point.  The
 * rules are checked by test_tokenizer_bpe_parts, which splits random tricky
 * texts at every cut point found and compares the ids.
 *
 * Only the last cut point in a range is wanted, so bpe_find_cut first walks
 * back from the end of the range while the bytes around P are ASCII and no
 * raw added token can be near (then a = s[P-1], a' = s[P-2], exactly what the
 * forward scan would see); otherwise, or when nothing is found within 256
 * bytes, it scans the range forward.  Prose needs a few bytes per chunk.
 */
#include "core/tokenize/bpe_internal.h"

int bpe_match_raw(const bpe_model *m, const uint8_t *s, size_t n)
{
    const bpe_added *raw = m->raw;
    const uint8_t *pool = m->added_pool;
    size_t lo = 0, hi = m->n_raw;
    int best = -1;
    for (size_t l = 1; l <= n && l <= m->raw_max_len && lo < hi; l++) {
        uint8_t c = s[l - 1];
        while (lo < hi && raw[lo].len < l) /* tokens that ended (they sort first) */
            lo++;
        size_t a = lo, b = hi;
        while (a < b) {
            size_t mid = a + (b - a) / 2;
            if (pool[raw[mid].off + l - 1] < c)
                a = mid + 1;
            else
                b = mid;
        }
        size_t first = a;
        b = hi;
        while (a < b) {
            size_t mid = a + (b - a) / 2;
            if (pool[raw[mid].off + l - 1] <= c)
                a = mid + 1;
            else
                b = mid;
        }
        lo = first;
        hi = a;
        if (lo < hi && raw[lo].len == l)
            best = (int)lo;
    }
    return best;
}

size_t bpe_lookahead(const bpe_model *m)
{
    return m->raw_max_len > 4 ? m->raw_max_len : 4;
}

size_t bpe_span(const bpe_model *m)
{
    return BPE_MAX_PENDING + 1 - bpe_lookahead(m);
}

#define NO_CHAR UINT32_MAX

/* What the rules read on the left of a candidate: the last two normalized
 * characters of the chunk so far (a, a2) with their classes, and the number
 * of raw spaces it ends with. */
typedef struct left {
    uint32_t a, a2;
    int ca, ca2;
    size_t n_sp;
} left;

static bool cut_ok(const bpe_model *m, const left *l, uint32_t b, int cb)
{
    if (l->a == NO_CHAR)
        return false;
    if (l->n_sp > 0) {
        if (m->space_max < 2)
            return false;
        size_t r = l->n_sp % m->space_max;
        if (r == 1)
            return false;
        return b != ' ' || r == 0;
    }
    if (l->ca == cb)
        return false;
    if (l->ca == BPE_S)
        return l->a2 == NO_CHAR || l->ca2 != BPE_S;
    return !(l->a == '\'' && cb == BPE_L);
}

static void push_char(left *l, uint32_t cp, int cls)
{
    l->a2 = l->a;
    l->ca2 = l->ca;
    l->a = cp;
    l->ca = cls;
}

/* Takes the last two characters of NFC(s[0..n)), a unit of A that is not a
 * single character already in NFC. */
static int unit_tail(const uint8_t *s, size_t n, left *l, bpe_scratch *sc, rwkv_error *err)
{
    sc->cps.n = 0;
    if (bpe_u32_reserve(&sc->cps, n, err) != 0)
        return -1;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += bpe_utf8_next(s + i, n - i, &cp);
        sc->cps.v[sc->cps.n++] = cp;
    }
    sc->norm.n = 0;
    if (bpe_nfc(sc->cps.v, sc->cps.n, &sc->norm, &sc->tmp, &sc->ccc, err) != 0)
        return -1;
    size_t i = 0, k = sc->norm.n;
    for (int back = 0; back < 2 && k > 0; back++) { /* start of the second-to-last char */
        k--;
        while (k > 0 && (sc->norm.b[k] & 0xC0) == 0x80)
            k--;
        if (back == 0 && k == 0)
            break;
    }
    i = k;
    while (i < sc->norm.n) {
        uint32_t cp;
        i += bpe_utf8_next(sc->norm.b + i, sc->norm.n - i, &cp);
        push_char(l, cp, bpe_class(cp));
    }
    return 0;
}

int bpe_find_cut_scan(const bpe_model *m, const uint8_t *s, size_t n, size_t lim, size_t *cut,
                      size_t *boundary, bpe_scratch *sc, rwkv_error *err)
{
    left l = {NO_CHAR, NO_CHAR, -1, -1, 0};
    uint32_t ucp = NO_CHAR; /* the unit being read, when it is one NFC character */
    int ucls = -1;
    bool simple = false;
    size_t u = 0, i = 0, last_cut = 0, last_boundary = 0;
    const bool nfc = m->nfc, any_raw = m->n_raw > 0;
    while (i < n && i <= lim) {
        uint8_t c = s[i];
        if (any_raw && (m->raw_first[c >> 3] >> (c & 7) & 1)) {
            int k = bpe_match_raw(m, s + i, n - i);
            if (k >= 0) {
                if (i > 0)
                    last_cut = i;
                i += m->raw[k].len;
                if (i <= lim)
                    last_cut = i;
                l = (left){NO_CHAR, NO_CHAR, -1, -1, 0};
                simple = false;
                u = i;
                continue;
            }
        }
        uint32_t cp = c;
        size_t len = 1;
        int cls;
        bool starts = true, inert = true;
        if (c < 0x80) {
            cls = bpe_ascii_class[c];
        } else {
            len = bpe_utf8_next(s + i, n - i, &cp);
            cls = bpe_class(cp);
            if (nfc) {
                starts = bpe_nfc_boundary(cp);
                inert = starts && bpe_nfc_inert(cp);
            }
        }
        if (i > 0)
            last_boundary = i;
        if (starts) {
            if (u < i) { /* the unit [u, i) is complete */
                if (simple)
                    push_char(&l, ucp, ucls);
                else if (unit_tail(s + u, i - u, &l, sc, err) != 0)
                    return -1;
            }
            if (i > 0 && cut_ok(m, &l, cp, cls))
                last_cut = i;
            u = i;
            ucp = cp;
            ucls = cls;
            simple = inert;
        } else {
            simple = false;
        }
        l.n_sp = cp == ' ' ? l.n_sp + 1 : 0;
        i += len;
    }
    *cut = last_cut;
    *boundary = last_boundary;
    return 0;
}

static inline bool raw_first(const bpe_model *m, uint8_t c)
{
    return m->raw_first[c >> 3] >> (c & 7) & 1;
}

/* The same rules read backwards from lim, for the common case where the
 * bytes around P are ASCII and no raw added token can touch P: then a = s[P-1],
 * a2 = s[P-2], the spaces before P are counted back, and the result equals
 * the forward scan's.  Returns 1 with *cut set, or 0 when it cannot tell
 * (then the forward scan decides). */
static int scan_back(const bpe_model *m, const uint8_t *s, size_t lim, size_t *cut)
{
    /* x is "clean" when no raw token can start, end or lie at x, x-1 or x-2,
     * i.e. no first byte of one is in [x - guard, x] */
    size_t guard = m->raw_max_len + 2;
    size_t stop = lim > 256 ? lim - 256 : 1;
    size_t z = 0; /* every x >= z is clean */
    if (m->n_raw) {
        size_t from = stop > guard ? stop - guard : 0; /* bytes below are not looked at */
        z = from > 0 ? from + guard : 0;
        for (size_t i = lim + 1; i-- > from;) {
            if (raw_first(m, s[i])) {
                if (i + guard + 1 > z)
                    z = i + guard + 1;
                break;
            }
        }
    }
    size_t q = SIZE_MAX; /* start of the run of spaces being walked down */
    for (size_t p = lim; p >= stop && p >= z && p >= 1; p--) {
        uint8_t b = s[p], a = s[p - 1];
        uint8_t a2 = p >= 2 ? s[p - 2] : 0;
        if ((b | a | a2) >= 0x80)
            return 0;
        left l = {a, p >= 2 ? a2 : NO_CHAR, bpe_ascii_class[a], p >= 2 ? bpe_ascii_class[a2] : -1,
                  0};
        if (a == ' ') {
            if (q == SIZE_MAX || q >= p) {
                q = p - 1;
                while (q > 0 && s[q - 1] == ' ')
                    q--;
            }
            if (q < z) /* the run reaches where a raw token may have reset the count */
                return 0;
            l.n_sp = p - q;
        }
        if (cut_ok(m, &l, b, bpe_ascii_class[b])) {
            *cut = p;
            return 1;
        }
    }
    return 0;
}

int bpe_find_cut(const bpe_model *m, const uint8_t *s, size_t n, size_t lim, size_t *cut,
                 size_t *boundary, bpe_scratch *sc, rwkv_error *err)
{
    if (lim < n && scan_back(m, s, lim, cut)) {
        *boundary = *cut; /* only read when there is no cut */
        return 0;
    }
    return bpe_find_cut_scan(m, s, n, lim, cut, boundary, sc, err);
}
