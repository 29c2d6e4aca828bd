/* msg_control.c — decoding of one control request (PROTOCOL.md §6;
 * contract in msg_decode.h).
 *
 * A request is a flat map {v, cmd, doc?, id?}.  The request id and cmd are
 * picked up before validation so even a refused request gets a reply the
 * client can match to what it sent.
 */
#include <string.h>

#include "core/proto/msg_internal.h"
#include "core/utf8.h"

enum { C_V, C_CMD, C_DOC, C_ID, C_COUNT };
static const char *const ctl_names[C_COUNT] = {"v", "cmd", "doc", "id"};

static int lookup_cmd(const msgpack_object *o, rwkvd_cmd *cmd)
{
    for (int i = 0; i < RWKVD_CMD_COUNT; i++)
        if (rwkvd_dstr_eq(o, rwkvd_cmd_name((rwkvd_cmd)i))) {
            *cmd = (rwkvd_cmd)i;
            return 0;
        }
    return -1;
}

static bool id_ok(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
           (o->type == MSGPACK_OBJECT_STR && o->via.str.size <= RWKVD_CTL_ID_MAX);
}

static void set_id(const msgpack_object *o, rwkvd_ctl_id *id)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        id->kind = RWKVD_ID_UINT;
        id->u = o->via.u64;
    } else {
        id->kind = RWKVD_ID_STR;
        id->len = o->via.str.size;
        memcpy(id->s, o->via.str.ptr, id->len);
    }
}

static void peek(const msgpack_object *m, rwkvd_ctl_request *out)
{
    for (uint32_t k = 0; k < m->via.map.size; k++) {
        const msgpack_object *key = &m->via.map.ptr[k].key, *v = &m->via.map.ptr[k].val;
        if (out->id.kind == RWKVD_ID_NONE && rwkvd_dstr_eq(key, "id") && id_ok(v))
            set_id(v, &out->id);
        if (!out->have_cmd && rwkvd_dstr_eq(key, "cmd") && lookup_cmd(v, &out->cmd) == 0)
            out->have_cmd = true;
        if (out->cmd_text_len == 0 && rwkvd_dstr_eq(key, "cmd") && v->type == MSGPACK_OBJECT_STR &&
            v->via.str.size >= 1 && v->via.str.size <= RWKVD_CTL_CMD_MAX &&
            rwkvd_utf8_check((const uint8_t *)v->via.str.ptr, v->via.str.size) ==
                v->via.str.size) {
            memcpy(out->cmd_text, v->via.str.ptr, v->via.str.size);
            out->cmd_text_len = v->via.str.size;
        }
    }
}

static int decode(const rwkvd_dctx *c, msgpack_unpacked *u, rwkvd_ctl_request *out)
{
    rwkvd_mp_limits ml = {.max_depth = 1, .max_items = 64, .max_map = 8, .max_array = 0};
    if (rwkvd_dunpack(c, RWKVD_CTL_MAX_BYTES, &ml, u) != 0)
        return -1;
    const msgpack_object *m = &u->data;
    peek(m, out);
    rwkvd_field fs[C_COUNT];
    if (rwkvd_dfields(c, m, 0, ctl_names, C_COUNT, fs, "") != 0)
        return -1;
    if (!fs[C_V].val)
        return rwkvd_dfail(c, RWKVD_R_MISSING_FIELD, 0, "field \"v\" is required");
    uint64_t v;
    if (rwkvd_duint(c, &fs[C_V], "v", UINT64_MAX, RWKVD_R_BAD_VERSION, &v) != 0)
        return -1;
    if (v != RWKVD_PROTOCOL_VERSION)
        return rwkvd_dfail(c, RWKVD_R_BAD_VERSION, fs[C_V].val_off,
                           "protocol version %llu is not supported (this daemon speaks %d)",
                           (unsigned long long)v, RWKVD_PROTOCOL_VERSION);
    if (fs[C_ID].val && !id_ok(fs[C_ID].val))
        return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, fs[C_ID].val_off,
                           "field \"id\": must be a non-negative integer or a str of at most %d bytes",
                           RWKVD_CTL_ID_MAX);
    if (!fs[C_CMD].val)
        return rwkvd_dfail(c, RWKVD_R_MISSING_FIELD, 0, "field \"cmd\" is required");
    if (fs[C_CMD].val->type != MSGPACK_OBJECT_STR)
        return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, fs[C_CMD].val_off, "field \"cmd\": must be str");
    if (lookup_cmd(fs[C_CMD].val, &out->cmd) != 0)
        return rwkvd_dfail(c, RWKVD_R_UNKNOWN_CMD, fs[C_CMD].val_off,
                           "field \"cmd\": not one of status, resume, checkpoint, drop, health");
    out->have_cmd = true;
    if (fs[C_DOC].val) {
        if (out->cmd == RWKVD_CMD_STATUS || out->cmd == RWKVD_CMD_HEALTH)
            return rwkvd_dfail(c, RWKVD_R_UNKNOWN_FIELD, fs[C_DOC].key_off,
                               "field \"doc\": not used by cmd \"%s\"", rwkvd_cmd_name(out->cmd));
        if (rwkvd_ddoc(c, &fs[C_DOC], out->doc, &out->doc_len) != 0)
            return -1;
        out->has_doc = true;
    } else if (out->cmd == RWKVD_CMD_RESUME || out->cmd == RWKVD_CMD_DROP) {
        return rwkvd_dfail(c, RWKVD_R_MISSING_FIELD, 0, "field \"doc\" is required by cmd \"%s\"",
                           rwkvd_cmd_name(out->cmd));
    }
    return 0;
}

int rwkvd_ctl_decode(const void *buf, size_t len, rwkvd_ctl_request *out, rwkvd_reason *reason,
                     rwkv_error *err)
{
    rwkvd_reason dummy;
    if (!reason)
        reason = &dummy;
    *reason = RWKVD_OK;
    memset(out, 0, sizeof *out);
    rwkvd_dctx c = {buf, len, "control request", reason, err};
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int rc = decode(&c, &u, out);
    msgpack_unpacked_destroy(&u);
    if (rc != 0)
        out->has_doc = false;
    return rc;
}
