/* tensor_file.h — read-only access to the tensors of an official RWKV
 * checkpoint: PyTorch `.pth` (torch.save zip + pickle) or `.safetensors`.
 *
 * The file is mmap'ed and treated as hostile: every offset, length, count and
 * shape is checked against the bytes actually present before use, nothing a
 * file names is ever executed or imported, and no allocation is larger than
 * what the file could describe.  Tensors are exposed in place (pointing into
 * the mapping) whenever they are contiguous and suitably aligned for their
 * dtype; otherwise they are copied into owned, aligned memory once at open.
 *
 * Which format a file is in is decided by its content (zip magic "PK\3\4" or
 * a safetensors header), never by the extension.
 *
 * .pth: the CRC-32 of data.pkl and of every storage record in use is
 * verified at open (about 14 GB/s with PCLMUL, so ~30 ms for 400 MB).  Only
 * FloatStorage / HalfStorage / BFloat16Storage are accepted; views sharing
 * a storage are fine.  .safetensors: F32 / F16 / BF16, and I8 (the int8
 * matrices of a file written by `rwkv quantize`, docs/precision.md; only
 * the model loader gives them a meaning), ranges must tile the data
 * section exactly; the string pairs of its "__metadata__" are kept.  Implementation: mapped_file, zip_reader,
 * torch_pickle, pth_reader, safetensors_reader, tensor_set.
 */
#ifndef RWKV_TENSOR_FILE_H
#define RWKV_TENSOR_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef enum rwkv_dtype {
    RWKV_F32 = 0,
    RWKV_F16 = 1,
    RWKV_BF16 = 2,
    RWKV_I8 = 3, /* signed bytes: quantized matrices (safetensors "I8") */
} rwkv_dtype;

/* Bytes per element of a dtype (4, 2, 2, 1). */
size_t rwkv_dtype_size(rwkv_dtype t);
/* "f32", "f16", "bf16", "i8". */
const char *rwkv_dtype_name(rwkv_dtype t);

#define RWKV_TENSOR_MAX_DIMS 8

typedef struct rwkv_tensor {
    const char *name;  /* NUL-terminated, owned by the tensor_file */
    rwkv_dtype dtype;
    int ndim;          /* 0..RWKV_TENSOR_MAX_DIMS; 0 means a scalar (1 element) */
    int64_t shape[RWKV_TENSOR_MAX_DIMS]; /* each >= 0; entries past ndim are 0 */
    size_t numel;      /* product of shape, checked for overflow; may be 0 */
    const void *data;  /* contiguous, row-major, little-endian, aligned to
                          rwkv_dtype_size(dtype); never NULL (a dummy when
                          numel == 0); valid until close */
} rwkv_tensor;

typedef struct rwkv_tensor_file rwkv_tensor_file;

/* Opens and fully validates a checkpoint.  On success *out owns the mapping
 * and every tensor; on failure *out is NULL and err says which file and what
 * is wrong (with a byte offset where one applies).  Thread safe (no shared
 * state). */
int rwkv_tensor_file_open(const char *path, rwkv_tensor_file **out, rwkv_error *err);

/* Same, over bytes already in memory (used by the fuzz targets and tests).
 * `label` names the input in error messages.  The buffer must outlive the
 * returned object; it is not copied unless a tensor needs conversion. */
int rwkv_tensor_file_parse(const char *label, const void *buf, size_t len,
                           rwkv_tensor_file **out, rwkv_error *err);

/* Frees everything; accepts NULL. */
void rwkv_tensor_file_close(rwkv_tensor_file *f);

/* "pth" or "safetensors". */
const char *rwkv_tensor_file_format(const rwkv_tensor_file *f);
/* The label or path the file was opened with. */
const char *rwkv_tensor_file_path(const rwkv_tensor_file *f);

/* Tensors in file order (state-dict order for .pth, header order for
 * safetensors).  rwkv_tensor_file_at returns NULL when i >= count.  All
 * accessors are read-only and safe to call from several threads. */
size_t rwkv_tensor_file_count(const rwkv_tensor_file *f);
const rwkv_tensor *rwkv_tensor_file_at(const rwkv_tensor_file *f, size_t i);

/* Lookup by exact name; NULL when absent.  O(1) (hash index). */
const rwkv_tensor *rwkv_tensor_file_find(const rwkv_tensor_file *f, const char *name);

/* The value of a safetensors "__metadata__" key, or NULL (absent, or a
 * .pth file, which has none). */
const char *rwkv_tensor_file_meta(const rwkv_tensor_file *f, const char *key);

/* Bytes copied into owned 64-byte-aligned memory at open: non-contiguous
 * torch views (gathered) and data misaligned for its dtype inside the file
 * (safetensors packs tensors back to back, so e.g. an f32 tensor after an
 * odd number of bf16 elements).  0 for torch.save files (64-byte aligned
 * records) and for single-dtype safetensors files. */
size_t rwkv_tensor_file_copied_bytes(const rwkv_tensor_file *f);

#endif
