/* test_pth_hostile.c — .pth files made by tests/support/torch_writer, first
 * valid (every storage dtype, views sharing a storage, a transposed view, a
 * parameter wrapper, scalars, empty tensors, zip64 variants), then broken in
 * one way each: zip structure, pickle program, storage/view arithmetic.
 * Every broken file must give -1 and one line naming the file and the fault;
 * none may crash, execute anything or allocate more than the file justifies.
 *
 * `test_pth_hostile --write-corpus DIR` writes the fuzz seed corpus instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/tensor_file.h"
#include "tests/support/torch_writer.h"
#include "tests/testutil.h"

static const float a_vals[6] = {1, 2, 3, 4, 5, 6};
static const uint16_t b_vals[4] = {0x3c00, 0x4000, 0xc200, 0x0001}; /* 1, 2, -3, 2^-24 */
static const uint16_t c_vals[2] = {0x3f80, 0xc0a0};                 /* 1, -5 */
static const float d_vals[1] = {42};

static tw_tensor good_tensors[] = {
    {"a.weight", "FloatStorage", "0", 6, 0, 2, {2, 3}, {0}, 0},
    {"a.t", "FloatStorage", "0", 6, 0, 2, {3, 2}, {1, 3}, 0},
    {"a.row", "FloatStorage", "0", 6, 3, 1, {3}, {0}, 0},
    {"b.half", "HalfStorage", "1", 4, 0, 1, {4}, {0}, 0},
    {"c.bf16", "BFloat16Storage", "2", 2, 0, 2, {1, 2}, {0}, 1},
    {"d.scalar", "FloatStorage", "3", 1, 0, 0, {0}, {0}, 0},
    {"e.empty", "FloatStorage", "4", 0, 0, 2, {0, 5}, {0}, 0},
};
#define N_GOOD (sizeof good_tensors / sizeof good_tensors[0])

static const tw_storage good_storages[] = {
    {"0", a_vals, sizeof a_vals}, {"1", b_vals, sizeof b_vals}, {"2", c_vals, sizeof c_vals},
    {"3", d_vals, sizeof d_vals}, {"4", "", 0},
};
#define N_STOR (sizeof good_storages / sizeof good_storages[0])

static const tw_zip_opts torch_like = {1, 1, 0};

static void build(tw_buf *out, const tw_tensor *t, size_t n, const tw_zip_opts *o)
{
    tw_buf pk = {0};
    pk_state_dict(&pk, t, n);
    tw_pth(out, "archive", &pk, good_storages, N_STOR, o);
    tw_free(&pk);
}

/* A .pth around a hand-written pickle. */
static void wrap_pickle(tw_buf *out, const tw_buf *pk)
{
    tw_pth(out, "archive", pk, good_storages, N_STOR, &torch_like);
}

/* Parses and expects failure with the label and `needle` in one line. */
static int fails_with(const void *p, size_t n, const char *needle, char *msg_out)
{
    rwkv_tensor_file *f = (rwkv_tensor_file *)1;
    rwkv_error e = {{0}};
    /* exact-size copy so ASan catches any read past the end */
    void *copy = malloc(n ? n : 1);
    memcpy(copy, p, n);
    int rc = rwkv_tensor_file_parse("bad.pth", copy, n, &f, &e);
    rwkv_tensor_file_close(rc == 0 ? f : NULL);
    free(copy);
    if (msg_out)
        snprintf(msg_out, RWKV_ERROR_MAX, "%s", e.msg);
    return rc == -1 && f == NULL && strstr(e.msg, "bad.pth") && !strchr(e.msg, '\n') &&
           (!needle || strstr(e.msg, needle));
}

#define EXPECT_FAIL(p, n, needle)                                                          \
    do {                                                                                   \
        char m_[RWKV_ERROR_MAX];                                                           \
        CHECKF(fails_with((p), (n), (needle), m_), "wanted '%s', got '%s'", (needle), m_); \
    } while (0)

static void test_good_file(void)
{
    static const tw_zip_opts variants[] = {{1, 1, 0}, {0, 0, 0}, {1, 0, 1}, {0, 1, 1}};
    for (size_t v = 0; v < 4; v++) {
        tw_buf z = {0};
        build(&z, good_tensors, N_GOOD, &variants[v]);
        /* copy into 64-byte-aligned memory so in-place alignment is the file's */
        unsigned char *buf = aligned_alloc(64, (z.n + 63) & ~(size_t)63);
        memcpy(buf, z.p, z.n);
        rwkv_tensor_file *f = NULL;
        rwkv_error e = {{0}};
        int rc = rwkv_tensor_file_parse("good.pth", buf, z.n, &f, &e);
        CHECKF(rc == 0, "variant %zu: %s", v, e.msg);
        CHECK(strcmp(rwkv_tensor_file_format(f), "pth") == 0);
        CHECK(rwkv_tensor_file_count(f) == N_GOOD);
        for (size_t i = 0; i < N_GOOD; i++)
            CHECK(strcmp(rwkv_tensor_file_at(f, i)->name, good_tensors[i].name) == 0);
        const rwkv_tensor *a = rwkv_tensor_file_find(f, "a.weight"),
                          *at = rwkv_tensor_file_find(f, "a.t"),
                          *row = rwkv_tensor_file_find(f, "a.row"),
                          *b = rwkv_tensor_file_find(f, "b.half"),
                          *c = rwkv_tensor_file_find(f, "c.bf16"),
                          *d = rwkv_tensor_file_find(f, "d.scalar"),
                          *em = rwkv_tensor_file_find(f, "e.empty");
        CHECK(a && at && row && b && c && d && em);
        CHECK(a->dtype == RWKV_F32 && a->ndim == 2 && a->numel == 6);
        CHECK(memcmp(a->data, a_vals, sizeof a_vals) == 0);
        /* transposed view, gathered: at[i][j] = a[j][i] */
        static const float t_want[6] = {1, 4, 2, 5, 3, 6};
        CHECK(at->shape[0] == 3 && at->shape[1] == 2 && memcmp(at->data, t_want, 24) == 0);
        CHECK(row->numel == 3 && memcmp(row->data, a_vals + 3, 12) == 0);
        CHECK(b->dtype == RWKV_F16 && memcmp(b->data, b_vals, sizeof b_vals) == 0);
        CHECK(tw_f16_to_f32(((const uint16_t *)b->data)[2]) == -3.0f);
        CHECK(c->dtype == RWKV_BF16 && tw_bf16_to_f32(((const uint16_t *)c->data)[1]) == -5.0f);
        CHECK(d->ndim == 0 && d->numel == 1 && *(const float *)d->data == 42.0f);
        CHECK(em->numel == 0 && em->ndim == 2 && em->shape[1] == 5 && em->data != NULL);
        if (variants[v].align) {
            /* only the transposed view is copied; everything else is in place */
            CHECK(rwkv_tensor_file_copied_bytes(f) == 24);
            CHECK((const unsigned char *)a->data > buf &&
                  (const unsigned char *)a->data < buf + z.n);
            CHECK((const unsigned char *)row->data == (const unsigned char *)a->data + 12);
        }
        for (size_t i = 0; i < N_GOOD; i++) {
            const rwkv_tensor *t = rwkv_tensor_file_at(f, i);
            CHECK((uintptr_t)t->data % rwkv_dtype_size(t->dtype) == 0);
        }
        rwkv_tensor_file_close(f);
        free(buf);
        tw_free(&z);
    }
}

static void test_truncated_every_byte(void)
{
    tw_buf z = {0};
    build(&z, good_tensors, N_GOOD, &torch_like);
    CHECK(z.n > 1000 && z.n < 8000);
    for (size_t cut = 0; cut < z.n; cut++) {
        char m[RWKV_ERROR_MAX];
        if (!fails_with(z.p, cut, NULL, m)) {
            tw_free(&z);
            CHECKF(0, "cut at %zu: '%s'", cut, m);
        }
    }
    tw_free(&z);
}

/* Flipping any byte of data.pkl or of a storage must be caught (CRC); any
 * other flip may pass or fail but must not crash. */
static void test_flipped_bytes(void)
{
    tw_buf z = {0}, pk = {0};
    build(&z, good_tensors, N_GOOD, &torch_like);
    pk_state_dict(&pk, good_tensors, N_GOOD);
    const unsigned char *pp = memmem(z.p, z.n, pk.p, pk.n);
    const unsigned char *ap = memmem(z.p, z.n, a_vals, sizeof a_vals);
    CHECK(pp && ap);
    size_t pkl_at = (size_t)(pp - z.p), a_at = (size_t)(ap - z.p);
    for (size_t i = 0; i < z.n; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            z.p[i] ^= (unsigned char)(1u << bit);
            char m[RWKV_ERROR_MAX];
            rwkv_tensor_file *f = NULL;
            rwkv_error e = {{0}};
            int rc = rwkv_tensor_file_parse("bad.pth", z.p, z.n, &f, &e);
            rwkv_tensor_file_close(f);
            int must_fail = (i >= pkl_at && i < pkl_at + pk.n) || (i >= a_at && i < a_at + 24);
            if (rc != 0 || must_fail) {
                if (!fails_with(z.p, z.n, NULL, m)) {
                    tw_free(&z);
                    tw_free(&pk);
                    CHECKF(0, "flip at %zu bit %d: '%s'", i, bit, m);
                }
            }
            z.p[i] ^= (unsigned char)(1u << bit);
        }
    }
    /* and the unflipped file still parses */
    rwkv_tensor_file *f = NULL;
    int rc = rwkv_tensor_file_parse("good.pth", z.p, z.n, &f, NULL);
    rwkv_tensor_file_close(f);
    tw_free(&z);
    tw_free(&pk);
    CHECK(rc == 0);
}

static void test_random_bytes(void)
{
    uint64_t s = 12345;
    for (int k = 0; k < 2000; k++) {
        size_t n = (size_t)(test_rand(&s) % 3000);
        unsigned char *p = malloc(n + 4);
        for (size_t i = 0; i < n + 4; i++)
            p[i] = (unsigned char)test_rand(&s);
        if (k % 2 && n >= 4)
            memcpy(p, "PK\3\4", 4); /* get past the format check */
        char m[RWKV_ERROR_MAX];
        int ok = fails_with(p, n, NULL, m);
        free(p);
        CHECKF(ok, "random input %d (%zu bytes): '%s'", k, n, m);
    }
}

static void test_wrong_magic(void)
{
    tw_buf z = {0};
    build(&z, good_tensors, N_GOOD, &torch_like);
    z.p[0] = 'X';
    EXPECT_FAIL(z.p, z.n, "neither a .pth");
    z.p[0] = 'P';
    static const unsigned char legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                           0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
    EXPECT_FAIL(legacy, sizeof legacy, "legacy torch.save format (torch < 1.6");
    z.p[2] = 5; /* "PK\5\4" */
    EXPECT_FAIL(z.p, z.n, "does not start with a local file header");
    tw_free(&z);
}

/* ------------------------------------------------------------ zip faults */

static size_t find_sig(const tw_buf *z, uint32_t sig, size_t from)
{
    unsigned char s[4] = {(unsigned char)sig, (unsigned char)(sig >> 8),
                          (unsigned char)(sig >> 16), (unsigned char)(sig >> 24)};
    const unsigned char *p = memmem(z->p + from, z->n - from, s, 4);
    return p ? (size_t)(p - z->p) : SIZE_MAX;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void test_compressed_entry(void)
{
    tw_buf pk = {0}, z = {0};
    pk_state_dict(&pk, good_tensors, N_GOOD);
    tw_entry e[] = {{"archive/data.pkl", pk.p, pk.n, 8, 0},
                    {"archive/data/0", a_vals, sizeof a_vals, 0, 0}};
    tw_zip(&z, e, 2, &torch_like);
    EXPECT_FAIL(z.p, z.n, "entry 'archive/data.pkl' is compressed (method 8)");
    tw_free(&z);
    e[0].method = 0;
    e[1].method = 12;
    tw_zip(&z, e, 2, NULL);
    EXPECT_FAIL(z.p, z.n, "'archive/data/0' is compressed (method 12); torch.save writes stored");
    tw_free(&z);
    tw_free(&pk);
}

static void test_bad_crc(void)
{
    tw_buf pk = {0}, z = {0};
    pk_state_dict(&pk, good_tensors, 1);
    tw_entry e[] = {{"archive/data.pkl", pk.p, pk.n, 0, 0},
                    {"archive/data/0", a_vals, sizeof a_vals, 0, 1}};
    tw_zip(&z, e, 2, &torch_like);
    EXPECT_FAIL(z.p, z.n, "entry 'archive/data/0'");
    EXPECT_FAIL(z.p, z.n, "CRC-32");
    tw_free(&z);
    e[0].bad_crc = 1;
    e[1].bad_crc = 0;
    tw_zip(&z, e, 2, &torch_like);
    EXPECT_FAIL(z.p, z.n, "entry 'archive/data.pkl'");
    tw_free(&z);
    tw_free(&pk);
}

static void test_zip64_sizes_beyond_file(void)
{
    tw_zip_opts o = {1, 1, 1};
    tw_buf z = {0};
    build(&z, good_tensors, N_GOOD, &o);
    /* the second central entry is archive/data/0: its zip64 extra holds
     * usize, csize, local header offset */
    size_t c1 = find_sig(&z, 0x02014b50, 0), c2 = find_sig(&z, 0x02014b50, c1 + 4);
    CHECK(c2 != SIZE_MAX);
    size_t nl = z.p[c2 + 28] | (size_t)z.p[c2 + 29] << 8;
    unsigned char *x = z.p + c2 + 46 + nl;
    CHECK(x[0] == 1 && x[2] == 24);
    put64(x + 4, 1ull << 40);
    put64(x + 12, 1ull << 40);
    EXPECT_FAIL(z.p, z.n, "run past the data area");
    put64(x + 4, 24);
    EXPECT_FAIL(z.p, z.n, "compressed size 1099511627776 != size 24");
    put64(x + 12, 24);
    put64(x + 20, 1ull << 50);
    EXPECT_FAIL(z.p, z.n, "local header offset");
    /* extra field shorter than the fields it must supply */
    x[2] = 8;
    EXPECT_FAIL(z.p, z.n, "zip64 extra field");
    tw_free(&z);
}

static void test_end_records(void)
{
    tw_buf z = {0};
    build(&z, good_tensors, N_GOOD, &torch_like);
    size_t rec = find_sig(&z, 0x06064b50, 0), loc = find_sig(&z, 0x07064b50, 0);
    size_t eocd = find_sig(&z, 0x06054b50, 0);
    CHECK(rec != SIZE_MAX && loc != SIZE_MAX && eocd != SIZE_MAX);
    unsigned char save[80];
    memcpy(save, z.p + rec, sizeof save);
    /* 2^40 entries claimed in a few KB: must fail before allocating */
    put64(z.p + rec + 24, 1ull << 40);
    put64(z.p + rec + 32, 1ull << 40);
    EXPECT_FAIL(z.p, z.n, "entries claimed");
    memcpy(z.p + rec, save, sizeof save);
    put64(z.p + rec + 48, z.n); /* central directory offset past the end */
    EXPECT_FAIL(z.p, z.n, "central directory");
    memcpy(z.p + rec, save, sizeof save);
    put64(z.p + rec + 40, 1ull << 62); /* central directory size */
    EXPECT_FAIL(z.p, z.n, "central directory");
    memcpy(z.p + rec, save, sizeof save);
    put64(z.p + loc + 8, z.n - 10); /* locator points past itself */
    EXPECT_FAIL(z.p, z.n, "zip64 locator");
    put64(z.p + loc + 8, rec);
    z.p[rec] ^= 0xFF;
    EXPECT_FAIL(z.p, z.n, "zip64 end-of-directory signature");
    z.p[rec] ^= 0xFF;
    put32(z.p + rec + 16, 3); /* disk number */
    EXPECT_FAIL(z.p, z.n, "multi-disk");
    memcpy(z.p + rec, save, sizeof save);
    /* EOCD comment length that does not reach the end */
    z.p[eocd + 20] = 5;
    EXPECT_FAIL(z.p, z.n, "no end-of-central-directory record");
    z.p[eocd + 20] = 0;
    tw_free(&z);

    /* a plain (non-zip64) archive with a central directory offset past the end */
    tw_zip_opts plain = {0, 1, 0};
    build(&z, good_tensors, N_GOOD, &plain);
    eocd = find_sig(&z, 0x06054b50, 0);
    put32(z.p + eocd + 16, 0xFFFFFFF0u);
    EXPECT_FAIL(z.p, z.n, "central directory");
    put32(z.p + eocd + 16, 0xFFFFFFFFu);
    EXPECT_FAIL(z.p, z.n, "no zip64 locator");
    tw_free(&z);
}

static void test_local_header_faults(void)
{
    tw_buf z = {0};
    build(&z, good_tensors, N_GOOD, &torch_like);
    size_t l2 = find_sig(&z, 0x04034b50, 4);
    CHECK(l2 != SIZE_MAX);
    z.p[l2 + 30] ^= 0x20; /* name differs from the central directory */
    EXPECT_FAIL(z.p, z.n, "local header names another entry");
    z.p[l2 + 30] ^= 0x20;
    z.p[l2 + 28] = 0xFF; /* huge local extra: data would start past the data area */
    z.p[l2 + 29] = 0xFF;
    EXPECT_FAIL(z.p, z.n, "local header does not match");
    tw_free(&z);
    build(&z, good_tensors, N_GOOD, &torch_like);
    size_t c1 = find_sig(&z, 0x02014b50, 0);
    z.p[c1 + 8] |= 1; /* encrypted */
    EXPECT_FAIL(z.p, z.n, "encrypted");
    z.p[c1 + 8] &= 0xFE;
    put32(z.p + c1 + 42, 4); /* local header offset pointing at garbage */
    EXPECT_FAIL(z.p, z.n, "bad local header signature");
    tw_free(&z);
}

static void test_archive_layout_faults(void)
{
    tw_buf pk = {0}, z = {0};
    pk_state_dict(&pk, good_tensors, 1);
    tw_entry two[] = {{"x/data.pkl", pk.p, pk.n, 0, 0},
                      {"y/data.pkl", pk.p, pk.n, 0, 0},
                      {"x/data/0", a_vals, 24, 0, 0}};
    tw_zip(&z, two, 3, &torch_like);
    EXPECT_FAIL(z.p, z.n, "two pickles");
    tw_free(&z);
    tw_entry none[] = {{"x/data/0", a_vals, 24, 0, 0}, {"x/deeper/data.pkl", pk.p, pk.n, 0, 0}};
    tw_zip(&z, none, 2, &torch_like);
    EXPECT_FAIL(z.p, z.n, "no <dir>/data.pkl");
    tw_free(&z);
    tw_entry dup[] = {{"x/data.pkl", pk.p, pk.n, 0, 0},
                      {"x/data/0", a_vals, 24, 0, 0},
                      {"x/data/0", a_vals, 24, 0, 0}};
    tw_zip(&z, dup, 3, &torch_like);
    EXPECT_FAIL(z.p, z.n, "duplicate entry 'x/data/0'");
    tw_free(&z);
    tw_entry big[] = {{"x/data.pkl", pk.p, pk.n, 0, 0},
                      {"x/byteorder", "big", 3, 0, 0},
                      {"x/data/0", a_vals, 24, 0, 0}};
    tw_zip(&z, big, 3, &torch_like);
    EXPECT_FAIL(z.p, z.n, "byteorder record says 'big'");
    tw_free(&z);
    /* any prefix works, including one with spaces, and a little byteorder */
    tw_entry odd[] = {{"my model v1.2/data.pkl", pk.p, pk.n, 0, 0},
                      {"my model v1.2/byteorder", "little", 6, 0, 0},
                      {"my model v1.2/data/0", a_vals, 24, 0, 0}};
    tw_zip(&z, odd, 3, &torch_like);
    rwkv_tensor_file *f = NULL;
    rwkv_error e = {{0}};
    CHECKF(rwkv_tensor_file_parse("odd.pth", z.p, z.n, &f, &e) == 0, "%s", e.msg);
    CHECK(rwkv_tensor_file_count(f) == 1);
    rwkv_tensor_file_close(f);
    tw_free(&z);
    /* storage record missing */
    tw_entry miss[] = {{"x/data.pkl", pk.p, pk.n, 0, 0}};
    tw_zip(&z, miss, 1, &torch_like);
    EXPECT_FAIL(z.p, z.n, "storage '0' has no record x/data/0");
    tw_free(&z);
    tw_free(&pk);
}

/* ------------------------------------------------------------ pickle faults */

static void test_global_os_system_refused(void)
{
    const char *marker = "/tmp/rwkv_pickle_must_not_run";
    unlink(marker);
    const char *mods[][2] = {{"os", "system"}, {"posix", "system"}, {"builtins", "eval"},
                             {"__builtin__", "eval"}, {"subprocess", "call"},
                             {"torch", "load"}, {"collections", "defaultdict"}};
    for (size_t k = 0; k < sizeof mods / sizeof mods[0]; k++) {
        for (int stack_global = 0; stack_global < 2; stack_global++) {
            tw_buf pk = {0}, z = {0};
            pk_proto(&pk, 4);
            if (stack_global) {
                pk_str(&pk, mods[k][0]);
                pk_str(&pk, mods[k][1]);
                pk_op(&pk, 0x93);
            } else {
                pk_global(&pk, mods[k][0], mods[k][1]);
            }
            pk_str(&pk, "touch /tmp/rwkv_pickle_must_not_run");
            pk_op(&pk, 0x85);
            pk_op(&pk, 'R');
            pk_op(&pk, '.');
            wrap_pickle(&z, &pk);
            char want[128];
            snprintf(want, sizeof want, "pickle byte %zu: %s: global '%s.%s' is not allowed",
                     stack_global ? 12 + strlen(mods[k][0]) + strlen(mods[k][1]) : 2,
                     stack_global ? "STACK_GLOBAL" : "GLOBAL", mods[k][0], mods[k][1]);
            EXPECT_FAIL(z.p, z.n, want);
            tw_free(&z);
            tw_free(&pk);
        }
    }
    struct stat st;
    CHECK(stat(marker, &st) != 0);
}

static void test_unsupported_storage(void)
{
    static const char *const bad[] = {"DoubleStorage", "LongStorage", "ByteStorage",
                                      "UntypedStorage"};
    for (size_t k = 0; k < 4; k++) {
        tw_tensor t = good_tensors[0];
        t.storage_class = bad[k];
        tw_buf z = {0};
        build(&z, &t, 1, &torch_like);
        char want[128];
        snprintf(want, sizeof want, "unsupported storage type torch.%s", bad[k]);
        EXPECT_FAIL(z.p, z.n, want);
        tw_free(&z);
    }
}

/* Opcodes outside the whitelist, each after a valid start. */
static void test_opcodes_outside_whitelist(void)
{
    static const unsigned char ops[] = {'i', 'o', 0x81, 0x92, 'S', 'V', 'I', 'L', 'F', 'P',
                                        'l', 'p', 'g', 0x82, 0x83, 0x84, 0x8f, 0x90, 0x91,
                                        0x96, 0x97, 0x98, 'B', 'C', 'T', 'U', '0', '1', '2',
                                        0x8b, 0x8e, 0xff, 0x00, '\n'};
    for (size_t k = 0; k < sizeof ops; k++) {
        tw_buf pk = {0}, z = {0};
        pk_proto(&pk, 2);
        pk_op(&pk, '}');
        pk_op(&pk, ops[k]);
        tw_put(&pk, "abcdefgh\n", 9);
        pk_op(&pk, '.');
        wrap_pickle(&z, &pk);
        char want[64];
        snprintf(want, sizeof want, "pickle byte 3: opcode 0x%02x", ops[k]);
        EXPECT_FAIL(z.p, z.n, want);
        tw_free(&z);
        tw_free(&pk);
    }
}

/* Runs a hand-written pickle inside a valid archive and expects `needle`. */
static int pickle_fails(const tw_buf *pk, const char *needle, char *m)
{
    tw_buf z = {0};
    wrap_pickle(&z, pk);
    int ok = fails_with(z.p, z.n, needle, m);
    tw_free(&z);
    return ok;
}

#define EXPECT_PICKLE_FAIL(pk, needle)                                                     \
    do {                                                                                   \
        char m_[RWKV_ERROR_MAX];                                                           \
        int ok_ = pickle_fails(&(pk), (needle), m_);                                       \
        tw_free(&(pk));                                                                    \
        CHECKF(ok_, "wanted '%s', got '%s'", (needle), m_);                                \
    } while (0)

static void test_machine_limits(void)
{
    tw_buf pk = {0};
    pk_proto(&pk, 2);
    for (int i = 0; i < 100; i++)
        pk_op(&pk, '(');
    pk_op(&pk, '.');
    EXPECT_PICKLE_FAIL(pk, "MARK nested deeper than 64");

    pk_proto(&pk, 2);
    for (int i = 0; i < (1 << 20) + 10; i++)
        pk_op(&pk, 'N');
    pk_op(&pk, '.');
    EXPECT_PICKLE_FAIL(pk, "stack deeper than");

    pk_proto(&pk, 2);
    pk_op(&pk, 'h');
    pk_op(&pk, 5);
    pk_op(&pk, '.');
    EXPECT_PICKLE_FAIL(pk, "pickle byte 2: memo index 5 was never stored");

    pk_proto(&pk, 2);
    pk_op(&pk, 'N');
    pk_op(&pk, 'r');
    tw_u32(&pk, 0xFFFFFFF0u);
    pk_op(&pk, '.');
    EXPECT_PICKLE_FAIL(pk, "memo index 4294967280 out of range");

    pk_proto(&pk, 2);
    pk_op(&pk, 'j');
    tw_u32(&pk, 0x7FFFFFFFu);
    pk_op(&pk, '.');
    EXPECT_PICKLE_FAIL(pk, "never stored");

    pk_proto(&pk, 2);
    pk_op(&pk, 'q'); /* BINPUT with an empty stack */
    pk_op(&pk, 0);
    pk_op(&pk, '.');
    EXPECT_PICKLE_FAIL(pk, "memo store with an empty stack");

    /* a 2^40-byte string claimed in a tiny pickle */
    pk_proto(&pk, 4);
    pk_op(&pk, 0x8d);
    tw_u64(&pk, 1ull << 40);
    pk_op(&pk, '.');
    EXPECT_PICKLE_FAIL(pk, "string of 1099511627776 bytes runs past the pickle");

    pk_proto(&pk, 2);
    pk_op(&pk, 'X');
    tw_u32(&pk, 0xFFFFFFFFu);
    EXPECT_PICKLE_FAIL(pk, "runs past the pickle");

    pk_proto(&pk, 4);
    pk_op(&pk, 0x95);
    tw_u64(&pk, 1ull << 62);
    pk_op(&pk, '.');
    EXPECT_PICKLE_FAIL(pk, "FRAME");

    pk_proto(&pk, 2);
    pk_op(&pk, 0x8a);
    pk_op(&pk, 9);
    tw_put(&pk, "123456789", 9);
    pk_op(&pk, '.');
    EXPECT_PICKLE_FAIL(pk, "LONG1: 9-byte integer is too large");

    pk_proto(&pk, 9);
    EXPECT_PICKLE_FAIL(pk, "unsupported pickle protocol 9");

    pk_proto(&pk, 2);
    pk_op(&pk, '}');
    EXPECT_PICKLE_FAIL(pk, "pickle ends without STOP");

    pk_proto(&pk, 2);
    pk_op(&pk, 'c');
    for (int i = 0; i < 300; i++)
        pk_op(&pk, 'a');
    pk_op(&pk, '\n');
    EXPECT_PICKLE_FAIL(pk, "GLOBAL: module name not terminated");

    pk_proto(&pk, 2);
    pk_op(&pk, 't');
    EXPECT_PICKLE_FAIL(pk, "TUPLE without a MARK");

    pk_proto(&pk, 2);
    pk_op(&pk, 0x87);
    EXPECT_PICKLE_FAIL(pk, "TUPLE3: stack underflow");

    /* popping below a MARK is an underflow, as in Python */
    pk_proto(&pk, 2);
    pk_op(&pk, '}');
    pk_op(&pk, '(');
    pk_op(&pk, 'N');
    pk_op(&pk, 's');
    EXPECT_PICKLE_FAIL(pk, "SETITEM: stack underflow");
}

static void test_pickle_shapes_of_values(void)
{
    tw_buf pk = {0};
    pk_proto(&pk, 2);
    pk_op(&pk, 'N');
    pk_op(&pk, '.');
    EXPECT_PICKLE_FAIL(pk, "the pickled object is a None, not a dict of tensors");

    pk_proto(&pk, 2);
    pk_op(&pk, '}');
    pk_str(&pk, "x");
    pk_int(&pk, 1);
    pk_op(&pk, 's');
    pk_op(&pk, '.');
    EXPECT_PICKLE_FAIL(pk, "value of 'x' is a int, not a tensor");

    pk_proto(&pk, 2);
    pk_op(&pk, '}');
    pk_op(&pk, '}');
    pk_op(&pk, '.');
    EXPECT_PICKLE_FAIL(pk, "STOP with 2 values");

    pk_proto(&pk, 2);
    pk_op(&pk, ']');
    pk_op(&pk, 'N');
    pk_op(&pk, 'N');
    pk_op(&pk, 's');
    EXPECT_PICKLE_FAIL(pk, "SETITEM: target is a list, not a dict");

    pk_proto(&pk, 2);
    pk_op(&pk, ']');
    pk_op(&pk, '(');
    pk_op(&pk, 'N');
    pk_op(&pk, 'N');
    pk_op(&pk, 'e');
    pk_op(&pk, ')');
    pk_op(&pk, 'a');
    pk_op(&pk, '.');
    EXPECT_PICKLE_FAIL(pk, "the pickled object is a list");

    pk_proto(&pk, 2);
    pk_int(&pk, 3);
    pk_op(&pk, ')');
    pk_op(&pk, 'R');
    EXPECT_PICKLE_FAIL(pk, "REDUCE: cannot call a int");

    pk_proto(&pk, 2);
    pk_global(&pk, "collections", "OrderedDict");
    pk_op(&pk, 'N');
    pk_op(&pk, 0x85);
    pk_op(&pk, 'R');
    EXPECT_PICKLE_FAIL(pk, "OrderedDict takes no arguments");

    pk_proto(&pk, 2);
    pk_global(&pk, "torch", "FloatStorage");
    pk_op(&pk, ')');
    pk_op(&pk, 'R');
    EXPECT_PICKLE_FAIL(pk, "a storage class cannot be called");

    pk_proto(&pk, 2);
    pk_global(&pk, "torch._utils", "_rebuild_tensor_v2");
    pk_op(&pk, ')');
    pk_op(&pk, 'R');
    EXPECT_PICKLE_FAIL(pk, "_rebuild_tensor_v2 takes 6 or 7 arguments, got 0");

    pk_proto(&pk, 2);
    pk_op(&pk, '(');
    pk_str(&pk, "storage");
    pk_global(&pk, "torch", "FloatStorage");
    pk_str(&pk, "0");
    pk_str(&pk, "cpu");
    pk_op(&pk, 't'); /* 4-tuple: numel missing */
    pk_op(&pk, 'Q');
    EXPECT_PICKLE_FAIL(pk, "persistent id must be a 5-tuple");

    pk_proto(&pk, 2);
    pk_op(&pk, '(');
    pk_str(&pk, "module");
    pk_global(&pk, "torch", "FloatStorage");
    pk_str(&pk, "0");
    pk_str(&pk, "cpu");
    pk_int(&pk, 6);
    pk_op(&pk, 't');
    pk_op(&pk, 'Q');
    EXPECT_PICKLE_FAIL(pk, "persistent id kind must be 'storage'");

    pk_proto(&pk, 2);
    pk_op(&pk, 'N');
    pk_op(&pk, '}');
    pk_op(&pk, 'b');
    EXPECT_PICKLE_FAIL(pk, "BUILD: only a dict may get a dict of attributes");

    /* an empty APPENDS on a list (it once applied an offset to a NULL item
     * array; found by fuzz_pth) */
    pk_proto(&pk, 2);
    pk_op(&pk, '}');
    pk_str(&pk, "k");
    pk_op(&pk, ']');
    pk_op(&pk, '(');
    pk_op(&pk, 'e');
    pk_op(&pk, 's');
    pk_op(&pk, '.');
    EXPECT_PICKLE_FAIL(pk, "value of 'k' is a list, not a tensor");

    /* the shortest valid checkpoint: an empty dict, filled by an empty SETITEMS */
    pk_proto(&pk, 2);
    pk_op(&pk, '}');
    pk_op(&pk, '(');
    pk_op(&pk, 'u');
    pk_op(&pk, '.');
    tw_buf z = {0};
    wrap_pickle(&z, &pk);
    rwkv_tensor_file *f = NULL;
    CHECK(rwkv_tensor_file_parse("empty.pth", z.p, z.n, &f, NULL) == 0);
    CHECK(rwkv_tensor_file_count(f) == 0);
    rwkv_tensor_file_close(f);
    tw_free(&z);
    tw_free(&pk);
}

/* ------------------------------------------------------------ tensor faults */

static int tensor_fails(const tw_tensor *t, size_t n, const char *needle, char *m)
{
    tw_buf z = {0};
    build(&z, t, n, &torch_like);
    int ok = fails_with(z.p, z.n, needle, m);
    tw_free(&z);
    return ok;
}

#define EXPECT_TENSOR_FAIL(t, n, needle)                                                   \
    do {                                                                                   \
        char m_[RWKV_ERROR_MAX];                                                           \
        CHECKF(tensor_fails((t), (n), (needle), m_), "wanted '%s', got '%s'", (needle), m_); \
    } while (0)

static void test_tensor_faults(void)
{
    tw_tensor t[2];
    t[0] = good_tensors[0];
    t[0].storage_numel = 100;
    EXPECT_TENSOR_FAIL(t, 1, "storage '0' declares 100 f32 elements but its record holds 24");
    t[0] = good_tensors[0];
    t[0].storage_class = "HalfStorage";
    EXPECT_TENSOR_FAIL(t, 1, "declares 6 f16 elements but its record holds 24");

    t[0] = good_tensors[2];
    t[0].offset = 5;
    EXPECT_TENSOR_FAIL(t, 1, "3 elements at storage offset 5 do not fit in storage '0'");
    t[0].offset = 1ll << 60;
    EXPECT_TENSOR_FAIL(t, 1, "do not fit");

    t[0] = good_tensors[0];
    t[0].shape[0] = 3; /* 3x3 > 6 */
    EXPECT_TENSOR_FAIL(t, 1, "9 elements at storage offset 0 do not fit");

    /* strided view reaching past its storage: element 3*1+2*2 = 7 of 6 */
    t[0] = good_tensors[1];
    t[0].shape[0] = 2;
    t[0].shape[1] = 3;
    t[0].stride[0] = 3;
    t[0].stride[1] = 2;
    EXPECT_TENSOR_FAIL(t, 1, "tensor 'a.t': needs 8 elements of 4 bytes but its storage holds 24");

    t[0] = good_tensors[0];
    t[0].shape[0] = 1ll << 40;
    t[0].shape[1] = 1ll << 40;
    EXPECT_TENSOR_FAIL(t, 1, "element count overflows");

    t[0] = good_tensors[0];
    t[0].shape[0] = -2;
    t[0].shape[1] = -3;
    EXPECT_TENSOR_FAIL(t, 1, "size must be a tuple of at most 8 non-negative ints");

    t[0] = good_tensors[3];
    t[0].ndim = 9;
    for (int d = 0; d < 9; d++)
        t[0].shape[d] = 1;
    EXPECT_TENSOR_FAIL(t, 1, "size must be a tuple of at most 8");

    t[0] = good_tensors[1];
    t[0].stride[0] = -1;
    EXPECT_TENSOR_FAIL(t, 1, "stride must be a tuple of 2 non-negative ints");

    t[0] = good_tensors[0];
    t[1] = good_tensors[2];
    t[1].name = "a.weight";
    EXPECT_TENSOR_FAIL(t, 2, "tensor 'a.weight': duplicate tensor name");

    t[0] = good_tensors[0];
    t[0].name = "";
    EXPECT_TENSOR_FAIL(t, 1, "empty name");

    t[0] = good_tensors[0];
    t[0].key = "9";
    EXPECT_TENSOR_FAIL(t, 1, "storage '9' has no record archive/data/9");

    /* one storage used with two dtypes */
    t[0] = good_tensors[5];
    t[1] = good_tensors[5];
    t[1].name = "d2";
    t[1].storage_class = "BFloat16Storage";
    t[1].storage_numel = 2;
    t[1].ndim = 1;
    t[1].shape[0] = 2;
    EXPECT_TENSOR_FAIL(t, 2, "storage '3' is used with two dtypes");

    /* a broadcast view (stride 0) may not claim more elements than its storage */
    t[0] = good_tensors[5];
    t[0].ndim = 1;
    t[0].shape[0] = 1000;
    t[0].stride[0] = 0;
    EXPECT_TENSOR_FAIL(t, 1, "1000 elements at storage offset 0 do not fit in storage '3'");

    /* 40 gathered views of one storage: 40 * 24 bytes copied, within budget */
    tw_tensor many[40];
    char names[40][16];
    for (int i = 0; i < 40; i++) {
        many[i] = good_tensors[1];
        snprintf(names[i], sizeof names[i], "v%d", i);
        many[i].name = names[i];
    }
    tw_buf z = {0};
    build(&z, many, 40, &torch_like);
    rwkv_tensor_file *f = NULL;
    rwkv_error e = {{0}};
    int rc = rwkv_tensor_file_parse("views.pth", z.p, z.n, &f, &e);
    tw_free(&z);
    CHECKF(rc == 0, "%s", e.msg);
    CHECK(rwkv_tensor_file_copied_bytes(f) == 40 * 24);
    rwkv_tensor_file_close(f);
}

/* Many gathered views of one storage cannot make the copies exceed twice
 * the file size. */
static void test_copy_budget(void)
{
    enum { N = 2000 };
    static float big[4096];
    tw_tensor *many = calloc(N, sizeof *many);
    char(*names)[16] = calloc(N, 16);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], 16, "v%d", i);
        many[i] = (tw_tensor){names[i], "FloatStorage", "0", 4096, 0, 2, {64, 64}, {1, 64}, 0};
    }
    tw_buf pk = {0}, z = {0};
    pk_state_dict(&pk, many, N);
    tw_storage st = {"0", big, sizeof big};
    tw_pth(&z, "archive", &pk, &st, 1, &torch_like);
    char m[RWKV_ERROR_MAX];
    int ok = fails_with(z.p, z.n, "would exceed twice the file size", m);
    free(many);
    free(names);
    tw_free(&pk);
    tw_free(&z);
    CHECKF(ok, "got '%s'", m);
}

/* ------------------------------------------------------------ corpus */

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static int write_corpus(const char *dir)
{
    tw_buf z = {0}, pk = {0};
    static const tw_zip_opts v[] = {{1, 1, 0}, {0, 0, 0}, {1, 0, 1}};
    static const char *const names[] = {"good-torch-like.pth", "good-plain-zip.pth",
                                        "good-zip64-extra.pth"};
    for (int i = 0; i < 3; i++) {
        build(&z, good_tensors, N_GOOD, &v[i]);
        write_file(dir, names[i], z.p, z.n);
        tw_free(&z);
    }
    tw_tensor t = good_tensors[0];
    t.storage_class = "DoubleStorage";
    build(&z, &t, 1, &torch_like);
    write_file(dir, "bad-double-storage.pth", z.p, z.n);
    tw_free(&z);
    pk_proto(&pk, 2);
    pk_global(&pk, "os", "system");
    pk_str(&pk, "true");
    pk_op(&pk, 0x85);
    pk_op(&pk, 'R');
    pk_op(&pk, '.');
    wrap_pickle(&z, &pk);
    write_file(dir, "bad-os-system.pth", z.p, z.n);
    tw_free(&z);
    tw_free(&pk);
    pk_state_dict(&pk, good_tensors, 1);
    tw_entry e[] = {{"archive/data.pkl", pk.p, pk.n, 8, 0}, {"archive/data/0", a_vals, 24, 0, 1}};
    tw_zip(&z, e, 2, &torch_like);
    write_file(dir, "bad-compressed.pth", z.p, z.n);
    tw_free(&z);
    tw_free(&pk);
    printf("wrote the .pth seed corpus to %s\n", dir);
    return 0;
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
        return write_corpus(argv[2]);
    RUN(test_good_file);
    RUN(test_truncated_every_byte);
    RUN(test_flipped_bytes);
    RUN(test_random_bytes);
    RUN(test_wrong_magic);
    RUN(test_compressed_entry);
    RUN(test_bad_crc);
    RUN(test_zip64_sizes_beyond_file);
    RUN(test_end_records);
    RUN(test_local_header_faults);
    RUN(test_archive_layout_faults);
    RUN(test_global_os_system_refused);
    RUN(test_unsupported_storage);
    RUN(test_opcodes_outside_whitelist);
    RUN(test_machine_limits);
    RUN(test_pickle_shapes_of_values);
    RUN(test_tensor_faults);
    RUN(test_copy_budget);
    return test_summary();
}
