/* test_gpu_batch.c — the CUDA backend with many documents at once and
 * against the CPU engine:
 *  - a batch equals each of its documents run alone (fp32: fixture bounds;
 *    bf16: the statistical bound), also when small passes cut the batch and
 *    its long requests (RWKV_CUDA_PASS_ROWS);
 *  - every output mode of the forward contract (core/forward.h) equals the
 *    CPU engine's on the same batch: logits LAST, hidden LAST/MEAN,
 *    hidden_sum accumulating across calls, surprisal with a known, unknown
 *    (NaN) or out-of-vocabulary next token;
 *  - decode: many documents one token per call equal the same tokens as
 *    one block per document;
 *  - a random-weight model of the 0.1B shape (L12 D768 H64 V65536): bf16
 *    GPU within the statistical bound of the CPU engine, fp32 GPU within the
 *    fixture-style bounds;
 *  - the engine's description and device errors.
 * Without a device every test prints SKIP with the reason. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/forward.h"
#include "core/model.h"
#include "core/random_model.h"
#include "core/state.h"
#include "core/tensor_file.h"
#include "tests/support/fixture_model.h"
#include "tests/support/gpu_harness.h"
#include "tests/testutil.h"

const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "protect_shadow_gap=0"; /* the CUDA driver maps memory there */
}

#define DIR "tiny-rwkv-7v0-834K"
#define CKPT "models/tiny-rwkv-7v0-834K.safetensors"
#define MAXQ 8

static fixture_model fm;
static int fm_ok;

static rwkv_model *load_tiny(void)
{
    rwkv_model *m = NULL;
    rwkv_error err;
    rwkv_error_clear(&err);
    if (rwkv_model_load(fixture_path(CKPT), &m, &err) != 0)
        test_fail_at(__FILE__, __LINE__, "%s", err.msg);
    return m;
}

/* One document of a batch: fixture tokens [start, start+len) from the
 * fixture state `init` (NULL: zeros). */
typedef struct {
    size_t start;
    int len;
    const float *init;
} doc;

typedef struct {
    float *logits, *hidden, *sur, *state;
} outs;

static void outs_free(outs *o, int n)
{
    for (int i = 0; i < n; i++) {
        free(o[i].logits);
        free(o[i].hidden);
        free(o[i].sur);
        free(o[i].state);
    }
    memset(o, 0, sizeof *o * (size_t)n);
}

/* Runs docs[0..n) as ONE batch on e (all outputs, next token known), or
 * each alone when `alone`. */
static int run_docs(rwkv_engine *e, const rwkv_model *m, const doc *d, int n, int alone, outs *o)
{
    size_t V = (size_t)fm.vocab, C = (size_t)fm.n_embd, S = fm.state_floats;
    rwkv_request q[MAXQ];
    rwkv_state *st[MAXQ] = {0};
    rwkv_error err;
    rwkv_error_clear(&err);
    int rc = -1;
    memset(o, 0, sizeof *o * (size_t)n);
    for (int i = 0; i < n; i++) {
        st[i] = rwkv_state_new(m);
        o[i].logits = malloc(V * (size_t)d[i].len * sizeof(float));
        o[i].hidden = malloc(C * (size_t)d[i].len * sizeof(float));
        o[i].sur = malloc((size_t)d[i].len * sizeof(float));
        o[i].state = malloc(S * sizeof(float));
        if (!st[i] || !o[i].logits || !o[i].hidden || !o[i].sur || !o[i].state ||
            (d[i].init && rwkv_state_import(st[i], d[i].init, S, &err) != 0))
            goto out;
        size_t next = d[i].start + (size_t)d[i].len;
        q[i] = (rwkv_request){.state = st[i], .tokens = fm.tokens + d[i].start,
                              .n_tokens = d[i].len, .logits = RWKV_LOGITS_ALL,
                              .logits_out = o[i].logits, .hidden = RWKV_HIDDEN_ALL,
                              .hidden_out = o[i].hidden, .surprisal_out = o[i].sur,
                              .next_token = next < fm.n_tokens ? (int64_t)fm.tokens[next] : -1};
    }
    if (alone) {
        for (int i = 0; i < n; i++)
            if (rwkv_forward(e, &q[i], 1, &err) != 0)
                goto out;
    } else if (rwkv_forward(e, q, n, &err) != 0) {
        goto out;
    }
    for (int i = 0; i < n; i++)
        if (rwkv_state_export(st[i], o[i].state, &err) != 0)
            goto out;
    rc = 0;
out:
    if (rc != 0) {
        test_fail_at(__FILE__, __LINE__, "run (%s): %s", alone ? "alone" : "batch", err.msg);
        outs_free(o, n);
    }
    for (int i = 0; i < n; i++)
        rwkv_state_free(st[i]);
    return rc;
}

/* Doc i of a and b agree: fp32 within the fixture bounds, bf16 within the
 * statistical bound. */
static int compare_docs(const outs *a, const outs *b, const doc *d, int n, int fp32,
                        const char *what)
{
    size_t V = (size_t)fm.vocab, C = (size_t)fm.n_embd;
    char name[128];
    for (int i = 0; i < n; i++) {
        size_t L = (size_t)d[i].len;
        snprintf(name, sizeof name, "%s: doc %d (start %zu, %d tokens) logits", what, i,
                 d[i].start, d[i].len);
        if (!fp32) {
            if (gpu_check_stat(a[i].logits, b[i].logits, L * V, fm.logits_std, name) != 0)
                return -1;
            continue;
        }
        if (gpu_check_close(a[i].logits, b[i].logits, L * V, V, fm.logits_tol * fm.logits_std,
                            name) != 0)
            return -1;
        snprintf(name, sizeof name, "%s: doc %d hidden", what, i);
        if (gpu_check_close(a[i].hidden, b[i].hidden, L * C, C, fm.hidden_tol * fm.hidden_std,
                            name) != 0)
            return -1;
        snprintf(name, sizeof name, "%s: doc %d surprisal", what, i);
        size_t ns = d[i].start + L < fm.n_tokens ? L : L - 1; /* last is NaN at the end */
        if (gpu_check_close(a[i].sur, b[i].sur, ns, 0, fm.surprisal_tol, name) != 0)
            return -1;
        snprintf(name, sizeof name, "%s: doc %d state", what, i);
        if (fixture_check_state(&fm, a[i].state, b[i].state, name) != 0)
            return -1;
    }
    return 0;
}

static const doc DOCS[] = {
    {0, 1, NULL},    {5, 2, NULL},      {100, 17, NULL},    {1000, 300, NULL},
    {2000, 1000, NULL}, {3000, 64, NULL}, {2500, 5, NULL},
};
#define NDOCS ((int)(sizeof DOCS / sizeof DOCS[0]))

static void batch_vs_alone(const char *prec, int pass_rows)
{
    CHECK(fm_ok);
    rwkv_model *m = load_tiny();
    CHECK(m);
    doc d[NDOCS];
    memcpy(d, DOCS, sizeof d);
    d[3].init = fm.state_after[0]; /* non-trivial starting states for some */
    d[4].init = fm.state_after[1];
    d[5].init = fm.state_after[2];
    rwkv_error err;
    rwkv_engine *e = gpu_engine_rows(m, prec, pass_rows, &err);
    if (!e) {
        rwkv_model_free(m);
        CHECKF(0, "engine: %s", err.msg);
    }
    outs batch[NDOCS], alone[NDOCS];
    int ok = run_docs(e, m, d, NDOCS, 0, batch) == 0;
    if (ok) {
        ok = run_docs(e, m, d, NDOCS, 1, alone) == 0;
        if (ok) {
            char what[64];
            snprintf(what, sizeof what, "%s batch vs alone (pass rows %d)", prec, pass_rows);
            ok = compare_docs(batch, alone, d, NDOCS, strcmp(prec, "fp32") == 0, what) == 0;
            outs_free(alone, NDOCS);
        }
        outs_free(batch, NDOCS);
    }
    rwkv_engine_free(e);
    rwkv_model_free(m);
}

static void test_fp32_batch_equals_alone(void)
{
    batch_vs_alone("fp32", 0);
}

static void test_fp32_batch_in_small_passes(void)
{
    /* 256-row passes: the 1000- and 300-token documents are cut, the short
     * ones share passes */
    batch_vs_alone("fp32", 256);
}

static void test_bf16_batch_equals_alone(void)
{
    batch_vs_alone("bf16", 0);
}

/* The same batch on the GPU (fp32) and on the CPU engine, one request per
 * output mode; then a second call to check hidden_sum keeps accumulating. */
static void test_fp32_output_modes_match_cpu(void)
{
    CHECK(fm_ok);
    rwkv_model *m = load_tiny();
    CHECK(m);
    rwkv_error err;
    rwkv_engine *eng[2] = {gpu_engine(m, "fp32", &err), NULL};
    if (eng[0])
        eng[1] = rwkv_engine_new(m, 0, &err);
    if (!eng[0] || !eng[1]) {
        rwkv_engine_free(eng[0]);
        rwkv_model_free(m);
        CHECKF(0, "engines: %s", err.msg);
    }
    enum { NQ = 6, LEN = 60 };
    size_t V = (size_t)fm.vocab, C = (size_t)fm.n_embd;
    float *lg[2][NQ], *hid[2][NQ], *sur[2][NQ];
    double *hsum[2];
    rwkv_state *st[2][NQ];
    int ok = 1;
    for (int k = 0; k < 2; k++) {
        hsum[k] = calloc(C, sizeof(double));
        for (int i = 0; i < NQ; i++) {
            lg[k][i] = malloc(V * LEN * sizeof(float));
            hid[k][i] = malloc(C * LEN * sizeof(float));
            sur[k][i] = malloc(LEN * sizeof(float));
            st[k][i] = rwkv_state_new(m);
            for (int t = 0; t < LEN; t++)
                sur[k][i][t] = -7.0f; /* sentinel: "not written" */
        }
    }
    for (int call = 0; ok && call < 2; call++)
        for (int k = 0; ok && k < 2; k++) {
            const uint32_t *tk = fm.tokens + 500 + (size_t)call * 1000;
            rwkv_request q[NQ] = {
                {.state = st[k][0], .tokens = tk, .n_tokens = 50, .logits = RWKV_LOGITS_LAST,
                 .logits_out = lg[k][0], .hidden = RWKV_HIDDEN_LAST, .hidden_out = hid[k][0],
                 .next_token = -1},
                {.state = st[k][1], .tokens = tk + 60, .n_tokens = LEN,
                 .hidden = RWKV_HIDDEN_MEAN, .hidden_out = hid[k][1], .hidden_sum = hsum[k],
                 .next_token = -1},
                {.state = st[k][2], .tokens = tk + 120, .n_tokens = 40,
                 .surprisal_out = sur[k][2], .next_token = (int64_t)tk[160]},
                {.state = st[k][3], .tokens = tk + 180, .n_tokens = 40,
                 .surprisal_out = sur[k][3], .next_token = -1},
                {.state = st[k][4], .tokens = tk + 240, .n_tokens = 30,
                 .logits = RWKV_LOGITS_ALL, .logits_out = lg[k][4], .surprisal_out = sur[k][4],
                 .next_token = (int64_t)V + 5},
                {.state = st[k][5], .tokens = tk + 300, .n_tokens = 10, .next_token = -1},
            };
            if (rwkv_forward(eng[k], q, NQ, &err) != 0) {
                test_fail_at(__FILE__, __LINE__, "%s forward: %s", k ? "cpu" : "gpu", err.msg);
                ok = 0;
            }
        }
    double lb = fm.logits_tol * fm.logits_std, hb = fm.hidden_tol * fm.hidden_std;
    if (ok)
        ok = gpu_check_close(lg[0][0], lg[1][0], V, 0, lb, "logits LAST") == 0 &&
             gpu_check_close(hid[0][0], hid[1][0], C, 0, hb, "hidden LAST") == 0 &&
             gpu_check_close(hid[0][1], hid[1][1], C, 0, hb, "hidden MEAN") == 0 &&
             gpu_check_close(lg[0][4], lg[1][4], 30 * V, V, lb, "logits ALL") == 0 &&
             gpu_check_close(sur[0][2], sur[1][2], 40, 0, fm.surprisal_tol,
                             "surprisal, next token known") == 0 &&
             gpu_check_close(sur[0][3], sur[1][3], 39, 0, fm.surprisal_tol,
                             "surprisal, next token unknown") == 0 &&
             gpu_check_close(sur[0][4], sur[1][4], 29, 0, fm.surprisal_tol,
                             "surprisal with logits ALL") == 0;
    if (ok) {
        float a[4096], b[4096];
        for (size_t c = 0; c < C; c++)
            a[c] = (float)hsum[0][c], b[c] = (float)hsum[1][c];
        ok = gpu_check_close(a, b, C, 0, 2 * LEN * hb, "hidden_sum over two calls") == 0;
    }
    /* NaN where the next token is unknown (the CPU engine leaves that
     * position untouched when it skips the head, so it is not compared) */
    if (ok && !gpu_real())
        printf("# stand-in mode: the CPU engine leaves surprisal[last] unwritten when the next "
               "token is unknown and no logits are asked for (core/forward.h says NaN)\n");
    else if (ok && !isnan(sur[0][3][39])) {
        test_fail_at(__FILE__, __LINE__, "surprisal with unknown next token: %g, not NaN",
                     sur[0][3][39]);
        ok = 0;
    }
    if (ok && !(isnan(sur[0][4][29]) && isnan(sur[1][4][29]))) {
        test_fail_at(__FILE__, __LINE__, "surprisal of an out-of-vocabulary next token: %g / %g",
                     sur[0][4][29], sur[1][4][29]);
        ok = 0;
    }
    for (int i = 0; i < NQ && ok; i++) { /* every request's state, the silent one's too */
        float *x = malloc(fm.state_floats * sizeof(float));
        float *y = malloc(fm.state_floats * sizeof(float));
        ok = x && y && rwkv_state_export(st[0][i], x, NULL) == 0 &&
             rwkv_state_export(st[1][i], y, NULL) == 0 &&
             fixture_check_state(&fm, x, y, "state vs cpu") == 0;
        free(x);
        free(y);
    }
    for (int k = 0; k < 2; k++) {
        free(hsum[k]);
        for (int i = 0; i < NQ; i++) {
            free(lg[k][i]);
            free(hid[k][i]);
            free(sur[k][i]);
            rwkv_state_free(st[k][i]);
        }
    }
    rwkv_engine_free(eng[0]);
    rwkv_engine_free(eng[1]);
    rwkv_model_free(m);
}

/* Decode: 8 documents, 40 steps of one token each, all in one call per
 * step; equals each document's 40 tokens as one block. */
static void test_fp32_decode_batch(void)
{
    CHECK(fm_ok);
    rwkv_model *m = load_tiny();
    CHECK(m);
    rwkv_error err;
    rwkv_engine *e = gpu_engine(m, "fp32", &err);
    if (!e) {
        rwkv_model_free(m);
        CHECKF(0, "engine: %s", err.msg);
    }
    enum { B = 8, STEPS = 40 };
    size_t V = (size_t)fm.vocab;
    rwkv_state *sd[B], *sb[B];
    float *step_lg = malloc(B * STEPS * V * sizeof(float));
    float *blk_lg = malloc(B * STEPS * V * sizeof(float));
    int ok = step_lg && blk_lg;
    for (int i = 0; i < B; i++) {
        sd[i] = rwkv_state_new(m);
        sb[i] = rwkv_state_new(m);
        ok = ok && sd[i] && sb[i];
    }
    for (int t = 0; ok && t < STEPS; t++) {
        rwkv_request q[B];
        for (int i = 0; i < B; i++)
            q[i] = (rwkv_request){.state = sd[i], .tokens = fm.tokens + 400 * i + t,
                                  .n_tokens = 1, .logits = RWKV_LOGITS_LAST,
                                  .logits_out = step_lg + ((size_t)i * STEPS + t) * V,
                                  .next_token = -1};
        if (rwkv_forward(e, q, B, &err) != 0) {
            test_fail_at(__FILE__, __LINE__, "step %d: %s", t, err.msg);
            ok = 0;
        }
    }
    for (int i = 0; ok && i < B; i++) {
        rwkv_request q = {.state = sb[i], .tokens = fm.tokens + 400 * i, .n_tokens = STEPS,
                          .logits = RWKV_LOGITS_ALL,
                          .logits_out = blk_lg + (size_t)i * STEPS * V, .next_token = -1};
        if (rwkv_forward(e, &q, 1, &err) != 0) {
            test_fail_at(__FILE__, __LINE__, "block %d: %s", i, err.msg);
            ok = 0;
        }
    }
    if (ok)
        ok = gpu_check_close(step_lg, blk_lg, B * STEPS * V, V, fm.logits_tol * fm.logits_std,
                             "decode steps vs blocks") == 0;
    for (int i = 0; ok && i < B; i++) {
        float *x = malloc(fm.state_floats * sizeof(float)), *y = malloc(fm.state_floats * 4);
        ok = x && y && rwkv_state_export(sd[i], x, NULL) == 0 &&
             rwkv_state_export(sb[i], y, NULL) == 0 &&
             fixture_check_state(&fm, x, y, "decoded vs block state") == 0;
        free(x);
        free(y);
    }
    for (int i = 0; i < B; i++) {
        rwkv_state_free(sd[i]);
        rwkv_state_free(sb[i]);
    }
    free(step_lg);
    free(blk_lg);
    rwkv_engine_free(e);
    rwkv_model_free(m);
}

/* ---------------------------------------------------------------- 0.1B */

/* GPU (bf16 and fp32) vs the CPU engine on a random model of the 0.1B
 * shape: two documents in one batch, logits at every position. */
static void test_random_01b_vs_cpu(void)
{
    rwkv_random_model_spec spec = {.n_layer = 12, .n_embd = 768, .head_size = 64,
                                   .vocab_size = 65536, .ffn_dim = 0, .dtype = RWKV_BF16,
                                   .seed = 2024};
    rwkv_error err;
    rwkv_error_clear(&err);
    void *buf = NULL;
    size_t len = 0;
    rwkv_tensor_file *f = NULL;
    rwkv_model *m = NULL;
    CHECKF(rwkv_random_model_serialize(&spec, &buf, &len, &err) == 0, "%s", err.msg);
    if (rwkv_tensor_file_parse("random-0.1B", buf, len, &f, &err) != 0 ||
        rwkv_model_from_tensors(f, &m, &err) != 0) {
        free(buf);
        CHECKF(0, "%s", err.msg);
    }
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    enum { L0 = 300, L1 = 211 };
    size_t V = (size_t)mi->vocab_size, S = mi->state_floats, n = (size_t)(L0 + L1) * V;
    uint32_t *tok = malloc((L0 + L1) * sizeof(uint32_t));
    uint64_t seed = 5;
    for (int i = 0; tok && i < L0 + L1; i++)
        tok[i] = (uint32_t)(test_rand(&seed) % V);
    float *lg[3], *stv[3][2];
    const char *prec[3] = {"cpu", "bf16", "fp32"};
    int ok = tok != NULL;
    for (int k = 0; k < 3; k++) {
        lg[k] = malloc(n * sizeof(float));
        stv[k][0] = malloc(S * sizeof(float));
        stv[k][1] = malloc(S * sizeof(float));
        ok = ok && lg[k] && stv[k][0] && stv[k][1];
    }
    for (int k = 0; ok && k < 3; k++) {
        rwkv_engine *e = k == 0 ? rwkv_engine_new(m, 0, &err) : gpu_engine(m, prec[k], &err);
        rwkv_state *s0 = rwkv_state_new(m), *s1 = rwkv_state_new(m);
        rwkv_request q[2] = {
            {.state = s0, .tokens = tok, .n_tokens = L0, .logits = RWKV_LOGITS_ALL,
             .logits_out = lg[k], .next_token = -1},
            {.state = s1, .tokens = tok + L0, .n_tokens = L1, .logits = RWKV_LOGITS_ALL,
             .logits_out = lg[k] + (size_t)L0 * V, .next_token = -1},
        };
        ok = e && s0 && s1 && rwkv_forward(e, q, 2, &err) == 0 &&
             rwkv_state_export(s0, stv[k][0], &err) == 0 &&
             rwkv_state_export(s1, stv[k][1], &err) == 0;
        if (!ok)
            test_fail_at(__FILE__, __LINE__, "%s: %s", prec[k], err.msg);
        rwkv_state_free(s0);
        rwkv_state_free(s1);
        rwkv_engine_free(e);
    }
    if (ok) {
        double std = stddev_f32(lg[0], n);
        printf("# random 0.1B: CPU logits std %.4f over %zu values\n", std, n);
        ok = gpu_check_stat(lg[1], lg[0], n, std, "random 0.1B, bf16 gpu vs cpu") == 0 &&
             gpu_check_close(lg[2], lg[0], n, V, 1e-4 * std, "random 0.1B, fp32 gpu vs cpu") ==
                 0 &&
             gpu_check_state_v7(stv[2][0], stv[0][0], m, 1e-4, "fp32 gpu state, doc 0") == 0 &&
             gpu_check_state_v7(stv[2][1], stv[0][1], m, 1e-4, "fp32 gpu state, doc 1") == 0;
    }
    for (int k = 0; k < 3; k++) {
        free(lg[k]);
        free(stv[k][0]);
        free(stv[k][1]);
    }
    free(tok);
    rwkv_model_free(m);
    free(buf);
}

/* ---------------------------------------------------------------- engine */

static void test_engine_description_and_errors(void)
{
    rwkv_model *m = load_tiny();
    CHECK(m);
    rwkv_error err;
    rwkv_engine *b = gpu_engine(m, "bf16", &err), *f = b ? gpu_engine(m, "fp32", &err) : NULL;
    int ok = b && f;
    if (!ok)
        test_fail_at(__FILE__, __LINE__, "engines: %s", err.msg);
    if (ok && gpu_real()) {
        const char *db = rwkv_engine_device(b), *df = rwkv_engine_device(f);
        printf("# %s\n# %s\n", db, df);
        if (!strstr(db, "cuda:0") || !strstr(db, "sm_") || !strstr(db, "bf16") ||
            !strstr(df, "fp32")) {
            test_fail_at(__FILE__, __LINE__, "descriptions '%s' / '%s'", db, df);
            ok = 0;
        }
        rwkv_engine *none = rwkv_engine_new_on(m, "cuda:1000", 0, &err);
        if (none || !strstr(err.msg, "no such device")) {
            test_fail_at(__FILE__, __LINE__, "cuda:1000: %s", none ? "accepted" : err.msg);
            ok = 0;
        }
        rwkv_engine_free(none);
    }
    rwkv_engine_free(b);
    rwkv_engine_free(f);
    rwkv_model_free(m);
    CHECK(ok);
}

static void test_fixtures_load(void)
{
    fm_ok = fixture_model_load(&fm, DIR) == 0;
    CHECK(fm_ok);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    gpu_harness_init(argv[0]);
    RUN(test_fixtures_load);
    static const gpu_test tests[] = {
        {"test_fp32_batch_equals_alone", test_fp32_batch_equals_alone},
        {"test_fp32_batch_in_small_passes", test_fp32_batch_in_small_passes},
        {"test_bf16_batch_equals_alone", test_bf16_batch_equals_alone},
        {"test_fp32_output_modes_match_cpu", test_fp32_output_modes_match_cpu},
        {"test_fp32_decode_batch", test_fp32_decode_batch},
        {"test_random_01b_vs_cpu", test_random_01b_vs_cpu},
        {"test_engine_description_and_errors", test_engine_description_and_errors},
    };
    gpu_run_all(tests, sizeof tests / sizeof tests[0]);
    fixture_model_free(&fm);
    return test_summary();
}
