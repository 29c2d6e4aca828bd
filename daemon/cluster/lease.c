/* lease.c — see lease.h. */
#include "daemon/cluster/lease.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VALID_FRACTION 0.8

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void key_of(uint32_t part, char out[24])
{
    snprintf(out, 24, "p.%u", part);
}

int rwkvd_leases_init(rwkvd_leases *L, kvStore *kv, const char *worker, uint32_t n, double ttl)
{
    memset(L, 0, sizeof *L);
    L->p = calloc(n, sizeof *L->p);
    if (!L->p)
        return -1;
    L->kv = kv;
    L->worker = worker;
    L->n = n;
    L->ttl = ttl;
    pthread_mutex_init(&L->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&L->wake, &ca);
    pthread_condattr_destroy(&ca);
    return 0;
}

/* One renewal of partition `part` at revision `rev`, outside the lock. */
static void renew_one(rwkvd_leases *L, uint32_t part, uint64_t rev)
{
    char key[24];
    key_of(part, key);
    double sent = mono();
    uint64_t next = 0;
    natsStatus s = kvStore_UpdateString(&next, L->kv, key, L->worker, rev);
    pthread_mutex_lock(&L->mu);
    rwkvd_lease *l = &L->p[part];
    if (l->owned && l->revision == rev) { /* not released or retaken meanwhile */
        if (s == NATS_OK) {
            l->revision = next;
            l->sent_at = sent;
            L->renewals_total++;
        } else if (s != NATS_TIMEOUT && s != NATS_CONNECTION_CLOSED &&
                   s != NATS_NO_RESPONDERS && s != NATS_CONNECTION_DISCONNECTED &&
                   s != NATS_NOT_YET_CONNECTED && s != NATS_IO_ERROR) {
            /* the server said no: another revision, or the key expired */
            l->refused = true;
        } /* no answer: tried again next round while the lease lasts */
    }
    pthread_mutex_unlock(&L->mu);
}

static void *renewer(void *arg)
{
    rwkvd_leases *L = arg;
    pthread_mutex_lock(&L->mu);
    while (!L->stop) {
        double now = mono();
        for (uint32_t p = 0; p < L->n && !L->stop; p++) {
            rwkvd_lease *l = &L->p[p];
            if (!l->owned || l->refused || now < l->sent_at + L->ttl / 3)
                continue;
            uint64_t rev = l->revision;
            pthread_mutex_unlock(&L->mu);
            renew_one(L, p, rev);
            pthread_mutex_lock(&L->mu);
        }
        double until = mono() + L->ttl / 6;
        struct timespec ts = {(time_t)until, (long)((until - (double)(time_t)until) * 1e9)};
        while (!L->stop && pthread_cond_timedwait(&L->wake, &L->mu, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

int rwkvd_leases_start(rwkvd_leases *L)
{
    if (pthread_create(&L->thread, NULL, renewer, L) != 0)
        return -1;
    L->running = true;
    return 0;
}

void rwkvd_leases_free(rwkvd_leases *L)
{
    if (!L->p)
        return;
    if (L->running) {
        pthread_mutex_lock(&L->mu);
        L->stop = true;
        pthread_cond_signal(&L->wake);
        pthread_mutex_unlock(&L->mu);
        pthread_join(L->thread, NULL);
        L->running = false;
    }
    pthread_cond_destroy(&L->wake);
    pthread_mutex_destroy(&L->mu);
    free(L->p);
    L->p = NULL;
}

bool rwkvd_lease_valid(rwkvd_leases *L, uint32_t part, double now)
{
    pthread_mutex_lock(&L->mu);
    const rwkvd_lease *l = &L->p[part];
    bool ok = l->owned && !l->refused && now < l->sent_at + VALID_FRACTION * L->ttl;
    pthread_mutex_unlock(&L->mu);
    return ok;
}

bool rwkvd_lease_owned(rwkvd_leases *L, uint32_t part)
{
    pthread_mutex_lock(&L->mu);
    bool owned = L->p[part].owned;
    pthread_mutex_unlock(&L->mu);
    return owned;
}

uint64_t rwkvd_lease_revision(rwkvd_leases *L, uint32_t part)
{
    pthread_mutex_lock(&L->mu);
    uint64_t r = L->p[part].owned ? L->p[part].revision : 0;
    pthread_mutex_unlock(&L->mu);
    return r;
}

int rwkvd_lease_acquire(rwkvd_leases *L, uint32_t part, double now)
{
    char key[24];
    key_of(part, key);
    uint64_t rev = 0;
    (void)now;
    double sent = mono();
    if (kvStore_CreateString(&rev, L->kv, key, L->worker) != NATS_OK) {
        /* a released lease holds the empty value: take it by its revision */
        kvEntry *e = NULL;
        if (kvStore_Get(&e, L->kv, key) != NATS_OK)
            return 0;
        bool empty = kvEntry_ValueLen(e) == 0;
        uint64_t last = kvEntry_Revision(e);
        kvEntry_Destroy(e);
        sent = mono();
        if (!empty || kvStore_UpdateString(&rev, L->kv, key, L->worker, last) != NATS_OK)
            return 0;
    }
    pthread_mutex_lock(&L->mu);
    L->p[part] = (rwkvd_lease){true, false, rev, sent};
    L->acquired_total++;
    pthread_mutex_unlock(&L->mu);
    return 1;
}

void rwkvd_lease_release(rwkvd_leases *L, uint32_t part)
{
    pthread_mutex_lock(&L->mu);
    rwkvd_lease *l = &L->p[part];
    bool owned = l->owned;
    uint64_t rev = l->revision;
    l->owned = false;
    if (owned)
        L->released_total++;
    pthread_mutex_unlock(&L->mu);
    if (owned) {
        char key[24];
        key_of(part, key);
        kvStore_Update(NULL, L->kv, key, "", 0, rev);
    }
}

void rwkvd_lease_forget(rwkvd_leases *L, uint32_t part)
{
    pthread_mutex_lock(&L->mu);
    if (L->p[part].owned)
        L->lost_total++;
    L->p[part].owned = false;
    L->p[part].refused = false;
    pthread_mutex_unlock(&L->mu);
}

uint32_t rwkvd_leases_owned(rwkvd_leases *L)
{
    uint32_t k = 0;
    pthread_mutex_lock(&L->mu);
    for (uint32_t i = 0; i < L->n; i++)
        k += L->p[i].owned;
    pthread_mutex_unlock(&L->mu);
    return k;
}

uint32_t rwkvd_leases_presence(rwkvd_leases *L)
{
    char key[96];
    snprintf(key, sizeof key, "w.%s", L->worker);
    kvStore_PutString(NULL, L->kv, key, "1");
    kvKeysList list = {0};
    kvWatchOptions wo;
    kvWatchOptions_Init(&wo);
    wo.Timeout = 2000;
    uint32_t count = 0;
    if (kvStore_Keys(&list, L->kv, &wo) == NATS_OK) {
        for (int i = 0; i < list.Count; i++)
            if (strncmp(list.Keys[i], "w.", 2) == 0)
                count++;
        kvKeysList_Destroy(&list);
    }
    return count ? count : 1;
}

void rwkvd_leases_leave(rwkvd_leases *L)
{
    char key[96];
    snprintf(key, sizeof key, "w.%s", L->worker);
    kvStore_Delete(L->kv, key);
}
