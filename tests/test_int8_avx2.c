/* test_int8_avx2.c — int8 on a CPU with AVX2 + AVX-VNNI but no AVX-512
 * (Alder Lake and its kin), run on this machine with the AVX-512 features
 * hidden (RWKV_CPU_HIDE=avx512f, set before anything asks for them):
 *  - the features read back hidden; bf16 is refused naming avx512f, int8
 *    runs;
 *  - the 256-bit int8 kernel gives the same bits as the 512-bit one, at
 *    every row count and past the 4096-input flush (where the real CPU has
 *    both);
 *  - the int8 engine (256-bit kernel, receptance/key in the fp32 path)
 *    keeps issue 15's int8 bounds on the RWKV-6 and RWKV-7 fixtures and the
 *    random 0.1B shape.
 * Skipped, with the reason, on a CPU without AVX-VNNI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu_features.h"
#include "core/engine/lowp_kernels.h"
#include "core/precision.h"
#include "tests/support/precision_quality.h"
#include "tests/testutil.h"

static int have_avx_vnni;

static void test_features_hidden(void)
{
    const rwkv_cpu_features *f = rwkv_cpu_features_get();
    CHECK(!f->avx512f && !f->avx512bw && !f->avx512_vnni && !f->avx512_bf16);
    CHECK(f->avx2 && f->avx_vnni);
    rwkv_error err;
    CHECK(rwkv_precision_check(RWKV_PRECISION_BF16, f, &err) == -1);
    CHECKF(strstr(err.msg, "avx512f") != NULL, "%s", err.msg);
    CHECK(rwkv_precision_check(RWKV_PRECISION_INT8, f, &err) == 0);
    CHECK(!rwkv_precision_int8_avx512(f));
    CHECK(rwkv_precision_auto(f) == RWKV_PRECISION_FP32);
}

static void test_kernel_same_bits(void)
{
    if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("avx512bw")) {
        test_skip("test_kernel_same_bits", "this CPU has no 512-bit int8 kernel to compare");
        return;
    }
    static const int kps[] = {32, 64, 96, 768, 3072, 4096, 4096 + 32, 8192 + 96};
    uint64_t seed = 5;
    enum { NR = 7 };
    for (size_t t = 0; t < sizeof kps / sizeof kps[0]; t++) {
        int kp = kps[t];
        int8_t *w = malloc((size_t)NR * kp);
        int16_t *x = malloc(sizeof *x * 4 * (size_t)kp);
        CHECK(w && x);
        for (int i = 0; i < NR * kp; i++)
            w[i] = (int8_t)((int64_t)(test_rand(&seed) % 255) - 127);
        for (int i = 0; i < 4 * kp; i++)
            x[i] = (int16_t)((int64_t)(test_rand(&seed) % 65535) - 32767);
        float ws[NR], xs[4] = {0.001f, 0.5f, 3.0f, 1e-5f};
        for (int j = 0; j < NR; j++)
            ws[j] = (float)(test_rand(&seed) % 1000 + 1) / 1e5f;
        int same = 1;
        for (int m = 1; m <= 4 && same; m++)
            for (int acc = 0; acc <= 1 && same; acc++) {
                float a[4][NR], b[4][NR];
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < NR; j++)
                        a[i][j] = b[i][j] = (float)(i + j) * 0.25f;
                rwkv_gemv_w8a16(w, ws, NR, kp, x, xs, m, &a[0][0], NR, acc);
                rwkv_gemv_w8a16_avx2(w, ws, NR, kp, x, xs, m, &b[0][0], NR, acc);
                same = memcmp(a, b, sizeof a) == 0;
                if (!same)
                    test_fail_at(__FILE__, __LINE__, "kp %d m %d acc %d: the kernels differ", kp,
                                 m, acc);
            }
        free(w);
        free(x);
        CHECK(same);
    }
}

static void test_quality_v6(void)
{
    precision_check_fixture("tiny-rwkv-6v0-3m", 0);
}

static void test_quality_v7(void)
{
    precision_check_fixture("tiny-rwkv-7v0-834K", 0);
}

static void test_quality_random_0_1b(void)
{
    precision_check_random_0_1b();
}

int main(int argc, char **argv)
{
    /* before the first rwkv_cpu_features_get: the features are read once */
    have_avx_vnni = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni");
    setenv("RWKV_CPU_HIDE", "avx512f", 1);
    test_init(argc, argv);
    if (!have_avx_vnni) {
        test_skip("test_int8_avx2", "this CPU has no AVX-VNNI: int8 without AVX-512 cannot run");
        return test_summary();
    }
    RUN(test_features_hidden);
    RUN(test_kernel_same_bits);
    RUN(test_quality_v6);
    RUN(test_quality_v7);
    RUN(test_quality_random_0_1b);
    return test_summary();
}
