/* token_ids.c — the growable id array shared by every tokenizer (rwkv_ids).
 *
 * Kept apart from the tokenizers so callers that only move ids around (the
 * engine, the daemon) do not pull in vocabulary code.  Growth doubles the
 * capacity, with the multiplication checked for overflow.
 */
#include "core/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>

int rwkv_ids_push(rwkv_ids *ids, uint32_t id, rwkv_error *err)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap : 64;
        if (ids->cap) {
            if (cap > SIZE_MAX / 2 / sizeof *ids->v)
                return rwkv_fail(err, "token ids: too many ids (%zu)", ids->n);
            cap *= 2;
        }
        uint32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v)
            return rwkv_fail(err, "token ids: out of memory growing to %zu ids", cap);
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

void rwkv_ids_free(rwkv_ids *ids)
{
    if (!ids)
        return;
    free(ids->v);
    ids->v = NULL;
    ids->n = ids->cap = 0;
}
