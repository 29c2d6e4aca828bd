/* ln_shift_mix.cu — LayerNorm fused with RWKV's token shift: for each row
 * m, xx = LN(x[m]) and the previous token's normalised row prev (LN of the
 * row above, or for the first row of a document the row saved in its state),
 * then out[j][m] = xx + (prev - xx) * mix[j] for the 6 time-mix inputs
 * (r w k v a g) or the 1 channel-mix input, written in the GEMM operand
 * dtype.
 *
 * The row above is normalised again here rather than read from a buffer of
 * LN outputs: the same code on the same inputs gives the same bits, and it
 * saves a kernel and a [M][C] round trip through memory.  Each segment's
 * last xx goes to xlast[segment]; it becomes the state's saved row only in
 * shift_save.cu, after every block here has read the old one (blocks run in
 * any order, so writing the state here would race with a first row's read).
 * One block per row. */
#include "kernels/cuda_internal.cuh"
#include "kernels/device_util.cuh"

#define LN_EPS 1e-5f

template <typename T, int NMIX>
static __global__ void ln_shift_mix_kernel(const float *x, int C, const float *lnw,
                                           const float *lnb, const int *row_seq,
                                           const int *seq_start, float *const *states,
                                           size_t state_off, const float *mix, T *out,
                                           size_t plane, float *xlast)
{
    __shared__ float sh[33];
    int m = blockIdx.x;
    int s = row_seq[m];
    bool first = seq_start[s] == m, last = seq_start[s + 1] - 1 == m;
    const float *xr = x + (size_t)m * C;
    float mu, rs, mu_p = 0.0f, rs_p = 0.0f;
    block_moments(xr, C, LN_EPS, sh, &mu, &rs);
    if (!first) /* uniform over the block: the reductions inside may synchronise */
        block_moments(xr - C, C, LN_EPS, sh, &mu_p, &rs_p);
    const float *saved = states[s] + state_off;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
        float xx = (xr[i] - mu) * rs * lnw[i] + lnb[i];
        float prev = first ? saved[i] : (xr[i - C] - mu_p) * rs_p * lnw[i] + lnb[i];
        float d = prev - xx;
#pragma unroll
        for (int j = 0; j < NMIX; j++)
            out[(size_t)j * plane + (size_t)m * C + i] = from_f32<T>(xx + d * mix[(size_t)j * C + i]);
        if (last)
            xlast[(size_t)s * C + i] = xx;
    }
}

template <typename T>
static void launch_typed(cu_ctx *c, const cu_pass *p, int n_mix, const float *x,
                         const float *ln_w, const float *ln_b, size_t state_off, const float *mix,
                         void *out, float *xlast)
{
    size_t plane = (size_t)p->M * c->C;
    int th = cu_row_threads(c->C);
    if (n_mix == 6)
        ln_shift_mix_kernel<T, 6><<<p->M, th, 0, c->stream>>>(
            x, c->C, ln_w, ln_b, p->row_seq, p->seq_start, p->states, state_off, mix, (T *)out,
            plane, xlast);
    else
        ln_shift_mix_kernel<T, 1><<<p->M, th, 0, c->stream>>>(
            x, c->C, ln_w, ln_b, p->row_seq, p->seq_start, p->states, state_off, mix, (T *)out,
            plane, xlast);
}

int launch_ln_shift_mix(cu_ctx *c, const cu_pass *p, int n_mix, const float *x,
                        const float *ln_w, const float *ln_b, size_t state_off,
                        const float *mix, void *out, float *xlast, rwkv_error *err)
{
    if (n_mix != 1 && n_mix != 6)
        return rwkv_fail(err, "cuda: internal: ln_shift_mix with %d mixes", n_mix);
    if (p->M <= 0)
        return 0;
    if (c->prec == CU_BF16)
        launch_typed<bf16>(c, p, n_mix, x, ln_w, ln_b, state_off, mix, out, xlast);
    else
        launch_typed<float>(c, p, n_mix, x, ln_w, ln_b, state_off, mix, out, xlast);
    LAUNCH_TRY(c->stream, "ln_shift_mix");
    return 0;
}
