/* world_literal.c — Python literal decoding for the World vocabulary (see
 * world_literal.h for the accepted syntax and why).
 *
 * One pass over the source with a bounds check before every read; the
 * output never outgrows the source (each escape or raw character yields at
 * most as many bytes as it takes to write), so the caller can size the
 * output buffer from the input alone.
 */
#include "core/tokenize/world_literal.h"

#include <stdbool.h>

#include "core/utf8.h"

#define FAIL(off, msg)                                                                \
    do {                                                                              \
        *err_off = (off);                                                             \
        *why = (msg);                                                                 \
        return -1;                                                                    \
    } while (0)

size_t world_utf8_seq_len(const uint8_t *s, size_t len)
{
    if (len == 0)
        return 0;
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    size_t need;
    uint8_t lo, hi; /* allowed range of the second byte */
    if (rwkv_utf8_lead(c, &need, &lo, &hi) != 0)
        return 0;
    size_t n = need + 1;
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

static size_t put_utf8(uint8_t *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

static int hex_val(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads exactly n hex digits at src[i..]; -1 when short or not hex. */
static int64_t read_hex(const uint8_t *src, size_t len, size_t i, size_t n)
{
    if (len - i < n)
        return -1;
    int64_t v = 0;
    for (size_t k = 0; k < n; k++) {
        int h = hex_val(src[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static uint32_t simple_escape(uint8_t c)
{
    switch (c) {
    case '\\': return '\\';
    case '\'': return '\'';
    case '"': return '"';
    case 'a': return 0x07;
    case 'b': return 0x08;
    case 'f': return 0x0C;
    case 'n': return 0x0A;
    case 'r': return 0x0D;
    case 't': return 0x09;
    case 'v': return 0x0B;
    default: return UINT32_MAX;
    }
}

int world_literal_decode(const uint8_t *src, size_t len, uint8_t *out, size_t *out_len,
                         size_t *used, size_t *err_off, const char **why)
{
    size_t i = 0, o = 0;
    bool bytes = false;
    if (i < len && (src[i] == 'b' || src[i] == 'B')) {
        bytes = true;
        i++;
    } else if (i < len && (src[i] == 'u' || src[i] == 'U')) {
        i++;
    }
    if (i >= len)
        FAIL(i, "expected a quoted literal");
    uint8_t q = src[i];
    if (q != '\'' && q != '"')
        FAIL(i, "expected a quoted literal");
    i++;
    if (len - i >= 2 && src[i] == q && src[i + 1] == q)
        FAIL(i - 1, "triple-quoted literals are not supported");
    for (;;) {
        if (i >= len)
            FAIL(i, "unterminated literal");
        uint8_t c = src[i];
        if (c == q) {
            i++;
            break;
        }
        if (c == 0)
            FAIL(i, "NUL byte in literal");
        if (c == '\r')
            FAIL(i, "carriage return inside a literal");
        if (c >= 0x80) {
            if (bytes)
                FAIL(i, "non-ASCII character in a bytes literal");
            size_t n = world_utf8_seq_len(src + i, len - i);
            if (n == 0)
                FAIL(i, "invalid UTF-8 in literal");
            for (size_t k = 0; k < n; k++)
                out[o++] = src[i + k];
            i += n;
            continue;
        }
        if (c != '\\') {
            out[o++] = c;
            i++;
            continue;
        }
        /* escape sequence */
        size_t esc = i;
        i++;
        if (i >= len)
            FAIL(esc, "backslash at end of line");
        c = src[i];
        uint32_t v = simple_escape(c);
        if (v != UINT32_MAX) {
            out[o++] = (uint8_t)v;
            i++;
            continue;
        }
        int64_t cp;
        if (c >= '0' && c <= '7') {
            cp = 0;
            size_t k = 0;
            while (k < 3 && i < len && src[i] >= '0' && src[i] <= '7') {
                cp = cp * 8 + (src[i] - '0');
                i++, k++;
            }
            if (bytes && cp > 0xFF)
                FAIL(esc, "octal escape above \\377 in a bytes literal");
        } else if (c == 'x') {
            cp = read_hex(src, len, i + 1, 2);
            if (cp < 0)
                FAIL(esc, "\\x needs exactly two hex digits");
            i += 3;
        } else if (!bytes && (c == 'u' || c == 'U')) {
            size_t n = c == 'u' ? 4 : 8;
            cp = read_hex(src, len, i + 1, n);
            if (cp < 0)
                FAIL(esc, c == 'u' ? "\\u needs exactly four hex digits"
                                   : "\\U needs exactly eight hex digits");
            if (cp > 0x10FFFF)
                FAIL(esc, "code point above U+10FFFF");
            if (cp >= 0xD800 && cp <= 0xDFFF)
                FAIL(esc, "surrogate code point cannot be UTF-8 encoded");
            i += 1 + n;
        } else if (c == 'N' && !bytes) {
            FAIL(esc, "named escapes \\N{...} are not supported");
        } else {
            FAIL(esc, "unknown escape sequence");
        }
        if (bytes)
            out[o++] = (uint8_t)cp;
        else
            o += put_utf8(out + o, (uint32_t)cp);
    }
    *out_len = o;
    *used = i;
    return 0;
}
