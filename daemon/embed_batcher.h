/* embed_batcher.h — one worker thread with an engine of its own that embeds
 * short inputs (EmbeddingRWKV, core/embedding.h) for any number of client
 * threads: jobs queued while it runs are taken together into the next
 * rwkv_forward calls (up to EMBED_BATCH_INPUTS inputs each), so concurrent
 * callers share passes.  Used by http_embeddings.c. */
#ifndef RWKVD_EMBED_BATCHER_H
#define RWKVD_EMBED_BATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/embedding.h"
#include "core/error.h"
#include "core/forward.h"
#include "core/model.h"

typedef struct rwkvd_embed_batcher rwkvd_embed_batcher;

/* One caller's inputs: ids[i][0..n[i]) each holding at least one EOS. */
typedef struct rwkvd_embed_job {
    const uint32_t *const *ids;
    const size_t *n;
    size_t n_inputs;
    rwkv_embed_task task;
    bool normalize;
    float *out;                 /* [n_inputs][n_embd], filled on success */
    /* set by the worker */
    int rc;
    char err[RWKV_ERROR_MAX];
    bool done;
    struct rwkvd_embed_job *next;
} rwkvd_embed_job;

/* The engine is made with eo (device, threads, precision: the daemon's, so
 * that /v1/embeddings computes what the ingest socket would).  NULL with err
 * when it cannot be made (device, precision, memory). */
rwkvd_embed_batcher *rwkvd_embed_batcher_new(const rwkv_model *m, const rwkv_engine_opts *eo,
                                             rwkv_error *err);
/* The precision the engine computes in (never auto). */
rwkv_precision rwkvd_embed_batcher_precision(const rwkvd_embed_batcher *b);
/* Queues the job and waits for it: 0, or -1 with job->err. */
int rwkvd_embed_batcher_run(rwkvd_embed_batcher *b, rwkvd_embed_job *job);
/* Inputs and passes run so far (for tests and the log). */
void rwkvd_embed_batcher_counts(rwkvd_embed_batcher *b, uint64_t *inputs, uint64_t *calls);
/* Stops the worker (queued jobs fail "shutting down") and frees; NULL ok. */
void rwkvd_embed_batcher_free(rwkvd_embed_batcher *b);

#endif
