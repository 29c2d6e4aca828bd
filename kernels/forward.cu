/* forward.cu — the CUDA backend's forward call (ops->forward): the same
 * contract as rwkv_forward on the CPU (core/forward.h), pass by pass.
 *
 * Per pass (core/plan.h cuts the requests, as for the CPU; at most max_rows
 * rows):
 *   1. host: the pass metadata — tokens, the row → segment map, segment
 *      starts, each segment's device state, the rows that need the head
 *      (with the token whose surprisal is wanted) and the segments that
 *      need column sums — packed into a pinned buffer and sent in ONE copy;
 *   2. device: embedding, the layers, ln_out, then the outputs:
 *      hidden rows copied out, column sums, and the head in chunks of
 *      head_rows gathered rows: product, surprisal on the device, logits
 *      copied out only where asked for;
 *   3. one synchronisation at the end of the pass (the pinned buffer is
 *      reused by the next pass; asynchronous faults surface here).
 * States never leave the device: the kernels update them in place.
 *
 * Host memory of a call (plans, accumulators) is allocated per call and
 * freed on every path. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_internal.cuh"

/* Host-side working memory of one forward call. */
typedef struct {
    rwkv_plan_segment *segs; /* [n] */
    float **dstate;          /* [n]: each request's device state */
    double **mean_acc;       /* [n]: HIDDEN_MEAN accumulators */
    int *head_seg, *head_t;  /* [max_rows]: which segment/token each head row is */
    float *surp;             /* [head_rows] */
    double *colsum;          /* [n][C] */
} call_mem;

static size_t align8(size_t b)
{
    return (b + 7) & ~(size_t)7;
}

/* Where the logits of head entry (request q, token t) go, or NULL. */
static float *logits_dest(const rwkv_request *q, int t, int V)
{
    if (q->logits == RWKV_LOGITS_ALL)
        return q->logits_out + (size_t)t * V;
    if (q->logits == RWKV_LOGITS_LAST && t == q->n_tokens - 1)
        return q->logits_out;
    return NULL;
}

/* Builds the metadata in the pinned buffer, uploads it and fills p. */
static int upload_meta(cu_ctx *c, const rwkv_request *reqs, const rwkv_plan_segment *seg,
                       int n_seg, int rows, call_mem *cm, cu_pass *p, rwkv_error *err)
{
    /* rows needing the head, in row order */
    int nh = 0, ns = 0;
    for (int s = 0; s < n_seg; s++) {
        const rwkv_request *q = &reqs[seg[s].req];
        for (int t = seg[s].t0; t < seg[s].t1; t++)
            if (rwkv_plan_wants_logits(q, t)) {
                cm->head_seg[nh] = s;
                cm->head_t[nh] = t;
                nh++;
            }
        if (q->hidden == RWKV_HIDDEN_MEAN || q->hidden_sum)
            ns++;
    }
    size_t o_states = 0;
    size_t o_tokens = align8(o_states + (size_t)n_seg * sizeof(float *));
    size_t o_rowseq = align8(o_tokens + (size_t)rows * sizeof(uint32_t));
    size_t o_start = align8(o_rowseq + (size_t)rows * sizeof(int));
    size_t o_hrow = align8(o_start + (size_t)(n_seg + 1) * sizeof(int));
    size_t o_htgt = align8(o_hrow + (size_t)nh * sizeof(int));
    size_t o_sum = align8(o_htgt + (size_t)nh * sizeof(int));
    size_t total = align8(o_sum + (size_t)ns * sizeof(int));
    if (cu_meta_reserve(c, total, err) != 0)
        return -1;
    char *hb = (char *)c->meta_host;
    float **states = (float **)(hb + o_states);
    uint32_t *tokens = (uint32_t *)(hb + o_tokens);
    int *row_seq = (int *)(hb + o_rowseq), *start = (int *)(hb + o_start);
    int *hrow = (int *)(hb + o_hrow), *htgt = (int *)(hb + o_htgt), *sum = (int *)(hb + o_sum);
    for (int s = 0, j = 0; s < n_seg; s++) {
        const rwkv_request *q = &reqs[seg[s].req];
        states[s] = cm->dstate[seg[s].req];
        start[s] = seg[s].row0;
        for (int t = seg[s].t0; t < seg[s].t1; t++) {
            int r = seg[s].row0 + t - seg[s].t0;
            tokens[r] = q->tokens[t];
            row_seq[r] = s;
        }
        if (q->hidden == RWKV_HIDDEN_MEAN || q->hidden_sum)
            sum[j++] = s;
    }
    start[n_seg] = rows;
    for (int e = 0; e < nh; e++) {
        const rwkv_plan_segment *g = &seg[cm->head_seg[e]];
        const rwkv_request *q = &reqs[g->req];
        int t = cm->head_t[e];
        int64_t target = t + 1 < q->n_tokens ? (int64_t)q->tokens[t + 1] : q->next_token;
        hrow[e] = g->row0 + t - g->t0;
        htgt[e] = target >= 0 && target < c->V ? (int)target : -1;
    }
    CU_TRY(cudaMemcpyAsync(c->meta_dev, c->meta_host, total, cudaMemcpyHostToDevice, c->stream));
    const char *db = (const char *)c->meta_dev;
    p->M = rows;
    p->n_seg = n_seg;
    p->states = (float *const *)(db + o_states);
    p->tokens = (const uint32_t *)(db + o_tokens);
    p->row_seq = (const int *)(db + o_rowseq);
    p->seq_start = (const int *)(db + o_start);
    p->n_head = nh;
    p->head_row = (const int *)(db + o_hrow);
    p->head_target = (const int *)(db + o_htgt);
    p->n_sum = ns;
    p->sum_seg = (const int *)(db + o_sum);
    return 0;
}

/* Hidden rows (ALL / LAST) straight into the requests' buffers. */
static int hidden_rows_out(cu_ctx *c, const rwkv_request *reqs, const rwkv_plan_segment *seg,
                           int n_seg, rwkv_error *err)
{
    size_t C = (size_t)c->C;
    for (int s = 0; s < n_seg; s++) {
        const rwkv_request *q = &reqs[seg[s].req];
        const float *src = c->s.h + (size_t)seg[s].row0 * C;
        int n = seg[s].t1 - seg[s].t0, last = q->n_tokens - 1;
        if (q->hidden == RWKV_HIDDEN_ALL)
            CU_TRY(cudaMemcpyAsync(q->hidden_out + (size_t)seg[s].t0 * C, src,
                                   (size_t)n * C * sizeof(float), cudaMemcpyDeviceToHost,
                                   c->stream));
        if (q->hidden == RWKV_HIDDEN_LAST && seg[s].t1 == q->n_tokens)
            CU_TRY(cudaMemcpyAsync(q->hidden_out, src + (size_t)(last - seg[s].t0) * C,
                                   C * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
    }
    return 0;
}

/* The head over the pass's head rows, head_rows at a time. */
static int head_out(cu_ctx *c, const rwkv_request *reqs, const rwkv_plan_segment *seg,
                    const cu_pass *p, call_mem *cm, rwkv_error *err)
{
    const int V = c->V;
    int any_surprisal = 0;
    for (int e = 0; e < p->n_head && !any_surprisal; e++)
        any_surprisal = reqs[seg[cm->head_seg[e]].req].surprisal_out != NULL;
    for (int e0 = 0; e0 < p->n_head; e0 += c->head_rows) {
        int ne = p->n_head - e0 < c->head_rows ? p->n_head - e0 : c->head_rows;
        if (launch_gather_rows(c, ne, p->head_row + e0, c->s.h, c->head_in, err) ||
            cu_gemm(c, ne, V, c->C, c->head_in, c->C, c->head, c->logits, V, 0, err))
            return -1;
        if (any_surprisal) {
            if (launch_surprisal(c, ne, c->logits, p->head_target + e0, c->surprisal, err))
                return -1;
            CU_TRY(cudaMemcpyAsync(cm->surp, c->surprisal, (size_t)ne * sizeof(float),
                                   cudaMemcpyDeviceToHost, c->stream));
        }
        /* logits: runs of entries whose destinations are consecutive rows */
        for (int e = e0; e < e0 + ne;) {
            const rwkv_request *q = &reqs[seg[cm->head_seg[e]].req];
            float *dst = logits_dest(q, cm->head_t[e], V);
            int run = 1;
            while (dst && e + run < e0 + ne && cm->head_seg[e + run] == cm->head_seg[e] &&
                   logits_dest(q, cm->head_t[e + run], V) == dst + (size_t)run * V)
                run++;
            if (dst)
                CU_TRY(cudaMemcpyAsync(dst, c->logits + (size_t)(e - e0) * V,
                                       (size_t)run * V * sizeof(float), cudaMemcpyDeviceToHost,
                                       c->stream));
            e += run;
        }
        /* the next chunk overwrites the device buffers and cm->surp */
        CU_TRY(cudaStreamSynchronize(c->stream));
        if (any_surprisal)
            for (int e = e0; e < e0 + ne; e++) {
                const rwkv_request *q = &reqs[seg[cm->head_seg[e]].req];
                if (q->surprisal_out)
                    q->surprisal_out[cm->head_t[e]] = cm->surp[e - e0];
            }
    }
    return 0;
}

static int run_pass(cu_ctx *c, rwkv_request *reqs, const rwkv_plan_segment *seg, int n_seg,
                    int rows, call_mem *cm, rwkv_error *err)
{
    cu_pass p;
    if (cu_scratch_reserve(c, rows, err) || upload_meta(c, reqs, seg, n_seg, rows, cm, &p, err) ||
        launch_embed(c, &p, c->s.x, err))
        return -1;
    for (int l = 0; l < c->L; l++)
        if (cu_layer7_forward(c, l, &p, err) != 0)
            return -1;
    int need_h = p.n_head > 0 || p.n_sum > 0;
    for (int s = 0; s < n_seg && !need_h; s++)
        need_h = reqs[seg[s].req].hidden != RWKV_HIDDEN_NONE;
    if (need_h && launch_layernorm_rows(c, rows, c->s.x, c->ln_out_w, c->ln_out_b, c->s.h, err))
        return -1;
    if (hidden_rows_out(c, reqs, seg, n_seg, err) != 0)
        return -1;
    if (p.n_sum > 0) {
        if (cu_colsum_reserve(c, p.n_sum, err) || launch_colsum(c, &p, c->s.h, c->colsum, err))
            return -1;
        CU_TRY(cudaMemcpyAsync(cm->colsum, c->colsum, (size_t)p.n_sum * c->C * sizeof(double),
                               cudaMemcpyDeviceToHost, c->stream));
    }
    if (head_out(c, reqs, seg, &p, cm, err) != 0)
        return -1;
    CU_TRY(cudaStreamSynchronize(c->stream));
    /* surprisal wanted at a last token whose successor is unknown: NaN (the
     * head was not run for it) */
    for (int s = 0; s < n_seg; s++) {
        rwkv_request *q = &reqs[seg[s].req];
        int last = q->n_tokens - 1;
        if (q->surprisal_out && seg[s].t1 == q->n_tokens && !rwkv_plan_wants_logits(q, last))
            q->surprisal_out[last] = NAN;
    }
    for (int s = 0, j = 0; s < n_seg; s++) {
        rwkv_request *q = &reqs[seg[s].req];
        if (q->hidden != RWKV_HIDDEN_MEAN && !q->hidden_sum)
            continue;
        const double *sum = cm->colsum + (size_t)j++ * c->C;
        double *acc = q->hidden == RWKV_HIDDEN_MEAN ? cm->mean_acc[seg[s].req] : NULL;
        for (int i = 0; i < c->C; i++) {
            if (acc)
                acc[i] += sum[i];
            if (q->hidden_sum)
                q->hidden_sum[i] += sum[i];
        }
    }
    return 0;
}

static void call_mem_free(call_mem *cm, int n)
{
    if (cm->mean_acc)
        for (int i = 0; i < n; i++)
            free(cm->mean_acc[i]);
    free(cm->mean_acc);
    free(cm->segs);
    free(cm->dstate);
    free(cm->head_seg);
    free(cm->head_t);
    free(cm->surp);
    free(cm->colsum);
}

static int call_mem_alloc(cu_ctx *c, const rwkv_request *reqs, int n, call_mem *cm,
                          rwkv_error *err)
{
    size_t nn = (size_t)n, C = (size_t)c->C;
    int any_sum = 0;
    cm->segs = (rwkv_plan_segment *)malloc(nn * sizeof *cm->segs);
    cm->dstate = (float **)malloc(nn * sizeof *cm->dstate);
    cm->mean_acc = (double **)calloc(nn, sizeof *cm->mean_acc);
    cm->head_seg = (int *)malloc((size_t)c->max_rows * sizeof(int));
    cm->head_t = (int *)malloc((size_t)c->max_rows * sizeof(int));
    cm->surp = (float *)malloc((size_t)c->head_rows * sizeof(float));
    if (!cm->segs || !cm->dstate || !cm->mean_acc || !cm->head_seg || !cm->head_t || !cm->surp)
        return rwkv_fail(err, "cuda:%d: forward: out of host memory", c->device);
    for (int i = 0; i < n; i++) {
        if (reqs[i].hidden == RWKV_HIDDEN_MEAN &&
            !(cm->mean_acc[i] = (double *)calloc(C, sizeof(double))))
            return rwkv_fail(err, "cuda:%d: forward: out of host memory", c->device);
        any_sum |= reqs[i].hidden == RWKV_HIDDEN_MEAN || reqs[i].hidden_sum != NULL;
    }
    if (any_sum && !(cm->colsum = (double *)malloc(nn * C * sizeof(double))))
        return rwkv_fail(err, "cuda:%d: forward: out of host memory", c->device);
    return 0;
}

int cu_forward(void *vctx, rwkv_request *reqs, int n, rwkv_error *err)
{
    cu_ctx *c = (cu_ctx *)vctx;
    if (n <= 0)
        return 0;
    CU_TRY(cudaSetDevice(c->device));
    call_mem cm;
    memset(&cm, 0, sizeof cm);
    int rc = -1;
    if (call_mem_alloc(c, reqs, n, &cm, err) != 0)
        goto out;
    for (int i = 0; i < n; i++)
        if (!(cm.dstate[i] = (float *)rwkv_state_device(reqs[i].state, rwkv_cuda_backend(), c,
                                                        err)))
            goto out;
    {
        rwkv_plan_cursor cur = {0, 0};
        int rows = 0, n_seg;
        while ((n_seg = rwkv_plan_pass(reqs, n, c->max_rows, &cur, cm.segs, &rows)) > 0)
            if (run_pass(c, reqs, cm.segs, n_seg, rows, &cm, err) != 0)
                goto out;
        if (n_seg < 0) {
            rwkv_fail(err, "cuda:%d: forward: a request without tokens", c->device);
            goto out;
        }
    }
    for (int i = 0; i < n; i++)
        if (cm.mean_acc[i])
            for (int j = 0; j < c->C; j++)
                reqs[i].hidden_out[j] = (float)(cm.mean_acc[i][j] / reqs[i].n_tokens);
    rc = 0;
out:
    if (rc != 0) /* nothing queued may still point at this call's memory */
        (void)cudaStreamSynchronize(c->stream);
    call_mem_free(&cm, n);
    return rc;
}
