/* sched.c — one engine batch: take documents with a ready block from the
 * FIFO (one block each, in order, so a document's blocks stay in sequence),
 * run them together through rwkv_forward, turn the results into block
 * messages, and emit the final message of documents that reached eof.
 *
 * The engine's batch invariance (core/forward.h) makes a block's results
 * independent of which other documents share its batch, so a block computed
 * again after a restart is byte-identical to the first time. */
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/output_stage.h"
#include "daemon/outputs.h"
#include "daemon/segments.h"
#include "daemon/server.h"

typedef struct {
    rwkvd_session *s;
    rwkvd_block_job out; /* the engine outputs the block asked for */
} job;

/* Prepares the engine request of one ready block. */
static int prepare(rwkvd_server *srv, job *j, rwkv_request *q)
{
    rwkvd_session *s = j->s;
    size_t C = (size_t)srv->mi->n_embd, V = (size_t)srv->mi->vocab_size;
    int n = (int)(s->pending.n < s->block_size ? s->pending.n : s->block_size);
    bool last = s->pending.n <= s->block_size; /* only at eof */
    return rwkvd_block_job_prepare(&s->opts, C, V, s->state, s->pending.v, n,
                                   last ? -1 : (int64_t)s->pending.v[n], &s->run, &j->out, q);
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
    const rwkvd_block_job *o = &j->out;
    size_t C = (size_t)srv->mi->n_embd, V = (size_t)srv->mi->vocab_size;
    rwkvd_block_out b = {.block = s->blocks_done,
                         .tok_start = s->tokens_done,
                         .tok_end = s->tokens_done + (uint64_t)o->n};
    float *emb = malloc(C * sizeof(float)), *sur = malloc((size_t)o->n * sizeof(float));
    double add_sum;
    uint64_t add_cnt;
    rwkv_error err;
    int rc;
    if (emb && sur) {
        rwkvd_stage_block(&s->opts, C, V, &s->run, s->tokens_done, o, emb, sur, &b, &add_sum,
                          &add_cnt, srv->model);
        rc = rwkvd_queue_block(srv, s, &b, &err);
    } else {
        rc = rwkv_fail(&err, "out of memory assembling a block");
    }
    if (rc == 0 && s->seg)
        rc = rwkvd_segments_block(srv, s, s->pending.v, o->n, sur, o->last, b.block, &err);
    free(emb);
    free(sur);
    if (rc != 0) {
        LOG_ERROR("block %llu of a document could not be queued: %s",
                  (unsigned long long)b.block, err.msg);
        fail_doc(srv, s, RWKVD_R_OVERLOADED, err.msg);
        return;
    }
    /* the block is out (queued and journaled): advance the document */
    rwkvd_stage_advance(&s->opts, C, o, add_sum, add_cnt, &s->run);
    memmove(s->pending.v, s->pending.v + o->n, (s->pending.n - (size_t)o->n) * sizeof(uint32_t));
    s->pending.n -= (size_t)o->n;
    srv->pending_tokens -= (uint64_t)o->n;
    s->blocks_done++;
    s->tokens_done += (uint64_t)o->n;
    srv->stats.blocks_total++;
    srv->stats.tokens_total += (uint64_t)o->n;
    if (!s->dirty) {
        s->dirty = true;
        s->dirty_since = rwkvd_now();
    }
}

/* The final message of a document whose eof has been processed. */
static void finish_doc(rwkvd_server *srv, rwkvd_session *s)
{
    size_t C = (size_t)srv->mi->n_embd;
    float *emb = malloc(C * sizeof(float));
    if (!emb) {
        fail_doc(srv, s, RWKVD_R_OVERLOADED, "out of memory for the final message");
        return;
    }
    rwkvd_final_out f;
    char why[RWKV_ERROR_MAX];
    rwkvd_stage_final(&s->opts, C, &s->run, s->tokens_done, s->blocks_done, emb, &f, srv->model,
                      why, sizeof why);
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
    if (rwkvd_persist_evict(srv, s, &err) != 0) {
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
    size_t pending_before = srv->ready.len;
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
            rwkvd_block_job_free(&jobs[n].out);
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
            rwkvd_block_job_free(&jobs[i].out);
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
