/* rwkv7_load.c — binding an RWKV-7 checkpoint's tensors (names and shapes of
 * BlinkDL's x070 training code) and the v7 state's initial value. */
#include <stdlib.h>
#include <string.h>

#include "core/engine/engine_internal.h"
#include "core/engine/rwkv7.h"


static int lora_width(rwkv_binder *b, rwkv_error *err, const char *name, int C, int *width)
{
    const rwkv_tensor *t = rwkv_bind_find(b, "blocks.0.att.%s", name);
    int64_t d[RWKV_TENSOR_MAX_DIMS];
    if (!t || rwkv_squeezed_shape(t, d) != 2 || d[0] != C || d[1] < 1 || d[1] > 65536)
        return rwkv_fail(err, "%s: tensor 'blocks.0.att.%s' missing or not (%d, D)",
                         rwkv_tensor_file_path(b->f), name, C);
    *width = (int)d[1];
    return 0;
}

static int bind(rwkv_model *m, rwkv_binder *b, rwkv_error *err)
{
    const char *path = rwkv_tensor_file_path(b->f);
    int C = m->info.n_embd, L = m->info.n_layer;
    const rwkv_tensor *rk = rwkv_bind_find(b, "blocks.0.att.r_k");
    int64_t d[RWKV_TENSOR_MAX_DIMS];
    /* (H, N) as stored: squeezing would lose H when there is one head */
    if (!rk || rk->ndim != 2 || rk->shape[0] < 1 || rk->shape[1] < 1 ||
        rk->shape[0] * rk->shape[1] != C)
        return rwkv_fail(err, "%s: blocks.0.att.r_k must exist with shape (H, N), H*N = %d", path,
                         C);
    int H = (int)rk->shape[0], N = (int)rk->shape[1];
    if (rwkv_bind_shape(b, err, H, N, RWKV7_MAX_HEAD, rwkv7_layer_state_floats(C, H, N)) != 0)
        return -1;
    int F = m->info.ffn_dim;

    rwkv7_weights *w = calloc(1, sizeof *w);
    if (!w)
        return rwkv_fail(err, "%s: out of memory", path);
    m->layers = w;
    w->n_layer = L;
    w->layer = calloc((size_t)L, sizeof *w->layer);
    if (!w->layer)
        return rwkv_fail(err, "%s: out of memory", path);
    if (lora_width(b, err, "w1", C, &w->lora_w) || lora_width(b, err, "a1", C, &w->lora_a) ||
        lora_width(b, err, "g1", C, &w->lora_g))
        return -1;
    w->lora_v = 0;
    if (L > 1) {
        const rwkv_tensor *v1 = rwkv_bind_find(b, "blocks.1.att.v1");
        if (!v1 || rwkv_squeezed_shape(v1, d) != 2 || d[0] != C)
            return rwkv_fail(err, "%s: tensor 'blocks.1.att.v1' missing or not (%d, D)", path, C);
        w->lora_v = (int)d[1];
    }

    for (int i = 0; i < L; i++) {
        rwkv7_layer *ly = &w->layer[i];
#define VEC(field, name)                                                              \
    if (!(ly->field = rwkv_bind_vec(b, err, C, "blocks.%d." name, i)))                \
        return -1;
        VEC(ln1_w, "ln1.weight") VEC(ln1_b, "ln1.bias") VEC(ln2_w, "ln2.weight")
        VEC(ln2_b, "ln2.bias") VEC(x_r, "att.x_r") VEC(x_w, "att.x_w") VEC(x_k, "att.x_k")
        VEC(x_v, "att.x_v") VEC(x_a, "att.x_a") VEC(x_g, "att.x_g") VEC(w0, "att.w0")
        VEC(a0, "att.a0") VEC(k_k, "att.k_k") VEC(k_a, "att.k_a") VEC(r_k, "att.r_k")
        VEC(lnx_w, "att.ln_x.weight") VEC(lnx_b, "att.ln_x.bias") VEC(ffn_x_k, "ffn.x_k")
#undef VEC
#define LORA(field, name, in, out)                                                    \
    if (rwkv_bind_lora(b, err, &ly->field, in, out, "blocks.%d.att." name, i))         \
        return -1;
        LORA(w1, "w1", C, w->lora_w) LORA(w2, "w2", w->lora_w, C)
        LORA(a1, "a1", C, w->lora_a) LORA(a2, "a2", w->lora_a, C)
        LORA(g1, "g1", C, w->lora_g) LORA(g2, "g2", w->lora_g, C)
        if (i > 0) {
            LORA(v1, "v1", C, w->lora_v) LORA(v2, "v2", w->lora_v, C)
            if (!(ly->v0 = rwkv_bind_vec(b, err, C, "blocks.%d.att.v0", i)))
                return -1;
        } else {
            /* unused in layer 0; newer training code saves them anyway */
            rwkv_bind_ignore(b, "blocks.0.att.v0");
            rwkv_bind_ignore(b, "blocks.0.att.v1");
            rwkv_bind_ignore(b, "blocks.0.att.v2");
        }
#undef LORA
#define MAT(field, name, rows, cols)                                                  \
    if (rwkv_bind_matrix(b, err, &ly->field, rows, cols, "blocks.%d." name, i))        \
        return -1;
        MAT(receptance, "att.receptance.weight", C, C) MAT(key, "att.key.weight", C, C)
        MAT(value, "att.value.weight", C, C) MAT(output, "att.output.weight", C, C)
        MAT(ffn_key, "ffn.key.weight", F, C) MAT(ffn_value, "ffn.value.weight", C, F)
#undef MAT
    }
    return 0;
}

static void free_layers(rwkv_model *m)
{
    rwkv7_weights *w = m->layers;
    if (w)
        free(w->layer);
    free(w);
    m->layers = NULL;
}

static void init_state(const rwkv_model *m, float *state)
{
    memset(state, 0, m->info.state_floats * sizeof(float));
}

const rwkv_arch rwkv_arch_v7 = {
    .generation = RWKV_GEN_V7,
    .bind = bind,
    .free_layers = free_layers,
    .init_state = init_state,
    .scratch_floats = rwkv7_scratch_floats,
    .layer = rwkv7_layer_forward,
};
