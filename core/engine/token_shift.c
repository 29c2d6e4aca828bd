/* token_shift.c — see token_shift.h. */
#include "core/engine/token_shift.h"

#include <string.h>

#include "core/engine/simd.h"
#include "core/engine/vecops.h"

#define LN_EPS 1e-5f
#define ROWS_PER_TASK 8

typedef struct {
    const rwkv_batch *b;
    int C;
    const float *x, *ln_w, *ln_b;
    size_t state_off;
    float *xx;
    const rwkv_shift *sh;
} shift_ctx;

static void ln_rows(void *arg, int m0, int m1)
{
    shift_ctx *c = arg;
    for (int m = m0; m < m1; m++)
        rwkv_layernorm(c->x + (size_t)m * c->C, c->xx + (size_t)m * c->C, c->C, c->ln_w, c->ln_b,
                       LN_EPS);
}

/* Index of the batch document that row m belongs to. */
static int seq_of(const rwkv_batch *b, int m)
{
    int lo = 0, hi = b->n_seqs - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (b->start[mid] <= m)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

RWKV_CLONES
static void mix_old(const float *x, const float *prev, const float *mix, float *y, int n)
{
    RWKV_SIMD
    for (int i = 0; i < n; i++)
        y[i] = x[i] * mix[i] + prev[i] * (1.0f - mix[i]);
}

RWKV_CLONES
static void sub(const float *a, const float *b, float *y, int n)
{
    RWKV_SIMD
    for (int i = 0; i < n; i++)
        y[i] = a[i] - b[i];
}

static void shift_rows(void *arg, int m0, int m1)
{
    shift_ctx *c = arg;
    const rwkv_shift *sh = c->sh;
    int s = seq_of(c->b, m0);
    for (int m = m0; m < m1; m++) {
        while (c->b->start[s + 1] <= m)
            s++;
        size_t o = (size_t)m * c->C;
        const float *xr = c->xx + o;
        const float *prev = m == c->b->start[s] ? c->b->state[s] + c->state_off : xr - c->C;
        for (int i = 0; i < sh->n_out; i++) {
            if (sh->form == RWKV_SHIFT_MIX)
                mix_old(xr, prev, sh->mix[i], sh->out[i] + o, c->C);
            else
                rwkv_lerp(xr, prev, sh->mix[i], sh->out[i] + o, c->C);
        }
        if (sh->delta)
            sub(prev, xr, sh->delta + o, c->C);
    }
}

void rwkv_ln_shift(rwkv_cpu *e, const rwkv_batch *b, int C, const float *x, const float *ln_w,
                   const float *ln_b, size_t state_off, float *xx, const rwkv_shift *sh)
{
    shift_ctx c = {b, C, x, ln_w, ln_b, state_off, xx, sh};
    rwkv_parallel_ranges(e, b->M, ROWS_PER_TASK, ln_rows, &c);
    rwkv_parallel_ranges(e, b->M, ROWS_PER_TASK, shift_rows, &c);
    for (int s = 0; s < b->n_seqs; s++)
        memcpy(b->state[s] + state_off, xx + (size_t)(b->start[s + 1] - 1) * C,
               (size_t)C * sizeof(float));
}
