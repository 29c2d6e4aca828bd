/* harness_wkv7.cu — the WKV-7 kernels run alone for the per-kernel tests: wkv7_prepare,
 * wkv7_scan, wkv7_output
 * (contracts in rwkv_cuda.h; machinery in kernel_harness.cu). */
#include <stdlib.h>
#include <string.h>

#include "kernels/kernel_harness.cuh"

/* ---------------------------------------------------------------- WKV-7 */

static int check_k7(const char *what, const rwkv_cuda_k7 *a, rwkv_error *err)
{
    if (!a || !wkv7_scan_supported(a->N) || a->C < a->N || a->C % a->N != 0 || a->M < 1)
        return rwkv_fail(err, "cuda: %s harness: C %d, N %d, M %d (N 32/64/128, C = H*N)",
                         what, a ? a->C : 0, a ? a->N : 0, a ? a->M : 0);
    return 0;
}

static void k7_dims(kh *h, const rwkv_cuda_k7 *a)
{
    h->c.C = a->C;
    h->c.N = a->N;
    h->c.H = a->C / a->N;
}

extern "C" int rwkv_cuda_k_wkv7_prepare(int device, int first_layer, const rwkv_cuda_k7 *a,
                                        double ms[1], rwkv_error *err)
{
    if (check_k7("wkv7_prepare", a, err) != 0)
        return -1;
    return with_harness(device, 0, err, [&](kh *h) -> int {
        k7_dims(h, a);
        size_t MC = (size_t)a->M * a->C, B = MC * sizeof(float);
        cu_layer7 ly;
        memset(&ly, 0, sizeof ly);
        KH_COPY(ly.w0, a->w0, a->C);
        KH_COPY(ly.a0, a->a0, a->C);
        KH_COPY(ly.k_k, a->k_k, a->C);
        KH_COPY(ly.k_a, a->k_a, a->C);
        KH_COPY(ly.v0, a->v0, a->C);
        cu_scratch *s = &h->c.s;
        KH_ALLOC(s->w, float *, B);
        KH_ALLOC(s->a, float *, B);
        KH_ALLOC(s->k, float *, B);
        KH_ALLOC(s->v, float *, B);
        KH_ALLOC(s->kk, float *, B);
        KH_ALLOC(s->vm, float *, B);
        KH_ALLOC(s->vfirst, float *, B);
        for (int rep = 0; rep < 2; rep++)
            if (kh_up(h, s->w, a->w, B, err) || kh_up(h, s->a, a->a, B, err) ||
                kh_up(h, s->k, a->k, B, err) || kh_up(h, s->v, a->v, B, err) ||
                kh_up(h, s->vm, a->vm, B, err) || kh_up(h, s->vfirst, a->vfirst, B, err) ||
                kh_tick(h, 0, err) ||
                launch_wkv7_prepare(&h->c, first_layer ? 0 : 1, a->M, &ly, err) ||
                kh_tick(h, 1, err))
                return -1;
        if (kh_elapsed(h, 1, ms, err) || kh_down(h, a->w, s->w, B, err) ||
            kh_down(h, a->a, s->a, B, err) || kh_down(h, a->k, s->k, B, err) ||
            kh_down(h, a->v, s->v, B, err) || kh_down(h, a->kk, s->kk, B, err) ||
            kh_down(h, a->vfirst, s->vfirst, B, err))
            return -1;
        return 0;
    });
}

extern "C" int rwkv_cuda_k_wkv7_scan(int device, const rwkv_cuda_k7 *a, double ms[1],
                                     rwkv_error *err)
{
    if (check_k7("wkv7_scan", a, err) != 0 ||
        kh_check_segments("wkv7_scan", a->M, a->n_seg, a->seq_start, err) != 0)
        return -1;
    if (!a->states)
        return rwkv_fail(err, "cuda: wkv7_scan harness: no states");
    return with_harness(device, 0, err, [&](kh *h) -> int {
        k7_dims(h, a);
        size_t MC = (size_t)a->M * a->C, B = MC * sizeof(float);
        size_t SF = (size_t)a->C + (size_t)h->c.H * a->N * a->N, SB = SF * sizeof(float);
        cu_scratch *s = &h->c.s;
        float *st;
        KH_ALLOC(st, float *, (size_t)a->n_seg * SB);
        cu_pass p;
        if (kh_make_pass(h, &p, a->M, a->n_seg, a->seq_start, st, SF, err) != 0)
            return -1;
        KH_COPY(s->r, a->r, MC);
        KH_COPY(s->w, a->w, MC);
        KH_COPY(s->k, a->k, MC);
        KH_COPY(s->v, a->v, MC);
        KH_COPY(s->kk, a->kk, MC);
        KH_COPY(s->a, a->a, MC);
        KH_ALLOC(s->y, float *, B);
        for (int rep = 0; rep < 2; rep++) {
            for (int g = 0; g < a->n_seg; g++)
                if (kh_up(h, st + (size_t)g * SF, a->states[g], SB, err))
                    return -1;
            /* layer 0's slice: att_kv sits after att_x_prev, as in a state */
            if (kh_tick(h, 0, err) || launch_wkv7_scan(&h->c, &p, 0, err) || kh_tick(h, 1, err))
                return -1;
        }
        if (kh_elapsed(h, 1, ms, err) || kh_down(h, a->y, s->y, B, err))
            return -1;
        for (int g = 0; g < a->n_seg; g++)
            if (kh_down(h, a->states[g], st + (size_t)g * SF, SB, err))
                return -1;
        return 0;
    });
}

extern "C" int rwkv_cuda_k_wkv7_output(int device, int use_bf16, const rwkv_cuda_k7 *a,
                                       float *out, double ms[1], rwkv_error *err)
{
    if (check_k7("wkv7_output", a, err) != 0)
        return -1;
    return with_harness(device, use_bf16, err, [&](kh *h) -> int {
        k7_dims(h, a);
        size_t MC = (size_t)a->M * a->C;
        cu_layer7 ly;
        memset(&ly, 0, sizeof ly);
        KH_COPY(ly.lnx_w, a->lnx_w, a->C);
        KH_COPY(ly.lnx_b, a->lnx_b, a->C);
        KH_COPY(ly.r_k, a->r_k, a->C);
        cu_scratch *s = &h->c.s;
        KH_COPY(s->y, a->y, MC);
        KH_COPY(s->r, a->r, MC);
        KH_COPY(s->k, a->k, MC);
        KH_COPY(s->v, a->v, MC);
        KH_COPY(s->g, a->g, MC);
        KH_ALLOC(s->yg, void *, MC * h->c.act_size);
        for (int rep = 0; rep < 2; rep++)
            if (kh_tick(h, 0, err) || launch_wkv7_output(&h->c, a->M, &ly, err) ||
                kh_tick(h, 1, err))
                return -1;
        if (kh_elapsed(h, 1, ms, err) || kh_down_act(h, out, s->yg, MC, err))
            return -1;
        return 0;
    });
}
