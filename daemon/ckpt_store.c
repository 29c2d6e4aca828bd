/* ckpt_store.c — the state directory of checkpoints (see ckpt_store.h). */
#include "daemon/ckpt_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/atomic_file.h"
#include "core/sha256.h"

#define PREV_SUFFIX ".prev"

struct rwkvd_ckpt_store {
    int dirfd;
    int lockfd;
    char *dir;
};

const char *rwkvd_ckpt_store_dir(const rwkvd_ckpt_store *st) { return st->dir; }

void rwkvd_ckpt_file_name(const uint8_t *doc, size_t doc_len, char out[RWKVD_CKPT_NAME_MAX])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t digest[32];
    const uint8_t *src = doc;
    size_t n = doc_len;
    char kind = 'd';
    if (doc_len > RWKVD_CKPT_HEX_MAX) {
        rwkvd_sha256_buf(doc, doc_len, digest);
        src = digest, n = 32, kind = 'h';
    }
    size_t o = 0;
    out[o++] = kind;
    out[o++] = '-';
    for (size_t i = 0; i < n; i++) {
        out[o++] = hex[src[i] >> 4];
        out[o++] = hex[src[i] & 15];
    }
    memcpy(out + o, ".ckpt", 6);
}

/* name + ".prev" into out (name is at most RWKVD_CKPT_NAME_MAX - 6 long). */
static void prev_name(const char *name, char out[RWKVD_CKPT_NAME_MAX])
{
    size_t n = strlen(name);
    if (n > RWKVD_CKPT_NAME_MAX - sizeof PREV_SUFFIX)
        n = RWKVD_CKPT_NAME_MAX - sizeof PREV_SUFFIX;
    memcpy(out, name, n);
    memcpy(out + n, PREV_SUFFIX, sizeof PREV_SUFFIX);
}

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(const char *dir, rwkv_error *err)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return rwkv_fail(err, "state directory '%s': empty or too long a path", dir);
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return rwkv_fail(err, "%s: cannot create directory '%s': %s", dir, path, strerror(errno));
        path[i] = c;
    }
    return 0;
}

static int store_open(const char *dir, bool shared, rwkvd_ckpt_store **out, rwkv_error *err);

int rwkvd_ckpt_store_open(const char *dir, rwkvd_ckpt_store **out, rwkv_error *err)
{
    return store_open(dir, false, out, err);
}

int rwkvd_ckpt_store_open_shared(const char *dir, rwkvd_ckpt_store **out, rwkv_error *err)
{
    return store_open(dir, true, out, err);
}

static int store_open(const char *dir, bool shared, rwkvd_ckpt_store **out, rwkv_error *err)
{
    *out = NULL;
    if (make_dirs(dir, err) != 0)
        return -1;
    rwkvd_ckpt_store *st = calloc(1, sizeof *st);
    if (!st || !(st->dir = strdup(dir))) {
        free(st);
        return rwkv_fail(err, "%s: out of memory", dir);
    }
    st->lockfd = -1;
    st->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->dirfd < 0) {
        rwkv_fail(err, "%s: cannot open the state directory: %s", dir, strerror(errno));
        goto fail;
    }
    if (shared) {
        /* cluster mode: several workers, ownership by partition leases; the
         * temp files in the directory may be other workers' writes */
        *out = st;
        return 0;
    }
    st->lockfd = openat(st->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (st->lockfd < 0) {
        rwkv_fail(err, "%s/lock: cannot create (is the directory writable?): %s", dir,
                  strerror(errno));
        goto fail;
    }
    if (flock(st->lockfd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "?";
        ssize_t k = pread(st->lockfd, pid, sizeof pid - 1, 0);
        pid[k > 0 ? k : 1] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        rwkv_fail(err, "%s: the state directory is in use by another rwkvd (pid %s)", dir, pid);
        goto fail;
    }
    char me[32];
    int len = snprintf(me, sizeof me, "%ld\n", (long)getpid());
    if (ftruncate(st->lockfd, 0) != 0 || pwrite(st->lockfd, me, (size_t)len, 0) != len) {
        rwkv_fail(err, "%s/lock: cannot write (is the directory writable?): %s", dir,
                  strerror(errno));
        goto fail;
    }
    /* crash debris: half-written temp files of a previous run */
    int dfd = openat(st->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* own offset */
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        rwkv_fail(err, "%s: cannot list the state directory: %s", dir, strerror(errno));
        goto fail;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".ckpt" RWKVD_TMP_MARK) ||
            strstr(e->d_name, ".inc" RWKVD_TMP_MARK)) /* daemon/wire/incarnation.h */
            unlinkat(st->dirfd, e->d_name, 0);
    closedir(d);
    *out = st;
    return 0;
fail:
    rwkvd_ckpt_store_close(st);
    return -1;
}

void rwkvd_ckpt_store_close(rwkvd_ckpt_store *st)
{
    if (!st)
        return;
    if (st->lockfd >= 0)
        close(st->lockfd); /* releases the flock */
    if (st->dirfd >= 0)
        close(st->dirfd);
    free(st->dir);
    free(st);
}

int rwkvd_ckpt_store_save(rwkvd_ckpt_store *st, const rwkvd_ckpt *ck, int level, rwkv_error *err)
{
    char name[RWKVD_CKPT_NAME_MAX], prev[RWKVD_CKPT_NAME_MAX];
    if (ck->doc_len < 1 || ck->doc_len > RWKVD_DOC_MAX)
        return rwkv_fail(err, "%s: doc id of %zu bytes", st->dir, ck->doc_len);
    rwkvd_ckpt_file_name(ck->doc, ck->doc_len, name);
    prev_name(name, prev);
    uint8_t *bytes;
    size_t n;
    if (rwkvd_ckpt_encode(ck, level, &bytes, &n, err) != 0)
        return rwkv_fail_prefix(err, "%s/%s", st->dir, name);
    int rc = rwkvd_atomic_write(st->dirfd, st->dir, name, prev, bytes, n, err);
    free(bytes);
    return rc;
}

/* Reads a whole file of at most max_len bytes.  Returns 0, or -1 with
 * *status NOT_FOUND / IO / CORRUPT (too large) / NOMEM. */
static int read_file(rwkvd_ckpt_store *st, const char *name, uint64_t max_len, uint8_t **buf,
                     size_t *len, rwkvd_ckpt_status *status, rwkv_error *err)
{
    *buf = NULL;
    int fd = openat(st->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        *status = errno == ENOENT ? RWKVD_CKPT_NOT_FOUND : RWKVD_CKPT_IO;
        return rwkv_fail(err, "%s/%s: %s", st->dir, name, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        *status = RWKVD_CKPT_IO;
        return rwkv_fail(err, "%s/%s: not a regular file", st->dir, name);
    }
    if ((uint64_t)sb.st_size > max_len) {
        close(fd);
        *status = RWKVD_CKPT_CORRUPT;
        return rwkv_fail(err, "%s/%s: %lld bytes, more than any checkpoint can be (%llu)", st->dir,
                         name, (long long)sb.st_size, (unsigned long long)max_len);
    }
    size_t n = (size_t)sb.st_size, got = 0;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        close(fd);
        *status = RWKVD_CKPT_NOMEM;
        return rwkv_fail(err, "%s/%s: out of memory for %zu bytes", st->dir, name, n);
    }
    while (got < n) {
        ssize_t r = pread(fd, b + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(b);
            close(fd);
            *status = RWKVD_CKPT_IO;
            return rwkv_fail(err, "%s/%s: read: %s", st->dir, name,
                             r < 0 ? strerror(e) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    close(fd);
    *buf = b;
    *len = n;
    return 0;
}

static int load_one(rwkvd_ckpt_store *st, const char *name, const uint8_t *doc, size_t doc_len,
                    const rwkvd_model_id *expect, uint64_t max_raw, rwkvd_ckpt *out,
                    rwkvd_ckpt_status *status, rwkv_error *err)
{
    if (max_raw == 0)
        max_raw = RWKVD_CKPT_RAW_DEFAULT_MAX;
    /* the largest file a payload of max_raw bytes can compress to */
    uint64_t max_len = RWKVD_CKPT_HEADER_MAX + max_raw + max_raw / 128 + (1u << 17);
    uint8_t *buf;
    size_t len = 0;
    if (read_file(st, name, max_len, &buf, &len, status, err) != 0)
        return -1;
    char label[4096 + RWKVD_CKPT_NAME_MAX];
    snprintf(label, sizeof label, "%s/%s", st->dir, name);
    int rc = rwkvd_ckpt_decode(label, buf, len, expect, max_raw, out, status, err);
    free(buf);
    if (rc == 0 && (out->doc_len != doc_len || memcmp(out->doc, doc, doc_len) != 0)) {
        rwkvd_ckpt_release(out);
        *status = RWKVD_CKPT_CORRUPT;
        return rwkv_fail(err, "%s: belongs to another document", label);
    }
    return rc;
}

static int read_info(rwkvd_ckpt_store *st, const char *name, rwkvd_ckpt_info *info);

int rwkvd_ckpt_store_load(rwkvd_ckpt_store *st, const uint8_t *doc, size_t doc_len,
                          const rwkvd_model_id *expect, uint64_t max_raw, rwkvd_ckpt *out,
                          rwkvd_ckpt_load_result *res, rwkv_error *err)
{
    char name[RWKVD_CKPT_NAME_MAX], prev[RWKVD_CKPT_NAME_MAX];
    memset(res, 0, sizeof *res);
    memset(out, 0, sizeof *out);
    if (doc_len < 1 || doc_len > RWKVD_DOC_MAX) {
        res->status = RWKVD_CKPT_NOT_FOUND;
        return rwkv_fail(err, "%s: doc id of %zu bytes", st->dir, doc_len);
    }
    rwkvd_ckpt_file_name(doc, doc_len, name);
    prev_name(name, prev);
    rwkvd_ckpt_status s1, s2;
    if (load_one(st, name, doc, doc_len, expect, max_raw, out, &s1, &res->newest_error) == 0) {
        res->status = RWKVD_CKPT_OK;
        /* cluster mode: a worker that lost its lease may still have written
         * (rotating the owner's newer file to .prev); the higher fencing
         * token wins (PROTOCOL.md §12.6) */
        rwkvd_ckpt_info pi;
        if (read_info(st, prev, &pi) == 0 && pi.fence > out->fence) {
            rwkvd_ckpt alt;
            rwkvd_ckpt_status s3;
            rwkv_error e3;
            if (load_one(st, prev, doc, doc_len, expect, max_raw, &alt, &s3, &e3) == 0) {
                rwkv_fail(&res->newest_error,
                          "%s/%s: written under an older lease (fencing token %llu, the "
                          "previous generation has %llu)",
                          st->dir, name, (unsigned long long)out->fence,
                          (unsigned long long)alt.fence);
                rwkvd_ckpt_release(out);
                *out = alt;
                res->from_prev = true;
            }
        }
        return 0;
    }
    /* an intact newest of another model or precision is the document as it
     * is: the previous generation is for damage, never for going back to a
     * state the document has left (a bf16 .prev behind a "mixed" newest
     * would silently undo the precision change, PROTOCOL.md §8.1) */
    if (s1 == RWKVD_CKPT_OTHER_MODEL) {
        res->status = s1;
        return rwkv_fail(err, "%s", res->newest_error.msg);
    }
    rwkv_error e2;
    if (load_one(st, prev, doc, doc_len, expect, max_raw, out, &s2, &e2) == 0) {
        res->status = RWKVD_CKPT_OK;
        res->from_prev = true;
        return 0;
    }
    if (s1 == RWKVD_CKPT_NOT_FOUND && s2 == RWKVD_CKPT_NOT_FOUND) {
        res->status = RWKVD_CKPT_NOT_FOUND;
        return rwkv_fail(err, "%s/%s: no checkpoint", st->dir, name);
    }
    res->status = s1 != RWKVD_CKPT_NOT_FOUND ? s1 : s2;
    if (s2 == RWKVD_CKPT_NOT_FOUND)
        return rwkv_fail(err, "%s (no previous generation)", res->newest_error.msg);
    if (s1 == RWKVD_CKPT_NOT_FOUND)
        return rwkv_fail(err, "%s (newest generation missing)", e2.msg);
    return rwkv_fail(err, "%s; previous generation: %s", res->newest_error.msg, e2.msg);
}

static int hex_val(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

size_t rwkvd_ckpt_store_sweep_tmp(rwkvd_ckpt_store *st,
                                  bool (*mine)(void *ctx, const uint8_t *doc, size_t len),
                                  void *ctx)
{
    int dfd = openat(st->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* own offset */
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return 0;
    }
    size_t removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        /* d-<hex>.ckpt.tmp.<pid>.<n> */
        const char *mark = strstr(e->d_name, ".ckpt" RWKVD_TMP_MARK);
        if (e->d_name[0] != 'd' || e->d_name[1] != '-' || !mark)
            continue;
        size_t n = (size_t)(mark - (e->d_name + 2));
        if (n < 2 || n % 2 || n / 2 > RWKVD_CKPT_HEX_MAX)
            continue;
        uint8_t doc[RWKVD_CKPT_HEX_MAX];
        bool ok = true;
        for (size_t i = 0; ok && i < n / 2; i++) {
            int hi = hex_val(e->d_name[2 + 2 * i]), lo = hex_val(e->d_name[3 + 2 * i]);
            ok = hi >= 0 && lo >= 0;
            doc[i] = (uint8_t)(hi << 4 | (lo & 15));
        }
        if (ok && mine(ctx, doc, n / 2) && unlinkat(st->dirfd, e->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

int rwkvd_ckpt_store_remove(rwkvd_ckpt_store *st, const uint8_t *doc, size_t doc_len,
                            bool *existed, rwkv_error *err)
{
    char name[RWKVD_CKPT_NAME_MAX], prev[RWKVD_CKPT_NAME_MAX];
    *existed = false;
    if (doc_len < 1 || doc_len > RWKVD_DOC_MAX)
        return 0;
    rwkvd_ckpt_file_name(doc, doc_len, name);
    prev_name(name, prev);
    const char *names[2] = {name, prev};
    for (int i = 0; i < 2; i++) {
        if (unlinkat(st->dirfd, names[i], 0) == 0)
            *existed = true;
        else if (errno != ENOENT)
            return rwkv_fail(err, "%s/%s: unlink: %s", st->dir, names[i], strerror(errno));
    }
    return *existed ? rwkvd_fsync_dir(st->dirfd, st->dir, err) : 0;
}

/* Header of one file (first RWKVD_CKPT_HEADER_MAX bytes), or -1. */
static int read_info(rwkvd_ckpt_store *st, const char *name, rwkvd_ckpt_info *info)
{
    int fd = openat(st->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    uint8_t h[RWKVD_CKPT_HEADER_MAX];
    ssize_t n = pread(fd, h, sizeof h, 0);
    close(fd);
    rwkv_error e;
    if (n <= 0 || rwkvd_ckpt_read_header(name, h, (size_t)n, NULL, info, NULL, &e) != 0)
        return -1;
    char want[RWKVD_CKPT_NAME_MAX];
    rwkvd_ckpt_file_name(info->doc, info->doc_len, want);
    return strncmp(name, want, strlen(want)) == 0 ? 0 : -1; /* name must match the doc */
}

/* A name of the form [dh]-<hex>.ckpt, with or without .prev */
static bool ckpt_name(const char *s, bool *is_prev)
{
    if ((s[0] != 'd' && s[0] != 'h') || s[1] != '-' || strlen(s) > RWKVD_CKPT_NAME_MAX - 6)
        return false;
    size_t i = 2;
    while ((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))
        i++;
    if (i == 2 || (i - 2) % 2)
        return false;
    *is_prev = strcmp(s + i, ".ckpt" PREV_SUFFIX) == 0;
    return *is_prev || strcmp(s + i, ".ckpt") == 0;
}

int rwkvd_ckpt_store_list(rwkvd_ckpt_store *st, rwkvd_ckpt_list_fn fn, void *ctx, size_t *n_bad,
                          rwkv_error *err)
{
    size_t bad = 0;
    int dfd = openat(st->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* own offset */
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return rwkv_fail(err, "%s: cannot list: %s", st->dir, strerror(errno));
    }
    struct dirent *e;
    int stop = 0;
    while (!stop && (e = readdir(d))) {
        bool is_prev;
        if (!ckpt_name(e->d_name, &is_prev))
            continue;
        char other[RWKVD_CKPT_NAME_MAX];
        rwkvd_ckpt_info info;
        if (is_prev) {
            /* counted here only when the newest generation is missing */
            size_t n = strlen(e->d_name) - strlen(PREV_SUFFIX);
            memcpy(other, e->d_name, n);
            other[n] = '\0';
            if (faccessat(st->dirfd, other, F_OK, 0) == 0)
                continue;
            if (read_info(st, e->d_name, &info) == 0)
                stop = fn(ctx, &info, true);
            else
                bad++;
            continue;
        }
        if (read_info(st, e->d_name, &info) == 0) {
            stop = fn(ctx, &info, false);
            continue;
        }
        prev_name(e->d_name, other);
        if (read_info(st, other, &info) == 0)
            stop = fn(ctx, &info, true);
        else
            bad++;
    }
    closedir(d);
    if (n_bad)
        *n_bad = bad;
    return 0;
}
