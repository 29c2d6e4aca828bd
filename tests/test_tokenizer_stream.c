/* test_tokenizer_stream.c — the streaming encoder gives exactly the
 * whole-text ids whatever the split (random pieces over many seeds, 1-byte
 * pieces, every split point of every fixture case, splits inside UTF-8
 * characters), its held bytes survive a checkpoint (pending -> new encoder
 * -> restore), and restore refuses what no encoder could hold. */
#include <stdlib.h>
#include <string.h>

#include "core/tokenizer.h"
#include "tests/support/stream_check.h"
#include "tests/testutil.h"

#define VOCAB "tokenizer/rwkv_vocab_v20230424.txt"

static rwkv_tokenizer *world;
static uint8_t *long_text, *cases_text;
static size_t long_len, cases_len;

static int setup(void)
{
    if (world)
        return 0;
    size_t n;
    uint8_t *buf = fixture_read(VOCAB, &n);
    if (!buf)
        return -1;
    rwkv_error err = {{0}};
    int rc = rwkv_tokenizer_parse(VOCAB, buf, n, &world, &err);
    free(buf);
    if (rc != 0) {
        test_fail_at(__FILE__, __LINE__, "parse: %s", err.msg);
        return -1;
    }
    long_text = fixture_read("tokenizer/long.bin", &long_len);
    cases_text = fixture_read("tokenizer/cases.bin", &cases_len);
    return long_text && cases_text ? 0 : -1;
}

static int whole(const rwkv_tokenizer *t, const uint8_t *buf, size_t n, rwkv_ids *out)
{
    rwkv_error err = {{0}};
    out->n = 0;
    return rwkv_tokenizer_encode(t, buf, n, out, &err);
}

static void test_random_splits_equal_whole(void)
{
    CHECK(setup() == 0);
    static const size_t pieces[] = {1, 2, 3, 5, 8, 17, 64, 127, 128, 129, 300, 1000, 4096, 70000};
    const uint8_t *texts[2] = {long_text, cases_text};
    size_t lens[2] = {long_len, cases_len};
    char why[700] = "";
    for (int x = 0; x < 2; x++) {
        rwkv_ids want = {0};
        CHECK(whole(world, texts[x], lens[x], &want) == 0);
        for (size_t p = 0; p < sizeof pieces / sizeof *pieces; p++) {
            int seeds = pieces[p] == 1 ? 1 : 20;
            for (int s = 0; s < seeds; s++) {
                uint64_t seed = 0x1234 + (uint64_t)s * 7919 + p;
                if (stream_check(world, texts[x], lens[x], pieces[p], 0, &seed, &want, why,
                                 sizeof why) != 0) {
                    rwkv_ids_free(&want);
                    CHECKF(0, "text %d, pieces up to %zu, seed %d: %s", x, pieces[p], s, why);
                }
            }
        }
        rwkv_ids_free(&want);
    }
}

/* Runs of spaces and dashes: the longest tokens (128 spaces), where the
 * held tail is longest. */
static void test_long_token_runs_stream(void)
{
    CHECK(setup() == 0);
    uint8_t text[2000];
    uint64_t seed = 99;
    char why[700] = "";
    for (int round = 0; round < 50; round++) {
        size_t n = 0;
        while (n < sizeof text) {
            size_t run = 1 + (size_t)(test_rand(&seed) % 300);
            uint8_t c = " -=\n\t#"[test_rand(&seed) % 6];
            for (size_t i = 0; i < run && n < sizeof text; i++)
                text[n++] = c;
            if (n < sizeof text)
                text[n++] = (uint8_t)('a' + test_rand(&seed) % 26);
        }
        rwkv_ids want = {0};
        CHECK(whole(world, text, n, &want) == 0);
        int rc = stream_check(world, text, n, 1 + round * 7, 0, &seed, &want, why, sizeof why);
        rwkv_ids_free(&want);
        CHECKF(rc == 0, "round %d: %s", round, why);
    }
}

/* Every 2-way split of every fixture case (many fall inside UTF-8
 * characters: CJK, emoji, RTL, invalid sequences). */
static void test_every_split_point_of_every_case(void)
{
    CHECK(setup() == 0);
    size_t no;
    int32_t *off = fixture_read("tokenizer/cases.offsets.i32", &no);
    CHECK(off);
    no /= 4;
    rwkv_ids want = {0}, got = {0};
    rwkv_error err = {{0}};
    rwkv_encoder *e = rwkv_encoder_new(world);
    int bad_case = -1;
    size_t bad_split = 0;
    for (size_t c = 0; e && c + 1 < no && bad_case < 0; c++) {
        const uint8_t *text = cases_text + off[c];
        size_t n = (size_t)(off[c + 1] - off[c]);
        if (whole(world, text, n, &want) != 0)
            bad_case = (int)c;
        for (size_t s = 0; s <= n && bad_case < 0; s++) {
            got.n = 0; /* the same encoder for every split: finish() resets it */
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

/* feed part, save pending, NEW encoder, restore, feed the rest: the ids
 * before and after the checkpoint together equal the whole text's. */
static void test_checkpoint_restore_mid_stream(void)
{
    CHECK(setup() == 0);
    rwkv_ids want = {0};
    CHECK(whole(world, long_text, long_len, &want) == 0);
    uint64_t seed = 7;
    int bad = -1, restored_nonempty = 0;
    for (int round = 0; round < 100 && bad < 0; round++) {
        rwkv_ids got = {0};
        rwkv_error err = {{0}};
        rwkv_encoder *e = rwkv_encoder_new(world);
        size_t pos = 0;
        while (e && pos < long_len && bad < 0) {
            size_t k = 1 + (size_t)(test_rand(&seed) % 700);
            if (k > long_len - pos)
                k = long_len - pos;
            if (rwkv_encoder_feed(e, long_text + pos, k, &got, &err) != 0)
                bad = round;
            pos += k;
            if (test_rand(&seed) % 3 == 0) { /* checkpoint */
                const uint8_t *held;
                size_t nh = rwkv_encoder_pending(e, &held);
                uint8_t saved[1024];
                memcpy(saved, held, nh);
                rwkv_encoder_free(e);
                e = rwkv_encoder_new(world);
                if (!e || rwkv_encoder_restore(e, saved, nh, &err) != 0)
                    bad = round;
                restored_nonempty += nh > 0;
            }
        }
        if (bad < 0 && (!e || rwkv_encoder_finish(e, &got, &err) != 0 || !ids_same(&got, &want)))
            bad = round;
        rwkv_encoder_free(e);
        rwkv_ids_free(&got);
    }
    rwkv_ids_free(&want);
    CHECKF(bad < 0, "round %d", bad);
    CHECKF(restored_nonempty > 100, "only %d checkpoints held bytes", restored_nonempty);
}

/* restore accepts exactly the tails a fresh encoder would hold after being
 * fed those bytes, and refuses everything else without changing state. */
static void test_restore_validates_bytes(void)
{
    CHECK(setup() == 0);
    rwkv_error err = {{0}};
    rwkv_encoder *e = rwkv_encoder_new(world), *probe = rwkv_encoder_new(world);
    CHECK(e && probe);
    rwkv_ids ids = {0};
    uint8_t spaces[200];
    memset(spaces, ' ', sizeof spaces);
    int ok = 1;
    /* length bound: 127 spaces may be held (prefix of the 128-space token) */
    ok = ok && rwkv_encoder_restore(e, spaces, 127, &err) == 0;
    ok = ok && rwkv_encoder_restore(e, spaces, 128, &err) == -1 && strstr(err.msg, "at most 127");
    ok = ok && rwkv_encoder_restore(e, spaces, 200, &err) == -1;
    const uint8_t *held;
    ok = ok && rwkv_encoder_pending(e, &held) == 127; /* unchanged by the failures */
    ok = ok && rwkv_encoder_restore(e, spaces, 0, &err) == 0 &&
         rwkv_encoder_pending(e, &held) == 0;
    if (!ok) {
        rwkv_encoder_free(e);
        rwkv_encoder_free(probe);
        CHECKF(0, "length checks: %s", err.msg);
    }
    /* equivalence with what feeding produces, over random short strings */
    static const char alpha[] = " \n\tetaoinsh.,'\"-=#0123456789\xe4\xb8\xad\xe6\x96\x87\xf0\x9f\x98\x80\xff";
    uint64_t seed = 5;
    int accepted = 0, refused = 0;
    for (int i = 0; i < 20000 && ok; i++) {
        uint8_t s[24];
        size_t n = 1 + (size_t)(test_rand(&seed) % sizeof s);
        for (size_t j = 0; j < n; j++)
            s[j] = (uint8_t)alpha[test_rand(&seed) % (sizeof alpha - 1)];
        ids.n = 0;
        if (rwkv_encoder_feed(probe, s, n, &ids, &err) != 0)
            ok = 0;
        int reachable = rwkv_encoder_pending(probe, &held) == n && ids.n == 0;
        rwkv_encoder_finish(probe, &ids, &err);
        int r = rwkv_encoder_restore(e, s, n, &err);
        if ((r == 0) != reachable)
            ok = 0;
        if (r == 0) {
            accepted++;
            /* finishing a restored tail gives the tail's own ids */
            rwkv_ids a = {0}, b = {0};
            if (rwkv_encoder_finish(e, &a, &err) != 0 || whole(world, s, n, &b) != 0 ||
                !ids_same(&a, &b))
                ok = 0;
            rwkv_ids_free(&a);
            rwkv_ids_free(&b);
        } else {
            refused++;
        }
    }
    rwkv_ids_free(&ids);
    rwkv_encoder_free(e);
    rwkv_encoder_free(probe);
    CHECK(ok);
    CHECKF(accepted > 100 && refused > 100, "accepted %d refused %d", accepted, refused);
}

static void test_encoder_reuse_and_empty_feeds(void)
{
    CHECK(setup() == 0);
    rwkv_encoder *e = rwkv_encoder_new(world);
    CHECK(e);
    rwkv_ids got = {0}, want = {0};
    rwkv_error err = {{0}};
    int ok = 1;
    for (int pass = 0; pass < 2 && ok; pass++) {
        got.n = 0;
        ok = rwkv_encoder_feed(e, "", 0, &got, &err) == 0 &&
             rwkv_encoder_feed(e, "Hello, ", 7, &got, &err) == 0 &&
             rwkv_encoder_feed(e, NULL, 0, &got, &err) == 0 &&
             rwkv_encoder_feed(e, "world!", 6, &got, &err) == 0 &&
             rwkv_encoder_finish(e, &got, &err) == 0 &&
             rwkv_encoder_finish(e, &got, &err) == 0; /* finishing twice adds nothing */
        ok = ok && whole(world, (const uint8_t *)"Hello, world!", 13, &want) == 0 &&
             ids_same(&got, &want) && want.n == 4;
    }
    rwkv_ids_free(&got);
    rwkv_ids_free(&want);
    rwkv_encoder_free(e);
    rwkv_encoder_free(NULL);
    CHECK(ok);
}

static void test_byte_tokenizer_streams(void)
{
    rwkv_tokenizer *t = rwkv_tokenizer_bytes();
    rwkv_encoder *e = t ? rwkv_encoder_new(t) : NULL;
    rwkv_ids got = {0};
    rwkv_error err = {{0}};
    int ok = e != NULL;
    const uint8_t *held;
    uint8_t text[100];
    for (int i = 0; i < 100; i++)
        text[i] = (uint8_t)(255 - i);
    for (int i = 0; i < 100 && ok; i += 3)
        ok = rwkv_encoder_feed(e, text + i, i + 3 <= 100 ? 3 : 100 - (size_t)i, &got, &err) == 0 &&
             rwkv_encoder_pending(e, &held) == 0;
    ok = ok && rwkv_encoder_finish(e, &got, &err) == 0 && got.n == 100;
    for (size_t i = 0; ok && i < 100; i++)
        ok = got.v[i] == text[i];
    ok = ok && rwkv_encoder_restore(e, text, 0, &err) == 0;
    ok = ok && rwkv_encoder_restore(e, text, 1, &err) == -1;
    rwkv_ids_free(&got);
    rwkv_encoder_free(e);
    rwkv_tokenizer_free(t);
    CHECK(ok);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_random_splits_equal_whole);
    RUN(test_long_token_runs_stream);
    RUN(test_every_split_point_of_every_case);
    RUN(test_checkpoint_restore_mid_stream);
    RUN(test_restore_validates_bytes);
    RUN(test_encoder_reuse_and_empty_feeds);
    RUN(test_byte_tokenizer_streams);
    rwkv_tokenizer_free(world);
    free(long_text);
    free(cases_text);
    return test_summary();
}
