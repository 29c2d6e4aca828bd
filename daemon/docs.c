/* docs.c — the documents in memory: a chained hash table keyed by the doc
 * id bytes, an LRU list (most recently used first) for eviction, and the
 * FIFO of documents that have work for the scheduler. */
#include <stdlib.h>
#include <string.h>

#include "daemon/server.h"

uint64_t rwkvd_doc_hash(const uint8_t *doc, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ doc[i]) * 1099511628211ull;
    return h;
}

rwkvd_session *rwkvd_docs_find(rwkvd_server *srv, const uint8_t *doc, size_t len)
{
    if (!srv->n_buckets)
        return NULL;
    uint64_t h = rwkvd_doc_hash(doc, len);
    for (rwkvd_session *s = srv->buckets[h & (srv->n_buckets - 1)]; s; s = s->hnext)
        if (s->hash == h && s->doc_len == len && memcmp(s->doc, doc, len) == 0)
            return s;
    return NULL;
}

static int grow(rwkvd_server *srv, rwkv_error *err)
{
    size_t nb = srv->n_buckets ? srv->n_buckets * 2 : 64;
    rwkvd_session **b = calloc(nb, sizeof *b);
    if (!b)
        return rwkv_fail(err, "out of memory for the document table");
    for (size_t i = 0; i < srv->n_buckets; i++)
        for (rwkvd_session *s = srv->buckets[i], *next; s; s = next) {
            next = s->hnext;
            s->hnext = b[s->hash & (nb - 1)];
            b[s->hash & (nb - 1)] = s;
        }
    free(srv->buckets);
    srv->buckets = b;
    srv->n_buckets = nb;
    return 0;
}

int rwkvd_docs_insert(rwkvd_server *srv, rwkvd_session *s, rwkv_error *err)
{
    if ((srv->n_active + 1) * 2 > srv->n_buckets && grow(srv, err) != 0)
        return -1;
    size_t i = s->hash & (srv->n_buckets - 1);
    s->hnext = srv->buckets[i];
    srv->buckets[i] = s;
    s->lprev = NULL;
    s->lnext = srv->lru_head;
    if (srv->lru_head)
        srv->lru_head->lprev = s;
    srv->lru_head = s;
    if (!srv->lru_tail)
        srv->lru_tail = s;
    srv->n_active++;
    srv->pending_tokens += s->pending.n;
    return 0;
}

static void lru_unlink(rwkvd_server *srv, rwkvd_session *s)
{
    if (s->lprev)
        s->lprev->lnext = s->lnext;
    else
        srv->lru_head = s->lnext;
    if (s->lnext)
        s->lnext->lprev = s->lprev;
    else
        srv->lru_tail = s->lprev;
    s->lprev = s->lnext = NULL;
}

void rwkvd_docs_remove(rwkvd_server *srv, rwkvd_session *s)
{
    rwkvd_session **pp = &srv->buckets[s->hash & (srv->n_buckets - 1)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
    lru_unlink(srv, s);
    srv->n_active--;
    srv->pending_tokens -= s->pending.n;
    srv->held_bytes -= s->held_bytes;
    /* drop it from the ready FIFO */
    if (s->queued) {
        size_t n = srv->ready_len, w = 0;
        for (size_t k = 0; k < n; k++) {
            rwkvd_session *x = srv->ready[(srv->ready_head + k) % srv->ready_cap];
            if (x != s)
                srv->ready[(srv->ready_head + w++) % srv->ready_cap] = x;
        }
        srv->ready_len = w;
        s->queued = false;
    }
}

void rwkvd_docs_touch(rwkvd_server *srv, rwkvd_session *s)
{
    if (srv->lru_head == s)
        return;
    lru_unlink(srv, s);
    s->lnext = srv->lru_head;
    if (srv->lru_head)
        srv->lru_head->lprev = s;
    srv->lru_head = s;
    if (!srv->lru_tail)
        srv->lru_tail = s;
}

void rwkvd_ready_push(rwkvd_server *srv, rwkvd_session *s)
{
    if (s->queued || !rwkvd_session_ready(s))
        return;
    if (srv->ready_len == srv->ready_cap) {
        size_t cap = srv->ready_cap ? srv->ready_cap * 2 : 64;
        rwkvd_session **r = malloc(cap * sizeof *r);
        if (!r)
            return; /* retried when the document next changes */
        for (size_t k = 0; k < srv->ready_len; k++)
            r[k] = srv->ready[(srv->ready_head + k) % srv->ready_cap];
        free(srv->ready);
        srv->ready = r;
        srv->ready_cap = cap;
        srv->ready_head = 0;
    }
    srv->ready[(srv->ready_head + srv->ready_len++) % srv->ready_cap] = s;
    s->queued = true;
}

rwkvd_session *rwkvd_ready_pop(rwkvd_server *srv)
{
    if (!srv->ready_len)
        return NULL;
    rwkvd_session *s = srv->ready[srv->ready_head];
    srv->ready_head = (srv->ready_head + 1) % srv->ready_cap;
    srv->ready_len--;
    s->queued = false;
    return s;
}
