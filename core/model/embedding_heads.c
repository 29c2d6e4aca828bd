/* embedding_heads.c — recognising an EmbeddingRWKV checkpoint and binding
 * its task heads head.{retr,sts,cls}_head.{fc1.weight, fc2.weight,
 * norm.weight, norm.bias} (rwkv-emb's MultiTaskHead).  The body is an
 * ordinary RWKV-7 under the prefix "rwkv." (model_load.c binds it). */
#include <stdio.h>
#include <string.h>

#include "core/embedding.h"
#include "core/model/model_internal.h"

int rwkv_is_embedding_checkpoint(const rwkv_tensor_file *f)
{
    if (!rwkv_tensor_file_find(f, "rwkv.emb.weight"))
        return 0;
    size_t n = rwkv_tensor_file_count(f);
    for (size_t i = 0; i < n; i++) {
        const char *name = rwkv_tensor_file_at(f, i)->name;
        if (strncmp(name, "head.", 5) == 0 && strstr(name + 5, "_head."))
            return 1;
    }
    return 0;
}

/* Present heads are bound whole; a head with some of its four tensors is a
 * broken file.  Unknown head.* tensors stay unbound, and model_load.c then
 * refuses them by name. */
int rwkv_bind_task_heads(rwkv_binder *b, rwkv_error *err)
{
    rwkv_model *m = b->m;
    int C = m->info.n_embd;
    const char *saved = b->prefix;
    b->prefix = "";
    int rc = 0;
    for (int t = 0; t < RWKV_TASK_COUNT && rc == 0; t++) {
        const char *h = rwkv_embed_task_head((rwkv_embed_task)t);
        int any = 0;
        static const char *const parts[] = {"fc1.weight", "fc2.weight", "norm.weight",
                                            "norm.bias"};
        for (int p = 0; p < 4; p++) {
            char name[64];
            snprintf(name, sizeof name, "head.%s_head.%s", h, parts[p]);
            any |= rwkv_tensor_file_find(b->f, name) != NULL;
        }
        if (!any)
            continue;
        for (int p = 0; p < 2; p++) {
            char name[64];
            snprintf(name, sizeof name, "head.%s_head.%s", h, parts[p]);
            const rwkv_tensor *w = rwkv_tensor_file_find(b->f, name);
            if (w && (w->ndim != 2 || w->shape[0] != C || w->shape[1] != C)) {
                rc = rwkv_fail(err, "%s: tensor '%s' must be (%d, %d)",
                               rwkv_tensor_file_path(b->f), name, C, C);
                break;
            }
        }
        if (rc != 0)
            break;
        rwkv_task_head *th = &m->task_heads[t];
        if (!(th->fc1 = rwkv_bind_vec(b, err, (int64_t)C * C, "head.%s_head.fc1.weight", h)) ||
            !(th->fc2 = rwkv_bind_vec(b, err, (int64_t)C * C, "head.%s_head.fc2.weight", h)) ||
            !(th->norm_w = rwkv_bind_vec(b, err, C, "head.%s_head.norm.weight", h)) ||
            !(th->norm_b = rwkv_bind_vec(b, err, C, "head.%s_head.norm.bias", h))) {
            rc = -1;
            break;
        }
        m->info.embed_tasks |= 1u << t;
    }
    b->prefix = saved;
    if (rc == 0 && !m->info.embed_tasks)
        rc = rwkv_fail(err, "%s: an EmbeddingRWKV checkpoint without a complete task head",
                       rwkv_tensor_file_path(b->f));
    return rc;
}
