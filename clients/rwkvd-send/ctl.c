/* ctl.c — rwkvd-send's control client: REQ socket with timeouts, checked
 * msgpack replies (see ctl.h for why the socket is recreated on timeout). */
#include "clients/rwkvd-send/ctl.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "core/mp_scan.h"
#include "core/msg_encode.h"

/* Replies to resume/health are a few hundred bytes; status is the largest
 * reply the daemon has and stays far below the 64 KiB request limit. */
#define CTL_REPLY_MAX 65536

struct ctl_client {
    void *zctx;
    void *sock;       /* NULL until the first call, and after a timeout */
    char *endpoint;
    uint64_t next_id;
    rwkvd_curve_client curve; /* copied: on = false for plaintext */
};

/* How long a new socket waits for the CURVE handshake's verdict; without one
 * (daemon not up) the call's own timeout takes over. */
#define CTL_HANDSHAKE_WAIT_MS 3000

ctl_client *ctl_open(void *zctx, const char *endpoint, const rwkvd_curve_client *curve,
                     rwkv_error *err)
{
    ctl_client *c = calloc(1, sizeof *c);
    if (!c || !(c->endpoint = strdup(endpoint))) {
        free(c);
        rwkv_fail(err, "out of memory");
        return NULL;
    }
    c->zctx = zctx;
    c->next_id = 1;
    if (curve)
        c->curve = *curve;
    return c;
}

static void drop_socket(ctl_client *c)
{
    if (c->sock) {
        int zero = 0;
        zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(c->sock);
        c->sock = NULL;
    }
}

void ctl_close(ctl_client *c)
{
    if (!c)
        return;
    drop_socket(c);
    memset(&c->curve, 0, sizeof c->curve);
    free(c->endpoint);
    free(c);
}

static int ensure_socket(ctl_client *c, rwkv_error *err)
{
    if (c->sock)
        return 0;
    c->sock = zmq_socket(c->zctx, ZMQ_REQ);
    if (!c->sock)
        return rwkv_fail(err, "control socket: %s", zmq_strerror(errno));
    int zero = 0;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
    if (rwkvd_curve_client_connect(&c->curve, c->zctx, c->sock, c->endpoint, "control",
                                   CTL_HANDSHAKE_WAIT_MS, err) != 0) {
        drop_socket(c);
        return -1;
    }
    return 0;
}

/* Looks key up in a map object; NULL when absent. */
static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
    size_t n = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, key, n) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static int get_u64(const msgpack_object *map, const char *key, uint64_t *v, rwkv_error *err)
{
    const msgpack_object *o = map_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return rwkv_fail(err, "control reply: field \"%s\" %s", key,
                         o ? "is not a non-negative integer" : "missing");
    *v = o->via.u64;
    return 0;
}

static int get_bool(const msgpack_object *map, const char *key, bool *v, rwkv_error *err)
{
    const msgpack_object *o = map_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_BOOLEAN)
        return rwkv_fail(err, "control reply: field \"%s\" %s", key,
                         o ? "is not a bool" : "missing");
    *v = o->via.boolean;
    return 0;
}

/* A str field copied into buf (printable ASCII only, for error lines). */
static void get_text(const msgpack_object *map, const char *key, char *buf, size_t cap)
{
    const msgpack_object *o = map_get(map, key);
    size_t j = 0;
    if (o && o->type == MSGPACK_OBJECT_STR)
        for (uint32_t i = 0; i < o->via.str.size && j + 1 < cap; i++) {
            unsigned char ch = (unsigned char)o->via.str.ptr[i];
            buf[j++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
        }
    buf[j] = 0;
}

/* Sends {v, cmd, id[, doc]} and waits for the reply, unpacked into *u. */
static ctl_status call(ctl_client *c, const char *cmd, const uint8_t *doc, size_t doc_len,
                       int timeout_ms, msgpack_unpacked *u, rwkv_error *err)
{
    if (ensure_socket(c, err) != 0)
        return CTL_BAD;
    uint64_t id = c->next_id++;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int bad = msgpack_pack_map(&pk, doc ? 4 : 3) || rwkvd_pack_cstr(&pk, "v") ||
              msgpack_pack_uint64(&pk, 1) || rwkvd_pack_cstr(&pk, "cmd") ||
              rwkvd_pack_cstr(&pk, cmd) || rwkvd_pack_cstr(&pk, "id") ||
              msgpack_pack_uint64(&pk, id);
    if (!bad && doc)
        bad = rwkvd_pack_cstr(&pk, "doc") || rwkvd_pack_doc(&pk, doc, doc_len);
    if (bad) {
        msgpack_sbuffer_destroy(&sb);
        rwkv_fail(err, "out of memory");
        return CTL_BAD;
    }
    /* A REQ socket with a connecting pipe queues the request at once. */
    int rc = zmq_send(c->sock, sb.data, sb.size, ZMQ_DONTWAIT);
    msgpack_sbuffer_destroy(&sb);
    if (rc < 0) {
        int e = errno;
        drop_socket(c);
        if (e == EAGAIN) {
            rwkv_fail(err, "control endpoint %s: request not accepted", c->endpoint);
            return CTL_TIMEOUT;
        }
        rwkv_fail(err, "control endpoint %s: send: %s", c->endpoint, zmq_strerror(e));
        return CTL_BAD;
    }
    zmq_pollitem_t item = {.socket = c->sock, .events = ZMQ_POLLIN};
    rc = zmq_poll(&item, 1, timeout_ms < 0 ? -1 : timeout_ms);
    if (rc <= 0) {
        int e = errno;
        drop_socket(c);
        if (rc == 0 || e == EINTR) {
            rwkv_fail(err, "control endpoint %s: no reply to \"%s\" within %.1f s", c->endpoint,
                      cmd, timeout_ms / 1000.0);
            return CTL_TIMEOUT;
        }
        rwkv_fail(err, "control endpoint %s: poll: %s", c->endpoint, zmq_strerror(e));
        return CTL_BAD;
    }
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, c->sock, 0) < 0) {
        rwkv_fail(err, "control endpoint %s: receive: %s", c->endpoint, zmq_strerror(errno));
        zmq_msg_close(&msg);
        drop_socket(c);
        return CTL_BAD;
    }
    const uint8_t *p = zmq_msg_data(&msg);
    size_t len = zmq_msg_size(&msg);
    ctl_status st = CTL_BAD;
    rwkvd_mp_limits lim = {.max_depth = 3, .max_items = 4096, .max_map = 64, .max_array = 64};
    rwkvd_reason reason;
    size_t off;
    if (zmq_msg_more(&msg)) {
        rwkv_fail(err, "control reply: more than one frame");
        drop_socket(c); /* the rest of the reply would confuse the next call */
    } else if (len > CTL_REPLY_MAX) {
        rwkv_fail(err, "control reply: %zu bytes, more than %d", len, CTL_REPLY_MAX);
    } else if (rwkvd_mp_scan(p, len, &lim, &reason, &off, err) != 0) {
        rwkv_fail_prefix(err, "control reply");
    } else {
        size_t used = 0;
        if (msgpack_unpack_next(u, (const char *)p, len, &used) != MSGPACK_UNPACK_SUCCESS ||
            u->data.type != MSGPACK_OBJECT_MAP) {
            rwkv_fail(err, "control reply: not a msgpack map");
        } else {
            const msgpack_object *m = &u->data;
            uint64_t rid = 0;
            bool ok = false;
            if (get_bool(m, "ok", &ok, err) != 0) {
                /* err set */
            } else if (!ok) {
                char reason_s[64], text[256];
                get_text(m, "reason", reason_s, sizeof reason_s);
                get_text(m, "message", text, sizeof text);
                rwkv_fail(err, "daemon refused \"%s\": %s: %s", cmd, reason_s, text);
                st = CTL_REFUSED;
            } else if (get_u64(m, "id", &rid, err) != 0) {
                /* err set */
            } else if (rid != id) {
                rwkv_fail(err, "control reply: id %llu, expected %llu", (unsigned long long)rid,
                          (unsigned long long)id);
            } else {
                st = CTL_OK;
            }
        }
    }
    zmq_msg_close(&msg);
    return st;
}

ctl_status ctl_resume_doc(ctl_client *c, const uint8_t *doc, size_t doc_len, int timeout_ms,
                          ctl_resume *out, rwkv_error *err)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    ctl_status st = call(c, "resume", doc, doc_len, timeout_ms, &u, err);
    if (st == CTL_OK) {
        const msgpack_object *m = &u.data;
        if (get_bool(m, "known", &out->known, err) || get_bool(m, "finished", &out->finished, err) ||
            get_u64(m, "next_seq", &out->next_seq, err) || get_u64(m, "tokens", &out->tokens, err) ||
            get_u64(m, "blocks", &out->blocks, err))
            st = CTL_BAD;
    }
    msgpack_unpacked_destroy(&u);
    return st;
}

ctl_status ctl_health(ctl_client *c, int timeout_ms, double *uptime_s, rwkv_error *err)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    ctl_status st = call(c, "health", NULL, 0, timeout_ms, &u, err);
    if (st == CTL_OK) {
        const msgpack_object *o = map_get(&u.data, "uptime_s");
        if (o && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32))
            *uptime_s = o->via.f64;
        else if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            *uptime_s = (double)o->via.u64;
        else {
            rwkv_fail(err, "control reply: field \"uptime_s\" %s", o ? "is not a number" : "missing");
            st = CTL_BAD;
        }
    }
    msgpack_unpacked_destroy(&u);
    return st;
}
