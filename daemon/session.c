/* session.c — creating a document's session, and converting it to and
 * from its checkpoint snapshot (see session.h). */
#include "daemon/session.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/server.h"

static rwkvd_session *alloc_session(rwkvd_server *srv, const uint8_t *doc, size_t len,
                                    rwkv_error *err)
{
    size_t C = (size_t)srv->mi->n_embd;
    rwkvd_session *s = calloc(1, sizeof *s);
    if (!s) {
        rwkv_fail(err, "out of memory for a new document");
        return NULL;
    }
    memcpy(s->doc, doc, len);
    s->doc_len = len;
    s->hash = rwkvd_doc_hash(doc, len);
    s->enc = rwkv_encoder_new(srv->tok);
    s->state = rwkv_state_new(srv->model);
    s->run.last_emb = calloc(C, sizeof(float));
    s->run.mean_sum = calloc(C, sizeof(double));
    if (!s->enc || !s->state || !s->run.last_emb || !s->run.mean_sum) {
        rwkvd_session_free(s);
        rwkv_fail(err, "out of memory for a new document");
        return NULL;
    }
    rwkvd_doc_opts_default(&s->opts);
    s->block_size = (uint32_t)srv->cfg.block_size;
    s->precision = srv->model_id.precision;
    return s;
}

rwkvd_session *rwkvd_session_new(rwkvd_server *srv, const uint8_t *doc, size_t len,
                                 rwkv_error *err)
{
    return alloc_session(srv, doc, len, err);
}

rwkvd_session *rwkvd_session_from_ckpt(rwkvd_server *srv, const rwkvd_ckpt *ck, rwkv_error *err)
{
    rwkvd_session *s = alloc_session(srv, ck->doc, ck->doc_len, err);
    if (!s)
        return NULL;
    size_t C = (size_t)srv->mi->n_embd;
    s->started = ck->input != RWKVD_INPUT_NONE || ck->next_seq > 0;
    s->opts = ck->opts;
    s->block_size = ck->block_size;
    s->input = ck->input;
    s->next_seq = ck->next_seq;
    s->blocks_done = ck->blocks_done;
    s->tokens_done = ck->tokens_done;
    s->finished = ck->finished;
    s->eof = ck->eof || ck->finished;
    /* a checkpoint of another precision got here only by
     * --allow-precision-change (the store refuses it otherwise) */
    s->precision = rwkvd_ckpt_precision_continued(ck->model.precision, srv->model_id.precision,
                                                  ck->tokens_done);
    if (ck->state && rwkv_state_import(s->state, ck->state, ck->model.state_floats, err) != 0)
        goto fail;
    if (ck->n_pending_bytes &&
        rwkv_encoder_restore(s->enc, ck->pending_bytes, ck->n_pending_bytes, err) != 0)
        goto fail;
    for (size_t i = 0; i < ck->n_pending_tokens; i++)
        if (rwkv_ids_push(&s->pending, ck->pending_tokens[i], err) != 0)
            goto fail;
    if (ck->mean_sum)
        memcpy(s->run.mean_sum, ck->mean_sum, C * sizeof(double));
    s->run.mean_count = ck->mean_count;
    s->since_eos = ck->since_eos;
    if (ck->last_emb) {
        memcpy(s->run.last_emb, ck->last_emb, C * sizeof(float));
        s->run.has_last_emb = true;
    }
    s->run.surprisal_sum = ck->surprisal_sum;
    s->run.surprisal_count = ck->surprisal_count;
    s->run.has_carry = ck->has_carry;
    s->run.carry_surprisal = ck->carry_surprisal;
    if (ck->segment_state) {
        if (rwkvd_session_start_segments(s, &ck->opts, err) != 0 ||
            rwkv_segmenter_load(s->seg, ck->segment_state, RWKV_SEGMENTER_BYTES, "segment state",
                                err) != 0)
            goto fail;
    }
    s->on_disk = true;
    s->blocks_at_ckpt = ck->blocks_done;
    return s;
fail:
    rwkvd_session_free(s);
    return NULL;
}

int rwkvd_session_to_ckpt(rwkvd_server *srv, rwkvd_session *s, rwkvd_ckpt *ck, float **state_buf,
                          rwkv_error *err)
{
    memset(ck, 0, sizeof *ck);
    *state_buf = NULL;
    ck->model = srv->model_id;
    ck->model.precision = s->precision;
    memcpy(ck->doc, s->doc, s->doc_len);
    ck->doc_len = s->doc_len;
    ck->next_seq = s->next_seq;
    ck->blocks_done = s->blocks_done;
    ck->tokens_done = s->tokens_done;
    ck->block_size = s->block_size;
    ck->finished = s->finished;
    ck->eof = s->eof && !s->finished;
    ck->input = s->input;
    ck->opts = s->opts;
    const uint8_t *held;
    ck->n_pending_bytes = rwkv_encoder_pending(s->enc, &held);
    ck->pending_bytes = held;
    ck->pending_tokens = s->pending.v;
    ck->n_pending_tokens = s->pending.n;
    ck->mean_sum = s->opts.pooling == RWKVD_POOL_MEAN || s->opts.pooling == RWKVD_POOL_EOS
                       ? s->run.mean_sum
                       : NULL;
    ck->mean_count = s->run.mean_count;
    ck->since_eos = s->since_eos;
    ck->last_emb = s->run.has_last_emb ? s->run.last_emb : NULL;
    ck->surprisal_sum = s->run.surprisal_sum;
    ck->surprisal_count = s->run.surprisal_count;
    ck->has_carry = s->run.has_carry;
    ck->carry_surprisal = s->run.carry_surprisal;
    if (s->seg) {
        rwkv_segmenter_store(s->seg, s->seg_ckpt);
        ck->segment_state = s->seg_ckpt;
    }
    if (!s->finished) {
        *state_buf = malloc(srv->mi->state_floats * sizeof(float));
        if (!*state_buf)
            return rwkv_fail(err, "out of memory exporting a state");
        if (rwkv_state_export(s->state, *state_buf, err) != 0) {
            free(*state_buf);
            *state_buf = NULL;
            return -1;
        }
        ck->state = *state_buf;
    }
    return 0;
}

void rwkvd_session_free(rwkvd_session *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_held; i++)
        free(s->held[i].bytes);
    free(s->held);
    rwkv_encoder_free(s->enc);
    rwkv_ids_free(&s->pending);
    rwkv_state_free(s->state);
    free(s->run.mean_sum);
    free(s->run.last_emb);
    free(s->seg);
    free(s->seg_ckpt);
    free(s);
}

int rwkvd_session_start_segments(rwkvd_session *s, const rwkvd_doc_opts *opts, rwkv_error *err)
{
    if (!s->seg)
        s->seg = malloc(sizeof *s->seg);
    if (!s->seg_ckpt)
        s->seg_ckpt = malloc(RWKV_SEGMENTER_BYTES);
    if (!s->seg || !s->seg_ckpt)
        return rwkv_fail(err, "out of memory for the segment state");
    return rwkv_segmenter_init(s->seg, &opts->seg, err);
}

uint64_t rwkvd_session_tokens(const rwkvd_session *s)
{
    return s->tokens_done + s->pending.n;
}

bool rwkvd_session_ready(const rwkvd_session *s)
{
    if (s->finished || s->failed)
        return false;
    if (s->pending.n > s->block_size)
        return true;
    return s->eof; /* a last partial block, or the final message */
}
