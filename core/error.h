/* error.h — how every core function reports failure.
 *
 * Errors are values: a function that can fail returns 0 on success and -1 on
 * failure, and fills the caller's rwkv_error (when the pointer is not NULL)
 * with one human-readable line that names the file and, for parsers, the byte
 * offset where the input went wrong.  Library code never prints and never
 * exits; the caller decides what to do with the message.
 */
#ifndef RWKV_ERROR_H
#define RWKV_ERROR_H

#include <stddef.h>

#define RWKV_ERROR_MAX 512

typedef struct rwkv_error {
    char msg[RWKV_ERROR_MAX]; /* NUL-terminated; empty when no error was set */
} rwkv_error;

/* Formats the message into err (if not NULL) and returns -1, so parsers can
 * write `return rwkv_fail(err, "%s: offset %zu: bad tag", path, off);`.
 * Thread safe: touches only *err. */
int rwkv_fail(rwkv_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to an already set message (used to add context such as
 * a file name when a lower layer only knew an offset). Returns -1. */
int rwkv_fail_prefix(rwkv_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears the message. */
void rwkv_error_clear(rwkv_error *err);

#endif
