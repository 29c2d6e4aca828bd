/* test_random_model.c — core/random_model: shape strings, the official LoRA
 * widths, parameter counts computed independently here, determinism per
 * seed, the dtype conversions (f16/bf16 files against the f32 file of the
 * same seed), value scales, and that the engine loads what it writes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "core/random_model.h"
#include "core/engine/simd.h"
#include "core/tensor_file.h"
#include "tests/testutil.h"

static void test_parse_shape(void)
{
    rwkv_random_model_spec s;
    memset(&s, 0, sizeof s);
    rwkv_error err;
    CHECKF(rwkv_random_model_parse_shape("L12-D768-H64-V65536", &s, &err) == 0, "%s", err.msg);
    CHECK(s.n_layer == 12 && s.n_embd == 768 && s.head_size == 64 && s.vocab_size == 65536);
    CHECK(rwkv_random_model_parse_shape("V10-H8-L3-D16", &s, &err) == 0);
    CHECK(s.n_layer == 3 && s.n_embd == 16 && s.head_size == 8 && s.vocab_size == 10);
    static const char *const bad[] = {
        "", "L12", "L12-D768-H64", "L12-D768-H64-V", "L12-D768-H64-V65536-", "-L12-D768-H64-V1",
        "L12-D768-H64-V65536-L1", "l12-D768-H64-V65536", "L12-D768-H64-V6x", "L12_D768_H64_V1",
        "L+1-D768-H64-V1", "L-1-D768-H64-V1", "L99999999999-D768-H64-V1", "L12-D768-H64-V1 ",
        "L12-D768-H64-X5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err.msg[0] = 0;
        CHECKF(rwkv_random_model_parse_shape(bad[i], &s, &err) == -1, "'%s' accepted", bad[i]);
        CHECK(err.msg[0] && !strchr(err.msg, '\n'));
    }
}

static void test_check_rejects_bad_specs(void)
{
    const rwkv_random_model_spec ok = {2, 128, 64, 1000, 0, RWKV_BF16, 1};
    CHECK(rwkv_random_model_check(&ok, NULL) == 0);
    rwkv_random_model_spec s;
    s = ok, s.n_layer = 0;
    CHECK(rwkv_random_model_check(&s, NULL) == -1);
    s = ok, s.n_embd = 100; /* not a multiple of 64 */
    CHECK(rwkv_random_model_check(&s, NULL) == -1);
    s = ok, s.head_size = 0;
    CHECK(rwkv_random_model_check(&s, NULL) == -1);
    s = ok, s.vocab_size = 0;
    CHECK(rwkv_random_model_check(&s, NULL) == -1);
    s = ok, s.vocab_size = (1 << 24) + 1;
    CHECK(rwkv_random_model_check(&s, NULL) == -1);
    s = ok, s.ffn_dim = -1;
    CHECK(rwkv_random_model_check(&s, NULL) == -1);
    s = ok, s.dtype = (rwkv_dtype)7;
    CHECK(rwkv_random_model_check(&s, NULL) == -1);
    s = ok, s.n_embd = 131072, s.head_size = 64;
    CHECK(rwkv_random_model_check(&s, NULL) == -1);
    void *buf = (void *)1;
    size_t len = 1;
    s = ok, s.n_layer = -3;
    CHECK(rwkv_random_model_serialize(&s, &buf, &len, NULL) == -1 && buf == NULL && len == 0);
}

static void test_lora_widths_follow_official_formula(void)
{
    /* max(32, round(c * D^e / 32) * 32): (1.8, .5) w and a, (1.3, .5) v,
     * (0.6, .8) g; D=768 is the official 0.1B model's 64/64/32/128, D=2048
     * the 1.5B's 96/96/64/256. */
    static const int want[][5] = {
        {64, 32, 32, 32, 32},     {768, 64, 64, 32, 128},   {1024, 64, 64, 32, 160},
        {2048, 96, 96, 64, 256},  {2560, 96, 96, 64, 320},  {4096, 128, 128, 96, 480},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        int w, a, v, g;
        rwkv_random_model_lora_dims(want[i][0], &w, &a, &v, &g);
        CHECKF(w == want[i][1] && a == want[i][2] && v == want[i][3] && g == want[i][4],
               "D=%d: got %d %d %d %d", want[i][0], w, a, v, g);
    }
}

/* Parameters of an RWKV-7 checkpoint as the training code lays it out,
 * counted here without the generator's plan. */
static size_t count_params(size_t L, size_t C, size_t N, size_t V, size_t F)
{
    int w, a, v, g;
    rwkv_random_model_lora_dims((int)C, &w, &a, &v, &g);
    size_t per_layer = 4 * C               /* ln1, ln2 */
                       + 6 * C             /* x_r .. x_g */
                       + 2 * C * (size_t)w + C /* w1 w2 w0 */
                       + 2 * C * (size_t)a + C /* a1 a2 a0 */
                       + 2 * C * (size_t)g  /* g1 g2 */
                       + 2 * C + (C / N) * N /* k_k k_a r_k */
                       + 4 * C * C          /* r k v o */
                       + 2 * C              /* ln_x */
                       + C + 2 * C * F;     /* ffn x_k key value */
    size_t vres = 2 * C * (size_t)v + C;    /* v1 v2 v0, not in layer 0 */
    return 2 * V * C + 2 * C /* ln0 */ + 2 * C /* ln_out */ + L * per_layer + (L - 1) * vres;
}

static void test_parameter_counts(void)
{
    rwkv_random_model_spec s = {12, 768, 64, 65536, 0, RWKV_BF16, 0};
    /* the official 0.1B model minus blocks.0.att.v0/v1/v2 (49,920) */
    CHECK(rwkv_random_model_params(&s) == 191034624);
    CHECK(count_params(12, 768, 64, 65536, 3072) == 191034624);
    CHECK(rwkv_random_model_bytes(&s) == 2 * 191034624ull);
    rwkv_random_model_spec t = {3, 96, 32, 500, 200, RWKV_F32, 0};
    CHECK(rwkv_random_model_params(&t) == count_params(3, 96, 32, 500, 200));
    CHECK(rwkv_random_model_bytes(&t) == 4 * count_params(3, 96, 32, 500, 200));
}

static rwkv_tensor_file *make(const rwkv_random_model_spec *s, void **buf)
{
    size_t len;
    rwkv_error err;
    rwkv_tensor_file *f = NULL;
    if (rwkv_random_model_serialize(s, buf, &len, &err) != 0 ||
        rwkv_tensor_file_parse("random", *buf, len, &f, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "%s", err.msg);
        return NULL;
    }
    return f;
}

static float value_at(const rwkv_tensor *t, size_t i)
{
    const uint16_t *h = t->data;
    switch (t->dtype) {
    case RWKV_F32: return ((const float *)t->data)[i];
    case RWKV_F16: return rwkv_f16_to_f32(h[i]);
    default: return rwkv_bf16_to_f32(h[i]);
    }
}

static void test_deterministic_and_dtypes_agree(void)
{
    rwkv_random_model_spec s = {2, 128, 64, 300, 0, RWKV_F32, 99};
    void *b32 = NULL, *b16 = NULL, *bbf = NULL, *again = NULL, *other = NULL;
    size_t l1, l2, l3;
    CHECK(rwkv_random_model_serialize(&s, &again, &l1, NULL) == 0);
    rwkv_tensor_file *f32 = make(&s, &b32);
    s.dtype = RWKV_F16;
    rwkv_tensor_file *f16 = make(&s, &b16);
    s.dtype = RWKV_BF16;
    rwkv_tensor_file *fbf = make(&s, &bbf);
    s.dtype = RWKV_F32;
    CHECK(rwkv_random_model_serialize(&s, &other, &l2, NULL) == 0);
    s.seed = 100;
    void *diff = NULL;
    CHECK(rwkv_random_model_serialize(&s, &diff, &l3, NULL) == 0);
    int same = l1 == l2 && memcmp(again, other, l1) == 0;
    int differ = l1 != l3 || memcmp(again, diff, l1) != 0;
    free(again);
    free(other);
    free(diff);
    CHECK(same);
    CHECK(differ);
    CHECK(f32 && f16 && fbf);
    CHECK(rwkv_tensor_file_count(f32) == rwkv_tensor_file_count(f16));
    for (size_t i = 0; i < rwkv_tensor_file_count(f32) && !test_current_failed; i++) {
        const rwkv_tensor *a = rwkv_tensor_file_at(f32, i), *h = rwkv_tensor_file_at(f16, i),
                          *bf = rwkv_tensor_file_at(fbf, i);
        CHECK(strcmp(a->name, h->name) == 0 && strcmp(a->name, bf->name) == 0);
        CHECK(a->numel == h->numel && a->numel == bf->numel);
        CHECK(a->dtype == RWKV_F32 && h->dtype == RWKV_F16 && bf->dtype == RWKV_BF16);
        for (size_t k = 0; k < a->numel; k++) {
            float x = value_at(a, k), y = value_at(h, k), z = value_at(bf, k);
            /* round to nearest: half an ulp, 2^-11 (f16 normal) / 2^-8 (bf16) relative */
            CHECKF(isfinite(x) && fabsf(y - x) <= fabsf(x) * 0x1p-11f + 0x1p-25f,
                   "%s[%zu]: f32 %.9g f16 %.9g", a->name, k, x, y);
            CHECKF(fabsf(z - x) <= fabsf(x) * 0x1p-8f, "%s[%zu]: f32 %.9g bf16 %.9g", a->name, k,
                   x, z);
        }
    }
    rwkv_tensor_file_close(f32);
    rwkv_tensor_file_close(f16);
    rwkv_tensor_file_close(fbf);
    free(b32);
    free(b16);
    free(bbf);
}

static void stats(const rwkv_tensor *t, double *mean, double *sd)
{
    double s = 0, s2 = 0;
    for (size_t i = 0; i < t->numel; i++) {
        double x = value_at(t, i);
        s += x;
        s2 += x * x;
    }
    *mean = s / (double)t->numel;
    *sd = sqrt(s2 / (double)t->numel - *mean * *mean);
}

static void test_value_scales_and_engine_accepts(void)
{
    rwkv_random_model_spec s = {4, 256, 64, 2000, 0, RWKV_BF16, 5};
    void *buf = NULL;
    rwkv_tensor_file *f = make(&s, &buf);
    CHECK(f);
    double mean, sd;
    static const struct {
        const char *name;
        double mean, sd, tol;
    } want[] = {
        {"blocks.1.ln1.weight", 1.0, 0.05, 0.02},
        {"blocks.1.ln1.bias", 0.0, 0.02, 0.01},
        {"blocks.2.att.key.weight", 0.0, 0.0625, 0.003},  /* 1/sqrt(256) */
        {"blocks.2.ffn.key.weight", 0.0, 0.0625, 0.003},
        {"head.weight", 0.0, 0.0625, 0.003},
        {"blocks.3.att.k_k", 0.85, 0.05, 0.02},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const rwkv_tensor *t = rwkv_tensor_file_find(f, want[i].name);
        CHECKF(t != NULL, "%s missing", want[i].name);
        stats(t, &mean, &sd);
        CHECKF(fabs(mean - want[i].mean) < want[i].tol && fabs(sd - want[i].sd) < want[i].tol,
               "%s: mean %g sd %g", want[i].name, mean, sd);
    }
    /* decay bias in the official range, token-shift mixes within [-1, 1] */
    const rwkv_tensor *w0 = rwkv_tensor_file_find(f, "blocks.0.att.w0");
    CHECK(w0 && w0->numel == 256);
    for (size_t i = 0; i < w0->numel; i++)
        CHECK(value_at(w0, i) >= -6.51f && value_at(w0, i) <= -1.49f);
    const rwkv_tensor *xk = rwkv_tensor_file_find(f, "blocks.3.att.x_k");
    CHECK(xk);
    for (size_t i = 0; i < xk->numel; i++)
        CHECK(fabsf(value_at(xk, i)) <= 1.0f);
    CHECK(rwkv_tensor_file_find(f, "blocks.0.att.v1") == NULL);
    CHECK(rwkv_tensor_file_find(f, "blocks.1.att.v1") != NULL);

    rwkv_model *m = NULL;
    rwkv_error err;
    CHECKF(rwkv_model_from_tensors(f, &m, &err) == 0, "%s", err.msg); /* takes f */
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    int ok = mi->generation == RWKV_GEN_V7 && mi->n_layer == 4 && mi->n_embd == 256 &&
             mi->n_head == 4 && mi->head_size == 64 && mi->vocab_size == 2000 &&
             mi->ffn_dim == 1024 && mi->n_params == rwkv_random_model_params(&s);
    rwkv_model_free(m);
    free(buf);
    CHECK(ok);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_parse_shape);
    RUN(test_check_rejects_bad_specs);
    RUN(test_lora_widths_follow_official_formula);
    RUN(test_parameter_counts);
    RUN(test_deterministic_and_dtypes_agree);
    RUN(test_value_scales_and_engine_accepts);
    return test_summary();
}
