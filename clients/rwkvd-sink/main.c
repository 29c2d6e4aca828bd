/* main.c — rwkvd-sink: rwkvd's outputs -> JSON Lines or raw files, each once.
 *
 * One loop: wait (zmq_poll, bounded by --idle-timeout) for the PULL socket,
 * then drain every message already queued, then flush the output — so a
 * burst costs one flush, and a quiet socket never leaves lines in a buffer.
 * Each message is pre-scanned (core/mp_scan.h: outputs are untrusted
 * bytes too), unpacked, classified (render.h), and
 *   - block / final: looked up by (doc, inc, block) / (doc, inc, "final") in the key
 *     set; a duplicate is dropped (and with --verify-identical its hash64 is
 *     compared with the first copy's); a new one is written, then added;
 *   - error / ack: written as records and reported on stderr;
 *   - a message that cannot be decoded: reported, skipped, exit status 1.
 * SIGINT/SIGTERM end the loop cleanly (the output is flushed).
 */
#include <errno.h>
#include <msgpack.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "clients/rwkvd-sink/keyset.h"
#include "clients/rwkvd-sink/raw.h"
#include "clients/rwkvd-sink/reload.h"
#include "clients/rwkvd-sink/render.h"
#include "clients/rwkvd-sink/sink.h"
#include "clients/rwkvd-sink/top.h"
#include "core/mp_scan.h"
#include "daemon/wire/curve_client.h"

#define OUT_BUFFER (1 << 20)

typedef struct sink {
    const sink_config *cfg;
    FILE *out;             /* JSONL destination (NULL in raw mode) */
    keyset *keys;
    seg_top *top;          /* --segments-top, else NULL */
    tbuf line;
    tbuf note;             /* stderr lines */
    uint64_t finals;       /* distinct final outputs written (or reloaded) */
    uint64_t written, duplicates, differing, undecodable, messages;
} sink;

static volatile int stop_signal; /* set by the handler; sig_atomic_t is int here */

static void on_signal(int sig) { stop_signal = sig; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "rwkvd-sink: %s\n", msg);
    return SINK_FAIL;
}

/* Prints the note buffer as one stderr line and empties it. */
static void emit_note(sink *s)
{
    if (!s->note.oom && s->note.len)
        fprintf(stderr, "rwkvd-sink: %s\n", s->note.p);
    s->note.len = 0;
    s->note.oom = false;
}

static void note_doc(sink *s, const out_info *info)
{
    if (info->has_doc) {
        tbuf_puts(&s->note, "doc \"");
        render_printable(&s->note, info->doc, info->doc_len, 80);
        tbuf_puts(&s->note, "\"");
    } else {
        tbuf_puts(&s->note, "doc ?");
    }
}

static void note_text(sink *s, const char *p, size_t n)
{
    render_printable(&s->note, (const uint8_t *)p, n, 400);
}

/* The stderr line of an error or ack output. */
static void report(sink *s, const out_info *info)
{
    char num[64];
    if (info->type == OUT_ACK && s->cfg->quiet)
        return;
    tbuf_puts(&s->note, info->type == OUT_ERROR ? "error output: " : "ack: ");
    note_doc(s, info);
    if (info->has_seq) {
        snprintf(num, sizeof num, " seq %llu", (unsigned long long)info->seq);
        tbuf_puts(&s->note, num);
    }
    if (info->type == OUT_ERROR) {
        tbuf_puts(&s->note, ": ");
        note_text(s, info->reason ? info->reason : "?", info->reason ? info->reason_len : 1);
        if (info->message) {
            tbuf_puts(&s->note, ": ");
            note_text(s, info->message, info->message_len);
        }
        if (info->has_expected_seq) {
            snprintf(num, sizeof num, " (expected_seq %llu)",
                     (unsigned long long)info->expected_seq);
            tbuf_puts(&s->note, num);
        }
    } else {
        tbuf_puts(&s->note, ": ");
        if (info->status)
            note_text(s, info->status, info->status_len);
        else
            tbuf_puts(&s->note, "duplicate");
        if (info->has_next_seq) {
            snprintf(num, sizeof num, " (next_seq %llu)", (unsigned long long)info->next_seq);
            tbuf_puts(&s->note, num);
        }
    }
    emit_note(s);
}

/* Writes one record (JSONL line, or raw files).  0 or -1 after reporting. */
static int write_record(sink *s, const msgpack_object *root, const out_info *info, bool keyed,
                        uint64_t h)
{
    const sink_config *cfg = s->cfg;
    char stem[64];
    render_blob blobs[RENDER_MAX_BLOBS];
    size_t n_blobs = 0;
    bool raw = cfg->raw && info->has_doc && keyed;
    if (raw) {
        /* a later incarnation of the id (PROTOCOL.md §8.4) gets its own names */
        char inc[24] = "";
        if (info->inc > 0)
            snprintf(inc, sizeof inc, "i%llu.", (unsigned long long)info->inc);
        if (info->type == OUT_FINAL)
            snprintf(stem, sizeof stem, "%sfinal", inc);
        else if (info->type == OUT_SEGMENTS)
            snprintf(stem, sizeof stem, "%ssegments.%llu", inc, (unsigned long long)info->block);
        else
            snprintf(stem, sizeof stem, "%s%llu", inc, (unsigned long long)info->block);
    }
    s->line.len = 0;
    render_record(&s->line, root, info, raw ? stem : NULL, blobs, &n_blobs);
    if (keyed) {
        char hex[40];
        snprintf(hex, sizeof hex, ",\"msg_hash\":\"%016llx\"", (unsigned long long)h);
        tbuf_puts(&s->line, hex);
    }
    tbuf_puts(&s->line, "}\n");
    if (s->line.oom)
        return fail("out of memory rendering an output"), -1;
    if (cfg->raw) {
        if (!raw)
            return 0; /* errors and acks: stderr only in raw mode */
        rwkv_error err = {{0}};
        if (raw_write(cfg->raw, info->doc, info->doc_len, stem, blobs, n_blobs, s->line.p,
                      s->line.len, &err) != 0)
            return fail("%s", err.msg), -1;
        return 0;
    }
    if (fwrite(s->line.p, 1, s->line.len, s->out) != s->line.len)
        return fail("%s: write: %s", cfg->out ? cfg->out : "stdout", strerror(errno)), -1;
    return 0;
}

/* Handles one message; -1 only for failures that must stop the sink. */
static int handle(sink *s, const uint8_t *p, size_t len)
{
    s->messages++;
    rwkvd_mp_limits lim = {.max_depth = 4, .max_items = (size_t)1 << 22,
                           .max_map = 256, .max_array = (size_t)1 << 22};
    rwkvd_reason reason;
    size_t off;
    rwkv_error err = {{0}};
    if (rwkvd_mp_scan(p, len, &lim, &reason, &off, &err) != 0) {
        s->undecodable++;
        fail("output %llu (%zu bytes) cannot be decoded: %s", (unsigned long long)s->messages,
             len, err.msg);
        return 0;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t used = 0;
    int rc = 0;
    out_info info;
    if (msgpack_unpack_next(&u, (const char *)p, len, &used) != MSGPACK_UNPACK_SUCCESS) {
        s->undecodable++;
        fail("output %llu (%zu bytes) cannot be unpacked", (unsigned long long)s->messages, len);
        goto out;
    }
    if (render_classify(&u.data, &info, &err) != 0) {
        s->undecodable++;
        fail("output %llu (%zu bytes) is not a protocol v1 output: %s",
             (unsigned long long)s->messages, len, err.msg);
        goto out;
    }
    bool keyed = info.type == OUT_BLOCK || info.type == OUT_FINAL || info.type == OUT_SEGMENTS;
    uint64_t h = hash64(p, len, 0);
    if (keyed) {
        uint64_t key_block = info.type == OUT_FINAL      ? KEYSET_FINAL
                             : info.type == OUT_SEGMENTS ? info.block | KEYSET_SEGMENTS_BIT
                                                         : info.block;
        uint64_t first;
        bool has_first;
        if (keyset_find(s->keys, info.doc, info.doc_len, info.inc, key_block, &first,
                        &has_first)) {
            s->duplicates++;
            if (s->cfg->verify && has_first && first != h) {
                s->differing++;
                tbuf_puts(&s->note, "");
                note_doc(s, &info);
                char what[96];
                if (info.type == OUT_FINAL)
                    snprintf(what, sizeof what, " final");
                else if (info.type == OUT_SEGMENTS)
                    snprintf(what, sizeof what, " segments after block %llu",
                             (unsigned long long)info.block);
                else
                    snprintf(what, sizeof what, " block %llu", (unsigned long long)info.block);
                tbuf_puts(&s->note, what);
                snprintf(what, sizeof what,
                         ": a re-emitted copy differs from the first (msg_hash %016llx, "
                         "first %016llx)", (unsigned long long)h, (unsigned long long)first);
                tbuf_puts(&s->note, what);
                emit_note(s);
            }
            goto out;
        }
        if (write_record(s, &u.data, &info, true, h) != 0) {
            rc = -1;
            goto out;
        }
        if (keyset_add(s->keys, info.doc, info.doc_len, info.inc, key_block, h, true) != 0) {
            fail("out of memory for the set of written outputs");
            rc = -1;
            goto out;
        }
        s->written++;
        if (info.type == OUT_FINAL)
            s->finals++;
        if (info.type == OUT_SEGMENTS && s->top &&
            seg_top_offer(s->top, info.doc, info.doc_len, &u.data) != 0) {
            fail("out of memory for --segments-top");
            rc = -1;
            goto out;
        }
    } else {
        if (write_record(s, &u.data, &info, false, h) != 0) {
            rc = -1;
            goto out;
        }
        if (info.type == OUT_ERROR || info.type == OUT_ACK)
            report(s, &info);
    }
out:
    msgpack_unpacked_destroy(&u);
    return rc;
}

static int flush_out(sink *s)
{
    if (s->out && fflush(s->out) != 0)
        return fail("%s: write: %s", s->cfg->out ? s->cfg->out : "stdout", strerror(errno)), -1;
    return 0;
}

/* Opens the destination; with --append, rebuilds the key set from it. */
static int open_output(sink *s)
{
    const sink_config *cfg = s->cfg;
    rwkv_error err = {{0}};
    if (cfg->raw) {
        if (raw_prepare(cfg->raw, &err) != 0)
            return fail("%s", err.msg), -1;
        if (cfg->append && reload_raw(cfg->raw, s->keys, &s->finals, &err) != 0)
            return fail("%s", err.msg), -1;
    } else if (cfg->out) {
        uint64_t cut = 0;
        if (cfg->append && reload_jsonl(cfg->out, s->keys, &s->finals, &cut, &err) != 0)
            return fail("%s", err.msg), -1;
        if (cut && !cfg->quiet)
            fprintf(stderr, "rwkvd-sink: %s: removed a cut-off last line (%llu bytes)\n",
                    cfg->out, (unsigned long long)cut);
        s->out = fopen(cfg->out, cfg->append ? "a" : "w");
        if (!s->out)
            return fail("%s: %s", cfg->out, strerror(errno)), -1;
    } else {
        s->out = stdout;
    }
    if (s->out)
        setvbuf(s->out, NULL, _IOFBF, OUT_BUFFER);
    if (cfg->append && !cfg->quiet && keyset_count(s->keys))
        fprintf(stderr, "rwkvd-sink: %s holds %zu outputs (%llu final); they will not be "
                "written again\n", cfg->raw ? cfg->raw : cfg->out, keyset_count(s->keys),
                (unsigned long long)s->finals);
    return 0;
}

static int nats_msg(void *ctx, const uint8_t *p, size_t n)
{
    return handle(ctx, p, n);
}

static int nats_batch(void *ctx)
{
    return flush_out(ctx);
}

static bool nats_done(void *ctx)
{
    sink *s = ctx;
    return s->cfg->until_final && s->finals >= s->cfg->until_final;
}

static int run(sink *s)
{
    const sink_config *cfg = s->cfg;
    int rc = SINK_FAIL;
    if (cfg->nats) {
        rc = nats_done(s) ? SINK_OK
                          : sink_nats_run(cfg, nats_msg, nats_batch, nats_done, s, &stop_signal);
        return flush_out(s) != 0 ? SINK_FAIL : rc;
    }
    void *zctx = zmq_ctx_new(), *pull = NULL;
    if (!zctx)
        return fail("zmq context: %s", zmq_strerror(errno));
    pull = zmq_socket(zctx, ZMQ_PULL);
    int zero = 0;
    if (!pull || zmq_setsockopt(pull, ZMQ_LINGER, &zero, sizeof zero) != 0) {
        fail("emit socket: %s", zmq_strerror(errno));
        goto out;
    }
    {
        rwkvd_curve_client curve;
        rwkv_error err;
        /* a refused key or a wrong server key is otherwise a sink that
         * silently never receives anything */
        int crc = rwkvd_curve_client_load(cfg->curve_server_key, cfg->curve_key, &curve, &err);
        if (crc == 0)
            crc = rwkvd_curve_client_connect(&curve, zctx, pull, cfg->emit, "emit", 3000, &err);
        memset(&curve, 0, sizeof curve);
        if (crc != 0) {
            fail("%s", err.msg);
            goto out;
        }
    }
    if (cfg->until_final && s->finals >= cfg->until_final) {
        rc = SINK_OK;
        goto out;
    }
    double last_msg = now_s();
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    for (;;) {
        long wait_ms = -1;
        if (cfg->idle_timeout > 0) {
            double left = cfg->idle_timeout - (now_s() - last_msg);
            if (left <= 0) {
                if (cfg->until_final) {
                    fail("idle for %.1f s after %llu of %llu final outputs", cfg->idle_timeout,
                         (unsigned long long)s->finals, (unsigned long long)cfg->until_final);
                    break;
                }
                rc = SINK_OK;
                break;
            }
            wait_ms = (long)(left * 1000.0) + 1;
        }
        zmq_pollitem_t item = {.socket = pull, .events = ZMQ_POLLIN};
        int n = zmq_poll(&item, 1, wait_ms);
        if (stop_signal) {
            rc = SINK_OK;
            break;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail("emit endpoint %s: poll: %s", cfg->emit, zmq_strerror(errno));
            break;
        }
        if (n == 0)
            continue;
        bool done = false, broken = false;
        /* Drain what is queued, then flush once. */
        while (!done && !broken && zmq_msg_recv(&msg, pull, ZMQ_DONTWAIT) >= 0) {
            if (zmq_msg_more(&msg)) {
                s->undecodable++;
                fail("output %llu has more than one frame", (unsigned long long)s->messages + 1);
            }
            if (handle(s, zmq_msg_data(&msg), zmq_msg_size(&msg)) != 0)
                broken = true;
            if (cfg->until_final && s->finals >= cfg->until_final)
                done = true;
        }
        last_msg = now_s();
        if (broken || flush_out(s) != 0)
            break;
        if (done) {
            rc = SINK_OK;
            break;
        }
    }
    zmq_msg_close(&msg);
out:
    if (flush_out(s) != 0)
        rc = SINK_FAIL;
    if (pull)
        zmq_close(pull);
    zmq_ctx_term(zctx);
    return rc;
}

int main(int argc, char **argv)
{
    sink_config cfg;
    int rc = sink_parse_args(argc, argv, &cfg);
    if (rc < 0)
        return SINK_OK; /* --help */
    if (rc != SINK_OK)
        return rc;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: zmq_poll returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    sink s;
    memset(&s, 0, sizeof s);
    s.cfg = &cfg;
    if (!(s.keys = keyset_new()) ||
        (cfg.segments_top && !(s.top = seg_top_new((size_t)cfg.segments_top)))) {
        keyset_free(s.keys);
        return fail("out of memory");
    }
    rc = open_output(&s) == 0 ? run(&s) : SINK_FAIL;
    if (s.out && s.out != stdout && fclose(s.out) != 0 && rc == SINK_OK)
        rc = fail("%s: close: %s", cfg.out, strerror(errno));
    bool fatal = rc != SINK_OK; /* already reported in one line */
    if (rc == SINK_OK && (s.differing || s.undecodable))
        rc = SINK_FAIL;
    if (!cfg.quiet && !fatal)
        fprintf(stderr, "rwkvd-sink: %llu outputs written, %llu duplicates dropped%s%s\n",
                (unsigned long long)s.written, (unsigned long long)s.duplicates,
                s.differing ? ", SOME DIFFERED from the first copy" : "",
                s.undecodable ? ", some could not be decoded" : "");
    if (s.top && !fatal)
        seg_top_print(s.top, stderr);
    seg_top_free(s.top);
    keyset_free(s.keys);
    tbuf_free(&s.line);
    tbuf_free(&s.note);
    return rc;
}
