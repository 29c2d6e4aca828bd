/* lowp_weights.h — a model's large matrices in a low precision, made once
 * per (model, precision) and shared by every engine of that model and
 * precision (reference counted).
 *
 * A matrix is converted the first time a product uses it (on the thread
 * that calls rwkv_matmul_many, under the set's lock), so only the matrices
 * actually used cost memory and a model's first pass pays the conversion.
 * "Large" means both sides at least n_embd: the r/k/v/o/gate/FFN/head
 * matrices; LoRA factors (one side the low rank) stay float32, where their
 * share of the work is small and their rounding would feed the decay.
 *
 * The int8 set keeps the attention's receptance and key projections in
 * bf16 (rwkv_matrix.keep_bf16, set by the loader): with them in int8,
 * RWKV-7's first token (zero state, where each head's output is v times
 * the scalar r·k, and ln_x keeps only that scalar's sign) flipped a head on
 * the random 0.1B model, max |Δlogit| 0.32 std against the 0.20 bound; in
 * bf16 it is 0.07.  Value, output, gate and the FFN's receptance enter the
 * output linearly and are int8 like the FFN and head matrices (0.1B max
 * 0.076 with them int8, docs/precision.md); decode then streams 16 % fewer
 * bytes than with every square projection in bf16.
 */
#ifndef RWKV_LOWP_WEIGHTS_H
#define RWKV_LOWP_WEIGHTS_H

#include <stdint.h>

#include "core/engine/matmul.h"
#include "core/model.h"
#include "core/precision.h"

/* int8 weights: symmetric, one scale per output row; activations are
 * int16 with one scale per token row (matmul_lowp.c).  Measured on the
 * fixtures (docs/precision.md): int8 activations broke the max |Δlogit|
 * bound whatever the grouping (per row 0.53 std on the RWKV-6 fixture;
 * groups of 32 on both sides 0.25): RWKV's activations (relu² in the FFN
 * above all) carry outliers.  int16 activations remove that error while
 * decode still streams one byte per weight, and per-row weight scales then
 * keep every bound (groups of 32 measured no better once the activations
 * were int16, and cost a float conversion per group).  Rows are padded with
 * zeros to RWKV_Q8_PAD inputs so the kernel has no tail. */
#define RWKV_Q8_PAD 32

typedef struct rwkv_lowp_matrix {
    rwkv_precision precision; /* BF16 or INT8 */
    int rows, cols;
    const uint16_t *bf16;     /* BF16: [rows][cols] */
    int kp;                   /* INT8: cols rounded up to RWKV_Q8_PAD */
    const int8_t *q;          /* INT8: [rows][kp], w ≈ q * scale[row] */
    const float *scale;       /* INT8: [rows] */
    int borrowed;             /* the arrays are the model's (mapped file): not freed */
} rwkv_lowp_matrix;

typedef struct rwkv_lowp_weights rwkv_lowp_weights;

/* The set for (m, p), p BF16 or INT8; NULL on out of memory. */
rwkv_lowp_weights *rwkv_lowp_weights_acquire(const rwkv_model *m, rwkv_precision p);
void rwkv_lowp_weights_release(rwkv_lowp_weights *w); /* accepts NULL */

rwkv_precision rwkv_lowp_weights_precision(const rwkv_lowp_weights *w);

/* The low-precision form of w, converted on first use; NULL when w stays
 * float32 (not large, or out of memory: the fp32 path then serves it).
 * Conversions are keyed by w's data pointer and shape, so only the model's
 * own immutable weights may go through a low-precision engine's products
 * (every rwkv_matrix the engine multiplies is made at load: model_bind.c,
 * rwkv6_load.c); a matrix built over a changing buffer would be served its
 * first contents. */
const rwkv_lowp_matrix *rwkv_lowp_weights_get(rwkv_lowp_weights *w, const rwkv_matrix *mat);

/* How many conversions ran out of memory (those matrices stay fp32). */
int rwkv_lowp_weights_failed(rwkv_lowp_weights *w);

/* Bytes held by the set's conversions (for benchmarks and logs). */
size_t rwkv_lowp_weights_bytes(rwkv_lowp_weights *w);

/* The conversion itself, shared by the sets above and `rwkv quantize`
 * (core/quantize.h), which writes exactly what an int8 engine would make so
 * that an engine over its file computes bit for bit what an engine over the
 * source does.
 *
 * rwkv_lowp_form: what an engine at precision p (BF16 or INT8) makes of
 * m's matrix mat: RWKV_PRECISION_FP32 (stays float32: not large),
 * RWKV_PRECISION_BF16 or RWKV_PRECISION_INT8 (an int8 engine keeps the
 * square n_embd x n_embd ones in bf16). */
rwkv_precision rwkv_lowp_form(const rwkv_model *m, rwkv_precision p, const rwkv_matrix *mat);

/* mat in `form` (BF16 or INT8): a new matrix, or NULL on out of memory or
 * when mat cannot take that form (an RWKV_I8 matrix is INT8 only).  Bf16
 * data already bf16 and RWKV_I8 data (with its scales) are used in place
 * (borrowed).  *bytes (may be NULL) gets the bytes allocated. */
rwkv_lowp_matrix *rwkv_lowp_convert(const rwkv_matrix *mat, rwkv_precision form, size_t *bytes);
void rwkv_lowp_matrix_free(rwkv_lowp_matrix *lm); /* accepts NULL */

/* bf16 rounding (nearest even, simd.h's rwkv_f32_to_bf16) of n floats. */
void rwkv_round_bf16(const float *src, uint16_t *dst, size_t n);

#endif
