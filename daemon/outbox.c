/* outbox.c — see outbox.h.  A FIFO of malloc'ed messages. */
#include "daemon/outbox.h"

#include <errno.h>
#include <stdlib.h>
#include <zmq.h>

typedef struct item {
    struct item *next;
    void *data;
    size_t len;
} item;

struct rwkvd_outbox {
    item *head, *tail;
    size_t count, bytes;
    rwkvd_journal *journal;
};

rwkvd_outbox *rwkvd_outbox_new(rwkvd_journal *journal)
{
    rwkvd_outbox *ob = calloc(1, sizeof *ob);
    if (ob)
        ob->journal = journal;
    return ob;
}

void rwkvd_outbox_free(rwkvd_outbox *ob)
{
    if (!ob)
        return;
    for (item *it = ob->head, *next; it; it = next) {
        next = it->next;
        free(it->data);
        free(it);
    }
    free(ob);
}

int rwkvd_outbox_push(rwkvd_outbox *ob, void *data, size_t len, bool journal, rwkv_error *err)
{
    if (journal && ob->journal && rwkvd_journal_append(ob->journal, data, len, err) != 0) {
        free(data);
        return -1;
    }
    item *it = malloc(sizeof *it);
    if (!it) {
        free(data);
        return rwkv_fail(err, "outbox: out of memory");
    }
    it->next = NULL;
    it->data = data;
    it->len = len;
    if (ob->tail)
        ob->tail->next = it;
    else
        ob->head = it;
    ob->tail = it;
    ob->count++;
    ob->bytes += len;
    return 0;
}

int rwkvd_outbox_drain(rwkvd_outbox *ob, rwkvd_outbox_sink fn, void *ctx, rwkv_error *err)
{
    int sent = 0;
    while (ob->head) {
        item *it = ob->head;
        int rc = fn(ctx, it->data, it->len, err);
        if (rc < 0)
            return -1;
        if (rc > 0)
            return sent;
        ob->head = it->next;
        if (!ob->head)
            ob->tail = NULL;
        ob->count--;
        ob->bytes -= it->len;
        free(it->data);
        free(it);
        sent++;
    }
    return sent;
}

/* The emit socket as a sink: zmq_send copies; a refused send (EAGAIN)
 * leaves the item queued. */
static int zmq_sink(void *zsock, const void *data, size_t len, rwkv_error *err)
{
    if (zmq_send(zsock, data, len, ZMQ_DONTWAIT) >= 0)
        return 0;
    if (errno == EAGAIN || errno == EINTR)
        return 1;
    return rwkv_fail(err, "emit: zmq_send: %s", zmq_strerror(errno));
}

int rwkvd_outbox_flush(rwkvd_outbox *ob, void *zsock, rwkv_error *err)
{
    return rwkvd_outbox_drain(ob, zmq_sink, zsock, err);
}

size_t rwkvd_outbox_count(const rwkvd_outbox *ob)
{
    return ob->count;
}

size_t rwkvd_outbox_bytes(const rwkvd_outbox *ob)
{
    return ob->bytes;
}
