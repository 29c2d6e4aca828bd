/* msg_common.c — checks shared by the ingest and control decoders:
 * unpacking behind the pre-scan, key matching, doc ids, integers
 * (see msg_internal.h), and the option names of PROTOCOL.md §3.
 */
#include "core/proto/msg_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/quote.h"

int rwkvd_dfail(const rwkvd_dctx *c, rwkvd_reason r, size_t off, const char *fmt, ...)
{
    char what[RWKV_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    *c->reason = r;
    return rwkv_fail(c->err, "%s: offset %zu: %s", c->label, off, what);
}

int rwkvd_dunpack(const rwkvd_dctx *c, size_t max_bytes, const rwkvd_mp_limits *lim,
                  msgpack_unpacked *u)
{
    if (c->len > max_bytes)
        return rwkvd_dfail(c, RWKVD_R_TOO_LARGE, 0, "%zu bytes, at most %zu allowed", c->len,
                           max_bytes);
    size_t off = 0;
    rwkv_error e;
    if (rwkvd_mp_scan(c->buf, c->len, lim, c->reason, &off, &e) != 0) {
        *c->err = e;
        return rwkv_fail_prefix(c->err, "%s", c->label);
    }
    size_t used = 0;
    msgpack_unpack_return rc = msgpack_unpack_next(u, (const char *)c->buf, c->len, &used);
    if (rc == MSGPACK_UNPACK_NOMEM_ERROR)
        return rwkvd_dfail(c, RWKVD_R_OVERLOADED, 0, "out of memory while unpacking");
    if (rc != MSGPACK_UNPACK_SUCCESS || used != c->len) /* the scan should make this impossible */
        return rwkvd_dfail(c, RWKVD_R_MALFORMED, used, "msgpack-c refused the message");
    if (u->data.type != MSGPACK_OBJECT_MAP)
        return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, 0, "the message must be a msgpack map");
    return 0;
}

int rwkvd_dfields(const rwkvd_dctx *c, const msgpack_object *m, size_t off,
                  const char *const *names, size_t n, rwkvd_field *found, const char *where)
{
    const char *in = where[0] ? " in " : "";
    for (size_t i = 0; i < n; i++)
        found[i].val = NULL;
    rwkvd_mp_head h;
    if (rwkvd_mp_read_head(c->buf, c->len, off, &h) != 0 || h.kind != RWKVD_MP_MAP ||
        h.n != m->via.map.size)
        return rwkvd_dfail(c, RWKVD_R_MALFORMED, off, "map does not match its bytes");
    size_t at = off + h.hdr;
    for (uint32_t k = 0; k < m->via.map.size; k++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[k];
        size_t key_off = at, val_off;
        if (rwkvd_mp_skip(c->buf, c->len, key_off, &val_off) != 0 ||
            rwkvd_mp_skip(c->buf, c->len, val_off, &at) != 0)
            return rwkvd_dfail(c, RWKVD_R_MALFORMED, key_off, "map entry cut short");
        if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size == 0 ||
            kv->key.via.str.size > RWKVD_KEY_MAX)
            return rwkvd_dfail(c, RWKVD_R_BAD_KEY, key_off,
                               "map key%s%s is not a str of 1..%d bytes", in, where, RWKVD_KEY_MAX);
        size_t i;
        for (i = 0; i < n; i++)
            if (rwkvd_dstr_eq(&kv->key, names[i]))
                break;
        rwkv_quoted q;
        if (i == n)
            return rwkvd_dfail(c, RWKVD_R_UNKNOWN_FIELD, key_off, "unknown field \"%s\"%s%s",
                               rwkv_quote(&q, kv->key.via.str.ptr, kv->key.via.str.size), in, where);
        if (found[i].val)
            return rwkvd_dfail(c, RWKVD_R_BAD_KEY, key_off, "field \"%s\"%s%s appears twice",
                               names[i], in, where);
        found[i].val = &kv->val;
        found[i].key_off = key_off;
        found[i].val_off = val_off;
    }
    return 0;
}

int rwkvd_ddoc(const rwkvd_dctx *c, const rwkvd_field *f, uint8_t *doc, size_t *doc_len)
{
    const msgpack_object *o = f->val;
    if (o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN)
        return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, f->val_off, "field \"doc\": must be str or bin");
    /* str and bin share the layout {size, ptr} in msgpack-c */
    uint32_t n = o->type == MSGPACK_OBJECT_STR ? o->via.str.size : o->via.bin.size;
    const char *p = o->type == MSGPACK_OBJECT_STR ? o->via.str.ptr : o->via.bin.ptr;
    if (n == 0 || n > RWKVD_DOC_MAX)
        return rwkvd_dfail(c, RWKVD_R_BAD_DOC, f->val_off,
                           "field \"doc\": %u bytes, must be 1..%d", n, RWKVD_DOC_MAX);
    memcpy(doc, p, n);
    *doc_len = n;
    return 0;
}

int rwkvd_duint(const rwkvd_dctx *c, const rwkvd_field *f, const char *name, uint64_t max,
                rwkvd_reason range_reason, uint64_t *out)
{
    const msgpack_object *o = f->val;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return rwkvd_dfail(c, range_reason, f->val_off, "field \"%s\": negative (%lld)", name,
                           (long long)o->via.i64);
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return rwkvd_dfail(c, RWKVD_R_WRONG_TYPE, f->val_off,
                           "field \"%s\": must be a non-negative integer", name);
    if (o->via.u64 > max)
        return rwkvd_dfail(c, range_reason, f->val_off, "field \"%s\": %llu is above %llu", name,
                           (unsigned long long)o->via.u64, (unsigned long long)max);
    *out = o->via.u64;
    return 0;
}

bool rwkvd_dstr_eq(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

/* ---- option names (PROTOCOL.md §3.2) ---- */
static const char *const output_names[] = {"embedding", "logits_last", "topk", "surprisal"};

const char *rwkvd_output_name(uint32_t bit)
{
    for (unsigned i = 0; i < 4; i++)
        if (bit == 1u << i)
            return output_names[i];
    return "?";
}

const char *rwkvd_pooling_name(rwkvd_pooling p)
{
    return p == RWKVD_POOL_LAST ? "last" : p == RWKVD_POOL_MEAN ? "mean" : p == RWKVD_POOL_EOS ? "eos" : "?";
}

void rwkvd_doc_opts_default(rwkvd_doc_opts *o)
{
    o->outputs = RWKVD_OUT_DEFAULT;
    o->pooling = RWKVD_POOL_LAST;
    o->normalize = true;
    o->topk = RWKVD_TOPK_DEFAULT;
    o->segment = false;
    rwkv_seg_config_lines(&o->seg);
}

int rwkvd_doc_opts_check(const rwkvd_doc_opts *o, rwkv_error *err)
{
    if (o->outputs & ~(uint32_t)RWKVD_OUT_ALL)
        return rwkv_fail(err, "outputs: unknown bits 0x%x", (unsigned)(o->outputs & ~RWKVD_OUT_ALL));
    if (o->pooling != RWKVD_POOL_LAST && o->pooling != RWKVD_POOL_MEAN &&
        o->pooling != RWKVD_POOL_EOS)
        return rwkv_fail(err, "pooling: %d is not last, mean or eos", (int)o->pooling);
    /* a decoded message may carry a task before the daemon resolves it to
     * eos pooling; eos pooling always has its task */
    if (o->eos_every > RWKVD_EOS_EVERY_MAX)
        return rwkv_fail(err, "eos_every: %u out of range", (unsigned)o->eos_every);
    if (o->task > 2 || (o->task && !o->has_task) ||
        (o->pooling == RWKVD_POOL_EOS && !o->has_task))
        return rwkv_fail(err, "task: %u%s", (unsigned)o->task,
                         o->has_task ? " out of range" : " without a task (eos pooling needs one)");
    if (o->topk < 1 || o->topk > RWKVD_TOPK_MAX)
        return rwkv_fail(err, "topk: %u is not in 1..%d", o->topk, RWKVD_TOPK_MAX);
    if (o->segment && rwkv_seg_config_check(&o->seg, err) != 0)
        return -1;
    return 0;
}

const char *rwkvd_cmd_name(rwkvd_cmd cmd)
{
    static const char *const names[RWKVD_CMD_COUNT] = {"status", "resume", "checkpoint", "drop",
                                                       "health"};
    return (unsigned)cmd < RWKVD_CMD_COUNT ? names[cmd] : "?";
}
