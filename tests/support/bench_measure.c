/* bench_measure.c — see bench_measure.h. */
#include "tests/support/bench_measure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/engine/simd.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct {
    const float *buf;
    size_t n_per;
    double sums[64];
} bw_job;

/* A lane sum, so the compiler cannot drop the reads. */
RWKV_CLONES
static float sum_floats(const float *p, size_t n)
{
    float s;
#define ELEM(i) p[i]
    RWKV_LANE_SUM(s, n, ELEM);
#undef ELEM
    return s;
}

static void bw_task(void *arg, int task, int thread)
{
    (void)thread;
    bw_job *j = arg;
    j->sums[task] = sum_floats(j->buf + (size_t)task * j->n_per, j->n_per);
}

double bench_read_gbs(rwkv_pool *pool)
{
    size_t bytes = (size_t)1 << 30;
    int nt = rwkv_pool_size(pool);
    float *buf = malloc(bytes);
    if (!buf || nt > 64) {
        free(buf);
        return 0;
    }
    memset(buf, 1, bytes);
    bw_job j = {buf, bytes / sizeof(float) / (size_t)nt, {0}};
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = bench_now();
        rwkv_pool_run(pool, nt, bw_task, &j);
        double gbs = (double)bytes / (bench_now() - t0) / 1e9;
        best = gbs > best ? gbs : best;
    }
    free(buf);
    return best;
}

double bench_peak_rss_mb(void)
{
    long hwm_kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &hwm_kb) == 1)
            break;
    if (f)
        fclose(f);
    return hwm_kb / 1024.0;
}
