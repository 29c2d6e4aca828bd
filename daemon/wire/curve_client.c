/* curve_client.c — see curve_client.h. */
#include "daemon/wire/curve_client.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

int rwkvd_curve_client_load(const char *server_key_file, const char *key_file,
                            rwkvd_curve_client *out, rwkv_error *err)
{
    memset(out, 0, sizeof *out);
    if (!server_key_file && !key_file)
        return 0;
    if (!server_key_file || !key_file)
        return rwkv_fail(err, "--curve-server-key and --curve-key go together (the daemon's "
                              "public key, and this client's key pair)");
    rwkv_curve_keyfile srv, me;
    if (rwkv_curve_keyfile_load(server_key_file, false, &srv, err) != 0)
        return -1;
    memset(srv.secret_key, 0, sizeof srv.secret_key);
    if (rwkv_curve_keyfile_load(key_file, true, &me, err) != 0)
        return -1;
    memcpy(out->server_key, srv.public_key, RWKV_CURVE_KEY_BYTES);
    memcpy(out->public_key, me.public_key, RWKV_CURVE_KEY_BYTES);
    memcpy(out->secret_key, me.secret_key, RWKV_CURVE_KEY_BYTES);
    memset(&me, 0, sizeof me);
    out->on = true;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Reads one monitor event: its number and value (libzmq 4.x: a 6-byte frame
 * of uint16 event, uint32 value, then the endpoint frame). */
static int read_event(void *mon, uint16_t *event, uint32_t *value)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, mon, 0) < 0) {
        zmq_msg_close(&m);
        return -1;
    }
    int ok = zmq_msg_size(&m) == 6;
    if (ok) {
        const uint8_t *p = zmq_msg_data(&m);
        memcpy(event, p, 2);
        memcpy(value, p + 2, 4);
    }
    int more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    while (more) {
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, mon, 0) < 0) {
            zmq_msg_close(&m);
            return -1;
        }
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
    return ok ? 0 : -1;
}

int rwkvd_curve_client_connect(const rwkvd_curve_client *c, void *zctx, void *sock,
                               const char *endpoint, const char *what, int wait_ms,
                               rwkv_error *err)
{
    if (!c || !c->on) {
        if (zmq_connect(sock, endpoint) != 0)
            return rwkv_fail(err, "%s endpoint %s: %s", what, endpoint, zmq_strerror(errno));
        return 0;
    }
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, c->server_key, RWKV_CURVE_KEY_BYTES) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, c->public_key, RWKV_CURVE_KEY_BYTES) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, c->secret_key, RWKV_CURVE_KEY_BYTES) != 0)
        return rwkv_fail(err, "%s socket: CURVE options: %s", what, zmq_strerror(errno));
    if (wait_ms <= 0) {
        if (zmq_connect(sock, endpoint) != 0)
            return rwkv_fail(err, "%s endpoint %s: %s", what, endpoint, zmq_strerror(errno));
        return 0;
    }
    char mon_ep[64];
    snprintf(mon_ep, sizeof mon_ep, "inproc://rwkvd-curve-monitor-%p", sock);
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    void *mon = NULL;
    int zero = 0;
    if (zmq_socket_monitor(sock, mon_ep, events) != 0 || !(mon = zmq_socket(zctx, ZMQ_PAIR)) ||
        zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof zero) != 0 || zmq_connect(mon, mon_ep) != 0) {
        rwkv_fail(err, "%s socket: monitor: %s", what, zmq_strerror(errno));
        goto fail;
    }
    if (zmq_connect(sock, endpoint) != 0) {
        rwkv_fail(err, "%s endpoint %s: %s", what, endpoint, zmq_strerror(errno));
        goto fail;
    }
    int rc = 0;
    for (double end = now_s() + wait_ms / 1000.0;;) {
        long left = (long)((end - now_s()) * 1000);
        if (left <= 0)
            break; /* no verdict: the daemon is not up yet, ZeroMQ keeps trying */
        zmq_pollitem_t it = {mon, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, left) <= 0)
            continue;
        uint16_t ev = 0;
        uint32_t val = 0;
        if (read_event(mon, &ev, &val) != 0)
            continue;
        if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            break;
        if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            rc = rwkv_fail(err, "%s %s: the daemon refused this client's key (ZAP status %u): "
                                "its public key is not in the allow-list of this socket's role",
                           what, endpoint, val);
        else
            rc = rwkv_fail(err, "%s %s: the daemon broke off the CURVE handshake: is "
                                "--curve-server-key the daemon's public key, and does the "
                                "daemon run with --curve-secret-key?",
                           what, endpoint);
        break;
    }
    zmq_socket_monitor(sock, NULL, 0);
    zmq_close(mon);
    return rc;
fail:
    zmq_socket_monitor(sock, NULL, 0);
    if (mon)
        zmq_close(mon);
    return -1;
}
