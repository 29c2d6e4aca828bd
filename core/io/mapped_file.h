/* mapped_file.h — a whole file mapped read-only into memory.
 *
 * Checkpoints are read through one private read-only mapping so that tensors
 * can be used in place (no copy, pages shared with the page cache).  An empty
 * file is not an error here: it maps to data == NULL, len == 0 and the format
 * parsers reject it with a message of their own.
 */
#ifndef RWKV_MAPPED_FILE_H
#define RWKV_MAPPED_FILE_H

#include <stddef.h>

#include "core/error.h"

typedef struct rwkv_mapped_file {
    const unsigned char *data; /* page aligned; NULL when len == 0 */
    size_t len;
} rwkv_mapped_file;

/* Maps `path` read-only (MAP_PRIVATE).  Returns 0 and fills *mf, or -1 with an
 * error naming the path and the failing system call (mf is then zeroed).
 * Rejects anything that is not a regular file.  Thread safe. */
int rwkv_mapped_file_open(const char *path, rwkv_mapped_file *mf, rwkv_error *err);

/* Unmaps; accepts NULL and an already closed/zeroed struct. */
void rwkv_mapped_file_close(rwkv_mapped_file *mf);

#endif
