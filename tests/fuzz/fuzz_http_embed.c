/* fuzz_http_embed.c — libFuzzer target for the POST /v1/embeddings body
 * parser (daemon/http_embed_request.h).  Whatever is accepted is checked
 * against the contract: 1..2048 inputs, each within max_tokens, ending with
 * EOS, every id below the vocabulary, the token count adding up; a refusal
 * has a status, a type and a printable one-line message.
 *
 * Seeds in tests/fuzz/corpus/http_embed/: OpenAI-shaped requests of every
 * input form and a few broken ones.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/http_embed_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rwkv_tokenizer *tok;
    if (!tok && !(tok = rwkv_tokenizer_bytes()))
        abort();
    rwkvd_embed_limits lim = {.tok = tok, .n_embd = 8, .vocab = 65536, .embed_tasks = 5u,
                              .max_tokens = 64};
    rwkvd_embed_request r;
    rwkvd_embed_refusal why;
    if (rwkvd_embed_request_parse((const char *)data, size, &lim, &r, &why) == 0) {
        uint64_t total = 0;
        if (r.count < 1 || r.count > RWKVD_EMBED_MAX_INPUTS || r.task == RWKV_TASK_SIMILARITY)
            abort();
        for (size_t i = 0; i < r.count; i++) {
            if (r.n[i] < 1 || r.n[i] > lim.max_tokens || r.ids[i][r.n[i] - 1] != RWKV_EMBED_EOS)
                abort();
            for (size_t k = 0; k < r.n[i]; k++)
                if (r.ids[i][k] >= (uint32_t)lim.vocab)
                    abort();
            total += r.n[i];
        }
        if (total != r.tokens)
            abort();
        rwkvd_embed_request_free(&r);
    } else {
        if ((why.status != 400 && why.status != 500) || !why.type || !why.message[0])
            abort();
        for (const char *c = why.message; *c; c++)
            if (*c < 0x20 || *c > 0x7e)
                abort();
    }
    return 0;
}
