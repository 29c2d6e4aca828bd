/* test_daemon_msg.c — the ingest message decoder (core/msg_decode.h):
 * valid messages of every kind, then one hostile message per failure mode,
 * each asserting the reason code, and a check that messages claiming
 * gigabytes are refused without msgpack-c ever allocating for the claim.
 */
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/mp_scan.h"
#include "core/msg_decode.h"
#include "tests/testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
/* Make any allocation above 512 MB fail (NULL) instead of being reserved
 * lazily: a decoder that let msgpack-c act on a huge claim would then report
 * "overloaded" and the reason checks below would catch it. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "max_allocation_size_mb=512:allocator_may_return_null=1";
}
#else
#define UNDER_ASAN 0
#endif

/* ---- a tiny message builder over msgpack-c's packer ---- */
static msgpack_sbuffer sb;
static msgpack_packer pk;

static void mb_start(size_t n_fields)
{
    msgpack_sbuffer_clear(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n_fields);
}
static void s(const char *str) { msgpack_pack_str_with_body(&pk, str, strlen(str)); }
static void u(uint64_t v) { msgpack_pack_uint64(&pk, v); }
static void bin(const void *p, size_t n) { msgpack_pack_bin_with_body(&pk, p, n); }
static void strn(const void *p, size_t n) { msgpack_pack_str_with_body(&pk, p, n); }
/* v:1, doc:"d1", seq: seq (three fields) */
static void head(uint64_t seq)
{
    s("v"), u(1), s("doc"), s("d1"), s("seq"), u(seq);
}

static const rwkvd_msg_limits lim = {.max_msg_bytes = 1 << 20, .max_tokens = 1000,
                                     .vocab_size = 65536};
static rwkvd_ingest m;
static rwkv_error err;
static rwkvd_reason why;

static int dec(void) { return rwkvd_ingest_decode(sb.data, sb.size, &lim, &m, &why, &err); }
static int dec_raw(const void *p, size_t n)
{
    return rwkvd_ingest_decode(p, n, &lim, &m, &why, &err);
}

/* Decodes the built message and expects refusal with reason r. */
#define EXPECT_REFUSED(r)                                                                        \
    do {                                                                                         \
        int rc_ = dec();                                                                         \
        CHECKF(rc_ == -1 && why == (r), "rc %d reason %s (want %s): %s", rc_,                     \
               rwkvd_reason_name(why), rwkvd_reason_name(r), err.msg);                           \
        CHECK(m.tokens == NULL);                                                                 \
    } while (0)
#define EXPECT_RAW_REFUSED(p, n, r)                                                              \
    do {                                                                                         \
        int rc_ = dec_raw(p, n);                                                                 \
        CHECKF(rc_ == -1 && why == (r), "rc %d reason %s (want %s): %s", rc_,                     \
               rwkvd_reason_name(why), rwkvd_reason_name(r), err.msg);                           \
    } while (0)

/* ---- valid messages ---- */

static void test_text_message(void)
{
    mb_start(4);
    head(0);
    s("text"), s("hello, wörld");
    CHECKF(dec() == 0, "%s", err.msg);
    CHECK(m.have_doc && m.doc_len == 2 && memcmp(m.doc, "d1", 2) == 0);
    CHECK(m.have_seq && m.seq == 0 && !m.eof && !m.has_opts);
    CHECK(m.kind == RWKVD_PAYLOAD_TEXT && m.data_len == strlen("hello, wörld"));
    CHECK(memcmp(m.data, "hello, wörld", m.data_len) == 0);
    /* borrowed: points into the message buffer itself */
    CHECK(m.data > (const uint8_t *)sb.data && m.data + m.data_len == (const uint8_t *)sb.data + sb.size);
    CHECK(m.opts.outputs == RWKVD_OUT_DEFAULT && m.opts.pooling == RWKVD_POOL_LAST &&
          m.opts.normalize && m.opts.topk == RWKVD_TOPK_DEFAULT);
    rwkvd_ingest_clear(&m);
}

static void test_bytes_message_any_bytes(void)
{
    static const uint8_t raw[] = {0xff, 0x00, 0xc0, 0x80, 0xed, 0xa0};
    mb_start(5);
    head(7);
    s("bytes"), bin(raw, sizeof raw);
    s("eof"), msgpack_pack_true(&pk);
    CHECKF(dec() == 0, "%s", err.msg);
    CHECK(m.kind == RWKVD_PAYLOAD_BYTES && m.data_len == sizeof raw && memcmp(m.data, raw, 6) == 0);
    CHECK(m.seq == 7 && m.eof);
    rwkvd_ingest_clear(&m);
}

static void test_tokens_array_and_bin(void)
{
    mb_start(4);
    head(1);
    s("tokens");
    msgpack_pack_array(&pk, 5);
    u(0), u(127), u(128), u(65535), msgpack_pack_int64(&pk, 300);
    CHECKF(dec() == 0, "%s", err.msg);
    CHECK(m.kind == RWKVD_PAYLOAD_TOKENS && m.n_tokens == 5);
    CHECK(m.tokens[0] == 0 && m.tokens[1] == 127 && m.tokens[2] == 128 && m.tokens[3] == 65535 &&
          m.tokens[4] == 300);
    rwkvd_ingest_clear(&m);
    CHECK(m.tokens == NULL && m.n_tokens == 0);

    static const uint8_t le[] = {1, 0, 0, 0, 0x34, 0x12, 0, 0, 0xff, 0xff, 0, 0};
    mb_start(4);
    head(2);
    s("tokens"), bin(le, sizeof le);
    CHECKF(dec() == 0, "%s", err.msg);
    CHECK(m.n_tokens == 3 && m.tokens[0] == 1 && m.tokens[1] == 0x1234 && m.tokens[2] == 65535);
    rwkvd_ingest_clear(&m);

    mb_start(4); /* empty token list is a valid (if pointless) message */
    head(3);
    s("tokens"), msgpack_pack_array(&pk, 0);
    CHECKF(dec() == 0, "%s", err.msg);
    CHECK(m.kind == RWKVD_PAYLOAD_TOKENS && m.n_tokens == 0);
    rwkvd_ingest_clear(&m);
}

/* Non-negative values in the signed encodings (int8/16/32/64) are integers
 * like any other: msgpack producers differ in which form they pick. */
static void test_signed_encodings_of_positive_values(void)
{
    static const uint8_t msg[] = {0x84, 0xa1, 'v', 0xd0, 0x01, 0xa3, 'd', 'o', 'c', 0xa1, 'x',
                                  0xa3, 's', 'e', 'q', 0xd1, 0x00, 0x05, 0xa6, 't', 'o', 'k',
                                  'e', 'n', 's', 0x92, 0xd2, 0x00, 0x00, 0x01, 0x00, 0xd3,
                                  0, 0, 0, 0, 0, 0, 0, 9};
    CHECKF(dec_raw(msg, sizeof msg) == 0, "%s", err.msg);
    CHECK(m.seq == 5 && m.n_tokens == 2 && m.tokens[0] == 256 && m.tokens[1] == 9);
    rwkvd_ingest_clear(&m);
}

static void test_eof_only(void)
{
    mb_start(4);
    head(9);
    s("eof"), msgpack_pack_true(&pk);
    CHECKF(dec() == 0, "%s", err.msg);
    CHECK(m.kind == RWKVD_PAYLOAD_NONE && m.eof && m.seq == 9);
    rwkvd_ingest_clear(&m);
}

static void test_opts_full(void)
{
    mb_start(5);
    head(0);
    s("text"), s("x");
    s("opts"), msgpack_pack_map(&pk, 4);
    s("outputs"), msgpack_pack_array(&pk, 4), s("surprisal"), s("topk"), s("logits_last"), s("embedding");
    s("pooling"), s("mean");
    s("normalize"), msgpack_pack_false(&pk);
    s("topk"), u(RWKVD_TOPK_MAX);
    CHECKF(dec() == 0, "%s", err.msg);
    CHECK(m.has_opts && m.opts.outputs == RWKVD_OUT_ALL && m.opts.pooling == RWKVD_POOL_MEAN &&
          !m.opts.normalize && m.opts.topk == RWKVD_TOPK_MAX);
    rwkv_error e2;
    CHECK(rwkvd_doc_opts_check(&m.opts, &e2) == 0);
    rwkvd_ingest_clear(&m);

    mb_start(5); /* partial opts keep the other defaults; empty outputs allowed */
    head(0);
    s("text"), s("x");
    s("opts"), msgpack_pack_map(&pk, 1), s("outputs"), msgpack_pack_array(&pk, 0);
    CHECKF(dec() == 0, "%s", err.msg);
    CHECK(m.opts.outputs == 0 && m.opts.pooling == RWKVD_POOL_LAST && m.opts.normalize &&
          m.opts.topk == RWKVD_TOPK_DEFAULT);
    rwkvd_ingest_clear(&m);
}

/* v2: opts.task (EmbeddingRWKV); a v1 message naming it is refused as it
 * always was. */
static void test_opts_task_v2(void)
{
    static const char *const names[3] = {"retrieval", "similarity", "classification"};
    for (int t = 0; t < 3; t++) {
        mb_start(5);
        s("v"), u(2), s("doc"), s("d1"), s("seq"), u(0);
        s("text"), s("x");
        s("opts"), msgpack_pack_map(&pk, 1), s("task"), s(names[t]);
        CHECKF(dec() == 0, "%s", err.msg);
        CHECK(m.v == 2 && m.has_opts && m.opts.has_task && m.opts.task == t &&
              !m.opts.outputs_given);
        rwkvd_ingest_clear(&m);
    }
    mb_start(5);
    s("v"), u(1), s("doc"), s("d1"), s("seq"), u(0);
    s("text"), s("x");
    s("opts"), msgpack_pack_map(&pk, 1), s("task"), s("retrieval");
    EXPECT_REFUSED(RWKVD_R_UNKNOWN_FIELD);
    mb_start(5);
    s("v"), u(2), s("doc"), s("d1"), s("seq"), u(0);
    s("text"), s("x");
    s("opts"), msgpack_pack_map(&pk, 1), s("task"), s("Retrieval");
    EXPECT_REFUSED(RWKVD_R_BAD_OPTS);
    mb_start(5);
    s("v"), u(2), s("doc"), s("d1"), s("seq"), u(0);
    s("text"), s("x");
    s("opts"), msgpack_pack_map(&pk, 1), s("task"), u(1);
    EXPECT_REFUSED(RWKVD_R_WRONG_TYPE);
    mb_start(5);
    s("v"), u(2), s("doc"), s("d1"), s("seq"), u(0);
    s("text"), s("x");
    s("opts"), msgpack_pack_map(&pk, 1), s("eos_every"), u(128);
    CHECKF(dec() == 0, "%s", err.msg);
    CHECK(m.opts.eos_every == 128 && !m.opts.has_task);
    rwkvd_ingest_clear(&m);
    mb_start(5);
    s("v"), u(2), s("doc"), s("d1"), s("seq"), u(0);
    s("text"), s("x");
    s("opts"), msgpack_pack_map(&pk, 1), s("eos_every"), u(0);
    EXPECT_REFUSED(RWKVD_R_BAD_OPTS);
    mb_start(5);
    s("v"), u(2), s("doc"), s("d1"), s("seq"), u(0);
    s("text"), s("x");
    s("opts"), msgpack_pack_map(&pk, 1), s("eos_every"), u(RWKVD_EOS_EVERY_MAX + 1ull);
    EXPECT_REFUSED(RWKVD_R_BAD_OPTS);
    mb_start(5);
    s("v"), u(1), s("doc"), s("d1"), s("seq"), u(0);
    s("text"), s("x");
    s("opts"), msgpack_pack_map(&pk, 1), s("eos_every"), u(8);
    EXPECT_REFUSED(RWKVD_R_UNKNOWN_FIELD);
    mb_start(5); /* outputs_given follows the message */
    s("v"), u(2), s("doc"), s("d1"), s("seq"), u(0);
    s("text"), s("x");
    s("opts"), msgpack_pack_map(&pk, 1), s("outputs"), msgpack_pack_array(&pk, 1), s("embedding");
    CHECKF(dec() == 0, "%s", err.msg);
    CHECK(m.opts.outputs_given && !m.opts.has_task && m.v == 2);
    rwkvd_ingest_clear(&m);
}

static void test_doc_forms_and_limits(void)
{
    uint8_t id[RWKVD_DOC_MAX + 1];
    for (size_t i = 0; i < sizeof id; i++)
        id[i] = (uint8_t)(i * 7 + 1);
    mb_start(4); /* a bin doc id of exactly 256 arbitrary bytes */
    s("v"), u(1), s("doc"), bin(id, RWKVD_DOC_MAX), s("seq"), u(0), s("text"), s("");
    CHECKF(dec() == 0, "%s", err.msg);
    CHECK(m.doc_len == RWKVD_DOC_MAX && memcmp(m.doc, id, RWKVD_DOC_MAX) == 0);
    CHECK(m.kind == RWKVD_PAYLOAD_TEXT && m.data_len == 0);

    mb_start(4);
    s("v"), u(1), s("doc"), bin(id, RWKVD_DOC_MAX + 1), s("seq"), u(0), s("text"), s("");
    EXPECT_REFUSED(RWKVD_R_BAD_DOC);
    CHECK(!m.have_doc && m.have_seq && m.seq == 0);
    mb_start(4);
    s("v"), u(1), s("doc"), s(""), s("seq"), u(0), s("text"), s("");
    EXPECT_REFUSED(RWKVD_R_BAD_DOC);
    mb_start(4);
    s("v"), u(1), s("doc"), u(5), s("seq"), u(0), s("text"), s("");
    EXPECT_REFUSED(RWKVD_R_WRONG_TYPE);
}

static void test_seq_range_and_types(void)
{
    mb_start(4);
    head(RWKVD_SEQ_MAX);
    s("text"), s("a");
    CHECKF(dec() == 0, "%s", err.msg);
    CHECK(m.seq == RWKVD_SEQ_MAX);
    mb_start(4);
    head(RWKVD_SEQ_MAX + 1);
    s("text"), s("a");
    EXPECT_REFUSED(RWKVD_R_BAD_SEQ);
    CHECK(m.have_doc && !m.have_seq); /* the error output can still name the doc */
    mb_start(4);
    s("v"), u(1), s("doc"), s("d1"), s("seq"), msgpack_pack_int64(&pk, -1), s("text"), s("a");
    EXPECT_REFUSED(RWKVD_R_BAD_SEQ);
    CHECKF(strstr(err.msg, "negative") != NULL, "%s", err.msg);
    mb_start(4);
    s("v"), u(1), s("doc"), s("d1"), s("seq"), msgpack_pack_double(&pk, 1.0), s("text"), s("a");
    EXPECT_REFUSED(RWKVD_R_WRONG_TYPE);
    mb_start(4);
    s("v"), u(1), s("doc"), s("d1"), s("seq"), s("1"), s("text"), s("a");
    EXPECT_REFUSED(RWKVD_R_WRONG_TYPE);
}

static void test_version_and_missing(void)
{
    mb_start(4);
    s("v"), u(3), s("doc"), s("d1"), s("seq"), u(0), s("text"), s("a");
    EXPECT_REFUSED(RWKVD_R_BAD_VERSION);
    CHECK(m.have_doc && m.have_seq); /* echoed even for a foreign version */
    mb_start(4);
    s("v"), s("1"), s("doc"), s("d1"), s("seq"), u(0), s("text"), s("a");
    EXPECT_REFUSED(RWKVD_R_WRONG_TYPE);
    mb_start(3);
    s("doc"), s("d1"), s("seq"), u(0), s("text"), s("a");
    EXPECT_REFUSED(RWKVD_R_MISSING_FIELD);
    CHECKF(strstr(err.msg, "\"v\"") != NULL, "%s", err.msg);
    mb_start(3);
    s("v"), u(1), s("seq"), u(0), s("text"), s("a");
    EXPECT_REFUSED(RWKVD_R_MISSING_FIELD);
    mb_start(3);
    s("v"), u(1), s("doc"), s("d1"), s("text"), s("a");
    EXPECT_REFUSED(RWKVD_R_MISSING_FIELD);
    mb_start(0);
    EXPECT_REFUSED(RWKVD_R_MISSING_FIELD);
}

static void test_payload_rules(void)
{
    mb_start(5);
    head(0);
    s("text"), s("a"), s("bytes"), bin("a", 1);
    EXPECT_REFUSED(RWKVD_R_PAYLOAD_CONFLICT);
    mb_start(6);
    head(0);
    s("tokens"), msgpack_pack_array(&pk, 0), s("bytes"), bin("a", 1), s("text"), s("");
    EXPECT_REFUSED(RWKVD_R_PAYLOAD_CONFLICT);
    mb_start(3);
    head(0);
    EXPECT_REFUSED(RWKVD_R_NO_PAYLOAD);
    mb_start(4);
    head(0);
    s("eof"), msgpack_pack_false(&pk);
    EXPECT_REFUSED(RWKVD_R_NO_PAYLOAD);
    mb_start(4);
    head(0);
    s("eof"), u(1);
    EXPECT_REFUSED(RWKVD_R_WRONG_TYPE);
    mb_start(4);
    head(0);
    s("text"), bin("a", 1);
    EXPECT_REFUSED(RWKVD_R_WRONG_TYPE);
    mb_start(4);
    head(0);
    s("bytes"), s("a");
    EXPECT_REFUSED(RWKVD_R_WRONG_TYPE);
    mb_start(4);
    head(0);
    s("tokens"), s("abcd");
    EXPECT_REFUSED(RWKVD_R_WRONG_TYPE);
}

static void test_invalid_utf8(void)
{
    static const struct {
        const char *b;
        size_t n, bad;
    } cases[] = {
        {"ab\xc0\x80", 4, 2},         /* overlong NUL */
        {"\xe0\x80\xaf", 3, 0},       /* overlong '/' */
        {"x\xed\xa0\x80", 4, 1},      /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 4, 0},   /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 4, 0},   /* invalid lead */
        {"abc\xe2\x82", 5, 3},        /* truncated euro sign */
        {"\x80", 1, 0},               /* lone continuation */
        {"ok\xc3(", 4, 2},            /* bad continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mb_start(4);
        head(0);
        s("text"), strn(cases[i].b, cases[i].n);
        EXPECT_REFUSED(RWKVD_R_BAD_UTF8);
        /* the offset in the message is that of the bad byte in the buffer */
        size_t at = sb.size - cases[i].n + cases[i].bad;
        char want[64];
        snprintf(want, sizeof want, "offset %zu:", at);
        CHECKF(strstr(err.msg, want) != NULL, "case %zu: want '%s' in '%s'", i, want, err.msg);
    }
    mb_start(4); /* the same bytes are fine as "bytes" */
    head(0);
    s("bytes"), bin("\xed\xa0\x80", 3);
    CHECKF(dec() == 0, "%s", err.msg);
}

static void test_bad_tokens(void)
{
    mb_start(4);
    head(0);
    s("tokens"), msgpack_pack_array(&pk, 3), u(1), u(2), u(65536);
    EXPECT_REFUSED(RWKVD_R_BAD_TOKEN);
    char want[64];
    snprintf(want, sizeof want, "offset %zu:", sb.size - 5); /* 0xce + 4 bytes */
    CHECKF(strstr(err.msg, want) != NULL, "want '%s' in '%s'", want, err.msg);
    mb_start(4);
    head(0);
    s("tokens"), msgpack_pack_array(&pk, 2), u(1), msgpack_pack_int64(&pk, -3);
    EXPECT_REFUSED(RWKVD_R_BAD_TOKEN);
    mb_start(4);
    head(0);
    s("tokens"), msgpack_pack_array(&pk, 2), u(1), msgpack_pack_double(&pk, 2.0);
    EXPECT_REFUSED(RWKVD_R_WRONG_TYPE);
    mb_start(4);
    head(0);
    s("tokens"), msgpack_pack_array(&pk, 1), u(UINT64_MAX);
    EXPECT_REFUSED(RWKVD_R_BAD_TOKEN);
    mb_start(4);
    head(0);
    s("tokens"), bin("\x01\x00\x00\x00\x02", 5);
    EXPECT_REFUSED(RWKVD_R_BAD_TOKEN);
    mb_start(4);
    head(0);
    s("tokens"), bin("\x01\x00\x00\x00\x00\x00\x01\x00", 8); /* 65536 */
    EXPECT_REFUSED(RWKVD_R_BAD_TOKEN);
    snprintf(want, sizeof want, "offset %zu:", sb.size - 4);
    CHECKF(strstr(err.msg, want) != NULL, "want '%s' in '%s'", want, err.msg);
}

static void test_token_count_limits(void)
{
    mb_start(4); /* 1001 ids > max_tokens 1000, array form: refused by the pre-scan */
    head(0);
    s("tokens"), msgpack_pack_array(&pk, 1001);
    for (int i = 0; i < 1001; i++)
        u(1);
    EXPECT_REFUSED(RWKVD_R_TOO_MANY);
    uint8_t z[4 * 1001] = {0};
    mb_start(4); /* bin form: refused by the schema check */
    head(0);
    s("tokens"), bin(z, sizeof z);
    EXPECT_REFUSED(RWKVD_R_TOO_MANY);
    mb_start(4);
    head(0);
    s("tokens"), bin(z, 4 * 1000);
    CHECKF(dec() == 0, "%s", err.msg);
    CHECK(m.n_tokens == 1000);
    rwkvd_ingest_clear(&m);
}

static void test_keys(void)
{
    mb_start(5);
    head(0);
    s("text"), s("a"), s("colour"), s("blue");
    EXPECT_REFUSED(RWKVD_R_UNKNOWN_FIELD);
    CHECKF(strstr(err.msg, "colour") != NULL, "%s", err.msg);
    CHECK(m.have_doc && m.have_seq);
    mb_start(5);
    head(0);
    s("text"), s("a"), s("seq"), u(1);
    EXPECT_REFUSED(RWKVD_R_BAD_KEY);
    mb_start(5);
    head(0);
    s("text"), s("a"), u(7), s("x");
    EXPECT_REFUSED(RWKVD_R_BAD_KEY);
    mb_start(5);
    head(0);
    s("text"), s("a"), s("this_key_is_much_longer_than_32_bytes"), u(1);
    EXPECT_REFUSED(RWKVD_R_BAD_KEY);
    mb_start(5);
    head(0);
    s("text"), s("a"), s(""), u(1);
    EXPECT_REFUSED(RWKVD_R_BAD_KEY);
    mb_start(17); /* more entries than any ingest map may have */
    head(0);
    for (int i = 0; i < 14; i++)
        s("x"), u(1);
    EXPECT_REFUSED(RWKVD_R_TOO_MANY);
}

static void test_opts_refusals(void)
{
    mb_start(5);
    head(1);
    s("text"), s("a"), s("opts"), msgpack_pack_map(&pk, 0);
    EXPECT_REFUSED(RWKVD_R_OPTS_NOT_FIRST);
    mb_start(5);
    head(0);
    s("text"), s("a"), s("opts"), msgpack_pack_array(&pk, 0);
    EXPECT_REFUSED(RWKVD_R_WRONG_TYPE);
#define OPT1(build, r)                                                                           \
    do {                                                                                         \
        mb_start(5);                                                                             \
        head(0);                                                                                 \
        s("text"), s("a"), s("opts"), msgpack_pack_map(&pk, 1);                                  \
        build;                                                                                   \
        EXPECT_REFUSED(r);                                                                       \
    } while (0)
    OPT1((s("outputs"), msgpack_pack_array(&pk, 1), s("hidden")), RWKVD_R_BAD_OPTS);
    OPT1((s("outputs"), msgpack_pack_array(&pk, 2), s("topk"), s("topk")), RWKVD_R_BAD_OPTS);
    OPT1((s("outputs"), msgpack_pack_array(&pk, 1), u(1)), RWKVD_R_WRONG_TYPE);
    OPT1((s("outputs"), s("embedding")), RWKVD_R_WRONG_TYPE);
    OPT1((s("pooling"), s("max")), RWKVD_R_BAD_OPTS);
    OPT1((s("pooling"), u(0)), RWKVD_R_WRONG_TYPE);
    OPT1((s("normalize"), u(1)), RWKVD_R_WRONG_TYPE);
    OPT1((s("topk"), u(0)), RWKVD_R_BAD_OPTS);
    OPT1((s("topk"), u(RWKVD_TOPK_MAX + 1)), RWKVD_R_BAD_OPTS);
    OPT1((s("topk"), msgpack_pack_int64(&pk, -5)), RWKVD_R_BAD_OPTS);
    OPT1((s("temperature"), u(1)), RWKVD_R_UNKNOWN_FIELD);
    OPT1((s("outputs"), msgpack_pack_array(&pk, 1), msgpack_pack_array(&pk, 0)),
         RWKVD_R_TOO_DEEP);
}

/* A valid message with every kind of field, for truncation and bit tests. */
static void build_rich(void)
{
    mb_start(6);
    head(0);
    s("tokens"), msgpack_pack_array(&pk, 3), u(5), u(300), u(70000 % 65536);
    s("eof"), msgpack_pack_true(&pk);
    s("opts"), msgpack_pack_map(&pk, 2), s("outputs"), msgpack_pack_array(&pk, 1), s("topk"),
        s("topk"), u(3);
}

static void test_truncation_at_every_length(void)
{
    build_rich();
    CHECKF(dec() == 0, "%s", err.msg);
    rwkvd_ingest_clear(&m);
    size_t n = sb.size;
    uint8_t *copy = malloc(n + 1);
    memcpy(copy, sb.data, n);
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *exact = malloc(cut ? cut : 1);
        memcpy(exact, copy, cut);
        int rc = dec_raw(exact, cut);
        free(exact);
        if (!(rc == -1 && why == RWKVD_R_MALFORMED)) {
            free(copy);
            CHECKF(0, "prefix of %zu bytes: rc %d reason %s", cut, rc, rwkvd_reason_name(why));
        }
    }
    copy[n] = 0xc0; /* one trailing nil */
    EXPECT_RAW_REFUSED(copy, n + 1, RWKVD_R_MALFORMED);
    CHECKF(strstr(err.msg, "after the end") != NULL, "%s", err.msg);
    free(copy);
}

static void test_every_single_byte_change_is_safe(void)
{
    build_rich();
    size_t n = sb.size;
    uint8_t *orig = malloc(n), *mut = malloc(n);
    memcpy(orig, sb.data, n);
    int accepted = 0, refused = 0;
    for (size_t i = 0; i < n; i++)
        for (int v = 0; v < 256; v++) {
            memcpy(mut, orig, n);
            mut[i] = (uint8_t)v;
            int rc = dec_raw(mut, n);
            if (rc == 0) {
                accepted++;
                CHECK(m.n_tokens <= lim.max_tokens);
                rwkvd_ingest_clear(&m);
            } else {
                refused++;
                CHECK(why != RWKVD_OK && why != RWKVD_R_OVERLOADED && err.msg[0]);
            }
        }
    free(orig);
    free(mut);
    CHECK(accepted > 0 && refused > 0);
}

static void test_malformed_bytes(void)
{
    EXPECT_RAW_REFUSED("", 0, RWKVD_R_MALFORMED);
    EXPECT_RAW_REFUSED("\xc1", 1, RWKVD_R_MALFORMED);
    EXPECT_RAW_REFUSED("\x81\xa1v\xc1", 4, RWKVD_R_MALFORMED);
    EXPECT_RAW_REFUSED("\xa3" "abc", 4, RWKVD_R_WRONG_TYPE);      /* a str, not a map */
    EXPECT_RAW_REFUSED("\x90", 1, RWKVD_R_WRONG_TYPE);            /* an empty array */
    EXPECT_RAW_REFUSED("\xd4\x01\x02", 3, RWKVD_R_UNSUPPORTED_TYPE); /* fixext 1 */
    EXPECT_RAW_REFUSED("\x81\xa1x\xd6\xff\x00\x00\x00\x01", 9, RWKVD_R_UNSUPPORTED_TYPE); /* timestamp */
    EXPECT_RAW_REFUSED("\x81\x91\x91\x91\x91\xc0\xc0", 7, RWKVD_R_TOO_DEEP);
    uint8_t deep[200];
    memset(deep, 0x91, sizeof deep); /* 200 nested one-element arrays */
    EXPECT_RAW_REFUSED(deep, sizeof deep, RWKVD_R_TOO_DEEP);
}

/* A message the pre-scan refuses still names its doc and seq when they are
 * readable in the bytes before the fault (rwkvd_ingest_peek). */
static bool names(const char *doc, bool have_seq, uint64_t seq)
{
    bool doc_ok = doc ? m.have_doc && m.doc_len == strlen(doc) && !memcmp(m.doc, doc, m.doc_len)
                      : !m.have_doc;
    return doc_ok && m.have_seq == have_seq && (!have_seq || m.seq == seq);
}

static void test_refused_messages_still_name_doc_and_seq(void)
{
    mb_start(5); /* too deep in opts */
    head(7);
    s("text"), s("a"), s("opts"), msgpack_pack_map(&pk, 1), s("outputs");
    msgpack_pack_array(&pk, 1), msgpack_pack_array(&pk, 0);
    EXPECT_REFUSED(RWKVD_R_TOO_DEEP);
    CHECK(names("d1", true, 7));
    mb_start(4); /* too many ids for the pre-scan */
    head(9);
    s("tokens"), msgpack_pack_array(&pk, 1001);
    for (int i = 0; i < 1001; i++)
        u(1);
    EXPECT_REFUSED(RWKVD_R_TOO_MANY);
    CHECK(names("d1", true, 9));
    /* seq in a signed encoding, doc as bin, a timestamp after them */
    EXPECT_RAW_REFUSED("\x84\xa1v\x01\xa3seq\xd3\x00\x00\x00\x00\x00\x00\x01\x02"
                       "\xa3" "doc\xc4\x02zz\xa1x\xd6\xff\x00\x00\x00\x01", 32,
                       RWKVD_R_UNSUPPORTED_TYPE);
    CHECK(names("zz", true, 258));
    /* an unusable first doc, a usable second one; seq above the limit */
    EXPECT_RAW_REFUSED("\x84\xa3" "doc\x07\xa3" "doc\xa1q\xa3seq\xcf\xff\xff\xff\xff\xff\xff\xff"
                       "\xff\xa1x\x91\x91\x91\x91\xc0", 34, RWKVD_R_TOO_DEEP);
    CHECK(names("q", false, 0));
    /* a doc whose length runs past the end, an entry count past the end */
    EXPECT_RAW_REFUSED("\x82\xa3seq\x05\xa3" "doc\xd9\xff" "ab", 13, RWKVD_R_MALFORMED);
    CHECK(names(NULL, true, 5));
    EXPECT_RAW_REFUSED("\xdf\xff\xff\xff\xff", 5, RWKVD_R_MALFORMED);
    CHECK(names(NULL, false, 0));
    /* every prefix of a good message names exactly what it holds whole */
    build_rich();
    size_t n = sb.size, doc_end = 0, seq_end = 0;
    for (size_t i = 0; i + 5 <= n; i++) {
        if (!memcmp(sb.data + i, "\xa3" "doc\xa2" "d1", 7))
            doc_end = i + 7;
        if (!memcmp(sb.data + i, "\xa3seq", 4))
            seq_end = i + 5; /* seq 0 is one byte */
    }
    CHECK(doc_end && seq_end);
    uint8_t *copy = malloc(n);
    memcpy(copy, sb.data, n);
    for (size_t cut = 0; cut < n; cut++) {
        rwkvd_ingest x;
        memset(&x, 0, sizeof x);
        rwkvd_ingest_peek(copy, cut, &x);
        bool want_doc = cut >= doc_end, want_seq = cut >= seq_end;
        if (x.have_doc != want_doc || x.have_seq != want_seq ||
            (x.have_doc && (x.doc_len != 2 || memcmp(x.doc, "d1", 2))) || (x.have_seq && x.seq)) {
            free(copy);
            CHECKF(0, "prefix of %zu bytes: doc %d seq %d", cut, x.have_doc, x.have_seq);
        }
    }
    free(copy);
}

/* Messages of a few bytes that claim gigabytes. */
static const struct {
    const char *b;
    size_t n;
} huge[] = {
    {"\xdd\xff\xff\xff\xff", 5},                         /* array32 of 2^32-1 */
    {"\xdd\x7f\xff\xff\xff\xc0", 6},                     /* array32, one element present */
    {"\xdf\xff\xff\xff\xff", 5},                         /* map32 */
    {"\xdb\xff\xff\xff\xff", 5},                         /* str32 of 4 GB */
    {"\xc6\xff\xff\xff\xff", 5},                         /* bin32 of 4 GB */
    {"\xc9\xff\xff\xff\xff\x01", 6},                     /* ext32 */
    {"\x84\xa1v\x01\xa3" "doc\xdb\xff\xff\xff\xf0", 14}, /* doc: str32 4 GB in a map */
    {"\x84\xa1v\x01\xa6tokens\xdd\x10\x00\x00\x00\x01", 17}, /* tokens: 2^28 claimed */
    {"\x81\xa1x\xdc\xff\xff", 7},                        /* array16 of 65535 */
};

static void test_huge_claims_refused_cheaply(void)
{
    rwkvd_msg_limits big = lim;
    big.max_tokens = (size_t)1 << 40; /* even with no token limit to save us */
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        int rc = rwkvd_ingest_decode(huge[i].b, huge[i].n, &big, &m, &why, &err);
        CHECKF(rc == -1 && (why == RWKVD_R_MALFORMED || why == RWKVD_R_UNSUPPORTED_TYPE),
               "case %zu: rc %d reason %s: %s", i, rc, rwkvd_reason_name(why), err.msg);
    }
    /* quickly: 100k refusals of the 5-byte array claim well under a second */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 100000; i++)
        dec_raw(huge[0].b, huge[0].n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    CHECKF(secs < 1.0, "100k refusals took %.3f s", secs);
}

/* The hazard is real: msgpack-c alone, given the same bytes, tries to
 * allocate for the claim and fails for lack of memory.  Runs in a child with
 * a 1 GB address-space limit (rel build), or with ASan's 512 MB allocation
 * cap (see __asan_default_options above). */
static int msgpack_alone_fails(const char *b, size_t n)
{
    msgpack_unpacked un;
    msgpack_unpacked_init(&un);
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(&un, b, n, &off);
    msgpack_unpacked_destroy(&un);
    return r == MSGPACK_UNPACK_NOMEM_ERROR;
}

static void test_msgpack_c_alone_would_allocate(void)
{
    static const char claim[] = "\xdd\x7f\xff\xff\xff\xc0"; /* 2^31-1 elements, 1 present */
    if (UNDER_ASAN) {
        CHECK(msgpack_alone_fails(claim, 6));
    } else {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            struct rlimit rl = {(rlim_t)1 << 30, (rlim_t)1 << 30};
            setrlimit(RLIMIT_AS, &rl);
            int ok = msgpack_alone_fails(claim, 6);
            /* and our decoder, under the same limit, refuses without trying */
            rwkvd_msg_limits big = lim;
            big.max_tokens = (size_t)1 << 40;
            int refused = rwkvd_ingest_decode(claim, 6, &big, &m, &why, &err) == -1 &&
                          why == RWKVD_R_MALFORMED;
            _exit(ok && refused ? 0 : 1);
        }
        int st = 0;
        CHECK(waitpid(pid, &st, 0) == pid);
        CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
    }
    /* a real 2^24-element array (every element present) is refused by its
     * count before msgpack-c sees it */
    size_t n = ((size_t)1 << 24) + 32;
    uint8_t *big = malloc(n);
    size_t o = 0;
    memcpy(big, "\x84\xa1v\x01\xa3" "doc\xa1x\xa3seq\x00\xa6tokens\xdd\x01\x00\x00\x00", 27);
    o = 27;
    memset(big + o, 0x01, (size_t)1 << 24);
    o += (size_t)1 << 24;
    rwkvd_msg_limits roomy = lim;
    roomy.max_msg_bytes = (size_t)1 << 25;
    int rc = rwkvd_ingest_decode(big, o, &roomy, &m, &why, &err);
    free(big);
    CHECKF(rc == -1 && why == RWKVD_R_TOO_MANY, "reason %s: %s", rwkvd_reason_name(why), err.msg);
}

static void test_size_limit_before_reading(void)
{
    rwkvd_msg_limits small = lim;
    small.max_msg_bytes = 16;
    mb_start(4);
    head(0);
    s("text"), s("0123456789");
    int rc = rwkvd_ingest_decode(sb.data, sb.size, &small, &m, &why, &err);
    CHECK(rc == -1 && why == RWKVD_R_TOO_LARGE);
    CHECK(!m.have_doc); /* nothing was read */
}

/* ---- the pre-scan's cursor helpers ---- */
static void test_scan_helpers(void)
{
    build_rich();
    const uint8_t *p = (const uint8_t *)sb.data;
    size_t next = 0;
    CHECK(rwkvd_mp_skip(p, sb.size, 0, &next) == 0 && next == sb.size);
    size_t c = 0;
    CHECK(rwkvd_mp_child(p, sb.size, 0, 0, &c) == 0 && c == 1); /* key "v" right after fixmap */
    CHECK(rwkvd_mp_child(p, sb.size, 0, 1, &c) == 0 && c == 3 && p[c] == 1);
    CHECK(rwkvd_mp_child(p, sb.size, 0, 12, &c) == -1); /* 6 entries = 12 children */
    CHECK(rwkvd_mp_child(p, sb.size, 1, 0, &c) == -1);  /* a str has no children */
    for (size_t cut = 0; cut < sb.size; cut++)
        CHECK(rwkvd_mp_skip(p, cut, 0, &next) == -1);
    rwkvd_mp_limits ml = {.max_depth = 3, .max_items = 21, .max_map = 16, .max_array = 16};
    size_t off;
    CHECKF(rwkvd_mp_scan(p, sb.size, &ml, &why, &off, &err) == 0, "%s", err.msg);
    ml.max_items = 20; /* the message has exactly 21 objects */
    CHECK(rwkvd_mp_scan(p, sb.size, &ml, &why, &off, &err) == -1 && why == RWKVD_R_TOO_MANY);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    msgpack_sbuffer_init(&sb);
    RUN(test_text_message);
    RUN(test_bytes_message_any_bytes);
    RUN(test_tokens_array_and_bin);
    RUN(test_signed_encodings_of_positive_values);
    RUN(test_eof_only);
    RUN(test_opts_full);
    RUN(test_opts_task_v2);
    RUN(test_doc_forms_and_limits);
    RUN(test_seq_range_and_types);
    RUN(test_version_and_missing);
    RUN(test_payload_rules);
    RUN(test_invalid_utf8);
    RUN(test_bad_tokens);
    RUN(test_token_count_limits);
    RUN(test_keys);
    RUN(test_opts_refusals);
    RUN(test_truncation_at_every_length);
    RUN(test_every_single_byte_change_is_safe);
    RUN(test_malformed_bytes);
    RUN(test_refused_messages_still_name_doc_and_seq);
    RUN(test_huge_claims_refused_cheaply);
    RUN(test_msgpack_c_alone_would_allocate);
    RUN(test_size_limit_before_reading);
    RUN(test_scan_helpers);
    msgpack_sbuffer_destroy(&sb);
    return test_summary();
}
