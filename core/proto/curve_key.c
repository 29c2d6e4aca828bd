/* curve_key.c — Z85 and the CURVE key-file format (see curve_key.h).
 *
 * The file is small and comes from outside (an operator's directory, a
 * client's command line), so the parser walks the bytes it read once, with
 * explicit offsets in every error, and never trusts a line length.
 */
#include "core/curve_key.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/read_fd.h"

static const char z85_chars[85] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  ".-:+=^!/*?&<>()[]{}@%$#";

static int z85_value(unsigned char c)
{
    if (c == 0)
        return -1; /* strchr would find the terminating NUL */
    const char *p = memchr(z85_chars, c, sizeof z85_chars);
    return p ? (int)(p - z85_chars) : -1;
}

int rwkv_z85_decode_key(const char *text, uint8_t out[RWKV_CURVE_KEY_BYTES], size_t *bad_at)
{
    for (size_t g = 0; g < RWKV_CURVE_Z85_LEN / 5; g++) {
        uint64_t v = 0;
        for (size_t i = 0; i < 5; i++) {
            int d = z85_value((unsigned char)text[g * 5 + i]);
            if (d < 0) {
                *bad_at = g * 5 + i;
                return -1;
            }
            v = v * 85 + (uint64_t)d;
        }
        if (v > UINT32_MAX) {
            *bad_at = g * 5;
            return -1;
        }
        for (size_t b = 0; b < 4; b++)
            out[g * 4 + b] = (uint8_t)(v >> (24 - 8 * b));
    }
    return 0;
}

void rwkv_z85_encode_key(const uint8_t key[RWKV_CURVE_KEY_BYTES], char out[RWKV_CURVE_Z85_LEN + 1])
{
    for (size_t g = 0; g < RWKV_CURVE_KEY_BYTES / 4; g++) {
        uint32_t v = (uint32_t)key[g * 4] << 24 | (uint32_t)key[g * 4 + 1] << 16 |
                     (uint32_t)key[g * 4 + 2] << 8 | key[g * 4 + 3];
        for (int i = 4; i >= 0; i--) {
            out[g * 5 + (size_t)i] = z85_chars[v % 85];
            v /= 85;
        }
    }
    out[RWKV_CURVE_Z85_LEN] = '\0';
}

/* One key line at *off: 40 Z85 characters, then "\n", "\r\n" or the end. */
static int key_line(const char *label, const uint8_t *buf, size_t len, size_t *off,
                    const char *what, uint8_t key[RWKV_CURVE_KEY_BYTES], rwkv_error *err)
{
    size_t at = *off;
    size_t n = 0;
    while (at + n < len && buf[at + n] != '\n' && buf[at + n] != '\r')
        n++;
    if (n != RWKV_CURVE_Z85_LEN)
        return rwkv_fail(err, "%s: offset %zu: the %s line has %zu characters, a Z85 key has %d",
                         label, at, what, n, RWKV_CURVE_Z85_LEN);
    char text[RWKV_CURVE_Z85_LEN];
    memcpy(text, buf + at, sizeof text);
    size_t bad = 0;
    if (rwkv_z85_decode_key(text, key, &bad) != 0)
        return rwkv_fail(err, "%s: offset %zu: the %s is not valid Z85", label, at + bad, what);
    at += n;
    if (at < len && buf[at] == '\r')
        at++;
    if (at < len) {
        if (buf[at] != '\n')
            return rwkv_fail(err, "%s: offset %zu: a lone carriage return", label, at);
        at++;
    }
    *off = at;
    return 0;
}

int rwkv_curve_keyfile_parse(const char *label, const uint8_t *buf, size_t len,
                             rwkv_curve_keyfile *out, rwkv_error *err)
{
    memset(out, 0, sizeof *out);
    if (len > RWKV_CURVE_FILE_MAX)
        return rwkv_fail(err, "%s: %zu bytes, a key file has at most %d", label, len,
                         RWKV_CURVE_FILE_MAX);
    if (len == 0)
        return rwkv_fail(err, "%s: empty, expected a Z85 public key line", label);
    size_t off = 0;
    if (key_line(label, buf, len, &off, "public key", out->public_key, err) != 0)
        return -1;
    if (off < len) {
        if (key_line(label, buf, len, &off, "secret key", out->secret_key, err) != 0) {
            memset(out->secret_key, 0, sizeof out->secret_key);
            return -1;
        }
        out->has_secret = true;
    }
    if (off < len) {
        memset(out->secret_key, 0, sizeof out->secret_key);
        out->has_secret = false;
        return rwkv_fail(err, "%s: offset %zu: unexpected bytes after the key lines", label, off);
    }
    return 0;
}

int rwkv_curve_keyfile_load(const char *path, bool need_secret, rwkv_curve_keyfile *out,
                            rwkv_error *err)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return rwkv_fail(err, "key file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return rwkv_fail(err, "key file %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return rwkv_fail(err, "key file %s: not a regular file", path);
    }
    if (st.st_size > RWKV_CURVE_FILE_MAX) {
        close(fd);
        return rwkv_fail(err, "key file %s: %lld bytes, a key file has at most %d", path,
                         (long long)st.st_size, RWKV_CURVE_FILE_MAX);
    }
    uint8_t buf[RWKV_CURVE_FILE_MAX + 1];
    size_t len;
    int e = rwkv_read_up_to(fd, buf, sizeof buf, &len);
    close(fd);
    if (e) {
        memset(buf, 0, sizeof buf);
        return rwkv_fail(err, "key file %s: %s", path, strerror(e));
    }
    int rc = rwkv_curve_keyfile_parse(path, buf, len, out, err);
    memset(buf, 0, sizeof buf);
    if (rc != 0)
        return -1;
    if (out->has_secret && (st.st_mode & 077)) {
        memset(out, 0, sizeof *out);
        return rwkv_fail(err,
                         "key file %s: holds a secret key but its mode %04o lets others than "
                         "its owner at it (chmod 600 it)",
                         path, (unsigned)(st.st_mode & 07777));
    }
    if (need_secret && !out->has_secret)
        return rwkv_fail(err, "key file %s: no secret key line (a key pair file has the public "
                              "key on line 1 and the secret key on line 2)",
                         path);
    return 0;
}
