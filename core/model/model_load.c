/* model_load.c — recognising the generation of a checkpoint and building a
 * model from it (the per-generation weight binding is in the arch files). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/model_internal.h"
#include "core/quantize.h"

const char *rwkv_generation_name(rwkv_generation g)
{
    switch (g) {
    case RWKV_GEN_V4:
        return "RWKV-4";
    case RWKV_GEN_V5_0:
        return "RWKV-5.0";
    case RWKV_GEN_V5_1:
        return "RWKV-5.1";
    case RWKV_GEN_V5_2:
        return "RWKV-5.2";
    case RWKV_GEN_V6:
        return "RWKV-6";
    case RWKV_GEN_V7:
        return "RWKV-7 (x070)";
    }
    return "unknown";
}

static const rwkv_arch *arch_for(rwkv_generation g)
{
    switch (g) {
    case RWKV_GEN_V4:
        return &rwkv_arch_v4;
    case RWKV_GEN_V5_0:
        return &rwkv_arch_v5_0;
    case RWKV_GEN_V5_1:
        return &rwkv_arch_v5_1;
    case RWKV_GEN_V5_2:
        return &rwkv_arch_v5_2;
    case RWKV_GEN_V6:
        return &rwkv_arch_v6;
    case RWKV_GEN_V7:
        return &rwkv_arch_v7;
    default:
        return NULL;
    }
}

/* True when some tensor name starts with "blocks.0." and contains `part`. */
static int block0_has(const rwkv_tensor_file *f, const char *part)
{
    size_t n = rwkv_tensor_file_count(f);
    for (size_t i = 0; i < n; i++) {
        const char *name = rwkv_tensor_file_at(f, i)->name;
        if (strncmp(name, "blocks.0.", 9) == 0 && strstr(name + 9, part))
            return 1;
    }
    return 0;
}

static void list_some_names(const rwkv_tensor_file *f, char *buf, size_t cap)
{
    size_t n = rwkv_tensor_file_count(f), used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && i < 4 && used + 1 < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? ", " : "",
                                 rwkv_tensor_file_at(f, i)->name);
    if (n > 4 && used + 1 < cap)
        snprintf(buf + used, cap - used, ", ...");
}

int rwkv_detect_generation(const rwkv_tensor_file *f, rwkv_generation *gen, rwkv_error *err)
{
    const char *path = rwkv_tensor_file_path(f);
    if (rwkv_is_embedding_checkpoint(f)) {
        /* rwkv-emb's body is always x070; anything else is a variant we do
         * not know how it was trained to pool */
        if (!rwkv_tensor_file_find(f, "rwkv.blocks.0.att.r_k") ||
            !rwkv_tensor_file_find(f, "rwkv.blocks.0.att.k_k"))
            return rwkv_fail(err,
                             "%s: an EmbeddingRWKV checkpoint (rwkv.emb.weight and task heads) "
                             "whose body is not RWKV-7: no rwkv.blocks.0.att.r_k / k_k",
                             path);
        *gen = RWKV_GEN_V7;
        return 0;
    }
    if (!rwkv_tensor_file_find(f, "emb.weight") || !rwkv_tensor_file_find(f, "head.weight") ||
        !block0_has(f, "")) {
        char names[200];
        list_some_names(f, names, sizeof names);
        return rwkv_fail(err,
                         "%s: not an RWKV checkpoint: no emb.weight / blocks.0.* / head.weight "
                         "tensors (it has %zu tensors: %s)",
                         path, rwkv_tensor_file_count(f), names);
    }
    if (rwkv_tensor_file_find(f, "blocks.0.att.k_k") || rwkv_tensor_file_find(f, "blocks.0.att.r_k")) {
        *gen = RWKV_GEN_V7;
        return 0;
    }
    /* the v4-v6 rules of the official loader, in its order */
    rwkv_generation g = RWKV_GEN_V4;
    if (block0_has(f, "ln_x"))
        g = RWKV_GEN_V5_0;
    if (block0_has(f, "gate.weight"))
        g = RWKV_GEN_V5_1;
    if (g == RWKV_GEN_V5_0 || g == RWKV_GEN_V5_1) {
        const rwkv_tensor *td = rwkv_tensor_file_find(f, "blocks.0.att.time_decay");
        int64_t d[RWKV_TENSOR_MAX_DIMS];
        if (td && rwkv_squeezed_shape(td, d) == 2 && d[1] > 1)
            g = RWKV_GEN_V5_2;
    }
    if (block0_has(f, "time_maa"))
        g = RWKV_GEN_V6;
    *gen = g;
    return 0;
}

/* Layers are blocks.<i>.* under the body's prefix. */
static int count_layers(const rwkv_tensor_file *f, const char *prefix, rwkv_error *err)
{
    long max_layer = -1;
    size_t n = rwkv_tensor_file_count(f), pl = strlen(prefix);
    for (size_t i = 0; i < n; i++) {
        const char *name = rwkv_tensor_file_at(f, i)->name;
        if (strncmp(name, prefix, pl) != 0 || strncmp(name + pl, "blocks.", 7) != 0)
            continue;
        char *end;
        long l = strtol(name + pl + 7, &end, 10);
        if (end == name + pl + 7 || *end != '.' || l < 0 || l > 4096)
            return rwkv_fail(err, "%s: tensor name '%s' has no valid layer index",
                             rwkv_tensor_file_path(f), name);
        if (l > max_layer)
            max_layer = l;
    }
    return (int)(max_layer + 1);
}

void rwkv_model_free(rwkv_model *m)
{
    if (!m)
        return;
    if (m->arch && m->arch->free_layers)
        m->arch->free_layers(m);
    for (size_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->bound);
    rwkv_tensor_file_close(m->file);
    free(m);
}

/* An int8 file is recognised by its content: I8 matrices (with their
 * scales, model_bind.c) and the metadata `rwkv quantize` writes; one
 * without the other is refused (a file that claims what it does not hold,
 * or int8 data of unknown making). */
static int check_quantized(const rwkv_tensor_file *f, size_t n_q8, rwkv_error *err)
{
    const char *path = rwkv_tensor_file_path(f);
    const char *q = rwkv_tensor_file_meta(f, RWKV_QUANT_META_KIND);
    const char *v = rwkv_tensor_file_meta(f, RWKV_QUANT_META_VERSION);
    if (!q && !n_q8)
        return 0;
    if (!q)
        return rwkv_fail(err,
                         "%s: holds %zu int8 (I8) matrices but no \"" RWKV_QUANT_META_KIND
                         "\" metadata: not a file `rwkv quantize` wrote; refusing it",
                         path, n_q8);
    if (strcmp(q, "int8") != 0)
        return rwkv_fail(err, "%s: metadata " RWKV_QUANT_META_KIND " is '%.40s'; this build "
                              "reads only int8",
                         path, q);
    if (!v || strcmp(v, RWKV_QUANT_FORMAT_VERSION) != 0)
        return rwkv_fail(err, "%s: metadata " RWKV_QUANT_META_VERSION " is '%.40s'; this "
                              "build reads version " RWKV_QUANT_FORMAT_VERSION,
                         path, v ? v : "(absent)");
    if (!n_q8)
        return rwkv_fail(err, "%s: metadata says int8-quantized (" RWKV_QUANT_META_KIND
                              ") but no matrix is int8 (I8)",
                         path);
    return 0;
}

int rwkv_model_from_tensors(rwkv_tensor_file *f, rwkv_model **out, rwkv_error *err)
{
    *out = NULL;
    const char *path = rwkv_tensor_file_path(f);
    rwkv_generation gen;
    if (rwkv_detect_generation(f, &gen, err) != 0) {
        rwkv_tensor_file_close(f);
        return -1;
    }
    const rwkv_arch *arch = arch_for(gen);
    if (!arch) {
        rwkv_fail(err,
                  "%s: %s checkpoints are recognised but not supported by this build",
                  path, rwkv_generation_name(gen));
        rwkv_tensor_file_close(f);
        return -1;
    }
    rwkv_model *m = calloc(1, sizeof *m);
    unsigned char *used = calloc(rwkv_tensor_file_count(f) + 1, 1);
    unsigned char *q8 = calloc(rwkv_tensor_file_count(f) + 1, 1);
    if (!m || !used || !q8) {
        free(m);
        free(used);
        free(q8);
        rwkv_tensor_file_close(f);
        return rwkv_fail(err, "%s: out of memory", path);
    }
    m->file = f;
    m->arch = arch;
    m->info.generation = gen;
    m->info.generation_name = rwkv_generation_name(gen);
    m->info.path = path;
    m->info.format = rwkv_tensor_file_format(f);
    int embedding = rwkv_is_embedding_checkpoint(f);
    rwkv_binder b = {.m = m, .f = f, .used = used, .q8 = q8,
                     .prefix = embedding ? "rwkv." : ""};
    m->info.has_lm_head = !embedding;

    const rwkv_tensor *emb = rwkv_bind_find(&b, "emb.weight");
    if (emb->ndim != 2 || emb->shape[0] < 1 || emb->shape[1] < 1 || emb->shape[0] > (1 << 24) ||
        emb->shape[1] > 65536) {
        rwkv_fail(err, "%s: %semb.weight must be (vocab <= 2^24, n_embd <= 65536), found %d dims",
                  path, b.prefix, emb->ndim);
        goto fail;
    }
    int V = (int)emb->shape[0], C = (int)emb->shape[1];
    m->info.vocab_size = V;
    m->info.n_embd = C;
    int L = count_layers(f, b.prefix, err);
    if (L < 0)
        goto fail;
    m->info.n_layer = L;
    if (rwkv_bind_table(&b, err, &m->emb, V, C, "emb.weight") != 0 ||
        (!embedding && rwkv_bind_matrix(&b, err, &m->head, V, C, "head.weight") != 0))
        goto fail;
    if (!(m->ln0_w = rwkv_bind_vec(&b, err, C, "blocks.0.ln0.weight")) ||
        !(m->ln0_b = rwkv_bind_vec(&b, err, C, "blocks.0.ln0.bias")) ||
        !(m->ln_out_w = rwkv_bind_vec(&b, err, C, "ln_out.weight")) ||
        !(m->ln_out_b = rwkv_bind_vec(&b, err, C, "ln_out.bias")))
        goto fail;
    if (arch->bind(m, &b, err) != 0)
        goto fail;
    if (embedding && rwkv_bind_task_heads(&b, err) != 0)
        goto fail;
    size_t n = rwkv_tensor_file_count(f), n_q8 = 0;
    for (size_t i = 0; i < n; i++) {
        const rwkv_tensor *t = rwkv_tensor_file_at(f, i);
        if (t->dtype == RWKV_I8 && q8[i] != Q8_MATRIX) {
            rwkv_fail(err,
                      "%s: tensor '%s' is int8 (I8) where rwkvd expects float weights (only "
                      "the large matrices of an `rwkv quantize` file are int8)",
                      path, t->name);
            goto fail;
        }
        if (!used[i]) {
            rwkv_fail(err,
                      "%s: tensor '%s' is not part of %s as rwkvd implements it (a variant "
                      "this engine would compute wrongly); refusing the file",
                      path, t->name, m->info.generation_name);
            goto fail;
        }
        n_q8 += q8[i] == Q8_MATRIX;
        m->info.n_params += q8[i] == Q8_SCALE ? 0 : t->numel;
        m->info.weight_bytes += t->numel * rwkv_dtype_size(t->dtype);
    }
    if (check_quantized(f, n_q8, err) != 0)
        goto fail;
    m->info.int8_quantized = n_q8 > 0;
    m->info.matrix_dtype = embedding ? m->emb.dtype : m->head.dtype;
    free(used);
    free(q8);
    *out = m;
    return 0;
fail:
    free(used);
    free(q8);
    rwkv_model_free(m);
    return -1;
}

int rwkv_model_load(const char *path, rwkv_model **out, rwkv_error *err)
{
    *out = NULL;
    rwkv_tensor_file *f;
    if (rwkv_tensor_file_open(path, &f, err) != 0)
        return -1;
    return rwkv_model_from_tensors(f, out, err);
}

const rwkv_model_info *rwkv_model_get_info(const rwkv_model *m)
{
    return &m->info;
}
