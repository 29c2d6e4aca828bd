/* torch_writer.c — test-only archive builders (see torch_writer.h).
 * Aborts on out-of-memory: it runs only inside test programs. */
#include "tests/support/torch_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32.h"

void tw_put(tw_buf *b, const void *p, size_t n)
{
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n < n)
            cap *= 2;
        unsigned char *np = realloc(b->p, cap);
        if (!np)
            abort();
        b->p = np;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

void tw_u8(tw_buf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    tw_put(b, &c, 1);
}

void tw_u16(tw_buf *b, unsigned v)
{
    tw_u8(b, v & 0xFF);
    tw_u8(b, (v >> 8) & 0xFF);
}

void tw_u32(tw_buf *b, uint32_t v)
{
    tw_u16(b, v & 0xFFFF);
    tw_u16(b, v >> 16);
}

void tw_u64(tw_buf *b, uint64_t v)
{
    tw_u32(b, (uint32_t)v);
    tw_u32(b, (uint32_t)(v >> 32));
}

void tw_free(tw_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------ pickle */

void pk_op(tw_buf *b, unsigned char op)
{
    tw_u8(b, op);
}

void pk_proto(tw_buf *b, int v)
{
    tw_u8(b, 0x80);
    tw_u8(b, (unsigned)v);
}

void pk_global(tw_buf *b, const char *mod, const char *name)
{
    tw_u8(b, 'c');
    tw_put(b, mod, strlen(mod));
    tw_u8(b, '\n');
    tw_put(b, name, strlen(name));
    tw_u8(b, '\n');
}

void pk_str(tw_buf *b, const char *s)
{
    tw_u8(b, 'X');
    tw_u32(b, (uint32_t)strlen(s));
    tw_put(b, s, strlen(s));
}

void pk_int(tw_buf *b, int64_t v)
{
    if (v >= 0 && v < 256) {
        tw_u8(b, 'K');
        tw_u8(b, (unsigned)v);
    } else if (v >= 0 && v < 65536) {
        tw_u8(b, 'M');
        tw_u16(b, (unsigned)v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        tw_u8(b, 'J');
        tw_u32(b, (uint32_t)(int32_t)v);
    } else {
        tw_u8(b, 0x8a);
        tw_u8(b, 8);
        tw_u64(b, (uint64_t)v);
    }
}

void pk_put(tw_buf *b, uint32_t idx)
{
    if (idx < 256) {
        tw_u8(b, 'q');
        tw_u8(b, idx);
    } else {
        tw_u8(b, 'r');
        tw_u32(b, idx);
    }
}

void pk_get(tw_buf *b, uint32_t idx)
{
    if (idx < 256) {
        tw_u8(b, 'h');
        tw_u8(b, idx);
    } else {
        tw_u8(b, 'j');
        tw_u32(b, idx);
    }
}

static void pk_tuple(tw_buf *b, const int64_t *v, int n)
{
    if (n == 0) {
        pk_op(b, ')');
        return;
    }
    if (n > 3)
        pk_op(b, '(');
    for (int i = 0; i < n; i++)
        pk_int(b, v[i]);
    pk_op(b, n == 1 ? 0x85 : n == 2 ? 0x86 : n == 3 ? 0x87 : 't');
}

void pk_state_dict(tw_buf *b, const tw_tensor *t, size_t n)
{
    uint32_t memo = 0;
    pk_proto(b, 2);
    pk_global(b, "collections", "OrderedDict");
    uint32_t od = memo++;
    pk_put(b, od);
    pk_op(b, ')');
    pk_op(b, 'R');
    pk_put(b, memo++);
    pk_op(b, '(');
    uint32_t rebuild = UINT32_MAX, param = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        int64_t stride[9];
        uint64_t acc = 1; /* unsigned: hostile shapes may overflow, wrapping is fine here */
        int any = 0;
        for (int d = 0; d < t[i].ndim; d++)
            any |= t[i].stride[d] != 0;
        for (int d = t[i].ndim - 1; d >= 0; d--) {
            stride[d] = any ? t[i].stride[d] : (int64_t)acc;
            acc *= (uint64_t)t[i].shape[d];
        }
        pk_str(b, t[i].name);
        if (t[i].parameter) {
            if (param == UINT32_MAX) {
                pk_global(b, "torch._utils", "_rebuild_parameter");
                pk_put(b, param = memo++);
            } else {
                pk_get(b, param);
            }
            pk_op(b, '(');
        }
        if (rebuild == UINT32_MAX) {
            pk_global(b, "torch._utils", "_rebuild_tensor_v2");
            pk_put(b, rebuild = memo++);
        } else {
            pk_get(b, rebuild);
        }
        pk_op(b, '(');
        pk_op(b, '(');
        pk_str(b, "storage");
        pk_global(b, "torch", t[i].storage_class);
        pk_str(b, t[i].key);
        pk_str(b, "cpu");
        pk_int(b, t[i].storage_numel);
        pk_op(b, 't');
        pk_op(b, 'Q');
        pk_int(b, t[i].offset);
        pk_tuple(b, t[i].shape, t[i].ndim);
        pk_tuple(b, stride, t[i].ndim);
        pk_op(b, 0x89);
        pk_get(b, od);
        pk_op(b, ')');
        pk_op(b, 'R');
        pk_op(b, 't');
        pk_op(b, 'R');
        if (t[i].parameter) {
            pk_op(b, 0x88);
            pk_get(b, od);
            pk_op(b, ')');
            pk_op(b, 'R');
            pk_op(b, 't');
            pk_op(b, 'R');
        }
        pk_put(b, memo++);
    }
    pk_op(b, 'u');
    /* state: {'_metadata': OrderedDict()} */
    pk_op(b, '}');
    pk_str(b, "_metadata");
    pk_get(b, od);
    pk_op(b, ')');
    pk_op(b, 'R');
    pk_op(b, 's');
    pk_op(b, 'b');
    pk_op(b, '.');
}

/* ------------------------------------------------------------ zip */

void tw_zip(tw_buf *out, const tw_entry *e, size_t n, const tw_zip_opts *o)
{
    uint64_t *lho = calloc(n ? n : 1, sizeof *lho);
    if (!lho)
        abort();
    int x64 = o && o->zip64_extra;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name);
        uint32_t crc = rwkv_crc32(0, e[i].data, e[i].len) ^ (e[i].bad_crc ? 0x1234u : 0);
        lho[i] = out->n;
        size_t extra = 0;
        if (o && o->align) {
            size_t at = out->n + 30 + nl + 4; /* after a 4-byte extra header */
            extra = 4 + ((64 - at % 64) % 64);
        }
        tw_u32(out, 0x04034b50);
        tw_u16(out, 20);
        tw_u16(out, 0x0800);
        tw_u16(out, (unsigned)e[i].method);
        tw_u32(out, 0);
        tw_u32(out, crc);
        tw_u32(out, (uint32_t)e[i].len);
        tw_u32(out, (uint32_t)e[i].len);
        tw_u16(out, (unsigned)nl);
        tw_u16(out, (unsigned)extra);
        tw_put(out, e[i].name, nl);
        if (extra) {
            tw_u16(out, 0x4246); /* "FB", as torch's writer pads */
            tw_u16(out, (unsigned)(extra - 4));
            for (size_t k = 4; k < extra; k++)
                tw_u8(out, 'Z');
        }
        tw_put(out, e[i].data, e[i].len);
    }
    uint64_t cd = out->n;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name);
        uint32_t crc = rwkv_crc32(0, e[i].data, e[i].len) ^ (e[i].bad_crc ? 0x1234u : 0);
        tw_u32(out, 0x02014b50);
        tw_u16(out, 45);
        tw_u16(out, 45);
        tw_u16(out, 0x0800);
        tw_u16(out, (unsigned)e[i].method);
        tw_u32(out, 0);
        tw_u32(out, crc);
        tw_u32(out, x64 ? 0xFFFFFFFFu : (uint32_t)e[i].len);
        tw_u32(out, x64 ? 0xFFFFFFFFu : (uint32_t)e[i].len);
        tw_u16(out, (unsigned)nl);
        tw_u16(out, x64 ? 28 : 0);
        tw_u16(out, 0);
        tw_u16(out, 0);
        tw_u16(out, 0);
        tw_u32(out, 0);
        tw_u32(out, x64 ? 0xFFFFFFFFu : (uint32_t)lho[i]);
        tw_put(out, e[i].name, nl);
        if (x64) {
            tw_u16(out, 1);
            tw_u16(out, 24);
            tw_u64(out, e[i].len);
            tw_u64(out, e[i].len);
            tw_u64(out, lho[i]);
        }
    }
    uint64_t cd_size = out->n - cd;
    if (o && o->zip64) {
        uint64_t rec = out->n;
        tw_u32(out, 0x06064b50);
        tw_u64(out, 44);
        tw_u16(out, 45);
        tw_u16(out, 45);
        tw_u32(out, 0);
        tw_u32(out, 0);
        tw_u64(out, n);
        tw_u64(out, n);
        tw_u64(out, cd_size);
        tw_u64(out, cd);
        tw_u32(out, 0x07064b50);
        tw_u32(out, 0);
        tw_u64(out, rec);
        tw_u32(out, 1);
    }
    tw_u32(out, 0x06054b50);
    tw_u16(out, 0);
    tw_u16(out, 0);
    tw_u16(out, (unsigned)n);
    tw_u16(out, (unsigned)n);
    tw_u32(out, (uint32_t)cd_size);
    tw_u32(out, (uint32_t)cd);
    tw_u16(out, 0);
    free(lho);
}

void tw_pth(tw_buf *out, const char *prefix, const tw_buf *pickle, const tw_storage *s,
            size_t ns, const tw_zip_opts *o)
{
    tw_entry *e = calloc(ns + 2, sizeof *e);
    char **names = calloc(ns + 2, sizeof *names);
    if (!e || !names)
        abort();
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < ns + 2; i++) {
        const char *tail = i == 0 ? "data.pkl" : i == ns + 1 ? "version" : NULL;
        size_t cap = pl + 16 + (tail ? 0 : strlen(s[i - 1].key));
        names[i] = malloc(cap);
        if (!names[i])
            abort();
        if (tail)
            snprintf(names[i], cap, "%s/%s", prefix, tail);
        else
            snprintf(names[i], cap, "%s/data/%s", prefix, s[i - 1].key);
        e[i].name = names[i];
    }
    e[0].data = pickle->p;
    e[0].len = pickle->n;
    for (size_t i = 0; i < ns; i++) {
        e[i + 1].data = s[i].data;
        e[i + 1].len = s[i].len;
    }
    e[ns + 1].data = "3\n";
    e[ns + 1].len = 2;
    tw_zip(out, e, ns + 2, o);
    for (size_t i = 0; i < ns + 2; i++)
        free(names[i]);
    free(names);
    free(e);
}

/* ------------------------------------------------------------ numbers */

uint16_t tw_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

float tw_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float tw_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, u;
    if (exp == 0 && man == 0) {
        u = sign;
    } else if (exp == 0) { /* subnormal */
        exp = 127 - 15 + 1;
        while (!(man & 1024)) {
            man <<= 1;
            exp--;
        }
        u = sign | (exp << 23) | ((man & 1023) << 13);
    } else if (exp == 31) {
        u = sign | 0x7F800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}
