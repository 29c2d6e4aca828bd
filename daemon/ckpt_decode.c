/* ckpt_decode.c — checkpoint file bytes -> snapshot struct (format in
 * checkpoint.h).
 *
 * The reader trusts nothing: the header CRC is verified before any field is
 * believed, every field is range-checked and the model identity compared
 * before the payload is touched, array lengths come only from the checked
 * header and the payload size they imply is capped before allocation, the
 * payload CRC is verified before zstd sees a byte, and zstd's content size
 * and XXH64 frame checksum are required and verified.  Only zstd's stable
 * API is used (libzstd.so may be newer than the headers we built with).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "core/crc32.h"
#include "daemon/ckpt_internal.h"
#include "core/sha256.h"

#define ZSTD_MAGIC 0xFD2FB528u

static int dfail(rwkvd_ckpt_status *st, rwkvd_ckpt_status s, rwkv_error *err, const char *label,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int dfail(rwkvd_ckpt_status *st, rwkvd_ckpt_status s, rwkv_error *err, const char *label,
                 const char *fmt, ...)
{
    char what[RWKV_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    *st = s;
    return rwkv_fail(err, "%s: %s", label, what);
}

/* Parses and checks the header into ck (no arrays) and *flags. */
static int parse_header(const char *label, const uint8_t *p, size_t len,
                        const rwkvd_model_id *expect, rwkvd_ckpt *ck, uint32_t *flags,
                        uint64_t *comp_size, uint32_t *comp_crc, rwkvd_ckpt_status *st,
                        rwkv_error *err)
{
    if (len < 8 || memcmp(p, RWKVD_CKPT_MAGIC, 8) != 0)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label,
                     len < 8 ? "offset 0: truncated: %zu bytes, not even the magic number"
                             : "offset 0: bad magic: not an rwkvd checkpoint (%zu bytes)", len);
    if (len < 12)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label, "offset 8: truncated in the header");
    uint32_t version = rwkv_get32(p + 8);
    if (version < RWKVD_CKPT_VERSION || version > RWKVD_CKPT_VERSION_MAX)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label,
                     "offset 8: format version %u not supported (this daemon reads %d to %d)",
                     version, RWKVD_CKPT_VERSION, RWKVD_CKPT_VERSION_MAX);
    bool fenced = rwkvd_ckpt_version_fenced(version);
    if (len < 120)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label,
                     "offset %zu: truncated in the header (%zu bytes)", len, len);
    uint32_t doc_len = rwkv_get32(p + 116);
    if (doc_len < 1 || doc_len > RWKVD_DOC_MAX)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label, "offset 116: doc id length %u not in 1..%d",
                     doc_len, RWKVD_DOC_MAX);
    bool eos = rwkvd_ckpt_version_eos(version);
    size_t hs = rwkvd_ckpt_header_bytes(version, doc_len);
    if (len < hs)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label,
                     "offset %zu: truncated: the header needs %zu bytes", len, hs);
    uint32_t want = rwkv_get32(p + hs - 4), got = rwkv_crc32(0, p, hs - 4);
    if (want != got)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label,
                     "offset %zu: header checksum mismatch (stored %08x, computed %08x)", hs - 4,
                     want, got);
    uint32_t fl = rwkv_get32(p + 16);
    /* v1/v2: pooling last/mean, byte 103 reserved; v3/v4: pooling eos with its task */
    if (rwkv_get32(p + 12) != hs || (eos ? p[103] > 2 : p[103] != 0) ||
        (fl & ~(uint32_t)RWKVD_CKPT_FL_ALL) ||
        (!(fl & RWKVD_CKPT_FL_CARRY) && rwkv_get32(p + 132)) ||
        (eos ? p[100] != RWKVD_POOL_EOS : p[100] > 1) || p[101] > 1)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label,
                     "offset 12: header fields out of range (size, reserved bytes or flags)");
    memset(ck, 0, sizeof *ck);
    *flags = rwkv_get32(p + 16);
    ck->model.generation = rwkv_get32(p + 20);
    ck->model.n_layer = rwkv_get32(p + 24);
    ck->model.n_embd = rwkv_get32(p + 28);
    ck->model.vocab = rwkv_get32(p + 32);
    ck->block_size = rwkv_get32(p + 36);
    ck->model.state_floats = rwkv_get64(p + 40);
    ck->next_seq = rwkv_get64(p + 48);
    ck->blocks_done = rwkv_get64(p + 56);
    ck->tokens_done = rwkv_get64(p + 64);
    ck->mean_count = rwkv_get64(p + 72);
    uint64_t ss_bits = rwkv_get64(p + 80);
    memcpy(&ck->surprisal_sum, &ss_bits, 8);
    ck->surprisal_count = rwkv_get64(p + 88);
    ck->opts.outputs = rwkv_get32(p + 96);
    ck->opts.pooling = (rwkvd_pooling)p[100];
    ck->opts.has_task = eos;
    ck->opts.task = eos ? p[103] : 0;
    ck->opts.normalize = p[101];
    ck->input = (rwkvd_input_kind)p[102];
    ck->model.precision = (uint8_t)((fl & RWKVD_CKPT_FL_PRECISION) >> RWKVD_CKPT_FL_PRECISION_SHIFT);
    ck->opts.topk = rwkv_get32(p + 104);
    rwkv_seg_config_lines(&ck->opts.seg); /* set from the payload when flag 32 is */
    ck->n_pending_bytes = rwkv_get32(p + 108);
    ck->n_pending_tokens = rwkv_get32(p + 112);
    ck->has_carry = (fl & RWKVD_CKPT_FL_CARRY) != 0;
    uint32_t carry_bits = rwkv_get32(p + 132);
    memcpy(&ck->carry_surprisal, &carry_bits, 4);
    ck->doc_len = doc_len;
    *comp_size = rwkv_get64(p + 120);
    *comp_crc = rwkv_get32(p + 128);
    memcpy(ck->model.model_sha256, p + 136, 32);
    memcpy(ck->model.tokenizer_sha256, p + 168, 32);
    size_t at = 200;
    ck->fence = fenced ? rwkv_get64(p + at) : 0;
    if (fenced && !ck->fence)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label,
                     "offset 200: fencing token 0 in a fenced (version %u) header", version);
    if (fenced)
        at += RWKVD_CKPT_HEADER_FENCE_EXTRA;
    if (eos) {
        ck->opts.eos_every = rwkv_get32(p + at);
        ck->since_eos = rwkv_get32(p + at + 4);
        at += RWKVD_CKPT_HEADER_EOS_EXTRA;
    }
    memcpy(ck->doc, p + at, doc_len);
    ck->finished = *flags & RWKVD_CKPT_FL_FINISHED;
    ck->eof = (*flags & RWKVD_CKPT_FL_EOF) != 0;
    rwkv_error why;
    if (rwkvd_ckpt_check_scalars(ck, *flags, &why) != 0)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label, "header: %s", why.msg);
    if (expect) {
        char a[65], b[65];
        if (memcmp(expect->model_sha256, ck->model.model_sha256, 32) != 0) {
            rwkvd_sha256_hex(ck->model.model_sha256, a);
            rwkvd_sha256_hex(expect->model_sha256, b);
            return dfail(st, RWKVD_CKPT_OTHER_MODEL, err, label,
                         "made with model sha256 %.16s..., the running model is %.16s...", a, b);
        }
        if (memcmp(expect->tokenizer_sha256, ck->model.tokenizer_sha256, 32) != 0) {
            rwkvd_sha256_hex(ck->model.tokenizer_sha256, a);
            rwkvd_sha256_hex(expect->tokenizer_sha256, b);
            return dfail(st, RWKVD_CKPT_OTHER_MODEL, err, label,
                         "made with tokenizer sha256 %.16s..., the running one is %.16s...", a, b);
        }
        if (expect->precision != RWKVD_CKPT_PRECISION_ANY &&
            expect->precision != ck->model.precision) {
            const char *was = rwkvd_ckpt_precision_name(ck->model.precision),
                       *runs = rwkvd_ckpt_precision_name(expect->precision);
            if (ck->model.precision == RWKVD_CKPT_PRECISION_MIXED)
                return dfail(st, RWKVD_CKPT_OTHER_MODEL, err, label,
                             "its state was computed in mixed precisions, the daemon runs %s: "
                             "a document never mixes precisions silently (continue it with "
                             "--allow-precision-change, or drop it)",
                             runs);
            return dfail(st, RWKVD_CKPT_OTHER_MODEL, err, label,
                         "its state was computed in %s, the daemon runs %s: a document never "
                         "mixes precisions silently (continue it with --precision %s, or with "
                         "--allow-precision-change, its outputs then saying \"mixed\"; or "
                         "drop it)",
                         was, runs, was);
        }
        if (expect->generation != ck->model.generation || expect->n_layer != ck->model.n_layer ||
            expect->n_embd != ck->model.n_embd || expect->vocab != ck->model.vocab ||
            expect->state_floats != ck->model.state_floats)
            return dfail(st, RWKVD_CKPT_CORRUPT, err, label,
                         "model shape (gen %u, %u layers, n_embd %u, vocab %u, state %llu) differs "
                         "from the running model's though the sha256 matches",
                         ck->model.generation, ck->model.n_layer, ck->model.n_embd,
                         ck->model.vocab, (unsigned long long)ck->model.state_floats);
    }
    return 0;
}

static void fill_info(const rwkvd_ckpt *ck, uint32_t flags, uint64_t comp_size,
                      rwkvd_ckpt_info *info)
{
    memset(info, 0, sizeof *info);
    info->model = ck->model;
    memcpy(info->doc, ck->doc, ck->doc_len);
    info->doc_len = ck->doc_len;
    info->next_seq = ck->next_seq;
    info->blocks_done = ck->blocks_done;
    info->tokens_done = ck->tokens_done;
    info->n_pending_tokens = ck->n_pending_tokens;
    info->block_size = ck->block_size;
    info->finished = ck->finished;
    info->eof = ck->eof;
    info->header_size = rwkvd_ckpt_header_size(ck);
    info->fence = ck->fence;
    info->comp_size = comp_size;
    info->raw_size = rwkvd_ckpt_raw_size(ck, flags);
}

int rwkvd_ckpt_read_header(const char *label, const void *buf, size_t len,
                           const rwkvd_model_id *expect, rwkvd_ckpt_info *info,
                           rwkvd_ckpt_status *status, rwkv_error *err)
{
    rwkvd_ckpt ck;
    uint32_t flags, crc;
    uint64_t comp;
    rwkvd_ckpt_status dummy;
    if (!status)
        status = &dummy;
    *status = RWKVD_CKPT_OK;
    if (parse_header(label, buf, len, expect, &ck, &flags, &comp, &crc, status, err) != 0)
        return -1;
    fill_info(&ck, flags, comp, info);
    return 0;
}

#if !RWKVD_HOST_LE
static void swap_in_place(void *p, uint64_t n, size_t size)
{
    uint8_t *b = p;
    for (uint64_t i = 0; i < n; i++, b += size)
        for (size_t k = 0; k < size / 2; k++) {
            uint8_t t = b[k];
            b[k] = b[size - 1 - k];
            b[size - 1 - k] = t;
        }
}
#endif

int rwkvd_ckpt_decode(const char *label, const void *buf, size_t len,
                      const rwkvd_model_id *expect, uint64_t max_raw, rwkvd_ckpt *out,
                      rwkvd_ckpt_status *status, rwkv_error *err)
{
    const uint8_t *p = buf;
    uint32_t flags, comp_crc;
    uint64_t comp_size;
    rwkvd_ckpt_status dummy;
    if (!status)
        status = &dummy;
    *status = RWKVD_CKPT_OK;
    memset(out, 0, sizeof *out);
    if (max_raw == 0)
        max_raw = RWKVD_CKPT_RAW_DEFAULT_MAX;
    if (parse_header(label, p, len, expect, out, &flags, &comp_size, &comp_crc, status, err) != 0)
        return -1;
    size_t hs = rwkvd_ckpt_header_size(out);
    if (comp_size != len - hs)
        return dfail(status, RWKVD_CKPT_CORRUPT, err, label,
                     comp_size > len - hs ? "offset %zu: truncated: the payload needs %llu bytes, %zu present"
                                          : "offset %zu: the payload is %llu bytes but %zu follow the header",
                     len, (unsigned long long)comp_size, len - hs);
    uint64_t raw = rwkvd_ckpt_raw_size(out, flags);
    if (raw > max_raw || raw > SIZE_MAX / 2)
        return dfail(status, RWKVD_CKPT_CORRUPT, err, label,
                     "the payload would be %llu bytes, above the limit of %llu",
                     (unsigned long long)raw, (unsigned long long)max_raw);
    const uint8_t *z = p + hs;
    uint32_t crc = rwkv_crc32(0, z, (size_t)comp_size);
    if (crc != comp_crc)
        return dfail(status, RWKVD_CKPT_CORRUPT, err, label,
                     "offset %zu: payload checksum mismatch (stored %08x, computed %08x)", hs,
                     comp_crc, crc);
    if (comp_size < 6 || rwkv_get32(z) != ZSTD_MAGIC || !(z[4] & 4))
        return dfail(status, RWKVD_CKPT_CORRUPT, err, label,
                     "offset %zu: the payload is not a zstd frame with a content checksum", hs);
    unsigned long long fcs = ZSTD_getFrameContentSize(z, (size_t)comp_size);
    size_t fsize = ZSTD_findFrameCompressedSize(z, (size_t)comp_size);
    if (fcs != raw || ZSTD_isError(fsize) || fsize != comp_size)
        return dfail(status, RWKVD_CKPT_CORRUPT, err, label,
                     "offset %zu: zstd frame does not match the header (content %llu of %llu bytes, "
                     "frame %zu of %llu bytes)", hs, fcs, (unsigned long long)raw,
                     ZSTD_isError(fsize) ? (size_t)0 : fsize, (unsigned long long)comp_size);
    uint8_t *r = malloc(raw ? (size_t)raw : 1);
    if (!r)
        return dfail(status, RWKVD_CKPT_NOMEM, err, label, "out of memory for %llu bytes",
                     (unsigned long long)raw);
    size_t got = ZSTD_decompress(r, (size_t)raw, z, (size_t)comp_size);
    if (ZSTD_isError(got) || got != raw) {
        free(r);
        return dfail(status, RWKVD_CKPT_CORRUPT, err, label, "offset %zu: zstd: %s", hs,
                     ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short output");
    }
    /* hand out pointers into r, in payload order */
    uint64_t c = out->model.n_embd, at = 0;
#if RWKVD_HOST_LE
#define TAKE(field, type, n)                                                                  \
    do {                                                                                      \
        out->field = (const type *)(const void *)(r + at);                                    \
        at += (uint64_t)(n) * sizeof(type);                                                   \
    } while (0)
#else
#define TAKE(field, type, n)                                                                  \
    do {                                                                                      \
        swap_in_place(r + at, (n), sizeof(type));                                             \
        out->field = (const type *)(const void *)(r + at);                                    \
        at += (uint64_t)(n) * sizeof(type);                                                   \
    } while (0)
#endif
    if (rwkvd_ckpt_has_sum(&out->opts))
        TAKE(mean_sum, double, c);
    if (flags & RWKVD_CKPT_FL_STATE)
        TAKE(state, float, out->model.state_floats);
    if (flags & RWKVD_CKPT_FL_LAST_EMB)
        TAKE(last_emb, float, c);
    if (out->n_pending_tokens)
        TAKE(pending_tokens, uint32_t, out->n_pending_tokens);
#undef TAKE
    if (out->n_pending_bytes)
        out->pending_bytes = r + at;
    at += out->n_pending_bytes;
    out->owned = r;
    if (flags & RWKVD_CKPT_FL_SEGMENTS) {
        rwkv_error why;
        rwkv_segmenter sg;
        out->segment_state = r + at;
        if (rwkv_segmenter_load(&sg, out->segment_state, RWKV_SEGMENTER_BYTES, "segment state",
                                &why) != 0) {
            rwkvd_ckpt_release(out);
            return dfail(status, RWKVD_CKPT_CORRUPT, err, label, "offset %zu (payload %llu): %s",
                         hs, (unsigned long long)at, why.msg);
        }
        out->opts.segment = true;
        out->opts.seg = sg.cfg;
    }
    rwkv_error why;
    if (rwkvd_ckpt_check_arrays(out, &why) != 0) {
        rwkvd_ckpt_release(out);
        return dfail(status, RWKVD_CKPT_CORRUPT, err, label, "payload: %s", why.msg);
    }
    return 0;
}
