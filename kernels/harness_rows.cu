/* harness_rows.cu — the row and elementwise kernels run alone for the per-kernel tests:
 * ln_shift_mix + shift_save, lora_act, relu_sq, embed, layernorm_rows
 * (contracts in rwkv_cuda.h; machinery in kernel_harness.cu). */
#include <stdlib.h>
#include <string.h>

#include "kernels/kernel_harness.cuh"

/* ---------------------------------------------------------------- LN + shift */

extern "C" int rwkv_cuda_k_ln_shift(int device, int use_bf16, int C, int M, int n_seg,
                                    const int *seq_start, const float *x_att,
                                    const float *x_ffn, const float *ln1_w, const float *ln1_b,
                                    const float *ln2_w, const float *ln2_b,
                                    const float *att_mix, const float *ffn_mix, float *states,
                                    float *att_out, float *ffn_out, double ms[3],
                                    rwkv_error *err)
{
    if (C < 1 || kh_check_segments("ln_shift", M, n_seg, seq_start, err) != 0)
        return C < 1 ? rwkv_fail(err, "cuda: ln_shift harness: C %d", C) : -1;
    return with_harness(device, use_bf16, err, [&](kh *h) -> int {
        size_t MC = (size_t)M * C, SC = (size_t)n_seg * 2 * C, a = h->c.act_size;
        h->c.C = C;
        const float *xa, *xf, *w1, *b1, *w2, *b2, *am, *fm;
        float *st, *la, *lf;
        void *ao, *fo;
        KH_COPY(xa, x_att, MC);
        KH_COPY(xf, x_ffn, MC);
        KH_COPY(w1, ln1_w, C);
        KH_COPY(b1, ln1_b, C);
        KH_COPY(w2, ln2_w, C);
        KH_COPY(b2, ln2_b, C);
        KH_COPY(am, att_mix, 6 * (size_t)C);
        KH_COPY(fm, ffn_mix, C);
        KH_ALLOC(st, float *, SC * sizeof(float));
        KH_ALLOC(la, float *, (size_t)n_seg * C * sizeof(float));
        KH_ALLOC(lf, float *, (size_t)n_seg * C * sizeof(float));
        KH_ALLOC(ao, void *, 6 * MC * a);
        KH_ALLOC(fo, void *, MC * a);
        cu_pass p;
        if (kh_make_pass(h, &p, M, n_seg, seq_start, st, 2 * (size_t)C, err) != 0)
            return -1;
        for (int rep = 0; rep < 2; rep++)
            if (kh_up(h, st, states, SC * sizeof(float), err) || kh_tick(h, 0, err) ||
                launch_ln_shift_mix(&h->c, &p, 6, xa, w1, b1, 0, am, ao, la, err) ||
                kh_tick(h, 1, err) ||
                launch_ln_shift_mix(&h->c, &p, 1, xf, w2, b2, (size_t)C, fm, fo, lf, err) ||
                kh_tick(h, 2, err) || launch_shift_save(&h->c, &p, 0, (size_t)C, la, lf, err) ||
                kh_tick(h, 3, err))
                return -1;
        if (kh_elapsed(h, 3, ms, err) || kh_down(h, states, st, SC * sizeof(float), err) ||
            kh_down_act(h, att_out, ao, 6 * MC, err) || kh_down_act(h, ffn_out, fo, MC, err))
            return -1;
        return 0;
    });
}

/* ---------------------------------------------------------------- LoRA */

extern "C" int rwkv_cuda_k_lora_act(int device, int use_bf16, int M, const int width[4],
                                    float *const hm[4], double ms[1], rwkv_error *err)
{
    if (M < 1)
        return rwkv_fail(err, "cuda: lora_act harness: M %d", M);
    for (int i = 0; i < 4; i++)
        if (width[i] < 1 || width[i] > 4096)
            return rwkv_fail(err, "cuda: lora_act harness: width %d", width[i]);
    return with_harness(device, use_bf16, err, [&](kh *h) -> int {
        cu_lora_layout(&h->c, width[0], width[1], width[2], width[3]);
        const int ld = h->c.lora_ld;
        size_t n = (size_t)M * ld;
        float *packed = (float *)calloc(n, sizeof(float));
        if (!packed)
            return rwkv_fail(err, "cuda: kernel harness: out of host memory");
        /* the CPU's four matrices side by side, at the backend's offsets */
        for (int i = 0; i < 4; i++)
            for (int m = 0; m < M; m++)
                memcpy(packed + (size_t)m * ld + h->c.lora_off[i], hm[i] + (size_t)m * width[i],
                       (size_t)width[i] * sizeof(float));
        float *in = NULL;
        void *out = NULL;
        int rc = 0;
        if (!(in = (float *)kh_alloc(h, n * sizeof(float), err)) ||
            !(out = kh_alloc(h, n * h->c.act_size, err)))
            rc = -1;
        for (int rep = 0; rc == 0 && rep < 2; rep++)
            if (kh_up(h, in, packed, n * sizeof(float), err) || kh_tick(h, 0, err) ||
                launch_lora_act(&h->c, M, in, out, err) || kh_tick(h, 1, err))
                rc = -1;
        if (rc == 0 && (kh_elapsed(h, 1, ms, err) || kh_down_act(h, packed, out, n, err)))
            rc = -1;
        for (int i = 0; rc == 0 && i < 4; i++)
            for (int m = 0; m < M; m++)
                memcpy(hm[i] + (size_t)m * width[i], packed + (size_t)m * ld + h->c.lora_off[i],
                       (size_t)width[i] * sizeof(float));
        free(packed);
        return rc;
    });
}


/* ---------------------------------------------------------------- elementwise */

extern "C" int rwkv_cuda_k_relu_sq(int device, int use_bf16, size_t n, const float *hv,
                                   float *out, double ms[1], rwkv_error *err)
{
    if (n < 1)
        return rwkv_fail(err, "cuda: relu_sq harness: n 0");
    return with_harness(device, use_bf16, err, [&](kh *h) -> int {
        const float *d;
        void *o;
        KH_COPY(d, hv, n);
        KH_ALLOC(o, void *, n * h->c.act_size);
        for (int rep = 0; rep < 2; rep++)
            if (kh_tick(h, 0, err) || launch_relu_sq(&h->c, n, d, o, err) || kh_tick(h, 1, err))
                return -1;
        if (kh_elapsed(h, 1, ms, err) || kh_down_act(h, out, o, n, err))
            return -1;
        return 0;
    });
}

/* ---------------------------------------------------------------- rows */

extern "C" int rwkv_cuda_k_embed(int device, int use_bf16, int C, int V, const float *emb,
                                 const float *ln0_w, const float *ln0_b, int M,
                                 const uint32_t *tokens, float *x, double ms[1],
                                 rwkv_error *err)
{
    if (C < 1 || V < 1 || M < 1)
        return rwkv_fail(err, "cuda: embed harness: C %d, V %d, M %d", C, V, M);
    for (int m = 0; m < M; m++)
        if (tokens[m] >= (uint32_t)V)
            return rwkv_fail(err, "cuda: embed harness: token %u at row %d (V %d)", tokens[m],
                             m, V);
    return with_harness(device, use_bf16, err, [&](kh *h) -> int {
        size_t MC = (size_t)M * C, VC = (size_t)V * C;
        h->c.C = C;
        h->c.V = V;
        void *e;
        uint32_t *tok;
        float *dx;
        KH_ALLOC(e, void *, VC * h->c.act_size);
        if (kh_up_act(h, e, emb, VC, err) != 0)
            return -1;
        h->c.emb = e;
        KH_COPY(h->c.ln0_w, ln0_w, C);
        KH_COPY(h->c.ln0_b, ln0_b, C);
        KH_ALLOC(tok, uint32_t *, (size_t)M * sizeof(uint32_t));
        if (kh_up(h, tok, tokens, (size_t)M * sizeof(uint32_t), err) != 0)
            return -1;
        KH_ALLOC(dx, float *, MC * sizeof(float));
        cu_pass p;
        memset(&p, 0, sizeof p);
        p.M = M;
        p.tokens = tok;
        for (int rep = 0; rep < 2; rep++)
            if (kh_tick(h, 0, err) || launch_embed(&h->c, &p, dx, err) || kh_tick(h, 1, err))
                return -1;
        if (kh_elapsed(h, 1, ms, err) || kh_down(h, x, dx, MC * sizeof(float), err))
            return -1;
        return 0;
    });
}

extern "C" int rwkv_cuda_k_layernorm(int device, int C, int M, const float *x, const float *w,
                                     const float *b, float *y, double ms[1], rwkv_error *err)
{
    if (C < 1 || M < 1)
        return rwkv_fail(err, "cuda: layernorm harness: C %d, M %d", C, M);
    return with_harness(device, 0, err, [&](kh *h) -> int {
        size_t MC = (size_t)M * C;
        h->c.C = C;
        const float *dx, *dw, *db;
        float *dy;
        KH_COPY(dx, x, MC);
        KH_COPY(dw, w, C);
        KH_COPY(db, b, C);
        KH_ALLOC(dy, float *, MC * sizeof(float));
        for (int rep = 0; rep < 2; rep++)
            if (kh_tick(h, 0, err) || launch_layernorm_rows(&h->c, M, dx, dw, db, dy, err) ||
                kh_tick(h, 1, err))
                return -1;
        if (kh_elapsed(h, 1, ms, err) || kh_down(h, y, dy, MC * sizeof(float), err))
            return -1;
        return 0;
    });
}
