/* segmenter.c — see core/segments.h.
 *
 * The delimiter is found with a Knuth-Morris-Pratt automaton whose state
 * (bytes matched so far) is one small integer, so a delimiter cut across
 * tokens, blocks or messages is found without keeping any bytes; a
 * one-byte delimiter (lines) takes a memchr fast path.
 *
 * Serialised form (RWKV_SEGMENTER_BYTES, little-endian):
 *     0 16 delimiter (bytes past its length 0)   64 8 tokens seen
 *    16  1 delimiter length (1..16)              72 8 open segment's first token
 *    17  1 matched delimiter bytes (< length)    80 8 scored tokens in it
 *    18  2 text cap (<= 256)                     88 8 surprisal sum (f64)
 *    20  2 text bytes kept (= min(cap, bytes in the open segment))
 *    22  2 zero
 *    24  8 anomaly quantile (f64, in (0,1))      96 4 surprisal max (f32)
 *    32  8 warm-up                              100 4 zero
 *    40  8 open segment's index                 104 8 max position
 *    48  8 bytes seen                           112 16 zero
 *    56  8 open segment's first byte            128 256 the kept text (zero after it)
 *                                               384 quantile sketch
 */
#include "core/segments.h"

#include <math.h>
#include <string.h>

#include "core/le.h"

void rwkv_seg_config_lines(rwkv_seg_config *c)
{
    memset(c, 0, sizeof *c);
    c->delim[0] = '\n';
    c->delim_len = 1;
    c->anomaly_quantile = RWKV_SEG_QUANTILE_DEFAULT;
    c->warmup = RWKV_SEG_WARMUP_DEFAULT;
}

int rwkv_seg_config_check(const rwkv_seg_config *c, rwkv_error *err)
{
    if (c->delim_len < 1 || c->delim_len > RWKV_SEG_DELIM_MAX)
        return rwkv_fail(err, "segment delimiter of %u bytes, must be 1..%d", c->delim_len,
                         RWKV_SEG_DELIM_MAX);
    if (!(c->anomaly_quantile > 0 && c->anomaly_quantile < 1))
        return rwkv_fail(err, "anomaly_quantile %g is not in (0, 1)", c->anomaly_quantile);
    if (c->text_cap > RWKV_SEG_TEXT_MAX)
        return rwkv_fail(err, "segment_text %u is above %d", c->text_cap, RWKV_SEG_TEXT_MAX);
    return 0;
}

bool rwkv_seg_config_equal(const rwkv_seg_config *a, const rwkv_seg_config *b)
{
    return a->delim_len == b->delim_len && memcmp(a->delim, b->delim, a->delim_len) == 0 &&
           a->anomaly_quantile == b->anomaly_quantile && a->warmup == b->warmup &&
           a->text_cap == b->text_cap;
}

static void build_fail(rwkv_segmenter *s)
{
    const uint8_t *d = s->cfg.delim;
    s->fail[0] = 0;
    for (size_t i = 1, k = 0; i < s->cfg.delim_len; i++) {
        while (k > 0 && d[i] != d[k])
            k = s->fail[k - 1];
        if (d[i] == d[k])
            k++;
        s->fail[i] = (uint8_t)k;
    }
}

static void open_next(rwkv_segmenter *s)
{
    s->index++;
    s->byte_start = s->byte_pos;
    s->tok_start = s->tok_pos;
    s->n_scored = 0;
    s->sum = 0;
    s->max = 0;
    s->max_pos = 0;
    s->match = 0;
    s->text_len = 0;
}

int rwkv_segmenter_init(rwkv_segmenter *s, const rwkv_seg_config *cfg, rwkv_error *err)
{
    if (rwkv_seg_config_check(cfg, err) != 0)
        return -1;
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    memset(s->cfg.delim + cfg->delim_len, 0, RWKV_SEG_DELIM_MAX - cfg->delim_len);
    build_fail(s);
    rwkv_qsketch_init(&s->sketch);
    return 0;
}

/* Finishes the open segment (ending at byte_pos, token tok_pos) and opens the next. */
static int close_segment(rwkv_segmenter *s, rwkv_segment_fn fn, void *ctx)
{
    rwkv_segment g = {.index = s->index,
                      .byte_start = s->byte_start,
                      .byte_end = s->byte_pos,
                      .tok_start = s->tok_start,
                      .tok_end = s->tok_pos,
                      .n_scored = s->n_scored,
                      .surprisal_sum = s->sum,
                      .surprisal_max = s->max,
                      .max_pos = s->max_pos,
                      .text_len = s->text_len};
    memcpy(g.text, s->text, s->text_len);
    if (s->n_scored > 0) {
        double mean = s->sum / (double)s->n_scored;
        if (s->sketch.n > 0) {
            g.has_score = true;
            g.score = rwkv_qsketch_rank(&s->sketch, mean);
            g.anomalous = s->sketch.n >= s->cfg.warmup && g.score > s->cfg.anomaly_quantile;
        }
        rwkv_qsketch_add(&s->sketch, mean);
    }
    open_next(s);
    return fn(ctx, &g);
}

static int scan(rwkv_segmenter *s, const uint8_t *bytes, size_t len, rwkv_segment_fn fn,
                void *ctx);

/* Appends to the open segment's kept text what fits under the cap. */
static void keep(rwkv_segmenter *s, const uint8_t *p, size_t n)
{
    size_t room = s->cfg.text_cap - s->text_len;
    if (n > room)
        n = room;
    memcpy(s->text + s->text_len, p, n);
    s->text_len = (uint16_t)(s->text_len + n);
}

int rwkv_segmenter_token(rwkv_segmenter *s, const uint8_t *bytes, size_t len, float surprisal,
                         rwkv_segment_fn fn, void *ctx)
{
    /* the token belongs to the segment open at its first byte */
    if (isfinite(surprisal)) {
        if (s->n_scored == 0 || surprisal > s->max) {
            s->max = surprisal;
            s->max_pos = s->tok_pos;
        }
        s->sum += surprisal;
        s->n_scored++;
    }
    s->tok_pos++;
    if (s->cfg.text_cap == 0)
        return scan(s, bytes, len, fn, ctx);
    /* with text kept: the open segment's first bytes, piece by piece between
     * the delimiters (scan closes segments; keep() sees each piece first) */
    size_t i = 0;
    while (i < len) {
        size_t n = 1;
        if (s->cfg.delim_len == 1) {
            const uint8_t *hit = memchr(bytes + i, s->cfg.delim[0], len - i);
            n = hit ? (size_t)(hit - (bytes + i)) + 1 : len - i;
        }
        keep(s, bytes + i, n);
        int rc = scan(s, bytes + i, n, fn, ctx);
        if (rc != 0)
            return rc;
        i += n;
    }
    return 0;
}

/* Delimiter search over token bytes; closes the segments they end. */
static int scan(rwkv_segmenter *s, const uint8_t *bytes, size_t len, rwkv_segment_fn fn,
                void *ctx)
{
    const uint8_t *d = s->cfg.delim;
    size_t dl = s->cfg.delim_len;
    size_t i = 0;
    while (i < len) {
        if (dl == 1) {
            const uint8_t *hit = memchr(bytes + i, d[0], len - i);
            if (!hit) {
                s->byte_pos += len - i;
                return 0;
            }
            size_t step = (size_t)(hit - (bytes + i)) + 1;
            s->byte_pos += step;
            i += step;
            int rc = close_segment(s, fn, ctx);
            if (rc != 0)
                return rc;
            continue;
        }
        uint8_t c = bytes[i++];
        s->byte_pos++;
        uint32_t m = s->match;
        while (m > 0 && d[m] != c)
            m = s->fail[m - 1];
        if (d[m] == c)
            m++;
        s->match = m;
        if (m == dl) {
            int rc = close_segment(s, fn, ctx);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int rwkv_segmenter_finish(rwkv_segmenter *s, rwkv_segment_fn fn, void *ctx)
{
    if (s->byte_pos > s->byte_start)
        return close_segment(s, fn, ctx);
    return 0;
}

static void putf64(uint8_t *p, double x)
{
    uint64_t v;
    memcpy(&v, &x, 8);
    rwkv_put64(p, v);
}

static double getf64(const uint8_t *p)
{
    uint64_t v = rwkv_get64(p);
    double x;
    memcpy(&x, &v, 8);
    return x;
}

void rwkv_segmenter_store(const rwkv_segmenter *s, uint8_t *out)
{
    memset(out, 0, 128);
    memcpy(out, s->cfg.delim, s->cfg.delim_len);
    out[16] = s->cfg.delim_len;
    out[17] = (uint8_t)s->match;
    out[18] = (uint8_t)s->cfg.text_cap;
    out[19] = (uint8_t)(s->cfg.text_cap >> 8);
    out[20] = (uint8_t)s->text_len;
    out[21] = (uint8_t)(s->text_len >> 8);
    putf64(out + 24, s->cfg.anomaly_quantile);
    rwkv_put64(out + 32, s->cfg.warmup);
    rwkv_put64(out + 40, s->index);
    rwkv_put64(out + 48, s->byte_pos);
    rwkv_put64(out + 56, s->byte_start);
    rwkv_put64(out + 64, s->tok_pos);
    rwkv_put64(out + 72, s->tok_start);
    rwkv_put64(out + 80, s->n_scored);
    putf64(out + 88, s->sum);
    uint32_t mx;
    memcpy(&mx, &s->max, 4);
    for (int i = 0; i < 4; i++)
        out[96 + i] = (uint8_t)(mx >> (8 * i));
    rwkv_put64(out + 104, s->max_pos);
    memset(out + 128, 0, RWKV_SEG_TEXT_MAX);
    memcpy(out + 128, s->text, s->text_len);
    rwkv_qsketch_store(&s->sketch, out + 128 + RWKV_SEG_TEXT_MAX);
}

static bool zeros(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

int rwkv_segmenter_load(rwkv_segmenter *s, const uint8_t *in, size_t len, const char *label,
                        rwkv_error *err)
{
    if (len != RWKV_SEGMENTER_BYTES)
        return rwkv_fail(err, "%s: segment state of %zu bytes, expected %d", label, len,
                         RWKV_SEGMENTER_BYTES);
    rwkv_segmenter t;
    memset(&t, 0, sizeof t);
    unsigned dl = in[16];
    if (dl < 1 || dl > RWKV_SEG_DELIM_MAX)
        return rwkv_fail(err, "%s: offset 16: segment delimiter length %u, must be 1..%d",
                         label, dl, RWKV_SEG_DELIM_MAX);
    if (!zeros(in + dl, RWKV_SEG_DELIM_MAX - dl))
        return rwkv_fail(err, "%s: offset %u: bytes after the delimiter are not zero", label, dl);
    if (in[17] >= dl)
        return rwkv_fail(err, "%s: offset 17: %u delimiter bytes matched, but it has %u", label,
                         in[17], dl);
    if (!zeros(in + 22, 2) || !zeros(in + 100, 4) || !zeros(in + 112, 16))
        return rwkv_fail(err, "%s: offset 22: reserved segment state bytes are not zero", label);
    memcpy(t.cfg.delim, in, dl);
    t.cfg.delim_len = (uint8_t)dl;
    t.match = in[17];
    t.cfg.anomaly_quantile = getf64(in + 24);
    t.cfg.warmup = rwkv_get64(in + 32);
    t.cfg.text_cap = (uint16_t)(in[18] | in[19] << 8);
    t.text_len = (uint16_t)(in[20] | in[21] << 8);
    if (rwkv_seg_config_check(&t.cfg, err) != 0)
        return rwkv_fail_prefix(err, "%s: offset 24", label);
    t.index = rwkv_get64(in + 40);
    t.byte_pos = rwkv_get64(in + 48);
    t.byte_start = rwkv_get64(in + 56);
    t.tok_pos = rwkv_get64(in + 64);
    t.tok_start = rwkv_get64(in + 72);
    t.n_scored = rwkv_get64(in + 80);
    t.sum = getf64(in + 88);
    uint32_t mx = (uint32_t)in[96] | (uint32_t)in[97] << 8 | (uint32_t)in[98] << 16 |
                  (uint32_t)in[99] << 24;
    memcpy(&t.max, &mx, 4);
    t.max_pos = rwkv_get64(in + 104);
    if (t.byte_pos > RWKV_SEG_OFFSET_MAX)
        return rwkv_fail(err, "%s: offset 48: %llu bytes seen, above %llu", label,
                         (unsigned long long)t.byte_pos, (unsigned long long)RWKV_SEG_OFFSET_MAX);
    if (t.byte_start > t.byte_pos || t.tok_start > t.tok_pos || t.tok_pos > t.byte_pos ||
        t.tok_pos - t.tok_start > t.byte_pos - t.byte_start)
        return rwkv_fail(err, "%s: offset 48: segment offsets out of order (bytes %llu/%llu, "
                         "tokens %llu/%llu)", label, (unsigned long long)t.byte_start,
                         (unsigned long long)t.byte_pos, (unsigned long long)t.tok_start,
                         (unsigned long long)t.tok_pos);
    if (t.index > t.byte_start || t.match > t.byte_pos - t.byte_start)
        return rwkv_fail(err, "%s: offset 40: segment index or delimiter match beyond the bytes "
                         "seen", label);
    if (t.n_scored > t.tok_pos - t.tok_start)
        return rwkv_fail(err, "%s: offset 80: %llu scored tokens in a segment of %llu", label,
                         (unsigned long long)t.n_scored,
                         (unsigned long long)(t.tok_pos - t.tok_start));
    if (t.n_scored == 0 ? (t.sum != 0 || t.max != 0 || t.max_pos != 0)
                        : (!isfinite(t.sum) || t.sum < 0 || !isfinite(t.max) || t.max < 0 ||
                           t.max_pos < t.tok_start || t.max_pos >= t.tok_pos))
        return rwkv_fail(err, "%s: offset 88: segment surprisal figures inconsistent", label);
    uint64_t open_bytes = t.byte_pos - t.byte_start;
    if (t.text_len != (open_bytes < t.cfg.text_cap ? open_bytes : t.cfg.text_cap) ||
        !zeros(in + 128 + t.text_len, RWKV_SEG_TEXT_MAX - t.text_len))
        return rwkv_fail(err, "%s: offset 20: %u text bytes kept, but the open segment has "
                         "%llu bytes and the cap is %u (or stray bytes after them)", label,
                         t.text_len, (unsigned long long)open_bytes, t.cfg.text_cap);
    memcpy(t.text, in + 128, t.text_len);
    if (rwkv_qsketch_load(&t.sketch, in + 128 + RWKV_SEG_TEXT_MAX,
                          len - 128 - RWKV_SEG_TEXT_MAX, label, err) != 0)
        return -1;
    build_fail(&t);
    *s = t;
    return 0;
}
