/* backend.h — the seam between the engine and the backends that run it.
 *
 * The engine (forward.h) validates requests and hands them to a backend
 * through this table; every backend plans its passes with plan.h, so all
 * compute the same rows.  The CPU is a backend like any other
 * (core/engine/cpu_backend.c).  A device backend (kernels/, compiled by nvcc
 * when it exists) exports one function, rwkv_cuda_backend(), returning its
 * table; core declares it weak, so a build without CUDA links and simply
 * reports "not built with CUDA".  core/ is plain C and never includes a CUDA
 * header.
 *
 * States on a device: a document's state lives on the device while that
 * device's engine uses it and comes back to the host only when someone
 * reads it (export for a checkpoint, a CPU engine, a copy).  The state
 * object keeps the device copy's handle and which copy is current; the
 * backend owns the device memory (state_alloc/state_free/upload/download).
 */
#ifndef RWKV_BACKEND_H
#define RWKV_BACKEND_H

#include <stddef.h>

#include "core/error.h"
#include "core/forward.h"
#include "core/model.h"

typedef struct rwkv_backend_ops {
    const char *name; /* "cpu", "cuda" */
    /* An engine context for model m on device `device` (the N of cuda:N;
     * 0 for the CPU) using n_threads host threads (<= 0: one per online
     * CPU; a device backend may ignore it).  NULL with err when there is no
     * device, too little memory, an unsupported architecture or
     * generation. */
    void *(*create)(const rwkv_model *m, int device, int n_threads, rwkv_error *err);
    void (*destroy)(void *ctx);
    /* One line describing the device, e.g. "NVIDIA H100 (sm_90), 80 GiB". */
    const char *(*describe)(void *ctx);
    /* Host threads the context runs on (0 for none of its own). */
    int (*threads)(void *ctx);
    /* Called with validated requests whose states are where the backend
     * works on them: device-resident when it has state_alloc (see
     * rwkv_state_device in state_internal.h), current on the host when not.
     * Same contract as rwkv_forward otherwise. */
    int (*forward)(void *ctx, rwkv_request *reqs, int n, rwkv_error *err);
    /* Device memory for one state of n floats; NULL with err on failure.
     * The four state functions are NULL for a backend that works on host
     * states (the CPU). */
    void *(*state_alloc)(void *ctx, size_t n, rwkv_error *err);
    void (*state_free)(void *ctx, void *dev);
    int (*state_upload)(void *ctx, void *dev, const float *host, size_t n, rwkv_error *err);
    int (*state_download)(void *ctx, void *dev, float *host, size_t n, rwkv_error *err);
    /* 1: forward fills the top-k outputs itself.  0: the engine asks it for
     * every row's logits of the requests that want top-k and ranks them on
     * the host (engine.c), at the cost of an [n_tokens][V] buffer. */
    int topk;
    /* 1: forward fills eos_sum / eos_count itself.  0: the engine asks it
     * for every row's hidden output of the requests that want them and sums
     * the EOS rows on the host (engine.c). */
    int eos_sum;
    /* The precision of the context's large products (core/precision.h,
     * never auto): what the daemon records in checkpoints and names in its
     * outputs, so it must say what really runs (the CUDA backend's bf16
     * default included).  NULL: fp32. */
    rwkv_precision (*precision)(void *ctx);
} rwkv_backend_ops;

/* Provided by kernels/ when CUDA is built; a NULL function address otherwise. */
const rwkv_backend_ops *rwkv_cuda_backend(void) __attribute__((weak));

#endif
