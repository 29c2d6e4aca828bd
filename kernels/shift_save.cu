/* shift_save.cu — the end of a layer's token shift: every document's state
 * takes its last normalised rows (time mix and channel mix) as the rows the
 * next call will shift in.  A kernel of its own because the state's old rows
 * are read by ln_shift_mix.cu until both mixes of the layer are done; by
 * then nothing reads them.  One block per segment. */
#include "kernels/cuda_internal.cuh"

static __global__ void shift_save_kernel(float *const *states, size_t att_off, size_t ffn_off,
                                         const float *xlast_att, const float *xlast_ffn, int C)
{
    int s = blockIdx.x;
    float *st = states[s];
    const float *xa = xlast_att + (size_t)s * C, *xf = xlast_ffn + (size_t)s * C;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
        st[att_off + i] = xa[i];
        st[ffn_off + i] = xf[i];
    }
}

int launch_shift_save(cu_ctx *c, const cu_pass *p, size_t att_off, size_t ffn_off,
                      const float *xlast_att, const float *xlast_ffn, rwkv_error *err)
{
    if (p->n_seg <= 0)
        return 0;
    shift_save_kernel<<<p->n_seg, cu_row_threads(c->C), 0, c->stream>>>(
        p->states, att_off, ffn_off, xlast_att, xlast_ffn, c->C);
    LAUNCH_TRY(c->stream, "shift_save");
    return 0;
}
