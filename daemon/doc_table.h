/* doc_table.h — the documents in memory, by id: a chained hash table keyed
 * by the doc id bytes, and an LRU list (most recently used first) that
 * eviction walks from its tail.  Intrusive: it links sessions through their
 * hnext/lprev/lnext fields and reads only doc, doc_len and hash, so it is
 * tested alone (tests/test_doc_containers.c).  No ownership: removing a
 * session does not free it. */
#ifndef RWKVD_DOC_TABLE_H
#define RWKVD_DOC_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct rwkvd_session;

typedef struct rwkvd_doc_table {
    struct rwkvd_session **buckets; /* n_buckets, a power of two (or 0) */
    size_t n_buckets;
    size_t count;
    /* most recently used first; walk with ->lnext (->lprev from the tail) */
    struct rwkvd_session *lru_head, *lru_tail;
} rwkvd_doc_table;

/* FNV-1a of the id bytes (what session.c stores in s->hash). */
uint64_t rwkvd_doc_hash(const uint8_t *doc, size_t len);

struct rwkvd_session *rwkvd_doc_table_find(const rwkvd_doc_table *t, const uint8_t *doc,
                                           size_t len);
/* Adds s (its hash set, its id not yet in t) as the most recently used.
 * -1 with err when the table cannot grow. */
int rwkvd_doc_table_insert(rwkvd_doc_table *t, struct rwkvd_session *s, rwkv_error *err);
void rwkvd_doc_table_remove(rwkvd_doc_table *t, struct rwkvd_session *s);
/* Makes s the most recently used. */
void rwkvd_doc_table_touch(rwkvd_doc_table *t, struct rwkvd_session *s);
/* Frees the buckets (not the sessions). */
void rwkvd_doc_table_free(rwkvd_doc_table *t);

#endif
