/* head_outputs.cu — the kernels behind the outputs of a pass:
 *  - gather_rows: the rows that need logits (scattered through the pass,
 *    e.g. the last row of every document when decoding) packed into one
 *    operand, so the head — the largest matrix — is read once per product
 *    rather than once per document;
 *  - surprisal: -ln softmax(logits)[target] per row, without the logits
 *    ever leaving the device unless someone asked for them.  Max, then a
 *    sum of exp(x - max) per thread in float, combined in double across the
 *    block: the CPU engine's log-sum-exp (core/engine/vecops.c) to well within the
 *    fixtures' surprisal tolerance;
 *  - colsum: per document segment, the sum over its rows of the ln_out
 *    output, accumulated in double in row order (hidden MEAN and the
 *    hidden_sum accumulator). */
#include "kernels/cuda_internal.cuh"
#include "kernels/device_util.cuh"

template <typename T>
static __global__ void gather_rows_kernel(const int *rows, const float *h, int C, T *out)
{
    const float *src = h + (size_t)rows[blockIdx.x] * C;
    T *dst = out + (size_t)blockIdx.x * C;
    for (int i = threadIdx.x; i < C; i += blockDim.x)
        dst[i] = from_f32<T>(src[i]);
}

int launch_gather_rows(cu_ctx *c, int n, const int *rows, const float *h, void *out,
                       rwkv_error *err)
{
    if (n <= 0)
        return 0;
    int th = cu_row_threads(c->C);
    if (c->prec == CU_BF16)
        gather_rows_kernel<bf16><<<n, th, 0, c->stream>>>(rows, h, c->C, (bf16 *)out);
    else
        gather_rows_kernel<float><<<n, th, 0, c->stream>>>(rows, h, c->C, (float *)out);
    LAUNCH_TRY(c->stream, "gather_rows");
    return 0;
}

#define SURPRISAL_THREADS 256

static __global__ void surprisal_kernel(const float *logits, int V, const int *target,
                                        float *out)
{
    __shared__ float sh[33];
    __shared__ double shd[33];
    const float *row = logits + (size_t)blockIdx.x * V;
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        mx = fmaxf(mx, row[i]);
    mx = block_max(mx, sh);
    float s = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        s += expf(row[i] - mx);
    double total = block_sum_f64((double)s, shd);
    if (threadIdx.x == 0) {
        int t = target[blockIdx.x];
        out[blockIdx.x] =
            t < 0 ? __int_as_float(0x7fc00000) : (float)(log(total) + (double)mx - (double)row[t]);
    }
}

int launch_surprisal(cu_ctx *c, int n, const float *logits, const int *target, float *out,
                     rwkv_error *err)
{
    if (n <= 0)
        return 0;
    surprisal_kernel<<<n, SURPRISAL_THREADS, 0, c->stream>>>(logits, c->V, target, out);
    LAUNCH_TRY(c->stream, "surprisal");
    return 0;
}

#define COLSUM_THREADS 128

static __global__ void colsum_kernel(const float *h, int C, const int *seq_start,
                                     const int *sum_seg, double *out)
{
    int col = blockIdx.x * COLSUM_THREADS + threadIdx.x;
    if (col >= C)
        return;
    int seg = sum_seg[blockIdx.y];
    double acc = 0.0;
    for (int m = seq_start[seg]; m < seq_start[seg + 1]; m++)
        acc += (double)h[(size_t)m * C + col];
    out[(size_t)blockIdx.y * C + col] = acc;
}

int launch_colsum(cu_ctx *c, const cu_pass *p, const float *h, double *colsum,
                  rwkv_error *err)
{
    if (p->n_sum <= 0)
        return 0;
    dim3 grid((unsigned)((c->C + COLSUM_THREADS - 1) / COLSUM_THREADS), (unsigned)p->n_sum);
    colsum_kernel<<<grid, COLSUM_THREADS, 0, c->stream>>>(h, c->C, p->seq_start, p->sum_seg,
                                                          colsum);
    LAUNCH_TRY(c->stream, "colsum");
    return 0;
}
