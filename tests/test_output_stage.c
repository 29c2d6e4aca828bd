/* test_output_stage.c — the daemon's output stage (daemon/output_stage.h)
 * alone, on synthetic engine results: a document cut into blocks must give
 * the same figures as computing them over the whole document at once —
 *  - surprisal: token i's is the prediction made at token i-1, whichever
 *    block that was in (carried across the cut), NaN for the first token;
 *    the final mean is over every known one;
 *  - embeddings: pooling last = ln_out at the block's last token, pooling
 *    mean = the mean over every token so far, unit length when normalised;
 *  - the request asks the engine for exactly what the options need (top-k
 *    clamped to the vocabulary, no head when no output needs it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "daemon/checkpoint.h"
#include "daemon/output_stage.h"
#include "tests/testutil.h"

#define C 6
#define V 50
#define DOC 23

/* The synthetic engine: ln_out at token t, and the surprisal it predicts
 * for token t+1. */
static float hid(int t, int c)
{
    return (float)sin(0.7 * t + 1.3 * c) + 0.1f * (float)c;
}

static float pred(int t)
{
    return 0.5f + 0.25f * (float)(t % 7);
}

static void test_request_follows_options(void)
{
    rwkvd_doc_opts o;
    rwkvd_doc_opts_default(&o);
    double sum[C] = {0};
    float last[C];
    rwkvd_running run = {.mean_sum = sum, .last_emb = last};
    uint32_t tok[4] = {1, 2, 3, 4};
    rwkvd_block_job j;
    rwkv_request q;
    /* defaults: embedding (last) + surprisal */
    CHECK(rwkvd_block_job_prepare(&o, C, V, NULL, tok, 3, 4, &run, &j, &q) == 0);
    CHECK(q.hidden == RWKV_HIDDEN_LAST && !q.hidden_sum && q.logits == RWKV_LOGITS_NONE &&
          q.topk == 0 && q.surprisal_out && q.next_token == 4 && !j.last && q.n_tokens == 3);
    rwkvd_block_job_free(&j);
    /* mean pooling sums every row; top-k above V is clamped; logits_last */
    o.pooling = RWKVD_POOL_MEAN;
    o.outputs = RWKVD_OUT_EMBEDDING | RWKVD_OUT_TOPK | RWKVD_OUT_LOGITS_LAST;
    o.topk = V + 10;
    CHECK(rwkvd_block_job_prepare(&o, C, V, NULL, tok, 4, -1, &run, &j, &q) == 0);
    CHECK(q.hidden_sum == sum && q.topk == V && j.k == V && q.logits == RWKV_LOGITS_LAST &&
          !q.surprisal_out && q.next_token == -1 && j.last);
    rwkvd_block_job_free(&j);
    /* nothing but surprisal: no pooling sum, no logits */
    o.outputs = RWKVD_OUT_SURPRISAL;
    CHECK(rwkvd_block_job_prepare(&o, C, V, NULL, tok, 4, -1, &run, &j, &q) == 0);
    CHECK(!q.hidden_sum && q.topk == 0 && q.logits == RWKV_LOGITS_NONE && q.surprisal_out &&
          q.next_token == -1);
    rwkvd_block_job_free(&j);
    /* segments score by surprisal: asked for even when the blocks do not carry it */
    o.outputs = RWKVD_OUT_EMBEDDING;
    o.segment = true;
    CHECK(rwkvd_block_job_prepare(&o, C, V, NULL, tok, 3, 4, &run, &j, &q) == 0);
    CHECK(q.surprisal_out && j.sur && q.next_token == 4);
    for (int t = 0; t < 3; t++)
        j.sur[t] = pred(t);
    for (int c = 0; c < C; c++)
        j.emb[c] = hid(2, c);
    float emb[C], sur[3];
    rwkvd_block_out b = {0};
    double add_sum;
    uint64_t add_cnt;
    run.has_carry = true;
    run.carry_surprisal = 7.5f;
    rwkvd_stage_block(&o, C, V, &run, 9, &j, emb, sur, &b, &add_sum, &add_cnt, NULL);
    /* the per-token row is filled for segments.c, but the block carries none */
    CHECK(sur[0] == 7.5f && sur[1] == pred(0) && sur[2] == pred(1));
    CHECK(!b.surprisal && add_cnt == 0 && add_sum == 0);
    rwkvd_stage_advance(&o, C, &j, add_sum, add_cnt, &run);
    CHECK(run.has_carry && run.carry_surprisal == pred(2) && run.surprisal_count == 0);
    rwkvd_block_job_free(&j);
}

/* Runs the document in blocks of bs tokens through the stage with the
 * synthetic engine and checks every figure against the whole-document
 * definition. */
static void run_doc(rwkvd_pooling pooling, bool normalize, int bs)
{
    rwkvd_doc_opts o;
    rwkvd_doc_opts_default(&o);
    o.outputs = RWKVD_OUT_EMBEDDING | RWKVD_OUT_SURPRISAL;
    o.pooling = pooling;
    o.normalize = normalize;
    double sum[C] = {0};
    float last[C] = {0};
    rwkvd_running run = {.mean_sum = sum, .last_emb = last};
    uint32_t tok[DOC];
    for (int t = 0; t < DOC; t++)
        tok[t] = (uint32_t)(t % V);
    uint64_t done = 0, blocks = 0;
    double want_sum = 0;
    uint64_t want_cnt = 0;
    while (done < DOC) {
        int n = DOC - (int)done < bs ? DOC - (int)done : bs;
        int64_t next = done + (uint64_t)n < DOC ? (int64_t)tok[done + (uint64_t)n] : -1;
        rwkvd_block_job j;
        rwkv_request q;
        CHECK(rwkvd_block_job_prepare(&o, C, V, NULL, tok + done, n, next, &run, &j, &q) == 0);
        /* the engine's part */
        for (int t = 0; t < n; t++) {
            int g = (int)done + t;
            if (q.hidden_sum)
                for (int c = 0; c < C; c++)
                    q.hidden_sum[c] += hid(g, c);
            j.sur[t] = (t == n - 1 && next < 0) ? NAN : pred(g);
        }
        for (int c = 0; c < C; c++)
            j.emb[c] = hid((int)done + n - 1, c);
        float emb[C], sur[DOC];
        rwkvd_block_out b = {.block = blocks, .tok_start = done, .tok_end = done + (uint64_t)n};
        double add_sum;
        uint64_t add_cnt;
        rwkvd_stage_block(&o, C, V, &run, done, &j, emb, sur, &b, &add_sum, &add_cnt, NULL);
        for (int t = 0; t < n; t++) {
            int g = (int)done + t;
            float want = g == 0 ? NAN : pred(g - 1);
            CHECKF(isnan(want) ? isnan(sur[t]) : sur[t] == want,
                   "bs %d token %d: surprisal %g, want %g", bs, g, (double)sur[t], (double)want);
            if (!isnan(want))
                want_sum += want, want_cnt++;
        }
        /* the embedding of the document so far */
        int upto = (int)done + n;
        double ref[C], norm = 0;
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int t = 0; t < upto; t++)
                s += hid(t, c);
            ref[c] = pooling == RWKVD_POOL_MEAN ? s / upto : hid(upto - 1, c);
            norm += ref[c] * ref[c];
        }
        for (int c = 0; c < C; c++) {
            double w = normalize ? ref[c] / sqrt(norm) : ref[c];
            CHECKF(fabs(emb[c] - w) < 1e-5, "bs %d block %llu dim %d: %g, want %g", bs,
                   (unsigned long long)blocks, c, (double)emb[c], w);
        }
        CHECK(b.embedding == emb && b.surprisal == sur && b.outputs == o.outputs);
        rwkvd_stage_advance(&o, C, &j, add_sum, add_cnt, &run);
        rwkvd_block_job_free(&j);
        done += (uint64_t)n;
        blocks++;
    }
    float emb[C];
    rwkvd_final_out f;
    rwkvd_stage_final(&o, C, &run, done, blocks, emb, &f, NULL, NULL, 0);
    CHECK(f.tokens == DOC && f.blocks == blocks && f.embedding == emb);
    CHECK(f.has_mean_surprisal && want_cnt == DOC - 1);
    CHECKF(fabs(f.mean_surprisal - want_sum / (double)want_cnt) < 1e-9, "mean %g, want %g",
           f.mean_surprisal, want_sum / (double)want_cnt);
}

static void test_blocks_equal_whole_document(void)
{
    int sizes[] = {1, 2, 5, 22, 23, 64};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes && !test_current_failed; i++) {
        run_doc(RWKVD_POOL_LAST, false, sizes[i]);
        run_doc(RWKVD_POOL_LAST, true, sizes[i]);
        run_doc(RWKVD_POOL_MEAN, false, sizes[i]);
        run_doc(RWKVD_POOL_MEAN, true, sizes[i]);
    }
}

static void test_empty_document_final(void)
{
    rwkvd_doc_opts o;
    rwkvd_doc_opts_default(&o);
    double sum[C] = {0};
    float last[C] = {0}, emb[C];
    rwkvd_running run = {.mean_sum = sum, .last_emb = last};
    rwkvd_final_out f;
    rwkvd_stage_final(&o, C, &run, 0, 0, emb, &f, NULL, NULL, 0);
    CHECK(f.tokens == 0 && !f.embedding && !f.has_mean_surprisal);
}

/* The field names of a msgpack map, comma-separated. */
static void map_keys(const msgpack_object *m, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; m->type == MSGPACK_OBJECT_MAP && i < m->via.map.size && n + 40 < len; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        n += (size_t)snprintf(buf + n, len - n, "%s%.*s", i ? "," : "", (int)k->via.str.size,
                              k->via.str.ptr);
    }
}

/* The str value of key in map m, as a C string in buf ("" when absent). */
static const char *map_str(const msgpack_object *m, const char *key, char *buf, size_t len)
{
    buf[0] = '\0';
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        if (k->via.str.size == strlen(key) && !memcmp(k->via.str.ptr, key, strlen(key)) &&
            v->type == MSGPACK_OBJECT_STR)
            snprintf(buf, len, "%.*s", (int)v->via.str.size, v->via.str.ptr);
    }
    return buf;
}

/* Every output names the precision its document's state was computed in
 * (PROTOCOL.md §4.1), right after normalize: each code's name, "mixed" for
 * a document continued in another precision, in block and final alike. */
static void test_head_names_precision(void)
{
    rwkvd_out_head tmpl;
    memset(&tmpl, 0, sizeof tmpl);
    tmpl.dim = C;
    memset(tmpl.model_sha256, 0x5a, 32);
    rwkvd_doc_opts o;
    rwkvd_doc_opts_default(&o);
    o.pooling = RWKVD_POOL_MEAN;
    o.normalize = false;
    static const char *const want[] = {"fp32", "bf16", "int8", "mixed"};
    float emb[C] = {1, 2, 3, 4, 5, 6};
    for (uint8_t p = 0; p <= RWKVD_CKPT_PRECISION_MIXED; p++) {
        rwkvd_out_head h = rwkvd_stage_head(&tmpl, (const uint8_t *)"doc-p", 5, 2, &o, p);
        CHECKF(h.precision && strcmp(h.precision, want[p]) == 0, "code %u: %s", p,
               h.precision ? h.precision : "(null)");
        CHECK(h.doc_len == 5 && !memcmp(h.doc, "doc-p", 5) && h.incarnation == 2 &&
              h.pooling == RWKVD_POOL_MEAN && !h.normalize && h.v == 1 && h.dim == C &&
              h.model_sha256[31] == 0x5a);
        rwkvd_block_out b = {.block = 0, .tok_start = 0, .tok_end = 4,
                             .outputs = RWKVD_OUT_EMBEDDING, .embedding = emb};
        rwkvd_final_out f = {.tokens = 4, .blocks = 1, .outputs = RWKVD_OUT_EMBEDDING,
                             .embedding = emb};
        for (int final = 0; final < 2; final++) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            rwkv_error err;
            int rc = final ? rwkvd_encode_final(&sb, &h, &f, &err)
                           : rwkvd_encode_block(&sb, &h, &b, &err);
            CHECKF(rc == 0, "%s", err.msg);
            msgpack_unpacked u;
            msgpack_unpacked_init(&u);
            CHECK(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
            char k[256], v[16];
            map_keys(&u.data, k, sizeof k);
            const char *expect = final ? "v,type,doc,inc,tokens,blocks,model,dim,pooling,"
                                         "normalize,precision,embedding"
                                       : "v,type,doc,inc,block,tok_start,tok_end,model,dim,"
                                         "pooling,normalize,precision,embedding";
            CHECKF(strcmp(k, expect) == 0, "%s", k);
            CHECKF(strcmp(map_str(&u.data, "precision", v, sizeof v), want[p]) == 0,
                   "precision %s, want %s", v, want[p]);
            msgpack_unpacked_destroy(&u);
            msgpack_sbuffer_destroy(&sb);
        }
    }
    /* an EmbeddingRWKV document says v 2; an unknown code is not passed off
     * as a precision */
    o.pooling = RWKVD_POOL_EOS;
    rwkvd_out_head h = rwkvd_stage_head(&tmpl, (const uint8_t *)"e", 1, 0, &o, 1);
    CHECK(h.v == 2 && h.pooling == RWKVD_POOL_EOS && strcmp(h.precision, "bf16") == 0);
    h = rwkvd_stage_head(&tmpl, (const uint8_t *)"e", 1, 0, &o, 4);
    CHECK(strcmp(h.precision, "?") == 0);
}

static void test_l2_normalize(void)
{
    float v[3] = {3, 0, 4}, z[2] = {0, 0};
    rwkvd_l2_normalize(v, 3);
    CHECK(fabsf(v[0] - 0.6f) < 1e-7f && v[1] == 0 && fabsf(v[2] - 0.8f) < 1e-7f);
    rwkvd_l2_normalize(z, 2);
    CHECK(z[0] == 0 && z[1] == 0);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_request_follows_options);
    RUN(test_blocks_equal_whole_document);
    RUN(test_empty_document_final);
    RUN(test_head_names_precision);
    RUN(test_l2_normalize);
    return test_summary();
}
