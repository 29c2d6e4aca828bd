/* token_encoder.c — the streaming encoder: text fed in pieces split at any
 * byte gives exactly the ids of the whole text.
 *
 * The tokenizer's encode_prefix settles what it can and leaves a tail of at
 * most max_pending bytes, which we hold.  When the next piece comes, the
 * held bytes and the first `lookahead` bytes of the piece are encoded
 * together in a small scratch buffer; that settles every held byte (the
 * tokenizer promises a position with lookahead bytes after it is settled),
 * and the rest of the piece is encoded in place, without copying it.  So
 * memory stays bounded whatever the piece size, and a byte is walked again
 * only when it was held.
 *
 * Checkpoints: rwkv_encoder_pending exposes the held bytes and
 * rwkv_encoder_restore puts them back.  Restored bytes come from outside,
 * so they must be a state the encoder can really be in: at most
 * max_pending bytes, and a tail encode_prefix could leave unsettled (for
 * World: a proper prefix of some token).  Every such tail is reachable (feed
 * exactly those bytes to a new encoder), so nothing valid is refused.
 */
#include <stdlib.h>
#include <string.h>

#include "core/tokenize/tokenizer_internal.h"

struct rwkv_encoder {
    const rwkv_tokenizer *t;
    uint8_t *held;    /* [max_pending] */
    size_t n_held;
    uint8_t *scratch; /* [max_pending + lookahead] */
};

rwkv_encoder *rwkv_encoder_new(const rwkv_tokenizer *t)
{
    rwkv_encoder *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->t = t;
    e->held = malloc(t->max_pending + 1);
    e->scratch = malloc(t->max_pending + t->lookahead + 1);
    if (!e->held || !e->scratch) {
        rwkv_encoder_free(e);
        return NULL;
    }
    return e;
}

void rwkv_encoder_free(rwkv_encoder *e)
{
    if (!e)
        return;
    free(e->held);
    free(e->scratch);
    free(e);
}

/* Holds src[0..n) as the new unsettled tail. */
static int hold(rwkv_encoder *e, const uint8_t *src, size_t n, rwkv_error *err)
{
    if (n > e->t->max_pending) {
        e->n_held = 0;
        return rwkv_fail(err, "%s encoder: %zu unsettled bytes, more than %zu (internal error)",
                         e->t->kind_name, n, e->t->max_pending);
    }
    memmove(e->held, src, n);
    e->n_held = n;
    return 0;
}

int rwkv_encoder_feed(rwkv_encoder *e, const void *buf, size_t len, rwkv_ids *out,
                      rwkv_error *err)
{
    const rwkv_tokenizer *t = e->t;
    const uint8_t *p = buf;
    while (len > 0 && e->n_held > 0) {
        size_t m = e->n_held;
        size_t k = len < t->lookahead ? len : t->lookahead;
        memcpy(e->scratch, e->held, m);
        memcpy(e->scratch + m, p, k);
        size_t c;
        if (t->ops->encode_prefix(t, e->scratch, m + k, false, out, &c, err) != 0)
            return -1;
        if (c >= m) { /* held bytes settled: go on in the piece itself */
            e->n_held = 0;
            p += c - m;
            len -= c - m;
        } else {
            if (hold(e, e->scratch + c, m + k - c, err) != 0)
                return -1;
            p += k;
            len -= k;
        }
    }
    if (len == 0)
        return 0;
    size_t c;
    if (t->ops->encode_prefix(t, p, len, false, out, &c, err) != 0)
        return -1;
    return hold(e, p + c, len - c, err);
}

int rwkv_encoder_finish(rwkv_encoder *e, rwkv_ids *out, rwkv_error *err)
{
    size_t n = e->n_held, c;
    e->n_held = 0;
    if (n == 0)
        return 0;
    if (e->t->ops->encode_prefix(e->t, e->held, n, true, out, &c, err) != 0)
        return -1;
    if (c != n)
        return rwkv_fail(err, "%s encoder: final encode stopped at %zu of %zu held bytes "
                         "(internal error)", e->t->kind_name, c, n);
    return 0;
}

size_t rwkv_encoder_pending(const rwkv_encoder *e, const uint8_t **bytes)
{
    *bytes = e->held;
    return e->n_held;
}

int rwkv_encoder_restore(rwkv_encoder *e, const uint8_t *bytes, size_t n, rwkv_error *err)
{
    const rwkv_tokenizer *t = e->t;
    if (n > t->max_pending)
        return rwkv_fail(err, "encoder restore: %zu held bytes, but a %s encoder holds at "
                         "most %zu", n, t->kind_name, t->max_pending);
    if (n > 0 && !t->ops->pending_ok(t, bytes, n))
        return rwkv_fail(err, "encoder restore: the %zu held bytes are not a state a %s "
                         "encoder can be in (not an unfinished token)", n, t->kind_name);
    memmove(e->held, bytes, n);
    e->n_held = n;
    return 0;
}
