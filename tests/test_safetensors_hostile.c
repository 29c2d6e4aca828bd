/* test_safetensors_hostile.c — the safetensors writer round trip, then
 * hand-made headers broken in one way each (lengths, JSON, dtypes, shapes,
 * data_offsets), truncation at every byte, random bytes.  Every broken file
 * must give -1 and one line naming the file and the fault.
 *
 * `test_safetensors_hostile --write-corpus DIR` writes the fuzz seed corpus.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/safetensors_writer.h"
#include "core/tensor_file.h"
#include "tests/support/torch_writer.h"
#include "tests/testutil.h"

/* A file from a literal header (length = strlen) and data bytes. */
static void st_make(tw_buf *out, const char *json, const void *data, size_t n)
{
    tw_u64(out, strlen(json));
    tw_put(out, json, strlen(json));
    tw_put(out, data, n);
}

static int fails_with(const void *p, size_t n, const char *needle, char *msg_out)
{
    rwkv_tensor_file *f = (rwkv_tensor_file *)1;
    rwkv_error e = {{0}};
    void *copy = malloc(n ? n : 1);
    memcpy(copy, p, n);
    int rc = rwkv_tensor_file_parse("bad.st", copy, n, &f, &e);
    rwkv_tensor_file_close(rc == 0 ? f : NULL);
    free(copy);
    if (msg_out)
        snprintf(msg_out, RWKV_ERROR_MAX, "%s", e.msg);
    return rc == -1 && f == NULL && strstr(e.msg, "bad.st") && !strchr(e.msg, '\n') &&
           (!needle || strstr(e.msg, needle));
}

static int header_fails(const char *json, size_t data_len, const char *needle, char *m)
{
    static const unsigned char zeros[4096];
    tw_buf b = {0};
    st_make(&b, json, zeros, data_len);
    int ok = fails_with(b.p, b.n, needle, m);
    tw_free(&b);
    return ok;
}

#define EXPECT_HEADER_FAIL(json, data_len, needle)                                         \
    do {                                                                                   \
        char m_[RWKV_ERROR_MAX];                                                           \
        CHECKF(header_fails((json), (data_len), (needle), m_), "wanted '%s', got '%s'",    \
               (needle), m_);                                                              \
    } while (0)

static const float w_vals[6] = {1.5f, -2, 3, 4, 5, 6};
static const uint16_t h_vals[3] = {0x3c00, 0xbc00, 0x7bff}; /* 1, -1, 65504 */
static const uint16_t b_vals[2] = {0x3f80, 0x4049};
static const float s_val = -7;

static void good_entries(rwkv_st_entry e[5])
{
    /* deliberately not alphabetical: file order must be kept */
    e[0] = (rwkv_st_entry){"z.weight", RWKV_F32, 2, {2, 3}, w_vals};
    e[1] = (rwkv_st_entry){"a.half", RWKV_F16, 1, {3}, h_vals};
    e[2] = (rwkv_st_entry){"m.bf16", RWKV_BF16, 3, {1, 2, 1}, b_vals};
    e[3] = (rwkv_st_entry){"scalar", RWKV_F32, 0, {0}, &s_val};
    e[4] = (rwkv_st_entry){"empty \"quoted\" \xc3\xa9", RWKV_F32, 2, {4, 0}, NULL};
}

static void check_good(const rwkv_tensor_file *f, const rwkv_st_entry *e)
{
    CHECK(rwkv_tensor_file_count(f) == 5);
    CHECK(strcmp(rwkv_tensor_file_format(f), "safetensors") == 0);
    for (size_t i = 0; i < 5; i++) {
        const rwkv_tensor *t = rwkv_tensor_file_at(f, i);
        CHECKF(strcmp(t->name, e[i].name) == 0, "%zu: %s", i, t->name);
        CHECK(t->dtype == e[i].dtype && t->ndim == e[i].ndim);
        for (int d = 0; d < t->ndim; d++)
            CHECK(t->shape[d] == e[i].shape[d]);
        CHECK(rwkv_tensor_file_find(f, e[i].name) == t);
        if (t->numel)
            CHECK(memcmp(t->data, e[i].data, t->numel * rwkv_dtype_size(t->dtype)) == 0);
        CHECK(t->data != NULL);
    }
    CHECK(tw_f16_to_f32(((const uint16_t *)rwkv_tensor_file_at(f, 1)->data)[2]) == 65504.0f);
    CHECK(rwkv_tensor_file_at(f, 3)->numel == 1);
    CHECK(rwkv_tensor_file_at(f, 4)->numel == 0);
}

static void test_writer_round_trip(void)
{
    rwkv_st_entry e[5];
    good_entries(e);
    void *buf = NULL;
    size_t len = 0;
    rwkv_error err = {{0}};
    CHECKF(rwkv_safetensors_serialize(e, 5, &buf, &len, &err) == 0, "%s", err.msg);
    uint64_t hlen;
    memcpy(&hlen, buf, 8);
    CHECK(hlen % 8 == 0 && 8 + hlen + 24 + 6 + 4 + 4 == len);
    CHECK(memmem((char *)buf + 8, hlen, "\"__metadata__\":{\"format\":\"pt\"}", 30) != NULL);
    rwkv_tensor_file *f = NULL;
    CHECKF(rwkv_tensor_file_parse("mem.st", buf, len, &f, &err) == 0, "%s", err.msg);
    check_good(f, e);
    /* 24 + 6 + 4 bytes precede the f32 scalar: it alone sits misaligned */
    CHECK(rwkv_tensor_file_copied_bytes(f) == 4);
    rwkv_tensor_file_close(f);

    /* the same through a real file, written atomically */
    char path[] = "/tmp/rwkv_st_test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECKF(rwkv_safetensors_write(path, e, 5, &err) == 0, "%s", err.msg);
    size_t flen;
    void *disk = file_read_all(path, &flen);
    CHECK(disk && flen == len && memcmp(disk, buf, len) == 0);
    free(disk);
    int rc = rwkv_tensor_file_open(path, &f, &err);
    unlink(path);
    CHECKF(rc == 0, "%s", err.msg);
    check_good(f, e);
    rwkv_tensor_file_close(f);
    free(buf);

    /* writer refuses what it cannot represent, and leaves nothing behind */
    e[1].name = "z.weight";
    CHECK(rwkv_safetensors_serialize(e, 5, &buf, &len, &err) == -1 &&
          strstr(err.msg, "duplicate name 'z.weight'"));
    CHECK(rwkv_safetensors_write("/tmp/rwkv_st_dup.safetensors", e, 5, &err) == -1);
    CHECK(access("/tmp/rwkv_st_dup.safetensors", F_OK) != 0);
    good_entries(e);
    e[0].shape[0] = -1;
    CHECK(rwkv_safetensors_serialize(e, 5, &buf, &len, &err) == -1 &&
          strstr(err.msg, "negative dimension"));
    good_entries(e);
    e[2].ndim = 9;
    CHECK(rwkv_safetensors_serialize(e, 5, &buf, &len, &err) == -1 &&
          strstr(err.msg, "9 dimensions"));
    good_entries(e);
    CHECK(rwkv_safetensors_write("/nonexistent-dir/x.safetensors", e, 5, &err) == -1 &&
          strstr(err.msg, "/nonexistent-dir/x.safetensors"));
}

/* I8 tensors (int8 files, core/quantize.h) and extra metadata pairs: written,
 * read back in place (one byte per element: never misaligned), the pairs
 * kept; a .pth has none. */
static void test_i8_and_metadata(void)
{
    static const int8_t q[5] = {-127, -1, 0, 1, 127};
    static const float sc[2] = {0.5f, 2.0f};
    rwkv_st_entry e[2] = {
        {.name = "s", .dtype = RWKV_F32, .ndim = 1, .shape = {2}, .data = sc},
        {.name = "q", .dtype = RWKV_I8, .ndim = 1, .shape = {5}, .data = q},
    };
    const char *meta[] = {"rwkvd.k", "v1", "other", "ünïcode"};
    void *buf = NULL;
    size_t len = 0;
    rwkv_error err = {{0}};
    CHECKF(rwkv_safetensors_serialize_meta(e, 2, meta, 2, &buf, &len, &err) == 0, "%s", err.msg);
    rwkv_tensor_file *f = NULL;
    CHECKF(rwkv_tensor_file_parse("mem.st", buf, len, &f, &err) == 0, "%s", err.msg);
    const rwkv_tensor *t = rwkv_tensor_file_find(f, "q");
    int ok = t && t->dtype == RWKV_I8 && t->numel == 5 && !memcmp(t->data, q, 5) &&
             rwkv_dtype_size(RWKV_I8) == 1 && !strcmp(rwkv_dtype_name(RWKV_I8), "i8") &&
             (const char *)t->data > (const char *)buf &&
             (const char *)t->data < (const char *)buf + len;
    const char *k = rwkv_tensor_file_meta(f, "rwkvd.k"), *o = rwkv_tensor_file_meta(f, "other");
    const char *fmt = rwkv_tensor_file_meta(f, "format");
    int meta_ok = k && !strcmp(k, "v1") && o && !strcmp(o, "ünïcode") && fmt &&
                  !strcmp(fmt, "pt") && !rwkv_tensor_file_meta(f, "absent");
    rwkv_tensor_file_close(f);
    free(buf);
    CHECK(ok);
    CHECK(meta_ok);
    /* a key the writer cannot encode */
    const char *bad[] = {"k", "\xff"};
    CHECK(rwkv_safetensors_serialize_meta(e, 2, bad, 1, &buf, &len, &err) == -1 &&
          strstr(err.msg, "metadata"));
}

/* Header order, not data order, is the file order. */
static void test_header_order_kept(void)
{
    const float d[3] = {10, 20, 30};
    tw_buf b = {0};
    st_make(&b,
            "{\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
            "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}    ",
            d, sizeof d);
    rwkv_tensor_file *f = NULL;
    rwkv_error e = {{0}};
    CHECKF(rwkv_tensor_file_parse("order.st", b.p, b.n, &f, &e) == 0, "%s", e.msg);
    tw_free(&b);
    CHECK(strcmp(rwkv_tensor_file_at(f, 0)->name, "c") == 0);
    CHECK(strcmp(rwkv_tensor_file_at(f, 1)->name, "a") == 0);
    CHECK(strcmp(rwkv_tensor_file_at(f, 2)->name, "b") == 0);
    CHECK(*(const float *)rwkv_tensor_file_find(f, "c")->data == 30);
    CHECK(*(const float *)rwkv_tensor_file_find(f, "a")->data == 10);
    rwkv_tensor_file_close(f);
}

/* Data misaligned for its dtype is copied (and only then). */
static void test_misaligned_data_copied(void)
{
    const char *json = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    CHECK(strlen(json) % 4 != 0);
    const float d[2] = {0.25f, -8};
    tw_buf b = {0};
    st_make(&b, json, d, sizeof d);
    unsigned char *al = aligned_alloc(64, 128);
    memcpy(al, b.p, b.n);
    rwkv_tensor_file *f = NULL;
    rwkv_error e = {{0}};
    CHECKF(rwkv_tensor_file_parse("mis.st", al, b.n, &f, &e) == 0, "%s", e.msg);
    const rwkv_tensor *t = rwkv_tensor_file_find(f, "x");
    CHECK(t && (uintptr_t)t->data % 64 == 0 && memcmp(t->data, d, 8) == 0);
    CHECK(rwkv_tensor_file_copied_bytes(f) == 8);
    rwkv_tensor_file_close(f);
    free(al);
    tw_free(&b);
}

static void test_lengths(void)
{
    tw_buf b = {0};
    CHECK(fails_with("\x10\0\0\0\0\0\0", 7, "neither a .pth (zip) nor a .safetensors", NULL));
    tw_u64(&b, 1000);
    tw_put(&b, "{}", 2);
    char m[RWKV_ERROR_MAX];
    CHECKF(fails_with(b.p, b.n, "header length 1000 runs past the end of the 10-byte file", m),
           "%s", m);
    tw_free(&b);
    tw_u64(&b, ~0ull);
    tw_put(&b, "{}", 2);
    CHECK(fails_with(b.p, b.n, "header length 18446744073709551615 runs past", NULL));
    tw_free(&b);
    /* a header longer than the 100 MB cap, in a file that really is that long
     * (untouched calloc pages cost nothing) */
    size_t big = 100000000u + 64;
    unsigned char *huge = calloc(1, big);
    CHECK(huge);
    uint64_t hl = 100000000u + 8;
    memcpy(huge, &hl, 8);
    huge[8] = '{';
    rwkv_tensor_file *hf = NULL;
    rwkv_error he = {{0}};
    int hrc = rwkv_tensor_file_parse("bad.st", huge, big, &hf, &he);
    free(huge);
    CHECKF(hrc == -1 && strstr(he.msg, "bad.st: safetensors header length 100000008 exceeds "
                                       "the 100000000-byte limit"),
           "%s", he.msg);
    tw_u64(&b, 1);
    tw_put(&b, "{", 1);
    CHECK(fails_with(b.p, b.n, "does not start with '{'", NULL));
    tw_free(&b);
    /* the empty header is a valid file with no tensors */
    st_make(&b, "{}", NULL, 0);
    rwkv_tensor_file *f = NULL;
    CHECK(rwkv_tensor_file_parse("e.st", b.p, b.n, &f, NULL) == 0);
    CHECK(rwkv_tensor_file_count(f) == 0);
    rwkv_tensor_file_close(f);
    tw_free(&b);
}

static void test_bad_json(void)
{
    EXPECT_HEADER_FAIL("{\"a\":", 0, "byte 13: safetensors header is not valid JSON");
    EXPECT_HEADER_FAIL("{\"a\" 1}", 0, "not valid JSON");
    EXPECT_HEADER_FAIL("{} xx", 0, "end of file expected");
    EXPECT_HEADER_FAIL("{\"a\":{},\"a\":{}}", 0, "duplicate object key");
    EXPECT_HEADER_FAIL("{\"a\\u0000b\":{}}", 0, "not valid JSON");
    EXPECT_HEADER_FAIL("{\"\xff\xfe\":{}}", 0, "not valid JSON");
    EXPECT_HEADER_FAIL("{\"a\":99999999999999999999999}", 0, "too big integer");
    EXPECT_HEADER_FAIL("{\"a\":1}", 0, "entry 'a' is not an object");
    EXPECT_HEADER_FAIL("{\"__metadata__\":[]}", 0, "__metadata__ is not an object");
    EXPECT_HEADER_FAIL("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ value 'k' is not a string");
    char deep[5000];
    size_t n = 0;
    deep[n++] = '{';
    memcpy(deep + n, "\"a\":", 4);
    n += 4;
    for (int i = 0; i < 2400; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    EXPECT_HEADER_FAIL(deep, 0, "not valid JSON");
}

static void test_bad_entries(void)
{
#define E(dtype, shape, offs) "{\"t\":{\"dtype\":" dtype ",\"shape\":" shape ",\"data_offsets\":" offs "}}"
    EXPECT_HEADER_FAIL(E("\"F64\"", "[1]", "[0,8]"), 8,
                       "tensor 't' has dtype F64; only F32, F16, BF16 and I8 are supported");
    EXPECT_HEADER_FAIL(E("\"I8\"", "[3]", "[0,4]"), 4, "hold 4 bytes but 3 i8 elements need 3");
    EXPECT_HEADER_FAIL(E("\"U8\"", "[4]", "[0,4]"), 4, "has dtype U8");
    EXPECT_HEADER_FAIL(E("\"I64\"", "[1]", "[0,8]"), 8, "has dtype I64");
    EXPECT_HEADER_FAIL(E("\"f32\"", "[1]", "[0,4]"), 4, "has dtype f32");
    EXPECT_HEADER_FAIL(E("32", "[1]", "[0,4]"), 4, "needs a string \"dtype\"");
    EXPECT_HEADER_FAIL("{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "\"data_offsets\"");
    EXPECT_HEADER_FAIL(E("\"F32\"", "[-1]", "[0,4]"), 4, "tensor 't': negative dimension -1");
    EXPECT_HEADER_FAIL(E("\"F32\"", "[1.5]", "[0,4]"), 4, "shape[0] is not an integer");
    EXPECT_HEADER_FAIL(E("\"F32\"", "[1,1,1,1,1,1,1,1,1]", "[0,4]"), 4,
                       "tensor 't': 9 dimensions (at most 8 supported)");
    EXPECT_HEADER_FAIL(E("\"F32\"", "[4294967296,4294967296]", "[0,4]"), 4,
                       "element count overflows");
    EXPECT_HEADER_FAIL(E("\"F32\"", "[9223372036854775807]", "[0,4]"), 4,
                       "element count overflows");
    EXPECT_HEADER_FAIL(E("\"F32\"", "[1]", "[4,0]"), 4, "0 <= begin <= end");
    EXPECT_HEADER_FAIL(E("\"F32\"", "[1]", "[-4,0]"), 4, "0 <= begin <= end");
    EXPECT_HEADER_FAIL(E("\"F32\"", "[1]", "[0]"), 4, "0 <= begin <= end");
    EXPECT_HEADER_FAIL(E("\"F32\"", "[1]", "[0,4,8]"), 8, "0 <= begin <= end");
    EXPECT_HEADER_FAIL(E("\"F32\"", "[1]", "[0,4]"), 2,
                       "data_offsets [0, 4] run past the 2-byte data section");
    EXPECT_HEADER_FAIL(E("\"F32\"", "[1]", "[0,9223372036854775807]"), 4, "run past");
    EXPECT_HEADER_FAIL(E("\"F32\"", "[2]", "[0,4]"), 8,
                       "data_offsets [0, 4] hold 4 bytes but 2 f32 elements need 8");
    EXPECT_HEADER_FAIL(E("\"BF16\"", "[2]", "[0,8]"), 8, "2 bf16 elements need 4");
    EXPECT_HEADER_FAIL(E("\"F32\"", "[1]", "[0,4]"), 8, "4 bytes after the last tensor");
    EXPECT_HEADER_FAIL(E("\"F32\"", "[1]", "[4,8]"), 8, "4 unused bytes before tensor 't'");
#undef E
    EXPECT_HEADER_FAIL("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                       12, "tensors 'a' and 'b' overlap");
    EXPECT_HEADER_FAIL("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                       8, "overlap");
    EXPECT_HEADER_FAIL("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                       "empty name");
}

static void test_truncated_every_byte(void)
{
    rwkv_st_entry e[5];
    good_entries(e);
    void *buf;
    size_t len;
    CHECK(rwkv_safetensors_serialize(e, 5, &buf, &len, NULL) == 0);
    for (size_t cut = 0; cut < len; cut++) {
        char m[RWKV_ERROR_MAX];
        if (!fails_with(buf, cut, NULL, m)) {
            free(buf);
            CHECKF(0, "cut at %zu: '%s'", cut, m);
        }
    }
    free(buf);
}

static void test_random_and_flipped(void)
{
    rwkv_st_entry e[5];
    good_entries(e);
    unsigned char *buf;
    size_t len;
    CHECK(rwkv_safetensors_serialize(e, 5, (void **)&buf, &len, NULL) == 0);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x41;
        rwkv_tensor_file *f = NULL;
        rwkv_error er = {{0}};
        int rc = rwkv_tensor_file_parse("bad.st", buf, len, &f, &er);
        rwkv_tensor_file_close(f);
        buf[i] ^= 0x41;
        CHECKF(rc == 0 || (strstr(er.msg, "bad.st") && !strchr(er.msg, '\n')), "%s", er.msg);
    }
    free(buf);
    uint64_t s = 777;
    for (int k = 0; k < 2000; k++) {
        size_t n = (size_t)(test_rand(&s) % 600);
        unsigned char *p = malloc(n + 16);
        for (size_t i = 0; i < n + 16; i++)
            p[i] = (unsigned char)test_rand(&s);
        if (n > 9 && k % 2) { /* plausible length + '{' */
            uint64_t h = test_rand(&s) % (n - 8);
            memcpy(p, &h, 8);
            p[8] = '{';
        }
        char m[RWKV_ERROR_MAX];
        int ok = fails_with(p, n, NULL, m);
        free(p);
        CHECKF(ok, "random input %d: '%s'", k, m);
    }
}

static int write_corpus(const char *dir)
{
    rwkv_st_entry e[5];
    good_entries(e);
    char path[4096];
    snprintf(path, sizeof path, "%s/good.safetensors", dir);
    rwkv_error err;
    if (rwkv_safetensors_write(path, e, 5, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    static const char *const bad[][2] = {
        {"bad-dtype.safetensors", "{\"t\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}"},
        {"bad-overlap.safetensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]}}"},
        {"misaligned.safetensors",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,8]},\"__metadata__\":{}}"},
    };
    for (size_t i = 0; i < 3; i++) {
        tw_buf b = {0};
        st_make(&b, bad[i][1], w_vals, 8);
        snprintf(path, sizeof path, "%s/%s", dir, bad[i][0]);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(b.p, 1, b.n, f) != b.n)
            return 1;
        fclose(f);
        tw_free(&b);
    }
    printf("wrote the safetensors seed corpus to %s\n", dir);
    return 0;
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
        return write_corpus(argv[2]);
    RUN(test_writer_round_trip);
    RUN(test_i8_and_metadata);
    RUN(test_header_order_kept);
    RUN(test_misaligned_data_copied);
    RUN(test_lengths);
    RUN(test_bad_json);
    RUN(test_bad_entries);
    RUN(test_truncated_every_byte);
    RUN(test_random_and_flipped);
    return test_summary();
}
