/* tokenizer_internal.h — what every tokenizer kind provides behind the public
 * rwkv_tokenizer API (tokenizer.h).  Internal to core/.
 *
 * A tokenizer is a kind, a table of token bytes (so decode needs no
 * indirection), and a small ops table.  The one encoding primitive is
 * encode_prefix: tokenize the SETTLED prefix of a buffer, i.e. the bytes
 * whose tokens no later input could change, and say how far it got.  The
 * whole-text encoder calls it with final = true; the streaming encoder
 * (token_encoder.c) calls it on each piece and holds the rest.  A later
 * kind (GPT-NeoX byte-level BPE from tokenizer.json, bpe.c) fits the same
 * shape: its settled prefix ends at a cut point between chunks that encode
 * independently.
 */
#ifndef RWKV_TOKENIZER_INTERNAL_H
#define RWKV_TOKENIZER_INTERNAL_H

#include <stdbool.h>

#include "core/tokenizer.h"

typedef struct tokenizer_ops {
    /* Appends to out the ids of the settled prefix of buf[0..len) and sets
     * *consumed to its length.  With final = true everything is settled
     * (*consumed == len).  Otherwise at most t->max_pending bytes are left,
     * and with t->lookahead or more bytes after any position below
     * len - lookahead, that position is settled.  -1 only on out of memory
     * or a broken internal invariant (err set; ids may have been appended). */
    int (*encode_prefix)(const rwkv_tokenizer *t, const uint8_t *buf, size_t len, bool final,
                         rwkv_ids *out, size_t *consumed, rwkv_error *err);
    /* Whether bytes[0..n) (0 < n <= max_pending) is a tail that
     * encode_prefix could leave unsettled. */
    bool (*pending_ok)(const rwkv_tokenizer *t, const uint8_t *bytes, size_t n);
    /* Frees the kind's own data (impl). */
    void (*destroy)(rwkv_tokenizer *t);
} tokenizer_ops;

struct rwkv_tokenizer {
    rwkv_tokenizer_kind kind;
    const char *kind_name;
    const tokenizer_ops *ops;
    uint32_t vocab_size;      /* ids are 0..vocab_size-1 */
    const uint8_t *tok_pool;  /* token id is tok_pool[tok_off[id] .. + tok_len[id]) */
    const uint32_t *tok_off;
    const uint32_t *tok_len;  /* 0 = the id has no bytes */
    size_t max_pending;       /* most bytes encode_prefix leaves unsettled */
    size_t lookahead;         /* see encode_prefix */
    void *impl;               /* kind-specific */
};

/* Builds a World tokenizer from the vocabulary text buf[0..len). */
int world_tokenizer_parse(const char *label, const uint8_t *buf, size_t len,
                          rwkv_tokenizer **out, rwkv_error *err);

/* Builds a byte-level BPE tokenizer from a tokenizer.json buf[0..len)
 * (bpe.c; the format's rules in bpe_json.c). */
int bpe_tokenizer_parse(const char *label, const uint8_t *buf, size_t len,
                        rwkv_tokenizer **out, rwkv_error *err);

/* Appends one id with the capacity check inlined (hot loops). */
static inline int tok_push(rwkv_ids *out, uint32_t id, rwkv_error *err)
{
    if (out->n < out->cap) {
        out->v[out->n++] = id;
        return 0;
    }
    return rwkv_ids_push(out, id, err);
}

#endif
