/* pickle_vm.c — the stack machine under the restricted unpickler (see
 * pickle_vm.h): arena, values, stack, memo, input reads. */
#include "core/io/pickle_vm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const rwkv_pk_type_name[] = {"None",  "bool", "int",    "float",   "str",   "tuple",
                                         "list",  "dict", "global", "storage", "tensor"};

void rwkv_pk_init(pk_vm *m, const char *label, const void *buf, size_t len, rwkv_error *err)
{
    memset(m, 0, sizeof *m);
    m->label = label;
    m->b = buf;
    m->len = len;
    m->err = err;
    m->arena_budget = (len < (SIZE_MAX >> 7) ? len * 64 : SIZE_MAX / 2) + (1u << 20);
    m->none.type = PK_NONE;
    m->yes.type = PK_BOOL;
    m->yes.u.i = 1;
    m->no.type = PK_BOOL;
}

void rwkv_pk_free(pk_vm *m)
{
    free(m->stack);
    free(m->memo);
    for (pk_chunk *c = m->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    m->stack = NULL;
    m->memo = NULL;
    m->chunks = NULL;
}

int rwkv_pk_fail(pk_vm *m, const char *fmt, ...)
{
    char msg[RWKV_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rwkv_fail(m->err, "%s: pickle byte %zu: %s", m->label, m->op_at, msg);
}

void *rwkv_pk_alloc(pk_vm *m, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    pk_chunk *c = m->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (m->arena_total + cap > m->arena_budget) {
            rwkv_pk_fail(m, "pickle needs more memory than its %zu bytes can justify", m->len);
            return NULL;
        }
        c = malloc(sizeof *c + cap);
        if (!c) {
            rwkv_pk_fail(m, "out of memory");
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

pk_val *rwkv_pk_new(pk_vm *m, int type)
{
    pk_val *v = rwkv_pk_alloc(m, sizeof *v);
    if (v) {
        memset(v, 0, sizeof *v);
        v->type = type;
    }
    return v;
}

/* Grows by doubling: copies leave garbage in the arena, at most as much
 * again as the final size. */
int rwkv_pk_append(pk_vm *m, pk_val *s, pk_val *const *items, size_t n)
{
    if (n == 0)
        return 0;
    if (s->u.seq.cap - s->u.seq.n < n) {
        size_t cap = s->u.seq.cap ? s->u.seq.cap : 4;
        while (cap - s->u.seq.n < n)
            cap *= 2;
        pk_val **nv = rwkv_pk_alloc(m, cap * sizeof *nv);
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

size_t rwkv_pk_floor(const pk_vm *m)
{
    return m->nmarks ? m->marks[m->nmarks - 1] : 0;
}

int rwkv_pk_push(pk_vm *m, pk_val *v)
{
    if (!v)
        return -1;
    if (m->sp == m->scap) {
        if (m->scap >= RWKV_PICKLE_MAX_STACK)
            return rwkv_pk_fail(m, "stack deeper than %u values", RWKV_PICKLE_MAX_STACK);
        size_t cap = m->scap ? m->scap * 2 : 64;
        pk_val **ns = realloc(m->stack, cap * sizeof *ns);
        if (!ns)
            return rwkv_pk_fail(m, "out of memory");
        m->stack = ns;
        m->scap = cap;
    }
    m->stack[m->sp++] = v;
    return 0;
}

pk_val *rwkv_pk_pop(pk_vm *m, const char *op)
{
    if (m->sp <= rwkv_pk_floor(m)) {
        rwkv_pk_fail(m, "%s: stack underflow", op);
        return NULL;
    }
    return m->stack[--m->sp];
}

pk_val *rwkv_pk_top(pk_vm *m, const char *op)
{
    if (m->sp <= rwkv_pk_floor(m)) {
        rwkv_pk_fail(m, "%s: stack underflow", op);
        return NULL;
    }
    return m->stack[m->sp - 1];
}

/* Pops everything above the last MARK; items stay readable at *items until
 * the next rwkv_pk_push. */
int rwkv_pk_pop_mark(pk_vm *m, const char *op, pk_val ***items, size_t *n)
{
    if (m->nmarks == 0)
        return rwkv_pk_fail(m, "%s without a MARK", op);
    size_t at = m->marks[--m->nmarks];
    *items = m->stack + at;
    *n = m->sp - at;
    m->sp = at;
    return 0;
}

/* ---------------------------------------------------------------- input */

int rwkv_pk_need(pk_vm *m, size_t n, const char *op)
{
    if (m->len - m->pos < n)
        return rwkv_pk_fail(m, "%s: needs %zu bytes, only %zu left", op, n, m->len - m->pos);
    return 0;
}

uint64_t rwkv_pk_rd_le(const unsigned char *p, int n)
{
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

int rwkv_pk_memo_put(pk_vm *m, uint64_t idx, pk_val *v)
{
    if (!v)
        return rwkv_pk_fail(m, "memo store with an empty stack");
    if (idx >= m->len)
        return rwkv_pk_fail(m, "memo index %llu out of range for a %zu-byte pickle",
                    (unsigned long long)idx, m->len);
    if (idx >= m->memo_cap) {
        size_t cap = m->memo_cap ? m->memo_cap : 64;
        while (cap <= idx)
            cap *= 2;
        if (cap > m->len)
            cap = m->len;
        pk_val **nm = realloc(m->memo, cap * sizeof *nm);
        if (!nm)
            return rwkv_pk_fail(m, "out of memory");
        memset(nm + m->memo_cap, 0, (cap - m->memo_cap) * sizeof *nm);
        m->memo = nm;
        m->memo_cap = cap;
    }
    if (!m->memo[idx])
        m->memo_count++;
    m->memo[idx] = v;
    return 0;
}

int rwkv_pk_memo_get(pk_vm *m, uint64_t idx)
{
    if (idx >= m->memo_cap || !m->memo[idx])
        return rwkv_pk_fail(m, "memo index %llu was never stored", (unsigned long long)idx);
    return rwkv_pk_push(m, m->memo[idx]);
}

pk_val *rwkv_pk_new_str(pk_vm *m, const unsigned char *p, size_t n)
{
    pk_val *v = rwkv_pk_new(m, PK_STR);
    if (v) {
        v->u.s.p = (const char *)p;
        v->u.s.n = n;
    }
    return v;
}

pk_val *rwkv_pk_new_int(pk_vm *m, int64_t i)
{
    pk_val *v = rwkv_pk_new(m, PK_INT);
    if (v)
        v->u.i = i;
    return v;
}

int rwkv_pk_str_is(const pk_val *v, const char *s)
{
    size_t n = strlen(s);
    return v->type == PK_STR && v->u.s.n == n && memcmp(v->u.s.p, s, n) == 0;
}
