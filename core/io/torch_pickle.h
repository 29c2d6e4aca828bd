/* torch_pickle.h — a restricted unpickler for the data.pkl of torch.save.
 *
 * This is NOT a Python unpickler.  It is a small stack machine that knows the
 * opcodes torch.save emits for a dict of tensors and exactly these names:
 *   collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 *   torch._utils._rebuild_parameter, torch.FloatStorage, torch.HalfStorage,
 *   torch.BFloat16Storage.
 * "Calling" one of them only builds a C descriptor; nothing a file names is
 * ever imported, executed or called.  Any other opcode or global is refused
 * with its name and byte offset.  The stack, the MARK depth and the memo are
 * bounded, and every allocation is proportional to the pickle's length (a
 * claim of 2^40 items in a 100-byte pickle fails before allocating).
 *
 * Tensors come out as descriptors of a view into a storage (dtype, zip key,
 * storage numel, offset, shape, stride); resolving storages against the
 * archive and checking views against their bytes is the caller's job
 * (pth_reader.c).
 */
#ifndef RWKV_TORCH_PICKLE_H
#define RWKV_TORCH_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/tensor_file.h"

/* Limits of the machine (generous for any state dict torch writes). */
#define RWKV_PICKLE_MAX_STACK (1u << 20) /* values on the stack */
#define RWKV_PICKLE_MAX_MARKS 64         /* nested MARKs */
#define RWKV_PICKLE_MAX_GLOBAL 256       /* bytes in a GLOBAL module or name line */

typedef struct rwkv_pickle_tensor {
    const char *name;    /* into the pickle bytes; NOT NUL-terminated; no NUL inside */
    size_t name_len;
    rwkv_dtype dtype;    /* from the storage class */
    const char *key;     /* storage key (zip entry data/<key>); into the pickle bytes */
    size_t key_len;
    uint64_t storage_numel; /* elements the storage record declares */
    uint64_t offset;     /* storage offset in elements */
    int ndim;            /* 0..RWKV_TENSOR_MAX_DIMS */
    int64_t shape[RWKV_TENSOR_MAX_DIMS]; /* each >= 0 */
    int64_t stride[RWKV_TENSOR_MAX_DIMS]; /* each >= 0, in elements */
    size_t pickle_offset; /* byte offset of the REDUCE that built it (for messages) */
} rwkv_pickle_tensor;

typedef struct rwkv_pickle_result {
    rwkv_pickle_tensor *tensors; /* dict order */
    size_t count;
} rwkv_pickle_result;

/* Runs the pickle buf[0..len), which must produce a dict (OrderedDict or
 * plain) of str -> tensor.  Returns 0 and fills *out (free with
 * rwkv_pickle_result_free; names and keys point into buf, which must outlive
 * it), or -1 with one line "label: pickle byte N: ..." in err and *out
 * empty.  Does not check duplicate names (the tensor set does).  Thread safe. */
int rwkv_torch_pickle_load(const char *label, const void *buf, size_t len,
                           rwkv_pickle_result *out, rwkv_error *err);

/* Accepts NULL and an empty result. */
void rwkv_pickle_result_free(rwkv_pickle_result *r);

#endif
