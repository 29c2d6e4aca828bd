/* world_tokenizer.c — the RWKV World tokenizer: greedy longest match over
 * bytes, walked in the double-array trie of its vocabulary.
 *
 * Matches the official TRIE_TOKENIZER: at each position take the longest
 * vocabulary entry that is a prefix of the remaining bytes.  The vocabulary
 * must contain every single byte (checked at load), so encoding never
 * fails.  A position is settled once the walk from it falls off the trie
 * (or reaches a leaf) before the end of the buffer; otherwise more input
 * could still extend the match, and the bytes from that position on are the
 * held tail: always a proper prefix of some token, so at most max_len - 1
 * bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "core/tokenize/token_trie.h"
#include "core/tokenize/tokenizer_internal.h"
#include "core/tokenize/world_vocab.h"

typedef struct world_impl {
    world_vocab vocab;
    token_trie trie;
} world_impl;

static int world_encode_prefix(const rwkv_tokenizer *t, const uint8_t *buf, size_t len,
                               bool final, rwkv_ids *out, size_t *consumed, rwkv_error *err)
{
    const world_impl *w = t->impl;
    const trie_cell *c = w->trie.cells;
    size_t p = 0;
    while (p < len) {
        uint32_t s = 0, best_id = TRIE_NONE;
        size_t best_end = p, i = p;
        for (; i < len; i++) {
            uint32_t nx = c[s].base + buf[i];
            if (c[nx].check != s)
                break;
            s = nx;
            if (c[s].value != TRIE_NONE) {
                best_id = c[s].value;
                best_end = i + 1;
            }
        }
        if (i == len && !final && c[s].base != 0)
            break; /* the match from p could still grow */
        if (best_id == TRIE_NONE) {
            *consumed = p;
            return rwkv_fail(err, "world tokenizer: no token for byte 0x%02x (internal error)",
                             buf[p]);
        }
        if (tok_push(out, best_id, err) != 0) {
            *consumed = p;
            return -1;
        }
        p = best_end;
    }
    *consumed = p;
    return 0;
}

static bool world_pending_ok(const rwkv_tokenizer *t, const uint8_t *bytes, size_t n)
{
    const world_impl *w = t->impl;
    uint32_t s = token_trie_walk(&w->trie, bytes, n);
    return s != TRIE_NONE && w->trie.cells[s].base != 0;
}

static void world_destroy(rwkv_tokenizer *t)
{
    world_impl *w = t->impl;
    if (!w)
        return;
    world_vocab_free(&w->vocab);
    token_trie_free(&w->trie);
    free(w);
}

/* 1-based line number of byte offset off (only for error messages). */
static size_t line_of(const uint8_t *buf, size_t off)
{
    size_t line = 1;
    for (const uint8_t *p = buf, *e = buf + off; (p = memchr(p, '\n', (size_t)(e - p))); p++)
        line++;
    return line;
}

static const tokenizer_ops world_ops = {
    .encode_prefix = world_encode_prefix,
    .pending_ok = world_pending_ok,
    .destroy = world_destroy,
};

int world_tokenizer_parse(const char *label, const uint8_t *buf, size_t len,
                          rwkv_tokenizer **out, rwkv_error *err)
{
    *out = NULL;
    rwkv_tokenizer *t = calloc(1, sizeof *t);
    world_impl *w = calloc(1, sizeof *w);
    if (!t || !w) {
        free(t);
        free(w);
        return rwkv_fail(err, "%s: out of memory", label);
    }
    t->impl = w;
    t->ops = &world_ops;
    if (world_vocab_parse(label, buf, len, &w->vocab, err) != 0) {
        world_destroy(t);
        free(t);
        return -1;
    }
    const world_vocab *v = &w->vocab;
    uint32_t a, b;
    int rc = token_trie_build(&w->trie, v->pool, v->off, v->len, (size_t)v->n_tokens + 1, &a, &b);
    if (rc == TRIE_DUPLICATE) {
        rwkv_fail(err, "%s: line %zu, byte %u: id %u decodes to the same bytes as id %u "
                  "(line %zu)", label, line_of(buf, v->line_off[b]), v->line_off[b], b, a,
                  line_of(buf, v->line_off[a]));
        goto fail;
    }
    if (rc != TRIE_OK) {
        rwkv_fail(err, "%s: out of memory building the token trie", label);
        goto fail;
    }
    for (unsigned byte = 0; byte < 256; byte++) {
        uint8_t one = (uint8_t)byte;
        uint32_t s = token_trie_walk(&w->trie, &one, 1);
        if (s == TRIE_NONE || w->trie.cells[s].value == TRIE_NONE) {
            rwkv_fail(err, "%s: the vocabulary has no token for the single byte 0x%02x "
                      "(every byte must be a token)", label, byte);
            goto fail;
        }
    }
    t->kind = RWKV_TOKENIZER_WORLD;
    t->kind_name = "world";
    t->vocab_size = v->n_tokens + 1;
    t->tok_pool = v->pool;
    t->tok_off = v->off;
    t->tok_len = v->len;
    t->max_pending = v->max_len - 1;
    t->lookahead = v->max_len;
    *out = t;
    return 0;
fail:
    world_destroy(t);
    free(t);
    return -1;
}
