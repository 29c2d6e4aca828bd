/* curve.h — the daemon's CURVE security: its key pair, the per-role
 * allow-lists and the ZAP handler that enforces them (ZeroMQ RFC 27).
 *
 * Each socket is a CURVE server with its own ZAP domain, named after the
 * role allowed on it: "producer" (ingest), "consumer" (emit), "operator"
 * (control).  libzmq asks the ZAP handler about every CURVE handshake with
 * the domain and the client's public key; the handler answers 200 only when
 * the key is in that role's allow-list, so a producer key cannot reach the
 * control socket.  A plaintext (NULL mechanism) client fails the handshake
 * before ZAP is asked.
 *
 * Why not czmq's zauth: zauth keeps one CURVE certificate directory for the
 * whole context (every ZAP domain), and a context has only one ZAP endpoint,
 * so per-role lists would need three contexts; its certificate store also
 * wants zcert files.  The handler here is one REP socket in one thread.
 *
 * Threads: rwkvd_curve_start/secure/reload/stop are called from the main
 * thread; the handler thread only reads the lists under a mutex; the refusal
 * counters are atomics readable from any thread (the /metrics thread).
 */
#ifndef RWKVD_CURVE_H
#define RWKVD_CURVE_H

#include <stdint.h>

#include "core/error.h"
#include "daemon/config.h"

typedef enum rwkvd_role {
    RWKVD_ROLE_PRODUCER = 0, /* ingest */
    RWKVD_ROLE_CONSUMER,     /* emit */
    RWKVD_ROLE_OPERATOR,     /* control */
    RWKVD_ROLE_COUNT
} rwkvd_role;

typedef struct rwkvd_curve rwkvd_curve;

/* "producer", "consumer", "operator". */
const char *rwkvd_role_name(rwkvd_role r);

/* With cfg->curve_secret_key empty: *out = NULL (CURVE off), 0 — unless an
 * allow-list is configured without it (an error: the operator meant to
 * secure the sockets).  Otherwise reads the key pair (which must match and
 * be private to its owner) and the three allow-lists (a role without a
 * directory admits nobody), and starts the ZAP handler on zctx.  Call before
 * any socket of zctx binds.  Returns 0, or -1 with err naming the file. */
int rwkvd_curve_start(void *zctx, const rwkvd_config *cfg, rwkvd_curve **out, rwkv_error *err);

/* Makes socket a CURVE server for role (before zmq_bind).  c NULL: nothing
 * to do, 0.  Returns 0 or -1 with err. */
int rwkvd_curve_secure(const rwkvd_curve *c, void *socket, rwkvd_role role, rwkv_error *err);

/* SIGHUP: re-reads the three allow-lists named by cfg.  All or nothing: on
 * error the lists in force stay and err says why.  c NULL: 0. */
int rwkvd_curve_reload(rwkvd_curve *c, const rwkvd_config *cfg, rwkv_error *err);

/* Refused handshakes so far, per role (zeros for NULL).  Thread safe. */
void rwkvd_curve_refused(const rwkvd_curve *c, uint64_t out[RWKVD_ROLE_COUNT]);

/* Stops the handler thread and frees everything.  Call after the daemon's
 * sockets are closed and before zmq_ctx_term.  Accepts NULL. */
void rwkvd_curve_stop(rwkvd_curve *c);

#endif
