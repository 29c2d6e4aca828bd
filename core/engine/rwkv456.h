/* rwkv456.h — the parts RWKV-4, 5.x and 6 share, written once
 * (../shared/rwkv-math.md §1-§3):
 *  - the channel mix σ(Wr·rx) * (Wv·relu(Wk·kx)²), identical in v4/v5/v6
 *    except for the token-shift formula (rwkv456_cmix.c);
 *  - the v5/v6 attention core: r/k/v(/g) projections, the multi-head WKV
 *    recurrence on S[h][key][value], GroupNorm (eps 64e-5), the silu gate
 *    and the output projection.  v5.x and v6 differ only in how the mixed
 *    inputs and the decay are made, which their layer files do before
 *    calling it (rwkv56_att.c, rwkv56_wkv.c);
 *  - the v5/v6 initial state, with a state-tuned checkpoint's time_state.
 * Internal to core/.  All functions run on the engine's pool and follow the
 * batch layout of engine_internal.h (per-document matmul segments, so
 * results never depend on the rest of the batch). */
#ifndef RWKV_RWKV456_H
#define RWKV_RWKV456_H

#include <stddef.h>

#include "core/engine/engine_internal.h"
#include "core/engine/token_shift.h"

/* ---- channel mix ---- */

typedef struct rwkv_cmix {
    const float *ln_w, *ln_b;  /* ln2 */
    const float *mix_k, *mix_r;
    rwkv_shift_form form;      /* MIX: ffn.time_mix_k/r (v4, v5); MAA: ffn.time_maa_k/r (v6) */
    rwkv_matrix key, value, receptance;
} rwkv_cmix;

/* Binds blocks.<layer>.ln2.* and blocks.<layer>.ffn.*: key (F, C), value
 * (C, F), receptance (C, C) and the two mix vectors of `form`.  -1 with err
 * naming the tensor on a missing/misshaped one. */
int rwkv_cmix_bind(rwkv_binder *b, rwkv_error *err, rwkv_cmix *f, int layer, int C, int F,
                   rwkv_shift_form form);

/* Scratch floats per batch row that rwkv_cmix_forward needs. */
size_t rwkv_cmix_scratch_per_row(int C, int F);

/* x += ChannelMix(LN(x; ln2)) over the batch; ffn_x_prev of each state is
 * at `state_off` floats. */
void rwkv_cmix_forward(rwkv_cpu *e, const rwkv_batch *b, const rwkv_cmix *f, int C, int F,
                       size_t state_off, float *x, float *scratch);

/* ---- v5/v6 attention core ---- */

/* Head sizes above this are refused at load (a head's output accumulates
 * in a stack buffer of this many floats). */
#define RWKV56_MAX_HEAD 1024

typedef struct rwkv56_att {
    rwkv_matrix receptance, key, value, output;
    rwkv_matrix gate;          /* gate.data == NULL: no gate (v5.0) */
    const float *u;            /* [C] bonus ("time_first"/"time_faaaa") per (head, key) */
    const float *lnx_w, *lnx_b;
    const float *time_state;   /* [H][N][N] as stored (S transposed), NULL: zeros */
} rwkv56_att;

/* Binds att.receptance/key/value/output (C, C), att.gate (C, C) when
 * has_gate, att.ln_x.* and the optional att.time_state (H, N, N).  u is
 * left to the caller (its form differs by generation). */
int rwkv56_att_bind(rwkv_binder *b, rwkv_error *err, rwkv56_att *a, int layer, int C, int H,
                    int N, int has_gate);

/* What a generation feeds the core, each [M][C]. */
typedef struct rwkv56_inputs {
    const float *rx, *kx, *vx, *gx; /* gx unused without a gate */
    const float *w;   /* decay in (0,1): row m at w + m*ld_w ... */
    int ld_w;         /* ... 0 for a constant per-channel decay (v5) */
} rwkv56_inputs;

size_t rwkv56_att_scratch_per_row(int C);

/* x += TimeMix core over the batch; att_kv of each state is at
 * `kv_off` floats ([H][N][N], S[h][key][value]). */
void rwkv56_att_forward(rwkv_cpu *e, const rwkv_batch *b, const rwkv56_att *a, int C, int H,
                        int N, size_t kv_off, const rwkv56_inputs *in, float *x, float *scratch);

/* One head over T tokens (rows of stride ld in r, k, v, y; the decay rows
 * of stride ld_w, 0 = the same row for every token):
 *   y[j]    = Σ_i r[i]·(u[i]·k[i]·v[j] + S[i][j])
 *   S[i][j] = k[i]·v[j] + w[i]·S[i][j]
 * S is [N][N] (key i, value j), updated in place; N <= RWKV56_MAX_HEAD. */
void rwkv56_wkv_head(float *S, int N, int T, int ld, const float *r, const float *k,
                     const float *v, const float *w, int ld_w, const float *u, float *y);

/* The v5/v6 state of one model: per layer att_x_prev [C] = 0, att_kv =
 * time_state transposed (or 0), ffn_x_prev [C] = 0.  att[l] for each of
 * the L layers. */
void rwkv56_init_state(float *state, int L, int C, int H, int N, const rwkv56_att *const *att);

/* Floats per layer in a v5/v6 (and v7) state. */
static inline size_t rwkv56_layer_state_floats(int C, int H, int N)
{
    return 2 * (size_t)C + (size_t)H * N * N;
}

#endif
