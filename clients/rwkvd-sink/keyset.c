/* keyset.c — hash set of written (doc, inc, block) keys (see keyset.h). */
#include "clients/rwkvd-sink/keyset.h"

#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

#define K1 UINT64_C(0x9E3779B97F4A7C15)
#define K2 UINT64_C(0xC2B2AE3D27D4EB4F)
#define ARENA_CHUNK 65536

static uint64_t load64(const uint8_t *p)
{
    uint64_t w = 0;
    for (int i = 7; i >= 0; i--) /* little-endian on any host; compilers fold it */
        w = (w << 8) | p[i];
    return w;
}

uint64_t hash64(const void *data, size_t n, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t a = seed ^ K1, b = (uint64_t)n * K2;
    /* Two independent lanes so the multiplies overlap. */
    while (n >= 16) {
        a = (a ^ (load64(p) * K2)) * K1;
        a = (a << 31) | (a >> 33);
        b = (b ^ (load64(p + 8) * K1)) * K2;
        b = (b << 29) | (b >> 35);
        p += 16;
        n -= 16;
    }
    uint8_t tail[16] = {0};
    memcpy(tail, p, n);
    a ^= load64(tail) * K2;
    b ^= load64(tail + 8) * K1;
    return rwkv_mix64(a ^ rwkv_mix64(b + n));
}

typedef struct entry {
    uint64_t key_hash;  /* 0 = empty slot (real hashes are forced non-zero) */
    uint64_t inc;
    uint64_t block;
    uint64_t msg_hash;
    const uint8_t *doc;
    uint16_t doc_len;
    bool has_hash;
} entry;

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used;
    uint8_t data[ARENA_CHUNK];
} arena_chunk;

struct keyset {
    entry *slots;
    size_t cap;   /* power of two */
    size_t count;
    arena_chunk *arena;
};

keyset *keyset_new(void)
{
    keyset *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cap = 1024;
    s->slots = calloc(s->cap, sizeof *s->slots);
    if (!s->slots) {
        free(s);
        return NULL;
    }
    return s;
}

void keyset_free(keyset *s)
{
    if (!s)
        return;
    arena_chunk *c = s->arena;
    while (c) {
        arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(s->slots);
    free(s);
}

static uint64_t key_hash(const uint8_t *doc, size_t doc_len, uint64_t inc, uint64_t block)
{
    uint64_t h = hash64(doc, doc_len, block ^ (inc * UINT64_C(0x9E3779B97F4A7C15)));
    return h ? h : 1;
}

static size_t probe(const keyset *s, uint64_t h, const uint8_t *doc, size_t doc_len, uint64_t inc,
                    uint64_t block)
{
    size_t mask = s->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const entry *e = &s->slots[i];
        if (e->key_hash == 0)
            return i;
        if (e->key_hash == h && e->block == block && e->inc == inc && e->doc_len == doc_len &&
            memcmp(e->doc, doc, doc_len) == 0)
            return i;
    }
}

int keyset_find(const keyset *s, const uint8_t *doc, size_t doc_len, uint64_t inc,
                uint64_t block, uint64_t *msg_hash, bool *has_hash)
{
    const entry *e =
        &s->slots[probe(s, key_hash(doc, doc_len, inc, block), doc, doc_len, inc, block)];
    if (e->key_hash == 0)
        return 0;
    if (msg_hash)
        *msg_hash = e->msg_hash;
    if (has_hash)
        *has_hash = e->has_hash;
    return 1;
}

static int grow(keyset *s)
{
    size_t cap = s->cap * 2;
    entry *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < s->cap; i++) {
        const entry *e = &s->slots[i];
        if (e->key_hash == 0)
            continue;
        size_t j = (size_t)e->key_hash & (cap - 1);
        while (slots[j].key_hash != 0)
            j = (j + 1) & (cap - 1);
        slots[j] = *e;
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

static const uint8_t *arena_copy(keyset *s, const uint8_t *doc, size_t n)
{
    if (!s->arena || ARENA_CHUNK - s->arena->used < n) {
        arena_chunk *c = malloc(sizeof *c);
        if (!c)
            return NULL;
        c->next = s->arena;
        c->used = 0;
        s->arena = c;
    }
    uint8_t *p = s->arena->data + s->arena->used;
    memcpy(p, doc, n);
    s->arena->used += n;
    return p;
}

int keyset_add(keyset *s, const uint8_t *doc, size_t doc_len, uint64_t inc, uint64_t block,
               uint64_t msg_hash, bool has_hash)
{
    if (doc_len > 0xFFFF)
        return -1;
    if ((s->count + 1) * 10 > s->cap * 7 && grow(s) != 0)
        return -1;
    uint64_t h = key_hash(doc, doc_len, inc, block);
    size_t i = probe(s, h, doc, doc_len, inc, block);
    if (s->slots[i].key_hash != 0)
        return 0; /* already present: nothing to do */
    const uint8_t *copy = arena_copy(s, doc, doc_len);
    if (!copy && doc_len)
        return -1;
    s->slots[i] = (entry){.key_hash = h, .inc = inc, .block = block, .msg_hash = msg_hash,
                          .doc = copy,
                          .doc_len = (uint16_t)doc_len, .has_hash = has_hash};
    s->count++;
    return 0;
}

size_t keyset_count(const keyset *s) { return s->count; }
