/* cpu_backend.c — the CPU as a backend (backend.h): its context (a thread
 * pool, matmul scratch and working buffers kept between calls) and its
 * table.  States stay on the host, so it has no state functions; the
 * forward pass itself is cpu_forward.c. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/engine/engine_internal.h"

typedef struct {
    rwkv_cpu *e;
    int n, min_per_task, n_tasks;
    rwkv_range_fn fn;
    void *arg;
} ranges_ctx;

static void ranges_task(void *arg, int task, int thread)
{
    (void)thread;
    ranges_ctx *r = arg;
    int per = (r->n + r->n_tasks - 1) / r->n_tasks;
    int b = task * per, end = b + per < r->n ? b + per : r->n;
    if (b < end)
        r->fn(r->arg, b, end);
}

void rwkv_parallel_ranges(rwkv_cpu *e, int n, int min_per_task, rwkv_range_fn fn, void *arg)
{
    if (n <= 0)
        return;
    int tasks = (n + min_per_task - 1) / min_per_task;
    if (tasks > e->n_threads)
        tasks = e->n_threads;
    if (tasks <= 1) {
        fn(arg, 0, n);
        return;
    }
    ranges_ctx r = {e, n, min_per_task, tasks, fn, arg};
    rwkv_pool_run(e->pool, tasks, ranges_task, &r);
}

static void cpu_destroy(void *ctx)
{
    rwkv_cpu *e = ctx;
    if (!e)
        return;
    rwkv_pool_free(e->pool);
    rwkv_matmul_scratch_free(e->mm);
    free(e->x);
    free(e->scratch);
    free(e->head_buf);
    free(e->start);
    free(e->states);
    free(e);
}

static void *cpu_create(const rwkv_model *m, int device, int n_threads, rwkv_error *err)
{
    (void)device;
    rwkv_cpu *e = calloc(1, sizeof *e);
    if (!e) {
        rwkv_fail(err, "engine: out of memory");
        return NULL;
    }
    e->model = m;
    /* our pool parallelises; each sgemm call must stay on its caller's
     * thread (process-wide setting, idempotent) */
    openblas_set_num_threads(1);
    e->pool = rwkv_pool_new(n_threads);
    if (!e->pool) {
        free(e);
        rwkv_fail(err, "engine: cannot start %d threads", n_threads);
        return NULL;
    }
    e->n_threads = rwkv_pool_size(e->pool);
    snprintf(e->device, sizeof e->device, "cpu (%d threads)", e->n_threads);
    e->mm = rwkv_matmul_scratch_new(e->n_threads);
    if (!e->mm) {
        cpu_destroy(e);
        rwkv_fail(err, "engine: out of memory");
        return NULL;
    }
    return e;
}

static const char *cpu_describe(void *ctx)
{
    return ((rwkv_cpu *)ctx)->device;
}

static int cpu_threads(void *ctx)
{
    return ((rwkv_cpu *)ctx)->n_threads;
}

static rwkv_precision cpu_precision(void *ctx)
{
    return ((rwkv_cpu *)ctx)->precision;
}

static const rwkv_backend_ops CPU_OPS = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .describe = cpu_describe,
    .threads = cpu_threads,
    .forward = rwkv_cpu_forward,
    .topk = 1,
    .eos_sum = 1,
    .precision = cpu_precision,
};

const rwkv_backend_ops *rwkv_cpu_backend(void)
{
    return &CPU_OPS;
}
