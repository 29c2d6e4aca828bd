/* world_literal.h — decodes one Python string or bytes literal, as written in
 * the RWKV World vocabulary file, into the token's raw bytes.
 *
 * The official loader eval()s each literal and UTF-8 encodes str results; we
 * decode the same subset of Python syntax ourselves, never executing
 * anything.  Accepted: optional prefix b/B (bytes) or u/U (str), then '...'
 * or "..." on one line (no triple quotes, no raw strings).  Escapes: \\ \' \"
 * \a \b \f \n \r \t \v, octal \o \oo \ooo, \xHH, and in str only \uHHHH and
 * \UHHHHHHHH.  Everything else after a backslash is rejected (Python would
 * keep such a backslash with a warning; a vocabulary has no reason to rely
 * on that).
 *
 * The trap the format sets: in a str literal \xHH is the code point U+00HH
 * and becomes UTF-8 (\x80 -> C2 80); in a bytes literal it is one raw byte.
 * Raw characters in a str literal must be well-formed UTF-8 (the file is
 * read as UTF-8); a bytes literal takes raw ASCII only, as Python does.
 * Surrogate code points (U+D800..DFFF) are rejected: Python cannot encode
 * them to UTF-8 either.  NUL and CR are rejected anywhere in a literal.
 */
#ifndef RWKV_WORLD_LITERAL_H
#define RWKV_WORLD_LITERAL_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the literal that starts at src[0]; src[0..len) is the rest of the
 * line (no '\n' in it).  out must have room for len bytes: a literal never
 * decodes to more bytes than its source text.
 *
 * On success returns 0 with *out_len decoded bytes and *used = source bytes
 * up to and including the closing quote.  On failure returns -1 with
 * *err_off = offset in src of the offending byte and *why = a static
 * message.  Pure function: thread safe, no allocation. */
int world_literal_decode(const uint8_t *src, size_t len, uint8_t *out, size_t *out_len,
                         size_t *used, size_t *err_off, const char **why);

/* Length of the well-formed UTF-8 sequence at s[0..len), or 0 when the bytes
 * there are not one (bad lead byte, bad or missing continuation, overlong
 * form, surrogate, above U+10FFFF). */
size_t world_utf8_seq_len(const uint8_t *s, size_t len);

#endif
