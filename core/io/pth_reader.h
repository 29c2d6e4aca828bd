/* pth_reader.h — tensors of a torch.save archive (.pth): zip + restricted
 * pickle + storage records, fed into a tensor set.
 */
#ifndef RWKV_PTH_READER_H
#define RWKV_PTH_READER_H

#include <stddef.h>

#include "core/error.h"
#include "core/io/tensor_set.h"

/* Reads the archive buf[0..len) into s (in state-dict order).  Verifies the
 * CRC-32 of data.pkl and of every storage record a tensor uses.  Returns 0,
 * or -1 with one line naming `label` in err (s may then hold some tensors;
 * the caller frees it).  Tensors point into buf unless tensor_set.h says
 * they are copied. */
int rwkv_pth_read(const char *label, const void *buf, size_t len, rwkv_tensor_set *s,
                  rwkv_error *err);

#endif
