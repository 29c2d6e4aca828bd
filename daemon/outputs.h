/* outputs.h — encoding the messages of PROTOCOL.md §4 and queuing them on
 * the outbox (journaled): block and final messages (made by output_stage.h
 * from the engine's results), errors and acks.  Internal to the daemon. */
#ifndef RWKVD_OUTPUTS_H
#define RWKVD_OUTPUTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/msg_segments.h"
#include "daemon/server.h"

/* Encodes and queues one block or final output of session s (journaled).
 * -1 with err when memory or the journal fails. */
/* The segments message (core/msg_segments.h), journaled like a block. */
int rwkvd_queue_segments(rwkvd_server *srv, const rwkvd_session *s,
                         const rwkvd_segments_out *o, rwkv_error *err);
int rwkvd_queue_block(rwkvd_server *srv, const rwkvd_session *s, const rwkvd_block_out *b,
                      rwkv_error *err);
int rwkvd_queue_final(rwkvd_server *srv, const rwkvd_session *s, const rwkvd_final_out *f,
                      rwkv_error *err);

#endif
