/* embed_doc.c — see embed_doc.h. */
#include "daemon/embed_doc.h"

#include <stdint.h>
#include <stdio.h>

#include "core/embedding.h"

int rwkvd_embed_resolve_opts(const rwkv_model_info *mi, rwkvd_doc_opts *o, char *msg,
                             size_t msg_len)
{
    if (!mi->embed_tasks) {
        if (o->has_task) {
            snprintf(msg, msg_len, "opts.task: the served model (%s) is not an EmbeddingRWKV "
                                   "model; tasks need one",
                     mi->generation_name);
            return -1;
        }
        if (o->eos_every) {
            snprintf(msg, msg_len, "opts.eos_every: the served model (%s) is not an "
                                   "EmbeddingRWKV model",
                     mi->generation_name);
            return -1;
        }
        return 0;
    }
    if (!o->outputs_given)
        o->outputs = RWKVD_OUT_EMBEDDING;
    if (o->outputs & ~(uint32_t)RWKVD_OUT_EMBEDDING) {
        snprintf(msg, msg_len, "opts.outputs: the served model is EmbeddingRWKV (no LM head): "
                               "only \"embedding\" can be asked for");
        return -1;
    }
    if (!o->has_task) {
        o->has_task = true;
        o->task = RWKV_TASK_RETRIEVAL;
    }
    if (!(mi->embed_tasks & (1u << o->task))) {
        snprintf(msg, msg_len, "opts.task: the served EmbeddingRWKV checkpoint has no %s head",
                 rwkv_embed_task_name((rwkv_embed_task)o->task));
        return -1;
    }
    o->pooling = RWKVD_POOL_EOS;
    return 0;
}

int rwkvd_embed_shape(const rwkvd_doc_opts *o, bool text_input, bool eof, uint64_t doc_tokens,
                      uint32_t *since, const rwkv_ids *in, rwkv_ids *out, rwkv_error *err)
{
    bool eos = o->pooling == RWKVD_POOL_EOS;
    for (size_t i = 0; i < in->n; i++) {
        if (rwkv_ids_push(out, in->v[i], err) != 0)
            return -1;
        if (!eos)
            continue;
        if (in->v[i] == RWKV_EMBED_EOS) {
            *since = 0;
            continue;
        }
        if (*since < UINT32_MAX) /* only "any since the last EOS" matters beyond eos_every */
            ++*since;
        if (o->eos_every && *since == o->eos_every) {
            *since = 0;
            if (rwkv_ids_push(out, RWKV_EMBED_EOS, err) != 0)
                return -1;
        }
    }
    if (eos && eof && text_input && (*since > 0 || doc_tokens + out->n == 0)) {
        *since = 0;
        return rwkv_ids_push(out, RWKV_EMBED_EOS, err);
    }
    return 0;
}

bool rwkvd_embed_current(const rwkv_model *m, const rwkvd_doc_opts *o, const double *sum,
                         uint64_t count, float *emb, char *why, size_t why_len)
{
    rwkv_error err;
    rwkv_error_clear(&err);
    if (rwkv_embed_finish(m, (rwkv_embed_task)o->task, sum, (int64_t)count, o->normalize, NULL,
                          emb, &err) != 0) {
        snprintf(why, why_len, "%s", err.msg);
        return false;
    }
    return true;
}
