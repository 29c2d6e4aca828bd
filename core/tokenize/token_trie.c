/* token_trie.c — building the double-array trie (layout in token_trie.h).
 *
 * Keys are sorted once; then nodes are placed breadth first, so the hot top
 * levels of the trie sit together at the front of the array.  Each node's
 * children need a base b with every cell b + label free: candidates come
 * from a bitmap of used cells (whole occupied words are skipped with one
 * compare), first fit.  A node that finds no place among the first
 * PLACE_TRIES free candidates within PLACE_WINDOW cells of the first free
 * one goes past the end of the used region, where everything is free; this
 * bounds the work per node on hostile vocabularies, and the real one still
 * packs 99.8% dense (later single-child nodes fill the holes).
 */
#include "core/tokenize/token_trie.h"

#include <stdlib.h>
#include <string.h>

#define PLACE_TRIES 32
#define PLACE_WINDOW 4096

typedef struct builder {
    trie_cell *cells;
    uint64_t *used; /* one bit per cell */
    size_t cap;     /* cells allocated, a multiple of 64 */
    size_t hi;      /* one past the highest used cell */
    size_t first_free;
    size_t max_base;
} builder;

typedef struct span {
    uint32_t node, lo, hi, depth; /* keys order[lo..hi) share depth bytes and end at node */
} span;

typedef struct sort_ctx {
    const uint8_t *pool;
    const uint32_t *off, *len;
} sort_ctx;

static int key_cmp(const void *a, const void *b, void *arg)
{
    const sort_ctx *c = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    uint32_t lx = c->len[x], ly = c->len[y], n = lx < ly ? lx : ly;
    const uint8_t *px = c->pool + c->off[x], *py = c->pool + c->off[y];
    for (uint32_t i = 0; i < n; i++) /* keys are short: a loop beats a memcmp call */
        if (px[i] != py[i])
            return px[i] < py[i] ? -1 : 1;
    return lx < ly ? -1 : lx > ly ? 1 : (x < y ? -1 : x > y);
}

static int ensure(builder *b, size_t need)
{
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) {
        if (cap > (SIZE_MAX / sizeof(trie_cell)) / 4 || cap > (size_t)UINT32_MAX / 4)
            return -1;
        cap *= 2;
    }
    trie_cell *c = realloc(b->cells, cap * sizeof *c);
    if (!c)
        return -1;
    b->cells = c;
    uint64_t *u = realloc(b->used, cap / 64 * sizeof *u);
    if (!u)
        return -1;
    b->used = u;
    for (size_t i = b->cap; i < cap; i++)
        c[i] = (trie_cell){0, TRIE_NONE, TRIE_NONE};
    memset(u + b->cap / 64, 0, (cap - b->cap) / 64 * sizeof *u);
    b->cap = cap;
    return 0;
}

static inline int is_used(const builder *b, size_t i)
{
    return i < b->cap && ((b->used[i >> 6] >> (i & 63)) & 1);
}

/* First free cell at or after i (cells past cap are all free). */
static size_t next_free(const builder *b, size_t i)
{
    while (i < b->cap) {
        uint64_t w = ~b->used[i >> 6] & (~(uint64_t)0 << (i & 63));
        if (w)
            return (i & ~(size_t)63) + (size_t)__builtin_ctzll(w);
        i = (i | 63) + 1;
    }
    return i;
}

static void mark_used(builder *b, size_t i)
{
    b->used[i >> 6] |= (uint64_t)1 << (i & 63);
    if (i + 1 > b->hi)
        b->hi = i + 1;
    if (i == b->first_free)
        b->first_free = next_free(b, i + 1);
}

/* First fit among at most PLACE_TRIES free cells in [from, from +
 * PLACE_WINDOW]: a base >= 1 with every base + labels[j] free, or 0. */
static size_t try_place(const builder *b, size_t from, const uint8_t *labels, size_t k)
{
    size_t e = from > (size_t)labels[0] + 1 ? from : (size_t)labels[0] + 1;
    size_t stop = e + PLACE_WINDOW;
    for (int tries = 0; tries < PLACE_TRIES; tries++) {
        e = next_free(b, e);
        if (e > stop)
            return 0;
        size_t base = e - labels[0];
        size_t j = 1;
        while (j < k && !is_used(b, base + labels[j]))
            j++;
        if (j == k)
            return base;
        e++;
    }
    return 0;
}

/* A base for children with these labels (ascending): first fit from the
 * first free cell, then among the sparse cells near the end of the used
 * region, else past the end. */
static size_t find_base(const builder *b, const uint8_t *labels, size_t k)
{
    size_t base = try_place(b, b->first_free, labels, k);
    if (base == 0 && b->hi > b->first_free + PLACE_WINDOW)
        base = try_place(b, b->hi - 512, labels, k);
    if (base == 0) {
        size_t end = b->hi > (size_t)labels[0] + 1 ? b->hi : (size_t)labels[0] + 1;
        base = end - labels[0];
    }
    return base;
}

void token_trie_free(token_trie *t)
{
    if (!t)
        return;
    free(t->cells);
    memset(t, 0, sizeof *t);
}

uint32_t token_trie_walk(const token_trie *t, const uint8_t *bytes, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i < n && s != TRIE_NONE; i++)
        s = token_trie_step(t->cells, s, bytes[i]);
    return s;
}

int token_trie_build(token_trie *t, const uint8_t *pool, const uint32_t *off,
                     const uint32_t *len, size_t n, uint32_t *dup_a, uint32_t *dup_b)
{
    memset(t, 0, sizeof *t);
    *dup_a = *dup_b = TRIE_NONE;
    if (n > UINT32_MAX - 1)
        return TRIE_ENOMEM;
    int rc = TRIE_ENOMEM;
    builder b = {0};
    span *q = NULL;
    size_t q_cap = 0, q_head = 0, q_tail = 0;
    uint32_t *order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        goto out;
    size_t m = 0;
    uint32_t max_depth = 0;
    for (size_t id = 0; id < n; id++) {
        if (len[id] == 0)
            continue;
        if (len[id] > 65535)
            goto out;
        order[m++] = (uint32_t)id;
        if (len[id] > max_depth)
            max_depth = len[id];
    }
    sort_ctx sc = {pool, off, len};
    qsort_r(order, m, sizeof *order, key_cmp, &sc);
    for (size_t i = 1; i < m; i++) {
        uint32_t x = order[i - 1], y = order[i];
        if (len[x] == len[y] && memcmp(pool + off[x], pool + off[y], len[x]) == 0) {
            *dup_a = x < y ? x : y;
            *dup_b = x < y ? y : x;
            rc = TRIE_DUPLICATE;
            goto out;
        }
    }

    if (ensure(&b, 4096) != 0)
        goto out;
    b.first_free = 0;
    mark_used(&b, 0); /* the root */
    q_cap = 1024;
    q = malloc(q_cap * sizeof *q);
    if (!q)
        goto out;
    q[q_tail++] = (span){0, 0, (uint32_t)m, 0};
    size_t n_nodes = 1;
    uint8_t labels[256];
    uint32_t starts[257];
    while (q_head < q_tail) {
        span sp = q[q_head++];
        uint32_t lo = sp.lo, hi = sp.hi, d = sp.depth;
        if (lo < hi && len[order[lo]] == d) /* the key ending here sorts first */
            b.cells[sp.node].value = order[lo++];
        if (lo == hi)
            continue; /* leaf: base stays 0 */
        size_t k = 0;
        for (uint32_t i = lo; i < hi; i++) {
            uint8_t c = pool[off[order[i]] + d];
            if (k == 0 || labels[k - 1] != c) {
                labels[k] = c;
                starts[k++] = i;
            }
        }
        starts[k] = hi;
        size_t base = find_base(&b, labels, k);
        if (base > (size_t)UINT32_MAX - 512 || ensure(&b, base + 256 + 1) != 0)
            goto out;
        b.cells[sp.node].base = (uint32_t)base;
        if (base > b.max_base)
            b.max_base = base;
        if (q_tail + k > q_cap) {
            if (q_head > 0) {
                memmove(q, q + q_head, (q_tail - q_head) * sizeof *q);
                q_tail -= q_head;
                q_head = 0;
            }
            if (q_tail + k > q_cap) {
                size_t nc = q_cap * 2;
                span *nq = realloc(q, nc * sizeof *nq);
                if (!nq)
                    goto out;
                q = nq;
                q_cap = nc;
            }
        }
        for (size_t j = 0; j < k; j++) {
            size_t child = base + labels[j];
            b.cells[child].check = sp.node;
            mark_used(&b, child);
            q[q_tail++] = (span){(uint32_t)child, starts[j], starts[j + 1], d + 1};
        }
        n_nodes += k;
    }

    /* Every step reads at most cell max_base + 255. */
    size_t n_cells = b.max_base + 256 > b.hi ? b.max_base + 256 : b.hi;
    if (ensure(&b, n_cells) != 0)
        goto out;
    trie_cell *shrunk = realloc(b.cells, n_cells * sizeof *shrunk);
    if (shrunk)
        b.cells = shrunk;
    t->cells = b.cells;
    b.cells = NULL;
    t->n_cells = n_cells;
    t->n_nodes = n_nodes;
    t->max_depth = max_depth;
    rc = TRIE_OK;
out:
    free(order);
    free(q);
    free(b.cells);
    free(b.used);
    return rc;
}
