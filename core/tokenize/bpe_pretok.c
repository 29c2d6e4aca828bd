/* bpe_pretok.c — normalized text -> words: the runs-of-spaces added tokens,
 * then the ByteLevel split pattern on each piece between them.
 *
 * The pattern of the reference (Oniguruma, alternatives tried in order at
 * each position, first match wins, find-all with no gaps):
 *
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * It is small enough to match by hand, which is faster than a regex engine
 * and leaves no doubt about \s (White_Space, bpe_text.c) or about what the
 * lookahead sees: only the piece, never text past an added token.  The
 * optional prefix is U+0020 only; `\s+(?!\S)` leaves the last whitespace
 * character of a run for the next word when a non-space follows, and takes
 * the whole run at the end of the piece.
 *
 * Runs of spaces (when the file has the 2..K-space added tokens): a run of k
 * spaces gives floor(k/K) tokens of K spaces and one of k mod K spaces when
 * that is 2 or more (leftmost-longest matching); a single leftover space stays
 * in the text and starts the next piece.  A lone space is plain text.
 */
#include <string.h>

#include "core/tokenize/bpe_internal.h"

/* Class and byte length of the character at s[i] (i < n). */
static inline int class_at(const uint8_t *s, size_t n, size_t i, size_t *len)
{
    uint8_t c = s[i];
    if (c < 0x80) {
        *len = 1;
        return bpe_ascii_class[c];
    }
    uint32_t cp;
    *len = bpe_utf8_next(s + i, n - i, &cp);
    return bpe_class(cp);
}

/* End of the run of class cls that starts at i. */
static size_t run_end(const uint8_t *s, size_t n, size_t i, int cls)
{
    size_t len;
    while (i < n && class_at(s, n, i, &len) == cls)
        i += len;
    return i;
}

/* End of the pattern's match at s[i] (i < n). */
static size_t match_at(const uint8_t *s, size_t n, size_t i)
{
    uint8_t c0 = s[i];
    if (c0 == '\'' && i + 1 < n) {
        uint8_t c1 = s[i + 1];
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
            return i + 2;
        if (i + 2 < n && (((c1 == 'r' || c1 == 'v') && s[i + 2] == 'e') ||
                          (c1 == 'l' && s[i + 2] == 'l')))
            return i + 3;
    }
    size_t len;
    if (c0 == ' ' && i + 1 < n) {
        int c = class_at(s, n, i + 1, &len);
        if (c != BPE_S)
            return run_end(s, n, i + 1, c);
    } else {
        int c = class_at(s, n, i, &len);
        if (c != BPE_S)
            return run_end(s, n, i, c);
    }
    /* whitespace: \s+(?!\S), else \s+ */
    size_t last = i, r = i;
    while (r < n && class_at(s, n, r, &len) == BPE_S) {
        last = r;
        r += len;
    }
    if (r == n)
        return n;
    return last > i ? last : r;
}

static int split(const uint8_t *s, size_t n, const bpe_sink *sink)
{
    for (size_t i = 0; i < n;) {
        size_t e = match_at(s, n, i);
        int rc = sink->word(sink->ctx, s + i, e - i);
        if (rc != 0)
            return rc;
        i = e;
    }
    return 0;
}

int bpe_pretokenize(const bpe_model *m, const uint8_t *s, size_t n, const bpe_sink *sink)
{
    size_t k_max = m->space_max, piece = 0, i = 0;
    while (k_max >= 2 && i + 1 < n) {
        const uint8_t *sp = memchr(s + i, ' ', n - i - 1);
        if (!sp)
            break;
        size_t r = (size_t)(sp - s);
        if (s[r + 1] != ' ') {
            i = r + 1;
            continue;
        }
        size_t e = r + 2;
        while (e < n && s[e] == ' ')
            e++;
        int rc = split(s + piece, r - piece, sink);
        if (rc != 0)
            return rc;
        size_t k = e - r;
        for (size_t full = k / k_max; full > 0; full--)
            if ((rc = sink->token(sink->ctx, m->space_id[k_max])) != 0)
                return rc;
        size_t rest = k % k_max;
        if (rest >= 2 && (rc = sink->token(sink->ctx, m->space_id[rest])) != 0)
            return rc;
        piece = rest == 1 ? e - 1 : e;
        i = e;
    }
    return split(s + piece, n - piece, sink);
}
