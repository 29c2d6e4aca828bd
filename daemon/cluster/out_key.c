/* out_key.c — see out_key.h. */
#include "daemon/cluster/out_key.h"

#include <msgpack.h>
#include <string.h>

static bool key_is(const msgpack_object *o, const char *name)
{
    size_t n = strlen(name);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, name, n) == 0;
}

int rwkvd_out_key_read(const void *data, size_t len, rwkvd_out_key *k)
{
    memset(k, 0, sizeof *k);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = -1;
    if (msgpack_unpack_next(&u, data, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP)
        goto done;
    const msgpack_object_map *m = &u.data.via.map;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *key = &m->ptr[i].key, *v = &m->ptr[i].val;
        if (key_is(key, "type") && v->type == MSGPACK_OBJECT_STR) {
            static const char *names[] = {"", "block", "final", "error", "ack"};
            for (int t = 1; t < 5; t++)
                if (key_is(v, names[t]))
                    k->type = (rwkvd_outk_type)t;
        } else if (key_is(key, "doc") &&
                   (v->type == MSGPACK_OBJECT_STR || v->type == MSGPACK_OBJECT_BIN)) {
            /* str and bin share the layout of their size and pointer */
            size_t n = v->via.bin.size;
            if (n >= 1 && n <= sizeof k->doc) {
                memcpy(k->doc, v->via.bin.ptr, n);
                k->doc_len = n;
                k->have_doc = true;
            }
        } else if (key_is(key, "block") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            k->block = v->via.u64;
        }
    }
    rc = 0;
done:
    msgpack_unpacked_destroy(&u);
    return rc;
}
