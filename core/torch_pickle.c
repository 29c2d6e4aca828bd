/* torch_pickle.c — the restricted unpickler behind torch_pickle.h.
 *
 * A Python pickle is a program for a stack machine.  This file runs only the
 * instructions torch.save uses for a state dict, over a value model of its
 * own (ints, floats, strings, tuples, lists, dicts, and three "objects":
 * whitelisted names, storage references and tensor views).  The loop never
 * recurses, so hostile nesting or self-referencing containers cost nothing
 * but memory, and memory comes from one arena whose total is capped at a
 * multiple of the pickle's length.
 */
#include "torch_pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quote.h"

enum vtype { V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR };
static const char *const vtype_name[] = {"None",  "bool", "int",    "float",   "str",   "tuple",
                                         "list",  "dict", "global", "storage", "tensor"};

enum gname { G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_REBUILD_PARAMETER, G_STORAGE };

typedef struct val val;

typedef struct storage_ref {
    rwkv_dtype dtype;
    const char *key;
    size_t key_len;
    uint64_t numel;
} storage_ref;

typedef struct tensor_view {
    const storage_ref *storage;
    uint64_t offset;
    int ndim;
    int64_t shape[RWKV_TENSOR_MAX_DIMS];
    int64_t stride[RWKV_TENSOR_MAX_DIMS];
    size_t at;
} tensor_view;

struct val {
    int type;
    union {
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t n;
        } s;
        struct {
            val **v;
            size_t n, cap; /* dict: n counts keys and values (2 per item) */
        } seq;
        struct {
            int g;
            rwkv_dtype dtype;
        } glob;
        storage_ref *st;
        tensor_view *t;
    } u;
};

/* ---------------------------------------------------------------- arena */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} chunk;

typedef struct vm {
    const char *label;
    const unsigned char *b;
    size_t len, pos, op_at;
    rwkv_error *err;
    chunk *chunks;
    size_t arena_total, arena_budget;
    val **stack;
    size_t sp, scap;
    size_t marks[RWKV_PICKLE_MAX_MARKS];
    int nmarks;
    val **memo;
    size_t memo_cap, memo_count;
    val none, yes, no;
} vm;

static int fail(vm *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(vm *m, const char *fmt, ...)
{
    char msg[RWKV_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rwkv_fail(m->err, "%s: pickle byte %zu: %s", m->label, m->op_at, msg);
}

static void *alloc(vm *m, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    chunk *c = m->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (m->arena_total + cap > m->arena_budget) {
            fail(m, "pickle needs more memory than its %zu bytes can justify", m->len);
            return NULL;
        }
        c = malloc(sizeof *c + cap);
        if (!c) {
            fail(m, "out of memory");
            return NULL;
        }
        c->next = m->chunks;
        c->used = 0;
        c->cap = cap;
        m->chunks = c;
        m->arena_total += cap;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

static val *new_val(vm *m, int type)
{
    val *v = alloc(m, sizeof *v);
    if (v) {
        memset(v, 0, sizeof *v);
        v->type = type;
    }
    return v;
}

/* Appends n items to a list/dict/tuple value, growing it by doubling. */
static int seq_append(vm *m, val *s, val *const *items, size_t n)
{
    if (n == 0)
        return 0;
    if (s->u.seq.cap - s->u.seq.n < n) {
        size_t cap = s->u.seq.cap ? s->u.seq.cap : 4;
        while (cap - s->u.seq.n < n)
            cap *= 2;
        val **nv = alloc(m, cap * sizeof *nv);
        if (!nv)
            return -1;
        if (s->u.seq.n)
            memcpy(nv, s->u.seq.v, s->u.seq.n * sizeof *nv);
        s->u.seq.v = nv;
        s->u.seq.cap = cap;
    }
    memcpy(s->u.seq.v + s->u.seq.n, items, n * sizeof *items);
    s->u.seq.n += n;
    return 0;
}

/* ---------------------------------------------------------------- stack */

static size_t floor_of(const vm *m)
{
    return m->nmarks ? m->marks[m->nmarks - 1] : 0;
}

static int push(vm *m, val *v)
{
    if (!v)
        return -1;
    if (m->sp == m->scap) {
        if (m->scap >= RWKV_PICKLE_MAX_STACK)
            return fail(m, "stack deeper than %u values", RWKV_PICKLE_MAX_STACK);
        size_t cap = m->scap ? m->scap * 2 : 64;
        val **ns = realloc(m->stack, cap * sizeof *ns);
        if (!ns)
            return fail(m, "out of memory");
        m->stack = ns;
        m->scap = cap;
    }
    m->stack[m->sp++] = v;
    return 0;
}

static val *pop(vm *m, const char *op)
{
    if (m->sp <= floor_of(m)) {
        fail(m, "%s: stack underflow", op);
        return NULL;
    }
    return m->stack[--m->sp];
}

static val *top(vm *m, const char *op)
{
    if (m->sp <= floor_of(m)) {
        fail(m, "%s: stack underflow", op);
        return NULL;
    }
    return m->stack[m->sp - 1];
}

/* Pops everything above the last MARK; items stay readable at *items until
 * the next push. */
static int pop_mark(vm *m, const char *op, val ***items, size_t *n)
{
    if (m->nmarks == 0)
        return fail(m, "%s without a MARK", op);
    size_t at = m->marks[--m->nmarks];
    *items = m->stack + at;
    *n = m->sp - at;
    m->sp = at;
    return 0;
}

/* ---------------------------------------------------------------- input */

static int need(vm *m, size_t n, const char *op)
{
    if (m->len - m->pos < n)
        return fail(m, "%s: needs %zu bytes, only %zu left", op, n, m->len - m->pos);
    return 0;
}

static uint64_t rd_le(const unsigned char *p, int n)
{
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

static int memo_put(vm *m, uint64_t idx, val *v)
{
    if (!v)
        return fail(m, "memo store with an empty stack");
    if (idx >= m->len)
        return fail(m, "memo index %llu out of range for a %zu-byte pickle",
                    (unsigned long long)idx, m->len);
    if (idx >= m->memo_cap) {
        size_t cap = m->memo_cap ? m->memo_cap : 64;
        while (cap <= idx)
            cap *= 2;
        if (cap > m->len)
            cap = m->len;
        val **nm = realloc(m->memo, cap * sizeof *nm);
        if (!nm)
            return fail(m, "out of memory");
        memset(nm + m->memo_cap, 0, (cap - m->memo_cap) * sizeof *nm);
        m->memo = nm;
        m->memo_cap = cap;
    }
    if (!m->memo[idx])
        m->memo_count++;
    m->memo[idx] = v;
    return 0;
}

static int memo_get(vm *m, uint64_t idx)
{
    if (idx >= m->memo_cap || !m->memo[idx])
        return fail(m, "memo index %llu was never stored", (unsigned long long)idx);
    return push(m, m->memo[idx]);
}

static val *new_str(vm *m, const unsigned char *p, size_t n)
{
    val *v = new_val(m, V_STR);
    if (v) {
        v->u.s.p = (const char *)p;
        v->u.s.n = n;
    }
    return v;
}

static val *new_int(vm *m, int64_t i)
{
    val *v = new_val(m, V_INT);
    if (v)
        v->u.i = i;
    return v;
}

static int str_is(const val *v, const char *s)
{
    size_t n = strlen(s);
    return v->type == V_STR && v->u.s.n == n && memcmp(v->u.s.p, s, n) == 0;
}

/* ---------------------------------------------------------------- globals */

static int resolve_global(vm *m, const char *mod, size_t mn, const char *name, size_t nn,
                          const char *op)
{
    static const struct {
        const char *mod, *name;
        int g;
        rwkv_dtype dtype;
    } allowed[] = {
        {"collections", "OrderedDict", G_ORDERED_DICT, RWKV_F32},
        {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, RWKV_F32},
        {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, RWKV_F32},
        {"torch", "FloatStorage", G_STORAGE, RWKV_F32},
        {"torch", "HalfStorage", G_STORAGE, RWKV_F16},
        {"torch", "BFloat16Storage", G_STORAGE, RWKV_BF16},
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        if (strlen(allowed[i].mod) == mn && memcmp(allowed[i].mod, mod, mn) == 0 &&
            strlen(allowed[i].name) == nn && memcmp(allowed[i].name, name, nn) == 0) {
            val *v = new_val(m, V_GLOBAL);
            if (!v)
                return -1;
            v->u.glob.g = allowed[i].g;
            v->u.glob.dtype = allowed[i].dtype;
            return push(m, v);
        }
    }
    rwkv_quoted qm, qn;
    rwkv_quote(&qm, mod, mn);
    rwkv_quote(&qn, name, nn);
    if (mn == 5 && memcmp(mod, "torch", 5) == 0 && nn > 7 &&
        memcmp(name + nn - 7, "Storage", 7) == 0)
        return fail(m,
                    "%s: unsupported storage type torch.%s (only FloatStorage, HalfStorage and "
                    "BFloat16Storage)",
                    op, qn.s);
    return fail(m, "%s: global '%s.%s' is not allowed (a checkpoint may only name torch tensor "
                   "and storage builders)",
                op, qm.s, qn.s);
}

static int op_global(vm *m)
{
    const unsigned char *line[2];
    size_t n[2];
    for (int k = 0; k < 2; k++) {
        size_t avail = m->len - m->pos;
        size_t lim = avail < RWKV_PICKLE_MAX_GLOBAL + 1 ? avail : RWKV_PICKLE_MAX_GLOBAL + 1;
        const unsigned char *nl = memchr(m->b + m->pos, '\n', lim);
        if (!nl)
            return fail(m, "GLOBAL: %s name not terminated within %d bytes",
                        k ? "attribute" : "module", RWKV_PICKLE_MAX_GLOBAL);
        line[k] = m->b + m->pos;
        n[k] = (size_t)(nl - line[k]);
        m->pos += n[k] + 1;
    }
    return resolve_global(m, (const char *)line[0], n[0], (const char *)line[1], n[1], "GLOBAL");
}

static int op_stack_global(vm *m)
{
    val *name = pop(m, "STACK_GLOBAL"), *mod = name ? pop(m, "STACK_GLOBAL") : NULL;
    if (!mod)
        return -1;
    if (mod->type != V_STR || name->type != V_STR)
        return fail(m, "STACK_GLOBAL: module and name must be str");
    return resolve_global(m, mod->u.s.p, mod->u.s.n, name->u.s.p, name->u.s.n, "STACK_GLOBAL");
}

/* ---------------------------------------------------------------- objects */

/* ('storage', <storage class>, key, location, numel) -> storage reference */
static int op_persid(vm *m)
{
    val *pid = pop(m, "BINPERSID");
    if (!pid)
        return -1;
    if (pid->type != V_TUPLE || pid->u.seq.n != 5)
        return fail(m, "BINPERSID: persistent id must be a 5-tuple ('storage', type, key, "
                       "location, numel), got a %s",
                    vtype_name[pid->type]);
    val **a = pid->u.seq.v;
    if (!str_is(a[0], "storage"))
        return fail(m, "BINPERSID: persistent id kind must be 'storage'");
    if (a[1]->type != V_GLOBAL || a[1]->u.glob.g != G_STORAGE)
        return fail(m, "BINPERSID: second item must be a storage class, got a %s",
                    vtype_name[a[1]->type]);
    if (a[2]->type != V_STR || a[2]->u.s.n == 0 || a[2]->u.s.n > 256)
        return fail(m, "BINPERSID: storage key must be a str of 1..256 bytes");
    if (a[3]->type != V_STR)
        return fail(m, "BINPERSID: storage location must be a str");
    if (a[4]->type != V_INT || a[4]->u.i < 0)
        return fail(m, "BINPERSID: storage size must be a non-negative int");
    storage_ref *st = alloc(m, sizeof *st);
    val *v = st ? new_val(m, V_STORAGE) : NULL;
    if (!v)
        return -1;
    st->dtype = a[1]->u.glob.dtype;
    st->key = a[2]->u.s.p;
    st->key_len = a[2]->u.s.n;
    st->numel = (uint64_t)a[4]->u.i;
    v->u.st = st;
    return push(m, v);
}

static int int_tuple(const val *v, int64_t *out, int *n)
{
    if (v->type != V_TUPLE || v->u.seq.n > RWKV_TENSOR_MAX_DIMS)
        return -1;
    for (size_t i = 0; i < v->u.seq.n; i++) {
        const val *x = v->u.seq.v[i];
        if (x->type != V_INT || x->u.i < 0)
            return -1;
        out[i] = x->u.i;
    }
    *n = (int)v->u.seq.n;
    return 0;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) */
static val *rebuild_tensor(vm *m, const val *args)
{
    size_t n = args->u.seq.n;
    val **a = args->u.seq.v;
    if (n != 6 && n != 7) {
        fail(m, "REDUCE: _rebuild_tensor_v2 takes 6 or 7 arguments, got %zu", n);
        return NULL;
    }
    tensor_view *t = alloc(m, sizeof *t);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    int nstride = -1;
    if (a[0]->type != V_STORAGE) {
        fail(m, "REDUCE: _rebuild_tensor_v2: argument 1 must be a storage, got a %s",
             vtype_name[a[0]->type]);
        return NULL;
    }
    if (a[1]->type != V_INT || a[1]->u.i < 0) {
        fail(m, "REDUCE: _rebuild_tensor_v2: storage offset must be a non-negative int");
        return NULL;
    }
    if (int_tuple(a[2], t->shape, &t->ndim) != 0) {
        fail(m, "REDUCE: _rebuild_tensor_v2: size must be a tuple of at most %d non-negative "
                "ints",
             RWKV_TENSOR_MAX_DIMS);
        return NULL;
    }
    if (int_tuple(a[3], t->stride, &nstride) != 0 || nstride != t->ndim) {
        fail(m, "REDUCE: _rebuild_tensor_v2: stride must be a tuple of %d non-negative ints",
             t->ndim);
        return NULL;
    }
    if (a[4]->type != V_BOOL || a[5]->type != V_DICT ||
        (n == 7 && a[6]->type != V_NONE && a[6]->type != V_DICT)) {
        fail(m, "REDUCE: _rebuild_tensor_v2: requires_grad must be a bool, backward hooks a "
                "dict and metadata None or a dict");
        return NULL;
    }
    t->storage = a[0]->u.st;
    t->offset = (uint64_t)a[1]->u.i;
    t->at = m->op_at;
    val *v = new_val(m, V_TENSOR);
    if (v)
        v->u.t = t;
    return v;
}

static int op_reduce(vm *m)
{
    val *args = pop(m, "REDUCE"), *fn = args ? pop(m, "REDUCE") : NULL;
    if (!fn)
        return -1;
    if (fn->type != V_GLOBAL)
        return fail(m, "REDUCE: cannot call a %s", vtype_name[fn->type]);
    if (args->type != V_TUPLE)
        return fail(m, "REDUCE: arguments must be a tuple, got a %s", vtype_name[args->type]);
    switch (fn->u.glob.g) {
    case G_ORDERED_DICT:
        if (args->u.seq.n != 0)
            return fail(m, "REDUCE: OrderedDict takes no arguments here, got %zu",
                        args->u.seq.n);
        return push(m, new_val(m, V_DICT));
    case G_REBUILD_TENSOR_V2:
        return push(m, rebuild_tensor(m, args));
    case G_REBUILD_PARAMETER:
        if (args->u.seq.n != 3 || args->u.seq.v[0]->type != V_TENSOR ||
            args->u.seq.v[1]->type != V_BOOL || args->u.seq.v[2]->type != V_DICT)
            return fail(m, "REDUCE: _rebuild_parameter takes (tensor, bool, dict)");
        return push(m, args->u.seq.v[0]);
    default:
        return fail(m, "REDUCE: a storage class cannot be called");
    }
}

static int op_build(vm *m)
{
    val *state = pop(m, "BUILD"), *obj = state ? top(m, "BUILD") : NULL;
    if (!obj)
        return -1;
    /* OrderedDict state dicts carry {'_metadata': ...}: accepted, ignored */
    if (obj->type != V_DICT || state->type != V_DICT)
        return fail(m, "BUILD: only a dict may get a dict of attributes (got %s on a %s)",
                    vtype_name[state->type], vtype_name[obj->type]);
    return 0;
}

static int op_setitems(vm *m, int many)
{
    const char *op = many ? "SETITEMS" : "SETITEM";
    val **items = NULL, *pair[2];
    size_t n = 0;
    if (many) {
        if (pop_mark(m, op, &items, &n) != 0)
            return -1;
        if (n % 2)
            return fail(m, "%s: odd number of keys and values (%zu)", op, n);
    } else {
        pair[1] = pop(m, op);
        pair[0] = pair[1] ? pop(m, op) : NULL;
        if (!pair[0])
            return -1;
        items = pair;
        n = 2;
    }
    val *d = top(m, op);
    if (!d)
        return -1;
    if (d->type != V_DICT)
        return fail(m, "%s: target is a %s, not a dict", op, vtype_name[d->type]);
    return seq_append(m, d, items, n);
}

static int op_appends(vm *m, int many)
{
    const char *op = many ? "APPENDS" : "APPEND";
    val **items = NULL, *one;
    size_t n = 1;
    if (many) {
        if (pop_mark(m, op, &items, &n) != 0)
            return -1;
    } else {
        if (!(one = pop(m, op)))
            return -1;
        items = &one;
    }
    val *l = top(m, op);
    if (!l)
        return -1;
    if (l->type != V_LIST)
        return fail(m, "%s: target is a %s, not a list", op, vtype_name[l->type]);
    return seq_append(m, l, items, n);
}

/* TUPLE, DICT: everything above the last MARK; TUPLEn: the top n values. */
static int op_collect(vm *m, int type, int n_fixed, const char *op)
{
    val **items = NULL, *fixed[3];
    size_t n = 0;
    if (n_fixed < 0) {
        if (pop_mark(m, op, &items, &n) != 0)
            return -1;
        if (type == V_DICT && n % 2)
            return fail(m, "%s: odd number of keys and values (%zu)", op, n);
    } else {
        n = (size_t)n_fixed;
        for (int i = n_fixed - 1; i >= 0; i--)
            if (!(fixed[i] = pop(m, op)))
                return -1;
        items = fixed;
    }
    val *v = new_val(m, type);
    if (!v || (n && seq_append(m, v, items, n) != 0))
        return -1;
    return push(m, v);
}

/* ---------------------------------------------------------------- loop */

static int step(vm *m, int *stopped)
{
    const unsigned char *b = m->b;
    m->op_at = m->pos;
    unsigned op = b[m->pos++];
    switch (op) {
    case 0x80: /* PROTO */
        if (need(m, 1, "PROTO") != 0)
            return -1;
        if (b[m->pos] < 2 || b[m->pos] > 5)
            return fail(m, "PROTO: unsupported pickle protocol %u", b[m->pos]);
        m->pos++;
        return 0;
    case 0x95: /* FRAME: advisory length of the next frame */
        if (need(m, 8, "FRAME") != 0)
            return -1;
        if (rd_le(b + m->pos, 8) > m->len - m->pos - 8)
            return fail(m, "FRAME: frame of %llu bytes runs past the pickle",
                        (unsigned long long)rd_le(b + m->pos, 8));
        m->pos += 8;
        return 0;
    case 'c':
        return op_global(m);
    case 0x93:
        return op_stack_global(m);
    case 'Q':
        return op_persid(m);
    case 'R':
        return op_reduce(m);
    case 'b':
        return op_build(m);
    case '(':
        if (m->nmarks == RWKV_PICKLE_MAX_MARKS)
            return fail(m, "MARK nested deeper than %d", RWKV_PICKLE_MAX_MARKS);
        m->marks[m->nmarks++] = m->sp;
        return 0;
    case '}':
        return push(m, new_val(m, V_DICT));
    case 'd':
        return op_collect(m, V_DICT, -1, "DICT");
    case 's':
        return op_setitems(m, 0);
    case 'u':
        return op_setitems(m, 1);
    case ']':
        return push(m, new_val(m, V_LIST));
    case 'a':
        return op_appends(m, 0);
    case 'e':
        return op_appends(m, 1);
    case ')':
        return op_collect(m, V_TUPLE, 0, "EMPTY_TUPLE");
    case 't':
        return op_collect(m, V_TUPLE, -1, "TUPLE");
    case 0x85:
        return op_collect(m, V_TUPLE, 1, "TUPLE1");
    case 0x86:
        return op_collect(m, V_TUPLE, 2, "TUPLE2");
    case 0x87:
        return op_collect(m, V_TUPLE, 3, "TUPLE3");
    case 'J':
        if (need(m, 4, "BININT") != 0)
            return -1;
        m->pos += 4;
        return push(m, new_int(m, (int32_t)(uint32_t)rd_le(b + m->pos - 4, 4)));
    case 'K':
        if (need(m, 1, "BININT1") != 0)
            return -1;
        return push(m, new_int(m, b[m->pos++]));
    case 'M':
        if (need(m, 2, "BININT2") != 0)
            return -1;
        m->pos += 2;
        return push(m, new_int(m, (int64_t)rd_le(b + m->pos - 2, 2)));
    case 0x8a: { /* LONG1: n-byte little-endian two's complement */
        if (need(m, 1, "LONG1") != 0)
            return -1;
        unsigned n = b[m->pos++];
        if (n > 8)
            return fail(m, "LONG1: %u-byte integer is too large", n);
        if (need(m, n, "LONG1") != 0)
            return -1;
        uint64_t x = rd_le(b + m->pos, (int)n);
        if (n > 0 && n < 8 && (b[m->pos + n - 1] & 0x80))
            x |= ~(uint64_t)0 << (8 * n);
        m->pos += n;
        return push(m, new_int(m, (int64_t)x));
    }
    case 'G': { /* BINFLOAT: big-endian IEEE double */
        if (need(m, 8, "BINFLOAT") != 0)
            return -1;
        uint64_t x = 0;
        for (int i = 0; i < 8; i++)
            x = (x << 8) | b[m->pos + i];
        m->pos += 8;
        val *v = new_val(m, V_FLOAT);
        if (v)
            memcpy(&v->u.f, &x, sizeof x);
        return push(m, v);
    }
    case 'N':
        return push(m, &m->none);
    case 0x88:
        return push(m, &m->yes);
    case 0x89:
        return push(m, &m->no);
    case 'X':
    case 0x8c:
    case 0x8d: { /* BINUNICODE (u32 length), SHORT_BINUNICODE (u8), BINUNICODE8 (u64) */
        int w = op == 'X' ? 4 : op == 0x8c ? 1 : 8;
        if (need(m, (size_t)w, "BINUNICODE") != 0)
            return -1;
        uint64_t n = rd_le(b + m->pos, w);
        m->pos += (size_t)w;
        if (n > m->len - m->pos)
            return fail(m, "BINUNICODE: string of %llu bytes runs past the pickle",
                        (unsigned long long)n);
        m->pos += (size_t)n;
        return push(m, new_str(m, b + m->pos - n, (size_t)n));
    }
    case 'q':
        if (need(m, 1, "BINPUT") != 0)
            return -1;
        m->pos++;
        return memo_put(m, b[m->pos - 1], m->sp > floor_of(m) ? m->stack[m->sp - 1] : NULL);
    case 'r':
        if (need(m, 4, "LONG_BINPUT") != 0)
            return -1;
        m->pos += 4;
        return memo_put(m, rd_le(b + m->pos - 4, 4),
                        m->sp > floor_of(m) ? m->stack[m->sp - 1] : NULL);
    case 0x94:
        return memo_put(m, m->memo_count, m->sp > floor_of(m) ? m->stack[m->sp - 1] : NULL);
    case 'h':
        if (need(m, 1, "BINGET") != 0)
            return -1;
        m->pos++;
        return memo_get(m, b[m->pos - 1]);
    case 'j':
        if (need(m, 4, "LONG_BINGET") != 0)
            return -1;
        m->pos += 4;
        return memo_get(m, rd_le(b + m->pos - 4, 4));
    case '.':
        *stopped = 1;
        return 0;
    default:
        if (op >= 0x20 && op < 0x7f)
            return fail(m, "opcode 0x%02x '%c' is not allowed in a torch checkpoint", op,
                        (int)op);
        return fail(m, "opcode 0x%02x is not allowed in a torch checkpoint", op);
    }
}

/* The value left by STOP must be a dict of str -> tensor. */
static int collect(vm *m, rwkv_pickle_result *out)
{
    if (m->sp != 1 || m->nmarks != 0)
        return fail(m, "STOP with %zu values and %d marks on the stack (expected one dict)",
                    m->sp, m->nmarks);
    const val *root = m->stack[0];
    if (root->type != V_DICT)
        return fail(m, "the pickled object is a %s, not a dict of tensors",
                    vtype_name[root->type]);
    size_t n = root->u.seq.n / 2;
    out->tensors = calloc(n ? n : 1, sizeof *out->tensors);
    if (!out->tensors)
        return fail(m, "out of memory for %zu tensors", n);
    for (size_t i = 0; i < n; i++) {
        const val *k = root->u.seq.v[2 * i], *v = root->u.seq.v[2 * i + 1];
        rwkv_quoted q;
        if (k->type != V_STR)
            return fail(m, "dict key %zu is a %s, not a str", i, vtype_name[k->type]);
        rwkv_quote(&q, k->u.s.p, k->u.s.n);
        if (memchr(k->u.s.p, 0, k->u.s.n))
            return fail(m, "dict key '%s' contains a NUL byte", q.s);
        if (v->type != V_TENSOR)
            return fail(m, "value of '%s' is a %s, not a tensor", q.s, vtype_name[v->type]);
        const tensor_view *t = v->u.t;
        rwkv_pickle_tensor *o = &out->tensors[i];
        o->name = k->u.s.p;
        o->name_len = k->u.s.n;
        o->dtype = t->storage->dtype;
        o->key = t->storage->key;
        o->key_len = t->storage->key_len;
        o->storage_numel = t->storage->numel;
        o->offset = t->offset;
        o->ndim = t->ndim;
        memcpy(o->shape, t->shape, sizeof o->shape);
        memcpy(o->stride, t->stride, sizeof o->stride);
        o->pickle_offset = t->at;
        out->count = i + 1;
    }
    return 0;
}

int rwkv_torch_pickle_load(const char *label, const void *buf, size_t len,
                           rwkv_pickle_result *out, rwkv_error *err)
{
    memset(out, 0, sizeof *out);
    vm m;
    memset(&m, 0, sizeof m);
    m.label = label;
    m.b = buf;
    m.len = len;
    m.err = err;
    m.arena_budget = (len < (SIZE_MAX >> 7) ? len * 64 : SIZE_MAX / 2) + (1u << 20);
    m.none.type = V_NONE;
    m.yes.type = V_BOOL;
    m.yes.u.i = 1;
    m.no.type = V_BOOL;
    int rc = 0, stopped = 0;
    while (rc == 0 && !stopped) {
        if (m.pos >= m.len) {
            m.op_at = m.pos;
            rc = fail(&m, "pickle ends without STOP");
            break;
        }
        rc = step(&m, &stopped);
    }
    if (rc == 0)
        rc = collect(&m, out);
    if (rc != 0)
        rwkv_pickle_result_free(out);
    free(m.stack);
    free(m.memo);
    for (chunk *c = m.chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    return rc;
}

void rwkv_pickle_result_free(rwkv_pickle_result *r)
{
    if (!r)
        return;
    free(r->tensors);
    r->tensors = NULL;
    r->count = 0;
}
