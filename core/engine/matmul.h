/* matmul.h — Y = X · Wᵀ for the engine's projections, any weight dtype.
 *
 * W is a PyTorch Linear weight, row-major [rows = out features][cols = in
 * features], stored as f32, f16 or bf16 (used in place, e.g. from the mmap).
 * X is [m][cols] float32, Y is [m][rows] float32.
 *
 * The m rows of X come in segments (one per document of a batch), and every
 * segment is multiplied as if it were alone: the same path, the same call
 * shape, the same summation order.  So a document's results never depend on
 * the other documents of its batch (forward.h, "batch invariance"); OpenBLAS
 * cannot promise that for one product over the whole batch (its small-matrix
 * kernels are chosen by the product's size and round differently).
 *
 * Two paths, chosen per segment by its row count:
 *  - <= RWKV_GEMV_MAX_ROWS rows (decode, tiny blocks): our own kernel reads
 *    each weight row once in its stored dtype and widens it in registers, so
 *    decode is bound by the bytes of the weights actually stored (2 per bf16
 *    parameter), not by a 4-byte copy.  Sums run in a fixed lane order.
 *  - more rows (prefill): OpenBLAS sgemm.  Non-f32 weights are widened slice
 *    by slice into a per-thread buffer just before the sgemm calls that
 *    consume them (one widening serves every segment); no fp32 copy of the
 *    model is ever kept.
 * Work is split over slices of weight rows whose width depends only on the
 * weight's shape (not on the batch or the thread count), spread over the
 * pool; several independent products can share one parallel region.
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
    /* RWKV_I8 only (a matrix of an `rwkv quantize` file): data is
     * [rows][kp] int8 with kp = cols rounded up to RWKV_Q8_PAD (zeros past
     * cols), w ≈ q * scale[row].  Only an int8 engine multiplies these
     * (through lowp_weights.h; engine_opts.c refuses the others). */
    const float *scale;
    /* An int8 engine keeps this matrix in bf16 (lowp_weights.h says which
     * and why); set by the loader from the tensor's role. */
    unsigned char keep_bf16;
} rwkv_matrix;

/* Row segments of X and Y: segment i is rows start[i] .. start[i+1]-1. */
typedef struct rwkv_segments {
    int n;
    const int *start; /* [n + 1], start[0] = 0, increasing */
} rwkv_segments;

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

/* A bf16/int8 engine's products (matmul_lowp.h): the scratch takes it over
 * (freed with the scratch or by the next call); ops whose weights have a
 * low-precision form then run through it, the rest stay fp32. */
struct rwkv_lowp_ctx;
void rwkv_matmul_scratch_set_lowp(rwkv_matmul_scratch *s, struct rwkv_lowp_ctx *lowp);
struct rwkv_lowp_ctx *rwkv_matmul_scratch_lowp(const rwkv_matmul_scratch *s);

/* Runs n_ops products over the same row segments in one parallel region.
 * Never fails (scratch is reserved at creation for any cols up to
 * RWKV_MATMUL_MAX_COLS; only touched pages become resident). */
#define RWKV_MATMUL_MAX_COLS 65536
void rwkv_matmul_many(rwkv_pool *pool, rwkv_matmul_scratch *s, const rwkv_segments *seg,
                      const rwkv_matmul_op *ops, int n_ops);

/* One product over one segment of m rows. */
void rwkv_matmul(rwkv_pool *pool, rwkv_matmul_scratch *s, int m, const rwkv_matrix *w,
                 const float *x, int ldx, float *y, int ldy, int accumulate);

/* Widens n elements of any dtype to float32. */
void rwkv_widen(rwkv_dtype t, const void *src, float *dst, size_t n);

#endif
