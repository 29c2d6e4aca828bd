/* precision.h — the arithmetic a CPU engine uses for its large products.
 *
 *  fp32  every product in float32 (OpenBLAS sgemm / our GEMV): the exact
 *        path, the default, and the reference every other precision is
 *        tested against.
 *  bf16  the large products (r/k/v/o/gate, FFN, head) with bfloat16 operands
 *        and float32 accumulation (AVX512-BF16); needs avx512_bf16.
 *  int8  the large products but the attention's receptance and key with
 *        symmetric int8 weights (one scale per output row, quantized once
 *        per model) and int16 activations (one scale per token row, on the
 *        fly), exact int32 sums (vpdpwssd: AVX512-VNNI, or AVX-VNNI on
 *        CPUs without AVX-512, the same bits); receptance and key in bf16
 *        where AVX512-BF16 exists, else in the fp32 path (lowp_weights.h
 *        says why they are kept); needs avx512_vnni or avx_vnni.
 *  auto  the fastest of those this CPU runs (see rwkv_precision_auto).
 *
 * Elementwise work, normalisations, the WKV recurrence, LoRA products and
 * the state stay float32 in every precision.  docs/precision.md has the
 * quality bounds (tests/test_precision.c) and the measured speeds.
 */
#ifndef RWKV_PRECISION_H
#define RWKV_PRECISION_H

#include <stdbool.h>

#include "core/cpu_features.h"
#include "core/error.h"

typedef enum rwkv_precision {
    RWKV_PRECISION_FP32 = 0,
    RWKV_PRECISION_BF16 = 1,
    RWKV_PRECISION_INT8 = 2,
    RWKV_PRECISION_AUTO = 3,
} rwkv_precision;

#define RWKV_PRECISION_NAMES "fp32, bf16, int8 or auto"

/* "fp32", "bf16", "int8", "auto" ("?" for anything else). */
const char *rwkv_precision_name(rwkv_precision p);

/* 0 and *out, or -1 with err for a name that is none of RWKV_PRECISION_NAMES. */
int rwkv_precision_parse(const char *s, rwkv_precision *out, rwkv_error *err);

/* 0 when the CPU can run p (auto always), or -1 with err naming the missing
 * CPU feature. */
int rwkv_precision_check(rwkv_precision p, const rwkv_cpu_features *f, rwkv_error *err);

/* Whether int8 runs its 512-bit kernel here (avx512f, avx512bw and
 * avx512_vnni); else, where int8 runs at all, the AVX2 + AVX-VNNI one. */
bool rwkv_precision_int8_avx512(const rwkv_cpu_features *f);

/* What auto means on this CPU: bf16 where AVX512-BF16 exists, else fp32
 * (an engine over an int8 file, core/quantize.h, takes int8 instead: the
 * only precision such a file runs at; engine_opts.c).
 * Measured (docs/precision.md): bf16 is the fastest for prefill, the
 * daemon's work (2.5-3.2x fp32); int8 is faster only for decode (1.4-1.7x
 * bf16) and about fp32 speed for prefill, so it is asked for by name. */
rwkv_precision rwkv_precision_auto(const rwkv_cpu_features *f);

/* Resolves auto, then checks: 0 and *out (never auto), or -1 with err. */
int rwkv_precision_resolve(rwkv_precision want, rwkv_precision *out, rwkv_error *err);

#endif
