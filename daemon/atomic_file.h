/* atomic_file.h — replacing a file durably: after a crash at any instant the
 * name holds either the complete old content or the complete new content.
 *
 * The boring way (redis rdb.c): write a temp file in the same directory,
 * fsync it, rename it over the name, fsync the directory.  Optionally the
 * old file is first renamed to a "previous generation" name, so a reader
 * that finds the newest file damaged can fall back to the one before.
 * The temp file is unlinked on every failure path.
 */
#ifndef RWKVD_ATOMIC_FILE_H
#define RWKVD_ATOMIC_FILE_H

#include <stddef.h>

#include "core/error.h"

/* Suffix of temp files: "<name>" RWKVD_TMP_MARK "<pid>.<n>".  Files carrying
 * it are debris of a crash and may be removed when nobody writes. */
#define RWKVD_TMP_MARK ".tmp."

/* Writes data[0..len) to dirfd/name durably.  prev_name: when not NULL and
 * name exists, name is first renamed to prev_name (replacing it).  Returns 0,
 * or -1 with err = "<dir_label>/<file>: <operation>: <strerror>" and no temp
 * file left behind.  Safe to call from several threads for DIFFERENT names. */
int rwkvd_atomic_write(int dirfd, const char *dir_label, const char *name,
                       const char *prev_name, const void *data, size_t len, rwkv_error *err);

/* fsync of an open directory; -1 with err on failure. */
int rwkvd_fsync_dir(int dirfd, const char *dir_label, rwkv_error *err);

#endif
