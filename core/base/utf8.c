/* utf8.c — strict UTF-8 (see utf8.h).
 *
 * The table-free form below follows the well-formed byte sequence table of
 * Unicode §3.9 (Table 3-7) directly: the second byte's range depends on the
 * lead byte (E0: A0..BF, ED: 80..9F, F0: 90..BF, F4: 80..8F), which is what
 * rules out overlongs, surrogates and code points above U+10FFFF.
 */
#include "core/utf8.h"

#include <string.h>

int rwkv_utf8_lead(uint8_t c, size_t *need, uint8_t *lo, uint8_t *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c < 0x80) {
        *need = 0;
    } else if (c >= 0xC2 && c <= 0xDF) {
        *need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        *need = 2;
        if (c == 0xE0)
            *lo = 0xA0; /* no overlongs */
        else if (c == 0xED)
            *hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        *need = 3;
        if (c == 0xF0)
            *lo = 0x90; /* no overlongs */
        else if (c == 0xF4)
            *hi = 0x8F; /* <= U+10FFFF */
    } else {
        return -1; /* 80..C1 (continuation or overlong lead), F5..FF */
    }
    return 0;
}

size_t rwkvd_utf8_check(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path: 8 bytes at a time while none has the top bit */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo, hi; /* allowed range of the second byte */
        if (rwkv_utf8_lead(c, &need, &lo, &hi) != 0)
            return i;
        if (n - i - 1 < need)
            return i;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= need; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return i;
        i += need + 1;
    }
    return n;
}
