/* rwkv56_att.c — the attention core RWKV-5.x and RWKV-6 share
 * (rwkv-math.md §2, §3), from the mixed inputs on:
 *
 *   r = Wr·rx, k = Wk·kx, v = Wv·vx, g = silu(Wg·gx)        (batch products)
 *   y = WKV(r, k, v, w, u) per head, token by token          (rwkv56_wkv.c)
 *   x += Wo·(GN_H(y; ln_x, eps 64e-5) * g)                  (no g in v5.0)
 *
 * The recurrence runs in parallel over (document, head); everything else
 * over rows.  Also the binding of the tensors this core uses and the v5/v6
 * initial state (zeros, or a state-tuned checkpoint's time_state). */
#include <string.h>

#include "core/engine/rwkv456.h"
#include "core/engine/simd.h"
#include "core/engine/vecops.h"

/* GroupNorm eps of the official package: the training code's
 * ln_x(x / head_size_divisor) with divisor 8 folded in, 1e-5 * 8^2. */
#define GN_EPS 64e-5f
#define ROWS_PER_TASK 8

int rwkv56_att_bind(rwkv_binder *b, rwkv_error *err, rwkv56_att *a, int layer, int C, int H,
                    int N, int has_gate)
{
#define MAT(field, name)                                                                     \
    if (rwkv_bind_matrix(b, err, &a->field, C, C, "blocks.%d.att." name ".weight", layer))  \
        return -1;
    MAT(receptance, "receptance") MAT(key, "key") MAT(value, "value") MAT(output, "output")
    if (has_gate)
        MAT(gate, "gate")
#undef MAT
    if (!(a->lnx_w = rwkv_bind_vec(b, err, C, "blocks.%d.att.ln_x.weight", layer)) ||
        !(a->lnx_b = rwkv_bind_vec(b, err, C, "blocks.%d.att.ln_x.bias", layer)))
        return -1;
    a->time_state = NULL;
    const rwkv_tensor *ts = rwkv_bind_find(b, "blocks.%d.att.time_state", layer);
    if (ts) {
        if (ts->ndim != 3 || ts->shape[0] != H || ts->shape[1] != N || ts->shape[2] != N)
            return rwkv_fail(err, "%s: tensor 'blocks.%d.att.time_state' must have shape "
                                  "(%d, %d, %d)",
                             rwkv_tensor_file_path(b->f), layer, H, N, N);
        if (!(a->time_state = rwkv_bind_vec(b, err, (int64_t)H * N * N,
                                            "blocks.%d.att.time_state", layer)))
            return -1;
    }
    return 0;
}

size_t rwkv56_att_scratch_per_row(int C)
{
    return 5 * (size_t)C;
}

typedef struct {
    const rwkv_batch *b;
    const rwkv56_att *a;
    const rwkv56_inputs *in;
    int C, H, N;
    size_t kv_off;
    float *r, *k, *v, *g, *y;
} att_ctx;

RWKV_CLONES
static void silu_inplace(float *x, int n)
{
    RWKV_SIMD
    for (int i = 0; i < n; i++)
        x[i] = x[i] * rwkv_sigmoidf(x[i]);
}

static void gate_rows(void *arg, int m0, int m1)
{
    att_ctx *c = arg;
    silu_inplace(c->g + (size_t)m0 * c->C, (m1 - m0) * c->C);
}

static void wkv_task(void *arg, int task, int thread)
{
    (void)thread;
    att_ctx *c = arg;
    int s = task / c->H, h = task % c->H;
    int m0 = c->b->start[s], T = c->b->start[s + 1] - m0;
    size_t o = (size_t)m0 * c->C + (size_t)h * c->N;
    const float *w = c->in->w + (size_t)m0 * c->in->ld_w + (size_t)h * c->N;
    float *S = c->b->state[s] + c->kv_off + (size_t)h * c->N * c->N;
    rwkv56_wkv_head(S, c->N, T, c->C, c->r + o, c->k + o, c->v + o, w, c->in->ld_w,
                    c->a->u + (size_t)h * c->N, c->y + o);
}

static void norm_rows(void *arg, int m0, int m1)
{
    att_ctx *c = arg;
    for (int m = m0; m < m1; m++) {
        float *y = c->y + (size_t)m * c->C;
        rwkv_groupnorm(y, y, c->H, c->N, c->a->lnx_w, c->a->lnx_b, GN_EPS);
        if (c->a->gate.data)
            rwkv_mul_inplace(y, c->g + (size_t)m * c->C, c->C);
    }
}

void rwkv56_att_forward(rwkv_cpu *e, const rwkv_batch *b, const rwkv56_att *a, int C, int H,
                        int N, size_t kv_off, const rwkv56_inputs *in, float *x, float *scratch)
{
    size_t MC = (size_t)b->M * C;
    att_ctx c = {b, a, in, C, H, N, kv_off, scratch, scratch + MC, scratch + 2 * MC,
                 scratch + 3 * MC, scratch + 4 * MC};
    rwkv_segments seg = {b->n_seqs, b->start};
    rwkv_matmul_op proj[4] = {
        {&a->receptance, in->rx, C, c.r, C, 0},
        {&a->key, in->kx, C, c.k, C, 0},
        {&a->value, in->vx, C, c.v, C, 0},
        {&a->gate, in->gx, C, c.g, C, 0},
    };
    int has_gate = a->gate.data != NULL;
    rwkv_matmul_many(e->pool, e->mm, &seg, proj, has_gate ? 4 : 3);
    if (has_gate)
        rwkv_parallel_ranges(e, b->M, ROWS_PER_TASK, gate_rows, &c);
    rwkv_pool_run(e->pool, b->n_seqs * H, wkv_task, &c);
    rwkv_parallel_ranges(e, b->M, ROWS_PER_TASK, norm_rows, &c);
    rwkv_matmul_op out = {&a->output, c.y, C, x, C, 1};
    rwkv_matmul_many(e->pool, e->mm, &seg, &out, 1);
}

void rwkv56_init_state(float *state, int L, int C, int H, int N, const rwkv56_att *const *att)
{
    size_t per = rwkv56_layer_state_floats(C, H, N);
    memset(state, 0, (size_t)L * per * sizeof(float));
    for (int l = 0; l < L; l++) {
        const float *ts = att[l]->time_state;
        if (!ts)
            continue;
        /* the package starts from time_state.transpose(1, 2) */
        float *S = state + (size_t)l * per + C;
        for (int h = 0; h < H; h++) {
            const float *src = ts + (size_t)h * N * N;
            float *dst = S + (size_t)h * N * N;
            for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++)
                    dst[(size_t)i * N + j] = src[(size_t)j * N + i];
        }
    }
}
