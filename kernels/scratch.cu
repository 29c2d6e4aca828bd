/* scratch.cu — the engine's working memory on the device: the per-row
 * buffers of a pass (one allocation carved into named buffers, grown on
 * demand up to the pass size fixed at creation), the head's logits buffer,
 * the per-segment column sums and the pass metadata (pinned host staging
 * plus its device copy).  Growing frees the old block first, so peak use is
 * one block; everything is released by cu_scratch_free. */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_internal.cuh"

#define ALIGN 256
/* The head's logits buffer: at most this many bytes, at most 1024 rows. */
#define HEAD_BUFFER_BYTES ((size_t)256 << 20)

static size_t up(size_t b)
{
    return (b + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

size_t cu_scratch_bytes_per_row(const cu_ctx *c)
{
    size_t C = (size_t)c->C, F = (size_t)c->F, ld = (size_t)c->lora_ld, a = c->act_size;
    /* 14 fp32 [C] rows: x vfirst r k v w a g kk y vm xlast_att xlast_ffn h;
     * act: 6 mixes + yg; LoRA fp32 + act; FFN hidden fp32 + act */
    return 14 * 4 * C + 7 * a * C + (4 + a) * ld + (4 + a) * F;
}

/* Carves the block for `rows` rows; returns the bytes used (base NULL:
 * only counts). */
static size_t carve(const cu_ctx *c, cu_scratch *s, char *base, int rows)
{
    size_t R = (size_t)rows, C = (size_t)c->C, a = c->act_size, off = 0;
#define TAKE(ptr, type, bytes)                                                        \
    do {                                                                              \
        if (base)                                                                     \
            (ptr) = (type)(base + off);                                               \
        off = up(off + (bytes));                                                      \
    } while (0)
    TAKE(s->x, float *, 4 * R * C);
    TAKE(s->vfirst, float *, 4 * R * C);
    TAKE(s->mix, void *, 6 * a * R * C);
    TAKE(s->r, float *, 4 * R * C);
    TAKE(s->k, float *, 4 * R * C);
    TAKE(s->v, float *, 4 * R * C);
    TAKE(s->w, float *, 4 * R * C);
    TAKE(s->a, float *, 4 * R * C);
    TAKE(s->g, float *, 4 * R * C);
    TAKE(s->kk, float *, 4 * R * C);
    TAKE(s->y, float *, 4 * R * C);
    TAKE(s->vm, float *, 4 * R * C);
    TAKE(s->yg, void *, a * R * C);
    TAKE(s->lora, float *, 4 * R * (size_t)c->lora_ld);
    TAKE(s->lora_act, void *, a * R * (size_t)c->lora_ld);
    TAKE(s->hid, float *, 4 * R * (size_t)c->F);
    TAKE(s->hid_act, void *, a * R * (size_t)c->F);
    TAKE(s->xlast_att, float *, 4 * R * C);
    TAKE(s->xlast_ffn, float *, 4 * R * C);
    TAKE(s->h, float *, 4 * R * C);
#undef TAKE
    return off;
}

int cu_scratch_reserve(cu_ctx *c, int rows, rwkv_error *err)
{
    if (rows <= c->s.rows)
        return 0;
    if (rows > c->max_rows)
        return rwkv_fail(err, "cuda:%d: internal: a pass of %d rows (at most %d)", c->device,
                         rows, c->max_rows);
    /* grow in steps (x2, at least 64 rows) so a growing workload reallocates
     * a few times, not every call */
    int want = c->s.rows * 2 > rows ? c->s.rows * 2 : rows;
    want = want < 64 ? 64 : want;
    want = want > c->max_rows ? c->max_rows : want;
    if (c->s.block)
        (void)cudaFree(c->s.block);
    memset(&c->s, 0, sizeof c->s);
    size_t bytes = carve(c, &c->s, NULL, want);
    void *block = NULL;
    cudaError_t e = cudaMalloc(&block, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return rwkv_fail(err, "cuda:%d: cannot allocate working memory for %d token rows "
                              "(%.2f GiB): %s",
                         c->device, want, (double)bytes / (1024.0 * 1024.0 * 1024.0),
                         cudaGetErrorString(e));
    }
    c->s.block = block;
    c->s.rows = want;
    carve(c, &c->s, (char *)block, want);
    return 0;
}

int cu_head_rows(int V)
{
    size_t rows = HEAD_BUFFER_BYTES / ((size_t)V * sizeof(float));
    rows = rows > 1024 ? 1024 : rows;
    return rows < 16 ? 16 : (int)rows;
}

int cu_head_alloc(cu_ctx *c, rwkv_error *err)
{
    c->head_rows = cu_head_rows(c->V);
    size_t n = (size_t)c->head_rows;
    CU_TRY(cudaMalloc(&c->head_in, n * (size_t)c->C * c->act_size));
    CU_TRY(cudaMalloc((void **)&c->logits, n * (size_t)c->V * sizeof(float)));
    CU_TRY(cudaMalloc((void **)&c->surprisal, n * sizeof(float)));
    return 0;
}

int cu_colsum_reserve(cu_ctx *c, int n, rwkv_error *err)
{
    if (n <= c->colsum_cap)
        return 0;
    int want = n < 16 ? 16 : n;
    if (c->colsum)
        (void)cudaFree(c->colsum);
    c->colsum = NULL;
    c->colsum_cap = 0;
    CU_TRY(cudaMalloc((void **)&c->colsum, (size_t)want * (size_t)c->C * sizeof(double)));
    c->colsum_cap = want;
    return 0;
}

int cu_meta_reserve(cu_ctx *c, size_t bytes, rwkv_error *err)
{
    if (bytes <= c->meta_cap)
        return 0;
    size_t want = bytes < 2 * c->meta_cap ? 2 * c->meta_cap : bytes;
    want = want < 4096 ? 4096 : want;
    if (c->meta_host)
        (void)cudaFreeHost(c->meta_host);
    if (c->meta_dev)
        (void)cudaFree(c->meta_dev);
    c->meta_host = c->meta_dev = NULL;
    c->meta_cap = 0;
    CU_TRY(cudaMallocHost(&c->meta_host, want));
    CU_TRY(cudaMalloc(&c->meta_dev, want));
    c->meta_cap = want;
    return 0;
}

void cu_scratch_free(cu_ctx *c)
{
    if (c->s.block)
        (void)cudaFree(c->s.block);
    memset(&c->s, 0, sizeof c->s);
    void *dev[] = {c->head_in, c->logits, c->surprisal, c->colsum, c->meta_dev};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i])
            (void)cudaFree(dev[i]);
    if (c->meta_host)
        (void)cudaFreeHost(c->meta_host);
    c->head_in = NULL;
    c->logits = c->surprisal = NULL;
    c->colsum = NULL;
    c->colsum_cap = 0;
    c->meta_host = c->meta_dev = NULL;
    c->meta_cap = 0;
}
