/* curve_client.h — the client side of CURVE, for rwkvd-send and rwkvd-sink
 * (linked from libdaemon like the rest of the wire code they share).
 *
 * --curve-server-key FILE: the daemon's public key (a public key file; a key
 * pair file also works, only its public line is used).  --curve-key FILE:
 * this client's key pair (mode 0600).  Both or neither.
 *
 * CURVE failures are silent in ZeroMQ (the socket just never delivers), so
 * rwkvd_curve_client_connect watches the handshake through a socket monitor
 * and turns its outcome into one clear error line: the daemon refused our
 * key, or closed the connection mid-handshake (a wrong server key).
 */
#ifndef RWKVD_CURVE_CLIENT_H
#define RWKVD_CURVE_CLIENT_H

#include <stdbool.h>

#include "core/curve_key.h"
#include "core/error.h"

typedef struct rwkvd_curve_client {
    bool on;
    uint8_t server_key[RWKV_CURVE_KEY_BYTES];
    uint8_t public_key[RWKV_CURVE_KEY_BYTES];
    uint8_t secret_key[RWKV_CURVE_KEY_BYTES];
} rwkvd_curve_client;

/* Both paths NULL: out->on = false, 0.  Otherwise reads both files.
 * Returns 0, or -1 with err naming the file (or the missing option). */
int rwkvd_curve_client_load(const char *server_key_file, const char *key_file,
                            rwkvd_curve_client *out, rwkv_error *err);

/* Connects sock (a fresh socket of zctx) to endpoint.  With CURVE on, sets
 * the keys first and waits up to wait_ms for the handshake's verdict:
 * 0 when it succeeded or nothing was heard (the daemon may not be up yet:
 * ZeroMQ keeps retrying), -1 with err when the daemon refused the key or
 * broke off the handshake.  `what` names the socket in errors ("control"). */
int rwkvd_curve_client_connect(const rwkvd_curve_client *c, void *zctx, void *sock,
                               const char *endpoint, const char *what, int wait_ms,
                               rwkv_error *err);

#endif
