/* cpu_features.h — what the processor this process runs on can do, found
 * with cpuid (and xgetbv for what the OS saves) at run time: a binary built
 * on one machine runs on another, so compile-time flags never decide which
 * kernels run. */
#ifndef RWKV_CPU_FEATURES_H
#define RWKV_CPU_FEATURES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct rwkv_cpu_features {
    bool avx2, fma;
    bool avx512f, avx512bw, avx512vl; /* and the OS saves the zmm state */
    bool avx512_bf16;                 /* vdpbf16ps, vcvtne2ps2bf16 */
    bool avx512_vnni;                 /* vpdpbusd on zmm */
    bool avx_vnni;                    /* vpdpbusd on ymm (VEX) */
    bool amx_tile, amx_bf16, amx_int8; /* and the OS has granted the tile state */
} rwkv_cpu_features;

/* Detected once (thread safe), then the same pointer every call.  The
 * environment variable RWKV_CPU_HIDE (names as in describe, comma or space
 * separated) reports features absent that the CPU has: for tests and for
 * comparing the paths of other CPUs (cpu_features.c). */
const rwkv_cpu_features *rwkv_cpu_features_get(void);

/* "avx2 fma avx512f ... avx512_bf16 avx512_vnni": the features found, space
 * separated ("none" when none), into buf (always NUL-terminated). */
void rwkv_cpu_features_describe(const rwkv_cpu_features *f, char *buf, size_t cap);

#endif
