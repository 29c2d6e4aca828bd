/* kernel_check.h — what the per-kernel CUDA test programs
 * (tests/test_gpu_kernels_*.c) share: seeded random inputs, bf16 rounding,
 * the error measure, the result line, segment tables, and a main that
 * answers --probe, runs the cases or SKIPs them with the reason.
 *
 * Error measure: max |gpu - cpu| / max(1, max |cpu|) over an output; NaN on
 * one side only is an infinite error.  Result line, one per case:
 *   # kernel NAME PREC SHAPE max_err E tol T MS ms ok|FAILED
 * (make gpu-check copies these into its report).
 *
 * `PROGRAM --probe` prints the device ("device: cuda:0 ...", exit 0) or why
 * there is none ("no CUDA device: ...", exit 3); make gpu-check asks it
 * first.  Developer aid, never set by make: RWKVD_TEST_GPU_ON_CPU=1 makes
 * the programs run the CPU reference in place of each kernel (their own
 * buffers and bookkeeping get exercised on a machine without a GPU; fp32
 * errors are then 0) and --probe answer yes, so a whole `make gpu-check`
 * can be rehearsed on the CPU. */
#ifndef RWKV_KERNEL_CHECK_H
#define RWKV_KERNEL_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "tests/support/gpu_harness.h"

/* bf16 outputs: bf16 keeps 8 significant bits, so rounding alone is up to
 * 2^-8 (3.9e-3) of a value; the rest is the fp32 error. */
#define KC_TOL_BF16 5e-3
/* Segments per case at most. */
#define KC_MAX_SEG 16

/* Deterministic inputs (one seeded stream per program). */
uint64_t kc_rand(void);
float kc_frand(float lo, float hi);
/* n floats uniform in [lo, hi) / a copy; malloc'd, NULL when out of memory. */
float *kc_fill(size_t n, float lo, float hi);
float *kc_dup(const float *src, size_t n);
/* Rounded to the nearest bf16 (ties to even), in place. */
void kc_round_bf16(float *p, size_t n);

double kc_nerr(const float *got, const float *ref, size_t n);
double kc_nerr_f64(const double *got, const double *ref, size_t n);
/* Prints the case's line; fails the current test when err > tol.  0 / -1. */
int kc_result(const char *kernel, int bf16, const char *shape, double err, double tol, double ms);
/* A harness call failed: the current test fails naming the kernel.  -1. */
int kc_harness_failed(const char *kernel, const char *shape, const rwkv_error *err);

/* seq_start (n + 1 entries) from a 0-terminated list of lengths; returns n. */
int kc_segments(const int *len, int *seq_start);
/* "HEAD seg=a,b,c" into buf. */
void kc_seg_shape(char *buf, size_t cap, const char *head, const int *len);

/* The whole main of a per-kernel test program: --probe, or the cases
 * (SKIPped with the reason without a device).  Returns the exit status. */
int kc_main(int argc, char **argv, const gpu_test *tests, size_t n);

#endif
