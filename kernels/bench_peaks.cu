/* bench_peaks.cu — the device's own ceilings, measured, for the benchmark
 * (tests/bench/bench_gpu.c prints every figure beside them):
 *  - cuBLAS bf16 GEMM TFLOP/s on an engine-shaped product (Y = X·Wᵀ, fp32
 *    output), with operands filled with non-zero values (all-zero inputs
 *    draw less power and run at higher clocks than real data);
 *  - memory bandwidth from a float4 copy kernel over buffers far larger than
 *    L2, counting bytes read plus written.
 * Timing: CUDA events, a warm-up, then the median of several runs. */
#include <algorithm>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_internal.cuh"

#define RUNS 7

static __global__ void fill_kernel(bf16 *p, size_t n, uint32_t seed)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        uint32_t h = (uint32_t)i * 2654435761u ^ seed;
        h ^= h >> 15;
        p[i] = __float2bfloat16_rn(((float)(h & 0xffff) / 65536.0f - 0.5f) * 0.1f);
    }
}

static __global__ void copy_kernel(const float4 *src, float4 *dst, size_t n)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        dst[i] = src[i];
}

typedef struct {
    void *a, *b, *c;
    cudaEvent_t e0, e1;
    const cublas_api *cb;
    cublasHandle_t blas;
} peak_bufs;

static void peak_free(peak_bufs *p)
{
    (void)cudaFree(p->a);
    (void)cudaFree(p->b);
    (void)cudaFree(p->c);
    if (p->e0)
        (void)cudaEventDestroy(p->e0);
    if (p->e1)
        (void)cudaEventDestroy(p->e1);
    if (p->blas)
        (void)p->cb->destroy(p->blas);
    (void)cudaGetLastError();
}

static double median(double *v, int n)
{
    std::sort(v, v + n);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int open_device(int device, rwkv_error *err)
{
    int n = rwkv_cuda_device_count(err);
    if (n < 0)
        return -1;
    if (device < 0 || device >= n)
        return rwkv_fail(err, "cuda:%d: no such device (%d present)", device, n);
    CU_TRY(cudaSetDevice(device));
    return 0;
}

static int gemm_run(peak_bufs *p, int M, int N, int K, double *tflops, rwkv_error *err)
{
    CU_TRY(cudaMalloc(&p->a, (size_t)M * K * sizeof(bf16)));
    CU_TRY(cudaMalloc(&p->b, (size_t)N * K * sizeof(bf16)));
    CU_TRY(cudaMalloc(&p->c, (size_t)M * N * sizeof(float)));
    fill_kernel<<<1024, 256>>>((bf16 *)p->a, (size_t)M * K, 1u);
    fill_kernel<<<1024, 256>>>((bf16 *)p->b, (size_t)N * K, 2u);
    CU_TRY(cudaGetLastError());
    if (!(p->cb = cublas_load(err)))
        return -1;
    CUBLAS_TRY(p->cb->create(&p->blas));
    CU_TRY(cudaEventCreate(&p->e0));
    CU_TRY(cudaEventCreate(&p->e1));
    const float one = 1.0f, zero = 0.0f;
    double t[RUNS];
    for (int run = -2; run < RUNS; run++) { /* two warm-up runs */
        CU_TRY(cudaEventRecord(p->e0, 0));
        for (int i = 0; i < 5; i++)
            CUBLAS_TRY(p->cb->gemm_ex(p->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, p->b,
                                    CUDA_R_16BF, K, p->a, CUDA_R_16BF, K, &zero, p->c, CUDA_R_32F,
                                    N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        CU_TRY(cudaEventRecord(p->e1, 0));
        CU_TRY(cudaEventSynchronize(p->e1));
        float ms = 0;
        CU_TRY(cudaEventElapsedTime(&ms, p->e0, p->e1));
        if (run >= 0)
            t[run] = (double)ms / 5.0;
    }
    double ms = median(t, RUNS);
    *tflops = 2.0 * M * N * (double)K / (ms * 1e-3) / 1e12;
    return 0;
}

extern "C" int rwkv_cuda_gemm_tflops(int device, int M, int N, int K, double *tflops,
                                     rwkv_error *err)
{
    if (M < 1 || N < 1 || K < 1)
        return rwkv_fail(err, "cuda: gemm_tflops: bad shape %dx%dx%d", M, N, K);
    if (open_device(device, err) != 0)
        return -1;
    peak_bufs p;
    memset(&p, 0, sizeof p);
    int rc = gemm_run(&p, M, N, K, tflops, err);
    peak_free(&p);
    return rc;
}

static int bw_run(peak_bufs *p, double *gbs, rwkv_error *err)
{
    size_t free_b = 0, total_b = 0;
    CU_TRY(cudaMemGetInfo(&free_b, &total_b));
    size_t bytes = (size_t)1 << 30; /* per buffer; L2 is tens of MB */
    while (bytes > ((size_t)64 << 20) && 2 * bytes > free_b / 2)
        bytes /= 2;
    CU_TRY(cudaMalloc(&p->a, bytes));
    CU_TRY(cudaMalloc(&p->b, bytes));
    CU_TRY(cudaMemset(p->a, 1, bytes));
    CU_TRY(cudaEventCreate(&p->e0));
    CU_TRY(cudaEventCreate(&p->e1));
    size_t n = bytes / sizeof(float4);
    double t[RUNS];
    for (int run = -2; run < RUNS; run++) {
        CU_TRY(cudaEventRecord(p->e0, 0));
        copy_kernel<<<4096, 256>>>((const float4 *)p->a, (float4 *)p->b, n);
        CU_TRY(cudaGetLastError());
        CU_TRY(cudaEventRecord(p->e1, 0));
        CU_TRY(cudaEventSynchronize(p->e1));
        float ms = 0;
        CU_TRY(cudaEventElapsedTime(&ms, p->e0, p->e1));
        if (run >= 0)
            t[run] = (double)ms;
    }
    *gbs = 2.0 * (double)bytes / (median(t, RUNS) * 1e-3) / 1e9;
    return 0;
}

extern "C" int rwkv_cuda_bandwidth_gbs(int device, double *gbs, rwkv_error *err)
{
    if (open_device(device, err) != 0)
        return -1;
    peak_bufs p;
    memset(&p, 0, sizeof p);
    int rc = bw_run(&p, gbs, err);
    peak_free(&p);
    return rc;
}
