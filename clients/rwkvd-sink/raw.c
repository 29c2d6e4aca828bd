/* raw.c — raw float32 output files per document and output (see raw.h). */
#include "clients/rwkvd-sink/raw.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clients/rwkvd-sink/keyset.h"

#define RAW_HEX_FULL 120  /* ids up to this many bytes: plain hex */
#define RAW_HEX_PREFIX 96 /* longer ids: hex of this many bytes + '~' + hash */

int raw_prepare(const char *dir, rwkv_error *err)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return rwkv_fail(err, "%s: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return rwkv_fail(err, "%s: not a directory", dir);
    return 0;
}

void raw_doc_dirname(const uint8_t *doc, size_t doc_len, char out[RAW_NAME_MAX])
{
    static const char digits[] = "0123456789abcdef";
    size_t n = doc_len <= RAW_HEX_FULL ? doc_len : RAW_HEX_PREFIX;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        out[j++] = digits[doc[i] >> 4];
        out[j++] = digits[doc[i] & 15];
    }
    if (doc_len > RAW_HEX_FULL)
        j += (size_t)snprintf(out + j, RAW_NAME_MAX - j, "~%016llx",
                              (unsigned long long)hash64(doc, doc_len, 0));
    out[j] = 0;
}

static int write_file(const char *path, const void *data, size_t len, rwkv_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return rwkv_fail(err, "%s: %s", path, strerror(errno));
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            return rwkv_fail(err, "%s: write: %s", path, strerror(e));
        }
        p += w;
        len -= (size_t)w;
    }
    if (close(fd) != 0)
        return rwkv_fail(err, "%s: close: %s", path, strerror(errno));
    return 0;
}

int raw_write(const char *dir, const uint8_t *doc, size_t doc_len, const char *stem,
              const render_blob *blobs, size_t n_blobs, const char *json, size_t json_len,
              rwkv_error *err)
{
    char name[RAW_NAME_MAX];
    raw_doc_dirname(doc, doc_len, name);
    size_t cap = strlen(dir) + RAW_NAME_MAX + 128;
    char *path = malloc(cap), *tmp = malloc(cap);
    int rc = -1;
    if (!path || !tmp) {
        rwkv_fail(err, "out of memory");
        goto out;
    }
    snprintf(path, cap, "%s/%s", dir, name);
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        rwkv_fail(err, "%s: %s", path, strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < n_blobs; i++) {
        snprintf(path, cap, "%s/%s/%s", dir, name, blobs[i].name);
        if (write_file(path, blobs[i].data, blobs[i].len, err) != 0)
            goto out;
    }
    snprintf(tmp, cap, "%s/%s/.%s.json.tmp", dir, name, stem);
    snprintf(path, cap, "%s/%s/%s.json", dir, name, stem);
    if (write_file(tmp, json, json_len, err) != 0)
        goto out;
    if (rename(tmp, path) != 0) {
        rwkv_fail(err, "%s: rename: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    free(path);
    free(tmp);
    return rc;
}
