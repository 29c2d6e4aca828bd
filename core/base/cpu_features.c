/* cpu_features.c — cpuid/xgetbv decoding; see core/cpu_features.h.
 *
 * A feature counts only when the CPU has it AND the OS saves the registers
 * it uses (XCR0): AVX-512 needs the opmask/zmm state bits, AMX the tile
 * bits, which Linux grants to a process only on request
 * (arch_prctl ARCH_REQ_XCOMP_PERM). */
#include "core/cpu_features.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect(rwkv_cpu_features *f)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    int ymm_ok = osxsave && (xcr0 & 0x6) == 0x6;
    int zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0;
    if (__get_cpuid_max(0, NULL) < 7)
        return;
    unsigned b7, c7, d7, a71 = 0, b71, c71, d71;
    __cpuid_count(7, 0, a, b7, c7, d7);
    __cpuid_count(7, 1, a71, b71, c71, d71);
    (void)b71, (void)c71, (void)d71;
    f->fma = ymm_ok && avx && fma;
    f->avx2 = ymm_ok && avx && ((b7 >> 5) & 1);
    f->avx512f = zmm_ok && ((b7 >> 16) & 1);
    f->avx512bw = f->avx512f && ((b7 >> 30) & 1);
    f->avx512vl = f->avx512f && ((b7 >> 31) & 1);
    f->avx512_vnni = f->avx512f && ((c7 >> 11) & 1);
    f->avx512_bf16 = f->avx512f && ((a71 >> 5) & 1);
    f->avx_vnni = f->avx2 && ((a71 >> 4) & 1);
    int amx_cpu = (d7 >> 24) & 1;
    /* the tile state: XCR0 bits 17/18 and the kernel's permission */
    if (amx_cpu && (xcr0 & 0x60000) == 0x60000 &&
        syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0) {
        f->amx_tile = true;
        f->amx_bf16 = (d7 >> 22) & 1;
        f->amx_int8 = (d7 >> 25) & 1;
    }
}
#else
static void detect(rwkv_cpu_features *f)
{
    (void)f;
}
#endif

static rwkv_cpu_features features;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* RWKV_CPU_HIDE="avx512f,amx_tile": features reported absent although the
 * CPU has them, to run and test the paths of another CPU (int8 on AVX-VNNI
 * without AVX-512) or to compare paths.  It steers rwkvd's own choices
 * (precision checks, kernel dispatch); compiler clones and libraries still
 * see the real CPU.  A feature hidden hides those built on it. */
static void hide(rwkv_cpu_features *f, const char *list)
{
    struct {
        const char *name;
        bool *flag;
    } map[] = {
        {"avx2", &f->avx2},           {"fma", &f->fma},
        {"avx512f", &f->avx512f},     {"avx512bw", &f->avx512bw},
        {"avx512vl", &f->avx512vl},   {"avx512_bf16", &f->avx512_bf16},
        {"avx512_vnni", &f->avx512_vnni}, {"avx_vnni", &f->avx_vnni},
        {"amx_tile", &f->amx_tile},   {"amx_bf16", &f->amx_bf16},
        {"amx_int8", &f->amx_int8},
    };
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ", ");
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (n == strlen(map[i].name) && strncmp(p, map[i].name, n) == 0)
                *map[i].flag = false;
        p += n;
        p += strspn(p, ", ");
    }
    if (!f->avx512f)
        f->avx512bw = f->avx512vl = f->avx512_bf16 = f->avx512_vnni = false;
    if (!f->avx2)
        f->avx_vnni = false;
    if (!f->amx_tile)
        f->amx_bf16 = f->amx_int8 = false;
}

static void init(void)
{
    memset(&features, 0, sizeof features);
    detect(&features);
    const char *h = getenv("RWKV_CPU_HIDE");
    if (h)
        hide(&features, h);
}

const rwkv_cpu_features *rwkv_cpu_features_get(void)
{
    pthread_once(&once, init);
    return &features;
}

void rwkv_cpu_features_describe(const rwkv_cpu_features *f, char *buf, size_t cap)
{
    struct {
        bool on;
        const char *name;
    } list[] = {
        {f->avx2, "avx2"},
        {f->fma, "fma"},
        {f->avx512f, "avx512f"},
        {f->avx512bw, "avx512bw"},
        {f->avx512vl, "avx512vl"},
        {f->avx512_bf16, "avx512_bf16"},
        {f->avx512_vnni, "avx512_vnni"},
        {f->avx_vnni, "avx_vnni"},
        {f->amx_tile, "amx_tile"},
        {f->amx_bf16, "amx_bf16"},
        {f->amx_int8, "amx_int8"},
    };
    size_t o = 0;
    if (cap == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
        if (!list[i].on)
            continue;
        int n = snprintf(buf + o, cap - o, "%s%s", o ? " " : "", list[i].name);
        if (n < 0 || (size_t)n >= cap - o)
            return;
        o += (size_t)n;
    }
    if (o == 0)
        snprintf(buf, cap, "none");
}
