/* pickle_vm.h — the stack machine under torch_pickle.c: value model, arena,
 * stack with MARK floors, memo, bounds-checked input.  Internal to the
 * restricted unpickler; nothing else should include it.
 *
 * Every value lives in one arena whose total size is capped at a multiple of
 * the pickle's length; each opcode consumes at least one input byte and
 * creates at most one value, so memory is linear in the input.  Functions
 * returning int give 0 / -1; on -1 (and on a NULL pointer result) the
 * machine's error has been set to one line "label: pickle byte N: ...".
 */
#ifndef RWKV_PICKLE_VM_H
#define RWKV_PICKLE_VM_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/tensor_file.h"
#include "core/io/torch_pickle.h"

/* Value types; rwkv_pk_type_name[type] names them in messages. */
enum pk_type {
    PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_TUPLE, PK_LIST, PK_DICT,
    PK_GLOBAL,  /* one of the whitelisted names, see enum pk_global */
    PK_STORAGE, /* the result of a persistent id: a storage record reference */
    PK_TENSOR,  /* the result of _rebuild_tensor_v2: a view of a storage */
};
extern const char *const rwkv_pk_type_name[];

enum pk_global { PK_G_ORDERED_DICT, PK_G_REBUILD_TENSOR_V2, PK_G_REBUILD_PARAMETER, PK_G_STORAGE };

typedef struct pk_val pk_val;

typedef struct pk_storage {
    rwkv_dtype dtype;
    const char *key;
    size_t key_len;
    uint64_t numel;
} pk_storage;

typedef struct pk_tensor {
    const pk_storage *storage;
    uint64_t offset;
    int ndim;
    int64_t shape[RWKV_TENSOR_MAX_DIMS];
    int64_t stride[RWKV_TENSOR_MAX_DIMS];
    size_t at;
} pk_tensor;

struct pk_val {
    int type;
    union {
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t n;
        } s;
        struct {
            pk_val **v;
            size_t n, cap; /* dict: n counts keys and values (2 per item) */
        } seq;
        struct {
            int g;
            rwkv_dtype dtype;
        } glob;
        pk_storage *st;
        pk_tensor *t;
    } u;
};

typedef struct pk_chunk {
    struct pk_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} pk_chunk;

/* The machine: input cursor, arena, stack with MARK floors, memo. */
typedef struct pk_vm {
    const char *label;
    const unsigned char *b;
    size_t len, pos, op_at;
    rwkv_error *err;
    pk_chunk *chunks;
    size_t arena_total, arena_budget;
    pk_val **stack;
    size_t sp, scap;
    size_t marks[RWKV_PICKLE_MAX_MARKS];
    int nmarks;
    pk_val **memo;
    size_t memo_cap, memo_count;
    pk_val none, yes, no; /* shared singletons */
} pk_vm;

/* Starts a machine over buf[0..len); messages are "label: pickle byte N: ...". */
void rwkv_pk_init(pk_vm *m, const char *label, const void *buf, size_t len, rwkv_error *err);
/* Frees the arena, stack and memo (every value dies with them). */
void rwkv_pk_free(pk_vm *m);

int rwkv_pk_fail(pk_vm *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Arena allocation (16-byte aligned); NULL with the error set when the cap
 * is reached. */
void *rwkv_pk_alloc(pk_vm *m, size_t n);
pk_val *rwkv_pk_new(pk_vm *m, int type);
pk_val *rwkv_pk_new_str(pk_vm *m, const unsigned char *p, size_t n);
pk_val *rwkv_pk_new_int(pk_vm *m, int64_t i);
/* Appends n items to a tuple/list/dict value (dicts: key, value, ...). */
int rwkv_pk_append(pk_vm *m, pk_val *s, pk_val *const *items, size_t n);
int rwkv_pk_str_is(const pk_val *v, const char *s);

/* Stack.  push(NULL) returns -1 (the allocation failure already set the
 * error), so `return rwkv_pk_push(m, rwkv_pk_new(...))` is safe.  pop/top
 * never go below the last MARK (an underflow, as in Python). */
size_t rwkv_pk_floor(const pk_vm *m);
int rwkv_pk_push(pk_vm *m, pk_val *v);
pk_val *rwkv_pk_pop(pk_vm *m, const char *op);
pk_val *rwkv_pk_top(pk_vm *m, const char *op);
/* Pops everything above the last MARK; *items stays readable until the next
 * push. */
int rwkv_pk_pop_mark(pk_vm *m, const char *op, pk_val ***items, size_t *n);

/* Input: fails unless n more bytes are there.  rd_le reads n <= 8 bytes. */
int rwkv_pk_need(pk_vm *m, size_t n, const char *op);
uint64_t rwkv_pk_rd_le(const unsigned char *p, int n);

/* Memo: indices below the pickle length; get of an unset slot fails. */
int rwkv_pk_memo_put(pk_vm *m, uint64_t idx, pk_val *v);
int rwkv_pk_memo_get(pk_vm *m, uint64_t idx);

#endif
