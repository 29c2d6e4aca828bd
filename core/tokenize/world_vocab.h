/* world_vocab.h — parser of the RWKV World vocabulary text file
 * (rwkv_vocab_v20230424.txt): one token per line, `<id> <literal> <length>`.
 *
 * The file is outside input and is checked completely:
 *   - every line is exactly: decimal id (no sign, no leading zeros), one
 *     space, a Python literal (see world_literal.h), one space, the decimal
 *     byte length of the decoded token, end of line;
 *   - lines end in "\n" or "\r\n" (the official loader reads with universal
 *     newlines); the last line may lack its newline; an empty line, NUL
 *     bytes or any other stray byte is an error;
 *   - the decoded byte count must equal the length column;
 *   - ids are unique and exactly 1..N for a file of N lines (id 0 is the
 *     end-of-document token and never appears in the file);
 *   - tokens are 1..WORLD_MAX_TOKEN_BYTES bytes long.
 * Duplicate token bytes and missing single-byte tokens are checked by the
 * tokenizer when it builds its trie (world_tokenizer.c).
 * An empty file is an error.  Errors name the label, the line and the byte
 * offset of the offending byte in the file.
 */
#ifndef RWKV_WORLD_VOCAB_H
#define RWKV_WORLD_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Longest token accepted (the real vocabulary's longest is 128 bytes).  It
 * bounds what a streaming encoder can ever hold back. */
#define WORLD_MAX_TOKEN_BYTES 1024

typedef struct world_vocab {
    uint32_t n_tokens;  /* ids 1..n_tokens; id 0 has no bytes */
    uint32_t max_len;   /* longest token in bytes */
    uint8_t *pool;      /* all token bytes */
    uint32_t *off;      /* [n_tokens + 1]: token id is pool[off[id] .. off[id] + len[id]) */
    uint32_t *len;      /* [n_tokens + 1]: len[0] = 0 */
    uint32_t *line_off; /* [n_tokens + 1]: byte offset in the file of the line of each id */
} world_vocab;

/* Parses buf[0..len).  On success returns 0 and fills *v (free it with
 * world_vocab_free).  On failure returns -1, *v is left empty (nothing to
 * free) and err holds "label: line L, byte B: why".  Thread safe. */
int world_vocab_parse(const char *label, const uint8_t *buf, size_t len, world_vocab *v,
                      rwkv_error *err);

/* Frees what world_vocab_parse allocated; accepts NULL and empty vocabs. */
void world_vocab_free(world_vocab *v);

#endif
