/* lowp_kernels.c — the AVX512-BF16 and AVX512-VNNI GEMVs; see
 * lowp_kernels.h.  Compiled for the base ISA with per-function targets, so
 * the binary runs anywhere and these run only where precision.c found the
 * features. */
#include "core/engine/lowp_kernels.h"

#include <immintrin.h>

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

/* Two accumulators per activation row (even / odd 32-element chunks) hide
 * the dot product's latency; they are folded in the same order always. */
BF16_TARGET
void rwkv_gemv_bf16(const uint16_t *w, int nr, int k, const uint16_t *x, int m, float *y,
                    int ldy, int acc)
{
    int full = k / 32 * 32, rem = k - full;
    __mmask32 tail = rem ? (__mmask32)((1u << rem) - 1) : 0;
    for (int j = 0; j < nr; j++) {
        const uint16_t *wr = w + (long)j * k;
        __m512 a0[4], a1[4];
        for (int i = 0; i < 4; i++)
            a0[i] = a1[i] = _mm512_setzero_ps();
        int c = 0;
        for (; c + 64 <= full; c += 64) {
            __m512i w0 = _mm512_loadu_si512(wr + c), w1 = _mm512_loadu_si512(wr + c + 32);
            for (int i = 0; i < m; i++) {
                const uint16_t *xi = x + (long)i * k;
                a0[i] = _mm512_dpbf16_ps(a0[i], (__m512bh)_mm512_loadu_si512(xi + c), (__m512bh)w0);
                a1[i] = _mm512_dpbf16_ps(a1[i], (__m512bh)_mm512_loadu_si512(xi + c + 32),
                                         (__m512bh)w1);
            }
        }
        if (c < full) {
            __m512i w0 = _mm512_loadu_si512(wr + c);
            for (int i = 0; i < m; i++)
                a0[i] = _mm512_dpbf16_ps(a0[i], (__m512bh)_mm512_loadu_si512(x + (long)i * k + c),
                                         (__m512bh)w0);
            c += 32;
        }
        if (rem) {
            __m512i w0 = _mm512_maskz_loadu_epi16(tail, wr + c);
            for (int i = 0; i < m; i++)
                a1[i] = _mm512_dpbf16_ps(
                    a1[i], (__m512bh)_mm512_maskz_loadu_epi16(tail, x + (long)i * k + c),
                    (__m512bh)w0);
        }
        for (int i = 0; i < m; i++) {
            float s = _mm512_reduce_add_ps(_mm512_add_ps(a0[i], a1[i]));
            float *yo = y + (long)i * ldy + j;
            *yo = acc ? *yo + s : s;
        }
    }
}

VNNI_TARGET
void rwkv_gemv_u8s8(const int8_t *w, int nr, int k, const uint8_t *x, int m, int32_t *out)
{
    int full = k / 64 * 64, rem = k - full;
    __mmask64 tail = rem ? (((__mmask64)1 << rem) - 1) : 0;
    for (int j = 0; j < nr; j++) {
        const int8_t *wr = w + (long)j * k;
        __m512i a0[4], a1[4];
        for (int i = 0; i < 4; i++)
            a0[i] = a1[i] = _mm512_setzero_si512();
        int c = 0;
        for (; c + 128 <= full; c += 128) {
            __m512i w0 = _mm512_loadu_si512(wr + c), w1 = _mm512_loadu_si512(wr + c + 64);
            for (int i = 0; i < m; i++) {
                const uint8_t *xi = x + (long)i * k;
                a0[i] = _mm512_dpbusd_epi32(a0[i], _mm512_loadu_si512(xi + c), w0);
                a1[i] = _mm512_dpbusd_epi32(a1[i], _mm512_loadu_si512(xi + c + 64), w1);
            }
        }
        if (c < full) {
            __m512i w0 = _mm512_loadu_si512(wr + c);
            for (int i = 0; i < m; i++)
                a0[i] = _mm512_dpbusd_epi32(a0[i], _mm512_loadu_si512(x + (long)i * k + c), w0);
            c += 64;
        }
        if (rem) {
            __m512i w0 = _mm512_maskz_loadu_epi8(tail, wr + c);
            for (int i = 0; i < m; i++)
                a1[i] = _mm512_dpbusd_epi32(a1[i],
                                            _mm512_maskz_loadu_epi8(tail, x + (long)i * k + c), w0);
        }
        for (int i = 0; i < m; i++)
            out[(long)i * nr + j] = _mm512_reduce_add_epi32(_mm512_add_epi32(a0[i], a1[i]));
    }
}
