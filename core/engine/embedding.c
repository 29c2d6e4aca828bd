/* embedding.c — EmbeddingRWKV's pooling and task heads (core/embedding.h).
 * The body's per-position work (the EOS sum) is an engine output
 * (forward.h eos_sum); this file is what happens once per document. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/embedding.h"
#include "core/model/model_internal.h"

#define HEAD_LN_EPS 1e-5

static const char *const TASK_NAMES[RWKV_TASK_COUNT] = {"retrieval", "similarity",
                                                        "classification"};
static const char *const HEAD_NAMES[RWKV_TASK_COUNT] = {"retr", "sts", "cls"};

const char *rwkv_embed_task_name(rwkv_embed_task t)
{
    return (unsigned)t < RWKV_TASK_COUNT ? TASK_NAMES[t] : "unknown";
}

const char *rwkv_embed_task_head(rwkv_embed_task t)
{
    return (unsigned)t < RWKV_TASK_COUNT ? HEAD_NAMES[t] : "unknown";
}

int rwkv_embed_task_parse(const char *s, rwkv_embed_task *out)
{
    for (int t = 0; s && t < RWKV_TASK_COUNT; t++)
        if (!strcmp(s, TASK_NAMES[t]) || !strcmp(s, HEAD_NAMES[t])) {
            *out = (rwkv_embed_task)t;
            return 0;
        }
    return -1;
}

int rwkv_embed_check(const rwkv_model *m, rwkv_embed_task task, uint32_t eos, rwkv_error *err)
{
    const rwkv_model_info *mi = &m->info;
    if (!mi->embed_tasks)
        return rwkv_fail(err,
                         "%s: not an EmbeddingRWKV model (a %s language model has no task "
                         "heads); embedding tasks need one",
                         mi->path, mi->generation_name);
    if ((unsigned)task >= RWKV_TASK_COUNT || !(mi->embed_tasks & (1u << task)))
        return rwkv_fail(err, "%s: this EmbeddingRWKV checkpoint has no %s head (head.%s_head.*)",
                         mi->path, rwkv_embed_task_name(task), rwkv_embed_task_head(task));
    if (eos >= (uint32_t)mi->vocab_size)
        return rwkv_fail(err, "EOS id %u is outside the model's vocabulary (%d ids): tokenizer "
                              "and model do not match",
                         eos, mi->vocab_size);
    return 0;
}

static void layernorm(const double *x, int C, const float *w, const float *b, float *out)
{
    double mean = 0, var = 0;
    for (int i = 0; i < C; i++)
        mean += x[i];
    mean /= C;
    for (int i = 0; i < C; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var /= C;
    double inv = 1.0 / sqrt(var + HEAD_LN_EPS);
    for (int i = 0; i < C; i++)
        out[i] = (float)((x[i] - mean) * inv * w[i] + b[i]);
}

int rwkv_embed_finish(const rwkv_model *m, rwkv_embed_task task, const double *eos_sum,
                      int64_t eos_count, int normalize, float *pooled_out, float *emb_out,
                      rwkv_error *err)
{
    if (rwkv_embed_check(m, task, 0, err) != 0)
        return -1;
    if (eos_count < 1)
        return rwkv_fail(err, "no EOS token in the document: an EmbeddingRWKV embedding is the "
                              "mean of ln_out at the EOS positions (append EOS %u, or set "
                              "eos_every)",
                         RWKV_EMBED_EOS);
    int C = m->info.n_embd;
    const rwkv_task_head *h = &m->task_heads[task];
    double *x = malloc(sizeof(double) * 3 * (size_t)C);
    if (!x)
        return rwkv_fail(err, "embedding: out of memory");
    double *hid = x + C, *y = x + 2 * C;
    /* the pooled vector is float32 in rwkv-emb; round it so, then compute
     * the head from it */
    for (int i = 0; i < C; i++) {
        float p = (float)(eos_sum[i] / (double)eos_count);
        x[i] = p;
        if (pooled_out)
            pooled_out[i] = p;
    }
    for (int o = 0; o < C; o++) {
        double acc = 0;
        for (int i = 0; i < C; i++)
            acc += (double)h->fc1[(size_t)o * C + i] * x[i];
        hid[o] = acc > 0 ? acc : 0;
    }
    for (int o = 0; o < C; o++) {
        double acc = x[o];
        for (int i = 0; i < C; i++)
            acc += (double)h->fc2[(size_t)o * C + i] * hid[i];
        y[o] = acc;
    }
    layernorm(y, C, h->norm_w, h->norm_b, emb_out);
    free(x);
    double n2 = 0;
    for (int i = 0; i < C; i++)
        n2 += (double)emb_out[i] * emb_out[i];
    if (!isfinite(n2))
        return rwkv_fail(err, "embedding: the result is not finite");
    if (normalize && n2 > 0)
        for (int i = 0; i < C; i++)
            emb_out[i] = (float)(emb_out[i] / sqrt(n2));
    return 0;
}
