/* wkv7_output.cu — from the recurrence's output to the output projection's
 * input, per head (../shared/rwkv-math.md §4):
 *   y  = GroupNorm_H(y; ln_x, eps 64e-5)
 *   y += (Σ_j r_j · k_j · r_k_j) · v          the "bonus" of the current token
 *   yg = y ∘ g                                in the GEMM operand dtype
 * One block per (row, head), one thread per channel: the group statistics
 * and the bonus dot product are block reductions. */
#include "kernels/cuda_internal.cuh"
#include "kernels/device_util.cuh"

#define GN_EPS 64e-5f

template <typename T>
static __global__ void wkv7_output_kernel(int C, int N, const float *y, const float *r,
                                          const float *k, const float *v, const float *g,
                                          const float *lnx_w, const float *lnx_b,
                                          const float *r_k, T *out)
{
    __shared__ float sh[33];
    int m = blockIdx.x, c = blockIdx.y * N + threadIdx.x;
    size_t o = (size_t)m * C + c;
    float yi = y[o];
    float mu = block_sum(yi, sh) / (float)N;
    float d = yi - mu;
    float var = block_sum(d * d, sh) / (float)N;
    float yn = d * (1.0f / sqrtf(var + GN_EPS)) * lnx_w[c] + lnx_b[c];
    float bonus = block_sum(r[o] * k[o] * r_k[c], sh);
    out[o] = from_f32<T>((yn + bonus * v[o]) * g[o]);
}

int launch_wkv7_output(cu_ctx *c, int M, const cu_layer7 *ly, rwkv_error *err)
{
    if (M <= 0)
        return 0;
    const cu_scratch *s = &c->s;
    dim3 grid((unsigned)M, (unsigned)c->H);
    if (c->prec == CU_BF16)
        wkv7_output_kernel<bf16><<<grid, c->N, 0, c->stream>>>(
            c->C, c->N, s->y, s->r, s->k, s->v, s->g, ly->lnx_w, ly->lnx_b, ly->r_k,
            (bf16 *)s->yg);
    else
        wkv7_output_kernel<float><<<grid, c->N, 0, c->stream>>>(
            c->C, c->N, s->y, s->r, s->k, s->v, s->g, ly->lnx_w, ly->lnx_b, ly->r_k,
            (float *)s->yg);
    LAUNCH_TRY(c->stream, "wkv7_output");
    return 0;
}
