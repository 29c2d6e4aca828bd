/* journal_filter.h — which emit-journal records a starting daemon may send
 * again (PROTOCOL.md §8.3-8.4).
 *
 * The journal replays the last outputs of the previous run.  Two kinds must
 * not go out again: outputs of a document incarnation that was dropped since
 * (a consumer de-duplicating by (doc, inc, block) would otherwise take them
 * for the new document's), and outputs of another model (the daemon was
 * restarted on a different --model over the same state directory).  The
 * record is read with the bounded msgpack cursor helpers (mp_scan.h): it
 * comes from disk, so nothing in it is trusted.
 */
#ifndef RWKVD_JOURNAL_FILTER_H
#define RWKVD_JOURNAL_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The identity of one output: doc, inc (0 when absent), model (hex). */
typedef struct rwkvd_output_id {
    bool have_doc, have_model;
    const uint8_t *doc; /* points into the record */
    size_t doc_len;
    uint64_t inc;
    char model_hex[65];
} rwkvd_output_id;

/* Reads the top-level map of an output record.  Returns 0 when it is a map
 * whose doc (str/bin, 1..256 bytes), inc (uint) and model (64-char str)
 * fields, when present, are well formed; -1 otherwise.  Never reads outside
 * msg[0..len). */
int rwkvd_output_identity(const void *msg, size_t len, rwkvd_output_id *out);

/* Whether the record may be replayed: false (with *why set) for another
 * model's output, or for an incarnation below the document's current one
 * in the state directory dirfd.  A record it cannot read is kept (the
 * consumer decodes it as it would any output). */
bool rwkvd_journal_keep(int dirfd, const char *dir_label, const char *model_hex,
                        const void *msg, size_t len, const char **why);

#endif
