/* sha256.h — SHA-256 for the daemon, through OpenSSL's libcrypto.
 *
 * The daemon names every output with the model file's sha256, keys
 * checkpoint files of long document ids by the sha256 of the id, and checks
 * a checkpoint belongs to the running model and vocabulary by their hashes.
 * libcrypto is the well-kept implementation every Debian system has, and it
 * uses the CPU's SHA extensions: hashing a 400 MB model takes a fraction of
 * a second instead of seconds.
 */
#ifndef RWKVD_SHA256_H
#define RWKVD_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Streaming use: init, update any number of times, final (which frees the
 * context).  Each returns 0, or -1 when libcrypto fails (out of memory);
 * after a failure call rwkvd_sha256_abort.  One context per thread. */
typedef struct rwkvd_sha256 {
    void *ctx; /* EVP_MD_CTX */
} rwkvd_sha256;
int rwkvd_sha256_init(rwkvd_sha256 *s);
int rwkvd_sha256_update(rwkvd_sha256 *s, const void *data, size_t n);
int rwkvd_sha256_final(rwkvd_sha256 *s, uint8_t out[32]);
void rwkvd_sha256_abort(rwkvd_sha256 *s); /* frees the context; idempotent */

/* One shot.  Thread safe.  Never fails for inputs in memory (an OpenSSL
 * failure there means the process is out of memory: abort). */
void rwkvd_sha256_buf(const void *data, size_t n, uint8_t out[32]);

/* The hash of a whole file.  Returns 0, or -1 with err naming the file. */
int rwkvd_sha256_file(const char *path, uint8_t out[32], rwkv_error *err);

/* 32 bytes -> 64 lower-case hex digits + NUL. */
void rwkvd_sha256_hex(const uint8_t digest[32], char out[65]);

#endif
