/* msg_internal.h — helpers shared by the ingest and control decoders
 * (msg_ingest.c, msg_control.c); not part of the daemon's public API.
 *
 * A decoder keeps one rwkvd_dctx: the raw message (for byte offsets), its
 * label for messages, and where the reason and error line go.  Values come
 * from msgpack-c's object tree; offsets come from walking the raw bytes in
 * step with the tree (mp_scan.h cursor helpers), so every error can name
 * the exact byte.
 */
#ifndef RWKVD_MSG_INTERNAL_H
#define RWKVD_MSG_INTERNAL_H

#include <msgpack.h>
#include <stdbool.h>

#include "core/mp_scan.h"
#include "core/msg_decode.h"

typedef struct rwkvd_dctx {
    const uint8_t *buf;
    size_t len;
    const char *label;   /* "ingest message", "control request" */
    rwkvd_reason *reason;
    rwkv_error *err;
} rwkvd_dctx;

/* One entry of a map, found by name. */
typedef struct rwkvd_field {
    const msgpack_object *val; /* NULL when the key is absent */
    size_t key_off, val_off;   /* raw offsets of the key and the value */
} rwkvd_field;

/* Sets the reason and "label: offset N: <fmt>"; returns -1. */
int rwkvd_dfail(const rwkvd_dctx *c, rwkvd_reason r, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Size check, pre-scan with lim, then msgpack_unpack_next into *u (which the
 * caller must msgpack_unpacked_destroy in every case).  The top-level object
 * must be a map.  Returns 0 or -1 (reason/err set). */
int rwkvd_dunpack(const rwkvd_dctx *c, size_t max_bytes, const rwkvd_mp_limits *lim,
                  msgpack_unpacked *u);

/* Matches the entries of the map m (raw bytes at off) against names[0..n):
 * found[i] gets the entry named names[i].  Keys must be str of 1..RWKVD_KEY_MAX
 * bytes and unique (RWKVD_R_BAD_KEY); a name not in the list is
 * RWKVD_R_UNKNOWN_FIELD.  `where` names the map in messages ("" for the top
 * level, "opts"). */
int rwkvd_dfields(const rwkvd_dctx *c, const msgpack_object *m, size_t off,
                  const char *const *names, size_t n, rwkvd_field *found, const char *where);

/* A doc id: str or bin of 1..RWKVD_DOC_MAX bytes, copied into doc. */
int rwkvd_ddoc(const rwkvd_dctx *c, const rwkvd_field *f, uint8_t *doc, size_t *doc_len);

/* A non-negative integer no larger than max (RWKVD_R_WRONG_TYPE for other
 * types, `range_reason` when negative or too large). */
int rwkvd_duint(const rwkvd_dctx *c, const rwkvd_field *f, const char *name, uint64_t max,
                rwkvd_reason range_reason, uint64_t *out);

/* True when the object is a str equal to the NUL-terminated s. */
bool rwkvd_dstr_eq(const msgpack_object *o, const char *s);

#endif
