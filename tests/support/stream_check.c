/* stream_check.c — see stream_check.h. */
#include "tests/support/stream_check.h"

#include <stdio.h>
#include <string.h>

#include "tests/testutil.h"

int ids_same(const rwkv_ids *a, const rwkv_ids *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof *a->v) == 0);
}

/* Streams buf in pieces of 1..max_piece bytes (random); after every feed
 * checks the held bytes (the text's last bytes, at most max_pending), and
 * with ckpt_every > 0 moves them to a new encoder through pending/restore
 * every ckpt_every feeds.  0 when the ids equal want. */
int stream_check(const rwkv_tokenizer *tok, const uint8_t *buf, size_t n, size_t max_piece,
                 unsigned ckpt_every, uint64_t *seed, const rwkv_ids *want, char *why,
                 size_t why_n)
{
    rwkv_encoder *e = rwkv_encoder_new(tok);
    rwkv_ids got = {0};
    rwkv_error err = {{0}};
    int rc = e ? 0 : -1;
    size_t pos = 0;
    unsigned feeds = 0;
    while (rc == 0 && pos < n) {
        size_t k = 1 + (size_t)(test_rand(seed) % max_piece);
        if (k > n - pos)
            k = n - pos;
        rc = rwkv_encoder_feed(e, buf + pos, k, &got, &err);
        pos += k;
        const uint8_t *held;
        size_t nh = rwkv_encoder_pending(e, &held);
        if (rc == 0 && (nh > rwkv_tokenizer_max_pending(tok) || nh > pos ||
                        memcmp(held, buf + pos - nh, nh) != 0)) {
            snprintf(why, why_n, "bad held tail (%zu bytes) at %zu", nh, pos);
            rc = -2;
        }
        if (rc == 0 && ckpt_every && ++feeds % ckpt_every == 0) {
            uint8_t saved[1024];
            memcpy(saved, held, nh);
            rwkv_encoder_free(e);
            e = rwkv_encoder_new(tok);
            if (!e || rwkv_encoder_restore(e, saved, nh, &err) != 0) {
                snprintf(why, why_n, "restore of %zu held bytes refused: %s", nh, err.msg);
                rc = -2;
            }
        }
    }
    if (rc == 0)
        rc = rwkv_encoder_finish(e, &got, &err);
    if (rc == -1)
        snprintf(why, why_n, "error: %s", err.msg);
    if (rc == 0 && !ids_same(&got, want)) {
        size_t i = 0;
        while (i < got.n && i < want->n && got.v[i] == want->v[i])
            i++;
        snprintf(why, why_n, "%zu ids vs %zu whole, first difference at %zu", got.n, want->n, i);
        rc = -3;
    }
    rwkv_ids_free(&got);
    rwkv_encoder_free(e);
    return rc;
}
