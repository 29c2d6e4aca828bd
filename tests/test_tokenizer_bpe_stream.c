/* test_tokenizer_bpe_stream.c — the 20B BPE tokenizer streamed: text fed in
 * pieces split at any byte gives exactly the whole-text ids (random pieces
 * over many seeds, 1-byte pieces, every 2-way split of every fixture case,
 * splits inside UTF-8 characters), the held bytes never exceed 1024 and
 * survive checkpoints (pending -> new encoder -> restore), restore refuses
 * what no encoder could hold, and hostile texts (1 MB of one character: a
 * letter, spaces, newlines, punctuation, a combining mark, NUL, invalid
 * bytes, '<') stream with the bound held and give the whole-text ids. */
#include <stdlib.h>
#include <string.h>

#include "core/tokenizer.h"
#include "tests/support/stream_check.h"
#include "tests/testutil.h"

#define DIR "tokenizer-20b/"

static rwkv_tokenizer *tok;
static uint8_t *long_text, *cases_text;
static size_t long_len, cases_len;

static int setup(void)
{
    if (tok)
        return 0;
    rwkv_error err = {{0}};
    size_t n;
    void *probe = fixture_read(DIR "20B_tokenizer.json", &n);
    if (!probe)
        return -1;
    free(probe);
    if (rwkv_tokenizer_load(fixture_path(DIR "20B_tokenizer.json"), &tok, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "load: %s", err.msg);
        return -1;
    }
    long_text = fixture_read(DIR "long.bin", &long_len);
    cases_text = fixture_read(DIR "cases.bin", &cases_len);
    return long_text && cases_text ? 0 : -1;
}

static int whole(const uint8_t *buf, size_t n, rwkv_ids *out)
{
    rwkv_error err = {{0}};
    out->n = 0;
    return rwkv_tokenizer_encode(tok, buf, n, out, &err);
}

static void test_long_text_random_splits(void)
{
    CHECK(setup() == 0);
    size_t ni;
    int32_t *ref = fixture_read(DIR "long.ids.i32", &ni);
    CHECK(ref);
    rwkv_ids want = {0};
    int ok = whole(long_text, long_len, &want) == 0 && want.n == ni / 4;
    for (size_t i = 0; ok && i < want.n; i++)
        ok = want.v[i] == (uint32_t)ref[i];
    free(ref);
    if (!ok)
        rwkv_ids_free(&want);
    CHECKF(ok, "%s", "whole-text ids differ from long.ids.i32");
    static const size_t pieces[] = {1, 2, 3, 5, 8, 13, 14, 64, 1000, 1024, 1025, 1026, 3000,
                                    70000};
    char why[700] = "";
    for (size_t p = 0; p < sizeof pieces / sizeof *pieces; p++) {
        int seeds = pieces[p] == 1 ? 1 : 12;
        for (int s = 0; s < seeds; s++) {
            uint64_t seed = 0xB0E + (uint64_t)s * 7919 + p;
            if (stream_check(tok, long_text, long_len, pieces[p], (unsigned)(s % 4), &seed,
                             &want, why, sizeof why) != 0) {
                rwkv_ids_free(&want);
                CHECKF(0, "pieces up to %zu, seed %d: %s", pieces[p], s, why);
            }
        }
    }
    rwkv_ids_free(&want);
}

static void test_cases_concatenated_random_splits(void)
{
    CHECK(setup() == 0);
    rwkv_ids want = {0};
    CHECK(whole(cases_text, cases_len, &want) == 0);
    char why[700] = "";
    static const size_t pieces[] = {1, 2, 3, 4, 7, 31, 500, 1100};
    for (size_t p = 0; p < sizeof pieces / sizeof *pieces; p++) {
        for (int s = 0; s < 20; s++) {
            uint64_t seed = 0xCA5E + (uint64_t)s * 104729 + p;
            if (stream_check(tok, cases_text, cases_len, pieces[p], (unsigned)(s % 3), &seed,
                             &want, why, sizeof why) != 0) {
                rwkv_ids_free(&want);
                CHECKF(0, "pieces up to %zu, seed %d: %s", pieces[p], s, why);
            }
        }
    }
    rwkv_ids_free(&want);
}

/* Every 2-way split of every fixture case (many inside UTF-8 characters). */
static void test_every_split_point_of_every_case(void)
{
    CHECK(setup() == 0);
    size_t no;
    int32_t *off = fixture_read(DIR "cases.offsets.i32", &no);
    CHECK(off);
    no /= 4;
    rwkv_ids want = {0}, got = {0};
    rwkv_error err = {{0}};
    rwkv_encoder *e = rwkv_encoder_new(tok);
    int bad_case = -1;
    size_t bad_split = 0;
    for (size_t c = 0; e && c + 1 < no && bad_case < 0; c++) {
        const uint8_t *text = cases_text + off[c];
        size_t n = (size_t)(off[c + 1] - off[c]);
        if (whole(text, n, &want) != 0)
            bad_case = (int)c;
        for (size_t s = 0; s <= n && bad_case < 0; s++) {
            got.n = 0; /* one encoder for every split: finish() resets it */
            if (rwkv_encoder_feed(e, text, s, &got, &err) != 0 ||
                rwkv_encoder_feed(e, text + s, n - s, &got, &err) != 0 ||
                rwkv_encoder_finish(e, &got, &err) != 0 || !ids_same(&got, &want)) {
                bad_case = (int)c;
                bad_split = s;
            }
        }
    }
    int ok = e != NULL;
    rwkv_encoder_free(e);
    rwkv_ids_free(&want);
    rwkv_ids_free(&got);
    free(off);
    CHECK(ok);
    CHECKF(bad_case < 0, "case %d split at %zu differs (%s)", bad_case, bad_split, err.msg);
}

/* 1 MB of one character (or short unit): bounded hold-back, stream == whole,
 * and decode gives the text back where it is valid NFC UTF-8. */
static void test_one_megabyte_of_one_character(void)
{
    CHECK(setup() == 0);
    static const struct { const char *unit; size_t len; int roundtrip; } units[] = {
        {"a", 1, 1}, {" ", 1, 1}, {"\n", 1, 1}, {"!", 1, 1}, {"-", 1, 1}, {"<", 1, 1},
        {"\xC3\xA9", 2, 1},         /* e acute, precomposed */
        {"\xCC\x81", 2, 1},         /* U+0301 alone: one NFC unit that never ends */
        {"\xE4\xB8\xAD", 3, 1},     /* a CJK letter */
        {"\xF0\x9F\x98\x80", 4, 1}, /* an emoji */
        {"\0", 1, 1},
        {"\xFF", 1, 0},             /* invalid: U+FFFD each */
        {" a", 2, 1}, {"\t ", 2, 1}, {"'s", 2, 1},
    };
    const size_t total = 1 << 20;
    uint8_t *text = malloc(total);
    CHECK(text);
    char why[700] = "";
    for (size_t u = 0; u < sizeof units / sizeof *units; u++) {
        size_t n = 0;
        while (n + units[u].len <= total) {
            memcpy(text + n, units[u].unit, units[u].len);
            n += units[u].len;
        }
        rwkv_ids want = {0};
        int rc = whole(text, n, &want);
        uint8_t *dec = NULL;
        size_t dn = 0;
        rwkv_error err = {{0}};
        int round_ok = !units[u].roundtrip ||
                       (rc == 0 && rwkv_tokenizer_decode(tok, want.v, want.n, &dec, &dn, &err) == 0 &&
                        dn == n && memcmp(dec, text, n) == 0);
        free(dec);
        uint64_t seed = 77 + u;
        int src =
            rc == 0 ? stream_check(tok, text, n, 70000, 0, &seed, &want, why, sizeof why) : -1;
        if (rc == 0 && src == 0) { /* a prefix in tiny pieces, with checkpoints */
            rwkv_ids w2 = {0};
            rc = whole(text, 5000, &w2);
            src = rc == 0 ? stream_check(tok, text, 5000, 3, 2, &seed, &w2, why, sizeof why) : -1;
            rwkv_ids_free(&w2);
        }
        size_t nids = want.n;
        uint32_t first = want.n ? want.v[0] : 0;
        rwkv_ids_free(&want);
        if (rc != 0 || src != 0 || !round_ok) {
            free(text);
            CHECKF(0, "unit %zu: encode rc %d, stream: %s, round trip %d", u, rc, why, round_ok);
        }
        if (u == 1) { /* spaces: all runs of 24 (50254), then 16 (50262): exact */
            CHECKF(nids == total / 24 + 1 && first == 50254, "%zu ids", nids);
        }
    }
    free(text);
}

/* A shorter hostile text streamed byte by byte with checkpoints, against
 * its whole-text ids (each kind of forced cut and held run). */
static void test_hostile_runs_byte_by_byte(void)
{
    CHECK(setup() == 0);
    uint8_t text[6000];
    uint64_t seed = 4242;
    char why[700] = "";
    static const char *const runs[] = {"a", " ", "\n", "!", "\xCC\x81", "\xCC\xA3", "7",
                                       "\xE4\xB8\xAD", "\t", "  ", "\xC2\xA0", "\xFF"};
    static const size_t run_len[] = {1, 1, 1, 1, 2, 2, 1, 3, 1, 2, 2, 1};
    for (int round = 0; round < 24; round++) {
        size_t n = 0;
        while (n < sizeof text - 8) {
            size_t r = test_rand(&seed) % 12;
            size_t len = 1 + (size_t)(test_rand(&seed) % (round % 2 ? 2500 : 60));
            for (size_t i = 0; i < len && n + run_len[r] < sizeof text - 8; i++) {
                memcpy(text + n, runs[r], run_len[r]);
                n += run_len[r];
            }
            text[n++] = (uint8_t)("xY. 'e"[test_rand(&seed) % 6]);
        }
        rwkv_ids want = {0};
        CHECK(whole(text, n, &want) == 0);
        int rc = stream_check(tok, text, n, round % 3 == 0 ? 1 : 1 + (size_t)round * 50,
                              (unsigned)round % 5, &seed, &want, why, sizeof why);
        rwkv_ids_free(&want);
        CHECKF(rc == 0, "round %d: %s", round, why);
    }
}

/* restore: accepts exactly the tails a fresh encoder would hold. */
static void test_restore_accepts_exactly_reachable(void)
{
    CHECK(setup() == 0);
    rwkv_encoder *e = rwkv_encoder_new(tok);
    CHECK(e);
    rwkv_error err = {{0}};
    uint8_t big[1100];
    memset(big, 'a', sizeof big);
    CHECK(rwkv_encoder_restore(e, big, 1025, &err) == -1); /* over the bound */
    CHECKF(strstr(err.msg, "1024") != NULL, "%s", err.msg);
    CHECK(rwkv_encoder_restore(e, big, 1024, &err) == 0); /* a long word: holdable */
    static const char *const bad = "hello world, this is plain text that settles";
    CHECK(rwkv_encoder_restore(e, (const uint8_t *)bad, strlen(bad), &err) == -1);
    CHECKF(strstr(err.msg, "not a state") != NULL, "%s", err.msg);
    /* random tails of the texts: restore accepts iff feeding holds them all */
    uint64_t seed = 5;
    int accepted = 0, refused = 0;
    for (int i = 0; i < 3000; i++) {
        const uint8_t *src = i % 2 ? long_text : cases_text;
        size_t sn = i % 2 ? long_len : cases_len;
        size_t len = 1 + (size_t)(test_rand(&seed) % 60);
        if (i % 7 == 0)
            len = 900 + (size_t)(test_rand(&seed) % 124);
        if (len > sn)
            len = sn;
        size_t at = (size_t)(test_rand(&seed) % (sn - len + 1));
        rwkv_ids tmp = {0};
        rwkv_encoder *f = rwkv_encoder_new(tok);
        CHECK(f && rwkv_encoder_feed(f, src + at, len, &tmp, &err) == 0);
        const uint8_t *held;
        int reachable = rwkv_encoder_pending(f, &held) == len && tmp.n == 0;
        rwkv_encoder_free(f);
        rwkv_ids_free(&tmp);
        int r = rwkv_encoder_restore(e, src + at, len, &err);
        CHECKF((r == 0) == reachable, "tail of %zu bytes at %zu: restore %d, reachable %d", len,
               at, r, reachable);
        accepted += r == 0;
        refused += r != 0;
    }
    rwkv_encoder_free(e);
    CHECKF(accepted > 100 && refused > 100, "accepted %d refused %d", accepted, refused);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_long_text_random_splits);
    RUN(test_cases_concatenated_random_splits);
    RUN(test_every_split_point_of_every_case);
    RUN(test_one_megabyte_of_one_character);
    RUN(test_hostile_runs_byte_by_byte);
    RUN(test_restore_accepts_exactly_reachable);
    rwkv_tokenizer_free(tok);
    free(long_text);
    free(cases_text);
    return test_summary();
}
