/* ckpt_encode.c — snapshot struct -> checkpoint file bytes (format in
 * checkpoint.h).  The snapshot is checked against the same rules the reader
 * applies, then its arrays are streamed into one zstd frame (content size
 * and XXH64 checksum on) straight from the caller's memory — a state of tens
 * of MB is never copied into a staging buffer — and the header is written
 * last, with the frame's size and CRC-32 and its own CRC-32.
 */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "core/crc32.h"
#include "core/quote.h"
#include "daemon/ckpt_internal.h"

static int feed_raw(ZSTD_CCtx *cc, ZSTD_outBuffer *o, const void *p, size_t n)
{
    ZSTD_inBuffer in = {p, n, 0};
    while (in.pos < in.size) {
        size_t r = ZSTD_compressStream2(cc, o, &in, ZSTD_e_continue);
        if (ZSTD_isError(r) || (o->pos == o->size && in.pos < in.size))
            return -1;
    }
    return 0;
}

/* n elements of `size` bytes (1, 4 or 8), little-endian on the wire. */
static int feed(ZSTD_CCtx *cc, ZSTD_outBuffer *o, const void *p, uint64_t n, size_t size)
{
    if (RWKVD_HOST_LE || size == 1)
        return feed_raw(cc, o, p, (size_t)(n * size));
    const uint8_t *s = p;
    uint8_t tmp[4096];
    while (n) {
        size_t m = n < sizeof tmp / size ? (size_t)n : sizeof tmp / size;
        for (size_t i = 0; i < m; i++)
            for (size_t b = 0; b < size; b++)
                tmp[i * size + b] = s[i * size + size - 1 - b];
        if (feed_raw(cc, o, tmp, m * size) != 0)
            return -1;
        s += m * size, n -= m;
    }
    return 0;
}

static void write_header(uint8_t *h, const rwkvd_ckpt *ck, uint32_t flags, uint64_t comp_size,
                         uint32_t comp_crc)
{
    size_t hs = rwkvd_ckpt_header_size(ck);
    double ss = ck->surprisal_sum;
    uint64_t ss_bits;
    memcpy(&ss_bits, &ss, 8);
    memset(h, 0, hs);
    memcpy(h, RWKVD_CKPT_MAGIC, 8);
    bool eos = ck->opts.pooling == RWKVD_POOL_EOS;
    rwkv_put32(h + 8, rwkvd_ckpt_version(ck));
    rwkv_put32(h + 12, (uint32_t)hs);
    rwkv_put32(h + 16, flags);
    rwkv_put32(h + 20, ck->model.generation);
    rwkv_put32(h + 24, ck->model.n_layer);
    rwkv_put32(h + 28, ck->model.n_embd);
    rwkv_put32(h + 32, ck->model.vocab);
    rwkv_put32(h + 36, ck->block_size);
    rwkv_put64(h + 40, ck->model.state_floats);
    rwkv_put64(h + 48, ck->next_seq);
    rwkv_put64(h + 56, ck->blocks_done);
    rwkv_put64(h + 64, ck->tokens_done);
    rwkv_put64(h + 72, ck->mean_count);
    rwkv_put64(h + 80, ss_bits);
    rwkv_put64(h + 88, ck->surprisal_count);
    rwkv_put32(h + 96, ck->opts.outputs);
    h[100] = (uint8_t)ck->opts.pooling;
    h[101] = ck->opts.normalize ? 1 : 0;
    h[102] = (uint8_t)ck->input;
    h[103] = eos ? ck->opts.task : 0;
    rwkv_put32(h + 104, ck->opts.topk);
    rwkv_put32(h + 108, (uint32_t)ck->n_pending_bytes);
    rwkv_put32(h + 112, (uint32_t)ck->n_pending_tokens);
    rwkv_put32(h + 116, (uint32_t)ck->doc_len);
    rwkv_put64(h + 120, comp_size);
    rwkv_put32(h + 128, comp_crc);
    uint32_t carry_bits = 0;
    if (ck->has_carry)
        memcpy(&carry_bits, &ck->carry_surprisal, 4);
    rwkv_put32(h + 132, carry_bits);
    memcpy(h + 136, ck->model.model_sha256, 32);
    memcpy(h + 168, ck->model.tokenizer_sha256, 32);
    size_t at = 200;
    if (ck->fence) {
        rwkv_put64(h + at, ck->fence);
        at += RWKVD_CKPT_HEADER_FENCE_EXTRA;
    }
    if (eos) {
        rwkv_put32(h + at, ck->opts.eos_every);
        rwkv_put32(h + at + 4, ck->since_eos);
        at += RWKVD_CKPT_HEADER_EOS_EXTRA;
    }
    memcpy(h + at, ck->doc, ck->doc_len);
    rwkv_put32(h + at + ck->doc_len, rwkv_crc32(0, h, at + ck->doc_len));
}

int rwkvd_ckpt_encode(const rwkvd_ckpt *ck, int level, uint8_t **out, size_t *out_len,
                      rwkv_error *err)
{
    *out = NULL;
    *out_len = 0;
    rwkv_error why;
    rwkv_quoted q;
    uint32_t flags = rwkvd_ckpt_flags(ck);
    if (rwkvd_ckpt_has_sum(&ck->opts) != (ck->mean_sum != NULL))
        return rwkv_fail(err, "checkpoint of doc \"%s\": mean sum given iff pooling is mean",
                         rwkv_quote(&q, ck->doc, ck->doc_len < RWKVD_DOC_MAX ? ck->doc_len : RWKVD_DOC_MAX));
    if ((ck->n_pending_tokens && !ck->pending_tokens) || (ck->n_pending_bytes && !ck->pending_bytes))
        return rwkv_fail(err, "checkpoint: pending counts without arrays");
    if (rwkvd_ckpt_check_scalars(ck, flags, &why) != 0 || rwkvd_ckpt_check_arrays(ck, &why) != 0)
        return rwkv_fail(err, "checkpoint of doc \"%s\": %s",
                         rwkv_quote(&q, ck->doc, ck->doc_len < RWKVD_DOC_MAX ? ck->doc_len : RWKVD_DOC_MAX),
                         why.msg);
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
        return rwkv_fail(err, "checkpoint: zstd level %d not in %d..%d", level, ZSTD_minCLevel(),
                         ZSTD_maxCLevel());
    uint64_t raw = rwkvd_ckpt_raw_size(ck, flags);
    size_t hs = rwkvd_ckpt_header_size(ck);
    size_t bound = ZSTD_compressBound((size_t)raw);
    if (ZSTD_isError(bound) || bound > SIZE_MAX - hs)
        return rwkv_fail(err, "checkpoint: payload of %llu bytes is too large",
                         (unsigned long long)raw);
    uint8_t *buf = malloc(hs + bound);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    if (!buf || !cc) {
        free(buf);
        ZSTD_freeCCtx(cc);
        return rwkv_fail(err, "checkpoint: out of memory for %zu bytes", hs + bound);
    }
    ZSTD_outBuffer o = {buf + hs, bound, 0};
    uint64_t c = ck->model.n_embd;
    int bad = ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level)) ||
              ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1)) ||
              ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1)) ||
              ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cc, raw));
    if (!bad && ck->mean_sum)
        bad = feed(cc, &o, ck->mean_sum, c, 8);
    if (!bad && ck->state)
        bad = feed(cc, &o, ck->state, ck->model.state_floats, 4);
    if (!bad && ck->last_emb)
        bad = feed(cc, &o, ck->last_emb, c, 4);
    if (!bad && ck->n_pending_tokens)
        bad = feed(cc, &o, ck->pending_tokens, ck->n_pending_tokens, 4);
    if (!bad && ck->n_pending_bytes)
        bad = feed(cc, &o, ck->pending_bytes, ck->n_pending_bytes, 1);
    if (!bad && ck->segment_state)
        bad = feed(cc, &o, ck->segment_state, RWKV_SEGMENTER_BYTES, 1);
    while (!bad) {
        ZSTD_inBuffer none = {NULL, 0, 0};
        size_t r = ZSTD_compressStream2(cc, &o, &none, ZSTD_e_end);
        if (ZSTD_isError(r) || (r && o.pos == o.size))
            bad = 1;
        else if (r == 0)
            break;
    }
    ZSTD_freeCCtx(cc);
    if (bad) {
        free(buf);
        return rwkv_fail(err, "checkpoint: zstd compression failed");
    }
    write_header(buf, ck, flags, o.pos, rwkv_crc32(0, buf + hs, o.pos));
    *out = buf;
    *out_len = hs + o.pos;
    return 0;
}
