/* model_internal.h — what the engine files see of a model: the shared
 * weights, the per-generation hooks, and the helpers that bind checkpoint
 * tensors with shape checks.  Not part of the public API. */
#ifndef RWKV_MODEL_INTERNAL_H
#define RWKV_MODEL_INTERNAL_H

#include "core/engine/matmul.h"
#include "core/model.h"

struct rwkv_cpu;
struct rwkv_batch;
struct rwkv_binder;

/* One generation's code.  Everything the generations share (embedding, final
 * norm, head, outputs, state handling, batching) lives in
 * core/engine/cpu_forward.c, plan.c and state.c; an arch supplies only what
 * differs. */
typedef struct rwkv_arch {
    rwkv_generation generation;
    /* Binds this generation's layer weights (m->layers) and fills the shape
     * fields of m->info.  Returns -1 with err set on a missing/misshaped
     * tensor. */
    int (*bind)(struct rwkv_model *m, struct rwkv_binder *b, rwkv_error *err);
    void (*free_layers)(struct rwkv_model *m);
    /* Writes the initial state (state_floats floats). */
    void (*init_state)(const struct rwkv_model *m, float *state);
    /* Floats of scratch one layer call needs for M tokens. */
    size_t (*scratch_floats)(const struct rwkv_model *m, int M);
    /* Runs layer `layer` over the batch: x [M][C] is the residual stream,
     * updated in place; the batch's states are updated. */
    void (*layer)(struct rwkv_cpu *e, int layer, const struct rwkv_batch *b, float *x,
                  float *scratch);
} rwkv_arch;

/* One EmbeddingRWKV task head (core/embedding.h): float32 copies. */
typedef struct rwkv_task_head {
    const float *fc1, *fc2;       /* [C][C], (out, in) */
    const float *norm_w, *norm_b; /* [C] */
} rwkv_task_head;

struct rwkv_model {
    rwkv_model_info info;
    rwkv_tensor_file *file;
    const rwkv_arch *arch;
    /* shared by all generations */
    rwkv_matrix emb;          /* [V][C], stored dtype; ln0 applied per lookup */
    const float *ln0_w, *ln0_b;
    const float *ln_out_w, *ln_out_b;
    rwkv_matrix head;         /* [V][C]; rows 0 when info.has_lm_head is 0 */
    rwkv_task_head task_heads[3]; /* by rwkv_embed_task, where info.embed_tasks says */
    void *layers;             /* the arch's per-layer weights */
    /* float32 copies made at load; freed with the model */
    void **owned;
    size_t n_owned, cap_owned;
    /* every Linear weight rwkv_bind_matrix bound from a tensor of the file
     * (not emb.weight, which is looked up, never multiplied): what `rwkv
     * quantize` converts (core/quantize.h) */
    struct rwkv_bound_matrix {
        const rwkv_tensor *t;
        rwkv_matrix mat;
    } *bound;
    size_t n_bound, cap_bound;
};

/* ---- binding tensors with shape checks (model_bind.c) ---- */
typedef struct rwkv_binder {
    struct rwkv_model *m;
    const rwkv_tensor_file *f;
    unsigned char *used;      /* per tensor: bound or deliberately ignored */
    unsigned char *q8;        /* per tensor: Q8_MATRIX / Q8_SCALE (an int8 file's) */
    const char *prefix;       /* prepended to every name ("rwkv." for EmbeddingRWKV) */
} rwkv_binder;

/* Finds a tensor by printf-style name; NULL (no error) when absent. */
const rwkv_tensor *rwkv_bind_find(rwkv_binder *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A vector of n floats: the tensor must have n elements once size-1 dims are
 * squeezed away (the official loader squeezes).  Returns an owned float32
 * copy, or NULL with err set. */
const float *rwkv_bind_vec(rwkv_binder *b, rwkv_error *err, int64_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

enum { Q8_MATRIX = 1, Q8_SCALE = 2 };

/* A Linear weight [rows][cols] used in place in its stored dtype.  In an
 * int8 file (`rwkv quantize`, docs/precision.md) it may be I8 where an int8
 * engine makes it int8 (rwkv_lowp_form): then "<name>.q8_scale" must be
 * F32 [rows] of finite non-negative scales; rows are padded to
 * RWKV_Q8_PAD inputs in an owned copy only when cols is not a multiple. */
int rwkv_bind_matrix(rwkv_binder *b, rwkv_error *err, rwkv_matrix *out, int64_t rows,
                     int64_t cols, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* emb.weight [rows][cols]: like rwkv_bind_matrix, never int8 (rows are
 * looked up, not multiplied). */
int rwkv_bind_table(rwkv_binder *b, rwkv_error *err, rwkv_matrix *out, int64_t rows, int64_t cols,
                    const char *name);

/* A LoRA factor stored [in][out] ("x·A" form): becomes an owned float32
 * Linear-form matrix [out][in] so one matmul routine serves everything. */
int rwkv_bind_lora(rwkv_binder *b, rwkv_error *err, rwkv_matrix *out, int64_t in, int64_t out_dim,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* The shape step every generation's bind shares: head count H and size N
 * (N <= max_head), the FFN width read from blocks.0.ffn.key.weight (F, C),
 * and the state size (n_layer * layer_state floats) go into m->info.
 * -1 with err naming the file when a check fails. */
int rwkv_bind_shape(rwkv_binder *b, rwkv_error *err, int H, int N, int max_head,
                    size_t layer_state);

/* Marks a tensor as deliberately unused (e.g. v7 blocks.0.att.v0). */
void rwkv_bind_ignore(rwkv_binder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Squeezed shape of a tensor (size-1 dims removed): returns the count. */
int rwkv_squeezed_shape(const rwkv_tensor *t, int64_t *dims);

/* EmbeddingRWKV (embedding_heads.c): whether f is one (an "rwkv." body and
 * at least one head.*_head.* tensor), and binding its task heads (names
 * taken without the body's prefix). */
int rwkv_is_embedding_checkpoint(const rwkv_tensor_file *f);
int rwkv_bind_task_heads(rwkv_binder *b, rwkv_error *err);

/* Owned memory freed with the model; NULL on OOM. */
void *rwkv_model_alloc(struct rwkv_model *m, size_t bytes);

extern const rwkv_arch rwkv_arch_v4;
extern const rwkv_arch rwkv_arch_v5_0, rwkv_arch_v5_1, rwkv_arch_v5_2;
extern const rwkv_arch rwkv_arch_v6;
extern const rwkv_arch rwkv_arch_v7;

#endif
