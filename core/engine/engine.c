/* engine.c — the public engine (forward.h): a model, a backend and that
 * backend's context.  It checks every request once, moves the states to
 * where the backend works on them, and hands the call over; it computes
 * nothing itself, so the CPU and a device are interchangeable behind it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine/engine_internal.h"
#include "core/engine/state_internal.h"
#include "core/topk.h"

struct rwkv_engine {
    const rwkv_model *model;
    const rwkv_backend_ops *ops;
    void *ctx;
};

/* "cpu" (or NULL) -> -1, "cuda" -> 0, "cuda:N" -> N. */
static int parse_device(const char *device, int *cuda_index, rwkv_error *err)
{
    *cuda_index = -1;
    if (!device || !strcmp(device, "cpu"))
        return 0;
    if (!strcmp(device, "cuda")) {
        *cuda_index = 0;
        return 0;
    }
    if (!strncmp(device, "cuda:", 5) && device[5] >= '0' && device[5] <= '9') {
        char *end;
        long n = strtol(device + 5, &end, 10);
        if (*end == '\0' && n >= 0 && n < 1024) {
            *cuda_index = (int)n;
            return 0;
        }
    }
    return rwkv_fail(err, "device '%s': expected cpu, cuda or cuda:N", device);
}

rwkv_engine *rwkv_engine_new_with(const rwkv_model *m, const rwkv_backend_ops *ops, int device,
                                  int n_threads, rwkv_error *err)
{
    rwkv_engine *e = calloc(1, sizeof *e);
    if (!e) {
        rwkv_fail(err, "engine: out of memory");
        return NULL;
    }
    e->model = m;
    e->ops = ops;
    e->ctx = ops->create(m, device, n_threads, err);
    if (!e->ctx) {
        free(e);
        return NULL;
    }
    return e;
}

int rwkv_engine_refuse_int8_file(const rwkv_model *m, const char *asked, rwkv_error *err)
{
    if (!m->info.int8_quantized)
        return 0;
    return rwkv_fail(err, "%s holds int8-quantized weights (rwkv quantize); it runs only at "
                          "--precision int8 on the CPU, not %s",
                     m->info.path, asked);
}

rwkv_engine *rwkv_engine_new(const rwkv_model *m, int n_threads, rwkv_error *err)
{
    if (rwkv_engine_refuse_int8_file(m, "fp32", err) != 0)
        return NULL;
    return rwkv_engine_new_with(m, rwkv_cpu_backend(), 0, n_threads, err);
}

rwkv_engine *rwkv_engine_new_on(const rwkv_model *m, const char *device, int n_threads,
                                rwkv_error *err)
{
    int cuda;
    if (parse_device(device, &cuda, err) != 0)
        return NULL;
    if (cuda < 0)
        return rwkv_engine_new(m, n_threads, err);
    if (rwkv_engine_refuse_int8_file(m, "the CUDA backend", err) != 0)
        return NULL;
    if (!m->info.has_lm_head) {
        /* kernels/ binds head.weight unconditionally; until it learns
         * head-less models, say so instead of failing somewhere inside */
        rwkv_fail(err, "device %s: the CUDA backend does not run models without an LM head "
                       "(EmbeddingRWKV) yet; use --device cpu",
                  device);
        return NULL;
    }
    const rwkv_backend_ops *ops = rwkv_cuda_backend ? rwkv_cuda_backend() : NULL;
    if (!ops) {
        rwkv_fail(err, "device %s: this build has no CUDA backend (nvcc was not found when it "
                       "was built)",
                  device);
        return NULL;
    }
    return rwkv_engine_new_with(m, ops, cuda, n_threads, err);
}

const char *rwkv_engine_device(const rwkv_engine *e)
{
    return e->ops->describe(e->ctx);
}

/* The backend's own answer, so a device engine says what it really runs
 * (the CUDA backend: bf16 unless RWKV_CUDA_PRECISION=fp32). */
rwkv_precision rwkv_engine_precision(const rwkv_engine *e)
{
    return e->ops->precision ? e->ops->precision(e->ctx) : RWKV_PRECISION_FP32;
}

rwkv_cpu *rwkv_engine_cpu(const rwkv_engine *e)
{
    return e->ops == rwkv_cpu_backend() ? e->ctx : NULL;
}

void rwkv_engine_free(rwkv_engine *e)
{
    if (!e)
        return;
    e->ops->destroy(e->ctx);
    free(e);
}

int rwkv_engine_threads(const rwkv_engine *e)
{
    return e->ops->threads ? e->ops->threads(e->ctx) : 0;
}

const rwkv_model *rwkv_engine_model(const rwkv_engine *e)
{
    return e->model;
}

static int validate(const rwkv_engine *e, const rwkv_request *reqs, int n_reqs, rwkv_error *err)
{
    const rwkv_model *m = e->model;
    uint32_t V = (uint32_t)m->info.vocab_size;
    if (n_reqs < 0)
        return rwkv_fail(err, "forward: negative request count");
    for (int i = 0; i < n_reqs; i++) {
        const rwkv_request *q = &reqs[i];
        if (!q->state || rwkv_state_model(q->state) != m)
            return rwkv_fail(err, "forward: request %d: state missing or made for another model",
                             i);
        if (q->n_tokens < 1 || !q->tokens)
            return rwkv_fail(err, "forward: request %d: no tokens", i);
        for (int t = 0; t < q->n_tokens; t++)
            if (q->tokens[t] >= V)
                return rwkv_fail(err,
                                 "forward: request %d: token %d has id %u, beyond the "
                                 "vocabulary (%u)",
                                 i, t, q->tokens[t], V);
        if ((q->logits != RWKV_LOGITS_NONE && !q->logits_out) ||
            (q->hidden != RWKV_HIDDEN_NONE && !q->hidden_out))
            return rwkv_fail(err, "forward: request %d: an output mode without its buffer", i);
        if ((unsigned)q->logits > RWKV_LOGITS_ALL || (unsigned)q->hidden > RWKV_HIDDEN_MEAN)
            return rwkv_fail(err, "forward: request %d: unknown output mode", i);
        if (q->topk < 0 || (uint32_t)q->topk > V)
            return rwkv_fail(err, "forward: request %d: top-k of %d out of 0..%u", i, q->topk, V);
        if (q->topk > 0 && (!q->topk_ids || !q->topk_logprobs))
            return rwkv_fail(err, "forward: request %d: top-k without its buffers", i);
        if (!m->info.has_lm_head && (q->logits != RWKV_LOGITS_NONE || q->topk > 0 ||
                                     q->surprisal_out))
            return rwkv_fail(err,
                             "forward: request %d: logits, top-k and surprisal need an LM head, "
                             "and this model (EmbeddingRWKV) has none",
                             i);
        if (!q->eos_sum != !q->eos_count)
            return rwkv_fail(err, "forward: request %d: an EOS sum without its count", i);
        if (q->eos_sum && q->eos_id >= V)
            return rwkv_fail(err, "forward: request %d: EOS id %u is beyond the vocabulary (%u)",
                             i, q->eos_id, V);
        for (int j = 0; j < i; j++)
            if (reqs[j].state == q->state)
                return rwkv_fail(err, "forward: requests %d and %d share one state", j, i);
    }
    return 0;
}

/* The host fallbacks below share one frame: a copy of the requests in
 * which some ask the backend for every row of an output instead of what
 * they wanted, into buffers owned by the frame. */
typedef struct {
    rwkv_request *q; /* [n] the copies handed to the backend */
    float **rows;    /* [n] the buffers given to widened requests, or NULL */
    int n;
} widened;

static int widened_new(widened *w, const rwkv_request *reqs, int n, rwkv_error *err)
{
    w->n = n;
    w->q = malloc(sizeof *w->q * (size_t)(n + 1));
    w->rows = calloc((size_t)n + 1, sizeof *w->rows);
    if (!w->q || !w->rows) {
        free(w->q);
        free(w->rows);
        return rwkv_fail(err, "forward: out of memory");
    }
    if (n > 0)
        memcpy(w->q, reqs, sizeof *w->q * (size_t)n);
    return 0;
}

/* A buffer of every row (per_row floats each) for copy i; NULL with err. */
static float *widened_rows(widened *w, int i, size_t per_row, const char *what, rwkv_error *err)
{
    w->rows[i] = malloc((size_t)w->q[i].n_tokens * per_row * sizeof(float));
    if (!w->rows[i])
        rwkv_fail(err, "forward: out of memory for the %s", what);
    return w->rows[i];
}

static void widened_free(widened *w)
{
    for (int i = 0; i < w->n; i++)
        free(w->rows[i]);
    free(w->rows);
    free(w->q);
}

/* For a backend that cannot rank (backend.h, topk = 0): the requests that
 * want top-k ask it for every row's logits instead, ranked here; a LAST
 * logits request gets its row from them.  The backend computes the same
 * rows as it would have (top-k and logits ALL need the head at every row,
 * plan.h), so the results do not depend on who ranks. */
static int forward_ranking_on_host(rwkv_engine *e, rwkv_request *reqs, int n_reqs,
                                   rwkv_error *err)
{
    size_t V = (size_t)e->model->info.vocab_size;
    widened w;
    if (widened_new(&w, reqs, n_reqs, err) != 0)
        return -1;
    int rc = -1;
    for (int i = 0; i < n_reqs; i++) {
        w.q[i].topk = 0;
        if (reqs[i].topk == 0 || reqs[i].logits == RWKV_LOGITS_ALL)
            continue;
        if (!(w.q[i].logits_out = widened_rows(&w, i, V, "logits to rank", err)))
            goto out;
        w.q[i].logits = RWKV_LOGITS_ALL;
    }
    if (e->ops->forward(e->ctx, w.q, n_reqs, err) != 0)
        goto out;
    for (int i = 0; i < n_reqs; i++) {
        const rwkv_request *q = &reqs[i];
        if (q->topk == 0)
            continue;
        const float *rows = w.q[i].logits_out;
        rwkv_topk_rows(rows, (size_t)q->n_tokens, (uint32_t)V, (uint32_t)q->topk, q->topk_ids,
                       q->topk_logprobs);
        if (q->logits == RWKV_LOGITS_LAST)
            memcpy(q->logits_out, rows + (size_t)(q->n_tokens - 1) * V, V * sizeof(float));
    }
    rc = 0;
out:
    widened_free(&w);
    return rc;
}

/* The backend, with top-k ranked on the host when it cannot rank. */
static int forward_backend(rwkv_engine *e, rwkv_request *reqs, int n_reqs, rwkv_error *err)
{
    if (e->ops->topk)
        return e->ops->forward(e->ctx, reqs, n_reqs, err);
    return forward_ranking_on_host(e, reqs, n_reqs, err);
}

/* For a backend that cannot sum the EOS rows (backend.h, eos_sum = 0): the
 * requests that want them ask for every row's hidden output instead (the
 * rows an EOS sum needs are a subset), summed here in token order; the
 * LAST and MEAN hidden outputs those requests wanted are taken from the
 * same rows, the mean as cpu_forward.c forms it (float64, token order). */
static int forward_eos_on_host(rwkv_engine *e, rwkv_request *reqs, int n_reqs, rwkv_error *err)
{
    size_t C = (size_t)e->model->info.n_embd;
    widened w;
    if (widened_new(&w, reqs, n_reqs, err) != 0)
        return -1;
    int rc = -1;
    for (int i = 0; i < n_reqs; i++) {
        w.q[i].eos_sum = NULL;
        w.q[i].eos_count = NULL;
        if (!reqs[i].eos_sum || reqs[i].hidden == RWKV_HIDDEN_ALL)
            continue;
        if (!(w.q[i].hidden_out = widened_rows(&w, i, C, "hidden rows to pool", err)))
            goto out;
        w.q[i].hidden = RWKV_HIDDEN_ALL;
    }
    if (forward_backend(e, w.q, n_reqs, err) != 0)
        goto out;
    for (int i = 0; i < n_reqs; i++) {
        const rwkv_request *q = &reqs[i];
        if (!q->eos_sum)
            continue;
        const float *rows = w.q[i].hidden_out;
        size_t n = (size_t)q->n_tokens;
        for (size_t t = 0; t < n; t++)
            if (q->tokens[t] == q->eos_id) {
                for (size_t c = 0; c < C; c++)
                    q->eos_sum[c] += rows[t * C + c];
                (*q->eos_count)++;
            }
        if (q->hidden == RWKV_HIDDEN_LAST)
            memcpy(q->hidden_out, rows + (n - 1) * C, C * sizeof(float));
        if (q->hidden == RWKV_HIDDEN_MEAN)
            for (size_t c = 0; c < C; c++) {
                double acc = 0;
                for (size_t t = 0; t < n; t++)
                    acc += rows[t * C + c];
                q->hidden_out[c] = (float)(acc / (double)n);
            }
    }
    rc = 0;
out:
    widened_free(&w);
    return rc;
}

int rwkv_forward(rwkv_engine *e, rwkv_request *reqs, int n_reqs, rwkv_error *err)
{
    if (validate(e, reqs, n_reqs, err) != 0)
        return -1;
    /* a state last run elsewhere comes to this backend first */
    for (int i = 0; i < n_reqs; i++) {
        void *where = e->ops->state_alloc
                          ? rwkv_state_device(reqs[i].state, e->ops, e->ctx, err)
                          : (void *)rwkv_state_host(reqs[i].state, err);
        if (!where)
            return -1;
    }
    if (!e->ops->eos_sum)
        for (int i = 0; i < n_reqs; i++)
            if (reqs[i].eos_sum)
                return forward_eos_on_host(e, reqs, n_reqs, err);
    return forward_backend(e, reqs, n_reqs, err);
}
