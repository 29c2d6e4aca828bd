/* msg_segments.c — the "segments" emit message (contract in
 * core/msg_segments.h, fields in PROTOCOL.md §4.6).
 *
 * Each segment is a map with the keys of the CLI's JSON lines (rwkv eval
 * --out-segments), so one reader serves both.  Figures that do not exist are
 * nil: a segment without scored tokens has no sum/max, one without earlier
 * scored segments no score.  "text" (bin: the first segment_text bytes, raw)
 * comes last, only when the document asked for it.  Field order is fixed (byte-identical
 * re-emission). */
#include "core/msg_segments.h"

#include "core/sha256.h"

static int key(msgpack_packer *pk, const char *k)
{
    return rwkvd_pack_cstr(pk, k);
}

static int kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    return key(pk, k) || msgpack_pack_uint64(pk, v) ? -1 : 0;
}

static int pack_segment(msgpack_packer *pk, const rwkv_segment *g, bool text)
{
    bool scored = g->n_scored > 0;
    if (msgpack_pack_map(pk, text ? 11 : 10) || kv_u64(pk, "seg", g->index) ||
        kv_u64(pk, "byte_start", g->byte_start) || kv_u64(pk, "byte_end", g->byte_end) ||
        kv_u64(pk, "tok_start", g->tok_start) || kv_u64(pk, "tok_end", g->tok_end) ||
        key(pk, "surprisal_sum") ||
        (scored ? msgpack_pack_double(pk, g->surprisal_sum) : msgpack_pack_nil(pk)) ||
        key(pk, "surprisal_max") ||
        (scored ? msgpack_pack_float(pk, g->surprisal_max) : msgpack_pack_nil(pk)) ||
        key(pk, "surprisal_max_pos") ||
        (scored ? msgpack_pack_uint64(pk, g->max_pos) : msgpack_pack_nil(pk)) ||
        key(pk, "score") || (g->has_score ? msgpack_pack_double(pk, g->score) : msgpack_pack_nil(pk)) ||
        key(pk, "anomalous") || (g->anomalous ? msgpack_pack_true(pk) : msgpack_pack_false(pk)))
        return -1;
    if (text && (key(pk, "text") || msgpack_pack_bin(pk, g->text_len) ||
                 (g->text_len && msgpack_pack_bin_body(pk, g->text, g->text_len))))
        return -1;
    return 0;
}

int rwkvd_encode_segments(msgpack_sbuffer *sb, const rwkvd_out_head *h,
                          const rwkvd_segments_out *s, rwkv_error *err)
{
    if (s->n == 0 || !s->segs)
        return rwkv_fail(err, "encoding segments message: no segments");
    if (!h->precision)
        return rwkv_fail(err, "encoding segments message: no precision");
    for (size_t i = 0; i < s->n; i++) {
        const rwkv_segment *g = &s->segs[i];
        if (g->byte_end <= g->byte_start || g->tok_end < g->tok_start ||
            (i > 0 && g->index != s->segs[i - 1].index + 1))
            return rwkv_fail(err, "encoding segments message: segment %zu breaks its contract", i);
    }
    char hex[65];
    rwkvd_sha256_hex(h->model_sha256, hex);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    /* inc (the document's incarnation, PROTOCOL.md §8.4) right after doc,
     * only when above 0, as in block and final outputs */
    bool inc = h->incarnation > 0;
    if (msgpack_pack_map(&pk, 7 + inc) || kv_u64(&pk, "v", RWKVD_PROTOCOL_VERSION_SEGMENTS) ||
        key(&pk, "type") || rwkvd_pack_cstr(&pk, "segments") || key(&pk, "doc") ||
        rwkvd_pack_doc(&pk, h->doc, h->doc_len) || (inc && kv_u64(&pk, "inc", h->incarnation)) ||
        kv_u64(&pk, "block", s->block) ||
        key(&pk, "model") || rwkvd_pack_cstr(&pk, hex) || key(&pk, "precision") ||
        rwkvd_pack_cstr(&pk, h->precision) || key(&pk, "segments") ||
        msgpack_pack_array(&pk, s->n))
        return rwkv_fail(err, "encoding segments message: out of memory");
    for (size_t i = 0; i < s->n; i++)
        if (pack_segment(&pk, &s->segs[i], s->text) != 0)
            return rwkv_fail(err, "encoding segments message: out of memory");
    return 0;
}
