/* cuda_internal.cuh — what the CUDA backend's .cu files share: error
 * conversion, the device context (weights, working buffers, stream, cuBLAS
 * handle), the per-pass metadata, and the host-side launchers of every
 * kernel.  C++ only; never included by core/ or by C code.
 *
 * Conventions:
 *  - Every function that can fail returns 0 / -1 and fills an rwkv_error
 *    (file:line, the call, the CUDA/cuBLAS error string); nothing prints,
 *    nothing aborts.
 *  - Kernels are static in their .cu; each .cu exports one or two host
 *    launchers declared here, which check the launch (cudaGetLastError) and,
 *    with RWKV_CUDA_SYNC=1 in the environment, synchronise and check again
 *    so that an asynchronous fault is reported at the kernel that caused it.
 *  - "act" buffers (GEMM operands) are bf16 in bf16 mode and fp32 in fp32
 *    mode; launchers take them as void* and dispatch on the precision.
 *    Everything else between kernels is fp32.
 */
#ifndef RWKV_CUDA_INTERNAL_CUH
#define RWKV_CUDA_INTERNAL_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "core/backend.h"
#include "core/model/model_internal.h"
#include "core/engine/rwkv7.h"
#include "core/engine/state_internal.h"
#include "core/plan.h"
#include "kernels/rwkv_cuda.h"
}

typedef __nv_bfloat16 bf16;

/* ---------------------------------------------------------------- errors */
int cu_fail(rwkv_error *err, const char *file, int line, const char *what, cudaError_t e);
int cublas_fail(rwkv_error *err, const char *file, int line, const char *what, cublasStatus_t s);
/* After a launch: the launch's own error, and with RWKV_CUDA_SYNC=1 the
 * kernel's execution error too. */
int cu_check_launch(cudaStream_t st, rwkv_error *err, const char *file, int line,
                    const char *kernel);

#define CU_TRY(call)                                                                  \
    do {                                                                              \
        cudaError_t e_ = (call);                                                      \
        if (e_ != cudaSuccess)                                                        \
            return cu_fail(err, __FILE__, __LINE__, #call, e_);                       \
    } while (0)
#define CUBLAS_TRY(call)                                                              \
    do {                                                                              \
        cublasStatus_t s_ = (call);                                                   \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                              \
            return cublas_fail(err, __FILE__, __LINE__, #call, s_);                   \
    } while (0)
#define LAUNCH_TRY(stream, name)                                                      \
    do {                                                                              \
        if (cu_check_launch((stream), err, __FILE__, __LINE__, (name)) != 0)          \
            return -1;                                                                \
    } while (0)

/* ---------------------------------------------------------------- cuBLAS
 * Loaded on first use (cublas_dl.cu says why); the backend calls cuBLAS
 * only through this table. */
typedef cublasStatus_t (*cublas_create_fn)(cublasHandle_t *);
typedef cublasStatus_t (*cublas_destroy_fn)(cublasHandle_t);
typedef cublasStatus_t (*cublas_set_stream_fn)(cublasHandle_t, cudaStream_t);
typedef cublasStatus_t (*cublas_set_math_mode_fn)(cublasHandle_t, cublasMath_t);
typedef cublasStatus_t (*cublas_gemm_ex_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t,
                                            int, int, int, const void *, const void *,
                                            cudaDataType, int, const void *, cudaDataType, int,
                                            const void *, void *, cudaDataType, int,
                                            cublasComputeType_t, cublasGemmAlgo_t);
struct cublas_api {
    cublas_create_fn create;
    cublas_destroy_fn destroy;
    cublas_set_stream_fn set_stream;
    cublas_set_math_mode_fn set_math_mode;
    cublas_gemm_ex_fn gemm_ex;
};
/* The table, or NULL with err when the library cannot be loaded.  Thread
 * safe; loads once per process. */
const cublas_api *cublas_load(rwkv_error *err);

/* ---------------------------------------------------------------- context */
enum cu_precision { CU_BF16 = 0, CU_FP32 = 1 };

/* One layer's weights on the device.  Vectors fp32; matrices "act" dtype,
 * PyTorch Linear layout [out][in]. */
struct cu_layer7 {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    const float *att_mix; /* [6][C]: x_r, x_w, x_k, x_v, x_a, x_g */
    const float *w0, *a0, *v0, *k_k, *k_a, *r_k, *lnx_w, *lnx_b, *ffn_x_k;
    const void *w1, *w2, *a1, *a2, *v1, *v2, *g1, *g2; /* LoRA */
    const void *wr, *wk, *wv, *wo, *ffn_k, *ffn_v;
};

/* The LoRA hidden buffer holds the four down-projections side by side,
 * [rows][lora_ld]: decay w at column lora_off[0], a at [1], g at [2], v at
 * [3]; offsets are padded to 8 columns so every slice handed to cuBLAS
 * starts 16-byte aligned. */
enum { LORA_W = 0, LORA_A = 1, LORA_G = 2, LORA_V = 3 };
struct cu_ctx;
/* backend.cu: fills lora_w, lora_off and lora_ld from the four widths. */
void cu_lora_layout(cu_ctx *c, int w, int a, int g, int v);

/* Working buffers for up to `rows` token rows (one cudaMalloc). */
struct cu_scratch {
    int rows;
    void *block;
    float *x, *vfirst;           /* residual, layer-0 value (kept across layers) */
    void *mix;                   /* act [6][rows][C]: token-shift mixes */
    float *r, *k, *v, *w, *a, *g, *kk, *y, *vm; /* [rows][C] */
    void *yg;                    /* act [rows][C]: output-projection input */
    float *lora;                 /* [rows][lora_ld] */
    void *lora_act;              /* act [rows][lora_ld] */
    float *hid;                  /* [rows][F] */
    void *hid_act;               /* act [rows][F] */
    float *xlast_att, *xlast_ffn; /* [rows][C]: each segment's last LN row */
    float *h;                    /* [rows][C]: ln_out output */
};

struct cu_ctx {
    int device;
    cu_precision prec;
    size_t act_size; /* 2 or 4 */
    const rwkv_model *m;
    const rwkv7_weights *wts;
    int L, C, H, N, F, V;
    int lora_w[4], lora_off[4], lora_ld;
    cudaStream_t stream;
    const cublas_api *cublas;
    cublasHandle_t blas;
    /* weights: one allocation */
    void *wblock;
    size_t wbytes;
    const void *emb, *head;
    const float *ln0_w, *ln0_b, *ln_out_w, *ln_out_b;
    cu_layer7 *layer; /* host array [L] of device pointers */
    /* per-pass working memory, grown on demand up to max_rows */
    int max_rows;
    cu_scratch s;
    /* head: rows of logits computed per product */
    int head_rows;
    void *head_in;      /* act [head_rows][C] */
    float *logits;      /* [head_rows][V] */
    float *surprisal;   /* [head_rows] */
    /* per-segment column sums (hidden MEAN / hidden_sum), grown on demand */
    double *colsum;
    int colsum_cap;
    /* pass metadata: pinned host staging + device copy, grown on demand */
    void *meta_host, *meta_dev;
    size_t meta_cap;
    char desc[256];
};

/* The pass metadata as the kernels see it (pointers into meta_dev). */
struct cu_pass {
    int M, n_seg;
    const uint32_t *tokens; /* [M] */
    const int *row_seq;     /* [M]: segment of each row */
    const int *seq_start;   /* [n_seg + 1] */
    float *const *states;   /* [n_seg]: each segment's state (flat official layout) */
    int n_head;
    const int *head_row;    /* [n_head]: rows that need logits, in order */
    const int *head_target; /* [n_head]: the token whose surprisal is wanted, -1 none */
    int n_sum;
    const int *sum_seg;     /* [n_sum]: segments needing column sums */
};

/* Threads for a kernel that gives one block to a row of n elements: a
 * multiple of 32 (the reductions need whole warps), at most 256. */
static inline int cu_row_threads(int n)
{
    int t = (n + 31) / 32 * 32;
    return t < 32 ? 32 : t > 256 ? 256 : t;
}

/* ---------------------------------------------------------------- modules */
/* weights.cu */
size_t cu_weight_bytes(const rwkv_model *m, size_t act_size);
int cu_weights_upload(cu_ctx *c, rwkv_error *err);
void cu_weights_free(cu_ctx *c);

/* scratch.cu: working memory */
size_t cu_scratch_bytes_per_row(const cu_ctx *c);
int cu_scratch_reserve(cu_ctx *c, int rows, rwkv_error *err);
int cu_head_rows(int V); /* logits rows per head product for vocabulary V */
int cu_head_alloc(cu_ctx *c, rwkv_error *err);
int cu_colsum_reserve(cu_ctx *c, int n, rwkv_error *err);
int cu_meta_reserve(cu_ctx *c, size_t bytes, rwkv_error *err);
void cu_scratch_free(cu_ctx *c);

/* gemm.cu: Y[M][ldy] (= or +=) X[M][ldx] · W[N][K]ᵀ; X, W act dtype, Y fp32 */
int cu_gemm(cu_ctx *c, int M, int N, int K, const void *X, int ldx, const void *W, float *Y,
            int ldy, int accumulate, rwkv_error *err);

/* forward.cu: the backend's forward */
int cu_forward(void *ctx, rwkv_request *reqs, int n, rwkv_error *err);

/* layer7.cu: one RWKV-7 layer over a pass */
int cu_layer7_forward(cu_ctx *c, int layer, const cu_pass *p, rwkv_error *err);

/* ---------------------------------------------------------------- launchers */
/* embed.cu: x[m] = LN(emb[tokens[m]]; ln0) */
int launch_embed(cu_ctx *c, const cu_pass *p, float *x, rwkv_error *err);

/* layernorm.cu: y[m] = LN(x[m]; w, b) for m < M (eps 1e-5) */
int launch_layernorm_rows(cu_ctx *c, int M, const float *x, const float *w, const float *b,
                          float *y, rwkv_error *err);

/* ln_shift_mix.cu: xx = LN(x[m]); prev = LN(x[m-1]) or the state's saved
 * row at state_off for a segment's first row; out[j][m] = xx + (prev-xx)
 * * mix[j] for j < n_mix (1 or 6); a segment's last xx goes to xlast[seg]. */
int launch_ln_shift_mix(cu_ctx *c, const cu_pass *p, int n_mix, const float *x,
                        const float *ln_w, const float *ln_b, size_t state_off,
                        const float *mix, void *out, float *xlast, rwkv_error *err);

/* shift_save.cu: every segment's state gets xlast_att at att_off and
 * xlast_ffn at ffn_off (after all reads of the old values). */
int launch_shift_save(cu_ctx *c, const cu_pass *p, size_t att_off, size_t ffn_off,
                      const float *xlast_att, const float *xlast_ffn, rwkv_error *err);

/* lora_act.cu: lora_act = f(lora), f = tanh on the decay slice, sigmoid on
 * the gate slice, identity elsewhere */
int launch_lora_act(cu_ctx *c, int M, const float *lora, void *out, rwkv_error *err);

/* wkv7_prepare.cu: decay, in-context rate, normalised kk, modified k and
 * the value residual, in place (w, a, k, v) plus kk and (layer 0) vfirst */
int launch_wkv7_prepare(cu_ctx *c, int layer, int M, const cu_layer7 *ly, rwkv_error *err);

/* wkv7_scan.cu: the recurrence per (segment, head); reads r w k v kk a,
 * writes y, updates the states' att_kv at layer offset lstate */
int launch_wkv7_scan(cu_ctx *c, const cu_pass *p, size_t lstate, rwkv_error *err);
int wkv7_scan_supported(int N);

/* wkv7_output.cu: yg = (GN(y) + (Σ r·k·r_k)·v) · g per head */
int launch_wkv7_output(cu_ctx *c, int M, const cu_layer7 *ly, rwkv_error *err);

/* relu_sq.cu: out = max(h, 0)² over n elements */
int launch_relu_sq(cu_ctx *c, size_t n, const float *h, void *out, rwkv_error *err);

/* head_outputs.cu */
/* out[i] = h[rows[i]] converted to act, i < n */
int launch_gather_rows(cu_ctx *c, int n, const int *rows, const float *h, void *out,
                       rwkv_error *err);
/* surprisal[i] = logsumexp(logits[i]) - logits[i][target[i]], NaN for target < 0 */
int launch_surprisal(cu_ctx *c, int n, const float *logits, const int *target, float *out,
                     rwkv_error *err);
/* colsum[j][col] = Σ over the rows of segment sum_seg[j] of h[row][col] (double) */
int launch_colsum(cu_ctx *c, const cu_pass *p, const float *h, double *colsum,
                  rwkv_error *err);

#endif
