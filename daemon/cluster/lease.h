/* lease.h — partition leases in a JetStream key-value bucket
 * (PROTOCOL.md §12.5, §12.6).
 *
 * Key p.<n> holds the owner's worker id.  Every change is a compare-and-
 * set on the key's revision, and the bucket's TTL expires the key of a
 * worker that stops renewing.  The revision of the worker's last successful
 * write is the fencing token.  A lease counts as valid locally until
 * 0.8 TTL after the moment its last write was SENT (the server's expiry
 * starts later), so a worker stops before anyone else can start.
 *
 * Renewals run on their own thread (every TTL/6 it renews what is due at
 * TTL/3), so a long engine batch or a slow consumer set-up in the main
 * loop never lets a lease run out; a stopped process (SIGSTOP) stops this
 * thread too, and its leases do run out, as they must.  Acquire, release
 * and forget are the main loop's; the table is shared under a mutex. */
#ifndef RWKVD_CLUSTER_LEASE_H
#define RWKVD_CLUSTER_LEASE_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct rwkvd_lease {
    bool owned;
    bool refused;       /* a renewal was refused: lost, the main loop drops it */
    uint64_t revision;  /* fencing token while owned */
    double sent_at;     /* when the last successful write was sent */
} rwkvd_lease;

typedef struct rwkvd_leases {
    kvStore *kv;
    const char *worker;
    uint32_t n;
    double ttl;         /* seconds */
    rwkvd_lease *p;     /* [n], under mu */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t thread;
    bool running, stop;
    uint64_t lost_total, acquired_total, released_total, renewals_total;
} rwkvd_leases;

int rwkvd_leases_init(rwkvd_leases *L, kvStore *kv, const char *worker, uint32_t n, double ttl);
/* Starts the renewal thread.  -1 when it cannot. */
int rwkvd_leases_start(rwkvd_leases *L);
void rwkvd_leases_free(rwkvd_leases *L); /* stops the thread first */

/* Valid: owned, not refused, and within 0.8 TTL of the last write. */
bool rwkvd_lease_valid(rwkvd_leases *L, uint32_t part, double now);
bool rwkvd_lease_owned(rwkvd_leases *L, uint32_t part);
/* The fencing token (0 when not owned). */
uint64_t rwkvd_lease_revision(rwkvd_leases *L, uint32_t part);

/* Tries to take a free partition.  1 taken, 0 someone holds it or the
 * server did not answer. */
int rwkvd_lease_acquire(rwkvd_leases *L, uint32_t part, double now);

/* Gives an owned lease up (empty value, compare-and-set); the entry is
 * marked not owned whatever the server answered. */
void rwkvd_lease_release(rwkvd_leases *L, uint32_t part);

/* Marks a lease not owned (it ran out or a renewal was refused). */
void rwkvd_lease_forget(rwkvd_leases *L, uint32_t part);

uint32_t rwkvd_leases_owned(rwkvd_leases *L);

/* Puts w.<worker> and counts the w.* keys (live workers, this one
 * included).  Returns the count, at least 1. */
uint32_t rwkvd_leases_presence(rwkvd_leases *L);

/* Removes w.<worker> (clean stop). */
void rwkvd_leases_leave(rwkvd_leases *L);

#endif
