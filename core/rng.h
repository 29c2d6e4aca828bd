/* rng.h — the project's own deterministic pseudo-random generator.
 *
 * xoshiro256** (Blackman & Vigna), seeded through splitmix64 so that any
 * 64-bit seed, 0 included, gives a well-mixed state.  Used wherever a result
 * must be reproducible from a seed on every machine and libc: sampling
 * (sampler.c) and random model weights (random_model.c).  Never rand().
 *
 * Header-only (static inline): the generator is a few instructions and sits
 * in the innermost loop of the random-model maker.  A rwkv_rng is plain data:
 * copy it to fork a stream; one thread at a time per object.
 */
#ifndef RWKV_RNG_H
#define RWKV_RNG_H

#include <stdint.h>

typedef struct rwkv_rng {
    uint64_t s[4];
} rwkv_rng;

/* splitmix64's finalizer: a bijective mix of 64 bits (also a good hash
 * of one word). */
static inline uint64_t rwkv_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* One step of splitmix64: advances *x and returns a mixed value. */
static inline uint64_t rwkv_splitmix64(uint64_t *x)
{
    return rwkv_mix64(*x += 0x9E3779B97F4A7C15ull);
}

static inline void rwkv_rng_seed(rwkv_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = rwkv_splitmix64(&x);
}

static inline uint64_t rwkv_rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t rwkv_rng_next(rwkv_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rwkv_rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rwkv_rng_rotl(s[3], 45);
    return result;
}

/* Uniform double in [0, 1) with 53 random bits. */
static inline double rwkv_rng_uniform(rwkv_rng *r)
{
    return (double)(rwkv_rng_next(r) >> 11) * 0x1.0p-53;
}

#endif
