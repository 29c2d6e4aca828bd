/* test_quantize.c — int8 files (`rwkv quantize`, core/quantize.h):
 *
 *  - bit identity: an int8 engine over the int8 file gives exactly the
 *    logits, hidden states and state of an int8 engine over its source, on
 *    every fixture model (all 4096 tokens, blocks of 256/1/3/64 so both the
 *    GEMM and GEMV paths run), a .pth source, a bf16 source, the
 *    EmbeddingRWKV fixture (hidden states: no LM head), a random model
 *    whose widths are not multiples of RWKV_Q8_PAD (the loader pads), and
 *    the random 0.1B shape (a few tokens: real matrix sizes);
 *  - the file's layout: large matrices I8 (1 byte per weight) with F32 scales,
 *    the attention receptance/key BF16, the rest as in the source, the metadata;
 *  - recognition by content and the refusals of malformed variants (I8
 *    without scales, misshaped or non-finite or negative scales, I8 where a
 *    float is expected, metadata that lies), each naming file and tensor;
 *  - engines: fp32, bf16 and CUDA refused with the reason, auto picks int8;
 *    quantizing an int8 file again is refused.
 * The bit-identity cases need the int8 CPU features and print SKIP without.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/forward.h"
#include "core/model.h"
#include "core/precision.h"
#include "core/quantize.h"
#include "core/random_model.h"
#include "core/safetensors_writer.h"
#include "core/state.h"
#include "tests/support/fixture_model.h"
#include "tests/support/fixture_run.h"
#include "tests/testutil.h"

static const char SHA[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/* An image in memory, parsed and loaded; NULL with err. */
static rwkv_model *load_img(const char *label, const void *img, size_t len, rwkv_error *err)
{
    rwkv_tensor_file *f;
    rwkv_model *m = NULL;
    if (rwkv_tensor_file_parse(label, img, len, &f, err) != 0 ||
        rwkv_model_from_tensors(f, &m, err) != 0)
        return NULL;
    return m;
}

static rwkv_model *random_model(const char *shape, rwkv_dtype dt, uint64_t seed, void **img,
                                size_t *len)
{
    rwkv_random_model_spec spec = {.dtype = dt, .seed = seed};
    rwkv_error err;
    rwkv_model *m = NULL;
    *img = NULL;
    if (rwkv_random_model_parse_shape(shape, &spec, &err) != 0 ||
        rwkv_random_model_serialize(&spec, img, len, &err) != 0 ||
        !(m = load_img("random", *img, *len, &err)))
        test_fail_at(__FILE__, __LINE__, "random model %s: %s", shape, err.msg);
    return m;
}

/* src's int8 file, loaded (label "q8"); *img must be freed after the model. */
static rwkv_model *quantized(const rwkv_model *src, void **img, size_t *len,
                             rwkv_quantize_stats *st)
{
    rwkv_error err;
    *img = NULL;
    if (rwkv_quantize_model(src, SHA, NULL, img, len, st, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "quantize: %s", err.msg);
        return NULL;
    }
    rwkv_model *q = load_img("q8", *img, *len, &err);
    if (!q)
        test_fail_at(__FILE__, __LINE__, "loading the int8 file: %s", err.msg);
    return q;
}

static int have_int8(const char *what)
{
    rwkv_error err;
    if (rwkv_precision_check(RWKV_PRECISION_INT8, rwkv_cpu_features_get(), &err) == 0)
        return 1;
    test_skip(what, err.msg);
    return 0;
}

static rwkv_engine *int8_engine(const rwkv_model *m)
{
    rwkv_engine_opts o = {.n_threads = 2, .precision = RWKV_PRECISION_INT8};
    rwkv_error err;
    rwkv_engine *e = rwkv_engine_new_opts(m, &o, &err);
    if (!e)
        test_fail_at(__FILE__, __LINE__, "int8 engine: %s", err.msg);
    return e;
}

/* Runs tokens[0..T) through int8 engines over src and q: every output must
 * be equal bit for bit. */
static void check_identical(const char *name, const fixture_model *fm, const rwkv_model *src,
                            const rwkv_model *q, size_t T)
{
    static const int sizes[] = {256, 1, 3, 64};
    const rwkv_model_info *mi = rwkv_model_get_info(src);
    size_t V = (size_t)mi->vocab_size, C = (size_t)mi->n_embd;
    fixture_run a, b;
    rwkv_engine *e = int8_engine(src);
    CHECK(e);
    int rc = fixture_run_blocks(fm, src, e, NULL, 0, T, sizes, 4, 0, &a);
    rwkv_engine_free(e);
    CHECK(rc == 0);
    e = int8_engine(q);
    if (!e) {
        fixture_run_free(&a);
        return;
    }
    CHECKF(rwkv_engine_precision(e) == RWKV_PRECISION_INT8, "%s", name);
    rc = fixture_run_blocks(fm, q, e, NULL, 0, T, sizes, 4, 0, &b);
    rwkv_engine_free(e);
    if (rc != 0) {
        fixture_run_free(&a);
        return;
    }
    size_t first = SIZE_MAX;
    for (size_t i = 0; i < T * V && first == SIZE_MAX; i++)
        if (memcmp(&a.logits[i], &b.logits[i], sizeof(float)) != 0)
            first = i;
    int same_hidden = memcmp(a.hidden, b.hidden, T * C * sizeof(float)) == 0;
    int same_state = memcmp(a.state, b.state, mi->state_floats * sizeof(float)) == 0;
    float la = first == SIZE_MAX ? 0 : a.logits[first], lb = first == SIZE_MAX ? 0 : b.logits[first];
    fixture_run_free(&a);
    fixture_run_free(&b);
    CHECKF(first == SIZE_MAX, "%s: logits differ first at token %zu, id %zu: %.9g vs %.9g", name,
           first / V, first % V, (double)la, (double)lb);
    CHECKF(same_hidden && same_state, "%s: hidden %d state %d", name, same_hidden, same_state);
    printf("# %s: %zu tokens, int8 engine over the int8 file == over the source, bit for bit\n",
           name, T);
}

/* ------------------------------------------------------------ layout */

static void check_layout(const rwkv_model *src, const rwkv_model *q, size_t len,
                         const rwkv_quantize_stats *st)
{
    const rwkv_model_info *si = rwkv_model_get_info(src), *qi = rwkv_model_get_info(q);
    CHECK(!si->int8_quantized && qi->int8_quantized);
    CHECK(qi->n_params == si->n_params); /* scales are not parameters */
    CHECK(qi->matrix_dtype == RWKV_I8);
    CHECK(st->int8_matrices > 0 && st->bf16_matrices > 0);
    CHECKF(qi->weight_bytes < si->weight_bytes, "%zu vs %zu", qi->weight_bytes,
           si->weight_bytes);
    CHECK(len > qi->weight_bytes && st->file_bytes == qi->weight_bytes);
}

/* The tensors of the int8 file against the source's. */
static void check_tensors(const char *src_label, const void *simg, size_t slen, const void *qimg,
                          size_t qlen)
{
    rwkv_tensor_file *s, *q;
    rwkv_error err;
    CHECKF(rwkv_tensor_file_parse(src_label, simg, slen, &s, &err) == 0, "%s", err.msg);
    CHECKF(rwkv_tensor_file_parse("q8", qimg, qlen, &q, &err) == 0, "%s", err.msg);
    CHECK(!strcmp(rwkv_tensor_file_meta(q, RWKV_QUANT_META_KIND), "int8"));
    CHECK(!strcmp(rwkv_tensor_file_meta(q, RWKV_QUANT_META_VERSION), "1"));
    CHECK(!strcmp(rwkv_tensor_file_meta(q, RWKV_QUANT_META_SOURCE), SHA));
    CHECK(rwkv_tensor_file_meta(s, RWKV_QUANT_META_KIND) == NULL);
    const rwkv_tensor *emb = rwkv_tensor_file_find(s, "emb.weight");
    int C = (int)emb->shape[1];
    size_t n_i8 = 0, n_scale = 0;
    for (size_t i = 0; i < rwkv_tensor_file_count(s); i++) {
        const rwkv_tensor *a = rwkv_tensor_file_at(s, i);
        const rwkv_tensor *b = rwkv_tensor_file_find(q, a->name);
        CHECKF(b && b->ndim == a->ndim && !memcmp(b->shape, a->shape, sizeof a->shape),
               "%s", a->name);
        /* Linear weights (LoRA factors such as RWKV-6 time_maa_w1 are not
         * ".weight" and stay as they are) */
        size_t nl = strlen(a->name);
        int large = a->ndim == 2 && a->shape[0] >= C && a->shape[1] >= C &&
                    strcmp(a->name, "emb.weight") != 0 && nl > 7 &&
                    !strcmp(a->name + nl - 7, ".weight");
        /* the attention's receptance and key stay bf16 (lowp_weights.h) */
        int rk = large && (strstr(a->name, ".att.receptance.weight") ||
                           strstr(a->name, ".att.key.weight"));
        if (large && !rk) {
            CHECKF(b->dtype == RWKV_I8, "%s is %s", a->name, rwkv_dtype_name(b->dtype));
            char sn[300];
            snprintf(sn, sizeof sn, "%s" RWKV_QUANT_SCALE_SUFFIX, a->name);
            const rwkv_tensor *sc = rwkv_tensor_file_find(q, sn);
            CHECKF(sc && sc->dtype == RWKV_F32 && sc->ndim == 1 && sc->shape[0] == a->shape[0],
                   "%s", sn);
            /* in place from the image: no copy, 1 byte per weight */
            CHECK((const char *)b->data > (const char *)qimg &&
                  (const char *)b->data + b->numel <= (const char *)qimg + qlen);
            n_i8++;
            n_scale++;
        } else if (rk) {
            CHECKF(b->dtype == RWKV_BF16, "%s is %s", a->name, rwkv_dtype_name(b->dtype));
        } else {
            CHECKF(b->dtype == a->dtype &&
                       !memcmp(a->data, b->data, a->numel * rwkv_dtype_size(a->dtype)),
                   "%s changed", a->name);
        }
    }
    size_t nq = rwkv_tensor_file_count(q), ns = rwkv_tensor_file_count(s);
    size_t copied = rwkv_tensor_file_copied_bytes(q);
    rwkv_tensor_file_close(s);
    rwkv_tensor_file_close(q);
    CHECK(nq == ns + n_scale);
    CHECK(n_i8 > 0);
    CHECK(copied == 0); /* every tensor aligned: used in place */
}

/* ------------------------------------------------------------ fixtures */

static void check_fixture(const char *dir, const char *file)
{
    if (!have_int8(file))
        return;
    fixture_model fm;
    CHECK(fixture_model_load(&fm, dir) == 0);
    char rel[128];
    snprintf(rel, sizeof rel, "models/%s", file);
    size_t slen;
    void *simg = fixture_read(rel, &slen);
    rwkv_error err;
    rwkv_model *src = simg ? load_img(file, simg, slen, &err) : NULL;
    void *qimg = NULL;
    size_t qlen = 0;
    rwkv_quantize_stats st;
    rwkv_model *q = src ? quantized(src, &qimg, &qlen, &st) : NULL;
    if (q) {
        check_layout(src, q, qlen, &st);
        if (!test_current_failed && strstr(file, ".safetensors"))
            check_tensors(file, simg, slen, qimg, qlen);
        if (!test_current_failed)
            check_identical(file, &fm, src, q, fm.n_tokens);
    } else if (!src) {
        test_fail_at(__FILE__, __LINE__, "%s: %s", file, simg ? err.msg : "unreadable");
    }
    rwkv_model_free(q);
    rwkv_model_free(src);
    free(qimg);
    free(simg);
    fixture_model_free(&fm);
}

static void test_identical_v4(void)
{
    check_fixture("tiny-rwkv-4v0-660K", "tiny-rwkv-4v0-660K.safetensors");
}

static void test_identical_v5_0(void)
{
    check_fixture("tiny-rwkv-5v1-730K", "tiny-rwkv-5v1-730K.safetensors");
}

static void test_identical_v5_2(void)
{
    check_fixture("tiny-rwkv-5v2-730K", "tiny-rwkv-5v2-730K.safetensors");
}

static void test_identical_v5_2_pth(void)
{
    check_fixture("tiny-rwkv-5v2-730K", "tiny-rwkv-5v2-730K.pth");
}

static void test_identical_v6(void)
{
    check_fixture("tiny-rwkv-6v0-3m", "tiny-rwkv-6v0-3m.safetensors");
}

static void test_identical_v7(void)
{
    check_fixture("tiny-rwkv-7v0-834K", "tiny-rwkv-7v0-834K.safetensors");
}

static void test_identical_v7_bf16(void)
{
    check_fixture("tiny-rwkv-7v0-834K", "tiny-rwkv-7v0-834K.bf16.safetensors");
}

/* EmbeddingRWKV (no LM head, the body under "rwkv."): the final norm's
 * output over 300 byte tokens, int8 over the int8 file == over the .pth */
static void test_identical_embedding(void)
{
    if (!have_int8("embedding"))
        return;
    size_t slen, qlen = 0;
    void *simg = fixture_read("embedding-rwkv/embedding-rwkv7-L4-D64-random.pth", &slen);
    void *qimg = NULL;
    rwkv_error err = {{0}};
    rwkv_quantize_stats st = {0};
    rwkv_model *src = simg ? load_img("emb.pth", simg, slen, &err) : NULL;
    rwkv_model *q = src ? quantized(src, &qimg, &qlen, &st) : NULL;
    float *h[2] = {NULL, NULL};
    int ran = 0;
    enum { T = 300 };
    uint32_t tokens[T];
    for (int i = 0; i < T; i++)
        tokens[i] = (uint32_t)(i * 37 % 256);
    size_t C = src ? (size_t)rwkv_model_get_info(src)->n_embd : 0;
    for (int k = 0; q && k < 2; k++) {
        const rwkv_model *m = k ? q : src;
        rwkv_engine *e = int8_engine(m);
        rwkv_state *s = rwkv_state_new(m);
        h[k] = malloc(T * C * sizeof(float));
        rwkv_request r = {.state = s, .tokens = tokens, .n_tokens = T,
                          .hidden = RWKV_HIDDEN_ALL, .hidden_out = h[k], .next_token = -1};
        ran += e && s && h[k] && rwkv_forward(e, &r, 1, &err) == 0;
        rwkv_state_free(s);
        rwkv_engine_free(e);
    }
    int same = ran == 2 && !memcmp(h[0], h[1], T * C * sizeof(float));
    free(h[0]);
    free(h[1]);
    rwkv_model_free(q);
    rwkv_model_free(src);
    free(qimg);
    free(simg);
    CHECKF(ran == 2, "%d engines ran (%s)", ran, ran < 2 ? err.msg : "");
    CHECK(same);
    CHECK(st.int8_matrices > 0);
}

/* ------------------------------------------------------------ random models */

static void check_random(const char *shape, rwkv_dtype dt, size_t T)
{
    if (!have_int8(shape))
        return;
    void *simg, *qimg = NULL;
    size_t qlen;
    rwkv_quantize_stats st;
    size_t slen;
    rwkv_model *src = random_model(shape, dt, 5, &simg, &slen);
    rwkv_model *q = src ? quantized(src, &qimg, &qlen, &st) : NULL;
    if (q) {
        check_layout(src, q, qlen, &st);
        uint32_t *tokens = malloc(T * sizeof *tokens);
        uint64_t seed = 9;
        int V = rwkv_model_get_info(src)->vocab_size;
        for (size_t i = 0; i < T; i++)
            tokens[i] = (uint32_t)(test_rand(&seed) % (uint64_t)V);
        fixture_model fm = {.tokens = tokens, .n_tokens = T};
        if (!test_current_failed)
            check_identical(shape, &fm, src, q, T);
        free(tokens);
    }
    rwkv_model_free(q);
    rwkv_model_free(src);
    free(qimg);
    free(simg);
}

/* widths 80 and 300 (head cols 80): not multiples of RWKV_Q8_PAD, so the
 * loader pads the int8 rows of the file */
static void test_identical_padded_rows(void)
{
    check_random("L2-D80-H16-V300", RWKV_F32, 300);
}

/* the 0.1B shape, bf16 like the official files: 256 + 1 + 3 tokens */
static void test_identical_random_0_1b(void)
{
    check_random("L12-D768-H64-V65536", RWKV_BF16, 260);
}

/* ------------------------------------------------------------ engines */

static void test_engines_refused(void)
{
    void *simg, *qimg = NULL;
    size_t qlen;
    rwkv_quantize_stats st;
    size_t slen;
    rwkv_model *src = random_model("L1-D128-H64-V500", RWKV_F32, 2, &simg, &slen);
    rwkv_model *q = src ? quantized(src, &qimg, &qlen, &st) : NULL;
    if (!q)
        goto out;
    rwkv_error err;
    static const rwkv_precision refused[] = {RWKV_PRECISION_FP32, RWKV_PRECISION_BF16};
    for (int k = 0; k < 2; k++) {
        rwkv_engine_opts o = {.n_threads = 1, .precision = refused[k]};
        rwkv_engine *e = rwkv_engine_new_opts(q, &o, &err);
        CHECK(e == NULL);
        CHECKF(strstr(err.msg, "q8 holds int8-quantized weights (rwkv quantize); it runs only "
                               "at --precision int8") &&
                   strstr(err.msg, rwkv_precision_name(refused[k])),
               "%s", err.msg);
    }
    CHECK(rwkv_engine_new(q, 1, &err) == NULL);
    CHECKF(strstr(err.msg, "runs only at --precision int8"), "%s", err.msg);
    CHECK(rwkv_engine_new_on(q, "cuda", 1, &err) == NULL);
    CHECKF(strstr(err.msg, "runs only at --precision int8"), "%s", err.msg);
    rwkv_engine_opts cuda = {.device = "cuda:0", .n_threads = 1};
    CHECK(rwkv_engine_new_opts(q, &cuda, &err) == NULL);
    CHECKF(strstr(err.msg, "runs only at --precision int8"), "%s", err.msg);
    /* auto: int8 where the CPU runs it, else the missing feature named */
    rwkv_engine_opts au = {.n_threads = 1, .precision = RWKV_PRECISION_AUTO};
    rwkv_engine *e = rwkv_engine_new_opts(q, &au, &err);
    if (rwkv_precision_check(RWKV_PRECISION_INT8, rwkv_cpu_features_get(), NULL) == 0) {
        CHECKF(e && rwkv_engine_precision(e) == RWKV_PRECISION_INT8, "%s", e ? "" : err.msg);
    } else {
        CHECK(!e);
        CHECKF(strstr(err.msg, "int8-quantized") && strstr(err.msg, "cannot run int8"), "%s",
               err.msg);
    }
    rwkv_engine_free(e);
    /* the source's engines are unaffected */
    e = rwkv_engine_new(src, 1, &err);
    CHECKF(e != NULL, "%s", err.msg);
    rwkv_engine_free(e);
    /* quantizing again: refused, naming why */
    void *again = NULL;
    size_t alen;
    CHECK(rwkv_quantize_model(q, SHA, NULL, &again, &alen, NULL, &err) == -1);
    CHECKF(strstr(err.msg, "q8: already int8-quantized"), "%s", err.msg);
    CHECK(again == NULL);
out:
    rwkv_model_free(q);
    rwkv_model_free(src);
    free(qimg);
    free(simg);
}

/* A NaN or infinite weight: int8 has no form for its row.  The int8 engine
 * over the float file gives NaN where fp32 does (no undefined conversion:
 * UBSan checks), and rwkv quantize refuses the model, naming tensor and row. */
static void test_nonfinite_weights(void)
{
    static const float bad[] = {NAN, INFINITY};
    for (int k = 0; k < 2; k++) {
        void *img;
        size_t len;
        rwkv_model *m = random_model("L1-D128-H64-V500", RWKV_F32, 3, &img, &len);
        if (!m)
            return;
        rwkv_model_free(m);
        rwkv_tensor_file *f;
        rwkv_error err;
        CHECK(rwkv_tensor_file_parse("nan", img, len, &f, &err) == 0);
        const rwkv_tensor *t = rwkv_tensor_file_find(f, "blocks.0.ffn.value.weight");
        CHECK(t && t->dtype == RWKV_F32 && (const char *)t->data > (const char *)img);
        ((float *)(void *)((char *)img + ((const char *)t->data - (const char *)img)))[3 * 512 + 5] =
            bad[k];
        CHECK(rwkv_model_from_tensors(f, &m, &err) == 0);
        void *q = NULL;
        size_t qlen;
        int rc = rwkv_quantize_model(m, SHA, NULL, &q, &qlen, NULL, &err);
        int named = rc == -1 && strstr(err.msg, "nan: tensor 'blocks.0.ffn.value.weight' row 3 "
                                                "holds a NaN or infinite weight");
        char msg[RWKV_ERROR_MAX];
        snprintf(msg, sizeof msg, "%s", err.msg);
        int nan_out = 1;
        if (rwkv_precision_check(RWKV_PRECISION_INT8, rwkv_cpu_features_get(), NULL) == 0) {
            rwkv_engine *e = int8_engine(m);
            rwkv_state *st = rwkv_state_new(m);
            float lg[500];
            uint32_t tok[5] = {1, 2, 3, 4, 5};
            rwkv_request r = {.state = st, .tokens = tok, .n_tokens = 5,
                              .logits = RWKV_LOGITS_LAST, .logits_out = lg, .next_token = -1};
            nan_out = e && st && rwkv_forward(e, &r, 1, &err) == 0 && isnan(lg[0]);
            rwkv_state_free(st);
            rwkv_engine_free(e);
        }
        rwkv_model_free(m);
        free(q);
        free(img);
        CHECKF(named, "rc %d: %s", rc, msg);
        CHECK(nan_out);
    }
}

/* ------------------------------------------------------------ malformed files */

/* The tensors of a valid int8 file, editable: entries point into its image
 * or into owned buffers. */
typedef struct variant {
    rwkv_tensor_file *f;
    rwkv_st_entry e[512];
    size_t n;
    const char *meta[6];
    size_t n_meta;
    float bad[600];  /* a scale vector to corrupt */
} variant;

static int variant_init(variant *v, const void *img, size_t len)
{
    rwkv_error err;
    memset(v, 0, sizeof *v);
    if (rwkv_tensor_file_parse("q8", img, len, &v->f, &err) != 0)
        return -1;
    v->n = rwkv_tensor_file_count(v->f);
    if (v->n > 512)
        return -1;
    for (size_t i = 0; i < v->n; i++) {
        const rwkv_tensor *t = rwkv_tensor_file_at(v->f, i);
        v->e[i] = (rwkv_st_entry){.name = t->name, .dtype = t->dtype, .ndim = t->ndim,
                                  .data = t->data};
        memcpy(v->e[i].shape, t->shape, sizeof t->shape);
    }
    static const char *const meta[] = {RWKV_QUANT_META_KIND, "int8", RWKV_QUANT_META_VERSION,
                                       "1", RWKV_QUANT_META_SOURCE, SHA};
    memcpy(v->meta, meta, sizeof meta);
    v->n_meta = 3;
    return 0;
}

static rwkv_st_entry *entry(variant *v, const char *name)
{
    for (size_t i = 0; i < v->n; i++)
        if (!strcmp(v->e[i].name, name))
            return &v->e[i];
    return NULL;
}

static void drop(variant *v, const char *name)
{
    rwkv_st_entry *e = entry(v, name);
    if (e)
        *e = v->e[--v->n];
}

/* Loading the variant must fail with every one of the words in err. */
static void expect_refused(variant *v, const char *what, const char *w1, const char *w2)
{
    void *img = NULL;
    size_t len;
    rwkv_error err;
    int rc = rwkv_safetensors_serialize_meta(v->e, v->n, v->meta, v->n_meta, &img, &len, &err);
    rwkv_model *m = rc == 0 ? load_img("bad.safetensors", img, len, &err) : NULL;
    int ok = rc == 0 && !m && strstr(err.msg, "bad.safetensors") && strstr(err.msg, w1) &&
             (!w2 || strstr(err.msg, w2));
    if (!ok)
        test_fail_at(__FILE__, __LINE__, "%s: rc %d, loaded %d, message: %s", what, rc, m != NULL,
                     err.msg);
    else
        printf("# refused (%s): %s\n", what, err.msg);
    rwkv_model_free(m);
    free(img);
}

static void test_malformed_refused(void)
{
    void *simg, *qimg = NULL;
    size_t qlen;
    rwkv_quantize_stats st;
    size_t slen;
    rwkv_model *src = random_model("L1-D128-H64-V500", RWKV_F32, 2, &simg, &slen);
    rwkv_model *q = src ? quantized(src, &qimg, &qlen, &st) : NULL;
    variant *v = calloc(1, sizeof *v);
    if (!q || !v || variant_init(v, qimg, qlen) != 0) {
        CHECKF(0, "%s", "setup");
        goto out;
    }
    const char *K = "blocks.0.ffn.key.weight", *KS = "blocks.0.ffn.key.weight.q8_scale";
    /* the unmodified variant loads (the harness itself is right) */
    {
        void *img;
        size_t len;
        rwkv_error err;
        CHECK(rwkv_safetensors_serialize_meta(v->e, v->n, v->meta, v->n_meta, &img, &len,
                                              &err) == 0);
        rwkv_model *m = load_img("ok", img, len, &err);
        CHECKF(m && rwkv_model_get_info(m)->int8_quantized, "%s", err.msg);
        rwkv_model_free(m);
        free(img);
    }
    rwkv_st_entry keep = *entry(v, KS);

    drop(v, KS);
    expect_refused(v, "I8 without its scales", K, "has no scale tensor");
    v->e[v->n++] = keep;

    rwkv_st_entry *s = entry(v, KS);
    s->shape[0] = keep.shape[0] / 2;
    expect_refused(v, "scales misshaped", KS, "shape (512)");
    *s = keep;
    s->ndim = 2, s->shape[0] = 1, s->shape[1] = keep.shape[0];
    expect_refused(v, "scales 2-D", KS, "shape (512)");
    *s = keep;
    s->dtype = RWKV_BF16, s->shape[0] = keep.shape[0];
    expect_refused(v, "scales bf16", KS, "must be F32");
    *s = keep;

    static const float bad_values[] = {NAN, INFINITY, -1.0f};
    for (int k = 0; k < 3; k++) {
        memcpy(v->bad, keep.data, (size_t)keep.shape[0] * sizeof(float));
        v->bad[7] = bad_values[k];
        s->data = v->bad;
        expect_refused(v, "scale not finite or negative", KS, "row 7 has scale");
        *s = keep;
    }

    /* I8 where a float is expected: a vector, the embedding table, a square
     * projection (which an int8 engine keeps in bf16) */
    rwkv_st_entry *ln = entry(v, "blocks.0.ln1.weight"), lnk = *ln;
    ln->dtype = RWKV_I8;
    expect_refused(v, "I8 vector", "blocks.0.ln1.weight", "where rwkvd expects float");
    *ln = lnk;
    rwkv_st_entry *emb = entry(v, "emb.weight"), embk = *emb;
    emb->dtype = RWKV_I8;
    expect_refused(v, "I8 embedding", "emb.weight", "embedding table must be float");
    *emb = embk;
    rwkv_st_entry *sq = entry(v, "blocks.0.att.receptance.weight"), sqk = *sq;
    sq->dtype = RWKV_I8;
    v->e[v->n++] = (rwkv_st_entry){.name = "blocks.0.att.receptance.weight.q8_scale",
                                   .dtype = RWKV_F32, .ndim = 1, .shape = {128},
                                   .data = keep.data};
    expect_refused(v, "I8 square projection", "blocks.0.att.receptance.weight", "in bf16");
    v->n--;
    *sq = sqk;

    /* an orphan scale tensor */
    v->e[v->n++] = (rwkv_st_entry){.name = "blocks.0.att.key.weight.q8_scale",
                                   .dtype = RWKV_F32, .ndim = 1, .shape = {128},
                                   .data = keep.data};
    expect_refused(v, "orphan scales", "blocks.0.att.key.weight.q8_scale", "is not part of");
    v->n--;

    /* metadata that lies, or is missing */
    v->n_meta = 0;
    expect_refused(v, "no metadata", "no \"rwkvd.quantized\" metadata", NULL);
    v->n_meta = 3;
    v->meta[1] = "int4";
    expect_refused(v, "metadata int4", "'int4'", "reads only int8");
    v->meta[1] = "int8";
    v->meta[3] = "2";
    expect_refused(v, "metadata version 2", "rwkvd.quantized.version is '2'", NULL);
    v->meta[3] = "1";
    v->meta[2] = "other";
    expect_refused(v, "metadata without version", "is '(absent)'", NULL);
    v->meta[2] = RWKV_QUANT_META_VERSION;
    /* the metadata on a float file (no I8 tensor) */
    rwkv_tensor_file_close(v->f);
    CHECK(variant_init(v, simg, slen) == 0);
    expect_refused(v, "int8 metadata on a float file", "says int8-quantized", "no matrix is int8");
out:
    if (v && v->f)
        rwkv_tensor_file_close(v->f);
    free(v);
    rwkv_model_free(q);
    rwkv_model_free(src);
    free(qimg);
    free(simg);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_engines_refused);
    RUN(test_malformed_refused);
    RUN(test_nonfinite_weights);
    RUN(test_identical_padded_rows);
    RUN(test_identical_v4);
    RUN(test_identical_v5_0);
    RUN(test_identical_v5_2);
    RUN(test_identical_v5_2_pth);
    RUN(test_identical_v6);
    RUN(test_identical_v7);
    RUN(test_identical_v7_bf16);
    RUN(test_identical_embedding);
    RUN(test_identical_random_0_1b);
    return test_summary();
}
