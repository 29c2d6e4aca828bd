/* test_embedding_golden.c — EmbeddingRWKV (core/embedding.h) against the
 * official composition's outputs (../shared/fixtures/embedding-rwkv), with
 * the manifest's bounds, for every input:
 *  - the model loads as EmbeddingRWKV (no LM head, heads cls/sts/retr);
 *  - the text inputs tokenize (World vocab + EOS 65535) to tokens.i32;
 *  - one shot: ln_out at every EOS position, the EOS count, pooled, the
 *    three task heads, the final state;
 *  - the same fed in chunks at the manifest's split points, in random
 *    block sizes, and token by token (running EOS sum carried);
 *  - a backend without its own EOS sums (the engine pools on the host)
 *    gives bit-identical sums, and the hidden LAST/MEAN it was asked for;
 *  - refusals: a language model asked for a task, an EOS id outside the
 *    vocabulary, logits/top-k/surprisal from a model without an LM head, a
 *    document without EOS (an error, never NaN).
 * Prints the worst measured |Δ| / bound per input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/embedding.h"
#include "core/engine/engine_internal.h"
#include "core/forward.h"
#include "core/model.h"
#include "core/state.h"
#include "core/tokenizer.h"
#include "tests/support/embed_fixture.h"
#include "tests/testutil.h"

static embed_fixture fx;
static rwkv_model *model;
static rwkv_engine *engine;

typedef struct {
    double sum[4096];
    int64_t count;
    float *hidden; /* [T][C] */
    float *state;
} run_out;

static void run_free(run_out *o)
{
    free(o->hidden);
    free(o->state);
    o->hidden = o->state = NULL;
}

/* Runs x's tokens in blocks cut at cuts[0..n_cuts) (ascending, inside
 * (0, T)), with hidden ALL and the EOS sum. */
static int run_cuts(rwkv_engine *e, const embed_input *x, const size_t *cuts, size_t n_cuts,
                    run_out *o)
{
    size_t C = (size_t)fx.C;
    memset(o->sum, 0, sizeof o->sum);
    o->count = 0;
    o->hidden = malloc(x->T * C * sizeof(float));
    o->state = malloc(fx.state_floats * sizeof(float));
    rwkv_state *st = rwkv_state_new(model);
    rwkv_error err = {{0}};
    int rc = -1;
    if (!o->hidden || !o->state || !st)
        goto out;
    size_t from = 0;
    for (size_t k = 0; k <= n_cuts; k++) {
        size_t to = k < n_cuts ? cuts[k] : x->T;
        rwkv_request q = {.state = st, .tokens = x->tokens + from, .n_tokens = (int)(to - from),
                          .hidden = RWKV_HIDDEN_ALL, .hidden_out = o->hidden + from * C,
                          .next_token = -1, .eos_sum = o->sum, .eos_count = &o->count,
                          .eos_id = fx.eos};
        if (rwkv_forward(e, &q, 1, &err) != 0) {
            test_fail_at(__FILE__, __LINE__, "%s: %s", x->name, err.msg);
            goto out;
        }
        from = to;
    }
    if (rwkv_state_export(st, o->state, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "%s", err.msg);
        goto out;
    }
    rc = 0;
out:
    rwkv_state_free(st);
    return rc;
}

/* Everything the fixture holds, against run o; *worst gets the largest
 * |Δ| / bound seen. */
static int check_run(const embed_input *x, const run_out *o, const char *how, double *worst)
{
    size_t C = (size_t)fx.C;
    char what[160];
    double r;
    *worst = 0;
    if (o->count != (int64_t)x->E) {
        test_fail_at(__FILE__, __LINE__, "%s %s: %lld EOS rows pooled, expected %zu", x->name,
                     how, (long long)o->count, x->E);
        return -1;
    }
    for (size_t i = 0; i < x->E; i++) {
        snprintf(what, sizeof what, "%s %s: ln_out at EOS position %d", x->name, how,
                 x->eos_pos[i]);
        if (embed_check(o->hidden + (size_t)x->eos_pos[i] * C, x->hidden_eos + i * C, C,
                        x->bound_hidden, what, &r) != 0)
            return -1;
        *worst = fmax(*worst, r);
    }
    for (int t = 0; t < RWKV_TASK_COUNT; t++) {
        float pooled[4096], emb[4096];
        rwkv_error err = {{0}};
        if (rwkv_embed_finish(model, (rwkv_embed_task)t, o->sum, o->count, 0, pooled, emb,
                              &err) != 0) {
            test_fail_at(__FILE__, __LINE__, "%s: %s", x->name, err.msg);
            return -1;
        }
        snprintf(what, sizeof what, "%s %s: pooled", x->name, how);
        if (embed_check(pooled, x->pooled, C, x->bound_pooled, what, &r) != 0)
            return -1;
        *worst = fmax(*worst, r);
        snprintf(what, sizeof what, "%s %s: %s embedding", x->name, how,
                 rwkv_embed_task_name((rwkv_embed_task)t));
        if (embed_check(emb, x->emb[t], C, x->bound_emb[t], what, &r) != 0)
            return -1;
        *worst = fmax(*worst, r);
    }
    snprintf(what, sizeof what, "%s %s", x->name, how);
    return embed_check_state(&fx, o->state, x->state_final, what);
}

static void test_loads_as_embedding_rwkv(void)
{
    const rwkv_model_info *mi = rwkv_model_get_info(model);
    CHECK(mi->generation == RWKV_GEN_V7);
    CHECK(mi->n_layer == 4 && mi->n_embd == fx.C && mi->vocab_size == 65536);
    CHECK(mi->n_head == 1 && mi->head_size == 64 && mi->ffn_dim == 256);
    CHECK(!mi->has_lm_head);
    CHECKF(mi->embed_tasks == 7u, "heads bitmask %u", mi->embed_tasks);
    CHECK(mi->state_floats == fx.state_floats);
    CHECKF(mi->n_params == 4482368, "%zu parameters", mi->n_params);
    rwkv_embed_task t;
    CHECK(rwkv_embed_task_parse("retrieval", &t) == 0 && t == RWKV_TASK_RETRIEVAL);
    CHECK(rwkv_embed_task_parse("similarity", &t) == 0 && t == RWKV_TASK_SIMILARITY);
    CHECK(rwkv_embed_task_parse("classification", &t) == 0 && t == RWKV_TASK_CLASSIFICATION);
    CHECK(rwkv_embed_task_parse("cls", &t) == 0 && t == RWKV_TASK_CLASSIFICATION);
    CHECK(rwkv_embed_task_parse("Retrieval", &t) == -1 && rwkv_embed_task_parse("", &t) == -1);
}

static void test_tokens_and_eos_positions(void)
{
    rwkv_tokenizer *tok = NULL;
    rwkv_error err = {{0}};
    CHECKF(rwkv_tokenizer_load(fixture_path("tokenizer/rwkv_vocab_v20230424.txt"), &tok, &err) ==
               0,
           "%s", err.msg);
    int texts = 0;
    for (size_t i = 0; i < fx.n; i++) {
        const embed_input *x = &fx.in[i];
        size_t e = 0;
        for (size_t t = 0; t < x->T; t++)
            if (x->tokens[t] == fx.eos) {
                if (e >= x->E || x->eos_pos[e] != (int32_t)t)
                    break;
                e++;
            }
        if (e != x->E) {
            test_fail_at(__FILE__, __LINE__, "%s: EOS positions differ from the fixture",
                         x->name);
            break;
        }
        if (!x->text_file[0])
            continue;
        size_t len;
        char *text = fixture_read(x->text_file, &len);
        rwkv_ids ids = {0};
        int ok = text && rwkv_tokenizer_encode(tok, text, len, &ids, &err) == 0 &&
                 rwkv_ids_push(&ids, RWKV_EMBED_EOS, &err) == 0 && ids.n == x->T &&
                 memcmp(ids.v, x->tokens, x->T * 4) == 0;
        free(text);
        rwkv_ids_free(&ids);
        if (!ok) {
            test_fail_at(__FILE__, __LINE__, "%s: the World tokenizer + EOS does not give "
                                             "tokens.i32",
                         x->name);
            break;
        }
        texts++;
    }
    rwkv_tokenizer_free(tok);
    CHECKF(texts == 6, "%d text inputs", texts);
}

static void test_golden_one_shot(void)
{
    for (size_t i = 0; i < fx.n; i++) {
        run_out o = {0};
        double w = 0;
        int rc = run_cuts(engine, &fx.in[i], NULL, 0, &o);
        if (rc == 0)
            rc = check_run(&fx.in[i], &o, "one shot", &w);
        run_free(&o);
        CHECK(rc == 0);
        printf("  %-22s T=%-5zu EOS=%-3zu worst |d|/bound %.3g\n", fx.in[i].name, fx.in[i].T,
               fx.in[i].E, w);
    }
}

static void test_golden_chunked(void)
{
    uint64_t seed = 11;
    for (size_t i = 0; i < fx.n; i++) {
        const embed_input *x = &fx.in[i];
        run_out o = {0};
        double w;
        int rc = run_cuts(engine, x, x->split, 2, &o);
        if (rc == 0)
            rc = check_run(x, &o, "split at the manifest's points", &w);
        run_free(&o);
        CHECK(rc == 0);
        /* random block sizes 1..300 */
        size_t cuts[4096], n = 0;
        for (size_t at = 1 + test_rand(&seed) % 300; at < x->T && n < 4096;
             at += 1 + test_rand(&seed) % 300)
            cuts[n++] = at;
        rc = run_cuts(engine, x, cuts, n, &o);
        if (rc == 0)
            rc = check_run(x, &o, "random blocks", &w);
        run_free(&o);
        CHECK(rc == 0);
    }
}

static void test_golden_token_by_token(void)
{
    for (size_t i = 0; i < fx.n; i++) {
        const embed_input *x = &fx.in[i];
        if (x->T > 1500) /* the two long inputs are covered in blocks */
            continue;
        size_t *cuts = malloc(sizeof *cuts * x->T);
        CHECK(cuts);
        for (size_t t = 1; t < x->T; t++)
            cuts[t - 1] = t;
        run_out o = {0};
        double w;
        int rc = run_cuts(engine, x, cuts, x->T - 1, &o);
        free(cuts);
        if (rc == 0)
            rc = check_run(x, &o, "token by token", &w);
        run_free(&o);
        CHECK(rc == 0);
    }
}

/* A backend without EOS sums: the engine pools the hidden rows itself. */
static void test_host_pooling_is_identical(void)
{
    rwkv_backend_ops no_eos = *rwkv_cpu_backend();
    no_eos.eos_sum = 0;
    rwkv_error err = {{0}};
    rwkv_engine *h = rwkv_engine_new_with(model, &no_eos, 0, 2, &err);
    CHECKF(h, "%s", err.msg);
    const embed_input *x = NULL;
    for (size_t i = 0; i < fx.n; i++)
        if (!strcmp(fx.in[i].name, "multi_eos_mteb_short"))
            x = &fx.in[i];
    int ok = x != NULL;
    for (int mode = RWKV_HIDDEN_NONE; ok && mode <= RWKV_HIDDEN_MEAN; mode++) {
        size_t C = (size_t)fx.C;
        double s[2][64] = {{0}};
        int64_t n[2] = {0, 0};
        float hid[2][64], *all[2] = {malloc(x->T * C * 4), malloc(x->T * C * 4)};
        rwkv_engine *es[2] = {engine, h};
        for (int k = 0; k < 2 && ok; k++) {
            rwkv_state *st = rwkv_state_new(model);
            rwkv_request q = {.state = st, .tokens = x->tokens, .n_tokens = (int)x->T,
                              .hidden = (rwkv_hidden_mode)mode,
                              .hidden_out = mode == RWKV_HIDDEN_ALL ? all[k] : hid[k],
                              .next_token = -1, .eos_sum = s[k], .eos_count = &n[k],
                              .eos_id = fx.eos};
            ok = all[k] && rwkv_forward(es[k], &q, 1, &err) == 0;
            rwkv_state_free(st);
        }
        ok = ok && n[0] == (int64_t)x->E && n[1] == n[0] && !memcmp(s[0], s[1], sizeof s[0]);
        if (ok && (mode == RWKV_HIDDEN_LAST || mode == RWKV_HIDDEN_MEAN))
            ok = !memcmp(hid[0], hid[1], C * 4);
        if (ok && mode == RWKV_HIDDEN_ALL)
            ok = !memcmp(all[0], all[1], x->T * C * 4);
        free(all[0]);
        free(all[1]);
        if (!ok)
            test_fail_at(__FILE__, __LINE__, "host pooling differs (hidden mode %d) %s", mode,
                         err.msg);
    }
    rwkv_engine_free(h);
}

static void test_refusals(void)
{
    rwkv_error err = {{0}};
    float pooled[64], emb[64];
    double sum[64] = {0};
    /* a language model asked for a task */
    rwkv_model *lm = NULL;
    CHECKF(rwkv_model_load(fixture_path("models/tiny-rwkv-7v0-834K.pth"), &lm, &err) == 0, "%s",
           err.msg);
    CHECK(rwkv_model_get_info(lm)->has_lm_head && !rwkv_model_get_info(lm)->embed_tasks);
    int rc = rwkv_embed_check(lm, RWKV_TASK_RETRIEVAL, 0, &err);
    int says = strstr(err.msg, "not an EmbeddingRWKV model") != NULL;
    double one[1024] = {0};
    int rc2 = rwkv_embed_finish(lm, RWKV_TASK_RETRIEVAL, one, 1, 0, NULL, emb, &err);
    rwkv_model_free(lm);
    CHECKF(rc == -1 && says && rc2 == -1, "%s", err.msg);
    /* EOS id outside the vocabulary */
    CHECK(rwkv_embed_check(model, RWKV_TASK_RETRIEVAL, 65536, &err) == -1);
    CHECKF(strstr(err.msg, "outside the model's vocabulary"), "%s", err.msg);
    CHECK(rwkv_embed_check(model, RWKV_TASK_SIMILARITY, RWKV_EMBED_EOS, &err) == 0);
    rwkv_state *st = rwkv_state_new(model);
    float before[16896], after[16896];
    CHECK(rwkv_state_export(st, before, &err) == 0);
    uint32_t toks[3] = {5, 6, RWKV_EMBED_EOS};
    int64_t cnt = 0;
    rwkv_request q = {.state = st, .tokens = toks, .n_tokens = 3, .next_token = -1,
                      .eos_sum = sum, .eos_count = &cnt, .eos_id = 65536};
    CHECK(rwkv_forward(engine, &q, 1, &err) == -1 && strstr(err.msg, "EOS id 65536"));
    q.eos_id = RWKV_EMBED_EOS;
    q.eos_count = NULL;
    CHECK(rwkv_forward(engine, &q, 1, &err) == -1);
    q.eos_count = &cnt;
    /* no LM head: logits, top-k and surprisal are refused */
    float lg[65536], surp[3];
    uint32_t ids[3];
    rwkv_request bad[3] = {q, q, q};
    bad[0].logits = RWKV_LOGITS_LAST;
    bad[0].logits_out = lg;
    bad[1].topk = 1;
    bad[1].topk_ids = ids;
    bad[1].topk_logprobs = surp;
    bad[2].surprisal_out = surp;
    for (int k = 0; k < 3; k++) {
        CHECK(rwkv_forward(engine, &bad[k], 1, &err) == -1);
        CHECKF(strstr(err.msg, "LM head"), "%s", err.msg);
    }
    CHECK(rwkv_state_export(st, after, &err) == 0);
    CHECK(!memcmp(before, after, sizeof before) && cnt == 0);
    /* a document without EOS: an error, not NaN */
    toks[2] = 7;
    CHECK(rwkv_forward(engine, &q, 1, &err) == 0 && cnt == 0);
    CHECK(rwkv_embed_finish(model, RWKV_TASK_RETRIEVAL, sum, cnt, 0, pooled, emb, &err) == -1);
    CHECKF(strstr(err.msg, "no EOS token"), "%s", err.msg);
    rwkv_state_free(st);
    /* a checkpoint with some heads only (the fuzz corpus's tiny one: sts and
     * retr) refuses the task it has no head for */
    rwkv_model *part = NULL;
    CHECKF(rwkv_model_load("tests/fuzz/corpus/model/tiny-embedding-rwkv7.safetensors", &part,
                           &err) == 0,
           "%s", err.msg);
    CHECK(rwkv_model_get_info(part)->embed_tasks == 3u);
    int no_cls = rwkv_embed_check(part, RWKV_TASK_CLASSIFICATION, 1, &err) == -1 &&
                 strstr(err.msg, "no classification head");
    int sts_ok = rwkv_embed_check(part, RWKV_TASK_SIMILARITY, 1, &err) == 0;
    rwkv_model_free(part);
    CHECKF(no_cls && sts_ok, "%s", err.msg);
    /* a device engine for a model without an LM head says why */
    rwkv_engine *g = rwkv_engine_new_on(model, "cuda", 1, &err);
    CHECK(!g);
}

static void test_normalize(void)
{
    const embed_input *x = &fx.in[0];
    run_out o = {0};
    int rc = run_cuts(engine, x, NULL, 0, &o);
    float emb[64], unit[64];
    rwkv_error err = {{0}};
    rc = rc || rwkv_embed_finish(model, RWKV_TASK_RETRIEVAL, o.sum, o.count, 0, NULL, emb, &err) ||
         rwkv_embed_finish(model, RWKV_TASK_RETRIEVAL, o.sum, o.count, 1, NULL, unit, &err);
    run_free(&o);
    CHECKF(rc == 0, "%s", err.msg);
    double n2 = 0, n1 = 0;
    for (int i = 0; i < fx.C; i++) {
        n2 += (double)unit[i] * unit[i];
        n1 += (double)emb[i] * emb[i];
    }
    CHECKF(fabs(n2 - 1) < 1e-5, "norm^2 %.8f", n2);
    for (int i = 0; i < fx.C; i++)
        CHECK(fabs(unit[i] - emb[i] / sqrt(n1)) < 1e-6);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    rwkv_error err = {{0}};
    if (embed_fixture_load(&fx) != 0 ||
        rwkv_model_load(fixture_path(EMBED_FIXTURE_MODEL), &model, &err) != 0 ||
        !(engine = rwkv_engine_new(model, 2, &err))) {
        printf("FAIL: setup: %s\n", err.msg);
        return 1;
    }
    RUN(test_loads_as_embedding_rwkv);
    RUN(test_tokens_and_eos_positions);
    RUN(test_golden_one_shot);
    RUN(test_golden_chunked);
    RUN(test_golden_token_by_token);
    RUN(test_host_pooling_is_identical);
    RUN(test_refusals);
    RUN(test_normalize);
    rwkv_engine_free(engine);
    rwkv_model_free(model);
    embed_fixture_free(&fx);
    return test_summary();
}
