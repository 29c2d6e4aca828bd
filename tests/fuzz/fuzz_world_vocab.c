/* fuzz_world_vocab.c — libFuzzer target for the World vocabulary parser and
 * the trie built from it (rwkv_tokenizer_parse).
 *
 * Two modes, by the first byte:
 *   'B'  the rest is appended to a fixed valid prefix (ids 1..256 = the
 *        single bytes), so mutations explore valid vocabularies: trie
 *        building and longest-match encoding on strange token sets;
 *   else the input is the whole file: every parser error path.
 * Invariants checked on every vocabulary that loads (abort() on breach):
 * a failure sets a message and leaves *out NULL; each token's bytes encode
 * to exactly that token; the input itself, encoded whole and streamed in
 * pieces, gives equal ids and decodes back to itself.
 *
 * Seeds in tests/fuzz/corpus/world_vocab/: small hand-made vocabularies in
 * both modes, and a few broken ones. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char prefix[256 * 16];
static size_t prefix_len;

static void check_tokenizer(const rwkv_tokenizer *t, const uint8_t *text, size_t n)
{
    rwkv_ids ids = {0}, streamed = {0};
    rwkv_error err;
    for (uint32_t id = 0; id < rwkv_tokenizer_vocab_size(t); id++) {
        const uint8_t *b;
        size_t len;
        if (rwkv_tokenizer_token_bytes(t, id, &b, &len) != 0) {
            if (id != 0)
                abort(); /* World ids 1..N all have bytes */
            continue;
        }
        ids.n = 0;
        if (rwkv_tokenizer_encode(t, b, len, &ids, &err) != 0 || ids.n != 1 || ids.v[0] != id)
            abort();
    }
    ids.n = 0;
    if (rwkv_tokenizer_encode(t, text, n, &ids, &err) != 0)
        abort();
    uint8_t *dec;
    size_t dn;
    if (rwkv_tokenizer_decode(t, ids.v, ids.n, &dec, &dn, &err) != 0 || dn != n ||
        (n && memcmp(dec, text, n) != 0))
        abort();
    free(dec);
    rwkv_encoder *e = rwkv_encoder_new(t);
    if (!e)
        abort();
    size_t piece = 1 + n % 13;
    for (size_t p = 0; p < n; p += piece)
        if (rwkv_encoder_feed(e, text + p, n - p < piece ? n - p : piece, &streamed, &err) != 0)
            abort();
    if (rwkv_encoder_finish(e, &streamed, &err) != 0 || streamed.n != ids.n ||
        (ids.n && memcmp(streamed.v, ids.v, ids.n * sizeof *ids.v) != 0))
        abort();
    rwkv_encoder_free(e);
    rwkv_ids_free(&ids);
    rwkv_ids_free(&streamed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *text = data;
    size_t n = size;
    uint8_t *owned = NULL;
    if (size > 0 && data[0] == 'B') {
        if (!prefix_len)
            for (int b = 0; b < 256; b++)
                prefix_len += (size_t)snprintf(prefix + prefix_len, sizeof prefix - prefix_len,
                                               "%d b'\\x%02x' 1\n", b + 1, b);
        owned = malloc(prefix_len + size - 1 + 1);
        if (!owned)
            return 0;
        memcpy(owned, prefix, prefix_len);
        memcpy(owned + prefix_len, data + 1, size - 1);
        text = owned;
        n = prefix_len + size - 1;
    }
    rwkv_tokenizer *t = (rwkv_tokenizer *)&n; /* must be overwritten */
    rwkv_error err;
    err.msg[0] = 0;
    if (rwkv_tokenizer_parse("fuzz.txt", text, n, &t, &err) != 0) {
        if (t != NULL || err.msg[0] == 0 || strlen(err.msg) >= sizeof err.msg)
            abort();
    } else {
        if (t == NULL || rwkv_tokenizer_get_kind(t) != RWKV_TOKENIZER_WORLD)
            abort();
        check_tokenizer(t, data, size);
        rwkv_tokenizer_free(t);
    }
    free(owned);
    return 0;
}
