/* checkpoint.c — the consistency rules every snapshot obeys, shared by the
 * encoder (ckpt_encode.c) and the decoder (ckpt_decode.c), and the small
 * struct helpers (see checkpoint.h for the format).
 */
#include "daemon/checkpoint.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ckpt_internal.h"

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
    ck->state = NULL;
    ck->segment_state = NULL;
}

const char *rwkvd_ckpt_precision_name(unsigned precision)
{
    static const char *const names[] = {"fp32", "bf16", "int8", "mixed"};
    return precision < sizeof names / sizeof names[0] ? names[precision] : "?";
}

uint8_t rwkvd_ckpt_precision_continued(uint8_t recorded, uint8_t running, uint64_t tokens_done)
{
    if (recorded == running || tokens_done == 0)
        return running;
    return RWKVD_CKPT_PRECISION_MIXED;
}

uint32_t rwkvd_ckpt_version(const rwkvd_ckpt *ck)
{
    return rwkvd_ckpt_version_of(ck->fence != 0, ck->opts.pooling == RWKVD_POOL_EOS);
}

size_t rwkvd_ckpt_header_size(const rwkvd_ckpt *ck)
{
    return rwkvd_ckpt_header_bytes(rwkvd_ckpt_version(ck), ck->doc_len);
}

bool rwkvd_ckpt_has_sum(const rwkvd_doc_opts *o)
{
    return o->pooling == RWKVD_POOL_MEAN || o->pooling == RWKVD_POOL_EOS;
}

uint32_t rwkvd_ckpt_flags(const rwkvd_ckpt *ck)
{
    return (ck->finished ? RWKVD_CKPT_FL_FINISHED : 0) | (ck->state ? RWKVD_CKPT_FL_STATE : 0) |
           (ck->last_emb ? RWKVD_CKPT_FL_LAST_EMB : 0) | (ck->has_carry ? RWKVD_CKPT_FL_CARRY : 0) |
           (ck->eof ? RWKVD_CKPT_FL_EOF : 0) |
           (ck->segment_state ? RWKVD_CKPT_FL_SEGMENTS : 0) |
           ((uint32_t)ck->model.precision << RWKVD_CKPT_FL_PRECISION_SHIFT);
}

uint64_t rwkvd_ckpt_raw_size(const rwkvd_ckpt *ck, uint32_t flags)
{
    uint64_t c = ck->model.n_embd, n = 0;
    if (rwkvd_ckpt_has_sum(&ck->opts))
        n += 8 * c;
    if (flags & RWKVD_CKPT_FL_STATE)
        n += 4 * ck->model.state_floats;
    if (flags & RWKVD_CKPT_FL_LAST_EMB)
        n += 4 * c;
    if (flags & RWKVD_CKPT_FL_SEGMENTS)
        n += RWKV_SEGMENTER_BYTES;
    return n + 4 * (uint64_t)ck->n_pending_tokens + ck->n_pending_bytes;
}

int rwkvd_ckpt_check_scalars(const rwkvd_ckpt *ck, uint32_t flags, rwkv_error *why)
{
    const rwkvd_model_id *m = &ck->model;
    if (ck->doc_len < 1 || ck->doc_len > RWKVD_DOC_MAX)
        return rwkv_fail(why, "doc id length %zu not in 1..%d", ck->doc_len, RWKVD_DOC_MAX);
    if (m->n_layer < 1 || m->n_layer > RWKVD_CKPT_LAYER_MAX || m->n_embd < 1 ||
        m->n_embd > RWKVD_CKPT_EMBD_MAX || m->vocab < 1 || m->vocab > RWKVD_CKPT_VOCAB_MAX ||
        m->state_floats < 1 || m->state_floats > RWKVD_CKPT_STATE_MAX)
        return rwkv_fail(why, "model shape out of range (n_layer %u, n_embd %u, vocab %u, state %llu)",
                         m->n_layer, m->n_embd, m->vocab, (unsigned long long)m->state_floats);
    if (m->precision > RWKVD_CKPT_PRECISION_MAX)
        return rwkv_fail(why, "precision %u unknown (0 fp32, 1 bf16, 2 int8, 3 mixed)",
                         m->precision);
    if (m->precision == RWKVD_CKPT_PRECISION_MIXED && ck->tokens_done == 0)
        return rwkv_fail(why, "precision mixed in a document with no completed block (nothing "
                              "was computed in any precision yet)");
    if (ck->block_size < 1 || ck->block_size > RWKVD_BLOCK_MAX)
        return rwkv_fail(why, "block size %u not in 1..%d", ck->block_size, RWKVD_BLOCK_MAX);
    rwkv_error e;
    if (rwkvd_doc_opts_check(&ck->opts, &e) != 0)
        return rwkv_fail(why, "options: %s", e.msg);
    if (ck->opts.has_task != (ck->opts.pooling == RWKVD_POOL_EOS))
        return rwkv_fail(why, "options: a task without eos pooling");
    if (ck->opts.pooling != RWKVD_POOL_EOS && (ck->opts.eos_every || ck->since_eos))
        return rwkv_fail(why, "options: eos_every without eos pooling");
    if (ck->opts.eos_every && ck->since_eos >= ck->opts.eos_every)
        return rwkv_fail(why, "%u tokens since the last EOS, but one goes after every %u",
                         ck->since_eos, ck->opts.eos_every);
    if (ck->since_eos > ck->tokens_done + ck->n_pending_tokens)
        return rwkv_fail(why, "%u tokens since the last EOS, more than the document has",
                         ck->since_eos);
    if ((flags & RWKVD_CKPT_FL_SEGMENTS) && ck->input == RWKVD_INPUT_TOKENS)
        return rwkv_fail(why, "segment state in a document fed token ids");
    if ((unsigned)ck->input > RWKVD_INPUT_TOKENS)
        return rwkv_fail(why, "input kind %d unknown", (int)ck->input);
    if (ck->next_seq > RWKVD_SEQ_MAX + 1)
        return rwkv_fail(why, "next seq %llu above 2^53", (unsigned long long)ck->next_seq);
    if (ck->n_pending_bytes > RWKVD_CKPT_PENDING_BYTES_MAX)
        return rwkv_fail(why, "%zu pending tokenizer bytes, at most %d", ck->n_pending_bytes,
                         RWKVD_CKPT_PENDING_BYTES_MAX);
    if (ck->n_pending_tokens > RWKVD_CKPT_PENDING_TOKENS_MAX)
        return rwkv_fail(why, "%zu pending tokens, at most %llu", ck->n_pending_tokens,
                         (unsigned long long)RWKVD_CKPT_PENDING_TOKENS_MAX);
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
    if ((flags & RWKVD_CKPT_FL_EOF) && (flags & RWKVD_CKPT_FL_FINISHED))
        return rwkv_fail(why, "flags say both finished and waiting for the final message");
    if ((flags & RWKVD_CKPT_FL_EOF) && ck->n_pending_bytes)
        return rwkv_fail(why, "tokenizer bytes held after eof (eof flushes them)");
    if (flags & RWKVD_CKPT_FL_FINISHED) {
        if (ck->n_pending_bytes || ck->n_pending_tokens)
            return rwkv_fail(why, "a finished document with pending input");
    } else {
        if (ck->tokens_done != max_tok)
            return rwkv_fail(why, "an unfinished document whose blocks are not all full");
        if (!(flags & RWKVD_CKPT_FL_STATE))
            return rwkv_fail(why, "an unfinished document without its recurrent state");
    }
    if (ck->mean_count > ck->tokens_done || ck->surprisal_count > ck->tokens_done)
        return rwkv_fail(why, "pooling counts above the token count");
    if (!rwkvd_ckpt_has_sum(&ck->opts) && ck->mean_count)
        return rwkv_fail(why, "a mean count without mean or eos pooling");
    if (!isfinite(ck->surprisal_sum) || ck->surprisal_sum < 0)
        return rwkv_fail(why, "surprisal sum %g is not a finite non-negative number",
                         ck->surprisal_sum);
    if ((flags & RWKVD_CKPT_FL_LAST_EMB) && ck->tokens_done == 0)
        return rwkv_fail(why, "per-token vectors in a document with no completed block");
    if (flags & RWKVD_CKPT_FL_CARRY) {
        if (!(ck->carry_surprisal >= 0) || !isfinite(ck->carry_surprisal))
            return rwkv_fail(why, "carried surprisal %g is not a finite non-negative number",
                             (double)ck->carry_surprisal);
        if (ck->tokens_done == 0 || ck->n_pending_tokens == 0)
            return rwkv_fail(why, "a carried surprisal without a completed block and a "
                                  "pending token");
    }
    return 0;
}

static int check_f32(const float *v, uint64_t n, const char *what, rwkv_error *why)
{
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return rwkv_fail(why, "%s[%llu] is not finite", what, (unsigned long long)i);
    return 0;
}

int rwkvd_ckpt_check_arrays(const rwkvd_ckpt *ck, rwkv_error *why)
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
        (ck->state && check_f32(ck->state, ck->model.state_floats, "state", why)))
        return -1;
    if (ck->opts.segment != (ck->segment_state != NULL))
        return rwkv_fail(why, "segment state given iff opts.segment");
    if (ck->segment_state) {
        rwkv_segmenter sg;
        if (rwkv_segmenter_load(&sg, ck->segment_state, RWKV_SEGMENTER_BYTES, "segment state",
                                why) != 0)
            return -1;
        if (!rwkv_seg_config_equal(&sg.cfg, &ck->opts.seg))
            return rwkv_fail(why, "segment state: options differ from the document's");
        if (sg.tok_pos != ck->tokens_done)
            return rwkv_fail(why, "segment state: %llu tokens segmented, %llu in blocks",
                             (unsigned long long)sg.tok_pos, (unsigned long long)ck->tokens_done);
    }
    return 0;
}
