/* test_gpu_kernels_wkv7.c — the WKV-7 kernels alone against the CPU engine's own functions on
 * the same inputs (llm.c dev/cuda style):
 *   wkv7_prepare                               rwkv7_prepare_row (rwkv7_layer.c)
 *   wkv7_scan                                  rwkv7_wkv_head (rwkv7_wkv.c)
 *   wkv7_output (GroupNorm + bonus + gate)     rwkv7_output_row (rwkv7_layer.c)
 * at head sizes 32/64/128, segments of 1, 15, 16, 17 tokens (the scan
 * stages 16), decode batches of one-token documents.
 *
 * Error measure, output lines, SKIP without a device, --probe and the CPU
 * stand-in (RWKVD_TEST_GPU_ON_CPU=1): tests/support/kernel_check.h.  Each
 * case prints '#' kernel, precision, shape, error, tolerance, device time;
 * tolerances are per kernel, below, with the reason. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine/rwkv7.h"
#include "tests/support/gpu_harness.h"
#include "tests/support/kernel_check.h"
#include "tests/testutil.h"
#ifndef RWKV_NO_CUDA
#include "kernels/rwkv_cuda.h"
#endif

/* Under ASan the CUDA driver needs the shadow gap unprotected (it maps
 * memory there); harmless elsewhere. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "protect_shadow_gap=0";
}

/* ---------------------------------------------------------------- tolerances
 * fp32 outputs (bf16 outputs: KC_TOL_BF16): */
/* wkv7_prepare: sigmoid/exp a few ulp; the per-head norm in float vs double. */
#define TOL_PREPARE 2e-6
/* wkv7_scan: the bound of test_gpu_rwkv7's scan test (different summation
 * order over N keys, fp32 state carried over up to 50 tokens). */
#define TOL_SCAN 1e-5
/* wkv7_output: GroupNorm statistics and the bonus dot as float block sums. */
#define TOL_OUTPUT 1e-5

/* ---------------------------------------------------------------- WKV-7 */

/* Host buffers of one WKV-7 case; every matrix [M][C]. */
typedef struct {
    int C, N, H, M;
    float *w0, *a0, *k_k, *k_a, *v0, *r_k, *lnx_w, *lnx_b;
    float *r, *w, *k, *v, *a, *g, *kk, *y, *vm, *vfirst;
} k7_bufs;

static void k7_free(k7_bufs *b)
{
    float **v[] = {&b->w0, &b->a0, &b->k_k, &b->k_a, &b->v0, &b->r_k, &b->lnx_w, &b->lnx_b,
                   &b->r,  &b->w,  &b->k,   &b->v,   &b->a,  &b->g,   &b->kk,    &b->y,
                   &b->vm, &b->vfirst};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        free(*v[i]);
        *v[i] = NULL;
    }
}

static int k7_alloc(k7_bufs *b, int N, int H, int M)
{
    memset(b, 0, sizeof *b);
    b->C = N * H, b->N = N, b->H = H, b->M = M;
    size_t C = (size_t)b->C, MC = (size_t)M * C;
    b->w0 = kc_fill(C, -2, 2);
    b->a0 = kc_fill(C, -1, 1);
    b->k_k = kc_fill(C, 0.5f, 1.5f);
    b->k_a = kc_fill(C, 0, 1.5f);
    b->v0 = kc_fill(C, -1, 1);
    b->r_k = kc_fill(C, -1, 1);
    b->lnx_w = kc_fill(C, 0.5f, 1.5f);
    b->lnx_b = kc_fill(C, -0.2f, 0.2f);
    b->r = kc_fill(MC, -1, 1);
    b->w = kc_fill(MC, -3, 3);
    b->k = kc_fill(MC, -2, 2);
    b->v = kc_fill(MC, -2, 2);
    b->a = kc_fill(MC, -3, 3);
    b->g = kc_fill(MC, -1, 1);
    b->kk = kc_fill(MC, -1, 1);
    b->y = kc_fill(MC, -3, 3);
    b->vm = kc_fill(MC, -3, 3);
    b->vfirst = kc_fill(MC, -2, 2);
    float *all[] = {b->w0, b->a0, b->k_k, b->k_a, b->v0, b->r_k, b->lnx_w, b->lnx_b, b->r,
                    b->w,  b->k,  b->v,   b->a,   b->g,  b->kk,  b->y,     b->vm,    b->vfirst};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!all[i]) {
            k7_free(b);
            test_fail_at(__FILE__, __LINE__, "out of memory");
            return -1;
        }
    return 0;
}

static int k7_copy(k7_bufs *d, const k7_bufs *s)
{
    if (k7_alloc(d, s->N, s->H, s->M) != 0)
        return -1;
    size_t C = (size_t)s->C, MC = (size_t)s->M * C;
    float *const dv[] = {d->w0, d->a0, d->k_k, d->k_a, d->v0, d->r_k, d->lnx_w, d->lnx_b};
    const float *const sv[] = {s->w0, s->a0, s->k_k, s->k_a, s->v0, s->r_k, s->lnx_w, s->lnx_b};
    for (size_t i = 0; i < 8; i++)
        memcpy(dv[i], sv[i], C * sizeof(float));
    float *const dm[] = {d->r, d->w, d->k, d->v, d->a, d->g, d->kk, d->y, d->vm, d->vfirst};
    const float *const sm[] = {s->r, s->w, s->k, s->v, s->a, s->g, s->kk, s->y, s->vm, s->vfirst};
    for (size_t i = 0; i < 10; i++)
        memcpy(dm[i], sm[i], MC * sizeof(float));
    return 0;
}

static rwkv7_layer k7_layer(const k7_bufs *b)
{
    rwkv7_layer ly;
    memset(&ly, 0, sizeof ly);
    ly.w0 = b->w0, ly.a0 = b->a0, ly.k_k = b->k_k, ly.k_a = b->k_a, ly.v0 = b->v0;
    ly.r_k = b->r_k, ly.lnx_w = b->lnx_w, ly.lnx_b = b->lnx_b;
    return ly;
}

#ifndef RWKV_NO_CUDA
static rwkv_cuda_k7 k7_args(k7_bufs *b)
{
    rwkv_cuda_k7 a;
    memset(&a, 0, sizeof a);
    a.C = b->C, a.N = b->N, a.M = b->M;
    a.w0 = b->w0, a.a0 = b->a0, a.k_k = b->k_k, a.k_a = b->k_a, a.v0 = b->v0, a.r_k = b->r_k;
    a.lnx_w = b->lnx_w, a.lnx_b = b->lnx_b;
    a.r = b->r, a.w = b->w, a.k = b->k, a.v = b->v, a.a = b->a, a.g = b->g, a.kk = b->kk;
    a.y = b->y, a.vm = b->vm, a.vfirst = b->vfirst;
    return a;
}
#endif

static void cpu_prepare(k7_bufs *b, int first_layer)
{
    rwkv7_layer ly = k7_layer(b);
    for (int m = 0; m < b->M; m++) {
        size_t o = (size_t)m * b->C;
        rwkv7_prepare_row(&ly, first_layer, b->H, b->N, b->w + o, b->a + o, b->k + o, b->kk + o,
                          b->v + o, b->vfirst + o, b->vm + o);
    }
}

static int prepare_case(int N, int H, int M, int first_layer)
{
    k7_bufs c, g;
    if (k7_alloc(&c, N, H, M) != 0)
        return -1;
    if (k7_copy(&g, &c) != 0) {
        k7_free(&c);
        return -1;
    }
    char shape[96];
    snprintf(shape, sizeof shape, "N=%d H=%d M=%d %s", N, H, M,
             first_layer ? "layer0" : "layer1+");
    int rc = -1;
    cpu_prepare(&c, first_layer);
    double ms[1] = {0};
#ifndef RWKV_NO_CUDA
    rwkv_error err;
    rwkv_error_clear(&err);
    if (gpu_real()) {
        rwkv_cuda_k7 a = k7_args(&g);
        if (rwkv_cuda_k_wkv7_prepare(0, first_layer, &a, ms, &err) != 0) {
            kc_harness_failed("wkv7_prepare", shape, &err);
            goto out;
        }
    } else
#endif
        cpu_prepare(&g, first_layer);
    {
        size_t MC = (size_t)M * c.C;
        double e = fmax(fmax(kc_nerr(g.w, c.w, MC), kc_nerr(g.a, c.a, MC)),
                        fmax(kc_nerr(g.k, c.k, MC), kc_nerr(g.kk, c.kk, MC)));
        e = fmax(e, fmax(kc_nerr(g.v, c.v, MC), kc_nerr(g.vfirst, c.vfirst, MC)));
        rc = kc_result("wkv7_prepare", 0, shape, e, TOL_PREPARE, ms[0]);
    }
#ifndef RWKV_NO_CUDA
out:
#endif
    k7_free(&c);
    k7_free(&g);
    return rc;
}

/* Head sizes 32/64/128; one row; the 0.1B width (12 heads of 64). */
static void test_wkv7_prepare(void)
{
    static const int shapes[][3] = {{64, 1, 1}, {64, 12, 7}, {32, 3, 5}, {128, 2, 17}};
    for (size_t i = 0; i < 4; i++)
        for (int first = 1; first >= 0; first--)
            if (prepare_case(shapes[i][0], shapes[i][1], shapes[i][2], first) != 0)
                return;
}

/* Inputs in the ranges the model gives the scan: decay in (e^-0.606531, 1),
 * kk unit length per head and token, a in (0, 1). */
static void scan_inputs(k7_bufs *b)
{
    size_t MC = (size_t)b->M * b->C;
    for (size_t i = 0; i < MC; i++) {
        b->w[i] = expf(-0.606531f * kc_frand(0, 1));
        b->a[i] = kc_frand(0, 1);
        b->k[i] = kc_frand(-1, 1);
        b->v[i] = kc_frand(-1, 1);
    }
    for (size_t o = 0; o < MC; o += (size_t)b->N) {
        double s = 0;
        for (int j = 0; j < b->N; j++)
            s += (double)b->kk[o + j] * b->kk[o + j];
        for (int j = 0; j < b->N; j++)
            b->kk[o + j] /= (float)sqrt(s);
    }
}

static void cpu_scan(k7_bufs *b, int n_seg, const int *start, float *const *st)
{
    for (int s = 0; s < n_seg; s++)
        for (int h = 0; h < b->H; h++) {
            size_t o = (size_t)start[s] * b->C + (size_t)h * b->N;
            float *S = st[s] + b->C + (size_t)h * b->N * b->N;
            rwkv7_wkv_head(S, b->N, start[s + 1] - start[s], b->C, b->r + o, b->w + o,
                           b->k + o, b->v + o, b->kk + o, b->a + o, b->y + o);
        }
}

typedef struct {
    int N, H;
    int len[KC_MAX_SEG];
} scan_shape;

static int scan_case(const scan_shape *sp)
{
    int start[KC_MAX_SEG + 1];
    int n_seg = kc_segments(sp->len, start), M = start[n_seg];
    k7_bufs c, g;
    if (k7_alloc(&c, sp->N, sp->H, M) != 0)
        return -1;
    scan_inputs(&c);
    if (k7_copy(&g, &c) != 0) {
        k7_free(&c);
        return -1;
    }
    size_t SF = (size_t)c.C + (size_t)c.H * c.N * c.N;
    float *sc[KC_MAX_SEG] = {NULL}, *sg[KC_MAX_SEG] = {NULL};
    int rc = -1, ok = 1;
    for (int s = 0; s < n_seg; s++) {
        sc[s] = kc_fill(SF, -1, 1);
        sg[s] = sc[s] ? kc_dup(sc[s], SF) : NULL;
        ok = ok && sc[s] && sg[s];
    }
    char shape[96], head[24];
    snprintf(head, sizeof head, "N=%d H=%d M=%d", sp->N, sp->H, M);
    kc_seg_shape(shape, sizeof shape, head, sp->len);
    if (!ok) {
        test_fail_at(__FILE__, __LINE__, "out of memory");
        goto out;
    }
    cpu_scan(&c, n_seg, start, sc);
    double ms[1] = {0};
#ifndef RWKV_NO_CUDA
    rwkv_error err;
    rwkv_error_clear(&err);
    if (gpu_real()) {
        rwkv_cuda_k7 a = k7_args(&g);
        a.n_seg = n_seg, a.seq_start = start, a.states = sg;
        if (rwkv_cuda_k_wkv7_scan(0, &a, ms, &err) != 0) {
            kc_harness_failed("wkv7_scan", shape, &err);
            goto out;
        }
    } else
#endif
        cpu_scan(&g, n_seg, start, sg);
    {
        double e = kc_nerr(g.y, c.y, (size_t)M * c.C);
        for (int s = 0; s < n_seg; s++) /* att_x_prev must come back untouched */
            e = fmax(e, kc_nerr(sg[s], sc[s], SF));
        rc = kc_result("wkv7_scan", 0, shape, e, TOL_SCAN, ms[0]);
    }
out:
    for (int s = 0; s < n_seg; s++) {
        free(sc[s]);
        free(sg[s]);
    }
    k7_free(&c);
    k7_free(&g);
    return rc;
}

/* Segments of 1, 15, 16, 17 tokens (the kernel stages 16 at a time), 50;
 * a decode batch of 8 one-token documents at the 0.1B width. */
static void test_wkv7_scan(void)
{
    static const scan_shape shapes[] = {
        {64, 1, {1}},         {64, 2, {16}},      {64, 3, {17, 1, 15}},
        {32, 2, {50, 3}},     {128, 1, {33}},     {64, 12, {1, 1, 1, 1, 1, 1, 1, 1}},
        {128, 3, {2, 16, 1}},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (scan_case(&shapes[i]) != 0)
            return;
}

static void cpu_output(k7_bufs *b)
{
    rwkv7_layer ly = k7_layer(b);
    for (int m = 0; m < b->M; m++) {
        size_t o = (size_t)m * b->C;
        rwkv7_output_row(&ly, b->H, b->N, b->y + o, b->r + o, b->k + o, b->v + o, b->g + o);
    }
}

static int output_case(int N, int H, int M, float y_scale, int bf16)
{
    k7_bufs c;
    if (k7_alloc(&c, N, H, M) != 0)
        return -1;
    size_t MC = (size_t)M * c.C;
    for (size_t i = 0; i < MC; i++)
        c.y[i] *= y_scale;
    float *y_in = kc_dup(c.y, MC), *out = calloc(MC, sizeof(float));
    char shape[96];
    snprintf(shape, sizeof shape, "N=%d H=%d M=%d y*%g", N, H, M, (double)y_scale);
    int rc = -1;
    if (!y_in || !out) {
        test_fail_at(__FILE__, __LINE__, "out of memory");
        goto out;
    }
    cpu_output(&c); /* c.y becomes the reference output */
    double ms[1] = {0};
#ifndef RWKV_NO_CUDA
    rwkv_error err;
    rwkv_error_clear(&err);
    if (gpu_real()) {
        k7_bufs in = c;
        in.y = y_in;
        rwkv_cuda_k7 a = k7_args(&in);
        if (rwkv_cuda_k_wkv7_output(0, bf16, &a, out, ms, &err) != 0) {
            kc_harness_failed("wkv7_output", shape, &err);
            goto out;
        }
    } else
#endif
    {
        k7_bufs in = c;
        in.y = y_in;
        cpu_output(&in);
        memcpy(out, y_in, MC * sizeof(float));
        if (bf16)
            kc_round_bf16(out, MC);
    }
    rc = kc_result("wkv7_output", bf16, shape, kc_nerr(out, c.y, MC),
                   bf16 ? KC_TOL_BF16 : TOL_OUTPUT, ms[0]);
out:
    free(y_in);
    free(out);
    k7_free(&c);
    return rc;
}

/* Head sizes 32/64/128; y small enough (x0.01) that GroupNorm's eps
 * (64e-5) matters as much as the variance. */
static void test_wkv7_output(void)
{
    static const int shapes[][3] = {{64, 12, 1}, {64, 1, 5}, {32, 3, 7}, {128, 2, 3}};
    for (size_t i = 0; i < 4; i++)
        for (int bf16 = 0; bf16 < 2; bf16++)
            if (output_case(shapes[i][0], shapes[i][1], shapes[i][2], 1.0f, bf16) != 0 ||
                output_case(shapes[i][0], shapes[i][1], shapes[i][2], 0.01f, bf16) != 0)
                return;
}

int main(int argc, char **argv)
{
    static const gpu_test tests[] = {
        {"test_wkv7_prepare", test_wkv7_prepare},
        {"test_wkv7_scan", test_wkv7_scan},
        {"test_wkv7_output", test_wkv7_output},
    };
    return kc_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
