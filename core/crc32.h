/* crc32.h — CRC-32 as used by zip (reflected polynomial 0xEDB88320).
 *
 * torch.save archives carry a CRC-32 per record; checking them catches
 * truncated downloads and flipped bits in weights that no structural check
 * can see.  Checkpoints are hundreds of MB, so the x86-64 build folds 64
 * bytes per step with carry-less multiplication (PCLMULQDQ) when the CPU has
 * it (checked at run time); elsewhere a slicing-by-8 table loop is used.
 */
#ifndef RWKV_CRC32_H
#define RWKV_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: start with crc = 0; rwkv_crc32(rwkv_crc32(0, a, n), b, m)
 * equals the CRC of a followed by b.  "123456789" gives 0xCBF43926.
 * Thread safe. */
uint32_t rwkv_crc32(uint32_t crc, const void *buf, size_t len);

/* The portable table implementation alone (for tests of the fast path). */
uint32_t rwkv_crc32_portable(uint32_t crc, const void *buf, size_t len);

#endif
