/* server.c — the daemon's sockets, its main loop and its orderly stop.
 *
 * One iteration: wait (zmq_poll) for a control request, an ingest message,
 * room on the emit socket or a signal; then answer control requests, hand
 * queued outputs to ZeroMQ, read ingest messages while there is room, run
 * one engine batch when every earlier output has left, and write the
 * checkpoints that are due.  Reading stops while outputs wait or too many
 * tokens are pending, so a slow consumer throttles the producers through the
 * ingest high-water mark and memory stays bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/wire/journal_filter.h"
#include "core/sha256.h"

double rwkvd_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int zfail(rwkv_error *err, const char *what, const char *endpoint)
{
    return rwkv_fail(err, "%s %s: %s", what, endpoint, zmq_strerror(errno));
}

static void *make_socket(rwkvd_server *srv, int type, rwkvd_role role, const char *endpoint,
                         int hwm_opt, int hwm, int64_t maxmsg, rwkv_error *err)
{
    void *s = zmq_socket(srv->zctx, type);
    if (!s) {
        zfail(err, "socket for", endpoint);
        return NULL;
    }
    int linger = srv->cfg.linger_ms;
    int ipv6 = 1;
    if (zmq_setsockopt(s, hwm_opt, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        (maxmsg > 0 && zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0) ||
        (strncmp(endpoint, "tcp://[", 7) == 0 &&
         zmq_setsockopt(s, ZMQ_IPV6, &ipv6, sizeof ipv6) != 0)) {
        zfail(err, "socket options for", endpoint);
        zmq_close(s);
        return NULL;
    }
    if (rwkvd_curve_secure(srv->curve, s, role, err) != 0) {
        zmq_close(s);
        return NULL;
    }
    if (zmq_bind(s, endpoint) != 0) {
        zfail(err, "cannot bind", endpoint);
        zmq_close(s);
        return NULL;
    }
    return s;
}

static int replay_one(void *ctx, const void *msg, size_t len)
{
    rwkvd_server *srv = ctx;
    const char *why = NULL;
    if (!rwkvd_journal_keep(srv->state_dirfd, srv->cfg.state_dir, srv->replay_model_hex, msg, len,
                            &why)) {
        srv->replay_skipped++; /* of a dropped incarnation or another model */
        return 0;
    }
    void *copy = malloc(len ? len : 1);
    if (!copy)
        return -1;
    memcpy(copy, msg, len);
    rwkv_error err;
    /* already in the journal: not appended again */
    return rwkvd_outbox_push(srv->outbox, copy, len, false, &err);
}

static int sig_pipe[2] = {-1, -1};

static void on_signal(int signo)
{
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    ssize_t w = write(sig_pipe[1], &b, 1); /* full pipe: the signal is already pending */
    (void)w;
    errno = saved;
}

/* Pending tokens (all documents) above which intake pauses. */
static uint64_t intake_cap(const rwkvd_server *srv)
{
    return (uint64_t)4 * RWKVD_BATCH_TOKENS + (uint64_t)srv->cfg.block_size * RWKVD_BATCH_DOCS;
}

/* Counts the documents on disk and remembers those with work left. */
static int scan_doc(void *ctx, const rwkvd_ckpt_info *info, bool from_prev)
{
    (void)from_prev;
    rwkvd_server *srv = ctx;
    srv->stats.docs_on_disk++;
    bool work = !info->finished && (info->eof || info->n_pending_tokens > info->block_size);
    if (work) {
        rwkvd_doc_ref *w = realloc(srv->wake, (srv->n_wake + 1) * sizeof *w);
        if (!w)
            return 0; /* it wakes with its next message instead */
        srv->wake = w;
        memcpy(w[srv->n_wake].doc, info->doc, info->doc_len);
        w[srv->n_wake].len = info->doc_len;
        srv->n_wake++;
    }
    return 0;
}

/* Loads documents left with work by the previous run while there is room. */
static void wake_docs(rwkvd_server *srv)
{
    while (srv->wake_done < srv->n_wake && srv->docs.count < (size_t)srv->cfg.max_active_docs) {
        rwkvd_doc_ref *w = &srv->wake[srv->wake_done++];
        rwkvd_session *s;
        rwkvd_reason reason;
        rwkv_error err;
        if (rwkvd_persist_open(srv, w->doc, w->len, false, &s, &reason, &err) != 0) {
            char d[96];
            rwkvd_log_doc(w->doc, w->len, d);
            LOG_ERROR("document %s cannot be continued: %s: %s", d, rwkvd_reason_name(reason),
                      err.msg);
        }
    }
}

int rwkvd_server_init(rwkvd_server *srv, rwkv_error *err)
{
    srv->started_at = rwkvd_now();
    srv->sigfd = -1;
    srv->state_dirfd = -1;
    pthread_mutex_init(&srv->snap_mu, NULL);
    /* a checkpoint holds a state, small vectors and the pending tokens: at
     * most what intake admits (can_read_ingest) plus one whole message */
    uint64_t max_pending = (uint64_t)srv->cfg.max_message_size +
                           (uint64_t)srv->cfg.max_tokens_per_message + intake_cap(srv) +
                           RWKVD_BLOCK_MAX;
    srv->max_ckpt_raw = (uint64_t)srv->mi->state_floats * 4 + (uint64_t)srv->mi->n_embd * 16 +
                        max_pending * 4 + 65536;

    bool cluster = srv->cfg.nats[0] != '\0';
    if ((cluster ? rwkvd_ckpt_store_open_shared : rwkvd_ckpt_store_open)(srv->cfg.state_dir,
                                                                         &srv->store, err) != 0)
        return -1;
    srv->state_dirfd = open(srv->cfg.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (srv->state_dirfd < 0)
        return rwkv_fail(err, "%s: %s", srv->cfg.state_dir, strerror(errno));
    /* enough journal to cover everything that can be inside the process at
     * once: the emit high-water mark, one batch of outputs, and margin */
    size_t keep = 2 * ((size_t)srv->cfg.emit_hwm + 2 * RWKVD_BATCH_DOCS) + 64;
    /* cluster mode: the output stream plays the journal's role (and the
     * directory is shared, so one journal file would be written by all) */
    if (!cluster &&
        rwkvd_journal_open(srv->state_dirfd, srv->cfg.state_dir, keep, &srv->journal, err) != 0)
        return -1;
    srv->outbox = rwkvd_outbox_new(srv->journal);
    if (!srv->outbox)
        return rwkv_fail(err, "out of memory");
    size_t bad = 0;
    rwkvd_sha256_hex(srv->model_id.model_sha256, srv->replay_model_hex);
    if (!cluster)
        rwkvd_journal_replay(srv->journal, replay_one, srv, &bad, err);
    if (rwkvd_outbox_count(srv->outbox) || bad || srv->replay_skipped)
        LOG_INFO("emit journal: %zu recent outputs will be sent again (%zu damaged records "
                 "skipped, %zu of dropped incarnations or another model left out)",
                 rwkvd_outbox_count(srv->outbox), bad, srv->replay_skipped);

    size_t n_bad = 0;
    rwkv_error lerr;
    /* cluster mode: a worker wakes the documents of the partitions it
     * acquires (nats_worker.c), not the whole shared directory */
    if (!cluster && rwkvd_ckpt_store_list(srv->store, scan_doc, srv, &n_bad, &lerr) != 0)
        LOG_WARN("state directory listing: %s", lerr.msg);
    if (srv->stats.docs_on_disk || n_bad)
        LOG_INFO("state directory %s: %llu documents (%zu with work left), %zu unreadable files",
                 srv->cfg.state_dir, (unsigned long long)srv->stats.docs_on_disk, srv->n_wake,
                 n_bad);

    srv->zctx = zmq_ctx_new();
    if (!srv->zctx)
        return rwkv_fail(err, "zmq_ctx_new: %s", zmq_strerror(errno));
    /* the ZAP handler is bound before any socket can take a handshake */
    if (rwkvd_curve_start(srv->zctx, &srv->cfg, &srv->curve, err) != 0)
        return -1;
    if (cluster) {
        srv->transport = rwkvd_nats_transport_new(srv, err);
        if (!srv->transport)
            return -1;
    } else {
        srv->ingest = make_socket(srv, ZMQ_PULL, RWKVD_ROLE_PRODUCER, srv->cfg.ingest, ZMQ_RCVHWM,
                                  srv->cfg.ingest_hwm, (int64_t)srv->cfg.max_message_size, err);
        if (!srv->ingest)
            return -1;
        srv->emit = make_socket(srv, ZMQ_PUSH, RWKVD_ROLE_CONSUMER, srv->cfg.emit, ZMQ_SNDHWM,
                                srv->cfg.emit_hwm, 0, err);
        if (!srv->emit)
            return -1;
    }
    /* ZeroMQ drops an over-long message with the connection, unanswered, and
     * a REQ client would wait for ever: requests up to the ingest limit reach
     * the decoder, which answers too_large above RWKVD_CTL_MAX_BYTES
     * (PROTOCOL.md §6.1 states the disconnect beyond) */
    int64_t ctl_wire_max = (int64_t)srv->cfg.max_message_size;
    if (ctl_wire_max < RWKVD_CTL_MAX_BYTES + 4096)
        ctl_wire_max = RWKVD_CTL_MAX_BYTES + 4096;
    srv->control = make_socket(srv, ZMQ_ROUTER, RWKVD_ROLE_OPERATOR, srv->cfg.control, ZMQ_RCVHWM,
                               srv->cfg.control_hwm, ctl_wire_max, err);
    if (!srv->control)
        return -1;

    /* Signals reach the loop through a self-pipe: a handler, not a
     * signalfd, because libraries start threads before main() (OpenBLAS
     * does, in a constructor) and a signalfd only works when every thread
     * blocks the signal. */
    if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
        return rwkv_fail(err, "pipe: %s", strerror(errno));
    srv->sigfd = sig_pipe[0];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0 ||
        sigaction(SIGHUP, &sa, NULL) != 0)
        return rwkv_fail(err, "sigaction: %s", strerror(errno));
    return 0;
}

/* SIGHUP: reopen the log and apply the settings that may change live. */
static void reload(rwkvd_server *srv)
{
    rwkv_error err;
    if (rwkvd_log_reopen(&err) != 0)
        LOG_ERROR("SIGHUP: %s", err.msg);
    rwkvd_config next;
    char kept[512] = "";
    bool cfg_ok = rwkvd_config_reload(&srv->cfg, &next, srv->argc, srv->argv, srv->envp, kept,
                                      sizeof kept, &err) == 0;
    if (!cfg_ok)
        LOG_ERROR("SIGHUP: configuration not reloaded: %s", err.msg);
    /* the allow-list directories are re-read even when the rest failed */
    if (rwkvd_curve_reload(srv->curve, cfg_ok ? &next : &srv->cfg, &err) != 0)
        LOG_ERROR("SIGHUP: CURVE allow-lists not reloaded (the previous ones stay): %s",
                  err.msg);
    if (!cfg_ok)
        return;
    srv->cfg = next;
    rwkvd_log_set_level(srv->cfg.log_level);
    LOG_INFO("SIGHUP: log reopened, configuration reloaded%s%s", kept[0] ? "; needs a restart: " : "",
             kept);
}

static void handle_signals(rwkvd_server *srv)
{
    unsigned char signo;
    while (read(srv->sigfd, &signo, 1) == 1) {
        if (signo == SIGHUP) {
            reload(srv);
        } else if (!srv->stopping) {
            LOG_INFO("signal %u: stopping (intake closed, checkpointing everything)", signo);
            srv->stopping = true;
            sd_notify(0, "STOPPING=1");
        }
    }
}

static bool can_read_ingest(const rwkvd_server *srv)
{
    /* Let ZeroMQ hold the rest (backpressure to producers) while outputs
     * wait, while plenty of tokens are pending, or while every document in
     * memory has work: a new document would then have no idle one to evict
     * (a document with work is never evicted, or its work would wait on
     * disk for a message that may never come). */
    bool room = srv->docs.count < (size_t)srv->cfg.max_active_docs ||
                srv->docs.count > srv->ready.len;
    return !srv->stopping && room && rwkvd_outbox_count(srv->outbox) == 0 &&
           srv->pending_tokens < intake_cap(srv);
}

static void read_ingest(rwkvd_server *srv)
{
    if (srv->transport) {
        srv->transport->ops->intake(srv->transport, srv, can_read_ingest);
        return;
    }
    for (int i = 0; i < 256 && can_read_ingest(srv); i++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, srv->ingest, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        if (zmq_msg_more(&m)) {
            /* multi-frame: refuse and drain the rest */
            int more = 1;
            while (more) {
                zmq_msg_t x;
                zmq_msg_init(&x);
                if (zmq_msg_recv(&x, srv->ingest, ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close(&x);
                    break;
                }
                more = zmq_msg_more(&x);
                zmq_msg_close(&x);
            }
            rwkvd_ingest first; /* names the error after the first frame's doc */
            memset(&first, 0, sizeof first);
            rwkvd_ingest_peek(zmq_msg_data(&m), zmq_msg_size(&m), &first);
            rwkvd_emit_error(srv, first.have_doc ? first.doc : NULL, first.doc_len, first.have_seq,
                             first.seq, RWKVD_R_MALFORMED, "an ingest message is one frame", false,
                             0);
        } else {
            rwkvd_handle_ingest(srv, zmq_msg_data(&m), zmq_msg_size(&m));
        }
        zmq_msg_close(&m);
    }
}

static void flush_outbox(rwkvd_server *srv)
{
    rwkv_error err;
    if (srv->transport) {
        srv->transport->ops->flush(srv->transport, srv);
        return;
    }
    if (rwkvd_outbox_flush(srv->outbox, srv->emit, &err) < 0)
        LOG_ERROR("%s", err.msg);
}


static void housekeeping(rwkvd_server *srv)
{
    double now = rwkvd_now();
    if (srv->watchdog_usec && now - srv->last_watchdog >= srv->watchdog_usec / 2e6) {
        sd_notify(0, "WATCHDOG=1");
        srv->last_watchdog = now;
    }
    if (now - srv->last_status >= 1.0) {
        rwkvd_stats_refresh(srv);
        char line[256];
        snprintf(line, sizeof line, "STATUS=%llu documents active, %.0f tokens/s, %llu blocks",
                 (unsigned long long)srv->stats.docs_active, srv->stats.tokens_per_s,
                 (unsigned long long)srv->stats.blocks_total);
        sd_notify(0, line);
        srv->last_status = now;
    }
}

/* The orderly stop: outputs out (up to linger_ms), every document saved. */
static int shutdown_all(rwkvd_server *srv)
{
    double deadline = rwkvd_now() + srv->cfg.linger_ms / 1000.0;
    while (!srv->transport && rwkvd_outbox_count(srv->outbox) && rwkvd_now() < deadline) {
        zmq_pollitem_t it = {srv->emit, 0, ZMQ_POLLOUT, 0};
        zmq_poll(&it, 1, 50);
        flush_outbox(srv);
    }
    if (rwkvd_outbox_count(srv->outbox))
        LOG_WARN("stopping with %zu outputs not taken by a consumer; the emit journal sends "
                 "them at the next start",
                 rwkvd_outbox_count(srv->outbox));
    int n = rwkvd_checkpoint_due(srv, true);
    if (srv->transport) /* acks, leases handed back */
        srv->transport->ops->stop(srv->transport, srv);
    /* documents that never checkpointed but hold progress */
    int failures = 0;
    for (rwkvd_session *s = srv->docs.lru_head; s; s = s->lnext)
        if (s->dirty)
            failures++;
    LOG_INFO("stopped: %d checkpoints written, %d documents could not be saved", n, failures);
    return failures ? 1 : 0;
}

int rwkvd_server_run(rwkvd_server *srv)
{
    const char *wd = getenv("WATCHDOG_USEC");
    srv->watchdog_usec = wd ? strtoull(wd, NULL, 10) : 0;
    while (!srv->stopping) {
        bool work = srv->ready.len > 0 && rwkvd_outbox_count(srv->outbox) == 0;
        bool zsock = !srv->transport;
        zmq_pollitem_t items[4] = {
            {srv->control, 0, ZMQ_POLLIN, 0},
            {NULL, srv->sigfd, ZMQ_POLLIN, 0},
            {srv->ingest, 0, can_read_ingest(srv) ? ZMQ_POLLIN : 0, 0},
            {srv->emit, 0, rwkvd_outbox_count(srv->outbox) ? ZMQ_POLLOUT : 0, 0},
        };
        /* a transport is polled by its own intake: wake often */
        long timeout = work ? 0 : zsock ? 200 : 5;
        if (zmq_poll(items, zsock ? 4 : 2, timeout) < 0 && errno != EINTR) {
            LOG_ERROR("zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        handle_signals(srv);
        wake_docs(srv);
        rwkvd_handle_control(srv);
        flush_outbox(srv);
        read_ingest(srv);
        flush_outbox(srv);
        if (srv->ready.len > 0 && rwkvd_outbox_count(srv->outbox) == 0) {
            rwkvd_run_batch(srv);
            flush_outbox(srv);
        }
        rwkvd_checkpoint_due(srv, false);
        if (srv->transport)
            srv->transport->ops->tick(srv->transport, srv);
        housekeeping(srv);
    }
    return shutdown_all(srv);
}

void rwkvd_server_free(rwkvd_server *srv)
{
    for (rwkvd_session *s = srv->docs.lru_head, *next; s; s = next) {
        next = s->lnext;
        rwkvd_session_free(s);
    }
    rwkvd_doc_table_free(&srv->docs);
    rwkvd_ready_fifo_free(&srv->ready);
    free(srv->wake);
    if (srv->ingest)
        zmq_close(srv->ingest);
    if (srv->emit)
        zmq_close(srv->emit);
    if (srv->control)
        zmq_close(srv->control);
    rwkvd_curve_stop(srv->curve); /* its socket too must close before zmq_ctx_term */
    if (srv->zctx)
        zmq_ctx_term(srv->zctx);
    if (srv->transport)
        srv->transport->ops->free(srv->transport);
    rwkvd_outbox_free(srv->outbox);
    rwkvd_journal_close(srv->journal);
    if (srv->state_dirfd >= 0)
        close(srv->state_dirfd);
    rwkvd_ckpt_store_close(srv->store);
    if (srv->sigfd >= 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        close(sig_pipe[0]);
        close(sig_pipe[1]);
        sig_pipe[0] = sig_pipe[1] = -1;
    }
    pthread_mutex_destroy(&srv->snap_mu);
}
