/* topk.c — per-row top-k selection (contract in topk.h).
 *
 * A min-heap of the k best ids seen so far, rooted at the worst of them: a
 * logit that does not beat the root costs one comparison (the common case,
 * as most of a vocabulary is far below the top), one that does costs
 * O(log k).  So adversarial rows (logits rising with the id, which made
 * each new id enter a sorted list at its head) cost O(V log k), not O(V k).
 */
#include "core/topk.h"

#include <math.h>

#include "core/engine/vecops.h"

/* true when (av, ai) ranks above (bv, bi) */
static int above(float av, uint32_t ai, float bv, uint32_t bi)
{
    int an = isnan(av), bn = isnan(bv);
    if (an != bn)
        return bn;
    if (!an && av != bv)
        return av > bv;
    return ai < bi;
}

static void swap(uint32_t *h, uint32_t i, uint32_t j)
{
    uint32_t t = h[i];
    h[i] = h[j];
    h[j] = t;
}

/* Restores the heap below position i (the worst-ranked id at the root). */
static void sift_down(const float *row, uint32_t *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && above(row[h[worst]], h[worst], row[h[l]], h[l]))
            worst = l;
        if (r < n && above(row[h[worst]], h[worst], row[h[r]], h[r]))
            worst = r;
        if (worst == i)
            return;
        swap(h, i, worst);
        i = worst;
    }
}

static void sift_up(const float *row, uint32_t *h, uint32_t i)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!above(row[h[parent]], h[parent], row[h[i]], h[i]))
            return;
        swap(h, i, parent);
        i = parent;
    }
}

void rwkv_topk_rows(const float *logits, size_t n, uint32_t V, uint32_t k, uint32_t *ids,
                     float *logprobs)
{
    if (k > V)
        k = V;
    for (size_t r = 0; r < n; r++) {
        const float *row = logits + r * V;
        uint32_t *h = ids + r * k;
        float *lp = logprobs + r * k;
        uint32_t have = 0;
        for (uint32_t v = 0; v < V; v++) {
            if (have < k) {
                h[have] = v;
                sift_up(row, h, have++);
            } else if (above(row[v], v, row[h[0]], h[0])) {
                h[0] = v;
                sift_down(row, h, k, 0);
            }
        }
        /* heap sort in place: the worst goes to the end each round, which
         * leaves the ids best first */
        for (uint32_t m = k; m > 1; m--) {
            swap(h, 0, m - 1);
            sift_down(row, h, m - 1, 0);
        }
        double lse = rwkv_logsumexp(row, (int)V);
        for (uint32_t j = 0; j < k; j++)
            lp[j] = (float)((double)row[h[j]] - lse);
    }
}
