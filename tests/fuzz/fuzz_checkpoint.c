/* fuzz_checkpoint.c — libFuzzer target for the checkpoint reader
 * (daemon/checkpoint.h).
 *
 * The first input byte picks a mode:
 *   even: the rest is a checkpoint file image, read as it is (header check
 *         and full decode, with and without an expected model);
 *   odd:  the rest is a header image (first 204 + doc_len bytes, 212 +
 *         doc_len for format v2, doc_len taken from offset 116) followed by a
 *         RAW payload; the target seals
 *         the header CRC, compresses the payload into a checksummed zstd
 *         frame and fixes the sizes, so the fuzzer reaches the field and
 *         payload checks behind the checksums instead of dying at them.
 * Whatever decodes must re-encode, and decode again to the same header:
 * the writer accepts everything the reader accepts.
 *
 * Seeds in tests/fuzz/corpus/checkpoint/ were made with rwkvd_ckpt_encode
 * (a few small snapshots: mean/last pooling, finished, pending input), in
 * both modes; five more are such seeds with flag bits 6-7 set (precision
 * bf16, int8, mixed; one mixed without a completed block, which is refused)
 * and the header CRC resealed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "core/crc32.h"
#include "daemon/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void roundtrip(const rwkvd_ckpt *ck)
{
    uint8_t *b;
    size_t n;
    rwkv_error err;
    if (rwkvd_ckpt_encode(ck, 1, &b, &n, &err) != 0)
        abort(); /* the reader accepted what the writer refuses */
    rwkvd_ckpt again;
    if (rwkvd_ckpt_decode("again", b, n, &ck->model, 0, &again, NULL, &err) != 0)
        abort();
    if (again.next_seq != ck->next_seq || again.tokens_done != ck->tokens_done ||
        again.n_pending_tokens != ck->n_pending_tokens || again.doc_len != ck->doc_len ||
        memcmp(again.doc, ck->doc, ck->doc_len) != 0)
        abort();
    rwkvd_ckpt_release(&again);
    free(b);
}

static void read_image(const uint8_t *p, size_t n)
{
    rwkvd_ckpt ck;
    rwkvd_ckpt_status st;
    rwkv_error err;
    rwkvd_ckpt_info info;
    int hdr_ok = rwkvd_ckpt_read_header("fuzz", p, n, NULL, &info, &st, &err) == 0;
    if (rwkvd_ckpt_decode("fuzz", p, n, NULL, 1 << 22, &ck, &st, &err) == 0) {
        if (!hdr_ok || !ck.owned || (!ck.finished && !ck.state))
            abort();
        roundtrip(&ck);
        rwkvd_ckpt_release(&ck);
    } else if (st == RWKVD_CKPT_OK || !err.msg[0] || ck.owned) {
        abort();
    }
    /* against a fixed model: mostly OTHER_MODEL, never a crash */
    rwkvd_model_id m = {.generation = 70, .n_layer = 1, .n_embd = 4, .vocab = 8, .state_floats = 6};
    if (rwkvd_ckpt_decode("fuzz", p, n, &m, 1 << 22, &ck, &st, &err) == 0) {
        if (ck.model.precision != 0) /* the daemon's fp32 takes fp32 only */
            abort();
        rwkvd_ckpt_release(&ck);
    }
    /* ... of any precision (--allow-precision-change): mixed only with a
     * completed block */
    m.precision = RWKVD_CKPT_PRECISION_ANY;
    if (rwkvd_ckpt_decode("fuzz", p, n, &m, 1 << 22, &ck, &st, &err) == 0) {
        if (ck.model.precision > RWKVD_CKPT_PRECISION_MAX ||
            (ck.model.precision == RWKVD_CKPT_PRECISION_MIXED && ck.tokens_done == 0))
            abort();
        rwkvd_ckpt_release(&ck);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!(data[0] & 1)) {
        read_image(data + 1, size - 1);
        return 0;
    }
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    if (n < 120)
        return 0;
    uint32_t doc_len = (uint32_t)p[116] | (uint32_t)p[117] << 8 | (uint32_t)p[118] << 16 |
                       (uint32_t)p[119] << 24;
    if (doc_len > 256)
        doc_len = 256;
    /* versions 2..4 have more header bytes before the doc id */
    uint32_t version = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 |
                       (uint32_t)p[11] << 24;
    size_t hs = version >= RWKVD_CKPT_VERSION && version <= RWKVD_CKPT_VERSION_MAX
                    ? rwkvd_ckpt_header_bytes(version, doc_len)
                    : RWKVD_CKPT_HEADER_FIXED + doc_len;
    if (n < hs)
        return 0;
    size_t raw = n - hs, bound = ZSTD_compressBound(raw);
    uint8_t *f = malloc(hs + bound);
    memcpy(f, p, hs);
    put32(f + 116, doc_len);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    size_t z = ZSTD_compress2(cc, f + hs, bound, p + hs, raw);
    ZSTD_freeCCtx(cc);
    if (ZSTD_isError(z))
        abort();
    for (int i = 0; i < 8; i++)
        f[120 + i] = (uint8_t)((uint64_t)z >> (8 * i));
    put32(f + 128, rwkv_crc32(0, f + hs, z));
    put32(f + hs - 4, rwkv_crc32(0, f, hs - 4));
    read_image(f, hs + z);
    free(f);
    return 0;
}
