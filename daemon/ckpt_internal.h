/* ckpt_internal.h — what the checkpoint encoder (ckpt_encode.c) and decoder
 * (ckpt_decode.c) share with checkpoint.c: the flag bits, little-endian
 * helpers, the payload size formula and THE consistency rules, kept in one
 * place so the writer can never produce a file the reader refuses.
 * Not part of the daemon's public API.
 */
#ifndef RWKVD_CKPT_INTERNAL_H
#define RWKVD_CKPT_INTERNAL_H

#include "core/le.h"
#include "daemon/checkpoint.h"

enum {
    RWKVD_CKPT_FL_FINISHED = 1,
    RWKVD_CKPT_FL_STATE = 2,
    RWKVD_CKPT_FL_LAST_EMB = 4,
    RWKVD_CKPT_FL_CARRY = 8, /* header offset 132 holds the carried surprisal */
    RWKVD_CKPT_FL_EOF = 16,  /* eof was received; the final message is still due */
    RWKVD_CKPT_FL_SEGMENTS = 32, /* the payload ends with the segmenter state (segments.h) */
    /* bits 6-7: the precision the state was computed in (0 fp32, 1 bf16,
     * 2 int8, 3 mixed, only with a completed block): written 0 by fp32
     * engines, so older files read as fp32 */
    RWKVD_CKPT_FL_PRECISION_SHIFT = 6,
    RWKVD_CKPT_FL_PRECISION = 3 << 6,
    RWKVD_CKPT_FL_ALL = 255,
};

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RWKVD_HOST_LE 1
#else
#define RWKVD_HOST_LE 0
#endif

/* The format version ck is written as (checkpoint.h), and its header size. */
uint32_t rwkvd_ckpt_version(const rwkvd_ckpt *ck);
size_t rwkvd_ckpt_header_size(const rwkvd_ckpt *ck);
/* Whether the document keeps a pooling sum (mean, or eos for EmbeddingRWKV). */
bool rwkvd_ckpt_has_sum(const rwkvd_doc_opts *o);
/* Flag bits implied by which arrays ck points at (and its precision). */
uint32_t rwkvd_ckpt_flags(const rwkvd_ckpt *ck);

/* Payload bytes implied by the scalars and flags; only meaningful once
 * rwkvd_ckpt_check_scalars passed (every factor is capped; at most ~2^35). */
uint64_t rwkvd_ckpt_raw_size(const rwkvd_ckpt *ck, uint32_t flags);

/* The rules on scalars and flags; -1 with `why` = "what: problem". */
int rwkvd_ckpt_check_scalars(const rwkvd_ckpt *ck, uint32_t flags, rwkv_error *why);

/* The rules on array contents (finite floats, ids below the vocabulary). */
int rwkvd_ckpt_check_arrays(const rwkvd_ckpt *ck, rwkv_error *why);

#endif
