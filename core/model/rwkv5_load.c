/* rwkv5_load.c — binding an RWKV-5.x checkpoint (names and shapes of
 * BlinkDL's v5 training code) and the load-time transforms of the official
 * package (rwkv-math.md §0):
 *   w = exp(-exp(time_decay));  u = time_faaaa, or exp(time_first).
 * 5.0/5.1 store them per head (H), 5.2 per head and key channel (H, N);
 * both become per-channel [C] vectors here so that one layer function and
 * one WKV kernel serve every v5 file.  5.1 (gate, per-head decay) has no
 * official fixture; it is the 5.0 layout plus the 5.2 gate and runs
 * through the same code (tests/test_rwkv_golden.c checks it against
 * an equivalent 5.2 file). */
#include <math.h>
#include <stdlib.h>

#include "core/engine/rwkv5.h"

/* Reads a per-head (n = H) or per-channel (n = C) vector of layer `layer`
 * and writes f(value) per channel into an owned [C] vector. */
static const float *per_channel(rwkv_binder *b, rwkv_error *err, int layer, const char *name,
                                int C, int H, int per_head, double (*f)(double))
{
    int N = C / H;
    const float *src = rwkv_bind_vec(b, err, per_head ? H : C, "blocks.%d.att.%s", layer, name);
    if (!src)
        return NULL;
    float *dst = rwkv_model_alloc(b->m, (size_t)C * sizeof(float));
    if (!dst) {
        rwkv_fail(err, "%s: out of memory", rwkv_tensor_file_path(b->f));
        return NULL;
    }
    for (int c = 0; c < C; c++) {
        double v = src[per_head ? c / N : c];
        dst[c] = (float)(f ? f(v) : v);
    }
    return dst;
}

static double decay_of(double d)
{
    return exp(-exp(d));
}

static int bind(rwkv_model *m, rwkv_binder *b, rwkv_error *err)
{
    const char *path = rwkv_tensor_file_path(b->f);
    int C = m->info.n_embd, L = m->info.n_layer;
    rwkv_generation gen = m->info.generation;
    int has_gate = gen != RWKV_GEN_V5_0, per_head = gen != RWKV_GEN_V5_2;
    /* the package takes H from time_decay.shape[0] */
    const rwkv_tensor *td = rwkv_bind_find(b, "blocks.0.att.time_decay");
    if (!td || td->ndim < 1 || td->shape[0] < 1 || C % td->shape[0] != 0)
        return rwkv_fail(err, "%s: blocks.0.att.time_decay must exist with shape (H%s), H "
                              "dividing n_embd = %d",
                         path, per_head ? "" : ", N", C);
    int H = (int)td->shape[0], N = C / H;
    if (rwkv_bind_shape(b, err, H, N, RWKV56_MAX_HEAD, rwkv56_layer_state_floats(C, H, N)) != 0)
        return -1;
    int F = m->info.ffn_dim;

    rwkv5_weights *w = calloc(1, sizeof *w);
    if (!w)
        return rwkv_fail(err, "%s: out of memory", path);
    m->layers = w;
    w->n_layer = L;
    w->layer = calloc((size_t)L, sizeof *w->layer);
    w->att = calloc((size_t)L, sizeof *w->att);
    if (!w->layer || !w->att)
        return rwkv_fail(err, "%s: out of memory", path);
    for (int i = 0; i < L; i++) {
        rwkv5_layer *ly = &w->layer[i];
        w->att[i] = &ly->att;
#define VEC(field, name)                                                              \
    if (!(ly->field = rwkv_bind_vec(b, err, C, "blocks.%d." name, i)))                \
        return -1;
        VEC(ln1_w, "ln1.weight") VEC(ln1_b, "ln1.bias") VEC(mix_k, "att.time_mix_k")
        VEC(mix_v, "att.time_mix_v") VEC(mix_r, "att.time_mix_r")
        if (has_gate)
            VEC(mix_g, "att.time_mix_g")
#undef VEC
        if (!(ly->w = per_channel(b, err, i, "time_decay", C, H, per_head, decay_of)))
            return -1;
        /* the package uses time_faaaa as stored when the file has it */
        if (rwkv_tensor_file_find(b->f, "blocks.0.att.time_faaaa"))
            ly->att.u = per_channel(b, err, i, "time_faaaa", C, H, per_head, NULL);
        else
            ly->att.u = per_channel(b, err, i, "time_first", C, H, per_head, exp);
        if (!ly->att.u)
            return -1;
        if (rwkv56_att_bind(b, err, &ly->att, i, C, H, N, has_gate) ||
            rwkv_cmix_bind(b, err, &ly->ffn, i, C, F, RWKV_SHIFT_MIX))
            return -1;
    }
    return 0;
}

static void free_layers(rwkv_model *m)
{
    rwkv5_weights *w = m->layers;
    if (w) {
        free(w->layer);
        free(w->att);
    }
    free(w);
    m->layers = NULL;
}

static void init_state(const rwkv_model *m, float *state)
{
    const rwkv5_weights *w = m->layers;
    rwkv56_init_state(state, w->n_layer, m->info.n_embd, m->info.n_head, m->info.head_size,
                      w->att);
}

/* the three v5 generations run the same code; bind reads which one */
#define V5_ARCH(gen)                                                                  \
    {.generation = gen, .bind = bind, .free_layers = free_layers,                     \
     .init_state = init_state, .scratch_floats = rwkv5_scratch_floats,                \
     .layer = rwkv5_layer_forward}
const rwkv_arch rwkv_arch_v5_0 = V5_ARCH(RWKV_GEN_V5_0);
const rwkv_arch rwkv_arch_v5_1 = V5_ARCH(RWKV_GEN_V5_1);
const rwkv_arch rwkv_arch_v5_2 = V5_ARCH(RWKV_GEN_V5_2);
