/* test_precision.c — the bf16 and int8 engines against the fp32 engine on
 * every fixture model and a random 0.1B-shape RWKV-7, with the quality
 * bounds of issue 15 (docs/precision.md):
 *
 *   bf16: mean |Δlogit| <= 1% of the fp32 logits' std, max <= 8%;
 *         embeddings (hidden mean and last) cosine >= 0.999.
 *   int8: mean surprisal at most +1.0% above fp32, max |Δlogit| <= 20% of
 *         std; embeddings cosine >= 0.995.
 *   The max bounds do not apply to the two RWKV-5 tiny models (their
 *   GroupNorm amplifies rounding; the official package shows the same):
 *   their max is printed, every other bound holds.
 *
 * Every precision this CPU supports runs; those it does not are printed as
 * SKIP lines with the missing feature.  Also: batch and thread invariance
 * at each precision (bit for bit, as forward.h promises for fp32), the
 * precision names, and the error naming a missing CPU feature.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine/lowp_kernels.h"
#include "core/engine/simd.h"
#include "core/forward.h"
#include "core/model.h"
#include "core/precision.h"
#include "core/random_model.h"
#include "core/state.h"
#include "tests/support/fixture_model.h"
#include "tests/support/fixture_run.h"
#include "tests/testutil.h"

static const rwkv_precision LOW[] = {RWKV_PRECISION_BF16, RWKV_PRECISION_INT8};

/* 1 when this CPU runs p; otherwise prints a SKIP line naming the missing
 * feature and returns 0. */
static int runnable(rwkv_precision p, const char *what)
{
    rwkv_error err;
    if (rwkv_precision_check(p, rwkv_cpu_features_get(), &err) == 0)
        return 1;
    char name[128];
    snprintf(name, sizeof name, "%s at %s", what, rwkv_precision_name(p));
    test_skip(name, err.msg);
    return 0;
}

static rwkv_engine *engine(const rwkv_model *m, int threads, rwkv_precision p)
{
    rwkv_engine_opts o = {.n_threads = threads, .precision = p};
    rwkv_error err;
    rwkv_engine *e = rwkv_engine_new_opts(m, &o, &err);
    if (!e)
        test_fail_at(__FILE__, __LINE__, "engine at %s: %s", rwkv_precision_name(p), err.msg);
    return e;
}

/* ------------------------------------------------------------ names, errors */

static void test_names_and_missing_features(void)
{
    rwkv_precision p;
    rwkv_error err;
    for (int i = 0; i <= RWKV_PRECISION_AUTO; i++) {
        CHECK(rwkv_precision_parse(rwkv_precision_name((rwkv_precision)i), &p, &err) == 0);
        CHECK(p == (rwkv_precision)i);
    }
    CHECK(rwkv_precision_parse("fp16", &p, &err) == -1);
    CHECKF(strstr(err.msg, "fp16") && strstr(err.msg, "bf16"), "%s", err.msg);
    CHECK(rwkv_precision_parse("", &p, &err) == -1);

    /* a CPU with AVX-512 but neither dot-product extension */
    rwkv_cpu_features f = {.avx2 = 1, .fma = 1, .avx512f = 1, .avx512bw = 1, .avx512vl = 1};
    CHECK(rwkv_precision_check(RWKV_PRECISION_FP32, &f, &err) == 0);
    CHECK(rwkv_precision_check(RWKV_PRECISION_BF16, &f, &err) == -1);
    CHECKF(strstr(err.msg, "avx512_bf16") != NULL, "%s", err.msg);
    CHECK(rwkv_precision_check(RWKV_PRECISION_INT8, &f, &err) == -1);
    CHECKF(strstr(err.msg, "avx512_vnni") != NULL, "%s", err.msg);
    /* VNNI without AVX512-BF16: int8's receptance and key products need bf16 */
    rwkv_cpu_features v = f;
    v.avx512_vnni = 1;
    CHECK(rwkv_precision_check(RWKV_PRECISION_INT8, &v, &err) == -1);
    CHECKF(strstr(err.msg, "avx512_bf16") != NULL, "%s", err.msg);
    CHECK(rwkv_precision_auto(&f) == RWKV_PRECISION_FP32);
    f.avx512_bf16 = 1;
    CHECK(rwkv_precision_auto(&f) == RWKV_PRECISION_BF16);
    f.avx512_vnni = 1; /* int8 is never auto: slower than bf16 for prefill */
    CHECK(rwkv_precision_auto(&f) == RWKV_PRECISION_BF16);
    CHECK(rwkv_precision_check(RWKV_PRECISION_INT8, &f, &err) == 0);
    /* AVX2 only: the first missing feature is named */
    rwkv_cpu_features g = {.avx2 = 1, .fma = 1};
    CHECK(rwkv_precision_check(RWKV_PRECISION_BF16, &g, &err) == -1);
    CHECKF(strstr(err.msg, "avx512f") != NULL, "%s", err.msg);

    /* the detected features are consistent with what they imply */
    const rwkv_cpu_features *d = rwkv_cpu_features_get();
    CHECK(!d->avx512bw || d->avx512f);
    CHECK(!d->avx512_bf16 || d->avx512f);
    char buf[256];
    rwkv_cpu_features_describe(d, buf, sizeof buf);
    printf("# cpu: %s\n", buf);
}

/* ------------------------------------------------------------ kernels */

static float bf16_to_f(uint16_t b)
{
    return rwkv_bf16_to_f32(b);
}

/* The hand-written GEMVs against plain sums, at every row count 1..4 and
 * lengths that take each tail path (not multiples of 32/64, shorter than
 * one register, past the int8 kernel's 4096-input flush): within 1e-6 of
 * the sum of the terms' magnitudes (the int8 lane sums are exact; their
 * conversion to float and the final reduction round); accumulate adds. */
static void test_kernels_against_plain_sums(void)
{
    static const int ks[] = {1, 17, 31, 32, 33, 63, 64, 95, 96, 130, 448, 4097 + 31};
    uint64_t seed = 77;
    enum { NR = 5 };
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        int k = ks[t], kp = (k + 31) / 32 * 32;
        uint16_t *wb = malloc(sizeof *wb * NR * (size_t)k), *xb = malloc(sizeof *xb * 4 * (size_t)k);
        int8_t *wq = calloc((size_t)NR * kp, 1);
        int16_t *xq = calloc((size_t)4 * kp, sizeof *xq);
        float y[4][NR], ws[NR] = {0.5f, 1.0f, 0.25f, 2.0f, 0.125f}, xs[4] = {1.0f, 0.5f, 2.0f, 4.0f};
        int ok = wb && xb && wq && xq;
        for (int i = 0; ok && i < NR * k; i++) {
            wb[i] = rwkv_f32_to_bf16((float)((int64_t)(test_rand(&seed) % 2001) - 1000) / 997.0f);
            wq[(i / k) * kp + i % k] = (int8_t)((int64_t)(test_rand(&seed) % 255) - 127);
        }
        for (int i = 0; ok && i < 4 * k; i++) {
            xb[i] = rwkv_f32_to_bf16((float)((int64_t)(test_rand(&seed) % 2001) - 1000) / 991.0f);
            xq[(i / k) * kp + i % k] = (int16_t)((int64_t)(test_rand(&seed) % 65535) - 32767);
        }
        for (int m = 1; ok && m <= 4; m++) {
            if (runnable(RWKV_PRECISION_BF16, "bf16 GEMV kernel") || (m = 5, 0)) {
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < NR; j++)
                        y[i][j] = 1.0f;
                rwkv_gemv_bf16(wb, NR, k, xb, m, &y[0][0], NR, 1);
                for (int i = 0; i < m && ok; i++)
                    for (int j = 0; j < NR && ok; j++) {
                        double ref = 1.0, mag = 0;
                        for (int c = 0; c < k; c++) {
                            double p = (double)bf16_to_f(wb[j * k + c]) * bf16_to_f(xb[i * k + c]);
                            ref += p;
                            mag += fabs(p);
                        }
                        ok = fabs(y[i][j] - ref) <= 1e-6 * (mag + 1);
                        if (!ok)
                            test_fail_at(__FILE__, __LINE__, "bf16 k %d m %d row %d col %d: %.9g vs %.9g",
                                         k, m, i, j, y[i][j], ref);
                    }
            }
            if (!ok || !runnable(RWKV_PRECISION_INT8, "int8 GEMV kernel"))
                continue;
            rwkv_gemv_w8a16(wq, ws, NR, kp, xq, xs, m, &y[0][0], NR, 0);
            for (int i = 0; i < m && ok; i++)
                for (int j = 0; j < NR && ok; j++) {
                    int64_t dot = 0, mag = 0;
                    for (int c = 0; c < kp; c++) {
                        int64_t p = (int64_t)wq[j * kp + c] * xq[i * kp + c];
                        dot += p;
                        mag += p < 0 ? -p : p;
                    }
                    double sc = (double)ws[j] * xs[i], ref = (double)dot * sc;
                    ok = fabs(y[i][j] - ref) <= 1e-6 * (double)mag * sc;
                    if (!ok)
                        test_fail_at(__FILE__, __LINE__, "int8 k %d m %d row %d col %d: %.9g vs %.9g",
                                     k, m, i, j, y[i][j], ref);
                }
        }
        free(wb);
        free(xb);
        free(wq);
        free(xq);
        CHECK(ok);
    }
}

/* ------------------------------------------------------------ quality */

typedef struct {
    double mean_d, max_d;     /* |Δlogit| / std */
    double sur_ref, sur_got;  /* mean surprisal, nats */
    double cos_mean, cos_last, cos_min_pos;
} quality;

static double cosine(const float *a, const float *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
}

static double cosine_d(const double *a, const double *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += a[i] * b[i];
        aa += a[i] * a[i];
        bb += b[i] * b[i];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
}

static quality compare(const fixture_run *ref, const fixture_run *got, size_t T, size_t V,
                       size_t C)
{
    quality q = {0};
    double s = 0, ss = 0;
    size_t n = T * V;
    for (size_t i = 0; i < n; i++) {
        s += ref->logits[i];
        ss += (double)ref->logits[i] * ref->logits[i];
    }
    double mean = s / (double)n, sd = sqrt(ss / (double)n - mean * mean), sum_d = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got->logits[i] - ref->logits[i]);
        sum_d += d;
        q.max_d = d > q.max_d ? d : q.max_d;
    }
    q.mean_d = sum_d / (double)n / sd;
    q.max_d /= sd;
    size_t ns = 0;
    for (size_t t = 0; t < T; t++)
        if (!isnan(ref->surprisal[t])) {
            q.sur_ref += ref->surprisal[t];
            q.sur_got += got->surprisal[t];
            ns++;
        }
    q.sur_ref /= (double)ns;
    q.sur_got /= (double)ns;
    q.cos_mean = cosine_d(ref->hsum, got->hsum, C);
    q.cos_last = cosine(ref->hidden + (T - 1) * C, got->hidden + (T - 1) * C, C);
    q.cos_min_pos = 1.0;
    for (size_t t = 0; t < T; t++) {
        double c = cosine(ref->hidden + t * C, got->hidden + t * C, C);
        q.cos_min_pos = c < q.cos_min_pos ? c : q.cos_min_pos;
    }
    return q;
}

/* Runs fm's tokens [0, T) at fp32 and every low precision, in blocks that
 * take both the GEMM (256, 64 rows) and the GEMV (1, 3 rows) paths, and
 * checks the bounds.  max_exempt: the RWKV-5 tiny models. */
static void check_quality(const char *name, const fixture_model *fm, const rwkv_model *m,
                          size_t T, int max_exempt)
{
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    size_t V = (size_t)mi->vocab_size, C = (size_t)mi->n_embd;
    static const int sizes[] = {256, 1, 3, 64};
    fixture_run ref;
    rwkv_engine *e = engine(m, 2, RWKV_PRECISION_FP32);
    CHECK(e);
    int rc = fixture_run_blocks(fm, m, e, NULL, 0, T, sizes, 4, 0, &ref);
    rwkv_engine_free(e);
    CHECK(rc == 0);
    int failed = 0;
    for (size_t k = 0; k < sizeof LOW / sizeof LOW[0] && !failed; k++) {
        rwkv_precision p = LOW[k];
        if (!runnable(p, name))
            continue;
        fixture_run got;
        e = engine(m, 2, p);
        if (!e) {
            failed = 1;
            break;
        }
        rc = fixture_run_blocks(fm, m, e, NULL, 0, T, sizes, 4, 0, &got);
        rwkv_engine_free(e);
        if (rc != 0) {
            failed = 1;
            break;
        }
        quality q = compare(&ref, &got, T, V, C);
        fixture_run_free(&got);
        double sur_rel = (q.sur_got - q.sur_ref) / q.sur_ref;
        printf("# %s %s: |dlogit|/std mean %.5f max %.4f%s; surprisal %.6f -> %.6f (%+.3f%%); "
               "cosine mean %.6f last %.6f min/pos %.6f\n",
               name, rwkv_precision_name(p), q.mean_d, q.max_d,
               max_exempt ? " (max bound exempt)" : "", q.sur_ref, q.sur_got, 100 * sur_rel,
               q.cos_mean, q.cos_last, q.cos_min_pos);
        int bf = p == RWKV_PRECISION_BF16;
        double cos_min = bf ? 0.999 : 0.995, max_bound = bf ? 0.08 : 0.20;
        if (bf && q.mean_d > 0.01) {
            test_fail_at(__FILE__, __LINE__, "%s bf16: mean |dlogit| %.5f std > 0.01", name,
                         q.mean_d);
            failed = 1;
        } else if (!bf && sur_rel > 0.01) {
            test_fail_at(__FILE__, __LINE__, "%s int8: mean surprisal %+.3f%% > +1%%", name,
                         100 * sur_rel);
            failed = 1;
        } else if (!max_exempt && q.max_d > max_bound) {
            test_fail_at(__FILE__, __LINE__, "%s %s: max |dlogit| %.4f std > %.2f", name,
                         rwkv_precision_name(p), q.max_d, max_bound);
            failed = 1;
        } else if (q.cos_mean < cos_min || q.cos_last < cos_min) {
            test_fail_at(__FILE__, __LINE__, "%s %s: embedding cosine mean %.6f last %.6f < %.3f",
                         name, rwkv_precision_name(p), q.cos_mean, q.cos_last, cos_min);
            failed = 1;
        }
    }
    fixture_run_free(&ref);
}

static void check_fixture(const char *dir, int max_exempt)
{
    fixture_model fm;
    CHECK(fixture_model_load(&fm, dir) == 0);
    char rel[128];
    snprintf(rel, sizeof rel, "models/%s.safetensors", dir);
    rwkv_model *m;
    rwkv_error err;
    if (rwkv_model_load(fixture_path(rel), &m, &err) != 0) {
        fixture_model_free(&fm);
        CHECKF(0, "%s", err.msg);
    }
    check_quality(dir, &fm, m, fm.n_tokens, max_exempt);
    rwkv_model_free(m);
    fixture_model_free(&fm);
}

static void test_quality_v4(void)
{
    check_fixture("tiny-rwkv-4v0-660K", 0);
}

static void test_quality_v5_0(void)
{
    check_fixture("tiny-rwkv-5v1-730K", 1);
}

static void test_quality_v5_2(void)
{
    check_fixture("tiny-rwkv-5v2-730K", 1);
}

static void test_quality_v6(void)
{
    check_fixture("tiny-rwkv-6v0-3m", 0);
}

static void test_quality_v7(void)
{
    check_fixture("tiny-rwkv-7v0-834K", 0);
}

/* The random 0.1B shape (L12-D768-H64-V65536, bf16 like the official
 * files), 320 random tokens: real matrix sizes, where the head has 65536
 * rows and the products take the library's kernels. */
static rwkv_model *random_model(const char *shape, rwkv_dtype dt, uint64_t seed, void **img)
{
    rwkv_random_model_spec spec = {.dtype = dt, .seed = seed};
    rwkv_error err;
    size_t len;
    rwkv_tensor_file *f;
    rwkv_model *m = NULL;
    if (rwkv_random_model_parse_shape(shape, &spec, &err) != 0 ||
        rwkv_random_model_serialize(&spec, img, &len, &err) != 0 ||
        rwkv_tensor_file_parse("random", *img, len, &f, &err) != 0 ||
        rwkv_model_from_tensors(f, &m, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "random model %s: %s", shape, err.msg);
        return NULL;
    }
    return m;
}

static void test_quality_random_0_1b(void)
{
    void *img = NULL;
    rwkv_model *m = random_model("L12-D768-H64-V65536", RWKV_BF16, 7, &img);
    if (!m) {
        free(img);
        return;
    }
    enum { T = 320 };
    fixture_model fm = {0};
    uint32_t tokens[T];
    uint64_t seed = 3;
    for (int i = 0; i < T; i++)
        tokens[i] = (uint32_t)(test_rand(&seed) % 65536);
    fm.tokens = tokens;
    fm.n_tokens = T;
    check_quality("random L12-D768-H64-V65536", &fm, m, T, 0);
    rwkv_model_free(m);
    free(img);
}

/* ------------------------------------------------------------ invariance */

typedef struct {
    float *logits, *hidden, *state;
} outs;

/* Requests (start[i], len[i]) over tokens in one batch, from fresh states. */
static int run_batch(rwkv_engine *e, const rwkv_model *m, const uint32_t *tokens,
                     const int *start, const int *len, int n, outs *o)
{
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    size_t V = (size_t)mi->vocab_size, C = (size_t)mi->n_embd;
    rwkv_request q[4];
    rwkv_state *st[4];
    for (int i = 0; i < n; i++) {
        st[i] = rwkv_state_new(m);
        o[i].logits = malloc(sizeof(float) * V * (size_t)len[i]);
        o[i].hidden = malloc(sizeof(float) * C * (size_t)len[i]);
        o[i].state = malloc(sizeof(float) * mi->state_floats);
        q[i] = (rwkv_request){.state = st[i], .tokens = tokens + start[i], .n_tokens = len[i],
                              .logits = RWKV_LOGITS_ALL, .logits_out = o[i].logits,
                              .hidden = RWKV_HIDDEN_ALL, .hidden_out = o[i].hidden,
                              .next_token = -1};
    }
    rwkv_error err;
    int rc = rwkv_forward(e, q, n, &err);
    if (rc != 0)
        test_fail_at(__FILE__, __LINE__, "forward: %s", err.msg);
    for (int i = 0; i < n; i++) {
        rwkv_state_export(st[i], o[i].state, NULL);
        rwkv_state_free(st[i]);
    }
    return rc;
}

static void outs_free(outs *o)
{
    free(o->logits);
    free(o->hidden);
    free(o->state);
}

static int same(const outs *a, const outs *b, const rwkv_model *m, int len)
{
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    size_t V = (size_t)mi->vocab_size, C = (size_t)mi->n_embd;
    return !memcmp(a->logits, b->logits, sizeof(float) * V * (size_t)len) &&
           !memcmp(a->hidden, b->hidden, sizeof(float) * C * (size_t)len) &&
           !memcmp(a->state, b->state, sizeof(float) * mi->state_floats);
}

/* A 37-token and a 300-token request, each alone on 1 thread and together
 * on 2 threads (in both orders): bit-identical at every precision. */
static void test_batch_and_thread_invariance(void)
{
    void *img = NULL;
    rwkv_model *m = random_model("L2-D256-H64-V3000", RWKV_F32, 11, &img);
    if (!m) {
        free(img);
        return;
    }
    uint32_t tokens[400];
    uint64_t seed = 5;
    for (int i = 0; i < 400; i++)
        tokens[i] = (uint32_t)(test_rand(&seed) % 3000);
    int start[2] = {3, 90}, len[2] = {37, 300}, rstart[2] = {90, 3}, rlen[2] = {300, 37};
    int bad = 0;
    for (size_t k = 0; k < sizeof LOW / sizeof LOW[0] && !bad; k++) {
        rwkv_precision p = LOW[k];
        if (!runnable(p, "batch invariance"))
            continue;
        rwkv_engine *e1 = engine(m, 1, p), *e2 = engine(m, 2, p);
        outs alone[2], both[2], rev[2];
        int ok = e1 && e2;
        for (int i = 0; i < 2 && ok; i++)
            ok = run_batch(e1, m, tokens, &start[i], &len[i], 1, &alone[i]) == 0;
        ok = ok && run_batch(e2, m, tokens, start, len, 2, both) == 0;
        ok = ok && run_batch(e2, m, tokens, rstart, rlen, 2, rev) == 0;
        for (int i = 0; ok && i < 2; i++)
            if (!same(&alone[i], &both[i], m, len[i]) || !same(&alone[i], &rev[1 - i], m, len[i])) {
                test_fail_at(__FILE__, __LINE__, "%s: the %d-token request differs alone and "
                             "batched", rwkv_precision_name(p), len[i]);
                bad = 1;
            }
        if (ok)
            for (int i = 0; i < 2; i++) {
                outs_free(&alone[i]);
                outs_free(&both[i]);
                outs_free(&rev[i]);
            }
        rwkv_engine_free(e1);
        rwkv_engine_free(e2);
        bad |= !ok;
    }
    rwkv_model_free(m);
    free(img);
}

/* Two engines of one model and precision share the converted weights;
 * freeing one leaves the other working (the set is reference counted). */
static void test_engines_share_weights(void)
{
    void *img = NULL;
    rwkv_model *m = random_model("L1-D128-H64-V500", RWKV_F32, 2, &img);
    if (!m) {
        free(img);
        return;
    }
    for (size_t k = 0; k < sizeof LOW / sizeof LOW[0]; k++) {
        rwkv_precision p = LOW[k];
        if (!runnable(p, "shared weights"))
            continue;
        rwkv_engine *a = engine(m, 1, p), *b = engine(m, 2, p);
        if (!a || !b) {
            rwkv_engine_free(a);
            rwkv_engine_free(b);
            break;
        }
        CHECK(rwkv_engine_precision(a) == p);
        CHECKF(strstr(rwkv_engine_device(a), rwkv_precision_name(p)) != NULL, "%s",
               rwkv_engine_device(a));
        uint32_t toks[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        int start = 0, len = 9;
        outs oa, ob;
        int ok = run_batch(a, m, toks, &start, &len, 1, &oa) == 0;
        rwkv_engine_free(a);
        ok = ok && run_batch(b, m, toks, &start, &len, 1, &ob) == 0;
        rwkv_engine_free(b);
        CHECK(ok);
        int eq = same(&oa, &ob, m, len);
        outs_free(&oa);
        outs_free(&ob);
        CHECKF(eq, "%s: two engines disagree", rwkv_precision_name(p));
    }
    /* auto resolves to a concrete precision */
    rwkv_engine *e = engine(m, 1, RWKV_PRECISION_AUTO);
    CHECK(e);
    rwkv_precision got = rwkv_engine_precision(e);
    rwkv_engine_free(e);
    CHECK(got == rwkv_precision_auto(rwkv_cpu_features_get()));
    rwkv_model_free(m);
    free(img);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_names_and_missing_features);
    RUN(test_kernels_against_plain_sums);
    RUN(test_engines_share_weights);
    RUN(test_batch_and_thread_invariance);
    RUN(test_quality_v4);
    RUN(test_quality_v5_0);
    RUN(test_quality_v5_2);
    RUN(test_quality_v6);
    RUN(test_quality_v7);
    RUN(test_quality_random_0_1b);
    return test_summary();
}
