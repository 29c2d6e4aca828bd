/* atomic_file.c — temp file, write, fsync, rename, fsync the directory
 * (see atomic_file.h).  All paths are relative to an open directory fd, so
 * a directory renamed under us cannot redirect the writes.
 */
#include "daemon/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_uint tmp_counter;

int rwkvd_fsync_dir(int dirfd, const char *dir_label, rwkv_error *err)
{
    if (fsync(dirfd) != 0)
        return rwkv_fail(err, "%s: fsync of the directory: %s", dir_label, strerror(errno));
    return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int rwkvd_atomic_write(int dirfd, const char *dir_label, const char *name,
                       const char *prev_name, const void *data, size_t len, rwkv_error *err)
{
    char tmp[512];
    int n = snprintf(tmp, sizeof tmp, "%s" RWKVD_TMP_MARK "%ld.%u", name, (long)getpid(),
                     atomic_fetch_add(&tmp_counter, 1));
    if (n < 0 || (size_t)n >= sizeof tmp)
        return rwkv_fail(err, "%s/%s: file name too long", dir_label, name);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return rwkv_fail(err, "%s/%s: create: %s", dir_label, tmp, strerror(errno));
    const char *op = NULL;
    if (write_all(fd, data, len) != 0)
        op = "write";
    else if (fsync(fd) != 0)
        op = "fsync";
    int saved = errno;
    if (close(fd) != 0 && !op) {
        op = "close";
        saved = errno;
    }
    if (!op && prev_name && renameat(dirfd, name, dirfd, prev_name) != 0 && errno != ENOENT) {
        op = "rename to the previous generation";
        saved = errno;
    }
    if (!op && renameat(dirfd, tmp, dirfd, name) != 0) {
        op = "rename";
        saved = errno;
    }
    if (op) {
        unlinkat(dirfd, tmp, 0);
        return rwkv_fail(err, "%s/%s: %s: %s", dir_label, name, op, strerror(saved));
    }
    return rwkvd_fsync_dir(dirfd, dir_label, err);
}
