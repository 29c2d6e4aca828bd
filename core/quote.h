/* quote.h — render untrusted bytes (tensor names, zip entry names, pickle
 * strings) safely inside a one-line error message.
 *
 * Printable ASCII is copied, everything else becomes \xNN, and the result is
 * cut with "..." so a hostile 1 MB name cannot swamp the message.
 */
#ifndef RWKV_QUOTE_H
#define RWKV_QUOTE_H

#include <stddef.h>

#define RWKV_QUOTE_MAX 96

typedef struct rwkv_quoted {
    char s[RWKV_QUOTE_MAX * 4 + 8];
} rwkv_quoted;

/* Fills q from n bytes at p and returns q->s (NUL-terminated, no newline). */
const char *rwkv_quote(rwkv_quoted *q, const void *p, size_t n);

#endif
