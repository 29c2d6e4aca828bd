/* fuzz_tokenize.c — libFuzzer target for World encoding with the real
 * vocabulary: any bytes, split at fuzzer-chosen points, must stream to
 * exactly the whole-text ids, survive checkpoints (pending -> new encoder ->
 * restore) mid-stream, and decode back to themselves.
 *
 * Input: the first 8 bytes seed the split pattern (piece sizes from 1 byte
 * up, and where to checkpoint), the rest is the text.  The vocabulary is
 * loaded once from $RWKVD_FIXTURES or ../shared/fixtures; a missing
 * fixture aborts (a failure, never a silent pass).  Also checks that
 * restore accepts a tail exactly when a fresh encoder fed those bytes would
 * hold all of them.  abort() on any mismatch, so the fuzzer reports it.
 *
 * Seeds in tests/fuzz/corpus/tokenize/: the fixture cases (multilingual,
 * invalid UTF-8, long space runs) with varied headers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rwkv_tokenizer *world;

static const rwkv_tokenizer *get_world(void)
{
    if (world)
        return world;
    const char *dir = getenv("RWKVD_FIXTURES");
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/rwkv_vocab_v20230424.txt",
             dir && *dir ? dir : "../shared/fixtures");
    rwkv_error err;
    if (rwkv_tokenizer_load(path, &world, &err) != 0) {
        fprintf(stderr, "fuzz_tokenize: cannot load the World vocabulary: %s\n", err.msg);
        abort();
    }
    return world;
}

static uint64_t next(uint64_t *s)
{
    return rwkv_splitmix64(s);
}

static int same(const rwkv_ids *a, const rwkv_ids *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof *a->v) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const rwkv_tokenizer *t = get_world();
    uint64_t seed = 0;
    if (size >= 8) {
        memcpy(&seed, data, 8);
        data += 8;
        size -= 8;
    }
    static const size_t max_piece[8] = {1, 2, 3, 7, 64, 130, 1000, SIZE_MAX};
    size_t maxp = max_piece[seed & 7];
    unsigned ckpt_every = (unsigned)((seed >> 3) & 7); /* 0 = never */

    rwkv_ids whole = {0}, got = {0};
    rwkv_error err;
    if (rwkv_tokenizer_encode(t, data, size, &whole, &err) != 0)
        abort();
    uint8_t *dec;
    size_t dn;
    if (rwkv_tokenizer_decode(t, whole.v, whole.n, &dec, &dn, &err) != 0 || dn != size ||
        (size && memcmp(dec, data, size) != 0))
        abort();
    free(dec);

    rwkv_encoder *e = rwkv_encoder_new(t);
    if (!e)
        abort();
    size_t pos = 0;
    unsigned feeds = 0;
    while (pos < size) {
        size_t k = maxp == SIZE_MAX ? size - pos : 1 + (size_t)(next(&seed) % maxp);
        if (k > size - pos)
            k = size - pos;
        if (rwkv_encoder_feed(e, data + pos, k, &got, &err) != 0)
            abort();
        pos += k;
        const uint8_t *held;
        size_t nh = rwkv_encoder_pending(e, &held);
        if (nh > rwkv_tokenizer_max_pending(t) || nh > pos || memcmp(held, data + pos - nh, nh))
            abort();
        if (ckpt_every && ++feeds % ckpt_every == 0) {
            uint8_t saved[1024];
            memcpy(saved, held, nh);
            rwkv_encoder_free(e);
            e = rwkv_encoder_new(t);
            if (!e || rwkv_encoder_restore(e, saved, nh, &err) != 0)
                abort();
        }
    }
    if (rwkv_encoder_finish(e, &got, &err) != 0 || !same(&got, &whole))
        abort();

    /* restore accepts exactly what feeding would hold */
    size_t tail = size < 40 ? size : 40;
    if (tail > 0) {
        const uint8_t *s = data + size - tail;
        rwkv_ids tmp = {0};
        if (rwkv_encoder_feed(e, s, tail, &tmp, &err) != 0)
            abort();
        const uint8_t *held;
        int reachable = rwkv_encoder_pending(e, &held) == tail && tmp.n == 0;
        if (rwkv_encoder_finish(e, &tmp, &err) != 0)
            abort();
        int r = rwkv_encoder_restore(e, s, tail, &err);
        if ((r == 0) != reachable)
            abort();
        rwkv_ids_free(&tmp);
    }
    rwkv_encoder_free(e);
    rwkv_ids_free(&whole);
    rwkv_ids_free(&got);
    return 0;
}
