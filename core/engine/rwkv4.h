/* rwkv4.h — RWKV-4 weights as the v4 layer code uses them.  Internal to
 * core/.  Math: ../shared/rwkv-math.md §1.  RWKV-4 has no heads: its WKV
 * runs per channel with the numerically stabilised (aa, bb, pp) state. */
#ifndef RWKV_RWKV4_H
#define RWKV_RWKV4_H

#include "core/engine/rwkv456.h"

typedef struct rwkv4_layer {
    const float *ln1_w, *ln1_b;
    const float *mix_k, *mix_v, *mix_r;
    const float *decay; /* [C] -exp(time_decay) */
    const float *first; /* [C] time_first, as stored */
    rwkv_matrix receptance, key, value, output;
    rwkv_cmix ffn;
} rwkv4_layer;

typedef struct rwkv4_weights {
    int n_layer;
    rwkv4_layer *layer;
} rwkv4_weights;

/* Per layer: att_x_prev, aa, bb, pp, ffn_x_prev, [C] each. */
enum { RWKV4_X_PREV, RWKV4_AA, RWKV4_BB, RWKV4_PP, RWKV4_FFN_X_PREV, RWKV4_STATE_VECS };

/* pp's initial value in the official package. */
#define RWKV4_PP_INIT (-1e30f)

size_t rwkv4_scratch_floats(const struct rwkv_model *m, int M);
void rwkv4_layer_forward(struct rwkv_cpu *e, int layer, const struct rwkv_batch *b, float *x,
                         float *scratch);

#endif
