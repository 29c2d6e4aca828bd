/* test_rwkv7_batch.c — batch and thread invariance of the engine, bit for
 * bit: a request's outputs and final state do not depend on which other
 * requests share its batch, where it sits in the batch, or how many threads
 * run it (forward.h promises this for requests of more than 4 tokens; the
 * daemon's byte-identical re-emission after a crash stands on it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/forward.h"
#include "core/model.h"
#include "core/random_model.h"
#include "core/state.h"
#include "tests/testutil.h"

typedef struct {
    float *logits, *hidden, *sur, *state;
} outs;

static void outs_free(outs *o)
{
    free(o->logits);
    free(o->hidden);
    free(o->sur);
    free(o->state);
}

/* Runs the requests described by (start, len) over `tokens` in one batch,
 * each from a state whose values depend on its index; fills o[i]. */
static int run(rwkv_engine *e, const rwkv_model *m, const uint32_t *tokens, const int *start,
               const int *len, int n, outs *o)
{
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    size_t V = (size_t)mi->vocab_size, C = (size_t)mi->n_embd, S = mi->state_floats;
    rwkv_request q[8];
    rwkv_state *st[8];
    for (int i = 0; i < n; i++) {
        st[i] = rwkv_state_new(m);
        /* a non-trivial starting state: run a few tokens first */
        uint32_t warm[6] = {1, (uint32_t)(start[i] % 7), 3, 4, 5, 6};
        rwkv_request w = {.state = st[i], .tokens = warm, .n_tokens = 6};
        rwkv_error err;
        if (rwkv_forward(e, &w, 1, &err) != 0)
            return -1;
        o[i].logits = malloc(sizeof(float) * V * (size_t)len[i]);
        o[i].hidden = malloc(sizeof(float) * C * (size_t)len[i]);
        o[i].sur = malloc(sizeof(float) * (size_t)len[i]);
        o[i].state = malloc(sizeof(float) * S);
        q[i] = (rwkv_request){.state = st[i], .tokens = tokens + start[i], .n_tokens = len[i],
                              .logits = RWKV_LOGITS_ALL, .logits_out = o[i].logits,
                              .hidden = RWKV_HIDDEN_ALL, .hidden_out = o[i].hidden,
                              .surprisal_out = o[i].sur, .next_token = 7};
    }
    rwkv_error err;
    int rc = rwkv_forward(e, q, n, &err);
    if (rc != 0)
        test_fail_at(__FILE__, __LINE__, "forward: %s", err.msg);
    for (int i = 0; i < n; i++) {
        rwkv_state_export(st[i], o[i].state, NULL);
        rwkv_state_free(st[i]);
    }
    return rc;
}

/* 1 when identical; otherwise 0 and a note naming the first output that
 * differs. */
static int same(const outs *a, const outs *b, const rwkv_model *m, int len)
{
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    size_t V = (size_t)mi->vocab_size, C = (size_t)mi->n_embd;
    const char *what = NULL;
    if (memcmp(a->hidden, b->hidden, sizeof(float) * C * (size_t)len))
        what = "hidden";
    else if (memcmp(a->logits, b->logits, sizeof(float) * V * (size_t)len))
        what = "logits";
    else if (memcmp(a->sur, b->sur, sizeof(float) * (size_t)len))
        what = "surprisal";
    else if (memcmp(a->state, b->state, sizeof(float) * mi->state_floats))
        what = "state";
    if (what)
        printf("# %d-token request: %s differs\n", len, what);
    return what == NULL;
}

static void check_model(rwkv_model *m)
{
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    enum { NT = 3000 };
    uint32_t *tokens = malloc(sizeof *tokens * NT);
    uint64_t seed = 99;
    for (int i = 0; i < NT; i++)
        tokens[i] = (uint32_t)(test_rand(&seed) % (uint64_t)mi->vocab_size);
    /* lengths around the pass (1024) and head-chunk (128) boundaries */
    int start[5] = {0, 11, 400, 1200, 17}, len[5] = {5, 37, 256, 1100, 1024};
    rwkv_error err;
    rwkv_engine *e1 = rwkv_engine_new(m, 1, &err), *e2 = rwkv_engine_new(m, 2, &err);
    CHECK(e1 && e2);
    outs alone[5], batch[5], batch2[5], rev[5];
    int ok = 1;
    for (int i = 0; i < 5 && ok; i++)
        ok = run(e1, m, tokens, &start[i], &len[i], 1, &alone[i]) == 0;
    ok = ok && run(e2, m, tokens, start, len, 5, batch) == 0;
    int rs[5], rl[5];
    for (int i = 0; i < 5; i++)
        rs[i] = start[4 - i], rl[i] = len[4 - i];
    ok = ok && run(e2, m, tokens, rs, rl, 5, rev) == 0;
    ok = ok && run(e1, m, tokens, start + 1, len + 1, 3, batch2) == 0;
    int bad = -1;
    for (int i = 0; ok && i < 5; i++) {
        if (!same(&alone[i], &batch[i], m, len[i]) || !same(&alone[i], &rev[4 - i], m, len[i]))
            bad = i;
        if (i >= 1 && i <= 3 && !same(&alone[i], &batch2[i - 1], m, len[i]))
            bad = i;
    }
    for (int i = 0; i < 5; i++) {
        outs_free(&alone[i]);
        outs_free(&batch[i]);
        outs_free(&rev[i]);
        if (i < 3)
            outs_free(&batch2[i]);
    }
    free(tokens);
    rwkv_engine_free(e1);
    rwkv_engine_free(e2);
    CHECK(ok);
    CHECKF(bad < 0, "request %d (%d tokens) differs between alone and batched", bad,
           bad >= 0 ? len[bad] : 0);
}

static void test_fixture_model_batch_invariant(void)
{
    rwkv_model *m;
    rwkv_error err;
    CHECKF(rwkv_model_load(fixture_path("models/tiny-rwkv-7v0-834K.bf16.safetensors"), &m, &err) ==
               0,
           "%s", err.msg);
    check_model(m);
    rwkv_model_free(m);
}

static void test_random_model_batch_invariant(void)
{
    rwkv_random_model_spec spec = {.n_layer = 2, .n_embd = 256, .head_size = 64,
                                   .vocab_size = 2000, .dtype = RWKV_BF16, .seed = 5};
    void *img;
    size_t len;
    rwkv_error err;
    CHECKF(rwkv_random_model_serialize(&spec, &img, &len, &err) == 0, "%s", err.msg);
    rwkv_tensor_file *f;
    rwkv_model *m;
    int rc = rwkv_tensor_file_parse("random", img, len, &f, &err);
    if (rc == 0)
        rc = rwkv_model_from_tensors(f, &m, &err);
    if (rc == 0) {
        check_model(m);
        rwkv_model_free(m);
    }
    free(img);
    CHECKF(rc == 0, "%s", err.msg);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_fixture_model_batch_invariant);
    RUN(test_random_model_batch_invariant);
    return test_summary();
}
