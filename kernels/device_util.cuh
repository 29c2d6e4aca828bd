/* device_util.cuh — small device-side helpers the kernels share: loading
 * and storing the "act" dtype, the activations, and block-wide reductions.
 *
 * Reductions are deterministic: a fixed tree (warp shuffles, then one warp
 * over the per-warp partials), so the same inputs and block size give the
 * same bits on every run.  They need blockDim.x to be a multiple of 32 and
 * every thread of the block to call them (they synchronise). */
#ifndef RWKV_DEVICE_UTIL_CUH
#define RWKV_DEVICE_UTIL_CUH

#include <cuda_bf16.h>
#include <math.h>

__device__ __forceinline__ float to_f32(float x)
{
    return x;
}
__device__ __forceinline__ float to_f32(__nv_bfloat16 x)
{
    return __bfloat162float(x);
}

template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x)
{
    return x;
}
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x)
{
    return __float2bfloat16_rn(x);
}

/* Accurate library functions (no fast-math intrinsics): the fp32 mode must
 * meet the fp32 fixture tolerances. */
__device__ __forceinline__ float sigmoid_f(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* Sum over the block; every thread gets the total.  sh: 33 floats of
 * shared memory. */
__device__ __forceinline__ float block_sum(float v, float *sh)
{
    const unsigned full = 0xffffffffu;
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(full, v, o);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0)
        sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float t = lane < nw ? sh[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1)
            t += __shfl_xor_sync(full, t, o);
        if (lane == 0)
            sh[32] = t;
    }
    __syncthreads();
    return sh[32];
}

__device__ __forceinline__ double block_sum_f64(double v, double *sh)
{
    const unsigned full = 0xffffffffu;
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(full, v, o);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0)
        sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        double t = lane < nw ? sh[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1)
            t += __shfl_xor_sync(full, t, o);
        if (lane == 0)
            sh[32] = t;
    }
    __syncthreads();
    return sh[32];
}

__device__ __forceinline__ float block_max(float v, float *sh)
{
    const unsigned full = 0xffffffffu;
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(full, v, o));
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0)
        sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float t = lane < nw ? sh[lane] : -INFINITY;
        for (int o = 16; o > 0; o >>= 1)
            t = fmaxf(t, __shfl_xor_sync(full, t, o));
        if (lane == 0)
            sh[32] = t;
    }
    __syncthreads();
    return sh[32];
}

/* Mean and 1/sqrt(var + eps) (biased variance, two passes) of n values of
 * row x, by the whole block. */
template <typename T>
__device__ __forceinline__ void block_moments(const T *x, int n, float eps, float *sh, float *mean,
                                              float *rstd)
{
    float s = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        s += to_f32(x[i]);
    float mu = block_sum(s, sh) / (float)n;
    float q = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float d = to_f32(x[i]) - mu;
        q += d * d;
    }
    float var = block_sum(q, sh) / (float)n;
    *mean = mu;
    *rstd = 1.0f / sqrtf(var + eps);
}

#endif
