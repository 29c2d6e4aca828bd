/* safetensors_reader.h — tensors of a .safetensors file fed into a tensor
 * set.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON, then the data
 * section.  The JSON maps names to {"dtype", "shape", "data_offsets"} plus
 * an optional "__metadata__" object of strings (kept: rwkv_tensor_file_meta).
 * Accepted dtypes: F32, F16, BF16, and I8 (int8 files, core/quantize.h).
 * As the format's specification requires, the tensors' byte ranges must
 * tile the data section exactly: no overlap, no hole, no trailing bytes.
 */
#ifndef RWKV_SAFETENSORS_READER_H
#define RWKV_SAFETENSORS_READER_H

#include <stddef.h>

#include "core/error.h"
#include "core/io/tensor_set.h"

/* Largest JSON header accepted (the reference implementation's limit). */
#define RWKV_SAFETENSORS_MAX_HEADER 100000000u

/* Reads buf[0..len) into s, tensors in header order (the order the JSON
 * lists them, kept by jansson's insertion-ordered objects).  Returns 0, or
 * -1 with one line naming `label` and a byte offset in err (s may then hold
 * some tensors; the caller frees it). */
int rwkv_safetensors_read(const char *label, const void *buf, size_t len, rwkv_tensor_set *s,
                          rwkv_error *err);

#endif
