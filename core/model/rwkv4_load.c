/* rwkv4_load.c — binding an RWKV-4 checkpoint (names and shapes of
 * BlinkDL's v4 training code, as in the Pile models) with the official
 * load-time transform time_decay -> -exp(time_decay), and the v4 initial
 * state (zeros, pp = -1e30). */
#include <math.h>
#include <stdlib.h>

#include "core/engine/rwkv4.h"

static int bind(rwkv_model *m, rwkv_binder *b, rwkv_error *err)
{
    const char *path = rwkv_tensor_file_path(b->f);
    int C = m->info.n_embd, L = m->info.n_layer;
    /* v4 has no heads: one "head" as wide as the model */
    if (rwkv_bind_shape(b, err, 1, C, C, RWKV4_STATE_VECS * (size_t)C) != 0)
        return -1;
    int F = m->info.ffn_dim;

    rwkv4_weights *w = calloc(1, sizeof *w);
    if (!w)
        return rwkv_fail(err, "%s: out of memory", path);
    m->layers = w;
    w->n_layer = L;
    w->layer = calloc((size_t)L, sizeof *w->layer);
    if (!w->layer)
        return rwkv_fail(err, "%s: out of memory", path);
    for (int i = 0; i < L; i++) {
        rwkv4_layer *ly = &w->layer[i];
        const float *td;
#define VEC(dst, name)                                                                \
    if (!(dst = rwkv_bind_vec(b, err, C, "blocks.%d." name, i)))                      \
        return -1;
        VEC(ly->ln1_w, "ln1.weight") VEC(ly->ln1_b, "ln1.bias")
        VEC(ly->mix_k, "att.time_mix_k") VEC(ly->mix_v, "att.time_mix_v")
        VEC(ly->mix_r, "att.time_mix_r") VEC(ly->first, "att.time_first")
        VEC(td, "att.time_decay")
#undef VEC
        float *decay = rwkv_model_alloc(m, (size_t)C * sizeof(float));
        if (!decay)
            return rwkv_fail(err, "%s: out of memory", path);
        for (int c = 0; c < C; c++)
            decay[c] = (float)-exp((double)td[c]);
        ly->decay = decay;
#define MAT(field, name)                                                                     \
    if (rwkv_bind_matrix(b, err, &ly->field, C, C, "blocks.%d.att." name ".weight", i))      \
        return -1;
        MAT(receptance, "receptance") MAT(key, "key") MAT(value, "value") MAT(output, "output")
#undef MAT
        if (rwkv_cmix_bind(b, err, &ly->ffn, i, C, F, RWKV_SHIFT_MIX))
            return -1;
    }
    return 0;
}

static void free_layers(rwkv_model *m)
{
    rwkv4_weights *w = m->layers;
    if (w)
        free(w->layer);
    free(w);
    m->layers = NULL;
}

static void init_state(const rwkv_model *m, float *state)
{
    size_t C = (size_t)m->info.n_embd;
    for (int l = 0; l < m->info.n_layer; l++) {
        float *s = state + (size_t)l * RWKV4_STATE_VECS * C;
        for (size_t i = 0; i < RWKV4_STATE_VECS * C; i++)
            s[i] = i / C == RWKV4_PP ? RWKV4_PP_INIT : 0.0f;
    }
}

const rwkv_arch rwkv_arch_v4 = {
    .generation = RWKV_GEN_V4,
    .bind = bind,
    .free_layers = free_layers,
    .init_state = init_state,
    .scratch_floats = rwkv4_scratch_floats,
    .layer = rwkv4_layer_forward,
};
