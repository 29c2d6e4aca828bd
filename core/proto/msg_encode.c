/* msg_encode.c — the emit messages: block, final, error, ack
 * (PROTOCOL.md §4; contract in msg_encode.h), and the packing helpers.
 *
 * Field order is the order written here and is part of the byte-identical
 * re-emission promise: do not reorder without bumping the protocol version.
 */
#include "core/msg_encode.h"

#include <string.h>

#include "core/sha256.h"
#include "core/utf8.h"

#define P(x)                                                                                  \
    do {                                                                                      \
        if ((x) != 0)                                                                         \
            goto nomem;                                                                       \
    } while (0)

int rwkvd_pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    if (msgpack_pack_str(pk, n) != 0)
        return -1;
    return msgpack_pack_str_body(pk, s, n);
}

int rwkvd_pack_doc(msgpack_packer *pk, const uint8_t *doc, size_t doc_len)
{
    if (rwkvd_utf8_check(doc, doc_len) == doc_len) {
        if (msgpack_pack_str(pk, doc_len) != 0)
            return -1;
        return msgpack_pack_str_body(pk, doc, doc_len);
    }
    if (msgpack_pack_bin(pk, doc_len) != 0)
        return -1;
    return msgpack_pack_bin_body(pk, doc, doc_len);
}

/* 4-byte little-endian words from any host; src holds n words of 4 bytes. */
static int pack_le32(msgpack_packer *pk, const void *src, size_t n)
{
    if (msgpack_pack_bin(pk, n * 4) != 0)
        return -1;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return n ? msgpack_pack_bin_body(pk, src, n * 4) : 0;
#else
    const uint8_t *s = src;
    uint8_t tmp[1024];
    while (n) {
        size_t m = n < 256 ? n : 256;
        for (size_t i = 0; i < m; i++) {
            uint32_t w;
            memcpy(&w, s + 4 * i, 4);
            tmp[4 * i] = (uint8_t)w, tmp[4 * i + 1] = (uint8_t)(w >> 8);
            tmp[4 * i + 2] = (uint8_t)(w >> 16), tmp[4 * i + 3] = (uint8_t)(w >> 24);
        }
        if (msgpack_pack_bin_body(pk, tmp, m * 4) != 0)
            return -1;
        s += 4 * m, n -= m;
    }
    return 0;
#endif
}

int rwkvd_pack_f32(msgpack_packer *pk, const float *v, size_t n) { return pack_le32(pk, v, n); }
int rwkvd_pack_u32(msgpack_packer *pk, const uint32_t *v, size_t n) { return pack_le32(pk, v, n); }

static int kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    return rwkvd_pack_cstr(pk, k) || rwkvd_pack_cstr(pk, v) ? -1 : 0;
}

static int kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    return rwkvd_pack_cstr(pk, k) || msgpack_pack_uint64(pk, v) ? -1 : 0;
}

/* v, type, doc: the first three fields of every emit message. */
static int head3v(msgpack_packer *pk, uint32_t v, size_t n_fields, const char *type,
                  const uint8_t *doc, size_t doc_len)
{
    if (msgpack_pack_map(pk, n_fields) || kv_u64(pk, "v", v ? v : RWKVD_PROTOCOL_VERSION) ||
        kv_str(pk, "type", type) || rwkvd_pack_cstr(pk, "doc"))
        return -1;
    return doc ? rwkvd_pack_doc(pk, doc, doc_len) : msgpack_pack_nil(pk);
}

static int head3(msgpack_packer *pk, size_t n_fields, const char *type, const uint8_t *doc,
                 size_t doc_len)
{
    return head3v(pk, RWKVD_PROTOCOL_VERSION, n_fields, type, doc, doc_len);
}

/* model, dim, pooling, normalize, precision (PROTOCOL.md §4.1) */
static int model5(msgpack_packer *pk, const rwkvd_out_head *h)
{
    char hex[65];
    rwkvd_sha256_hex(h->model_sha256, hex);
    if (kv_str(pk, "model", hex) || kv_u64(pk, "dim", h->dim) ||
        kv_str(pk, "pooling", rwkvd_pooling_name(h->pooling)) ||
        rwkvd_pack_cstr(pk, "normalize") ||
        (h->normalize ? msgpack_pack_true(pk) : msgpack_pack_false(pk)))
        return -1;
    return kv_str(pk, "precision", h->precision);
}

static int nomem_fail(rwkv_error *err, const char *what)
{
    return rwkv_fail(err, "encoding %s message: out of memory", what);
}

int rwkvd_encode_block(msgpack_sbuffer *sb, const rwkvd_out_head *h, const rwkvd_block_out *b,
                       rwkv_error *err)
{
    uint32_t o = b->outputs;
    if (o & ~(uint32_t)RWKVD_OUT_ALL || b->tok_end <= b->tok_start || h->dim == 0 ||
        !h->precision ||
        ((o & RWKVD_OUT_EMBEDDING) && !b->embedding) ||
        ((o & RWKVD_OUT_LOGITS_LAST) && (!b->logits_last || b->vocab == 0)) ||
        ((o & RWKVD_OUT_TOPK) && (!b->topk_ids || !b->topk_logprobs || b->k == 0)) ||
        ((o & RWKVD_OUT_SURPRISAL) && !b->surprisal))
        return rwkv_fail(err, "encoding block message: the block struct breaks its contract");
    size_t n_tok = (size_t)(b->tok_end - b->tok_start);
    size_t n = 11 + __builtin_popcount(o) + (h->incarnation > 0);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    P(head3v(&pk, h->v, n, "block", h->doc, h->doc_len));
    if (h->incarnation > 0)
        P(kv_u64(&pk, "inc", h->incarnation));
    P(kv_u64(&pk, "block", b->block));
    P(kv_u64(&pk, "tok_start", b->tok_start));
    P(kv_u64(&pk, "tok_end", b->tok_end));
    P(model5(&pk, h));
    if (o & RWKVD_OUT_EMBEDDING) {
        P(rwkvd_pack_cstr(&pk, "embedding"));
        P(rwkvd_pack_f32(&pk, b->embedding, h->dim));
    }
    if (o & RWKVD_OUT_LOGITS_LAST) {
        P(rwkvd_pack_cstr(&pk, "logits_last"));
        P(rwkvd_pack_f32(&pk, b->logits_last, b->vocab));
    }
    if (o & RWKVD_OUT_TOPK) {
        P(rwkvd_pack_cstr(&pk, "topk"));
        P(msgpack_pack_map(&pk, 3));
        P(kv_u64(&pk, "k", b->k));
        P(rwkvd_pack_cstr(&pk, "ids"));
        P(rwkvd_pack_u32(&pk, b->topk_ids, n_tok * b->k));
        P(rwkvd_pack_cstr(&pk, "logprobs"));
        P(rwkvd_pack_f32(&pk, b->topk_logprobs, n_tok * b->k));
    }
    if (o & RWKVD_OUT_SURPRISAL) {
        P(rwkvd_pack_cstr(&pk, "surprisal"));
        P(rwkvd_pack_f32(&pk, b->surprisal, n_tok));
    }
    return 0;
nomem:
    return nomem_fail(err, "block");
}

int rwkvd_encode_final(msgpack_sbuffer *sb, const rwkvd_out_head *h, const rwkvd_final_out *f,
                       rwkv_error *err)
{
    if (f->outputs & ~(uint32_t)RWKVD_OUT_ALL || h->dim == 0 || !h->precision ||
        ((f->outputs & RWKVD_OUT_EMBEDDING) && !f->embedding && f->tokens > 0 &&
         !f->embedding_error) ||
        (f->embedding_error && (h->v < 2 || f->embedding)))
        return rwkv_fail(err, "encoding final message: the final struct breaks its contract");
    bool emb = f->outputs & RWKVD_OUT_EMBEDDING, sur = f->outputs & RWKVD_OUT_SURPRISAL;
    bool why = f->embedding_error != NULL;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    P(head3v(&pk, h->v, 10 + emb + why + sur + (h->incarnation > 0), "final", h->doc,
             h->doc_len));
    if (h->incarnation > 0)
        P(kv_u64(&pk, "inc", h->incarnation));
    P(kv_u64(&pk, "tokens", f->tokens));
    P(kv_u64(&pk, "blocks", f->blocks));
    P(model5(&pk, h));
    if (emb) {
        P(rwkvd_pack_cstr(&pk, "embedding"));
        P(f->embedding ? rwkvd_pack_f32(&pk, f->embedding, h->dim) : msgpack_pack_nil(&pk));
    }
    if (why)
        P(kv_str(&pk, "embedding_error", f->embedding_error));
    if (sur) {
        P(rwkvd_pack_cstr(&pk, "mean_surprisal"));
        P(f->has_mean_surprisal ? msgpack_pack_double(&pk, f->mean_surprisal) : msgpack_pack_nil(&pk));
    }
    return 0;
nomem:
    return nomem_fail(err, "final");
}

/* A message line as str of printable ASCII (control bytes become '?'). */
static int pack_line(msgpack_packer *pk, const char *s)
{
    char tmp[RWKV_ERROR_MAX];
    size_t n = 0;
    for (; s && s[n] && n < sizeof tmp - 1; n++)
        tmp[n] = (s[n] >= 0x20 && s[n] < 0x7f) ? s[n] : '?';
    if (msgpack_pack_str(pk, n) != 0)
        return -1;
    return msgpack_pack_str_body(pk, tmp, n);
}

int rwkvd_encode_error(msgpack_sbuffer *sb, const rwkvd_error_out *e, rwkv_error *err)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    P(head3(&pk, 6 + e->have_expected_seq, "error", e->doc, e->doc_len));
    P(rwkvd_pack_cstr(&pk, "seq"));
    P(e->have_seq ? msgpack_pack_uint64(&pk, e->seq) : msgpack_pack_nil(&pk));
    P(kv_str(&pk, "reason", rwkvd_reason_name(e->reason)));
    P(rwkvd_pack_cstr(&pk, "message"));
    P(pack_line(&pk, e->message));
    if (e->have_expected_seq)
        P(kv_u64(&pk, "expected_seq", e->expected_seq));
    return 0;
nomem:
    return nomem_fail(err, "error");
}

int rwkvd_encode_ack(msgpack_sbuffer *sb, const uint8_t *doc, size_t doc_len, uint64_t seq,
                     uint64_t next_seq, rwkv_error *err)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    P(head3(&pk, 6, "ack", doc, doc_len));
    P(kv_u64(&pk, "seq", seq));
    P(kv_u64(&pk, "next_seq", next_seq));
    P(kv_str(&pk, "status", "duplicate"));
    return 0;
nomem:
    return nomem_fail(err, "ack");
}
