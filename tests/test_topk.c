/* test_topk.c — the engine's top-k selection (core/topk.h) against
 * a brute-force reference: every id ranked by qsort with the same total
 * order (higher logit, then lower id, NaN last), on random rows, rows full of
 * ties, rising and falling rows (the old sorted-list worst case), rows with
 * NaN and infinities, and k = 1, 64, V and above V.  Log-probabilities are
 * checked against logit - logsumexp computed in double here.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/topk.h"
#include "tests/testutil.h"

static const float *cmp_row; /* qsort has no context argument */

static int rank_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    float u = cmp_row[x], v = cmp_row[y];
    int un = isnan(u), vn = isnan(v);
    if (un != vn)
        return un ? 1 : -1;
    if (!un && u != v)
        return u > v ? -1 : 1;
    return x < y ? -1 : (x > y);
}

static double logsumexp_ref(const float *row, uint32_t V)
{
    double m = -INFINITY, s = 0;
    for (uint32_t i = 0; i < V; i++)
        if (row[i] > m)
            m = row[i];
    for (uint32_t i = 0; i < V; i++)
        s += exp((double)row[i] - m);
    return m + log(s);
}

/* Checks rwkv_topk_rows on n rows against the reference (the ids, and the
 * log-probabilities when check_lp); 0 when equal. */
static int compare_lp(const float *rows, size_t n, uint32_t V, uint32_t k, int check_lp, char *why,
                      size_t why_len)
{
    uint32_t kk = k < V ? k : V;
    uint32_t *ids = malloc(n * kk * sizeof *ids), *all = malloc(V * sizeof *all);
    float *lp = malloc(n * kk * sizeof *lp);
    int bad = 0;
    rwkv_topk_rows(rows, n, V, k, ids, lp);
    for (size_t r = 0; r < n && !bad; r++) {
        const float *row = rows + r * V;
        for (uint32_t i = 0; i < V; i++)
            all[i] = i;
        cmp_row = row;
        qsort(all, V, sizeof *all, rank_cmp);
        double lse = logsumexp_ref(row, V);
        for (uint32_t j = 0; j < kk && !bad; j++) {
            uint32_t got = ids[r * kk + j];
            double want_lp = (double)row[all[j]] - lse;
            float g = lp[r * kk + j];
            if (got != all[j]) {
                snprintf(why, why_len, "row %zu rank %u: id %u, expected %u", r, j, got, all[j]);
                bad = 1;
            } else if (check_lp && !(fabs(g - want_lp) <= 1e-5 * (1 + fabs(want_lp)))) {
                snprintf(why, why_len, "row %zu rank %u: logprob %g, expected %g", r, j, g, want_lp);
                bad = 1;
            }
        }
    }
    free(ids);
    free(all);
    free(lp);
    return bad;
}

static int compare(const float *rows, size_t n, uint32_t V, uint32_t k, char *why, size_t why_len)
{
    return compare_lp(rows, n, V, k, 1, why, why_len);
}

static uint64_t rng = 88172645463325252ull;
static float uniform(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0));
}

#define COMPARE(rows, n, V, k)                                                                \
    do {                                                                                      \
        char why_[160];                                                                       \
        CHECKF(compare(rows, n, V, k, why_, sizeof why_) == 0, "V %u k %u: %s", (unsigned)(V), \
               (unsigned)(k), why_);                                                          \
    } while (0)

static void test_random_rows(void)
{
    enum { V = 4096, N = 6 };
    static float rows[N * V];
    for (size_t i = 0; i < N * V; i++)
        rows[i] = 20 * uniform() - 10;
    static const uint32_t ks[] = {1, 2, 5, 63, 64};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        COMPARE(rows, N, V, ks[i]);
}

static void test_ties(void)
{
    enum { V = 1000 };
    static float rows[3 * V];
    for (uint32_t i = 0; i < V; i++) {
        rows[i] = 1.0f;                             /* all equal: ids 0..k-1 */
        rows[V + i] = (float)(i % 7);               /* seven values, many ties each */
        rows[2 * V + i] = i % 2 ? -0.0f : 0.0f;     /* -0 == +0: by id */
    }
    COMPARE(rows, 3, V, 10);
    COMPARE(rows, 3, V, 64);
}

static void test_monotone_rows(void)
{
    enum { V = 65536 };
    float *rows = malloc(2 * (size_t)V * sizeof *rows);
    for (uint32_t i = 0; i < V; i++) {
        rows[i] = (float)i * 1e-3f;             /* rising: every id enters the top */
        rows[V + i] = -(float)i * 1e-3f;        /* falling */
    }
    char why[160];
    int bad = compare(rows, 2, V, 64, why, sizeof why);
    free(rows);
    CHECKF(!bad, "%s", why);
}

/* Logits a broken model file could produce: the ranking stays a total
 * order (what the log-probabilities are then is not this test's business). */
static void test_nan_and_infinities(void)
{
    enum { V = 300 };
    static float rows[2 * V];
    for (uint32_t i = 0; i < V; i++)
        rows[i] = rows[V + i] = uniform();
    rows[0] = NAN; /* a NaN first must not block the ids after it */
    rows[1] = NAN;
    rows[17] = INFINITY;
    rows[18] = -INFINITY;
    rows[V + 5] = -INFINITY;
    rows[V + 6] = NAN;
    char why[160];
    CHECKF(compare_lp(rows, 2, V, 8, 0, why, sizeof why) == 0, "%s", why);
    CHECKF(compare_lp(rows, 2, V, V, 0, why, sizeof why) == 0, "k = V: %s", why);
    uint32_t ids[8];
    float lp[8];
    rwkv_topk_rows(rows, 1, V, 8, ids, lp);
    CHECK(ids[0] == 17 && ids[1] != 0 && ids[1] != 1);
}

static void test_k_at_and_above_vocab(void)
{
    enum { V = 50 };
    static float rows[V];
    for (uint32_t i = 0; i < V; i++)
        rows[i] = uniform();
    COMPARE(rows, 1, V, V);
    COMPARE(rows, 1, V, V + 30); /* clamped to V */
    float one = 3.0f;
    COMPARE(&one, 1, 1, 5);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_random_rows);
    RUN(test_ties);
    RUN(test_monotone_rows);
    RUN(test_nan_and_infinities);
    RUN(test_k_at_and_above_vocab);
    return test_summary();
}
