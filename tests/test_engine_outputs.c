/* test_engine_outputs.c — the engine's top-k output (forward.h) against
 * ranking its own logits: on a fixture model and a random RWKV-7, for
 * requests long enough to span several passes and head chunks, batched with
 * other requests, alongside LAST logits and surprisal:
 *  - top-k computed by the CPU backend equals core/topk.h over the logits of
 *    every row, bit for bit, and asking for it changes no other output;
 *  - the engine's host-side ranking (for a backend that cannot rank,
 *    backend.h topk = 0) gives the same bits;
 *  - a bad top-k request is refused before any state is touched. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine/engine_internal.h"
#include "core/forward.h"
#include "core/model.h"
#include "core/random_model.h"
#include "core/state.h"
#include "core/topk.h"
#include "tests/testutil.h"

#define N_REQ 3
static const int LEN[N_REQ] = {1100, 37, 5};
static const int K[N_REQ] = {5, 1, 64};

typedef struct {
    float *logits_all, *last, *sur, *state;
    uint32_t *ids;
    float *lp;
} outs;

static void outs_free(outs *o)
{
    for (int i = 0; i < N_REQ; i++) {
        free(o[i].logits_all);
        free(o[i].last);
        free(o[i].sur);
        free(o[i].state);
        free(o[i].ids);
        free(o[i].lp);
    }
}

/* One batch of the N_REQ requests.  want_topk: ask the engine for top-k;
 * otherwise ask for every row's logits. */
static int run(rwkv_engine *e, const rwkv_model *m, int want_topk, outs *o)
{
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    size_t V = (size_t)mi->vocab_size, S = mi->state_floats;
    uint64_t seed = 11;
    uint32_t *tok[N_REQ];
    rwkv_request q[N_REQ];
    rwkv_state *st[N_REQ];
    memset(o, 0, sizeof *o * N_REQ);
    for (int i = 0; i < N_REQ; i++) {
        tok[i] = malloc(sizeof(uint32_t) * (size_t)LEN[i]);
        for (int t = 0; t < LEN[i]; t++)
            tok[i][t] = (uint32_t)(test_rand(&seed) % V);
        st[i] = rwkv_state_new(m);
        o[i].last = malloc(sizeof(float) * V);
        o[i].sur = malloc(sizeof(float) * (size_t)LEN[i]);
        o[i].state = malloc(sizeof(float) * S);
        q[i] = (rwkv_request){.state = st[i], .tokens = tok[i], .n_tokens = LEN[i],
                              .surprisal_out = o[i].sur, .next_token = i == 1 ? 3 : -1};
        if (want_topk) {
            o[i].ids = malloc(sizeof(uint32_t) * (size_t)LEN[i] * (size_t)K[i]);
            o[i].lp = malloc(sizeof(float) * (size_t)LEN[i] * (size_t)K[i]);
            q[i].topk = K[i];
            q[i].topk_ids = o[i].ids;
            q[i].topk_logprobs = o[i].lp;
            q[i].logits = RWKV_LOGITS_LAST;
            q[i].logits_out = o[i].last;
        } else {
            o[i].logits_all = malloc(sizeof(float) * V * (size_t)LEN[i]);
            q[i].logits = RWKV_LOGITS_ALL;
            q[i].logits_out = o[i].logits_all;
        }
    }
    rwkv_error err;
    int rc = rwkv_forward(e, q, N_REQ, &err);
    if (rc != 0)
        test_fail_at(__FILE__, __LINE__, "forward: %s", err.msg);
    for (int i = 0; i < N_REQ; i++) {
        rwkv_state_export(st[i], o[i].state, NULL);
        rwkv_state_free(st[i]);
        free(tok[i]);
    }
    return rc;
}

static int same_floats(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof(float)) == 0;
}

/* o (top-k asked) against ref (every row's logits), bit for bit. */
static void check_against(const rwkv_model *m, const outs *o, const outs *ref, const char *who)
{
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    size_t V = (size_t)mi->vocab_size;
    for (int i = 0; i < N_REQ; i++) {
        size_t n = (size_t)LEN[i], k = (size_t)K[i];
        uint32_t *ids = malloc(sizeof(uint32_t) * n * k);
        float *lp = malloc(sizeof(float) * n * k);
        rwkv_topk_rows(ref[i].logits_all, n, (uint32_t)V, (uint32_t)k, ids, lp);
        int ok_ids = memcmp(ids, o[i].ids, n * k * sizeof(uint32_t)) == 0;
        int ok_lp = same_floats(lp, o[i].lp, n * k);
        free(ids);
        free(lp);
        CHECKF(ok_ids && ok_lp, "%s: request %d: top-k differs from ranking the logits", who, i);
        CHECKF(same_floats(o[i].last, ref[i].logits_all + (n - 1) * V, V),
               "%s: request %d: last logits differ", who, i);
        CHECKF(memcmp(o[i].sur, ref[i].sur, n * sizeof(float)) == 0,
               "%s: request %d: surprisal differs", who, i);
        CHECKF(same_floats(o[i].state, ref[i].state, mi->state_floats),
               "%s: request %d: state differs", who, i);
    }
}

static void check_model(const rwkv_model *m)
{
    rwkv_error err;
    rwkv_engine *e = rwkv_engine_new(m, 2, &err);
    CHECKF(e, "%s", err.msg);
    /* the CPU table without its own ranking: the engine ranks on the host */
    rwkv_backend_ops no_rank = *rwkv_cpu_backend();
    no_rank.topk = 0;
    rwkv_engine *h = rwkv_engine_new_with(m, &no_rank, 0, 2, &err);
    outs ref[N_REQ], native[N_REQ], host[N_REQ];
    int rc = h ? 0 : -1;
    if (rc == 0)
        rc = run(e, m, 0, ref) | run(e, m, 1, native) | run(h, m, 1, host);
    rwkv_engine_free(e);
    rwkv_engine_free(h);
    if (rc == 0) {
        check_against(m, native, ref, "cpu backend");
        if (!test_current_failed)
            check_against(m, host, ref, "host ranking");
    }
    outs_free(ref);
    outs_free(native);
    outs_free(host);
    CHECK(rc == 0);
}

/* The model reads its tensors from the image: free it after the model. */
static rwkv_model *random_v7(void **img)
{
    rwkv_random_model_spec spec = {.n_layer = 2, .n_embd = 128, .head_size = 64,
                                   .vocab_size = 3000, .dtype = RWKV_BF16, .seed = 9};
    size_t len;
    rwkv_error err;
    rwkv_tensor_file *f;
    rwkv_model *m = NULL;
    if (rwkv_random_model_serialize(&spec, img, &len, &err) != 0)
        return NULL;
    if (rwkv_tensor_file_parse("random", *img, len, &f, &err) == 0 &&
        rwkv_model_from_tensors(f, &m, &err) != 0)
        m = NULL;
    return m;
}

static void test_topk_random_v7(void)
{
    void *img = NULL;
    rwkv_model *m = random_v7(&img);
    if (m)
        check_model(m);
    rwkv_model_free(m);
    free(img);
    CHECK(m);
}

static void test_topk_fixture_models(void)
{
    const char *names[] = {"tiny-rwkv-4v0-660K", "tiny-rwkv-6v0-3m"};
    for (size_t i = 0; i < sizeof names / sizeof *names && !test_current_failed; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "models/%s.safetensors", names[i]);
        rwkv_model *m;
        rwkv_error err;
        CHECKF(rwkv_model_load(fixture_path(rel), &m, &err) == 0, "%s", err.msg);
        check_model(m);
        rwkv_model_free(m);
    }
}

static void test_topk_refusals(void)
{
    void *img = NULL;
    rwkv_model *m = random_v7(&img);
    if (!m)
        free(img);
    CHECK(m);
    rwkv_error err;
    rwkv_engine *e = rwkv_engine_new(m, 1, &err);
    rwkv_state *st = rwkv_state_new(m);
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    float *before = malloc(sizeof(float) * mi->state_floats);
    float *after = malloc(sizeof(float) * mi->state_floats);
    rwkv_state_export(st, before, NULL);
    uint32_t tok[2] = {1, 2}, ids[2 * 4];
    float lp[2 * 4];
    rwkv_request q = {.state = st, .tokens = tok, .n_tokens = 2, .topk = mi->vocab_size + 1,
                      .topk_ids = ids, .topk_logprobs = lp, .next_token = -1};
    int too_big = rwkv_forward(e, &q, 1, &err) == -1 && strstr(err.msg, "top-k");
    q.topk = -1;
    int negative = rwkv_forward(e, &q, 1, &err) == -1;
    q.topk = 4;
    q.topk_ids = NULL;
    int no_buf = rwkv_forward(e, &q, 1, &err) == -1 && strstr(err.msg, "buffers");
    rwkv_state_export(st, after, NULL);
    int untouched = memcmp(before, after, sizeof(float) * mi->state_floats) == 0;
    free(before);
    free(after);
    rwkv_state_free(st);
    rwkv_engine_free(e);
    rwkv_model_free(m);
    free(img);
    CHECK(too_big && negative && no_buf && untouched);
}

/* An engine reports the precision its backend says it runs (what the
 * daemon records in checkpoints and names in outputs), not a CPU-only
 * answer: a device backend (the CUDA one runs bf16 by default) reports its
 * own through the table's precision op; a table without one is fp32. */
static rwkv_precision says_bf16(void *ctx)
{
    (void)ctx;
    return RWKV_PRECISION_BF16;
}

static void test_precision_from_backend(void)
{
    void *img = NULL;
    rwkv_model *m = random_v7(&img);
    if (!m)
        free(img);
    CHECK(m);
    rwkv_error err;
    /* an engine keeps a pointer to its table: one table per engine */
    rwkv_backend_ops dev = *rwkv_cpu_backend(), bare = *rwkv_cpu_backend();
    dev.precision = says_bf16;
    bare.precision = NULL;
    rwkv_engine *cpu = rwkv_engine_new(m, 1, &err);
    rwkv_engine *b = rwkv_engine_new_with(m, &dev, 0, 1, &err);
    rwkv_engine *none = rwkv_engine_new_with(m, &bare, 0, 1, &err);
    int made = cpu && b && none;
    int ok = made && rwkv_engine_precision(cpu) == RWKV_PRECISION_FP32 &&
             rwkv_engine_precision(b) == RWKV_PRECISION_BF16 &&
             rwkv_engine_precision(none) == RWKV_PRECISION_FP32;
    rwkv_engine_free(cpu);
    rwkv_engine_free(b);
    rwkv_engine_free(none);
    rwkv_model_free(m);
    free(img);
    CHECKF(made, "engines not made: %s", err.msg);
    CHECK(ok);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_topk_random_v7);
    RUN(test_topk_fixture_models);
    RUN(test_topk_refusals);
    RUN(test_precision_from_backend);
    return test_summary();
}
