/* rwkv456_cmix.c — the RWKV-4/5/6 channel mix (rwkv-math.md §1, §3):
 *
 *   kx, rx = token shift of LN(x; ln2)
 *   x     += σ(Wr·rx) * (Wv·relu(Wk·kx)²)
 *
 * The three projections are matrix products over the whole batch (Wk and Wr
 * share one parallel region); the activations and the gated residual add
 * run in parallel over rows. */
#include "core/engine/rwkv456.h"

#include "core/engine/simd.h"
#include "core/engine/vecops.h"

#define ROWS_PER_TASK 8

int rwkv_cmix_bind(rwkv_binder *b, rwkv_error *err, rwkv_cmix *f, int layer, int C, int F,
                   rwkv_shift_form form)
{
    const char *kind = form == RWKV_SHIFT_MIX ? "mix" : "maa";
    f->form = form;
    if (!(f->ln_w = rwkv_bind_vec(b, err, C, "blocks.%d.ln2.weight", layer)) ||
        !(f->ln_b = rwkv_bind_vec(b, err, C, "blocks.%d.ln2.bias", layer)) ||
        !(f->mix_k = rwkv_bind_vec(b, err, C, "blocks.%d.ffn.time_%s_k", layer, kind)) ||
        !(f->mix_r = rwkv_bind_vec(b, err, C, "blocks.%d.ffn.time_%s_r", layer, kind)))
        return -1;
    if (rwkv_bind_matrix(b, err, &f->key, F, C, "blocks.%d.ffn.key.weight", layer) ||
        rwkv_bind_matrix(b, err, &f->value, C, F, "blocks.%d.ffn.value.weight", layer) ||
        rwkv_bind_matrix(b, err, &f->receptance, C, C, "blocks.%d.ffn.receptance.weight", layer))
        return -1;
    return 0;
}

size_t rwkv_cmix_scratch_per_row(int C, int F)
{
    return 4 * (size_t)C + (size_t)F;
}

typedef struct {
    int C, F;
    float *r, *hid, *vo, *x;
} cmix_ctx;

RWKV_CLONES
static void gated_add(float *x, const float *r, const float *vo, int n)
{
    RWKV_SIMD
    for (int i = 0; i < n; i++)
        x[i] += rwkv_sigmoidf(r[i]) * vo[i];
}

static void act_rows(void *arg, int m0, int m1)
{
    cmix_ctx *c = arg;
    rwkv_relu_sq_inplace(c->hid + (size_t)m0 * c->F, (m1 - m0) * c->F);
}

static void out_rows(void *arg, int m0, int m1)
{
    cmix_ctx *c = arg;
    size_t o = (size_t)m0 * c->C;
    gated_add(c->x + o, c->r + o, c->vo + o, (m1 - m0) * c->C);
}

void rwkv_cmix_forward(rwkv_cpu *e, const rwkv_batch *b, const rwkv_cmix *f, int C, int F,
                       size_t state_off, float *x, float *scratch)
{
    size_t MC = (size_t)b->M * C;
    float *xx = scratch, *kx = xx + MC, *rx = kx + MC, *r = rx + MC, *hid = r + MC;
    rwkv_shift sh = {.form = f->form, .n_out = 2, .mix = {f->mix_k, f->mix_r}, .out = {kx, rx}};
    rwkv_ln_shift(e, b, C, x, f->ln_w, f->ln_b, state_off, xx, &sh);

    rwkv_segments seg = {b->n_seqs, b->start};
    rwkv_matmul_op in[2] = {
        {&f->key, kx, C, hid, F, 0},
        {&f->receptance, rx, C, r, C, 0},
    };
    rwkv_matmul_many(e->pool, e->mm, &seg, in, 2);
    cmix_ctx c = {C, F, r, hid, xx, x};
    rwkv_parallel_ranges(e, b->M, ROWS_PER_TASK, act_rows, &c);
    rwkv_matmul_op out = {&f->value, hid, F, xx, C, 0};
    rwkv_matmul_many(e->pool, e->mm, &seg, &out, 1);
    rwkv_parallel_ranges(e, b->M, ROWS_PER_TASK, out_rows, &c);
}
