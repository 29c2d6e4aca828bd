/* ckpt_store.h — the state directory: one checkpoint file per document,
 * two generations, durable writes, fallback on damage, listing.
 *
 * Layout of the directory (default ./var/rwkvd, systemd StateDirectory):
 *   lock                      flock()ed while a daemon uses the directory
 *   d-<hex of doc>.ckpt       newest generation, doc ids of <= 64 bytes
 *   h-<sha256 of doc>.ckpt    newest generation, longer doc ids
 *   <name>.prev               the generation before
 *   <name>.tmp.<pid>.<n>      a write in progress (crash debris: removed at open)
 * Doc ids are arbitrary bytes, so they never reach the file system as they
 * are: hex or a hash gives names of [0-9a-f] only, at most 2 + 128 + 5 + 5
 * characters — no traversal, no length problem.  The doc id is stored in the
 * file's header and compared on load, so a renamed file cannot pose as
 * another document.
 *
 * Saving writes the new file beside the old, rotates the old to .prev and
 * renames the new into place (atomic_file.h).  Loading tries the newest
 * generation and falls back to .prev when the newest is damaged, saying why.
 *
 * Thread safety: a store may be used from several threads for DIFFERENT
 * documents at once; calls for the same document must be serialised by the
 * caller.  open/close are not concurrent with anything.
 */
#ifndef RWKVD_CKPT_STORE_H
#define RWKVD_CKPT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "daemon/checkpoint.h"

#define RWKVD_CKPT_NAME_MAX 160 /* including ".prev" and the NUL */
#define RWKVD_CKPT_HEX_MAX 64   /* doc ids up to this length are hex-named */

typedef struct rwkvd_ckpt_store rwkvd_ckpt_store;

/* Creates the directory (and parents, mode 0700) when missing, takes the
 * lock (a second daemon on the same directory is refused, naming the pid
 * holding it), removes temp-file debris, and checks a file can be created.
 * Returns 0 with *out, or -1 with err naming the directory and the reason. */
int rwkvd_ckpt_store_open(const char *dir, rwkvd_ckpt_store **out, rwkv_error *err);
/* The same for a directory shared by the workers of a cluster (PROTOCOL.md
 * §12.8): no lock, and temp files are left alone (they may be another
 * worker's write in progress). */
int rwkvd_ckpt_store_open_shared(const char *dir, rwkvd_ckpt_store **out, rwkv_error *err);

/* Removes the temp files (crash debris) of the documents for which mine()
 * is true, in a shared directory: a worker that takes a partition over
 * clears what a crashed owner left of the partition's writes.  Only
 * hex-named documents (ids of <= 64 bytes) can be recognised from a file
 * name; hashed names are left alone.  Returns the number removed. */
size_t rwkvd_ckpt_store_sweep_tmp(rwkvd_ckpt_store *st,
                                  bool (*mine)(void *ctx, const uint8_t *doc, size_t len),
                                  void *ctx);
void rwkvd_ckpt_store_close(rwkvd_ckpt_store *st); /* accepts NULL; releases the lock */
const char *rwkvd_ckpt_store_dir(const rwkvd_ckpt_store *st);

/* The file name of a document's newest generation (NUL-terminated). */
void rwkvd_ckpt_file_name(const uint8_t *doc, size_t doc_len, char out[RWKVD_CKPT_NAME_MAX]);

/* Encodes ck at zstd level and replaces the document's file durably, the
 * old one becoming .prev.  Returns 0, or -1 with err (nothing changed on
 * disk except, at worst, the rotation of the old file to .prev). */
int rwkvd_ckpt_store_save(rwkvd_ckpt_store *st, const rwkvd_ckpt *ck, int level, rwkv_error *err);

typedef struct rwkvd_ckpt_load_result {
    rwkvd_ckpt_status status;  /* OK, NOT_FOUND, or why nothing could be used */
    bool from_prev;            /* OK, but from the previous generation */
    rwkv_error newest_error;   /* why the newest was refused (when from_prev) */
} rwkvd_ckpt_load_result;

/* Loads a document's newest usable generation, fully verified against
 * expect (see rwkvd_ckpt_decode).  Returns 0 with *out (call
 * rwkvd_ckpt_release) and res->status OK; or -1 with res->status NOT_FOUND
 * (neither generation exists: a new document) or the reason the document
 * cannot be continued, and err naming both files and their problems.
 * `resume` must use this (not the header-only listing) so that it reports
 * the generation that will actually be continued.  The previous generation
 * stands in only for a newest that is damaged or unreadable: an intact
 * newest of another model or precision is refused (OTHER_MODEL) as it is. */
int rwkvd_ckpt_store_load(rwkvd_ckpt_store *st, const uint8_t *doc, size_t doc_len,
                          const rwkvd_model_id *expect, uint64_t max_raw, rwkvd_ckpt *out,
                          rwkvd_ckpt_load_result *res, rwkv_error *err);

/* Removes both generations (drop).  *existed tells whether any file was
 * there.  Returns 0, or -1 with err. */
int rwkvd_ckpt_store_remove(rwkvd_ckpt_store *st, const uint8_t *doc, size_t doc_len,
                            bool *existed, rwkv_error *err);

/* Calls fn once per document on disk with its header (newest readable
 * generation; from_prev when only .prev was readable).  fn returns 0 to go
 * on, anything else to stop.  Unreadable files are counted in *n_bad (may be
 * NULL), never fatal.  Returns 0, or -1 with err when the directory cannot
 * be read.  Costs one small read per file; no decompression. */
typedef int (*rwkvd_ckpt_list_fn)(void *ctx, const rwkvd_ckpt_info *info, bool from_prev);
int rwkvd_ckpt_store_list(rwkvd_ckpt_store *st, rwkvd_ckpt_list_fn fn, void *ctx, size_t *n_bad,
                          rwkv_error *err);

#endif
