/* partition.h — names of the NATS mapping (PROTOCOL.md §12): doc ids as
 * hex subject tokens, the partition function, subjects, message ids and
 * worker ids.  Pure functions, shared by the daemon and the clients.
 *
 * The partition function is FNV-1a 32 of the hex token modulo P: exactly
 * what nats-server's subject mapping {{partition(P,1)}} computes on the
 * token, so a producer may leave the hashing to the server. */
#ifndef RWKVD_CLUSTER_PARTITION_H
#define RWKVD_CLUSTER_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RWKVD_NATS_IN_STREAM "RWKVD_IN"
#define RWKVD_NATS_OUT_STREAM "RWKVD_OUT"
#define RWKVD_NATS_IN_SUBJECTS "rwkvd.in.*.*"
#define RWKVD_NATS_OUT_SUBJECTS "rwkvd.out.*"
#define RWKVD_NATS_OUT_NONE "rwkvd.out.none"
#define RWKVD_NATS_CLUSTER_BUCKET "rwkvd_cluster"
#define RWKVD_NATS_LEASE_BUCKET "rwkvd_leases"
#define RWKVD_NATS_DUP_WINDOW_NS (INT64_C(120) * 1000000000)
#define RWKVD_WORKER_ID_MAX 64

/* hex of a doc id of at most 256 bytes: 512 digits + NUL */
#define RWKVD_DOC_HEX_MAX 513
/* "rwkvd.in.<4 digits>.<512 hex>" and message ids fit in this */
#define RWKVD_SUBJECT_MAX 560

uint32_t rwkvd_fnv1a32(const void *data, size_t len);

/* Lower-case hex of doc into out (NUL-terminated); returns its length. */
size_t rwkvd_doc_hex(const uint8_t *doc, size_t len, char out[RWKVD_DOC_HEX_MAX]);

/* partition(doc) = fnv1a32(hex(doc)) mod p; p >= 1. */
uint32_t rwkvd_doc_partition(const uint8_t *doc, size_t len, uint32_t p);

/* "rwkvd.in.<part>.<hex>" */
void rwkvd_in_subject(const uint8_t *doc, size_t len, uint32_t p, char out[RWKVD_SUBJECT_MAX]);

/* Parses "rwkvd.in.<n>.<hex>": *part = n.  False for any other shape. */
bool rwkvd_in_subject_partition(const char *subject, uint32_t *part);

/* 1..64 characters of [A-Za-z0-9_-]. */
bool rwkvd_worker_id_valid(const char *id);

/* "<hostname>-<pid>", other characters replaced by '_', cut to 64. */
void rwkvd_worker_id_default(char out[RWKVD_WORKER_ID_MAX + 1]);

#endif
