/* backend.h — the seam between the engine and a device backend (CUDA).
 *
 * core/ is plain C and never includes a CUDA header.  A device backend
 * (kernels/, compiled by nvcc when it exists) exports one function,
 * rwkv_cuda_backend(), returning this table; core declares it weak, so a
 * build without CUDA links and simply reports "not built with CUDA".
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
    const char *name; /* "cuda" */
    /* An engine context for model m on device `device` (the N of cuda:N).
     * NULL with err when there is no device, too little memory, an
     * unsupported architecture or generation. */
    void *(*create)(const rwkv_model *m, int device, rwkv_error *err);
    void (*destroy)(void *ctx);
    /* One line describing the device, e.g. "NVIDIA H100 (sm_90), 80 GiB". */
    const char *(*describe)(void *ctx);
    /* The requests' states are device-resident when this is called (see
     * rwkv_state_device in state_internal.h).  Same contract as
     * rwkv_forward otherwise. */
    int (*forward)(void *ctx, rwkv_request *reqs, int n, rwkv_error *err);
    /* Device memory for one state of n floats; NULL with err on failure. */
    void *(*state_alloc)(void *ctx, size_t n, rwkv_error *err);
    void (*state_free)(void *ctx, void *dev);
    int (*state_upload)(void *ctx, void *dev, const float *host, size_t n, rwkv_error *err);
    int (*state_download)(void *ctx, void *dev, float *host, size_t n, rwkv_error *err);
} rwkv_backend_ops;

/* Provided by kernels/ when CUDA is built; a NULL function address otherwise. */
const rwkv_backend_ops *rwkv_cuda_backend(void) __attribute__((weak));

#endif
