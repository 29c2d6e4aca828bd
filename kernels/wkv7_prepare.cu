/* wkv7_prepare.cu — the per-channel arithmetic between the time-mix
 * products and the recurrence (../shared/rwkv-math.md §4), in place:
 *   a  = σ(a0 + a_lora)                     in-context learning rate
 *   w  = exp(-0.606531 · σ(w0 + w_lora))    decay
 *   kk = k ∘ k_k, L2-normalised per head   removal key
 *   k  = k ∘ (1 + (a - 1) ∘ k_a)            modified key
 *   v  = layer 0: kept as v_first;  else v + (v_first - v) ∘ σ(v0 + v_lora)
 * One block per (row, head) with one thread per channel of the head, so the
 * per-head norm is a block reduction. */
#include "kernels/cuda_internal.cuh"
#include "kernels/device_util.cuh"

/* The decay constant of the official x070 code (≈ e^-0.5, rounded). */
#define DECAY_SCALE 0.606531f

static __global__ void wkv7_prepare_kernel(int C, int N, const float *w0, const float *a0,
                                           const float *k_k, const float *k_a, const float *v0,
                                           float *w, float *a, float *k, float *kk, float *v,
                                           const float *vm, float *vfirst, int layer0)
{
    __shared__ float sh[33];
    int m = blockIdx.x, c = blockIdx.y * N + threadIdx.x;
    size_t o = (size_t)m * C + c;
    float ai = sigmoid_f(a0[c] + a[o]);
    float wi = expf(-DECAY_SCALE * sigmoid_f(w0[c] + w[o]));
    float ki = k[o];
    float kki = ki * k_k[c];
    float norm = sqrtf(block_sum(kki * kki, sh));
    kki *= 1.0f / fmaxf(norm, 1e-12f);
    a[o] = ai;
    w[o] = wi;
    kk[o] = kki;
    k[o] = ki * (1.0f + (ai - 1.0f) * k_a[c]);
    if (layer0) {
        vfirst[o] = v[o];
    } else {
        float vi = v[o];
        v[o] = vi + (vfirst[o] - vi) * sigmoid_f(v0[c] + vm[o]);
    }
}

int launch_wkv7_prepare(cu_ctx *c, int layer, int M, const cu_layer7 *ly, rwkv_error *err)
{
    if (M <= 0)
        return 0;
    const cu_scratch *s = &c->s;
    dim3 grid((unsigned)M, (unsigned)c->H);
    wkv7_prepare_kernel<<<grid, c->N, 0, c->stream>>>(c->C, c->N, ly->w0, ly->a0, ly->k_k,
                                                      ly->k_a, ly->v0, s->w, s->a, s->k, s->kk,
                                                      s->v, s->vm, s->vfirst, layer == 0);
    LAUNCH_TRY(c->stream, "wkv7_prepare");
    return 0;
}
