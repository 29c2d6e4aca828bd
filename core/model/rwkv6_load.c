/* rwkv6_load.c — binding an RWKV-6 checkpoint (names and shapes of
 * BlinkDL's v6 training code).  Linear weights stay in the file in their
 * dtype; the LoRA factors, stored "x·A" as (in, out), become float32
 * Linear-form copies so one matmul routine serves everything.  time_maa_w2
 * is (5, D, C): five LoRA factors in one tensor, split here. */
#include <stdlib.h>

#include "core/engine/rwkv6.h"

static int lora_width(rwkv_binder *b, rwkv_error *err, const char *name, int C, int *width)
{
    const rwkv_tensor *t = rwkv_bind_find(b, "blocks.0.att.%s", name);
    if (!t || t->ndim != 2 || t->shape[0] != C || t->shape[1] < 1 || t->shape[1] > 65536)
        return rwkv_fail(err, "%s: tensor 'blocks.0.att.%s' missing or not (%d, D)",
                         rwkv_tensor_file_path(b->f), name, C);
    *width = (int)t->shape[1];
    return 0;
}

/* time_maa_w2 (5, D, C) -> five float32 Linear-form matrices [C][D]. */
static int bind_maa_w2(rwkv_binder *b, rwkv_error *err, rwkv_matrix *out, int layer, int D, int C)
{
    const char *path = rwkv_tensor_file_path(b->f);
    const rwkv_tensor *t = rwkv_bind_find(b, "blocks.%d.att.time_maa_w2", layer);
    if (!t)
        return rwkv_fail(err, "%s: tensor 'blocks.%d.att.time_maa_w2' is missing", path, layer);
    if (t->ndim != 3 || t->shape[0] != RWKV6_N_MIX || t->shape[1] != D || t->shape[2] != C)
        return rwkv_fail(err, "%s: tensor 'blocks.%d.att.time_maa_w2' must have shape (5, %d, %d)",
                         path, layer, D, C);
    size_t per = (size_t)D * C;
    float *tmp = malloc(per * RWKV6_N_MIX * sizeof(float));
    if (!tmp)
        return rwkv_fail(err, "%s: out of memory", path);
    rwkv_widen(t->dtype, t->data, tmp, per * RWKV6_N_MIX);
    for (int f = 0; f < RWKV6_N_MIX; f++) {
        float *w = rwkv_model_alloc(b->m, per * sizeof(float));
        if (!w) {
            free(tmp);
            return rwkv_fail(err, "%s: out of memory", path);
        }
        const float *src = tmp + (size_t)f * per; /* [D][C] */
        for (int i = 0; i < D; i++)
            for (int o = 0; o < C; o++)
                w[(size_t)o * D + i] = src[(size_t)i * C + o];
        out[f] = (rwkv_matrix){.dtype = RWKV_F32, .rows = C, .cols = D, .data = w};
    }
    free(tmp);
    return 0;
}

static int bind(rwkv_model *m, rwkv_binder *b, rwkv_error *err)
{
    const char *path = rwkv_tensor_file_path(b->f);
    int C = m->info.n_embd, L = m->info.n_layer;
    /* the package takes H from time_faaaa.shape[0] */
    const rwkv_tensor *tf = rwkv_bind_find(b, "blocks.0.att.time_faaaa");
    if (!tf || tf->ndim != 2 || tf->shape[0] < 1 || tf->shape[0] * tf->shape[1] != C)
        return rwkv_fail(err, "%s: blocks.0.att.time_faaaa must exist with shape (H, N), H*N = %d",
                         path, C);
    int H = (int)tf->shape[0], N = C / H;
    if (rwkv_bind_shape(b, err, H, N, RWKV56_MAX_HEAD, rwkv56_layer_state_floats(C, H, N)) != 0)
        return -1;
    int F = m->info.ffn_dim;

    rwkv6_weights *w = calloc(1, sizeof *w);
    if (!w)
        return rwkv_fail(err, "%s: out of memory", path);
    m->layers = w;
    w->n_layer = L;
    w->layer = calloc((size_t)L, sizeof *w->layer);
    w->att = calloc((size_t)L, sizeof *w->att);
    if (!w->layer || !w->att)
        return rwkv_fail(err, "%s: out of memory", path);
    int maa5;
    if (lora_width(b, err, "time_maa_w1", C, &maa5) ||
        lora_width(b, err, "time_decay_w1", C, &w->lora_decay))
        return -1;
    if (maa5 % RWKV6_N_MIX != 0)
        return rwkv_fail(err, "%s: blocks.0.att.time_maa_w1 has %d columns, not a multiple of 5",
                         path, maa5);
    w->lora_maa = maa5 / RWKV6_N_MIX;
    int D = w->lora_maa, Dd = w->lora_decay;

    static const char *const maa_names[RWKV6_N_MIX] = {"w", "k", "v", "r", "g"};
    for (int i = 0; i < L; i++) {
        rwkv6_layer *ly = &w->layer[i];
        w->att[i] = &ly->att;
#define VEC(dst, ...)                                                                 \
    if (!(dst = rwkv_bind_vec(b, err, C, __VA_ARGS__)))                               \
        return -1;
        VEC(ly->ln1_w, "blocks.%d.ln1.weight", i)
        VEC(ly->ln1_b, "blocks.%d.ln1.bias", i)
        VEC(ly->maa_x, "blocks.%d.att.time_maa_x", i)
        for (int f = 0; f < RWKV6_N_MIX; f++)
            VEC(ly->maa[f], "blocks.%d.att.time_maa_%s", i, maa_names[f])
        VEC(ly->time_decay, "blocks.%d.att.time_decay", i)
        VEC(ly->att.u, "blocks.%d.att.time_faaaa", i)
#undef VEC
        if (rwkv_bind_lora(b, err, &ly->maa_w1, C, maa5, "blocks.%d.att.time_maa_w1", i) ||
            bind_maa_w2(b, err, ly->maa_w2, i, D, C) ||
            rwkv_bind_lora(b, err, &ly->decay_w1, C, Dd, "blocks.%d.att.time_decay_w1", i) ||
            rwkv_bind_lora(b, err, &ly->decay_w2, Dd, C, "blocks.%d.att.time_decay_w2", i))
            return -1;
        if (rwkv56_att_bind(b, err, &ly->att, i, C, H, N, 1) ||
            rwkv_cmix_bind(b, err, &ly->ffn, i, C, F, RWKV_SHIFT_MAA))
            return -1;
    }
    return 0;
}

static void free_layers(rwkv_model *m)
{
    rwkv6_weights *w = m->layers;
    if (w) {
        free(w->layer);
        free(w->att);
    }
    free(w);
    m->layers = NULL;
}

static void init_state(const rwkv_model *m, float *state)
{
    const rwkv6_weights *w = m->layers;
    rwkv56_init_state(state, w->n_layer, m->info.n_embd, m->info.n_head, m->info.head_size,
                      w->att);
}

const rwkv_arch rwkv_arch_v6 = {
    .generation = RWKV_GEN_V6,
    .bind = bind,
    .free_layers = free_layers,
    .init_state = init_state,
    .scratch_floats = rwkv6_scratch_floats,
    .layer = rwkv6_layer_forward,
};
