/* testutil.h — the whole test harness: a handful of macros.
 *
 * A test program defines `static void test_x(void)` functions, calls
 * test_init(argc, argv) and RUN(test_x) for each from main(), then
 * `return test_summary();`.  Each RUN
 * prints "PASS: name" or "FAIL: name: file:line: why"; tests/run-tests.sh
 * counts those lines.  CHECK stops the current test at the first failure.
 */
#ifndef RWKV_TESTUTIL_H
#define RWKV_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int test_current_failed;
extern const char *test_current_name;

void test_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Call first in main(): the program's arguments that do not start with '-'
 * are case filters; when any is given, only the cases whose name contains
 * one of them run (`make check T=test_x ARGS=name`). */
void test_init(int argc, char **argv);
void test_run(const char *name, void (*fn)(void));
/* Whether case `name` passes the filters of test_init (for harnesses that
 * run cases their own way). */
int test_selected(const char *name);
void test_skip(const char *name, const char *why);
int test_summary(void);

#define RUN(fn) test_run(#fn, fn)

/* CHECK(cond): fail and leave the current test when cond is false.
 * CHECKF(cond, fmt, ...): the same with a printf-style explanation. */
#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            test_fail_at(__FILE__, __LINE__, "check failed: %s", #cond);              \
            return;                                                                   \
        }                                                                             \
    } while (0)
#define CHECKF(cond, fmt, ...)                                                        \
    do {                                                                              \
        if (!(cond)) {                                                                \
            test_fail_at(__FILE__, __LINE__, "check failed: %s: " fmt, #cond,         \
                         __VA_ARGS__);                                                \
            return;                                                                   \
        }                                                                             \
    } while (0)

/* Fixtures directory: $RWKVD_FIXTURES or ../shared/fixtures.  Never NULL. */
const char *fixtures_dir(void);

/* Reads a whole fixture file (path relative to fixtures_dir()).  A missing or
 * unreadable fixture is a test FAILURE (never a skip): the caller gets NULL
 * and the current test is marked failed with the path in the message. */
void *fixture_read(const char *rel, size_t *len);

/* Reads any file; NULL (and no test failure) when it cannot. */
void *file_read_all(const char *path, size_t *len);

/* Absolute path of a fixture in a static buffer (valid until the next call). */
const char *fixture_path(const char *rel);

/* max |a-b| over n floats, with the index of the worst element in *where. */
double max_abs_diff(const float *a, const float *b, size_t n, size_t *where);
/* Population standard deviation of n floats. */
double stddev_f32(const float *a, size_t n);
double max_abs_f32(const float *a, size_t n);

/* Deterministic PRNG for tests (splitmix64). */
uint64_t test_rand(uint64_t *s);

#endif
