/* forward.c — the generation-independent driver of a forward pass: request
 * validation, cutting the batch into passes of bounded size, embedding,
 * calling the generation's layers, and the outputs (hidden states, logits,
 * surprisal).
 *
 * Passes: requests are processed in groups of at most PASS_ROWS rows, so
 * the working memory is bounded whatever the block size; a longer request
 * continues from its state in the next pass.  1024 rows is past the point
 * where sgemm efficiency stops growing.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine/engine_internal.h"
#include "core/engine/state_internal.h"
#include "core/engine/vecops.h"

#define PASS_ROWS 1024
/* Rows of logits computed per head product: a weight slice widened from
 * bf16 is reused across this many rows, which keeps widening ~4% of the
 * head's cost. */
#define HEAD_ROWS 128
#define LN_EPS 1e-5f

typedef struct {
    rwkv_engine *e;
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

void rwkv_parallel_ranges(rwkv_engine *e, int n, int min_per_task, rwkv_range_fn fn, void *arg)
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

rwkv_engine *rwkv_engine_new(const rwkv_model *m, int n_threads, rwkv_error *err)
{
    rwkv_engine *e = calloc(1, sizeof *e);
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
        rwkv_engine_free(e);
        rwkv_fail(err, "engine: out of memory");
        return NULL;
    }
    return e;
}

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
    rwkv_engine *e = calloc(1, sizeof *e);
    if (!e) {
        rwkv_fail(err, "engine: out of memory");
        return NULL;
    }
    e->model = m;
    e->ops = ops;
    e->dev_ctx = ops->create(m, cuda, err);
    if (!e->dev_ctx) {
        free(e);
        return NULL;
    }
    snprintf(e->device, sizeof e->device, "%s", ops->describe(e->dev_ctx));
    return e;
}

const char *rwkv_engine_device(const rwkv_engine *e)
{
    return e->device;
}

void rwkv_engine_free(rwkv_engine *e)
{
    if (!e)
        return;
    if (e->ops)
        e->ops->destroy(e->dev_ctx);
    rwkv_pool_free(e->pool);
    rwkv_matmul_scratch_free(e->mm);
    free(e->x);
    free(e->scratch);
    free(e->head_buf);
    free(e->start);
    free(e->states);
    free(e);
}

int rwkv_engine_threads(const rwkv_engine *e)
{
    return e->n_threads;
}

const rwkv_model *rwkv_engine_model(const rwkv_engine *e)
{
    return e->model;
}

/* Grows *buf to hold n elements of size sz (contents not kept). */
static int reserve(void **buf, size_t *cap, size_t n, size_t sz)
{
    if (n <= *cap)
        return 0;
    free(*buf);
    *buf = aligned_alloc(64, (n * sz + 63) & ~(size_t)63);
    *cap = *buf ? n : 0;
    return *buf ? 0 : -1;
}

/* ---------------------------------------------------------------- passes */

typedef struct {
    int req;       /* request index */
    int t0, t1;    /* token range of the request in this pass */
} segment;

typedef struct {
    rwkv_engine *e;
    rwkv_request *reqs;
    const segment *seg;
    int n_seg;
    const int *row0; /* first row of each segment */
    double **mean_acc; /* per request, for RWKV_HIDDEN_MEAN */
} pass_ctx;

static void embed_rows(void *arg, int m0, int m1)
{
    pass_ctx *p = arg;
    const rwkv_model *m = p->e->model;
    int C = m->info.n_embd;
    size_t esz = rwkv_dtype_size(m->emb.dtype);
    for (int s = 0, r = 0; s < p->n_seg; s++) {
        const segment *g = &p->seg[s];
        for (int t = g->t0; t < g->t1; t++, r++) {
            if (r < m0 || r >= m1)
                continue;
            uint32_t tok = p->reqs[g->req].tokens[t];
            float *x = p->e->x + (size_t)r * C;
            rwkv_widen(m->emb.dtype, (const char *)m->emb.data + (size_t)tok * C * esz, x,
                       (size_t)C);
            rwkv_layernorm(x, x, C, m->ln0_w, m->ln0_b, LN_EPS);
        }
    }
}

/* Does request q need the ln_out output / the head at token t? */
static int wants_hidden_at(const rwkv_request *q, int t)
{
    int last = t == q->n_tokens - 1;
    if (q->hidden == RWKV_HIDDEN_ALL || q->hidden == RWKV_HIDDEN_MEAN || q->hidden_sum ||
        q->logits == RWKV_LOGITS_ALL || q->surprisal_out)
        return 1;
    return last && (q->hidden == RWKV_HIDDEN_LAST || q->logits == RWKV_LOGITS_LAST);
}

static int wants_logits_at(const rwkv_request *q, int t)
{
    int last = t == q->n_tokens - 1;
    if (q->logits == RWKV_LOGITS_ALL)
        return 1;
    if (last && q->logits == RWKV_LOGITS_LAST)
        return 1;
    return q->surprisal_out && (!last || q->next_token >= 0);
}

static void ln_out_rows(void *arg, int m0, int m1)
{
    pass_ctx *p = arg;
    const rwkv_model *m = p->e->model;
    int C = m->info.n_embd;
    for (int s = 0, r = 0; s < p->n_seg; s++) {
        const segment *g = &p->seg[s];
        const rwkv_request *q = &p->reqs[g->req];
        for (int t = g->t0; t < g->t1; t++, r++) {
            if (r < m0 || r >= m1 || !wants_hidden_at(q, t))
                continue;
            float *x = p->e->x + (size_t)r * C;
            rwkv_layernorm(x, x, C, m->ln_out_w, m->ln_out_b, LN_EPS);
        }
    }
}

static void hidden_outputs(pass_ctx *p)
{
    int C = p->e->model->info.n_embd;
    for (int s = 0; s < p->n_seg; s++) {
        const segment *g = &p->seg[s];
        rwkv_request *q = &p->reqs[g->req];
        for (int t = g->t0; t < g->t1; t++) {
            const float *h = p->e->x + (size_t)(p->row0[s] + t - g->t0) * C;
            if (q->hidden == RWKV_HIDDEN_ALL)
                memcpy(q->hidden_out + (size_t)t * C, h, (size_t)C * sizeof(float));
            if (q->hidden == RWKV_HIDDEN_LAST && t == q->n_tokens - 1)
                memcpy(q->hidden_out, h, (size_t)C * sizeof(float));
            if (q->hidden == RWKV_HIDDEN_MEAN)
                for (int i = 0; i < C; i++)
                    p->mean_acc[g->req][i] += h[i];
            if (q->hidden_sum)
                for (int i = 0; i < C; i++)
                    q->hidden_sum[i] += h[i];
        }
    }
}

typedef struct {
    const rwkv_request *q;
    const float *logits; /* row 0 = token t0 */
    int t0, V;
} surprisal_ctx;

static void surprisal_task(void *arg, int task, int thread)
{
    (void)thread;
    surprisal_ctx *c = arg;
    int t = c->t0 + task;
    const rwkv_request *q = c->q;
    int64_t target = t + 1 < q->n_tokens ? (int64_t)q->tokens[t + 1] : q->next_token;
    if (target < 0 || target >= c->V) {
        q->surprisal_out[t] = NAN;
        return;
    }
    const float *row = c->logits + (size_t)task * c->V;
    q->surprisal_out[t] = (float)(rwkv_logsumexp(row, c->V) - (double)row[target]);
}

/* Logits (and surprisal) for the rows of one segment that need the head. */
static int head_outputs(pass_ctx *p, int s, rwkv_error *err)
{
    rwkv_engine *e = p->e;
    const rwkv_model *m = e->model;
    int C = m->info.n_embd, V = m->info.vocab_size;
    const segment *g = &p->seg[s];
    rwkv_request *q = &p->reqs[g->req];
    /* rows needing the head form one contiguous run [a, b) of the segment */
    int a = g->t1, b = g->t0;
    for (int t = g->t0; t < g->t1; t++)
        if (wants_logits_at(q, t)) {
            a = t < a ? t : a;
            b = t + 1;
        }
    for (int t0 = a; t0 < b; t0 += HEAD_ROWS) {
        int n = b - t0 < HEAD_ROWS ? b - t0 : HEAD_ROWS;
        float *dst;
        if (q->logits == RWKV_LOGITS_ALL) {
            dst = q->logits_out + (size_t)t0 * V;
        } else {
            if (reserve((void **)&e->head_buf, &e->head_cap, (size_t)HEAD_ROWS * V, sizeof(float)))
                return rwkv_fail(err, "forward: out of memory for logits");
            dst = e->head_buf;
        }
        const float *h = e->x + (size_t)(p->row0[s] + t0 - g->t0) * C;
        rwkv_matmul(e->pool, e->mm, n, &m->head, h, C, dst, V, 0);
        if (q->surprisal_out) {
            surprisal_ctx sc = {q, dst, t0, V};
            rwkv_pool_run(e->pool, n, surprisal_task, &sc);
        }
        int last = q->n_tokens - 1;
        if (q->logits == RWKV_LOGITS_LAST && last >= t0 && last < t0 + n)
            memcpy(q->logits_out, dst + (size_t)(last - t0) * V, (size_t)V * sizeof(float));
    }
    return 0;
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
    if (e->ops) {
        for (int i = 0; i < n_reqs; i++)
            if (!rwkv_state_device(reqs[i].state, e->ops, e->dev_ctx, err))
                return -1;
        return e->ops->forward(e->dev_ctx, reqs, n_reqs, err);
    }
    for (int i = 0; i < n_reqs; i++) {
        if (!rwkv_state_host(reqs[i].state, err))
            return -1; /* a state last run on a device comes home first */
        /* no prediction target for the last position: NaN, as promised (the
         * head may skip that row entirely) */
        if (reqs[i].surprisal_out && reqs[i].next_token < 0)
            reqs[i].surprisal_out[reqs[i].n_tokens - 1] = NAN;
    }
    const rwkv_model *m = e->model;
    int C = m->info.n_embd, L = m->info.n_layer;
    int rc = -1;
    segment *seg = malloc(sizeof *seg * (size_t)(n_reqs + 1));
    int *row0 = malloc(sizeof *row0 * (size_t)(n_reqs + 1));
    double **mean_acc = calloc((size_t)n_reqs + 1, sizeof *mean_acc);
    if (!seg || !row0 || !mean_acc)
        goto oom;
    for (int i = 0; i < n_reqs; i++)
        if (reqs[i].hidden == RWKV_HIDDEN_MEAN &&
            !(mean_acc[i] = calloc((size_t)C, sizeof(double))))
            goto oom;

    /* Passes hold whole requests (up to PASS_ROWS rows together); a request
     * longer than PASS_ROWS runs alone, cut at multiples of PASS_ROWS from
     * its own start.  So where a request's rows fall never depends on the
     * other requests in the batch, and neither do its results (see
     * forward.h on batch invariance). */
    int req = 0, tok = 0;
    while (req < n_reqs) {
        int n_seg = 0, rows = 0;
        while (req < n_reqs) {
            int left = reqs[req].n_tokens - tok;
            if (n_seg > 0 && rows + left > PASS_ROWS)
                break;
            int take = left < PASS_ROWS ? left : PASS_ROWS;
            seg[n_seg] = (segment){req, tok, tok + take};
            row0[n_seg] = rows;
            n_seg++;
            rows += take;
            tok += take;
            if (tok < reqs[req].n_tokens)
                break; /* a long request continues alone in the next pass */
            req++, tok = 0;
        }
        if (reserve((void **)&e->x, &e->x_cap, (size_t)rows * C, sizeof(float)) ||
            reserve((void **)&e->scratch, &e->scratch_cap, m->arch->scratch_floats(m, rows),
                    sizeof(float)) ||
            reserve((void **)&e->start, &e->start_cap, (size_t)n_seg + 1, sizeof(int)) ||
            reserve((void **)&e->states, &e->states_cap, (size_t)n_seg, sizeof(float *)))
            goto oom;
        for (int s = 0; s < n_seg; s++) {
            e->start[s] = row0[s];
            e->states[s] = rwkv_state_host(reqs[seg[s].req].state, NULL);
        }
        e->start[n_seg] = rows;
        rwkv_batch b = {.n_seqs = n_seg, .M = rows, .start = e->start, .state = e->states};
        pass_ctx p = {e, reqs, seg, n_seg, row0, mean_acc};

        rwkv_parallel_ranges(e, rows, 8, embed_rows, &p);
        for (int l = 0; l < L; l++)
            m->arch->layer(e, l, &b, e->x, e->scratch);
        rwkv_parallel_ranges(e, rows, 8, ln_out_rows, &p);
        hidden_outputs(&p);
        for (int s = 0; s < n_seg; s++)
            if (head_outputs(&p, s, err) != 0)
                goto out;
    }
    for (int i = 0; i < n_reqs; i++)
        if (mean_acc[i])
            for (int c = 0; c < C; c++)
                reqs[i].hidden_out[c] = (float)(mean_acc[i][c] / reqs[i].n_tokens);
    rc = 0;
    goto out;
oom:
    rwkv_fail(err, "forward: out of memory");
out:
    if (mean_acc)
        for (int i = 0; i < n_reqs; i++)
            free(mean_acc[i]);
    free(mean_acc);
    free(seg);
    free(row0);
    return rc;
}
