/* control.c — the ROUTER socket: status, resume, checkpoint, drop, health
 * (PROTOCOL.md §6), and the figures behind `status` and /metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "daemon/log.h"
#include "daemon/server.h"

#define MAX_FRAMES 8

void rwkvd_stats_refresh(rwkvd_server *srv)
{
    rwkvd_status_info *st = &srv->stats;
    double now = rwkvd_now();
    st->uptime_s = now - srv->started_at;
    st->docs_active = srv->docs.count;
    st->docs_max_active = (uint64_t)srv->cfg.max_active_docs;
    uint64_t held = 0;
    for (rwkvd_session *s = srv->docs.lru_head; s; s = s->lnext)
        held += s->n_held;
    st->held_messages = held;
    st->emit_queue = rwkvd_outbox_count(srv->outbox);
    st->ingest_queue = srv->pending_tokens;
    st->block_size = (uint32_t)srv->cfg.block_size;
    /* tokens/s over the last ~10 s: one sample per second in a ring */
    int last = (srv->tps_n + 10) % 11;
    if (srv->tps_n == 0 || now - srv->tps_time[last] >= 1.0) {
        srv->tps_time[srv->tps_n % 11] = now;
        srv->tps_tokens[srv->tps_n % 11] = st->tokens_total;
        srv->tps_n++;
    }
    int newest = (srv->tps_n - 1) % 11;
    int oldest = srv->tps_n >= 11 ? srv->tps_n % 11 : 0;
    double dt = srv->tps_time[newest] - srv->tps_time[oldest];
    st->tokens_per_s = dt > 0 ? (double)(srv->tps_tokens[newest] - srv->tps_tokens[oldest]) / dt
                              : 0;
    if (srv->transport)
        srv->transport->ops->status(srv->transport, st);
    pthread_mutex_lock(&srv->snap_mu);
    srv->snap = *st;
    pthread_mutex_unlock(&srv->snap_mu);
}

static void do_resume(rwkvd_server *srv, const rwkvd_ctl_request *req, msgpack_sbuffer *sb,
                      rwkv_error *err)
{
    rwkvd_resume_info r = {.doc = req->doc, .doc_len = req->doc_len, .where = "none"};
    rwkvd_session *s = rwkvd_docs_find(srv, req->doc, req->doc_len);
    int rc = 0;
    if (s && s->started) {
        r.known = true;
        r.where = "memory";
        r.next_seq = s->next_seq;
        r.tokens = rwkvd_session_tokens(s);
        r.blocks = s->blocks_done;
        r.finished = s->finished;
    } else {
        /* verify the generation that would really be continued */
        rwkvd_ckpt ck;
        rwkvd_ckpt_load_result res;
        rwkv_error lerr;
        rwkvd_model_id expect = rwkvd_persist_expect(srv);
        if (rwkvd_ckpt_store_load(srv->store, req->doc, req->doc_len, &expect,
                                  srv->max_ckpt_raw, &ck, &res, &lerr) == 0) {
            r.known = true;
            r.where = "disk";
            r.next_seq = ck.next_seq;
            r.tokens = ck.tokens_done + ck.n_pending_tokens;
            r.blocks = ck.blocks_done;
            r.finished = ck.finished;
            rwkvd_ckpt_release(&ck);
        } else if (res.status != RWKVD_CKPT_NOT_FOUND) {
            rwkvd_reason why = res.status == RWKVD_CKPT_OTHER_MODEL ? RWKVD_R_OTHER_MODEL
                               : res.status == RWKVD_CKPT_IO        ? RWKVD_R_IO_ERROR
                                                                    : RWKVD_R_CHECKPOINT_BAD;
            srv->stats.rejected[why]++;
            LOG_WARN("resume refused: %s", lerr.msg);
            rc = rwkvd_reply_error(sb, req, why, lerr.msg, err);
            if (rc != 0)
                LOG_ERROR("control reply: %s", err->msg);
            return;
        }
    }
    if (rwkvd_reply_resume(sb, req, &r, err) != 0)
        LOG_ERROR("control reply: %s", err->msg);
}

static void do_checkpoint(rwkvd_server *srv, const rwkvd_ctl_request *req, msgpack_sbuffer *sb,
                          rwkv_error *err)
{
    double t0 = rwkvd_now();
    uint64_t written = 0, failed = 0;
    if (req->has_doc) {
        rwkvd_session *s = rwkvd_docs_find(srv, req->doc, req->doc_len);
        if (!s) {
            rwkvd_ckpt ck;
            rwkvd_ckpt_load_result res;
            rwkv_error lerr;
            int known = rwkvd_ckpt_store_load(srv->store, req->doc, req->doc_len, NULL,
                                              srv->max_ckpt_raw, &ck, &res, &lerr) == 0;
            if (known)
                rwkvd_ckpt_release(&ck);
            if (!known && res.status == RWKVD_CKPT_NOT_FOUND) {
                srv->stats.rejected[RWKVD_R_UNKNOWN_DOC]++;
                rwkvd_reply_error(sb, req, RWKVD_R_UNKNOWN_DOC,
                                  "no such document in memory or on disk", err);
                return;
            }
            /* on disk already: nothing unsaved */
        } else if (s->dirty || !s->on_disk) {
            rwkv_error e;
            if (rwkvd_persist_save(srv, s, &e) == 0) {
                written++;
            } else {
                failed++;
                LOG_ERROR("checkpoint request: %s", e.msg);
            }
        }
    } else {
        uint64_t before_fail = srv->stats.checkpoint_failures_total;
        written = (uint64_t)rwkvd_checkpoint_due(srv, true);
        failed = srv->stats.checkpoint_failures_total - before_fail;
    }
    if (rwkvd_reply_checkpoint(sb, req, written, failed, rwkvd_now() - t0, err) != 0)
        LOG_ERROR("control reply: %s", err->msg);
}

static void answer(rwkvd_server *srv, const void *buf, size_t len, msgpack_sbuffer *sb)
{
    rwkvd_ctl_request req;
    rwkvd_reason reason;
    rwkv_error err;
    if (rwkvd_ctl_decode(buf, len, &req, &reason, &err) != 0) {
        srv->stats.rejected[reason]++;
        LOG_WARN("control request refused: %s: %s", rwkvd_reason_name(reason), err.msg);
        rwkvd_reply_error(sb, &req, reason, err.msg, &err);
        return;
    }
    int rc = 0;
    switch (req.cmd) {
    case RWKVD_CMD_HEALTH:
        rc = rwkvd_reply_health(sb, &req,
                                srv->stopping   ? RWKVD_HEALTH_STOPPING
                                : srv->degraded ? RWKVD_HEALTH_DEGRADED
                                                : RWKVD_HEALTH_OK,
                                rwkvd_now() - srv->started_at, &err);
        break;
    case RWKVD_CMD_STATUS:
        rwkvd_stats_refresh(srv);
        rc = rwkvd_reply_status(sb, &req, &srv->stats, &err);
        break;
    case RWKVD_CMD_RESUME:
        do_resume(srv, &req, sb, &err);
        break;
    case RWKVD_CMD_CHECKPOINT:
        do_checkpoint(srv, &req, sb, &err);
        break;
    case RWKVD_CMD_DROP: {
        bool existed = false;
        if (rwkvd_doc_drop(srv, req.doc, req.doc_len, &existed, &err) != 0) {
            LOG_ERROR("drop: %s", err.msg);
            rc = rwkvd_reply_error(sb, &req, RWKVD_R_IO_ERROR, err.msg, &err);
        } else {
            char d[96];
            rwkvd_log_doc(req.doc, req.doc_len, d);
            LOG_INFO("document %s dropped (%s)", d, existed ? "it existed" : "unknown");
            rc = rwkvd_reply_drop(sb, &req, existed, &err);
        }
        break;
    }
    default:
        rc = rwkvd_reply_error(sb, &req, RWKVD_R_UNKNOWN_CMD, "unknown command", &err);
        break;
    }
    if (rc != 0)
        LOG_ERROR("control reply: %s", err.msg);
}

void rwkvd_handle_control(rwkvd_server *srv)
{
    for (int budget = 0; budget < 64; budget++) {
        zmq_msg_t frames[MAX_FRAMES];
        int n = 0, more = 1, too_many = 0;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, srv->control, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                for (int i = 0; i < n; i++)
                    zmq_msg_close(&frames[i]);
                return; /* nothing (more) to read */
            }
            more = zmq_msg_more(&m);
            if (n < MAX_FRAMES)
                frames[n++] = m;
            else {
                too_many = 1;
                zmq_msg_close(&m);
            }
        }
        /* frames before the last are the routing envelope, returned as is */
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        if (too_many || n < 2) {
            rwkvd_ctl_request none;
            memset(&none, 0, sizeof none);
            rwkv_error err;
            srv->stats.rejected[RWKVD_R_MALFORMED]++;
            rwkvd_reply_error(&sb, &none, RWKVD_R_MALFORMED,
                              "a control request is one frame (after the envelope)", &err);
        } else {
            answer(srv, zmq_msg_data(&frames[n - 1]), zmq_msg_size(&frames[n - 1]), &sb);
        }
        for (int i = 0; i < n - 1; i++)
            if (zmq_msg_send(&frames[i], srv->control, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
                zmq_msg_close(&frames[i]);
        zmq_send(srv->control, sb.data, sb.size, ZMQ_DONTWAIT);
        msgpack_sbuffer_destroy(&sb);
        zmq_msg_close(&frames[n - 1]);
    }
}
