/* rwkv5.h — RWKV-5.0 / 5.1 / 5.2 weights as the v5 layer code uses them.
 * Internal to core/.  Math: ../shared/rwkv-math.md §2.  One arch serves
 * the three: they differ only in the gate (5.1, 5.2) and in whether decay
 * and bonus are per head (5.0, 5.1) or per key channel (5.2); both are
 * expanded to per-channel vectors at load, so one layer function runs all. */
#ifndef RWKV_RWKV5_H
#define RWKV_RWKV5_H

#include "core/engine/rwkv456.h"

typedef struct rwkv5_layer {
    const float *ln1_w, *ln1_b;
    const float *mix_k, *mix_v, *mix_r, *mix_g; /* mix_g NULL without a gate */
    const float *w;  /* [C] exp(-exp(time_decay)), per channel */
    rwkv56_att att;  /* att.u = exp(time_first) or time_faaaa, per channel */
    rwkv_cmix ffn;
} rwkv5_layer;

typedef struct rwkv5_weights {
    int n_layer;
    rwkv5_layer *layer;
    const rwkv56_att **att; /* [n_layer], for the initial state */
} rwkv5_weights;

size_t rwkv5_scratch_floats(const struct rwkv_model *m, int M);
void rwkv5_layer_forward(struct rwkv_cpu *e, int layer, const struct rwkv_batch *b, float *x,
                         float *scratch);

#endif
