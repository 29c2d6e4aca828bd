/* bench_precision.c — the CPU engine at fp32, bf16 and int8 against the
 * machine's own peaks for each precision, measured in the same run (make
 * bench; not a test).  docs/precision.md keeps the figures.
 *
 * Model: a random-weight RWKV-7 of the 0.1B shape (L12 D768 H64 V65536,
 * bf16 weights like the official checkpoints).  Each precision runs in its
 * own child process, so each prints its own peak RSS: prefill tok/s at
 * T=64/256/1024 (last logits only, and the surprisal of every token) and
 * decode tok/s (one token per call, logits every token).  Peaks: fp32
 * sgemm GFLOP/s (OpenBLAS), bf16 GEMM GFLOP/s (oneDNN, the engine's
 * kernel), int8 GOP/s of the engine's grouped int8 kernel, memory read
 * GB/s; each figure is printed as a fraction of its roofline.  Also the
 * decode kernel choice: the hand-written AVX512-BF16 GEMV against oneDNN's
 * matmul at M=1.  int8 runs twice: over the bf16 file (converted at engine
 * creation) and over its `rwkv quantize` int8 file ("int8q", made in a
 * child so no process carries the other's pages), for the peak RSS and
 * the creation time each costs.
 *
 * Usage: bench_precision [--shape L12-D768-H64-V65536] [--threads N] [--reps R]
 *                        [--only TEXT]   (configurations whose name contains TEXT)
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/engine/dnnl_gemm.h"
#include "core/engine/lowp_kernels.h"
#include "core/engine/simd.h"
#include "core/forward.h"
#include "core/model.h"
#include "core/precision.h"
#include "core/quantize.h"
#include "core/random_model.h"
#include "core/threadpool.h"
#include "tests/support/bench_measure.h"

/* ---------------------------------------------------------------- peaks */

enum { PK_SGEMM, PK_BF16, PK_INT8, PK_MEM, PK_GEMV_HAND, PK_GEMV_DNNL, PK_N };

typedef struct {
    int M, N, K, nt, kind; /* kind: 0 sgemm, 1 bf16 oneDNN, 2 int8 kernel */
    float *A, *B, *C;
    uint16_t *Ab, *Bb;
    int8_t *Bq;
    int16_t *Aq;
    float *sa, *sb;
    rwkv_dnnl_thread *dt[64];
} gemm_job;

static void gemm_task(void *arg, int task, int thread)
{
    gemm_job *g = arg;
    int n = g->N / g->nt;
    float *c = g->C + (size_t)task * n;
    if (g->kind == 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->M, n, g->K, 1.0f, g->A, g->K,
                    g->B + (size_t)task * n * g->K, g->K, 0.0f, c, g->N);
    } else if (g->kind == 1) {
        rwkv_dnnl_gemm(g->dt[thread], RWKV_GEMM_BF16, g->M, n, g->K, g->Ab,
                       g->Bb + (size_t)task * n * g->K, c, g->N, 0);
    } else {
        for (int i = 0; i < g->M; i += 4)
            rwkv_gemv_w8a16(g->Bq + (size_t)task * n * g->K, g->sb + (size_t)task * n, n, g->K,
                            g->Aq + (size_t)i * g->K, g->sa + i, 4, c + (size_t)i * g->N, g->N,
                            0);
    }
}

/* GEMM rate (G multiply-adds x 2 per second) with every thread on its own
 * slice of the weights, as the engine runs: M=256 rows, 2048 x 1024. */
static double gemm_rate(rwkv_pool *pool, int kind)
{
    gemm_job g = {.M = 256, .N = 2048, .K = 1024, .nt = rwkv_pool_size(pool), .kind = kind};
    size_t a = (size_t)g.M * g.K, b = (size_t)g.N * g.K;
    g.A = malloc(sizeof(float) * a);
    g.B = malloc(sizeof(float) * b);
    g.C = malloc(sizeof(float) * (size_t)g.M * g.N);
    g.Ab = malloc(2 * a);
    g.Bb = malloc(2 * b);
    g.Aq = malloc(2 * a);
    g.Bq = malloc(b);
    g.sa = malloc(sizeof(float) * (size_t)g.M);
    g.sb = malloc(sizeof(float) * (size_t)g.N);
    for (size_t i = 0; i < a; i++) {
        g.A[i] = (float)(i % 7) * 0.1f;
        g.Ab[i] = rwkv_f32_to_bf16(g.A[i]);
        g.Aq[i] = (int16_t)(i % 2001 - 1000);
    }
    for (size_t i = 0; i < b; i++) {
        g.B[i] = (float)(i % 5) * 0.1f;
        g.Bb[i] = rwkv_f32_to_bf16(g.B[i]);
        g.Bq[i] = (int8_t)(i % 255 - 127);
    }
    for (int i = 0; i < g.M; i++)
        g.sa[i] = 0.01f;
    for (int i = 0; i < g.N; i++)
        g.sb[i] = 0.01f;
    for (int t = 0; t < g.nt; t++)
        g.dt[t] = rwkv_dnnl_thread_new();
    rwkv_pool_run(pool, g.nt, gemm_task, &g);
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = bench_now();
        rwkv_pool_run(pool, g.nt, gemm_task, &g);
        double gf = 2.0 * g.M * g.N * g.K / (bench_now() - t0) / 1e9;
        best = gf > best ? gf : best;
    }
    for (int t = 0; t < g.nt; t++)
        rwkv_dnnl_thread_free(g.dt[t]);
    free(g.A), free(g.B), free(g.C), free(g.Ab), free(g.Bb), free(g.Aq), free(g.Bq);
    free(g.sa), free(g.sb);
    return best;
}

/* Decode kernel choice, one thread: GB/s of bf16 weights streamed by the
 * hand-written GEMV and by oneDNN at M=1, over a 3072 x 768 matrix (an FFN
 * key) repeated past the caches (24 of them, 113 MB). */
static void gemv_choice(double *hand, double *dnnl)
{
    enum { R = 3072, K = 768, NMAT = 24 };
    size_t per = (size_t)R * K;
    uint16_t *w = malloc(2 * per * NMAT), x[K];
    float y[R];
    for (size_t i = 0; i < per * NMAT; i++)
        w[i] = rwkv_f32_to_bf16((float)(i % 13) * 0.01f);
    for (int i = 0; i < K; i++)
        x[i] = rwkv_f32_to_bf16(0.5f);
    rwkv_dnnl_thread *dt = rwkv_dnnl_thread_new();
    double best_h = 0, best_d = 0;
    for (int r = 0; r < 4; r++) {
        double t0 = bench_now();
        for (int k = 0; k < NMAT; k++)
            rwkv_gemv_bf16(w + k * per, R, K, x, 1, y, R, 0);
        double gb = 2.0 * per * NMAT / (bench_now() - t0) / 1e9;
        best_h = gb > best_h ? gb : best_h;
        t0 = bench_now();
        for (int k = 0; k < NMAT; k++)
            rwkv_dnnl_gemm(dt, RWKV_GEMM_BF16, 1, R, K, x, w + k * per, y, R, 0);
        gb = 2.0 * per * NMAT / (bench_now() - t0) / 1e9;
        best_d = gb > best_d ? gb : best_d;
    }
    rwkv_dnnl_thread_free(dt);
    free(w);
    *hand = best_h;
    *dnnl = best_d;
}

/* ---------------------------------------------------------------- engine */

typedef enum { PREFILL_LAST, PREFILL_SURPRISAL, DECODE } mode;

static double run_config(rwkv_engine *e, const rwkv_model *m, const uint32_t *tokens,
                         int total, int T, mode md)
{
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    rwkv_state *st = rwkv_state_new(m);
    float *logits = malloc(sizeof(float) * (size_t)mi->vocab_size);
    float *sur = malloc(sizeof(float) * (size_t)T);
    rwkv_error err;
    double t0 = bench_now();
    for (int pos = 0; pos + T <= total; pos += T) {
        rwkv_request q = {.state = st, .tokens = tokens + pos, .n_tokens = T, .next_token = -1};
        if (md == PREFILL_SURPRISAL) {
            q.surprisal_out = sur;
            q.next_token = pos + T < total ? (int64_t)tokens[pos + T] : -1;
        } else {
            q.logits = RWKV_LOGITS_LAST;
            q.logits_out = logits;
        }
        if (rwkv_forward(e, &q, 1, &err) != 0) {
            fprintf(stderr, "bench: %s\n", err.msg);
            exit(1);
        }
    }
    double dt = bench_now() - t0;
    free(logits);
    free(sur);
    rwkv_state_free(st);
    return (total / T * T) / dt;
}

#define N_CFG 7
static const struct {
    const char *name;
    int T;
    mode md;
    int total;
} CFG[N_CFG] = {
    {"prefill T=64, last logits", 64, PREFILL_LAST, 2048},
    {"prefill T=256, last logits", 256, PREFILL_LAST, 2048},
    {"prefill T=1024, last logits", 1024, PREFILL_LAST, 2048},
    {"prefill T=64, surprisal/token", 64, PREFILL_SURPRISAL, 2048},
    {"prefill T=256, surprisal/token", 256, PREFILL_SURPRISAL, 2048},
    {"prefill T=1024, surprisal/token", 1024, PREFILL_SURPRISAL, 2048},
    {"decode T=1, logits/token", 1, DECODE, 256},
};

/* --only TEXT: the configurations whose name contains TEXT (NULL: all) */
static const char *only_cfg;

static int wanted(int c)
{
    return !only_cfg || strstr(CFG[c].name, only_cfg) != NULL;
}

typedef struct {
    double tok_s[N_CFG];
    double rss_mb, create_s, load_s;
    double rss_created_mb; /* peak RSS once the engine exists: weights, not activations */
} prec_result;

/* In a child: one engine at precision p, every configuration reps times
 * (median), peak RSS of the process. */
static int run_precision(const char *path, rwkv_precision p, int threads, int reps,
                         prec_result *out)
{
    rwkv_error err;
    rwkv_model *m;
    double tl = bench_now();
    if (rwkv_model_load(path, &m, &err) != 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return -1;
    }
    out->load_s = bench_now() - tl;
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    double t0 = bench_now();
    rwkv_engine_opts o = {.n_threads = threads, .precision = p};
    rwkv_engine *e = rwkv_engine_new_opts(m, &o, &err);
    if (!e) {
        fprintf(stderr, "bench: %s\n", err.msg);
        rwkv_model_free(m);
        return -1;
    }
    out->create_s = bench_now() - t0;
    out->rss_created_mb = bench_peak_rss_mb();
    int total = 2048;
    uint32_t *tokens = malloc(sizeof(uint32_t) * (size_t)total);
    uint64_t s = 42;
    for (int i = 0; i < total; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tokens[i] = (uint32_t)((s >> 33) % (uint64_t)mi->vocab_size);
    }
    double v[N_CFG][100];
    run_config(e, m, tokens, 256, 256, PREFILL_LAST);
    for (int r = 0; r < reps; r++)
        for (int c = 0; c < N_CFG; c++)
            v[c][r] = wanted(c) ? run_config(e, m, tokens, CFG[c].total, CFG[c].T, CFG[c].md) : 0;
    for (int c = 0; c < N_CFG; c++)
        out->tok_s[c] = bench_median(v[c], reps);
    out->rss_mb = bench_peak_rss_mb();
    free(tokens);
    rwkv_engine_free(e);
    rwkv_model_free(m);
    return 0;
}

/* Runs fn in a child process and reads back `size` bytes of result. */
static int in_child(void *res, size_t size, int (*fn)(void *ctx, void *res), void *ctx)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t child = fork();
    if (child == 0) {
        close(fds[0]);
        int ok = fn(ctx, res) == 0 && write(fds[1], res, size) == (ssize_t)size;
        _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    int wst = 0;
    ssize_t got = child > 0 ? read(fds[0], res, size) : -1;
    close(fds[0]);
    if (child < 0 || waitpid(child, &wst, 0) != child || !WIFEXITED(wst) ||
        WEXITSTATUS(wst) != 0 || got != (ssize_t)size)
        return -1;
    return 0;
}

typedef struct {
    const char *path;
    rwkv_precision p;
    int threads, reps;
} prec_ctx;

static int prec_child(void *ctx, void *res)
{
    prec_ctx *c = ctx;
    return run_precision(c->path, c->p, c->threads, c->reps, res);
}

/* the int8 file of the bf16 one (in a child: its memory stays there) */
static int quantize_child(void *ctx, void *res)
{
    const char *const *paths = ctx;
    rwkv_error err;
    rwkv_model *m;
    double t0 = bench_now();
    if (rwkv_model_load(paths[0], &m, &err) != 0 ||
        rwkv_quantize_model(m, NULL, paths[1], NULL, NULL, NULL, &err) != 0) {
        fprintf(stderr, "bench: quantize: %s\n", err.msg);
        return -1;
    }
    rwkv_model_free(m);
    *(double *)res = bench_now() - t0;
    return 0;
}

static int peaks_child(void *ctx, void *res)
{
    int threads = *(int *)ctx;
    double *pk = res;
    rwkv_pool *pool = rwkv_pool_new(threads);
    const rwkv_cpu_features *f = rwkv_cpu_features_get();
    pk[PK_SGEMM] = gemm_rate(pool, 0);
    pk[PK_BF16] = rwkv_precision_check(RWKV_PRECISION_BF16, f, NULL) == 0 ? gemm_rate(pool, 1) : 0;
    pk[PK_INT8] = rwkv_precision_check(RWKV_PRECISION_INT8, f, NULL) == 0 ? gemm_rate(pool, 2) : 0;
    pk[PK_MEM] = bench_read_gbs(pool);
    pk[PK_GEMV_HAND] = pk[PK_GEMV_DNNL] = 0;
    if (pk[PK_BF16] > 0) {
        gemv_choice(&pk[PK_GEMV_HAND], &pk[PK_GEMV_DNNL]);
        /* which oneDNN kernel the engine's bf16 products get (AMX or not) */
        rwkv_dnnl_thread *t = rwkv_dnnl_thread_new();
        printf("oneDNN bf16 matmul kernel: M=1 %s, M=256 %s\n",
               rwkv_dnnl_impl(t, RWKV_GEMM_BF16, 1, 1024, 1024),
               rwkv_dnnl_impl(t, RWKV_GEMM_BF16, 256, 1024, 1024));
        fflush(stdout);
        rwkv_dnnl_thread_free(t);
    }
    rwkv_pool_free(pool);
    return 0;
}

int main(int argc, char **argv)
{
    const char *shape = "L12-D768-H64-V65536";
    int threads = 2, reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--shape") && i + 1 < argc)
            shape = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only_cfg = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--shape S] [--threads N] [--reps R] [--only TEXT]\n",
                    argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 100)
        reps = 3;
    if (threads < 1 || threads > 64)
        threads = 2;
    rwkv_error err;
    rwkv_random_model_spec spec = {.dtype = RWKV_BF16, .seed = 1};
    if (rwkv_random_model_parse_shape(shape, &spec, &err) != 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 2;
    }
    char path[256], qpath[256];
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, sizeof path, "%s/rwkvd-bench-prec-%d.safetensors", dir, (int)getpid());
    snprintf(qpath, sizeof qpath, "%s/rwkvd-bench-prec-%d.int8.safetensors", dir, (int)getpid());
    if (rwkv_random_model_write(&spec, path, &err) != 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    char feat[256];
    rwkv_cpu_features_describe(rwkv_cpu_features_get(), feat, sizeof feat);
    printf("model: random %s bf16; cpu features: %s\n", shape, feat);

    double pk[PK_N];
    if (in_child(pk, sizeof pk, peaks_child, &threads) != 0) {
        fprintf(stderr, "bench: measuring the machine's peaks failed\n");
        unlink(path);
        return 1;
    }
    printf("machine (%d threads): fp32 sgemm %.1f GFLOP/s, bf16 oneDNN %.1f GFLOP/s, int8 "
           "kernel %.1f GOP/s (M=256, 2048x1024), memory read %.1f GB/s\n",
           threads, pk[PK_SGEMM], pk[PK_BF16], pk[PK_INT8], pk[PK_MEM]);
    if (pk[PK_GEMV_HAND] > 0)
        printf("decode GEMV at M=1, one thread, bf16 weights streamed: hand-written AVX512-BF16 "
               "%.1f GB/s, oneDNN matmul %.1f GB/s\n",
               pk[PK_GEMV_HAND], pk[PK_GEMV_DNNL]);

    /* work and bytes per token of the layers (head separately) */
    rwkv_model *m;
    if (rwkv_model_load(path, &m, &err) != 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        unlink(path);
        return 1;
    }
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    double C = mi->n_embd, V = mi->vocab_size, L = mi->n_layer, F = mi->ffn_dim;
    double head = V * C, layer_params = (double)mi->n_params - 2 * head;
    double flops_tok = 2 * layer_params, head_flops = 2 * head;
    double sq = L * 4 * C * C; /* the square projections r k v o */
    double ffn = L * 2 * C * F;
    double lora = layer_params - sq - ffn;
    rwkv_model_free(m);
    /* decode bytes per token: fp32 / bf16 stream 2 B per (bf16) weight;
     * int8: FFN, head, attention value and output 1 B; receptance, key
     * and the LoRA factors bf16 (as stored; model_bind.c) */
    double bytes_bf16 = 2 * (sq + ffn + head + lora);
    double bytes_int8 = (ffn + head + sq / 2) + 2 * (sq / 2 + lora);
    double bytes_fp32 = bytes_bf16;

    /* the fourth: int8 over the int8 file of the same model */
    enum { NP = 4 };
    rwkv_precision ps[NP] = {RWKV_PRECISION_FP32, RWKV_PRECISION_BF16, RWKV_PRECISION_INT8,
                             RWKV_PRECISION_INT8};
    static const char *const label[NP] = {"fp32", "bf16", "int8", "int8q"};
    prec_result res[NP];
    int ran[NP] = {0, 0, 0, 0};
    double quant_s = -1;
    for (int k = 0; k < NP; k++) {
        if (rwkv_precision_check(ps[k], rwkv_cpu_features_get(), &err) != 0) {
            printf("%s: not run: %s\n", label[k], err.msg);
            continue;
        }
        if (k == 3) {
            const char *paths[2] = {path, qpath};
            if (in_child(&quant_s, sizeof quant_s, quantize_child, (void *)paths) != 0) {
                printf("int8q: rwkv quantize failed\n");
                continue;
            }
        }
        prec_ctx c = {k == 3 ? qpath : path, ps[k], threads, reps};
        ran[k] = in_child(&res[k], sizeof res[k], prec_child, &c) == 0;
        if (!ran[k])
            printf("%s: the run failed\n", label[k]);
    }
    unlink(path);
    unlink(qpath);
    printf("\nroof: decode, the weight bytes per token at the memory read rate; prefill,\n"
           "each product at the measured peak of the unit that runs it (LoRA factors on\n"
           "sgemm; bf16: the rest on the bf16 GEMM; int8: receptance/key on the bf16 GEMM,\n"
           "the rest on the int8 kernel); elementwise work and the recurrence count zero\n");
    printf("\n%-32s %6s %10s %10s %9s %10s\n", "configuration", "prec", "tok/s", "roof tok/s",
           "fraction", "vs fp32");
    for (int c = 0; c < N_CFG; c++) {
        for (int k = 0; k < NP && wanted(c); k++) {
            if (!ran[k])
                continue;
            double roof;
            const char *bound;
            if (CFG[c].md == DECODE) {
                double b = k == 0 ? bytes_fp32 : k == 1 ? bytes_bf16 : bytes_int8;
                roof = pk[PK_MEM] * 1e9 / b;
                bound = "memory";
            } else {
                /* each product at the peak of the unit that runs it: time
                 * per token is the sum of (work / rate) over the units */
                double hf = CFG[c].md == PREFILL_LAST ? head_flops / CFG[c].T : head_flops;
                double f_lora = 2 * lora, f_rk = 2 * sq / 2, f_rest = flops_tok - f_lora - f_rk;
                double s_tok;
                if (k == 0) {
                    s_tok = (flops_tok + hf) / (pk[PK_SGEMM] * 1e9);
                    bound = "sgemm";
                } else if (k == 1) {
                    s_tok = f_lora / (pk[PK_SGEMM] * 1e9) +
                            (f_rk + f_rest + hf) / (pk[PK_BF16] * 1e9);
                    bound = "sgemm+bf16 GEMM";
                } else {
                    s_tok = f_lora / (pk[PK_SGEMM] * 1e9) + f_rk / (pk[PK_BF16] * 1e9) +
                            (f_rest + hf) / (pk[PK_INT8] * 1e9);
                    bound = "sgemm+bf16+int8 kernel";
                }
                roof = 1 / s_tok;
            }
            double v = res[k].tok_s[c];
            printf("%-32s %6s %10.1f %10.1f %8.1f%% %9.2fx  (of %s bound)\n", k ? "" : CFG[c].name,
                   label[k], v, roof, 100 * v / roof,
                   ran[0] ? v / res[0].tok_s[c] : 0, bound);
        }
    }
    printf("\n");
    for (int k = 0; k < NP; k++)
        if (ran[k])
            printf("%-5s: peak RSS %.1f MB (%.1f MB once the engine exists), model load %.2f s, "
                   "engine creation (weight conversion) %.2f s%s\n",
                   label[k], res[k].rss_mb, res[k].rss_created_mb, res[k].load_s,
                   res[k].create_s, k == 3 ? " (the int8 file of the same model)" : "");
    if (ran[1] && ran[3])
        printf("int8 file (int8q) against the bf16 file: peak RSS once the engine exists "
               "int8q/bf16 %.2f, int8q/int8 %.2f; over the whole run (activations: the T=1024 "
               "surprisal rows' logits alone are %.0f MB) %.2f and %.2f; rwkv quantize took "
               "%.2f s\n",
               res[3].rss_created_mb / res[1].rss_created_mb,
               ran[2] ? res[3].rss_created_mb / res[2].rss_created_mb : 0.0,
               1024.0 * V * 4 / 1e6, res[3].rss_mb / res[1].rss_mb,
               ran[2] ? res[3].rss_mb / res[2].rss_mb : 0.0, quant_s);
    printf("decode weight bytes per token: fp32 path %.1f MB, bf16 %.1f MB, int8 %.1f MB\n",
           bytes_fp32 / 1e6, bytes_bf16 / 1e6, bytes_int8 / 1e6);
    return 0;
}
