/* rwkv56_wkv.c — the RWKV-5/6 state update, token by token, for one head:
 *
 *   y[j]    = Σ_i r[i]·(u[i]·k[i]·v[j] + S[i][j])
 *   S[i][j] = k[i]·v[j] + w[i]·S[i][j]
 *
 * with S[i][j] indexed (key i, value j), the official v5/v6 layout.  Both
 * lines walk row i of S scaled by per-row scalars, so the inner loop over j
 * is two plain vector FMAs per element and no row ever needs a horizontal
 * sum: y accumulates row by row in a fixed order (i ascending), whatever the
 * vector width.  A head's state (N² floats, 16 KB for N = 64) stays in L1
 * across the block's tokens.  v5.x passes one decay row for all tokens
 * (ld_w = 0); v6 one row per token. */
#include "core/engine/rwkv456.h"
#include "core/engine/simd.h"

RWKV_CLONES
void rwkv56_wkv_head(float *S, int N, int T, int ld, const float *r, const float *k,
                     const float *v, const float *w, int ld_w, const float *u, float *y)
{
    float acc[RWKV56_MAX_HEAD];
    for (int t = 0; t < T; t++) {
        const float *rt = r + (size_t)t * ld, *kt = k + (size_t)t * ld;
        const float *restrict vt = v + (size_t)t * ld;
        const float *wt = w + (size_t)t * ld_w;
        RWKV_SIMD
        for (int j = 0; j < N; j++)
            acc[j] = 0;
        for (int i = 0; i < N; i++) {
            float *restrict row = S + (size_t)i * N;
            float ri = rt[i], ki = kt[i], wi = wt[i], ruk = ri * u[i] * ki;
            RWKV_SIMD
            for (int j = 0; j < N; j++) {
                float s = row[j];
                acc[j] += ri * s + ruk * vt[j];
                row[j] = s * wi + ki * vt[j];
            }
        }
        float *yt = y + (size_t)t * ld;
        RWKV_SIMD
        for (int j = 0; j < N; j++)
            yt[j] = acc[j];
    }
}
