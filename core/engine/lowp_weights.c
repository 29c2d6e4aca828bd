/* lowp_weights.c — the registry of converted weight sets and the
 * conversions themselves; see lowp_weights.h. */
#include "core/engine/lowp_weights.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu_features.h"
#include "core/engine/simd.h"
#include "core/model/model_internal.h"

typedef struct {
    const void *data; /* the fp matrix this came from (key) */
    int rows, cols;
    rwkv_lowp_matrix *lm; /* NULL: stays fp32 */
} entry;

struct rwkv_lowp_weights {
    const rwkv_model *model;
    rwkv_precision precision;
    int refs;
    pthread_mutex_t lock;
    entry *tab;
    size_t n, cap; /* open addressing, cap a power of two */
    size_t bytes;
    int failed; /* conversions that ran out of memory */
    rwkv_lowp_weights *next;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static rwkv_lowp_weights *registry;

rwkv_lowp_weights *rwkv_lowp_weights_acquire(const rwkv_model *m, rwkv_precision p)
{
    pthread_mutex_lock(&registry_lock);
    rwkv_lowp_weights *w;
    for (w = registry; w; w = w->next)
        if (w->model == m && w->precision == p)
            break;
    if (w) {
        w->refs++;
    } else if ((w = calloc(1, sizeof *w))) {
        w->model = m;
        w->precision = p;
        w->refs = 1;
        pthread_mutex_init(&w->lock, NULL);
        w->next = registry;
        registry = w;
    }
    pthread_mutex_unlock(&registry_lock);
    return w;
}

void rwkv_lowp_matrix_free(rwkv_lowp_matrix *lm)
{
    if (!lm)
        return;
    if (!lm->borrowed) {
        free((void *)lm->bf16);
        free((void *)lm->q);
        free((void *)lm->scale);
    }
    free(lm);
}

void rwkv_lowp_weights_release(rwkv_lowp_weights *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&registry_lock);
    int last = --w->refs == 0;
    if (last)
        for (rwkv_lowp_weights **p = &registry; *p; p = &(*p)->next)
            if (*p == w) {
                *p = w->next;
                break;
            }
    pthread_mutex_unlock(&registry_lock);
    if (!last)
        return;
    for (size_t i = 0; i < w->cap; i++)
        if (w->tab[i].data)
            rwkv_lowp_matrix_free(w->tab[i].lm);
    free(w->tab);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

rwkv_precision rwkv_lowp_weights_precision(const rwkv_lowp_weights *w)
{
    return w->precision;
}

size_t rwkv_lowp_weights_bytes(rwkv_lowp_weights *w)
{
    pthread_mutex_lock(&w->lock);
    size_t b = w->bytes;
    pthread_mutex_unlock(&w->lock);
    return b;
}

int rwkv_lowp_weights_failed(rwkv_lowp_weights *w)
{
    pthread_mutex_lock(&w->lock);
    int f = w->failed;
    pthread_mutex_unlock(&w->lock);
    return f;
}

RWKV_CLONES
void rwkv_round_bf16(const float *src, uint16_t *dst, size_t n)
{
    RWKV_SIMD
    for (size_t i = 0; i < n; i++)
        dst[i] = rwkv_f32_to_bf16(src[i]);
}

/* One row of int8: scale = max|w| / 127 (an all-zero row gets scale 0);
 * inputs n..kp-1 are zero.  A row with a NaN or infinity has no int8 form:
 * zeros and a NaN scale, so its outputs are NaN as in fp32 (rwkv quantize
 * refuses such a model: an int8 file holds finite scales only). */
static void quantize_row(const float *w, int n, int kp, int8_t *q, float *scale)
{
    float amax = 0.0f, nonfinite = 0.0f; /* w * 0 is NaN exactly for NaN and inf */
    for (int i = 0; i < n; i++) {
        amax = fmaxf(amax, fabsf(w[i]));
        nonfinite += w[i] * 0.0f;
    }
    if (nonfinite != 0.0f) {
        memset(q, 0, (size_t)kp);
        *scale = NAN;
        return;
    }
    float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int i = 0; i < kp; i++) {
        float v = i < n ? nearbyintf(w[i] * inv) : 0.0f;
        q[i] = (int8_t)(v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v);
    }
    *scale = amax / 127.0f;
}

rwkv_precision rwkv_lowp_form(const rwkv_model *m, rwkv_precision p, const rwkv_matrix *mat)
{
    int C = m->info.n_embd;
    if (mat->rows < C || mat->cols < C)
        return RWKV_PRECISION_FP32; /* not large */
    if (p == RWKV_PRECISION_INT8 && mat->keep_bf16)
        return RWKV_PRECISION_BF16; /* the attention's receptance and key: header */
    return p;
}

rwkv_lowp_matrix *rwkv_lowp_convert(const rwkv_matrix *mat, rwkv_precision form, size_t *bytes)
{
    size_t rows = (size_t)mat->rows, cols = (size_t)mat->cols, n = rows * cols;
    size_t esz = rwkv_dtype_size(mat->dtype);
    size_t kp = (cols + RWKV_Q8_PAD - 1) / RWKV_Q8_PAD * RWKV_Q8_PAD;
    if (bytes)
        *bytes = 0;
    rwkv_lowp_matrix *lm = calloc(1, sizeof *lm);
    if (!lm)
        return NULL;
    *lm = (rwkv_lowp_matrix){.precision = form, .rows = mat->rows, .cols = mat->cols};
    if (mat->dtype == RWKV_I8) {
        /* an `rwkv quantize` file: already what the INT8 branch makes */
        if (form != RWKV_PRECISION_INT8 || !mat->scale) {
            free(lm);
            return NULL;
        }
        lm->kp = (int)kp, lm->q = mat->data, lm->scale = mat->scale, lm->borrowed = 1;
        return lm;
    }
    if (form == RWKV_PRECISION_BF16 && mat->dtype == RWKV_BF16) {
        lm->bf16 = mat->data; /* already bf16: used in place, no copy */
        lm->borrowed = 1;
        return lm;
    }
    float *row = malloc(cols * sizeof(float));
    if (!row)
        goto fail;
    if (form == RWKV_PRECISION_BF16) {
        uint16_t *b = malloc(n * sizeof *b);
        if (!b)
            goto fail;
        for (size_t r = 0; r < rows; r++) {
            rwkv_widen(mat->dtype, (const char *)mat->data + r * cols * esz, row, cols);
            rwkv_round_bf16(row, b + r * cols, cols);
        }
        lm->bf16 = b;
        if (bytes)
            *bytes = n * sizeof *b;
    } else {
        int8_t *q = malloc(rows * kp);
        float *scale = malloc(rows * sizeof *scale);
        lm->kp = (int)kp, lm->q = q, lm->scale = scale;
        if (!q || !scale)
            goto fail;
        for (size_t r = 0; r < rows; r++) {
            rwkv_widen(mat->dtype, (const char *)mat->data + r * cols * esz, row, cols);
            quantize_row(row, (int)cols, (int)kp, q + r * kp, scale + r);
        }
        if (bytes)
            *bytes = rows * kp + rows * sizeof *scale;
    }
    free(row);
    return lm;
fail:
    free(row);
    rwkv_lowp_matrix_free(lm);
    return NULL;
}

static size_t slot_of(const void *data, size_t cap)
{
    uintptr_t h = (uintptr_t)data;
    h ^= h >> 17;
    h *= 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 20) & (cap - 1);
}

static int grow(rwkv_lowp_weights *w)
{
    size_t cap = w->cap ? w->cap * 2 : 64;
    entry *t = calloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < w->cap; i++) {
        if (!w->tab[i].data)
            continue;
        size_t j = slot_of(w->tab[i].data, cap);
        while (t[j].data)
            j = (j + 1) & (cap - 1);
        t[j] = w->tab[i];
    }
    free(w->tab);
    w->tab = t;
    w->cap = cap;
    return 0;
}

const rwkv_lowp_matrix *rwkv_lowp_weights_get(rwkv_lowp_weights *w, const rwkv_matrix *mat)
{
    rwkv_precision form = rwkv_lowp_form(w->model, w->precision, mat);
    if (form == RWKV_PRECISION_FP32)
        return NULL; /* not large: stays fp32 */
    if (form == RWKV_PRECISION_BF16 &&
        rwkv_precision_check(RWKV_PRECISION_BF16, rwkv_cpu_features_get(), NULL) != 0)
        return NULL; /* an int8 engine's receptance/key on a CPU without
                        AVX512-BF16 (int8 on AVX-VNNI): the fp32 path */
    pthread_mutex_lock(&w->lock);
    const rwkv_lowp_matrix *found = NULL;
    if (w->cap) {
        for (size_t j = slot_of(mat->data, w->cap); w->tab[j].data; j = (j + 1) & (w->cap - 1))
            if (w->tab[j].data == mat->data && w->tab[j].rows == mat->rows &&
                w->tab[j].cols == mat->cols) {
                found = w->tab[j].lm;
                goto out;
            }
    }
    if ((w->n + 1) * 2 > w->cap && grow(w) != 0)
        goto out;
    /* a failed conversion is remembered as "stays fp32" (lm NULL) and
     * counted: engine creation refuses a set with failures */
    size_t bytes;
    entry e = {mat->data, mat->rows, mat->cols, rwkv_lowp_convert(mat, form, &bytes)};
    w->failed += !e.lm;
    w->bytes += bytes;
    size_t j = slot_of(mat->data, w->cap);
    while (w->tab[j].data)
        j = (j + 1) & (w->cap - 1);
    w->tab[j] = e;
    w->n++;
    found = e.lm;
out:
    pthread_mutex_unlock(&w->lock);
    return found;
}
