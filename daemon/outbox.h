/* outbox.h — output messages waiting for the emit socket.
 *
 * The engine never blocks on a slow consumer: its outputs are queued here
 * and handed to ZeroMQ without waiting (ZMQ_DONTWAIT) whenever the socket
 * has room.  The main loop stops running the engine and stops reading
 * ingest while anything is queued, so this queue holds at most one engine
 * batch of outputs plus the start-up replay: memory stays bounded however
 * slow the consumer is, and backpressure reaches producers through the
 * ingest high-water mark.
 *
 * Block and final outputs are appended to the emit journal when they are
 * queued (emit_journal.h), so nothing queued here is lost by kill -9.
 * Not thread safe: the main loop owns it.
 */
#ifndef RWKVD_OUTBOX_H
#define RWKVD_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "daemon/emit_journal.h"

typedef struct rwkvd_outbox rwkvd_outbox;

/* journal may be NULL (nothing is journaled). */
rwkvd_outbox *rwkvd_outbox_new(rwkvd_journal *journal);
void rwkvd_outbox_free(rwkvd_outbox *ob); /* frees queued messages too */

/* Queues a message, taking ownership of data (malloc'ed; freed after the
 * send, or on failure).  journal: append it to the emit journal first.
 * Returns 0, or -1 with err (journal I/O error or out of memory; the
 * message is then dropped and freed). */
int rwkvd_outbox_push(rwkvd_outbox *ob, void *data, size_t len, bool journal, rwkv_error *err);

/* Hands queued messages to the socket until it would block.  Returns the
 * number handed over, or -1 with err on a socket error other than EAGAIN. */
int rwkvd_outbox_flush(rwkvd_outbox *ob, void *zsock, rwkv_error *err);

/* The same through any transport (cluster mode): fn returns 0 when it
 * took the message (it copies what it keeps), 1 when it would block (the
 * message stays queued), -1 with err on failure. */
typedef int (*rwkvd_outbox_sink)(void *ctx, const void *data, size_t len, rwkv_error *err);
int rwkvd_outbox_drain(rwkvd_outbox *ob, rwkvd_outbox_sink fn, void *ctx, rwkv_error *err);

size_t rwkvd_outbox_count(const rwkvd_outbox *ob);
size_t rwkvd_outbox_bytes(const rwkvd_outbox *ob);

#endif
