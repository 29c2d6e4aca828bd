/* dnnl_gemm.h — the low-precision GEMMs of the engine, through oneDNN's
 * matmul primitive (Debian libdnnl 2.6: JIT kernels for AVX512-BF16,
 * AVX512-VNNI and AMX, chosen by oneDNN at run time).
 *
 * Every call multiplies one row segment by one slice of weight rows, as the
 * fp32 path does with sgemm: C[m][n] = A[m][k] · Wᵀ where W is [n][k]
 * row-major.  oneDNN runs it on the calling thread (its OpenMP team is set
 * to one thread on every thread that calls here): rwkvd's own pool is the
 * parallelism, and the result of a row depends only on the shape of the
 * call, so batch invariance holds as on the fp32 path.
 */
#ifndef RWKV_DNNL_GEMM_H
#define RWKV_DNNL_GEMM_H

#include <stdint.h>

typedef enum rwkv_gemm_kind {
    RWKV_GEMM_BF16, /* A, W bf16; C float, C (=|+=) A·Wᵀ with fp32 accumulation */
    RWKV_GEMM_U8S8, /* A uint8, W int8; C int32 = A·Wᵀ exactly (acc must be 0) */
} rwkv_gemm_kind;

/* Per calling thread: a oneDNN stream and the primitives made so far (one
 * per call shape), so steady-state calls create nothing. */
typedef struct rwkv_dnnl_thread rwkv_dnnl_thread;
rwkv_dnnl_thread *rwkv_dnnl_thread_new(void); /* NULL when oneDNN cannot start */
void rwkv_dnnl_thread_free(rwkv_dnnl_thread *t); /* accepts NULL */

/* 0, or -1 when oneDNN refused (out of memory, no kernel): the caller then
 * computes the product another way. */
int rwkv_dnnl_gemm(rwkv_dnnl_thread *t, rwkv_gemm_kind kind, int m, int n, int k, const void *a,
                   const void *w, void *c, int ldc, int acc);

/* The implementation oneDNN picks for a shape ("brg:avx512_core_bf16", ...),
 * for benchmarks and notes; "" when none. */
const char *rwkv_dnnl_impl(rwkv_dnnl_thread *t, rwkv_gemm_kind kind, int m, int n, int k);

#endif
