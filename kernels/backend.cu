/* backend.cu — the CUDA backend's table for core (core/backend.h): engine
 * contexts (checks that refuse what cannot run, with a message saying why;
 * weights uploaded once; working memory sized from what the device has
 * free), device-resident states, and the device queries tests and
 * benchmarks use.
 *
 * Order of the checks in create(), cheapest and most specific first: the
 * model (generation, head size), the precision setting, then the device
 * (exists, architecture, a kernel image for it, memory). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_internal.cuh"

/* Rows per pass at most: past ~16k rows the products are as efficient as
 * they get, and the working memory stays a few GB even for wide models. */
#define MAX_PASS_ROWS 16384
/* Device memory left alone for cuBLAS workspaces, the CUDA context's own
 * allocations and other tenants. */
#define HEADROOM_BYTES ((size_t)512 << 20)

static __global__ void probe_kernel(int *p)
{
    if (p)
        *p = 1;
}

static double gib(size_t b)
{
    return (double)b / (1024.0 * 1024.0 * 1024.0);
}

extern "C" int rwkv_cuda_device_count(rwkv_error *err)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return rwkv_fail(err, "no CUDA device: %s (%s)", cudaGetErrorString(e),
                         cudaGetErrorName(e));
    }
    if (n < 1)
        return rwkv_fail(err, "no CUDA device: the driver reports none");
    return n;
}

/* Device `device` exists and can run our kernels; fills prop. */
static int check_device(int device, cudaDeviceProp *prop, rwkv_error *err)
{
    rwkv_error e2;
    int n = rwkv_cuda_device_count(&e2);
    if (n < 0)
        return rwkv_fail(err, "cuda:%d: %s", device, e2.msg);
    if (device < 0 || device >= n)
        return rwkv_fail(err, "cuda:%d: no such device (this machine has %d CUDA device%s: "
                              "cuda:0%s)",
                         device, n, n == 1 ? "" : "s", n == 1 ? "" : "..");
    CU_TRY(cudaSetDevice(device));
    CU_TRY(cudaGetDeviceProperties(prop, device));
    if (prop->major < 8)
        return rwkv_fail(err, "cuda:%d: %s is sm_%d%d; the CUDA backend needs compute "
                              "capability 8.0 or newer (bf16 tensor cores)",
                         device, prop->name, prop->major, prop->minor);
    cudaFuncAttributes fa;
    cudaError_t e = cudaFuncGetAttributes(&fa, probe_kernel);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return rwkv_fail(err, "cuda:%d: %s (sm_%d%d): this build has no kernel image for it "
                              "(built for sm_80, sm_90 and compute_90 PTX): %s",
                         device, prop->name, prop->major, prop->minor, cudaGetErrorString(e));
    }
    return 0;
}

/* The environment's settings (rwkv_cuda.h): precision and pass size cap. */
static int parse_env(cu_precision *p, int *pass_cap, rwkv_error *err)
{
    const char *s = getenv(RWKV_CUDA_PRECISION_ENV);
    if (!s || !*s || strcmp(s, "bf16") == 0)
        *p = CU_BF16;
    else if (strcmp(s, "fp32") == 0)
        *p = CU_FP32;
    else
        return rwkv_fail(err, "cuda: %s='%.40s': expected bf16 or fp32",
                         RWKV_CUDA_PRECISION_ENV, s);
    *pass_cap = MAX_PASS_ROWS;
    s = getenv(RWKV_CUDA_PASS_ROWS_ENV);
    if (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end || v < 16 || v > MAX_PASS_ROWS)
            return rwkv_fail(err, "cuda: %s='%.40s': expected a row count from 16 to %d",
                             RWKV_CUDA_PASS_ROWS_ENV, s, MAX_PASS_ROWS);
        *pass_cap = (int)v;
    }
    return 0;
}

static void destroy(void *vctx)
{
    cu_ctx *c = (cu_ctx *)vctx;
    if (!c)
        return;
    /* best effort: a failing device must not stop the rest being freed */
    (void)cudaSetDevice(c->device);
    if (c->stream)
        (void)cudaStreamSynchronize(c->stream);
    cu_scratch_free(c);
    cu_weights_free(c);
    if (c->blas)
        (void)c->cublas->destroy(c->blas);
    if (c->stream)
        (void)cudaStreamDestroy(c->stream);
    (void)cudaGetLastError();
    free(c);
}

static int setup(cu_ctx *c, const cudaDeviceProp *prop, int pass_cap, rwkv_error *err)
{
    const rwkv_model_info *mi = &c->m->info;
    size_t free_b = 0, total_b = 0;
    CU_TRY(cudaMemGetInfo(&free_b, &total_b));
    size_t wbytes = cu_weight_bytes(c->m, c->act_size);
    size_t head_bytes = (size_t)cu_head_rows(mi->vocab_size) * ((size_t)mi->vocab_size + c->C + 1) * 4;
    size_t need = wbytes + head_bytes + 64 * cu_scratch_bytes_per_row(c) + HEADROOM_BYTES;
    if (free_b < need)
        return rwkv_fail(err, "cuda:%d: not enough device memory: this model needs about %.2f "
                              "GiB on the device (%s weights %.2f GiB), %.2f GiB free of %.2f GiB",
                         c->device, gib(need), c->prec == CU_BF16 ? "bf16" : "fp32", gib(wbytes),
                         gib(free_b), gib(total_b));
    if (!(c->cublas = cublas_load(err)))
        return rwkv_fail_prefix(err, "cuda:%d", c->device);
    CU_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    CUBLAS_TRY(c->cublas->create(&c->blas));
    CUBLAS_TRY(c->cublas->set_stream(c->blas, c->stream));
    /* fp32 mode: no TF32 anywhere (the fixture check); bf16 mode: tensor ops */
    CUBLAS_TRY(c->cublas->set_math_mode(c->blas, c->prec == CU_FP32 ? CUBLAS_PEDANTIC_MATH
                                                                     : CUBLAS_DEFAULT_MATH));
    if (cu_weights_upload(c, err) != 0 || cu_head_alloc(c, err) != 0)
        return -1;
    /* the pass size the remaining memory allows */
    CU_TRY(cudaMemGetInfo(&free_b, &total_b));
    size_t per_row = cu_scratch_bytes_per_row(c);
    size_t avail = free_b > HEADROOM_BYTES ? free_b - HEADROOM_BYTES : 0;
    size_t rows = avail / per_row;
    if (rows > MAX_PASS_ROWS)
        rows = MAX_PASS_ROWS;
    if (rows < 16)
        return rwkv_fail(err, "cuda:%d: not enough device memory left for working buffers "
                              "after the weights (%.2f GiB free, %.1f MiB per token row)",
                         c->device, gib(free_b), (double)per_row / (1024.0 * 1024.0));
    c->max_rows = (int)(rows & ~(size_t)15);
    if (c->max_rows > pass_cap)
        c->max_rows = pass_cap;
    snprintf(c->desc, sizeof c->desc, "cuda:%d %.80s (sm_%d%d, %.1f GiB), %s", c->device, prop->name,
             prop->major, prop->minor, gib(prop->totalGlobalMem),
             c->prec == CU_BF16 ? "bf16 weights, fp32 state" : "fp32 (no TF32)");
    return 0;
}

static void *create(const rwkv_model *m, int device, int n_threads, rwkv_error *err)
{
    (void)n_threads; /* the device does the work; host code runs on the caller's thread */
    const rwkv_model_info *mi = &m->info;
    if (mi->generation != RWKV_GEN_V7) {
        rwkv_fail(err, "cuda:%d: %s is not supported by the CUDA backend yet (it runs RWKV-7 "
                       "only); use --device cpu",
                  device, rwkv_generation_name(mi->generation));
        return NULL;
    }
    if (!wkv7_scan_supported(mi->head_size)) {
        rwkv_fail(err, "cuda:%d: head size %d is not supported by the CUDA backend (32, 64 or "
                       "128); use --device cpu",
                  device, mi->head_size);
        return NULL;
    }
    cu_precision prec;
    int pass_cap;
    if (parse_env(&prec, &pass_cap, err) != 0)
        return NULL;
    cudaDeviceProp prop;
    if (check_device(device, &prop, err) != 0)
        return NULL;
    cu_ctx *c = (cu_ctx *)calloc(1, sizeof *c);
    if (!c) {
        rwkv_fail(err, "cuda:%d: out of host memory", device);
        return NULL;
    }
    c->device = device;
    c->prec = prec;
    c->act_size = prec == CU_BF16 ? sizeof(bf16) : sizeof(float);
    c->m = m;
    c->wts = (const rwkv7_weights *)m->layers;
    c->L = mi->n_layer;
    c->C = mi->n_embd;
    c->H = mi->n_head;
    c->N = mi->head_size;
    c->F = mi->ffn_dim;
    c->V = mi->vocab_size;
    cu_lora_layout(c, c->wts->lora_w, c->wts->lora_a, c->wts->lora_g, c->wts->lora_v);
    if (setup(c, &prop, pass_cap, err) != 0) {
        destroy(c);
        return NULL;
    }
    return c;
}

void cu_lora_layout(cu_ctx *c, int w, int a, int g, int v)
{
    c->lora_w[LORA_W] = w;
    c->lora_w[LORA_A] = a;
    c->lora_w[LORA_G] = g;
    c->lora_w[LORA_V] = v;
    int off = 0;
    for (int i = 0; i < 4; i++) {
        c->lora_off[i] = off;
        off += (c->lora_w[i] + 7) & ~7;
    }
    c->lora_ld = off;
}

static const char *describe(void *vctx)
{
    return ((cu_ctx *)vctx)->desc;
}

static void *state_alloc(void *vctx, size_t n, rwkv_error *err)
{
    cu_ctx *c = (cu_ctx *)vctx;
    if (n != c->m->info.state_floats) {
        rwkv_fail(err, "cuda:%d: a state of %zu floats for a model whose state has %zu",
                  c->device, n, c->m->info.state_floats);
        return NULL;
    }
    cudaError_t e = cudaSetDevice(c->device);
    void *p = NULL;
    if (e == cudaSuccess)
        e = cudaMalloc(&p, n * sizeof(float));
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        rwkv_fail(err, "cuda:%d: cannot allocate a state of %.1f MiB on the device: %s",
                  c->device, (double)(n * sizeof(float)) / (1024.0 * 1024.0),
                  cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

static void state_free(void *vctx, void *dev)
{
    cu_ctx *c = (cu_ctx *)vctx;
    if (!dev)
        return;
    (void)cudaSetDevice(c->device);
    (void)cudaFree(dev);
    (void)cudaGetLastError();
}

static int state_upload(void *vctx, void *dev, const float *host, size_t n, rwkv_error *err)
{
    cu_ctx *c = (cu_ctx *)vctx;
    CU_TRY(cudaSetDevice(c->device));
    CU_TRY(cudaMemcpyAsync(dev, host, n * sizeof(float), cudaMemcpyHostToDevice, c->stream));
    CU_TRY(cudaStreamSynchronize(c->stream));
    return 0;
}

static int state_download(void *vctx, void *dev, float *host, size_t n, rwkv_error *err)
{
    cu_ctx *c = (cu_ctx *)vctx;
    CU_TRY(cudaSetDevice(c->device));
    CU_TRY(cudaMemcpyAsync(host, dev, n * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
    CU_TRY(cudaStreamSynchronize(c->stream));
    return 0;
}

/* What the daemon records in checkpoints and names in its outputs: the
 * default bf16 mode is not fp32, whatever the CPU's --precision says. */
static rwkv_precision precision(void *vctx)
{
    return ((cu_ctx *)vctx)->prec == CU_BF16 ? RWKV_PRECISION_BF16 : RWKV_PRECISION_FP32;
}

static const rwkv_backend_ops OPS = {
    "cuda", create, destroy, describe, NULL, cu_forward, state_alloc, state_free, state_upload,
    state_download,
    0, /* top-k: ranked by the engine on the host from the logits (engine.c) */
    0, /* EOS sums: taken by the engine on the host from the hidden rows (engine.c) */
    precision,
};

/* core declares this weak (core/backend.h); the Makefile's -u pulls this
 * member out of the archive. */
extern "C" const rwkv_backend_ops *rwkv_cuda_backend(void)
{
    return &OPS;
}

extern "C" int rwkv_cuda_describe_device(int device, char *buf, size_t len, rwkv_error *err)
{
    cudaDeviceProp prop;
    if (check_device(device, &prop, err) != 0)
        return -1;
    snprintf(buf, len, "%.80s (sm_%d%d, %d SMs, %.1f GiB)", prop.name, prop.major, prop.minor,
             prop.multiProcessorCount, gib(prop.totalGlobalMem));
    return 0;
}
