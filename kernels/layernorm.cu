/* layernorm.cu — LayerNorm of whole rows (eps 1e-5, biased variance): the
 * final ln_out before the head and the hidden-state outputs.  One block per
 * row; the statistics use the two-pass block reduction of
 * device_util.cuh, so they do not depend on where the row sits. */
#include "kernels/cuda_internal.cuh"
#include "kernels/device_util.cuh"

#define LN_EPS 1e-5f

static __global__ void layernorm_rows_kernel(const float *x, int C, const float *w,
                                             const float *b, float *y)
{
    __shared__ float sh[33];
    size_t o = (size_t)blockIdx.x * C;
    float mu, rs;
    block_moments(x + o, C, LN_EPS, sh, &mu, &rs);
    for (int i = threadIdx.x; i < C; i += blockDim.x)
        y[o + i] = (x[o + i] - mu) * rs * w[i] + b[i];
}

int launch_layernorm_rows(cu_ctx *c, int M, const float *x, const float *w, const float *b,
                          float *y, rwkv_error *err)
{
    if (M <= 0)
        return 0;
    layernorm_rows_kernel<<<M, cu_row_threads(c->C), 0, c->stream>>>(x, c->C, w, b, y);
    LAUNCH_TRY(c->stream, "layernorm_rows");
    return 0;
}
