/* nats_setup.h — connecting to NATS and making sure the streams and
 * key-value buckets of PROTOCOL.md §12.2 exist.  Shared by rwkvd (cluster
 * mode) and the clients (rwkvd-send/rwkvd-sink --nats).
 *
 * Whoever comes first creates what is missing (one replica); existing
 * streams and buckets are used as they are, so an operator may create them
 * beforehand with the replication wanted. */
#ifndef RWKVD_CLUSTER_NATS_SETUP_H
#define RWKVD_CLUSTER_NATS_SETUP_H

#include <nats/nats.h>
#include <stdint.h>

#include "core/error.h"

typedef struct rwkvd_nats {
    natsConnection *nc;
    jsCtx *js;           /* streams, consumers, publishing */
    jsCtx *js_kv;        /* the lease bucket: requests that must give up quickly */
    kvStore *cluster_kv; /* rwkvd_cluster: partitions */
    kvStore *lease_kv;   /* rwkvd_leases (only when asked for) */
    int replicas;        /* of what this process creates; 1 unless set */
} rwkvd_nats;

typedef struct rwkvd_nats_params {
    const char *url;     /* comma-separated URLs */
    const char *creds;   /* "" / NULL: none */
    const char *ca;      /* "" / NULL: none (TLS per URL) */
    const char *name;    /* connection name shown by the server */
    int64_t pub_timeout_ms; /* JetStream API and PubAck wait */
    int64_t kv_timeout_ms;  /* lease requests (0 = pub_timeout_ms) */
    int replicas;           /* of streams and buckets created here (0 = 1) */
    /* async publish acks: called from the library's thread */
    jsPubAckErrHandler on_pub_error;
    void *on_pub_error_ctx;
} rwkvd_nats_params;

/* Connects (retrying reconnects forever) and creates the JetStream context.
 * -1 with err naming the URL. */
int rwkvd_nats_connect(rwkvd_nats *n, const rwkvd_nats_params *p, rwkv_error *err);

/* Creates RWKVD_IN and RWKVD_OUT when missing. */
int rwkvd_nats_ensure_streams(rwkvd_nats *n, rwkv_error *err);

/* The cluster's partition count: created as `want` when absent, else read;
 * a mismatch with want (want > 0) is an error.  want == 0: only read (error
 * when absent).  *out = the cluster's count. */
int rwkvd_nats_partitions(rwkvd_nats *n, uint32_t want, uint32_t *out, rwkv_error *err);

/* Opens (creating) the lease bucket with TTL ttl_ms. */
int rwkvd_nats_lease_bucket(rwkvd_nats *n, int64_t ttl_ms, rwkv_error *err);

void rwkvd_nats_close(rwkvd_nats *n);

/* "<nats status text>: <last error>" for messages. */
const char *rwkvd_nats_why(natsStatus s);

#endif
