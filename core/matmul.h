/* matmul.h — Y = X · Wᵀ for the engine's projections, any weight dtype.
 *
 * W is a PyTorch Linear weight, row-major [rows = out features][cols = in
 * features], stored as f32, f16 or bf16 (used in place, e.g. from the mmap).
 * X is [m][cols] float32, Y is [m][rows] float32.
 *
 * Two paths, chosen by m:
 *  - m <= RWKV_GEMV_MAX_ROWS (decode and tiny batches): our own kernel reads
 *    each weight row once in its stored dtype and widens it in registers, so
 *    decode is bound by the bytes of the weights actually stored (2 per bf16
 *    parameter), not by a 4-byte copy.
 *  - larger m (prefill): OpenBLAS sgemm.  Non-f32 weights are widened in
 *    slices of a few dozen rows into a per-thread buffer that stays in L2,
 *    just before the sgemm that consumes them; no fp32 copy of the model is
 *    ever kept.
 * Work is split over weight rows (output columns) across the thread pool;
 * each task calls the serial sgemm.  Several independent products can be
 * issued as one parallel region (rwkv_matmul_many) to save wake-ups.
 */
#ifndef RWKV_MATMUL_H
#define RWKV_MATMUL_H

#include <stddef.h>

#include "core/tensor_file.h"
#include "core/threadpool.h"

#define RWKV_GEMV_MAX_ROWS 4

typedef struct rwkv_matrix {
    rwkv_dtype dtype;
    int rows, cols;
    const void *data; /* rows*cols elements, row-major */
} rwkv_matrix;

/* One product Y[m][ldy] (=|+=) X[m][ldx] · Wᵀ. */
typedef struct rwkv_matmul_op {
    const rwkv_matrix *w;
    const float *x;
    int ldx;
    float *y;
    int ldy;
    int accumulate; /* 1: Y += X·Wᵀ, 0: Y = X·Wᵀ */
} rwkv_matmul_op;

/* Per-thread scratch for widening weight slices; one per pool. */
typedef struct rwkv_matmul_scratch rwkv_matmul_scratch;
rwkv_matmul_scratch *rwkv_matmul_scratch_new(int n_threads);
void rwkv_matmul_scratch_free(rwkv_matmul_scratch *s); /* accepts NULL */

/* Runs n_ops products over the same m rows, in one parallel region.  Never
 * fails (memory for scratch is allocated at creation, sized for any cols up
 * to RWKV_MATMUL_MAX_COLS). */
#define RWKV_MATMUL_MAX_COLS 65536
void rwkv_matmul_many(rwkv_pool *pool, rwkv_matmul_scratch *s, int m,
                      const rwkv_matmul_op *ops, int n_ops);

/* Convenience for one product. */
void rwkv_matmul(rwkv_pool *pool, rwkv_matmul_scratch *s, int m, const rwkv_matrix *w,
                 const float *x, int ldx, float *y, int ldy, int accumulate);

/* Widens n elements of any dtype to float32. */
void rwkv_widen(rwkv_dtype t, const void *src, float *dst, size_t n);

#endif
