/* out_key.h — what a published output needs from its own bytes: its type,
 * its doc, its incarnation and its block number (PROTOCOL.md §12.4:
 * subject and msg id).
 * The bytes are the daemon's own encoding (§4: v, type, doc first, then
 * block for a block output), read with msgpack-c. */
#ifndef RWKVD_CLUSTER_OUT_KEY_H
#define RWKVD_CLUSTER_OUT_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { RWKVD_OUTK_OTHER = 0, RWKVD_OUTK_BLOCK, RWKVD_OUTK_FINAL, RWKVD_OUTK_ERROR,
               RWKVD_OUTK_ACK, RWKVD_OUTK_SEGMENTS } rwkvd_outk_type;

typedef struct rwkvd_out_key {
    rwkvd_outk_type type;
    bool have_doc;
    uint8_t doc[256];
    size_t doc_len;
    uint64_t block;
    uint64_t inc; /* the document's incarnation (PROTOCOL.md §8.4; 0 when absent) */
} rwkvd_out_key;

/* 0, or -1 when the bytes are not an output map. */
int rwkvd_out_key_read(const void *data, size_t len, rwkvd_out_key *k);

#endif
