/* vecops.h — the elementwise and normalisation kernels every RWKV generation
 * shares: LayerNorm, GroupNorm, token-shift mixing, activations, softmax.
 * All float32 in and out; statistics accumulate in double so that results
 * do not depend on vector width or thread count. */
#ifndef RWKV_VECOPS_H
#define RWKV_VECOPS_H

#include <stddef.h>

/* y = (x-mean)/sqrt(var+eps)*w + b over n elements (biased variance).
 * y may equal x. */
void rwkv_layernorm(const float *x, float *y, int n, const float *w, const float *b, float eps);

/* GroupNorm over groups of gsize consecutive channels: n_groups*gsize = n. */
void rwkv_groupnorm(const float *x, float *y, int n_groups, int gsize, const float *w,
                    const float *b, float eps);

/* y[i] = x[i] + (prev[i] - x[i]) * mix[i]   (RWKV token shift "lerp") */
void rwkv_lerp(const float *x, const float *prev, const float *mix, float *y, int n);

void rwkv_sigmoid_inplace(float *x, int n);
void rwkv_tanh_inplace(float *x, int n);
void rwkv_relu_sq_inplace(float *x, int n);
void rwkv_add_inplace(float *y, const float *x, int n);  /* y += x */
void rwkv_mul_inplace(float *y, const float *x, int n);  /* y *= x */

/* max_i x[i] and log(sum_i exp(x[i] - max)) + max, in one place so the
 * log-softmax of a row is computed the same way everywhere. */
double rwkv_logsumexp(const float *x, int n);

/* Index of the largest element (first one on ties). */
int rwkv_argmax(const float *x, int n);

#endif
