/* test_sampler.c — core/sampler: the kept set against a brute-force
 * reference (full sort in double), temperature scaling, determinism per seed,
 * sampling frequencies against the distribution with a tolerance derived from
 * the sample size, and refusal of bad rows and parameters. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/sampler.h"
#include "tests/testutil.h"

/* ---- reference: full sort, double precision ---- */

static const float *g_ref_logits;

static int ref_cmp(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    float la = g_ref_logits[a], lb = g_ref_logits[b];
    if (la != lb)
        return la > lb ? -1 : 1;
    return a < b ? -1 : (a > b);
}

/* The order (ids, descending), the softmax mass of each in order, and the
 * number of finite logits. */
static uint32_t *ref_order(const float *l, size_t V, double **mass_out, size_t *n_finite)
{
    uint32_t *ord = malloc(V * sizeof *ord);
    double *mass = malloc(V * sizeof *mass);
    for (size_t i = 0; i < V; i++)
        ord[i] = (uint32_t)i;
    g_ref_logits = l;
    qsort(ord, V, sizeof *ord, ref_cmp);
    double m = l[ord[0]], Z = 0;
    size_t nf = 0;
    for (size_t i = 0; i < V; i++)
        if (isfinite(l[i])) {
            Z += exp((double)l[i] - m);
            nf++;
        }
    for (size_t j = 0; j < V; j++)
        mass[j] = isfinite(l[ord[j]]) ? exp((double)l[ord[j]] - m) / Z : 0.0;
    *mass_out = mass;
    *n_finite = nf;
    return ord;
}

static void fill_logits(float *l, size_t V, uint64_t *rs, int shape)
{
    for (size_t i = 0; i < V; i++) {
        double u = (double)(test_rand(rs) >> 11) * 0x1.0p-53;
        double g = sqrt(-2.0 * log(u + 1e-300)) *
                   cos(2 * M_PI * ((double)(test_rand(rs) >> 11) * 0x1.0p-53));
        switch (shape) {
        case 0: l[i] = (float)g; break;                         /* normal */
        case 1: l[i] = (float)(10.0 * g); break;                /* peaked */
        case 2: l[i] = (float)(0.01 * g); break;                /* nearly flat */
        case 3: l[i] = (float)(-1.2 * log((double)i + 1.0)); break; /* zipf */
        default: l[i] = (float)(int)(3 * u); break;             /* many ties */
        }
    }
}

/* Checks the distribution `probs` against the semantics of sampler.h for
 * the row l and parameters p. */
static int check_probs(const float *l, size_t V, const rwkv_sampler_params *p, const double *probs)
{
    double *mass;
    size_t nf;
    uint32_t *ord = ref_order(l, V, &mass, &nf);
    int ok = 0;
    /* kept set = a prefix of the order of length n */
    size_t n = 0;
    while (n < V && probs[ord[n]] > 0)
        n++;
    for (size_t j = n; j < V; j++)
        if (probs[ord[j]] != 0.0) {
            test_fail_at(__FILE__, __LINE__, "kept set is not a prefix: id %u (rank %zu) kept, "
                         "rank %zu not", ord[j], j, n);
            goto out;
        }
    size_t want = nf;
    if (p->top_k > 0 && (size_t)p->top_k < want)
        want = (size_t)p->top_k;
    if (p->temperature == 0.0 || p->top_k == 1)
        want = 1;
    size_t expect = want;
    if (want > 1 && p->top_p < 1.0) {
        double cum = 0;
        for (size_t j = 0; j < want; j++) {
            cum += mass[j];
            if (cum >= p->top_p) {
                expect = j + 1;
                break;
            }
        }
    }
    if (n != expect) {
        /* Only acceptable where the reference mass is within rounding of p. */
        double cum_n = 0;
        for (size_t j = 0; j < n && j < V; j++)
            cum_n += mass[j];
        double cum_prev = cum_n - (n ? mass[n - 1] : 0);
        int borderline = fabs(cum_n - p->top_p) < 1e-5 || fabs(cum_prev - p->top_p) < 1e-5;
        if (!borderline || (n > expect ? n - expect : expect - n) > 1) {
            test_fail_at(__FILE__, __LINE__, "kept %zu tokens, reference keeps %zu (T=%g k=%d p=%g)",
                         n, expect, p->temperature, p->top_k, p->top_p);
            goto out;
        }
    }
    /* inside the set: proportional to exp(l / T) */
    double invT = p->temperature > 0 ? 1.0 / p->temperature : 0, wsum = 0, psum = 0;
    for (size_t j = 0; j < n; j++)
        wsum += n == 1 ? 1.0 : exp(((double)l[ord[j]] - l[ord[0]]) * invT);
    for (size_t j = 0; j < n; j++) {
        double want_p = (n == 1 ? 1.0 : exp(((double)l[ord[j]] - l[ord[0]]) * invT)) / wsum;
        psum += probs[ord[j]];
        /* The sampler works in float: the exponent argument a = (l-max)/T
         * carries a relative rounding of ~6e-8, i.e. an absolute ~6e-8*a,
         * and rwkv_expf adds ~2 ulp; allow 1e-6 * (1 + a) relative. */
        double a = n == 1 ? 0 : fabs(((double)l[ord[j]] - l[ord[0]]) * invT);
        if (fabs(probs[ord[j]] - want_p) > 1e-6 * (1 + a) * want_p + 1e-30) {
            test_fail_at(__FILE__, __LINE__, "p(id %u) = %.12g, expected %.12g", ord[j],
                         probs[ord[j]], want_p);
            goto out;
        }
    }
    if (fabs(psum - 1.0) > 1e-6) {
        test_fail_at(__FILE__, __LINE__, "probabilities sum to %.15g", psum);
        goto out;
    }
    ok = 1;
out:
    free(ord);
    free(mass);
    return ok;
}

static void test_kept_set_matches_reference(void)
{
    static const size_t vocabs[] = {1, 2, 7, 1000, 65536};
    static const double temps[] = {0.0, 0.3, 1.0, 2.5};
    static const int ks[] = {0, 1, 2, 40, 5000};
    static const double ps[] = {1.0, 0.999, 0.9, 0.5, 0.05};
    uint64_t rs = 42;
    for (size_t vi = 0; vi < sizeof vocabs / sizeof *vocabs; vi++) {
        size_t V = vocabs[vi];
        float *l = malloc(V * sizeof *l);
        double *probs = malloc(V * sizeof *probs);
        for (int shape = 0; shape < 5; shape++) {
            fill_logits(l, V, &rs, shape);
            for (size_t a = 0; a < 4; a++)
                for (size_t b = 0; b < 5; b++)
                    for (size_t c = 0; c < 5; c++) {
                        if (V == 65536 && (a % 2 || b % 2))
                            continue; /* keep the big vocabulary's share of time small */
                        rwkv_sampler_params p = {temps[a], ks[b], ps[c], 1};
                        rwkv_error err;
                        rwkv_sampler *s = rwkv_sampler_new(V, &p, &err);
                        CHECKF(s != NULL, "%s", err.msg);
                        int rc = rwkv_sampler_probs(s, l, probs, &err);
                        rwkv_sampler_free(s);
                        CHECKF(rc == 0, "%s", err.msg);
                        if (!check_probs(l, V, &p, probs)) {
                            test_fail_at(__FILE__, __LINE__, "V=%zu shape=%d T=%g k=%d p=%g", V,
                                         shape, p.temperature, p.top_k, p.top_p);
                            free(l);
                            free(probs);
                            return;
                        }
                    }
        }
        free(l);
        free(probs);
    }
}

static void test_top_k_1_and_temperature_0_are_argmax(void)
{
    uint64_t rs = 7;
    const size_t V = 4096;
    float *l = malloc(V * sizeof *l);
    rwkv_sampler_params greedy = {0.0, 0, 0.9, 3}, k1 = {5.0, 1, 1.0, 3};
    rwkv_error err;
    rwkv_sampler *a = rwkv_sampler_new(V, &greedy, &err), *b = rwkv_sampler_new(V, &k1, &err);
    CHECK(a && b);
    for (int it = 0; it < 200; it++) {
        fill_logits(l, V, &rs, it % 5);
        uint32_t best = 0;
        for (size_t i = 1; i < V; i++)
            if (l[i] > l[best])
                best = (uint32_t)i;
        uint32_t ta = 99999, tb = 99999;
        CHECK(rwkv_sampler_sample(a, l, &ta, &err) == 0);
        CHECK(rwkv_sampler_sample(b, l, &tb, &err) == 0);
        CHECKF(ta == best && tb == best,
               "argmax %u, T=0 gave %u, k=1 gave %u", best, ta, tb);
    }
    /* ties go to the lowest id */
    for (size_t i = 0; i < V; i++)
        l[i] = (i == 17 || i == 300 || i == 4000) ? 2.0f : 1.0f;
    uint32_t t = 0;
    CHECK(rwkv_sampler_sample(a, l, &t, &err) == 0 && t == 17);
    rwkv_sampler_free(a);
    rwkv_sampler_free(b);
    free(l);
}

static void test_temperature_scaling(void)
{
    const float l[4] = {0.0f, -1.0f, -2.0f, 1.5f};
    static const double temps[] = {0.25, 1.0, 3.0, 100.0};
    for (size_t a = 0; a < 4; a++) {
        rwkv_sampler_params p = {temps[a], 0, 1.0, 0};
        rwkv_error err;
        rwkv_sampler *s = rwkv_sampler_new(4, &p, &err);
        double probs[4], z = 0;
        CHECK(s && rwkv_sampler_probs(s, l, probs, &err) == 0);
        rwkv_sampler_free(s);
        for (int i = 0; i < 4; i++)
            z += exp(l[i] / temps[a]);
        for (int i = 0; i < 4; i++)
            CHECKF(fabs(probs[i] - exp(l[i] / temps[a]) / z) < 1e-6 * probs[i], "T=%g i=%d %g", temps[a], i,
                   probs[i]);
    }
    /* a higher temperature flattens: the top token's probability falls */
    double prev = 2;
    for (size_t a = 0; a < 4; a++) {
        rwkv_sampler_params p = {temps[a], 0, 1.0, 0};
        rwkv_sampler *s = rwkv_sampler_new(4, &p, NULL);
        double probs[4];
        CHECK(s && rwkv_sampler_probs(s, l, probs, NULL) == 0);
        rwkv_sampler_free(s);
        CHECK(probs[3] < prev);
        prev = probs[3];
    }
}

static void test_same_seed_same_tokens(void)
{
    const size_t V = 1000;
    float *l = malloc(V * sizeof *l);
    uint64_t rs = 9;
    fill_logits(l, V, &rs, 2);
    rwkv_sampler_params p = {1.0, 0, 0.95, 12345};
    rwkv_sampler *a = rwkv_sampler_new(V, &p, NULL), *b = rwkv_sampler_new(V, &p, NULL);
    p.seed = 12346;
    rwkv_sampler *c = rwkv_sampler_new(V, &p, NULL);
    CHECK(a && b && c);
    int differ = 0;
    uint32_t first[100];
    for (int i = 0; i < 100; i++) {
        uint32_t ta, tb, tc;
        CHECK(rwkv_sampler_sample(a, l, &ta, NULL) == 0);
        CHECK(rwkv_sampler_sample(b, l, &tb, NULL) == 0);
        CHECK(rwkv_sampler_sample(c, l, &tc, NULL) == 0);
        CHECK(ta == tb);
        first[i] = ta;
        differ += ta != tc;
    }
    CHECKF(differ > 50, "seeds 12345 and 12346 agreed on %d of 100 draws", 100 - differ);
    /* reseeding restarts the stream */
    rwkv_sampler_reseed(a, 12345);
    for (int i = 0; i < 100; i++) {
        uint32_t t;
        CHECK(rwkv_sampler_sample(a, l, &t, NULL) == 0 && t == first[i]);
    }
    rwkv_sampler_free(a);
    rwkv_sampler_free(b);
    rwkv_sampler_free(c);
    free(l);
}

/* Draws n tokens and checks each count against n*q within 5 standard
 * deviations of the binomial, sqrt(n q (1-q)); zero-probability tokens must
 * never appear. */
static void check_frequencies(const rwkv_sampler_params *p, const float *l, const double *q,
                              int V, int n)
{
    rwkv_error err;
    rwkv_sampler *s = rwkv_sampler_new((size_t)V, p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    long count[8] = {0};
    for (int i = 0; i < n; i++) {
        uint32_t t;
        if (rwkv_sampler_sample(s, l, &t, &err) != 0 || t >= (uint32_t)V) {
            rwkv_sampler_free(s);
            CHECKF(0, "draw %d failed: %s", i, err.msg);
        }
        count[t]++;
    }
    rwkv_sampler_free(s);
    for (int i = 0; i < V; i++) {
        double mean = n * q[i], sd = sqrt(n * q[i] * (1 - q[i]));
        if (q[i] == 0)
            CHECKF(count[i] == 0, "token %d has probability 0 but was drawn %ld times", i, count[i]);
        else
            CHECKF(fabs(count[i] - mean) <= 5 * sd, "token %d drawn %ld times, expected %.0f +- %.0f "
                   "(T=%g k=%d p=%g)", i, count[i], mean, 5 * sd, p->temperature, p->top_k, p->top_p);
    }
}

static void test_sampling_frequencies(void)
{
    const double base[5] = {0.5, 0.25, 0.125, 0.0625, 0.0625};
    float l[5];
    for (int i = 0; i < 5; i++)
        l[i] = (float)log(base[i]);
    const int n = 200000;

    rwkv_sampler_params p = {1.0, 0, 1.0, 1};
    check_frequencies(&p, l, base, 5, n);
    if (test_current_failed)
        return;
    /* T = 0.5: q ∝ base^2 */
    double q[5], z = 0;
    for (int i = 0; i < 5; i++)
        z += base[i] * base[i];
    for (int i = 0; i < 5; i++)
        q[i] = base[i] * base[i] / z;
    p = (rwkv_sampler_params){0.5, 0, 1.0, 2};
    check_frequencies(&p, l, q, 5, n);
    if (test_current_failed)
        return;
    /* top-k 2: the two largest, renormalised */
    const double k2[5] = {2.0 / 3, 1.0 / 3, 0, 0, 0};
    p = (rwkv_sampler_params){1.0, 2, 1.0, 3};
    check_frequencies(&p, l, k2, 5, n);
    if (test_current_failed)
        return;
    /* top-p 0.7: 0.5 < 0.7 <= 0.75, so the same two */
    p = (rwkv_sampler_params){1.0, 0, 0.7, 4};
    check_frequencies(&p, l, k2, 5, n);
    if (test_current_failed)
        return;
    /* top-p 0.76: two tokens weigh 0.75, a third is needed */
    const double p3[5] = {0.5 / 0.875, 0.25 / 0.875, 0.125 / 0.875, 0, 0};
    p = (rwkv_sampler_params){1.0, 0, 0.76, 5};
    check_frequencies(&p, l, p3, 5, n);
}

static void test_banned_tokens_never_drawn(void)
{
    const size_t V = 300;
    float l[300];
    for (size_t i = 0; i < V; i++)
        l[i] = (i % 3 == 0) ? -INFINITY : (float)(i % 7);
    rwkv_sampler_params p = {1.5, 0, 1.0, 77};
    rwkv_sampler *s = rwkv_sampler_new(V, &p, NULL);
    CHECK(s);
    for (int i = 0; i < 20000; i++) {
        uint32_t t;
        CHECK(rwkv_sampler_sample(s, l, &t, NULL) == 0);
        CHECKF(t % 3 != 0, "banned token %u drawn", t);
    }
    rwkv_sampler_free(s);
}

static void test_bad_rows_refused(void)
{
    float l[4] = {0, 1, 2, 3};
    rwkv_sampler_params p = {1.0, 0, 0.9, 0};
    rwkv_error err;
    rwkv_sampler *s = rwkv_sampler_new(4, &p, &err);
    CHECK(s);
    uint32_t t;
    double probs[4];
    l[2] = NAN;
    CHECK(rwkv_sampler_sample(s, l, &t, &err) == -1 && strstr(err.msg, "NaN"));
    CHECK(rwkv_sampler_probs(s, l, probs, &err) == -1);
    l[2] = INFINITY;
    CHECK(rwkv_sampler_sample(s, l, &t, &err) == -1 && strstr(err.msg, "+inf"));
    for (int i = 0; i < 4; i++)
        l[i] = -INFINITY;
    CHECK(rwkv_sampler_sample(s, l, &t, &err) == -1 && strstr(err.msg, "-inf"));
    rwkv_sampler_free(s);
    /* greedy refuses the same rows */
    p.temperature = 0;
    s = rwkv_sampler_new(4, &p, &err);
    CHECK(s);
    l[0] = NAN;
    CHECK(rwkv_sampler_sample(s, l, &t, &err) == -1);
    rwkv_sampler_free(s);
}

static void test_bad_params_refused(void)
{
    const rwkv_sampler_params bad[] = {
        {-0.1, 0, 1.0, 0}, {NAN, 0, 1.0, 0}, {INFINITY, 0, 1.0, 0}, {1.0, -1, 1.0, 0},
        {1.0, 0, 0.0, 0},  {1.0, 0, 1.01, 0}, {1.0, 0, NAN, 0},      {1.0, 0, -0.5, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rwkv_error err;
        err.msg[0] = 0;
        CHECKF(rwkv_sampler_new(10, &bad[i], &err) == NULL, "case %zu accepted", i);
        CHECK(err.msg[0] != 0 && strchr(err.msg, '\n') == NULL);
        CHECK(rwkv_sampler_params_check(&bad[i], NULL) == -1);
    }
    rwkv_sampler_params ok = rwkv_sampler_defaults();
    CHECK(rwkv_sampler_params_check(&ok, NULL) == 0);
    CHECK(rwkv_sampler_new(0, &ok, NULL) == NULL);
    rwkv_sampler_free(NULL);
}

static void test_rng_is_fixed(void)
{
    /* The generator is part of the reproducibility contract: a seed must give
     * the same stream forever.  splitmix64 from 0 starts with this value. */
    uint64_t x = 0;
    CHECK(rwkv_splitmix64(&x) == 0xE220A8397B1DCDAFull);
    rwkv_rng r;
    rwkv_rng_seed(&r, 1);
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        double u = rwkv_rng_uniform(&r);
        CHECK(u >= 0 && u < 1);
        sum += u;
    }
    /* mean of 1e5 uniforms: sd = sqrt(1/12/1e5) ~ 9.1e-4 */
    CHECKF(fabs(sum / 100000 - 0.5) < 5 * 9.2e-4, "mean %g", sum / 100000);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_kept_set_matches_reference);
    RUN(test_top_k_1_and_temperature_0_are_argmax);
    RUN(test_temperature_scaling);
    RUN(test_same_seed_same_tokens);
    RUN(test_sampling_frequencies);
    RUN(test_banned_tokens_never_drawn);
    RUN(test_bad_rows_refused);
    RUN(test_bad_params_refused);
    RUN(test_rng_is_fixed);
    return test_summary();
}
