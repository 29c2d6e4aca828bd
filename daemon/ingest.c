/* ingest.c — one message from a producer: decode, find the document, put
 * the message in sequence (duplicates acknowledged, gaps held or refused),
 * and apply it: tokenizer, pending tokens, eof.  Every refusal leaves the
 * document exactly as it was (PROTOCOL.md §4.4) and becomes an error output
 * plus a log line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/embed_doc.h"
#include "daemon/log.h"
#include "daemon/server.h"

/* Held messages of all documents together are capped too, so many gapped
 * documents cannot pin unbounded memory. */
static size_t held_cap(const rwkvd_server *srv)
{
    return 4 * (size_t)srv->cfg.max_message_size;
}

static void mark_dirty(rwkvd_server *srv, rwkvd_session *s)
{
    if (!s->dirty) {
        s->dirty = true;
        s->dirty_since = rwkvd_now();
    }
    (void)srv;
}

/* Segments (opts.segment, o: the document's options resolved against the
 * model) need byte offsets: text/bytes through a tokenizer whose tokens
 * spell their input, and no inserted tokens.  The segmenter is made with
 * seq 0, before anything else changes.  0, or -1 with *reason and msg set. */
static int segment_check(rwkvd_server *srv, rwkvd_session *s, const rwkvd_ingest *m,
                         const rwkvd_doc_opts *o, rwkvd_input_kind kind, rwkvd_reason *reason,
                         char *msg, size_t msg_len)
{
    if (!o->segment)
        return 0;
    if (o->pooling == RWKVD_POOL_EOS) {
        *reason = RWKVD_R_BAD_OPTS;
        snprintf(msg, msg_len, "opts.segment: not with an EmbeddingRWKV model (the EOS tokens "
                               "it inserts have no bytes in the input)");
        return -1;
    }
    if (kind == RWKVD_INPUT_TOKENS) {
        *reason = RWKVD_R_PAYLOAD_KIND;
        snprintf(msg, msg_len, "opts.segment needs text/bytes (segments are byte ranges); "
                               "this message sends token ids");
        return -1;
    }
    if (!rwkv_tokenizer_spells_input(srv->tok)) {
        *reason = RWKVD_R_BAD_OPTS;
        snprintf(msg, msg_len, "opts.segment: the %s tokenizer normalises text, so its tokens "
                               "have no exact byte offsets", rwkv_tokenizer_kind_name(srv->tok));
        return -1;
    }
    rwkv_error err;
    if (m->seq == 0 && rwkvd_session_start_segments(s, o, &err) != 0) {
        *reason = RWKVD_R_OVERLOADED;
        snprintf(msg, msg_len, "%s", err.msg);
        return -1;
    }
    return 0;
}

/* Applies an in-sequence message.  Returns 0, or -1 with *reason and msg
 * set and the session unchanged. */
static int apply(rwkvd_server *srv, rwkvd_session *s, const rwkvd_ingest *m, rwkvd_reason *reason,
                 char *msg, size_t msg_len)
{
    rwkvd_input_kind kind = m->kind == RWKVD_PAYLOAD_TOKENS ? RWKVD_INPUT_TOKENS
                            : m->kind == RWKVD_PAYLOAD_NONE ? RWKVD_INPUT_NONE
                                                            : RWKVD_INPUT_BYTES;
    if (kind != RWKVD_INPUT_NONE && s->input != RWKVD_INPUT_NONE && kind != s->input) {
        *reason = RWKVD_R_PAYLOAD_KIND;
        snprintf(msg, msg_len, "document %s; this message sends %s",
                 s->input == RWKVD_INPUT_TOKENS ? "was started with token ids"
                                                : "was started with text/bytes",
                 kind == RWKVD_INPUT_TOKENS ? "token ids" : "text/bytes");
        return -1;
    }
    /* seq 0 fixes the options, resolved against the served model */
    rwkvd_doc_opts opts = m->seq == 0 && m->has_opts ? m->opts : s->opts;
    if (m->seq == 0 && rwkvd_embed_resolve_opts(srv->mi, &opts, msg, msg_len) != 0) {
        *reason = RWKVD_R_BAD_OPTS;
        return -1;
    }
    if (segment_check(srv, s, m, &opts, kind, reason, msg, msg_len) != 0)
        return -1;
    /* everything that can fail happens on copies first */
    rwkv_ids add = {0};
    rwkv_error err;
    size_t before = s->pending.n;
    int rc = 0;
    if (kind == RWKVD_INPUT_BYTES)
        rc = rwkv_encoder_feed(s->enc, m->data, m->data_len, &add, &err);
    else if (kind == RWKVD_INPUT_TOKENS)
        for (size_t i = 0; rc == 0 && i < m->n_tokens; i++)
            rc = rwkv_ids_push(&add, m->tokens[i], &err);
    if (rc == 0 && m->eof && (s->input == RWKVD_INPUT_BYTES || kind == RWKVD_INPUT_BYTES))
        rc = rwkv_encoder_finish(s->enc, &add, &err);
    /* EmbeddingRWKV: the EOS the options put in (embed_doc.h) */
    rwkv_ids shaped = {0};
    uint32_t since = s->since_eos;
    if (rc == 0)
        rc = rwkvd_embed_shape(&opts, s->input == RWKVD_INPUT_BYTES || kind == RWKVD_INPUT_BYTES,
                               m->eof, rwkvd_session_tokens(s), &since, &add, &shaped, &err);
    for (size_t i = 0; rc == 0 && i < shaped.n; i++)
        rc = rwkv_ids_push(&s->pending, shaped.v[i], &err);
    rwkv_ids_free(&add);
    rwkv_ids_free(&shaped);
    if (rc != 0) {
        /* only memory can fail here; the encoder may have moved on, so the
         * document cannot be trusted any more */
        s->pending.n = before;
        s->failed = true;
        *reason = RWKVD_R_OVERLOADED;
        snprintf(msg, msg_len, "%s", err.msg);
        return -1;
    }
    s->since_eos = since;
    if (m->seq == 0) {
        s->opts = opts;
        s->block_size = (uint32_t)srv->cfg.block_size;
        s->started = true;
    }
    if (kind != RWKVD_INPUT_NONE)
        s->input = kind;
    srv->pending_tokens += s->pending.n - before;
    srv->stats.messages_total++;
    s->next_seq++;
    if (m->eof)
        s->eof = true;
    mark_dirty(srv, s);
    rwkvd_ready_push(srv, s);
    return 0;
}

static int hold(rwkvd_server *srv, rwkvd_session *s, uint64_t seq, const void *buf, size_t len)
{
    if (s->n_held >= (size_t)srv->cfg.max_held_msgs || srv->held_bytes + len > held_cap(srv))
        return -1;
    for (size_t i = 0; i < s->n_held; i++)
        if (s->held[i].seq == seq)
            return 0; /* the same seq sent twice while waiting: keep the first */
    rwkvd_held *h = realloc(s->held, (s->n_held + 1) * sizeof *h);
    if (!h)
        return -1;
    s->held = h;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return -1;
    memcpy(copy, buf, len);
    s->held[s->n_held++] = (rwkvd_held){seq, copy, len};
    s->held_bytes += len;
    srv->held_bytes += len;
    return 0;
}

/* Takes the held message with seq == next_seq out of the session, if any. */
static int take_held(rwkvd_server *srv, rwkvd_session *s, rwkvd_held *out)
{
    for (size_t i = 0; i < s->n_held; i++)
        if (s->held[i].seq == s->next_seq) {
            *out = s->held[i];
            s->held[i] = s->held[--s->n_held];
            s->held_bytes -= out->len;
            srv->held_bytes -= out->len;
            return 1;
        }
    return 0;
}

static void refuse(rwkvd_server *srv, const rwkvd_session *s, uint64_t seq, rwkvd_reason r,
                   const char *msg)
{
    rwkvd_emit_error(srv, s->doc, s->doc_len, true, seq, r, msg, false, 0);
}

/* Sequencing and application of one decoded message for session s. */
static void deliver(rwkvd_server *srv, rwkvd_session *s, rwkvd_ingest *m, const void *raw,
                    size_t raw_len)
{
    char msg[RWKV_ERROR_MAX];
    rwkvd_reason reason;
    if (m->seq < s->next_seq) {
        rwkvd_emit_ack(srv, s->doc, s->doc_len, m->seq, s->next_seq);
        return;
    }
    if (s->finished || s->eof) {
        snprintf(msg, sizeof msg, "the document ended at seq %llu (eof); drop it to reuse the id",
                 (unsigned long long)(s->next_seq - 1));
        refuse(srv, s, m->seq, RWKVD_R_DOC_FINISHED, msg);
        return;
    }
    if (s->failed) {
        refuse(srv, s, m->seq, RWKVD_R_ENGINE,
               "the document failed earlier and cannot continue; drop it and send it again");
        return;
    }
    if (m->seq > s->next_seq) {
        if (hold(srv, s, m->seq, raw, raw_len) != 0) {
            snprintf(msg, sizeof msg, "seq %llu arrived while the document waits for seq %llu",
                     (unsigned long long)m->seq, (unsigned long long)s->next_seq);
            rwkvd_emit_error(srv, s->doc, s->doc_len, true, m->seq, RWKVD_R_SEQ_GAP, msg, true,
                             s->next_seq);
        }
        return;
    }
    if (apply(srv, s, m, &reason, msg, sizeof msg) != 0) {
        refuse(srv, s, m->seq, reason, msg);
        return;
    }
    /* held messages that now follow */
    rwkvd_held h;
    while (!s->eof && take_held(srv, s, &h)) {
        rwkvd_ingest hm;
        rwkv_error err;
        rwkvd_msg_limits lim = {srv->cfg.max_message_size, (size_t)srv->cfg.max_tokens_per_message,
                                (uint32_t)srv->mi->vocab_size};
        /* it decoded once already; decoding again cannot fail but for memory */
        if (rwkvd_ingest_decode(h.bytes, h.len, &lim, &hm, &reason, &err) == 0) {
            if (apply(srv, s, &hm, &reason, msg, sizeof msg) != 0)
                refuse(srv, s, hm.seq, reason, msg);
            rwkvd_ingest_clear(&hm);
        } else {
            refuse(srv, s, h.seq, reason, err.msg);
        }
        free(h.bytes);
    }
}

void rwkvd_handle_ingest(rwkvd_server *srv, const void *buf, size_t len)
{
    rwkvd_msg_limits lim = {srv->cfg.max_message_size, (size_t)srv->cfg.max_tokens_per_message,
                            (uint32_t)srv->mi->vocab_size};
    rwkvd_ingest m;
    rwkvd_reason reason;
    rwkv_error err;
    if (srv->stopping) {
        /* not read while stopping; a message already in hand is refused */
        if (rwkvd_ingest_decode(buf, len, &lim, &m, &reason, &err) == 0) {
            rwkvd_emit_error(srv, m.doc, m.doc_len, true, m.seq, RWKVD_R_SHUTTING_DOWN,
                             "the daemon is stopping; send it again after the restart", false, 0);
            rwkvd_ingest_clear(&m);
        }
        return;
    }
    if (rwkvd_ingest_decode(buf, len, &lim, &m, &reason, &err) != 0) {
        rwkvd_emit_error(srv, m.have_doc ? m.doc : NULL, m.have_doc ? m.doc_len : 0, m.have_seq,
                         m.seq, reason, err.msg, false, 0);
        return;
    }
    rwkvd_session *s;
    if (rwkvd_persist_open(srv, m.doc, m.doc_len, true, &s, &reason, &err) != 0) {
        rwkvd_emit_error(srv, m.doc, m.doc_len, true, m.seq, reason, err.msg, false, 0);
        rwkvd_ingest_clear(&m);
        return;
    }
    deliver(srv, s, &m, buf, len);
    rwkvd_ingest_clear(&m);
    /* a document that only ever held a gapped message (no seq 0 yet) and
     * holds nothing now must not linger */
    if (!s->started && !s->n_held && !s->on_disk) {
        rwkvd_docs_remove(srv, s);
        rwkvd_session_free(s);
    }
}
