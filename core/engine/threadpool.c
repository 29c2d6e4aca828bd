/* threadpool.c — see threadpool.h.
 *
 * One 64-bit ticket word holds (generation << 32 | next task index).  The
 * caller publishes a region by storing a new generation with index 0; anyone
 * takes a task with a compare-and-swap that also checks the generation, so a
 * worker that wakes late can never run a task of a region that is over.  The
 * region's parameters live in two alternating slots: a slot is rewritten only
 * two generations later, after every task of its region has completed. */
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* ~20 us of polling before sleeping: long enough to bridge consecutive
 * regions of one forward pass, short enough not to burn an idle core. */
#define SPIN_ITERS 20000

typedef struct {
    _Atomic(rwkv_task_fn) fn;
    _Atomic(void *) arg;
    atomic_uint n_tasks;
} region;

struct rwkv_pool {
    int n; /* threads including the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint_least64_t ticket;
    atomic_uint done;   /* tasks of the current region completed */
    atomic_int sleepers;
    atomic_int stop;
    region slot[2];
    uint32_t gen;       /* caller side: the last published generation */
};

typedef struct {
    rwkv_pool *pool;
    int index;
} worker_arg;

int rwkv_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static uint32_t gen_of(uint64_t t)
{
    return (uint32_t)(t >> 32);
}

/* Takes and runs tasks of generation g until none is left. */
static void drain(rwkv_pool *p, uint32_t g, int thread)
{
    region *r = &p->slot[g & 1];
    rwkv_task_fn fn = atomic_load_explicit(&r->fn, memory_order_relaxed);
    void *arg = atomic_load_explicit(&r->arg, memory_order_relaxed);
    uint32_t n = atomic_load_explicit(&r->n_tasks, memory_order_relaxed);
    uint64_t cur = atomic_load_explicit(&p->ticket, memory_order_acquire);
    for (;;) {
        if (gen_of(cur) != g || (uint32_t)cur >= n)
            return;
        if (atomic_compare_exchange_weak_explicit(&p->ticket, &cur, cur + 1, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            fn(arg, (int)(uint32_t)cur, thread);
            atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
            cur = atomic_load_explicit(&p->ticket, memory_order_acquire);
        }
    }
}

static void *worker_main(void *varg)
{
    worker_arg *wa = varg;
    rwkv_pool *p = wa->pool;
    int index = wa->index;
    free(wa);
    uint32_t seen = 0; /* generation 0 is "nothing published yet" */
    for (;;) {
        uint64_t t;
        int spins = 0;
        while (gen_of(t = atomic_load_explicit(&p->ticket, memory_order_acquire)) == seen &&
               spins < SPIN_ITERS && !atomic_load_explicit(&p->stop, memory_order_relaxed)) {
            cpu_relax();
            spins++;
        }
        if (gen_of(t) == seen) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (gen_of(t = atomic_load(&p->ticket)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = gen_of(t);
        drain(p, seen, index);
    }
}

rwkv_pool *rwkv_pool_new(int n_threads)
{
    if (n_threads <= 0)
        n_threads = rwkv_cpu_count();
    rwkv_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            rwkv_pool_free(p);
            return NULL;
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (wa) {
                wa->pool = p;
                wa->index = i;
            }
            if (!wa || pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
                free(wa);
                rwkv_pool_free(p); /* joins the p->n - 1 workers that exist */
                return NULL;
            }
            p->n = i + 1;
        }
    }
    return p;
}

void rwkv_pool_free(rwkv_pool *p)
{
    if (!p)
        return;
    if (p->threads) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->stop, 1);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->n; i++)
            pthread_join(p->threads[i - 1], NULL);
        free(p->threads);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p);
}

int rwkv_pool_size(const rwkv_pool *p)
{
    return p ? p->n : 1;
}

void rwkv_pool_run(rwkv_pool *p, int n_tasks, rwkv_task_fn fn, void *arg)
{
    if (n_tasks <= 0)
        return;
    if (!p || p->n == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++)
            fn(arg, t, 0);
        return;
    }
    uint32_t g = ++p->gen;
    if (g == 0) /* 0 means "nothing yet" to a new worker; skip it on wrap */
        g = ++p->gen;
    region *r = &p->slot[g & 1];
    atomic_store_explicit(&r->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&r->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&r->n_tasks, (unsigned)n_tasks, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->ticket, (uint64_t)g << 32, memory_order_release);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    drain(p, g, 0);
    /* only tasks a worker has started can still be running */
    for (int spins = 0;
         atomic_load_explicit(&p->done, memory_order_acquire) != (unsigned)n_tasks; spins++) {
        if (spins < SPIN_ITERS)
            cpu_relax();
        else
            sched_yield();
    }
}
