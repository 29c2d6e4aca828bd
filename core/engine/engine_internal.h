/* engine_internal.h — the CPU backend's context and the batch as the layer
 * code sees them.  Not part of the public API.
 *
 * The public engine (forward.h, engine.c) is backend-neutral: it validates
 * requests and hands them to a backend (backend.h).  The CPU is one such
 * backend (cpu_backend.c, cpu_forward.c); its context, rwkv_cpu, is what the
 * generations' layer functions run on. */
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

typedef struct rwkv_cpu {
    const rwkv_model *model;
    rwkv_pool *pool;
    rwkv_matmul_scratch *mm;
    int n_threads;
    char device[64];
    rwkv_precision precision; /* FP32 unless set by rwkv_engine_new_opts */
    /* grown on demand, kept between calls */
    float *x;          size_t x_cap;        /* residual stream [M][C] */
    float *scratch;    size_t scratch_cap;  /* the arch's layer scratch */
    float *head_buf;   size_t head_cap;     /* logits rows [rows][V] */
    int *start;        size_t start_cap;
    float **states;    size_t states_cap;
} rwkv_cpu;

/* An engine on backend ops (what rwkv_engine_new_on picks by device name);
 * tests use it to run the engine's generic paths on variants of a table. */
rwkv_engine *rwkv_engine_new_with(const rwkv_model *m, const rwkv_backend_ops *ops, int device,
                                  int n_threads, rwkv_error *err);

/* -1 with err ("<path> holds int8-quantized weights (rwkv quantize); it
 * runs only at --precision int8 on the CPU, not <asked>") when m is an int8
 * file; else 0.  Every engine but an int8 CPU one refuses such a model. */
int rwkv_engine_refuse_int8_file(const rwkv_model *m, const char *asked, rwkv_error *err);

/* The CPU backend's context of engine e, or NULL when e runs elsewhere (a
 * device); engine_opts.c sets a CPU engine's precision through it. */
rwkv_cpu *rwkv_engine_cpu(const rwkv_engine *e);

/* The CPU backend's table (cpu_backend.c); its forward is in cpu_forward.c. */
const rwkv_backend_ops *rwkv_cpu_backend(void);
int rwkv_cpu_forward(void *ctx, rwkv_request *reqs, int n_reqs, rwkv_error *err);

/* Runs fn over [0, n) in contiguous ranges, one or a few per thread:
 * fn(arg, begin, end). */
typedef void (*rwkv_range_fn)(void *arg, int begin, int end);
void rwkv_parallel_ranges(rwkv_cpu *e, int n, int min_per_task, rwkv_range_fn fn, void *arg);

#endif
