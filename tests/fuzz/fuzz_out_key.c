/* fuzz_out_key.c — libFuzzer target for daemon/cluster/out_key.c, which
 * rwkvd-nats sub runs on every message read from the output stream (bytes
 * from the network): any input is refused or read, never a crash, and a
 * doc read is 1..256 bytes.  Seeds in tests/fuzz/corpus/out_key/. */
#include <stdint.h>
#include <stdlib.h>

#include "daemon/cluster/out_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rwkvd_out_key k;
    if (rwkvd_out_key_read(data, size, &k) == 0 && k.have_doc &&
        (k.doc_len < 1 || k.doc_len > sizeof k.doc))
        abort();
    return 0;
}
