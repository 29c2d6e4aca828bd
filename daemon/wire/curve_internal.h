/* curve_internal.h — state shared by curve.c (set-up, reload) and
 * zap_handler.c (the handler thread); not part of the daemon's API. */
#ifndef RWKVD_CURVE_INTERNAL_H
#define RWKVD_CURVE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/curve_key.h"
#include "daemon/wire/allow_list.h"
#include "daemon/wire/curve.h"

#define RWKVD_ZAP_SEEN_MAX 1024 /* peer addresses remembered for log-once */
#define RWKVD_ZAP_ADDR_MAX 64   /* bytes of a peer address kept (IPv6 text fits) */

struct rwkvd_curve {
    uint8_t secret_key[RWKV_CURVE_KEY_BYTES];
    void *zctx;
    void *zap;                   /* REP on inproc://zeromq.zap.01, owned by the thread */
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    pthread_mutex_t mu;          /* guards lists and the seen set */
    rwkvd_allow_list *lists[RWKVD_ROLE_COUNT];
    char seen[RWKVD_ZAP_SEEN_MAX][RWKVD_ZAP_ADDR_MAX + 1];
    uint8_t seen_role[RWKVD_ZAP_SEEN_MAX];
    size_t n_seen;
    bool seen_full_logged;
    atomic_uint_fast64_t refused[RWKVD_ROLE_COUNT];
};

/* The handler thread's body: answers ZAP requests until c->stop. */
void *rwkvd_zap_thread(void *arg);

/* The allow-list directory configured for a role ("" = none). */
const char *rwkvd_curve_dir(const rwkvd_config *cfg, rwkvd_role r);

#endif
