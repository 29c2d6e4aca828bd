/* token_shift.h — the step that opens every RWKV sub-block: LayerNorm each
 * row of the residual stream, then mix each row with the previous token's
 * normalised row ("token shift"), over a whole batch of documents.
 *
 * The previous row of a document's first token is the value saved in its
 * state (att_x_prev or ffn_x_prev); after mixing, each document's last
 * normalised row is saved there for the next call.  Mixing needs the row
 * above, which another thread may be normalising, so normalisation and
 * mixing are two parallel passes.  Every generation uses this; the formula
 * differs (rwkv-math.md):
 *   RWKV_SHIFT_MIX (v4, v5):  y = x*mix + prev*(1-mix)
 *   RWKV_SHIFT_MAA (v6, v7):  y = x + (prev-x)*mix
 * Internal to core/.  Not thread safe per call (it runs on the engine's
 * pool); results depend only on each row's values, never on the batch. */
#ifndef RWKV_TOKEN_SHIFT_H
#define RWKV_TOKEN_SHIFT_H

#include <stddef.h>

#include "core/engine/engine_internal.h"

#define RWKV_SHIFT_MAX_OUT 6

typedef enum rwkv_shift_form {
    RWKV_SHIFT_MIX,
    RWKV_SHIFT_MAA,
} rwkv_shift_form;

typedef struct rwkv_shift {
    rwkv_shift_form form;
    int n_out;                               /* 0..RWKV_SHIFT_MAX_OUT */
    const float *mix[RWKV_SHIFT_MAX_OUT];    /* [C] each */
    float *out[RWKV_SHIFT_MAX_OUT];          /* [M][C] each */
    float *delta;                            /* optional [M][C]: prev - x (v6) */
} rwkv_shift;

/* xx[m] = LN(x[m]; ln_w, ln_b, eps 1e-5) for every row, then the mixes of
 * `sh`, then each document's last xx row is written to its state at
 * `state_off` floats (the slot the previous row came from).  x, xx and the
 * outputs are [b->M][C]; xx must not alias x or an output. */
void rwkv_ln_shift(rwkv_cpu *e, const rwkv_batch *b, int C, const float *x, const float *ln_w,
                   const float *ln_b, size_t state_off, float *xx, const rwkv_shift *sh);

#endif
