/* test_rwkv7_golden.c — the RWKV-7 engine against the official package's
 * outputs (../shared/fixtures/tiny-rwkv-7v0-834K), for every checkpoint
 * flavour (fp32/bf16 × .pth/.safetensors), plus the invariances: any block
 * size or split gives the same result, the single-token path equals the
 * block path, and resuming from each state_after_N reproduces the rest. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/forward.h"
#include "core/model.h"
#include "core/state.h"
#include "tests/support/fixture_model.h"
#include "tests/support/fixture_run.h"
#include "tests/testutil.h"

#define DIR "tiny-rwkv-7v0-834K"

static const char *checkpoints[] = {
    "models/tiny-rwkv-7v0-834K.pth",
    "models/tiny-rwkv-7v0-834K.safetensors",
    "models/tiny-rwkv-7v0-834K.bf16.pth",
    "models/tiny-rwkv-7v0-834K.bf16.safetensors",
};

static fixture_model fm;
static int fm_ok;

static void golden_for(const char *ckpt)
{
    rwkv_error err = {{0}};
    rwkv_model *m = NULL;
    CHECK(fm_ok);
    int rc = rwkv_model_load(fixture_path(ckpt), &m, &err);
    CHECKF(rc == 0, "%s", err.msg);
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    CHECK(mi->generation == RWKV_GEN_V7);
    CHECK(mi->n_layer == fm.n_layer && mi->n_embd == fm.n_embd && mi->vocab_size == fm.vocab);
    CHECK(mi->state_floats == fm.state_floats);
    rwkv_engine *e = rwkv_engine_new(m, 0, &err);
    CHECK(e);
    size_t T = fm.n_tokens, C = (size_t)fm.n_embd;
    int whole[] = {(int)T};
    fixture_run o;
    int ok = fixture_run_blocks(&fm, m, e, NULL, 0, T, whole, 1, 0, &o) == 0;
    if (ok)
        ok = fixture_check_logits(&fm, o.logits, fm.logits, T, ckpt, NULL) == 0;
    if (ok)
        ok = fixture_check_state(&fm, o.state, fm.state_final, "state_final") == 0;
    /* hidden states at the listed positions, last and mean */
    double hb = fm.hidden_tol * fm.hidden_std;
    for (size_t i = 0; ok && i < fm.n_hidden_pos; i++) {
        size_t p = (size_t)fm.hidden_pos[i], w;
        double d = max_abs_diff(o.hidden + p * C, fm.hidden_at + i * C, C, &w);
        if (!(d <= hb)) {
            test_fail_at(__FILE__, __LINE__, "hidden at position %zu differs by %.3g (bound %.3g)",
                         p, d, hb);
            ok = 0;
        }
    }
    if (ok) {
        double d = max_abs_diff(o.hidden + (T - 1) * C, fm.hidden_last, C, NULL);
        float mean[4096];
        for (size_t c = 0; c < C; c++)
            mean[c] = (float)(o.hsum[c] / (double)T);
        double dm = max_abs_diff(mean, fm.hidden_mean, C, NULL);
        if (!(d <= hb) || !(dm <= hb)) {
            test_fail_at(__FILE__, __LINE__, "hidden last/mean differ by %.3g/%.3g (bound %.3g)",
                         d, dm, hb);
            ok = 0;
        }
    }
    if (ok) {
        size_t w;
        double d = max_abs_diff(o.surprisal, fm.surprisal, T - 1, &w);
        if (!(d <= fm.surprisal_tol)) {
            test_fail_at(__FILE__, __LINE__, "surprisal differs by %.3g nats at %zu (bound %.3g)",
                         d, w, fm.surprisal_tol);
            ok = 0;
        }
        if (!isnan(o.surprisal[T - 1])) {
            test_fail_at(__FILE__, __LINE__, "surprisal of the last position must be NaN");
            ok = 0;
        }
    }
    fixture_run_free(&o);
    /* probe: logits after the 3 tokens "in, last-only mode */
    if (ok) {
        uint32_t probe[3] = {0x22, 0x69, 0x6E};
        float *lg = malloc((size_t)fm.vocab * sizeof(float));
        rwkv_state *st = rwkv_state_new(m);
        rwkv_request q = {.state = st, .tokens = probe, .n_tokens = 3,
                          .logits = RWKV_LOGITS_LAST, .logits_out = lg, .next_token = -1};
        if (rwkv_forward(e, &q, 1, &err) != 0) {
            test_fail_at(__FILE__, __LINE__, "%s", err.msg);
            ok = 0;
        } else {
            double d = max_abs_diff(lg, fm.probe, (size_t)fm.vocab, NULL);
            if (!(d <= fm.probe_tol)) {
                test_fail_at(__FILE__, __LINE__, "probe logits differ by %.3g (bound %.3g)", d,
                             fm.probe_tol);
                ok = 0;
            }
        }
        free(lg);
        rwkv_state_free(st);
    }
    rwkv_engine_free(e);
    rwkv_model_free(m);
}

static void test_golden_fp32_pth(void) { golden_for(checkpoints[0]); }
static void test_golden_fp32_safetensors(void) { golden_for(checkpoints[1]); }
static void test_golden_bf16_pth(void) { golden_for(checkpoints[2]); }
static void test_golden_bf16_safetensors(void) { golden_for(checkpoints[3]); }

/* Block sizes 1, 7, 64, 333, 4096 and random splits: all equal the
 * reference (and each other) within the fixture bounds. */
static void test_block_size_invariance(void)
{
    rwkv_error err = {{0}};
    rwkv_model *m = NULL;
    CHECK(fm_ok);
    CHECKF(rwkv_model_load(fixture_path(checkpoints[3]), &m, &err) == 0, "%s", err.msg);
    rwkv_engine *e = rwkv_engine_new(m, 0, &err);
    CHECK(e);
    size_t T = fm.n_tokens;
    int s1[] = {1}, s7[] = {7}, s64[] = {64}, s333[] = {333}, s4096[] = {4096};
    int rnd[64];
    uint64_t seed = 12345;
    for (int i = 0; i < 64; i++)
        rnd[i] = 1 + (int)(test_rand(&seed) % 300);
    struct {
        const int *s;
        int n;
        const char *name;
    } cases[] = {{s1, 1, "block 1"},     {s7, 1, "block 7"},      {s64, 1, "block 64"},
                 {s333, 1, "block 333"}, {s4096, 1, "block 4096"}, {rnd, 64, "random splits"}};
    fixture_run base;
    int ok = fixture_run_blocks(&fm, m, e, NULL, 0, T, s4096, 1, 0, &base) == 0;
    for (size_t c = 0; ok && c < sizeof cases / sizeof cases[0]; c++) {
        fixture_run o;
        if (fixture_run_blocks(&fm, m, e, NULL, 0, T, cases[c].s, cases[c].n, 0, &o) != 0) {
            ok = 0;
            break;
        }
        ok = fixture_check_logits(&fm, o.logits, fm.logits, T, cases[c].name, NULL) == 0 &&
             fixture_check_logits(&fm, o.logits, base.logits, T, cases[c].name, NULL) == 0 &&
             fixture_check_state(&fm, o.state, fm.state_final, cases[c].name) == 0;
        /* surprisal across block boundaries uses next_token: same as one-shot */
        double d = max_abs_diff(o.surprisal, base.surprisal, T - 1, NULL);
        if (ok && !(d <= fm.surprisal_tol)) {
            test_fail_at(__FILE__, __LINE__, "%s: surprisal differs from one-shot by %.3g",
                         cases[c].name, d);
            ok = 0;
        }
        fixture_run_free(&o);
    }
    fixture_run_free(&base);
    rwkv_engine_free(e);
    rwkv_model_free(m);
}

/* Resuming from each state_after_N with tokens[N:] reproduces logits[N:]
 * and state_final; and our own state after N tokens matches state_after_N. */
static void test_resume_from_fixture_states(void)
{
    rwkv_error err = {{0}};
    rwkv_model *m = NULL;
    CHECK(fm_ok);
    CHECKF(rwkv_model_load(fixture_path(checkpoints[0]), &m, &err) == 0, "%s", err.msg);
    rwkv_engine *e = rwkv_engine_new(m, 0, &err);
    CHECK(e);
    size_t T = fm.n_tokens, V = (size_t)fm.vocab;
    int ok = 1;
    for (int i = 0; ok && i < 3; i++) {
        size_t n = (size_t)(i + 1) * 1000;
        int blk[] = {256};
        fixture_run o;
        ok = fixture_run_blocks(&fm, m, e, fm.state_after[i], n, T, blk, 1, 0, &o) == 0;
        char what[64];
        snprintf(what, sizeof what, "resume from state_after_%zu", n);
        ok = ok && fixture_check_logits(&fm, o.logits, fm.logits + n * V, T - n, what, NULL) == 0 &&
             fixture_check_state(&fm, o.state, fm.state_final, what) == 0;
        if (ok)
            fixture_run_free(&o);
        /* and the state we reach after n tokens is the reference's */
        if (ok) {
            ok = fixture_run_blocks(&fm, m, e, NULL, 0, n, blk, 1, 0, &o) == 0;
            snprintf(what, sizeof what, "state after %zu tokens", n);
            ok = ok && fixture_check_state(&fm, o.state, fm.state_after[i], what) == 0;
        }
        fixture_run_free(&o);
    }
    rwkv_engine_free(e);
    rwkv_model_free(m);
}

/* Several documents in one batch give exactly what each gives alone. */
static void test_batch_equals_separate(void)
{
    rwkv_error err = {{0}};
    rwkv_model *m = NULL;
    CHECK(fm_ok);
    CHECKF(rwkv_model_load(fixture_path(checkpoints[1]), &m, &err) == 0, "%s", err.msg);
    rwkv_engine *e = rwkv_engine_new(m, 2, &err);
    CHECK(e);
    size_t V = (size_t)fm.vocab;
    enum { D = 3 };
    size_t off[D] = {0, 1000, 2500}, len[D] = {700, 1, 1300};
    rwkv_state *st[D];
    float *lg[D];
    rwkv_request q[D];
    for (int d = 0; d < D; d++) {
        st[d] = rwkv_state_new(m);
        lg[d] = malloc(len[d] * V * sizeof(float));
        q[d] = (rwkv_request){.state = st[d], .tokens = fm.tokens + off[d], .n_tokens = (int)len[d],
                              .logits = RWKV_LOGITS_ALL, .logits_out = lg[d], .next_token = -1};
    }
    int rc = rwkv_forward(e, q, D, &err);
    for (int d = 0; rc == 0 && d < D; d++) {
        rwkv_state *alone = rwkv_state_new(m);
        float *la = malloc(len[d] * V * sizeof(float));
        rwkv_request one = q[d];
        one.state = alone;
        one.logits_out = la;
        rc = rwkv_forward(e, &one, 1, &err);
        double dl = rc == 0 ? max_abs_diff(la, lg[d], len[d] * V, NULL) : 1;
        if (dl > fm.logits_tol * fm.logits_std * 0.1) {
            test_fail_at(__FILE__, __LINE__, "document %d: batched vs alone differ by %.3g", d, dl);
            rc = -1;
        }
        free(la);
        rwkv_state_free(alone);
    }
    for (int d = 0; d < D; d++) {
        rwkv_state_free(st[d]);
        free(lg[d]);
    }
    rwkv_engine_free(e);
    rwkv_model_free(m);
    CHECKF(rc == 0, "%s", err.msg);
}

/* Bad requests fail cleanly before touching the state. */
static void test_bad_requests_refused(void)
{
    rwkv_error err = {{0}};
    rwkv_model *m = NULL;
    CHECK(fm_ok);
    CHECKF(rwkv_model_load(fixture_path(checkpoints[1]), &m, &err) == 0, "%s", err.msg);
    rwkv_engine *e = rwkv_engine_new(m, 1, &err);
    rwkv_state *st = rwkv_state_new(m);
    float *before = malloc(fm.state_floats * sizeof(float));
    float *after = malloc(fm.state_floats * sizeof(float));
    uint32_t toks[2] = {65, 256};
    rwkv_state_export(st, before, NULL);
    rwkv_request q = {.state = st, .tokens = toks, .n_tokens = 2};
    int rc1 = rwkv_forward(e, &q, 1, &err);
    int named = strstr(err.msg, "256") != NULL;
    q.n_tokens = 0;
    int rc2 = rwkv_forward(e, &q, 1, &err);
    q.n_tokens = 1;
    q.logits = RWKV_LOGITS_LAST; /* no buffer */
    int rc3 = rwkv_forward(e, &q, 1, &err);
    float bad[4] = {0, NAN, 0, 0};
    int rc4 = rwkv_state_import(st, bad, 4, &err);
    rwkv_state_export(st, after, NULL);
    int same = memcmp(before, after, fm.state_floats * sizeof(float)) == 0;
    free(before);
    free(after);
    rwkv_state_free(st);
    rwkv_engine_free(e);
    rwkv_model_free(m);
    CHECK(rc1 == -1 && named);
    CHECK(rc2 == -1 && rc3 == -1 && rc4 == -1);
    CHECK(same);
}

/* Surprisal alone (no logits): the last position has no target when
 * next_token < 0 and must read NaN, whatever the buffer held; the others
 * equal the reference. */
static void test_surprisal_only_last_is_nan(void)
{
    rwkv_error err = {{0}};
    rwkv_model *m = NULL;
    CHECK(fm_ok);
    CHECKF(rwkv_model_load(fixture_path(checkpoints[1]), &m, &err) == 0, "%s", err.msg);
    rwkv_engine *e = rwkv_engine_new(m, 1, &err);
    rwkv_state *st = rwkv_state_new(m);
    float sur[300];
    for (int i = 0; i < 300; i++)
        sur[i] = 123.0f;
    rwkv_request q = {.state = st, .tokens = fm.tokens, .n_tokens = 300, .surprisal_out = sur,
                      .next_token = -1};
    int rc = rwkv_forward(e, &q, 1, &err);
    double d = max_abs_diff(sur, fm.surprisal, 299, NULL);
    int last_nan = isnan(sur[299]);
    rwkv_state_free(st);
    rwkv_engine_free(e);
    rwkv_model_free(m);
    CHECKF(rc == 0, "%s", err.msg);
    CHECKF(d <= fm.surprisal_tol, "surprisal differs by %.3g", d);
    CHECK(last_nan);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    fm_ok = fixture_model_load(&fm, DIR) == 0;
    if (!fm_ok)
        printf("FAIL: fixtures of %s could not be loaded (see above)\n", DIR);
    RUN(test_golden_fp32_pth);
    RUN(test_golden_fp32_safetensors);
    RUN(test_golden_bf16_pth);
    RUN(test_golden_bf16_safetensors);
    RUN(test_block_size_invariance);
    RUN(test_resume_from_fixture_states);
    RUN(test_batch_equals_separate);
    RUN(test_bad_requests_refused);
    RUN(test_surprisal_only_last_is_nan);
    fixture_model_free(&fm);
    return test_summary();
}
