/* emit_journal.c — see emit_journal.h. */
#include "daemon/emit_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crc32.h"
#include "core/le.h"

#define HDR 16

struct rwkvd_journal {
    int fd[2];
    char label[2][300];
    int cur;            /* index of the file being appended to */
    size_t cur_records; /* records in the current file */
    size_t keep;
    uint64_t serial;    /* of the next record */
    off_t cur_end;      /* where the next record goes */
    int unsynced;
};

static uint32_t record_crc(const uint8_t *hdr, const void *msg, size_t len)
{
    uint32_t c = rwkv_crc32(0, hdr, 4);          /* length */
    c = rwkv_crc32(c, hdr + 8, 8);               /* serial */
    return rwkv_crc32(c, msg, len);
}

typedef struct {
    uint64_t first, last; /* serials */
    size_t records;
    off_t end;            /* after the last intact record */
} file_scan;

/* Walks a file's intact records; fn may be NULL (scan only). */
static int walk(int fd, file_scan *sc, rwkvd_journal_fn fn, void *ctx, size_t *n_bad)
{
    memset(sc, 0, sizeof *sc);
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    off_t at = 0;
    uint8_t hdr[HDR];
    uint8_t *buf = NULL;
    size_t cap = 0;
    while (at + HDR <= st.st_size) {
        if (pread(fd, hdr, HDR, at) != HDR)
            break;
        uint32_t len = rwkv_get32(hdr);
        if (len > RWKVD_JOURNAL_RECORD_MAX || at + HDR + (off_t)len > st.st_size) {
            if (n_bad)
                (*n_bad)++;
            break;
        }
        if (len > cap) {
            uint8_t *nb = realloc(buf, len);
            if (!nb)
                break;
            buf = nb;
            cap = len;
        }
        if (pread(fd, buf, len, at + HDR) != (ssize_t)len)
            break;
        if (record_crc(hdr, buf, len) != rwkv_get32(hdr + 4)) {
            if (n_bad)
                (*n_bad)++;
            break; /* a torn tail: nothing valid follows it */
        }
        uint64_t serial = rwkv_get64(hdr + 8);
        if (!sc->records)
            sc->first = serial;
        sc->last = serial;
        sc->records++;
        at += HDR + (off_t)len;
        sc->end = at;
        if (fn && fn(ctx, buf, len) != 0)
            break;
    }
    free(buf);
    return 0;
}

int rwkvd_journal_open(int dirfd, const char *dir_label, size_t keep, rwkvd_journal **out,
                       rwkv_error *err)
{
    *out = NULL;
    rwkvd_journal *j = calloc(1, sizeof *j);
    if (!j)
        return rwkv_fail(err, "journal: out of memory");
    j->keep = keep ? keep : 1;
    for (int i = 0; i < 2; i++) {
        snprintf(j->label[i], sizeof j->label[i], "%s/emit.journal.%d", dir_label, i);
        char name[32];
        snprintf(name, sizeof name, "emit.journal.%d", i);
        j->fd[i] = openat(dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (j->fd[i] < 0) {
            rwkv_fail(err, "%s: %s", j->label[i], strerror(errno));
            if (i)
                close(j->fd[0]);
            free(j);
            return -1;
        }
    }
    /* the current file is the one holding the newest records */
    file_scan a, b;
    walk(j->fd[0], &a, NULL, NULL, NULL);
    walk(j->fd[1], &b, NULL, NULL, NULL);
    j->cur = (b.records && (!a.records || b.last > a.last)) ? 1 : 0;
    const file_scan *c = j->cur ? &b : &a;
    j->cur_records = c->records;
    j->cur_end = c->end;
    uint64_t last = a.last > b.last ? a.last : b.last;
    j->serial = (a.records || b.records) ? last + 1 : 1;
    *out = j;
    return 0;
}

void rwkvd_journal_close(rwkvd_journal *j)
{
    if (!j)
        return;
    close(j->fd[0]);
    close(j->fd[1]);
    free(j);
}

int rwkvd_journal_replay(rwkvd_journal *j, rwkvd_journal_fn fn, void *ctx, size_t *n_bad,
                         rwkv_error *err)
{
    (void)err;
    file_scan sc;
    walk(j->fd[1 - j->cur], &sc, fn, ctx, n_bad); /* older */
    walk(j->fd[j->cur], &sc, fn, ctx, n_bad);
    return 0;
}

int rwkvd_journal_append(rwkvd_journal *j, const void *msg, size_t len, rwkv_error *err)
{
    if (len > RWKVD_JOURNAL_RECORD_MAX)
        return rwkv_fail(err, "journal: record of %zu bytes too large", len);
    if (j->cur_records >= j->keep) {
        int other = 1 - j->cur;
        if (ftruncate(j->fd[other], 0) != 0)
            return rwkv_fail(err, "%s: truncate: %s", j->label[other], strerror(errno));
        j->cur = other;
        j->cur_records = 0;
        j->cur_end = 0;
    }
    uint8_t hdr[HDR];
    rwkv_put32(hdr, (uint32_t)len);
    for (int i = 0; i < 8; i++)
        hdr[8 + i] = (uint8_t)(j->serial >> (8 * i));
    rwkv_put32(hdr + 4, record_crc(hdr, msg, len));
    if (pwrite(j->fd[j->cur], hdr, HDR, j->cur_end) != HDR ||
        (len && pwrite(j->fd[j->cur], msg, len, j->cur_end + HDR) != (ssize_t)len))
        return rwkv_fail(err, "%s: write: %s", j->label[j->cur], strerror(errno));
    j->cur_end += HDR + (off_t)len;
    j->cur_records++;
    j->serial++;
    j->unsynced = 1;
    return 0;
}

int rwkvd_journal_sync(rwkvd_journal *j, rwkv_error *err)
{
    if (!j->unsynced)
        return 0;
    if (fsync(j->fd[j->cur]) != 0)
        return rwkv_fail(err, "%s: fsync: %s", j->label[j->cur], strerror(errno));
    j->unsynced = 0;
    return 0;
}
