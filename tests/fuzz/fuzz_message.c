/* fuzz_message.c — libFuzzer target for the daemon's message decoders
 * (core/msg_decode.h): every input goes through the ingest decoder (two
 * limit settings) and the control decoder.  Whatever is accepted is checked
 * against the contract (ids below vocab, borrowed bytes inside the input,
 * opts in range) and encoded back into an error/ack/reply, so the encoders'
 * handling of odd doc ids is fuzzed too.
 *
 * Seeds in tests/fuzz/corpus/message/ were written with python3-msgpack:
 * one valid message of each kind, control requests, and a few hostile
 * ones (huge claims, deep nesting, ext types).
 */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/msg_decode.h"
#include "core/msg_encode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ingest(const uint8_t *data, size_t size, const rwkvd_msg_limits *lim)
{
    rwkvd_ingest m;
    rwkvd_reason why;
    rwkv_error err;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (rwkvd_ingest_decode(data, size, lim, &m, &why, &err) == 0) {
        if (why != RWKVD_OK || !m.have_doc || !m.have_seq || m.doc_len < 1 ||
            m.doc_len > RWKVD_DOC_MAX || m.seq > RWKVD_SEQ_MAX)
            abort();
        if (m.kind == RWKVD_PAYLOAD_TEXT || m.kind == RWKVD_PAYLOAD_BYTES) {
            if (m.data < data || m.data + m.data_len > data + size)
                abort();
        }
        if (m.kind == RWKVD_PAYLOAD_TOKENS) {
            if (m.n_tokens > lim->max_tokens)
                abort();
            for (size_t i = 0; i < m.n_tokens; i++)
                if (m.tokens[i] >= lim->vocab_size)
                    abort();
        }
        if (m.kind == RWKVD_PAYLOAD_NONE && !m.eof)
            abort();
        if (rwkvd_doc_opts_check(&m.opts, &err) != 0)
            abort();
        /* the raw peek (used for refused messages) must read an accepted
         * message exactly as the decoder did */
        rwkvd_ingest pk;
        memset(&pk, 0, sizeof pk);
        rwkvd_ingest_peek(data, size, &pk);
        if (!pk.have_doc || !pk.have_seq || pk.doc_len != m.doc_len ||
            memcmp(pk.doc, m.doc, m.doc_len) != 0 || pk.seq != m.seq)
            abort();
        if (rwkvd_encode_ack(&sb, m.doc, m.doc_len, m.seq, m.seq + 1, &err) != 0)
            abort();
        rwkvd_ingest_clear(&m);
    } else {
        if (why == RWKVD_OK || why >= RWKVD_REASON_COUNT || !err.msg[0] || m.tokens ||
            (m.have_doc && (m.doc_len < 1 || m.doc_len > RWKVD_DOC_MAX)) ||
            (m.have_seq && m.seq > RWKVD_SEQ_MAX))
            abort();
        rwkvd_error_out e = {.doc = m.have_doc ? m.doc : NULL, .doc_len = m.doc_len,
                             .have_seq = m.have_seq, .seq = m.seq, .reason = why,
                             .message = err.msg};
        if (rwkvd_encode_error(&sb, &e, &err) != 0)
            abort();
    }
    msgpack_sbuffer_destroy(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rwkvd_msg_limits roomy = {.max_msg_bytes = 1 << 20, .max_tokens = 1 << 16, .vocab_size = 65536};
    rwkvd_msg_limits tight = {.max_msg_bytes = 4096, .max_tokens = 8, .vocab_size = 256};
    check_ingest(data, size, &roomy);
    check_ingest(data, size, &tight);

    rwkvd_ctl_request req;
    rwkvd_reason why;
    rwkv_error err;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (rwkvd_ctl_decode(data, size, &req, &why, &err) == 0) {
        if (!req.have_cmd || req.cmd >= RWKVD_CMD_COUNT)
            abort();
        if ((req.cmd == RWKVD_CMD_RESUME || req.cmd == RWKVD_CMD_DROP) && !req.has_doc)
            abort();
        if (rwkvd_reply_drop(&sb, &req, true, &err) != 0)
            abort();
    } else {
        if (why == RWKVD_OK || req.has_doc)
            abort();
        if (rwkvd_reply_error(&sb, &req, why, err.msg, &err) != 0)
            abort();
    }
    msgpack_sbuffer_destroy(&sb);
    return 0;
}
