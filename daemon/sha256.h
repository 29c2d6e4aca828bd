/* sha256.h — SHA-256 (FIPS 180-4) for the daemon.
 *
 * The daemon names every output with the model file's sha256 and keys
 * checkpoint files of long document ids by the sha256 of the id, so it needs
 * a hash whose collisions are not a practical concern; a plain portable
 * implementation is enough (a model is hashed once at start-up).
 */
#ifndef RWKVD_SHA256_H
#define RWKVD_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct rwkvd_sha256 {
    uint32_t h[8];
    uint64_t total;     /* bytes hashed so far */
    uint8_t buf[64];
    size_t nbuf;
} rwkvd_sha256;

/* Streaming use: init, update any number of times, final (which leaves the
 * context unusable until the next init).  One context per thread. */
void rwkvd_sha256_init(rwkvd_sha256 *s);
void rwkvd_sha256_update(rwkvd_sha256 *s, const void *data, size_t n);
void rwkvd_sha256_final(rwkvd_sha256 *s, uint8_t out[32]);

/* One shot.  Thread safe. */
void rwkvd_sha256_buf(const void *data, size_t n, uint8_t out[32]);

/* 32 bytes -> 64 lower-case hex digits + NUL. */
void rwkvd_sha256_hex(const uint8_t digest[32], char out[65]);

#endif
