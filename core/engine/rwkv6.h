/* rwkv6.h — RWKV-6 ("Finch") weights as the v6 layer code uses them.
 * Internal to core/.  Math: ../shared/rwkv-math.md §3.  v6 makes the token
 * shift and the decay data-dependent (two small LoRAs) and then runs the
 * same attention core as v5.2 (rwkv456.h). */
#ifndef RWKV_RWKV6_H
#define RWKV_RWKV6_H

#include "core/engine/rwkv456.h"

/* The five data-dependent mixes, in the order of time_maa_w2. */
enum { RWKV6_W, RWKV6_K, RWKV6_V, RWKV6_R, RWKV6_G, RWKV6_N_MIX };

typedef struct rwkv6_layer {
    const float *ln1_w, *ln1_b;
    const float *maa_x, *maa[RWKV6_N_MIX];
    rwkv_matrix maa_w1;               /* (C -> 5D), float32 Linear form */
    rwkv_matrix maa_w2[RWKV6_N_MIX];  /* (D -> C) each */
    const float *time_decay;          /* [C] as stored */
    rwkv_matrix decay_w1, decay_w2;   /* (C -> Dd), (Dd -> C) */
    rwkv56_att att;                   /* att.u = time_faaaa */
    rwkv_cmix ffn;
} rwkv6_layer;

typedef struct rwkv6_weights {
    int n_layer;
    int lora_maa;   /* D: width of each of the five mix LoRAs */
    int lora_decay; /* Dd */
    rwkv6_layer *layer;
    const rwkv56_att **att; /* [n_layer], for the initial state */
} rwkv6_weights;

size_t rwkv6_scratch_floats(const struct rwkv_model *m, int M);
void rwkv6_layer_forward(struct rwkv_cpu *e, int layer, const struct rwkv_batch *b, float *x,
                         float *scratch);

#endif
