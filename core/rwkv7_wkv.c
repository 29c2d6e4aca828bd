/* rwkv7_wkv.c — the RWKV-7 state update, token by token (the only part of
 * the model that cannot be batched over tokens).  For one head, with the
 * state S[i][j] (i = value channel, j = key channel):
 *
 *   sa[i]   = Σ_j S[i][j]·kk[j]                       (uses the old S)
 *   S[i][j] = S[i][j]·w[j] − sa[i]·kk[j]·a[j] + v[i]·k[j]
 *   y[i]    = Σ_j S[i][j]·r[j]                        (uses the new S)
 *
 * Each state row is touched twice per token while it sits in L1, and the
 * loops over j vectorise. */
#include "core/rwkv7.h"
#include "core/simd.h"

RWKV_CLONES
void rwkv7_wkv_head(float *S, int N, int T, int ld, const float *r, const float *w,
                    const float *k, const float *v, const float *kk, const float *a, float *y)
{
    float b[1024]; /* kk*a for one token; N <= 1024 is checked at load */
    for (int t = 0; t < T; t++) {
        const float *rt = r + (size_t)t * ld, *wt = w + (size_t)t * ld;
        const float *kt = k + (size_t)t * ld, *vt = v + (size_t)t * ld;
        const float *kkt = kk + (size_t)t * ld, *at = a + (size_t)t * ld;
        float *yt = y + (size_t)t * ld;
        RWKV_SIMD
        for (int j = 0; j < N; j++)
            b[j] = kkt[j] * at[j];
        for (int i = 0; i < N; i++) {
            float *Si = S + (size_t)i * N;
            float sa = 0;
            RWKV_SIMD_SUM(sa)
            for (int j = 0; j < N; j++)
                sa += Si[j] * kkt[j];
            float vi = vt[i], acc = 0;
            RWKV_SIMD_SUM(acc)
            for (int j = 0; j < N; j++) {
                float s = Si[j] * wt[j] - sa * b[j] + vi * kt[j];
                Si[j] = s;
                acc += s * rt[j];
            }
            yt[i] = acc;
        }
    }
}
