/* embedding.h — EmbeddingRWKV document embeddings (howard-hou/EmbeddingRWKV,
 * PyPI rwkv-emb): an RWKV-7 body without an LM head whose ln_out outputs at
 * the EOS tokens are averaged and passed through one of three task heads,
 * y = LayerNorm(x + fc2·relu(fc1·x)), eps 1e-5
 * (../shared/fixtures/embedding-rwkv/README.md, "What is computed").
 *
 * The mean is kept as a running sum and count of the EOS rows
 * (rwkv_request.eos_sum / eos_count, forward.h), so a document streams
 * across blocks, messages and restarts; the head is applied once at the
 * end with rwkv_embed_finish.  rwkv-emb divides 0 by 0 when a text has no
 * EOS; here that is an error, never NaN.
 */
#ifndef RWKV_EMBEDDING_H
#define RWKV_EMBEDDING_H

#include <stdint.h>

#include "core/error.h"
#include "core/model.h"

/* The EOS id rwkv-emb appends (add_eos=True): the last row of the 65536-row
 * embedding table, not an entry of the World vocabulary file. */
#define RWKV_EMBED_EOS 65535u

typedef enum rwkv_embed_task {
    RWKV_TASK_RETRIEVAL = 0,      /* head.retr_head ([RETR], rwkv-emb's default) */
    RWKV_TASK_SIMILARITY = 1,     /* head.sts_head ([STS]) */
    RWKV_TASK_CLASSIFICATION = 2, /* head.cls_head ([CLS]) */
    RWKV_TASK_COUNT = 3,
} rwkv_embed_task;

/* "retrieval", "similarity", "classification". */
const char *rwkv_embed_task_name(rwkv_embed_task t);
/* The checkpoint's short name of the head: "retr", "sts", "cls". */
const char *rwkv_embed_task_head(rwkv_embed_task t);
/* Accepts the names above (and the head names); -1 for anything else. */
int rwkv_embed_task_parse(const char *s, rwkv_embed_task *out);

/* Whether model m can embed with `task` and `eos`: refuses, with a message
 * saying why, a model that is not EmbeddingRWKV, a head the checkpoint does
 * not have, and an EOS id outside the model's vocabulary. */
int rwkv_embed_check(const rwkv_model *m, rwkv_embed_task task, uint32_t eos, rwkv_error *err);

/* The document embedding from the running EOS sum [C] and count:
 * pooled = sum / count (written to pooled_out when not NULL), then the task
 * head into emb_out [C]; normalize: then scaled to unit L2 norm.  -1 with
 * err when count is 0 ("no EOS token"), the model/task is refused
 * (rwkv_embed_check) or the result is not finite. */
int rwkv_embed_finish(const rwkv_model *m, rwkv_embed_task task, const double *eos_sum,
                      int64_t eos_count, int normalize, float *pooled_out, float *emb_out,
                      rwkv_error *err);

#endif
