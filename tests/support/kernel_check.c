/* kernel_check.c — see kernel_check.h. */
#include "tests/support/kernel_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"
#ifndef RWKV_NO_CUDA
#include "kernels/rwkv_cuda.h"
#endif

static const char *const PREC[2] = {"fp32", "bf16"};

static uint64_t g_seed = 0x5eed;

uint64_t kc_rand(void)
{
    return test_rand(&g_seed);
}

float kc_frand(float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(test_rand(&g_seed) >> 11) / 9007199254740992.0);
}

float *kc_fill(size_t n, float lo, float hi)
{
    float *p = malloc(n * sizeof(float) + 1);
    if (p)
        for (size_t i = 0; i < n; i++)
            p[i] = kc_frand(lo, hi);
    return p;
}

float *kc_dup(const float *src, size_t n)
{
    float *p = malloc(n * sizeof(float) + 1);
    if (p)
        memcpy(p, src, n * sizeof(float));
    return p;
}

/* x rounded to the nearest bf16 (ties to even), as a float. */
static float bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

void kc_round_bf16(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = bf16_round(p[i]);
}

/* max |got - ref| / max(1, max |ref|); NaN on one side only: infinity. */
double kc_nerr(const float *got, const float *ref, size_t n)
{
    double d = 0, scale = 1;
    for (size_t i = 0; i < n; i++) {
        if (isnan(ref[i]) || isnan(got[i])) {
            if (isnan(ref[i]) != isnan(got[i]))
                return INFINITY;
            continue;
        }
        d = fmax(d, fabs((double)got[i] - ref[i]));
        scale = fmax(scale, fabs((double)ref[i]));
    }
    return d / scale;
}

double kc_nerr_f64(const double *got, const double *ref, size_t n)
{
    double d = 0, scale = 1;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs(got[i] - ref[i]));
        scale = fmax(scale, fabs(ref[i]));
    }
    return isnan(d) ? INFINITY : d / scale;
}

/* One case's line, and a failure when err > tol.  0 / -1. */
int kc_result(const char *kernel, int bf16, const char *shape, double err, double tol, double ms)
{
    printf("# kernel %-18s %s  %-34s max_err %.3e  tol %.1e  %9.4f ms  %s\n", kernel,
           PREC[bf16 != 0], shape, err, tol, ms, err <= tol ? "ok" : "FAILED");
    fflush(stdout);
    if (err <= tol)
        return 0;
    test_fail_at(__FILE__, __LINE__, "%s %s %s: max error %.3e > tolerance %.1e", kernel,
                 PREC[bf16 != 0], shape, err, tol);
    return -1;
}

/* A harness call failed: the current test fails with its message. */
int kc_harness_failed(const char *kernel, const char *shape, const rwkv_error *err)
{
    test_fail_at(__FILE__, __LINE__, "%s %s: %s", kernel, shape, err->msg);
    return -1;
}

/* Segments from a 0-terminated list of lengths: seq_start (n + 1). */
int kc_segments(const int *len, int *seq_start)
{
    int n = 0;
    seq_start[0] = 0;
    for (; len[n]; n++)
        seq_start[n + 1] = seq_start[n] + len[n];
    return n;
}

void kc_seg_shape(char *buf, size_t cap, const char *head, const int *len)
{
    size_t o = (size_t)snprintf(buf, cap, "%s seg=", head);
    for (int i = 0; len[i] && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%d", i ? "," : "", len[i]);
}

/* --probe: the device, or why there is none. */
static int probe(void)
{
    const char *fake = getenv("RWKVD_TEST_GPU_ON_CPU");
    if (fake && strcmp(fake, "1") == 0) {
        printf("device: none: RWKVD_TEST_GPU_ON_CPU=1, a CPU stand-in for every GPU engine "
               "and kernel (checks the checks, not the CUDA backend)\n");
        return 0;
    }
#ifdef RWKV_NO_CUDA
    printf("no CUDA device: this build has no CUDA backend (no nvcc when it was built)\n");
    return 3;
#else
    rwkv_error err;
    rwkv_error_clear(&err);
    char desc[256];
    if (rwkv_cuda_device_count(&err) < 0 ||
        rwkv_cuda_describe_device(0, desc, sizeof desc, &err) != 0) {
        printf("%s\n", err.msg);
        return 3;
    }
    printf("device: cuda:0 %s\n", desc);
    return 0;
#endif
}

int kc_main(int argc, char **argv, const gpu_test *tests, size_t n)
{
    if (argc == 2 && strcmp(argv[1], "--probe") == 0)
        return probe();
    test_init(argc, argv);
    gpu_harness_init(argv[0]);
    gpu_run_all(tests, n);
    return test_summary();
}
