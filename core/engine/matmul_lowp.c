/* matmul_lowp.c — see matmul_lowp.h. */
#include "core/engine/matmul_lowp.h"

#include <math.h>
#include <stdlib.h>

#include "core/cpu_features.h"
#include "core/engine/dnnl_gemm.h"
#include "core/engine/lowp_kernels.h"
#include "core/engine/simd.h"
#include "core/precision.h"

#define MAX_OPS 16
/* rows converted per task in rwkv_lowp_begin */
#define CONVERT_ROWS 16

struct rwkv_lowp_ctx {
    rwkv_lowp_weights *w;
    rwkv_precision p;
    int n_threads;
    rwkv_dnnl_thread **dnnl; /* per pool thread */
    /* the last begin */
    const rwkv_matmul_op *ops;
    int M, n_ops;
    const rwkv_lowp_matrix *lm[MAX_OPS];
    void *act[MAX_OPS];  /* [M][cols] bf16, or [M][kp] int16 */
    size_t act_cap[MAX_OPS];
    float *xs[MAX_OPS];  /* int8: [M] row scales */
    size_t xs_cap[MAX_OPS];
};

rwkv_lowp_ctx *rwkv_lowp_ctx_new(rwkv_lowp_weights *w, int n_threads)
{
    rwkv_lowp_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        rwkv_lowp_weights_release(w);
        return NULL;
    }
    c->w = w;
    c->p = rwkv_lowp_weights_precision(w);
    c->n_threads = n_threads;
    c->dnnl = calloc((size_t)n_threads, sizeof *c->dnnl);
    if (!c->dnnl)
        goto fail;
    for (int t = 0; t < n_threads; t++)
        if (!(c->dnnl[t] = rwkv_dnnl_thread_new()))
            goto fail;
    return c;
fail:
    rwkv_lowp_ctx_free(c);
    return NULL;
}

void rwkv_lowp_ctx_free(rwkv_lowp_ctx *c)
{
    if (!c)
        return;
    for (int t = 0; c->dnnl && t < c->n_threads; t++)
        rwkv_dnnl_thread_free(c->dnnl[t]);
    free(c->dnnl);
    for (int k = 0; k < MAX_OPS; k++) {
        free(c->act[k]);
        free(c->xs[k]);
    }
    rwkv_lowp_weights_release(c->w);
    free(c);
}

rwkv_lowp_weights *rwkv_lowp_ctx_weights(rwkv_lowp_ctx *c)
{
    return c->w;
}

/* One row to int16, scale max|x|/32767; inputs n..kp-1 are 0.  A row with
 * a NaN or infinity (a model with such weights) has no int16 form: it gets
 * zeros and a NaN scale, so its products are NaN as in fp32 (and no float
 * outside int range is ever converted). */
RWKV_CLONES
static void quantize_act(const float *x, int n, int kp, int16_t *q, float *scale)
{
    float amax = 0.0f, nonfinite = 0.0f; /* x * 0 is NaN exactly for NaN and inf */
    for (int i = 0; i < n; i++) {
        amax = fmaxf(amax, fabsf(x[i]));
        nonfinite += x[i] * 0.0f;
    }
    if (nonfinite != 0.0f) {
        for (int i = 0; i < kp; i++)
            q[i] = 0;
        *scale = NAN;
        return;
    }
    float inv = amax > 0.0f ? 32767.0f / amax : 0.0f;
    for (int i = 0; i < kp; i++) {
        float v = i < n ? nearbyintf(x[i] * inv) : 0.0f;
        q[i] = (int16_t)(v > 32767.0f ? 32767 : v < -32767.0f ? -32767 : (int)v);
    }
    *scale = amax / 32767.0f;
}

typedef struct {
    rwkv_lowp_ctx *c;
    int on[MAX_OPS]; /* the ops to convert */
    int n_on, chunks; /* chunks of CONVERT_ROWS rows per op */
} convert_ctx;

static void convert_task(void *arg, int task, int thread)
{
    (void)thread;
    convert_ctx *v = arg;
    rwkv_lowp_ctx *c = v->c;
    int k = v->on[task / v->chunks];
    int r0 = task % v->chunks * CONVERT_ROWS;
    int r1 = r0 + CONVERT_ROWS < c->M ? r0 + CONVERT_ROWS : c->M;
    const rwkv_matmul_op *op = &c->ops[k];
    size_t K = (size_t)c->lm[k]->cols, kp = (size_t)c->lm[k]->kp;
    for (int r = r0; r < r1; r++) {
        const float *x = op->x + (size_t)r * op->ldx;
        if (c->lm[k]->precision == RWKV_PRECISION_BF16)
            rwkv_round_bf16(x, (uint16_t *)c->act[k] + r * K, K);
        else
            quantize_act(x, (int)K, (int)kp, (int16_t *)c->act[k] + r * kp, c->xs[k] + r);
    }
}

static int reserve(void **buf, size_t *cap, size_t bytes)
{
    if (bytes <= *cap)
        return 0;
    free(*buf);
    *buf = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    *cap = *buf ? bytes : 0;
    return *buf ? 0 : -1;
}

int rwkv_lowp_begin(rwkv_lowp_ctx *c, rwkv_pool *pool, int M, const rwkv_matmul_op *ops,
                    int n_ops)
{
    convert_ctx v = {.c = c};
    c->ops = ops;
    c->M = M;
    c->n_ops = n_ops > MAX_OPS ? MAX_OPS : n_ops;
    for (int k = 0; k < c->n_ops; k++) {
        c->lm[k] = rwkv_lowp_weights_get(c->w, ops[k].w);
        if (!c->lm[k])
            continue;
        int bf = c->lm[k]->precision == RWKV_PRECISION_BF16;
        size_t K = (size_t)(bf ? c->lm[k]->cols : c->lm[k]->kp), esz = 2;
        if (reserve(&c->act[k], &c->act_cap[k], (size_t)M * K * esz) ||
            (!bf && reserve((void **)&c->xs[k], &c->xs_cap[k], (size_t)M * sizeof(float)))) {
            c->lm[k] = NULL; /* no memory for the activations: fp32 path */
            continue;
        }
        v.on[v.n_on++] = k;
    }
    if (v.n_on) {
        v.chunks = (M + CONVERT_ROWS - 1) / CONVERT_ROWS;
        /* decode's few rows convert in less time than a parallel region
         * costs to start and join: on the calling thread */
        if (M <= RWKV_GEMV_MAX_ROWS)
            for (int t = 0; t < v.n_on * v.chunks; t++)
                convert_task(&v, t, 0);
        else
            rwkv_pool_run(pool, v.n_on * v.chunks, convert_task, &v);
    }
    return v.n_on;
}

int rwkv_lowp_on(const rwkv_lowp_ctx *c, int k)
{
    return k < c->n_ops && c->lm[k] != NULL;
}

size_t rwkv_lowp_row_bytes(const rwkv_lowp_ctx *c, int k)
{
    const rwkv_lowp_matrix *lm = c->lm[k];
    return lm->precision == RWKV_PRECISION_BF16 ? (size_t)lm->cols * sizeof *lm->bf16
                                                : (size_t)lm->kp;
}

static void run_bf16(rwkv_lowp_ctx *c, int k, const rwkv_matmul_op *op, int i0, int m, int r0,
                     int nr, int thread)
{
    const rwkv_lowp_matrix *lm = c->lm[k];
    int K = lm->cols;
    const uint16_t *x = (const uint16_t *)c->act[k] + (size_t)i0 * K;
    const uint16_t *w = lm->bf16 + (size_t)r0 * K;
    float *y = op->y + (size_t)i0 * op->ldy + r0;
    if (m > RWKV_GEMV_MAX_ROWS &&
        rwkv_dnnl_gemm(c->dnnl[thread], RWKV_GEMM_BF16, m, nr, K, x, w, y, op->ldy,
                       op->accumulate) == 0)
        return;
    for (int i = 0; i < m; i += 4)
        rwkv_gemv_bf16(w, nr, K, x + (size_t)i * K, m - i < 4 ? m - i : 4,
                       y + (size_t)i * op->ldy, op->ldy, op->accumulate);
}

/* int8: every row count takes our kernel, four activation rows per pass
 * over the slice's weights (oneDNN 2.6 has no int8 x int16 matmul, and its
 * u8 x s8 one needs int8 activations, which break the quality bounds;
 * docs/precision.md). */
static void run_int8(rwkv_lowp_ctx *c, int k, const rwkv_matmul_op *op, int i0, int m, int r0,
                     int nr)
{
    const rwkv_lowp_matrix *lm = c->lm[k];
    int kp = lm->kp;
    const int8_t *w = lm->q + (size_t)r0 * kp;
    const float *ws = lm->scale + r0;
    /* the same bits either way (lowp_kernels.h) */
    void (*gemv)(const int8_t *, const float *, int, int, const int16_t *, const float *, int,
                 float *, int, int) =
        rwkv_precision_int8_avx512(rwkv_cpu_features_get()) ? rwkv_gemv_w8a16
                                                            : rwkv_gemv_w8a16_avx2;
    for (int i = 0; i < m; i += 4)
        gemv(w, ws, nr, kp, (const int16_t *)c->act[k] + (size_t)(i0 + i) * kp, c->xs[k] + i0 + i,
             m - i < 4 ? m - i : 4, op->y + (size_t)(i0 + i) * op->ldy + r0, op->ldy,
             op->accumulate);
}

void rwkv_lowp_run(rwkv_lowp_ctx *c, int k, const rwkv_matmul_op *op, int i0, int m, int r0,
                   int nr, int thread)
{
    if (c->lm[k]->precision == RWKV_PRECISION_BF16)
        run_bf16(c, k, op, i0, m, r0, nr, thread);
    else
        run_int8(c, k, op, i0, m, r0, nr);
}
