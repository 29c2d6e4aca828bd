/* zap_handler.c — the ZAP handler thread (ZeroMQ RFC 27/ZAP) enforcing the
 * per-role allow-lists (see curve.h).
 *
 * libzmq sends one request per CURVE handshake: version "1.0", request id,
 * domain, peer address, routing id, mechanism, then the client's 32-byte
 * public key.  The reply: version, request id, status code ("200" or
 * "400"), status text, user id, metadata.  The requests come from libzmq
 * itself over inproc, but are still checked frame by frame: a wrong shape
 * gets "500" rather than a crash.
 */
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "daemon/log.h"
#include "daemon/wire/curve_internal.h"

#define ZAP_FRAMES 7

static int role_of(zmq_msg_t *domain)
{
    for (int r = 0; r < RWKVD_ROLE_COUNT; r++) {
        const char *n = rwkvd_role_name((rwkvd_role)r);
        if (zmq_msg_size(domain) == strlen(n) && memcmp(zmq_msg_data(domain), n, strlen(n)) == 0)
            return r;
    }
    return -1;
}

/* Logs a refusal the first time this (role, address) is refused since the
 * last reload; called with c->mu held. */
static void log_once(rwkvd_curve *c, int role, zmq_msg_t *addr, const char *why)
{
    char a[RWKVD_ZAP_ADDR_MAX + 1];
    size_t n = zmq_msg_size(addr) < RWKVD_ZAP_ADDR_MAX ? zmq_msg_size(addr) : RWKVD_ZAP_ADDR_MAX;
    memcpy(a, zmq_msg_data(addr), n);
    a[n] = '\0';
    for (size_t i = 0; i < c->n_seen; i++)
        if (c->seen_role[i] == role && strcmp(c->seen[i], a) == 0)
            return;
    if (c->n_seen == RWKVD_ZAP_SEEN_MAX) {
        if (!c->seen_full_logged)
            LOG_WARN("CURVE: %d peer addresses refused; further ones are counted "
                     "(rwkvd_auth_refused_total) but not logged until the next SIGHUP",
                     RWKVD_ZAP_SEEN_MAX);
        c->seen_full_logged = true;
        return;
    }
    memcpy(c->seen[c->n_seen], a, n + 1);
    c->seen_role[c->n_seen++] = (uint8_t)role;
    LOG_WARN("CURVE: %s refused from %s: %s (logged once per address)",
             role >= 0 ? rwkvd_role_name((rwkvd_role)role) : "unknown role",
             a[0] ? a : "a local (ipc) peer", why);
}

/* Decides one request; returns the status code and sets *text. */
static const char *decide(rwkvd_curve *c, zmq_msg_t *f, int n, const char **text)
{
    if (n != ZAP_FRAMES || zmq_msg_size(&f[0]) != 3 || memcmp(zmq_msg_data(&f[0]), "1.0", 3) != 0) {
        *text = "malformed ZAP request";
        return "500";
    }
    int role = role_of(&f[2]);
    bool curve = zmq_msg_size(&f[5]) == 5 && memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0;
    bool ok = false;
    const char *why = "client key not in the allow-list";
    pthread_mutex_lock(&c->mu);
    if (role < 0)
        why = "unknown ZAP domain";
    else if (!curve || zmq_msg_size(&f[6]) != RWKV_CURVE_KEY_BYTES)
        why = "not a CURVE handshake";
    else
        ok = rwkvd_allow_list_has(c->lists[role], zmq_msg_data(&f[6]));
    if (!ok) {
        if (role >= 0)
            atomic_fetch_add(&c->refused[role], 1);
        log_once(c, role, &f[3], why);
    }
    pthread_mutex_unlock(&c->mu);
    *text = ok ? "OK" : why;
    return ok ? "200" : "400";
}

static void answer(rwkvd_curve *c, void *s)
{
    zmq_msg_t f[ZAP_FRAMES];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (n < ZAP_FRAMES)
            f[n++] = m;
        else {
            n = ZAP_FRAMES + 1; /* too many: answered 500 */
            zmq_msg_close(&m);
        }
    }
    int have = n > ZAP_FRAMES ? ZAP_FRAMES : n;
    const char *text;
    const char *code = decide(c, f, n, &text);
    const void *rid = have > 1 ? zmq_msg_data(&f[1]) : "";
    size_t rid_len = have > 1 ? zmq_msg_size(&f[1]) : 0;
    if (zmq_send(s, "1.0", 3, ZMQ_SNDMORE) < 0 || zmq_send(s, rid, rid_len, ZMQ_SNDMORE) < 0 ||
        zmq_send(s, code, 3, ZMQ_SNDMORE) < 0 ||
        zmq_send(s, text, strlen(text), ZMQ_SNDMORE) < 0 || zmq_send(s, "", 0, ZMQ_SNDMORE) < 0 ||
        zmq_send(s, "", 0, 0) < 0)
        LOG_ERROR("CURVE: ZAP reply: %s", zmq_strerror(zmq_errno()));
    for (int i = 0; i < have; i++)
        zmq_msg_close(&f[i]);
}

void *rwkvd_zap_thread(void *arg)
{
    rwkvd_curve *c = arg;
    while (!atomic_load(&c->stop)) {
        zmq_pollitem_t it = {c->zap, 0, ZMQ_POLLIN, 0};
        int k = zmq_poll(&it, 1, 100); /* wakes to notice c->stop */
        if (k > 0 && (it.revents & ZMQ_POLLIN))
            answer(c, c->zap);
    }
    zmq_close(c->zap);
    c->zap = NULL;
    return NULL;
}
