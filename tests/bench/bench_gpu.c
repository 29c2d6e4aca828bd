/* bench_gpu.c — the CUDA backend's throughput against the device's own
 * measured peaks (make bench-gpu; also run by make bench; not a test).
 *
 * Models: random-weight RWKV-7 of the 0.1B shape (L12 D768) and the 1.5B
 * shape (L24 D2048), head size 64, vocabulary 65536, bf16 weights, engine
 * in bf16 mode (the default).  Figures:
 *  - the device's cuBLAS bf16 GEMM TFLOP/s (8192³, and the model's own
 *    shapes for reference) and its memory bandwidth (copy kernel);
 *  - prefill tok/s at B×T = 1×4096, 16×1024, 64×256 (one call, B documents
 *    of T tokens, last-token logits each) and the fraction of the GEMM
 *    roofline reached: (the GEMM FLOPs the call needs / time) / peak;
 *  - decode tok/s at B = 1, 64, 256 (one token per document per call,
 *    logits every step) and the fraction of the bandwidth bound: every
 *    weight matrix once per step plus each document's state read and
 *    written once, at the measured bandwidth.
 * Targets (the issue): prefill >= 60% of the GEMM roofline, decode at B = 1
 * >= 60% of the bandwidth bound.  Medians of --reps runs after a warm-up.
 *
 * Without a device (or in a build without CUDA) it says why and exits 0.
 *
 * Usage: bench_gpu [--device N] [--reps R] [--only 0.1b|1.5b]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/forward.h"
#include "core/model.h"
#include "core/random_model.h"
#include "core/state.h"
#include "core/tensor_file.h"
#ifndef RWKV_NO_CUDA
#include "kernels/rwkv_cuda.h"
#include "tests/support/bench_measure.h"
#endif

#ifndef RWKV_NO_CUDA

typedef struct {
    const char *name;
    int L, D;
} shape;

typedef struct {
    int device, reps;
    double gemm_tflops, bw_gbs;
} bench;

/* GEMM FLOPs per token of the layers (every Linear and LoRA factor once). */
static double layer_flops_per_token(const rwkv_random_model_spec *s)
{
    int dw, da, dv, dg;
    rwkv_random_model_lora_dims(s->n_embd, &dw, &da, &dv, &dg);
    double C = s->n_embd, F = s->ffn_dim ? s->ffn_dim : 4.0 * s->n_embd;
    double per_layer = 4 * C * C + 2 * C * F + 2 * C * (dw + da + dg);
    double total = per_layer * s->n_layer + 2 * C * dv * (s->n_layer - 1);
    return 2 * total;
}

static void die(const char *what, const rwkv_error *err)
{
    fprintf(stderr, "bench_gpu: %s: %s\n", what, err->msg);
    exit(1);
}

/* One forward call: B documents of T tokens each (last-token logits). */
static double time_call(rwkv_engine *e, rwkv_state **st, const uint32_t *tok, int B, int T,
                        float *logits, int V)
{
    rwkv_request q[256];
    for (int b = 0; b < B; b++)
        q[b] = (rwkv_request){.state = st[b], .tokens = tok + (size_t)b * T, .n_tokens = T,
                              .logits = RWKV_LOGITS_LAST, .logits_out = logits + (size_t)b * V,
                              .next_token = -1};
    rwkv_error err;
    double t0 = bench_now();
    if (rwkv_forward(e, q, B, &err) != 0)
        die("forward", &err);
    return bench_now() - t0;
}

static void run_shape(const bench *bn, const shape *sh)
{
    rwkv_random_model_spec spec = {.n_layer = sh->L, .n_embd = sh->D, .head_size = 64,
                                   .vocab_size = 65536, .dtype = RWKV_BF16, .seed = 1};
    rwkv_error err;
    rwkv_error_clear(&err);
    void *buf = NULL;
    size_t len = 0;
    rwkv_tensor_file *f = NULL;
    rwkv_model *m = NULL;
    double t0 = bench_now();
    if (rwkv_random_model_serialize(&spec, &buf, &len, &err) != 0 ||
        rwkv_tensor_file_parse(sh->name, buf, len, &f, &err) != 0 ||
        rwkv_model_from_tensors(f, &m, &err) != 0)
        die("random model", &err);
    double t_gen = bench_now() - t0;
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    char dev[16];
    snprintf(dev, sizeof dev, "cuda:%d", bn->device);
    t0 = bench_now();
    rwkv_engine *e = rwkv_engine_new_on(m, dev, 0, &err);
    if (!e)
        die("engine", &err);
    double t_up = bench_now() - t0;
    int V = mi->vocab_size, C = mi->n_embd;
    double fl_tok = layer_flops_per_token(&spec), fl_head = 2.0 * V * C;
    double wbytes = 2.0 * ((double)rwkv_random_model_params(&spec) - (double)V * C); /* no emb */
    double sbytes = 4.0 * (double)mi->state_floats;
    printf("\n== %s (L%d D%d, %.0fM params, bf16): generated in %.1f s, uploaded in %.2f s\n",
           sh->name, sh->L, sh->D, rwkv_random_model_params(&spec) / 1e6, t_gen, t_up);
    printf("   %s\n", rwkv_engine_device(e));
    printf("   %.2f GFLOP per token in the layers; state %.2f MiB per document\n", fl_tok / 1e9,
           sbytes / (1024.0 * 1024.0));

    enum { MAXB = 256 };
    rwkv_state *st[MAXB];
    for (int b = 0; b < MAXB; b++)
        if (!(st[b] = rwkv_state_new(m))) {
            fprintf(stderr, "bench_gpu: out of memory\n");
            exit(1);
        }
    float *logits = malloc((size_t)MAXB * V * sizeof(float));
    uint32_t *tok = malloc(4096 * sizeof(uint32_t) * 4);
    if (!logits || !tok) {
        fprintf(stderr, "bench_gpu: out of memory\n");
        exit(1);
    }
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 4096 * 4; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        tok[i] = (uint32_t)(x % (uint64_t)V);
    }

    printf("   %-18s %12s %10s %14s\n", "prefill B x T", "tok/s", "ms/call", "of GEMM roof");
    int pb[3] = {1, 16, 64}, pt[3] = {4096, 1024, 256};
    for (int c = 0; c < 3; c++) {
        double t[32];
        time_call(e, st, tok, pb[c], pt[c], logits, V); /* warm-up: buffers, cuBLAS */
        for (int r = 0; r < bn->reps; r++)
            t[r] = time_call(e, st, tok, pb[c], pt[c], logits, V);
        double dt = bench_median(t, bn->reps), n = (double)pb[c] * pt[c];
        double flops = n * fl_tok + pb[c] * fl_head;
        printf("   %4d x %-11d %12.0f %10.2f %13.1f%%\n", pb[c], pt[c], n / dt, dt * 1e3,
               100.0 * flops / dt / (bn->gemm_tflops * 1e12));
    }

    printf("   %-18s %12s %10s %14s\n", "decode B", "tok/s", "ms/step", "of BW bound");
    int db[3] = {1, 64, 256};
    for (int c = 0; c < 3; c++) {
        int B = db[c], steps = 32;
        double t[32];
        time_call(e, st, tok, B, 1, logits, V);
        for (int r = 0; r < bn->reps; r++) {
            double sum = 0;
            for (int s = 0; s < steps; s++)
                sum += time_call(e, st, tok + s, B, 1, logits, V);
            t[r] = sum / steps;
        }
        double dt = bench_median(t, bn->reps);
        double bytes = wbytes + 2.0 * B * sbytes;
        double bound = B / (bytes / (bn->bw_gbs * 1e9));
        printf("   %-18d %12.0f %10.3f %13.1f%%   (bound %.0f tok/s: %.0f MB weights + %.0f MB "
               "states per step)\n",
               B, B / dt, dt * 1e3, 100.0 * (B / dt) / bound, bound, wbytes / 1e6,
               2.0 * B * sbytes / 1e6);
    }
    for (int b = 0; b < MAXB; b++)
        rwkv_state_free(st[b]);
    free(logits);
    free(tok);
    rwkv_engine_free(e);
    rwkv_model_free(m);
    free(buf);
}

static int run(int argc, char **argv)
{
    bench bn = {0, 5, 0, 0};
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc)
            bn.device = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            bn.reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--device N] [--reps R] [--only 0.1b|1.5b]\n", argv[0]);
            return 2;
        }
    }
    if (bn.reps < 1 || bn.reps > 32)
        bn.reps = 5;
    rwkv_error err;
    rwkv_error_clear(&err);
    char desc[256];
    if (rwkv_cuda_describe_device(bn.device, desc, sizeof desc, &err) != 0) {
        printf("bench_gpu: cannot run: %s\n", err.msg);
        return 0;
    }
    printf("bench_gpu: cuda:%d %s\n", bn.device, desc);
    double g8k, g01, g15;
    if (rwkv_cuda_gemm_tflops(bn.device, 8192, 8192, 8192, &g8k, &err) != 0 ||
        rwkv_cuda_gemm_tflops(bn.device, 4096, 768, 768, &g01, &err) != 0 ||
        rwkv_cuda_gemm_tflops(bn.device, 4096, 2048, 2048, &g15, &err) != 0 ||
        rwkv_cuda_bandwidth_gbs(bn.device, &bn.bw_gbs, &err) != 0)
        die("peaks", &err);
    bn.gemm_tflops = g8k;
    printf("cuBLAS bf16 GEMM: %.0f TFLOP/s at 8192^3 (the roofline used below); %.0f at "
           "4096x768x768, %.0f at 4096x2048x2048\n",
           g8k, g01, g15);
    printf("memory bandwidth: %.0f GB/s (copy kernel, read + write)\n", bn.bw_gbs);
    printf("targets: prefill >= 60%% of the GEMM roofline; decode B=1 >= 60%% of the "
           "bandwidth bound\n");
    shape shapes[2] = {{"0.1b", 12, 768}, {"1.5b", 24, 2048}};
    for (int s = 0; s < 2; s++)
        if (!only || !strcmp(only, shapes[s].name))
            run_shape(&bn, &shapes[s]);
    return 0;
}

#endif /* !RWKV_NO_CUDA */

int main(int argc, char **argv)
{
#ifdef RWKV_NO_CUDA
    (void)argc;
    (void)argv;
    (void)now;
    (void)median;
    printf("bench_gpu: cannot run: this build has no CUDA backend (nvcc was not found)\n");
    return 0;
#else
    return run(argc, argv);
#endif
}
