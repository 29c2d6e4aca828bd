/* output_stage.h — how a document's outputs are made from the engine's
 * results, as pure functions: which engine outputs a block needs for the
 * document's options, and the block and final messages made from them and
 * the document's running figures (mean-pooling sums, the surprisal carried
 * from one block to the next, the surprisal total).  No I/O and no server:
 * tests/test_output_stage.c checks it alone.  sched.c runs the engine and
 * outputs.c queues what this produces.
 *
 * The engine computes per-position outputs (hidden rows, top-k, surprisal;
 * core/forward.h); what spans blocks — pooling across the whole document,
 * normalisation of the pooled vector, surprisal of a block's first token
 * (predicted by the block before) — lives here. */
#ifndef RWKVD_OUTPUT_STAGE_H
#define RWKVD_OUTPUT_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/forward.h"
#include "core/msg_decode.h"
#include "core/msg_encode.h"

/* What a document carries from block to block for its outputs (saved in its
 * checkpoint). */
typedef struct rwkvd_running {
    double *mean_sum;       /* [C], pooling mean: sum of ln_out over tokens */
    uint64_t mean_count;    /* tokens in mean_sum */
    float *last_emb;        /* [C], ln_out at the last token so far */
    bool has_last_emb;
    /* pooling eos (EmbeddingRWKV, daemon/embed_doc.h): mean_sum/mean_count
     * hold the sum of ln_out at the EOS tokens and their number */
    double surprisal_sum;   /* of the tokens emitted so far (nats) */
    uint64_t surprisal_count;
    bool has_carry;         /* the next block's first surprisal is known */
    float carry_surprisal;
} rwkvd_running;

/* One block's engine outputs, buffers owned by the caller. */
typedef struct rwkvd_block_job {
    int n;              /* tokens in the block */
    bool last;          /* no token follows (eof) */
    float *emb;         /* [C] ln_out at the block's last token */
    float *logits;      /* [V] after the last token (logits_last) or NULL */
    float *sur;         /* [n] engine surprisal of the token after each, or NULL */
    uint32_t k;         /* top-k per position (0: none) */
    uint32_t *ids;      /* [n][k] */
    float *lp;          /* [n][k] */
    int64_t eos_added;  /* pooling eos: EOS tokens the engine summed in this block */
} rwkvd_block_job;

/* Sizes job's buffers for a block of n tokens (tokens[0..n-1], followed by
 * next_token, -1 at eof) and fills q to ask the engine for exactly them.
 * -1 when memory runs out (release with rwkvd_block_job_free either way). */
int rwkvd_block_job_prepare(const rwkvd_doc_opts *opts, size_t C, size_t V, rwkv_state *state,
                            const uint32_t *tokens, int n, int64_t next_token,
                            rwkvd_running *run, rwkvd_block_job *job, rwkv_request *q);
void rwkvd_block_job_free(rwkvd_block_job *job);

/* The block message of a finished job: b (whose block/tok_start/tok_end the
 * caller sets) points into job, emb [C] and sur [n], which this fills
 * (sur also when only opts.segment asked for surprisal: segments.c uses it).  The
 * block's surprisal figures to add once it is out go to add_sum and
 * add_cnt.  m: the model (its task heads for pooling eos, where a block
 * carries the running embedding once the document has had an EOS). */
void rwkvd_stage_block(const rwkvd_doc_opts *opts, size_t C, size_t V, const rwkvd_running *run,
                       uint64_t tokens_done, const rwkvd_block_job *job, float *emb, float *sur,
                       rwkvd_block_out *b, double *add_sum, uint64_t *add_cnt,
                       const rwkv_model *m);

/* The running figures after the block is out. */
void rwkvd_stage_advance(const rwkvd_doc_opts *opts, size_t C, const rwkvd_block_job *job,
                         double add_sum, uint64_t add_cnt, rwkvd_running *run);

/* The final message of a document of tokens_done tokens: f points into emb
 * [C], which this fills when the document has an embedding, and (pooling
 * eos without any EOS) into why [why_len], which says why it has none. */
void rwkvd_stage_final(const rwkvd_doc_opts *opts, size_t C, const rwkvd_running *run,
                       uint64_t tokens_done, uint64_t blocks_done, float *emb, rwkvd_final_out *f,
                       const rwkv_model *m, char *why, size_t why_len);

/* What every block, final and segments output of a document names
 * (PROTOCOL.md §4.1): the model's sha256 and dim from tmpl; the document's
 * id, incarnation, pooling and normalisation; the precision its state was
 * computed in (RWKVD_CKPT_PRECISION_*: "fp32", "bf16", "int8", or "mixed"
 * once continued in another; the name of an unknown code is "?"); v 2 for
 * an EmbeddingRWKV document (pooling eos), else 1.  doc is borrowed. */
rwkvd_out_head rwkvd_stage_head(const rwkvd_out_head *tmpl, const uint8_t *doc, size_t doc_len,
                                uint64_t incarnation, const rwkvd_doc_opts *opts,
                                uint8_t precision);

/* Scales v to unit L2 norm (left alone when the norm is 0). */
void rwkvd_l2_normalize(float *v, size_t n);

#endif
