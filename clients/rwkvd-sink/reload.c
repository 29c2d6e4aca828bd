/* reload.c — keys of already written records, from a JSONL file or a raw
 * directory (see reload.h). */
#include "clients/rwkvd-sink/reload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RAW_JSON_MAX (64u << 20) /* a raw .json holds no vectors: small */

typedef struct cursor {
    const char *p, *end;
} cursor;

static bool lit(cursor *c, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
        return false;
    c->p += n;
    return true;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* A JSON string as render_bytes_as_text writes it: raw bytes except \" \\
 * and \u00XX.  Stores at most cap bytes; -1 when longer or malformed. */
static int parse_jstring(cursor *c, uint8_t *out, size_t cap, size_t *n)
{
    if (!lit(c, "\""))
        return -1;
    *n = 0;
    while (c->p < c->end && *c->p != '"') {
        uint8_t ch = (uint8_t)*c->p++;
        if (ch == '\\') {
            if (c->p >= c->end)
                return -1;
            char e = *c->p++;
            if (e == '"' || e == '\\') {
                ch = (uint8_t)e;
            } else if (e == 'u' && c->end - c->p >= 4 && c->p[0] == '0' && c->p[1] == '0' &&
                       hexval(c->p[2]) >= 0 && hexval(c->p[3]) >= 0) {
                ch = (uint8_t)(hexval(c->p[2]) * 16 + hexval(c->p[3]));
                c->p += 4;
            } else {
                return -1;
            }
        }
        if (*n == cap)
            return -1;
        out[(*n)++] = ch;
    }
    return lit(c, "\"") ? 0 : -1;
}

/* {"hex":"..."} with an even number of lower-case hex digits. */
static int parse_jhex(cursor *c, uint8_t *out, size_t cap, size_t *n)
{
    if (!lit(c, "{\"hex\":\""))
        return -1;
    *n = 0;
    while (c->end - c->p >= 2 && *c->p != '"') {
        int hi = hexval(c->p[0]), lo = hexval(c->p[1]);
        if (hi < 0 || lo < 0 || *n == cap)
            return -1;
        out[(*n)++] = (uint8_t)(hi * 16 + lo);
        c->p += 2;
    }
    return lit(c, "\"}") ? 0 : -1;
}

/* Decimal digits at c (at least one) below 2^64-1 into *out. */
static int parse_count(cursor *c, const char *what, uint64_t *out, rwkv_error *err)
{
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return rwkv_fail(err, "\"%s\" is not a number", what);
    uint64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p++ - '0');
        if (v > (UINT64_MAX - 1 - d) / 10)
            return rwkv_fail(err, "\"%s\" number too large", what);
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int record_parse(const char *line, size_t len, record_key *k, rwkv_error *err)
{
    cursor c = {line, line + len};
    memset(k, 0, sizeof *k);
    uint8_t type[16];
    size_t type_len;
    if (!lit(&c, "{\"type\":") || parse_jstring(&c, type, sizeof type, &type_len) != 0) {
        /* An unusual type longer than 16 bytes is still a record, not keyed;
         * anything else is not ours. */
        cursor d = {line, line + len};
        uint8_t big[256];
        if (lit(&d, "{\"type\":") && parse_jstring(&d, big, sizeof big, &type_len) == 0)
            return 0;
        return rwkv_fail(err, "does not start with {\"type\":\"...\"");
    }
    bool block = type_len == 5 && memcmp(type, "block", 5) == 0;
    bool final = type_len == 5 && memcmp(type, "final", 5) == 0;
    bool segs = type_len == 8 && memcmp(type, "segments", 8) == 0;
    if (!block && !final && !segs)
        return 0;
    if (!lit(&c, ",\"doc\":"))
        return rwkv_fail(err, "\"doc\" does not follow \"type\"");
    int rc = c.p < c.end && *c.p == '{' ? parse_jhex(&c, k->doc, sizeof k->doc, &k->doc_len)
                                        : parse_jstring(&c, k->doc, sizeof k->doc, &k->doc_len);
    if (rc != 0 || k->doc_len == 0)
        return rwkv_fail(err, "bad \"doc\" (not 1..256 bytes as a string or {\"hex\":...})");
    k->block = KEYSET_FINAL;
    if (lit(&c, ",\"inc\":") && parse_count(&c, "inc", &k->inc, err) != 0)
        return -1;
    if (block || segs) {
        if (!lit(&c, ",\"block\":"))
            return rwkv_fail(err, "\"block\" does not follow \"doc\"");
        uint64_t v;
        if (parse_count(&c, "block", &v, err) != 0)
            return -1;
        if (segs && v >= KEYSET_SEGMENTS_BIT)
            return rwkv_fail(err, "segments \"block\" number too large");
        k->block = segs ? v | KEYSET_SEGMENTS_BIT : v;
    }
    k->keyed = true;
    /* ,"msg_hash":"<16 hex>"} at the very end (absent in older records). */
    static const char tail[] = ",\"msg_hash\":\"";
    size_t tl = sizeof tail - 1, need = tl + 16 + 2;
    if ((size_t)(c.end - c.p) >= need && memcmp(c.end - need, tail, tl) == 0 &&
        memcmp(c.end - 2, "\"}", 2) == 0) {
        uint64_t h = 0;
        const char *hp = c.end - 18;
        for (int i = 0; i < 16; i++) {
            int d = hexval(hp[i]);
            if (d < 0)
                return rwkv_fail(err, "bad \"msg_hash\"");
            h = h << 4 | (uint64_t)d;
        }
        k->has_hash = true;
        k->msg_hash = h;
    } else if (c.end == line || c.end[-1] != '}') {
        return rwkv_fail(err, "does not end with '}'");
    }
    return 0;
}

static int add_key(keyset *ks, const record_key *k, uint64_t *finals, rwkv_error *err)
{
    if (keyset_find(ks, k->doc, k->doc_len, k->inc, k->block, NULL, NULL))
        return 0; /* a duplicate in the file itself: harmless */
    if (keyset_add(ks, k->doc, k->doc_len, k->inc, k->block, k->msg_hash, k->has_hash) != 0)
        return rwkv_fail(err, "out of memory");
    if (k->block == KEYSET_FINAL)
        (*finals)++;
    return 0;
}

int reload_jsonl(const char *path, keyset *ks, uint64_t *finals, uint64_t *truncated,
                 rwkv_error *err)
{
    *truncated = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        return rwkv_fail(err, "%s: %s", path, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    uint64_t good_end = 0, lineno = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[n - 1] != '\n') {
            *truncated = (uint64_t)n; /* cut short by a crash: dropped below */
            break;
        }
        good_end += (uint64_t)n;
        size_t len = (size_t)n - 1;
        if (len == 0)
            continue;
        record_key k;
        if (record_parse(line, len, &k, err) != 0) {
            rwkv_fail_prefix(err, "%s:%llu: not a record written by rwkvd-sink", path,
                             (unsigned long long)lineno);
            rc = -1;
            break;
        }
        if (k.keyed && add_key(ks, &k, finals, err) != 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f))
        rc = rwkv_fail(err, "%s: read: %s", path, strerror(errno));
    free(line);
    fclose(f);
    if (rc == 0 && *truncated && truncate(path, (off_t)good_end) != 0)
        rc = rwkv_fail(err, "%s: cannot remove the cut-off last line: %s", path, strerror(errno));
    return rc;
}

static int reload_one(const char *path, keyset *ks, uint64_t *finals, rwkv_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rwkv_fail(err, "%s: %s", path, strerror(errno));
    struct stat st;
    char *buf = NULL;
    int rc = -1;
    if (fstat(fd, &st) != 0) {
        rwkv_fail(err, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (st.st_size <= 0 || (uint64_t)st.st_size > RAW_JSON_MAX) {
        rwkv_fail(err, "%s: %lld bytes, not a record written by rwkvd-sink", path,
                  (long long)st.st_size);
        goto out;
    }
    size_t len = (size_t)st.st_size, got = 0;
    if (!(buf = malloc(len))) {
        rwkv_fail(err, "%s: out of memory", path);
        goto out;
    }
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rwkv_fail(err, "%s: read: %s", path, r < 0 ? strerror(errno) : "file shrank");
            goto out;
        }
        got += (size_t)r;
    }
    if (buf[len - 1] == '\n')
        len--;
    record_key k;
    if (record_parse(buf, len, &k, err) != 0) {
        rwkv_fail_prefix(err, "%s: not a record written by rwkvd-sink", path);
        goto out;
    }
    rc = k.keyed ? add_key(ks, &k, finals, err) : 0;
out:
    free(buf);
    close(fd);
    return rc;
}

int reload_raw(const char *dir, keyset *ks, uint64_t *finals, rwkv_error *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return rwkv_fail(err, "%s: %s", dir, strerror(errno));
    }
    int rc = 0;
    size_t cap = strlen(dir) + 2 * 256 + 16;
    char *path = malloc(cap);
    if (!path) {
        closedir(d);
        return rwkv_fail(err, "out of memory");
    }
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, cap, "%s/%s", dir, e->d_name);
        DIR *sub = opendir(path);
        if (!sub)
            continue; /* a file at the top: not a document directory */
        struct dirent *f;
        while (rc == 0 && (f = readdir(sub)) != NULL) {
            size_t n = strlen(f->d_name);
            if (f->d_name[0] == '.' || n < 6 || strcmp(f->d_name + n - 5, ".json") != 0)
                continue;
            snprintf(path, cap, "%s/%s/%s", dir, e->d_name, f->d_name);
            rc = reload_one(path, ks, finals, err);
        }
        closedir(sub);
    }
    free(path);
    closedir(d);
    return rc;
}
