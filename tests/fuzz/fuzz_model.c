/* fuzz_model.c — libFuzzer target for building a model from a checkpoint:
 * generation detection, every generation's tensor binding and shape checks
 * (RWKV-4, 5.0/5.1/5.2, 6 with and without time_state, 7), and — when a
 * file is accepted — a short forward pass, so that any shape the loaders
 * let through is one the layer code can run (ASan checks every access).
 * The tensor file parsers have their own targets (fuzz_pth,
 * fuzz_safetensors); this one starts where they end.
 *
 * Seeds (tests/fuzz/corpus/model/): tiny random-weight .safetensors models
 * of every generation (n_embd 8, 2 layers, vocab 16, 2 heads of 4), made
 * by a short Python script with the official tensor names and shapes;
 * mutating their JSON headers reaches the shape and name checks.  The
 * int8-*.safetensors seeds are some of them through `rwkv quantize` (I8
 * matrices, their scales, the metadata: model_bind.c's int8 checks). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/forward.h"
#include "core/model.h"
#include "core/state.h"
#include "core/tensor_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    if (size)
        memcpy(in, data, size);
    rwkv_tensor_file *f = NULL;
    rwkv_model *m = NULL;
    rwkv_error err;
    if (rwkv_tensor_file_parse("fuzz.model", in, size, &f, &err) == 0 &&
        rwkv_model_from_tensors(f, &m, &err) == 0) {
        const rwkv_model_info *mi = rwkv_model_get_info(m);
        /* keep each input cheap: only small models run */
        if (mi->weight_bytes <= (1u << 20) && mi->n_layer <= 8) {
            /* an int8 file (rwkv quantize) runs only in an int8 engine */
            rwkv_engine_opts eo = {.n_threads = 1,
                                   .precision = mi->int8_quantized ? RWKV_PRECISION_INT8
                                                                   : RWKV_PRECISION_FP32};
            rwkv_engine *e = rwkv_engine_new_opts(m, &eo, &err);
            rwkv_state *st = rwkv_state_new(m);
            float *lg = malloc(sizeof(float) * (size_t)mi->vocab_size);
            uint32_t tok[6];
            for (int i = 0; i < 6; i++)
                tok[i] = (uint32_t)(i * 7 + 1) % (uint32_t)mi->vocab_size;
            if (e && st && lg) {
                /* 6 tokens: the batch path; then 1 token: the decode path */
                rwkv_request q = {.state = st, .tokens = tok, .n_tokens = 6,
                                  .logits = RWKV_LOGITS_LAST, .logits_out = lg, .next_token = -1};
                double eos_sum[64] = {0};
                int64_t eos_n = 0;
                if (!mi->has_lm_head && mi->n_embd <= 64 && mi->n_embd <= mi->vocab_size) {
                    /* EmbeddingRWKV: the final norm's output and an EOS sum */
                    tok[5] = (uint32_t)mi->vocab_size - 1;
                    q = (rwkv_request){.state = st, .tokens = tok, .n_tokens = 6,
                                       .hidden = RWKV_HIDDEN_LAST, .hidden_out = lg,
                                       .next_token = -1, .eos_sum = eos_sum,
                                       .eos_count = &eos_n, .eos_id = tok[5]};
                }
                if (rwkv_forward(e, &q, 1, &err) == 0) {
                    q.n_tokens = 1;
                    rwkv_forward(e, &q, 1, &err);
                }
            }
            free(lg);
            rwkv_state_free(st);
            rwkv_engine_free(e);
        }
        rwkv_model_free(m);
    } else if (m != NULL || strstr(err.msg, "fuzz.model") == NULL) {
        abort(); /* a failure must name the input and leave nothing behind */
    }
    free(in);
    return 0;
}
