/* rwkv7_wkv.c — the RWKV-7 state update, token by token (the only part of
 * the model that cannot be batched over tokens).  For one head, with the
 * state S[i][j] (i = value channel, j = key channel):
 *
 *   sa[i]   = Σ_j S[i][j]·kk[j]                       (uses the old S)
 *   S[i][j] = S[i][j]·w[j] − sa[i]·kk[j]·a[j] + v[i]·k[j]
 *   y[i]    = Σ_j S[i][j]·r[j]                        (uses the new S)
 *
 * Both sums run over the key index j, so with S stored [i][j] (the official
 * layout) every state row would end in two horizontal reductions per token.
 * Instead the block works on the transpose ST[j][i], copied in once and out
 * once per call: then sa and y are sums of whole rows scaled by scalars
 * (axpy over i), every operation is a plain vector FMA, and a head's state
 * (16 KB for N = 64) stays in L1 across the block's tokens. */
#include "core/engine/rwkv7.h"
#include "core/engine/simd.h"


static void transpose(const float *src, float *dst, int N)
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            dst[(size_t)j * N + i] = src[(size_t)i * N + j];
}

RWKV_CLONES
static void wkv_tokens(float *ST, int N, int T, int ld, const float *r, const float *w,
                       const float *k, const float *v, const float *kk, const float *a, float *y)
{
    float sa[RWKV7_MAX_HEAD];
    for (int t = 0; t < T; t++) {
        const float *rt = r + (size_t)t * ld, *wt = w + (size_t)t * ld;
        const float *kt = k + (size_t)t * ld, *vt = v + (size_t)t * ld;
        const float *kkt = kk + (size_t)t * ld, *at = a + (size_t)t * ld;
        float *yt = y + (size_t)t * ld;
        RWKV_SIMD
        for (int i = 0; i < N; i++)
            sa[i] = 0, yt[i] = 0;
        for (int j = 0; j < N; j++) {
            const float *row = ST + (size_t)j * N;
            float kkj = kkt[j];
            RWKV_SIMD
            for (int i = 0; i < N; i++)
                sa[i] += row[i] * kkj;
        }
        for (int j = 0; j < N; j++) {
            float *row = ST + (size_t)j * N;
            float wj = wt[j], bj = kkt[j] * at[j], kj = kt[j], rj = rt[j];
            RWKV_SIMD
            for (int i = 0; i < N; i++) {
                float s = row[i] * wj - sa[i] * bj + vt[i] * kj;
                row[i] = s;
                yt[i] += s * rj;
            }
        }
    }
}

void rwkv7_wkv_head(float *S, int N, int T, int ld, const float *r, const float *w,
                    const float *k, const float *v, const float *kk, const float *a, float *y)
{
    float ST[RWKV7_MAX_HEAD * RWKV7_MAX_HEAD];
    transpose(S, ST, N);
    wkv_tokens(ST, N, T, ld, r, w, k, v, kk, a, y);
    transpose(ST, S, N);
}
