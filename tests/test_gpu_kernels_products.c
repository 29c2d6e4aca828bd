/* test_gpu_kernels_products.c — the products and the head's kernels alone against references on
 * the same inputs (llm.c dev/cuda style):
 *   gather_rows + head product, surprisal      a double-precision product; rwkv_logsumexp
 *   gemm (every projection, strided, +=)       a double-precision product
 *   colsum (hidden MEAN / hidden_sum)          row-order double sums, as cpu_forward.c
 * (the CPU engine's own product is a BLAS call with the same contract; a
 * double product is the stricter reference).
 *
 * Error measure, output lines, SKIP without a device, --probe and the CPU
 * stand-in (RWKVD_TEST_GPU_ON_CPU=1): tests/support/kernel_check.h.  Each
 * case prints '#' kernel, precision, shape, error, tolerance, device time;
 * tolerances are per kernel, below, with the reason. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine/vecops.h"
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

/* ---------------------------------------------------------------- tolerances */
/* products (the head, every projection): fp32 sums of K products in another
 * order (pedantic fp32, no TF32); bf16 mode gets bf16-exact inputs and fp32
 * accumulation on tensor cores, whose accumulator alignment may drop low
 * bits. */
#define TOL_GEMM_F32 2e-5
#define TOL_GEMM_BF16 1e-4
/* surprisal: float partial sums of exp, combined in double, vs the CPU's
 * log-sum-exp on the same logits. */
#define TOL_SURPRISAL 1e-5
/* colsum: the same double additions in the same row order: exact. */
#define TOL_COLSUM 0.0

/* ---------------------------------------------------------------- head */

static void cpu_logits(int C, int V, const float *head, const float *h, int n, const int *rows,
                       float *logits)
{
    for (int i = 0; i < n; i++) {
        const float *x = h + (size_t)rows[i] * C;
        for (int v = 0; v < V; v++) {
            const float *wr = head + (size_t)v * C;
            double s = 0;
            for (int c = 0; c < C; c++)
                s += (double)x[c] * wr[c];
            logits[(size_t)i * V + v] = (float)s;
        }
    }
}

/* The CPU engine's surprisal (cpu_forward.c head_row_task) of given logits. */
static void cpu_surprisal(int V, const float *logits, int n, const int *target, float *out)
{
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * V;
        out[i] = target[i] < 0 ? NAN : (float)(rwkv_logsumexp(row, V) - (double)row[target[i]]);
    }
}

typedef struct {
    int C, V, M, n;
    int rows[8], target[8];
} head_shape;

static int head_case(const head_shape *sp, int bf16)
{
    int C = sp->C, V = sp->V, M = sp->M, n = sp->n;
    size_t VC = (size_t)V * C, NV = (size_t)n * V;
    float *head = kc_fill(VC, -0.1f, 0.1f), *h = kc_fill((size_t)M * C, -1, 1);
    float *lc = calloc(NV, sizeof(float)), *lg = calloc(NV, sizeof(float));
    float *sc = calloc((size_t)n, sizeof(float)), *sg = calloc((size_t)n, sizeof(float));
    char shape[96];
    snprintf(shape, sizeof shape, "C=%d V=%d M=%d rows=%d", C, V, M, n);
    int rc = -1;
    if (!head || !h || !lc || !lg || !sc || !sg) {
        test_fail_at(__FILE__, __LINE__, "out of memory");
        goto out;
    }
    if (bf16) { /* bf16-exact operands: the product is then checked to fp32 accuracy */
        kc_round_bf16(head, VC);
        kc_round_bf16(h, (size_t)M * C);
    }
    cpu_logits(C, V, head, h, n, sp->rows, lc);
    double ms[3] = {0, 0, 0};
#ifndef RWKV_NO_CUDA
    rwkv_error err;
    rwkv_error_clear(&err);
    if (gpu_real()) {
        if (rwkv_cuda_k_head(0, bf16, C, V, head, M, h, n, sp->rows, sp->target, lg, sg, ms,
                             &err) != 0) {
            kc_harness_failed("head", shape, &err);
            goto out;
        }
    } else
#endif
    {
        memcpy(lg, lc, NV * sizeof(float));
        cpu_surprisal(V, lg, n, sp->target, sg);
    }
    /* the surprisal kernel is judged on the logits it was given */
    cpu_surprisal(V, lg, n, sp->target, sc);
    int bad = kc_result("gather+head_gemm", bf16, shape, kc_nerr(lg, lc, NV),
                        bf16 ? TOL_GEMM_BF16 : TOL_GEMM_F32, ms[0] + ms[1]);
    bad |= kc_result("surprisal", bf16, shape, kc_nerr(sg, sc, (size_t)n), TOL_SURPRISAL, ms[2]);
    rc = bad ? -1 : 0;
out:
    free(head);
    free(h);
    free(lc);
    free(lg);
    free(sc);
    free(sg);
    return rc;
}

/* The World vocabulary (65536) at the 0.1B width, the 20B one (50277, odd);
 * rows gathered out of order and twice; targets at both ends of the
 * vocabulary and none (-1: NaN). */
static void test_head_and_surprisal_vocab(void)
{
    static const head_shape shapes[] = {
        {768, 65536, 4, 2, {3, 0}, {0, 65535}},
        {256, 50277, 3, 3, {2, 1, 2}, {50276, -1, 7}},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int bf16 = 0; bf16 < 2; bf16++)
            if (head_case(&shapes[i], bf16) != 0)
                return;
}

/* Small vocabularies: the same kernels at sizes compute-sanitizer's
 * memcheck and racecheck get through quickly (make gpu-check runs them on
 * this case only). */
static void test_head_and_surprisal_small(void)
{
    static const head_shape shapes[] = {
        {64, 1000, 5, 5, {4, 3, 2, 1, 0}, {1, 2, 3, 999, -1}},
        {7, 3, 1, 1, {0}, {2}},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int bf16 = 0; bf16 < 2; bf16++)
            if (head_case(&shapes[i], bf16) != 0)
                return;
}

/* ---------------------------------------------------------------- gemm */

/* Y[m][yoff + n] (+)= X[m][xoff + .] · W[n] in double (the reference every
 * product is held to; the CPU engine's own product is a BLAS call with the
 * same contract). */
static void cpu_gemm(int M, int N, int K, const float *X, int ldx, int xoff, const float *W,
                     float *Y, int ldy, int yoff, int acc)
{
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = acc ? Y[(size_t)m * ldy + yoff + n] : 0.0;
            for (int k = 0; k < K; k++)
                s += (double)X[(size_t)m * ldx + xoff + k] * W[(size_t)n * K + k];
            Y[(size_t)m * ldy + yoff + n] = (float)s;
        }
}

typedef struct {
    int M, N, K, ldx, xoff, ldy, yoff, acc;
    const char *what;
} gemm_shape;

static int gemm_case(const gemm_shape *sp, int bf16)
{
    size_t XN = (size_t)sp->M * sp->ldx, WN = (size_t)sp->N * sp->K, YN = (size_t)sp->M * sp->ldy;
    float *X = kc_fill(XN, -1, 1), *W = kc_fill(WN, -0.1f, 0.1f), *yc = kc_fill(YN, -1, 1);
    float *yg = yc ? kc_dup(yc, YN) : NULL;
    char shape[96];
    snprintf(shape, sizeof shape, "%s M=%d N=%d K=%d", sp->what, sp->M, sp->N, sp->K);
    int rc = -1;
    if (!X || !W || !yc || !yg) {
        test_fail_at(__FILE__, __LINE__, "out of memory");
        goto out;
    }
    if (bf16) { /* bf16-exact operands: the product is then checked to fp32 accuracy */
        kc_round_bf16(X, XN);
        kc_round_bf16(W, WN);
    }
    cpu_gemm(sp->M, sp->N, sp->K, X, sp->ldx, sp->xoff, W, yc, sp->ldy, sp->yoff, sp->acc);
    double ms[1] = {0};
#ifndef RWKV_NO_CUDA
    rwkv_error err;
    rwkv_error_clear(&err);
    if (gpu_real()) {
        if (rwkv_cuda_k_gemm(0, bf16, sp->M, sp->N, sp->K, X, sp->ldx, sp->xoff, W, yg, sp->ldy,
                             sp->yoff, sp->acc, ms, &err) != 0) {
            kc_harness_failed("gemm", shape, &err);
            goto out;
        }
    } else
#endif
        cpu_gemm(sp->M, sp->N, sp->K, X, sp->ldx, sp->xoff, W, yg, sp->ldy, sp->yoff, sp->acc);
    /* the whole of Y: columns outside [yoff, yoff + N) must be untouched */
    rc = kc_result("gemm", bf16, shape, kc_nerr(yg, yc, YN),
                   bf16 ? TOL_GEMM_BF16 : TOL_GEMM_F32, ms[0]);
out:
    free(X);
    free(W);
    free(yc);
    free(yg);
    return rc;
}

/* The engine's product shapes at the 0.1B width: a decode row; the LoRA
 * down product into its slice of the side-by-side hidden buffer and the up
 * product out of one (strided, offset operands); the FFN value product
 * adding into the residual (accumulate); odd sizes. */
static void test_gemm(void)
{
    static const gemm_shape shapes[] = {
        {1, 768, 768, 768, 0, 768, 0, 0, "decode"},
        {17, 64, 768, 768, 0, 232, 72, 0, "lora-down"},
        {17, 768, 64, 232, 72, 768, 0, 0, "lora-up"},
        {5, 768, 3072, 3072, 0, 768, 0, 1, "ffn-value+="},
        {3, 33, 7, 7, 0, 33, 0, 1, "odd+="},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int bf16 = 0; bf16 < 2; bf16++)
            if (gemm_case(&shapes[i], bf16) != 0)
                return;
}

/* ---------------------------------------------------------------- colsum */

static void cpu_colsum(int C, const int *start, int n_sum, const int *sum_seg, const float *h,
                       double *out)
{
    for (int j = 0; j < n_sum; j++)
        for (int c = 0; c < C; c++) {
            double acc = 0;
            for (int m = start[sum_seg[j]]; m < start[sum_seg[j] + 1]; m++)
                acc += (double)h[(size_t)m * C + c];
            out[(size_t)j * C + c] = acc;
        }
}

typedef struct {
    int C;
    int len[KC_MAX_SEG];
    int n_sum, sum_seg[KC_MAX_SEG];
} colsum_shape;

static int colsum_case(const colsum_shape *sp)
{
    int start[KC_MAX_SEG + 1], C = sp->C;
    int n_seg = kc_segments(sp->len, start), M = start[n_seg];
    size_t SC = (size_t)sp->n_sum * C;
    float *h = kc_fill((size_t)M * C, -3, 3);
    double *oc = calloc(SC, sizeof(double)), *og = calloc(SC, sizeof(double));
    char shape[96], head[24];
    snprintf(head, sizeof head, "C=%d M=%d sums=%d", C, M, sp->n_sum);
    kc_seg_shape(shape, sizeof shape, head, sp->len);
    int rc = -1;
    if (!h || !oc || !og) {
        test_fail_at(__FILE__, __LINE__, "out of memory");
        goto out;
    }
    cpu_colsum(C, start, sp->n_sum, sp->sum_seg, h, oc);
    double ms[1] = {0};
#ifndef RWKV_NO_CUDA
    rwkv_error err;
    rwkv_error_clear(&err);
    if (gpu_real()) {
        if (rwkv_cuda_k_colsum(0, C, M, n_seg, start, sp->n_sum, sp->sum_seg, h, og, ms, &err) !=
            0) {
            kc_harness_failed("colsum", shape, &err);
            goto out;
        }
    } else
#endif
        cpu_colsum(C, start, sp->n_sum, sp->sum_seg, h, og);
    rc = kc_result("colsum", 0, shape, kc_nerr_f64(og, oc, SC), TOL_COLSUM, ms[0]);
out:
    free(h);
    free(oc);
    free(og);
    return rc;
}

/* Widths either side of the 128-column tiles; some segments not summed. */
static void test_colsum(void)
{
    static const colsum_shape shapes[] = {
        {768, {3, 1, 5}, 2, {0, 2}},
        {7, {1}, 1, {0}},
        {129, {40, 2}, 2, {1, 0}},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (colsum_case(&shapes[i]) != 0)
            return;
}

int main(int argc, char **argv)
{
    static const gpu_test tests[] = {
        {"test_head_and_surprisal_vocab", test_head_and_surprisal_vocab},
        {"test_head_and_surprisal_small", test_head_and_surprisal_small},
        {"test_gemm", test_gemm},
        {"test_colsum", test_colsum},
    };
    return kc_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
