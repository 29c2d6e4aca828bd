/* cublas_dl.cu — cuBLAS, loaded when the first CUDA engine needs it.
 *
 * Linking libcublas makes every program that merely contains the backend
 * (the daemon and CLI on a CPU, every test) map and relocate the ~600 MB
 * cuBLAS/cuBLASLt pair at start-up: measured here, +70 ms and +210 MB RSS
 * per process for `rwkv --help`.  So the five functions the backend uses
 * are resolved with dlopen/dlsym on first use instead, once per process.
 * The library is the one the build compiled against (same major version),
 * looked up first in the toolkit's lib64 directory the Makefile names, then
 * by the usual search (RUNPATH, ld.so.cache).  It is never unloaded. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <type_traits>

#include "kernels/cuda_internal.cuh"

#define STR2(x) #x
#define STR(x) STR2(x)
#define CUBLAS_SONAME "libcublas.so." STR(CUBLAS_VER_MAJOR)

/* The pointer types must match the headers' declarations exactly (checked
 * at compile time without referencing the symbols). */
static_assert(std::is_same<decltype(static_cast<cublas_create_fn>(cublasCreate_v2)),
                           cublas_create_fn>::value, "cublasCreate_v2");
static_assert(std::is_same<decltype(static_cast<cublas_gemm_ex_fn>(cublasGemmEx)),
                           cublas_gemm_ex_fn>::value, "cublasGemmEx");

static pthread_once_t once = PTHREAD_ONCE_INIT;
static cublas_api api;
static int loaded;
static char why[RWKV_ERROR_MAX];

static void *sym(void *lib, const char *name)
{
    void *p = dlsym(lib, name);
    if (!p && !why[0])
        snprintf(why, sizeof why, "cuBLAS: %s has no symbol %s", CUBLAS_SONAME, name);
    return p;
}

static void load(void)
{
    void *lib = NULL;
#ifdef RWKV_CUDA_LIBDIR
    lib = dlopen(RWKV_CUDA_LIBDIR "/" CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
#endif
    if (!lib)
        lib = dlopen(CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = dlerror();
        snprintf(why, sizeof why, "cuBLAS: cannot load %s: %s", CUBLAS_SONAME, e ? e : "?");
        return;
    }
    api.create = (cublas_create_fn)sym(lib, "cublasCreate_v2");
    api.destroy = (cublas_destroy_fn)sym(lib, "cublasDestroy_v2");
    api.set_stream = (cublas_set_stream_fn)sym(lib, "cublasSetStream_v2");
    api.set_math_mode = (cublas_set_math_mode_fn)sym(lib, "cublasSetMathMode");
    api.gemm_ex = (cublas_gemm_ex_fn)sym(lib, "cublasGemmEx");
    loaded = api.create && api.destroy && api.set_stream && api.set_math_mode && api.gemm_ex;
}

const cublas_api *cublas_load(rwkv_error *err)
{
    pthread_once(&once, load);
    if (!loaded) {
        rwkv_fail(err, "%s", why);
        return NULL;
    }
    return &api;
}

extern "C" int rwkv_cuda_cublas_available(rwkv_error *err)
{
    return cublas_load(err) ? 0 : -1;
}
