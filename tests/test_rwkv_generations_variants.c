/* test_rwkv_generations_variants.c — the v4-v6 checkpoint variants that
 * have no official fixture, built in memory from the fixture checkpoints
 * with the safetensors writer:
 *  - state-tuned v5.2 / v6 files (blocks.N.att.time_state): the initial
 *    state is time_state transposed to S[h][key][value], reset returns to
 *    it, and running from it equals running the plain model from that
 *    state imported (bit for bit), which differs from the zero start;
 *  - RWKV-5.1 (gate, per-head decay and time_first): recognised as 5.1 and
 *    bit-identical to the 5.2 file with the same decay and bonus repeated
 *    over each head's channels (the 5.2 path is checked against the
 *    official fixtures in test_rwkv_golden.c);
 *  - fp16 / bf16 checkpoints: bit-identical to float32 files holding the
 *    same (rounded) values;
 *  - one hand-made bad file per failure mode of the v4-v6 loaders, each
 *    refused with a message naming the tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/forward.h"
#include "core/model.h"
#include "core/safetensors_writer.h"
#include "core/engine/simd.h"
#include "core/state.h"
#include "tests/testutil.h"

#define MAX_T 512

/* ---- building a modified checkpoint in memory ---- */

typedef struct {
    rwkv_st_entry e[MAX_T];
    size_t n;
    void *owned[4 * MAX_T]; /* data buffers made by the edits */
    size_t n_owned;
} entries;

static rwkv_st_entry *find_entry(entries *es, const char *name)
{
    for (size_t i = 0; i < es->n; i++)
        if (strcmp(es->e[i].name, name) == 0)
            return &es->e[i];
    return NULL;
}

static void drop_entry(entries *es, const char *name)
{
    rwkv_st_entry *t = find_entry(es, name);
    if (t)
        *t = es->e[--es->n];
}

/* A new float32 buffer of n elements owned by es. */
static float *new_data(entries *es, size_t n)
{
    if (es->n_owned == sizeof es->owned / sizeof es->owned[0])
        abort(); /* a test bug: raise the bound */
    float *p = calloc(n ? n : 1, sizeof(float));
    es->owned[es->n_owned++] = p;
    return p;
}

/* Adds (or replaces) a float32 tensor; the name must outlive es. */
static float *put(entries *es, const char *name, int ndim, const int64_t *shape)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    rwkv_st_entry *t = find_entry(es, name);
    if (!t) {
        if (es->n == MAX_T)
            abort(); /* a test bug: raise the bound */
        t = &es->e[es->n++];
    }
    float *d = new_data(es, n);
    *t = (rwkv_st_entry){.name = name, .dtype = RWKV_F32, .ndim = ndim, .data = d};
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    return d;
}

typedef void (*edit_fn)(entries *es, void *arg);

/* A model from fixture checkpoint `rel` after `edit`; *buf keeps the
 * serialized file alive (free it after the model).  NULL with err. */
static rwkv_model *synth(const char *rel, edit_fn edit, void *arg, void **buf, rwkv_error *err)
{
    *buf = NULL;
    rwkv_tensor_file *src;
    if (rwkv_tensor_file_open(fixture_path(rel), &src, err) != 0)
        return NULL;
    if (rwkv_tensor_file_count(src) > MAX_T) {
        rwkv_tensor_file_close(src);
        rwkv_fail(err, "%s: more than %d tensors (raise MAX_T)", rel, MAX_T);
        return NULL;
    }
    entries *es = calloc(1, sizeof *es);
    for (size_t i = 0; i < rwkv_tensor_file_count(src); i++) {
        const rwkv_tensor *t = rwkv_tensor_file_at(src, i);
        rwkv_st_entry *e = &es->e[es->n++];
        *e = (rwkv_st_entry){.name = t->name, .dtype = t->dtype, .ndim = t->ndim, .data = t->data};
        memcpy(e->shape, t->shape, sizeof e->shape);
    }
    edit(es, arg);
    size_t len = 0;
    int rc = rwkv_safetensors_serialize(es->e, es->n, buf, &len, err);
    for (size_t i = 0; i < es->n_owned; i++)
        free(es->owned[i]);
    free(es);
    rwkv_tensor_file_close(src);
    rwkv_model *m = NULL;
    rwkv_tensor_file *f;
    if (rc == 0 && rwkv_tensor_file_parse("synthesized", *buf, len, &f, err) == 0)
        rwkv_model_from_tensors(f, &m, err);
    return m;
}

/* Logits of tokens [0, n) of the fixture input from `init` (NULL: the
 * model's initial state) in one block; NULL with the test failed. */
static float *run_logits(const rwkv_model *m, const uint32_t *tok, int n, const float *init)
{
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    rwkv_error err = {{0}};
    rwkv_engine *e = rwkv_engine_new(m, 0, &err);
    rwkv_state *st = rwkv_state_new(m);
    float *lg = malloc(sizeof(float) * (size_t)n * (size_t)mi->vocab_size);
    int rc = e && st && lg ? 0 : -1;
    if (rc == 0 && init)
        rc = rwkv_state_import(st, init, mi->state_floats, &err);
    rwkv_request q = {.state = st, .tokens = tok, .n_tokens = n, .logits = RWKV_LOGITS_ALL,
                      .logits_out = lg, .next_token = -1};
    if (rc == 0)
        rc = rwkv_forward(e, &q, 1, &err);
    rwkv_state_free(st);
    rwkv_engine_free(e);
    if (rc != 0) {
        test_fail_at(__FILE__, __LINE__, "forward: %s", err.msg);
        free(lg);
        return NULL;
    }
    return lg;
}

static uint32_t *input_tokens(int n)
{
    size_t len;
    unsigned char *in = fixture_read("inputs/gpl-3.first4096.bin", &len);
    if (!in || len < (size_t)n) {
        free(in);
        return NULL;
    }
    uint32_t *t = malloc(sizeof *t * (size_t)n);
    for (int i = 0; i < n; i++)
        t[i] = in[i];
    free(in);
    return t;
}

/* ---- state-tuned checkpoints ---- */

typedef struct {
    int L, H, N;
    char names[64][48];
    float *ts[64]; /* copies of what was written, for the checks */
} ts_arg;

static void add_time_state(entries *es, void *arg)
{
    ts_arg *a = arg;
    uint64_t seed = 4242;
    for (int l = 0; l < a->L; l++) {
        snprintf(a->names[l], sizeof a->names[l], "blocks.%d.att.time_state", l);
        int64_t shape[3] = {a->H, a->N, a->N};
        float *d = put(es, a->names[l], 3, shape);
        size_t n = (size_t)a->H * a->N * a->N;
        for (size_t i = 0; i < n; i++)
            d[i] = (float)((double)(test_rand(&seed) % 2001) / 1000.0 - 1.0);
        a->ts[l] = malloc(n * sizeof(float));
        memcpy(a->ts[l], d, n * sizeof(float));
    }
}

static void time_state_for(const char *rel, rwkv_generation gen)
{
    rwkv_error err = {{0}};
    rwkv_model *plain = NULL;
    CHECKF(rwkv_model_load(fixture_path(rel), &plain, &err) == 0, "%s", err.msg);
    const rwkv_model_info *pi = rwkv_model_get_info(plain);
    ts_arg a = {.L = pi->n_layer, .H = pi->n_head, .N = pi->head_size};
    void *buf;
    rwkv_model *tuned = synth(rel, add_time_state, &a, &buf, &err);
    int ok = tuned != NULL;
    if (!ok)
        test_fail_at(__FILE__, __LINE__, "state-tuned %s: %s", rel, err.msg);
    size_t S = pi->state_floats;
    float *init = malloc(S * sizeof(float)), *again = malloc(S * sizeof(float));
    uint32_t *tok = input_tokens(300);
    float *lt = NULL, *lp = NULL, *li = NULL;
    if (ok) {
        const rwkv_model_info *ti = rwkv_model_get_info(tuned);
        ok = ti->generation == gen && ti->state_floats == S;
        /* initial state: S[h][i][j] = time_state[h][j][i]; the rest 0 */
        rwkv_state *st = rwkv_state_new(tuned);
        rwkv_state_export(st, init, NULL);
        size_t C = (size_t)pi->n_embd, per = 2 * C + (size_t)a.H * a.N * a.N;
        for (int l = 0; ok && l < a.L; l++) {
            const float *s = init + (size_t)l * per;
            for (size_t i = 0; i < C; i++)
                ok = ok && s[i] == 0 && s[C + (size_t)a.H * a.N * a.N + i] == 0;
            for (int h = 0; ok && h < a.H; h++)
                for (int i = 0; i < a.N; i++)
                    for (int j = 0; j < a.N; j++) {
                        size_t hb = (size_t)h * a.N * a.N;
                        ok = ok && s[C + hb + (size_t)i * a.N + j] ==
                                       a.ts[l][hb + (size_t)j * a.N + i];
                    }
        }
        if (!ok)
            test_fail_at(__FILE__, __LINE__, "%s: initial state is not time_state transposed",
                         rel);
        /* reset returns to it after a run */
        rwkv_engine *e = rwkv_engine_new(tuned, 1, &err);
        rwkv_request q = {.state = st, .tokens = tok, .n_tokens = 5};
        ok = ok && tok && e && rwkv_forward(e, &q, 1, &err) == 0;
        rwkv_state_reset(st);
        rwkv_state_export(st, again, NULL);
        ok = ok && memcmp(init, again, S * sizeof(float)) == 0;
        rwkv_engine_free(e);
        rwkv_state_free(st);
    }
    if (ok) {
        lt = run_logits(tuned, tok, 300, NULL);
        lp = run_logits(plain, tok, 300, NULL);
        li = run_logits(plain, tok, 300, init);
        size_t n = (size_t)300 * pi->vocab_size;
        ok = lt && lp && li && memcmp(lt, li, n * sizeof(float)) == 0;
        if (!ok)
            test_fail_at(__FILE__, __LINE__, "%s: tuned model differs from plain model started "
                                             "from the same state",
                         rel);
        double d = ok ? max_abs_diff(lt, lp, n, NULL) : 0;
        if (ok && !(d > 1e-2)) {
            test_fail_at(__FILE__, __LINE__, "%s: time_state changed the logits by only %.3g",
                         rel, d);
            ok = 0;
        }
    }
    for (int l = 0; l < a.L; l++)
        free(a.ts[l]);
    free(lt);
    free(lp);
    free(li);
    free(tok);
    free(init);
    free(again);
    rwkv_model_free(tuned);
    free(buf);
    rwkv_model_free(plain);
    CHECK(ok);
}

static void test_time_state_v5_2(void)
{
    time_state_for("models/tiny-rwkv-5v2-730K.safetensors", RWKV_GEN_V5_2);
}

static void test_time_state_v6(void)
{
    time_state_for("models/tiny-rwkv-6v0-3m.pth", RWKV_GEN_V6);
}

/* ---- RWKV-5.1 ---- */

enum { V5_L = 12, V5_H = 8, V5_N = 8 };

typedef struct {
    int as_5_1; /* 1: per-head time_decay/time_first (5.1); 0: repeated (5.2) */
    char dname[V5_L][40], fname[V5_L][40];
} v51_arg;

static void make_v51(entries *es, void *arg)
{
    v51_arg *a = arg;
    for (int l = 0; l < V5_L; l++) {
        snprintf(a->dname[l], sizeof a->dname[l], "blocks.%d.att.time_decay", l);
        rwkv_st_entry *td = find_entry(es, a->dname[l]);
        float head_decay[V5_H], head_first[V5_H];
        for (int h = 0; h < V5_H; h++) {
            head_decay[h] = ((const float *)td->data)[h * V5_N + h % V5_N];
            head_first[h] = (float)(0.25 * h - 1.0 + 0.1 * l);
        }
        char faaaa[40];
        snprintf(faaaa, sizeof faaaa, "blocks.%d.att.time_faaaa", l);
        drop_entry(es, faaaa);
        if (a->as_5_1) {
            int64_t sh[1] = {V5_H};
            memcpy(put(es, a->dname[l], 1, sh), head_decay, sizeof head_decay);
            snprintf(a->fname[l], sizeof a->fname[l], "blocks.%d.att.time_first", l);
            memcpy(put(es, a->fname[l], 1, sh), head_first, sizeof head_first);
        } else {
            int64_t sh[2] = {V5_H, V5_N};
            float *d = put(es, a->dname[l], 2, sh);
            snprintf(a->fname[l], sizeof a->fname[l], "blocks.%d.att.time_faaaa", l);
            float *u = put(es, a->fname[l], 2, sh);
            for (int c = 0; c < V5_H * V5_N; c++) {
                d[c] = head_decay[c / V5_N];
                u[c] = (float)exp((double)head_first[c / V5_N]);
            }
        }
    }
}

static void test_v5_1_equals_equivalent_v5_2(void)
{
    const char *rel = "models/tiny-rwkv-5v2-730K.safetensors";
    rwkv_error err = {{0}};
    v51_arg a51 = {.as_5_1 = 1}, a52 = {.as_5_1 = 0};
    void *b51, *b52;
    rwkv_model *m51 = synth(rel, make_v51, &a51, &b51, &err);
    CHECKF(m51, "5.1 file: %s", err.msg);
    rwkv_model *m52 = synth(rel, make_v51, &a52, &b52, &err);
    rwkv_model *orig = NULL;
    rwkv_model_load(fixture_path(rel), &orig, &err);
    const rwkv_model_info *i51 = rwkv_model_get_info(m51);
    int gen_ok = i51->generation == RWKV_GEN_V5_1 && strcmp(i51->generation_name, "RWKV-5.1") == 0 &&
                 i51->n_head == V5_H && i51->head_size == V5_N;
    int n = 1000;
    uint32_t *tok = input_tokens(n);
    float *l51 = tok && m52 && orig ? run_logits(m51, tok, n, NULL) : NULL;
    float *l52 = l51 ? run_logits(m52, tok, n, NULL) : NULL;
    float *lo = l52 ? run_logits(orig, tok, n, NULL) : NULL;
    size_t cnt = (size_t)n * 256;
    int same = lo && memcmp(l51, l52, cnt * sizeof(float)) == 0;
    double d51 = lo ? max_abs_diff(l51, l52, cnt, NULL) : NAN;
    double dorig = lo ? max_abs_diff(l51, lo, cnt, NULL) : 0;
    free(l51);
    free(l52);
    free(lo);
    free(tok);
    rwkv_model_free(m51);
    rwkv_model_free(m52);
    rwkv_model_free(orig);
    free(b51);
    free(b52);
    CHECKF(gen_ok, "5.1 file recognised as %s", i51 ? i51->generation_name : "?");
    CHECKF(same, "5.1 vs equivalent 5.2 differ by %.3g", d51);
    CHECKF(dorig > 1e-3, "the 5.1 edit changed nothing (%.3g)", dorig);
}

/* ---- half-precision checkpoints ---- */

/* Real v4-v6 checkpoints ship in fp16/bf16.  Every tensor rounded to the
 * half type and stored as such must give exactly what the same rounded
 * values stored as float32 give: widening is exact, so the half path may
 * not change a bit (matrices, LoRA factors incl. time_maa_w2, vectors). */
typedef struct {
    rwkv_dtype half; /* RWKV_BF16 or RWKV_F16 */
    int store_half;  /* 1: store the half values; 0: store them widened */
} half_arg;

static uint16_t f32_to_f16(float f)
{
    /* round to nearest even; the fixtures' values are normal and small */
    uint32_t u = rwkv_f32_to_bits(f), sign = (u >> 16) & 0x8000u;
    int32_t ex = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    uint32_t man = u & 0x7fffffu;
    if ((u & 0x7fffffffu) == 0 || ex < -10)
        return (uint16_t)sign;
    if (ex <= 0) { /* subnormal half */
        man |= 0x800000u;
        int shift = 14 - ex;
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        h += rem > halfway || (rem == halfway && (h & 1));
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)ex << 10) | (man >> 13), rem = man & 0x1fffu;
    h += rem > 0x1000u || (rem == 0x1000u && (h & 1));
    return (uint16_t)(sign | (h > 0x7bffu ? 0x7bffu : h));
}

static void to_half(entries *es, void *arg)
{
    const half_arg *a = arg;
    for (size_t i = 0; i < es->n; i++) {
        rwkv_st_entry *e = &es->e[i];
        size_t n = 1;
        for (int d = 0; d < e->ndim; d++)
            n *= (size_t)e->shape[d];
        const float *src = e->data;
        uint16_t *h = (uint16_t *)new_data(es, n); /* n floats: room for n halves */
        for (size_t k = 0; k < n; k++)
            h[k] = a->half == RWKV_BF16 ? rwkv_f32_to_bf16(src[k]) : f32_to_f16(src[k]);
        if (a->store_half) {
            e->dtype = a->half;
            e->data = h;
        } else {
            float *w = new_data(es, n);
            for (size_t k = 0; k < n; k++)
                w[k] = a->half == RWKV_BF16 ? rwkv_bf16_to_f32(h[k]) : rwkv_f16_to_f32(h[k]);
            e->data = w;
        }
    }
}

static void half_for(const char *rel, rwkv_dtype half)
{
    rwkv_error err = {{0}};
    half_arg ah = {half, 1}, af = {half, 0};
    void *bh, *bf;
    rwkv_model *mh = synth(rel, to_half, &ah, &bh, &err);
    CHECKF(mh, "%s as %s: %s", rel, rwkv_dtype_name(half), err.msg);
    rwkv_model *mf = synth(rel, to_half, &af, &bf, &err);
    int dtype_ok = rwkv_model_get_info(mh)->matrix_dtype == half;
    uint32_t *tok = input_tokens(300);
    /* 300 tokens in one block (sgemm path), then 3 single tokens (GEMV) */
    float *lh = mf && tok ? run_logits(mh, tok, 300, NULL) : NULL;
    float *lf = lh ? run_logits(mf, tok, 300, NULL) : NULL;
    float *sh = lf ? run_logits(mh, tok, 1, NULL) : NULL;
    float *sf = sh ? run_logits(mf, tok, 1, NULL) : NULL;
    size_t V = 256;
    int same = sf && memcmp(lh, lf, 300 * V * sizeof(float)) == 0 &&
               memcmp(sh, sf, V * sizeof(float)) == 0;
    double d = sf ? max_abs_diff(lh, lf, 300 * V, NULL) : NAN;
    free(lh);
    free(lf);
    free(sh);
    free(sf);
    free(tok);
    rwkv_model_free(mh);
    rwkv_model_free(mf);
    free(bh);
    free(bf);
    CHECK(dtype_ok);
    CHECKF(same, "%s: %s file differs from its widened copy by %.3g", rel, rwkv_dtype_name(half),
           d);
}

static void test_half_checkpoints_v4(void)
{
    half_for("models/tiny-rwkv-4v0-660K.safetensors", RWKV_F16);
}

static void test_half_checkpoints_v5_2(void)
{
    half_for("models/tiny-rwkv-5v2-730K.pth", RWKV_BF16);
}

static void test_half_checkpoints_v6(void)
{
    half_for("models/tiny-rwkv-6v0-3m.safetensors", RWKV_BF16);
    half_for("models/tiny-rwkv-6v0-3m.safetensors", RWKV_F16);
}

/* ---- refused files ---- */

typedef struct {
    const char *what;
    const char *rel;
    const char *tensor; /* acted on */
    int mode;           /* 0 drop, 1 reshape to `shape`, 2 add `shape` */
    int ndim;
    int64_t shape[3];
    const char *expect; /* in the message */
} bad_case;

static void apply_bad(entries *es, void *arg)
{
    const bad_case *b = arg;
    if (b->mode == 0)
        drop_entry(es, b->tensor);
    else
        put(es, b->tensor, b->ndim, b->shape);
}

static void test_bad_files_refused(void)
{
    static const bad_case bad[] = {
        {"v6 maa_w2 of the wrong shape", "models/tiny-rwkv-6v0-3m.safetensors",
         "blocks.3.att.time_maa_w2", 1, 3, {5, 32, 127}, "time_maa_w2"},
        {"v6 maa_w1 not 5 LoRAs", "models/tiny-rwkv-6v0-3m.safetensors",
         "blocks.0.att.time_maa_w1", 1, 2, {128, 161}, "multiple of 5"},
        {"v6 decay LoRA of the wrong shape", "models/tiny-rwkv-6v0-3m.safetensors",
         "blocks.5.att.time_decay_w2", 1, 2, {64, 127}, "time_decay_w2"},
        {"v6 without time_faaaa", "models/tiny-rwkv-6v0-3m.safetensors",
         "blocks.0.att.time_faaaa", 0, 0, {0}, "time_faaaa"},
        {"v5.2 missing ln_x.bias", "models/tiny-rwkv-5v2-730K.safetensors",
         "blocks.3.att.ln_x.bias", 0, 0, {0}, "blocks.3.att.ln_x.bias"},
        {"v5.2 missing gate", "models/tiny-rwkv-5v2-730K.safetensors",
         "blocks.7.att.gate.weight", 0, 0, {0}, "blocks.7.att.gate.weight"},
        {"v5.0 decay per channel", "models/tiny-rwkv-5v1-730K.safetensors",
         "blocks.2.att.time_decay", 1, 1, {64}, "blocks.2.att.time_decay"},
        {"v5.0 head count not dividing C", "models/tiny-rwkv-5v1-730K.safetensors",
         "blocks.0.att.time_decay", 1, 1, {7}, "time_decay"},
        {"v5.2 time_state of the wrong shape", "models/tiny-rwkv-5v2-730K.safetensors",
         "blocks.1.att.time_state", 2, 3, {8, 8, 9}, "time_state"},
        {"v4 with a time_state", "models/tiny-rwkv-4v0-660K.safetensors",
         "blocks.1.att.time_state", 2, 3, {1, 128, 128}, "not part of RWKV-4"},
        {"v4 ffn.value of the wrong shape", "models/tiny-rwkv-4v0-660K.safetensors",
         "blocks.2.ffn.value.weight", 1, 2, {128, 255}, "blocks.2.ffn.value.weight"},
        {"v4 missing time_first", "models/tiny-rwkv-4v0-660K.safetensors",
         "blocks.3.att.time_first", 0, 0, {0}, "blocks.3.att.time_first"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rwkv_error err = {{0}};
        void *buf;
        rwkv_model *m = synth(bad[i].rel, apply_bad, (void *)&bad[i], &buf, &err);
        int refused = m == NULL;
        rwkv_model_free(m);
        free(buf);
        CHECKF(refused, "%s: loaded", bad[i].what);
        CHECKF(strstr(err.msg, bad[i].expect) != NULL, "%s: message '%s' does not name '%s'",
               bad[i].what, err.msg, bad[i].expect);
    }
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_time_state_v5_2);
    RUN(test_time_state_v6);
    RUN(test_v5_1_equals_equivalent_v5_2);
    RUN(test_half_checkpoints_v4);
    RUN(test_half_checkpoints_v5_2);
    RUN(test_half_checkpoints_v6);
    RUN(test_bad_files_refused);
    return test_summary();
}
