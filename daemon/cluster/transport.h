/* transport.h — the seam between the daemon's loop and a cluster message
 * system (PROTOCOL.md §12).
 *
 * Without a transport the daemon reads the ZeroMQ ingest socket and writes
 * the emit socket (server.c).  With one, server.c calls these hooks instead,
 * and persist.c asks it before and after every checkpoint.  NATS JetStream
 * is the one implementation (nats_worker.c); a Kafka source would implement
 * the same six duties: read messages of owned partitions, publish outputs,
 * make outputs durable before a checkpoint, refuse writes for partitions not
 * (or no longer) owned, acknowledge input once a checkpoint covers it, and
 * keep ownership alive (tick). */
#ifndef RWKVD_CLUSTER_TRANSPORT_H
#define RWKVD_CLUSTER_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct rwkvd_server;
struct rwkvd_session;
struct rwkvd_status_info;

typedef struct rwkvd_transport rwkvd_transport;

typedef struct rwkvd_transport_ops {
    const char *name;
    /* Reads and hands messages to rwkvd_handle_ingest while can_read(srv). */
    void (*intake)(rwkvd_transport *t, struct rwkvd_server *srv,
                   bool (*can_read)(const struct rwkvd_server *srv));
    /* Hands queued outputs to the transport without blocking long. */
    void (*flush)(rwkvd_transport *t, struct rwkvd_server *srv);
    /* Before a checkpoint: every output queued so far is stored. */
    int (*outputs_durable)(rwkvd_transport *t, struct rwkvd_server *srv, rwkv_error *err);
    /* The fencing token under which this worker may write the document's
     * checkpoint now (stored in it), or 0 when it may not. */
    uint64_t (*may_write)(rwkvd_transport *t, const uint8_t *doc, size_t len);
    /* After a durable checkpoint of s. */
    void (*saved)(rwkvd_transport *t, struct rwkvd_server *srv, const struct rwkvd_session *s);
    /* Leases, acks, rebalancing: called every loop iteration. */
    void (*tick)(rwkvd_transport *t, struct rwkvd_server *srv);
    /* Clean stop, after every document was checkpointed. */
    void (*stop)(rwkvd_transport *t, struct rwkvd_server *srv);
    /* Fills the cluster part of the status / metrics figures. */
    void (*status)(rwkvd_transport *t, struct rwkvd_status_info *st);
    void (*free)(rwkvd_transport *t);
} rwkvd_transport_ops;

struct rwkvd_transport {
    const rwkvd_transport_ops *ops;
};

/* The NATS JetStream worker (nats_worker.c), from srv->cfg. */
rwkvd_transport *rwkvd_nats_transport_new(struct rwkvd_server *srv, rwkv_error *err);

#endif
