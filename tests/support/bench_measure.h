/* bench_measure.h — what every benchmark program measures the same way:
 * a monotonic clock, the median of repetitions, the machine's memory read
 * rate, the process's peak RSS (make bench; not used by tests). */
#ifndef RWKV_TEST_BENCH_MEASURE_H
#define RWKV_TEST_BENCH_MEASURE_H

#include "core/threadpool.h"

/* Seconds on a monotonic clock. */
double bench_now(void);

/* The median of v[0..n) (sorts v). */
double bench_median(double *v, int n);

/* Memory read GB/s over 1 GiB read by all the pool's threads, best of 5:
 * the ceiling of decode, which reads every weight once per token. */
double bench_read_gbs(rwkv_pool *pool);

/* VmHWM of /proc/self/status in MB; 0 where it cannot be read. */
double bench_peak_rss_mb(void);

#endif
