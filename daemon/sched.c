/* sched.c — one engine batch: take documents with a ready block from the
 * FIFO (one block each, in order, so a document's blocks stay in sequence),
 * run them together through rwkv_forward, turn the results into block
 * messages, and emit the final message of documents that reached eof.
 *
 * The engine's batch invariance (core/forward.h) makes a block's results
 * independent of which other documents share its batch, so a block computed
 * again after a restart is byte-identical to the first time. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/outputs.h"
#include "daemon/server.h"
#include "daemon/topk.h"

typedef struct {
    rwkvd_session *s;
    int n;            /* tokens in the block */
    bool last;        /* no token follows (eof) */
    float *emb;       /* [C] hidden at the last token (pooling last) */
    float *logits;    /* [V] (logits_last only) or [n][V] (top-k) */
    float *sur;       /* [n] engine surprisal: of the token after each */
} job;

static void job_free(job *j)
{
    free(j->emb);
    free(j->logits);
    free(j->sur);
}

/* Prepares the engine request of one ready block. */
static int prepare(rwkvd_server *srv, job *j, rwkv_request *q)
{
    rwkvd_session *s = j->s;
    size_t C = (size_t)srv->mi->n_embd, V = (size_t)srv->mi->vocab_size;
    uint32_t out = s->opts.outputs;
    j->n = (int)(s->pending.n < s->block_size ? s->pending.n : s->block_size);
    j->last = s->pending.n <= s->block_size; /* only at eof */
    memset(q, 0, sizeof *q);
    q->state = s->state;
    q->tokens = s->pending.v;
    q->n_tokens = j->n;
    /* the last ln_out is always kept: the final message may need it */
    j->emb = malloc(C * sizeof(float));
    q->hidden = RWKV_HIDDEN_LAST;
    q->hidden_out = j->emb;
    if ((out & RWKVD_OUT_EMBEDDING) && s->opts.pooling == RWKVD_POOL_MEAN)
        q->hidden_sum = s->mean_sum;
    if (out & RWKVD_OUT_TOPK) {
        j->logits = malloc((size_t)j->n * V * sizeof(float));
        q->logits = RWKV_LOGITS_ALL;
        q->logits_out = j->logits;
    } else if (out & RWKVD_OUT_LOGITS_LAST) {
        j->logits = malloc(V * sizeof(float));
        q->logits = RWKV_LOGITS_LAST;
        q->logits_out = j->logits;
    }
    if (out & RWKVD_OUT_SURPRISAL) {
        j->sur = malloc((size_t)j->n * sizeof(float));
        q->surprisal_out = j->sur;
        q->next_token = j->last ? -1 : (int64_t)s->pending.v[j->n];
    } else {
        q->next_token = -1;
    }
    return j->emb && (!q->logits || j->logits) && (!q->surprisal_out || j->sur) ? 0 : -1;
}

static void fail_doc(rwkvd_server *srv, rwkvd_session *s, rwkvd_reason r, const char *why)
{
    s->failed = true;
    rwkvd_emit_error(srv, s->doc, s->doc_len, false, 0, r, why, false, 0);
}

/* Block message of a finished engine job, and the session's bookkeeping. */
static void finish_block(rwkvd_server *srv, job *j)
{
    rwkvd_session *s = j->s;
    size_t C = (size_t)srv->mi->n_embd, V = (size_t)srv->mi->vocab_size;
    uint32_t out = s->opts.outputs;
    rwkvd_block_out b = {.block = s->blocks_done,
                         .tok_start = s->tokens_done,
                         .tok_end = s->tokens_done + (uint64_t)j->n,
                         .outputs = out,
                         .vocab = (uint32_t)V};
    float *emb = NULL, *sur = NULL, *lp = NULL;
    uint32_t *ids = NULL;
    rwkv_error err;
    int rc = 0;
    if (out & RWKVD_OUT_EMBEDDING) {
        emb = malloc(C * sizeof(float));
        if (emb && s->opts.pooling == RWKVD_POOL_MEAN) {
            uint64_t cnt = s->mean_count + (uint64_t)j->n;
            for (size_t c = 0; c < C; c++)
                emb[c] = (float)(s->mean_sum[c] / (double)cnt);
        } else if (emb) {
            memcpy(emb, j->emb, C * sizeof(float));
        }
        if (emb && s->opts.normalize)
            rwkvd_l2_normalize(emb, C);
        b.embedding = emb;
        rc |= !emb;
    }
    if (out & RWKVD_OUT_LOGITS_LAST)
        b.logits_last = (out & RWKVD_OUT_TOPK) ? j->logits + (size_t)(j->n - 1) * V : j->logits;
    if (out & RWKVD_OUT_TOPK) {
        b.k = s->opts.topk < V ? s->opts.topk : (uint32_t)V;
        ids = malloc((size_t)j->n * b.k * sizeof *ids);
        lp = malloc((size_t)j->n * b.k * sizeof *lp);
        if (ids && lp)
            rwkvd_topk_rows(j->logits, (size_t)j->n, (uint32_t)V, b.k, ids, lp);
        b.topk_ids = ids;
        b.topk_logprobs = lp;
        rc |= !ids || !lp;
    }
    /* surprisal of the block's tokens: the first comes from the block
     * before (carried), the others from this block's predictions */
    double add_sum = 0;
    uint64_t add_cnt = 0;
    if (out & RWKVD_OUT_SURPRISAL) {
        sur = malloc((size_t)j->n * sizeof(float));
        if (sur) {
            sur[0] = (s->tokens_done > 0 && s->has_carry) ? s->carry_surprisal : NAN;
            for (int t = 1; t < j->n; t++)
                sur[t] = j->sur[t - 1];
            for (int t = 0; t < j->n; t++)
                if (!isnan(sur[t]))
                    add_sum += sur[t], add_cnt++;
        }
        b.surprisal = sur;
        rc |= !sur;
    }
    if (rc == 0)
        rc = rwkvd_queue_block(srv, s, &b, &err);
    else
        rwkv_fail(&err, "out of memory assembling a block");
    free(emb);
    free(sur);
    free(ids);
    free(lp);
    if (rc != 0) {
        LOG_ERROR("block %llu of a document could not be queued: %s",
                  (unsigned long long)b.block, err.msg);
        fail_doc(srv, s, RWKVD_R_OVERLOADED, err.msg);
        return;
    }
    /* the block is out (queued and journaled): advance the document */
    if (s->opts.pooling == RWKVD_POOL_MEAN && (out & RWKVD_OUT_EMBEDDING))
        s->mean_count += (uint64_t)j->n;
    memcpy(s->last_emb, j->emb, C * sizeof(float));
    s->has_last_emb = true;
    s->surprisal_sum += add_sum;
    s->surprisal_count += add_cnt;
    s->has_carry = (out & RWKVD_OUT_SURPRISAL) && !j->last && !isnan(j->sur[j->n - 1]);
    s->carry_surprisal = s->has_carry ? j->sur[j->n - 1] : 0;
    memmove(s->pending.v, s->pending.v + j->n, (s->pending.n - (size_t)j->n) * sizeof(uint32_t));
    s->pending.n -= (size_t)j->n;
    srv->pending_tokens -= (uint64_t)j->n;
    s->blocks_done++;
    s->tokens_done += (uint64_t)j->n;
    srv->stats.blocks_total++;
    srv->stats.tokens_total += (uint64_t)j->n;
    if (!s->dirty) {
        s->dirty = true;
        s->dirty_since = rwkvd_now();
    }
}

/* The final message of a document whose eof has been processed. */
static void finish_doc(rwkvd_server *srv, rwkvd_session *s)
{
    size_t C = (size_t)srv->mi->n_embd;
    uint32_t out = s->opts.outputs;
    rwkvd_final_out f = {.tokens = s->tokens_done, .blocks = s->blocks_done, .outputs = out};
    float *emb = NULL;
    if ((out & RWKVD_OUT_EMBEDDING) && s->tokens_done > 0) {
        emb = malloc(C * sizeof(float));
        if (!emb) {
            fail_doc(srv, s, RWKVD_R_OVERLOADED, "out of memory for the final message");
            return;
        }
        if (s->opts.pooling == RWKVD_POOL_MEAN)
            for (size_t c = 0; c < C; c++)
                emb[c] = (float)(s->mean_sum[c] / (double)s->mean_count);
        else
            memcpy(emb, s->last_emb, C * sizeof(float));
        if (s->opts.normalize)
            rwkvd_l2_normalize(emb, C);
        f.embedding = emb;
    }
    if ((out & RWKVD_OUT_SURPRISAL) && s->surprisal_count > 0) {
        f.has_mean_surprisal = true;
        f.mean_surprisal = s->surprisal_sum / (double)s->surprisal_count;
    }
    rwkv_error err;
    int rc = rwkvd_queue_final(srv, s, &f, &err);
    free(emb);
    if (rc != 0) {
        fail_doc(srv, s, RWKVD_R_OVERLOADED, err.msg);
        return;
    }
    s->finished = true;
    s->dirty = true;
    srv->stats.docs_finished_total++;
    /* finished documents live on disk only */
    if (rwkvd_session_evict(srv, s, &err) != 0) {
        char d[96];
        rwkvd_log_doc(s->doc, s->doc_len, d);
        LOG_ERROR("document %s finished but its checkpoint failed: %s", d, err.msg);
    }
}

bool rwkvd_run_batch(rwkvd_server *srv)
{
    job jobs[RWKVD_BATCH_DOCS];
    rwkv_request reqs[RWKVD_BATCH_DOCS];
    rwkvd_session *finals[RWKVD_BATCH_DOCS];
    int n = 0, n_final = 0, tokens = 0;
    size_t pending_before = srv->ready_len;
    /* one block per document per batch keeps every document's blocks in order */
    for (size_t k = 0; k < pending_before && n < RWKVD_BATCH_DOCS && n_final < RWKVD_BATCH_DOCS;
         k++) {
        rwkvd_session *s = rwkvd_ready_pop(srv);
        if (!s)
            break;
        if (!rwkvd_session_ready(s))
            continue;
        if (s->pending.n == 0) { /* eof and nothing left: final only */
            finals[n_final++] = s;
            continue;
        }
        int blk = (int)(s->pending.n < s->block_size ? s->pending.n : s->block_size);
        if (n > 0 && tokens + blk > RWKVD_BATCH_TOKENS) {
            rwkvd_ready_push(srv, s); /* next batch */
            break;
        }
        memset(&jobs[n], 0, sizeof jobs[n]);
        jobs[n].s = s;
        if (prepare(srv, &jobs[n], &reqs[n]) != 0) {
            job_free(&jobs[n]);
            fail_doc(srv, s, RWKVD_R_OVERLOADED, "out of memory preparing a block");
            continue;
        }
        tokens += blk;
        n++;
    }
    if (n == 0 && n_final == 0)
        return false;
    if (n > 0) {
        rwkv_error err;
        if (rwkv_forward(srv->engine, reqs, n, &err) != 0) {
            LOG_ERROR("engine failed on a batch of %d documents: %s", n, err.msg);
            for (int i = 0; i < n; i++)
                fail_doc(srv, jobs[i].s, RWKVD_R_ENGINE, err.msg);
        } else {
            for (int i = 0; i < n; i++)
                finish_block(srv, &jobs[i]);
        }
        for (int i = 0; i < n; i++) {
            job_free(&jobs[i]);
            rwkvd_session *s = jobs[i].s;
            if (s->eof && s->pending.n == 0 && !s->finished && !s->failed &&
                n_final < RWKVD_BATCH_DOCS)
                finals[n_final++] = s;
            else
                rwkvd_ready_push(srv, s);
        }
    }
    for (int i = 0; i < n_final; i++)
        finish_doc(srv, finals[i]);
    return true;
}
