/* test_daemon_util.c — the daemon's small helpers: SHA-256 (FIPS 180-4
 * vectors, streaming == one shot, and agreement with coreutils' sha256sum
 * around the padding boundaries) and strict UTF-8 validation (compared
 * exhaustively with a decoder written from the definition).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sha256.h"
#include "core/utf8.h"
#include "tests/testutil.h"

static void hex_of(const void *p, size_t n, char out[65])
{
    uint8_t d[32];
    rwkvd_sha256_buf(p, n, d);
    rwkvd_sha256_hex(d, out);
}

static void test_sha256_vectors(void)
{
    char h[65];
    hex_of("", 0, h);
    CHECK(strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    hex_of("abc", 3, h);
    CHECK(strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(m, strlen(m), h);
    CHECK(strcmp(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    hex_of(a, 1000000, h);
    free(a);
    CHECK(strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
}

static void test_sha256_streaming_and_cross_check(void)
{
    uint64_t seed = 7;
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)test_rand(&seed);
    static const size_t cross[] = {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000};
    for (size_t i = 0; i < sizeof cross / sizeof cross[0]; i++) {
        char path[] = "/tmp/rwkvd-test-sha-XXXXXX", cmd[128], theirs[80] = "", mine[65];
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        CHECK(write(fd, buf, cross[i]) == (ssize_t)cross[i]);
        close(fd);
        snprintf(cmd, sizeof cmd, "sha256sum %s", path);
        FILE *f = popen(cmd, "r");
        CHECK(f);
        CHECK(fgets(theirs, sizeof theirs, f) != NULL);
        pclose(f);
        unlink(path);
        hex_of(buf, cross[i], mine);
        CHECKF(strncmp(mine, theirs, 64) == 0, "length %zu: %s vs %.64s", cross[i], mine, theirs);
    }
    for (size_t n = 0; n <= 300; n++) {
        char mine[65];
        hex_of(buf, n, mine);
        /* the same bytes fed in random pieces */
        rwkvd_sha256 s;
        CHECK(rwkvd_sha256_init(&s) == 0);
        size_t at = 0;
        while (at < n) {
            size_t k = (size_t)(test_rand(&seed) % 70);
            if (k > n - at)
                k = n - at;
            CHECK(rwkvd_sha256_update(&s, buf + at, k) == 0);
            at += k;
        }
        uint8_t d[32];
        CHECK(rwkvd_sha256_final(&s, d) == 0);
        char streamed[65];
        rwkvd_sha256_hex(d, streamed);
        CHECKF(strcmp(mine, streamed) == 0, "streamed, length %zu", n);
    }
}

/* Reference: the first invalid offset, straight from RFC 3629's definition
 * (decode the code point, then reject overlongs, surrogates, > U+10FFFF). */
static size_t ref_check(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (n - i < len)
            return i;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return i;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += len;
    }
    return n;
}

static void test_utf8_exhaustive(void)
{
    uint8_t b[12];
    /* every 1- and 2-byte string, and every 3-byte string */
    for (uint32_t x = 0; x < (1u << 24); x++) {
        b[0] = (uint8_t)(x >> 16), b[1] = (uint8_t)(x >> 8), b[2] = (uint8_t)x;
        size_t want = ref_check(b, 3), got = rwkvd_utf8_check(b, 3);
        if (got != want)
            CHECKF(0, "%02x %02x %02x: got %zu want %zu", b[0], b[1], b[2], got, want);
        if ((x & 0xFF) == 0) {
            want = ref_check(b, 2), got = rwkvd_utf8_check(b, 2);
            if (got != want)
                CHECKF(0, "%02x %02x: got %zu want %zu", b[0], b[1], got, want);
        }
    }
    /* 4-byte leads with every second and third byte, a few fourth bytes */
    static const uint8_t fourth[] = {0x00, 0x7f, 0x80, 0xbf, 0xc0, 0xff};
    for (uint32_t lead = 0xE0; lead <= 0xFF; lead++)
        for (uint32_t s2 = 0; s2 < 256; s2++)
            for (uint32_t s3 = 0x70; s3 < 0xD0; s3++)
                for (size_t f = 0; f < sizeof fourth; f++) {
                    b[0] = (uint8_t)lead, b[1] = (uint8_t)s2, b[2] = (uint8_t)s3, b[3] = fourth[f];
                    size_t want = ref_check(b, 4), got = rwkvd_utf8_check(b, 4);
                    if (got != want)
                        CHECKF(0, "%02x %02x %02x %02x: got %zu want %zu", b[0], b[1], b[2], b[3],
                               got, want);
                }
}

static void test_utf8_fast_path_offsets(void)
{
    /* long ASCII runs with one bad byte at every position: the 8-byte fast
     * path must stop at the right place */
    uint8_t buf[64];
    for (size_t bad = 0; bad < sizeof buf; bad++) {
        memset(buf, 'a', sizeof buf);
        buf[bad] = 0xff;
        CHECKF(rwkvd_utf8_check(buf, sizeof buf) == bad, "bad at %zu", bad);
    }
    memset(buf, 'a', sizeof buf);
    memcpy(buf + 20, "\xf0\x9f\x98\x80", 4); /* U+1F600 */
    CHECK(rwkvd_utf8_check(buf, sizeof buf) == sizeof buf);
    CHECK(rwkvd_utf8_check(buf, 22) == 20); /* cut inside it */
    CHECK(rwkvd_utf8_check(NULL, 0) == 0);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_sha256_vectors);
    RUN(test_sha256_streaming_and_cross_check);
    RUN(test_utf8_exhaustive);
    RUN(test_utf8_fast_path_offsets);
    return test_summary();
}
