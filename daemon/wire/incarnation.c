/* incarnation.c — see incarnation.h. */
#include "daemon/wire/incarnation.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/read_fd.h"
#include "daemon/atomic_file.h"
#include "daemon/ckpt_store.h"

#define INC_MAX ((UINT64_C(1) << 53) - 1)

/* d-<hex>.ckpt -> d-<hex>.inc */
static void inc_name(const uint8_t *doc, size_t doc_len, char out[RWKVD_CKPT_NAME_MAX])
{
    rwkvd_ckpt_file_name(doc, doc_len, out);
    size_t n = strlen(out);
    memcpy(out + n - 5, ".inc", 5); /* strlen(".ckpt") == 5 */
}

int rwkvd_incarnation_parse(const char *label, const uint8_t *buf, size_t len, uint64_t *out,
                            rwkv_error *err)
{
    size_t i = 0;
    uint64_t v = 0;
    while (i < len && buf[i] >= '0' && buf[i] <= '9') {
        if (i == 20)
            return rwkv_fail(err, "%s: offset %zu: more than 20 digits", label, i);
        if (i == 1 && buf[0] == '0')
            return rwkv_fail(err, "%s: offset 0: a leading zero", label);
        uint64_t d = (uint64_t)(buf[i] - '0');
        if (v > (INC_MAX - d) / 10)
            return rwkv_fail(err, "%s: offset %zu: above 2^53-1", label, i);
        v = v * 10 + d;
        i++;
    }
    if (i == 0)
        return rwkv_fail(err, "%s: offset 0: expected a decimal number", label);
    if (i == len || buf[i] != '\n')
        return rwkv_fail(err, "%s: offset %zu: expected a newline after the number", label, i);
    if (i + 1 != len)
        return rwkv_fail(err, "%s: offset %zu: bytes after the newline", label, i + 1);
    *out = v;
    return 0;
}

int rwkvd_incarnation_get(int dirfd, const char *dir_label, const uint8_t *doc, size_t doc_len,
                          uint64_t *out, rwkv_error *err)
{
    char name[RWKVD_CKPT_NAME_MAX];
    inc_name(doc, doc_len, name);
    *out = 0;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return rwkv_fail(err, "%s/%s: %s", dir_label, name, strerror(errno));
    }
    uint8_t buf[RWKVD_INC_FILE_MAX + 1];
    size_t len;
    int e = rwkv_read_up_to(fd, buf, sizeof buf, &len);
    close(fd);
    if (e)
        return rwkv_fail(err, "%s/%s: %s", dir_label, name, strerror(e));
    char label[RWKVD_CKPT_NAME_MAX + 64];
    snprintf(label, sizeof label, "incarnation file %s", name);
    if (len > RWKVD_INC_FILE_MAX)
        return rwkv_fail(err, "%s/%s: over %d bytes", dir_label, name, RWKVD_INC_FILE_MAX);
    return rwkvd_incarnation_parse(label, buf, len, out, err);
}

int rwkvd_incarnation_bump(int dirfd, const char *dir_label, const uint8_t *doc, size_t doc_len,
                           uint64_t *next, rwkv_error *err)
{
    uint64_t cur;
    if (rwkvd_incarnation_get(dirfd, dir_label, doc, doc_len, &cur, err) != 0)
        return -1;
    if (cur >= INC_MAX)
        return rwkv_fail(err, "incarnation of the document: at its limit 2^53-1");
    char name[RWKVD_CKPT_NAME_MAX], text[32];
    inc_name(doc, doc_len, name);
    int n = snprintf(text, sizeof text, "%llu\n", (unsigned long long)(cur + 1));
    if (rwkvd_atomic_write(dirfd, dir_label, name, NULL, text, (size_t)n, err) != 0)
        return -1;
    *next = cur + 1;
    return 0;
}
