/* ready_fifo.h — the documents that have work for the scheduler, first come
 * first served: a growable ring of session pointers.  A session is in it at
 * most once (its `queued` flag says whether it is).  Tested alone
 * (tests/test_doc_containers.c). */
#ifndef RWKVD_READY_FIFO_H
#define RWKVD_READY_FIFO_H

#include <stddef.h>

struct rwkvd_session;

typedef struct rwkvd_ready_fifo {
    struct rwkvd_session **ring;
    size_t cap, head, len;
} rwkvd_ready_fifo;

/* Appends s unless it is queued already.  -1 when the ring cannot grow (s
 * stays unqueued: the caller retries when the document next changes). */
int rwkvd_ready_fifo_push(rwkvd_ready_fifo *f, struct rwkvd_session *s);
/* The oldest session, unqueued; NULL when empty. */
struct rwkvd_session *rwkvd_ready_fifo_pop(rwkvd_ready_fifo *f);
/* Takes s out wherever it is, keeping the others' order. */
void rwkvd_ready_fifo_remove(rwkvd_ready_fifo *f, struct rwkvd_session *s);
void rwkvd_ready_fifo_free(rwkvd_ready_fifo *f);

#endif
