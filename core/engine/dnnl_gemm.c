/* dnnl_gemm.c — oneDNN matmul primitives per call shape; see dnnl_gemm.h. */
#include "core/engine/dnnl_gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* libgomp (oneDNN's threading runtime here); declared rather than included
 * so the build needs no -fopenmp. */
void omp_set_num_threads(int n);

/* Primitives kept per thread.  A prefill pass uses a few shapes per
 * matrix (segment rows x slice width); when the table is full the oldest
 * entry goes (oneDNN's own primitive cache makes re-creation cheap). */
#define CACHE_SLOTS 96

typedef struct {
    int used;
    rwkv_gemm_kind kind;
    int m, n, k, ldc, acc;
    dnnl_primitive_t prim;
    dnnl_primitive_desc_t pd;
} slot;

struct rwkv_dnnl_thread {
    dnnl_stream_t stream;
    slot cache[CACHE_SLOTS];
    int next; /* round-robin eviction */
};

static dnnl_engine_t cpu_engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void engine_init(void)
{
    if (dnnl_engine_create(&cpu_engine, dnnl_cpu, 0) != dnnl_success)
        cpu_engine = NULL;
}

rwkv_dnnl_thread *rwkv_dnnl_thread_new(void)
{
    pthread_once(&engine_once, engine_init);
    if (!cpu_engine)
        return NULL;
    rwkv_dnnl_thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (dnnl_stream_create(&t->stream, cpu_engine, dnnl_stream_default_flags) != dnnl_success) {
        free(t);
        return NULL;
    }
    return t;
}

static void slot_clear(slot *s)
{
    if (s->prim)
        dnnl_primitive_destroy(s->prim);
    if (s->pd)
        dnnl_primitive_desc_destroy(s->pd);
    memset(s, 0, sizeof *s);
}

void rwkv_dnnl_thread_free(rwkv_dnnl_thread *t)
{
    if (!t)
        return;
    for (int i = 0; i < CACHE_SLOTS; i++)
        slot_clear(&t->cache[i]);
    dnnl_stream_destroy(t->stream);
    free(t);
}

/* A primitive descriptor for the shape; NULL when oneDNN has none. */
static dnnl_primitive_desc_t make_pd(rwkv_gemm_kind kind, int m, int n, int k, int ldc, int acc)
{
    dnnl_data_type_t in = kind == RWKV_GEMM_BF16 ? dnnl_bf16 : dnnl_u8;
    dnnl_data_type_t wt = kind == RWKV_GEMM_BF16 ? dnnl_bf16 : dnnl_s8;
    dnnl_data_type_t out = kind == RWKV_GEMM_BF16 ? dnnl_f32 : dnnl_s32;
    dnnl_dims_t a_dims = {m, k}, a_strides = {k, 1};
    dnnl_dims_t w_dims = {k, n}, w_strides = {1, k}; /* W stored [n][k]: Wᵀ */
    dnnl_dims_t c_dims = {m, n}, c_strides = {ldc, 1};
    dnnl_memory_desc_t a_md, w_md, c_md;
    if (dnnl_memory_desc_init_by_strides(&a_md, 2, a_dims, in, a_strides) ||
        dnnl_memory_desc_init_by_strides(&w_md, 2, w_dims, wt, w_strides) ||
        dnnl_memory_desc_init_by_strides(&c_md, 2, c_dims, out, c_strides))
        return NULL;
    dnnl_matmul_desc_t d;
    if (dnnl_matmul_desc_init(&d, &a_md, &w_md, NULL, &c_md) != dnnl_success)
        return NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if (acc) {
        if (dnnl_primitive_attr_create(&attr) || dnnl_post_ops_create(&po) ||
            dnnl_post_ops_append_sum(po, 1.0f) || dnnl_primitive_attr_set_post_ops(attr, po)) {
            if (po)
                dnnl_post_ops_destroy(po);
            if (attr)
                dnnl_primitive_attr_destroy(attr);
            return NULL;
        }
    }
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_primitive_desc_create(&pd, &d, attr, cpu_engine, NULL) != dnnl_success)
        pd = NULL;
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return pd;
}

/* oneDNN's OpenMP team is the calling thread alone; per OS thread (the
 * pool's thread index may be served by another OS thread next time). */
static void one_omp_thread(void)
{
    static __thread int done;
    if (!done) {
        omp_set_num_threads(1);
        done = 1;
    }
}

static slot *find(rwkv_dnnl_thread *t, rwkv_gemm_kind kind, int m, int n, int k, int ldc, int acc)
{
    for (int i = 0; i < CACHE_SLOTS; i++) {
        slot *s = &t->cache[i];
        if (s->used && s->kind == kind && s->m == m && s->n == n && s->k == k && s->ldc == ldc &&
            s->acc == acc)
            return s;
    }
    dnnl_primitive_desc_t pd = make_pd(kind, m, n, k, ldc, acc);
    if (!pd)
        return NULL;
    dnnl_primitive_t prim;
    if (dnnl_primitive_create(&prim, pd) != dnnl_success) {
        dnnl_primitive_desc_destroy(pd);
        return NULL;
    }
    slot *s = &t->cache[t->next];
    t->next = (t->next + 1) % CACHE_SLOTS;
    slot_clear(s);
    *s = (slot){1, kind, m, n, k, ldc, acc, prim, pd};
    return s;
}

int rwkv_dnnl_gemm(rwkv_dnnl_thread *t, rwkv_gemm_kind kind, int m, int n, int k, const void *a,
                   const void *w, void *c, int ldc, int acc)
{
    if (!t || (kind == RWKV_GEMM_U8S8 && acc))
        return -1;
    one_omp_thread();
    slot *s = find(t, kind, m, n, k, ldc, acc);
    if (!s)
        return -1;
    const dnnl_memory_desc_t *md[3] = {
        dnnl_primitive_desc_query_md(s->pd, dnnl_query_src_md, 0),
        dnnl_primitive_desc_query_md(s->pd, dnnl_query_weights_md, 0),
        dnnl_primitive_desc_query_md(s->pd, dnnl_query_dst_md, 0),
    };
    void *ptr[3] = {(void *)a, (void *)w, c};
    int arg_id[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    dnnl_memory_t mem[3] = {0};
    dnnl_exec_arg_t args[4];
    int n_args = 0, rc = -1;
    for (int i = 0; i < 3; i++) {
        if (!md[i] || dnnl_memory_create(&mem[i], md[i], cpu_engine, ptr[i]) != dnnl_success)
            goto out;
        args[n_args++] = (dnnl_exec_arg_t){arg_id[i], mem[i]};
    }
    /* a scratchpad of the library's own (default mode) */
    if (dnnl_primitive_execute(s->prim, t->stream, n_args, args) == dnnl_success &&
        dnnl_stream_wait(t->stream) == dnnl_success)
        rc = 0;
out:
    for (int i = 0; i < 3; i++)
        if (mem[i])
            dnnl_memory_destroy(mem[i]);
    return rc;
}

const char *rwkv_dnnl_impl(rwkv_dnnl_thread *t, rwkv_gemm_kind kind, int m, int n, int k)
{
    one_omp_thread();
    slot *s = t ? find(t, kind, m, n, k, n, 0) : NULL;
    const char *info = NULL;
    if (!s || dnnl_primitive_desc_query(s->pd, dnnl_query_impl_info_str, 0, &info) != dnnl_success)
        return "";
    return info ? info : "";
}
