/* engine_opts.c — rwkv_engine_new_opts: an engine at a chosen precision.
 *
 * The precision is a property of the CPU engine's matmul scratch (the
 * low-precision context, matmul_lowp.h); everything else of the engine is
 * the fp32 engine unchanged.  The model's matrices are converted here, by
 * one small forward pass that touches every product (two tokens through
 * the GEMV path, five through the GEMM path, with the head): a failure to
 * convert then surfaces as an error at creation, never as a silent fp32
 * product in the middle of a document. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine/engine_internal.h"
#include "core/engine/matmul_lowp.h"

static int warm_up(rwkv_engine *e, rwkv_error *err)
{
    const rwkv_model *m = rwkv_engine_model(e);
    rwkv_state *st = rwkv_state_new(m);
    /* an EmbeddingRWKV model has no head: its last hidden row instead */
    bool head = m->info.has_lm_head;
    float *logits = malloc((size_t)(head ? m->info.vocab_size : m->info.n_embd) * sizeof(float));
    uint32_t toks[5] = {0, 0, 0, 0, 0};
    int rc = -1;
    if (!st || !logits) {
        rwkv_fail(err, "engine: out of memory");
        goto out;
    }
    for (int n = 1; n <= 5; n += 4) {
        rwkv_request q = {.state = st, .tokens = toks, .n_tokens = n,
                          .logits = RWKV_LOGITS_LAST, .logits_out = logits, .next_token = -1};
        if (!head)
            q = (rwkv_request){.state = st, .tokens = toks, .n_tokens = n,
                               .hidden = RWKV_HIDDEN_LAST, .hidden_out = logits,
                               .next_token = -1};
        if (rwkv_forward(e, &q, 1, err) != 0)
            goto out;
    }
    rc = 0;
out:
    rwkv_state_free(st);
    free(logits);
    return rc;
}

rwkv_engine *rwkv_engine_new_opts(const rwkv_model *m, const rwkv_engine_opts *o,
                                  rwkv_error *err)
{
    rwkv_engine_opts none = {0};
    if (!o)
        o = &none;
    rwkv_precision p;
    int cpu = !o->device || !strcmp(o->device, "cpu");
    if (!cpu && o->precision != RWKV_PRECISION_FP32 && o->precision != RWKV_PRECISION_AUTO) {
        rwkv_fail(err, "precision %s: the CPU engine's option; device %s sets its own "
                       "(RWKV_CUDA_PRECISION)",
                  rwkv_precision_name(o->precision), o->device);
        return NULL;
    }
    if (!cpu)
        return rwkv_engine_new_on(m, o->device, o->n_threads, err);
    rwkv_precision want = o->precision;
    if (m->info.int8_quantized) {
        /* an `rwkv quantize` file has no float form of its int8 matrices */
        if (want == RWKV_PRECISION_AUTO)
            want = RWKV_PRECISION_INT8;
        if (want != RWKV_PRECISION_INT8) {
            rwkv_engine_refuse_int8_file(m, rwkv_precision_name(want), err);
            return NULL;
        }
    }
    if (m->info.int8_quantized &&
        rwkv_precision_check(RWKV_PRECISION_INT8, rwkv_cpu_features_get(), NULL) != 0) {
        rwkv_fail(err, "%s holds int8-quantized weights (rwkv quantize), which run only at "
                       "precision int8, and this CPU cannot run int8 (it needs avx512f, "
                       "avx512bw, avx512_vnni and avx512_bf16): use the file it was made from",
                  m->info.path);
        return NULL;
    }
    if (rwkv_precision_resolve(want, &p, err) != 0)
        return NULL;
    rwkv_engine *e = p == RWKV_PRECISION_INT8
                         ? rwkv_engine_new_with(m, rwkv_cpu_backend(), 0, o->n_threads, err)
                         : rwkv_engine_new(m, o->n_threads, err);
    if (!e || p == RWKV_PRECISION_FP32)
        return e;
    rwkv_cpu *ctx = rwkv_engine_cpu(e);
    rwkv_lowp_weights *w = rwkv_lowp_weights_acquire(m, p);
    rwkv_lowp_ctx *lc = w ? rwkv_lowp_ctx_new(w, ctx->n_threads) : NULL;
    if (!lc) {
        rwkv_engine_free(e);
        rwkv_fail(err, "engine: cannot set up %s products (out of memory, or oneDNN failed "
                       "to start)",
                  rwkv_precision_name(p));
        return NULL;
    }
    rwkv_matmul_scratch_set_lowp(ctx->mm, lc);
    ctx->precision = p;
    snprintf(ctx->device, sizeof ctx->device, "cpu (%d threads, %s)", ctx->n_threads,
             rwkv_precision_name(p));
    if (warm_up(e, err) != 0 || rwkv_lowp_weights_failed(w)) {
        if (rwkv_lowp_weights_failed(w))
            rwkv_fail(err, "engine: out of memory converting the model's matrices to %s",
                      rwkv_precision_name(p));
        rwkv_engine_free(e);
        return NULL;
    }
    return e;
}
