/* state.h — one document's recurrent state.
 *
 * The state is exactly what the official package keeps between calls, in
 * its layout, as float32: for RWKV-7, per layer att_x_prev [C],
 * att_kv [H][N][N] indexed S[h][value][key], ffn_x_prev [C] (see
 * ../shared/fixtures/README.md for every generation).  Export/import use
 * that flat layout (little-endian float32 on the wire), so a state written
 * by one run, backend or machine continues in any other.
 *
 * A state belongs to the model it was created for; the model must outlive
 * it, and so must any device engine that ran it.  A state is not thread
 * safe: one forward call at a time may use it.  With a device engine the
 * state stays on the device between calls and comes back on export.
 */
#ifndef RWKV_STATE_H
#define RWKV_STATE_H

#include <stddef.h>

#include "core/error.h"
#include "core/model.h"

typedef struct rwkv_state rwkv_state;

/* A state at the model's initial value (zeros; v4 pp = -1e30; a
 * state-tuned checkpoint's time_state).  NULL only when out of memory. */
rwkv_state *rwkv_state_new(const rwkv_model *m);
void rwkv_state_free(rwkv_state *s); /* accepts NULL */

/* Back to the initial value. */
void rwkv_state_reset(rwkv_state *s);

/* dst = src; both must belong to models of the same shape. */
int rwkv_state_copy(rwkv_state *dst, const rwkv_state *src, rwkv_error *err);

size_t rwkv_state_floats(const rwkv_state *s);
const rwkv_model *rwkv_state_model(const rwkv_state *s);

/* Writes rwkv_state_floats(s) floats in the official layout.  Fails only
 * when the state lives on a device and copying it back fails (-1, err). */
int rwkv_state_export(const rwkv_state *s, float *out, rwkv_error *err);

/* Reads n floats in the official layout.  Fails (state unchanged) when n is
 * not the model's state size or a value is NaN/inf. */
int rwkv_state_import(rwkv_state *s, const float *in, size_t n, rwkv_error *err);

#endif
