/* bench_tokenizer.c — tokenizer speed on one core: World vocabulary load
 * time, encode MB/s whole-text and streamed in 4 KB pieces, decode MB/s,
 * over a few MB of real text (the GPL-3 fixture repeated, and the
 * multilingual fixture cases repeated).  Beside each figure: the ratio to
 * memcpy of the same bytes on this machine, the ceiling of any pass over
 * the text.  Target: >= 50 MB/s World encode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tokenizer.h"
#include "tests/support/bench_measure.h"
#include "tests/testutil.h"

#define VOCAB "tokenizer/rwkv_vocab_v20230424.txt"
#define TARGET_BYTES (4u << 20)
#define REPS 5

static uint8_t *repeat(const uint8_t *src, size_t n, size_t *out_n)
{
    size_t copies = (TARGET_BYTES + n - 1) / n;
    uint8_t *buf = malloc(copies * n);
    if (!buf)
        return NULL;
    for (size_t i = 0; i < copies; i++)
        memcpy(buf + i * n, src, n);
    *out_n = copies * n;
    return buf;
}

static volatile uint8_t sink;

static double memcpy_mbs(const uint8_t *text, size_t n)
{
    uint8_t *dst = malloc(n);
    double best = 1e30;
    for (int r = 0; r < REPS; r++) {
        double t0 = bench_now();
        memcpy(dst, text, n);
        sink = dst[n / 2];
        double dt = bench_now() - t0;
        if (dt < best)
            best = dt;
    }
    free(dst);
    return (double)n / best / 1e6;
}

/* mode 0: whole text, 1: stream in 4 KB pieces, 2: decode of the ids. */
static double run(const rwkv_tokenizer *t, const uint8_t *text, size_t n, int mode, size_t *n_ids)
{
    rwkv_ids ids = {0};
    rwkv_error err = {{0}};
    double best = 1e30;
    if (mode == 2 && rwkv_tokenizer_encode(t, text, n, &ids, &err) != 0)
        goto fail;
    for (int r = 0; r < REPS; r++) {
        double t0 = bench_now();
        if (mode == 0) {
            ids.n = 0;
            if (rwkv_tokenizer_encode(t, text, n, &ids, &err) != 0)
                goto fail;
        } else if (mode == 1) {
            ids.n = 0;
            rwkv_encoder *e = rwkv_encoder_new(t);
            for (size_t p = 0; e && p < n; p += 4096)
                if (rwkv_encoder_feed(e, text + p, n - p < 4096 ? n - p : 4096, &ids, &err) != 0)
                    goto fail;
            if (!e || rwkv_encoder_finish(e, &ids, &err) != 0)
                goto fail;
            rwkv_encoder_free(e);
        } else {
            uint8_t *out;
            size_t on;
            if (rwkv_tokenizer_decode(t, ids.v, ids.n, &out, &on, &err) != 0)
                goto fail;
            if (on != n || memcmp(out, text, n) != 0) {
                fprintf(stderr, "decode does not round-trip\n");
                exit(1);
            }
            free(out);
        }
        double dt = bench_now() - t0;
        if (dt < best)
            best = dt;
    }
    *n_ids = ids.n;
    rwkv_ids_free(&ids);
    return (double)n / best / 1e6;
fail:
    fprintf(stderr, "bench_tokenizer: %s\n", err.msg[0] ? err.msg : "out of memory");
    exit(1);
}

int main(void)
{
    size_t vn, ln, cn;
    uint8_t *vocab = fixture_read(VOCAB, &vn);
    uint8_t *lng = fixture_read("tokenizer/long.bin", &ln);
    uint8_t *cases = fixture_read("tokenizer/cases.bin", &cn);
    if (!vocab || !lng || !cases)
        return 1;

    rwkv_tokenizer *world = NULL;
    rwkv_error err = {{0}};
    double parse_best = 1e30, load_best = 1e30;
    for (int r = 0; r < 10; r++) {
        rwkv_tokenizer *t = NULL;
        double t0 = bench_now();
        if (rwkv_tokenizer_parse(VOCAB, vocab, vn, &t, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double t1 = bench_now();
        rwkv_tokenizer_free(t);
        double t2 = bench_now();
        if (rwkv_tokenizer_load(fixture_path(VOCAB), &t, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double t3 = bench_now();
        if (t1 - t0 < parse_best)
            parse_best = t1 - t0;
        if (t3 - t2 < load_best)
            load_best = t3 - t2;
        if (world)
            rwkv_tokenizer_free(t);
        else
            world = t;
    }
    rwkv_tokenizer *bytes = rwkv_tokenizer_bytes();

    printf("World vocabulary (65529 tokens, %zu bytes): parse %.2f ms, load from file %.2f ms "
           "(best of 10)\n\n", vn, parse_best * 1e3, load_best * 1e3);

    const struct { const char *name; const uint8_t *src; size_t n; } texts[2] = {
        {"GPL-3 (English)", lng, ln}, {"fixture cases (multilingual)", cases, cn}};
    static const char *modes[3] = {"encode whole", "encode 4KB stream", "decode"};
    printf("%-36s %-18s %10s %10s %10s %10s\n", "text", "operation", "MB/s", "bytes/id",
           "vs memcpy", "target");
    for (int x = 0; x < 2; x++) {
        size_t n;
        uint8_t *text = repeat(texts[x].src, texts[x].n, &n);
        if (!text)
            return 1;
        double peak = memcpy_mbs(text, n);
        char label[64];
        snprintf(label, sizeof label, "%s %.1f MB", texts[x].name, (double)n / 1e6);
        for (int m = 0; m < 3; m++) {
            size_t n_ids = 0;
            double mbs = run(world, text, n, m, &n_ids);
            printf("%-36s %-18s %10.1f %10.2f %9.2f%% %10s\n", label, modes[m], mbs,
                   (double)n / (double)n_ids, 100.0 * mbs / peak,
                   m < 2 ? (mbs >= 50 ? ">=50 ok" : "<50 SLOW") : "");
        }
        size_t n_ids = 0;
        double bmbs = run(bytes, text, n, 0, &n_ids);
        printf("%-36s %-18s %10.1f %10.2f %9.2f%% %10s\n", label, "bytes tok. encode", bmbs,
               1.0, 100.0 * bmbs / peak, "");
        printf("%-36s %-18s %10.1f\n\n", label, "memcpy (peak)", peak);
        free(text);
    }
    rwkv_tokenizer_free(world);
    rwkv_tokenizer_free(bytes);
    free(vocab);
    free(lng);
    free(cases);
    return 0;
}
