/* threadpool.h — a fixed set of worker threads that run "parallel for"
 * regions for the engine.
 *
 * Why our own pool: the engine issues many short parallel regions per token
 * (a dozen per layer in decode), so wake-up latency matters more than
 * generality.  Workers spin briefly after a region (a few microseconds,
 * covering the gap to the next region of the same token) and then sleep on a
 * condition variable, so an idle daemon costs no CPU.  OpenBLAS runs
 * single-threaded inside our tasks, so exactly one set of threads exists.
 *
 * The caller never waits for a worker to wake up: tasks are taken from a
 * shared ticket counter by whoever is running, and the caller only waits for
 * tasks that a worker has actually started.  On a machine where other
 * processes occupy the other cores, a region therefore costs at worst what
 * it costs single-threaded, instead of a scheduler time slice.
 *
 * A pool is used by one caller thread at a time (the engine context that owns
 * it); regions do not nest.
 */
#ifndef RWKV_THREADPOOL_H
#define RWKV_THREADPOOL_H

/* task: index in [0, n_tasks); thread: index in [0, pool size), stable for the
 * duration of the call, usable to pick per-thread scratch memory. */
typedef void (*rwkv_task_fn)(void *arg, int task, int thread);

typedef struct rwkv_pool rwkv_pool;

/* n_threads >= 1 counts the calling thread; n_threads <= 0 means one per
 * online CPU.  Returns NULL when threads cannot be created. */
rwkv_pool *rwkv_pool_new(int n_threads);
void rwkv_pool_free(rwkv_pool *p); /* accepts NULL; joins the workers */
int rwkv_pool_size(const rwkv_pool *p);

/* Runs fn(arg, t, thread) for every t in [0, n_tasks), spread over the pool;
 * the caller works too.  Returns when all tasks are done.  Tasks are handed
 * out dynamically (an atomic counter), so uneven tasks balance themselves. */
void rwkv_pool_run(rwkv_pool *p, int n_tasks, rwkv_task_fn fn, void *arg);

/* Number of online CPUs (at least 1). */
int rwkv_cpu_count(void);

#endif
