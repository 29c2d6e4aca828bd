/* test_cuda_host.c — the CUDA backend's host side, on any machine (no GPU
 * needed; CI has nvcc and no GPU):
 *  - device strings: malformed ones are refused by the engine and by the
 *    CLI's --device (usage error, status 2);
 *  - without a device: engines, the kernel harness and the benchmark peaks
 *    fail with one clear "no CUDA device" line, never a crash;
 *  - what create() refuses before touching a device: other generations,
 *    unsupported head sizes, a bad RWKV_CUDA_PRECISION / RWKV_CUDA_PASS_ROWS;
 *  - the per-kernel harness (rwkv_cuda_k_*) refuses bad shapes before any
 *    device call, and without a device fails with "no CUDA device";
 *  - `make gpu-check` (tests/gpu_check.sh) without a device says so and
 *    exits 3;
 * Tests whose subject needs a device (or its absence) say SKIP with the
 * reason when the machine has the other case. */
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/backend.h"
#include "core/forward.h"
#include "core/model.h"
#include "core/model/model_internal.h"
#include "core/state.h"
#include "tests/testutil.h"
#ifndef RWKV_NO_CUDA
#include "kernels/rwkv_cuda.h"
#endif

extern char **environ;

#define TINY "models/tiny-rwkv-7v0-834K.safetensors"

static char g_bin[PATH_MAX];   /* build/<flavour>/bin/rwkv */
static int g_have_device;      /* a CUDA device is usable */
static char g_no_device[RWKV_ERROR_MAX]; /* why not */

static rwkv_model *load_tiny(void)
{
    rwkv_model *m = NULL;
    rwkv_error err;
    rwkv_error_clear(&err);
    if (rwkv_model_load(fixture_path(TINY), &m, &err) != 0)
        test_fail_at(__FILE__, __LINE__, "load: %s", err.msg);
    return m;
}

/* ---------------------------------------------------------------- devices */

static void test_bad_device_strings(void)
{
    rwkv_model *m = load_tiny();
    CHECK(m);
    const char *bad[] = {"gpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "cuda:0:fp32",
                         "cuda:1024", "cuda0", " cuda", "cpu:0", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rwkv_error err;
        rwkv_error_clear(&err);
        rwkv_engine *e = rwkv_engine_new_on(m, bad[i], 1, &err);
        if (e) {
            rwkv_engine_free(e);
            rwkv_model_free(m);
            CHECKF(0, "device '%s' was accepted", bad[i]);
        }
        if (!strstr(err.msg, "expected cpu, cuda or cuda:N")) {
            rwkv_model_free(m);
            CHECKF(0, "device '%s': message '%s'", bad[i], err.msg);
        }
    }
    rwkv_error err;
    rwkv_engine *e = rwkv_engine_new_on(m, "cpu", 1, &err);
    int ok = e && strncmp(rwkv_engine_device(e), "cpu", 3) == 0;
    rwkv_engine_free(e);
    rwkv_model_free(m);
    CHECK(ok);
}

static void test_no_device_is_a_clear_error(void)
{
    rwkv_model *m = load_tiny();
    CHECK(m);
    const char *devs[] = {"cuda", "cuda:0", "cuda:3"};
    for (size_t i = 0; i < 3; i++) {
        rwkv_error err;
        rwkv_error_clear(&err);
        rwkv_engine *e = rwkv_engine_new_on(m, devs[i], 1, &err);
        rwkv_engine_free(e);
#ifdef RWKV_NO_CUDA
        const char *want = "no CUDA backend";
#else
        const char *want = "no CUDA device";
#endif
        if (e || !strstr(err.msg, want) || strchr(err.msg, '\n')) {
            rwkv_model_free(m);
            CHECKF(0, "%s: engine %p, message '%s'", devs[i], (void *)e, err.msg);
        }
    }
    rwkv_model_free(m);
#ifndef RWKV_NO_CUDA
    rwkv_error err;
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_device_count(&err) == -1 && strstr(err.msg, "no CUDA device"));
    float x[64 * 2] = {0}, S[64 + 64 * 64] = {0}, y[64 * 2];
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_wkv7_run(0, 64, 2, 64, x, x, x, x, x, x, S, y, &err) == -1);
    CHECKF(strstr(err.msg, "no CUDA device"), "%s", err.msg);
    double ms[3];
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_k_relu_sq(0, 1, 64, x, y, ms, &err) == -1);
    CHECKF(strstr(err.msg, "no CUDA device"), "%s", err.msg);
    int seq[2] = {0, 2};
    float *st[1] = {S};
    rwkv_cuda_k7 k7 = {.C = 64, .N = 64, .M = 2, .r = x, .w = x, .k = x, .v = x, .a = x,
                       .kk = x, .y = y, .n_seg = 1, .seq_start = seq, .states = st};
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_k_wkv7_scan(0, &k7, ms, &err) == -1);
    CHECKF(strstr(err.msg, "no CUDA device"), "%s", err.msg);
    double v;
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_gemm_tflops(0, 64, 64, 64, &v, &err) == -1 && strstr(err.msg, "no CUDA"));
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_bandwidth_gbs(0, &v, &err) == -1 && strstr(err.msg, "no CUDA"));
    char buf[128];
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_describe_device(0, buf, sizeof buf, &err) == -1 && strstr(err.msg, "no CUDA"));
#endif
}

#ifndef RWKV_NO_CUDA
/* A model object with just the fields create() reads before any device
 * work; enough to reach its refusals without a real checkpoint of that
 * generation. */
static void fake_model(struct rwkv_model *m, rwkv_generation g, int head_size)
{
    memset(m, 0, sizeof *m);
    m->info.generation = g;
    m->info.generation_name = rwkv_generation_name(g);
    m->info.n_layer = 1;
    m->info.n_head = 2;
    m->info.head_size = head_size;
    m->info.n_embd = 2 * head_size;
    m->info.vocab_size = 256;
}

static void test_create_refuses_other_generations(void)
{
    const rwkv_backend_ops *ops = rwkv_cuda_backend();
    CHECK(ops && ops->create && strcmp(ops->name, "cuda") == 0);
    rwkv_generation gens[] = {RWKV_GEN_V4, RWKV_GEN_V5_0, RWKV_GEN_V5_1, RWKV_GEN_V5_2,
                              RWKV_GEN_V6};
    for (size_t i = 0; i < sizeof gens / sizeof gens[0]; i++) {
        struct rwkv_model fm;
        fake_model(&fm, gens[i], 64);
        rwkv_error err;
        rwkv_error_clear(&err);
        void *ctx = ops->create(&fm, 0, 0, &err);
        CHECK(ctx == NULL);
        char want[64];
        snprintf(want, sizeof want, "%s is not supported by the CUDA backend yet",
                 rwkv_generation_name(gens[i]));
        CHECKF(strstr(err.msg, want), "'%s' lacks '%s'", err.msg, want);
    }
}

static void test_create_refuses_head_sizes(void)
{
    const rwkv_backend_ops *ops = rwkv_cuda_backend();
    int sizes[] = {1, 8, 16, 48, 96, 256};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct rwkv_model fm;
        fake_model(&fm, RWKV_GEN_V7, sizes[i]);
        rwkv_error err;
        rwkv_error_clear(&err);
        CHECK(ops->create(&fm, 0, 0, &err) == NULL);
        char want[64];
        snprintf(want, sizeof want, "head size %d is not supported", sizes[i]);
        CHECKF(strstr(err.msg, want), "'%s'", err.msg);
    }
}

/* Runs engine creation with one environment variable set to value. */
static int create_with_env(const char *var, const char *value, rwkv_error *err)
{
    rwkv_model *m = load_tiny();
    if (!m)
        return -2;
    char *old = getenv(var) ? strdup(getenv(var)) : NULL;
    setenv(var, value, 1);
    rwkv_engine *e = rwkv_engine_new_on(m, "cuda:0", 1, err);
    if (old)
        setenv(var, old, 1);
    else
        unsetenv(var);
    free(old);
    int rc = e ? 0 : -1;
    rwkv_engine_free(e);
    rwkv_model_free(m);
    return rc;
}

static void test_create_refuses_bad_settings(void)
{
    const char *prec[] = {"fp16", "BF16", "tf32", "fp32 "};
    for (size_t i = 0; i < 4; i++) {
        rwkv_error err;
        rwkv_error_clear(&err);
        CHECK(create_with_env(RWKV_CUDA_PRECISION_ENV, prec[i], &err) == -1);
        CHECKF(strstr(err.msg, RWKV_CUDA_PRECISION_ENV) && strstr(err.msg, "bf16 or fp32"),
               "'%s'", err.msg);
    }
    const char *rows[] = {"0", "15", "16385", "12x", "-1"};
    for (size_t i = 0; i < 5; i++) {
        rwkv_error err;
        rwkv_error_clear(&err);
        CHECK(create_with_env(RWKV_CUDA_PASS_ROWS_ENV, rows[i], &err) == -1);
        CHECKF(strstr(err.msg, RWKV_CUDA_PASS_ROWS_ENV), "'%s'", err.msg);
    }
    /* good values get past the settings to the device check */
    if (!g_have_device) {
        rwkv_error err;
        rwkv_error_clear(&err);
        CHECK(create_with_env(RWKV_CUDA_PRECISION_ENV, "fp32", &err) == -1);
        CHECKF(strstr(err.msg, "no CUDA device"), "'%s'", err.msg);
    }
}

static void test_wkv7_harness_refuses_bad_args(void)
{
    float x[256] = {0}, S[128 * 128] = {0}, y[256];
    rwkv_error err;
    int bad_n[] = {0, 16, 48, 256};
    for (size_t i = 0; i < 4; i++) {
        rwkv_error_clear(&err);
        CHECK(rwkv_cuda_wkv7_run(0, bad_n[i], 1, 256, x, x, x, x, x, x, S, y, &err) == -1);
        CHECKF(strstr(err.msg, "not supported"), "'%s'", err.msg);
    }
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_wkv7_run(0, 64, 0, 64, x, x, x, x, x, x, S, y, &err) == -1);
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_wkv7_run(0, 64, 1, 32, x, x, x, x, x, x, S, y, &err) == -1);
}

/* cuBLAS is loaded on first use (kernels/cublas_dl.cu); the library of the
 * toolkit the build used must load and have every function called. */
/* The per-kernel harness refuses impossible shapes and segment tables with
 * its own message, before asking for a device (so on any machine). */
static void test_kernel_harness_refuses_bad_args(void)
{
    float x[256] = {0}, y[256];
    double ms[3];
    rwkv_error err;
    int widths_bad[4] = {64, 0, 64, 64};
    float *h4[4] = {x, x, x, x};
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_k_lora_act(0, 0, 1, widths_bad, h4, ms, &err) == -1);
    CHECKF(strstr(err.msg, "lora_act harness"), "%s", err.msg);
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_k_relu_sq(0, 0, 0, x, y, ms, &err) == -1 && strstr(err.msg, "relu_sq"));
    /* segments: not starting at 0, empty, not ending at M */
    const int bad_seq[][3] = {{1, 2, 4}, {0, 0, 4}, {0, 2, 3}};
    for (int i = 0; i < 3; i++) {
        rwkv_error_clear(&err);
        CHECK(rwkv_cuda_k_ln_shift(0, 0, 16, 4, 2, bad_seq[i], x, x, x, x, x, x, x, x, y, y, y,
                                   ms, &err) == -1);
        CHECKF(strstr(err.msg, "ln_shift harness"), "case %d: %s", i, err.msg);
    }
    /* WKV-7: head size, C not a multiple of N */
    rwkv_cuda_k7 k7 = {.C = 96, .N = 48, .M = 1};
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_k_wkv7_prepare(0, 1, &k7, ms, &err) == -1 && strstr(err.msg, "N 32/64/128"));
    k7.N = 64;
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_k_wkv7_output(0, 0, &k7, y, ms, &err) == -1 && strstr(err.msg, "C = H*N"));
    /* tokens and targets beyond the vocabulary, rows beyond M */
    uint32_t tok[2] = {0, 3};
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_k_embed(0, 0, 4, 3, x, x, x, 2, tok, y, ms, &err) == -1);
    CHECKF(strstr(err.msg, "token 3"), "%s", err.msg);
    int rows[1] = {0}, target[1] = {5};
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_k_head(0, 0, 4, 5, x, 1, x, 1, rows, target, y, y, ms, &err) == -1);
    CHECKF(strstr(err.msg, "target 5"), "%s", err.msg);
    rows[0] = 1, target[0] = -1;
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_k_head(0, 0, 4, 5, x, 1, x, 1, rows, target, y, y, ms, &err) == -1);
    CHECKF(strstr(err.msg, "row 1"), "%s", err.msg);
    /* a product whose X offset would misalign bf16 operands, or overruns */
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_k_gemm(0, 1, 1, 4, 4, x, 16, 4, x, y, 4, 0, 0, ms, &err) == -1);
    CHECKF(strstr(err.msg, "gemm harness"), "%s", err.msg);
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_k_gemm(0, 0, 1, 4, 16, x, 16, 8, x, y, 4, 0, 0, ms, &err) == -1);
    CHECKF(strstr(err.msg, "gemm harness"), "%s", err.msg);
    int seq[3] = {0, 1, 2}, sum_seg[1] = {2};
    double cs[8];
    rwkv_error_clear(&err);
    CHECK(rwkv_cuda_k_colsum(0, 4, 2, 2, seq, 1, sum_seg, x, cs, ms, &err) == -1);
    CHECKF(strstr(err.msg, "segment 2 of 2"), "%s", err.msg);
}

static void test_cublas_loads(void)
{
    rwkv_error err;
    rwkv_error_clear(&err);
    CHECKF(rwkv_cuda_cublas_available(&err) == 0, "%s", err.msg);
    CHECK(rwkv_cuda_cublas_available(&err) == 0); /* once per process, then cached */
}

#endif /* !RWKV_NO_CUDA */

/* ---------------------------------------------------------------- CLI */

/* Runs bin/rwkv with args; stderr into *err_out (malloc'd).  Exit status,
 * or -1 when it cannot run. */
static int run_cli(const char *const *args, char **err_out)
{
    char err_path[64];
    snprintf(err_path, sizeof err_path, "/tmp/test_cuda_host.%d.err", (int)getpid());
    const char *argv[32];
    int n = 0;
    argv[n++] = g_bin;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int rc = posix_spawn(&pid, g_bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int ws;
    if (waitpid(pid, &ws, 0) != pid)
        return -1;
    size_t len;
    *err_out = file_read_all(err_path, &len);
    unlink(err_path);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

static void test_cli_device_flag(void)
{
    char model[PATH_MAX], input[PATH_MAX];
    snprintf(model, sizeof model, "%s", fixture_path(TINY));
    snprintf(input, sizeof input, "%s", fixture_path("inputs/gpl-3.first4096.bin"));
    char *err = NULL;
    const char *bad[] = {"eval", "-m", model, "--bytes", "--device", "gpu", input, NULL};
    int st = run_cli(bad, &err);
    CHECKF(st == 2 && err && strstr(err, "--device: 'gpu'"), "status %d, stderr '%s'", st,
           err ? err : "");
    free(err);
    const char *bad_gen[] = {"generate", "-m", model, "--bytes", "-p", "x", "--device",
                             "cuda:abc", NULL};
    st = run_cli(bad_gen, &err);
    CHECKF(st == 2 && err && strstr(err, "--device"), "status %d, stderr '%s'", st,
           err ? err : "");
    free(err);
    const char *cpu[] = {"eval", "-m", model, "--bytes", "--device", "cpu", input, NULL};
    st = run_cli(cpu, &err);
    CHECKF(st == 0 && err && strstr(err, "on cpu"), "status %d, stderr '%s'", st,
           err ? err : "");
    free(err);
    if (g_have_device) {
        test_skip("test_cli_device_flag (no-device part)",
                  "a CUDA device is present (tests/test_gpu_rwkv7.c runs the CLI on it)");
        return;
    }
#ifdef RWKV_NO_CUDA
    const char *want = "no CUDA backend";
#else
    const char *want = "no CUDA device";
#endif
    const char *gpu[] = {"eval", "-m", model, "--bytes", "--device", "cuda", input, NULL};
    st = run_cli(gpu, &err);
    CHECKF(st == 1 && err && strstr(err, want) && strchr(err, '\n') == strrchr(err, '\n'),
           "status %d, stderr '%s'", st, err ? err : "");
    free(err);
    const char *gpu_gen[] = {"generate", "-m", model, "--bytes", "-p", "x", "--device",
                             "cuda:0", NULL};
    st = run_cli(gpu_gen, &err);
    CHECKF(st == 1 && err && strstr(err, want), "status %d, stderr '%s'", st, err ? err : "");
    free(err);
}

/* `make gpu-check` on a machine without a device must say so and fail
 * (exit 3), never pass having checked nothing.  Runs the script itself
 * (--no-build: the probe binary of this flavour is built beside this test,
 * Makefile) with its report in a temporary directory. */
static void test_gpu_check_without_device(void)
{
    if (g_have_device) {
        test_skip("test_gpu_check_without_device",
                  "a CUDA device is present (make gpu-check runs on it)");
        return;
    }
    char dir[] = "/tmp/test_cuda_host.gpucheck.XXXXXX";
    CHECK(mkdtemp(dir));
    char build[PATH_MAX], out_path[PATH_MAX + 16], report[PATH_MAX + 16];
    /* build/<flavour>, from build/<flavour>/bin/rwkv */
    snprintf(build, sizeof build, "%s", g_bin);
    char *p = strstr(build, "/bin/rwkv");
    if (p)
        *p = 0;
    snprintf(out_path, sizeof out_path, "%s/out", dir);
    snprintf(report, sizeof report, "%s/report.txt", dir);
    setenv("GPU_CHECK_DIR", dir, 1);
    setenv("GPU_CHECK_BUILD", build, 1);
    /* the CPU stand-in would make the probe say yes and run the whole check
     * (test-gpu included, so this test again) */
    char *fake = getenv("RWKVD_TEST_GPU_ON_CPU");
    fake = fake ? strdup(fake) : NULL;
    unsetenv("RWKVD_TEST_GPU_ON_CPU");
    const char *argv[] = {"/bin/sh", "tests/gpu_check.sh", "--no-build", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    unsetenv("GPU_CHECK_DIR");
    unsetenv("GPU_CHECK_BUILD");
    if (fake)
        setenv("RWKVD_TEST_GPU_ON_CPU", fake, 1);
    free(fake);
    int ws = 0;
    if (rc == 0 && waitpid(pid, &ws, 0) != pid)
        rc = -1;
    size_t len;
    char *out = file_read_all(out_path, &len), *rep = file_read_all(report, &len);
    int st = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    int ok = rc == 0 && st == 3 && out && rep && strstr(out, "NO CUDA DEVICE") &&
             strstr(out, "no CUDA device") && strstr(rep, "NO CUDA DEVICE") &&
             !strstr(rep, "== kernels");
    if (!ok)
        test_fail_at(__FILE__, __LINE__, "gpu_check.sh: spawn %d, status %d, output '%s'", rc,
                     st, out ? out : "(none)");
    free(out);
    free(rep);
    unlink(out_path);
    unlink(report);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    /* build/<flavour>/tests/test_cuda_host -> build/<flavour>/bin/rwkv */
    snprintf(g_bin, sizeof g_bin, "%s", argv[0]);
    char *slash = strrchr(g_bin, '/');
    if (slash && slash - g_bin >= 6 && strncmp(slash - 6, "/tests", 6) == 0)
        snprintf(slash - 6, sizeof g_bin - (size_t)(slash - 6 - g_bin), "/bin/rwkv");
    else
        snprintf(g_bin, sizeof g_bin, "build/rel/bin/rwkv");
#ifdef RWKV_NO_CUDA
    snprintf(g_no_device, sizeof g_no_device, "this build has no CUDA backend (no nvcc)");
#else
    rwkv_error err;
    rwkv_error_clear(&err);
    g_have_device = rwkv_cuda_device_count(&err) > 0;
    snprintf(g_no_device, sizeof g_no_device, "%s", err.msg);
#endif
    RUN(test_bad_device_strings);
    if (g_have_device)
        test_skip("test_no_device_is_a_clear_error",
                  "a CUDA device is present; the no-device path cannot be exercised here");
    else
        RUN(test_no_device_is_a_clear_error);
#ifdef RWKV_NO_CUDA
    const char *why = "this build has no CUDA backend (nvcc was not found)";
    test_skip("test_create_refuses_other_generations", why);
    test_skip("test_create_refuses_head_sizes", why);
    test_skip("test_create_refuses_bad_settings", why);
    test_skip("test_wkv7_harness_refuses_bad_args", why);
    test_skip("test_kernel_harness_refuses_bad_args", why);
    test_skip("test_cublas_loads", why);
#else
    RUN(test_create_refuses_other_generations);
    RUN(test_create_refuses_head_sizes);
    RUN(test_create_refuses_bad_settings);
    RUN(test_wkv7_harness_refuses_bad_args);
    RUN(test_kernel_harness_refuses_bad_args);
    RUN(test_cublas_loads);
#endif
    RUN(test_cli_device_flag);
    RUN(test_gpu_check_without_device);
    return test_summary();
}
