/* rwkv5_layer.c — one RWKV-5.x layer over a batch (rwkv-math.md §2): the
 * token shift with the static time_mix vectors, then the shared v5/v6
 * attention core with the load-time decay, then the shared channel mix. */
#include "core/engine/engine_internal.h"
#include "core/engine/rwkv5.h"

size_t rwkv5_scratch_floats(const rwkv_model *m, int M)
{
    int C = m->info.n_embd;
    size_t tmix = 5 * (size_t)C + rwkv56_att_scratch_per_row(C);
    size_t cmix = rwkv_cmix_scratch_per_row(C, m->info.ffn_dim);
    return (tmix > cmix ? tmix : cmix) * (size_t)M;
}

void rwkv5_layer_forward(rwkv_cpu *e, int layer, const rwkv_batch *b, float *x, float *scratch)
{
    const rwkv_model *m = e->model;
    const rwkv5_weights *w = m->layers;
    const rwkv5_layer *ly = &w->layer[layer];
    int C = m->info.n_embd, H = m->info.n_head, N = m->info.head_size, F = m->info.ffn_dim;
    size_t lstate = (size_t)layer * rwkv56_layer_state_floats(C, H, N);
    size_t MC = (size_t)b->M * C;
    float *xx = scratch, *kx = xx + MC, *vx = kx + MC, *rx = vx + MC, *gx = rx + MC;

    rwkv_shift sh = {.form = RWKV_SHIFT_MIX,
                     .n_out = ly->mix_g ? 4 : 3,
                     .mix = {ly->mix_k, ly->mix_v, ly->mix_r, ly->mix_g},
                     .out = {kx, vx, rx, gx}};
    rwkv_ln_shift(e, b, C, x, ly->ln1_w, ly->ln1_b, lstate, xx, &sh);
    rwkv56_inputs in = {.rx = rx, .kx = kx, .vx = vx, .gx = gx, .w = ly->w, .ld_w = 0};
    rwkv56_att_forward(e, b, &ly->att, C, H, N, lstate + (size_t)C, &in, x, gx + MC);
    rwkv_cmix_forward(e, b, &ly->ffn, C, F, lstate + (size_t)C + (size_t)H * N * N, x, scratch);
}
