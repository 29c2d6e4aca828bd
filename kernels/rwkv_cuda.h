/* rwkv_cuda.h — the CUDA backend's host-side entry points (C linkage).
 *
 * The backend itself is reached through core: rwkv_engine_new_on(m,
 * "cuda[:N]", ...) calls rwkv_cuda_backend() (declared weak in
 * core/backend.h, defined in kernels/backend.cu) and from then on the engine
 * runs every forward pass on device N.  This header adds what tests and
 * benchmarks need beyond that table: whether a device exists, the pass
 * planner (pure host code, testable without a GPU), the machine's measured
 * peaks for the benchmark, and a harness that runs the WKV-7 kernel alone.
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

#ifdef __cplusplus
}
#endif

#endif
