/* layer7.cu — the launch sequence of one RWKV-7 layer over a pass (the
 * GPU twin of core/engine/rwkv7_layer.c; the math is ../shared/rwkv-math.md §4).
 *
 *   time mix:    ln_shift_mix(6) → r k v products, LoRA down products
 *                → lora_act → LoRA up products → wkv7_prepare → wkv7_scan
 *                → wkv7_output → x += output product
 *   channel mix: ln_shift_mix(1) → key product → relu_sq → x += value
 *                product
 *   shift_save:  the states take the pass's last normalised rows.
 *
 * Every product covers all M rows of the pass at once (the documents are
 * independent only in the token shift and the recurrence, which take the
 * segment table); the residual additions are folded into the two products
 * that produce them (beta = 1). */
#include "kernels/cuda_internal.cuh"

int cu_layer7_forward(cu_ctx *c, int l, const cu_pass *p, rwkv_error *err)
{
    const cu_layer7 *ly = &c->layer[l];
    cu_scratch *s = &c->s;
    const int M = p->M, C = c->C, F = c->F, ld = c->lora_ld;
    const size_t plane = (size_t)M * C * c->act_size;
    const char *mix = (const char *)s->mix;
    const void *xr = mix, *xw = mix + plane, *xk = mix + 2 * plane, *xv = mix + 3 * plane,
               *xa = mix + 4 * plane, *xg = mix + 5 * plane;
    const size_t lstate = (size_t)l * rwkv7_layer_state_floats(C, c->H, c->N);
    const size_t att_off = lstate, ffn_off = lstate + C + (size_t)c->H * c->N * c->N;
    const int *off = c->lora_off, *wd = c->lora_w;
    const char *la = (const char *)s->lora_act;
    const size_t asz = c->act_size;

    /* ---- time mix */
    if (launch_ln_shift_mix(c, p, 6, s->x, ly->ln1_w, ly->ln1_b, att_off, ly->att_mix, s->mix,
                            s->xlast_att, err) ||
        cu_gemm(c, M, C, C, xr, C, ly->wr, s->r, C, 0, err) ||
        cu_gemm(c, M, C, C, xk, C, ly->wk, s->k, C, 0, err) ||
        cu_gemm(c, M, C, C, xv, C, ly->wv, s->v, C, 0, err) ||
        cu_gemm(c, M, wd[LORA_W], C, xw, C, ly->w1, s->lora + off[LORA_W], ld, 0, err) ||
        cu_gemm(c, M, wd[LORA_A], C, xa, C, ly->a1, s->lora + off[LORA_A], ld, 0, err) ||
        cu_gemm(c, M, wd[LORA_G], C, xg, C, ly->g1, s->lora + off[LORA_G], ld, 0, err) ||
        (l > 0 &&
         cu_gemm(c, M, wd[LORA_V], C, xv, C, ly->v1, s->lora + off[LORA_V], ld, 0, err)))
        return -1;
    if (launch_lora_act(c, M, s->lora, s->lora_act, err) ||
        cu_gemm(c, M, C, wd[LORA_W], la + off[LORA_W] * asz, ld, ly->w2, s->w, C, 0, err) ||
        cu_gemm(c, M, C, wd[LORA_A], la + off[LORA_A] * asz, ld, ly->a2, s->a, C, 0, err) ||
        cu_gemm(c, M, C, wd[LORA_G], la + off[LORA_G] * asz, ld, ly->g2, s->g, C, 0, err) ||
        (l > 0 &&
         cu_gemm(c, M, C, wd[LORA_V], la + off[LORA_V] * asz, ld, ly->v2, s->vm, C, 0, err)))
        return -1;
    if (launch_wkv7_prepare(c, l, M, ly, err) || launch_wkv7_scan(c, p, lstate, err) ||
        launch_wkv7_output(c, M, ly, err) ||
        cu_gemm(c, M, C, C, s->yg, C, ly->wo, s->x, C, 1, err))
        return -1;

    /* ---- channel mix (its input reuses the first mix plane) */
    if (launch_ln_shift_mix(c, p, 1, s->x, ly->ln2_w, ly->ln2_b, ffn_off, ly->ffn_x_k, s->mix,
                            s->xlast_ffn, err) ||
        cu_gemm(c, M, F, C, s->mix, C, ly->ffn_k, s->hid, F, 0, err) ||
        launch_relu_sq(c, (size_t)M * F, s->hid, s->hid_act, err) ||
        cu_gemm(c, M, C, F, s->hid_act, F, ly->ffn_v, s->x, C, 1, err))
        return -1;
    return launch_shift_save(c, p, att_off, ffn_off, s->xlast_att, s->xlast_ffn, err);
}
