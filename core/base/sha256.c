/* sha256.c — see sha256.h: thin wrappers over libcrypto's EVP interface. */
#include "core/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rwkvd_sha256_init(rwkvd_sha256 *s)
{
    s->ctx = EVP_MD_CTX_new();
    if (!s->ctx || EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1) {
        rwkvd_sha256_abort(s);
        return -1;
    }
    return 0;
}

int rwkvd_sha256_update(rwkvd_sha256 *s, const void *data, size_t n)
{
    return s->ctx && EVP_DigestUpdate(s->ctx, data, n) == 1 ? 0 : -1;
}

int rwkvd_sha256_final(rwkvd_sha256 *s, uint8_t out[32])
{
    unsigned len = 0;
    int ok = s->ctx && EVP_DigestFinal_ex(s->ctx, out, &len) == 1 && len == 32;
    rwkvd_sha256_abort(s);
    return ok ? 0 : -1;
}

void rwkvd_sha256_abort(rwkvd_sha256 *s)
{
    EVP_MD_CTX_free(s->ctx);
    s->ctx = NULL;
}

void rwkvd_sha256_buf(const void *data, size_t n, uint8_t out[32])
{
    unsigned len = 0;
    if (EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        abort(); /* only when libcrypto cannot allocate its context */
}

int rwkvd_sha256_file(const char *path, uint8_t out[32], rwkv_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rwkv_fail(err, "%s: cannot open: %s", path, strerror(errno));
    rwkvd_sha256 s;
    if (rwkvd_sha256_init(&s) != 0) {
        close(fd);
        return rwkv_fail(err, "%s: sha256: out of memory", path);
    }
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    int rc = buf ? 0 : rwkv_fail(err, "%s: sha256: out of memory", path);
    while (rc == 0) {
        ssize_t got = read(fd, buf, CHUNK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = rwkv_fail(err, "%s: read: %s", path, strerror(errno));
        else if (got == 0)
            break;
        else if (rwkvd_sha256_update(&s, buf, (size_t)got) != 0)
            rc = rwkv_fail(err, "%s: sha256 failed", path);
    }
    free(buf);
    close(fd);
    if (rc == 0 && rwkvd_sha256_final(&s, out) != 0)
        rc = rwkv_fail(err, "%s: sha256 failed", path);
    rwkvd_sha256_abort(&s);
    return rc;
}

void rwkvd_sha256_hex(const uint8_t digest[32], char out[65])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[64] = '\0';
}
