/* matmul_lowp.c — see matmul_lowp.h. */
#include "core/engine/matmul_lowp.h"

#include <math.h>
#include <stdlib.h>

#include "core/engine/dnnl_gemm.h"
#include "core/engine/lowp_kernels.h"
#include "core/engine/simd.h"

#define MAX_OPS 16
/* int8 products go through an int32 tile per thread, TILE_ROWS x TILE_COLS,
 * scaled into Y afterwards (the int32 sums are exact, so the tiling never
 * changes a result). */
#define TILE_ROWS 256
#define TILE_COLS 512
/* rows converted per task in rwkv_lowp_begin */
#define CONVERT_ROWS 16

struct rwkv_lowp_ctx {
    rwkv_lowp_weights *w;
    rwkv_precision p;
    int n_threads;
    rwkv_dnnl_thread **dnnl; /* per pool thread */
    int32_t **tile;          /* per pool thread, int8 only */
    /* the last begin */
    const rwkv_matmul_op *ops;
    int M, n_ops;
    const rwkv_lowp_matrix *lm[MAX_OPS];
    void *act[MAX_OPS];  /* [M][cols] bf16 or u8 */
    size_t act_cap[MAX_OPS];
    float *xs[MAX_OPS];  /* int8: per-row activation scale */
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
    c->tile = calloc((size_t)n_threads, sizeof *c->tile);
    if (!c->dnnl || !c->tile)
        goto fail;
    for (int t = 0; t < n_threads; t++) {
        if (!(c->dnnl[t] = rwkv_dnnl_thread_new()))
            goto fail;
        if (c->p == RWKV_PRECISION_INT8 &&
            !(c->tile[t] = malloc((size_t)TILE_ROWS * TILE_COLS * sizeof(int32_t))))
            goto fail;
    }
    return c;
fail:
    rwkv_lowp_ctx_free(c);
    return NULL;
}

void rwkv_lowp_ctx_free(rwkv_lowp_ctx *c)
{
    if (!c)
        return;
    for (int t = 0; t < c->n_threads; t++) {
        if (c->dnnl)
            rwkv_dnnl_thread_free(c->dnnl[t]);
        if (c->tile)
            free(c->tile[t]);
    }
    free(c->dnnl);
    free(c->tile);
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

/* One row to int8 with scale max|x|/127, stored offset by 128 as u8. */
RWKV_CLONES
static void quantize_act(const float *x, int n, uint8_t *u, float *scale)
{
    float amax = 0.0f;
    for (int i = 0; i < n; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int i = 0; i < n; i++) {
        float v = nearbyintf(x[i] * inv);
        v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
        u[i] = (uint8_t)((int)v + 128);
    }
    *scale = amax / 127.0f;
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
    size_t K = (size_t)c->lm[k]->cols;
    for (int r = r0; r < r1; r++) {
        const float *x = op->x + (size_t)r * op->ldx;
        if (c->p == RWKV_PRECISION_BF16)
            rwkv_round_bf16(x, (uint16_t *)c->act[k] + r * K, K);
        else
            quantize_act(x, (int)K, (uint8_t *)c->act[k] + r * K, &c->xs[k][r]);
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
        size_t K = (size_t)c->lm[k]->cols, esz = c->p == RWKV_PRECISION_BF16 ? 2 : 1;
        if (reserve(&c->act[k], &c->act_cap[k], (size_t)M * K * esz) ||
            (c->p == RWKV_PRECISION_INT8 &&
             reserve((void **)&c->xs[k], &c->xs_cap[k], (size_t)M * sizeof(float)))) {
            c->lm[k] = NULL; /* no memory for the activations: fp32 path */
            continue;
        }
        v.on[v.n_on++] = k;
    }
    if (v.n_on) {
        v.chunks = (M + CONVERT_ROWS - 1) / CONVERT_ROWS;
        rwkv_pool_run(pool, v.n_on * v.chunks, convert_task, &v);
    }
    return v.n_on;
}

int rwkv_lowp_on(const rwkv_lowp_ctx *c, int k)
{
    return k < c->n_ops && c->lm[k] != NULL;
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

/* Y = (Σ u·q − 128·Σq) · w_scale · x_scale: the u8 offset removed exactly in
 * int32, then two float multiplies in a fixed order. */
static void run_int8(rwkv_lowp_ctx *c, int k, const rwkv_matmul_op *op, int i0, int m, int r0,
                     int nr, int thread)
{
    const rwkv_lowp_matrix *lm = c->lm[k];
    int K = lm->cols;
    int32_t *tile = c->tile[thread];
    for (int j0 = 0; j0 < nr; j0 += TILE_COLS) {
        int nc = nr - j0 < TILE_COLS ? nr - j0 : TILE_COLS;
        const int8_t *w = lm->q + (size_t)(r0 + j0) * K;
        const float *ws = lm->scale + r0 + j0;
        const int32_t *qs = lm->qsum + r0 + j0;
        for (int ic = 0; ic < m; ic += TILE_ROWS) {
            int mc = m - ic < TILE_ROWS ? m - ic : TILE_ROWS;
            const uint8_t *x = (const uint8_t *)c->act[k] + (size_t)(i0 + ic) * K;
            if (mc <= RWKV_GEMV_MAX_ROWS || rwkv_dnnl_gemm(c->dnnl[thread], RWKV_GEMM_U8S8, mc, nc,
                                                           K, x, w, tile, nc, 0) != 0)
                for (int i = 0; i < mc; i += 4)
                    rwkv_gemv_u8s8(w, nc, K, x + (size_t)i * K, mc - i < 4 ? mc - i : 4,
                                   tile + (size_t)i * nc);
            for (int i = 0; i < mc; i++) {
                float xs = c->xs[k][i0 + ic + i];
                float *y = op->y + (size_t)(i0 + ic + i) * op->ldy + r0 + j0;
                const int32_t *t = tile + (size_t)i * nc;
                for (int j = 0; j < nc; j++) {
                    float v = (float)(t[j] - 128 * qs[j]) * ws[j] * xs;
                    y[j] = op->accumulate ? y[j] + v : v;
                }
            }
        }
    }
}

void rwkv_lowp_run(rwkv_lowp_ctx *c, int k, const rwkv_matmul_op *op, int i0, int m, int r0,
                   int nr, int thread)
{
    if (c->p == RWKV_PRECISION_BF16)
        run_bf16(c, k, op, i0, m, r0, nr, thread);
    else
        run_int8(c, k, op, i0, m, r0, nr, thread);
}
