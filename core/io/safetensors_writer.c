/* safetensors_writer.c — header building with jansson and the durable
 * temp-file-then-rename write (see safetensors_writer.h).
 *
 * jansson does the JSON escaping of names; objects keep insertion order, so
 * the header lists tensors in the caller's order.
 */
#include "core/safetensors_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/io/tensor_set.h"

/* Builds the padded header; *hlen is its length (a multiple of 8), *sizes
 * the byte size of each tensor. */
static char *build_header(const rwkv_st_entry *t, size_t n, const char *const *kv, size_t n_kv,
                          size_t *hlen, size_t *sizes, rwkv_error *err)
{
    json_t *root = json_object(), *meta = json_object();
    char *text = NULL;
    int meta_ok = root && meta && json_object_set_new(meta, "format", json_string("pt")) == 0;
    for (size_t i = 0; meta_ok && i < n_kv; i++)
        meta_ok = kv[2 * i] && kv[2 * i + 1] &&
                  json_object_set_new(meta, kv[2 * i], json_string(kv[2 * i + 1])) == 0;
    if (!meta_ok || json_object_set_new(root, "__metadata__", meta) != 0) {
        json_decref(meta);
        meta = NULL;
        rwkv_fail(err, "safetensors writer: cannot build the metadata (out of memory, or a "
                       "key or value that is not UTF-8)");
        goto out;
    }
    meta = NULL;
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t numel;
        char what[128];
        if (snprintf(what, sizeof what, "safetensors writer: tensor %zu", i) < 0)
            what[0] = '\0';
        if (!t[i].name || !t[i].name[0] || strcmp(t[i].name, "__metadata__") == 0) {
            rwkv_fail(err, "%s: missing or reserved name", what);
            goto out;
        }
        if ((unsigned)t[i].dtype > RWKV_I8) {
            rwkv_fail(err, "%s ('%s'): unknown dtype", what, t[i].name);
            goto out;
        }
        if (rwkv_shape_numel(t[i].ndim, t[i].shape, &numel, what, err) != 0)
            goto out;
        if (json_object_get(root, t[i].name)) {
            rwkv_fail(err, "%s: duplicate name '%s'", what, t[i].name);
            goto out;
        }
        sizes[i] = numel * rwkv_dtype_size(t[i].dtype);
        static const char *const dt[] = {"F32", "F16", "BF16", "I8"};
        json_t *shape = json_array(), *e = json_object();
        for (int d = 0; shape && d < t[i].ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)t[i].shape[d]));
        if (!e || !shape || json_object_set_new(e, "dtype", json_string(dt[t[i].dtype])) != 0 ||
            json_object_set_new(e, "shape", shape) != 0 ||
            json_object_set_new(e, "data_offsets",
                                json_pack("[II]", (json_int_t)at,
                                          (json_int_t)(at + sizes[i]))) != 0 ||
            json_object_set_new(root, t[i].name, e) != 0) {
            json_decref(e);
            rwkv_fail(err, "%s ('%s'): cannot build the header entry (invalid UTF-8 name?)",
                      what, t[i].name);
            goto out;
        }
        at += sizes[i];
    }
    char *json = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!json) {
        rwkv_fail(err, "safetensors writer: cannot encode the header");
        goto out;
    }
    size_t jl = strlen(json), padded = (jl + 7) & ~(size_t)7;
    text = malloc(padded);
    if (text) {
        memcpy(text, json, jl);
        memset(text + jl, ' ', padded - jl);
        *hlen = padded;
    } else {
        rwkv_fail(err, "safetensors writer: out of memory");
    }
    free(json);
out:
    json_decref(root);
    return text;
}

static void put_le64(unsigned char *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(x >> (8 * i));
}

int rwkv_safetensors_serialize(const rwkv_st_entry *t, size_t n, void **out, size_t *out_len,
                               rwkv_error *err)
{
    return rwkv_safetensors_serialize_meta(t, n, NULL, 0, out, out_len, err);
}

int rwkv_safetensors_serialize_meta(const rwkv_st_entry *t, size_t n, const char *const *meta,
                                    size_t n_meta, void **out, size_t *out_len, rwkv_error *err)
{
    *out = NULL;
    *out_len = 0;
    size_t hlen = 0, total;
    size_t *sizes = calloc(n ? n : 1, sizeof *sizes);
    char *h = sizes ? build_header(t, n, meta, n_meta, &hlen, sizes, err) : NULL;
    if (!h) {
        free(sizes);
        return sizes ? -1 : rwkv_fail(err, "safetensors writer: out of memory");
    }
    total = 8 + hlen;
    for (size_t i = 0; i < n; i++)
        total += sizes[i];
    unsigned char *b = malloc(total);
    if (!b) {
        free(h);
        free(sizes);
        return rwkv_fail(err, "safetensors writer: out of memory for %zu bytes", total);
    }
    put_le64(b, hlen);
    memcpy(b + 8, h, hlen);
    size_t at = 8 + hlen;
    for (size_t i = 0; i < n; i++) {
        if (sizes[i])
            memcpy(b + at, t[i].data, sizes[i]);
        at += sizes[i];
    }
    free(h);
    free(sizes);
    *out = b;
    *out_len = total;
    return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n) {
        ssize_t w = write(fd, b, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int rwkv_safetensors_write(const char *path, const rwkv_st_entry *t, size_t n, rwkv_error *err)
{
    return rwkv_safetensors_write_meta(path, t, n, NULL, 0, err);
}

int rwkv_safetensors_write_meta(const char *path, const rwkv_st_entry *t, size_t n,
                                const char *const *meta, size_t n_meta, rwkv_error *err)
{
    size_t hlen = 0;
    size_t *sizes = calloc(n ? n : 1, sizeof *sizes);
    if (!sizes)
        return rwkv_fail(err, "%s: out of memory", path);
    char *h = build_header(t, n, meta, n_meta, &hlen, sizes, err);
    if (!h) {
        free(sizes);
        return rwkv_fail_prefix(err, "%s", path);
    }
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16), *dir = strdup(path);
    int fd = -1, rc = -1;
    const char *step = "out of memory";
    if (!tmp || !dir)
        goto fail;
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp.XXXXXX", 12);
    step = "create a temporary file";
    fd = mkstemp(tmp);
    if (fd < 0) {
        tmp[0] = '\0';
        goto fail;
    }
    unsigned char len8[8];
    put_le64(len8, hlen);
    step = "set permissions of"; /* mkstemp creates 0600; a model is ordinary data */
    if (fchmod(fd, 0644) != 0)
        goto fail;
    step = "write";
    if (write_all(fd, len8, 8) != 0 || write_all(fd, h, hlen) != 0)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (sizes[i] && write_all(fd, t[i].data, sizes[i]) != 0)
            goto fail;
    step = "fsync";
    if (fsync(fd) != 0)
        goto fail;
    step = "close";
    int c = close(fd);
    fd = -1;
    if (c != 0)
        goto fail;
    step = "rename the temporary file";
    if (rename(tmp, path) != 0)
        goto fail;
    tmp[0] = '\0';
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    rc = 0;
    goto done;
fail:
    rwkv_fail(err, "%s: cannot %s: %s", path, step, strerror(errno));
done:
    if (fd >= 0)
        close(fd);
    if (tmp && tmp[0])
        unlink(tmp);
    free(tmp);
    free(dir);
    free(h);
    free(sizes);
    return rc;
}
