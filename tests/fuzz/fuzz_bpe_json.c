/* fuzz_bpe_json.c — libFuzzer target for the tokenizer.json reader
 * (rwkv_tokenizer_parse on any bytes that start like a JSON object).
 *
 * Any input must be refused with a message naming the input, or give a
 * tokenizer that then works: the kind is BPE, encoding a fixed sample and the
 * input itself gives ids that all decode, and streaming either text in small
 * pieces gives the whole-text ids.  abort() on any violation.
 *
 * Seeds in tests/fuzz/corpus/bpe_json/: tiny hand-made tokenizer.json files
 * (the 256 byte symbols, a few to a few hundred merges taken from the 20B
 * file, added tokens, the variants the reader accepts) and broken ones. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char sample[] =
    "Hello world, it's 3.14 -- don't STOP!\n\n\tdef f(x):\n        return x  <|endoftext|>"
    "caf\xC3\xA9 e\xCC\x81 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80\xE2\x80\x99s \xFF\xC3"
    "                                 end<|padding|";

static int same(const rwkv_ids *a, const rwkv_ids *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof *a->v) == 0);
}

static void check_text(const rwkv_tokenizer *t, const uint8_t *s, size_t n, size_t piece)
{
    rwkv_ids whole = {0}, got = {0};
    rwkv_error err;
    if (rwkv_tokenizer_encode(t, s, n, &whole, &err) != 0)
        abort();
    for (size_t i = 0; i < whole.n; i++)
        if (whole.v[i] >= rwkv_tokenizer_vocab_size(t))
            abort();
    uint8_t *dec;
    size_t dn;
    if (rwkv_tokenizer_decode(t, whole.v, whole.n, &dec, &dn, &err) != 0)
        abort();
    free(dec);
    rwkv_encoder *e = rwkv_encoder_new(t);
    if (!e)
        abort();
    for (size_t p = 0; p < n; p += piece)
        if (rwkv_encoder_feed(e, s + p, n - p < piece ? n - p : piece, &got, &err) != 0)
            abort();
    if (rwkv_encoder_finish(e, &got, &err) != 0 || !same(&got, &whole))
        abort();
    rwkv_encoder_free(e);
    rwkv_ids_free(&whole);
    rwkv_ids_free(&got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rwkv_tokenizer *t = NULL;
    rwkv_error err;
    err.msg[0] = 0;
    if (rwkv_tokenizer_parse("fuzz.json", data, size, &t, &err) != 0) {
        if (t != NULL || strncmp(err.msg, "fuzz.json: ", 11) != 0)
            abort();
        return 0;
    }
    if (rwkv_tokenizer_get_kind(t) != RWKV_TOKENIZER_BPE) {
        rwkv_tokenizer_free(t); /* a World vocabulary: its own fuzzer covers it */
        return 0;
    }
    check_text(t, (const uint8_t *)sample, sizeof sample - 1, 7);
    check_text(t, data, size < 4096 ? size : 4096, 3);
    rwkv_tokenizer_free(t);
    return 0;
}
