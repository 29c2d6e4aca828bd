/* relu_sq.cu — the channel mix's activation, relu(h)², from the fp32
 * product into the GEMM operand dtype of the value projection.  Grid-stride
 * elementwise pass. */
#include "kernels/cuda_internal.cuh"
#include "kernels/device_util.cuh"

template <typename T>
static __global__ void relu_sq_kernel(const float *h, T *out, size_t n)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float v = h[i] > 0.0f ? h[i] : 0.0f;
        out[i] = from_f32<T>(v * v);
    }
}

int launch_relu_sq(cu_ctx *c, size_t n, const float *h, void *out, rwkv_error *err)
{
    if (n == 0)
        return 0;
    size_t blocks = (n + 255) / 256;
    int grid = blocks > 16384 ? 16384 : (int)blocks;
    if (c->prec == CU_BF16)
        relu_sq_kernel<bf16><<<grid, 256, 0, c->stream>>>(h, (bf16 *)out, n);
    else
        relu_sq_kernel<float><<<grid, 256, 0, c->stream>>>(h, (float *)out, n);
    LAUNCH_TRY(c->stream, "relu_sq");
    return 0;
}
