/* engine.c — the public engine (forward.h): a model, a backend and that
 * backend's context.  It checks every request once, moves the states to
 * where the backend works on them, and hands the call over; it computes
 * nothing itself, so the CPU and a device are interchangeable behind it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine/engine_internal.h"
#include "core/engine/state_internal.h"

struct rwkv_engine {
    const rwkv_model *model;
    const rwkv_backend_ops *ops;
    void *ctx;
    char device[128];
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

static rwkv_engine *engine_on(const rwkv_model *m, const rwkv_backend_ops *ops, int device,
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
    snprintf(e->device, sizeof e->device, "%s", ops->describe(e->ctx));
    return e;
}

rwkv_engine *rwkv_engine_new(const rwkv_model *m, int n_threads, rwkv_error *err)
{
    return engine_on(m, rwkv_cpu_backend(), 0, n_threads, err);
}

rwkv_engine *rwkv_engine_new_on(const rwkv_model *m, const char *device, int n_threads,
                                rwkv_error *err)
{
    int cuda;
    if (parse_device(device, &cuda, err) != 0)
        return NULL;
    if (cuda < 0)
        return rwkv_engine_new(m, n_threads, err);
    const rwkv_backend_ops *ops = rwkv_cuda_backend ? rwkv_cuda_backend() : NULL;
    if (!ops) {
        rwkv_fail(err, "device %s: this build has no CUDA backend (nvcc was not found when it "
                       "was built)",
                  device);
        return NULL;
    }
    return engine_on(m, ops, cuda, n_threads, err);
}

const char *rwkv_engine_device(const rwkv_engine *e)
{
    return e->device;
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
        for (int j = 0; j < i; j++)
            if (reqs[j].state == q->state)
                return rwkv_fail(err, "forward: requests %d and %d share one state", j, i);
    }
    return 0;
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
    return e->ops->forward(e->ctx, reqs, n_reqs, err);
}
