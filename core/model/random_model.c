/* random_model.c — generating random-weight RWKV-7 checkpoints (see
 * random_model.h for what and why).
 *
 * One plan (plan_model) lists every tensor with its name, shape and a small
 * recipe (uniform around a centre, or one of the official initialisation
 * formulas); parameter counts, byte sizes and the generator all walk that
 * same list, so they cannot drift apart.  Values are produced in float in
 * chunks and converted to the stored dtype with round-to-nearest-even; two
 * 24-bit uniforms come from each 64-bit xoshiro draw, so a 190M-parameter
 * model is a fraction of a second of arithmetic.
 */
#include "core/random_model.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/safetensors_writer.h"
#include "core/engine/simd.h"

enum recipe_kind {
    R_UNIFORM, /* centre + uniform with standard deviation `sigma` */
    R_MIX,     /* token-shift mix: 1 - ((c/C)^a + b) */
    R_DECAY,   /* w0: -7 + 5 (c/(C-1))^(0.85 + sqrt(a)) + 0.5 */
};

typedef struct plan_item {
    char name[48];
    int ndim;
    int64_t shape[3];
    size_t numel;
    enum recipe_kind kind;
    float centre, sigma; /* R_UNIFORM */
    double a, b;         /* R_MIX, R_DECAY */
} plan_item;

typedef struct plan {
    plan_item *items;
    size_t n, cap;
} plan;

/* ---- shape strings and checks ---- */

int rwkv_random_model_parse_shape(const char *shape, rwkv_random_model_spec *spec,
                                  rwkv_error *err)
{
    static const char letters[] = "LDHV";
    long long val[4] = {-1, -1, -1, -1};
    const char *p = shape;
    if (!*p)
        return rwkv_fail(err, "shape '': expected e.g. L12-D768-H64-V65536");
    for (;;) {
        const char *which = strchr(letters, *p);
        if (!*p || !which)
            return rwkv_fail(err, "shape '%s': at offset %zu: expected one of L, D, H, V",
                             shape, (size_t)(p - shape));
        int f = (int)(which - letters);
        if (val[f] >= 0)
            return rwkv_fail(err, "shape '%s': %c given twice", shape, *p);
        p++;
        if (*p < '0' || *p > '9')
            return rwkv_fail(err, "shape '%s': at offset %zu: expected a decimal number",
                             shape, (size_t)(p - shape));
        long long v = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p - '0');
            if (v > INT_MAX)
                return rwkv_fail(err, "shape '%s': %c is too large", shape, letters[f]);
            p++;
        }
        val[f] = v;
        if (!*p)
            break;
        if (*p != '-')
            return rwkv_fail(err, "shape '%s': at offset %zu: expected '-'", shape,
                             (size_t)(p - shape));
        p++;
    }
    for (int f = 0; f < 4; f++)
        if (val[f] < 0)
            return rwkv_fail(err, "shape '%s': %c is missing (expected e.g. L12-D768-H64-V65536)",
                             shape, letters[f]);
    spec->n_layer = (int)val[0];
    spec->n_embd = (int)val[1];
    spec->head_size = (int)val[2];
    spec->vocab_size = (int)val[3];
    return 0;
}

static int ffn_of(const rwkv_random_model_spec *s)
{
    return s->ffn_dim ? s->ffn_dim : 4 * s->n_embd;
}

static int lora_dim(int C, double c, double e)
{
    double r = nearbyint(c * pow((double)C, e) / 32.0) * 32.0; /* ties to even */
    return r < 32 ? 32 : (int)r;
}

void rwkv_random_model_lora_dims(int n_embd, int *w, int *a, int *v, int *g)
{
    *w = lora_dim(n_embd, 1.8, 0.5);
    *a = lora_dim(n_embd, 1.8, 0.5);
    *v = lora_dim(n_embd, 1.3, 0.5);
    *g = lora_dim(n_embd, 0.6, 0.8);
}

/* ---- the plan ---- */

static plan_item *add(plan *pl, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2)
{
    if (pl->n == pl->cap) {
        size_t cap = pl->cap ? pl->cap * 2 : 64;
        plan_item *items = realloc(pl->items, cap * sizeof *items);
        if (!items)
            return NULL;
        pl->items = items;
        pl->cap = cap;
    }
    plan_item *it = &pl->items[pl->n++];
    memset(it, 0, sizeof *it);
    snprintf(it->name, sizeof it->name, "%s", name);
    it->ndim = ndim;
    it->shape[0] = d0;
    it->shape[1] = d1;
    it->shape[2] = d2;
    it->numel = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1) * (size_t)(ndim > 2 ? d2 : 1);
    it->kind = R_UNIFORM;
    return it;
}

#define ADD(pl, ndim, d0, d1, d2, ...)                                                    \
    do {                                                                                  \
        char nm_[48];                                                                     \
        snprintf(nm_, sizeof nm_, __VA_ARGS__);                                           \
        if (!(it = add(pl, nm_, ndim, d0, d1, d2)))                                       \
            return -1;                                                                    \
    } while (0)

static void uni(plan_item *it, float centre, float sigma)
{
    it->kind = R_UNIFORM;
    it->centre = centre;
    it->sigma = sigma;
}

static void mix(plan_item *it, double a, double b)
{
    it->kind = R_MIX;
    it->a = a;
    it->b = b;
}

/* -1 only when memory runs out.  The spec must be valid. */
static int plan_model(const rwkv_random_model_spec *s, plan *pl)
{
    const int L = s->n_layer, C = s->n_embd, N = s->head_size, H = C / N, V = s->vocab_size;
    const int F = ffn_of(s);
    int Dw, Da, Dv, Dg;
    rwkv_random_model_lora_dims(C, &Dw, &Da, &Dv, &Dg);
    const float inv_c = 1.0f / sqrtf((float)C);
    plan_item *it;
    memset(pl, 0, sizeof *pl);

    ADD(pl, 2, V, C, 0, "emb.weight");
    uni(it, 0.0f, 1.0f);
    for (int i = 0; i < L; i++) {
        const double r01 = L > 1 ? (double)i / (L - 1) : 0.0; /* 0 -> 1 over depth */
        const double r10 = 1.0 - (double)i / L;               /* 1 -> almost 0 */
        ADD(pl, 1, C, 0, 0, "blocks.%d.ln1.weight", i);
        uni(it, 1.0f, 0.05f);
        ADD(pl, 1, C, 0, 0, "blocks.%d.ln1.bias", i);
        uni(it, 0.0f, 0.02f);
        ADD(pl, 1, C, 0, 0, "blocks.%d.ln2.weight", i);
        uni(it, 1.0f, 0.05f);
        ADD(pl, 1, C, 0, 0, "blocks.%d.ln2.bias", i);
        uni(it, 0.0f, 0.02f);
        if (i == 0) {
            ADD(pl, 1, C, 0, 0, "blocks.0.ln0.weight");
            uni(it, 1.0f, 0.05f);
            ADD(pl, 1, C, 0, 0, "blocks.0.ln0.bias");
            uni(it, 0.0f, 0.02f);
        }
        ADD(pl, 3, 1, 1, C, "blocks.%d.att.x_r", i);
        mix(it, 0.2 * r10, 0.0);
        ADD(pl, 3, 1, 1, C, "blocks.%d.att.x_w", i);
        mix(it, 0.9 * r10, 0.0);
        ADD(pl, 3, 1, 1, C, "blocks.%d.att.x_k", i);
        mix(it, 0.9 * r10, 0.4 * r01);
        ADD(pl, 3, 1, 1, C, "blocks.%d.att.x_v", i);
        mix(it, 0.4 * r10, 0.6 * r01);
        ADD(pl, 3, 1, 1, C, "blocks.%d.att.x_a", i);
        mix(it, 0.9 * r10, 0.0);
        ADD(pl, 3, 1, 1, C, "blocks.%d.att.x_g", i);
        mix(it, 0.2 * r10, 0.0);
        /* LoRAs: first factor std 1/sqrt(C) (its input is LayerNorm output),
         * second factor small enough that the LoRA only perturbs its bias. */
        ADD(pl, 2, C, Dw, 0, "blocks.%d.att.w1", i);
        uni(it, 0.0f, inv_c);
        ADD(pl, 2, Dw, C, 0, "blocks.%d.att.w2", i);
        uni(it, 0.0f, 0.5f / sqrtf((float)Dw));
        ADD(pl, 3, 1, 1, C, "blocks.%d.att.w0", i);
        it->kind = R_DECAY;
        it->a = r01;
        ADD(pl, 2, C, Da, 0, "blocks.%d.att.a1", i);
        uni(it, 0.0f, inv_c);
        ADD(pl, 2, Da, C, 0, "blocks.%d.att.a2", i);
        uni(it, 0.0f, 0.5f / sqrtf((float)Da));
        ADD(pl, 3, 1, 1, C, "blocks.%d.att.a0", i);
        uni(it, 0.0f, 0.1f);
        if (i > 0) {
            ADD(pl, 2, C, Dv, 0, "blocks.%d.att.v1", i);
            uni(it, 0.0f, inv_c);
            ADD(pl, 2, Dv, C, 0, "blocks.%d.att.v2", i);
            uni(it, 0.0f, 0.5f / sqrtf((float)Dv));
            ADD(pl, 3, 1, 1, C, "blocks.%d.att.v0", i);
            uni(it, 1.0f, 0.1f);
        }
        ADD(pl, 2, C, Dg, 0, "blocks.%d.att.g1", i);
        uni(it, 0.0f, inv_c);
        ADD(pl, 2, Dg, C, 0, "blocks.%d.att.g2", i);
        uni(it, 0.0f, 1.0f / sqrtf((float)Dg));
        ADD(pl, 3, 1, 1, C, "blocks.%d.att.k_k", i);
        uni(it, 0.85f, 0.05f);
        ADD(pl, 3, 1, 1, C, "blocks.%d.att.k_a", i);
        uni(it, 1.0f, 0.05f);
        ADD(pl, 2, H, N, 0, "blocks.%d.att.r_k", i);
        uni(it, 0.0f, 0.1f);
        ADD(pl, 2, C, C, 0, "blocks.%d.att.receptance.weight", i);
        uni(it, 0.0f, inv_c);
        ADD(pl, 2, C, C, 0, "blocks.%d.att.key.weight", i);
        uni(it, 0.0f, inv_c);
        ADD(pl, 2, C, C, 0, "blocks.%d.att.value.weight", i);
        uni(it, 0.0f, inv_c);
        ADD(pl, 2, C, C, 0, "blocks.%d.att.output.weight", i);
        uni(it, 0.0f, inv_c);
        ADD(pl, 1, C, 0, 0, "blocks.%d.att.ln_x.weight", i);
        uni(it, (float)pow((1.0 + i) / L, 0.7), 0.02f);
        ADD(pl, 1, C, 0, 0, "blocks.%d.att.ln_x.bias", i);
        uni(it, 0.0f, 0.02f);
        ADD(pl, 3, 1, 1, C, "blocks.%d.ffn.x_k", i);
        mix(it, pow(r10, 4.0), 0.0);
        ADD(pl, 2, F, C, 0, "blocks.%d.ffn.key.weight", i);
        uni(it, 0.0f, inv_c);
        ADD(pl, 2, C, F, 0, "blocks.%d.ffn.value.weight", i);
        uni(it, 0.0f, 0.5f / sqrtf((float)F));
    }
    ADD(pl, 1, C, 0, 0, "ln_out.weight");
    uni(it, 1.0f, 0.05f);
    ADD(pl, 1, C, 0, 0, "ln_out.bias");
    uni(it, 0.0f, 0.02f);
    ADD(pl, 2, V, C, 0, "head.weight");
    uni(it, 0.0f, inv_c);
    return 0;
}

int rwkv_random_model_check(const rwkv_random_model_spec *s, rwkv_error *err)
{
    if (s->n_layer < 1 || s->n_layer > 4096)
        return rwkv_fail(err, "random model: n_layer %d out of range 1..4096", s->n_layer);
    if (s->head_size < 1 || s->head_size > 4096)
        return rwkv_fail(err, "random model: head size %d out of range 1..4096", s->head_size);
    if (s->n_embd < 1 || s->n_embd > 65536 || s->n_embd % s->head_size != 0)
        return rwkv_fail(err, "random model: n_embd %d must be in 1..65536 and a multiple of "
                         "the head size %d", s->n_embd, s->head_size);
    if (s->vocab_size < 1 || s->vocab_size > (1 << 24))
        return rwkv_fail(err, "random model: vocab size %d out of range 1..16777216",
                         s->vocab_size);
    if (s->ffn_dim < 0 || s->ffn_dim > 1 << 20)
        return rwkv_fail(err, "random model: ffn width %d out of range 1..1048576 (0: 4*D)",
                         s->ffn_dim);
    if (s->dtype != RWKV_F32 && s->dtype != RWKV_F16 && s->dtype != RWKV_BF16)
        return rwkv_fail(err, "random model: unknown dtype %d", (int)s->dtype);
    /* Every count below is bounded: L*(a few C^2 + C*F) + 2*V*C < 2^64, so
     * this one check in 64-bit arithmetic covers size_t on 64-bit hosts. */
    const uint64_t L = (uint64_t)s->n_layer, C = (uint64_t)s->n_embd,
                   F = (uint64_t)ffn_of(s), V = (uint64_t)s->vocab_size;
    uint64_t approx = (2 * V * C + L * (4 * C * C + 2 * C * F + 1024 * C)) * 4;
    if (approx > (uint64_t)SIZE_MAX / 2)
        return rwkv_fail(err, "random model: %llu bytes do not fit in memory on this host",
                         (unsigned long long)approx);
    return 0;
}

size_t rwkv_random_model_params(const rwkv_random_model_spec *spec)
{
    plan pl;
    size_t n = 0;
    if (rwkv_random_model_check(spec, NULL) != 0)
        return 0;
    if (plan_model(spec, &pl) != 0) {
        free(pl.items);
        return 0;
    }
    for (size_t i = 0; i < pl.n; i++)
        n += pl.items[i].numel;
    free(pl.items);
    return n;
}

size_t rwkv_random_model_bytes(const rwkv_random_model_spec *spec)
{
    return rwkv_random_model_params(spec) * rwkv_dtype_size(spec->dtype);
}

/* ---- values ---- */

/* float -> IEEE half, round to nearest even; overflow gives inf. */
static uint16_t f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u)
        return sign | 0x7c00u | (x > 0x7f800000u ? 0x200u : 0u);
    if (x >= 0x477ff000u) /* >= 65520 rounds to inf */
        return sign | 0x7c00u;
    if (x < 0x38800000u) { /* below 2^-14: subnormal half */
        float a;
        memcpy(&a, &x, sizeof a);
        return sign | (uint16_t)lrintf(a * 0x1p24f);
    }
    uint32_t r = x + 0xfffu + ((x >> 13) & 1u);
    return sign | (uint16_t)((r >> 13) - (112u << 10));
}

static void store(void *dst, rwkv_dtype dt, size_t at, const float *v, size_t n)
{
    switch (dt) {
    case RWKV_F32:
        memcpy((float *)dst + at, v, n * sizeof *v);
        break;
    case RWKV_BF16: {
        uint16_t *d = (uint16_t *)dst + at;
        for (size_t i = 0; i < n; i++)
            d[i] = rwkv_f32_to_bf16(v[i]);
        break;
    }
    case RWKV_F16: {
        uint16_t *d = (uint16_t *)dst + at;
        for (size_t i = 0; i < n; i++)
            d[i] = f32_to_f16(v[i]);
        break;
    }
    case RWKV_I8: /* refused by rwkv_random_model_check */
        break;
    }
}

static void generate(const plan_item *it, int C, uint64_t seed, size_t index, rwkv_dtype dt,
                     void *dst)
{
    enum { CHUNK = 4096 };
    float buf[CHUNK];
    rwkv_rng rng;
    uint64_t mixer = seed;
    uint64_t key = rwkv_splitmix64(&mixer) + (uint64_t)index;
    rwkv_rng_seed(&rng, key);
    const float half_width = it->sigma * 1.7320508f; /* uniform(-h, h) has std h/sqrt(3) */
    for (size_t at = 0; at < it->numel; at += CHUNK) {
        size_t n = it->numel - at < CHUNK ? it->numel - at : CHUNK;
        switch (it->kind) {
        case R_UNIFORM:
            for (size_t i = 0; i < n; i += 2) {
                uint64_t x = rwkv_rng_next(&rng);
                float u0 = (float)(x >> 40) * 0x1p-24f, u1 = (float)(x & 0xffffffu) * 0x1p-24f;
                buf[i] = it->centre + half_width * (2.0f * u0 - 1.0f);
                if (i + 1 < n)
                    buf[i + 1] = it->centre + half_width * (2.0f * u1 - 1.0f);
            }
            break;
        case R_MIX:
            for (size_t i = 0; i < n; i++) {
                double ddd = (double)((at + i) % (size_t)C) / C;
                buf[i] = (float)(1.0 - (pow(ddd, it->a) + it->b));
            }
            break;
        case R_DECAY:
            for (size_t i = 0; i < n; i++) {
                size_t c = (at + i) % (size_t)C;
                double t = C > 1 ? (double)c / (C - 1) : 0.0;
                buf[i] = (float)(-7.0 + 5.0 * pow(t, 0.85 + sqrt(it->a)) + 0.5);
            }
            break;
        }
        store(dst, dt, at, buf, n);
    }
}

/* Builds every tensor in one buffer; on success the caller frees
 * entries, names (inside pl) and *data. */
static int build(const rwkv_random_model_spec *spec, plan *pl, rwkv_st_entry **entries,
                 void **data, rwkv_error *err)
{
    *entries = NULL;
    *data = NULL;
    if (rwkv_random_model_check(spec, err) != 0)
        return -1;
    if (plan_model(spec, pl) != 0) {
        free(pl->items);
        return rwkv_fail(err, "random model: out of memory");
    }
    const size_t es = rwkv_dtype_size(spec->dtype);
    size_t total = 0;
    for (size_t i = 0; i < pl->n; i++)
        total += (pl->items[i].numel * es + 63) & ~(size_t)63;
    rwkv_st_entry *e = calloc(pl->n, sizeof *e);
    char *buf = malloc(total ? total : 1);
    if (!e || !buf) {
        free(e);
        free(buf);
        free(pl->items);
        return rwkv_fail(err, "random model: out of memory for %zu bytes of weights", total);
    }
    size_t off = 0;
    for (size_t i = 0; i < pl->n; i++) {
        const plan_item *it = &pl->items[i];
        generate(it, spec->n_embd, spec->seed, i, spec->dtype, buf + off);
        e[i].name = it->name;
        e[i].dtype = spec->dtype;
        e[i].ndim = it->ndim;
        for (int d = 0; d < it->ndim; d++)
            e[i].shape[d] = it->shape[d];
        e[i].data = buf + off;
        off += (it->numel * es + 63) & ~(size_t)63;
    }
    *entries = e;
    *data = buf;
    return 0;
}

int rwkv_random_model_write(const rwkv_random_model_spec *spec, const char *path,
                            rwkv_error *err)
{
    plan pl;
    rwkv_st_entry *e;
    void *data;
    if (build(spec, &pl, &e, &data, err) != 0)
        return -1;
    int rc = rwkv_safetensors_write(path, e, pl.n, err);
    free(e);
    free(data);
    free(pl.items);
    return rc;
}

int rwkv_random_model_serialize(const rwkv_random_model_spec *spec, void **out,
                                size_t *out_len, rwkv_error *err)
{
    plan pl;
    rwkv_st_entry *e;
    void *data;
    *out = NULL;
    *out_len = 0;
    if (build(spec, &pl, &e, &data, err) != 0)
        return -1;
    int rc = rwkv_safetensors_serialize(e, pl.n, out, out_len, err);
    free(e);
    free(data);
    free(pl.items);
    return rc;
}
