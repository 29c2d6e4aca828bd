/* checkpoint.c — the snapshot format: encode, header check, decode (see
 * checkpoint.h for the layout and why it is split the way it is).
 *
 * The reader trusts nothing: every field is range-checked, the header CRC
 * is verified before any field is believed, array lengths come only from the
 * checked header and are capped before allocation, the payload CRC is
 * verified before zstd sees a byte, and zstd's content size and XXH64 frame
 * checksum are required and verified.  zstd's stable API is used only
 * (libzstd.so may be newer than the headers we built with).
 */
#include "daemon/checkpoint.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "core/crc32.h"
#include "core/quote.h"
#include "daemon/sha256.h"

enum {
    FL_FINISHED = 1,
    FL_STATE = 2,
    FL_LAST_EMB = 4,
    FL_PREV_LOGITS = 8,
    FL_ALL = 15,
};

#define ZSTD_MAGIC 0xFD2FB528u

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

const char *rwkvd_ckpt_status_name(rwkvd_ckpt_status s)
{
    static const char *const names[] = {"ok", "not found", "corrupt", "other model", "I/O error",
                                        "out of memory"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

void rwkvd_ckpt_release(rwkvd_ckpt *ck)
{
    if (!ck || !ck->owned)
        return;
    free(ck->owned);
    ck->owned = NULL;
    ck->pending_bytes = NULL;
    ck->pending_tokens = NULL;
    ck->mean_sum = NULL;
    ck->last_emb = NULL;
    ck->prev_logits = NULL;
    ck->state = NULL;
}

static uint32_t flags_of(const rwkvd_ckpt *ck)
{
    return (ck->finished ? FL_FINISHED : 0) | (ck->state ? FL_STATE : 0) |
           (ck->last_emb ? FL_LAST_EMB : 0) | (ck->prev_logits ? FL_PREV_LOGITS : 0);
}

/* Payload bytes implied by the scalars and flags (all factors capped by
 * check_scalars first, so no overflow: at most ~2^35). */
static uint64_t raw_size_of(const rwkvd_ckpt *ck, uint32_t flags)
{
    uint64_t c = ck->model.n_embd, n = 0;
    if (ck->opts.pooling == RWKVD_POOL_MEAN)
        n += 8 * c;
    if (flags & FL_STATE)
        n += 4 * ck->model.state_floats;
    if (flags & FL_PREV_LOGITS)
        n += 4 * (uint64_t)ck->model.vocab;
    if (flags & FL_LAST_EMB)
        n += 4 * c;
    return n + 4 * (uint64_t)ck->n_pending_tokens + ck->n_pending_bytes;
}

/* The rules every snapshot obeys, on scalars and flags only.  Fills `why`
 * with "field: problem" and returns -1 on the first broken rule. */
static int check_scalars(const rwkvd_ckpt *ck, uint32_t flags, rwkv_error *why)
{
    const rwkvd_model_id *m = &ck->model;
    if (ck->doc_len < 1 || ck->doc_len > RWKVD_DOC_MAX)
        return rwkv_fail(why, "doc id length %zu not in 1..%d", ck->doc_len, RWKVD_DOC_MAX);
    if (m->n_layer < 1 || m->n_layer > RWKVD_CKPT_LAYER_MAX || m->n_embd < 1 ||
        m->n_embd > RWKVD_CKPT_EMBD_MAX || m->vocab < 1 || m->vocab > RWKVD_CKPT_VOCAB_MAX ||
        m->state_floats < 1 || m->state_floats > RWKVD_CKPT_STATE_MAX)
        return rwkv_fail(why, "model shape out of range (n_layer %u, n_embd %u, vocab %u, state %llu)",
                         m->n_layer, m->n_embd, m->vocab, (unsigned long long)m->state_floats);
    if (ck->block_size < 1 || ck->block_size > RWKVD_BLOCK_MAX)
        return rwkv_fail(why, "block size %u not in 1..%d", ck->block_size, RWKVD_BLOCK_MAX);
    rwkv_error e;
    if (rwkvd_doc_opts_check(&ck->opts, &e) != 0)
        return rwkv_fail(why, "options: %s", e.msg);
    if ((unsigned)ck->input > RWKVD_INPUT_TOKENS)
        return rwkv_fail(why, "input kind %d unknown", (int)ck->input);
    if (ck->next_seq > RWKVD_SEQ_MAX + 1)
        return rwkv_fail(why, "next seq %llu above 2^53", (unsigned long long)ck->next_seq);
    if (ck->n_pending_bytes > RWKVD_CKPT_PENDING_BYTES_MAX)
        return rwkv_fail(why, "%zu pending tokenizer bytes, at most %d", ck->n_pending_bytes,
                         RWKVD_CKPT_PENDING_BYTES_MAX);
    if (ck->n_pending_tokens >= ck->block_size)
        return rwkv_fail(why, "%zu pending tokens, a block holds %u", ck->n_pending_tokens,
                         ck->block_size);
    if (ck->n_pending_bytes && ck->input != RWKVD_INPUT_BYTES)
        return rwkv_fail(why, "pending tokenizer bytes in a document not fed text/bytes");
    if (ck->input == RWKVD_INPUT_NONE && (ck->tokens_done || ck->n_pending_tokens))
        return rwkv_fail(why, "tokens in a document that received no input");
    uint64_t max_tok = ck->blocks_done > UINT64_MAX / ck->block_size
                           ? UINT64_MAX : ck->blocks_done * ck->block_size;
    if (ck->tokens_done < ck->blocks_done || ck->tokens_done > max_tok)
        return rwkv_fail(why, "%llu tokens do not fit %llu blocks of %u",
                         (unsigned long long)ck->tokens_done, (unsigned long long)ck->blocks_done,
                         ck->block_size);
    if (flags & FL_FINISHED) {
        if (ck->n_pending_bytes || ck->n_pending_tokens)
            return rwkv_fail(why, "a finished document with pending input");
    } else {
        if (ck->tokens_done != max_tok)
            return rwkv_fail(why, "an unfinished document whose blocks are not all full");
        if (!(flags & FL_STATE))
            return rwkv_fail(why, "an unfinished document without its recurrent state");
    }
    if (ck->mean_count > ck->tokens_done || ck->surprisal_count > ck->tokens_done)
        return rwkv_fail(why, "pooling counts above the token count");
    if (ck->opts.pooling != RWKVD_POOL_MEAN && ck->mean_count)
        return rwkv_fail(why, "a mean count without mean pooling");
    if (!isfinite(ck->surprisal_sum) || ck->surprisal_sum < 0)
        return rwkv_fail(why, "surprisal sum %g is not a finite non-negative number",
                         ck->surprisal_sum);
    if ((flags & (FL_LAST_EMB | FL_PREV_LOGITS)) && ck->tokens_done == 0)
        return rwkv_fail(why, "per-token vectors in a document with no completed block");
    return 0;
}

static int check_f32(const float *v, uint64_t n, const char *what, rwkv_error *why)
{
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return rwkv_fail(why, "%s[%llu] is not finite", what, (unsigned long long)i);
    return 0;
}

/* The rules on array contents (finite floats, ids below the vocabulary). */
static int check_arrays(const rwkvd_ckpt *ck, rwkv_error *why)
{
    uint64_t c = ck->model.n_embd;
    for (size_t i = 0; i < ck->n_pending_tokens; i++)
        if (ck->pending_tokens[i] >= ck->model.vocab)
            return rwkv_fail(why, "pending token %zu: id %u not below vocab %u", i,
                             ck->pending_tokens[i], ck->model.vocab);
    if (ck->mean_sum)
        for (uint64_t i = 0; i < c; i++)
            if (!isfinite(ck->mean_sum[i]))
                return rwkv_fail(why, "mean sum[%llu] is not finite", (unsigned long long)i);
    if ((ck->last_emb && check_f32(ck->last_emb, c, "last embedding", why)) ||
        (ck->prev_logits && check_f32(ck->prev_logits, ck->model.vocab, "logits", why)) ||
        (ck->state && check_f32(ck->state, ck->model.state_floats, "state", why)))
        return -1;
    return 0;
}

/* ---------------------------------------------------------------- encode */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_LE 1
#else
#define HOST_LE 0
#endif

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
    if (HOST_LE || size == 1)
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
    size_t hs = RWKVD_CKPT_HEADER_FIXED + ck->doc_len;
    double ss = ck->surprisal_sum;
    uint64_t ss_bits;
    memcpy(&ss_bits, &ss, 8);
    memset(h, 0, hs);
    memcpy(h, RWKVD_CKPT_MAGIC, 8);
    put32(h + 8, RWKVD_CKPT_VERSION);
    put32(h + 12, (uint32_t)hs);
    put32(h + 16, flags);
    put32(h + 20, ck->model.generation);
    put32(h + 24, ck->model.n_layer);
    put32(h + 28, ck->model.n_embd);
    put32(h + 32, ck->model.vocab);
    put32(h + 36, ck->block_size);
    put64(h + 40, ck->model.state_floats);
    put64(h + 48, ck->next_seq);
    put64(h + 56, ck->blocks_done);
    put64(h + 64, ck->tokens_done);
    put64(h + 72, ck->mean_count);
    put64(h + 80, ss_bits);
    put64(h + 88, ck->surprisal_count);
    put32(h + 96, ck->opts.outputs);
    h[100] = (uint8_t)ck->opts.pooling;
    h[101] = ck->opts.normalize ? 1 : 0;
    h[102] = (uint8_t)ck->input;
    put32(h + 104, ck->opts.topk);
    put32(h + 108, (uint32_t)ck->n_pending_bytes);
    put32(h + 112, (uint32_t)ck->n_pending_tokens);
    put32(h + 116, (uint32_t)ck->doc_len);
    put64(h + 120, comp_size);
    put32(h + 128, comp_crc);
    memcpy(h + 136, ck->model.model_sha256, 32);
    memcpy(h + 168, ck->model.tokenizer_sha256, 32);
    memcpy(h + 200, ck->doc, ck->doc_len);
    put32(h + 200 + ck->doc_len, rwkv_crc32(0, h, 200 + ck->doc_len));
}

int rwkvd_ckpt_encode(const rwkvd_ckpt *ck, int level, uint8_t **out, size_t *out_len,
                      rwkv_error *err)
{
    *out = NULL;
    *out_len = 0;
    rwkv_error why;
    rwkv_quoted q;
    uint32_t flags = flags_of(ck);
    if ((ck->opts.pooling == RWKVD_POOL_MEAN) != (ck->mean_sum != NULL))
        return rwkv_fail(err, "checkpoint of doc \"%s\": mean sum given iff pooling is mean",
                         rwkv_quote(&q, ck->doc, ck->doc_len < RWKVD_DOC_MAX ? ck->doc_len : RWKVD_DOC_MAX));
    if ((ck->n_pending_tokens && !ck->pending_tokens) || (ck->n_pending_bytes && !ck->pending_bytes))
        return rwkv_fail(err, "checkpoint: pending counts without arrays");
    if (check_scalars(ck, flags, &why) != 0 || check_arrays(ck, &why) != 0)
        return rwkv_fail(err, "checkpoint of doc \"%s\": %s",
                         rwkv_quote(&q, ck->doc, ck->doc_len < RWKVD_DOC_MAX ? ck->doc_len : RWKVD_DOC_MAX),
                         why.msg);
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
        return rwkv_fail(err, "checkpoint: zstd level %d not in %d..%d", level, ZSTD_minCLevel(),
                         ZSTD_maxCLevel());
    uint64_t raw = raw_size_of(ck, flags);
    size_t hs = RWKVD_CKPT_HEADER_FIXED + ck->doc_len;
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
    if (!bad && ck->prev_logits)
        bad = feed(cc, &o, ck->prev_logits, ck->model.vocab, 4);
    if (!bad && ck->last_emb)
        bad = feed(cc, &o, ck->last_emb, c, 4);
    if (!bad && ck->n_pending_tokens)
        bad = feed(cc, &o, ck->pending_tokens, ck->n_pending_tokens, 4);
    if (!bad && ck->n_pending_bytes)
        bad = feed(cc, &o, ck->pending_bytes, ck->n_pending_bytes, 1);
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

/* ---------------------------------------------------------------- decode */

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
    if (get32(p + 8) != RWKVD_CKPT_VERSION)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label,
                     "offset 8: format version %u not supported (this daemon reads %d)",
                     get32(p + 8), RWKVD_CKPT_VERSION);
    if (len < 120)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label,
                     "offset %zu: truncated in the header (%zu bytes)", len, len);
    uint32_t doc_len = get32(p + 116);
    if (doc_len < 1 || doc_len > RWKVD_DOC_MAX)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label, "offset 116: doc id length %u not in 1..%d",
                     doc_len, RWKVD_DOC_MAX);
    size_t hs = RWKVD_CKPT_HEADER_FIXED + doc_len;
    if (len < hs)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label,
                     "offset %zu: truncated: the header needs %zu bytes", len, hs);
    uint32_t want = get32(p + hs - 4), got = rwkv_crc32(0, p, hs - 4);
    if (want != got)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label,
                     "offset %zu: header checksum mismatch (stored %08x, computed %08x)", hs - 4,
                     want, got);
    if (get32(p + 12) != hs || p[103] || get32(p + 132) || (get32(p + 16) & ~(uint32_t)FL_ALL) ||
        p[100] > 1 || p[101] > 1)
        return dfail(st, RWKVD_CKPT_CORRUPT, err, label,
                     "offset 12: header fields out of range (size, reserved bytes or flags)");
    memset(ck, 0, sizeof *ck);
    *flags = get32(p + 16);
    ck->model.generation = get32(p + 20);
    ck->model.n_layer = get32(p + 24);
    ck->model.n_embd = get32(p + 28);
    ck->model.vocab = get32(p + 32);
    ck->block_size = get32(p + 36);
    ck->model.state_floats = get64(p + 40);
    ck->next_seq = get64(p + 48);
    ck->blocks_done = get64(p + 56);
    ck->tokens_done = get64(p + 64);
    ck->mean_count = get64(p + 72);
    uint64_t ss_bits = get64(p + 80);
    memcpy(&ck->surprisal_sum, &ss_bits, 8);
    ck->surprisal_count = get64(p + 88);
    ck->opts.outputs = get32(p + 96);
    ck->opts.pooling = (rwkvd_pooling)p[100];
    ck->opts.normalize = p[101];
    ck->input = (rwkvd_input_kind)p[102];
    ck->opts.topk = get32(p + 104);
    ck->n_pending_bytes = get32(p + 108);
    ck->n_pending_tokens = get32(p + 112);
    ck->doc_len = doc_len;
    *comp_size = get64(p + 120);
    *comp_crc = get32(p + 128);
    memcpy(ck->model.model_sha256, p + 136, 32);
    memcpy(ck->model.tokenizer_sha256, p + 168, 32);
    memcpy(ck->doc, p + 200, doc_len);
    ck->finished = *flags & FL_FINISHED;
    rwkv_error why;
    if (check_scalars(ck, *flags, &why) != 0)
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
    info->header_size = RWKVD_CKPT_HEADER_FIXED + ck->doc_len;
    info->comp_size = comp_size;
    info->raw_size = raw_size_of(ck, flags);
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

#if !HOST_LE
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
    size_t hs = RWKVD_CKPT_HEADER_FIXED + out->doc_len;
    if (comp_size != len - hs)
        return dfail(status, RWKVD_CKPT_CORRUPT, err, label,
                     comp_size > len - hs ? "offset %zu: truncated: the payload needs %llu bytes, %zu present"
                                          : "offset %zu: the payload is %llu bytes but %zu follow the header",
                     len, (unsigned long long)comp_size, len - hs);
    uint64_t raw = raw_size_of(out, flags);
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
    if (comp_size < 6 || get32(z) != ZSTD_MAGIC || !(z[4] & 4))
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
#if HOST_LE
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
    if (out->opts.pooling == RWKVD_POOL_MEAN)
        TAKE(mean_sum, double, c);
    if (flags & FL_STATE)
        TAKE(state, float, out->model.state_floats);
    if (flags & FL_PREV_LOGITS)
        TAKE(prev_logits, float, out->model.vocab);
    if (flags & FL_LAST_EMB)
        TAKE(last_emb, float, c);
    if (out->n_pending_tokens)
        TAKE(pending_tokens, uint32_t, out->n_pending_tokens);
#undef TAKE
    if (out->n_pending_bytes)
        out->pending_bytes = r + at;
    out->owned = r;
    rwkv_error why;
    if (check_arrays(out, &why) != 0) {
        rwkvd_ckpt_release(out);
        return dfail(status, RWKVD_CKPT_CORRUPT, err, label, "payload: %s", why.msg);
    }
    return 0;
}
