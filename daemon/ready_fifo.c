/* ready_fifo.c — see ready_fifo.h. */
#include "daemon/ready_fifo.h"

#include <stdlib.h>

#include "daemon/session.h"

int rwkvd_ready_fifo_push(rwkvd_ready_fifo *f, rwkvd_session *s)
{
    if (s->queued)
        return 0;
    if (f->len == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        rwkvd_session **r = malloc(cap * sizeof *r);
        if (!r)
            return -1;
        for (size_t k = 0; k < f->len; k++)
            r[k] = f->ring[(f->head + k) % f->cap];
        free(f->ring);
        f->ring = r;
        f->cap = cap;
        f->head = 0;
    }
    f->ring[(f->head + f->len++) % f->cap] = s;
    s->queued = true;
    return 0;
}

rwkvd_session *rwkvd_ready_fifo_pop(rwkvd_ready_fifo *f)
{
    if (!f->len)
        return NULL;
    rwkvd_session *s = f->ring[f->head];
    f->head = (f->head + 1) % f->cap;
    f->len--;
    s->queued = false;
    return s;
}

void rwkvd_ready_fifo_remove(rwkvd_ready_fifo *f, rwkvd_session *s)
{
    if (!s->queued)
        return;
    size_t w = 0;
    for (size_t k = 0; k < f->len; k++) {
        rwkvd_session *x = f->ring[(f->head + k) % f->cap];
        if (x != s)
            f->ring[(f->head + w++) % f->cap] = x;
    }
    f->len = w;
    s->queued = false;
}

void rwkvd_ready_fifo_free(rwkvd_ready_fifo *f)
{
    free(f->ring);
    *f = (rwkvd_ready_fifo){0};
}
