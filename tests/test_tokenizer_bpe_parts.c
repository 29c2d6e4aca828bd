/* test_tokenizer_bpe_parts.c — the BPE tokenizer's parts one at a time
 * (core/tokenize/bpe_internal.h), each against an independent oracle:
 *
 *  - cut points: for random texts of tricky pieces (runs of spaces, marks,
 *    jamo, contractions, special-token fragments, invalid bytes...), every
 *    cut point the finder reports really splits the encoding:
 *    encode(A ++ B) == encode(A) ++ encode(B); and the backward fast path
 *    agrees with the forward scan;
 *  - NFC: ours (units + own canonical sort) equals utf8proc_NFC on random
 *    mark soup, and NFC(x ++ y) == NFC(x) ++ NFC(y) whenever y starts at a
 *    character bpe_nfc_boundary accepts;
 *  - merges: the quadratic loop, the heap and the whole-word table give the
 *    same ids on random words, including long runs with tied ranks;
 *  - character classes at the probes the README lists; the byte table. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/tokenize/bpe_internal.h"
#include "core/tokenizer.h"
#include "tests/testutil.h"

#define JSON "tokenizer-20b/20B_tokenizer.json"

static rwkv_tokenizer *tok;
static bpe_model model;
static bpe_merges merges;
static int loaded;

static int setup(void)
{
    if (loaded)
        return loaded > 0 ? 0 : -1;
    loaded = -1;
    size_t n;
    uint8_t *buf = fixture_read(JSON, &n);
    if (!buf)
        return -1;
    rwkv_error err = {{0}};
    int rc = bpe_json_read(JSON, buf, n, &model, &err);
    if (rc == 0)
        rc = bpe_merges_build(&merges, &model, &err);
    if (rc == 0)
        rc = rwkv_tokenizer_parse(JSON, buf, n, &tok, &err);
    free(buf);
    if (rc != 0) {
        test_fail_at(__FILE__, __LINE__, "%s", err.msg);
        return -1;
    }
    loaded = 1;
    return 0;
}

static const char *const pieces[] = {
    "a", "b", "s", "t", "re", "ll", "e", "Z", "q", "1", "22", "\xD9\xA3" /* ٣ */,
    "\xC2\xBD" /* ½ */, " ", "  ", "   ", "\n", "\r\n", "\r", "\t", "\xC2\xA0", "\xE3\x80\x80",
    "'", "\xE2\x80\x99", "!", "...", ".", "-", "=", "\xC3\xA9", "e\xCC\x81", "\xCC\x81",
    "\xCC\xA3", "\xCC\x82", "\xE1\x84\x80" /* L jamo */, "\xE1\x85\xA1" /* V jamo */,
    "\xE1\x86\xA8" /* T jamo */, "\xED\x95\x9C" /* 한 */, "\xE4\xB8\xAD", "\xF0\x9F\x98\x80",
    "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", "<|endoftext|>", "<|padding|>", "<|", "|>", "<",
    "\x80", "\xFF", "\xE2\x82", "\xF0\x9F", "\x1C", "\xC2\x85", "\xE2\x80\xA8",
    "\xE0\xB8\xB4" /* Thai mark */, "\xE0\xA4\xBE" /* Devanagari sign AA */,
    "\xE0\xB8\x81", "\xCC\xB8" /* U+0338 */, "\xE2\x89\xAE" /* ≮ */, "\xE2\x84\xAB" /* Å */,
    "\xE1\xBF\xAF", "\xCD\x84" /* U+0344 */, "\xE2\x80\x80" /* U+2000 */, "\x00",
    "\xE0\xAD\x87\xE0\xAC\xBE" /* Oriya e + aa: composes */, "\xE0\xBD\xB3" /* U+0F73 */,
};
static const char ws_pieces[] = " ";

static size_t random_text(uint64_t *seed, uint8_t *buf, size_t cap, size_t max_pieces)
{
    size_t n = 0, np = 1 + (size_t)(test_rand(seed) % max_pieces);
    for (size_t k = 0; k < np; k++) {
        if (test_rand(seed) % 9 == 0) { /* a run of spaces, often past 24 */
            size_t run = 1 + (size_t)(test_rand(seed) % 60);
            for (size_t i = 0; i < run && n < cap; i++)
                buf[n++] = (uint8_t)ws_pieces[0];
            continue;
        }
        const char *p = pieces[test_rand(seed) % (sizeof pieces / sizeof *pieces)];
        size_t len = p[0] ? strlen(p) : 1;
        if (n + len > cap)
            break;
        memcpy(buf + n, p, len);
        n += len;
    }
    return n;
}

static int encode(const uint8_t *s, size_t n, rwkv_ids *out)
{
    rwkv_error err = {{0}};
    out->n = 0;
    return rwkv_tokenizer_encode(tok, s, n, out, &err);
}

static void test_cut_points_split_the_encoding(void)
{
    CHECK(setup() == 0);
    uint64_t seed = 2024;
    uint8_t text[400];
    bpe_scratch sc;
    memset(&sc, 0, sizeof sc);
    rwkv_ids whole = {0}, a = {0}, b = {0};
    rwkv_error err = {{0}};
    size_t cuts = 0, fast_checked = 0;
    const char *fail = NULL;
    size_t fail_round = 0, fail_at = 0;
    for (int round = 0; round < 900 && !fail; round++) {
        size_t n = random_text(&seed, text, sizeof text, 40);
        if (n < 2 || encode(text, n, &whole) != 0) {
            if (n >= 2)
                fail = "encode";
            continue;
        }
        size_t prev = 0;
        for (size_t lim = 1; lim < n && !fail; lim++) {
            size_t cut, bound, cut2, bound2;
            if (bpe_find_cut_scan(&model, text, n, lim, &cut, &bound, &sc, &err) != 0 ||
                bpe_find_cut(&model, text, n, lim, &cut2, &bound2, &sc, &err) != 0) {
                fail = "find_cut failed";
                break;
            }
            fast_checked++;
            if (cut2 != cut || (cut == 0 && bound2 != bound) || cut > lim || bound > lim) {
                fail = "fast and forward cut finders disagree";
                fail_at = lim;
                break;
            }
            if (cut == 0 || cut == prev)
                continue;
            prev = cut;
            cuts++;
            if (encode(text, cut, &a) != 0 || encode(text + cut, n - cut, &b) != 0) {
                fail = "encode of a part";
                break;
            }
            if (a.n + b.n != whole.n || memcmp(a.v, whole.v, a.n * sizeof *a.v) != 0 ||
                memcmp(b.v, whole.v + a.n, b.n * sizeof *b.v) != 0) {
                fail = "a cut point changes the ids";
                fail_at = cut;
            }
        }
        fail_round = (size_t)round;
    }
    if (fail) {
        printf("  text (round %zu): ", fail_round);
        for (size_t i = 0; i < 80 && text[i]; i++)
            printf("%02x", text[i]);
        printf("\n");
    }
    bpe_scratch_free(&sc);
    rwkv_ids_free(&whole);
    rwkv_ids_free(&a);
    rwkv_ids_free(&b);
    CHECKF(!fail, "%s (round %zu, position %zu) %s", fail, fail_round, fail_at, err.msg);
    CHECKF(cuts > 5000 && fast_checked > 50000, "only %zu cuts, %zu checks", cuts,
           fast_checked);
}

/* Plain ASCII prose: the backward fast path decides, and agrees. */
static void test_fast_cut_finder_on_prose(void)
{
    CHECK(setup() == 0);
    size_t n;
    uint8_t *text = fixture_read("tokenizer-20b/long.bin", &n);
    CHECK(text);
    bpe_scratch sc;
    memset(&sc, 0, sizeof sc);
    rwkv_error err = {{0}};
    int bad = 0;
    for (size_t start = 0; start + 1100 < n && !bad; start += 97) {
        for (size_t lim = 1; lim < 1050; lim += 13) {
            size_t c1, b1, c2, b2;
            bpe_find_cut_scan(&model, text + start, 1100, lim, &c1, &b1, &sc, &err);
            bpe_find_cut(&model, text + start, 1100, lim, &c2, &b2, &sc, &err);
            if (c1 != c2)
                bad = 1;
        }
    }
    bpe_scratch_free(&sc);
    free(text);
    CHECK(!bad);
}

/* utf8proc's own NFC of valid UTF-8 s[0..n) */
static uint8_t *oracle_nfc(const uint8_t *s, size_t n, size_t *out_n)
{
    uint8_t *dst = NULL;
    utf8proc_ssize_t k = utf8proc_map(s, (utf8proc_ssize_t)n, &dst,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    *out_n = k < 0 ? 0 : (size_t)k;
    return k < 0 ? NULL : dst;
}

static void test_nfc_against_utf8proc(void)
{
    static const uint32_t alphabet[] = {
        'a', 'e', 'q', 'A', ' ', 0x301, 0x323, 0x302, 0x308, 0x327, 0x338, '<', '=', 0x1100,
        0x1161, 0x11A8, 0xAC00, 0xD55C, 0x0B47, 0x0B3E, 0x0B57, 0x0DD9, 0x0DCF, 0x0DCA,
        0x0F71, 0x0F72, 0x0F73, 0x0F80, 0x212B, 0x2126, 0x1FEF, 0x0344, 0x0958, 0x093C,
        0x0915, 0x05B8, 0x05B7, 0xFB2F, 0x1E0A, 0x0307, 0x0323, 0x3099, 0x304B, 0x30AB,
        0x1D15E, 0x1D165, 0x1D16E, 0x0CC6, 0x0CC2, 0x0CD5, 0x00C5, 0x2000, 0xFFFD,
    };
    uint64_t seed = 31337;
    uint32_t cps[200];
    uint8_t utf[1000], utf2[1000];
    bpe_buf out = {0}, ccc = {0};
    bpe_u32 tmp = {0};
    rwkv_error err = {{0}};
    int bad = 0, split_checked = 0;
    for (int round = 0; round < 4000 && !bad; round++) {
        size_t n = 1 + (size_t)(test_rand(&seed) % 60), un = 0;
        for (size_t i = 0; i < n; i++) {
            cps[i] = alphabet[test_rand(&seed) % (sizeof alphabet / sizeof *alphabet)];
            un += bpe_utf8_put(cps[i], utf + un);
        }
        out.n = 0;
        if (bpe_nfc(cps, n, &out, &tmp, &ccc, &err) != 0) {
            bad = 1;
            break;
        }
        size_t on;
        uint8_t *o = oracle_nfc(utf, un, &on);
        if (!o || on != out.n || memcmp(o, out.b, on) != 0)
            bad = 2;
        free(o);
        /* split at every boundary character: NFC(x ++ y) == NFC(x) ++ NFC(y) */
        for (size_t s = 1; s < n && !bad; s++) {
            if (!bpe_nfc_boundary(cps[s]))
                continue;
            split_checked++;
            size_t xn = 0, yn = 0;
            for (size_t i = 0; i < s; i++)
                xn += bpe_utf8_put(cps[i], utf2 + xn);
            uint8_t *x = oracle_nfc(utf2, xn, &xn);
            for (size_t i = s; i < n; i++)
                yn += bpe_utf8_put(cps[i], utf2 + yn);
            uint8_t *y = oracle_nfc(utf2, yn, &yn);
            if (!x || !y || xn + yn != on || memcmp(out.b, x, xn) != 0 ||
                memcmp(out.b + xn, y, yn) != 0)
                bad = 3;
            free(x);
            free(y);
        }
    }
    free(out.b);
    free(ccc.b);
    free(tmp.v);
    CHECKF(!bad, "mismatch kind %d", bad);
    CHECK(split_checked > 10000);
    /* a long run of marks in reverse canonical order (the counting sort) */
    uint32_t marks[300];
    size_t mn = 0;
    marks[mn++] = 'a';
    for (int i = 0; i < 299; i++)
        marks[mn++] = i % 3 == 0 ? 0x301 : i % 3 == 1 ? 0x323 : 0x05B8; /* 230, 220, 18 */
    size_t un = 0;
    uint8_t big[1200];
    for (size_t i = 0; i < mn; i++)
        un += bpe_utf8_put(marks[i], big + un);
    bpe_buf o2 = {0}, c2 = {0};
    bpe_u32 t2 = {0};
    CHECK(bpe_nfc(marks, mn, &o2, &t2, &c2, &err) == 0);
    size_t on;
    uint8_t *o = oracle_nfc(big, un, &on);
    int same = o && on == o2.n && memcmp(o, o2.b, on) == 0;
    free(o);
    free(o2.b);
    free(c2.b);
    free(t2.v);
    CHECK(same);
}

static void test_merge_loops_agree(void)
{
    CHECK(setup() == 0);
    size_t ln, cn;
    uint8_t *lng = fixture_read("tokenizer-20b/long.bin", &ln);
    uint8_t *cases = fixture_read("tokenizer-20b/cases.bin", &cn);
    CHECK(lng && cases);
    uint64_t seed = 11;
    bpe_work wk = {0};
    rwkv_ids ids[4] = {{0}};
    rwkv_error err = {{0}};
    uint8_t word[600];
    int bad = 0, multi = 0;
    for (int round = 0; round < 6000 && !bad; round++) {
        size_t n = 2 + (size_t)(test_rand(&seed) % (round % 10 == 0 ? 500 : 40));
        int kind = round % 4;
        if (kind == 0 || kind == 1) { /* a slice of real text (valid UTF-8 bytes only) */
            const uint8_t *src = kind ? lng : cases;
            size_t sn = kind ? ln : cn;
            if (n > sn)
                n = sn;
            memcpy(word, src + test_rand(&seed) % (sn - n + 1), n);
        } else if (kind == 2) { /* runs of one or two letters: tied ranks */
            for (size_t i = 0; i < n; i++)
                word[i] = (uint8_t)("aab -=\n"[test_rand(&seed) % (round % 7 + 1)]);
        } else {
            for (size_t i = 0; i < n; i++)
                word[i] = (uint8_t)(test_rand(&seed) % 0xC0);
        }
        for (size_t i = 0; i < n; i++)
            if (word[i] >= 0xC0 && word[i] < 0xC2)
                word[i] = 'x';
        for (int mode = 0; mode < 4; mode++) {
            ids[mode].n = 0;
            if (bpe_merge_word(&merges, word, n, mode, &wk, &ids[mode], &err) != 0)
                bad = 10 + mode;
        }
        for (int mode = 1; mode < 4 && !bad; mode++)
            if (ids[mode].n != ids[0].n ||
                memcmp(ids[mode].v, ids[0].v, ids[0].n * sizeof *ids[0].v) != 0)
                bad = mode;
        multi += ids[0].n > 1;
    }
    for (int mode = 0; mode < 4; mode++)
        rwkv_ids_free(&ids[mode]);
    bpe_work_free(&wk);
    free(lng);
    free(cases);
    CHECKF(!bad, "merge mode %d differs (%s)", bad, err.msg);
    CHECK(multi > 1000);
}

static void test_classes_and_byte_table(void)
{
    static const struct { uint32_t cp; int cls; } probe[] = {
        {'a', BPE_L}, {0xAA, BPE_L}, {0x2B0, BPE_L}, {0x4E2D, BPE_L}, {'7', BPE_N},
        {0x663, BPE_N}, {0x216B, BPE_N}, {0xB2, BPE_N}, {0xBD, BPE_N}, {0x301, BPE_P},
        {0x93E, BPE_P}, {0xE34, BPE_P}, {'\'', BPE_P}, {0x2019, BPE_P}, {0x1C, BPE_P},
        {0x1F, BPE_P}, {0x180E, BPE_P}, {0x200B, BPE_P}, {0xFEFF, BPE_P}, {0, BPE_P},
        {'\t', BPE_S}, {'\n', BPE_S}, {0x0B, BPE_S}, {0x0C, BPE_S}, {'\r', BPE_S},
        {' ', BPE_S}, {0x85, BPE_S}, {0xA0, BPE_S}, {0x1680, BPE_S}, {0x2000, BPE_S},
        {0x200A, BPE_S}, {0x2028, BPE_S}, {0x2029, BPE_S}, {0x202F, BPE_S}, {0x205F, BPE_S},
        {0x3000, BPE_S}, {0x1D400, BPE_L}, {0x1D7CE, BPE_N}, {0x1F600, BPE_P},
    };
    for (size_t i = 0; i < sizeof probe / sizeof *probe; i++)
        CHECKF(bpe_class(probe[i].cp) == probe[i].cls, "U+%04X", probe[i].cp);
    uint32_t next_other = 0x100;
    for (int b = 0; b < 256; b++) {
        uint32_t cp = bpe_byte_to_cp((uint8_t)b);
        CHECK(bpe_cp_to_byte(cp) == b);
        if (cp != (uint32_t)b) {
            CHECKF(cp == next_other, "byte 0x%02x", b);
            next_other++;
        }
    }
    CHECK(next_other == 0x144);
    CHECK(bpe_byte_to_cp(' ') == 0x120 && bpe_byte_to_cp('\n') == 0x10A &&
          bpe_byte_to_cp('\t') == 0x109 && bpe_byte_to_cp('\r') == 0x10D);
    CHECK(bpe_cp_to_byte(0x144) == -1 && bpe_cp_to_byte(0xAD) == -1 &&
          bpe_cp_to_byte(0x20) == -1 && bpe_cp_to_byte(0x4E2D) == -1);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_classes_and_byte_table);
    RUN(test_nfc_against_utf8proc);
    RUN(test_merge_loops_agree);
    RUN(test_fast_cut_finder_on_prose);
    RUN(test_cut_points_split_the_encoding);
    bpe_merges_free(&merges);
    bpe_model_free(&model);
    rwkv_tokenizer_free(tok);
    return test_summary();
}
