/* tensor_set.h — the tensors of one checkpoint as the format readers
 * discover them: names, shapes, data pointers, and a name index.
 *
 * Both readers (pth_reader.c, safetensors_reader.c) feed tensors in file
 * order through rwkv_tensor_set_add, which is where the checks common to all
 * formats live: dimension count and sizes, element-count overflow, duplicate
 * and empty names, and whether the bytes can be used in place.  Data is used
 * in place when it is contiguous and aligned to its element size; otherwise
 * (a strided torch view, or an element misaligned inside the file) it is
 * copied once into owned 64-byte-aligned memory.  The total copied is capped
 * at twice the input length, so views cannot multiply a small file into a
 * huge allocation.
 */
#ifndef RWKV_TENSOR_SET_H
#define RWKV_TENSOR_SET_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/tensor_file.h"

typedef struct rwkv_tensor_set {
    const char *label;      /* borrowed, for messages */
    rwkv_tensor *tensors;   /* file order; names and copies owned here */
    size_t count, cap;
    struct rwkv_tensor_slot {
        uint64_t hash;
        size_t pos;         /* tensor index + 1; 0 = empty slot */
    } *index;               /* open addressing, linear probing */
    size_t index_cap;       /* power of two, >= 2 * count */
    void **copies;          /* owned aligned buffers */
    size_t n_copies, copies_cap;
    size_t copied_bytes, copy_budget;
    char **meta;            /* safetensors __metadata__: key, value, key, value ... */
    size_t n_meta;          /* pairs */
} rwkv_tensor_set;

/* Starts an empty set for an input of input_len bytes (sets the copy cap). */
void rwkv_tensor_set_init(rwkv_tensor_set *s, const char *label, size_t input_len);

/* Frees names, copies and tables; accepts NULL; the set is empty after. */
void rwkv_tensor_set_free(rwkv_tensor_set *s);

/* numel = product of shape[0..ndim), checking 0 <= ndim <= MAX_DIMS, every
 * dim >= 0 and no overflow of size_t or of numel * 4 bytes.  0 or -1 (err
 * says "ndim out of range" / "negative dimension" / "overflow", prefixed by
 * what). */
int rwkv_shape_numel(int ndim, const int64_t *shape, size_t *numel, const char *what,
                     rwkv_error *err);

/* Adds a tensor.  `name` (name_len bytes, no NUL inside) is copied.  `data`
 * points at element 0; `avail` is how many bytes from data on belong to this
 * tensor's storage.  stride == NULL means contiguous row-major; otherwise
 * strides are in elements, each >= 0.  Every element the view reaches must
 * lie within avail, else -1.  Returns 0, or -1 with "label: tensor 'name':
 * ..." in err (the set keeps the tensors added before). */
int rwkv_tensor_set_add(rwkv_tensor_set *s, const char *name, size_t name_len, rwkv_dtype dtype,
                        int ndim, const int64_t *shape, const int64_t *stride, const void *data,
                        size_t avail, rwkv_error *err);

/* Keeps one metadata pair (copied).  0, or -1 on out of memory. */
int rwkv_tensor_set_add_meta(rwkv_tensor_set *s, const char *key, const char *value,
                             rwkv_error *err);

/* The tensor with this exact name, or NULL. */
const rwkv_tensor *rwkv_tensor_set_find(const rwkv_tensor_set *s, const char *name);

#endif
