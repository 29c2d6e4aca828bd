/* lora_act.cu — the activations between the two factors of the time-mix
 * LoRAs, over the side-by-side hidden buffer [rows][lora_ld]
 * (cuda_internal.cuh): tanh on the decay slice (w), sigmoid on the gate
 * slice (g), identity on the in-context-rate (a) and value (v) slices, and
 * the conversion to the GEMM operand dtype for the second factor.  One
 * elementwise pass for all four LoRAs (a launch each would cost more than
 * the work on the decode path). */
#include "kernels/cuda_internal.cuh"
#include "kernels/device_util.cuh"

template <typename T>
static __global__ void lora_act_kernel(const float *in, T *out, size_t n, int ld, int a_off,
                                       int g_off, int v_off)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        int col = (int)(i % (size_t)ld);
        float v = in[i];
        if (col < a_off)
            v = tanhf(v);
        else if (col >= g_off && col < v_off)
            v = sigmoid_f(v);
        out[i] = from_f32<T>(v);
    }
}

int launch_lora_act(cu_ctx *c, int M, const float *lora, void *out, rwkv_error *err)
{
    size_t n = (size_t)M * c->lora_ld;
    if (n == 0)
        return 0;
    size_t blocks = (n + 255) / 256;
    int grid = blocks > 8192 ? 8192 : (int)blocks;
    int a_off = c->lora_off[LORA_A], g_off = c->lora_off[LORA_G], v_off = c->lora_off[LORA_V];
    if (c->prec == CU_BF16)
        lora_act_kernel<bf16><<<grid, 256, 0, c->stream>>>(lora, (bf16 *)out, n, c->lora_ld,
                                                           a_off, g_off, v_off);
    else
        lora_act_kernel<float><<<grid, 256, 0, c->stream>>>(lora, (float *)out, n, c->lora_ld,
                                                            a_off, g_off, v_off);
    LAUNCH_TRY(c->stream, "lora_act");
    return 0;
}
