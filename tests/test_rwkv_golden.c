/* test_rwkv_golden.c — every generation's engine (RWKV-4, 5.0, 5.2, 6, 7)
 * against the official package's outputs (../shared/fixtures/tiny-rwkv-*),
 * one table row per fixture model, the same checks for each:
 *  - golden, for every checkpoint flavour the fixtures hold (.pth and
 *    .safetensors; fp32 and bf16 for RWKV-7), with the manifests'
 *    tolerances: logits at all 4096 positions, hidden states (positions,
 *    last, mean), surprisal, probe logits, our state after 1000/2000/3000
 *    tokens (.pth runs) and at the end;
 *  - invariances: block sizes and random splits, resuming from every
 *    state_after_N, bit-exact batch invariance (alone, batched, reversed,
 *    1 and 2 threads), a batch with a one-token request within tolerance;
 *  - refusals: bad requests leave the state untouched; surprisal alone
 *    ends on NaN when no token follows.
 * Prints the measured max |Δlogit| / std per model and checkpoint.
 * Run one model or check with `make check T=test_rwkv_golden ARGS=v7`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/forward.h"
#include "core/model.h"
#include "core/state.h"
#include "tests/support/fixture_model.h"
#include "tests/support/fixture_run.h"
#include "tests/testutil.h"

typedef struct {
    const char *tag; /* in the test names: v4, v5_0, ... */
    const char *dir;
    rwkv_generation gen;
    int n_head, head_size, ffn_dim;
    const char *flavours[4]; /* checkpoint file suffixes, NULL-terminated */
    /* block 1 / 7 run over the first 1000 / 2000 tokens only (a parallel
     * region per step is slow on the larger models); 0: all 4096 */
    int short_small_blocks;
} model_case;

static const model_case cases[] = {
    {"v4", "tiny-rwkv-4v0-660K", RWKV_GEN_V4, 1, 128, 256, {"pth", "safetensors"}, 1},
    {"v5_0", "tiny-rwkv-5v1-730K", RWKV_GEN_V5_0, 8, 8, 256, {"pth", "safetensors"}, 1},
    {"v5_2", "tiny-rwkv-5v2-730K", RWKV_GEN_V5_2, 8, 8, 256, {"pth", "safetensors"}, 1},
    {"v6", "tiny-rwkv-6v0-3m", RWKV_GEN_V6, 16, 8, 448, {"pth", "safetensors"}, 1},
    {"v7", "tiny-rwkv-7v0-834K", RWKV_GEN_V7, 1, 64, 256,
     {"pth", "safetensors", "bf16.pth", "bf16.safetensors"}, 0},
};
#define N_CASES (sizeof cases / sizeof cases[0])

static fixture_model fm;

static rwkv_model *load(const char *ext, const model_case *mc)
{
    char rel[128];
    snprintf(rel, sizeof rel, "models/%s.%s", mc->dir, ext);
    rwkv_model *m = NULL;
    rwkv_error err = {{0}};
    if (rwkv_model_load(fixture_path(rel), &m, &err) != 0)
        test_fail_at(__FILE__, __LINE__, "%s: %s", rel, err.msg);
    return m;
}

static int check_hidden(const fixture_run *o)
{
    size_t C = (size_t)fm.n_embd, T = fm.n_tokens;
    double hb = fm.hidden_tol * fm.hidden_std;
    for (size_t i = 0; i < fm.n_hidden_pos; i++) {
        size_t p = (size_t)fm.hidden_pos[i];
        double d = max_abs_diff(o->hidden + p * C, fm.hidden_at + i * C, C, NULL);
        if (!(d <= hb)) {
            test_fail_at(__FILE__, __LINE__, "%s: hidden at position %zu differs by %.3g "
                                             "(bound %.3g)",
                         fm.dir, p, d, hb);
            return -1;
        }
    }
    double d = max_abs_diff(o->hidden + (T - 1) * C, fm.hidden_last, C, NULL);
    float mean[4096];
    for (size_t c = 0; c < C; c++)
        mean[c] = (float)(o->hsum[c] / (double)T);
    double dm = max_abs_diff(mean, fm.hidden_mean, C, NULL);
    if (!(d <= hb) || !(dm <= hb)) {
        test_fail_at(__FILE__, __LINE__, "%s: hidden last/mean differ by %.3g/%.3g (bound %.3g)",
                     fm.dir, d, dm, hb);
        return -1;
    }
    return 0;
}

static int check_surprisal(const fixture_run *o)
{
    size_t T = fm.n_tokens, w;
    double d = max_abs_diff(o->surprisal, fm.surprisal, T - 1, &w);
    if (!(d <= fm.surprisal_tol)) {
        test_fail_at(__FILE__, __LINE__, "%s: surprisal differs by %.3g nats at %zu (bound %.3g)",
                     fm.dir, d, w, fm.surprisal_tol);
        return -1;
    }
    if (!isnan(o->surprisal[T - 1])) {
        test_fail_at(__FILE__, __LINE__, "surprisal of the last position must be NaN");
        return -1;
    }
    return 0;
}

static int check_probe(const rwkv_model *m, rwkv_engine *e)
{
    uint32_t probe[3] = {0x22, 0x69, 0x6E};
    float lg[256];
    rwkv_state *st = rwkv_state_new(m);
    rwkv_error err = {{0}};
    rwkv_request q = {.state = st, .tokens = probe, .n_tokens = 3, .logits = RWKV_LOGITS_LAST,
                      .logits_out = lg, .next_token = -1};
    int rc = rwkv_forward(e, &q, 1, &err);
    rwkv_state_free(st);
    if (rc != 0) {
        test_fail_at(__FILE__, __LINE__, "%s", err.msg);
        return -1;
    }
    double d = max_abs_diff(lg, fm.probe, (size_t)fm.vocab, NULL);
    if (!(d <= fm.probe_tol)) {
        test_fail_at(__FILE__, __LINE__, "%s: probe logits differ by %.3g (bound %.3g)", fm.dir, d,
                     fm.probe_tol);
        return -1;
    }
    return 0;
}

/* Everything against the reference, for one checkpoint format.  The .pth
 * run goes in blocks of 1000 (our states after 1000/2000/3000 are checked),
 * the .safetensors run in one block. */
static void golden(const model_case *mc, const char *ext)
{
    rwkv_model *m = load(ext, mc);
    CHECK(m);
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    CHECKF(mi->generation == mc->gen, "generation %d (%s)", mi->generation, mi->generation_name);
    CHECK(mi->n_layer == fm.n_layer && mi->n_embd == fm.n_embd && mi->vocab_size == fm.vocab);
    CHECK(mi->n_head == mc->n_head && mi->head_size == mc->head_size &&
          mi->ffn_dim == mc->ffn_dim);
    CHECK(mi->state_floats == fm.state_floats);
    rwkv_error err = {{0}};
    rwkv_engine *e = rwkv_engine_new(m, 0, &err);
    CHECK(e);
    size_t el = strlen(ext);
    int is_pth = el >= 3 && strcmp(ext + el - 3, "pth") == 0;
    int blk[1] = {is_pth ? 1000 : (int)fm.n_tokens};
    fixture_run o;
    double measured = NAN;
    int ok = fixture_run_blocks(&fm, m, e, NULL, 0, fm.n_tokens, blk, 1, 1, &o) == 0;
    ok = ok && fixture_check_logits(&fm, o.logits, fm.logits, fm.n_tokens, ext, &measured) == 0;
    ok = ok && fixture_check_state(&fm, o.state, fm.state_final, "state_final") == 0;
    for (int i = 0; ok && is_pth && i < 3; i++) {
        char what[128];
        snprintf(what, sizeof what, "%s: state after %d tokens", fm.dir, (i + 1) * 1000);
        ok = o.states_at[i] && fixture_check_state(&fm, o.states_at[i], fm.state_after[i], what) == 0;
    }
    ok = ok && check_hidden(&o) == 0 && check_surprisal(&o) == 0 && check_probe(m, e) == 0;
    printf("# %s (%s, .%s): logits max |diff| / std = %.3g (bound %.3g)\n", fm.dir,
           mi->generation_name, ext, measured, fm.logits_tol);
    fixture_run_free(&o);
    rwkv_engine_free(e);
    rwkv_model_free(m);
    CHECK(ok);
}

/* Block sizes 1, 7, 64, 333 and random splits all equal the reference
 * within the fixture bounds (4096 is the .safetensors golden run).  The
 * one-token and 7-token paths, which cost a parallel region per step, run
 * over the first 1000 / 2000 tokens and end on state_after_N; the others
 * over all 4096. */
static void block_sizes(const model_case *mc)
{
    rwkv_model *m = load("safetensors", mc);
    CHECK(m);
    rwkv_error err = {{0}};
    rwkv_engine *e = rwkv_engine_new(m, 0, &err);
    CHECK(e);
    int s1[] = {1}, s7[] = {7}, s64[] = {64}, s333[] = {333};
    int rnd[64];
    uint64_t seed = 777;
    for (int i = 0; i < 64; i++)
        rnd[i] = 1 + (int)(test_rand(&seed) % 300);
    struct {
        const int *s;
        int n;
        size_t until;
        const char *name;
    } bs[] = {{s1, 1, mc->short_small_blocks ? 1000 : 4096, "block 1"},
              {s7, 1, mc->short_small_blocks ? 2000 : 4096, "block 7"},
              {s64, 1, 4096, "block 64"},   {s333, 1, 4096, "block 333"},
              {rnd, 64, 4096, "random splits"}};
    int ok = 1;
    for (size_t c = 0; ok && c < sizeof bs / sizeof bs[0]; c++) {
        size_t T = bs[c].until < fm.n_tokens ? bs[c].until : fm.n_tokens;
        const float *ref_state = T == fm.n_tokens ? fm.state_final : fm.state_after[T / 1000 - 1];
        fixture_run o;
        ok = fixture_run_blocks(&fm, m, e, NULL, 0, T, bs[c].s, bs[c].n, 1, &o) == 0 &&
             fixture_check_logits(&fm, o.logits, fm.logits, T, bs[c].name, NULL) == 0 &&
             fixture_check_state(&fm, o.state, ref_state, bs[c].name) == 0;
        for (int i = 0; ok && i < 3 && (size_t)(i + 1) * 1000 < T; i++)
            ok = o.states_at[i] &&
                 fixture_check_state(&fm, o.states_at[i], fm.state_after[i], bs[c].name) == 0;
        /* surprisal across block boundaries uses next_token */
        double d = ok ? max_abs_diff(o.surprisal, fm.surprisal, T - 1, NULL) : 0;
        if (ok && !(d <= fm.surprisal_tol)) {
            test_fail_at(__FILE__, __LINE__, "%s %s: surprisal differs by %.3g", fm.dir,
                         bs[c].name, d);
            ok = 0;
        }
        fixture_run_free(&o);
    }
    rwkv_engine_free(e);
    rwkv_model_free(m);
    CHECK(ok);
}

/* Resuming from each state_after_N with tokens[N:] reproduces logits[N:]
 * and state_final. */
static void resume(const model_case *mc)
{
    rwkv_model *m = load("pth", mc);
    CHECK(m);
    rwkv_error err = {{0}};
    rwkv_engine *e = rwkv_engine_new(m, 0, &err);
    CHECK(e);
    size_t T = fm.n_tokens, V = (size_t)fm.vocab;
    int ok = 1;
    for (int i = 0; ok && i < 3; i++) {
        size_t n = (size_t)(i + 1) * 1000;
        int blk[] = {256};
        fixture_run o;
        char what[64];
        snprintf(what, sizeof what, "resume from state_after_%zu", n);
        ok = fixture_run_blocks(&fm, m, e, fm.state_after[i], n, T, blk, 1, 1, &o) == 0 &&
             fixture_check_logits(&fm, o.logits, fm.logits + n * V, T - n, what, NULL) == 0 &&
             fixture_check_state(&fm, o.state, fm.state_final, what) == 0;
        fixture_run_free(&o);
    }
    rwkv_engine_free(e);
    rwkv_model_free(m);
    CHECK(ok);
}

/* ---- batch invariance, bit for bit ---- */

typedef struct {
    float *logits, *hidden, *sur, *state;
} outs;

static void outs_free(outs *o)
{
    free(o->logits);
    free(o->hidden);
    free(o->sur);
    free(o->state);
}

static int run_batch(rwkv_engine *e, const rwkv_model *m, const int *start, const int *len, int n,
                     outs *o)
{
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    size_t V = (size_t)mi->vocab_size, C = (size_t)mi->n_embd, S = mi->state_floats;
    rwkv_request q[8];
    rwkv_state *st[8];
    rwkv_error err;
    for (int i = 0; i < n; i++) {
        st[i] = rwkv_state_new(m);
        uint32_t warm[6] = {10, (uint32_t)(start[i] % 7), 33, 4, 95, 6};
        rwkv_request w = {.state = st[i], .tokens = warm, .n_tokens = 6};
        if (rwkv_forward(e, &w, 1, &err) != 0)
            return -1;
        o[i].logits = malloc(sizeof(float) * V * (size_t)len[i]);
        o[i].hidden = malloc(sizeof(float) * C * (size_t)len[i]);
        o[i].sur = malloc(sizeof(float) * (size_t)len[i]);
        o[i].state = malloc(sizeof(float) * S);
        q[i] = (rwkv_request){.state = st[i], .tokens = fm.tokens + start[i], .n_tokens = len[i],
                              .logits = RWKV_LOGITS_ALL, .logits_out = o[i].logits,
                              .hidden = RWKV_HIDDEN_ALL, .hidden_out = o[i].hidden,
                              .surprisal_out = o[i].sur, .next_token = 7};
    }
    int rc = rwkv_forward(e, q, n, &err);
    if (rc != 0)
        test_fail_at(__FILE__, __LINE__, "forward: %s", err.msg);
    for (int i = 0; i < n; i++) {
        rwkv_state_export(st[i], o[i].state, NULL);
        rwkv_state_free(st[i]);
    }
    return rc;
}

static int same(const outs *a, const outs *b, const rwkv_model *m, int len)
{
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    size_t V = (size_t)mi->vocab_size, C = (size_t)mi->n_embd;
    return memcmp(a->hidden, b->hidden, sizeof(float) * C * (size_t)len) == 0 &&
           memcmp(a->logits, b->logits, sizeof(float) * V * (size_t)len) == 0 &&
           memcmp(a->sur, b->sur, sizeof(float) * (size_t)len) == 0 &&
           memcmp(a->state, b->state, sizeof(float) * mi->state_floats) == 0;
}

static void batch_invariance(const model_case *mc)
{
    rwkv_model *m = load("safetensors", mc);
    CHECK(m);
    /* lengths around the pass (1024) and head-chunk (128) boundaries */
    int start[4] = {0, 11, 400, 1200}, len[4] = {5, 37, 1100, 129};
    rwkv_error err;
    rwkv_engine *e1 = rwkv_engine_new(m, 1, &err), *e2 = rwkv_engine_new(m, 2, &err);
    CHECK(e1 && e2);
    outs alone[4] = {{0}}, batch[4] = {{0}}, rev[4] = {{0}};
    int ok = 1;
    for (int i = 0; i < 4 && ok; i++)
        ok = run_batch(e1, m, &start[i], &len[i], 1, &alone[i]) == 0;
    ok = ok && run_batch(e2, m, start, len, 4, batch) == 0;
    int rs[4], rl[4];
    for (int i = 0; i < 4; i++)
        rs[i] = start[3 - i], rl[i] = len[3 - i];
    ok = ok && run_batch(e2, m, rs, rl, 4, rev) == 0;
    int bad = -1;
    for (int i = 0; ok && i < 4; i++)
        if (!same(&alone[i], &batch[i], m, len[i]) || !same(&alone[i], &rev[3 - i], m, len[i]))
            bad = i;
    for (int i = 0; i < 4; i++) {
        outs_free(&alone[i]);
        outs_free(&batch[i]);
        outs_free(&rev[i]);
    }
    rwkv_engine_free(e1);
    rwkv_engine_free(e2);
    rwkv_model_free(m);
    CHECK(ok);
    CHECKF(bad < 0, "%s: request %d (%d tokens) differs between alone and batched", fm.dir, bad,
           bad >= 0 ? len[bad] : 0);
}

/* Several documents in one batch, one of them a single token (the GEMV
 * path alone, the batched path in a batch: forward.h allows the last bits
 * to differ), give what each gives alone within a tenth of the bound. */
static void batch_with_one_token(const model_case *mc)
{
    rwkv_error err = {{0}};
    rwkv_model *m = load("safetensors", mc);
    CHECK(m);
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
static void bad_requests(const model_case *mc)
{
    rwkv_error err = {{0}};
    rwkv_model *m = load("safetensors", mc);
    CHECK(m);
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
static void surprisal_only(const model_case *mc)
{
    rwkv_error err = {{0}};
    rwkv_model *m = load("safetensors", mc);
    CHECK(m);
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

/* ---- one RUN per (model, check) ---- */

static const model_case *g_case;
static const char *g_flavour;
static void (*g_check)(void);

/* Loads the model's fixtures unless they are loaded already; a missing
 * fixture fails the current test. */
static int select_model(const model_case *mc)
{
    if (fm.logits && strcmp(fm.dir, mc->dir) == 0)
        return 0;
    fixture_model_free(&fm);
    if (fixture_model_load(&fm, mc->dir) != 0) {
        test_fail_at(__FILE__, __LINE__, "fixtures of %s could not be loaded", mc->dir);
        return -1;
    }
    return 0;
}

static void guarded(void)
{
    if (select_model(g_case) == 0)
        g_check();
}

static void run_golden(void) { golden(g_case, g_flavour); }
static void run_block_sizes(void) { block_sizes(g_case); }
static void run_resume(void) { resume(g_case); }
static void run_batch_invariance(void) { batch_invariance(g_case); }
static void run_batch_with_one_token(void) { batch_with_one_token(g_case); }
static void run_bad_requests(void) { bad_requests(g_case); }
static void run_surprisal_only(void) { surprisal_only(g_case); }

/* Runs check fn of model mc as test "test_<tag>_<what>" (fixtures loaded
 * only for selected tests). */
static void run_check(const model_case *mc, const char *what, void (*fn)(void))
{
    char name[96];
    snprintf(name, sizeof name, "test_%s_%s", mc->tag, what);
    g_case = mc;
    g_check = fn;
    test_run(name, guarded);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    for (size_t i = 0; i < N_CASES; i++) {
        const model_case *mc = &cases[i];
        for (int f = 0; f < 4 && mc->flavours[f]; f++) {
            char what[48];
            snprintf(what, sizeof what, "golden_%s", mc->flavours[f]);
            for (char *p = what; *p; p++)
                if (*p == '.')
                    *p = '_';
            g_flavour = mc->flavours[f];
            run_check(mc, what, run_golden);
        }
        run_check(mc, "block_sizes", run_block_sizes);
        run_check(mc, "resume", run_resume);
        run_check(mc, "batch_invariance", run_batch_invariance);
        run_check(mc, "batch_with_one_token", run_batch_with_one_token);
        run_check(mc, "bad_requests", run_bad_requests);
        run_check(mc, "surprisal_only", run_surprisal_only);
    }
    fixture_model_free(&fm);
    return test_summary();
}
