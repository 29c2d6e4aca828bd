/* fuzz_sink.c — libFuzzer target for rwkvd-sink's parsers of outside bytes:
 *   - an emit message, as it arrives from the socket: pre-scan
 *     (core/mp_scan.h) with the sink's limits, msgpack-c, render_classify,
 *     then render_record inline and in raw mode.  Whatever is rendered must
 *     be valid JSON (jansson parses it), raw blobs must point inside the
 *     message, and for block/final outputs the rendered record must parse
 *     back (record_parse) to the same key and hash — the property a
 *     restarted sink (--append) relies on to deduplicate;
 *   - a record line of an existing output file (record_parse), which must
 *     never read outside the line and only return keys of 1..256 bytes.
 * The client's parser sources are linked in (Makefile FUZZ_LINK_sink; they
 * are not part of libcore/libdaemon).
 *
 * Seeds in tests/fuzz/corpus/sink/ were written with python3-msgpack: block
 * outputs with every vector field, finals with nil and present embeddings,
 * errors with bin doc ids, acks, odd types, a few hostile maps, and record
 * lines as rwkvd-sink writes them.
 */
#include <jansson.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clients/rwkvd-sink/keyset.h"
#include "clients/rwkvd-sink/reload.h"
#include "clients/rwkvd-sink/render.h"
#include "clients/rwkvd-sink/top.h"
#include "core/mp_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_json(const tbuf *b)
{
    json_error_t jerr;
    json_t *j = json_loadb(b->p, b->len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
    if (!j || !json_is_object(j))
        abort();
    json_decref(j);
}

static void check_message(const uint8_t *data, size_t size)
{
    rwkvd_mp_limits lim = {.max_depth = 4, .max_items = (size_t)1 << 22,
                           .max_map = 256, .max_array = (size_t)1 << 22};
    rwkvd_reason reason;
    size_t off;
    rwkv_error err;
    if (rwkvd_mp_scan(data, size, &lim, &reason, &off, &err) != 0)
        return;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t used = 0;
    out_info info;
    if (msgpack_unpack_next(&u, (const char *)data, size, &used) != MSGPACK_UNPACK_SUCCESS ||
        render_classify(&u.data, &info, &err) != 0) {
        msgpack_unpacked_destroy(&u);
        return;
    }
    bool keyed = info.type == OUT_BLOCK || info.type == OUT_FINAL || info.type == OUT_SEGMENTS;
    if (info.type == OUT_SEGMENTS) { /* --segments-top reads any segments output */
        seg_top *t = seg_top_new(2);
        if (!t || seg_top_offer(t, info.doc, info.doc_len, &u.data) != 0)
            abort();
        seg_top_free(t);
    }
    uint64_t h = hash64(data, size, 0);
    tbuf b = {0};
    render_record(&b, &u.data, &info, NULL, NULL, NULL);
    if (keyed) {
        char hex[40];
        snprintf(hex, sizeof hex, ",\"msg_hash\":\"%016llx\"", (unsigned long long)h);
        tbuf_puts(&b, hex);
    }
    tbuf_puts(&b, "}");
    if (b.oom)
        abort();
    check_json(&b);
    if (keyed) {
        record_key k;
        if (record_parse(b.p, b.len, &k, &err) != 0 || !k.keyed || k.doc_len != info.doc_len ||
            memcmp(k.doc, info.doc, k.doc_len) != 0 || !k.has_hash || k.msg_hash != h ||
            k.inc != info.inc ||
            k.block != (info.type == OUT_FINAL      ? KEYSET_FINAL
                        : info.type == OUT_SEGMENTS ? (info.block | KEYSET_SEGMENTS_BIT)
                                                    : info.block))
            abort();
        /* raw mode: vectors become blobs inside the message */
        render_blob blobs[RENDER_MAX_BLOBS];
        size_t n = 0;
        b.len = 0;
        render_record(&b, &u.data, &info, "7", blobs, &n);
        tbuf_puts(&b, "}");
        check_json(&b);
        if (n > RENDER_MAX_BLOBS)
            abort();
        for (size_t i = 0; i < n; i++)
            if ((const uint8_t *)blobs[i].data < data ||
                (const uint8_t *)blobs[i].data + blobs[i].len > data + size ||
                blobs[i].len % 4 != 0)
                abort();
    }
    tbuf_free(&b);
    msgpack_unpacked_destroy(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exact-size copy, so a parser reading past the line trips ASan */
    char *line = malloc(size ? size : 1);
    if (!line)
        return 0;
    memcpy(line, data, size);
    record_key k;
    rwkv_error err;
    if (record_parse(line, size, &k, &err) == 0 && k.keyed &&
        (k.doc_len < 1 || k.doc_len > RWKVD_DOC_MAX))
        abort();
    free(line);
    check_message(data, size);
    return 0;
}
