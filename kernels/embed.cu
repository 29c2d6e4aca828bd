/* embed.cu — the first row of every token: its embedding row, widened from
 * the stored dtype and normalised with ln0 (the official loader applies ln0
 * to the whole table at load; per lookup gives the same fp32 values and
 * keeps the table in its compact dtype).  One block per token row. */
#include "kernels/cuda_internal.cuh"
#include "kernels/device_util.cuh"

#define LN_EPS 1e-5f

template <typename T>
static __global__ void embed_ln0_kernel(const uint32_t *tokens, const T *emb, int C,
                                        const float *w, const float *b, float *x)
{
    __shared__ float sh[33];
    int m = blockIdx.x;
    const T *row = emb + (size_t)tokens[m] * C;
    float mu, rs;
    block_moments(row, C, LN_EPS, sh, &mu, &rs);
    float *out = x + (size_t)m * C;
    for (int i = threadIdx.x; i < C; i += blockDim.x)
        out[i] = (to_f32(row[i]) - mu) * rs * w[i] + b[i];
}

int launch_embed(cu_ctx *c, const cu_pass *p, float *x, rwkv_error *err)
{
    if (p->M <= 0)
        return 0;
    int th = cu_row_threads(c->C);
    if (c->prec == CU_BF16)
        embed_ln0_kernel<bf16><<<p->M, th, 0, c->stream>>>(p->tokens, (const bf16 *)c->emb, c->C,
                                                           c->ln0_w, c->ln0_b, x);
    else
        embed_ln0_kernel<float><<<p->M, th, 0, c->stream>>>(p->tokens, (const float *)c->emb,
                                                            c->C, c->ln0_w, c->ln0_b, x);
    LAUNCH_TRY(c->stream, "embed_ln0");
    return 0;
}
