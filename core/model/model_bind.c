/* model_bind.c — fetching checkpoint tensors by name with shape checks, the
 * step every generation's loader repeats.  Every failure names the file and
 * the tensor, and says what shape was expected and found. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/model_internal.h"

void *rwkv_model_alloc(rwkv_model *m, size_t bytes)
{
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? m->cap_owned * 2 : 64;
        void **p = realloc(m->owned, cap * sizeof *p);
        if (!p)
            return NULL;
        m->owned = p;
        m->cap_owned = cap;
    }
    void *mem = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!mem)
        return NULL;
    m->owned[m->n_owned++] = mem;
    return mem;
}

int rwkv_squeezed_shape(const rwkv_tensor *t, int64_t *dims)
{
    int n = 0;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] != 1)
            dims[n++] = t->shape[i];
    return n;
}

static void shape_str(const rwkv_tensor *t, char *buf, size_t cap)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "(");
    for (int i = 0; i < t->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, ")");
}

static const rwkv_tensor *find_v(rwkv_binder *b, const char *fmt, va_list ap, char *name,
                                 size_t cap)
{
    size_t pre = (size_t)snprintf(name, cap, "%s", b->prefix ? b->prefix : "");
    if (pre < cap)
        vsnprintf(name + pre, cap - pre, fmt, ap);
    size_t n = rwkv_tensor_file_count(b->f);
    for (size_t i = 0; i < n; i++) {
        const rwkv_tensor *t = rwkv_tensor_file_at(b->f, i);
        if (strcmp(t->name, name) == 0) {
            b->used[i] = 1;
            return t;
        }
    }
    return NULL;
}

const rwkv_tensor *rwkv_bind_find(rwkv_binder *b, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    const rwkv_tensor *t = find_v(b, fmt, ap, name, sizeof name);
    va_end(ap);
    return t;
}

void rwkv_bind_ignore(rwkv_binder *b, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    find_v(b, fmt, ap, name, sizeof name);
    va_end(ap);
}

static int missing(rwkv_binder *b, rwkv_error *err, const char *name)
{
    return rwkv_fail(err, "%s: tensor '%s' is missing", rwkv_tensor_file_path(b->f), name);
}

static int misshaped(rwkv_binder *b, rwkv_error *err, const rwkv_tensor *t, const char *expect)
{
    char got[128];
    shape_str(t, got, sizeof got);
    return rwkv_fail(err, "%s: tensor '%s' has shape %s, expected %s", rwkv_tensor_file_path(b->f),
                     t->name, got, expect);
}

const float *rwkv_bind_vec(rwkv_binder *b, rwkv_error *err, int64_t n, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    const rwkv_tensor *t = find_v(b, fmt, ap, name, sizeof name);
    va_end(ap);
    if (!t) {
        missing(b, err, name);
        return NULL;
    }
    if ((int64_t)t->numel != n) {
        char expect[64];
        snprintf(expect, sizeof expect, "%lld elements", (long long)n);
        misshaped(b, err, t, expect);
        return NULL;
    }
    /* a vector may carry size-1 dims ((1,1,C) time-mix) but only one real
     * dim, except (H, N) tensors such as v7 r_k, which are flattened */
    float *v = rwkv_model_alloc(b->m, (size_t)n * sizeof(float));
    if (!v) {
        rwkv_fail(err, "%s: out of memory copying '%s'", rwkv_tensor_file_path(b->f), name);
        return NULL;
    }
    rwkv_widen(t->dtype, t->data, v, (size_t)n);
    return v;
}

int rwkv_bind_matrix(rwkv_binder *b, rwkv_error *err, rwkv_matrix *out, int64_t rows, int64_t cols,
                     const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    const rwkv_tensor *t = find_v(b, fmt, ap, name, sizeof name);
    va_end(ap);
    if (!t)
        return missing(b, err, name);
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols) {
        char expect[64];
        snprintf(expect, sizeof expect, "(%lld, %lld)", (long long)rows, (long long)cols);
        return misshaped(b, err, t, expect);
    }
    if (cols > RWKV_MATMUL_MAX_COLS)
        return rwkv_fail(err, "%s: tensor '%s' has %lld input features; at most %d supported",
                         rwkv_tensor_file_path(b->f), name, (long long)cols, RWKV_MATMUL_MAX_COLS);
    out->dtype = t->dtype;
    out->rows = (int)rows;
    out->cols = (int)cols;
    out->data = t->data;
    return 0;
}

int rwkv_bind_shape(rwkv_binder *b, rwkv_error *err, int H, int N, int max_head,
                    size_t layer_state)
{
    rwkv_model *m = b->m;
    const char *path = rwkv_tensor_file_path(b->f);
    int C = m->info.n_embd;
    if (N > max_head)
        return rwkv_fail(err, "%s: head size %d is not supported (at most %d)", path, N, max_head);
    const rwkv_tensor *fk = rwkv_bind_find(b, "blocks.0.ffn.key.weight");
    if (!fk || fk->ndim != 2 || fk->shape[1] != C || fk->shape[0] < 1 || fk->shape[0] > 65536)
        return rwkv_fail(err, "%s: blocks.0.ffn.key.weight must exist with shape (F, %d)", path, C);
    m->info.n_head = H;
    m->info.head_size = N;
    m->info.ffn_dim = (int)fk->shape[0];
    m->info.state_floats = (size_t)m->info.n_layer * layer_state;
    return 0;
}

int rwkv_bind_lora(rwkv_binder *b, rwkv_error *err, rwkv_matrix *out, int64_t in, int64_t out_dim,
                   const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    const rwkv_tensor *t = find_v(b, fmt, ap, name, sizeof name);
    va_end(ap);
    if (!t)
        return missing(b, err, name);
    int64_t d[RWKV_TENSOR_MAX_DIMS];
    int nd = rwkv_squeezed_shape(t, d);
    if (nd != 2 || d[0] != in || (out_dim > 0 && d[1] != out_dim)) {
        char expect[64];
        if (out_dim > 0)
            snprintf(expect, sizeof expect, "(%lld, %lld)", (long long)in, (long long)out_dim);
        else
            snprintf(expect, sizeof expect, "(%lld, D)", (long long)in);
        return misshaped(b, err, t, expect);
    }
    int64_t od = d[1];
    if (od > RWKV_MATMUL_MAX_COLS || in > RWKV_MATMUL_MAX_COLS)
        return misshaped(b, err, t, "dimensions of at most 65536");
    /* The transpose keeps the stored element type: the products widen it
     * exactly (matmul.c), so the results are those of a float32 copy, and
     * decode, which streams every weight per token, reads half the bytes of
     * a bf16 or f16 checkpoint's LoRA factors (measured in
     * docs/precision.md). */
    size_t esz = rwkv_dtype_size(t->dtype), n = (size_t)(in * od);
    char *w = rwkv_model_alloc(b->m, n * esz);
    if (!w)
        return rwkv_fail(err, "%s: out of memory copying '%s'", rwkv_tensor_file_path(b->f), name);
    const char *src = t->data;
    for (int64_t i = 0; i < in; i++)
        for (int64_t o = 0; o < od; o++)
            memcpy(w + (size_t)(o * in + i) * esz, src + (size_t)(i * od + o) * esz, esz);
    out->dtype = t->dtype;
    out->rows = (int)od;
    out->cols = (int)in;
    out->data = w;
    return 0;
}
