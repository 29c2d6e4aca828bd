/* precision.c — names, parsing and the CPU requirements of each precision;
 * see core/precision.h. */
#include "core/precision.h"

#include <string.h>

static const char *const names[] = {"fp32", "bf16", "int8", "auto"};

const char *rwkv_precision_name(rwkv_precision p)
{
    return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "?";
}

int rwkv_precision_parse(const char *s, rwkv_precision *out, rwkv_error *err)
{
    for (unsigned i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i])) {
            *out = (rwkv_precision)i;
            return 0;
        }
    return rwkv_fail(err, "precision '%s': expected " RWKV_PRECISION_NAMES, s ? s : "(null)");
}

/* The kernels behind each precision use 512-bit registers with byte/word
 * masks (avx512bw) on top of the dot-product instruction itself. */
int rwkv_precision_check(rwkv_precision p, const rwkv_cpu_features *f, rwkv_error *err)
{
    const char *missing = NULL;
    switch (p) {
    case RWKV_PRECISION_FP32:
    case RWKV_PRECISION_AUTO:
        return 0;
    case RWKV_PRECISION_BF16:
        missing = !f->avx512f ? "avx512f" : !f->avx512bw ? "avx512bw"
                : !f->avx512_bf16 ? "avx512_bf16" : NULL;
        break;
    case RWKV_PRECISION_INT8:
        /* an int8 dot product on 512 or 256-bit registers; the receptance
         * and key products run in bf16 where AVX512-BF16 exists, else in
         * the fp32 path (rwkv_lowp_bf16_runs) */
        if (!rwkv_precision_int8_avx512(f) && !(f->avx2 && f->avx_vnni))
            missing = "avx512_vnni (with avx512f and avx512bw) or avx_vnni";
        break;
    default:
        return rwkv_fail(err, "precision %d: unknown", (int)p);
    }
    if (missing)
        return rwkv_fail(err, "precision %s needs the CPU feature %s, which this CPU lacks (use "
                              "fp32, or auto for the fastest this CPU runs)",
                         rwkv_precision_name(p), missing);
    return 0;
}

bool rwkv_precision_int8_avx512(const rwkv_cpu_features *f)
{
    return f->avx512f && f->avx512bw && f->avx512_vnni;
}

rwkv_precision rwkv_precision_auto(const rwkv_cpu_features *f)
{
    if (rwkv_precision_check(RWKV_PRECISION_BF16, f, NULL) == 0)
        return RWKV_PRECISION_BF16;
    return RWKV_PRECISION_FP32;
}

int rwkv_precision_resolve(rwkv_precision want, rwkv_precision *out, rwkv_error *err)
{
    const rwkv_cpu_features *f = rwkv_cpu_features_get();
    rwkv_precision p = want == RWKV_PRECISION_AUTO ? rwkv_precision_auto(f) : want;
    if (rwkv_precision_check(p, f, err) != 0)
        return -1;
    *out = p;
    return 0;
}
