/* gpu_harness.h — what the GPU test programs (tests/test_gpu_*.c) share:
 * finding out once whether a CUDA device is there (tests SKIP with the
 * reason when not — a skip never reads as a pass), engines on the device in
 * a chosen precision, and the comparisons the CUDA backend is held to:
 *  - fp32 mode: the fixtures' own tolerances (manifest), element by element;
 *  - bf16 mode: a statistical bound over all compared logits, max |Δ| <=
 *    8% and mean |Δ| <= 1% of the reference logits' std (the bound;
 *    the official package's own cpu-bf16 run is at 6.7% / 0.5%).
 *
 * Developer aid, never used by make: RWKVD_TEST_GPU_ON_CPU=1 makes every
 * "GPU" engine a CPU engine, so the tests' own logic (buffers, bounds,
 * bookkeeping) can be exercised on a machine without a GPU. */
#ifndef RWKV_GPU_HARNESS_H
#define RWKV_GPU_HARNESS_H

#include <stddef.h>

#include "core/error.h"
#include "core/forward.h"
#include "core/model.h"

#define GPU_BF16_MAX_FRAC 0.08
#define GPU_BF16_MEAN_FRAC 0.01

typedef struct gpu_test {
    const char *name;
    void (*fn)(void);
} gpu_test;

/* Call first in main: detects the device (or the CPU stand-in mode) and
 * records argv[0] for gpu_bin(). */
void gpu_harness_init(const char *argv0);
/* 1 when tests run on a real device; 0 in the CPU stand-in mode. */
int gpu_real(void);
/* Runs each test, or prints "SKIP: name: no CUDA device: <why>" for each. */
void gpu_run_all(const gpu_test *tests, size_t n);

/* An engine on cuda:0 in precision "bf16" or "fp32" (a CPU engine in the
 * stand-in mode).  NULL with err on failure. */
rwkv_engine *gpu_engine(const rwkv_model *m, const char *precision, rwkv_error *err);
/* The same with RWKV_CUDA_PASS_ROWS = pass_rows. */
rwkv_engine *gpu_engine_rows(const rwkv_model *m, const char *precision, int pass_rows,
                             rwkv_error *err);

/* build/<flavour>/bin/<prog> next to the running test. */
const char *gpu_bin(const char *prog);

/* max |got - ref| over n <= bound; otherwise the current test fails with
 * the worst element (row = index / row_len) named.  0 / -1. */
int gpu_check_close(const float *got, const float *ref, size_t n, size_t row_len, double bound,
                    const char *what);
/* The bf16 statistical bound against reference std `std`; prints the
 * measured fractions as a '#' line.  0 / -1. */
int gpu_check_stat(const float *got, const float *ref, size_t n, double std, const char *what);

/* The RWKV-7 state rule of the fixtures, per layer slice (att_x_prev,
 * att_kv, ffn_x_prev): max |Δ| <= tol * max(1, max |ref slice|). 0 / -1. */
int gpu_check_state_v7(const float *got, const float *ref, const rwkv_model *m, double tol,
                       const char *what);

#endif
