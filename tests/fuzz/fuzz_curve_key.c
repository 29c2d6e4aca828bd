/* fuzz_curve_key.c — libFuzzer target for the CURVE key-file parser
 * (core/curve_key.h): any bytes either parse or fail with a message, never
 * crash or read past the input; a file that parses re-encodes (Z85) to
 * exactly its key lines, so the parser accepts nothing but the format.
 *
 * Seeds in tests/fuzz/corpus/curve_key/: a public key file, a key pair file
 * (LF and CRLF), and one file per refusal (short line, bad character,
 * overflowing group, third line, lone CR, empty). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/curve_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rwkv_curve_keyfile kf;
    rwkv_error err;
    if (rwkv_curve_keyfile_parse("fuzz.key", data, size, &kf, &err) != 0) {
        if (err.msg[0] == '\0' || kf.has_secret)
            abort();
        return 0;
    }
    char z[RWKV_CURVE_Z85_LEN + 1];
    rwkv_z85_encode_key(kf.public_key, z);
    if (size < RWKV_CURVE_Z85_LEN || memcmp(z, data, RWKV_CURVE_Z85_LEN) != 0)
        abort();
    if (kf.has_secret) {
        rwkv_z85_encode_key(kf.secret_key, z);
        const uint8_t *second = memchr(data, '\n', size);
        if (!second || (size_t)(data + size - second) < RWKV_CURVE_Z85_LEN + 1 ||
            memcmp(z, second + 1, RWKV_CURVE_Z85_LEN) != 0)
            abort();
    }
    return 0;
}
