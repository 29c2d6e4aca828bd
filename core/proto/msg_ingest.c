/* msg_ingest.c — decoding and validation of one ingest message
 * (PROTOCOL.md §3; contract in msg_decode.h).
 *
 * Fields are checked in a fixed order (keys, then v, doc, seq, payload
 * count, eof, opts, payload contents) so the same bad message always gets
 * the same reason.  doc and seq are also picked up leniently before that
 * (rwkvd_ingest_peek), so an error output can still name the document and
 * seq of a message refused for another field.
 */
#include <stdlib.h>
#include <string.h>

#include "core/proto/msg_internal.h"
#include "core/utf8.h"

enum { F_V, F_DOC, F_SEQ, F_TEXT, F_BYTES, F_TOKENS, F_EOF, F_OPTS, F_COUNT };
static const char *const ingest_names[F_COUNT] = {"v",      "doc", "seq",  "text",
                                                  "bytes",  "tokens", "eof", "opts"};

/* O_TASK and after: v 2 only (a v 1 message naming them is refused as
 * unknown_field, as it always was) */
enum { O_OUTPUTS, O_POOLING, O_NORMALIZE, O_TOPK, O_TASK, O_EOS_EVERY, O_SEGMENT, O_QUANTILE,
       O_WARMUP, O_TEXT, O_COUNT };
static const char *const opts_names[O_COUNT] = {
    "outputs", "pooling", "normalize",        "topk",           "task",
    "eos_every", "segment", "anomaly_quantile", "anomaly_warmup", "segment_text"};
static const char *const task_names[3] = {"retrieval", "similarity", "classification"};

/* Offset of the first data byte of the str/bin at off. */
static size_t data_off(const rwkvd_dctx *c, size_t off)
{
    rwkvd_mp_head h;
    return rwkvd_mp_read_head(c->buf, c->len, off, &h) == 0 ? off + h.hdr : off;
}

static int decode_tokens(const rwkvd_dctx *c, const rwkvd_field *f, const rwkvd_msg_limits *lim,
                         rwkvd_ingest *out)
{
    const msgpack_object *o = f->val;
    size_t n;
    if (o->type == MSGPACK_OBJECT_BIN) {
        if (o->via.bin.size % 4)
            return rwkvd_dfail(c, RWKVD_R_BAD_TOKEN, f->val_off,
                               "field \"tokens\": bin of %u bytes is not a multiple of 4",
                               o->via.bin.size);
        n = o->via.bin.size / 4;
    } else if (o->type == MSGPACK_OBJECT_ARRAY) {
        n = o->via.array.size;
    } else {
        return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, f->val_off,
                           "field \"tokens\": must be an array of ids or a bin of uint32 LE");
    }
    if (n > lim->max_tokens)
        return rwkvd_dfail(c, RWKVD_R_TOO_MANY, f->val_off,
                           "field \"tokens\": %zu ids, at most %zu per message", n, lim->max_tokens);
    uint32_t *ids = malloc(n ? n * sizeof *ids : 1);
    if (!ids)
        return rwkvd_dfail(c, RWKVD_R_OVERLOADED, f->val_off, "out of memory for %zu ids", n);
    if (o->type == MSGPACK_OBJECT_BIN) {
        const uint8_t *p = (const uint8_t *)o->via.bin.ptr;
        for (size_t i = 0; i < n; i++) {
            uint32_t id = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                          (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            if (id >= lim->vocab_size) {
                free(ids);
                return rwkvd_dfail(c, RWKVD_R_BAD_TOKEN, data_off(c, f->val_off) + 4 * i,
                                   "field \"tokens\": id %u at index %zu is not below the "
                                   "vocabulary size %u", id, i, lim->vocab_size);
            }
            ids[i] = id;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            const msgpack_object *e = &o->via.array.ptr[i];
            if (e->type != MSGPACK_OBJECT_POSITIVE_INTEGER || e->via.u64 >= lim->vocab_size) {
                size_t at = f->val_off;
                rwkvd_mp_child(c->buf, c->len, f->val_off, i, &at);
                free(ids);
                if (e->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
                    e->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
                    return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, at,
                                       "field \"tokens\": element %zu is not an integer", i);
                return rwkvd_dfail(c, RWKVD_R_BAD_TOKEN, at,
                                   "field \"tokens\": id %lld at index %zu is not in 0..%u",
                                   e->type == MSGPACK_OBJECT_NEGATIVE_INTEGER
                                       ? (long long)e->via.i64
                                       : (long long)(e->via.u64 > INT64_MAX ? INT64_MAX : e->via.u64),
                                   i, lim->vocab_size - 1);
            }
            ids[i] = (uint32_t)e->via.u64;
        }
    }
    out->kind = RWKVD_PAYLOAD_TOKENS;
    out->tokens = ids;
    out->n_tokens = n;
    return 0;
}

static int decode_payload(const rwkvd_dctx *c, const rwkvd_field *fs, const rwkvd_msg_limits *lim,
                          rwkvd_ingest *out)
{
    const rwkvd_field *text = &fs[F_TEXT], *bytes = &fs[F_BYTES];
    if (text->val) {
        const msgpack_object *o = text->val;
        if (o->type != MSGPACK_OBJECT_STR)
            return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, text->val_off,
                               "field \"text\": must be str (use \"bytes\" for bin)");
        const uint8_t *p = (const uint8_t *)o->via.str.ptr;
        size_t bad = rwkvd_utf8_check(p, o->via.str.size);
        if (bad != o->via.str.size)
            return rwkvd_dfail(c, RWKVD_R_BAD_UTF8, data_off(c, text->val_off) + bad,
                               "field \"text\": invalid UTF-8 at byte %zu of the text", bad);
        out->kind = RWKVD_PAYLOAD_TEXT;
        out->data = p;
        out->data_len = o->via.str.size;
        return 0;
    }
    if (bytes->val) {
        const msgpack_object *o = bytes->val;
        if (o->type != MSGPACK_OBJECT_BIN)
            return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, bytes->val_off,
                               "field \"bytes\": must be bin (use \"text\" for str)");
        out->kind = RWKVD_PAYLOAD_BYTES;
        out->data = (const uint8_t *)o->via.bin.ptr;
        out->data_len = o->via.bin.size;
        return 0;
    }
    if (fs[F_TOKENS].val)
        return decode_tokens(c, &fs[F_TOKENS], lim, out);
    out->kind = RWKVD_PAYLOAD_NONE;
    return 0;
}

static int decode_outputs(const rwkvd_dctx *c, const rwkvd_field *f, uint32_t *outputs)
{
    const msgpack_object *o = f->val;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, f->val_off, "opts.outputs: must be an array of str");
    uint32_t bits = 0;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        size_t at = f->val_off;
        uint32_t bit = 0;
        for (unsigned b = 0; b < 4 && !bit; b++)
            if (rwkvd_dstr_eq(e, rwkvd_output_name(1u << b)))
                bit = 1u << b;
        if (!bit || (bits & bit)) {
            rwkvd_mp_child(c->buf, c->len, f->val_off, i, &at);
            if (e->type != MSGPACK_OBJECT_STR)
                return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, at, "opts.outputs[%u]: must be str", i);
            return rwkvd_dfail(c, RWKVD_R_BAD_OPTS, at,
                               bit ? "opts.outputs[%u]: named twice"
                                   : "opts.outputs[%u]: not one of embedding, logits_last, topk, surprisal",
                               i);
        }
        bits |= bit;
    }
    *outputs = bits;
    return 0;
}

/* opts.segment ("line" or {"delimiter": str/bin of 1..16 bytes}),
 * opts.anomaly_quantile (float in (0, 1)), opts.anomaly_warmup (uint),
 * opts.segment_text (0..256); the last three only with segment. */
static int decode_segment_opts(const rwkvd_dctx *c, const rwkvd_field *of, rwkvd_doc_opts *opts)
{
    const rwkvd_field *f = &of[O_SEGMENT];
    if (!f->val) {
        for (int i = O_QUANTILE; i <= O_TEXT; i++)
            if (of[i].val)
                return rwkvd_dfail(c, RWKVD_R_BAD_OPTS, of[i].key_off,
                                   "opts.%s: only with opts.segment", opts_names[i]);
        return 0;
    }
    rwkv_seg_config_lines(&opts->seg);
    if (f->val->type == MSGPACK_OBJECT_STR) {
        if (!rwkvd_dstr_eq(f->val, "line"))
            return rwkvd_dfail(c, RWKVD_R_BAD_OPTS, f->val_off,
                               "opts.segment: must be \"line\" or {\"delimiter\": bytes}");
    } else if (f->val->type == MSGPACK_OBJECT_MAP) {
        static const char *const names[1] = {"delimiter"};
        rwkvd_field d;
        if (rwkvd_dfields(c, f->val, f->val_off, names, 1, &d, "opts.segment") != 0)
            return -1;
        if (!d.val)
            return rwkvd_dfail(c, RWKVD_R_MISSING_FIELD, f->val_off,
                               "opts.segment: a map must hold \"delimiter\"");
        if (d.val->type != MSGPACK_OBJECT_STR && d.val->type != MSGPACK_OBJECT_BIN)
            return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, d.val_off,
                               "opts.segment.delimiter: must be str or bin");
        const char *p = d.val->type == MSGPACK_OBJECT_STR ? d.val->via.str.ptr : d.val->via.bin.ptr;
        size_t n = d.val->type == MSGPACK_OBJECT_STR ? d.val->via.str.size : d.val->via.bin.size;
        if (n < 1 || n > RWKV_SEG_DELIM_MAX)
            return rwkvd_dfail(c, RWKVD_R_BAD_OPTS, d.val_off,
                               "opts.segment.delimiter: %zu bytes, must be 1..%d", n,
                               RWKV_SEG_DELIM_MAX);
        memset(opts->seg.delim, 0, sizeof opts->seg.delim);
        memcpy(opts->seg.delim, p, n);
        opts->seg.delim_len = (uint8_t)n;
    } else {
        return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, f->val_off,
                           "opts.segment: must be \"line\" or a map");
    }
    if (of[O_QUANTILE].val) {
        const msgpack_object *q = of[O_QUANTILE].val;
        if (q->type != MSGPACK_OBJECT_FLOAT32 && q->type != MSGPACK_OBJECT_FLOAT64)
            return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, of[O_QUANTILE].val_off,
                               "opts.anomaly_quantile: must be a float");
        if (!(q->via.f64 > 0 && q->via.f64 < 1))
            return rwkvd_dfail(c, RWKVD_R_BAD_OPTS, of[O_QUANTILE].val_off,
                               "opts.anomaly_quantile: must be in (0, 1)");
        opts->seg.anomaly_quantile = q->via.f64;
    }
    if (of[O_WARMUP].val) {
        uint64_t w;
        if (rwkvd_duint(c, &of[O_WARMUP], "opts.anomaly_warmup", UINT64_MAX, RWKVD_R_BAD_OPTS,
                        &w) != 0)
            return -1;
        opts->seg.warmup = w;
    }
    if (of[O_TEXT].val) {
        uint64_t n;
        if (rwkvd_duint(c, &of[O_TEXT], "opts.segment_text", RWKV_SEG_TEXT_MAX, RWKVD_R_BAD_OPTS,
                        &n) != 0)
            return -1;
        opts->seg.text_cap = (uint16_t)n;
    }
    opts->segment = true;
    return 0;
}

static int decode_opts(const rwkvd_dctx *c, const rwkvd_field *f, uint64_t v,
                       rwkvd_doc_opts *opts)
{
    if (f->val->type != MSGPACK_OBJECT_MAP)
        return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, f->val_off, "field \"opts\": must be a map");
    rwkvd_field of[O_COUNT];
    memset(of, 0, sizeof of);
    if (rwkvd_dfields(c, f->val, f->val_off, opts_names, v >= 2 ? O_COUNT : O_TASK, of,
                      "opts") != 0)
        return -1;
    if (of[O_OUTPUTS].val && decode_outputs(c, &of[O_OUTPUTS], &opts->outputs) != 0)
        return -1;
    opts->outputs_given = of[O_OUTPUTS].val != NULL;
    if (of[O_TASK].val) {
        const rwkvd_field *t = &of[O_TASK];
        if (t->val->type != MSGPACK_OBJECT_STR)
            return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, t->val_off, "opts.task: must be str");
        int k = 0;
        while (k < 3 && !rwkvd_dstr_eq(t->val, task_names[k]))
            k++;
        if (k == 3)
            return rwkvd_dfail(c, RWKVD_R_BAD_OPTS, t->val_off,
                               "opts.task: must be \"retrieval\", \"similarity\" or "
                               "\"classification\"");
        opts->has_task = true;
        opts->task = (uint8_t)k;
    }
    if (of[O_EOS_EVERY].val) {
        uint64_t k;
        if (rwkvd_duint(c, &of[O_EOS_EVERY], "opts.eos_every", RWKVD_EOS_EVERY_MAX,
                        RWKVD_R_BAD_OPTS, &k) != 0)
            return -1;
        if (k == 0)
            return rwkvd_dfail(c, RWKVD_R_BAD_OPTS, of[O_EOS_EVERY].val_off,
                               "opts.eos_every: must be 1..%u", (unsigned)RWKVD_EOS_EVERY_MAX);
        opts->eos_every = (uint32_t)k;
    }
    if (of[O_POOLING].val) {
        const rwkvd_field *p = &of[O_POOLING];
        if (p->val->type != MSGPACK_OBJECT_STR)
            return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, p->val_off, "opts.pooling: must be str");
        if (rwkvd_dstr_eq(p->val, "last"))
            opts->pooling = RWKVD_POOL_LAST;
        else if (rwkvd_dstr_eq(p->val, "mean"))
            opts->pooling = RWKVD_POOL_MEAN;
        else
            return rwkvd_dfail(c, RWKVD_R_BAD_OPTS, p->val_off,
                               "opts.pooling: must be \"last\" or \"mean\"");
    }
    if (of[O_NORMALIZE].val) {
        if (of[O_NORMALIZE].val->type != MSGPACK_OBJECT_BOOLEAN)
            return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, of[O_NORMALIZE].val_off,
                               "opts.normalize: must be true or false");
        opts->normalize = of[O_NORMALIZE].val->via.boolean;
    }
    if (of[O_TOPK].val) {
        uint64_t k;
        if (rwkvd_duint(c, &of[O_TOPK], "opts.topk", RWKVD_TOPK_MAX, RWKVD_R_BAD_OPTS, &k) != 0)
            return -1;
        if (k == 0)
            return rwkvd_dfail(c, RWKVD_R_BAD_OPTS, of[O_TOPK].val_off, "opts.topk: must be 1..%d",
                               RWKVD_TOPK_MAX);
        opts->topk = (uint32_t)k;
    }
    return decode_segment_opts(c, of, opts);
}

static int decode(const rwkvd_dctx *c, const rwkvd_msg_limits *lim, msgpack_unpacked *u,
                  rwkvd_ingest *out)
{
    if (!lim || lim->vocab_size == 0)
        return rwkvd_dfail(c, RWKVD_R_ENGINE, 0, "decoder called without limits");
    rwkvd_mp_limits ml = {
        .max_depth = RWKVD_MSG_DEPTH,
        .max_items = lim->max_tokens > SIZE_MAX - 64 ? SIZE_MAX : lim->max_tokens + 64,
        .max_map = RWKVD_MSG_MAP_MAX,
        .max_array = lim->max_tokens > RWKVD_MSG_MAP_MAX ? lim->max_tokens : RWKVD_MSG_MAP_MAX,
    };
    int rc = rwkvd_dunpack(c, lim->max_msg_bytes, &ml, u);
    /* doc and seq for an error output, whatever else is wrong with the
     * message (one over the size limit is refused unread) */
    if (rc == 0 || *c->reason != RWKVD_R_TOO_LARGE)
        rwkvd_ingest_peek(c->buf, c->len, out);
    if (rc != 0)
        return -1;
    const msgpack_object *m = &u->data;
    rwkvd_field fs[F_COUNT];
    if (rwkvd_dfields(c, m, 0, ingest_names, F_COUNT, fs, "") != 0)
        return -1;
    for (int i = F_V; i <= F_SEQ; i++)
        if (!fs[i].val)
            return rwkvd_dfail(c, RWKVD_R_MISSING_FIELD, 0, "field \"%s\" is required",
                               ingest_names[i]);
    uint64_t v;
    if (rwkvd_duint(c, &fs[F_V], "v", UINT64_MAX, RWKVD_R_BAD_VERSION, &v) != 0)
        return -1;
    if (v < RWKVD_PROTOCOL_VERSION || v > RWKVD_PROTOCOL_VERSION_MAX)
        return rwkvd_dfail(c, RWKVD_R_BAD_VERSION, fs[F_V].val_off,
                           "protocol version %llu is not supported (this daemon speaks %d..%d)",
                           (unsigned long long)v, RWKVD_PROTOCOL_VERSION,
                           RWKVD_PROTOCOL_VERSION_MAX);
    out->v = (uint32_t)v;
    if (rwkvd_ddoc(c, &fs[F_DOC], out->doc, &out->doc_len) != 0)
        return -1;
    if (rwkvd_duint(c, &fs[F_SEQ], "seq", RWKVD_SEQ_MAX, RWKVD_R_BAD_SEQ, &out->seq) != 0)
        return -1;
    const rwkvd_field *second = NULL;
    int payloads = 0;
    for (int i = F_TEXT; i <= F_TOKENS; i++)
        if (fs[i].val && ++payloads == 2)
            second = &fs[i];
    if (second)
        return rwkvd_dfail(c, RWKVD_R_PAYLOAD_CONFLICT, second->key_off,
                           "more than one of \"text\", \"bytes\", \"tokens\"");
    if (fs[F_EOF].val) {
        if (fs[F_EOF].val->type != MSGPACK_OBJECT_BOOLEAN)
            return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, fs[F_EOF].val_off,
                               "field \"eof\": must be true or false");
        out->eof = fs[F_EOF].val->via.boolean;
    }
    if (payloads == 0 && !out->eof)
        return rwkvd_dfail(c, RWKVD_R_NO_PAYLOAD, 0,
                           "one of \"text\", \"bytes\", \"tokens\" is required unless eof is true");
    if (fs[F_OPTS].val && out->seq != 0)
        return rwkvd_dfail(c, RWKVD_R_OPTS_NOT_FIRST, fs[F_OPTS].key_off,
                           "field \"opts\": only allowed with seq 0 (this is seq %llu)",
                           (unsigned long long)out->seq);
    if (fs[F_OPTS].val) {
        if (decode_opts(c, &fs[F_OPTS], v, &out->opts) != 0)
            return -1;
        out->has_opts = true;
    }
    return decode_payload(c, fs, lim, out);
}

int rwkvd_ingest_decode(const void *buf, size_t len, const rwkvd_msg_limits *lim,
                        rwkvd_ingest *out, rwkvd_reason *reason, rwkv_error *err)
{
    rwkvd_reason dummy;
    if (!reason)
        reason = &dummy;
    *reason = RWKVD_OK;
    memset(out, 0, sizeof *out);
    rwkvd_doc_opts_default(&out->opts);
    rwkvd_dctx c = {buf, len, "ingest message", reason, err};
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int rc = decode(&c, lim, &u, out);
    msgpack_unpacked_destroy(&u);
    if (rc != 0) {
        free(out->tokens);
        out->tokens = NULL;
        out->n_tokens = 0;
        out->data = NULL;
        out->data_len = 0;
        out->kind = RWKVD_PAYLOAD_NONE;
        return -1;
    }
    return 0;
}

void rwkvd_ingest_clear(rwkvd_ingest *m)
{
    if (!m)
        return;
    free(m->tokens);
    m->tokens = NULL;
    m->n_tokens = 0;
    m->data = NULL;
    m->data_len = 0;
    m->kind = RWKVD_PAYLOAD_NONE;
}
