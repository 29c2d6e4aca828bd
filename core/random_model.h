/* random_model.h — random-weight RWKV-7 checkpoints of any shape.
 *
 * Benchmarks and tests need models of real sizes (0.1B ... 7B shapes) that
 * nobody has to download.  These are official-format RWKV-7 (x070)
 * safetensors files: the tensor names, shapes and order of the training
 * code (the fixture model's list, without blocks.0.att.v0/v1/v2, which the
 * official loader ignores anyway), LoRA widths computed as the official
 * training code does (D=768 gives w 64, a 64, v 32, g 128), and values drawn
 * at scales that keep a forward pass finite and well conditioned over long
 * inputs: matrices uniform with std 1/sqrt(fan_in), LayerNorm weights near 1
 * and biases near 0, token-shift mixes, decay bias and ln_x weights from the
 * official initialisation formulas, LoRA outputs as small perturbations.
 *
 * Deterministic: a spec (shape, dtype, seed) gives the same bytes on every
 * machine (each tensor draws from its own xoshiro256** stream derived from
 * the seed and the tensor's index).  Pure CPU work plus the write; a 0.1B
 * model (L12-D768-H64-V65536) takes well under a few seconds to generate.
 * No global state: thread safe.
 */
#ifndef RWKV_RANDOM_MODEL_H
#define RWKV_RANDOM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/tensor_file.h"

typedef struct rwkv_random_model_spec {
    int n_layer;    /* L: 1..4096 */
    int n_embd;     /* D: a multiple of head_size, <= 65536 */
    int head_size;  /* N: the "H" of a shape string is the HEAD SIZE (64 for
                       every official RWKV-7), not the number of heads */
    int vocab_size; /* V: 1..2^24 */
    int ffn_dim;    /* 0 means 4*D */
    rwkv_dtype dtype; /* of every tensor (the official files are bf16) */
    uint64_t seed;
} rwkv_random_model_spec;

/* Parses "L12-D768-H64-V65536" (fields in any order, each exactly once,
 * decimal, no sign) into the shape fields of *spec; other fields are left
 * alone.  -1 with a message saying what is wrong with the string. */
int rwkv_random_model_parse_shape(const char *shape, rwkv_random_model_spec *spec,
                                  rwkv_error *err);

/* Checks the ranges above (and that the whole model's byte size fits in
 * size_t).  -1 with a message naming the field. */
int rwkv_random_model_check(const rwkv_random_model_spec *spec, rwkv_error *err);

/* LoRA ranks of the official training code for embedding width D:
 * max(32, round(c * D^e / 32) * 32) with (c, e) = (1.8, 0.5) for decay w
 * and in-context rate a, (1.3, 0.5) for value residual v, (0.6, 0.8) for
 * the gate g (round half to even, as Python's round). */
void rwkv_random_model_lora_dims(int n_embd, int *w, int *a, int *v, int *g);

/* Parameters and bytes of the model a (valid) spec describes. */
size_t rwkv_random_model_params(const rwkv_random_model_spec *spec);
size_t rwkv_random_model_bytes(const rwkv_random_model_spec *spec);

/* Generates and writes the model atomically to `path` through
 * safetensors_writer (nothing is left behind on failure).  Holds the whole
 * model in memory once.  -1 with err set on a bad spec, no memory or an I/O
 * error. */
int rwkv_random_model_write(const rwkv_random_model_spec *spec, const char *path,
                            rwkv_error *err);

/* Generates the model as a safetensors file image in memory: *out (malloc'd,
 * the caller frees it) and *out_len; for rwkv_tensor_file_parse in
 * benchmarks that skip the file system. */
int rwkv_random_model_serialize(const rwkv_random_model_spec *spec, void **out,
                                size_t *out_len, rwkv_error *err);

#endif
