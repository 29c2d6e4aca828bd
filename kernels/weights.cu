/* weights.cu — putting a model's weights on the device, once per engine.
 *
 * Everything goes into one allocation (one cudaMalloc, one cudaFree, and
 * the size is known — and checked against free memory — before anything is
 * allocated).  The same walk over the tensors runs twice: once counting
 * bytes, once copying, so the two can never disagree.
 *
 * Vectors (norms, mixes, biases of the decay/rate/value LoRAs) stay fp32.
 * Matrices (projections, LoRA factors, embedding, head) are stored in the
 * engine's "act" dtype: bf16 in bf16 mode (checkpoints stored f32 or f16 are
 * rounded to nearest-even at upload; bf16 ones are copied bit for bit), fp32
 * in fp32 mode (exact for every stored dtype).  Conversion goes through a
 * host staging buffer a few MB at a time, so a 7B checkpoint never needs a
 * second host copy. */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_internal.cuh"

#define ALIGN 256                       /* cuBLAS likes 256-byte aligned operands */
#define STAGE_ELEMS ((size_t)4 << 20)   /* elements converted per copy */

typedef struct {
    const rwkv_model *m;
    size_t act_size;
    char *base;         /* NULL while counting */
    size_t off;
    cudaStream_t stream;
    float *stage_f;     /* [STAGE_ELEMS] */
    uint16_t *stage_h;  /* [STAGE_ELEMS] (bf16 mode) */
    rwkv_error *err;
} walker;

static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40); /* NaN stays a (quiet) NaN */
    u += 0x7fffu + ((u >> 16) & 1u);        /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

static size_t place(walker *w, size_t bytes)
{
    size_t at = (w->off + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    w->off = at + bytes;
    return at;
}

static int put_floats(walker *w, const float **dst, const float *src, size_t n)
{
    rwkv_error *err = w->err;
    size_t at = place(w, n * sizeof(float));
    if (!w->base)
        return 0;
    if (!src)
        return rwkv_fail(err, "cuda: internal: a weight vector is missing");
    CU_TRY(cudaMemcpyAsync(w->base + at, src, n * sizeof(float), cudaMemcpyHostToDevice,
                           w->stream));
    *dst = (const float *)(w->base + at);
    return 0;
}

/* The six token-shift mixes of a layer, packed [6][C] for one kernel. */
static int put_mixes(walker *w, const float **dst, const rwkv7_layer *ly, int C)
{
    rwkv_error *err = w->err;
    const float *src[6] = {ly->x_r, ly->x_w, ly->x_k, ly->x_v, ly->x_a, ly->x_g};
    size_t at = place(w, 6 * (size_t)C * sizeof(float));
    if (!w->base)
        return 0;
    for (int i = 0; i < 6; i++)
        CU_TRY(cudaMemcpyAsync(w->base + at + (size_t)i * C * sizeof(float), src[i],
                               (size_t)C * sizeof(float), cudaMemcpyHostToDevice, w->stream));
    *dst = (const float *)(w->base + at);
    return 0;
}

static int put_matrix(walker *w, const void **dst, const rwkv_matrix *mat, int rows, int cols,
                      const char *what)
{
    rwkv_error *err = w->err;
    if (!mat->data || mat->rows != rows || mat->cols != cols)
        return rwkv_fail(err, "cuda: internal: %s is %dx%d, expected %dx%d", what, mat->rows,
                         mat->cols, rows, cols);
    size_t n = (size_t)rows * cols;
    size_t at = place(w, n * w->act_size);
    if (!w->base)
        return 0;
    size_t esz = rwkv_dtype_size(mat->dtype);
    for (size_t done = 0; done < n; done += STAGE_ELEMS) {
        size_t k = n - done < STAGE_ELEMS ? n - done : STAGE_ELEMS;
        rwkv_widen(mat->dtype, (const char *)mat->data + done * esz, w->stage_f, k);
        const void *src = w->stage_f;
        if (w->act_size == sizeof(bf16)) {
            for (size_t i = 0; i < k; i++)
                w->stage_h[i] = f32_to_bf16(w->stage_f[i]);
            src = w->stage_h;
        }
        CU_TRY(cudaMemcpyAsync(w->base + at + done * w->act_size, src, k * w->act_size,
                               cudaMemcpyHostToDevice, w->stream));
        /* the staging buffer is refilled next: wait until the copy has it */
        CU_TRY(cudaStreamSynchronize(w->stream));
    }
    *dst = w->base + at;
    return 0;
}

/* The walk: counting when w->base is NULL (layers may then be NULL). */
static int walk(walker *w, cu_ctx *c, cu_layer7 *layers)
{
    const rwkv_model *m = w->m;
    const rwkv7_weights *wts = (const rwkv7_weights *)m->layers;
    int C = m->info.n_embd, F = m->info.ffn_dim, V = m->info.vocab_size;
    int dw = wts->lora_w, da = wts->lora_a, dg = wts->lora_g, dv = wts->lora_v;
    const void *emb = NULL, *head = NULL;
    const float *ln0_w = NULL, *ln0_b = NULL, *lo_w = NULL, *lo_b = NULL;
    if (put_matrix(w, &emb, &m->emb, V, C, "emb.weight") ||
        put_matrix(w, &head, &m->head, V, C, "head.weight") ||
        put_floats(w, &ln0_w, m->ln0_w, (size_t)C) || put_floats(w, &ln0_b, m->ln0_b, (size_t)C) ||
        put_floats(w, &lo_w, m->ln_out_w, (size_t)C) || put_floats(w, &lo_b, m->ln_out_b, (size_t)C))
        return -1;
    if (c) {
        c->emb = emb, c->head = head;
        c->ln0_w = ln0_w, c->ln0_b = ln0_b, c->ln_out_w = lo_w, c->ln_out_b = lo_b;
    }
    for (int l = 0; l < m->info.n_layer; l++) {
        const rwkv7_layer *ly = &wts->layer[l];
        cu_layer7 tmp, *d = layers ? &layers[l] : &tmp;
        memset(d, 0, sizeof *d);
#define VEC(field) put_floats(w, &d->field, ly->field, (size_t)C)
        if (VEC(ln1_w) || VEC(ln1_b) || VEC(ln2_w) || VEC(ln2_b) || VEC(w0) || VEC(a0) ||
            VEC(k_k) || VEC(k_a) || VEC(r_k) || VEC(lnx_w) || VEC(lnx_b) || VEC(ffn_x_k) ||
            (l > 0 && VEC(v0)) || put_mixes(w, &d->att_mix, ly, C))
            return -1;
#undef VEC
#define MAT(field, src, r, k) put_matrix(w, &d->field, &ly->src, r, k, #src)
        if (MAT(w1, w1, dw, C) || MAT(w2, w2, C, dw) || MAT(a1, a1, da, C) ||
            MAT(a2, a2, C, da) || MAT(g1, g1, dg, C) || MAT(g2, g2, C, dg) ||
            (l > 0 && (MAT(v1, v1, dv, C) || MAT(v2, v2, C, dv))) ||
            MAT(wr, receptance, C, C) || MAT(wk, key, C, C) || MAT(wv, value, C, C) ||
            MAT(wo, output, C, C) || MAT(ffn_k, ffn_key, F, C) || MAT(ffn_v, ffn_value, C, F))
            return -1;
#undef MAT
    }
    return 0;
}

size_t cu_weight_bytes(const rwkv_model *m, size_t act_size)
{
    walker w;
    memset(&w, 0, sizeof w);
    w.m = m;
    w.act_size = act_size;
    if (walk(&w, NULL, NULL) != 0) /* a misshaped model: refused again at upload */
        return 0;
    return w.off;
}

int cu_weights_upload(cu_ctx *c, rwkv_error *err)
{
    walker w;
    memset(&w, 0, sizeof w);
    w.m = c->m;
    w.act_size = c->act_size;
    w.err = err;
    if (walk(&w, NULL, NULL) != 0) /* counting: also checks every shape */
        return -1;
    c->wbytes = w.off;
    c->layer = (cu_layer7 *)calloc((size_t)c->L, sizeof *c->layer);
    w.stage_f = (float *)malloc(STAGE_ELEMS * sizeof(float));
    w.stage_h = (uint16_t *)malloc(STAGE_ELEMS * sizeof(uint16_t));
    int rc = -1;
    if (!c->layer || !w.stage_f || !w.stage_h) {
        rwkv_fail(err, "cuda:%d: out of host memory while uploading the weights", c->device);
        goto out;
    }
    {
        cudaError_t e = cudaMalloc(&c->wblock, c->wbytes);
        if (e != cudaSuccess) {
            c->wblock = NULL;
            (void)cudaGetLastError();
            rwkv_fail(err, "cuda:%d: cannot allocate %.2f GiB for the weights: %s", c->device,
                      (double)c->wbytes / (1024.0 * 1024.0 * 1024.0), cudaGetErrorString(e));
            goto out;
        }
    }
    w.base = (char *)c->wblock;
    w.off = 0;
    w.stream = c->stream;
    if (walk(&w, c, c->layer) != 0)
        goto out;
    {
        cudaError_t e = cudaStreamSynchronize(c->stream);
        if (e != cudaSuccess) {
            cu_fail(err, __FILE__, __LINE__, "cudaStreamSynchronize after the upload", e);
            goto out;
        }
    }
    rc = 0;
out:
    free(w.stage_f);
    free(w.stage_h);
    return rc;
}

void cu_weights_free(cu_ctx *c)
{
    if (c->wblock)
        (void)cudaFree(c->wblock);
    c->wblock = NULL;
    free(c->layer);
    c->layer = NULL;
}
