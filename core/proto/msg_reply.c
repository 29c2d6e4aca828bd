/* msg_reply.c — the control replies (PROTOCOL.md §6; contract in
 * msg_encode.h).  Every reply starts with v, ok, then cmd and id echoed
 * from the request when they were readable.
 */
#include "core/msg_encode.h"

#include "core/sha256.h"

#define P(x)                                                                                  \
    do {                                                                                      \
        if ((x) != 0)                                                                         \
            goto nomem;                                                                       \
    } while (0)

static int key(msgpack_packer *pk, const char *k) { return rwkvd_pack_cstr(pk, k); }

static int kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    return key(pk, k) || msgpack_pack_uint64(pk, v) ? -1 : 0;
}

static int kv_f64(msgpack_packer *pk, const char *k, double v)
{
    return key(pk, k) || msgpack_pack_double(pk, v) ? -1 : 0;
}

static int kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    return key(pk, k) || rwkvd_pack_cstr(pk, v ? v : "") ? -1 : 0;
}

static int kv_bool(msgpack_packer *pk, const char *k, bool v)
{
    return key(pk, k) || (v ? msgpack_pack_true(pk) : msgpack_pack_false(pk)) ? -1 : 0;
}

/* Opens the reply map with `extra` fields after v, ok, cmd?, id?. */
static int head(msgpack_packer *pk, msgpack_sbuffer *sb, const rwkvd_ctl_request *req, bool ok,
                size_t extra)
{
    /* a known cmd by its name; an unknown one as sent, when it was readable */
    bool known = req && req->have_cmd, raw = req && !known && req->cmd_text_len > 0;
    bool cmd = known || raw, id = req && req->id.kind != RWKVD_ID_NONE;
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    if (msgpack_pack_map(pk, 2 + cmd + id + extra) || kv_u64(pk, "v", RWKVD_PROTOCOL_VERSION) ||
        kv_bool(pk, "ok", ok))
        return -1;
    if (known && kv_str(pk, "cmd", rwkvd_cmd_name(req->cmd)))
        return -1;
    if (raw && (key(pk, "cmd") || msgpack_pack_str(pk, req->cmd_text_len) ||
                msgpack_pack_str_body(pk, req->cmd_text, req->cmd_text_len)))
        return -1;
    if (id) {
        if (key(pk, "id"))
            return -1;
        if (req->id.kind == RWKVD_ID_UINT)
            return msgpack_pack_uint64(pk, req->id.u);
        if (msgpack_pack_str(pk, req->id.len))
            return -1;
        return msgpack_pack_str_body(pk, req->id.s, req->id.len);
    }
    return 0;
}

static int nomem(rwkv_error *err) { return rwkv_fail(err, "encoding control reply: out of memory"); }

int rwkvd_reply_error(msgpack_sbuffer *sb, const rwkvd_ctl_request *req, rwkvd_reason reason,
                      const char *message, rwkv_error *err)
{
    msgpack_packer pk;
    char line[RWKV_ERROR_MAX];
    size_t n = 0;
    for (; message && message[n] && n < sizeof line - 1; n++)
        line[n] = (message[n] >= 0x20 && message[n] < 0x7f) ? message[n] : '?';
    line[n] = '\0';
    P(head(&pk, sb, req, false, 2));
    P(kv_str(&pk, "reason", rwkvd_reason_name(reason)));
    P(kv_str(&pk, "message", line));
    return 0;
nomem:
    return nomem(err);
}

int rwkvd_reply_health(msgpack_sbuffer *sb, const rwkvd_ctl_request *req, rwkvd_health health,
                       double uptime_s, rwkv_error *err)
{
    static const char *const names[] = {"ok", "degraded", "stopping"};
    msgpack_packer pk;
    P(head(&pk, sb, req, true, 2));
    P(kv_str(&pk, "status", (unsigned)health < 3 ? names[health] : "degraded"));
    P(kv_f64(&pk, "uptime_s", uptime_s));
    return 0;
nomem:
    return nomem(err);
}

int rwkvd_reply_status(msgpack_sbuffer *sb, const rwkvd_ctl_request *req,
                       const rwkvd_status_info *s, rwkv_error *err)
{
    msgpack_packer pk;
    char hex[65];
    rwkvd_sha256_hex(s->model_sha256, hex);
    P(head(&pk, sb, req, true, s->cluster.on ? 14 : 13));
    P(key(&pk, "model"));
    P(msgpack_pack_map(&pk, 8));
    P(kv_str(&pk, "sha256", hex));
    P(kv_str(&pk, "path", s->model_path));
    P(kv_str(&pk, "generation", s->generation));
    P(kv_u64(&pk, "n_layer", s->n_layer));
    P(kv_u64(&pk, "dim", s->dim));
    P(kv_u64(&pk, "vocab", s->vocab));
    P(kv_u64(&pk, "state_floats", s->state_floats));
    P(kv_str(&pk, "tokenizer", s->tokenizer));
    P(kv_str(&pk, "device", s->device));
    P(kv_str(&pk, "precision", s->precision));
    P(kv_u64(&pk, "block_size", s->block_size));
    P(kv_f64(&pk, "uptime_s", s->uptime_s));
    P(key(&pk, "docs"));
    P(msgpack_pack_map(&pk, 4));
    P(kv_u64(&pk, "active", s->docs_active));
    P(kv_u64(&pk, "on_disk", s->docs_on_disk));
    P(kv_u64(&pk, "max_active", s->docs_max_active));
    P(kv_u64(&pk, "finished_total", s->docs_finished_total));
    P(key(&pk, "queues"));
    P(msgpack_pack_map(&pk, 3));
    P(kv_u64(&pk, "held", s->held_messages));
    P(kv_u64(&pk, "ingest", s->ingest_queue));
    P(kv_u64(&pk, "emit", s->emit_queue));
    P(kv_u64(&pk, "messages_total", s->messages_total));
    P(kv_u64(&pk, "tokens_total", s->tokens_total));
    P(kv_u64(&pk, "blocks_total", s->blocks_total));
    P(kv_f64(&pk, "tokens_per_s", s->tokens_per_s));
    P(key(&pk, "checkpoints"));
    P(msgpack_pack_map(&pk, 3));
    P(kv_u64(&pk, "total", s->checkpoints_total));
    P(kv_u64(&pk, "failures_total", s->checkpoint_failures_total));
    P(kv_f64(&pk, "seconds_sum", s->checkpoint_seconds_sum));
    P(key(&pk, "rejected"));
    P(msgpack_pack_map(&pk, RWKVD_REASON_COUNT - 1));
    for (int r = 1; r < RWKVD_REASON_COUNT; r++)
        P(kv_u64(&pk, rwkvd_reason_name((rwkvd_reason)r), s->rejected[r]));
    if (s->cluster.on) {
        const struct rwkvd_cluster_status *c = &s->cluster;
        P(key(&pk, "cluster"));
        P(msgpack_pack_map(&pk, 13));
        P(kv_str(&pk, "worker", c->worker));
        P(kv_u64(&pk, "partitions", c->partitions));
        P(kv_u64(&pk, "owned", c->owned));
        P(kv_u64(&pk, "workers", c->workers));
        P(key(&pk, "leases"));
        P(msgpack_pack_array(&pk, c->n_leases));
        for (uint32_t i = 0; i < c->n_leases; i++) {
            P(msgpack_pack_map(&pk, 3));
            P(kv_u64(&pk, "partition", c->leases[i].partition));
            P(kv_u64(&pk, "revision", c->leases[i].revision));
            P(kv_u64(&pk, "lag", c->leases[i].lag));
        }
        P(kv_u64(&pk, "leases_acquired", c->leases_acquired));
        P(kv_u64(&pk, "leases_lost", c->leases_lost));
        P(kv_u64(&pk, "leases_released", c->leases_released));
        P(kv_u64(&pk, "lease_renewals", c->lease_renewals));
        P(kv_u64(&pk, "unacked", c->unacked));
        P(kv_u64(&pk, "published", c->published));
        P(kv_u64(&pk, "acked", c->acked));
        P(kv_u64(&pk, "lag", c->lag));
    }
    return 0;
nomem:
    return nomem(err);
}

int rwkvd_reply_resume(msgpack_sbuffer *sb, const rwkvd_ctl_request *req,
                       const rwkvd_resume_info *r, rwkv_error *err)
{
    msgpack_packer pk;
    P(head(&pk, sb, req, true, 7));
    P(key(&pk, "doc"));
    P(rwkvd_pack_doc(&pk, r->doc, r->doc_len));
    P(kv_bool(&pk, "known", r->known));
    P(kv_str(&pk, "where", r->where ? r->where : (r->known ? "disk" : "none")));
    P(kv_u64(&pk, "next_seq", r->next_seq));
    P(kv_u64(&pk, "tokens", r->tokens));
    P(kv_u64(&pk, "blocks", r->blocks));
    P(kv_bool(&pk, "finished", r->finished));
    return 0;
nomem:
    return nomem(err);
}

int rwkvd_reply_checkpoint(msgpack_sbuffer *sb, const rwkvd_ctl_request *req, uint64_t written,
                           uint64_t failed, double seconds, rwkv_error *err)
{
    msgpack_packer pk;
    P(head(&pk, sb, req, true, 3));
    P(kv_u64(&pk, "written", written));
    P(kv_u64(&pk, "failed", failed));
    P(kv_f64(&pk, "seconds", seconds));
    return 0;
nomem:
    return nomem(err);
}

int rwkvd_reply_drop(msgpack_sbuffer *sb, const rwkvd_ctl_request *req, bool dropped,
                     rwkv_error *err)
{
    msgpack_packer pk;
    P(head(&pk, sb, req, true, 2));
    P(key(&pk, "doc"));
    P(rwkvd_pack_doc(&pk, req->doc, req->doc_len));
    P(kv_bool(&pk, "dropped", dropped));
    return 0;
nomem:
    return nomem(err);
}
