/* lease.c — see lease.h. */
#include "daemon/cluster/lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALID_FRACTION 0.8

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
    return 0;
}

void rwkvd_leases_free(rwkvd_leases *L)
{
    free(L->p);
    L->p = NULL;
}

bool rwkvd_lease_valid(const rwkvd_leases *L, uint32_t part, double now)
{
    const rwkvd_lease *l = &L->p[part];
    return l->owned && now < l->sent_at + VALID_FRACTION * L->ttl;
}

int rwkvd_lease_acquire(rwkvd_leases *L, uint32_t part, double now)
{
    char key[24];
    key_of(part, key);
    uint64_t rev = 0;
    if (kvStore_CreateString(&rev, L->kv, key, L->worker) != NATS_OK) {
        /* a released lease holds the empty value: take it by its revision */
        kvEntry *e = NULL;
        if (kvStore_Get(&e, L->kv, key) != NATS_OK)
            return 0;
        bool empty = kvEntry_ValueLen(e) == 0;
        uint64_t last = kvEntry_Revision(e);
        kvEntry_Destroy(e);
        if (!empty || kvStore_UpdateString(&rev, L->kv, key, L->worker, last) != NATS_OK)
            return 0;
    }
    L->p[part] = (rwkvd_lease){true, rev, now};
    L->acquired_total++;
    return 1;
}

int rwkvd_lease_renew(rwkvd_leases *L, uint32_t part, double now)
{
    rwkvd_lease *l = &L->p[part];
    char key[24];
    key_of(part, key);
    uint64_t rev = 0;
    natsStatus s = kvStore_UpdateString(&rev, L->kv, key, L->worker, l->revision);
    if (s == NATS_OK) {
        l->revision = rev;
        l->sent_at = now;
        return 0;
    }
    /* the server said no (another revision, or the key expired): lost;
     * no answer at all: keep trying while the lease lasts */
    if (s == NATS_TIMEOUT || s == NATS_CONNECTION_CLOSED || s == NATS_NO_RESPONDERS ||
        s == NATS_CONNECTION_DISCONNECTED || s == NATS_NOT_YET_CONNECTED ||
        s == NATS_IO_ERROR)
        return 1;
    return -1;
}

void rwkvd_lease_release(rwkvd_leases *L, uint32_t part)
{
    rwkvd_lease *l = &L->p[part];
    if (!l->owned)
        return;
    char key[24];
    key_of(part, key);
    kvStore_Update(NULL, L->kv, key, "", 0, l->revision);
    l->owned = false;
    L->released_total++;
}

void rwkvd_lease_forget(rwkvd_leases *L, uint32_t part)
{
    if (L->p[part].owned)
        L->lost_total++;
    L->p[part].owned = false;
}

uint32_t rwkvd_leases_owned(const rwkvd_leases *L)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < L->n; i++)
        k += L->p[i].owned;
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
