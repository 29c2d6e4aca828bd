/* persist.c — documents between memory and their checkpoint files: loading
 * on first touch, saving (after the emit journal is durable, so a
 * checkpoint never covers an output that could still be lost), eviction of
 * the least recently used document, the checkpoint schedule, and drop. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/wire/incarnation.h"

static rwkvd_reason reason_of(rwkvd_ckpt_status st)
{
    switch (st) {
    case RWKVD_CKPT_OTHER_MODEL:
        return RWKVD_R_OTHER_MODEL;
    case RWKVD_CKPT_IO:
        return RWKVD_R_IO_ERROR;
    case RWKVD_CKPT_NOMEM:
        return RWKVD_R_OVERLOADED;
    default:
        return RWKVD_R_CHECKPOINT_BAD;
    }
}

rwkvd_model_id rwkvd_persist_expect(const rwkvd_server *srv)
{
    rwkvd_model_id m = srv->model_id;
    if (srv->cfg.allow_precision_change)
        m.precision = RWKVD_CKPT_PRECISION_ANY;
    return m;
}

/* A document continued in another precision than its checkpoint's (only
 * with --allow-precision-change) is said so in the log. */
static void log_precision_change(const rwkvd_server *srv, const rwkvd_ckpt *ck,
                                 const rwkvd_session *s)
{
    if (ck->model.precision == srv->model_id.precision)
        return;
    char d[96];
    rwkvd_log_doc(s->doc, s->doc_len, d);
    const char *was = ck->model.precision == RWKVD_CKPT_PRECISION_MIXED
                          ? "mixed precisions"
                          : rwkvd_ckpt_precision_name(ck->model.precision),
               *runs = rwkvd_ckpt_precision_name(srv->model_id.precision);
    if (s->precision == RWKVD_CKPT_PRECISION_MIXED)
        LOG_WARN("document %s: its checkpoint's state was computed in %s, the daemon runs %s: "
                 "continued (--allow-precision-change); its outputs say \"mixed\" from now on",
                 d, was, runs);
    else
        LOG_WARN("document %s: its checkpoint says %s, the daemon runs %s: continued in %s "
                 "(--allow-precision-change; no block was computed yet)",
                 d, was, runs, runs);
}

int rwkvd_persist_save(rwkvd_server *srv, rwkvd_session *s, rwkv_error *err)
{
    double t0 = rwkvd_now();
    uint64_t fence = 0;
    if (srv->transport) {
        /* cluster: only under a valid lease (its revision goes into the
         * file), and only once every output queued so far is stored (the
         * output stream is the journal) */
        fence = srv->transport->ops->may_write(srv->transport, s->doc, s->doc_len);
        if (!fence) /* fencing, not a failure of the state directory */
            return rwkv_fail(err, "this worker no longer holds the document's partition lease");
        if (srv->transport->ops->outputs_durable(srv->transport, srv, err) != 0)
            goto fail;
    } else if (rwkvd_journal_sync(srv->journal, err) != 0) {
        goto fail;
    }
    rwkvd_ckpt ck;
    float *state = NULL;
    if (rwkvd_session_to_ckpt(srv, s, &ck, &state, err) != 0)
        goto fail;
    ck.fence = fence;
    int rc = rwkvd_ckpt_store_save(srv->store, &ck, srv->cfg.zstd_level, err);
    free(state);
    if (rc != 0)
        goto fail;
    if (!s->on_disk)
        srv->stats.docs_on_disk++;
    s->on_disk = true;
    s->dirty = false;
    s->blocks_at_ckpt = s->blocks_done;
    srv->stats.checkpoints_total++;
    srv->stats.checkpoint_seconds_sum += rwkvd_now() - t0;
    if (srv->transport)
        srv->transport->ops->saved(srv->transport, srv, s); /* acks what it covers */
    return 0;
fail:
    srv->stats.checkpoint_failures_total++;
    srv->degraded = true;
    return -1;
}

int rwkvd_persist_evict(rwkvd_server *srv, rwkvd_session *s, rwkv_error *err)
{
    /* a document that never got past "holding messages" has nothing to keep
     * beyond its held messages, which are not checkpointed (PROTOCOL.md §5) */
    if ((s->dirty || (!s->on_disk && s->started)) && rwkvd_persist_save(srv, s, err) != 0)
        return -1;
    rwkvd_docs_remove(srv, s);
    rwkvd_session_free(s);
    return 0;
}

/* Evicts the least recently used idle document (one without a ready block
 * or final: its work must not wait on disk for a message that may never
 * come; intake pauses while no document is idle, see server.c). */
static int make_room(rwkvd_server *srv, rwkv_error *err)
{
    for (rwkvd_session *s = srv->docs.lru_tail; s; s = s->lprev) {
        if (rwkvd_session_ready(s))
            continue;
        rwkv_error e;
        if (rwkvd_persist_evict(srv, s, &e) == 0)
            return 0;
        char d[96];
        rwkvd_log_doc(s->doc, s->doc_len, d);
        LOG_ERROR("cannot evict document %s: %s", d, e.msg);
    }
    return rwkv_fail(err, "no idle document can be evicted to make room (all have work, or "
                          "checkpoints are failing)");
}

int rwkvd_persist_open(rwkvd_server *srv, const uint8_t *doc, size_t len, bool create,
                       rwkvd_session **out, rwkvd_reason *reason, rwkv_error *err)
{
    *out = rwkvd_docs_find(srv, doc, len);
    if (*out) {
        rwkvd_docs_touch(srv, *out);
        return 0;
    }
    rwkvd_ckpt ck;
    rwkvd_ckpt_load_result res;
    rwkvd_session *s = NULL;
    rwkvd_model_id expect = rwkvd_persist_expect(srv);
    if (rwkvd_ckpt_store_load(srv->store, doc, len, &expect, srv->max_ckpt_raw, &ck, &res,
                              err) == 0) {
        if (res.from_prev) {
            char d[96];
            rwkvd_log_doc(doc, len, d);
            LOG_WARN("document %s: newest checkpoint refused (%s); continuing from the previous "
                     "generation",
                     d, res.newest_error.msg);
        }
        s = rwkvd_session_from_ckpt(srv, &ck, err);
        if (s)
            log_precision_change(srv, &ck, s);
        rwkvd_ckpt_release(&ck);
        if (!s) {
            *reason = RWKVD_R_CHECKPOINT_BAD;
            return -1;
        }
    } else if (res.status != RWKVD_CKPT_NOT_FOUND) {
        *reason = reason_of(res.status);
        return -1;
    } else if (!create) {
        return 0;
    } else if (!(s = rwkvd_session_new(srv, doc, len, err))) {
        *reason = RWKVD_R_OVERLOADED;
        return -1;
    }
    if (rwkvd_incarnation_get(srv->state_dirfd, srv->cfg.state_dir, doc, len, &s->incarnation,
                              err) != 0) {
        rwkvd_session_free(s);
        *reason = RWKVD_R_IO_ERROR;
        return -1;
    }
    if (srv->docs.count >= (size_t)srv->cfg.max_active_docs && make_room(srv, err) != 0) {
        rwkvd_session_free(s);
        *reason = RWKVD_R_OVERLOADED;
        return -1;
    }
    if (rwkvd_docs_insert(srv, s, err) != 0) {
        rwkvd_session_free(s);
        *reason = RWKVD_R_OVERLOADED;
        return -1;
    }
    rwkvd_ready_push(srv, s);
    *out = s;
    return 0;
}

int rwkvd_checkpoint_due(rwkvd_server *srv, bool all)
{
    double now = rwkvd_now();
    int written = 0;
    for (rwkvd_session *s = srv->docs.lru_head, *next; s; s = next) {
        next = s->lnext;
        if (!s->dirty || s->failed)
            continue;
        bool due = all ||
                   (srv->cfg.checkpoint_blocks > 0 &&
                    s->blocks_done - s->blocks_at_ckpt >= (uint64_t)srv->cfg.checkpoint_blocks) ||
                   (srv->cfg.checkpoint_seconds > 0 &&
                    now - s->dirty_since >= srv->cfg.checkpoint_seconds);
        if (!due)
            continue;
        rwkv_error err;
        if (rwkvd_persist_save(srv, s, &err) == 0) {
            written++;
        } else {
            char d[96];
            rwkvd_log_doc(s->doc, s->doc_len, d);
            LOG_ERROR("checkpoint of document %s failed: %s", d, err.msg);
            s->dirty_since = now; /* retry after another interval */
        }
    }
    return written;
}

int rwkvd_doc_drop(rwkvd_server *srv, const uint8_t *doc, size_t len, bool *existed,
                   rwkv_error *err)
{
    *existed = false;
    rwkvd_session *s = rwkvd_docs_find(srv, doc, len);
    /* a document that existed retires its incarnation first (durably), so
     * its id's next document is told apart from it (incarnation.h) */
    bool on_file = s != NULL;
    if (!on_file) { /* either generation, readable or not */
        char name[RWKVD_CKPT_NAME_MAX + 8];
        rwkvd_ckpt_file_name(doc, len, name);
        on_file = faccessat(srv->state_dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
        strcat(name, ".prev");
        on_file = on_file || faccessat(srv->state_dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
    }
    uint64_t next_inc;
    if (on_file &&
        rwkvd_incarnation_bump(srv->state_dirfd, srv->cfg.state_dir, doc, len, &next_inc, err) != 0)
        return -1;
    if (s) {
        *existed = true;
        rwkvd_docs_remove(srv, s);
        rwkvd_session_free(s);
    }
    bool on_disk = false;
    if (rwkvd_ckpt_store_remove(srv->store, doc, len, &on_disk, err) != 0)
        return -1;
    if (on_disk) {
        *existed = true;
        if (srv->stats.docs_on_disk)
            srv->stats.docs_on_disk--;
    }
    return 0;
}
