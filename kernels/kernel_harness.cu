/* kernel_harness.cu — each kernel of the backend run alone on host data,
 * for tests/test_gpu_kernels.c (the contract is in rwkv_cuda.h).
 *
 * Every run goes through the backend's own launcher (cuda_internal.cuh) on a
 * context built here with only the fields that launcher reads, so what is
 * tested is exactly what the engine launches.  Each sequence runs twice
 * from freshly uploaded inputs (in-place kernels such as the scan would
 * otherwise start the second run from the first one's result); the second
 * run is timed, because the first pays for loading the module on the
 * device.  Device buffers are tracked in the harness and freed on every
 * path, errors included. */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_internal.cuh"

#define KH_MAX_BUF 40
#define KH_EVENTS 4

struct kh {
    cu_ctx c;
    int started;
    void *buf[KH_MAX_BUF];
    int n_buf;
    cudaEvent_t ev[KH_EVENTS];
    int n_ev;
};

static int kh_begin(kh *h, int device, int use_bf16, rwkv_error *err)
{
    memset(h, 0, sizeof *h);
    if (rwkv_cuda_device_count(err) < 0)
        return -1;
    if (device < 0)
        return rwkv_fail(err, "cuda: device %d does not exist", device);
    h->started = 1;
    CU_TRY(cudaSetDevice(device));
    h->c.device = device;
    h->c.prec = use_bf16 ? CU_BF16 : CU_FP32;
    h->c.act_size = use_bf16 ? sizeof(bf16) : sizeof(float);
    CU_TRY(cudaStreamCreateWithFlags(&h->c.stream, cudaStreamNonBlocking));
    for (; h->n_ev < KH_EVENTS; h->n_ev++)
        CU_TRY(cudaEventCreate(&h->ev[h->n_ev]));
    return 0;
}

static void kh_end(kh *h)
{
    if (!h->started)
        return;
    if (h->c.stream)
        (void)cudaStreamSynchronize(h->c.stream);
    for (int i = 0; i < h->n_buf; i++)
        (void)cudaFree(h->buf[i]);
    for (int i = 0; i < h->n_ev; i++)
        (void)cudaEventDestroy(h->ev[i]);
    if (h->c.blas)
        (void)h->c.cublas->destroy(h->c.blas);
    if (h->c.stream)
        (void)cudaStreamDestroy(h->c.stream);
    (void)cudaGetLastError();
}

static void *kh_alloc(kh *h, size_t bytes, rwkv_error *err)
{
    if (h->n_buf == KH_MAX_BUF) {
        rwkv_fail(err, "cuda: kernel harness: more than %d buffers", KH_MAX_BUF);
        return NULL;
    }
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        cu_fail(err, __FILE__, __LINE__, "cudaMalloc", e);
        return NULL;
    }
    h->buf[h->n_buf++] = p;
    return p;
}

#define KH_ALLOC(ptr, type, bytes)                                                    \
    do {                                                                              \
        if (!((ptr) = (type)kh_alloc(h, (bytes), err)))                               \
            return -1;                                                                \
    } while (0)

static int up(kh *h, void *dev, const void *host, size_t bytes, rwkv_error *err)
{
    CU_TRY(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, h->c.stream));
    return 0;
}

static int kh_sync(kh *h, rwkv_error *err)
{
    CU_TRY(cudaStreamSynchronize(h->c.stream));
    return 0;
}

/* Waits for the copy: the host buffer is read right after. */
static int down(kh *h, void *host, const void *dev, size_t bytes, rwkv_error *err)
{
    CU_TRY(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, h->c.stream));
    CU_TRY(cudaStreamSynchronize(h->c.stream));
    return 0;
}

/* n floats to an act buffer (rounded to bf16 in bf16 mode). */
static int up_act(kh *h, void *dev, const float *host, size_t n, rwkv_error *err)
{
    if (h->c.prec == CU_FP32)
        return up(h, dev, host, n * sizeof(float), err);
    bf16 *t = (bf16 *)malloc(n * sizeof(bf16) + 1);
    if (!t)
        return rwkv_fail(err, "cuda: kernel harness: out of host memory");
    for (size_t i = 0; i < n; i++)
        t[i] = __float2bfloat16_rn(host[i]);
    int rc = up(h, dev, t, n * sizeof(bf16), err);
    /* the staging buffer is freed below: let the copy finish with it */
    if (rc == 0)
        rc = kh_sync(h, err);
    free(t);
    return rc;
}

/* n elements of an act buffer, widened to float. */
static int down_act(kh *h, float *host, const void *dev, size_t n, rwkv_error *err)
{
    if (h->c.prec == CU_FP32)
        return down(h, host, dev, n * sizeof(float), err);
    bf16 *t = (bf16 *)malloc(n * sizeof(bf16) + 1);
    if (!t)
        return rwkv_fail(err, "cuda: kernel harness: out of host memory");
    int rc = down(h, t, dev, n * sizeof(bf16), err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        host[i] = __bfloat162float(t[i]);
    free(t);
    return rc;
}

static int tick(kh *h, int i, rwkv_error *err)
{
    CU_TRY(cudaEventRecord(h->ev[i], h->c.stream));
    return 0;
}

/* ms[i] = time from event i to i+1, i < n. */
static int elapsed(kh *h, int n, double *ms, rwkv_error *err)
{
    CU_TRY(cudaEventSynchronize(h->ev[n]));
    for (int i = 0; i < n; i++) {
        float f = 0.0f;
        CU_TRY(cudaEventElapsedTime(&f, h->ev[i], h->ev[i + 1]));
        ms[i] = f;
    }
    return 0;
}

/* Segments as the planner makes them: non-empty, in order, covering M rows. */
static int check_segments(const char *what, int M, int n_seg, const int *seq_start,
                          rwkv_error *err)
{
    if (M < 1 || n_seg < 1 || n_seg > M || !seq_start)
        return rwkv_fail(err, "cuda: %s harness: M %d, %d segments", what, M, n_seg);
    if (seq_start[0] != 0 || seq_start[n_seg] != M)
        return rwkv_fail(err, "cuda: %s harness: segments must cover rows 0..%d", what, M);
    for (int s = 0; s < n_seg; s++)
        if (seq_start[s + 1] <= seq_start[s])
            return rwkv_fail(err, "cuda: %s harness: segment %d is empty or out of order",
                             what, s);
    return 0;
}

/* The pass metadata of M rows in n_seg segments whose states are
 * state_floats apart in `states` (device), all on the device. */
static int make_pass(kh *h, cu_pass *p, int M, int n_seg, const int *seq_start, float *states,
                     size_t state_floats, rwkv_error *err)
{
    int *row_seq, *starts;
    float **ptrs;
    KH_ALLOC(row_seq, int *, (size_t)M * sizeof(int));
    KH_ALLOC(starts, int *, (size_t)(n_seg + 1) * sizeof(int));
    KH_ALLOC(ptrs, float **, (size_t)n_seg * sizeof(float *));
    int *hrow = (int *)malloc((size_t)M * sizeof(int));
    float **hptr = (float **)malloc((size_t)n_seg * sizeof(float *));
    int rc = 0;
    if (!hrow || !hptr) {
        rc = rwkv_fail(err, "cuda: kernel harness: out of host memory");
    } else {
        for (int s = 0; s < n_seg; s++) {
            hptr[s] = states ? states + (size_t)s * state_floats : NULL;
            for (int m = seq_start[s]; m < seq_start[s + 1]; m++)
                hrow[m] = s;
        }
        rc = up(h, row_seq, hrow, (size_t)M * sizeof(int), err) ||
                     up(h, starts, seq_start, (size_t)(n_seg + 1) * sizeof(int), err) ||
                     up(h, ptrs, hptr, (size_t)n_seg * sizeof(float *), err)
                 ? -1
                 : 0;
        if (rc == 0)
            rc = kh_sync(h, err); /* the host arrays are freed below */
    }
    free(hrow);
    free(hptr);
    memset(p, 0, sizeof *p);
    p->M = M;
    p->n_seg = n_seg;
    p->row_seq = row_seq;
    p->seq_start = starts;
    p->states = ptrs;
    return rc;
}

/* A device copy of n host floats (inputs that stay fixed across runs). */
static float *dev_copy(kh *h, const float *host, size_t n, rwkv_error *err)
{
    float *d = (float *)kh_alloc(h, n * sizeof(float), err);
    if (d && up(h, d, host, n * sizeof(float), err) != 0)
        return NULL;
    return d;
}

#define KH_COPY(ptr, host, n)                                                         \
    do {                                                                              \
        if (!((ptr) = dev_copy(h, (host), (n), err)))                                 \
            return -1;                                                                \
    } while (0)

/* Runs body(h) inside a harness on `device`: the public functions below
 * check their arguments, then call this. */
template <typename F>
static int with_harness(int device, int use_bf16, rwkv_error *err, F body)
{
    kh h;
    int rc = kh_begin(&h, device, use_bf16, err);
    if (rc == 0)
        rc = body(&h);
    kh_end(&h);
    return rc;
}

/* ---------------------------------------------------------------- LN + shift */

extern "C" int rwkv_cuda_k_ln_shift(int device, int use_bf16, int C, int M, int n_seg,
                                    const int *seq_start, const float *x_att,
                                    const float *x_ffn, const float *ln1_w, const float *ln1_b,
                                    const float *ln2_w, const float *ln2_b,
                                    const float *att_mix, const float *ffn_mix, float *states,
                                    float *att_out, float *ffn_out, double ms[3],
                                    rwkv_error *err)
{
    if (C < 1 || check_segments("ln_shift", M, n_seg, seq_start, err) != 0)
        return C < 1 ? rwkv_fail(err, "cuda: ln_shift harness: C %d", C) : -1;
    return with_harness(device, use_bf16, err, [&](kh *h) -> int {
        size_t MC = (size_t)M * C, SC = (size_t)n_seg * 2 * C, a = h->c.act_size;
        h->c.C = C;
        const float *xa, *xf, *w1, *b1, *w2, *b2, *am, *fm;
        float *st, *la, *lf;
        void *ao, *fo;
        KH_COPY(xa, x_att, MC);
        KH_COPY(xf, x_ffn, MC);
        KH_COPY(w1, ln1_w, C);
        KH_COPY(b1, ln1_b, C);
        KH_COPY(w2, ln2_w, C);
        KH_COPY(b2, ln2_b, C);
        KH_COPY(am, att_mix, 6 * (size_t)C);
        KH_COPY(fm, ffn_mix, C);
        KH_ALLOC(st, float *, SC * sizeof(float));
        KH_ALLOC(la, float *, (size_t)n_seg * C * sizeof(float));
        KH_ALLOC(lf, float *, (size_t)n_seg * C * sizeof(float));
        KH_ALLOC(ao, void *, 6 * MC * a);
        KH_ALLOC(fo, void *, MC * a);
        cu_pass p;
        if (make_pass(h, &p, M, n_seg, seq_start, st, 2 * (size_t)C, err) != 0)
            return -1;
        for (int rep = 0; rep < 2; rep++)
            if (up(h, st, states, SC * sizeof(float), err) || tick(h, 0, err) ||
                launch_ln_shift_mix(&h->c, &p, 6, xa, w1, b1, 0, am, ao, la, err) ||
                tick(h, 1, err) ||
                launch_ln_shift_mix(&h->c, &p, 1, xf, w2, b2, (size_t)C, fm, fo, lf, err) ||
                tick(h, 2, err) || launch_shift_save(&h->c, &p, 0, (size_t)C, la, lf, err) ||
                tick(h, 3, err))
                return -1;
        if (elapsed(h, 3, ms, err) || down(h, states, st, SC * sizeof(float), err) ||
            down_act(h, att_out, ao, 6 * MC, err) || down_act(h, ffn_out, fo, MC, err))
            return -1;
        return 0;
    });
}

/* ---------------------------------------------------------------- LoRA */

extern "C" int rwkv_cuda_k_lora_act(int device, int use_bf16, int M, const int width[4],
                                    float *const hm[4], double ms[1], rwkv_error *err)
{
    if (M < 1)
        return rwkv_fail(err, "cuda: lora_act harness: M %d", M);
    for (int i = 0; i < 4; i++)
        if (width[i] < 1 || width[i] > 4096)
            return rwkv_fail(err, "cuda: lora_act harness: width %d", width[i]);
    return with_harness(device, use_bf16, err, [&](kh *h) -> int {
        cu_lora_layout(&h->c, width[0], width[1], width[2], width[3]);
        const int ld = h->c.lora_ld;
        size_t n = (size_t)M * ld;
        float *packed = (float *)calloc(n, sizeof(float));
        if (!packed)
            return rwkv_fail(err, "cuda: kernel harness: out of host memory");
        /* the CPU's four matrices side by side, at the backend's offsets */
        for (int i = 0; i < 4; i++)
            for (int m = 0; m < M; m++)
                memcpy(packed + (size_t)m * ld + h->c.lora_off[i], hm[i] + (size_t)m * width[i],
                       (size_t)width[i] * sizeof(float));
        float *in = NULL;
        void *out = NULL;
        int rc = 0;
        if (!(in = (float *)kh_alloc(h, n * sizeof(float), err)) ||
            !(out = kh_alloc(h, n * h->c.act_size, err)))
            rc = -1;
        for (int rep = 0; rc == 0 && rep < 2; rep++)
            if (up(h, in, packed, n * sizeof(float), err) || tick(h, 0, err) ||
                launch_lora_act(&h->c, M, in, out, err) || tick(h, 1, err))
                rc = -1;
        if (rc == 0 && (elapsed(h, 1, ms, err) || down_act(h, packed, out, n, err)))
            rc = -1;
        for (int i = 0; rc == 0 && i < 4; i++)
            for (int m = 0; m < M; m++)
                memcpy(hm[i] + (size_t)m * width[i], packed + (size_t)m * ld + h->c.lora_off[i],
                       (size_t)width[i] * sizeof(float));
        free(packed);
        return rc;
    });
}

/* ---------------------------------------------------------------- WKV-7 */

static int check_k7(const char *what, const rwkv_cuda_k7 *a, rwkv_error *err)
{
    if (!a || !wkv7_scan_supported(a->N) || a->C < a->N || a->C % a->N != 0 || a->M < 1)
        return rwkv_fail(err, "cuda: %s harness: C %d, N %d, M %d (N 32/64/128, C = H*N)",
                         what, a ? a->C : 0, a ? a->N : 0, a ? a->M : 0);
    return 0;
}

static void k7_dims(kh *h, const rwkv_cuda_k7 *a)
{
    h->c.C = a->C;
    h->c.N = a->N;
    h->c.H = a->C / a->N;
}

extern "C" int rwkv_cuda_k_wkv7_prepare(int device, int first_layer, const rwkv_cuda_k7 *a,
                                        double ms[1], rwkv_error *err)
{
    if (check_k7("wkv7_prepare", a, err) != 0)
        return -1;
    return with_harness(device, 0, err, [&](kh *h) -> int {
        k7_dims(h, a);
        size_t MC = (size_t)a->M * a->C, B = MC * sizeof(float);
        cu_layer7 ly;
        memset(&ly, 0, sizeof ly);
        KH_COPY(ly.w0, a->w0, a->C);
        KH_COPY(ly.a0, a->a0, a->C);
        KH_COPY(ly.k_k, a->k_k, a->C);
        KH_COPY(ly.k_a, a->k_a, a->C);
        KH_COPY(ly.v0, a->v0, a->C);
        cu_scratch *s = &h->c.s;
        KH_ALLOC(s->w, float *, B);
        KH_ALLOC(s->a, float *, B);
        KH_ALLOC(s->k, float *, B);
        KH_ALLOC(s->v, float *, B);
        KH_ALLOC(s->kk, float *, B);
        KH_ALLOC(s->vm, float *, B);
        KH_ALLOC(s->vfirst, float *, B);
        for (int rep = 0; rep < 2; rep++)
            if (up(h, s->w, a->w, B, err) || up(h, s->a, a->a, B, err) ||
                up(h, s->k, a->k, B, err) || up(h, s->v, a->v, B, err) ||
                up(h, s->vm, a->vm, B, err) || up(h, s->vfirst, a->vfirst, B, err) ||
                tick(h, 0, err) ||
                launch_wkv7_prepare(&h->c, first_layer ? 0 : 1, a->M, &ly, err) ||
                tick(h, 1, err))
                return -1;
        if (elapsed(h, 1, ms, err) || down(h, a->w, s->w, B, err) ||
            down(h, a->a, s->a, B, err) || down(h, a->k, s->k, B, err) ||
            down(h, a->v, s->v, B, err) || down(h, a->kk, s->kk, B, err) ||
            down(h, a->vfirst, s->vfirst, B, err))
            return -1;
        return 0;
    });
}

extern "C" int rwkv_cuda_k_wkv7_scan(int device, const rwkv_cuda_k7 *a, double ms[1],
                                     rwkv_error *err)
{
    if (check_k7("wkv7_scan", a, err) != 0 ||
        check_segments("wkv7_scan", a->M, a->n_seg, a->seq_start, err) != 0)
        return -1;
    if (!a->states)
        return rwkv_fail(err, "cuda: wkv7_scan harness: no states");
    return with_harness(device, 0, err, [&](kh *h) -> int {
        k7_dims(h, a);
        size_t MC = (size_t)a->M * a->C, B = MC * sizeof(float);
        size_t SF = (size_t)a->C + (size_t)h->c.H * a->N * a->N, SB = SF * sizeof(float);
        cu_scratch *s = &h->c.s;
        float *st;
        KH_ALLOC(st, float *, (size_t)a->n_seg * SB);
        cu_pass p;
        if (make_pass(h, &p, a->M, a->n_seg, a->seq_start, st, SF, err) != 0)
            return -1;
        KH_COPY(s->r, a->r, MC);
        KH_COPY(s->w, a->w, MC);
        KH_COPY(s->k, a->k, MC);
        KH_COPY(s->v, a->v, MC);
        KH_COPY(s->kk, a->kk, MC);
        KH_COPY(s->a, a->a, MC);
        KH_ALLOC(s->y, float *, B);
        for (int rep = 0; rep < 2; rep++) {
            for (int g = 0; g < a->n_seg; g++)
                if (up(h, st + (size_t)g * SF, a->states[g], SB, err))
                    return -1;
            /* layer 0's slice: att_kv sits after att_x_prev, as in a state */
            if (tick(h, 0, err) || launch_wkv7_scan(&h->c, &p, 0, err) || tick(h, 1, err))
                return -1;
        }
        if (elapsed(h, 1, ms, err) || down(h, a->y, s->y, B, err))
            return -1;
        for (int g = 0; g < a->n_seg; g++)
            if (down(h, a->states[g], st + (size_t)g * SF, SB, err))
                return -1;
        return 0;
    });
}

extern "C" int rwkv_cuda_k_wkv7_output(int device, int use_bf16, const rwkv_cuda_k7 *a,
                                       float *out, double ms[1], rwkv_error *err)
{
    if (check_k7("wkv7_output", a, err) != 0)
        return -1;
    return with_harness(device, use_bf16, err, [&](kh *h) -> int {
        k7_dims(h, a);
        size_t MC = (size_t)a->M * a->C;
        cu_layer7 ly;
        memset(&ly, 0, sizeof ly);
        KH_COPY(ly.lnx_w, a->lnx_w, a->C);
        KH_COPY(ly.lnx_b, a->lnx_b, a->C);
        KH_COPY(ly.r_k, a->r_k, a->C);
        cu_scratch *s = &h->c.s;
        KH_COPY(s->y, a->y, MC);
        KH_COPY(s->r, a->r, MC);
        KH_COPY(s->k, a->k, MC);
        KH_COPY(s->v, a->v, MC);
        KH_COPY(s->g, a->g, MC);
        KH_ALLOC(s->yg, void *, MC * h->c.act_size);
        for (int rep = 0; rep < 2; rep++)
            if (tick(h, 0, err) || launch_wkv7_output(&h->c, a->M, &ly, err) || tick(h, 1, err))
                return -1;
        if (elapsed(h, 1, ms, err) || down_act(h, out, s->yg, MC, err))
            return -1;
        return 0;
    });
}

/* ---------------------------------------------------------------- elementwise */

extern "C" int rwkv_cuda_k_relu_sq(int device, int use_bf16, size_t n, const float *hv,
                                   float *out, double ms[1], rwkv_error *err)
{
    if (n < 1)
        return rwkv_fail(err, "cuda: relu_sq harness: n 0");
    return with_harness(device, use_bf16, err, [&](kh *h) -> int {
        const float *d;
        void *o;
        KH_COPY(d, hv, n);
        KH_ALLOC(o, void *, n * h->c.act_size);
        for (int rep = 0; rep < 2; rep++)
            if (tick(h, 0, err) || launch_relu_sq(&h->c, n, d, o, err) || tick(h, 1, err))
                return -1;
        if (elapsed(h, 1, ms, err) || down_act(h, out, o, n, err))
            return -1;
        return 0;
    });
}

/* ---------------------------------------------------------------- rows */

extern "C" int rwkv_cuda_k_embed(int device, int use_bf16, int C, int V, const float *emb,
                                 const float *ln0_w, const float *ln0_b, int M,
                                 const uint32_t *tokens, float *x, double ms[1],
                                 rwkv_error *err)
{
    if (C < 1 || V < 1 || M < 1)
        return rwkv_fail(err, "cuda: embed harness: C %d, V %d, M %d", C, V, M);
    for (int m = 0; m < M; m++)
        if (tokens[m] >= (uint32_t)V)
            return rwkv_fail(err, "cuda: embed harness: token %u at row %d (V %d)", tokens[m],
                             m, V);
    return with_harness(device, use_bf16, err, [&](kh *h) -> int {
        size_t MC = (size_t)M * C, VC = (size_t)V * C;
        h->c.C = C;
        h->c.V = V;
        void *e;
        uint32_t *tok;
        float *dx;
        KH_ALLOC(e, void *, VC * h->c.act_size);
        if (up_act(h, e, emb, VC, err) != 0)
            return -1;
        h->c.emb = e;
        KH_COPY(h->c.ln0_w, ln0_w, C);
        KH_COPY(h->c.ln0_b, ln0_b, C);
        KH_ALLOC(tok, uint32_t *, (size_t)M * sizeof(uint32_t));
        if (up(h, tok, tokens, (size_t)M * sizeof(uint32_t), err) != 0)
            return -1;
        KH_ALLOC(dx, float *, MC * sizeof(float));
        cu_pass p;
        memset(&p, 0, sizeof p);
        p.M = M;
        p.tokens = tok;
        for (int rep = 0; rep < 2; rep++)
            if (tick(h, 0, err) || launch_embed(&h->c, &p, dx, err) || tick(h, 1, err))
                return -1;
        if (elapsed(h, 1, ms, err) || down(h, x, dx, MC * sizeof(float), err))
            return -1;
        return 0;
    });
}

extern "C" int rwkv_cuda_k_layernorm(int device, int C, int M, const float *x, const float *w,
                                     const float *b, float *y, double ms[1], rwkv_error *err)
{
    if (C < 1 || M < 1)
        return rwkv_fail(err, "cuda: layernorm harness: C %d, M %d", C, M);
    return with_harness(device, 0, err, [&](kh *h) -> int {
        size_t MC = (size_t)M * C;
        h->c.C = C;
        const float *dx, *dw, *db;
        float *dy;
        KH_COPY(dx, x, MC);
        KH_COPY(dw, w, C);
        KH_COPY(db, b, C);
        KH_ALLOC(dy, float *, MC * sizeof(float));
        for (int rep = 0; rep < 2; rep++)
            if (tick(h, 0, err) || launch_layernorm_rows(&h->c, M, dx, dw, db, dy, err) ||
                tick(h, 1, err))
                return -1;
        if (elapsed(h, 1, ms, err) || down(h, y, dy, MC * sizeof(float), err))
            return -1;
        return 0;
    });
}

/* ---------------------------------------------------------------- products */

/* cuBLAS on the harness's stream, set as the engine sets it. */
static int head_blas(kh *h, rwkv_error *err)
{
    if (!(h->c.cublas = cublas_load(err)))
        return -1;
    CUBLAS_TRY(h->c.cublas->create(&h->c.blas));
    CUBLAS_TRY(h->c.cublas->set_stream(h->c.blas, h->c.stream));
    /* as the engine sets it (backend.cu): no TF32 in fp32 mode */
    CUBLAS_TRY(h->c.cublas->set_math_mode(h->c.blas, h->c.prec == CU_FP32 ? CUBLAS_PEDANTIC_MATH
                                                                           : CUBLAS_DEFAULT_MATH));
    return 0;
}

extern "C" int rwkv_cuda_k_head(int device, int use_bf16, int C, int V, const float *head, int M,
                                const float *hrows, int n, const int *rows, const int *target,
                                float *logits, float *surprisal, double ms[3], rwkv_error *err)
{
    if (C < 1 || V < 1 || M < 1 || n < 1)
        return rwkv_fail(err, "cuda: head harness: C %d, V %d, M %d, n %d", C, V, M, n);
    for (int i = 0; i < n; i++)
        if (rows[i] < 0 || rows[i] >= M || target[i] < -1 || target[i] >= V)
            return rwkv_fail(err, "cuda: head harness: entry %d: row %d (M %d), target %d (V %d)",
                             i, rows[i], M, target[i], V);
    return with_harness(device, use_bf16, err, [&](kh *h) -> int {
        h->c.C = C;
        h->c.V = V;
        if (head_blas(h, err) != 0)
            return -1;
        size_t VC = (size_t)V * C, NV = (size_t)n * V;
        void *dw, *din;
        const float *dh;
        int *drow, *dtgt;
        float *dlog, *dsur;
        KH_ALLOC(dw, void *, VC * h->c.act_size);
        if (up_act(h, dw, head, VC, err) != 0)
            return -1;
        KH_COPY(dh, hrows, (size_t)M * C);
        KH_ALLOC(drow, int *, (size_t)n * sizeof(int));
        KH_ALLOC(dtgt, int *, (size_t)n * sizeof(int));
        if (up(h, drow, rows, (size_t)n * sizeof(int), err) ||
            up(h, dtgt, target, (size_t)n * sizeof(int), err))
            return -1;
        KH_ALLOC(din, void *, (size_t)n * C * h->c.act_size);
        KH_ALLOC(dlog, float *, NV * sizeof(float));
        KH_ALLOC(dsur, float *, (size_t)n * sizeof(float));
        for (int rep = 0; rep < 2; rep++)
            if (tick(h, 0, err) || launch_gather_rows(&h->c, n, drow, dh, din, err) ||
                tick(h, 1, err) || cu_gemm(&h->c, n, V, C, din, C, dw, dlog, V, 0, err) ||
                tick(h, 2, err) || launch_surprisal(&h->c, n, dlog, dtgt, dsur, err) ||
                tick(h, 3, err))
                return -1;
        if (elapsed(h, 3, ms, err) || down(h, logits, dlog, NV * sizeof(float), err) ||
            down(h, surprisal, dsur, (size_t)n * sizeof(float), err))
            return -1;
        return 0;
    });
}

extern "C" int rwkv_cuda_k_gemm(int device, int use_bf16, int M, int N, int K, const float *X,
                                int ldx, int xoff, const float *W, float *Y, int ldy, int yoff,
                                int accumulate, double ms[1], rwkv_error *err)
{
    if (M < 1 || N < 1 || K < 1 || xoff < 0 || xoff % 8 != 0 || xoff + K > ldx || yoff < 0 ||
        yoff + N > ldy)
        return rwkv_fail(err, "cuda: gemm harness: M %d N %d K %d, X ld %d at %d, Y ld %d at %d",
                         M, N, K, ldx, xoff, ldy, yoff);
    return with_harness(device, use_bf16, err, [&](kh *h) -> int {
        if (head_blas(h, err) != 0)
            return -1;
        size_t XN = (size_t)M * ldx, WN = (size_t)N * K, YN = (size_t)M * ldy;
        void *dx, *dw;
        float *dy;
        KH_ALLOC(dx, void *, XN * h->c.act_size);
        KH_ALLOC(dw, void *, WN * h->c.act_size);
        KH_ALLOC(dy, float *, YN * sizeof(float));
        if (up_act(h, dx, X, XN, err) || up_act(h, dw, W, WN, err))
            return -1;
        const char *xp = (const char *)dx + (size_t)xoff * h->c.act_size;
        for (int rep = 0; rep < 2; rep++)
            if (up(h, dy, Y, YN * sizeof(float), err) || tick(h, 0, err) ||
                cu_gemm(&h->c, M, N, K, xp, ldx, dw, dy + yoff, ldy, accumulate, err) ||
                tick(h, 1, err))
                return -1;
        if (elapsed(h, 1, ms, err) || down(h, Y, dy, YN * sizeof(float), err))
            return -1;
        return 0;
    });
}

extern "C" int rwkv_cuda_k_colsum(int device, int C, int M, int n_seg, const int *seq_start,
                                  int n_sum, const int *sum_seg, const float *hrows,
                                  double *colsum, double ms[1], rwkv_error *err)
{
    if (C < 1 || check_segments("colsum", M, n_seg, seq_start, err) != 0)
        return C < 1 ? rwkv_fail(err, "cuda: colsum harness: C %d", C) : -1;
    if (n_sum < 1 || n_sum > n_seg)
        return rwkv_fail(err, "cuda: colsum harness: %d sums of %d segments", n_sum, n_seg);
    for (int j = 0; j < n_sum; j++)
        if (sum_seg[j] < 0 || sum_seg[j] >= n_seg)
            return rwkv_fail(err, "cuda: colsum harness: segment %d of %d", sum_seg[j], n_seg);
    return with_harness(device, 0, err, [&](kh *h) -> int {
        h->c.C = C;
        cu_pass p;
        if (make_pass(h, &p, M, n_seg, seq_start, NULL, 0, err) != 0)
            return -1;
        int *dseg;
        const float *dh;
        double *dsum;
        KH_ALLOC(dseg, int *, (size_t)n_sum * sizeof(int));
        if (up(h, dseg, sum_seg, (size_t)n_sum * sizeof(int), err) != 0)
            return -1;
        p.n_sum = n_sum;
        p.sum_seg = dseg;
        KH_COPY(dh, hrows, (size_t)M * C);
        KH_ALLOC(dsum, double *, (size_t)n_sum * C * sizeof(double));
        for (int rep = 0; rep < 2; rep++)
            if (tick(h, 0, err) || launch_colsum(&h->c, &p, dh, dsum, err) || tick(h, 1, err))
                return -1;
        if (elapsed(h, 1, ms, err) ||
            down(h, colsum, dsum, (size_t)n_sum * C * sizeof(double), err))
            return -1;
        return 0;
    });
}
