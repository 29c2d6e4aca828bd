/* vecops.c — see vecops.h. */
#include "core/engine/vecops.h"

#include <math.h>

#include "core/engine/simd.h"

RWKV_CLONES
static void moments(const float *x, int n, double *mean, double *var)
{
    double s, q;
#define VAL(i) ((double)x[i])
    RWKV_LANE_SUM_F64(s, n, VAL);
    double mu = s / n;
#define DEV2(i) (((double)x[i] - mu) * ((double)x[i] - mu))
    RWKV_LANE_SUM_F64(q, n, DEV2);
#undef VAL
#undef DEV2
    *mean = mu;
    *var = q / n;
}

RWKV_CLONES
static void scale_shift(const float *x, float *y, int n, float mu, float inv, const float *w,
                        const float *b)
{
    RWKV_SIMD
    for (int i = 0; i < n; i++)
        y[i] = (x[i] - mu) * inv * w[i] + b[i];
}

void rwkv_layernorm(const float *x, float *y, int n, const float *w, const float *b, float eps)
{
    double mu, var;
    moments(x, n, &mu, &var);
    float inv = (float)(1.0 / sqrt(var + (double)eps));
    scale_shift(x, y, n, (float)mu, inv, w, b);
}

void rwkv_groupnorm(const float *x, float *y, int n_groups, int gsize, const float *w,
                    const float *b, float eps)
{
    for (int g = 0; g < n_groups; g++) {
        size_t o = (size_t)g * gsize;
        rwkv_layernorm(x + o, y + o, gsize, w + o, b + o, eps);
    }
}

RWKV_CLONES
void rwkv_lerp(const float *x, const float *prev, const float *mix, float *y, int n)
{
    RWKV_SIMD
    for (int i = 0; i < n; i++)
        y[i] = x[i] + (prev[i] - x[i]) * mix[i];
}

RWKV_CLONES
void rwkv_sigmoid_inplace(float *x, int n)
{
    RWKV_SIMD
    for (int i = 0; i < n; i++)
        x[i] = rwkv_sigmoidf(x[i]);
}

RWKV_CLONES
void rwkv_tanh_inplace(float *x, int n)
{
    RWKV_SIMD
    for (int i = 0; i < n; i++)
        x[i] = rwkv_tanhf(x[i]);
}

RWKV_CLONES
void rwkv_relu_sq_inplace(float *x, int n)
{
    RWKV_SIMD
    for (int i = 0; i < n; i++) {
        float v = x[i] > 0 ? x[i] : 0;
        x[i] = v * v;
    }
}

RWKV_CLONES
void rwkv_add_inplace(float *y, const float *x, int n)
{
    RWKV_SIMD
    for (int i = 0; i < n; i++)
        y[i] += x[i];
}

RWKV_CLONES
void rwkv_mul_inplace(float *y, const float *x, int n)
{
    RWKV_SIMD
    for (int i = 0; i < n; i++)
        y[i] *= x[i];
}

RWKV_CLONES
static float max_f32(const float *x, int n)
{
    float m = x[0];
    RWKV_PRAGMA(omp simd reduction(max : m))
    for (int i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

RWKV_CLONES
static double sum_exp_shifted(const float *x, int n, float m)
{
    /* float partial sums in vector lanes, folded into double per 1024 */
    double total = 0;
    for (int i0 = 0; i0 < n; i0 += 1024) {
        int i1 = i0 + 1024 < n ? i0 + 1024 : n;
        float s;
#define EXPT(i) rwkv_expf(x[i0 + (int)(i)] - m)
        RWKV_LANE_SUM(s, i1 - i0, EXPT);
#undef EXPT
        total += s;
    }
    return total;
}

double rwkv_logsumexp(const float *x, int n)
{
    float m = max_f32(x, n);
    return log(sum_exp_shifted(x, n, m)) + (double)m;
}

int rwkv_argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}
