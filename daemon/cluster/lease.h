/* lease.h — partition leases in a JetStream key-value bucket
 * (PROTOCOL.md §11.5, §11.6).
 *
 * Key p.<n> holds the owner's worker id.  Every change is a compare-and-
 * set on the key's revision, and the bucket's TTL expires the key of a
 * worker that stops renewing.  The revision of the worker's last successful
 * write is the fencing token.  A lease counts as valid locally until
 * 0.8 TTL after the moment its last write was SENT (the server's expiry
 * starts later), so a worker stops before anyone else can start.
 * Not thread safe: the main loop owns it. */
#ifndef RWKVD_CLUSTER_LEASE_H
#define RWKVD_CLUSTER_LEASE_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct rwkvd_lease {
    bool owned;
    uint64_t revision;  /* fencing token while owned */
    double sent_at;     /* when the last successful write was sent */
} rwkvd_lease;

typedef struct rwkvd_leases {
    kvStore *kv;
    const char *worker;
    uint32_t n;
    double ttl;         /* seconds */
    rwkvd_lease *p;     /* [n] */
    uint64_t lost_total, acquired_total, released_total;
} rwkvd_leases;

int rwkvd_leases_init(rwkvd_leases *L, kvStore *kv, const char *worker, uint32_t n, double ttl);
void rwkvd_leases_free(rwkvd_leases *L);

/* Valid: owned and within 0.8 TTL of the last write. */
bool rwkvd_lease_valid(const rwkvd_leases *L, uint32_t part, double now);

/* Tries to take a free partition.  1 taken, 0 someone holds it or the
 * server did not answer. */
int rwkvd_lease_acquire(rwkvd_leases *L, uint32_t part, double now);

/* Renews an owned lease.  0 renewed, 1 not answered (still owned until it
 * runs out), -1 lost (another revision: the caller drops the partition). */
int rwkvd_lease_renew(rwkvd_leases *L, uint32_t part, double now);

/* Gives an owned lease up (empty value, compare-and-set); the entry is
 * marked not owned whatever the server answered. */
void rwkvd_lease_release(rwkvd_leases *L, uint32_t part);

/* Marks a lease not owned (after it ran out). */
void rwkvd_lease_forget(rwkvd_leases *L, uint32_t part);

uint32_t rwkvd_leases_owned(const rwkvd_leases *L);

/* Puts w.<worker> and counts the w.* keys (live workers, this one
 * included).  Returns the count, at least 1. */
uint32_t rwkvd_leases_presence(rwkvd_leases *L);

/* Removes w.<worker> (clean stop). */
void rwkvd_leases_leave(rwkvd_leases *L);

#endif
