/* output_stage.c — see output_stage.h. */
#include "daemon/output_stage.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/embedding.h"
#include "daemon/checkpoint.h"
#include "daemon/embed_doc.h"

rwkvd_out_head rwkvd_stage_head(const rwkvd_out_head *tmpl, const uint8_t *doc, size_t doc_len,
                                uint64_t incarnation, const rwkvd_doc_opts *opts,
                                uint8_t precision)
{
    rwkvd_out_head h = *tmpl;
    h.doc = doc;
    h.doc_len = doc_len;
    h.incarnation = incarnation;
    h.pooling = opts->pooling;
    h.normalize = opts->normalize;
    h.precision = rwkvd_ckpt_precision_name(precision);
    h.v = opts->pooling == RWKVD_POOL_EOS ? 2 : 1; /* EmbeddingRWKV outputs are v 2 */
    return h;
}

void rwkvd_l2_normalize(float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    if (s <= 0)
        return;
    float inv = (float)(1.0 / sqrt(s));
    for (size_t i = 0; i < n; i++)
        v[i] *= inv;
}

void rwkvd_block_job_free(rwkvd_block_job *job)
{
    free(job->emb);
    free(job->logits);
    free(job->sur);
    free(job->ids);
    free(job->lp);
    memset(job, 0, sizeof *job);
}

int rwkvd_block_job_prepare(const rwkvd_doc_opts *opts, size_t C, size_t V, rwkv_state *state,
                            const uint32_t *tokens, int n, int64_t next_token,
                            rwkvd_running *run, rwkvd_block_job *job, rwkv_request *q)
{
    uint32_t out = opts->outputs;
    memset(job, 0, sizeof *job);
    memset(q, 0, sizeof *q);
    job->n = n;
    job->last = next_token < 0;
    q->state = state;
    q->tokens = tokens;
    q->n_tokens = n;
    /* the last ln_out is always kept: the final message may need it */
    job->emb = malloc(C * sizeof(float));
    q->hidden = RWKV_HIDDEN_LAST;
    q->hidden_out = job->emb;
    if ((out & RWKVD_OUT_EMBEDDING) && opts->pooling == RWKVD_POOL_MEAN)
        q->hidden_sum = run->mean_sum;
    if (opts->pooling == RWKVD_POOL_EOS) {
        q->eos_sum = run->mean_sum;
        q->eos_count = &job->eos_added;
        q->eos_id = RWKV_EMBED_EOS;
    }
    if (out & RWKVD_OUT_TOPK) {
        job->k = opts->topk < V ? opts->topk : (uint32_t)V;
        job->ids = malloc((size_t)n * job->k * sizeof *job->ids);
        job->lp = malloc((size_t)n * job->k * sizeof *job->lp);
        q->topk = (int)job->k;
        q->topk_ids = job->ids;
        q->topk_logprobs = job->lp;
    }
    if (out & RWKVD_OUT_LOGITS_LAST) {
        job->logits = malloc(V * sizeof(float));
        q->logits = RWKV_LOGITS_LAST;
        q->logits_out = job->logits;
    }
    q->next_token = -1;
    if ((out & RWKVD_OUT_SURPRISAL) || opts->segment) { /* segments score by surprisal */
        job->sur = malloc((size_t)n * sizeof(float));
        q->surprisal_out = job->sur;
        q->next_token = next_token;
    }
    return job->emb && (!q->logits || job->logits) && (!q->surprisal_out || job->sur) &&
                   (!q->topk || (job->ids && job->lp))
               ? 0
               : -1;
}

/* The document's embedding so far: the mean over count tokens of the summed
 * ln_out, or the last one; unit length when asked. */
static void pooled(const rwkvd_doc_opts *opts, size_t C, const double *sum, uint64_t count,
                   const float *last, float *emb)
{
    if (opts->pooling == RWKVD_POOL_MEAN)
        for (size_t c = 0; c < C; c++)
            emb[c] = (float)(sum[c] / (double)count);
    else
        memcpy(emb, last, C * sizeof(float));
    if (opts->normalize)
        rwkvd_l2_normalize(emb, C);
}

void rwkvd_stage_block(const rwkvd_doc_opts *opts, size_t C, size_t V, const rwkvd_running *run,
                       uint64_t tokens_done, const rwkvd_block_job *job, float *emb, float *sur,
                       rwkvd_block_out *b, double *add_sum, uint64_t *add_cnt,
                       const rwkv_model *m)
{
    uint32_t out = opts->outputs;
    b->outputs = out;
    b->vocab = (uint32_t)V;
    *add_sum = 0;
    *add_cnt = 0;
    if (opts->pooling == RWKVD_POOL_EOS) {
        /* the running embedding, once there is one */
        char why[8];
        uint64_t eos = run->mean_count + (uint64_t)job->eos_added;
        if ((out & RWKVD_OUT_EMBEDDING) &&
            rwkvd_embed_current(m, opts, run->mean_sum, eos, emb, why, sizeof why))
            b->embedding = emb;
        else
            b->outputs &= ~(uint32_t)RWKVD_OUT_EMBEDDING;
    } else if (out & RWKVD_OUT_EMBEDDING) {
        /* the engine has already added this block to the mean's sum */
        pooled(opts, C, run->mean_sum, run->mean_count + (uint64_t)job->n, job->emb, emb);
        b->embedding = emb;
    }
    if (out & RWKVD_OUT_LOGITS_LAST)
        b->logits_last = job->logits;
    if (out & RWKVD_OUT_TOPK) {
        b->k = job->k;
        b->topk_ids = job->ids;
        b->topk_logprobs = job->lp;
    }
    /* surprisal of the block's tokens: the first comes from the block
     * before (carried), the others from this block's predictions */
    if (job->sur) {
        sur[0] = (tokens_done > 0 && run->has_carry) ? run->carry_surprisal : NAN;
        for (int t = 1; t < job->n; t++)
            sur[t] = job->sur[t - 1];
    }
    if (out & RWKVD_OUT_SURPRISAL) {
        for (int t = 0; t < job->n; t++)
            if (!isnan(sur[t]))
                *add_sum += sur[t], (*add_cnt)++;
        b->surprisal = sur;
    }
}

void rwkvd_stage_advance(const rwkvd_doc_opts *opts, size_t C, const rwkvd_block_job *job,
                         double add_sum, uint64_t add_cnt, rwkvd_running *run)
{
    uint32_t out = opts->outputs;
    if (opts->pooling == RWKVD_POOL_MEAN && (out & RWKVD_OUT_EMBEDDING))
        run->mean_count += (uint64_t)job->n;
    if (opts->pooling == RWKVD_POOL_EOS)
        run->mean_count += (uint64_t)job->eos_added;
    memcpy(run->last_emb, job->emb, C * sizeof(float));
    run->has_last_emb = true;
    run->surprisal_sum += add_sum;
    run->surprisal_count += add_cnt;
    run->has_carry = job->sur && !job->last && !isnan(job->sur[job->n - 1]);
    run->carry_surprisal = run->has_carry ? job->sur[job->n - 1] : 0;
}

void rwkvd_stage_final(const rwkvd_doc_opts *opts, size_t C, const rwkvd_running *run,
                       uint64_t tokens_done, uint64_t blocks_done, float *emb, rwkvd_final_out *f,
                       const rwkv_model *m, char *why, size_t why_len)
{
    uint32_t out = opts->outputs;
    memset(f, 0, sizeof *f);
    f->tokens = tokens_done;
    f->blocks = blocks_done;
    f->outputs = out;
    if (opts->pooling == RWKVD_POOL_EOS) {
        if (!(out & RWKVD_OUT_EMBEDDING))
            return;
        if (rwkvd_embed_current(m, opts, run->mean_sum, run->mean_count, emb, why, why_len))
            f->embedding = emb;
        else
            f->embedding_error = why;
        return;
    }
    if ((out & RWKVD_OUT_EMBEDDING) && tokens_done > 0) {
        pooled(opts, C, run->mean_sum, run->mean_count, run->last_emb, emb);
        f->embedding = emb;
    }
    if ((out & RWKVD_OUT_SURPRISAL) && run->surprisal_count > 0) {
        f->has_mean_surprisal = true;
        f->mean_surprisal = run->surprisal_sum / (double)run->surprisal_count;
    }
}
