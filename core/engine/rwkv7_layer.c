/* rwkv7_layer.c — one RWKV-7 layer over a batch of tokens
 * (../shared/rwkv-math.md §4).
 *
 * Shape of the work: every projection (receptance/key/value/output, the
 * LoRA factors, the FFN) is one matrix-matrix product over all M tokens of
 * the batch; the cheap per-token arithmetic runs in parallel over rows; only
 * the WKV recurrence walks tokens in order, in parallel over (document,
 * head).  LayerNorm and token shift are the step every generation shares
 * (token_shift.c): the previous row of the same document, or the
 * document's state for its first row. */
#include <math.h>
#include <string.h>

#include "core/engine/engine_internal.h"
#include "core/engine/rwkv7.h"
#include "core/engine/simd.h"
#include "core/engine/token_shift.h"
#include "core/engine/vecops.h"

/* The decay constant of the official x070 code (≈ e^-0.5, rounded). */
#define RWKV7_DECAY_SCALE 0.606531f
#define GN_EPS 64e-5f

enum { MIX_R, MIX_W, MIX_K, MIX_V, MIX_A, MIX_G, N_MIX };

typedef struct {
    const rwkv_model *m;
    const rwkv7_weights *wts;
    const rwkv7_layer *ly;
    const rwkv_batch *b;
    int layer, C, H, N, F, M;
    size_t lstate; /* offset of this layer in a state */
    float *x;
    /* scratch, each [M][C] unless noted */
    float *vfirst, *xx, *mix[N_MIX], *r, *w, *k, *v, *a, *g, *kk, *y, *vm;
    float *hw, *ha, *hg, *hv; /* LoRA hidden, [M][width] */
    float *hid;               /* FFN hidden [M][F] */
} v7;

size_t rwkv7_scratch_floats(const rwkv_model *m, int M)
{
    const rwkv7_weights *w = m->layers;
    size_t C = (size_t)m->info.n_embd;
    size_t per_row = 17 * C + (size_t)(w->lora_w + w->lora_a + w->lora_g + w->lora_v) +
                     (size_t)m->info.ffn_dim;
    return per_row * (size_t)M;
}

static void carve(v7 *c, float *scratch)
{
    size_t MC = (size_t)c->M * c->C;
    const rwkv7_weights *w = c->wts;
    float *p = scratch;
    /* vfirst comes first: it must survive from layer 0 to the last layer */
    c->vfirst = p, p += MC;
    c->xx = p, p += MC;
    for (int i = 0; i < N_MIX; i++)
        c->mix[i] = p, p += MC;
    c->r = p, p += MC;
    c->w = p, p += MC;
    c->k = p, p += MC;
    c->v = p, p += MC;
    c->a = p, p += MC;
    c->g = p, p += MC;
    c->kk = p, p += MC;
    c->y = p, p += MC;
    c->vm = p, p += MC;
    c->hw = p, p += (size_t)c->M * w->lora_w;
    c->ha = p, p += (size_t)c->M * w->lora_a;
    c->hg = p, p += (size_t)c->M * w->lora_g;
    c->hv = p, p += (size_t)c->M * w->lora_v;
    c->hid = p;
}

static void lora_act_rows(void *arg, int m0, int m1)
{
    v7 *c = arg;
    int dw = c->wts->lora_w, dg = c->wts->lora_g;
    rwkv_tanh_inplace(c->hw + (size_t)m0 * dw, (m1 - m0) * dw);
    rwkv_sigmoid_inplace(c->hg + (size_t)m0 * dg, (m1 - m0) * dg);
}

RWKV_CLONES
static void decay_gate_rows(const rwkv7_layer *ly, float *w, float *a, float *k, float *kk,
                            int n)
{
    RWKV_SIMD
    for (int i = 0; i < n; i++) {
        float ai = rwkv_sigmoidf(ly->a0[i] + a[i]);
        a[i] = ai;
        w[i] = rwkv_expf(-RWKV7_DECAY_SCALE * rwkv_sigmoidf(ly->w0[i] + w[i]));
        kk[i] = k[i] * ly->k_k[i];
        k[i] = k[i] * (1.0f + (ai - 1.0f) * ly->k_a[i]);
    }
}

RWKV_CLONES
static void value_residual(const float *v0, const float *vfirst, const float *vm, float *v, int n)
{
    RWKV_SIMD
    for (int i = 0; i < n; i++)
        v[i] += (vfirst[i] - v[i]) * rwkv_sigmoidf(v0[i] + vm[i]);
}

static void l2_normalize_heads(float *kk, int H, int N)
{
    for (int h = 0; h < H; h++) {
        float *p = kk + (size_t)h * N;
        double s = 0;
        for (int j = 0; j < N; j++)
            s += (double)p[j] * p[j];
        float norm = (float)sqrt(s);
        float inv = 1.0f / (norm > 1e-12f ? norm : 1e-12f);
        for (int j = 0; j < N; j++)
            p[j] *= inv;
    }
}

void rwkv7_prepare_row(const rwkv7_layer *ly, int first_layer, int H, int N, float *w, float *a,
                       float *k, float *kk, float *v, float *vfirst, const float *vm)
{
    int C = H * N;
    decay_gate_rows(ly, w, a, k, kk, C);
    l2_normalize_heads(kk, H, N);
    if (first_layer)
        memcpy(vfirst, v, (size_t)C * sizeof(float));
    else
        value_residual(ly->v0, vfirst, vm, v, C);
}

static void elementwise_rows(void *arg, int m0, int m1)
{
    v7 *c = arg;
    for (int m = m0; m < m1; m++) {
        size_t o = (size_t)m * c->C;
        rwkv7_prepare_row(c->ly, c->layer == 0, c->H, c->N, c->w + o, c->a + o, c->k + o,
                          c->kk + o, c->v + o, c->vfirst + o, c->vm + o);
    }
}

static void wkv_task(void *arg, int task, int thread)
{
    (void)thread;
    v7 *c = arg;
    int s = task / c->H, h = task % c->H;
    int m0 = c->b->start[s], T = c->b->start[s + 1] - m0;
    size_t o = (size_t)m0 * c->C + (size_t)h * c->N;
    float *S = c->b->state[s] + c->lstate + c->C + (size_t)h * c->N * c->N;
    rwkv7_wkv_head(S, c->N, T, c->C, c->r + o, c->w + o, c->k + o, c->v + o, c->kk + o,
                   c->a + o, c->y + o);
}

RWKV_CLONES
static float dot3(const float *a, const float *b, const float *d, int n)
{
    float s;
#define T3(i) (a[i] * b[i] * d[i])
    RWKV_LANE_SUM(s, n, T3);
#undef T3
    return s;
}

void rwkv7_output_row(const rwkv7_layer *ly, int H, int N, float *y, const float *r,
                      const float *k, const float *v, const float *g)
{
    rwkv_groupnorm(y, y, H, N, ly->lnx_w, ly->lnx_b, GN_EPS);
    for (int h = 0; h < H; h++) {
        size_t ho = (size_t)h * N;
        float bonus = dot3(r + ho, k + ho, ly->r_k + ho, N);
        for (int j = 0; j < N; j++)
            y[ho + j] += bonus * v[ho + j];
    }
    rwkv_mul_inplace(y, g, H * N);
}

static void output_rows(void *arg, int m0, int m1)
{
    v7 *c = arg;
    for (int m = m0; m < m1; m++) {
        size_t o = (size_t)m * c->C;
        rwkv7_output_row(c->ly, c->H, c->N, c->y + o, c->r + o, c->k + o, c->v + o, c->g + o);
    }
}

static void relu_sq_rows(void *arg, int m0, int m1)
{
    v7 *c = arg;
    rwkv_relu_sq_inplace(c->hid + (size_t)m0 * c->F, (m1 - m0) * c->F);
}

void rwkv7_layer_forward(rwkv_cpu *e, int layer, const rwkv_batch *b, float *x, float *scratch)
{
    const rwkv_model *m = e->model;
    v7 c = {.m = m, .wts = m->layers, .b = b, .layer = layer, .C = m->info.n_embd,
            .H = m->info.n_head, .N = m->info.head_size, .F = m->info.ffn_dim, .M = b->M, .x = x};
    c.ly = &c.wts->layer[layer];
    c.lstate = (size_t)layer * rwkv7_layer_state_floats(c.C, c.H, c.N);
    carve(&c, scratch);
    const rwkv7_layer *ly = c.ly;
    int M = c.M, C = c.C;
    const int rows_per_task = 8;

    /* time mix: inputs */
    rwkv_shift sh = {.form = RWKV_SHIFT_MAA,
                     .n_out = N_MIX,
                     .mix = {ly->x_r, ly->x_w, ly->x_k, ly->x_v, ly->x_a, ly->x_g},
                     .out = {c.mix[MIX_R], c.mix[MIX_W], c.mix[MIX_K], c.mix[MIX_V],
                             c.mix[MIX_A], c.mix[MIX_G]}};
    rwkv_ln_shift(e, b, C, x, ly->ln1_w, ly->ln1_b, c.lstate, c.xx, &sh);

    rwkv_matmul_op first[7] = {
        {&ly->receptance, c.mix[MIX_R], C, c.r, C, 0},
        {&ly->key, c.mix[MIX_K], C, c.k, C, 0},
        {&ly->value, c.mix[MIX_V], C, c.v, C, 0},
        {&ly->w1, c.mix[MIX_W], C, c.hw, c.wts->lora_w, 0},
        {&ly->a1, c.mix[MIX_A], C, c.ha, c.wts->lora_a, 0},
        {&ly->g1, c.mix[MIX_G], C, c.hg, c.wts->lora_g, 0},
        {&ly->v1, c.mix[MIX_V], C, c.hv, c.wts->lora_v, 0},
    };
    rwkv_segments seg = {b->n_seqs, b->start};
    rwkv_matmul_many(e->pool, e->mm, &seg, first, layer > 0 ? 7 : 6);
    rwkv_parallel_ranges(e, M, rows_per_task, lora_act_rows, &c);
    rwkv_matmul_op second[4] = {
        {&ly->w2, c.hw, c.wts->lora_w, c.w, C, 0},
        {&ly->a2, c.ha, c.wts->lora_a, c.a, C, 0},
        {&ly->g2, c.hg, c.wts->lora_g, c.g, C, 0},
        {&ly->v2, c.hv, c.wts->lora_v, c.vm, C, 0},
    };
    rwkv_matmul_many(e->pool, e->mm, &seg, second, layer > 0 ? 4 : 3);
    rwkv_parallel_ranges(e, M, rows_per_task, elementwise_rows, &c);

    /* the recurrence, then the output projection into the residual */
    rwkv_pool_run(e->pool, b->n_seqs * c.H, wkv_task, &c);
    rwkv_parallel_ranges(e, M, rows_per_task, output_rows, &c);
    rwkv_matmul_op out = {&ly->output, c.y, C, x, C, 1};
    rwkv_matmul_many(e->pool, e->mm, &seg, &out, 1);

    /* channel mix */
    rwkv_shift fsh = {.form = RWKV_SHIFT_MAA, .n_out = 1, .mix = {ly->ffn_x_k},
                      .out = {c.mix[0]}};
    rwkv_ln_shift(e, b, C, x, ly->ln2_w, ly->ln2_b,
                  c.lstate + (size_t)C + (size_t)c.H * c.N * c.N, c.xx, &fsh);
    rwkv_matmul_op fk = {&ly->ffn_key, c.mix[0], C, c.hid, c.F, 0};
    rwkv_matmul_many(e->pool, e->mm, &seg, &fk, 1);
    rwkv_parallel_ranges(e, M, rows_per_task, relu_sq_rows, &c);
    rwkv_matmul_op fv = {&ly->ffn_value, c.hid, c.F, x, C, 1};
    rwkv_matmul_many(e->pool, e->mm, &seg, &fv, 1);
}
