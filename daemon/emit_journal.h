/* emit_journal.h — the last outputs handed to ZeroMQ, kept on disk so a
 * killed daemon can send them again.
 *
 * Why: ZeroMQ sends asynchronously.  An output accepted by zmq_send may still
 * sit in the daemon's own queues when the process is killed, while the
 * document's checkpoint already covers it: without this journal that output
 * would be lost for good.  Every block and final output is appended here
 * before it is queued; at start-up the records a previous run left are sent
 * again (byte-identical duplicates are allowed by the at-least-once contract
 * and removed by consumers, keyed (doc, block)).
 *
 * How much is kept: at least `keep` most recent records, which the caller
 * sizes above the number of messages that can be inside the process at
 * once (the emit high-water mark plus one engine batch).  Two files
 * alternate (emit.journal.0/.1); when the current one holds `keep` records
 * the other is emptied and becomes current.  Records are
 * [u32 length][u32 crc32][u64 serial][bytes], so a record torn by a crash is
 * recognised and ignored.
 *
 * Writes go to the page cache only (they survive kill -9); sync() makes
 * them durable and is called before checkpoints are written, so after a
 * power loss no checkpoint covers an output the journal lost.
 * Not thread safe: the main loop owns it.
 */
#ifndef RWKVD_EMIT_JOURNAL_H
#define RWKVD_EMIT_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define RWKVD_JOURNAL_RECORD_MAX (1u << 30)

typedef struct rwkvd_journal rwkvd_journal;

/* Opens (creating) the two files in dirfd.  Returns 0 with *out, or -1 with
 * err naming the file. */
int rwkvd_journal_open(int dirfd, const char *dir_label, size_t keep, rwkvd_journal **out,
                       rwkv_error *err);
void rwkvd_journal_close(rwkvd_journal *j); /* accepts NULL */

/* Calls fn for every intact record left by earlier runs, oldest first
 * (fn returns 0 to go on).  Torn or damaged records are skipped and
 * counted in *n_bad.  Call once, right after open. */
typedef int (*rwkvd_journal_fn)(void *ctx, const void *msg, size_t len);
int rwkvd_journal_replay(rwkvd_journal *j, rwkvd_journal_fn fn, void *ctx, size_t *n_bad,
                         rwkv_error *err);

/* Appends one record. -1 with err on an I/O error. */
int rwkvd_journal_append(rwkvd_journal *j, const void *msg, size_t len, rwkv_error *err);

/* fsync of the current file (cheap when nothing was appended since). */
int rwkvd_journal_sync(rwkvd_journal *j, rwkv_error *err);

#endif
