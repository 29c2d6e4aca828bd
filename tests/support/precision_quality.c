/* precision_quality.c — the bf16/int8 engines against the fp32 engine with
 * issue 15's quality bounds; see precision_quality.h. */
#include "tests/support/precision_quality.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "core/random_model.h"
#include "core/state.h"
#include "tests/support/fixture_model.h"
#include "tests/support/fixture_run.h"
#include "tests/testutil.h"

const rwkv_precision precision_low[PRECISION_N_LOW] = {RWKV_PRECISION_BF16,
                                                      RWKV_PRECISION_INT8};

int precision_runnable(rwkv_precision p, const char *what)
{
    rwkv_error err;
    if (rwkv_precision_check(p, rwkv_cpu_features_get(), &err) == 0)
        return 1;
    char name[128];
    snprintf(name, sizeof name, "%s at %s", what, rwkv_precision_name(p));
    test_skip(name, err.msg);
    return 0;
}

rwkv_engine *precision_engine(const rwkv_model *m, int threads, rwkv_precision p)
{
    rwkv_engine_opts o = {.n_threads = threads, .precision = p};
    rwkv_error err;
    rwkv_engine *e = rwkv_engine_new_opts(m, &o, &err);
    if (!e)
        test_fail_at(__FILE__, __LINE__, "engine at %s: %s", rwkv_precision_name(p), err.msg);
    return e;
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
    rwkv_engine *e = precision_engine(m, 2, RWKV_PRECISION_FP32);
    CHECK(e);
    int rc = fixture_run_blocks(fm, m, e, NULL, 0, T, sizes, 4, 0, &ref);
    rwkv_engine_free(e);
    CHECK(rc == 0);
    int failed = 0;
    for (size_t k = 0; k < PRECISION_N_LOW && !failed; k++) {
        rwkv_precision p = precision_low[k];
        if (!precision_runnable(p, name))
            continue;
        fixture_run got;
        e = precision_engine(m, 2, p);
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

void precision_check_fixture(const char *dir, int max_exempt)
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

/* The random 0.1B shape (L12-D768-H64-V65536, bf16 like the official
 * files), 320 random tokens: real matrix sizes, where the head has 65536
 * rows and the products take the library's kernels. */
rwkv_model *precision_random_model(const char *shape, rwkv_dtype dt, uint64_t seed, void **img)
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

void precision_check_random_0_1b(void)
{
    void *img = NULL;
    rwkv_model *m = precision_random_model("L12-D768-H64-V65536", RWKV_BF16, 7, &img);
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

