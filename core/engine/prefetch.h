/* prefetch.h — software prefetch for the GEMV kernels' weight streams.
 *
 * Decode streams every weight once per token, so its speed is the rate at
 * which the GEMVs read memory.  On this project's machine (2 cores of a
 * Xeon, in a VM) a plain read loop over the mapped model file reaches
 * ~29 GB/s on 2 threads (15 on one), but the GEMVs, whose loads sit between
 * conversions and FMAs, read 14.6 GB/s (fp32 path over bf16 weights):
 * the hardware prefetcher alone kept too few lines in flight, and fewer
 * still when both cores streamed.  Asking for the line RWKV_PREFETCH_AHEAD
 * bytes in front of the row being summed took fp32 decode of the 0.1B
 * shape from 49 to 70 tok/s (docs/precision.md has the measurements).
 *
 * The lines go to L2 (prefetcht1, locality 2): measured against L1
 * (prefetcht0) int8 decode 140 against 128 tok/s, bf16 75.6 against 72.5
 * (NTA halved every precision); the distance, 2/4/8/16 KiB, is best at 4
 * with either hint.
 *
 * Prefetches never fault and change no result: only speed depends on them.
 */
#ifndef RWKV_PREFETCH_H
#define RWKV_PREFETCH_H

#include <stddef.h>

#define RWKV_PREFETCH_AHEAD 4096

/* Called once per weight row: the row occupies bytes [off, off + n) of a
 * slice of len bytes starting at base; prefetches the same span
 * RWKV_PREFETCH_AHEAD bytes further on, clipped to the slice (offsets, not
 * pointers, so nothing points outside the slice). */
static inline void rwkv_prefetch_ahead(const void *base, size_t off, size_t n, size_t len)
{
    size_t from = off + RWKV_PREFETCH_AHEAD, to = from + n;
    if (to > len)
        to = len;
    for (size_t o = from; o < to; o += 64)
        __builtin_prefetch((const char *)base + o, 0, 2);
}

#endif
