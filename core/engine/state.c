/* state.c — see state.h.  The host representation IS the official flat
 * layout, so export/import are copies plus validation.  A state may also
 * have a copy on a device (state_internal.h); whichever copy was written
 * last is current, and reads of the host array bring it home first. */
#include "core/state.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/model_internal.h"
#include "core/engine/state_internal.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "states are exchanged as little-endian float32");

struct rwkv_state {
    const rwkv_model *model;
    size_t n;
    float *data;
    /* device copy */
    void *dev;
    const rwkv_backend_ops *dev_ops;
    void *dev_ctx;
    int host_stale; /* the device copy is newer than data */
};

/* Frees the state's device copy, if any (the host array is then the only
 * copy; callers bring it home first when the device copy is newer). */
static void rwkv_state_drop_device(rwkv_state *s)
{
    if (s->dev)
        s->dev_ops->state_free(s->dev_ctx, s->dev);
    s->dev = NULL;
    s->dev_ops = NULL;
    s->dev_ctx = NULL;
    s->host_stale = 0;
}

float *rwkv_state_host(rwkv_state *s, rwkv_error *err)
{
    if (s->host_stale) {
        if (s->dev_ops->state_download(s->dev_ctx, s->dev, s->data, s->n, err) != 0)
            return NULL;
        s->host_stale = 0;
    }
    return s->data;
}

void *rwkv_state_device(rwkv_state *s, const rwkv_backend_ops *ops, void *ctx, rwkv_error *err)
{
    if (s->dev && (s->dev_ops != ops || s->dev_ctx != ctx)) {
        if (!rwkv_state_host(s, err))
            return NULL;
        rwkv_state_drop_device(s);
    }
    if (!s->dev) {
        void *d = ops->state_alloc(ctx, s->n, err);
        if (!d)
            return NULL;
        if (ops->state_upload(ctx, d, s->data, s->n, err) != 0) {
            ops->state_free(ctx, d);
            return NULL;
        }
        s->dev = d;
        s->dev_ops = ops;
        s->dev_ctx = ctx;
    }
    s->host_stale = 1; /* the caller is about to write the device copy */
    return s->dev;
}

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
    rwkv_state_drop_device(s);
    free(s->data);
    free(s);
}

void rwkv_state_reset(rwkv_state *s)
{
    rwkv_state_drop_device(s);
    s->model->arch->init_state(s->model, s->data);
}

int rwkv_state_copy(rwkv_state *dst, const rwkv_state *src, rwkv_error *err)
{
    if (dst->n != src->n)
        return rwkv_fail(err, "state copy: sizes differ (%zu vs %zu floats)", dst->n, src->n);
    const float *from = rwkv_state_host((rwkv_state *)src, err);
    if (!from)
        return -1;
    rwkv_state_drop_device(dst);
    memcpy(dst->data, from, src->n * sizeof(float));
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

int rwkv_state_export(const rwkv_state *s, float *out, rwkv_error *err)
{
    /* reading may bring a device copy home: logically const */
    const float *from = rwkv_state_host((rwkv_state *)s, err);
    if (!from)
        return -1;
    memcpy(out, from, s->n * sizeof(float));
    return 0;
}

int rwkv_state_import(rwkv_state *s, const float *in, size_t n, rwkv_error *err)
{
    if (n != s->n)
        return rwkv_fail(err, "state import: %zu floats given, this model's state has %zu", n,
                         s->n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(in[i]))
            return rwkv_fail(err, "state import: value %zu is not finite", i);
    rwkv_state_drop_device(s);
    memcpy(s->data, in, n * sizeof(float));
    return 0;
}


