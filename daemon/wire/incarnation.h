/* incarnation.h — document incarnations (PROTOCOL.md §8.4).
 *
 * A document id can be dropped and sent again; the new document's outputs
 * reuse the block numbers of the old one.  The incarnation tells them apart:
 * 0 for a document id never dropped, and one more each time a document that
 * existed under the id is dropped.  Outputs carry it (`inc`, written only
 * when above 0), and consumers de-duplicate by (doc, inc, block).
 *
 * Where it lives: checkpoints are deleted by a drop, so the number is kept
 * in its own small file beside them, `<checkpoint name without .ckpt>.inc`
 * (d-<hex>.inc or h-<sha256>.inc, ckpt_store.h), holding the decimal number
 * and a newline.  A drop writes the new number durably BEFORE it removes the
 * checkpoints: a crash in between leaves the old state under a newer number,
 * which the retried drop (the operator had no reply) retires again, and never
 * a new document under the old number.
 *
 * Not thread safe for one document (the main loop calls it).
 */
#ifndef RWKVD_INCARNATION_H
#define RWKVD_INCARNATION_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define RWKVD_INC_FILE_MAX 32 /* bytes of an .inc file: 20 digits and a newline fit */

/* Parses the bytes of an .inc file: 1..20 decimal digits (no sign, no
 * leading zero unless "0"), a newline, nothing else, value <= 2^53-1.
 * Returns 0 or -1 with err = "<label>: offset N: why". */
int rwkvd_incarnation_parse(const char *label, const uint8_t *buf, size_t len, uint64_t *out,
                            rwkv_error *err);

/* The current incarnation of doc in the state directory dirfd (0 when it
 * has no file).  Returns 0, or -1 with err naming the file (unreadable or
 * damaged: the caller refuses the document rather than guess a number). */
int rwkvd_incarnation_get(int dirfd, const char *dir_label, const uint8_t *doc, size_t doc_len,
                          uint64_t *out, rwkv_error *err);

/* Writes current + 1 durably (atomic_file.h) and returns it in *next. */
int rwkvd_incarnation_bump(int dirfd, const char *dir_label, const uint8_t *doc, size_t doc_len,
                           uint64_t *next, rwkv_error *err);

#endif
