/* curve_key.h — CURVE key files: Z85 text, shared by the daemon and its
 * clients.
 *
 * Format (PROTOCOL.md §11): text, one key per line, lines end with "\n"
 * (a "\r" before it is tolerated), the last newline optional.
 *   public key file    line 1: the 40-character Z85 public key
 *   key pair file      line 1: the Z85 public key; line 2: the Z85 secret key
 * Nothing else: no blank lines, no comments, no spaces.  A file holding a
 * secret key must not be readable, writable or executable by group or
 * others (mode & 077 == 0), as ssh requires of its private keys.
 *
 * Z85 is ZeroMQ's encoding (RFC 32/Z85): 5 characters per 4 bytes, so a
 * 32-byte key is exactly 40 characters.  Implemented here, not taken from
 * libzmq, so the parser depends on nothing and can be fuzzed alone.
 *
 * Thread safe; nothing is allocated that outlives a call.
 */
#ifndef RWKV_CURVE_KEY_H
#define RWKV_CURVE_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define RWKV_CURVE_KEY_BYTES 32
#define RWKV_CURVE_Z85_LEN 40
#define RWKV_CURVE_FILE_MAX 4096 /* a key file is at most this many bytes */

typedef struct rwkv_curve_keyfile {
    uint8_t public_key[RWKV_CURVE_KEY_BYTES];
    uint8_t secret_key[RWKV_CURVE_KEY_BYTES]; /* zeros when !has_secret */
    bool has_secret;
} rwkv_curve_keyfile;

/* Decodes exactly 40 Z85 characters into 32 bytes.  Returns 0, or -1 when a
 * character is outside the Z85 alphabet or a 5-character group overflows
 * 32 bits (*bad_at = index of the offending character). */
int rwkv_z85_decode_key(const char *text, uint8_t out[RWKV_CURVE_KEY_BYTES], size_t *bad_at);

/* Encodes 32 bytes as 40 Z85 characters plus a NUL (out has 41 bytes). */
void rwkv_z85_encode_key(const uint8_t key[RWKV_CURVE_KEY_BYTES],
                         char out[RWKV_CURVE_Z85_LEN + 1]);

/* Parses the bytes of a key file.  label names the input in errors
 * ("keys/alice.pub: offset 41: ...").  Returns 0 with *out filled, or -1
 * with err set (out's secret is then zeroed). */
int rwkv_curve_keyfile_parse(const char *label, const uint8_t *buf, size_t len,
                             rwkv_curve_keyfile *out, rwkv_error *err);

/* Reads and parses a key file.  Refuses: a path that is not a regular file
 * (symlinks are followed), more than RWKV_CURVE_FILE_MAX bytes, a secret key
 * in a file with any group/other permission bit, and — when need_secret —
 * a file without a secret line.  Returns 0 or -1 with err naming the path.
 * The caller should wipe out->secret_key when done with it. */
int rwkv_curve_keyfile_load(const char *path, bool need_secret, rwkv_curve_keyfile *out,
                            rwkv_error *err);

#endif
