/* testutil.c — implementation of the tiny harness in tests/testutil.h. */
#include "tests/testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

int test_current_failed;
const char *test_current_name = "";
static int n_pass, n_fail;

void test_fail_at(const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!test_current_failed)
        printf("FAIL: %s: %s:%d: %s\n", test_current_name, file, line, msg);
    else
        printf("      %s:%d: %s\n", file, line, msg);
    fflush(stdout);
    test_current_failed = 1;
}

static char **case_filters;
static int n_case_filters;

void test_init(int argc, char **argv)
{
    case_filters = calloc((size_t)(argc > 0 ? argc : 1), sizeof *case_filters);
    n_case_filters = 0;
    for (int i = 1; i < argc && case_filters; i++)
        if (argv[i][0] != '-')
            case_filters[n_case_filters++] = argv[i];
}

int test_selected(const char *name)
{
    if (n_case_filters == 0)
        return 1;
    for (int i = 0; i < n_case_filters; i++)
        if (strstr(name, case_filters[i]))
            return 1;
    return 0;
}

void test_run(const char *name, void (*fn)(void))
{
    if (!test_selected(name))
        return;
    test_current_name = name;
    test_current_failed = 0;
    fn();
    if (test_current_failed) {
        n_fail++;
    } else {
        n_pass++;
        printf("PASS: %s\n", name);
    }
    fflush(stdout);
}

void test_skip(const char *name, const char *why)
{
    printf("SKIP: %s: %s\n", name, why);
    fflush(stdout);
}

int test_summary(void)
{
    free(case_filters);
    case_filters = NULL;
    n_case_filters = 0;
    printf("# %d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}

const char *fixtures_dir(void)
{
    const char *d = getenv("RWKVD_FIXTURES");
    return (d && *d) ? d : "../shared/fixtures";
}

const char *fixture_path(const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", fixtures_dir(), rel);
    return buf;
}

void *file_read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        unsigned char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

void *fixture_read(const char *rel, size_t *len)
{
    const char *path = fixture_path(rel);
    void *p = file_read_all(path, len);
    if (!p)
        test_fail_at(__FILE__, __LINE__,
                     "fixture missing or unreadable: %s (set RWKVD_FIXTURES to the fixtures "
                     "directory)",
                     path);
    return p;
}

double max_abs_diff(const float *a, const float *b, size_t n, size_t *where)
{
    double worst = 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > worst || isnan(d)) {
            worst = isnan(d) ? INFINITY : d;
            w = i;
        }
    }
    if (where)
        *where = w;
    return worst;
}

double stddev_f32(const float *a, size_t n)
{
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i];
    double mean = s / (double)n;
    for (size_t i = 0; i < n; i++)
        s2 += (a[i] - mean) * (a[i] - mean);
    return sqrt(s2 / (double)n);
}

double max_abs_f32(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)a[i]) > m)
            m = fabs((double)a[i]);
    return m;
}

uint64_t test_rand(uint64_t *s)
{
    return rwkv_splitmix64(s);
}
