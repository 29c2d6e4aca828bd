/* rwkv7.h — RWKV-7 ("Goose", x070) weights as the v7 layer code uses them.
 * Internal to core/.  Math: ../shared/rwkv-math.md §4. */
#ifndef RWKV_RWKV7_H
#define RWKV_RWKV7_H

#include "core/engine/matmul.h"

/* Largest head size the engine accepts (official RWKV-7 models use 64); a
 * head's state is transposed through a stack buffer of this size squared. */
#define RWKV7_MAX_HEAD 128

typedef struct rwkv7_layer {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    /* time mix */
    const float *x_r, *x_w, *x_k, *x_v, *x_a, *x_g;
    const float *w0, *a0, *v0, *k_k, *k_a, *r_k;
    rwkv_matrix w1, w2, a1, a2, v1, v2, g1, g2; /* LoRA, Linear form, stored dtype */
    rwkv_matrix receptance, key, value, output;
    const float *lnx_w, *lnx_b;
    /* channel mix */
    const float *ffn_x_k;
    rwkv_matrix ffn_key, ffn_value;
} rwkv7_layer;

typedef struct rwkv7_weights {
    int n_layer;
    int lora_w, lora_a, lora_v, lora_g; /* LoRA widths */
    rwkv7_layer *layer;
} rwkv7_weights;

/* Offsets inside one layer's slice of the flat state. */
static inline size_t rwkv7_layer_state_floats(int C, int H, int N)
{
    return 2 * (size_t)C + (size_t)H * N * N;
}

/* The WKV-7 recurrence for one head over T consecutive tokens (rows of
 * stride `ld` floats in each input), updating S [N][N] (value, key) in place
 * and writing y.  Inputs per token: r, w (decay), k (modified key), v,
 * kk (normalised), a. */
void rwkv7_wkv_head(float *S, int N, int T, int ld, const float *r, const float *w,
                    const float *k, const float *v, const float *kk, const float *a, float *y);

/* The per-token arithmetic around the recurrence, one row of C = H*N
 * channels (also the references the CUDA kernel tests compare against).
 * prepare: a, w (decay), kk (normalised removal key), k (modified key) in
 * place, and the value residual: first_layer keeps v as vfirst, later layers
 * mix v towards vfirst by vm.  output: y = GroupNorm(y) + the current
 * token's bonus, times the gate g, in place. */
void rwkv7_prepare_row(const rwkv7_layer *ly, int first_layer, int H, int N, float *w, float *a,
                       float *k, float *kk, float *v, float *vfirst, const float *vm);
void rwkv7_output_row(const rwkv7_layer *ly, int H, int N, float *y, const float *r,
                      const float *k, const float *v, const float *g);

struct rwkv_cpu;
struct rwkv_batch;
struct rwkv_model;
/* The arch hooks (rwkv7_layer.c). */
size_t rwkv7_scratch_floats(const struct rwkv_model *m, int M);
void rwkv7_layer_forward(struct rwkv_cpu *e, int layer, const struct rwkv_batch *b, float *x,
                         float *scratch);

#endif
