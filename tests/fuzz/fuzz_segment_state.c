/* fuzz_segment_state.c — libFuzzer target for the serialised segmenter
 * state that checkpoints carry (core/segments.h, core/quantile_sketch.h).
 * Input: the state bytes (padded or cut to RWKV_SEGMENTER_BYTES, so short
 * inputs still reach the field checks).  Whatever loads must store back to
 * the same bytes and keep working: a few tokens are fed through it.
 * Seeds in tests/fuzz/corpus/segment_state/.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/segments.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count(void *ctx, const rwkv_segment *g)
{
    if (g->byte_end <= g->byte_start || g->tok_end < g->tok_start ||
        (g->has_score && !(g->score >= 0 && g->score <= 1)))
        abort();
    (*(int *)ctx)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[RWKV_SEGMENTER_BYTES], back[RWKV_SEGMENTER_BYTES];
    static rwkv_segmenter s;
    rwkv_error err;
    memset(buf, 0, sizeof buf);
    memcpy(buf, data, size < sizeof buf ? size : sizeof buf);
    if (rwkv_segmenter_load(&s, buf, sizeof buf, "fuzz", &err) != 0) {
        if (!err.msg[0])
            abort();
        return 0;
    }
    rwkv_segmenter_store(&s, back);
    if (memcmp(buf, back, sizeof buf) != 0)
        abort();
    int n = 0;
    static const uint8_t text[] = "ab\n\r\ncd\nab";
    for (size_t i = 0; i < sizeof text - 1; i++)
        rwkv_segmenter_token(&s, text + i, 1, (float)i, count, &n);
    rwkv_segmenter_finish(&s, count, &n);
    return 0;
}
