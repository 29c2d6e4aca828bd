/* matmul.c — see matmul.h for the two paths and why. */
#include "core/matmul.h"

#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/simd.h"

/* Most rows of W per sgemm task.  Large slices matter: every sgemm call
 * packs the whole activation block again, so 64-row slices spent ~5% of
 * prefill re-packing; 512 (measured against 64/128/256 on the 0.1B shape)
 * keeps that small while still giving each thread several tasks. */
#define SLICE_ROWS 512
/* Rows of W per GEMV task: enough work to amortise the task hand-out. */
#define GEMV_TASK_ROWS 32

struct rwkv_matmul_scratch {
    int n;
    float **buf; /* per thread: SLICE_ROWS * RWKV_MATMUL_MAX_COLS floats of address
                    space; only the pages a slice touches become resident */
};

rwkv_matmul_scratch *rwkv_matmul_scratch_new(int n_threads)
{
    rwkv_matmul_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->n = n_threads;
    s->buf = calloc((size_t)n_threads, sizeof *s->buf);
    if (!s->buf) {
        free(s);
        return NULL;
    }
    for (int i = 0; i < n_threads; i++) {
        /* only touched pages become resident, so the worst-case size is cheap */
        s->buf[i] = aligned_alloc(64, (size_t)SLICE_ROWS * RWKV_MATMUL_MAX_COLS * sizeof(float));
        if (!s->buf[i]) {
            rwkv_matmul_scratch_free(s);
            return NULL;
        }
    }
    return s;
}

void rwkv_matmul_scratch_free(rwkv_matmul_scratch *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        free(s->buf[i]);
    free(s->buf);
    free(s);
}

RWKV_CLONES
static void widen_bf16(const uint16_t *src, float *dst, size_t n)
{
    RWKV_SIMD
    for (size_t i = 0; i < n; i++)
        dst[i] = rwkv_bf16_to_f32(src[i]);
}

RWKV_CLONES
static void widen_f16(const uint16_t *src, float *dst, size_t n)
{
    RWKV_SIMD
    for (size_t i = 0; i < n; i++)
        dst[i] = rwkv_f16_to_f32(src[i]);
}

void rwkv_widen(rwkv_dtype t, const void *src, float *dst, size_t n)
{
    switch (t) {
    case RWKV_F32:
        memcpy(dst, src, n * sizeof(float));
        break;
    case RWKV_BF16:
        widen_bf16(src, dst, n);
        break;
    case RWKV_F16:
        widen_f16(src, dst, n);
        break;
    }
}

/* ---- GEMV path: y[r][j] for m <= 4 rows of x, one weight row at a time ---- */

RWKV_CLONES
static void gemv_f32(const float *w, int rows, int cols, const float *x, int ldx, int m,
                     float *y, int ldy, int acc)
{
    for (int j = 0; j < rows; j++) {
        const float *wr = w + (size_t)j * cols;
        for (int i = 0; i < m; i++) {
            const float *xi = x + (size_t)i * ldx;
            float s = 0;
            RWKV_SIMD_SUM(s)
            for (int c = 0; c < cols; c++)
                s += wr[c] * xi[c];
            y[(size_t)i * ldy + j] = acc ? y[(size_t)i * ldy + j] + s : s;
        }
    }
}

RWKV_CLONES
static void gemv_bf16(const uint16_t *w, int rows, int cols, const float *x, int ldx, int m,
                      float *y, int ldy, int acc)
{
    for (int j = 0; j < rows; j++) {
        const uint16_t *wr = w + (size_t)j * cols;
        for (int i = 0; i < m; i++) {
            const float *xi = x + (size_t)i * ldx;
            float s = 0;
            RWKV_SIMD_SUM(s)
            for (int c = 0; c < cols; c++)
                s += rwkv_bf16_to_f32(wr[c]) * xi[c];
            y[(size_t)i * ldy + j] = acc ? y[(size_t)i * ldy + j] + s : s;
        }
    }
}

RWKV_CLONES
static void gemv_f16(const uint16_t *w, int rows, int cols, const float *x, int ldx, int m,
                     float *y, int ldy, int acc)
{
    for (int j = 0; j < rows; j++) {
        const uint16_t *wr = w + (size_t)j * cols;
        for (int i = 0; i < m; i++) {
            const float *xi = x + (size_t)i * ldx;
            float s = 0;
            RWKV_SIMD_SUM(s)
            for (int c = 0; c < cols; c++)
                s += rwkv_f16_to_f32(wr[c]) * xi[c];
            y[(size_t)i * ldy + j] = acc ? y[(size_t)i * ldy + j] + s : s;
        }
    }
}

/* ---- task bookkeeping for rwkv_matmul_many ---- */

typedef struct {
    int m;
    const rwkv_matmul_op *ops;
    int n_ops;
    int task_rows;   /* weight rows per task */
    int first[17];   /* first task index of each op; first[n_ops] = total */
    rwkv_matmul_scratch *scratch;
} many_ctx;

static void run_slice(const many_ctx *c, const rwkv_matmul_op *op, int r0, int nr, int thread)
{
    const rwkv_matrix *w = op->w;
    size_t esz = rwkv_dtype_size(w->dtype);
    const char *wrows = (const char *)w->data + (size_t)r0 * w->cols * esz;
    float *y = op->y + r0;
    if (c->m <= RWKV_GEMV_MAX_ROWS) {
        switch (w->dtype) {
        case RWKV_F32:
            gemv_f32((const float *)wrows, nr, w->cols, op->x, op->ldx, c->m, y, op->ldy,
                     op->accumulate);
            break;
        case RWKV_BF16:
            gemv_bf16((const uint16_t *)wrows, nr, w->cols, op->x, op->ldx, c->m, y, op->ldy,
                      op->accumulate);
            break;
        case RWKV_F16:
            gemv_f16((const uint16_t *)wrows, nr, w->cols, op->x, op->ldx, c->m, y, op->ldy,
                     op->accumulate);
            break;
        }
        return;
    }
    const float *wf;
    if (w->dtype == RWKV_F32) {
        wf = (const float *)wrows;
    } else {
        float *buf = c->scratch->buf[thread];
        rwkv_widen(w->dtype, wrows, buf, (size_t)nr * w->cols);
        wf = buf;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->m, nr, w->cols, 1.0f, op->x, op->ldx,
                wf, w->cols, op->accumulate ? 1.0f : 0.0f, y, op->ldy);
}

static void many_task(void *arg, int task, int thread)
{
    const many_ctx *c = arg;
    int k = 0;
    while (task >= c->first[k + 1])
        k++;
    const rwkv_matmul_op *op = &c->ops[k];
    int r0 = (task - c->first[k]) * c->task_rows;
    int nr = op->w->rows - r0 < c->task_rows ? op->w->rows - r0 : c->task_rows;
    run_slice(c, op, r0, nr, thread);
}

void rwkv_matmul_many(rwkv_pool *pool, rwkv_matmul_scratch *s, int m, const rwkv_matmul_op *ops,
                      int n_ops)
{
    if (m <= 0 || n_ops <= 0)
        return;
    /* callers pass at most a handful of ops; larger lists go in batches */
    while (n_ops > 16) {
        rwkv_matmul_many(pool, s, m, ops, 16);
        ops += 16;
        n_ops -= 16;
    }
    many_ctx c = {.m = m, .ops = ops, .n_ops = n_ops, .scratch = s};
    c.task_rows = m <= RWKV_GEMV_MAX_ROWS ? GEMV_TASK_ROWS : SLICE_ROWS;
    /* small problems: fewer, larger tasks so every thread still gets one */
    int total_rows = 0;
    for (int k = 0; k < n_ops; k++)
        total_rows += ops[k].w->rows;
    int n_threads = rwkv_pool_size(pool);
    while (c.task_rows > 8 && total_rows / c.task_rows < 2 * n_threads)
        c.task_rows /= 2;
    c.first[0] = 0;
    for (int k = 0; k < n_ops; k++)
        c.first[k + 1] = c.first[k] + (ops[k].w->rows + c.task_rows - 1) / c.task_rows;
    rwkv_pool_run(pool, c.first[n_ops], many_task, &c);
}

void rwkv_matmul(rwkv_pool *pool, rwkv_matmul_scratch *s, int m, const rwkv_matrix *w,
                 const float *x, int ldx, float *y, int ldy, int accumulate)
{
    rwkv_matmul_op op = {w, x, ldx, y, ldy, accumulate};
    rwkv_matmul_many(pool, s, m, &op, 1);
}
