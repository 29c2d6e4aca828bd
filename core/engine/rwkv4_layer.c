/* rwkv4_layer.c — one RWKV-4 layer over a batch (rwkv-math.md §1).
 *
 * The token shift and the r/k/v projections run over the whole batch; the
 * WKV recurrence walks each document's tokens in order, in parallel over
 * (document, block of channels).  It is elementwise per channel, so the
 * inner loop is a plain vector loop over channels and the split into
 * blocks cannot change a result.  The sigmoid of r is applied in the same
 * loop.  Then the output projection and the shared channel mix. */
#include "core/engine/engine_internal.h"
#include "core/engine/rwkv4.h"
#include "core/engine/simd.h"

/* Channels per recurrence task. */
#define WKV_CHUNK 64

size_t rwkv4_scratch_floats(const rwkv_model *m, int M)
{
    int C = m->info.n_embd;
    size_t tmix = 8 * (size_t)C;
    size_t cmix = rwkv_cmix_scratch_per_row(C, m->info.ffn_dim);
    return (tmix > cmix ? tmix : cmix) * (size_t)M;
}

/* For n channels over T tokens (rows of stride ld):
 *   ww = u + k;  p = max(pp, ww);  e1 = exp(pp - p);  e2 = exp(ww - p)
 *   y  = σ(r) * (e1*aa + e2*v) / (e1*bb + e2)
 *   ww = w + pp; p = max(ww, k);   e1 = exp(ww - p);  e2 = exp(k - p)
 *   aa = e1*aa + e2*v;  bb = e1*bb + e2;  pp = p */
RWKV_CLONES
static void wkv4(float *aa, float *bb, float *pp, int n, int T, int ld, const float *decay,
                 const float *first, const float *r, const float *k, const float *v, float *y)
{
    for (int t = 0; t < T; t++) {
        const float *rt = r + (size_t)t * ld, *kt = k + (size_t)t * ld, *vt = v + (size_t)t * ld;
        float *yt = y + (size_t)t * ld;
        RWKV_SIMD
        for (int c = 0; c < n; c++) {
            float kc = kt[c], vc = vt[c], a = aa[c], bq = bb[c], p = pp[c];
            float ww = first[c] + kc;
            float q = p > ww ? p : ww;
            float e1 = rwkv_expf(p - q), e2 = rwkv_expf(ww - q);
            float wkv = (e1 * a + e2 * vc) / (e1 * bq + e2);
            ww = decay[c] + p;
            q = ww > kc ? ww : kc;
            e1 = rwkv_expf(ww - q);
            e2 = rwkv_expf(kc - q);
            aa[c] = e1 * a + e2 * vc;
            bb[c] = e1 * bq + e2;
            pp[c] = q;
            yt[c] = rwkv_sigmoidf(rt[c]) * wkv;
        }
    }
}

typedef struct {
    const rwkv_batch *b;
    const rwkv4_layer *ly;
    int C, n_chunks;
    size_t lstate;
    const float *r, *k, *v;
    float *y;
} v4_ctx;

static void wkv_task(void *arg, int task, int thread)
{
    (void)thread;
    v4_ctx *c = arg;
    int s = task / c->n_chunks, c0 = (task % c->n_chunks) * WKV_CHUNK;
    int n = c->C - c0 < WKV_CHUNK ? c->C - c0 : WKV_CHUNK;
    int m0 = c->b->start[s], T = c->b->start[s + 1] - m0;
    size_t C = (size_t)c->C, o = (size_t)m0 * C + (size_t)c0;
    float *st = c->b->state[s] + c->lstate + (size_t)c0;
    wkv4(st + RWKV4_AA * C, st + RWKV4_BB * C, st + RWKV4_PP * C, n, T, c->C,
         c->ly->decay + c0, c->ly->first + c0, c->r + o, c->k + o, c->v + o, c->y + o);
}

void rwkv4_layer_forward(rwkv_cpu *e, int layer, const rwkv_batch *b, float *x, float *scratch)
{
    const rwkv_model *m = e->model;
    const rwkv4_weights *w = m->layers;
    const rwkv4_layer *ly = &w->layer[layer];
    int C = m->info.n_embd, F = m->info.ffn_dim;
    size_t lstate = (size_t)layer * RWKV4_STATE_VECS * (size_t)C;
    size_t MC = (size_t)b->M * C;
    float *xx = scratch, *kx = xx + MC, *vx = kx + MC, *rx = vx + MC;
    float *r = rx + MC, *k = r + MC, *v = k + MC, *y = v + MC;

    rwkv_shift sh = {.form = RWKV_SHIFT_MIX,
                     .n_out = 3,
                     .mix = {ly->mix_k, ly->mix_v, ly->mix_r},
                     .out = {kx, vx, rx}};
    rwkv_ln_shift(e, b, C, x, ly->ln1_w, ly->ln1_b, lstate + RWKV4_X_PREV * (size_t)C, xx, &sh);
    rwkv_segments seg = {b->n_seqs, b->start};
    rwkv_matmul_op proj[3] = {
        {&ly->receptance, rx, C, r, C, 0},
        {&ly->key, kx, C, k, C, 0},
        {&ly->value, vx, C, v, C, 0},
    };
    rwkv_matmul_many(e->pool, e->mm, &seg, proj, 3);
    v4_ctx c = {b, ly, C, (C + WKV_CHUNK - 1) / WKV_CHUNK, lstate, r, k, v, y};
    rwkv_pool_run(e->pool, b->n_seqs * c.n_chunks, wkv_task, &c);
    rwkv_matmul_op out = {&ly->output, y, C, x, C, 1};
    rwkv_matmul_many(e->pool, e->mm, &seg, &out, 1);
    rwkv_cmix_forward(e, b, &ly->ffn, C, F, lstate + RWKV4_FFN_X_PREV * (size_t)C, x, scratch);
}
