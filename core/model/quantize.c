/* quantize.c — an int8 file from a loaded model; see core/quantize.h.
 *
 * The conversions are lowp_weights.c's own (rwkv_lowp_form decides which
 * matrices and to what, rwkv_lowp_convert converts), applied to the
 * matrices the loader bound (model->bound), so the file cannot drift from
 * what an engine makes.  All conversions are held until the file is
 * written: about the size of the output file in memory. */
#include "core/quantize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine/lowp_weights.h"
#include "core/model/model_internal.h"
#include "core/safetensors_writer.h"

typedef struct job {
    rwkv_st_entry *e;       /* n_e entries */
    size_t n_e;
    rwkv_lowp_matrix **lm;  /* conversions, freed at the end */
    size_t n_lm;
    void **mem;             /* unpadded int8 copies and scale names */
    size_t n_mem;
} job;

static void *keep(job *j, void *p)
{
    if (p)
        j->mem[j->n_mem++] = p;
    return p;
}

static const struct rwkv_bound_matrix *bound_of(const rwkv_model *m, const rwkv_tensor *t)
{
    for (size_t i = 0; i < m->n_bound; i++)
        if (m->bound[i].t == t)
            return &m->bound[i];
    return NULL;
}

static int entry_rank(rwkv_dtype d)
{
    return d == RWKV_F32 ? 0 : d == RWKV_I8 ? 2 : 1;
}

/* Appends t's entries (converted, or as it is) to j. */
static int add_tensor(job *j, const rwkv_model *m, const rwkv_tensor *t,
                      rwkv_quantize_stats *st, rwkv_error *err)
{
    const char *path = rwkv_tensor_file_path(m->file);
    rwkv_st_entry *e = &j->e[j->n_e];
    *e = (rwkv_st_entry){.name = t->name, .dtype = t->dtype, .ndim = t->ndim, .data = t->data};
    memcpy(e->shape, t->shape, sizeof e->shape);
    const struct rwkv_bound_matrix *b = bound_of(m, t);
    rwkv_precision form = b ? rwkv_lowp_form(m, RWKV_PRECISION_INT8, &b->mat)
                            : RWKV_PRECISION_FP32;
    if (form == RWKV_PRECISION_FP32) {
        j->n_e++;
        st->kept_tensors++;
        return 0;
    }
    rwkv_lowp_matrix *lm = rwkv_lowp_convert(&b->mat, form, NULL);
    if (!lm)
        return rwkv_fail(err, "%s: out of memory converting '%s'", path, t->name);
    j->lm[j->n_lm++] = lm;
    size_t rows = (size_t)lm->rows, cols = (size_t)lm->cols;
    if (lm->precision == RWKV_PRECISION_BF16) {
        e->dtype = RWKV_BF16;
        e->data = lm->bf16;
        j->n_e++;
        st->bf16_matrices++;
        return 0;
    }
    for (size_t r = 0; r < rows; r++)
        if (isnan(lm->scale[r]))
            return rwkv_fail(err, "%s: tensor '%s' row %zu holds a NaN or infinite weight, "
                                  "which int8 cannot represent; refusing to quantize",
                             path, t->name, r);
    /* int8: rows unpadded in the file (kp > cols only on tiny models) */
    const int8_t *q = lm->q;
    if ((size_t)lm->kp != cols) {
        int8_t *u = keep(j, malloc(rows * cols));
        if (!u)
            return rwkv_fail(err, "%s: out of memory converting '%s'", path, t->name);
        for (size_t r = 0; r < rows; r++)
            memcpy(u + r * cols, lm->q + r * (size_t)lm->kp, cols);
        q = u;
    }
    size_t nl = strlen(t->name) + sizeof RWKV_QUANT_SCALE_SUFFIX;
    char *sname = keep(j, malloc(nl));
    if (!sname)
        return rwkv_fail(err, "%s: out of memory", path);
    snprintf(sname, nl, "%s" RWKV_QUANT_SCALE_SUFFIX, t->name);
    if (rwkv_tensor_file_find(m->file, sname))
        return rwkv_fail(err, "%s: tensor '%s' exists; it would clash with the scales of '%s'",
                         path, sname, t->name);
    e->dtype = RWKV_I8;
    e->data = q;
    j->e[j->n_e + 1] = (rwkv_st_entry){.name = sname, .dtype = RWKV_F32, .ndim = 1,
                                       .shape = {(int64_t)rows}, .data = lm->scale};
    j->n_e += 2;
    st->int8_matrices++;
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const rwkv_st_entry *x = *(rwkv_st_entry *const *)a, *y = *(rwkv_st_entry *const *)b;
    int rx = entry_rank(x->dtype), ry = entry_rank(y->dtype);
    if (rx != ry)
        return rx - ry;
    return (x > y) - (x < y); /* stable: the source's order within a group */
}

int rwkv_quantize_model(const rwkv_model *m, const char *source_sha256, const char *path,
                        void **img, size_t *len, rwkv_quantize_stats *stats, rwkv_error *err)
{
    const char *src = rwkv_tensor_file_path(m->file);
    rwkv_quantize_stats st = {0};
    if (m->info.int8_quantized)
        return rwkv_fail(err, "%s: already int8-quantized (written by rwkv quantize); quantize "
                              "its source instead",
                         src);
    size_t n = rwkv_tensor_file_count(m->file);
    job j = {0};
    rwkv_st_entry *sorted = NULL;
    rwkv_st_entry **order = NULL;
    int rc = -1;
    j.e = calloc(2 * n + 1, sizeof *j.e);
    j.lm = calloc(n + 1, sizeof *j.lm);
    j.mem = calloc(2 * n + 1, sizeof *j.mem);
    order = calloc(2 * n + 1, sizeof *order);
    sorted = calloc(2 * n + 1, sizeof *sorted);
    if (!j.e || !j.lm || !j.mem || !order || !sorted) {
        rwkv_fail(err, "%s: out of memory", src);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (add_tensor(&j, m, rwkv_tensor_file_at(m->file, i), &st, err) != 0)
            goto out;
    if (!st.int8_matrices) {
        rwkv_fail(err, "%s: no matrix an int8 engine makes int8 (FFN, head): nothing to "
                       "quantize",
                  src);
        goto out;
    }
    for (size_t i = 0; i < j.n_e; i++)
        order[i] = &j.e[i];
    qsort(order, j.n_e, sizeof *order, cmp_entry);
    for (size_t i = 0; i < j.n_e; i++) {
        sorted[i] = *order[i];
        size_t numel = 1;
        for (int d = 0; d < sorted[i].ndim; d++)
            numel *= (size_t)sorted[i].shape[d];
        st.file_bytes += numel * rwkv_dtype_size(sorted[i].dtype);
    }
    const char *sha = source_sha256 ? source_sha256 : "unknown";
    const char *meta[] = {RWKV_QUANT_META_KIND, "int8",
                          RWKV_QUANT_META_VERSION, RWKV_QUANT_FORMAT_VERSION,
                          RWKV_QUANT_META_SOURCE, sha};
    rc = path ? rwkv_safetensors_write_meta(path, sorted, j.n_e, meta, 3, err)
              : rwkv_safetensors_serialize_meta(sorted, j.n_e, meta, 3, img, len, err);
out:
    for (size_t i = 0; i < j.n_lm; i++)
        rwkv_lowp_matrix_free(j.lm[i]);
    for (size_t i = 0; i < j.n_mem; i++)
        free(j.mem[i]);
    free(j.e);
    free(j.lm);
    free(j.mem);
    free(order);
    free(sorted);
    if (rc == 0 && stats)
        *stats = st;
    return rc;
}
