/* test_gpu_kernels_rows.c — the row and elementwise CUDA kernels alone against the CPU
 * engine's own functions on the same inputs (llm.c dev/cuda style):
 *   ln_shift_mix (6 and 1 mixes), shift_save   rwkv_ln_shift (token_shift.c)
 *   lora_act                                   rwkv_tanh_inplace, rwkv_sigmoid_inplace
 *   relu_sq                                    rwkv_relu_sq_inplace
 *   embed (+ ln0), layernorm_rows (ln_out)     rwkv_layernorm, as cpu_forward.c uses it
 * at odd widths (1, 7, 257, 2049: under a warp, one past a 256-thread
 * block), one-row passes and one-token segments (decode), grid-stride
 * wrap; fp32 and bf16 outputs where the kernel writes a GEMM operand.
 *
 * Error measure, output lines, SKIP without a device, --probe and the CPU
 * stand-in (RWKVD_TEST_GPU_ON_CPU=1): tests/support/kernel_check.h.  Each
 * case prints '#' kernel, precision, shape, error, tolerance, device time;
 * tolerances are per kernel, below, with the reason. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine/engine_internal.h"
#include "core/engine/token_shift.h"
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

/* ---------------------------------------------------------------- tolerances
 * fp32 outputs (bf16 outputs: KC_TOL_BF16): */
/* LayerNorm rows (ln_shift_mix, embed, ln_out): float block statistics vs
 * the CPU's double ones, ~1e-6 relative on rows up to 4k wide. */
#define TOL_LN 2e-5
/* shift_save copies LN rows: the LN tolerance. */
#define TOL_SAVE TOL_LN
/* lora_act: CUDA tanhf/expf vs the CPU's polynomial exp, a few ulp. */
#define TOL_LORA 2e-6
/* relu_sq: one multiplication, the same in both: exact. */
#define TOL_RELU 0.0

/* ---------------------------------------------------------------- LN + shift */

typedef struct {
    int C;
    int len[KC_MAX_SEG];
} ln_shape;

static void cpu_ln_shift(int C, int M, int n_seg, const int *seq_start, const float *x_att,
                         const float *x_ffn, const float *const ln[4], const float *att_mix,
                         const float *ffn_mix, float *states, float *att_out, float *ffn_out)
{
    rwkv_cpu e;
    memset(&e, 0, sizeof e);
    e.n_threads = 1; /* rwkv_parallel_ranges runs inline: no pool needed */
    float *st[KC_MAX_SEG];
    for (int s = 0; s < n_seg; s++)
        st[s] = states + (size_t)s * 2 * C;
    rwkv_batch b = {.n_seqs = n_seg, .M = M, .start = seq_start, .state = st};
    size_t MC = (size_t)M * C;
    float *xx = malloc(MC * sizeof(float));
    if (!xx)
        return;
    rwkv_shift sh6 = {.form = RWKV_SHIFT_MAA, .n_out = 6};
    for (int j = 0; j < 6; j++) {
        sh6.mix[j] = att_mix + (size_t)j * C;
        sh6.out[j] = att_out + (size_t)j * MC;
    }
    rwkv_shift sh1 = {.form = RWKV_SHIFT_MAA, .n_out = 1, .mix = {ffn_mix}, .out = {ffn_out}};
    rwkv_ln_shift(&e, &b, C, x_att, ln[0], ln[1], 0, xx, &sh6);
    rwkv_ln_shift(&e, &b, C, x_ffn, ln[2], ln[3], (size_t)C, xx, &sh1);
    free(xx);
}

static int ln_shift_case(const ln_shape *sp, int bf16)
{
    int start[KC_MAX_SEG + 1], C = sp->C;
    int n_seg = kc_segments(sp->len, start), M = start[n_seg];
    size_t MC = (size_t)M * C, SC = (size_t)n_seg * 2 * C;
    float *x_att = kc_fill(MC, -2, 2), *x_ffn = kc_fill(MC, -3, 1), *ln[4];
    for (int i = 0; i < 4; i++)
        ln[i] = i % 2 ? kc_fill((size_t)C, -0.5f, 0.5f) : kc_fill((size_t)C, 0.5f, 1.5f);
    float *amix = kc_fill(6 * (size_t)C, 0, 1), *fmix = kc_fill((size_t)C, 0, 1);
    float *st_c = kc_fill(SC, -1, 1), *st_g = kc_dup(st_c, SC);
    float *ao_c = calloc(6 * MC, sizeof(float)), *ao_g = calloc(6 * MC, sizeof(float));
    float *fo_c = calloc(MC, sizeof(float)), *fo_g = calloc(MC, sizeof(float));
    char shape[96];
    char head[24];
    snprintf(head, sizeof head, "C=%d M=%d", C, M);
    kc_seg_shape(shape, sizeof shape, head, sp->len);
    int rc = -1;
    if (!x_att || !x_ffn || !ln[0] || !ln[1] || !ln[2] || !ln[3] || !amix || !fmix || !st_c ||
        !st_g || !ao_c || !ao_g || !fo_c || !fo_g) {
        test_fail_at(__FILE__, __LINE__, "out of memory");
        goto out;
    }
    const float *lnc[4] = {ln[0], ln[1], ln[2], ln[3]};
    cpu_ln_shift(C, M, n_seg, start, x_att, x_ffn, lnc, amix, fmix, st_c, ao_c, fo_c);
    double ms[3] = {0, 0, 0};
#ifndef RWKV_NO_CUDA
    rwkv_error err;
    rwkv_error_clear(&err);
    if (gpu_real()) {
        if (rwkv_cuda_k_ln_shift(0, bf16, C, M, n_seg, start, x_att, x_ffn, ln[0], ln[1], ln[2],
                                 ln[3], amix, fmix, st_g, ao_g, fo_g, ms, &err) != 0) {
            kc_harness_failed("ln_shift_mix", shape, &err);
            goto out;
        }
    } else
#endif
    {
        cpu_ln_shift(C, M, n_seg, start, x_att, x_ffn, lnc, amix, fmix, st_g, ao_g, fo_g);
        if (bf16) {
            kc_round_bf16(ao_g, 6 * MC);
            kc_round_bf16(fo_g, MC);
        }
    }
    double tol = bf16 ? KC_TOL_BF16 : TOL_LN;
    int bad = kc_result("ln_shift_mix(6)", bf16, shape, kc_nerr(ao_g, ao_c, 6 * MC), tol, ms[0]);
    bad |= kc_result("ln_shift_mix(1)", bf16, shape, kc_nerr(fo_g, fo_c, MC), tol, ms[1]);
    bad |= kc_result("shift_save", bf16, shape, kc_nerr(st_g, st_c, SC), TOL_SAVE, ms[2]);
    rc = bad ? -1 : 0;
out:
    free(x_att);
    free(x_ffn);
    for (int i = 0; i < 4; i++)
        free(ln[i]);
    free(amix);
    free(fmix);
    free(st_c);
    free(st_g);
    free(ao_c);
    free(ao_g);
    free(fo_c);
    free(fo_g);
    return rc;
}

/* 768: the 0.1B width; 1 and 7: narrower than a warp; 257: one past the
 * 256-thread block (a thread takes two columns); 2049: eight columns each.
 * Segments: one row (decode at B=1), many one-row documents (decode
 * batch), a long one with short ones (prefill next to decode). */
static void test_ln_shift_and_save(void)
{
    static const ln_shape shapes[] = {
        {768, {1}},        {768, {1, 1, 1, 1, 1}}, {257, {3, 1, 17}}, {7, {5, 2}},
        {1, {2, 1}},       {2049, {33}},           {64, {1, 40, 1}},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int bf16 = 0; bf16 < 2; bf16++)
            if (ln_shift_case(&shapes[i], bf16) != 0)
                return;
}

/* ---------------------------------------------------------------- LoRA */

static void cpu_lora_act(int M, const int w[4], float *const h[4])
{
    rwkv_tanh_inplace(h[0], M * w[0]);    /* decay */
    rwkv_sigmoid_inplace(h[2], M * w[2]); /* gate */
}

static int lora_case(int M, const int w[4], int bf16)
{
    float *hc[4] = {NULL}, *hg[4] = {NULL};
    int rc = -1, ok = 1;
    for (int i = 0; i < 4; i++) {
        size_t n = (size_t)M * w[i];
        hc[i] = kc_fill(n, -4, 4);
        hg[i] = hc[i] ? kc_dup(hc[i], n) : NULL;
        ok = ok && hc[i] && hg[i];
    }
    char shape[96];
    snprintf(shape, sizeof shape, "M=%d w=%d a=%d g=%d v=%d", M, w[0], w[1], w[2], w[3]);
    if (!ok) {
        test_fail_at(__FILE__, __LINE__, "out of memory");
        goto out;
    }
    cpu_lora_act(M, w, hc);
    double ms[1] = {0};
#ifndef RWKV_NO_CUDA
    rwkv_error err;
    rwkv_error_clear(&err);
    if (gpu_real()) {
        if (rwkv_cuda_k_lora_act(0, bf16, M, w, hg, ms, &err) != 0) {
            kc_harness_failed("lora_act", shape, &err);
            goto out;
        }
    } else
#endif
    {
        cpu_lora_act(M, w, hg);
        for (int i = 0; bf16 && i < 4; i++)
            kc_round_bf16(hg[i], (size_t)M * w[i]);
    }
    double e = 0;
    for (int i = 0; i < 4; i++)
        e = fmax(e, kc_nerr(hg[i], hc[i], (size_t)M * w[i]));
    rc = kc_result("lora_act", bf16, shape, e, bf16 ? KC_TOL_BF16 : TOL_LORA, ms[0]);
out:
    for (int i = 0; i < 4; i++) {
        free(hc[i]);
        free(hg[i]);
    }
    return rc;
}

/* Widths of 0.1B (64 64 128 32), of 1.5B (96 96 256 64), and odd ones whose
 * slices sit at padded offsets with padding columns between them. */
static void test_lora_act(void)
{
    static const int widths[][4] = {{64, 64, 128, 32}, {96, 96, 256, 64}, {7, 1, 9, 13}};
    static const int Ms[] = {1, 5, 300};
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 3; j++)
            for (int bf16 = 0; bf16 < 2; bf16++)
                if (lora_case(Ms[j], widths[i], bf16) != 0)
                    return;
}

/* ---------------------------------------------------------------- relu² */

static int relu_case(size_t n, int bf16)
{
    float *h = kc_fill(n, -3, 3), *c = h ? kc_dup(h, n) : NULL, *g = calloc(n, sizeof(float));
    char shape[64];
    snprintf(shape, sizeof shape, "n=%zu", n);
    int rc = -1;
    if (!h || !c || !g) {
        test_fail_at(__FILE__, __LINE__, "out of memory");
        goto out;
    }
    rwkv_relu_sq_inplace(c, (int)n);
    double ms[1] = {0};
#ifndef RWKV_NO_CUDA
    rwkv_error err;
    rwkv_error_clear(&err);
    if (gpu_real()) {
        if (rwkv_cuda_k_relu_sq(0, bf16, n, h, g, ms, &err) != 0) {
            kc_harness_failed("relu_sq", shape, &err);
            goto out;
        }
    } else
#endif
    {
        memcpy(g, c, n * sizeof(float));
        if (bf16)
            kc_round_bf16(g, n);
    }
    rc = kc_result("relu_sq", bf16, shape, kc_nerr(g, c, n), bf16 ? KC_TOL_BF16 : TOL_RELU, ms[0]);
out:
    free(h);
    free(c);
    free(g);
    return rc;
}

/* One element, either side of a 256-thread block, a 1.5B FFN row (8960),
 * and past the launch's 16384-block grid (the grid-stride loop wraps). */
static void test_relu_sq(void)
{
    static const size_t ns[] = {1, 255, 257, 8960, (size_t)16384 * 256 + 5};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        for (int bf16 = 0; bf16 < 2; bf16++)
            if (relu_case(ns[i], bf16) != 0)
                return;
}

/* ---------------------------------------------------------------- rows */

/* cpu_forward.c's embed_rows for one row: the embedding row, then ln0. */
static void cpu_embed(int C, const float *emb, const float *w, const float *b, int M,
                      const uint32_t *tok, float *x)
{
    for (int m = 0; m < M; m++) {
        float *row = x + (size_t)m * C;
        memcpy(row, emb + (size_t)tok[m] * C, (size_t)C * sizeof(float));
        rwkv_layernorm(row, row, C, w, b, 1e-5f);
    }
}

static int embed_case(int C, int V, int M, int bf16)
{
    size_t VC = (size_t)V * C, MC = (size_t)M * C;
    float *emb = kc_fill(VC, -1, 1), *w = kc_fill((size_t)C, 0.5f, 1.5f);
    float *b = kc_fill((size_t)C, -0.5f, 0.5f);
    float *xc = calloc(MC, sizeof(float)), *xg = calloc(MC, sizeof(float));
    uint32_t *tok = malloc((size_t)M * sizeof(uint32_t));
    char shape[64];
    snprintf(shape, sizeof shape, "C=%d V=%d M=%d", C, V, M);
    int rc = -1;
    if (!emb || !w || !b || !xc || !xg || !tok) {
        test_fail_at(__FILE__, __LINE__, "out of memory");
        goto out;
    }
    /* bf16 mode stores the table in bf16: give both sides the same values */
    if (bf16)
        kc_round_bf16(emb, VC);
    for (int m = 0; m < M; m++) /* the first and the last token, then any */
        tok[m] = m == 0 ? 0 : m == 1 ? (uint32_t)V - 1 : (uint32_t)(kc_rand() % (uint64_t)V);
    cpu_embed(C, emb, w, b, M, tok, xc);
    double ms[1] = {0};
#ifndef RWKV_NO_CUDA
    rwkv_error err;
    rwkv_error_clear(&err);
    if (gpu_real()) {
        if (rwkv_cuda_k_embed(0, bf16, C, V, emb, w, b, M, tok, xg, ms, &err) != 0) {
            kc_harness_failed("embed", shape, &err);
            goto out;
        }
    } else
#endif
        cpu_embed(C, emb, w, b, M, tok, xg);
    rc = kc_result("embed", bf16, shape, kc_nerr(xg, xc, MC), TOL_LN, ms[0]);
out:
    free(emb);
    free(w);
    free(b);
    free(xc);
    free(xg);
    free(tok);
    return rc;
}

static void test_embed(void)
{
    static const int shapes[][3] = {{768, 65536, 5}, {7, 3, 4}, {257, 1000, 2}, {2048, 50, 9}};
    for (size_t i = 0; i < 4; i++)
        for (int bf16 = 0; bf16 < 2; bf16++)
            if (embed_case(shapes[i][0], shapes[i][1], shapes[i][2], bf16) != 0)
                return;
}

static int layernorm_case(int C, int M)
{
    size_t MC = (size_t)M * C;
    float *x = kc_fill(MC, -4, 2), *w = kc_fill((size_t)C, 0.5f, 1.5f);
    float *b = kc_fill((size_t)C, -0.5f, 0.5f);
    float *yc = calloc(MC, sizeof(float)), *yg = calloc(MC, sizeof(float));
    char shape[64];
    snprintf(shape, sizeof shape, "C=%d M=%d", C, M);
    int rc = -1;
    if (!x || !w || !b || !yc || !yg) {
        test_fail_at(__FILE__, __LINE__, "out of memory");
        goto out;
    }
    for (int m = 0; m < M; m++)
        rwkv_layernorm(x + (size_t)m * C, yc + (size_t)m * C, C, w, b, 1e-5f);
    double ms[1] = {0};
#ifndef RWKV_NO_CUDA
    rwkv_error err;
    rwkv_error_clear(&err);
    if (gpu_real()) {
        if (rwkv_cuda_k_layernorm(0, C, M, x, w, b, yg, ms, &err) != 0) {
            kc_harness_failed("layernorm_rows", shape, &err);
            goto out;
        }
    } else
#endif
        memcpy(yg, yc, MC * sizeof(float));
    rc = kc_result("layernorm_rows", 0, shape, kc_nerr(yg, yc, MC), TOL_LN, ms[0]);
out:
    free(x);
    free(w);
    free(b);
    free(yc);
    free(yg);
    return rc;
}

static void test_layernorm_rows(void)
{
    static const int shapes[][2] = {{768, 1}, {1, 3}, {4099, 5}, {255, 64}};
    for (size_t i = 0; i < 4; i++)
        if (layernorm_case(shapes[i][0], shapes[i][1]) != 0)
            return;
}

int main(int argc, char **argv)
{
    static const gpu_test tests[] = {
        {"test_ln_shift_and_save", test_ln_shift_and_save},
        {"test_lora_act", test_lora_act},
        {"test_relu_sq", test_relu_sq},
        {"test_embed", test_embed},
        {"test_layernorm_rows", test_layernorm_rows},
    };
    return kc_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
