/* tensor_set.c — format-independent tensor checks, name index and the rare
 * copies into aligned memory (see tensor_set.h).
 *
 * The name index is an open-addressing hash table (FNV-1a, linear probing,
 * load <= 1/2) so that adding n tensors and checking for duplicates is O(n),
 * and lookups by the engine are O(1).
 */
#include "core/io/tensor_set.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/quote.h"

static uint64_t hash_name(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void rwkv_tensor_set_init(rwkv_tensor_set *s, const char *label, size_t input_len)
{
    memset(s, 0, sizeof *s);
    s->label = label;
    s->copy_budget = input_len > SIZE_MAX / 4 ? SIZE_MAX / 2 : 2 * input_len;
}

void rwkv_tensor_set_free(rwkv_tensor_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->count; i++)
        free((char *)s->tensors[i].name);
    for (size_t i = 0; i < s->n_copies; i++)
        free(s->copies[i]);
    free(s->tensors);
    free(s->index);
    free(s->copies);
    for (size_t i = 0; i < 2 * s->n_meta; i++)
        free(s->meta[i]);
    free(s->meta);
    const char *label = s->label;
    memset(s, 0, sizeof *s);
    s->label = label;
}

int rwkv_shape_numel(int ndim, const int64_t *shape, size_t *numel, const char *what,
                     rwkv_error *err)
{
    if (ndim < 0 || ndim > RWKV_TENSOR_MAX_DIMS)
        return rwkv_fail(err, "%s: %d dimensions (at most %d supported)", what, ndim,
                         RWKV_TENSOR_MAX_DIMS);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return rwkv_fail(err, "%s: negative dimension %lld", what, (long long)shape[i]);
        if ((uint64_t)shape[i] > SIZE_MAX || __builtin_mul_overflow(n, (size_t)shape[i], &n))
            return rwkv_fail(err, "%s: element count overflows", what);
    }
    if (n > SIZE_MAX / 4)
        return rwkv_fail(err, "%s: element count overflows", what);
    *numel = n;
    return 0;
}

static const rwkv_tensor *find_n(const rwkv_tensor_set *s, const char *name, size_t n,
                                 uint64_t h, size_t *slot)
{
    if (!s->index_cap)
        return NULL;
    size_t mask = s->index_cap - 1, i = (size_t)h & mask;
    for (; s->index[i].pos; i = (i + 1) & mask) {
        const rwkv_tensor *t = &s->tensors[s->index[i].pos - 1];
        if (s->index[i].hash == h && strncmp(t->name, name, n) == 0 && t->name[n] == '\0')
            return t;
    }
    if (slot)
        *slot = i;
    return NULL;
}

const rwkv_tensor *rwkv_tensor_set_find(const rwkv_tensor_set *s, const char *name)
{
    size_t n = strlen(name);
    return find_n(s, name, n, hash_name(name, n), NULL);
}

/* Makes room for one more tensor in the array and the index. */
static int grow(rwkv_tensor_set *s, rwkv_error *err)
{
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        rwkv_tensor *nt = realloc(s->tensors, cap * sizeof *nt);
        if (!nt)
            return rwkv_fail(err, "%s: out of memory for %zu tensors", s->label, cap);
        s->tensors = nt;
        s->cap = cap;
    }
    if (2 * (s->count + 1) > s->index_cap) {
        size_t cap = s->index_cap ? s->index_cap * 2 : 128;
        struct rwkv_tensor_slot *ni = calloc(cap, sizeof *ni);
        if (!ni)
            return rwkv_fail(err, "%s: out of memory for the tensor index", s->label);
        for (size_t k = 0; k < s->index_cap; k++) {
            if (!s->index[k].pos)
                continue;
            size_t i = (size_t)s->index[k].hash & (cap - 1);
            while (ni[i].pos)
                i = (i + 1) & (cap - 1);
            ni[i] = s->index[k];
        }
        free(s->index);
        s->index = ni;
        s->index_cap = cap;
    }
    return 0;
}

/* Copies a (possibly strided) view into new 64-byte-aligned memory. */
static void *gather(rwkv_tensor_set *s, const unsigned char *src, size_t esz, int ndim,
                    const int64_t *shape, const int64_t *stride, size_t numel, rwkv_error *err,
                    const char *qname)
{
    size_t bytes = numel * esz;
    if (bytes > s->copy_budget - s->copied_bytes) {
        rwkv_fail(err,
                  "%s: tensor '%s': copying %zu more bytes (strided or misaligned data) would "
                  "exceed twice the file size",
                  s->label, qname, bytes);
        return NULL;
    }
    if (s->n_copies == s->copies_cap) {
        size_t cap = s->copies_cap ? s->copies_cap * 2 : 16;
        void **nc = realloc(s->copies, cap * sizeof *nc);
        if (!nc) {
            rwkv_fail(err, "%s: out of memory", s->label);
            return NULL;
        }
        s->copies = nc;
        s->copies_cap = cap;
    }
    unsigned char *dst = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!dst) {
        rwkv_fail(err, "%s: tensor '%s': out of memory for %zu bytes", s->label, qname, bytes);
        return NULL;
    }
    s->copies[s->n_copies++] = dst;
    s->copied_bytes += bytes;
    if (!stride) {
        memcpy(dst, src, bytes);
        return dst;
    }
    /* odometer over all indices, row-major */
    int64_t idx[RWKV_TENSOR_MAX_DIMS] = {0};
    size_t off = 0; /* element offset of the current index in the source */
    for (size_t e = 0; e < numel; e++) {
        memcpy(dst + e * esz, src + off * esz, esz);
        for (int d = ndim - 1; d >= 0; d--) {
            if (++idx[d] < shape[d]) {
                off += (size_t)stride[d];
                break;
            }
            off -= (size_t)stride[d] * (size_t)(shape[d] - 1);
            idx[d] = 0;
        }
    }
    return dst;
}

int rwkv_tensor_set_add_meta(rwkv_tensor_set *s, const char *key, const char *value,
                             rwkv_error *err)
{
    char **m = realloc(s->meta, (s->n_meta + 1) * 2 * sizeof *m);
    if (!m)
        return rwkv_fail(err, "%s: out of memory for the metadata", s->label);
    s->meta = m;
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return rwkv_fail(err, "%s: out of memory for the metadata", s->label);
    }
    m[2 * s->n_meta] = k;
    m[2 * s->n_meta + 1] = v;
    s->n_meta++;
    return 0;
}

int rwkv_tensor_set_add(rwkv_tensor_set *s, const char *name, size_t name_len, rwkv_dtype dtype,
                        int ndim, const int64_t *shape, const int64_t *stride, const void *data,
                        size_t avail, rwkv_error *err)
{
    rwkv_quoted q;
    rwkv_quote(&q, name, name_len);
    char what[RWKV_ERROR_MAX];
    if (snprintf(what, sizeof what, "%s: tensor '%s'", s->label, q.s) < 0)
        what[0] = '\0';
    if (name_len == 0)
        return rwkv_fail(err, "%s: a tensor has an empty name", s->label);
    if (memchr(name, 0, name_len))
        return rwkv_fail(err, "%s: contains a NUL byte", what);
    if ((unsigned)dtype > RWKV_I8)
        return rwkv_fail(err, "%s: unknown dtype %d", what, (int)dtype);
    size_t numel, esz = rwkv_dtype_size(dtype);
    if (rwkv_shape_numel(ndim, shape, &numel, what, err) != 0)
        return -1;
    size_t slot = 0;
    uint64_t h = hash_name(name, name_len);
    if (grow(s, err) != 0)
        return -1;
    if (find_n(s, name, name_len, h, &slot))
        return rwkv_fail(err, "%s: duplicate tensor name", what);

    /* Which bytes does the view reach?  contiguous: numel elements;
     * strided: up to element sum((shape-1)*stride). */
    int contiguous = 1;
    size_t reach = numel; /* elements from data that must be readable */
    if (stride && numel > 0) {
        size_t expect = 1, last = 0;
        for (int d = ndim - 1; d >= 0; d--) {
            size_t span;
            if (stride[d] < 0)
                return rwkv_fail(err, "%s: negative stride", what);
            if (shape[d] != 1 && (size_t)stride[d] != expect)
                contiguous = 0;
            if (__builtin_mul_overflow((size_t)stride[d], (size_t)(shape[d] - 1), &span) ||
                __builtin_add_overflow(last, span, &last))
                return rwkv_fail(err, "%s: strides overflow", what);
            expect *= (size_t)shape[d];
        }
        reach = last + 1;
    }
    if (numel == 0)
        reach = 0;
    if (reach > avail / esz)
        return rwkv_fail(err, "%s: needs %zu elements of %zu bytes but its storage holds %zu "
                              "bytes",
                         what, reach, esz, avail);

    static _Alignas(64) const unsigned char empty[64];
    const void *p = numel ? data : empty;
    if (numel && (!contiguous || ((uintptr_t)data % esz) != 0)) {
        p = gather(s, data, esz, ndim, shape, contiguous ? NULL : stride, numel, err, q.s);
        if (!p)
            return -1;
    }
    char *nm = malloc(name_len + 1);
    if (!nm)
        return rwkv_fail(err, "%s: out of memory", what);
    memcpy(nm, name, name_len);
    nm[name_len] = '\0';
    rwkv_tensor *t = &s->tensors[s->count];
    memset(t, 0, sizeof *t);
    t->name = nm;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    t->numel = numel;
    t->data = p;
    s->index[slot].hash = h;
    s->index[slot].pos = ++s->count;
    return 0;
}
