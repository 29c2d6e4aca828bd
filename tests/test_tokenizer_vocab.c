/* test_tokenizer_vocab.c — hand-made World vocabulary files, good and bad:
 * one bad file per failure mode (each must fail with a message naming the
 * file, line and byte), every truncation of a small file, and the accepted
 * variations (CRLF, no final newline, ids out of order, every escape).
 *
 * The files are a minimal valid vocabulary (ids 1..256 = b'\xNN', as in the
 * real one) followed by the lines under test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tokenizer.h"
#include "tests/testutil.h"

static char base_text[256 * 16];
static size_t base_len;

static void make_base(void)
{
    if (base_len)
        return;
    for (int b = 0; b < 256; b++)
        base_len += (size_t)snprintf(base_text + base_len, sizeof base_text - base_len,
                                     "%d b'\\x%02x' 1\n", b + 1, b);
}

/* Parses base + extra (extra_len bytes, may hold NULs). */
static int parse_with(const char *extra, size_t extra_len, rwkv_tokenizer **t, rwkv_error *err)
{
    make_base();
    char *buf = malloc(base_len + extra_len + 1);
    memcpy(buf, base_text, base_len);
    memcpy(buf + base_len, extra, extra_len);
    int rc = rwkv_tokenizer_parse("v.txt", buf, base_len + extra_len, t, err);
    free(buf);
    return rc;
}

static int token_is(const rwkv_tokenizer *t, uint32_t id, const char *bytes, size_t n)
{
    const uint8_t *b;
    size_t len;
    return rwkv_tokenizer_token_bytes(t, id, &b, &len) == 0 && len == n &&
           memcmp(b, bytes, n) == 0;
}

static void test_minimal_vocab_and_escapes(void)
{
    static const char extra[] =
        "257 'ab' 2\n"
        "258 '\\x80' 2\n"               /* str \x80 = U+0080 = C2 80 */
        "259 b'\\x80\\x81' 2\n"         /* bytes: raw */
        "260 \"it's\" 4\n"
        "261 '\\u20ac' 3\n"
        "262 '\\U0001F600' 4\n"
        "263 '\\101\\0' 2\n"            /* octal: 'A' and NUL */
        "264 '\\a\\b\\f\\v\\\"\\'\\\\' 7\n"
        "265 '\\n\\r\\t' 3\n"
        "266 u'\xc3\xa9' 2\n"           /* raw UTF-8 in a str, u prefix */
        "267 B'\\xff\\xfe' 2\n"
        "268 '\\777' 2\n"               /* str octal above 0o377 = U+01FF */
        "269 'tab\there' 8\n";          /* raw tab inside a literal */
    rwkv_tokenizer *t = NULL;
    rwkv_error err = {{0}};
    CHECKF(parse_with(extra, sizeof extra - 1, &t, &err) == 0, "%s", err.msg);
    static const struct { uint32_t id; const char *b; size_t n; } want[] = {
        {1, "\0", 1}, {256, "\xff", 1}, {257, "ab", 2}, {258, "\xc2\x80", 2},
        {259, "\x80\x81", 2}, {260, "it's", 4}, {261, "\xe2\x82\xac", 3},
        {262, "\xf0\x9f\x98\x80", 4}, {263, "A\0", 2}, {264, "\a\b\f\v\"'\\", 7},
        {265, "\n\r\t", 3}, {266, "\xc3\xa9", 2}, {267, "\xff\xfe", 2},
        {268, "\xc7\xbf", 2}, {269, "tab\there", 8},
    };
    int ok = rwkv_tokenizer_vocab_size(t) == 270 && rwkv_tokenizer_max_pending(t) == 7;
    uint32_t bad = 0;
    for (size_t i = 0; i < sizeof want / sizeof *want && !bad; i++)
        if (!token_is(t, want[i].id, want[i].b, want[i].n))
            bad = want[i].id;
    /* greedy longest match with the small vocabulary */
    rwkv_ids ids = {0};
    int enc = rwkv_tokenizer_encode(t, "abc\xc2\x80tab\there", 13, &ids, &err) == 0 &&
              ids.n == 4 && ids.v[0] == 257 && ids.v[1] == 'c' + 1 && ids.v[2] == 258 &&
              ids.v[3] == 269;
    rwkv_ids_free(&ids);
    rwkv_tokenizer_free(t);
    CHECK(ok);
    CHECKF(!bad, "token %u", bad);
    CHECK(enc);
}

static void test_crlf_missing_newline_and_order(void)
{
    make_base();
    /* CRLF everywhere, ids in reverse order, no final newline */
    char *buf = malloc(base_len * 2 + 64);
    size_t n = 0;
    for (int b = 255; b >= 0; b--)
        n += (size_t)sprintf(buf + n, "%d b'\\x%02x' 1\r\n", b + 1, b);
    n += (size_t)sprintf(buf + n, "257 'xy' 2");
    rwkv_tokenizer *t = NULL;
    rwkv_error err = {{0}};
    int rc = rwkv_tokenizer_parse("v.txt", buf, n, &t, &err);
    free(buf);
    CHECKF(rc == 0, "%s", err.msg);
    int ok = rwkv_tokenizer_vocab_size(t) == 258 && token_is(t, 257, "xy", 2) &&
             token_is(t, 1, "\0", 1) && token_is(t, 200, "\xc7", 1);
    rwkv_tokenizer_free(t);
    CHECK(ok);
}

typedef struct bad_case {
    const char *extra; /* appended to the base vocabulary */
    const char *want;  /* substring of the error */
} bad_case;

static void test_bad_lines_one_per_failure_mode(void)
{
    static const bad_case cases[] = {
        {"\n", "line 257, byte 3476: empty line"},
        {"257 'ab' 2\n\n", "line 258, byte 3487: empty line"},
        {"257 'ab' 2\n\n258 'cd' 2\n", "empty line"},
        {"257 'ab'", "line 257, byte 3484: expected one space after the literal"},
        {"257 'ab' ", "expected the token's byte length"},
        {"257 'ab' \n", "expected the token's byte length"},
        {"257", "expected one space after the id"},
        {"257 ", "line 257, byte 3480: expected a quoted literal"},
        {"257 'ab", "unterminated literal"},
        {"257 'ab\n' 2\n", "unterminated literal"},
        {"257 'a\\q' 2", "line 257, byte 3482: unknown escape"},
        {"257 '\\x4' 1", "\\x needs exactly two hex digits"},
        {"257 '\\xZZ' 1", "\\x needs exactly two hex digits"},
        {"257 '\\u12' 1", "\\u needs exactly four hex digits"},
        {"257 '\\U0011000' 1", "\\U needs exactly eight hex digits"},
        {"257 '\\U00110000' 4", "above U+10FFFF"},
        {"257 '\\ud800' 3", "surrogate"},
        {"257 '\\uDFFF' 3", "surrogate"},
        {"257 '\\N{EM DASH}' 3", "named escapes"},
        {"257 b'\\u1234' 2", "unknown escape"},
        {"257 b'\\400' 1", "octal escape above"},
        {"257 'ab\\", "backslash at end of line"},
        {"257 '\\x80' 1", "line 257, byte 3487: length column says 1 but the literal decodes to 2"},
        {"257 b'\\x80' 2", "length column says 2 but the literal decodes to 1"},
        {"257 'ab' 99999999999999999999999", "length column says more than 1024"},
        {"257 'ab' 02", "expected the token's byte length"},
        {"256 'ab' 2", "line 257, byte 3476: duplicate id 256"},
        {"258 'ab' 2", "id above 257"},
        {"257 'ab' 2\n257 'cd' 2", "duplicate id 257"},
        {"0 'ab' 2", "id 0 is reserved"},
        {"99999999999999999999999999999 'ab' 2", "id above 257"},
        {"0257 'ab' 2", "no leading zeros"},
        {"+257 'ab' 2", "expected a token id"},
        {"-1 'ab' 2", "expected a token id"},
        {"257  'ab' 2", "expected a quoted literal"},
        {"257\t'ab' 2", "expected one space after the id"},
        {"257 'ab' 2 ", "unexpected bytes after the length column"},
        {"257 'ab'  2", "expected the token's byte length"},
        {"257 'ab' 2\r\r\n", "unexpected bytes after the length column"},
        {"257 'ab' 2\r258 'cd' 2", "unexpected bytes after the length column"},
        {"257 'a' 'b' 2", "expected the token's byte length"},
        {"257 b'\xc3\xa9' 2", "non-ASCII character in a bytes literal"},
        {"257 '\xff' 1", "invalid UTF-8"},
        {"257 '\xc0\x80' 2", "invalid UTF-8"},
        {"257 '\xed\xa0\x80' 3", "invalid UTF-8"},
        {"257 '\xe2\x82' 2", "invalid UTF-8"},
        {"257 '\xf4\x90\x80\x80' 4", "invalid UTF-8"},
        {"257 'a\rb' 3", "carriage return inside a literal"},
        {"257 '' 0", "empty token"},
        {"257 '''a''' 1", "triple-quoted"},
        {"257 r'ab' 2", "expected a quoted literal"},
        {"257 ab 2", "expected a quoted literal"},
        {"257 'ab' 2\n258 'ab' 2", "line 258, byte 3487: id 258 decodes to the same bytes as id 257 (line 257)"},
        {"257 '\\x41' 1", "id 257 decodes to the same bytes as id 66 (line 66)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rwkv_tokenizer *t = (rwkv_tokenizer *)1;
        rwkv_error err = {{0}};
        int rc = parse_with(cases[i].extra, strlen(cases[i].extra), &t, &err);
        CHECKF(rc == -1 && t == NULL, "case %zu (%s) was accepted", i, cases[i].extra);
        CHECKF(strstr(err.msg, cases[i].want) != NULL, "case %zu: got '%s', want '%s'", i,
               err.msg, cases[i].want);
        CHECKF(strncmp(err.msg, "v.txt: line ", 12) == 0, "case %zu: '%s'", i, err.msg);
    }
}

static void test_nul_bytes_rejected(void)
{
    static const struct { const char *s; size_t n; } cases[] = {
        {"257 'a\0' 2", 10}, {"\0" "257 'ab' 2", 11}, {"257 'ab' 2\0", 11},
        {"257 'ab'\0 2", 11}, {"257\0 'ab' 2", 11},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rwkv_tokenizer *t = NULL;
        rwkv_error err = {{0}};
        CHECKF(parse_with(cases[i].s, cases[i].n, &t, &err) == -1, "case %zu accepted", i);
        CHECKF(strstr(err.msg, "line 257"), "case %zu: %s", i, err.msg);
    }
}

static void test_whole_file_failures(void)
{
    rwkv_tokenizer *t = NULL;
    rwkv_error err = {{0}};
    CHECK(rwkv_tokenizer_parse("v.txt", "", 0, &t, &err) == -1);
    CHECKF(strstr(err.msg, "v.txt: empty"), "%s", err.msg);
    CHECK(rwkv_tokenizer_parse("v.txt", "\n", 1, &t, &err) == -1);
    CHECK(rwkv_tokenizer_parse("v.txt", "1", 1, &t, &err) == -1);
    CHECKF(strstr(err.msg, "line 1, byte 1: expected one space"), "%s", err.msg);
    CHECK(rwkv_tokenizer_parse("v.txt", "\xef\xbb\xbf" "1 'a' 1\n", 11, &t, &err) == -1);
    CHECKF(strstr(err.msg, "unrecognised"), "%s", err.msg);
    /* a well-formed file lacking single bytes */
    CHECK(rwkv_tokenizer_parse("v.txt", "1 'a' 1\n2 'b' 1\n", 16, &t, &err) == -1);
    CHECKF(strstr(err.msg, "no token for the single byte 0x00"), "%s", err.msg);
    /* byte 0x00 missing while ids stay contiguous */
    make_base();
    const char *second = strchr(base_text, '\n') + 1;
    char *buf = malloc(base_len + 64);
    size_t n = (size_t)sprintf(buf, "1 'ab' 2\n");
    memcpy(buf + n, second, base_len - (size_t)(second - base_text));
    n += base_len - (size_t)(second - base_text);
    int rc = rwkv_tokenizer_parse("v.txt", buf, n, &t, &err);
    free(buf);
    CHECK(rc == -1);
    CHECKF(strstr(err.msg, "single byte 0x00"), "%s", err.msg);
    CHECK(t == NULL);
}

static void test_token_length_limit(void)
{
    char line[1200];
    int n = sprintf(line, "257 '");
    memset(line + n, 'z', 1024);
    n += 1024;
    n += sprintf(line + n, "' 1024\n");
    rwkv_tokenizer *t = NULL;
    rwkv_error err = {{0}};
    CHECKF(parse_with(line, (size_t)n, &t, &err) == 0, "%s", err.msg);
    CHECK(rwkv_tokenizer_max_pending(t) == 1023);
    rwkv_tokenizer_free(t);
    n = sprintf(line, "257 '");
    memset(line + n, 'z', 1025);
    n += 1025;
    n += sprintf(line + n, "' 1025\n");
    CHECK(parse_with(line, (size_t)n, &t, &err) == -1);
    CHECKF(strstr(err.msg, "longer than the limit of 1024"), "%s", err.msg);
}

/* Every prefix of a small vocabulary: accepted exactly when it ends at a
 * line end (with or without that line's newline) after all 256 byte
 * tokens; never a crash (ASan build). */
static void test_every_truncation(void)
{
    static const char extra[] = "257 'ab' 2\n258 '\\u20ac\\x80' 5\n259 b'\\x00\\x01' 2\n";
    make_base();
    size_t total = base_len + sizeof extra - 1;
    char *full = malloc(total);
    memcpy(full, base_text, base_len);
    memcpy(full + base_len, extra, sizeof extra - 1);
    int bad = -1;
    for (size_t cut = 0; cut <= total && bad < 0; cut++) {
        int good = cut >= base_len - 1 && (full[cut - 1] == '\n' ||
                                           (cut < total && full[cut] == '\n'));
        char *buf = malloc(cut ? cut : 1);
        memcpy(buf, full, cut);
        rwkv_tokenizer *t = NULL;
        rwkv_error err = {{0}};
        int rc = rwkv_tokenizer_parse("v.txt", buf, cut, &t, &err);
        free(buf);
        if ((rc == 0) != good || (rc != 0 && err.msg[0] == 0))
            bad = (int)cut;
        rwkv_tokenizer_free(t);
    }
    free(full);
    CHECKF(bad < 0, "prefix of %d bytes", bad);
}

/* Vocabularies whose trie has the same awkward child labels at every node
 * (the double array's hardest packing cases): they load, every token
 * encodes to itself, and streaming equals whole-text encoding. */
static void test_adversarial_trie_shapes(void)
{
    static const struct { uint8_t labels[4]; int k, depth; } shapes[] = {
        {{0x00, 0xff}, 2, 12}, {{0x10, 0x20, 0xf0}, 3, 8}, {{0x00, 0x01, 0xff}, 3, 8},
        {{0x00, 0x40, 0x80, 0xc0}, 4, 6},
    };
    for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++) {
        int k = shapes[sh].k, depth = shapes[sh].depth;
        size_t count = 1;
        for (int d = 0; d < depth; d++)
            count *= (size_t)k;
        make_base();
        size_t cap = base_len + count * (16 + 4 * (size_t)depth);
        char *buf = malloc(cap);
        memcpy(buf, base_text, base_len);
        size_t n = base_len;
        for (size_t i = 0; i < count; i++) { /* token i: the base-k digits of i */
            n += (size_t)sprintf(buf + n, "%zu b'", 257 + i);
            size_t x = i;
            for (int d = 0; d < depth; d++, x /= (size_t)k)
                n += (size_t)sprintf(buf + n, "\\x%02x", shapes[sh].labels[x % (size_t)k]);
            n += (size_t)sprintf(buf + n, "' %d\n", depth);
        }
        rwkv_tokenizer *t = NULL;
        rwkv_error err = {{0}};
        int rc = rwkv_tokenizer_parse("adv.txt", buf, n, &t, &err);
        free(buf);
        CHECKF(rc == 0, "shape %zu: %s", sh, err.msg);
        uint32_t bad = 0;
        rwkv_ids ids = {0}, streamed = {0};
        for (uint32_t id = 1; id < rwkv_tokenizer_vocab_size(t) && !bad; id++) {
            const uint8_t *b;
            size_t len;
            ids.n = 0;
            if (rwkv_tokenizer_token_bytes(t, id, &b, &len) != 0 ||
                rwkv_tokenizer_encode(t, b, len, &ids, &err) != 0 || ids.n != 1 ||
                ids.v[0] != id)
                bad = id;
        }
        /* a random text over the labels, whole vs 3-byte pieces */
        uint8_t text[3000];
        uint64_t seed = sh + 1;
        for (size_t i = 0; i < sizeof text; i++)
            text[i] = shapes[sh].labels[test_rand(&seed) % (uint64_t)k];
        ids.n = 0;
        rwkv_encoder *e = rwkv_encoder_new(t);
        int ok = e && rwkv_tokenizer_encode(t, text, sizeof text, &ids, &err) == 0;
        for (size_t p = 0; ok && p < sizeof text; p += 3)
            ok = rwkv_encoder_feed(e, text + p, 3, &streamed, &err) == 0;
        ok = ok && rwkv_encoder_finish(e, &streamed, &err) == 0 && streamed.n == ids.n &&
             memcmp(streamed.v, ids.v, ids.n * sizeof *ids.v) == 0 &&
             ids.n <= sizeof text / (size_t)depth + (size_t)depth;
        rwkv_encoder_free(e);
        rwkv_ids_free(&ids);
        rwkv_ids_free(&streamed);
        rwkv_tokenizer_free(t);
        CHECKF(!bad, "shape %zu: token %u does not encode to itself", sh, bad);
        CHECKF(ok, "shape %zu: streaming differs", sh);
    }
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_minimal_vocab_and_escapes);
    RUN(test_crlf_missing_newline_and_order);
    RUN(test_bad_lines_one_per_failure_mode);
    RUN(test_nul_bytes_rejected);
    RUN(test_whole_file_failures);
    RUN(test_token_length_limit);
    RUN(test_every_truncation);
    RUN(test_adversarial_trie_shapes);
    return test_summary();
}
