/* state_internal.h — what engines see of a state beyond state.h: its host
 * array and its device copy.  Not part of the public API. */
#ifndef RWKV_STATE_INTERNAL_H
#define RWKV_STATE_INTERNAL_H

#include "core/backend.h"
#include "core/state.h"

/* The host array, current (a device copy that is newer is downloaded
 * first).  NULL with err when that download fails. */
float *rwkv_state_host(rwkv_state *s, rwkv_error *err);

/* The state's copy on the device of backend context ctx, current (made and
 * uploaded when needed; a copy on another device is brought home first).
 * After this, the device copy is the authoritative one: the host array is
 * stale until the next rwkv_state_host.  NULL with err on failure. */
void *rwkv_state_device(rwkv_state *s, const rwkv_backend_ops *ops, void *ctx,
                        rwkv_error *err);

#endif
