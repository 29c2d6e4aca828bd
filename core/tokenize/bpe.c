/* bpe.c — the byte-level BPE tokenizer kind (tokenizer.json of the GPT-NeoX
 * "20B" kind) behind tokenizer_ops: loading, chunked encoding, the streaming
 * hold-back and its restore check.
 *
 * encode_prefix cuts the text into chunks (bpe_internal.h, bpe_cut.c): from a
 * chunk start C it takes the last natural cut point in (C, C + span], or, if
 * there is none and the whole stretch was visible, forces a cut at the last
 * character boundary before C + span.  Each chunk is encoded on its own by
 * the reference pipeline: raw added tokens, then per segment between them
 * lossy UTF-8 -> NFC -> runs of spaces and the split pattern -> merges.
 *
 * Without the end of the text (final = false) a cut point is only taken when
 * lookahead bytes follow it, and a forced cut only when span + lookahead bytes
 * follow C, so at most span + lookahead - 1 = BPE_MAX_PENDING bytes are held.
 * The held bytes are always a chunk start followed by bytes with no cut the
 * non-final search accepts: exactly what pending_ok checks on restore.
 */
#include <stdlib.h>
#include <string.h>

#include "core/tokenize/bpe_internal.h"
#include "core/tokenize/tokenizer_internal.h"

typedef struct bpe_impl {
    bpe_model m;
    bpe_merges mt;
    size_t span, la;
} bpe_impl;

typedef struct encoding {
    const bpe_impl *b;
    bpe_scratch sc;
    bpe_work work;
    rwkv_ids *out;
    rwkv_error *err;
} encoding;

static int on_word(void *ctx, const uint8_t *w, size_t n)
{
    encoding *e = ctx;
    return bpe_merge_word(&e->b->mt, w, n, 0, &e->work, e->out, e->err);
}

static int on_token(void *ctx, uint32_t id)
{
    encoding *e = ctx;
    return tok_push(e->out, id, e->err);
}

static bool all_ascii(const uint8_t *s, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= s[i];
    return acc < 0x80;
}

/* A segment between raw added tokens: lossy UTF-8, NFC, split, merge. */
static int encode_segment(encoding *e, const uint8_t *s, size_t n)
{
    if (n == 0)
        return 0;
    const bpe_model *m = &e->b->m;
    bpe_scratch *sc = &e->sc;
    if (!all_ascii(s, n)) { /* ASCII is valid UTF-8 and already NFC */
        sc->cps.n = 0;
        if (bpe_u32_reserve(&sc->cps, n, e->err) != 0)
            return -1;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            i += bpe_utf8_next(s + i, n - i, &cp);
            sc->cps.v[sc->cps.n++] = cp;
        }
        sc->norm.n = 0;
        if (m->nfc) {
            if (bpe_nfc(sc->cps.v, sc->cps.n, &sc->norm, &sc->tmp, &sc->ccc, e->err) != 0)
                return -1;
        } else {
            if (bpe_buf_reserve(&sc->norm, sc->cps.n * 4, e->err) != 0)
                return -1;
            for (size_t i = 0; i < sc->cps.n; i++)
                sc->norm.n += bpe_utf8_put(sc->cps.v[i], sc->norm.b + sc->norm.n);
        }
        s = sc->norm.b;
        n = sc->norm.n;
    }
    bpe_sink sink = {on_word, on_token, e};
    return bpe_pretokenize(m, s, n, &sink);
}

/* One chunk, as a whole text. */
static int encode_chunk(encoding *e, const uint8_t *s, size_t n)
{
    const bpe_model *m = &e->b->m;
    size_t p = 0, i = 0;
    while (m->n_raw && i < n) {
        uint8_t c = s[i];
        if (m->raw_first[c >> 3] >> (c & 7) & 1) {
            int k = bpe_match_raw(m, s + i, n - i);
            if (k >= 0) {
                if (encode_segment(e, s + p, i - p) != 0 ||
                    tok_push(e->out, m->raw[k].id, e->err) != 0)
                    return -1;
                i += m->raw[k].len;
                p = i;
                continue;
            }
        }
        i++;
    }
    return encode_segment(e, s + p, n - p);
}

/* The non-final search from a chunk start: what may be cut of s[0..n). */
static int settle(const bpe_impl *b, const uint8_t *s, size_t n, bool final, bpe_scratch *sc,
                  size_t *cut, bool *forced, rwkv_error *err)
{
    *cut = 0;
    *forced = false;
    size_t lim;
    if (final)
        lim = b->span;
    else if (n > b->la)
        lim = n - b->la < b->span ? n - b->la : b->span;
    else
        return 0;
    size_t boundary;
    if (bpe_find_cut(&b->m, s, n, lim, cut, &boundary, sc, err) != 0)
        return -1;
    if (*cut == 0 && lim == b->span) {
        *cut = boundary;
        *forced = true;
    }
    return 0;
}

static int bpe_encode_prefix(const rwkv_tokenizer *t, const uint8_t *buf, size_t len,
                             bool final, rwkv_ids *out, size_t *consumed, rwkv_error *err)
{
    const bpe_impl *b = t->impl;
    encoding e;
    memset(&e, 0, sizeof e);
    e.b = b;
    e.out = out;
    e.err = err;
    size_t c = 0;
    int rc = 0;
    while (c < len) {
        size_t rem = len - c, cut;
        bool forced;
        if (final && rem <= b->span)
            cut = rem;
        else if ((rc = settle(b, buf + c, rem, final, &e.sc, &cut, &forced, err)) != 0)
            break;
        if (cut == 0)
            break;
        if ((rc = encode_chunk(&e, buf + c, cut)) != 0)
            break;
        c += cut;
    }
    bpe_scratch_free(&e.sc);
    bpe_work_free(&e.work);
    *consumed = c;
    if (rc == 0 && final && c != len)
        return rwkv_fail(err, "bpe: final encode stopped at byte %zu of %zu (internal error)", c,
                         len);
    return rc;
}

static bool bpe_pending_ok(const rwkv_tokenizer *t, const uint8_t *bytes, size_t n)
{
    const bpe_impl *b = t->impl;
    bpe_scratch sc;
    memset(&sc, 0, sizeof sc);
    rwkv_error err;
    size_t cut;
    bool forced;
    int rc = settle(b, bytes, n, false, &sc, &cut, &forced, &err);
    bpe_scratch_free(&sc);
    return rc == 0 && cut == 0;
}

static void bpe_destroy(rwkv_tokenizer *t)
{
    bpe_impl *b = t->impl;
    if (!b)
        return;
    bpe_merges_free(&b->mt);
    bpe_model_free(&b->m);
    free(b);
}

static const tokenizer_ops bpe_ops = {
    .encode_prefix = bpe_encode_prefix,
    .pending_ok = bpe_pending_ok,
    .destroy = bpe_destroy,
};

int bpe_tokenizer_parse(const char *label, const uint8_t *buf, size_t len,
                        rwkv_tokenizer **out, rwkv_error *err)
{
    *out = NULL;
    rwkv_tokenizer *t = calloc(1, sizeof *t);
    bpe_impl *b = calloc(1, sizeof *b);
    if (!t || !b) {
        free(t);
        free(b);
        return rwkv_fail(err, "%s: out of memory", label);
    }
    t->impl = b;
    t->ops = &bpe_ops;
    if (bpe_json_read(label, buf, len, &b->m, err) != 0)
        goto fail;
    if (bpe_merges_build(&b->mt, &b->m, err) != 0) {
        rwkv_fail_prefix(err, "%s", label);
        goto fail;
    }
    t->kind = RWKV_TOKENIZER_BPE;
    t->kind_name = "bpe";
    t->vocab_size = b->m.vocab_size;
    t->tok_pool = b->m.pool;
    t->tok_off = b->m.off;
    t->tok_len = b->m.len;
    b->la = bpe_lookahead(&b->m);
    b->span = bpe_span(&b->m);
    t->max_pending = BPE_MAX_PENDING;
    t->lookahead = BPE_MAX_PENDING + 1;
    *out = t;
    return 0;
fail:
    bpe_destroy(t);
    free(t);
    return -1;
}
