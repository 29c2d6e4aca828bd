/* error.c — formatting of rwkv_error messages (see error.h). */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int rwkv_fail(rwkv_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int rwkv_fail_prefix(rwkv_error *err, const char *fmt, ...)
{
    if (err) {
        char prefix[RWKV_ERROR_MAX];
        char old[RWKV_ERROR_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, err->msg, sizeof old);
        old[sizeof old - 1] = '\0';
        /* prefix + ": " + old, truncated to the buffer */
        size_t cap = sizeof err->msg - 1, n = 0;
        for (const char *parts[3] = {prefix, ": ", old}, **p = parts; p < parts + 3; p++)
            for (const char *c = *p; *c && n < cap; c++)
                err->msg[n++] = *c;
        err->msg[n] = '\0';
    }
    return -1;
}

void rwkv_error_clear(rwkv_error *err)
{
    if (err)
        err->msg[0] = '\0';
}
