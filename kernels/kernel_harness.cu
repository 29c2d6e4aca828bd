/* kernel_harness.cu — the per-kernel harness's shared machinery
 * (kernel_harness.cuh says what each function does).
 *
 * Every run goes through the backend's own launcher on a context built
 * with only the fields that launcher reads, so what is tested is exactly
 * what the engine launches.  Each sequence runs twice from freshly uploaded
 * inputs (in-place kernels such as the scan would otherwise start the second
 * run from the first one's result); the second run is timed, because the
 * first pays for loading the module on the device. */
#include <stdlib.h>
#include <string.h>

#include "kernels/kernel_harness.cuh"

int kh_begin(kh *h, int device, int use_bf16, rwkv_error *err)
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

void kh_end(kh *h)
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

void *kh_alloc(kh *h, size_t bytes, rwkv_error *err)
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

int kh_up(kh *h, void *dev, const void *host, size_t bytes, rwkv_error *err)
{
    CU_TRY(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, h->c.stream));
    return 0;
}

int kh_sync(kh *h, rwkv_error *err)
{
    CU_TRY(cudaStreamSynchronize(h->c.stream));
    return 0;
}

/* Waits for the copy: the host buffer is read right after. */
int kh_down(kh *h, void *host, const void *dev, size_t bytes, rwkv_error *err)
{
    CU_TRY(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, h->c.stream));
    CU_TRY(cudaStreamSynchronize(h->c.stream));
    return 0;
}

/* n floats to an act buffer (rounded to bf16 in bf16 mode). */
int kh_up_act(kh *h, void *dev, const float *host, size_t n, rwkv_error *err)
{
    if (h->c.prec == CU_FP32)
        return kh_up(h, dev, host, n * sizeof(float), err);
    bf16 *t = (bf16 *)malloc(n * sizeof(bf16) + 1);
    if (!t)
        return rwkv_fail(err, "cuda: kernel harness: out of host memory");
    for (size_t i = 0; i < n; i++)
        t[i] = __float2bfloat16_rn(host[i]);
    int rc = kh_up(h, dev, t, n * sizeof(bf16), err);
    /* the staging buffer is freed below: let the copy finish with it */
    if (rc == 0)
        rc = kh_sync(h, err);
    free(t);
    return rc;
}

/* n elements of an act buffer, widened to float. */
int kh_down_act(kh *h, float *host, const void *dev, size_t n, rwkv_error *err)
{
    if (h->c.prec == CU_FP32)
        return kh_down(h, host, dev, n * sizeof(float), err);
    bf16 *t = (bf16 *)malloc(n * sizeof(bf16) + 1);
    if (!t)
        return rwkv_fail(err, "cuda: kernel harness: out of host memory");
    int rc = kh_down(h, t, dev, n * sizeof(bf16), err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        host[i] = __bfloat162float(t[i]);
    free(t);
    return rc;
}

int kh_tick(kh *h, int i, rwkv_error *err)
{
    CU_TRY(cudaEventRecord(h->ev[i], h->c.stream));
    return 0;
}

/* ms[i] = time from event i to i+1, i < n. */
int kh_elapsed(kh *h, int n, double *ms, rwkv_error *err)
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
int kh_check_segments(const char *what, int M, int n_seg, const int *seq_start,
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
int kh_make_pass(kh *h, cu_pass *p, int M, int n_seg, const int *seq_start, float *states,
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
        rc = kh_up(h, row_seq, hrow, (size_t)M * sizeof(int), err) ||
                     kh_up(h, starts, seq_start, (size_t)(n_seg + 1) * sizeof(int), err) ||
                     kh_up(h, ptrs, hptr, (size_t)n_seg * sizeof(float *), err)
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
float *kh_dev_copy(kh *h, const float *host, size_t n, rwkv_error *err)
{
    float *d = (float *)kh_alloc(h, n * sizeof(float), err);
    if (d && kh_up(h, d, host, n * sizeof(float), err) != 0)
        return NULL;
    return d;
}

int kh_blas(kh *h, rwkv_error *err)
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
