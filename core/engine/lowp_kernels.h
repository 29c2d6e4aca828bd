/* lowp_kernels.h — hand-written GEMV kernels for the low precisions, for
 * the 1..4-row products of decode, where a library GEMM's set-up costs
 * more than the product (measured: docs/precision.md).  Each output is one
 * weight row against one activation row, summed in a fixed order that does
 * not depend on the other rows.  Callers check the CPU features first
 * (core/precision.h): these use AVX512-BF16 / AVX512-VNNI unconditionally. */
#ifndef RWKV_LOWP_KERNELS_H
#define RWKV_LOWP_KERNELS_H

#include <stdint.h>

/* y[i][j] (=|+=) Σ_k x[i][k] w[j][k], bf16 operands, fp32 sums; i < m,
 * j < nr; x rows are k wide (contiguous), w rows k wide. */
void rwkv_gemv_bf16(const uint16_t *w, int nr, int k, const uint16_t *x, int m, float *y,
                    int ldy, int acc);

/* int8 weights (one scale per row, lowp_weights.h) against int16
 * activations (one scale per row): y[i][j] (=|+=) (Σ_k x[i][k] w[j][k]) ·
 * ws[j] · xs[i], the sum exact in int32 (vpdpwssd) within every 4096
 * inputs, then in float.  Rows are kp wide (a multiple of 32). */
void rwkv_gemv_w8a16(const int8_t *w, const float *ws, int nr, int kp, const int16_t *x,
                     const float *xs, int m, float *y, int ldy, int acc);

/* The same on AVX2 + AVX-VNNI (CPUs without AVX-512): the same bits as
 * rwkv_gemv_w8a16 (its lanes as two 256-bit halves, the same fold). */
void rwkv_gemv_w8a16_avx2(const int8_t *w, const float *ws, int nr, int kp, const int16_t *x,
                          const float *xs, int m, float *y, int ldy, int acc);

#endif
