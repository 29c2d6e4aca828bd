/* embed_batcher.c — see embed_batcher.h. */
#include "daemon/embed_batcher.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/forward.h"
#include "core/state.h"

/* Inputs per forward call: bounds the states held (one per input). */
#define EMBED_BATCH_INPUTS 64

struct rwkvd_embed_batcher {
    const rwkv_model *m;
    rwkv_engine *e;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    rwkvd_embed_job *head, *tail;
    bool stop;
    uint64_t inputs, calls;
    /* the worker's own buffers */
    rwkv_state *states[EMBED_BATCH_INPUTS];
    rwkv_request reqs[EMBED_BATCH_INPUTS];
    double *sums;    /* [EMBED_BATCH_INPUTS][C] */
    int64_t counts[EMBED_BATCH_INPUTS];
};

/* One slice of the taken jobs' inputs: (job, input) pairs. */
typedef struct {
    rwkvd_embed_job *job;
    size_t input;
} slot;

static void fail_job(rwkvd_embed_job *j, const char *why)
{
    if (j->rc == 0)
        snprintf(j->err, sizeof j->err, "%s", why);
    j->rc = -1;
}

/* Runs up to EMBED_BATCH_INPUTS inputs in one forward call and finishes
 * each (task head). */
static void run_slots(rwkvd_embed_batcher *b, const slot *s, int n)
{
    int C = rwkv_model_get_info(b->m)->n_embd;
    rwkv_error err;
    rwkv_error_clear(&err);
    memset(b->sums, 0, sizeof(double) * (size_t)C * (size_t)n);
    for (int i = 0; i < n; i++) {
        rwkv_state_reset(b->states[i]);
        b->counts[i] = 0;
        b->reqs[i] = (rwkv_request){.state = b->states[i],
                                    .tokens = s[i].job->ids[s[i].input],
                                    .n_tokens = (int)s[i].job->n[s[i].input],
                                    .next_token = -1,
                                    .eos_sum = b->sums + (size_t)i * C,
                                    .eos_count = &b->counts[i],
                                    .eos_id = RWKV_EMBED_EOS};
    }
    pthread_mutex_lock(&b->mu);
    b->calls++;
    b->inputs += (uint64_t)n;
    pthread_mutex_unlock(&b->mu);
    if (rwkv_forward(b->e, b->reqs, n, &err) != 0) {
        for (int i = 0; i < n; i++)
            fail_job(s[i].job, err.msg);
        return;
    }
    for (int i = 0; i < n; i++) {
        rwkvd_embed_job *j = s[i].job;
        if (j->rc == 0 &&
            rwkv_embed_finish(b->m, j->task, b->sums + (size_t)i * C, b->counts[i],
                              j->normalize, NULL, j->out + s[i].input * (size_t)C, &err) != 0)
            fail_job(j, err.msg);
    }
}

static void run_jobs(rwkvd_embed_batcher *b, rwkvd_embed_job *jobs)
{
    slot s[EMBED_BATCH_INPUTS];
    int n = 0;
    for (rwkvd_embed_job *j = jobs; j; j = j->next)
        for (size_t i = 0; i < j->n_inputs; i++) {
            s[n++] = (slot){j, i};
            if (n == EMBED_BATCH_INPUTS) {
                run_slots(b, s, n);
                n = 0;
            }
        }
    if (n)
        run_slots(b, s, n);
}

static void *worker(void *arg)
{
    rwkvd_embed_batcher *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->stop && !b->head)
            pthread_cond_wait(&b->wake, &b->mu);
        if (b->stop)
            break;
        rwkvd_embed_job *jobs = b->head;
        b->head = b->tail = NULL;
        pthread_mutex_unlock(&b->mu);
        run_jobs(b, jobs);
        pthread_mutex_lock(&b->mu);
        for (rwkvd_embed_job *j = jobs, *next; j; j = next) {
            next = j->next;
            j->done = true;
        }
        pthread_cond_broadcast(&b->done);
    }
    /* shutting down: whatever is still queued fails */
    for (rwkvd_embed_job *j = b->head; j; j = j->next) {
        fail_job(j, "the daemon is shutting down");
        j->done = true;
    }
    b->head = b->tail = NULL;
    pthread_cond_broadcast(&b->done);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

rwkvd_embed_batcher *rwkvd_embed_batcher_new(const rwkv_model *m, const rwkv_engine_opts *eo,
                                             rwkv_error *err)
{
    rwkvd_embed_batcher *b = calloc(1, sizeof *b);
    if (!b) {
        rwkv_fail(err, "embeddings: out of memory");
        return NULL;
    }
    b->m = m;
    size_t C = (size_t)rwkv_model_get_info(m)->n_embd;
    b->sums = malloc(sizeof(double) * C * EMBED_BATCH_INPUTS);
    bool ok = b->sums != NULL;
    for (int i = 0; ok && i < EMBED_BATCH_INPUTS; i++)
        ok = (b->states[i] = rwkv_state_new(m)) != NULL;
    if (!ok) {
        rwkv_fail(err, "embeddings: out of memory for %d states", EMBED_BATCH_INPUTS);
        rwkvd_embed_batcher_free(b);
        return NULL;
    }
    if (!(b->e = rwkv_engine_new_opts(m, eo, err))) {
        rwkvd_embed_batcher_free(b);
        return NULL;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->wake, NULL);
    pthread_cond_init(&b->done, NULL);
    if (pthread_create(&b->thread, NULL, worker, b) != 0) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->wake);
        pthread_cond_destroy(&b->done);
        rwkv_engine_free(b->e);
        b->e = NULL;
        rwkv_fail(err, "embeddings: cannot start the worker thread");
        rwkvd_embed_batcher_free(b);
        return NULL;
    }
    return b;
}

int rwkvd_embed_batcher_run(rwkvd_embed_batcher *b, rwkvd_embed_job *job)
{
    job->rc = 0;
    job->err[0] = 0;
    job->done = false;
    job->next = NULL;
    if (job->n_inputs == 0)
        return 0;
    pthread_mutex_lock(&b->mu);
    if (b->stop) {
        pthread_mutex_unlock(&b->mu);
        fail_job(job, "the daemon is shutting down");
        return -1;
    }
    if (b->tail)
        b->tail->next = job;
    else
        b->head = job;
    b->tail = job;
    pthread_cond_signal(&b->wake);
    while (!job->done)
        pthread_cond_wait(&b->done, &b->mu);
    pthread_mutex_unlock(&b->mu);
    return job->rc;
}

void rwkvd_embed_batcher_counts(rwkvd_embed_batcher *b, uint64_t *inputs, uint64_t *calls)
{
    pthread_mutex_lock(&b->mu);
    *inputs = b->inputs;
    *calls = b->calls;
    pthread_mutex_unlock(&b->mu);
}

void rwkvd_embed_batcher_free(rwkvd_embed_batcher *b)
{
    if (!b)
        return;
    if (b->e) { /* the thread runs exactly when the engine was made */
        pthread_mutex_lock(&b->mu);
        b->stop = true;
        pthread_cond_broadcast(&b->wake);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL);
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->wake);
        pthread_cond_destroy(&b->done);
        rwkv_engine_free(b->e);
    }
    for (int i = 0; i < EMBED_BATCH_INPUTS; i++)
        rwkv_state_free(b->states[i]);
    free(b->sums);
    free(b);
}

rwkv_precision rwkvd_embed_batcher_precision(const rwkvd_embed_batcher *b)
{
    return rwkv_engine_precision(b->e);
}
