/* test_segments.c — the segmenter and the quantile sketch
 * (core/segments.h, core/quantile_sketch.h) against brute-force models:
 *  - segments of random texts (a small alphabet so delimiters like "aa" or
 *    "aba" overlap themselves) cut into random tokens equal a naive
 *    find-the-delimiter reference: byte and token ranges (a token belongs to
 *    the segment of its first byte), sums, maxima, their positions;
 *  - store -> load at every token gives the same segments as never stopping;
 *  - ranks equal counting over the values in 1/32-nat bins;
 *  - hostile serialised states: every field out of range is refused, random
 *    mutations never crash, whatever loads stores back to the same bytes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/segments.h"
#include "tests/testutil.h"

#define MAXSEG 4096

typedef struct {
    rwkv_segment v[MAXSEG];
    size_t n;
} segs;

static int collect(void *ctx, const rwkv_segment *g)
{
    segs *s = ctx;
    if (s->n >= MAXSEG)
        return 1;
    s->v[s->n++] = *g;
    return 0;
}

static uint64_t rng_state = 42;

static uint32_t rnd(uint32_t n)
{
    return (uint32_t)(rwkv_splitmix64(&rng_state) % n);
}

/* The reference: segments by repeated search, tokens by their first byte. */
static size_t reference(const uint8_t *text, size_t len, const size_t *tok_start, size_t n_tok,
                        const float *sur, const uint8_t *delim, size_t dl, size_t cap,
                        rwkv_segment *out)
{
    size_t n = 0, start = 0;
    while (start < len) {
        size_t end = len;
        for (size_t i = start; i + dl <= len; i++)
            if (memcmp(text + i, delim, dl) == 0) {
                end = i + dl;
                break;
            }
        rwkv_segment g = {.index = n, .byte_start = start, .byte_end = end};
        g.text_len = (uint16_t)(end - start < cap ? end - start : cap);
        memcpy(g.text, text + start, g.text_len);
        g.tok_start = n_tok;
        g.tok_end = 0;
        for (size_t t = 0; t < n_tok; t++)
            if (tok_start[t] >= start && tok_start[t] < end) {
                if (t < g.tok_start)
                    g.tok_start = t;
                g.tok_end = t + 1;
                if (!isnan(sur[t])) {
                    if (g.n_scored == 0 || sur[t] > g.surprisal_max) {
                        g.surprisal_max = sur[t];
                        g.max_pos = t;
                    }
                    g.surprisal_sum += sur[t];
                    g.n_scored++;
                }
            }
        if (g.tok_end == 0) { /* no token starts here: an empty range where the next begins */
            size_t t = 0;
            while (t < n_tok && tok_start[t] < start)
                t++;
            g.tok_start = g.tok_end = t;
        }
        out[n++] = g;
        start = end;
    }
    return n;
}

static int same(const rwkv_segment *a, const rwkv_segment *b)
{
    return a->index == b->index && a->byte_start == b->byte_start && a->byte_end == b->byte_end &&
           a->tok_start == b->tok_start && a->tok_end == b->tok_end &&
           a->n_scored == b->n_scored && a->surprisal_sum == b->surprisal_sum &&
           (a->n_scored == 0 || (a->surprisal_max == b->surprisal_max && a->max_pos == b->max_pos)) &&
           a->text_len == b->text_len && memcmp(a->text, b->text, a->text_len) == 0;
}

static void test_segments_equal_reference(void)
{
    static segs got, again;
    static rwkv_segment want[MAXSEG];
    static uint8_t text[3000];
    static size_t tok_start[3000];
    static float sur[3000];
    static uint8_t buf[RWKV_SEGMENTER_BYTES];
    const char *delims[] = {"\n", "aa", "aba", "ab", "\r\n", "abcab", "bbbbbbbbbbbbbbbb"};
    for (int round = 0; round < 300; round++) {
        const char *d = delims[round % 7];
        size_t dl = strlen(d), len = 1 + rnd(2000);
        for (size_t i = 0; i < len; i++)
            text[i] = (uint8_t)("ab\n\rc"[rnd(round % 3 == 0 ? 2 : 5)]);
        size_t n_tok = 0;
        for (size_t i = 0; i < len; n_tok++) {
            tok_start[n_tok] = i;
            sur[n_tok] = n_tok == 0 ? NAN : (float)rnd(1000) / 100.0f;
            i += 1 + rnd(round % 2 ? 1 : 6);
            if (i > len)
                i = len;
        }
        tok_start[n_tok] = len;
        rwkv_seg_config cfg;
        rwkv_seg_config_lines(&cfg);
        memcpy(cfg.delim, d, dl);
        cfg.delim_len = (uint8_t)dl;
        cfg.warmup = 2;
        cfg.text_cap = (uint16_t)(round % 4 == 0 ? 0 : round % 4 == 1 ? 256 : rnd(6));
        rwkv_segmenter s, r;
        CHECK(rwkv_segmenter_init(&s, &cfg, NULL) == 0);
        CHECK(rwkv_segmenter_init(&r, &cfg, NULL) == 0);
        got.n = again.n = 0;
        size_t stop = rnd((uint32_t)n_tok + 1);
        for (size_t t = 0; t < n_tok; t++) {
            const uint8_t *b = text + tok_start[t];
            size_t bl = tok_start[t + 1] - tok_start[t];
            CHECK(rwkv_segmenter_token(&s, b, bl, sur[t], collect, &got) == 0);
            if (t == stop) { /* a checkpoint and a restore in the middle */
                rwkv_segmenter_store(&r, buf);
                CHECK(rwkv_segmenter_load(&r, buf, sizeof buf, "t", NULL) == 0);
            }
            CHECK(rwkv_segmenter_token(&r, b, bl, sur[t], collect, &again) == 0);
        }
        CHECK(rwkv_segmenter_finish(&s, collect, &got) == 0);
        CHECK(rwkv_segmenter_finish(&r, collect, &again) == 0);
        size_t nw = reference(text, len, tok_start, n_tok, sur, (const uint8_t *)d, dl,
                              cfg.text_cap, want);
        CHECKF(got.n == nw, "round %d: %zu segments, expected %zu", round, got.n, nw);
        CHECKF(again.n == nw, "round %d: %zu after restore", round, again.n);
        for (size_t i = 0; i < nw; i++) {
            CHECKF(same(&got.v[i], &want[i]), "round %d segment %zu: bytes %llu..%llu tokens "
                   "%llu..%llu, expected %llu..%llu / %llu..%llu", round, i,
                   (unsigned long long)got.v[i].byte_start, (unsigned long long)got.v[i].byte_end,
                   (unsigned long long)got.v[i].tok_start, (unsigned long long)got.v[i].tok_end,
                   (unsigned long long)want[i].byte_start, (unsigned long long)want[i].byte_end,
                   (unsigned long long)want[i].tok_start, (unsigned long long)want[i].tok_end);
            CHECK(same(&got.v[i], &again.v[i]) && got.v[i].score == again.v[i].score &&
                  got.v[i].has_score == again.v[i].has_score &&
                  got.v[i].anomalous == again.v[i].anomalous);
        }
    }
}

static void test_scores_and_warmup(void)
{
    rwkv_seg_config cfg;
    rwkv_seg_config_lines(&cfg);
    cfg.warmup = 10;
    cfg.anomaly_quantile = 0.9;
    rwkv_segmenter s;
    CHECK(rwkv_segmenter_init(&s, &cfg, NULL) == 0);
    static segs got;
    got.n = 0;
    const uint8_t line[2] = {'x', '\n'};
    /* 20 ordinary lines (mean 1), one strange (mean 9), then ordinary again */
    for (int i = 0; i < 30; i++) {
        float v = i == 20 ? 9.0f : 1.0f;
        CHECK(rwkv_segmenter_token(&s, line, 1, v, collect, &got) == 0);
        CHECK(rwkv_segmenter_token(&s, line + 1, 1, v, collect, &got) == 0);
    }
    CHECK(got.n == 30);
    CHECK(!got.v[0].has_score); /* nothing before it */
    CHECK(got.v[1].has_score && got.v[1].score == 0.5 && !got.v[1].anomalous);
    CHECK(got.v[20].score == 1.0 && got.v[20].anomalous);
    CHECK(got.v[21].has_score && !got.v[21].anomalous);
    /* the same strange line inside the warm-up is not anomalous */
    rwkv_segmenter w;
    cfg.warmup = 100;
    CHECK(rwkv_segmenter_init(&w, &cfg, NULL) == 0);
    got.n = 0;
    for (int i = 0; i < 30; i++) {
        float v = i == 20 ? 9.0f : 1.0f;
        CHECK(rwkv_segmenter_token(&w, line, 2, v, collect, &got) == 0);
    }
    CHECK(got.v[20].score == 1.0 && !got.v[20].anomalous);
}

static void test_sketch_ranks_equal_counting(void)
{
    static double vals[5000];
    rwkv_qsketch q;
    rwkv_qsketch_init(&q);
    CHECK(isnan(rwkv_qsketch_rank(&q, 1.0)));
    for (int i = 0; i < 5000; i++) {
        double x = rnd(4) == 0 ? (double)rnd(100000) / 1000.0 : (double)rnd(300) / 64.0;
        if (i % 97 == 0)
            x = i % 2 ? -1.0 : INFINITY;
        if (i > 0 && i % 50 == 0) {
            double probe = (double)rnd(8000) / 100.0;
            size_t pb = rwkv_qsketch_bin(probe);
            double lo = 0, same_bin = 0;
            for (int k = 0; k < i; k++) {
                size_t b = rwkv_qsketch_bin(vals[k]);
                lo += b < pb;
                same_bin += b == pb;
            }
            CHECKF(rwkv_qsketch_rank(&q, probe) == (lo + 0.5 * same_bin) / i, "after %d", i);
        }
        vals[i] = x;
        rwkv_qsketch_add(&q, x);
    }
    CHECK(rwkv_qsketch_bin(NAN) == 0 && rwkv_qsketch_bin(1e300) == RWKV_QSKETCH_BINS - 1);
    CHECK(rwkv_qsketch_bin(1.0 / 32) == 1 && rwkv_qsketch_bin(0.999 / 32) == 0);
    static uint8_t buf[RWKV_QSKETCH_BYTES], buf2[RWKV_QSKETCH_BYTES];
    rwkv_qsketch_store(&q, buf);
    rwkv_qsketch back;
    CHECK(rwkv_qsketch_load(&back, buf, sizeof buf, "t", NULL) == 0);
    rwkv_qsketch_store(&back, buf2);
    CHECK(memcmp(buf, buf2, sizeof buf) == 0 && back.n == 5000);
    CHECK(memcmp(&q, &back, sizeof q) == 0);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_hostile_states(void)
{
    static uint8_t good[RWKV_SEGMENTER_BYTES], bad[RWKV_SEGMENTER_BYTES],
        back[RWKV_SEGMENTER_BYTES];
    rwkv_seg_config cfg;
    rwkv_seg_config_lines(&cfg);
    memcpy(cfg.delim, "ab", 2);
    cfg.delim_len = 2;
    cfg.text_cap = 3;
    rwkv_segmenter s, t;
    CHECK(rwkv_segmenter_init(&s, &cfg, NULL) == 0);
    static segs got;
    got.n = 0;
    const uint8_t txt[] = "xxabyyya";
    for (int i = 0; i < 8; i++)
        CHECK(rwkv_segmenter_token(&s, txt + i, 1, i ? 0.5f : NAN, collect, &got) == 0);
    CHECK(s.match == 1 && got.n == 1);
    rwkv_segmenter_store(&s, good);
    rwkv_error err;
    CHECK(rwkv_segmenter_load(&t, good, sizeof good, "t", &err) == 0);
    CHECK(rwkv_segmenter_load(&t, good, sizeof good - 1, "t", &err) != 0);
    struct { size_t off; uint64_t v; int width; } cases[] = {
        {16, 0, 1},   {16, 17, 1},  {17, 2, 1},  {2, 'c', 1},  {22, 1, 1},  {100, 1, 1},
        {19, 2, 1} /* text cap 515 */, {20, 2, 1} /* 2 text bytes kept of 3 */,
        {128 + 3, 'x', 1} /* a byte after the kept text */,
        {120, 1, 1},  {24, 0, 8},   {32 - 8, 0x3ff0000000000000ull, 8}, /* quantile 1.0 */
        {56, 100, 8}, {72, 100, 8}, {64, 1000, 8}, {40, 99, 8}, {80, 99, 8},
        {88, 0xfff0000000000000ull, 8}, /* sum -inf */ {104, 0, 8}, {104, 9, 8},
        {384, 2, 8},  {392, 5, 8},  {392, UINT64_MAX, 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(bad, good, sizeof bad);
        if (cases[i].width == 1)
            bad[cases[i].off] = (uint8_t)cases[i].v;
        else
            put64(bad + cases[i].off, cases[i].v);
        err.msg[0] = 0;
        memcpy(&t, &s, sizeof t);
        CHECKF(rwkv_segmenter_load(&t, bad, sizeof bad, "t", &err) != 0, "case %zu accepted", i);
        CHECKF(err.msg[0] && strstr(err.msg, "t: "), "case %zu: message %s", i, err.msg);
        CHECK(memcmp(&t, &s, sizeof t) == 0); /* untouched */
    }
    /* random mutations: never a crash; whatever loads stores back identically */
    int accepted = 0;
    for (int i = 0; i < 3000; i++) {
        memcpy(bad, good, sizeof bad);
        for (int k = 1 + (int)rnd(3); k > 0; k--)
            bad[rnd(420)] ^= (uint8_t)(1u << rnd(8));
        if (rwkv_segmenter_load(&t, bad, sizeof bad, "t", NULL) == 0) {
            accepted++;
            rwkv_segmenter_store(&t, back);
            CHECK(memcmp(back, bad, sizeof bad) == 0);
        }
    }
    CHECK(accepted > 0 && accepted < 3000);
}

/* A 100 MB line without a delimiter: counters move, nothing is kept but the
 * capped text (the segmenter is a fixed-size value, so nothing can grow). */
static void test_huge_line(void)
{
    static uint8_t chunk[4096];
    memset(chunk, 'z', sizeof chunk);
    rwkv_seg_config cfg;
    rwkv_seg_config_lines(&cfg);
    cfg.text_cap = 16;
    rwkv_segmenter s;
    CHECK(rwkv_segmenter_init(&s, &cfg, NULL) == 0);
    static segs got;
    got.n = 0;
    const uint64_t total = 100u << 20;
    for (uint64_t at = 0; at < total; at += sizeof chunk)
        CHECK(rwkv_segmenter_token(&s, chunk, sizeof chunk, 2.0f, collect, &got) == 0);
    CHECK(got.n == 0 && s.byte_pos == total && s.text_len == 16 && s.n_scored == total / 4096);
    const uint8_t nl = '\n';
    CHECK(rwkv_segmenter_token(&s, &nl, 1, 1.0f, collect, &got) == 0);
    CHECK(got.n == 1 && got.v[0].byte_end == total + 1 && got.v[0].tok_end == total / 4096 + 1 &&
          got.v[0].text_len == 16 && got.v[0].surprisal_max == 2.0f && got.v[0].max_pos == 0);
}

static void test_config_rules(void)
{
    rwkv_seg_config c;
    rwkv_seg_config_lines(&c);
    CHECK(rwkv_seg_config_check(&c, NULL) == 0);
    c.delim_len = 0;
    CHECK(rwkv_seg_config_check(&c, NULL) != 0);
    c.delim_len = 17;
    CHECK(rwkv_seg_config_check(&c, NULL) != 0);
    c.delim_len = 1;
    c.anomaly_quantile = 1.0;
    CHECK(rwkv_seg_config_check(&c, NULL) != 0);
    c.anomaly_quantile = NAN;
    CHECK(rwkv_seg_config_check(&c, NULL) != 0);
    c.anomaly_quantile = 0.5;
    c.text_cap = RWKV_SEG_TEXT_MAX + 1;
    CHECK(rwkv_seg_config_check(&c, NULL) != 0);
    rwkv_segmenter s;
    CHECK(rwkv_segmenter_init(&s, &c, NULL) != 0);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_segments_equal_reference);
    RUN(test_scores_and_warmup);
    RUN(test_sketch_ranks_equal_counting);
    RUN(test_hostile_states);
    RUN(test_huge_line);
    RUN(test_config_rules);
    return test_summary();
}
