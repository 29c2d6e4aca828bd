/* model.h — an RWKV model loaded from an official checkpoint.
 *
 * rwkv_model_load opens a .pth or .safetensors file (see tensor_file.h),
 * recognises the generation and the shape from tensor names and shapes
 * (../shared/rwkv-math.md §0), checks every tensor the generation needs is
 * there with the right shape and that nothing unknown is (an unknown tensor
 * means a variant we would silently compute wrongly), and prepares the
 * weights: large matrices stay in the mapped file in their stored dtype
 * (f32, f16 or bf16, or int8 with per-row scales in a file `rwkv quantize`
 * wrote: core/quantize.h); small per-channel vectors and LoRA factors become
 * float32 copies.  A model is immutable after loading and may be shared by
 * any number of threads and engine contexts.
 */
#ifndef RWKV_MODEL_H
#define RWKV_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/tensor_file.h"

typedef enum rwkv_generation {
    RWKV_GEN_V4 = 40,
    RWKV_GEN_V5_0 = 50,
    RWKV_GEN_V5_1 = 51,
    RWKV_GEN_V5_2 = 52,
    RWKV_GEN_V6 = 60,
    RWKV_GEN_V7 = 70,
} rwkv_generation;

typedef struct rwkv_model_info {
    rwkv_generation generation;
    const char *generation_name; /* e.g. "RWKV-7 (x070)" */
    int n_layer;
    int n_embd;      /* C */
    int n_head;      /* H (1 for v4, which has no heads) */
    int head_size;   /* N, with H*N = C (C for v4) */
    int vocab_size;  /* V */
    int ffn_dim;     /* width of the channel-mix hidden layer */
    size_t state_floats;   /* floats in an exported state */
    size_t n_params;       /* parameters in the checkpoint */
    size_t weight_bytes;   /* bytes of all tensors as stored */
    rwkv_dtype matrix_dtype; /* dtype of head.weight (emb.weight without an LM head) */
    /* EmbeddingRWKV (core/embedding.h): the RWKV-7 body under "rwkv.", no LM
     * head (no logits, top-k or surprisal), task heads instead.  embed_tasks
     * is a bitmask of (1 << rwkv_embed_task) for the heads present; 0 for a
     * language model. */
    int has_lm_head;
    unsigned embed_tasks;
    /* An int8 file written by `rwkv quantize` (core/quantize.h): its FFN and
     * head matrices are int8 with per-row scales, so it runs only in int8
     * engines (engine creation refuses fp32, bf16 and CUDA). */
    int int8_quantized;
    const char *path;      /* as given to rwkv_model_load */
    const char *format;    /* "pth" or "safetensors" */
} rwkv_model_info;

typedef struct rwkv_model rwkv_model;

/* Loads and validates.  On failure *out is NULL and err names the file and
 * the problem (missing tensor, wrong shape, unsupported generation...).
 * RWKV-4, 5.0, 5.1, 5.2, 6 (also state-tuned: time_state is the initial
 * state) and 7 load; anything else is refused. */
int rwkv_model_load(const char *path, rwkv_model **out, rwkv_error *err);

/* Takes ownership of an already opened tensor file (closed on failure too). */
int rwkv_model_from_tensors(rwkv_tensor_file *f, rwkv_model **out, rwkv_error *err);

void rwkv_model_free(rwkv_model *m); /* accepts NULL */

const rwkv_model_info *rwkv_model_get_info(const rwkv_model *m);

/* Recognises the generation from tensor names/shapes without building the
 * model (an EmbeddingRWKV checkpoint: the generation of its body).  Returns 0 and sets *gen, or -1 with a message saying why the file
 * is not a (supported) RWKV checkpoint. */
int rwkv_detect_generation(const rwkv_tensor_file *f, rwkv_generation *gen, rwkv_error *err);

const char *rwkv_generation_name(rwkv_generation g);

#endif
