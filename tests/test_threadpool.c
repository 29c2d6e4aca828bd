/* test_threadpool.c — every task of every region runs exactly once, results
 * written by workers are visible to the caller afterwards, and the pool
 * survives many short regions, uneven tasks and being freed while idle. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/threadpool.h"
#include "tests/testutil.h"

typedef struct {
    atomic_int *hits;
    int *owner;
    int slow_every;
} job;

static void count_task(void *arg, int task, int thread)
{
    job *j = arg;
    atomic_fetch_add(&j->hits[task], 1);
    j->owner[task] = thread;
    if (j->slow_every && task % j->slow_every == 0)
        usleep(50);
}

static void test_every_task_once(void)
{
    for (int threads = 1; threads <= 4; threads++) {
        rwkv_pool *p = rwkv_pool_new(threads);
        CHECK(p != NULL);
        CHECK(rwkv_pool_size(p) == threads);
        enum { MAXT = 3000 };
        atomic_int *hits = malloc(sizeof *hits * MAXT);
        int *owner = malloc(sizeof *owner * MAXT);
        uint64_t seed = 7;
        int bad = 0;
        for (int region = 0; region < 2000 && !bad; region++) {
            int n = 1 + (int)(test_rand(&seed) % (region % 50 == 0 ? MAXT : 40));
            for (int i = 0; i < n; i++)
                atomic_init(&hits[i], 0);
            job j = {hits, owner, region % 7 == 0 ? 13 : 0};
            rwkv_pool_run(p, n, count_task, &j);
            for (int i = 0; i < n; i++)
                if (atomic_load(&hits[i]) != 1 || owner[i] < 0 || owner[i] >= threads)
                    bad = 1;
        }
        free(hits);
        free(owner);
        rwkv_pool_free(p);
        CHECKF(!bad, "threads=%d: a task ran twice, never, or on an unknown thread", threads);
    }
}

static void test_idle_then_reuse(void)
{
    rwkv_pool *p = rwkv_pool_new(2);
    CHECK(p != NULL);
    atomic_int hits[8];
    int owner[8];
    job j = {hits, owner, 0};
    for (int round = 0; round < 3; round++) {
        usleep(20000); /* long enough for the workers to go to sleep */
        for (int i = 0; i < 8; i++)
            atomic_init(&hits[i], 0);
        rwkv_pool_run(p, 8, count_task, &j);
        for (int i = 0; i < 8; i++)
            CHECK(atomic_load(&hits[i]) == 1);
    }
    rwkv_pool_free(p);
    rwkv_pool_free(NULL);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_every_task_once);
    RUN(test_idle_then_reuse);
    return test_summary();
}
