/* read_fd.c — see read_fd.h. */
#include "core/read_fd.h"

#include <errno.h>
#include <unistd.h>

int rwkv_read_up_to(int fd, void *buf, size_t cap, size_t *got)
{
    *got = 0;
    while (*got < cap) {
        ssize_t r = read(fd, (char *)buf + *got, cap - *got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}
