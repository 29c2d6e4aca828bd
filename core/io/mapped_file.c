/* mapped_file.c — open + fstat + mmap of a checkpoint (see mapped_file.h).
 *
 * The descriptor is closed right after mapping: the mapping keeps the file
 * alive.  MADV_WILLNEED asks the kernel to start reading ahead, since every
 * byte of a checkpoint is going to be used.
 */
#include "core/io/mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int rwkv_mapped_file_open(const char *path, rwkv_mapped_file *mf, rwkv_error *err)
{
    mf->data = NULL;
    mf->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rwkv_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return rwkv_fail(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return rwkv_fail(err, "%s: not a regular file", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return rwkv_fail(err, "%s: file size %lld does not fit in memory", path,
                         (long long)st.st_size);
    }
    size_t len = (size_t)st.st_size;
    if (len == 0) {
        close(fd);
        return 0;
    }
    void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return rwkv_fail(err, "%s: cannot map %zu bytes: %s", path, len, strerror(e));
    (void)madvise(p, len, MADV_WILLNEED);
    mf->data = p;
    mf->len = len;
    return 0;
}

void rwkv_mapped_file_close(rwkv_mapped_file *mf)
{
    if (!mf || !mf->data)
        return;
    munmap((void *)mf->data, mf->len);
    mf->data = NULL;
    mf->len = 0;
}
