/* kernel_harness.cuh — what the per-kernel harness files share
 * (kernels/kernel_harness.cu implements it; harness_rows.cu, harness_wkv7.cu
 * and harness_products.cu run the kernels; the contract of each run is in
 * rwkv_cuda.h): a context built with only the fields a launcher reads,
 * device buffers tracked and freed on every path, host<->device copies
 * (act buffers converted to and from bf16 on the host), CUDA-event timing,
 * and the pass metadata of a segment table.  Every function returns 0, or
 * -1 with err. */
#ifndef RWKV_KERNEL_HARNESS_CUH
#define RWKV_KERNEL_HARNESS_CUH

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

/* Starts a harness on `device` in bf16 or fp32 mode (no device: the
 * "no CUDA device" error); kh_end frees everything, also after a failure. */
int kh_begin(kh *h, int device, int use_bf16, rwkv_error *err);
void kh_end(kh *h);
/* A device buffer freed by kh_end; NULL with err. */
void *kh_alloc(kh *h, size_t bytes, rwkv_error *err);
/* KH_ALLOC / KH_COPY: in a function returning int with `kh *h` and
 * `rwkv_error *err` in scope, allocate (and fill) or return -1. */
#define KH_ALLOC(ptr, type, bytes)                                                    \
    do {                                                                              \
        if (!((ptr) = (type)kh_alloc(h, (bytes), err)))                               \
            return -1;                                                                \
    } while (0)

/* Waits for everything queued on the harness's stream. */
int kh_sync(kh *h, rwkv_error *err);
/* Copies on the harness's stream; kh_down waits for its copy. */
int kh_up(kh *h, void *dev, const void *host, size_t bytes, rwkv_error *err);
int kh_down(kh *h, void *host, const void *dev, size_t bytes, rwkv_error *err);
/* n floats to / from an act buffer (bf16 in bf16 mode, rounded to nearest even). */
int kh_up_act(kh *h, void *dev, const float *host, size_t n, rwkv_error *err);
int kh_down_act(kh *h, float *host, const void *dev, size_t n, rwkv_error *err);
/* Event i on the stream; kh_elapsed: ms[i] = time from event i to i+1, i < n. */
int kh_tick(kh *h, int i, rwkv_error *err);
int kh_elapsed(kh *h, int n, double *ms, rwkv_error *err);
/* Segments as the planner makes them: non-empty, in order, covering M rows
 * (checked before any device call). */
int kh_check_segments(const char *what, int M, int n_seg, const int *seq_start,
                      rwkv_error *err);
/* The pass metadata of M rows in n_seg segments whose states are
 * state_floats apart in `states` (device; NULL: none), on the device. */
int kh_make_pass(kh *h, cu_pass *p, int M, int n_seg, const int *seq_start, float *states,
                 size_t state_floats, rwkv_error *err);
/* A device copy of n host floats; NULL with err. */
float *kh_dev_copy(kh *h, const float *host, size_t n, rwkv_error *err);
#define KH_COPY(ptr, host, n)                                                         \
    do {                                                                              \
        if (!((ptr) = kh_dev_copy(h, (host), (n), err)))                              \
            return -1;                                                                \
    } while (0)

/* cuBLAS on the harness's stream, set as the engine sets it (backend.cu). */
int kh_blas(kh *h, rwkv_error *err);

/* Runs body(h) inside a harness on `device`: the public functions
 * (harness_*.cu) check their arguments, then call this. */
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

#endif
