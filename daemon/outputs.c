/* outputs.c — see outputs.h. */
#include "daemon/outputs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/output_stage.h"

static rwkvd_out_head head_for(const rwkvd_server *srv, const rwkvd_session *s)
{
    return rwkvd_stage_head(&srv->head_template, s->doc, s->doc_len, s->incarnation, &s->opts,
                            s->precision);
}

static int queue(rwkvd_server *srv, msgpack_sbuffer *sb, bool journal, rwkv_error *err)
{
    size_t len = sb->size;
    void *data = msgpack_sbuffer_release(sb);
    return rwkvd_outbox_push(srv->outbox, data, len, journal, err);
}

int rwkvd_queue_block(rwkvd_server *srv, const rwkvd_session *s, const rwkvd_block_out *b,
                      rwkv_error *err)
{
    rwkvd_out_head h = head_for(srv, s);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (rwkvd_encode_block(&sb, &h, b, err) != 0) {
        msgpack_sbuffer_destroy(&sb);
        return -1;
    }
    return queue(srv, &sb, true, err);
}

int rwkvd_queue_segments(rwkvd_server *srv, const rwkvd_session *s,
                         const rwkvd_segments_out *o, rwkv_error *err)
{
    rwkvd_out_head h = head_for(srv, s);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (rwkvd_encode_segments(&sb, &h, o, err) != 0) {
        msgpack_sbuffer_destroy(&sb);
        return -1;
    }
    return queue(srv, &sb, true, err);
}

int rwkvd_queue_final(rwkvd_server *srv, const rwkvd_session *s, const rwkvd_final_out *f,
                      rwkv_error *err)
{
    rwkvd_out_head h = head_for(srv, s);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (rwkvd_encode_final(&sb, &h, f, err) != 0) {
        msgpack_sbuffer_destroy(&sb);
        return -1;
    }
    return queue(srv, &sb, true, err);
}

void rwkvd_emit_error(rwkvd_server *srv, const uint8_t *doc, size_t doc_len, bool have_seq,
                      uint64_t seq, rwkvd_reason reason, const char *message, bool have_expected,
                      uint64_t expected)
{
    if ((unsigned)reason < RWKVD_REASON_COUNT)
        srv->stats.rejected[reason]++;
    char d[96] = "-";
    if (doc)
        rwkvd_log_doc(doc, doc_len, d);
    LOG_WARN("refused: doc %s seq %lld: %s: %s", d, have_seq ? (long long)seq : -1LL,
             rwkvd_reason_name(reason), message);
    rwkvd_error_out e = {.doc = doc,
                         .doc_len = doc_len,
                         .have_seq = have_seq,
                         .seq = seq,
                         .reason = reason,
                         .message = message,
                         .have_expected_seq = have_expected,
                         .expected_seq = expected};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    rwkv_error err;
    if (rwkvd_encode_error(&sb, &e, &err) != 0 || queue(srv, &sb, false, &err) != 0) {
        msgpack_sbuffer_destroy(&sb);
        LOG_ERROR("could not queue an error output: %s", err.msg);
    }
}

void rwkvd_emit_ack(rwkvd_server *srv, const uint8_t *doc, size_t doc_len, uint64_t seq,
                    uint64_t next_seq)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    rwkv_error err;
    if (rwkvd_encode_ack(&sb, doc, doc_len, seq, next_seq, &err) != 0 ||
        queue(srv, &sb, false, &err) != 0) {
        msgpack_sbuffer_destroy(&sb);
        LOG_ERROR("could not queue an ack: %s", err.msg);
    }
}
