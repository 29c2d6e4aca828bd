/* fuzz_bpe_encode.c — libFuzzer target for BPE encoding with the real 20B
 * tokenizer.json: any bytes, split at fuzzer-chosen points, must stream to
 * exactly the whole-text ids with at most 1024 bytes held, survive
 * checkpoints (pending -> new encoder -> restore) mid-stream, and decode to
 * the NFC of their lossy UTF-8 text (checked against utf8proc's own NFC
 * when the text has no '<', which could start a special token that NFC must
 * not look across, and is shorter than a forced cut).  Restore must accept a
 * tail exactly when a fresh encoder fed those bytes holds all of them.
 *
 * Input: the first 8 bytes seed the split pattern, the rest is the text.
 * The tokenizer is loaded once from $RWKVD_FIXTURES or ../shared/fixtures;
 * a missing fixture aborts (a failure, never a silent pass).
 *
 * Seeds in tests/fuzz/corpus/bpe_encode/: the fixture cases with varied
 * headers, and short hostile runs (letters, marks, spaces, invalid bytes). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/tokenize/bpe_internal.h"
#include "core/rng.h"
#include "core/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rwkv_tokenizer *tok;

static const rwkv_tokenizer *get_tok(void)
{
    if (tok)
        return tok;
    const char *dir = getenv("RWKVD_FIXTURES");
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer-20b/20B_tokenizer.json",
             dir && *dir ? dir : "../shared/fixtures");
    rwkv_error err;
    if (rwkv_tokenizer_load(path, &tok, &err) != 0) {
        fprintf(stderr, "fuzz_bpe_encode: cannot load the 20B tokenizer: %s\n", err.msg);
        abort();
    }
    return tok;
}

static uint64_t next(uint64_t *s)
{
    return rwkv_splitmix64(s);
}

static int same(const rwkv_ids *a, const rwkv_ids *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof *a->v) == 0);
}

/* decode(encode(text)) against utf8proc's NFC of the lossy text */
static void check_nfc(const uint8_t *data, size_t size, const uint8_t *dec, size_t dn)
{
    if (size > 1000 || memchr(data, '<', size))
        return;
    uint8_t *fixed = malloc(3 * size + 1);
    size_t fn = 0;
    for (size_t i = 0; i < size;) {
        uint32_t cp;
        i += bpe_utf8_next(data + i, size - i, &cp);
        fn += bpe_utf8_put(cp, fixed + fn);
    }
    uint8_t *nfc = NULL;
    utf8proc_ssize_t k = utf8proc_map(fixed, (utf8proc_ssize_t)fn, &nfc,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (k < 0 || (size_t)k != dn || memcmp(nfc, dec, dn) != 0)
        abort();
    free(nfc);
    free(fixed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const rwkv_tokenizer *t = get_tok();
    uint64_t seed = 0;
    if (size >= 8) {
        memcpy(&seed, data, 8);
        data += 8;
        size -= 8;
    }
    static const size_t max_piece[8] = {1, 2, 3, 7, 64, 1025, 3000, SIZE_MAX};
    size_t maxp = max_piece[seed & 7];
    if (maxp < 8 && size > 1500) /* tiny pieces rescan up to 1 KB each: keep it quick */
        maxp = 64;
    unsigned ckpt_every = (unsigned)((seed >> 3) & 7); /* 0 = never */

    rwkv_ids whole = {0}, got = {0};
    rwkv_error err;
    if (rwkv_tokenizer_encode(t, data, size, &whole, &err) != 0)
        abort();
    uint8_t *dec;
    size_t dn;
    if (rwkv_tokenizer_decode(t, whole.v, whole.n, &dec, &dn, &err) != 0)
        abort();
    check_nfc(data, size, dec, dn);
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
        if (nh > rwkv_tokenizer_max_pending(t) || nh > 1024 || nh > pos ||
            memcmp(held, data + pos - nh, nh))
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
    size_t tail = size < 1024 ? size : 1024;
    tail = tail > 0 ? 1 + (size_t)(next(&seed) % tail) : 0;
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
