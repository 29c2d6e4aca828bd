/* cpu_forward.c — the CPU backend's forward pass, generation-independent:
 * passes as plan.h cuts them, embedding, the generation's layers, and the
 * outputs (hidden states, logits, surprisal).  Requests arrive validated,
 * with their states current on the host (engine.c).
 *
 * Passes of at most PASS_ROWS rows bound the working memory whatever the
 * block size; a longer request continues from its state in the next pass.
 * 1024 rows is past the point where sgemm efficiency stops growing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine/engine_internal.h"
#include "core/plan.h"
#include "core/topk.h"
#include "core/engine/state_internal.h"
#include "core/engine/vecops.h"

#define PASS_ROWS 1024
/* Rows of logits computed per head product: a weight slice widened from
 * bf16 is reused across this many rows, which keeps widening ~4% of the
 * head's cost. */
#define HEAD_ROWS 128
#define LN_EPS 1e-5f

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
    rwkv_cpu *e;
    rwkv_request *reqs;
    const rwkv_plan_segment *seg;
    int n_seg;
    double **mean_acc; /* per request, for RWKV_HIDDEN_MEAN */
} pass_ctx;

static void embed_rows(void *arg, int m0, int m1)
{
    pass_ctx *p = arg;
    const rwkv_model *m = p->e->model;
    int C = m->info.n_embd;
    size_t esz = rwkv_dtype_size(m->emb.dtype);
    for (int s = 0, r = 0; s < p->n_seg; s++) {
        const rwkv_plan_segment *g = &p->seg[s];
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

static void ln_out_rows(void *arg, int m0, int m1)
{
    pass_ctx *p = arg;
    const rwkv_model *m = p->e->model;
    int C = m->info.n_embd;
    for (int s = 0, r = 0; s < p->n_seg; s++) {
        const rwkv_plan_segment *g = &p->seg[s];
        const rwkv_request *q = &p->reqs[g->req];
        for (int t = g->t0; t < g->t1; t++, r++) {
            if (r < m0 || r >= m1 || !rwkv_plan_wants_hidden(q, t))
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
        const rwkv_plan_segment *g = &p->seg[s];
        rwkv_request *q = &p->reqs[g->req];
        for (int t = g->t0; t < g->t1; t++) {
            const float *h = p->e->x + (size_t)(g->row0 + t - g->t0) * C;
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
            if (q->eos_sum && q->tokens[t] == q->eos_id) {
                for (int i = 0; i < C; i++)
                    q->eos_sum[i] += h[i];
                (*q->eos_count)++;
            }
        }
    }
}

typedef struct {
    const rwkv_request *q;
    const float *logits; /* row 0 = token t0 */
    int t0, V;
} head_row_ctx;

/* What one row of logits yields besides itself: surprisal and top-k. */
static void head_row_task(void *arg, int task, int thread)
{
    (void)thread;
    head_row_ctx *c = arg;
    int t = c->t0 + task;
    const rwkv_request *q = c->q;
    const float *row = c->logits + (size_t)task * c->V;
    if (q->topk > 0)
        rwkv_topk_rows(row, 1, (uint32_t)c->V, (uint32_t)q->topk,
                       q->topk_ids + (size_t)t * q->topk, q->topk_logprobs + (size_t)t * q->topk);
    if (!q->surprisal_out)
        return;
    int64_t target = t + 1 < q->n_tokens ? (int64_t)q->tokens[t + 1] : q->next_token;
    if (target < 0 || target >= c->V) {
        q->surprisal_out[t] = NAN;
        return;
    }
    q->surprisal_out[t] = (float)(rwkv_logsumexp(row, c->V) - (double)row[target]);
}

/* Logits, surprisal and top-k for the rows of one segment that need the
 * head.  Rows nobody wants as logits go through a HEAD_ROWS buffer, so
 * top-k over a long block never holds [n][V] logits. */
static int head_outputs(pass_ctx *p, int s, rwkv_error *err)
{
    rwkv_cpu *e = p->e;
    const rwkv_model *m = e->model;
    int C = m->info.n_embd, V = m->info.vocab_size;
    const rwkv_plan_segment *g = &p->seg[s];
    rwkv_request *q = &p->reqs[g->req];
    int a, b;
    rwkv_plan_head_span(q, g->t0, g->t1, &a, &b);
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
        const float *h = e->x + (size_t)(g->row0 + t0 - g->t0) * C;
        rwkv_matmul(e->pool, e->mm, n, &m->head, h, C, dst, V, 0);
        if (q->surprisal_out || q->topk > 0) {
            head_row_ctx hc = {q, dst, t0, V};
            rwkv_pool_run(e->pool, n, head_row_task, &hc);
        }
        int last = q->n_tokens - 1;
        if (q->logits == RWKV_LOGITS_LAST && last >= t0 && last < t0 + n)
            memcpy(q->logits_out, dst + (size_t)(last - t0) * V, (size_t)V * sizeof(float));
    }
    return 0;
}

int rwkv_cpu_forward(void *ctx, rwkv_request *reqs, int n_reqs, rwkv_error *err)
{
    rwkv_cpu *e = ctx;
    /* no prediction target for the last position: NaN, as promised (the
     * head may skip that row entirely) */
    for (int i = 0; i < n_reqs; i++)
        if (reqs[i].surprisal_out && reqs[i].next_token < 0)
            reqs[i].surprisal_out[reqs[i].n_tokens - 1] = NAN;
    const rwkv_model *m = e->model;
    int C = m->info.n_embd, L = m->info.n_layer;
    int rc = -1;
    rwkv_plan_segment *seg = malloc(sizeof *seg * (size_t)(n_reqs + 1));
    double **mean_acc = calloc((size_t)n_reqs + 1, sizeof *mean_acc);
    if (!seg || !mean_acc)
        goto oom;
    for (int i = 0; i < n_reqs; i++)
        if (reqs[i].hidden == RWKV_HIDDEN_MEAN &&
            !(mean_acc[i] = calloc((size_t)C, sizeof(double))))
            goto oom;

    rwkv_plan_cursor cur = {0, 0};
    int n_seg, rows;
    while ((n_seg = rwkv_plan_pass(reqs, n_reqs, PASS_ROWS, &cur, seg, &rows)) > 0) {
        if (reserve((void **)&e->x, &e->x_cap, (size_t)rows * C, sizeof(float)) ||
            reserve((void **)&e->scratch, &e->scratch_cap, m->arch->scratch_floats(m, rows),
                    sizeof(float)) ||
            reserve((void **)&e->start, &e->start_cap, (size_t)n_seg + 1, sizeof(int)) ||
            reserve((void **)&e->states, &e->states_cap, (size_t)n_seg, sizeof(float *)))
            goto oom;
        for (int s = 0; s < n_seg; s++) {
            e->start[s] = seg[s].row0;
            e->states[s] = rwkv_state_host(reqs[seg[s].req].state, NULL);
        }
        e->start[n_seg] = rows;
        rwkv_batch b = {.n_seqs = n_seg, .M = rows, .start = e->start, .state = e->states};
        pass_ctx p = {e, reqs, seg, n_seg, mean_acc};

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
    return rc;
}
