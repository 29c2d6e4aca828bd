/* quote.c — printable, bounded rendering of untrusted bytes (see quote.h). */
#include "core/quote.h"

const char *rwkv_quote(rwkv_quoted *q, const void *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *b = p;
    size_t o = 0, i;
    for (i = 0; i < n && i < RWKV_QUOTE_MAX; i++) {
        unsigned char c = b[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            q->s[o++] = (char)c;
        } else {
            q->s[o++] = '\\';
            q->s[o++] = 'x';
            q->s[o++] = hex[c >> 4];
            q->s[o++] = hex[c & 15];
        }
    }
    if (i < n) {
        q->s[o++] = '.';
        q->s[o++] = '.';
        q->s[o++] = '.';
    }
    q->s[o] = '\0';
    return q->s;
}
