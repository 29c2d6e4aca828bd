/* lowp_kernels.c — the AVX512-BF16 and AVX512-VNNI GEMVs; see
 * lowp_kernels.h.  Compiled for the base ISA with per-function targets, so
 * the binary runs anywhere and these run only where precision.c found the
 * features. */
#include "core/engine/lowp_kernels.h"

#include <immintrin.h>

#include "core/engine/prefetch.h"

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
    size_t row_bytes = (size_t)k * sizeof *w;
    for (int j = 0; j < nr; j++) {
        const uint16_t *wr = w + (long)j * k;
        rwkv_prefetch_ahead(w, (size_t)j * row_bytes, row_bytes, (size_t)nr * row_bytes);
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

/* int32 sums are flushed to float every FLUSH inputs: a lane adds FLUSH/16
 * products of at most 32767 * 127 in that span, far from 2^31. */
#define FLUSH 4096

/* M activation rows against one weight row: M is a constant in each
 * instantiation, so the accumulators live in registers. */
#define W8A16_ROWS(M)                                                                         \
    VNNI_TARGET static inline __attribute__((always_inline)) void w8a16_row_##M(               \
        const int8_t *wr, int kp, const int16_t *x, float *out)                               \
    {                                                                                         \
        __m512 f[M];                                                                          \
        for (int i = 0; i < M; i++)                                                           \
            f[i] = _mm512_setzero_ps();                                                       \
        for (int c0 = 0; c0 < kp; c0 += FLUSH) {                                              \
            int c1 = c0 + FLUSH < kp ? c0 + FLUSH : kp;                                       \
            __m512i a[M];                                                                     \
            for (int i = 0; i < M; i++)                                                       \
                a[i] = _mm512_setzero_si512();                                                \
            for (int c = c0; c < c1; c += 32) {                                               \
                __m512i wv = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const void *)(wr + c))); \
                for (int i = 0; i < M; i++)                                                   \
                    a[i] = _mm512_dpwssd_epi32(a[i], _mm512_loadu_si512(x + (long)i * kp + c), \
                                               wv);                                           \
            }                                                                                 \
            for (int i = 0; i < M; i++)                                                       \
                f[i] = _mm512_add_ps(f[i], _mm512_cvtepi32_ps(a[i]));                         \
        }                                                                                     \
        for (int i = 0; i < M; i++)                                                           \
            out[i] = _mm512_reduce_add_ps(f[i]);                                              \
    }
W8A16_ROWS(1)
W8A16_ROWS(2)
W8A16_ROWS(3)
W8A16_ROWS(4)

/* The loop over weight rows around a row kernel family (ROW##1..4), the
 * same for both instruction sets; TARGET lets the row kernels inline. */
#define W8A16_GEMV(NAME, TARGET, ROW)                                                         \
    TARGET void NAME(const int8_t *w, const float *ws, int nr, int kp, const int16_t *x,      \
                     const float *xs, int m, float *y, int ldy, int acc)                      \
    {                                                                                         \
        for (int j = 0; j < nr; j++) {                                                        \
            const int8_t *wr = w + (long)j * kp;                                              \
            rwkv_prefetch_ahead(w, (size_t)j * kp, (size_t)kp, (size_t)nr * kp);              \
            float s[4];                                                                       \
            switch (m) {                                                                      \
            case 1: ROW##1(wr, kp, x, s); break;                                              \
            case 2: ROW##2(wr, kp, x, s); break;                                              \
            case 3: ROW##3(wr, kp, x, s); break;                                              \
            default: ROW##4(wr, kp, x, s); break;                                             \
            }                                                                                 \
            for (int i = 0; i < m; i++) {                                                     \
                float v = s[i] * ws[j] * xs[i];                                               \
                float *yo = y + (long)i * ldy + j;                                            \
                *yo = acc ? *yo + v : v;                                                      \
            }                                                                                 \
        }                                                                                     \
    }
W8A16_GEMV(rwkv_gemv_w8a16, VNNI_TARGET, w8a16_row_)

/* ---- the same int8 product on AVX2 + AVX-VNNI (no AVX-512) ---- */

#define AVXVNNI_TARGET __attribute__((target("avx2,fma,avxvnni")))

/* The 16 lanes of the AVX-512 kernel as two halves: lo holds lanes 0..7
 * (inputs 0..15 of every 32), hi lanes 8..15 (inputs 16..31); each lane sums
 * the same products, flushes at the same points, and the halves are folded
 * as _mm512_reduce_add_ps folds (GCC's avx512fintrin.h: the 256-bit
 * halves, then the 128-bit ones, then pairs), so both kernels give the same
 * bits (tests/test_int8_avx2.c). */
AVXVNNI_TARGET
static inline float fold16(__m256 lo, __m256 hi)
{
    __m256 t3 = _mm256_add_ps(hi, lo);
    __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
    __m128 t8 = _mm_add_ps(t6, _mm_shuffle_ps(t6, t6, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtss_f32(t8) + _mm_cvtss_f32(_mm_shuffle_ps(t8, t8, 1));
}

#define W8A16_ROWS_AVX2(M)                                                                    \
    AVXVNNI_TARGET static inline __attribute__((always_inline)) void w8a16_avx2_row_##M(      \
        const int8_t *wr, int kp, const int16_t *x, float *out)                               \
    {                                                                                         \
        __m256 flo[M], fhi[M];                                                                \
        for (int i = 0; i < M; i++)                                                           \
            flo[i] = fhi[i] = _mm256_setzero_ps();                                            \
        for (int c0 = 0; c0 < kp; c0 += FLUSH) {                                              \
            int c1 = c0 + FLUSH < kp ? c0 + FLUSH : kp;                                       \
            __m256i alo[M], ahi[M];                                                           \
            for (int i = 0; i < M; i++)                                                       \
                alo[i] = ahi[i] = _mm256_setzero_si256();                                     \
            for (int c = c0; c < c1; c += 32) {                                               \
                __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const void *)(wr + c)));   \
                __m256i w1 =                                                                  \
                    _mm256_cvtepi8_epi16(_mm_loadu_si128((const void *)(wr + c + 16)));       \
                for (int i = 0; i < M; i++) {                                                 \
                    const int16_t *xi = x + (long)i * kp + c;                                 \
                    alo[i] = _mm256_dpwssd_avx_epi32(                                         \
                        alo[i], _mm256_loadu_si256((const void *)xi), w0);                    \
                    ahi[i] = _mm256_dpwssd_avx_epi32(                                         \
                        ahi[i], _mm256_loadu_si256((const void *)(xi + 16)), w1);             \
                }                                                                             \
            }                                                                                 \
            for (int i = 0; i < M; i++) {                                                     \
                flo[i] = _mm256_add_ps(flo[i], _mm256_cvtepi32_ps(alo[i]));                   \
                fhi[i] = _mm256_add_ps(fhi[i], _mm256_cvtepi32_ps(ahi[i]));                   \
            }                                                                                 \
        }                                                                                     \
        for (int i = 0; i < M; i++)                                                           \
            out[i] = fold16(flo[i], fhi[i]);                                                  \
    }
W8A16_ROWS_AVX2(1)
W8A16_ROWS_AVX2(2)
W8A16_ROWS_AVX2(3)
W8A16_ROWS_AVX2(4)

W8A16_GEMV(rwkv_gemv_w8a16_avx2, AVXVNNI_TARGET, w8a16_avx2_row_)
