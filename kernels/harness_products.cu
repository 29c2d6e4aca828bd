/* harness_products.cu — the products and the head's kernels run alone for the per-kernel
 * tests: cu_gemm, gather_rows + head product + surprisal, colsum
 * (contracts in rwkv_cuda.h; machinery in kernel_harness.cu). */
#include <stdlib.h>
#include <string.h>

#include "kernels/kernel_harness.cuh"

/* ---------------------------------------------------------------- products */

extern "C" int rwkv_cuda_k_head(int device, int use_bf16, int C, int V, const float *head, int M,
                                const float *hrows, int n, const int *rows, const int *target,
                                float *logits, float *surprisal, double ms[3], rwkv_error *err)
{
    if (C < 1 || V < 1 || M < 1 || n < 1)
        return rwkv_fail(err, "cuda: head harness: C %d, V %d, M %d, n %d", C, V, M, n);
    for (int i = 0; i < n; i++)
        if (rows[i] < 0 || rows[i] >= M || target[i] < -1 || target[i] >= V)
            return rwkv_fail(err, "cuda: head harness: entry %d: row %d (M %d), target %d (V %d)",
                             i, rows[i], M, target[i], V);
    return with_harness(device, use_bf16, err, [&](kh *h) -> int {
        h->c.C = C;
        h->c.V = V;
        if (kh_blas(h, err) != 0)
            return -1;
        size_t VC = (size_t)V * C, NV = (size_t)n * V;
        void *dw, *din;
        const float *dh;
        int *drow, *dtgt;
        float *dlog, *dsur;
        KH_ALLOC(dw, void *, VC * h->c.act_size);
        if (kh_up_act(h, dw, head, VC, err) != 0)
            return -1;
        KH_COPY(dh, hrows, (size_t)M * C);
        KH_ALLOC(drow, int *, (size_t)n * sizeof(int));
        KH_ALLOC(dtgt, int *, (size_t)n * sizeof(int));
        if (kh_up(h, drow, rows, (size_t)n * sizeof(int), err) ||
            kh_up(h, dtgt, target, (size_t)n * sizeof(int), err))
            return -1;
        KH_ALLOC(din, void *, (size_t)n * C * h->c.act_size);
        KH_ALLOC(dlog, float *, NV * sizeof(float));
        KH_ALLOC(dsur, float *, (size_t)n * sizeof(float));
        for (int rep = 0; rep < 2; rep++)
            if (kh_tick(h, 0, err) || launch_gather_rows(&h->c, n, drow, dh, din, err) ||
                kh_tick(h, 1, err) || cu_gemm(&h->c, n, V, C, din, C, dw, dlog, V, 0, err) ||
                kh_tick(h, 2, err) || launch_surprisal(&h->c, n, dlog, dtgt, dsur, err) ||
                kh_tick(h, 3, err))
                return -1;
        if (kh_elapsed(h, 3, ms, err) || kh_down(h, logits, dlog, NV * sizeof(float), err) ||
            kh_down(h, surprisal, dsur, (size_t)n * sizeof(float), err))
            return -1;
        return 0;
    });
}

extern "C" int rwkv_cuda_k_gemm(int device, int use_bf16, int M, int N, int K, const float *X,
                                int ldx, int xoff, const float *W, float *Y, int ldy, int yoff,
                                int accumulate, double ms[1], rwkv_error *err)
{
    if (M < 1 || N < 1 || K < 1 || xoff < 0 || xoff % 8 != 0 || xoff + K > ldx || yoff < 0 ||
        yoff + N > ldy)
        return rwkv_fail(err, "cuda: gemm harness: M %d N %d K %d, X ld %d at %d, Y ld %d at %d",
                         M, N, K, ldx, xoff, ldy, yoff);
    return with_harness(device, use_bf16, err, [&](kh *h) -> int {
        if (kh_blas(h, err) != 0)
            return -1;
        size_t XN = (size_t)M * ldx, WN = (size_t)N * K, YN = (size_t)M * ldy;
        void *dx, *dw;
        float *dy;
        KH_ALLOC(dx, void *, XN * h->c.act_size);
        KH_ALLOC(dw, void *, WN * h->c.act_size);
        KH_ALLOC(dy, float *, YN * sizeof(float));
        if (kh_up_act(h, dx, X, XN, err) || kh_up_act(h, dw, W, WN, err))
            return -1;
        const char *xp = (const char *)dx + (size_t)xoff * h->c.act_size;
        for (int rep = 0; rep < 2; rep++)
            if (kh_up(h, dy, Y, YN * sizeof(float), err) || kh_tick(h, 0, err) ||
                cu_gemm(&h->c, M, N, K, xp, ldx, dw, dy + yoff, ldy, accumulate, err) ||
                kh_tick(h, 1, err))
                return -1;
        if (kh_elapsed(h, 1, ms, err) || kh_down(h, Y, dy, YN * sizeof(float), err))
            return -1;
        return 0;
    });
}

extern "C" int rwkv_cuda_k_colsum(int device, int C, int M, int n_seg, const int *seq_start,
                                  int n_sum, const int *sum_seg, const float *hrows,
                                  double *colsum, double ms[1], rwkv_error *err)
{
    if (C < 1 || kh_check_segments("colsum", M, n_seg, seq_start, err) != 0)
        return C < 1 ? rwkv_fail(err, "cuda: colsum harness: C %d", C) : -1;
    if (n_sum < 1 || n_sum > n_seg)
        return rwkv_fail(err, "cuda: colsum harness: %d sums of %d segments", n_sum, n_seg);
    for (int j = 0; j < n_sum; j++)
        if (sum_seg[j] < 0 || sum_seg[j] >= n_seg)
            return rwkv_fail(err, "cuda: colsum harness: segment %d of %d", sum_seg[j], n_seg);
    return with_harness(device, 0, err, [&](kh *h) -> int {
        h->c.C = C;
        cu_pass p;
        if (kh_make_pass(h, &p, M, n_seg, seq_start, NULL, 0, err) != 0)
            return -1;
        int *dseg;
        const float *dh;
        double *dsum;
        KH_ALLOC(dseg, int *, (size_t)n_sum * sizeof(int));
        if (kh_up(h, dseg, sum_seg, (size_t)n_sum * sizeof(int), err) != 0)
            return -1;
        p.n_sum = n_sum;
        p.sum_seg = dseg;
        KH_COPY(dh, hrows, (size_t)M * C);
        KH_ALLOC(dsum, double *, (size_t)n_sum * C * sizeof(double));
        for (int rep = 0; rep < 2; rep++)
            if (kh_tick(h, 0, err) || launch_colsum(&h->c, &p, dh, dsum, err) || kh_tick(h, 1, err))
                return -1;
        if (kh_elapsed(h, 1, ms, err) ||
            kh_down(h, colsum, dsum, (size_t)n_sum * C * sizeof(double), err))
            return -1;
        return 0;
    });
}
