/* token_trie.h — the longest-match structure of the byte-trie tokenizers: a
 * double-array trie over token bytes.
 *
 * Why a double array: greedy longest match walks the trie one byte at a time
 * from every token start, so the step is the inner loop of encoding.  Here a
 * step is an add and one compare inside one 12-byte cell (next = base[s] +
 * byte; valid iff check[next] == s), with no pointer chasing through
 * malloc'ed nodes and no search among children.  All cells live in one
 * array, so the structure loads in milliseconds and is trivially shared.
 *
 * Layout: cell 0 is the root; its children are at 1 + byte.  A leaf has
 * base 0 (its step lands among the root's children, whose check is 0, never
 * the leaf's own index).  The array always extends 256 cells past the
 * largest base, so a step never reads out of bounds.  Immutable after
 * building: any number of threads may walk it.
 */
#ifndef RWKV_TOKEN_TRIE_H
#define RWKV_TOKEN_TRIE_H

#include <stddef.h>
#include <stdint.h>

#define TRIE_NONE UINT32_MAX

typedef struct trie_cell {
    uint32_t base;  /* children at base + byte; 0 for a leaf */
    uint32_t check; /* index of the parent, TRIE_NONE for a free cell */
    uint32_t value; /* token id ending here, or TRIE_NONE */
} trie_cell;

typedef struct token_trie {
    trie_cell *cells;
    size_t n_cells;
    size_t n_nodes;     /* nodes in use (root included) */
    uint32_t max_depth; /* longest key */
} token_trie;

enum { TRIE_OK = 0, TRIE_ENOMEM = -1, TRIE_DUPLICATE = -2 };

/* Builds the trie of n keys: key `id` is pool[off[id] .. off[id] + len[id])
 * with value id; keys of length 0 are skipped.  Returns TRIE_OK;
 * TRIE_ENOMEM; or TRIE_DUPLICATE with *dup_a < *dup_b the ids of two equal
 * keys.  On failure *t is left empty.  Keys must be at most 65535 bytes. */
int token_trie_build(token_trie *t, const uint8_t *pool, const uint32_t *off,
                     const uint32_t *len, size_t n, uint32_t *dup_a, uint32_t *dup_b);

void token_trie_free(token_trie *t); /* accepts NULL and empty tries */

/* One step: the child of node s along byte b, or TRIE_NONE. */
static inline uint32_t token_trie_step(const trie_cell *c, uint32_t s, uint8_t b)
{
    uint32_t t = c[s].base + b;
    return c[t].check == s ? t : TRIE_NONE;
}

/* The node reached from the root by bytes[0..n), or TRIE_NONE. */
uint32_t token_trie_walk(const token_trie *t, const uint8_t *bytes, size_t n);

#endif
