/* torch_pickle.c — the restricted unpickler behind torch_pickle.h: the
 * opcodes torch.save uses and what the whitelisted names mean.
 *
 * A Python pickle is a program for a stack machine (pickle_vm.c).  This file
 * runs only the instructions torch.save uses for a state dict, over a value
 * model of its own (ints, floats, strings, tuples, lists, dicts, and three
 * "objects": whitelisted names, storage references and tensor views).  The
 * loop never recurses, so hostile nesting or self-referencing containers
 * cost nothing but memory, which the machine caps.
 */
#include "core/io/torch_pickle.h"

#include <stdlib.h>
#include <string.h>

#include "core/io/pickle_vm.h"
#include "core/quote.h"

/* ---------------------------------------------------------------- globals */

static int resolve_global(pk_vm *m, const char *mod, size_t mn, const char *name, size_t nn,
                          const char *op)
{
    static const struct {
        const char *mod, *name;
        int g;
        rwkv_dtype dtype;
    } allowed[] = {
        {"collections", "OrderedDict", PK_G_ORDERED_DICT, RWKV_F32},
        {"torch._utils", "_rebuild_tensor_v2", PK_G_REBUILD_TENSOR_V2, RWKV_F32},
        {"torch._utils", "_rebuild_parameter", PK_G_REBUILD_PARAMETER, RWKV_F32},
        {"torch", "FloatStorage", PK_G_STORAGE, RWKV_F32},
        {"torch", "HalfStorage", PK_G_STORAGE, RWKV_F16},
        {"torch", "BFloat16Storage", PK_G_STORAGE, RWKV_BF16},
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        if (strlen(allowed[i].mod) == mn && memcmp(allowed[i].mod, mod, mn) == 0 &&
            strlen(allowed[i].name) == nn && memcmp(allowed[i].name, name, nn) == 0) {
            pk_val *v = rwkv_pk_new(m, PK_GLOBAL);
            if (!v)
                return -1;
            v->u.glob.g = allowed[i].g;
            v->u.glob.dtype = allowed[i].dtype;
            return rwkv_pk_push(m, v);
        }
    }
    rwkv_quoted qm, qn;
    rwkv_quote(&qm, mod, mn);
    rwkv_quote(&qn, name, nn);
    if (mn == 5 && memcmp(mod, "torch", 5) == 0 && nn > 7 &&
        memcmp(name + nn - 7, "Storage", 7) == 0)
        return rwkv_pk_fail(m,
                    "%s: unsupported storage type torch.%s (only FloatStorage, HalfStorage and "
                    "BFloat16Storage)",
                    op, qn.s);
    return rwkv_pk_fail(m, "%s: global '%s.%s' is not allowed (a checkpoint may only name torch tensor "
                   "and storage builders)",
                op, qm.s, qn.s);
}

static int op_global(pk_vm *m)
{
    const unsigned char *line[2];
    size_t n[2];
    for (int k = 0; k < 2; k++) {
        size_t avail = m->len - m->pos;
        size_t lim = avail < RWKV_PICKLE_MAX_GLOBAL + 1 ? avail : RWKV_PICKLE_MAX_GLOBAL + 1;
        const unsigned char *nl = memchr(m->b + m->pos, '\n', lim);
        if (!nl)
            return rwkv_pk_fail(m, "GLOBAL: %s name not terminated within %d bytes",
                        k ? "attribute" : "module", RWKV_PICKLE_MAX_GLOBAL);
        line[k] = m->b + m->pos;
        n[k] = (size_t)(nl - line[k]);
        m->pos += n[k] + 1;
    }
    return resolve_global(m, (const char *)line[0], n[0], (const char *)line[1], n[1], "GLOBAL");
}

static int op_stack_global(pk_vm *m)
{
    pk_val *name = rwkv_pk_pop(m, "STACK_GLOBAL"), *mod = name ? rwkv_pk_pop(m, "STACK_GLOBAL") : NULL;
    if (!mod)
        return -1;
    if (mod->type != PK_STR || name->type != PK_STR)
        return rwkv_pk_fail(m, "STACK_GLOBAL: module and name must be str");
    return resolve_global(m, mod->u.s.p, mod->u.s.n, name->u.s.p, name->u.s.n, "STACK_GLOBAL");
}

/* ---------------------------------------------------------------- objects */

/* ('storage', <storage class>, key, location, numel) -> storage reference */
static int op_persid(pk_vm *m)
{
    pk_val *pid = rwkv_pk_pop(m, "BINPERSID");
    if (!pid)
        return -1;
    if (pid->type != PK_TUPLE || pid->u.seq.n != 5)
        return rwkv_pk_fail(m, "BINPERSID: persistent id must be a 5-tuple ('storage', type, key, "
                       "location, numel), got a %s",
                    rwkv_pk_type_name[pid->type]);
    pk_val **a = pid->u.seq.v;
    if (!rwkv_pk_str_is(a[0], "storage"))
        return rwkv_pk_fail(m, "BINPERSID: persistent id kind must be 'storage'");
    if (a[1]->type != PK_GLOBAL || a[1]->u.glob.g != PK_G_STORAGE)
        return rwkv_pk_fail(m, "BINPERSID: second item must be a storage class, got a %s",
                    rwkv_pk_type_name[a[1]->type]);
    if (a[2]->type != PK_STR || a[2]->u.s.n == 0 || a[2]->u.s.n > 256)
        return rwkv_pk_fail(m, "BINPERSID: storage key must be a str of 1..256 bytes");
    if (a[3]->type != PK_STR)
        return rwkv_pk_fail(m, "BINPERSID: storage location must be a str");
    if (a[4]->type != PK_INT || a[4]->u.i < 0)
        return rwkv_pk_fail(m, "BINPERSID: storage size must be a non-negative int");
    pk_storage *st = rwkv_pk_alloc(m, sizeof *st);
    pk_val *v = st ? rwkv_pk_new(m, PK_STORAGE) : NULL;
    if (!v)
        return -1;
    st->dtype = a[1]->u.glob.dtype;
    st->key = a[2]->u.s.p;
    st->key_len = a[2]->u.s.n;
    st->numel = (uint64_t)a[4]->u.i;
    v->u.st = st;
    return rwkv_pk_push(m, v);
}

static int int_tuple(const pk_val *v, int64_t *out, int *n)
{
    if (v->type != PK_TUPLE || v->u.seq.n > RWKV_TENSOR_MAX_DIMS)
        return -1;
    for (size_t i = 0; i < v->u.seq.n; i++) {
        const pk_val *x = v->u.seq.v[i];
        if (x->type != PK_INT || x->u.i < 0)
            return -1;
        out[i] = x->u.i;
    }
    *n = (int)v->u.seq.n;
    return 0;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) */
static pk_val *rebuild_tensor(pk_vm *m, const pk_val *args)
{
    size_t n = args->u.seq.n;
    pk_val **a = args->u.seq.v;
    if (n != 6 && n != 7) {
        rwkv_pk_fail(m, "REDUCE: _rebuild_tensor_v2 takes 6 or 7 arguments, got %zu", n);
        return NULL;
    }
    pk_tensor *t = rwkv_pk_alloc(m, sizeof *t);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    int nstride = -1;
    if (a[0]->type != PK_STORAGE) {
        rwkv_pk_fail(m, "REDUCE: _rebuild_tensor_v2: argument 1 must be a storage, got a %s",
             rwkv_pk_type_name[a[0]->type]);
        return NULL;
    }
    if (a[1]->type != PK_INT || a[1]->u.i < 0) {
        rwkv_pk_fail(m, "REDUCE: _rebuild_tensor_v2: storage offset must be a non-negative int");
        return NULL;
    }
    if (int_tuple(a[2], t->shape, &t->ndim) != 0) {
        rwkv_pk_fail(m, "REDUCE: _rebuild_tensor_v2: size must be a tuple of at most %d non-negative "
                "ints",
             RWKV_TENSOR_MAX_DIMS);
        return NULL;
    }
    if (int_tuple(a[3], t->stride, &nstride) != 0 || nstride != t->ndim) {
        rwkv_pk_fail(m, "REDUCE: _rebuild_tensor_v2: stride must be a tuple of %d non-negative ints",
             t->ndim);
        return NULL;
    }
    if (a[4]->type != PK_BOOL || a[5]->type != PK_DICT ||
        (n == 7 && a[6]->type != PK_NONE && a[6]->type != PK_DICT)) {
        rwkv_pk_fail(m, "REDUCE: _rebuild_tensor_v2: requires_grad must be a bool, backward hooks a "
                "dict and metadata None or a dict");
        return NULL;
    }
    t->storage = a[0]->u.st;
    t->offset = (uint64_t)a[1]->u.i;
    t->at = m->op_at;
    pk_val *v = rwkv_pk_new(m, PK_TENSOR);
    if (v)
        v->u.t = t;
    return v;
}

static int op_reduce(pk_vm *m)
{
    pk_val *args = rwkv_pk_pop(m, "REDUCE"), *fn = args ? rwkv_pk_pop(m, "REDUCE") : NULL;
    if (!fn)
        return -1;
    if (fn->type != PK_GLOBAL)
        return rwkv_pk_fail(m, "REDUCE: cannot call a %s", rwkv_pk_type_name[fn->type]);
    if (args->type != PK_TUPLE)
        return rwkv_pk_fail(m, "REDUCE: arguments must be a tuple, got a %s", rwkv_pk_type_name[args->type]);
    switch (fn->u.glob.g) {
    case PK_G_ORDERED_DICT:
        if (args->u.seq.n != 0)
            return rwkv_pk_fail(m, "REDUCE: OrderedDict takes no arguments here, got %zu",
                        args->u.seq.n);
        return rwkv_pk_push(m, rwkv_pk_new(m, PK_DICT));
    case PK_G_REBUILD_TENSOR_V2:
        return rwkv_pk_push(m, rebuild_tensor(m, args));
    case PK_G_REBUILD_PARAMETER:
        if (args->u.seq.n != 3 || args->u.seq.v[0]->type != PK_TENSOR ||
            args->u.seq.v[1]->type != PK_BOOL || args->u.seq.v[2]->type != PK_DICT)
            return rwkv_pk_fail(m, "REDUCE: _rebuild_parameter takes (tensor, bool, dict)");
        return rwkv_pk_push(m, args->u.seq.v[0]);
    default:
        return rwkv_pk_fail(m, "REDUCE: a storage class cannot be called");
    }
}

static int op_build(pk_vm *m)
{
    pk_val *state = rwkv_pk_pop(m, "BUILD"), *obj = state ? rwkv_pk_top(m, "BUILD") : NULL;
    if (!obj)
        return -1;
    /* OrderedDict state dicts carry {'_metadata': ...}: accepted, ignored */
    if (obj->type != PK_DICT || state->type != PK_DICT)
        return rwkv_pk_fail(m, "BUILD: only a dict may get a dict of attributes (got %s on a %s)",
                    rwkv_pk_type_name[state->type], rwkv_pk_type_name[obj->type]);
    return 0;
}

static int op_setitems(pk_vm *m, int many)
{
    const char *op = many ? "SETITEMS" : "SETITEM";
    pk_val **items = NULL, *pair[2];
    size_t n = 0;
    if (many) {
        if (rwkv_pk_pop_mark(m, op, &items, &n) != 0)
            return -1;
        if (n % 2)
            return rwkv_pk_fail(m, "%s: odd number of keys and values (%zu)", op, n);
    } else {
        pair[1] = rwkv_pk_pop(m, op);
        pair[0] = pair[1] ? rwkv_pk_pop(m, op) : NULL;
        if (!pair[0])
            return -1;
        items = pair;
        n = 2;
    }
    pk_val *d = rwkv_pk_top(m, op);
    if (!d)
        return -1;
    if (d->type != PK_DICT)
        return rwkv_pk_fail(m, "%s: target is a %s, not a dict", op, rwkv_pk_type_name[d->type]);
    return rwkv_pk_append(m, d, items, n);
}

static int op_appends(pk_vm *m, int many)
{
    const char *op = many ? "APPENDS" : "APPEND";
    pk_val **items = NULL, *one;
    size_t n = 1;
    if (many) {
        if (rwkv_pk_pop_mark(m, op, &items, &n) != 0)
            return -1;
    } else {
        if (!(one = rwkv_pk_pop(m, op)))
            return -1;
        items = &one;
    }
    pk_val *l = rwkv_pk_top(m, op);
    if (!l)
        return -1;
    if (l->type != PK_LIST)
        return rwkv_pk_fail(m, "%s: target is a %s, not a list", op, rwkv_pk_type_name[l->type]);
    return rwkv_pk_append(m, l, items, n);
}

/* TUPLE, DICT: everything above the last MARK; TUPLEn: the rwkv_pk_top n values. */
static int op_collect(pk_vm *m, int type, int n_fixed, const char *op)
{
    pk_val **items = NULL, *fixed[3];
    size_t n = 0;
    if (n_fixed < 0) {
        if (rwkv_pk_pop_mark(m, op, &items, &n) != 0)
            return -1;
        if (type == PK_DICT && n % 2)
            return rwkv_pk_fail(m, "%s: odd number of keys and values (%zu)", op, n);
    } else {
        n = (size_t)n_fixed;
        for (int i = n_fixed - 1; i >= 0; i--)
            if (!(fixed[i] = rwkv_pk_pop(m, op)))
                return -1;
        items = fixed;
    }
    pk_val *v = rwkv_pk_new(m, type);
    if (!v || (n && rwkv_pk_append(m, v, items, n) != 0))
        return -1;
    return rwkv_pk_push(m, v);
}

/* ---------------------------------------------------------------- loop */

static int step(pk_vm *m, int *stopped)
{
    const unsigned char *b = m->b;
    m->op_at = m->pos;
    unsigned op = b[m->pos++];
    switch (op) {
    case 0x80: /* PROTO */
        if (rwkv_pk_need(m, 1, "PROTO") != 0)
            return -1;
        if (b[m->pos] < 2 || b[m->pos] > 5)
            return rwkv_pk_fail(m, "PROTO: unsupported pickle protocol %u", b[m->pos]);
        m->pos++;
        return 0;
    case 0x95: /* FRAME: advisory length of the next frame */
        if (rwkv_pk_need(m, 8, "FRAME") != 0)
            return -1;
        if (rwkv_pk_rd_le(b + m->pos, 8) > m->len - m->pos - 8)
            return rwkv_pk_fail(m, "FRAME: frame of %llu bytes runs past the pickle",
                        (unsigned long long)rwkv_pk_rd_le(b + m->pos, 8));
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
            return rwkv_pk_fail(m, "MARK nested deeper than %d", RWKV_PICKLE_MAX_MARKS);
        m->marks[m->nmarks++] = m->sp;
        return 0;
    case '}':
        return rwkv_pk_push(m, rwkv_pk_new(m, PK_DICT));
    case 'd':
        return op_collect(m, PK_DICT, -1, "DICT");
    case 's':
        return op_setitems(m, 0);
    case 'u':
        return op_setitems(m, 1);
    case ']':
        return rwkv_pk_push(m, rwkv_pk_new(m, PK_LIST));
    case 'a':
        return op_appends(m, 0);
    case 'e':
        return op_appends(m, 1);
    case ')':
        return op_collect(m, PK_TUPLE, 0, "EMPTY_TUPLE");
    case 't':
        return op_collect(m, PK_TUPLE, -1, "TUPLE");
    case 0x85:
        return op_collect(m, PK_TUPLE, 1, "TUPLE1");
    case 0x86:
        return op_collect(m, PK_TUPLE, 2, "TUPLE2");
    case 0x87:
        return op_collect(m, PK_TUPLE, 3, "TUPLE3");
    case 'J':
        if (rwkv_pk_need(m, 4, "BININT") != 0)
            return -1;
        m->pos += 4;
        return rwkv_pk_push(m, rwkv_pk_new_int(m, (int32_t)(uint32_t)rwkv_pk_rd_le(b + m->pos - 4, 4)));
    case 'K':
        if (rwkv_pk_need(m, 1, "BININT1") != 0)
            return -1;
        return rwkv_pk_push(m, rwkv_pk_new_int(m, b[m->pos++]));
    case 'M':
        if (rwkv_pk_need(m, 2, "BININT2") != 0)
            return -1;
        m->pos += 2;
        return rwkv_pk_push(m, rwkv_pk_new_int(m, (int64_t)rwkv_pk_rd_le(b + m->pos - 2, 2)));
    case 0x8a: { /* LONG1: n-byte little-endian two's complement */
        if (rwkv_pk_need(m, 1, "LONG1") != 0)
            return -1;
        unsigned n = b[m->pos++];
        if (n > 8)
            return rwkv_pk_fail(m, "LONG1: %u-byte integer is too large", n);
        if (rwkv_pk_need(m, n, "LONG1") != 0)
            return -1;
        uint64_t x = rwkv_pk_rd_le(b + m->pos, (int)n);
        if (n > 0 && n < 8 && (b[m->pos + n - 1] & 0x80))
            x |= ~(uint64_t)0 << (8 * n);
        m->pos += n;
        return rwkv_pk_push(m, rwkv_pk_new_int(m, (int64_t)x));
    }
    case 'G': { /* BINFLOAT: big-endian IEEE double */
        if (rwkv_pk_need(m, 8, "BINFLOAT") != 0)
            return -1;
        uint64_t x = 0;
        for (int i = 0; i < 8; i++)
            x = (x << 8) | b[m->pos + i];
        m->pos += 8;
        pk_val *v = rwkv_pk_new(m, PK_FLOAT);
        if (v)
            memcpy(&v->u.f, &x, sizeof x);
        return rwkv_pk_push(m, v);
    }
    case 'N':
        return rwkv_pk_push(m, &m->none);
    case 0x88:
        return rwkv_pk_push(m, &m->yes);
    case 0x89:
        return rwkv_pk_push(m, &m->no);
    case 'X':
    case 0x8c:
    case 0x8d: { /* BINUNICODE (u32 length), SHORT_BINUNICODE (u8), BINUNICODE8 (u64) */
        int w = op == 'X' ? 4 : op == 0x8c ? 1 : 8;
        if (rwkv_pk_need(m, (size_t)w, "BINUNICODE") != 0)
            return -1;
        uint64_t n = rwkv_pk_rd_le(b + m->pos, w);
        m->pos += (size_t)w;
        if (n > m->len - m->pos)
            return rwkv_pk_fail(m, "BINUNICODE: string of %llu bytes runs past the pickle",
                        (unsigned long long)n);
        m->pos += (size_t)n;
        return rwkv_pk_push(m, rwkv_pk_new_str(m, b + m->pos - n, (size_t)n));
    }
    case 'q':
        if (rwkv_pk_need(m, 1, "BINPUT") != 0)
            return -1;
        m->pos++;
        return rwkv_pk_memo_put(m, b[m->pos - 1], m->sp > rwkv_pk_floor(m) ? m->stack[m->sp - 1] : NULL);
    case 'r':
        if (rwkv_pk_need(m, 4, "LONG_BINPUT") != 0)
            return -1;
        m->pos += 4;
        return rwkv_pk_memo_put(m, rwkv_pk_rd_le(b + m->pos - 4, 4),
                        m->sp > rwkv_pk_floor(m) ? m->stack[m->sp - 1] : NULL);
    case 0x94:
        return rwkv_pk_memo_put(m, m->memo_count, m->sp > rwkv_pk_floor(m) ? m->stack[m->sp - 1] : NULL);
    case 'h':
        if (rwkv_pk_need(m, 1, "BINGET") != 0)
            return -1;
        m->pos++;
        return rwkv_pk_memo_get(m, b[m->pos - 1]);
    case 'j':
        if (rwkv_pk_need(m, 4, "LONG_BINGET") != 0)
            return -1;
        m->pos += 4;
        return rwkv_pk_memo_get(m, rwkv_pk_rd_le(b + m->pos - 4, 4));
    case '.':
        *stopped = 1;
        return 0;
    default:
        if (op >= 0x20 && op < 0x7f)
            return rwkv_pk_fail(m, "opcode 0x%02x '%c' is not allowed in a torch checkpoint", op,
                        (int)op);
        return rwkv_pk_fail(m, "opcode 0x%02x is not allowed in a torch checkpoint", op);
    }
}

/* The value left by STOP must be a dict of str -> tensor. */
static int collect(pk_vm *m, rwkv_pickle_result *out)
{
    if (m->sp != 1 || m->nmarks != 0)
        return rwkv_pk_fail(m, "STOP with %zu values and %d marks on the stack (expected one dict)",
                    m->sp, m->nmarks);
    const pk_val *root = m->stack[0];
    if (root->type != PK_DICT)
        return rwkv_pk_fail(m, "the pickled object is a %s, not a dict of tensors",
                    rwkv_pk_type_name[root->type]);
    size_t n = root->u.seq.n / 2;
    out->tensors = calloc(n ? n : 1, sizeof *out->tensors);
    if (!out->tensors)
        return rwkv_pk_fail(m, "out of memory for %zu tensors", n);
    for (size_t i = 0; i < n; i++) {
        const pk_val *k = root->u.seq.v[2 * i], *v = root->u.seq.v[2 * i + 1];
        rwkv_quoted q;
        if (k->type != PK_STR)
            return rwkv_pk_fail(m, "dict key %zu is a %s, not a str", i, rwkv_pk_type_name[k->type]);
        rwkv_quote(&q, k->u.s.p, k->u.s.n);
        if (memchr(k->u.s.p, 0, k->u.s.n))
            return rwkv_pk_fail(m, "dict key '%s' contains a NUL byte", q.s);
        if (v->type != PK_TENSOR)
            return rwkv_pk_fail(m, "value of '%s' is a %s, not a tensor", q.s, rwkv_pk_type_name[v->type]);
        const pk_tensor *t = v->u.t;
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
    pk_vm m;
    rwkv_pk_init(&m, label, buf, len, err);
    int rc = 0, stopped = 0;
    while (rc == 0 && !stopped) {
        if (m.pos >= m.len) {
            m.op_at = m.pos;
            rc = rwkv_pk_fail(&m, "pickle ends without STOP");
            break;
        }
        rc = step(&m, &stopped);
    }
    if (rc == 0)
        rc = collect(&m, out);
    if (rc != 0)
        rwkv_pickle_result_free(out);
    rwkv_pk_free(&m);
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
