/* main.c — rwkvd-send: one file or stdin -> one rwkvd document.
 *
 * The transfer is one loop that interleaves three things, so that nothing
 * can hang and the user always sees where it stands:
 *   - sending: each chunk (input.h) goes out as one `bytes` message on a
 *     PUSH socket.  A send waits at most SEND_SLICE_MS; when the daemon
 *     applies backpressure the loop simply comes round again;
 *   - polling: every POLL_INTERVAL (faster on a terminal) the control
 *     socket is asked `resume` (the document's next_seq, tokens, blocks)
 *     and `health` (uptime).  This feeds the progress line, tells when the
 *     document is finished, and detects a daemon restart (uptime went back,
 *     or next_seq went back): messages after its last checkpoint, and any
 *     still queued in our socket, are gone, so a file is re-sent from the
 *     daemon's next_seq (duplicates would only be acknowledged);
 *   - the deadline: --timeout seconds in which no message was accepted AND
 *     the document did not advance is a dead or stuck daemon: fail with one
 *     line saying what was last seen.
 * After the last message (eof) the loop keeps polling until the daemon
 * reports the document finished — so exit 0 means the daemon really has
 * every byte — unless --no-wait, which only waits for ZeroMQ to hand the
 * queued messages over.
 */
#include <errno.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "clients/rwkvd-send/ctl.h"
#include "clients/rwkvd-send/input.h"
#include "clients/rwkvd-send/progress.h"
#include "clients/rwkvd-send/send.h"
#include "core/msg_encode.h"

#define SEND_SLICE_MS 100      /* longest single wait inside zmq_send */
#define SEND_HWM 4             /* messages queued on our side of the socket */
#define POLL_INTERVAL 2.0      /* seconds between polls without a terminal */
#define POLL_INTERVAL_TTY 0.5
#define POLL_INTERVAL_WAIT 0.2 /* after eof, waiting for `finished` */
#define CTL_POLL_MS 2000       /* one control round trip during the transfer */
#define RESTART_SLACK 1.0      /* seconds of uptime jitter tolerated */

typedef struct sender {
    const send_config *cfg;
    void *zctx, *push;
    ctl_client *ctl;
    send_input *in;
    progress prog;
    uint64_t seq;            /* next seq to send */
    uint64_t end_seq;        /* one past the eof message once it is sent */
    bool all_sent;
    uint64_t sent_bytes;     /* bytes of the messages below seq */
    /* what the daemon said last */
    bool have_resume;
    ctl_resume last;
    bool have_health;
    double uptime, uptime_at;
    double last_progress;    /* monotonic time of the last sign of life */
    double next_poll;
} sender;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(sender *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(sender *s, const char *fmt, ...)
{
    if (s)
        progress_clear(&s->prog);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "rwkvd-send: %s\n", msg);
    return SEND_FAIL;
}

static void note(sender *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(sender *s, const char *fmt, ...)
{
    if (s->cfg->quiet)
        return;
    progress_clear(&s->prog);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "rwkvd-send: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int send_encode(const send_config *cfg, uint64_t seq, const uint8_t *data, size_t len, bool eof,
                msgpack_sbuffer *sb)
{
    bool opts = seq == 0 && (cfg->set_outputs || cfg->pooling || cfg->no_normalize || cfg->topk);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int bad = msgpack_pack_map(&pk, 4 + (eof ? 1 : 0) + (opts ? 1 : 0)) ||
              rwkvd_pack_cstr(&pk, "v") || msgpack_pack_uint64(&pk, 1) ||
              rwkvd_pack_cstr(&pk, "doc") || rwkvd_pack_doc(&pk, cfg->doc, cfg->doc_len) ||
              rwkvd_pack_cstr(&pk, "seq") || msgpack_pack_uint64(&pk, seq) ||
              rwkvd_pack_cstr(&pk, "bytes") || msgpack_pack_bin(&pk, len) ||
              (len && msgpack_pack_bin_body(&pk, data, len));
    if (!bad && eof)
        bad = rwkvd_pack_cstr(&pk, "eof") || msgpack_pack_true(&pk);
    if (!bad && opts) {
        size_t n = (cfg->set_outputs ? 1 : 0) + (cfg->pooling ? 1 : 0) +
                   (cfg->no_normalize ? 1 : 0) + (cfg->topk ? 1 : 0);
        bad = rwkvd_pack_cstr(&pk, "opts") || msgpack_pack_map(&pk, n);
        if (!bad && cfg->set_outputs) {
            bad = rwkvd_pack_cstr(&pk, "outputs") || msgpack_pack_array(&pk, cfg->n_outputs);
            for (size_t i = 0; !bad && i < cfg->n_outputs; i++)
                bad = rwkvd_pack_cstr(&pk, cfg->outputs[i]);
        }
        if (!bad && cfg->pooling)
            bad = rwkvd_pack_cstr(&pk, "pooling") || rwkvd_pack_cstr(&pk, cfg->pooling);
        if (!bad && cfg->no_normalize)
            bad = rwkvd_pack_cstr(&pk, "normalize") || msgpack_pack_false(&pk);
        if (!bad && cfg->topk)
            bad = rwkvd_pack_cstr(&pk, "topk") || msgpack_pack_uint64(&pk, cfg->topk);
    }
    return bad ? -1 : 0;
}

/* Milliseconds for one control call: never longer than --timeout. */
static int ctl_ms(const send_config *cfg, int cap_ms)
{
    if (cfg->timeout <= 0)
        return cap_ms;
    double ms = cfg->timeout * 1000.0;
    return ms < cap_ms ? (ms < 1 ? 1 : (int)ms) : cap_ms;
}

/* The first `resume`: retried until --timeout (the daemon may be starting). */
static int first_resume(sender *s, ctl_resume *r)
{
    const send_config *cfg = s->cfg;
    double start = now_s();
    rwkv_error err = {{0}};
    for (;;) {
        ctl_status st = ctl_resume_doc(s->ctl, cfg->doc, cfg->doc_len, ctl_ms(cfg, 1000), r, &err);
        if (st == CTL_OK)
            return 0;
        if (st == CTL_BAD || (cfg->timeout > 0 && now_s() - start >= cfg->timeout))
            return fail(s, "%s%s", err.msg,
                        st == CTL_TIMEOUT ? " (is rwkvd running there?)" : "");
        if (st == CTL_REFUSED)
            usleep(200 * 1000); /* e.g. shutting_down: ask again until the deadline */
    }
}

/* Is the daemon's state consistent with this input and chunk size? */
static int check_start(sender *s, const ctl_resume *r)
{
    const send_config *cfg = s->cfg;
    uint64_t start = r->next_seq;
    /* The tokenizer never makes more tokens than bytes: more tokens than
     * next_seq full chunks can hold means larger chunks were sent before. */
    if (start > 0 && (start > UINT64_MAX / cfg->chunk || r->tokens > start * cfg->chunk))
        return fail(s, "%s: the daemon has %llu tokens after %llu messages, more than %llu "
                    "chunks of %zu bytes can give: was it sent with a larger --chunk-size?",
                    cfg->doc_label, (unsigned long long)r->tokens, (unsigned long long)start,
                    (unsigned long long)start, cfg->chunk);
    rwkv_error err = {{0}};
    if (input_seek(s->in, start, &err) != 0)
        return fail(s, "%s", err.msg);
    return 0;
}

/* Asks resume + health; detects progress and restarts.  *restart_to is
 * set (and 1 returned) when the sender must go back to that seq. */
static int poll_daemon(sender *s, double now, uint64_t *restart_to)
{
    const send_config *cfg = s->cfg;
    rwkv_error err = {{0}};
    ctl_resume r;
    ctl_status st = ctl_resume_doc(s->ctl, cfg->doc, cfg->doc_len, ctl_ms(cfg, CTL_POLL_MS), &r,
                                   &err);
    if (st == CTL_BAD)
        return fail(s, "%s", err.msg), -1;
    if (st != CTL_OK)
        return 0; /* busy, restarting or stopping: the deadline decides */
    double up = 0;
    bool have_up = ctl_health(s->ctl, ctl_ms(cfg, CTL_POLL_MS), &up, &err) == CTL_OK;
    double t = now_s();
    bool restarted = false;
    if (have_up && s->have_health && up + RESTART_SLACK < s->uptime + (t - s->uptime_at))
        restarted = true;
    if (s->have_resume && r.next_seq < s->last.next_seq)
        restarted = true;
    if (!s->have_resume || r.next_seq != s->last.next_seq || r.tokens != s->last.tokens ||
        r.blocks != s->last.blocks || r.finished != s->last.finished)
        s->last_progress = t;
    s->last = r;
    s->have_resume = true;
    if (have_up) {
        s->uptime = up;
        s->uptime_at = t;
        s->have_health = true;
    }
    progress_sample(&s->prog, now, r.tokens, r.next_seq * cfg->chunk);
    if (restarted && r.next_seq < s->seq) {
        *restart_to = r.next_seq;
        return 1;
    }
    return 0;
}

/* One attempt to hand the current message to ZeroMQ: 1 sent, 0 not yet. */
static int try_send(sender *s, const msgpack_sbuffer *sb)
{
    if (zmq_send(s->push, sb->data, sb->size, 0) >= 0)
        return 1;
    if (errno == EAGAIN || errno == EINTR)
        return 0;
    return fail(s, "ingest endpoint %s: send: %s", s->cfg->ingest, zmq_strerror(errno)), -1;
}

static int transfer(sender *s)
{
    const send_config *cfg = s->cfg;
    bool tty = s->prog.to != NULL;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    bool have_msg = false, msg_last = false;
    size_t msg_len = 0;
    int rc = SEND_FAIL;
    rwkv_error err = {{0}};
    s->last_progress = now_s();
    s->next_poll = s->last_progress;
    for (;;) {
        double now = now_s();
        if (!s->all_sent) {
            if (!have_msg) {
                const uint8_t *data;
                if (input_read(s->in, &data, &msg_len, &msg_last, &err) != 0) {
                    fail(s, "%s", err.msg);
                    goto out;
                }
                msgpack_sbuffer_clear(&sb);
                if (send_encode(cfg, s->seq, data, msg_len, msg_last, &sb) != 0) {
                    fail(s, "out of memory encoding message %llu", (unsigned long long)s->seq);
                    goto out;
                }
                have_msg = true;
            }
            int t = try_send(s, &sb);
            if (t < 0)
                goto out;
            if (t == 1) {
                have_msg = false;
                s->seq++;
                s->sent_bytes += msg_len;
                s->last_progress = now_s();
                if (msg_last) {
                    s->all_sent = true;
                    s->end_seq = s->seq;
                    if (cfg->no_wait) {
                        rc = SEND_OK;
                        goto out;
                    }
                }
            }
        } else {
            double wait = s->next_poll - now;
            if (wait > 0)
                usleep((useconds_t)(wait * 1e6));
            now = now_s();
        }
        if (now >= s->next_poll) {
            uint64_t back = 0;
            int p = poll_daemon(s, now, &back);
            if (p < 0)
                goto out;
            if (p == 1) {
                if (!input_seekable(s->in)) {
                    fail(s, "%s: the daemon restarted and lost messages %llu..%llu of a stream, "
                         "which cannot be re-read: run the same command again with the same "
                         "input to continue", cfg->doc_label, (unsigned long long)back,
                         (unsigned long long)(s->seq - 1));
                    goto out;
                }
                note(s, "%s: the daemon restarted; re-sending from message %llu",
                     cfg->doc_label, (unsigned long long)back);
                if (input_seek(s->in, back, &err) != 0) {
                    fail(s, "%s", err.msg);
                    goto out;
                }
                s->seq = back;
                s->sent_bytes = back * cfg->chunk;
                s->all_sent = false;
                have_msg = false;
                continue;
            }
            if (s->all_sent && s->have_resume && s->last.finished &&
                s->last.next_seq >= s->end_seq) {
                rc = SEND_OK;
                goto out;
            }
            double iv = s->all_sent ? POLL_INTERVAL_WAIT : tty ? POLL_INTERVAL_TTY : POLL_INTERVAL;
            s->next_poll = now_s() + iv;
        }
        progress_draw(&s->prog, now_s(), s->sent_bytes, false);
        if (cfg->timeout > 0 && now_s() - s->last_progress > cfg->timeout) {
            if (s->have_resume)
                fail(s, "%s: no progress for %.0f s: %llu of %s%llu messages sent, the daemon "
                     "is at message %llu (%llu tokens, %llu blocks%s); an error output on the "
                     "emit socket may say why", cfg->doc_label, cfg->timeout,
                     (unsigned long long)s->seq, s->all_sent ? "" : "at least ",
                     (unsigned long long)(s->all_sent ? s->end_seq : s->seq),
                     (unsigned long long)s->last.next_seq, (unsigned long long)s->last.tokens,
                     (unsigned long long)s->last.blocks, s->last.finished ? ", finished" : "");
            else
                fail(s, "%s: no progress for %.0f s sending message %llu to %s and no reply "
                     "from %s (is rwkvd running?)", cfg->doc_label, cfg->timeout,
                     (unsigned long long)s->seq, cfg->ingest, cfg->control);
            goto out;
        }
    }
out:
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int send_run(const send_config *cfg)
{
    sender st;
    memset(&st, 0, sizeof st);
    sender *s = &st;
    s->cfg = cfg;
    progress_init(&s->prog, NULL, cfg->doc_label, -1);
    rwkv_error err = {{0}};
    int rc = SEND_FAIL;
    s->in = input_open(cfg->path, cfg->chunk, &err);
    if (!s->in)
        return fail(s, "%s", err.msg);
    if (!cfg->quiet && isatty(STDERR_FILENO))
        progress_init(&s->prog, stderr, cfg->doc_label, input_size(s->in));
    s->zctx = zmq_ctx_new();
    if (!s->zctx) {
        fail(s, "zmq context: %s", zmq_strerror(errno));
        goto out;
    }
    rwkvd_curve_client curve;
    if (rwkvd_curve_client_load(cfg->curve_server_key, cfg->curve_key, &curve, &err) != 0) {
        fail(s, "%s", err.msg);
        goto out;
    }
    s->ctl = ctl_open(s->zctx, cfg->control, &curve, &err);
    if (!s->ctl) {
        fail(s, "%s", err.msg);
        goto out;
    }
    s->push = zmq_socket(s->zctx, ZMQ_PUSH);
    int hwm = SEND_HWM, slice = SEND_SLICE_MS, zero = 0;
    if (!s->push || zmq_setsockopt(s->push, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(s->push, ZMQ_SNDTIMEO, &slice, sizeof slice) != 0 ||
        zmq_setsockopt(s->push, ZMQ_LINGER, &zero, sizeof zero) != 0) {
        fail(s, "ingest socket: %s", zmq_strerror(errno));
        goto out;
    }
    /* a key refused here would otherwise look like a daemon that never
     * takes a message */
    int curve_rc = rwkvd_curve_client_connect(&curve, s->zctx, s->push, cfg->ingest, "ingest",
                                              3000, &err);
    memset(&curve, 0, sizeof curve);
    if (curve_rc != 0) {
        fail(s, "%s", err.msg);
        goto out;
    }
    ctl_resume r;
    if (first_resume(s, &r) != 0)
        goto out;
    if (r.finished) {
        note(s, "%s: already finished (%llu tokens, %llu blocks); nothing to send",
             cfg->doc_label, (unsigned long long)r.tokens, (unsigned long long)r.blocks);
        rc = SEND_OK;
        goto out;
    }
    if (check_start(s, &r) != 0)
        goto out;
    s->seq = r.next_seq;
    s->sent_bytes = r.next_seq * cfg->chunk;
    s->last = r;
    s->have_resume = true;
    if (r.next_seq > 0)
        note(s, "%s: the daemon has %llu messages (%llu tokens); continuing from byte %llu",
             cfg->doc_label, (unsigned long long)r.next_seq, (unsigned long long)r.tokens,
             (unsigned long long)s->sent_bytes);
    rc = transfer(s);
    if (rc == SEND_OK && cfg->no_wait) {
        /* Hand the queued messages over: close with a linger of --timeout and
         * see whether ZeroMQ finished before the linger ran out. */
        int linger = cfg->timeout > 0 ? (int)(cfg->timeout * 1000) : -1;
        zmq_setsockopt(s->push, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(s->push);
        s->push = NULL;
        ctl_close(s->ctl);
        s->ctl = NULL;
        double t0 = now_s();
        zmq_ctx_term(s->zctx);
        s->zctx = NULL;
        if (linger >= 0 && now_s() - t0 >= cfg->timeout - 0.01)
            rc = fail(s, "%s: could not hand the last messages to %s within %.0f s",
                      cfg->doc_label, cfg->ingest, cfg->timeout);
    }
    if (rc == SEND_OK && !cfg->quiet && s->prog.to) {
        progress_draw(&s->prog, now_s(), s->sent_bytes, true);
        progress_clear(&s->prog);
    }
out:
    if (s->push)
        zmq_close(s->push);
    ctl_close(s->ctl);
    if (s->zctx)
        zmq_ctx_term(s->zctx);
    input_close(s->in);
    return rc;
}

int main(int argc, char **argv)
{
    send_config cfg;
    int rc = send_parse_args(argc, argv, &cfg);
    if (rc < 0)
        return SEND_OK; /* --help */
    if (rc != SEND_OK)
        return rc;
    return cfg.nats ? send_run_nats(&cfg) : send_run(&cfg);
}
