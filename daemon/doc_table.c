/* doc_table.c — see doc_table.h. */
#include "daemon/doc_table.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/session.h"

uint64_t rwkvd_doc_hash(const uint8_t *doc, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ doc[i]) * 1099511628211ull;
    return h;
}

rwkvd_session *rwkvd_doc_table_find(const rwkvd_doc_table *t, const uint8_t *doc, size_t len)
{
    if (!t->n_buckets)
        return NULL;
    uint64_t h = rwkvd_doc_hash(doc, len);
    for (rwkvd_session *s = t->buckets[h & (t->n_buckets - 1)]; s; s = s->hnext)
        if (s->hash == h && s->doc_len == len && memcmp(s->doc, doc, len) == 0)
            return s;
    return NULL;
}

/* Doubles the buckets (load factor stays <= 1/2). */
static int grow(rwkvd_doc_table *t, rwkv_error *err)
{
    size_t nb = t->n_buckets ? t->n_buckets * 2 : 64;
    rwkvd_session **b = calloc(nb, sizeof *b);
    if (!b)
        return rwkv_fail(err, "out of memory for the document table");
    for (size_t i = 0; i < t->n_buckets; i++)
        for (rwkvd_session *s = t->buckets[i], *next; s; s = next) {
            next = s->hnext;
            s->hnext = b[s->hash & (nb - 1)];
            b[s->hash & (nb - 1)] = s;
        }
    free(t->buckets);
    t->buckets = b;
    t->n_buckets = nb;
    return 0;
}

static void lru_push_front(rwkvd_doc_table *t, rwkvd_session *s)
{
    s->lprev = NULL;
    s->lnext = t->lru_head;
    if (t->lru_head)
        t->lru_head->lprev = s;
    t->lru_head = s;
    if (!t->lru_tail)
        t->lru_tail = s;
}

static void lru_unlink(rwkvd_doc_table *t, rwkvd_session *s)
{
    if (s->lprev)
        s->lprev->lnext = s->lnext;
    else
        t->lru_head = s->lnext;
    if (s->lnext)
        s->lnext->lprev = s->lprev;
    else
        t->lru_tail = s->lprev;
    s->lprev = s->lnext = NULL;
}

int rwkvd_doc_table_insert(rwkvd_doc_table *t, rwkvd_session *s, rwkv_error *err)
{
    if ((t->count + 1) * 2 > t->n_buckets && grow(t, err) != 0)
        return -1;
    size_t i = s->hash & (t->n_buckets - 1);
    s->hnext = t->buckets[i];
    t->buckets[i] = s;
    lru_push_front(t, s);
    t->count++;
    return 0;
}

void rwkvd_doc_table_remove(rwkvd_doc_table *t, rwkvd_session *s)
{
    rwkvd_session **pp = &t->buckets[s->hash & (t->n_buckets - 1)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
    s->hnext = NULL;
    lru_unlink(t, s);
    t->count--;
}

void rwkvd_doc_table_touch(rwkvd_doc_table *t, rwkvd_session *s)
{
    if (t->lru_head == s)
        return;
    lru_unlink(t, s);
    lru_push_front(t, s);
}

void rwkvd_doc_table_free(rwkvd_doc_table *t)
{
    free(t->buckets);
    *t = (rwkvd_doc_table){0};
}
