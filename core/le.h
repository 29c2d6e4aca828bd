/* le.h — little-endian integers in byte buffers, whatever the host: the
 * file formats (checkpoints, the emit journal, segment state, safetensors)
 * all store them this way.  Header-only; compilers fold the loops. */
#ifndef RWKV_LE_H
#define RWKV_LE_H

#include <stdint.h>

static inline void rwkv_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void rwkv_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t rwkv_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t rwkv_get64(const uint8_t *p)
{
    return rwkv_get32(p) | (uint64_t)rwkv_get32(p + 4) << 32;
}

#endif
