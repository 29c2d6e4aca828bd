/* matmul.c — see matmul.h for the two paths and why. */
#include "core/engine/matmul.h"

#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine/matmul_lowp.h"
#include "core/engine/prefetch.h"
#include "core/engine/simd.h"

/* Rows of W per sgemm task: about 8 slices per matrix (good balance on 1,
 * 2, 4 or 8 threads), between 64 and 512 rows.  Wider slices repack the
 * activations less often (each sgemm call packs its rows again: 64-row
 * slices cost ~5% of prefill); the width depends on the weight's shape only,
 * which batch invariance requires. */
#define SLICE_MIN 64
#define SLICE_MAX 512
/* Weight bytes per GEMV task: enough work to amortise the task hand-out
 * and the prefetch's run-up at the start of each task (prefetch.h), small
 * enough to balance two threads over a 768-row matrix. */
#define GEMV_TASK_BYTES (64 * 1024)
#define GEMV_TASK_MIN_ROWS 8

static int gemv_task_rows(size_t row_bytes)
{
    size_t r = GEMV_TASK_BYTES / (row_bytes ? row_bytes : 1);
    return r < GEMV_TASK_MIN_ROWS ? GEMV_TASK_MIN_ROWS : r > 4096 ? 4096 : (int)r;
}

static int slice_rows(int rows)
{
    int r = (rows / 8 + 15) / 16 * 16;
    return r < SLICE_MIN ? SLICE_MIN : r > SLICE_MAX ? SLICE_MAX : r;
}

struct rwkv_matmul_scratch {
    int n;
    float **buf; /* per thread: SLICE_MAX * RWKV_MATMUL_MAX_COLS floats of address
                    space; only the pages a slice touches become resident */
    rwkv_lowp_ctx *lowp; /* bf16/int8 engines: their products (matmul_lowp.h) */
};

void rwkv_matmul_scratch_set_lowp(rwkv_matmul_scratch *s, rwkv_lowp_ctx *lowp)
{
    rwkv_lowp_ctx_free(s->lowp);
    s->lowp = lowp;
}

rwkv_lowp_ctx *rwkv_matmul_scratch_lowp(const rwkv_matmul_scratch *s)
{
    return s->lowp;
}

rwkv_matmul_scratch *rwkv_matmul_scratch_new(int n_threads)
{
    rwkv_matmul_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->n = n_threads;
    s->buf = calloc((size_t)n_threads, sizeof *s->buf);
    if (!s->buf) {
        free(s);
        return NULL;
    }
    for (int i = 0; i < n_threads; i++) {
        /* only touched pages become resident, so the worst-case size is cheap */
        s->buf[i] = aligned_alloc(64, (size_t)SLICE_MAX * RWKV_MATMUL_MAX_COLS * sizeof(float));
        if (!s->buf[i]) {
            rwkv_matmul_scratch_free(s);
            return NULL;
        }
    }
    return s;
}

void rwkv_matmul_scratch_free(rwkv_matmul_scratch *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        free(s->buf[i]);
    free(s->buf);
    rwkv_lowp_ctx_free(s->lowp);
    free(s);
}

RWKV_CLONES
static void widen_bf16(const uint16_t *src, float *dst, size_t n)
{
    RWKV_SIMD
    for (size_t i = 0; i < n; i++)
        dst[i] = rwkv_bf16_to_f32(src[i]);
}

RWKV_CLONES
static void widen_f16(const uint16_t *src, float *dst, size_t n)
{
    RWKV_SIMD
    for (size_t i = 0; i < n; i++)
        dst[i] = rwkv_f16_to_f32(src[i]);
}

void rwkv_widen(rwkv_dtype t, const void *src, float *dst, size_t n)
{
    switch (t) {
    case RWKV_F32:
        memcpy(dst, src, n * sizeof(float));
        break;
    case RWKV_BF16:
        widen_bf16(src, dst, n);
        break;
    case RWKV_F16:
        widen_f16(src, dst, n);
        break;
    case RWKV_I8: /* the bare values (scales are the caller's): only for checks */
        for (size_t i = 0; i < n; i++)
            dst[i] = ((const int8_t *)src)[i];
        break;
    }
}

/* ---- GEMV path: y[r][j] for m <= 4 rows of x, one weight row at a time ---- */

/* One GEMV per stored dtype, differing only in how a weight is widened
 * (TERM_<name>): the same loop, generated three times so each is vectorised
 * for its own element type. */
#define DEFINE_GEMV(name, elem)                                                   \
    RWKV_CLONES                                                                          \
    static void name(const elem *w, int rows, int cols, const float *x, int ldx, int m,  \
                     float *y, int ldy, int acc)                                         \
    {                                                                                    \
        size_t row_bytes_ = (size_t)cols * sizeof(elem);                                 \
        for (int j = 0; j < rows; j++) {                                                 \
            const elem *wr = w + (size_t)j * cols;                                       \
            rwkv_prefetch_ahead(w, (size_t)j * row_bytes_, row_bytes_, rows * row_bytes_); \
            for (int i = 0; i < m; i++) {                                                \
                const float *xi = x + (size_t)i * ldx;                                   \
                float s;                                                                 \
                RWKV_LANE_SUM(s, cols, TERM_##name);                                     \
                y[(size_t)i * ldy + j] = acc ? y[(size_t)i * ldy + j] + s : s;           \
            }                                                                            \
        }                                                                                \
    }
#define TERM_gemv_f32(c) (wr[(c)] * xi[c])
#define TERM_gemv_bf16(c) (rwkv_bf16_to_f32(wr[(c)]) * xi[c])
#define TERM_gemv_f16(c) (rwkv_f16_to_f32(wr[(c)]) * xi[c])
DEFINE_GEMV(gemv_f32, float)
DEFINE_GEMV(gemv_bf16, uint16_t)
DEFINE_GEMV(gemv_f16, uint16_t)

/* ---- task bookkeeping for rwkv_matmul_many ---- */

typedef struct {
    const rwkv_segments *seg;
    const rwkv_matmul_op *ops;
    int n_ops;
    int all_small;    /* every segment takes the GEMV path */
    int first[17];    /* first task index of each op; first[n_ops] = total */
    int rows_per[16]; /* weight rows per task, per op */
    rwkv_matmul_scratch *scratch;
    rwkv_lowp_ctx *lowp; /* set when some op runs at low precision */
} many_ctx;

static void gemv_rows(const rwkv_matmul_op *op, const void *wrows, int nr, int r0, int i0, int m)
{
    const rwkv_matrix *w = op->w;
    const float *x = op->x + (size_t)i0 * op->ldx;
    float *y = op->y + (size_t)i0 * op->ldy + r0;
    switch (w->dtype) {
    case RWKV_F32:
        gemv_f32(wrows, nr, w->cols, x, op->ldx, m, y, op->ldy, op->accumulate);
        break;
    case RWKV_BF16:
        gemv_bf16(wrows, nr, w->cols, x, op->ldx, m, y, op->ldy, op->accumulate);
        break;
    case RWKV_F16:
        gemv_f16(wrows, nr, w->cols, x, op->ldx, m, y, op->ldy, op->accumulate);
        break;
    case RWKV_I8: /* refused in run_slice */
        abort();
    }
}

/* Weight rows [r0, r0+nr) of one op, for every segment. */
static void run_slice(const many_ctx *c, int k, const rwkv_matmul_op *op, int r0, int nr,
                      int thread)
{
    if (c->lowp && rwkv_lowp_on(c->lowp, k)) {
        for (int s = 0; s < c->seg->n; s++)
            rwkv_lowp_run(c->lowp, k, op, c->seg->start[s], c->seg->start[s + 1] - c->seg->start[s],
                          r0, nr, thread);
        return;
    }
    const rwkv_matrix *w = op->w;
    if (w->dtype == RWKV_I8)
        abort(); /* an int8 file's matrix has no float path (matmul_lowp ran out of memory) */
    size_t esz = rwkv_dtype_size(w->dtype);
    const char *wrows = (const char *)w->data + (size_t)r0 * w->cols * esz;
    const float *wf = NULL; /* the slice widened to f32, made on first need */
    for (int s = 0; s < c->seg->n; s++) {
        int i0 = c->seg->start[s], m = c->seg->start[s + 1] - i0;
        if (m <= RWKV_GEMV_MAX_ROWS) {
            gemv_rows(op, wrows, nr, r0, i0, m);
            continue;
        }
        if (!wf) {
            if (w->dtype == RWKV_F32) {
                wf = (const float *)wrows;
            } else {
                float *buf = c->scratch->buf[thread];
                rwkv_widen(w->dtype, wrows, buf, (size_t)nr * w->cols);
                wf = buf;
            }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nr, w->cols, 1.0f,
                    op->x + (size_t)i0 * op->ldx, op->ldx, wf, w->cols,
                    op->accumulate ? 1.0f : 0.0f, op->y + (size_t)i0 * op->ldy + r0, op->ldy);
    }
}

static void many_task(void *arg, int task, int thread)
{
    const many_ctx *c = arg;
    int k = 0;
    while (task >= c->first[k + 1])
        k++;
    const rwkv_matmul_op *op = &c->ops[k];
    int per = c->rows_per[k];
    int r0 = (task - c->first[k]) * per;
    int nr = op->w->rows - r0 < per ? op->w->rows - r0 : per;
    run_slice(c, k, op, r0, nr, thread);
}

void rwkv_matmul_many(rwkv_pool *pool, rwkv_matmul_scratch *s, const rwkv_segments *seg,
                      const rwkv_matmul_op *ops, int n_ops)
{
    if (!seg || seg->n <= 0 || n_ops <= 0)
        return;
    /* callers pass at most a handful of ops; larger lists go in batches */
    while (n_ops > 16) {
        rwkv_matmul_many(pool, s, seg, ops, 16);
        ops += 16;
        n_ops -= 16;
    }
    many_ctx c = {.seg = seg, .ops = ops, .n_ops = n_ops, .scratch = s, .all_small = 1};
    for (int i = 0; i < seg->n; i++)
        if (seg->start[i + 1] - seg->start[i] > RWKV_GEMV_MAX_ROWS)
            c.all_small = 0;
    if (s->lowp && rwkv_lowp_begin(s->lowp, pool, seg->start[seg->n], ops, n_ops) > 0)
        c.lowp = s->lowp;
    c.first[0] = 0;
    for (int k = 0; k < n_ops; k++) {
        /* GEMV results do not depend on the slice width, so an all-GEMV
         * call may size its slices by the bytes they stream; sgemm slices
         * may not */
        const rwkv_matrix *w = ops[k].w;
        size_t row_bytes = c.lowp && rwkv_lowp_on(c.lowp, k)
                               ? rwkv_lowp_row_bytes(c.lowp, k)
                               : (size_t)w->cols * rwkv_dtype_size(w->dtype);
        c.rows_per[k] = c.all_small ? gemv_task_rows(row_bytes) : slice_rows(w->rows);
        c.first[k + 1] = c.first[k] + (w->rows + c.rows_per[k] - 1) / c.rows_per[k];
    }
    rwkv_pool_run(pool, c.first[n_ops], many_task, &c);
}

void rwkv_matmul(rwkv_pool *pool, rwkv_matmul_scratch *s, int m, const rwkv_matrix *w,
                 const float *x, int ldx, float *y, int ldy, int accumulate)
{
    int start[2] = {0, m};
    rwkv_segments seg = {1, start};
    rwkv_matmul_op op = {w, x, ldx, y, ldy, accumulate};
    rwkv_matmul_many(pool, s, &seg, &op, 1);
}
