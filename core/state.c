/* state.c — see state.h.  The in-memory representation IS the official
 * flat layout, so export/import are copies plus validation. */
#include "core/state.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/model_internal.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "states are exchanged as little-endian float32");

struct rwkv_state {
    const rwkv_model *model;
    size_t n;
    float *data;
};

rwkv_state *rwkv_state_new(const rwkv_model *m)
{
    rwkv_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->model = m;
    s->n = m->info.state_floats;
    s->data = aligned_alloc(64, (s->n * sizeof(float) + 63) & ~(size_t)63);
    if (!s->data) {
        free(s);
        return NULL;
    }
    rwkv_state_reset(s);
    return s;
}

void rwkv_state_free(rwkv_state *s)
{
    if (!s)
        return;
    free(s->data);
    free(s);
}

void rwkv_state_reset(rwkv_state *s)
{
    s->model->arch->init_state(s->model, s->data);
}

int rwkv_state_copy(rwkv_state *dst, const rwkv_state *src, rwkv_error *err)
{
    if (dst->n != src->n)
        return rwkv_fail(err, "state copy: sizes differ (%zu vs %zu floats)", dst->n, src->n);
    memcpy(dst->data, src->data, src->n * sizeof(float));
    return 0;
}

size_t rwkv_state_floats(const rwkv_state *s)
{
    return s->n;
}

const rwkv_model *rwkv_state_model(const rwkv_state *s)
{
    return s->model;
}

void rwkv_state_export(const rwkv_state *s, float *out)
{
    memcpy(out, s->data, s->n * sizeof(float));
}

int rwkv_state_import(rwkv_state *s, const float *in, size_t n, rwkv_error *err)
{
    if (n != s->n)
        return rwkv_fail(err, "state import: %zu floats given, this model's state has %zu", n,
                         s->n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(in[i]))
            return rwkv_fail(err, "state import: value %zu is not finite", i);
    memcpy(s->data, in, n * sizeof(float));
    return 0;
}

float *rwkv_state_data(rwkv_state *s)
{
    return s->data;
}
