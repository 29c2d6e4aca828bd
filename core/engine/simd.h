/* simd.h — how hot loops get fast code on every x86-64 CPU.
 *
 * Hot loops are plain C written so the compiler can vectorise them
 * (`#pragma omp simd`, built with -fopenmp-simd: no OpenMP runtime).  The
 * RWKV_CLONES attribute makes GCC/clang emit an AVX-512, an AVX2+FMA and a
 * baseline copy of such a function and pick one at load time (ifunc), so one
 * binary runs everywhere and uses the wide units where they exist.
 */
#ifndef RWKV_SIMD_H
#define RWKV_SIMD_H

#include <stdint.h>
#include <string.h>

/* GCC only: clang 14 emits these clones under names its own callers do not
 * link against (the libFuzzer builds use clang and need no speed). */
#if defined(__x86_64__) && !defined(RWKV_NO_CLONES) && !defined(__clang__)
#define RWKV_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RWKV_CLONES
#endif

#define RWKV_PRAGMA(x) _Pragma(#x)
#define RWKV_SIMD RWKV_PRAGMA(omp simd)

/* Sums in a fixed order.  A vectorised reduction's order depends on how the
 * compiler peels the loop for alignment and on the vector width, so the
 * same row could round differently at another address or on another CPU.
 * Instead, element i always adds into lane i % RWKV_LANES (the compiler
 * turns the lane loop into a few vector registers) and the lanes are folded
 * in a fixed tree: the result depends on the values alone.  The engine's
 * batch invariance (forward.h) and the daemon's byte-identical re-emission
 * rest on this. */
#define RWKV_LANES 32

static inline float rwkv_fold_lanes(float *acc)
{
    for (int w = RWKV_LANES / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++)
            acc[l] += acc[l + w];
    return acc[0];
}

static inline double rwkv_fold_lanes_f64(double *acc)
{
    for (int w = RWKV_LANES / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++)
            acc[l] += acc[l + w];
    return acc[0];
}

/* Expands to a fixed-order sum of EXPR(i) for i in [0, n) into `result`
 * (float lanes).  EXPR is a macro of one index argument. */
#define RWKV_LANE_SUM(result, n, EXPR)                                               \
    do {                                                                             \
        float acc_[RWKV_LANES] = {0};                                                \
        size_t n_ = (size_t)(n), i_ = 0;                                             \
        for (; i_ + RWKV_LANES <= n_; i_ += RWKV_LANES)                              \
            for (int l_ = 0; l_ < RWKV_LANES; l_++)                                  \
                acc_[l_] += EXPR(i_ + l_);                                           \
        for (int l_ = 0; i_ + l_ < n_; l_++)                                         \
            acc_[l_] += EXPR(i_ + l_);                                               \
        (result) = rwkv_fold_lanes(acc_);                                            \
    } while (0)

/* The same with double lanes. */
#define RWKV_LANE_SUM_F64(result, n, EXPR)                                           \
    do {                                                                             \
        double acc_[RWKV_LANES] = {0};                                               \
        size_t n_ = (size_t)(n), i_ = 0;                                             \
        for (; i_ + RWKV_LANES <= n_; i_ += RWKV_LANES)                              \
            for (int l_ = 0; l_ < RWKV_LANES; l_++)                                  \
                acc_[l_] += EXPR(i_ + l_);                                           \
        for (int l_ = 0; i_ + l_ < n_; l_++)                                         \
            acc_[l_] += EXPR(i_ + l_);                                               \
        (result) = rwkv_fold_lanes_f64(acc_);                                        \
    } while (0)

static inline float rwkv_bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t rwkv_f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* bfloat16 is the top half of a float32: widening is exact. */
static inline float rwkv_bf16_to_f32(uint16_t h)
{
    return rwkv_bits_to_f32((uint32_t)h << 16);
}

/* IEEE half -> float, exact for every input (normals, subnormals, inf, NaN)
 * and branch-free so loops over it vectorise: shifting the 15 magnitude
 * bits into float position and scaling by 2^112 re-biases the exponent and
 * normalises subnormals in one multiply. */
static inline float rwkv_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t mag = h & 0x7fffu;
    float f = rwkv_bits_to_f32(mag << 13) * 0x1p112f;
    uint32_t bits = rwkv_f32_to_bits(f);
    bits = mag >= 0x7c00u ? (mag << 13) | 0x7f800000u : bits;
    return rwkv_bits_to_f32(bits | sign);
}

/* Round-to-nearest-even float -> bfloat16 (NaN stays NaN). */
static inline uint16_t rwkv_f32_to_bf16(float f)
{
    uint32_t u = rwkv_f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* exp(x) in float, within ~2 ulp, vectorisable (no calls, no branches).
 * Inputs are clamped to the finite range of the result: exp(<-87.3) gives
 * ~1e-38 instead of a subnormal/0, harmless for softmax sums and sigmoids.
 * The lower clamp is written so that a NaN (a checkpoint may hold one)
 * becomes -87.3 instead of reaching the float-to-int conversion below,
 * which would be undefined behaviour; the NaN still reaches the outputs
 * through every other operation. */
static inline float rwkv_expf(float x)
{
    x = x > -87.3f ? x : -87.3f; /* NaN -> -87.3 */
    x = x > 88.0f ? 88.0f : x; /* keeps 2^n finite (n <= 127) */
    const float shifter = 12582912.0f; /* 1.5 * 2^23: rounds to an integer */
    float n = (x * 1.44269504088896341f + shifter) - shifter;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = (int32_t)n + 127;
    return p * rwkv_bits_to_f32((uint32_t)e << 23);
}

static inline float rwkv_sigmoidf(float x)
{
    return 1.0f / (1.0f + rwkv_expf(-x));
}

/* tanh through exp of a non-positive argument (no overflow), sign restored. */
static inline float rwkv_tanhf(float x)
{
    float ax = x < 0 ? -x : x;
    float e = rwkv_expf(-2.0f * ax);
    float t = (1.0f - e) / (1.0f + e);
    return x < 0 ? -t : t;
}

#endif
