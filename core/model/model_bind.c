/* model_bind.c — fetching checkpoint tensors by name with shape checks, the
 * step every generation's loader repeats.  Every failure names the file and
 * the tensor, and says what shape was expected and found. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine/lowp_weights.h"
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

/* Whether an int8 engine keeps the matrix named so in bf16: the
 * attention's receptance and key (lowp_weights.h), named alike in every
 * generation's checkpoints. */
static unsigned char keeps_bf16(const char *name)
{
    static const char *const SUFFIX[] = {".att.receptance.weight", ".att.key.weight"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof SUFFIX / sizeof *SUFFIX; i++) {
        size_t k = strlen(SUFFIX[i]);
        if (n >= k && strcmp(name + n - k, SUFFIX[i]) == 0)
            return 1;
    }
    return 0;
}

/* The int8 form of a matrix (t is I8): its scales, the padding; out is set. */
static int bind_q8(rwkv_binder *b, rwkv_error *err, rwkv_matrix *out, const rwkv_tensor *t,
                   int rows, int cols)
{
    const char *path = rwkv_tensor_file_path(b->f);
    rwkv_matrix shape = {.rows = rows, .cols = cols, .keep_bf16 = keeps_bf16(t->name)};
    if (rwkv_lowp_form(b->m, RWKV_PRECISION_INT8, &shape) != RWKV_PRECISION_INT8)
        return rwkv_fail(err,
                         "%s: tensor '%s' is int8 (I8), but an int8 engine keeps this (%d, %d) "
                         "matrix in %s (rwkv quantize never writes it so)",
                         path, t->name, rows, cols, shape.keep_bf16 ? "bf16" : "float32");
    char sname[300];
    snprintf(sname, sizeof sname, "%s.q8_scale", t->name);
    const rwkv_tensor *st = rwkv_tensor_file_find(b->f, sname);
    if (!st)
        return rwkv_fail(err, "%s: int8 tensor '%s' has no scale tensor '%s'", path, t->name,
                         sname);
    if (st->dtype != RWKV_F32 || st->ndim != 1 || st->shape[0] != rows)
        return rwkv_fail(err, "%s: scale tensor '%s' must be F32 with shape (%d), found %s with "
                              "%d dims (first %lld)",
                         path, sname, rows, rwkv_dtype_name(st->dtype), st->ndim,
                         (long long)(st->ndim ? st->shape[0] : 0));
    const float *scale = st->data;
    for (int r = 0; r < rows; r++)
        if (!isfinite(scale[r]) || scale[r] < 0.0f)
            return rwkv_fail(err, "%s: scale tensor '%s': row %d has scale %g (byte %zu of the "
                                  "tensor); scales must be finite and >= 0",
                             path, sname, r, (double)scale[r], (size_t)r * sizeof(float));
    const rwkv_tensor *base = rwkv_tensor_file_at(b->f, 0);
    b->q8[t - base] = Q8_MATRIX;
    b->q8[st - base] = Q8_SCALE;
    b->used[st - base] = 1;
    size_t kp = ((size_t)cols + RWKV_Q8_PAD - 1) / RWKV_Q8_PAD * RWKV_Q8_PAD;
    const int8_t *q = t->data;
    if (kp != (size_t)cols) {
        /* the kernel reads whole RWKV_Q8_PAD-input chunks (tiny models) */
        int8_t *p = rwkv_model_alloc(b->m, (size_t)rows * kp);
        if (!p)
            return rwkv_fail(err, "%s: out of memory padding '%s'", path, t->name);
        for (size_t r = 0; r < (size_t)rows; r++) {
            memcpy(p + r * kp, q + r * (size_t)cols, (size_t)cols);
            memset(p + r * kp + cols, 0, kp - (size_t)cols);
        }
        q = p;
    }
    *out = (rwkv_matrix){.dtype = RWKV_I8, .rows = rows, .cols = cols, .data = q,
                         .scale = scale};
    return 0;
}

static int record_bound(rwkv_binder *b, rwkv_error *err, const rwkv_tensor *t,
                        const rwkv_matrix *mat)
{
    rwkv_model *m = b->m;
    if (m->n_bound == m->cap_bound) {
        size_t cap = m->cap_bound ? m->cap_bound * 2 : 64;
        struct rwkv_bound_matrix *p = realloc(m->bound, cap * sizeof *p);
        if (!p)
            return rwkv_fail(err, "%s: out of memory", rwkv_tensor_file_path(b->f));
        m->bound = p;
        m->cap_bound = cap;
    }
    m->bound[m->n_bound++] = (struct rwkv_bound_matrix){.t = t, .mat = *mat};
    return 0;
}

static int bind_matrix_v(rwkv_binder *b, rwkv_error *err, rwkv_matrix *out, int64_t rows,
                         int64_t cols, int table, const char *fmt, va_list ap)
{
    char name[256];
    const rwkv_tensor *t = find_v(b, fmt, ap, name, sizeof name);
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
    if (t->dtype == RWKV_I8) {
        if (table)
            return rwkv_fail(err, "%s: tensor '%s' is int8 (I8); the embedding table must be "
                                  "float (rwkv quantize keeps it)",
                             rwkv_tensor_file_path(b->f), name);
        if (bind_q8(b, err, out, t, (int)rows, (int)cols) != 0)
            return -1;
    } else {
        *out = (rwkv_matrix){.dtype = t->dtype, .rows = (int)rows, .cols = (int)cols,
                             .data = t->data};
    }
    out->keep_bf16 = keeps_bf16(t->name);
    return table ? 0 : record_bound(b, err, t, out);
}

int rwkv_bind_matrix(rwkv_binder *b, rwkv_error *err, rwkv_matrix *out, int64_t rows, int64_t cols,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = bind_matrix_v(b, err, out, rows, cols, 0, fmt, ap);
    va_end(ap);
    return rc;
}

static int bind_table_f(rwkv_binder *b, rwkv_error *err, rwkv_matrix *out, int64_t rows,
                        int64_t cols, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int bind_table_f(rwkv_binder *b, rwkv_error *err, rwkv_matrix *out, int64_t rows,
                        int64_t cols, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = bind_matrix_v(b, err, out, rows, cols, 1, fmt, ap);
    va_end(ap);
    return rc;
}

int rwkv_bind_table(rwkv_binder *b, rwkv_error *err, rwkv_matrix *out, int64_t rows, int64_t cols,
                    const char *name)
{
    return bind_table_f(b, err, out, rows, cols, "%s", name);
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
