/* matmul_lowp.h — the bf16 and int8 side of rwkv_matmul_many.
 *
 * An engine at a low precision owns one context.  For each call of
 * rwkv_matmul_many it (1) looks up the low-precision form of every op's
 * weights (lowp_weights.h; ops whose weights stay fp32 take the fp32 path)
 * and (2) converts the activations those ops read, every row, once, in
 * parallel: bf16 rounding, or, for int8 weights, int16 with one scale per
 * row (max|x|/32767).  Then each (segment, weight-row slice) task runs
 * either a hand-written GEMV (1..4 rows, and every int8 product) or a
 * oneDNN bf16 matmul (more rows).  Row results depend only on the row
 * and the segment's shape, never on the batch: batch invariance holds in
 * every precision.
 */
#ifndef RWKV_MATMUL_LOWP_H
#define RWKV_MATMUL_LOWP_H

#include "core/engine/lowp_weights.h"
#include "core/engine/matmul.h"

typedef struct rwkv_lowp_ctx rwkv_lowp_ctx;

/* Takes over the reference to w (released by rwkv_lowp_ctx_free).  NULL on
 * out of memory or when oneDNN cannot start. */
rwkv_lowp_ctx *rwkv_lowp_ctx_new(rwkv_lowp_weights *w, int n_threads);
void rwkv_lowp_ctx_free(rwkv_lowp_ctx *c); /* accepts NULL */
rwkv_lowp_weights *rwkv_lowp_ctx_weights(rwkv_lowp_ctx *c);

/* Step (1) and (2) for rows [0, M) of n_ops ops, on the calling thread with
 * the pool.  Returns how many ops run at low precision (0: all take the
 * fp32 path, e.g. LoRA products, or activation memory ran out). */
int rwkv_lowp_begin(rwkv_lowp_ctx *c, rwkv_pool *pool, int M, const rwkv_matmul_op *ops,
                    int n_ops);

/* Whether op k of the last begin runs at low precision. */
int rwkv_lowp_on(const rwkv_lowp_ctx *c, int k);

/* Bytes of one weight row of op k at its low precision (op k is on). */
size_t rwkv_lowp_row_bytes(const rwkv_lowp_ctx *c, int k);

/* Op k, rows [i0, i0+m) of one segment, weight rows [r0, r0+nr), on pool
 * thread `thread`. */
void rwkv_lowp_run(rwkv_lowp_ctx *c, int k, const rwkv_matmul_op *op, int i0, int m, int r0,
                   int nr, int thread);

#endif
