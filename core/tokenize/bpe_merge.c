/* bpe_merge.c — the BPE model: one word's bytes -> token ids by ranked
 * merges.
 *
 * The rule (the reference's): start with one symbol per byte; repeatedly
 * merge the adjacent pair with the lowest rank, the leftmost among equal
 * ranks; stop when no adjacent pair has a rank.  Two implementations of that
 * one rule: a plain loop that rescans the pairs after each merge (fastest for
 * the short words of real text, quadratic in the word length), and a min-heap
 * of (rank, position) with stale entries skipped on pop (n log n), used for
 * words longer than BPE_SMALL_WORD bytes so a hostile word cannot make the
 * cost quadratic.  Tests check that both give the same ids.
 *
 * The pair table is open addressing over (left id, right id) -> rank, hashed
 * with a per-load seed.  The word table holds every vocab token whose own
 * bytes merge back to exactly that token, found at load time by running the
 * merges on each token: a word that is such a token is answered by one
 * lookup.  It is a table of results
 * of the rule, not a shortcut around it (ignore_merges stays false), and it is
 * built once, so the tokenizer stays immutable and shareable by threads.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/tokenize/bpe_internal.h"
#include "core/tokenize/tokenizer_internal.h"

#define BPE_SMALL_WORD 64

struct bpe_heap_item {
    uint32_t rank, pos, right, idl, idr;
};

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_bytes(uint64_t seed, const uint8_t *p, size_t n)
{
    uint64_t h = seed ^ n;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, p, n);
    return mix64(h ^ v);
}

static inline uint32_t pair_rank(const bpe_merges *bm, uint32_t l, uint32_t r)
{
    uint64_t key = (uint64_t)l << 32 | r;
    size_t i = (size_t)mix64(key ^ bm->seed) & bm->pair_mask;
    for (;;) {
        uint64_t k = bm->pair_key[i];
        if (k == key)
            return bm->pair_rank[i];
        if (k == UINT64_MAX)
            return BPE_NONE;
        i = (i + 1) & bm->pair_mask;
    }
}

static uint32_t word_lookup(const bpe_merges *bm, const uint8_t *w, size_t n)
{
    const bpe_model *m = bm->m;
    size_t i = (size_t)hash_bytes(bm->seed, w, n) & bm->word_mask;
    for (;;) {
        uint32_t e = bm->word_id[i];
        if (e == 0)
            return BPE_NONE;
        uint32_t id = e - 1;
        if (m->len[id] == n && memcmp(m->pool + m->off[id], w, n) == 0)
            return id;
        i = (i + 1) & bm->word_mask;
    }
}

void bpe_work_free(bpe_work *w)
{
    if (!w)
        return;
    free(w->id);
    free(w->rank);
    free(w->prev);
    free(w->next);
    free(w->heap);
    memset(w, 0, sizeof *w);
}

static int work_reserve(bpe_work *w, size_t n, bool heap, rwkv_error *err)
{
    if (n > w->cap) {
        size_t cap = n < 256 ? 256 : n;
        uint32_t *a = realloc(w->id, cap * sizeof *a);
        if (a)
            w->id = a;
        uint32_t *b = realloc(w->rank, cap * sizeof *b);
        if (b)
            w->rank = b;
        uint32_t *c = realloc(w->prev, cap * sizeof *c);
        if (c)
            w->prev = c;
        uint32_t *d = realloc(w->next, cap * sizeof *d);
        if (d)
            w->next = d;
        if (!a || !b || !c || !d)
            return rwkv_fail(err, "bpe: out of memory for a word of %zu bytes", n);
        w->cap = cap;
    }
    if (heap && 3 * n > w->heap_cap) {
        size_t cap = 3 * n;
        struct bpe_heap_item *h = realloc(w->heap, cap * sizeof *h);
        if (!h)
            return rwkv_fail(err, "bpe: out of memory for a word of %zu bytes", n);
        w->heap = h;
        w->heap_cap = cap;
    }
    return 0;
}

/* The plain loop: ids[0..n) in place; returns the new count. */
static size_t merge_small(const bpe_merges *bm, uint32_t *id, uint32_t *rank, size_t n)
{
    const uint32_t *result = bm->m->merge_id;
    for (size_t i = 0; i + 1 < n; i++)
        rank[i] = pair_rank(bm, id[i], id[i + 1]);
    while (n > 1) {
        uint32_t best = BPE_NONE;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            if (rank[i] < best) {
                best = rank[i];
                bi = i;
            }
        }
        if (best == BPE_NONE)
            break;
        id[bi] = result[best];
        size_t rest = n - bi - 2; /* symbols after the merged pair */
        memmove(id + bi + 1, id + bi + 2, rest * sizeof *id);
        if (rest > 0) /* the pair (bi+1, bi+2) is gone, the later ones move down */
            memmove(rank + bi + 1, rank + bi + 2, (rest - 1) * sizeof *rank);
        n--;
        if (bi > 0)
            rank[bi - 1] = pair_rank(bm, id[bi - 1], id[bi]);
        if (bi + 1 < n)
            rank[bi] = pair_rank(bm, id[bi], id[bi + 1]);
    }
    return n;
}

static inline bool item_less(const struct bpe_heap_item *a, const struct bpe_heap_item *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(struct bpe_heap_item *h, size_t *hn, struct bpe_heap_item it)
{
    size_t i = (*hn)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!item_less(&it, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
}

static struct bpe_heap_item heap_pop(struct bpe_heap_item *h, size_t *hn)
{
    struct bpe_heap_item top = h[0], last = h[--*hn];
    size_t n = *hn, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && item_less(&h[c + 1], &h[c]))
            c++;
        if (!item_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (n > 0)
        h[i] = last;
    return top;
}

/* The heap: symbols are a linked list over the byte positions; a merged-away
 * symbol gets id BPE_NONE, so stale heap entries fail their check. */
static size_t merge_heap(const bpe_merges *bm, bpe_work *w, size_t n)
{
    uint32_t *id = w->id, *prev = w->prev, *next = w->next;
    struct bpe_heap_item *h = w->heap;
    const uint32_t *result = bm->m->merge_id;
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        prev[i] = i ? (uint32_t)(i - 1) : BPE_NONE;
        next[i] = i + 1 < n ? (uint32_t)(i + 1) : BPE_NONE;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t r = pair_rank(bm, id[i], id[i + 1]);
        if (r != BPE_NONE)
            heap_push(h, &hn, (struct bpe_heap_item){r, (uint32_t)i, (uint32_t)(i + 1), id[i],
                                                     id[i + 1]});
    }
    while (hn > 0) {
        struct bpe_heap_item it = heap_pop(h, &hn);
        uint32_t p = it.pos, q = it.right;
        if (id[p] != it.idl || id[q] != it.idr || next[p] != q)
            continue;
        id[p] = result[it.rank];
        id[q] = BPE_NONE;
        next[p] = next[q];
        if (next[p] != BPE_NONE)
            prev[next[p]] = p;
        if (prev[p] != BPE_NONE) {
            uint32_t l = prev[p], r = pair_rank(bm, id[l], id[p]);
            if (r != BPE_NONE)
                heap_push(h, &hn, (struct bpe_heap_item){r, l, p, id[l], id[p]});
        }
        if (next[p] != BPE_NONE) {
            uint32_t nx = next[p], r = pair_rank(bm, id[p], id[nx]);
            if (r != BPE_NONE)
                heap_push(h, &hn, (struct bpe_heap_item){r, p, nx, id[p], id[nx]});
        }
    }
    size_t k = 0;
    for (uint32_t i = 0; i != BPE_NONE; i = next[i])
        id[k++] = id[i];
    return k;
}

int bpe_merge_word(const bpe_merges *bm, const uint8_t *w, size_t n, int mode, bpe_work *wk,
                   rwkv_ids *out, rwkv_error *err)
{
    const bpe_model *m = bm->m;
    if (n == 1) {
        uint32_t id = m->byte_id[w[0]];
        if (id == BPE_NONE)
            return rwkv_fail(err, "bpe: no token for the byte 0x%02x", w[0]);
        return tok_push(out, id, err);
    }
    if (mode != 3 && bm->word_id) {
        uint32_t id = word_lookup(bm, w, n);
        if (id != BPE_NONE)
            return tok_push(out, id, err);
    }
    bool heap = mode == 2 || (mode != 1 && n > BPE_SMALL_WORD);
    if (work_reserve(wk, n, heap, err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        wk->id[i] = m->byte_id[w[i]];
        if (wk->id[i] == BPE_NONE)
            return rwkv_fail(err, "bpe: no token for the byte 0x%02x", w[i]);
    }
    size_t k = heap ? merge_heap(bm, wk, n) : merge_small(bm, wk->id, wk->rank, n);
    for (size_t i = 0; i < k; i++)
        if (tok_push(out, wk->id[i], err) != 0)
            return -1;
    return 0;
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n)
        p *= 2;
    return p;
}

void bpe_merges_free(bpe_merges *bm)
{
    if (!bm)
        return;
    free(bm->pair_key);
    free(bm->pair_rank);
    free(bm->word_id);
    memset(bm, 0, sizeof *bm);
}

/* Tokens whose bytes merge back to themselves. */
static int build_words(bpe_merges *bm, rwkv_error *err)
{
    const bpe_model *m = bm->m;
    uint32_t *keep = malloc((size_t)m->vocab_size * sizeof *keep);
    bpe_work wk = {0};
    rwkv_ids ids = {0};
    if (!keep)
        return rwkv_fail(err, "bpe: out of memory for the word table");
    size_t nk = 0;
    int rc = 0;
    for (uint32_t id = 0; id < m->vocab_size && rc == 0; id++) {
        uint32_t len = m->len[id];
        if (!m->is_symbol[id] || len < 2)
            continue;
        const uint8_t *b = m->pool + m->off[id];
        bool ok = true;
        for (uint32_t i = 0; i < len && ok; i++)
            ok = m->byte_id[b[i]] != BPE_NONE;
        if (!ok)
            continue;
        ids.n = 0;
        rc = bpe_merge_word(bm, b, len, 3, &wk, &ids, err);
        if (rc == 0 && ids.n == 1 && ids.v[0] == id)
            keep[nk++] = id;
    }
    bpe_work_free(&wk);
    rwkv_ids_free(&ids);
    if (rc == 0) {
        size_t cap = pow2_at_least(nk * 2);
        bm->word_id = calloc(cap, sizeof *bm->word_id);
        if (!bm->word_id)
            rc = rwkv_fail(err, "bpe: out of memory for the word table");
        bm->word_mask = cap - 1;
        for (size_t k = 0; rc == 0 && k < nk; k++) {
            uint32_t id = keep[k];
            size_t i = (size_t)hash_bytes(bm->seed, m->pool + m->off[id], m->len[id]) &
                       bm->word_mask;
            while (bm->word_id[i] != 0)
                i = (i + 1) & bm->word_mask;
            bm->word_id[i] = id + 1;
        }
    }
    free(keep);
    return rc;
}

int bpe_merges_build(bpe_merges *bm, const bpe_model *m, rwkv_error *err)
{
    memset(bm, 0, sizeof *bm);
    bm->m = m;
    /* a per-load seed, so a crafted file cannot line its ids or tokens up on
     * one probe chain (only speed depends on it, never the ids) */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    bm->seed = mix64((uint64_t)(uintptr_t)bm ^ ((uint64_t)ts.tv_nsec << 20) ^
                     (uint64_t)ts.tv_sec);
    size_t cap = pow2_at_least((size_t)m->n_merges * 2);
    bm->pair_key = malloc(cap * sizeof *bm->pair_key);
    bm->pair_rank = malloc(cap * sizeof *bm->pair_rank);
    if (!bm->pair_key || !bm->pair_rank) {
        bpe_merges_free(bm);
        return rwkv_fail(err, "bpe: out of memory for %u merges", m->n_merges);
    }
    memset(bm->pair_key, 0xFF, cap * sizeof *bm->pair_key);
    bm->pair_mask = cap - 1;
    for (uint32_t r = 0; r < m->n_merges; r++) {
        uint64_t key = (uint64_t)m->merge_left[r] << 32 | m->merge_right[r];
        size_t i = (size_t)mix64(key ^ bm->seed) & bm->pair_mask;
        while (bm->pair_key[i] != UINT64_MAX && bm->pair_key[i] != key)
            i = (i + 1) & bm->pair_mask;
        if (bm->pair_key[i] == key) {
            uint32_t first = bm->pair_rank[i];
            bpe_merges_free(bm);
            return rwkv_fail(err, "model.merges[%u] repeats the pair of model.merges[%u]", r,
                             first);
        }
        bm->pair_key[i] = key;
        bm->pair_rank[i] = r;
    }
    if (build_words(bm, err) != 0) {
        bpe_merges_free(bm);
        return -1;
    }
    return 0;
}
