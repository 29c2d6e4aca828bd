/* wkv7_scan.cu — the WKV-7 recurrence, token by token: the one part of the
 * model that cannot be batched over tokens.  For one head with state
 * S[i][j] (i = value channel, j = key channel), per token:
 *
 *   sa    = Σ_j S[i][j]·kk[j]                          (old S)
 *   S[i][j] = S[i][j]·w[j] − sa·(kk[j]·a[j]) + v[i]·k[j]
 *   y[i]  = Σ_j S[i][j]·r[j]                           (new S)
 *
 * Shape: one block per (document segment, head), one thread per value
 * channel i, holding its state row S[i][0..N) in registers for the whole
 * segment — the state is read from the document's device state once and
 * written back once per call, never in between.  Both sums run over j
 * inside a thread, so a token needs no cross-thread reduction and no
 * synchronisation: the key-indexed inputs r, w, k, kk and b = kk·a are
 * staged for TC tokens at a time in shared memory (one coalesced load and
 * two barriers per TC tokens) and read as broadcasts; v[i] and y[i] are
 * per-thread and coalesced across the block.  The sums use four partial
 * accumulators to shorten the dependency chains.
 *
 * This is the sequential form: a segment of T tokens costs T dependent
 * steps.  For long single documents the chunked (WY / DPLR) formulation
 * would trade them for matrix products; see kernels/NOTES.md for why it is
 * not here yet.
 *
 * Head sizes 32, 64 and 128 are instantiated (official RWKV-7: 64). */
#include <stdlib.h>

#include "kernels/cuda_internal.cuh"

#define TC 16 /* tokens staged per barrier pair */

template <int N>
static __global__ void __launch_bounds__(N)
    wkv7_scan_kernel(int ld, const int *seq_start, float *const *states, size_t kv_off,
                     const float *r, const float *w, const float *k, const float *v,
                     const float *kk, const float *a, float *y)
{
    __shared__ __align__(16) float sr[TC][N];
    __shared__ __align__(16) float sw[TC][N];
    __shared__ __align__(16) float sk[TC][N];
    __shared__ __align__(16) float skk[TC][N];
    __shared__ __align__(16) float sb[TC][N];
    const int seg = blockIdx.x, h = blockIdx.y, i = threadIdx.x;
    const int m0 = seq_start[seg], T = seq_start[seg + 1] - m0;
    float *S = states[seg] + kv_off + (size_t)h * N * N + (size_t)i * N;
    const size_t col = (size_t)h * N + i;

    float st[N];
#pragma unroll
    for (int j = 0; j < N; j += 4) {
        float4 q = *reinterpret_cast<const float4 *>(S + j);
        st[j] = q.x, st[j + 1] = q.y, st[j + 2] = q.z, st[j + 3] = q.w;
    }

    for (int t0 = 0; t0 < T; t0 += TC) {
        const int n = T - t0 < TC ? T - t0 : TC;
        __syncthreads(); /* the previous chunk has been consumed */
        for (int tt = 0; tt < n; tt++) {
            size_t o = (size_t)(m0 + t0 + tt) * ld + col;
            float kkv = kk[o];
            sr[tt][i] = r[o];
            sw[tt][i] = w[o];
            sk[tt][i] = k[o];
            skk[tt][i] = kkv;
            sb[tt][i] = kkv * a[o];
        }
        __syncthreads();
        for (int tt = 0; tt < n; tt++) {
            size_t o = (size_t)(m0 + t0 + tt) * ld + col;
            const float vi = v[o];
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma unroll
            for (int j = 0; j < N; j += 4) {
                float4 q = *reinterpret_cast<const float4 *>(&skk[tt][j]);
                s0 += st[j] * q.x;
                s1 += st[j + 1] * q.y;
                s2 += st[j + 2] * q.z;
                s3 += st[j + 3] * q.w;
            }
            const float sa = (s0 + s1) + (s2 + s3);
            float y0 = 0.0f, y1 = 0.0f, y2 = 0.0f, y3 = 0.0f;
#pragma unroll
            for (int j = 0; j < N; j += 4) {
                float4 wq = *reinterpret_cast<const float4 *>(&sw[tt][j]);
                float4 bq = *reinterpret_cast<const float4 *>(&sb[tt][j]);
                float4 kq = *reinterpret_cast<const float4 *>(&sk[tt][j]);
                float4 rq = *reinterpret_cast<const float4 *>(&sr[tt][j]);
                st[j] = st[j] * wq.x - sa * bq.x + vi * kq.x;
                st[j + 1] = st[j + 1] * wq.y - sa * bq.y + vi * kq.y;
                st[j + 2] = st[j + 2] * wq.z - sa * bq.z + vi * kq.z;
                st[j + 3] = st[j + 3] * wq.w - sa * bq.w + vi * kq.w;
                y0 += st[j] * rq.x;
                y1 += st[j + 1] * rq.y;
                y2 += st[j + 2] * rq.z;
                y3 += st[j + 3] * rq.w;
            }
            y[o] = (y0 + y1) + (y2 + y3);
        }
    }

#pragma unroll
    for (int j = 0; j < N; j += 4)
        *reinterpret_cast<float4 *>(S + j) = make_float4(st[j], st[j + 1], st[j + 2], st[j + 3]);
}

int wkv7_scan_supported(int N)
{
    return N == 32 || N == 64 || N == 128;
}

/* n_seg blocks × H heads over rows of stride ld. */
static int launch_scan(cudaStream_t st, int N, int n_seg, int H, int ld, const int *seq_start,
                       float *const *states, size_t kv_off, const float *r, const float *w,
                       const float *k, const float *v, const float *kk, const float *a,
                       float *y, rwkv_error *err)
{
    if (n_seg <= 0)
        return 0;
    dim3 grid((unsigned)n_seg, (unsigned)H);
    switch (N) {
    case 32:
        wkv7_scan_kernel<32><<<grid, 32, 0, st>>>(ld, seq_start, states, kv_off, r, w, k, v, kk,
                                                  a, y);
        break;
    case 64:
        wkv7_scan_kernel<64><<<grid, 64, 0, st>>>(ld, seq_start, states, kv_off, r, w, k, v, kk,
                                                  a, y);
        break;
    case 128:
        wkv7_scan_kernel<128><<<grid, 128, 0, st>>>(ld, seq_start, states, kv_off, r, w, k, v,
                                                    kk, a, y);
        break;
    default:
        return rwkv_fail(err, "cuda: head size %d is not supported by the WKV-7 kernel", N);
    }
    LAUNCH_TRY(st, "wkv7_scan");
    return 0;
}

int launch_wkv7_scan(cu_ctx *c, const cu_pass *p, size_t lstate, rwkv_error *err)
{
    const cu_scratch *s = &c->s;
    /* a layer's state slice: att_x_prev [C], then att_kv [H][N][N] */
    return launch_scan(c->stream, c->N, p->n_seg, c->H, c->C, p->seq_start, p->states,
                       lstate + (size_t)c->C, s->r, s->w, s->k, s->v, s->kk, s->a, s->y, err);
}

/* ---------------------------------------------------------------- harness */

typedef struct {
    float *in;         /* r w k v kk a y, each [T][ld] */
    float *S;          /* [N][N] */
    int *seq_start;    /* {0, T} */
    float **states;    /* {S} */
} harness_bufs;

static int harness(int N, int T, int ld, const float *const host_in[6], float *S, float *y,
                   harness_bufs *b, rwkv_error *err)
{
    size_t plane = (size_t)T * ld, SN = (size_t)N * N;
    CU_TRY(cudaMalloc((void **)&b->in, 7 * plane * sizeof(float)));
    CU_TRY(cudaMalloc((void **)&b->S, SN * sizeof(float)));
    CU_TRY(cudaMalloc((void **)&b->seq_start, 2 * sizeof(int)));
    CU_TRY(cudaMalloc((void **)&b->states, sizeof(float *)));
    for (int i = 0; i < 6; i++)
        CU_TRY(cudaMemcpy(b->in + i * plane, host_in[i], plane * sizeof(float),
                          cudaMemcpyHostToDevice));
    /* y starts as garbage-free zeros so untouched columns compare clean */
    CU_TRY(cudaMemset(b->in + 6 * plane, 0, plane * sizeof(float)));
    CU_TRY(cudaMemcpy(b->S, S, SN * sizeof(float), cudaMemcpyHostToDevice));
    int ss[2] = {0, T};
    CU_TRY(cudaMemcpy(b->seq_start, ss, sizeof ss, cudaMemcpyHostToDevice));
    CU_TRY(cudaMemcpy(b->states, &b->S, sizeof(float *), cudaMemcpyHostToDevice));
    const float *in = b->in;
    if (launch_scan(0, N, 1, 1, ld, b->seq_start, b->states, 0, in, in + plane, in + 2 * plane,
                    in + 3 * plane, in + 4 * plane, in + 5 * plane, b->in + 6 * plane, err) != 0)
        return -1;
    CU_TRY(cudaDeviceSynchronize());
    CU_TRY(cudaMemcpy(S, b->S, SN * sizeof(float), cudaMemcpyDeviceToHost));
    /* only the head's N columns of each row are outputs */
    for (int t = 0; t < T; t++)
        CU_TRY(cudaMemcpy(y + (size_t)t * ld, b->in + 6 * plane + (size_t)t * ld,
                          (size_t)N * sizeof(float), cudaMemcpyDeviceToHost));
    return 0;
}

extern "C" int rwkv_cuda_wkv7_run(int device, int N, int T, int ld, const float *r,
                                  const float *w, const float *k, const float *v,
                                  const float *kk, const float *a, float *S, float *y,
                                  rwkv_error *err)
{
    if (!wkv7_scan_supported(N))
        return rwkv_fail(err, "cuda: head size %d is not supported by the WKV-7 kernel", N);
    if (T < 1 || ld < N)
        return rwkv_fail(err, "cuda: wkv7 harness: T %d, ld %d (need T >= 1, ld >= N)", T, ld);
    if (rwkv_cuda_device_count(err) < 0)
        return -1;
    if (device < 0)
        return rwkv_fail(err, "cuda: device %d does not exist", device);
    CU_TRY(cudaSetDevice(device));
    harness_bufs b = {NULL, NULL, NULL, NULL};
    const float *host_in[6] = {r, w, k, v, kk, a};
    int rc = harness(N, T, ld, host_in, S, y, &b, err);
    (void)cudaFree(b.in);
    (void)cudaFree(b.S);
    (void)cudaFree(b.seq_start);
    (void)cudaFree(b.states);
    return rc;
}
