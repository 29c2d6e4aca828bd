/* test_cli.c — the `rwkv` command-line tool, run as a separate process.
 *
 * The binary is the one built next to this test: build/<flavour>/tests/
 * test_cli runs build/<flavour>/bin/rwkv (so the ASan flavour checks the
 * tool under ASan and LeakSanitizer too).  Outputs are compared with the
 * golden fixtures of the tiny RWKV-7 model using the manifest's tolerances
 * (tests/support/fixture_model reads them; no number is hard-coded here);
 * block sizes 1/7/333/4096 must agree with each other; errors must be one
 * line on stderr with a non-zero status.  Temporary files live in a
 * mkdtemp directory under /tmp that is removed at the end.
 */
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/forward.h"
#include "core/model.h"
#include "core/tokenizer.h"
#include "tests/support/fixture_model.h"
#include "tests/testutil.h"

extern char **environ;

static char g_bin[PATH_MAX];
static char g_tmp[64];
static const char *const MODEL_DIR = "tiny-rwkv-7v0-834K";

static char g_model[PATH_MAX], g_model_bf16[PATH_MAX], g_input[PATH_MAX], g_vocab[PATH_MAX];

/* ---- running the tool ---- */

typedef struct run_result {
    int status; /* exit status, or 128 + signal */
    char *out, *err;
    size_t out_len, err_len;
} run_result;

static void run_free(run_result *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

static const char *tmp(const char *name, char *buf)
{
    snprintf(buf, PATH_MAX, "%s/%s", g_tmp, name);
    return buf;
}

/* Runs g_bin with args (NULL-terminated), stdin from stdin_path (or
 * /dev/null); stdout and stderr are captured.  -1 when it cannot run. */
static int run_rwkv(run_result *r, const char *stdin_path, const char *const *args)
{
    char out_path[PATH_MAX], err_path[PATH_MAX];
    tmp("stdout.txt", out_path);
    tmp("stderr.txt", err_path);
    const char *argv[64];
    int n = 0;
    argv[n++] = g_bin;
    while (args[n - 1] && n < 63) {
        argv[n] = args[n - 1];
        n++;
    }
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, stdin_path ? stdin_path : "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int rc = posix_spawn(&pid, g_bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    memset(r, 0, sizeof *r);
    if (rc != 0)
        return -1;
    int ws;
    if (waitpid(pid, &ws, 0) != pid)
        return -1;
    r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    r->out = file_read_all(out_path, &r->out_len);
    r->err = file_read_all(err_path, &r->err_len);
    if (!r->out || !r->err) {
        run_free(r);
        return -1;
    }
    return 0;
}

#define RUN_OK(r, stdin_path, ...)                                                        \
    do {                                                                                  \
        const char *const args_[] = {__VA_ARGS__, NULL};                                  \
        CHECKF(run_rwkv(r, stdin_path, args_) == 0, "cannot run %s", g_bin);             \
        if ((r)->status != 0) {                                                           \
            test_fail_at(__FILE__, __LINE__, "rwkv %s exited %d: %s", args_[0],          \
                         (r)->status, (r)->err);                                          \
            run_free(r);                                                                  \
            return;                                                                       \
        }                                                                                 \
    } while (0)

/* Reads a float32 file that must hold exactly n floats. */
static float *read_f32(const char *path, size_t n)
{
    size_t len = 0;
    float *p = file_read_all(path, &len);
    if (!p) {
        test_fail_at(__FILE__, __LINE__, "%s was not written", path);
        return NULL;
    }
    if (len != n * sizeof(float)) {
        test_fail_at(__FILE__, __LINE__, "%s has %zu bytes, expected %zu", path, len,
                     n * sizeof(float));
        free(p);
        return NULL;
    }
    return p;
}

static int all_finite(const float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i]))
            return 0;
    return 1;
}

/* ---- eval against the fixtures ---- */

static void test_eval_matches_fixtures(void)
{
    fixture_model fm;
    if (fixture_model_load(&fm, MODEL_DIR) != 0)
        return;
    char lo[PATH_MAX], su[PATH_MAX], hi[PATH_MAX], st[PATH_MAX];
    run_result r;
    RUN_OK(&r, NULL, "eval", "--model", g_model, "--bytes", "--logits", "all", "--out-logits",
           tmp("l.f32", lo), "--out-surprisal", tmp("s.f32", su), "--hidden", "mean",
           "--out-hidden", tmp("h.f32", hi), "--out-state", tmp("st.f32", st), g_input);
    CHECKF(strstr(r.err, "4096 tokens") && strstr(r.err, "mean surprisal"), "summary: %s", r.err);
    run_free(&r);
    const size_t T = fm.n_tokens, V = (size_t)fm.vocab, C = (size_t)fm.n_embd;
    float *l = read_f32(lo, T * V), *s = read_f32(su, T - 1), *h = read_f32(hi, C),
          *state = read_f32(st, fm.state_floats);
    if (l && s && h && state) {
        size_t w;
        double d = max_abs_diff(l, fm.logits, T * V, &w), bound = fm.logits_tol * fm.logits_std;
        if (!(d <= bound))
            test_fail_at(__FILE__, __LINE__, "logits differ by %.3g at token %zu (bound %.3g)", d,
                         w / V, bound);
        d = max_abs_diff(s, fm.surprisal, T - 1, &w);
        if (!test_current_failed && !(d <= fm.surprisal_tol))
            test_fail_at(__FILE__, __LINE__, "surprisal differs by %.3g at %zu (bound %.3g)", d, w,
                         fm.surprisal_tol);
        d = max_abs_diff(h, fm.hidden_mean, C, &w);
        bound = fm.hidden_tol * fm.hidden_std;
        if (!test_current_failed && !(d <= bound))
            test_fail_at(__FILE__, __LINE__, "hidden mean differs by %.3g (bound %.3g)", d, bound);
        if (!test_current_failed)
            fixture_check_state(&fm, state, fm.state_final, "--out-state");
    }
    free(l);
    free(s);
    free(h);
    free(state);
    fixture_model_free(&fm);
}

static void test_eval_last_outputs(void)
{
    fixture_model fm;
    if (fixture_model_load(&fm, MODEL_DIR) != 0)
        return;
    char lo[PATH_MAX], hi[PATH_MAX];
    run_result r;
    /* from stdin, bf16 checkpoint (exactly the same weights), odd block */
    RUN_OK(&r, g_input, "eval", "-m", g_model_bf16, "--bytes", "-b", "1000", "--logits", "last",
           "--out-logits", tmp("ll.f32", lo), "--hidden", "last", "--out-hidden",
           tmp("hl.f32", hi), "-q", "-");
    CHECKF(r.err_len == 0, "--quiet printed: %s", r.err);
    run_free(&r);
    const size_t T = fm.n_tokens, V = (size_t)fm.vocab, C = (size_t)fm.n_embd;
    float *l = read_f32(lo, V), *h = read_f32(hi, C);
    if (l && h) {
        double d = max_abs_diff(l, fm.logits + (T - 1) * V, V, NULL);
        if (!(d <= fm.logits_tol * fm.logits_std))
            test_fail_at(__FILE__, __LINE__, "last logits differ by %.3g", d);
        d = max_abs_diff(h, fm.hidden_last, C, NULL);
        if (!test_current_failed && !(d <= fm.hidden_tol * fm.hidden_std))
            test_fail_at(__FILE__, __LINE__, "last hidden differs by %.3g", d);
    }
    free(l);
    free(h);
    fixture_model_free(&fm);
}

static void test_block_sizes_agree(void)
{
    fixture_model fm;
    if (fixture_model_load(&fm, MODEL_DIR) != 0)
        return;
    static const char *const blocks[] = {"1", "7", "333", "4096"};
    const size_t T = fm.n_tokens, V = (size_t)fm.vocab;
    float *first_l = NULL, *first_s = NULL, *first_st = NULL;
    double worst = 0;
    for (int b = 0; b < 4 && !test_current_failed; b++) {
        char lo[PATH_MAX], su[PATH_MAX], st[PATH_MAX];
        run_result r;
        const char *const args[] = {"eval", "--model", g_model, "--bytes", "--block", blocks[b],
                                    "--out-logits", tmp("bl.f32", lo), "--out-surprisal",
                                    tmp("bs.f32", su), "--out-state", tmp("bst.f32", st), "-q",
                                    g_input, NULL};
        if (run_rwkv(&r, NULL, args) != 0 || r.status != 0) {
            test_fail_at(__FILE__, __LINE__, "--block %s: status %d: %s", blocks[b], r.status,
                         r.err ? r.err : "");
            run_free(&r);
            break;
        }
        run_free(&r);
        float *l = read_f32(lo, T * V), *s = read_f32(su, T - 1), *state = read_f32(st, fm.state_floats);
        if (l && s && state) {
            double d = max_abs_diff(l, fm.logits, T * V, NULL);
            if (!(d <= fm.logits_tol * fm.logits_std))
                test_fail_at(__FILE__, __LINE__, "--block %s: logits off the fixture by %.3g",
                             blocks[b], d);
            else if (!(max_abs_diff(s, fm.surprisal, T - 1, NULL) <= fm.surprisal_tol))
                test_fail_at(__FILE__, __LINE__, "--block %s: surprisal off the fixture",
                             blocks[b]);
            else if (fixture_check_state(&fm, state, fm.state_final, blocks[b]) == 0) {
                if (!first_l) {
                    first_l = l, first_s = s, first_st = state;
                    l = s = state = NULL;
                } else {
                    /* the same bounds between block sizes as against the fixture */
                    d = max_abs_diff(l, first_l, T * V, NULL);
                    worst = d > worst ? d : worst;
                    if (!(d <= fm.logits_tol * fm.logits_std))
                        test_fail_at(__FILE__, __LINE__, "--block %s vs 1: logits differ by %.3g",
                                     blocks[b], d);
                    else if (!(max_abs_diff(s, first_s, T - 1, NULL) <= fm.surprisal_tol))
                        test_fail_at(__FILE__, __LINE__, "--block %s vs 1: surprisal differs",
                                     blocks[b]);
                    else
                        fixture_check_state(&fm, state, first_st, "block size vs block 1");
                }
            }
        }
        free(l);
        free(s);
        free(state);
    }
    if (!test_current_failed)
        printf("      block sizes 1/7/333/4096: max logit difference between them %.3g\n", worst);
    free(first_l);
    free(first_s);
    free(first_st);
    fixture_model_free(&fm);
}

static void test_resume_from_state_file(void)
{
    fixture_model fm;
    if (fixture_model_load(&fm, MODEL_DIR) != 0)
        return;
    const size_t T = fm.n_tokens, V = (size_t)fm.vocab, N0 = 1000;
    char rest[PATH_MAX], in_state[PATH_MAX], lo[PATH_MAX], st[PATH_MAX];
    size_t len;
    unsigned char *text = fixture_read("inputs/gpl-3.first4096.bin", &len);
    char rel[256];
    snprintf(rel, sizeof rel, "%s/state_after_1000.f32", MODEL_DIR);
    snprintf(in_state, sizeof in_state, "%s", fixture_path(rel));
    FILE *f = fopen(tmp("rest.bin", rest), "wb");
    CHECK(text && f);
    CHECK(fwrite(text + N0, 1, len - N0, f) == len - N0);
    CHECK(fclose(f) == 0);
    free(text);
    run_result r;
    RUN_OK(&r, NULL, "eval", "--model", g_model, "--bytes", "--in-state", in_state,
           "--out-logits", tmp("rl.f32", lo), "--out-state", tmp("rst.f32", st), "--block", "333",
           rest);
    run_free(&r);
    float *l = read_f32(lo, (T - N0) * V), *state = read_f32(st, fm.state_floats);
    if (l && state) {
        size_t w;
        double d = max_abs_diff(l, fm.logits + N0 * V, (T - N0) * V, &w);
        if (!(d <= fm.logits_tol * fm.logits_std))
            test_fail_at(__FILE__, __LINE__, "resumed logits differ by %.3g at token %zu", d,
                         N0 + w / V);
        else
            fixture_check_state(&fm, state, fm.state_final, "resumed final state");
    }
    free(l);
    free(state);
    fixture_model_free(&fm);
}

/* ---- tokenize, info ---- */

static void test_tokenize_world_long(void)
{
    size_t n_ref;
    int32_t *ref = fixture_read("tokenizer/long.ids.i32", &n_ref);
    CHECK(ref);
    n_ref /= 4;
    char long_bin[PATH_MAX], ids[PATH_MAX];
    snprintf(long_bin, sizeof long_bin, "%s", fixture_path("tokenizer/long.bin"));
    run_result r;
    RUN_OK(&r, NULL, "tokenize", "--vocab", g_vocab, "--ids-out", tmp("ids.i32", ids), long_bin);
    CHECK(r.out_len == 0);
    run_free(&r);
    size_t len;
    int32_t *got = file_read_all(ids, &len);
    int same = got && len == n_ref * 4 && memcmp(got, ref, len) == 0;
    free(got);
    if (!same) {
        free(ref);
        CHECKF(0, "--ids-out differs from long.ids.i32 (%zu bytes vs %zu)", len, n_ref * 4);
    }
    /* the text form, from stdin */
    RUN_OK(&r, long_bin, "tokenize", "--vocab", g_vocab, "-");
    char *p = r.out, *end;
    size_t i = 0;
    for (; i < n_ref; i++) {
        long v = strtol(p, &end, 10);
        if (end == p || v != ref[i])
            break;
        p = end;
        if (*p == ' ')
            p++;
    }
    int ok = i == n_ref && strcmp(p, "\n") == 0;
    run_free(&r);
    free(ref);
    CHECKF(ok, "text ids differ from long.ids.i32 at id %zu", i);
}

static void test_info_shape(void)
{
    run_result r;
    RUN_OK(&r, NULL, "info", "--model", g_model, "--json");
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    run_free(&r);
    CHECKF(j != NULL, "info --json is not JSON: %s", je.text);
    fixture_model fm;
    int ok = fixture_model_load(&fm, MODEL_DIR) == 0;
    json_int_t layers = json_integer_value(json_object_get(j, "n_layer")),
               embd = json_integer_value(json_object_get(j, "n_embd")),
               heads = json_integer_value(json_object_get(j, "n_head")),
               hs = json_integer_value(json_object_get(j, "head_size")),
               vocab = json_integer_value(json_object_get(j, "vocab_size")),
               ffn = json_integer_value(json_object_get(j, "ffn_dim")),
               sf = json_integer_value(json_object_get(j, "state_floats")),
               sb = json_integer_value(json_object_get(j, "state_bytes"));
    const char *fmt = json_string_value(json_object_get(j, "format"));
    int fmt_ok = fmt && strcmp(fmt, "safetensors") == 0;
    json_decref(j);
    if (!ok)
        return;
    CHECK(layers == fm.n_layer && embd == fm.n_embd && vocab == fm.vocab);
    CHECK(heads * hs == fm.n_embd && hs == 64);
    CHECK(ffn == 4 * fm.n_embd);
    CHECK(sf == (json_int_t)fm.state_floats && sb == 4 * sf);
    CHECK(fmt_ok);
    fixture_model_free(&fm);
    /* the human-readable form says the same */
    RUN_OK(&r, NULL, "info", "-m", g_model);
    int text_ok = strstr(r.out, "layers:      12\n") && strstr(r.out, "embedding:   64\n") &&
                  strstr(r.out, "heads:       1 x 64\n") && strstr(r.out, "vocab:       256\n") &&
                  strstr(r.out, "RWKV-7");
    char copy[512];
    snprintf(copy, sizeof copy, "%s", r.out);
    run_free(&r);
    CHECKF(text_ok, "info text:\n%s", copy);
}

/* RWKV-4, 5.0, 5.2 and 6: info names the generation and the shape, and
 * eval's last logits and final state match the official fixtures. */
static void test_older_generations(void)
{
    static const struct {
        const char *dir, *generation;
        int heads, head_size, ffn;
    } g[] = {
        {"tiny-rwkv-4v0-660K", "RWKV-4", 1, 128, 256},
        {"tiny-rwkv-5v1-730K", "RWKV-5.0", 8, 8, 256},
        {"tiny-rwkv-5v2-730K", "RWKV-5.2", 8, 8, 256},
        {"tiny-rwkv-6v0-3m", "RWKV-6", 16, 8, 448},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        char rel[128], model[PATH_MAX], lo[PATH_MAX], st[PATH_MAX];
        snprintf(rel, sizeof rel, "models/%s.pth", g[i].dir);
        snprintf(model, sizeof model, "%s", fixture_path(rel));
        fixture_model fm;
        if (fixture_model_load(&fm, g[i].dir) != 0)
            return;
        run_result r;
        RUN_OK(&r, NULL, "info", "--model", model, "--json");
        json_t *j = json_loads(r.out, 0, NULL);
        run_free(&r);
        const char *gen = json_string_value(json_object_get(j, "generation"));
        int info_ok = gen && strcmp(gen, g[i].generation) == 0 &&
                      json_integer_value(json_object_get(j, "n_head")) == g[i].heads &&
                      json_integer_value(json_object_get(j, "head_size")) == g[i].head_size &&
                      json_integer_value(json_object_get(j, "ffn_dim")) == g[i].ffn &&
                      json_integer_value(json_object_get(j, "n_layer")) == fm.n_layer &&
                      json_integer_value(json_object_get(j, "state_floats")) ==
                          (json_int_t)fm.state_floats;
        json_decref(j);
        if (!info_ok) {
            fixture_model_free(&fm);
            CHECKF(0, "info --json of %s: wrong generation or shape", g[i].dir);
        }
        RUN_OK(&r, NULL, "info", "-m", model);
        char want[64];
        snprintf(want, sizeof want, "generation:  %s\n", g[i].generation);
        int text_ok = strstr(r.out, want) != NULL;
        run_free(&r);
        if (!text_ok) {
            fixture_model_free(&fm);
            CHECKF(0, "info text of %s does not say '%s'", g[i].dir, g[i].generation);
        }
        RUN_OK(&r, NULL, "eval", "-m", model, "--bytes", "--logits", "last", "--out-logits",
               tmp("old-l.f32", lo), "--out-state", tmp("old-st.f32", st), "-q", g_input);
        run_free(&r);
        const size_t T = fm.n_tokens, V = (size_t)fm.vocab;
        float *l = read_f32(lo, V), *state = read_f32(st, fm.state_floats);
        if (l && state) {
            double d = max_abs_diff(l, fm.logits + (T - 1) * V, V, NULL);
            if (!(d <= fm.logits_tol * fm.logits_std))
                test_fail_at(__FILE__, __LINE__, "%s: last logits differ by %.3g", g[i].dir, d);
            if (!test_current_failed)
                fixture_check_state(&fm, state, fm.state_final, g[i].dir);
        }
        free(l);
        free(state);
        fixture_model_free(&fm);
        if (test_current_failed)
            return;
    }
}

/* ---- generate ---- */

/* Greedy decoding in-process: prompt, then argmax token by token. */
static int greedy_reference(const char *prompt, int n, unsigned char *out)
{
    rwkv_model *m = NULL;
    rwkv_error err;
    if (rwkv_model_load(g_model, &m, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "%s", err.msg);
        return -1;
    }
    rwkv_engine *e = rwkv_engine_new(m, 0, &err);
    rwkv_state *s = rwkv_state_new(m);
    size_t V = (size_t)rwkv_model_get_info(m)->vocab_size, pl = strlen(prompt);
    float *logits = malloc(V * sizeof *logits);
    uint32_t *toks = malloc((pl + 1) * sizeof *toks);
    int rc = -1;
    if (!e || !s || !logits || !toks)
        goto out;
    for (size_t i = 0; i < pl; i++)
        toks[i] = (unsigned char)prompt[i];
    rwkv_request q;
    memset(&q, 0, sizeof q);
    q.state = s;
    q.tokens = toks;
    q.n_tokens = (int)pl;
    q.logits = RWKV_LOGITS_LAST;
    q.logits_out = logits;
    q.next_token = -1;
    if (rwkv_forward(e, &q, 1, &err) != 0)
        goto out;
    for (int i = 0; i < n; i++) {
        uint32_t best = 0;
        for (uint32_t v = 1; v < V; v++)
            if (logits[v] > logits[best])
                best = v;
        out[i] = (unsigned char)best;
        toks[0] = best;
        q.tokens = toks;
        q.n_tokens = 1;
        if (rwkv_forward(e, &q, 1, &err) != 0)
            goto out;
    }
    rc = 0;
out:
    if (rc)
        test_fail_at(__FILE__, __LINE__, "greedy reference failed: %s", err.msg);
    free(toks);
    free(logits);
    rwkv_state_free(s);
    rwkv_engine_free(e);
    rwkv_model_free(m);
    return rc;
}

static void test_generate_greedy_and_seeded(void)
{
    const char *prompt = "This program is free software";
    unsigned char ref[64];
    if (greedy_reference(prompt, 64, ref) != 0)
        return;
    run_result r;
    RUN_OK(&r, NULL, "generate", "--model", g_model, "--bytes", "--prompt", prompt,
           "--temperature", "0", "--max-tokens", "64", "-q");
    int same = r.out_len == 64 && memcmp(r.out, ref, 64) == 0;
    run_free(&r);
    CHECKF(same, "temperature 0 differs from argmax decoding (%zu bytes)", r.out_len);
    /* top-k 1 at a high temperature is argmax too */
    RUN_OK(&r, NULL, "generate", "--model", g_model, "--bytes", "--prompt", prompt,
           "--temperature", "3", "--top-k", "1", "--max-tokens", "64", "-q", "--seed", "9");
    same = r.out_len == 64 && memcmp(r.out, ref, 64) == 0;
    run_free(&r);
    CHECK(same);

    /* same seed, same text; another seed, another text */
    char *texts[3];
    size_t lens[3];
    static const char *const seeds[3] = {"42", "42", "43"};
    for (int i = 0; i < 3; i++) {
        RUN_OK(&r, NULL, "generate", "--model", g_model, "--bytes", "--prompt", prompt,
               "--temperature", "1.0", "--top-p", "0.95", "--max-tokens", "200", "--seed",
               seeds[i]);
        CHECKF(strstr(r.err, "seed"), "summary: %s", r.err);
        texts[i] = r.out;
        lens[i] = r.out_len;
        r.out = NULL;
        run_free(&r);
    }
    int ok = lens[0] == 200 && lens[1] == 200 && memcmp(texts[0], texts[1], 200) == 0;
    int differ = lens[2] != lens[0] || memcmp(texts[0], texts[2], lens[0]) != 0;
    for (int i = 0; i < 3; i++)
        free(texts[i]);
    CHECKF(ok, "seed 42 gave different texts (%zu, %zu bytes)", lens[0], lens[1]);
    CHECK(differ);
}

/* ---- mkmodel ---- */

static void test_mkmodel_small_model_runs(void)
{
    char m1[PATH_MAX], m2[PATH_MAX], m3[PATH_MAX], lo[PATH_MAX], st[PATH_MAX];
    run_result r;
    RUN_OK(&r, NULL, "mkmodel", "--shape", "L2-D128-H64-V1000", "--seed", "7", "-q",
           tmp("m1.safetensors", m1));
    run_free(&r);
    RUN_OK(&r, NULL, "mkmodel", "--shape", "V1000-H64-D128-L2", "--seed", "7", "-q",
           tmp("m2.safetensors", m2));
    run_free(&r);
    RUN_OK(&r, NULL, "mkmodel", "--shape", "L2-D128-H64-V1000", "--seed", "8", "-q",
           tmp("m3.safetensors", m3));
    run_free(&r);
    size_t n1, n2, n3;
    char *a = file_read_all(m1, &n1), *b = file_read_all(m2, &n2), *c = file_read_all(m3, &n3);
    int same = a && b && n1 == n2 && memcmp(a, b, n1) == 0;
    int differ = a && c && (n1 != n3 || memcmp(a, c, n1) != 0);
    free(a);
    free(b);
    free(c);
    CHECKF(same, "the same seed gave different files (%zu, %zu bytes)", n1, n2);
    CHECK(differ);

    RUN_OK(&r, NULL, "info", "--model", m1, "--json");
    json_t *j = json_loads(r.out, 0, NULL);
    run_free(&r);
    CHECK(j);
    int shape_ok = json_integer_value(json_object_get(j, "n_layer")) == 2 &&
                   json_integer_value(json_object_get(j, "n_embd")) == 128 &&
                   json_integer_value(json_object_get(j, "n_head")) == 2 &&
                   json_integer_value(json_object_get(j, "head_size")) == 64 &&
                   json_integer_value(json_object_get(j, "vocab_size")) == 1000 &&
                   json_integer_value(json_object_get(j, "ffn_dim")) == 512;
    const char *dt = json_string_value(json_object_get(j, "matrix_dtype"));
    int dt_ok = dt && strcmp(dt, "bf16") == 0;
    json_decref(j);
    CHECK(shape_ok && dt_ok);

    /* finite, sane logits and state over the whole 4096-byte input */
    RUN_OK(&r, NULL, "eval", "--model", m1, "--bytes", "--out-logits", tmp("ml.f32", lo),
           "--out-state", tmp("mst.f32", st), "-q", g_input);
    run_free(&r);
    float *l = read_f32(lo, 4096 * 1000);
    size_t sl;
    float *s = file_read_all(st, &sl);
    int finite = l && s && all_finite(l, 4096 * 1000) && all_finite(s, sl / 4);
    double spread = l ? stddev_f32(l + 4095 * 1000, 1000) : 0;
    free(l);
    free(s);
    CHECK(finite);
    CHECKF(spread > 0.05 && spread < 50, "last logits' std %g", spread);

    /* the other dtypes load and run too */
    static const char *const dtypes[] = {"f16", "f32"};
    for (int i = 0; i < 2; i++) {
        RUN_OK(&r, NULL, "mkmodel", "--shape", "L1-D64-H32-V300", "--ffn", "100", "--dtype",
               dtypes[i], "--seed", "1", "-q", m3);
        run_free(&r);
        RUN_OK(&r, NULL, "eval", "--model", m3, "--bytes", "--logits", "last", "--out-logits", lo,
               "-q", g_input);
        run_free(&r);
        l = read_f32(lo, 300);
        finite = l && all_finite(l, 300);
        free(l);
        CHECKF(finite, "--dtype %s", dtypes[i]);
    }
}

/* Inputs larger than the tool's 64 KiB read chunk: the ids must be those of
 * the whole text (World tokens held back across chunk boundaries), and eval
 * must see exactly as many tokens. */
static void test_streaming_across_chunks(void)
{
    size_t len;
    char *one = fixture_read("tokenizer/long.bin", &len);
    CHECK(one);
    const int copies = 3; /* 105 KB: two chunk boundaries */
    char *text = malloc(len * copies);
    for (int i = 0; i < copies; i++)
        memcpy(text + i * len, one, len);
    free(one);
    char in[PATH_MAX], ids[PATH_MAX], mdl[PATH_MAX], hid[PATH_MAX];
    FILE *f = fopen(tmp("big.txt", in), "wb");
    int wrote = f && fwrite(text, 1, len * copies, f) == len * copies;
    if (f)
        wrote &= fclose(f) == 0;
    rwkv_tokenizer *tok = NULL;
    rwkv_ids ref = {0};
    rwkv_error err;
    int ok = wrote && rwkv_tokenizer_load(g_vocab, &tok, &err) == 0 &&
             rwkv_tokenizer_encode(tok, text, len * copies, &ref, &err) == 0;
    free(text);
    rwkv_tokenizer_free(tok);
    if (!ok) {
        rwkv_ids_free(&ref);
        CHECKF(0, "setup: %s", err.msg);
    }
    run_result r;
    RUN_OK(&r, NULL, "tokenize", "--vocab", g_vocab, "-o", tmp("big.i32", ids), in);
    run_free(&r);
    size_t n_got;
    int32_t *got = file_read_all(ids, &n_got);
    size_t i = 0;
    if (got && n_got == ref.n * 4)
        while (i < ref.n && (uint32_t)got[i] == ref.v[i])
            i++;
    ok = got && n_got == ref.n * 4 && i == ref.n;
    free(got);
    size_t n_ref = ref.n;
    rwkv_ids_free(&ref);
    CHECKF(ok, "streamed ids differ from whole-text ids (%zu vs %zu ids, first difference %zu)",
           n_got / 4, n_ref, i);

    /* eval with the World vocabulary on a small random model of vocabulary 65536 */
    RUN_OK(&r, NULL, "mkmodel", "--shape", "L1-D64-H64-V65536", "--seed", "2", "-q",
           tmp("world.safetensors", mdl));
    run_free(&r);
    RUN_OK(&r, NULL, "eval", "--model", mdl, "--vocab", g_vocab, "--block", "1000", "--hidden",
           "mean", "--out-hidden", tmp("wh.f32", hid), in);
    char want[64];
    snprintf(want, sizeof want, "rwkv eval: %zu tokens in", n_ref);
    ok = strstr(r.err, want) != NULL;
    char copy[256];
    snprintf(copy, sizeof copy, "%s", r.err);
    run_free(&r);
    CHECKF(ok, "expected '%s...', got: %s", want, copy);
    float *h = read_f32(hid, 64);
    ok = h && all_finite(h, 64);
    free(h);
    CHECK(ok);
}

/* ---- errors ---- */

static void test_bad_arguments_one_line_errors(void)
{
    char small[PATH_MAX], nan_state[PATH_MAX], empty[PATH_MAX], out[PATH_MAX], m[PATH_MAX];
    FILE *f = fopen(tmp("small_state.f32", small), "wb");
    CHECK(f && fwrite("abcdefgh", 1, 8, f) == 8 && fclose(f) == 0);
    f = fopen(tmp("empty.txt", empty), "wb");
    CHECK(f && fclose(f) == 0);
    /* a state of the right size with a NaN in it */
    fixture_model fm;
    if (fixture_model_load(&fm, MODEL_DIR) != 0)
        return;
    fm.state_final[5] = NAN;
    f = fopen(tmp("nan_state.f32", nan_state), "wb");
    CHECK(f && fwrite(fm.state_final, 4, fm.state_floats, f) == fm.state_floats && fclose(f) == 0);
    fixture_model_free(&fm);
    tmp("never.f32", out);
    tmp("never.safetensors", m);

    const char *const cases[][16] = {
        {NULL},
        {"frobnicate", NULL},
        {"eval", "--model", g_model, "--bytes", "--frobnicate", g_input, NULL},
        {"eval", "--model", g_model, "--bytes", "-z", g_input, NULL},
        {"eval", "--model", "/nonexistent/model.pth", "--bytes", g_input, NULL},
        {"eval", "--model", g_vocab, "--bytes", g_input, NULL},
        {"eval", "--model", g_model, "--bytes", "/nonexistent/input", NULL},
        {"eval", "--model", g_model, "--bytes", NULL},
        {"eval", "--model", g_model, g_input, NULL},
        {"eval", "--model", g_model, "--bytes", "--vocab", g_vocab, g_input, NULL},
        {"eval", "--model", g_model, "--vocab", g_vocab, g_input, NULL}, /* 65530 ids > 256 */
        {"eval", "--model", g_model, "--bytes", "--block", "0", g_input, NULL},
        {"eval", "--model", g_model, "--bytes", "--block", "-5", g_input, NULL},
        {"eval", "--model", g_model, "--bytes", "--block", "12x", g_input, NULL},
        {"eval", "--model", g_model, "--bytes", "--block", NULL},
        {"eval", "--model", g_model, "--bytes", "--logits", "some", "--out-logits", out, g_input,
         NULL},
        {"eval", "--model", g_model, "--bytes", "--logits", "all", g_input, NULL},
        {"eval", "--model", g_model, "--bytes", "--hidden", "mean", g_input, NULL},
        {"eval", "--model", g_model, "--bytes", "--in-state", small, "--out-logits", out, g_input,
         NULL},
        {"eval", "--model", g_model, "--bytes", "--in-state", nan_state, "--out-logits", out,
         g_input, NULL},
        {"eval", "--model", g_model, "--bytes", "--in-state", "/nonexistent", g_input, NULL},
        {"eval", "--model", g_model, "--bytes", "--out-logits", out, empty, NULL},
        {"eval", "--model", g_model, "--bytes", "--out-logits", out, "--out-state", out, g_input,
         NULL},
        {"eval", "--model", g_model, "--bytes", g_input, g_input, NULL},
        {"tokenize", "--vocab", "/nonexistent/vocab.txt", g_input, NULL},
        {"tokenize", "--vocab", g_input, g_input, NULL},
        {"tokenize", "--bytes", NULL},
        {"tokenize", "--bytes", "--ids-out", NULL},
        {"info", NULL},
        {"info", "--model", g_vocab, NULL},
        {"info", "--model", g_model, "extra", NULL},
        {"mkmodel", "--shape", "L2-D128-H64", "--seed", "1", m, NULL},
        {"mkmodel", "--shape", "L2-D100-H64-V10", "--seed", "1", m, NULL},
        {"mkmodel", "--shape", "L0-D128-H64-V10", "--seed", "1", m, NULL},
        {"mkmodel", "--shape", "X2-D128-H64-V10", "--seed", "1", m, NULL},
        {"mkmodel", "--shape", "L2-D128-H64-V10-L3", "--seed", "1", m, NULL},
        {"mkmodel", "--shape", "L2-D128-H64-V1e3", "--seed", "1", m, NULL},
        {"mkmodel", "--shape", "L2-D128-H64-V99999999999", "--seed", "1", m, NULL},
        {"mkmodel", "--shape", "", "--seed", "1", m, NULL},
        {"mkmodel", "--shape", "L2-D128-H64-V10", m, NULL},
        {"mkmodel", "--shape", "L2-D128-H64-V10", "--seed", "-1", m, NULL},
        {"mkmodel", "--shape", "L2-D128-H64-V10", "--seed", "1", "--dtype", "q8", m, NULL},
        {"mkmodel", "--shape", "L2-D128-H64-V10", "--seed", "1", "--ffn", "0", m, NULL},
        {"mkmodel", "--shape", "L2-D128-H64-V10", "--seed", "1", NULL},
        {"mkmodel", "--shape", "L2-D128-H64-V10", "--seed", "1", "/nonexistent/dir/m.st", NULL},
        {"generate", "--model", g_model, "--bytes", NULL},
        {"generate", "--model", g_model, "--bytes", "--prompt", "", NULL},
        {"generate", "--model", g_model, "--bytes", "--prompt", "a", "--top-p", "0", NULL},
        {"generate", "--model", g_model, "--bytes", "--prompt", "a", "--top-p", "1.5", NULL},
        {"generate", "--model", g_model, "--bytes", "--prompt", "a", "--temperature", "-1", NULL},
        {"generate", "--model", g_model, "--bytes", "--prompt", "a", "--temperature", "nan", NULL},
        {"generate", "--model", g_model, "--bytes", "--prompt", "a", "--top-k", "-3", NULL},
        {"generate", "--model", "/nonexistent", "--bytes", "--prompt", "a", NULL},
        {"eval", "--model", g_model, "--bytes", "--precision", "fp16", g_input, NULL},
        {"quantize", g_model, m, NULL},
        {"quantize", "--precision", "bf16", g_model, m, NULL},
        {"quantize", "--precision", "int8", g_model, NULL},
        {"quantize", "--precision", "int8", g_model, m, m, NULL},
        {"quantize", "--precision", "int8", "/nonexistent", m, NULL},
        {"quantize", "--precision", "int8", g_input, m, NULL},
        {"quantize", "--precision", "int8", g_model, "/nonexistent/dir/q.st", NULL},
        {"generate", "--model", g_model, "--bytes", "--prompt", "a", "--precision", "", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_result r;
        CHECKF(run_rwkv(&r, NULL, cases[i]) == 0, "cannot run %s", g_bin);
        char what[256] = "";
        for (int k = 0; cases[i][k]; k++)
            snprintf(what + strlen(what), sizeof what - strlen(what), "%s ", cases[i][k]);
        int status = r.status;
        char *nl = memchr(r.err, '\n', r.err_len);
        int one_line = r.err_len > 6 && strncmp(r.err, "rwkv: ", 6) == 0 && nl &&
                       nl == r.err + r.err_len - 1;
        char msg[600];
        snprintf(msg, sizeof msg, "%s", r.err);
        run_free(&r);
        CHECKF(status == 1 || status == 2, "case %zu (rwkv %s): status %d, stderr: %s", i, what,
               status, msg);
        CHECKF(one_line, "case %zu (rwkv %s): stderr is not one 'rwkv: ' line: '%s'", i, what,
               msg);
        struct stat sb;
        CHECKF(stat(out, &sb) != 0 && stat(m, &sb) != 0, "case %zu (rwkv %s) left an output file",
               i, what);
    }
}

/* --precision: the summary names the engine's precision, and the
 * surprisal stays near the fp32 one (tests/test_precision.c has the
 * bounds); info lists the precisions this CPU runs. */
static void test_precision_option(void)
{
    run_result r;
    RUN_OK(&r, NULL, "info", "--model", g_model);
    int listed = strstr(r.out, "precisions:  fp32") != NULL && strstr(r.out, "cpu:") != NULL;
    int has_bf16 = strstr(r.out, "bf16") != NULL;
    run_free(&r);
    CHECK(listed);
    if (!has_bf16) {
        test_skip("test_precision_option bf16", "this CPU has no avx512_bf16");
        return;
    }
    char sur[PATH_MAX];
    RUN_OK(&r, g_input, "eval", "--model", g_model, "--bytes", "--precision", "bf16",
           "--out-surprisal", tmp("prec-sur.f32", sur), "-");
    int named = strstr(r.err, "threads, bf16)") != NULL;
    char *ms = strstr(r.err, "mean surprisal ");
    double s = ms ? strtod(ms + 15, NULL) : 0;
    char msg[300];
    snprintf(msg, sizeof msg, "%s", r.err);
    run_free(&r);
    CHECKF(named && s > 3.7 && s < 3.85, "%s", msg); /* fp32: 3.771305 */
}

static void test_help(void)
{
    static const char *const cmds[] = {"eval", "tokenize", "info", "generate", "mkmodel",
                                       "quantize"};
    run_result r;
    RUN_OK(&r, NULL, "--help");
    int ok = strstr(r.out, "usage: rwkv") != NULL;
    run_free(&r);
    CHECK(ok);
    for (int i = 0; i < 6; i++) {
        RUN_OK(&r, NULL, cmds[i], "--help");
        char want[64];
        snprintf(want, sizeof want, "usage: rwkv %s", cmds[i]);
        ok = strstr(r.out, want) != NULL && r.err_len == 0;
        run_free(&r);
        CHECKF(ok, "rwkv %s --help", cmds[i]);
    }
}

/* ---- quantize ---- */

/* rwkv quantize writes an int8 file that info names, eval runs only at
 * --precision int8 (giving the source's int8 logits bit for bit), and that
 * cannot be quantized again (tests/test_quantize.c has the library's
 * cases). */
static void test_quantize_int8_file(void)
{
    char q[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
    run_result r;
    RUN_OK(&r, NULL, "quantize", "--precision", "int8", g_model, tmp("q8.safetensors", q));
    int said = strstr(r.err, "int8 matrices") != NULL;
    run_free(&r);
    CHECK(said);
    RUN_OK(&r, NULL, "info", "--model", q, "--json");
    json_t *j = json_loads(r.out, 0, NULL);
    run_free(&r);
    CHECK(j);
    int flagged = json_is_true(json_object_get(j, "int8_quantized"));
    const char *dt = json_string_value(json_object_get(j, "matrix_dtype"));
    int dt_ok = dt && !strcmp(dt, "i8");
    json_decref(j);
    CHECK(flagged && dt_ok);
    RUN_OK(&r, NULL, "info", "--model", q);
    int text = strstr(r.out, "quantized:   int8 (rwkv quantize)") != NULL;
    run_free(&r);
    CHECK(text);

    const char *const fp32[] = {"eval", "--model", q, "--bytes", "-q", g_input, NULL};
    CHECK(run_rwkv(&r, NULL, fp32) == 0);
    int refused = r.status == 1 && strstr(r.err, "holds int8-quantized weights (rwkv quantize); "
                                                 "it runs only at --precision int8");
    run_free(&r);
    CHECK(refused);
    const char *const again[] = {"quantize", "--precision", "int8", q, tmp("q8b.st", b), NULL};
    CHECK(run_rwkv(&r, NULL, again) == 0);
    refused = r.status == 1 && strstr(r.err, "already int8-quantized");
    run_free(&r);
    CHECK(refused);

    RUN_OK(&r, NULL, "info", "--model", g_model);
    int has_int8 = strstr(r.out, " int8 (auto") != NULL;
    run_free(&r);
    if (!has_int8) {
        test_skip("test_quantize_int8_file eval", "this CPU does not run int8");
        return;
    }
    RUN_OK(&r, NULL, "eval", "--model", g_model, "--bytes", "--precision", "int8",
           "--out-logits", tmp("q-src.f32", a), "-q", g_input);
    run_free(&r);
    RUN_OK(&r, NULL, "eval", "--model", q, "--bytes", "--precision", "auto", "--out-logits",
           tmp("q-q8.f32", b), g_input);
    int named = strstr(r.err, "threads, int8)") != NULL;
    run_free(&r);
    CHECK(named);
    size_t na, nb;
    char *la = file_read_all(a, &na), *lb = file_read_all(b, &nb);
    int same = la && lb && na == nb && na == (size_t)4096 * 256 * 4 && !memcmp(la, lb, na);
    free(la);
    free(lb);
    CHECKF(same, "int8 logits over the int8 file differ from those over its source (%zu, %zu "
                 "bytes)",
           na, nb);
}

/* ---- setup ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    /* build/<flavour>/tests/test_cli -> build/<flavour>/bin/rwkv */
    char self[PATH_MAX - 32];
    snprintf(self, sizeof self, "%s", argv[0]);
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(self, sizeof self, ".");
    snprintf(g_bin, sizeof g_bin, "%s/../bin/rwkv", self);
    snprintf(g_model, sizeof g_model, "%s", fixture_path("models/tiny-rwkv-7v0-834K.safetensors"));
    snprintf(g_model_bf16, sizeof g_model_bf16, "%s",
             fixture_path("models/tiny-rwkv-7v0-834K.bf16.safetensors"));
    snprintf(g_input, sizeof g_input, "%s", fixture_path("inputs/gpl-3.first4096.bin"));
    snprintf(g_vocab, sizeof g_vocab, "%s", fixture_path("tokenizer/rwkv_vocab_v20230424.txt"));
    snprintf(g_tmp, sizeof g_tmp, "/tmp/rwkv-test-cli-XXXXXX");
    if (access(g_bin, X_OK) != 0) {
        printf("FAIL: setup: %s is not built (make builds bin/ before tests)\n", g_bin);
        return 1;
    }
    if (!mkdtemp(g_tmp)) {
        printf("FAIL: setup: mkdtemp failed\n");
        return 1;
    }
    RUN(test_help);
    RUN(test_precision_option);
    RUN(test_eval_matches_fixtures);
    RUN(test_eval_last_outputs);
    RUN(test_block_sizes_agree);
    RUN(test_resume_from_state_file);
    RUN(test_tokenize_world_long);
    RUN(test_info_shape);
    RUN(test_older_generations);
    RUN(test_generate_greedy_and_seeded);
    RUN(test_mkmodel_small_model_runs);
    RUN(test_quantize_int8_file);
    RUN(test_streaming_across_chunks);
    RUN(test_bad_arguments_one_line_errors);
    nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return test_summary();
}
