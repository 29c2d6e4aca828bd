/* embed_doc.h — what the daemon does differently for an EmbeddingRWKV model
 * (core/embedding.h), kept in one place so the shared modules only call
 * in: options resolved against the model at seq 0, the EOS appended to a
 * text document at eof, and the document embedding (task head over the
 * running EOS mean) for block and final messages.
 *
 * For such a model every document pools at its EOS tokens
 * (RWKVD_POOL_EOS); the running figures reuse rwkvd_running's mean sum and
 * count (sum of ln_out at the EOS tokens, their number), so they are
 * checkpointed like a mean pooling's. */
#ifndef RWKVD_EMBED_DOC_H
#define RWKVD_EMBED_DOC_H

#include <stdbool.h>
#include <stddef.h>

#include "core/model.h"
#include "core/msg_decode.h"
#include "core/tokenizer.h"

/* The options a document starts with on model mi, from those of its seq 0
 * (o: the message's, or the defaults).  EmbeddingRWKV: pooling eos, task
 * retrieval unless given, outputs [embedding] unless given, and only
 * embedding may be asked for (no LM head).  A language model refuses a
 * task.  0, or -1 with a one-line reason in msg (bad_opts). */
int rwkvd_embed_resolve_opts(const rwkv_model_info *mi, rwkvd_doc_opts *o, char *msg,
                             size_t msg_len);

/* At eof of a text/bytes document that pools at EOS: appends the EOS id
 * (rwkv-emb's add_eos).  Token documents are taken as given. */
int rwkvd_embed_at_eof(const rwkvd_doc_opts *o, bool text_input, rwkv_ids *add,
                       rwkv_error *err);

/* The document embedding from the running EOS sum and count.  Returns
 * true with emb [C] filled, or false with why set ("no EOS token ...")
 * when there is none yet. */
bool rwkvd_embed_current(const rwkv_model *m, const rwkvd_doc_opts *o, const double *sum,
                         uint64_t count, float *emb, char *why, size_t why_len);

#endif
