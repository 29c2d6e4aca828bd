/* fuzz_incarnation.c — libFuzzer target for what a starting daemon reads
 * back about incarnations (daemon/wire/incarnation.h, journal_filter.h):
 * the .inc file parser and the output-identity reader the emit-journal
 * replay uses on every record.  Any bytes: no crash, no read outside the
 * input; a parsed .inc number prints back to exactly the input; an
 * identity's doc lies inside the input.
 *
 * Seeds in tests/fuzz/corpus/incarnation/: .inc files (0, 1, 2^53-1, one
 * above, a leading zero, no newline) and output records with and without
 * inc, with a foreign model, cut short. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/wire/incarnation.h"
#include "daemon/wire/journal_filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t v;
    rwkv_error err;
    if (rwkvd_incarnation_parse("fuzz.inc", data, size, &v, &err) == 0) {
        char text[32];
        int n = snprintf(text, sizeof text, "%llu\n", (unsigned long long)v);
        if ((size_t)n != size || memcmp(text, data, size) != 0)
            abort();
    } else if (err.msg[0] == '\0') {
        abort();
    }
    rwkvd_output_id id;
    if (rwkvd_output_identity(data, size, &id) == 0 && id.have_doc &&
        (id.doc < data || id.doc + id.doc_len > data + size || id.doc_len == 0))
        abort();
    return 0;
}
