/* reload.h — rebuilds the set of written keys from what an earlier sink
 * wrote (--append), so that a restarted sink still writes each output once.
 *
 * Only the start and the end of each record are read: render.h puts "type",
 * "doc" and "block" first and "msg_hash" last, so a key costs a few dozen
 * bytes of parsing however long the vectors in the line are (a JSON parser
 * would read every number).  The parser accepts exactly what render.c
 * writes; anything else is an error naming the file and line, because
 * appending to a file that is not ours would mix two formats.
 *
 * A JSONL file whose last line has no newline was cut short by a crash:
 * that partial line is removed (the file is truncated after the last
 * newline) and its output will simply be written again when it comes.
 * Not thread safe.
 */
#ifndef RWKVD_SINK_RELOAD_H
#define RWKVD_SINK_RELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clients/rwkvd-sink/keyset.h"
#include "core/error.h"
#include "core/msg_decode.h"

/* The key of one record. */
typedef struct record_key {
    bool keyed;                  /* a block or final record */
    uint8_t doc[RWKVD_DOC_MAX];
    size_t doc_len;
    uint64_t inc;                /* "inc" after "doc"; 0 when absent */
    uint64_t block;              /* KEYSET_FINAL for final */
    bool has_hash;
    uint64_t msg_hash;
} record_key;

/* Parses the key of one record line (without its newline).  0, or -1 with
 * err saying where the line differs from what render.c writes. */
int record_parse(const char *line, size_t len, record_key *k, rwkv_error *err);

/* Adds the keys of every block/final record of the JSONL file at path to ks
 * and counts the final records in *finals.  A missing file is empty.
 * *truncated = bytes of a partial last line that were removed.  0, or -1
 * with err ("path:line: ..."). */
int reload_jsonl(const char *path, keyset *ks, uint64_t *finals, uint64_t *truncated,
                 rwkv_error *err);

/* The same for a raw directory: every DIR/<doc>/<stem>.json. */
int reload_raw(const char *dir, keyset *ks, uint64_t *finals, rwkv_error *err);

#endif
