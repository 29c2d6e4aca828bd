/* docs.c — the server's documents in memory: its table (doc_table.h) and
 * its ready FIFO (ready_fifo.h), kept in step with the server's totals
 * (pending tokens, held bytes). */
#include "daemon/server.h"

rwkvd_session *rwkvd_docs_find(rwkvd_server *srv, const uint8_t *doc, size_t len)
{
    return rwkvd_doc_table_find(&srv->docs, doc, len);
}

int rwkvd_docs_insert(rwkvd_server *srv, rwkvd_session *s, rwkv_error *err)
{
    if (rwkvd_doc_table_insert(&srv->docs, s, err) != 0)
        return -1;
    srv->pending_tokens += s->pending.n;
    return 0;
}

void rwkvd_docs_remove(rwkvd_server *srv, rwkvd_session *s)
{
    rwkvd_doc_table_remove(&srv->docs, s);
    rwkvd_ready_fifo_remove(&srv->ready, s);
    srv->pending_tokens -= s->pending.n;
    srv->held_bytes -= s->held_bytes;
}

void rwkvd_docs_touch(rwkvd_server *srv, rwkvd_session *s)
{
    rwkvd_doc_table_touch(&srv->docs, s);
}

void rwkvd_ready_push(rwkvd_server *srv, rwkvd_session *s)
{
    /* a failed push leaves s unqueued: retried when the document next
     * changes */
    if (rwkvd_session_ready(s))
        (void)rwkvd_ready_fifo_push(&srv->ready, s);
}

rwkvd_session *rwkvd_ready_pop(rwkvd_server *srv)
{
    return rwkvd_ready_fifo_pop(&srv->ready);
}
