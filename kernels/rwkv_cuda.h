/* rwkv_cuda.h — the CUDA backend's host-side entry points (C linkage).
 *
 * The backend itself is reached through core: rwkv_engine_new_on(m,
 * "cuda[:N]", ...) calls rwkv_cuda_backend() (declared weak in
 * core/backend.h, defined in kernels/backend.cu) and from then on the engine
 * runs every forward pass on device N.  This header adds what tests and
 * benchmarks need beyond that table: whether a device exists, the pass
 * planner (pure host code, testable without a GPU), the machine's measured
 * peaks for the benchmark, and harnesses that run each kernel alone.
 *
 * Precision is chosen when the engine is created, by the environment
 * variable RWKV_CUDA_PRECISION:
 *   bf16 (default)  weights stored bf16 on the device, GEMM operands bf16,
 *                   fp32 accumulation, fp32 activations between kernels and
 *                   an fp32 recurrent state;
 *   fp32            everything fp32, cuBLAS in pedantic fp32 (no TF32):
 *                   the mode checked against the fp32 golden fixtures.
 * Any other value makes engine creation fail with a message saying so.
 * RWKV_CUDA_SYNC=1 synchronises after every kernel launch and reports the
 * kernel that failed (debugging; slow).
 *
 * Only RWKV-7 models with head size 32, 64 or 128 run on the GPU; other
 * generations and shapes are refused at creation with a clear message.
 *
 * Thread safety: an engine (and so its device context) is used by one
 * thread at a time, like a CPU engine; the functions below that take a
 * device index may be called from any thread.
 */
#ifndef RWKV_CUDA_H
#define RWKV_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "core/backend.h"
#include "core/error.h"
#include "core/forward.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Name of the environment variable that selects the precision. */
#define RWKV_CUDA_PRECISION_ENV "RWKV_CUDA_PRECISION"
/* Optional cap on the token rows of one pass (16..16384; default: what the
 * device memory left after the weights allows, at most 16384).  Smaller
 * passes use less working memory; tests use it to force multi-pass calls. */
#define RWKV_CUDA_PASS_ROWS_ENV "RWKV_CUDA_PASS_ROWS"

/* Number of usable CUDA devices (>= 1), or -1 with err saying why there is
 * none ("no CUDA device: <runtime's reason>"): no driver, no GPU, a driver
 * too old for this runtime. */
int rwkv_cuda_device_count(rwkv_error *err);

/* 0 when cuBLAS (the library this build was compiled against) can be loaded
 * and has every function the backend calls; -1 with err saying what is
 * missing.  Needs no device.  cuBLAS is loaded on first use, not linked:
 * see kernels/cublas_dl.cu. */
int rwkv_cuda_cublas_available(rwkv_error *err);

/* ---------------------------------------------------------------- peaks
 * For the benchmark: the device's own ceilings, measured now.  Each returns
 * 0, or -1 with err (no device, out of memory, a CUDA error). */

/* "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)" into buf. */
int rwkv_cuda_describe_device(int device, char *buf, size_t len, rwkv_error *err);

/* cuBLAS bf16 GEMM (fp32 accumulation) TFLOP/s, median of several runs of
 * an M×N×K product shaped like the engine's (Y = X·Wᵀ). */
int rwkv_cuda_gemm_tflops(int device, int M, int N, int K, double *tflops, rwkv_error *err);

/* Device memory bandwidth in GB/s (1e9 bytes/s): a copy kernel over a
 * buffer far larger than L2, counting bytes read plus bytes written. */
int rwkv_cuda_bandwidth_gbs(int device, double *gbs, rwkv_error *err);

/* ---------------------------------------------------------------- harness
 * Runs the WKV-7 scan kernel of head size N alone over T tokens of one head
 * on `device`, with exactly the arguments of the CPU reference
 * rwkv7_wkv_head (core/engine/rwkv7.h): rows of stride ld floats in r, w, k, v, kk,
 * a and y; S [N][N] (value, key) updated in place.  For tests that compare
 * the kernel with the CPU element by element.  -1 with err on a CUDA error
 * or an unsupported N. */
int rwkv_cuda_wkv7_run(int device, int N, int T, int ld, const float *r, const float *w,
                       const float *k, const float *v, const float *kk, const float *a,
                       float *S, float *y, rwkv_error *err);

/* ---------------------------------------------------------------- kernels
 * Every other kernel alone (kernels/harness_*.cu, kernel_harness.cu), for
 * tests/test_gpu_kernels_*.c, which compare each with the CPU engine's own
 * function on the same inputs.  Common rules:
 *  - host buffers in, host buffers out; the harness allocates, uploads,
 *    launches through the backend's own launcher and downloads;
 *  - bf16 != 0 runs the kernel as the engine's bf16 mode does: its GEMM
 *    operand ("act") outputs are bf16, read back widened to float; act
 *    inputs (embedding table, head weights) are rounded to bf16 on upload
 *    (pass values already representable in bf16 to compare exactly);
 *  - ms[i]: the device time of launch i of the sequence (cudaEvent), from the
 *    second of two identical runs so the first pays for module loading;
 *  - 0, or -1 with err: bad sizes (checked before any device call), no
 *    device ("no CUDA device: ..."), a CUDA error (naming the kernel). */

/* ln_shift_mix (6 time-mix outputs from x_att, then 1 channel-mix output
 * from x_ffn), then shift_save; rows in n_seg segments (seq_start[n_seg] =
 * M).  states: [n_seg][2*C], the att_x_prev row then the ffn_x_prev row:
 * the saved rows in, the rows after shift_save out.  att_out [6][M][C]
 * (r w k v a g), ffn_out [M][C].  ms[3]: the two mixes and the save. */
int rwkv_cuda_k_ln_shift(int device, int bf16, int C, int M, int n_seg, const int *seq_start,
                         const float *x_att, const float *x_ffn, const float *ln1_w,
                         const float *ln1_b, const float *ln2_w, const float *ln2_b,
                         const float *att_mix, const float *ffn_mix, float *states,
                         float *att_out, float *ffn_out, double ms[3], rwkv_error *err);

/* lora_act over M rows of the four LoRA hidden matrices h[i] [M][width[i]],
 * in place, i in the order w, a, g, v (tanh, identity, sigmoid, identity).
 * ms[1]. */
int rwkv_cuda_k_lora_act(int device, int bf16, int M, const int width[4], float *const h[4],
                         double ms[1], rwkv_error *err);

/* The time-mix arguments of the WKV-7 kernels: C = H*N channels, M rows;
 * vectors [C], matrices [M][C]. */
typedef struct rwkv_cuda_k7 {
    int C, N, M;
    const float *w0, *a0, *k_k, *k_a, *v0, *r_k, *lnx_w, *lnx_b;
    float *r, *w, *k, *v, *a, *g, *kk, *y, *vm, *vfirst;
    /* scan only: segments of rows and each one's layer state slice
     * [C + H*N*N] (att_x_prev, then att_kv), updated in place */
    int n_seg;
    const int *seq_start;
    float *const *states;
} rwkv_cuda_k7;

/* wkv7_prepare: w a k v kk (and vfirst when first_layer; vm read
 * otherwise) in place, as rwkv7_prepare_row per row.  ms[1]. */
int rwkv_cuda_k_wkv7_prepare(int device, int first_layer, const rwkv_cuda_k7 *a, double ms[1],
                             rwkv_error *err);
/* wkv7_scan over every (segment, head): reads r w k v kk a, writes y,
 * updates the states.  ms[1]. */
int rwkv_cuda_k_wkv7_scan(int device, const rwkv_cuda_k7 *a, double ms[1], rwkv_error *err);
/* wkv7_output: out [M][C] = (GroupNorm(y) + bonus) * g from y r k v g.
 * ms[1]. */
int rwkv_cuda_k_wkv7_output(int device, int bf16, const rwkv_cuda_k7 *a, float *out,
                            double ms[1], rwkv_error *err);

/* relu_sq: out[i] = max(h[i], 0)^2, i < n.  ms[1]. */
int rwkv_cuda_k_relu_sq(int device, int bf16, size_t n, const float *h, float *out,
                        double ms[1], rwkv_error *err);

/* embed: x[m] = LN(emb[tokens[m]]; ln0_w, ln0_b) for m < M; emb [V][C].
 * Tokens must be < V (checked).  ms[1]. */
int rwkv_cuda_k_embed(int device, int bf16, int C, int V, const float *emb, const float *ln0_w,
                      const float *ln0_b, int M, const uint32_t *tokens, float *x, double ms[1],
                      rwkv_error *err);

/* layernorm_rows (ln_out): y[m] = LN(x[m]; w, b), m < M.  ms[1]. */
int rwkv_cuda_k_layernorm(int device, int C, int M, const float *x, const float *w,
                          const float *b, float *y, double ms[1], rwkv_error *err);

/* The head: gather_rows of the n rows rows[i] of h [M][C], the head product
 * with head [V][C] into logits [n][V], surprisal [n] against target[i]
 * (-1: none, NaN out; otherwise < V, checked).  ms[3]: gather, product,
 * surprisal. */
int rwkv_cuda_k_head(int device, int bf16, int C, int V, const float *head, int M,
                     const float *h, int n, const int *rows, const int *target, float *logits,
                     float *surprisal, double ms[3], rwkv_error *err);

/* gemm (cu_gemm, every projection): Y[m][yoff + n] = (or += when
 * accumulate) sum_k X[m][xoff + k] * W[n][k] for m < M, n < N, k < K; X
 * [M][ldx] and W [N][K] in the act dtype (rounded to bf16 on upload in bf16
 * mode), Y [M][ldy] fp32, in place.  The offsets and strides are those of
 * the LoRA products into and out of the side-by-side hidden buffer; xoff
 * must be a multiple of 8 (16-byte aligned bf16 operands, as the engine's).
 * ms[1]. */
int rwkv_cuda_k_gemm(int device, int bf16, int M, int N, int K, const float *X, int ldx, int xoff,
                     const float *W, float *Y, int ldy, int yoff, int accumulate, double ms[1],
                     rwkv_error *err);

/* colsum: colsum[j][c] = sum over the rows of segment sum_seg[j] of h[row][c]
 * (double, row order), j < n_sum.  ms[1]. */
int rwkv_cuda_k_colsum(int device, int C, int M, int n_seg, const int *seq_start, int n_sum,
                       const int *sum_seg, const float *h, double *colsum, double ms[1],
                       rwkv_error *err);

#ifdef __cplusplus
}
#endif

#endif
