/* quantile_sketch.c — see core/quantile_sketch.h.  Fenwick tree indices are
 * 1-based in the textbook form; here tree[i] holds the sum of bins
 * (i - lowbit(i+1), i], with i 0-based. */
#include "core/quantile_sketch.h"

#include <math.h>
#include <string.h>

#include "core/le.h"

void rwkv_qsketch_init(rwkv_qsketch *q)
{
    memset(q, 0, sizeof *q);
}

size_t rwkv_qsketch_bin(double x)
{
    if (!(x > 0)) /* NaN, 0 and negatives */
        return 0;
    if (x >= RWKV_QSKETCH_MAX)
        return RWKV_QSKETCH_BINS - 1;
    size_t b = (size_t)(x * RWKV_QSKETCH_PER_NAT);
    return b < RWKV_QSKETCH_BINS ? b : RWKV_QSKETCH_BINS - 1;
}

static void tree_add(rwkv_qsketch *q, size_t b, uint64_t v)
{
    for (size_t i = b + 1; i <= RWKV_QSKETCH_BINS; i += i & (~i + 1))
        q->tree[i - 1] += v;
}

/* Values in bins [0, b). */
static uint64_t below(const rwkv_qsketch *q, size_t b)
{
    uint64_t s = 0;
    for (size_t i = b; i > 0; i -= i & (~i + 1))
        s += q->tree[i - 1];
    return s;
}

void rwkv_qsketch_add(rwkv_qsketch *q, double x)
{
    tree_add(q, rwkv_qsketch_bin(x), 1);
    q->n++;
}

uint64_t rwkv_qsketch_count(const rwkv_qsketch *q, size_t b)
{
    return below(q, b + 1) - below(q, b);
}

double rwkv_qsketch_rank(const rwkv_qsketch *q, double x)
{
    if (q->n == 0)
        return NAN;
    size_t b = rwkv_qsketch_bin(x);
    uint64_t lo = below(q, b), same = below(q, b + 1) - lo;
    return ((double)lo + 0.5 * (double)same) / (double)q->n;
}

void rwkv_qsketch_store(const rwkv_qsketch *q, uint8_t *out)
{
    rwkv_put64(out, q->n);
    for (size_t b = 0; b < RWKV_QSKETCH_BINS; b++)
        rwkv_put64(out + 8 + 8 * b, rwkv_qsketch_count(q, b));
}

int rwkv_qsketch_load(rwkv_qsketch *q, const uint8_t *in, size_t len, const char *label,
                      rwkv_error *err)
{
    if (len != RWKV_QSKETCH_BYTES)
        return rwkv_fail(err, "%s: quantile sketch of %zu bytes, expected %d", label, len,
                         RWKV_QSKETCH_BYTES);
    uint64_t n = rwkv_get64(in), sum = 0;
    if (n > RWKV_QSKETCH_N_MAX)
        return rwkv_fail(err, "%s: offset 0: quantile sketch total %llu above %llu", label,
                         (unsigned long long)n, (unsigned long long)RWKV_QSKETCH_N_MAX);
    for (size_t b = 0; b < RWKV_QSKETCH_BINS; b++) {
        uint64_t c = rwkv_get64(in + 8 + 8 * b);
        if (c > n - sum)
            return rwkv_fail(err, "%s: offset %zu: quantile sketch bin %zu holds %llu values, "
                             "more than the total %llu leaves", label, 8 + 8 * b, b,
                             (unsigned long long)c, (unsigned long long)n);
        sum += c;
    }
    if (sum != n)
        return rwkv_fail(err, "%s: offset 0: quantile sketch total %llu, but its bins hold %llu",
                         label, (unsigned long long)n, (unsigned long long)sum);
    rwkv_qsketch t;
    rwkv_qsketch_init(&t);
    for (size_t b = 0; b < RWKV_QSKETCH_BINS; b++) {
        uint64_t c = rwkv_get64(in + 8 + 8 * b);
        if (c)
            tree_add(&t, b, c);
    }
    t.n = n;
    *q = t;
    return 0;
}
