/* quantize.h — `rwkv quantize`: a model written as an int8 file, holding
 * exactly what an int8 engine would convert its matrices to at creation
 * (core/engine/lowp_weights.h), so that the file loads without the float
 * weights of those matrices and an int8 engine over it computes bit for bit
 * what an int8 engine over the source computes.
 *
 * The file is a .safetensors with every tensor of the source as it is,
 * except each matrix the engine multiplies and an int8 engine converts
 * (rwkv_lowp_form):
 *  - the attention's receptance and key (rwkv_matrix.keep_bf16): BF16, same
 *    name and shape;
 *  - the others (attention value/output/gate, FFN, head): I8, same name and shape [rows][cols]
 *    (unpadded: the loader pads rows to RWKV_Q8_PAD inputs only when cols is
 *    not a multiple, i.e. tiny models), w ≈ q * scale[row], plus
 *    "<name>.q8_scale": F32 [rows].
 * Matrices a loader derives (RWKV-6 time_maa_w2 split into five LoRA
 * factors) and LoRA factors are low-rank, never converted: kept as in the
 * source.  "__metadata__" records "rwkvd.quantized": "int8",
 * "rwkvd.quantized.version": "1" and the source's sha256.  Tensors are laid
 * out F32, then 2-byte, then I8, so each is aligned to its element size and
 * used in place from the mapping.  The loader recognises such a file by
 * content (model_load.c), never by its name.
 */
#ifndef RWKV_QUANTIZE_H
#define RWKV_QUANTIZE_H

#include <stddef.h>

#include "core/error.h"
#include "core/model.h"

#define RWKV_QUANT_META_KIND "rwkvd.quantized"
#define RWKV_QUANT_META_VERSION "rwkvd.quantized.version"
#define RWKV_QUANT_META_SOURCE "rwkvd.quantized.source_sha256"
#define RWKV_QUANT_FORMAT_VERSION "1"
#define RWKV_QUANT_SCALE_SUFFIX ".q8_scale"

typedef struct rwkv_quantize_stats {
    size_t int8_matrices, bf16_matrices; /* converted (bf16 ones already bf16 included) */
    size_t kept_tensors;                 /* written as in the source */
    size_t file_bytes;                   /* tensor data written */
} rwkv_quantize_stats;

/* m's int8 file at `path` (written atomically), or in memory when path is
 * NULL (*img malloc'd, *len; for tests).  source_sha256 (64 hex digits, may
 * be NULL: recorded as "unknown") names the file m was loaded from.  An
 * int8 file is refused (quantizing it again would change nothing).  0, or
 * -1 with err. */
int rwkv_quantize_model(const rwkv_model *m, const char *source_sha256, const char *path,
                        void **img, size_t *len, rwkv_quantize_stats *stats, rwkv_error *err);

#endif
