/* read_fd.h — reading a small file's bytes from a descriptor: read(2) until
 * end of file or a cap, retried on EINTR.  One loop for the places that
 * read key files, incarnation files and vocabularies. */
#ifndef RWKV_READ_FD_H
#define RWKV_READ_FD_H

#include <stddef.h>

/* Reads fd into buf until end of file or cap bytes.  0 with *got (< cap
 * means end of file came first), or the errno of the read that failed
 * (*got then holds what came before). */
int rwkv_read_up_to(int fd, void *buf, size_t cap, size_t *got);

#endif
