/* segments.c — see segments.h. */
#include "daemon/segments.h"

#include <stdlib.h>
#include <string.h>

#include "core/msg_segments.h"
#include "daemon/outputs.h"
#include "daemon/server.h"

typedef struct {
    rwkv_segment *v;
    size_t n, cap;
} seg_list;

static int collect(void *ctx, const rwkv_segment *g)
{
    seg_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        rwkv_segment *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *g;
    return 0;
}

int rwkvd_segments_block(rwkvd_server *srv, rwkvd_session *s, const uint32_t *tokens, int n,
                         const float *sur, bool last, uint64_t block, rwkv_error *err)
{
    /* work on a copy: the session's segmenter moves on only with the message out */
    rwkv_segmenter *next = malloc(sizeof *next);
    if (!next)
        return rwkv_fail(err, "out of memory segmenting a block");
    *next = *s->seg;
    seg_list l = {0};
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        const uint8_t *b;
        size_t len;
        if (rwkv_tokenizer_token_bytes(srv->tok, tokens[i], &b, &len) != 0) {
            rc = rwkv_fail(err, "token %u has no bytes and cannot be placed in a segment",
                           tokens[i]);
            break;
        }
        if (rwkv_segmenter_token(next, b, len, sur[i], collect, &l) != 0)
            rc = rwkv_fail(err, "out of memory collecting segments");
    }
    if (rc == 0 && last && rwkv_segmenter_finish(next, collect, &l) != 0)
        rc = rwkv_fail(err, "out of memory collecting segments");
    if (rc == 0 && l.n > 0) {
        rwkvd_segments_out o = {.block = block, .segs = l.v, .n = l.n,
                                .text = next->cfg.text_cap > 0};
        rc = rwkvd_queue_segments(srv, s, &o, err);
    }
    if (rc == 0)
        *s->seg = *next;
    free(l.v);
    free(next);
    return rc;
}
