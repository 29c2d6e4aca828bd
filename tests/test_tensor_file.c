/* test_tensor_file.c — the checkpoint readers against the fixtures: every
 * model file opens, .pth and .safetensors of one model hold bit-identical
 * tensors in the same order, the bf16 copies widen to the fp32 values, and
 * the real torch 2.x file exposes exactly the tensors its manifest lists
 * (names, shapes, dtypes, sha256 of the bytes, sums).  Also the CRC-32
 * implementation, truncations of real files, and open() failures.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crc32.h"
#include "core/tensor_file.h"
#include "core/io/zip_reader.h"
#include "core/sha256.h"
#include "tests/support/torch_writer.h"
#include "tests/testutil.h"

static const char *const models[] = {"tiny-rwkv-4v0-660K", "tiny-rwkv-5v1-730K",
                                     "tiny-rwkv-5v2-730K", "tiny-rwkv-6v0-3m",
                                     "tiny-rwkv-7v0-834K", "tiny-rwkv-7v0-834K.bf16"};
#define N_MODELS (sizeof models / sizeof models[0])

static rwkv_tensor_file *open_fixture(const char *rel)
{
    rwkv_tensor_file *f = NULL;
    rwkv_error e = {{0}};
    char path[4096];
    snprintf(path, sizeof path, "%s", fixture_path(rel));
    if (rwkv_tensor_file_open(path, &f, &e) != 0)
        test_fail_at(__FILE__, __LINE__, "cannot open %s: %s", path, e.msg);
    return f;
}

static size_t tensor_bytes(const rwkv_tensor *t)
{
    return t->numel * rwkv_dtype_size(t->dtype);
}

static void test_crc32(void)
{
    CHECK(rwkv_crc32(0, "123456789", 9) == 0xCBF43926u);
    CHECK(rwkv_crc32(0, "", 0) == 0);
    CHECK(rwkv_crc32(rwkv_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u);
    size_t n = 1 << 16;
    unsigned char *b = malloc(n + 16);
    uint64_t s = 7;
    for (size_t i = 0; i < n + 16; i++)
        b[i] = (unsigned char)test_rand(&s);
    for (size_t off = 0; off < 16; off++)
        for (size_t len = 0; len < 700; len += (len < 200 ? 1 : 37)) {
            uint32_t a = rwkv_crc32(0x5a5a5a5a, b + off, len);
            uint32_t p = rwkv_crc32_portable(0x5a5a5a5a, b + off, len);
            if (a != p) {
                free(b);
                CHECKF(a == p, "off %zu len %zu", off, len);
            }
        }
    uint32_t whole = rwkv_crc32(0, b, n);
    CHECK(whole == rwkv_crc32_portable(0, b, n));
    CHECK(whole == rwkv_crc32(rwkv_crc32(0, b, 1000), b + 1000, n - 1000));
    free(b);
}

static void test_all_models_open(void)
{
    static const char *const ext[] = {".pth", ".safetensors"};
    for (size_t m = 0; m < N_MODELS; m++)
        for (int k = 0; k < 2; k++) {
            char rel[256];
            snprintf(rel, sizeof rel, "models/%s%s", models[m], ext[k]);
            rwkv_tensor_file *f = open_fixture(rel);
            CHECK(f);
            CHECK(strcmp(rwkv_tensor_file_format(f), k ? "safetensors" : "pth") == 0);
            CHECK(strstr(rwkv_tensor_file_path(f), rel) != NULL);
            size_t n = rwkv_tensor_file_count(f);
            CHECKF(n > 50, "%s: %zu tensors", rel, n);
            CHECK(rwkv_tensor_file_copied_bytes(f) == 0);
            CHECK(rwkv_tensor_file_at(f, n) == NULL);
            const rwkv_tensor *emb = rwkv_tensor_file_find(f, "emb.weight");
            CHECK(emb && emb->ndim == 2 && emb->shape[0] == 256);
            CHECK(rwkv_tensor_file_find(f, "emb.weigh") == NULL);
            CHECK(rwkv_tensor_file_find(f, "emb.weight.") == NULL);
            CHECK(rwkv_tensor_file_find(f, "") == NULL);
            for (size_t i = 0; i < n; i++) {
                const rwkv_tensor *t = rwkv_tensor_file_at(f, i);
                CHECK(rwkv_tensor_file_find(f, t->name) == t);
                CHECK(((uintptr_t)t->data % rwkv_dtype_size(t->dtype)) == 0);
                size_t numel = 1;
                for (int d = 0; d < t->ndim; d++)
                    numel *= (size_t)t->shape[d];
                CHECK(numel == t->numel);
            }
            rwkv_tensor_file_close(f);
        }
}

static void test_pth_equals_safetensors(void)
{
    for (size_t m = 0; m < N_MODELS; m++) {
        char a[256], b[256];
        snprintf(a, sizeof a, "models/%s.pth", models[m]);
        snprintf(b, sizeof b, "models/%s.safetensors", models[m]);
        rwkv_tensor_file *p = open_fixture(a), *s = open_fixture(b);
        int ok = p && s && rwkv_tensor_file_count(p) == rwkv_tensor_file_count(s);
        for (size_t i = 0; ok && i < rwkv_tensor_file_count(p); i++) {
            const rwkv_tensor *x = rwkv_tensor_file_at(p, i), *y = rwkv_tensor_file_at(s, i);
            ok = strcmp(x->name, y->name) == 0 && x->dtype == y->dtype && x->ndim == y->ndim &&
                 memcmp(x->shape, y->shape, sizeof x->shape) == 0 &&
                 memcmp(x->data, y->data, tensor_bytes(x)) == 0;
            if (!ok)
                test_fail_at(__FILE__, __LINE__, "%s: tensor %zu ('%s' vs '%s') differs",
                             models[m], i, x->name, y->name);
        }
        rwkv_tensor_file_close(p);
        rwkv_tensor_file_close(s);
        CHECKF(ok, "%s", models[m]);
    }
}

static void test_bf16_widens_to_f32(void)
{
    static const char *const pairs[][2] = {
        {"models/tiny-rwkv-7v0-834K.bf16.safetensors", "models/tiny-rwkv-7v0-834K.safetensors"},
        {"models/tiny-rwkv-7v0-834K.bf16.pth", "models/tiny-rwkv-7v0-834K.pth"},
    };
    for (int k = 0; k < 2; k++) {
        rwkv_tensor_file *h = open_fixture(pairs[k][0]), *f = open_fixture(pairs[k][1]);
        CHECK(h && f);
        CHECK(rwkv_tensor_file_count(h) == rwkv_tensor_file_count(f));
        size_t checked = 0;
        for (size_t i = 0; i < rwkv_tensor_file_count(h); i++) {
            const rwkv_tensor *x = rwkv_tensor_file_at(h, i), *y = rwkv_tensor_file_at(f, i);
            CHECK(strcmp(x->name, y->name) == 0);
            CHECK(x->dtype == RWKV_BF16 && y->dtype == RWKV_F32);
            CHECK(x->numel == y->numel && memcmp(x->shape, y->shape, sizeof x->shape) == 0);
            const uint16_t *hb = x->data;
            const float *fv = y->data;
            for (size_t e = 0; e < x->numel; e++) {
                float w = tw_bf16_to_f32(hb[e]);
                if (memcmp(&w, &fv[e], 4) != 0) {
                    rwkv_tensor_file_close(h);
                    rwkv_tensor_file_close(f);
                    CHECKF(0, "%s[%zu]: bf16 %a != f32 %a", x->name, e, (double)w,
                           (double)fv[e]);
                }
            }
            checked += x->numel;
        }
        CHECK(checked > 800000);
        rwkv_tensor_file_close(h);
        rwkv_tensor_file_close(f);
    }
}

static void test_real_torch2_file(void)
{
    size_t mlen;
    char *mtext = fixture_read("parser/manifest.json", &mlen);
    CHECK(mtext);
    json_error_t je;
    json_t *man = json_loadb(mtext, mlen, 0, &je);
    free(mtext);
    CHECK(man);
    json_t *list = json_object_get(man, "tensors");
    rwkv_tensor_file *f = open_fixture("parser/real-torch2-rwkv7-rosa-hybrid.pth");
    int ok = f && json_array_size(list) == 99 && rwkv_tensor_file_count(f) == 99;
    for (size_t i = 0; ok && i < 99; i++) {
        json_t *m = json_array_get(list, i);
        const rwkv_tensor *t = rwkv_tensor_file_at(f, i);
        json_t *shape = json_object_get(m, "shape");
        ok = strcmp(t->name, json_string_value(json_object_get(m, "name"))) == 0 &&
             strcmp(json_string_value(json_object_get(m, "dtype")), "float32") == 0 &&
             t->dtype == RWKV_F32 && (size_t)t->ndim == json_array_size(shape);
        for (int d = 0; ok && d < t->ndim; d++)
            ok = t->shape[d] == json_integer_value(json_array_get(shape, (size_t)d));
        char hex[65];
        uint8_t digest[32];
        rwkvd_sha256_buf(t->data, tensor_bytes(t), digest);
        rwkvd_sha256_hex(digest, hex);
        ok = ok && strcmp(hex, json_string_value(json_object_get(m, "sha256_le_data"))) == 0;
        double sum = 0, want = json_real_value(json_object_get(m, "sum_f64"));
        if (json_is_integer(json_object_get(m, "sum_f64")))
            want = (double)json_integer_value(json_object_get(m, "sum_f64"));
        for (size_t e = 0; e < t->numel; e++)
            sum += ((const float *)t->data)[e];
        ok = ok && fabs(sum - want) <= 1e-9 * (1 + fabs(want));
        if (!ok)
            test_fail_at(__FILE__, __LINE__, "tensor %zu '%s' does not match the manifest", i,
                         t->name);
    }
    rwkv_tensor_file_close(f);
    json_decref(man);
    CHECK(ok);
}

/* The zip layer alone against the manifest's record list (names, sizes,
 * stored method, small contents), including the CRC of every record. */
static void test_real_zip_records(void)
{
    size_t mlen, len;
    char *mtext = fixture_read("parser/manifest.json", &mlen);
    unsigned char *b = fixture_read("parser/real-torch2-rwkv7-rosa-hybrid.pth", &len);
    CHECK(mtext && b);
    json_t *man = json_loadb(mtext, mlen, 0, NULL);
    free(mtext);
    json_t *recs = json_object_get(man, "zip_records");
    rwkv_zip z;
    rwkv_error e = {{0}};
    int ok = rwkv_zip_open(&z, "real", b, len, &e) == 0;
    ok = ok && z.count == json_array_size(recs) && z.count == 105;
    for (size_t i = 0; ok && i < z.count; i++) {
        json_t *r = json_array_get(recs, i);
        const char *name = json_string_value(json_object_get(r, "name"));
        const rwkv_zip_entry *en = &z.entries[i];
        ok = en->name_len == strlen(name) && memcmp(en->name, name, en->name_len) == 0 &&
             rwkv_zip_find(&z, name, strlen(name)) == en &&
             (json_int_t)en->size == json_integer_value(json_object_get(r, "size")) &&
             json_integer_value(json_object_get(r, "compress_type")) == 0 &&
             rwkv_zip_check_crc(&z, en, &e) == 0;
        const char *content = json_string_value(json_object_get(r, "content"));
        if (ok && content)
            ok = strlen(content) == en->size && memcmp(content, en->data, en->size) == 0;
        if (!ok)
            test_fail_at(__FILE__, __LINE__, "record %zu (%s) differs: %s", i, name, e.msg);
    }
    if (z.entries)
        CHECK(rwkv_zip_find(&z, "no_rosa5/data/99999", 19) == NULL);
    rwkv_zip_close(&z);
    json_decref(man);
    free(b);
    CHECKF(ok, "%s", e.msg);
}

/* Every cut of a real file must fail cleanly with the label in the message. */
static void truncations_of(const char *rel, size_t positions)
{
    size_t len;
    unsigned char *full = fixture_read(rel, &len);
    CHECK(full);
    uint64_t s = 99;
    for (size_t k = 0; k < positions; k++) {
        size_t cut = k < 64 ? k : k < 128 ? len - (k - 63) : (size_t)(test_rand(&s) % len);
        unsigned char *p = malloc(cut ? cut : 1);
        memcpy(p, full, cut);
        rwkv_tensor_file *f = NULL;
        rwkv_error e = {{0}};
        int rc = rwkv_tensor_file_parse("cut-file", p, cut, &f, &e);
        free(p);
        if (rc != -1 || f || !strstr(e.msg, "cut-file") || strchr(e.msg, '\n')) {
            rwkv_tensor_file_close(f);
            free(full);
            CHECKF(0, "%s cut at %zu: rc %d, message '%s'", rel, cut, rc, e.msg);
        }
    }
    free(full);
}

static void test_truncated_real_files(void)
{
    truncations_of("parser/real-torch2-rwkv7-rosa-hybrid.pth", 400);
    truncations_of("models/tiny-rwkv-7v0-834K.bf16.pth", 300);
    truncations_of("models/tiny-rwkv-7v0-834K.bf16.safetensors", 300);
}

/* Parsing from memory gives the same tensors as opening the file. */
static void test_parse_matches_open(void)
{
    size_t len;
    unsigned char *b = fixture_read("models/tiny-rwkv-5v2-730K.pth", &len);
    CHECK(b);
    rwkv_tensor_file *m = NULL, *f = open_fixture("models/tiny-rwkv-5v2-730K.pth");
    rwkv_error e = {{0}};
    int rc = rwkv_tensor_file_parse("mem", b, len, &m, &e);
    int ok = rc == 0 && f && rwkv_tensor_file_count(m) == rwkv_tensor_file_count(f) &&
             strcmp(rwkv_tensor_file_path(m), "mem") == 0;
    for (size_t i = 0; ok && i < rwkv_tensor_file_count(m); i++) {
        const rwkv_tensor *x = rwkv_tensor_file_at(m, i), *y = rwkv_tensor_file_at(f, i);
        ok = strcmp(x->name, y->name) == 0 && memcmp(x->data, y->data, tensor_bytes(x)) == 0 &&
             (const unsigned char *)x->data >= b && (const unsigned char *)x->data < b + len;
    }
    rwkv_tensor_file_close(m);
    rwkv_tensor_file_close(f);
    free(b);
    CHECKF(ok, "%s", e.msg);
}

static void test_open_errors(void)
{
    rwkv_tensor_file *f = (rwkv_tensor_file *)1;
    rwkv_error e = {{0}};
    CHECK(rwkv_tensor_file_open("/nonexistent/model.pth", &f, &e) == -1 && f == NULL);
    CHECK(strstr(e.msg, "/nonexistent/model.pth") && strstr(e.msg, "No such file"));
    CHECK(rwkv_tensor_file_open("/tmp", &f, &e) == -1 && strstr(e.msg, "not a regular file"));
    char path[] = "/tmp/rwkv_tf_empty_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    int rc = rwkv_tensor_file_open(path, &f, &e);
    unlink(path);
    CHECK(rc == -1 && f == NULL && strstr(e.msg, path));
    CHECK(rwkv_tensor_file_parse("nothing", NULL, 0, &f, &e) == -1 && strstr(e.msg, "nothing"));
    rwkv_tensor_file_close(NULL);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_crc32);
    RUN(test_all_models_open);
    RUN(test_pth_equals_safetensors);
    RUN(test_bf16_widens_to_f32);
    RUN(test_real_torch2_file);
    RUN(test_real_zip_records);
    RUN(test_truncated_real_files);
    RUN(test_parse_matches_open);
    RUN(test_open_errors);
    return test_summary();
}
