/* errors.cu — turning CUDA and cuBLAS failures into rwkv_error values with
 * the place they happened (file:line, the call) and the library's own
 * words, and the optional synchronous checking after every launch
 * (RWKV_CUDA_SYNC=1) that pins an asynchronous fault to its kernel. */
#include <atomic>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_internal.cuh"

int cu_fail(rwkv_error *err, const char *file, int line, const char *what, cudaError_t e)
{
    /* clear a non-sticky error so the next call on this thread starts clean */
    (void)cudaGetLastError();
    return rwkv_fail(err, "%s:%d: %s failed: %s (%s)", file, line, what, cudaGetErrorString(e),
                     cudaGetErrorName(e));
}

static const char *cublas_name(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED (out of device memory)";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cuBLAS status";
    }
}

int cublas_fail(rwkv_error *err, const char *file, int line, const char *what, cublasStatus_t s)
{
    return rwkv_fail(err, "%s:%d: %s failed: %s (%d)", file, line, what, cublas_name(s), (int)s);
}

int cu_check_launch(cudaStream_t st, rwkv_error *err, const char *file, int line,
                    const char *kernel)
{
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return rwkv_fail(err, "%s:%d: launching %s failed: %s (%s)", file, line, kernel,
                         cudaGetErrorString(e), cudaGetErrorName(e));
    static std::atomic<int> sync_each(-1); /* read once; racers store the same value */
    int on = sync_each.load(std::memory_order_relaxed);
    if (on < 0) {
        const char *s = getenv("RWKV_CUDA_SYNC");
        on = s && strcmp(s, "1") == 0;
        sync_each.store(on, std::memory_order_relaxed);
    }
    if (on) {
        e = cudaStreamSynchronize(st);
        if (e != cudaSuccess)
            return rwkv_fail(err, "%s:%d: kernel %s failed while running: %s (%s)", file, line,
                             kernel, cudaGetErrorString(e), cudaGetErrorName(e));
    }
    return 0;
}
