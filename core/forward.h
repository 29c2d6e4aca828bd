/* forward.h — running tokens through a model.
 *
 * An engine is the working memory and the threads for forward passes over a
 * model: create one per thread that runs forward passes (the model itself is
 * shared).  rwkv_forward takes a batch of requests — one per document, each
 * with its own state and its own block of tokens — and runs them together:
 * every projection is one matrix-matrix product over all the batch's tokens,
 * the recurrence runs token by token within each document.  A batch of one
 * request with one token is the single-token (decode) path.
 *
 * Outputs are opt-in per request; nothing is computed that no one asked for
 * (no head matmul when neither logits, top-k nor surprisal is requested).
 *
 * Batch invariance: a request with more than RWKV_GEMV_MAX_ROWS (4) tokens
 * gives bit-identical results whether it runs alone or in a batch with any
 * other requests, and whatever the thread count (every row is computed by
 * the same kernels in the same order; tests/test_rwkv7_batch.c checks it).
 * The daemon relies on this to re-emit byte-identical outputs after a
 * restart.  Requests of 1..4 tokens take the GEMV path when alone and may
 * differ in the last bits when batched.
 */
#ifndef RWKV_FORWARD_H
#define RWKV_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/model.h"
#include "core/precision.h"
#include "core/state.h"

typedef enum rwkv_logits_mode {
    RWKV_LOGITS_NONE = 0,
    RWKV_LOGITS_LAST = 1, /* logits_out: [V], after the last token */
    RWKV_LOGITS_ALL = 2,  /* logits_out: [n_tokens][V]; row t predicts token t+1 */
} rwkv_logits_mode;

typedef enum rwkv_hidden_mode {
    RWKV_HIDDEN_NONE = 0,
    RWKV_HIDDEN_LAST = 1, /* hidden_out: [C], ln_out output at the last token */
    RWKV_HIDDEN_ALL = 2,  /* hidden_out: [n_tokens][C] */
    RWKV_HIDDEN_MEAN = 3, /* hidden_out: [C], mean over this request's tokens */
} rwkv_hidden_mode;

typedef struct rwkv_request {
    rwkv_state *state;        /* updated in place */
    const uint32_t *tokens;   /* n_tokens >= 1 ids, each < vocab size */
    int n_tokens;
    rwkv_logits_mode logits;
    float *logits_out;
    rwkv_hidden_mode hidden;
    float *hidden_out;
    /* Optional [C] float64 accumulator: += the sum of the ln_out output
     * over this request's tokens (running means across blocks). */
    double *hidden_sum;
    /* Optional [n_tokens]: surprisal_out[t] = -ln p(target_t | tokens so
     * far) in nats, where target_t = tokens[t+1], and for the last position
     * next_token; NaN there when next_token < 0 (the head is then skipped
     * for that position unless logits are wanted). */
    float *surprisal_out;
    int64_t next_token;
    /* Optional top-k of every position's next-token distribution
     * (0 < topk <= vocab size; 0: none): topk_ids / topk_logprobs are
     * [n_tokens][topk], the ids best first with their natural-log
     * probabilities, ranked as core/topk.h says.  Computed where the
     * logits are, so no caller needs [n_tokens][V] logits for it. */
    int topk;
    uint32_t *topk_ids;
    float *topk_logprobs;
    /* Optional EmbeddingRWKV pooling (core/embedding.h): eos_sum [C]
     * (float64) += the ln_out output at every position whose token is
     * eos_id, and *eos_count += their number; both or neither.  Only those
     * rows need ln_out. */
    double *eos_sum;
    int64_t *eos_count;
    uint32_t eos_id;
} rwkv_request;

typedef struct rwkv_engine rwkv_engine;

/* A CPU engine.  n_threads <= 0: one per online CPU.  NULL with err set on
 * failure. */
rwkv_engine *rwkv_engine_new(const rwkv_model *m, int n_threads, rwkv_error *err);

/* An engine on `device`: "cpu", "cuda" or "cuda:N" (NULL means "cpu").
 * NULL with err when the device does not exist, the build has no CUDA, or
 * the device backend does not support the model.  n_threads is for the CPU
 * (a device engine uses it for host-side work only). */
rwkv_engine *rwkv_engine_new_on(const rwkv_model *m, const char *device, int n_threads,
                                rwkv_error *err);

/* Everything an engine can be asked for; zero-initialised means a CPU
 * engine, one thread per CPU, fp32. */
typedef struct rwkv_engine_opts {
    const char *device;      /* as rwkv_engine_new_on; NULL: cpu */
    int n_threads;           /* <= 0: one per online CPU */
    rwkv_precision precision; /* CPU only (core/precision.h); a device
                                 engine accepts fp32 and auto, and keeps its
                                 own rule (RWKV_CUDA_PRECISION) */
} rwkv_engine_opts;

/* An engine with options.  NULL with err when the device or the precision
 * is unavailable (the message names the missing CPU feature).  A bf16/int8
 * engine converts the model's large matrices before it returns (shared by
 * every engine of the same model and precision). */
rwkv_engine *rwkv_engine_new_opts(const rwkv_model *m, const rwkv_engine_opts *o,
                                  rwkv_error *err);

/* The precision the engine computes in (never auto), as its backend says
 * (backend.h): a CPU engine's --precision; the CUDA engine's bf16, unless
 * RWKV_CUDA_PRECISION=fp32. */
rwkv_precision rwkv_engine_precision(const rwkv_engine *e);

/* "cpu (N threads)" or the device backend's description; ", bf16" or
 * ", int8" is added inside the parentheses of a low-precision CPU engine. */
const char *rwkv_engine_device(const rwkv_engine *e);
void rwkv_engine_free(rwkv_engine *e); /* accepts NULL */
int rwkv_engine_threads(const rwkv_engine *e);
const rwkv_model *rwkv_engine_model(const rwkv_engine *e);

/* Runs the requests.  Returns -1 with err set, before touching any state,
 * when a request is malformed (token out of range, no tokens, a state of
 * another model, a mode without its buffer, logits, top-k or surprisal
 * from a model without an LM head) or memory runs out. */
int rwkv_forward(rwkv_engine *e, rwkv_request *reqs, int n_reqs, rwkv_error *err);

#endif
