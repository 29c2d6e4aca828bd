/* safetensors_reader.c — JSON header parsing and byte-range checks for
 * .safetensors (see safetensors_reader.h).
 *
 * jansson parses exactly the N header bytes (json_loadb, so no NUL
 * terminator is needed and nothing past the header is read) with duplicate
 * keys rejected; its error position is reported as a file offset.  Objects
 * in jansson >= 2.8 iterate in insertion order, which is how header order is
 * kept.  The tiling check sorts the ranges by start: O(n log n).
 */
#include "core/io/safetensors_reader.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/quote.h"

typedef struct range {
    uint64_t begin, end;
    const char *name;
} range;

static int cmp_range(const void *a, const void *b)
{
    const range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

static int parse_dtype(const char *s, rwkv_dtype *dt)
{
    if (strcmp(s, "F32") == 0)
        *dt = RWKV_F32;
    else if (strcmp(s, "F16") == 0)
        *dt = RWKV_F16;
    else if (strcmp(s, "BF16") == 0)
        *dt = RWKV_BF16;
    else if (strcmp(s, "I8") == 0)
        *dt = RWKV_I8;
    else
        return -1;
    return 0;
}

/* One header entry; fills r and adds the tensor to s. */
static int read_entry(const char *label, const char *name, const json_t *v,
                      const unsigned char *data, uint64_t data_len, uint64_t data_at,
                      rwkv_tensor_set *s, range *r, rwkv_error *err)
{
    rwkv_quoted q;
    rwkv_quote(&q, name, strlen(name));
    if (!json_is_object(v))
        return rwkv_fail(err, "%s: safetensors header: entry '%s' is not an object", label, q.s);
    const json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
                 *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo))
        return rwkv_fail(err,
                         "%s: safetensors header: tensor '%s' needs a string \"dtype\", an "
                         "array \"shape\" and an array \"data_offsets\"",
                         label, q.s);
    rwkv_dtype dt;
    if (parse_dtype(json_string_value(jd), &dt) != 0) {
        rwkv_quoted qd;
        const char *ds = json_string_value(jd);
        return rwkv_fail(err,
                         "%s: safetensors header: tensor '%s' has dtype %s; only F32, F16, "
                         "BF16 and I8 are supported",
                         label, q.s, rwkv_quote(&qd, ds, strlen(ds)));
    }
    size_t ndim = json_array_size(js);
    if (ndim > RWKV_TENSOR_MAX_DIMS)
        return rwkv_fail(err, "%s: tensor '%s': %zu dimensions (at most %d supported)", label,
                         q.s, ndim, RWKV_TENSOR_MAX_DIMS);
    int64_t shape[RWKV_TENSOR_MAX_DIMS];
    for (size_t i = 0; i < ndim; i++) {
        const json_t *d = json_array_get(js, i);
        if (!json_is_integer(d))
            return rwkv_fail(err, "%s: tensor '%s': shape[%zu] is not an integer", label, q.s, i);
        shape[i] = (int64_t)json_integer_value(d);
    }
    char what[RWKV_ERROR_MAX];
    if (snprintf(what, sizeof what, "%s: tensor '%s'", label, q.s) < 0)
        what[0] = '\0';
    size_t numel;
    if (rwkv_shape_numel((int)ndim, shape, &numel, what, err) != 0)
        return -1;
    const json_t *b = json_array_get(jo, 0), *e = json_array_get(jo, 1);
    if (json_array_size(jo) != 2 || !json_is_integer(b) || !json_is_integer(e) ||
        json_integer_value(b) < 0 || json_integer_value(e) < json_integer_value(b))
        return rwkv_fail(err, "%s: data_offsets must be [begin, end] with 0 <= begin <= end",
                         what);
    r->begin = (uint64_t)json_integer_value(b);
    r->end = (uint64_t)json_integer_value(e);
    r->name = name;
    if (r->end > data_len)
        return rwkv_fail(err,
                         "%s: data_offsets [%llu, %llu] run past the %llu-byte data section "
                         "(file byte %llu)",
                         what, (unsigned long long)r->begin, (unsigned long long)r->end,
                         (unsigned long long)data_len, (unsigned long long)data_at);
    size_t esz = rwkv_dtype_size(dt);
    if (r->end - r->begin != (uint64_t)numel * esz)
        return rwkv_fail(err, "%s: data_offsets [%llu, %llu] hold %llu bytes but %zu %s elements "
                              "need %zu",
                         what, (unsigned long long)r->begin, (unsigned long long)r->end,
                         (unsigned long long)(r->end - r->begin), numel, rwkv_dtype_name(dt),
                         numel * esz);
    return rwkv_tensor_set_add(s, name, strlen(name), dt, (int)ndim, shape, NULL,
                               data + r->begin, (size_t)(r->end - r->begin), err);
}

static int read_metadata(const char *label, const json_t *m, rwkv_tensor_set *s,
                         rwkv_error *err)
{
    if (!json_is_object(m))
        return rwkv_fail(err, "%s: safetensors header: __metadata__ is not an object", label);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)m, k, v)
    {
        if (!json_is_string(v)) {
            rwkv_quoted q;
            return rwkv_fail(err, "%s: safetensors header: __metadata__ value '%s' is not a string",
                             label, rwkv_quote(&q, k, strlen(k)));
        }
        if (rwkv_tensor_set_add_meta(s, k, json_string_value(v), err) != 0)
            return -1;
    }
    return 0;
}

/* The ranges must tile [0, data_len) exactly. */
static int check_tiling(const char *label, range *r, size_t n, uint64_t data_len,
                        uint64_t data_at, rwkv_error *err)
{
    qsort(r, n, sizeof *r, cmp_range);
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        rwkv_quoted a, b;
        if (r[i].begin < at)
            return rwkv_fail(err, "%s: tensors '%s' and '%s' overlap in the data section (file "
                                  "byte %llu)",
                             label, rwkv_quote(&a, r[i - 1].name, strlen(r[i - 1].name)),
                             rwkv_quote(&b, r[i].name, strlen(r[i].name)),
                             (unsigned long long)(data_at + r[i].begin));
        if (r[i].begin > at)
            return rwkv_fail(err, "%s: %llu unused bytes before tensor '%s' in the data section "
                                  "(file byte %llu)",
                             label, (unsigned long long)(r[i].begin - at),
                             rwkv_quote(&a, r[i].name, strlen(r[i].name)),
                             (unsigned long long)(data_at + at));
        at = r[i].end;
    }
    if (at != data_len)
        return rwkv_fail(err, "%s: %llu bytes after the last tensor (file byte %llu)", label,
                         (unsigned long long)(data_len - at), (unsigned long long)(data_at + at));
    return 0;
}

int rwkv_safetensors_read(const char *label, const void *buf, size_t len, rwkv_tensor_set *s,
                          rwkv_error *err)
{
    const unsigned char *b = buf;
    if (len < 8)
        return rwkv_fail(err, "%s: %zu bytes is too short for a safetensors file", label, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | b[i];
    if (hlen > len - 8)
        return rwkv_fail(err, "%s: safetensors header length %llu runs past the end of the "
                              "%zu-byte file",
                         label, (unsigned long long)hlen, len);
    if (hlen > RWKV_SAFETENSORS_MAX_HEADER)
        return rwkv_fail(err, "%s: safetensors header length %llu exceeds the %u-byte limit",
                         label, (unsigned long long)hlen, RWKV_SAFETENSORS_MAX_HEADER);
    if (hlen < 2 || b[8] != '{')
        return rwkv_fail(err, "%s: byte 8: safetensors header does not start with '{'", label);
    json_error_t je;
    json_t *root = json_loadb((const char *)b + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return rwkv_fail(err, "%s: byte %llu: safetensors header is not valid JSON: %s", label,
                         (unsigned long long)(8 + (je.position > 0 ? (uint64_t)je.position : 0)),
                         je.text);
    uint64_t data_at = 8 + hlen, data_len = len - data_at;
    const unsigned char *data = b + data_at;
    size_t cap = json_object_size(root), n = 0;
    range *r = malloc((cap ? cap : 1) * sizeof *r);
    int rc = -1;
    if (!json_is_object(root)) {
        rwkv_fail(err, "%s: byte 8: safetensors header is not a JSON object", label);
        goto out;
    }
    if (!r) {
        rwkv_fail(err, "%s: out of memory for %zu header entries", label, cap);
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        if (strcmp(k, "__metadata__") == 0) {
            if (read_metadata(label, v, s, err) != 0)
                goto out;
            continue;
        }
        if (read_entry(label, k, v, data, data_len, data_at, s, &r[n], err) != 0)
            goto out;
        n++;
    }
    rc = check_tiling(label, r, n, data_len, data_at, err);
out:
    free(r);
    json_decref(root);
    return rc;
}
