/* test_plan.c — the pass planner and the per-row output rules (core/plan.h)
 * against their contract, on many random request sets.  Every backend plans
 * with them, so this is what keeps the CPU and CUDA engines computing the
 * same rows. */
#include <stdint.h>
#include <string.h>

#include "core/plan.h"
#include "tests/testutil.h"

/* ---------------------------------------------------------------- planner */

static void make_requests(uint64_t *seed, rwkv_request *q, int n, int max_len)
{
    static const uint32_t tok[1] = {0};
    for (int i = 0; i < n; i++) {
        memset(&q[i], 0, sizeof q[i]);
        q[i].tokens = tok; /* never read by the planner */
        q[i].n_tokens = 1 + (int)(test_rand(seed) % (uint64_t)max_len);
    }
}

/* Every token planned exactly once, in order; passes within max_rows; a
 * pass holds whole requests unless one request alone exceeds max_rows: such a
 * request is cut at multiples of max_rows from its own start, its full
 * pieces alone in their passes, its tail possibly opening a shared pass. */
static void test_plan_passes(void)
{
    uint64_t seed = 42;
    rwkv_request q[40];
    rwkv_plan_segment seg[40];
    for (int iter = 0; iter < 3000; iter++) {
        int n = 1 + (int)(test_rand(&seed) % 40);
        int max_rows = 1 + (int)(test_rand(&seed) % 300);
        make_requests(&seed, q, n, iter % 3 == 0 ? 1000 : 50);
        rwkv_plan_cursor cur = {0, 0};
        int rows, ns, next_req = 0, next_tok = 0, passes = 0;
        while ((ns = rwkv_plan_pass(q, n, max_rows, &cur, seg, &rows)) > 0) {
            CHECK(ns <= n && rows >= 1 && rows <= max_rows);
            passes++;
            int r = 0;
            for (int s = 0; s < ns; s++) {
                CHECKF(seg[s].req == next_req && seg[s].t0 == next_tok,
                       "iter %d: segment %d starts at (%d,%d), expected (%d,%d)", iter, s,
                       seg[s].req, seg[s].t0, next_req, next_tok);
                CHECK(seg[s].t1 > seg[s].t0 && seg[s].t1 <= q[seg[s].req].n_tokens);
                CHECK(seg[s].row0 == r);
                r += seg[s].t1 - seg[s].t0;
                if (seg[s].t1 < q[seg[s].req].n_tokens) {
                    /* a cut request: alone in its pass, cut at a multiple */
                    CHECK(ns == 1 && seg[s].t1 % max_rows == 0 && seg[s].t0 % max_rows == 0);
                    next_tok = seg[s].t1;
                } else {
                    /* a shared pass holds whole requests, except that it may
                     * open with the tail of a request cut in earlier passes */
                    if (ns > 1 && s > 0)
                        CHECK(seg[s].t0 == 0);
                    CHECK(seg[s].t0 % max_rows == 0);
                    next_req++;
                    next_tok = 0;
                }
            }
            CHECK(r == rows);
        }
        CHECK(ns == 0 && next_req == n && passes >= 1);
    }
    /* errors */
    rwkv_plan_cursor cur = {0, 0};
    int rows;
    make_requests(&seed, q, 3, 10);
    CHECK(rwkv_plan_pass(q, 3, 0, &cur, seg, &rows) == -1);
    q[1].n_tokens = 0;
    CHECK(rwkv_plan_pass(q, 3, 100, &cur, seg, &rows) == -1);
    cur = (rwkv_plan_cursor){0, 0};
    CHECK(rwkv_plan_pass(q, 0, 100, &cur, seg, &rows) == 0 && rows == 0);
}

static void test_row_output_rules(void)
{
    float buf[4];
    double sum[4];
    rwkv_request q;
    memset(&q, 0, sizeof q);
    q.n_tokens = 5;
    q.next_token = -1;
    /* nothing asked: no row needs anything */
    for (int t = 0; t < 5; t++)
        CHECK(!rwkv_plan_wants_hidden(&q, t) && !rwkv_plan_wants_logits(&q, t));
    /* LAST modes: the last row only */
    q.logits = RWKV_LOGITS_LAST;
    q.logits_out = buf;
    for (int t = 0; t < 5; t++)
        CHECK(rwkv_plan_wants_logits(&q, t) == (t == 4) &&
              rwkv_plan_wants_hidden(&q, t) == (t == 4));
    q.logits = RWKV_LOGITS_NONE;
    q.hidden = RWKV_HIDDEN_LAST;
    q.hidden_out = buf;
    for (int t = 0; t < 5; t++)
        CHECK(!rwkv_plan_wants_logits(&q, t) && rwkv_plan_wants_hidden(&q, t) == (t == 4));
    /* MEAN and the sum need every hidden row, no logits */
    q.hidden = RWKV_HIDDEN_MEAN;
    for (int t = 0; t < 5; t++)
        CHECK(!rwkv_plan_wants_logits(&q, t) && rwkv_plan_wants_hidden(&q, t));
    q.hidden = RWKV_HIDDEN_NONE;
    q.hidden_sum = sum;
    for (int t = 0; t < 5; t++)
        CHECK(rwkv_plan_wants_hidden(&q, t));
    q.hidden_sum = NULL;
    /* an EOS sum: the rows whose token is the EOS id, and no logits */
    uint32_t toks[5] = {3, 9, 1, 9, 2};
    int64_t cnt = 0;
    q.tokens = toks;
    q.eos_sum = sum;
    q.eos_count = &cnt;
    q.eos_id = 9;
    for (int t = 0; t < 5; t++)
        CHECK(!rwkv_plan_wants_logits(&q, t) && rwkv_plan_wants_hidden(&q, t) == (toks[t] == 9));
    q.hidden = RWKV_HIDDEN_LAST; /* with LAST: the EOS rows and the last */
    for (int t = 0; t < 5; t++)
        CHECK(rwkv_plan_wants_hidden(&q, t) == (toks[t] == 9 || t == 4));
    q.hidden = RWKV_HIDDEN_NONE;
    q.eos_sum = NULL;
    q.eos_count = NULL;
    /* surprisal: every row but the last unless the next token is known */
    q.surprisal_out = buf;
    for (int t = 0; t < 5; t++)
        CHECK(rwkv_plan_wants_logits(&q, t) == (t < 4) && rwkv_plan_wants_hidden(&q, t));
    q.next_token = 7;
    for (int t = 0; t < 5; t++)
        CHECK(rwkv_plan_wants_logits(&q, t));
    /* logits ALL: every row */
    q.surprisal_out = NULL;
    q.next_token = -1;
    q.logits = RWKV_LOGITS_ALL;
    for (int t = 0; t < 5; t++)
        CHECK(rwkv_plan_wants_logits(&q, t) && rwkv_plan_wants_hidden(&q, t));
}

/* The head span is the hull of the rows that want logits, and every row in
 * it wants them (so a backend may compute the head over one contiguous run). */
static void test_head_span(void)
{
    uint64_t seed = 7;
    rwkv_request q[8];
    float buf[1];
    for (int iter = 0; iter < 2000; iter++) {
        make_requests(&seed, q, 1, 40);
        q[0].logits = (rwkv_logits_mode)(test_rand(&seed) % 3);
        q[0].logits_out = buf;
        q[0].surprisal_out = test_rand(&seed) % 2 ? buf : NULL;
        q[0].next_token = test_rand(&seed) % 2 ? 3 : -1;
        int n = q[0].n_tokens;
        int t0 = (int)(test_rand(&seed) % (uint64_t)n);
        int t1 = t0 + 1 + (int)(test_rand(&seed) % (uint64_t)(n - t0));
        int a, b;
        rwkv_plan_head_span(&q[0], t0, t1, &a, &b);
        for (int t = t0; t < t1; t++)
            CHECKF(rwkv_plan_wants_logits(&q[0], t) == (t >= a && t < b),
                   "iter %d: row %d of [%d,%d) against span [%d,%d)", iter, t, t0, t1, a, b);
    }
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_plan_passes);
    RUN(test_row_output_rules);
    RUN(test_head_span);
    return test_summary();
}
