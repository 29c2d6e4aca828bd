/* crc32.c — zip CRC-32: slicing-by-8 tables plus a PCLMULQDQ folding path.
 *
 * The folding path is the classic scheme for reflected CRCs: four 128-bit
 * accumulators are folded forward 64 bytes at a time with the constants
 * x^(512±32) mod P, then folded into one, reduced 128 -> 64 -> 32 bits and
 * finished with a Barrett reduction.  The running value inside both paths is
 * the bit-inverted CRC, as in zlib.
 */
#include "core/crc32.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RWKV_CRC_CLMUL 1
#include <immintrin.h>
#endif

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
#ifdef RWKV_CRC_CLMUL
static int crc_have_clmul;
#endif

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
#ifdef RWKV_CRC_CLMUL
    __builtin_cpu_init();
    crc_have_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
#endif
}

/* s is the inverted running value. */
static uint32_t crc_tables(uint32_t s, const unsigned char *p, size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        s = crc_table[0][(s ^ *p++) & 0xFF] ^ (s >> 8);
        len--;
    }
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= s;
        s = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
            crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^
            crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
            crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        s = crc_table[0][(s ^ *p++) & 0xFF] ^ (s >> 8);
    return s;
}

#ifdef RWKV_CRC_CLMUL
/* Folds a (128 bits) forward over 128 or 512 bits with k = (k_lo, k_hi). */
__attribute__((target("pclmul,sse4.1"))) static inline __m128i fold(__m128i a, __m128i k)
{
    return _mm_xor_si128(_mm_clmulepi64_si128(a, k, 0x00), _mm_clmulepi64_si128(a, k, 0x11));
}

/* Processes len bytes (len >= 64, a multiple of 16) starting from state s. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc_clmul(uint32_t s,
                                                                   const unsigned char *p,
                                                                   size_t len)
{
    const __m128i k1k2 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);
    const __m128i k3k4 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);
    const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124);
    const __m128i poly = _mm_set_epi64x(0x1F7011641, 0x1DB710641);
    const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);

    __m128i x0 = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i x1 = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(const void *)(p + 32));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(const void *)(p + 48));
    x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)s));
    p += 64;
    len -= 64;
    while (len >= 64) {
        x0 = _mm_xor_si128(fold(x0, k1k2), _mm_loadu_si128((const __m128i *)(const void *)p));
        x1 = _mm_xor_si128(fold(x1, k1k2),
                           _mm_loadu_si128((const __m128i *)(const void *)(p + 16)));
        x2 = _mm_xor_si128(fold(x2, k1k2),
                           _mm_loadu_si128((const __m128i *)(const void *)(p + 32)));
        x3 = _mm_xor_si128(fold(x3, k1k2),
                           _mm_loadu_si128((const __m128i *)(const void *)(p + 48)));
        p += 64;
        len -= 64;
    }
    x0 = _mm_xor_si128(fold(x0, k3k4), x1);
    x0 = _mm_xor_si128(fold(x0, k3k4), x2);
    x0 = _mm_xor_si128(fold(x0, k3k4), x3);
    while (len >= 16) {
        x0 = _mm_xor_si128(fold(x0, k3k4), _mm_loadu_si128((const __m128i *)(const void *)p));
        p += 16;
        len -= 16;
    }
    /* 128 -> 64 bits */
    x0 = _mm_xor_si128(_mm_clmulepi64_si128(x0, k3k4, 0x10), _mm_srli_si128(x0, 8));
    /* 64 -> 32 bits */
    x0 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x0, mask32), k5, 0x00),
                       _mm_srli_si128(x0, 4));
    /* Barrett reduction */
    __m128i t = _mm_clmulepi64_si128(_mm_and_si128(x0, mask32), poly, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, mask32), poly, 0x00);
    x0 = _mm_xor_si128(x0, t);
    return (uint32_t)_mm_extract_epi32(x0, 1);
}
#endif

uint32_t rwkv_crc32_portable(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc_once, crc_init);
    return ~crc_tables(~crc, buf, len);
}

uint32_t rwkv_crc32(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = buf;
    uint32_t s = ~crc;
#ifdef RWKV_CRC_CLMUL
    if (crc_have_clmul && len >= 64) {
        size_t n = len & ~(size_t)15;
        s = crc_clmul(s, p, n);
        p += n;
        len -= n;
    }
#endif
    return ~crc_tables(s, p, len);
}
