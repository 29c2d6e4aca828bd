/* bench_tokenizer_bpe.c — the GPT-NeoX 20B tokenizer.json on one core:
 * parse/load time of the 2.4 MB JSON, encode MB/s whole-text and streamed in
 * 4 KB pieces, decode MB/s, over a few MB of text: the GPL-3 fixture
 * (long.bin, English) repeated, the multilingual fixture cases repeated, and
 * two hostile texts (1 MB of one letter: the forced cuts and the heap merge;
 * 1 MB of spaces: runs of added tokens).  Beside each figure, the ratio to
 * memcpy of the same bytes on this machine (the ceiling of any pass over the
 * text).  Target: >= 20 MB/s encode on the GPL-3 text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tokenizer.h"
#include "tests/support/bench_measure.h"
#include "tests/testutil.h"

#define JSON "tokenizer-20b/20B_tokenizer.json"
#define TARGET_BYTES (4u << 20)
#define REPS 5

static uint8_t *repeat(const uint8_t *src, size_t n, size_t target, size_t *out_n)
{
    size_t copies = (target + n - 1) / n;
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

/* mode 0: whole text, 1: stream in 4 KB pieces, 2: decode of the ids.
 * Returns MB/s (best of REPS), or -1 on error. */
static double run(const rwkv_tokenizer *t, const uint8_t *text, size_t n, int mode, size_t *n_ids)
{
    rwkv_ids ids = {0};
    rwkv_error err = {{0}};
    if (mode == 2 && rwkv_tokenizer_encode(t, text, n, &ids, &err) != 0)
        return -1;
    double best = 1e30;
    for (int r = 0; r < REPS; r++) {
        double t0 = bench_now();
        if (mode == 0) {
            ids.n = 0;
            if (rwkv_tokenizer_encode(t, text, n, &ids, &err) != 0)
                return -1;
        } else if (mode == 1) {
            ids.n = 0;
            rwkv_encoder *e = rwkv_encoder_new(t);
            for (size_t p = 0; e && p < n; p += 4096)
                if (rwkv_encoder_feed(e, text + p, n - p < 4096 ? n - p : 4096, &ids, &err) != 0)
                    return -1;
            if (!e || rwkv_encoder_finish(e, &ids, &err) != 0)
                return -1;
            rwkv_encoder_free(e);
        } else {
            uint8_t *out;
            size_t on;
            if (rwkv_tokenizer_decode(t, ids.v, ids.n, &out, &on, &err) != 0)
                return -1;
            sink = out[on / 2];
            free(out);
        }
        double dt = bench_now() - t0;
        if (dt < best)
            best = dt;
    }
    *n_ids = ids.n;
    rwkv_ids_free(&ids);
    return (double)n / best / 1e6;
}

int main(void)
{
    size_t jn, ln, cn;
    uint8_t *json = fixture_read(JSON, &jn);
    uint8_t *lng = fixture_read("tokenizer-20b/long.bin", &ln);
    uint8_t *cases = fixture_read("tokenizer-20b/cases.bin", &cn);
    if (!json || !lng || !cases)
        return 1;
    rwkv_tokenizer *tok = NULL;
    rwkv_error err = {{0}};
    double parse_best = 1e30, load_best = 1e30;
    for (int r = 0; r < 5; r++) {
        rwkv_tokenizer *t = NULL;
        double t0 = bench_now();
        if (rwkv_tokenizer_parse(JSON, json, jn, &t, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double t1 = bench_now();
        rwkv_tokenizer_free(t);
        double t2 = bench_now();
        if (rwkv_tokenizer_load(fixture_path(JSON), &t, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double t3 = bench_now();
        if (t1 - t0 < parse_best)
            parse_best = t1 - t0;
        if (t3 - t2 < load_best)
            load_best = t3 - t2;
        if (tok)
            rwkv_tokenizer_free(t);
        else
            tok = t;
    }
    printf("20B tokenizer.json (%u ids, %zu bytes): parse %.1f ms, load from file %.1f ms "
           "(best of 5)\n\n", rwkv_tokenizer_vocab_size(tok), jn, parse_best * 1e3,
           load_best * 1e3);

    uint8_t letter = 'a', space = ' ';
    const struct { const char *name; const uint8_t *src; size_t n, target; } texts[] = {
        {"GPL-3 (English)", lng, ln, TARGET_BYTES},
        {"fixture cases (multilingual)", cases, cn, TARGET_BYTES},
        {"one letter repeated", &letter, 1, 1u << 20},
        {"spaces", &space, 1, 1u << 20},
    };
    static const char *modes[3] = {"encode whole", "encode 4KB stream", "decode"};
    printf("%-36s %-18s %10s %10s %10s %10s\n", "text", "operation", "MB/s", "bytes/id",
           "vs memcpy", "target");
    int slow = 0;
    for (size_t x = 0; x < sizeof texts / sizeof *texts; x++) {
        size_t n;
        uint8_t *text = repeat(texts[x].src, texts[x].n, texts[x].target, &n);
        if (!text)
            return 1;
        double peak = memcpy_mbs(text, n);
        char label[64];
        snprintf(label, sizeof label, "%s %.1f MB", texts[x].name, (double)n / 1e6);
        for (int m = 0; m < 3; m++) {
            size_t n_ids = 0;
            double mbs = run(tok, text, n, m, &n_ids);
            if (mbs < 0) {
                fprintf(stderr, "%s: %s failed\n", label, modes[m]);
                return 1;
            }
            const char *verdict = "";
            if (x == 0 && m < 2) {
                verdict = mbs >= 20 ? ">=20 ok" : "<20 SLOW";
                slow |= mbs < 20;
            }
            printf("%-36s %-18s %10.1f %10.2f %9.2f%% %10s\n", label, modes[m], mbs,
                   (double)n / (double)n_ids, 100.0 * mbs / peak, verdict);
        }
        printf("%-36s %-18s %10.1f\n\n", label, "memcpy (peak)", peak);
        free(text);
    }
    rwkv_tokenizer_free(tok);
    free(json);
    free(lng);
    free(cases);
    if (slow)
        printf("GPL-3 encode is below the 20 MB/s target\n");
    return 0;
}
