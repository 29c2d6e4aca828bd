/* gpu_harness.c — see gpu_harness.h. */
#include "tests/support/gpu_harness.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"
#ifndef RWKV_NO_CUDA
#include "kernels/rwkv_cuda.h"
#endif

static int g_ok, g_fake;
static char g_why[RWKV_ERROR_MAX + 64];
static char g_argv0[PATH_MAX], g_bin[PATH_MAX];

void gpu_harness_init(const char *argv0)
{
    snprintf(g_argv0, sizeof g_argv0, "%s", argv0);
    const char *fake = getenv("RWKVD_TEST_GPU_ON_CPU");
    if (fake && strcmp(fake, "1") == 0) {
        g_ok = g_fake = 1;
        printf("# RWKVD_TEST_GPU_ON_CPU=1: every GPU engine is a CPU engine (checks the tests "
               "themselves, not the CUDA backend)\n");
        return;
    }
#ifdef RWKV_NO_CUDA
    snprintf(g_why, sizeof g_why, "no CUDA device: this build has no CUDA backend (no nvcc)");
#else
    rwkv_error err;
    rwkv_error_clear(&err);
    g_ok = rwkv_cuda_device_count(&err) > 0;
    snprintf(g_why, sizeof g_why, "%s", err.msg);
#endif
}

int gpu_real(void)
{
    return g_ok && !g_fake;
}

void gpu_run_all(const gpu_test *tests, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (g_ok)
            test_run(tests[i].name, tests[i].fn);
        else if (test_selected(tests[i].name))
            test_skip(tests[i].name, g_why);
    }
}

rwkv_engine *gpu_engine_rows(const rwkv_model *m, const char *precision, int pass_rows,
                             rwkv_error *err)
{
    if (g_fake)
        return rwkv_engine_new(m, 0, err);
    char rows[16];
    snprintf(rows, sizeof rows, "%d", pass_rows);
    setenv("RWKV_CUDA_PRECISION", precision, 1);
    if (pass_rows > 0)
        setenv("RWKV_CUDA_PASS_ROWS", rows, 1);
    rwkv_engine *e = rwkv_engine_new_on(m, "cuda:0", 0, err);
    unsetenv("RWKV_CUDA_PRECISION");
    unsetenv("RWKV_CUDA_PASS_ROWS");
    return e;
}

rwkv_engine *gpu_engine(const rwkv_model *m, const char *precision, rwkv_error *err)
{
    return gpu_engine_rows(m, precision, 0, err);
}

const char *gpu_bin(const char *prog)
{
    /* build/<flavour>/tests/test_x -> build/<flavour>/bin/prog */
    snprintf(g_bin, sizeof g_bin, "%s", g_argv0);
    char *slash = strrchr(g_bin, '/');
    if (slash && slash - g_bin >= 6 && strncmp(slash - 6, "/tests", 6) == 0)
        snprintf(slash - 6, sizeof g_bin - (size_t)(slash - 6 - g_bin), "/bin/%s", prog);
    else
        snprintf(g_bin, sizeof g_bin, "build/rel/bin/%s", prog);
    return g_bin;
}

int gpu_check_close(const float *got, const float *ref, size_t n, size_t row_len, double bound,
                    const char *what)
{
    size_t w = 0;
    double d = max_abs_diff(got, ref, n, &w);
    if (d <= bound)
        return 0;
    test_fail_at(__FILE__, __LINE__, "%s: differs by %.3g at row %zu col %zu (got %.7g, ref %.7g);"
                 " bound %.3g",
                 what, d, row_len ? w / row_len : w, row_len ? w % row_len : 0, got[w], ref[w],
                 bound);
    return -1;
}

int gpu_check_stat(const float *got, const float *ref, size_t n, double std, const char *what)
{
    double mx = 0, sum = 0;
    size_t w = 0, bad = 0, first_bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (isnan(d)) { /* a NaN anywhere is a failure, never ignored */
            if (!bad++)
                first_bad = i;
            continue;
        }
        sum += d;
        if (d > mx) {
            mx = d;
            w = i;
        }
    }
    double mean = n ? sum / (double)n : 0;
    printf("# %s: max |dlogit| %.3f%% of std (element %zu), mean %.4f%% (bounds %.0f%%, %.0f%%)\n",
           what, 100 * mx / std, w, 100 * mean / std, 100 * GPU_BF16_MAX_FRAC,
           100 * GPU_BF16_MEAN_FRAC);
    if (bad) {
        test_fail_at(__FILE__, __LINE__, "%s: %zu NaN values (first at element %zu)", what, bad,
                     first_bad);
        return -1;
    }
    if (!(mx <= GPU_BF16_MAX_FRAC * std) || !(mean <= GPU_BF16_MEAN_FRAC * std)) {
        test_fail_at(__FILE__, __LINE__,
                     "%s: max |d| %.4g (%.2f%% of std %.4g) at element %zu, mean %.4g (%.3f%%); "
                     "bounds %.0f%% / %.0f%%",
                     what, mx, 100 * mx / std, std, w, mean, 100 * mean / std,
                     100 * GPU_BF16_MAX_FRAC, 100 * GPU_BF16_MEAN_FRAC);
        return -1;
    }
    return 0;
}

int gpu_check_state_v7(const float *got, const float *ref, const rwkv_model *m, double tol,
                       const char *what)
{
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    size_t C = (size_t)mi->n_embd, KV = (size_t)mi->n_head * mi->head_size * mi->head_size;
    size_t per = 2 * C + KV;
    static const char *names[3] = {"att_x_prev", "att_kv", "ffn_x_prev"};
    for (int l = 0; l < mi->n_layer; l++) {
        size_t off[3] = {l * per, l * per + C, l * per + C + KV}, cnt[3] = {C, KV, C};
        for (int j = 0; j < 3; j++) {
            double scale = max_abs_f32(ref + off[j], cnt[j]);
            scale = scale < 1 ? 1 : scale;
            size_t w;
            double d = max_abs_diff(got + off[j], ref + off[j], cnt[j], &w);
            if (!(d <= tol * scale)) {
                test_fail_at(__FILE__, __LINE__,
                             "%s: layer %d %s differs by %.3g at %zu (got %.9g, ref %.9g); bound "
                             "%.3g",
                             what, l, names[j], d, w, got[off[j] + w], ref[off[j] + w],
                             tol * scale);
                return -1;
            }
        }
    }
    return 0;
}
