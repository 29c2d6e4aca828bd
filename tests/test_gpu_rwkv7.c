/* test_gpu_rwkv7.c — the CUDA backend against the official package's
 * outputs for the tiny RWKV-7 model (../shared/fixtures/tiny-rwkv-7v0-834K):
 *  - the WKV-7 kernel alone against the CPU recurrence, element by element;
 *  - fp32 mode: every output (logits at all 4096 positions, hidden states,
 *    pooled hidden, surprisal, probe, states) within the manifest's
 *    tolerances, for the fp32 and the bf16 checkpoint;
 *  - fp32 mode: block sizes 1/7/64/333/4096 and random splits agree with
 *    the fixtures and with each other; resuming from state_after_N;
 *  - checkpoints move between backends: GPU → CPU → GPU → another GPU
 *    engine on one state object, every leg within the fixture bounds;
 *  - bf16 mode: the statistical bound (gpu_harness.h) over all 4096×256
 *    logits, for both checkpoints and several block sizes, and a state
 *    written by the bf16 GPU path resumes on the CPU;
 *  - the CLI's --device cuda on the device.
 * Without a device every test prints SKIP with the reason (make test runs
 * this program too; make test-gpu runs it on a GPU machine). */
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/forward.h"
#include "core/model.h"
#include "core/engine/rwkv7.h"
#include "core/state.h"
#include "tests/support/fixture_model.h"
#include "tests/support/gpu_harness.h"
#include "tests/testutil.h"
#ifndef RWKV_NO_CUDA
#include "kernels/rwkv_cuda.h"
#endif

extern char **environ;

/* Under ASan the CUDA driver needs the shadow gap unprotected (it maps
 * memory there); harmless elsewhere. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "protect_shadow_gap=0";
}

#define DIR "tiny-rwkv-7v0-834K"
#define CKPT_F32 "models/tiny-rwkv-7v0-834K.safetensors"
#define CKPT_BF16 "models/tiny-rwkv-7v0-834K.bf16.pth"
#define CKPT_BF16_ST "models/tiny-rwkv-7v0-834K.bf16.safetensors"

static fixture_model fm;
static int fm_ok;

typedef struct {
    float *logits, *hidden, *surprisal, *state;
    double *hsum;
} run_out;

static void run_out_free(run_out *o)
{
    free(o->logits);
    free(o->hidden);
    free(o->surprisal);
    free(o->state);
    free(o->hsum);
    memset(o, 0, sizeof *o);
}

/* Runs fixture tokens [from, to) on st with engine e in blocks whose sizes
 * cycle through sizes[], with every output; o's buffers are indexed from
 * `from` (row 0 = token from). */
static int run_on(rwkv_engine *e, rwkv_state *st, size_t from, size_t to, const int *sizes,
                  int n_sizes, run_out *o)
{
    size_t V = (size_t)fm.vocab, C = (size_t)fm.n_embd, T = to - from;
    for (size_t pos = 0, k = 0; pos < T; k++) {
        size_t n = (size_t)sizes[k % (size_t)n_sizes];
        n = n > T - pos ? T - pos : n;
        rwkv_request q = {
            .state = st,
            .tokens = fm.tokens + from + pos,
            .n_tokens = (int)n,
            .logits = RWKV_LOGITS_ALL,
            .logits_out = o->logits + pos * V,
            .hidden = RWKV_HIDDEN_ALL,
            .hidden_out = o->hidden + pos * C,
            .hidden_sum = o->hsum,
            .surprisal_out = o->surprisal + pos,
            .next_token = from + pos + n < fm.n_tokens ? (int64_t)fm.tokens[from + pos + n] : -1,
        };
        rwkv_error err;
        rwkv_error_clear(&err);
        if (rwkv_forward(e, &q, 1, &err) != 0) {
            test_fail_at(__FILE__, __LINE__, "forward at %zu: %s", from + pos, err.msg);
            return -1;
        }
        pos += n;
    }
    return 0;
}

static int run_out_alloc(run_out *o, size_t T)
{
    memset(o, 0, sizeof *o);
    o->logits = malloc(T * (size_t)fm.vocab * sizeof(float));
    o->hidden = malloc(T * (size_t)fm.n_embd * sizeof(float));
    o->surprisal = malloc(T * sizeof(float));
    o->state = malloc(fm.state_floats * sizeof(float));
    o->hsum = calloc((size_t)fm.n_embd, sizeof(double));
    if (!o->logits || !o->hidden || !o->surprisal || !o->state || !o->hsum) {
        run_out_free(o);
        test_fail_at(__FILE__, __LINE__, "out of memory");
        return -1;
    }
    return 0;
}

/* A fresh state (or `init`), tokens [from, to), final state exported. */
static int run_blocks(rwkv_engine *e, const rwkv_model *m, const float *init, size_t from,
                      size_t to, const int *sizes, int n_sizes, run_out *o)
{
    if (run_out_alloc(o, to - from) != 0)
        return -1;
    rwkv_state *st = rwkv_state_new(m);
    rwkv_error err;
    rwkv_error_clear(&err);
    int rc = -1;
    if (!st)
        test_fail_at(__FILE__, __LINE__, "out of memory");
    else if (init && rwkv_state_import(st, init, fm.state_floats, &err) != 0)
        test_fail_at(__FILE__, __LINE__, "import: %s", err.msg);
    else if (run_on(e, st, from, to, sizes, n_sizes, o) == 0) {
        if (rwkv_state_export(st, o->state, &err) != 0)
            test_fail_at(__FILE__, __LINE__, "export: %s", err.msg);
        else
            rc = 0;
    }
    rwkv_state_free(st);
    if (rc != 0)
        run_out_free(o);
    return rc;
}

static int check_logits(const float *got, const float *ref, size_t rows, const char *what)
{
    return gpu_check_close(got, ref, rows * (size_t)fm.vocab, (size_t)fm.vocab,
                           fm.logits_tol * fm.logits_std, what);
}

static rwkv_model *load(const char *ckpt)
{
    rwkv_model *m = NULL;
    rwkv_error err;
    rwkv_error_clear(&err);
    if (rwkv_model_load(fixture_path(ckpt), &m, &err) != 0)
        test_fail_at(__FILE__, __LINE__, "%s: %s", ckpt, err.msg);
    return m;
}

/* ---------------------------------------------------------------- kernel */

static float frand(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(test_rand(s) >> 11) / 9007199254740992.0);
}

/* The scan kernel alone against rwkv7_wkv_head (core/engine/rwkv7_wkv.c) with
 * realistic ranges: decay in (e^-0.606531, 1), kk unit length per token, a
 * in (0, 1); T across the kernel's 16-token staging boundary. */
static void test_wkv7_kernel_matches_cpu(void)
{
    int Ns[] = {32, 64, 128}, Ts[] = {1, 3, 16, 17, 50};
    uint64_t seed = 99;
    for (int ni = 0; ni < 3; ni++)
        for (int ti = 0; ti < 5; ti++) {
            int N = Ns[ni], T = Ts[ti], ld = 2 * N;
            size_t n = (size_t)T * ld;
            float *in[6], *S0 = malloc(sizeof(float) * N * N), *Sc = malloc(sizeof(float) * N * N),
                          *Sg = malloc(sizeof(float) * N * N);
            float *yc = calloc(n, sizeof(float)), *yg = calloc(n, sizeof(float));
            for (int i = 0; i < 6; i++)
                in[i] = malloc(n * sizeof(float));
            for (size_t i = 0; i < n; i++) {
                in[0][i] = frand(&seed, -1, 1);              /* r */
                in[1][i] = expf(-0.606531f * frand(&seed, 0, 1)); /* w */
                in[2][i] = frand(&seed, -1, 1);              /* k */
                in[3][i] = frand(&seed, -1, 1);              /* v */
                in[4][i] = frand(&seed, -1, 1);              /* kk, normalised below */
                in[5][i] = frand(&seed, 0, 1);               /* a */
            }
            for (int t = 0; t < T; t++) {
                double s = 0;
                for (int j = 0; j < N; j++)
                    s += (double)in[4][(size_t)t * ld + j] * in[4][(size_t)t * ld + j];
                for (int j = 0; j < N; j++)
                    in[4][(size_t)t * ld + j] /= (float)sqrt(s);
            }
            for (int i = 0; i < N * N; i++)
                S0[i] = frand(&seed, -1, 1);
            memcpy(Sc, S0, sizeof(float) * N * N);
            memcpy(Sg, S0, sizeof(float) * N * N);
            rwkv7_wkv_head(Sc, N, T, ld, in[0], in[1], in[2], in[3], in[4], in[5], yc);
            rwkv_error err;
            rwkv_error_clear(&err);
            int rc = 0;
#ifndef RWKV_NO_CUDA
            if (gpu_real())
                rc = rwkv_cuda_wkv7_run(0, N, T, ld, in[0], in[1], in[2], in[3], in[4], in[5], Sg,
                                        yg, &err);
            else
#endif
                rwkv7_wkv_head(Sg, N, T, ld, in[0], in[1], in[2], in[3], in[4], in[5], yg);
            int ok = rc == 0;
            if (!ok)
                test_fail_at(__FILE__, __LINE__, "N %d T %d: %s", N, T, err.msg);
            char what[64];
            double ys = 1;
            for (int t = 0; t < T; t++)
                for (int j = 0; j < N; j++)
                    ys = fmax(ys, fabs(yc[(size_t)t * ld + j]));
            for (int t = 0; ok && t < T; t++) {
                snprintf(what, sizeof what, "N %d T %d: y at token %d", N, T, t);
                ok = gpu_check_close(yg + (size_t)t * ld, yc + (size_t)t * ld, (size_t)N, 0,
                                     1e-5 * ys, what) == 0;
            }
            snprintf(what, sizeof what, "N %d T %d: state", N, T);
            double ss = fmax(1, max_abs_f32(Sc, (size_t)N * N));
            if (ok)
                ok = gpu_check_close(Sg, Sc, (size_t)N * N, (size_t)N, 1e-5 * ss, what) == 0;
            for (int i = 0; i < 6; i++)
                free(in[i]);
            free(S0);
            free(Sc);
            free(Sg);
            free(yc);
            free(yg);
            if (!ok)
                return;
        }
}

/* ---------------------------------------------------------------- fp32 */

static void golden_fp32(const char *ckpt)
{
    CHECK(fm_ok);
    rwkv_model *m = load(ckpt);
    CHECK(m);
    rwkv_error err;
    rwkv_engine *e = gpu_engine(m, "fp32", &err);
    if (!e) {
        rwkv_model_free(m);
        CHECKF(0, "engine: %s", err.msg);
    }
    size_t T = fm.n_tokens, C = (size_t)fm.n_embd;
    int whole[] = {(int)T};
    run_out o;
    int ok = run_blocks(e, m, NULL, 0, T, whole, 1, &o) == 0;
    if (ok)
        ok = check_logits(o.logits, fm.logits, T, ckpt) == 0 &&
             fixture_check_state(&fm, o.state, fm.state_final, "state_final") == 0;
    double hb = fm.hidden_tol * fm.hidden_std;
    for (size_t i = 0; ok && i < fm.n_hidden_pos; i++)
        ok = gpu_check_close(o.hidden + (size_t)fm.hidden_pos[i] * C, fm.hidden_at + i * C, C, 0,
                             hb, "hidden at a listed position") == 0;
    if (ok) {
        float mean[4096];
        for (size_t c = 0; c < C; c++)
            mean[c] = (float)(o.hsum[c] / (double)T);
        ok = gpu_check_close(o.hidden + (T - 1) * C, fm.hidden_last, C, 0, hb, "hidden last") ==
                 0 &&
             gpu_check_close(mean, fm.hidden_mean, C, 0, hb, "hidden mean (hidden_sum)") == 0 &&
             gpu_check_close(o.surprisal, fm.surprisal, T - 1, 0, fm.surprisal_tol,
                             "surprisal") == 0;
        if (ok && !isnan(o.surprisal[T - 1])) {
            test_fail_at(__FILE__, __LINE__, "surprisal at the last position must be NaN");
            ok = 0;
        }
    }
    run_out_free(&o);
    if (ok) { /* the probe, last-only logits */
        uint32_t probe[3] = {0x22, 0x69, 0x6E};
        float lg[256];
        rwkv_state *st = rwkv_state_new(m);
        rwkv_request q = {.state = st, .tokens = probe, .n_tokens = 3,
                          .logits = RWKV_LOGITS_LAST, .logits_out = lg, .next_token = -1};
        if (rwkv_forward(e, &q, 1, &err) != 0) {
            test_fail_at(__FILE__, __LINE__, "probe: %s", err.msg);
        } else {
            gpu_check_close(lg, fm.probe, (size_t)fm.vocab, 0, fm.probe_tol, "probe logits");
        }
        rwkv_state_free(st);
    }
    rwkv_engine_free(e);
    rwkv_model_free(m);
}

static void test_fp32_golden_f32_checkpoint(void)
{
    golden_fp32(CKPT_F32);
}

static void test_fp32_golden_bf16_checkpoint(void)
{
    golden_fp32(CKPT_BF16);
}

static void test_fp32_block_size_invariance(void)
{
    CHECK(fm_ok);
    rwkv_model *m = load(CKPT_F32);
    CHECK(m);
    rwkv_error err;
    rwkv_engine *e = gpu_engine(m, "fp32", &err);
    if (!e) {
        rwkv_model_free(m);
        CHECKF(0, "engine: %s", err.msg);
    }
    size_t T = fm.n_tokens;
    int s1[] = {1}, s7[] = {7}, s64[] = {64}, s333[] = {333}, s4096[] = {4096}, rnd[64];
    uint64_t seed = 777;
    for (int i = 0; i < 64; i++)
        rnd[i] = 1 + (int)(test_rand(&seed) % 300);
    struct {
        const int *s;
        int n;
        const char *name;
    } cases[] = {{s1, 1, "block 1"},     {s7, 1, "block 7"},   {s64, 1, "block 64"},
                 {s333, 1, "block 333"}, {rnd, 64, "random splits"}};
    run_out base;
    int base_ok = run_blocks(e, m, NULL, 0, T, s4096, 1, &base) == 0, ok = base_ok;
    for (size_t c = 0; ok && c < sizeof cases / sizeof cases[0]; c++) {
        run_out o;
        if (run_blocks(e, m, NULL, 0, T, cases[c].s, cases[c].n, &o) != 0) {
            ok = 0;
            break;
        }
        ok = check_logits(o.logits, fm.logits, T, cases[c].name) == 0 &&
             check_logits(o.logits, base.logits, T, cases[c].name) == 0 &&
             fixture_check_state(&fm, o.state, fm.state_final, cases[c].name) == 0 &&
             gpu_check_close(o.surprisal, base.surprisal, T - 1, 0, fm.surprisal_tol,
                             cases[c].name) == 0;
        run_out_free(&o);
    }
    if (base_ok)
        run_out_free(&base);
    rwkv_engine_free(e);
    rwkv_model_free(m);
}

/* From each state_after_N: tokens[N:] reproduce logits[N:] and the final
 * state; and our own state after N tokens is state_after_N. */
static void test_fp32_resume_from_fixture_states(void)
{
    CHECK(fm_ok);
    rwkv_model *m = load(CKPT_F32);
    CHECK(m);
    rwkv_error err;
    rwkv_engine *e = gpu_engine(m, "fp32", &err);
    if (!e) {
        rwkv_model_free(m);
        CHECKF(0, "engine: %s", err.msg);
    }
    size_t T = fm.n_tokens;
    int block[] = {512};
    int ok = 1;
    for (int k = 0; ok && k < 3; k++) {
        size_t N = 1000 * (size_t)(k + 1);
        run_out o;
        ok = run_blocks(e, m, fm.state_after[k], N, T, block, 1, &o) == 0;
        if (!ok)
            break;
        ok = check_logits(o.logits, fm.logits + N * (size_t)fm.vocab, T - N, "resumed logits") ==
                 0 &&
             fixture_check_state(&fm, o.state, fm.state_final, "resumed final state") == 0;
        run_out_free(&o);
        if (!ok)
            break;
        ok = run_blocks(e, m, NULL, 0, N, block, 1, &o) == 0;
        if (!ok)
            break;
        ok = fixture_check_state(&fm, o.state, fm.state_after[k], "state after N") == 0;
        run_out_free(&o);
    }
    rwkv_engine_free(e);
    rwkv_model_free(m);
}

/* One state object carried GPU → CPU → GPU → a second GPU engine; each leg
 * matches the fixtures, and the exported checkpoints between legs match
 * state_after_N (the device layout is the official one). */
static void test_state_moves_between_backends(void)
{
    CHECK(fm_ok);
    rwkv_model *m = load(CKPT_F32);
    CHECK(m);
    rwkv_error err;
    rwkv_engine *g1 = gpu_engine(m, "fp32", &err), *g2 = NULL, *cpu = NULL;
    if (g1)
        g2 = gpu_engine(m, "fp32", &err);
    if (g2)
        cpu = rwkv_engine_new(m, 0, &err);
    rwkv_state *st = rwkv_state_new(m);
    run_out o;
    memset(&o, 0, sizeof o);
    int ok = g1 && g2 && cpu && st && run_out_alloc(&o, fm.n_tokens) == 0;
    if (!ok)
        test_fail_at(__FILE__, __LINE__, "setup: %s", err.msg);
    struct {
        rwkv_engine *e;
        size_t from, to;
        const char *name;
    } legs[] = {{g1, 0, 1000, "gpu 0..1000"},
                {cpu, 1000, 2000, "cpu 1000..2000"},
                {g1, 2000, 3000, "gpu 2000..3000"},
                {g2, 3000, fm.n_tokens, "second gpu engine 3000.."}};
    int blk[] = {300};
    for (int i = 0; ok && i < 4; i++) {
        size_t V = (size_t)fm.vocab;
        ok = run_on(legs[i].e, st, legs[i].from, legs[i].to, blk, 1, &o) == 0 &&
             check_logits(o.logits, fm.logits + legs[i].from * V, legs[i].to - legs[i].from,
                          legs[i].name) == 0;
        if (ok && rwkv_state_export(st, o.state, &err) != 0) {
            test_fail_at(__FILE__, __LINE__, "export after %s: %s", legs[i].name, err.msg);
            ok = 0;
        }
        if (ok)
            ok = fixture_check_state(&fm, o.state,
                                     i < 3 ? fm.state_after[i] : fm.state_final,
                                     legs[i].name) == 0;
    }
    run_out_free(&o);
    rwkv_state_free(st);
    rwkv_engine_free(g1);
    rwkv_engine_free(g2);
    rwkv_engine_free(cpu);
    rwkv_model_free(m);
}

/* ---------------------------------------------------------------- bf16 */

static void bf16_stat(const char *ckpt)
{
    CHECK(fm_ok);
    rwkv_model *m = load(ckpt);
    CHECK(m);
    rwkv_error err;
    rwkv_engine *e = gpu_engine(m, "bf16", &err);
    if (!e) {
        rwkv_model_free(m);
        CHECKF(0, "engine: %s", err.msg);
    }
    size_t T = fm.n_tokens, n = T * (size_t)fm.vocab;
    int s4096[] = {4096}, s1[] = {1}, s333[] = {333};
    const int *sizes[] = {s4096, s1, s333};
    const char *names[] = {"bf16 block 4096", "bf16 block 1", "bf16 block 333"};
    int ok = 1;
    for (int i = 0; ok && i < 3; i++) {
        run_out o;
        ok = run_blocks(e, m, NULL, 0, T, sizes[i], 1, &o) == 0;
        if (ok) {
            char what[128];
            snprintf(what, sizeof what, "%s, %s", names[i], ckpt);
            ok = gpu_check_stat(o.logits, fm.logits, n, fm.logits_std, what) == 0;
            run_out_free(&o);
        }
    }
    rwkv_engine_free(e);
    rwkv_model_free(m);
}

static void test_bf16_statistical_f32_checkpoint(void)
{
    bf16_stat(CKPT_F32);
}

static void test_bf16_statistical_bf16_checkpoint(void)
{
    bf16_stat(CKPT_BF16_ST);
}

/* A checkpoint written by the bf16 GPU path (after 2000 tokens) resumes on
 * the CPU: the continuation stays within the statistical bound of the
 * fixture logits. */
static void test_bf16_checkpoint_resumes_on_cpu(void)
{
    CHECK(fm_ok);
    rwkv_model *m = load(CKPT_BF16_ST);
    CHECK(m);
    rwkv_error err;
    rwkv_engine *g = gpu_engine(m, "bf16", &err), *cpu = g ? rwkv_engine_new(m, 0, &err) : NULL;
    size_t T = fm.n_tokens, V = (size_t)fm.vocab;
    run_out a, b;
    int blk[] = {2000}, ok = g && cpu;
    if (!ok)
        test_fail_at(__FILE__, __LINE__, "engines: %s", err.msg);
    ok = ok && run_blocks(g, m, NULL, 0, 2000, blk, 1, &a) == 0;
    if (ok) {
        ok = run_blocks(cpu, m, a.state, 2000, T, blk, 1, &b) == 0;
        if (ok) {
            ok = gpu_check_stat(b.logits, fm.logits + 2000 * V, (T - 2000) * V, fm.logits_std,
                                "cpu resumed from a bf16 gpu checkpoint") == 0;
            run_out_free(&b);
        }
        run_out_free(&a);
    }
    rwkv_engine_free(g);
    rwkv_engine_free(cpu);
    rwkv_model_free(m);
}

/* ---------------------------------------------------------------- CLI */

static void test_cli_eval_on_device(void)
{
    CHECK(fm_ok);
    char model[4096], input[4096], out[64];
    snprintf(model, sizeof model, "%s", fixture_path(CKPT_F32));
    snprintf(input, sizeof input, "%s", fixture_path("inputs/gpl-3.first4096.bin"));
    snprintf(out, sizeof out, "/tmp/test_gpu_rwkv7.%d.sur", (int)getpid());
    const char *dev = gpu_real() ? "cuda:0" : "cpu";
    const char *argv[] = {gpu_bin("rwkv"), "eval", "-m", model, "--bytes", "--device", dev,
                          "-b", "333", "--out-surprisal", out, "-q", input, NULL};
    setenv("RWKV_CUDA_PRECISION", "fp32", 1);
    const char *asan = getenv("ASAN_OPTIONS");
    char asan_opts[512];
    snprintf(asan_opts, sizeof asan_opts, "%s%sprotect_shadow_gap=0", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", asan_opts, 1);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], NULL, NULL, (char *const *)argv, environ);
    unsetenv("RWKV_CUDA_PRECISION");
    CHECKF(rc == 0, "cannot run %s", argv[0]);
    int ws;
    CHECK(waitpid(pid, &ws, 0) == pid);
    CHECKF(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "rwkv eval --device %s failed (status %d)", dev,
           ws);
    size_t len = 0;
    float *sur = file_read_all(out, &len);
    unlink(out);
    CHECKF(sur && len == (fm.n_tokens - 1) * sizeof(float), "surprisal file: %zu bytes", len);
    int ok = gpu_check_close(sur, fm.surprisal, fm.n_tokens - 1, 0, fm.surprisal_tol,
                             "rwkv eval --device cuda surprisal") == 0;
    free(sur);
    CHECK(ok);
}

/* Runs everywhere: a missing fixture is a failure, never a skip. */
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
        {"test_wkv7_kernel_matches_cpu", test_wkv7_kernel_matches_cpu},
        {"test_fp32_golden_f32_checkpoint", test_fp32_golden_f32_checkpoint},
        {"test_fp32_golden_bf16_checkpoint", test_fp32_golden_bf16_checkpoint},
        {"test_fp32_block_size_invariance", test_fp32_block_size_invariance},
        {"test_fp32_resume_from_fixture_states", test_fp32_resume_from_fixture_states},
        {"test_state_moves_between_backends", test_state_moves_between_backends},
        {"test_bf16_statistical_f32_checkpoint", test_bf16_statistical_f32_checkpoint},
        {"test_bf16_statistical_bf16_checkpoint", test_bf16_statistical_bf16_checkpoint},
        {"test_bf16_checkpoint_resumes_on_cpu", test_bf16_checkpoint_resumes_on_cpu},
        {"test_cli_eval_on_device", test_cli_eval_on_device},
    };
    gpu_run_all(tests, sizeof tests / sizeof tests[0]);
    fixture_model_free(&fm);
    return test_summary();
}
