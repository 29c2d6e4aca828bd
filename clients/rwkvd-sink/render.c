/* render.c — output message -> JSON record (see render.h for the layout). */
#include "clients/rwkvd-sink/render.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/rwkvd-sink/keyset.h"
#include "core/msg_decode.h"
#include "core/utf8.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "rwkvd-sink reads little-endian float32 vectors straight from memory; add byte swapping"
#endif

void tbuf_put(tbuf *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < n + 1) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void tbuf_puts(tbuf *b, const char *s) { tbuf_put(b, s, strlen(s)); }

void tbuf_free(tbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void putf(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(tbuf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        tbuf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static bool key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, name, n) == 0;
}

static void put_hex(tbuf *b, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[256];
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        tmp[j++] = digits[p[i] >> 4];
        tmp[j++] = digits[p[i] & 15];
        if (j == sizeof tmp) {
            tbuf_put(b, tmp, j);
            j = 0;
        }
    }
    tbuf_put(b, tmp, j);
}

void render_bytes_as_text(tbuf *b, const uint8_t *p, size_t n)
{
    if (rwkvd_utf8_check(p, n) != n) {
        tbuf_puts(b, "{\"hex\":\"");
        put_hex(b, p, n);
        tbuf_puts(b, "\"}");
        return;
    }
    tbuf_put(b, "\"", 1);
    size_t run = 0; /* bytes that need no escape, copied in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
            continue;
        tbuf_put(b, p + run, i - run);
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            tbuf_put(b, e, 2);
        } else {
            putf(b, "\\u%04x", c);
        }
        run = i + 1;
    }
    tbuf_put(b, p + run, n - run);
    tbuf_put(b, "\"", 1);
}

void render_printable(tbuf *b, const uint8_t *p, size_t n, size_t max)
{
    for (size_t i = 0; i < n && i < max; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f)
            tbuf_put(b, p + i, 1);
        else
            putf(b, "\\x%02x", p[i]);
    }
    if (n > max)
        tbuf_puts(b, "...");
}

static void put_f32s(tbuf *b, const uint8_t *p, size_t n_bytes)
{
    tbuf_put(b, "[", 1);
    for (size_t i = 0; i + 4 <= n_bytes; i += 4) {
        float f;
        memcpy(&f, p + i, 4);
        if (i)
            tbuf_put(b, ",", 1);
        if (f == 0.0f && signbit(f))
            tbuf_put(b, "-0.0", 4); /* "-0" reads back as integer 0 in many parsers */
        else if (isfinite(f))
            putf(b, "%.9g", (double)f);
        else
            tbuf_put(b, "null", 4);
    }
    tbuf_put(b, "]", 1);
}

static void put_u32s(tbuf *b, const uint8_t *p, size_t n_bytes)
{
    tbuf_put(b, "[", 1);
    for (size_t i = 0; i + 4 <= n_bytes; i += 4) {
        uint32_t v;
        memcpy(&v, p + i, 4);
        if (i)
            tbuf_put(b, ",", 1);
        putf(b, "%u", v);
    }
    tbuf_put(b, "]", 1);
}

typedef enum vec_kind { VEC_NONE, VEC_F32, VEC_U32 } vec_kind;

/* Which vector a key holds: top-level embedding/logits_last/surprisal, or
 * ids/logprobs inside the top-level topk map. */
static vec_kind vector_of(const msgpack_object *key, bool in_topk)
{
    if (in_topk)
        return key_is(key, "ids") ? VEC_U32 : key_is(key, "logprobs") ? VEC_F32 : VEC_NONE;
    return key_is(key, "embedding") || key_is(key, "logits_last") || key_is(key, "surprisal")
               ? VEC_F32
               : VEC_NONE;
}

typedef struct raw_ctx {
    const char *stem;       /* NULL: inline */
    render_blob *blobs;
    size_t *n_blobs;
} raw_ctx;

static void put_value(tbuf *b, const msgpack_object *o, bool topk_map, const raw_ctx *raw);

static void put_vector(tbuf *b, const msgpack_object *key, const msgpack_object *o, vec_kind k,
                       bool in_topk, const raw_ctx *raw)
{
    const uint8_t *p = (const uint8_t *)o->via.bin.ptr;
    size_t n = o->via.bin.size;
    if (raw->stem && *raw->n_blobs < RENDER_MAX_BLOBS) {
        render_blob *bl = &raw->blobs[(*raw->n_blobs)++];
        snprintf(bl->name, sizeof bl->name, "%s.%s%.*s.%s", raw->stem, in_topk ? "topk_" : "",
                 (int)key->via.str.size, key->via.str.ptr, k == VEC_U32 ? "u32" : "f32");
        bl->data = p;
        bl->len = n;
        tbuf_puts(b, "{\"file\":");
        render_bytes_as_text(b, (const uint8_t *)bl->name, strlen(bl->name));
        putf(b, ",\"n\":%zu}", n / 4);
        return;
    }
    if (k == VEC_U32)
        put_u32s(b, p, n);
    else
        put_f32s(b, p, n);
}

/* A map's entries (without braces), skipping the keys in skip[]. */
static void put_entries(tbuf *b, const msgpack_object *map, bool is_topk, bool top,
                        const char *const *skip, size_t n_skip, bool first, const raw_ctx *raw)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        const msgpack_object *v = &map->via.map.ptr[i].val;
        bool skipped = false;
        for (size_t s = 0; s < n_skip; s++)
            skipped |= key_is(k, skip[s]);
        if (skipped)
            continue;
        if (!first)
            tbuf_put(b, ",", 1);
        first = false;
        if (k->type == MSGPACK_OBJECT_STR)
            render_bytes_as_text(b, (const uint8_t *)k->via.str.ptr, k->via.str.size);
        else
            tbuf_puts(b, "\"?\""); /* classify refuses these for the top level */
        tbuf_put(b, ":", 1);
        vec_kind vk = (top || is_topk) ? vector_of(k, is_topk) : VEC_NONE;
        if (vk != VEC_NONE && v->type == MSGPACK_OBJECT_BIN)
            put_vector(b, k, v, vk, is_topk, raw);
        else
            put_value(b, v, top && key_is(k, "topk"), raw);
    }
}

static void put_value(tbuf *b, const msgpack_object *o, bool topk_map, const raw_ctx *raw)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        tbuf_puts(b, "null");
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        tbuf_puts(b, o->via.boolean ? "true" : "false");
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        putf(b, "%llu", (unsigned long long)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        putf(b, "%lld", (long long)o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64))
            tbuf_puts(b, "null");
        else if (o->via.f64 == 0.0 && signbit(o->via.f64))
            tbuf_puts(b, "-0.0");
        else if (o->type == MSGPACK_OBJECT_FLOAT32)
            putf(b, "%.9g", o->via.f64);
        else
            putf(b, "%.17g", o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        render_bytes_as_text(b, (const uint8_t *)o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        tbuf_puts(b, "{\"hex\":\"");
        put_hex(b, (const uint8_t *)o->via.bin.ptr, o->via.bin.size);
        tbuf_puts(b, "\"}");
        break;
    case MSGPACK_OBJECT_ARRAY:
        tbuf_put(b, "[", 1);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                tbuf_put(b, ",", 1);
            put_value(b, &o->via.array.ptr[i], false, raw);
        }
        tbuf_put(b, "]", 1);
        break;
    case MSGPACK_OBJECT_MAP:
        tbuf_put(b, "{", 1);
        put_entries(b, o, topk_map, false, NULL, 0, true, raw);
        tbuf_put(b, "}", 1);
        break;
    default: /* ext: refused by the pre-scan */
        tbuf_puts(b, "null");
        break;
    }
}

static bool is_vec_ok(const msgpack_object *v, bool nil_ok)
{
    return (v->type == MSGPACK_OBJECT_BIN && v->via.bin.size % 4 == 0) ||
           (nil_ok && v->type == MSGPACK_OBJECT_NIL);
}

#define TEXT_FIELD(o, field)                                                               \
    do {                                                                                   \
        info->field = (o)->type == MSGPACK_OBJECT_STR ? (o)->via.str.ptr : NULL;           \
        info->field##_len = info->field ? (o)->via.str.size : 0;                           \
    } while (0)

/* Keys anywhere in the message must be what protocol v1 keys are: str of
 * 1..32 bytes, here also printable ASCII — so every JSON reader takes the
 * record (jansson, for one, refuses a NUL in a key).  Depth is bounded by
 * the pre-scan. */
static int check_keys(const msgpack_object *o, rwkv_error *err)
{
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (check_keys(&o->via.array.ptr[i], err) != 0)
                return -1;
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_MAP)
        return 0;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size < 1 ||
            k->via.str.size > RWKVD_KEY_MAX)
            return rwkv_fail(err, "output has a key that is not a str of 1..%d bytes",
                             RWKVD_KEY_MAX);
        for (uint32_t j = 0; j < k->via.str.size; j++)
            if (k->via.str.ptr[j] < 0x20 || k->via.str.ptr[j] > 0x7e)
                return rwkv_fail(err, "output has a key that is not printable ASCII");
        if (check_keys(&o->via.map.ptr[i].val, err) != 0)
            return -1;
    }
    return 0;
}

int render_classify(const msgpack_object *root, out_info *info, rwkv_error *err)
{
    memset(info, 0, sizeof *info);
    if (root->type != MSGPACK_OBJECT_MAP)
        return rwkv_fail(err, "output is not a map");
    if (check_keys(root, err) != 0)
        return -1;
    const msgpack_object *type = NULL;
    bool has_block = false;
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        const msgpack_object *v = &root->via.map.ptr[i].val;
        if (key_is(k, "type")) {
            type = v;
        } else if (key_is(k, "doc")) {
            if (v->type == MSGPACK_OBJECT_STR) {
                info->has_doc = true;
                info->doc = (const uint8_t *)v->via.str.ptr;
                info->doc_len = v->via.str.size;
            } else if (v->type == MSGPACK_OBJECT_BIN) {
                info->has_doc = true;
                info->doc = (const uint8_t *)v->via.bin.ptr;
                info->doc_len = v->via.bin.size;
            } else if (v->type != MSGPACK_OBJECT_NIL) {
                return rwkv_fail(err, "output field \"doc\" is neither str, bin nor nil");
            }
        } else if (key_is(k, "block") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            has_block = true;
            info->block = v->via.u64;
        } else if (key_is(k, "inc")) {
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return rwkv_fail(err, "output field \"inc\" is not a non-negative integer");
            info->inc = v->via.u64;
        } else if (key_is(k, "seq") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            info->has_seq = true;
            info->seq = v->via.u64;
        } else if (key_is(k, "next_seq") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            info->has_next_seq = true;
            info->next_seq = v->via.u64;
        } else if (key_is(k, "expected_seq") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            info->has_expected_seq = true;
            info->expected_seq = v->via.u64;
        } else if (key_is(k, "reason")) {
            TEXT_FIELD(v, reason);
        } else if (key_is(k, "message")) {
            TEXT_FIELD(v, message);
        } else if (key_is(k, "status")) {
            TEXT_FIELD(v, status);
        } else if (vector_of(k, false) != VEC_NONE) {
            if (!is_vec_ok(v, key_is(k, "embedding")))
                return rwkv_fail(err, "output field \"%.*s\" is not a bin of 4-byte values",
                                 (int)k->via.str.size, k->via.str.ptr);
        } else if (key_is(k, "topk")) {
            if (v->type != MSGPACK_OBJECT_MAP)
                return rwkv_fail(err, "output field \"topk\" is not a map");
            for (uint32_t j = 0; j < v->via.map.size; j++) {
                const msgpack_object *tk = &v->via.map.ptr[j].key;
                if (vector_of(tk, true) != VEC_NONE && !is_vec_ok(&v->via.map.ptr[j].val, false))
                    return rwkv_fail(err, "output field \"topk.%.*s\" is not a bin of 4-byte "
                                     "values", (int)tk->via.str.size, tk->via.str.ptr);
            }
        }
    }
    if (!type || type->type != MSGPACK_OBJECT_STR)
        return rwkv_fail(err, "output has no str field \"type\"");
    if (key_is(type, "block"))
        info->type = OUT_BLOCK;
    else if (key_is(type, "final"))
        info->type = OUT_FINAL;
    else if (key_is(type, "error"))
        info->type = OUT_ERROR;
    else if (key_is(type, "ack"))
        info->type = OUT_ACK;
    else if (key_is(type, "segments"))
        info->type = OUT_SEGMENTS;
    else
        info->type = OUT_OTHER;
    if ((info->type == OUT_BLOCK || info->type == OUT_FINAL) &&
        (!info->has_doc || info->doc_len < 1 || info->doc_len > RWKVD_DOC_MAX))
        return rwkv_fail(err, "%s output without a str or bin \"doc\" of 1..%d bytes",
                         info->type == OUT_BLOCK ? "block" : "final", RWKVD_DOC_MAX);
    if (info->type == OUT_BLOCK && !has_block)
        return rwkv_fail(err, "block output without an integer \"block\"");
    if (info->type == OUT_BLOCK && info->block == UINT64_MAX)
        return rwkv_fail(err, "block output with block number 2^64-1");
    if (info->type == OUT_SEGMENTS &&
        (!info->has_doc || info->doc_len < 1 || info->doc_len > RWKVD_DOC_MAX || !has_block ||
         info->block >= KEYSET_SEGMENTS_BIT))
        return rwkv_fail(err, "segments output without a str or bin \"doc\" of 1..%d bytes "
                         "and an integer \"block\" below 2^63", RWKVD_DOC_MAX);
    return 0;
}

void render_record(tbuf *b, const msgpack_object *root, const out_info *info,
                   const char *raw_stem, render_blob *blobs, size_t *n_blobs)
{
    static const char *const skip[] = {"type", "doc", "inc", "block"};
    raw_ctx raw = {.stem = raw_stem, .blobs = blobs, .n_blobs = n_blobs};
    if (n_blobs)
        *n_blobs = 0;
    const msgpack_object *type = NULL;
    for (uint32_t i = 0; i < root->via.map.size; i++)
        if (key_is(&root->via.map.ptr[i].key, "type"))
            type = &root->via.map.ptr[i].val;
    tbuf_puts(b, "{\"type\":");
    render_bytes_as_text(b, (const uint8_t *)type->via.str.ptr, type->via.str.size);
    tbuf_puts(b, ",\"doc\":");
    if (info->has_doc)
        render_bytes_as_text(b, info->doc, info->doc_len);
    else
        tbuf_puts(b, "null");
    /* the key fields first, in a fixed order reload.c reads back: doc, then
     * inc (only when above 0), then block */
    if (info->inc > 0)
        putf(b, ",\"inc\":%llu", (unsigned long long)info->inc);
    size_t n_skip = 3;
    if (info->type == OUT_BLOCK || info->type == OUT_SEGMENTS) {
        putf(b, ",\"block\":%llu", (unsigned long long)info->block);
        n_skip = 4;
    }
    put_entries(b, root, false, true, skip, n_skip, false, &raw);
}
