/* sampler.c — temperature / top-k / top-p sampling over a row of logits.
 *
 * See sampler.h for the semantics.  The work per call is shaped so that a
 * vocabulary of 65536 costs a few passes, not a sort:
 *   - one pass validates the row and finds the maximum (on the float bits
 *     as ordered integers, so it vectorises);
 *   - with top-p < 1, one pass computes e_i = exp(l_i - max) and the
 *     normaliser Z (fixed-lane sums: the same bits on every CPU), and a
 *     second keeps only tokens with p_i >= (1-p)/(2V): the dropped ones
 *     together weigh less than (1-p)/2, so the nucleus lies inside;
 *   - top-k is one quickselect; the nucleus is a weighted quickselect: it
 *     partitions around a pivot, keeps the side that contains the point
 *     where the running mass reaches p, and sorts only the last <= 32;
 *   - the draw walks the kept weights once.
 * Exponentials are core/engine/simd.h's rwkv_expf (float, ~2 ulp, no libm call);
 * the sampler is not cloned per ISA, so FMA contraction cannot make one CPU
 * draw differently from another.
 * The order is strict (logit descending, id ascending), so the kept set never
 * depends on the selection algorithm; the quickselect pivots come from a
 * fixed splitmix64 sequence restarted per call (expected O(n) for any row),
 * so even the walk order is a pure function of the row.
 */
#include "core/sampler.h"

/* The exp loops only vectorise when float compares may be if-converted; the
 * sampler never looks at floating-point exception flags. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <math.h>
#include <stdlib.h>

#include "core/rng.h"
#include "core/engine/simd.h"

struct rwkv_sampler {
    rwkv_sampler_params p;
    size_t vocab;
    rwkv_rng rng;
    uint32_t *idx; /* [vocab] candidate ids; the kept ones end up in front */
    float *w;      /* [vocab] weight exp((l - max) / T), by kept position */
    float *e;      /* [vocab] exp(l - max), by id (top-p only) */
    int all;       /* last prepare kept every token: w is by id, idx unused */
};

rwkv_sampler_params rwkv_sampler_defaults(void)
{
    rwkv_sampler_params p = {.temperature = 1.0, .top_k = 0, .top_p = 1.0, .seed = 0};
    return p;
}

int rwkv_sampler_params_check(const rwkv_sampler_params *p, rwkv_error *err)
{
    if (!(p->temperature >= 0.0) || !isfinite(p->temperature))
        return rwkv_fail(err, "temperature must be a finite number >= 0 (got %g)",
                         p->temperature);
    if (p->top_k < 0)
        return rwkv_fail(err, "top_k must be >= 0 (got %d)", p->top_k);
    if (!(p->top_p > 0.0 && p->top_p <= 1.0))
        return rwkv_fail(err, "top_p must be in (0, 1] (got %g)", p->top_p);
    return 0;
}

rwkv_sampler *rwkv_sampler_new(size_t vocab, const rwkv_sampler_params *p, rwkv_error *err)
{
    if (rwkv_sampler_params_check(p, err) != 0)
        return NULL;
    if (vocab < 1 || vocab > INT32_MAX) {
        rwkv_fail(err, "sampler: vocabulary size %zu out of range", vocab);
        return NULL;
    }
    rwkv_sampler *s = calloc(1, sizeof *s);
    if (!s) {
        rwkv_fail(err, "sampler: out of memory");
        return NULL;
    }
    s->p = *p;
    s->vocab = vocab;
    s->idx = malloc(vocab * sizeof *s->idx);
    s->w = malloc(vocab * sizeof *s->w);
    s->e = malloc(vocab * sizeof *s->e);
    if (!s->idx || !s->w || !s->e) {
        rwkv_sampler_free(s);
        rwkv_fail(err, "sampler: out of memory for a vocabulary of %zu", vocab);
        return NULL;
    }
    rwkv_rng_seed(&s->rng, p->seed);
    return s;
}

void rwkv_sampler_free(rwkv_sampler *s)
{
    if (!s)
        return;
    free(s->idx);
    free(s->w);
    free(s->e);
    free(s);
}

void rwkv_sampler_reseed(rwkv_sampler *s, uint64_t seed)
{
    rwkv_rng_seed(&s->rng, seed);
}

/* a comes before b in the sampling order (branch-free). */
static inline int before(const float *l, uint32_t a, uint32_t b)
{
    float la = l[a], lb = l[b];
    return (la > lb) | ((la == lb) & (a < b));
}

static int cmp_order(const void *pa, const void *pb, void *ctx)
{
    const float *l = ctx;
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    if (a == b)
        return 0;
    return before(l, a, b) ? -1 : 1;
}

static inline void swap_u32(uint32_t *a, uint32_t *b)
{
    uint32_t t = *a;
    *a = *b;
    *b = t;
}

/* Branch-free Lomuto partition of a[lo..hi) around a pivot drawn from
 * pivot_rng: afterwards a[lo..s) come before the pivot, a[s] is the pivot,
 * a(s..hi) come after it.  Returns s; *mass (if e) = sum of e over a[lo..s). */
static size_t partition(uint32_t *a, size_t lo, size_t hi, const float *l, const float *e,
                        double *mass, uint64_t *pivot_rng)
{
    size_t pi = lo + (size_t)(rwkv_splitmix64(pivot_rng) % (hi - lo));
    swap_u32(&a[pi], &a[hi - 1]);
    const uint32_t pv = a[hi - 1];
    size_t s = lo;
    double m = 0.0;
    for (size_t i = lo; i < hi - 1; i++) {
        uint32_t x = a[i];
        int c = before(l, x, pv);
        a[i] = a[s];
        a[s] = x;
        s += (size_t)c;
        if (e)
            m += c ? (double)e[x] : 0.0;
    }
    swap_u32(&a[s], &a[hi - 1]);
    if (mass)
        *mass = m;
    return s;
}

/* Rearranges a[0..n) so that a[0..k) holds the first k ids in the order (in
 * no particular order among themselves).  Expected O(n). */
static void select_first(uint32_t *a, size_t n, size_t k, const float *l, uint64_t *pivot_rng)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1 && k > lo && k < hi) {
        size_t s = partition(a, lo, hi, l, NULL, NULL, pivot_rng);
        if (k == s || k == s + 1)
            return;
        if (k < s)
            hi = s;
        else
            lo = s + 1;
    }
}

/* Validates the row and finds its maximum.  Works on the float bit patterns
 * as ordered integers so the loop vectorises (a float max does not, since
 * NaN makes it order dependent): key(b) = b for sign 0, b ^ 0x7fffffff for
 * sign 1, which orders like the floats, -0 just below +0. */
static int scan(const float *l, size_t V, float *max_out, rwkv_error *err)
{
    int32_t kmax = INT32_MIN;
    uint32_t bad = 0;
    RWKV_PRAGMA(omp simd reduction(max : kmax) reduction(| : bad))
    for (size_t i = 0; i < V; i++) {
        uint32_t b = rwkv_f32_to_bits(l[i]), mag = b & 0x7fffffffu;
        bad |= (uint32_t)(mag > 0x7f800000u) | (uint32_t)(b == 0x7f800000u);
        int32_t k = (int32_t)(b ^ ((uint32_t)((int32_t)b >> 31) & 0x7fffffffu));
        kmax = k > kmax ? k : kmax;
    }
    if (bad) {
        for (size_t i = 0; i < V; i++)
            if (isnan(l[i]) || l[i] == INFINITY)
                return rwkv_fail(err, "sampler: logit %zu is %s", i, isnan(l[i]) ? "NaN" : "+inf");
    }
    uint32_t b = kmax < 0 ? (uint32_t)kmax ^ 0x7fffffffu : (uint32_t)kmax;
    float m = rwkv_bits_to_f32(b);
    if (m == -INFINITY)
        return rwkv_fail(err, "sampler: every logit is -inf");
    *max_out = m;
    return 0;
}

/* Moves the shortest prefix (in the order) of idx[0..n) whose mass e[]
 * reaches `need` to the front and returns its length (n when the whole set
 * falls short by rounding).  Weighted quickselect: expected O(n), no sort. */
static size_t select_mass(uint32_t *idx, size_t n, const float *e, const float *l, double need,
                          uint64_t *pivot_rng)
{
    size_t lo = 0, hi = n;
    double acc = 0.0; /* mass of idx[0..lo), all of which are kept */
    while (hi > lo) {
        if (hi - lo <= 32) {
            qsort_r(idx + lo, hi - lo, sizeof *idx, cmp_order, (void *)l);
            for (size_t j = lo; j < hi; j++) {
                acc += e[idx[j]];
                if (acc >= need)
                    return j + 1;
            }
            return hi; /* rounding left the running sum a hair short */
        }
        double before_mass;
        size_t s = partition(idx, lo, hi, l, e, &before_mass, pivot_rng);
        if (acc + before_mass >= need) {
            hi = s; /* the prefix ends among the tokens before the pivot */
        } else {
            acc += before_mass + e[idx[s]];
            if (acc >= need)
                return s + 1;
            lo = s + 1;
        }
    }
    return lo;
}

/* The value of rank r (0 = largest) among x[0..n), reordering x.  Hoare
 * partitioning around the middle element; n is small (a sample). */
static float nth_largest(float *x, size_t n, size_t r)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pv = x[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (x[i] > pv)
                i++;
            while (x[j] < pv)
                j--;
            if (i <= j) {
                float t = x[i];
                x[i] = x[j];
                x[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        /* x[lo..j] >= pv >= x[i..hi], and j < i */
        if (r <= j && j != (size_t)-1)
            hi = j;
        else if (r >= i)
            lo = i;
        else
            return x[r];
    }
    return x[r];
}

/* Top-k candidates when k is small: a threshold from a strided sample of
 * the row keeps about 4k + a margin tokens, so quickselect runs on those
 * only.  Returns the count, or 0 when the sample misjudged (fewer than k
 * pass) and the caller must take every finite token. */
static size_t topk_prefilter(const float *l, size_t V, size_t k, uint32_t *idx, float *scratch)
{
    enum { S = 512 };
    size_t ns = 0;
    for (size_t j = 0; j < S; j++) {
        float x = l[j * V / S];
        if (x > -INFINITY)
            scratch[ns++] = x;
    }
    if (ns < S / 2)
        return 0;
    size_t rank = (4 * k * ns + V - 1) / V + 8;
    if (rank >= ns)
        return 0;
    const float thr = nth_largest(scratch, ns, rank);
    size_t n = 0;
    for (size_t i = 0; i < V; i++) {
        idx[n] = (uint32_t)i;
        n += l[i] >= thr;
    }
    return n >= k ? n : 0;
}

/* Decides the kept set and its weights exp((l - max) / T); *wsum is their
 * sum.  Either s->all (every token, w by id, 0 for -inf) or idx[0..*n_keep)
 * with w by position.  -1 on a bad row. */
static int prepare(rwkv_sampler *s, const float *l, size_t *n_keep, double *wsum,
                   rwkv_error *err)
{
    const size_t V = s->vocab;
    const rwkv_sampler_params *p = &s->p;
    float m = 0.0f;
    if (scan(l, V, &m, err) != 0)
        return -1;
    uint32_t *idx = s->idx;
    float *w = s->w, *e = s->e;
    /* 1/T clamped to the float range: (l - max) * invT must never be 0 * inf */
    const float invT = 1.0 / p->temperature < 3e38 ? (float)(1.0 / p->temperature) : 3e38f;
    double sum;
    s->all = 0;
    if (p->temperature == 0.0 || p->top_k == 1) {
        size_t am = 0;
        while (l[am] != m) /* the first maximum: lowest id on ties */
            am++;
        idx[0] = (uint32_t)am;
        w[0] = 1.0f;
        *n_keep = 1;
        *wsum = 1.0;
        return 0;
    }
    if ((p->top_k == 0 || (size_t)p->top_k >= V) && p->top_p >= 1.0) {
        RWKV_SIMD
        for (size_t i = 0; i < V; i++) {
            float x = rwkv_expf((l[i] - m) * invT);
            w[i] = l[i] > -INFINITY ? x : 0.0f;
        }
#define W_AT(i) ((double)w[i])
        RWKV_LANE_SUM_F64(sum, V, W_AT);
        s->all = 1;
        *n_keep = V;
        *wsum = sum;
        return 0;
    }

    size_t n = 0;
    double Z = 0.0;
    uint64_t pivot_rng = 0x5EED5A3D1E5ull;
    if (p->top_p < 1.0) {
        /* e[i] = exp(l_i - max): p_i = e[i] / Z */
        RWKV_SIMD
        for (size_t i = 0; i < V; i++)
            e[i] = rwkv_expf(l[i] - m);
#define E_AT(i) ((double)e[i])
        RWKV_LANE_SUM_F64(Z, V, E_AT);
#undef E_AT
    }
    /* Candidates: a superset of what top-k and top-p keep, as small as a
     * cheap pass can make it. */
    if (p->top_k > 0 && (size_t)p->top_k * 16 < V &&
        (n = topk_prefilter(l, V, (size_t)p->top_k, idx, w)) > 0) {
        /* about 4k tokens that surely include the first k */
    } else if (p->top_p < 1.0) {
        /* Tokens below (1-p)/(2V) of the mass weigh less than (1-p)/2
         * together, so the nucleus lies among the others. */
        float thr = (float)((1.0 - p->top_p) * Z / (2.0 * (double)V));
        n = 0;
        for (size_t i = 0; i < V; i++) {
            idx[n] = (uint32_t)i;
            n += (e[i] >= thr) & (l[i] > -INFINITY);
        }
    } else {
        n = 0;
        for (size_t i = 0; i < V; i++) {
            idx[n] = (uint32_t)i;
            n += l[i] > -INFINITY;
        }
    }
    size_t keep = n;
    if (p->top_k > 0 && (size_t)p->top_k < keep) {
        keep = (size_t)p->top_k;
        select_first(idx, n, keep, l, &pivot_rng);
    }
    if (p->top_p < 1.0)
        keep = select_mass(idx, keep, e, l, p->top_p * Z, &pivot_rng);

    if (p->top_p < 1.0 && p->temperature == 1.0) {
        for (size_t j = 0; j < keep; j++)
            w[j] = e[idx[j]];
    } else {
        for (size_t j = 0; j < keep; j++)
            w[j] = rwkv_expf((l[idx[j]] - m) * invT);
    }
    RWKV_LANE_SUM_F64(sum, keep, W_AT);
#undef W_AT
    *n_keep = keep;
    *wsum = sum; /* >= 1: the maximum is always kept, with weight 1 */
    return 0;
}

/* The first position j with u < w[0] + ... + w[j].  Whole blocks are
 * skipped by their sums (fixed 8-lane order, so a pure function of w); the
 * last positive weight answers when rounding leaves u past the total. */
static size_t draw(const float *w, size_t n, double u)
{
    enum { B = 64 };
    double cum = 0.0;
    size_t j = 0;
    for (; j + B <= n; j += B) {
        float acc[8] = {0};
        for (size_t b = 0; b < B; b += 8)
            for (int k = 0; k < 8; k++)
                acc[k] += w[j + b + (size_t)k];
        double bs = (double)((acc[0] + acc[4]) + (acc[1] + acc[5])) +
                    (double)((acc[2] + acc[6]) + (acc[3] + acc[7]));
        if (u < cum + bs)
            break;
        cum += bs;
    }
    for (; j < n; j++) {
        cum += w[j];
        if (u < cum && w[j] > 0.0f)
            return j;
    }
    for (j = n; j-- > 0;)
        if (w[j] > 0.0f)
            return j;
    return 0;
}

int rwkv_sampler_sample(rwkv_sampler *s, const float *logits, uint32_t *token, rwkv_error *err)
{
    size_t keep;
    double wsum;
    if (prepare(s, logits, &keep, &wsum, err) != 0)
        return -1;
    if (keep == 1 && !s->all) {
        *token = s->idx[0];
        return 0;
    }
    size_t j = draw(s->w, keep, rwkv_rng_uniform(&s->rng) * wsum);
    *token = s->all ? (uint32_t)j : s->idx[j];
    return 0;
}

int rwkv_sampler_probs(rwkv_sampler *s, const float *logits, double *probs, rwkv_error *err)
{
    size_t keep;
    double wsum;
    if (prepare(s, logits, &keep, &wsum, err) != 0)
        return -1;
    if (s->all) {
        for (size_t i = 0; i < s->vocab; i++)
            probs[i] = s->w[i] / wsum;
        return 0;
    }
    for (size_t i = 0; i < s->vocab; i++)
        probs[i] = 0.0;
    for (size_t j = 0; j < keep; j++)
        probs[s->idx[j]] = s->w[j] / wsum;
    return 0;
}
