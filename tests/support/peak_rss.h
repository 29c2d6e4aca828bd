/* peak_rss.h — the process's peak resident set so far, for benchmarks that
 * print what a configuration costs in memory. */
#ifndef RWKV_TEST_PEAK_RSS_H
#define RWKV_TEST_PEAK_RSS_H

/* VmHWM of /proc/self/status in MB; 0 where it cannot be read. */
double peak_rss_mb(void);

#endif
