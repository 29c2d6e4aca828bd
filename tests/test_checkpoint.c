/* test_checkpoint.c — the snapshot format (daemon/checkpoint.h): exact round
 * trips, refusal of every flipped byte and every truncation, hand-made bad
 * headers and payloads (valid checksums, wrong contents), other-model
 * refusal, and the writer refusing what the reader would refuse.
 * The state directory (ckpt_store.h) is tested in test_checkpoint_store.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "core/crc32.h"
#include "daemon/checkpoint.h"
#include "tests/testutil.h"

#define C 8
#define V 16
#define S 40

static rwkvd_model_id model;
static double mean_sum[C];
static float last_emb[C], state[S];
static uint32_t ptoks[3] = {1, 15, 7};
static const uint8_t pbytes[5] = {0xe2, 0x82, 0x00, 0xff, 'a'};

static void init_model(rwkvd_model_id *m)
{
    memset(m, 0, sizeof *m);
    for (int i = 0; i < 32; i++) {
        m->model_sha256[i] = (uint8_t)(i * 11 + 3);
        m->tokenizer_sha256[i] = (uint8_t)(i * 5 + 1);
    }
    m->generation = 70;
    m->n_layer = 2;
    m->n_embd = C;
    m->vocab = V;
    m->state_floats = S;
}

/* A full, consistent snapshot of an unfinished document mid-block. */
static void full_ckpt(rwkvd_ckpt *ck)
{
    uint64_t seed = 42;
    init_model(&model);
    for (int i = 0; i < C; i++) {
        mean_sum[i] = (double)(int64_t)test_rand(&seed) / 1e15;
        last_emb[i] = (float)((double)(test_rand(&seed) >> 11) / 9007199254740992.0 - 0.5);
    }
    for (int i = 0; i < S; i++)
        state[i] = (float)((double)(test_rand(&seed) >> 11) / 9007199254740992.0 * 8 - 4);
    memset(ck, 0, sizeof *ck);
    ck->model = model;
    memcpy(ck->doc, "doc/../\x00\xff", 10);
    ck->doc_len = 10;
    ck->next_seq = 17;
    ck->blocks_done = 5;
    ck->block_size = 4;
    ck->tokens_done = 20;
    ck->input = RWKVD_INPUT_BYTES;
    rwkvd_doc_opts_default(&ck->opts);
    ck->opts.pooling = RWKVD_POOL_MEAN;
    ck->opts.outputs = RWKVD_OUT_ALL;
    ck->opts.topk = 9;
    ck->opts.normalize = false;
    ck->pending_bytes = pbytes;
    ck->n_pending_bytes = sizeof pbytes;
    ck->pending_tokens = ptoks;
    ck->n_pending_tokens = 3;
    ck->mean_sum = mean_sum;
    ck->mean_count = 20;
    ck->last_emb = last_emb;
    ck->surprisal_sum = 31.25;
    ck->surprisal_count = 19;
    ck->has_carry = true;
    ck->carry_surprisal = 2.75f;
    ck->state = state;
}

static uint8_t *enc(const rwkvd_ckpt *ck, size_t *n)
{
    uint8_t *b = NULL;
    rwkv_error err;
    if (rwkvd_ckpt_encode(ck, 3, &b, n, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "encode: %s", err.msg);
        return NULL;
    }
    return b;
}

static int same_ckpt(const rwkvd_ckpt *a, const rwkvd_ckpt *b)
{
    if (memcmp(&a->model, &b->model, sizeof a->model) || a->doc_len != b->doc_len ||
        memcmp(a->doc, b->doc, a->doc_len) || a->next_seq != b->next_seq ||
        a->blocks_done != b->blocks_done || a->tokens_done != b->tokens_done ||
        a->block_size != b->block_size || a->finished != b->finished ||
        a->eof != b->eof || a->input != b->input ||
        a->opts.outputs != b->opts.outputs || a->opts.pooling != b->opts.pooling ||
        a->opts.normalize != b->opts.normalize || a->opts.topk != b->opts.topk ||
        a->n_pending_bytes != b->n_pending_bytes || a->n_pending_tokens != b->n_pending_tokens ||
        a->mean_count != b->mean_count || a->surprisal_count != b->surprisal_count ||
        memcmp(&a->surprisal_sum, &b->surprisal_sum, 8))
        return 0;
    if ((a->n_pending_bytes && memcmp(a->pending_bytes, b->pending_bytes, a->n_pending_bytes)) ||
        (a->n_pending_tokens &&
         memcmp(a->pending_tokens, b->pending_tokens, 4 * a->n_pending_tokens)))
        return 0;
    /* arrays compared bit for bit */
    if (!a->mean_sum != !b->mean_sum || (a->mean_sum && memcmp(a->mean_sum, b->mean_sum, 8 * C)))
        return 0;
    if (!a->last_emb != !b->last_emb || (a->last_emb && memcmp(a->last_emb, b->last_emb, 4 * C)))
        return 0;
    if (a->has_carry != b->has_carry ||
        (a->has_carry && memcmp(&a->carry_surprisal, &b->carry_surprisal, 4)))
        return 0;
    if (!a->state != !b->state || (a->state && memcmp(a->state, b->state, 4 * S)))
        return 0;
    return 1;
}

static void test_round_trip_full(void)
{
    rwkvd_ckpt ck, back;
    full_ckpt(&ck);
    size_t n;
    uint8_t *b = enc(&ck, &n);
    CHECK(b);
    rwkv_error err;
    rwkvd_ckpt_status st;
    int rc = rwkvd_ckpt_decode("mem", b, n, &model, 0, &back, &st, &err);
    free(b);
    CHECKF(rc == 0 && st == RWKVD_CKPT_OK, "%s", err.msg);
    CHECK(back.owned != NULL);
    int same = same_ckpt(&ck, &back);
    rwkvd_ckpt_release(&back);
    CHECK(same);
    CHECK(back.state == NULL && back.owned == NULL);
    rwkvd_ckpt_release(&back); /* twice is harmless */
    rwkvd_ckpt_release(NULL);
}

/* An EmbeddingRWKV document: format v2, pooling eos with its task and the
 * EOS sum and count in the mean's places. */
static void test_round_trip_eos_pooling(void)
{
    rwkvd_ckpt ck, back;
    rwkv_error err;
    full_ckpt(&ck);
    ck.opts.pooling = RWKVD_POOL_EOS;
    ck.opts.has_task = true;
    ck.opts.task = 2;
    ck.opts.outputs = RWKVD_OUT_EMBEDDING;
    ck.mean_count = 3; /* EOS tokens so far */
    ck.opts.eos_every = 128;
    ck.since_eos = 7;
    ck.surprisal_sum = 0;
    ck.surprisal_count = 0;
    ck.has_carry = false;
    ck.carry_surprisal = 0;
    size_t n;
    uint8_t *b = enc(&ck, &n);
    CHECK(b);
    uint32_t version = (uint32_t)b[8] | (uint32_t)b[9] << 8;
    int rc = rwkvd_ckpt_decode("mem", b, n, &model, 0, &back, NULL, &err);
    /* the header alone: 8 more bytes than v1 before the doc id */
    rwkvd_ckpt_info info;
    size_t hs = RWKVD_CKPT_HEADER_FIXED + RWKVD_CKPT_HEADER_EOS_EXTRA + ck.doc_len;
    int rh = rwkvd_ckpt_read_header("mem", b, hs, &model, &info, NULL, &err);
    free(b);
    CHECKF(rc == 0 && rh == 0, "%s", err.msg);
    CHECK(info.header_size == hs && info.doc_len == ck.doc_len &&
          !memcmp(info.doc, ck.doc, ck.doc_len));
    int same = same_ckpt(&ck, &back) && back.opts.pooling == RWKVD_POOL_EOS &&
               back.opts.has_task && back.opts.task == 2 && back.mean_sum &&
               !memcmp(back.mean_sum, mean_sum, sizeof mean_sum) && back.mean_count == 3 &&
               back.opts.eos_every == 128 && back.since_eos == 7;
    rwkvd_ckpt_release(&back);
    CHECK(same && version == RWKVD_CKPT_VERSION_EOS);
    /* tokens since the last EOS must stay below eos_every */
    ck.since_eos = 128;
    CHECK(rwkvd_ckpt_encode(&ck, 3, &b, &n, &err) == -1 && strstr(err.msg, "since the last EOS"));
    ck.since_eos = 7;
    /* the writer keeps v1 for every other document */
    full_ckpt(&ck);
    b = enc(&ck, &n);
    CHECK(b);
    version = b[8];
    free(b);
    CHECK(version == RWKVD_CKPT_VERSION);
    /* a task or eos_every without eos pooling is refused by the writer */
    full_ckpt(&ck);
    ck.opts.has_task = true;
    CHECK(rwkvd_ckpt_encode(&ck, 3, &b, &n, &err) == -1);
    full_ckpt(&ck);
    ck.opts.eos_every = 5;
    CHECK(rwkvd_ckpt_encode(&ck, 3, &b, &n, &err) == -1 && strstr(err.msg, "eos_every"));
}

static void test_round_trip_variants(void)
{
    rwkvd_ckpt ck, back;
    rwkv_error err;
    /* eof received, the last blocks and the final still to come */
    {
        full_ckpt(&ck);
        ck.eof = true;
        ck.n_pending_bytes = 0;
        size_t n0;
        uint8_t *b0 = enc(&ck, &n0);
        CHECK(b0);
        int rc0 = rwkvd_ckpt_decode("mem", b0, n0, &model, 0, &back, NULL, &err);
        free(b0);
        CHECKF(rc0 == 0, "%s", err.msg);
        int same0 = same_ckpt(&ck, &back) && back.eof && !back.finished;
        rwkvd_ckpt_release(&back);
        CHECK(same0);
        ck.n_pending_bytes = 2; /* eof flushes the tokenizer: refused */
        CHECK(rwkvd_ckpt_encode(&ck, 3, &b0, &n0, &err) == -1 && strstr(err.msg, "after eof"));
    }
    /* finished, no state, no pending, pooling last, nothing optional */
    full_ckpt(&ck);
    ck.finished = true;
    ck.state = NULL;
    ck.n_pending_bytes = 0;
    ck.n_pending_tokens = 0;
    ck.tokens_done = 18; /* the last block was short */
    ck.surprisal_count = 17;
    ck.opts.pooling = RWKVD_POOL_LAST;
    ck.mean_sum = NULL;
    ck.mean_count = 0;
    ck.has_carry = false;
    size_t n;
    uint8_t *b = enc(&ck, &n);
    CHECK(b);
    int rc = rwkvd_ckpt_decode("mem", b, n, &model, 0, &back, NULL, &err);
    free(b);
    CHECKF(rc == 0, "%s", err.msg);
    int same = same_ckpt(&ck, &back);
    rwkvd_ckpt_release(&back);
    CHECK(same);
    /* a brand-new document: nothing received yet */
    full_ckpt(&ck);
    ck.input = RWKVD_INPUT_NONE;
    ck.next_seq = 0;
    ck.blocks_done = ck.tokens_done = ck.mean_count = ck.surprisal_count = 0;
    ck.surprisal_sum = 0;
    ck.n_pending_bytes = ck.n_pending_tokens = 0;
    ck.last_emb = NULL;
    ck.has_carry = false;
    b = enc(&ck, &n);
    CHECK(b);
    rc = rwkvd_ckpt_decode("mem", b, n, &model, 0, &back, NULL, &err);
    free(b);
    CHECKF(rc == 0, "%s", err.msg);
    same = same_ckpt(&ck, &back);
    rwkvd_ckpt_release(&back);
    CHECK(same);
}

static void test_header_only(void)
{
    rwkvd_ckpt ck;
    full_ckpt(&ck);
    size_t n;
    uint8_t *b = enc(&ck, &n);
    CHECK(b);
    rwkvd_ckpt_info info;
    rwkv_error err;
    /* only the header bytes are needed */
    int rc = rwkvd_ckpt_read_header("mem", b, RWKVD_CKPT_HEADER_FIXED + ck.doc_len, &model, &info,
                                    NULL, &err);
    size_t hs = RWKVD_CKPT_HEADER_FIXED + ck.doc_len;
    free(b);
    CHECKF(rc == 0, "%s", err.msg);
    CHECK(info.doc_len == 10 && memcmp(info.doc, ck.doc, 10) == 0 && info.next_seq == 17 &&
          info.blocks_done == 5 && info.tokens_done == 20 && info.n_pending_tokens == 3 &&
          !info.finished && info.block_size == 4 && info.header_size == hs &&
          info.comp_size == n - hs);
    CHECK(info.raw_size == 8 * C + 4 * S + 4 * C + 4 * 3 + 5);
}

static void test_every_byte_flip_refused(void)
{
    rwkvd_ckpt ck, back;
    full_ckpt(&ck);
    size_t n;
    uint8_t *b = enc(&ck, &n);
    CHECK(b);
    uint8_t *m = malloc(n);
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(m, b, n);
            m[i] ^= (uint8_t)(1u << bit);
            rwkv_error err;
            rwkvd_ckpt_status st = RWKVD_CKPT_OK;
            int rc = rwkvd_ckpt_decode("flip.ckpt", m, n, &model, 0, &back, &st, &err);
            if (rc == 0)
                rwkvd_ckpt_release(&back);
            if (!(rc == -1 && st == RWKVD_CKPT_CORRUPT && strncmp(err.msg, "flip.ckpt: ", 11) == 0 &&
                  back.owned == NULL)) {
                free(m);
                free(b);
                CHECKF(0, "flip of bit %d at byte %zu: rc %d status %s: %s", bit, i, rc,
                       rwkvd_ckpt_status_name(st), err.msg);
            }
        }
    free(m);
    free(b);
}

static void test_every_truncation_refused(void)
{
    rwkvd_ckpt ck, back;
    full_ckpt(&ck);
    size_t n;
    uint8_t *b = enc(&ck, &n);
    CHECK(b);
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *t = malloc(cut ? cut : 1); /* exact size: ASan sees any over-read */
        memcpy(t, b, cut);
        rwkv_error err;
        rwkvd_ckpt_status st = RWKVD_CKPT_OK;
        int rc = rwkvd_ckpt_decode("cut.ckpt", t, cut, &model, 0, &back, &st, &err);
        free(t);
        if (!(rc == -1 && st == RWKVD_CKPT_CORRUPT)) {
            free(b);
            CHECKF(0, "cut at %zu of %zu: rc %d: %s", cut, n, rc, err.msg);
        }
        if (cut >= 8 + 4 && cut < n && strstr(err.msg, "truncated") == NULL) {
            free(b);
            CHECKF(0, "cut at %zu: message does not say truncated: %s", cut, err.msg);
        }
    }
    uint8_t *longer = malloc(n + 1);
    memcpy(longer, b, n);
    longer[n] = 0;
    rwkv_error err;
    rwkvd_ckpt_status st;
    int rc = rwkvd_ckpt_decode("long.ckpt", longer, n + 1, &model, 0, &back, &st, &err);
    free(longer);
    free(b);
    CHECKF(rc == -1 && st == RWKVD_CKPT_CORRUPT, "%s", err.msg);
}

static void test_other_model_refused(void)
{
    rwkvd_ckpt ck, back;
    full_ckpt(&ck);
    size_t n;
    uint8_t *b = enc(&ck, &n);
    CHECK(b);
    rwkvd_model_id other = model;
    other.model_sha256[31] ^= 1;
    rwkv_error err;
    rwkvd_ckpt_status st;
    int rc = rwkvd_ckpt_decode("a.ckpt", b, n, &other, 0, &back, &st, &err);
    CHECKF(rc == -1 && st == RWKVD_CKPT_OTHER_MODEL && strstr(err.msg, "a.ckpt: made with model"),
           "%s", err.msg);
    other = model;
    other.tokenizer_sha256[0] ^= 0x80;
    rc = rwkvd_ckpt_decode("a.ckpt", b, n, &other, 0, &back, &st, &err);
    CHECKF(rc == -1 && st == RWKVD_CKPT_OTHER_MODEL && strstr(err.msg, "tokenizer"), "%s", err.msg);
    other = model;
    other.state_floats = S + 1; /* same sha, other shape: something is badly wrong */
    rc = rwkvd_ckpt_decode("a.ckpt", b, n, &other, 0, &back, &st, &err);
    CHECKF(rc == -1 && st == RWKVD_CKPT_CORRUPT && strstr(err.msg, "shape"), "%s", err.msg);
    /* header-only check refuses the same way */
    other = model;
    other.model_sha256[0] ^= 1;
    rwkvd_ckpt_info info;
    rc = rwkvd_ckpt_read_header("a.ckpt", b, n, &other, &info, &st, &err);
    CHECK(rc == -1 && st == RWKVD_CKPT_OTHER_MODEL);
    /* NULL expect accepts any model */
    rc = rwkvd_ckpt_decode("a.ckpt", b, n, NULL, 0, &back, &st, &err);
    free(b);
    CHECKF(rc == 0, "%s", err.msg);
    rwkvd_ckpt_release(&back);
}

/* The precision a state was computed in is part of its identity: a bf16
 * checkpoint round-trips, is refused by an fp32 daemon with a reason naming
 * both precisions, and an fp32 one (flag bits 6-7 = 0, as in every file
 * written before precisions existed) by a bf16 daemon. */
static void reseal(uint8_t *b, size_t doc_len);

static void test_other_precision_refused(void)
{
    rwkvd_ckpt ck, back;
    full_ckpt(&ck);
    ck.model.precision = 1; /* bf16 */
    size_t n;
    uint8_t *b = enc(&ck, &n);
    CHECK(b);
    CHECK(((b[16] >> 6) & 3) == 1 && b[103] == 0);
    rwkvd_model_id bf = model;
    bf.precision = 1;
    rwkv_error err;
    rwkvd_ckpt_status st;
    int rc = rwkvd_ckpt_decode("p.ckpt", b, n, &bf, 0, &back, &st, &err);
    if (rc == 0) {
        CHECK(back.model.precision == 1);
        rwkvd_ckpt_release(&back);
    }
    CHECKF(rc == 0, "%s", err.msg);
    /* another precision: refused, naming both and the way to continue anyway */
    rc = rwkvd_ckpt_decode("p.ckpt", b, n, &model, 0, &back, &st, &err);
    CHECKF(rc == -1 && st == RWKVD_CKPT_OTHER_MODEL && strstr(err.msg, "computed in bf16") &&
               strstr(err.msg, "runs fp32") && strstr(err.msg, "--precision bf16") &&
               strstr(err.msg, "--allow-precision-change"),
           "%s", err.msg);
    /* expecting any precision (--allow-precision-change): taken as it is,
     * the caller decides what the document continues in */
    rwkvd_model_id any = model;
    any.precision = RWKVD_CKPT_PRECISION_ANY;
    rc = rwkvd_ckpt_decode("p.ckpt", b, n, &any, 0, &back, &st, &err);
    free(b);
    CHECKF(rc == 0, "%s", err.msg);
    CHECK(back.model.precision == 1);
    rwkvd_ckpt_release(&back);
    full_ckpt(&ck);
    b = enc(&ck, &n);
    CHECK(b);
    CHECK(((b[16] >> 6) & 3) == 0);
    rwkvd_ckpt_info info;
    rc = rwkvd_ckpt_read_header("p.ckpt", b, n, &bf, &info, &st, &err);
    CHECKF(rc == -1 && st == RWKVD_CKPT_OTHER_MODEL && strstr(err.msg, "computed in fp32"), "%s",
           err.msg);
    rc = rwkvd_ckpt_read_header("p.ckpt", b, n, &any, &info, &st, &err);
    free(b);
    CHECKF(rc == 0 && info.model.precision == 0, "%s", err.msg);
    /* the writer refuses an unknown precision, and "any" is never written */
    static const uint8_t bad[] = {4, 200, RWKVD_CKPT_PRECISION_ANY};
    for (size_t i = 0; i < sizeof bad; i++) {
        full_ckpt(&ck);
        ck.model.precision = bad[i];
        uint8_t *out = NULL;
        rc = rwkvd_ckpt_encode(&ck, 1, &out, &n, &err);
        free(out);
        CHECKF(rc == -1 && strstr(err.msg, "precision"), "%s", err.msg);
    }
}

/* Precision 3, mixed: a document computed in one precision and continued in
 * another (--allow-precision-change).  It round-trips, is refused by a
 * daemon of any one precision (naming "mixed" and the option), and is
 * valid only once a block was computed. */
static void test_mixed_precision(void)
{
    rwkvd_ckpt ck, back;
    full_ckpt(&ck);
    ck.model.precision = RWKVD_CKPT_PRECISION_MIXED;
    size_t n;
    uint8_t *b = enc(&ck, &n);
    CHECK(b);
    CHECK(((b[16] >> 6) & 3) == 3);
    rwkvd_model_id any = model;
    any.precision = RWKVD_CKPT_PRECISION_ANY;
    rwkv_error err;
    rwkvd_ckpt_status st;
    int rc = rwkvd_ckpt_decode("m.ckpt", b, n, &any, 0, &back, &st, &err);
    CHECKF(rc == 0, "%s", err.msg);
    int same = same_ckpt(&ck, &back);
    rwkvd_ckpt_release(&back);
    CHECK(same);
    for (uint8_t p = 0; p < RWKVD_CKPT_PRECISION_MIXED; p++) {
        rwkvd_model_id one = model;
        one.precision = p;
        rc = rwkvd_ckpt_decode("m.ckpt", b, n, &one, 0, &back, &st, &err);
        CHECKF(rc == -1 && st == RWKVD_CKPT_OTHER_MODEL &&
                   strstr(err.msg, "computed in mixed precisions") &&
                   strstr(err.msg, rwkvd_ckpt_precision_name(p)) &&
                   strstr(err.msg, "--allow-precision-change"),
               "%s", err.msg);
    }
    free(b);
    /* no completed block: nothing was computed, so nothing can be mixed */
    full_ckpt(&ck);
    ck.blocks_done = ck.tokens_done = 0;
    ck.mean_count = ck.surprisal_count = 0;
    ck.surprisal_sum = 0;
    ck.last_emb = NULL;
    ck.has_carry = false;
    ck.model.precision = RWKVD_CKPT_PRECISION_MIXED;
    uint8_t *out = NULL;
    rc = rwkvd_ckpt_encode(&ck, 1, &out, &n, &err);
    free(out);
    CHECKF(rc == -1 && strstr(err.msg, "no completed block"), "%s", err.msg);
    ck.model.precision = 1; /* the same file as bf16 is fine; sealed as mixed it is not */
    b = enc(&ck, &n);
    CHECK(b);
    b[16] |= 0xC0;
    reseal(b, ck.doc_len);
    rc = rwkvd_ckpt_decode("m.ckpt", b, n, &any, 0, &back, &st, &err);
    free(b);
    CHECKF(rc == -1 && st == RWKVD_CKPT_CORRUPT && strstr(err.msg, "no completed block"), "%s",
           err.msg);
    /* what a document loaded from a checkpoint continues in */
    CHECK(rwkvd_ckpt_precision_continued(0, 0, 20) == 0);
    CHECK(rwkvd_ckpt_precision_continued(1, 1, 20) == 1);
    CHECK(rwkvd_ckpt_precision_continued(1, 0, 20) == RWKVD_CKPT_PRECISION_MIXED);
    CHECK(rwkvd_ckpt_precision_continued(2, 1, 1) == RWKVD_CKPT_PRECISION_MIXED);
    CHECK(rwkvd_ckpt_precision_continued(3, 0, 20) == RWKVD_CKPT_PRECISION_MIXED);
    CHECK(rwkvd_ckpt_precision_continued(1, 0, 0) == 0); /* nothing computed yet */
    CHECK(rwkvd_ckpt_precision_continued(3, 2, 0) == 2);
    CHECK(strcmp(rwkvd_ckpt_precision_name(0), "fp32") == 0 &&
          strcmp(rwkvd_ckpt_precision_name(1), "bf16") == 0 &&
          strcmp(rwkvd_ckpt_precision_name(2), "int8") == 0 &&
          strcmp(rwkvd_ckpt_precision_name(3), "mixed") == 0 &&
          strcmp(rwkvd_ckpt_precision_name(RWKVD_CKPT_PRECISION_ANY), "?") == 0);
}

/* Rewrites header field bytes and re-seals the header CRC, so only the
 * field checks can catch the change. */
static void reseal(uint8_t *b, size_t doc_len)
{
    size_t at = 200 + doc_len;
    uint32_t crc = rwkv_crc32(0, b, at);
    for (int i = 0; i < 4; i++)
        b[at + i] = (uint8_t)(crc >> (8 * i));
}
static void put32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_sealed_bad_headers(void)
{
    static const struct {
        size_t off;
        int width; /* 1, 4 or 8 */
        uint64_t value;
        const char *expect; /* substring of the message */
    } cases[] = {
        {8, 4, 5, "format version 5"},          /* 1..4 are read */
        {8, 4, 2, "header checksum"},           /* v2 label on a v1 file: its header is longer */
        {12, 4, 999, "out of range"},
        {16, 4, 0x10, "out of range"},          /* unknown flag bit */
        {16, 4, 0xC, "without its recurrent state"}, /* carry + last emb, no state */
        {16, 4, 0x6, "out of range"},          /* carry bits at 132 without flag 8 */
        {24, 4, 0, "model shape"},              /* n_layer 0 */
        {28, 4, 1u << 20, "model shape"},       /* n_embd too big */
        {40, 8, UINT64_C(1) << 40, "model shape"}, /* 4 TB state claim */
        {36, 4, 0, "block size"},
        {36, 4, RWKVD_BLOCK_MAX + 1, "block size"},
        {48, 8, UINT64_C(1) << 60, "next seq"},
        {64, 8, 21, "do not fit"},              /* tokens_done not blocks * B */
        {72, 8, 21, "pooling counts"},
        {80, 8, 0x7ff8000000000000ull, "surprisal sum"}, /* NaN */
        {96, 4, 0x10, "options"},
        {100, 1, 2, "out of range"},            /* pooling 2 */
        {102, 1, 3, "input kind"},
        {103, 1, 3, "out of range"},            /* reserved in v1 (the task of v3) */
        {104, 4, 0, "options"},                 /* topk 0 */
        {108, 4, 5000, "pending tokenizer bytes"},
        {112, 4, 0x40000001u, "pending tokens"}, /* > 2^30 */
        {132, 4, 0x7fc00000u, "carried surprisal"}, /* NaN */
    };
    rwkvd_ckpt ck, back;
    full_ckpt(&ck);
    size_t n;
    uint8_t *b = enc(&ck, &n);
    CHECK(b);
    uint8_t *m = malloc(n);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(m, b, n);
        if (cases[i].width == 1)
            m[cases[i].off] = (uint8_t)cases[i].value;
        else if (cases[i].width == 4)
            put32le(m + cases[i].off, (uint32_t)cases[i].value);
        else
            put64le(m + cases[i].off, cases[i].value);
        reseal(m, ck.doc_len);
        rwkv_error err;
        rwkvd_ckpt_status st;
        int rc = rwkvd_ckpt_decode("h.ckpt", m, n, &model, 0, &back, &st, &err);
        if (!(rc == -1 && st == RWKVD_CKPT_CORRUPT && strstr(err.msg, cases[i].expect))) {
            free(m);
            free(b);
            CHECKF(0, "case %zu (offset %zu): rc %d: %s", i, cases[i].off, rc, err.msg);
        }
    }
    /* doc_len 0 and 300: refused before the CRC can even be located */
    memcpy(m, b, n);
    put32le(m + 116, 0);
    rwkv_error err;
    CHECK(rwkvd_ckpt_decode("h.ckpt", m, n, &model, 0, &back, NULL, &err) == -1);
    CHECKF(strstr(err.msg, "doc id length 0"), "%s", err.msg);
    put32le(m + 116, 300);
    CHECK(rwkvd_ckpt_decode("h.ckpt", m, n, &model, 0, &back, NULL, &err) == -1);
    /* the magic */
    memcpy(m, b, n);
    m[0] = 'X';
    CHECK(rwkvd_ckpt_decode("h.ckpt", m, n, &model, 0, &back, NULL, &err) == -1);
    CHECKF(strstr(err.msg, "bad magic"), "%s", err.msg);
    free(m);
    free(b);
}

/* Rebuilds a file from a modified payload: header fields patched by the
 * caller, new zstd frame (checksum flag per `checksum`), sizes and CRCs
 * recomputed, so only content checks can object. */
static uint8_t *rebuild(const uint8_t *orig, size_t doc_len, const uint8_t *raw, size_t raw_len,
                        int checksum, size_t *out_len)
{
    size_t hs = 204 + doc_len, bound = ZSTD_compressBound(raw_len);
    uint8_t *f = malloc(hs + bound);
    memcpy(f, orig, hs);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, checksum);
    size_t z = ZSTD_compress2(cc, f + hs, bound, raw, raw_len);
    ZSTD_freeCCtx(cc);
    put64le(f + 120, z);
    put32le(f + 128, rwkv_crc32(0, f + hs, z));
    reseal(f, doc_len);
    *out_len = hs + z;
    return f;
}

static void test_sealed_bad_payloads(void)
{
    rwkvd_ckpt ck, back;
    full_ckpt(&ck);
    size_t n;
    uint8_t *b = enc(&ck, &n);
    CHECK(b);
    size_t hs = 204 + ck.doc_len;
    size_t raw_len = (size_t)ZSTD_getFrameContentSize(b + hs, n - hs);
    uint8_t *raw = malloc(raw_len), *mod = malloc(raw_len + 8);
    CHECK(ZSTD_decompress(raw, raw_len, b + hs, n - hs) == raw_len);
    rwkv_error err;
    rwkvd_ckpt_status st;
    size_t fl;
    uint8_t *f;
    /* unchanged payload, rebuilt: accepted (the rebuild itself is sound) */
    f = rebuild(b, ck.doc_len, raw, raw_len, 1, &fl);
    int rc = rwkvd_ckpt_decode("p.ckpt", f, fl, &model, 0, &back, &st, &err);
    free(f);
    CHECKF(rc == 0, "%s", err.msg);
    rwkvd_ckpt_release(&back);
    struct {
        size_t at;       /* byte offset in the payload to overwrite with 4 bytes */
        uint32_t value;
        const char *expect;
    } cases[] = {
        {8 * C + 4 * 3, 0x7fc00000u, "state[3] is not finite"},
        {8 * C + 4 * S + 4 * 2, 0x7f800000u, "last embedding[2] is not finite"},
        {8 * C + 4 * S + 4 * C + 4, 16, "pending token 1: id 16"},
    };
    for (size_t i = 0; i < 3; i++) {
        memcpy(mod, raw, raw_len);
        put32le(mod + cases[i].at, cases[i].value);
        f = rebuild(b, ck.doc_len, mod, raw_len, 1, &fl);
        rc = rwkvd_ckpt_decode("p.ckpt", f, fl, &model, 0, &back, &st, &err);
        free(f);
        CHECKF(rc == -1 && st == RWKVD_CKPT_CORRUPT && strstr(err.msg, cases[i].expect),
               "case %zu: %s", i, err.msg);
    }
    /* NaN in the mean sum (float64) */
    memcpy(mod, raw, raw_len);
    put64le(mod + 8, 0x7ff8000000000001ull);
    f = rebuild(b, ck.doc_len, mod, raw_len, 1, &fl);
    rc = rwkvd_ckpt_decode("p.ckpt", f, fl, &model, 0, &back, &st, &err);
    free(f);
    CHECKF(rc == -1 && strstr(err.msg, "mean sum[1]"), "%s", err.msg);
    /* a frame without the content checksum */
    f = rebuild(b, ck.doc_len, raw, raw_len, 0, &fl);
    rc = rwkvd_ckpt_decode("p.ckpt", f, fl, &model, 0, &back, &st, &err);
    free(f);
    CHECKF(rc == -1 && strstr(err.msg, "content checksum"), "%s", err.msg);
    /* a payload one byte longer or shorter than the header implies */
    memcpy(mod, raw, raw_len);
    mod[raw_len] = 0;
    f = rebuild(b, ck.doc_len, mod, raw_len + 1, 1, &fl);
    rc = rwkvd_ckpt_decode("p.ckpt", f, fl, &model, 0, &back, &st, &err);
    free(f);
    CHECKF(rc == -1 && strstr(err.msg, "does not match the header"), "%s", err.msg);
    f = rebuild(b, ck.doc_len, raw, raw_len - 1, 1, &fl);
    rc = rwkvd_ckpt_decode("p.ckpt", f, fl, &model, 0, &back, &st, &err);
    free(f);
    CHECKF(rc == -1 && strstr(err.msg, "does not match the header"), "%s", err.msg);
    /* a payload that is not zstd at all (CRC sealed) */
    f = malloc(hs + 16);
    memcpy(f, b, hs);
    memset(f + hs, 0xAB, 16);
    put64le(f + 120, 16);
    put32le(f + 128, rwkv_crc32(0, f + hs, 16));
    reseal(f, ck.doc_len);
    rc = rwkvd_ckpt_decode("p.ckpt", f, hs + 16, &model, 0, &back, &st, &err);
    free(f);
    CHECKF(rc == -1 && strstr(err.msg, "not a zstd frame"), "%s", err.msg);
    free(raw);
    free(mod);
    free(b);
}

static void test_raw_cap_checked_before_allocating(void)
{
    rwkvd_ckpt ck, back;
    full_ckpt(&ck);
    size_t n;
    uint8_t *b = enc(&ck, &n);
    CHECK(b);
    rwkv_error err;
    rwkvd_ckpt_status st;
    int rc = rwkvd_ckpt_decode("cap.ckpt", b, n, &model, 100, &back, &st, &err);
    CHECKF(rc == -1 && st == RWKVD_CKPT_CORRUPT && strstr(err.msg, "above the limit"), "%s", err.msg);
    /* a header claiming a 16 GB state with matching CRCs and a tiny frame */
    uint8_t *m = malloc(n);
    memcpy(m, b, n);
    put64le(m + 40, UINT64_C(1) << 32);
    reseal(m, ck.doc_len);
    rc = rwkvd_ckpt_decode("cap.ckpt", m, n, NULL, 0, &back, &st, &err);
    free(m);
    free(b);
    CHECKF(rc == -1 && strstr(err.msg, "above the limit"), "%s", err.msg);
}

static void test_writer_refuses_bad_snapshots(void)
{
    rwkvd_ckpt ck;
    uint8_t *b;
    size_t n;
    rwkv_error err;
#define REFUSED(mutate, what)                                                                    \
    do {                                                                                         \
        full_ckpt(&ck);                                                                          \
        mutate;                                                                                  \
        int rc_ = rwkvd_ckpt_encode(&ck, 3, &b, &n, &err);                                       \
        CHECKF(rc_ == -1 && b == NULL && strstr(err.msg, what), "%s", err.msg);                  \
    } while (0)
    float nan_state[S];
    memcpy(nan_state, state, sizeof state);
    nan_state[7] = NAN;
    REFUSED(ck.state = nan_state, "state[7] is not finite");
    uint32_t bad_tok[3] = {1, 16, 2};
    REFUSED(ck.pending_tokens = bad_tok, "pending token 1");
    REFUSED(ck.n_pending_tokens = (size_t)RWKVD_CKPT_PENDING_TOKENS_MAX + 1, "pending tokens");
    REFUSED(ck.carry_surprisal = -1.0f, "carried surprisal");
    REFUSED((ck.n_pending_tokens = 0, ck.n_pending_bytes = 0), "carried surprisal");
    REFUSED(ck.state = NULL, "without its recurrent state");
    REFUSED(ck.tokens_done = 19, "not all full");
    REFUSED((ck.finished = true, ck.n_pending_bytes = ck.n_pending_tokens = 0,
             ck.tokens_done = 21), "do not fit");
    REFUSED(ck.mean_sum = NULL, "mean sum");
    REFUSED(ck.doc_len = 0, "doc id length");
    REFUSED(ck.doc_len = RWKVD_DOC_MAX + 1, "doc id length");
    REFUSED(ck.opts.topk = 0, "options");
    REFUSED(ck.n_pending_bytes = RWKVD_CKPT_PENDING_BYTES_MAX + 1, "pending tokenizer bytes");
    REFUSED(ck.input = RWKVD_INPUT_TOKENS, "pending tokenizer bytes");
    REFUSED((ck.finished = true, ck.tokens_done = 18), "finished document with pending");
    REFUSED(ck.surprisal_sum = -1, "surprisal sum");
    full_ckpt(&ck);
    CHECK(rwkvd_ckpt_encode(&ck, ZSTD_maxCLevel() + 1, &b, &n, &err) == -1);
    CHECKF(strstr(err.msg, "zstd level"), "%s", err.msg);
}

static int no_segment(void *ctx, const rwkv_segment *g)
{
    (void)ctx;
    (void)g;
    return 0;
}

/* A segmenter that has seen n one-byte tokens, serialised into buf. */
static void segment_state(rwkv_seg_config *cfg, int n, uint8_t *buf)
{
    rwkv_segmenter s;
    rwkv_seg_config_lines(cfg);
    cfg->text_cap = 7;
    cfg->warmup = 3;
    rwkv_segmenter_init(&s, cfg, NULL);
    for (int i = 0; i < n; i++)
        rwkv_segmenter_token(&s, (const uint8_t *)(i % 6 == 5 ? "\n" : "x"), 1,
                             i ? 0.25f * (float)(i % 5) : NAN, no_segment, NULL);
    rwkv_segmenter_store(&s, buf);
}

/* Flag 32: the segment state round-trips, sets opts.segment, and must agree
 * with the options and the token count. */
static void test_segment_state(void)
{
    static uint8_t seg[RWKV_SEGMENTER_BYTES], seg19[RWKV_SEGMENTER_BYTES];
    rwkv_seg_config cfg;
    segment_state(&cfg, 20, seg);
    rwkvd_ckpt ck, back;
    full_ckpt(&ck);
    ck.opts.segment = true;
    ck.opts.seg = cfg;
    ck.segment_state = seg;
    size_t n;
    uint8_t *b = enc(&ck, &n);
    CHECK(b);
    rwkv_error err;
    rwkvd_ckpt_status st;
    int rc = rwkvd_ckpt_decode("mem", b, n, &model, 0, &back, &st, &err);
    free(b);
    CHECKF(rc == 0, "%s", err.msg);
    int same = same_ckpt(&ck, &back) && back.opts.segment &&
               rwkv_seg_config_equal(&back.opts.seg, &cfg) && back.segment_state &&
               memcmp(back.segment_state, seg, sizeof seg) == 0;
    rwkvd_ckpt_release(&back);
    CHECK(same && back.segment_state == NULL);
    /* without segments the file has no flag 32 and decodes without segment state */
    full_ckpt(&ck);
    b = enc(&ck, &n);
    CHECK(b);
    rc = rwkvd_ckpt_decode("mem", b, n, &model, 0, &back, &st, &err);
    free(b);
    CHECK(rc == 0 && !back.opts.segment && !back.segment_state);
    rwkvd_ckpt_release(&back);
    /* the writer refuses what the reader would */
    segment_state(&cfg, 19, seg19);
#define SEG_REFUSED(mutate, what)                                                                \
    do {                                                                                         \
        full_ckpt(&ck);                                                                          \
        ck.opts.segment = true;                                                                  \
        ck.opts.seg = cfg;                                                                       \
        ck.segment_state = seg;                                                                  \
        mutate;                                                                                  \
        b = NULL;                                                                                \
        CHECKF(rwkvd_ckpt_encode(&ck, 3, &b, &n, &err) == -1 && !b && strstr(err.msg, what),    \
               "%s", err.msg);                                                                   \
    } while (0)
    SEG_REFUSED(ck.segment_state = seg19, "19 tokens segmented, 20 in blocks");
    SEG_REFUSED(ck.opts.segment = false, "segment state given iff");
    SEG_REFUSED(ck.segment_state = NULL, "segment state given iff");
    SEG_REFUSED(ck.opts.seg.warmup = 4, "options differ");
    SEG_REFUSED(ck.opts.seg.text_cap = 8, "options differ");
    SEG_REFUSED((ck.input = RWKVD_INPUT_TOKENS, ck.n_pending_bytes = 0), "fed token ids");
    uint8_t bad[RWKV_SEGMENTER_BYTES];
    memcpy(bad, seg, sizeof bad);
    bad[17] = 1; /* a delimiter of one byte cannot have one byte matched */
    SEG_REFUSED(ck.segment_state = bad, "matched");
#undef SEG_REFUSED
}

static void test_levels_and_determinism(void)
{
    rwkvd_ckpt ck, back;
    full_ckpt(&ck);
    int levels[] = {ZSTD_minCLevel(), 1, 3, 19};
    for (size_t i = 0; i < 4; i++) {
        uint8_t *a = NULL, *b = NULL;
        size_t na, nb;
        rwkv_error err;
        CHECK(rwkvd_ckpt_encode(&ck, levels[i], &a, &na, &err) == 0);
        CHECK(rwkvd_ckpt_encode(&ck, levels[i], &b, &nb, &err) == 0);
        int same = na == nb && memcmp(a, b, na) == 0;
        int rc = rwkvd_ckpt_decode("lv", a, na, &model, 0, &back, NULL, &err);
        free(a);
        free(b);
        CHECK(same);
        CHECKF(rc == 0, "level %d: %s", levels[i], err.msg);
        rwkvd_ckpt_release(&back);
    }
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_round_trip_full);
    RUN(test_round_trip_variants);
    RUN(test_round_trip_eos_pooling);
    RUN(test_header_only);
    RUN(test_every_byte_flip_refused);
    RUN(test_every_truncation_refused);
    RUN(test_other_model_refused);
    RUN(test_other_precision_refused);
    RUN(test_mixed_precision);
    RUN(test_sealed_bad_headers);
    RUN(test_sealed_bad_payloads);
    RUN(test_raw_cap_checked_before_allocating);
    RUN(test_writer_refuses_bad_snapshots);
    RUN(test_levels_and_determinism);
    RUN(test_segment_state);
    return test_summary();
}
