/* outputs.h — turning engine results into the messages of PROTOCOL.md §4:
 * embeddings (pooling, L2 normalisation; top-k is in topk.h), and queuing
 * block/final/error/ack messages on the outbox.  Internal to the daemon. */
#ifndef RWKVD_OUTPUTS_H
#define RWKVD_OUTPUTS_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/server.h"

/* Scales v to unit L2 norm (left alone when the norm is 0). */
void rwkvd_l2_normalize(float *v, size_t n);

/* Encodes and queues one block or final output of session s (journaled).
 * -1 with err when memory or the journal fails. */
int rwkvd_queue_block(rwkvd_server *srv, const rwkvd_session *s, const rwkvd_block_out *b,
                      rwkv_error *err);
int rwkvd_queue_final(rwkvd_server *srv, const rwkvd_session *s, const rwkvd_final_out *f,
                      rwkv_error *err);

#endif
