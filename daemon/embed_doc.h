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

/* The ids a message adds to a document that pools at EOS, from those it
 * brings (in): with eos_every k, an EOS after every k tokens since the last
 * EOS (an EOS in the input counts, and restarts the count); at eof of a
 * text/bytes document the final EOS (rwkv-emb's add_eos), unless one has
 * just been placed.  Token documents get no final EOS: they are taken as
 * given.  *since (tokens since the last EOS) is updated; doc_tokens: the
 * document's tokens before this message.  Other documents: out = in. */
int rwkvd_embed_shape(const rwkvd_doc_opts *o, bool text_input, bool eof, uint64_t doc_tokens,
                      uint32_t *since, const rwkv_ids *in, rwkv_ids *out, rwkv_error *err);

/* The document embedding from the running EOS sum and count.  Returns
 * true with emb [C] filled, or false with why set ("no EOS token ...")
 * when there is none yet. */
bool rwkvd_embed_current(const rwkv_model *m, const rwkvd_doc_opts *o, const double *sum,
                         uint64_t count, float *emb, char *why, size_t why_len);

#endif
