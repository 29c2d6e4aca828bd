/* raw.h — rwkvd-sink's raw output directory: per document a directory
 * DIR/<doc-hex>/ holding, per output, the vectors as raw little-endian
 * files (<stem>.embedding.f32, ...; stem = block number or "final", prefixed
 * "i<inc>." for a later incarnation of the id, PROTOCOL.md §8.4) and
 * <stem>.json with every other field (render.h's record with the vectors
 * replaced by {"file", "n"}).
 *
 * The .json is written LAST, to a temporary name and renamed into place:
 * its presence is what marks an output as complete, so a sink killed
 * mid-write leaves no half output behind that a restart (--append) would
 * count as written.  Nothing is fsync'ed: the daemon's outputs are
 * at-least-once, not a durable log.
 *
 * Directory names: the doc id in lower-case hex when that fits a file name
 * (ids up to 120 bytes); longer ids use the hex of their first 96 bytes, '~'
 * and 16 hex digits of hash64 of the whole id (the .json files hold the
 * full id).  Not thread safe.
 */
#ifndef RWKVD_SINK_RAW_H
#define RWKVD_SINK_RAW_H

#include <stddef.h>
#include <stdint.h>

#include "clients/rwkvd-sink/render.h"
#include "core/error.h"

#define RAW_NAME_MAX 256

/* Creates dir if it does not exist (its parent must).  0 or -1 with err. */
int raw_prepare(const char *dir, rwkv_error *err);

/* The directory name of a document (see above), NUL-terminated. */
void raw_doc_dirname(const uint8_t *doc, size_t doc_len, char out[RAW_NAME_MAX]);

/* Writes one output: the blobs, then <stem>.json holding json[0..json_len).
 * 0, or -1 with err naming the file. */
int raw_write(const char *dir, const uint8_t *doc, size_t doc_len, const char *stem,
              const render_blob *blobs, size_t n_blobs, const char *json, size_t json_len,
              rwkv_error *err);

#endif
