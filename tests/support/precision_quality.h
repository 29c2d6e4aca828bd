/* precision_quality.h — running a model at fp32 and at every low precision
 * this CPU runs, and checking the quality bounds of issue 15
 * (docs/precision.md): shared by tests/test_precision.c and
 * tests/test_int8_avx2.c (the same bounds with the AVX-512 paths hidden).
 *
 *   bf16: mean |Δlogit| <= 1% of the fp32 logits' std, max <= 8%;
 *         embeddings (hidden mean and last) cosine >= 0.999.
 *   int8: mean surprisal at most +1.0% above fp32, max |Δlogit| <= 20% of
 *         std; embeddings cosine >= 0.995.
 */
#ifndef RWKV_TEST_PRECISION_QUALITY_H
#define RWKV_TEST_PRECISION_QUALITY_H

#include <stdint.h>

#include "core/forward.h"
#include "core/precision.h"
#include "core/tensor_file.h"

#define PRECISION_N_LOW 2
extern const rwkv_precision precision_low[PRECISION_N_LOW]; /* bf16, int8 */

/* 1 when this CPU runs p; otherwise prints a SKIP line naming the missing
 * feature and returns 0. */
int precision_runnable(rwkv_precision p, const char *what);

/* An engine at p with `threads` threads; NULL with the test failed. */
rwkv_engine *precision_engine(const rwkv_model *m, int threads, rwkv_precision p);

/* A random RWKV-7 of `shape` (rwkv mkmodel's form) in memory; *img holds
 * its bytes (free after the model).  NULL with the test failed. */
rwkv_model *precision_random_model(const char *shape, rwkv_dtype dt, uint64_t seed, void **img);

/* The fixture model in ../shared/fixtures/<dir> over its 4096 tokens, in
 * blocks taking the GEMM and the GEMV paths, at every low precision this
 * CPU runs; prints each precision's figures and fails on a broken bound.
 * max_exempt: the RWKV-5 tiny models (their max is printed, not bounded). */
void precision_check_fixture(const char *dir, int max_exempt);

/* The same on a random RWKV-7 of the 0.1B shape (bf16 weights), 320
 * random tokens: real matrix sizes. */
void precision_check_random_0_1b(void);

#endif
