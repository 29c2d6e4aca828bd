/* rwkv6_layer.c — one RWKV-6 layer over a batch (rwkv-math.md §3):
 *
 *   xx = LN(x; ln1), sx = prev - xx, xxx = xx + sx*maa_x       (token_shift.c)
 *   m_f = tanh(xxx·maa_w1)_f · maa_w2[f]      f = w, k, v, r, g
 *   fx  = xx + sx*(maa_f + m_f)
 *   w   = exp(-exp(time_decay + tanh(wx·decay_w1)·decay_w2))   per token
 *   then the v5/v6 attention core and the channel mix (rwkv456.h).
 * Every LoRA factor is a batch product; the elementwise steps run over
 * rows in parallel. */
#include "core/engine/engine_internal.h"
#include "core/engine/rwkv6.h"
#include "core/engine/simd.h"
#include "core/engine/vecops.h"

#define ROWS_PER_TASK 8

size_t rwkv6_scratch_floats(const rwkv_model *m, int M)
{
    const rwkv6_weights *w = m->layers;
    int C = m->info.n_embd;
    size_t tmix = (3 + RWKV6_N_MIX + 1) * (size_t)C + (size_t)RWKV6_N_MIX * w->lora_maa +
                  (size_t)w->lora_decay + rwkv56_att_scratch_per_row(C);
    size_t cmix = rwkv_cmix_scratch_per_row(C, m->info.ffn_dim);
    return (tmix > cmix ? tmix : cmix) * (size_t)M;
}

typedef struct {
    const rwkv6_layer *ly;
    int C, D, Dd;
    float *xx, *sx, *hm, *mix[RWKV6_N_MIX], *hd, *w;
} v6_ctx;

static void tanh_maa_rows(void *arg, int m0, int m1)
{
    v6_ctx *c = arg;
    size_t w = (size_t)RWKV6_N_MIX * c->D;
    rwkv_tanh_inplace(c->hm + (size_t)m0 * w, (int)((size_t)(m1 - m0) * w));
}

RWKV_CLONES
static void ddlerp(const float *xx, const float *sx, const float *maa, float *m, int n)
{
    RWKV_SIMD
    for (int i = 0; i < n; i++)
        m[i] = xx[i] + sx[i] * (maa[i] + m[i]);
}

static void mix_rows(void *arg, int m0, int m1)
{
    v6_ctx *c = arg;
    for (int m = m0; m < m1; m++) {
        size_t o = (size_t)m * c->C;
        for (int f = 0; f < RWKV6_N_MIX; f++)
            ddlerp(c->xx + o, c->sx + o, c->ly->maa[f], c->mix[f] + o, c->C);
    }
}

static void tanh_decay_rows(void *arg, int m0, int m1)
{
    v6_ctx *c = arg;
    rwkv_tanh_inplace(c->hd + (size_t)m0 * c->Dd, (m1 - m0) * c->Dd);
}

RWKV_CLONES
static void decay(const float *base, float *w, int n)
{
    RWKV_SIMD
    for (int i = 0; i < n; i++)
        w[i] = rwkv_expf(-rwkv_expf(base[i] + w[i]));
}

static void decay_rows(void *arg, int m0, int m1)
{
    v6_ctx *c = arg;
    for (int m = m0; m < m1; m++)
        decay(c->ly->time_decay, c->w + (size_t)m * c->C, c->C);
}

void rwkv6_layer_forward(rwkv_cpu *e, int layer, const rwkv_batch *b, float *x, float *scratch)
{
    const rwkv_model *m = e->model;
    const rwkv6_weights *wts = m->layers;
    const rwkv6_layer *ly = &wts->layer[layer];
    int C = m->info.n_embd, H = m->info.n_head, N = m->info.head_size, F = m->info.ffn_dim;
    int D = wts->lora_maa, Dd = wts->lora_decay, M = b->M;
    size_t lstate = (size_t)layer * rwkv56_layer_state_floats(C, H, N);
    size_t MC = (size_t)M * C;
    v6_ctx c = {.ly = ly, .C = C, .D = D, .Dd = Dd};
    float *p = scratch;
    c.xx = p, p += MC;
    c.sx = p, p += MC;
    float *xxx = p;
    p += MC;
    for (int f = 0; f < RWKV6_N_MIX; f++)
        c.mix[f] = p, p += MC;
    c.w = p, p += MC;
    c.hm = p, p += (size_t)M * RWKV6_N_MIX * D;
    c.hd = p, p += (size_t)M * Dd;
    float *core = p;

    rwkv_shift sh = {.form = RWKV_SHIFT_MAA, .n_out = 1, .mix = {ly->maa_x}, .out = {xxx},
                     .delta = c.sx};
    rwkv_ln_shift(e, b, C, x, ly->ln1_w, ly->ln1_b, lstate, c.xx, &sh);

    /* data-dependent mixes */
    rwkv_segments seg = {b->n_seqs, b->start};
    rwkv_matmul_op h = {&ly->maa_w1, xxx, C, c.hm, RWKV6_N_MIX * D, 0};
    rwkv_matmul_many(e->pool, e->mm, &seg, &h, 1);
    rwkv_parallel_ranges(e, M, ROWS_PER_TASK, tanh_maa_rows, &c);
    rwkv_matmul_op mo[RWKV6_N_MIX];
    for (int f = 0; f < RWKV6_N_MIX; f++)
        mo[f] = (rwkv_matmul_op){&ly->maa_w2[f], c.hm + (size_t)f * D, RWKV6_N_MIX * D,
                                 c.mix[f], C, 0};
    rwkv_matmul_many(e->pool, e->mm, &seg, mo, RWKV6_N_MIX);
    rwkv_parallel_ranges(e, M, ROWS_PER_TASK, mix_rows, &c);

    /* data-dependent decay */
    rwkv_matmul_op d1 = {&ly->decay_w1, c.mix[RWKV6_W], C, c.hd, Dd, 0};
    rwkv_matmul_many(e->pool, e->mm, &seg, &d1, 1);
    rwkv_parallel_ranges(e, M, ROWS_PER_TASK, tanh_decay_rows, &c);
    rwkv_matmul_op d2 = {&ly->decay_w2, c.hd, Dd, c.w, C, 0};
    rwkv_matmul_many(e->pool, e->mm, &seg, &d2, 1);
    rwkv_parallel_ranges(e, M, ROWS_PER_TASK, decay_rows, &c);

    rwkv56_inputs in = {.rx = c.mix[RWKV6_R], .kx = c.mix[RWKV6_K], .vx = c.mix[RWKV6_V],
                        .gx = c.mix[RWKV6_G], .w = c.w, .ld_w = C};
    rwkv56_att_forward(e, b, &ly->att, C, H, N, lstate + (size_t)C, &in, x, core);
    rwkv_cmix_forward(e, b, &ly->ffn, C, F, lstate + (size_t)C + (size_t)H * N * N, x, scratch);
}
