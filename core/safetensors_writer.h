/* safetensors_writer.h — write tensors as a .safetensors file.
 *
 * Used by `rwkv mkmodel` (random-weight models for benchmarks), `rwkv
 * quantize` (int8 files, core/quantize.h) and by tests that need hand-made
 * files.  The header lists tensors in the order given,
 * with consecutive data_offsets, "__metadata__": {"format": "pt"}, and is
 * padded with spaces to a multiple of 8 bytes so every tensor starts 8-byte
 * aligned (as the safetensors library does).
 */
#ifndef RWKV_SAFETENSORS_WRITER_H
#define RWKV_SAFETENSORS_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/tensor_file.h"

typedef struct rwkv_st_entry {
    const char *name;  /* non-empty, unique, valid UTF-8 */
    rwkv_dtype dtype;
    int ndim;          /* 0..RWKV_TENSOR_MAX_DIMS */
    int64_t shape[RWKV_TENSOR_MAX_DIMS];
    const void *data;  /* numel * rwkv_dtype_size(dtype) bytes, little-endian */
} rwkv_st_entry;

/* The whole file in memory: 0 and *out (malloc'd, caller frees) / *out_len,
 * or -1 with a message (bad name, shape or dtype; duplicate; no memory). */
int rwkv_safetensors_serialize(const rwkv_st_entry *t, size_t n, void **out, size_t *out_len,
                               rwkv_error *err);

/* Writes the file atomically: a temporary file in the same directory,
 * fsync, rename over `path`, fsync of the directory.  On failure nothing is
 * left behind (the temporary is removed) and err names the path and the
 * failing step.  Streams tensor data without copying it. */
int rwkv_safetensors_write(const char *path, const rwkv_st_entry *t, size_t n, rwkv_error *err);

/* The same with n_meta more "__metadata__" string pairs (meta[2i] the key,
 * meta[2i+1] the value, both UTF-8) after "format": "pt". */
int rwkv_safetensors_serialize_meta(const rwkv_st_entry *t, size_t n, const char *const *meta,
                                    size_t n_meta, void **out, size_t *out_len, rwkv_error *err);
int rwkv_safetensors_write_meta(const char *path, const rwkv_st_entry *t, size_t n,
                                const char *const *meta, size_t n_meta, rwkv_error *err);

#endif
