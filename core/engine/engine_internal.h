/* engine_internal.h — the engine context and the batch as the layer code
 * sees them.  Not part of the public API. */
#ifndef RWKV_ENGINE_INTERNAL_H
#define RWKV_ENGINE_INTERNAL_H

#include "core/backend.h"
#include "core/forward.h"
#include "core/engine/matmul.h"
#include "core/model/model_internal.h"
#include "core/threadpool.h"

/* The tokens of all requests, concatenated: rows start[i]..start[i+1]-1 of
 * every [M][...] buffer belong to request i, whose state is state[i]. */
typedef struct rwkv_batch {
    int n_seqs;
    int M;
    const int *start;      /* [n_seqs + 1] */
    float *const *state;   /* [n_seqs], flat official layout */
} rwkv_batch;

struct rwkv_engine {
    const rwkv_model *model;
    /* a device engine: everything runs through ops (the CPU fields below
     * stay unused) */
    const rwkv_backend_ops *ops;
    void *dev_ctx;
    char device[128];
    rwkv_pool *pool;
    rwkv_matmul_scratch *mm;
    int n_threads;
    rwkv_precision precision; /* FP32 unless set by rwkv_engine_new_opts */
    /* grown on demand, kept between calls */
    float *x;          size_t x_cap;        /* residual stream [M][C] */
    float *scratch;    size_t scratch_cap;  /* the arch's layer scratch */
    float *head_buf;   size_t head_cap;     /* logits rows [rows][V] */
    int *start;        size_t start_cap;
    float **states;    size_t states_cap;
    uint32_t *tokens;  size_t tokens_cap;
};

/* Runs fn over [0, n) in contiguous ranges, one or a few per thread:
 * fn(arg, begin, end). */
typedef void (*rwkv_range_fn)(void *arg, int begin, int end);
void rwkv_parallel_ranges(rwkv_engine *e, int n, int min_per_task, rwkv_range_fn fn, void *arg);

#endif
